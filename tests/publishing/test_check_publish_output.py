"""`check` on `publish`'s own output passes, also when a blurred neighbour stands right
beside a kept pupil (real photos: the bundled samples, and a pupil with a stranger's
head pasted beside hers so that his head margin reaches across her face)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from cli import main
from pipeline.boxes import Box
from pipeline.loading import load_image
from pipeline.redaction import RedactionStyle, head_region, kept_guard, redact
from publishing.report import REPORT_NAME
from tests.support.environment import REPO

pytestmark = pytest.mark.slow  # publish and check run the face detector and matcher

SAMPLES = REPO / "sample_images"
PHOTO = SAMPLES / "event" / "IMG_0001.jpg"  # P001 on the left, a stranger on the right
STRANGER = Box(712, 119, 57, 78)  # the stranger's face box in PHOTO
DATE = "2026-10-01"  # P001's website consent is in force


def invoke(data_dir: Path, *args: object) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), *map(str, args)])


def beside(path: Path) -> Path:
    """PHOTO with the stranger's head, 1.4x, pasted so his face box starts 5 px right of
    P001's cheek: his head margin (45% of his face width) lies over her face."""
    src = load_image(PHOTO).pixels.copy()
    rows, cols = head_region(STRANGER).pixel_slices(1024, 512)
    head = Image.fromarray(src[rows, cols])
    scale = 1.4
    head = np.asarray(head.resize((round(head.width * scale), round(head.height * scale))))
    out = src.copy()
    out[:, 512:] = src[:, 512:].mean(axis=(0, 1)).astype(np.uint8)  # no second stranger
    ox = 280 - round((STRANGER.x - cols.start) * scale)
    oy = 70 - round((STRANGER.y - rows.start) * scale)
    top = max(oy, 0)  # his hair reaches above the photo: cut at its edge
    out[top : oy + head.shape[0], ox : ox + head.shape[1]] = head[top - oy :]
    Image.fromarray(out).save(path, quality=95)
    return path


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("check-publish")
    data_dir, inputs, out = root / "data", root / "in", root / "web"
    inputs.mkdir()
    beside(inputs / "beside.jpg")
    (inputs / "sample.jpg").write_bytes(PHOTO.read_bytes())
    steps = [
        CliRunner().invoke(main, ["init", "--data-dir", str(data_dir)]),
        invoke(data_dir, "pupils", "import", SAMPLES / "pupils.csv"),
        invoke(data_dir, "enroll", "--folder", SAMPLES / "references"),
        invoke(data_dir, "publish", "--purpose", "website", "--date", DATE, "--operator",
               "t", "--out", out, "--", inputs),
    ]  # fmt: skip
    assert [s.exit_code for s in steps] == [0, 0, 0, 0], [s.output for s in steps]
    return data_dir, out, json.loads((out / REPORT_NAME).read_text(encoding="utf-8"))


def check(data_dir: Path, *photos: Path) -> tuple[int, list[dict[str, Any]]]:
    result = invoke(data_dir, "check", "--purpose", "website", "--date", DATE, "--json", *photos)
    return result.exit_code, json.loads(result.stdout)


def test_the_neighbours_margin_reaches_the_kept_face(published) -> None:
    _, _, report = published
    (photo,) = [p for p in report["photos"] if p["input"].endswith("beside.jpg")]
    kept = [Box(*f["box"]) for f in photo["faces"] if f["decision"] == "kept"]
    blurred = [Box(*f["box"]) for f in photo["faces"] if f["decision"] == "blurred"]
    assert [f["pupil_id"] for f in photo["faces"] if f["decision"] == "kept"] == ["P001"]
    assert len(blurred) == 1
    # The situation under test: unclipped, his head region covers part of her face box.
    assert head_region(blurred[0]).intersection(kept[0]) > 0.05 * kept[0].area
    assert blurred[0].intersection(kept_guard(kept[0])) == 0


def test_publishs_own_output_passes_check(published) -> None:
    data_dir, out, _ = published
    code, results = check(data_dir, out)
    assert code == 0, results
    assert [r["safe"] for r in results] == [True, True]


def test_without_the_clip_the_kept_pupil_would_fail_check_and_check_says_so(
    published, tmp_path: Path
) -> None:
    """The output redacted the old way (whole head regions, kept faces not spared) no
    longer matches P001, and check says which face publish kept that broke."""
    data_dir, _, report = published
    (photo,) = [p for p in report["photos"] if p["input"].endswith("beside.jpg")]
    pixels = load_image(Path(photo["input"])).pixels
    heads = [head_region(Box(*f["box"])) for f in photo["faces"] if f["decision"] == "blurred"]
    old = tmp_path / "old.png"
    Image.fromarray(redact(pixels, heads, RedactionStyle.BLUR)).save(old)
    entry = {
        **photo,
        "output": str(old),
        "output_sha256": hashlib.sha256(old.read_bytes()).hexdigest(),
    }
    (tmp_path / REPORT_NAME).write_text(json.dumps({"photos": [entry]}), encoding="utf-8")
    code, (result,) = check(data_dir, old)
    assert code == 1
    (kept,) = [f for f in photo["faces"] if f["decision"] == "kept"]
    x, y, w, h = kept["box"]
    assert result["reasons"] == [
        f"the face publish kept at {x},{y} {w}x{h} px no longer matches a pupil with consent: "
        "no enrolled pupil within tolerance"
    ]
