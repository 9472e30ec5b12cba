"""Fixtures for the consent package: a fresh data directory per test, CSV writers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from consent_factories import CsvWriter, pupil_row

from consent.registry import import_pupils_csv
from consent.store import Store, init_data_dir, open_store
from tests.conftest import write_registry_csv


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHOTOCONSENT_KEY_FILE", raising=False)
    monkeypatch.delenv("PHOTOCONSENT_HOME", raising=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    init_data_dir(path)
    return path


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    with open_store(data_dir) as opened:
        yield opened


@pytest.fixture
def write_csv(tmp_path: Path) -> CsvWriter:
    """``write_csv(rows, name=...)``: rows are dicts (written in COLUMNS order) or raw lines."""

    def write(rows: list[dict[str, str] | str], name: str = "pupils.csv") -> Path:
        return write_registry_csv(tmp_path / name, rows)

    return write


@pytest.fixture
def imported(store: Store, write_csv: CsvWriter) -> Store:
    """P001 and P002 with biometric consent, P003 without."""
    rows = [pupil_row("P001"), pupil_row("P002"), pupil_row("P003", biometric_consent="no")]
    import_pupils_csv(store, write_csv(rows), operator="office")
    return store
