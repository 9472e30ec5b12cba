"""One photo through detection and matching: which faces are kept, which are blurred.

Shared by ``publish`` (which then redacts and writes) and ``check`` (which only judges),
so both apply exactly the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np

from consent import enrolment, registry
from consent.registry import Purpose
from consent.store import Store

from .detection import DetectionStage
from .matching import Decision, FaceDecision, MatchSettings, decide, encode_faces


@dataclass(frozen=True)
class Gallery:
    """Everything matching needs to know about the pupils for one purpose and date.

    ``encodings`` holds every enrolled pupil (consented or not) so the margin rule can
    guard against a non-consented look-alike; ``permitted`` maps the pupils whose
    consent allows the purpose to the consent record ID that allowed it.
    """

    encodings: Mapping[str, np.ndarray]
    permitted: Mapping[str, int]


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
    boxes = [d.box for d in detector.detect(pixels, orientation_known=orientation_known)]
    # Faces too small to recognise are blurred whatever they would match, and no one
    # enrolled means nothing can be kept: skip the (slow) encoder for those.
    wanted = [b.size >= settings.min_face_px and bool(gallery.encodings) for b in boxes]
    encoded = iter(encode_faces(pixels, [b for b, w in zip(boxes, wanted, strict=True) if w]))
    encodings = [next(encoded) if w else None for w in wanted]
    return decide(boxes, encodings, gallery.encodings, set(gallery.permitted), settings)


def blurred(decisions: list[FaceDecision]) -> list[FaceDecision]:
    return [d for d in decisions if d.decision is Decision.BLURRED]


def kept(decisions: list[FaceDecision]) -> list[FaceDecision]:
    return [d for d in decisions if d.decision is Decision.KEPT]


def load_gallery(store: Store, purpose: Purpose, on: date) -> Gallery:
    """Every enrolled pupil's references, and who of them may be kept for ``purpose``."""
    encodings = enrolment.load_gallery(store)
    consented = registry.pupils_with_consent(store.conn, purpose, on)
    permitted = {p: rec.record_id for p, rec in consented.items() if p in encodings}
    return Gallery(encodings=encodings, permitted=permitted)
