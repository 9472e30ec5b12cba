"""Low-quality faces in review by pupil (issue 13): saved with the gate they failed,
marked in their pupil's grid, approved like any proposed face, and blurred unless a
reviewer approves. Hand-made batch (exact), then real photos through create_batch (slow)."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageFilter

from cli import main
from consent.registry import Purpose, import_pupils_csv
from consent.store import Store
from pipeline.loading import load_image
from pipeline.matching import Decision, Reason, sharpness
from publishing.review.batch import (
    ReviewError,
    batch_path,
    create_batch,
    load_batch,
    reviewed_decider,
    save_batch,
)
from publishing.review.by_pupil import (
    LOW_QUALITY_MARK,
    approve_pupil,
    group_by_pupil,
    pupil_group,
)
from publishing.review.contact_sheet import render_contact_sheet
from tests.support.consent_factories import RegistryCsv
from tests.support.pupil_batch import BATCH_ID, add_pupil_batch


@pytest.fixture
def store(store: Store, tmp_path: Path, registry_csv: RegistryCsv) -> Store:
    batch = add_pupil_batch(store, tmp_path, registry_csv)
    batch.face("F0006").low_quality = Reason.TOO_BLURRED  # P001's uncertain face in photo b
    save_batch(store, batch)
    return store


def test_the_gate_is_saved_and_marks_the_face_in_its_grid(store: Store) -> None:
    batch = load_batch(store, BATCH_ID)
    assert batch.face("F0006").low_quality is Reason.TOO_BLURRED
    assert batch.face("F0002").low_quality is None
    group = pupil_group(batch, "P001")
    marks = {f.face.face_id: (f.low_quality, f.mark) for f in group.faces}
    assert marks == {
        "F0002": (False, None),
        "F0001": (False, None),
        "F0006": (True, "low quality photo: the face is blurred"),
    }
    assert group.count_low_quality() == 1
    assert LOW_QUALITY_MARK in marks["F0006"][1]
    assert [g.count_low_quality() for g in group_by_pupil(batch)] == [1, 0]


def test_a_batch_from_before_low_quality_review_still_loads(store: Store) -> None:
    path = batch_path(store, BATCH_ID)
    raw = json.loads(path.read_text())
    for photo in raw["photos"]:
        for face in photo["faces"]:
            del face["low_quality"]
    path.write_text(json.dumps(raw))
    assert all(f.low_quality is None for _, f in load_batch(store, BATCH_ID).faces())


@pytest.mark.parametrize("value", [Reason.NO_MATCH.value, "sharp enough, honest"])
def test_a_hand_edited_mark_that_is_no_quality_gate_is_refused(store: Store, value: str) -> None:
    path = batch_path(store, BATCH_ID)
    raw = json.loads(path.read_text())
    raw["photos"][1]["faces"][1]["low_quality"] = value
    path.write_text(json.dumps(raw))
    with pytest.raises(ReviewError, match="damaged"):
        load_batch(store, BATCH_ID)


def published(store: Store, photo_index: int, permitted: set[str]):  # type: ignore[no-untyped-def]
    batch = load_batch(store, BATCH_ID)
    path = Path(batch.photos[photo_index].input)
    decide = reviewed_decider(batch, permitted)
    return {
        f.face_id: d
        for f, d in zip(
            batch.photos[photo_index].faces, decide(path, load_image(path)), strict=True
        )
    }


def test_unapproved_it_is_blurred_and_the_report_says_why(store: Store) -> None:
    d = published(store, 1, {"P001"})["F0006"]
    assert (d.decision, d.reason, d.candidate_id) == (Decision.BLURRED, Reason.UNCERTAIN, "P001")
    assert d.to_report()["low_quality"] == Reason.TOO_BLURRED.value


def test_approved_it_is_kept_as_the_pupil_only_with_consent(store: Store) -> None:
    approved = approve_pupil(store, BATCH_ID, "P001", reviewer="Ms Head", except_faces=["F0002"])
    assert approved == ["F0001", "F0006"]  # approve all includes the marked face
    kept = published(store, 1, {"P001"})["F0006"]
    assert (kept.decision, kept.reason, kept.pupil_id) == (Decision.KEPT, Reason.APPROVED, "P001")
    refused = published(store, 1, set())["F0006"]
    assert (refused.decision, refused.reason) == (Decision.BLURRED, Reason.NO_CONSENT)


# Real photos: the bundled reference of P001 and the same child's event photo, blurred.

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


@pytest.mark.slow
def test_a_blurred_photo_of_an_enrolled_pupil_reaches_their_grid_only_in_review(
    store: Store, tmp_path: Path
) -> None:
    from publishing.enrolling import enrol_photos
    from publishing.options import PublishOptions
    from publishing.review.by_pupil import FaceKind

    import_pupils_csv(store, SAMPLES / "pupils.csv", operator="office")
    report = enrol_photos(store, [("P001", SAMPLES / "references" / "P001.jpg")], operator="o")
    assert report.outcomes[0].problem is None
    sharp = tmp_path / "sharp.jpg"
    blurred = tmp_path / "blurred.jpg"
    with Image.open(SAMPLES / "references" / "P001.jpg") as im:
        # The enrolled photo itself, mirrored so it is not the same file.
        mirrored = im.convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    mirrored.save(sharp, "JPEG", quality=92)
    # A blur of 2.5 px (the face is about 90 px wide) takes its sharpness to about 15,
    # under the gate of 30, while it stays near P001's reference (about 0.30).
    mirrored.filter(ImageFilter.GaussianBlur(2.5)).save(blurred, "JPEG", quality=92)
    options = PublishOptions(
        purpose=Purpose.WEBSITE,
        out_dir=tmp_path / "out",
        event="Blur check",
        operator="o",
        on=date(2026, 12, 1),
    )
    from pipeline.recognisers import match_settings

    options = PublishOptions(**{**options.__dict__, "matching": match_settings("sface")})
    batch = create_batch(store, [sharp, blurred], options)
    (sharp_face,) = batch.photos[0].faces
    (blur_face,) = batch.photos[1].faces
    assert sharp_face.decision is Decision.KEPT and sharp_face.low_quality is None
    # The blurred face is under the sharpness gate, still near P001: to P001's grid, marked.
    pixels = load_image(blurred).pixels
    from pipeline.boxes import Box

    assert sharpness(pixels, Box(*blur_face.box)) < options.matching.min_sharpness
    assert (blur_face.decision, blur_face.reason) == (Decision.BLURRED, Reason.UNCERTAIN)
    assert blur_face.candidate_id == "P001" and blur_face.low_quality is Reason.TOO_BLURRED
    assert blur_face.distance is not None
    assert blur_face.distance <= options.matching.review  # type: ignore[operator]
    (group,) = group_by_pupil(batch)
    assert [(f.kind, f.low_quality) for f in group.faces] == [
        (FaceKind.MATCHED, False),
        (FaceKind.UNCERTAIN, True),
    ]
    # Published without review, the same photo's face is blurred uncompared, as before.
    from pipeline.analysis import analyse
    from pipeline.detection import DetectionSettings, DetectionStage
    from publishing.context import load_context

    context = load_context(store, options)
    (plain,) = analyse(
        pixels, DetectionStage(DetectionSettings()), context.gallery, options.matching
    )
    assert (plain.reason, plain.distance, plain.candidate_id) == (Reason.TOO_BLURRED, None, None)
    assert np.isfinite(blur_face.distance)


@pytest.mark.parametrize(("recogniser", "on"), [("sface", True), ("dlib", False)])
def test_review_batches_send_low_quality_faces_only_where_measured(
    recogniser: str, on: bool
) -> None:
    from pipeline.recognisers import match_settings
    from publishing.review.batch import review_settings

    plain = match_settings(recogniser, tolerance=0.3)
    assert plain.review_low_quality is False  # publish without review: never
    settings = review_settings(plain)
    assert settings.review_low_quality is on
    assert settings == dataclasses.replace(plain, review_low_quality=on)  # nothing else moves


def test_every_grid_shows_the_mark_in_words(store: Store) -> None:
    """The contact sheet and the served page share one face card: the mark is under the
    low-quality face only, as words (it prints in black and white)."""
    page = render_contact_sheet(store, load_batch(store, BATCH_ID))
    by_pupil = page[page.index('<section id="by-pupil">') : page.index('<section id="needs">')]
    cards = dict(re.findall(r'<figure class="face [a-z]+" id="(F\d+)">(.*?)</figure>', by_pupil))
    marked = {fid for fid, card in cards.items() if 'class="mark"' in card}
    assert marked == {"F0006"}
    assert "low quality photo: the face is blurred" in cards["F0006"]


def test_review_pupils_lists_the_mark(store: Store) -> None:
    runner = CliRunner()
    args = ["--data-dir", str(store.data_dir), "review", "pupils", BATCH_ID]
    as_json = runner.invoke(main, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    marks = {f["face_id"]: f["mark"] for g in json.loads(as_json.stdout) for f in g["faces"]}
    assert marks["F0006"] == "low quality photo: the face is blurred"
    assert {fid for fid, m in marks.items() if m} == {"F0006"}
    table = runner.invoke(main, args)
    assert "F0006(uncertain, low quality)" in table.stdout
