"""Templates per recogniser, encrypted face crops and migration 8 (issue 13)."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from consent import audit, crypto, enrolment, store
from consent.enrolment import NewReference
from consent.errors import NoBiometricConsent, TamperedData
from consent.registry import import_pupils_csv
from consent.store import Store, open_store
from tests.support.consent_factories import RegistryCsv, pupil_row


def sha(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def png(colour: tuple[int, int, int], side: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buf, format="PNG")
    return buf.getvalue()


def new_ref(
    seed: int, *, recogniser: str = "sface", crop: bytes | None = None, **kw
) -> NewReference:
    vec = np.random.default_rng(seed).normal(size=128)
    return NewReference(
        encoding=vec,
        source_sha256=sha(f"photo-{seed}"),
        recogniser=recogniser,
        version=f"{recogniser}-v1",
        crop_png=crop if crop is not None else png((seed * 20 % 256, 10, 10)),
        quality={"grade": "good", "size_px": 120.0, "crop_face": [64.0, 64.0, 128.0, 128.0]},
        **kw,
    )


def test_templates_of_each_recogniser_stay_apart(imported: Store) -> None:
    ref = enrolment.add_reference(imported, "P001", new_ref(1), operator="office")
    dlib = np.random.default_rng(9).normal(size=128)
    assert enrolment.add_template(
        imported, ref, dlib, recogniser="dlib", version="d1", operator="office"
    )
    sface = enrolment.load_gallery(imported, recogniser="sface")
    assert np.array_equal(sface["P001"][0], new_ref(1).encoding)
    assert np.array_equal(enrolment.load_gallery(imported, recogniser="dlib")["P001"][0], dlib)
    assert enrolment.load_gallery(imported, recogniser="fusion") == {}
    # The same version again changes nothing and is not audited twice.
    assert not enrolment.add_template(
        imported, ref, dlib, recogniser="dlib", version="d1", operator="office"
    )
    assert len(audit.entries(imported, action="reference_encode")) == 1


def test_first_template_fixes_the_data_directory_recogniser(imported: Store) -> None:
    assert enrolment.recogniser_setting(imported.conn) is None
    enrolment.add_reference(imported, "P001", new_ref(1, recogniser="sface"), operator="o")
    enrolment.add_reference(imported, "P002", new_ref(2, recogniser="dlib"), operator="o")
    assert enrolment.recogniser_setting(imported.conn) == "sface"
    enrolment.set_recogniser(imported, "dlib", operator="dpo")
    assert enrolment.recogniser_setting(imported.conn) == "dlib"
    (entry,) = audit.entries(imported, action="recogniser_set")
    assert entry.details == {"recogniser": "dlib", "was": "sface"}
    assert entry.operator == "dpo"


def test_template_moved_to_another_recogniser_row_fails(imported: Store) -> None:
    ref = enrolment.add_reference(imported, "P001", new_ref(1), operator="o")
    enrolment.add_template(
        imported, ref, np.ones(128), recogniser="dlib", version="d1", operator="o"
    )
    with sqlite3.connect(imported.db_path) as plain:
        plain.execute(
            "UPDATE face_templates SET template = (SELECT template FROM face_templates"
            " WHERE recogniser = 'sface') WHERE recogniser = 'dlib'"
        )
    plain.close()
    with pytest.raises(TamperedData):
        enrolment.load_gallery(imported, recogniser="dlib")


def test_crop_is_encrypted_and_decrypts_for_its_pupil_only(imported: Store) -> None:
    crop = png((200, 30, 40), side=48)
    ref = enrolment.add_reference(imported, "P001", new_ref(1, crop=crop), operator="o")
    enrolment.add_reference(imported, "P002", new_ref(2), operator="o")
    (got,) = enrolment.reference_crops(imported, "P001")
    assert got.reference_id == ref
    assert got.pixels.shape == (48, 48, 3) and tuple(got.pixels[0, 0]) == (200, 30, 40)
    assert got.face == [64.0, 64.0, 128.0, 128.0]
    assert enrolment.reference_crop_png(imported, "P001", ref) == crop
    imported.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert crop[-40:] not in imported.db_path.read_bytes()
    with sqlite3.connect(imported.db_path) as plain:
        plain.execute(
            "UPDATE face_references SET crop = (SELECT crop FROM face_references"
            " WHERE pupil_id = 'P001') WHERE pupil_id = 'P002'"
        )
    plain.close()
    with pytest.raises(TamperedData):
        enrolment.reference_crops(imported, "P002")


def test_crops_need_biometric_consent(imported: Store) -> None:
    with pytest.raises(NoBiometricConsent):
        enrolment.reference_crops(imported, "P003")


def test_purge_removes_crops_and_every_template(imported: Store, registry_csv: RegistryCsv) -> None:
    ref = enrolment.add_reference(imported, "P001", new_ref(1), operator="o")
    enrolment.add_template(
        imported, ref, np.ones(128), recogniser="dlib", version="d", operator="o"
    )
    rows = [pupil_row("P001", prospectus="yes", biometric_consent="no"), pupil_row("P002")]
    import_pupils_csv(imported, registry_csv(rows), operator="office")
    left = imported.conn.execute("SELECT COUNT(*) FROM face_templates").fetchone()[0]
    crops = imported.conn.execute("SELECT COUNT(*) FROM face_references").fetchone()[0]
    assert (left, crops) == (0, 0)


def test_status_counts_usable_recent_references(imported: Store) -> None:
    today = date(2026, 12, 1)
    for seed, taken in [(1, date(2026, 10, 1)), (2, date(2025, 6, 1))]:
        enrolment.add_reference(imported, "P001", new_ref(seed, taken_on=taken), operator="o")
    info = enrolment.pupil_references(imported.conn, "sface")["P001"]
    assert (info.matching, info.current(today)) == (2, 1)
    assert info.status(today) == "add 2 more recent photos; 1 older than a year"
    assert [r.stale(today) for r in info.references] == [False, True]
    other = enrolment.pupil_references(imported.conn, "dlib")["P001"]
    assert other.status(today) == "needs re-encoding (run: photoconsent enroll --reencode)"


def test_three_recent_references_are_enough(imported: Store) -> None:
    for seed in (1, 2, 3):
        enrolment.add_reference(
            imported, "P001", new_ref(seed, taken_on=date(2026, 11, 1)), operator="o"
        )
    info = enrolment.pupil_references(imported.conn, "sface")["P001"]
    assert info.status(date(2026, 12, 1)) == "ok"


def legacy_dir(tmp_path: Path, registry_csv: RegistryCsv, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory at schema 7 (before recognisers) with one dlib encoding for P001,
    stored as photoconsent then stored it."""
    data_dir = tmp_path / "old"
    monkeypatch.setattr(store, "MIGRATIONS", store.MIGRATIONS[:7])
    store.init_data_dir(data_dir)
    with open_store(data_dir) as old:
        import_pupils_csv(old, registry_csv([pupil_row("P001"), pupil_row("P002")]), operator="o")
        vec = np.arange(128, dtype="<f8") / 128
        with old.transaction() as conn:
            conn.execute(
                "INSERT INTO face_references (pupil_id, encoding, source_sha256, enrolled_at,"
                " enrolled_by) VALUES ('P001', ?, ?, '2025-09-01T10:00:00Z', 'office')",
                (crypto.encrypt(old.key, vec.tobytes(), b"encoding:P001"), sha("old")),
            )
    monkeypatch.undo()
    return data_dir


def test_migration_8_keeps_dlib_templates_and_matching(
    tmp_path: Path, registry_csv: RegistryCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = legacy_dir(tmp_path, registry_csv, monkeypatch)
    with open_store(data_dir) as migrated:
        assert store.schema_version(migrated.conn) == len(store.MIGRATIONS)
        assert enrolment.recogniser_setting(migrated.conn) == "dlib"
        gallery = enrolment.load_gallery(migrated, recogniser="dlib")
        assert np.array_equal(gallery["P001"][0], np.arange(128) / 128)
        info = enrolment.pupil_references(migrated.conn, "sface")["P001"]
        assert info.references[0].enrolled_at == "2025-09-01T10:00:00Z"
        assert info.status(date(2026, 12, 1)) == "needs re-enrolling (new reference photos)"
        assert enrolment.reference_crops(migrated, "P001") == []
        # The foreign key from the templates points at the rebuilt table.
        fks = migrated.conn.execute("PRAGMA foreign_key_list(face_templates)").fetchall()
        assert [row["table"] for row in fks] == ["face_references"]


def test_new_data_directory_has_no_recogniser_until_first_enrolment(imported: Store) -> None:
    assert enrolment.recogniser_setting(imported.conn) is None


def test_subject_access_copy_holds_the_face_crops_not_the_templates(
    imported: Store, tmp_path: Path
) -> None:
    from consent.export import export_pupil

    crop = png((10, 200, 10), side=40)
    enrolment.add_reference(imported, "P001", new_ref(1, crop=crop), operator="o")
    result = export_pupil(imported, "P001", tmp_path / "sar", operator="dpo")
    assert "reference-faces/" in result.files
    assert (result.folder / "reference-faces" / "reference-1.png").read_bytes() == crop
    bio = (result.folder / "biometrics.json").read_text()
    assert '"templates_of": [\n        "sface"\n      ]' in bio
    template = new_ref(1).encoding.astype("<f8").tobytes()
    everything = b"".join(p.read_bytes() for p in result.folder.rglob("*") if p.is_file())
    assert template[:32] not in everything
    moved = export_pupil(imported, "P001", tmp_path / "t", operator="dpo", transfer=True)
    assert not (moved.folder / "reference-faces").exists()


@pytest.mark.parametrize(
    ("version", "matching", "status"),
    [
        (None, 3, "ok"),  # versions not asked about: every sface template counts
        ("sface-v1", 3, "ok"),
        ("sface-v2", 0, "needs re-encoding (run: photoconsent enroll --reencode)"),
    ],
)
def test_a_template_of_another_version_needs_re_encoding(
    imported: Store, version: str | None, matching: int, status: str
) -> None:
    for seed in (1, 2, 3):
        enrolment.add_reference(
            imported, "P001", new_ref(seed, taken_on=date(2026, 11, 1)), operator="o"
        )
    info = enrolment.pupil_references(imported.conn, "sface", version=version)["P001"]
    assert (info.matching, info.status(date(2026, 12, 1))) == (matching, status)
    # Matching still has the old templates until they are made again.
    assert len(enrolment.load_gallery(imported, recogniser="sface")["P001"]) == 3


def test_some_templates_of_an_older_version_still_need_re_encoding(imported: Store) -> None:
    refs = [
        enrolment.add_reference(
            imported, "P001", new_ref(seed, taken_on=date(2026, 11, 1)), operator="o"
        )
        for seed in (1, 2, 3)
    ]
    enrolment.add_template(
        imported, refs[0], np.ones(128), recogniser="sface", version="sface-v2", operator="o"
    )
    info = enrolment.pupil_references(imported.conn, "sface", version="sface-v2")["P001"]
    assert (info.matching, info.reencodable) == (1, 2)
    assert (
        info.status(date(2026, 12, 1)) == "needs re-encoding (run: photoconsent enroll --reencode)"
    )
    # Another recogniser's templates are not judged by this version.
    dlib = enrolment.pupil_references(imported.conn, "dlib", version="sface-v2")["P001"]
    assert dlib.reencodable == 3
