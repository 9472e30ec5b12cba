"""How good a face is for recognition: size, sharpness and pose, in numbers and plain words.

Enrolment reports it for every reference photo (and refuses a reference that is not
usable); matching uses the same measures on event faces (pipeline.analysis). Pose comes
from five landmarks (eye centres, nose tip, mouth corners, as
``pipeline.recognisers.five_points`` gives them), so it costs nothing beyond the landmarks
the recogniser finds anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.boxes import Box
from pipeline.matching import DEFAULT_MAX_YAW, sharpness, yaw_from_landmarks

# A reference is the yardstick later matches are measured against, so it must be better
# than the faces it will be compared with (matching's own minimum is 60 px).
MIN_REFERENCE_FACE_PX = 80
# The same sharpness scale as matching (variance of the Laplacian at 100 px): a reference
# must be at least as sharp as the faces matching accepts (pipeline.matching's floor, 30).
# On the LFW portraits (65 first and second photos) the 5th percentile was 63, the median 191.
MIN_REFERENCE_SHARPNESS = 30.0
# A reference may be turned no further than a face matching compares at all
# (pipeline.matching.DEFAULT_MAX_YAW); over 30 degrees it is graded "fair". On the LFW
# portraits (65 first and second photos) the yaw estimate's median was 18 degrees, 95th
# percentile 35.
MAX_REFERENCE_YAW = DEFAULT_MAX_YAW
FAIR_REFERENCE_YAW = 30.0
MAX_REFERENCE_ROLL = 30.0


@dataclass(frozen=True)
class FaceQuality:
    """A face's size (shorter side of its box, px), sharpness, and pose in degrees
    (``yaw``: turn left/right, 0 frontal; ``roll``: head tilt; None without landmarks)."""

    size_px: float
    sharpness: float
    yaw: float | None
    roll: float | None

    def problems(self) -> list[str]:
        """What makes this face a poor reference, in plain words (empty: a good one)."""
        out = []
        if self.size_px < MIN_REFERENCE_FACE_PX:
            out.append(
                f"the face is {self.size_px:.0f} px across; references need at least "
                f"{MIN_REFERENCE_FACE_PX} px (use a larger or closer photo)"
            )
        if self.sharpness < MIN_REFERENCE_SHARPNESS:
            out.append("the face is blurred or out of focus (use a sharper photo)")
        if self.yaw is None:
            out.append("the eyes, nose and mouth could not be located (use a front-on photo)")
        elif abs(self.yaw) > MAX_REFERENCE_YAW:
            out.append(
                f"the face is turned about {abs(self.yaw):.0f} degrees to the side "
                "(use a front-on photo)"
            )
        if self.roll is not None and abs(self.roll) > MAX_REFERENCE_ROLL:
            out.append(
                f"the head is tilted about {abs(self.roll):.0f} degrees (use an upright photo)"
            )
        return out

    @property
    def usable(self) -> bool:
        return not self.problems()

    def grade(self) -> str:
        """``good``, ``fair`` (usable, but a better photo would match more often) or ``poor``."""
        if not self.usable:
            return "poor"
        fair = (
            self.size_px < 1.5 * MIN_REFERENCE_FACE_PX
            or self.sharpness < 84.0
            or (self.yaw is not None and abs(self.yaw) > FAIR_REFERENCE_YAW)
        )
        return "fair" if fair else "good"

    def to_record(self) -> dict[str, object]:
        return {
            "size_px": round(self.size_px, 1),
            "sharpness": round(self.sharpness, 1),
            "yaw": None if self.yaw is None else round(self.yaw, 1),
            "roll": None if self.roll is None else round(self.roll, 1),
            "grade": self.grade(),
        }


def pose(points5: np.ndarray) -> tuple[float, float]:
    """``(yaw, roll)`` in degrees from the 5 points (left eye, right eye as seen in the
    image, nose tip, mouth corners): yaw as matching measures it
    (`pipeline.matching.yaw_from_landmarks`, 0 frontal), roll the angle of the eye line."""
    p = np.asarray(points5, np.float64)
    eye_vec = p[1] - p[0]
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0])) if np.hypot(*eye_vec) > 1e-9 else 0.0
    return yaw_from_landmarks(p), roll


def face_quality(pixels: np.ndarray, box: Box, points5: np.ndarray | None) -> FaceQuality:
    """The quality of the face in ``box`` of ``pixels`` (RGB uint8), with its 5 landmarks
    (None when none were found)."""
    yaw, roll = (None, None) if points5 is None else pose(points5)
    return FaceQuality(float(box.size), sharpness(pixels, box), yaw, roll)
