"""API tokens for the web service (`photoconsent serve`): one named token per caller.

A token is 32 random bytes (``pct_`` + URL-safe base64), shown once when it is created;
only its SHA-256 is stored, so a copy of the database cannot be used to call the service.
(A plain hash is enough: the token is random, not a password that could be guessed.)
Each token has a name ("website", "cms-plugin") that the audit log records for every
request it makes. Revoking a token keeps its row, so old audit entries still resolve.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass

from consent import audit
from consent.errors import ConsentError
from consent.store import Store

TOKEN_PREFIX = "pct_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class TokenError(ConsentError):
    """Base class of the token errors."""


class InvalidTokenName(TokenError):
    """A token name that is empty, too long or has characters other than A-Z a-z 0-9 . _ -."""


class TokenExists(TokenError):
    """A live token already has this name."""


class UnknownToken(TokenError):
    """No live token has this name."""


@dataclass(frozen=True)
class ApiToken:
    """A token's record (never the token itself). ``revoked_at`` is None while it works."""

    name: str
    created_at: str
    created_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
        }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidTokenName(
            f"Token name {name!r} is not usable: use 1 to 64 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit (e.g. 'website')."
        )
    return name


def create_token(store: Store, name: str, *, operator: str) -> str:
    """Create a live token called ``name`` and return it (the only time it is readable)."""
    check_name(name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.transaction() as conn:
        if _live(conn, name) is not None:
            raise TokenExists(
                f"A token called {name!r} already exists. Revoke it first "
                f"(`photoconsent token revoke {name}`) or choose another name."
            )
        conn.execute(
            "INSERT INTO api_tokens (name, token_sha256, created_at, created_by)"
            " VALUES (?, ?, ?, ?)",
            (name, token_hash(token), audit.utc_now(), operator),
        )
        audit.append(
            conn, store.key, action="token_create", operator=operator, details={"token": name}
        )
    return token


def revoke_token(store: Store, name: str, *, operator: str) -> None:
    """Stop the live token called ``name`` from working, audited."""
    with store.transaction() as conn:
        if _live(conn, name) is None:
            raise UnknownToken(f"No live token is called {name!r}; see `photoconsent token list`.")
        conn.execute(
            "UPDATE api_tokens SET revoked_at = ?, revoked_by = ?"
            " WHERE name = ? AND revoked_at IS NULL",
            (audit.utc_now(), operator, name),
        )
        audit.append(
            conn, store.key, action="token_revoke", operator=operator, details={"token": name}
        )


def list_tokens(conn: sqlite3.Connection, *, include_revoked: bool = False) -> list[ApiToken]:
    """Tokens by creation order; revoked ones only if asked."""
    where = "" if include_revoked else " WHERE revoked_at IS NULL"
    rows = conn.execute(
        "SELECT name, created_at, created_by, revoked_at, revoked_by FROM api_tokens"
        + where
        + " ORDER BY id"
    )
    return [ApiToken(*tuple(row)) for row in rows]


def authenticate(conn: sqlite3.Connection, presented: str) -> ApiToken | None:
    """The live token ``presented`` is, or None (unknown, revoked or malformed)."""
    if not presented.startswith(TOKEN_PREFIX) or len(presented) > 200:
        return None
    digest = token_hash(presented)
    row = conn.execute(
        "SELECT name, created_at, created_by, revoked_at, revoked_by, token_sha256"
        " FROM api_tokens WHERE token_sha256 = ? AND revoked_at IS NULL",
        (digest,),
    ).fetchone()
    # The lookup is by hash already; compare_digest keeps the final check constant-time.
    if row is None or not hmac.compare_digest(row["token_sha256"], digest):
        return None
    return ApiToken(*tuple(row)[:5])


def _live(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT id FROM api_tokens WHERE name = ? AND revoked_at IS NULL", (name,)
    ).fetchone()
