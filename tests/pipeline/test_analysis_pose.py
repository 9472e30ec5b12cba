"""analyse() measures each face's pose and never encodes a face turned past the limit."""

from __future__ import annotations

import numpy as np
import pytest

import pipeline.analysis as analysis
from pipeline.analysis import Gallery, analyse
from pipeline.boxes import Box
from pipeline.detectors import Detection
from pipeline.matching import Decision, Reason
from pipeline.recognisers import match_settings

FRONT = Box(10, 10, 100, 100)
TURNED = Box(200, 10, 100, 100)


class TwoFaces:
    def detect(self, pixels: np.ndarray, *, orientation_known: bool = True) -> list[Detection]:
        return [Detection(FRONT, 0.9, "stub"), Detection(TURNED, 0.9, "stub")]


def landmarks68(box: Box, nose_shift: float) -> np.ndarray:
    """68 points whose eyes, nose tip and mouth corners make a face turned by nose_shift."""
    pts = np.zeros((68, 2), np.float32)
    cx, cy, e = box.x + box.w / 2, box.y + box.h / 2, box.w / 5
    pts[36:42] = (cx - e, cy - 10)
    pts[42:48] = (cx + e, cy - 10)
    pts[30] = (cx + nose_shift, cy + 10)
    pts[48] = (cx - e * 0.8, cy + 30)
    pts[54] = (cx + e * 0.8, cy + 30)
    return pts


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> list[list[Box]]:
    encoded: list[list[Box]] = []

    def fake_landmarks(pixels: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        return [landmarks68(b, 0.0 if b == FRONT else 40.0) for b in boxes]

    class FakeRecogniser:
        def encode(self, pixels: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
            encoded.append(list(boxes))
            return [np.ones(128) for _ in boxes]

    monkeypatch.setattr(analysis, "dlib_landmarks", fake_landmarks)
    monkeypatch.setattr(analysis, "sharpness", lambda pixels, box: 500.0)
    monkeypatch.setattr(analysis, "get_recogniser", lambda name: FakeRecogniser())
    return encoded


def test_turned_face_is_blurred_without_a_template(stubs: list[list[Box]]) -> None:
    gallery = Gallery({"P1": np.ones((1, 128))}, {"P1": 1}, recogniser="sface")
    faces = analyse(np.zeros((200, 400, 3), np.uint8), TwoFaces(), gallery, match_settings("sface"))  # type: ignore[arg-type]
    assert [(f.decision, f.reason) for f in faces] == [
        (Decision.KEPT, Reason.MATCHED_WITH_CONSENT),
        (Decision.BLURRED, Reason.TURNED_AWAY),
    ]
    assert stubs == [[FRONT]]


def test_no_limit_compares_every_face(stubs: list[list[Box]]) -> None:
    gallery = Gallery({"P1": np.ones((1, 128))}, {"P1": 1}, recogniser="sface")
    settings = match_settings("sface", max_yaw=None)
    analyse(np.zeros((200, 400, 3), np.uint8), TwoFaces(), gallery, settings)  # type: ignore[arg-type]
    assert stubs == [[FRONT, TURNED]]


def test_gallery_of_another_recogniser_is_refused(stubs: list[list[Box]]) -> None:
    from pipeline.errors import InvalidOptions

    gallery = Gallery({"P1": np.ones((1, 128))}, {"P1": 1}, recogniser="dlib")
    with pytest.raises(InvalidOptions, match="dlib templates but matching was set up for sface"):
        analyse(np.zeros((200, 400, 3), np.uint8), TwoFaces(), gallery, match_settings("sface"))  # type: ignore[arg-type]
