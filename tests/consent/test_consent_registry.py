from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from consent import audit
from consent.errors import CsvImportError, UnknownPupil
from consent.registry import (
    COLUMNS,
    ImportResult,
    Purpose,
    consent_allows,
    consent_history,
    current_consent,
    get_pupil,
    import_pupils_csv,
    list_pupils,
    parse_pupils_csv,
    pupils_with_consent,
    read_pupils_export,
)
from consent.store import Store
from tests.support.consent_factories import RegistryCsv, pupil_row


def pupil_count(store: Store) -> int:
    return store.conn.execute("SELECT COUNT(*) FROM pupils").fetchone()[0]


def record_count(store: Store) -> int:
    return store.conn.execute("SELECT COUNT(*) FROM consent_records").fetchone()[0]


def test_import_good_file(store: Store, registry_csv: RegistryCsv) -> None:
    rows = [pupil_row("P001"), pupil_row("P002", press="YES", website="n", prospectus="yes")]
    result = import_pupils_csv(store, registry_csv(rows), operator="office")
    assert result == ImportResult(added=2, updated=0, unchanged=0)
    assert get_pupil(store.conn, "P001").first_name == "FirstP001"
    assert [p.pupil_id for p in list_pupils(store.conn)] == ["P001", "P002"]
    record = current_consent(store.conn, "P002")
    assert record is not None
    assert record.purposes == {Purpose.PRESS, Purpose.PROSPECTUS, Purpose.INTERNAL_DISPLAY}
    assert record.biometric_consent is True
    assert record.consent_date == date(2024, 9, 1)
    assert record.recorded_by == "office"
    assert record.source == "csv:pupils.csv:line 3"


def test_reimport_unchanged_adds_no_records(imported: Store, registry_csv: RegistryCsv) -> None:
    before = record_count(imported)
    rows = [
        pupil_row("P001", prospectus="yes"),
        pupil_row("P002", prospectus="yes"),
        pupil_row("P003", prospectus="yes", biometric_consent="no"),
    ]
    result = import_pupils_csv(imported, registry_csv(rows, name="again.csv"), operator="office")
    assert result == ImportResult(added=0, updated=0, unchanged=3)
    assert record_count(imported) == before
    assert audit.entries(imported, action="pupil_update") == []


def test_reimport_with_one_change_supersedes(imported: Store, registry_csv: RegistryCsv) -> None:
    old = current_consent(imported.conn, "P002")
    rows = [
        pupil_row("P001", prospectus="yes"),
        pupil_row("P002", prospectus="yes", press="yes"),
        pupil_row("P003", prospectus="yes", biometric_consent="no"),
    ]
    result = import_pupils_csv(imported, registry_csv(rows, name="v2.csv"), operator="office")
    assert result == ImportResult(added=0, updated=1, unchanged=2)
    history = consent_history(imported.conn, "P002")
    assert [r.record_id for r in history] == [old.record_id, history[-1].record_id]
    assert Purpose.PRESS in history[-1].purposes
    superseded = imported.conn.execute(
        "SELECT superseded_at FROM consent_records WHERE id = ?", (old.record_id,)
    ).fetchone()[0]
    assert superseded is not None
    (update,) = audit.entries(imported, action="pupil_update")
    assert update.details["pupil_id"] == "P002"
    assert update.details["changed"] == ["press"]
    assert update.details["source"] == "csv:v2.csv:line 3"


def test_name_change_updates_pupil_without_new_record(
    imported: Store, registry_csv: RegistryCsv
) -> None:
    before = record_count(imported)
    rows = [pupil_row("P001", prospectus="yes", **{"class": "4C", "last_name": "Newname"})]
    import_pupils_csv(imported, registry_csv(rows), operator="office")
    assert get_pupil(imported.conn, "P001").class_name == "4C"
    assert record_count(imported) == before
    (update,) = audit.entries(imported, action="pupil_update")
    assert update.details["changed"] == ["last_name", "class"]
    assert "Newname" not in json.dumps(update.details)


BAD_ROWS = [
    pupil_row("P001"),
    pupil_row("P002", website="maybe"),  # line 3
    pupil_row("", press="no"),  # line 4
    pupil_row("P004", consent_date="31/02/2024"),  # line 5
    pupil_row("P001"),  # line 6: duplicate
    "P007,Too,Few,3B,yes",  # line 7
    pupil_row("P008", consent_date="2024-02-30"),  # line 8
    pupil_row("P009", first_name=""),  # line 9
]
EXPECTED_ERRORS = [
    (3, "website 'maybe' is not yes or no"),
    (4, "pupil_id is empty"),
    (5, "consent_date '31/02/2024' is not a real date"),
    (6, "pupil_id 'P001' is already on line 2"),
    (7, "expected 11 fields, found 5"),
    (8, "consent_date '2024-02-30' is not a real date"),
    (9, "first_name is empty"),
]


@pytest.fixture
def bad_import(imported: Store, registry_csv: RegistryCsv) -> tuple[Store, CsvImportError, int]:
    before = pupil_count(imported), record_count(imported), audit.head(imported.conn)
    with pytest.raises(CsvImportError) as caught:
        import_pupils_csv(imported, registry_csv(BAD_ROWS, name="bad.csv"), operator="office")
    return imported, caught.value, before


@pytest.mark.parametrize(("line", "message"), EXPECTED_ERRORS)
def test_bad_file_names_each_line(bad_import, line: int, message: str) -> None:
    _, error, _ = bad_import
    assert any(n == line and message in m for n, m in error.errors), error.errors
    assert f"line {line}: {message}" in str(error)


def test_bad_file_lists_only_bad_lines(bad_import) -> None:
    _, error, _ = bad_import
    assert {n for n, _ in error.errors} == {n for n, _ in EXPECTED_ERRORS}
    assert str(error).startswith("7 errors in bad.csv; nothing was imported")


def test_bad_file_commits_nothing(bad_import) -> None:
    store, _, before = bad_import
    assert (pupil_count(store), record_count(store), audit.head(store.conn)) == before


def test_one_good_row_then_one_bad_commits_nothing(store: Store, registry_csv: RegistryCsv) -> None:
    rows = [pupil_row("P001"), pupil_row("P002", biometric_consent="perhaps")]
    with pytest.raises(CsvImportError, match="line 3: biometric_consent 'perhaps'"):
        import_pupils_csv(store, registry_csv(rows), operator="office")
    assert pupil_count(store) == 0


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("pupil_id,first_name,class,website,press", "not a SIMS, Arbor or Bromcom export"),
        ("pupil_id,first_name,first_name,last_name,x", "repeated column(s): first_name"),
        ("", "the file is empty"),
    ],
    ids=["missing", "repeated", "empty"],
)
def test_bad_header(header: str, message: str) -> None:
    with pytest.raises(CsvImportError) as caught:
        parse_pupils_csv(header.encode() + b"\nP001,A,B,3B,yes\n" if header else b"")
    assert caught.value.errors[0][0] == 1
    assert message in str(caught.value)


def test_extra_columns_are_ignored_and_listed_and_missing_consent_is_no_consent() -> None:
    raw = b"pupil_id,first_name,last_name,class,website,notes\nP001,A,B,3B,yes,allergic\n"
    parsed = read_pupils_export(raw, today=date(2026, 9, 1))
    assert parsed.ignored_columns == ("notes",)
    (row,) = parsed.rows
    assert row.purposes == {Purpose.WEBSITE} and row.biometric_consent is False
    assert row.consent_date == date(2026, 9, 1) and row.dated_by_import
    assert "press" in parsed.absent_fields and "consent_date" in parsed.absent_fields


def test_header_is_case_and_order_insensitive() -> None:
    raw = (
        b"Consent_Date,PUPIL_ID,first_name,last_name,class,website,press,social_media,"
        b"prospectus,internal_display,biometric_consent\r\n"
        b"2024-09-01,P001,Amy,Adams,3B,Y,N,n,y,yes,No\r\n"
    )
    (row,) = parse_pupils_csv(raw)
    assert row.pupil.pupil_id == "P001"
    assert row.purposes == {Purpose.WEBSITE, Purpose.PROSPECTUS, Purpose.INTERNAL_DISPLAY}
    assert row.biometric_consent is False


def test_bom_is_accepted(store: Store, registry_csv: RegistryCsv) -> None:
    path = registry_csv([pupil_row("P001")])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert import_pupils_csv(store, path, operator="office").added == 1


def test_non_utf8_is_rejected_with_line_number(store: Store, registry_csv: RegistryCsv) -> None:
    path = registry_csv([pupil_row("P001"), pupil_row("P002", first_name="Zoe")])
    path.write_bytes(path.read_bytes().replace(b"Zoe", b"Zo\xe9"))  # Latin-1 e-acute
    with pytest.raises(CsvImportError, match=r"line 3: not valid UTF-8 .*CSV UTF-8"):
        import_pupils_csv(store, path, operator="office")
    assert pupil_count(store) == 0


def test_blank_lines_are_skipped(store: Store, registry_csv: RegistryCsv) -> None:
    path = registry_csv([pupil_row("P001"), "", ",,,,,,,,,,", pupil_row("P002")])
    assert import_pupils_csv(store, path, operator="office").added == 2
    assert current_consent(store.conn, "P002").source == "csv:pupils.csv:line 5"


def test_control_characters_are_stripped_from_names(
    store: Store, registry_csv: RegistryCsv
) -> None:
    path = registry_csv([pupil_row("P001", first_name="\tA\x07m\x1by\u202e ")])
    import_pupils_csv(store, path, operator="office")
    assert get_pupil(store.conn, "P001").first_name == "Amy"


def test_names_never_reach_the_audit_log(imported: Store, registry_csv: RegistryCsv) -> None:
    rows = [
        pupil_row("P001", prospectus="yes", first_name="Zebedee"),
        pupil_row("P010", first_name="Quentin"),
    ]
    import_pupils_csv(imported, registry_csv(rows), operator="office")
    raw_details = [r[0] for r in imported.conn.execute("SELECT details FROM audit_log")]
    for name in ("FirstP001", "LastP002", "Zebedee", "Quentin"):
        assert not any(name in details for details in raw_details)
    assert any("P010" in details for details in raw_details)


def test_get_unknown_pupil_raises(store: Store) -> None:
    with pytest.raises(UnknownPupil, match="P404"):
        get_pupil(store.conn, "P404")
    assert current_consent(store.conn, "P404") is None


@pytest.mark.parametrize(
    ("consent_date", "purpose", "on", "allowed"),
    [
        (date(2024, 9, 1), Purpose.WEBSITE, date(2024, 9, 1), True),
        (date(2024, 9, 1), Purpose.WEBSITE, date(2025, 1, 1), True),
        (date(2024, 9, 1), Purpose.WEBSITE, date(2024, 8, 31), False),
        (date(2024, 9, 1), Purpose.PRESS, date(2025, 1, 1), False),
    ],
    ids=["same-day", "later", "photo-before-slip", "purpose-refused"],
)
def test_consent_allows(
    imported: Store, consent_date: date, purpose: Purpose, on: date, allowed: bool
) -> None:
    record = current_consent(imported.conn, "P001")
    assert record is not None and record.consent_date == consent_date
    assert consent_allows(record, purpose, on) is allowed


def test_consent_allows_none_is_false() -> None:
    assert consent_allows(None, Purpose.WEBSITE, date(2030, 1, 1)) is False


def test_pupils_with_consent(store: Store, registry_csv: RegistryCsv) -> None:
    rows = [
        pupil_row("P001"),
        pupil_row("P002", website="no"),
        pupil_row("P003", consent_date="2025-01-10"),
    ]
    import_pupils_csv(store, registry_csv(rows), operator="office")
    assert list(pupils_with_consent(store.conn, Purpose.WEBSITE, date(2025, 1, 9))) == ["P001"]
    later = pupils_with_consent(store.conn, Purpose.WEBSITE, date(2025, 1, 10))
    assert list(later) == ["P001", "P003"]


def test_import_writes_summary_entry_with_file_hash(imported: Store) -> None:
    (summary,) = audit.entries(imported, action="consent_import")
    assert summary.details["added"] == 3
    assert len(summary.details["sha256"]) == 64
    assert audit.verify(imported).ok


def test_parse_reports_malformed_quoting(tmp_path: Path) -> None:
    raw = ",".join(COLUMNS).encode() + b'\nP001,"Amy,Adams\n'
    with pytest.raises(CsvImportError, match="line 2"):
        parse_pupils_csv(raw)
