"""Typed errors of the image pipeline; the CLI maps them to messages and exit codes."""


class PipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class UnreadableImage(PipelineError):
    """The file is not an image the pipeline can decode safely (the reason says why)."""


class UnsafeOutput(PipelineError):
    """A written file failed the clean-output check, so it must not be published."""


class EnrolmentRejected(PipelineError):
    """A reference photo cannot be enrolled (no face, several faces, face too small...)."""

    # For "several faces": every face found (the pupil's first) and the upright photo,
    # so the caller can save a preview with the boxes drawn. None otherwise.
    boxes: list | None = None
    pixels: object | None = None


class OutputConflict(PipelineError):
    """The output path is unusable: it is an input, or it would overwrite a file."""


class InvalidOptions(PipelineError):
    """A job's options cannot be used as given (the message says which and why)."""
