"""Issue 5's formats: HEIC/HEIF and TIFF in, PNG and WebP in and out, JPEG out by default.

HEIC files are made here with pillow-heif's own encoder (x265), so the orientation tests
use a real container with ``irot``/``imir`` boxes written by libheif, exactly as an iPhone
stores a portrait photo, and an EXIF orientation tag saying the same thing.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import UnreadableImage
from pipeline.formats import heif
from pipeline.formats.findings import find_metadata
from pipeline.loading import load_image
from pipeline.writing import OutputFormat, encode_clean
from tests.support import cleanproof as cp
from tests.support import dirty

ORIENTATIONS = range(1, 9)


def quadrant(pixels: np.ndarray, where: str) -> tuple[int, int, int]:
    """The fixture colour nearest to the middle of one quadrant (lossy-codec tolerant)."""
    h, w = pixels.shape[:2]
    y = h // 4 if where[0] == "t" else 3 * h // 4
    x = w // 4 if where[1] == "l" else 3 * w // 4
    sample = pixels[y, x].astype(int)
    return min(dirty.QUADRANTS.values(), key=lambda c: int(np.abs(sample - c).sum()))


def heic(path: Path, pixels: np.ndarray, *, orientation: int | None = None, **params) -> Path:
    """Write ``pixels`` (as stored) to a HEIC; ``orientation`` goes into EXIF, from which
    pillow-heif's encoder also writes the container's irot/imir transform."""
    heif.register()
    image = Image.fromarray(pixels, "RGB")
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        params["exif"] = exif.tobytes()
    image.save(path, "HEIF", quality=95, **params)
    return path


# --- HEIC / HEIF --------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_heic_is_upright_and_turned_exactly_once(tmp_path: Path, orientation: int) -> None:
    upright = dirty.upright_pixels()
    stored = dirty.stored_for_orientation(upright, orientation)
    path = heic(tmp_path / "IMG_0001.HEIC", stored, orientation=orientation)
    with Image.open(path) as raw:
        # pillow-heif reports the EXIF value it reset (None for 1): libheif turns the
        # picture by the container's irot/imir, so the loader must not turn it again.
        assert raw.info.get("original_orientation") == (None if orientation == 1 else orientation)

    loaded = load_image(path)

    assert loaded.format == "HEIF"
    assert loaded.orientation == orientation
    assert loaded.orientation_tagged
    assert loaded.size == (64, 48)
    for where, colour in dirty.QUADRANTS.items():
        assert quadrant(loaded.pixels, where) == colour, where


def test_heic_rotation_is_in_the_container_and_in_exif(tmp_path: Path) -> None:
    # What makes "applied twice" a real risk: both say "turn 90 degrees".
    path = heic(
        tmp_path / "r.heic", dirty.stored_for_orientation(dirty.upright_pixels(), 6), orientation=6
    )
    tags = cp.exiftool_tags(path)
    assert tags["IFD0:Orientation"] == "Rotate 90 CW"
    assert tags["QuickTime:Rotation"] == 270  # irot: anticlockwise quarter turns


def test_heic_burst_is_withheld_with_a_reason(tmp_path: Path) -> None:
    frames = [Image.fromarray(dirty.upright_pixels()) for _ in range(3)]
    heif.register()
    path = tmp_path / "burst.heic"
    frames[0].save(path, "HEIF", save_all=True, append_images=frames[1:])
    with pytest.raises(UnreadableImage, match=r"3 images \(a burst"):
        load_image(path)


def test_heic_thumbnail_is_ignored(tmp_path: Path) -> None:
    path = heic(tmp_path / "t.heic", dirty.upright_pixels(), thumbnails=[16])
    loaded = load_image(path)
    assert loaded.size == (64, 48)
    assert quadrant(loaded.pixels, "br") == dirty.QUADRANTS["br"]


def test_heic_pixel_limit_is_checked_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = heic(tmp_path / "big.heic", dirty.noisy_pixels(256, 192))
    from pillow_heif import as_plugin

    def no_decoding(self):  # noqa: ANN001 - Pillow's method signature
        raise AssertionError("decoded before the size check")

    monkeypatch.setattr(as_plugin._LibHeifImageFile, "load", no_decoding)
    with pytest.raises(UnreadableImage, match="over the limit"):
        load_image(path, max_pixels=256 * 192 - 1)


def test_heic_icc_profile_is_converted(tmp_path: Path) -> None:
    path = heic(tmp_path / "icc.heic", dirty.upright_pixels(), icc_profile=dirty.srgb_icc())
    with Image.open(path) as im:
        assert im.info.get("icc_profile")  # the profile is really embedded
    loaded = load_image(path)
    assert quadrant(loaded.pixels, "tr") == dirty.QUADRANTS["tr"]


def test_heic_named_jpg_is_read_by_its_content(tmp_path: Path) -> None:
    path = heic(tmp_path / "IMG_0002.jpg", dirty.upright_pixels())
    assert load_image(path).format == "HEIF"


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
def test_truncated_heic_is_refused(tmp_path: Path, cut: float) -> None:
    data = heic(tmp_path / "w.heic", dirty.noisy_pixels()).read_bytes()
    path = tmp_path / "cut.heic"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(UnreadableImage, match="HEIC|decode|damaged"):
        load_image(path)


# --- TIFF ---------------------------------------------------------------------------------


def test_single_page_tiff_with_orientation(tmp_path: Path) -> None:
    upright = dirty.noisy_pixels(40, 24, seed=3)
    image = Image.fromarray(dirty.stored_for_orientation(upright, 6))
    path = tmp_path / "scan.tif"
    image.save(path, "TIFF", tiffinfo={0x0112: 6}, compression="tiff_lzw")
    loaded = load_image(path)
    assert (loaded.format, loaded.orientation) == ("TIFF", 6)
    np.testing.assert_array_equal(loaded.pixels, upright)


def test_multi_page_tiff_is_withheld(tmp_path: Path) -> None:
    pages = [Image.fromarray(dirty.upright_pixels()) for _ in range(2)]
    path = tmp_path / "pages.tif"
    pages[0].save(path, "TIFF", save_all=True, append_images=pages[1:])
    with pytest.raises(UnreadableImage, match=r"multi-page TIFF \(2 pages\)"):
        load_image(path)


def test_tiff_reduced_resolution_subfile_is_a_thumbnail_not_a_page(tmp_path: Path) -> None:
    path = cp.make_dirty(tmp_path / "thumb.tif", dirty.upright_pixels(), "tiff")
    with Image.open(path) as im:
        assert im.n_frames == 2  # Pillow sees two IFDs
    assert load_image(path).size == (64, 48)


# --- PNG and WebP in and out, JPEG by default ---------------------------------------------


def test_jpeg_is_the_default_output_format() -> None:
    from publishing.options import PublishOptions

    fields = PublishOptions.__dataclass_fields__
    assert fields["output_format"].default is OutputFormat.JPEG


@pytest.mark.parametrize("out", list(OutputFormat), ids=[o.value for o in OutputFormat])
def test_clean_output_round_trips_and_shows_exiftool_nothing(
    tmp_path: Path, out: OutputFormat
) -> None:
    pixels = dirty.noisy_pixels(48, 32, seed=1)
    path = tmp_path / f"out{out.suffix}"
    path.write_bytes(encode_clean(pixels, out))

    loaded = load_image(path)  # our outputs are valid inputs again

    assert loaded.size == (48, 32)
    if out is OutputFormat.PNG:
        np.testing.assert_array_equal(loaded.pixels, pixels)  # lossless
    assert find_metadata(path.read_bytes()) == []
    assert cp.exiftool_extras(path) == []


def test_exiftool_allowlist_rejects_a_jpeg_comment(tmp_path: Path) -> None:
    # The allowlist is not a blanket "File group is fine": COM shows as File:Comment.
    buf = io.BytesIO()
    Image.fromarray(dirty.upright_pixels()).save(buf, "JPEG", comment=b"hello")
    path = tmp_path / "c.jpg"
    path.write_bytes(buf.getvalue())
    assert cp.exiftool_extras(path) == ["File:Comment"]
