"""Encode output files from pixels only.

Nothing from the input file reaches the output: :func:`encode_clean` builds a fresh image
from the pixel array (as mat2 re-renders pixels) and then checks its own bytes with the
container walkers in :mod:`pipeline.formats.findings`, so an encoder that starts adding metadata
in a future Pillow is caught here rather than on the school website.
"""

from __future__ import annotations

import enum
import hashlib
import io

import numpy as np
from PIL import Image

from pipeline.errors import UnsafeOutput
from pipeline.formats.findings import describe, find_metadata


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
