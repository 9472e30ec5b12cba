"""Calibration maths on synthetic galleries (exact where deterministic)."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from pipeline.calibration import (
    KEEP_FMR,
    REVIEW_FMR,
    calibrate,
    pair_distances,
    plot,
    tail_fit,
    threshold_at,
)


def point(*coords: float) -> np.ndarray:
    v = np.zeros(128)
    v[: len(coords)] = coords
    return v


def test_pair_distances_split_genuine_impostor_and_sibling():
    gallery = {
        "A": np.array([point(0), point(0.3)]),
        "B": np.array([point(1)]),
        "C": np.array([point(0, 2)]),
    }
    genuine, impostor, sibling = pair_distances(gallery, {"A": frozenset({"B"})})
    assert genuine.tolist() == pytest.approx([0.3])
    assert sorted(sibling.tolist()) == pytest.approx([0.7, 1.0])
    assert sorted(impostor.tolist()) == pytest.approx(
        sorted([2.0, np.hypot(0.3, 2), np.hypot(1, 2)])
    )


def random_gallery(pupils: int, refs: int, spread: float, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(pupils):
        centre = rng.normal(0, 0.09, 128)  # different pupils sit about 1.0-1.4 apart
        out[f"P{i:03d}"] = centre + rng.normal(0, spread / np.sqrt(128), (refs, 128))
    return out


def test_well_separated_gallery_gets_a_recommendation_and_bigger_galleries_a_stricter_one():
    gallery = random_gallery(40, 3, spread=0.25)
    small = calibrate(gallery, gallery_size=10)
    large = calibrate(gallery, gallery_size=400)
    assert small.recommended is not None and large.recommended is not None
    assert large.recommended <= small.recommended
    for row in small.rows:  # never above target at the recommended tolerance
        if row.tolerance == small.recommended:
            assert row.false_keep_per_face <= small.target


def test_estimates_rise_with_tolerance_and_gallery_size():
    gallery = random_gallery(30, 2, spread=0.3)
    rows = calibrate(gallery).rows
    fk = [r.false_keep_per_face for r in rows]
    assert fk == sorted(fk)
    assert calibrate(gallery, gallery_size=300).rows[-1].false_keep_per_face >= fk[-1]


def test_too_few_references_are_warned_about():
    cal = calibrate(random_gallery(5, 1, spread=0.3))
    assert any("No pupil has two or more references" in w for w in cal.warnings)
    assert any("too few to show" in w for w in cal.warnings)


def test_one_pupil_cannot_be_calibrated():
    cal = calibrate(random_gallery(1, 3, spread=0.3))
    assert cal.recommended is None and cal.rows == []
    assert "Fewer than two pupils" in cal.warnings[0]


def test_tail_fit_matches_the_quantiles_of_a_normal_sample():
    sample = np.random.default_rng(1).normal(0.85, 0.1, 200_000)
    mean, sd = tail_fit(sample)
    assert mean == pytest.approx(0.85, abs=0.01)
    assert sd == pytest.approx(0.1, abs=0.01)


def test_plot_writes_a_png(tmp_path):
    cal = calibrate(random_gallery(10, 2, spread=0.3))
    out = tmp_path / "cal.png"
    plot(cal, str(out), 0.4)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pair_distances_are_the_recognisers_own():
    gallery = {"A": np.array([point(1, 0), point(3, 0)]), "B": np.array([point(0, 2)])}
    genuine, impostor, _ = pair_distances(gallery, recogniser="sface")
    assert genuine.tolist() == pytest.approx([0.0])  # same direction, cosine 0
    assert impostor.tolist() == pytest.approx([1.0, 1.0])  # orthogonal
    with pytest.raises(ValueError):
        pair_distances(gallery, recogniser="nope")


def test_threshold_at_is_never_looser_than_observed_nor_than_the_fit():
    sample = np.random.default_rng(2).normal(0.8, 0.1, 100_000)
    for fmr in (1e-2, 1e-3, 1e-4):
        t = threshold_at(sample, fmr)
        assert t <= np.quantile(sample, fmr, method="lower") + 1e-12
        assert np.mean(sample <= t) <= fmr
        mean, sd = tail_fit(sample)
        assert t <= NormalDist(mean, sd).inv_cdf(fmr) + 1e-12
        assert t == pytest.approx(0.8 + 0.1 * NormalDist().inv_cdf(fmr), abs=0.02)
    # A light lower tail (all mass above 0.6): the fit still reaches below it.
    light = np.random.default_rng(3).uniform(0.6, 1.0, 10_000)
    assert threshold_at(light, 1e-4) < 0.6
    with pytest.raises(ValueError):
        threshold_at(np.array([0.5]), 1e-3)


def test_calibrate_applies_the_defaults_rule_and_warns_when_stricter():
    gallery = random_gallery(40, 3, spread=0.25)
    cal = calibrate(gallery, default_tolerance=1.2)
    genuine, impostor, _ = pair_distances(gallery)
    assert cal.rule_tolerance == pytest.approx(threshold_at(impostor, KEEP_FMR))
    assert cal.rule_review == pytest.approx(threshold_at(impostor, REVIEW_FMR))
    assert cal.rule_tolerance < cal.rule_review
    assert cal.rule_tolerance < 1.2  # impostors here sit 1.0-1.4 apart
    assert any("closer to each other than the children" in w for w in cal.warnings)
    relaxed = calibrate(gallery, default_tolerance=0.5)
    assert not any("closer to each other" in w for w in relaxed.warnings)
    report = cal.to_json()
    assert report["recogniser"] == "dlib"
    assert report["rule"]["keep_false_match_rate"] == KEEP_FMR
    assert report["rule"]["tolerance"] == pytest.approx(cal.rule_tolerance, abs=1e-4)


def test_calibrate_sface_templates_by_cosine():
    rng = np.random.default_rng(4)
    centres = rng.normal(0, 1, (30, 128))
    gallery = {
        f"P{i:02d}": (c + rng.normal(0, 0.3, (3, 128))) * rng.uniform(0.5, 2.0, (3, 1))
        for i, c in enumerate(centres)
    }
    cal = calibrate(gallery, recogniser="sface")
    assert cal.recogniser == "sface"
    # Scaling a template does not move a cosine distance: genuine pairs sit near 1 - 1/(1+0.09).
    assert float(np.median(cal.genuine)) == pytest.approx(0.08, abs=0.03)
    assert float(np.median(cal.impostor)) == pytest.approx(1.0, abs=0.05)
