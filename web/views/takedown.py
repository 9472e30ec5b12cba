"""Takedown: a withdrawal shows the published photos that kept the pupil, as thumbnails,
with where each went; one click republishes replacements with the pupil blurred.

Withdrawing consent is on the pupil's page (`withdraw`), recorded as a single consent
change (`consent.changes`), so a later import of an older spreadsheet cannot undo it.
"""

from __future__ import annotations

import secrets
import tempfile
import zipfile
from datetime import date
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from consent import changes, registry
from consent.errors import ConsentError, UnknownPupil
from consent.registry import Purpose
from consent.takedown import TakedownItem, takedown_report
from pipeline.errors import PipelineError
from pipeline.loading import load_image
from publishing.republish import RepublishStatus, republish
from web.dashboard import pending_takedowns
from web.labels import purpose_label
from web.pages import posted, render, require, settings_of, store_for
from web.permissions import Permission
from web.thumbnails import thumbnail_jpeg

router = APIRouter()


@router.post("/pupils/{pupil_id}/withdraw", response_class=HTMLResponse)
async def withdraw(request: Request, pupil_id: str) -> Response:
    session, form = await posted(request, Permission.IMPORT)
    chosen = {p for p in Purpose if form.get(f"purpose_{p.value}") == "1"}
    source = str(form.get("source", "")).strip()
    problem = None
    if not chosen:
        problem = "Tick the purposes the parent withdrew consent for."
    elif not source:
        problem = "Say where the withdrawal came from (for example: letter from parent, 2 Dec)."
    if problem is None:
        try:
            with store_for(request) as store:
                changes.change_consent(
                    store,
                    pupil_id,
                    changes.ConsentChange(
                        kind=changes.ChangeKind.WITHDRAW,
                        source=source,
                        withdraw=frozenset(chosen),
                    ),
                    operator=session.operator,
                )
        except UnknownPupil:
            problem = "There is no pupil with that ID in the register."
        except ConsentError as exc:
            problem = str(exc)
    if problem is not None:
        return render(
            request,
            "refused.html",
            session,
            status_code=400,
            title="Consent not changed",
            message=problem,
        )
    return RedirectResponse(f"/takedown/{pupil_id}", status_code=303)


@router.get("/takedown", response_class=HTMLResponse)
async def takedown_list(request: Request) -> Response:
    session = require(request, Permission.TAKEDOWN)
    with store_for(request) as store:
        pending = pending_takedowns(store, date.today())
        pupils = {p.pupil_id: p for p in registry.list_pupils(store.conn)}
    return render(
        request,
        "takedown_list.html",
        session,
        title="Photos to take down",
        pending=pending,
        pupils=pupils,
        names=session.can(Permission.NAMES),
    )


def _items(request: Request, pupil_id: str) -> tuple[list[TakedownItem], registry.Pupil | None]:
    with store_for(request) as store:
        items = takedown_report(store, pupil_id, on=date.today())
        try:
            pupil = registry.get_pupil(store.conn, pupil_id)
        except UnknownPupil:
            pupil = None  # erased: the audit keeps the ID only
    return items, pupil


@router.get("/takedown/{pupil_id}", response_class=HTMLResponse)
async def takedown_pupil(request: Request, pupil_id: str) -> Response:
    session = require(request, Permission.TAKEDOWN)
    try:
        items, pupil = _items(request, pupil_id)
    except UnknownPupil:
        return render(
            request,
            "refused.html",
            session,
            status_code=404,
            title="No such pupil",
            message="That pupil ID is not in the register or the audit log.",
        )
    return _takedown_page(request, session, pupil_id, items, pupil)


@router.get("/takedown/{pupil_id}/{seq}.jpg")
async def takedown_thumbnail(request: Request, pupil_id: str, seq: int) -> Response:
    """The published copy as it went out (from the folder it was written to)."""
    require(request, Permission.TAKEDOWN)
    try:
        items, _ = _items(request, pupil_id)
    except UnknownPupil:
        return Response(status_code=404)
    item = next((i for i in items if i.audit_seq == seq), None)
    if item is None or item.output_path is None:
        return Response(status_code=404)
    try:
        data = thumbnail_jpeg(load_image(Path(item.output_path)).pixels)
    except (PipelineError, OSError):
        return Response(status_code=404)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.post("/takedown/{pupil_id}/republish", response_class=HTMLResponse)
async def takedown_republish(request: Request, pupil_id: str) -> Response:
    session, _ = await posted(request, Permission.TAKEDOWN)
    token = secrets.token_hex(8)
    out_dir = settings_of(request).work / "takedown" / token

    def run() -> list:  # type: ignore[type-arg]
        with store_for(request) as store:
            items = takedown_report(store, pupil_id, on=date.today())
            return republish(store, pupil_id, items, out_dir, operator=session.operator)

    try:
        outcomes = await run_in_threadpool(run)
    except (ConsentError, PipelineError) as exc:
        return render(
            request,
            "refused.html",
            session,
            status_code=400,
            title="Nothing republished",
            message=str(exc),
        )
    replaced = [o.new_output for o in outcomes if o.status is RepublishStatus.REPLACED]
    request.app.state.replacements[token] = (out_dir, [n for n in replaced if n])
    items, pupil = _items(request, pupil_id)
    return _takedown_page(
        request, session, pupil_id, items, pupil, outcomes, token if replaced else None
    )


def _takedown_page(  # type: ignore[no-untyped-def]
    request: Request, session, pupil_id: str, items, pupil, outcomes=None, token=None
) -> Response:
    return render(
        request,
        "takedown.html",
        session,
        title=f"Take down: {pupil_id}",
        pupil_id=pupil_id,
        pupil=pupil,
        items=items,
        waiting=[i for i in items if i.replaced_by is None],
        names=session.can(Permission.NAMES),
        purpose_label=purpose_label,
        outcomes=outcomes,
        token=token,
    )


@router.get("/takedown/replacements/{token}/download")
async def replacements_download(request: Request, token: str) -> Response:
    require(request, Permission.TAKEDOWN)
    found = request.app.state.replacements.get(token)
    if found is None:
        return Response(status_code=404)
    out_dir, names = found
    handle = tempfile.NamedTemporaryFile(
        dir=settings_of(request).work, prefix=".download-", suffix=".zip", delete=False
    )
    handle.close()
    with zipfile.ZipFile(handle.name, "w") as z:
        for name in names:
            z.write(out_dir / name, name)
    path = Path(handle.name)
    return FileResponse(
        path,
        media_type="application/zip",
        filename="replacements.zip",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
