"""Matching faces to enrolled pupils, and the keep-or-blur decision.

"Keep" has to be earned: a face stays clear only when it is large enough to recognise,
its nearest enrolled pupil is within a strict tolerance, that pupil is clearly nearer
than every other enrolled pupil, and that pupil's consent allows the purpose on the
publish date. Everything else is blurred, and every decision carries its reason.

Encodings are dlib's 128-d face descriptors (face_recognition's ``face_encodings``);
distances are Euclidean, as in ``face_recognition.face_distance``.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .boxes import Box

# face_recognition's default tolerance is 0.6; at 0.6, 1.6% of different-person pairs
# matched in our measurements (LFW + deepface photos), at 0.45 still 0.06%. Keeping a
# face is the dangerous error, so the default sits well below both (docs/matching.md).
DEFAULT_TOLERANCE = 0.40
DEFAULT_MARGIN = 0.08
# dlib's recogniser aligns faces to 150 px chips; below about 60 px its encodings scatter.
DEFAULT_MIN_FACE_PX = 60


class Decision(enum.Enum):
    KEPT = "kept"
    BLURRED = "blurred"


class Reason(enum.Enum):
    """Why a face was kept or blurred (``report.json`` prints the value)."""

    MATCHED_WITH_CONSENT = "matched a pupil whose consent allows this purpose"
    TOO_SMALL = "face too small to recognise reliably"
    NOT_ENCODABLE = "face could not be encoded"
    NO_GALLERY = "no pupils are enrolled"
    NO_MATCH = "no enrolled pupil within tolerance"
    AMBIGUOUS = "two enrolled pupils are too close to tell apart"
    NO_CONSENT = "matched a pupil without consent for this purpose"
    DUPLICATE = "pupil already matched to a closer face in this photo"


@dataclass(frozen=True)
class MatchSettings:
    """The decision rule's thresholds, recorded with every publish."""

    tolerance: float = DEFAULT_TOLERANCE
    margin: float = DEFAULT_MARGIN
    min_face_px: int = DEFAULT_MIN_FACE_PX

    def describe(self) -> dict[str, object]:
        return {
            "tolerance": self.tolerance,
            "margin": self.margin,
            "min_face_px": self.min_face_px,
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

    def to_report(self) -> dict[str, object]:
        return {
            "box": self.box.to_list(),
            "decision": self.decision.value,
            "pupil_id": self.pupil_id,
            "distance": None if self.distance is None else round(self.distance, 4),
            "reason": self.reason.value,
        }


@lru_cache(maxsize=1)
def _face_recognition():  # type: ignore[no-untyped-def]
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


def encode_faces(pixels: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray | None]:
    """dlib 128-d encodings of the faces in ``boxes`` (None where dlib finds no landmarks)."""
    face_recognition = _face_recognition()
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


def pupil_distances(
    encoding: np.ndarray, gallery: Mapping[str, np.ndarray]
) -> list[tuple[float, str]]:
    """(distance, pupil_id) for every enrolled pupil, nearest first.

    A pupil's distance is to their nearest reference: the references of one pupil are
    several photos of the same face.
    """
    result = []
    for pupil_id, refs in gallery.items():
        d = np.linalg.norm(np.asarray(refs, np.float64) - encoding, axis=1)
        result.append((float(d.min()), pupil_id))
    result.sort()
    return result


def decide(
    boxes: Sequence[Box],
    encodings: Sequence[np.ndarray | None],
    gallery: Mapping[str, np.ndarray],
    permitted: set[str],
    settings: MatchSettings,
) -> list[FaceDecision]:
    """Keep or blur each face.

    ``gallery`` holds every enrolled pupil (consented or not), so that the margin rule
    also guards against a non-consented look-alike. ``permitted`` is the pupil IDs whose
    consent allows this purpose on the publish date. A pupil can be kept at most once per
    photo: if two faces match the same pupil, only the nearer is kept.
    """
    if len(boxes) != len(encodings):
        raise ValueError("one encoding (or None) per box")
    decisions: list[FaceDecision] = []
    for box, enc in zip(boxes, encodings, strict=True):
        decisions.append(_decide_one(box, enc, gallery, permitted, settings))
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


def _decide_one(
    box: Box,
    enc: np.ndarray | None,
    gallery: Mapping[str, np.ndarray],
    permitted: set[str],
    s: MatchSettings,
) -> FaceDecision:
    if box.size < s.min_face_px:
        return FaceDecision(box, Decision.BLURRED, Reason.TOO_SMALL)
    if enc is None:
        return FaceDecision(box, Decision.BLURRED, Reason.NOT_ENCODABLE)
    if not gallery:
        return FaceDecision(box, Decision.BLURRED, Reason.NO_GALLERY)
    ranked = pupil_distances(enc, gallery)
    nearest, pupil_id = ranked[0]
    if nearest > s.tolerance:
        return FaceDecision(box, Decision.BLURRED, Reason.NO_MATCH, None, nearest)
    if len(ranked) > 1 and ranked[1][0] - nearest < s.margin:
        return FaceDecision(box, Decision.BLURRED, Reason.AMBIGUOUS, None, nearest)
    if pupil_id not in permitted:
        return FaceDecision(box, Decision.BLURRED, Reason.NO_CONSENT, pupil_id, nearest)
    return FaceDecision(box, Decision.KEPT, Reason.MATCHED_WITH_CONSENT, pupil_id, nearest)
