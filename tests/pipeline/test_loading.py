from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from pipeline.errors import UnreadableImage
from pipeline.loading import load_image
from tests.support import dirty

ORIENTATIONS = range(1, 9)


def quadrant_colour(pixels: np.ndarray, where: str) -> tuple[int, int, int]:
    """The palette colour nearest to the centre of one quadrant (exact classification)."""
    h, w = pixels.shape[:2]
    y = h // 4 if where[0] == "t" else 3 * h // 4
    x = w // 4 if where[1] == "l" else 3 * w // 4
    sample = pixels[y, x].astype(int)
    palette = list(dirty.QUADRANTS.values())
    return min(palette, key=lambda c: int(np.abs(sample - np.array(c)).sum()))


def save(path: Path, image: Image.Image, fmt: str, **params: object) -> Path:
    image.save(path, fmt, **params)
    return path


# --- orientation --------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_jpeg_orientation_gives_upright_quadrants(tmp_path: Path, orientation: int) -> None:
    path = dirty.make_dirty_jpeg(tmp_path / "o.jpg", orientation=orientation)

    loaded = load_image(path)

    assert loaded.orientation == orientation
    assert loaded.size == (64, 48)
    assert loaded.pixels.shape == (48, 64, 3)
    for where, colour in dirty.QUADRANTS.items():
        assert quadrant_colour(loaded.pixels, where) == colour, where


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_png_orientation_is_pixel_exact(tmp_path: Path, orientation: int) -> None:
    upright = dirty.noisy_pixels(40, 24, seed=orientation)
    path = dirty.make_dirty_png(tmp_path / "o.png", upright, orientation=orientation)

    loaded = load_image(path)

    assert loaded.orientation == orientation
    np.testing.assert_array_equal(loaded.pixels, upright)


def test_no_exif_means_orientation_1(tmp_path: Path) -> None:
    path = save(tmp_path / "plain.png", Image.fromarray(dirty.upright_pixels()), "PNG")
    loaded = load_image(path)
    assert loaded.orientation == 1
    np.testing.assert_array_equal(loaded.pixels, dirty.upright_pixels())


# --- result contract ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "fmt"),
    [
        (dirty.make_dirty_jpeg, "JPEG"),
        (dirty.make_dirty_png, "PNG"),
        (dirty.make_dirty_webp, "WEBP"),
    ],
)
def test_result_contract(tmp_path: Path, builder: Callable[[Path], Path], fmt: str) -> None:
    path = builder(tmp_path / "dirty")

    loaded = load_image(path)

    assert loaded.format == fmt
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.pixels.dtype == np.uint8
    assert loaded.pixels.flags.c_contiguous
    assert loaded.pixels.shape == (loaded.size[1], loaded.size[0], 3)


def test_name_starting_with_dash_is_just_a_file(tmp_path: Path) -> None:
    path = dirty.make_dirty_jpeg(tmp_path / "-v.jpg")
    assert load_image(path).size == (64, 48)


def test_mpo_reads_primary_picture_as_jpeg(tmp_path: Path) -> None:
    first = Image.fromarray(dirty.upright_pixels())
    second = Image.new("RGB", first.size, (0, 0, 0))
    path = save(tmp_path / "cam.jpg", first, "MPO", save_all=True, append_images=[second])

    loaded = load_image(path)

    assert loaded.format == "JPEG"
    assert quadrant_colour(loaded.pixels, "tl") == dirty.QUADRANTS["tl"]


# --- colour -------------------------------------------------------------------------------


def test_cmyk_jpeg(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (32, 16), (0, 0, 0, 0))
    cmyk.paste((255, 0, 0, 0), (0, 0, 16, 16))  # pure cyan on the left, white on the right
    loaded = load_image(save(tmp_path / "c.jpg", cmyk, "JPEG", quality=95))

    assert loaded.pixels.shape == (16, 32, 3)
    np.testing.assert_allclose(loaded.pixels[8, 4], (0, 255, 255), atol=3)
    np.testing.assert_allclose(loaded.pixels[8, 28], (255, 255, 255), atol=3)


def test_greyscale_jpeg(tmp_path: Path) -> None:
    grey = Image.fromarray(np.full((16, 16), 100, np.uint8), "L")
    loaded = load_image(save(tmp_path / "g.jpg", grey, "JPEG", quality=95))
    assert loaded.pixels.shape == (16, 16, 3)
    np.testing.assert_allclose(loaded.pixels, 100, atol=1)
    assert (loaded.pixels[..., 0] == loaded.pixels[..., 2]).all()


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 32768, 65535, 257]], np.uint16).repeat(4, axis=0)
    path = save(tmp_path / "deep.png", Image.fromarray(values), "PNG")
    assert Image.open(path).mode.startswith("I")  # the fixture really is 16-bit

    loaded = load_image(path)

    row = loaded.pixels[0, :, 0].astype(int)
    assert row[0] == 0 and row[2] == 255 and row[3] == 1
    assert abs(row[1] - 128) <= 1


def test_palette_png_transparency_becomes_white(tmp_path: Path) -> None:
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (4, 0, 8, 8))  # right half uses index 1 (blue), which is transparent
    path = save(tmp_path / "p.png", pal, "PNG", transparency=1)

    pixels = load_image(path).pixels

    assert tuple(pixels[0, 0]) == (255, 0, 0)
    assert tuple(pixels[0, 7]) == (255, 255, 255)


@pytest.mark.parametrize(
    ("alpha", "expected"),
    [(255, (255, 0, 0)), (0, (255, 255, 255)), (128, (255, 127, 127))],
)
def test_rgba_is_composited_onto_white(tmp_path: Path, alpha: int, expected: tuple) -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, alpha))
    pixels = load_image(save(tmp_path / "a.png", rgba, "PNG")).pixels
    assert tuple(int(v) for v in pixels[0, 0]) == expected


def test_greyscale_with_alpha(tmp_path: Path) -> None:
    la = Image.new("LA", (4, 4), (0, 0))
    assert tuple(load_image(save(tmp_path / "la.png", la, "PNG")).pixels[1, 1]) == (255,) * 3


def test_one_bit_image(tmp_path: Path) -> None:
    bw = Image.new("1", (8, 8), 0)
    bw.paste(1, (0, 0, 4, 8))
    pixels = load_image(save(tmp_path / "bw.png", bw, "PNG")).pixels
    assert tuple(pixels[0, 0]) == (255, 255, 255) and tuple(pixels[0, 7]) == (0, 0, 0)


@pytest.mark.parametrize("fmt", ["TIFF", "BMP", "GIF"])
def test_other_accepted_formats(tmp_path: Path, fmt: str) -> None:
    path = save(tmp_path / "x", Image.fromarray(dirty.upright_pixels()), fmt)
    loaded = load_image(path)
    assert loaded.format == fmt
    assert quadrant_colour(loaded.pixels, "br") == dirty.QUADRANTS["br"]


def test_icc_profile_is_applied(tmp_path: Path) -> None:
    # An sRGB-tagged image converted to sRGB must stay (almost) unchanged.
    path = dirty.make_dirty_png(tmp_path / "icc.png", orientation=1)
    np.testing.assert_allclose(load_image(path).pixels, dirty.upright_pixels(), atol=1)


def test_rgb_profile_on_greyscale_is_accepted(tmp_path: Path) -> None:
    grey = Image.fromarray(np.full((8, 8), 200, np.uint8), "L")
    path = save(tmp_path / "g.png", grey, "PNG", icc_profile=dirty.srgb_icc())
    np.testing.assert_allclose(load_image(path).pixels, 200, atol=1)


# --- hostile inputs -----------------------------------------------------------------------


def _bytes(data: bytes) -> Callable[[Path], Path]:
    return lambda p: (p.write_bytes(data), p)[1]


def _dir(p: Path) -> Path:
    p.mkdir()
    return p


HOSTILE = {
    "zero-byte": (_bytes(b""), "empty"),
    "text named .jpg": (dirty.make_text_file, "not a JPEG, PNG"),
    "truncated jpeg": (dirty.make_truncated_jpeg, "EOI"),
    "truncated png": (dirty.make_truncated_png, "past the end"),
    "png without IEND": (lambda p: dirty.make_truncated_png(p, keep_idat=True), "IEND"),
    "animated gif": (dirty.make_animated_gif, "multi-frame"),
    "directory": (_dir, "directory"),
    "heic": (_bytes(b"\0\0\0\x18ftypheic" + b"\0" * 64), "HEIC"),
    "unsupported format": (
        lambda p: save(p, Image.new("RGB", (4, 4)), "PPM"),
        "not a JPEG, PNG",
    ),
    "damaged ICC": (
        lambda p: save(p, Image.new("RGB", (4, 4)), "PNG", icc_profile=b"not a profile"),
        "ICC",
    ),
}


def _damaged_exif(p: Path) -> Path:
    data = dirty.make_dirty_jpeg(p).read_bytes()
    ifd0 = data.index(b"Exif\0\0MM\0*") + 6 + 8  # IFD0 follows the 8-byte TIFF header
    p.write_bytes(data[:ifd0] + b"\x7f\xff" + data[ifd0 + 2 :])  # absurd entry count
    return p


HOSTILE["damaged EXIF"] = (_damaged_exif, "orientation is unknown")


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_input_is_refused_with_a_reason(tmp_path: Path, case: str) -> None:
    build, reason = HOSTILE[case]
    path = build(tmp_path / "photo.jpg")
    with pytest.raises(UnreadableImage, match=reason):
        load_image(path)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "BMP", "WEBP"])
def test_truncation_is_refused_even_after_face_recognition_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    # face_recognition sets this flag on import; Pillow would then pad cut-off files.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    whole = save(tmp_path / "whole", Image.fromarray(dirty.noisy_pixels()), fmt)
    cut = tmp_path / "cut"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 3 // 4])

    assert load_image(whole).size == (256, 192)  # complete files still load
    with pytest.raises(UnreadableImage, match="truncated|damaged|past the end"):
        load_image(cut)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the global is restored afterwards


def test_jpeg_missing_only_eoi_is_refused(tmp_path: Path) -> None:
    full = dirty.make_dirty_jpeg(tmp_path / "full.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(full[:-2])
    with pytest.raises(UnreadableImage, match="EOI"):
        load_image(path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_permission(tmp_path: Path) -> None:
    path = dirty.make_dirty_jpeg(tmp_path / "locked.jpg")
    path.chmod(0)
    with pytest.raises(UnreadableImage, match="cannot open"):
        load_image(path)


def test_permission_error_is_a_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Same case as above, reachable when the tests run as root (containers, CI).
    path = dirty.make_dirty_jpeg(tmp_path / "locked.jpg")

    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("pipeline.loading.os.open", denied)
    with pytest.raises(UnreadableImage, match="cannot open.*Permission denied"):
        load_image(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableImage, match="cannot open"):
        load_image(tmp_path / "nope.jpg")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(UnreadableImage, match="regular file"):
        load_image(tmp_path / "pipe.jpg")


@pytest.mark.parametrize("pillow_limit", ["default", "disabled"])
@pytest.mark.parametrize("dims", [(100_000, 100_000), (10_000, 10_000), (9_000, 8_000)])
def test_decompression_bomb_is_refused_quickly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dims: tuple[int, int], pillow_limit: str
) -> None:
    if pillow_limit == "disabled":  # our check must not depend on Pillow's global
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    path = dirty.make_bomb_png(tmp_path / "bomb.png", *dims)
    start = time.perf_counter()
    with pytest.raises(UnreadableImage, match="too large|over the limit"):
        load_image(path)
    assert time.perf_counter() - start < 1.0


def test_max_pixels_is_a_parameter(tmp_path: Path) -> None:
    path = dirty.make_dirty_png(tmp_path / "p.png")
    with pytest.raises(UnreadableImage, match="over the limit"):
        load_image(path, max_pixels=64 * 48 - 1)
    assert load_image(path, max_pixels=64 * 48).size == (64, 48)


def test_sha256_is_of_the_bytes_read(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (3, 3), (1, 2, 3)).save(buf, "PNG")
    path = tmp_path / "s.png"
    path.write_bytes(buf.getvalue())
    assert load_image(path).sha256 == hashlib.sha256(buf.getvalue()).hexdigest()


def _sample_files() -> dict[str, bytes]:
    samples = {}
    with tempfile.TemporaryDirectory() as tmp:
        for builder in (dirty.make_dirty_jpeg, dirty.make_dirty_png, dirty.make_dirty_webp):
            samples[builder.__name__] = builder(Path(tmp) / "f").read_bytes()
        for fmt in ("GIF", "TIFF", "BMP"):
            path = save(Path(tmp) / "g", Image.fromarray(dirty.upright_pixels(16, 8)), fmt)
            samples[fmt] = path.read_bytes()
    return samples


SAMPLES = _sample_files()


@pytest.mark.filterwarnings("ignore:.*(EXIF|Tag data|Truncated File):UserWarning")
@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SAMPLES)), st.data())
def test_damaged_files_load_or_raise_unreadable(kind: str, data: st.DataObject) -> None:
    original = SAMPLES[kind]
    pos = data.draw(st.integers(0, len(original) - 1))
    count = data.draw(st.integers(1, 8))
    junk = data.draw(st.binary(min_size=count, max_size=count))
    damaged = original[:pos] + junk + original[pos + count :]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "damaged"
        path.write_bytes(damaged)
        try:
            loaded = load_image(path)
        except UnreadableImage:
            return
    assert loaded.pixels.ndim == 3 and loaded.pixels.shape[2] == 3


def test_loaded_image_reports_the_metadata_of_the_bytes_it_decoded(tmp_path: Path) -> None:
    path = dirty.make_dirty_jpeg(tmp_path / "dirty.jpg")
    kinds = {f.kind for f in load_image(path).metadata}
    assert {"EXIF", "GPS", "XMP", "JPEG comment", "IFD1 thumbnail"} <= kinds
