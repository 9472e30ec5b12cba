"""Leavers, retention and erasure: personal data goes when the school no longer needs it.

Personal data about pupils is grouped in *categories* (`DataCategory`), each with a
retention period counted from the day the pupil left: ``biometrics`` (face encodings) is
0 days by default, i.e. deleted at the first ``purge`` on or after the leaving date. A
school changes a period with `set_retention`. Other kinds of pupil data plug in by calling
`register_category` with a count and a delete function (``medical`` records and
``board_photos`` do, 0 days by default); ``purge``, ``forget`` and the subject access
export then cover them too.

``forget`` answers an erasure request at once, whatever the retention: it deletes every
category, withdraws all consent (so no new photo keeps the child) and blanks the names and
class. The consent versions (pupil ID, yes/no, dates, source) and the audit log stay, under
the pupil ID only, so the school can still show on what basis each earlier photo was
published and find it for a takedown; docs/dpia.md says why.

Every deletion is audited (pupil ID, category, count, reason) in the transaction that
makes it, and afterwards the database is vacuumed and its write-ahead log truncated, so
the deleted bytes do not linger in free pages or the ``-wal`` file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from consent import audit, changes, registry
from consent.changes import ChangeKind, ConsentChange
from consent.enrolment import purge_references
from consent.errors import NoChange, UnknownPupil, UnknownRetentionCategory
from consent.medical import board_photos
from consent.medical import records as medical
from consent.registry import Purpose
from consent.store import Store

# (conn, pupil_id) -> how many items of the category the pupil has.
CountFn = Callable[[sqlite3.Connection, str], int]
# (conn, key, pupil_id, operator, reason) -> how many were deleted, audited by the callee.
DeleteFn = Callable[[sqlite3.Connection, bytes, str, str, str], int]


@dataclass(frozen=True)
class DataCategory:
    """A kind of personal data held per pupil, deleted by ``purge`` and ``forget``.

    ``default_days`` is the retention after leaving (None: kept until erased).
    ``transferable`` says whether ``export --transfer`` may include it.
    """

    name: str
    description: str
    default_days: int | None
    count: CountFn
    delete: DeleteFn
    transferable: bool = False


CATEGORIES: dict[str, DataCategory] = {}


def register_category(category: DataCategory) -> None:
    """Add a category of per-pupil data (e.g. board photos) to purge, forget and export."""
    CATEGORIES[category.name] = category


def _count_references(conn: sqlite3.Connection, pupil_id: str) -> int:
    row = conn.execute("SELECT COUNT(*) FROM face_references WHERE pupil_id = ?", (pupil_id,))
    return int(row.fetchone()[0])


def _delete_references(
    conn: sqlite3.Connection, key: bytes, pupil_id: str, operator: str, reason: str
) -> int:
    return purge_references(conn, key, pupil_id, operator=operator, reason=reason)


register_category(
    DataCategory(
        name="biometrics",
        description="face encodings (biometric templates) used to recognise the pupil",
        default_days=0,
        count=_count_references,
        delete=_delete_references,
        transferable=False,  # never transferred to another school
    )
)


def _delete_medical(
    conn: sqlite3.Connection, key: bytes, pupil_id: str, operator: str, reason: str
) -> int:
    return medical.delete_records(conn, key, pupil_id, operator, reason)


def _delete_board_photos(
    conn: sqlite3.Connection, key: bytes, pupil_id: str, operator: str, reason: str
) -> int:
    return board_photos.delete_photos(conn, key, pupil_id, operator, reason)


register_category(
    DataCategory(
        name="medical",
        description="medical records for the staff-room board (conditions, actions)",
        default_days=0,
        count=medical.count_records,
        delete=_delete_medical,
        transferable=False,  # the school passes the health care plan on by its own route
    )
)
register_category(
    DataCategory(
        name="board_photos",
        description="photos held for the staff-room medical board",
        default_days=0,
        count=board_photos.count_photos,
        delete=_delete_board_photos,
        transferable=False,
    )
)


@dataclass(frozen=True)
class Purged:
    """One deletion: ``deleted`` items of ``category`` of ``pupil_id``, and why."""

    pupil_id: str
    category: str
    deleted: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _category(name: str) -> DataCategory:
    try:
        return CATEGORIES[name]
    except KeyError:
        raise UnknownRetentionCategory(
            f"No data category {name!r}; choose one of: {', '.join(sorted(CATEGORIES))}."
        ) from None


def retention_days(conn: sqlite3.Connection, category: str) -> int | None:
    """The retention after leaving for ``category``, in days (None: kept until erased)."""
    cat = _category(category)
    row = conn.execute("SELECT days FROM retention WHERE category = ?", (category,)).fetchone()
    return cat.default_days if row is None else row[0]


def retention(conn: sqlite3.Connection) -> dict[str, int | None]:
    """``category -> days`` for every category (the school's setting or the default)."""
    return {name: retention_days(conn, name) for name in sorted(CATEGORIES)}


def set_retention(store: Store, category: str, days: int | None, *, operator: str) -> None:
    """Set how long ``category`` is kept after a pupil leaves (None: until erased)."""
    _category(category)
    if days is not None and days < 0:
        raise ValueError("a retention period is 0 days or more")
    with store.transaction() as conn:
        old = retention_days(conn, category)
        conn.execute(
            "INSERT INTO retention (category, days, set_at, set_by) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (category) DO UPDATE SET days = excluded.days,"
            " set_at = excluded.set_at, set_by = excluded.set_by",
            (category, days, audit.utc_now(), operator),
        )
        audit.append(
            conn,
            store.key,
            action="retention_set",
            operator=operator,
            details={"category": category, "days": days, "previous_days": old},
        )


def _require_pupil(conn: sqlite3.Connection, pupil_id: str) -> sqlite3.Row:
    row = conn.execute(
        "SELECT pupil_id, left_on, erased_at FROM pupils WHERE pupil_id = ?", (pupil_id,)
    ).fetchone()
    if row is None:
        raise UnknownPupil(pupil_id)
    return row


def _due(conn: sqlite3.Connection, today: date, only: str | None) -> list[tuple[str, str, str]]:
    """``(pupil_id, category, reason)`` for leavers' data past its retention on ``today``."""
    due = []
    sql = "SELECT pupil_id, left_on FROM pupils WHERE left_on IS NOT NULL"
    params: tuple[str, ...] = ()
    if only is not None:
        sql += " AND pupil_id = ?"
        params = (only,)
    for pupil_id, left_on in conn.execute(sql + " ORDER BY pupil_id", params).fetchall():
        for name in sorted(CATEGORIES):
            days = retention_days(conn, name)
            if days is None or date.fromisoformat(left_on) + timedelta(days=days) > today:
                continue
            if CATEGORIES[name].count(conn, pupil_id):
                due.append((pupil_id, name, f"left {left_on}, kept {days} day(s) after leaving"))
    # A biometric consent past its use-by date counts as withdrawn (issue 7).
    rows = conn.execute(
        "SELECT DISTINCT c.pupil_id, c.expires_on FROM consent_records AS c"
        " JOIN face_references AS f ON f.pupil_id = c.pupil_id"
        " WHERE c.superseded_at IS NULL AND c.expires_on IS NOT NULL AND c.expires_on < ?"
        " ORDER BY c.pupil_id",
        (today.isoformat(),),
    ).fetchall()
    for pupil_id, expires_on in rows:
        if (only is None or pupil_id == only) and (pupil_id, "biometrics") not in {
            (p, c) for p, c, _ in due
        }:
            due.append((pupil_id, "biometrics", f"consent expired on {expires_on}"))
    return due


def _purge_due(
    conn: sqlite3.Connection, key: bytes, today: date, operator: str, only: str | None = None
) -> list[Purged]:
    purged = []
    for pupil_id, name, reason in _due(conn, today, only):
        deleted = CATEGORIES[name].delete(conn, key, pupil_id, operator, reason)
        purged.append(Purged(pupil_id, name, deleted, reason))
    return purged


def compact(store: Store) -> None:
    """VACUUM and truncate the write-ahead log, so deleted rows leave no bytes behind."""
    store.conn.execute("VACUUM")
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def purge(
    store: Store, *, operator: str, today: date | None = None, dry_run: bool = False
) -> list[Purged]:
    """Delete leavers' data past its retention (and biometrics whose consent expired).

    Audited: one entry per deletion and a ``purge`` summary (also when nothing was due).
    ``dry_run`` only reports what would go and writes nothing.
    """
    today = today or date.today()
    if dry_run:
        return [
            Purged(p, c, CATEGORIES[c].count(store.conn, p), r)
            for p, c, r in _due(store.conn, today, None)
        ]
    with store.transaction() as conn:
        purged = _purge_due(conn, store.key, today, operator)
        audit.append(
            conn,
            store.key,
            action="purge",
            operator=operator,
            details={
                "date": today.isoformat(),
                "retention_days": retention(conn),
                "deleted": [
                    {"pupil_id": p.pupil_id, "category": p.category, "count": p.deleted}
                    for p in purged
                ],
            },
        )
    if purged:
        compact(store)
    return purged


def leave(
    store: Store, pupil_id: str, left_on: date, *, operator: str, today: date | None = None
) -> list[Purged]:
    """Record that a pupil left on ``left_on``; delete at once what is already due
    (by default their face encodings). Return what was deleted."""
    today = today or date.today()
    with store.transaction() as conn:
        row = _require_pupil(conn, pupil_id)
        conn.execute(
            "UPDATE pupils SET left_on = ?, updated_at = ? WHERE pupil_id = ?",
            (left_on.isoformat(), audit.utc_now(), pupil_id),
        )
        audit.append(
            conn,
            store.key,
            action="pupil_leave",
            operator=operator,
            details={
                "pupil_id": pupil_id,
                "left_on": left_on.isoformat(),
                "previous_left_on": row["left_on"],
            },
        )
        purged = _purge_due(conn, store.key, today, operator, only=pupil_id)
    if purged:
        compact(store)
    return purged


def forget(store: Store, pupil_id: str, *, operator: str, source: str) -> list[Purged]:
    """Erase a pupil on request (UK GDPR Art. 17): delete every data category, withdraw
    all consent, blank names and class. ``source`` names the request (e.g. a letter)."""
    with store.transaction() as conn:
        row = _require_pupil(conn, pupil_id)
        purged = []
        reason = "erasure request"
        for name in sorted(CATEGORIES):
            deleted = CATEGORIES[name].delete(conn, store.key, pupil_id, operator, reason)
            if deleted:
                purged.append(Purged(pupil_id, name, deleted, reason))
        change = ConsentChange(
            kind=ChangeKind.ERASURE,
            source=source,
            withdraw=frozenset(Purpose),
            biometric=False,
        )
        try:
            changes.apply_change(
                conn, store.key, pupil_id, change, operator=operator, today=date.today()
            )
        except NoChange:
            pass  # nothing was allowed anyway
        conn.execute(
            "UPDATE pupils SET first_name = '', last_name = '', class_name = '',"
            " preferred_first_name = NULL, preferred_last_name = NULL, other_names = NULL,"
            " erased_at = ?, updated_at = ? WHERE pupil_id = ?",
            (audit.utc_now(), audit.utc_now(), pupil_id),
        )
        audit.append(
            conn,
            store.key,
            action="pupil_erase",
            operator=operator,
            details={
                "pupil_id": pupil_id,
                "source": registry.clean_text(source),
                "already_erased": row["erased_at"] is not None,
                "deleted": {p.category: p.deleted for p in purged},
                "kept": ["pupil_id", "consent versions", "audit entries"],
            },
        )
    compact(store)
    return purged


def is_erased(conn: sqlite3.Connection, pupil_id: str) -> bool:
    """True if ``forget`` erased this pupil."""
    return _require_pupil(conn, pupil_id)["erased_at"] is not None
