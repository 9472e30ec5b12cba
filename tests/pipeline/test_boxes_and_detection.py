"""Box maths, box merging and rotation mapping: deterministic, so asserted exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.boxes import Box
from pipeline.detection import (
    Detection,
    DetectionSettings,
    Flipped,
    Rotated,
    Thoroughness,
    build_passes,
    decode_centerface,
    merge_detections,
    unrotate_box,
)


def test_box_geometry():
    b = Box(10, 20, 30, 40)
    assert (b.x2, b.y2, b.area, b.center, b.size) == (40, 60, 1200, (25, 40), 30)
    assert b.scaled(2) == Box(-5, 0, 60, 80)
    assert b.expanded(0.5, 0.25, 0.5, 0) == Box(-5, 10, 60, 50)
    assert b.clipped(35, 50) == Box(10, 20, 25, 30)
    assert b.to_list() == [10, 20, 30, 40]
    assert b.to_trbl() == (20, 40, 60, 10)


@pytest.mark.parametrize(
    "a, b, iou",
    [
        (Box(0, 0, 10, 10), Box(0, 0, 10, 10), 1.0),
        (Box(0, 0, 10, 10), Box(10, 0, 10, 10), 0.0),
        (Box(0, 0, 10, 10), Box(5, 0, 10, 10), 50 / 150),
        (Box(0, 0, 10, 10), Box(2, 2, 5, 5), 25 / 100),
    ],
)
def test_iou(a, b, iou):
    assert a.iou(b) == pytest.approx(iou)
    assert b.iou(a) == pytest.approx(iou)


def test_pixel_slices_round_outwards_and_clip():
    rows, cols = Box(1.5, 2.5, 3.2, 4.1).pixel_slices(100, 100)
    assert (rows, cols) == (slice(2, 7), slice(1, 5))
    rows, cols = Box(-5, -5, 20, 20).pixel_slices(10, 8)
    assert (rows, cols) == (slice(0, 8), slice(0, 10))


def det(x, y, w, h, score=0.9, source="a"):
    return Detection(Box(x, y, w, h), score, source)


def test_merge_joins_overlapping_boxes_with_score_weighted_mean():
    merged = merge_detections([det(0, 0, 10, 10, 0.75, "a"), det(2, 0, 10, 10, 0.25, "b")])
    assert len(merged) == 1
    m = merged[0]
    assert m.score == 0.75
    assert m.source == "a,b"
    assert (m.box.x, m.box.y, m.box.x2, m.box.y2) == pytest.approx((0.5, 0, 10.5, 10), abs=1e-4)


def test_merge_keeps_separate_faces_apart():
    merged = merge_detections([det(0, 0, 10, 10), det(20, 0, 10, 10), det(40, 40, 5, 5, 0.1)])
    assert sorted(m.box.to_list() for m in merged) == [
        [0, 0, 10, 10],
        [20, 0, 10, 10],
        [40, 40, 5, 5],
    ]


def test_merge_absorbs_a_tight_box_inside_a_loose_one():
    # IoU is 0.16, but the small box lies wholly inside the big one: same face.
    merged = merge_detections([det(0, 0, 50, 50, 0.9), det(10, 10, 20, 20, 0.5)])
    assert len(merged) == 1


def test_merge_of_nothing_is_nothing():
    assert merge_detections([]) == []


@pytest.mark.parametrize(
    "k, expected",
    [
        # A 3x2 box at (1, 0) in the turned image of a 10 wide x 6 high original.
        (1, Box(10 - 2, 1, 2, 3)),
        (2, Box(10 - 4, 6 - 2, 3, 2)),
        (3, Box(0, 6 - 4, 2, 3)),
    ],
)
def test_unrotate_box_exact(k, expected):
    assert unrotate_box(Box(1, 0, 3, 2), k, 10, 6) == expected


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotated_pass_maps_a_marked_pixel_back(k):
    """A detector that reports the one bright pixel's box, run on a turned image."""
    img = np.zeros((6, 10, 3), np.uint8)
    img[4, 7] = 255  # row 4, column 7

    class BrightPixel:
        name = "bright"

        def detect(self, pixels):
            ys, xs = np.nonzero(pixels[..., 0])
            return [Detection(Box(float(xs[0]), float(ys[0]), 1, 1), 1.0, self.name)]

    found = Rotated(BrightPixel(), k).detect(img)
    assert found[0].box == Box(7, 4, 1, 1)
    assert Flipped(BrightPixel()).detect(img)[0].box == Box(7, 4, 1, 1)


@given(
    x=st.floats(0, 90),
    y=st.floats(0, 50),
    w=st.floats(1, 10),
    h=st.floats(1, 10),
    k=st.integers(1, 3),
)
def test_rotation_round_trip(x, y, w, h, k):
    """Turning a box with the image and mapping it back gives the box again."""
    W, H = 100, 60
    # Forward map of rot90 by k (counter-clockwise), the inverse of unrotate_box.
    if k == 1:
        turned = Box(y, W - x - w, h, w)
    elif k == 2:
        turned = Box(W - x - w, H - y - h, w, h)
    else:
        turned = Box(H - y - h, x, h, w)
    back = unrotate_box(turned, k, W, H)
    assert (back.x, back.y, back.w, back.h) == pytest.approx((x, y, w, h), abs=1e-6)


def test_decode_centerface_exact():
    heat = np.zeros((1, 1, 4, 4), np.float32)
    heat[0, 0, 1, 2] = 0.9
    scale = np.zeros((1, 2, 4, 4), np.float32)  # exp(0) * 4 = 4 px boxes
    offset = np.zeros((1, 2, 4, 4), np.float32)
    boxes, scores = decode_centerface(heat, scale, offset, 0.5)
    assert scores.tolist() == pytest.approx([0.9])
    # centre (2 + 0.5) * 4 = 10 across, (1 + 0.5) * 4 = 6 down; 4 px wide and high
    assert boxes.tolist() == [[8.0, 4.0, 12.0, 8.0]]
    assert decode_centerface(heat, scale, offset, 0.95)[0].shape == (0, 4)


@pytest.mark.parametrize(
    "level, names",
    [
        (Thoroughness.FAST, ["centerface@1x"]),
        (Thoroughness.STANDARD, ["centerface@1x", "centerface@2x", "centerface@1x+flip"]),
    ],
)
def test_thoroughness_chooses_passes(level, names):
    assert [p.name for p in build_passes(DetectionSettings(thoroughness=level))] == names
