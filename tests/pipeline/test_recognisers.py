"""The recognisers: the SFace model pin, alignment, and embeddings on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.engines import ModelMismatch
from pipeline.recognisers import (
    ARCFACE_TEMPLATE,
    DlibRecogniser,
    SFaceRecogniser,
    align,
    five_points,
    get_recogniser,
    sface_model_path,
    verified_sface,
)

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
