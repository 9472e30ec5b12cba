"""Tiny faces in crowds: what standard's acceptance rule (the zoom-confirm filter) loses,
and what other rules for faces under 20 px would keep and cost.

Usage:
    .venv/bin/python bench/detection_tiny.py [EVAL_DIR] [--limit N]

For every photo with boxed faces under EVAL_DIR (default ``../shared/eval``), runs the
standard stage's upright passes once (2x second looks included) and merges their
candidates, then scores every candidate under 20 px with the zoomed second look. Each
rule below is then applied to the same candidates (faces of 20 px and more keep the
stage's own rule), and the table gives, per rule, the recall of faces under 20 px (and of
those 6-14 px wide, where standard lost most on unseen crowds), the faces under 20 px
that had a candidate the rule refused, and false detections per photo (boxes touching no
labelled face; the target is at most 1.5). Every photo is treated as tagged: the turned
passes are not the question here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from detection_recall import COVER, coverage, read_ground_truth  # noqa: E402

from pipeline.detection import (  # noqa: E402
    ACCEPT_SCORE,
    CANDIDATE_THRESHOLD,
    LARGE_FACE_PX,
    SMALL_FACE_PX,
    SMALL_SURE_SCORE,
    ZOOM_CONFIRM,
    DetectionStage,
    merge_detections,
)
from pipeline.detectors import Detection  # noqa: E402
from pipeline.loading import load_image  # noqa: E402
from pipeline.redaction import head_region  # noqa: E402

# A small candidate: its best score, its zoomed second look's score, how many passes saw it.
Rule = Callable[[float, float, int], bool]


def passes_of(d: Detection) -> int:
    return len({s for s in d.source.split(",")})


RULES: dict[str, Rule] = {
    f"standard: score >= {SMALL_SURE_SCORE} or zoom >= {ZOOM_CONFIRM}": lambda s, z, n: (
        s >= SMALL_SURE_SCORE or z >= ZOOM_CONFIRM
    ),
    "score >= 0.5 or zoom >= 0.3": lambda s, z, n: s >= SMALL_SURE_SCORE or z >= 0.3,
    "score >= 0.5 or zoom >= 0.2": lambda s, z, n: s >= SMALL_SURE_SCORE or z >= 0.2,
    "standard, or seen by 2+ passes from 0.3": lambda s, z, n: (
        s >= SMALL_SURE_SCORE or z >= ZOOM_CONFIRM or (n >= 2 and s >= 0.3)
    ),
    "standard, or seen by 2+ passes": lambda s, z, n: (
        s >= SMALL_SURE_SCORE or z >= ZOOM_CONFIRM or n >= 2
    ),
    "standard, or seen by 3 passes": lambda s, z, n: (
        s >= SMALL_SURE_SCORE or z >= ZOOM_CONFIRM or n >= 3
    ),
    "standard, or zoom >= 0.3 and 2+ passes": lambda s, z, n: (
        s >= SMALL_SURE_SCORE or z >= ZOOM_CONFIRM or (n >= 2 and z >= 0.3)
    ),
    "standard, or 2+ passes from 0.35": lambda s, z, n: (
        s >= SMALL_SURE_SCORE or z >= ZOOM_CONFIRM or (n >= 2 and s >= 0.35)
    ),
    "standard, or 2+ passes from 0.4": lambda s, z, n: (
        s >= SMALL_SURE_SCORE or z >= ZOOM_CONFIRM or (n >= 2 and s >= 0.4)
    ),
    "standard, or 2+ passes and zoom >= 0.2": lambda s, z, n: (
        s >= SMALL_SURE_SCORE or z >= ZOOM_CONFIRM or (n >= 2 and z >= 0.2)
    ),
    "standard, or 3 passes, or zoom >= 0.3": lambda s, z, n: (
        s >= SMALL_SURE_SCORE or z >= 0.3 or n >= 3
    ),
    "standard, or 3 passes, or 2+ passes from 0.35": lambda s, z, n: (
        s >= SMALL_SURE_SCORE or z >= ZOOM_CONFIRM or n >= 3 or (n >= 2 and s >= 0.35)
    ),
    "every candidate (no filter)": lambda s, z, n: True,
}


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
    hits = {r: [0, 0, 0] for r in RULES}  # under 20 px, 6-14 px, refused candidates
    false = dict.fromkeys(RULES, 0)
    n_small = n_tiny = 0
    for i, path in enumerate(paths):
        pixels = load_image(path).pixels
        h, w = pixels.shape[:2]
        merged = merge_detections(stage._candidates(pixels))
        # Faces of 20 px and more as standard accepts them (40 px and more from 0.2).
        large = [
            d
            for d in merged
            if (d.box.size >= LARGE_FACE_PX and d.score >= CANDIDATE_THRESHOLD)
            or (d.box.size >= SMALL_FACE_PX and d.score >= ACCEPT_SCORE)
        ]
        small = []
        for d in merged:
            if d.box.size < SMALL_FACE_PX:
                z = 1.0 if d.score >= SMALL_SURE_SCORE else stage._zoom.score(pixels, d.box)
                small.append((d, z, passes_of(d)))
        gts = truth[path]
        tiny = [g for g in gts if g.size < SMALL_FACE_PX]
        n_small += len(tiny)
        n_tiny += sum(1 for g in tiny if 6 <= g.size <= 14)
        for name, rule in RULES.items():
            kept = [d for d, z, n in small if rule(d.score, z, n)]
            refused = [d for d, z, n in small if not rule(d.score, z, n)]
            boxes = [d.box.clipped(w, h) for d in large + kept]
            regions = [head_region(b) for b in boxes]
            for g in tiny:
                if coverage(g, regions, (h, w)) >= COVER:
                    hits[name][0] += 1
                    hits[name][1] += 6 <= g.size <= 14
                elif any(d.box.iou(g) > 0.3 for d in refused):
                    hits[name][2] += 1
            false[name] += sum(1 for b in boxes if not any(b.intersection(g) for g in gts))
        print(f"{i + 1}/{len(paths)} {path.name}", file=sys.stderr)
    print(
        f"{len(paths)} photos, {n_small} faces under {SMALL_FACE_PX} px ({n_tiny} of 6-14 px), "
        f"{args.eval_dir}; upright passes, faces of {SMALL_FACE_PX} px and more as standard"
    )
    print(
        "| rule for candidates under 20 px | < 20 px | 6-14 px | missed with a refused "
        "candidate | false/photo |"
    )
    print("| --- | --- | --- | --- | --- |")
    for name in RULES:
        small_hits, tiny_hits, refused = hits[name]
        print(
            f"| {name} | {small_hits / n_small:.3f} | {tiny_hits / max(n_tiny, 1):.3f} | "
            f"{refused} | {false[name] / len(paths):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
