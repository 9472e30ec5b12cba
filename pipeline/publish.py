"""The publish job: photos in, safe photos plus ``report.json`` and audit entries out.

For each photo: load (EXIF orientation applied), detect every face, keep only faces
positively matched to a pupil whose consent allows the purpose on the publish date, redact
the whole head of everyone else, encode a new file from pixels only, check it carries no
metadata, write it atomically under a neutral name, and record the outcome in the audit
log in the same transaction. A photo that cannot be made safe is withheld, never written.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from consent import audit
from consent.registry import Purpose
from consent.store import Store

from . import __version__
from .analysis import Gallery, analyse, blurred, kept, load_gallery
from .detection import DetectionSettings, DetectionStage
from .errors import InvalidOptions, OutputConflict, PipelineError
from .loading import LoadedImage, load_image
from .matching import FaceDecision, MatchSettings
from .redaction import RedactionStyle, head_region, redact
from .writing import OutputFormat, encode_clean, sha256_bytes, write_atomic

# Files a camera, phone or OS drops beside photos that are not photos of anyone.
NOT_PHOTOS = frozenset({"thumbs.db", "desktop.ini", "report.json"})
REPORT_NAME = "report.json"


def default_operator() -> str:
    """The OS user running the job, the audit's default operator."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"uid-{os.getuid()}"


@dataclass(frozen=True)
class PublishOptions:
    """What one publish job does. ``on`` is the date consent is judged on (today)."""

    purpose: Purpose
    out_dir: Path
    event: str = "event"
    operator: str = field(default_factory=default_operator)
    style: RedactionStyle = RedactionStyle.BLUR
    output_format: OutputFormat = OutputFormat.JPEG
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    matching: MatchSettings = field(default_factory=MatchSettings)
    on: date = field(default_factory=date.today)
    # The pupils expected in the photos (from --class / --pupils); None means everyone.
    candidates: frozenset[str] | None = None
    # Where the photos will be put (a URL or a name such as "newsletter"), so a takedown
    # can say where to remove them from.
    destination: str | None = None


@dataclass
class PhotoResult:
    """The outcome for one input photo (one entry of ``report.json``)."""

    input: str
    status: str  # "published" | "withheld"
    reason: str
    output: str | None = None
    faces: list[FaceDecision] = field(default_factory=list)
    input_sha256: str | None = None
    output_sha256: str | None = None

    def to_report(self) -> dict[str, object]:
        return {
            "input": self.input,
            "output": self.output,
            "status": self.status,
            "reason": self.reason,
            "input_sha256": self.input_sha256,
            "output_sha256": self.output_sha256,
            "faces": [f.to_report() for f in self.faces],
        }


@dataclass
class PublishReport:
    """Every photo's outcome, in input order."""

    options: PublishOptions
    results: list[PhotoResult]

    @property
    def published(self) -> list[PhotoResult]:
        return [r for r in self.results if r.status == "published"]

    @property
    def withheld(self) -> list[PhotoResult]:
        return [r for r in self.results if r.status == "withheld"]

    def to_json(self) -> dict[str, object]:
        return {
            "tool": "photoconsent",
            "version": __version__,
            "purpose": self.options.purpose.value,
            "event": self.options.event,
            "date": self.options.on.isoformat(),
            "photos": [r.to_report() for r in self.results],
            "summary": {
                "published": len(self.published),
                "withheld": len(self.withheld),
                "faces_kept": sum(len(kept(r.faces)) for r in self.results),
                "faces_blurred": sum(len(blurred(r.faces)) for r in self.results),
            },
        }


ProgressCallback = Callable[[int, int, PhotoResult], None]
# Decides keep or blur for every face of one loaded photo (the path is for its records).
Decider = Callable[[Path, LoadedImage], list[FaceDecision]]


def analysing_decider(options: PublishOptions, gallery: Gallery) -> Decider:
    """The ordinary decision: detect every face and match it (see :func:`analyse`)."""
    detector = DetectionStage(options.detection)

    def decide_photo(photo: Path, loaded: LoadedImage) -> list[FaceDecision]:
        return analyse(
            loaded.pixels,
            detector,
            gallery,
            options.matching,
            orientation_known=loaded.orientation_tagged,
        )

    return decide_photo


def collect_inputs(paths: Iterable[Path]) -> list[Path]:
    """Expand folders into the files below them (sorted; hidden files and OS clutter such
    as Thumbs.db skipped).

    Every other file is kept whatever its extension, so a HEIC, a video or a misnamed file
    in a camera folder is reported as withheld with its reason, never silently skipped.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for sub in sorted(path.rglob("*")):
                rel = sub.relative_to(path).parts
                if any(p.startswith(".") for p in rel) or sub.name.lower() in NOT_PHOTOS:
                    continue
                if sub.is_file():
                    found.append(sub)
        else:
            found.append(path)
    return found


def check_out_dir(out_dir: Path, inputs: Sequence[Path]) -> None:
    """Refuse an output folder that is, or is inside, an input folder.

    Published copies mixed with originals are how an unredacted original gets uploaded
    by mistake (and a second run would pick the outputs up as inputs).
    """
    out = out_dir.resolve()
    for path in inputs:
        src = path.resolve()
        # A folder is scanned recursively, so nothing below it may be the output; a file's
        # own folder counts too: `--out card card/*.jpg` mixes them just the same.
        if (path.is_dir() and (out == src or src in out.parents)) or out == src.parent:
            raise OutputConflict(
                f"The output folder {out_dir} is inside the input folder {path}; "
                "choose an --out folder outside the photos being published."
            )


def check_operator(operator: str) -> None:
    """The audit's ``operator`` must name someone: non-empty, printable, one line."""
    if not operator.strip() or any(not c.isprintable() for c in operator):
        raise InvalidOptions(
            f"--operator {operator!r} is not usable: give a name without control characters."
        )


def slug(event: str) -> str:
    """A file-name-safe form of the event name (ASCII letters, digits and dashes)."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", event).strip("-").lower()
    return s[:60] or "event"


def publish(
    store: Store,
    inputs: Sequence[Path],
    options: PublishOptions,
    *,
    progress: ProgressCallback | None = None,
    decider: Decider | None = None,
) -> PublishReport:
    """Publish ``inputs`` (files or folders) for ``options.purpose`` into ``options.out_dir``.

    Never raises for one bad photo: it is withheld with the reason, and the rest go on.
    Raises :class:`OutputConflict` before doing anything if the output folder is unsafe.
    ``decider`` replaces detection and matching (a reviewed batch brings its own
    decisions); the consent records in the audit still come from the registry.
    """
    check_operator(options.operator)
    check_out_dir(options.out_dir, inputs)
    # An audit log that no longer verifies cannot account for new publishes: stop first.
    audit.ensure_intact(store)
    photos = collect_inputs(inputs)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    gallery = load_gallery(
        store, options.purpose, options.on, options.candidates, encodings=decider is None
    )
    decide_photo = decider or analysing_decider(options, gallery)
    namer = _OutputNamer(options.out_dir, slug(options.event), options.output_format)
    results: list[PhotoResult] = []
    for i, photo in enumerate(photos, start=1):
        result = _publish_one(store, photo, options, decide_photo, gallery, namer)
        results.append(result)
        if progress is not None:
            progress(i, len(photos), result)
    report = PublishReport(options, results)
    _write_report(options.out_dir / REPORT_NAME, report)
    return report


class _OutputNamer:
    """Hands out ``<event>-0001.jpg``, ``<event>-0002.jpg``... skipping names in use."""

    def __init__(self, out_dir: Path, stem: str, fmt: OutputFormat) -> None:
        self.out_dir, self.stem, self.fmt, self.n = out_dir, stem, fmt, 0

    def next(self) -> Path:
        while True:
            self.n += 1
            candidate = self.out_dir / f"{self.stem}-{self.n:04d}{self.fmt.suffix}"
            if not candidate.exists():
                return candidate


def _publish_one(
    store: Store,
    photo: Path,
    options: PublishOptions,
    decide_photo: Decider,
    gallery: Gallery,
    namer: _OutputNamer,
) -> PhotoResult:
    result = PhotoResult(input=str(photo), status="withheld", reason="")
    dest: Path | None = None
    try:
        loaded = load_image(photo)
        result.input_sha256 = loaded.sha256
        result.faces = decide_photo(photo, loaded)
        regions = [head_region(f.box) for f in blurred(result.faces)]
        safe = redact(loaded.pixels, regions, options.style)
        data = encode_clean(safe, options.output_format)
        committed = False
        try:
            with store.transaction():
                dest = _write_new(data, namer)
                result.status, result.output = "published", str(dest)
                result.output_sha256 = sha256_bytes(data)
                result.reason = _published_reason(result.faces)
                audit.append(
                    store.conn,
                    store.key,
                    action="publish",
                    operator=options.operator,
                    details=_audit_details(result, options, gallery),
                )
            committed = True
        finally:
            # No audit entry, no output: also on Ctrl-C between the write and the commit.
            if not committed and dest is not None:
                dest.unlink(missing_ok=True)
        return result
    except Exception as exc:  # fail closed: any failure withholds this photo
        result.status, result.output, result.output_sha256 = "withheld", None, None
        result.reason = _withheld_reason(exc)
    _audit_withheld(store, result, options, gallery)
    return result


def _write_new(data: bytes, namer: _OutputNamer) -> Path:
    """Write ``data`` under the next free name; a name taken meanwhile moves on to the next,
    any other failure (disk full, permissions) is raised."""
    while True:
        dest = namer.next()
        try:
            write_atomic(data, dest)
            return dest
        except OutputConflict:
            if not dest.exists():
                raise


def _audit_withheld(
    store: Store, result: PhotoResult, options: PublishOptions, gallery: Gallery
) -> None:
    with store.transaction():
        audit.append(
            store.conn,
            store.key,
            action="withhold",
            operator=options.operator,
            details=_audit_details(result, options, gallery),
        )


def _withheld_reason(exc: Exception) -> str:
    if isinstance(exc, PipelineError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"could not read or write a file: {exc.strerror or exc}"
    # Anything unexpected is a bug; keep the type so the report is actionable.
    last = traceback.extract_tb(exc.__traceback__)[-1:]
    where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
    return f"internal error {type(exc).__name__}{where}: {exc}"


def _published_reason(faces: list[FaceDecision]) -> str:
    k, b = len(kept(faces)), len(blurred(faces))
    if not faces:
        return "no faces found"
    return f"{k} face(s) kept with consent, {b} blurred"


def _audit_details(
    result: PhotoResult, options: PublishOptions, gallery: Gallery
) -> dict[str, object]:
    kept_ids = sorted({f.pupil_id for f in kept(result.faces) if f.pupil_id})
    return {
        "purpose": options.purpose.value,
        "event": options.event,
        "destination": options.destination,
        "publish_date": options.on.isoformat(),
        "candidate_pupils": None if options.candidates is None else sorted(options.candidates),
        "status": result.status,
        "reason": result.reason,
        "input": result.input,
        "input_sha256": result.input_sha256,
        "output": None if result.output is None else Path(result.output).name,
        "output_sha256": result.output_sha256,
        "faces_kept": len(kept(result.faces)),
        "faces_blurred": len(blurred(result.faces)),
        "pupils_kept": kept_ids,
        "consent_records": {p: gallery.permitted[p] for p in kept_ids},
        "pupils_blurred": sorted(
            {f.pupil_id for f in blurred(result.faces) if f.pupil_id is not None}
        ),
        "tool_version": __version__,
        "redaction": options.style.value,
        "detection": options.detection.describe(),
        "matching": options.matching.describe(),
    }


def _write_report(path: Path, report: PublishReport) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
