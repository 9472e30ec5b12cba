"""What needs doing, read through the library: each item is a count and the screen for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from board.status import board_status
from consent import audit, retention
from consent.errors import ConsentError
from consent.store import Store
from consent.takedown import TakedownItem, takedown_report
from publishing.review.batch import list_batches

EXPIRY_WARNING_DAYS = 30


@dataclass(frozen=True)
class Expiring:
    pupil_id: str
    expires_on: date


@dataclass
class Dashboard:
    review_batches: int = 0
    review_faces: int = 0
    takedowns: dict[str, list[TakedownItem]] = field(default_factory=dict)
    expiring: list[Expiring] = field(default_factory=list)
    stale_boards: int = 0
    boards_unreadable: bool = False
    purges_due: list[retention.Purged] = field(default_factory=list)

    @property
    def takedown_photos(self) -> int:
        return sum(len(items) for items in self.takedowns.values())


def pending_takedowns(store: Store, on: date) -> dict[str, list[TakedownItem]]:
    """``pupil_id -> photos still to take down`` (not yet replaced), for every pupil a
    published photo kept."""
    kept: set[str] = set()
    for entry in audit.entries(store, action="publish"):
        kept.update(entry.details.get("pupils_kept", []))
    found: dict[str, list[TakedownItem]] = {}
    for pupil_id in sorted(kept):
        items = [i for i in takedown_report(store, pupil_id, on=on) if i.replaced_by is None]
        if items:
            found[pupil_id] = items
    return found


def expiring_consents(store: Store, on: date, days: int = EXPIRY_WARNING_DAYS) -> list[Expiring]:
    """Current consent slips whose use-by date falls in the next ``days`` days."""
    rows = store.conn.execute(
        "SELECT c.pupil_id, c.expires_on FROM consent_records AS c"
        " JOIN pupils AS p ON p.pupil_id = c.pupil_id"
        " WHERE c.superseded_at IS NULL AND c.expires_on IS NOT NULL"
        " AND c.expires_on >= ? AND c.expires_on <= ? AND p.left_on IS NULL"
        " ORDER BY c.expires_on, c.pupil_id",
        (on.isoformat(), (on + timedelta(days=days)).isoformat()),
    ).fetchall()
    return [Expiring(r[0], date.fromisoformat(r[1])) for r in rows]


def dashboard(store: Store, on: date | None = None) -> Dashboard:
    on = on or date.today()
    board = Dashboard()
    for batch in list_batches(store):
        if batch.published_to is None:
            board.review_batches += 1
            board.review_faces += batch.awaiting_approval()
    board.takedowns = pending_takedowns(store, on)
    board.expiring = expiring_consents(store, on)
    try:
        board.stale_boards = sum(1 for s in board_status(store, on=on) if not s.current)
    except ConsentError:
        # Boards exist but the medical key is not on this PC: say so, never guess.
        board.boards_unreadable = True
    board.purges_due = retention.purge(store, operator="office-app", today=on, dry_run=True)
    return board
