"""The LFW school: enrolled adults, strangers and composed event photos, at default settings.

Usage:
    PYTHONPATH=. .venv/bin/python bench/lfw_school.py [EVAL_DIR] [--seed 0]

People the project has never tuned on (``lfw/`` under EVAL_DIR, default ``../shared/eval``):
the 26 people with 8 photos are enrolled (20 of them with consent for the purpose, 6
without), 12 of the people with one photo are strangers. Each enrolled person gives 3
references through the real enrolment rule (pipeline.references.reference_from_photo:
one usable face, size, sharpness, pose; a refused photo is passed over for the next one).
32 event photos are composed from the other photos, 2 or 3 people side by side, each
scaled 0.9-1.5x: 60 faces of permitted people (3 each), 12 of the enrolled people without
consent (2 each) and the 12 strangers once each. Every photo goes through
pipeline.analysis.analyse (CenterFace detection, quality, the recogniser, decide) with
the recogniser's own default rule. Side by side in one run: sface (the default), dlib at
its calibrated defaults, and dlib at the rule before calibration (0.40, margin 0.08).

Printed per recogniser: strangers kept (target: none), enrolled people without consent
kept (consent must stop them), faces kept as the wrong person, background faces (other
people inside the LFW photos) kept, permitted faces kept (target: at least 60%), and with
the review band, permitted faces that would reach their own pupil's review grid.
"""

# ruff: noqa: E501  (the table rows are long format strings)

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.analysis import Gallery, analyse  # noqa: E402
from pipeline.detection import DetectionStage  # noqa: E402
from pipeline.errors import EnrolmentRejected  # noqa: E402
from pipeline.matching import Decision, MatchSettings, Reason  # noqa: E402
from pipeline.recognisers import DEFAULT_RECOGNISER, get_recogniser, match_settings  # noqa: E402
from pipeline.references import reference_from_photo  # noqa: E402

ENROLLED, PERMITTED, STRANGERS, PHOTOS = 26, 20, 12, 32
REFERENCES = 3


class CachedDetector:
    """The detection stage, run once per photo however many recognisers look at it."""

    def __init__(self) -> None:
        self.stage = DetectionStage()
        self.cache: dict[int, list] = {}

    def detect(self, pixels: np.ndarray, *, orientation_known: bool = True) -> list:  # type: ignore[type-arg]
        key = id(pixels)
        if key not in self.cache:
            self.cache[key] = self.stage.detect(pixels, orientation_known=orientation_known)
        return self.cache[key]


def people(eval_dir: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    with (eval_dir / "lfw" / "identities.csv").open() as f:
        for row in csv.DictReader(f):
            out.setdefault(row["person"], []).append(eval_dir / "lfw" / row["file"])
    return {k: sorted(v) for k, v in sorted(out.items())}


def compose(tiles: list[tuple[Path, str]], rng: random.Random):  # type: ignore[no-untyped-def]
    """One event photo: the tiles side by side on grey; (pixels, [(x0, x1, person)])."""
    from PIL import Image

    images = []
    for path, who in tiles:
        im = Image.open(path).convert("RGB")
        s = rng.uniform(0.9, 1.5)
        images.append((im.resize((round(im.width * s), round(im.height * s))), who))
    gap = 24
    w = sum(im.width for im, _ in images) + gap * (len(images) + 1)
    h = max(im.height for im, _ in images) + 2 * gap
    canvas = Image.new("RGB", (w, h), (128, 128, 128))
    spans, x = [], gap
    for im, who in images:
        canvas.paste(im, (x, gap + (h - 2 * gap - im.height) // 2))
        spans.append((x, x + im.width, who))
        x += im.width + gap
    return np.asarray(canvas), spans


def school(eval_dir: Path, seed: int):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    everyone = people(eval_dir)
    many = [p for p, v in everyone.items() if len(v) >= 8]
    single = [p for p, v in everyone.items() if len(v) == 1]
    rng.shuffle(many)
    rng.shuffle(single)
    enrolled, strangers = many[:ENROLLED], single[:STRANGERS]
    permitted = set(enrolled[:PERMITTED])
    photos = {p: rng.sample(everyone[p], len(everyone[p])) for p in enrolled}
    return everyone, enrolled, permitted, strangers, photos


def enrol(recogniser: str, enrolled, photos, detector):  # type: ignore[no-untyped-def]
    """Up to REFERENCES references per person through the enrolment rule; which photos
    were used (the rest are event material)."""
    rec = get_recogniser(recogniser)
    gallery, used, refused = {}, {}, 0
    for p in enrolled:
        refs, took = [], []
        for path in photos[p]:
            if len(refs) == REFERENCES or len(photos[p]) - len(took) - 1 < 3:
                break  # keep at least three photos of each person for the events
            took.append(path)
            try:
                refs.append(reference_from_photo(path, detector.stage, rec).encoding)
            except EnrolmentRejected:
                refused += 1
        used[p] = took
        if refs:
            gallery[p] = np.array(refs)
    return gallery, used, refused


def event_faces(enrolled, permitted, strangers, photos, used, everyone, rng):  # type: ignore[no-untyped-def]
    faces = []
    for p in enrolled:
        rest = [x for x in photos[p] if x not in used[p]]
        faces += [(x, p) for x in rest[: 3 if p in permitted else 2]]
    faces += [(everyone[p][0], p) for p in strangers]
    rng.shuffle(faces)
    # 20 photos of 3 faces and 12 of 2 (84 faces), nobody twice in one photo.
    sizes = [3] * (len(faces) - 2 * PHOTOS) + [2] * (3 * PHOTOS - len(faces))
    out, pool = [], faces[:]
    for n in sizes:
        tiles: list[tuple[Path, str]] = []
        for face in list(pool):
            if len(tiles) < n and face[1] not in {w for _, w in tiles}:
                tiles.append(face)
                pool.remove(face)
        out.append(tiles)
    assert not pool, "the faces did not fit the photos"
    return out


def score(decisions, spans, permitted, strangers, enrolled, counts):  # type: ignore[no-untyped-def]
    """Tally one photo: each tile's largest face is its person; others are background."""
    by_tile: dict[int, list] = {}
    for d in decisions:
        cx = d.box.x + d.box.w / 2
        tile = next((i for i, (x0, x1, _) in enumerate(spans) if x0 <= cx < x1), None)
        if tile is None:
            counts["outside"] += d.decision is Decision.KEPT
            continue
        by_tile.setdefault(tile, []).append(d)
    for i, (_, _, who) in enumerate(spans):
        found = sorted(by_tile.get(i, []), key=lambda d: d.box.area, reverse=True)
        if who in permitted:
            counts["permitted"] += 1
        if not found:
            counts["missed"] += 1
            continue
        main, background = found[0], found[1:]
        counts["background_kept"] += sum(d.decision is Decision.KEPT for d in background)
        kept = main.decision is Decision.KEPT
        if kept and main.pupil_id != who:
            counts["wrong_person"] += 1
        if who in strangers:
            counts["strangers_kept"] += kept
            counts["strangers_to_review"] += main.reason is Reason.UNCERTAIN
        elif who not in permitted:
            counts["unconsented_kept"] += kept
        else:
            counts["permitted_kept"] += kept and main.pupil_id == who
            counts["permitted_grid"] += main.pupil_id == who or main.candidate_id == who
        counts["reasons"][main.reason.name] = counts["reasons"].get(main.reason.name, 0) + 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("eval_dir", nargs="?", default=str(ROOT.parent / "shared" / "eval"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    eval_dir = Path(args.eval_dir)
    if not (eval_dir / "lfw" / "identities.csv").is_file():
        print(f"Error: {eval_dir} has no lfw/identities.csv.", file=sys.stderr)
        return 1
    everyone, enrolled, permitted, strangers, photos = school(eval_dir, args.seed)
    detector = CachedDetector()
    runs: list[tuple[str, MatchSettings]] = [
        (f"{DEFAULT_RECOGNISER} (default)", match_settings(DEFAULT_RECOGNISER)),
        ("dlib", match_settings("dlib")),
        ("dlib 0.40/0.08 (before)", replace(match_settings("dlib"), tolerance=0.40, margin=0.08)),
    ]
    galleries = {}
    for name in {s.recogniser for _, s in runs}:
        galleries[name] = enrol(name, enrolled, photos, detector)
    # Event photos from the photos no recogniser used as a reference.
    used = {p: sorted({x for g in galleries.values() for x in g[1][p]}) for p in enrolled}
    rng = random.Random(args.seed + 1)
    events = [
        compose(tiles, rng)
        for tiles in event_faces(enrolled, permitted, strangers, photos, used, everyone, rng)
    ]
    for pixels, _ in events:  # detect once, so the times below are matching's alone
        detector.detect(pixels)
    n_faces = sum(len(spans) for _, spans in events)
    print(
        f"LFW school: {len(enrolled)} enrolled ({len(permitted)} with consent), "
        f"{len(strangers)} strangers; {len(events)} event photos, {n_faces} faces; seed {args.seed}"
    )
    print(
        "  recogniser (rule)            refs refused | strangers kept  no-consent kept  wrong person"
        "  background kept | permitted kept    reach review grid  strangers to review   s/photo (matching only)"
    )
    for label, settings in runs:
        gallery, _, refused = galleries[settings.recogniser]
        counts: dict = dict.fromkeys(
            (
                *("permitted", "permitted_kept", "permitted_grid", "strangers_kept"),
                *("strangers_to_review", "unconsented_kept", "wrong_person"),
                *("background_kept", "missed", "outside"),
            ),
            0,
        )
        counts["reasons"] = {}
        g = Gallery(
            encodings=gallery,
            permitted={p: 1 for p in permitted if p in gallery},
            recogniser=settings.recogniser,
        )
        t0 = time.perf_counter()
        for pixels, spans in events:
            decisions = analyse(pixels, detector, g, settings)  # type: ignore[arg-type]
            score(decisions, spans, permitted, strangers, enrolled, counts)
        secs = (time.perf_counter() - t0) / len(events)
        c = counts
        rule = f"{settings.tolerance:.2f}/{settings.margin:.2f}/{settings.review:.2f}"
        print(
            f"  {label:24s} {rule}  {sum(len(v) for v in gallery.values()):3d} {refused:3d}   |"
            f" {c['strangers_kept']:8d} of {len(strangers):<3d} {c['unconsented_kept']:9d}"
            f" {c['wrong_person']:14d} {c['background_kept'] + c['outside']:13d}     |"
            f" {c['permitted_kept']:3d} of {c['permitted']} ({100 * c['permitted_kept'] / max(c['permitted'], 1):4.1f}%)"
            f" {c['permitted_grid']:6d} ({100 * c['permitted_grid'] / max(c['permitted'], 1):4.1f}%)"
            f" {c['strangers_to_review']:12d}       {secs:5.2f}"
        )
        print(
            f"      reasons for the event faces: {dict(sorted(c['reasons'].items()))}; faces not detected {c['missed']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
