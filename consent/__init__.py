"""photoconsent's data directory: pupils, consent slips, face references, medical records, audit.

Modules: `store` (data directory, `Store`, migrations), `registry` (CSV import, consent
queries), `enrolment` (encrypted face encodings), `audit` (hash-chained log), `crypto`
(AES-256-GCM at rest), `retention` (leavers, erasure), `export` (subject access),
`takedown` (the list of photos to take down), `medical/` (records, board photos and
settings under the medical key), `errors` (typed exceptions). Imports nothing else of the
project. Nothing is loaded or opened on import.
"""
