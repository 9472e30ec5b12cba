"""The output folder of a publish: its lock, hidden temp files and the two-step write.

A published file appears in three steps so that a crash at any moment leaves the folder
and the audit log in agreement (see :mod:`publishing.journal` for the recovery):

1. :func:`write_temp` writes the bytes to a hidden ``.<name>.tmp-<token>`` file and fsyncs
   it; :func:`verify_written` re-reads that file from disk and runs the clean-output check
   (the one behind ``photoconsent verify-clean``) on the bytes as written.
2. The caller commits the audit entry and the journal row in one SQLite transaction.
3. :func:`reveal` hard-links the temp file to its visible name (never replacing a file),
   fsyncs the folder and removes the temp name.

Killed before 2: only a hidden temp file is left, removed by :func:`remove_stale_temps` on
the next run. Killed between 2 and 3: the journal names the temp file and the next run
finishes step 3. A visible output therefore always has its audit entry.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from filelock import FileLock, Timeout

from consent import files
from consent.errors import FileConflict, FileWriteError
from consent.files import file_sha256 as file_sha256  # re-exported for publish
from consent.files import temp_name as temp_name  # re-exported: publish names its temp files
from consent.files import unlink_quietly as unlink_quietly  # re-exported for publish
from pipeline.errors import OutputConflict, UnsafeOutput
from pipeline.formats.findings import describe, find_metadata

LOCK_SUFFIX = ".lock"
HOLDER_SUFFIX = ".holder"


class DiskFull(OutputConflict):
    """The output folder's disk (or the user's quota there) is full."""


class FolderLock:
    """An exclusive lock on an output folder, held while one publish writes into it.

    A `filelock.FileLock` (``flock`` on Linux and macOS, ``msvcrt`` locking on Windows):
    the system drops it when the process dies, however it dies, so a lock left by a killed
    publish is never stale. The lock file lives in the system's temporary folder, named by
    a hash of the output folder's full path, not in the output folder: removing it on
    release would let two waiters lock two different files, and keeping it beside the
    photos would put a stray file in what the school uploads. The holder's process id goes
    into a ``.holder`` file beside it, for the refusal message, removed on release.
    """

    def __init__(self, folder: Path) -> None:
        digest = hashlib.sha256(os.fsencode(os.path.realpath(folder))).hexdigest()[:32]
        self.path = Path(tempfile.gettempdir()) / f"photoconsent-{digest}{LOCK_SUFFIX}"
        self.holder_path = self.path.with_name(self.path.name + HOLDER_SUFFIX)
        self.folder = folder
        # thread_local=False: a publish may release the lock from another thread than the
        # one that took it (the service's worker threads).
        self._lock = FileLock(self.path, timeout=0, thread_local=False)

    def __enter__(self) -> FolderLock:
        try:
            self._lock.acquire()
        except Timeout:
            holder = _read_pid(self.holder_path)
            who = f" (process {holder})" if holder else ""
            raise OutputConflict(
                f"Another publish{who} is writing into {self.folder}; wait for it "
                "to finish or choose another --out folder."
            ) from None
        try:
            self.holder_path.write_text(f"{os.getpid()}\n", encoding="ascii")
        except OSError:
            pass  # only the refusal message of a second publish uses it
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._lock.is_locked:
            return
        unlink_quietly(self.holder_path)
        self._lock.release()


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def write_temp(data: bytes, path: Path) -> None:
    """Create ``path`` (must not exist) holding ``data``, fsynced; remove it on any error.

    Raises OutputConflict with the system's reason (a full disk says "No space left on
    device").
    """
    try:
        # The folder is fsynced by reveal(), once the visible name exists.
        files.create_exclusive(path, data, mode=files.PUBLIC, sync_folder=False)
    except FileWriteError as exc:
        error = DiskFull if exc.disk_full else OutputConflict
        if exc.step == "create":
            raise error(f"cannot write in {path.parent}: {exc.reason}") from exc
        raise error(f"cannot write the output: {exc.reason}") from exc


def verify_written(path: Path, sha256: str) -> None:
    """Re-read ``path`` from disk: it must hold exactly the encoded bytes (``sha256``) and
    pass the clean-output check. Raises UnsafeOutput otherwise (the caller removes it)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnsafeOutput(f"the written output cannot be read back: {exc.strerror}") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise UnsafeOutput("the written output differs from the encoded bytes (disk error?)")
    findings = find_metadata(data)
    if findings:
        raise UnsafeOutput(f"the written output failed the clean check: {describe(findings)}")


def reveal(temp: Path, dest: Path) -> None:
    """Give the fsynced ``temp`` file the visible name ``dest`` without replacing anything,
    make the name durable, then drop the temp name. Raises OutputConflict if ``dest``
    exists, OSError if naming fails otherwise (the temp file is kept for the caller to deal
    with in both cases)."""
    try:
        files.link_no_clobber(temp, dest)
    except FileConflict as exc:
        raise OutputConflict(f"{dest.name} exists") from exc
    except FileWriteError as exc:
        # Any other failure stays the OSError it was: the photo is withheld with the
        # system's reason and the journal lets the next run finish the reveal.
        raise OSError(exc.errno, exc.reason) from exc


def remove_stale_temps(folder: Path, keep: set[str]) -> list[str]:
    """Delete hidden temp files a killed run left in ``folder``, except those in ``keep``
    (committed outputs still to be revealed). Returns the names removed."""
    removed = []
    for entry in os.scandir(folder):
        if entry.name in keep or not files.TEMP_RE.match(entry.name):
            continue
        if entry.is_file(follow_symlinks=False):
            unlink_quietly(Path(entry.path))
            removed.append(entry.name)
    return removed
