"""Review by pupil through the library, on a hand-made batch (exact; no face models):
grouping, approve all but one, reject the odd one out, the name picker, and what a
reviewed uncertain face is published as."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consent import audit
from consent.registry import list_pupils
from consent.store import Store
from pipeline.loading import load_image
from pipeline.matching import Decision, Reason
from publishing.review.batch import (
    ReviewError,
    Verdict,
    batch_path,
    load_batch,
    record_verdict,
    reviewed_decider,
)
from publishing.review.by_pupil import (
    FaceKind,
    approve_pupil,
    batch_pupils,
    group_by_pupil,
    jpeg_thumbnail,
    reject_face,
    unblur_as_named,
)
from publishing.review.picker import AmbiguousName, NameNotFound, pick_pupil, picker_labels
from tests.support.consent_factories import RegistryCsv
from tests.support.pupil_batch import BATCH_ID, add_pupil_batch


@pytest.fixture
def store(store: Store, tmp_path: Path, registry_csv: RegistryCsv) -> Store:
    add_pupil_batch(store, tmp_path, registry_csv)
    return store


def grid(store: Store) -> list[tuple[str, list[tuple[str, FaceKind, Verdict | None]]]]:
    batch = load_batch(store, BATCH_ID)
    return [
        (g.pupil_id, [(f.face.face_id, f.kind, f.face.verdict) for f in g.faces])
        for g in group_by_pupil(batch, batch_pupils(store, batch))
    ]


U, M, N = FaceKind.UNCERTAIN, FaceKind.MATCHED, FaceKind.NAMED


def test_each_pupil_has_their_kept_and_uncertain_faces_by_photo_then_position(store):
    # Adams before Brown; within a photo left to right (F0002 is left of F0001); the
    # blurred-by-matching faces and the withheld photo's face are in no grid.
    assert grid(store) == [
        ("P001", [("F0002", U, None), ("F0001", M, None), ("F0006", U, None)]),
        ("P002", [("F0003", U, None), ("F0005", M, None)]),
    ]


def test_without_names_pupils_are_ordered_by_id(store):
    groups = group_by_pupil(load_batch(store, BATCH_ID))
    assert [g.pupil_id for g in groups] == ["P001", "P002"]
    assert groups[0].pupil is None and groups[0].name is None


def test_the_grid_names_the_pupil_and_counts_the_kinds(store):
    batch = load_batch(store, BATCH_ID)
    adams = group_by_pupil(batch, batch_pupils(store, batch))[0]
    assert adams.name == "Zoe Adams" and adams.pupil.class_name == "2A"
    assert (adams.count(M), adams.count(U), len(adams.awaiting)) == (1, 2, 3)


def test_the_candidate_is_saved_and_an_old_batch_without_it_still_loads(store):
    assert load_batch(store, BATCH_ID).face("F0002").candidate_id == "P001"
    path = batch_path(store, BATCH_ID)
    raw = json.loads(path.read_text())
    for photo in raw["photos"]:
        for face in photo["faces"]:
            del face["candidate_id"]
    path.write_text(json.dumps(raw))
    old = load_batch(store, BATCH_ID)
    face = old.face("F0002")
    assert face.candidate_id is None and not face.approvable
    # Without its candidate an uncertain face is in nobody's grid: blurred, as before.
    assert [g.pupil_id for g in group_by_pupil(old)] == ["P001", "P002"]
    assert "F0002" not in [f.face.face_id for f in group_by_pupil(old)[0].faces]


def test_approve_all_except_one(store):
    approved = approve_pupil(store, BATCH_ID, "P001", reviewer="Ms Head", except_faces=["F0002"])
    assert approved == ["F0001", "F0006"]
    A = Verdict.APPROVED
    assert grid(store)[0] == ("P001", [("F0002", U, None), ("F0001", M, A), ("F0006", U, A)])
    assert grid(store)[1][1][0] == ("F0003", U, None)  # another pupil's faces are untouched
    [entry] = audit.entries(store, action="review_approved")
    assert entry.operator == "Ms Head"
    assert entry.details == {
        "batch": BATCH_ID,
        "faces": ["F0001", "F0006"],
        "pupils": ["P001"],
        "by_pupil": "P001",
        "excepted": ["F0002"],
    }
    batch = load_batch(store, BATCH_ID)
    assert {batch.face(f).reviewer for f in approved} == {"Ms Head"}
    assert audit.verify(store).ok


def test_reject_the_odd_one_out_then_approve_all(store):
    reject_face(store, BATCH_ID, "F0002", reviewer="Mr Deputy")
    assert approve_pupil(store, BATCH_ID, "P001", reviewer="Ms Head") == ["F0001", "F0006"]
    assert [v for _, _, v in grid(store)[0][1]] == [
        Verdict.REJECTED,
        Verdict.APPROVED,
        Verdict.APPROVED,
    ]
    [rejected] = audit.entries(store, action="review_rejected")
    assert (rejected.operator, rejected.details["faces"]) == ("Mr Deputy", ["F0002"])
    assert rejected.details["pupils"] == ["P001"]
    with pytest.raises(ReviewError, match="Nothing of this pupil's"):
        approve_pupil(store, BATCH_ID, "P001", reviewer="Ms Head")


def test_two_faces_of_one_photo_are_never_both_approved_as_one_pupil(store):
    # F0002 (uncertain) and F0001 (kept) are both proposed as Zoe Adams in photo a.
    batch = load_batch(store, BATCH_ID)
    assert group_by_pupil(batch)[0].same_photo() == [["F0002", "F0001"]]
    with pytest.raises(ReviewError, match="F0001 and F0002 are in the same photo"):
        approve_pupil(store, BATCH_ID, "P001", reviewer="Ms Head")
    record_verdict(store, BATCH_ID, ["F0001"], Verdict.APPROVED, reviewer="Ms Head")
    with pytest.raises(ReviewError, match="same photo"):
        record_verdict(store, BATCH_ID, ["F0002"], Verdict.APPROVED, reviewer="Ms Head")
    with pytest.raises(ReviewError, match="same photo"):
        unblur_as_named(store, BATCH_ID, ["F0004"], "zo ad 2a", reviewer="Ms Head")
    after = load_batch(store, BATCH_ID)
    assert [after.face(f).verdict for f in ("F0002", "F0004")] == [None, None]
    assert len(audit.entries(store, action="review_approved")) == 1


def test_a_batch_edited_to_keep_one_pupil_twice_keeps_neither(store):
    path = batch_path(store, BATCH_ID)
    raw = json.loads(path.read_text())
    for face in raw["photos"][0]["faces"][:2]:  # F0001 and F0002, both as P001
        face["verdict"], face["reviewer"] = "approved", "someone"
    path.write_text(json.dumps(raw))
    d = decisions(store, 0, permitted={"P001"})
    assert [(d[f].decision, d[f].reason) for f in ("F0001", "F0002")] == [
        (Decision.BLURRED, Reason.DUPLICATE)
    ] * 2


def test_a_mistyped_exception_approves_nothing(store):
    with pytest.raises(ReviewError, match="F0009 not in this pupil's faces"):
        approve_pupil(store, BATCH_ID, "P001", reviewer="Ms Head", except_faces=["F0009"])
    with pytest.raises(ReviewError, match="F0005 not in this pupil's faces"):
        approve_pupil(store, BATCH_ID, "P001", reviewer="Ms Head", except_faces=["F0005"])
    assert all(v is None for _, _, v in grid(store)[0][1])
    assert audit.entries(store, action="review_approved") == []


def test_a_pupil_without_faces_has_no_grid(store):
    with pytest.raises(ReviewError, match="No face"):
        approve_pupil(store, BATCH_ID, "P003", reviewer="Ms Head")


def test_only_kept_and_uncertain_faces_take_approve(store):
    record_verdict(store, BATCH_ID, ["F0002"], Verdict.APPROVED, reviewer="Ms Head")
    with pytest.raises(ReviewError, match="un-blur it"):
        record_verdict(store, BATCH_ID, ["F0004"], Verdict.APPROVED, reviewer="Ms Head")


def decisions(store, photo_index: int, permitted: set[str]):
    batch = load_batch(store, BATCH_ID)
    path = Path(batch.photos[photo_index].input)
    return {
        f.face_id: d
        for f, d in zip(
            batch.photos[photo_index].faces,
            reviewed_decider(batch, permitted)(path, load_image(path)),
            strict=True,
        )
    }


def test_an_approved_uncertain_face_is_kept_as_its_candidate_if_consent_allows(store):
    approve_pupil(store, BATCH_ID, "P001", reviewer="Ms Head", except_faces=["F0001", "F0006"])
    approve_pupil(store, BATCH_ID, "P002", reviewer="Ms Head")
    a = decisions(store, 0, permitted={"P001"})  # P002: no website consent on the day
    assert (a["F0002"].decision, a["F0002"].reason, a["F0002"].pupil_id) == (
        Decision.KEPT,
        Reason.APPROVED,
        "P001",
    )
    assert (a["F0003"].decision, a["F0003"].reason) == (Decision.BLURRED, Reason.NO_CONSENT)
    assert (a["F0001"].decision, a["F0001"].reason) == (Decision.BLURRED, Reason.NOT_APPROVED)
    assert a["F0004"].decision is Decision.BLURRED
    b = decisions(store, 1, permitted={"P001"})
    # Not approved: blurred, still "uncertain", naming nobody as recognised.
    assert (b["F0006"].decision, b["F0006"].reason) == (Decision.BLURRED, Reason.UNCERTAIN)
    assert (b["F0006"].pupil_id, b["F0006"].candidate_id) == (None, "P001")


def test_a_rejected_uncertain_face_is_blurred(store):
    reject_face(store, BATCH_ID, "F0002", reviewer="Ms Head")
    d = decisions(store, 0, permitted={"P001"})["F0002"]
    assert (d.decision, d.reason, d.pupil_id) == (Decision.BLURRED, Reason.REJECTED, None)


@pytest.mark.parametrize(
    ("typed", "pupil_id"),
    [
        ("amy", "P002"),
        ("Amir", "P003"),
        ("zo ad 2a", "P001"),
        ("Zoe Adams (2A)", "P001"),  # a picker label, as the served page's list offers it
        ("ZOË ADAMSON", "P004"),  # case and accents do not matter
        ("  ad  5d ", "P004"),
    ],
)
def test_the_name_picker_finds_a_pupil_by_a_few_letters(store, typed, pupil_id):
    assert pick_pupil(list_pupils(store.conn), typed).pupil_id == pupil_id


@pytest.mark.parametrize(
    ("typed", "fits"),
    [("am", {"P002", "P003"}), ("zoe adams", {"P001", "P004"}), ("brown", {"P002", "P003"})],
)
def test_the_name_picker_refuses_an_ambiguous_pick(store, typed, fits):
    with pytest.raises(AmbiguousName, match=f"fit {len(fits)} pupils") as caught:
        pick_pupil(list_pupils(store.conn), typed)
    assert {p.pupil_id for p in caught.value.matches} == fits
    assert "Zoe" not in str(caught.value) and "Amy" not in str(caught.value)  # no names leak


@pytest.mark.parametrize(
    ("typed", "message"),
    [("z", "at least 2 letters"), ("", "at least 2"), ("qq", "No pupil"), ("P001", "No pupil")],
)
def test_the_name_picker_does_not_guess(store, typed, message):
    with pytest.raises(NameNotFound, match=message):
        pick_pupil(list_pupils(store.conn), typed)


def test_picker_labels_tell_apart_namesakes_in_one_class(store):
    from consent.registry import Pupil

    twins = [Pupil("X1", "Sam", "Lee", "1A"), Pupil("X2", "Sam", "Lee", "1A")]
    labels = picker_labels([*twins, Pupil("X3", "Sam", "Lee", "2B")])
    assert list(labels) == ["Sam Lee (1A) X1", "Sam Lee (1A) X2", "Sam Lee (2B)"]
    assert pick_pupil(twins, "Sam Lee (1A) X2").pupil_id == "X2"
    with pytest.raises(AmbiguousName):
        pick_pupil(twins, "sam lee")


def test_unblur_by_name_records_the_pupil_and_audits_it(store):
    batch, pupil = unblur_as_named(store, BATCH_ID, ["F0004"], "amir", reviewer="Ms Head")
    assert pupil.pupil_id == "P003"
    face = load_batch(store, BATCH_ID).face("F0004")
    assert (face.verdict, face.as_pupil, face.reviewer) == (Verdict.UNBLURRED, "P003", "Ms Head")
    [entry] = audit.entries(store, action="review_unblurred")
    assert entry.details["pupils"] == ["P003"] and entry.operator == "Ms Head"
    # Now in Amir's grid, as named by the reviewer (not awaiting anything).
    assert ("P003", [("F0004", N, Verdict.UNBLURRED)]) in grid(store)


def test_unblur_by_an_ambiguous_name_records_nothing(store):
    with pytest.raises(AmbiguousName):
        unblur_as_named(store, BATCH_ID, ["F0004"], "zoe", reviewer="Ms Head")
    assert load_batch(store, BATCH_ID).face("F0004").verdict is None
    assert audit.entries(store, action="review_unblurred") == []


def test_jpeg_thumbnail_fits_the_side():
    import io

    import numpy as np
    from PIL import Image

    data = jpeg_thumbnail(np.full((300, 150, 3), 128, np.uint8), side=100)
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("JPEG", (50, 100))
