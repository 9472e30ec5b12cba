"""Stored face references: per reference photo, its encrypted face crop and one encrypted
template per recogniser, of pupils with biometric consent.

A *reference* is one enrolled photo of a pupil. What is kept of it (issue 13):

- the **face crop**: the face and a margin around it, cut from the upright photo and shrunk
  to at most 256 px (PNG, AES-256-GCM encrypted with the associated data ``b"crop:" +
  pupil_id``). The rest of the photo is never stored. The crop lets a new recogniser
  re-encode everyone (``enroll --reencode``) without asking parents for new photos, and lets
  a reviewer see who the system thinks a face is. References enrolled before version 8 of
  the data directory have no crop.
- its **templates**: the numbers a recogniser computes from the face (``face_templates``),
  each recorded with the recogniser's name and version and encrypted with ``b"encoding:" +
  pupil_id`` (dlib, as before) or ``b"encoding:" + recogniser + b":" + pupil_id``. Templates
  of different recognisers never compare.
- its quality (size, sharpness, pose) and the day the photo was taken, when known.
- the sha256 of the photo, so a re-run of the same photo is not enrolled twice.

Crops and templates are biometric data (UK GDPR art. 9). They may be stored and used only
while the pupil's *current* consent record has ``biometric_consent`` yes (Protection of
Freedoms Act 2012, ss. 26-27). Withdrawing it deletes the pupil's references (crops and
templates together, `consent.registry`), and `load_gallery` skips any pupil without it in
any case. Subject access copies include the crops (`consent.export`); transfers never.

The data directory matches with one recogniser, recorded in ``meta`` (`recogniser_setting`):
the first template stored fixes it, and only `set_recogniser` (``enroll --reencode``) moves it.
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from consent import audit
from consent.crypto import decrypt, encrypt
from consent.errors import NoBiometricConsent, UnknownPupil
from consent.store import Store

# The recogniser every template made before recognisers existed came from (migration 8).
LEGACY_RECOGNISER = "dlib"
LEGACY_VERSION = "dlib_face_recognition_resnet_model_v1"
ENCODING_SIZE = 128
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# A reference older than this is flagged: children's faces change quickly (issue 13 asks
# for references from the current school year).
STALE_AFTER_DAYS = 365
# How many usable references per pupil enrolment asks for: with three, the agreement rule
# has something to agree on, and genuine keeps rise (docs/matching.md).
WANTED_REFERENCES = 3


@dataclass(frozen=True)
class NewReference:
    """What enrolment stores for one reference photo (``pipeline.references`` makes it).

    ``encoding`` is the template of ``recogniser`` (``version``); ``crop_png`` the face crop
    as PNG bytes (None: not kept); ``quality`` plain numbers and words, JSON-serialisable;
    ``taken_on`` the day the photo was taken, when the file says.
    """

    encoding: np.ndarray
    source_sha256: str
    recogniser: str = LEGACY_RECOGNISER
    version: str = LEGACY_VERSION
    crop_png: bytes | None = None
    quality: Mapping[str, Any] = field(default_factory=dict)
    taken_on: date | None = None


@dataclass(frozen=True)
class ReferenceCrop:
    """One reference's decrypted face crop: ``pixels`` (height, width, 3) uint8 RGB;
    ``face`` the face box inside it as ``[x, y, w, h]`` px (None when not recorded)."""

    reference_id: int
    pixels: np.ndarray
    enrolled_at: str
    taken_on: str | None
    face: list[float] | None


@dataclass(frozen=True)
class ReferenceInfo:
    """One reference as enrolment reports it (no biometric data)."""

    reference_id: int
    enrolled_at: str
    taken_on: str | None
    has_crop: bool
    recognisers: tuple[str, ...]
    quality: Mapping[str, Any]

    def age_days(self, today: date) -> int | None:
        when = self.taken_on or self.enrolled_at[:10]
        try:
            return (today - date.fromisoformat(when)).days
        except ValueError:
            return None

    def stale(self, today: date) -> bool:
        age = self.age_days(today)
        return age is not None and age > STALE_AFTER_DAYS


@dataclass(frozen=True)
class PupilReferences:
    """A pupil's references against the data directory's recogniser."""

    pupil_id: str
    references: tuple[ReferenceInfo, ...]
    recogniser: str

    @property
    def matching(self) -> int:
        """References with a template of the data directory's recogniser (used in matching)."""
        return sum(self.recogniser in r.recognisers for r in self.references)

    @property
    def reencodable(self) -> int:
        """References without that template but with a crop: ``enroll --reencode`` fixes them."""
        return sum(self.recogniser not in r.recognisers and r.has_crop for r in self.references)

    def current(self, today: date) -> int:
        """Usable (matching) references taken within the last year."""
        return sum(self.recogniser in r.recognisers and not r.stale(today) for r in self.references)

    def status(self, today: date) -> str:
        """In plain words: what, if anything, this pupil's references need."""
        # Re-encoding first: it needs no new photo, and a template of an older version of
        # the recogniser (pipeline.recognisers: SFace's landmark box) is not the one the
        # thresholds were set on.
        if self.reencodable:
            return "needs re-encoding (run: photoconsent enroll --reencode)"
        if self.matching == 0:
            return "needs re-enrolling (new reference photos)"
        current = self.current(today)
        if current < WANTED_REFERENCES:
            stale = self.matching - current
            more = WANTED_REFERENCES - current
            why = f"; {stale} older than a year" if stale else ""
            return f"add {more} more recent photo{'s' if more != 1 else ''}{why}"
        return "ok"


def _aad(pupil_id: str, recogniser: str = LEGACY_RECOGNISER) -> bytes:
    if recogniser == LEGACY_RECOGNISER:
        return b"encoding:" + pupil_id.encode("utf-8")
    return b"encoding:" + recogniser.encode("ascii") + b":" + pupil_id.encode("utf-8")


def _crop_aad(pupil_id: str) -> bytes:
    return b"crop:" + pupil_id.encode("utf-8")


def _check_encoding(encoding: np.ndarray, size: int | None = None) -> np.ndarray:
    vec = np.asarray(encoding)
    if vec.ndim != 1 or vec.dtype != np.float64 or (size is not None and vec.shape != (size,)):
        raise ValueError(
            f"a face encoding is a ({size or 'n'},) float64 array, got {vec.shape} {vec.dtype}"
        )
    if not 16 <= vec.shape[0] <= 4096:
        raise ValueError(f"a face encoding has 16 to 4096 numbers, got {vec.shape[0]}")
    if not np.all(np.isfinite(vec)):
        raise ValueError("a face encoding must not contain NaN or infinity")
    return vec.astype("<f8", copy=False)


def _check_name(recogniser: str) -> str:
    if not _NAME.fullmatch(recogniser):
        raise ValueError(f"not a recogniser name: {recogniser!r}")
    return recogniser


def require_biometric_consent(conn: sqlite3.Connection, pupil_id: str) -> None:
    """Raise `UnknownPupil` or `NoBiometricConsent` unless ``pupil_id`` may be enrolled.

    Call it before computing an encoding: computing one is already biometric processing.
    """
    if conn.execute("SELECT 1 FROM pupils WHERE pupil_id = ?", (pupil_id,)).fetchone() is None:
        raise UnknownPupil(pupil_id)
    row = conn.execute(
        "SELECT biometric_consent FROM consent_records"
        " WHERE pupil_id = ? AND superseded_at IS NULL",
        (pupil_id,),
    ).fetchone()
    if row is None or not row[0]:
        raise NoBiometricConsent(pupil_id)


def recogniser_setting(conn: sqlite3.Connection) -> str | None:
    """The recogniser this data directory matches with, or None before any enrolment
    (then the code's default applies: ``pipeline.recognisers.DEFAULT_RECOGNISER``)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'recogniser'").fetchone()
    return None if row is None else str(row[0])


def set_recogniser(store: Store, recogniser: str, *, operator: str) -> None:
    """Match with ``recogniser`` from now on (audited). Pupils without its templates are
    then not recognised (blurred) until re-encoded or re-enrolled."""
    _check_name(recogniser)
    with store.transaction() as conn:
        before = recogniser_setting(conn)
        if before == recogniser:
            return
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('recogniser', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (recogniser,),
        )
        audit.append(
            conn,
            store.key,
            action="recogniser_set",
            operator=operator,
            details={"recogniser": recogniser, "was": before},
        )


def add_reference(
    store: Store,
    pupil_id: str,
    encoding: np.ndarray | NewReference,
    *,
    source_sha256: str | None = None,
    operator: str,
) -> int:
    """Store one reference of ``pupil_id`` (encrypted crop and template); return its id.

    ``encoding`` is a `NewReference`, or a bare ``(128,)`` float64 dlib encoding with
    ``source_sha256`` (the lowercase hex sha256 of the photo's bytes). The same pupil and
    photo return the existing id; a template of another recogniser is added to it. Raises
    `UnknownPupil`, or `NoBiometricConsent` unless the current consent record allows it.
    """
    if isinstance(encoding, NewReference):
        new = encoding
    else:
        if source_sha256 is None:
            raise ValueError("source_sha256 is required with a bare encoding")
        new = NewReference(_check_encoding(encoding, ENCODING_SIZE), source_sha256)
    vec = _check_encoding(new.encoding)
    _check_name(new.recogniser)
    if not _SHA256.fullmatch(new.source_sha256):
        raise ValueError("source_sha256 must be 64 lowercase hex digits")
    now = audit.utc_now()
    with store.transaction() as conn:
        require_biometric_consent(conn, pupil_id)
        existing = conn.execute(
            "SELECT id FROM face_references WHERE pupil_id = ? AND source_sha256 = ?",
            (pupil_id, new.source_sha256),
        ).fetchone()
        if existing is not None:
            reference_id = int(existing[0])
            added = _store_template(conn, store.key, pupil_id, reference_id, new, vec, now)
            if new.crop_png is not None:
                conn.execute(
                    "UPDATE face_references SET crop = ? WHERE id = ? AND crop IS NULL",
                    (encrypt(store.key, new.crop_png, _crop_aad(pupil_id)), reference_id),
                )
            if added:
                _audit_template(conn, store.key, operator, pupil_id, reference_id, new)
            return reference_id
        cursor = conn.execute(
            "INSERT INTO face_references"
            " (pupil_id, source_sha256, enrolled_at, enrolled_by, crop, quality, taken_on)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                pupil_id,
                new.source_sha256,
                now,
                operator,
                None
                if new.crop_png is None
                else encrypt(store.key, new.crop_png, _crop_aad(pupil_id)),
                json.dumps(dict(new.quality), sort_keys=True) if new.quality else None,
                None if new.taken_on is None else new.taken_on.isoformat(),
            ),
        )
        reference_id = int(cursor.lastrowid or 0)
        _store_template(conn, store.key, pupil_id, reference_id, new, vec, now)
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('recogniser', ?)", (new.recogniser,)
        )
        audit.append(
            conn,
            store.key,
            action="reference_add",
            operator=operator,
            details={
                "pupil_id": pupil_id,
                "reference_id": reference_id,
                "source_sha256": new.source_sha256,
                "recogniser": new.recogniser,
                "recogniser_version": new.version,
                "crop_kept": new.crop_png is not None,
            },
        )
    return reference_id


def _store_template(
    conn: sqlite3.Connection,
    key: bytes,
    pupil_id: str,
    reference_id: int,
    new: NewReference,
    vec: np.ndarray,
    now: str,
) -> bool:
    """Insert or replace the reference's template of ``new.recogniser``; False if the same
    recogniser version already made one (nothing changes)."""
    row = conn.execute(
        "SELECT version FROM face_templates WHERE reference_id = ? AND recogniser = ?",
        (reference_id, new.recogniser),
    ).fetchone()
    if row is not None and row[0] == new.version:
        return False
    conn.execute(
        "INSERT INTO face_templates (reference_id, recogniser, version, template, encoded_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (reference_id, recogniser) DO UPDATE SET"
        " version = excluded.version, template = excluded.template,"
        " encoded_at = excluded.encoded_at",
        (
            reference_id,
            new.recogniser,
            new.version,
            encrypt(key, vec.tobytes(), _aad(pupil_id, new.recogniser)),
            now,
        ),
    )
    return True


def _audit_template(
    conn: sqlite3.Connection,
    key: bytes,
    operator: str,
    pupil_id: str,
    reference_id: int,
    new: NewReference,
) -> None:
    audit.append(
        conn,
        key,
        action="reference_encode",
        operator=operator,
        details={
            "pupil_id": pupil_id,
            "reference_id": reference_id,
            "recogniser": new.recogniser,
            "recogniser_version": new.version,
        },
    )


def add_template(
    store: Store,
    reference_id: int,
    encoding: np.ndarray,
    *,
    recogniser: str,
    version: str,
    operator: str,
) -> bool:
    """Store ``recogniser``'s template for an existing reference (re-encoding from its crop);
    False when that version's template is already there. Consent is checked again."""
    vec = _check_encoding(encoding)
    _check_name(recogniser)
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT pupil_id, source_sha256 FROM face_references WHERE id = ?", (reference_id,)
        ).fetchone()
        if row is None:
            raise ValueError(f"no reference {reference_id}")
        pupil_id = str(row[0])
        require_biometric_consent(conn, pupil_id)
        new = NewReference(vec, str(row[1]), recogniser, version)
        if not _store_template(conn, store.key, pupil_id, reference_id, new, vec, audit.utc_now()):
            return False
        _audit_template(conn, store.key, operator, pupil_id, reference_id, new)
    return True


def enrol(
    store: Store,
    pupil_id: str,
    encode: Callable[[], NewReference | tuple[np.ndarray, str]],
    *,
    operator: str,
) -> int:
    """Enrol one reference of ``pupil_id`` made by ``encode``; return the stored reference's ID.

    ``encode`` returns a `NewReference` (``pipeline.references`` makes one from a photo) or
    ``(dlib encoding, source_sha256)``. Biometric consent is checked before it is called,
    because computing an encoding is itself processing biometric data (Protection of
    Freedoms Act 2012 s.26).
    """
    require_biometric_consent(store.conn, pupil_id)
    made = encode()
    if isinstance(made, NewReference):
        return add_reference(store, pupil_id, made, operator=operator)
    encoding, source_sha256 = made
    return add_reference(store, pupil_id, encoding, source_sha256=source_sha256, operator=operator)


def load_gallery(
    store: Store,
    pupil_ids: Iterable[str] | None = None,
    *,
    recogniser: str = LEGACY_RECOGNISER,
) -> dict[str, np.ndarray]:
    """Decrypt ``recogniser``'s templates: ``pupil_id -> (n, dim) float64``, n >= 1, sorted
    by pupil id.

    Only pupils whose current consent record has biometric consent are returned; ids in
    ``pupil_ids`` without such templates or consent are left out (so they are never
    matched, and are treated as unknown faces). Raises `TamperedData` if a ciphertext was
    edited or moved to another pupil's or recogniser's row.
    """
    wanted = None if pupil_ids is None else set(pupil_ids)
    rows = store.conn.execute(
        "SELECT f.pupil_id, t.template FROM face_references AS f"
        " JOIN face_templates AS t ON t.reference_id = f.id AND t.recogniser = ?"
        " JOIN consent_records AS c"
        "   ON c.pupil_id = f.pupil_id AND c.superseded_at IS NULL AND c.biometric_consent = 1"
        " ORDER BY f.pupil_id, f.id",
        (recogniser,),
    ).fetchall()
    vectors: dict[str, list[np.ndarray]] = {}
    for pupil_id, blob in rows:
        if wanted is not None and pupil_id not in wanted:
            continue
        plain = decrypt(store.key, blob, _aad(pupil_id, recogniser))
        vectors.setdefault(pupil_id, []).append(np.frombuffer(plain, dtype="<f8"))
    return {pid: np.stack(vecs).astype(np.float64) for pid, vecs in vectors.items()}


def reference_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """``pupil_id -> number of stored references``, for pupils with at least one."""
    rows = conn.execute(
        "SELECT pupil_id, COUNT(*) FROM face_references GROUP BY pupil_id ORDER BY pupil_id"
    )
    return {pupil_id: count for pupil_id, count in rows}


def pupil_references(
    conn: sqlite3.Connection,
    recogniser: str,
    pupil_ids: Iterable[str] | None = None,
    *,
    version: str | None = None,
) -> dict[str, PupilReferences]:
    """Every enrolled pupil's references (no biometric data decrypted), by pupil id.

    With ``version`` (the code's version of ``recogniser``), a template of ``recogniser``
    made by another version does not count: the reference then needs re-encoding (its
    crop is kept) or new photos. Matching still uses such templates (`load_gallery`)."""
    wanted = None if pupil_ids is None else set(pupil_ids)
    rows = conn.execute(
        "SELECT f.id, f.pupil_id, f.enrolled_at, f.taken_on, f.crop IS NOT NULL, f.quality,"
        " (SELECT group_concat(t.recogniser, ' ') FROM face_templates AS t"
        "  WHERE t.reference_id = f.id"
        "  AND (? IS NULL OR t.recogniser != ? OR t.version = ?))"
        " FROM face_references AS f ORDER BY f.pupil_id, f.id",
        (version, recogniser, version),
    ).fetchall()
    refs: dict[str, list[ReferenceInfo]] = {}
    for ref_id, pupil_id, enrolled_at, taken_on, has_crop, quality, names in rows:
        if wanted is not None and pupil_id not in wanted:
            continue
        refs.setdefault(pupil_id, []).append(
            ReferenceInfo(
                reference_id=int(ref_id),
                enrolled_at=str(enrolled_at),
                taken_on=taken_on,
                has_crop=bool(has_crop),
                recognisers=tuple(sorted((names or "").split())),
                quality=json.loads(quality) if quality else {},
            )
        )
    return {pid: PupilReferences(pid, tuple(r), recogniser) for pid, r in refs.items()}


def reference_crops(store: Store, pupil_id: str) -> list[ReferenceCrop]:
    """The pupil's decrypted reference face crops, oldest first (references without a crop,
    enrolled before data directory version 8, are left out). Only while the pupil has
    biometric consent: otherwise `NoBiometricConsent` (their crops should not exist)."""
    from PIL import Image

    require_biometric_consent(store.conn, pupil_id)
    rows = store.conn.execute(
        "SELECT id, crop, enrolled_at, taken_on, quality FROM face_references"
        " WHERE pupil_id = ? AND crop IS NOT NULL ORDER BY id",
        (pupil_id,),
    ).fetchall()
    out = []
    for ref_id, blob, enrolled_at, taken_on, quality in rows:
        png = decrypt(store.key, blob, _crop_aad(pupil_id))
        with Image.open(io.BytesIO(png)) as im:
            pixels = np.asarray(im.convert("RGB"), np.uint8).copy()
        face = (json.loads(quality) if quality else {}).get("crop_face")
        out.append(ReferenceCrop(int(ref_id), pixels, str(enrolled_at), taken_on, face))
    return out


def reference_crop_png(store: Store, pupil_id: str, reference_id: int) -> bytes:
    """One reference crop's PNG bytes, decrypted (for a subject access copy)."""
    row = store.conn.execute(
        "SELECT crop FROM face_references WHERE id = ? AND pupil_id = ? AND crop IS NOT NULL",
        (reference_id, pupil_id),
    ).fetchone()
    if row is None:
        raise ValueError(f"no face crop for reference {reference_id} of {pupil_id}")
    return decrypt(store.key, row[0], _crop_aad(pupil_id))


def purge_references(
    conn: sqlite3.Connection, key: bytes, pupil_id: str, *, operator: str, reason: str
) -> int:
    """Delete a pupil's references (crops and every template) inside the caller's
    transaction, audited; return how many references went."""
    conn.execute(
        "DELETE FROM face_templates WHERE reference_id IN"
        " (SELECT id FROM face_references WHERE pupil_id = ?)",
        (pupil_id,),
    )
    count = conn.execute("DELETE FROM face_references WHERE pupil_id = ?", (pupil_id,)).rowcount
    if count:
        audit.append(
            conn,
            key,
            action="reference_delete",
            operator=operator,
            details={"pupil_id": pupil_id, "deleted": count, "reason": reason},
        )
    return count


def delete_references(store: Store, pupil_id: str, *, operator: str) -> int:
    """Delete every stored reference of ``pupil_id`` (audited); return how many went.

    Raises `UnknownPupil` for an id not in the registry.
    """
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM pupils WHERE pupil_id = ?", (pupil_id,)).fetchone() is None:
            raise UnknownPupil(pupil_id)
        return purge_references(conn, store.key, pupil_id, operator=operator, reason="requested")
