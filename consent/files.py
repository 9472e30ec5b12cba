"""Safe file writes: create exclusively, write, fsync, never clobber; or replace atomically.

The secret and medical keys, published photos, medical boards, subject access exports and
publish reports are all written here, so the rules are kept in one place:

- A new file never replaces an existing one. :func:`create_exclusive` opens with
  ``O_EXCL``; :func:`write_new` writes a hidden temp file and hard-links it to its name,
  which fails if the name appeared meanwhile (no check-then-write race). On filesystems
  without hard links (FAT/exFAT, some SMB mounts) it falls back to an existence check plus
  ``os.replace``, which has a small race window unless the caller holds a lock on the folder.
- Bytes are fsynced before a file gets its visible name, and the folder is fsynced after, so
  a crash leaves either the whole file or none of it.
- The mode is set when the file is created, never after: `PRIVATE` (0600) for anything
  about a child or a key, `PUBLIC` (0644 before the umask) for published photos.
- Any failure raises `FileConflict` (the name is taken; that file is left untouched) or
  `FileWriteError` (the system's reason, e.g. a full disk), with no temp file and no partial
  file left behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
from pathlib import Path

from consent.errors import FileConflict, FileWriteError

PRIVATE = 0o600  # keys, medical boards, exports: the owner only
PUBLIC = 0o644  # published photos are meant to be readable (the umask still applies)

# Hidden temp files this module creates: ".<name>.tmp-<12 hex digits>".
TEMP_RE = re.compile(r"^\..+\.tmp-[0-9a-f]{12}$")
# errno values meaning "this filesystem cannot hard-link" (FAT/exFAT, some SMB mounts).
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL


def temp_name(name: str) -> str:
    """A fresh hidden temp-file name for the file ``name`` (matches `TEMP_RE`)."""
    return f".{name}.tmp-{secrets.token_hex(6)}"


def create_exclusive(path: Path, data: bytes, *, mode: int, sync_folder: bool = True) -> None:
    """Create ``path`` (it must not exist) with ``mode`` holding ``data``, fsynced.

    ``sync_folder`` also fsyncs the folder so the new name survives a crash; a caller that
    makes the name durable later (publish's temp files, see `link_no_clobber`) can skip it.
    Raises `FileConflict` if ``path`` exists, `FileWriteError` otherwise; on any error the
    file is removed again.
    """
    path = Path(path)
    try:
        fd = os.open(path, _NEW, mode)
    except FileExistsError as exc:
        raise FileConflict(path) from exc
    except OSError as exc:
        raise FileWriteError(path, exc, step="create") from exc
    try:
        _write_and_close(fd, data)
        if sync_folder:
            fsync_dir(path.parent)
    except OSError as exc:
        unlink_quietly(path)
        raise FileWriteError(path, exc, step="write") from exc


def write_new(path: Path, data: bytes, *, mode: int) -> None:
    """Create ``path`` with ``mode`` holding ``data`` whole, durably, or leave nothing.

    Never overwrites: an existing ``path`` (file, directory or dangling link) raises
    `FileConflict`, also when it appears while the bytes are being written. Other readers
    see either no file or the complete one, never a partial file. Any other error raises
    `FileWriteError` with the temp file removed and ``path`` absent.
    """
    path = Path(path)
    if os.path.lexists(path):
        raise FileConflict(path)
    temp, fd = _open_temp(path, mode)
    named = False
    try:
        _write_and_close(fd, data)
        _link(temp, path)
        named = True
        fsync_dir(path.parent)
    except OSError as exc:
        if named:  # the name is ours but not durable; an error must mean "no file"
            unlink_quietly(path)
        raise FileWriteError(path, exc, step="write") from exc
    finally:
        unlink_quietly(temp)


def link_no_clobber(temp: Path, dest: Path) -> None:
    """Give the complete, fsynced ``temp`` file the name ``dest`` without replacing
    anything, make the name durable, then drop the temp name.

    Raises `FileConflict` if ``dest`` exists, `FileWriteError` if naming or the folder's
    fsync fails; ``temp`` is kept in both cases for the caller to finish or remove.
    """
    try:
        _link(temp, dest)
        fsync_dir(dest.parent)
    except OSError as exc:
        raise FileWriteError(dest, exc, step="write") from exc
    unlink_quietly(temp)


def replace_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path``, replacing any file there in one step, durably.

    Readers see the old file or the new one, never a mix. A new file gets ``mode``; the
    bytes go to a hidden temp file, fsynced, renamed over ``path``, then the folder is
    fsynced. Raises `FileWriteError`; an error before the rename leaves ``path`` as it was.
    """
    path = Path(path)
    temp, fd = _open_temp(path, mode)
    try:
        _write_and_close(fd, data)
        os.replace(temp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise FileWriteError(path, exc, step="write") from exc
    finally:
        unlink_quietly(temp)


def fsync_dir(directory: Path) -> None:
    """Make a folder's new or removed entries durable.

    Windows cannot open a folder as a file (and makes new names durable on its own), so
    there this does nothing."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # some filesystems cannot fsync a directory
            raise
    finally:
        os.close(fd)


def unlink_quietly(path: Path) -> None:
    """Remove ``path`` if it is there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _open_temp(path: Path, mode: int) -> tuple[Path, int]:
    """A new hidden temp file beside ``path`` and its descriptor, open for writing."""
    for _ in range(16):
        temp = path.parent / temp_name(path.name)
        try:
            return temp, os.open(temp, _NEW, mode)
        except FileExistsError:
            continue
        except OSError as exc:
            raise FileWriteError(path, exc, step="create") from exc
    raise FileWriteError(
        path, FileExistsError(errno.EEXIST, "no free temporary file name"), step="create"
    )


def _write_and_close(fd: int, data: bytes) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _link(temp: Path, dest: Path) -> None:
    """Name ``temp`` ``dest`` too, failing with `FileConflict` if ``dest`` exists."""
    try:
        os.link(temp, dest)
        return
    except FileExistsError as exc:
        raise FileConflict(dest, step="write") from exc
    except OSError as exc:
        # Windows names refusals of CreateHardLink (FAT/exFAT USB sticks, some network
        # shares) by winerror, with errnos that differ from POSIX: fall back on any.
        if exc.errno not in _NO_LINK and os.name != "nt":
            raise
    # No hard links: check, then rename. Safe against another photoconsent only under a
    # lock on the folder (publish holds one; see publishing.outputs.FolderLock).
    if os.path.lexists(dest):
        raise FileConflict(dest, step="write")
    os.replace(temp, dest)


def file_sha256(path: Path) -> str | None:
    """Hex SHA-256 of a file's bytes, or None if it cannot be read (gone, no permission)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()
