"""The JPEG walker, and that the metadata check and the name search see the same segments."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from pipeline.formats import jpeg
from pipeline.formats.damage import MALFORMED, TRUNCATED, Damaged
from pipeline.formats.embedded import embedded_texts
from pipeline.formats.findings import find_metadata
from tests.pipeline.formats import builders
from tests.support import dirty

NAME = "Amelia Hart"


def baseline_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (24, 16), "red").save(out, "JPEG")
    return out.getvalue()


def test_a_baseline_jpeg_is_its_coding_segments_then_eoi() -> None:
    data = baseline_jpeg()

    segments = list(jpeg.segments(data))

    assert [s.kind for s in segments[:1]] == [jpeg.Kind.JFIF]
    assert {s.kind for s in segments[1:-1]} == {jpeg.Kind.STRUCTURE}
    assert segments[-1].marker == jpeg.EOI and segments[-1].end == len(data)
    assert [s.marker for s in segments].count(jpeg.SOS) == 1
    assert all(jpeg.structure_length(s) in (None, len(s.payload)) for s in segments)


def test_a_progressive_jpeg_is_walked_through_every_scan() -> None:
    data = builders.progressive_jpeg()

    markers = [s.marker for s in jpeg.segments(data)]

    assert markers.count(jpeg.SOS) == builders.scans(data) > 1
    assert markers[-1] == jpeg.EOI


def test_each_kind_is_told_from_its_marker_and_identifier(tmp_path: Path) -> None:
    path = dirty.make_dirty_jpeg(tmp_path / "dirty.jpg", name=NAME)

    kinds = [s.kind for s in jpeg.segments(path.read_bytes())]

    for kind in (jpeg.Kind.EXIF, jpeg.Kind.XMP, jpeg.Kind.ICC, jpeg.Kind.PHOTOSHOP):
        assert kinds.count(kind) == 1, kind
    assert kinds.count(jpeg.Kind.COMMENT) == 1


@pytest.mark.parametrize(
    ("marker", "payload", "kind", "body"),
    [
        (0xE1, b"Exif\0\0MM\0*rest", jpeg.Kind.EXIF, b"MM\0*rest"),
        (0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>", jpeg.Kind.XMP, b"<x:xmpmeta/>"),
        (
            0xE1,
            b"http://ns.adobe.com/xmp/extension/\0" + b"G" * 32 + b"\0" * 8 + b"slice",
            jpeg.Kind.XMP_EXTENSION,
            b"slice",
        ),
        (0xED, b"Photoshop 3.0\x008BIM", jpeg.Kind.PHOTOSHOP, b"8BIM"),
        (0xE2, b"ICC_PROFILE\0\x01\x01icc", jpeg.Kind.ICC, b"\x01\x01icc"),
        (0xFE, b"a comment", jpeg.Kind.COMMENT, b"a comment"),
        (0xE1, b"Exif but not quite", jpeg.Kind.APP, b"Exif but not quite"),
        (0xE5, b"vendor", jpeg.Kind.APP, b"vendor"),
        (0xF0, b"JPEG-LS?", jpeg.Kind.OTHER, b"JPEG-LS?"),
    ],
)
def test_segment_kind_and_body(marker: int, payload: bytes, kind: jpeg.Kind, body: bytes) -> None:
    segment = jpeg.Segment(marker, payload, 0)

    assert (segment.kind, segment.body) == (kind, body)


def test_slack_in_a_coding_table_is_measured_exactly() -> None:
    data = baseline_jpeg()
    dqt = next(s for s in jpeg.segments(data) if s.marker == jpeg.DQT)

    padded = jpeg.Segment(jpeg.DQT, dqt.payload + b"x", 0)

    assert jpeg.structure_length(padded) != len(padded.payload)


DAMAGED = [
    ("not a JPEG", lambda d: b"GIF89a" + d, MALFORMED, "no SOI"),
    ("cut inside a segment", lambda d: d[:10], TRUNCATED, "runs past the end"),
    ("no EOI", lambda d: d[:-2], TRUNCATED, "no EOI"),
]


@pytest.mark.parametrize(("label", "damage", "kind", "words"), DAMAGED, ids=[d[0] for d in DAMAGED])
def test_damage_is_raised_after_the_segments_before_it(label, damage, kind, words) -> None:  # type: ignore[no-untyped-def]
    data = damage(baseline_jpeg())
    seen = []

    with pytest.raises(Damaged) as caught:
        for segment in jpeg.segments(data):
            seen.append(segment)

    assert caught.value.kind == kind and words in caught.value.detail
    assert all(s.marker != jpeg.EOI for s in seen)


def test_a_byte_where_a_marker_belongs_after_segments_keeps_them() -> None:
    data = baseline_jpeg()
    first = next(jpeg.segments(data))
    broken = data[: first.end] + b"\x00" + data[first.end :]

    walk = jpeg.segments(broken)

    assert next(walk).kind is jpeg.Kind.JFIF
    with pytest.raises(Damaged, match=f"byte {first.end}"):
        next(walk)


# --- the two users agree ---------------------------------------------------------------------

AFTER_THE_FIRST_SCAN = [
    ("COM", builders.segment(0xFE, f"{NAME} on sports day".encode()), "JPEG comment"),
    (
        "XMP APP1",
        builders.segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + dirty.xmp_packet(NAME)),
        "XMP",
    ),
    ("IPTC APP13", builders.segment(0xED, dirty.iptc_app13_payload(NAME)), "IPTC"),
    ("EXIF APP1", builders.segment(0xE1, dirty.dirty_exif(name=NAME)), "EXIF"),
]


@pytest.mark.parametrize(
    ("label", "segment", "finding"), AFTER_THE_FIRST_SCAN, ids=[a[0] for a in AFTER_THE_FIRST_SCAN]
)
def test_what_stands_between_scans_is_reported_and_searched(
    label: str, segment: bytes, finding: str
) -> None:
    data = builders.with_segment_after_first_scan(builders.progressive_jpeg(), segment)
    assert builders.decodes(data)

    findings = find_metadata(data)
    found = embedded_texts(data)

    assert finding in {f.kind for f in findings}
    assert any(NAME in text for text in found.texts()), found
    assert found.problems == []


def test_what_the_check_reports_of_a_dirty_jpeg_the_search_reads(tmp_path: Path) -> None:
    data = dirty.make_dirty_jpeg(tmp_path / "dirty.jpg", name=NAME).read_bytes()

    found = embedded_texts(data)
    kinds = {f.kind for f in find_metadata(data)}

    assert {"EXIF", "XMP", "IPTC", "JPEG comment"} <= kinds
    names = {f.name.split()[0] for f in found.fields}
    assert {"EXIF", "XMP", "IPTC", "JPEG"} <= names
