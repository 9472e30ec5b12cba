"""Publish jobs run in a background thread, so the page can show live progress, and each
leaves a note in its folder, so it is still there after the app restarts.

A job owns a private folder in the app's work area: ``in/`` for uploaded photos (kept, so
a later takedown can republish from the originals, and so an interrupted publish can be
run again), ``out/`` for the published copies, ``report.json`` and ``captions.csv``, the
captions file it was given (``captions-given.csv``, until the publish ends well: it
names pupils in full and is needed only to run an unfinished publish again) and
``job.json``: who started it, its purpose, event and options, the names of its photos
in ``in/``, when it started and how it ended. ``job.json`` holds no pupil's name and no
path outside the data directory; it is written owner-only when the job starts and
replaced in one step when it ends.

The thread opens its own store (SQLite connections stay in their thread) and calls
`publishing.publish.publish`, which audits every photo under the signed-in person.

When the app starts, :func:`load_jobs` reads every job folder back. A finished job gets
its results again from ``out/report.json`` (`publishing.report.read_report`; a damaged file
means no results and nothing to download). A job whose ``job.json`` still says it is
running was interrupted: nothing of it is offered, and :func:`run_again` runs the same
photos with the same options into the same ``out/``, where publish's journal resumes the
batch (photos it already published and audited are kept, not made twice; its half-written
temp files are removed first).
"""

from __future__ import annotations

import enum
import json
import logging
import re
import secrets
import threading
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from consent import files
from consent.errors import ConsentError
from consent.registry import Purpose
from consent.store import Store, open_store
from pipeline.errors import PipelineError
from pipeline.matching import MatchSettings
from pipeline.writing import sha256_bytes
from publishing import journal
from publishing.captions.sources import CaptionCsvError, parse_captions_csv
from publishing.options import PublishOptions
from publishing.publish import publish
from publishing.report import (
    CAPTIONS_NAME,
    PhotoResult,
    PhotoStatus,
    PublishReport,
    UnreadableReport,
    read_report,
)
from publishing.review.batch import ReviewBatch, create_batch

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
CAPTIONS_GIVEN = "captions-given.csv"
RECORD_VERSION = 1
_JOB_ID = re.compile(r"^[0-9a-f]{16}$")


class JobState(enum.Enum):
    """What ``job.json`` says of a job. A job loaded as RUNNING was interrupted."""

    RUNNING = "running"
    PUBLISHED = "published"
    REVIEW = "review"  # analysed; the faces wait on the review screen
    STOPPED = "stopped"  # ended with an error


class Source(enum.Enum):
    """Where a job's photos are: uploaded into ``in/``, or a folder on this PC (not kept,
    and its path is not written down: it may name a person)."""

    UPLOAD = "upload"
    FOLDER = "folder"
    # A reviewed batch's photos (web.views.review), wherever the batch found them.
    REVIEWED = "reviewed"


class CannotRunAgain(Exception):
    """An earlier publish cannot be run again (its kept photos are gone or changed)."""


class UnsafeDownload(Exception):
    """A published copy is missing or differs from what the report recorded."""


@dataclass
class PublishJob:
    job_id: str
    owner: str
    folder: Path
    inputs: list[Path]
    options: PublishOptions
    source: Source = Source.UPLOAD
    review: bool = False
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    total: int = 0
    done: int = 0
    finished: bool = False
    error: str | None = None
    report: PublishReport | None = None
    review_batch: str | None = None  # set when the job analysed photos for review
    # The uploaded photos' names in ``in/`` (relative to it) when the job was made.
    photo_names: list[str] = field(default_factory=list)
    # Only for a job read back at start: it was still running when the app stopped; or
    # it finished but its report.json could not be read.
    interrupted: bool = False
    unreadable: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def out_dir(self) -> Path:
        return self.options.out_dir

    def words(self) -> str:
        if self.interrupted:
            return (
                "Interrupted: the app stopped before this publish finished. Nothing from "
                "it was published unless listed below."
            )
        if self.unreadable:
            return (
                "The results could not be read (the publish's report file is damaged), so "
                "nothing from it is offered for download."
            )
        if self.error:
            return f"The publish stopped: {self.error}"
        if self.finished and self.review_batch is not None:
            return "Finished: the faces are ready to review."
        if self.finished and self.report is not None:
            return (
                f"Finished: {len(self.report.published)} published, "
                f"{len(self.report.withheld)} withheld."
            )
        if not self.total:
            return "Loading the face models and reading the photos..."
        return f"{self.done} of {self.total} photos done."

    def state(self) -> dict[str, object]:
        with self.lock:
            return {
                "total": self.total,
                "done": self.done,
                "finished": self.finished,
                "words": self.words(),
            }

    def status(self) -> str:
        """One or two words for the list of recent publishes."""
        if self.interrupted:
            return "Interrupted"
        if self.unreadable:
            return "Results could not be read"
        if not self.finished:
            return "Running"
        if self.error:
            return "Stopped"
        if self.review_batch is not None:
            return "Sent to review"
        return "Finished"

    @property
    def can_run_again(self) -> bool:
        """An ended publish that did not give its results, whose photos the app kept."""
        return (
            self.finished
            and self.source is Source.UPLOAD
            and (self.interrupted or self.unreadable or self.error is not None)
        )

    def result(self, index: int) -> PhotoResult:
        assert self.report is not None
        return self.report.results[index]

    def record(self) -> dict[str, object]:
        """``job.json``: what is needed to show the job and run it again, no more."""
        with self.lock:
            if not self.finished:
                state = JobState.RUNNING
            elif self.error is not None:
                state = JobState.STOPPED
            elif self.review_batch is not None:
                state = JobState.REVIEW
            else:
                state = JobState.PUBLISHED
            report = self.report
            return {
                "version": RECORD_VERSION,
                "job_id": self.job_id,
                "owner": self.owner,
                "purpose": self.options.purpose.value,
                "event": self.options.event,
                "destination": self.options.destination,
                "on": self.options.on.isoformat(),
                "review": self.review,
                "source": self.source.value,
                "inputs": self.photo_names,
                "captions": (self.folder / CAPTIONS_GIVEN).is_file(),
                "started": self.started.isoformat(),
                "state": state.value,
                "published": None if report is None else len(report.published),
                "withheld": None if report is None else len(report.withheld),
                "review_batch": self.review_batch,
                "error": None if self.error is None else _without_private_paths(self),
            }


def _without_private_paths(job: PublishJob) -> str:
    """The error with the chosen folder's path taken out (it may name a person, and it
    is outside the data directory)."""
    text = str(job.error)
    if job.source is not Source.UPLOAD:
        words = "the chosen folder" if job.source is Source.FOLDER else "a reviewed photo"
        for path in sorted(job.inputs, key=lambda p: len(str(p)), reverse=True):
            text = text.replace(str(path), words)
    return text


def kept_photo_names(folder: Path) -> list[str]:
    """The files in a job's ``in/``, relative to it, sorted."""
    base = folder / "in"
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


def new_job_folder(work: Path) -> tuple[str, Path]:
    job_id = secrets.token_hex(8)
    folder = work / "publish" / job_id
    (folder / "in").mkdir(parents=True, mode=0o700)
    return job_id, folder


def save_record(job: PublishJob) -> None:
    """Write ``job.json`` (owner-only), replacing the last one in one step."""
    text = json.dumps(job.record(), indent=2, ensure_ascii=False) + "\n"
    files.replace_atomic(job.folder / JOB_FILE, text.encode("utf-8"), mode=files.PRIVATE)


# What a job runs: given the thread's own store and a progress callback, a publish
# report, or the review batch it saved (then the page goes on to the review screen).
Work = Callable[[Store, Callable[[int, int, object], None]], "PublishReport | ReviewBatch"]


def run_publish(job: PublishJob) -> Work:
    return lambda store, progress: publish(store, job.inputs, job.options, progress=progress)


def run_review(job: PublishJob) -> Work:
    """Analyse only: kept faces wait for a reviewer's approval (the review screen)."""
    return lambda store, progress: create_batch(store, job.inputs, job.options, progress=progress)


def work_for(job: PublishJob) -> Work:
    return run_review(job) if job.review else run_publish(job)


def start(job: PublishJob, data_dir: Path, work: Work) -> threading.Thread:
    """Write the job's ``job.json`` (raises `FileWriteError` if it cannot: then nothing
    runs), then run ``work`` in a thread; ``job.json`` is rewritten when it ends."""
    try:
        save_record(job)
    except ConsentError:
        with job.lock:  # a caller that already listed the job shows it as stopped
            job.error, job.finished = "the app could not write to its folder", True
        raise

    def progress(done: int, total: int, _: object) -> None:
        with job.lock:
            job.done, job.total = done, total

    def run() -> None:
        try:
            with open_store(data_dir) as store:
                made = work(store, progress)
            with job.lock:
                if isinstance(made, ReviewBatch):
                    job.review_batch = made.batch_id
                    job.done = job.total = len(made.photos)
                else:
                    job.report = made
                    job.done = job.total = len(made.results)
        except (ConsentError, PipelineError, OSError) as exc:
            with job.lock:
                job.error = str(exc)
        except Exception:
            with job.lock:
                job.error = "an unexpected error; nothing unsafe was published (see the log)"
            raise
        except BaseException:
            with job.lock:
                job.error = "it was stopped before it finished"
            raise
        finally:
            with job.lock:
                job.finished = True
                ended_well = job.error is None
            if ended_well:
                # The captions as given name pupils in full; they were kept only so a run
                # that did not finish can be run again. This one made its captions.
                files.unlink_quietly(job.folder / CAPTIONS_GIVEN)
            try:
                save_record(job)
            except (ConsentError, OSError):
                # The page still shows the result; after a restart the job shows as
                # interrupted, and running it again resumes it (nothing is made twice).
                log.exception("publish %s: could not write %s", job.job_id, JOB_FILE)

    thread = threading.Thread(target=run, name=f"publish-{job.job_id}", daemon=True)
    thread.start()
    return thread


def load_jobs(work: Path) -> dict[str, PublishJob]:
    """Every job folder under ``work/publish`` with a readable ``job.json``, as jobs that
    have ended: finished ones with their results, running ones marked interrupted.

    A folder without a readable ``job.json`` (made by an older version, or damaged) is
    left alone and not listed: nothing in it is offered.
    """
    found: dict[str, PublishJob] = {}
    base = work / "publish"
    if not base.is_dir():
        return found
    for folder in sorted(base.iterdir()):
        if not _JOB_ID.match(folder.name) or not (folder / JOB_FILE).is_file():
            continue
        try:
            found[folder.name] = _job_from_record(folder)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            log.warning("publish %s: %s cannot be read (%s)", folder.name, JOB_FILE, exc)
    return found


def _job_from_record(folder: Path) -> PublishJob:
    data = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data["version"] != RECORD_VERSION:
        raise ValueError("not a job record this version knows")
    if data["job_id"] != folder.name:
        raise ValueError("the record is of another job")
    source = Source(data["source"])
    options = PublishOptions(
        purpose=Purpose(data["purpose"]),
        out_dir=folder / "out",
        event=str(data["event"]),
        operator=str(data["owner"]),
        on=date.fromisoformat(data["on"]),
        destination=None if data["destination"] is None else str(data["destination"]),
    )
    started = datetime.fromisoformat(data["started"])
    if started.tzinfo is None:
        raise ValueError("the start time has no time zone")
    job = PublishJob(
        data["job_id"],
        str(data["owner"]),
        folder,
        [folder / "in"] if source is Source.UPLOAD else [],
        options,
        source=source,
        review=bool(data["review"]),
        started=started,
        finished=True,
    )
    state = JobState(data["state"])
    if state is JobState.RUNNING:
        job.interrupted = True
    elif state is JobState.STOPPED:
        job.error = str(data["error"])
    elif state is JobState.REVIEW:
        job.review_batch = str(data["review_batch"])
    else:
        try:
            job.report = read_report(job.out_dir, options)
        except UnreadableReport as exc:
            log.warning("publish %s: %s", job.job_id, exc)
            job.unreadable = True
        else:
            job.done = job.total = len(job.report.results)
    job.photo_names = [str(n) for n in data["inputs"]]
    return job


def run_again(
    job: PublishJob, owner: str, matching: MatchSettings, workers: int | None
) -> PublishJob:
    """A new run of an ended ``job`` (same id, folder, photos and options; judged on
    today's consent with today's matching rule; audited under ``owner``), not yet started.

    Into the same ``out/``: publish's journal resumes the batch, so photos the earlier run
    published are kept as they are (no second copy, no second audit entry) and its hidden
    temp files are removed. Raises `CannotRunAgain` if the kept photos are not all there
    as listed in ``job.json``, or the captions file cannot be read.
    """
    if not job.can_run_again:
        raise CannotRunAgain("This publish cannot be run again from here.")
    present = kept_photo_names(job.folder)
    if not present or sorted(job.photo_names) != present:
        raise CannotRunAgain(
            "The photos kept for this publish are no longer all in the app's folder, so it "
            "cannot be run again. Publish the photos again from the start."
        )
    captions = None
    if (job.folder / CAPTIONS_GIVEN).is_file():
        try:
            captions = parse_captions_csv((job.folder / CAPTIONS_GIVEN).read_bytes())
        except (CaptionCsvError, OSError):
            raise CannotRunAgain(
                "The captions file kept for this publish cannot be read, so it cannot be "
                "run again. Publish the photos again from the start."
            ) from None
    old = job.options
    options = PublishOptions(
        purpose=old.purpose,
        matching=matching,
        out_dir=old.out_dir,
        event=old.event,
        operator=owner,
        on=date.today(),
        destination=old.destination,
        captions=captions,
        workers=workers,
    )
    return PublishJob(
        job.job_id,
        owner,
        job.folder,
        [job.folder / "in"],
        options,
        review=job.review,
        photo_names=present,
    )


def made_before(store: Store, job: PublishJob) -> list[str]:
    """The copies an interrupted job had already made and audited (their names in
    ``out/``): the journal records each with its audit entry, in one transaction."""
    return sorted(journal.reserved_names(store, job.out_dir))


def recent(all_jobs: Iterable[PublishJob], limit: int = 30) -> list[PublishJob]:
    """The latest publishes first."""
    return sorted(all_jobs, key=lambda j: j.started, reverse=True)[:limit]


def write_upload_zip(job: PublishJob, dest: Path) -> Path:
    """The zip to upload: the published photos and, if any, ``captions.csv``; never
    ``report.json`` (it names the input files and every face's decision).

    Each copy goes in only if it is still the file the publish wrote (its SHA-256 as in
    the report, checked on the very bytes zipped): one missing, edited or replaced since
    raises `UnsafeDownload`, and ``dest`` is removed.
    """
    try:
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as z:
            for result in job.report.results if job.report else []:
                if result.status is not PhotoStatus.PUBLISHED or not result.output:
                    continue
                name = Path(result.output).name
                try:
                    data = (job.out_dir / name).read_bytes()
                except OSError:
                    data = None
                if data is None or sha256_bytes(data) != result.output_sha256:
                    raise UnsafeDownload(f"{name} is missing or has changed since it was published")
                z.writestr(name, data)
            captions = job.out_dir / CAPTIONS_NAME
            if captions.is_file():
                z.write(captions, CAPTIONS_NAME)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest
