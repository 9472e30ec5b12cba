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

This module is the run; what it takes in is :mod:`publishing.inputs`, what it reads of the
data directory once per batch is :mod:`publishing.context`, and what it reports and the
files it writes beside the outputs are :mod:`publishing.report`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from consent import audit
from consent.store import Store
from pipeline import __version__
from pipeline.analysis import blurred, kept
from pipeline.errors import InvalidOptions, OutputConflict
from pipeline.formats.embedded import embedded_caption
from pipeline.loading import read_photo_bytes
from pipeline.matching import FaceDecision
from pipeline.recognisers import get_recogniser
from pipeline.writing import OutputFormat
from publishing import journal
from publishing.captions.boilerplate import real_caption
from publishing.captions.per_photo import (
    CaptionSource,
)
from publishing.captions.sources import caption_for
from publishing.context import BatchContext, load_context
from publishing.decider import Decider
from publishing.inputs import InputPhoto, check_out_dir, collect_photos
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
from publishing.report import (
    PhotoResult,
    PhotoStatus,
    PublishReport,
    display_path,
    display_text,
    remove_report_temps,
    write_report,
)
from publishing.workers import LocalPool, PhotoMapper, PhotoWork, Processed, withheld_reason

ProgressCallback = Callable[[int, int, PhotoResult], None]


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
    context: BatchContext | None = None,
    mapper: PhotoMapper | None = None,
) -> PublishReport:
    """Publish ``inputs`` (files or folders) for ``options.purpose`` into ``options.out_dir``.

    Never raises for one bad photo: it is withheld with the reason, and the rest go on.
    Raises :class:`OutputConflict` before doing anything if the output folder is unsafe
    or another publish is writing into it. ``decider`` replaces detection and matching (a
    reviewed batch brings its own decisions); the consent records in the audit still come
    from the registry. ``context`` is the batch's data read once by the caller (the web
    service reads it for its decider too); by default it is read here, after the folder
    lock is taken. A context read for another purpose, date or candidates is refused.
    ``mapper`` is where the per-photo work runs (default: this computer's process pool
    with ``options.workers``; `publishing.cluster.DaskCluster` for a cluster); it does
    not change the batch, so a batch begun on one finishes on the other.

    Running the same publish again (same purpose, options, folder and inputs) resumes the
    batch: photos already published, whose input and output are unchanged, are not
    processed again; withheld ones are tried again. ``report.json`` covers the whole batch.
    """
    check_operator(options.operator)
    if context is not None:
        context.require_for(options)
    check_out_dir(options.out_dir, inputs)
    # An audit log that no longer verifies cannot account for new publishes: stop first.
    audit.ensure_intact(store)
    photos = collect_photos(inputs)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(options, decider)
    batch = journal.batch_key(fingerprint, options.out_dir, [p.path for p in photos])
    with FolderLock(options.out_dir):
        _recover(store, options.out_dir)
        if context is None:
            context = load_context(store, options, encodings=decider is None)
        run = _BatchRun(store, options, context, batch, mapper or LocalPool(options.workers))
        work = PhotoWork(options, context.gallery, decider)
        results = run.process(photos, work, progress)
        report = PublishReport(options, results, batch, peak_worker_mb=run.peak_mb)
        report.archived_report = write_report(options.out_dir, report)
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
        "output_max_side": options.output_max_side,
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
    remove_report_temps(out_dir)


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


KEPT_WITHOUT_CONSENT = (
    "a face was kept as a pupil whose consent does not allow this purpose on this date "
    "(it changed while the batch was prepared); review the photo again, then publish"
)

NOT_PROCESSED_DISK_FULL = (
    "not processed: the output disk is full; free some space and run the same command "
    "again to finish the batch"
)


class _BatchRun:
    """One run of a batch: the parent's side, the only writer of files, journal and audit."""

    def __init__(
        self,
        store: Store,
        options: PublishOptions,
        context: BatchContext,
        batch: str,
        mapper: PhotoMapper,
    ):
        self.store, self.options, self.context, self.batch = store, options, context, batch
        self.mapper = mapper
        self.out_dir = options.out_dir
        self.namer = _OutputNamer(
            self.out_dir,
            slug(options.event),
            options.output_format,
            journal.reserved_names(store, self.out_dir),
        )
        self.peak_mb = 0.0
        self.disk_full = False

    def process(
        self, photos: list[InputPhoto], work: PhotoWork, progress: ProgressCallback | None
    ) -> list[PhotoResult]:
        done = journal.finished(self.store, self.batch)
        resumed: dict[int, PhotoResult] = {}
        for i, photo in enumerate(photos):
            row = done.get(journal.path_key(photo.path))
            if row is not None and self._still_published(row, photo.path):
                earlier = PhotoResult.from_report(row.result, resumed=True)
                if self._still_consented(earlier):
                    resumed[i] = earlier
                else:
                    # The copy kept a child whose consent no longer allows it: take it out
                    # of the folder and make the photo again (its audit entry stays, so
                    # takedown still lists where it may have gone).
                    unlink_quietly(self.out_dir / str(row.output))
        todo = [p.path for i, p in enumerate(photos) if i not in resumed and p.refusal is None]
        outcomes: Iterator[Processed] = self.mapper.map(work, todo)
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
        if row.status is not PhotoStatus.PUBLISHED or row.output is None:
            return False
        if file_sha256(self.out_dir / row.output) != row.output_sha256:
            return False
        return file_sha256(path) == row.input_sha256

    def _still_consented(self, earlier: PhotoResult) -> bool:
        """A finished copy is reused only while every pupil it kept still has consent
        for the purpose on this run's date: parents may change a slip between two runs."""
        return all(f.pupil_id in self.context.permitted for f in kept(earlier.faces))

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
        text: str | None = None
        source: CaptionSource | None = None
        if options.captions:
            text = caption_for(options.captions, photo.path, photo.root)
            source = CaptionSource.CAPTIONS_FILE
        if text is None and options.caption:
            text, source = options.caption, CaptionSource.BATCH_CAPTION
        if text is None:
            text, source = real_caption(embedded()), CaptionSource.EMBEDDED  # camera text is none
        caption = self.context.caption(text, result.faces)
        result.caption = caption
        result.caption_source = source if caption is not None else None

    def _finish(self, photo: InputPhoto, outcome: Processed) -> PhotoResult:
        path = photo.path
        if outcome.error is not None or outcome.data is None:
            return self._withhold(
                path, outcome, outcome.error or "nothing was encoded", audited=True
            )
        unconsented = sorted(
            {
                str(f.pupil_id)
                for f in kept(outcome.faces)
                if f.pupil_id not in self.context.permitted
            }
        )
        if unconsented:
            # A decider (a reviewed batch, a cluster worker) kept a face this run's consent
            # does not allow: the pixels are already made, so the photo cannot be used.
            return self._withhold(path, outcome, KEPT_WITHOUT_CONSENT, audited=True)
        result = PhotoResult(
            input=display_path(path),
            status=PhotoStatus.PUBLISHED,
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
            status=PhotoStatus.WITHHELD,
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
                action="publish" if result.status is PhotoStatus.PUBLISHED else "withhold",
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
        details = _audit_details(result, self.options, self.context)
        details["batch"] = self.batch
        where = self.mapper.describe()  # a cluster: its scheduler and workers
        if where:
            details["detection"] = {**details["detection"], **where}  # type: ignore[dict-item]
        return details


def _test_hook(point: str) -> None:
    """For the crash test only: ``PHOTOCONSENT_TEST_KILL=committed:3`` makes the process
    SIGKILL itself at that point of the 3rd photo (see tests/e2e/test_crash_resume.py)."""
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
    result: PhotoResult, options: PublishOptions, context: BatchContext
) -> dict[str, object]:
    kept_ids = sorted({f.pupil_id for f in kept(result.faces) if f.pupil_id})
    return {
        "purpose": options.purpose.value,
        "event": options.event,
        "destination": options.destination,
        "publish_date": options.on.isoformat(),
        "candidate_pupils": None if options.candidates is None else sorted(options.candidates),
        "status": result.status.value,
        "reason": result.reason,
        "input": result.input,
        # Absolute paths, so a takedown names the very file and a republish finds the
        # original from any folder (issue 14); the hashes still identify them.
        "input_path": None if options.via_service else os.path.abspath(result.input),
        "input_sha256": result.input_sha256,
        "output": None if result.output is None else Path(result.output).name,
        "output_path": None
        if result.output is None or options.via_service
        else os.path.abspath(result.output),
        "out_dir": None if options.via_service else os.path.abspath(options.out_dir),
        "via_service": options.via_service,
        "output_sha256": result.output_sha256,
        "faces_kept": len(kept(result.faces)),
        "faces_blurred": len(blurred(result.faces)),
        "pupils_kept": kept_ids,
        # None: no record allows it (only ever on a withheld photo, see _finish).
        "consent_records": {p: context.permitted.get(p) for p in kept_ids},
        "pupils_blurred": sorted(
            {f.pupil_id for f in blurred(result.faces) if f.pupil_id is not None}
        ),
        # The caption's text stays in report.json; the audit records what was done to it.
        "caption": None
        if result.caption is None
        else {
            "source": None if result.caption_source is None else result.caption_source.value,
            "sha256": hashlib.sha256(result.caption.text.encode("utf-8")).hexdigest(),
            "name_policy": result.caption.policy.value,
            "pupils_removed": result.caption.removed,
            "pupils_shortened": result.caption.shortened,
        },
        "tool_version": __version__,
        "redaction": options.style.value,
        "detection": options.detection.describe(),
        # The long side the photo was published (and its faces detected) at; None: its own.
        "output_max_side": options.output_max_side,
        # The recogniser's version too: a template of another version never compares.
        "matching": options.matching.describe()
        | {"recogniser_version": get_recogniser(options.matching.recogniser).version},
    }
