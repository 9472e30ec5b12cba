"""Test data builders for the consent tests (imported by name: no tests package here)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

CsvWriter = Callable[..., Path]


def pupil_row(pupil_id: str, **overrides: str) -> dict[str, str]:
    """A valid CSV row as a dict; keyword arguments replace single cells."""
    row = {
        "pupil_id": pupil_id,
        "first_name": f"First{pupil_id}",
        "last_name": f"Last{pupil_id}",
        "class": "3B",
        "website": "yes",
        "press": "no",
        "social_media": "no",
        "prospectus": "yes",
        "internal_display": "yes",
        "biometric_consent": "yes",
        "consent_date": "2024-09-01",
    }
    row.update(overrides)
    return row
