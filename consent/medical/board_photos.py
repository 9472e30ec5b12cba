"""Board photos: one current photo per pupil, encrypted under the medical key.

A photo on a medical board identifies a child with a health condition, so it is held like
the medical record: AES-256-GCM under the medical key with the associated data
``b"board-photo:" + pupil_id``. Only a JPEG re-encoded from pixels is stored (no metadata
of the original survives), with the day it was taken, the sha256 of the file it came from
and a random ``revision`` that changes when the photo does (for board status).

Reference photos: enrolment keeps only face encodings, never the photos, so no board photo
can be derived from what photoconsent holds. What a school may do is hand the same photo
file to ``board photo add``; that file is recognised by its sha256 among the pupil's
enrolled references and refused unless the board setting ``reference_photos`` is ``yes``
(the school's recorded decision to use it for this second purpose).
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from datetime import date

from consent import audit, crypto
from consent.errors import MedicalError
from consent.medical.board_settings import settings
from consent.medical.key import medical_key
from consent.medical.records import require_current_pupil
from consent.store import Store


class ReferencePhotoNotAllowed(MedicalError):
    """The photo is an enrolment reference and the school has not allowed that use."""


@dataclass(frozen=True)
class BoardPhoto:
    """A decrypted board photo: ``jpeg`` bytes (no metadata) and when it was taken."""

    pupil_id: str
    jpeg: bytes
    taken_on: date
    source_sha256: str
    revision: str
    from_reference: bool


@dataclass(frozen=True)
class PhotoInfo:
    """What `photo_info` tells without the key: when it was taken and its revision."""

    pupil_id: str
    taken_on: date
    revision: str
    from_reference: bool
    added_at: str


def _aad(pupil_id: str) -> bytes:
    return b"board-photo:" + pupil_id.encode("utf-8")


def is_reference_photo(conn: sqlite3.Connection, pupil_id: str, source_sha256: str) -> bool:
    """True if this file was enrolled as one of the pupil's face references."""
    row = conn.execute(
        "SELECT 1 FROM face_references WHERE pupil_id = ? AND source_sha256 = ?",
        (pupil_id, source_sha256),
    ).fetchone()
    return row is not None


def add_photo(
    store: Store,
    pupil_id: str,
    jpeg: bytes,
    *,
    taken_on: date,
    source_sha256: str,
    operator: str,
    date_source: str = "given",
    today: date | None = None,
) -> PhotoInfo:
    """Store ``jpeg`` (pixels re-encoded, no metadata) as the pupil's board photo,
    replacing any earlier one; audited. Raises `ReferencePhotoNotAllowed`."""
    today = today or date.today()
    if taken_on > today:
        raise MedicalError(f"The photo's date {taken_on} is in the future; check --taken.")
    with store.transaction() as conn:
        require_current_pupil(conn, pupil_id)
        from_reference = is_reference_photo(conn, pupil_id, source_sha256)
        if from_reference and not settings(conn).reference_photos:
            raise ReferencePhotoNotAllowed(
                f"This file is {pupil_id}'s face-matching enrolment photo. Using it on the "
                "medical board is a second purpose; record the school's decision first with "
                "`photoconsent board settings set reference_photos yes`, or take a new photo."
            )
        key = medical_key(store, create=True)
        assert key is not None
        revision, now = secrets.token_hex(8), audit.utc_now()
        replaced = conn.execute(
            "SELECT 1 FROM board_photos WHERE pupil_id = ?", (pupil_id,)
        ).fetchone()
        conn.execute(
            "INSERT INTO board_photos (pupil_id, photo, taken_on, source_sha256, revision,"
            " from_reference, added_at, added_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (pupil_id) DO UPDATE SET photo = excluded.photo,"
            " taken_on = excluded.taken_on, source_sha256 = excluded.source_sha256,"
            " revision = excluded.revision, from_reference = excluded.from_reference,"
            " added_at = excluded.added_at, added_by = excluded.added_by",
            (
                pupil_id,
                crypto.encrypt(key, jpeg, _aad(pupil_id)),
                taken_on.isoformat(),
                source_sha256,
                revision,
                int(from_reference),
                now,
                operator,
            ),
        )
        audit.append(
            conn,
            store.key,
            action="board_photo_add",
            operator=operator,
            details={
                "pupil_id": pupil_id,
                "taken_on": taken_on.isoformat(),
                "date_source": date_source,
                "source_sha256": source_sha256,
                "from_reference": from_reference,
                "replaced": replaced is not None,
                "revision": revision,
            },
        )
    return PhotoInfo(pupil_id, taken_on, revision, from_reference, now)


def photo_info(conn: sqlite3.Connection) -> dict[str, PhotoInfo]:
    """``pupil_id -> PhotoInfo`` for every stored board photo (no key needed)."""
    rows = conn.execute(
        "SELECT pupil_id, taken_on, revision, from_reference, added_at FROM board_photos"
    )
    return {r[0]: PhotoInfo(r[0], date.fromisoformat(r[1]), r[2], bool(r[3]), r[4]) for r in rows}


def get_photo(store: Store, pupil_id: str) -> BoardPhoto | None:
    """The decrypted photo, or None. Raises `TamperedData`, `KeyMissing`."""
    row = store.conn.execute("SELECT * FROM board_photos WHERE pupil_id = ?", (pupil_id,))
    found = row.fetchone()
    if found is None:
        return None
    key = medical_key(store)
    if key is None:
        raise MedicalError("Board photos are stored but the medical key fingerprint is not.")
    return BoardPhoto(
        pupil_id,
        crypto.decrypt(key, found["photo"], _aad(pupil_id)),
        date.fromisoformat(found["taken_on"]),
        found["source_sha256"],
        found["revision"],
        bool(found["from_reference"]),
    )


def months_between(earlier: date, later: date) -> int:
    """Whole calendar months from ``earlier`` to ``later`` (0 if later is earlier)."""
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    if later.day < earlier.day:
        months -= 1
    return max(months, 0)


def is_stale(info: PhotoInfo, max_age_months: int, on: date) -> bool:
    """True if the photo is older than ``max_age_months`` on ``on`` (re-take it)."""
    return months_between(info.taken_on, on) >= max_age_months and info.taken_on < on


def delete_photos(
    conn: sqlite3.Connection, key: bytes, pupil_id: str, operator: str, reason: str
) -> int:
    """Delete the pupil's board photo inside the caller's transaction, audited."""
    count = conn.execute("DELETE FROM board_photos WHERE pupil_id = ?", (pupil_id,)).rowcount
    if count:
        audit.append(
            conn,
            key,
            action="board_photo_delete",
            operator=operator,
            details={"pupil_id": pupil_id, "deleted": count, "reason": reason},
        )
    return count


def count_photos(conn: sqlite3.Connection, pupil_id: str) -> int:
    row = conn.execute("SELECT COUNT(*) FROM board_photos WHERE pupil_id = ?", (pupil_id,))
    return int(row.fetchone()[0])


def remove_photo(store: Store, pupil_id: str, *, operator: str) -> int:
    """Delete the pupil's board photo on request; return how many went (0 or 1)."""
    with store.transaction() as conn:
        return delete_photos(conn, store.key, pupil_id, operator, "requested")
