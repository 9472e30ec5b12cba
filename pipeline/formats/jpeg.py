"""JPEG (ITU-T T.81 annex B): the one walker of a JPEG file's marker segments.

`segments` yields every marker segment from SOI to EOI in file order. It skips the
entropy-coded data after each SOS rather than stopping at the first one: progressive files
have several scans, and APPn or COM segments between scans are legal (B.2.4, B.6), so a
reader that stops early misses them. Both the metadata findings and the embedded texts
read segments through it, so they see the same ones.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from pipeline.formats.damage import MALFORMED, TRUNCATED, Damaged

SOI = b"\xff\xd8"
SOS, EOI, COM, DQT, DHT, DRI = 0xDA, 0xD9, 0xFE, 0xDB, 0xC4, 0xDD
# Start-of-frame markers (SOF0-3, 5-7, 9-11, 13-15); 0xC4, 0xC8 and 0xCC are not frames.
SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Markers that only carry coding structure: SOFn, DHT, DAC, SOS, DQT, DNL, DRI.
STRUCTURE = SOF | {DHT, 0xCC, SOS, DQT, 0xDC, DRI}
# TEM and RST0-7 stand alone: no length field follows them.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})

# Identifiers at the start of APPn payloads (each format's own specification).
JFIF_ID = b"JFIF\0"
ADOBE_ID = b"Adobe"
EXIF_ID = b"Exif\0\0"
XMP_ID = b"http://ns.adobe.com/xap/1.0/\0"
XMP_EXTENSION_ID = b"http://ns.adobe.com/xmp/extension/\0"
ICC_ID = b"ICC_PROFILE\0"
MPF_ID = b"MPF\0"
PHOTOSHOP_ID = b"Photoshop 3.0\0"
# ExtendedXMP (XMP spec part 3, 1.1.3.1): after its identifier, a 32-byte GUID, the full
# length and this slice's offset (4 bytes each), then the slice of the packet.
_XMP_EXTENSION_HEADER = 32 + 4 + 4


class Kind(Enum):
    """What a segment is, from its marker and the identifier its payload starts with."""

    STRUCTURE = "coding structure"  # SOFn, DHT, DQT, DRI, SOS... (see STRUCTURE)
    JFIF = "JFIF APP0"
    ADOBE = "Adobe APP14"
    EXIF = "EXIF APP1"
    XMP = "XMP APP1"
    XMP_EXTENSION = "ExtendedXMP APP1"
    ICC = "ICC profile APP2"
    MPF = "multi-picture APP2"
    PHOTOSHOP = "Photoshop APP13"
    COMMENT = "COM"
    APP = "other APPn"
    OTHER = "other marker"
    END = "EOI"


_APP_KINDS = (
    (0xE0, JFIF_ID, Kind.JFIF),
    (0xEE, ADOBE_ID, Kind.ADOBE),
    (0xE1, EXIF_ID, Kind.EXIF),
    (0xE1, XMP_ID, Kind.XMP),
    (0xE1, XMP_EXTENSION_ID, Kind.XMP_EXTENSION),
    (0xE2, ICC_ID, Kind.ICC),
    (0xE2, MPF_ID, Kind.MPF),
    (0xED, PHOTOSHOP_ID, Kind.PHOTOSHOP),
)
_HEADER_SIZES = {Kind.XMP_EXTENSION: len(XMP_EXTENSION_ID) + _XMP_EXTENSION_HEADER}
_HEADER_SIZES |= {kind: len(ident) for _, ident, kind in _APP_KINDS if kind not in _HEADER_SIZES}


@dataclass(frozen=True, slots=True)
class Segment:
    """One marker segment: ``payload`` is what follows its length field (empty for EOI);
    ``end`` is the file offset just past it (for EOI: where any bytes after it begin)."""

    marker: int
    payload: bytes
    end: int

    @property
    def kind(self) -> Kind:
        if self.marker == EOI:
            return Kind.END
        if self.marker in STRUCTURE:
            return Kind.STRUCTURE
        for marker, ident, kind in _APP_KINDS:
            if self.marker == marker and self.payload.startswith(ident):
                return kind
        if self.marker == COM:
            return Kind.COMMENT
        return Kind.APP if 0xE0 <= self.marker <= 0xEF else Kind.OTHER

    @property
    def body(self) -> bytes:
        """The payload after its identifier: the TIFF structure of EXIF, the XMP packet
        (or, for ExtendedXMP, this slice of it), the ICC or MPF data, the Photoshop
        image-resource block; the whole payload for other kinds."""
        return self.payload[_HEADER_SIZES.get(self.kind, 0) :]


def is_jpeg(data: bytes) -> bool:
    return data.startswith(SOI)


def segments(data: bytes) -> Iterator[Segment]:
    """Every marker segment of ``data`` after SOI, in file order, ending with EOI.

    TEM and RSTn carry nothing and are not yielded. Raises `Damaged` where the file stops
    adding up (a byte that should be a marker is not, a length runs past the end, there
    is no EOI), after yielding every segment before that point.
    """
    if not is_jpeg(data):
        raise Damaged(MALFORMED, "JPEG: no SOI marker")
    pos, end = 2, len(data)
    while pos < end:
        if data[pos] != 0xFF:
            raise Damaged(MALFORMED, f"JPEG: expected a marker at byte {pos}")
        while pos < end and data[pos] == 0xFF:  # fill bytes before a marker (B.1.1.2)
            pos += 1
        if pos >= end:
            break
        marker = data[pos]
        pos += 1
        if marker == EOI:
            yield Segment(EOI, b"", pos)
            return
        if marker in _STANDALONE:
            continue
        if pos + 2 > end:
            break
        length = struct.unpack_from(">H", data, pos)[0]
        if length < 2 or pos + length > end:
            raise Damaged(TRUNCATED, f"JPEG: segment 0x{marker:02X} runs past the end")
        payload = data[pos + 2 : pos + length]
        pos += length
        yield Segment(marker, payload, pos)
        if marker == SOS:
            pos = _skip_entropy_data(data, pos)
    raise Damaged(TRUNCATED, "JPEG: no EOI marker (file cut short?)")


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


def structure_length(segment: Segment) -> int | None:
    """The exact payload length ITU-T T.81 implies for a structural segment, or None
    when the segment has no fixed layout we check (DAC, DNL) or is too short to say
    (then the decoder refuses it)."""
    marker, payload = segment.marker, segment.payload
    if marker in SOF and len(payload) >= 6:
        return 6 + 3 * payload[5]  # P, Y, X, Nf, then Nf x (C, H/V, Tq)
    if marker == SOS and len(payload) >= 1:
        return 4 + 2 * payload[0]  # Ns, Ns x (Cs, Td/Ta), Ss, Se, Ah/Al
    if marker == DRI:
        return 2
    if marker == DQT:  # tables of 1 + 64 or 1 + 128 bytes
        pos = 0
        while pos < len(payload):
            pos += 1 + 64 * (2 if payload[pos] >> 4 else 1)
        return pos
    if marker == DHT:  # tables of 1 + 16 counts + the codes they count
        pos = 0
        while pos + 17 <= len(payload):
            pos += 17 + sum(payload[pos + 1 : pos + 17])
        return pos
    return None


# Exact JFIF and Adobe APP14 payload sizes: JFIF 1.02 is 14 bytes plus 3 x thumbnail
# pixels; Adobe TN 5116's APP14 is 12 bytes.
JFIF_SIZE = 14
ADOBE_SIZE = 12
