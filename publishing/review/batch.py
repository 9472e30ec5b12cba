"""Human review: no face is kept clear until a named person has approved it.

``publish --review`` does not publish. It analyses the photos and saves a *review batch*
(``DATA_DIR/reviews/<batch>.json``, 0600: it holds pupil IDs and decisions, no pixels)
and a contact sheet beside it. A reviewer then approves or rejects each face matching
kept, and each *uncertain* face (plausibly a permitted pupil, below the keep rule: its
``candidate_id``), or un-blurs any face as a named pupil; every verdict is audited with
the reviewer's name. ``review publish`` finally publishes the batch: only approved faces
stay clear (an approved uncertain face as its candidate), and consent is checked again
on the day.

In no-biometrics mode no face is ever encoded: every face starts blurred, and only a
reviewer can name one.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from consent import audit, registry
from consent.registry import Purpose
from consent.store import Store
from pipeline.boxes import Box
from pipeline.detection import DetectionSettings, DetectionStage, Thoroughness
from pipeline.errors import PipelineError
from pipeline.loading import LoadedImage, load_image
from pipeline.matching import DEFAULT_TOLERANCE, Decision, FaceDecision, MatchSettings, Reason
from pipeline.recognisers import RECOGNISERS, get_recogniser, match_settings
from pipeline.redaction import RedactionStyle
from pipeline.writing import OutputFormat
from publishing.context import load_context
from publishing.decider import AnalysingDecider
from publishing.inputs import collect_inputs
from publishing.options import PublishOptions
from publishing.publish import check_operator, publish
from publishing.report import PublishReport

REVIEW_DIR = "reviews"
# A kept face this close to the tolerance, or a blurred one this close above it, is put
# in the "needs a person" group of the contact sheet.
NEAR_THRESHOLD = 0.05


class ReviewError(PipelineError):
    """A review batch or face cannot be found, or the verdict does not apply to it."""


class Verdict(enum.Enum):
    """A reviewer's verdict on one face."""

    APPROVED = "approved"  # keep a face matching kept, or an uncertain one as its candidate
    REJECTED = "rejected"  # blur a face matching kept or uncertain
    UNBLURRED = "unblurred"  # keep any face, as the pupil the reviewer names


def parse_verdict(text: str) -> Verdict:
    """``text`` (a form field or a stored batch) as a `Verdict`; `ReviewError` if it is none."""
    try:
        return Verdict(text)
    except ValueError:
        raise ReviewError(f"Unknown verdict {text!r}.") from None


@dataclass
class ReviewFace:
    """One face of a batch: the machine's decision and the reviewer's verdict."""

    face_id: str
    box: list[int]
    decision: Decision  # by matching
    reason: Reason
    pupil_id: str | None
    distance: float | None
    needs_person: bool
    verdict: Verdict | None = None
    as_pupil: str | None = None  # for UNBLURRED: who the reviewer says it is
    reviewer: str | None = None
    # For an UNCERTAIN face: the permitted pupil it plausibly is (matching's candidate_id).
    # Batches saved before review by pupil have no such field: None, blurred as before.
    candidate_id: str | None = None
    # For an UNCERTAIN face below the keep's quality gates: the gate it failed
    # (Reason.TOO_BLURRED or TURNED_AWAY); its grid marks it "low quality photo".
    # Batches saved before low-quality review have no such field: None.
    low_quality: Reason | None = None

    @property
    def proposed_pupil(self) -> str | None:
        """Who the machine proposes this face is: the matched pupil of a kept face, the
        candidate of an uncertain one; None for any other face."""
        if self.decision is Decision.KEPT:
            return self.pupil_id
        if self.reason is Reason.UNCERTAIN:
            return self.candidate_id
        return None

    @property
    def approvable(self) -> bool:
        """Whether approve/reject apply: a kept face, or an uncertain one with a candidate."""
        return self.proposed_pupil is not None

    @property
    def shown_as(self) -> str | None:
        """The pupil this face is published as if its verdict stands: the reviewer's name
        for an un-blurred face, else the proposed pupil (None: nobody)."""
        if self.verdict is Verdict.UNBLURRED:
            return self.as_pupil
        return self.proposed_pupil

    def to_json(self) -> dict[str, object]:
        return {
            "face_id": self.face_id,
            "box": self.box,
            "decision": self.decision.value,
            "reason": self.reason.value,
            "pupil_id": self.pupil_id,
            "distance": self.distance,
            "needs_person": self.needs_person,
            "verdict": None if self.verdict is None else self.verdict.value,
            "as_pupil": self.as_pupil,
            "reviewer": self.reviewer,
            "candidate_id": self.candidate_id,
            "low_quality": None if self.low_quality is None else self.low_quality.value,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ReviewFace:
        verdict = raw["verdict"]
        return cls(
            face_id=raw["face_id"],
            box=list(raw["box"]),
            decision=Decision(raw["decision"]),
            reason=Reason(raw["reason"]),
            pupil_id=raw["pupil_id"],
            distance=raw["distance"],
            needs_person=raw["needs_person"],
            verdict=None if verdict is None else parse_verdict(verdict),
            as_pupil=raw["as_pupil"],
            reviewer=raw["reviewer"],
            candidate_id=raw.get("candidate_id"),
            low_quality=_low_quality(raw.get("low_quality")),
        )


def _low_quality(value: object) -> Reason | None:
    """A stored ``low_quality`` as the quality gate it names; anything else is refused (a
    batch file edited by hand must not mark an ordinary face, or vice versa, unseen)."""
    if value is None:
        return None
    reason = Reason(value)
    if reason not in (Reason.TOO_BLURRED, Reason.TURNED_AWAY):
        raise ValueError(f"not a quality gate: {value!r}")
    return reason


@dataclass
class ReviewPhoto:
    input: str
    sha256: str | None
    faces: list[ReviewFace] = field(default_factory=list)
    withheld: str | None = None  # why the photo cannot be published at all

    def to_json(self) -> dict[str, object]:
        return {
            "input": self.input,
            "sha256": self.sha256,
            "faces": [f.to_json() for f in self.faces],
            "withheld": self.withheld,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ReviewPhoto:
        faces = [ReviewFace.from_json(f) for f in raw["faces"]]
        return cls(raw["input"], raw["sha256"], faces, raw["withheld"])


@dataclass(frozen=True, kw_only=True)
class ReviewBatchOptions:
    """The publish settings a batch was analysed with, used again when it is published
    (and by its contact sheet): the same tolerance, detection, redaction and format."""

    tolerance: float = DEFAULT_TOLERANCE
    # Batches saved before recognisers existed were analysed with dlib.
    recogniser: str = "dlib"
    thoroughness: Thoroughness = Thoroughness.STANDARD
    style: RedactionStyle = RedactionStyle.BLUR
    output_format: OutputFormat = OutputFormat.JPEG
    candidates: frozenset[str] | None = None

    @classmethod
    def of(cls, options: PublishOptions) -> ReviewBatchOptions:
        return cls(
            tolerance=options.matching.tolerance,
            recogniser=options.matching.recogniser,
            thoroughness=options.detection.thoroughness,
            style=options.style,
            output_format=options.output_format,
            candidates=options.candidates,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "tolerance": self.tolerance,
            "recogniser": self.recogniser,
            "thoroughness": self.thoroughness.value,
            "style": self.style.value,
            "format": self.output_format.value,
            "candidates": None if self.candidates is None else sorted(self.candidates),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ReviewBatchOptions:
        candidates = raw["candidates"]
        return cls(
            tolerance=float(raw["tolerance"]),
            recogniser=str(raw.get("recogniser", "dlib")),
            thoroughness=Thoroughness(raw["thoroughness"]),
            style=RedactionStyle(raw["style"]),
            output_format=OutputFormat(raw["format"]),
            candidates=None if candidates is None else frozenset(candidates),
        )

    def publish_options(
        self,
        *,
        purpose: Purpose,
        out_dir: Path,
        event: str,
        operator: str,
        on: date,
        destination: str | None = None,
        captions: Mapping[str, str] | None = None,
        caption: str | None = None,
        embedded_captions: bool = True,
    ) -> PublishOptions:
        """Options to publish the batch with these settings (every pupil a candidate: the
        reviewer has already said who is who)."""
        return PublishOptions(
            purpose=purpose,
            out_dir=out_dir,
            event=event,
            operator=operator,
            style=self.style,
            output_format=self.output_format,
            detection=DetectionSettings(thoroughness=self.thoroughness),
            matching=match_settings(self.recogniser, tolerance=self.tolerance),
            on=on,
            destination=destination,
            captions=captions,
            caption=caption,
            embedded_captions=embedded_captions,
        )


@dataclass
class ReviewBatch:
    batch_id: str
    purpose: Purpose
    event: str
    created_at: str
    operator: str
    biometrics: bool
    options: ReviewBatchOptions
    photos: list[ReviewPhoto]
    published_to: str | None = None

    def to_json(self) -> dict[str, object]:
        """The batch file's content (field order as the file has always had it)."""
        return {
            "batch_id": self.batch_id,
            "purpose": self.purpose.value,
            "event": self.event,
            "created_at": self.created_at,
            "operator": self.operator,
            "biometrics": self.biometrics,
            "options": self.options.to_json(),
            "photos": [p.to_json() for p in self.photos],
            "published_to": self.published_to,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ReviewBatch:
        return cls(
            batch_id=raw["batch_id"],
            purpose=Purpose(raw["purpose"]),
            event=raw["event"],
            created_at=raw["created_at"],
            operator=raw["operator"],
            biometrics=raw["biometrics"],
            options=ReviewBatchOptions.from_json(raw["options"]),
            photos=[ReviewPhoto.from_json(p) for p in raw["photos"]],
            published_to=raw["published_to"],
        )

    def awaiting_approval(self) -> int:
        """Faces matching kept or uncertain that no reviewer has given a verdict on yet."""
        return sum(1 for _, f in self.faces() if f.approvable and not f.verdict)

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
        json.dump(batch.to_json(), f, indent=1)
    os.replace(tmp, path)
    return path


def load_batch(store: Store, batch_id: str) -> ReviewBatch:
    path = batch_path(store, batch_id)
    if not path.is_file():
        raise ReviewError(f"No review batch {batch_id!r} (see `photoconsent review list`).")
    try:
        return ReviewBatch.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ReviewError(
            f"Review batch {batch_id} is damaged ({type(exc).__name__}: {exc}); "
            "start a new review of its photos."
        ) from exc


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


def review_settings(matching: MatchSettings) -> MatchSettings:
    """The matching a review batch analyses with: ``matching``, and, for a recogniser
    measured safe for it (SFace), faces below the keep's quality gates (blurred, turned)
    compared too; within the review band of a permitted pupil they go to that pupil's grid
    marked low quality (docs/review.md). A reviewer will look; they are never kept unseen."""
    name = matching.recogniser
    measured = name in RECOGNISERS and get_recogniser(name).thresholds.review_low_quality
    return dataclasses.replace(matching, review_low_quality=measured)


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
    context = load_context(store, options, encodings=biometrics)
    if biometrics:
        matching = review_settings(options.matching)
        decide_photo = AnalysingDecider(context.gallery, options.detection, matching)
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
                    decision=d.decision,
                    reason=d.reason,
                    pupil_id=d.pupil_id,
                    distance=None if d.distance is None else round(d.distance, 4),
                    needs_person=_near(d, options.matching.tolerance),
                    candidate_id=d.candidate_id if d.reason is Reason.UNCERTAIN else None,
                    low_quality=d.low_quality if d.reason is Reason.UNCERTAIN else None,
                )
            )
        photos.append(photo)
        if progress is not None:
            progress(i, len(paths), photo)
    batch = ReviewBatch(
        batch_id=batch_id,
        purpose=options.purpose,
        event=options.event,
        created_at=now.isoformat(timespec="seconds"),
        operator=options.operator,
        biometrics=biometrics,
        options=ReviewBatchOptions.of(options),
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
                "purpose": batch.purpose.value,
                "event": batch.event,
                "biometrics": biometrics,
                "photos": len(photos),
                "faces": n,
                "pending_keeps": sum(1 for _, f in batch.faces() if f.decision is Decision.KEPT),
                "uncertain": sum(1 for _, f in batch.faces() if f.reason is Reason.UNCERTAIN),
                "uncertain_low_quality": sum(1 for _, f in batch.faces() if f.low_quality),
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
    verdict: Verdict,
    *,
    reviewer: str,
    as_pupil: str | None = None,
) -> ReviewBatch:
    """Approve or reject matched or uncertain faces, or un-blur faces as ``as_pupil``; audited.

    ``APPROVED`` and ``REJECTED`` apply to faces matching kept and to uncertain faces (an
    approved uncertain face is kept as its candidate); ``UNBLURRED`` applies to any face
    and names the pupil the reviewer recognises. Whoever the face is kept as, their
    consent must allow the purpose when the batch is published. A verdict can be changed
    until publishing.
    """
    check_operator(reviewer)
    if (verdict is Verdict.UNBLURRED) != (as_pupil is not None):
        raise ReviewError(
            "Un-blurring a face needs the pupil it shows (--name, or --as PUPIL_ID in "
            "scripts); only un-blurring does."
        )
    if as_pupil is not None:
        registry.get_pupil(store.conn, as_pupil)  # UnknownPupil for a typo, before recording
    batch = load_batch(store, batch_id)
    faces = [batch.face(f) for f in face_ids]
    for face in faces:
        if verdict is not Verdict.UNBLURRED and not face.approvable:
            raise ReviewError(
                f"{face.face_id} was blurred by matching; to show it, un-blur it as a named "
                'pupil (`photoconsent review unblur BATCH FACE --name "first letters"`).'
            )
    return save_verdicts(store, batch, faces, verdict, reviewer=reviewer, as_pupil=as_pupil)


def save_verdicts(
    store: Store,
    batch: ReviewBatch,
    faces: Sequence[ReviewFace],
    verdict: Verdict,
    *,
    reviewer: str,
    as_pupil: str | None = None,
    details: Mapping[str, object] | None = None,
) -> ReviewBatch:
    """Give ``faces`` (of ``batch``, already checked to take ``verdict``) the verdict and
    save the batch, with its audit row in the same transaction (``details`` added to it)."""
    check_operator(reviewer)
    if batch.published_to is not None:
        raise ReviewError(f"Batch {batch.batch_id} is already published; start a new review.")
    before = [(f, f.verdict, f.as_pupil, f.reviewer) for f in faces]
    for face in faces:
        face.verdict, face.as_pupil, face.reviewer = verdict, as_pupil, reviewer
    clash = _kept_twice(batch)
    if clash:
        for face, *old in before:
            face.verdict, face.as_pupil, face.reviewer = old
        raise ReviewError(
            f"{' and '.join(clash)} are in the same photo and would both be kept as the same "
            "pupil, but a child is in a photo once: reject the face that is not them (or "
            "leave it out), then approve again. Nothing was recorded."
        )
    pupils = {p for f in faces for p in (f.pupil_id, f.candidate_id, f.as_pupil) if p}
    with store.transaction() as conn:
        save_batch(store, batch)
        audit.append(
            conn,
            store.key,
            action=f"review_{verdict.value}",
            operator=reviewer,
            details={
                "batch": batch.batch_id,
                "faces": [f.face_id for f in faces],
                "pupils": sorted(pupils),
                **(details or {}),
            },
        )
    return batch


def _kept_as(face: ReviewFace) -> str | None:
    """Who ``face`` is published as under its verdict (before the consent check)."""
    if face.verdict is Verdict.UNBLURRED:
        return face.as_pupil
    if face.verdict is Verdict.APPROVED:
        return face.proposed_pupil
    return None


def _kept_twice(batch: ReviewBatch) -> list[str]:
    """The face IDs of the first photo with two faces kept as one pupil, or []."""
    for photo in batch.photos:
        seen: dict[str, list[str]] = {}
        for face in photo.faces:
            pupil = _kept_as(face)
            if pupil is not None:
                seen.setdefault(pupil, []).append(face.face_id)
        for ids in seen.values():
            if len(ids) > 1:
                return ids
    return []


def reviewed_decider(batch: ReviewBatch, permitted: Collection[str]):  # type: ignore[no-untyped-def]
    """Decisions for publishing a reviewed batch: keep only approved or un-blurred faces
    of pupils in ``permitted`` (whose consent still allows the purpose); refuse a photo
    that changed."""
    by_input = {p.input: p for p in batch.photos}

    def decide_photo(path: Path, loaded: LoadedImage) -> list[FaceDecision]:
        photo = by_input.get(str(path))
        if photo is None or photo.sha256 != loaded.sha256:
            raise ReviewError(f"{path.name} changed since it was reviewed; review it again.")
        decisions = [_final(f, permitted) for f in photo.faces]
        # A child is in a photo once: if verdicts ever keep two faces as one pupil (a
        # batch edited by hand), neither is kept.
        kept = [d.pupil_id for d in decisions if d.decision is Decision.KEPT]
        twice = {p for p in kept if kept.count(p) > 1}
        return [
            FaceDecision(d.box, Decision.BLURRED, Reason.DUPLICATE, d.pupil_id, d.distance)
            if d.decision is Decision.KEPT and d.pupil_id in twice
            else d
            for d in decisions
        ]

    return decide_photo


def _final(face: ReviewFace, permitted: Collection[str]) -> FaceDecision:
    box = Box(*face.box)
    blur = Decision.BLURRED
    if face.verdict is Verdict.UNBLURRED and face.as_pupil:
        if face.as_pupil in permitted:
            return FaceDecision(box, Decision.KEPT, Reason.REVIEWER_UNBLURRED, face.as_pupil)
        return FaceDecision(box, blur, Reason.NO_CONSENT, face.as_pupil)
    if face.approvable:
        # A kept face is its match; an uncertain one, once approved, is kept as its
        # candidate (until then it stays what matching said: blurred, "uncertain").
        pupil = face.proposed_pupil
        matched = face.pupil_id  # None for an uncertain face: nobody was recognised
        if face.verdict is Verdict.REJECTED:
            return FaceDecision(
                box, blur, Reason.REJECTED, matched, face.distance, face.candidate_id
            )
        if face.verdict is not Verdict.APPROVED:
            reason = Reason.NOT_APPROVED if face.decision is Decision.KEPT else face.reason
            return FaceDecision(
                box,
                blur,
                reason,
                matched,
                face.distance,
                face.candidate_id,
                low_quality=face.low_quality,
            )
        if pupil not in permitted:
            return FaceDecision(box, blur, Reason.NO_CONSENT, pupil, face.distance)
        return FaceDecision(box, Decision.KEPT, Reason.APPROVED, pupil, face.distance)
    return FaceDecision(box, blur, face.reason, face.pupil_id, face.distance)


def publish_batch(store: Store, batch_id: str, options: PublishOptions) -> PublishReport:
    """Publish a reviewed batch into ``options.out_dir`` (purpose and event come from the
    batch; ``options`` gives the folder, operator, style and date)."""
    batch = load_batch(store, batch_id)
    if batch.published_to is not None:
        raise ReviewError(f"Batch {batch_id} was already published to {batch.published_to}.")
    options = dataclasses.replace(options, event=batch.event)
    if options.purpose is not batch.purpose:
        raise ReviewError(
            f"Batch {batch_id} was reviewed for {batch.purpose.value}, not {options.purpose.value}."
        )
    # Read once for the decider and the publish. The decider may keep any pupil whose
    # consent allows the purpose today: the reviewer, not a candidate list, said who it is.
    context = load_context(store, options, encodings=False)
    inputs = [Path(p.input) for p in batch.photos]
    decider = reviewed_decider(batch, context.permitted)
    report = publish(store, inputs, options, decider=decider, context=context)
    batch.published_to = str(options.out_dir)
    save_batch(store, batch)
    return report
