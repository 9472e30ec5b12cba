"""TIFF 6.0 structures (a TIFF file, or the EXIF block of a JPEG, PNG, WebP or HEIF).

The one reader of IFDs, written here rather than calling piexif, which on hostile input
builds struct formats of ``count`` characters (a 4-byte count field can ask for 4 GB) and
opens non-TIFF bytes as a file name. Entries are read lazily: an IFD of 65,535 entries
each claiming a large value costs nothing until a value is asked for, and no value over
`MAX_VALUE_BYTES` is ever read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pipeline.formats.damage import MALFORMED, Damaged

LITTLE_ENDIAN, BIG_ENDIAN = b"II*\0", b"MM\0*"
# JPEG APP1 (EXIF 2.32, 4.5.4) puts this before the TIFF header; PNG eXIf and WebP EXIF
# should not, but writers often copy it along.
EXIF_HEADER = b"Exif\0\0"
# A value larger than this is not read (no text field a school cares about is this long).
MAX_VALUE_BYTES = 256 * 1024

# Tags (TIFF 6.0, EXIF 2.32, Microsoft's XP tags, DNG for CameraSerialNumber).
IMAGE_DESCRIPTION, MAKE, MODEL, ARTIST = 0x010E, 0x010F, 0x0110, 0x013B
JPEG_INTERCHANGE_FORMAT_LENGTH = 0x0202  # IFD1: the thumbnail's size in bytes
XMP, COPYRIGHT, IPTC, PHOTOSHOP = 0x02BC, 0x8298, 0x83BB, 0x8649
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
USER_COMMENT, MAKER_NOTE = 0x9286, 0x927C
XP_TITLE, XP_COMMENT, XP_AUTHOR, XP_KEYWORDS, XP_SUBJECT = 0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F
CAMERA_OWNER_NAME, BODY_SERIAL_NUMBER, LENS_SERIAL_NUMBER = 0xA430, 0xA431, 0xA435
CAMERA_SERIAL_NUMBER = 0xC62F
TAG_NAMES = {
    IMAGE_DESCRIPTION: "ImageDescription",
    MAKE: "Make",
    MODEL: "Model",
    ARTIST: "Artist",
    COPYRIGHT: "Copyright",
    USER_COMMENT: "UserComment",
    MAKER_NOTE: "MakerNote",
    XP_TITLE: "XPTitle",
    XP_COMMENT: "XPComment",
    XP_AUTHOR: "XPAuthor",
    XP_KEYWORDS: "XPKeywords",
    XP_SUBJECT: "XPSubject",
    CAMERA_OWNER_NAME: "CameraOwnerName",
    BODY_SERIAL_NUMBER: "BodySerialNumber",
    LENS_SERIAL_NUMBER: "LensSerialNumber",
    CAMERA_SERIAL_NUMBER: "CameraSerialNumber",
}

# Bytes per value of each field type (TIFF 6.0 section 2; unknown types count as 1).
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
_SHORT, _LONG = 3, 4


def exif_tiff(blob: bytes) -> bytes:
    """An EXIF block's TIFF structure, with the ``Exif\\0\\0`` header dropped if present."""
    return blob[len(EXIF_HEADER) :] if blob.startswith(EXIF_HEADER) else blob


@dataclass(frozen=True, slots=True)
class Entry:
    """One IFD entry: its field type, value count and where its value bytes are."""

    tag: int
    type: int
    count: int
    at: int  # offset of the value in the TIFF structure (inline values: in the entry)
    size: int  # bytes of the value


@dataclass(frozen=True, slots=True)
class Ifd:
    """One image file directory: its entries by tag (a repeated tag: the last one) and
    the offset of the next IFD (0 for none)."""

    entries: dict[int, Entry]
    next: int

    def __contains__(self, tag: int) -> bool:
        return tag in self.entries


class Tiff:
    """A TIFF structure: ``order`` is its struct byte order, ``"<"`` or ``">"``.

    Raises `Damaged` (``MALFORMED``) when ``data`` has no TIFF header.
    """

    def __init__(self, data: bytes) -> None:
        order = {LITTLE_ENDIAN: "<", BIG_ENDIAN: ">"}.get(data[:4])
        if order is None or len(data) < 8:
            raise Damaged(MALFORMED, "no TIFF header")
        self.data = data
        self.order = order

    def ifd(self, offset: int) -> Ifd:
        """The IFD at ``offset``; `Damaged` if it lies outside the data."""
        data, order = self.data, self.order
        if offset < 8 or offset + 2 > len(data):
            raise Damaged(MALFORMED, f"IFD offset {offset} out of range")
        (count,) = struct.unpack_from(order + "H", data, offset)
        if offset + 2 + 12 * count + 4 > len(data):
            raise Damaged(MALFORMED, "IFD runs past the end")
        entries = {}
        for i in range(count):
            at = offset + 2 + 12 * i
            tag, typ, n = struct.unpack_from(order + "HHI", data, at)
            size = _TYPE_SIZES.get(typ, 1) * n
            if size > 4:
                (at,) = struct.unpack_from(order + "I", data, at + 8)
            else:
                at += 8
            entries[tag] = Entry(tag, typ, n, at, size)
        (next_ifd,) = struct.unpack_from(order + "I", data, offset + 2 + 12 * count)
        return Ifd(entries, next_ifd)

    def first_ifd(self) -> Ifd:
        """IFD0, the one the header points to."""
        return self.ifd(struct.unpack_from(self.order + "I", self.data, 4)[0])

    def sub_ifd(self, parent: Ifd, pointer_tag: int) -> Ifd | None:
        """The IFD that ``pointer_tag`` (`EXIF_IFD`, `GPS_IFD`) of ``parent`` points to,
        None without that tag; `Damaged` if the pointer is not an offset into the data."""
        if pointer_tag not in parent:
            return None
        offset = self.number(parent, pointer_tag)
        return self.ifd(0 if offset is None else offset)

    def number(self, ifd: Ifd, tag: int) -> int | None:
        """The value of a single SHORT or LONG entry (pointers, lengths), else None."""
        entry = ifd.entries.get(tag)
        if entry is None or entry.count != 1 or entry.type not in (_SHORT, _LONG):
            return None
        return struct.unpack_from(
            self.order + ("H" if entry.type == _SHORT else "I"), self.data, entry.at
        )[0]

    def value(self, ifd: Ifd, tag: int) -> bytes | None:
        """The raw value bytes of ``tag``; None when it is absent, over `MAX_VALUE_BYTES`
        or stored outside the data."""
        entry = ifd.entries.get(tag)
        if entry is None or entry.size > MAX_VALUE_BYTES or entry.at + entry.size > len(self.data):
            return None
        return self.data[entry.at : entry.at + entry.size]

    def exif_ifds(self) -> dict[str, Ifd]:
        """IFD0 ("0th"), the Exif and GPS IFDs and IFD1 ("1st") where present, all read
        strictly: any of them outside the data raises `Damaged`."""
        ifds = {"0th": self.first_ifd()}
        for name, pointer_tag in (("Exif", EXIF_IFD), ("GPS", GPS_IFD)):
            sub = self.sub_ifd(ifds["0th"], pointer_tag)
            if sub is not None:
                ifds[name] = sub
        if ifds["0th"].next:
            ifds["1st"] = self.ifd(ifds["0th"].next)
        return ifds
