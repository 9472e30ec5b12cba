"""The per-photo work of a publish (load, decide, redact, encode) and the process pool.

`publish` hands its photos to a `PhotoMapper`: this computer's process pool
(`LocalPool`, the default) or a Dask cluster (`publishing.cluster.DaskCluster`). Both
take a `PhotoWork` and the photos and yield one `Processed` per photo, in input order.

Workers only compute: each returns the encoded bytes and the face decisions of one photo.
The parent alone writes files, the journal and the audit log (SQLite wants one writer),
taking results strictly in input order so output names are handed out deterministically.
Models load once per worker (lazily, on its first photo) and OpenCV runs one thread per
worker, so N workers use N cores without fighting over them. At a batch's tail, when
fewer photos are left than workers, the workers still busy lend the idle cores to their
face detector (`threads_for`): one crowd photo left alone at the end no longer runs on one
core while the others wait.
"""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pipeline.analysis import Gallery, blurred, kept
from pipeline.boxes import Box
from pipeline.detection import opencv_threads
from pipeline.engines import set_thread_source
from pipeline.errors import PipelineError
from pipeline.formats.embedded import embedded_caption
from pipeline.loading import LoadedImage, decode_image, read_photo_bytes
from pipeline.matching import FaceDecision
from pipeline.redaction import redact_faces
from pipeline.writing import encode_clean, sha256_bytes
from publishing.decider import AnalysingDecider

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized

    from publishing.decider import Decider
    from publishing.options import PublishOptions

# Photos queued per worker: enough to keep every core busy, few enough that finished
# results (a few MB of JPEG each) do not pile up in the parent.
QUEUE_PER_WORKER = 2


@dataclass
class Processed:
    """One photo's outcome from a worker: ``data`` to publish, or ``error`` (the reason
    to withhold it). ``peak_rss_mb`` is the worker's peak resident memory so far.
    ``embedded_caption`` is the caption the file itself carries (IPTC/XMP/EXIF/PNG text),
    read from the same bytes as the pixels, for the parent to rewrite; never published."""

    input_sha256: str | None = None
    faces: list[FaceDecision] = field(default_factory=list)
    data: bytes | None = None
    output_sha256: str | None = None
    error: str | None = None
    peak_rss_mb: float = 0.0
    embedded_caption: str | None = None


def usable_cores() -> int:
    """The cores this process may run on (respects taskset/cgroup CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# Measured peak of one worker on a 12 or 24 MP photo (docs/throughput.md), with headroom.
WORKER_MEMORY_MB = 1600


def default_workers() -> int:
    """One worker per usable core, but no more than the available memory holds (each
    peaks near 1.1 GB on a 12 or 24 MP photo, see docs/throughput.md); at least one."""
    cores = usable_cores()
    available = _mem_available_mb()
    if available is None:
        return cores
    return max(1, min(cores, int(available // WORKER_MEMORY_MB)))


def _mem_available_mb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MiB, 0.0 where /proc is absent."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def withheld_reason(exc: BaseException) -> str:
    """The reason shown for a photo that failed with ``exc``."""
    if isinstance(exc, PipelineError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "not enough memory to process this photo; use fewer --workers"
    if isinstance(exc, OSError):
        return f"could not read or write a file: {exc.strerror or exc}"
    # Anything unexpected is a bug; keep the type so the report is actionable.
    last = traceback.extract_tb(exc.__traceback__)[-1:]
    where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
    return f"internal error {type(exc).__name__}{where}: {exc}"


class PhotoWork:
    """Everything one process needs to turn a photo into publishable bytes."""

    def __init__(self, options: PublishOptions, gallery: Gallery, decider: Decider | None) -> None:
        self.options = options
        self.gallery = gallery
        # Publish's own analysis runs on the photo at its published size; a decider the
        # caller gives (a review's boxes, the web service's pool) decides on the photo as
        # loaded, and its boxes are scaled to the published size.
        self.own_analysis = decider is None
        self.decide: Decider = decider or AnalysingDecider(
            gallery, options.detection, options.matching
        )

    def process(self, photo: Path, data: bytes | None = None) -> Processed:
        """``photo``'s outcome; ``data`` is its bytes when the caller read them (a cluster
        worker gets them with the task), else they are read from ``photo``."""
        out = Processed()
        try:
            if data is None:
                data = read_photo_bytes(photo)
            if self.options.embedded_captions:
                out.embedded_caption = embedded_caption(data)
            loaded = decode_image(data, photo.name)
            del data
            out.input_sha256 = loaded.sha256
            side = self.options.output_max_side
            if self.own_analysis:
                loaded = reduced(loaded, side)
                out.faces = self.decide(photo, loaded)
            else:
                out.faces = self.decide(photo, loaded)
                (w0, h0), loaded = loaded.size, reduced(loaded, side)
                fx, fy = loaded.size[0] / w0, loaded.size[1] / h0
                out.faces = [dataclasses.replace(f, box=_scaled(f.box, fx, fy)) for f in out.faces]
            hidden, shown = [f.box for f in blurred(out.faces)], [f.box for f in kept(out.faces)]
            safe = redact_faces(loaded.pixels, hidden, shown, self.options.style)
            del loaded  # the full-size decode is not needed once redacted
            out.data = encode_clean(safe, self.options.output_format)
            out.output_sha256 = sha256_bytes(out.data)
        except Exception as exc:  # fail closed: any failure withholds this photo
            out.data, out.output_sha256, out.error = None, None, withheld_reason(exc)
        out.peak_rss_mb = peak_rss_mb()
        return out


def reduced(loaded: LoadedImage, max_side: int | None) -> LoadedImage:
    """``loaded`` with its long side reduced to ``max_side`` (area-averaged, as a
    photo is scaled for the web); unchanged when None or already that small. The input's
    hash stays the original file's."""
    w, h = loaded.size
    if max_side is None or max(w, h) <= max_side:
        return loaded
    import cv2

    f = max_side / max(w, h)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    pixels = cv2.resize(loaded.pixels, size, interpolation=cv2.INTER_AREA)
    return dataclasses.replace(loaded, pixels=np.ascontiguousarray(pixels), size=size)


def _scaled(box: Box, fx: float, fy: float) -> Box:
    return Box(box.x * fx, box.y * fy, box.w * fx, box.h * fy)


START_METHOD_ENV = "PHOTOCONSENT_START_METHOD"

# The work object of this worker process (set by _init_worker in each worker).
_work: PhotoWork | None = None


# Photos of this worker's pool not finished yet (shared by the pool; see threads_for).
_pending: Synchronized[int] | None = None


def threads_for(cores: int, workers: int, pending: int) -> int:
    """Face-detector threads for a worker's next pass: the ``cores`` shared among the
    workers that still have a photo to finish (``pending`` photos for ``workers``
    workers), at least one each. Full queue: one core a worker; at the tail, the idle
    workers' cores go to the busy ones (two workers, one photo left: two threads)."""
    busy = max(1, min(workers, pending))
    return max(1, cores // busy)


class LentThreads:
    """A thread source for `pipeline.engines.set_thread_source`: `threads_for` this
    pool's shared count of photos not yet finished."""

    def __init__(self, pending: Synchronized[int], workers: int, cores: int) -> None:
        self.pending, self.workers, self.cores = pending, workers, cores

    def __call__(self) -> int:
        return threads_for(self.cores, self.workers, self.pending.value)


def _init_worker(work: PhotoWork, publisher: int, pending: Synchronized[int], workers: int) -> None:
    global _work, _pending
    _work, _pending = work, pending
    _die_with(publisher)
    # One OpenCV thread per worker: the pool already uses every core. The face detector
    # (onnxruntime) takes the idle workers' cores at the batch's tail.
    opencv_threads(1)
    set_thread_source(LentThreads(pending, workers, usable_cores()))


def _die_with(publisher: int) -> None:
    """End this worker when the publishing process ``publisher`` dies, even by SIGKILL,
    so a killed publish leaves no orphans burning the school PC's cores (nor holding its
    terminal open). A worker's parent is the fork server, not the publisher, so the
    kernel's parent-death signal cannot do it: a thread watches instead."""
    # Ctrl-C goes to the whole process group; the parent decides what happens.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid == publisher:
        # Started by spawn (Windows, macOS): the parent is the publisher, and waiting on
        # its sentinel works on every system (os.kill(pid, 0) would end it on Windows).
        def watch() -> None:
            parent.join()
            os._exit(1)

    else:

        def watch() -> None:
            while _alive(publisher):
                time.sleep(0.5)
            os._exit(1)

    threading.Thread(target=watch, name="watch-publisher", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped, counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _process_in_worker(photo: Path) -> Processed:
    assert _work is not None and _pending is not None, "worker not initialised"
    try:
        return _work.process(photo)
    finally:
        with _pending.get_lock():
            _pending.value -= 1


def process_all(work: PhotoWork, photos: Sequence[Path], workers: int) -> Iterator[Processed]:
    """Process ``photos`` and yield their outcomes in input order.

    ``workers`` 1 runs in this process. More start a pool of that many processes from a
    fork server (plain fork is unsafe once OpenCV or dlib have started their threads in
    this process: the copies can deadlock); a worker that dies (killed by the
    out-of-memory killer, say) withholds the photos it had in hand and the pool is
    restarted for the rest. A decider that cannot be pickled (a closure, such as a
    review's) runs in this process.
    """
    if workers <= 1 or len(photos) <= 1 or not _picklable(work):
        for photo in photos:
            yield work.process(photo)
        return
    todo = collections.deque(photos)
    while todo:
        ctx, size = _context(), min(workers, len(todo))
        pending = ctx.Value("i", len(todo))  # counted down by the workers
        pool = ProcessPoolExecutor(
            max_workers=size,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(work, os.getpid(), pending, size),
        )
        in_flight: collections.deque[Future[Processed]] = collections.deque()
        broken = False
        try:
            while todo or in_flight:
                while todo and len(in_flight) < workers * QUEUE_PER_WORKER and not broken:
                    in_flight.append(pool.submit(_process_in_worker, todo.popleft()))
                if not in_flight:
                    break
                try:
                    yield in_flight.popleft().result()
                except BrokenProcessPool:
                    broken = True
                    yield Processed(
                        error="the worker process died while processing this photo "
                        "(out of memory?); run the same command again, or use fewer --workers"
                    )
            if broken:
                continue
        finally:
            for f in in_flight:
                f.cancel()
            pool.shutdown(wait=not broken, cancel_futures=True)


class PhotoMapper(Protocol):
    """Where a batch's per-photo work runs: `map` yields one `Processed` per photo, in
    the order of ``photos``, whatever order they finish in; `describe` is what the audit
    records of it beside the detection settings (nothing for this computer's pool)."""

    def map(self, work: PhotoWork, photos: Sequence[Path]) -> Iterator[Processed]: ...

    def describe(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class LocalPool:
    """This computer's cores: `process_all` with ``workers`` processes (None: one per
    usable core, as many as free memory allows, see `default_workers`)."""

    workers: int | None = None

    def map(self, work: PhotoWork, photos: Sequence[Path]) -> Iterator[Processed]:
        return process_all(work, photos, self.workers or default_workers())

    def describe(self) -> dict[str, object]:
        return {}


def _picklable(work: PhotoWork) -> bool:
    try:
        pickle.dumps(work)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def _context() -> multiprocessing.context.BaseContext:
    """The fork server where the system has one, else spawn (Windows; macOS may also
    lack it). ``$PHOTOCONSENT_START_METHOD=spawn`` forces spawn, to try what Windows does
    on Linux (tests/publishing/test_spawn.py)."""
    forced = os.environ.get(START_METHOD_ENV)
    if forced == "spawn" or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # The fork server imports the pipeline once; each worker then starts from that copy.
    ctx.set_forkserver_preload(["publishing.workers"])
    return ctx
