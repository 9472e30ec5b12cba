"""The pre-check: would these photos be safe to put on the web exactly as they are?

A photo passes only when it decodes, carries no metadata at all, and every face in it
would be kept for the purpose (each one positively matched to a pupil with consent).
Nothing is written and nothing is redacted; the answer and its reasons are returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from consent.store import Store

from .analysis import Gallery, analyse, blurred, load_gallery
from .detection import DetectionStage
from .errors import PipelineError
from .loading import load_image
from .matching import FaceDecision
from .metadata import MetadataFinding, describe, find_metadata
from .publish import PublishOptions, collect_inputs


@dataclass
class CheckResult:
    """The verdict for one photo; ``reasons`` is empty exactly when ``safe``."""

    input: str
    safe: bool
    reasons: list[str] = field(default_factory=list)
    faces: list[FaceDecision] = field(default_factory=list)
    metadata: list[MetadataFinding] = field(default_factory=list)

    def to_report(self) -> dict[str, object]:
        return {
            "input": self.input,
            "safe": self.safe,
            "reasons": self.reasons,
            "metadata": [{"kind": m.kind, "detail": m.detail} for m in self.metadata],
            "faces": [f.to_report() for f in self.faces],
        }


def check(store: Store, inputs: Sequence[Path], options: PublishOptions) -> list[CheckResult]:
    """Judge every photo in ``inputs`` for ``options.purpose`` (``out_dir`` is unused)."""
    gallery = load_gallery(store, options.purpose, options.on, options.candidates)
    detector = DetectionStage(options.detection)
    return [_check_one(p, options, detector, gallery) for p in collect_inputs(inputs)]


def _check_one(
    photo: Path, options: PublishOptions, detector: DetectionStage, gallery: Gallery
) -> CheckResult:
    result = CheckResult(input=str(photo), safe=False)
    try:
        loaded = load_image(photo)
        result.metadata = find_metadata(photo.read_bytes())
        result.faces = analyse(
            loaded.pixels,
            detector,
            gallery,
            options.matching,
            orientation_known=loaded.orientation_tagged,
        )
    except (PipelineError, OSError) as exc:
        result.reasons.append(f"unreadable: {exc}")
        return result
    if result.metadata:
        result.reasons.append(f"metadata present: {describe(result.metadata)}")
    not_permitted = blurred(result.faces)
    if not_permitted:
        why = sorted({f.reason.value for f in not_permitted})
        result.reasons.append(
            f"{len(not_permitted)} face(s) not permitted for {options.purpose.value}: "
            + "; ".join(why)
        )
    result.safe = not result.reasons
    return result
