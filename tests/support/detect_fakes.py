"""Stand-in detection passes for the detection stage's exact tests (no model loads)."""

from __future__ import annotations

import numpy as np

from pipeline.boxes import Box
from pipeline.detection import Detection


class Fixed:
    """A pass that reports the same boxes, ``(box, score)`` pairs, whatever it is shown."""

    def __init__(self, name: str, *dets: tuple[Box, float]) -> None:
        self.name = name
        self.dets = [Detection(b, s, name) for b, s in dets]

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        return list(self.dets)
