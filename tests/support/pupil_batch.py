"""A hand-made review batch for review by pupil (no face models): two photos, faces kept
and uncertain for two pupils, and pupils whose names test the name picker."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from consent.registry import Purpose, import_pupils_csv
from consent.store import Store
from pipeline.matching import Decision, Reason
from pipeline.redaction import RedactionStyle
from publishing.review.batch import (
    ReviewBatch,
    ReviewBatchOptions,
    ReviewFace,
    ReviewPhoto,
    save_batch,
)
from tests.support.consent_factories import RegistryCsv

BATCH_ID = "20250601-093000-cd34"
KEPT, BLURRED = Decision.KEPT, Decision.BLURRED
# P001 Zoe Adams and P002 Amy Brown have faces in the batch; P003 Amir Brownlow and
# P004 Zoe Adamson only make the picker's job harder; P002 has no website consent.
PUPILS = [
    {"pupil_id": "P001", "first_name": "Zoe", "last_name": "Adams", "class": "2A"},
    {"pupil_id": "P002", "first_name": "Amy", "last_name": "Brown", "website": "no"},
    {"pupil_id": "P003", "first_name": "Amir", "last_name": "Brownlow", "class": "4C"},
    {"pupil_id": "P004", "first_name": "Zoe", "last_name": "Adamson", "class": "5D"},
]


def uncertain(face_id: str, box: list[int], candidate: str, distance: float) -> ReviewFace:
    return ReviewFace(
        face_id, box, BLURRED, Reason.UNCERTAIN, None, distance, True, candidate_id=candidate
    )


def faces_a() -> list[ReviewFace]:
    return [
        ReviewFace(
            "F0001", [300, 60, 90, 110], KEPT, Reason.MATCHED_WITH_CONSENT, "P001", 0.3, False
        ),
        uncertain("F0002", [100, 60, 90, 110], "P001", 0.47),
        uncertain("F0003", [200, 300, 90, 110], "P002", 0.44),
        ReviewFace("F0004", [380, 300, 70, 80], BLURRED, Reason.NO_MATCH, None, 0.7, False),
    ]


def faces_b() -> list[ReviewFace]:
    return [
        ReviewFace(
            "F0005", [250, 200, 90, 110], KEPT, Reason.MATCHED_WITH_CONSENT, "P002", 0.3, False
        ),
        uncertain("F0006", [40, 200, 90, 110], "P001", 0.49),
        ReviewFace("F0007", [30, 420, 30, 30], BLURRED, Reason.TOO_SMALL, None, None, False),
    ]


def write_photos(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    a, b = folder / "a.jpg", folder / "b.jpg"
    Image.fromarray(data.astronaut()).save(a, "JPEG", quality=90)
    Image.fromarray(np.ascontiguousarray(data.astronaut()[:, ::-1])).save(b, "JPEG", quality=90)
    return a, b


def make_batch(a: Path, b: Path, *, withheld: Path | None = None) -> ReviewBatch:
    def sha(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    photos = [
        ReviewPhoto(input=str(a), sha256=sha(a), faces=faces_a()),
        ReviewPhoto(input=str(b), sha256=sha(b), faces=faces_b()),
    ]
    if withheld is not None:
        # A withheld photo's face is never in a grid: the photo cannot be published.
        face = ReviewFace(
            "F0008", [0, 0, 90, 90], KEPT, Reason.MATCHED_WITH_CONSENT, "P001", 0.2, False
        )
        photos.append(ReviewPhoto(str(withheld), None, [face], withheld="cannot be read"))
    return ReviewBatch(
        batch_id=BATCH_ID,
        purpose=Purpose.WEBSITE,
        event="Sports day",
        created_at="2025-06-01T09:30:00+00:00",
        operator="Mr Lens",
        biometrics=True,
        options=ReviewBatchOptions(tolerance=0.40, style=RedactionStyle.BLUR),
        photos=photos,
    )


def add_pupil_batch(store: Store, tmp_path: Path, registry_csv: RegistryCsv) -> ReviewBatch:
    """Import `PUPILS` into ``store`` and save the batch over two photos in ``tmp_path``."""
    import_pupils_csv(store, registry_csv(PUPILS, name="by-pupil.csv"), operator="Office")
    a, b = write_photos(tmp_path / "photos")
    batch = make_batch(a, b, withheld=tmp_path / "photos" / "gone.jpg")
    save_batch(store, batch)
    return batch
