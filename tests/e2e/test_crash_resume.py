"""SIGKILL a real ``photoconsent publish`` mid-batch, run the same command again, and check
the batch is finished with the output folder and the audit log in agreement.

The kill comes from the process itself at an exact point of the Nth photo
(``PHOTOCONSENT_TEST_KILL=<point>:<N>``, read only by ``publishing.publish._test_hook``), so
the test is deterministic: ``written`` is after the temp file is written and checked,
``committed`` after the audit entry and journal row commit but before the rename,
``revealed`` after the rename. Tiny face-free photos and ``--thoroughness fast`` keep it
quick, but the real detector loads in each worker.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from consent import audit
from consent.store import open_store
from tests.support.environment import REPO

pytestmark = pytest.mark.slow  # each run loads the face detector in its workers

PHOTOS = 6


def command(data_dir: Path, card: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        str(REPO / "cli.py"),
        "--data-dir",
        str(data_dir),
        "publish",
        "--purpose",
        "website",
        "--event",
        "Sports day",
        "--thoroughness",
        "fast",
        "--workers",
        "2",
        "--out",
        str(out),
        str(card),
    ]


def run(data_dir: Path, card: Path, out: Path, kill: str | None) -> tuple[int, str]:
    """Exit status and stderr of one run. Output goes to a file, not a pipe, so a process
    left behind by the killed one could not hang the test (it is checked for below)."""
    env = {k: v for k, v in os.environ.items() if k != "PHOTOCONSENT_TEST_KILL"}
    env["PYTHONPATH"] = str(REPO)
    if kill:
        env["PHOTOCONSENT_TEST_KILL"] = kill
    log = data_dir.parent / "stderr.log"
    with open(log, "w") as err:
        proc = subprocess.run(
            command(data_dir, card, out),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            timeout=300,
        )
    return proc.returncode, log.read_text()


def leftover_workers(card: Path) -> list[str]:
    """Processes still running with this test's files open (orphaned workers)."""
    found = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            targets = [os.readlink(fd) for fd in fd_dir.iterdir()]
        except OSError:
            continue
        if any(str(card.parent) in t for t in targets):
            found.append(fd_dir.parent.name)
    return found


@pytest.fixture
def card(tmp_path: Path) -> Path:
    card = tmp_path / "card"
    card.mkdir()
    rng = np.random.default_rng(8)
    for i in range(PHOTOS):
        pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(card / f"IMG_{i:04d}.jpg", quality=90)
    return card


KILLS = {
    "before the first commit": ["written:1"],
    "between commit and rename": ["committed:3"],
    "after a rename": ["revealed:2"],
    "after the last photo, before the report": [f"revealed:{PHOTOS}"],
    "twice in a row": ["committed:2", "written:2"],
}


@pytest.mark.parametrize("kills", KILLS.values(), ids=KILLS.keys())
def test_a_killed_batch_finishes_with_outputs_and_audit_in_agreement(
    data_dir: Path, card: Path, tmp_path: Path, kills: list[str]
) -> None:
    out = tmp_path / "out"
    for kill in kills:
        code, stderr = run(data_dir, card, out, kill)
        assert code == -signal.SIGKILL, stderr
        # The killed publish's workers notice and end (they poll every half second).
        deadline = time.monotonic() + 10
        while leftover_workers(card) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert leftover_workers(card) == []

    code, stderr = run(data_dir, card, out, None)

    assert code == 0, stderr
    files = sorted(out.iterdir())
    # No temp file, lock or half-written report left, visible or hidden.
    assert [p.name for p in files if p.name.startswith(".")] == []
    outputs = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    report = json.loads(outputs.pop("report.json") and (out / "report.json").read_text())
    assert len(outputs) == PHOTOS
    with open_store(data_dir) as store:
        published = audit.entries(store, action="publish")
        assert audit.verify(store).ok
    # Every output has exactly one audit entry, with its hash; no entry without its file.
    audited = [(e.details["output"], e.details["output_sha256"]) for e in published]
    assert sorted(audited) == sorted(outputs.items())
    # Every input done once, in the report and the audit log.
    inputs = sorted(Path(e.details["input"]).name for e in published)
    assert inputs == [f"IMG_{i:04d}.jpg" for i in range(PHOTOS)]
    assert [p["status"] for p in report["photos"]] == ["published"] * PHOTOS
    assert sorted(Path(p["output"]).name for p in report["photos"]) == sorted(outputs)
    assert report["summary"]["published"] == PHOTOS
