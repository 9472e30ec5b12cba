"""Signed-in sessions: a random token in an HttpOnly, SameSite=Strict cookie, held in memory.

Restarting the app signs everyone out, which is the safe way round. A session ends after
`SessionStore.idle` without a request, or when its person signs out. Each session has its
own CSRF token, which every form carries and every POST is checked against.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from web.accounts import Role
from web.permissions import Permission, allows

COOKIE = "photoconsent_session"
DEFAULT_IDLE_SECONDS = 20 * 60


@dataclass
class Session:
    token: str
    username: str
    role: Role
    csrf: str
    last_seen: float
    # Pages' short-lived state (the import wizard's upload), never pupils' data at rest.
    scratch: dict[str, object] = field(default_factory=dict)

    def can(self, permission: Permission) -> bool:
        return allows(self.role, permission)

    def csrf_ok(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(str(sent), self.csrf)

    @property
    def operator(self) -> str:
        """The audit's operator: the signed-in person, not the OS user."""
        return self.username


class SessionStore:
    def __init__(
        self,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle = idle_seconds
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, username: str, role: Role) -> Session:
        session = Session(
            token=secrets.token_urlsafe(32),
            username=username,
            role=role,
            csrf=secrets.token_urlsafe(32),
            last_seen=self.clock(),
        )
        with self._lock:
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session for ``token`` (its idle clock restarted), or None."""
        if not token:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if now - session.last_seen > self.idle:
                del self._sessions[token]
                return None
            session.last_seen = now
            return session

    def end(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def end_for(self, username: str) -> None:
        """Sign a person out everywhere (their account was switched off)."""
        with self._lock:
            for token in [t for t, s in self._sessions.items() if s.username == username]:
                del self._sessions[token]
