"""photoconsent's consent registry: pupils, consent slips, face references and the audit log.

Modules: `store` (data directory, `Store`, migrations), `registry` (CSV import, consent
queries), `enrolment` (encrypted face encodings), `audit` (hash-chained log), `crypto`
(AES-256-GCM at rest), `errors` (typed exceptions). Nothing is loaded or opened on import.
"""
