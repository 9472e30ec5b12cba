"""Review of low-quality faces (issue 13): a face below the keep's quality gates (sharpness,
yaw) is never kept by matching; with low-quality review on (a review batch) it is compared
and, within the review band of a permitted pupil, goes to that pupil's grid marked low
quality. Synthetic encodings, exact."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import pipeline.analysis as analysis
from pipeline.analysis import Gallery, analyse
from pipeline.boxes import Box
from pipeline.detectors import Detection
from pipeline.matching import Decision, MatchSettings, Reason, decide
from pipeline.recognisers import match_settings
from tests.pipeline.test_analysis_pose import landmarks68
from tests.support.embeddings import near, three_pupil_gallery, unit

BIG = Box(0, 0, 100, 100)
SMALL = Box(0, 0, 40, 40)
OFF = MatchSettings(tolerance=0.4, margin=0.08, min_face_px=60, review=0.5)
ON = replace(OFF, review_low_quality=True)


GALLERY = three_pupil_gallery()
BLURRED = dict(sharpness=[ON.min_sharpness - 1])
TURNED = dict(yaw=[ON.max_yaw + 1])


@pytest.mark.parametrize(
    "gate, reason", [(BLURRED, Reason.TOO_BLURRED), (TURNED, Reason.TURNED_AWAY)]
)
@pytest.mark.parametrize(
    "distance, permitted, settings, expected, candidate",
    [
        # Off (publish without review): blurred for the gate, as before, even a close match.
        (0.1, {"P1"}, OFF, None, None),
        # On: a face that would have been kept goes to review instead, never kept.
        (0.1, {"P1"}, ON, Reason.UNCERTAIN, "P1"),
        (0.45, {"P1"}, ON, Reason.UNCERTAIN, "P1"),  # above tolerance, within the band
        (0.50, {"P1"}, ON, Reason.UNCERTAIN, "P1"),  # the band's edge is inclusive
        (0.51, {"P1"}, ON, None, None),  # beyond the band: blurred for the gate
        (0.1, {"P2"}, ON, None, None),  # nearest pupil has no consent: not proposed
        (0.1, set(), ON, None, None),
    ],
)
def test_low_quality_face_goes_to_review_never_kept(
    gate, reason, distance, permitted, settings, expected, candidate
) -> None:  # type: ignore[no-untyped-def]
    (d,) = decide([BIG], [near(unit(0), distance)], GALLERY, permitted, settings, **gate)
    assert d.decision is Decision.BLURRED
    assert d.reason is (expected or reason)
    assert d.candidate_id == candidate and d.pupil_id is None
    if expected is Reason.UNCERTAIN:
        assert d.low_quality is reason
        assert d.distance == pytest.approx(distance)
        report = d.to_report()
        assert report["low_quality"] == reason.value and report["candidate_pupil_id"] == "P1"
    else:
        assert d.low_quality is None and "low_quality" not in d.to_report()


def test_no_band_means_no_review_of_low_quality_faces() -> None:
    settings = replace(ON, review=None)
    (d,) = decide([BIG], [near(unit(0), 0.1)], GALLERY, {"P1"}, settings, **BLURRED)
    assert (d.reason, d.candidate_id) == (Reason.TOO_BLURRED, None)


@pytest.mark.parametrize("settings", [OFF, ON])
def test_too_small_faces_are_never_compared(settings: MatchSettings) -> None:
    (d,) = decide([SMALL], [near(unit(0), 0.0)], GALLERY, {"P1"}, settings, **BLURRED)
    assert (d.reason, d.candidate_id, d.distance) == (Reason.TOO_SMALL, None, None)


def test_low_quality_face_without_a_template_is_blurred_for_its_gate() -> None:
    (d,) = decide([BIG], [None], GALLERY, {"P1"}, ON, **BLURRED)
    assert (d.reason, d.candidate_id) == (Reason.TOO_BLURRED, None)
    (e,) = decide([BIG], [near(unit(0), 0.1)], {}, {"P1"}, ON, **BLURRED)
    assert (e.reason, e.candidate_id) == (Reason.TOO_BLURRED, None)


def test_margin_does_not_hold_a_low_quality_face_back_from_review() -> None:
    # Two pupils nearly equally near: the keep would say "too close to tell apart"; a
    # low-quality face is never kept anyway, so it goes to the nearer one's grid.
    gallery = {"P1": np.array([unit(0)]), "P2": np.array([near(unit(0), 0.05, axis=5)])}
    (d,) = decide([BIG], [near(unit(0), 0.1)], gallery, {"P1", "P2"}, ON, **BLURRED)
    assert (d.reason, d.candidate_id, d.low_quality) == (
        Reason.UNCERTAIN,
        "P1",
        Reason.TOO_BLURRED,
    )


def test_sharp_frontal_faces_decide_as_before_with_review_on() -> None:
    encodings = [near(unit(0), 0.1), near(unit(1), 0.45), near(unit(2), 0.9)]
    boxes = [BIG] * 3
    for kw in ({}, {"sharpness": [500.0] * 3, "yaw": [0.0] * 3}):
        off = decide(boxes, encodings, GALLERY, {"P1", "P2"}, OFF, **kw)
        on = decide(boxes, encodings, GALLERY, {"P1", "P2"}, ON, **kw)
        assert on == off
        assert [d.reason for d in on] == [
            Reason.MATCHED_WITH_CONSENT,
            Reason.UNCERTAIN,
            Reason.NO_MATCH,
        ]
        assert all(d.low_quality is None for d in on)


def test_a_low_quality_face_does_not_take_the_pupil_from_a_kept_one() -> None:
    # Both faces are nearest P1: the sharp one is kept; the blurred one goes to review
    # (one of the two can be P1: the grid refuses approving both, by_pupil.same_photo).
    (kept, low) = decide(
        [BIG, BIG],
        [near(unit(0), 0.2), near(unit(0), 0.05)],
        GALLERY,
        {"P1"},
        ON,
        sharpness=[500.0, 10.0],
    )
    assert (kept.decision, kept.pupil_id) == (Decision.KEPT, "P1")
    assert (low.decision, low.reason, low.candidate_id) == (
        Decision.BLURRED,
        Reason.UNCERTAIN,
        "P1",
    )


def test_setting_is_recorded() -> None:
    assert OFF.describe()["review_low_quality"] is False
    assert ON.describe()["review_low_quality"] is True
    assert match_settings("sface").review_low_quality is False  # publish: off


# analyse(): which faces get a template.

SHARP_FACE = Box(10, 10, 100, 100)
BLUR_FACE = Box(200, 10, 100, 100)
TURN_FACE = Box(400, 10, 100, 100)


class ThreeFaces:
    def detect(self, pixels: np.ndarray, *, orientation_known: bool = True) -> list[Detection]:
        return [Detection(b, 0.9, "stub") for b in (SHARP_FACE, BLUR_FACE, TURN_FACE)]


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[list[Box]]:
    calls: list[list[Box]] = []

    class FakeRecogniser:
        def encode(self, pixels: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
            calls.append(list(boxes))
            return [np.ones(128) for _ in boxes]

    monkeypatch.setattr(
        analysis,
        "dlib_landmarks",
        lambda pixels, boxes: [landmarks68(b, 40.0 if b == TURN_FACE else 0.0) for b in boxes],
    )
    monkeypatch.setattr(
        analysis, "sharpness", lambda pixels, box: 10.0 if box == BLUR_FACE else 500.0
    )
    monkeypatch.setattr(analysis, "get_recogniser", lambda name: FakeRecogniser())
    return calls


PIXELS = np.zeros((200, 600, 3), np.uint8)
PUPIL = Gallery({"P1": np.ones((1, 128))}, {"P1": 1}, recogniser="sface")


def test_publish_never_encodes_a_low_quality_face(encoded: list[list[Box]]) -> None:
    faces = analyse(PIXELS, ThreeFaces(), PUPIL, match_settings("sface"))  # type: ignore[arg-type]
    assert [f.reason for f in faces] == [
        Reason.MATCHED_WITH_CONSENT,
        Reason.TOO_BLURRED,
        Reason.TURNED_AWAY,
    ]
    assert encoded == [[SHARP_FACE]]


def test_review_encodes_low_quality_faces_and_proposes_them(encoded: list[list[Box]]) -> None:
    settings = match_settings("sface", review_low_quality=True)
    faces = analyse(PIXELS, ThreeFaces(), PUPIL, settings)  # type: ignore[arg-type]
    assert encoded == [[SHARP_FACE, BLUR_FACE, TURN_FACE]]
    # The sharp face is kept as P1; the others are P1's too (one template for all three
    # here), proposed for review and marked, never kept.
    assert [(f.decision, f.reason, f.candidate_id, f.low_quality) for f in faces] == [
        (Decision.KEPT, Reason.MATCHED_WITH_CONSENT, None, None),
        (Decision.BLURRED, Reason.UNCERTAIN, "P1", Reason.TOO_BLURRED),
        (Decision.BLURRED, Reason.UNCERTAIN, "P1", Reason.TURNED_AWAY),
    ]


def test_review_encodes_nothing_when_nobody_may_be_kept(encoded: list[list[Box]]) -> None:
    nobody = Gallery({"P1": np.ones((1, 128))}, {}, recogniser="sface")
    settings = match_settings("sface", review_low_quality=True)
    faces = analyse(PIXELS, ThreeFaces(), nobody, settings)  # type: ignore[arg-type]
    assert encoded == []
    # Nor are landmarks placed, so the turned face's pose is never measured.
    assert [f.reason for f in faces] == [Reason.NO_GALLERY, Reason.TOO_BLURRED, Reason.NO_GALLERY]
