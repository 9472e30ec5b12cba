"""WebP (RIFF, Google's WebP container specification): the one walker of its chunks.

`chunks` is strict: the RIFF size must fit the file, every chunk must fit the RIFF size
and together fill it exactly, and the first chunk must be VP8, VP8L or VP8X. The metadata
findings and the embedded texts both read chunks through it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.formats.damage import MALFORMED, TRUNCATED, Damaged

VP8, VP8L, VP8X, ALPH = b"VP8 ", b"VP8L", b"VP8X", b"ALPH"
EXIF, XMP, ICCP, ANIM, ANMF = b"EXIF", b"XMP ", b"ICCP", b"ANIM", b"ANMF"
IMAGE = (VP8, VP8L)
# VP8X flag bits and its fixed size ("Extended File Format").
VP8X_ICC, VP8X_EXIF, VP8X_XMP, VP8X_ANIM = 0x20, 0x08, 0x04, 0x02
VP8X_RESERVED = 0xC1
VP8X_SIZE = 10


@dataclass(frozen=True, slots=True)
class Chunk:
    """One RIFF chunk: its FourCC and its data (without the padding byte)."""

    fourcc: bytes
    body: bytes


def is_webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def riff_end(data: bytes) -> int:
    """The file offset where the RIFF data ends (bytes beyond it are not WebP)."""
    return 8 + struct.unpack_from("<I", data, 4)[0]


def chunks(data: bytes) -> Iterator[Chunk]:
    """Every chunk inside the RIFF size, in file order.

    Raises `Damaged` where the file stops adding up (the RIFF size or a chunk runs past
    the end, the first chunk is not an image or VP8X, the chunks do not fill the RIFF
    size), after yielding every chunk before.
    """
    if not is_webp(data):
        raise Damaged(MALFORMED, "WebP: no RIFF WEBP header")
    end = riff_end(data)
    if end > len(data):
        raise Damaged(TRUNCATED, "WebP: RIFF size runs past the end")
    pos, first = 12, True
    while pos + 8 <= end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        if pos + 8 + size > end:
            raise Damaged(TRUNCATED, f"WebP: chunk {fourcc!r} runs past the end")
        body = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)  # chunks are padded to an even length
        if first and fourcc not in (*IMAGE, VP8X):
            raise Damaged(MALFORMED, f"WebP: first chunk is {fourcc!r}")
        first = False
        yield Chunk(fourcc, body)
    if pos != end:
        raise Damaged(MALFORMED, "WebP: chunks do not fill the RIFF size")


def layout_problem(fourccs: list[bytes]) -> str | None:
    """What is wrong with the chunk order of a still image, or None.

    A simple file is one VP8/VP8L chunk; an extended one is VP8X, at most one ALPH, then
    one VP8/VP8L. Animations are not checked here (they are reported by their chunks).
    """
    if ANIM in fourccs or ANMF in fourccs:
        return None
    images = sum(f in IMAGE for f in fourccs)
    if images != 1:
        return f"WebP: {images} image chunks, expected 1"
    if fourccs[0] != VP8X and len(fourccs) > 1:
        return "WebP: chunks after a simple-format image"
    if fourccs.count(ALPH) > 1 or fourccs.count(VP8X) > 1:
        return "WebP: repeated ALPH or VP8X chunk"
    return None
