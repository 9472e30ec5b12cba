"""Seam looks at large faces run on a reduced crop, and never judge a small face (issue 18).

Exact, with a stand-in network that records what it is asked to look at.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.boxes import Box
from pipeline.detection import LOOK_FACE_PX, DetectionSettings, Thoroughness, build_passes
from pipeline.detectors import LOOK_SERVES_PX, CenterFace, Detection

CORE = (-np.inf, -np.inf, np.inf, np.inf)


class Recorder(CenterFace):
    """Reports nothing; records each inference's input size and factor."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = []

    def _infer(self, pixels, factor, dx, dy):
        self.calls.append((pixels.shape[1], pixels.shape[0], factor))
        return []


RESIZED = np.zeros((1920, 2560, 3), np.uint8)


@pytest.mark.parametrize(
    "size, factor",
    [
        (400, LOOK_FACE_PX / 400),  # crop 1,216 px square, reduced to show the face at 160 px
        (160, 1.0),
        (100, 1.0),
    ],
)
def test_a_look_at_a_large_face_is_reduced_to_show_it_at_160_px(size, factor):
    net = Recorder(look_face_px=LOOK_FACE_PX)
    _, _, f = net._crop_look(RESIZED, Box(1000, 600, size, size), CORE)
    assert f == pytest.approx(factor)
    assert net.calls[0][2] == pytest.approx(factor)


def test_without_look_face_px_a_look_is_reduced_only_to_fit_a_tile():
    net = Recorder()
    _, _, f = net._crop_look(RESIZED, Box(1000, 600, 400, 400), CORE)
    assert f == 1.0  # 1,216 x 1,216 px is under a 3.4 MP tile


def suspects(*boxes):
    return [(Detection(b, 0.9 - i * 0.01, "centerface@1x"), CORE) for i, b in enumerate(boxes)]


def test_a_reduced_look_serves_large_suspects_inside_it_but_not_small_ones():
    net = Recorder(look_face_px=LOOK_FACE_PX)
    big = Box(1000, 600, 400, 400)  # its look: f = 0.4, crop x 592..1808
    large = Box(1100, 700, 120, 120)  # 120 x 0.4 = 48 px in that look: served by it
    small = Box(1300, 900, 60, 60)  # 60 x 0.4 = 24 px: too coarse, it gets its own look
    assert 120 * 0.4 >= LOOK_SERVES_PX > 60 * 0.4
    kept = net._second_look(RESIZED, suspects(big, large, small))
    assert [f for _, _, f in net.calls] == [pytest.approx(0.4), 1.0]
    # The looks found nothing, so every suspect is kept as it was (fail closed).
    assert sorted(d.box.w for d in kept) == [60, 120, 400]


def test_a_full_size_look_serves_every_suspect_inside_it():
    net = Recorder()
    kept = net._second_look(RESIZED, suspects(Box(1000, 600, 400, 400), Box(1300, 900, 60, 60)))
    assert len(net.calls) == 1
    assert len(kept) == 2


def test_standard_reduces_its_seam_looks_and_paranoid_does_not():
    plain, mirror = build_passes(DetectionSettings(coarse_first=False), small_image=False)
    assert plain.look_face_px == LOOK_FACE_PX == 160
    assert mirror.inner.inner.look_face_px == LOOK_FACE_PX
    # Coarse first: every pass that can be tiled (the full-size ones, run whole on a
    # crowd) reduces its seam looks too.
    coarse, cmirror, fine, fmirror = build_passes(DetectionSettings(), small_image=False)
    for net in (coarse, cmirror.inner.inner, fine.inner, fmirror.inner.inner):
        assert net.look_face_px == LOOK_FACE_PX
    paranoid = build_passes(DetectionSettings(thoroughness=Thoroughness.PARANOID))
    assert paranoid[0].look_face_px is None


def test_reduced_seam_looks_is_a_setting():
    for coarse_first in (True, False):
        settings = DetectionSettings(reduced_seam_looks=False, coarse_first=coarse_first)
        assert build_passes(settings, small_image=False)[0].look_face_px is None
    assert DetectionSettings().describe()["reduced_seam_looks"] is True
