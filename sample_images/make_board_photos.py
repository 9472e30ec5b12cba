"""Regenerate the sample board photos from scikit-image's public-domain images.

    .venv/bin/python sample_images/make_board_photos.py

``astronaut`` (NASA, public domain) and ``camera`` (CC0 per scikit-image) stand in for
pupils P001 and P002 on the demo medical board (docs/medical-board.md); P003 has no photo,
to show the "NO PHOTO" card. P001's file carries an EXIF DateTimeOriginal (so
``board photo add`` reads the date from it) plus GPS, which the stored photo must not
keep; P002's has no date, so it needs ``--taken``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import piexif
from PIL import Image
from skimage import data

HERE = Path(__file__).resolve().parent / "board"


def main() -> None:
    HERE.mkdir(exist_ok=True)
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"ExampleCam"},
            "Exif": {piexif.ExifIFD.DateTimeOriginal: b"2026:09:10 09:15:00"},
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((51, 1), (30, 1), (0, 1)),
            },
        }
    )
    # Head-and-shoulders crops, portrait 4:5 like a school photo.
    astronaut = np.ascontiguousarray(data.astronaut()[10:310, 110:350])
    Image.fromarray(astronaut).save(HERE / "P001.jpg", "JPEG", quality=90, exif=exif)
    camera = np.stack([data.camera()] * 3, axis=-1)[20:320, 150:390]
    Image.fromarray(np.ascontiguousarray(camera)).save(HERE / "P002.jpg", "JPEG", quality=90)


if __name__ == "__main__":
    main()
