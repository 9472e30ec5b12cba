"""The pre-check: would these photos be safe to put on the web exactly as they are?

A photo passes only when it decodes, carries no metadata at all, and every face in it
would be kept for the purpose (each one positively matched to a pupil with consent).
Nothing is written and nothing is redacted; the answer and its reasons are returned.

Every face that would not be kept is named with where it is. When the photo is one
``publish`` wrote (its bytes are an output listed in the ``report.json`` beside it), check
also says how that face relates to what publish decided: a face publish did not find, a
pupil publish kept who no longer matches, or a face publish blurred that still looks like
a face. Check never trusts the report to pass a face: the verdict is its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from consent.store import Store
from pipeline.analysis import blurred
from pipeline.boxes import Box
from pipeline.errors import PipelineError
from pipeline.formats.findings import MetadataFinding, describe
from pipeline.loading import load_image
from pipeline.matching import Decision, FaceDecision
from publishing.context import load_context
from publishing.decider import AnalysingDecider, Decider
from publishing.inputs import collect_inputs
from publishing.options import PublishOptions
from publishing.report import REPORT_NAME, PhotoResult

# A face check finds is the one publish decided on when their boxes overlap this much
# (intersection over union). One face seen twice by the same detector at the same size
# overlaps far more; two neighbours in a crowd far less.
SAME_FACE_IOU = 0.3


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
    reports: dict[Path, Mapping[str, list[FaceDecision]]] = {}
    results = []
    for photo in collect_inputs(inputs):
        folder = photo.parent
        if folder not in reports:
            reports[folder] = published_faces(folder / REPORT_NAME)
        results.append(check_one(photo, options, decide_photo, published=reports[folder]))
    return results


def published_faces(report: Path) -> Mapping[str, list[FaceDecision]]:
    """What the publish that wrote ``report`` decided, by the SHA-256 of each output it
    wrote; empty when there is no such report or it cannot be read (then check simply
    judges the photos as any others)."""
    try:
        photos = json.loads(report.read_text(encoding="utf-8"))["photos"]
        results = [PhotoResult.from_report(p) for p in photos]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {r.output_sha256: r.faces for r in results if r.output_sha256}


def check_one(
    photo: Path,
    options: PublishOptions,
    decide_photo: Decider,
    *,
    published: Mapping[str, list[FaceDecision]] | None = None,
) -> CheckResult:
    """Judge one photo. ``published`` maps publish outputs (by SHA-256) to the faces
    publish decided on (see :func:`published_faces`); it only changes the words."""
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
    publish_decided = (published or {}).get(loaded.sha256)
    if not_permitted and publish_decided is not None:
        result.reasons += [publish_missed(f, publish_decided) for f in not_permitted]
    elif not_permitted:
        why = sorted({f.reason.value for f in not_permitted})
        result.reasons.append(
            f"{len(not_permitted)} face(s) not permitted for {options.purpose.value}: "
            + "; ".join(why)
            + " (at "
            + "; ".join(where(f.box) for f in not_permitted)
            + ")"
        )
    result.safe = not result.reasons
    return result


def where(box: Box) -> str:
    """``x,y WxH px``, the position and size of a face in the photo's upright pixels."""
    x, y, w, h = box.to_list()
    return f"{x},{y} {w}x{h} px"


def publish_missed(face: FaceDecision, decided: Sequence[FaceDecision]) -> str:
    """Why ``face``, clear in publish's own output and not permitted, is there: the words
    for the one face, by the face publish decided on in the same place (if any)."""
    same = max(decided, key=lambda d: d.box.iou(face.box), default=None)
    if same is None or same.box.iou(face.box) < SAME_FACE_IOU:
        return f"a face at {where(face.box)} that publish did not find is still clear"
    if same.decision is Decision.KEPT:
        return (
            f"the face publish kept at {where(same.box)} no longer matches a pupil with "
            f"consent: {face.reason.value}"
        )
    return (
        f"the face publish blurred at {where(same.box)} is still found as a face at "
        f"{where(face.box)}: check the blur"
    )
