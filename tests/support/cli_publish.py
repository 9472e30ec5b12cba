"""A publish as `photoconsent publish --purpose website --out OUT CAMERA` does it, through
`publish` with a fixed decider (no model loads) that keeps one pupil's face in every photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from consent.registry import Purpose
from consent.store import Store
from pipeline.boxes import Box
from pipeline.matching import Decision, FaceDecision, Reason
from publishing.options import PublishOptions
from publishing.publish import publish


def keeps(pupil_id: str):  # type: ignore[no-untyped-def]
    """A decider that finds one face in every photo and keeps it as ``pupil_id``."""

    def decide(path: Path, loaded: object) -> list[FaceDecision]:
        face = Box(2, 2, 8, 8)
        return [FaceDecision(face, Decision.KEPT, Reason.MATCHED_WITH_CONSENT, pupil_id, 0.3)]

    return decide


def publish_like_the_cli(
    store: Store,
    camera: Path,
    out: Path,
    count: int = 2,
    shade: int = 60,
    pupil_id: str = "P001",
) -> list[Path]:
    """Publish ``count`` new photos in ``camera`` into ``out``, keeping ``pupil_id``'s
    face in each; the published files,
    absolute (each photo a plain grey of its own, so no two outputs have the same bytes)."""
    camera.mkdir(parents=True)
    for i in range(count):
        pixels = np.full((24, 32, 3), shade + 20 * i, np.uint8)
        Image.fromarray(pixels).save(camera / f"IMG_{i}.jpg")
    options = PublishOptions(purpose=Purpose.WEBSITE, out_dir=out, operator="office", workers=1)
    report = publish(store, [camera], options, decider=keeps(pupil_id))
    return sorted(out.absolute() / Path(r.output).name for r in report.results if r.output)
