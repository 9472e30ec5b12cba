"""Find metadata in an image file's bytes by walking the container ourselves.

Pillow is not trusted here: it hides segments it does not understand and a check that
asks the encoder "did you write metadata?" would only repeat the encoder's own view. So
each supported container (JPEG, PNG, WebP) has a small walker that lists every segment,
chunk or marker and reports all but a short allowlist of pixel-structure ones. Anything
the walker cannot account for (other containers, truncation, bad lengths or CRCs) is a
finding too, so a caller that publishes only finding-free bytes fails closed.

Details never echo text from the file (captions, names, keywords): they say what was
found and how big it is, so findings can go into logs and audit rows without leaking.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

TRUNCATED = "truncated"
MALFORMED = "malformed"
UNSUPPORTED = "unsupported container"
DAMAGED_EXIF = "damaged EXIF"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The only PNG chunks the clean writer emits; everything else (even harmless sRGB or
# pHYs) is reported so that "no findings" means "exactly what encode_clean makes".
_PNG_ALLOWED = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}
_WEBP_ALLOWED = {b"VP8 ", b"VP8L", b"ALPH"}
# VP8X flag bits (WebP container spec, "Extended File Format").
_VP8X_ICC, _VP8X_EXIF, _VP8X_XMP, _VP8X_ANIM = 0x20, 0x08, 0x04, 0x02

# JPEG markers that only carry coding structure: SOFn, DHT, DAC, DQT, DNL, DRI, SOS.
_JPEG_STRUCTURE = {0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB}
_JPEG_STRUCTURE |= {0xCC, 0xCD, 0xCE, 0xCF, 0xDA, 0xDB, 0xDC, 0xDD}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: no length field
_SOS, _EOI, _COM = 0xDA, 0xD9, 0xFE

_XMP_IDS = (b"http://ns.adobe.com/xap/1.0/\0", b"http://ns.adobe.com/xmp/extension/\0")

# EXIF tags worth naming in a finding because they identify a person or a device.
_EXIF_PERSONAL = {
    0x010E: "ImageDescription",
    0x013B: "Artist",
    0x8298: "Copyright",
    0x9286: "UserComment",
    0x9C9B: "XPTitle",
    0x9C9C: "XPComment",
    0x9C9D: "XPAuthor",
    0x9C9E: "XPKeywords",
    0x9C9F: "XPSubject",
    0xA430: "CameraOwnerName",
    0x010F: "Make",
    0x0110: "Model",
}
_EXIF_SERIALS = {0xA431: "BodySerialNumber", 0xA435: "LensSerialNumber"}
_EXIF_SERIALS |= {0xC62F: "CameraSerialNumber"}
_MAKER_NOTE = 0x927C


@dataclass(frozen=True, slots=True)
class MetadataFinding:
    """One piece of metadata (or one unaccountable byte range) found in a file."""

    kind: str
    detail: str


def find_metadata(data: bytes) -> list[MetadataFinding]:
    """Every metadata segment in ``data``, in file order; empty means clean.

    Only JPEG, PNG and WebP are walked; any other input gives one ``"unsupported
    container"`` finding, and a structure that ends early or does not add up gives a
    ``"truncated"``, ``"malformed"`` or ``"damaged EXIF"`` finding, so callers never
    mistake "could not check" for "clean".
    """
    if data.startswith(b"\xff\xd8"):
        return list(_jpeg_findings(data))
    if data.startswith(_PNG_SIGNATURE):
        return list(_png_findings(data))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return list(_webp_findings(data))
    detail = "empty file" if not data else "only JPEG, PNG and WebP can be checked"
    return [MetadataFinding(UNSUPPORTED, detail)]


def describe(findings: Iterable[MetadataFinding]) -> str:
    """A one-line summary such as ``"EXIF, GPS, XMP, 2x PNG text"``, or ``"no metadata"``."""
    counts = Counter(f.kind for f in findings)
    if not counts:
        return "no metadata"
    return ", ".join(kind if n == 1 else f"{n}x {kind}" for kind, n in counts.items())


# --- JPEG (ITU-T T.81 annex B) ------------------------------------------------------------


def _jpeg_findings(data: bytes) -> Iterable[MetadataFinding]:
    # Walks every segment up to EOI, skipping entropy-coded data after each SOS rather
    # than stopping at the first one: progressive files have several scans, and APPn or
    # COM segments between scans are legal, so stopping early would miss them.
    pos, end = 2, len(data)
    while pos < end:
        if data[pos] != 0xFF:
            yield MetadataFinding(MALFORMED, f"JPEG: expected a marker at byte {pos}")
            return
        while pos < end and data[pos] == 0xFF:  # fill bytes before a marker (B.1.1.2)
            pos += 1
        if pos >= end:
            break
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            if pos < end:
                yield MetadataFinding("trailing data", _trailing_detail(data[pos:]))
            return
        if marker in _JPEG_STANDALONE:
            continue
        if pos + 2 > end:
            break
        length = struct.unpack_from(">H", data, pos)[0]
        if length < 2 or pos + length > end:
            yield MetadataFinding(TRUNCATED, f"JPEG: segment 0x{marker:02X} runs past the end")
            return
        payload = data[pos + 2 : pos + length]
        pos += length
        yield from _jpeg_segment(marker, payload)
        if marker == _SOS:
            pos = _skip_entropy_data(data, pos)
    yield MetadataFinding(TRUNCATED, "JPEG: no EOI marker (file cut short?)")


def _skip_entropy_data(data: bytes, pos: int) -> int:
    """Offset of the first marker after a scan (0xFF not followed by 0x00 or RSTn)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        nxt = data[pos + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
            pos += 1 if nxt == 0xFF else 2
            continue
        return pos


def _trailing_detail(tail: bytes) -> str:
    kind = "another JPEG (MPF picture?)" if tail.startswith(b"\xff\xd8") else "unknown bytes"
    return f"{len(tail)} bytes after EOI: {kind}"


def _jpeg_segment(marker: int, payload: bytes) -> Iterable[MetadataFinding]:
    size = f"{len(payload)} bytes"
    if marker in _JPEG_STRUCTURE:
        return
    if marker == 0xE0 and payload.startswith(b"JFIF\0"):
        # JFIF carries only version, density and an optional thumbnail; the thumbnail is
        # a second copy of the picture, so it is reported.
        if len(payload) >= 14 and (payload[12] or payload[13]):
            yield MetadataFinding("JFIF thumbnail", f"{payload[12]}x{payload[13]} pixels")
        return
    if marker == 0xEE and payload.startswith(b"Adobe"):
        # APP14 "Adobe" only says whether the components are YCbCr/YCCK or raw RGB/CMYK;
        # decoders need it to get colours right and it holds nothing about the subject.
        return
    if marker == 0xE1 and payload.startswith(b"Exif\0\0"):
        yield MetadataFinding("EXIF", f"APP1, {size}")
        yield from _exif_details(payload[6:])
    elif marker == 0xE1 and payload.startswith(_XMP_IDS):
        yield MetadataFinding("XMP", f"APP1, {size}")
    elif marker == 0xE2 and payload.startswith(b"ICC_PROFILE\0"):
        yield MetadataFinding("ICC profile", f"APP2, {size}")
    elif marker == 0xE2 and payload.startswith(b"MPF\0"):
        yield MetadataFinding("MPF", f"APP2 multi-picture index, {size}")
    elif marker == 0xED and payload.startswith(b"Photoshop 3.0\0"):
        yield MetadataFinding("Photoshop", f"APP13, {size}")
        if 0x0404 in _photoshop_resource_ids(payload[14:]):
            yield MetadataFinding("IPTC", "APP13 8BIM resource 0x0404")
    elif marker == _COM:
        yield MetadataFinding("JPEG comment", size)
    elif 0xE0 <= marker <= 0xEF:
        yield MetadataFinding("unknown APPn", f"APP{marker - 0xE0}, {size}")
    else:
        yield MetadataFinding("unknown segment", f"marker 0x{marker:02X}, {size}")


def _photoshop_resource_ids(blob: bytes) -> set[int]:
    """Resource ids of a Photoshop "8BIM" image-resource block (stops at damage)."""
    ids, pos = set(), 0
    while blob[pos : pos + 4] == b"8BIM" and pos + 7 <= len(blob):
        ids.add(struct.unpack_from(">H", blob, pos + 4)[0])
        name_len = blob[pos + 6]
        pos += 6 + (name_len + 2 & ~1)  # Pascal name padded to an even length
        if pos + 4 > len(blob):
            break
        size = struct.unpack_from(">I", blob, pos)[0]
        pos += 4 + (size + 1 & ~1)
    return ids


def _exif_details(tiff: bytes) -> Iterable[MetadataFinding]:
    """GPS, serial-number, maker-note and thumbnail findings inside one EXIF block."""
    try:
        ifds = _tiff_ifds(tiff)
    except _BadTiff as exc:
        # Its own kind: a reader may then have missed the orientation tag as well.
        yield MetadataFinding(DAMAGED_EXIF, f"TIFF structure does not add up ({exc})")
        return
    tags = {**ifds.get("0th", {}), **ifds.get("Exif", {})}
    personal = sorted(name for tag, name in _EXIF_PERSONAL.items() if tag in tags)
    if personal:
        yield MetadataFinding("EXIF personal fields", ", ".join(personal))
    serials = sorted(name for tag, name in _EXIF_SERIALS.items() if tag in tags)
    if serials:
        yield MetadataFinding("serial number", ", ".join(serials))
    if _MAKER_NOTE in tags:
        yield MetadataFinding("MakerNote", "vendor block (may hold serials or names)")
    if ifds.get("GPS"):
        yield MetadataFinding("GPS", f"{len(ifds['GPS'])} GPS tags")
    if "1st" in ifds:
        length = ifds["1st"].get(0x0202)  # JPEGInterchangeFormatLength
        detail = f"{length} bytes" if length is not None else "IFD1 without JPEG data"
        yield MetadataFinding("IFD1 thumbnail", detail)


class _BadTiff(ValueError):
    """The EXIF TIFF structure does not add up (internal to this module)."""


def _tiff_ifds(tiff: bytes) -> dict[str, dict[int, int]]:
    """Tag ids of IFD0 ("0th"), the Exif and GPS IFDs and IFD1 ("1st"), per TIFF 6.0.

    Written here rather than calling piexif, which on hostile input builds struct formats
    of ``count`` characters (a 4-byte count field can ask for 4 GB) and opens non-TIFF
    bytes as a file name. Values are read only for single inline SHORT/LONG entries
    (IFD pointers, thumbnail length) and reported as 0 otherwise.
    """
    order = {b"II*\0": "<", b"MM\0*": ">"}.get(tiff[:4])
    if order is None or len(tiff) < 8:
        raise _BadTiff("no TIFF header")

    def read_ifd(offset: int) -> tuple[dict[int, int], int]:
        if offset < 8 or offset + 2 > len(tiff):
            raise _BadTiff(f"IFD offset {offset} out of range")
        (count,) = struct.unpack_from(order + "H", tiff, offset)
        if offset + 2 + 12 * count + 4 > len(tiff):
            raise _BadTiff("IFD runs past the end")
        entries = {}
        for i in range(count):
            tag, typ, n = struct.unpack_from(order + "HHI", tiff, offset + 2 + 12 * i)
            fmt = {3: "H", 4: "I"}.get(typ) if n == 1 else None
            entries[tag] = (
                struct.unpack_from(order + fmt, tiff, offset + 10 + 12 * i)[0] if fmt else 0
            )
        (next_ifd,) = struct.unpack_from(order + "I", tiff, offset + 2 + 12 * count)
        return entries, next_ifd

    ifds: dict[str, dict[int, int]] = {}
    ifds["0th"], ifd1 = read_ifd(struct.unpack_from(order + "I", tiff, 4)[0])
    for name, pointer_tag in (("Exif", 0x8769), ("GPS", 0x8825)):
        if pointer_tag in ifds["0th"]:
            ifds[name] = read_ifd(ifds["0th"][pointer_tag])[0]
    if ifd1:
        ifds["1st"] = read_ifd(ifd1)[0]
    return ifds


# --- PNG (ISO/IEC 15948, W3C PNG 3rd edition) ---------------------------------------------


def _png_findings(data: bytes) -> Iterable[MetadataFinding]:
    pos, end = len(_PNG_SIGNATURE), len(data)
    while pos + 12 <= end:
        length, ctype = struct.unpack_from(">I4s", data, pos)
        body_end = pos + 8 + length
        if body_end + 4 > end:
            yield MetadataFinding(TRUNCATED, f"PNG: chunk {ctype!r} runs past the end")
            return
        body = data[pos + 8 : body_end]
        (crc,) = struct.unpack_from(">I", data, body_end)
        if zlib.crc32(ctype + body) != crc:
            yield MetadataFinding(MALFORMED, f"PNG: bad CRC in chunk {ctype!r}")
            return
        pos = body_end + 4
        yield from _png_chunk(ctype, body)
        if ctype == b"IEND":
            if pos < end:
                yield MetadataFinding("trailing data", f"{end - pos} bytes after IEND")
            return
    yield MetadataFinding(TRUNCATED, "PNG: no IEND chunk (file cut short?)")


def _png_chunk(ctype: bytes, body: bytes) -> Iterable[MetadataFinding]:
    size = f"{len(body)} bytes"
    name = ctype.decode("latin-1")
    if ctype in _PNG_ALLOWED:
        return
    if ctype == b"iTXt" and body.startswith(b"XML:com.adobe.xmp\0"):
        yield MetadataFinding("XMP", f"iTXt, {size}")
    elif ctype in (b"tEXt", b"zTXt", b"iTXt"):
        yield MetadataFinding("PNG text", f"{name}, {size}")
    elif ctype == b"eXIf":
        yield MetadataFinding("PNG eXIf", size)
        yield from _exif_details(body[6:] if body.startswith(b"Exif\0\0") else body)
    elif ctype == b"iCCP":
        yield MetadataFinding("ICC profile", f"iCCP, {size}")
    elif ctype == b"tIME":
        yield MetadataFinding("PNG time", "last-modification time")
    else:
        yield MetadataFinding("PNG chunk", f"{name}, {size}")


# --- WebP (RIFF, Google WebP container specification) -------------------------------------


def _webp_findings(data: bytes) -> Iterable[MetadataFinding]:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    riff_end = 8 + riff_size
    if riff_end > len(data):
        yield MetadataFinding(TRUNCATED, "WebP: RIFF size runs past the end")
        return
    pos = 12
    while pos + 8 <= riff_end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + size]
        if pos + 8 + size > riff_end:
            yield MetadataFinding(TRUNCATED, f"WebP: chunk {fourcc!r} runs past the end")
            return
        pos += 8 + size + (size & 1)  # chunks are padded to an even length
        yield from _webp_chunk(fourcc, body)
    if pos != riff_end:
        yield MetadataFinding(MALFORMED, "WebP: chunks do not fill the RIFF size")
    if riff_end < len(data):
        yield MetadataFinding("trailing data", f"{len(data) - riff_end} bytes after RIFF")


def _webp_chunk(fourcc: bytes, body: bytes) -> Iterable[MetadataFinding]:
    size = f"{len(body)} bytes"
    if fourcc in _WEBP_ALLOWED:
        return
    if fourcc == b"VP8X":
        flags = body[0] if body else 0
        # VP8X itself is only canvas size and flags; the flags matter because they tell
        # readers to look for metadata or animation chunks.
        if flags & (_VP8X_ICC | _VP8X_EXIF | _VP8X_XMP | _VP8X_ANIM):
            yield MetadataFinding("VP8X flags", f"metadata/animation flags 0x{flags:02X}")
    elif fourcc == b"EXIF":
        yield MetadataFinding("EXIF", f"WebP EXIF chunk, {size}")
        yield from _exif_details(body[6:] if body.startswith(b"Exif\0\0") else body)
    elif fourcc == b"XMP ":
        yield MetadataFinding("XMP", f"WebP XMP chunk, {size}")
    elif fourcc == b"ICCP":
        yield MetadataFinding("ICC profile", f"WebP ICCP chunk, {size}")
    elif fourcc in (b"ANIM", b"ANMF"):
        yield MetadataFinding("WebP animation", f"{fourcc.decode('latin-1')}, {size}")
    else:
        yield MetadataFinding("unknown WebP chunk", f"{fourcc!r}, {size}")
