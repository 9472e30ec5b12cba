"""The keep-or-blur rule on synthetic encodings: exact, no model needed."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.boxes import Box
from pipeline.matching import Decision, MatchSettings, Reason, decide
from tests.support.embeddings import near, three_pupil_gallery, unit

BIG = Box(0, 0, 100, 100)
SMALL = Box(0, 0, 40, 40)
S = MatchSettings(tolerance=0.4, margin=0.08, min_face_px=60)


GALLERY = three_pupil_gallery()


@pytest.mark.parametrize(
    "box, enc, permitted, decision, reason, pupil",
    [
        (BIG, near(unit(0), 0.2), {"P1"}, Decision.KEPT, Reason.MATCHED_WITH_CONSENT, "P1"),
        (BIG, near(unit(0), 0.39), {"P1"}, Decision.KEPT, Reason.MATCHED_WITH_CONSENT, "P1"),
        (BIG, near(unit(0), 0.41), {"P1"}, Decision.BLURRED, Reason.NO_MATCH, None),
        (BIG, near(unit(0), 0.2), {"P2"}, Decision.BLURRED, Reason.NO_CONSENT, "P1"),
        (BIG, near(unit(0), 0.2), set(), Decision.BLURRED, Reason.NO_CONSENT, "P1"),
        (SMALL, near(unit(0), 0.0), {"P1"}, Decision.BLURRED, Reason.TOO_SMALL, None),
        (BIG, None, {"P1"}, Decision.BLURRED, Reason.NOT_ENCODABLE, None),
    ],
)
def test_decision_table(box, enc, permitted, decision, reason, pupil):
    [d] = decide([box], [enc], GALLERY, permitted, S)
    assert (d.decision, d.reason, d.pupil_id) == (decision, reason, pupil)


def test_ambiguous_between_two_close_pupils_is_blurred():
    # Halfway between P1 and P2 but pulled slightly to P1: both within tolerance of the
    # face and less than the margin apart.
    a, b = np.zeros(128), np.zeros(128)
    a[0], b[0], b[1] = 1.0, 1.0, 0.3  # P1 and a look-alike P9 0.3 apart
    gallery = {"P1": np.array([a]), "P9": np.array([b])}
    face = a.copy()
    face[1] = 0.14  # 0.14 from P1, 0.16 from P9: margin 0.02 < 0.08
    [d] = decide([BIG], [face], gallery, {"P1", "P9"}, S)
    assert (d.decision, d.reason) == (Decision.BLURRED, Reason.AMBIGUOUS)


def test_nearest_reference_of_a_pupil_counts():
    second = near(unit(0), 0.3, axis=50)  # another photo of P1, 0.3 from the first
    gallery = {"P1": np.array([second, unit(0)])}
    [d] = decide([BIG], [near(unit(0), 0.1)], gallery, {"P1"}, S)
    assert d.decision is Decision.KEPT
    assert d.distance == pytest.approx(0.1)


def test_references_that_disagree_blur_the_face():
    # One reference is near the face, the other is somebody else entirely: mean 0.76.
    gallery = {"P1": np.array([unit(5), unit(0)])}
    [d] = decide([BIG], [near(unit(0), 0.1)], gallery, {"P1"}, S)
    assert (d.decision, d.reason) == (Decision.BLURRED, Reason.REFERENCES_DISAGREE)


@pytest.mark.parametrize(
    "sharp, decision",
    [(None, Decision.KEPT), (S.min_sharpness, Decision.KEPT), (S.min_sharpness - 1, None)],
)
def test_a_blurred_face_is_never_kept(sharp, decision):
    [d] = decide([BIG], [near(unit(0), 0.1)], GALLERY, {"P1"}, S, sharpness=[sharp])
    if decision is None:
        assert (d.decision, d.reason) == (Decision.BLURRED, Reason.TOO_BLURRED)
    else:
        assert d.decision is decision


def test_siblings_need_the_wider_margin():
    a, b = np.zeros(128), np.zeros(128)
    a[0], b[0], b[1] = 1.0, 1.0, 0.4  # P1 and P2 0.4 apart
    gallery = {"P1": np.array([a]), "P2": np.array([b])}
    face = a.copy()
    face[1] = 0.1  # 0.1 from P1, 0.3 from P2: margin 0.2
    strangers = decide([BIG], [face], gallery, {"P1", "P2"}, S)
    [d] = strangers
    assert d.decision is Decision.KEPT  # 0.2 >= the ordinary margin 0.08
    tighter = MatchSettings(tolerance=0.4, margin=0.08, sibling_margin=0.25)
    sibs = {"P1": frozenset({"P2"}), "P2": frozenset({"P1"})}
    [d] = decide([BIG], [face], gallery, {"P1", "P2"}, tighter, siblings=sibs)
    assert (d.decision, d.reason) == (Decision.BLURRED, Reason.SIBLING_AMBIGUOUS)


def test_empty_gallery_blurs_everyone():
    [d] = decide([BIG], [unit(0)], {}, set(), S)
    assert (d.decision, d.reason) == (Decision.BLURRED, Reason.NO_GALLERY)


def test_a_pupil_is_kept_at_most_once_per_photo():
    faces = [near(unit(0), 0.3), near(unit(0), 0.1)]
    first, second = decide([BIG, BIG], faces, GALLERY, {"P1"}, S)
    assert (first.decision, first.reason) == (Decision.BLURRED, Reason.DUPLICATE)
    assert second.decision is Decision.KEPT


def test_report_form_has_no_numpy_types():
    [d] = decide([BIG], [near(unit(0), 0.2)], GALLERY, {"P1"}, S)
    r = d.to_report()
    assert r == {
        "box": [0, 0, 100, 100],
        "decision": "kept",
        "pupil_id": "P1",
        "distance": 0.2,
        "reason": Reason.MATCHED_WITH_CONSENT.value,
    }
    assert type(r["distance"]) is float


def test_one_encoding_per_box_is_required():
    with pytest.raises(ValueError):
        decide([BIG, BIG], [None], GALLERY, set(), S)


# The review band: uncertain is not the same as no.
BAND = MatchSettings(tolerance=0.4, margin=0.08, min_face_px=60, review=0.5)


@pytest.mark.parametrize(
    "enc, permitted, reason, candidate",
    [
        (near(unit(0), 0.45), {"P1"}, Reason.UNCERTAIN, "P1"),  # just above tolerance
        (near(unit(0), 0.50), {"P1"}, Reason.UNCERTAIN, "P1"),  # band edge is inclusive
        (near(unit(0), 0.51), {"P1"}, Reason.NO_MATCH, None),  # beyond the band
        (near(unit(0), 0.45), {"P2"}, Reason.NO_MATCH, None),  # plausible, but no consent
        (near(unit(0), 0.2), {"P1"}, Reason.MATCHED_WITH_CONSENT, None),  # kept, not review
    ],
)
def test_review_band(enc, permitted, reason, candidate) -> None:  # type: ignore[no-untyped-def]
    (d,) = decide([BIG], [enc], GALLERY, permitted, BAND)
    assert d.reason is reason
    assert d.candidate_id == candidate
    if reason is Reason.UNCERTAIN:
        assert d.decision is Decision.BLURRED and d.pupil_id is None
        assert d.to_report()["candidate_pupil_id"] == "P1"


def test_ambiguous_within_band_goes_to_review_for_the_nearer_pupil() -> None:
    gallery = {"P1": np.array([unit(0)]), "P2": np.array([near(unit(0), 0.05, axis=5)])}
    (d,) = decide([BIG], [near(unit(0), 0.1)], gallery, {"P1", "P2"}, BAND)
    assert d.reason is Reason.UNCERTAIN and d.decision is Decision.BLURRED
    assert d.candidate_id == "P1"
    (plain,) = decide([BIG], [near(unit(0), 0.1)], gallery, {"P1", "P2"}, S)
    assert plain.reason is Reason.AMBIGUOUS and plain.candidate_id is None


def test_without_a_band_nothing_is_uncertain() -> None:
    assert MatchSettings().review is None and MatchSettings().recogniser == "dlib"
    (d,) = decide([BIG], [near(unit(0), 0.45)], GALLERY, {"P1"}, S)
    assert d.reason is Reason.NO_MATCH and "candidate_pupil_id" not in d.to_report()


def test_sface_settings_use_cosine_distance() -> None:
    from pipeline.recognisers import match_settings

    s = match_settings("sface", min_face_px=60)
    assert s.recogniser == "sface" and s.describe()["recogniser"] == "sface"
    # Cosine ignores length: a scaled copy of the reference is at distance 0.
    (d,) = decide([BIG], [unit(0) * 7.0], GALLERY, {"P1"}, s)
    assert d.decision is Decision.KEPT and d.pupil_id == "P1" and d.distance == pytest.approx(0)


# Pose: a face turned too far is blurred uncompared; yaw comes from five landmarks.
def projected_points(yaw_deg: float, roll_deg: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """The five points of a head model (nose depth NOSE_DEPTH_RATIO half eye-distances in
    front of the eyes and mouth) turned by ``yaw_deg``, rolled, scaled, seen from afar."""
    from pipeline.matching import NOSE_DEPTH_RATIO

    depth = NOSE_DEPTH_RATIO * 30.0  # eyes 30 apart each side of the midline
    model = np.array(
        [[-30, -35, -depth], [30, -35, -depth], [0, 0, 0], [-22, 30, -depth], [22, 30, -depth]],
        np.float64,
    )
    t, r = np.radians(yaw_deg), np.radians(roll_deg)
    # Turn about the vertical axis (nose towards +x for positive yaw), then project.
    x = model[:, 0] * np.cos(t) + model[:, 2] * np.sin(t)
    xy = np.stack([x, model[:, 1]], axis=1)
    rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    return scale * xy @ rot.T + np.array([200.0, 150.0])


@pytest.mark.parametrize("yaw", [0.0, 10.0, -25.0, 40.0, -60.0, 75.0])
@pytest.mark.parametrize("roll, scale", [(0.0, 1.0), (20.0, 3.0), (-35.0, 0.5)])
def test_yaw_from_landmarks_inverts_a_turned_head(yaw, roll, scale) -> None:
    from pipeline.matching import yaw_from_landmarks

    assert yaw_from_landmarks(projected_points(yaw, roll, scale)) == pytest.approx(yaw, abs=1e-6)


def test_yaw_of_a_degenerate_or_malformed_shape() -> None:
    from pipeline.matching import yaw_from_landmarks

    assert yaw_from_landmarks(np.full((5, 2), 10.0)) == 90.0
    with pytest.raises(ValueError):
        yaw_from_landmarks(np.zeros((4, 2)))
    with pytest.raises(ValueError):
        yaw_from_landmarks(np.full((5, 2), np.nan))


@pytest.mark.parametrize(
    "yaw, reason",
    [
        (None, Reason.MATCHED_WITH_CONSENT),
        (0.0, Reason.MATCHED_WITH_CONSENT),
        (-S.max_yaw, Reason.MATCHED_WITH_CONSENT),  # the limit itself is allowed
        (S.max_yaw + 0.5, Reason.TURNED_AWAY),
        (-(S.max_yaw + 0.5), Reason.TURNED_AWAY),
    ],
)
def test_a_face_turned_too_far_is_never_kept(yaw, reason) -> None:
    [d] = decide([BIG], [near(unit(0), 0.1)], GALLERY, {"P1"}, S, yaw=[yaw])
    assert d.reason is reason
    if reason is Reason.TURNED_AWAY:
        assert d.decision is Decision.BLURRED and d.distance is None and d.pupil_id is None


def test_no_yaw_limit_compares_every_pose() -> None:
    free = MatchSettings(tolerance=0.4, margin=0.08, max_yaw=None)
    [d] = decide([BIG], [near(unit(0), 0.1)], GALLERY, {"P1"}, free, yaw=[89.0])
    assert d.decision is Decision.KEPT
    assert free.describe()["max_yaw"] is None and S.describe()["max_yaw"] == S.max_yaw


def test_yaw_needs_one_value_per_face() -> None:
    with pytest.raises(ValueError):
        decide([BIG, BIG], [None, None], GALLERY, {"P1"}, S, yaw=[0.0])


def test_an_unknown_recogniser_is_refused_not_guessed() -> None:
    from pipeline.matching import pupil_distances

    with pytest.raises(ValueError, match="unknown recogniser"):
        pupil_distances(unit(0), GALLERY, "fusion")
    with pytest.raises(ValueError, match="unknown recogniser"):
        decide([BIG], [unit(0)], GALLERY, {"P1"}, MatchSettings(recogniser="nope"))


def _cosine_at(a: np.ndarray, b: np.ndarray, da: float, db: float) -> np.ndarray:
    """A unit vector at cosine distance ``da`` from unit ``a`` and ``db`` from unit ``b``
    (``a`` and ``b`` orthogonal), found in the plane of the two plus a third axis."""
    x, y = 1 - da, 1 - db
    rest = np.sqrt(1 - x * x - y * y)
    v = x * a + y * b
    v[127] = rest
    return v


def test_sface_siblings_need_the_wider_margin_and_go_to_review():
    """SFace's rule (cosine): a gap to the runner-up of 0.15 keeps the nearer pupil when
    the two are strangers (margin 0.12) but not when they are named siblings (0.18); with
    the review band on, the sibling case goes to review as the nearer pupil."""
    from pipeline.recognisers import match_settings

    rule = match_settings("sface")
    assert rule.margin < 0.15 < rule.sibling_margin
    gallery = {"P1": np.array([unit(0)]), "P2": np.array([unit(1)])}
    face = _cosine_at(unit(0), unit(1), 0.30, 0.45)
    [d] = decide([BIG], [face], gallery, {"P1", "P2"}, rule)
    assert (d.decision, d.pupil_id) == (Decision.KEPT, "P1")
    sibs = {"P1": frozenset({"P2"}), "P2": frozenset({"P1"})}
    no_review = MatchSettings(**{**rule.describe(), "review": None})  # type: ignore[arg-type]
    [d] = decide([BIG], [face], gallery, {"P1", "P2"}, no_review, siblings=sibs)
    assert (d.decision, d.reason) == (Decision.BLURRED, Reason.SIBLING_AMBIGUOUS)
    [d] = decide([BIG], [face], gallery, {"P1", "P2"}, rule, siblings=sibs)
    assert (d.decision, d.reason, d.candidate_id) == (Decision.BLURRED, Reason.UNCERTAIN, "P1")
