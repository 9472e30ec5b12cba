"""Photoshop image resources ("8BIM" blocks) and the IPTC IIM datasets they carry.

Photoshop keeps its image resources in JPEG APP13 (after ``Photoshop 3.0\\0``), in TIFF
tag 34377 and in ImageMagick's PNG "Raw profile type 8bim"; resource 0x0404 is IPTC IIM
(IPTC-NAA IIM 4.2), which TIFF tag 33723 and "Raw profile type iptc" also hold bare.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.formats.damage import MALFORMED, Damaged

SIGNATURE = b"8BIM"
IPTC_RESOURCE = 0x0404
# IIM record 2 ("application") datasets that hold words a person typed.
RECORD_2_NAMES = {
    5: "Object Name",
    25: "Keywords",
    105: "Headline",
    120: "Caption-Abstract",
    122: "Writer-Editor",
}
_TAG_MARKER = 0x1C
# 1:90 CodedCharacterSet; ESC % G declares UTF-8 (ISO 2022).
_CODED_CHARACTER_SET, _UTF8 = (1, 90), b"\x1b%G"


@dataclass(frozen=True, slots=True)
class Resource:
    """One Photoshop image resource: its id and its data (empty if the block is cut)."""

    id: int
    body: bytes


def resources(blob: bytes) -> Iterator[Resource]:
    """The image resources of a Photoshop block, in order; stops quietly at damage
    (the block is reported as Photoshop metadata whatever is inside it)."""
    pos = 0
    while blob[pos : pos + 4] == SIGNATURE and pos + 7 <= len(blob):
        (res_id,) = struct.unpack_from(">H", blob, pos + 4)
        name_len = blob[pos + 6]
        pos += 6 + ((name_len + 2) & ~1)  # Pascal name padded to an even length
        if pos + 4 > len(blob):
            yield Resource(res_id, b"")
            return
        (size,) = struct.unpack_from(">I", blob, pos)
        yield Resource(res_id, blob[pos + 4 : pos + 4 + size])
        pos += 4 + ((size + 1) & ~1)


@dataclass(frozen=True, slots=True)
class DataSet:
    """One IIM dataset: ``record:number`` (2:120 is Caption-Abstract) and its value."""

    record: int
    number: int
    value: bytes


def datasets(blob: bytes) -> Iterator[DataSet]:
    """The datasets of an IIM block in order; `Damaged` at an impossible extended length."""
    pos = 0
    while pos + 5 <= len(blob) and blob[pos] == _TAG_MARKER:
        record, number = blob[pos + 1], blob[pos + 2]
        (size,) = struct.unpack_from(">H", blob, pos + 3)
        pos += 5
        if size & 0x8000:  # extended dataset: the next (size & 0x7fff) bytes hold the length
            n = size & 0x7FFF
            if n > 4 or pos + n > len(blob):
                raise Damaged(MALFORMED, "IPTC dataset length is damaged")
            size = int.from_bytes(blob[pos : pos + n], "big")
            pos += n
        yield DataSet(record, number, blob[pos : pos + size])
        pos += size


def record_2_texts(blob: bytes) -> Iterator[tuple[int, str]]:
    """``(dataset number, text)`` of each record-2 dataset named in `RECORD_2_NAMES`,
    decoded as 1:90 CodedCharacterSet says (Latin-1 without it, unless the bytes are
    valid UTF-8: many writers store UTF-8 without saying so)."""
    utf8 = False
    for ds in datasets(blob):
        if (ds.record, ds.number) == _CODED_CHARACTER_SET:
            utf8 = ds.value == _UTF8
        elif ds.record == 2 and ds.number in RECORD_2_NAMES:
            text = ds.value.decode("utf-8" if utf8 else "latin-1", errors="replace")
            if not utf8:
                try:
                    text = ds.value.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            yield ds.number, text
