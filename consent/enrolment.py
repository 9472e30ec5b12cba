"""Stored face references: encrypted 128-d encodings of pupils with biometric consent.

Only encodings are stored, never photos; each is AES-256-GCM encrypted with the associated
data ``b"encoding:" + pupil_id`` (see `consent.crypto`). The reference photo is remembered
only by its sha256, so a re-run of the same photo is not enrolled twice.

An encoding may be stored and used only while the pupil's *current* consent record has
``biometric_consent`` yes (Protection of Freedoms Act 2012, ss. 26-27). Withdrawing it by
re-importing the CSV deletes the pupil's references (`consent.registry`), and
`load_gallery` skips any pupil without it in any case.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable

import numpy as np

from consent import audit
from consent.crypto import decrypt, encrypt
from consent.errors import NoBiometricConsent, UnknownPupil
from consent.store import Store

ENCODING_SIZE = 128
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _aad(pupil_id: str) -> bytes:
    return b"encoding:" + pupil_id.encode("utf-8")


def _check_encoding(encoding: np.ndarray) -> np.ndarray:
    vec = np.asarray(encoding)
    if vec.shape != (ENCODING_SIZE,) or vec.dtype != np.float64:
        raise ValueError(
            f"a face encoding is a ({ENCODING_SIZE},) float64 array, got {vec.shape} {vec.dtype}"
        )
    if not np.all(np.isfinite(vec)):
        raise ValueError("a face encoding must not contain NaN or infinity")
    return vec.astype("<f8", copy=False)


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


def add_reference(
    store: Store,
    pupil_id: str,
    encoding: np.ndarray,
    *,
    source_sha256: str,
    operator: str,
) -> int:
    """Store one encrypted ``(128,)`` float64 encoding for ``pupil_id``; return its id.

    ``source_sha256`` is the lowercase hex sha256 of the reference photo's bytes; the same
    pupil and photo return the existing id without adding a row. Raises `UnknownPupil`, or
    `NoBiometricConsent` unless the current consent record allows it.
    """
    vec = _check_encoding(encoding)
    if not _SHA256.fullmatch(source_sha256):
        raise ValueError("source_sha256 must be 64 lowercase hex digits")
    with store.transaction() as conn:
        require_biometric_consent(conn, pupil_id)
        existing = conn.execute(
            "SELECT id FROM face_references WHERE pupil_id = ? AND source_sha256 = ?",
            (pupil_id, source_sha256),
        ).fetchone()
        if existing is not None:
            return int(existing[0])
        cursor = conn.execute(
            "INSERT INTO face_references"
            " (pupil_id, encoding, source_sha256, enrolled_at, enrolled_by)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                pupil_id,
                encrypt(store.key, vec.tobytes(), _aad(pupil_id)),
                source_sha256,
                audit.utc_now(),
                operator,
            ),
        )
        reference_id = int(cursor.lastrowid or 0)
        audit.append(
            conn,
            store.key,
            action="reference_add",
            operator=operator,
            details={
                "pupil_id": pupil_id,
                "reference_id": reference_id,
                "source_sha256": source_sha256,
            },
        )
    return reference_id


def enrol(
    store: Store,
    pupil_id: str,
    encode: Callable[[], tuple[np.ndarray, str]],
    *,
    operator: str,
) -> int:
    """Enrol one reference of ``pupil_id`` made by ``encode``; return the stored reference's ID.

    ``encode`` returns ``(encoding, source_sha256)`` (``pipeline.references`` makes one from
    a photo). Biometric consent is checked before it is called, because computing an
    encoding is itself processing biometric data (Protection of Freedoms Act 2012 s.26).
    """
    require_biometric_consent(store.conn, pupil_id)
    encoding, source_sha256 = encode()
    return add_reference(store, pupil_id, encoding, source_sha256=source_sha256, operator=operator)


def load_gallery(store: Store, pupil_ids: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Decrypt references: ``pupil_id -> (n, 128) float64``, n >= 1, sorted by pupil id.

    Only pupils whose current consent record has biometric consent are returned; ids in
    ``pupil_ids`` without references or consent are left out (so they are never matched,
    and are treated as unknown faces). Raises `TamperedData` if a ciphertext was edited or
    moved to another pupil's row.
    """
    wanted = None if pupil_ids is None else set(pupil_ids)
    rows = store.conn.execute(
        "SELECT f.pupil_id, f.encoding FROM face_references AS f"
        " JOIN consent_records AS c"
        "   ON c.pupil_id = f.pupil_id AND c.superseded_at IS NULL AND c.biometric_consent = 1"
        " ORDER BY f.pupil_id, f.id"
    ).fetchall()
    vectors: dict[str, list[np.ndarray]] = {}
    for pupil_id, blob in rows:
        if wanted is not None and pupil_id not in wanted:
            continue
        plain = decrypt(store.key, blob, _aad(pupil_id))
        vectors.setdefault(pupil_id, []).append(np.frombuffer(plain, dtype="<f8"))
    return {pid: np.stack(vecs).astype(np.float64) for pid, vecs in vectors.items()}


def reference_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """``pupil_id -> number of stored references``, for pupils with at least one."""
    rows = conn.execute(
        "SELECT pupil_id, COUNT(*) FROM face_references GROUP BY pupil_id ORDER BY pupil_id"
    )
    return {pupil_id: count for pupil_id, count in rows}


def purge_references(
    conn: sqlite3.Connection, key: bytes, pupil_id: str, *, operator: str, reason: str
) -> int:
    """Delete a pupil's references inside the caller's transaction, audited; return count."""
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
