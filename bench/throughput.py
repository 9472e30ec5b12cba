"""Publish throughput on 12 MP photos against the decode+encode floor and deface's baseline.

Usage:
    .venv/bin/python bench/throughput.py [EVAL_DIR] [--photos 4] [--repeats 3] [--workers N]

Generates realistic 12 MP (4000x3000) JPEGs in a temporary folder from ``../shared/eval``:
crowd photos (WIDER FACE crowds and dlib group photos scaled up), some stored sideways
with EXIF orientation 6 as phones do, and photos with no faces (dlib's dogs photo and a
noisy gradient). Then, interleaved round by round so the noise of a shared machine hits
all three alike, it times on each set with the same number of worker processes:

* floor: only decode (``load_image``) and re-encode (``encode_clean``): no pipeline can
  beat it;
* deface: deface's own CenterFace class at its defaults (backend "auto", which is
  onnxruntime on deface's graph when onnx and onnxruntime are installed, as here; full
  image, threshold 0.2) and its blur of every box found, plus the same decode and encode,
  one photo after another in one process as its CLI runs them (a peer that does less: one
  pass, no matching, no audit). deface's CLI itself does not start in this venv (deface
  is installed without its dependencies: tqdm, imageio, imageio-ffmpeg), hence its class;
* photoconsent: ``publish`` end to end (standard thoroughness, audit, checked writes), for
  the website (published, and detected, at the purpose's 2560 px) and at full size
  (``max_side=FULL_SIZE``, as for the press).

``--against TREE`` also times ``publish`` at the defaults (website and full size) with the
code of another source tree, a checkout of an earlier commit (``git worktree add``), in a
process of its own, in the same rounds: a change measured against what it replaced.
``--before`` also times the detection defaults before issue 18's fourth round (``BEFORE``:
photos over 2048 px searched at full size, not coarse first), in the same rounds.
``--web`` adds a third set, the 26 web photos of ``widerface_school/`` as they are (about
1024 px wide, no orientation tag), for the target "1024 px photos: at most deface's time"
(their full size is the website's size, so only the website contenders run on them).
Prints medians in photos per second, the ratios (targets: photoconsent <= 0.5x deface's
time on 12 MP crowds and faceless photos, <= 4x the floor on faceless photos), each
worker's peak memory (VmHWM), and
the peak per worker for a batch of 24 MP photos (target < 1.5 GB). Skips cleanly when
EVAL_DIR is absent. The folder's photos are only read; nothing derived from them is kept.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consent.registry import Purpose  # noqa: E402
from consent.store import init_data_dir, open_store  # noqa: E402
from pipeline.detection import DetectionSettings  # noqa: E402
from pipeline.loading import load_image  # noqa: E402
from pipeline.writing import OutputFormat, encode_clean  # noqa: E402
from publishing.options import FULL_SIZE, PublishOptions  # noqa: E402
from publishing.publish import publish  # noqa: E402
from publishing.workers import peak_rss_mb, usable_cores  # noqa: E402

CROWDS = [
    "widerface_dsfd/*.jpg",
    "dlib/2008_001009.jpg",
    "dlib/2009_004587.jpg",
    "dlib/2008_002506.jpg",
]
NO_FACES = "dlib/dogs.jpg"


def make_photo(source: np.ndarray, size: tuple[int, int], dest: Path, portrait: bool) -> None:
    """Scale ``source`` to cover ``size`` (width, height), add sensor-like noise so the JPEG
    is as large as a camera's, and save it; a portrait one is stored sideways, tagged 6."""
    im = Image.fromarray(source)
    w, h = size
    f = max(w / im.width, h / im.height)
    im = im.resize((round(im.width * f), round(im.height * f)), Image.Resampling.BICUBIC)
    left, top = (im.width - w) // 2, (im.height - h) // 2
    im = im.crop((left, top, left + w, top + h))
    pixels = np.asarray(im).astype(np.int16)
    # Seeded by the file name's CRC: str.__hash__ changes from one process to the next,
    # so the benchmark's photos (and their faint false seeds) differed between runs.
    noise = np.random.default_rng(zlib.crc32(dest.name.encode())).normal(0, 3, pixels.shape)
    im = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 1
    if portrait:
        # Upright portrait = this image turned; stored turned back, as a phone stores it.
        im = im.transpose(Image.Transpose.ROTATE_90)
        exif[0x0112] = 6
    im.save(dest, "JPEG", quality=92, exif=exif.tobytes())


WEB = "widerface_school/*.jpg"


def web_set(eval_dir: Path, folder: Path) -> Path:
    """The web photos as they are (about 1024 px wide, no orientation tag, as a website
    serves them), copied into ``folder`` so that publish sees only photos."""
    import shutil

    folder.mkdir(parents=True)
    for p in sorted(eval_dir.glob(WEB)):
        shutil.copyfile(p, folder / p.name)
    return folder


def generate(eval_dir: Path, folder: Path, n: int, size: tuple[int, int]) -> dict[str, Path]:
    crowds = sorted(p for pattern in CROWDS for p in eval_dir.glob(pattern))
    if not crowds or not (eval_dir / NO_FACES).is_file():
        raise FileNotFoundError("crowd or no-face photos missing")
    sets = {"crowd": folder / "crowd", "no faces": folder / "nofaces"}
    for d in sets.values():
        d.mkdir(parents=True)
    dogs = np.asarray(Image.open(eval_dir / NO_FACES).convert("RGB"))
    yy, xx = np.mgrid[0:750, 0:1000]
    gradient = np.stack([xx * 255 // 1000, yy * 255 // 750, (xx + yy) * 255 // 1750], -1)
    plain = [dogs, gradient.astype(np.uint8)]
    for i in range(n):
        crowd = np.asarray(Image.open(crowds[i % len(crowds)]).convert("RGB"))
        make_photo(crowd, size, sets["crowd"] / f"IMG_{i:04d}.jpg", portrait=i % 3 == 2)
        make_photo(plain[i % 2], size, sets["no faces"] / f"IMG_{i:04d}.jpg", i % 3 == 2)
    return sets


# --- the three contenders, each over a pool of the same number of workers ------------------


def _floor_one(path: Path) -> float:
    encode_clean(load_image(path).pixels, OutputFormat.JPEG)
    return peak_rss_mb()


_deface = None


def _deface_one(path: Path) -> float:
    """What `deface` does per image: CenterFace on the full image at 0.2, blur each box
    (its default "blur" mode, mask scale 1.3, ellipse), encode."""
    import cv2
    from deface.centerface import CenterFace

    global _deface
    if _deface is None:
        _deface = CenterFace()  # deface's default backend ("auto")
    pixels = load_image(path).pixels
    if not pixels.flags.writeable:  # deface's imageio decode hands it a writable array
        pixels = pixels.copy()
    dets, _ = _deface(pixels, threshold=0.2)
    h, w = pixels.shape[:2]
    for x1, y1, x2, y2, _score in dets:
        bw, bh = (x2 - x1) * 0.3 / 2, (y2 - y1) * 0.3 / 2
        x1, y1 = max(0, int(x1 - bw)), max(0, int(y1 - bh))
        x2, y2 = min(w, int(x2 + bw)), min(h, int(y2 + bh))
        roi = pixels[y1:y2, x1:x2]
        if roi.size == 0:
            continue
        blurred = cv2.blur(roi, (max(1, abs(x2 - x1) // 3), max(1, abs(y2 - y1) // 3)))
        mask = np.zeros(roi.shape[:2], np.uint8)
        cv2.ellipse(mask, ((roi.shape[1] / 2, roi.shape[0] / 2), roi.shape[1::-1], 0), 1, -1)
        roi[mask.astype(bool)] = blurred[mask.astype(bool)]
    encode_clean(pixels, OutputFormat.JPEG)
    return peak_rss_mb()


def _one_thread() -> None:
    import cv2

    cv2.setNumThreads(1)


def pool_run(fn: Callable[[Path], float], photos: list[Path], workers: int) -> tuple[float, float]:
    """Seconds for ``photos`` through ``fn`` on a fresh pool (start-up included, as for a
    real run), and the largest worker peak memory in MiB."""
    start = time.perf_counter()
    with ProcessPoolExecutor(workers, initializer=_one_thread) as pool:
        peaks = list(pool.map(fn, photos))
    return time.perf_counter() - start, max(peaks)


def deface_run(photos: list[Path]) -> tuple[float, float]:
    """deface as its CLI runs: one process, one photo after another, its onnxruntime
    session using every core (start-up included)."""
    start = time.perf_counter()
    with ProcessPoolExecutor(1) as pool:
        peaks = list(pool.map(_deface_one, photos))
    return time.perf_counter() - start, max(peaks)


# The detection defaults before issue 18's fourth round (photos over 2048 px searched
# at full size, not coarse first), for --before: measured in the same run as the new
# defaults and deface. (In the second round's figures, docs/throughput.md, "before" was
# the defaults before that round: the mirror on the whole photo, seam looks at full size.)
BEFORE = DetectionSettings(coarse_first=False)


def ours_run(
    photos: Path,
    workers: int,
    scratch: Path,
    tag: str,
    max_side: int | None = None,
    detection: DetectionSettings | None = None,
) -> tuple[float, float]:
    data, out = scratch / f"data-{tag}", scratch / f"out-{tag}"
    init_data_dir(data)
    options = PublishOptions(
        purpose=Purpose.WEBSITE,
        out_dir=out,
        operator="bench",
        workers=workers,
        max_side=max_side,
        detection=detection or DetectionSettings(),
    )
    start = time.perf_counter()
    with open_store(data) as store:
        report = publish(store, [photos], options)
    elapsed = time.perf_counter() - start
    if report.withheld:
        raise RuntimeError(f"withheld: {[r.reason for r in report.withheld]}")
    return elapsed, report.peak_worker_mb


# The same publish as ours_run, run by another source tree's code (``--against``): a
# checkout of an earlier commit, timed in the same rounds as this tree's.
_TREE_RUN = """
import dataclasses, json, sys, time
from pathlib import Path
tree, photos, data, out, workers, full = sys.argv[1:7]
sys.path.insert(0, tree)
from consent.registry import Purpose
from consent.store import init_data_dir, open_store
from publishing.options import FULL_SIZE, PublishOptions
from publishing.publish import publish
init_data_dir(Path(data))
options = PublishOptions(
    purpose=Purpose.WEBSITE, out_dir=Path(out), operator="bench", workers=int(workers),
    max_side=FULL_SIZE if full == "1" else None,
)
# Warm this process as the bench's own process is warm after its first round: a publish
# loads modules lazily (onnx for the audit's details, in some trees), and those must not
# count against one contender only. One photo, in this process, into a scratch folder.
warm_data, warm_out = Path(data + "-warm"), Path(out + "-warm")
init_data_dir(warm_data)
with open_store(warm_data) as store:
    first = sorted(Path(photos).iterdir())[:1]
    publish(store, first, dataclasses.replace(options, out_dir=warm_out, workers=1))
start = time.perf_counter()
with open_store(Path(data)) as store:
    report = publish(store, [Path(photos)], options)
elapsed = time.perf_counter() - start
if report.withheld:
    raise SystemExit(f"withheld: {[r.reason for r in report.withheld]}")
print(json.dumps([elapsed, report.peak_worker_mb]))
"""


def tree_run(
    tree: Path, photos: Path, workers: int, scratch: Path, tag: str, full: bool
) -> tuple[float, float]:
    """``ours_run`` at the defaults with the code of ``tree``, in a process of its own;
    only publish itself is timed, as in ours_run."""
    import json
    import os
    import subprocess

    data, out = scratch / f"data-{tag}", scratch / f"out-{tag}"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = [str(tree), str(photos), str(data), str(out), str(workers), "1" if full else "0"]
    done = subprocess.run(
        [sys.executable, "-c", _TREE_RUN, *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{tree}: {done.stderr.strip()[-2000:]}")
    elapsed, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return float(elapsed), float(peak)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("eval_dir", nargs="?", default=str(ROOT.parent / "shared" / "eval"))
    parser.add_argument("--photos", type=int, default=4, help="photos per set (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--workers", type=int, default=usable_cores())
    parser.add_argument("--skip-24mp", action="store_true", help="skip the 24 MP memory check")
    parser.add_argument(
        "--before",
        action="store_true",
        help="also time the detection defaults before issue 18's fourth round (BEFORE)",
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="TREE",
        help="also time publish at the defaults with the code of TREE (a checkout of an "
        "earlier commit), in the same rounds",
    )
    parser.add_argument(
        "--web",
        action="store_true",
        help="also time the 26 web photos of widerface_school/ as they are (1024 px)",
    )
    args = parser.parse_args()
    if args.against:
        args.against = args.against.resolve()
    eval_dir = Path(args.eval_dir)
    if not (eval_dir / "MANIFEST.md").is_file():
        print(f"evaluation photos not found at {eval_dir}; skipping", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="photoconsent-bench-") as tmp:
        scratch = Path(tmp)
        sets = generate(eval_dir, scratch / "photos", args.photos, (4000, 3000))
        if args.web:
            sets["web"] = web_set(eval_dir, scratch / "photos" / "web")
        times: dict[tuple[str, str], list[float]] = {}
        peaks: dict[str, float] = {}
        for r in range(args.repeats):
            for set_name, folder in sets.items():
                photos = sorted(folder.iterdir())
                tag = f"{r}-{set_name.replace(' ', '')}"
                runs = {
                    "floor": lambda p=photos: pool_run(_floor_one, p, args.workers),
                    "deface": lambda p=photos: deface_run(p),
                    "photoconsent": lambda f=folder, t=tag: ours_run(f, args.workers, scratch, t),
                    "photoconsent full size": lambda f=folder, t=tag: ours_run(
                        f, args.workers, scratch, f"{t}-full", FULL_SIZE
                    ),
                }
                if args.before:
                    runs["before"] = lambda f=folder, t=tag: ours_run(
                        f, args.workers, scratch, f"{t}-before", None, BEFORE
                    )
                    runs["before full size"] = lambda f=folder, t=tag: ours_run(
                        f, args.workers, scratch, f"{t}-before-full", FULL_SIZE, BEFORE
                    )
                if args.against:
                    runs["against"] = lambda f=folder, t=tag: tree_run(
                        args.against, f, args.workers, scratch, f"{t}-against", False
                    )
                    runs["against full size"] = lambda f=folder, t=tag: tree_run(
                        args.against, f, args.workers, scratch, f"{t}-against-full", True
                    )
                if set_name == "web":  # under 2560 px: full size is the website's size
                    runs = {k: v for k, v in runs.items() if "full size" not in k}
                for name, fn in runs.items():
                    seconds, peak = fn()
                    times.setdefault((set_name, name), []).append(seconds)
                    peaks[name] = max(peaks.get(name, 0.0), peak)
                    print(f"round {r + 1} {set_name:8} {name:12} {seconds:6.1f} s", file=sys.stderr)
        n = args.photos
        web = ", and the 26 web photos as they are" if args.web else ""
        print(
            f"\n{n} photos per set at 12 MP{web}, {args.workers} workers, median of {args.repeats}"
        )
        print(
            "| set | photoconsent at | floor photos/s | deface photos/s | photoconsent photos/s"
            " | photoconsent / floor (time) | photoconsent / deface (time) |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for set_name in sets:
            contenders = [
                ("photoconsent", "website, 2560 px"),
                ("photoconsent full size", "full size"),
            ]
            if args.before:
                contenders += [
                    ("before", "before: website, 2560 px"),
                    ("before full size", "before: full size"),
                ]
            if args.against:
                contenders += [
                    ("against", f"{args.against.name}: website, 2560 px"),
                    ("against full size", f"{args.against.name}: full size"),
                ]
            if set_name == "web":
                contenders = [(k, lbl) for k, lbl in contenders if "full size" not in k]
            for ours, label in contenders:
                n = len(list(sets[set_name].iterdir()))
                med = {
                    k: statistics.median(times[(set_name, k)]) for k in ("floor", "deface", ours)
                }
                print(
                    f"| {set_name} | {label} | {n / med['floor']:.2f} | {n / med['deface']:.2f} | "
                    f"{n / med[ours]:.2f} | {med[ours] / med['floor']:.2f}x | "
                    f"{med[ours] / med['deface']:.2f}x |"
                )
        print(
            "peak memory per worker (MiB, 12 MP): "
            + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items())
        )
        if not args.skip_24mp:
            big = generate(eval_dir, scratch / "photos24", args.workers, (6000, 4000))
            _, peak = ours_run(big["crowd"], args.workers, scratch, "24mp", FULL_SIZE)
            verdict = "under" if peak < 1536 else "OVER"
            print(
                f"peak memory per worker on 24 MP crowd photos: {peak:.0f} MiB "
                f"({verdict} the 1.5 GB target)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
