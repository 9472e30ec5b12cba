"""Irreversible redaction of faces: the whole head, with margin, beyond recognition.

A blur that can be undone or recognised is not redaction (McPherson et al. 2016
re-identified blurred and pixelated faces at 71% top-1). So every style first throws the
face's detail away, keeping only a few averages of colour, and only then smooths:
there is nothing left in the pixels to de-blur.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import numpy as np

from pipeline.boxes import Box

# How far the head reaches beyond a detector's face box, as fractions of that box: the
# face box runs roughly brow to chin and cheek to cheek; hair, forehead and ears lie
# outside it, and a face turned sideways has the back of its head beyond one side.
# Measured with bench/detection_recall.py (head coverage).
HEAD_LEFT, HEAD_TOP, HEAD_RIGHT, HEAD_BOTTOM = 0.45, 0.8, 0.45, 0.25


class RedactionStyle(enum.Enum):
    """How a head is hidden. All three keep no recognisable detail."""

    BLUR = "blur"  # a few colour averages, smoothed: reads as a soft blob
    PIXELATE = "pixelate"  # at most PIXELATE_BLOCKS blocks across the head
    SOLID = "solid"  # one flat colour


# Cells kept across the shorter side of a head: 3 for blur, 5 for pixelation (a 5x7 mosaic
# of a head is a colour pattern, not a face; 16x16 and finer was what McPherson et al. beat).
BLUR_CELLS = 3
PIXELATE_BLOCKS = 5
SOLID_COLOUR = (48, 48, 48)
# The blur style smooths its few colour averages at this size (shorter side, pixels).
SMOOTH_SIDE = 64


def head_region(face: Box) -> Box:
    """The region to redact for a detected face box: the whole head with margin."""
    return face.expanded(HEAD_LEFT, HEAD_TOP, HEAD_RIGHT, HEAD_BOTTOM)


def redact(pixels: np.ndarray, regions: Iterable[Box], style: RedactionStyle) -> np.ndarray:
    """Return a copy of ``pixels`` (H, W, 3 uint8) with every region redacted.

    Regions are in pixels of ``pixels`` and are clipped to the image; overlapping regions
    are each redacted in turn, so an overlap is never left partly clear.
    """
    out = pixels.copy()
    h, w = out.shape[:2]
    for region in regions:
        rows, cols = region.pixel_slices(w, h)
        patch = out[rows, cols]
        if patch.size == 0:
            continue
        out[rows, cols] = _redact_patch(patch, style)
    return out


def _redact_patch(patch: np.ndarray, style: RedactionStyle) -> np.ndarray:
    import cv2

    ph, pw = patch.shape[:2]
    if style is RedactionStyle.SOLID:
        return np.broadcast_to(np.array(SOLID_COLOUR, np.uint8), patch.shape).copy()
    cells = BLUR_CELLS if style is RedactionStyle.BLUR else PIXELATE_BLOCKS
    short = min(ph, pw)
    gw = max(1, round(cells * pw / short))
    gh = max(1, round(cells * ph / short))
    # INTER_AREA averages every pixel of a cell: the detail is gone after this line.
    tiny = cv2.resize(patch, (gw, gh), interpolation=cv2.INTER_AREA)
    if style is RedactionStyle.PIXELATE:
        return cv2.resize(tiny, (pw, ph), interpolation=cv2.INTER_NEAREST)
    # Smooth at a working size of at most SMOOTH_SIDE across the shorter side, then
    # scale up: the blob looks the same, but a 1,000 px head costs a 64 px blur instead of
    # a 750 px-wide kernel over a megapixel (seconds per head on a 12 MP crowd photo).
    scale = min(1.0, SMOOTH_SIDE / short)
    sw, sh = max(1, round(pw * scale)), max(1, round(ph * scale))
    smooth = cv2.resize(tiny, (sw, sh), interpolation=cv2.INTER_LINEAR)
    sigma = max(1.0, min(sw, sh) / 8)
    smooth = cv2.GaussianBlur(smooth, (0, 0), sigmaX=sigma, sigmaY=sigma)
    if (sw, sh) == (pw, ph):
        return smooth
    return cv2.resize(smooth, (pw, ph), interpolation=cv2.INTER_LINEAR)
