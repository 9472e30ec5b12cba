"""Review: the faces of a batch analysed for review, each as a close-up; approve all the
matched faces at once, reject the odd one out, tick blurred faces (one or several, in any
photos) and un-blur them as one pupil through a name picker (type a few letters of a
name, never an ID), then publish from the page. The tick boxes belong to one form at the
foot of the page (the HTML ``form`` attribute), so this works without JavaScript.

Built on `publishing.review.batch` (the same batches as `photoconsent review`): every
verdict is audited there under the signed-in person, and publishing a batch uses the
reviewed decisions, never a fresh guess.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from consent import enrolment, registry
from consent.errors import ConsentError
from pipeline.boxes import Box
from pipeline.errors import PipelineError
from pipeline.loading import load_image
from pipeline.matching import Decision
from publishing.review.batch import (
    ReviewBatch,
    ReviewError,
    Verdict,
    list_batches,
    load_batch,
    publish_batch,
    record_verdict,
)
from publishing.review.by_pupil import (
    approve_pupil,
    batch_pupils,
    group_by_pupil,
    jpeg_thumbnail,
    reject_face,
    unblur_as_named,
)
from publishing.review.picker import picker_labels
from web import jobs
from web.labels import PURPOSE_LABELS
from web.pages import posted, render, require, settings_of, store_for
from web.permissions import Permission
from web.thumbnails import thumbnail_jpeg

router = APIRouter()
CLOSE_UP_PX = 220


def _pupil_names(store_conn) -> dict[str, registry.Pupil]:  # type: ignore[no-untyped-def]
    return {p.pupil_id: p for p in registry.list_pupils(store_conn)}


@router.get("/review", response_class=HTMLResponse)
async def review_list(request: Request) -> Response:
    session = require(request, Permission.REVIEW)
    with store_for(request) as store:
        batches = [b for b in list_batches(store) if b.published_to is None]
    batches.sort(key=lambda b: b.created_at, reverse=True)
    return render(
        request,
        "review_list.html",
        session,
        title="Photos waiting for review",
        batches=batches,
        purposes=PURPOSE_LABELS,
    )


def load_batch_or_none(store, batch_id: str):  # type: ignore[no-untyped-def]
    try:
        return load_batch(store, batch_id)
    except ReviewError:
        return None


def _no_such_batch(request: Request, session) -> Response:  # type: ignore[no-untyped-def]
    return render(
        request,
        "refused.html",
        session,
        status_code=404,
        title="No such review",
        message="That review batch is not known; see Photos waiting for review.",
    )


def _batch_page(
    request: Request, session, batch_id: str, status_code: int = 200, **context
) -> Response:  # type: ignore[no-untyped-def]
    context.setdefault("ticked", [])
    context.setdefault("typed", "")
    with store_for(request) as store:
        batch = load_batch_or_none(store, batch_id)
        if batch is None:
            return _no_such_batch(request, session)
        pupils = _pupil_names(store.conn)
        permitted = registry.pupils_with_consent(store.conn, batch.purpose, date.today())
    names = session.can(Permission.NAMES)
    choices = list(picker_labels(pupils[p] for p in permitted if p in pupils)) if names else []
    return render(
        request,
        "review.html",
        session,
        status_code=status_code,
        title=f"Review: {batch.event}",
        batch=batch,
        pupils=pupils,
        names=names,
        choices=choices,
        purpose=PURPOSE_LABELS[batch.purpose],
        waiting=batch.awaiting_approval(),
        **context,
    )


@router.get("/review/{batch_id}", response_class=HTMLResponse)
async def review_batch(request: Request, batch_id: str) -> Response:
    session = require(request, Permission.REVIEW)
    return _batch_page(request, session, batch_id)


@router.get("/review/{batch_id}/face/{face_id}.jpg")
async def face_close_up(request: Request, batch_id: str, face_id: str) -> Response:
    """One face, cut from its photo with a margin, for the reviewer to look at closely."""
    require(request, Permission.REVIEW)
    try:
        with store_for(request) as store:
            batch = load_batch(store, batch_id)
        photo, face = next((p, f) for p, f in batch.faces() if f.face_id == face_id)
        pixels = load_image(Path(photo.input)).pixels
    except (ReviewError, StopIteration, PipelineError, OSError):
        return Response(status_code=404)
    box = Box(*face.box)
    pad = max(box.w, box.h) * 0.6
    h, w = pixels.shape[:2]
    top, left = max(0, int(box.y - pad)), max(0, int(box.x - pad))
    bottom, right = min(h, int(box.y2 + pad)), min(w, int(box.x2 + pad))
    data = thumbnail_jpeg(pixels[top:bottom, left:right], size=CLOSE_UP_PX)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _verdict(  # type: ignore[no-untyped-def]
    request: Request, session, batch_id: str, work, back: str = "", **kept
) -> Response:
    """Run ``work`` (a verdict); back to the batch page, or its by-pupil page. Refused,
    the page again with the problem and ``kept`` (what was ticked and typed)."""
    page = _pupils_page if back == "pupils" else _batch_page
    try:
        with store_for(request) as store:
            work(store)
    except (ReviewError, ConsentError) as exc:
        return page(request, session, batch_id, 400, problem=str(exc), **kept)
    suffix = "/pupils" if back == "pupils" else ""
    return RedirectResponse(f"/review/{batch_id}{suffix}", status_code=303)


@router.post("/review/{batch_id}/approve-all", response_class=HTMLResponse)
async def approve_all(request: Request, batch_id: str) -> Response:
    session, _ = await posted(request, Permission.REVIEW)

    def work(store) -> None:  # type: ignore[no-untyped-def]
        batch = load_batch(store, batch_id)
        waiting = [
            f.face_id for _, f in batch.faces() if f.decision is Decision.KEPT and not f.verdict
        ]
        if waiting:
            record_verdict(store, batch_id, waiting, Verdict.APPROVED, reviewer=session.operator)

    return _verdict(request, session, batch_id, work)


@router.post("/review/{batch_id}/verdict", response_class=HTMLResponse)
async def verdict(request: Request, batch_id: str) -> Response:
    session, form = await posted(request, Permission.REVIEW)
    face_id = str(form.get("face_id", ""))
    try:
        chosen = Verdict(str(form.get("verdict", "")))
    except ValueError:
        chosen = None
    if chosen not in (Verdict.APPROVED, Verdict.REJECTED):
        return _batch_page(request, session, batch_id, 400, problem="Choose keep or blur.")

    def work(store) -> None:  # type: ignore[no-untyped-def]
        record_verdict(store, batch_id, [face_id], chosen, reviewer=session.operator)

    return _verdict(request, session, batch_id, work)


@router.post("/review/{batch_id}/unblur", response_class=HTMLResponse)
async def unblur(request: Request, batch_id: str) -> Response:
    """Un-blur the ticked faces (one or several, from any photos) as the one pupil whose
    name the letters typed fit (the picker of `publishing.review.picker`: never a typed
    ID), in one audited verdict. Refused, the ticks kept, when two are in one photo."""
    session, form = await posted(request, Permission.REVIEW)
    face_ids = [str(f) for f in form.getlist("face_id")]
    typed = str(form.get("as_pupil", ""))

    def work(store) -> None:  # type: ignore[no-untyped-def]
        unblur_as_named(store, batch_id, face_ids, typed, reviewer=session.operator)

    return _verdict(request, session, batch_id, work, _back(form), ticked=face_ids, typed=typed)


def _back(form) -> str:  # type: ignore[no-untyped-def]
    return "pupils" if form.get("back") == "pupils" else ""


@router.post("/review/{batch_id}/reject", response_class=HTMLResponse)
async def reject(request: Request, batch_id: str) -> Response:
    """Blur the odd one out of a pupil's grid."""
    session, form = await posted(request, Permission.REVIEW)
    face_id = str(form.get("face_id", ""))

    def work(store) -> None:  # type: ignore[no-untyped-def]
        reject_face(store, batch_id, face_id, reviewer=session.operator)

    return _verdict(request, session, batch_id, work, _back(form))


@router.get("/review/{batch_id}/pupils", response_class=HTMLResponse)
async def by_pupil(request: Request, batch_id: str) -> Response:
    """Every face matched to each pupil in one grid beside their reference photo."""
    session = require(request, Permission.REVIEW)
    return _pupils_page(request, session, batch_id)


def _pupils_page(
    request: Request, session, batch_id: str, status_code: int = 200, **context
) -> Response:  # type: ignore[no-untyped-def]
    context.setdefault("ticked", [])
    context.setdefault("typed", "")
    with store_for(request) as store:
        batch = load_batch_or_none(store, batch_id)
        if batch is None:
            return _no_such_batch(request, session)
        groups = group_by_pupil(batch, batch_pupils(store, batch))
        labels = list(picker_labels(registry.list_pupils(store.conn)))
    return render(
        request,
        "review_pupils.html",
        session,
        status_code=status_code,
        title=f"Review by pupil: {batch.event}",
        batch=batch,
        groups=groups,
        names=session.can(Permission.NAMES),
        labels=labels if session.can(Permission.NAMES) else [],
        purpose=PURPOSE_LABELS[batch.purpose],
        **context,
    )


@router.post("/review/{batch_id}/pupils/{pupil_id}/approve", response_class=HTMLResponse)
async def approve_pupil_faces(request: Request, batch_id: str, pupil_id: str) -> Response:
    session, _ = await posted(request, Permission.REVIEW)

    def work(store) -> None:  # type: ignore[no-untyped-def]
        approve_pupil(store, batch_id, pupil_id, reviewer=session.operator)

    return _verdict(request, session, batch_id, work, "pupils")


@router.get("/review/{batch_id}/reference/{pupil_id}.jpg")
async def reference_thumbnail(request: Request, batch_id: str, pupil_id: str) -> Response:
    """The pupil's newest reference face, decrypted into memory for this reply only."""
    require(request, Permission.REVIEW)
    try:
        with store_for(request) as store:
            load_batch(store, batch_id)
            crops = enrolment.reference_crops(store, pupil_id)
    except (ReviewError, ConsentError):
        return Response(status_code=404)
    if not crops:
        return Response(status_code=404)
    return Response(
        jpeg_thumbnail(crops[-1].pixels),
        media_type="image/jpeg",
        headers={"Cache-Control": "no-store"},
    )


@router.post("/review/{batch_id}/publish", response_class=HTMLResponse)
async def publish_reviewed(request: Request, batch_id: str) -> Response:
    session, form = await posted(request, Permission.PUBLISH)
    settings = settings_of(request)
    try:
        with store_for(request) as store:
            batch: ReviewBatch = load_batch(store, batch_id)
    except ReviewError as exc:
        return _batch_page(request, session, batch_id, 404, problem=str(exc))
    job_id, folder = jobs.new_job_folder(settings.work)
    options = batch.options.publish_options(
        purpose=batch.purpose,
        out_dir=folder / "out",
        event=batch.event,
        operator=session.operator,
        on=date.today(),
        destination=str(form.get("destination", "")).strip() or None,
    )
    inputs = [Path(p.input) for p in batch.photos]
    # The batch's own photos, wherever it found them: not kept in the job's folder, so
    # not a publish that can be run again from its page.
    job = jobs.PublishJob(
        job_id, session.username, folder, inputs, options, source=jobs.Source.REVIEWED
    )
    request.app.state.jobs[job_id] = job
    jobs.start(
        job, settings.data_dir, lambda store, progress: publish_batch(store, batch_id, options)
    )
    return RedirectResponse(f"/publish/{job_id}", status_code=303)
