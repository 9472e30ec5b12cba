"""Enrol: reference photos of one pupil, or a zip named by pupil ID; each photo shown with
the faces found boxed, accepted or rejected with the reason in plain words.

What is kept is `publishing.enrolling`'s: the encrypted face crop and its template (and,
for a rejected photo, a preview kept a week); the uploaded photo itself is written to a
private temporary folder for the time it takes to read, then removed.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from consent import registry
from pipeline.detection import DetectionSettings, DetectionStage
from pipeline.errors import PipelineError
from pipeline.loading import load_image
from pipeline.references import REFERENCE_SUFFIXES, references_in_folder
from publishing.enrolling import enrol_photos
from web.pages import posted, render, require, settings_of, store_for
from web.permissions import Permission
from web.thumbnails import thumbnail_uri
from web.views.register import safe_file_name

router = APIRouter()
MAX_PHOTO_BYTES = 40 * 1024 * 1024
MAX_ZIP_BYTES = 500 * 1024 * 1024
MAX_ZIP_ENTRIES = 2000
_stage: DetectionStage | None = None
_stage_lock = threading.Lock()


def detection_stage() -> DetectionStage:
    """One detector for the app's lifetime (the models load once, on first use)."""
    global _stage
    with _stage_lock:
        if _stage is None:
            _stage = DetectionStage(DetectionSettings())
        return _stage


class _Remembering:
    """The detector, remembering what it found, so the page can box the faces without
    detecting twice."""

    def __init__(self, stage: DetectionStage) -> None:
        self.stage = stage
        self.found: list = []  # type: ignore[type-arg]

    def detect(self, pixels):  # type: ignore[no-untyped-def]
        self.found = self.stage.detect(pixels)
        return self.found


@dataclass(frozen=True)
class EnrolOutcome:
    pupil_id: str
    photo: str
    accepted: bool
    words: str
    preview: str | None


def _pupils_who_may_enrol(request: Request) -> list[registry.Pupil]:
    with store_for(request) as store:
        pupils = registry.list_pupils(store.conn)
        return [
            p
            for p in pupils
            if (r := registry.current_consent(store.conn, p.pupil_id)) and r.biometric_consent
        ]


@router.get("/enrol", response_class=HTMLResponse)
async def enrol_page(request: Request) -> Response:
    session = require(request, Permission.ENROL)
    return render(
        request,
        "enrol.html",
        session,
        title="Enrol reference photos",
        pupils=_pupils_who_may_enrol(request),
    )


def _plain(problem: str, photo: str) -> str:
    text = problem
    if text.startswith(f"{photo}: "):
        text = text[len(photo) + 2 :]
    if "biometric consent" in text:
        return (
            "no biometric consent on this pupil's slip, so their face may not be stored; "
            "update the slip and import the register again"
        )
    if "No pupil" in text:
        return "no pupil with this ID in the register (check the file name)"
    return text


def _enrol_one(request: Request, pupil_id: str, path: Path, operator: str) -> EnrolOutcome:
    """`publishing.enrolling.enrol_photos` for one photo (the data directory's recogniser,
    its quality checks and audit), remembering the faces found to box them."""
    remembering = _Remembering(detection_stage())
    with store_for(request) as store:
        report = enrol_photos(
            store,
            [(pupil_id, path)],
            operator=operator,
            detector=remembering,  # type: ignore[arg-type]
        )
    outcome = report.outcomes[0]
    if outcome.problem is None:
        accepted, words = True, "accepted: one clear face, stored as an encrypted reference"
    else:
        accepted, words = False, "rejected: " + _plain(outcome.problem, path.name)
    try:
        pixels = load_image(path).pixels
        colour = "#0a7d00" if accepted else "#b00020"
        preview = thumbnail_uri(pixels, [(d.box, colour) for d in remembering.found])
    except PipelineError:
        preview = None
    return EnrolOutcome(pupil_id, path.name, accepted, words, preview)


def _unzip(archive: Path, into: Path) -> list[str]:
    """Extract the photos of a zip into ``into`` as ``<pupil_id>.jpg`` or
    ``<pupil_id>/<name>.jpg``; other entries, and anything trying to climb out of the
    folder, are skipped and listed."""
    skipped = []
    with zipfile.ZipFile(archive) as z:
        entries = [i for i in z.infolist() if not i.is_dir()][:MAX_ZIP_ENTRIES]
        for info in entries:
            parts = [p for p in PurePosixPath(info.filename.replace("\\", "/")).parts if p]
            if parts and parts[0] in ("__MACOSX",):
                continue
            name = parts[-1] if parts else ""
            if (
                not name
                or name.startswith(".")
                or Path(name).suffix.lower() not in REFERENCE_SUFFIXES
                or info.file_size > MAX_PHOTO_BYTES
            ):
                skipped.append(safe_file_name(info.filename, "a file"))
                continue
            # The folder a photo is in names the pupil; "..", "/" and the like name nobody.
            parent = safe_file_name(parts[-2], "") if len(parts) >= 2 else ""
            target = into / safe_file_name(name, "photo.jpg")
            if parent:
                folder = into / parent
                folder.mkdir(exist_ok=True)
                target = folder / safe_file_name(name, "photo.jpg")
            with z.open(info) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
    return skipped


@router.post("/enrol", response_class=HTMLResponse)
async def enrol_upload(request: Request) -> Response:
    session, form = await posted(request, Permission.ENROL)
    folder = Path(tempfile.mkdtemp(dir=settings_of(request).work, prefix=".enrol-"))
    try:
        jobs: list[tuple[str, Path]] = []
        skipped: list[str] = []
        problem = None
        archive = form.get("zip")
        if isinstance(archive, UploadFile) and archive.filename:
            path = folder / "upload.zip"
            path.write_bytes(await archive.read(MAX_ZIP_BYTES + 1))
            if path.stat().st_size > MAX_ZIP_BYTES:
                problem = "That zip is larger than 500 MB; split it into smaller ones."
            else:
                photos = folder / "photos"
                photos.mkdir()
                try:
                    skipped = _unzip(path, photos)
                except zipfile.BadZipFile:
                    problem = "That file is not a zip archive that can be opened."
                jobs = list(references_in_folder(photos))
        else:
            pupil_id = str(form.get("pupil_id", ""))
            for i, upload in enumerate(form.getlist("photos")):
                if isinstance(upload, UploadFile) and upload.filename:
                    # One folder per upload, so two photos of the same name both count
                    # and each is shown under its own name.
                    (folder / f"{i:04d}").mkdir()
                    target = folder / f"{i:04d}" / safe_file_name(upload.filename, "photo.jpg")
                    target.write_bytes(await upload.read(MAX_PHOTO_BYTES))
                    jobs.append((pupil_id, target))
            if not pupil_id:
                problem = "Choose the pupil the photos are of."
        if problem is None and not jobs:
            problem = "No photos to enrol: choose the pupil and their photos, or a zip."
        if problem is not None:
            return render(
                request,
                "enrol.html",
                session,
                status_code=400,
                title="Enrol reference photos",
                pupils=_pupils_who_may_enrol(request),
                problem=problem,
            )
        outcomes = [
            await run_in_threadpool(_enrol_one, request, pid, photo, session.operator)
            for pid, photo in jobs
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return render(
        request,
        "enrol_done.html",
        session,
        title="Enrolment results",
        outcomes=outcomes,
        skipped=skipped,
        accepted=sum(o.accepted for o in outcomes),
    )
