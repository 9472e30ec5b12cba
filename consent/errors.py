"""Typed errors of the consent registry; the CLI maps them to messages and exit codes.

Every message says how to fix the problem. Values echoed from files or the command line are
shown with ``repr`` so control characters cannot reach the terminal.
"""

from __future__ import annotations


class ConsentError(Exception):
    """Base class of every error the consent package raises on purpose."""


class DataDirError(ConsentError):
    """The data directory is missing, not initialised, or from a newer photoconsent."""


class CsvImportError(ConsentError):
    """A consent CSV has bad lines; nothing from it was imported."""

    def __init__(self, errors: list[tuple[int, str]], *, filename: str = "the CSV file") -> None:
        self.errors = sorted(errors)
        self.filename = filename
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.errors)
        noun = "error" if count == 1 else "errors"
        head = f"{count} {noun} in {self.filename}; nothing was imported. Fix and import again:"
        return "\n".join([head, *(f"line {line}: {msg}" for line, msg in self.errors)])


class UnknownPupil(ConsentError):
    """No pupil with this id is in the registry."""

    def __init__(self, pupil_id: str) -> None:
        self.pupil_id = pupil_id
        super().__init__(
            f"No pupil {pupil_id!r} in the registry. Check the id, or import the consent CSV "
            "that lists the pupil first."
        )


class NoBiometricConsent(ConsentError):
    """The pupil's current consent record does not allow storing a face encoding."""

    def __init__(self, pupil_id: str) -> None:
        self.pupil_id = pupil_id
        super().__init__(
            f"{pupil_id} has no biometric consent on record (Protection of Freedoms Act 2012 "
            "needs a parent's written consent); update the consent slip and re-import first"
        )


class KeyMissing(ConsentError):
    """The secret key file is missing or unreadable, so encodings and the audit are locked."""


class KeyMismatch(KeyMissing):
    """The secret key found is not the key this data directory was created with."""


class TamperedData(ConsentError):
    """Encrypted data failed its integrity check (edited, moved to another row, or wrong key)."""


class AuditTampered(ConsentError):
    """The audit log's hash chain or its head anchor does not verify."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"- {p}" for p in self.problems)
        super().__init__(
            "The audit log failed verification; stop publishing and investigate "
            f"(`photoconsent audit verify`):\n{lines}"
        )


class NoChange(ConsentError):
    """A consent change would not change the current record, so nothing was recorded."""


class NoConsentToChange(ConsentError):
    """A permission cannot be granted to a pupil without any signed slip on record."""


class ExportExists(ConsentError):
    """The folder an export would be written to already exists."""


class UnknownRetentionCategory(ConsentError):
    """A retention period was set for a category of data photoconsent does not hold."""
