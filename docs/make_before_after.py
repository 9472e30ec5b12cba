"""Regenerate docs/before-after.jpg: a bundled sample photo before and after a real publish.

    .venv/bin/python docs/make_before_after.py

Runs the real library, not a mock-up: a throw-away data directory, the sample registry
(sample_images/pupils.csv), P001 enrolled from sample_images/references/P001.jpg, and
sample_images/event/IMG_0001.jpg published for the website. The picture puts the input
(left) beside the published output (right), scaled to about 1000 px wide in total.

The sample photos are derived from scikit-image's public-domain ``astronaut`` and CC0
``camera`` images, so the result may be committed. Never point this at ../shared/eval.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consent import enrolment, registry  # noqa: E402
from consent.registry import Purpose  # noqa: E402
from consent.store import init_data_dir, open_store  # noqa: E402
from pipeline.loading import load_image  # noqa: E402
from pipeline.references import reference_from_photo  # noqa: E402
from pipeline.writing import OutputFormat, encode_clean  # noqa: E402
from publishing.options import PublishOptions  # noqa: E402
from publishing.publish import publish  # noqa: E402

SAMPLES = ROOT / "sample_images"
PHOTO = SAMPLES / "event" / "IMG_0001.jpg"
OUT = ROOT / "docs" / "before-after.jpg"
TOTAL_WIDTH = 1000
GAP = 8  # white pixels between the two halves
# A fixed publish date keeps the picture reproducible (the sample slips are dated
# 2026-09-01 and 2026-09-03; consent counts only from the date on the slip).
PUBLISH_DATE = date(2026, 9, 14)


def published_copy(work: Path) -> Path:
    """Publish PHOTO for the website in a fresh data directory; return the output file."""
    data_dir = work / "data"
    init_data_dir(data_dir)
    with open_store(data_dir) as store:
        registry.import_pupils_csv(store, SAMPLES / "pupils.csv", operator="docs")
        ref = reference_from_photo(SAMPLES / "references" / "P001.jpg")
        enrolment.add_reference(
            store, "P001", ref.encoding, source_sha256=ref.sha256, operator="docs"
        )
        options = PublishOptions(
            purpose=Purpose.WEBSITE,
            out_dir=work / "out",
            event="Sports day",
            operator="docs",
            on=PUBLISH_DATE,
        )
        report = publish(store, [PHOTO], options)
    (result,) = report.results
    if result.status != "published" or result.output is None:
        raise SystemExit(f"{PHOTO.name} was withheld: {result.reason}")
    kept = sum(f.decision.value == "kept" for f in result.faces)
    print(f"{PHOTO.name}: {kept} face(s) kept, {len(result.faces) - kept} blurred", file=sys.stderr)
    return Path(result.output)


def side_by_side(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The two (H, W, 3) images next to each other with a white gap, TOTAL_WIDTH wide."""
    half = (TOTAL_WIDTH - GAP) // 2
    panels = []
    for pixels in (before, after):
        h, w = pixels.shape[:2]
        size = (half, round(h * half / w))
        panels.append(np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS)))
    height = max(p.shape[0] for p in panels)
    canvas = np.full((height, half * 2 + GAP, 3), 255, np.uint8)
    canvas[: panels[0].shape[0], :half] = panels[0]
    canvas[: panels[1].shape[0], half + GAP :] = panels[1]
    return canvas


def main() -> None:
    # A key file named in the environment would be reused for the throw-away directory.
    os.environ.pop("PHOTOCONSENT_KEY_FILE", None)
    with tempfile.TemporaryDirectory(prefix="photoconsent-docs-") as tmp:
        output = published_copy(Path(tmp))
        before = load_image(PHOTO).pixels  # upright, as the pipeline sees it
        after = load_image(output).pixels
    # Written by the project's own clean encoder: the picture in the docs has no metadata.
    OUT.write_bytes(encode_clean(side_by_side(before, after), OutputFormat.JPEG, quality=88))
    print(f"Wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
