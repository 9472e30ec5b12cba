"""Run test code in new Python processes: what a process imports or a cache keeps only
shows in a process that starts without them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def in_new_processes(
    code: str, env: Mapping[str, str], times: int = 2
) -> list[subprocess.CompletedProcess[str]]:
    """``code`` run in ``times`` new processes, one after another, with ``env`` on top of
    this one's and the repository on PYTHONPATH; each must succeed."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    runs = []
    for _ in range(times):
        run = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        runs.append(run)
    return runs
