"""verify-clean: dirty files fail with their findings named, clean outputs pass."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from pipeline.writing import OutputFormat, encode_clean
from tests.support import dirty


def test_dirty_files_fail_and_clean_ones_pass(tmp_path: Path) -> None:
    bad_jpeg = dirty.make_dirty_jpeg(tmp_path / "dirty.jpg")
    bad_png = dirty.make_dirty_png(tmp_path / "dirty.png")
    clean = tmp_path / "clean.jpg"
    clean.write_bytes(encode_clean(np.zeros((16, 16, 3), np.uint8), OutputFormat.JPEG))
    text = tmp_path / "notes.txt"
    text.write_text("not an image")

    runner = CliRunner()
    ok = runner.invoke(main, ["verify-clean", str(clean)])
    assert ok.exit_code == 0 and "clean" in ok.stdout

    result = runner.invoke(
        main, ["verify-clean", "--json", str(bad_jpeg), str(bad_png), str(clean), str(text)]
    )
    assert result.exit_code == 1
    by_name = {Path(r["file"]).name: r for r in json.loads(result.stdout)}
    assert by_name["clean.jpg"]["clean"] is True
    assert not by_name["dirty.jpg"]["clean"] and not by_name["dirty.png"]["clean"]
    kinds = " ".join(by_name["dirty.jpg"]["findings"])
    for kind in ("EXIF", "GPS", "XMP", "JPEG comment", "IFD1 thumbnail"):
        assert kind in kinds
    assert not by_name["notes.txt"]["clean"]


# --- strictness: only the segments and chunks each output format needs ----------------------


def _jpeg() -> bytes:
    return encode_clean(dirty.noisy_pixels(32, 16), OutputFormat.JPEG)


def _png() -> bytes:
    return encode_clean(dirty.noisy_pixels(32, 16), OutputFormat.PNG)


def _webp() -> bytes:
    return encode_clean(dirty.noisy_pixels(32, 16), OutputFormat.WEBP)


def _grow_segment(data: bytes, marker: bytes, extra: bytes) -> bytes:
    """Append ``extra`` to the payload of the first segment with ``marker``."""
    pos = data.index(marker)
    (length,) = struct.unpack_from(">H", data, pos + 2)
    end = pos + 2 + length
    return (
        data[: pos + 2]
        + struct.pack(">H", length + len(extra))
        + data[pos + 4 : end]
        + extra
        + data[end:]
    )


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _png_with_idat(body: bytes) -> bytes:
    data = _png()
    start = data.index(b"IDAT") - 4
    (length,) = struct.unpack_from(">I", data, start)
    return data[:start] + _png_chunk(b"IDAT", body) + data[start + 12 + length :]


def _png_idat(data: bytes) -> bytes:
    start = data.index(b"IDAT") - 4
    (length,) = struct.unpack_from(">I", data, start)
    return data[start + 8 : start + 8 + length]


def _webp_chunks(data: bytes, *chunks: bytes) -> bytes:
    body = data[12:] + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _vp8x(flags: int, tail: bytes = b"") -> bytes:
    body = bytes([flags, 0, 0, 0]) + (31).to_bytes(3, "little") + (15).to_bytes(3, "little")
    return b"VP8X" + struct.pack("<I", len(body + tail)) + body + tail


STRICT = {
    "JFIF header padded": (
        lambda: _grow_segment(_jpeg(), b"\xff\xe0", b"Amelia Hart"),
        "hidden bytes",
    ),
    "DQT padded": (lambda: _grow_segment(_jpeg(), b"\xff\xdb", b"Amelia Hart"), "hidden bytes"),
    "DHT padded": (lambda: _grow_segment(_jpeg(), b"\xff\xc4", b"Amelia Hart"), "hidden bytes"),
    "SOF padded": (lambda: _grow_segment(_jpeg(), b"\xff\xc0", b"Amelia Hart"), "hidden bytes"),
    "Adobe APP14 padded": (
        lambda: (
            _jpeg()[:2]
            + b"\xff\xee\x00\x1a"
            + b"Adobe\0d\0\0\0\0\x01"
            + b"Amelia Hart!"
            + _jpeg()[2:]
        ),
        "hidden bytes",
    ),
    "JPEG without a frame": (lambda: b"\xff\xd8\xff\xd9", "malformed"),
    "PNG data after the zlib stream": (
        lambda: _png_with_idat(_png_idat(_png()) + b"Amelia Hart"),
        "hidden bytes",
    ),
    "PNG stream longer than the image": (
        lambda: _png_with_idat(zlib.compress(zlib.decompress(_png_idat(_png())) + b"Amelia Hart")),
        "hidden bytes",
    ),
    "PNG stream shorter than the image": (
        lambda: _png_with_idat(zlib.compress(zlib.decompress(_png_idat(_png()))[:-5])),
        "truncated",
    ),
    "PNG IEND with a body": (
        lambda: _png()[:-12] + _png_chunk(b"IEND", b"Amelia Hart"),
        "hidden bytes",
    ),
    "PNG chunk before IHDR": (
        lambda: _png()[:8] + _png_chunk(b"IDAT", b"x") + _png()[8:],
        "malformed",
    ),
    "WebP VP8X with reserved bits": (
        lambda: _webp_chunks(b"RIFF\0\0\0\0WEBP" + _vp8x(0x01), _webp()[12:]),
        "hidden bytes",
    ),
    "WebP VP8X padded": (
        lambda: _webp_chunks(b"RIFF\0\0\0\0WEBP" + _vp8x(0, b"Amelia"), _webp()[12:]),
        "hidden bytes",
    ),
    "WebP second image": (lambda: _webp_chunks(_webp(), _webp()[12:]), "malformed"),
    "WebP unknown chunk": (
        lambda: _webp_chunks(_webp(), b"NAME" + struct.pack("<I", 12) + b"Amelia Hart!"),
        "unknown WebP chunk",
    ),
}


@pytest.mark.parametrize("case", STRICT, ids=list(STRICT))
def test_verify_clean_is_strict(tmp_path: Path, case: str) -> None:
    build, kind = STRICT[case]
    path = tmp_path / "suspect.bin"
    path.write_bytes(build())

    result = CliRunner().invoke(main, ["verify-clean", "--json", str(path)])

    assert result.exit_code == 1, result.output
    [report] = json.loads(result.stdout)
    assert any(f.startswith(kind) for f in report["findings"]), report["findings"]


@pytest.mark.parametrize("out", list(OutputFormat), ids=[o.value for o in OutputFormat])
def test_every_output_format_passes(tmp_path: Path, out: OutputFormat) -> None:
    path = tmp_path / f"clean{out.suffix}"
    path.write_bytes(encode_clean(dirty.noisy_pixels(33, 17), out))  # odd sizes on purpose
    assert CliRunner().invoke(main, ["verify-clean", str(path)]).exit_code == 0
