"""One photo through detection and matching: which faces are kept, which are blurred.

Shared by ``publish`` (which then redacts and writes) and ``check`` (which only judges),
so both apply exactly the same rule. The `Gallery` is plain data: who reads it from the
data directory is ``publishing.context``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from pipeline.detection import DetectionStage
from pipeline.errors import InvalidOptions
from pipeline.matching import (
    Decision,
    FaceDecision,
    MatchSettings,
    decide,
    sharpness,
    yaw_from_landmarks,
)
from pipeline.recognisers import dlib_landmarks, five_points, get_recogniser


@dataclass(frozen=True)
class Gallery:
    """Everything matching needs to know about the pupils for one purpose and date.

    ``encodings`` holds every enrolled pupil (consented or not) so the margin rule can
    guard against a non-consented look-alike; ``permitted`` maps the pupils whose
    consent allows the purpose to the consent record ID that allowed it. ``recogniser``
    names what made the encodings: matching refuses settings of another recogniser, since
    its thresholds would mean nothing on these distances.
    """

    encodings: Mapping[str, np.ndarray]
    permitted: Mapping[str, int]
    siblings: Mapping[str, frozenset[str]] = field(default_factory=dict)
    recogniser: str = "dlib"


def analyse(
    pixels: np.ndarray,
    detector: DetectionStage,
    gallery: Gallery,
    settings: MatchSettings,
    *,
    orientation_known: bool = True,
) -> list[FaceDecision]:
    """Detect every face and decide keep or blur for each.

    ``orientation_known`` is False for a photo without an EXIF orientation tag, which
    lets detection also search it turned (see :class:`DetectionStage`)."""
    if gallery.encodings and gallery.recogniser != settings.recogniser:
        raise InvalidOptions(
            f"The gallery holds {gallery.recogniser} templates but matching was set up for "
            f"{settings.recogniser}; read the batch's data again with the same recogniser."
        )
    boxes = [d.box for d in detector.detect(pixels, orientation_known=orientation_known)]
    # Encode only faces that could be kept: large and sharp enough, with someone who may
    # be kept for this purpose. Every other face is blurred whoever it is, so computing
    # its biometric template would be processing for nothing (and slow). A review batch
    # (settings.review_low_quality) also encodes the faces below the keep's quality gates:
    # a reviewer may keep them (pipeline.matching.decide sends them to review, never keeps).
    sharp = [sharpness(pixels, b) if b.size >= settings.min_face_px else None for b in boxes]
    can_keep = bool(gallery.permitted)
    low_quality_too = settings.review_low_quality and settings.review is not None
    wanted = [
        can_keep and sh is not None and (low_quality_too or sh >= settings.min_sharpness)
        for sh in sharp
    ]
    # Pose from the landmarks (cheap beside the template): a face turned past the limit is
    # blurred without computing its template, unless low-quality faces go to review.
    marks = iter(dlib_landmarks(pixels, [b for b, w in zip(boxes, wanted, strict=True) if w]))
    yaw: list[float | None] = []
    for w in wanted:
        points = next(marks) if w else None
        yaw.append(None if points is None else yaw_from_landmarks(five_points(points)))
    wanted = [
        w
        and (low_quality_too or t is None or settings.max_yaw is None or abs(t) <= settings.max_yaw)
        for w, t in zip(wanted, yaw, strict=True)
    ]
    to_encode = [b for b, w in zip(boxes, wanted, strict=True) if w]
    encoded = iter(
        get_recogniser(settings.recogniser).encode(pixels, to_encode) if to_encode else []
    )
    encodings = [next(encoded) if w else None for w in wanted]
    return decide(
        boxes,
        encodings,
        gallery.encodings if can_keep else {},
        set(gallery.permitted),
        settings,
        sharpness=sharp,
        yaw=yaw,
        siblings=gallery.siblings,
    )


def blurred(decisions: list[FaceDecision]) -> list[FaceDecision]:
    return [d for d in decisions if d.decision is Decision.BLURRED]


def kept(decisions: list[FaceDecision]) -> list[FaceDecision]:
    return [d for d in decisions if d.decision is Decision.KEPT]
