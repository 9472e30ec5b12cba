"""Open-set matching: how often the keep-or-blur rule keeps the wrong face, and the right one.

Usage:
    .venv/bin/python bench/matching_adults.py [EVAL_DIR] [--seed 0] [--sizes 10,50,200]
                                        [--refs 1] [--repeats 3] [--jobs 2]

Encodes the largest face of each photo in ``lfw/`` and ``deepface/identities.csv`` under
EVAL_DIR (default ``../shared/eval``). Each random draw enrols people with >= 2 photos,
all consented, from references meeting the enrolment rule (>= 80 px, encodable), and runs
``decide`` on every other photo: genuine probes (enrolled people) and impostor probes
(everyone else, the open set). A false keep is a face kept as the wrong pupil or an
impostor kept at all. Photos with no detected face are left out (see detection_recall).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import functools
import os
import random
import shlex
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.boxes import Box  # noqa: E402
from pipeline.detection import DetectionStage, opencv_threads  # noqa: E402
from pipeline.errors import UnreadableImage  # noqa: E402
from pipeline.loading import load_image  # noqa: E402
from pipeline.matching import Decision, MatchSettings, Reason, decide, encode_faces, sharpness  # noqa: E402
from pipeline.references import MIN_REFERENCE_FACE_PX  # noqa: E402

SOURCES = ("lfw", "deepface")
# Each source numbers its own people; these two deepface people are LFW people (checked
# by eye). Left apart, every match between them would count as a false keep.
SAME_PERSON = {"deepface/p12": "lfw/Leonardo_DiCaprio", "deepface/p13": "lfw/George_Clooney"}
CLEAR_PX = 80  # genuine probes this large or larger stand in for "clear, frontal" faces
TOLERANCES = (0.35, 0.40, 0.45, 0.50, 0.60)
TARGET_CLEAR_KEEPS = 0.60
KEYS = "genuine impostor false false_imp true clear clear_true".split() + [r.name for r in Reason]


@dataclass(frozen=True)
class Photo:
    """One photo's largest face: box (x, y, w, h) in pixels, dlib encoding, sharpness."""

    path: Path
    person: str
    box: Box
    encoding: np.ndarray | None
    sharpness: float

    @property
    def can_be_reference(self) -> bool:
        return self.encoding is not None and self.box.size >= MIN_REFERENCE_FACE_PX


def read_photos(eval_dir: Path, jobs: int) -> tuple[list[Photo], list[str]]:
    """Every identity photo with a detected face, and notes on the ones left out."""
    rows = []
    for source in SOURCES:
        if (eval_dir / source / "identities.csv").is_file():
            with (eval_dir / source / "identities.csv").open(newline="") as f:
                for r in csv.DictReader(f):
                    person = f"{source}/{r['person']}"
                    rows.append((eval_dir / source / r["file"], SAME_PERSON.get(person, person)))
    photos: list[Photo] = []
    notes: list[str] = []
    t0 = time.perf_counter()
    # Detection on the large deepface photos is the slow part: one process per core.
    with ProcessPoolExecutor(jobs, initializer=opencv_threads, initargs=(1,)) as pool:
        for i, found in enumerate(pool.map(encode_photo, rows, chunksize=2), 1):
            if isinstance(found, Photo):
                photos.append(found)
            else:
                notes.append(found.replace(f"{eval_dir}/", ""))
            if i % 25 == 0 or i == len(rows):
                elapsed = time.perf_counter() - t0
                print(f"encoded {i}/{len(rows)} photos, {elapsed:.0f} s", file=sys.stderr)
    return photos, notes


@functools.cache
def _stage() -> DetectionStage:
    return DetectionStage()  # once per worker process


def encode_photo(item: tuple[Path, str]) -> Photo | str:
    """The photo's largest face, its encoding and sharpness, or why there is none."""
    path, person = item
    try:
        loaded = load_image(path)
    except UnreadableImage as exc:
        return f"unreadable: {exc}"
    # As enrolment detects (reference_from_photo): these portraits are upright, and the
    # turned passes for untagged photos would add a third to the run for no other face.
    found = _stage().detect(loaded.pixels, orientation_known=True)
    if not found:
        return f"no face detected: {path}"
    box = max(found, key=lambda d: d.box.area).box
    encoding = encode_faces(loaded.pixels, [box])[0]
    return Photo(path, person, box, encoding, sharpness(loaded.pixels, box))


def evaluate(
    photos: list[Photo], refs: dict[str, list[Photo]], settings: MatchSettings
) -> Counter[str]:
    """Outcome counts for every photo that is not a reference, against ``refs``' people."""
    gallery = {p: np.stack([r.encoding for r in rs]) for p, rs in refs.items()}  # type: ignore[misc]
    used = {id(r) for rs in refs.values() for r in rs}
    c: Counter[str] = Counter()
    for photo in photos:
        if id(photo) in used:
            continue
        genuine = photo.person in gallery
        sharp = [photo.sharpness]
        (d,) = decide(
            [photo.box], [photo.encoding], gallery, set(gallery), settings, sharpness=sharp
        )
        kept = d.decision is Decision.KEPT
        right = kept and d.pupil_id == photo.person
        clear = genuine and photo.box.size >= CLEAR_PX
        c["genuine" if genuine else "impostor"] += 1
        c["false"] += kept and not right
        c["false_imp"] += kept and not genuine
        c["true"] += right
        c["clear"] += clear
        c["clear_true"] += clear and right
        c[d.reason.name] += 1
    return c


def pct(num: float, den: float) -> str:
    return f"{100 * num / den:.1f}%" if den else "-"


HEADER = (
    "probes gen / imp | false keeps per 1,000 (mean) | worst draw per 1,000 (count) | "
    "false keeps, all draws: wrong pupil / impostor | true keeps (of genuine) | "
    f"clear >= {CLEAR_PX} px true keeps | too small / too blurred (of all) | "
    "ambiguous / references disagree (of all) |"
)


def table(first: list[str], rows: list[tuple[list[str], list[Counter[str]]]]) -> None:
    """A markdown table, a row per setting: means over draws, and the worst draw."""
    print("| " + " | ".join(first) + " | " + HEADER + "\n|" + " --- |" * (len(first) + 8))
    for label, runs in rows:
        m = Counter({k: float(np.mean([c[k] for c in runs])) for k in KEYS})
        n = m["genuine"] + m["impostor"]
        worst = max(runs, key=lambda c: c["false"] / (c["genuine"] + c["impostor"]))
        worst_n = worst["genuine"] + worst["impostor"]
        imp = sum(c["false_imp"] for c in runs)
        cells = label + [
            f"{m['genuine']:.0f} / {m['impostor']:.0f}",
            f"{1000 * m['false'] / n:.1f}",
            f"{1000 * worst['false'] / worst_n:.1f} ({worst['false']})",
            f"{sum(c['false'] for c in runs) - imp} / {imp}",
            pct(m["true"], m["genuine"]),
            f"{pct(m['clear_true'], m['clear'])} of {m['clear']:.0f}",
            f"{pct(m['TOO_SMALL'], n)} / {pct(m['TOO_BLURRED'], n)}",
            f"{pct(m['AMBIGUOUS'], n)} / {pct(m['REFERENCES_DISAGREE'], n)}",
        ]
        print("| " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("eval_dir", nargs="?", default=str(ROOT.parent / "shared" / "eval"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default="10,50,200", help="gallery sizes (people enrolled)")
    parser.add_argument("--refs", type=int, default=1, help="references per person (2 is also run)")
    parser.add_argument("--repeats", type=int, default=3, help="random draws to average over")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    args = parser.parse_args()
    eval_dir = Path(args.eval_dir)
    if not any((eval_dir / s / "identities.csv").is_file() for s in SOURCES):
        print(f"no {' or '.join(SOURCES)} identities.csv under {eval_dir}", file=sys.stderr)
        return 1
    photos, notes = read_photos(eval_dir, args.jobs)
    by_person: dict[str, list[Photo]] = {}
    for p in photos:
        by_person.setdefault(p.person, []).append(p)
    enrolable = sorted(
        p for p, ph in by_person.items() if len(ph) >= 2 and any(x.can_be_reference for x in ph)
    )
    wanted = [int(s) for s in args.sizes.split(",")]
    sizes = sorted({min(s, len(enrolable)) for s in wanted})
    refs_counts = sorted({args.refs, 2})

    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    print(f"`{shlex.join(sys.orig_argv)}` on {now}, commit {commit or 'unknown'}")
    print(
        f"\n{len(photos)} photos of {len(by_person)} people with a detected face under "
        f"{eval_dir} ({', '.join(SOURCES)}); {len(enrolable)} people have >= 2 such photos "
        f"and a reference-quality one (>= {MIN_REFERENCE_FACE_PX} px, encodable). "
        f"{sum(p.encoding is None for p in photos)} faces could not be encoded."
    )
    print("- one person in two sources: " + ", ".join(f"{a} = {b}" for a, b in SAME_PERSON.items()))
    for note in notes:
        print(f"- left out, {note}")
    if any(s > len(enrolable) for s in wanted):
        print(f"- gallery sizes above {len(enrolable)} are capped at {len(enrolable)}")
    short = [p for p in enrolable if sum(x.can_be_reference for x in by_person[p]) < 2]
    if short:
        print(f"- {len(short)} of them have 1 reference-quality photo, so 1 reference at refs=2")
    default = MatchSettings()
    print(f"- seed {args.seed}, {args.repeats} draws; all enrolled may be kept; {default}")

    # Per draw: the people in a random order and each one's reference candidates shuffled.
    # A size-n gallery enrols the first n people with their first k candidates, so sizes,
    # reference counts and tolerances are compared on the same draws.
    draws = []
    for r in range(args.repeats):
        rng = random.Random(f"{args.seed}:{r}")
        order = rng.sample(enrolable, len(enrolable))
        cands = {p: rng.sample(ph, len(ph)) for p, ph in by_person.items()}
        draws.append((order, {p: [x for x in c if x.can_be_reference] for p, c in cands.items()}))

    def runs(size: int, k: int, settings: MatchSettings) -> list[Counter[str]]:
        return [evaluate(photos, {p: c[p][:k] for p in o[:size]}, settings) for o, c in draws]

    at_default = {(s, k): runs(s, k, default) for s in sizes for k in refs_counts}
    print("\n## Default settings\n")
    table(["people enrolled", "refs"], [([str(s), str(k)], r) for (s, k), r in at_default.items()])
    # The largest gallery leaves few people out, so the smallest one is swept too: it has
    # the most impostor probes, which is where loosening shows.
    print("\n## Tolerance\n")
    sweep = []
    for s in sorted({sizes[0], sizes[-1]}, reverse=True):
        for k in refs_counts:
            for tol in TOLERANCES:
                label = f"**{tol:.2f}**" if tol == default.tolerance else f"{tol:.2f}"
                result = runs(s, k, MatchSettings(tolerance=tol))
                sweep.append(([str(s), label, str(k)], result))
    table(["people enrolled", "tolerance", "refs"], sweep)

    goal = f"0 false keeps, >= {TARGET_CLEAR_KEEPS:.0%} of clear (>= {CLEAR_PX} px) faces kept"
    print(f"\nTarget at default settings, at every gallery size: {goal}")
    for k in refs_counts:
        totals = [sum(at_default[s, k], Counter()) for s in sizes]
        false = sum(t["false"] for t in totals)
        clear = min(t["clear_true"] / max(t["clear"], 1) for t in totals)
        verdict = "met" if false == 0 and clear >= TARGET_CLEAR_KEEPS else "NOT met"
        print(f"- refs={k}: {false} false keeps, clear kept >= {clear:.1%}: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
