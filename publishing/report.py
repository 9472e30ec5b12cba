"""What a publish says it did: each photo's `PhotoResult`, the batch's `PublishReport`, and
the two files written beside the outputs, ``report.json`` and ``captions.csv``.

Statuses and caption sources are enums here; they become strings only in the JSON (and
the journal and audit entries made from it).
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from consent import files
from consent.name_policy import NamePolicy
from pipeline import __version__
from pipeline.analysis import blurred, kept
from pipeline.boxes import Box
from pipeline.matching import Decision, FaceDecision, Reason
from publishing.captions.per_photo import CaptionSource, PhotoCaption
from publishing.options import PublishOptions
from publishing.outputs import unlink_quietly

REPORT_NAME = "report.json"
CAPTIONS_NAME = "captions.csv"
# An earlier batch's report and captions, kept under the time the report was written
# (`archive_name`, `captions_archive_name`).
_ARCHIVED = re.compile(r"^(report-[0-9tz-]+\.json|captions-[0-9tz-]+\.csv)$", re.IGNORECASE)


def is_archived_report(name: str) -> bool:
    """True for an earlier batch's ``report-<time>.json`` or ``captions-<time>.csv``."""
    return _ARCHIVED.match(name) is not None


class PhotoStatus(enum.Enum):
    """What became of one input photo."""

    PUBLISHED = "published"
    WITHHELD = "withheld"


def display_path(path: Path | str) -> str:
    """``path`` as text that always survives JSON, SQLite and UTF-8: bytes that are not
    UTF-8 (a file name from an old camera or a Windows-1252 USB stick) become ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def display_text(text: str) -> str:
    """A message that may quote a file name (a withheld reason), made valid UTF-8 the same
    way as :func:`display_path`."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class PhotoResult:
    """The outcome for one input photo (one entry of ``report.json``).

    ``resumed`` is True when an earlier, interrupted run of the same batch finished it.
    """

    input: str
    status: PhotoStatus
    reason: str
    output: str | None = None
    faces: list[FaceDecision] = field(default_factory=list)
    input_sha256: str | None = None
    output_sha256: str | None = None
    resumed: bool = False
    # The caption rewritten for the purpose and where its source came from; None when
    # the photo has no caption.
    caption: PhotoCaption | None = None
    caption_source: CaptionSource | None = None

    def to_report(self) -> dict[str, object]:
        entry: dict[str, object] = {
            "input": self.input,
            "output": self.output,
            "status": self.status.value,
            "reason": self.reason,
            "input_sha256": self.input_sha256,
            "output_sha256": self.output_sha256,
            "faces": [f.to_report() for f in self.faces],
        }
        if self.status is PhotoStatus.PUBLISHED:
            entry["caption"] = None
            if self.caption is not None:
                source = None if self.caption_source is None else self.caption_source.value
                entry["caption"] = {"source": source, **self.caption.to_report()}
        return entry

    @classmethod
    def from_report(cls, entry: dict[str, object], *, resumed: bool = False) -> PhotoResult:
        """The inverse of :meth:`to_report` (a journal row back into a result)."""
        faces = [
            FaceDecision(
                Box(*f["box"]),  # type: ignore[index, misc]
                Decision(f["decision"]),  # type: ignore[index]
                Reason(f["reason"]),  # type: ignore[index]
                f.get("pupil_id"),  # type: ignore[union-attr]
                f.get("distance"),  # type: ignore[union-attr]
            )
            for f in entry["faces"]  # type: ignore[union-attr]
        ]
        return cls(
            input=str(entry["input"]),
            status=PhotoStatus(entry["status"]),
            reason=str(entry["reason"]),
            output=entry["output"],  # type: ignore[arg-type]
            faces=faces,
            input_sha256=entry["input_sha256"],  # type: ignore[arg-type]
            output_sha256=entry["output_sha256"],  # type: ignore[arg-type]
            resumed=resumed,
        )


@dataclass
class PublishReport:
    """Every photo's outcome, in input order, for the whole batch (a resumed batch
    includes the photos earlier runs finished).

    ``batch`` is the batch key; ``archived_report`` is where an earlier, different
    batch's ``report.json`` in the same folder was moved; ``peak_worker_mb`` the largest
    peak resident memory of any worker process.
    """

    options: PublishOptions
    results: list[PhotoResult]
    batch: str = ""
    archived_report: Path | None = None
    peak_worker_mb: float = 0.0

    @property
    def published(self) -> list[PhotoResult]:
        return [r for r in self.results if r.status is PhotoStatus.PUBLISHED]

    @property
    def withheld(self) -> list[PhotoResult]:
        return [r for r in self.results if r.status is PhotoStatus.WITHHELD]

    @property
    def resumed(self) -> list[PhotoResult]:
        return [r for r in self.results if r.resumed]

    def withheld_by_reason(self) -> dict[str, int]:
        """How many photos were withheld for each reason (file names taken out), most first."""
        counts = Counter(reason_group(r) for r in self.withheld)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_json(self) -> dict[str, object]:
        return {
            "tool": "photoconsent",
            "version": __version__,
            "batch": self.batch,
            "purpose": self.options.purpose.value,
            "event": self.options.event,
            "date": self.options.on.isoformat(),
            "photos": [r.to_report() for r in self.results],
            "summary": {
                "published": len(self.published),
                "withheld": len(self.withheld),
                "withheld_by_reason": self.withheld_by_reason(),
                "faces_kept": sum(len(kept(r.faces)) for r in self.results),
                "faces_blurred": sum(len(blurred(r.faces)) for r in self.results),
                "resumed": len(self.resumed),
                "captions": sum(1 for r in self.published if r.caption is not None),
            },
        }


class UnreadableReport(Exception):
    """``report.json`` is missing, damaged, or not the report of the publish expected."""


def read_report(out_dir: Path, options: PublishOptions) -> PublishReport:
    """Read ``out_dir/report.json`` back into the `PublishReport` :func:`write_report` wrote.

    ``options`` are the publish's own (the file holds only its purpose, event and date,
    which must agree with them). Fails closed: anything missing, of the wrong type, or
    disagreeing with its own summary raises `UnreadableReport`, never a partial report, so
    nothing is offered from a damaged file. The per-photo ``resumed`` flag is not in the
    file (only the summary's count), so every result reads back with ``resumed=False``.
    """
    path = out_dir / REPORT_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UnreadableReport(f"{REPORT_NAME} cannot be read: {type(exc).__name__}") from None
    try:
        return _report_from_json(data, options)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise UnreadableReport(f"{REPORT_NAME} is damaged: {type(exc).__name__}") from None


def _report_from_json(data: dict[str, object], options: PublishOptions) -> PublishReport:
    if not isinstance(data, dict) or data.get("tool") != "photoconsent":
        raise ValueError("not a photoconsent report")
    if (data["purpose"], data["event"], data["date"]) != (
        options.purpose.value,
        options.event,
        options.on.isoformat(),
    ):
        raise ValueError("the report is of another publish")
    photos = data["photos"]
    if not isinstance(photos, list):
        raise TypeError("photos is not a list")
    results = [_result_from_json(entry) for entry in photos]
    report = PublishReport(options, results, batch=str(data["batch"]))
    # The summary was written from the same results: a file that disagrees with itself
    # was edited or damaged, and is not trusted.
    summary = data["summary"]
    if not isinstance(summary, dict) or (summary["published"], summary["withheld"]) != (
        len(report.published),
        len(report.withheld),
    ):
        raise ValueError("the summary does not match the photos")
    return report


def _result_from_json(entry: object) -> PhotoResult:
    if not isinstance(entry, dict) or not isinstance(entry["faces"], list):
        raise TypeError("a photo entry is not an object with a list of faces")
    result = PhotoResult.from_report(entry)
    # from_report serves the journal, which never needs review's candidate: keep it here.
    result.faces = [
        dataclasses.replace(face, candidate_id=f.get("candidate_pupil_id"))
        for face, f in zip(result.faces, entry["faces"], strict=True)
    ]
    for name in ("output", "input_sha256", "output_sha256"):
        if entry[name] is not None and not isinstance(entry[name], str):
            raise TypeError(f"{name} is not text")
    if result.status is PhotoStatus.PUBLISHED and not (result.output and result.output_sha256):
        raise ValueError("a published photo has no output or no hash")
    caption = entry.get("caption")
    if result.status is PhotoStatus.PUBLISHED and caption is not None:
        if not isinstance(caption, dict) or not isinstance(caption["caption"], str):
            raise TypeError("a caption is not an object with its text")
        result.caption = PhotoCaption(
            caption["caption"],
            NamePolicy(caption["name_policy"]),
            [str(p) for p in caption["pupils_removed"]],
            [str(p) for p in caption["pupils_shortened"]],
        )
        source = caption["source"]
        result.caption_source = None if source is None else CaptionSource(source)
    return result


def reason_group(result: PhotoResult) -> str:
    """A withheld photo's reason without its own file name, so reasons can be counted."""
    name = display_path(Path(result.input).name) if result.input else ""
    reason = result.reason
    if name and reason.startswith(name + ": "):
        reason = reason[len(name) + 2 :]
    return reason


def write_report(out_dir: Path, report: PublishReport) -> Path | None:
    """Write ``report.json`` for the whole batch. A ``report.json`` of a different batch
    is first renamed ``report-<when it was written>.json``, never overwritten; the new
    name is returned (None when nothing was moved)."""
    path = out_dir / REPORT_NAME
    archived = None
    if os.path.lexists(path):
        try:
            earlier = json.loads(path.read_text(encoding="utf-8")).get("batch")
        except (OSError, ValueError, AttributeError):
            earlier = None
        if earlier != report.batch:
            archived = archive_name(path)
            os.rename(path, archived)
            captions = out_dir / CAPTIONS_NAME
            if os.path.lexists(captions):
                os.rename(captions, captions_archive_name(archived))
    _replace_file(path, json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    _write_captions(out_dir / CAPTIONS_NAME, report)
    return archived


def remove_report_temps(out_dir: Path) -> None:
    """Delete the hidden temp files a killed run may have left while writing the reports."""
    unlink_quietly(out_dir / f".{REPORT_NAME}.tmp")
    unlink_quietly(out_dir / f".{CAPTIONS_NAME}.tmp")


def _replace_file(path: Path, text: str, encoding: str = "utf-8") -> None:
    # 0o666 before the umask, the mode open() gives: what these reports have always had.
    files.replace_atomic(path, text.encode(encoding), mode=0o666)


# A cell starting with one of these is a formula to Excel and LibreOffice.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _write_captions(path: Path, report: PublishReport) -> None:
    """``captions.csv``: each published file's rewritten caption (``file,caption``), in
    UTF-8 with a BOM so Excel shows accents. Removed when the batch has no captions."""
    rows = [(r, r.caption) for r in report.published if r.caption is not None and r.output]
    if not rows:
        unlink_quietly(path)
        return
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["file", "caption"])
    for result, caption in rows:
        text = caption.text  # type: ignore[union-attr]
        # A caption from a photo's own fields is untrusted text: never a spreadsheet formula.
        if text.startswith(_FORMULA_START):
            text = "'" + text
        writer.writerow([Path(str(result.output)).name, text])
    _replace_file(path, buf.getvalue(), encoding="utf-8-sig")


def captions_archive_name(archived_report: Path) -> Path:
    """Where ``captions.csv`` goes beside the archived ``archived_report``."""
    stem = archived_report.stem.replace("report-", "captions-", 1)
    return _free_name(archived_report, stem, ".csv")


def archive_name(path: Path) -> Path:
    """``report-<when report.json was written>.json`` beside it, numbered if taken."""
    when = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y%m%dT%H%M%SZ")
    return _free_name(path, f"report-{when}", ".json")


def _free_name(beside: Path, stem: str, suffix: str) -> Path:
    """``stem + suffix`` beside ``beside``, else ``stem-2``, ``stem-3``... (first not taken)."""
    candidate = beside.with_name(f"{stem}{suffix}")
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = beside.with_name(f"{stem}-{n}{suffix}")
    return candidate
