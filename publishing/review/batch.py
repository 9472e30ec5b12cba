"""Human review: no face is kept clear until a named person has approved it.

``publish --review`` does not publish. It analyses the photos and saves a *review batch*
(``DATA_DIR/reviews/<batch>.json``, 0600: it holds pupil IDs and decisions, no pixels)
and a contact sheet beside it. A reviewer then approves or rejects each kept face, or, in
no-biometrics mode, un-blurs a face as a named pupil; every verdict is audited with the
reviewer's name. ``review publish`` finally publishes the batch: only approved keeps stay
clear, and consent is checked again on the day.

In no-biometrics mode no face is ever encoded: every face starts blurred, and only a
reviewer can name one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from consent import audit, registry
from consent.store import Store
from pipeline.analysis import Gallery
from pipeline.boxes import Box
from pipeline.detection import DetectionStage
from pipeline.errors import PipelineError
from pipeline.loading import LoadedImage, load_image
from pipeline.matching import Decision, FaceDecision, Reason
from publishing.context import load_gallery
from publishing.decider import AnalysingDecider
from publishing.options import PublishOptions
from publishing.publish import (
    PublishReport,
    check_operator,
    collect_inputs,
    publish,
)

REVIEW_DIR = "reviews"
# A kept face this close to the tolerance, or a blurred one this close above it, is put
# in the "needs a person" group of the contact sheet.
NEAR_THRESHOLD = 0.05


class ReviewError(PipelineError):
    """A review batch or face cannot be found, or the verdict does not apply to it."""


@dataclass
class ReviewFace:
    """One face of a batch: the machine's decision and the reviewer's verdict."""

    face_id: str
    box: list[int]
    decision: str  # "kept" | "blurred", by matching
    reason: str
    pupil_id: str | None
    distance: float | None
    needs_person: bool
    verdict: str | None = None  # "approved" | "rejected" | "unblurred"
    as_pupil: str | None = None  # for "unblurred": who the reviewer says it is
    reviewer: str | None = None


@dataclass
class ReviewPhoto:
    input: str
    sha256: str | None
    faces: list[ReviewFace] = field(default_factory=list)
    withheld: str | None = None  # why the photo cannot be published at all


@dataclass
class ReviewBatch:
    batch_id: str
    purpose: str
    event: str
    created_at: str
    operator: str
    biometrics: bool
    options: dict[str, object]
    photos: list[ReviewPhoto]
    published_to: str | None = None

    def faces(self) -> Iterable[tuple[ReviewPhoto, ReviewFace]]:
        for photo in self.photos:
            for face in photo.faces:
                yield photo, face

    def face(self, face_id: str) -> ReviewFace:
        for _, face in self.faces():
            if face.face_id == face_id:
                return face
        raise ReviewError(f"No face {face_id!r} in review batch {self.batch_id}.")


def review_dir(store: Store) -> Path:
    path = store.data_dir / REVIEW_DIR
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def batch_path(store: Store, batch_id: str) -> Path:
    if not batch_id.replace("-", "").isalnum():
        raise ReviewError(
            f"{batch_id!r} is not a review batch ID (see `photoconsent review list`)."
        )
    return review_dir(store) / f"{batch_id}.json"


def save_batch(store: Store, batch: ReviewBatch) -> Path:
    path = batch_path(store, batch.batch_id)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(dataclasses.asdict(batch), f, indent=1)
    os.replace(tmp, path)
    return path


def load_batch(store: Store, batch_id: str) -> ReviewBatch:
    path = batch_path(store, batch_id)
    if not path.is_file():
        raise ReviewError(f"No review batch {batch_id!r} (see `photoconsent review list`).")
    raw = json.loads(path.read_text(encoding="utf-8"))
    photos = [
        ReviewPhoto(p["input"], p["sha256"], [ReviewFace(**f) for f in p["faces"]], p["withheld"])
        for p in raw.pop("photos")
    ]
    return ReviewBatch(photos=photos, **raw)


def list_batches(store: Store) -> list[ReviewBatch]:
    return [load_batch(store, p.stem) for p in sorted(review_dir(store).glob("*.json"))]


def _near(d: FaceDecision, tolerance: float) -> bool:
    if d.distance is None:
        return False
    if d.decision is Decision.KEPT:
        return d.distance >= tolerance - NEAR_THRESHOLD
    return d.reason in (Reason.NO_MATCH, Reason.AMBIGUOUS, Reason.SIBLING_AMBIGUOUS) and (
        d.distance <= tolerance + NEAR_THRESHOLD
    )


def create_batch(
    store: Store,
    inputs: Sequence[Path],
    options: PublishOptions,
    *,
    biometrics: bool = True,
    progress: Callable[[int, int, ReviewPhoto], None] | None = None,
) -> ReviewBatch:
    """Analyse ``inputs`` for ``options.purpose`` and save them as a batch to review.

    With ``biometrics=False`` faces are detected but never encoded: all start blurred.
    """
    check_operator(options.operator)
    audit.ensure_intact(store)
    gallery = load_gallery(
        store, options.purpose, options.on, options.candidates, encodings=biometrics
    )
    if biometrics:
        decide_photo = AnalysingDecider(gallery, options.detection, options.matching)
    else:
        decide_photo = _detect_only(DetectionStage(options.detection))
    now = datetime.now(UTC)
    batch_id = now.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    photos: list[ReviewPhoto] = []
    paths = collect_inputs(inputs)
    n = 0
    for i, path in enumerate(paths, start=1):
        photo = ReviewPhoto(input=str(path), sha256=None)
        try:
            loaded = load_image(path)
            photo.sha256 = loaded.sha256
            decisions = decide_photo(path, loaded)
        except PipelineError as exc:
            photo.withheld = str(exc)
            decisions = []
        for d in decisions:
            n += 1
            photo.faces.append(
                ReviewFace(
                    face_id=f"F{n:04d}",
                    box=d.box.to_list(),
                    decision=d.decision.value,
                    reason=d.reason.value,
                    pupil_id=d.pupil_id,
                    distance=None if d.distance is None else round(d.distance, 4),
                    needs_person=_near(d, options.matching.tolerance),
                )
            )
        photos.append(photo)
        if progress is not None:
            progress(i, len(paths), photo)
    batch = ReviewBatch(
        batch_id=batch_id,
        purpose=options.purpose.value,
        event=options.event,
        created_at=now.isoformat(timespec="seconds"),
        operator=options.operator,
        biometrics=biometrics,
        options={
            "tolerance": options.matching.tolerance,
            "thoroughness": options.detection.thoroughness.value,
            "style": options.style.value,
            "format": options.output_format.value,
            "candidates": None if options.candidates is None else sorted(options.candidates),
        },
        photos=photos,
    )
    with store.transaction() as conn:
        save_batch(store, batch)
        audit.append(
            conn,
            store.key,
            action="review_create",
            operator=options.operator,
            details={
                "batch": batch_id,
                "purpose": batch.purpose,
                "event": batch.event,
                "biometrics": biometrics,
                "photos": len(photos),
                "faces": n,
                "pending_keeps": sum(1 for _, f in batch.faces() if f.decision == "kept"),
            },
        )
    return batch


def _detect_only(detector: DetectionStage):  # type: ignore[no-untyped-def]
    """No-biometrics decisions: every face found, none encoded, all blurred."""

    def decide_photo(path: Path, loaded: LoadedImage) -> list[FaceDecision]:
        found = detector.detect(loaded.pixels, orientation_known=loaded.orientation_tagged)
        return [FaceDecision(d.box, Decision.BLURRED, Reason.NO_BIOMETRICS) for d in found]

    return decide_photo


def record_verdict(
    store: Store,
    batch_id: str,
    face_ids: Sequence[str],
    verdict: str,
    *,
    reviewer: str,
    as_pupil: str | None = None,
) -> ReviewBatch:
    """Approve or reject matched faces, or un-blur faces as ``as_pupil``; audited.

    ``approved`` and ``rejected`` apply to faces matching kept; ``unblurred`` applies to
    any face and names the pupil the reviewer recognises (whose consent must allow the
    purpose when the batch is published). A verdict can be changed until publishing.
    """
    check_operator(reviewer)
    if verdict not in ("approved", "rejected", "unblurred"):
        raise ReviewError(f"Unknown verdict {verdict!r}.")
    if (verdict == "unblurred") != (as_pupil is not None):
        raise ReviewError("Un-blurring a face needs --as PUPIL_ID (and only un-blurring does).")
    if as_pupil is not None:
        registry.get_pupil(store.conn, as_pupil)  # UnknownPupil for a typo, before recording
    batch = load_batch(store, batch_id)
    if batch.published_to is not None:
        raise ReviewError(f"Batch {batch_id} is already published; start a new review.")
    faces = [batch.face(f) for f in face_ids]
    for face in faces:
        if verdict in ("approved", "rejected") and face.decision != "kept":
            raise ReviewError(
                f"{face.face_id} was blurred by matching; to show it, un-blur it as a named "
                "pupil (`photoconsent review unblur BATCH FACE --as PUPIL_ID`)."
            )
        face.verdict, face.as_pupil, face.reviewer = verdict, as_pupil, reviewer
    with store.transaction() as conn:
        save_batch(store, batch)
        audit.append(
            conn,
            store.key,
            action=f"review_{verdict}",
            operator=reviewer,
            details={
                "batch": batch_id,
                "faces": [f.face_id for f in faces],
                "pupils": sorted({p for f in faces for p in (f.pupil_id, f.as_pupil) if p}),
            },
        )
    return batch


def reviewed_decider(batch: ReviewBatch, gallery: Gallery):  # type: ignore[no-untyped-def]
    """Decisions for publishing a reviewed batch: keep only approved or un-blurred faces
    of pupils whose consent still allows the purpose; refuse a photo that changed."""
    by_input = {p.input: p for p in batch.photos}

    def decide_photo(path: Path, loaded: LoadedImage) -> list[FaceDecision]:
        photo = by_input.get(str(path))
        if photo is None or photo.sha256 != loaded.sha256:
            raise ReviewError(f"{path.name} changed since it was reviewed; review it again.")
        return [_final(f, gallery) for f in photo.faces]

    return decide_photo


def _final(face: ReviewFace, gallery: Gallery) -> FaceDecision:
    box = Box(*face.box)
    blur = Decision.BLURRED
    if face.verdict == "unblurred" and face.as_pupil:
        if face.as_pupil in gallery.permitted:
            return FaceDecision(box, Decision.KEPT, Reason.REVIEWER_UNBLURRED, face.as_pupil)
        return FaceDecision(box, blur, Reason.NO_CONSENT, face.as_pupil)
    if face.decision == "kept":
        if face.verdict == "rejected":
            return FaceDecision(box, blur, Reason.REJECTED, face.pupil_id, face.distance)
        if face.verdict != "approved":
            return FaceDecision(box, blur, Reason.NOT_APPROVED, face.pupil_id, face.distance)
        if face.pupil_id not in gallery.permitted:
            return FaceDecision(box, blur, Reason.NO_CONSENT, face.pupil_id, face.distance)
        return FaceDecision(box, Decision.KEPT, Reason.APPROVED, face.pupil_id, face.distance)
    return FaceDecision(box, blur, Reason(face.reason), face.pupil_id, face.distance)


def publish_batch(store: Store, batch_id: str, options: PublishOptions) -> PublishReport:
    """Publish a reviewed batch into ``options.out_dir`` (purpose and event come from the
    batch; ``options`` gives the folder, operator, style and date)."""
    batch = load_batch(store, batch_id)
    if batch.published_to is not None:
        raise ReviewError(f"Batch {batch_id} was already published to {batch.published_to}.")
    options = dataclasses.replace(options, event=batch.event)
    if options.purpose.value != batch.purpose:
        raise ReviewError(
            f"Batch {batch_id} was reviewed for {batch.purpose}, not {options.purpose.value}."
        )
    gallery = load_gallery(store, options.purpose, options.on, encodings=False)
    inputs = [Path(p.input) for p in batch.photos]
    report = publish(store, inputs, options, decider=reviewed_decider(batch, gallery))
    batch.published_to = str(options.out_dir)
    save_batch(store, batch)
    return report
