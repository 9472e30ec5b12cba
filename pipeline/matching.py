"""Matching faces to enrolled pupils, and the keep-or-blur decision.

"Keep" has to be earned: a face stays clear only when it is large enough to recognise,
its nearest enrolled pupil is within a strict tolerance, that pupil is clearly nearer
than every other enrolled pupil, and that pupil's consent allows the purpose on the
publish date. Everything else is blurred, and every decision carries its reason.

Encodings come from a recogniser (``pipeline.recognisers``: SFace by default, dlib for
older data directories) and are compared by its own distance (``pipeline.distances``);
``MatchSettings.recogniser`` says which. The module's own defaults below are dlib's first
rule, set on adults; a publish uses ``pipeline.recognisers.match_settings(name)``, the
recogniser's rule set on children (docs/matching.md).
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pipeline.boxes import Box
from pipeline.distances import distance_function

# face_recognition's default tolerance is 0.6; at 0.6, 1.6% of different-person pairs
# matched in our measurements (LFW + deepface photos), at 0.45 still 0.06%. Keeping a
# face is the dangerous error, so the default sits well below both (docs/matching.md).
DEFAULT_TOLERANCE = 0.40
DEFAULT_MARGIN = 0.08
# dlib's recogniser aligns faces to 150 px chips; below about 60 px its encodings scatter.
DEFAULT_MIN_FACE_PX = 60
# Variance of the Laplacian of the face scaled to 100 px. Sharp faces in LFW and deepface
# photos measured 40 and up (5th percentile 84); the same faces blurred by 3% of their
# width measured 26 at most. A face under it is never kept. It may go to review
# (review_low_quality): blurred children's faces drifted away from everyone's with SFace,
# not towards them (bench/matching.py section 7), so the review band holds for them too.
DEFAULT_MIN_SHARPNESS = 30.0
# With several references, their mean distance may exceed the tolerance by this much at
# most: one reference that happens to sit near a stranger must not carry the decision.
DEFAULT_AGREEMENT = 0.10
# Siblings look alike; between a pupil and a named sibling the margin is wider.
DEFAULT_SIBLING_MARGIN = 0.15
# Head turn (yaw, degrees from frontal, see yaw_from_landmarks) beyond which a face is not
# compared: alignment to a frontal template distorts a turned face, and its template drifts.
DEFAULT_MAX_YAW = 50.0
# How far the nose tip stands in front of the eyes and mouth corners (mean depth), per half
# the distance between the eye centres, in a frontal face: 0.75 (adult head models give
# about 0.8; children's flatter noses less, which makes the estimate err low for them).
NOSE_DEPTH_RATIO = 0.75


class Decision(enum.Enum):
    KEPT = "kept"
    BLURRED = "blurred"


class Reason(enum.Enum):
    """Why a face was kept or blurred (``report.json`` prints the value)."""

    MATCHED_WITH_CONSENT = "matched a pupil whose consent allows this purpose"
    TOO_SMALL = "face too small to recognise reliably"
    TOO_BLURRED = "face too blurred to recognise reliably"
    TURNED_AWAY = "face turned too far from the camera to recognise reliably"
    NOT_ENCODABLE = "face could not be encoded"
    NO_GALLERY = "no enrolled pupil may be kept for this purpose"
    NO_MATCH = "no enrolled pupil within tolerance"
    AMBIGUOUS = "two enrolled pupils are too close to tell apart"
    SIBLING_AMBIGUOUS = "the pupil and a sibling are too close to tell apart"
    REFERENCES_DISAGREE = "the pupil's reference photos do not agree on this face"
    NO_CONSENT = "matched a pupil without consent for this purpose"
    DUPLICATE = "pupil already matched to a closer face in this photo"
    UNCERTAIN = (
        "plausibly a permitted pupil, below the keep rule: blurred unless a reviewer approves"
    )
    # Review (publish --review, photoconsent review ...)
    NOT_APPROVED = "matched, but no reviewer approved keeping it"
    REJECTED = "a reviewer rejected the match"
    NO_BIOMETRICS = "no biometrics: blurred unless a reviewer un-blurs it"
    REVIEWER_UNBLURRED = "a reviewer un-blurred it as a pupil whose consent allows this purpose"
    APPROVED = "matched a pupil with consent, and a reviewer approved it"


@dataclass(frozen=True)
class MatchSettings:
    """The decision rule's thresholds, recorded with every publish."""

    tolerance: float = DEFAULT_TOLERANCE
    margin: float = DEFAULT_MARGIN
    min_face_px: int = DEFAULT_MIN_FACE_PX
    min_sharpness: float = DEFAULT_MIN_SHARPNESS
    agreement: float = DEFAULT_AGREEMENT
    sibling_margin: float = DEFAULT_SIBLING_MARGIN
    # Which recogniser made the encodings (pipeline.recognisers); it sets the distance.
    recogniser: str = "dlib"
    # The review band: a face not kept whose nearest pupil is permitted and within this
    # distance is UNCERTAIN (goes to review) rather than a plain no. None: no band.
    review: float | None = None
    # Faces turned further than this (degrees of yaw) are never kept. None: no limit.
    max_yaw: float | None = DEFAULT_MAX_YAW
    # Review of low-quality faces: a face that fails only the keep's quality gates
    # (sharpness, yaw) is compared too, and goes to review (UNCERTAIN, marked low quality)
    # when it is within the review band of a permitted pupil; it is never kept without a
    # reviewer. Off (the default) such faces are blurred uncompared. Only a review batch
    # turns it on (publishing.review.batch.create_batch): without a reviewer a low-quality
    # face can never be kept, so computing its template would be processing for nothing.
    review_low_quality: bool = False

    def describe(self) -> dict[str, object]:
        return {
            "recogniser": self.recogniser,
            "review": self.review,
            "tolerance": self.tolerance,
            "margin": self.margin,
            "min_face_px": self.min_face_px,
            "min_sharpness": self.min_sharpness,
            "agreement": self.agreement,
            "sibling_margin": self.sibling_margin,
            "max_yaw": self.max_yaw,
            "review_low_quality": self.review_low_quality,
        }


@dataclass(frozen=True)
class FaceDecision:
    """The outcome for one face. ``pupil_id`` is set only for a kept face or a pupil
    recognised without consent; ``distance`` is to the nearest pupil when computed."""

    box: Box
    decision: Decision
    reason: Reason
    pupil_id: str | None = None
    distance: float | None = None
    # For UNCERTAIN: the permitted pupil the face plausibly is (for review by pupil).
    candidate_id: str | None = None
    # For UNCERTAIN: the quality gate of the keep the face failed (TOO_BLURRED or
    # TURNED_AWAY), when it is low quality; its grid marks it "low quality photo".
    low_quality: Reason | None = None

    def to_report(self) -> dict[str, object]:
        extra: dict[str, object] = {}
        if self.candidate_id is not None:
            extra["candidate_pupil_id"] = self.candidate_id
        if self.low_quality is not None:
            extra["low_quality"] = self.low_quality.value
        return extra | {
            "box": self.box.to_list(),
            "decision": self.decision.value,
            "pupil_id": self.pupil_id,
            "distance": None if self.distance is None else round(self.distance, 4),
            "reason": self.reason.value,
        }


@lru_cache(maxsize=1)
def face_recognition_module():  # type: ignore[no-untyped-def]
    """Import face_recognition once, undoing the Pillow global it sets on import.

    face_recognition's api module sets ``ImageFile.LOAD_TRUNCATED_IMAGES = True``, which
    would make Pillow pad a cut-off photo with grey instead of refusing it.
    """
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    with warnings.catch_warnings():
        # face_recognition_models imports pkg_resources (hence setuptools < 81).
        warnings.simplefilter("ignore", UserWarning)
        import face_recognition

    ImageFile.LOAD_TRUNCATED_IMAGES = before
    return face_recognition


def load_models() -> None:
    """Load the matching models now (dlib's, through face_recognition), so that the first
    photo does not pay for it; a long-running service calls it at start-up."""
    face_recognition_module()


def encode_faces(pixels: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray | None]:
    """dlib 128-d encodings of the faces in ``boxes`` (None where dlib finds no landmarks)."""
    face_recognition = face_recognition_module()
    out: list[np.ndarray | None] = []
    h, w = pixels.shape[:2]
    for box in boxes:
        top, right, bottom, left = box.clipped(w, h).to_trbl()
        if bottom - top < 8 or right - left < 8:
            out.append(None)
            continue
        enc = face_recognition.face_encodings(
            pixels, known_face_locations=[(top, right, bottom, left)], num_jitters=1
        )
        out.append(enc[0].astype(np.float64) if enc else None)
    return out


def sharpness(pixels: np.ndarray, box: Box) -> float:
    """Variance of the Laplacian of the face, scaled to 100x100 grey (higher is sharper)."""
    import cv2

    rows, cols = box.pixel_slices(pixels.shape[1], pixels.shape[0])
    crop = pixels[rows, cols]
    if crop.size == 0:
        return 0.0
    grey = cv2.cvtColor(
        cv2.resize(crop, (100, 100), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY
    )
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def yaw_from_landmarks(points5: np.ndarray) -> float:
    """How far a face is turned left or right, in degrees (0 frontal, 90 profile).

    ``points5`` are (x, y) pixels in this order: eye centre on the image's left, eye
    centre on the image's right, nose tip, left and right mouth corners (as
    ``pipeline.recognisers.five_points`` gives them). Positive when the nose points to
    the image's right. Head roll and size do not matter: the offset of the nose from the
    centre of the eyes and mouth corners is measured along the line between the eyes.
    For a head turned by yaw t, seen from afar, that offset is ``NOSE_DEPTH_RATIO *
    tan(t)`` half eye-distances; the estimate inverts it. A degenerate shape (both eyes
    on one point) counts as profile.
    """
    p = np.asarray(points5, np.float64)
    if p.shape != (5, 2) or not np.isfinite(p).all():
        raise ValueError("five (x, y) landmarks are needed")
    eye_l, eye_r, nose, mouth_l, mouth_r = p
    axis = eye_r - eye_l
    half = float(np.linalg.norm(axis)) / 2
    if half < 1e-9:
        return 90.0
    centre = (eye_l + eye_r + mouth_l + mouth_r) / 4
    offset = float((nose - centre) @ (axis / (2 * half)))
    return float(np.degrees(np.arctan2(offset, NOSE_DEPTH_RATIO * half)))


@dataclass(frozen=True)
class PupilDistance:
    """How far a face is from one pupil: to the nearest reference, and on average."""

    nearest: float
    mean: float
    references: int
    pupil_id: str


def pupil_distances(
    encoding: np.ndarray, gallery: Mapping[str, np.ndarray], recogniser: str = "dlib"
) -> list[PupilDistance]:
    """Distances from ``encoding`` to every enrolled pupil, nearest first.

    A pupil's distance is to their nearest reference (the references are several photos
    of the same face); the mean over references is kept for the agreement rule.
    """
    distance = distance_function(recogniser)
    result = []
    for pupil_id, refs in gallery.items():
        d = distance(refs, encoding)
        result.append(PupilDistance(float(d.min()), float(d.mean()), len(d), pupil_id))
    result.sort(key=lambda p: (p.nearest, p.pupil_id))
    return result


def decide(
    boxes: Sequence[Box],
    encodings: Sequence[np.ndarray | None],
    gallery: Mapping[str, np.ndarray],
    permitted: set[str],
    settings: MatchSettings,
    *,
    sharpness: Sequence[float | None] | None = None,
    yaw: Sequence[float | None] | None = None,
    siblings: Mapping[str, frozenset[str]] | None = None,
) -> list[FaceDecision]:
    """Keep or blur each face.

    ``gallery`` holds the candidate pupils (consented or not), so that the margin rule
    also guards against a non-consented look-alike. ``permitted`` is the pupil IDs whose
    consent allows this purpose on the publish date. ``sharpness`` (see :func:`sharpness`)
    is per face, None where not measured; so is ``yaw`` (degrees, see
    :func:`yaw_from_landmarks`). A face failing those gates is blurred; with
    ``settings.review_low_quality`` and an encoding it is compared anyway and, within the
    review band of a permitted pupil, UNCERTAIN with ``low_quality`` set: never kept
    without a reviewer. ``siblings`` maps a pupil to the pupils named
    as their siblings; between them the wider ``sibling_margin`` applies. A pupil can be
    kept at most once per photo: if two faces match the same pupil, only the nearer is.
    """
    if len(boxes) != len(encodings):
        raise ValueError("one encoding (or None) per box")
    sharp = list(sharpness) if sharpness is not None else [None] * len(boxes)
    turn = list(yaw) if yaw is not None else [None] * len(boxes)
    sibs = siblings or {}
    decisions = [
        _decide_one(box, enc, sh, yw, gallery, permitted, settings, sibs)
        for box, enc, sh, yw in zip(boxes, encodings, sharp, turn, strict=True)
    ]
    # One face per pupil: the nearer keeps, the others are blurred.
    best: dict[str, int] = {}
    for i, d in enumerate(decisions):
        if d.decision is Decision.KEPT and d.pupil_id is not None:
            j = best.get(d.pupil_id)
            if j is None or (d.distance or 0) < (decisions[j].distance or 0):
                best[d.pupil_id] = i
    for i, d in enumerate(decisions):
        if d.decision is Decision.KEPT and best.get(d.pupil_id or "") != i:
            decisions[i] = FaceDecision(
                d.box, Decision.BLURRED, Reason.DUPLICATE, d.pupil_id, d.distance
            )
    return decisions


def quality_gate(sharp: float | None, yaw: float | None, s: MatchSettings) -> Reason | None:
    """The keep's quality gate a face fails (TOO_BLURRED, then TURNED_AWAY), or None.
    Unmeasured (None) passes: the caller measures what it can."""
    if sharp is not None and sharp < s.min_sharpness:
        return Reason.TOO_BLURRED
    if yaw is not None and s.max_yaw is not None and abs(yaw) > s.max_yaw:
        return Reason.TURNED_AWAY
    return None


def _review_low_quality(
    box: Box,
    enc: np.ndarray | None,
    gate: Reason,
    gallery: Mapping[str, np.ndarray],
    permitted: set[str],
    s: MatchSettings,
) -> FaceDecision:
    """A face below the keep's quality gates: blurred for ``gate``, unless low-quality
    review is on and its nearest pupil is permitted and within the review band. Then it
    is UNCERTAIN, that pupil the candidate: a reviewer may approve it, nothing keeps it.

    The margin and agreement rules are not applied: they decide keeps, and matching never
    keeps this face. The reviewer sees it beside the pupil's reference."""
    blur = Decision.BLURRED
    if not s.review_low_quality or s.review is None or enc is None or not gallery:
        return FaceDecision(box, blur, gate)
    top = pupil_distances(enc, gallery, s.recogniser)[0]
    if top.nearest <= s.review and top.pupil_id in permitted:
        return FaceDecision(
            box, blur, Reason.UNCERTAIN, None, top.nearest, top.pupil_id, low_quality=gate
        )
    return FaceDecision(box, blur, gate, None, top.nearest)


def _decide_one(
    box: Box,
    enc: np.ndarray | None,
    sharp: float | None,
    yaw: float | None,
    gallery: Mapping[str, np.ndarray],
    permitted: set[str],
    s: MatchSettings,
    siblings: Mapping[str, frozenset[str]],
) -> FaceDecision:
    blur = Decision.BLURRED
    if box.size < s.min_face_px:
        return FaceDecision(box, blur, Reason.TOO_SMALL)
    gate = quality_gate(sharp, yaw, s)
    if gate is not None:
        return _review_low_quality(box, enc, gate, gallery, permitted, s)
    if not gallery:
        return FaceDecision(box, blur, Reason.NO_GALLERY)
    if enc is None:
        return FaceDecision(box, blur, Reason.NOT_ENCODABLE)
    ranked = pupil_distances(enc, gallery, s.recogniser)
    top = ranked[0]
    uncertain = s.review is not None and top.nearest <= s.review and top.pupil_id in permitted
    if uncertain:
        maybe = FaceDecision(box, blur, Reason.UNCERTAIN, None, top.nearest, top.pupil_id)
    if top.nearest > s.tolerance:
        return maybe if uncertain else FaceDecision(box, blur, Reason.NO_MATCH, None, top.nearest)
    for other in ranked[1:]:
        is_sibling = other.pupil_id in siblings.get(top.pupil_id, frozenset())
        margin = s.sibling_margin if is_sibling else s.margin
        if other.nearest - top.nearest < margin:
            reason = Reason.SIBLING_AMBIGUOUS if is_sibling else Reason.AMBIGUOUS
            return maybe if uncertain else FaceDecision(box, blur, reason, None, top.nearest)
        if other.nearest - top.nearest >= max(s.margin, s.sibling_margin):
            break  # everyone further on is further still
    if top.references > 1 and top.mean > s.tolerance + s.agreement:
        if uncertain:
            return maybe
        return FaceDecision(box, blur, Reason.REFERENCES_DISAGREE, None, top.nearest)
    if top.pupil_id not in permitted:
        return FaceDecision(box, blur, Reason.NO_CONSENT, top.pupil_id, top.nearest)
    return FaceDecision(box, Decision.KEPT, Reason.MATCHED_WITH_CONSENT, top.pupil_id, top.nearest)
