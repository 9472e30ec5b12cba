"""Turning reference photos into face encodings for enrolment.

A reference photo must show exactly one usable face: large enough to encode well and
with no second face that could be enrolled by mistake. Only the encoding leaves this
module; the photo itself is never stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.detection import DetectionSettings, DetectionStage
from pipeline.errors import EnrolmentRejected
from pipeline.loading import load_image
from pipeline.matching import encode_faces

# A reference is the yardstick every later match is measured against, so it must be
# better than the faces it will be compared with (matching's minimum is 60 px).
MIN_REFERENCE_FACE_PX = 80
# A second detection this confident means a second person is in the photo.
SECOND_FACE_SCORE = 0.5


@dataclass(frozen=True)
class Reference:
    """One enrolable face: its encoding and the hash of the photo it came from."""

    path: Path
    encoding: np.ndarray
    sha256: str


def reference_from_photo(path: Path, detector: DetectionStage | None = None) -> Reference:
    """Encode the single face in a reference photo, or raise EnrolmentRejected saying why."""
    loaded = load_image(path)
    stage = detector or DetectionStage(DetectionSettings())
    faces = sorted(stage.detect(loaded.pixels), key=lambda d: d.box.area, reverse=True)
    if not faces:
        raise EnrolmentRejected(f"{path.name}: no face found; use a clear, front-on photo")
    others = [d for d in faces[1:] if d.score >= SECOND_FACE_SCORE]
    if others:
        # Where the other faces are, so the person cropping knows what to cut (or sees
        # that it is a picture on the wall); pixels of the photo shown upright.
        where = "; ".join(
            f"x {d.box.x:.0f}, y {d.box.y:.0f}, {d.box.w:.0f}x{d.box.h:.0f} px" for d in others
        )
        noun = "the other face is" if len(others) == 1 else "the other faces are"
        raise EnrolmentRejected(
            f"{path.name}: {len(others) + 1} faces found; a reference photo must show "
            f"only the pupil being enrolled (crop it: {noun} at {where}, "
            "left, top, width x height of the upright photo)"
        )
    face = faces[0]
    if face.box.size < MIN_REFERENCE_FACE_PX:
        raise EnrolmentRejected(
            f"{path.name}: the face is {face.box.size:.0f} px across; references need at "
            f"least {MIN_REFERENCE_FACE_PX} px (use a larger or closer photo)"
        )
    encoding = encode_faces(loaded.pixels, [face.box])[0]
    if encoding is None:
        raise EnrolmentRejected(f"{path.name}: the face could not be encoded; use another photo")
    return Reference(Path(path), encoding, loaded.sha256)


def encode_reference(path: Path) -> tuple[np.ndarray, str]:
    """``(encoding, sha256 of the photo)`` of the single face in a reference photo, the
    shape ``consent.enrolment.enrol`` takes; raises EnrolmentRejected saying why not."""
    ref = reference_from_photo(path)
    return ref.encoding, ref.sha256


REFERENCE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def references_in_folder(folder: Path) -> Iterator[tuple[str, Path]]:
    """``(pupil_id, photo)`` pairs from ``DIR/<pupil_id>.jpg`` and ``DIR/<pupil_id>/*.jpg``."""
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in REFERENCE_SUFFIXES:
            yield entry.stem, entry
        elif entry.is_dir():
            for photo in sorted(entry.iterdir()):
                if photo.is_file() and photo.suffix.lower() in REFERENCE_SUFFIXES:
                    yield entry.name, photo
