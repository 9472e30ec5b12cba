"""Fixtures shared by every test: a clean environment, a fresh data directory and the store
over it (empty, or with a small register imported), a consent CSV writer, an in-process CLI
runner and the optional folder of real evaluation photos.

Helpers that tests import (file builders, `pupil_row`, paths) live in ``tests/support``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from consent.locations import CONFIG_DIR_ENV
from consent.registry import import_pupils_csv
from consent.store import Store, init_data_dir, open_store
from tests.support.consent_factories import RegistryCsv, pupil_row, write_registry_csv
from tests.support.environment import EVAL_DIR


@pytest.fixture(scope="session", autouse=True)
def _clean_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test (or module-scoped fixture) may see the developer's data directory, keys or
    per-user config folder, nor write into that folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PHOTOCONSENT_HOME", raising=False)
        mp.delenv("PHOTOCONSENT_KEY_FILE", raising=False)
        mp.delenv("PHOTOCONSENT_MEDICAL_KEY_FILE", raising=False)
        mp.delenv("PHOTOCONSENT_START_METHOD", raising=False)
        mp.setenv(CONFIG_DIR_ENV, str(tmp_path_factory.mktemp("session-user-config")))
        yield


@pytest.fixture(autouse=True)
def user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own per-user config folder (config file, default key directories)."""
    folder = tmp_path / "user-config"
    monkeypatch.setenv(CONFIG_DIR_ENV, str(folder))
    return folder


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    """``../shared/eval`` next to the repository; the test is skipped when it is absent."""
    if not (EVAL_DIR / "MANIFEST.md").is_file():
        pytest.skip(f"real evaluation photos not found at {EVAL_DIR}")
    return EVAL_DIR


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An initialised, empty data directory (``tmp_path / "data"``)."""
    path = tmp_path / "data"
    init_data_dir(path)
    return path


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    """The store over `data_dir`, open for the test and closed after it.

    A module that needs pupils in it overrides this fixture by name, asking for this one
    (``def store(store, registry_csv)``), so the store is still opened and closed here."""
    with open_store(data_dir) as opened:
        yield opened


@pytest.fixture
def registry_csv(tmp_path: Path) -> RegistryCsv:
    """``registry_csv(rows, name="pupils.csv")``: rows are ``{"pupil_id": ..., cell: value}``
    dicts (missing cells get `pupil_row`'s defaults) or raw CSV lines."""

    def write(rows: list[dict[str, str] | str], name: str = "pupils.csv") -> Path:
        full = [r if isinstance(r, str) else pupil_row(**r) for r in rows]
        return write_registry_csv(tmp_path / name, full)

    return write


@pytest.fixture
def imported(store: Store, registry_csv: RegistryCsv) -> Store:
    """`store` with P001 and P002 (biometric consent) and P003 (none) imported; all three
    consent to website, prospectus and internal display only."""
    rows = [
        pupil_row("P001", prospectus="yes"),
        pupil_row("P002", prospectus="yes"),
        pupil_row("P003", prospectus="yes", biometric_consent="no"),
    ]
    import_pupils_csv(store, registry_csv(rows), operator="office")
    return store


@pytest.fixture
def runner() -> CliRunner:
    """In-process CLI runner; ``result.stdout`` and ``result.stderr`` are kept apart."""
    return CliRunner()
