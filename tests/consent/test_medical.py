"""Medical records and board photos: CSV import, encryption at rest, keys, purge (issue 6)."""

from __future__ import annotations

import csv
import errno
import io
import os
import stat
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from board.photo_prep import DateSource, exif_taken, prepare_photo
from cli import main
from consent import audit, crypto
from consent import retention as leavers
from consent.errors import CsvImportError, FileWriteError, KeyMismatch, KeyMissing, TamperedData
from consent.medical import board_photos
from consent.medical import records as medical
from consent.medical.board_settings import Setting, set_setting, settings
from consent.medical.key import MEDICAL_KEY_ENV, MEDICAL_KEY_NAME, medical_key_path
from consent.medical.records import Condition, MedicalRecord, Room, Severity
from consent.medical.records_csv import CSV_COLUMNS, import_medical_csv
from consent.registry import import_pupils_csv
from consent.store import open_store
from tests.support.consent_factories import RegistryCsv
from tests.support.photos import jpeg_file

HEADER = list(CSV_COLUMNS) + ["ends_on", "notes"]
PEANUT = "Anaphylaxis (peanuts) zqx"
PEANUT_ACTION = "Give the adrenaline pen into the thigh, call 999 qvz"


def medical_csv(path: Path, rows: list[dict[str, str] | str]) -> Path:
    """Write a medical CSV; dict rows get defaults for missing cells, str rows go raw."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    for row in rows:
        if isinstance(row, str):
            buf.write(row + "\n")
            continue
        full = {
            "condition": "Asthma",
            "severity": "moderate",
            "action": "Two puffs of the blue inhaler",
            "medication_location": "Class bag",
            "rooms": "staff-room; classroom",
            "review_date": "2027-01-01",
            "ends_on": "",
            "notes": "",
            **row,
        }
        writer.writerow([full[c] for c in HEADER])
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


@pytest.fixture
def school(data_dir: Path, registry_csv: RegistryCsv, tmp_path: Path) -> Path:
    """A data directory with pupils P1-P4 and a medical record for P1 (two conditions)."""
    with open_store(data_dir) as store:
        import_pupils_csv(
            store,
            registry_csv([{"pupil_id": f"P{i}"} for i in range(1, 5)]),
            operator="office",
        )
        import_medical_csv(
            store,
            medical_csv(
                tmp_path / "med.csv",
                [
                    {
                        "pupil_id": "P1",
                        "condition": PEANUT,
                        "severity": "life-threatening",
                        "action": PEANUT_ACTION,
                    },
                    {"pupil_id": "P1", "rooms": "", "review_date": ""},
                ],
            ),
            operator="office",
        )
    return data_dir


# --- import ----------------------------------------------------------------------------------


def test_import_stores_every_condition_worst_first(school: Path) -> None:
    with open_store(school) as store:
        record = medical.get_record(store, "P1")

    assert record is not None
    assert [c.name for c in record.current_conditions(date(2026, 1, 1))] == [PEANUT, "Asthma"]
    assert record.rooms == {Room.STAFF_ROOM, Room.CLASSROOM}
    assert record.review_on == date(2027, 1, 1)


def test_import_is_all_or_nothing_and_lists_every_bad_line(school: Path, tmp_path: Path) -> None:
    bad = medical_csv(
        tmp_path / "bad.csv",
        [
            {"pupil_id": "P2"},
            {"pupil_id": "P3", "severity": "deadly"},
            {"pupil_id": "NOPE"},
            {"pupil_id": "P4", "rooms": "attic"},
            {"pupil_id": "P2", "condition": "asthma", "rooms": ""},
        ],
    )
    with open_store(school) as store:
        before = audit.entries(store)
        with pytest.raises(CsvImportError) as caught:
            import_medical_csv(store, bad, operator="office")
        assert medical.count_records(store.conn, "P2") == 0
        assert len(audit.entries(store)) == len(before)

    lines = [line for line, _ in caught.value.errors]
    assert lines == [3, 4, 5, 6]
    assert "not one of: life-threatening" in str(caught.value)
    assert "line 4: pupil_id 'NOPE' is not in the registry" in str(caught.value)


def test_reimport_of_the_same_file_changes_nothing(school: Path, tmp_path: Path) -> None:
    path = medical_csv(
        tmp_path / "again.csv",
        [
            {
                "pupil_id": "P1",
                "condition": PEANUT,
                "severity": "life-threatening",
                "action": PEANUT_ACTION,
            },
            {"pupil_id": "P1", "rooms": "", "review_date": ""},
        ],
    )
    with open_store(school) as store:
        before = medical.revisions(store.conn)
        result = import_medical_csv(store, path, operator="office")
        assert medical.revisions(store.conn) == before

    assert (result.added, result.updated, result.unchanged) == (0, 0, 1)


def test_cli_import_reports_line_numbers_and_exits_1(
    school: Path, tmp_path: Path, runner: CliRunner
) -> None:
    bad = medical_csv(tmp_path / "bad.csv", [{"pupil_id": "P2", "action": ""}])
    result = runner.invoke(main, ["--data-dir", str(school), "medical", "import", str(bad)])

    assert result.exit_code == 1
    assert "line 2: action is empty" in result.stderr


# --- encryption at rest ----------------------------------------------------------------------


def _db_bytes(data_dir: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in data_dir.iterdir() if p.name.startswith("registry.sqlite3")
    )


def test_medical_text_and_photos_are_not_in_the_database_bytes(
    school: Path, tmp_path: Path
) -> None:
    photo = prepare_photo(jpeg_file(tmp_path / "p.jpg"), date(2026, 9, 1))
    with open_store(school) as store:
        board_photos.add_photo(
            store,
            "P1",
            photo.jpeg,
            taken_on=photo.taken_on,
            source_sha256=photo.source_sha256,
            operator="office",
        )
        raw = _db_bytes(school)  # while open: the -wal file still holds the new pages

    for secret in (PEANUT, PEANUT_ACTION, "Two puffs of the blue inhaler", "Class bag"):
        assert secret.encode() not in raw
        assert secret.encode("utf-16-le") not in raw
    # Any 64-byte run from the middle of the stored JPEG would show it in the clear.
    assert photo.jpeg[len(photo.jpeg) // 2 : len(photo.jpeg) // 2 + 64] not in raw
    assert photo.jpeg[:2] == b"\xff\xd8" and photo.jpeg[-200:-136] not in raw


def test_audit_log_holds_no_medical_text(school: Path) -> None:
    with open_store(school) as store:
        medical.update_condition(
            store,
            "P2",
            Condition("Epilepsy qqz", Severity.SERIOUS, "Time the seizure qqz"),
            operator="office",
            rooms=frozenset({Room.KITCHEN}),
        )
        logged = "\n".join(audit.canonical_json(e.details) for e in audit.entries(store))

    for text in (PEANUT, PEANUT_ACTION, "Epilepsy", "seizure", "Asthma", "inhaler"):
        assert text not in logged
    assert '"pupil_id":"P2"' in logged


def test_a_record_copied_to_another_pupil_fails_to_decrypt(school: Path) -> None:
    with open_store(school) as store:
        medical.update_condition(
            store,
            "P2",
            Condition("X", Severity.LOW, "Y"),
            operator="office",
            rooms=frozenset(Room),
        )
        payload = store.conn.execute(
            "SELECT payload FROM medical_records WHERE pupil_id = 'P1'"
        ).fetchone()[0]
        with store.transaction() as conn:
            conn.execute("UPDATE medical_records SET payload = ? WHERE pupil_id = 'P2'", (payload,))
        with pytest.raises(TamperedData):
            medical.get_record(store, "P2")


# --- the medical key -------------------------------------------------------------------------


def test_medical_key_is_a_separate_private_file(school: Path) -> None:
    key_file = medical_key_path(school)

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes() != crypto.key_path(school).read_bytes()
    assert len(key_file.read_bytes()) == 32
    # Beside the main key, outside the data directory.
    assert key_file.parent == crypto.key_path(school).parent
    assert not key_file.is_relative_to(school) and key_file.name == MEDICAL_KEY_NAME


def test_missing_medical_key_locks_the_records_with_a_clear_message(school: Path) -> None:
    (medical_key_path(school)).rename(medical_key_path(school).with_name("elsewhere.key"))
    with open_store(school) as store:
        with pytest.raises(KeyMissing, match="Restore it from the school's backup"):
            medical.get_record(store, "P1")


def test_a_swapped_medical_key_is_refused(school: Path) -> None:
    (medical_key_path(school)).write_bytes(os.urandom(32))
    with open_store(school) as store:
        with pytest.raises(KeyMismatch):
            medical.get_record(store, "P1")


def test_medical_key_can_live_outside_the_data_directory(
    data_dir: Path, registry_csv: RegistryCsv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "usb" / "medical.key"
    monkeypatch.setenv(MEDICAL_KEY_ENV, str(outside))
    with open_store(data_dir) as store:
        import_pupils_csv(store, registry_csv([{"pupil_id": "P1"}]), operator="office")
        medical.update_condition(
            store,
            "P1",
            Condition("Asthma", Severity.MODERATE, "Inhaler"),
            operator="office",
            rooms=frozenset({Room.CLASSROOM}),
        )

    assert outside.is_file()
    assert not (data_dir / MEDICAL_KEY_NAME).exists()


def test_a_failed_medical_key_write_leaves_no_key_and_no_record(
    data_dir: Path, registry_csv: RegistryCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    asthma = Condition("Asthma", Severity.MODERATE, "Inhaler")
    with open_store(data_dir) as store:
        import_pupils_csv(store, registry_csv([{"pupil_id": "P1"}]), operator="office")
        monkeypatch.setattr(os, "link", failing_link)
        with pytest.raises(FileWriteError, match="Input/output error"):
            medical.update_condition(
                store, "P1", asthma, operator="office", rooms=frozenset({Room.CLASSROOM})
            )
        monkeypatch.undo()
        assert medical.get_record(store, "P1") is None
        assert not [p for p in data_dir.iterdir() if "medical" in p.name]
        medical.update_condition(
            store, "P1", asthma, operator="office", rooms=frozenset({Room.CLASSROOM})
        )
        assert medical.get_record(store, "P1") is not None


def failing_link(*args: object) -> None:
    raise OSError(errno.EIO, "Input/output error")


# --- single edits ----------------------------------------------------------------------------


def test_set_replaces_a_condition_of_the_same_name_and_changes_the_revision(
    school: Path,
) -> None:
    with open_store(school) as store:
        before = medical.revisions(store.conn)["P1"]
        record = medical.update_condition(
            store,
            "P1",
            Condition("asthma", Severity.SERIOUS, "New plan"),
            operator="office",
        )

    assert sorted(c.name for c in record.conditions) == sorted([PEANUT, "asthma"])
    assert record.revision != before
    assert record.rooms == {Room.STAFF_ROOM, Room.CLASSROOM}  # kept


def test_remove_one_condition_then_the_record(school: Path) -> None:
    with open_store(school) as store:
        left = medical.remove(store, "P1", operator="office", condition="ASTHMA")
        assert left is not None and [c.name for c in left.conditions] == [PEANUT]
        assert medical.remove(store, "P1", operator="office", condition=PEANUT) is None
        assert medical.get_record(store, "P1") is None
        with pytest.raises(medical.NoMedicalRecord):
            medical.remove(store, "P1", operator="office")


def test_cli_set_and_show(school: Path, runner: CliRunner) -> None:
    base = ["--data-dir", str(school), "medical"]
    result = runner.invoke(
        main,
        [
            *base,
            "set",
            "P3",
            "--condition",
            "Type 1 diabetes",
            "--severity",
            "serious",
            "--action",
            "Glucose tablets",
            "--rooms",
            "all",
            "--operator",
            "nurse",
        ],
    )
    assert result.exit_code == 0, result.output

    shown = runner.invoke(main, [*base, "show", "P3", "--json", "--operator", "nurse"])
    listed = runner.invoke(main, [*base, "list"])

    assert '"name": "Type 1 diabetes"' in shown.stdout
    assert "P3\t" in listed.stdout and "diabetes" not in listed.stdout
    with open_store(school) as store:
        assert audit.entries(store, action="medical_view")[-1].operator == "nurse"


# --- leavers and erasure ---------------------------------------------------------------------


def _add_photo(store: object, pupil_id: str, tmp_path: Path) -> None:
    photo = prepare_photo(jpeg_file(tmp_path / f"{pupil_id}.jpg"), date(2026, 9, 1))
    board_photos.add_photo(
        store,  # type: ignore[arg-type]
        pupil_id,
        photo.jpeg,
        taken_on=photo.taken_on,
        source_sha256=photo.source_sha256,
        operator="office",
    )


def test_leaving_deletes_medical_record_and_board_photo(school: Path, tmp_path: Path) -> None:
    with open_store(school) as store:
        _add_photo(store, "P1", tmp_path)
        purged = leavers.leave(store, "P1", date(2026, 7, 20), operator="office")
        assert medical.count_records(store.conn, "P1") == 0
        assert board_photos.count_photos(store.conn, "P1") == 0

    assert {p.category for p in purged} >= {"medical", "board_photos"}
    assert PEANUT_ACTION.encode() not in _db_bytes(school)


def test_forget_deletes_medical_record_and_board_photo(school: Path, tmp_path: Path) -> None:
    with open_store(school) as store:
        _add_photo(store, "P1", tmp_path)
        purged = leavers.forget(store, "P1", operator="dpo", source="letter")

    assert {p.category for p in purged} >= {"medical", "board_photos"}


def test_retention_lists_the_medical_categories() -> None:
    assert leavers.CATEGORIES["medical"].default_days == 0
    assert leavers.CATEGORIES["board_photos"].transferable is False


def test_no_medical_record_for_a_leaver(school: Path) -> None:
    with open_store(school) as store:
        leavers.leave(store, "P2", date(2026, 7, 20), operator="office")
        with pytest.raises(medical.MedicalError, match="left on 2026-07-20"):
            medical.set_record(
                store,
                MedicalRecord("P2", (Condition("A", Severity.LOW, "B"),), frozenset(Room)),
                operator="office",
            )


# --- board photos ----------------------------------------------------------------------------


def test_photo_date_comes_from_exif_and_metadata_is_dropped(tmp_path: Path) -> None:
    path = jpeg_file(tmp_path / "p.jpg", taken="2026:03:04 10:00:00")

    photo = prepare_photo(path)

    assert exif_taken(path.read_bytes()) == date(2026, 3, 4)
    assert (photo.taken_on, photo.date_source) == (date(2026, 3, 4), DateSource.EXIF)
    assert b"Exif" not in photo.jpeg and b"2026:03:04" not in photo.jpeg


def test_photo_without_a_date_needs_taken(tmp_path: Path, runner: CliRunner) -> None:
    with pytest.raises(medical.MedicalError, match="--taken"):
        prepare_photo(jpeg_file(tmp_path / "p.jpg"))


def test_photo_older_than_the_school_maximum_is_flagged(school: Path) -> None:
    info = board_photos.PhotoInfo("P1", date(2025, 11, 28), "r", False, "")
    with open_store(school) as store:
        assert board_photos.is_stale(
            info, settings(store.conn).photo_max_age_months, date(2026, 11, 28)
        )
        assert not board_photos.is_stale(info, 12, date(2026, 11, 27))
        set_setting(store, Setting.PHOTO_MAX_AGE_MONTHS, "24", operator="office")
        assert not board_photos.is_stale(
            info, settings(store.conn).photo_max_age_months, date(2026, 11, 28)
        )


def test_enrolment_photo_needs_the_recorded_setting(school: Path, tmp_path: Path) -> None:
    path = jpeg_file(tmp_path / "ref.jpg")
    photo = prepare_photo(path, date(2026, 9, 1))
    with open_store(school) as store:
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO face_references (pupil_id, source_sha256, enrolled_at,"
                " enrolled_by) VALUES ('P1', ?, 'now', 'office')",
                (photo.source_sha256,),
            )
        args = {
            "taken_on": photo.taken_on,
            "source_sha256": photo.source_sha256,
            "operator": "office",
        }
        with pytest.raises(board_photos.ReferencePhotoNotAllowed):
            board_photos.add_photo(store, "P1", photo.jpeg, **args)  # type: ignore[arg-type]
        set_setting(store, Setting.REFERENCE_PHOTOS, "yes", operator="head")
        info = board_photos.add_photo(store, "P1", photo.jpeg, **args)  # type: ignore[arg-type]

    assert info.from_reference


def test_import_reports_a_short_line_and_skips_blank_ones(school: Path, tmp_path: Path) -> None:
    path = medical_csv(tmp_path / "short.csv", [{"pupil_id": "P2"}])
    with path.open("a", encoding="utf-8") as f:
        f.write("\n,,,\nP3,Asthma\n")
    with open_store(school) as store, pytest.raises(CsvImportError) as caught:
        import_medical_csv(store, path, operator="office")
    message = str(caught.value)
    assert "line 5: expected 9 fields, found 2" in message
    assert [line for line, _ in caught.value.errors] == [5]  # lines 3 and 4 are blank
