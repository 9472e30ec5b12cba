"""The upload pre-check service (`photoconsent serve`): an HTTP API for a school website's
upload form or CMS plug-in.

* ``POST /check``: is this image safe to put online exactly as it is? Answers
  ``{"safe": bool, "reasons": [...]}`` plus the details: faces not permitted for the
  purpose, metadata present (fields named), pupils' full names in the caption, the file
  name or the embedded text fields, and the caption rewritten for the purpose.
* ``POST /publish``: runs the real publish job (`publishing.publish.publish`) on the upload
  and returns the redacted, metadata-free image with its rewritten caption; a photo that
  cannot be made safe answers 422 with the reason.
* ``GET /health`` and ``GET /openapi.json`` need no token; everything else needs
  ``Authorization: Bearer <token>`` (`service.tokens`), checked before the body is read
  (`service.guard`, which also applies every request-level limit).

Every request with a valid token is audited with the token's *name* (operator
``api:<name>``), whatever its outcome; publish's own per-photo entries carry the same
operator. Uploads are written only to a private folder inside the data directory and
removed when the request ends. SQLite connections are opened per request in the worker
thread that uses them. Face detection and matching run in a pool of worker processes
(`service.pool`), each with its own models loaded once.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import os
import re
import secrets
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from PIL import Image
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from consent import audit
from consent.registry import Purpose
from consent.store import Store, open_store
from pipeline import __version__
from pipeline.analysis import blurred, kept
from pipeline.detection import DetectionSettings
from pipeline.formats.embedded import MAX_FIELD_CHARS, embedded_texts
from pipeline.loading import ACCEPTED_FORMATS
from pipeline.matching import MatchSettings
from pipeline.redaction import RedactionStyle
from pipeline.writing import OutputFormat
from publishing.captions.boilerplate import real_caption
from publishing.captions.per_photo import full_names_in
from publishing.check import check_one
from publishing.context import BatchContext, load_context
from publishing.decider import Decider
from publishing.options import PublishOptions
from publishing.publish import publish
from publishing.report import PhotoStatus
from publishing.workers import default_workers
from service import tokens
from service.guard import Guard
from service.limits import (  # the DEFAULT_ limits: shown by `serve --help` too
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD,
    Admission,
    RefusalLog,
    ServiceLimits,
    SourceCounter,
    SourceCounts,
)
from service.pool import AnalysisPool, AnalysisUnavailable, PooledDecider
from service.replies import validation_detail

log = logging.getLogger("photoconsent.service")

# Requests that may wait for a free analysis worker, per worker; beyond them 503.
DEFAULT_QUEUE_PER_WORKER = 2
TEMP_DIR = "service-tmp"
# A request never takes this long; a folder older than this was left by a killed server.
STALE_UPLOAD_SECONDS = 3600.0
_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".heic", ".heif", ".gif"}
_SUFFIXES |= {".bmp"}

# (the request's data, read once; publish options) -> its decider (see `ModelDecider`).
DeciderFactory = Callable[[BatchContext, PublishOptions], Decider]


@dataclass(frozen=True)
class ServiceSettings:
    """How the service runs. ``max_upload_bytes`` bounds the whole request body;
    ``max_pixels`` bounds width x height as declared in the image header (checked before
    decoding; the loader's own limit still applies). ``workers`` analysis processes (None:
    as many as publish would use, by cores and memory) and ``queue`` more requests waiting
    for them (None: two per worker); beyond both, 503 with Retry-After."""

    data_dir: Path
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    max_pixels: int = DEFAULT_MAX_PIXELS
    limits: ServiceLimits = field(default_factory=ServiceLimits)
    workers: int | None = None
    queue: int | None = None
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    matching: MatchSettings = field(default_factory=MatchSettings)
    style: RedactionStyle = RedactionStyle.BLUR
    output_format: OutputFormat = OutputFormat.JPEG

    def pool_size(self) -> int:
        return max(1, self.workers if self.workers is not None else default_workers())

    def capacity(self) -> int:
        """Requests that may hold or wait for an analysis worker at once."""
        queue = (
            self.queue if self.queue is not None else DEFAULT_QUEUE_PER_WORKER * self.pool_size()
        )
        return self.pool_size() + max(0, queue)


class ModelDecider:
    """The ordinary keep-or-blur decision, run by a pool of worker processes.

    Each request gets a `service.pool.PooledDecider` over its own gallery (loaded from the
    store for the request's purpose and date); the pool's processes run the one
    `publishing.decider.AnalysingDecider` with models loaded once per process. `warm`
    starts the processes and loads their models, so the first upload does not pay for it.
    """

    def __init__(self, detection: DetectionSettings, workers: int = 1, timeout: float = 120.0):
        self.settings = detection
        self.timeout = timeout
        self.pool = AnalysisPool(detection, workers)

    @classmethod
    def for_settings(cls, settings: ServiceSettings) -> ModelDecider:
        """A decider with the settings' pool size and the request time as its timeout."""
        return cls(settings.detection, settings.pool_size(), settings.limits.request_timeout)

    def warm(self) -> None:
        self.pool.warm()

    def close(self) -> None:
        self.pool.close()

    def __call__(self, context: BatchContext, options: PublishOptions) -> Decider:
        return PooledDecider(self.pool, context.gallery, options.matching, self.timeout)


class NameReason(BaseModel):
    pupil_id: str
    where: str


class CheckAnswer(BaseModel):
    """The verdict of ``POST /check``; ``reasons`` is empty exactly when ``safe``."""

    safe: bool
    reasons: list[str]
    faces_not_permitted: int
    faces_kept: int
    metadata: list[str]
    full_names: list[NameReason]
    suggested_caption: str | None


class PublishAnswer(BaseModel):
    """The result of ``POST /publish`` as JSON (the default)."""

    status: str
    reason: str
    caption: str | None
    name_policy: str
    media_type: str
    image_base64: str
    output_sha256: str
    input_sha256: str
    faces_kept: int
    faces_blurred: int


class Service:
    """The state one server process keeps: settings, the decider factory, the admission
    to the analysis pool, and the counters of refusals and anonymous requests."""

    def __init__(self, settings: ServiceSettings, decider_factory: DeciderFactory) -> None:
        self.settings = settings
        self.decider_factory = decider_factory
        self.admission = Admission(settings.capacity())
        self.refusals = RefusalLog(settings.limits.log_interval)
        self.anonymous = SourceCounter(settings.limits.log_interval, self.record_anonymous)
        self.remove_stale_uploads()

    def remove_stale_uploads(self, older_than: float = STALE_UPLOAD_SECONDS) -> int:
        """Delete request folders a killed server left behind (they hold photos of
        children); only old ones, in case another server shares the data directory."""
        base = self.settings.data_dir / TEMP_DIR
        removed = 0
        if not base.is_dir():
            return removed
        now = time.time()
        for folder in base.iterdir():
            try:
                if now - folder.stat().st_mtime > older_than:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
            except OSError:
                continue
        return removed

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        """A store for this thread only (sqlite3 connections stay in their thread)."""
        store = open_store(self.settings.data_dir)
        try:
            yield store
        finally:
            store.close()

    def authenticate(self, presented: str) -> str | None:
        with self.store() as store:
            token = tokens.authenticate(store.conn, presented)
        return None if token is None else token.name

    def audit_request(self, token_name: str, details: dict[str, Any], store: Store) -> None:
        with store.transaction() as conn:
            audit.append(
                conn,
                store.key,
                action="api_request",
                operator=operator_for(token_name),
                details={"token": token_name, **details},
            )

    def audit_outcome(self, token_name: str, details: dict[str, Any]) -> None:
        """One ``api_request`` entry for an outcome the endpoint did not audit itself."""
        with self.store() as store:
            self.audit_request(token_name, details, store)

    def count_anonymous(self, source: str) -> None:
        self.anonymous.count(source)

    def record_anonymous(self, counts: SourceCounts) -> None:
        """Requests without a valid token over one interval: one log line and one audit
        entry with the count per source address (nothing of what they presented)."""
        total = sum(counts.by_source.values()) + counts.others
        log.warning(
            "%d request(s) without a valid token from %d source(s) in %.0f s",
            total,
            len(counts.by_source),
            counts.seconds,
        )
        with self.store() as store, store.transaction() as conn:
            audit.append(
                conn,
                store.key,
                action="api_unauthenticated",
                operator="api:anonymous",
                details={
                    "interval_seconds": round(counts.seconds, 1),
                    "requests": total,
                    "by_source": dict(sorted(counts.by_source.items())),
                    "other_sources": counts.others,
                },
            )

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Path]:
        """A private folder (0700) in the data directory, removed afterwards: uploads never
        touch the system's shared temp folder under a guessable name."""
        base = self.settings.data_dir / TEMP_DIR
        base.mkdir(mode=0o700, exist_ok=True)
        folder = base / secrets.token_hex(8)
        folder.mkdir(mode=0o700)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def operator_for(token_name: str) -> str:
    """The audit operator of requests made with a token: ``api:<name>``."""
    return f"api:{token_name}"


def _upload_name(filename: str | None) -> str:
    """A neutral name for the saved upload: ``upload`` plus a known suffix. The client's
    file name may itself hold a child's name, and it would reach the audit log."""
    suffix = Path(filename or "").suffix.lower()
    return "upload" + (suffix if suffix in _SUFFIXES else "")


def _declared_pixels(data: bytes) -> int | None:
    """width x height from the image header, without decoding; None if unreadable (the
    loader then gives the reason)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as im:
                return int(im.size[0]) * int(im.size[1])
    except Image.DecompressionBombError:
        return 2**62
    except Exception:  # noqa: BLE001 - hostile header: let the loader refuse it
        return None


def create_app(settings: ServiceSettings, *, decider_factory: DeciderFactory | None = None) -> Any:
    """The ASGI application: FastAPI endpoints behind the `Guard` middleware.

    ``decider_factory`` replaces face detection and matching (tests, or a reviewed
    workflow); by default it is a `ModelDecider` with ``settings.pool_size()`` worker
    processes, shared by every request and closed when the server stops.
    """
    owned = None
    if decider_factory is None:
        owned = ModelDecider.for_settings(settings)
    service = Service(settings, decider_factory or owned)  # type: ignore[arg-type]

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        try:
            yield
        finally:
            service.anonymous.flush()
            service.refusals.flush()
            if owned is not None:
                owned.close()

    app = FastAPI(
        title="photoconsent upload pre-check",
        version=__version__,
        description=(
            "Checks and publishes school photos as parents' consent allows. Send "
            "`Authorization: Bearer <token>` (see `photoconsent token create`)."
        ),
        # The interactive docs pages would load scripts from a CDN; the JSON description
        # at /openapi.json is enough for a CMS developer and makes no outside request.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    _add_error_handlers(app)

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness for monitoring; needs no token and says nothing about the data."""
        return {"status": "ok", "version": __version__}

    @app.post("/check", response_model=CheckAnswer, dependencies=[Depends(_one_file)])
    def check_upload(
        request: Request,
        file: Annotated[UploadFile, File(description="The image, as uploaded.")],
        purpose: Annotated[Purpose, Form(description="What the photo is for.")],
        caption: Annotated[str | None, Form(max_length=MAX_FIELD_CHARS)] = None,
    ) -> CheckAnswer:
        """Would this image be safe to publish exactly as it is, with this caption?"""
        token_name = request.state.token_name
        data = file.file.read()
        with service.store() as store:
            _check_pixels(service, store, request, "/check", data)
            answer, audit_details = _check(service, store, data, file.filename, purpose, caption)
            service.audit_request(
                token_name,
                {"endpoint": "/check", "status": 200, "purpose": purpose.value, **audit_details},
                store,
            )
            request.state.audited = True
        return answer

    @app.post(
        "/publish",
        response_model=PublishAnswer,
        dependencies=[Depends(_one_file)],
        responses={
            200: {"content": {"image/jpeg": {}}, "description": "JSON, or the image itself"},
            422: {"description": "Withheld: the photo cannot be made safe (reason given)"},
        },
    )
    def publish_upload(
        request: Request,
        file: Annotated[UploadFile, File(description="The image, as uploaded.")],
        purpose: Annotated[Purpose, Form(description="What the photo is for.")],
        caption: Annotated[str | None, Form(max_length=MAX_FIELD_CHARS)] = None,
        event: Annotated[str, Form(max_length=200)] = "upload",
        destination: Annotated[str | None, Form(max_length=500)] = None,
    ) -> Any:
        """Redact the image for the purpose and return it clean, with its caption rewritten.

        Answers JSON (``image_base64``) unless the request's ``Accept`` header asks for
        ``image/*``: then the body is the image and the caption is in the
        ``X-Photoconsent-Caption`` header (UTF-8, percent-encoded).
        """
        token_name = request.state.token_name
        data = file.file.read()
        with service.store() as store:
            _check_pixels(service, store, request, "/publish", data)
            outcome = _publish(
                service,
                store,
                token_name,
                data,
                file.filename,
                purpose,
                caption,
                event,
                destination,
            )
            request.state.audited = True
        if outcome.withheld:
            return JSONResponse(
                {"status": PhotoStatus.WITHHELD.value, "detail": outcome.reason}, status_code=422
            )
        assert outcome.answer is not None
        accept = request.headers.get("accept", "")
        if "image/" in accept and "application/json" not in accept:
            headers = {
                "X-Photoconsent-Caption": quote(outcome.answer.caption or "", safe=" ,.'!?"),
                "X-Photoconsent-Name-Policy": outcome.answer.name_policy,
                "X-Photoconsent-Output-Sha256": outcome.answer.output_sha256,
                "Cache-Control": "no-store",
            }
            return Response(outcome.image, media_type=outcome.answer.media_type, headers=headers)
        return outcome.answer

    return Guard(
        app,
        authenticate=service.authenticate,
        audit_request=service.audit_outcome,
        count_anonymous=service.count_anonymous,
        max_body=settings.max_upload_bytes,
        limits=settings.limits,
        admission=service.admission,
        refusals=service.refusals,
    )


async def _one_file(request: Request) -> None:
    """Refuse a multipart body with more than one file: only one would be checked, and
    the client would believe the others were (issue 15: 50 files answered 200)."""
    form = await request.form()  # already parsed (and cached) by FastAPI
    files = [v for _, v in form.multi_items() if not isinstance(v, str)]
    if len(files) > 1:
        request.state.reason_class = "several_files"
        raise HTTPException(
            400,
            f"The upload has {len(files)} files; send exactly one file per request, in the "
            "field 'file'.",
        )


def _add_error_handlers(app: FastAPI) -> None:
    """Error bodies that name the field and the limit and never echo what was sent (a
    1,000,000-character caption used to come back in full in the 422)."""

    @app.exception_handler(RequestValidationError)
    async def invalid_form(request: Request, exc: RequestValidationError) -> JSONResponse:
        request.state.reason_class = "invalid_form"
        return JSONResponse({"detail": validation_detail(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if not getattr(request.state, "reason_class", None) and exc.status_code == 400:
            # Starlette's own 400s are multipart parsing errors; their text is fixed.
            request.state.reason_class = "bad_multipart"
        detail = exc.detail if isinstance(exc.detail, str) else "The request is not valid."
        if exc.status_code == 404:
            detail = "No such endpoint: the API has POST /check, POST /publish and GET /health."
        elif exc.status_code == 405:
            detail = "This endpoint does not accept that method (see /openapi.json)."
        return JSONResponse(
            {"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(AnalysisUnavailable)
    async def unavailable(request: Request, exc: AnalysisUnavailable) -> JSONResponse:
        request.state.reason_class = "analysis_unavailable"
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})


def _check_pixels(service: Service, store: Store, request: Request, path: str, data: bytes) -> None:
    pixels = _declared_pixels(data)
    limit = service.settings.max_pixels
    if pixels is not None and pixels > limit:
        service.audit_request(
            request.state.token_name,
            {"endpoint": path, "status": 413, "reason": "too_many_pixels"},
            store,
        )
        request.state.audited = True
        service.refusals.note("pixels", f"an image over the limit of {limit:,} pixels (413)")
        raise HTTPException(
            413,
            f"The image is over the service's limit of {limit:,} pixels (width x height, "
            "field 'file'); downscale it.",
        )


def _check(
    service: Service,
    store: Store,
    data: bytes,
    filename: str | None,
    purpose: Purpose,
    caption: str | None,
) -> tuple[CheckAnswer, dict[str, Any]]:
    options = _options(service, purpose, Path("unused"), "check", "check")
    with service.workspace() as folder:
        path = folder / _upload_name(filename)
        path.write_bytes(data)
        context = load_context(store, options)
        decide = service.decider_factory(context, options)
        result = check_one(path, options, decide)
        _raise_if_undecided(decide)
        pupils = context.pupils
    # The file name the client gave is not the saved one; the loader's reasons name ours.
    reasons = [r.replace(path.name, "the upload") for r in result.reasons]
    names = full_names_in(caption or "", pupils, where="caption")
    if filename:
        names += full_names_in(Path(filename).name, pupils, where="file name", file_name=True)
    embedded = embedded_texts(data)
    for f in embedded.fields:
        names += full_names_in(f.text, pupils, where=f.name)
    by_where: dict[str, set[str]] = {}
    for n in names:
        by_where.setdefault(n.where, set()).add(n.pupil_id)
    for where, ids in by_where.items():
        reasons.append(f"{where} gives the full name of {len(ids)} pupil(s)")
    source = caption if caption is not None else real_caption(embedded.caption)
    suggested = context.caption(source, result.faces)
    unique = sorted({(n.pupil_id, n.where) for n in names})
    answer = CheckAnswer(
        safe=not reasons,
        reasons=reasons,
        faces_not_permitted=len(blurred(result.faces)),
        faces_kept=len(kept(result.faces)),
        metadata=[f"{m.kind}: {m.detail}" for m in result.metadata],
        full_names=[NameReason(pupil_id=p, where=w) for p, w in unique],
        suggested_caption=None if suggested is None else suggested.text,
    )
    details = {
        "safe": answer.safe,
        "reasons": len(reasons),
        "input_sha256": _sha256(data),
        "faces_not_permitted": answer.faces_not_permitted,
        "pupils_named_in_full": sorted({n.pupil_id for n in names}),
    }
    return answer, details


@dataclass
class _Outcome:
    withheld: bool
    reason: str
    answer: PublishAnswer | None = None
    image: bytes = b""


def _publish(
    service: Service,
    store: Store,
    token_name: str,
    data: bytes,
    filename: str | None,
    purpose: Purpose,
    caption: str | None,
    event: str,
    destination: str | None,
) -> _Outcome:
    with service.workspace() as folder:
        inbox, out = folder / "in", folder / "out"
        inbox.mkdir(mode=0o700)
        path = inbox / _upload_name(filename)
        path.write_bytes(data)
        # The form's caption goes into the job itself, so publish's own audit entry records
        # the caption that is returned (issue 15: it recorded the embedded one).
        options = _options(
            service, purpose, out, event, operator_for(token_name), destination, caption
        )
        context = load_context(store, options)
        decide = service.decider_factory(context, options)
        report = publish(store, [path], options, decider=decide, context=context)
        (result,) = report.results
        _raise_if_undecided(decide)
        details: dict[str, Any] = {
            "endpoint": "/publish",
            "purpose": purpose.value,
            "input_sha256": result.input_sha256 or _sha256(data),
            "outcome": result.status.value,
        }
        if result.status is not PhotoStatus.PUBLISHED or result.output is None:
            reason = result.reason.replace(path.name, "the upload")
            service.audit_request(
                token_name, {**details, "status": 422, "reason": "withheld"}, store
            )
            return _Outcome(True, reason)
        image = Path(result.output).read_bytes()
    rewritten = result.caption
    policy = rewritten.policy.value if rewritten else context.policy.value
    service.audit_request(
        token_name,
        {
            **details,
            "status": 200,
            "output_sha256": result.output_sha256,
            "caption": None
            if rewritten is None
            else {
                "source": "form" if caption is not None else "embedded",
                "sha256": _sha256(rewritten.text.encode("utf-8")),
            },
            "caption_pupils_removed": rewritten.removed if rewritten else [],
            "caption_pupils_shortened": rewritten.shortened if rewritten else [],
        },
        store,
    )
    answer = PublishAnswer(
        status=PhotoStatus.PUBLISHED.value,
        reason=result.reason,
        caption=None if rewritten is None else rewritten.text,
        name_policy=policy,
        media_type=f"image/{service.settings.output_format.value.lower()}",
        image_base64=base64.b64encode(image).decode("ascii"),
        output_sha256=result.output_sha256 or "",
        input_sha256=result.input_sha256 or "",
        faces_kept=len(kept(result.faces)),
        faces_blurred=len(blurred(result.faces)),
    )
    return _Outcome(False, result.reason, answer, image)


def _raise_if_undecided(decide: Decider) -> None:
    """The pool could not decide (timeout, dead worker): 503, not a verdict."""
    failure = getattr(decide, "failure", None)
    if isinstance(decide, PooledDecider) and failure is not None:
        raise failure


def _options(
    service: Service,
    purpose: Purpose,
    out: Path,
    event: str,
    operator: str,
    destination: str | None = None,
    caption: str | None = None,
) -> PublishOptions:
    s = service.settings
    return PublishOptions(
        purpose=purpose,
        out_dir=out,
        event=re.sub(r"[\x00-\x1f\x7f]", " ", event).strip() or "upload",
        operator=operator,
        style=s.style,
        output_format=s.output_format,
        detection=s.detection,
        matching=s.matching,
        on=date.today(),
        destination=destination,
        via_service=True,
        caption=caption,
        # One photo, in this process; the analysis itself runs in the service's pool.
        workers=1,
    )


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def serve(settings: ServiceSettings, host: str, port: int, *, warm: bool = True) -> None:
    """Run the service with uvicorn until interrupted (blocking)."""
    from service.server import build_server

    factory = ModelDecider.for_settings(settings)
    try:
        if warm:
            factory.warm()
        app = create_app(settings, decider_factory=factory)
        # Uploads are written with 0600 files in a 0700 folder whatever the umask.
        os.umask(0o077)
        refusals = app.app.state.service.refusals
        build_server(app, settings.limits, refusals, host, port).run()
    finally:
        factory.close()
