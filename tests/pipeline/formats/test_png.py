"""The PNG walker: chunks in order, strict about CRCs, IHDR and IEND; text chunk parts."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from pipeline.formats import png
from pipeline.formats.damage import MALFORMED, TRUNCATED, Damaged


def plain_png(info: PngImagePlugin.PngInfo | None = None) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (24, 16), "red").save(out, "PNG", pnginfo=info)
    return out.getvalue()


def chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def test_a_plain_png_is_ihdr_idat_iend() -> None:
    data = plain_png()

    chunks = list(png.chunks(data))

    assert chunks[0].type == png.IHDR and chunks[-1].type == png.IEND
    assert {c.type for c in chunks[1:-1]} == {png.IDAT}
    assert chunks[-1].end == len(data)


def test_the_iend_end_says_where_trailing_bytes_start() -> None:
    data = plain_png() + b"tail"

    assert list(png.chunks(data))[-1].end == len(data) - 4


def insert_after_ihdr(data: bytes, extra: bytes) -> bytes:
    return data[:33] + extra + data[33:]  # signature (8) + IHDR chunk (25)


DAMAGED = [
    ("not a PNG", lambda d: b"GIF89a" + d, MALFORMED, "signature"),
    ("cut inside a chunk", lambda d: d[:50], TRUNCATED, "runs past the end"),
    ("no IEND", lambda d: d[:-12], TRUNCATED, "no IEND"),
    ("bad CRC", lambda d: d[:29] + bytes([d[29] ^ 1]) + d[30:], MALFORMED, "bad CRC"),
    ("IDAT first", lambda d: d[:8] + d[33:], MALFORMED, "not IHDR"),
    ("IHDR twice", lambda d: insert_after_ihdr(d, d[8:33]), MALFORMED, "IHDR repeated"),
    (
        "IHDR of 14 bytes",
        lambda d: d[:8] + chunk(b"IHDR", d[16:29] + b"\0") + d[33:],
        MALFORMED,
        "not 13 bytes",
    ),
]


@pytest.mark.parametrize(("label", "damage", "kind", "words"), DAMAGED, ids=[d[0] for d in DAMAGED])
def test_damage_is_raised(label, damage, kind, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Damaged) as caught:
        list(png.chunks(damage(plain_png())))

    assert caught.value.kind == kind and words in caught.value.detail


def test_chunks_before_the_damage_are_yielded() -> None:
    data = insert_after_ihdr(plain_png(), chunk(b"tEXt", b"Title\0x"))
    broken = data[:-12]  # no IEND

    walk = png.chunks(broken)

    assert [next(walk).type, next(walk).type] == [png.IHDR, b"tEXt"]
    with pytest.raises(Damaged):
        list(walk)


@pytest.mark.parametrize(
    ("width", "height", "depth", "colour", "interlace", "expected"),
    [
        (3, 2, 8, 2, 0, 2 * (1 + 9)),  # RGB: 3 bytes a pixel, a filter byte a row
        (10, 1, 1, 0, 0, 1 + 2),  # 1-bit grey: 10 bits round up to 2 bytes
        (2, 2, 16, 6, 0, 2 * (1 + 16)),  # 16-bit RGBA
        (1, 1, 8, 0, 1, 2),  # Adam7 with one pixel: only the first pass has it
        # Adam7 8x8 grey, pass by pass (rows x (1 + width)): 1x2 + 1x2 + 1x3 + 2x3 + 2x5 + 4x5 + 4x9
        (8, 8, 8, 0, 1, 2 + 2 + 3 + 6 + 10 + 20 + 36),
        (1, 1, 3, 2, 0, None),  # depth 3 does not exist
        (1, 1, 8, 5, 0, None),  # nor colour type 5
    ],
)
def test_raw_size_is_the_filtered_scanlines(
    width: int, height: int, depth: int, colour: int, interlace: int, expected: int | None
) -> None:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)

    assert png.raw_size(ihdr) == expected


@pytest.mark.parametrize(
    ("add", "keyword", "text", "compressed", "encoding"),
    [
        (lambda i: i.add_text("Title", "Sports day"), "Title", b"Sports day", False, "latin-1"),
        (
            lambda i: i.add_text("Title", "Sports day", zip=True),
            "Title",
            zlib.compress(b"Sports day"),
            True,
            "latin-1",
        ),
        (
            lambda i: i.add_itxt("Title", "Zoë", lang="en", tkey="Titel"),
            "Title",
            "Zoë".encode(),
            False,
            "utf-8",
        ),
    ],
)
def test_text_chunk_parts(add, keyword: str, text: bytes, compressed: bool, encoding: str) -> None:  # type: ignore[no-untyped-def]
    info = PngImagePlugin.PngInfo()
    add(info)

    texts = [png.text_chunk(c) for c in png.chunks(plain_png(info))]
    parts = [t for t in texts if t is not None]

    assert len(parts) == 1
    part = parts[0]
    assert (part.keyword, part.compressed, part.encoding) == (keyword, compressed, encoding)
    if compressed:
        assert part.method == 0 and zlib.decompress(part.text) == zlib.decompress(text)
    else:
        assert part.text == text


def test_a_cut_itxt_has_no_parts() -> None:
    assert png.text_chunk(png.Chunk(b"iTXt", b"Title\0", 0)) is None
    assert png.text_chunk(png.Chunk(png.IDAT, b"", 0)) is None
