from __future__ import annotations

import errno
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from consent import audit, crypto, store
from consent.errors import DataDirError, FileWriteError, KeyMismatch, KeyMissing
from consent.store import MIGRATIONS, Store, init_data_dir, open_store, resolve_data_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def snapshot(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(data_dir.iterdir())}


def test_init_creates_private_dir_key_and_db(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    db_path = init_data_dir(data_dir)
    assert db_path == data_dir / "registry.sqlite3"
    assert mode(data_dir) == 0o700
    assert mode(crypto.key_path(data_dir)) == 0o600
    assert mode(db_path) == 0o600
    assert len(crypto.key_path(data_dir).read_bytes()) == 32


def test_init_is_idempotent(data_dir: Path) -> None:
    before = snapshot(data_dir)
    assert init_data_dir(data_dir) == data_dir / "registry.sqlite3"
    assert snapshot(data_dir) == before


def test_init_records_migration_and_init_in_audit(store: Store) -> None:
    actions = [e.action for e in audit.entries(store)]
    migrations = len(MIGRATIONS)
    assert actions == ["schema_migrate"] * migrations + ["init"]
    versions = [row["version"] for row in store.conn.execute("SELECT * FROM schema_migrations")]
    assert versions == list(range(1, migrations + 1))


def test_open_store_on_missing_dir_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match=r"No photoconsent data in .*photoconsent init"):
        open_store(tmp_path / "nowhere")


def test_open_store_on_plain_dir_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="photoconsent init"):
        open_store(tmp_path)


def test_init_on_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(DataDirError, match="not a directory"):
        init_data_dir(target)


@pytest.mark.parametrize(
    ("pragma", "expected"),
    [("foreign_keys", 1), ("journal_mode", "wal"), ("busy_timeout", 5000), ("secure_delete", 1)],
)
def test_open_store_sets_pragmas(store: Store, pragma: str, expected: object) -> None:
    assert store.conn.execute(f"PRAGMA {pragma}").fetchone()[0] == expected


def test_rows_are_sqlite_rows(store: Store) -> None:
    row = store.conn.execute("SELECT 1 AS one").fetchone()
    assert isinstance(row, sqlite3.Row) and row["one"] == 1


@pytest.mark.parametrize(
    ("option", "env", "expected"),
    [
        ("/opt/pc", "/srv/home", Path("/opt/pc")),
        (None, "/srv/home", Path("/srv/home")),
        ("", "/srv/home", Path("/srv/home")),
        (None, None, Path.cwd() / "photoconsent-data"),
    ],
)
def test_resolve_data_dir(
    monkeypatch: pytest.MonkeyPatch, option: str | None, env: str | None, expected: Path
) -> None:
    if env is not None:
        monkeypatch.setenv("PHOTOCONSENT_HOME", env)
    assert resolve_data_dir(option) == expected


def test_missing_key_is_reported_with_its_path(data_dir: Path) -> None:
    crypto.key_path(data_dir).unlink()
    with pytest.raises(KeyMissing, match=r"secret\.key not found"):
        open_store(data_dir)


def test_init_refuses_to_replace_a_lost_key(data_dir: Path) -> None:
    crypto.key_path(data_dir).unlink()
    with pytest.raises(KeyMissing):
        init_data_dir(data_dir)
    assert not crypto.key_path(data_dir).exists()


def test_a_failed_key_write_leaves_no_key_so_init_can_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_write(*args: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    data_dir = tmp_path / "data"
    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(FileWriteError, match="Input/output error"):
        init_data_dir(data_dir)
    monkeypatch.undo()
    assert not crypto.key_path(data_dir).exists()  # no truncated key to lock init
    assert not list(crypto.key_path(data_dir).parent.iterdir())
    init_data_dir(data_dir)
    assert len(crypto.key_path(data_dir).read_bytes()) == 32


def test_a_key_made_meanwhile_by_another_init_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, winner = tmp_path / "data", os.urandom(32)
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        Path(dst).write_bytes(winner)  # the other init got there first
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    init_data_dir(data_dir)
    monkeypatch.undo()
    assert crypto.key_path(data_dir).read_bytes() == winner
    assert not [p for p in crypto.key_path(data_dir).parent.iterdir() if ".tmp-" in p.name]
    with open_store(data_dir) as opened:
        assert opened.key == winner


def test_wrong_key_is_refused(data_dir: Path) -> None:
    crypto.key_path(data_dir).write_bytes(os.urandom(32))
    with pytest.raises(KeyMismatch, match="not the key"):
        open_store(data_dir)


def test_short_key_file_is_refused(data_dir: Path) -> None:
    crypto.key_path(data_dir).write_bytes(b"short")
    with pytest.raises(KeyMissing, match="expected 32 bytes, found 5"):
        open_store(data_dir)


def test_key_file_env_puts_key_outside_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "usb" / "photoconsent.key"
    monkeypatch.setenv("PHOTOCONSENT_KEY_FILE", str(key_file))
    data_dir = tmp_path / "data"
    init_data_dir(data_dir)
    assert mode(key_file) == 0o600
    assert not (data_dir / "secret.key").exists()
    with open_store(data_dir) as opened:
        assert opened.key == key_file.read_bytes()
    monkeypatch.delenv("PHOTOCONSENT_KEY_FILE")
    with pytest.raises(KeyMissing, match="PHOTOCONSENT_KEY_FILE"):
        open_store(data_dir)


def test_transaction_rolls_back_on_error(store: Store) -> None:
    before = audit.head(store.conn)
    with pytest.raises(ZeroDivisionError), store.transaction() as conn:
        audit.append(conn, store.key, action="test", operator="t", details={})
        _ = 1 / 0
    assert audit.head(store.conn) == before
    assert not store.conn.in_transaction


def test_transaction_anchors_after_commit(store: Store) -> None:
    with store.transaction() as conn:
        entry = audit.append(conn, store.key, action="test", operator="t", details={})
    assert audit.read_anchor(store.data_dir) == (entry.seq, entry.entry_hash)


def test_transactions_do_not_nest(store: Store) -> None:
    with store.transaction(), pytest.raises(RuntimeError, match="nest"):
        with store.transaction():
            pass


def test_newer_schema_is_refused(data_dir: Path) -> None:
    with sqlite3.connect(data_dir / "registry.sqlite3") as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'later')")
    conn.close()
    with pytest.raises(DataDirError, match="newer photoconsent"):
        open_store(data_dir)


def test_pending_migration_is_applied_on_open(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = ("CREATE TABLE extra (x INTEGER)",)
    expected = len(store.MIGRATIONS) + 1
    monkeypatch.setattr(store, "MIGRATIONS", [*store.MIGRATIONS, extra])
    with open_store(data_dir) as opened:
        assert store.schema_version(opened.conn) == expected
        assert audit.entries(opened)[-1].details == {"version": expected}
        assert audit.verify(opened).ok


def test_key_helpers(tmp_path: Path) -> None:
    key = os.urandom(32)
    assert crypto.audit_key(key) == crypto.audit_key(key)
    assert crypto.audit_key(key) != key
    assert crypto.key_fingerprint(key) != crypto.audit_key(key).hex()


def test_init_puts_keys_in_the_chosen_key_dir(tmp_path: Path) -> None:
    keys = tmp_path / "usb" / "keys"
    data_dir = tmp_path / "data"
    init_data_dir(data_dir, key_dir=keys)
    assert crypto.key_path(data_dir) == keys / "secret.key"
    assert mode(keys / "secret.key") == 0o600
    assert (data_dir / "key-location").read_text().strip() == str(keys)
    with open_store(data_dir) as opened:
        assert opened.key == (keys / "secret.key").read_bytes()


def test_two_data_dirs_get_two_key_dirs(tmp_path: Path) -> None:
    init_data_dir(tmp_path / "a" / "data")
    init_data_dir(tmp_path / "b" / "data")
    first, second = (crypto.key_path(tmp_path / x / "data") for x in "ab")
    assert first.parent != second.parent
    assert first.read_bytes() != second.read_bytes()


def test_a_data_dir_with_its_key_inside_keeps_working(tmp_path: Path) -> None:
    """A data directory made before keys were kept apart: key inside, no key-location."""
    data_dir = tmp_path / "old"
    init_data_dir(data_dir, key_dir=data_dir)
    (data_dir / "key-location").unlink()
    assert crypto.key_path(data_dir) == data_dir / "secret.key"
    with open_store(data_dir) as opened:
        assert opened.key == (data_dir / "secret.key").read_bytes()
