"""What every screen shares: the templates, the signed-in person, the guards and the store.

Guards raise `NotSignedIn`, `NotAllowed` or `BadForm`; `web.app` turns them into a
sign-in redirect, a plain-words 403 page, or a "this form has expired" page.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from consent.store import Store, open_store
from web.labels import purpose_list
from web.permissions import Permission
from web.sessions import COOKIE, Session, SessionStore
from web.words import plain_reason, uk_date, uk_datetime

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["uk_date"] = uk_date
templates.env.filters["uk_datetime"] = uk_datetime
templates.env.filters["plain_reason"] = plain_reason
templates.env.globals["P"] = Permission
templates.env.filters["purposes"] = purpose_list

# A photo upload carries hundreds of files; a form field is small text.
MAX_FILES = 2000
MAX_FIELD_BYTES = 64 * 1024


class NotSignedIn(Exception):
    """No live session: sign in first."""


class NotAllowed(Exception):
    """The signed-in person's role does not allow this."""

    def __init__(self, session: Session, permission: Permission) -> None:
        self.session = session
        self.permission = permission


class BadForm(Exception):
    """A POST without this session's CSRF token (an old page, or another site)."""


@dataclass(frozen=True)
class AppSettings:
    """``data_dir``: the photoconsent data directory; ``work_dir``: where the app keeps
    uploads and published batches (default ``DATA_DIR/office-app``, private like it)."""

    data_dir: Path
    idle_seconds: float = 20 * 60
    work_dir: Path | None = None
    # Publish's worker processes (None: publish decides from the cores and memory).
    workers: int | None = None

    @property
    def work(self) -> Path:
        path = self.work_dir or self.data_dir / "office-app"
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path


def settings_of(request: Request) -> AppSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def sessions_of(request: Request) -> SessionStore:
    return request.app.state.sessions  # type: ignore[no-any-return]


@contextmanager
def store_for(request: Request) -> Iterator[Store]:
    """The data directory's store, opened for this request (SQLite connections stay in
    the thread that opened them)."""
    with open_store(settings_of(request).data_dir) as store:
        yield store


def signed_in(request: Request) -> Session | None:
    return sessions_of(request).get(request.cookies.get(COOKIE))


def require(request: Request, permission: Permission) -> Session:
    session = signed_in(request)
    if session is None:
        raise NotSignedIn()
    if not session.can(permission):
        raise NotAllowed(session, permission)
    return session


async def posted(request: Request, permission: Permission) -> tuple[Session, FormData]:
    """The session and the form of a POST, after the role and the CSRF token are checked."""
    session = require(request, permission)
    form = await request.form(max_files=MAX_FILES, max_part_size=MAX_FIELD_BYTES)
    sent = form.get("csrf")
    if not session.csrf_ok(sent if isinstance(sent, str) else None):
        raise BadForm()
    return session, form


def check_csrf_header(request: Request, session: Session) -> None:
    """For the page's own fetch() calls, which send the token as a header."""
    if not session.csrf_ok(request.headers.get("x-csrf-token")):
        raise BadForm()


def render(
    request: Request,
    template: str,
    session: Session | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {"session": session, "title": context.pop("title", "photoconsent"), **context},
        status_code=status_code,
    )
