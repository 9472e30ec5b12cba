"""Single consent changes, expiry, the takedown report (from audit entries), leavers,
purge, erasure and the subject access export, without the face models."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from consent import audit, changes, enrolment, registry, takedown
from consent import retention as leavers
from consent.changes import ChangeKind, ConsentChange
from consent.errors import NoChange, NoConsentToChange, UnknownPupil
from consent.export import export_pupil
from consent.registry import Purpose, consent_allows, current_consent, import_pupils_csv
from consent.store import Store
from publishing.republish import RepublishStatus, republish
from tests.support.consent_factories import RegistryCsv, pupil_row

W, P, S, PR, ID = (
    Purpose.WEBSITE,
    Purpose.PRESS,
    Purpose.SOCIAL_MEDIA,
    Purpose.PROSPECTUS,
    Purpose.INTERNAL_DISPLAY,
)


def withdraw(store: Store, pupil_id: str, *purposes: Purpose, **kw: Any) -> Any:
    change = ConsentChange(ChangeKind.WITHDRAW, "letter 12", withdraw=frozenset(purposes), **kw)
    return changes.change_consent(store, pupil_id, change, operator="office")


def grant(store: Store, pupil_id: str, *purposes: Purpose, **kw: Any) -> Any:
    change = ConsentChange(ChangeKind.SET, "slip 7", grant=frozenset(purposes), **kw)
    return changes.change_consent(store, pupil_id, change, operator="office")


# --- consent changes and history ------------------------------------------------------------


def test_withdraw_adds_a_version_and_takes_effect_at_once(imported: Store) -> None:
    before = current_consent(imported.conn, "P001")
    assert before is not None and consent_allows(before, W, date(2025, 1, 1))

    new = withdraw(imported, "P001", W)

    assert new.record_id != before.record_id
    assert new.purposes == before.purposes - {W}
    assert new.consent_date == before.consent_date  # the slip for the rest is unchanged
    assert (new.recorded_by, new.source, new.change_kind) == ("office", "letter 12", "withdraw")
    assert not consent_allows(current_consent(imported.conn, "P001"), W, date(2025, 1, 1))
    assert "P001" not in registry.pupils_with_consent(imported.conn, W, date(2025, 1, 1))


def test_history_shows_every_version_and_what_changed(imported: Store) -> None:
    withdraw(imported, "P001", W)
    grant(imported, "P001", P, consent_date=date(2025, 2, 1), expires_on=date(2025, 7, 31))

    versions = changes.history(imported.conn, "P001")

    assert len(versions) == 3
    assert versions[0].superseded_at and versions[1].superseded_at
    assert versions[2].superseded_at is None
    assert versions[1].changes == {"website": [True, False]}
    assert versions[2].changes == {
        "press": [False, True],
        "consent_date": ["2024-09-01", "2025-02-01"],
        "expires_on": [None, "2025-07-31"],
    }
    assert [v.record.source for v in versions][1:] == ["letter 12", "slip 7"]


def test_every_change_is_audited_and_the_chain_verifies(imported: Store) -> None:
    withdraw(imported, "P001", W)
    grant(imported, "P002", P)

    entries = audit.entries(imported, action="consent_change")

    assert [(e.details["pupil_id"], e.details["kind"]) for e in entries] == [
        ("P001", "withdraw"),
        ("P002", "set"),
    ]
    assert entries[0].details["changed"] == {"website": [True, False]}
    assert entries[0].operator == "office"
    assert audit.verify(imported).ok


def test_unchanged_result_records_nothing(imported: Store) -> None:
    seq = audit.head(imported.conn)[0]
    with pytest.raises(NoChange, match="already says that"):
        withdraw(imported, "P001", P)  # press was never granted
    assert audit.head(imported.conn)[0] == seq


def test_unknown_pupil_and_missing_source_are_refused(imported: Store) -> None:
    with pytest.raises(UnknownPupil):
        withdraw(imported, "P999", W)
    with pytest.raises(Exception, match="--source"):
        changes.change_consent(
            imported,
            "P001",
            ConsentChange(ChangeKind.WITHDRAW, "  ", withdraw=frozenset({W})),
            operator="office",
        )


def test_grant_without_a_slip_is_refused(store: Store, registry_csv: RegistryCsv) -> None:
    store.conn.execute("BEGIN")
    store.conn.execute(
        "INSERT INTO pupils (pupil_id, first_name, last_name, class_name, created_at,"
        " updated_at) VALUES ('P009', 'A', 'B', '3B', 'x', 'x')"
    )
    store.conn.execute("COMMIT")
    with pytest.raises(NoConsentToChange, match="pupils import"):
        grant(store, "P009", W)


def test_withdrawing_biometric_consent_deletes_the_encodings(imported: Store) -> None:
    enrolment.add_reference(
        imported, "P001", np.ones(128), source_sha256="a" * 64, operator="office"
    )
    withdraw(imported, "P001", biometric=False)
    assert enrolment.reference_counts(imported.conn) == {}
    assert audit.entries(imported, action="reference_delete")[-1].details["pupil_id"] == "P001"


# --- expiry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on", "allowed"),
    [(date(2025, 7, 30), True), (date(2025, 7, 31), True), (date(2025, 8, 1), False)],
    ids=["before", "on-the-day", "after"],
)
def test_expired_consent_counts_as_withdrawn(imported: Store, on: date, allowed: bool) -> None:
    grant(imported, "P001", P, consent_date=date(2024, 9, 1), expires_on=date(2025, 7, 31))
    record = current_consent(imported.conn, "P001")
    assert consent_allows(record, W, on) is allowed
    assert ("P001" in registry.pupils_with_consent(imported.conn, W, on)) is allowed


def test_csv_consent_expiry_column_is_optional(store: Store, registry_csv: RegistryCsv) -> None:
    rows = [
        "pupil_id,first_name,last_name,class,website,press,social_media,prospectus,"
        "internal_display,biometric_consent,consent_date,consent_expiry",
        "P001,Amy,Adams,3B,yes,no,no,no,no,no,2024-09-01,2025-07-31",
        "P002,Ben,Brown,3B,yes,no,no,no,no,no,2024-09-01,",
    ]
    path = store.data_dir.parent / "expiry.csv"
    path.write_text("\n".join(rows) + "\n")
    import_pupils_csv(store, path, operator="office")
    first, second = (current_consent(store.conn, p) for p in ("P001", "P002"))
    assert first is not None and first.expires_on == date(2025, 7, 31)
    assert second is not None and second.expires_on is None


def test_an_older_spreadsheet_does_not_undo_a_withdrawal(
    imported: Store, registry_csv: RegistryCsv
) -> None:
    withdraw(imported, "P001", W)
    stale = [
        pupil_row("P001", prospectus="yes"),
        pupil_row("P002", prospectus="yes"),
        pupil_row("P003", prospectus="yes", biometric_consent="no"),
    ]

    result = import_pupils_csv(imported, registry_csv(stale, name="old.csv"), operator="office")

    assert result.kept_newer == ("P001",)
    record = current_consent(imported.conn, "P001")
    assert record is not None and W not in record.purposes
    newer = [pupil_row("P001", prospectus="yes", consent_date="2999-01-01")]
    import_pupils_csv(imported, registry_csv(newer, name="new.csv"), operator="office")
    record = current_consent(imported.conn, "P001")
    assert record is not None and W in record.purposes  # a later signed slip does apply


# --- takedown report (audit entries written as publish writes them) --------------------------


def fake_publish(
    store: Store,
    output: str,
    purpose: Purpose,
    event: str,
    kept: list[str],
    *,
    status: str = "published",
    destination: str | None = None,
) -> int:
    with store.transaction() as conn:
        entry = audit.append(
            conn,
            store.key,
            action="publish" if status == "published" else "withhold",
            operator="teacher-1",
            details={
                "purpose": purpose.value,
                "event": event,
                "destination": destination,
                "publish_date": "2025-03-01",
                "status": status,
                "input": f"/nowhere/{output}.orig.jpg",
                "input_sha256": "b" * 64,
                "output": output if status == "published" else None,
                "output_sha256": output.ljust(64, "0") if status == "published" else None,
                "pupils_kept": kept,
                "consent_records": {p: 1 for p in kept},
                "pupils_blurred": [],
            },
        )
    return entry.seq


def test_takedown_lists_exactly_the_publishes_under_withdrawn_purposes(imported: Store) -> None:
    expected = [
        fake_publish(imported, "a1", W, "Sports day", ["P001"], destination="https://x/news"),
        fake_publish(imported, "a2", ID, "Sports day", ["P001", "P002"]),
    ]
    fake_publish(imported, "b1", PR, "Prospectus", ["P001"])  # still consented
    fake_publish(imported, "c1", W, "Concert", ["P002"])  # another child
    fake_publish(imported, "d1", W, "Play", [])  # P001 blurred
    fake_publish(imported, "e1", W, "Trip", ["P001"], status="withheld")  # never published
    expected.append(fake_publish(imported, "f1", W, "Fair", ["P001"]))
    withdraw(imported, "P001", W, ID)

    items = takedown.takedown_report(imported, "P001", on=date(2025, 4, 1))

    assert [i.audit_seq for i in items] == expected
    assert [(i.output, i.event, i.purpose) for i in items] == [
        ("a1", "Sports day", "website"),
        ("a2", "Sports day", "internal_display"),
        ("f1", "Fair", "website"),
    ]
    assert items[0].destination == "https://x/news"
    assert items[0].operator == "teacher-1" and items[0].publish_date == "2025-03-01"
    narrowed = takedown.takedown_report(imported, "P001", on=date(2025, 4, 1), purposes=[ID])
    assert [i.output for i in narrowed] == ["a2"]
    assert takedown.takedown_report(imported, "P002", on=date(2025, 4, 1)) == []


def test_takedown_after_expiry_and_unknown_pupil(imported: Store) -> None:
    fake_publish(imported, "a1", W, "Sports day", ["P001"])
    grant(imported, "P001", P, consent_date=date(2024, 9, 1), expires_on=date(2025, 3, 31))
    assert takedown.takedown_report(imported, "P001", on=date(2025, 3, 31)) == []
    assert [i.output for i in takedown.takedown_report(imported, "P001", on=date(2025, 4, 1))] == [
        "a1"
    ]
    with pytest.raises(UnknownPupil):
        takedown.takedown_report(imported, "P404")


def test_republish_with_the_original_gone_reports_it_unavailable(
    imported: Store, tmp_path: Path
) -> None:
    fake_publish(imported, "a1", W, "Sports day", ["P001"])
    withdraw(imported, "P001", W)
    items = takedown.takedown_report(imported, "P001")
    outcomes = republish(imported, "P001", items, tmp_path / "out", operator="office")
    assert [(o.status, o.item.output) for o in outcomes] == [(RepublishStatus.UNAVAILABLE, "a1")]


# --- leavers, purge, erasure -------------------------------------------------------------------


def enrol(store: Store, pupil_id: str, seed: int) -> tuple[bytes, bytes]:
    """Enrol a random encoding; return (plaintext bytes, stored ciphertext)."""
    vec = np.random.default_rng(seed).normal(size=128)
    enrolment.add_reference(store, pupil_id, vec, source_sha256=f"{seed:064x}", operator="office")
    (blob,) = store.conn.execute(
        "SELECT t.template FROM face_templates AS t JOIN face_references AS f"
        " ON f.id = t.reference_id WHERE f.pupil_id = ?",
        (pupil_id,),
    ).fetchone()
    return vec.astype("<f8").tobytes(), bytes(blob)


def file_bytes(store: Store) -> bytes:
    return b"".join(
        p.read_bytes() for p in store.data_dir.iterdir() if p.name.startswith("registry.sqlite3")
    )


def test_leaving_deletes_biometrics_at_once_by_default(imported: Store) -> None:
    enrol(imported, "P001", 1)
    enrol(imported, "P002", 2)

    purged = leavers.leave(
        imported, "P001", date(2025, 7, 20), operator="office", today=date(2025, 7, 20)
    )

    assert [(p.pupil_id, p.category, p.deleted) for p in purged] == [("P001", "biometrics", 1)]
    assert enrolment.reference_counts(imported.conn) == {"P002": 1}
    assert audit.entries(imported, action="pupil_leave")[-1].details["left_on"] == "2025-07-20"


def test_purge_honours_the_retention_period(imported: Store) -> None:
    leavers.set_retention(imported, "biometrics", 30, operator="dpo")
    enrol(imported, "P001", 1)
    leavers.leave(imported, "P001", date(2025, 7, 20), operator="office", today=date(2025, 7, 20))
    assert enrolment.reference_counts(imported.conn) == {"P001": 1}

    assert leavers.purge(imported, operator="cron", today=date(2025, 8, 18)) == []
    assert leavers.purge(imported, operator="cron", today=date(2025, 8, 19), dry_run=True)
    assert enrolment.reference_counts(imported.conn) == {"P001": 1}
    purged = leavers.purge(imported, operator="cron", today=date(2025, 8, 19))

    assert [(p.pupil_id, p.category) for p in purged] == [("P001", "biometrics")]
    assert enrolment.reference_counts(imported.conn) == {}
    runs = audit.entries(imported, action="purge")
    assert [len(r.details["deleted"]) for r in runs] == [0, 1]
    assert runs[-1].details["retention_days"]["biometrics"] == 30
    assert audit.verify(imported).ok


def test_purge_leaves_no_encoding_bytes_in_the_database_file(imported: Store) -> None:
    plain, cipher = enrol(imported, "P001", 1)
    other_plain, other_cipher = enrol(imported, "P002", 2)
    leavers.compact(imported)
    assert cipher in file_bytes(imported)  # the search does find what is there

    leavers.leave(imported, "P001", date(2025, 7, 20), operator="office", today=date(2025, 7, 20))

    data = file_bytes(imported)
    assert cipher not in data and cipher[12:40] not in data and plain[:32] not in data
    assert other_cipher in data  # only the leaver's went


def test_expired_biometric_consent_is_purged(imported: Store) -> None:
    enrol(imported, "P001", 1)
    grant(imported, "P001", P, consent_date=date(2024, 9, 1), expires_on=date(2025, 3, 31))
    purged = leavers.purge(imported, operator="cron", today=date(2025, 4, 1))
    assert [(p.pupil_id, p.reason) for p in purged] == [("P001", "consent expired on 2025-03-31")]


def test_forget_erases_names_and_biometrics_and_keeps_pseudonymous_history(
    imported: Store,
) -> None:
    _, cipher = enrol(imported, "P001", 1)
    fake_publish(imported, "a1", W, "Sports day", ["P001"])

    leavers.forget(imported, "P001", operator="dpo", source="letter 9")

    pupil = registry.get_pupil(imported.conn, "P001")
    assert (pupil.first_name, pupil.last_name, pupil.class_name) == ("", "", "")
    record = current_consent(imported.conn, "P001")
    assert record is not None and not record.purposes and not record.biometric_consent
    assert record.change_kind == "erasure"
    data = file_bytes(imported)
    assert b"FirstP001" not in data and b"LastP001" not in data and cipher not in data
    assert b"FirstP002" in data
    assert [i.output for i in takedown.takedown_report(imported, "P001")] == ["a1"]
    assert audit.entries(imported, action="pupil_erase")[-1].details["deleted"] == {"biometrics": 1}
    assert audit.verify(imported).ok


def test_an_erased_pupil_is_not_brought_back_by_an_import(
    imported: Store, registry_csv: RegistryCsv
) -> None:
    leavers.forget(imported, "P001", operator="dpo", source="letter 9")
    rows = [pupil_row("P001", prospectus="yes", consent_date="2999-01-01")]
    result = import_pupils_csv(imported, registry_csv(rows, name="again.csv"), operator="office")
    assert result.kept_newer == ("P001",)
    assert registry.get_pupil(imported.conn, "P001").first_name == ""


def test_plug_in_category_is_purged_with_the_rest(
    imported: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleted: list[str] = []
    category = leavers.DataCategory(
        name="board_photos",
        description="test",
        default_days=0,
        count=lambda conn, pupil_id: 0 if pupil_id in deleted else 1,
        delete=lambda conn, key, pupil_id, operator, reason: deleted.append(pupil_id) or 1,
    )
    monkeypatch.setitem(leavers.CATEGORIES, "board_photos", category)
    purged = leavers.leave(
        imported, "P002", date(2025, 7, 20), operator="o", today=date(2025, 7, 20)
    )
    assert [p.category for p in purged] == ["board_photos"]
    assert deleted == ["P002"]


# --- subject access export ------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_export_holds_history_photos_and_the_fact_of_biometrics(
    imported: Store, tmp_path: Path
) -> None:
    plain, _ = enrol(imported, "P001", 1)
    published = tmp_path / "web"
    published.mkdir()
    photo = published / "sports-day-0001.jpg"
    photo.write_bytes(b"redacted jpeg")
    with imported.transaction() as conn:
        audit.append(
            conn,
            imported.key,
            action="publish",
            operator="t",
            details={
                "purpose": "website",
                "event": "Sports day",
                "status": "published",
                "output": photo.name,
                "output_sha256": hashlib.sha256(photo.read_bytes()).hexdigest(),
                "pupils_kept": ["P001"],
                "pupils_blurred": [],
            },
        )
    withdraw(imported, "P001", W)

    result = export_pupil(
        imported, "P001", tmp_path / "sar", operator="dpo", photo_folders=[published]
    )

    folder = result.folder
    assert mode(folder) == 0o700
    assert all(mode(p) == 0o600 for p in folder.rglob("*") if p.is_file())
    assert json.loads((folder / "pupil.json").read_text())["first_name"] == "FirstP001"
    assert len(json.loads((folder / "consent-history.json").read_text())) == 2
    photos = json.loads((folder / "published-photos.json").read_text())
    assert [(p["output"], p["face_shown"]) for p in photos] == [(photo.name, True)]
    assert (folder / photos[0]["included_as"]).read_bytes() == b"redacted jpeg"
    bio = json.loads((folder / "biometrics.json").read_text())
    assert bio["face_encodings_held"] == 1
    everything = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert plain[:32] not in everything
    assert audit.entries(imported, action="subject_access_export")[-1].details["pupil_id"] == "P001"


def test_transfer_export_omits_biometrics(imported: Store, tmp_path: Path) -> None:
    enrol(imported, "P001", 1)
    result = export_pupil(imported, "P001", tmp_path / "t", operator="dpo", transfer=True)
    names = sorted(p.name for p in result.folder.iterdir())
    assert names == ["README.txt", "consent-history.json", "pupil.json"]
    assert "never transferred" in (result.folder / "README.txt").read_text()
    with pytest.raises(Exception, match="already exists"):
        export_pupil(imported, "P001", tmp_path / "t", operator="dpo", transfer=True)
