from __future__ import annotations

import hashlib
import io
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from pipeline.errors import UnsafeOutput
from pipeline.formats.findings import find_metadata
from pipeline.writing import OutputFormat, encode_clean, sha256_bytes
from tests.support import dirty


def jpeg_markers(data: bytes) -> list[int]:
    """Markers of the header segments, up to the first SOS."""
    markers, pos = [], 2
    while data[pos + 1] != 0xDA:
        markers.append(data[pos + 1])
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return markers


# --- OutputFormat and encode_clean --------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [(OutputFormat.JPEG, ".jpg"), (OutputFormat.PNG, ".png"), (OutputFormat.WEBP, ".webp")],
)
def test_suffix_and_pillow_name(fmt: OutputFormat, suffix: str) -> None:
    assert fmt.suffix == suffix
    assert OutputFormat(fmt.value) is fmt


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_output_decodes_to_same_size(fmt: OutputFormat) -> None:
    pixels = dirty.upright_pixels(70, 30)
    with Image.open(io.BytesIO(encode_clean(pixels, fmt))) as im:
        assert im.format == fmt.value
        assert im.size == (70, 30)
        assert im.mode == "RGB"


def test_png_is_lossless() -> None:
    pixels = dirty.noisy_pixels(33, 17)
    with Image.open(io.BytesIO(encode_clean(pixels, OutputFormat.PNG))) as im:
        np.testing.assert_array_equal(np.asarray(im), pixels)


def test_jpeg_has_only_jfif_app0_and_no_comment() -> None:
    data = encode_clean(dirty.noisy_pixels(), OutputFormat.JPEG)
    markers = jpeg_markers(data)
    app_or_com = [m for m in markers if 0xE0 <= m <= 0xEF or m == 0xFE]
    assert app_or_com == [0xE0]
    assert data[6:11] == b"JFIF\0"
    assert 0xC0 in markers  # baseline, not progressive (0xC2)


def test_jfif_header_has_no_thumbnail_or_density() -> None:
    data = encode_clean(dirty.upright_pixels(), OutputFormat.JPEG)
    units, xdens, ydens, xthumb, ythumb = struct.unpack_from(">BHHBB", data, 13)
    assert (units, xdens, ydens, xthumb, ythumb) == (0, 1, 1, 0, 0)


def test_quality_changes_jpeg_size() -> None:
    pixels = dirty.noisy_pixels()
    low = encode_clean(pixels, OutputFormat.JPEG, quality=30)
    high = encode_clean(pixels, OutputFormat.JPEG, quality=95)
    assert len(low) < len(high)


@pytest.mark.parametrize(
    ("pixels", "error"),
    [
        (np.zeros((4, 4), np.uint8), ValueError),
        (np.zeros((4, 4, 4), np.uint8), ValueError),
        (np.zeros((0, 4, 3), np.uint8), ValueError),
        (np.zeros((4, 4, 3), np.float32), TypeError),
    ],
    ids=["2d", "rgba", "empty", "float"],
)
def test_bad_pixel_arrays_are_rejected(pixels: np.ndarray, error: type) -> None:
    with pytest.raises(error):
        encode_clean(pixels, OutputFormat.PNG)


@pytest.mark.parametrize("quality", [0, 101])
def test_quality_out_of_range(quality: int) -> None:
    with pytest.raises(ValueError, match="quality"):
        encode_clean(dirty.upright_pixels(), OutputFormat.JPEG, quality=quality)


def test_non_contiguous_view_is_fine() -> None:
    view = dirty.upright_pixels()[:, ::-1]
    with Image.open(io.BytesIO(encode_clean(view, OutputFormat.PNG))) as im:
        np.testing.assert_array_equal(np.asarray(im), view)


def test_unsafe_output_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # If a future Pillow started adding metadata, the self-check must catch it.
    real_save = Image.Image.save

    def leaky_save(self: Image.Image, fp: io.BytesIO, fmt: str, **params: object) -> None:
        real_save(self, fp, fmt, comment=b"leak", **params)

    monkeypatch.setattr(Image.Image, "save", leaky_save)
    with pytest.raises(UnsafeOutput, match="JPEG comment"):
        encode_clean(dirty.upright_pixels(), OutputFormat.JPEG)


@settings(max_examples=60, deadline=None)
@given(
    pixels=arrays(
        np.uint8,
        st.tuples(st.integers(1, 24), st.integers(1, 24), st.just(3)),
        elements=st.integers(0, 255),
    ),
    fmt=st.sampled_from(list(OutputFormat)),
    quality=st.integers(1, 100),
)
def test_encode_clean_never_has_findings(
    pixels: np.ndarray, fmt: OutputFormat, quality: int
) -> None:
    data = encode_clean(pixels, fmt, quality=quality)
    assert find_metadata(data) == []
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (pixels.shape[1], pixels.shape[0])


# --- sha256_bytes -------------------------------------------------------------------------


def test_sha256_bytes() -> None:
    assert sha256_bytes(b"abc") == hashlib.sha256(b"abc").hexdigest()
