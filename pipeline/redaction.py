"""Irreversible redaction of faces: the whole head, with margin, beyond recognition.

A blur that can be undone or recognised is not redaction (McPherson et al. 2016
re-identified blurred and pixelated faces at 71% top-1). So every style first throws the
face's detail away, keeping only a few averages of colour, and only then smooths:
there is nothing left in the pixels to de-blur.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

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


# How far around a kept face its box is left clear of a neighbour's head margin, as a
# fraction of the kept box on every side. Matching encodes the face from dlib's 150 px
# chip, which reaches 25% of the face beyond its landmarks on every side (padding 0.25),
# and the landmarks span about the detector's box: a blur inside that chip changes the
# pupil's template, and check (or the next publish) no longer recognises the pupil.
KEPT_GUARD = 0.25


def kept_guard(face: Box) -> Box:
    """The part of the photo a kept face needs clear to still match: its box with guard."""
    return face.expanded(KEPT_GUARD, KEPT_GUARD, KEPT_GUARD, KEPT_GUARD)


def head_mask(
    face: Box, kept: Sequence[Box], width: int, height: int
) -> tuple[slice, slice, np.ndarray]:
    """Where to redact for the blurred face ``face`` in a ``width`` x ``height`` photo.

    Returns the row and column slices of its head region and a boolean mask over them:
    the whole head with margin, less every kept face's box with guard, plus the blurred
    face's own box always (rounded outwards). The margin is there for hair, ears and the
    back of a turned head; inside another pupil's kept face it would hide a face publish
    was allowed to show and break its match. The face box itself is what identifies, so
    where a blurred face and a kept face overlap, the blur wins (fail closed).
    """
    rows, cols = head_region(face).pixel_slices(width, height)
    mask = np.ones((rows.stop - rows.start, cols.stop - cols.start), bool)
    if mask.size == 0:
        return rows, cols, mask
    for other in kept:
        kr, kc = kept_guard(other).pixel_slices(width, height)
        mask[_within(kr, rows), _within(kc, cols)] = False
    own_r, own_c = face.pixel_slices(width, height)
    mask[_within(own_r, rows), _within(own_c, cols)] = True
    return rows, cols, mask


def _within(inner: slice, outer: slice) -> slice:
    """``inner`` (image coordinates) as a slice of the ``outer`` patch (may be empty)."""
    start = min(max(inner.start, outer.start), outer.stop) - outer.start
    stop = min(max(inner.stop, outer.start), outer.stop) - outer.start
    return slice(start, max(start, stop))


def redact_faces(
    pixels: np.ndarray, blurred: Iterable[Box], kept: Sequence[Box], style: RedactionStyle
) -> np.ndarray:
    """Return a copy of ``pixels`` with the head of every ``blurred`` face redacted, each
    ``kept`` face's box (with guard) left clear of a neighbour's head margin but never of
    a blurred face's own box. This is what publish writes: see :func:`head_mask`."""
    out = pixels.copy()
    h, w = out.shape[:2]
    for face in blurred:
        rows, cols, mask = head_mask(face, kept, w, h)
        if mask.size == 0:
            continue
        patch = out[rows, cols]
        redacted = _redact_patch(patch, style)
        out[rows, cols] = np.where(mask[:, :, None], redacted, patch)
    return out


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
