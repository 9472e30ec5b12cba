"""Who is on a board: every pupil on roll on the day with a current condition for the room
that passes the class and condition filters, worst severity first; and the keyed digests
and filter records its audit entry holds (never a name or medical text).
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from board.model import Board, BoardError, BoardFilter, BoardOptions, Card
from consent import audit
from consent.medical import board_photos
from consent.medical import records as medical
from consent.medical.board_settings import BoardSettings, settings
from consent.medical.key import decrypt_text, encrypt_text, medical_key
from consent.medical.records import MedicalRecord, Room
from consent.store import Store

_FILTER_AAD = b"board-filter"


def person_digest(key: bytes, pupil: dict[str, str]) -> str:
    """A keyed digest of the printed name and class: status notices a change without
    the audit log holding a name."""
    text = "\n".join([pupil["first_name"], pupil["last_name"], pupil["class_name"]])
    return hashlib.blake2b(text.encode("utf-8"), key=key[:32], digest_size=12).hexdigest()


def _on_roll(conn_row: dict[str, str | None], on: date) -> bool:
    left = conn_row["left_on"]
    return conn_row["erased_at"] is None and (left is None or date.fromisoformat(left) > on)


def _matches(record: MedicalRecord, flt: BoardFilter, on: date, class_name: str) -> bool:
    if flt.room not in record.rooms:
        return False
    if flt.classes and class_name not in flt.classes:
        return False
    live = record.current_conditions(on)
    if not live:
        return False
    if flt.condition:
        needle = flt.condition.strip().lower()
        return any(needle in c.name.lower() for c in live)
    return True


def select_cards(
    store: Store, flt: BoardFilter, on: date, *, with_photos: bool = True
) -> tuple[list[Card], list[str]]:
    """The cards of a board on day ``on`` and warnings for the office (no medical text):
    missing or old photos, overdue health care plan reviews."""
    conf: BoardSettings = settings(store.conn)
    pupils = {
        r["pupil_id"]: dict(r)
        for r in store.conn.execute(
            "SELECT pupil_id, first_name, last_name, class_name, left_on, erased_at FROM pupils"
        )
    }
    photos = board_photos.photo_info(store.conn)
    records = medical.all_records(store)
    key = medical_key(store)
    cards: list[Card] = []
    warnings: list[str] = []
    for record in records:
        pupil = pupils.get(record.pupil_id)
        if pupil is None or not _on_roll(pupil, on):
            continue
        if not _matches(record, flt, on, str(pupil["class_name"])):
            continue
        info = photos.get(record.pupil_id)
        jpeg = None
        if info is not None and with_photos:
            photo = board_photos.get_photo(store, record.pupil_id)
            jpeg = None if photo is None else photo.jpeg
        stale = info is not None and board_photos.is_stale(info, conf.photo_max_age_months, on)
        if info is None:
            warnings.append(f"{record.pupil_id}: no board photo (`photoconsent board photo add`)")
        elif stale:
            warnings.append(
                f"{record.pupil_id}: photo taken {info.taken_on} is over "
                f"{conf.photo_max_age_months} months old; please re-take it"
            )
        if record.review_on is not None and record.review_on < on:
            warnings.append(
                f"{record.pupil_id}: health care plan review was due {record.review_on}"
            )
        assert key is not None  # records exist, so the key does
        cards.append(
            Card(
                pupil_id=record.pupil_id,
                full_name=f"{pupil['first_name']} {pupil['last_name']}".strip(),
                class_name=str(pupil["class_name"]),
                conditions=tuple(record.current_conditions(on)),
                photo_jpeg=jpeg,
                photo_taken=None if info is None else info.taken_on,
                photo_stale=stale,
                record_revision=record.revision,
                photo_revision=None if info is None else info.revision,
                person_digest=person_digest(key, pupil),  # type: ignore[arg-type]
            )
        )
    cards.sort(key=lambda c: (-c.worst, c.class_name, c.full_name.lower(), c.pupil_id))
    return cards, warnings


def replace_by(cards: list[Card], records_review: list[date | None], on: date, days: int) -> date:
    """The earliest of: ``days`` after ``on``, a future IHCP review, the end of a
    temporary condition, the day a photo passes its maximum age. Never before tomorrow."""
    candidates = [on + timedelta(days=days)]
    candidates += [d for d in records_review if d is not None and d > on]
    candidates += [
        c.ends_on + timedelta(days=1) for card in cards for c in card.conditions if c.ends_on
    ]
    return max(min(candidates), on + timedelta(days=1))


def build_board(store: Store, options: BoardOptions) -> Board:
    """Select and assemble a board (nothing written). Raises `BoardError` if it is empty."""
    cards, warnings = select_cards(store, options.filter, options.on)
    if not cards:
        raise BoardError(
            f"No pupil with a current medical need for {options.filter.describe()}; "
            "nothing to print. Check `photoconsent medical list`."
        )
    conf = settings(store.conn)
    reviews = [r.review_on for r in medical.all_records(store, [c.pupil_id for c in cards])]
    return Board(
        filter=options.filter,
        cards=tuple(cards),
        generated_on=options.on,
        replace_by=replace_by(cards, reviews, options.on, conf.replace_after_days),
        operator=options.operator,
        emergency_line=conf.emergency_line,
        orientation=options.orientation,
        warnings=tuple(warnings),
    )


def fingerprint(flt_key: dict[str, object], cards: list[dict[str, str | None]]) -> str:
    """sha256 of the room/filters and every printed pupil's id and revisions."""
    body = audit.canonical_json({"filter": flt_key, "pupils": cards})
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def printed_pupils(board: Board) -> list[dict[str, str | None]]:
    return [
        {
            "pupil_id": c.pupil_id,
            "record": c.record_revision,
            "photo": c.photo_revision,
            "person": c.person_digest,
        }
        for c in board.cards
    ]


def filter_key(key: bytes, flt: BoardFilter) -> dict[str, object]:
    """The filters as recorded in the audit: the condition text only encrypted."""
    return {
        "room": flt.room.value,
        "classes": sorted(flt.classes),
        "condition": None
        if not flt.condition
        else encrypt_text(key, flt.condition.strip().lower(), _FILTER_AAD),
    }


def read_filter(key: bytes, details: dict[str, object]) -> BoardFilter:
    """The `BoardFilter` recorded in a ``board_generate`` entry."""
    enc = details.get("condition")
    return BoardFilter(
        room=Room(str(details["room"])),
        classes=frozenset(details.get("classes") or ()),  # type: ignore[arg-type]
        condition=None if not enc else decrypt_text(key, str(enc), _FILTER_AAD),
    )
