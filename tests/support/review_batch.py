"""A hand-made review batch over skimage's astronaut (no face models), for the contact sheet
and review server tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

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

BATCH_ID = "20250601-093000-ab12"
# The astronaut's face (by eye), a near-miss on her suit and a tiny face, [x, y, w, h].
KEPT_BOX, NEAR_BOX, SMALL_BOX = [179, 56, 93, 122], [380, 300, 60, 70], [30, 420, 30, 30]
ODD_NAME = "a<b>&\"c'.jpg"
KEPT, BLURRED = Decision.KEPT, Decision.BLURRED


def make_batch(photo: Path) -> ReviewBatch:
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    faces = [
        ReviewFace("F0001", KEPT_BOX, KEPT, Reason.MATCHED_WITH_CONSENT, "P001", 0.41, False),
        ReviewFace("F0002", NEAR_BOX, BLURRED, Reason.NO_MATCH, "P002", 0.58, True),
        ReviewFace("F0003", SMALL_BOX, BLURRED, Reason.TOO_SMALL, None, None, False),
    ]
    return ReviewBatch(
        batch_id=BATCH_ID,
        purpose=Purpose.WEBSITE,
        event="Sports day <2025>",
        created_at="2025-06-01T09:30:00+00:00",
        operator="Mr Lens",
        biometrics=True,
        options=ReviewBatchOptions(tolerance=0.55, style=RedactionStyle.BLUR),
        photos=[ReviewPhoto(input=str(photo), sha256=sha, faces=faces)],
    )


def write_astronaut(path: Path) -> Path:
    Image.fromarray(data.astronaut()).save(path, "JPEG", quality=95)
    return path


def add_review_batch(store: Store, tmp_path: Path, registry_csv: RegistryCsv) -> Store:
    """``store`` with two pupils (one with a name that needs escaping) imported and the batch
    (over the astronaut, saved in ``tmp_path`` under `ODD_NAME`) saved; the caller owns the
    store and closes it."""
    rows = [
        {"pupil_id": "P001", "first_name": "Ann <b>", "last_name": "O'Brien & Co"},
        {"pupil_id": "P002", "class": "4C"},
    ]
    import_pupils_csv(store, registry_csv(rows), operator="Office")
    photo = write_astronaut(tmp_path / ODD_NAME)
    save_batch(store, make_batch(photo))
    return store
