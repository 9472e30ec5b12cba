"""Builders of consent registers: one valid CSV row (`pupil_row`) and the CSV file itself."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from consent.registry import COLUMNS

# ``registry_csv(rows, name="pupils.csv") -> Path``, the fixture of tests/conftest.py.
RegistryCsv = Callable[..., Path]


def pupil_row(pupil_id: str, **cells: str) -> dict[str, str]:
    """A valid consent CSV row as a dict: website, internal display and biometric consent yes,
    press, social media and prospectus no. ``cells`` replace single cells; a test that relies
    on a cell's value passes it, so changing a default here cannot quietly change its meaning."""
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
