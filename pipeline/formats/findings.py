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
_VP8X_RESERVED = 0xC1

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
    seen: set[int] = set()
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
            if not {_SOS} <= seen or not seen & _SOF:
                yield MetadataFinding(MALFORMED, "JPEG: EOI before any frame or scan")
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
        seen.add(marker)
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
        expected = _structure_length(marker, payload)
        if expected is not None and expected != len(payload):
            # Coding tables and headers have exact sizes; any slack is room for a payload
            # no viewer shows (a classic steganographic hiding place).
            yield MetadataFinding(
                "hidden bytes", f"marker 0x{marker:02X} is {len(payload)} bytes, not {expected}"
            )
        return
    if marker == 0xE0 and payload.startswith(b"JFIF\0"):
        # JFIF carries only version, density and an optional thumbnail; the thumbnail is
        # a second copy of the picture, so it is reported, and so is any other extra byte
        # (JFIF 1.02: the segment is exactly 16 + 3 x thumbnail pixels long).
        if len(payload) < 14:
            yield MetadataFinding(MALFORMED, f"JPEG: JFIF header is only {size}")
        elif payload[12] or payload[13]:
            yield MetadataFinding("JFIF thumbnail", f"{payload[12]}x{payload[13]} pixels")
        elif len(payload) != 14:
            yield MetadataFinding("hidden bytes", f"JFIF header is {size}, not 14")
        return
    if marker == 0xEE and payload.startswith(b"Adobe"):
        # APP14 "Adobe" only says whether the components are YCbCr/YCCK or raw RGB/CMYK;
        # decoders need it to get colours right and it holds nothing about the subject.
        # It is exactly 12 bytes (Adobe TN 5116); more is room for something else.
        if len(payload) != 12:
            yield MetadataFinding("hidden bytes", f"Adobe APP14 is {size}, not 12")
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


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _structure_length(marker: int, payload: bytes) -> int | None:
    """The exact payload length ITU-T T.81 implies for a structural segment, or None
    when the segment has no fixed layout we check (DAC, DNL, DHP, EXP) or is too short
    to say (then the decoder refuses it)."""
    if marker in _SOF and len(payload) >= 6:
        return 6 + 3 * payload[5]  # P, Y, X, Nf, then Nf x (C, H/V, Tq)
    if marker == _SOS and len(payload) >= 1:
        return 4 + 2 * payload[0]  # Ns, Ns x (Cs, Td/Ta), Ss, Se, Ah/Al
    if marker == 0xDD:  # DRI
        return 2
    if marker == 0xDB:  # DQT: tables of 1 + 64 or 1 + 128 bytes
        pos = 0
        while pos < len(payload):
            pos += 1 + 64 * (2 if payload[pos] >> 4 else 1)
        return pos
    if marker == 0xC4:  # DHT: tables of 1 + 16 counts + the codes they count
        pos = 0
        while pos + 17 <= len(payload):
            pos += 17 + sum(payload[pos + 1 : pos + 17])
        return pos
    return None


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
    ihdr: bytes | None = None
    idat: list[bytes] = []
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
        if ihdr is None and ctype != b"IHDR":
            yield MetadataFinding(MALFORMED, f"PNG: first chunk is {ctype!r}, not IHDR")
            return
        if ctype == b"IHDR":
            if ihdr is not None or len(body) != 13:
                yield MetadataFinding(MALFORMED, "PNG: IHDR repeated or not 13 bytes")
                return
            ihdr = body
        elif ctype == b"IDAT":
            idat.append(body)
        yield from _png_chunk(ctype, body)
        if ctype == b"IEND":
            yield from _png_image_data(ihdr, idat)
            if body:
                yield MetadataFinding("hidden bytes", f"IEND carries {len(body)} bytes")
            if pos < end:
                yield MetadataFinding("trailing data", f"{end - pos} bytes after IEND")
            return
    yield MetadataFinding(TRUNCATED, "PNG: no IEND chunk (file cut short?)")


# Samples per pixel of each PNG colour type (PNG spec, table 11.1).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 passes: (x start, y start, x step, y step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2))
_ADAM7 += ((0, 1, 1, 2),)
# Above this many bytes of filtered scanlines (a 64 MP RGBA image is 256 MB) the IDAT
# stream is not inflated; the finding says the data could not be accounted for.
_MAX_INFLATE = 300 * 1024 * 1024


def _png_raw_size(ihdr: bytes) -> int | None:
    """Bytes of filtered scanlines the IHDR implies (filter byte per row), or None."""
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    channels = _PNG_CHANNELS.get(colour)
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


def _png_image_data(ihdr: bytes | None, idat: list[bytes]) -> Iterable[MetadataFinding]:
    """The IDAT stream must inflate to exactly the scanlines the IHDR declares.

    Bytes after the end of the zlib stream, or a stream longer than the image, are
    invisible to every viewer and a known way to smuggle data in a "clean" PNG.
    """
    if ihdr is None or not idat:
        yield MetadataFinding(MALFORMED, "PNG: no image data")
        return
    expected = _png_raw_size(ihdr)
    if expected is None:
        yield MetadataFinding(MALFORMED, "PNG: IHDR values are invalid")
        return
    if expected > _MAX_INFLATE:
        yield MetadataFinding("unchecked data", f"PNG: {expected} bytes of image data")
        return
    inflater = zlib.decompressobj()
    produced = tail = 0
    try:
        for chunk in idat:
            if inflater.eof:
                tail += len(chunk)
                continue
            # Bounded output per call, so a stream far longer than declared stops early.
            pending = chunk
            while pending and not inflater.eof:
                produced += len(inflater.decompress(pending, 1 << 20))
                pending = inflater.unconsumed_tail
                if produced > expected:
                    yield MetadataFinding("hidden bytes", "PNG: more image data than IHDR")
                    return
            if inflater.eof:
                tail += len(inflater.unused_data)
        produced += len(inflater.flush())
    except zlib.error:
        yield MetadataFinding(MALFORMED, "PNG: image data does not inflate")
        return
    if not inflater.eof or produced != expected:
        yield MetadataFinding(TRUNCATED, f"PNG: {produced} of {expected} image data bytes")
    elif tail:
        yield MetadataFinding("hidden bytes", f"PNG: {tail} bytes after the zlib stream")


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
    fourccs: list[bytes] = []
    while pos + 8 <= riff_end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + size]
        if pos + 8 + size > riff_end:
            yield MetadataFinding(TRUNCATED, f"WebP: chunk {fourcc!r} runs past the end")
            return
        pos += 8 + size + (size & 1)  # chunks are padded to an even length
        if not fourccs and fourcc not in (b"VP8 ", b"VP8L", b"VP8X"):
            yield MetadataFinding(MALFORMED, f"WebP: first chunk is {fourcc!r}")
            return
        fourccs.append(fourcc)
        yield from _webp_chunk(fourcc, body)
    if pos != riff_end:
        yield MetadataFinding(MALFORMED, "WebP: chunks do not fill the RIFF size")
    yield from _webp_layout(fourccs)
    if riff_end < len(data):
        yield MetadataFinding("trailing data", f"{len(data) - riff_end} bytes after RIFF")


def _webp_layout(fourccs: list[bytes]) -> Iterable[MetadataFinding]:
    """One still image: a simple file is one VP8/VP8L chunk; an extended one is VP8X,
    at most one ALPH, then one VP8/VP8L (animations are reported by their chunks)."""
    if b"ANIM" in fourccs or b"ANMF" in fourccs:
        return
    images = sum(f in (b"VP8 ", b"VP8L") for f in fourccs)
    if images != 1:
        yield MetadataFinding(MALFORMED, f"WebP: {images} image chunks, expected 1")
    elif fourccs[0] != b"VP8X" and len(fourccs) > 1:
        yield MetadataFinding(MALFORMED, "WebP: chunks after a simple-format image")
    elif fourccs.count(b"ALPH") > 1 or fourccs.count(b"VP8X") > 1:
        yield MetadataFinding(MALFORMED, "WebP: repeated ALPH or VP8X chunk")


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
        elif len(body) != 10 or flags & _VP8X_RESERVED or any(body[1:4]):
            # The spec fixes VP8X at 10 bytes with reserved bits zero (WebP container
            # spec, "Extended File Format"); anything else is room for hidden data.
            yield MetadataFinding("hidden bytes", f"VP8X is {size} or has reserved bits set")
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
