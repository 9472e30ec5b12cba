"""`unblur_as_named` over several faces: one pupil, one audit row, and a child never kept
twice in one photo (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from consent import audit
from consent.store import Store
from publishing.review.batch import ReviewError, Verdict, load_batch
from publishing.review.by_pupil import unblur_as_named
from tests.support.consent_factories import RegistryCsv
from tests.support.pupil_batch import BATCH_ID, add_pupil_batch


@pytest.fixture
def store(store: Store, tmp_path: Path, registry_csv: RegistryCsv) -> Store:
    add_pupil_batch(store, tmp_path, registry_csv)
    return store


def verdicts(store: Store, *face_ids: str) -> list[tuple[Verdict | None, str | None]]:
    batch = load_batch(store, BATCH_ID)
    return [(batch.face(f).verdict, batch.face(f).as_pupil) for f in face_ids]


def test_faces_of_two_photos_are_unblurred_in_one_audited_verdict(store: Store) -> None:
    _, pupil = unblur_as_named(
        store, BATCH_ID, ["F0004", "F0007", "F0004"], "amir", reviewer="Ms Head"
    )
    assert pupil.pupil_id == "P003"
    assert verdicts(store, "F0004", "F0007") == [(Verdict.UNBLURRED, "P003")] * 2
    [entry] = audit.entries(store, action="review_unblurred")
    assert entry.details["faces"] == ["F0004", "F0007"]  # the repeated ID counted once


@pytest.mark.parametrize(
    ("face_ids", "words"),
    [
        (["F0003", "F0004"], "F0003 and F0004 are in the same photo"),
        (["F0002", "F0003", "F0004", "F0007"], "F0002, F0003 and F0004 are in the same"),
        (["F0004", "F9999"], "No face 'F9999'"),
        ([], "Tick at least one face"),
    ],
)
def test_a_refused_unblur_records_nothing(store: Store, face_ids: list[str], words: str) -> None:
    with pytest.raises(ReviewError, match=words):
        unblur_as_named(store, BATCH_ID, face_ids, "amir", reviewer="Ms Head")
    assert verdicts(store, "F0002", "F0003", "F0004", "F0007") == [(None, None)] * 4
    assert audit.entries(store, action="review_unblurred") == []


def test_a_face_beside_one_already_unblurred_as_the_pupil_is_refused(store: Store) -> None:
    unblur_as_named(store, BATCH_ID, ["F0004"], "amir", reviewer="Ms Head")
    with pytest.raises(ReviewError, match="F0003 is in the same photo as F0004"):
        unblur_as_named(store, BATCH_ID, ["F0007", "F0003"], "amir", reviewer="Ms Head")
    assert verdicts(store, "F0003", "F0007") == [(None, None)] * 2
    # Re-naming the same face, or naming another child beside it, is allowed.
    unblur_as_named(store, BATCH_ID, ["F0003", "F0007"], "amy br", reviewer="Ms Head")
    assert verdicts(store, "F0003", "F0007") == [(Verdict.UNBLURRED, "P002")] * 2
