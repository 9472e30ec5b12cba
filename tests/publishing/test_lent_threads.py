"""Idle cores lent at a batch's tail: while every worker has a photo, each runs its face
detector on one core; when fewer photos are left than workers, the busy ones take the idle
workers' cores (`publishing.workers.threads_for`), read before every inference."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from consent.registry import Purpose
from consent.store import Store
from pipeline import engines
from publishing.options import PublishOptions
from publishing.publish import publish
from publishing.workers import LentThreads, threads_for, usable_cores
from service.pool import count_until_done


@pytest.mark.parametrize(
    ("cores", "workers", "pending", "threads"),
    [
        (2, 2, 9, 1),  # a full queue: one core a worker
        (2, 2, 2, 1),
        (2, 2, 1, 2),  # the last photo gets both cores
        (2, 2, 0, 2),
        (4, 3, 3, 1),  # 4 // 3: the spare core is not split
        (4, 3, 2, 2),
        (4, 3, 1, 4),
        (8, 4, 3, 2),
        (2, 4, 9, 1),  # more workers than cores: still one thread each
        (1, 2, 1, 1),
    ],
)
def test_threads_for_shares_the_cores_among_the_busy_workers(
    cores: int, workers: int, pending: int, threads: int
) -> None:
    assert threads_for(cores, workers, pending) == threads


def test_lent_threads_reads_the_shared_count_on_every_call() -> None:
    pending = multiprocessing.get_context("spawn").Value("i", 3)
    lent = LentThreads(pending, workers=2, cores=2)
    assert lent() == 1
    pending.value = 1
    assert lent() == 2


def test_threads_now_clamps_the_source_to_this_computers_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engines.os, "cpu_count", lambda: 4)
    try:
        engines.set_thread_source(lambda: 0)
        assert engines.threads_now(3) == 1
        engines.set_thread_source(lambda: 64)
        assert engines.threads_now(3) == 4
        engines.set_thread_source(lambda: 2)
        assert engines.threads_now(3) == 2
    finally:
        engines.set_thread_source(None)
    assert engines.threads_now(3) == 3


def _wait_for(condition, seconds: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def threads_seen(path: Path, loaded: object) -> list:
    """No faces. The photo named "slow" records the threads it may use at its start and
    once the other photo is done; "fast" finishes only after "slow" has started, so both
    were in hand at once."""
    record = path.parent / f"{path.stem}.threads"
    if path.stem == "slow":
        first = engines.threads_now(1)
        record.write_text(f"{first}", encoding="ascii")
        _wait_for(lambda: (path.parent / "fast.threads").exists())
        _wait_for(lambda: engines.threads_now(1) > first, seconds=20)
        record.write_text(f"{first} {engines.threads_now(1)}", encoding="ascii")
    else:
        _wait_for(lambda: (path.parent / "slow.threads").exists())
        record.write_text(f"{engines.threads_now(1)}", encoding="ascii")
    return []


def test_the_last_photo_of_a_batch_gets_the_idle_workers_cores(
    store: Store, tmp_path: Path
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    for name in ("slow", "fast"):
        Image.fromarray(np.full((16, 24, 3), 90, np.uint8)).save(card / f"{name}.png")
    opts = PublishOptions(
        purpose=Purpose.WEBSITE, out_dir=tmp_path / "out", operator="office", workers=2
    )

    report = publish(store, [card], opts, decider=threads_seen)

    assert len(report.published) == 2 and not report.withheld
    cores = usable_cores()
    one_each = threads_for(cores, 2, 2)
    assert (card / "fast.threads").read_text(encoding="ascii") == f"{one_each}"
    assert (card / "slow.threads").read_text(encoding="ascii") == f"{one_each} {cores}"


def test_the_service_pool_counts_an_upload_until_it_is_done() -> None:
    busy = multiprocessing.get_context("spawn").Value("i", 0)
    first, second = Future(), Future()
    count_until_done(first, busy)
    count_until_done(second, busy)
    assert busy.value == 2
    first.set_result([])
    assert busy.value == 1
    second.cancel()
    assert busy.value == 0
