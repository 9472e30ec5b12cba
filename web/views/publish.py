"""Publish: pick photos (upload, or a folder on this PC), purpose, event, captions; live
progress; a results grid with before/after thumbnails and withheld photos with their
reason; "download for upload", a zip of the published photos and captions only.

Every publish is listed under *Recent publishes*, also after the app restarts (each job's
folder has a ``job.json``, see `web.jobs`); one the restart interrupted can be run again.
Any account that may publish sees every publish: the office shares its work.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from consent import files
from consent.errors import FileWriteError
from consent.registry import Purpose
from pipeline.errors import PipelineError
from pipeline.loading import load_image
from pipeline.matching import Decision
from pipeline.recognisers import match_settings
from publishing.captions.sources import CaptionCsvError, parse_captions_csv
from publishing.enrolling import recogniser_name
from publishing.options import PublishOptions
from publishing.publish import slug
from web import jobs
from web.labels import PURPOSE_LABELS
from web.pages import posted, render, require, settings_of, store_for
from web.permissions import Permission
from web.thumbnails import thumbnail_jpeg
from web.views.register import safe_file_name

router = APIRouter()
MAX_PHOTO_BYTES = 60 * 1024 * 1024
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff")


def _form_page(request: Request, session, status_code: int = 200, **context) -> Response:  # type: ignore[no-untyped-def]
    return render(
        request,
        "publish.html",
        session,
        status_code=status_code,
        title="Publish photos",
        purposes=PURPOSE_LABELS,
        recent=jobs.recent(request.app.state.jobs.values()),
        **context,
    )


@router.get("/publish", response_class=HTMLResponse)
async def publish_page(request: Request) -> Response:
    return _form_page(request, require(request, Permission.PUBLISH))


@router.post("/publish", response_class=HTMLResponse)
async def publish_start(request: Request) -> Response:
    session, form = await posted(request, Permission.PUBLISH)
    settings = settings_of(request)
    event = str(form.get("event", "")).strip()
    destination = str(form.get("destination", "")).strip() or None
    folder_text = str(form.get("folder", "")).strip()
    try:
        purpose = Purpose(str(form.get("purpose", "")))
    except ValueError:
        return _form_page(request, session, 400, problem="Choose what the photos are for.")
    if not event:
        return _form_page(request, session, 400, problem="Give the event a name (Sports day).")
    captions, caption_bytes = None, b""
    caption_file = form.get("captions")
    if isinstance(caption_file, UploadFile) and caption_file.filename:
        caption_bytes = await caption_file.read(5 * 1024 * 1024)
        try:
            captions = parse_captions_csv(caption_bytes)
        except CaptionCsvError as exc:
            problems = "; ".join(f"line {n}: {m}" if n else m for n, m in exc.problems)
            return _form_page(
                request, session, 400, problem=f"The captions file cannot be used: {problems}"
            )
    uploads = [u for u in form.getlist("photos") if isinstance(u, UploadFile) and u.filename]
    if not uploads and not folder_text:
        return _form_page(
            request, session, 400, problem="Choose the photos, or give the folder they are in."
        )
    if not uploads and not Path(folder_text).expanduser().is_dir():
        return _form_page(
            request,
            session,
            400,
            problem="That folder was not found on this computer. Copy its address from "
            "the file explorer's address bar.",
        )
    job_id, folder = jobs.new_job_folder(settings.work)
    if uploads:
        source = jobs.Source.UPLOAD
        for upload in uploads:
            name = safe_file_name(upload.filename, "photo.jpg")
            target = folder / "in" / name
            stem, n = target.stem, 1
            while target.exists():
                target = target.with_name(f"{stem}-{n}{target.suffix}")
                n += 1
            target.write_bytes(await upload.read(MAX_PHOTO_BYTES))
        inputs = [folder / "in"]
    else:
        source = jobs.Source.FOLDER
        inputs = [Path(folder_text).expanduser().resolve()]
    with store_for(request) as store:
        # The data directory's recogniser and the keep rule it was calibrated with.
        matching = match_settings(recogniser_name(store))
    options = PublishOptions(
        purpose=purpose,
        matching=matching,
        out_dir=folder / "out",
        event=event,
        operator=session.operator,
        on=date.today(),
        destination=destination,
        captions=captions,
        workers=settings.workers,
    )
    job = jobs.PublishJob(
        job_id,
        session.username,
        folder,
        inputs,
        options,
        source=source,
        review=form.get("review") == "1",
        photo_names=jobs.kept_photo_names(folder) if source is jobs.Source.UPLOAD else [],
    )
    try:
        if captions is not None:
            # Kept (owner-only, beside in/) so the publish can be run again after a restart.
            files.create_exclusive(folder / jobs.CAPTIONS_GIVEN, caption_bytes, mode=files.PRIVATE)
        jobs.start(job, settings.data_dir, jobs.work_for(job))
    except FileWriteError:
        return _form_page(request, session, 500, problem=_CANNOT_WRITE)
    request.app.state.jobs[job_id] = job
    return RedirectResponse(f"/publish/{job_id}", status_code=303)


_CANNOT_WRITE = (
    "The app could not write to its folder on this computer (is the disk full?), so "
    "nothing was started. Ask your IT technician."
)


@router.post("/publish/{job_id}/again", response_class=HTMLResponse)
async def publish_again(request: Request, job_id: str) -> Response:
    """Run an interrupted (or failed) publish again: same kept photos, same options."""
    session, _ = await posted(request, Permission.PUBLISH)
    settings = settings_of(request)
    job = _job(request, job_id)
    if job is None:
        return _no_such_job(request, session)
    if not job.can_run_again:
        # Already running again (a second click), or it finished: show it as it is.
        return RedirectResponse(f"/publish/{job_id}", status_code=303)
    with store_for(request) as store:
        matching = match_settings(recogniser_name(store))
    try:
        again = jobs.run_again(job, session.username, matching, settings.workers)
    except jobs.CannotRunAgain as exc:
        return render(
            request, "refused.html", session, status_code=409, title="Cannot run it again",
            message=str(exc),
        )  # fmt: skip
    # No await between the check above and this: a second click sees the new run.
    request.app.state.jobs[job_id] = again
    try:
        jobs.start(again, settings.data_dir, jobs.work_for(again))
    except FileWriteError:
        request.app.state.jobs[job_id] = job
        return _form_page(request, session, 500, problem=_CANNOT_WRITE)
    return RedirectResponse(f"/publish/{job_id}", status_code=303)


def _job(request: Request, job_id: str) -> jobs.PublishJob | None:
    return request.app.state.jobs.get(job_id)  # type: ignore[no-any-return]


@router.get("/api/publish/{job_id}")
async def publish_progress(request: Request, job_id: str) -> Response:
    require(request, Permission.PUBLISH)
    job = _job(request, job_id)
    if job is None:
        return JSONResponse({"finished": True, "words": "No such publish."}, status_code=404)
    return JSONResponse(job.state())


@router.get("/publish/{job_id}", response_class=HTMLResponse)
async def publish_job(request: Request, job_id: str) -> Response:
    session = require(request, Permission.PUBLISH)
    job = _job(request, job_id)
    if job is None:
        return _no_such_job(request, session)
    if not job.finished:
        return render(request, "publish_progress.html", session, title="Publishing", job=job)
    if job.review_batch is not None:
        return RedirectResponse(f"/review/{job.review_batch}", status_code=303)
    cards = []
    if job.report is not None:
        for i, r in enumerate(job.report.results):
            blurred = sum(1 for f in r.faces if f.decision is Decision.BLURRED)
            kept = sum(1 for f in r.faces if f.decision is Decision.KEPT)
            source = Path(r.input).name
            name = Path(r.output).name if r.output else source
            cards.append(
                {
                    "index": i,
                    "result": r,
                    "blurred": blurred,
                    "kept": kept,
                    "name": name,
                    "source": source,
                }  # fmt: skip
            )
    made: list[str] = []
    if job.interrupted:
        with store_for(request) as store:
            made = jobs.made_before(store, job)
    ended = job.report is not None and not job.error
    return render(
        request,
        "publish_results.html",
        session,
        title=f"{'Published' if ended else 'Publish'}: {job.options.event}",
        job=job,
        cards=cards,
        made=made,
        purpose=PURPOSE_LABELS[job.options.purpose],
    )


def _no_such_job(request: Request, session) -> Response:  # type: ignore[no-untyped-def]
    return render(
        request,
        "refused.html",
        session,
        status_code=404,
        title="No such publish",
        message="This publish is not known. Find it under Recent publishes on the "
        "Publish screen; a publish from before this version of the app is not listed, "
        "but its photos are still in the app's folder.",
    )


@router.get("/publish/{job_id}/{index}/{which}.jpg")
async def publish_thumbnail(request: Request, job_id: str, index: int, which: str) -> Response:
    """A thumbnail of one photo: ``before`` (the original, faces boxed) or ``after``
    (the published copy)."""
    require(request, Permission.PUBLISH)
    job = _job(request, job_id)
    if job is None or job.report is None or not 0 <= index < len(job.report.results):
        return Response(status_code=404)
    result = job.result(index)
    if which == "after" and result.output:
        path = job.out_dir / Path(result.output).name
        boxes = []
    elif which == "before":
        path = _input_path(job, result.input)
        if job.source is jobs.Source.UPLOAD and not _inside(path, job.folder / "in"):
            return Response(status_code=404)  # a report names only this job's own photos
        colour = {Decision.KEPT: "#0a7d00", Decision.BLURRED: "#b00020"}
        boxes = [(f.box, colour[f.decision]) for f in result.faces]
    else:
        return Response(status_code=404)
    try:
        data = thumbnail_jpeg(load_image(path).pixels, boxes)
    except (PipelineError, OSError):
        return Response(status_code=404)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _input_path(job: jobs.PublishJob, shown: str) -> Path:
    """Where an input named in the report is (relative names are under the inputs)."""
    path = Path(shown)
    if path.is_absolute():
        return path
    for base in job.inputs:
        candidate = base / path if base.is_dir() else base.parent / path
        if candidate.is_file():
            return candidate
        if (base.parent / path).is_file():
            return base.parent / path
    return path


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


@router.get("/publish/{job_id}/download")
async def publish_download(request: Request, job_id: str) -> Response:
    session = require(request, Permission.PUBLISH)
    job = _job(request, job_id)
    if job is None or job.report is None:
        return Response(status_code=404)
    handle = tempfile.NamedTemporaryFile(
        dir=settings_of(request).work, prefix=".download-", suffix=".zip", delete=False
    )
    handle.close()
    try:
        path = jobs.write_upload_zip(job, Path(handle.name))
    except jobs.UnsafeDownload as exc:
        return render(
            request, "refused.html", session, status_code=409, title="Nothing to download",
            message=f"The download was not made: {exc}. Publish the photos again.",
        )  # fmt: skip
    name = f"{slug(job.options.event)}-{job.options.purpose.value}.zip"
    return FileResponse(
        path,
        media_type="application/zip",
        filename=name,
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
