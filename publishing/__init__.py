"""Job 1, batch publishing: options, inputs, the keep-or-blur decider, the publish run,
workers, journal, outputs, report, the pre-check, takedown replacements, captions and
human review. Builds on `pipeline` (pixels) and `consent` (the data directory)."""
