"""The WebP walker: chunks inside the RIFF size, strict about sizes and the first chunk."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from pipeline.formats import webp
from pipeline.formats.damage import MALFORMED, TRUNCATED, Damaged
from tests.support import dirty


def plain_webp(**options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (24, 16), "red").save(out, "WEBP", **options)
    return out.getvalue()


def riff(chunks: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


def test_a_simple_lossy_webp_is_one_vp8_chunk() -> None:
    assert [c.fourcc for c in webp.chunks(plain_webp(quality=80))] == [webp.VP8]


def test_an_extended_webp_lists_its_metadata_chunks() -> None:
    data = plain_webp(lossless=True, exif=dirty.dirty_exif(), xmp=dirty.xmp_packet())

    fourccs = [c.fourcc for c in webp.chunks(data)]

    assert fourccs[0] == webp.VP8X and {webp.VP8L, webp.EXIF, webp.XMP} <= set(fourccs)
    assert webp.layout_problem(fourccs) is None


def test_bodies_are_without_the_padding_byte() -> None:
    data = riff(b"VP8 " + struct.pack("<I", 3) + b"abc\0")

    assert [(c.fourcc, c.body) for c in webp.chunks(data)] == [(webp.VP8, b"abc")]


DAMAGED = [
    ("not a WebP", b"RIFF\0\0\0\0AVI LIST", MALFORMED, "no RIFF WEBP"),
    ("RIFF size past the end", riff(b"VP8 \0\0\0\0")[:-2], TRUNCATED, "RIFF size"),
    (
        "chunk past the RIFF size",
        riff(b"VP8 " + struct.pack("<I", 9) + b"abc\0"),
        TRUNCATED,
        "runs past",
    ),
    ("EXIF first", riff(b"EXIF\0\0\0\0"), MALFORMED, "first chunk"),
    ("chunks short of the RIFF size", riff(b"VP8 \0\0\0\0" + b"xyz"), MALFORMED, "do not fill"),
]


@pytest.mark.parametrize(("label", "data", "kind", "words"), DAMAGED, ids=[d[0] for d in DAMAGED])
def test_damage_is_raised(label: str, data: bytes, kind: str, words: str) -> None:
    with pytest.raises(Damaged) as caught:
        list(webp.chunks(data))

    assert caught.value.kind == kind and words in caught.value.detail


def test_riff_end_says_where_trailing_bytes_start() -> None:
    data = plain_webp() + b"tail"

    assert webp.riff_end(data) == len(data) - 4


@pytest.mark.parametrize(
    ("fourccs", "problem"),
    [
        ([webp.VP8], None),
        ([webp.VP8X, webp.ALPH, webp.VP8], None),
        ([webp.VP8X], "0 image chunks"),
        ([webp.VP8, webp.VP8L], "2 image chunks"),
        ([webp.VP8, webp.EXIF], "after a simple-format image"),
        ([webp.VP8X, webp.ALPH, webp.ALPH, webp.VP8], "repeated"),
        ([webp.VP8X, webp.ANIM, webp.ANMF, webp.ANMF], None),
    ],
)
def test_layout_of_a_still_image(fourccs: list[bytes], problem: str | None) -> None:
    found = webp.layout_problem(fourccs)

    assert found == problem if problem is None else problem in (found or "")
