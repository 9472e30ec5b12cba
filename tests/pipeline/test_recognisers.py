"""The recognisers: the SFace model pin, alignment, and embeddings on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.boxes import Box
from pipeline.engines import ModelMismatch
from pipeline.recognisers import (
    ARCFACE_TEMPLATE,
    DlibRecogniser,
    SFaceRecogniser,
    align,
    dlib_landmarks,
    five_points,
    get_recogniser,
    landmark_box,
    sface_model_path,
    verified_sface,
)
from tests.support.processes import in_new_processes

EVAL = Path(__file__).resolve().parents[2].parent / "shared" / "eval" / "lfw"


def test_pin_refuses_a_changed_model(tmp_path: Path) -> None:
    data = bytearray(sface_model_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    changed = tmp_path / "sface.onnx"
    changed.write_bytes(bytes(data))
    with pytest.raises(ModelMismatch):
        verified_sface(changed)
    assert verified_sface() == sface_model_path().read_bytes()


def test_alignment_is_112_rgb_and_puts_landmarks_on_the_template() -> None:
    yy, xx = np.mgrid[0:300, 0:400]
    pixels = np.stack([xx * 255 // 400, yy * 255 // 300, np.full_like(xx, 7)], -1).astype(np.uint8)
    # Template points scaled by 2 and shifted: the alignment must undo exactly that.
    points = ARCFACE_TEMPLATE * 2 + np.array([100, 50], np.float32)
    face = align(pixels, points)
    assert face.shape == (112, 112, 3) and face.dtype == np.uint8
    x, y = points[2].astype(int)
    tx, ty = ARCFACE_TEMPLATE[2].round().astype(int)
    assert np.abs(face[ty, tx].astype(int) - pixels[y, x].astype(int)).max() <= 3


def test_five_points_from_68() -> None:
    marks = np.arange(136, dtype=np.float32).reshape(68, 2)
    p = five_points(marks)
    assert p.shape == (5, 2)
    assert np.allclose(p[2], marks[30]) and np.allclose(p[3], marks[48])
    assert np.allclose(p[0], marks[36:42].mean(0))


def test_cosine_distance_and_registry() -> None:
    rec = get_recogniser("sface")
    refs = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert np.allclose(rec.distances(refs, np.array([3.0, 0.0])), [0.0, 1.0])
    assert np.allclose(DlibRecogniser().distances(refs, np.array([1.0, 0.0])), [0.0, np.sqrt(5)])
    with pytest.raises(ValueError):
        get_recogniser("nope")


@pytest.mark.slow
@pytest.mark.skipif(not EVAL.is_dir(), reason="eval photos absent")
def test_sface_same_person_nearer_than_different() -> None:
    from PIL import Image

    from pipeline.boxes import Box
    from pipeline.matching import face_recognition_module

    fr = face_recognition_module()
    people = [p for p in sorted(EVAL.iterdir()) if p.is_dir() and len(list(p.iterdir())) >= 2][:3]
    rec = SFaceRecogniser()
    embs = {}
    for person in people:
        for path in sorted(person.iterdir())[:2]:
            px = np.asarray(Image.open(path).convert("RGB"))
            t, r, b, left = fr.face_locations(px)[0]
            embs[(person.name, path.name)] = rec.encode(px, [Box(left, t, r - left, b - t)])[0]
    keys = list(embs)
    for a in keys:
        for b in keys:
            if a[0] == b[0] and a != b:
                others = [rec.distances(embs[c][None], embs[a])[0] for c in keys if c[0] != a[0]]
                assert rec.distances(embs[b][None], embs[a])[0] < min(others)


CHILDREN = EVAL.parent / "fgnet_children"


def test_each_recogniser_has_one_distance() -> None:
    from pipeline.distances import DISTANCES
    from pipeline.recognisers import RECOGNISERS

    assert set(RECOGNISERS) == set(DISTANCES)
    rng = np.random.default_rng(0)
    refs, probe = rng.normal(size=(4, 128)), rng.normal(size=128)
    for name, distance in DISTANCES.items():
        assert np.allclose(get_recogniser(name).distances(refs, probe), distance(refs, probe))


def test_default_rules_come_from_the_recognisers() -> None:
    from pipeline.recognisers import DEFAULT_RECOGNISER, RECOGNISERS, match_settings

    assert DEFAULT_RECOGNISER in RECOGNISERS
    for name in RECOGNISERS:
        t, s = get_recogniser(name).thresholds, match_settings(name)
        assert (s.tolerance, s.margin, s.review, s.recogniser) == (
            t.tolerance,
            t.margin,
            t.review,
            name,
        )
        # Review only widens the keep rule; siblings need more than anyone else.
        assert t.review > t.tolerance and t.sibling_margin > t.margin


@pytest.fixture(scope="module")
def children_sface() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SFace templates of every photo at ages 3-16 of the first 10 FG-NET children with
    four or more such photos: (templates, child, age)."""
    import csv

    from PIL import Image

    from pipeline.matching import face_recognition_module

    with (CHILDREN / "identities.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if 3 <= int(r["age"]) <= 16]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["person"]] = counts.get(r["person"], 0) + 1
    chosen = sorted(p for p, n in counts.items() if n >= 4)[:10]
    fr, rec = face_recognition_module(), SFaceRecogniser()
    embs, who, ages = [], [], []
    for r in rows:
        if r["person"] not in chosen:
            continue
        px = np.asarray(Image.open(CHILDREN / r["file"]).convert("RGB"))
        locs = fr.face_locations(px, number_of_times_to_upsample=1)
        if not locs:
            continue
        t, right, b, left = max(locs, key=lambda q: (q[2] - q[0]) * (q[1] - q[3]))
        # dlib's HOG box, as the calibration (bench/matching_faces.py) encodes it.
        marks = dlib_landmarks(px, [Box(left, t, right - left, b - t)], hog_boxes=True)[0]
        if marks is not None:
            embs.append(rec.embed_aligned([align(px, five_points(marks))])[0])
            who.append(r["person"])
            ages.append(int(r["age"]))
    return np.array(embs), np.array(who), np.array(ages)


@pytest.mark.slow
@pytest.mark.skipif(not CHILDREN.is_dir(), reason="eval photos absent")
def test_sface_defaults_on_children(children_sface) -> None:  # type: ignore[no-untyped-def]
    """The calibrated rule on real children (bench/matching.py has the full figures):
    different children hardly ever within the tolerance, most of a child's photos within
    2 years are, and nobody left out is kept as one of the others."""
    from pipeline.matching import Decision, decide
    from pipeline.recognisers import match_settings

    embs, who, ages = children_sface
    assert len(set(who)) == 10 and len(embs) >= 50
    rule = match_settings("sface")
    d = (
        1.0
        - (embs / np.linalg.norm(embs, axis=1, keepdims=True))
        @ (embs / np.linalg.norm(embs, axis=1, keepdims=True)).T
    )
    iu = np.triu_indices(len(embs), 1)
    same = (who[:, None] == who[None])[iu]
    near = same & (np.abs(ages[:, None] - ages[None])[iu] <= 2)
    assert np.mean(d[iu][~same] <= rule.tolerance) <= 2e-3
    assert np.mean(d[iu][near] <= rule.tolerance) >= 0.45
    assert np.mean(d[iu][near] <= rule.review) >= 0.7
    # Leave one child out as the stranger; the others enrolled with their first photo.
    box = Box(0, 0, 200, 200)
    for stranger in sorted(set(who)):
        first = {p: int(np.flatnonzero(who == p)[0]) for p in set(who) if p != stranger}
        gallery = {p: embs[[i]] for p, i in first.items()}
        probes = np.flatnonzero(who == stranger)
        faces = decide([box] * len(probes), list(embs[probes]), gallery, set(gallery), rule)
        assert not any(f.decision is Decision.KEPT for f in faces), stranger


def test_landmark_box_is_the_square_dlibs_predictor_was_trained_on() -> None:
    """A detector's tall box (forehead to chin) becomes a square about as wide as the face,
    lowered towards the chin, as dlib's HOG boxes are."""
    b = landmark_box(Box(100, 50, 200, 300))
    assert (b.w, b.h) == pytest.approx((208, 208))
    assert b.center == pytest.approx((200, 200 + 0.09 * 300))


def test_landmarks_that_define_no_alignment_give_no_template(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pipeline.recognisers as recognisers

    collapsed = np.full((68, 2), 50.0, np.float32)  # every point on one pixel
    monkeypatch.setattr(recognisers, "dlib_landmarks", lambda px, boxes: [collapsed, None])
    pixels = np.zeros((200, 200, 3), np.uint8)
    boxes = [Box(10, 10, 100, 100), Box(0, 0, 4, 4)]
    assert SFaceRecogniser().encode(pixels, boxes) == [None, None]


def test_sface_version_names_the_landmark_box() -> None:
    # Templates made with another landmark box are another version (enroll --reencode
    # makes them again); the box is part of what shapes a template.
    from pipeline.recognisers import LANDMARK_BOX_DROP, LANDMARK_BOX_WIDTH, SFACE_SHA256

    version = SFaceRecogniser.version
    assert version.endswith(f"/landmark_box:{LANDMARK_BOX_WIDTH:g}x{LANDMARK_BOX_DROP:g}")
    assert f"sha256:{SFACE_SHA256[:16]}" in version
    assert (
        version != "opencv_zoo/face_recognition_sface_2021dec_int8bq.onnx/sha256:fb143eea07838aa5"
    )


def test_the_sface_graph_is_rewritten_once_then_read_from_the_cache(tmp_path):
    """The rewrite (dropping dangling inputs) needs onnx, a 0.8 s import; after the first
    process, a worker loads SFace from the verified cached copy without it."""
    import hashlib

    from pipeline.recognisers import PREPARED_SFACE_SHA256

    cache = tmp_path / "cache"
    code = (
        "import sys; from pipeline.recognisers import _sface_session; _sface_session(); "
        "print('onnx' in sys.modules)"
    )
    runs = in_new_processes(code, {"XDG_CACHE_HOME": str(cache)})
    assert [r.stdout.split() for r in runs] == [["True"], ["False"]]
    [cached] = (cache / "photoconsent" / "models").glob("sface-*.onnx")
    assert cached.name == f"sface-{PREPARED_SFACE_SHA256[:16]}.onnx"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == PREPARED_SFACE_SHA256
    # A damaged copy is not used: it is rewritten from the verified model.
    cached.write_bytes(b"not a model")
    [again] = in_new_processes(code, {"XDG_CACHE_HOME": str(cache)}, times=1)
    assert "damaged" in again.stderr, again.stderr
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == PREPARED_SFACE_SHA256


@pytest.mark.slow
def test_landmarks_come_from_the_pinned_predictor_alone_and_match_face_recognitions():
    """The predictor loaded alone is the model face_recognition loads (same points on a
    real face), without importing face_recognition and its other models."""

    import dlib
    from skimage import data

    from pipeline.matching import face_recognition_module
    from pipeline.recognisers import dlib_landmarks, landmark_box, landmark_predictor

    pixels = np.ascontiguousarray(data.astronaut())
    face = Box(175, 45, 95, 130)
    [ours] = dlib_landmarks(pixels, [face])
    sq = landmark_box(face)
    rect = dlib.rectangle(round(sq.x), round(sq.y), round(sq.x2), round(sq.y2))
    theirs = face_recognition_module().api.pose_predictor_68_point(pixels, rect)
    assert ours is not None
    assert np.array_equal(ours, np.array([[p.x, p.y] for p in theirs.parts()], np.float32))
    assert landmark_predictor() is landmark_predictor()  # loaded once per process

    code = (
        "import sys, numpy as np; from skimage import data; from pipeline.boxes import Box; "
        "from pipeline.recognisers import dlib_landmarks; "
        "marks = dlib_landmarks(np.ascontiguousarray(data.astronaut()), [Box(175, 45, 95, 130)]); "
        "print(marks[0].shape, 'face_recognition' in sys.modules)"
    )
    [run] = in_new_processes(code, {}, times=1)
    assert run.stdout.split() == ["(68,", "2)", "False"]


def test_a_landmark_model_that_is_not_the_pinned_one_is_refused(monkeypatch):
    from pipeline import recognisers

    monkeypatch.setattr(recognisers, "LANDMARKS_SHA256", "0" * 64)
    recognisers.landmark_predictor.cache_clear()
    try:
        with pytest.raises(ModelMismatch, match="face_recognition_models==0.3.0"):
            recognisers.landmark_predictor()
    finally:
        recognisers.landmark_predictor.cache_clear()
