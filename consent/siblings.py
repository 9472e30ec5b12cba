"""Siblings named on pupils' records.

Face matching errs most between siblings and twins, so a pupil and a named sibling must be
told apart by a wider margin (``pipeline.matching``), and calibration reports their
distances separately. Links are symmetric and audited; they hold pupil IDs only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import permutations

from consent import audit
from consent.errors import UnknownPupil
from consent.store import Store


def link_siblings(store: Store, pupil_ids: Sequence[str], *, operator: str) -> int:
    """Record every pupil in ``pupil_ids`` as a sibling of every other; return new links."""
    ids = sorted(set(pupil_ids))
    if len(ids) < 2:
        raise ValueError("name at least two different pupils")
    with store.transaction() as conn:
        _require(conn, ids)
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO siblings (pupil_id, sibling_id) VALUES (?, ?)",
            list(permutations(ids, 2)),
        )
        added = conn.total_changes - before
        audit.append(
            conn, store.key, action="siblings_link", operator=operator, details={"pupils": ids}
        )
    return added // 2


def unlink_siblings(store: Store, pupil_ids: Sequence[str], *, operator: str) -> int:
    """Remove the sibling links between the pupils in ``pupil_ids``; return links removed."""
    ids = sorted(set(pupil_ids))
    with store.transaction() as conn:
        before = conn.total_changes
        conn.executemany(
            "DELETE FROM siblings WHERE pupil_id = ? AND sibling_id = ?",
            list(permutations(ids, 2)),
        )
        removed = conn.total_changes - before
        audit.append(
            conn, store.key, action="siblings_unlink", operator=operator, details={"pupils": ids}
        )
    return removed // 2


def siblings(conn: sqlite3.Connection) -> dict[str, frozenset[str]]:
    """``pupil_id -> the pupils named as their siblings``."""
    out: dict[str, set[str]] = {}
    for pupil_id, sibling_id in conn.execute("SELECT pupil_id, sibling_id FROM siblings"):
        out.setdefault(pupil_id, set()).add(sibling_id)
    return {k: frozenset(v) for k, v in out.items()}


def _require(conn: sqlite3.Connection, ids: Sequence[str]) -> None:
    for pupil_id in ids:
        if conn.execute("SELECT 1 FROM pupils WHERE pupil_id = ?", (pupil_id,)).fetchone() is None:
            raise UnknownPupil(pupil_id)
