"""Human review through the library: nothing is kept clear until a named person approves,
and in no-biometrics mode no face is ever encoded."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from consent import audit, registry
from consent.enrolment import enrol
from consent.registry import Purpose
from consent.store import Store
from pipeline.errors import PipelineError
from pipeline.matching import Decision, Reason
from pipeline.recognisers import RECOGNISERS, get_recogniser
from pipeline.references import reference_from_photo
from publishing.options import PublishOptions
from publishing.report import PhotoStatus
from publishing.review.batch import (
    ReviewError,
    Verdict,
    create_batch,
    load_batch,
    publish_batch,
    record_verdict,
)
from tests.support.environment import REPO

pytestmark = pytest.mark.slow  # detection (and, with biometrics, matching) runs

SAMPLES = REPO / "sample_images"
ON = date(2026, 10, 1)


@pytest.fixture
def store(store: Store) -> Store:
    registry.import_pupils_csv(store, SAMPLES / "pupils.csv", operator="office")
    enrol(
        store,
        "P001",
        lambda: dlib_reference(SAMPLES / "references" / "P001.jpg"),
        operator="office",
    )
    return store


def dlib_reference(path: Path) -> tuple[np.ndarray, str]:
    """A dlib template and the photo's hash (these tests publish with dlib's rule)."""
    ref = reference_from_photo(path, recogniser=get_recogniser("dlib"))
    return ref.encoding, ref.sha256


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """P001 (left) beside an unenrolled adult (right), copied so a test may change it."""
    folder = tmp_path / "in"
    folder.mkdir()
    return Path(shutil.copy(SAMPLES / "event" / "IMG_0001.jpg", folder / "IMG_0001.jpg"))


def options(tmp_path: Path, **kw) -> PublishOptions:
    return PublishOptions(
        purpose=Purpose.WEBSITE,
        out_dir=tmp_path / "out",
        event="Fair",
        operator="office",
        on=ON,
        **kw,
    )


def faces_of(report):
    [result] = report.results
    assert result.status is PhotoStatus.PUBLISHED, result.reason
    return sorted(result.faces, key=lambda f: f.box.x)


def kept_face_id(batch) -> str:
    [face] = [f for _, f in batch.faces() if f.decision is Decision.KEPT]
    assert face.pupil_id == "P001"
    return face.face_id


def test_an_unreviewed_keep_is_published_blurred(store, photo, tmp_path):
    batch = create_batch(store, [photo], options(tmp_path))
    assert kept_face_id(batch)
    left, right = faces_of(publish_batch(store, batch.batch_id, options(tmp_path)))
    assert (left.decision.value, left.reason) == ("blurred", Reason.NOT_APPROVED)
    assert right.decision.value == "blurred"


def test_an_approved_keep_is_published_clear_and_the_approval_is_audited(store, photo, tmp_path):
    batch = create_batch(store, [photo], options(tmp_path))
    record_verdict(
        store, batch.batch_id, [kept_face_id(batch)], Verdict.APPROVED, reviewer="Mrs Head"
    )
    left, right = faces_of(publish_batch(store, batch.batch_id, options(tmp_path)))
    assert (left.decision.value, left.reason, left.pupil_id) == ("kept", Reason.APPROVED, "P001")
    assert right.decision.value == "blurred"
    [entry] = audit.entries(store, action="review_approved")
    assert entry.operator == "Mrs Head"
    assert entry.details["pupils"] == ["P001"]
    assert audit.verify(store).ok


def test_a_rejected_keep_is_blurred(store, photo, tmp_path):
    batch = create_batch(store, [photo], options(tmp_path))
    record_verdict(
        store, batch.batch_id, [kept_face_id(batch)], Verdict.REJECTED, reviewer="Mr Deputy"
    )
    left, _ = faces_of(publish_batch(store, batch.batch_id, options(tmp_path)))
    assert left.reason is Reason.REJECTED


def test_a_photo_changed_after_review_is_withheld(store, photo, tmp_path):
    batch = create_batch(store, [photo], options(tmp_path))
    record_verdict(
        store, batch.batch_id, [kept_face_id(batch)], Verdict.APPROVED, reviewer="Mrs Head"
    )
    photo.write_bytes(photo.read_bytes() + b"\0")  # any change at all
    [result] = publish_batch(store, batch.batch_id, options(tmp_path)).results
    assert (
        result.status is PhotoStatus.WITHHELD and "changed since it was reviewed" in result.reason
    )


def test_a_batch_is_published_once(store, photo, tmp_path):
    batch = create_batch(store, [photo], options(tmp_path))
    publish_batch(store, batch.batch_id, options(tmp_path))
    with pytest.raises(ReviewError, match="already published"):
        publish_batch(store, batch.batch_id, options(tmp_path))
    with pytest.raises(ReviewError, match="already published"):
        record_verdict(store, batch.batch_id, ["F0001"], Verdict.REJECTED, reviewer="Mrs Head")


def test_approve_applies_only_to_matched_faces(store, photo, tmp_path):
    batch = create_batch(store, [photo], options(tmp_path))
    [blurred] = [f for _, f in batch.faces() if f.decision is Decision.BLURRED]
    with pytest.raises(ReviewError, match="un-blur it"):
        record_verdict(store, batch.batch_id, [blurred.face_id], Verdict.APPROVED, reviewer="A")
    with pytest.raises(ReviewError, match="No face"):
        record_verdict(store, batch.batch_id, ["F9999"], Verdict.APPROVED, reviewer="A")
    with pytest.raises(PipelineError):
        record_verdict(store, batch.batch_id, [blurred.face_id], Verdict.APPROVED, reviewer="")


def test_no_biometrics_mode_encodes_nothing_and_keeps_only_what_a_reviewer_names(
    store, photo, tmp_path, monkeypatch
):
    def no_encoding(*args, **kwargs):
        raise AssertionError("a face was encoded in no-biometrics mode")

    for recogniser in RECOGNISERS.values():
        monkeypatch.setattr(recogniser, "encode", no_encoding)
    batch = create_batch(store, [photo], options(tmp_path), biometrics=False)
    faces = sorted((f for _, f in batch.faces()), key=lambda f: f.box[0])
    assert [f.reason for f in faces] == [Reason.NO_BIOMETRICS] * 2
    # The reviewer recognises the left face as P001 (website: yes) and, wrongly, the right
    # one as P002 (website: no): consent still decides.
    for face, pupil in ((faces[0], "P001"), (faces[1], "P002")):
        record_verdict(
            store,
            batch.batch_id,
            [face.face_id],
            Verdict.UNBLURRED,
            reviewer="Ms H",
            as_pupil=pupil,
        )
    assert load_batch(store, batch.batch_id).face(faces[0].face_id).as_pupil == "P001"
    left, right = faces_of(publish_batch(store, batch.batch_id, options(tmp_path)))
    assert (left.decision.value, left.reason, left.pupil_id) == (
        "kept",
        Reason.REVIEWER_UNBLURRED,
        "P001",
    )
    assert (right.decision.value, right.reason) == ("blurred", Reason.NO_CONSENT)


def test_unblur_needs_a_pupil(store, photo, tmp_path):
    batch = create_batch(store, [photo], options(tmp_path), biometrics=False)
    face = next(f for _, f in batch.faces())
    with pytest.raises(ReviewError, match="needs the pupil it shows"):
        record_verdict(store, batch.batch_id, [face.face_id], Verdict.UNBLURRED, reviewer="A")
