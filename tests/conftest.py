"""Fixtures shared by every test: a clean environment, a fresh data directory, a consent
CSV writer, an in-process CLI runner and the optional folder of real evaluation photos."""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from consent.registry import COLUMNS
from consent.store import init_data_dir

REPO = Path(__file__).resolve().parents[1]
# Real photos nobody on the team made (see its MANIFEST.md); never copied into the project.
EVAL_DIR = REPO.parent / "shared" / "eval"

RegistryCsv = Callable[..., Path]


@pytest.fixture(scope="session", autouse=True)
def _clean_env() -> Iterator[None]:
    """No test (or module-scoped fixture) may see the developer's data directory or key."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PHOTOCONSENT_HOME", raising=False)
        mp.delenv("PHOTOCONSENT_KEY_FILE", raising=False)
        yield


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    """``../shared/eval`` next to the repository; the test is skipped when it is absent."""
    if not (EVAL_DIR / "MANIFEST.md").is_file():
        pytest.skip(f"real evaluation photos not found at {EVAL_DIR}")
    return EVAL_DIR


def require_tool(name: str, package: str) -> str:
    """The path of the outside program ``name`` (from Debian's ``package``).

    Missing: skipped when run by hand, a failure under ``make test``, which installs it and
    sets PHOTOCONSENT_REQUIRE_TOOLS=1, so CI can never pass without the second opinion.
    """
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} not found: install the Debian package {package} (make tools)"
    if os.environ.get("PHOTOCONSENT_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An initialised, empty data directory."""
    path = tmp_path / "data"
    init_data_dir(path)
    return path


def pupil_row(pupil_id: str, **cells: str) -> dict[str, str]:
    """A valid consent CSV row (website and biometric consent yes); ``cells`` override."""
    row = {
        "pupil_id": pupil_id,
        "first_name": f"First{pupil_id}",
        "last_name": f"Last{pupil_id}",
        "class": "3B",
        "website": "yes",
        "press": "no",
        "social_media": "no",
        "prospectus": "no",
        "internal_display": "yes",
        "biometric_consent": "yes",
        "consent_date": "2024-09-01",
    }
    row.update(cells)
    return row


def write_registry_csv(path: Path, rows: list[dict[str, str] | str]) -> Path:
    """Write a consent CSV: the header, then dict rows (see `pupil_row`) or raw lines."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            if isinstance(row, str):
                handle.write(row + "\n")
            else:
                writer.writerow([row[c] for c in COLUMNS])
    return path


@pytest.fixture
def registry_csv(tmp_path: Path) -> RegistryCsv:
    """``registry_csv(rows, name="pupils.csv")``: rows are ``{"pupil_id": ..., cell: value}``
    dicts (missing cells get `pupil_row`'s defaults) or raw CSV lines."""

    def write(rows: list[dict[str, str] | str], name: str = "pupils.csv") -> Path:
        full = [r if isinstance(r, str) else pupil_row(**r) for r in rows]
        return write_registry_csv(tmp_path / name, full)

    return write


@pytest.fixture
def runner() -> CliRunner:
    """In-process CLI runner; ``result.stdout`` and ``result.stderr`` are kept apart."""
    return CliRunner()
