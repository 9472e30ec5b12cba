"""How strongly the plain pass responds near the faces other passes find: the margin of a
"look only around the plain pass's candidates" rule.

Usage:
    .venv/bin/python bench/detection_seeds.py [EVAL_DIR] [--turn 90]

For every photo of every ``boxes.csv`` under EVAL_DIR (default ``../shared/eval``) it
runs the plain 1x CenterFace pass with every heatmap box from 0.01, the mirrored pass
(from 0.2, standard's candidate threshold) and the three turned passes (from 0.5, the
score a face seen only turned must reach; at standard's half of ``max_side``). For each
box of those passes that lands on a labelled face (IoU 0.3 with it) it finds the best
plain box whose centre lies within ``c`` times the box's size of the box's centre
(at least 16 px), for c = 0.5, 1, 1.5 and 3, and prints the quantiles of that score and
how many boxes had none from 0.05 or 0.1 (standard's seed score). A pass can be run only
around the plain pass's candidates when every such box has a plain box above the seed
score within the region's reach.

``--turn 90`` turns every photo (and its boxes) first, as a phone photo stored sideways
without an orientation tag: the case the turned passes are there for.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from detection_recall import read_ground_truth, turned  # noqa: E402

from pipeline.detection import CANDIDATE_THRESHOLD, TURNED_ONLY_SCORE  # noqa: E402
from pipeline.detectors import CenterFace, Flipped, Rotated  # noqa: E402
from pipeline.loading import load_image  # noqa: E402

REACHES = (0.5, 1.0, 1.5, 3.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", nargs="?", default=str(ROOT.parent / "shared" / "eval"))
    parser.add_argument("--turn", type=int, choices=[0, 90, 180, 270], default=0)
    args = parser.parse_args()
    truth = read_ground_truth(Path(args.eval_dir))
    if not truth:
        print(f"no boxes.csv under {args.eval_dir}; nothing to measure", file=sys.stderr)
        return 1
    images = {p: load_image(p).pixels for p in truth}
    if args.turn:
        truth, images = turned(truth, images, args.turn // 90)
    plain = CenterFace(threshold=0.01)
    passes = {"mirrored": (Flipped(CenterFace(threshold=CANDIDATE_THRESHOLD)))}
    for k in (1, 2, 3):
        passes[f"turned {90 * k}"] = Rotated(
            CenterFace(threshold=TURNED_ONLY_SCORE, max_side=2048), k
        )
    near: dict[tuple[str, float], list[float]] = {}
    for p, faces in sorted(truth.items()):
        px = images[p]
        seeds = plain.detect(px)
        centres = np.array([d.box.center for d in seeds]).reshape(-1, 2)
        scores = np.array([d.score for d in seeds])
        for name, det in passes.items():
            for d in det.detect(px):
                if max(d.box.iou(g) for g in faces) < 0.3:
                    continue
                cx, cy = d.box.center
                for c in REACHES:
                    r = max(16.0, c * d.box.size)
                    hit = (np.abs(centres[:, 0] - cx) <= r) & (np.abs(centres[:, 1] - cy) <= r)
                    near.setdefault((name, c), []).append(
                        float(scores[hit].max()) if hit.any() else 0.0
                    )
    turn = f", every photo turned {args.turn} degrees" if args.turn else ""
    print(f"{len(images)} photos under {args.eval_dir}{turn}")
    print(
        "| pass | reach (sizes) | boxes on faces | best plain score nearby: min | 1% | 5% "
        "| median | none from 0.05 | none from 0.1 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (name, c), values in near.items():
        v = np.array(values)
        q = np.quantile(v, [0, 0.01, 0.05, 0.5])
        print(
            f"| {name} | {c:g} | {len(v)} | {q[0]:.3f} | {q[1]:.3f} | {q[2]:.3f} | {q[3]:.3f} "
            f"| {int((v < 0.05).sum())} | {int((v < 0.1).sum())} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
