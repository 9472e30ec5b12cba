"""`init`, `where` and `keys move` through the CLI (issue 14): one data directory found the
same way from any folder, keys kept outside it, and errors that say where they looked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from consent import audit, crypto, locations
from consent.medical.key import MEDICAL_KEY_NAME, medical_key, medical_key_path
from consent.store import init_data_dir, open_store


def where(runner: CliRunner, *args: str) -> dict[str, object]:
    result = runner.invoke(main, ["where", "--json", *args])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_init_records_the_default_so_every_folder_finds_the_same_data(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user_config: Path
) -> None:
    target = tmp_path / "school-data"
    first = runner.invoke(main, ["init", "--data-dir", str(target)])
    assert first.exit_code == 0, first.stderr
    assert "Back up the data directory and the key directory separately" in first.stderr

    for folder in (tmp_path / "a", tmp_path / "b" / "deeper"):
        folder.mkdir(parents=True)
        monkeypatch.chdir(folder)
        found = where(runner)
        assert found["data_dir"] == str(target) and found["database_exists"]
        assert "config file" in str(found["chosen_by"])
        listing = runner.invoke(main, ["pupils", "list"])
        assert listing.exit_code == 0, listing.stderr
        # Following the old advice from here makes no second registry.
        again = runner.invoke(main, ["init"])
        assert again.exit_code == 0 and not (folder / "photoconsent-data").exists()
    with open_store(target) as store:
        assert [e.action for e in audit.entries(store)].count("init") == 1
    assert json.loads((user_config / "config.json").read_text())["data_dir"] == str(target)


def test_where_names_the_keys_outside_the_data_directory(runner: CliRunner, tmp_path: Path) -> None:
    target, keys = tmp_path / "data", tmp_path / "usb" / "keys"
    result = runner.invoke(main, ["init", "--data-dir", str(target), "--key-dir", str(keys)])
    assert result.exit_code == 0, result.stderr
    assert str(keys) in result.stderr

    found = where(runner, "--data-dir", str(target))

    assert found["secret_key"] == str(keys / "secret.key") and found["secret_key_exists"]
    assert found["medical_key"] == str(keys / MEDICAL_KEY_NAME)
    assert found["keys_inside_data_dir"] is False
    assert found["database"] == str(target / "registry.sqlite3")
    text = runner.invoke(main, ["where", "--data-dir", str(target)])
    assert str(keys / "secret.key") in text.stdout and "not made yet" in text.stdout


@pytest.mark.parametrize("how", ["nothing set", "environment", "config file"])
def test_no_data_directory_error_lists_every_place_looked_in(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if how == "environment":
        monkeypatch.setenv(locations.HOME_ENV, str(tmp_path / "gone"))
    if how == "config file":
        locations.set_default_data_dir(tmp_path / "moved-away")

    result = runner.invoke(main, ["pupils", "list"])

    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "Looked in:" in message and "--data-dir (not given)" in message
    expected = {
        "nothing set": ["$PHOTOCONSENT_HOME (not set)", "config file", "./photoconsent-data"],
        "environment": [f"$PHOTOCONSENT_HOME = {tmp_path / 'gone'}"],
        "config file": ["$PHOTOCONSENT_HOME (not set)", str(tmp_path / "moved-away")],
    }[how]
    assert all(part in message for part in expected), message
    assert not (tmp_path / "photoconsent-data").exists()


def test_keys_move_takes_old_keys_out_of_the_data_directory(
    runner: CliRunner, tmp_path: Path
) -> None:
    # A data directory from before keys were kept apart, with a medical key too.
    old = tmp_path / "old-data"
    init_data_dir(old, key_dir=old)
    (old / locations.KEY_LOCATION_NAME).unlink()
    secret = (old / "secret.key").read_bytes()
    with open_store(old) as store, store.transaction() as conn:
        assert medical_key(store, create=True) is not None
        audit.append(conn, store.key, action="test", operator="t", details={})
    medical = (old / MEDICAL_KEY_NAME).read_bytes()
    assert where(runner, "--data-dir", str(old))["keys_inside_data_dir"] is True

    to = tmp_path / "key-stick"
    result = runner.invoke(main, ["keys", "move", "--data-dir", str(old), "--to", str(to)])

    assert result.exit_code == 0, result.stderr
    assert not (old / "secret.key").exists() and not (old / MEDICAL_KEY_NAME).exists()
    assert crypto.key_path(old) == to / "secret.key"
    assert (to / "secret.key").read_bytes() == secret
    assert medical_key_path(old).read_bytes() == medical
    with open_store(old) as store:
        assert store.key == secret
        (entry,) = audit.entries(store, action="keys_move")
        assert entry.details == {"from": str(old), "to": str(to)}
        assert audit.verify(store).ok  # the chain checks under the moved key
    again = runner.invoke(main, ["keys", "move", "--data-dir", str(old), "--to", str(to)])
    assert again.exit_code == 0 and "already in" in again.stderr


def test_keys_move_refuses_a_wrong_key_and_changes_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    init_data_dir(data)
    key = crypto.key_path(data)
    key.write_bytes(b"\0" * 32)  # not this database's key

    result = runner.invoke(
        main, ["keys", "move", "--data-dir", str(data), "--to", str(tmp_path / "k")]
    )

    assert result.exit_code == 1 and "not the key" in result.stderr
    assert crypto.key_path(data) == key and key.exists()
    assert not (tmp_path / "k").exists()
