"""check's words for publish's own output: each face that stops a photo is named with
where it is and how it relates to what publish decided (synthetic; no detector runs)."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

from consent.registry import Purpose
from pipeline.boxes import Box
from pipeline.loading import LoadedImage
from pipeline.matching import Decision, FaceDecision, Reason
from publishing.check import check_one, published_faces
from publishing.options import PublishOptions
from publishing.report import REPORT_NAME

OPTIONS = PublishOptions(purpose=Purpose.WEBSITE, out_dir=Path("unused"), on=date(2026, 10, 1))
KEPT = FaceDecision(Box(100, 50, 40, 50), Decision.KEPT, Reason.MATCHED_WITH_CONSENT, "P001")
BLURRED = FaceDecision(Box(200, 60, 30, 40), Decision.BLURRED, Reason.NO_MATCH)


def clean_png(path: Path) -> Path:
    pixels = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_report(folder: Path, photo: Path, faces: list[FaceDecision]) -> None:
    entry = {
        "input": "in.jpg",
        "output": str(photo),
        "status": "published",
        "reason": "",
        "input_sha256": "0" * 64,
        "output_sha256": sha256(photo),
        "faces": [f.to_report() for f in faces],
    }
    (folder / REPORT_NAME).write_text(json.dumps({"photos": [entry]}), encoding="utf-8")


def sees(*faces: FaceDecision):
    def decide(photo: Path, loaded: LoadedImage) -> list[FaceDecision]:
        return list(faces)

    return decide


def judge(photo: Path, *faces: FaceDecision):
    return check_one(
        photo, OPTIONS, sees(*faces), published=published_faces(photo.parent / REPORT_NAME)
    )


def test_publish_output_with_its_faces_as_publish_decided_is_safe(tmp_path: Path) -> None:
    photo = clean_png(tmp_path / "event-0001.png")
    write_report(tmp_path, photo, [KEPT, BLURRED])
    # The blurred head is no longer found; the kept pupil still matches.
    result = judge(photo, FaceDecision(Box(101, 51, 40, 49), Decision.KEPT, KEPT.reason, "P001"))
    assert result.safe and result.reasons == []


def test_a_face_publish_did_not_find_is_named_with_where_it_is(tmp_path: Path) -> None:
    photo = clean_png(tmp_path / "event-0001.png")
    write_report(tmp_path, photo, [KEPT, BLURRED])
    missed = FaceDecision(Box(20.4, 150, 9, 12), Decision.BLURRED, Reason.TOO_SMALL)
    result = judge(photo, KEPT, missed)
    assert not result.safe
    assert result.reasons == ["a face at 20,150 9x12 px that publish did not find is still clear"]


def test_a_kept_pupil_who_no_longer_matches_is_named(tmp_path: Path) -> None:
    photo = clean_png(tmp_path / "event-0001.png")
    write_report(tmp_path, photo, [KEPT, BLURRED])
    lost = FaceDecision(Box(102, 55, 40, 46), Decision.BLURRED, Reason.NO_MATCH)
    result = judge(photo, lost)
    assert result.reasons == [
        "the face publish kept at 100,50 40x50 px no longer matches a pupil with consent: "
        "no enrolled pupil within tolerance"
    ]


def test_a_blurred_head_still_found_as_a_face_is_named(tmp_path: Path) -> None:
    photo = clean_png(tmp_path / "event-0001.png")
    write_report(tmp_path, photo, [KEPT, BLURRED])
    blob = FaceDecision(Box(198, 58, 32, 42), Decision.BLURRED, Reason.TOO_BLURRED)
    result = judge(photo, KEPT, blob)
    assert result.reasons == [
        "the face publish blurred at 200,60 30x40 px is still found as a face at "
        "198,58 32x42 px: check the blur"
    ]


def test_a_photo_changed_after_publish_is_judged_as_any_other(tmp_path: Path) -> None:
    photo = clean_png(tmp_path / "event-0001.png")
    write_report(tmp_path, photo, [KEPT, BLURRED])
    other = clean_png(tmp_path / "edited.png")
    Image.fromarray(np.zeros((200, 300, 3), np.uint8)).save(other)  # not in the report
    missed = FaceDecision(Box(20, 150, 9, 12), Decision.BLURRED, Reason.TOO_SMALL)
    result = judge(other, KEPT, missed)
    assert result.reasons == [
        "1 face(s) not permitted for website: face too small to recognise reliably "
        "(at 20,150 9x12 px)"
    ]


def test_an_unreadable_report_only_changes_the_words(tmp_path: Path) -> None:
    photo = clean_png(tmp_path / "event-0001.png")
    (tmp_path / REPORT_NAME).write_text("{not json", encoding="utf-8")
    assert published_faces(tmp_path / REPORT_NAME) == {}
    missed = FaceDecision(Box(20, 150, 9, 12), Decision.BLURRED, Reason.TOO_SMALL)
    result = judge(photo, missed)
    assert not result.safe and "(at 20,150 9x12 px)" in result.reasons[0]


def test_without_a_report_every_face_is_named_by_place(tmp_path: Path) -> None:
    photo = clean_png(tmp_path / "upload.png")
    faces = [
        FaceDecision(Box(20, 150, 9, 12), Decision.BLURRED, Reason.TOO_SMALL),
        FaceDecision(Box(200, 60, 30, 40), Decision.BLURRED, Reason.NO_MATCH),
    ]
    result = check_one(photo, OPTIONS, sees(*faces))
    assert result.reasons == [
        "2 face(s) not permitted for website: face too small to recognise reliably; "
        "no enrolled pupil within tolerance (at 20,150 9x12 px; 200,60 30x40 px)"
    ]
