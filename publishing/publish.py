"""The publish job: photos in, safe photos plus ``report.json`` and audit entries out.

For each photo: load (EXIF orientation applied), detect every face, keep only faces
positively matched to a pupil whose consent allows the purpose on the publish date, redact
the whole head of everyone else, encode a new file from pixels only, write it to a hidden
temp file, re-read it from disk and check it carries no metadata, commit its audit entry,
and only then give it its neutral visible name. A photo that cannot be made safe is
withheld, never written.

A batch uses every core (:mod:`publishing.workers`), records its progress in the data
directory (:mod:`publishing.journal`) so the same command run again after an interruption
finishes it without duplicates, and holds a lock on the output folder
(:class:`publishing.outputs.FolderLock`) so two publishes never interleave there.

Captions (a ``--captions`` file, a ``--caption`` for the batch, or the caption the photo
itself carries) are rewritten for the purpose's name policy against the registry and this
photo's face decisions (:mod:`publishing.captions.per_photo`); the result goes into
``report.json`` and ``captions.csv`` beside the outputs, never into an image.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from consent import audit, files
from consent.name_policy import name_policy
from consent.store import Store
from pipeline import __version__
from pipeline.analysis import Gallery, blurred, kept
from pipeline.boxes import Box
from pipeline.errors import InvalidOptions, OutputConflict
from pipeline.formats.embedded import embedded_caption
from pipeline.loading import read_photo_bytes
from pipeline.matching import Decision, FaceDecision, Reason
from pipeline.writing import OutputFormat
from publishing import journal
from publishing.captions.boilerplate import real_caption
from publishing.captions.per_photo import PhotoCaption, photo_caption, register_pupils
from publishing.captions.sources import caption_for
from publishing.context import load_gallery
from publishing.decider import Decider
from publishing.options import PublishOptions
from publishing.outputs import (
    DiskFull,
    FolderLock,
    file_sha256,
    remove_stale_temps,
    reveal,
    temp_name,
    unlink_quietly,
    verify_written,
    write_temp,
)
from publishing.workers import PhotoWork, Processed, default_workers, process_all, withheld_reason

# Files a camera, phone or OS drops beside photos that are not photos of anyone, and the
# reports publish itself writes.
NOT_PHOTOS = frozenset({"thumbs.db", "desktop.ini", "report.json", "captions.csv"})
_REPORT_FILE = re.compile(r"^(report-[0-9tz-]+\.json|captions-[0-9tz-]+\.csv)$", re.IGNORECASE)
REPORT_NAME = "report.json"
CAPTIONS_NAME = "captions.csv"


@dataclass
class PhotoResult:
    """The outcome for one input photo (one entry of ``report.json``).

    ``resumed`` is True when an earlier, interrupted run of the same batch finished it.
    """

    input: str
    status: str  # "published" | "withheld"
    reason: str
    output: str | None = None
    faces: list[FaceDecision] = field(default_factory=list)
    input_sha256: str | None = None
    output_sha256: str | None = None
    resumed: bool = False
    # The caption rewritten for the purpose and where its source came from ("captions
    # file", "--caption", "embedded"); None when the photo has no caption.
    caption: PhotoCaption | None = None
    caption_source: str | None = None

    def to_report(self) -> dict[str, object]:
        entry: dict[str, object] = {
            "input": self.input,
            "output": self.output,
            "status": self.status,
            "reason": self.reason,
            "input_sha256": self.input_sha256,
            "output_sha256": self.output_sha256,
            "faces": [f.to_report() for f in self.faces],
        }
        if self.status == "published":
            entry["caption"] = None
            if self.caption is not None:
                entry["caption"] = {"source": self.caption_source, **self.caption.to_report()}
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
            status=str(entry["status"]),
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
        return [r for r in self.results if r.status == "published"]

    @property
    def withheld(self) -> list[PhotoResult]:
        return [r for r in self.results if r.status == "withheld"]

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


def reason_group(result: PhotoResult) -> str:
    """A withheld photo's reason without its own file name, so reasons can be counted."""
    name = display_path(Path(result.input).name) if result.input else ""
    reason = result.reason
    if name and reason.startswith(name + ": "):
        reason = reason[len(name) + 2 :]
    return reason


ProgressCallback = Callable[[int, int, PhotoResult], None]


def display_path(path: Path | str) -> str:
    """``path`` as text that always survives JSON, SQLite and UTF-8: bytes that are not
    UTF-8 (a file name from an old camera or a Windows-1252 USB stick) become ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def display_text(text: str) -> str:
    """A message that may quote a file name (a withheld reason), made valid UTF-8 the same
    way as :func:`display_path`."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class InputPhoto:
    """One file to publish; ``refusal`` says why it must be withheld without opening it."""

    path: Path
    refusal: str | None = None
    # The input folder it was found in (None for a file named on the command line); a
    # --captions file may name photos by their path relative to it.
    root: Path | None = None


def collect_inputs(paths: Iterable[Path]) -> list[Path]:
    """Expand folders into the files below them (sorted; hidden files and OS clutter such
    as Thumbs.db skipped).

    Every other file is kept whatever its extension, so a HEIC, a video or a misnamed file
    in a camera folder is reported as withheld with its reason, never silently skipped.
    """
    return [p.path for p in collect_photos(paths)]


def collect_photos(paths: Iterable[Path]) -> list[InputPhoto]:
    """:func:`collect_inputs` with a refusal for links found in a folder that point outside
    it: a link on a memory stick to ``/home/head/Pictures`` must not publish those photos.
    Links to folders are not followed (one inside the folder would list photos twice).
    A file named on the command line is taken as named, link or not.
    """
    found: list[InputPhoto] = []
    for path in paths:
        if not path.is_dir():
            found.append(InputPhoto(path))
            continue
        root = os.path.realpath(path)
        below: list[InputPhoto] = []
        for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for d in dirnames:
                sub = Path(dirpath, d)
                if sub.is_symlink() and not _inside(os.path.realpath(sub), root):
                    below.append(
                        InputPhoto(sub, "is a link to a folder outside the input folder", path)
                    )
            for name in filenames:
                if name.startswith(".") or name.lower() in NOT_PHOTOS or _REPORT_FILE.match(name):
                    continue
                sub = Path(dirpath, name)
                refusal = None
                if sub.is_symlink() and not _inside(os.path.realpath(sub), root):
                    refusal = "is a link to a file outside the input folder"
                below.append(InputPhoto(sub, refusal, path))
        found.extend(sorted(below, key=lambda p: p.path))
    return found


def _inside(target: str, root: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


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
    Raises :class:`OutputConflict` before doing anything if the output folder is unsafe
    or another publish is writing into it. ``decider`` replaces detection and matching (a
    reviewed batch brings its own decisions); the consent records in the audit still come
    from the registry.

    Running the same publish again (same purpose, options, folder and inputs) resumes the
    batch: photos already published, whose input and output are unchanged, are not
    processed again; withheld ones are tried again. ``report.json`` covers the whole batch.
    """
    check_operator(options.operator)
    check_out_dir(options.out_dir, inputs)
    # An audit log that no longer verifies cannot account for new publishes: stop first.
    audit.ensure_intact(store)
    photos = collect_photos(inputs)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    journal.ensure_schema(store)
    fingerprint = _fingerprint(options, decider)
    batch = journal.batch_key(fingerprint, options.out_dir, [p.path for p in photos])
    with FolderLock(options.out_dir):
        _recover(store, options.out_dir)
        gallery = load_gallery(
            store, options.purpose, options.on, options.candidates, encodings=decider is None
        )
        run = _BatchRun(store, options, gallery, batch)
        work = PhotoWork(options, gallery, decider)
        results = run.process(photos, work, progress)
        report = PublishReport(options, results, batch, peak_worker_mb=run.peak_mb)
        report.archived_report = _write_report(options.out_dir, report)
    return report


def _fingerprint(options: PublishOptions, decider: Decider | None) -> dict[str, object]:
    """What decides a batch's outputs; the date, operator and worker count do not."""
    return {
        "purpose": options.purpose.value,
        "event": options.event,
        "style": options.style.value,
        "format": options.output_format.value,
        "thoroughness": options.detection.thoroughness.value,
        "max_side": options.detection.max_side,
        "matching": options.matching.describe(),
        "candidates": None if options.candidates is None else sorted(options.candidates),
        "destination": options.destination,
        "decisions": "analysis" if decider is None else "given",
    }


def _recover(store: Store, out_dir: Path) -> None:
    """Finish what a killed run left half-done in ``out_dir``: reveal outputs whose audit
    entry committed before their rename, and delete every other hidden temp file."""
    keep: set[str] = set()
    for row in journal.pending_reveals(store, out_dir):
        assert row.output is not None and row.temp is not None
        dest, temp = out_dir / row.output, out_dir / row.temp
        if not os.path.lexists(dest) and file_sha256(temp) == row.output_sha256:
            try:
                reveal(temp, dest)
            except OutputConflict:
                keep.add(row.temp)
                continue
        unlink_quietly(temp)
        journal.mark_revealed(store, out_dir, row.output)
    remove_stale_temps(out_dir, keep)
    unlink_quietly(out_dir / f".{REPORT_NAME}.tmp")
    unlink_quietly(out_dir / f".{CAPTIONS_NAME}.tmp")


class _OutputNamer:
    """Hands out ``<event>-0001.jpg``, ``<event>-0002.jpg``... skipping names in use or
    ever handed out in this folder (so an audit entry's output name stays unambiguous)."""

    def __init__(self, out_dir: Path, stem: str, fmt: OutputFormat, taken: set[str]) -> None:
        self.out_dir, self.stem, self.fmt, self.n, self.taken = out_dir, stem, fmt, 0, taken

    def next(self) -> Path:
        while True:
            self.n += 1
            name = f"{self.stem}-{self.n:04d}{self.fmt.suffix}"
            candidate = self.out_dir / name
            if name not in self.taken and not os.path.lexists(candidate):
                self.taken.add(name)
                return candidate


NOT_PROCESSED_DISK_FULL = (
    "not processed: the output disk is full; free some space and run the same command "
    "again to finish the batch"
)


class _BatchRun:
    """One run of a batch: the parent's side, the only writer of files, journal and audit."""

    def __init__(self, store: Store, options: PublishOptions, gallery: Gallery, batch: str):
        self.store, self.options, self.gallery, self.batch = store, options, gallery, batch
        self.out_dir = options.out_dir
        self.namer = _OutputNamer(
            self.out_dir,
            slug(options.event),
            options.output_format,
            journal.reserved_names(store, self.out_dir),
        )
        self.peak_mb = 0.0
        self.disk_full = False
        # Read once per batch: every pupil on the register (a caption may name any of
        # them) and the purpose's name policy.
        self.pupils = register_pupils(store.conn)
        self.policy = name_policy(store.conn, options.purpose)

    def process(
        self, photos: list[InputPhoto], work: PhotoWork, progress: ProgressCallback | None
    ) -> list[PhotoResult]:
        done = journal.finished(self.store, self.batch)
        resumed: dict[int, PhotoResult] = {}
        for i, photo in enumerate(photos):
            row = done.get(journal.path_key(photo.path))
            if row is not None and self._still_published(row, photo.path):
                resumed[i] = PhotoResult.from_report(row.result, resumed=True)
        todo = [p.path for i, p in enumerate(photos) if i not in resumed and p.refusal is None]
        workers = self.options.workers or default_workers()
        outcomes: Iterator[Processed] = process_all(work, todo, workers)
        results: list[PhotoResult] = []
        try:
            for i, photo in enumerate(photos, start=0):
                if i in resumed:
                    result = resumed[i]
                    # Captions follow this run's caption inputs and today's consent.
                    own = functools.partial(self._embedded_again, photo.path)
                    self._add_caption(photo, result, own)
                elif photo.refusal is not None:
                    result = self._withhold(photo.path, None, photo.refusal, audited=True)
                elif self.disk_full:
                    result = self._withhold(photo.path, None, NOT_PROCESSED_DISK_FULL)
                else:
                    outcome = next(outcomes)
                    self.peak_mb = max(self.peak_mb, outcome.peak_rss_mb)
                    result = self._finish(photo, outcome)
                    if self.disk_full:
                        # Stop the workers: nothing more can be written.
                        outcomes.close()  # type: ignore[attr-defined]
                results.append(result)
                if progress is not None:
                    progress(i + 1, len(photos), result)
        finally:
            outcomes.close()  # type: ignore[attr-defined]
        return results

    def _still_published(self, row: journal.JournalRow, path: Path) -> bool:
        """A finished photo is skipped only if its output is still there, unchanged, and
        the input is the same file it was."""
        if row.status != "published" or row.output is None:
            return False
        if file_sha256(self.out_dir / row.output) != row.output_sha256:
            return False
        return file_sha256(path) == row.input_sha256

    def _embedded_again(self, path: Path) -> str | None:
        """The caption a finished photo carries, for a resumed run (the worker read it
        the first time; the input was just checked to be the same file)."""
        if not self.options.embedded_captions:
            return None
        try:
            return embedded_caption(read_photo_bytes(path))
        except Exception:  # noqa: BLE001 - it was readable moments ago; no caption then
            return None

    def _add_caption(
        self, photo: InputPhoto, result: PhotoResult, embedded: Callable[[], str | None]
    ) -> None:
        """Give a published photo its caption, rewritten for the purpose (or none).
        ``embedded`` gives the photo's own caption; it is asked only when neither
        --captions nor --caption gives one (for a resumed photo it reads the file)."""
        options = self.options
        text, source = None, None
        if options.captions:
            text, source = caption_for(options.captions, photo.path, photo.root), "captions file"
        if text is None and options.caption:
            text, source = options.caption, "--caption"
        if text is None:
            text, source = real_caption(embedded()), "embedded"  # camera text is none
        caption = photo_caption(
            self.store.conn,
            text,
            result.faces,
            options.purpose,
            options.on,
            policy=self.policy,
            pupils=self.pupils,
        )
        result.caption = caption
        result.caption_source = source if caption is not None else None

    def _finish(self, photo: InputPhoto, outcome: Processed) -> PhotoResult:
        path = photo.path
        if outcome.error is not None or outcome.data is None:
            return self._withhold(
                path, outcome, outcome.error or "nothing was encoded", audited=True
            )
        result = PhotoResult(
            input=display_path(path),
            status="published",
            reason=_published_reason(outcome.faces),
            faces=outcome.faces,
            input_sha256=outcome.input_sha256,
            output_sha256=outcome.output_sha256,
        )
        try:
            self._add_caption(photo, result, lambda: outcome.embedded_caption)
            self._write(path, outcome.data, result)
        except DiskFull as exc:
            self.disk_full = True
            return self._withhold(path, outcome, str(exc), audited=True)
        except Exception as exc:  # fail closed: this photo is withheld, the batch goes on
            return self._withhold(path, outcome, withheld_reason(exc), audited=True)
        return result

    def _write(self, path: Path, data: bytes, result: PhotoResult) -> None:
        """Temp file, read back and checked, audit + journal commit, then the visible name."""
        dest = self.namer.next()
        temp = self.out_dir / temp_name(dest.name)
        write_temp(data, temp)
        try:
            verify_written(temp, str(result.output_sha256))
            _test_hook("written")
            while os.path.lexists(dest):  # taken by another program meanwhile: move on
                dest = self.namer.next()
            result.output = str(dest)
            self._record(path, result, output=dest.name, temp=temp.name)
        except BaseException:
            # No audit entry, no output: also on Ctrl-C before the commit.
            result.output = None
            unlink_quietly(temp)
            raise
        _test_hook("committed")
        try:
            reveal(temp, dest)
        except OutputConflict as exc:
            # Another program took the name despite the folder lock: void the entry.
            unlink_quietly(temp)
            raise OutputConflict(
                f"{dest.name} was created by another program during the publish; the "
                "publish entry for it is void"
            ) from exc
        journal.mark_revealed(self.store, self.out_dir, dest.name)
        _test_hook("revealed")

    def _withhold(
        self, path: Path, outcome: Processed | None, reason: str, *, audited: bool = False
    ) -> PhotoResult:
        result = PhotoResult(
            input=display_path(path),
            status="withheld",
            reason=display_text(reason),
            faces=[] if outcome is None else outcome.faces,
            input_sha256=None if outcome is None else outcome.input_sha256,
        )
        if audited:
            self._record(path, result)
        return result

    def _record(
        self, path: Path, result: PhotoResult, *, output: str | None = None, temp: str | None = None
    ) -> None:
        """The photo's audit entry and journal row, in one transaction (both or neither)."""
        with self.store.transaction() as conn:
            audit.append(
                conn,
                self.store.key,
                action="publish" if result.status == "published" else "withhold",
                operator=self.options.operator,
                details=self._details(result),
            )
            journal.record(
                conn,
                self.batch,
                self.out_dir,
                journal.path_key(path),
                input_sha256=result.input_sha256,
                status=result.status,
                output=output,
                output_sha256=result.output_sha256 if output else None,
                temp=temp,
                result=result.to_report(),
                at=audit.utc_now(),
            )

    def _details(self, result: PhotoResult) -> dict[str, object]:
        details = _audit_details(result, self.options, self.gallery)
        details["batch"] = self.batch
        return details


def _test_hook(point: str) -> None:
    """For the crash test only: ``PHOTOCONSENT_TEST_KILL=committed:3`` makes the process
    SIGKILL itself at that point of the 3rd photo (see tests/test_crash_resume.py)."""
    spec = os.environ.get("PHOTOCONSENT_TEST_KILL")
    if not spec:
        return
    where, _, count = spec.partition(":")
    if where != point:
        return
    global _hook_hits
    _hook_hits += 1
    if _hook_hits == int(count or 1):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


_hook_hits = 0


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
        # The caption's text stays in report.json; the audit records what was done to it.
        "caption": None
        if result.caption is None
        else {
            "source": result.caption_source,
            "sha256": hashlib.sha256(result.caption.text.encode("utf-8")).hexdigest(),
            "name_policy": result.caption.policy.value,
            "pupils_removed": result.caption.removed,
            "pupils_shortened": result.caption.shortened,
        },
        "tool_version": __version__,
        "redaction": options.style.value,
        "detection": options.detection.describe(),
        "matching": options.matching.describe(),
    }


def _write_report(out_dir: Path, report: PublishReport) -> Path | None:
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
            archived = _archive_name(path)
            os.rename(path, archived)
            captions = out_dir / CAPTIONS_NAME
            if os.path.lexists(captions):
                os.rename(captions, _captions_archive_name(archived))
    _replace_file(path, json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    _write_captions(out_dir / CAPTIONS_NAME, report)
    return archived


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


def _captions_archive_name(archived_report: Path) -> Path:
    stem = archived_report.stem.replace("report-", "captions-", 1)
    candidate = archived_report.with_name(f"{stem}.csv")
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = archived_report.with_name(f"{stem}-{n}.csv")
    return candidate


def _archive_name(path: Path) -> Path:
    when = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = path.with_name(f"report-{when}.json")
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = path.with_name(f"report-{when}-{n}.json")
    return candidate
