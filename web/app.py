"""The office app's FastAPI application: security headers, sign-in, the screens' routers.

Every response carries a Content-Security-Policy that allows only this app's own scripts,
styles and images (``data:`` images for the thumbnails it makes), no inline script, no
framing; pages are never cached (they show pupils' data). A POST from another origin is
refused before any route sees it.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import date
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from web import accounts, jobs
from web.dashboard import dashboard
from web.pages import (
    HERE,
    AppSettings,
    BadForm,
    NotAllowed,
    NotSignedIn,
    render,
    require,
    sessions_of,
    signed_in,
    store_for,
)
from web.permissions import Permission
from web.sessions import COOKIE, SessionStore

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SIGN_IN_COOKIE = "photoconsent_sign_in"


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.method not in ("GET", "HEAD") and not _same_origin(request):
            response: Response = HTMLResponse(
                "This request came from another web site and was refused.", status_code=403
            )
        else:
            response = await call_next(request)
        # A page that sets its own policy keeps it: the medical board preview (inline
        # styles, data: images, still no script at all).
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on
        # the app's own forms, and the origin check above needs the real one.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response


def _same_origin(request: Request) -> bool:
    """A POST's Origin (or Referer) names this server, or is absent (some browsers and
    tools send neither; the CSRF token still guards those)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source is None
    host = request.headers.get("host", "")
    return urlsplit(source).netloc == host


def _cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    # No Secure flag: the app speaks plain HTTP on the PC's own loopback address.
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="strict", path="/", secure=False
    )


def create_app(settings: AppSettings) -> FastAPI:
    """The office app over ``settings.data_dir`` (which must be initialised)."""
    # No interactive API docs: every route is a page for people, not an API.
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="photoconsent office")
    app.state.settings = settings
    app.state.sessions = SessionStore(settings.idle_seconds)
    # Publishes from before a restart, read back from their folders (web.jobs).
    app.state.jobs = jobs.load_jobs(settings.work)
    app.state.replacements = {}
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if request.method == "GET" and not request.url.path.startswith("/api/"):
            target = quote(request.url.path, safe="/")
            return RedirectResponse(f"/sign-in?next={target}", status_code=303)
        return HTMLResponse("Please sign in again.", status_code=401)

    @app.exception_handler(NotAllowed)
    async def _not_allowed(request: Request, exc: NotAllowed) -> Response:
        return render(
            request,
            "refused.html",
            exc.session,
            status_code=403,
            title="Not for your role",
            message=f"Your account ({exc.session.role.label}) cannot "
            f"{exc.permission.value}. Ask your data protection officer if you need to.",
        )

    @app.exception_handler(BadForm)
    async def _bad_form(request: Request, exc: BadForm) -> Response:
        return render(
            request,
            "refused.html",
            signed_in(request),
            status_code=403,
            title="This page has expired",
            message="This form was out of date, so nothing was done. Go back, reload the "
            "page and try again.",
        )

    @app.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_page(request: Request, next: str = "/") -> Response:
        token = secrets.token_urlsafe(32)
        response = render(
            request, "sign_in.html", None, title="Sign in", csrf=token, next=_local(next)
        )
        _cookie(response, SIGN_IN_COOKIE, token, max_age=3600)
        return response

    @app.post("/sign-in", response_class=HTMLResponse)
    async def sign_in(request: Request) -> Response:
        form = await request.form()
        sent, expected = str(form.get("csrf", "")), request.cookies.get(SIGN_IN_COOKIE, "")
        if not expected or not hmac.compare_digest(sent, expected):
            raise BadForm()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        try:
            with store_for(request) as store:
                account = accounts.sign_in(store, username, password)
        except accounts.SignInRefused as exc:
            token = secrets.token_urlsafe(32)
            response = render(
                request,
                "sign_in.html",
                None,
                status_code=401,
                title="Sign in",
                csrf=token,
                error=str(exc),
                username=username[:40],
                next=_local(str(form.get("next", "/"))),
            )
            _cookie(response, SIGN_IN_COOKIE, token, max_age=3600)
            return response
        session = sessions_of(request).start(account.username, account.role)
        response = RedirectResponse(_local(str(form.get("next", "/"))), status_code=303)
        _cookie(response, COOKIE, session.token)
        response.delete_cookie(SIGN_IN_COOKIE, path="/")
        return response

    @app.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        session = require(request, Permission.DASHBOARD)
        form = await request.form()
        if not session.csrf_ok(str(form.get("csrf", ""))):
            raise BadForm()
        sessions_of(request).end(session.token)
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        session = require(request, Permission.DASHBOARD)
        with store_for(request) as store:
            board = dashboard(store, date.today())
        return render(request, "dashboard.html", session, title="What needs doing", board=board)

    from web.views import register_routes

    register_routes(app)
    return app


def _local(target: str) -> str:
    """Only a path of this app may follow a sign-in (never another site)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
