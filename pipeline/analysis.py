"""One photo through detection and matching: which faces are kept, which are blurred.

Shared by ``publish`` (which then redacts and writes) and ``check`` (which only judges),
so both apply exactly the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from consent import enrolment, registry
from consent.registry import Purpose
from consent.siblings import siblings
from consent.store import Store

from .detection import DetectionStage
from .matching import Decision, FaceDecision, MatchSettings, decide, encode_faces, sharpness


@dataclass(frozen=True)
class Gallery:
    """Everything matching needs to know about the pupils for one purpose and date.

    ``encodings`` holds every enrolled pupil (consented or not) so the margin rule can
    guard against a non-consented look-alike; ``permitted`` maps the pupils whose
    consent allows the purpose to the consent record ID that allowed it.
    """

    encodings: Mapping[str, np.ndarray]
    permitted: Mapping[str, int]
    siblings: Mapping[str, frozenset[str]] = field(default_factory=dict)


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
    # Encode only faces that could be kept: large and sharp enough, with someone who may
    # be kept for this purpose. Every other face is blurred whoever it is, so computing
    # its biometric template would be processing for nothing (and slow).
    sharp = [sharpness(pixels, b) if b.size >= settings.min_face_px else None for b in boxes]
    can_keep = bool(gallery.permitted)
    wanted = [can_keep and sh is not None and sh >= settings.min_sharpness for sh in sharp]
    encoded = iter(encode_faces(pixels, [b for b, w in zip(boxes, wanted, strict=True) if w]))
    encodings = [next(encoded) if w else None for w in wanted]
    return decide(
        boxes,
        encodings,
        gallery.encodings if can_keep else {},
        set(gallery.permitted),
        settings,
        sharpness=sharp,
        siblings=gallery.siblings,
    )


def blurred(decisions: list[FaceDecision]) -> list[FaceDecision]:
    return [d for d in decisions if d.decision is Decision.BLURRED]


def kept(decisions: list[FaceDecision]) -> list[FaceDecision]:
    return [d for d in decisions if d.decision is Decision.KEPT]


def load_gallery(
    store: Store,
    purpose: Purpose,
    on: date,
    candidates: frozenset[str] | None = None,
    *,
    encodings: bool = True,
) -> Gallery:
    """The enrolled pupils' references, and who of them may be kept for ``purpose``.

    ``candidates`` restricts matching to the pupils expected in the photos (a class, a
    team): every pupil left out is one fewer stranger's look-alike to keep by mistake.
    With ``encodings=False`` no template is decrypted and ``permitted`` lists every pupil
    whose consent allows the purpose (a reviewer, not a matcher, names who is who).
    """
    consented = registry.pupils_with_consent(store.conn, purpose, on)
    if not encodings:
        wanted = {p: rec.record_id for p, rec in consented.items()}
        if candidates is not None:
            wanted = {p: r for p, r in wanted.items() if p in candidates}
        return Gallery(encodings={}, permitted=wanted)
    refs = enrolment.load_gallery(store, candidates)
    permitted = {p: rec.record_id for p, rec in consented.items() if p in refs}
    return Gallery(encodings=refs, permitted=permitted, siblings=siblings(store.conn))


def pupils_in_classes(store: Store, classes: Iterable[str]) -> frozenset[str]:
    """IDs of the pupils in any of ``classes`` (compared case-insensitively)."""
    wanted = {c.strip().casefold() for c in classes}
    return frozenset(
        p.pupil_id for p in registry.list_pupils(store.conn) if p.class_name.casefold() in wanted
    )
