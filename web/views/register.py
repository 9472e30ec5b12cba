"""The register: the import wizard (upload, format or mapping, preview, confirm), the
pupil list with search, and a pupil's page (consent history, references, photos)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from consent import audit, changes, enrolment, mis, registry
from consent.errors import CsvImportError, UnknownPupil
from consent.registry import Purpose
from consent.store import Store
from web.labels import PURPOSE_LABELS, purpose_label
from web.pages import posted, render, require, settings_of, store_for
from web.permissions import Permission
from web.sessions import Session

router = APIRouter()
MAX_EXPORT_BYTES = 20 * 1024 * 1024
FORMAT_LABELS = {
    "auto": "Recognise it from the columns",
    "sims": "SIMS",
    "arbor": "Arbor",
    "bromcom": "Bromcom",
    "photoconsent": "photoconsent's own layout",
    "mapping": "My own column mapping (upload a mapping file)",
}


@dataclass(frozen=True)
class PupilRow:
    pupil: registry.Pupil
    allowed: list[Purpose]
    biometric: bool
    expires_on: date | None
    references: int
    left_on: str | None


def _pupil_rows(store: Store, on: date) -> list[PupilRow]:
    counts = enrolment.reference_counts(store.conn)
    left = dict(store.conn.execute("SELECT pupil_id, left_on FROM pupils").fetchall())
    rows = []
    for pupil in registry.list_pupils(store.conn):
        record = registry.current_consent(store.conn, pupil.pupil_id)
        rows.append(
            PupilRow(
                pupil,
                changes.allowed_purposes(record, on),
                bool(record and record.biometric_consent),
                record.expires_on if record else None,
                counts.get(pupil.pupil_id, 0),
                left.get(pupil.pupil_id),
            )
        )
    return rows


def _matches(row: PupilRow, q: str, class_name: str, purpose: str, names: bool) -> bool:
    if class_name and row.pupil.class_name != class_name:
        return False
    if purpose == "none" and row.allowed:
        return False
    if purpose not in ("", "none") and Purpose(purpose) not in row.allowed:
        return False
    if q:
        words = [row.pupil.pupil_id]
        if names:
            p = row.pupil
            words += [p.first_name, p.last_name, p.known_first_name, p.known_last_name]
            words.append(f"{p.known_first_name} {p.known_last_name}")
        return any(q.lower() in w.lower() for w in words)
    return True


@router.get("/pupils", response_class=HTMLResponse)
async def pupils(
    request: Request,
    q: str = "",
    class_name: str = "",
    purpose: str = "",
    expiring: str = "",
    leavers: str = "",
) -> Response:
    session = require(request, Permission.PUPILS)
    names = session.can(Permission.NAMES)
    if purpose not in ("", "none", *(p.value for p in Purpose)):
        purpose = ""
    today = date.today()
    with store_for(request) as store:
        rows = _pupil_rows(store, today)
        classes = sorted({r.pupil.class_name for r in rows})
        shown = [r for r in rows if _matches(r, q.strip(), class_name, purpose, names)]
        if expiring:
            from web.dashboard import expiring_consents

            soon = {e.pupil_id for e in expiring_consents(store, today)}
            shown = [r for r in shown if r.pupil.pupil_id in soon]
        if leavers:
            shown = [r for r in shown if r.left_on]
    return render(
        request,
        "pupils.html",
        session,
        title="Pupils",
        rows=shown,
        total=len(rows),
        classes=classes,
        q=q,
        class_name=class_name,
        purpose=purpose,
        names=names,
        purposes=PURPOSE_LABELS,
        purpose_label=purpose_label,
        today=today,
    )


@router.get("/pupils/{pupil_id}", response_class=HTMLResponse)
async def pupil_page(request: Request, pupil_id: str) -> Response:
    session = require(request, Permission.PUPILS)
    with store_for(request) as store:
        try:
            pupil = registry.get_pupil(store.conn, pupil_id)
            history = changes.history(store.conn, pupil_id)
        except UnknownPupil:
            return render(
                request,
                "refused.html",
                session,
                status_code=404,
                title="No such pupil",
                message="There is no pupil with that ID in the register.",
            )
        references = enrolment.reference_counts(store.conn).get(pupil_id, 0)
        published = [
            e
            for e in audit.entries(store, action="publish")
            if pupil_id in e.details.get("pupils_kept", [])
            and e.details.get("status") == "published"
        ]
        record = registry.current_consent(store.conn, pupil_id)
        allowed = changes.allowed_purposes(record, date.today())
    return render(
        request,
        "pupil.html",
        session,
        title=_pupil_title(pupil, session),
        pupil=pupil,
        history=history,
        references=references,
        published=published,
        allowed=allowed,
        record=record,
        names=session.can(Permission.NAMES),
        purpose_label=purpose_label,
    )


def _pupil_title(pupil: registry.Pupil, session: Session) -> str:
    if session.can(Permission.NAMES):
        return f"{pupil.known_first_name} {pupil.known_last_name} ({pupil.pupil_id})"
    return f"Pupil {pupil.pupil_id}"


# --- the import wizard -----------------------------------------------------------------


@router.get("/import", response_class=HTMLResponse)
async def import_start(request: Request) -> Response:
    session = require(request, Permission.IMPORT)
    session.scratch.pop("import", None)
    return render(
        request, "import_start.html", session, title="Import the register", formats=FORMAT_LABELS
    )


async def _read_upload(upload: object, limit: int) -> bytes | None:
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = await upload.read(limit + 1)
    return data if len(data) <= limit else b""


@router.post("/import/preview", response_class=HTMLResponse)
async def import_preview(request: Request) -> Response:
    session, form = await posted(request, Permission.IMPORT)
    raw = await _read_upload(form.get("export"), MAX_EXPORT_BYTES)
    fmt = str(form.get("format", "auto"))
    problem = None
    mapping = None
    if raw is None:
        problem = "Choose the export file from your MIS (a .csv file) first."
    elif raw == b"":
        problem = "That file is larger than 20 MB; a pupil export is far smaller. Check the file."
    elif fmt not in FORMAT_LABELS:
        problem = "Choose one of the formats listed."
    elif fmt == "mapping":
        mapping_raw = await _read_upload(form.get("mapping"), 256 * 1024)
        if not mapping_raw:
            problem = "Choose your column mapping file, or pick your MIS from the list."
        else:
            try:
                mapping = mis.parse_mapping(mapping_raw.decode("utf-8-sig"))
            except (mis.MappingError, UnicodeDecodeError) as exc:
                problem = f"The mapping file could not be read: {exc}"
    if problem is not None:
        return render(
            request,
            "import_start.html",
            session,
            status_code=400,
            title="Import the register",
            formats=FORMAT_LABELS,
            problem=problem,
        )
    assert raw is not None
    upload = form.get("export")
    filename = upload.filename if isinstance(upload, UploadFile) else "export.csv"
    preset = "auto" if fmt == "mapping" else fmt
    try:
        parsed = registry.read_pupils_export(
            raw, filename=filename or "export.csv", fmt=preset, mapping=mapping
        )
    except CsvImportError as exc:
        return render(
            request,
            "import_preview.html",
            session,
            status_code=422,
            title="Problems in the export",
            errors=exc.errors,
            filename=filename,
        )
    with store_for(request) as store:
        counts = _import(
            request, store, raw, filename or "export.csv", preset, mapping, session, dry_run=True
        )
    session.scratch["import"] = (raw, filename, preset, mapping)
    return render(
        request,
        "import_preview.html",
        session,
        title="Check the import",
        parsed=parsed,
        counts=counts,
        filename=filename,
        names=session.can(Permission.NAMES),
        purpose_label=purpose_label,
    )


def _import(
    request: Request,
    store: Store,
    raw: bytes,
    filename: str,
    fmt: str,
    mapping: dict[str, str] | None,
    session: Session,
    *,
    dry_run: bool,
) -> registry.ImportResult:
    """`consent.registry.import_pupils_csv` on the uploaded bytes (a private temporary
    file, removed at once), audited under the signed-in person."""
    folder = Path(tempfile.mkdtemp(dir=settings_of(request).work, prefix=".import-"))
    path = folder / safe_file_name(filename, "export.csv")
    try:
        path.write_bytes(raw)
        return registry.import_pupils_csv(
            store, path, operator=session.operator, fmt=fmt, mapping=mapping, dry_run=dry_run
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def safe_file_name(name: str | None, default: str) -> str:
    """The last part of an uploaded file's name, letters, digits, ``.-_`` and spaces only."""
    base = Path((name or "").replace("\\", "/")).name
    kept = "".join(c for c in base if c.isalnum() or c in ".-_ ").strip(" .")
    return kept[:100] or default


@router.post("/import/confirm", response_class=HTMLResponse)
async def import_confirm(request: Request) -> Response:
    session, _ = await posted(request, Permission.IMPORT)
    pending = session.scratch.pop("import", None)
    if pending is None:
        return RedirectResponse("/import", status_code=303)
    raw, filename, fmt, mapping = pending  # type: ignore[misc]
    try:
        with store_for(request) as store:
            result = _import(request, store, raw, filename, fmt, mapping, session, dry_run=False)
    except CsvImportError as exc:
        return render(
            request,
            "import_preview.html",
            session,
            status_code=422,
            title="Problems in the export",
            errors=exc.errors,
            filename=filename,
        )
    return render(request, "import_done.html", session, title="Register imported", result=result)
