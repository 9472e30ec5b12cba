"""Small JPEG previews for the pages, as ``data:`` URIs: made in memory, never stored."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageDraw

from pipeline.boxes import Box

THUMB_PX = 360


def thumbnail_uri(
    pixels: np.ndarray, boxes: Iterable[tuple[Box, str]] = (), size: int = THUMB_PX
) -> str:
    """`thumbnail_jpeg` as a ``data:`` URI, for a page that shows it once."""
    data = thumbnail_jpeg(pixels, boxes, size)
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def thumbnail_jpeg(
    pixels: np.ndarray, boxes: Iterable[tuple[Box, str]] = (), size: int = THUMB_PX
) -> bytes:
    """``pixels`` ((h, w, 3) uint8 RGB) scaled to fit ``size`` px, each box drawn in its
    colour (black and white print too: a thick outline plus a thin one inside)."""
    image = Image.fromarray(pixels)
    scale = min(1.0, size / max(image.size))
    if scale < 1.0:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.LANCZOS,
        )
    draw = ImageDraw.Draw(image)
    for box, colour in boxes:
        corners = [box.x * scale, box.y * scale, box.x2 * scale, box.y2 * scale]
        draw.rectangle(corners, outline=colour, width=4)
        draw.rectangle([c + (3 if i < 2 else -3) for i, c in enumerate(corners)], outline="white")
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue()
