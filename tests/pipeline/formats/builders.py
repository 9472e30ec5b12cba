"""Hand-built container fixtures for the walker tests, made with Pillow and struct only.

They do not use the walkers under test: the place after a JPEG's first scan is found with
a scan of its own (ITU-T T.81 B.1.1.5: in entropy-coded data 0xFF is followed by 0x00 or
an RSTn marker, so the first other 0xFF pair is the next marker).
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

from tests.support import dirty


def progressive_jpeg() -> bytes:
    """A real progressive JPEG (several scans), as phones and web exports write them."""
    out = io.BytesIO()
    Image.fromarray(dirty.noisy_pixels(64, 48)).save(out, "JPEG", progressive=True, quality=90)
    return out.getvalue()


def segment(marker: int, payload: bytes) -> bytes:
    """One JPEG marker segment: 0xFF, the marker, a big-endian length, the payload."""
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def after_first_scan(data: bytes) -> int:
    """Offset of the marker that follows the first scan's entropy-coded data."""
    pos = 2
    while True:
        marker, (length,) = data[pos + 1], struct.unpack_from(">H", data, pos + 2)
        pos += 2 + length
        if marker == 0xDA:
            break
    while not (data[pos] == 0xFF and data[pos + 1] not in (0x00, *range(0xD0, 0xD8))):
        pos += 1
    return pos


def with_segment_after_first_scan(data: bytes, seg: bytes) -> bytes:
    """``data`` with ``seg`` inserted between its first and its second scan."""
    at = after_first_scan(data)
    assert data[at : at + 2] != b"\xff\xd9", "the JPEG has one scan only; use progressive_jpeg"
    return data[:at] + seg + data[at:]


def scans(data: bytes) -> int:
    """How many SOS segments Pillow's decoder will meet (checks the fixture is progressive)."""
    return data.count(b"\xff\xda")


def decodes(data: bytes) -> bool:
    """Pillow decodes ``data`` fully (an inserted segment must not break the picture)."""
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im).shape == (48, 64, 3)
