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

import errno
import fcntl
import hashlib
import os
import re
import secrets
from pathlib import Path

from pipeline.errors import OutputConflict, UnsafeOutput
from pipeline.formats.findings import describe, find_metadata

LOCK_NAME = ".photoconsent.lock"
# Hidden temp files this module creates: ".<name>.tmp-<hex token>".
TEMP_RE = re.compile(r"^\..+\.tmp-[0-9a-f]{12}$")
# errno values meaning "this filesystem cannot hard-link" (FAT/exFAT, some SMB mounts).
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}


class DiskFull(OutputConflict):
    """The output folder's disk (or the user's quota there) is full."""


class FolderLock:
    """An exclusive lock on an output folder, held while one publish writes into it.

    ``flock`` on a hidden lock file: the kernel drops it when the process dies, however it
    dies, so a lock left by a killed publish is never stale. The file holds the holder's
    process id for the refusal message and is removed on release.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f" (process {holder})" if holder else ""
                raise OutputConflict(
                    f"Another publish{who} is writing into {self.path.parent}; wait for it "
                    "to finish or choose another --out folder."
                ) from None
            except OSError:
                os.close(fd)
                raise
            # The previous holder may have removed the file between our open and flock:
            # then we hold a lock on a name nobody else sees; start again.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)  # releases the flock
        self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def temp_name(name: str) -> str:
    """A fresh hidden temp-file name for the output ``name``."""
    return f".{name}.tmp-{secrets.token_hex(6)}"


def write_temp(data: bytes, path: Path) -> None:
    """Create ``path`` (must not exist) holding ``data``, fsynced; remove it on any error.

    Raises OutputConflict with the system's reason (a full disk says "No space left on
    device").
    """
    try:
        # 0o644 before the umask: published photos are meant to be readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"cannot write in {path.parent}: {exc.strerror}") from exc
        raise OutputConflict(f"cannot write in {path.parent}: {exc.strerror or exc}") from exc
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        unlink_quietly(path)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"cannot write the output: {exc.strerror}") from exc
        raise OutputConflict(f"cannot write the output: {exc.strerror or exc}") from exc


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
    exists (the temp file is kept for the caller to deal with)."""
    try:
        os.link(temp, dest)
    except FileExistsError as exc:
        raise OutputConflict(f"{dest.name} exists") from exc
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        # No hard links (FAT/exFAT): check-then-rename, safe under the folder lock.
        if os.path.lexists(dest):
            raise OutputConflict(f"{dest.name} exists") from exc
        os.replace(temp, dest)
    fsync_dir(dest.parent)
    unlink_quietly(temp)


def fsync_dir(directory: Path) -> None:
    """Make a folder's new or removed entries durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # some filesystems cannot fsync a directory
            raise
    finally:
        os.close(fd)


def remove_stale_temps(folder: Path, keep: set[str]) -> list[str]:
    """Delete hidden temp files a killed run left in ``folder``, except those in ``keep``
    (committed outputs still to be revealed). Returns the names removed."""
    removed = []
    for entry in os.scandir(folder):
        if entry.name in keep or not TEMP_RE.match(entry.name):
            continue
        if entry.is_file(follow_symlinks=False):
            unlink_quietly(Path(entry.path))
            removed.append(entry.name)
    return removed


def file_sha256(path: Path) -> str | None:
    """Hex SHA-256 of a file's bytes, or None if it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_atomic(data: bytes, dest: Path) -> None:
    """Create ``dest`` holding ``data``, durably, or raise and leave nothing behind.

    Never overwrites: an existing ``dest`` (file, directory or dangling link) raises
    OutputConflict. The bytes go to a hidden ``.{name}.tmp-<random>`` file in the same
    directory, are fsynced, then hard-linked to ``dest`` (which fails if ``dest`` has
    appeared meanwhile, so there is no check-then-write race) and the directory is fsynced.
    On filesystems without hard links it falls back to an existence check plus
    ``os.replace``, which has a small race window. Any error, including I/O errors such
    as a full disk, raises OutputConflict with the temp file removed and ``dest`` absent.
    """
    dest = Path(dest)
    if os.path.lexists(dest):
        raise OutputConflict(f"{dest} exists; choose another --out or remove it")
    directory = dest.parent
    tmp = _create_temp(directory, dest.name)
    linked = False
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            linked = _link_no_clobber(tmp, dest)
            fsync_dir(directory)
        except OutputConflict:
            raise
        except OSError as exc:
            if linked:
                # dest is ours but not durable; a raised error must mean "no output".
                unlink_quietly(dest)
            raise OutputConflict(f"cannot write {dest}: {exc.strerror or exc}") from exc
    finally:
        unlink_quietly(tmp)


def _create_temp(directory: Path, name: str) -> Path:
    for _ in range(16):
        tmp = directory / f".{name}.tmp-{secrets.token_hex(6)}"
        try:
            # 0o644 before the umask: published photos are meant to be readable.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputConflict(f"cannot write in {directory}: {exc.strerror}") from exc
        os.close(fd)
        return tmp
    raise OutputConflict(f"cannot create a temporary file in {directory}")


def _link_no_clobber(tmp: Path, dest: Path) -> bool:
    """Give ``tmp`` the name ``dest`` without replacing an existing file; True once named."""
    try:
        os.link(tmp, dest)
        return True
    except FileExistsError as exc:
        raise OutputConflict(f"{dest} exists; choose another --out or remove it") from exc
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    if os.path.lexists(dest):
        raise OutputConflict(f"{dest} exists; choose another --out or remove it")
    os.replace(tmp, dest)
    return True
