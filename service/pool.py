"""The service's analysis workers: processes that run the one keep-or-blur decider.

Face detection and matching are CPU-bound and the models are not shared safely between
threads, so the service used to analyse one upload at a time (issue 15: 20 concurrent
requests took 20 s at the median). Here each worker process holds its own models, loaded
once, and runs `publishing.decider.AnalysingDecider` on the decoded pixels the request
thread sends it: the decision is exactly the batch's. The pool is sized like publish's
(`publishing.workers.default_workers`: by usable cores and available memory); how many
requests may wait for it is bounded by `service.limits.Admission` in the guard. A worker
lends its face detector the cores of the idle workers (`publishing.workers.threads_for`,
counted over the uploads in hand): one upload alone uses every core.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.analysis import Gallery
from pipeline.detection import DetectionSettings, DetectionStage, opencv_threads
from pipeline.engines import set_thread_source
from pipeline.errors import PipelineError
from pipeline.loading import LoadedImage
from pipeline.matching import FaceDecision, MatchSettings
from publishing.decider import AnalysingDecider
from publishing.workers import LentThreads, usable_cores

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized


class AnalysisUnavailable(PipelineError):
    """The analysis did not finish in time, or its worker process died; nothing was decided."""


# This worker process's detection stage, made once (models load on first use).
_stages: dict[DetectionSettings, DetectionStage] = {}


def _stage(settings: DetectionSettings) -> DetectionStage:
    if settings not in _stages:
        _stages[settings] = DetectionStage(settings)
    return _stages[settings]


def _init_worker(detection: DetectionSettings, busy: Synchronized[int], workers: int) -> None:
    # One OpenCV thread per worker: the pool already uses every core it is given; the
    # face detector takes the idle workers' cores.
    opencv_threads(1)
    set_thread_source(LentThreads(busy, workers, usable_cores()))
    _stage(detection)


def _warm(detection: DetectionSettings) -> bool:
    import numpy as np

    from pipeline.recognisers import load_models

    _stage(detection).detect(np.full((64, 64, 3), 128, np.uint8))
    load_models()
    return True


def _decide(
    gallery: Gallery,
    detection: DetectionSettings,
    matching: MatchSettings,
    photo: Path,
    loaded: LoadedImage,
) -> list[FaceDecision]:
    decider = AnalysingDecider(gallery, detection, matching, stage=_stage(detection))
    return decider(photo, loaded)


class AnalysisPool:
    """``workers`` processes running `AnalysingDecider`; restarted if one dies."""

    def __init__(self, detection: DetectionSettings, workers: int) -> None:
        self.detection = detection
        self.workers = max(1, workers)
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._busy: Synchronized[int] | None = None  # uploads in the pool's hands

    def _pool(self) -> ProcessPoolExecutor:
        return self._pool_and_count()[0]

    def _pool_and_count(self) -> tuple[ProcessPoolExecutor, Synchronized[int]]:
        """The pool (started if need be) and its count of uploads in hand."""
        with self._lock:
            if self._executor is None:
                ctx = _context()
                self._busy = ctx.Value("i", 0)
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=ctx,
                    initializer=_init_worker,
                    initargs=(self.detection, self._busy, self.workers),
                )
            assert self._busy is not None
            return self._executor, self._busy

    def warm(self) -> None:
        """Start every worker and load its models now, so the first uploads do not wait."""
        futures = [self._pool().submit(_warm, self.detection) for _ in range(self.workers)]
        for f in futures:
            f.result(timeout=600)

    def decide(
        self,
        gallery: Gallery,
        matching: MatchSettings,
        photo: Path,
        loaded: LoadedImage,
        timeout: float,
    ) -> list[FaceDecision]:
        """The decisions for one photo, from a worker; `AnalysisUnavailable` after
        ``timeout`` seconds or if the worker died (the pool is then restarted)."""
        pool, busy = self._pool_and_count()
        try:
            future: Future[list[FaceDecision]] = pool.submit(
                _decide, gallery, self.detection, matching, photo, loaded
            )
            count_until_done(future, busy)
            return future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()
            raise AnalysisUnavailable(
                f"the face analysis took longer than {timeout:g} s; try again later"
            ) from None
        except BrokenProcessPool:
            self._restart(pool)
            raise AnalysisUnavailable(
                "the analysis worker stopped (out of memory?); try again"
            ) from None

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def count_until_done(future: Future[Any], busy: Synchronized[int]) -> None:
    """Count ``future`` in ``busy`` (the uploads in the pool's hands, which its workers
    read to lend idle cores) until it is done or cancelled."""
    with busy.get_lock():
        busy.value += 1

    def done(_: Future[Any]) -> None:
        with busy.get_lock():
            busy.value -= 1

    future.add_done_callback(done)


class PooledDecider:
    """A `publishing.decider.Decider` that runs the one decider in the pool. After a call
    that raised `AnalysisUnavailable`, ``failure`` holds it (publish turns any error into a
    withheld photo; the service answers 503 instead, as nothing was decided)."""

    def __init__(
        self, pool: AnalysisPool, gallery: Gallery, matching: MatchSettings, timeout: float
    ) -> None:
        self.pool, self.gallery, self.matching, self.timeout = pool, gallery, matching, timeout
        self.failure: AnalysisUnavailable | None = None

    def __call__(self, photo: Path, loaded: LoadedImage) -> list[FaceDecision]:
        try:
            return self.pool.decide(self.gallery, self.matching, photo, loaded, self.timeout)
        except AnalysisUnavailable as exc:
            self.failure = exc
            raise

    def __reduce__(self) -> Any:
        # publish would otherwise try to ship it to a pool of its own; it must run here.
        raise TypeError("a PooledDecider runs in the service process only")


def _context() -> multiprocessing.context.BaseContext:
    # Plain fork is unsafe once OpenCV or dlib threads run in the parent (see
    # publishing.workers); the fork server starts each worker from a clean process.
    if "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")
