"""The web service's front door: every request-level limit, the audit of every signed-in
request, and the access log, before and around the FastAPI app.

An ASGI middleware rather than FastAPI dependencies, because FastAPI parses a multipart
body before it runs dependencies: an anonymous client could otherwise make the server read
and spool an upload of any size. In order, a request meets:

1. a token in the address (query string) is refused with 400: tokens go in the
   ``Authorization`` header only, and the address ends up in logs;
2. the bearer token, checked on the headers alone (401 without a live one; such requests
   are counted per source and interval, never stored one by one);
3. the token's rate limit (429 with Retry-After);
4. the declared body size (413 at once if over the limit);
5. admission to the analysis pool for ``/check`` and ``/publish`` (503 with Retry-After
   when its workers and queue are full);
6. while the body streams: its size (413), its pauses and its average rate (408);
7. the whole request's time, analysis included (503).

Whatever the outcome, a request with a valid token leaves one ``api_request`` audit entry
(endpoint, status, reason class); the endpoints write their own, fuller entry when they
answer, and this guard writes one for everything else (400, 404, 405, 413, 422, ...).
The access log line names the endpoint without its query string, and the token's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread

from service.limits import Admission, RateLimiter, RefusalLog, ServiceLimits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Paths anyone may read: a health check for monitoring and the API description.
PUBLIC_PATHS = frozenset({"/health", "/openapi.json"})
# The endpoints that run the face analysis and so wait for the pool.
ANALYSIS_PATHS = frozenset({"/check", "/publish"})
KNOWN_PATHS = PUBLIC_PATHS | ANALYSIS_PATHS
# After refusing an oversize body, read (and discard) at most this much of the rest so the
# client sees the 413 instead of a reset connection; beyond it the connection is dropped.
DRAIN_LIMIT = 64 * 1024 * 1024
# An anonymous client gets much less of the server's reading time.
ANONYMOUS_DRAIN_LIMIT = 1024 * 1024
# Seconds a refused client is told to wait when the analysis pool is full.
BUSY_RETRY_AFTER = 5
# Something shaped like one of our tokens, anywhere (query strings, paths).
TOKEN_SHAPED = re.compile(r"pct_[A-Za-z0-9_\-]{8,}")
# Query parameters that name a credential, whatever their value.
CREDENTIAL_KEYS = frozenset(
    {"token", "access_token", "api_key", "apikey", "key", "auth", "authorization", "bearer"}
)

log = logging.getLogger("photoconsent.service")
access_log = logging.getLogger("photoconsent.service.access")

# (presented token) -> the token's name, or None. Runs in a worker thread.
Authenticator = Callable[[str], str | None]
# (token name, details) -> None: writes one api_request entry. Runs in a worker thread.
RequestAuditor = Callable[[str, dict[str, Any]], None]
# (source address) -> None: counts one request without a valid token. Worker thread.
AnonymousCounter = Callable[[str], None]

# The reason class recorded for an outcome the endpoint did not describe itself.
REASON_BY_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    404: "not_found",
    405: "method_not_allowed",
    408: "body_too_slow",
    413: "too_large",
    422: "invalid_form",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def endpoint_of(path: str) -> str:
    """The path as it may be logged and audited: a known endpoint, or "other" (a client
    can put anything in an unknown path, a name or a token included)."""
    return path if path in KNOWN_PATHS else "other"


def token_in_query(query: bytes) -> bool:
    """Whether the query string carries something that looks like a credential."""
    text = query.decode("latin-1")
    if TOKEN_SHAPED.search(text):
        return True
    try:
        pairs = parse_qsl(text, keep_blank_values=True)
    except ValueError:
        return False
    return any(k.strip().lower() in CREDENTIAL_KEYS for k, _ in pairs)


@dataclass
class _Cut:
    """Why the guard answered instead of the app: status, reason class, message, headers."""

    status: int
    reason: str
    detail: str
    headers: dict[str, str] | None = None


class Guard:
    """Wraps the app with the limits, the audit of signed-in requests and the access log.

    The token's name is put in ``scope["state"]["token_name"]`` for the endpoints; an
    endpoint that audits its own answer sets ``scope["state"]["audited"]``, and an
    exception handler may name the reason class in ``scope["state"]["reason_class"]``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticator,
        audit_request: RequestAuditor,
        count_anonymous: AnonymousCounter,
        max_body: int,
        limits: ServiceLimits,
        admission: Admission,
        refusals: RefusalLog,
    ) -> None:
        self.app, self.authenticate = app, authenticate
        self.audit_request, self.count_anonymous = audit_request, count_anonymous
        self.max_body, self.limits = max_body, limits
        self.admission, self.refusals = admission, refusals
        self.rates = RateLimiter(limits.rate_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status: list[int] = []

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        state = scope.setdefault("state", {})
        try:
            await self._handle(scope, receive, logged_send)
        finally:
            access_log.info(
                '%s "%s %s" %s %.0f ms token=%s',
                _client(scope),
                scope.get("method", "-"),
                endpoint_of(scope.get("path", "")),
                status[0] if status else "-",
                (time.monotonic() - started) * 1000,
                state.get("token_name") or "-",
            )

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        query_token = token_in_query(scope.get("query_string", b""))
        if path in PUBLIC_PATHS and not query_token:
            await self.app(scope, receive, send)
            return
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        name = None
        if scheme.lower() == "bearer" and presented.strip():
            name = await anyio.to_thread.run_sync(self.authenticate, presented.strip())
        if query_token:
            await self._refuse_query_token(scope, receive, send, name, headers)
            return
        if name is None:
            await self._refuse_anonymous(scope, receive, send, headers)
            return
        scope["state"]["token_name"] = name
        wait = self.rates.retry_after(name)
        if wait is not None:
            seconds = max(1, int(wait + 0.999))
            self.refusals.note(
                "rate", f"a token over {self.limits.rate_per_minute} requests a minute (429)"
            )
            cut = _Cut(
                429,
                "rate_limited",
                f"This token is over its limit of {self.limits.rate_per_minute} requests a "
                f"minute; try again in {seconds} s.",
                {"retry-after": str(seconds)},
            )
            await self._answer_for_app(scope, receive, send, name, cut, drain=_declared(headers))
            return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await self._answer_for_app(
                scope, receive, send, name, self._too_large(), drain=_declared(headers)
            )
            return
        needs_pool = path in ANALYSIS_PATHS and scope["method"] == "POST"
        if needs_pool and not self.admission.try_enter():
            self.refusals.note(
                "busy", "a request while every analysis worker and queue place was taken (503)"
            )
            cut = _Cut(
                503,
                "busy",
                f"Every analysis place is taken ({self.admission.capacity} requests at once); "
                f"try again in {BUSY_RETRY_AFTER} s.",
                {"retry-after": str(BUSY_RETRY_AFTER)},
            )
            await self._answer_for_app(scope, receive, send, name, cut, drain=_declared(headers))
            return
        await self._run_app(scope, receive, send, name, needs_pool)

    async def _run_app(
        self, scope: Scope, receive: Receive, send: Send, name: str, admitted: bool
    ) -> None:
        limits = self.limits
        loop = asyncio.get_running_loop()
        start = loop.time()
        received = 0
        last = start
        body_done = False
        cut: _Cut | None = None
        response_started = False
        sent_status: list[int] = []

        async def limited_receive() -> Message:
            nonlocal received, last, body_done, cut
            if body_done or cut is not None:
                # After the body, the app only listens for a disconnect: no timer then.
                return await receive() if cut is None else {"type": "http.disconnect"}
            now = loop.time()
            deadline = min(
                last + limits.body_idle_timeout,
                start + limits.body_idle_timeout + received / max(1, limits.min_body_rate),
            )
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - now))
            except TimeoutError:
                cut = self._too_slow()
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                last = loop.time()
                if not message.get("more_body", False):
                    body_done = True
                if received > self.max_body:
                    cut = self._too_large()
                    # The app sees the client leave; its answer is discarded below.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if cut is not None:
                return
            if message["type"] == "http.response.start":
                response_started = True
                sent_status.append(int(message["status"]))
            await send(message)

        task = asyncio.ensure_future(self.app(scope, limited_receive, guarded_send))
        if admitted:
            task.add_done_callback(lambda _: self.admission.leave())
        task.add_done_callback(_consume)
        remaining = limits.request_timeout - (loop.time() - start)
        done, _ = await asyncio.wait({task}, timeout=max(0.0, remaining))
        if not done:
            if response_started:
                return  # too late to answer otherwise; uvicorn closes the connection
            self.refusals.note("request_timeout", "a request over the total time limit (503)")
            # The analysis may still be running in its thread; its answer is discarded.
            cut = _Cut(
                503,
                "request_timeout",
                f"The request took longer than the limit of {limits.request_timeout:g} s; "
                "try again later.",
                {"retry-after": str(BUSY_RETRY_AFTER)},
            )
            await self._audit(name, scope, cut.status, cut.reason)
            await _reply(send, cut.status, cut.detail, cut.headers)
            return
        error = None if task.cancelled() else task.exception()
        if cut is not None:
            if cut.reason == "body_too_slow":
                self.refusals.note("body_rate", cut.detail)
            await self._answer_for_app(
                scope, receive, send, name, cut, drain=DRAIN_LIMIT if cut.status == 413 else 0
            )
            return
        state = scope["state"]
        if not state.get("audited"):
            code = sent_status[0] if sent_status else 500
            reason = state.get("reason_class") or REASON_BY_STATUS.get(code, f"status_{code}")
            await self._audit(name, scope, code, reason)
        if error is not None:
            raise error

    async def _answer_for_app(
        self, scope: Scope, receive: Receive, send: Send, name: str, cut: _Cut, *, drain: int
    ) -> None:
        """Answer a signed-in request the app never saw (or whose answer was discarded)."""
        await self._audit(name, scope, cut.status, cut.reason)
        if drain:
            await self._drain(receive, drain)
        await _reply(send, cut.status, cut.detail, cut.headers)

    async def _refuse_query_token(
        self, scope: Scope, receive: Receive, send: Send, name: str | None, headers: dict[str, str]
    ) -> None:
        self.refusals.note("query_token", "a request with a token in its address (400)")
        detail = (
            "Send the API token in the 'Authorization: Bearer <token>' header only, never in "
            "the address: addresses are written to logs along the way. If a real token was "
            "sent, revoke it (`photoconsent token revoke NAME`) and create a new one."
        )
        if name is None:
            await anyio.to_thread.run_sync(self.count_anonymous, _client(scope))
            await self._drain(receive, min(_declared(headers), ANONYMOUS_DRAIN_LIMIT))
            await _reply(send, 400, detail)
            return
        scope["state"]["token_name"] = name
        await self._answer_for_app(
            scope, receive, send, name, _Cut(400, "token_in_query", detail), drain=0
        )

    async def _refuse_anonymous(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        self.refusals.note("unauthenticated", "a request without a valid API token (401)")
        await anyio.to_thread.run_sync(self.count_anonymous, _client(scope))
        await self._drain(receive, min(_declared(headers), ANONYMOUS_DRAIN_LIMIT))
        await _reply(
            send,
            401,
            "A valid API token is required: send 'Authorization: Bearer <token>' "
            "(create one with `photoconsent token create NAME`).",
            {"www-authenticate": 'Bearer realm="photoconsent"'},
        )

    def _too_large(self) -> _Cut:
        self.refusals.note("too_large", f"an upload over {self.max_body:,} bytes (413)")
        return _Cut(
            413,
            "too_large",
            f"The upload is over the limit of {self.max_body:,} bytes (field 'file'); "
            "send a smaller image.",
        )

    def _too_slow(self) -> _Cut:
        limits = self.limits
        return _Cut(
            408,
            "body_too_slow",
            f"The upload arrived too slowly: it may pause at most {limits.body_idle_timeout:g} s "
            f"and must average at least {limits.min_body_rate:,} bytes per second.",
        )

    async def _audit(self, name: str, scope: Scope, status: int, reason: str) -> None:
        details = {
            "endpoint": endpoint_of(scope["path"]),
            "method": scope["method"] if scope["method"] in _METHODS else "other",
            "status": status,
            "reason": reason,
        }
        await anyio.to_thread.run_sync(self.audit_request, name, details)
        scope["state"]["audited"] = True

    async def _drain(self, receive: Receive, limit: int) -> None:
        """Read and discard up to ``limit`` more body bytes (stops at the end of the body),
        within the body limits: a client that goes quiet or crawls is simply dropped."""
        seen = 0
        with anyio.move_on_after(
            min(self.limits.request_timeout, self.limits.body_idle_timeout * 4)
        ):
            while 0 < limit and seen <= limit:
                with anyio.move_on_after(self.limits.body_idle_timeout):
                    message = await receive()
                    if message["type"] != "http.request":
                        return
                    seen += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return
                    continue
                return  # the client went quiet


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve a discarded app task's exception so asyncio does not log it as lost."""
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.exception()


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _declared(headers: dict[str, str]) -> int:
    """How much of a refused body to drain: all of it if it is small enough, else none."""
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() and int(value) <= DRAIN_LIMIT else 0


async def _reply(send: Send, status: int, detail: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"connection", b"close"),
    ]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
