"""Untagged photos: the doubt signal (a turn that shows faces the upright search missed)
and the upright search run again on the photo turned that way."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.boxes import Box
from pipeline.detection import (
    DOUBT_NEW_FACES,
    DOUBT_SHARE,
    TURNED_ONLY_SCORE,
    Detection,
    DetectionSettings,
    DetectionStage,
    doubted_turn,
)
from tests.support.detect_fakes import Fixed

ROOT = Path(__file__).resolve().parents[2]


class Turn:
    """A stand-in turned pass: its quarter turns and fixed boxes (upright pixels)."""

    def __init__(self, k, *dets):
        self.quarter_turns = k
        self.name = f"centerface@1x+rot{90 * k}"
        self.dets = [Detection(b, s, self.name) for b, s in dets]

    def detect(self, pixels):
        return list(self.dets)


FACE = Box(100, 100, 40, 40)
OTHER = Box(300, 200, 40, 40)


def seen(*boxes):
    return [Detection(b, 0.9, "centerface@1x") for b in boxes]


def test_no_new_face_no_doubt():
    turned = [(t, t.dets) for t in [Turn(1, (Box(102, 101, 40, 40), 0.95))]]
    assert doubted_turn(seen(FACE), turned) is None


def test_a_new_face_below_the_turned_score_is_no_doubt():
    t = Turn(1, (OTHER, TURNED_ONLY_SCORE - 0.01))
    assert doubted_turn(seen(FACE), [(t, t.dets)]) is None


def test_a_face_only_a_turn_shows_is_reason_to_doubt():
    t = Turn(3, (OTHER, TURNED_ONLY_SCORE))
    assert DOUBT_NEW_FACES == 1
    assert doubted_turn(seen(FACE), [(t, t.dets)]) == 3


def test_a_turn_must_show_a_third_as_many_new_faces_as_were_found_upright():
    """An upright group photo's turn finds the odd tilted face; a sideways photo's right
    turn finds many."""
    group = seen(*[Box(50 * i, 10, 30, 30) for i in range(6)])  # six faces upright
    one = Turn(1, (Box(100, 300, 40, 40), 0.9))
    two = Turn(1, (Box(100, 300, 40, 40), 0.9), (Box(200, 300, 40, 40), 0.9))
    assert DOUBT_SHARE == pytest.approx(1 / 3)
    assert doubted_turn(group, [(one, one.dets)]) is None
    assert doubted_turn(group, [(two, two.dets)]) == 1
    # Boxes of one face count once.
    same = Turn(1, (Box(100, 300, 40, 40), 0.9), (Box(101, 301, 40, 40), 0.8))
    assert doubted_turn(group, [(same, same.dets)]) is None


def test_a_turn_that_sees_more_faces_surely_than_upright_is_doubted_under_the_share():
    """A sideways crowd's upright search still finds many faces, most of them weakly; the
    right turn sees more of them from TURNED_ONLY_SCORE than the upright photo does."""
    sure = [Detection(Box(50 * i, 10, 30, 30), 0.9, "centerface@1x") for i in range(3)]
    weak = [Detection(Box(50 * i, 200, 30, 30), 0.35, "centerface@1x") for i in range(6)]
    upright = sure + weak  # 9 faces, 3 of them from 0.5: a third would be 3 new faces
    new = [(Box(400, 400, 40, 40), 0.9), (Box(500, 400, 40, 40), 0.9)]
    again = [(Box(50 * i + 1, 201, 30, 30), 0.8) for i in range(2)]  # weak upright, sure here
    more = Turn(3, *new, *again)  # 4 faces from 0.5 against 3: doubted
    assert doubted_turn(upright, [(more, more.dets)]) == 3
    level = Turn(3, *new, again[0])  # 3 against 3, and 2 new faces under the share
    assert doubted_turn(upright, [(level, level.dets)]) is None
    # It still needs a face the upright search did not find.
    none_new = Turn(3, *[(Box(50 * i + 1, 201, 30, 30), 0.8) for i in range(6)])
    assert doubted_turn(upright, [(none_new, none_new.dets)]) is None


def test_the_turn_with_most_new_faces_wins_then_the_higher_score():
    one = Turn(1, (OTHER, 0.9))
    two = Turn(2, (OTHER, 0.6), (Box(500, 50, 30, 30), 0.6))
    assert doubted_turn([], [(one, one.dets), (two, two.dets)]) == 2
    a, b = Turn(1, (OTHER, 0.7)), Turn(3, (OTHER, 0.8))
    assert doubted_turn([], [(a, a.dets), (b, b.dets)]) == 3


IMG = np.zeros((400, 400, 3), np.uint8)


def stage_with(turned, **settings):
    s = DetectionStage(DetectionSettings(**settings))
    s._small = s._large = [Fixed("centerface@1x", (FACE, 0.9))]
    s._turned = [turned]
    calls = []

    def search(pixels, k):
        calls.append(k)
        return [Detection(Box(10, 10, 30, 30), 0.8, "centerface@1x+rot90")]

    s._turned_search = search
    return s, calls


def test_a_doubted_untagged_photo_is_searched_again_turned():
    s, calls = stage_with(Turn(1, (OTHER, 0.8)))
    faces = s.detect(IMG, orientation_known=False)
    assert calls == [1]
    assert sorted(d.box.x for d in faces) == [10, 100, 300]


@pytest.mark.parametrize("known, settings", [(True, {}), (False, {"doubted_turn_search": False})])
def test_no_second_search_on_a_tagged_photo_or_when_turned_off(known, settings):
    s, calls = stage_with(Turn(1, (OTHER, 0.8)), **settings)
    s.detect(IMG, orientation_known=known)
    assert calls == []


def test_the_turned_search_maps_faces_back_and_names_the_turn():
    """The real search on a photo holding a small bright patch: whatever it finds
    comes back in the upright photo's pixels, named as turned."""
    s = DetectionStage()
    found = []

    def accept(pixels, merged):
        found.append(pixels.shape)
        return [Detection(Box(0, 0, 10, 20), 0.9, "centerface@1x,centerface@2x")]

    s._candidates = lambda pixels: []
    s._accept = accept
    img = np.zeros((300, 500, 3), np.uint8)
    [face] = s._turned_search(img, 1)
    assert found == [(500, 300, 3)]  # searched turned
    # (0, 0, 10, 20) in np.rot90(img) is (500 - 20, 0, 20, 10) here.
    assert face.box == Box(480, 0, 20, 10)
    assert face.source == "centerface@1x+rot90,centerface@2x+rot90"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "bench"))
    import detection_recall

    return detection_recall


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 3])
def test_a_crowd_photo_stored_sideways_without_a_tag_keeps_its_faces(eval_dir, bench, k):
    """A real school crowd (WIDER FACE val), turned by 90 degrees as a photo exported
    without its orientation tag: nearly every face found upright is found turned."""
    from pipeline.loading import load_image
    from pipeline.redaction import head_region

    path = eval_dir / "widerface_school" / "29_Students_Schoolkids_Students_Schoolkids_29_66.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    truth = {path: bench.read_ground_truth(eval_dir)[path]}
    pixels = load_image(path).pixels
    stage = DetectionStage()

    def recall(t, px, known):
        regions = [head_region(d.box) for d in stage.detect(px, orientation_known=known)]
        return np.mean([bench.coverage(g, regions, px.shape[:2]) >= bench.COVER for g in t])

    upright = recall(truth[path], pixels, True)
    t_truth, t_images = bench.turned(truth, {path: pixels}, k)
    sideways = recall(t_truth[path], t_images[path], False)
    assert upright > 0.8
    assert sideways >= upright - 0.05


@pytest.mark.parametrize("scale, web, camera", [(1.0, 1.0, 2048 / 4000), (0.5, 0.5, 0.5)])
def test_turned_scale_resizes_the_turned_passes_under_their_cap(scale, web, camera):
    # A 1024 px web photo's turns run at its own size by default (the cap is half of
    # max_side, 2048 px); turned_scale 0.5 halves them, and a 12 MP photo's stay capped.
    from pipeline.detection import build_turned_passes

    for p in build_turned_passes(DetectionSettings(turned_scale=scale)):
        assert p.inner.input_scale(683, 1024) == web
        assert p.inner.input_scale(3000, 4000) == pytest.approx(camera)
    assert DetectionSettings().turned_scale == 1.0
