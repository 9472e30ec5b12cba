"""Photoshop image resources and IPTC IIM datasets."""

from __future__ import annotations

import struct

import pytest

from pipeline.formats import iptc
from pipeline.formats.damage import MALFORMED, Damaged
from tests.support import dirty


def resource(res_id: int, body: bytes, name: bytes = b"") -> bytes:
    pascal = bytes([len(name)]) + name
    pascal += b"\0" * (len(pascal) & 1)
    return (
        b"8BIM"
        + struct.pack(">H", res_id)
        + pascal
        + struct.pack(">I", len(body))
        + body
        + (b"\0" * (len(body) & 1))
    )


def dataset(record: int, number: int, value: bytes) -> bytes:
    return bytes([0x1C, record, number]) + struct.pack(">H", len(value)) + value


def test_resources_are_read_in_order_past_names_and_padding() -> None:
    blob = resource(0x03ED, b"abc", name=b"res") + resource(iptc.IPTC_RESOURCE, b"iim")

    assert [(r.id, r.body) for r in iptc.resources(blob)] == [(0x03ED, b"abc"), (0x0404, b"iim")]


def test_the_dirty_fixture_carries_an_iptc_resource() -> None:
    block = dirty.iptc_app13_payload("Amelia Hart")[len(b"Photoshop 3.0\0") :]

    (found,) = [r for r in iptc.resources(block) if r.id == iptc.IPTC_RESOURCE]

    assert [text for _, text in iptc.record_2_texts(found.body)] == [
        "Amelia Hart receiving a prize"
    ]


def test_a_resource_cut_before_its_size_is_still_named() -> None:
    blob = b"8BIM\x04\x04\x00\x00"

    assert [(r.id, r.body) for r in iptc.resources(blob)] == [(iptc.IPTC_RESOURCE, b"")]


def test_anything_but_8bim_ends_the_walk() -> None:
    assert list(iptc.resources(b"MeSa" + resource(0x0404, b"x")[4:])) == []


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        (dataset(2, 120, "Zoë".encode()), "Zoë"),  # UTF-8 without saying so
        (dataset(2, 120, "Zoë".encode("latin-1")), "Zoë"),  # Latin-1
        (dataset(1, 90, b"\x1b%G") + dataset(2, 120, "Zoë".encode()), "Zoë"),
        (dataset(1, 90, b"\x1b%G") + dataset(2, 120, b"Zo\xeb"), "Zo\ufffd"),
    ],
)
def test_record_2_texts_follow_the_character_set(blob: bytes, expected: str) -> None:
    assert list(iptc.record_2_texts(blob)) == [(120, expected)]


def test_only_named_record_2_datasets_are_texts() -> None:
    blob = dataset(2, 0, b"\0\4") + dataset(2, 25, b"sports") + dataset(3, 120, b"other record")

    assert list(iptc.record_2_texts(blob)) == [(25, "sports")]


def test_an_extended_length_is_read() -> None:
    value = b"x" * 40_000
    blob = b"\x1c\x02\x78\x80\x04" + struct.pack(">I", len(value)) + value

    assert [(d.record, d.number, len(d.value)) for d in iptc.datasets(blob)] == [(2, 120, 40_000)]


def test_an_impossible_extended_length_is_damage() -> None:
    blob = dataset(2, 25, b"kept") + b"\x1c\x02\x78\xff\xff\x00"

    walk = iptc.datasets(blob)

    assert next(walk).value == b"kept"
    with pytest.raises(Damaged) as caught:
        next(walk)
    assert caught.value.kind == MALFORMED
