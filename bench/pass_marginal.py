"""Per-pass marginal recall: which detection pass finds faces no other pass finds.

Usage:
    .venv/bin/python bench/pass_marginal.py [EVAL_DIR] [--limit N]

Runs every pass of the standard detection stage once per photo of every ``boxes.csv``
under EVAL_DIR (default ``../shared/eval``), keeps the raw candidates of each, and then
applies the stage's real merge and acceptance rule (zoomed second look included) to all
passes and to all passes but one. A pass's marginal recall is what the photo set loses
without it: the faces that only it finds (covered = 70% of the labelled box inside the
head regions the redactor would blur, as in bench/detection_recall.py). The turned
passes (run on photos without an orientation tag) are measured the same way, as an
addition to the upright passes. Every photo is treated as tagged for the upright rows,
so the figures say what each pass adds, not what a given photo would run.

The 2x pass is measured both ways: on the whole photo (``centerface@2x``, as it ran
before) and only around the 1x and mirrored passes' weak candidates (``centerface@2x
around candidates``, standard's default), with the share of the whole pass's input
pixels the second looks took.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from detection_recall import COVER, coverage, read_ground_truth  # noqa: E402

from pipeline.boxes import Box  # noqa: E402
from pipeline.detection import (  # noqa: E402
    CANDIDATE_THRESHOLD,
    UPSCALED_MAX_FACE_PX,
    WHOLE_SECOND_LOOK,
    DetectionStage,
    InRegions,
    merge_detections,
    second_look_regions,
)
from pipeline.detectors import Detection  # noqa: E402
from pipeline.loading import load_image  # noqa: E402
from pipeline.redaction import head_region  # noqa: E402

SMALL = 20  # px: the size bucket boundary of the targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", nargs="?", default=str(ROOT.parent / "shared" / "eval"))
    parser.add_argument("--limit", type=int, default=None, help="first N photos only")
    args = parser.parse_args()
    truth = read_ground_truth(Path(args.eval_dir))
    if not truth:
        print(f"no boxes.csv under {args.eval_dir}; nothing to measure", file=sys.stderr)
        return 1
    paths = sorted(truth)[: args.limit]
    stage = DetectionStage()
    zoom_score = stage._zoom.score  # the stage's own second look, remembered per box
    memo: dict[tuple[int, tuple[float, ...]], float] = {}

    def remembered(pixels: np.ndarray, box: Box) -> float:
        key = (id(pixels), tuple(round(v, 1) for v in (box.x, box.y, box.w, box.h)))
        if key not in memo:
            memo[key] = zoom_score(pixels, box)
        return memo[key]

    stage._zoom.score = remembered  # type: ignore[method-assign]

    names: list[str] = []
    covered: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    false: dict[str, int] = defaultdict(int)
    seconds: dict[str, float] = defaultdict(float)
    share: list[float] = []
    t_start = time.perf_counter()
    for path in paths:
        pixels = load_image(path).pixels
        memo.clear()  # keyed by the array's id, which the next photo may reuse
        h, w = pixels.shape[:2]
        passes = stage._small if max(h, w) * 2 <= stage.settings.max_side else stage._large
        raw: dict[str, list[Detection]] = {}
        regional = [p for p in passes if isinstance(p, InRegions)]
        for p in [*passes, *stage._turned]:
            t0 = time.perf_counter()
            raw[p.name] = p.detect(pixels)
            seconds[p.name] += time.perf_counter() - t0
            if p.name not in names:
                names.append(p.name)
        # The first passes report from the seed score; candidates start at the threshold.
        seeds = [
            d.box
            for p in passes
            if p not in regional
            for d in raw[p.name]
            if d.box.size <= UPSCALED_MAX_FACE_PX
        ]
        for n in raw:
            raw[n] = [d for d in raw[n] if d.score >= CANDIDATE_THRESHOLD]
        for p in regional:
            label = f"{p.name} around candidates"
            regions = second_look_regions(h, w, seeds)
            part = p.pixels_run(h, w, regions)
            if part > WHOLE_SECOND_LOOK:
                regions, part = None, 1.0
            share.append(part)
            t0 = time.perf_counter()
            raw[label] = p.detect(pixels, regions)
            seconds[label] += time.perf_counter() - t0
            if label not in names:
                names.append(label)
        upright = [p.name for p in passes]
        turned = [p.name for p in stage._turned]
        subsets = {"upright passes": upright, "upright + turned": upright + turned}
        subsets.update({f"upright without {n}": [m for m in upright if m != n] for n in upright})
        subsets.update({f"only {n}": [n] for n in upright})
        for p in regional:
            label = f"{p.name} around candidates"
            subsets[f"upright, {label}"] = [label if n == p.name else n for n in upright]
        for label, chosen in subsets.items():
            found = [d for n in chosen for d in raw[n]]
            faces = stage._accept(pixels, merge_detections(found))
            boxes = [d.box.clipped(w, h) for d in faces]
            regions = [head_region(b) for b in boxes]
            for gt in truth[path]:
                covered[label].append((coverage(gt, regions, (h, w)) >= COVER, gt.size))
            false[label] += sum(1 for b in boxes if not any(b.intersection(g) for g in truth[path]))
        print(
            f"{path.relative_to(args.eval_dir)}: {time.perf_counter() - t_start:.0f} s",
            file=sys.stderr,
        )

    def recall(label: str, small: bool) -> tuple[float, int]:
        hits = [ok for ok, size in covered[label] if (size < SMALL) == small]
        return (sum(hits) / len(hits) if hits else float("nan")), sum(hits)

    n_small = sum(1 for _, s in covered["upright passes"] if s < SMALL)
    n_large = len(covered["upright passes"]) - n_small
    print(f"{len(paths)} photos, {n_large} faces >= {SMALL} px, {n_small} under, {args.eval_dir}")
    print(f"| passes | >= {SMALL} px | < {SMALL} px | faces lost (- = gained) | false/photo |")
    print("| --- | --- | --- | --- | --- |")
    _, all_large = recall("upright passes", False)
    _, all_small = recall("upright passes", True)
    for label in covered:
        (rl, hl), (rs, hs) = recall(label, False), recall(label, True)
        lost = (all_large - hl) + (all_small - hs)
        print(f"| {label} | {rl:.3f} | {rs:.3f} | {lost:d} | {false[label] / len(paths):.2f} |")
    print("| pass | seconds (all photos) |")
    print("| --- | --- |")
    for n in names:
        print(f"| {n} | {seconds[n]:.1f} |")
    if share:
        print(
            f"2x around candidates: {np.mean(share):.3f} of the whole 2x input on average "
            f"(median {np.median(share):.3f}; {sum(s == 1.0 for s in share)} of {len(share)} "
            "photos ran whole)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
