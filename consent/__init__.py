"""photoconsent's data directory: pupils, consent slips, face references, medical records, audit.

Modules: `store` (data directory, `Store`, migrations), `registry` (CSV import, consent
queries), `enrolment` (encrypted face encodings), `audit` (hash-chained log), `crypto`
(AES-256-GCM at rest), `files` (the one safe-file writer), `retention` (leavers, erasure),
`export` (subject access), `takedown` (the list of photos to take down), `medical/`
(records, their CSV import, the medical key, board photos and settings), `errors` (typed
exceptions). Imports nothing else of the project. Nothing is loaded or opened on import.
"""
