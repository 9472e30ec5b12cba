from __future__ import annotations

import hashlib
import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from pipeline.errors import OutputConflict, UnsafeOutput
from pipeline.formats.findings import find_metadata
from pipeline.writing import OutputFormat, encode_clean, sha256_bytes
from publishing.outputs import write_atomic
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


# --- write_atomic -------------------------------------------------------------------------


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


def test_write_atomic_writes_exact_bytes(tmp_path: Path) -> None:
    dest = tmp_path / "out.jpg"
    write_atomic(b"payload", dest)
    assert dest.read_bytes() == b"payload"
    assert leftovers(tmp_path) == []


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    dest = tmp_path / "out.jpg"
    dest.write_bytes(b"original")
    with pytest.raises(OutputConflict, match="exists; choose another --out or remove it"):
        write_atomic(b"new", dest)
    assert dest.read_bytes() == b"original"
    assert leftovers(tmp_path) == []


def test_refuses_dangling_symlink(tmp_path: Path) -> None:
    dest = tmp_path / "out.jpg"
    dest.symlink_to(tmp_path / "elsewhere.jpg")
    with pytest.raises(OutputConflict, match="exists"):
        write_atomic(b"new", dest)
    assert not (tmp_path / "elsewhere.jpg").exists()


def test_race_with_another_writer_is_a_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "out.jpg"
    real_link = os.link

    def racing_link(src: Path, dst: Path) -> None:
        Path(dst).write_bytes(b"the other writer")  # appears after the existence check
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(OutputConflict, match="exists"):
        write_atomic(b"mine", dest)
    assert dest.read_bytes() == b"the other writer"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failing", ["link", "fsync", "write"])
def test_failure_leaves_no_temp_file_and_no_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, failing, boom)
    dest = tmp_path / "out.png"
    with pytest.raises(OutputConflict, match="Input/output error"):
        write_atomic(b"data", dest)
    monkeypatch.undo()
    assert leftovers(tmp_path) == []
    assert not dest.exists()


def test_directory_fsync_failure_removes_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync, calls = os.fsync, []

    def second_fsync_fails(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:  # 1st: the file, 2nd: the directory
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", second_fsync_fails)
    dest = tmp_path / "out.png"
    with pytest.raises(OutputConflict):
        write_atomic(b"data", dest)
    assert not dest.exists() and leftovers(tmp_path) == []


def test_falls_back_when_hard_links_are_unsupported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: object) -> None:
        raise OSError(1, "Operation not permitted")  # EPERM, as on FAT/exFAT

    monkeypatch.setattr(os, "link", no_links)
    dest = tmp_path / "out.webp"
    write_atomic(b"data", dest)
    assert dest.read_bytes() == b"data"
    assert leftovers(tmp_path) == []


def test_missing_directory_is_a_conflict(tmp_path: Path) -> None:
    with pytest.raises(OutputConflict, match="cannot write in"):
        write_atomic(b"data", tmp_path / "no-such-dir" / "out.jpg")


def test_output_is_readable_by_others(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(b"data", tmp_path / "out.jpg")
    finally:
        os.umask(old)
    assert (tmp_path / "out.jpg").stat().st_mode & 0o777 == 0o644


def test_dash_name_is_just_a_file(tmp_path: Path) -> None:
    write_atomic(b"data", tmp_path / "-v.jpg")
    assert (tmp_path / "-v.jpg").read_bytes() == b"data"
