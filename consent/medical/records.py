"""Pupils' medical records for the staff-room board, encrypted at rest under a medical key.

A record holds, per pupil: one or more conditions (each with a `Severity`, what staff must
do, where the medication is kept and an optional end date for a temporary need), free-text
notes, the rooms whose board shows the pupil (`Room`) and the individual health care plan
(IHCP) review date.

Medical text is special-category data (UK GDPR Art. 9). Conditions, severities, actions,
medication locations and notes are one AES-256-GCM ciphertext per pupil, with the
associated data ``b"medical:" + pupil_id`` so a ciphertext copied to another pupil's row
fails to decrypt. They are encrypted under a *separate* key (`consent.medical.key`), so a
school can keep it away from both the database and the face-encoding key. The CSV import
is `consent.medical.records_csv`.

Left in the clear, because the board and its status need them without the key: the pupil
id, the rooms, the review date and a random ``revision`` that changes on every edit. The
audit log records pupil ids, rooms, counts and revisions, never medical text.
"""

from __future__ import annotations

import enum
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from consent import audit, crypto
from consent.errors import MedicalError, NoMedicalRecord, UnknownPupil
from consent.medical.key import medical_key, require_medical_key
from consent.registry import clean_text
from consent.store import Store

MAX_TEXT = 600  # characters per free-text cell: enough for an action plan, fits a card


class Severity(enum.IntEnum):
    """How bad it is if staff do not act; higher is worse, boards list the worst first."""

    LOW = 1
    MODERATE = 2
    SERIOUS = 3
    LIFE_THREATENING = 4

    @property
    def label(self) -> str:
        """The spelling in CSV files, on the CLI and on the board: ``life-threatening``."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, text: str) -> Severity:
        """``life-threatening`` / ``life threatening`` / ``LIFE_THREATENING`` ... ``low``."""
        key = text.strip().upper().replace("-", "_").replace(" ", "_")
        try:
            return cls[key]
        except KeyError:
            raise ValueError(
                f"severity {clean_text(text)[:40]!r} is not one of: "
                + ", ".join(s.label for s in sorted(cls, reverse=True))
            ) from None


class Room(enum.Enum):
    """Where a printed board hangs; a record lists the rooms whose board shows the pupil."""

    STAFF_ROOM = "staff-room"
    CLASSROOM = "classroom"
    KITCHEN = "kitchen"
    MEDICAL_ROOM = "medical-room"

    @property
    def title(self) -> str:
        return self.value.replace("-", " ").capitalize()


def parse_rooms(text: str) -> frozenset[Room]:
    """``"staff-room; kitchen"`` (``;``, ``|`` or ``,`` between) or ``all``; at least one."""
    words = [w.strip().lower() for w in text.replace("|", ";").replace(",", ";").split(";")]
    words = [w.replace(" ", "-").replace("_", "-") for w in words if w]
    if words == ["all"]:
        return frozenset(Room)
    rooms, bad = set(), []
    for word in words:
        try:
            rooms.add(Room(word))
        except ValueError:
            bad.append(clean_text(word)[:30])
    if bad or not rooms:
        raise ValueError(
            f"rooms {', '.join(repr(b) for b in bad) or '(none)'} not known; use "
            + "; ".join(r.value for r in Room)
            + " or all"
        )
    return frozenset(rooms)


@dataclass(frozen=True)
class Condition:
    """One medical need. ``ends_on``: a temporary need is current up to that day."""

    name: str
    severity: Severity
    action: str
    medication: str = ""
    ends_on: date | None = None

    def current(self, on: date) -> bool:
        return self.ends_on is None or on <= self.ends_on

    def to_json(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "severity": self.severity.label,
            "action": self.action,
            "medication": self.medication,
            "ends_on": None if self.ends_on is None else self.ends_on.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, str | None]) -> Condition:
        ends = data.get("ends_on")
        return cls(
            name=str(data["name"]),
            severity=Severity.parse(str(data["severity"])),
            action=str(data["action"]),
            medication=str(data.get("medication") or ""),
            ends_on=None if not ends else date.fromisoformat(ends),
        )


@dataclass(frozen=True)
class MedicalRecord:
    """A pupil's decrypted record. ``revision`` changes on every edit (for board status)."""

    pupil_id: str
    conditions: tuple[Condition, ...]
    rooms: frozenset[Room]
    review_on: date | None = None
    notes: str = ""
    revision: str = ""
    updated_at: str = ""

    def current_conditions(self, on: date) -> list[Condition]:
        """Conditions current on ``on``, worst first (then by name)."""
        live = [c for c in self.conditions if c.current(on)]
        return sorted(live, key=lambda c: (-c.severity, c.name.lower()))

    def worst(self, on: date) -> Severity | None:
        live = self.current_conditions(on)
        return live[0].severity if live else None


def _aad(pupil_id: str) -> bytes:
    return b"medical:" + pupil_id.encode("utf-8")


# --- reading and writing records -----------------------------------------------------------


def require_current_pupil(conn: sqlite3.Connection, pupil_id: str) -> None:
    """Raise unless ``pupil_id`` is on the register, on roll and not erased."""
    row = conn.execute(
        "SELECT left_on, erased_at FROM pupils WHERE pupil_id = ?", (pupil_id,)
    ).fetchone()
    if row is None:
        raise UnknownPupil(pupil_id)
    if row["erased_at"] is not None:
        raise MedicalError(f"{pupil_id} was erased on request; no new data may be stored.")
    if row["left_on"] is not None:
        raise MedicalError(
            f"{pupil_id} left on {row['left_on']}; medical records are kept for pupils on "
            "roll only."
        )


def _check_record(record: MedicalRecord) -> None:
    if not record.conditions:
        raise MedicalError(
            f"{record.pupil_id}: a record needs at least one condition; to remove the "
            "record use `photoconsent medical remove`."
        )
    if not record.rooms:
        raise MedicalError(f"{record.pupil_id}: name at least one room for the board.")
    names = [c.name.lower() for c in record.conditions]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise MedicalError(f"{record.pupil_id}: condition listed twice: {', '.join(doubled)}")
    for c in record.conditions:
        if not c.name.strip() or not c.action.strip():
            raise MedicalError(f"{record.pupil_id}: every condition needs a name and an action.")


def store_record(
    conn: sqlite3.Connection, key: bytes, record: MedicalRecord, operator: str
) -> MedicalRecord:
    """Insert or replace one record inside the caller's transaction; return it as stored."""
    _check_record(record)
    payload = {
        "conditions": [c.to_json() for c in record.conditions],
        "notes": record.notes,
    }
    plain = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    revision, now = secrets.token_hex(8), audit.utc_now()
    conn.execute(
        "INSERT INTO medical_records (pupil_id, payload, rooms, review_on, revision,"
        " updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (pupil_id) DO UPDATE SET payload = excluded.payload,"
        " rooms = excluded.rooms, review_on = excluded.review_on,"
        " revision = excluded.revision, updated_at = excluded.updated_at,"
        " updated_by = excluded.updated_by",
        (
            record.pupil_id,
            crypto.encrypt(key, plain, _aad(record.pupil_id)),
            ",".join(sorted(r.value for r in record.rooms)),
            None if record.review_on is None else record.review_on.isoformat(),
            revision,
            now,
            operator,
        ),
    )
    return MedicalRecord(
        record.pupil_id,
        record.conditions,
        record.rooms,
        record.review_on,
        record.notes,
        revision,
        now,
    )


def content_digest(key: bytes, record: MedicalRecord) -> str:
    """A keyed digest of the record's content: tells "changed" from "same" without text."""
    data = json.dumps(
        {
            "conditions": sorted((c.to_json() for c in record.conditions), key=str),
            "rooms": sorted(r.value for r in record.rooms),
            "review_on": None if record.review_on is None else record.review_on.isoformat(),
            "notes": record.notes,
        },
        sort_keys=True,
    )
    return hashlib.blake2b(data.encode("utf-8"), key=key[:32], digest_size=16).hexdigest()


def _row_record(key: bytes, row: sqlite3.Row) -> MedicalRecord:
    data = json.loads(crypto.decrypt(key, row["payload"], _aad(row["pupil_id"])))
    return MedicalRecord(
        pupil_id=row["pupil_id"],
        conditions=tuple(Condition.from_json(c) for c in data["conditions"]),
        rooms=frozenset(Room(r) for r in row["rooms"].split(",") if r),
        review_on=None if row["review_on"] is None else date.fromisoformat(row["review_on"]),
        notes=data.get("notes", ""),
        revision=row["revision"],
        updated_at=row["updated_at"],
    )


def get_record(store: Store, pupil_id: str) -> MedicalRecord | None:
    """The pupil's decrypted record, or None. Raises `TamperedData`, `KeyMissing`."""
    row = store.conn.execute(
        "SELECT * FROM medical_records WHERE pupil_id = ?", (pupil_id,)
    ).fetchone()
    if row is None:
        return None
    return _row_record(require_medical_key(store), row)


def all_records(store: Store, pupil_ids: Iterable[str] | None = None) -> list[MedicalRecord]:
    """Every record (or those of ``pupil_ids``), decrypted, by pupil id."""
    rows = store.conn.execute("SELECT * FROM medical_records ORDER BY pupil_id").fetchall()
    if not rows:
        return []
    wanted = None if pupil_ids is None else set(pupil_ids)
    key = require_medical_key(store)
    return [_row_record(key, r) for r in rows if wanted is None or r["pupil_id"] in wanted]


def revisions(conn: sqlite3.Connection) -> dict[str, str]:
    """``pupil_id -> revision`` of every record (no key needed)."""
    rows = conn.execute("SELECT pupil_id, revision FROM medical_records")
    return {pupil_id: revision for pupil_id, revision in rows}


def set_record(store: Store, record: MedicalRecord, *, operator: str) -> MedicalRecord:
    """Store (add or replace) one pupil's whole record, audited; return it as stored."""
    with store.transaction() as conn:
        require_current_pupil(conn, record.pupil_id)
        key = medical_key(store, create=True)
        assert key is not None
        existed = conn.execute(
            "SELECT 1 FROM medical_records WHERE pupil_id = ?", (record.pupil_id,)
        ).fetchone()
        stored = store_record(conn, key, record, operator)
        audit.append(
            conn,
            store.key,
            action="medical_set",
            operator=operator,
            details=audit_details(stored, "updated" if existed else "added"),
        )
    return stored


def audit_details(record: MedicalRecord, outcome: str) -> dict[str, object]:
    return {
        "pupil_id": record.pupil_id,
        "outcome": outcome,
        "conditions": len(record.conditions),
        "rooms": sorted(r.value for r in record.rooms),
        "review_on": None if record.review_on is None else record.review_on.isoformat(),
        "revision": record.revision,
    }


def update_condition(
    store: Store,
    pupil_id: str,
    condition: Condition,
    *,
    operator: str,
    rooms: frozenset[Room] | None = None,
    review_on: date | None = None,
    notes: str | None = None,
) -> MedicalRecord:
    """Add ``condition`` to the pupil's record, or replace the one of the same name
    (case-insensitive). A new record needs ``rooms``; other fields keep their values."""
    old = get_record(store, pupil_id)
    if old is None and rooms is None:
        raise MedicalError(
            f"{pupil_id} has no medical record yet: give --rooms for the boards to show it on."
        )
    kept = () if old is None else old.conditions
    others = tuple(c for c in kept if c.name.lower() != condition.name.lower())
    record = MedicalRecord(
        pupil_id=pupil_id,
        conditions=(*others, condition),
        rooms=rooms if rooms is not None else old.rooms,  # type: ignore[union-attr]
        review_on=review_on if review_on is not None else (old.review_on if old else None),
        notes=notes if notes is not None else (old.notes if old else ""),
    )
    return set_record(store, record, operator=operator)


def remove(
    store: Store, pupil_id: str, *, operator: str, condition: str | None = None
) -> MedicalRecord | None:
    """Delete the pupil's record, or only ``condition`` (the record goes with its last
    condition). Audited; return the record left, or None. Raises `NoMedicalRecord`."""
    old = get_record(store, pupil_id)
    if old is None:
        raise NoMedicalRecord(f"{pupil_id} has no medical record.")
    if condition is not None:
        left = tuple(c for c in old.conditions if c.name.lower() != condition.strip().lower())
        if len(left) == len(old.conditions):
            raise NoMedicalRecord(
                f"{pupil_id} has no condition {clean_text(condition)[:40]!r}; "
                f"see `photoconsent medical show {pupil_id}`."
            )
        if left:
            return set_record(
                store,
                MedicalRecord(pupil_id, left, old.rooms, old.review_on, old.notes),
                operator=operator,
            )
    with store.transaction() as conn:
        delete_records(conn, store.key, pupil_id, operator, "requested")
    return None


def delete_records(
    conn: sqlite3.Connection, key: bytes, pupil_id: str, operator: str, reason: str
) -> int:
    """Delete the pupil's medical record inside the caller's transaction, audited."""
    count = conn.execute("DELETE FROM medical_records WHERE pupil_id = ?", (pupil_id,)).rowcount
    if count:
        audit.append(
            conn,
            key,
            action="medical_delete",
            operator=operator,
            details={"pupil_id": pupil_id, "deleted": count, "reason": reason},
        )
    return count


def count_records(conn: sqlite3.Connection, pupil_id: str) -> int:
    row = conn.execute("SELECT COUNT(*) FROM medical_records WHERE pupil_id = ?", (pupil_id,))
    return int(row.fetchone()[0])


def summarise(records: Sequence[MedicalRecord], on: date) -> list[dict[str, object]]:
    """Rows without medical text, for `medical list`: id, rooms, counts, review date."""
    return [
        {
            "pupil_id": r.pupil_id,
            "rooms": sorted(x.value for x in r.rooms),
            "conditions": len(r.conditions),
            "current": len(r.current_conditions(on)),
            "review_on": None if r.review_on is None else r.review_on.isoformat(),
            "review_overdue": r.review_on is not None and r.review_on < on,
            "updated_at": r.updated_at,
        }
        for r in records
    ]
