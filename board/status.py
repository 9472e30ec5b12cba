"""Which printed boards are out of date, read from the ``board_generate`` audit entries.

A board is judged against the registry as it is now: for each pupil printed on it, did
they leave (or were they erased), was their medical record changed or removed, was their
photo changed or removed, did their name or class change; is a pupil now missing from it
(a new record, a new room, a new condition matching its filter); has its replace-by date
passed. Only the newest board for each room and filter is judged unless ``every`` is asked
for; older ones count as replaced. Reasons name pupil ids only, never medical text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from board.model import BoardFilter
from board.selection import person_digest, read_filter, select_cards
from consent import audit
from consent.medical import board_photos
from consent.medical import records as medical
from consent.medical.key import require_medical_key
from consent.store import Store


@dataclass(frozen=True)
class BoardState:
    """One printed board and why it is out of date (``reasons`` empty: still current)."""

    seq: int
    at: str
    operator: str
    room: str
    filters: str
    orientation: str
    pupils: int
    replace_by: str
    fingerprint: str
    files: list[str]
    reasons: list[str] = field(default_factory=list)
    replaced_by: int | None = None

    @property
    def current(self) -> bool:
        return not self.reasons and self.replaced_by is None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "current": self.current}


def _group(flt: BoardFilter) -> tuple[str, tuple[str, ...], str]:
    return (flt.room.value, tuple(sorted(flt.classes)), flt.condition or "")


def _describe(flt: BoardFilter) -> str:
    """The filters without condition text (the status is a report)."""
    parts = []
    if flt.classes:
        parts.append("class " + ", ".join(sorted(flt.classes)))
    if flt.condition:
        parts.append("one condition")
    return "; ".join(parts) or "all pupils"


def board_status(store: Store, *, on: date | None = None, every: bool = False) -> list[BoardState]:
    """Every board's state, newest first; older boards of the same room and filters are
    marked ``replaced_by`` and only judged when ``every`` is True."""
    on = on or date.today()
    entries = audit.entries(store, action="board_generate")
    if not entries:
        return []
    key = require_medical_key(store)
    pupils = {
        r["pupil_id"]: dict(r)
        for r in store.conn.execute(
            "SELECT pupil_id, first_name, last_name, class_name, left_on, erased_at FROM pupils"
        )
    }
    revisions = medical.revisions(store.conn)
    photos = board_photos.photo_info(store.conn)
    newest: dict[tuple[str, tuple[str, ...], str], int] = {}
    states: list[BoardState] = []
    for entry in reversed(entries):
        d = entry.details
        flt = read_filter(key, d)
        group = _group(flt)
        replaced_by = newest.get(group)
        newest.setdefault(group, entry.seq)
        state = BoardState(
            seq=entry.seq,
            at=entry.at,
            operator=entry.operator,
            room=flt.room.value,
            filters=_describe(flt),
            orientation=str(d.get("orientation")),
            pupils=int(d.get("count", 0)),
            replace_by=str(d["replace_by"]),
            fingerprint=str(d["fingerprint"]),
            files=[str(f["file"]) for f in d.get("files", [])],
            replaced_by=replaced_by,
        )
        if replaced_by is None or every:
            state.reasons.extend(
                _reasons(store, key, d, flt, on, pupils, revisions, photos)  # type: ignore[arg-type]
            )
        states.append(state)
    return states


def _reasons(
    store: Store,
    key: bytes,
    details: dict[str, Any],
    flt: BoardFilter,
    on: date,
    pupils: dict[str, dict[str, Any]],
    revisions: dict[str, str],
    photos: dict[str, board_photos.PhotoInfo],
) -> list[str]:
    reasons: list[str] = []
    if date.fromisoformat(str(details["replace_by"])) < on:
        reasons.append(f"replace-by date {details['replace_by']} has passed")
    printed = {p["pupil_id"]: p for p in details.get("pupils", [])}
    now_cards, _ = select_cards(store, flt, on, with_photos=False)
    now_ids = {c.pupil_id for c in now_cards}
    for pupil_id, p in sorted(printed.items()):
        row = pupils.get(pupil_id)
        if row is None or row["erased_at"] is not None:
            reasons.append(f"{pupil_id} was erased from the registry")
            continue
        if row["left_on"] is not None and date.fromisoformat(row["left_on"]) <= on:
            reasons.append(f"{pupil_id} has left (on {row['left_on']})")
            continue
        if pupil_id not in revisions:
            reasons.append(f"{pupil_id}'s medical record was removed")
            continue
        if revisions[pupil_id] != p.get("record"):
            reasons.append(f"{pupil_id}'s medical record changed")
        info = photos.get(pupil_id)
        if info is None and p.get("photo") is not None:
            reasons.append(f"{pupil_id}'s photo was removed")
        elif info is not None and info.revision != p.get("photo"):
            reasons.append(
                f"{pupil_id}'s photo changed" if p.get("photo") else f"{pupil_id} now has a photo"
            )
        if person_digest(key, row) != p.get("person"):
            reasons.append(f"{pupil_id}'s name or class changed")
        if pupil_id not in now_ids:
            reasons.append(f"{pupil_id} no longer belongs on this board")
    for pupil_id in sorted(now_ids - set(printed)):
        reasons.append(f"{pupil_id} is missing (new or changed medical record)")
    return reasons
