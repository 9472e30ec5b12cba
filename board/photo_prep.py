"""Turn a photo file into a board photo: upright pixels only, re-encoded, with its date.

The file is decoded with `pipeline.loading.load_image` (which refuses damaged or doubtful
files and applies the EXIF orientation), scaled to at most `MAX_SIDE` pixels and
re-encoded from pixels with `pipeline.writing.encode_clean`, so no metadata of the
original (GPS, serial numbers, names in comments) is stored. The day it was taken comes
from EXIF ``DateTimeOriginal`` when the file has one, else from the caller (``--taken``);
a given date wins over EXIF (a camera clock can be wrong) and the audit says which.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

from consent.errors import MedicalError
from pipeline.loading import exif_taken, load_image
from pipeline.writing import OutputFormat, encode_clean

MAX_SIDE = 800  # px: sharp at 35 mm wide on paper (~580 dpi), small in the database


class DateSource(enum.Enum):
    """Where a board photo's date came from (the audit entry says which)."""

    EXIF = "exif"  # the file's EXIF DateTimeOriginal
    GIVEN = "given"  # the caller's --taken, which wins over EXIF


@dataclass(frozen=True)
class PreparedPhoto:
    """A board photo ready to store: clean ``jpeg`` bytes, ``taken_on``, where the date
    came from and the sha256 of the source file."""

    jpeg: bytes
    taken_on: date
    date_source: DateSource
    source_sha256: str


def _shrink(pixels: np.ndarray) -> np.ndarray:
    h, w = pixels.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return pixels
    ratio = MAX_SIDE / max(h, w)
    size = (max(1, round(w * ratio)), max(1, round(h * ratio)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))


def prepare_photo(path: Path, taken: date | None = None) -> PreparedPhoto:
    """Decode, shrink and re-encode ``path``; raises `UnreadableImage` or `MedicalError`."""
    path = Path(path)
    loaded = load_image(path)
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != loaded.sha256:
        raise MedicalError(f"{path.name} changed while it was being read; try again.")
    from_exif = exif_taken(data)
    if taken is None and from_exif is None:
        raise MedicalError(
            f"{path.name} does not say when it was taken (no EXIF DateTimeOriginal); "
            "give the date with --taken YYYY-MM-DD."
        )
    jpeg = encode_clean(_shrink(loaded.pixels), OutputFormat.JPEG, quality=90)
    if taken is not None:
        return PreparedPhoto(jpeg, taken, DateSource.GIVEN, loaded.sha256)
    assert from_exif is not None
    return PreparedPhoto(jpeg, from_exif, DateSource.EXIF, loaded.sha256)
