"""Standard's mirrored pass looks only around the plain pass's candidates (issue 18).

The rule, exactly, with stand-in passes; the mapping of regions into the mirrored and
turned copies, exactly; and on real pixels, with tolerances, that the regional mirror
gives the boxes of the whole one.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.boxes import Box
from pipeline.detection import (
    CANDIDATE_THRESHOLD,
    MIRROR_CONTEXT,
    MIRROR_PAD,
    SEED_SCORE,
    WHOLE_SECOND_LOOK,
    Detection,
    DetectionSettings,
    DetectionStage,
    InRegions,
    Thoroughness,
    build_passes,
    second_look_regions,
)
from pipeline.detectors import CenterFace, Flipped
from tests.support.detect_fakes import Fixed

IMG = np.zeros((680, 1024, 3), np.uint8)


class MirrorSpy(InRegions):
    """The mirrored pass as the stage calls it: records the regions it is given and
    reports one 30 px box centred in each (one box in the corner when run whole)."""

    def __init__(self):
        super().__init__(Flipped(CenterFace(threshold=SEED_SCORE)), split_ok=False)
        self.calls = []

    def detect(self, pixels, regions=None):
        self.calls.append(regions)
        if regions is None:
            return [Detection(Box(0, 0, 30, 30), 0.9, self.name)]
        return [
            Detection(Box(r.center[0] - 15, r.center[1] - 15, 30, 30), 0.9, self.name)
            for r in regions
        ]


def mirror_stage(*dets):
    s = DetectionStage()
    spy = MirrorSpy()
    s._small = s._large = [Fixed("centerface@1x", *dets), spy]
    s._zoom.score = lambda pixels, box: 0.0
    return s, spy


def test_a_seed_of_40_px_reaches_two_sizes():
    # Centre (500, 300), reach 2 x 40 = 80 px: x 420..580, y 220..380; 32 px cells
    # 13..18 and 6..11.
    assert MIRROR_CONTEXT == 2.0
    assert second_look_regions(680, 1024, [Box(480, 280, 40, 40)], MIRROR_CONTEXT) == [
        Box(416, 192, 192, 192)
    ]


def test_a_large_seed_reaches_two_sizes_too():
    # A 400 px face at (2000, 1400) of a 12 MP photo: 800 px each way.
    [r] = second_look_regions(3000, 4000, [Box(1800, 1200, 400, 400)], MIRROR_CONTEXT)
    assert r == Box(1184, 576, 1632, 1632)


def test_the_mirror_looks_around_every_plain_candidate_of_any_size():
    weak = (Box(95, 95, 10, 10), SEED_SCORE)  # a seed, not a candidate
    large = (Box(600, 300, 60, 60), 0.9)  # too large to seed the 2x pass; seeds the mirror
    s, spy = mirror_stage(weak, large)
    found = s.detect(IMG)
    assert spy.calls == [second_look_regions(680, 1024, [weak[0], large[0]], MIRROR_CONTEXT)]
    # Weak seed at centre (100, 100): max(32, 2 x 10) = 32 px each way. Large one at
    # (630, 330): 120 px each way, x 510..750 and y 210..450, on the 32 px grid.
    assert spy.calls[0] == [Box(64, 64, 96, 96), Box(480, 192, 288, 288)]
    # The weak seed is no face; the mirror's box in its region is, and the large
    # candidate is one face with the mirror's box inside it.
    assert SEED_SCORE < CANDIDATE_THRESHOLD
    assert len(found) == 2
    assert min(found, key=lambda d: d.box.x).box == Box(97, 97, 30, 30)


def test_no_plain_candidate_no_mirrored_pass():
    s, spy = mirror_stage()
    assert s.detect(IMG) == []
    assert spy.calls == [[]]


def test_a_crowd_gets_the_whole_mirrored_pass():
    crowd = [(Box(x, y, 20, 20), 0.6) for x in range(20, 1000, 90) for y in range(20, 660, 90)]
    s, spy = mirror_stage(*crowd)
    s.detect(IMG)
    assert spy.calls == [None]


def test_a_region_larger_than_a_tile_runs_the_mirror_whole_but_the_2x_pass_in_parts():
    # A 12 MP photo, and seeds so far apart that their regions take under
    # WHOLE_SECOND_LOOK of it but one region is larger than a 3.4 MP tile.
    h, w = 3000, 4000
    seeds = [Box(300, 300, 700, 700), Box(3900, 2900, 20, 20)]
    mirror = InRegions(Flipped(CenterFace(threshold=SEED_SCORE)), split_ok=False)
    up = InRegions(CenterFace(scale=2.0, max_face_px=48))
    regions = second_look_regions(h, w, seeds, MIRROR_CONTEXT)
    assert mirror.pixels_run(h, w, regions) <= WHOLE_SECOND_LOOK
    assert mirror.inner.inner.splits(h, w, regions)
    assert mirror.plan(h, w, regions, WHOLE_SECOND_LOOK) is None
    assert up.plan(h, w, regions, 1.0) == regions
    small = [Box(3900, 2900, 20, 20)]
    assert mirror.plan(h, w, small, WHOLE_SECOND_LOOK) == small


@pytest.mark.parametrize(
    "settings, kinds",
    [
        (DetectionSettings(), ["CenterFace", "InRegions", "InRegions"]),
        (DetectionSettings(mirror_everywhere=True), ["CenterFace", "InRegions", "Flipped"]),
        (
            DetectionSettings(thoroughness=Thoroughness.PARANOID),
            ["CenterFace", "CenterFace", "Flipped", "Flipped", "Rotated", "Rotated", "Rotated"],
        ),
    ],
)
def test_settings_say_where_the_mirror_runs(settings, kinds):
    passes = build_passes(settings, small_image=True)
    assert [type(p).__name__ for p in passes] == kinds
    assert settings.describe()["mirror_everywhere"] is settings.mirror_everywhere


def test_on_large_photos_the_plain_pass_reports_seeds_for_the_mirror():
    # The full-size search of a large photo (coarse_first off; the coarse-first one is
    # pinned in test_detect_coarse_first.py).
    [plain, mirror] = build_passes(DetectionSettings(coarse_first=False), small_image=False)
    assert plain.threshold == SEED_SCORE
    # A seed near a tile seam gets no second look (only candidates do), and the mirror
    # seeds nothing on a large photo (no 2x pass there), so it reports candidates only.
    assert plain.look_threshold == CANDIDATE_THRESHOLD
    assert isinstance(mirror, InRegions) and not mirror.split_ok
    assert mirror.inner.inner.threshold == CANDIDATE_THRESHOLD
    [_, _, small_mirror] = build_passes(DetectionSettings(), small_image=True)
    assert small_mirror.inner.inner.threshold == SEED_SCORE  # it seeds the 2x pass
    [plain, _] = build_passes(
        DetectionSettings(mirror_everywhere=True, coarse_first=False), small_image=False
    )
    assert plain.threshold == CANDIDATE_THRESHOLD


class Marker:
    """Reports one 1x1 box on every bright pixel of the crops it is given (in the
    coordinates of the image it was handed), like CenterFace.detect_in."""

    name = "marker"

    def detect_in(self, pixels, regions):
        out = []
        for r in regions:
            rows, cols = r.pixel_slices(pixels.shape[1], pixels.shape[0])
            ys, xs = np.nonzero(pixels[rows, cols, 0] > 0)
            out += [
                Detection(Box(x + cols.start, y + rows.start, 1, 1), 1.0, self.name)
                for y, x in zip(ys.tolist(), xs.tolist(), strict=True)
            ]
        return out

    def detect(self, pixels):
        return self.detect_in(pixels, [Box(0, 0, pixels.shape[1], pixels.shape[0])])


def marked(points, h=6, w=9):
    img = np.zeros((h, w, 3), np.uint8)
    for x, y in points:
        img[y, x] = 255
    return img


def test_mirror_in_regions_maps_regions_and_boxes_exactly():
    img = marked([(7, 4), (1, 1)])
    # Only the region around (7, 4) is looked at; its box comes back where the pixel is.
    assert [d.box for d in Flipped(Marker()).detect_in(img, [Box(6, 3, 3, 3)])] == [Box(7, 4, 1, 1)]
    assert [d.box for d in Flipped(Marker()).detect_in(img, [Box(0, 0, 3, 3)])] == [Box(1, 1, 1, 1)]


@pytest.fixture(scope="module")
def portraits():
    """skimage's astronaut (public domain) at 90 px, four times on a 1024x680 grey photo
    at odd offsets, mirrored twice (the mirror pass sees them the other way round)."""
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut(), (150, 150), interpolation=cv2.INTER_AREA)
    canvas = np.full((680, 1024, 3), 118, np.uint8)
    for i, (x, y) in enumerate([(41, 37), (303, 251), (611, 93), (829, 471)]):
        canvas[y : y + 150, x : x + 150] = face[:, ::-1] if i % 2 else face
    return canvas


@pytest.mark.slow
def test_the_mirror_in_regions_gives_the_boxes_of_the_whole_mirror(portraits):
    mirror = Flipped(CenterFace(threshold=CANDIDATE_THRESHOLD))
    seeds = [d.box for d in CenterFace(threshold=SEED_SCORE).detect(portraits)]
    regions = second_look_regions(680, 1024, seeds, MIRROR_CONTEXT)
    whole = merge(mirror.detect(portraits))
    parts = merge(mirror.detect_in(portraits, regions))
    assert len(whole) >= 4
    assert len(parts) == len(whole)
    for d in whole:
        twin = max(parts, key=lambda p: p.box.iou(d.box))
        assert twin.box.iou(d.box) > 0.95
        assert twin.score == pytest.approx(d.score, abs=0.03)


@pytest.mark.slow
def test_the_default_finds_the_faces_the_whole_mirror_finds(portraits):
    regional = DetectionStage().detect(portraits)
    whole = DetectionStage(DetectionSettings(mirror_everywhere=True)).detect(portraits)
    assert len(regional) == len(whole) >= 4
    for d in whole:
        assert max(r.box.iou(d.box) for r in regional) > 0.9


def merge(dets):
    from pipeline.detection import merge_detections

    return merge_detections(dets)


def test_the_mirror_sees_128_px_of_context_around_each_region():
    # A 64 px region at (480, 320) of a 1024x680 photo. The input is 1024x704 (rows
    # stretched by 704/680), so the region is x 480..544, y 331..398 there; 128 px each
    # side, out to the 32 px grid: x 352..672, y 192..544. With 64 px, two tiny faces on
    # the 12 MP mosaics scored a few thousandths lower than in the whole pass, under the
    # 0.35 two-pass line (docs/detection.md, "Mirror around seeds").
    [_, _, mirror] = build_passes(DetectionSettings(), small_image=True)
    assert MIRROR_PAD == 128
    assert mirror.pixels_run(680, 1024, [Box(480, 320, 64, 64)]) == (320 * 352) / (1024 * 704)
    assert mirror.inner.inner.region_pad == MIRROR_PAD
