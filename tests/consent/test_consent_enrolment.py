from __future__ import annotations

import hashlib
import sqlite3

import numpy as np
import pytest

from consent import audit
from consent.enrolment import add_reference, delete_references, load_gallery, reference_counts
from consent.errors import NoBiometricConsent, TamperedData, UnknownPupil
from consent.registry import import_pupils_csv
from consent.store import Store
from tests.support.consent_factories import RegistryCsv, pupil_row


def encoding(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=128)


def sha(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def enrol(store: Store, pupil_id: str, seed: int) -> int:
    return add_reference(
        store, pupil_id, encoding(seed), source_sha256=sha(f"{pupil_id}-{seed}"), operator="t"
    )


def raw_database_bytes(store: Store) -> bytes:
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = store.db_path.with_name(store.db_path.name + "-wal")
    return store.db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_no_biometric_consent_is_refused(imported: Store) -> None:
    with pytest.raises(NoBiometricConsent, match="P003 has no biometric consent"):
        enrol(imported, "P003", 1)
    assert reference_counts(imported.conn) == {}


def test_unknown_pupil_is_refused(imported: Store) -> None:
    with pytest.raises(UnknownPupil):
        enrol(imported, "P404", 1)


def test_encodings_round_trip_exactly(imported: Store) -> None:
    enrol(imported, "P001", 1)
    enrol(imported, "P001", 2)
    enrol(imported, "P002", 3)
    gallery = load_gallery(imported)
    assert list(gallery) == ["P001", "P002"]
    assert gallery["P001"].dtype == np.float64
    assert np.array_equal(gallery["P001"], np.stack([encoding(1), encoding(2)]))
    assert np.array_equal(gallery["P002"], encoding(3)[None, :])
    assert reference_counts(imported.conn) == {"P001": 2, "P002": 1}


def test_gallery_can_be_limited_to_some_pupils(imported: Store) -> None:
    enrol(imported, "P001", 1)
    enrol(imported, "P002", 2)
    assert list(load_gallery(imported, iter(["P002", "P404"]))) == ["P002"]


def test_same_photo_is_not_enrolled_twice(imported: Store) -> None:
    first = enrol(imported, "P001", 1)
    assert enrol(imported, "P001", 1) == first
    assert reference_counts(imported.conn) == {"P001": 1}
    assert len(audit.entries(imported, action="reference_add")) == 1


def test_audit_entry_holds_no_vector(imported: Store) -> None:
    reference_id = enrol(imported, "P001", 1)
    (entry,) = audit.entries(imported, action="reference_add")
    assert entry.details == {
        "pupil_id": "P001",
        "reference_id": reference_id,
        "source_sha256": sha("P001-1"),
        "recogniser": "dlib",
        "recogniser_version": "dlib_face_recognition_resnet_model_v1",
        "crop_kept": False,
    }


@pytest.mark.parametrize(
    "needle",
    [lambda v: v.tobytes(), lambda v: v[:2].tobytes(), lambda v: v[-2:].tobytes()],
    ids=["whole", "head", "tail"],
)
def test_database_file_holds_no_plaintext_encoding(imported: Store, needle) -> None:
    enrol(imported, "P001", 7)
    assert needle(encoding(7)) not in raw_database_bytes(imported)


def test_raw_byte_search_finds_plaintext_when_present(imported: Store) -> None:
    # Control for the test above: the same search does find unencrypted floats.
    with imported.transaction() as conn:
        conn.execute("CREATE TABLE leak (b BLOB)")
        conn.execute("INSERT INTO leak VALUES (?)", (encoding(7).tobytes(),))
    assert encoding(7)[:2].tobytes() in raw_database_bytes(imported)


def test_ciphertext_moved_to_another_pupil_fails(imported: Store) -> None:
    enrol(imported, "P001", 1)
    enrol(imported, "P002", 2)
    with sqlite3.connect(imported.db_path) as plain:
        plain.execute(
            "UPDATE face_templates SET template = (SELECT t.template FROM face_templates AS t"
            " JOIN face_references AS f ON f.id = t.reference_id WHERE f.pupil_id = 'P001')"
            " WHERE reference_id = (SELECT id FROM face_references WHERE pupil_id = 'P002')"
        )
    plain.close()
    with pytest.raises(TamperedData, match="copied from another row"):
        load_gallery(imported)


def test_withdrawn_biometric_consent_deletes_and_omits(
    imported: Store, registry_csv: RegistryCsv
) -> None:
    enrol(imported, "P001", 1)
    enrol(imported, "P002", 2)
    rows = [
        pupil_row("P001", prospectus="yes", biometric_consent="no"),
        pupil_row("P002", prospectus="yes"),
    ]
    import_pupils_csv(imported, registry_csv(rows), operator="office")
    assert list(load_gallery(imported)) == ["P002"]
    assert reference_counts(imported.conn) == {"P002": 1}
    (deleted,) = audit.entries(imported, action="reference_delete")
    assert deleted.details == {
        "pupil_id": "P001",
        "deleted": 1,
        "reason": "biometric consent withdrawn",
    }
    assert audit.verify(imported).ok


def test_gallery_skips_pupils_without_current_biometric_consent(imported: Store) -> None:
    # Even if references were left behind, load_gallery itself checks current consent.
    enrol(imported, "P001", 1)
    with sqlite3.connect(imported.db_path) as plain:
        plain.execute("UPDATE consent_records SET biometric_consent = 0 WHERE pupil_id = 'P001'")
    plain.close()
    assert load_gallery(imported) == {}


def test_delete_references(imported: Store) -> None:
    enrol(imported, "P001", 1)
    enrol(imported, "P001", 2)
    assert delete_references(imported, "P001", operator="head") == 2
    assert reference_counts(imported.conn) == {}
    (entry,) = audit.entries(imported, action="reference_delete")
    assert entry.operator == "head" and entry.details["deleted"] == 2
    with pytest.raises(UnknownPupil):
        delete_references(imported, "P404", operator="head")


@pytest.mark.parametrize(
    ("value", "sha256"),
    [
        (np.zeros(127), sha("x")),
        (np.zeros((1, 128)), sha("x")),
        (np.zeros(128, dtype=np.float32), sha("x")),
        (np.full(128, np.nan), sha("x")),
        (np.zeros(128), "not-a-hash"),
        (np.zeros(128), sha("x").upper()),
    ],
    ids=["short", "2d", "float32", "nan", "bad-sha", "upper-sha"],
)
def test_bad_input_is_refused(imported: Store, value: np.ndarray, sha256: str) -> None:
    with pytest.raises(ValueError):
        add_reference(imported, "P001", value, source_sha256=sha256, operator="t")
    assert reference_counts(imported.conn) == {}
