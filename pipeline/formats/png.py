"""PNG (ISO/IEC 15948, W3C PNG 3rd edition): the one walker of a PNG file's chunks.

`chunks` is strict: every CRC is checked, IHDR must come first, once, and be 13 bytes,
and the walk ends at IEND. The metadata findings and the embedded texts both read chunks
through it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.formats.damage import MALFORMED, TRUNCATED, Damaged

SIGNATURE = b"\x89PNG\r\n\x1a\n"
IHDR, PLTE, TRNS, IDAT, IEND = b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"
TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")
EXIF, ICCP, TIME = b"eXIf", b"iCCP", b"tIME"
# The iTXt keyword under which XMP is stored (XMP spec part 3, 1.1.5).
XMP_KEYWORD = "XML:com.adobe.xmp"
# Keyword length limit (PNG spec 11.3.4.1: 1 to 79 Latin-1 characters).
_MAX_KEYWORD = 79

# Samples per pixel of each colour type (PNG spec, table 11.1).
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: (x start, y start, x step, y step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2))
_ADAM7 += ((0, 1, 1, 2),)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk: its four-letter type, its data, and the file offset just past its CRC."""

    type: bytes
    body: bytes
    end: int


def is_png(data: bytes) -> bool:
    return data.startswith(SIGNATURE)


def chunks(data: bytes) -> Iterator[Chunk]:
    """Every chunk of ``data`` from IHDR to IEND, in file order.

    Raises `Damaged` where the file stops adding up (a chunk past the end, a bad CRC,
    no IHDR first or one of the wrong size, no IEND), after yielding every chunk before.
    """
    if not is_png(data):
        raise Damaged(MALFORMED, "PNG: no PNG signature")
    pos, end = len(SIGNATURE), len(data)
    seen_ihdr = False
    while pos + 12 <= end:
        length, ctype = struct.unpack_from(">I4s", data, pos)
        body_end = pos + 8 + length
        if body_end + 4 > end:
            raise Damaged(TRUNCATED, f"PNG: chunk {ctype!r} runs past the end")
        body = data[pos + 8 : body_end]
        (crc,) = struct.unpack_from(">I", data, body_end)
        if zlib.crc32(ctype + body) != crc:
            raise Damaged(MALFORMED, f"PNG: bad CRC in chunk {ctype!r}")
        pos = body_end + 4
        if not seen_ihdr and ctype != IHDR:
            raise Damaged(MALFORMED, f"PNG: first chunk is {ctype!r}, not IHDR")
        if ctype == IHDR:
            if seen_ihdr or len(body) != 13:
                raise Damaged(MALFORMED, "PNG: IHDR repeated or not 13 bytes")
            seen_ihdr = True
        yield Chunk(ctype, body, pos)
        if ctype == IEND:
            return
    raise Damaged(TRUNCATED, "PNG: no IEND chunk (file cut short?)")


def raw_size(ihdr: bytes) -> int | None:
    """Bytes of filtered scanlines an IHDR implies (a filter byte per row), or None when
    its values are invalid."""
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    channels = CHANNELS.get(colour)
    if channels is None or depth not in (1, 2, 4, 8, 16) or interlace > 1:
        return None
    bits = channels * depth

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if not interlace:
        return rows(width, height)
    return sum(
        rows((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy)
        for x0, y0, dx, dy in _ADAM7
        if width > x0 and height > y0
    )


@dataclass(frozen=True, slots=True)
class TextChunk:
    """The parts of a tEXt, zTXt or iTXt chunk (PNG spec 11.3.4).

    ``text`` is still compressed when ``compressed``; ``method`` is the compression
    method (0, zlib, is the only one defined; None when the chunk does not say).
    ``encoding`` is Latin-1 for tEXt/zTXt and UTF-8 for iTXt.
    """

    keyword: str
    text: bytes
    compressed: bool
    method: int | None
    encoding: str


def text_chunk(chunk: Chunk) -> TextChunk | None:
    """The parts of a text chunk, or None for another chunk or an iTXt cut short."""
    if chunk.type not in TEXT_TYPES:
        return None
    keyword_bytes, _, rest = chunk.body.partition(b"\0")
    keyword = keyword_bytes.decode("latin-1", errors="replace")[:_MAX_KEYWORD]
    if chunk.type == b"tEXt":
        return TextChunk(keyword, rest, False, None, "latin-1")
    if chunk.type == b"zTXt":
        return TextChunk(keyword, rest[1:], True, rest[0] if rest else None, "latin-1")
    # iTXt: compression flag, method, language tag\0, translated keyword\0, text.
    if len(rest) < 2:
        return None
    flag, method, tail = rest[0], rest[1], rest[2:]
    _language, _, tail = tail.partition(b"\0")
    _translated, _, text = tail.partition(b"\0")
    return TextChunk(keyword, text, flag == 1, method, "utf-8")
