"""Moving a data directory's keys (``secret.key``, ``medical.key``) to another folder.

Safe at every step: each key is copied as a new file (0600, never replacing one), read back
and compared; the data directory's ``key-location`` then points at the new folder and the
store is opened through it (the fingerprints in the database must match); only then are
the old files removed. Interrupted before the switch, the old keys are still in use and
the copies can be deleted; after it, the old files are spare copies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from consent import audit, crypto, files, locations
from consent.errors import DataDirError, FileConflict, KeyMismatch
from consent.medical.key import MEDICAL_KEY_ENV, MEDICAL_KEY_NAME, medical_key
from consent.store import SYSTEM_OPERATOR, open_store


@dataclass(frozen=True)
class MovedKey:
    """One key file moved from ``source`` to ``dest``."""

    name: str
    source: Path
    dest: Path


def move_keys(
    data_dir: Path, to: Path | None = None, operator: str = SYSTEM_OPERATOR
) -> list[MovedKey]:
    """Move the data directory's keys into ``to`` (default: its per-user key directory,
    `consent.locations.default_key_dir`); return what moved (empty if already there).

    Refused (`DataDirError`) for a key named by ``$PHOTOCONSENT_KEY_FILE`` or
    ``$PHOTOCONSENT_MEDICAL_KEY_FILE``: that place is the school's choice, kept as it is.
    """
    data_dir = Path(data_dir).absolute()
    for env in (crypto.KEY_FILE_ENV, MEDICAL_KEY_ENV):
        if os.environ.get(env):
            raise DataDirError(
                f"${env} names where a key is kept; move that file yourself and change "
                f"${env}, or unset it to let photoconsent keep the keys."
            )
    with open_store(data_dir):  # the current keys must open it before anything moves
        pass
    current = locations.key_dir(data_dir).absolute()
    dest_dir = (Path(to) if to else locations.default_key_dir(data_dir)).absolute()
    if dest_dir == current:
        return []
    dest_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    moved = []
    for name in (crypto.KEY_FILE_NAME, MEDICAL_KEY_NAME):
        source = current / name
        if not source.exists():
            continue
        data = source.read_bytes()
        dest = dest_dir / name
        try:
            files.write_new(dest, data, mode=files.PRIVATE)
        except FileConflict:
            if dest.read_bytes() != data:
                raise KeyMismatch(
                    f"{dest} already holds a different key; choose another --to folder."
                ) from None
        if dest.read_bytes() != data:
            raise KeyMismatch(f"The copy {dest} does not read back as {source}; nothing moved.")
        moved.append(MovedKey(name, source, dest))
    locations.record_key_dir(data_dir, dest_dir)
    try:
        with open_store(data_dir) as store:  # checks secret.key's fingerprint
            medical_key(store)  # and the medical key's, if there is one
            with store.transaction() as conn:
                audit.append(
                    conn,
                    store.key,
                    action="keys_move",
                    operator=operator,
                    details={"from": str(current), "to": str(dest_dir)},
                )
    except BaseException:
        locations.record_key_dir(data_dir, current)  # back to the keys that worked
        raise
    for key in moved:
        files.unlink_quietly(key.source)
    return moved
