"""Calibrating the matching tolerance on the school's own enrolled references.

Genuine distances are between two references of the same pupil; impostor distances are
between references of different pupils. From them: how often a genuine face would be kept
at a tolerance, and how likely an unenrolled child's face is to fall within tolerance of
*someone* in a gallery of G pupils (a false keep, if that pupil has consent):

    p_pupil = 1 - (1 - p_pair) ** refs_per_pupil      (nearest of a pupil's references)
    false keep per unenrolled face = 1 - (1 - p_pupil) ** G

``p_pair`` is the larger of the observed rate and a normal distribution fitted to the
*lower tail* of the impostor distances (matched at their 1% and 10% quantiles): a normal
fitted to all of them underestimated the observed tail tenfold on LFW, the tail fit was
within a factor of three, on the safe side. Where the sample is too small for its own
rule-of-three bound to show the target, ``calibrate`` says so: the figures then rest on
the fit. This is an estimate for the margin-free rule; the margin and agreement rules only
lower it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from pipeline.distances import distance_function

DEFAULT_TARGET = 1e-4  # at most one false keep per 10,000 unenrolled faces
TOLERANCE_GRID = tuple(round(0.20 + 0.01 * i, 2) for i in range(41))  # 0.20 .. 0.60
TABLE_TOLERANCES = (0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60)
# The rule behind every recogniser's defaults: keep within the distance that at most 1 in
# 10,000 pairs of different children come, review within 1 in 1,000 (conservative
# estimates, threshold_at). A gallery of G pupils with R references offers G*R such pairs
# per stranger; the margin rule removes most of what remains (bench/matching.py).
KEEP_FMR = 1e-4
REVIEW_FMR = 1e-3


@dataclass(frozen=True)
class CalibrationRow:
    """Estimates at one tolerance (rates are fractions, not percentages)."""

    tolerance: float
    genuine_kept: float | None  # share of genuine pairs within tolerance
    impostor_pairs_within: int  # impostor pairs observed within tolerance
    pair_rate: float  # conservative P(impostor pair within tolerance)
    false_keep_per_face: float  # for the gallery size


@dataclass(frozen=True)
class Calibration:
    """The school's distance distributions and what they say about the tolerance."""

    pupils: int
    references: int
    gallery_size: int
    target: float
    genuine: np.ndarray
    impostor: np.ndarray
    sibling: np.ndarray
    rows: list[CalibrationRow]
    recommended: float | None
    warnings: list[str] = field(default_factory=list)
    recogniser: str = "dlib"
    # The defaults' rule on these references: tolerance at KEEP_FMR, review at REVIEW_FMR.
    rule_tolerance: float | None = None
    rule_review: float | None = None

    def to_json(self) -> dict[str, object]:
        def summary(d: np.ndarray) -> dict[str, object]:
            if not len(d):
                return {"pairs": 0}
            return {
                "pairs": int(len(d)),
                "min": round(float(d.min()), 4),
                "median": round(float(np.median(d)), 4),
                "max": round(float(d.max()), 4),
            }

        return {
            "recogniser": self.recogniser,
            "pupils": self.pupils,
            "references": self.references,
            "gallery_size": self.gallery_size,
            "target_false_keep_per_face": self.target,
            "genuine": summary(self.genuine),
            "impostor": summary(self.impostor),
            "sibling": summary(self.sibling),
            "rows": [r.__dict__ for r in self.rows],
            "recommended_tolerance": self.recommended,
            "rule": {
                "keep_false_match_rate": KEEP_FMR,
                "tolerance": _round(self.rule_tolerance),
                "review_false_match_rate": REVIEW_FMR,
                "review": _round(self.rule_review),
            },
            "warnings": self.warnings,
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def pair_distances(
    gallery: Mapping[str, np.ndarray],
    siblings: Mapping[str, frozenset[str]] | None = None,
    recogniser: str = "dlib",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(genuine, impostor, sibling) distances between all pairs of references, by the
    recogniser's own distance."""
    distance = distance_function(recogniser)
    sibs = siblings or {}
    ids = sorted(gallery)
    genuine: list[float] = []
    impostor: list[float] = []
    sibling: list[float] = []
    for i, a in enumerate(ids):
        ra = np.asarray(gallery[a], np.float64)
        if len(ra) > 1:
            d = np.array([distance(ra, r) for r in ra])
            genuine.extend(d[np.triu_indices(len(ra), 1)])
        for b in ids[i + 1 :]:
            rb = np.asarray(gallery[b], np.float64)
            d = np.array([distance(rb, r) for r in ra])
            (sibling if b in sibs.get(a, frozenset()) else impostor).extend(d.ravel())
    return np.array(genuine), np.array(impostor), np.array(sibling)


def tail_fit(impostor: np.ndarray) -> tuple[float, float]:
    """(mean, sd) of the normal matching the 1% and 10% quantiles of ``impostor``."""
    q01, q10 = np.quantile(impostor, [0.01, 0.10])
    z01, z10 = -2.3263, -1.2816  # standard normal quantiles
    sd = max(float(q10 - q01) / (z10 - z01), 1e-3)
    return float(q01) - z01 * sd, sd


def threshold_at(impostor: np.ndarray, fmr: float) -> float:
    """The distance within which at most ``fmr`` of impostor pairs fall, estimated on the
    safe side: the lower of the observed quantile and the tail fit's (:func:`tail_fit`).
    The observed quantile alone cannot see below 1 / len(impostor); on FG-NET children
    the fit at 1e-4 sat 0.05 below the observed (bench/matching.py)."""
    d = np.asarray(impostor, np.float64)
    if len(d) < 2:
        raise ValueError("at least two impostor distances are needed")
    mean, sd = tail_fit(d)
    fitted = NormalDist(mean, sd).inv_cdf(fmr)
    observed = float(np.quantile(d, fmr, method="lower"))
    return min(fitted, observed)


def _normal_tail(t: float, mean: float, sd: float) -> float:
    """P(X < t) for X ~ Normal(mean, sd)."""
    return 0.5 * math.erfc((mean - t) / (sd * math.sqrt(2.0)))


def calibrate(
    gallery: Mapping[str, np.ndarray],
    *,
    gallery_size: int | None = None,
    target: float = DEFAULT_TARGET,
    siblings: Mapping[str, frozenset[str]] | None = None,
    recogniser: str = "dlib",
    default_tolerance: float | None = None,
) -> Calibration:
    """Estimate genuine keep rates and false keeps per unenrolled face by tolerance.

    ``gallery`` holds templates of ``recogniser`` (distances are its own). ``gallery_size``
    defaults to the number of enrolled pupils (a restricted --class gallery is smaller,
    so safer). The recommendation is the largest tolerance on a 0.01 grid whose
    conservative false-keep estimate is within ``target``. ``default_tolerance`` (the
    recogniser's default) is compared with the defaults' rule applied to these pupils.
    """
    pupils = len(gallery)
    refs = sum(len(v) for v in gallery.values())
    size = gallery_size or pupils
    genuine, impostor, sibling = pair_distances(gallery, siblings, recogniser)
    per_pupil = refs / pupils if pupils else 1.0
    warnings: list[str] = []
    if len(impostor) < 2:
        warnings.append("Fewer than two pupils are enrolled: nothing can be estimated.")
        return Calibration(
            pupils, refs, size, target, genuine, impostor, sibling, [], None, warnings, recogniser
        )
    mean, sd = tail_fit(impostor)
    rule_tol, rule_review = threshold_at(impostor, KEEP_FMR), threshold_at(impostor, REVIEW_FMR)

    def row(t: float) -> CalibrationRow:
        k = int((impostor < t).sum())
        p_pair = max(k / len(impostor), _normal_tail(t, mean, sd))
        p_pupil = 1.0 - (1.0 - p_pair) ** per_pupil
        keep = float((genuine < t).mean()) if len(genuine) else None
        return CalibrationRow(t, keep, k, p_pair, 1.0 - (1.0 - p_pupil) ** size)

    grid = [row(t) for t in TOLERANCE_GRID]
    ok = [r.tolerance for r in grid if r.false_keep_per_face <= target]
    recommended = max(ok) if ok else None
    if 3.0 / len(impostor) * per_pupil * size > target:
        warnings.append(
            f"{len(impostor)} impostor pairs are too few to show a rate of {target:g} per face "
            f"directly for {size} pupils; the figures lean on the fitted normal tail. Enrol "
            "more pupils or more references per pupil to firm them up."
        )
    if not len(genuine):
        warnings.append(
            "No pupil has two or more references, so how often a pupil's own face is kept "
            "cannot be estimated. Enrol at least two photos for several pupils."
        )
    elif len(genuine) < 20:
        warnings.append(f"Only {len(genuine)} genuine pairs: the keep rates are rough.")
    if recommended is None:
        warnings.append(
            f"No tolerance from 0.20 up meets the target of {target:g}; restrict the "
            "gallery with --class or --pupils, or use review."
        )
    if len(sibling) and recommended is not None and float(sibling.min()) < recommended:
        warnings.append(
            f"Named siblings come as close as {float(sibling.min()):.3f}: within the "
            "recommended tolerance. They are only told apart by the sibling margin."
        )
    if default_tolerance is not None and rule_tol < default_tolerance:
        warnings.append(
            f"Your pupils' references are closer to each other than the children the "
            f"defaults were set on: at a false match rate of {KEEP_FMR:g} per pair the "
            f"tolerance would be {rule_tol:.3f}, below the default {default_tolerance:.2f}. "
            f"Publish with --tolerance {math.floor(rule_tol * 100) / 100:.2f}, or restrict the "
            "gallery with --class."
        )
    rows = [r for r in grid if r.tolerance in TABLE_TOLERANCES or r.tolerance == recommended]
    return Calibration(
        pupils,
        refs,
        size,
        target,
        genuine,
        impostor,
        sibling,
        rows,
        recommended,
        warnings,
        recogniser,
        rule_tol,
        rule_review,
    )


def plot(cal: Calibration, path: str, tolerance: float) -> None:
    """Histograms of genuine (green) and impostor (red) distances, with the tolerance
    marked, as a PNG (drawn with Pillow: no plotting library needed)."""
    from PIL import Image, ImageDraw

    w, h, pad = 800, 420, 50
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    bins = np.linspace(0.0, 1.2, 61)
    series = [(cal.impostor, (200, 40, 40)), (cal.genuine, (30, 140, 60))]
    if len(cal.sibling):
        series.append((cal.sibling, (230, 140, 0)))
    hists = [(np.histogram(d, bins)[0] / max(len(d), 1), c) for d, c in series if len(d)]
    top = max((float(hh.max()) for hh, _ in hists), default=1.0) or 1.0

    def x(v: float) -> float:
        return pad + (w - 2 * pad) * v / 1.2

    def y(frac: float) -> float:
        return h - pad - (h - 2 * pad) * frac / top

    draw.line([(pad, h - pad), (w - pad, h - pad)], fill="black")
    for tick in np.arange(0.0, 1.21, 0.2):
        draw.line([(x(tick), h - pad), (x(tick), h - pad + 5)], fill="black")
        draw.text((x(tick) - 10, h - pad + 8), f"{tick:.1f}", fill="black")
    for hh, colour in hists:
        points = [(x(float(bins[i] + bins[i + 1]) / 2), y(float(v))) for i, v in enumerate(hh)]
        draw.line(points, fill=colour, width=2)
    draw.line([(x(tolerance), pad), (x(tolerance), h - pad)], fill="blue", width=2)
    draw.text((x(tolerance) + 4, pad), f"tolerance {tolerance:.2f}", fill="blue")
    draw.text((pad, 12), "face distance: same pupil (green), different pupils (red)", fill="black")
    if len(cal.sibling):
        draw.text((pad, 26), "siblings (orange)", fill="black")
    img.save(path, "PNG")
