"""Recognisers side by side on children (FG-NET) and adults (LFW): the keep rule's figures.

Usage:
    PYTHONPATH=. .venv/bin/python bench/matching.py [EVAL_DIR] [--draws 3] [--cv 20] [--refresh]
        [--product]

EVAL_DIR defaults to ``../shared/eval``. bench/matching_faces.py encodes one face per
photo with every recogniser (cached in /tmp). Children are the FG-NET photos at ages 3-16
(38 children); adults are LFW's. Fusion is dlib and SFace, each distance z-normalised on
LFW impostor pairs, then averaged (measured here only: see docs/matching.md). Printed,
in one run:

1. per-face time of each recogniser (dlib landmarks + network; SFace: dlib's 68 landmarks
   + alignment + network; fusion: both), timed side by side in the run that encoded the
   faces (the first run, or --refresh; about 4 minutes);
2. a DET table: true match rate at false match rates 1e-2, 1e-3, 1e-4, children (all
   same-child pairs, and those taken within 2 years) and adults apart;
3. thresholds at a stated false match rate, cross-validated: over --cv random halves of
   the children, the threshold set on one half's impostor pairs and its false and true
   match rates on the other half;
4. the children open set at each recogniser's defaults and a sweep around them:
   - gallery 37: every child but one enrolled, the one left out a stranger, each child
     left out in turn (--draws reference draws each); gallery 10: 10 children enrolled,
     the other 28 strangers (12 x --draws draws);
   - references: 1 or 3 per child, taken from ages next to each other (a school enrols
     the current year); a child's genuine photos are its others taken within 2 years of
     a reference (what a school that re-enrols yearly matches against);
   - false keeps per 1,000 stranger photos, wrong-child keeps, genuine photos kept; with
     the review band: genuine photos reaching their own pupil's grid (kept or uncertain),
     stranger photos reaching a grid per 1,000, and the faces in grids that are not that
     pupil (the share and the count) at gallery 37;
   - every decision comes from a vectorised copy of pipeline.matching.decide, checked
     against decide itself on a sample of every draw (the run stops if they differ);
5. pose: faces by yaw (from the five landmarks) and how the rule fares beyond the limit;
6. the SFace default through the product's path (the detection stage's boxes, its quality
   gates, enrolment's reference gate), step by step, with and without review of
   low-quality faces (what a review batch does: a face failing only the sharpness or yaw
   gate is compared and goes to review within the band, never kept), and every genuine
   photo that misses its pupil's grid with why;
7. blurred probes: every child's photo blurred (two strengths) through the product's
   path, against sharp references: impostor and genuine rates at the review band, the
   band the rule would set for blurred probes (cross-validated), and the open set.

``--product`` runs only sections 6 and 7 (about 1 minute once cached; the first run
encodes the product's and the blurred faces, about 5 minutes).
"""

# ruff: noqa: E501  (the tables are long format strings, kept one per line to read as a row)

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from matching_faces import Faces, faces  # noqa: E402

from pipeline import distances as distances_module  # noqa: E402
from pipeline.boxes import Box  # noqa: E402
from pipeline.calibration import threshold_at  # noqa: E402
from pipeline.matching import (  # noqa: E402
    MatchSettings,
    Reason,
    decide,
    quality_gate,
    yaw_from_landmarks,
)
from pipeline.recognisers import match_settings  # noqa: E402

FMRS = (1e-2, 1e-3, 1e-4)
RECOGNISERS = ("dlib", "sface", "fusion")


@dataclass(frozen=True)
class Norm:
    """Fusion's z-normalisation: each distance's mean and spread over adult impostor pairs."""

    dlib: tuple[float, float]
    sface: tuple[float, float]

    def fused(self, refs: np.ndarray, probe: np.ndarray) -> np.ndarray:
        r, p = np.asarray(refs, np.float64), np.asarray(probe, np.float64)
        d = distances_module.euclidean(r[:, :128], p[:128])
        s = distances_module.cosine(r[:, 128:], p[128:])
        return ((d - self.dlib[0]) / self.dlib[1] + (s - self.sface[0]) / self.sface[1]) / 2


def matrices(f: Faces) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Norm]:
    """(distance matrix, templates) per recogniser, and fusion's normalisation."""
    d, s = f.dlib, f.sface / np.linalg.norm(f.sface, axis=1, keepdims=True)
    dist = {"dlib": np.linalg.norm(d[:, None] - d[None], axis=2), "sface": 1.0 - s @ s.T}
    same = f.person[:, None] == f.person[None]
    lfw = np.array([p.startswith("l") for p in f.person])
    iu = np.triu_indices(len(f.person), 1)
    imp = lfw[iu[0]] & lfw[iu[1]] & ~same[iu]
    stats = {k: (float(m[iu][imp].mean()), float(m[iu][imp].std())) for k, m in dist.items()}
    norm = Norm(stats["dlib"], stats["sface"])
    dist["fusion"] = (
        (dist["dlib"] - norm.dlib[0]) / norm.dlib[1]
        + (dist["sface"] - norm.sface[0]) / norm.sface[1]
    ) / 2
    templates = {"dlib": f.dlib, "sface": f.sface, "fusion": np.hstack([f.dlib, f.sface])}
    return dist, templates, norm


def pair_masks(f: Faces, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper-triangle index pairs within ``idx``: (pairs, same person, within 2 years)."""
    a, b = np.triu_indices(len(idx), 1)
    i, j = idx[a], idx[b]
    same = f.person[i] == f.person[j]
    gap = np.abs(f.age[i] - f.age[j]) <= 2
    return np.stack([i, j]), same, same & gap


def at_fmr(impostor: np.ndarray, fmr: float) -> float:
    """The threshold at which ``fmr`` of impostor pairs fall at or below it."""
    return float(np.quantile(impostor, fmr, method="lower"))


def time_side_by_side(f: Faces, n: int = 20, rounds: int = 3) -> dict[str, float]:
    """Median ms per face of each recogniser's encode on the same ``n`` children's faces,
    the recognisers taking turns (so a busy machine slows them alike)."""
    from PIL import Image

    from pipeline.matching import face_recognition_module
    from pipeline.recognisers import DlibRecogniser, SFaceRecogniser

    fr = face_recognition_module()
    work = []
    for path in [p for p, k in zip(f.files, f.kind, strict=True) if k == "child"][:n]:
        px = np.asarray(Image.open(path).convert("RGB"))
        locs = fr.face_locations(px, number_of_times_to_upsample=1)
        if locs:
            t, r, b, left = max(locs, key=lambda q: (q[2] - q[0]) * (q[1] - q[3]))
            work.append((px, Box(left, t, r - left, b - t)))
    recs = {"dlib": DlibRecogniser(), "sface": SFaceRecogniser()}
    for rec in recs.values():
        rec.encode(*work[0][:1], [work[0][1]])  # load the models outside the timing
    times: dict[str, list[float]] = {k: [] for k in recs}
    for _ in range(rounds):
        for px, box in work:
            for k, rec in recs.items():
                t0 = time.perf_counter()
                rec.encode(px, [box])
                times[k].append(time.perf_counter() - t0)
    ms = {k: 1000 * float(np.median(v)) for k, v in times.items()}
    # Fusion would run both on the same face (sharing only dlib's landmark step, ~5 ms).
    ms["fusion"] = ms["dlib"] + ms["sface"]
    return ms


def det_table(f: Faces, dist: dict[str, np.ndarray]) -> None:
    child = np.flatnonzero(f.kind == "child")
    lfw = np.flatnonzero(np.array([p.startswith("l") for p in f.person]))
    print("\n2. DET: true match rate at a false match rate of 1e-2 / 1e-3 / 1e-4 (threshold)")
    for k in RECOGNISERS:
        m = dist[k]
        for label, idx, genuine_kind in (
            ("children, any age gap", child, 1),
            ("children, within 2 years", child, 2),
            ("adults (LFW)", lfw, 1),
        ):
            pairs, same, near = pair_masks(f, idx)
            d = m[pairs[0], pairs[1]]
            gen = d[near] if genuine_kind == 2 else d[same]
            imp = d[~same]
            cells = []
            for fmr in FMRS:
                t = at_fmr(imp, fmr)
                cells.append(f"{100 * np.mean(gen <= t):5.1f}% ({t:6.3f})")
            print(
                f"  {k:7s} {label:25s} {' | '.join(cells)}  "
                f"[{len(gen)} genuine, {len(imp)} impostor pairs]"
            )


def cv_thresholds(f: Faces, dist: dict[str, np.ndarray], rounds: int) -> None:
    child = np.flatnonzero(f.kind == "child")
    people = sorted(set(f.person[child]))
    print(
        f"\n3. Thresholds at a stated false match rate, cross-validated ({rounds} random halves"
        " of the children: set on one half, measured on the other)"
    )
    print(
        "  recogniser  FMR    empirical threshold  held-out FMR  held-out TMR (2 years)"
        "   tail-fit threshold (the rule's)  held-out FMR"
    )
    for k in RECOGNISERS:
        for fmr in FMRS:
            thr, fm, tm, tail, tail_fm = [], [], [], [], []
            for r in range(rounds):
                rng = random.Random(1000 + r)
                half = set(rng.sample(people, len(people) // 2))
                a = child[np.isin(f.person[child], list(half))]
                b = child[~np.isin(f.person[child], list(half))]
                pa, sa, _ = pair_masks(f, a)
                pb, sb, nb = pair_masks(f, b)
                t = at_fmr(dist[k][pa[0], pa[1]][~sa], fmr)
                db = dist[k][pb[0], pb[1]]
                thr.append(t)
                fm.append(np.mean(db[~sb] <= t))
                tm.append(np.mean(db[nb] <= t))
                tt = threshold_at(dist[k][pa[0], pa[1]][~sa], fmr)
                tail.append(tt)
                tail_fm.append(np.mean(db[~sb] <= tt))
            pairs, same, _ = pair_masks(f, child)
            whole = threshold_at(dist[k][pairs[0], pairs[1]][~same], fmr)
            print(
                f"  {k:9s} {fmr:7.0e}  {np.mean(thr):7.3f} +- {np.std(thr):5.3f}"
                f"        {np.mean(fm):8.1e}     {100 * np.mean(tm):5.1f}%"
                f"              {np.mean(tail):7.3f} +- {np.std(tail):5.3f}"
                f" (all: {whole:6.3f})   {np.mean(tail_fm):8.1e}"
            )


@dataclass
class Draw:
    refs: dict[str, list[int]]
    genuine: list[tuple[int, str]]  # within 2 years of a reference
    strangers: list[int]
    genuine_any: list[tuple[int, str]]  # every other photo of the enrolled children


def _references(
    rng: random.Random, photos: list[int], ages: np.ndarray, n: int, eligible=None
) -> list[int]:  # type: ignore[no-untyped-def]
    """``n`` photos of one child from neighbouring ages (at most all but one photo), of
    those ``eligible`` (a bool per face: enrolment would accept it) when given."""
    n = max(1, min(n, len(photos) - 1))
    pool = photos if eligible is None else [p for p in photos if eligible[p]] or photos
    n = min(n, len(pool))
    anchor = rng.choice(pool)
    rest = [p for p in pool if p != anchor]
    rng.shuffle(rest)
    rest.sort(key=lambda p: abs(int(ages[p]) - int(ages[anchor])))
    return [anchor, *rest[: n - 1]]


def draws(f: Faces, gallery: str, n_refs: int, repeats: int, eligible=None) -> list[Draw]:  # type: ignore[no-untyped-def]
    child = np.flatnonzero(f.kind == "child")
    by: dict[str, list[int]] = {}
    for i in child:
        by.setdefault(str(f.person[i]), []).append(int(i))
    people = sorted(by)
    out = []
    if gallery == "37":
        plans = [([p for p in people if p != s], [s]) for s in people for _ in range(repeats)]
    else:
        plans = []
        for r in range(12 * repeats):
            order = people[:]
            random.Random(r).shuffle(order)
            plans.append((order[:10], order[10:]))
    for n, (enrolled, strangers) in enumerate(plans):
        rng = random.Random(7919 * n + n_refs)
        refs = {p: _references(rng, by[p], f.age, n_refs, eligible) for p in enrolled}
        genuine, genuine_any = [], []
        for p in enrolled:
            ref_ages = f.age[refs[p]]
            for i in by[p]:
                if i not in refs[p]:
                    genuine_any.append((i, p))
                    if np.min(np.abs(ref_ages - f.age[i])) <= 2:
                        genuine.append((i, p))
        out.append(Draw(refs, genuine, [i for s in strangers for i in by[s]], genuine_any))
    return out


@dataclass(frozen=True)
class Quality:
    """What the quality gates see of each face (by face index): yaw in degrees and
    sharpness (nan: not measured, the gate passes), and whether the face is never compared
    at all (not found by the detection stage, no template, under the minimum size)."""

    yaw: np.ndarray
    sharp: np.ndarray
    uncompared: np.ndarray

    @classmethod
    def of_yaw(cls, yaw: np.ndarray) -> Quality:
        """Section 4's faces: the yaw gate only (dlib HOG boxes, sharpness not gated)."""
        return cls(yaw, np.full(len(yaw), np.nan), np.zeros(len(yaw), bool))

    def gate(self, i: int, s: MatchSettings) -> str | None:
        """The keep's quality gate face ``i`` fails (pipeline.matching.quality_gate)."""
        sharp = None if np.isnan(self.sharp[i]) else float(self.sharp[i])
        yaw = None if np.isnan(self.yaw[i]) else float(self.yaw[i])
        gate = quality_gate(sharp, yaw, s)
        return None if gate is None else gate.name


def _outcomes(
    m: np.ndarray, d: Draw, s: MatchSettings, q: Quality
) -> tuple[list[str], list[str | None], np.ndarray]:
    """Per probe (genuine then strangers): the reason's name, the pupil it is kept as or a
    candidate of (else None), and the probe indices: the rule of pipeline.matching.decide
    after the quality gates, over a precomputed distance matrix."""
    pupils = sorted(d.refs)
    probes = np.array([i for i, _ in d.genuine] + d.strangers)
    nearest = np.stack([m[np.ix_(probes, d.refs[p])].min(1) for p in pupils], 1)
    mean = np.stack([m[np.ix_(probes, d.refs[p])].mean(1) for p in pupils], 1)
    nrefs = np.array([len(d.refs[p]) for p in pupils])
    order = np.lexsort((np.arange(len(pupils))[None].repeat(len(probes), 0), nearest), axis=1)
    reasons, who = [], []
    for row in range(len(probes)):
        top, second = order[row, 0], order[row, 1] if len(pupils) > 1 else None
        dtop = nearest[row, top]
        uncertain = s.review is not None and dtop <= s.review
        if q.uncompared[probes[row]]:
            reasons.append(Reason.NOT_ENCODABLE.name)
            who.append(None)
            continue
        gate = q.gate(probes[row], s)
        if gate is not None:
            # Below the keep's quality gates: never kept; to review when low-quality
            # review is on and the face is within the band (pipeline.matching).
            low = s.review_low_quality and uncertain
            reasons.append("UNCERTAIN" if low else gate)
            who.append(pupils[top] if low else None)
            continue
        if dtop > s.tolerance:
            reason = "NO_MATCH"
        elif second is not None and nearest[row, second] - dtop < s.margin:
            reason = "AMBIGUOUS"
        elif nrefs[top] > 1 and mean[row, top] > s.tolerance + s.agreement:
            reason = "REFERENCES_DISAGREE"
        else:
            reasons.append("MATCHED_WITH_CONSENT")
            who.append(pupils[top])
            continue
        reasons.append("UNCERTAIN" if uncertain else reason)
        who.append(pupils[top] if uncertain else None)
    return reasons, who, probes


def _check(templates: np.ndarray, d: Draw, s: MatchSettings, q: Quality, got) -> None:  # type: ignore[no-untyped-def]
    """decide itself on every 25th probe of the draw, and on every probe below the quality
    gates, must agree with the copy."""
    reasons, who, probes = got
    gallery = {p: templates[r] for p, r in d.refs.items()}
    box = Box(0, 0, 200, 200)
    rows = sorted(
        set(range(0, len(probes), 25))
        | {r for r, i in enumerate(probes) if q.gate(i, s) is not None or q.uncompared[i]}
    )
    for row in rows:
        i = probes[row]
        sharp = None if np.isnan(q.sharp[i]) else float(q.sharp[i])
        yaw = None if np.isnan(q.yaw[i]) else float(q.yaw[i])
        enc = None if q.uncompared[i] else templates[i]
        (fd,) = decide([box], [enc], gallery, set(gallery), s, sharpness=[sharp], yaw=[yaw])
        mine = (reasons[row], who[row])
        theirs = (
            fd.reason.name,
            fd.candidate_id or (fd.pupil_id if fd.reason.name == "MATCHED_WITH_CONSENT" else None),
        )
        if mine != theirs:
            raise SystemExit(f"bench rule differs from decide on face {i}: {mine} vs {theirs}")


def open_set(m, templates, q: Quality, ds: list[Draw], s: MatchSettings) -> dict[str, float]:  # type: ignore[no-untyped-def]
    t = dict.fromkeys(
        (
            *("gen", "kept", "wrong", "grid", "str", "fk", "str_grid", "grid_faces"),
            *("grid_other", "any", "any_kept", "low_grid", "low_str_grid"),
        ),
        0,
    )
    for d in ds:
        any_age = Draw(d.refs, d.genuine_any, [], [])
        reasons, who, _ = _outcomes(m, any_age, s, q)
        t["any"] += len(reasons)
        t["any_kept"] += sum(
            r == "MATCHED_WITH_CONSENT" and p == truth
            for r, p, (_, truth) in zip(reasons, who, d.genuine_any, strict=True)
        )
    for n, d in enumerate(ds):
        got = _outcomes(m, d, s, q)
        if n % 7 == 0:
            _check(templates, d, s, q, got)
        reasons, who, probes = got
        truths = [p for _, p in d.genuine] + [None] * len(d.strangers)
        for reason, pupil, truth, i in zip(reasons, who, truths, probes, strict=True):
            kept = reason == "MATCHED_WITH_CONSENT"
            in_grid = pupil is not None  # kept, or uncertain with a candidate
            low = in_grid and q.gate(i, s) is not None  # in a grid marked low quality
            t["low_grid"] += low and pupil == truth
            t["low_str_grid"] += low and truth is None
            if truth is None:
                t["str"] += 1
                t["fk"] += kept
                t["str_grid"] += in_grid
            else:
                t["gen"] += 1
                t["kept"] += kept and pupil == truth
                t["wrong"] += kept and pupil != truth
                t["grid"] += in_grid and pupil == truth
            t["grid_faces"] += in_grid
            t["grid_other"] += in_grid and pupil != truth
    return t


def sweep_rows() -> dict[str, list[MatchSettings]]:
    """Each recogniser's defaults first, then one change at a time around them."""
    rows: dict[str, list[MatchSettings]] = {}
    for k, changes in (
        ("dlib", ((0.40, 0.08, 0.50), (0.36, 0.08, 0.42), (0.34, 0.08, 0.42))),
        (
            "sface",
            (
                (0.34, 0.12, 0.45),
                (0.36, 0.12, 0.45),
                (0.40, 0.12, 0.45),
                (0.42, 0.12, 0.45),
                (0.37, 0.08, 0.45),
                (0.37, 0.10, 0.45),
                (0.37, 0.15, 0.45),
                (0.37, 0.12, 0.42),
                (0.37, 0.12, 0.48),
                (0.37, 0.12, 0.50),
            ),
        ),
    ):
        base = match_settings(k)
        rows[k] = [base] + [replace(base, tolerance=t, margin=m, review=r) for t, m, r in changes]
    # Fusion by the same rule (tail-fit thresholds at 1e-4 and 1e-3, section 3), a margin
    # about SFace's in its units (0.12 / SFace's sd 0.086 = 1.4 z for one of the two), and
    # looser keeps.
    fusion = MatchSettings(
        tolerance=-5.2,
        margin=1.0,
        agreement=0.8,
        sibling_margin=1.5,
        recogniser="fusion",
        review=-4.5,
    )
    rows["fusion"] = [fusion] + [
        replace(fusion, tolerance=t, margin=m, review=r)
        for t, m, r in ((-4.8, 1.0, -4.5), (-4.8, 0.6, -4.2), (-4.4, 1.2, -3.7))
    ]
    return rows


def product_quality(f: Faces, child: np.ndarray, pf, s: MatchSettings) -> Quality:  # type: ignore[no-untyped-def]
    """The product's gates on the children's faces (`ProductFaces`): yaw and sharpness as
    pipeline.analysis measures them, uncompared where no face or template was found or the
    face is under the minimum size (then neither gate is measured)."""
    n = len(f.files)
    yaw, sharp, uncompared = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, bool)
    out = ~pf.found | (pf.size_px < s.min_face_px)
    uncompared[child] = out
    yaw[child] = np.where(out, np.nan, pf.yaw)
    sharp[child] = np.where(out, np.nan, pf.sharpness)
    return Quality(yaw, sharp, uncompared)


def lost_photos(f: Faces, m: np.ndarray, q: Quality, ds: list[Draw], s: MatchSettings) -> None:
    """Why each genuine photo that misses its pupil's grid in some draw misses it: not
    found, a quality gate, another pupil nearer (that pupil's grid), or its own pupil
    beyond the review band; with its distances to its own pupil and the nearest other."""
    per: dict[int, dict] = {}  # type: ignore[type-arg]
    causes: Counter[str] = Counter()
    total = 0
    by_child: dict[str, list[int]] = {}  # child -> [decisions, reaching the grid]
    for d in ds:
        _, who, _ = _outcomes(m, d, s, q)
        for row, (i, truth) in enumerate(d.genuine):
            total += 1
            tally = by_child.setdefault(truth, [0, 0])
            tally[0] += 1
            if who[row] == truth:
                tally[1] += 1
                continue
            own = float(m[i, d.refs[truth]].min())
            other = min(float(m[i, d.refs[p]].min()) for p in d.refs if p != truth)
            gate = q.gate(i, s)
            if q.uncompared[i]:
                why = "not found, or no template"
            elif gate is not None and not s.review_low_quality:
                why = f"quality gate ({gate}), not compared"
            elif who[row] is not None:
                why = "another pupil nearer: in that pupil's grid"
            elif own > (s.review or s.tolerance):
                why = "own pupil beyond the review band"
            else:
                why = "other"
            causes[why] += 1
            e = per.setdefault(i, {"lost": 0, "why": Counter(), "own": [], "other": []})
            e["lost"] += 1
            e["why"][why] += 1
            e["own"].append(own)
            e["other"].append(other)
    draws_of = Counter(i for d in ds for i, _ in d.genuine)
    lost = sum(causes.values())
    # The children are the unit that varies (one photo a year each): resample them.
    counts = np.array(list(by_child.values()), float)
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(2000):
        pick = counts[rng.integers(0, len(counts), len(counts))]
        boots.append(pick[:, 1].sum() / pick[:, 0].sum())
    lo, hi = np.percentile(boots, [2.5, 97.5])
    print(
        f"    reach {100 * (1 - lost / max(total, 1)):.1f}%; resampling the {len(counts)} "
        f"children (2,000 times): 95% of resamples between {100 * lo:.1f}% and {100 * hi:.1f}%"
    )
    print(
        f"    lost {lost} of {total} genuine (photo, draw) decisions, {len(per)} distinct photos: "
        + "; ".join(f"{why} {n}" for why, n in causes.most_common())
    )
    print(
        "    photo              sharpness  yaw   lost/draws  own pupil (median)  nearest other  why"
    )
    for i, e in sorted(per.items(), key=lambda kv: (-kv[1]["lost"] / draws_of[kv[0]], kv[0])):
        print(
            f"    {Path(f.files[i]).name:18s} {q.sharp[i]:9.0f} {q.yaw[i]:5.0f} "
            f"{e['lost']:5d}/{draws_of[i]:<5d}  {np.median(e['own']):10.3f}"
            f"          {np.median(e['other']):8.3f}     "
            + ", ".join(f"{w} ({n})" for w, n in e["why"].most_common())
        )


def product_path(f, dist, templates, yaw, plans, args) -> None:  # type: ignore[no-untyped-def]
    """Section 6: the SFace default open set again, the faces as the product sees them.

    Rows, on the same children and protocol as section 4:
      bench      section 4's row (dlib HOG boxes, no quality gate, any photo a reference);
      + gates    the same templates, but a reference only from a photo enrolment accepts
                 and a probe decided as the product's gates decide it (the detection
                 stage finds it; size, sharpness and yaw as pipeline.analysis measures them);
      product    as "+ gates", and every template made as publish and enroll make it (the
                 detection stage's box, then dlib's landmarks in it, then SFace);
      ... low-q  the same with review of low-quality faces on (what a review batch does:
                 a face failing only the sharpness or yaw gate is compared, and goes to
                 review when within the review band; it is never kept).
    Then, gallery 37 with 3 references through the product: every genuine photo that
    misses its pupil's grid, and why.
    """
    from matching_faces import product_faces

    s = match_settings("sface")
    low = replace(s, review_low_quality=True)
    child = np.flatnonzero(f.kind == "child")
    pf = product_faces([f.files[i] for i in child], refresh=args.refresh)
    prod_t = np.zeros_like(templates["sface"])
    prod_t[child] = pf.sface
    unit = prod_t / np.maximum(np.linalg.norm(prod_t, axis=1, keepdims=True), 1e-12)
    prod_m = 1.0 - unit @ unit.T
    pq = product_quality(f, child, pf, s)
    eligible = np.zeros(len(f.files), bool)
    eligible[child] = pf.reference_ok
    blurred = pf.found & (pf.sharpness < s.min_sharpness)
    turned = pf.found & (np.abs(np.nan_to_num(pf.yaw)) > s.max_yaw)
    print(
        "\n6. The SFace default through the product's path (detection stage's boxes, quality "
        "gates, enrolment's reference gate)"
    )
    print(
        f"  children's faces: {len(child)}; not found or no template {int((~pf.found).sum())}, "
        f"under {s.min_face_px} px {int((pf.found & (pf.size_px < s.min_face_px)).sum())}, "
        f"below the keep's gates: sharpness under {s.min_sharpness:.0f} {int(blurred.sum())}, "
        f"turned past {s.max_yaw:.0f} {int(turned.sum())}; enrolment refuses "
        f"{int((~pf.reference_ok).sum())} as references"
    )
    agree = 1.0 - np.sum(unit[child] * templates["sface"][child], axis=1)
    ok = pf.found
    print(
        "  product template vs the bench's, same photo (cosine distance): median "
        f"{np.median(agree[ok]):.3f}, over 0.1: {int((agree[ok] > 0.1).sum())} of {int(ok.sum())}"
    )
    gated_plans = {}
    for (g, r), ds in plans.items():
        gated_ds = gated_plans[(g, r)] = draws(f, g, r, args.draws, eligible)
        for label, m, t, qq, dd, rule in (
            ("bench", dist["sface"], templates["sface"], Quality.of_yaw(yaw), ds, s),
            ("+ gates", dist["sface"], templates["sface"], pq, gated_ds, s),
            ("product", prod_m, unit, pq, gated_ds, s),
            ("+ gates, low-q", dist["sface"], templates["sface"], pq, gated_ds, low),
            ("product, low-q", prod_m, unit, pq, gated_ds, low),
        ):
            o = open_set(m, t, qq, dd, rule)
            share = o["grid_other"] / max(o["grid_faces"], 1)
            print(
                f"  {label:14s} gallery {g:>3s} refs {r} | fk {1000 * o['fk'] / max(o['str'], 1):5.1f}"
                f" wrong {o['wrong']:3d} kept {100 * o['kept'] / max(o['gen'], 1):5.1f}%"
                f" | reach {100 * o['grid'] / max(o['gen'], 1):5.1f}%"
                f"  str->grid/1000 {1000 * o['str_grid'] / max(o['str'], 1):6.1f}"
                f"  not-the-pupil {100 * share:4.1f}% ({o['grid_other']} of {o['grid_faces']})"
                f"  low-q in grids: genuine {o['low_grid']}, strangers {o['low_str_grid']}"
                f"  [{o['gen']} genuine, {o['str']} stranger photos]",
                flush=True,
            )
    for rule, name in ((s, "review of low-quality faces off"), (low, "on")):
        print(f"  genuine photos missing their pupil's grid, product, gallery 37, 3 refs ({name}):")
        lost_photos(f, prod_m, pq, gated_plans[("37", 3)], rule)
    return pf, prod_m, unit, pq, gated_plans


BLUR_WIDTHS = (0.02, 0.04)


def blurred_faces(f: Faces, child: np.ndarray, width: float, refresh: bool):  # type: ignore[no-untyped-def]
    """The children's photos blurred (Gaussian, sigma ``width`` times the face's width),
    through the product's path like `matching_faces.product_faces`: (templates (n, 128),
    found, size px, sharpness, yaw), cached in /tmp."""
    import hashlib

    key = hashlib.sha256(("\n".join(f.files[i] for i in child) + f"|{width}").encode()).hexdigest()[
        :16
    ]
    cache = Path(f"/tmp/photoconsent-bench-blurred-faces-{key}.npz")
    if cache.exists() and not refresh:
        z = np.load(cache)
        return z["sface"], z["found"], z["size_px"], z["sharpness"], z["yaw"]
    import cv2

    from pipeline.detection import DetectionSettings, DetectionStage
    from pipeline.loading import load_image
    from pipeline.matching import sharpness
    from pipeline.recognisers import SFaceRecogniser, dlib_landmarks, five_points

    stage, rec = DetectionStage(DetectionSettings()), SFaceRecogniser()
    n = len(child)
    out = (np.zeros((n, 128)), np.zeros(n, bool), np.zeros(n), np.zeros(n), np.full(n, np.nan))
    for k, i in enumerate(child):
        loaded = load_image(Path(f.files[i]))
        px = cv2.GaussianBlur(loaded.pixels, (0, 0), max(width * float(f.box_px[i]), 0.5))
        dets = stage.detect(px, orientation_known=loaded.orientation_tagged)
        if not dets:
            continue
        box = max(dets, key=lambda d: d.box.area).box
        marks = dlib_landmarks(px, [box])[0]
        out[2][k], out[3][k] = box.size, sharpness(px, box)
        out[4][k] = np.nan if marks is None else yaw_from_landmarks(five_points(marks))
        enc = rec.encode(px, [box])[0]
        if enc is not None:
            out[0][k], out[1][k] = enc, True
    np.savez(cache, sface=out[0], found=out[1], size_px=out[2], sharpness=out[3], yaw=out[4])
    return out


def blurred_probes(f, product, args) -> None:  # type: ignore[no-untyped-def]
    """Section 7: do blurred faces drift towards everybody's? FG-NET has 10 children's
    faces under the sharpness gate, too few to say how often a blurred stranger comes
    within the review band. So every child's photo is blurred (two strengths) and sent
    through the product's path as a probe against the sharp references: the impostor and
    genuine rates at the band, the threshold the review band's rule (1 in 1,000 pairs of
    different children, pipeline.calibration.threshold_at) gives for blurred probes,
    cross-validated over halves of the children, and the open set with every probe
    blurred, review of low-quality faces on."""
    pf, prod_m, unit, pq, gated_plans = product
    s = replace(match_settings("sface"), review_low_quality=True)
    child = np.flatnonzero(f.kind == "child")
    n = len(f.files)
    people = sorted(set(f.person[child]))
    print(
        "\n7. Blurred faces as probes (every child's photo blurred, through the product's path;"
        " references sharp, as enrolment requires)"
    )
    sharp_ok = np.zeros(n, bool)
    sharp_ok[child] = pf.found
    for width in BLUR_WIDTHS:
        bt, bfound, bsize, bsharp, byaw = blurred_faces(f, child, width, args.refresh)
        b_unit = np.zeros_like(unit)
        b_unit[child] = bt / np.maximum(np.linalg.norm(bt, axis=1, keepdims=True), 1e-12)
        found = np.zeros(n, bool)
        found[child] = bfound
        cross = 1.0 - b_unit @ unit.T  # blurred probe (row) against sharp template (column)
        gated = found.copy()
        gated[child] &= bsharp < s.min_sharpness
        print(
            f"  blur sigma {width:.0%} of the face's width: found and encoded {int(bfound.sum())}"
            f" of {len(child)}; sharpness median {np.median(bsharp[bfound]):.0f}, under "
            f"{s.min_sharpness:.0f}: {int((bfound & (bsharp < s.min_sharpness)).sum())}"
        )
        pairs_i, pairs_j = np.meshgrid(child, child, indexing="ij")
        pi, pj = pairs_i.ravel(), pairs_j.ravel()
        valid = gated[pi] & sharp_ok[pj] & (pi != pj)
        same = f.person[pi] == f.person[pj]
        near = same & (np.abs(f.age[pi] - f.age[pj]) <= 2)
        d = cross[pi, pj]
        imp, gen = d[valid & ~same], d[valid & near]
        sharp_pairs = prod_m[pi, pj]
        sv = sharp_ok[pi] & sharp_ok[pj] & (pi < pj)
        print(
            f"    probes under the gate against sharp references: impostor pairs within the review"
            f" band {s.review}: {np.mean(imp <= s.review):.1e} of {len(imp)} (sharp against sharp"
            f" {np.mean(sharp_pairs[sv & ~same] <= s.review):.1e}); within the tolerance "
            f"{s.tolerance}: {np.mean(imp <= s.tolerance):.1e}; nearest impostor pair "
            f"{imp.min():.3f}; genuine pairs (2 years) within the band "
            f"{100 * np.mean(gen <= s.review):.1f}% of {len(gen)} (sharp "
            f"{100 * np.mean(sharp_pairs[sv & near] <= s.review):.1f}%)"
        )
        whole = threshold_at(imp, 1e-3)
        thr, held = [], []
        for r in range(args.cv):
            half = set(random.Random(1000 + r).sample(people, len(people) // 2))
            a = np.isin(f.person[pi], list(half)) & np.isin(f.person[pj], list(half))
            b = ~np.isin(f.person[pi], list(half)) & ~np.isin(f.person[pj], list(half))
            t = threshold_at(d[valid & ~same & a], 1e-3)
            thr.append(t)
            held.append(np.mean(d[valid & ~same & b] <= t))
        print(
            f"    the review band's rule (1e-3) on these impostor pairs: {whole:.3f} (halves "
            f"{np.mean(thr):.3f} +- {np.std(thr):.3f}, held-out FMR {np.mean(held):.1e})"
        )
        # The open set with every probe replaced by its blurred photo (index + n).
        both_t = np.vstack([unit, b_unit])
        both_m = 1.0 - both_t @ both_t.T
        yaw2, sharp2, unc2 = np.full(n, np.nan), np.full(n, np.nan), np.ones(n, bool)
        ok2 = bfound & (bsize >= s.min_face_px)
        unc2[child] = ~ok2
        yaw2[child] = np.where(ok2, byaw, np.nan)
        sharp2[child] = np.where(ok2, bsharp, np.nan)
        q = Quality(
            np.concatenate([pq.yaw, yaw2]),
            np.concatenate([pq.sharp, sharp2]),
            np.concatenate([pq.uncompared, unc2]),
        )
        for (g, r), ds in gated_plans.items():
            shifted = [
                Draw(
                    dd.refs,
                    [(i + n, p) for i, p in dd.genuine],
                    [i + n for i in dd.strangers],
                    [(i + n, p) for i, p in dd.genuine_any],
                )
                for dd in ds
            ]
            o = open_set(both_m, both_t, q, shifted, s)
            share = o["grid_other"] / max(o["grid_faces"], 1)
            print(
                f"    every probe blurred, gallery {g:>3s} refs {r} | fk "
                f"{1000 * o['fk'] / max(o['str'], 1):5.1f} wrong {o['wrong']:3d} kept "
                f"{100 * o['kept'] / max(o['gen'], 1):5.1f}% | reach "
                f"{100 * o['grid'] / max(o['gen'], 1):5.1f}%  str->grid/1000 "
                f"{1000 * o['str_grid'] / max(o['str'], 1):6.1f}  not-the-pupil {100 * share:4.1f}%"
                f" ({o['grid_other']} of {o['grid_faces']})  [{o['gen']} genuine, {o['str']} "
                "stranger photos]",
                flush=True,
            )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("eval_dir", nargs="?", default=str(ROOT.parent / "shared" / "eval"))
    ap.add_argument("--draws", type=int, default=3, help="reference draws per stranger")
    ap.add_argument("--cv", type=int, default=20, help="random halves for the thresholds")
    ap.add_argument(
        "--refresh", action="store_true", help="encode (and time) every face again, not from /tmp"
    )
    ap.add_argument(
        "--product",
        action="store_true",
        help="only sections 6 and 7 (the product's path, blurred probes)",
    )
    args = ap.parse_args()
    eval_dir = Path(args.eval_dir)
    if not (eval_dir / "fgnet_children").is_dir() or not (eval_dir / "lfw").is_dir():
        print(f"Error: {eval_dir} has no fgnet_children/ and lfw/ folders.", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    f = faces(eval_dir, refresh=args.refresh)
    dist, templates, norm = matrices(f)
    # Fusion is measured here, not offered (docs/matching.md): decide learns its distance
    # for this run only, so that the checks against decide cover it too.
    distances_module.DISTANCES["fusion"] = norm.fused
    yaw = np.array([yaw_from_landmarks(p) for p in f.points5])
    child = f.kind == "child"
    print(
        f"faces: {child.sum()} of children ({len(set(f.person[child]))} children, ages 3-16), "
        f"{(f.kind == 'adult').sum()} of adults, from {f.photos} photos"
    )
    print(
        f"fusion normalisation (LFW impostor pairs): dlib mean {norm.dlib[0]:.4f} sd "
        f"{norm.dlib[1]:.4f}; sface mean {norm.sface[0]:.4f} sd {norm.sface[1]:.4f}"
    )
    if args.product:
        plans = {(g, r): draws(f, g, r, args.draws) for g in ("10", "37") for r in (1, 3)}
        blurred_probes(f, product_path(f, dist, templates, yaw, plans, args), args)
        print(f"\n(run took {time.perf_counter() - t0:.0f} s)")
        return 0
    ms = f.ms
    per_face = {
        "dlib": ms["dlib"],
        "sface": ms["landmarks68"] + ms["sface_net"],
        "fusion": ms["dlib"] + ms["landmarks68"] + ms["sface_net"],
    }
    print("\n1. Time per face (encoding only; detection excluded):")
    print("  mean over every face, when they were encoded:")
    print(
        "  "
        + ", ".join(
            f"{k} {v:.0f} ms ({v / per_face['dlib']:.2f}x dlib)" for k, v in per_face.items()
        )
    )
    now = time_side_by_side(f)
    print("  now, median of 3 rounds over 20 children's faces, the recognisers taking turns:")
    print("  " + ", ".join(f"{k} {v:.0f} ms ({v / now['dlib']:.2f}x dlib)" for k, v in now.items()))
    det_table(f, dist)
    cv_thresholds(f, dist, args.cv)
    print(
        "\n4. Children open set (permitted = every enrolled child; review band on). "
        "fk = false keeps per 1,000 stranger photos"
    )
    print(
        "  recogniser tol/margin/review  gallery refs |   fk   wrong  kept (any age) | grid  "
        "  str->grid/1000  not-the-pupil in grids (this mix; the stranger share that keeps 1 in 20)"
    )
    plans = {(g, r): draws(f, g, r, args.draws) for g in ("10", "37") for r in (1, 3)}
    for k, rows in sweep_rows().items():
        for n, s in enumerate(rows):
            for (g, r), ds in plans.items():
                t = open_set(dist[k], templates[k], Quality.of_yaw(yaw), ds, s)
                label = "default" if n == 0 and k != "fusion" else ""
                share = t["grid_other"] / max(t["grid_faces"], 1)
                # The share of strangers among an event's faces up to which grids keep
                # within 1 in 20 (x*q / (x*q + (1-x)*p) <= 0.05; q, p the rates above).
                p = t["grid"] / max(t["gen"], 1)
                q = t["str_grid"] / max(t["str"], 1)
                mix = 0.05 * p / (0.05 * p + 0.95 * q) if q else 1.0
                print(
                    f"  {k:7s} {s.tolerance:5.2f}/{s.margin:4.2f}/{s.review:5.2f} {label:7s}"
                    f" {g:>3s} {r:4d} | {1000 * t['fk'] / max(t['str'], 1):5.1f} {t['wrong']:5d}"
                    f" {100 * t['kept'] / max(t['gen'], 1):5.1f}%"
                    f" ({100 * t['any_kept'] / max(t['any'], 1):4.1f}%)"
                    f" | {100 * t['grid'] / max(t['gen'], 1):5.1f}%"
                    f" {1000 * t['str_grid'] / max(t['str'], 1):8.1f}"
                    f"   {100 * share:5.1f}% ({t['grid_other']} of {t['grid_faces']})"
                    f"  <=1/20 up to {100 * mix:3.0f}% strangers"
                    f"  [{t['gen']} genuine, {t['str']} stranger photos]"
                )
    print("\n5. Pose (yaw from the five landmarks, degrees from frontal)")
    for label, mask in (("children", child), ("adults", ~child)):
        q = np.percentile(np.abs(yaw[mask]), [50, 90, 99])
        beyond = int((np.abs(yaw[mask]) > match_settings("sface").max_yaw).sum())
        print(
            f"  {label}: median {q[0]:.0f}, 90% within {q[1]:.0f}, 99% within {q[2]:.0f}; "
            f"{beyond} beyond the limit of {match_settings('sface').max_yaw:.0f}"
        )
    n = len(yaw)
    iu = np.triu_indices(n, 1)
    same = (f.person[:, None] == f.person[None])[iu]
    worst = np.maximum(np.abs(yaw[iu[0]]), np.abs(yaw[iu[1]]))
    for k in ("dlib", "sface"):
        rule = match_settings(k)
        d = dist[k][iu]
        print(
            f"  {k} pairs by the more turned face (all faces): true match rate at its tolerance,"
            " false match rate at its review band"
        )
        for lo, hi in ((0, 15), (15, 30), (30, 40), (40, 50), (50, 90)):
            m = (worst >= lo) & (worst < hi)
            faces_in = int(((np.abs(yaw) >= lo) & (np.abs(yaw) < hi)).sum())
            print(
                f"    {lo:2d}-{hi:2d} degrees: {faces_in:3d} faces; TMR {100 * np.mean(d[m & same] <= rule.tolerance):5.1f}%"
                f" of {int((m & same).sum())} genuine pairs, FMR {np.mean(d[m & ~same] <= rule.review):.1e}"
                f" of {int((m & ~same).sum())} impostor pairs"
            )
    s = match_settings("sface")
    for g, r in (("37", 3), ("10", 1)):
        on = open_set(dist["sface"], templates["sface"], Quality.of_yaw(yaw), plans[(g, r)], s)
        off = open_set(
            dist["sface"],
            templates["sface"],
            Quality.of_yaw(yaw),
            plans[(g, r)],
            replace(s, max_yaw=None),
        )
        print(
            f"  sface default, gallery {g}, {r} ref: with the yaw limit fk {1000 * on['fk'] / on['str']:.1f}/1000, "
            f"kept {100 * on['kept'] / on['gen']:.1f}%; without it fk {1000 * off['fk'] / off['str']:.1f}, "
            f"kept {100 * off['kept'] / off['gen']:.1f}%"
        )
    product = product_path(f, dist, templates, yaw, plans, args)
    blurred_probes(f, product, args)
    print(f"\n(run took {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
