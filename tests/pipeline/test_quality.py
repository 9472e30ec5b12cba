"""Face quality (pose from five points, plain-word problems) and the stored face crop."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.boxes import Box
from pipeline.quality import FaceQuality, pose
from pipeline.references import CROP_SIDE, face_crop

FRONTAL = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], np.float32)


def test_frontal_face_has_no_yaw_or_roll() -> None:
    yaw, roll = pose(FRONTAL)
    assert yaw == pytest.approx(0.0, abs=1e-6) and roll == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("shift", "expected"), [(20.0, 53.13), (-20.0, -53.13), (10.0, 33.69)])
def test_yaw_grows_as_the_nose_moves_towards_an_eye(shift: float, expected: float) -> None:
    # Matching's estimate: atan(offset / (0.75 * half the eye distance)), eyes 40 px apart.
    points = FRONTAL.copy()
    points[2, 0] += shift
    assert pose(points)[0] == pytest.approx(expected, abs=0.01)


def test_roll_is_the_eye_line_angle() -> None:
    points = FRONTAL.copy()
    points[1, 1] += 40  # right eye 40 px lower over 40 px: 45 degrees
    assert pose(points)[1] == pytest.approx(45.0, abs=0.01)


@pytest.mark.parametrize(
    ("quality", "words"),
    [
        (FaceQuality(60, 200, 0, 0), "60 px across"),
        (FaceQuality(120, 20, 0, 0), "blurred"),
        (FaceQuality(120, 200, 55, 0), "turned about 55 degrees"),
        (FaceQuality(120, 200, None, None), "could not be located"),
        (FaceQuality(120, 200, 0, -35), "tilted about 35 degrees"),
    ],
)
def test_each_problem_is_said_in_plain_words(quality: FaceQuality, words: str) -> None:
    (problem,) = quality.problems()
    assert words in problem
    assert not quality.usable and quality.grade() == "poor"


@pytest.mark.parametrize(
    ("quality", "grade"),
    [
        (FaceQuality(200, 300, 5, 0), "good"),
        (FaceQuality(100, 300, 5, 0), "fair"),
        (FaceQuality(200, 300, 35, 0), "fair"),
    ],
)
def test_grade(quality: FaceQuality, grade: str) -> None:
    assert quality.grade() == grade


def test_crop_is_centred_twice_the_face_and_padded_black() -> None:
    pixels = np.full((400, 400, 3), 200, np.uint8)
    crop, inner = face_crop(pixels, Box(0, 100, 100, 100))  # face at the left edge
    assert crop.shape == (200, 200, 3)
    assert inner == Box(50, 50, 100, 100)
    assert (crop[:, :50] == 0).all() and (crop[:, 50:] == 200).all()


def test_large_face_crop_is_shrunk_to_the_crop_side() -> None:
    pixels = np.zeros((2000, 2000, 3), np.uint8)
    pixels[600:1400, 600:1400] = 255
    crop, inner = face_crop(pixels, Box(600, 600, 800, 800))
    assert crop.shape == (CROP_SIDE, CROP_SIDE, 3)
    assert inner == Box(64, 64, 128, 128)
    assert crop[128, 128].tolist() == [255, 255, 255] and crop[10, 10].tolist() == [0, 0, 0]
