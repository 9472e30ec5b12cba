"""Publish with its worker pool started by ``spawn``, as on Windows and macOS.

Under spawn a worker is a fresh interpreter that imports everything it needs and receives
the job pickled, so anything that only works after a fork (a module-level global set by
the parent, an unpicklable option) breaks here first. The decider records which process
ran it, proving the photos were processed in spawned workers and not in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from consent import audit
from consent.registry import Purpose
from consent.store import Store
from publishing import workers
from publishing.options import PublishOptions
from publishing.publish import publish

PIDS_ENV = "PHOTOCONSENT_TEST_PIDS"


def recording_no_faces(path: Path, loaded: object) -> list:
    """No faces; writes "<pid> <parent pid>" to a file in $PHOTOCONSENT_TEST_PIDS."""
    parent = multiprocessing.parent_process()
    folder = Path(os.environ[PIDS_ENV])
    (folder / f"{path.stem}.pid").write_text(
        f"{os.getpid()} {parent.pid if parent else 0}", encoding="ascii"
    )
    return []


def test_publish_runs_in_spawned_workers(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    for i in range(4):
        pixels = np.full((16, 24, 3), 30 * i, np.uint8)
        Image.fromarray(pixels).save(card / f"IMG_{i:04d}.png", "PNG")
    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv(PIDS_ENV, str(pids))
    monkeypatch.setenv(workers.START_METHOD_ENV, "spawn")
    opts = PublishOptions(
        purpose=Purpose.WEBSITE, out_dir=tmp_path / "out", operator="office", workers=2
    )

    report = publish(store, [card], opts, decider=recording_no_faces)

    assert len(report.published) == 4 and not report.withheld
    assert len(audit.entries(store, action="publish")) == 4
    assert len(list(opts.out_dir.glob("*.jpg"))) == 4
    seen = [p.read_text(encoding="ascii").split() for p in sorted(pids.iterdir())]
    assert len(seen) == 4
    # Every photo ran in a worker, and a spawned one: its parent is this process itself
    # (a fork server's worker has the fork server for parent).
    assert all(int(pid) != os.getpid() and int(parent) == os.getpid() for pid, parent in seen)
