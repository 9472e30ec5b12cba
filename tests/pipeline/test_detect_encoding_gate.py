"""analyse() computes a face template only for a face that could be kept (exact)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import analysis
from pipeline.analysis import Gallery, analyse
from pipeline.boxes import Box
from pipeline.detectors import Detection
from pipeline.matching import MatchSettings

SETTINGS = MatchSettings()
rng = np.random.default_rng(3)
# Noise is sharp at any scale, so sharpness never stands in the way here.
PIXELS = rng.integers(0, 255, (600, 800, 3), np.uint8)
LARGE = Box(100, 100, 120, 140)
SMALL = Box(400, 300, SETTINGS.min_face_px - 2, SETTINGS.min_face_px - 2)


class Found:
    def __init__(self, *boxes):
        self.boxes = boxes

    def detect(self, pixels, *, orientation_known=True):
        return [Detection(b, 0.9, "stub") for b in self.boxes]


@pytest.fixture
def encoded(monkeypatch):
    calls: list[list[Box]] = []

    class Spy:
        def encode(self, pixels, boxes):
            calls.append(list(boxes))
            return [np.zeros(128) for _ in boxes]

    monkeypatch.setattr(analysis, "get_recogniser", lambda name: Spy())
    # Frontal landmarks for any box (no real face in the noise), so pose never blurs it.
    frontal = np.zeros((68, 2), np.float32)
    frontal[36:42], frontal[42:48], frontal[30] = (40, 50), (80, 50), (60, 70)
    frontal[48], frontal[54] = (45, 90), (75, 90)
    monkeypatch.setattr(analysis, "dlib_landmarks", lambda pixels, boxes: [frontal for _ in boxes])
    return calls


@pytest.mark.parametrize(
    "permitted, boxes, want",
    [
        ({"P001": 1}, (LARGE, SMALL), [LARGE]),  # too small to match: blurred anyway
        ({}, (LARGE, SMALL), []),  # nobody may be kept for the purpose
        ({"P001": 1}, (SMALL,), []),
    ],
)
def test_only_faces_that_could_be_kept_are_encoded(encoded, permitted, boxes, want):
    gallery = Gallery(encodings={"P001": np.zeros((1, 128))}, permitted=permitted)
    decisions = analyse(PIXELS, Found(*boxes), gallery, SETTINGS)  # type: ignore[arg-type]
    assert len(decisions) == len(boxes)
    assert sum(encoded, []) == want


def test_no_face_that_could_be_kept_loads_no_dlib_model(monkeypatch):
    """A publish where nobody may be kept asks for no landmarks, so dlib's landmark model
    (0.7 s to load, in every worker) is never loaded for it."""
    from pipeline import recognisers

    def no_models():
        raise AssertionError("dlib's landmark model was loaded for no face")

    monkeypatch.setattr(recognisers, "landmark_predictor", no_models)
    assert recognisers.dlib_landmarks(PIXELS, []) == []
    gallery = Gallery(encodings={"P001": np.zeros((1, 128))}, permitted={})
    decisions = analyse(PIXELS, Found(LARGE, SMALL), gallery, SETTINGS)  # type: ignore[arg-type]
    assert [d.decision.value for d in decisions] == ["blurred", "blurred"]
