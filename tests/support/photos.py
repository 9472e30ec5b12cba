"""Small photo files made by the tests (no faces, no models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import piexif
from PIL import Image


def jpeg_file(path: Path, *, taken: str | None = None, seed: int = 0) -> Path:
    """A 96x120 noise JPEG at ``path``, with EXIF DateTimeOriginal ``taken``
    ("YYYY:MM:DD HH:MM:SS") when given; ``seed`` makes different photos."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (120, 96, 3), dtype=np.uint8)
    kwargs = {}
    if taken:
        kwargs["exif"] = piexif.dump({"Exif": {piexif.ExifIFD.DateTimeOriginal: taken.encode()}})
    Image.fromarray(pixels).save(path, "JPEG", quality=95, **kwargs)
    return path
