"""Encode output files from pixels only, and write them without ever overwriting.

Nothing from the input file reaches the output: :func:`encode_clean` builds a fresh image
from the pixel array (as mat2 re-renders pixels) and then checks its own bytes with the
container walkers in :mod:`pipeline.metadata`, so an encoder that starts adding metadata
in a future Pillow is caught here rather than on the school website.
"""

from __future__ import annotations

import enum
import errno
import hashlib
import io
import os
import secrets
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.errors import OutputConflict, UnsafeOutput
from pipeline.metadata import describe, find_metadata
from pipeline.outputs import fsync_dir, unlink_quietly

# errno values meaning "this filesystem cannot hard-link" (FAT/exFAT, some SMB mounts).
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}


class OutputFormat(enum.Enum):
    """Output file formats; the value is Pillow's format name, so ``OutputFormat("PNG")``."""

    JPEG = "JPEG"
    PNG = "PNG"
    WEBP = "WEBP"

    @property
    def suffix(self) -> str:
        """The file-name suffix, with its dot (``".jpg"``)."""
        return {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}[self.value]


def encode_clean(pixels: np.ndarray, fmt: OutputFormat, *, quality: int = 92) -> bytes:
    """Encode (height, width, 3) uint8 RGB ``pixels`` as ``fmt`` with no metadata at all.

    ``quality`` (1-100) applies to JPEG and WebP: 92 keeps faces and text crisp at about
    twice the size of 75; PNG is lossless and ignores it. JPEG uses 4:2:0 chroma
    subsampling, baseline (not progressive) and optimised Huffman tables; its only APPn
    is the JFIF header Pillow always writes (version and a 1:1 aspect, no thumbnail).
    Raises UnsafeOutput if the encoded bytes still show any metadata.
    """
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        raise TypeError("pixels must be a uint8 numpy array")
    if pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        raise ValueError(f"pixels must have shape (height, width, 3), got {pixels.shape}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    image = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
    buf = io.BytesIO()
    if fmt is OutputFormat.JPEG:
        image.save(buf, "JPEG", quality=quality, optimize=True, progressive=False)
    elif fmt is OutputFormat.PNG:
        image.save(buf, "PNG")
    elif fmt is OutputFormat.WEBP:
        image.save(buf, "WEBP", quality=quality)
    else:  # pragma: no cover - the enum is closed
        raise ValueError(f"unknown output format {fmt!r}")
    data = buf.getvalue()
    findings = find_metadata(data)
    if findings:
        raise UnsafeOutput(f"encoded {fmt.value} still carries {describe(findings)}")
    return data


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``, the digest the audit log records."""
    return hashlib.sha256(data).hexdigest()


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
