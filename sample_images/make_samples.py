"""Regenerate the bundled sample photos from scikit-image's public-domain images.

    .venv/bin/python sample_images/make_samples.py

``astronaut`` (NASA, public domain) and ``camera`` (CC0 per scikit-image) are the only
sources; everything here is derived from them. The "event" photos carry planted metadata
(GPS, a camera serial, a full name in the comment and description, an EXIF thumbnail of a
different picture, and one sideways orientation tag) so the demo shows it being removed.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import piexif
from PIL import Image
from skimage import data

HERE = Path(__file__).resolve().parent
PLANTED_NAME = "Alex Example, Class 3B"


def _exif(orientation: int) -> bytes:
    thumb = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(thumb, "JPEG")
    return piexif.dump(
        {
            "0th": {
                piexif.ImageIFD.Make: b"ExampleCam",
                piexif.ImageIFD.Model: b"EC-100",
                piexif.ImageIFD.Orientation: orientation,
                piexif.ImageIFD.ImageDescription: PLANTED_NAME.encode(),
            },
            "Exif": {piexif.ExifIFD.BodySerialNumber: b"SN-0042-DEMO"},
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((51, 1), (30, 1), (0, 1)),
                piexif.GPSIFD.GPSLongitudeRef: b"W",
                piexif.GPSIFD.GPSLongitude: ((0, 1), (7, 1), (0, 1)),
            },
            "1st": {},
            "thumbnail": thumb.getvalue(),
        }
    )


def _save_dirty(pixels: np.ndarray, path: Path, orientation: int = 1) -> None:
    Image.fromarray(pixels).save(
        path, "JPEG", quality=90, exif=_exif(orientation), comment=PLANTED_NAME.encode()
    )


def main() -> None:
    astronaut = data.astronaut()
    camera = np.stack([data.camera()] * 3, axis=-1)
    event = HERE / "event"
    refs = HERE / "references"
    event.mkdir(exist_ok=True)
    refs.mkdir(exist_ok=True)
    # Two people side by side: P001 (enrolled, website consent) and an unknown adult.
    _save_dirty(np.concatenate([astronaut, camera], axis=1), event / "IMG_0001.jpg")
    # The unknown adult again, stored sideways with orientation 6 as phones do.
    _save_dirty(np.ascontiguousarray(np.rot90(camera, 1)), event / "IMG_0002.jpg", 6)
    # P001's reference photo: a mirrored, tighter crop (a different photo to the matcher).
    ref = np.ascontiguousarray(astronaut[20:300, 120:340][:, ::-1])
    Image.fromarray(ref).save(refs / "P001.jpg", "JPEG", quality=92)


if __name__ == "__main__":
    main()
