"""Redaction on synthetic arrays: what changes, what does not, and how little survives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.boxes import Box
from pipeline.redaction import (
    SOLID_COLOUR,
    RedactionStyle,
    head_mask,
    head_region,
    kept_guard,
    redact,
    redact_faces,
)

STYLES = list(RedactionStyle)


def noisy(h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("style", STYLES)
def test_only_the_region_changes(style):
    img = noisy()
    out = redact(img, [Box(40, 30, 50, 60)], style)
    assert out.shape == img.shape and out.dtype == np.uint8
    mask = np.zeros(img.shape[:2], bool)
    mask[30:90, 40:90] = True
    assert np.array_equal(out[~mask], img[~mask])
    assert not np.array_equal(out[mask], img[mask])
    assert np.array_equal(img, noisy()), "the input must not be modified"


@pytest.mark.parametrize("style", STYLES)
def test_detail_is_destroyed(style):
    """Two different faces in the same place give nearly the same redacted patch.

    The redacted patch keeps at most a few averages: two random textures with the same
    mean become indistinguishable (this is what makes it irreversible)."""
    a, b = noisy(seed=1), noisy(seed=2)
    box = Box(20, 20, 100, 80)
    ra = redact(a, [box], style)[20:100, 20:120].astype(float)
    rb = redact(b, [box], style)[20:100, 20:120].astype(float)
    assert np.abs(ra - rb).mean() < 6.0
    # And within a patch, local detail is gone: neighbouring pixels barely differ.
    assert np.abs(np.diff(ra, axis=1)).mean() < 4.0


def test_pixelate_uses_few_blocks():
    img = noisy(200, 200)
    out = redact(img, [Box(0, 0, 200, 200)], RedactionStyle.PIXELATE)
    colours = {tuple(p) for p in out.reshape(-1, 3)}
    assert len(colours) <= 5 * 5


def test_solid_is_one_colour():
    out = redact(noisy(), [Box(10, 10, 30, 30)], RedactionStyle.SOLID)
    assert len({tuple(p) for p in out[10:40, 10:40].reshape(-1, 3)}) == 1


def test_head_region_grows_beyond_the_face_box():
    face = Box(100, 100, 40, 50)
    head = head_region(face)
    assert head.x < face.x and head.y < face.y
    assert head.x2 > face.x2 and head.y2 > face.y2
    # hair and forehead: more room above than below
    assert face.y - head.y > head.y2 - face.y2


@settings(max_examples=50, deadline=None)
@given(
    x=st.integers(-50, 200),
    y=st.integers(-50, 150),
    w=st.integers(1, 120),
    h=st.integers(1, 120),
    style=st.sampled_from(STYLES),
)
def test_boxes_at_or_beyond_the_edge_are_clipped_not_errors(x, y, w, h, style):
    img = noisy()
    out = redact(img, [Box(x, y, w, h)], style)
    assert out.shape == img.shape


# --- A kept face is never covered by a neighbour's head margin --------------------------


def bright(h=200, w=300, seed=0):
    """Noise that never equals SOLID_COLOUR, so a solid-redacted pixel is recognisable."""
    return np.random.default_rng(seed).integers(100, 256, (h, w, 3), dtype=np.uint8)


def covered(out):
    return np.all(out == np.array(SOLID_COLOUR, np.uint8), axis=-1)


def test_without_kept_faces_it_is_the_whole_head():
    img = bright()
    faces = [Box(40, 60, 40, 50), Box(150, 70, 30, 40)]
    for style in STYLES:
        expected = redact(img, [head_region(f) for f in faces], style)
        assert np.array_equal(redact_faces(img, faces, [], style), expected)


def test_a_neighbours_head_margin_leaves_the_kept_face_and_its_guard_clear():
    img = bright()
    blurred_face = Box(100, 100, 40, 40)  # head region: x 82..158, y 68..150
    kept_face = Box(150, 60, 40, 40)  # guard: x 140..200, y 50..110
    assert head_region(blurred_face).intersection(kept_guard(kept_face)) > 0
    out = redact_faces(img, [blurred_face], [kept_face], RedactionStyle.SOLID)
    hit = covered(out)
    expected = np.zeros(img.shape[:2], bool)
    expected[68:150, 82:158] = True  # the head region, rounded outwards
    expected[50:110, 140:200] = False  # less the kept face's box with a 25% guard
    expected[100:140, 100:140] = True  # the blurred face's own box, always
    assert np.array_equal(hit, expected)
    assert np.array_equal(out[~hit], img[~hit]), "outside the blur nothing changes"
    assert kept_guard(kept_face) == Box(140, 50, 60, 60)


def test_the_blurred_face_own_box_wins_over_a_kept_face_in_the_same_place():
    """Two boxes on one face (or a face in front of another): fail closed, blur it."""
    img = bright()
    blurred_face = Box(100, 80, 50, 60)
    kept_face = Box(110, 85, 50, 60)  # IoU about 0.6
    out = redact_faces(img, [blurred_face], [kept_face], RedactionStyle.SOLID)
    assert covered(out)[80:140, 100:150].all(), "the blurred face is covered whole"
    # Only the head margin is clipped: the kept box's part outside the blurred box is clear.
    assert not covered(out)[85:145, 150:160].any()
    assert not covered(out)[140:145, 110:160].any()


def test_a_kept_face_inside_a_blurred_box_is_blurred():
    img = bright()
    blurred_face = Box(50, 50, 100, 100)
    kept_face = Box(80, 80, 20, 20)
    out = redact_faces(img, [blurred_face], [kept_face], RedactionStyle.SOLID)
    assert covered(out)[50:150, 50:150].all()


def test_each_blurred_face_is_clipped_for_every_kept_face_and_overlaps_stay_covered():
    img = bright()
    blurred_faces = [Box(100, 100, 40, 40), Box(120, 110, 40, 40)]
    kept_faces = [Box(40, 60, 40, 40), Box(170, 60, 40, 40)]
    out = redact_faces(img, blurred_faces, kept_faces, RedactionStyle.SOLID)
    hit = covered(out)
    for f in blurred_faces:
        rows, cols = f.pixel_slices(300, 200)
        assert hit[rows, cols].all()
    for k in kept_faces:
        rows, cols = kept_guard(k).pixel_slices(300, 200)
        assert not hit[rows, cols].any()
        assert np.array_equal(out[rows, cols], img[rows, cols])


def test_head_mask_at_the_image_edge():
    rows, cols, mask = head_mask(Box(0, 0, 20, 20), [Box(25, 0, 20, 20)], 100, 100)
    # Head x -9..29 -> 0..29, y -16..25 -> 0..25; the kept guard starts at x = 20.
    assert (rows, cols) == (slice(0, 25), slice(0, 29))
    assert mask[:, :20].all() and not mask[:, 20:].any()
    rows, cols, mask = head_mask(Box(200, 200, 20, 20), [], 100, 100)
    assert mask.size == 0


@settings(max_examples=60, deadline=None)
@given(
    faces=st.lists(
        st.tuples(
            st.integers(-20, 280), st.integers(-20, 180), st.integers(2, 80), st.integers(2, 80)
        ),
        min_size=1,
        max_size=6,
    ),
    n_kept=st.integers(0, 3),
    style=st.sampled_from(STYLES),
)
def test_every_blurred_box_is_redacted_and_kept_guards_are_clear_elsewhere(faces, n_kept, style):
    img = bright()
    boxes = [Box(*f) for f in faces]
    kept_faces, blurred_faces = boxes[:n_kept], boxes[n_kept:]
    out = redact_faces(img, blurred_faces, kept_faces, RedactionStyle.SOLID)
    hit = covered(out)
    own = np.zeros(img.shape[:2], bool)
    for f in blurred_faces:
        rows, cols = f.pixel_slices(300, 200)
        own[rows, cols] = True
    assert hit[own].all(), "a blurred face's own box is always covered"
    guard = np.zeros(img.shape[:2], bool)
    for k in kept_faces:
        rows, cols = kept_guard(k).pixel_slices(300, 200)
        guard[rows, cols] = True
    assert not hit[guard & ~own].any(), "a kept face is covered only by a blurred face's box"
    assert np.array_equal(out[~hit], img[~hit])
    # The other styles change the same pixels' area (at most), never beyond it.
    other = redact_faces(img, blurred_faces, kept_faces, style)
    assert np.array_equal(other[~hit], img[~hit])
