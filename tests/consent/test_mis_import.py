"""MIS exports imported as they come: SIMS-, Arbor- and Bromcom-shaped files made here with
Excel's BOM, CRLF, blank lines, accented and hyphenated names, UK dates, every yes/no form
and empty cells; a custom export through a mapping file; ambiguous dates refused."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from consent import mis
from consent.errors import CsvImportError
from consent.registry import (
    Purpose,
    current_consent,
    get_pupil,
    import_pupils_csv,
    list_pupils,
    read_pupils_export,
)
from consent.store import Store

W, P, S, PR, D = (
    Purpose.WEBSITE,
    Purpose.PRESS,
    Purpose.SOCIAL_MEDIA,
    Purpose.PROSPECTUS,
    Purpose.INTERNAL_DISPLAY,
)


def excel_csv(path: Path, lines: list[str]) -> Path:
    """What Excel's "CSV UTF-8" writes: a BOM and CRLF line ends."""
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n")
    return path


SIMS = [
    "UPN,Legal Surname,Legal Forename,Preferred Forename,Reg Group,Year,Date of Birth,"
    "Photo Consent - Website,Photo Consent - Press,Photo Consent - Social Media,"
    "Photo Consent - Prospectus,Photo Consent - Internal Display,Consent Date",
    "A123456789012,Nowak,Łukasz,Luke,3B,Year 3,14/03/2018,Granted,Refused,Refused,Granted,"
    "Granted,01/09/2026",
    "",
    "B123456789012,García-López,José,Pepe,3B,Year 3,02/11/2017,TRUE,FALSE,false,true,TRUE,1/9/26",
    "C123456789012,O'Brien,Siân,,4A,Year 4,20/05/2016,,,,,,03/09/2026",
    ",,,,,,,,,,,,",
]


def test_sims_export_imports_as_it_comes(store: Store, tmp_path: Path) -> None:
    path = excel_csv(tmp_path / "SIMS pupils.csv", SIMS)
    result = import_pupils_csv(store, path, operator="office")
    assert (result.format, result.added) == ("sims", 3)
    assert result.ignored_columns == ("Year", "Date of Birth")
    assert result.empty_consent_cells == 5  # Siân's slip never came back
    assert "biometric_consent" in result.absent_fields
    luke = get_pupil(store.conn, "A123456789012")
    assert (luke.first_name, luke.last_name, luke.preferred_first_name) == (
        "Łukasz",
        "Nowak",
        "Luke",
    )
    assert luke.class_name == "3B"
    rec = current_consent(store.conn, "A123456789012")
    assert rec.purposes == {W, PR, D} and rec.consent_date == date(2026, 9, 1)
    assert rec.biometric_consent is False
    pepe = current_consent(store.conn, "B123456789012")
    assert pepe.purposes == {W, PR, D} and pepe.consent_date == date(2026, 9, 1)
    assert get_pupil(store.conn, "B123456789012").last_name == "García-López"
    sian = current_consent(store.conn, "C123456789012")
    assert sian.purposes == frozenset() and not sian.biometric_consent
    assert current_consent(store.conn, "C123456789012").source.endswith("line 5")


def test_ignored_columns_are_never_stored(store: Store, tmp_path: Path) -> None:
    import_pupils_csv(store, excel_csv(tmp_path / "s.csv", SIMS), operator="office")
    store.conn.execute("SELECT 1")
    dump = "\n".join(sqlite3.connect(store.data_dir / "photoconsent.db").iterdump())
    for dob in ("14/03/2018", "2018-03-14", "02/11/2017", "Year 3"):
        assert dob not in dump


ARBOR = [
    "UPN,Legal first name,Legal last name,Preferred first name,Preferred last name,"
    "Year group,Registration form,Date of birth,Consent: Website,Consent: Press,"
    "Consent: Social media,Consent: Prospectus,Consent: Internal display,"
    "Consent: Biometric,Date consent given",
    "D123456789012,Oliver,Smith-Jones,Olly,,Year 5,5C,01/01/2016,Yes,no,N,y,YES,Given,2026-09-01",
    "",
    "E123456789012,Zoë,Ìmọlẹ,,Imole,Year 5,5C,01/02/2016,Given,Not given,not GIVEN,0,1,,9/1/2026",
]


def test_arbor_export_imports_as_it_comes(store: Store, tmp_path: Path) -> None:
    result = import_pupils_csv(store, excel_csv(tmp_path / "arbor.csv", ARBOR), operator="o")
    assert (result.format, result.added, result.empty_consent_cells) == ("arbor", 2, 1)
    assert result.ignored_columns == ("Year group", "Date of birth")
    olly = get_pupil(store.conn, "D123456789012")
    assert (olly.preferred_first_name, olly.class_name) == ("Olly", "5C")
    rec = current_consent(store.conn, "D123456789012")
    assert rec.purposes == {W, PR, D} and rec.biometric_consent
    zoe = get_pupil(store.conn, "E123456789012")
    assert (zoe.first_name, zoe.last_name, zoe.preferred_last_name) == ("Zoë", "Ìmọlẹ", "Imole")
    rec = current_consent(store.conn, "E123456789012")
    assert rec.purposes == {W, D} and not rec.biometric_consent
    assert rec.consent_date == date(2026, 1, 9)  # UK order: 9 January


BROMCOM = [
    "Admission No,UPN,Forename,Surname,Preferred Forename,Tutor Group,Gender,"
    "Website Consent,Press Consent,Social Media Consent,Prospectus Consent,"
    "Display Consent,Biometric Consent",
    "1001,F123456789012,Anna-Maria,Kowalska,Ania,6A,F,Y,N,N,Y,Y,N",
    "1002,G123456789012,Tom,Lee,,6A,M,Refused,Refused,Refused,Refused,Granted,",
]


def test_bromcom_export_without_a_date_column_is_dated_today(store: Store, tmp_path: Path) -> None:
    path = excel_csv(tmp_path / "bromcom.csv", BROMCOM)
    result = import_pupils_csv(store, path, operator="office")
    assert (result.format, result.added, result.empty_consent_cells) == ("bromcom", 2, 1)
    assert result.ignored_columns == ("Admission No", "Gender")
    assert result.absent_fields == ("consent_date",)
    rec = current_consent(store.conn, "F123456789012")
    assert rec.purposes == {W, PR, D} and rec.consent_date == date.today()
    assert current_consent(store.conn, "G123456789012").purposes == {D}
    # The same file again changes nothing: an undated slip keeps its first date.
    again = import_pupils_csv(store, path, operator="office")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)


@pytest.mark.parametrize(("lines", "fmt"), [(SIMS, "sims"), (ARBOR, "arbor"), (BROMCOM, "bromcom")])
def test_auto_recognises_each_preset(lines: list[str], fmt: str) -> None:
    assert mis.detect_format(lines[0].split(",")) == fmt


CUSTOM = [
    "Child ID,Given name,Family name,Known as,Nicknames,Class,Web?,Newspaper?,Date signed,"
    "Medical notes",
    "X1,Lukasz,Nowak,Luke,Lukey;Łukaszek,R,Yes,No,05/09/2026,asthma",
    "X2,Jose,Ruiz,Pepe,,R,No,No,05/09/2026,",
]


def test_custom_export_through_a_mapping_file(store: Store, tmp_path: Path) -> None:
    path = excel_csv(tmp_path / "custom.csv", CUSTOM)
    with pytest.raises(CsvImportError, match="not a SIMS, Arbor or Bromcom export"):
        import_pupils_csv(store, path, operator="office")
    template = mis.mapping_template(CUSTOM[0].split(","))
    assert "#   Medical notes" in template and "pupil_id = \n" in template
    edited = (
        template.replace("\npupil_id = \n", "\npupil_id = Child ID\n")
        .replace("\nfirst_name = \n", "\nfirst_name = Given name\n")
        .replace("\nlast_name = \n", "\nlast_name = Family name\n")
        .replace("\npreferred_first_name = \n", "\npreferred_first_name = Known as\n")
        .replace("\nother_names = \n", "\nother_names = Nicknames\n")
        .replace("\nclass = \n", "\nclass = Class\n")
        .replace("\nwebsite = \n", "\nwebsite = Web?\n")
        .replace("\npress = \n", "\npress = Newspaper?\n")
        .replace("\nconsent_date = \n", "\nconsent_date = Date signed\n")
    )
    result = import_pupils_csv(store, path, operator="office", mapping=mis.parse_mapping(edited))
    assert (result.format, result.added) == ("mapping", 2)
    assert result.ignored_columns == ("Medical notes",)
    luke = get_pupil(store.conn, "X1")
    assert (luke.preferred_first_name, luke.other_names) == ("Luke", "Lukey; Łukaszek")
    assert current_consent(store.conn, "X1").purposes == {W}
    assert current_consent(store.conn, "X1").consent_date == date(2026, 9, 5)


def test_a_mapping_naming_a_column_the_file_lacks_is_refused(tmp_path: Path) -> None:
    mapping = mis.parse_mapping("pupil_id = ID\nfirst_name = First\nlast_name = Surname\n")
    with pytest.raises(CsvImportError, match="the mapping names columns the file lacks"):
        read_pupils_export(b"Child ID,First,Surname\nX1,A,B\n", mapping=mapping)


def test_month_first_dates_make_the_others_ambiguous() -> None:
    raw = (
        b"UPN,Legal Surname,Legal Forename,Reg Group,Photo Consent - Website,Consent Date\n"
        b"A1,Lee,Amy,3B,Yes,09/13/2026\n"
        b"A2,Lee,Ben,3B,Yes,09/01/2026\n"
        b"A3,Lee,Cat,3B,Yes,13/09/2026\n"
    )
    with pytest.raises(CsvImportError) as caught:
        read_pupils_export(raw)
    errors = dict(caught.value.errors)
    assert set(errors) == {2, 3}
    assert "month first" in errors[2] and "ambiguous" in errors[3]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01/09/2026", date(2026, 9, 1)),
        ("1/9/26", date(2026, 9, 1)),
        ("2026-09-01", date(2026, 9, 1)),
        ("01/09/2026 00:00", date(2026, 9, 1)),
    ],
)
def test_dates(text: str, expected: date) -> None:
    assert mis.parse_date(text) == expected


@pytest.mark.parametrize("bad", ["31/02/2026", "2026/09/01", "Sept 1st", "1.9.26"])
def test_bad_dates_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        mis.parse_date(bad)


@pytest.mark.parametrize(
    ("word", "answer"),
    [
        *[(w, True) for w in ("Yes", "y", "GRANTED", "Given", "TRUE", "1", " yes ")],
        *[(w, False) for w in ("No", "N", "refused", "Not given", "false", "0", "NOT  GIVEN")],
        ("", None),
        ("  ", None),
    ],
)
def test_yes_no_forms(word: str, answer: bool | None) -> None:
    assert mis.yes_no(word) is answer


def test_an_unknown_answer_is_an_error_with_its_line(tmp_path: Path) -> None:
    lines = [*SIMS[:2], SIMS[1].replace("A12", "Z12").replace("Granted,Refused", "Maybe,No")]
    with pytest.raises(CsvImportError, match="line 3: website 'Maybe' is not yes or no"):
        read_pupils_export("\n".join(lines).encode())


def test_dry_run_writes_nothing(store: Store, tmp_path: Path) -> None:
    path = excel_csv(tmp_path / "s.csv", SIMS)
    result = import_pupils_csv(store, path, operator="office", dry_run=True)
    assert (result.added, result.dry_run) == (3, True)
    assert list_pupils(store.conn) == []
    assert (
        store.conn.execute("SELECT count(*) FROM audit_log WHERE action LIKE 'pupil%'").fetchone()[
            0
        ]
        == 0
    )


def test_erasure_blanks_every_name_and_access_exports_them(store: Store, tmp_path: Path) -> None:
    from consent import retention
    from publishing.captions.per_photo import register_pupils

    import_pupils_csv(store, excel_csv(tmp_path / "s.csv", SIMS), operator="office")
    assert "Luke" in {p.preferred_first_name for p in register_pupils(store.conn)}
    retention.forget(store, "A123456789012", operator="office", source="request")
    luke = get_pupil(store.conn, "A123456789012")
    assert (luke.first_name, luke.preferred_first_name, luke.other_names) == ("", "", "")
    assert "A123456789012" not in {p.pupil_id for p in register_pupils(store.conn)}


def test_subject_access_export_holds_the_preferred_names(store: Store, tmp_path: Path) -> None:
    import json

    from consent.export import export_pupil

    import_pupils_csv(store, excel_csv(tmp_path / "s.csv", SIMS), operator="office")
    export_pupil(store, "A123456789012", tmp_path / "sar", operator="office")
    pupil = json.loads((tmp_path / "sar" / "pupil.json").read_text(encoding="utf-8"))
    assert pupil["preferred_first_name"] == "Luke"


def test_the_mis_fields_are_the_registers_columns() -> None:
    from consent import mis, registry

    assert mis.CONSENT_FIELDS == (*registry.PURPOSE_COLUMNS, "biometric_consent")
    assert sorted(mis.FIELDS) == sorted((*registry.COLUMNS, *registry.OPTIONAL_COLUMNS))
