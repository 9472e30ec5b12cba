"""What each detection pass costs on a 12 MP photo: seconds per pass, the acceptance rule
(zoomed second looks) and peak memory, on a crowd photo and on a photo with no faces.

Usage:
    .venv/bin/python bench/detection_cost.py [EVAL_DIR] [--size 4000x3000] [--profile]

Makes one crowd photo and one photo without faces exactly as ``bench/throughput.py`` does
(from ``../shared/eval``, in a temporary folder), then in a fresh single-threaded process
per photo (OpenCV at 1 thread, as in a publish worker) times every pass of the standard
setting, the merge and acceptance (where the zoomed second looks run), and the turned
passes an untagged photo would add, and reads the process's peak memory (VmHWM).
``--profile`` also prints the top of a cProfile of one whole ``DetectionStage.detect``.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import pstats
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def measure(path: Path, profile: bool) -> list[str]:
    """Runs in its own process so that its peak memory is this photo's alone."""
    from pipeline.detection import (
        DetectionStage,
        build_passes,
        build_turned_passes,
        merge_detections,
        opencv_threads,
    )
    from pipeline.loading import load_image
    from publishing.workers import peak_rss_mb

    opencv_threads(1)
    pixels = load_image(path).pixels
    stage = DetectionStage()
    h, w = pixels.shape[:2]
    small = max(h, w) * 2 <= stage.settings.max_side
    lines = [f"{path.parent.name}: {w}x{h}, after decode {peak_rss_mb():.0f} MiB peak"]
    found = []
    for p in build_passes(stage.settings, small_image=small):
        t0 = time.perf_counter()
        dets = p.detect(pixels)
        lines.append(f"  {p.name:28} {time.perf_counter() - t0:6.2f} s  {len(dets):4d} boxes")
        found += dets
    t0 = time.perf_counter()
    merged = merge_detections(found)
    accepted = stage._accept(pixels, merged)
    lines.append(
        f"  {'merge + accept (zoom checks)':28} {time.perf_counter() - t0:6.2f} s  "
        f"{len(merged)} merged, {len(accepted)} accepted"
    )
    for p in build_turned_passes(stage.settings):
        t0 = time.perf_counter()
        dets = p.detect(pixels)
        lines.append(f"  {p.name + ' (untagged)':28} {time.perf_counter() - t0:6.2f} s")
    t0 = time.perf_counter()
    stage.detect(pixels)
    lines.append(f"  {'whole stage, tagged':28} {time.perf_counter() - t0:6.2f} s")
    if profile:
        prof = cProfile.Profile()
        prof.runcall(stage.detect, pixels)
        stats = pstats.Stats(prof).sort_stats("cumulative")
        import io

        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.print_stats(15)
        lines.append(out.getvalue())
    lines.append(f"  peak memory (VmHWM) {peak_rss_mb():.0f} MiB")
    return lines


def main() -> int:
    from throughput import generate

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("eval_dir", nargs="?", default=str(ROOT.parent / "shared" / "eval"))
    parser.add_argument("--size", default="4000x3000", help="width x height (default 12 MP)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    args = parser.parse_args()
    eval_dir = Path(args.eval_dir)
    if not (eval_dir / "MANIFEST.md").is_file():
        print(f"evaluation photos not found at {eval_dir}; skipping", file=sys.stderr)
        return 0
    size = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="photoconsent-cost-") as tmp:
        sets = generate(eval_dir, Path(tmp), 1, size)  # type: ignore[arg-type]
        for folder in sets.values():
            photo = next(folder.iterdir())
            spawn = multiprocessing.get_context("spawn")  # no inherited OpenCV threads
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                print("\n".join(pool.submit(measure, photo, args.profile).result()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
