"""Turning reference photos into what enrolment stores: a template, a face crop, quality.

A reference photo must show exactly one usable face: large, sharp and front-on enough to
encode well (`pipeline.quality`), and with no second face that could be enrolled by
mistake. What leaves this module is the recogniser's template, the face crop (the face
and a margin, at most `CROP_SIDE` px, so a later recogniser can re-encode it and a
reviewer can see it), the face's quality and the day the photo was taken; the photo
itself is never stored.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from pipeline.boxes import Box
from pipeline.detection import DetectionSettings, DetectionStage
from pipeline.detectors import Detection
from pipeline.errors import EnrolmentRejected
from pipeline.loading import exif_taken, load_image
from pipeline.quality import MIN_REFERENCE_FACE_PX, FaceQuality, face_quality
from pipeline.recognisers import (
    DEFAULT_RECOGNISER,
    Recogniser,
    dlib_landmarks,
    five_points,
    get_recogniser,
)

__all__ = ["MIN_REFERENCE_FACE_PX", "Reference", "reference_from_photo"]

# A second detection this confident means a second person is in the photo.
SECOND_FACE_SCORE = 0.5
# The stored crop: the face box's longer side times CROP_SCALE, square, centred on the
# face, shrunk to at most CROP_SIDE px. Twice the face leaves the forehead, chin and ears
# in (every recogniser's alignment needs a margin round the landmarks: dlib's chip reaches
# 25% beyond them) and at 256 px the face keeps about 128 px, more than dlib's 150 px chip
# needs for a face that small in the first place and more than SFace's 112.
CROP_SCALE = 2.0
CROP_SIDE = 256


@dataclass(frozen=True)
class Reference:
    """One enrolable face: the ``recogniser``'s template ``encoding``, the hash of the
    photo, the face ``crop`` (RGB uint8) with the face's box inside it (``crop_face``), the
    face's ``quality`` and the day the photo was taken (EXIF, when it says)."""

    path: Path
    encoding: np.ndarray
    sha256: str
    recogniser: str
    version: str
    crop: np.ndarray
    crop_face: Box
    quality: FaceQuality
    taken_on: date | None

    def crop_png(self) -> bytes:
        """The crop as PNG bytes (lossless, no metadata), the form enrolment stores."""
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(self.crop).save(buf, format="PNG")
        return buf.getvalue()

    def quality_record(self) -> dict[str, object]:
        """The quality numbers and the crop's face box, as stored with the reference."""
        return self.quality.to_record() | {
            "crop_face": [round(v, 1) for v in self.crop_face.to_list()]
        }


def face_crop(pixels: np.ndarray, box: Box) -> tuple[np.ndarray, Box]:
    """The square crop around ``box`` (black where it passes the photo's edge), shrunk to
    at most `CROP_SIDE` px, and the box's place inside it."""
    import cv2

    side = max(box.w, box.h) * CROP_SCALE
    cx, cy = box.center
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    n = max(int(round(side)), 1)
    h, w = pixels.shape[:2]
    out = np.zeros((n, n, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + n, w), min(y0 + n, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = pixels[sy0:sy1, sx0:sx1]
    scale = 1.0
    if n > CROP_SIDE:
        scale = CROP_SIDE / n
        out = cv2.resize(out, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA)
    inner = Box((box.x - x0) * scale, (box.y - y0) * scale, box.w * scale, box.h * scale)
    return np.ascontiguousarray(out), inner


def _where(faces: list[Detection]) -> str:
    return "; ".join(
        f"x {d.box.x:.0f}, y {d.box.y:.0f}, {d.box.w:.0f}x{d.box.h:.0f} px" for d in faces
    )


def reference_from_photo(
    path: Path,
    detector: DetectionStage | None = None,
    recogniser: Recogniser | None = None,
) -> Reference:
    """The single face of a reference photo, encoded by ``recogniser`` (default: the
    code's default recogniser), or `EnrolmentRejected` saying why not, in plain words.
    The rejection's ``boxes`` lists the faces found (for a preview), when there are several."""
    rec = recogniser or get_recogniser(DEFAULT_RECOGNISER)
    loaded = load_image(path)
    stage = detector or DetectionStage(DetectionSettings())
    faces = sorted(stage.detect(loaded.pixels), key=lambda d: d.box.area, reverse=True)
    if not faces:
        raise EnrolmentRejected(f"{path.name}: no face found; use a clear, front-on photo")
    others = [d for d in faces[1:] if d.score >= SECOND_FACE_SCORE]
    if others:
        # Where the other faces are, so the person cropping knows what to cut (or sees
        # that it is a picture on the wall); pixels of the photo shown upright.
        noun = "the other face is" if len(others) == 1 else "the other faces are"
        error = EnrolmentRejected(
            f"{path.name}: {len(others) + 1} faces found; a reference photo must show "
            f"only the pupil being enrolled (crop it: {noun} at {_where(others)}, "
            "left, top, width x height of the upright photo)"
        )
        error.boxes = [faces[0].box, *(d.box for d in others)]
        error.pixels = loaded.pixels
        raise error
    face = faces[0]
    marks = dlib_landmarks(loaded.pixels, [face.box])[0]
    quality = face_quality(loaded.pixels, face.box, None if marks is None else five_points(marks))
    if problems := quality.problems():
        raise EnrolmentRejected(f"{path.name}: {'; '.join(problems)}")
    encoding = rec.encode(loaded.pixels, [face.box])[0]
    if encoding is None:
        raise EnrolmentRejected(f"{path.name}: the face could not be encoded; use another photo")
    crop, inner = face_crop(loaded.pixels, face.box)
    return Reference(
        path=Path(path),
        encoding=np.asarray(encoding, np.float64),
        sha256=loaded.sha256,
        recogniser=rec.name,
        version=rec.version,
        crop=crop,
        crop_face=inner,
        quality=quality,
        taken_on=exif_taken(Path(path).read_bytes()),
    )


def encode_crop(recogniser: Recogniser, crop: np.ndarray, face: Box) -> np.ndarray | None:
    """``recogniser``'s template of a stored reference crop (``enroll --reencode``)."""
    encoding = recogniser.encode(np.ascontiguousarray(crop, np.uint8), [face])[0]
    return None if encoding is None else np.asarray(encoding, np.float64)


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
