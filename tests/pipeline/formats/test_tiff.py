"""The TIFF reader: IFDs, lazy bounded values, and strict Exif/GPS/IFD1 pointers."""

from __future__ import annotations

import struct
import time

import piexif
import pytest

from pipeline.formats import tiff
from pipeline.formats.damage import MALFORMED, Damaged
from tests.support import dirty


def exif_block() -> bytes:
    return tiff.exif_tiff(dirty.dirty_exif(name="Amelia Hart"))


def test_the_exif_header_is_dropped_only_when_present() -> None:
    block = dirty.dirty_exif()

    assert block.startswith(tiff.EXIF_HEADER)
    assert tiff.exif_tiff(block) == block[6:] and tiff.exif_tiff(block[6:]) == block[6:]


def test_ifds_values_and_numbers() -> None:
    structure = tiff.Tiff(exif_block())

    ifds = structure.exif_ifds()

    assert set(ifds) == {"0th", "Exif", "GPS", "1st"}
    description = structure.value(ifds["0th"], tiff.IMAGE_DESCRIPTION)
    assert description == b"Amelia Hart at sports day\0"
    assert structure.number(ifds["0th"], piexif.ImageIFD.Orientation) == 6
    assert structure.number(ifds["0th"], tiff.IMAGE_DESCRIPTION) is None  # ASCII, not a number
    assert tiff.BODY_SERIAL_NUMBER in ifds["Exif"]
    assert (structure.number(ifds["1st"], tiff.JPEG_INTERCHANGE_FORMAT_LENGTH) or 0) > 0


def one_ifd(entries: list[tuple[int, int, int, int]], order: str = "<") -> bytes:
    """A TIFF with IFD0 at offset 8 holding ``(tag, type, count, value or offset)``."""
    head = (b"II*\0" if order == "<" else b"MM\0*") + struct.pack(order + "I", 8)
    body = struct.pack(order + "H", len(entries))
    body += b"".join(struct.pack(order + "HHII", *e) for e in entries)
    return head + body + struct.pack(order + "I", 0)


@pytest.mark.parametrize("order", ["<", ">"])
def test_both_byte_orders(order: str) -> None:
    structure = tiff.Tiff(one_ifd([(0x0112, 3, 1, 6 if order == "<" else 6 << 16)], order))

    assert structure.order == order
    assert structure.number(structure.first_ifd(), 0x0112) == 6


def test_values_outside_the_data_or_over_the_bound_are_not_read() -> None:
    big = tiff.MAX_VALUE_BYTES + 1
    structure = tiff.Tiff(
        one_ifd([(tiff.IMAGE_DESCRIPTION, 2, 50, 4000), (tiff.XP_TITLE, 1, big, 8)])
    )
    ifd0 = structure.first_ifd()

    assert tiff.IMAGE_DESCRIPTION in ifd0 and tiff.XP_TITLE in ifd0
    assert structure.value(ifd0, tiff.IMAGE_DESCRIPTION) is None
    assert structure.value(ifd0, tiff.XP_TITLE) is None


def test_thousands_of_huge_entries_cost_nothing_until_read() -> None:
    # 65,535 entries each claiming 256 KB at offset 8: reading them all eagerly would copy
    # 16 GB; the reader only notes where each value is.
    entries = [(0x9000 + i % 4000, 7, tiff.MAX_VALUE_BYTES, 8) for i in range(65_535)]
    data = one_ifd(entries)
    started = time.monotonic()

    ifd0 = tiff.Tiff(data).first_ifd()

    assert len(ifd0.entries) == 4000 and time.monotonic() - started < 5


DAMAGED = [
    ("no header", b"JUNK" + b"\0" * 8, "no TIFF header"),
    ("IFD0 out of range", b"II*\0" + struct.pack("<I", 4000), "IFD offset 4000 out of range"),
    ("IFD runs past the end", b"II*\0" + struct.pack("<IH", 8, 50), "IFD runs past the end"),
]


@pytest.mark.parametrize(("label", "data", "words"), DAMAGED, ids=[d[0] for d in DAMAGED])
def test_damage_is_raised(label: str, data: bytes, words: str) -> None:
    with pytest.raises(Damaged) as caught:
        tiff.Tiff(data).exif_ifds()

    assert caught.value.kind == MALFORMED and caught.value.detail == words


def test_a_pointer_that_is_not_an_offset_is_damage() -> None:
    structure = tiff.Tiff(one_ifd([(tiff.EXIF_IFD, 2, 4, 0)]))  # ASCII, not LONG

    with pytest.raises(Damaged, match="IFD offset 0 out of range"):
        structure.exif_ifds()
    assert structure.sub_ifd(structure.first_ifd(), tiff.GPS_IFD) is None
