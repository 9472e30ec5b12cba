"""The data protection officer's screens: subject access export, erasure, retention and
purge, and settings. Each calls the same library function as its command
(``photoconsent export``, ``forget``, ``retention``/``purge``, ``names``, ``where``), audited
under the signed-in person. A pupil is always chosen through the name picker, never by a
typed ID.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from datetime import date
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.background import BackgroundTask

from consent import crypto, registry
from consent import export as subject_export
from consent import name_policy as policies
from consent import retention as leavers
from consent.errors import ConsentError
from consent.medical.key import medical_key_path
from consent.name_policy import NamePolicy
from consent.registry import Purpose
from consent.takedown import takedown_report
from pipeline import __version__
from pipeline.recognisers import RECOGNISERS
from publishing.enrolling import recogniser_name
from publishing.review.batch import ReviewError
from publishing.review.picker import pick_pupil, picker_labels
from web.labels import PURPOSE_LABELS
from web.pages import posted, render, require, settings_of, store_for
from web.permissions import Permission
from web.words import uk_date

router = APIRouter()

CATEGORY_WORDS = {
    "biometrics": "Face references (the encrypted templates from enrolment photos)",
    "medical": "Medical records",
    "board_photos": "Photos on medical boards",
}
POLICY_WORDS = {
    NamePolicy.FULL: "Full names of the pupils shown",
    NamePolicy.FIRST_ONLY: "First names only",
    NamePolicy.NONE: "No names",
}


def plain_purge_reason(reason: str) -> str:
    """The library's reason ("left 2025-07-20, kept 0 day(s) after leaving") with its
    dates as the UK writes them."""
    return re.sub(r"\d{4}-\d{2}-\d{2}", lambda m: uk_date(m.group(0)), reason)


def _labels(request: Request) -> list[str]:
    with store_for(request) as store:
        return list(picker_labels(registry.list_pupils(store.conn)))


def _picked(request: Request, typed: str) -> registry.Pupil:
    """The one pupil the name typed fits; `ReviewError` (plain words) otherwise."""
    with store_for(request) as store:
        return pick_pupil(registry.list_pupils(store.conn), typed)


# --- subject access export ----------------------------------------------------------------


def _export_page(request: Request, session, status_code: int = 200, **context) -> Response:  # type: ignore[no-untyped-def]
    return render(
        request,
        "export.html",
        session,
        status_code=status_code,
        title="Export a pupil's data",
        labels=_labels(request),
        **context,
    )


@router.get("/export", response_class=HTMLResponse)
async def export_page(request: Request) -> Response:
    return _export_page(request, require(request, Permission.EXPORT))


def _published_folders(work: Path) -> list[Path]:
    """The folders the app published into. The export also searches every output folder
    the audit log records (`consent.export.find_published`: command-line publishes too);
    these are for entries written before publish recorded its folder."""
    return sorted(p for p in (work / "publish").glob("*/out") if p.is_dir())


@router.post("/export")
async def export_pupil(request: Request) -> Response:
    session, form = await posted(request, Permission.EXPORT)
    transfer = form.get("transfer") == "1"
    try:
        pupil = _picked(request, str(form.get("pupil", "")))
    except ReviewError as exc:
        return _export_page(request, session, 400, problem=str(exc))
    work = settings_of(request).work
    scratch = Path(tempfile.mkdtemp(dir=work, prefix=".export-"))
    try:
        folder = scratch / "export"
        with store_for(request) as store:
            subject_export.export_pupil(
                store,
                pupil.pupil_id,
                folder,
                operator=session.operator,
                transfer=transfer,
                photo_folders=[] if transfer else _published_folders(work),
            )
        handle = tempfile.NamedTemporaryFile(
            dir=work, prefix=".download-", suffix=".zip", delete=False
        )
        handle.close()
        zipped = Path(handle.name)
        zipped.chmod(0o600)
        with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(folder).as_posix())
    except ConsentError as exc:
        return _export_page(request, session, 400, problem=str(exc))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # no loose copy of a child's data
    kind = "transfer" if transfer else "subject-access"
    return FileResponse(
        zipped,
        media_type="application/zip",
        filename=f"{kind}-{pupil.pupil_id}.zip",
        background=BackgroundTask(zipped.unlink, missing_ok=True),
    )


# --- erasure -------------------------------------------------------------------------------


def _erase_page(request: Request, session, status_code: int = 200, **context) -> Response:  # type: ignore[no-untyped-def]
    return render(
        request,
        "erase.html",
        session,
        status_code=status_code,
        title="Erase a pupil",
        labels=_labels(request),
        **context,
    )


@router.get("/erase", response_class=HTMLResponse)
async def erase_page(request: Request) -> Response:
    return _erase_page(request, require(request, Permission.ERASE))


@router.post("/erase/check", response_class=HTMLResponse)
async def erase_check(request: Request) -> Response:
    """The confirmation page: exactly what will be deleted and what is kept, and why."""
    session, form = await posted(request, Permission.ERASE)
    try:
        pupil = _picked(request, str(form.get("pupil", "")))
    except ReviewError as exc:
        return _erase_page(request, session, 400, problem=str(exc))
    with store_for(request) as store:
        held = {
            name: category.count(store.conn, pupil.pupil_id)
            for name, category in sorted(leavers.CATEGORIES.items())
        }
        # Published photos that show their face and have not been replaced: erasing
        # withdraws every consent, so each goes onto the office's takedown list.
        showing = sum(
            1
            for p in subject_export.published_with(store, pupil.pupil_id)
            if p["face_shown"] and p["replaced_by"] is None
        )
    return render(
        request,
        "erase_confirm.html",
        session,
        title="Check before erasing",
        pupil=pupil,
        held=held,
        words=CATEGORY_WORDS,
        showing=showing,
    )


@router.post("/erase", response_class=HTMLResponse)
async def erase(request: Request) -> Response:
    session, form = await posted(request, Permission.ERASE)
    pupil_id = str(form.get("pupil_id", ""))
    source = str(form.get("source", "")).strip() or "erasure request"
    if form.get("confirm") != "1":
        return _erase_page(
            request, session, 400, problem="Tick the box to confirm, or nothing is erased."
        )
    try:
        with store_for(request) as store:
            purged = leavers.forget(store, pupil_id, operator=session.operator, source=source)
            to_take_down = [i for i in takedown_report(store, pupil_id) if i.replaced_by is None]
    except ConsentError as exc:
        return _erase_page(request, session, 400, problem=str(exc))
    deleted = sum(p.deleted for p in purged)
    if to_take_down:
        # Takedown is the office's job (web.permissions): say who does it, not "you".
        photos = f"{len(to_take_down)} published photo{'' if len(to_take_down) == 1 else 's'}"
        after = (
            f" {photos} showed their face and are not deleted by this: they are now on the "
            f"Takedown list under pupil {pupil_id}, and the school office takes each down "
            "from where it went and republishes it with the child blurred."
        )
    else:
        after = " No published photo of them is waiting to be taken down."
    return _erase_page(
        request,
        session,
        done=f"Pupil {pupil_id} erased: names and class blanked, consent withdrawn, "
        f"{deleted} stored item(s) deleted." + after,
        takedown=pupil_id if to_take_down else None,
    )


# --- retention and purge -------------------------------------------------------------------


def _retention_page(request: Request, session, status_code: int = 200, **context) -> Response:  # type: ignore[no-untyped-def]
    with store_for(request) as store:
        periods = leavers.retention(store.conn)
        due = leavers.purge(store, operator=session.operator, today=date.today(), dry_run=True)
    return render(
        request,
        "retention.html",
        session,
        status_code=status_code,
        title="How long data is kept",
        periods=periods,
        categories=leavers.CATEGORIES,
        words=CATEGORY_WORDS,
        due=[(d, plain_purge_reason(d.reason)) for d in due],
        **context,
    )


@router.get("/retention", response_class=HTMLResponse)
async def retention_page(request: Request) -> Response:
    return _retention_page(request, require(request, Permission.RETENTION))


@router.post("/retention/{category}", response_class=HTMLResponse)
async def set_retention(request: Request, category: str) -> Response:
    session, form = await posted(request, Permission.RETENTION)
    keep = str(form.get("keep", ""))
    days_text = str(form.get("days", "")).strip()
    if keep == "never":
        days = None
    elif days_text.isdigit() and len(days_text) <= 6:
        days = int(days_text)
    else:
        return _retention_page(
            request, session, 400, problem="Give the number of days as a whole number (0 or more)."
        )
    try:
        with store_for(request) as store:
            leavers.set_retention(store, category, days, operator=session.operator)
    except ConsentError as exc:
        return _retention_page(request, session, 400, problem=str(exc))
    kept = "until erased" if days is None else f"for {days} day(s) after a pupil leaves"
    return _retention_page(
        request, session, done=f"{CATEGORY_WORDS.get(category, category)}: now kept {kept}."
    )


@router.post("/purge", response_class=HTMLResponse)
async def purge(request: Request) -> Response:
    session, _ = await posted(request, Permission.RETENTION)
    with store_for(request) as store:
        purged = leavers.purge(store, operator=session.operator, today=date.today())
    deleted = sum(p.deleted for p in purged)
    pupils = len({p.pupil_id for p in purged})
    return _retention_page(
        request,
        session,
        done=f"Purge done: {deleted} item(s) of {pupils} pupil(s) deleted, and recorded in the "
        "audit log."
        if purged
        else "Purge done: nothing was due, and that is recorded in the audit log.",
    )


# --- settings ------------------------------------------------------------------------------


def _settings_page(request: Request, session, status_code: int = 200, **context) -> Response:  # type: ignore[no-untyped-def]
    data_dir = settings_of(request).data_dir
    with store_for(request) as store:
        current = policies.name_policies(store.conn)
        defaults = {p: policies.is_default(store.conn, p) for p in Purpose}
        recogniser = recogniser_name(store)
    secret, medical = crypto.key_path(data_dir), medical_key_path(data_dir)
    facts = {
        "Data directory": str(data_dir),
        "Face recogniser": recogniser,
        "Recogniser version": getattr(
            RECOGNISERS.get(recogniser), "version", "not in this version"
        ),
        "photoconsent version": __version__,
        "Secret key": "present" if secret.is_file() else "missing",
        "Secret key kept at": str(secret.parent),
        "Medical key": "present" if medical.is_file() else "not made yet",
    }
    inside = secret.absolute().is_relative_to(data_dir.absolute()) and secret.is_file()
    return render(
        request,
        "settings.html",
        session,
        status_code=status_code,
        title="Settings",
        policies=[
            (p, PURPOSE_LABELS[p], current[p], defaults[p], p in policies.INTERNAL) for p in Purpose
        ],
        choices=list(NamePolicy),
        words=POLICY_WORDS,
        facts=facts,
        keys_inside=inside,
        **context,
    )


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request) -> Response:
    return _settings_page(request, require(request, Permission.SETTINGS))


@router.post("/settings/names", response_class=HTMLResponse)
async def set_names(request: Request) -> Response:
    session, form = await posted(request, Permission.SETTINGS)
    try:
        purpose = Purpose(str(form.get("purpose", "")))
        chosen = NamePolicy(str(form.get("policy", "")))
    except ValueError:
        return _settings_page(request, session, 400, problem="Choose a purpose and a policy.")
    try:
        with store_for(request) as store:
            policies.set_name_policy(
                store,
                purpose,
                chosen,
                operator=session.operator,
                allow_full_external=form.get("allow_full") == "1",
            )
    except ConsentError as exc:
        return _settings_page(request, session, 400, problem=str(exc))
    return _settings_page(
        request,
        session,
        done=f"{PURPOSE_LABELS[purpose]} captions: {POLICY_WORDS[chosen].lower()}.",
    )
