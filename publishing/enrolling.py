"""Enrolment as the office does it, and re-encoding for a new recogniser.

Joins the two cores: ``pipeline.references`` turns a photo into a template, a face crop and
its quality; ``consent.enrolment`` stores them encrypted, under biometric consent. Used by
``photoconsent enroll`` and the office app.

- `enrol_photos`: reference photos in; per photo enrolled or rejected with the reason in
  plain words; per pupil how many usable references they now have, their quality, and what
  is still needed (three from the last year are asked for). A photo rejected for a second
  face gets a preview with every face boxed, in the data directory (``enrolment-previews/``,
  owner-only), so whoever crops it can see which face is the other one.
- `reencode`: every stored face crop through another recogniser, then the data directory
  matches with it (``enroll --reencode``); parents are not asked for new photos. Pupils
  whose references predate kept crops are listed: they need new photos.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from consent import enrolment
from consent.enrolment import NewReference, PupilReferences
from consent.errors import ConsentError
from consent.files import PRIVATE, replace_atomic
from consent.store import Store
from pipeline.boxes import Box
from pipeline.detection import DetectionSettings, DetectionStage
from pipeline.errors import EnrolmentRejected, InvalidOptions, PipelineError
from pipeline.recognisers import DEFAULT_RECOGNISER, RECOGNISERS, Recogniser, get_recogniser
from pipeline.references import encode_crop, reference_from_photo

PREVIEW_DIR = "enrolment-previews"
PREVIEW_SIDE = 1024
# A preview is a photo of a child, kept unencrypted only as long as it takes someone to
# crop the photo again: every enrolment deletes previews older than this.
PREVIEW_DAYS = 7

Progress = Callable[[int, int], None]


def recogniser_name(store: Store) -> str:
    """The recogniser the data directory matches with (the code's default before the first
    enrolment)."""
    return enrolment.recogniser_setting(store.conn) or DEFAULT_RECOGNISER


def data_dir_recogniser(store: Store) -> Recogniser:
    """`recogniser_name` as a `Recogniser`; `InvalidOptions` if this version lacks it."""
    name = recogniser_name(store)
    if name not in RECOGNISERS:
        raise InvalidOptions(
            f"This data directory matches with the {name!r} recogniser, which this version of "
            f"photoconsent does not have (it has {', '.join(sorted(RECOGNISERS))}). Upgrade "
            "photoconsent, or run: photoconsent enroll --reencode --recogniser "
            f"{DEFAULT_RECOGNISER}"
        )
    return get_recogniser(name)


def reference_status(
    store: Store, pupil_ids: Iterable[str] | None = None
) -> dict[str, PupilReferences]:
    """Every enrolled pupil's references against the data directory's recogniser *and* the
    code's version of it: a template an older version made counts as needing re-encoding
    (`pupils list`, `enroll`'s report)."""
    name = recogniser_name(store)
    version = get_recogniser(name).version if name in RECOGNISERS else None
    return enrolment.pupil_references(store.conn, name, pupil_ids, version=version)


@dataclass(frozen=True)
class PhotoOutcome:
    """One photo: enrolled (``reference_id``) or rejected (``problem``, plain words)."""

    pupil_id: str
    photo: Path
    reference_id: int | None = None
    problem: str | None = None
    quality: dict[str, object] | None = None
    preview: Path | None = None


@dataclass
class EnrolmentReport:
    """What `enrol_photos` did, photo by photo, and where each pupil stands now."""

    recogniser: str
    outcomes: list[PhotoOutcome] = field(default_factory=list)
    pupils: dict[str, PupilReferences] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return sum(o.problem is not None for o in self.outcomes)

    @property
    def enrolled(self) -> int:
        return sum(o.problem is None for o in self.outcomes)

    def to_json(self, today: date) -> dict[str, object]:
        return {
            "recogniser": self.recogniser,
            "photos": [
                {
                    "pupil_id": o.pupil_id,
                    "photo": o.photo.name,
                    "enrolled": o.problem is None,
                    "reference_id": o.reference_id,
                    "problem": o.problem,
                    "quality": o.quality,
                    "preview": None if o.preview is None else str(o.preview),
                }
                for o in self.outcomes
            ],
            "pupils": {pid: pupil_summary(refs, today) for pid, refs in self.pupils.items()},
        }


def pupil_summary(refs: PupilReferences, today: date) -> dict[str, object]:
    """A pupil's references in plain data: counts, each one's quality and age, what is needed."""
    return {
        "references": len(refs.references),
        "usable": refs.matching,
        "from_the_last_year": refs.current(today),
        "wanted": enrolment.WANTED_REFERENCES,
        "status": refs.status(today),
        "each": [
            {
                "reference_id": r.reference_id,
                "enrolled_at": r.enrolled_at,
                "taken_on": r.taken_on,
                "older_than_a_year": r.stale(today),
                "grade": r.quality.get("grade"),
                "size_px": r.quality.get("size_px"),
                "sharpness": r.quality.get("sharpness"),
                "yaw": r.quality.get("yaw"),
                "recognisers": list(r.recognisers),
                "face_crop_kept": r.has_crop,
            }
            for r in refs.references
        ],
    }


def _new_reference(photo: Path, detector: DetectionStage, rec: Recogniser) -> NewReference:
    ref = reference_from_photo(photo, detector, rec)
    return NewReference(
        encoding=ref.encoding,
        source_sha256=ref.sha256,
        recogniser=ref.recogniser,
        version=ref.version,
        crop_png=ref.crop_png(),
        quality=ref.quality_record(),
        taken_on=ref.taken_on,
    )


def enrol_photos(
    store: Store,
    jobs: Sequence[tuple[str, Path]],
    *,
    operator: str,
    detector: DetectionStage | None = None,
    progress: Progress | None = None,
) -> EnrolmentReport:
    """Enrol every ``(pupil_id, photo)``; a rejected photo is reported, never raised."""
    rec = data_dir_recogniser(store)
    stage = detector or DetectionStage(DetectionSettings())
    delete_old_previews(store)
    report = EnrolmentReport(rec.name)
    for done, (pupil_id, photo) in enumerate(jobs):
        try:
            ref_id = enrolment.enrol(
                store,
                pupil_id,
                lambda photo=photo: _new_reference(photo, stage, rec),  # type: ignore[misc]
                operator=operator,
            )
            info = reference_status(store, [pupil_id])[pupil_id]
            quality = next(
                (dict(r.quality) for r in info.references if r.reference_id == ref_id), None
            )
            if quality is not None:
                quality.pop("crop_face", None)
            report.outcomes.append(PhotoOutcome(pupil_id, photo, ref_id, quality=quality))
        except EnrolmentRejected as exc:
            preview = _save_preview(store, pupil_id, photo, exc)
            report.outcomes.append(PhotoOutcome(pupil_id, photo, problem=str(exc), preview=preview))
        except (ConsentError, PipelineError) as exc:
            report.outcomes.append(PhotoOutcome(pupil_id, photo, problem=str(exc)))
        if progress is not None:
            progress(done + 1, len(jobs))
    wanted = {pid for pid, _ in jobs}
    report.pupils = reference_status(store, wanted)
    return report


def delete_old_previews(store: Store, *, now: float | None = None) -> int:
    """Delete enrolment previews older than `PREVIEW_DAYS`; how many went."""
    import time

    folder = store.data_dir / PREVIEW_DIR
    if not folder.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - PREVIEW_DAYS * 86400
    gone = 0
    for path in folder.glob("*.jpg"):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            gone += 1
    return gone


def _save_preview(store: Store, pupil_id: str, photo: Path, exc: EnrolmentRejected) -> Path | None:
    """The rejected photo, shrunk to 1024 px, the pupil's (largest) face boxed in green and
    every other face in red with its number; owner-only, in the data directory."""
    if not exc.boxes or exc.pixels is None:
        return None
    import cv2
    from PIL import Image

    pixels = np.asarray(exc.pixels)
    h, w = pixels.shape[:2]
    scale = min(1.0, PREVIEW_SIDE / max(h, w))
    img = np.ascontiguousarray(
        cv2.resize(pixels, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1
        else pixels.copy()
    )
    thick = max(2, round(max(img.shape[:2]) / 300))
    boxes: list[Box] = list(exc.boxes)
    for i, box in enumerate(boxes):
        colour = (0, 160, 0) if i == 0 else (220, 0, 0)
        x1, y1 = round(box.x * scale), round(box.y * scale)
        x2, y2 = round(box.x2 * scale), round(box.y2 * scale)
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, thick)
        label = "pupil?" if i == 0 else str(i + 1)
        cv2.putText(img, label, (x1, max(y1 - 4, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2)
    folder = store.data_dir / PREVIEW_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    safe_id = "".join(c for c in pupil_id if c.isalnum() or c in "-_") or "pupil"
    safe_stem = "".join(c for c in photo.stem if c.isalnum() or c in "-_")[:40] or "photo"
    path = folder / f"{safe_id}-{safe_stem}.jpg"
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=85)
    replace_atomic(path, buf.getvalue(), mode=PRIVATE)
    return path


@dataclass
class ReencodeReport:
    """What `reencode` did: templates made, crops that would not encode, pupils whose
    references have no crop (they need new photos), and the recogniser before and after."""

    recogniser: str
    was: str
    encoded: int = 0
    already: int = 0
    failed: list[tuple[str, int]] = field(default_factory=list)
    need_new_photos: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "recogniser": self.recogniser,
            "was": self.was,
            "templates_made": self.encoded,
            "already_encoded": self.already,
            "crops_not_encodable": [{"pupil_id": p, "reference_id": r} for p, r in self.failed],
            "pupils_needing_new_photos": self.need_new_photos,
        }


def reencode(
    store: Store,
    recogniser: str | None = None,
    *,
    operator: str,
    progress: Progress | None = None,
    pupil_ids: Iterable[str] | None = None,
) -> ReencodeReport:
    """Encode every kept face crop with ``recogniser`` (default: the code's default), then
    match with it. Only pupils with biometric consent are touched (others have no crops)."""
    name = recogniser or DEFAULT_RECOGNISER
    if name not in RECOGNISERS:
        raise InvalidOptions(
            f"Unknown recogniser {name!r}; choose from {', '.join(sorted(RECOGNISERS))}."
        )
    rec = get_recogniser(name)
    report = ReencodeReport(name, recogniser_name(store))
    pupils = enrolment.pupil_references(store.conn, name, pupil_ids, version=rec.version)
    todo = [(pid, refs) for pid, refs in pupils.items()]
    for done, (pupil_id, refs) in enumerate(todo):
        try:
            crops = {c.reference_id: c for c in enrolment.reference_crops(store, pupil_id)}
        except ConsentError:
            crops = {}
        usable = 0
        for ref in refs.references:
            crop = crops.get(ref.reference_id)
            if crop is None:
                if name in ref.recognisers:
                    usable += 1
                continue
            face = Box(*crop.face) if crop.face else _centre_box(crop.pixels)
            encoding = encode_crop(rec, crop.pixels, face)
            if encoding is None:
                report.failed.append((pupil_id, ref.reference_id))
                continue
            made = enrolment.add_template(
                store,
                ref.reference_id,
                encoding,
                recogniser=rec.name,
                version=rec.version,
                operator=operator,
            )
            usable += 1
            if made:
                report.encoded += 1
            else:
                report.already += 1
        if usable == 0:
            report.need_new_photos.append(pupil_id)
        if progress is not None:
            progress(done + 1, len(todo))
    enrolment.set_recogniser(store, name, operator=operator)
    return report


def _centre_box(crop: np.ndarray) -> Box:
    """Where `pipeline.references.face_crop` puts the face when the box was not recorded."""
    side = crop.shape[0] / 2
    return Box(side / 2, side / 2, side, side)
