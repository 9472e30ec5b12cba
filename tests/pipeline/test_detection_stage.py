"""The acceptance rule of the detection stage, with stand-in detectors (exact)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.boxes import Box
from pipeline.detection import (
    ACCEPT_SCORE,
    AGREED_PASSES,
    AGREED_SCORE,
    SMALL_SURE_SCORE,
    TURNED_ONLY_SCORE,
    ZOOM_CONFIRM,
    DetectionSettings,
    DetectionStage,
    Thoroughness,
    build_passes,
)
from tests.support.detect_fakes import Fixed

IMG = np.zeros((400, 400, 3), np.uint8)


class FixedZoom:
    def __init__(self, value):
        self.value = value
        self.calls = 0

    def score(self, pixels, box):
        self.calls += 1
        return self.value


def stage(level=Thoroughness.STANDARD, upright=(), turned=(), zoom=0.0):
    s = DetectionStage(DetectionSettings(thoroughness=level))
    s._small = s._large = [Fixed("centerface@1x", *upright)]
    s._turned = [Fixed("centerface@1x+rot90", *turned)]
    s._zoom = FixedZoom(zoom)
    return s


BIG = Box(100, 100, 40, 40)
MID = Box(100, 100, 30, 30)  # 20 px or more, under LARGE_FACE_PX
TINY = Box(10, 10, 12, 14)


@pytest.mark.parametrize(
    "box, score, zoom, kept",
    [
        (MID, ACCEPT_SCORE, 0.0, True),
        (MID, ACCEPT_SCORE - 0.01, 1.0, False),  # a face of 20 px or more is never zoom-checked
        (TINY, SMALL_SURE_SCORE, 0.0, True),
        (TINY, SMALL_SURE_SCORE - 0.01, ZOOM_CONFIRM, True),
        (TINY, SMALL_SURE_SCORE - 0.01, ZOOM_CONFIRM - 0.01, False),
    ],
)
def test_acceptance_rule(box, score, zoom, kept):
    found = stage(upright=[(box, score)], zoom=zoom).detect(IMG)
    assert bool(found) is kept


def test_fast_never_zoom_checks_and_drops_unsure_small_faces():
    s = stage(Thoroughness.FAST, upright=[(TINY, 0.45)], zoom=1.0)
    assert s.detect(IMG) == []
    assert s._zoom.calls == 0


def test_paranoid_keeps_every_candidate():
    s = stage(Thoroughness.PARANOID, upright=[(TINY, 0.21), (BIG, 0.21)])
    assert len(s.detect(IMG)) == 2


@pytest.mark.parametrize("known, expected", [(True, 0), (False, 1)])
def test_turned_passes_run_only_when_orientation_is_unknown(known, expected):
    s = stage(turned=[(BIG, 0.9)])
    assert len(s.detect(IMG, orientation_known=known)) == expected


def test_face_seen_only_turned_needs_a_high_score():
    low = stage(turned=[(BIG, TURNED_ONLY_SCORE - 0.01)])
    high = stage(turned=[(BIG, TURNED_ONLY_SCORE)])
    assert low.detect(IMG, orientation_known=False) == []
    assert len(high.detect(IMG, orientation_known=False)) == 1


def test_face_seen_upright_and_turned_is_one_face():
    s = stage(upright=[(BIG, 0.4)], turned=[(Box(102, 101, 40, 40), 0.35)])
    [face] = s.detect(IMG, orientation_known=False)
    assert face.source == "centerface@1x,centerface@1x+rot90"
    assert face.score == 0.4


def test_boxes_are_clipped_to_the_image():
    [face] = stage(upright=[(Box(380, -10, 40, 40), 0.9)]).detect(IMG)
    assert face.box == Box(380, 0, 20, 30)


def test_large_photos_skip_the_upscaled_pass():
    names = [p.name for p in build_passes(DetectionSettings(), small_image=False)]
    assert not any("@2x" in n for n in names)
    assert names == [
        "centerface@0.5x",
        "centerface@0.5x+flip",
        "centerface@1x",
        "centerface@1x+flip",
    ]
    names = [p.name for p in build_passes(DetectionSettings(coarse_first=False), small_image=False)]
    assert names == ["centerface@1x", "centerface@1x+flip"]


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_turned_photo_without_orientation_tag_still_has_its_face_found(k):
    """skimage's astronaut (public domain), turned as a phone might store it."""
    from skimage import data

    upright = data.astronaut()
    face = DetectionStage().detect(upright)[0].box
    turned = np.ascontiguousarray(np.rot90(upright, k))
    found = DetectionStage().detect(turned, orientation_known=False)
    assert found, "no face found in the turned photo"
    # The same face, wherever the turn put it: its area matches within a third.
    best = max(found, key=lambda d: d.score)
    assert best.box.area == pytest.approx(face.area, rel=0.34)


def test_a_reduced_mirrored_pass_is_a_setting_not_the_default():
    # It applies to the full-size search of large photos (coarse_first off).
    settings = DetectionSettings(mirror_max_side=2048, coarse_first=False)
    names = [p.name for p in build_passes(settings, small_image=False)]
    assert names == ["centerface@1x", "centerface@2048px+flip"]
    assert settings.describe()["mirror_max_side"] == 2048


def two_pass_stage(level, score, second=True, zoom=0.0):
    s = DetectionStage(DetectionSettings(thoroughness=level))
    passes = [Fixed("centerface@1x", (TINY, score))]
    if second:
        passes.append(Fixed("centerface@1x+flip", (Box(10.5, 10, 12, 14), score)))
    s._small = s._large = passes
    s._zoom = FixedZoom(zoom)
    return s


@pytest.mark.parametrize(
    "score, second, kept",
    [
        (AGREED_SCORE, True, True),  # two views agree: a face
        (AGREED_SCORE - 0.01, True, False),
        (SMALL_SURE_SCORE - 0.01, False, False),  # one view alone needs 0.5 or the zoom
    ],
)
def test_a_small_face_two_passes_agree_on_is_kept(score, second, kept):
    assert AGREED_PASSES == 2
    found = two_pass_stage(Thoroughness.STANDARD, score, second).detect(IMG)
    assert bool(found) is kept


def test_fast_has_no_agreement_rule():
    assert two_pass_stage(Thoroughness.FAST, AGREED_SCORE).detect(IMG) == []
