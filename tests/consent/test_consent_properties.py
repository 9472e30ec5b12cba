"""Property test: any valid consent CSV round-trips through import exactly."""

from __future__ import annotations

import csv
import string
import tempfile
from datetime import date
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from consent.registry import (
    COLUMNS,
    Purpose,
    clean_text,
    current_consent,
    get_pupil,
    import_pupils_csv,
    list_pupils,
)
from consent.store import init_data_dir, open_store

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
text = st.text(
    st.characters(exclude_categories=("Cc", "Cs"), exclude_characters=BIDI), max_size=20
).map(str.strip)
yes_no = st.sampled_from(["yes", "no", "y", "n", "YES", "No", "Y", "N"])
row = st.fixed_dictionaries(
    {
        "first_name": text.filter(bool),
        "last_name": text,
        "class": text,
        **{p.value: yes_no for p in Purpose},
        "biometric_consent": yes_no,
        "consent_date": st.dates(date(1000, 1, 1), date(9999, 12, 31)).map(date.isoformat),
    }
)
ids = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=12)
pupils = st.dictionaries(ids, row, max_size=8)


def is_yes(value: str) -> bool:
    return value.lower() in ("yes", "y")


@settings(max_examples=40, deadline=None)
@given(pupils=pupils, bom=st.booleans(), crlf=st.booleans())
def test_csv_round_trip(pupils: dict[str, dict[str, str]], bom: bool, crlf: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pupils.csv"
        encoding = "utf-8-sig" if bom else "utf-8"
        with path.open("w", newline="", encoding=encoding) as handle:
            writer = csv.writer(handle, lineterminator="\r\n" if crlf else "\n")
            writer.writerow(COLUMNS)
            for pupil_id, cells in pupils.items():
                writer.writerow([pupil_id if c == "pupil_id" else cells[c] for c in COLUMNS])
        init_data_dir(Path(tmp) / "data")
        with open_store(Path(tmp) / "data") as store:
            result = import_pupils_csv(store, path, operator="prop")
            assert result.added == len(pupils)
            assert [p.pupil_id for p in list_pupils(store.conn)] == sorted(pupils)
            for pupil_id, cells in pupils.items():
                pupil = get_pupil(store.conn, pupil_id)
                assert (pupil.first_name, pupil.last_name, pupil.class_name) == (
                    cells["first_name"],
                    cells["last_name"],
                    cells["class"],
                )
                record = current_consent(store.conn, pupil_id)
                assert record is not None
                assert record.purposes == {p for p in Purpose if is_yes(cells[p.value])}
                assert record.biometric_consent == is_yes(cells["biometric_consent"])
                assert record.consent_date.isoformat() == cells["consent_date"]


@given(text)
def test_clean_text_keeps_clean_text(value: str) -> None:
    assert clean_text(value) == value
