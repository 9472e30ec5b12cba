"""The texts a photo carries in its own metadata: captions, titles, keywords, names.

Photos arrive already captioned, and the captions name children: Lightroom and Photo
Mechanic write IPTC Caption-Abstract and XMP dc:description, Lightroom's face tagging
writes MWG face-region names and Iptc4xmpExt:PersonInImage, Windows Photos writes
Microsoft region PersonDisplayName and the XP* tags, digiKam writes TagsList, phones and
cameras write EXIF ImageDescription and UserComment, and image editors write PNG text.
`embedded_texts` reads all of them from the file's bytes (by walking the container
ourselves, as `pipeline.formats.findings` does) so that the caption can be rewritten and every
field can be searched for pupils' full names. The bytes themselves are never published:
`pipeline.writing` encodes new files from pixels only.

Every field read is untrusted: sizes are bounded, XML with a DTD is refused, compressed
text is inflated to a bound, and any parser failure becomes a *problem* (a reason
string), never an exception. No problem text quotes the file's contents.
"""

from __future__ import annotations

import io
import re
import struct
import unicodedata
import zlib
from dataclasses import dataclass, field
from xml.etree import ElementTree

# A caption or tag longer than this is cut (no real caption is this long).
MAX_FIELD_CHARS = 2000
# At most this many fields per file; a file with thousands of keywords is refused beyond.
MAX_FIELDS = 500
# XMP packets and inflated PNG text beyond this are not parsed (reported as a problem).
MAX_XML_BYTES = 2 * 1024 * 1024
MAX_INFLATED_BYTES = 1024 * 1024

# Fields that may serve as the photo's caption, best first. The others (people, keywords,
# comments) are still searched for full names by the pre-check.
CAPTION_FIELDS = (
    "IPTC Caption-Abstract",
    "XMP dc:description",
    "EXIF ImageDescription",
    "EXIF XPComment",
    "EXIF UserComment",
    "PNG Description",
    "PNG Comment",
    "XMP dc:title",
    "EXIF XPTitle",
    "PNG Title",
    "IPTC Headline",
    "XMP photoshop:Headline",
    "IPTC Object Name",
    "EXIF XPSubject",
)
# What cameras write into ImageDescription when nobody typed a caption.
_CAMERA_FILLER = frozenset(
    {"olympus digital camera", "sony dsc", "digital camera", "dcim", "default", "untitled"}
)


@dataclass(frozen=True)
class TextField:
    """One text value found in a file: ``name`` says which field ("XMP dc:description")."""

    name: str
    text: str


@dataclass
class EmbeddedText:
    """Every text field read from a file, and what could not be read (``problems``)."""

    fields: list[TextField] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def caption(self) -> str | None:
        """The best caption-like field (see `CAPTION_FIELDS`), or None."""
        for name in CAPTION_FIELDS:
            for f in self.fields:
                if f.name == name and f.text.casefold() not in _CAMERA_FILLER:
                    return f.text
        return None

    def texts(self) -> list[str]:
        return [f.text for f in self.fields]

    def _add(self, name: str, value: str | bytes | None) -> None:
        if value is None or len(self.fields) >= MAX_FIELDS:
            return
        text = clean_text(value if isinstance(value, str) else _decode_text(value))
        if text and TextField(name, text) not in self.fields:
            self.fields.append(TextField(name, text))


def embedded_texts(data: bytes) -> EmbeddedText:
    """Every caption, title, keyword and person name stored in ``data`` (JPEG, PNG, WebP,
    TIFF or HEIC/HEIF); other containers give no fields and one problem. Never raises."""
    found = EmbeddedText()
    try:
        if data.startswith(b"\xff\xd8"):
            _jpeg(data, found)
        elif data.startswith(b"\x89PNG\r\n\x1a\n"):
            _png(data, found)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            _webp(data, found)
        elif data[:4] in (b"II*\0", b"MM\0*"):
            _tiff_file(data, found)
        elif data[4:8] == b"ftyp":
            _heif(data, found)
        else:
            found.problems.append(
                "captions can be read from JPEG, PNG, WebP, TIFF and HEIC/HEIF only"
            )
    except Exception as exc:  # noqa: BLE001 - hostile bytes: any failure is "no caption"
        found.problems.append(f"metadata could not be read ({type(exc).__name__})")
    return found


def embedded_caption(data: bytes) -> str | None:
    """The caption stored in the photo itself (`EmbeddedText.caption`), or None."""
    return embedded_texts(data).caption


# --- text helpers --------------------------------------------------------------------------


def clean_text(text: str) -> str:
    """Control characters become spaces, runs of spaces collapse, length is bounded."""
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:MAX_FIELD_CHARS]


def _decode_text(raw: bytes) -> str:
    raw = raw.split(b"\0", 1)[0] if b"\0" in raw.rstrip(b"\0") else raw.rstrip(b"\0")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _utf16le(raw: bytes) -> str:
    if len(raw) % 2:
        raw = raw[:-1]
    return raw.decode("utf-16-le", errors="replace").split("\0", 1)[0]


# --- JPEG ------------------------------------------------------------------------------------


def _jpeg(data: bytes, found: EmbeddedText) -> None:
    pos, end = 2, len(data)
    xmp_extended: list[bytes] = []
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD9, 0xDA):  # EOI, SOS: no metadata segments we read come after
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2 or pos + 2 + length > end:
            found.problems.append("JPEG segment runs past the end of the file")
            return
        payload = data[pos + 4 : pos + 2 + length]
        pos += 2 + length
        if marker == 0xE1 and payload.startswith(b"Exif\0\0"):
            _exif(payload[6:], found)
        elif marker == 0xE1 and payload.startswith(b"http://ns.adobe.com/xap/1.0/\0"):
            _xmp(payload[29:], found)
        elif marker == 0xE1 and payload.startswith(b"http://ns.adobe.com/xmp/extension/\0"):
            # ExtendedXMP: GUID (32), full length (4), offset (4), then a slice.
            xmp_extended.append(payload[35 + 40 :])
        elif marker == 0xED and payload.startswith(b"Photoshop 3.0\0"):
            _photoshop(payload[14:], found)
        elif marker == 0xFE:
            found._add("JPEG comment", payload)
    if xmp_extended:
        _xmp(b"".join(xmp_extended), found)


def _photoshop(blob: bytes, found: EmbeddedText) -> None:
    """The IPTC block (resource 0x0404) of a Photoshop image-resource block."""
    pos = 0
    while blob[pos : pos + 4] == b"8BIM" and pos + 8 <= len(blob):
        (res_id,) = struct.unpack_from(">H", blob, pos + 4)
        name_len = blob[pos + 6]
        pos += 6 + ((name_len + 2) & ~1)  # Pascal name padded to an even length
        if pos + 4 > len(blob):
            return
        (size,) = struct.unpack_from(">I", blob, pos)
        body = blob[pos + 4 : pos + 4 + size]
        pos += 4 + ((size + 1) & ~1)
        if res_id == 0x0404:
            _iptc(body, found)


# IPTC IIM record 2 datasets (IPTC-NAA IIM 4.2).
_IPTC_FIELDS = {
    120: "IPTC Caption-Abstract",
    105: "IPTC Headline",
    5: "IPTC Object Name",
    25: "IPTC Keywords",
    122: "IPTC Writer-Editor",
}


def _iptc(blob: bytes, found: EmbeddedText) -> None:
    utf8 = False
    pos = 0
    while pos + 5 <= len(blob) and blob[pos] == 0x1C:
        record, dataset = blob[pos + 1], blob[pos + 2]
        (size,) = struct.unpack_from(">H", blob, pos + 3)
        pos += 5
        if size & 0x8000:  # extended dataset: the next (size & 0x7fff) bytes hold the length
            n = size & 0x7FFF
            if n > 4 or pos + n > len(blob):
                found.problems.append("IPTC dataset length is damaged")
                return
            size = int.from_bytes(blob[pos : pos + n], "big")
            pos += n
        value = blob[pos : pos + size]
        pos += size
        if record == 1 and dataset == 90:
            utf8 = value == b"\x1b%G"  # CodedCharacterSet: ESC % G is UTF-8
        elif record == 2 and dataset in _IPTC_FIELDS:
            text = value.decode("utf-8" if utf8 else "latin-1", errors="replace")
            if not utf8:  # many writers store UTF-8 without saying so
                try:
                    text = value.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            found._add(_IPTC_FIELDS[dataset], text)


# --- EXIF / TIFF -----------------------------------------------------------------------------

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_MAX_VALUE_BYTES = 256 * 1024
_EXIF_IFD, _IMAGE_DESCRIPTION, _USER_COMMENT = 0x8769, 0x010E, 0x9286
_XP_TAGS = {0x9C9B: "EXIF XPTitle", 0x9C9C: "EXIF XPComment", 0x9C9F: "EXIF XPSubject"}
_XP_TAGS |= {0x9C9E: "EXIF XPKeywords"}
_TIFF_XMP, _TIFF_IPTC, _TIFF_PHOTOSHOP = 0x02BC, 0x83BB, 0x8649


def _ifd(tiff: bytes, order: str, offset: int) -> tuple[dict[int, bytes], int]:
    """Raw value bytes of every entry of the IFD at ``offset``, and the next IFD offset."""
    if offset < 8 or offset + 2 > len(tiff):
        raise ValueError("IFD offset out of range")
    (count,) = struct.unpack_from(order + "H", tiff, offset)
    if offset + 2 + 12 * count + 4 > len(tiff):
        raise ValueError("IFD runs past the end")
    values: dict[int, bytes] = {}
    for i in range(count):
        entry = offset + 2 + 12 * i
        tag, typ, n = struct.unpack_from(order + "HHI", tiff, entry)
        size = _TYPE_SIZES.get(typ, 1) * n
        if size > _MAX_VALUE_BYTES:
            continue
        if size <= 4:
            values[tag] = tiff[entry + 8 : entry + 8 + size]
        else:
            (at,) = struct.unpack_from(order + "I", tiff, entry + 8)
            if at + size <= len(tiff):
                values[tag] = tiff[at : at + size]
    (next_ifd,) = struct.unpack_from(order + "I", tiff, offset + 2 + 12 * count)
    return values, next_ifd


def _exif(tiff: bytes, found: EmbeddedText, *, whole_file: bool = False) -> None:
    order = {b"II*\0": "<", b"MM\0*": ">"}.get(tiff[:4])
    if order is None or len(tiff) < 8:
        found.problems.append("EXIF block has no TIFF header")
        return
    try:
        ifd0, _next = _ifd(tiff, order, struct.unpack_from(order + "I", tiff, 4)[0])
    except (ValueError, struct.error):
        found.problems.append("EXIF block is damaged")
        return
    if _IMAGE_DESCRIPTION in ifd0:
        found._add("EXIF ImageDescription", ifd0[_IMAGE_DESCRIPTION])
    for tag, name in _XP_TAGS.items():
        if tag in ifd0:
            found._add(name, _utf16le(ifd0[tag]))
    if whole_file:  # a TIFF file keeps XMP and IPTC in IFD0 tags
        if _TIFF_XMP in ifd0:
            _xmp(ifd0[_TIFF_XMP], found)
        if _TIFF_IPTC in ifd0:
            _iptc(ifd0[_TIFF_IPTC], found)
        if _TIFF_PHOTOSHOP in ifd0:
            _photoshop(ifd0[_TIFF_PHOTOSHOP], found)
    pointer = ifd0.get(_EXIF_IFD)
    if pointer is not None and len(pointer) == 4:
        try:
            exif_ifd, _ = _ifd(tiff, order, struct.unpack(order + "I", pointer)[0])
        except (ValueError, struct.error):
            found.problems.append("EXIF sub-IFD is damaged")
            return
        if _USER_COMMENT in exif_ifd:
            found._add("EXIF UserComment", _user_comment(exif_ifd[_USER_COMMENT], order))


def _heif(data: bytes, found: EmbeddedText) -> None:
    """HEIC/HEIF keeps EXIF and XMP as items; libheif reads them without decoding pixels
    (HEIF has no IPTC-IIM)."""
    import pillow_heif

    heif_file = pillow_heif.open_heif(io.BytesIO(data))
    exif = heif_file.info.get("exif")
    if exif:
        _exif(exif[6:] if exif.startswith(b"Exif\0\0") else exif, found)
    xmp = heif_file.info.get("xmp")
    if xmp:
        _xmp(xmp, found)


def _user_comment(raw: bytes, order: str) -> str:
    """EXIF 2.32 UserComment: an 8-byte character code, then the text."""
    code, text = raw[:8], raw[8:]
    if code.startswith(b"UNICODE"):
        # The spec says UCS-2 in the TIFF's byte order; some writers ignore that.
        first = "utf-16-le" if order == "<" else "utf-16-be"
        second = "utf-16-be" if first == "utf-16-le" else "utf-16-le"
        for enc in (first, second):
            decoded = text[: len(text) & ~1].decode(enc, errors="replace")
            if decoded.isprintable() or "\ufffd" not in decoded:
                return decoded.split("\0", 1)[0]
        return ""
    if code.startswith(b"JIS"):
        return text.decode("shift_jis", errors="replace")
    return _decode_text(text)


def _tiff_file(data: bytes, found: EmbeddedText) -> None:
    _exif(data, found, whole_file=True)


# --- XMP -------------------------------------------------------------------------------------

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XMP_PROPERTIES = {
    ("http://purl.org/dc/elements/1.1/", "description"): "XMP dc:description",
    ("http://purl.org/dc/elements/1.1/", "title"): "XMP dc:title",
    ("http://purl.org/dc/elements/1.1/", "subject"): "XMP dc:subject",
    ("http://ns.adobe.com/photoshop/1.0/", "Headline"): "XMP photoshop:Headline",
    ("http://iptc.org/std/Iptc4xmpExt/2008-02-29/", "PersonInImage"): "XMP PersonInImage",
    ("http://www.metadataworkinggroup.com/schemas/regions/", "Name"): "XMP mwg-rs:Name",
    ("http://ns.microsoft.com/photo/1.2/t/Region#", "PersonDisplayName"): (
        "XMP MP PersonDisplayName"
    ),
    ("http://www.digikam.org/ns/1.0/", "TagsList"): "XMP digiKam:TagsList",
    ("http://ns.adobe.com/lightroom/1.0/", "hierarchicalSubject"): "XMP lr:hierarchicalSubject",
    ("http://ns.adobe.com/exif/1.0/", "UserComment"): "XMP exif:UserComment",
    ("http://ns.adobe.com/tiff/1.0/", "ImageDescription"): "XMP tiff:ImageDescription",
}


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _xmp(packet: bytes, found: EmbeddedText) -> None:
    if len(packet) > MAX_XML_BYTES:
        found.problems.append(f"XMP packet over {MAX_XML_BYTES:,} bytes was not read")
        return
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        # XMP never needs a DTD; entities are how XML bombs and external fetches work.
        found.problems.append("XMP packet declares a DTD and was not read")
        return
    start = packet.find(b"<x:xmpmeta")
    if start < 0:
        start = packet.find(b"<rdf:RDF")
    end_tag = packet.rfind(b">")
    if start < 0 or end_tag < start:
        found.problems.append("XMP packet has no rdf:RDF or x:xmpmeta element")
        return
    xml = packet[start : end_tag + 1]
    # Drop a trailing <?xpacket end?> processing instruction if it was included.
    xml = re.sub(rb"<\?xpacket[^>]*\?>\s*\Z", b"", xml)
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        found.problems.append("XMP packet is not well-formed XML")
        return
    for element in root.iter():
        # Shorthand properties are attributes of rdf:Description (and of region structs).
        for attr, value in element.attrib.items():
            name = _XMP_PROPERTIES.get(_split(attr))
            if name:
                found._add(name, value)
        name = _XMP_PROPERTIES.get(_split(element.tag))
        if name is None:
            continue
        items = [li for li in element.iter(f"{{{_RDF}}}li")]
        if items:
            for li in items:
                found._add(name, "".join(li.itertext()))
        else:
            found._add(name, "".join(element.itertext()))


# --- PNG and WebP ----------------------------------------------------------------------------


def _inflate(data: bytes) -> bytes | None:
    d = zlib.decompressobj()
    out = d.decompress(data, MAX_INFLATED_BYTES + 1)
    return None if len(out) > MAX_INFLATED_BYTES else out


def _png(data: bytes, found: EmbeddedText) -> None:
    pos = 8
    while pos + 12 <= len(data):
        length, ctype = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if len(body) < length:
            found.problems.append("PNG chunk runs past the end of the file")
            return
        if ctype == b"IEND":
            return
        if ctype not in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"):
            continue
        if ctype == b"eXIf":
            _exif(body[6:] if body.startswith(b"Exif\0\0") else body, found)
            continue
        keyword, _, rest = body.partition(b"\0")
        key = keyword.decode("latin-1", errors="replace")[:79]
        text: bytes | None
        if ctype in (b"tEXt", b"zTXt"):
            text = rest
            if ctype == b"zTXt":
                text = _inflate(rest[1:]) if rest[:1] == b"\0" else None
                if text is None:
                    found.problems.append(f"PNG zTXt {key!r} could not be inflated within bounds")
                    continue
            if key.startswith("Raw profile type "):
                _raw_profile(key[17:].strip().lower(), text, found)
            else:
                found._add(f"PNG {key}", text.decode("latin-1"))
            continue
        # iTXt: compression flag, method, language tag\0, translated keyword\0, text.
        if len(rest) < 2:
            continue
        flag, method, tail = rest[0], rest[1], rest[2:]
        _lang, _, tail = tail.partition(b"\0")
        _translated, _, text = tail.partition(b"\0")
        if flag == 1:
            text = _inflate(text) if method == 0 else None
            if text is None:
                found.problems.append(f"PNG iTXt {key!r} could not be inflated within bounds")
                continue
        if key == "XML:com.adobe.xmp":
            _xmp(text, found)
        else:
            found._add(f"PNG {key}", text.decode("utf-8", errors="replace"))


def _raw_profile(kind: str, text: bytes, found: EmbeddedText) -> None:
    """ImageMagick's "Raw profile type iptc/exif/xmp" text: a name line, a length line,
    then the profile in hex."""
    lines = text.decode("latin-1").strip().split("\n", 2)
    if len(lines) < 3:
        return
    try:
        blob = bytes.fromhex("".join(lines[2].split()))
    except ValueError:
        found.problems.append(f"PNG raw {kind} profile is not valid hex")
        return
    if kind in ("iptc", "8bim"):
        if blob.startswith(b"8BIM"):
            _photoshop(blob, found)
        else:
            _iptc(blob, found)
    elif kind in ("exif", "app1"):
        _exif(blob[6:] if blob.startswith(b"Exif\0\0") else blob, found)
    elif kind == "xmp":
        _xmp(blob, found)


def _webp(data: bytes, found: EmbeddedText) -> None:
    pos, end = 12, min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    while pos + 8 <= end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
        if fourcc == b"EXIF":
            _exif(body[6:] if body.startswith(b"Exif\0\0") else body, found)
        elif fourcc == b"XMP ":
            _xmp(body, found)
