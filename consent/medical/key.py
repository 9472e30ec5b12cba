"""The medical key: its own 32-byte key for medical records, board photos and board filters.

Medical data is special-category (UK GDPR Art. 9), so it is encrypted under a key of its
own, ``medical.key`` in the data directory's key directory (or the file
``$PHOTOCONSENT_MEDICAL_KEY_FILE`` names), made
(mode 0600, never overwriting) on the first medical write. A school can keep it away from
both the database and the face-encoding key. Its fingerprint is kept in ``meta`` to catch a
swapped file (docs/medical-board.md).
"""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

from consent import crypto, files, locations
from consent.errors import FileConflict, KeyMismatch, KeyMissing, MedicalError, NoMedicalRecord
from consent.store import Store

MEDICAL_KEY_ENV = "PHOTOCONSENT_MEDICAL_KEY_FILE"
MEDICAL_KEY_NAME = "medical.key"
_FINGERPRINT = "medical_key_fingerprint"


def medical_key_path(data_dir: Path) -> Path:
    """``$PHOTOCONSENT_MEDICAL_KEY_FILE`` if set, else ``medical.key`` in the data
    directory's key directory (`consent.locations.key_dir`)."""
    override = os.environ.get(MEDICAL_KEY_ENV)
    if override:
        return Path(override).expanduser()
    return locations.key_dir(Path(data_dir)) / MEDICAL_KEY_NAME


def _read_key_file(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise KeyMissing(
            f"Medical key {path} not found, so the medical records and board photos cannot "
            f"be read. Restore it from the school's backup, or set ${MEDICAL_KEY_ENV} to "
            "where it is kept (docs/medical-board.md)."
        ) from None
    except OSError as exc:
        raise KeyMissing(f"Cannot read medical key {path}: {exc.strerror}.") from None
    if len(key) != crypto.KEY_BYTES:
        raise KeyMissing(
            f"{path} is not a photoconsent key ({len(key)} bytes, expected "
            f"{crypto.KEY_BYTES}). Restore the right medical key from your backup."
        )
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        crypto.log.warning("medical key %s is readable by other users; run chmod 600", path)
    return key


def medical_key(store: Store, *, create: bool = False) -> bytes | None:
    """The medical key, checked against the fingerprint in the database.

    None if no medical data was ever written and ``create`` is False. With ``create`` the
    key file is made (0600, never overwriting) and its fingerprint recorded; call it inside
    the transaction that writes the first record. Raises `KeyMissing` / `KeyMismatch`.
    """
    path = medical_key_path(store.data_dir)
    row = store.conn.execute("SELECT value FROM meta WHERE key = ?", (_FINGERPRINT,)).fetchone()
    if row is None:
        if not create:
            return None
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                files.write_new(path, os.urandom(crypto.KEY_BYTES), mode=files.PRIVATE)
            except FileConflict:
                pass  # made meanwhile (another process): read and check that one
        key = _read_key_file(path)
        if key == store.key:
            raise MedicalError(
                f"{path} is the same key as the main secret key; the medical key must be "
                "a key of its own. Point $PHOTOCONSENT_MEDICAL_KEY_FILE at another file."
            )
        store.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)", (_FINGERPRINT, _fingerprint(key))
        )
        return key
    key = _read_key_file(path)
    if _fingerprint(key) != row[0]:
        raise KeyMismatch(
            f"The medical key {path} is not the key these medical records were written "
            f"with. Restore the right file or fix ${MEDICAL_KEY_ENV}."
        )
    return key


def require_medical_key(store: Store) -> bytes:
    """The medical key; `NoMedicalRecord` if no medical data was ever stored."""
    key = medical_key(store)
    if key is None:
        raise NoMedicalRecord(
            "No medical records are held yet. Add them with `photoconsent medical import`."
        )
    return key


def _fingerprint(key: bytes) -> str:
    return crypto.derive_key(key, b"photoconsent medical key check").hex()


def encrypt_text(key: bytes, text: str, purpose: bytes) -> str:
    """A short text (e.g. a board's condition filter) as base64 ciphertext for the audit."""
    return base64.b64encode(crypto.encrypt(key, text.encode("utf-8"), purpose)).decode("ascii")


def decrypt_text(key: bytes, blob: str, purpose: bytes) -> str:
    """The text `encrypt_text` stored; raises `TamperedData`."""
    return crypto.decrypt(key, base64.b64decode(blob), purpose).decode("utf-8")
