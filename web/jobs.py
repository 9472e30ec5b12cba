"""Publish jobs run in a background thread, so the page can show live progress.

A job owns a private folder in the app's work area: ``in/`` for uploaded photos (kept, so
a later takedown can republish from the originals) and ``out/`` for the published copies,
``report.json`` and ``captions.csv``. The thread opens its own store (SQLite connections
stay in their thread) and calls `publishing.publish.publish`, which audits every photo
under the signed-in person.
"""

from __future__ import annotations

import secrets
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from consent.errors import ConsentError
from consent.store import Store, open_store
from pipeline.errors import PipelineError
from publishing.options import PublishOptions
from publishing.publish import publish
from publishing.report import CAPTIONS_NAME, PhotoResult, PhotoStatus, PublishReport
from publishing.review.batch import ReviewBatch


@dataclass
class PublishJob:
    job_id: str
    owner: str
    folder: Path
    inputs: list[Path]
    options: PublishOptions
    total: int = 0
    done: int = 0
    finished: bool = False
    error: str | None = None
    report: PublishReport | None = None
    review_batch: str | None = None  # set when the job analysed photos for review
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def out_dir(self) -> Path:
        return self.options.out_dir

    def words(self) -> str:
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

    def result(self, index: int) -> PhotoResult:
        assert self.report is not None
        return self.report.results[index]

    def published_files(self) -> list[Path]:
        """The published copies (in ``out/``), in input order."""
        if self.report is None:
            return []
        return [
            self.out_dir / Path(r.output).name
            for r in self.report.results
            if r.status is PhotoStatus.PUBLISHED and r.output
        ]


def new_job_folder(work: Path) -> tuple[str, Path]:
    job_id = secrets.token_hex(8)
    folder = work / "publish" / job_id
    (folder / "in").mkdir(parents=True, mode=0o700)
    return job_id, folder


# What a job runs: given the thread's own store and a progress callback, a publish
# report, or the review batch it saved (then the page goes on to the review screen).
Work = Callable[[Store, Callable[[int, int, object], None]], "PublishReport | ReviewBatch"]


def run_publish(job: PublishJob) -> Work:
    return lambda store, progress: publish(store, job.inputs, job.options, progress=progress)


def start(job: PublishJob, data_dir: Path, work: Work) -> threading.Thread:
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
        finally:
            with job.lock:
                job.finished = True

    thread = threading.Thread(target=run, name=f"publish-{job.job_id}", daemon=True)
    thread.start()
    return thread


def write_upload_zip(job: PublishJob, dest: Path) -> Path:
    """The zip to upload: the published photos and, if any, ``captions.csv``; never
    ``report.json`` (it names the input files and every face's decision)."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as z:
        for path in job.published_files():
            z.write(path, path.name)
        captions = job.out_dir / CAPTIONS_NAME
        if captions.is_file():
            z.write(captions, CAPTIONS_NAME)
    return dest
