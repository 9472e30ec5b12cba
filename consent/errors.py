"""Typed errors of the consent registry; the CLI maps them to messages and exit codes.

Every message says how to fix the problem. Values echoed from files or the command line are
shown with ``repr`` so control characters cannot reach the terminal.
"""

from __future__ import annotations

import errno as _errno
from pathlib import Path


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


class MedicalError(ConsentError):
    """A medical record cannot be stored or used as asked (the message says why)."""


class NoMedicalRecord(MedicalError):
    """The pupil has no medical record (or no condition of that name)."""


# What to do about the usual reasons a file cannot be written (see consent.files).
_WRITE_HINTS = {
    _errno.ENOSPC: "Free some space on that disk, then try again.",
    _errno.EDQUOT: "Free some space within your disk quota, then try again.",
    _errno.ENOENT: "Check that the folder exists.",
    _errno.ENOTDIR: "Check that the folder exists.",
    _errno.EACCES: "Check that you may write in that folder.",
    _errno.EPERM: "Check that you may write in that folder.",
    _errno.EROFS: "That disk is read-only; choose a folder on another disk.",
}


class FileWriteError(ConsentError):
    """A file could not be written safely; nothing was left under its name.

    ``step`` is ``"create"`` when the file (or its hidden temp file) could not even be
    created, ``"write"`` when writing, syncing or naming it failed afterwards. ``errno`` and
    ``reason`` are the system's (``reason`` is e.g. "No space left on device").
    """

    def __init__(self, path: Path | str, exc: OSError, *, step: str, message: str = "") -> None:
        self.path = Path(path)
        self.errno = exc.errno
        self.reason = exc.strerror or str(exc)
        self.step = step
        hint = _WRITE_HINTS.get(exc.errno or 0, "Check the disk, then try again.")
        super().__init__(message or f"Cannot {step} {self.path}: {self.reason}. {hint}")

    @property
    def disk_full(self) -> bool:
        """True when the disk, or the user's quota on it, is full."""
        return self.errno in (_errno.ENOSPC, _errno.EDQUOT)


class FileConflict(FileWriteError):
    """A file already stands where a new one would be written; it was left untouched."""

    def __init__(self, path: Path | str, *, step: str = "create") -> None:
        super().__init__(
            path,
            FileExistsError(_errno.EEXIST, "File exists"),
            step=step,
            message=f"{path} already exists and was left untouched; choose another name, or "
            "move that file away first.",
        )
