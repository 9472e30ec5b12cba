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
from pipeline.matching import sharpness

# A reference is the yardstick later matches are measured against, so it must be better
# than the faces it will be compared with (matching's own minimum is 60 px).
MIN_REFERENCE_FACE_PX = 80
# The same sharpness scale as matching (variance of the Laplacian at 100 px); a reference
# should be clearly sharp (sharp LFW and deepface faces measured 40 and up, 5th percentile 84).
MIN_REFERENCE_SHARPNESS = 40.0
# Beyond about 30 degrees of turn the far eye is foreshortened and recognisers' alignment
# (a similarity transform to a frontal template) distorts the face.
MAX_REFERENCE_YAW = 30.0
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
            or (self.yaw is not None and abs(self.yaw) > MAX_REFERENCE_YAW / 2)
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
    image, nose tip, mouth corners). Yaw is estimated from how far the nose tip sits from
    the middle of the eyes, relative to half the eye distance (0 frontal, about 45 when the
    nose reaches an eye); roll is the angle of the eye line. Sign: positive yaw when the
    nose sits right of the middle in the image."""
    p = np.asarray(points5, np.float64)
    left, right, nose = p[0], p[1], p[2]
    eye_vec = right - left
    eye_dist = float(np.hypot(*eye_vec))
    if eye_dist < 1e-6:
        return 90.0, 0.0
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    # Project the nose's offset from the eye midpoint onto the eye line.
    offset = float(np.dot(nose - (left + right) / 2, eye_vec / eye_dist))
    yaw = math.degrees(math.atan2(offset, eye_dist / 2))
    return yaw, roll


def face_quality(pixels: np.ndarray, box: Box, points5: np.ndarray | None) -> FaceQuality:
    """The quality of the face in ``box`` of ``pixels`` (RGB uint8), with its 5 landmarks
    (None when none were found)."""
    yaw, roll = (None, None) if points5 is None else pose(points5)
    return FaceQuality(float(box.size), sharpness(pixels, box), yaw, roll)
