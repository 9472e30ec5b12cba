"""Fixtures for the service tests: a data directory with two pupils and a live token."""

from __future__ import annotations

from pathlib import Path

import pytest

from consent.registry import import_pupils_csv
from consent.store import open_store
from service import tokens
from tests.support.consent_factories import pupil_row, write_registry_csv


@pytest.fixture
def data_dir(data_dir: Path, tmp_path: Path) -> Path:
    """The shared data directory with Amelia Hart (P001, website yes) and Ben Stone (P002,
    website no)."""
    csv_path = write_registry_csv(
        tmp_path / "pupils.csv",
        [
            pupil_row("P001", first_name="Amelia", last_name="Hart"),
            pupil_row("P002", first_name="Ben", last_name="Stone", website="no"),
        ],
    )
    with open_store(data_dir) as store:
        import_pupils_csv(store, csv_path, operator="office")
    return data_dir


@pytest.fixture
def token(data_dir: Path) -> str:
    """A live token called "website"."""
    with open_store(data_dir) as store:
        return tokens.create_token(store, "website", operator="office")
