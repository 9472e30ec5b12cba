"""Tamper-evident audit log: an HMAC hash chain in SQLite, anchored by a file outside it.

Each row of ``audit_log`` is ``seq, at, operator, action, details, prev_hash, entry_hash``::

    entry_hash = HMAC-SHA256(audit_key,
                             "\\n".join([prev_hash, seq, at, operator, action, details]))

with ``details`` as canonical JSON and the first ``prev_hash`` 64 zeros. The HMAC key is
derived from the secret key (`consent.crypto.audit_key`), so someone with only the database
cannot rewrite an entry and fix up the chain. Deleting the *last* entries leaves a valid
chain, so after every commit `consent.store.Store.transaction` writes the head
(``"seq hash"``) to ``DATA_DIR/audit-head``; `verify` checks that the head is still there.

What this does not catch: someone holding the key file, or someone who deletes both the
newest entries and rewrites ``audit-head`` to match. Print or e-mail `head` off the machine
for that.

Details never hold pupils' names or face encodings: `append` refuses bytes, numpy arrays and
name-like keys.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from consent import files
from consent.crypto import audit_key
from consent.errors import AuditTampered


class AuditedStore(Protocol):
    """What the audit functions read of a `consent.store.Store` (kept structural, so this
    module needs nothing from the store module, which writes the anchor through it)."""

    @property
    def conn(self) -> sqlite3.Connection: ...

    @property
    def key(self) -> bytes: ...

    @property
    def data_dir(self) -> Path: ...


GENESIS_HASH = "0" * 64
ANCHOR_FILE = "audit-head"
# Keys that would put a person's name or biometric data into the log.
FORBIDDEN_KEYS = frozenset({"name", "first_name", "last_name", "full_name", "encoding"})


@dataclass(frozen=True)
class AuditEntry:
    """One audit row; ``details`` is the decoded JSON object."""

    seq: int
    at: str
    operator: str
    action: str
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of `verify`: ``ok`` is False when ``problems`` is not empty."""

    ok: bool
    entries: int
    problems: list[str] = field(default_factory=list)


def utc_now() -> str:
    """Current UTC time as ISO-8601 with milliseconds, e.g. ``2025-06-01T09:30:00.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def canonical_json(details: Mapping[str, Any]) -> str:
    """The one JSON spelling that is hashed: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(
        details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def compute_hash(
    mac_key: bytes, prev_hash: str, seq: int, at: str, operator: str, action: str, details: str
) -> str:
    """The HMAC-SHA256 hex digest of one entry (``details`` already canonical JSON)."""
    message = "\n".join([prev_hash, str(seq), at, operator, action, details])
    return hmac.new(mac_key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def _check_label(kind: str, value: str) -> None:
    # Newlines would make the hashed message ambiguous; control characters would reach
    # terminals when the log is printed.
    if not isinstance(value, str) or not value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"audit {kind} must be a non-empty string without control characters")


def _check_details(value: Any, path: str = "details") -> None:
    if isinstance(value, np.ndarray | bytes | bytearray | memoryview):
        raise ValueError(
            f"{path} is {type(value).__name__}; raw data and face encodings never go in the "
            "audit log (log a sha256 or an id instead)"
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path} has a non-string key {key!r}")
            if key.lower() in FORBIDDEN_KEYS:
                raise ValueError(f"{path}.{key}: names and encodings never go in the audit log")
            _check_details(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_details(item, f"{path}[{i}]")


def append(
    conn: sqlite3.Connection,
    key: bytes,
    *,
    action: str,
    operator: str,
    details: Mapping[str, Any],
) -> AuditEntry:
    """Append one entry inside the caller's open transaction (this never commits).

    Use it inside ``with store.transaction() as conn:`` so the entry commits or rolls back
    with the change it records, and the head anchor is written after the commit.
    """
    if not conn.in_transaction:
        raise RuntimeError(
            "audit.append must run inside store.transaction(), so the entry is committed "
            "together with the change it records"
        )
    _check_label("action", action)
    _check_label("operator", operator)
    if not isinstance(details, Mapping):
        raise ValueError("audit details must be a dict")
    _check_details(details)
    details_json = canonical_json(details)
    seq, prev_hash = head(conn)
    seq += 1
    at = utc_now()
    entry_hash = compute_hash(audit_key(key), prev_hash, seq, at, operator, action, details_json)
    conn.execute(
        "INSERT INTO audit_log (seq, at, operator, action, details, prev_hash, entry_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, at, operator, action, details_json, prev_hash, entry_hash),
    )
    return AuditEntry(seq, at, operator, action, json.loads(details_json), prev_hash, entry_hash)


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    """``(seq, entry_hash)`` of the newest entry, or ``(0, GENESIS_HASH)`` for an empty log."""
    row = conn.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))


def write_anchor(data_dir: Path, conn: sqlite3.Connection) -> None:
    """Write the chain head to ``DATA_DIR/audit-head`` atomically; call after COMMIT.

    The head is read under SQLite's write lock, so two processes committing at once cannot
    leave an older head in the file than the newest committed one.
    """
    if conn.in_transaction:
        raise RuntimeError("write_anchor must run after the transaction has committed")
    conn.execute("BEGIN IMMEDIATE")
    try:
        seq, entry_hash = head(conn)
        data = f"{seq} {entry_hash}\n".encode("ascii")
        files.replace_atomic(data_dir / ANCHOR_FILE, data, mode=files.PRIVATE)
    finally:
        conn.execute("COMMIT")


def read_anchor(data_dir: Path) -> tuple[int, str] | None:
    """``(seq, hash)`` from ``audit-head``, None if the file is missing; ValueError if garbled."""
    try:
        text = (data_dir / ANCHOR_FILE).read_text("ascii")
    except FileNotFoundError:
        return None
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or len(parts[1]) != 64:
        raise ValueError(f"{ANCHOR_FILE} is not 'seq hash': {text[:80]!r}")
    return int(parts[0]), parts[1]


def verify(store: AuditedStore) -> VerifyResult:
    """Recompute the whole chain and compare its head with the anchor file."""
    mac_key = audit_key(store.key)
    rows = store.conn.execute("SELECT * FROM audit_log ORDER BY seq").fetchall()
    problems: list[str] = []
    prev_hash, expected_seq = GENESIS_HASH, 1
    by_seq: dict[int, str] = {}
    for row in rows:
        seq = row["seq"]
        if seq != expected_seq:
            problems.append(
                f"entries {expected_seq}..{seq - 1} are missing: the log jumps from "
                f"{expected_seq - 1} to {seq} (deleted?)"
            )
        if row["prev_hash"] != prev_hash:
            problems.append(
                f"entry {seq}: prev_hash does not match the entry before it "
                "(an entry was deleted, inserted or reordered)"
            )
        fields = (row["at"], row["operator"], row["action"], row["details"])
        if compute_hash(mac_key, row["prev_hash"], seq, *fields) != row["entry_hash"]:
            problems.append(
                f"entry {seq} ({row['action']!r}): contents do not match its hash "
                "(edited after it was written, or moved)"
            )
        by_seq[seq] = row["entry_hash"]
        prev_hash, expected_seq = row["entry_hash"], seq + 1
    problems.extend(_check_anchor(store.data_dir, by_seq, expected_seq - 1))
    return VerifyResult(ok=not problems, entries=len(rows), problems=problems)


def _check_anchor(data_dir: Path, by_seq: dict[int, str], last_seq: int) -> list[str]:
    try:
        anchor = read_anchor(data_dir)
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"the head anchor {ANCHOR_FILE} is garbled: {exc}"]
    if anchor is None:
        return [
            f"the head anchor {data_dir / ANCHOR_FILE} is missing, so deleting the newest "
            "entries cannot be ruled out"
        ]
    seq, entry_hash = anchor
    if seq == 0:
        return [] if entry_hash == GENESIS_HASH else [f"{ANCHOR_FILE} is garbled"]
    if seq not in by_seq:
        return [
            f"{ANCHOR_FILE} records entry {seq} but the log ends at entry {last_seq} "
            "(the newest entries were deleted?)"
        ]
    if by_seq[seq] != entry_hash:
        return [f"entry {seq} does not have the hash recorded in {ANCHOR_FILE} (rewritten?)"]
    return []


def ensure_intact(store: AuditedStore) -> None:
    """Raise `AuditTampered` unless `verify` is ok (for jobs that must fail closed)."""
    result = verify(store)
    if not result.ok:
        raise AuditTampered(result.problems)


def entries(
    store: AuditedStore, *, limit: int | None = None, action: str | None = None
) -> list[AuditEntry]:
    """Entries oldest first; ``limit`` keeps the newest N, ``action`` filters by action."""
    sql = "SELECT * FROM audit_log"
    params: list[str | int] = []
    if action is not None:
        sql += " WHERE action = ?"
        params.append(action)
    sql += " ORDER BY seq DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    rows = store.conn.execute(sql, params).fetchall()
    return [_entry(row) for row in reversed(rows)]


def _entry(row: sqlite3.Row) -> AuditEntry:
    try:
        details = json.loads(row["details"])
    except ValueError:
        raise AuditTampered([f"entry {row['seq']}: details are not valid JSON"]) from None
    return AuditEntry(
        row["seq"],
        row["at"],
        row["operator"],
        row["action"],
        details,
        row["prev_hash"],
        row["entry_hash"],
    )
