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
from pipeline.analysis import blurred
from pipeline.errors import PipelineError
from pipeline.formats.findings import MetadataFinding, describe
from pipeline.loading import load_image
from pipeline.matching import FaceDecision
from publishing.context import load_context
from publishing.decider import AnalysingDecider, Decider
from publishing.inputs import collect_inputs
from publishing.options import PublishOptions


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
    context = load_context(store, options)
    decide_photo = AnalysingDecider(context.gallery, options.detection, options.matching)
    return [check_one(p, options, decide_photo) for p in collect_inputs(inputs)]


def check_one(photo: Path, options: PublishOptions, decide_photo: Decider) -> CheckResult:
    result = CheckResult(input=str(photo), safe=False)
    try:
        loaded = load_image(photo)
        # Findings from the very bytes that were decoded: no second read of the file.
        result.metadata = list(loaded.metadata)
        result.faces = decide_photo(photo, loaded)
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
