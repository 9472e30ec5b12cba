"""Find metadata in an image file's bytes, from our own container walkers.

Pillow is not trusted here: it hides segments it does not understand and a check that
asks the encoder "did you write metadata?" would only repeat the encoder's own view. So
every segment, chunk or marker of the supported containers (JPEG, PNG, WebP; walked by
`pipeline.formats.jpeg`, `.png` and `.webp`) is reported except a short allowlist of
pixel-structure ones. Anything a walker cannot account for (other containers,
truncation, bad lengths or CRCs) is a finding too, so a caller that publishes only
finding-free bytes fails closed.

Details never echo text from the file (captions, names, keywords): they say what was
found and how big it is, so findings can go into logs and audit rows without leaking.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.formats import jpeg, png, tiff, webp
from pipeline.formats.damage import MALFORMED, TRUNCATED, Damaged
from pipeline.formats.iptc import IPTC_RESOURCE, resources

__all__ = [
    "DAMAGED_EXIF",
    "MALFORMED",
    "TRUNCATED",
    "UNSUPPORTED",
    "MetadataFinding",
    "describe",
    "find_metadata",
]

UNSUPPORTED = "unsupported container"
DAMAGED_EXIF = "damaged EXIF"

# The only PNG chunks the clean writer emits; everything else (even harmless sRGB or
# pHYs) is reported so that "no findings" means "exactly what encode_clean makes".
_PNG_ALLOWED = {png.IHDR, png.PLTE, png.TRNS, png.IDAT, png.IEND}
_WEBP_ALLOWED = {webp.VP8, webp.VP8L, webp.ALPH}

# EXIF tags worth naming in a finding because they identify a person or a device.
_EXIF_PERSONAL = {
    tiff.IMAGE_DESCRIPTION,
    tiff.ARTIST,
    tiff.COPYRIGHT,
    tiff.USER_COMMENT,
    tiff.XP_TITLE,
    tiff.XP_COMMENT,
    tiff.XP_AUTHOR,
    tiff.XP_KEYWORDS,
    tiff.XP_SUBJECT,
    tiff.CAMERA_OWNER_NAME,
    tiff.MAKE,
    tiff.MODEL,
}
_EXIF_SERIALS = {tiff.BODY_SERIAL_NUMBER, tiff.LENS_SERIAL_NUMBER, tiff.CAMERA_SERIAL_NUMBER}

# Above this many bytes of filtered scanlines (a 64 MP RGBA image is 256 MB) the IDAT
# stream is not inflated; the finding says the data could not be accounted for.
_MAX_INFLATE = 300 * 1024 * 1024


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
    if jpeg.is_jpeg(data):
        walk = _jpeg_findings
    elif png.is_png(data):
        walk = _png_findings
    elif webp.is_webp(data):
        walk = _webp_findings
    else:
        detail = "empty file" if not data else "only JPEG, PNG and WebP can be checked"
        return [MetadataFinding(UNSUPPORTED, detail)]
    found: list[MetadataFinding] = []
    try:
        for finding in walk(data):
            found.append(finding)
    except Damaged as exc:  # the walk stops at damage; what it found before still counts
        found.append(MetadataFinding(exc.kind, exc.detail))
    return found


def describe(findings: Iterable[MetadataFinding]) -> str:
    """A one-line summary such as ``"EXIF, GPS, XMP, 2x PNG text"``, or ``"no metadata"``."""
    counts = Counter(f.kind for f in findings)
    if not counts:
        return "no metadata"
    return ", ".join(kind if n == 1 else f"{n}x {kind}" for kind, n in counts.items())


# --- JPEG ---------------------------------------------------------------------------------


def _jpeg_findings(data: bytes) -> Iterable[MetadataFinding]:
    seen: set[int] = set()
    for segment in jpeg.segments(data):
        if segment.marker == jpeg.EOI:
            if jpeg.SOS not in seen or not seen & jpeg.SOF:
                yield MetadataFinding(MALFORMED, "JPEG: EOI before any frame or scan")
            if segment.end < len(data):
                yield MetadataFinding("trailing data", _trailing_detail(data[segment.end :]))
            return
        seen.add(segment.marker)
        yield from _jpeg_segment(segment)


def _trailing_detail(tail: bytes) -> str:
    kind = "another JPEG (MPF picture?)" if jpeg.is_jpeg(tail) else "unknown bytes"
    return f"{len(tail)} bytes after EOI: {kind}"


def _jpeg_segment(segment: jpeg.Segment) -> Iterable[MetadataFinding]:
    marker, payload, kind = segment.marker, segment.payload, segment.kind
    size = f"{len(payload)} bytes"
    if kind is jpeg.Kind.STRUCTURE:
        expected = jpeg.structure_length(segment)
        if expected is not None and expected != len(payload):
            # Coding tables and headers have exact sizes; any slack is room for a payload
            # no viewer shows (a classic steganographic hiding place).
            yield MetadataFinding(
                "hidden bytes", f"marker 0x{marker:02X} is {len(payload)} bytes, not {expected}"
            )
    elif kind is jpeg.Kind.JFIF:
        # JFIF carries only version, density and an optional thumbnail; the thumbnail is
        # a second copy of the picture, so it is reported, and so is any other extra byte.
        if len(payload) < jpeg.JFIF_SIZE:
            yield MetadataFinding(MALFORMED, f"JPEG: JFIF header is only {size}")
        elif payload[12] or payload[13]:
            yield MetadataFinding("JFIF thumbnail", f"{payload[12]}x{payload[13]} pixels")
        elif len(payload) != jpeg.JFIF_SIZE:
            yield MetadataFinding("hidden bytes", f"JFIF header is {size}, not {jpeg.JFIF_SIZE}")
    elif kind is jpeg.Kind.ADOBE:
        # APP14 "Adobe" only says whether the components are YCbCr/YCCK or raw RGB/CMYK;
        # decoders need it to get colours right and it holds nothing about the subject.
        if len(payload) != jpeg.ADOBE_SIZE:
            yield MetadataFinding("hidden bytes", f"Adobe APP14 is {size}, not {jpeg.ADOBE_SIZE}")
    elif kind is jpeg.Kind.EXIF:
        yield MetadataFinding("EXIF", f"APP1, {size}")
        yield from _exif_details(segment.body)
    elif kind in (jpeg.Kind.XMP, jpeg.Kind.XMP_EXTENSION):
        yield MetadataFinding("XMP", f"APP1, {size}")
    elif kind is jpeg.Kind.ICC:
        yield MetadataFinding("ICC profile", f"APP2, {size}")
    elif kind is jpeg.Kind.MPF:
        yield MetadataFinding("MPF", f"APP2 multi-picture index, {size}")
    elif kind is jpeg.Kind.PHOTOSHOP:
        yield MetadataFinding("Photoshop", f"APP13, {size}")
        if any(r.id == IPTC_RESOURCE for r in resources(segment.body)):
            yield MetadataFinding("IPTC", "APP13 8BIM resource 0x0404")
    elif kind is jpeg.Kind.COMMENT:
        yield MetadataFinding("JPEG comment", size)
    elif kind is jpeg.Kind.APP:
        yield MetadataFinding("unknown APPn", f"APP{marker - 0xE0}, {size}")
    else:
        yield MetadataFinding("unknown segment", f"marker 0x{marker:02X}, {size}")


# --- EXIF (a TIFF structure inside JPEG APP1, PNG eXIf or the WebP EXIF chunk) ------------


def _exif_details(block: bytes) -> Iterable[MetadataFinding]:
    """GPS, serial-number, maker-note and thumbnail findings inside one EXIF block."""
    try:
        structure = tiff.Tiff(block)
        ifds = structure.exif_ifds()
    except Damaged as exc:
        # Its own kind: a reader may then have missed the orientation tag as well.
        yield MetadataFinding(DAMAGED_EXIF, f"TIFF structure does not add up ({exc.detail})")
        return
    tags = {*ifds["0th"].entries, *(ifds["Exif"].entries if "Exif" in ifds else ())}
    personal = sorted(tiff.TAG_NAMES[tag] for tag in _EXIF_PERSONAL & tags)
    if personal:
        yield MetadataFinding("EXIF personal fields", ", ".join(personal))
    serials = sorted(tiff.TAG_NAMES[tag] for tag in _EXIF_SERIALS & tags)
    if serials:
        yield MetadataFinding("serial number", ", ".join(serials))
    if tiff.MAKER_NOTE in tags:
        yield MetadataFinding("MakerNote", "vendor block (may hold serials or names)")
    if "GPS" in ifds and ifds["GPS"].entries:
        yield MetadataFinding("GPS", f"{len(ifds['GPS'].entries)} GPS tags")
    if "1st" in ifds:
        ifd1 = ifds["1st"]
        if tiff.JPEG_INTERCHANGE_FORMAT_LENGTH in ifd1:
            length = structure.number(ifd1, tiff.JPEG_INTERCHANGE_FORMAT_LENGTH) or 0
            detail = f"{length} bytes"
        else:
            detail = "IFD1 without JPEG data"
        yield MetadataFinding("IFD1 thumbnail", detail)


# --- PNG ----------------------------------------------------------------------------------


def _png_findings(data: bytes) -> Iterable[MetadataFinding]:
    ihdr: bytes | None = None
    idat: list[bytes] = []
    for chunk in png.chunks(data):
        if chunk.type == png.IHDR:
            ihdr = chunk.body
        elif chunk.type == png.IDAT:
            idat.append(chunk.body)
        yield from _png_chunk(chunk)
        if chunk.type == png.IEND:
            yield from _png_image_data(ihdr, idat)
            if chunk.body:
                yield MetadataFinding("hidden bytes", f"IEND carries {len(chunk.body)} bytes")
            if chunk.end < len(data):
                yield MetadataFinding("trailing data", f"{len(data) - chunk.end} bytes after IEND")


def _png_image_data(ihdr: bytes | None, idat: list[bytes]) -> Iterable[MetadataFinding]:
    """The IDAT stream must inflate to exactly the scanlines the IHDR declares.

    Bytes after the end of the zlib stream, or a stream longer than the image, are
    invisible to every viewer and a known way to smuggle data in a "clean" PNG.
    """
    if ihdr is None or not idat:
        yield MetadataFinding(MALFORMED, "PNG: no image data")
        return
    expected = png.raw_size(ihdr)
    if expected is None:
        yield MetadataFinding(MALFORMED, "PNG: IHDR values are invalid")
        return
    if expected > _MAX_INFLATE:
        yield MetadataFinding("unchecked data", f"PNG: {expected} bytes of image data")
        return
    inflater = zlib.decompressobj()
    produced = tail = 0
    try:
        for body in idat:
            if inflater.eof:
                tail += len(body)
                continue
            # Bounded output per call, so a stream far longer than declared stops early.
            pending = body
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


def _png_chunk(chunk: png.Chunk) -> Iterable[MetadataFinding]:
    ctype, body = chunk.type, chunk.body
    size = f"{len(body)} bytes"
    name = ctype.decode("latin-1")
    if ctype in _PNG_ALLOWED:
        return
    if ctype == b"iTXt" and body.startswith(png.XMP_KEYWORD.encode("latin-1") + b"\0"):
        yield MetadataFinding("XMP", f"iTXt, {size}")
    elif ctype in png.TEXT_TYPES:
        yield MetadataFinding("PNG text", f"{name}, {size}")
    elif ctype == png.EXIF:
        yield MetadataFinding("PNG eXIf", size)
        yield from _exif_details(tiff.exif_tiff(body))
    elif ctype == png.ICCP:
        yield MetadataFinding("ICC profile", f"iCCP, {size}")
    elif ctype == png.TIME:
        yield MetadataFinding("PNG time", "last-modification time")
    else:
        yield MetadataFinding("PNG chunk", f"{name}, {size}")


# --- WebP ---------------------------------------------------------------------------------


def _webp_findings(data: bytes) -> Iterable[MetadataFinding]:
    fourccs: list[bytes] = []
    for chunk in webp.chunks(data):
        fourccs.append(chunk.fourcc)
        yield from _webp_chunk(chunk)
    problem = webp.layout_problem(fourccs)
    if problem:
        yield MetadataFinding(MALFORMED, problem)
    end = webp.riff_end(data)
    if end < len(data):
        yield MetadataFinding("trailing data", f"{len(data) - end} bytes after RIFF")


def _webp_chunk(chunk: webp.Chunk) -> Iterable[MetadataFinding]:
    fourcc, body = chunk.fourcc, chunk.body
    size = f"{len(body)} bytes"
    if fourcc in _WEBP_ALLOWED:
        return
    if fourcc == webp.VP8X:
        flags = body[0] if body else 0
        # VP8X itself is only canvas size and flags; the flags matter because they tell
        # readers to look for metadata or animation chunks.
        if flags & (webp.VP8X_ICC | webp.VP8X_EXIF | webp.VP8X_XMP | webp.VP8X_ANIM):
            yield MetadataFinding("VP8X flags", f"metadata/animation flags 0x{flags:02X}")
        elif len(body) != webp.VP8X_SIZE or flags & webp.VP8X_RESERVED or any(body[1:4]):
            # The spec fixes VP8X at 10 bytes with reserved bits zero; anything else is
            # room for hidden data.
            yield MetadataFinding("hidden bytes", f"VP8X is {size} or has reserved bits set")
    elif fourcc == webp.EXIF:
        yield MetadataFinding("EXIF", f"WebP EXIF chunk, {size}")
        yield from _exif_details(tiff.exif_tiff(body))
    elif fourcc == webp.XMP:
        yield MetadataFinding("XMP", f"WebP XMP chunk, {size}")
    elif fourcc == webp.ICCP:
        yield MetadataFinding("ICC profile", f"WebP ICCP chunk, {size}")
    elif fourcc in (webp.ANIM, webp.ANMF):
        yield MetadataFinding("WebP animation", f"{fourcc.decode('latin-1')}, {size}")
    else:
        yield MetadataFinding("unknown WebP chunk", f"{fourcc!r}, {size}")
