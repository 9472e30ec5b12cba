"""uvicorn with the connection-level limits it lacks: a header-read timeout and a cap on
open connections that idle clients cannot exhaust.

uvicorn 0.54 arms a timer only after a response (``timeout_keep_alive``); a connection that
never finishes its headers stays open for ever, and ``limit_concurrency`` is checked only
once a request has arrived, so about a thousand idle sockets exhaust the process's file
descriptors and stop ``/health`` (issue 15). `GuardedProtocol` is uvicorn's own h11
protocol with a header timer and a connection cap added; everything after the headers is
uvicorn's code unchanged. Body and whole-request limits are in `service.guard`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.limits import RefusalLog, ServiceLimits

log = logging.getLogger("photoconsent.service")

# Descriptors kept free beyond the connection cap: SQLite, the models, upload spool files,
# the worker pool's pipes.
FD_HEADROOM = 128
# A connection still waiting for its headers after this long may be dropped for a new one.
EVICTABLE_AFTER = 1.0
# Longest request head accepted (h11's default too); longer is a 400.
MAX_HEADER_BYTES = 16 * 1024


def _busy_reply(limit: int) -> bytes:
    body = json.dumps(
        {
            "detail": f"The service has the most open connections it allows ({limit}); "
            "try again in a few seconds."
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nretry-after: 5\r\ncache-control: no-store\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol plus a header timeout and an open-connection cap.

    Set up per server by `protocol_for`; ``limits`` and ``refusals`` are class attributes
    because uvicorn instantiates the protocol itself.
    """

    limits: ServiceLimits = ServiceLimits()
    refusals: RefusalLog = RefusalLog(60.0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._waiting_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        limit = self.limits.max_connections
        if len(self.connections) >= limit and not self._evict_one_idle():
            self.refusals.note(
                "connections", f"a connection over the limit of {limit} open connections (503)"
            )
            transport.write(_busy_reply(limit))
            transport.close()
            return
        super().connection_made(transport)
        self._arm_header_timer()

    def _evict_one_idle(self) -> bool:
        """Drop the connection that has waited longest for its headers (an idle or slow
        client), so that one more real client can be served."""
        now = time.monotonic()
        idle = [
            c
            for c in self.connections
            if isinstance(c, GuardedProtocol)
            and c._header_timer is not None
            and now - c._waiting_since > EVICTABLE_AFTER
        ]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c._waiting_since)
        self.refusals.note(
            "evicted", "an idle connection dropped to make room (open-connection limit)"
        )
        oldest._close()
        return True

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            self._cancel_header_timer()
        elif self.conn.their_state is h11.IDLE:
            # Between requests (after keep-alive) or in the middle of a request head.
            if self._header_timer is None:
                self._arm_header_timer()
        else:
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        # Waiting for the next request is keep-alive's business (uvicorn's own timer).
        self._cancel_header_timer()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self.transport is None:
            return  # refused in connection_made: uvicorn never saw it
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._waiting_since = time.monotonic()
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._header_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.refusals.note(
                "header_timeout",
                f"a client that did not send its request headers within "
                f"{self.limits.header_timeout:g} s (disconnected)",
            )
            self._close()

    def _close(self) -> None:
        self._cancel_header_timer()
        if not self.transport.is_closing():
            self.transport.close()


class _MalformedRequests(logging.Filter):
    """uvicorn logs every malformed request itself ("Invalid HTTP request received."); a
    flood of them becomes one counted line per interval instead."""

    def __init__(self, refusals: RefusalLog) -> None:
        super().__init__()
        self.refusals = refusals

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() == "Invalid HTTP request received.":
            self.refusals.note("malformed", "a malformed HTTP request (400)")
            return False
        return True


def protocol_for(limits: ServiceLimits, refusals: RefusalLog) -> type[GuardedProtocol]:
    """A `GuardedProtocol` class bound to these limits (one class per server)."""
    return type(
        "BoundGuardedProtocol", (GuardedProtocol,), {"limits": limits, "refusals": refusals}
    )


def allowed_connections(wanted: int) -> int:
    """``wanted``, or fewer if the process's open-file limit cannot hold that many plus
    headroom. The soft limit is raised to the hard one first where it is lower.

    ``resource`` is POSIX-only, so it is imported here: on Windows, which has no such
    per-process limit to raise, ``wanted`` is returned as it is."""
    try:
        import resource
    except ImportError:
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted + FD_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < target:
        new = target if hard == resource.RLIM_INFINITY else min(hard, target)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_HEADROOM))


def build_server(
    app: Any, limits: ServiceLimits, refusals: RefusalLog, host: str, port: int, **config: Any
) -> uvicorn.Server:
    """A uvicorn server for ``app`` with the service's protocol, keep-alive and limits.

    uvicorn's access log is switched off: it would write query strings (a token sent in the
    address, by mistake) verbatim; `service.guard` writes its own access lines instead.
    """
    effective = allowed_connections(limits.max_connections)
    if effective < limits.max_connections:
        log.warning(
            "the open-file limit allows only %d connections, not %d (raise `ulimit -n`)",
            effective,
            limits.max_connections,
        )
    bound = ServiceLimits(**{**limits.__dict__, "max_connections": effective})
    settings: dict[str, Any] = {
        "log_level": "info",
        "server_header": False,
        "date_header": True,
        "access_log": False,
        "timeout_keep_alive": limits.keep_alive,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        **config,
    }
    uvicorn_log = logging.getLogger("uvicorn.error")
    for old in [f for f in uvicorn_log.filters if isinstance(f, _MalformedRequests)]:
        uvicorn_log.removeFilter(old)
    uvicorn_log.addFilter(_MalformedRequests(refusals))
    cfg = uvicorn.Config(app, host=host, port=port, http=protocol_for(bound, refusals), **settings)
    return uvicorn.Server(cfg)
