"""How long an office's small publish takes from the command line, start-up included.

Usage:
    .venv/bin/python bench/cli_latency.py [--repeats 5] [--against TREE]

Sets up a data directory as ``make demo`` does (the sample registry, one enrolled pupil),
then times ``photoconsent publish --purpose website`` of ``sample_images/event`` (two
photos, one pupil kept) as a new process each time, start-up and worker pool included:
what a school office waits for. ``--against TREE`` times the same command with the code
of another source tree (a checkout of an earlier commit) in alternate rounds, and prints
the medians and the ratio. Nothing is asserted: timings belong in docs, not tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli(tree: Path, data: Path, settings: Path, *args: str) -> float:
    """Seconds for one ``cli.py`` run of ``tree``'s code; raises when it fails."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PHOTOCONSENT_CONFIG_DIR": str(settings)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(tree / "cli.py"), "--data-dir", str(data), *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{tree}: {' '.join(args[:1])}: {done.stderr.strip()[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--against", type=Path, metavar="TREE", help="an earlier checkout")
    args = parser.parse_args()
    samples = ROOT / "sample_images"
    trees = {"now": ROOT} | ({"against": args.against.resolve()} if args.against else {})
    with tempfile.TemporaryDirectory(prefix="photoconsent-cli-") as tmp:
        data, settings = Path(tmp) / "data", Path(tmp) / "settings"
        cli(ROOT, data, settings, "init")
        cli(ROOT, data, settings, "pupils", "import", str(samples / "pupils.csv"))
        cli(ROOT, data, settings, "enroll", "--folder", str(samples / "references"))
        times: dict[str, list[float]] = {k: [] for k in trees}
        for r in range(args.repeats):
            for name in list(trees) if r % 2 == 0 else list(trees)[::-1]:
                out = Path(tmp) / f"out-{name}-{r}"
                seconds = cli(
                    trees[name],
                    data,
                    settings,
                    "publish",
                    "--purpose",
                    "website",
                    "--event",
                    "Sports day",
                    "--out",
                    str(out),
                    str(samples / "event"),
                )
                times[name].append(seconds)
                print(f"round {r + 1} {name:8} {seconds:5.2f} s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"`publish` of sample_images/event (2 photos), a new process each, median of {args.repeats}"
    )
    for k, v in med.items():
        print(f"  {k}: {v:.2f} s")
    if "against" in med:
        print(f"  now / against: {med['now'] / med['against']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
