"""The staff-room medical board: choose the pupils, render PDF and HTML, audit the print.

`select_cards` picks every pupil who is on roll on the day (not left, not erased), has a
medical record for the room and at least one current condition, and passes the class and
condition filters; cards are ordered worst severity first, then class and name.
`generate` renders the board (A4 PDF, and/or a self-contained HTML page), writes the files
(mode 0600, never overwriting) and records a ``board_generate`` audit entry in the same
transaction: who, when, room, filters, each pupil's record and photo revision and a
fingerprint of all of it, never medical text. `pipeline.board_status` reads those entries
back to tell which printed boards are out of date.
"""

from __future__ import annotations

import enum
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from consent import audit, board_photos, medical
from consent.board_settings import BoardSettings, settings
from consent.medical import Condition, MedicalError, MedicalRecord, Room, Severity
from consent.store import Store
from pipeline.errors import OutputConflict

CONFIDENTIAL = "CONFIDENTIAL: staff only, do not display where pupils or visitors can see"
_FILTER_AAD = b"board-filter"


class Orientation(enum.Enum):
    """A4 page orientation of the PDF (and of the HTML page when printed)."""

    PORTRAIT = "portrait"
    LANDSCAPE = "landscape"


class BoardError(MedicalError):
    """A board cannot be made as asked (the message says why and how to fix it)."""


@dataclass(frozen=True)
class BoardFilter:
    """Which pupils a board is for: a room, optionally some classes and a condition
    (a case-insensitive part of a condition's name, e.g. ``peanut``)."""

    room: Room
    classes: frozenset[str] = frozenset()
    condition: str | None = None

    def describe(self) -> str:
        parts = [self.room.title]
        if self.classes:
            parts.append("class " + ", ".join(sorted(self.classes)))
        if self.condition:
            parts.append(f"condition: {self.condition}")
        return " · ".join(parts)


@dataclass(frozen=True)
class Card:
    """One pupil's card. ``conditions`` are the current ones, worst first."""

    pupil_id: str
    full_name: str
    class_name: str
    conditions: tuple[Condition, ...]
    photo_jpeg: bytes | None = None
    photo_taken: date | None = None
    photo_stale: bool = False
    record_revision: str = ""
    photo_revision: str | None = None
    person_digest: str = ""

    @property
    def worst(self) -> Severity:
        return self.conditions[0].severity


@dataclass(frozen=True)
class Board:
    """Everything printed on one board."""

    filter: BoardFilter
    cards: tuple[Card, ...]
    generated_on: date
    replace_by: date
    operator: str
    emergency_line: str
    orientation: Orientation = Orientation.PORTRAIT
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class BoardOptions:
    """What to make: the filter, the page orientation, and where to write (PDF and/or HTML)."""

    filter: BoardFilter
    operator: str
    orientation: Orientation = Orientation.PORTRAIT
    pdf: Path | None = None
    html: Path | None = None
    on: date = field(default_factory=date.today)


@dataclass(frozen=True)
class BoardResult:
    """A generated board: the audit entry's sequence number and what was written."""

    seq: int
    board: Board
    files: tuple[Path, ...]
    fingerprint: str


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
    key = medical.medical_key(store)
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
        else medical.encrypt_text(key, flt.condition.strip().lower(), _FILTER_AAD),
    }


def read_filter(key: bytes, details: dict[str, object]) -> BoardFilter:
    """The `BoardFilter` recorded in a ``board_generate`` entry."""
    enc = details.get("condition")
    return BoardFilter(
        room=Room(str(details["room"])),
        classes=frozenset(details.get("classes") or ()),  # type: ignore[arg-type]
        condition=None if not enc else medical.decrypt_text(key, str(enc), _FILTER_AAD),
    )


def _write_private(data: bytes, dest: Path) -> None:
    """Create ``dest`` (mode 0600) with ``data``, never overwriting; nothing left on error."""
    if os.path.lexists(dest):
        raise OutputConflict(f"{dest} exists; choose another file name or remove it")
    tmp = dest.parent / f".{dest.name}.tmp-{secrets.token_hex(6)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, dest)  # fails if dest appeared meanwhile
    except FileExistsError as exc:
        raise OutputConflict(f"{dest} exists; choose another file name or remove it") from exc
    except OSError as exc:
        raise OutputConflict(f"cannot write {dest}: {exc.strerror or exc}") from exc
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def generate(store: Store, options: BoardOptions) -> BoardResult:
    """Render the board, write its files and audit it, all or nothing.

    Raises `BoardError` for an empty board or a card too long for a page, and
    `OutputConflict` if an output file exists (nothing is written then).
    """
    from pipeline.board_html import render_html
    from pipeline.board_pdf import render_pdf

    if options.pdf is None and options.html is None:
        raise BoardError("Say where to write the board: --pdf FILE and/or --html FILE.")
    if not options.operator.strip():
        raise BoardError("A board needs a named staff operator (--operator 'J Smith').")
    board = build_board(store, options)
    outputs: list[tuple[Path, bytes]] = []
    if options.pdf is not None:
        outputs.append((Path(options.pdf), render_pdf(board)))
    if options.html is not None:
        outputs.append((Path(options.html), render_html(board)))
    for path, _ in outputs:
        if os.path.lexists(path):
            raise OutputConflict(f"{path} exists; choose another file name or remove it")
    key = medical.require_medical_key(store)
    flt = filter_key(key, board.filter)
    pupils = printed_pupils(board)
    print_hash = fingerprint({k: v for k, v in flt.items() if k != "condition"}, pupils)
    written: list[Path] = []
    try:
        with store.transaction() as conn:
            entry = audit.append(
                conn,
                store.key,
                action="board_generate",
                operator=options.operator,
                details={
                    **flt,
                    "orientation": board.orientation.value,
                    "generated_on": board.generated_on.isoformat(),
                    "replace_by": board.replace_by.isoformat(),
                    "pupils": pupils,
                    "count": len(pupils),
                    "fingerprint": print_hash,
                    "emergency_line_sha256": hashlib.sha256(
                        board.emergency_line.encode("utf-8")
                    ).hexdigest(),
                    "files": [
                        {"file": p.name, "sha256": hashlib.sha256(data).hexdigest()}
                        for p, data in outputs
                    ],
                    "warnings": len(board.warnings),
                },
            )
            for path, data in outputs:
                _write_private(data, path)
                written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return BoardResult(entry.seq, board, tuple(written), print_hash)
