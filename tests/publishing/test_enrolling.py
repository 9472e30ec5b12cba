"""Enrolment reports and re-encoding on the bundled sample photos (issue 13)."""

from __future__ import annotations

import stat
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from consent import audit, enrolment
from consent.registry import import_pupils_csv
from consent.store import Store
from pipeline.analysis import analyse
from pipeline.detection import DetectionSettings, DetectionStage
from pipeline.loading import load_image
from pipeline.matching import Decision
from pipeline.recognisers import DEFAULT_RECOGNISER, SFaceRecogniser, match_settings
from publishing.context import load_context
from publishing.enrolling import enrol_photos, recogniser_name, reencode, reference_status
from publishing.options import PublishOptions

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
REFERENCE = SAMPLES / "references" / "P001.jpg"
EVENT = SAMPLES / "event" / "IMG_0001.jpg"

pytestmark = pytest.mark.slow


@pytest.fixture
def school(store: Store) -> Store:
    import_pupils_csv(store, SAMPLES / "pupils.csv", operator="office")
    return store


@pytest.fixture(scope="module")
def stage() -> DetectionStage:
    return DetectionStage(DetectionSettings())


def kept_in_event(store: Store, stage: DetectionStage) -> list[str | None]:
    name = recogniser_name(store)
    options = PublishOptions(
        purpose=enrolment_purpose(), out_dir=Path("."), matching=match_settings(name)
    )
    context = load_context(store, options)
    pixels = load_image(EVENT).pixels
    faces = analyse(pixels, stage, context.gallery, options.matching)
    return [f.pupil_id for f in faces if f.decision is Decision.KEPT]


def enrolment_purpose():  # type: ignore[no-untyped-def]
    from consent.registry import Purpose

    return Purpose.WEBSITE


def test_enrolment_reports_each_photo_and_each_pupil(school: Store, stage) -> None:  # type: ignore[no-untyped-def]
    report = enrol_photos(school, [("P001", REFERENCE)], operator="office", detector=stage)
    assert report.recogniser == DEFAULT_RECOGNISER
    (outcome,) = report.outcomes
    assert outcome.problem is None and outcome.reference_id is not None
    assert outcome.quality is not None and outcome.quality["grade"] in {"good", "fair"}
    assert outcome.quality["size_px"] >= 80
    summary = report.to_json(date(2026, 12, 1))["pupils"]["P001"]  # type: ignore[index]
    assert summary["usable"] == 1 and summary["wanted"] == 3
    assert summary["status"].startswith("add 2 more recent photos")
    assert summary["each"][0]["face_crop_kept"] is True
    (crop,) = enrolment.reference_crops(school, "P001")
    assert crop.pixels.shape[2] == 3 and max(crop.pixels.shape[:2]) <= 256
    (entry,) = audit.entries(school, action="reference_add")
    assert entry.details["recogniser"] == DEFAULT_RECOGNISER and entry.details["crop_kept"]


def test_enrolled_pupil_is_kept_with_the_default_recogniser(school: Store, stage) -> None:  # type: ignore[no-untyped-def]
    enrol_photos(school, [("P001", REFERENCE)], operator="office", detector=stage)
    assert kept_in_event(school, stage) == ["P001"]


def test_second_face_rejection_saves_a_boxed_preview(school: Store, stage) -> None:  # type: ignore[no-untyped-def]
    report = enrol_photos(school, [("P001", EVENT)], operator="office", detector=stage)
    (outcome,) = report.outcomes
    assert outcome.problem is not None and "faces found" in outcome.problem
    assert outcome.preview is not None and outcome.preview.parent.name == "enrolment-previews"
    assert stat.S_IMODE(outcome.preview.stat().st_mode) == 0o600
    with Image.open(outcome.preview) as im:
        assert im.format == "JPEG" and max(im.size) <= 1024
        pixels = np.asarray(im.convert("RGB")).astype(int)
    # Red boxes for the other faces are drawn into the preview.
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    assert red.sum() > 100
    assert enrolment.reference_counts(school.conn) == {}
    # Kept a week at most: the next enrolment after that deletes it.
    import time

    from publishing.enrolling import delete_old_previews

    assert delete_old_previews(school, now=time.time() + 6 * 86400) == 0
    assert delete_old_previews(school, now=time.time() + 8 * 86400) == 1
    assert not outcome.preview.exists()


def test_reencode_moves_everyone_and_keeps_matching(school: Store, stage) -> None:  # type: ignore[no-untyped-def]
    enrol_photos(school, [("P001", REFERENCE)], operator="office", detector=stage)
    report = reencode(school, "dlib", operator="dpo")
    assert (report.encoded, report.was, report.need_new_photos) == (1, DEFAULT_RECOGNISER, [])
    assert recogniser_name(school) == "dlib"
    assert kept_in_event(school, stage) == ["P001"]
    again = reencode(school, DEFAULT_RECOGNISER, operator="dpo")
    assert (again.encoded, again.already) == (0, 1)
    assert kept_in_event(school, stage) == ["P001"]


# SFace's version before the landmark box (pipeline.recognisers): what data directories
# enrolled before it hold.
SFACE_BEFORE_LANDMARK_BOX = (
    "opencv_zoo/face_recognition_sface_2021dec_int8bq.onnx/sha256:fb143eea07838aa5"
)


def test_sface_templates_from_before_the_landmark_box_are_made_again(school: Store, stage) -> None:  # type: ignore[no-untyped-def]
    enrol_photos(school, [("P001", REFERENCE)], operator="office", detector=stage)
    assert SFaceRecogniser.version != SFACE_BEFORE_LANDMARK_BOX
    (made,) = school.conn.execute("SELECT template FROM face_templates").fetchone()
    with school.transaction() as conn:
        conn.execute("UPDATE face_templates SET version = ?", (SFACE_BEFORE_LANDMARK_BOX,))
    assert reference_status(school)["P001"].status(date(2026, 12, 1)) == (
        "needs re-encoding (run: photoconsent enroll --reencode)"
    )
    report = reencode(school, "sface", operator="dpo")
    assert (report.encoded, report.already, report.need_new_photos) == (1, 0, [])
    rows = school.conn.execute("SELECT version, template FROM face_templates").fetchall()
    assert [r[0] for r in rows] == [SFaceRecogniser.version]
    assert rows[0][1] != made  # encrypted afresh (a new nonce), whatever the template
    status = reference_status(school)["P001"].status(date(2026, 12, 1))
    assert status.startswith("add 2 more recent photos")
    assert kept_in_event(school, stage) == ["P001"]
    again = reencode(school, "sface", operator="dpo")
    assert (again.encoded, again.already) == (0, 1)


def test_reencode_lists_pupils_without_crops(school: Store) -> None:
    legacy = np.random.default_rng(1).normal(size=128)
    enrolment.add_reference(school, "P001", legacy, source_sha256="a" * 64, operator="old")
    report = reencode(school, "sface", operator="dpo")
    assert report.need_new_photos == ["P001"] and report.encoded == 0
    info = enrolment.pupil_references(school.conn, "sface")["P001"]
    assert info.status(date(2026, 12, 1)) == "needs re-enrolling (new reference photos)"


def test_small_reference_is_rejected_in_plain_words(school: Store, stage, tmp_path) -> None:  # type: ignore[no-untyped-def]
    photo = tmp_path / "P001.jpg"
    with Image.open(REFERENCE) as im:
        im.resize((im.width // 4, im.height // 4)).save(photo)
    report = enrol_photos(school, [("P001", photo)], operator="office", detector=stage)
    (outcome,) = report.outcomes
    assert outcome.problem is not None and "px across; references need at least 80 px" in (
        outcome.problem
    )
    assert enrolment.reference_counts(school.conn) == {}


def test_publish_audit_names_the_recogniser_and_its_version(school: Store, stage, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.recognisers import get_recogniser
    from publishing.publish import publish

    enrol_photos(school, [("P001", REFERENCE)], operator="office", detector=stage)
    options = PublishOptions(
        purpose=enrolment_purpose(),
        out_dir=tmp_path / "out",
        matching=match_settings(DEFAULT_RECOGNISER),
    )
    publish(school, [EVENT], options)
    (entry,) = audit.entries(school, action="publish")
    matching = entry.details["matching"]
    assert matching["recogniser"] == DEFAULT_RECOGNISER
    assert matching["recogniser_version"] == get_recogniser(DEFAULT_RECOGNISER).version
    assert entry.details["pupils_kept"] == ["P001"]


def test_the_gallery_holds_only_the_classes_taking_part(school: Store, stage) -> None:  # type: ignore[no-untyped-def]
    """publish --class: pupils of other classes are not in the gallery, so never kept."""
    from publishing.context import pupils_in_classes

    enrol_photos(school, [("P001", REFERENCE)], operator="office", detector=stage)
    pixels = load_image(EVENT).pixels
    kept = {}
    for classes in (["3b"], ["4A"]):
        options = PublishOptions(
            purpose=enrolment_purpose(),
            out_dir=Path("."),
            matching=match_settings(recogniser_name(school)),
            candidates=pupils_in_classes(school, classes),
        )
        context = load_context(school, options)
        faces = analyse(pixels, stage, context.gallery, options.matching)
        kept[classes[0]] = (
            sorted(context.gallery.encodings),
            [f.pupil_id for f in faces if f.decision is Decision.KEPT],
        )
    assert kept["3b"] == (["P001"], ["P001"])
    assert kept["4A"] == ([], [])
