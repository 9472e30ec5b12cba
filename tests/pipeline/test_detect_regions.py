"""Standard's 2x pass looks only around the first passes' candidates (second looks)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.boxes import Box
from pipeline.detection import (
    CANDIDATE_THRESHOLD,
    SEED_CELL,
    SEED_SCORE,
    UPSCALED_MAX_FACE_PX,
    Detection,
    DetectionSettings,
    DetectionStage,
    InRegions,
    build_passes,
    second_look_regions,
)
from pipeline.detectors import CenterFace
from tests.support.detect_fakes import Fixed


def test_no_seed_no_second_look():
    assert second_look_regions(680, 1024, []) == []


def test_one_small_seed_gives_the_cells_within_its_minimum_reach():
    # A 10 px seed centred at (100, 100): reach max(32, 3 x 10) = 32 px each way, so
    # x and y from 68 to 132, which the 32 px cells 2..4 hold.
    [r] = second_look_regions(680, 1024, [Box(95, 95, 10, 10)])
    assert r == Box(64, 64, 96, 96)


def test_a_larger_seed_reaches_three_sizes():
    # 40 px at centre (500, 300): 120 px each way, 380..620 and 180..420.
    [r] = second_look_regions(680, 1024, [Box(480, 280, 40, 40)])
    assert r == Box(352, 160, 288, 288)


def test_far_seeds_give_separate_regions_and_near_ones_one():
    far = second_look_regions(680, 1024, [Box(95, 95, 10, 10), Box(895, 495, 10, 10)])
    assert sorted((r.x, r.y) for r in far) == [(64, 64), (864, 448)]
    near = second_look_regions(680, 1024, [Box(95, 95, 10, 10), Box(160, 95, 10, 10)])
    assert near == [Box(64, 64, 160, 96)]


def test_regions_stop_at_the_photo_edge():
    [r] = second_look_regions(100, 90, [Box(80, 80, 10, 10)])
    assert r.x2 == 90 and r.y2 == 100
    assert r.x % SEED_CELL == 0 and r.y % SEED_CELL == 0


class Spy(InRegions):
    """The 2x pass as the stage calls it: records the regions, reports one box in each."""

    def __init__(self):
        super().__init__(CenterFace(scale=2.0, max_face_px=UPSCALED_MAX_FACE_PX), second=True)
        self.calls = []

    def detect(self, pixels, regions=None):
        self.calls.append(regions)
        if regions is None:
            return [Detection(Box(1, 1, 8, 8), 0.9, self.name)]
        return [Detection(Box(r.x + 1, r.y + 1, 8, 8), 0.9, self.name) for r in regions]


def seeded_stage(*dets):
    s = DetectionStage()
    spy = Spy()
    s._small = [Fixed("centerface@1x", *dets), spy]
    return s, spy


IMG = np.zeros((680, 1024, 3), np.uint8)


def test_a_weak_candidate_is_a_seed_but_not_a_face():
    weak = (Box(95, 95, 10, 10), SEED_SCORE)
    s, spy = seeded_stage(weak)
    found = s.detect(IMG)
    assert spy.calls == [[Box(64, 64, 96, 96)]]
    # The seed (below the candidate threshold) is gone; the 2x pass's box in its region
    # is what the stage reports.
    assert [d.box for d in found] == [Box(65, 65, 8, 8)]
    assert SEED_SCORE < CANDIDATE_THRESHOLD


def test_a_large_candidate_is_a_face_but_not_a_seed():
    big = (Box(300, 300, UPSCALED_MAX_FACE_PX + 1, UPSCALED_MAX_FACE_PX + 1), 0.9)
    s, spy = seeded_stage(big)
    assert len(s.detect(IMG)) == 1
    assert spy.calls == [[]]


def test_a_photo_without_candidates_gets_no_second_look():
    s, spy = seeded_stage()
    assert s.detect(IMG) == []
    assert spy.calls == [[]]


def test_a_crowd_gets_the_whole_photo():
    # Seeds every 100 px: their regions' crops would take most of the photo.
    crowd = [(Box(x, y, 10, 10), 0.3) for x in range(20, 1000, 100) for y in range(20, 660, 100)]
    s, spy = seeded_stage(*crowd)
    s._zoom.score = lambda pixels, box: 1.0
    s.detect(IMG)
    assert spy.calls == [None]


def test_settings_say_where_the_2x_pass_runs():
    assert DetectionSettings().describe()["upscale_everywhere"] is False
    # The mirrored pass's own regions are pinned in test_detect_mirror_seeds.py.
    regional = build_passes(DetectionSettings(mirror_everywhere=True), small_image=True)
    whole = build_passes(
        DetectionSettings(upscale_everywhere=True, mirror_everywhere=True), small_image=True
    )
    assert [type(p).__name__ for p in regional] == ["CenterFace", "InRegions", "Flipped"]
    assert [type(p).__name__ for p in whole] == ["CenterFace", "CenterFace", "Flipped"]
    # Seeds come from the first pass: it reports from the seed score; whole, from the
    # candidate threshold as before.
    assert regional[0].threshold == SEED_SCORE
    assert whole[0].threshold == CANDIDATE_THRESHOLD


@pytest.fixture(scope="module")
def small_faces():
    """skimage's astronaut (public domain) shrunk so her face is about 14 px, eight times
    on a 1024x680 grey photo at odd offsets (not on any grid)."""
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut(), (72, 72), interpolation=cv2.INTER_AREA)
    canvas = np.full((680, 1024, 3), 118, np.uint8)
    spots = [(37 + 117 * i, 41 + 75 * (i % 4)) for i in range(8)]
    for x, y in spots:
        canvas[y : y + 72, x : x + 72] = face
    return canvas, spots


@pytest.mark.slow
def test_the_2x_pass_in_regions_gives_the_boxes_of_the_whole_pass(small_faces):
    canvas, spots = small_faces
    up = CenterFace(scale=2.0, max_face_px=UPSCALED_MAX_FACE_PX)
    regions = [Box(x, y, 72, 72) for x, y in spots]
    whole = [d for d in up.detect(canvas) if any(_centred(d.box, r) for r in regions)]
    parts = up.detect_in(canvas, regions)
    assert len(whole) >= len(spots)
    assert len(parts) == len(whole)
    for d in whole:
        twin = min(parts, key=lambda p: abs(p.box.x - d.box.x) + abs(p.box.y - d.box.y))
        assert twin.box.x == pytest.approx(d.box.x, abs=0.5)
        assert twin.box.y == pytest.approx(d.box.y, abs=0.5)
        assert twin.box.w == pytest.approx(d.box.w, abs=0.5)
        # The network sees further than the crop's 64 px of context: weak boxes' scores move
        # by up to 0.016 (0.006 with 128 px, at over twice the cost for a small region).
        assert twin.score == pytest.approx(d.score, abs=0.025)


@pytest.mark.slow
def test_the_default_finds_the_small_faces_the_whole_2x_pass_finds(small_faces):
    canvas, _ = small_faces
    regional = DetectionStage().detect(canvas)
    whole = DetectionStage(DetectionSettings(upscale_everywhere=True)).detect(canvas)
    assert len(regional) == len(whole) >= 8
    for a, b in zip(
        sorted(regional, key=lambda d: d.box.x), sorted(whole, key=lambda d: d.box.x), strict=True
    ):
        assert a.box.iou(b.box) > 0.9


def test_a_region_larger_than_a_tile_is_cut_into_crops_that_fit():
    up = CenterFace(scale=2.0, max_face_px=UPSCALED_MAX_FACE_PX, tile_mp=0.5)
    crops = up._crops(2048, 1376, 2.0, 2.0, [Box(0, 0, 1024, 680)])
    assert len(crops) > 1
    for x0, y0, x1, y1 in crops:
        assert (x1 - x0 + 2 * 64 + 32) * (y1 - y0 + 2 * 64 + 32) <= 0.5e6
    # Edge to edge, no gap and no overlap between the parts.
    assert sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in crops) == 2048 * 1360


def _centred(box, region):
    cx, cy = box.center
    return region.x <= cx < region.x2 and region.y <= cy < region.y2
