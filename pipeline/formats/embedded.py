"""The texts a photo carries in its own metadata: captions, titles, keywords, names.

Photos arrive already captioned, and the captions name children: Lightroom and Photo
Mechanic write IPTC Caption-Abstract and XMP dc:description, Lightroom's face tagging
writes MWG face-region names and Iptc4xmpExt:PersonInImage, Windows Photos writes
Microsoft region PersonDisplayName and the XP* tags, digiKam writes TagsList, phones and
cameras write EXIF ImageDescription and UserComment, and image editors write PNG text.
`embedded_texts` reads all of them from the file's bytes, through the same container
walkers `pipeline.formats.findings` uses (`pipeline.formats.jpeg`, `.png`, `.webp`, `.tiff`,
`.iptc`, `.xmp`, `.heif`), so that the caption can be rewritten and every field can be
searched for pupils' full names; both see exactly the same segments and chunks. The
bytes themselves are never published: `pipeline.writing` encodes new files from pixels
only.

Every field read is untrusted: sizes are bounded, XML with a DTD is refused, compressed
text is inflated to a bound, and any parser failure becomes a *problem* (a reason
string), never an exception. No problem text quotes the file's contents.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass, field

from pipeline.formats import heif, iptc, jpeg, png, tiff, webp, xmp
from pipeline.formats.damage import Damaged
from pipeline.formats.xmp import MAX_XML_BYTES as MAX_XML_BYTES

# A caption or tag longer than this is cut (no real caption is this long).
MAX_FIELD_CHARS = 2000
# At most this many fields per file; a file with thousands of keywords is refused beyond.
MAX_FIELDS = 500
# Inflated PNG text beyond this is not read (reported as a problem); XMP packets beyond
# MAX_XML_BYTES are not parsed.
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
        if jpeg.is_jpeg(data):
            _jpeg(data, found)
        elif png.is_png(data):
            _png(data, found)
        elif webp.is_webp(data):
            _webp(data, found)
        elif data[:4] in (tiff.LITTLE_ENDIAN, tiff.BIG_ENDIAN):
            _exif(data, found, whole_file=True)
        elif heif.is_heif(data):
            _heif(data, found)
        else:
            found.problems.append(
                "captions can be read from JPEG, PNG, WebP, TIFF and HEIC/HEIF only"
            )
    except Damaged as exc:  # the walk stops there; the fields read before it are kept
        found.problems.append(exc.detail)
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
    extended_xmp: list[bytes] = []
    try:
        for segment in jpeg.segments(data):
            kind = segment.kind
            if kind is jpeg.Kind.EXIF:
                _exif(segment.body, found)
            elif kind is jpeg.Kind.XMP:
                _xmp(segment.body, found)
            elif kind is jpeg.Kind.XMP_EXTENSION:
                extended_xmp.append(segment.body)
            elif kind is jpeg.Kind.PHOTOSHOP:
                _photoshop(segment.body, found)
            elif kind is jpeg.Kind.COMMENT:
                found._add("JPEG comment", segment.payload)
    finally:
        # ExtendedXMP slices come in file order; read what arrived even if the file is cut.
        if extended_xmp:
            _xmp(b"".join(extended_xmp), found)


# --- Photoshop image resources and IPTC IIM ----------------------------------------------------


def _photoshop(blob: bytes, found: EmbeddedText) -> None:
    """The IPTC block (resource 0x0404) of a Photoshop image-resource block."""
    for resource in iptc.resources(blob):
        if resource.id == iptc.IPTC_RESOURCE:
            _iptc(resource.body, found)


def _iptc(blob: bytes, found: EmbeddedText) -> None:
    try:
        for number, text in iptc.record_2_texts(blob):
            found._add(f"IPTC {iptc.RECORD_2_NAMES[number]}", text)
    except Damaged as exc:
        found.problems.append(exc.detail)


# --- EXIF / TIFF -----------------------------------------------------------------------------

_XP_TAGS = (tiff.XP_TITLE, tiff.XP_COMMENT, tiff.XP_SUBJECT, tiff.XP_KEYWORDS)


def _exif(block: bytes, found: EmbeddedText, *, whole_file: bool = False) -> None:
    """The text tags of an EXIF block, or of a whole TIFF file (``whole_file``), which
    also keeps XMP, IPTC and Photoshop resources in IFD0 tags."""
    try:
        structure = tiff.Tiff(block)
    except Damaged:
        found.problems.append("EXIF block has no TIFF header")
        return
    try:
        ifd0 = structure.first_ifd()
    except Damaged:
        found.problems.append("EXIF block is damaged")
        return
    found._add("EXIF ImageDescription", structure.value(ifd0, tiff.IMAGE_DESCRIPTION))
    for tag in _XP_TAGS:
        raw = structure.value(ifd0, tag)
        if raw is not None:
            found._add(f"EXIF {tiff.TAG_NAMES[tag]}", _utf16le(raw))
    if whole_file:
        for tag, read in ((tiff.XMP, _xmp), (tiff.IPTC, _iptc), (tiff.PHOTOSHOP, _photoshop)):
            raw = structure.value(ifd0, tag)
            if raw is not None:
                read(raw, found)
    try:
        exif_ifd = structure.sub_ifd(ifd0, tiff.EXIF_IFD)
    except Damaged:
        found.problems.append("EXIF sub-IFD is damaged")
        return
    if exif_ifd is not None:
        raw = structure.value(exif_ifd, tiff.USER_COMMENT)
        if raw is not None:
            found._add("EXIF UserComment", _user_comment(raw, structure.order))


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


def _heif(data: bytes, found: EmbeddedText) -> None:
    """HEIC/HEIF keeps EXIF and XMP as items (HEIF has no IPTC-IIM)."""
    for kind, blob in heif.metadata_items(data):
        if kind == heif.EXIF:
            _exif(tiff.exif_tiff(blob), found)
        else:
            _xmp(blob, found)


# --- XMP -------------------------------------------------------------------------------------

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


def _xmp(packet: bytes, found: EmbeddedText) -> None:
    try:
        root = xmp.parse(packet)
    except xmp.Refused as exc:
        found.problems.append(str(exc))
        return
    for key, value in xmp.property_values(root, _XMP_PROPERTIES):
        found._add(_XMP_PROPERTIES[key], value)


# --- PNG and WebP ----------------------------------------------------------------------------


def _inflate(data: bytes) -> bytes | None:
    d = zlib.decompressobj()
    out = d.decompress(data, MAX_INFLATED_BYTES + 1)
    return None if len(out) > MAX_INFLATED_BYTES else out


def _png(data: bytes, found: EmbeddedText) -> None:
    for chunk in png.chunks(data):
        if chunk.type == png.EXIF:
            _exif(tiff.exif_tiff(chunk.body), found)
            continue
        text = png.text_chunk(chunk)
        if text is None:
            continue
        raw: bytes | None = text.text
        if text.compressed:
            raw = _inflate(text.text) if text.method == 0 else None
            if raw is None:
                kind = chunk.type.decode("latin-1")
                found.problems.append(f"PNG {kind} text could not be inflated within bounds")
                continue
        if chunk.type == b"iTXt" and text.keyword == png.XMP_KEYWORD:
            _xmp(raw, found)
        elif chunk.type != b"iTXt" and text.keyword.startswith(_RAW_PROFILE):
            _raw_profile(text.keyword[len(_RAW_PROFILE) :].strip().lower(), raw, found)
        else:
            found._add(f"PNG {text.keyword}", raw.decode(text.encoding, errors="replace"))


# ImageMagick's tEXt/zTXt keyword for a metadata profile stored as hex text.
_RAW_PROFILE = "Raw profile type "


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
        if blob.startswith(iptc.SIGNATURE):
            _photoshop(blob, found)
        else:
            _iptc(blob, found)
    elif kind in ("exif", "app1"):
        _exif(tiff.exif_tiff(blob), found)
    elif kind == "xmp":
        _xmp(blob, found)


def _webp(data: bytes, found: EmbeddedText) -> None:
    for chunk in webp.chunks(data):
        if chunk.fourcc == webp.EXIF:
            _exif(tiff.exif_tiff(chunk.body), found)
        elif chunk.fourcc == webp.XMP:
            _xmp(chunk.body, found)
