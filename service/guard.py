"""The web service's front door: bearer-token check and upload size limit, before any body
byte is read.

An ASGI middleware rather than a FastAPI dependency, because FastAPI parses a multipart
body before it runs dependencies: an anonymous client could otherwise make the server
read and spool an upload of any size. Here the token is checked on the headers alone, a
declared ``Content-Length`` over the limit is refused at once, and a chunked body is
counted while it streams and cut off as soon as it passes the limit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Paths anyone may read: a health check for monitoring and the API description.
PUBLIC_PATHS = frozenset({"/health", "/openapi.json"})
# After refusing an oversize body, read (and discard) at most this much of the rest so the
# client sees the 413 instead of a reset connection; beyond it the connection is dropped.
DRAIN_LIMIT = 64 * 1024 * 1024
# An anonymous client gets much less of the server's reading time.
ANONYMOUS_DRAIN_LIMIT = 1024 * 1024

log = logging.getLogger("photoconsent.service")

# (presented token) -> the token's name, or None. Runs in a worker thread.
Authenticator = Callable[[str], str | None]
# (token name, path, status, reason) -> None: audits a request refused after auth.
RefusalAuditor = Callable[[str, str, int, str], None]


class Guard:
    """Wraps the app: 401 without a live bearer token, 413 over ``max_body`` bytes.

    The token's name is put in ``scope["state"]["token_name"]`` for the endpoints.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticator,
        audit_refusal: RefusalAuditor,
        max_body: int,
    ) -> None:
        self.app, self.authenticate, self.audit_refusal = app, authenticate, audit_refusal
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        name = None
        if scheme.lower() == "bearer" and presented.strip():
            name = await anyio.to_thread.run_sync(self.authenticate, presented.strip())
        if name is None:
            log.warning("refused %s %s: missing or invalid token", scope["method"], scope["path"])
            declared = headers.get("content-length", str(ANONYMOUS_DRAIN_LIMIT))
            await _drain(receive, min(_declared(declared), ANONYMOUS_DRAIN_LIMIT))
            await _reply(
                send,
                401,
                "A valid API token is required: send 'Authorization: Bearer <token>' "
                "(create one with `photoconsent token create NAME`).",
                {"www-authenticate": 'Bearer realm="photoconsent"'},
            )
            return
        scope.setdefault("state", {})["token_name"] = name
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await self._too_large(scope, receive, send, name, drain=_declared(declared))
            return
        received = 0
        over = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    over = True
                    # The app sees the client leave; its answer is discarded below.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not over:
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over:
            await self._too_large(scope, receive, send, name, drain=DRAIN_LIMIT)

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, name: str, *, drain: int
    ) -> None:
        reason = f"upload over the limit of {self.max_body:,} bytes"
        await anyio.to_thread.run_sync(self.audit_refusal, name, scope["path"], 413, reason)
        await _drain(receive, drain)
        await _reply(send, 413, f"The upload is over the limit of {self.max_body:,} bytes.")


def _declared(value: str) -> int:
    """How much of a refused body to drain: all of it if it is small enough, else none."""
    return int(value) if value.isdigit() and int(value) <= DRAIN_LIMIT else 0


async def _drain(receive: Receive, limit: int) -> None:
    """Read and discard up to ``limit`` more body bytes (stops at the end of the body)."""
    seen = 0
    while 0 < limit and seen <= limit:
        with anyio.move_on_after(10):
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return
            continue
        return  # the client went quiet


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
