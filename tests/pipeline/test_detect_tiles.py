"""Tiled inference (bounded memory) and reduced copies for the mirrored and turned passes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.boxes import Box
from pipeline.detectors import (
    TILE_MP,
    TILE_OVERLAP,
    CenterFace,
    Detection,
    Flipped,
    Rotated,
    tile_grid,
)

ROOT = Path(__file__).resolve().parents[2]


@given(
    width=st.integers(32, 9000),
    height=st.integers(32, 9000),
    max_mp=st.floats(0.5, 4.0),
    overlap=st.integers(16, 200),
)
def test_tiles_cover_the_image_within_budget_and_overlap(width, height, max_mp, overlap):
    max_pixels = max_mp * 1e6
    if max_pixels < (2 * overlap + 1) ** 2:
        return
    grid = tile_grid(width, height, max_pixels, overlap)
    for x, y, w, h in grid:
        assert w * h <= max_pixels + 1e-6 or len(grid) == 1
        assert x >= 0 and y >= 0
        assert x + w <= width + 1e-6 and y + h <= height + 1e-6
    xs = sorted({(x, w) for x, _, w, _ in grid})
    ys = sorted({(y, h) for _, y, _, h in grid})
    # Edge to edge, each neighbour sharing exactly `overlap` pixels.
    assert xs[0][0] == 0 and xs[-1][0] + xs[-1][1] == pytest.approx(width)
    assert ys[0][0] == 0 and ys[-1][0] + ys[-1][1] == pytest.approx(height)
    for (a, aw), (b, _) in zip(xs, xs[1:], strict=False):
        assert a + aw - b == pytest.approx(overlap)
    for (a, ah), (b, _) in zip(ys, ys[1:], strict=False):
        assert a + ah - b == pytest.approx(overlap)


def test_a_small_image_is_one_tile():
    assert tile_grid(1000, 800, 2.4e6, 160) == [(0.0, 0.0, 1000, 800)]


def test_a_12mp_photo_takes_four_tiles_at_the_default_budget():
    grid = tile_grid(4000, 3008, TILE_MP * 1e6, TILE_OVERLAP)
    assert len(grid) == 4
    assert sum(w * h for _, _, w, h in grid) < 1.1 * 4000 * 3008  # overlap costs under 10%


def test_photos_up_to_2048_px_run_in_one_piece():
    """The evaluation photos' 2x pass (2048 px) is not tiled, so tiling cannot move the
    recall figures measured on them (a seam changes knife-edge scores of tiny faces)."""
    assert len(tile_grid(2048, 1536, TILE_MP * 1e6, TILE_OVERLAP)) == 1


class Bright:
    """Reports a 1x1 box at the brightest pixel; says it would run at half size."""

    name = "bright"

    def input_scale(self, height, width):
        return 0.5

    def detect(self, pixels):
        ys, xs = np.nonzero(pixels[..., 0] == pixels[..., 0].max())
        return [Detection(Box(float(xs[0]), float(ys[0]), 1, 1), 1.0, self.name)]


def test_mirrored_and_turned_passes_work_on_a_reduced_copy():
    img = np.zeros((200, 400, 3), np.uint8)
    img[100:110, 300:310] = 255  # a 10 px bright square around (305, 105)
    # The stand-in marks one corner of the square, so within its size of the centre.
    flipped = Flipped(Bright()).detect(img)[0].box
    assert flipped.w == 2  # one pixel of the half-size copy
    assert flipped.center == pytest.approx((305, 105), abs=6)
    for k in (1, 2, 3):
        turned = Rotated(Bright(), k).detect(img)[0].box
        assert turned.center == pytest.approx((305, 105), abs=6), k


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()  # public domain; one face about 100 px wide


def on_canvas(face_img, size, at):
    canvas = np.full((size[1], size[0], 3), 118, np.uint8)
    h, w = face_img.shape[:2]
    canvas[at[1] : at[1] + h, at[0] : at[0] + w] = face_img
    return canvas


@pytest.mark.slow
@pytest.mark.parametrize("seam_offset", [-60, 0, 40, 90])
def test_a_face_on_a_tile_seam_is_found_whole(astronaut, seam_offset):
    """The face sits across the seam between two tiles, at several offsets: the tiled
    detector finds one box for it, where the untiled detector does."""
    untiled = CenterFace(tile_mp=100)
    ref = max(untiled.detect(astronaut), key=lambda d: d.score).box
    tiled = CenterFace(tile_mp=0.6, tile_overlap=160)
    grid = tile_grid(1600, 800, 0.6e6, 160)
    seam = grid[1][0] + 80  # the middle of the first vertical overlap
    x0 = round(seam - ref.center[0] + seam_offset)
    canvas = on_canvas(astronaut, (1600, 800), (x0, 150))
    want = Box(ref.x + x0, ref.y + 150, ref.w, ref.h)
    near = [d for d in tiled.detect(canvas) if d.box.iou(want) > 0.1]
    assert near, "face lost at the seam"
    assert max(d.box.iou(want) for d in near) > 0.7


@pytest.mark.slow
def test_a_face_larger_than_the_overlap_is_found_by_the_reduced_pass(astronaut):
    import cv2

    big = cv2.resize(astronaut, (1400, 1400), interpolation=cv2.INTER_CUBIC)  # face ~280 px
    ref = max(CenterFace(tile_mp=100).detect(big), key=lambda d: d.score).box
    assert ref.w > 200
    tiled = CenterFace(tile_mp=0.6, tile_overlap=160)
    grid = tile_grid(2800, 1500, 0.6e6, 160)
    # The middle of the overlap nearest the canvas centre.
    seam = min((x + 80 for x, _, _, _ in grid if x > 0), key=lambda s: abs(s - 1400))
    x0 = round(seam - ref.center[0])
    canvas = on_canvas(big, (2800, 1500), (x0, 50))
    want = Box(ref.x + x0, ref.y + 50, ref.w, ref.h)
    assert max(d.box.iou(want) for d in tiled.detect(canvas)) > 0.6


@pytest.mark.slow
def test_peak_memory_on_a_24mp_photo_stays_under_1_5_gb():
    """The whole standard stage on a 24 MP photo, in a fresh process (VmHWM)."""
    code = textwrap.dedent(
        """
        import numpy as np
        from pipeline.detection import DetectionStage, opencv_threads
        from publishing.workers import peak_rss_mb
        opencv_threads(1)
        rng = np.random.default_rng(1)
        pixels = rng.integers(0, 255, (4000, 6000, 3), np.uint8)
        DetectionStage().detect(pixels, orientation_known=False)
        print(peak_rss_mb())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(out.stdout.strip().splitlines()[-1]) < 1536
