"""Encryption at rest for face encodings, and the keys derived for the audit chain.

Face encodings are special-category biometric data (UK GDPR Art. 9), so they are stored only
as AES-256-GCM ciphertexts. The 32-byte key lives outside the database and, by default,
outside the data directory: ``secret.key`` (mode 0600) in the key directory ``init`` made
(`consent.locations`), or the file named by ``$PHOTOCONSENT_KEY_FILE``. A stolen
``registry.sqlite3`` alone reveals no encoding.

Ciphertext layout: ``nonce (12 random bytes) || AESGCM ciphertext || tag (16 bytes)``. The
associated data (AAD) names what the plaintext is for (``b"encoding:" + pupil_id``), so a
ciphertext copied to another pupil's row fails to decrypt instead of silently matching.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from consent import files, locations
from consent.errors import FileConflict, KeyMissing, TamperedData

KEY_FILE_ENV = "PHOTOCONSENT_KEY_FILE"
KEY_FILE_NAME = "secret.key"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

log = logging.getLogger(__name__)


def key_path(data_dir: Path) -> Path:
    """Where the key is: ``$PHOTOCONSENT_KEY_FILE`` if set, else ``secret.key`` in the data
    directory's key directory (`consent.locations.key_dir`: the one ``init`` recorded, or
    the data directory itself for one made before keys were kept apart)."""
    override = os.environ.get(KEY_FILE_ENV)
    if override:
        return Path(override).expanduser()
    return locations.key_dir(data_dir) / KEY_FILE_NAME


def create_key(data_dir: Path) -> Path:
    """Create a new random key file (mode 0600) unless one exists; return its path.

    An existing file is kept (and checked), so a key shared through ``$PHOTOCONSENT_KEY_FILE``
    is never overwritten.
    """
    path = key_path(data_dir)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            # Appears whole or not at all, never replacing: if two `init`s race, the loser
            # finds the winner's complete key and keeps it.
            files.write_new(path, os.urandom(KEY_BYTES), mode=files.PRIVATE)
        except FileConflict:
            pass
    load_key(data_dir)
    return path


def load_key(data_dir: Path) -> bytes:
    """Read the 32-byte key; raise `KeyMissing` saying where it was looked for."""
    path = key_path(data_dir)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise KeyMissing(
            f"Secret key {path} not found. Without it stored face encodings cannot be read and "
            f"the audit log cannot be checked. Restore the key file from your backup, or set "
            f"${KEY_FILE_ENV} to where it is kept."
        ) from None
    except OSError as exc:
        raise KeyMissing(f"Cannot read secret key {path}: {exc.strerror}.") from None
    if len(key) != KEY_BYTES:
        raise KeyMissing(
            f"{path} is not a photoconsent key (expected {KEY_BYTES} bytes, found {len(key)}). "
            "Restore the right key file from your backup."
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("secret key %s is readable by other users (mode %o); run chmod 600", path, mode)
    return key


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt with AES-256-GCM under a fresh random nonce; ``aad`` binds the row purpose."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Decrypt a blob from `encrypt`; raise `TamperedData` if it or ``aad`` does not match."""
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise TamperedData("Encrypted value is truncated.")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise TamperedData(
            "Encrypted value failed its integrity check: it was edited, copied from another "
            "row, or encrypted under a different key."
        ) from None


def derive_key(key: bytes, info: bytes) -> bytes:
    """A 32-byte subkey of ``key`` for the use ``info`` names (HKDF-SHA256, no salt)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def audit_key(key: bytes) -> bytes:
    """The HMAC key of the audit hash chain (HKDF-SHA256, info ``photoconsent audit chain``)."""
    return derive_key(key, b"photoconsent audit chain")


def key_fingerprint(key: bytes) -> str:
    """A non-secret hex tag of the key, stored in the database to detect a swapped key file."""
    return derive_key(key, b"photoconsent key check").hex()
