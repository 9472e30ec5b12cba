"""The one box type of the project.

Every box is ``Box(x, y, w, h)``: top-left corner and size, in pixels of the *upright*
image (after EXIF orientation is applied), floats so that scaling and merging do not
round twice. ``report.json`` prints the same order, rounded to whole pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box: ``x, y`` top-left corner, ``w, h`` size, in pixels."""

    x: float
    y: float
    w: float
    h: float

    @classmethod
    def from_corners(cls, x1: float, y1: float, x2: float, y2: float) -> Box:
        return cls(x1, y1, x2 - x1, y2 - y1)

    @property
    def x2(self) -> float:
        return self.x + self.w

    @property
    def y2(self) -> float:
        return self.y + self.h

    @property
    def area(self) -> float:
        return max(self.w, 0.0) * max(self.h, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    @property
    def size(self) -> float:
        """The shorter side, the figure that decides whether a face can be recognised."""
        return min(self.w, self.h)

    def scaled(self, factor: float) -> Box:
        """The box enlarged (or shrunk) by ``factor`` about its centre."""
        cx, cy = self.center
        w, h = self.w * factor, self.h * factor
        return Box(cx - w / 2, cy - h / 2, w, h)

    def expanded(self, left: float, top: float, right: float, bottom: float) -> Box:
        """The box grown on each side by a fraction of its own width (sides) or height."""
        return Box(
            self.x - left * self.w,
            self.y - top * self.h,
            self.w * (1 + left + right),
            self.h * (1 + top + bottom),
        )

    def clipped(self, width: int, height: int) -> Box:
        """The part of the box inside an image of ``width`` x ``height`` (may be empty)."""
        x1, y1 = min(max(self.x, 0.0), width), min(max(self.y, 0.0), height)
        x2, y2 = min(max(self.x2, 0.0), width), min(max(self.y2, 0.0), height)
        return Box(x1, y1, x2 - x1, y2 - y1)

    def intersection(self, other: Box) -> float:
        """Area shared with ``other``."""
        w = min(self.x2, other.x2) - max(self.x, other.x)
        h = min(self.y2, other.y2) - max(self.y, other.y)
        return w * h if w > 0 and h > 0 else 0.0

    def iou(self, other: Box) -> float:
        """Intersection over union, 0.0 for disjoint boxes."""
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def pixel_slices(self, width: int, height: int) -> tuple[slice, slice]:
        """Row and column slices covering the box (rounded outwards), clipped to the image."""
        c = self.clipped(width, height)
        return (
            slice(int(math.floor(c.y)), int(math.ceil(c.y2))),
            slice(int(math.floor(c.x)), int(math.ceil(c.x2))),
        )

    def to_list(self) -> list[int]:
        """``[x, y, w, h]`` rounded to whole pixels, the order ``report.json`` uses."""
        return [round(self.x), round(self.y), round(self.w), round(self.h)]

    def to_trbl(self) -> tuple[int, int, int, int]:
        """``(top, right, bottom, left)`` ints, the order face_recognition expects."""
        return (round(self.y), round(self.x2), round(self.y2), round(self.x))
