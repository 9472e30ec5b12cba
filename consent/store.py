"""The data directory: SQLite database, secret key and audit anchor, and the `Store` handle.

A data directory holds::

    registry.sqlite3   pupils, consent records, encrypted face references, audit log
    key-location       the absolute path of the key directory (secret.key, medical.key),
                       kept apart from this folder; without it the keys are in this folder
    audit-head         "seq hash" of the newest audit entry, rewritten after every commit

Which directory, and where its keys go, is `consent.locations`.

Every change goes through ``with store.transaction() as conn:`` which runs
``BEGIN IMMEDIATE``, commits (or rolls back on any exception) and then writes the audit
anchor. Write the audit entry (`consent.audit.append`) inside that block, so the change and
its record commit together.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from consent import audit, crypto, locations
from consent.errors import DataDirError, KeyMismatch

DB_NAME = locations.DB_NAME
HOME_ENV = locations.HOME_ENV
DEFAULT_DIR = locations.DEFAULT_DIR
SYSTEM_OPERATOR = "photoconsent"

# Append-only: each entry is a tuple of statements applied in one transaction, recorded in
# schema_migrations and the audit log. Never edit a released entry; add a new one.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE pupils (
            pupil_id TEXT PRIMARY KEY,
            first_name TEXT NOT NULL,
            last_name TEXT NOT NULL,
            class_name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            left_on TEXT
        )""",
        """CREATE TABLE consent_records (
            id INTEGER PRIMARY KEY,
            pupil_id TEXT NOT NULL REFERENCES pupils(pupil_id),
            website INTEGER NOT NULL CHECK (website IN (0, 1)),
            press INTEGER NOT NULL CHECK (press IN (0, 1)),
            social_media INTEGER NOT NULL CHECK (social_media IN (0, 1)),
            prospectus INTEGER NOT NULL CHECK (prospectus IN (0, 1)),
            internal_display INTEGER NOT NULL CHECK (internal_display IN (0, 1)),
            biometric_consent INTEGER NOT NULL CHECK (biometric_consent IN (0, 1)),
            consent_date TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            recorded_by TEXT NOT NULL,
            source TEXT NOT NULL,
            superseded_at TEXT
        )""",
        # At most one current (not superseded) record per pupil.
        "CREATE UNIQUE INDEX consent_current ON consent_records (pupil_id)"
        " WHERE superseded_at IS NULL",
        """CREATE TABLE face_references (
            id INTEGER PRIMARY KEY,
            pupil_id TEXT NOT NULL REFERENCES pupils(pupil_id),
            encoding BLOB NOT NULL,
            source_sha256 TEXT NOT NULL,
            enrolled_at TEXT NOT NULL,
            enrolled_by TEXT NOT NULL,
            UNIQUE (pupil_id, source_sha256)
        )""",
        """CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            operator TEXT NOT NULL,
            action TEXT NOT NULL,
            details TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            entry_hash TEXT NOT NULL
        )""",
        # Stops our own code from rewriting history; a tamperer can drop these, which is
        # what the hash chain is for.
        """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
           BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
        """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
           BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    ),
    # 2: consent changes, expiry, erasure and retention (issue 7).
    (
        # "Use-by" date of a slip: after it the record counts as withdrawn.
        "ALTER TABLE consent_records ADD COLUMN expires_on TEXT",
        # NULL for a CSV import; 'set', 'withdraw' or 'erasure' for a single change, so a
        # later import of an older spreadsheet cannot silently undo it.
        "ALTER TABLE consent_records ADD COLUMN change_kind TEXT",
        # When an erasure request blanked the pupil's names (`photoconsent forget`).
        "ALTER TABLE pupils ADD COLUMN erased_at TEXT",
        # Retention period per category of leavers' data, in days; NULL keeps it.
        """CREATE TABLE retention (
            category TEXT PRIMARY KEY,
            days INTEGER CHECK (days IS NULL OR days >= 0),
            set_at TEXT NOT NULL,
            set_by TEXT NOT NULL
        )""",
    ),
    # 3: named siblings, held apart by a wider matching margin (issue 4).
    (
        """CREATE TABLE siblings (
            pupil_id TEXT NOT NULL REFERENCES pupils(pupil_id) ON DELETE CASCADE,
            sibling_id TEXT NOT NULL REFERENCES pupils(pupil_id) ON DELETE CASCADE,
            PRIMARY KEY (pupil_id, sibling_id),
            CHECK (pupil_id <> sibling_id)
        )""",
    ),
    # 4: caption name policy per purpose, and API tokens for `photoconsent serve` (issue 5).
    (
        # A purpose without a row uses consent.name_policy.DEFAULTS.
        """CREATE TABLE name_policies (
            purpose TEXT PRIMARY KEY,
            policy TEXT NOT NULL CHECK (policy IN ('full', 'first', 'none')),
            set_at TEXT NOT NULL,
            set_by TEXT NOT NULL
        )""",
        # Only the SHA-256 of a token is kept; the token itself is shown once at creation.
        """CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            token_sha256 TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            revoked_at TEXT,
            revoked_by TEXT
        )""",
        # One live token per name; revoked ones stay for the record.
        "CREATE UNIQUE INDEX api_tokens_live ON api_tokens (name) WHERE revoked_at IS NULL",
    ),
    # 5: medical records, board photos and board settings (issue 6). Medical text and
    # photos are AES-GCM ciphertexts under the medical key (consent/medical/records.py).
    (
        """CREATE TABLE medical_records (
            pupil_id TEXT PRIMARY KEY REFERENCES pupils(pupil_id),
            payload BLOB NOT NULL,
            rooms TEXT NOT NULL,
            review_on TEXT,
            revision TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            updated_by TEXT NOT NULL
        )""",
        """CREATE TABLE board_photos (
            pupil_id TEXT PRIMARY KEY REFERENCES pupils(pupil_id),
            photo BLOB NOT NULL,
            taken_on TEXT NOT NULL,
            source_sha256 TEXT NOT NULL,
            revision TEXT NOT NULL,
            from_reference INTEGER NOT NULL CHECK (from_reference IN (0, 1)),
            added_at TEXT NOT NULL,
            added_by TEXT NOT NULL
        )""",
        """CREATE TABLE board_settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            set_at TEXT NOT NULL,
            set_by TEXT NOT NULL
        )""",
    ),
    # 6: publish's batch journal (publishing/journal.py), one row per finished photo,
    # written with the photo's audit entry. Earlier versions created it on first publish,
    # hence IF NOT EXISTS: a data directory that already has it keeps its rows.
    (
        """CREATE TABLE IF NOT EXISTS publish_journal (
            batch TEXT NOT NULL,
            out_dir TEXT NOT NULL,
            input BLOB NOT NULL,
            input_sha256 TEXT,
            status TEXT NOT NULL CHECK (status IN ('published', 'withheld')),
            output TEXT,
            output_sha256 TEXT,
            temp TEXT,
            result TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (batch, input)
        )""",
        "CREATE INDEX IF NOT EXISTS publish_journal_out ON publish_journal (out_dir)",
    ),
    # 7: the names a pupil goes by (issue 14): preferred (known-as) first name and surname,
    # and the further short forms the school lists ("; "-separated). NULL: none given.
    (
        "ALTER TABLE pupils ADD COLUMN preferred_first_name TEXT",
        "ALTER TABLE pupils ADD COLUMN preferred_last_name TEXT",
        "ALTER TABLE pupils ADD COLUMN other_names TEXT",
    ),
    # 8: recognisers (issue 13). A reference photo keeps its aligned face crop (encrypted,
    # so a new recogniser can re-encode everyone without new photos, and a reviewer can see
    # who the system thinks it is), its quality and the day it was taken; its templates move
    # to face_templates, one per recogniser, each with the recogniser's name and version.
    # Existing encodings are dlib's, and the data directory keeps matching with dlib until
    # `enroll --reencode` moves it (their references have no crop: those pupils need new
    # photos). The old table is rebuilt because its `encoding` column is NOT NULL; the
    # templates are created after the rename, so dropping the old table cascades nothing.
    (
        """CREATE TABLE face_references_v8 (
            id INTEGER PRIMARY KEY,
            pupil_id TEXT NOT NULL REFERENCES pupils(pupil_id),
            source_sha256 TEXT NOT NULL,
            enrolled_at TEXT NOT NULL,
            enrolled_by TEXT NOT NULL,
            crop BLOB,
            quality TEXT,
            taken_on TEXT,
            UNIQUE (pupil_id, source_sha256)
        )""",
        "INSERT INTO face_references_v8 (id, pupil_id, source_sha256, enrolled_at, enrolled_by)"
        " SELECT id, pupil_id, source_sha256, enrolled_at, enrolled_by FROM face_references",
        "CREATE TEMP TABLE legacy_templates AS"
        " SELECT id, encoding, enrolled_at FROM face_references",
        "INSERT OR IGNORE INTO meta (key, value)"
        " SELECT 'recogniser', 'dlib' WHERE EXISTS (SELECT 1 FROM face_references)",
        "DROP TABLE face_references",
        "ALTER TABLE face_references_v8 RENAME TO face_references",
        """CREATE TABLE face_templates (
            reference_id INTEGER NOT NULL REFERENCES face_references(id) ON DELETE CASCADE,
            recogniser TEXT NOT NULL,
            version TEXT NOT NULL,
            template BLOB NOT NULL,
            encoded_at TEXT NOT NULL,
            PRIMARY KEY (reference_id, recogniser)
        )""",
        "INSERT INTO face_templates (reference_id, recogniser, version, template, encoded_at)"
        " SELECT id, 'dlib', 'dlib_face_recognition_resnet_model_v1', encoding, enrolled_at"
        " FROM temp.legacy_templates",
        "DROP TABLE temp.legacy_templates",
    ),
    # 9: the school office app's staff accounts (issue 16, web/accounts.py): a named account
    # per person, so every action is audited under who did it. Only the argon2 hash of a
    # password is kept; failed sign-ins and the lock-out survive a restart of the app.
    (
        """CREATE TABLE staff_accounts (
            username TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('office', 'dpo', 'medical', 'readonly')),
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            failed_sign_ins INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            last_sign_in TEXT,
            disabled_at TEXT
        )""",
    ),
]


@dataclass
class Store:
    """An open data directory: ``conn`` (sqlite3, autocommit mode), ``data_dir``, ``key``.

    Change data only inside `transaction`; it is the one place that anchors the audit log.
    """

    conn: sqlite3.Connection
    data_dir: Path
    key: bytes

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_NAME

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... COMMIT, ROLLBACK on any exception; then anchor the audit."""
        if self.conn.in_transaction:
            raise RuntimeError("Store.transaction() does not nest")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        audit.write_anchor(self.data_dir, self.conn)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def resolve_data_dir(option: str | None) -> Path:
    """``--data-dir`` if given, else ``$PHOTOCONSENT_HOME``, else the per-user config
    file's, else ``./photoconsent-data`` (`consent.locations.find_data_dir` says how)."""
    return locations.find_data_dir(option).path


def _connect(db_path: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit transactions; Store.transaction() issues BEGIN/COMMIT.
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA busy_timeout = 5000")
    # Overwrite deleted rows (names of removed pupils, old ciphertexts) instead of leaving
    # them in free pages.
    conn.execute("PRAGMA secure_delete = ON")
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """The highest applied migration (0 for a new database)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def _migrate(store: Store) -> int:
    """Apply pending migrations, each in its own audited transaction; return how many."""
    current = schema_version(store.conn)
    if current > len(MIGRATIONS):
        raise DataDirError(
            f"{store.db_path} was written by a newer photoconsent (schema {current}, this "
            f"version knows {len(MIGRATIONS)}). Upgrade photoconsent."
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        with store.transaction() as conn:
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, audit.utc_now()),
            )
            audit.append(
                conn,
                store.key,
                action="schema_migrate",
                operator=SYSTEM_OPERATOR,
                details={"version": version},
            )
    return len(MIGRATIONS) - current


def _check_key(store: Store) -> bool:
    """Raise `KeyMismatch` if the key is not this database's; False if none recorded yet."""
    if schema_version(store.conn) == 0:
        return False
    row = store.conn.execute("SELECT value FROM meta WHERE key = 'key_fingerprint'").fetchone()
    if row is None:
        return False
    if row[0] != crypto.key_fingerprint(store.key):
        raise KeyMismatch(
            f"The secret key {crypto.key_path(store.data_dir)} is not the key {store.db_path} "
            f"was created with. Restore the right key file or fix ${crypto.KEY_FILE_ENV}."
        )
    return True


def init_data_dir(data_dir: Path, key_dir: Path | None = None) -> Path:
    """Create the data directory (0700), key file (0600) and database; return the db path.

    A new data directory's keys go into ``key_dir`` (default
    `consent.locations.default_key_dir`, outside the data directory), recorded in its
    ``key-location`` file. Idempotent: on an initialised directory it changes nothing
    (``key_dir`` is then ignored; `consent.keys.move_keys` moves keys). Refuses
    (`KeyMissing`) to make a new key for an existing database, since that would lock away
    its data.
    """
    data_dir = Path(data_dir)
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=0o700)
        data_dir.chmod(0o700)  # mkdir's mode is filtered by the umask
    elif not data_dir.is_dir():
        raise DataDirError(f"{data_dir} exists and is not a directory. Choose another --data-dir.")
    db_path = data_dir / DB_NAME
    if not db_path.exists():
        if (
            locations.recorded_key_dir(data_dir) is None
            and not (data_dir / crypto.KEY_FILE_NAME).exists()
        ):
            chosen = Path(key_dir).absolute() if key_dir else locations.default_key_dir(data_dir)
            chosen.mkdir(mode=0o700, parents=True, exist_ok=True)
            locations.record_key_dir(data_dir, chosen)
        crypto.create_key(data_dir)
        # Created 0600 first: SQLite gives its -wal and -shm files the database's mode.
        os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    key = crypto.load_key(data_dir)
    store = Store(_connect(db_path), data_dir, key)
    try:
        has_fingerprint = _check_key(store)  # before migrating, so a wrong key writes nothing
        _migrate(store)
        if not has_fingerprint:
            with store.transaction() as conn:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('key_fingerprint', ?)",
                    (crypto.key_fingerprint(key),),
                )
                audit.append(
                    conn,
                    key,
                    action="init",
                    operator=SYSTEM_OPERATOR,
                    details={"schema_version": len(MIGRATIONS)},
                )
    finally:
        store.close()
    return db_path


def open_store(data_dir: Path) -> Store:
    """Open an initialised data directory; apply pending migrations.

    Raises `DataDirError` if ``init`` was never run there, `KeyMissing` / `KeyMismatch` if
    the secret key is absent or not this database's.
    """
    data_dir = Path(data_dir)
    db_path = data_dir / DB_NAME
    if not db_path.is_file():
        raise DataDirError(f"No photoconsent data in {data_dir}. Run `photoconsent init` first.")
    key = crypto.load_key(data_dir)
    store = Store(_connect(db_path), data_dir, key)
    try:
        if not _check_key(store):
            raise DataDirError(
                f"{data_dir} is not fully initialised (interrupted init?). "
                "Run `photoconsent init` again."
            )
        _migrate(store)
    except BaseException:
        store.close()
        raise
    return store
