from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import piexif
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.formats.findings import (
    DAMAGED_EXIF,
    MALFORMED,
    TRUNCATED,
    UNSUPPORTED,
    MetadataFinding,
    describe,
    find_metadata,
)
from pipeline.writing import OutputFormat, encode_clean
from tests.support import dirty

PLANTED = {
    "jpeg": (
        dirty.make_dirty_jpeg,
        {
            "EXIF",
            "EXIF personal fields",
            "GPS",
            "serial number",
            "IFD1 thumbnail",
            "XMP",
            "Photoshop",
            "IPTC",
            "JPEG comment",
            "ICC profile",
        },
    ),
    "png": (
        dirty.make_dirty_png,
        {
            "PNG text",
            "PNG eXIf",
            "PNG time",
            "ICC profile",
            "EXIF personal fields",
            "GPS",
            "serial number",
            "IFD1 thumbnail",
        },
    ),
    "webp": (
        dirty.make_dirty_webp,
        {
            "EXIF",
            "XMP",
            "ICC profile",
            "VP8X flags",
            "EXIF personal fields",
            "GPS",
            "serial number",
            "IFD1 thumbnail",
        },
    ),
}


def kinds(data: bytes) -> list[str]:
    return [f.kind for f in find_metadata(data)]


def jpeg_bytes(image: Image.Image | None = None, **params: object) -> bytes:
    buf = io.BytesIO()
    (image or Image.fromarray(dirty.upright_pixels())).save(buf, "JPEG", **params)
    return buf.getvalue()


def segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def after_soi(data: bytes, extra: bytes) -> bytes:
    return data[:2] + extra + data[2:]


# --- read the dirty fixture ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", PLANTED)
def test_every_planted_kind_is_found(tmp_path: Path, fmt: str) -> None:
    build, expected = PLANTED[fmt]
    found = set(kinds(build(tmp_path / f"dirty.{fmt}").read_bytes()))
    assert expected <= found, expected - found


@pytest.mark.parametrize("fmt", PLANTED)
def test_ifd1_thumbnail_is_detected_and_shows_other_content(tmp_path: Path, fmt: str) -> None:
    data = PLANTED[fmt][0](tmp_path / f"d.{fmt}").read_bytes()
    thumb_findings = [f for f in find_metadata(data) if f.kind == "IFD1 thumbnail"]
    assert len(thumb_findings) == 1
    # The fixture is honest: its thumbnail really is a different (red) picture.
    thumb = piexif.load(data)["thumbnail"] if fmt != "png" else None
    if thumb is not None:
        assert Image.open(io.BytesIO(thumb)).convert("RGB").getpixel((8, 8))[0] > 240
        assert f"{len(thumb)} bytes" == thumb_findings[0].detail


def test_png_reports_each_text_chunk(tmp_path: Path) -> None:
    findings = find_metadata(dirty.make_dirty_png(tmp_path / "d.png").read_bytes())
    details = [f.detail.split(",")[0] for f in findings if f.kind == "PNG text"]
    assert sorted(details) == ["iTXt", "tEXt", "zTXt"]


# --- clean it -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", PLANTED)
@pytest.mark.parametrize("out", list(OutputFormat))
def test_clean_encode_drops_everything(tmp_path: Path, fmt: str, out: OutputFormat) -> None:
    build, _ = PLANTED[fmt]
    data = build(tmp_path / f"dirty.{fmt}").read_bytes()
    assert dirty.NAME.encode() in data  # the test can fail: the name is really there

    clean = encode_clean(dirty.upright_pixels(), out)

    assert find_metadata(clean) == []
    assert dirty.NAME.encode() not in clean
    assert dirty.NAME.encode("utf-16-le") not in clean
    assert dirty.SERIAL.encode() not in clean


# --- reject it corrupted ------------------------------------------------------------------


def test_truncated_jpeg_is_a_finding(tmp_path: Path) -> None:
    data = dirty.make_truncated_jpeg(tmp_path / "t.jpg").read_bytes()
    assert kinds(data) == [TRUNCATED]


def test_jpeg_segment_running_past_end(tmp_path: Path) -> None:
    data = dirty.make_dirty_jpeg(tmp_path / "d.jpg").read_bytes()
    assert kinds(data[:30])[-1] == TRUNCATED


@pytest.mark.parametrize("keep_idat", [False, True])
def test_truncated_png_is_a_finding(tmp_path: Path, keep_idat: bool) -> None:
    data = dirty.make_truncated_png(tmp_path / "t.png", keep_idat=keep_idat).read_bytes()
    assert kinds(data)[-1] == TRUNCATED


def test_png_bad_crc_is_malformed() -> None:
    data = bytearray(encode_clean(dirty.upright_pixels(), OutputFormat.PNG))
    data[20] ^= 0xFF  # inside IHDR's body
    assert kinds(bytes(data)) == [MALFORMED]


def test_truncated_webp_is_a_finding(tmp_path: Path) -> None:
    data = dirty.make_dirty_webp(tmp_path / "d.webp").read_bytes()
    assert kinds(data[: len(data) - 10]) == [TRUNCATED]


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a" + b"\0" * 20, b"II*\0" + b"\0" * 20, b"BM" + b"\0" * 40, b"hello"],
    ids=["empty", "gif", "tiff", "bmp", "text"],
)
def test_other_containers_fail_closed(data: bytes) -> None:
    assert kinds(data) == [UNSUPPORTED]


# --- JPEG walker details ------------------------------------------------------------------


def test_plain_pillow_jpeg_is_clean() -> None:
    assert find_metadata(jpeg_bytes()) == []


def test_trailing_data_after_eoi() -> None:
    assert kinds(jpeg_bytes() + b"secret appended") == ["trailing data"]


def test_unknown_appn_and_jfif_thumbnail() -> None:
    jfif_thumb = b"JFIF\0\x01\x02\x00\x00\x01\x00\x01\x01\x01" + b"\xff\x00\x00"
    data = after_soi(jpeg_bytes(), segment(0xEB, b"JP\0\0jumb") + segment(0xE0, jfif_thumb))
    assert kinds(data) == ["unknown APPn", "JFIF thumbnail"]


def test_adobe_app14_is_allowed() -> None:
    cmyk = Image.new("CMYK", (8, 8), (10, 20, 30, 40))
    data = jpeg_bytes(cmyk)
    assert b"Adobe" in data
    assert find_metadata(data) == []


def test_fill_bytes_before_markers_are_legal() -> None:
    data = jpeg_bytes()
    dqt = data.index(b"\xff\xdb")
    assert find_metadata(data[:dqt] + b"\xff\xff\xff" + data[dqt:]) == []


def test_comment_between_progressive_scans_is_found() -> None:
    data = jpeg_bytes(progressive=True)
    second_sos = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
    hidden = data[:second_sos] + segment(0xFE, b"Jane Doe") + data[second_sos:]
    assert kinds(hidden) == ["JPEG comment"]


def test_exif_without_thumbnail_has_no_ifd1_finding() -> None:
    exif = Image.Exif()
    exif[0x010F] = "ExampleCam"
    found = kinds(jpeg_bytes(exif=exif.tobytes()))
    assert "EXIF" in found
    assert "IFD1 thumbnail" not in found and "GPS" not in found


@pytest.mark.parametrize(
    "tiff", [b"/etc/passwd", b"II*\0", b"MM\0*\0\0\xff\xff", b"II*\0\x08\0\0\0\xff\xff"]
)
def test_damaged_exif_is_still_a_finding(tiff: bytes) -> None:
    data = after_soi(jpeg_bytes(), segment(0xE1, b"Exif\0\0" + tiff))
    assert kinds(data) == ["EXIF", DAMAGED_EXIF]


def test_exif_with_huge_counts_is_parsed_quickly() -> None:
    # A BYTE tag claiming 4 billion values: piexif would build a 4 GB struct format.
    entry = struct.pack("<HHII", 0x9C9D, 1, 0xFFFF_FFF0, 26)
    tiff = b"II*\0" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", 0)
    start = time.perf_counter()
    found = find_metadata(after_soi(jpeg_bytes(), segment(0xE1, b"Exif\0\0" + tiff)))
    assert time.perf_counter() - start < 0.5
    assert [f.kind for f in found] == ["EXIF", "EXIF personal fields"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([b"II*\0", b"MM\0*"]))
def test_exif_walker_never_crashes(body: bytes, header: bytes) -> None:
    data = after_soi(jpeg_bytes(), segment(0xE1, b"Exif\0\0" + header + body))
    assert kinds(data)[0] == "EXIF"


def test_mpo_index_and_second_picture_are_found() -> None:
    first = Image.fromarray(dirty.upright_pixels())
    buf = io.BytesIO()
    first.save(buf, "MPO", save_all=True, append_images=[first.rotate(90)])
    assert kinds(buf.getvalue()) == ["MPF", "trailing data"]


# --- PNG and WebP details -----------------------------------------------------------------


def test_png_ancillary_chunks_outside_the_allowlist_are_reported() -> None:
    buf = io.BytesIO()
    Image.fromarray(dirty.upright_pixels()).save(buf, "PNG", dpi=(300, 300))
    assert kinds(buf.getvalue()) == ["PNG chunk"]


def test_png_xmp_itxt_is_xmp(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", dirty.xmp_packet().decode())
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "PNG", pnginfo=info)
    assert kinds(buf.getvalue()) == ["XMP"]


def test_animated_webp_is_reported() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=50)
    assert "WebP animation" in kinds(buf.getvalue())


# --- summary and robustness ---------------------------------------------------------------


def test_describe() -> None:
    findings = [
        MetadataFinding("EXIF", "a"),
        MetadataFinding("PNG text", "b"),
        MetadataFinding("PNG text", "c"),
    ]
    assert describe(findings) == "EXIF, 2x PNG text"
    assert describe([]) == "no metadata"


def test_details_never_echo_file_text(tmp_path: Path) -> None:
    for fmt, (build, _) in PLANTED.items():
        for finding in find_metadata(build(tmp_path / f"d.{fmt}").read_bytes()):
            assert "Jane" not in finding.detail and "SN-" not in finding.detail


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"RIFF"]))
def test_walkers_never_crash_on_garbage(tail: bytes, head: bytes) -> None:
    data = head + (tail[:4] + b"WEBP" + tail[4:] if head == b"RIFF" else tail)
    assert all(isinstance(f, MetadataFinding) for f in find_metadata(data))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_damaged_dirty_jpeg_never_reads_clean(data: st.DataObject) -> None:
    original = _DIRTY_JPEG
    pos = data.draw(st.integers(0, len(original) - 1))
    value = data.draw(st.integers(0, 255))
    damaged = original[:pos] + bytes([value]) + original[pos + 1 :]
    # One flipped byte may hide a segment, but never all of the planted metadata.
    assert find_metadata(damaged) != []


def _build_dirty_jpeg() -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return dirty.make_dirty_jpeg(Path(tmp) / "d.jpg").read_bytes()


_DIRTY_JPEG = _build_dirty_jpeg()
