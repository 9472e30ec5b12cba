"""Reading captions from a photo's own bytes, and from a sidecar CSV.

Fixtures are written two independent ways: by ExifTool (the tool schools' software
resembles most; skipped by hand when it is absent, required under ``make test``) and by
hand with Pillow/piexif/struct, so the reader is not only tested against itself.
"""

from __future__ import annotations

import io
import struct
import subprocess
import zlib
from pathlib import Path

import piexif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from pipeline.formats.embedded import MAX_FIELD_CHARS, embedded_caption, embedded_texts
from publishing.captions.sources import (
    CaptionCsvError,
    caption_for,
    parse_captions_csv,
    read_captions_csv,
)
from tests.pipeline.formats import builders
from tests.support import dirty
from tests.support.environment import require_tool

NAME = "Amélia Hart"

# (format, exiftool argument, the field name embedded_texts reports)
EXIFTOOL_FIELDS = [
    ("jpg", "-IPTC:Caption-Abstract", "IPTC Caption-Abstract"),
    ("jpg", "-IPTC:Headline", "IPTC Headline"),
    ("jpg", "-IPTC:ObjectName", "IPTC Object Name"),
    ("jpg", "-IPTC:Keywords", "IPTC Keywords"),
    ("jpg", "-XMP-dc:Description", "XMP dc:description"),
    ("jpg", "-XMP-dc:Title", "XMP dc:title"),
    ("jpg", "-XMP-dc:Subject", "XMP dc:subject"),
    ("jpg", "-XMP-photoshop:Headline", "XMP photoshop:Headline"),
    ("jpg", "-XMP-iptcExt:PersonInImage", "XMP PersonInImage"),
    ("jpg", "-XMP-mwg-rs:RegionName", "XMP mwg-rs:Name"),
    ("jpg", "-XMP-MP:RegionPersonDisplayName", "XMP MP PersonDisplayName"),
    ("jpg", "-XMP-digiKam:TagsList", "XMP digiKam:TagsList"),
    ("jpg", "-XMP-lr:HierarchicalSubject", "XMP lr:hierarchicalSubject"),
    ("jpg", "-EXIF:ImageDescription", "EXIF ImageDescription"),
    ("jpg", "-EXIF:UserComment", "EXIF UserComment"),
    ("jpg", "-EXIF:XPTitle", "EXIF XPTitle"),
    ("jpg", "-EXIF:XPComment", "EXIF XPComment"),
    ("jpg", "-EXIF:XPSubject", "EXIF XPSubject"),
    ("jpg", "-EXIF:XPKeywords", "EXIF XPKeywords"),
    ("jpg", "-File:Comment", "JPEG comment"),
    ("png", "-PNG:Description", "PNG Description"),
    ("png", "-PNG:Title", "PNG Title"),
    ("png", "-PNG:Comment", "PNG Comment"),
    ("png", "-XMP-dc:Description", "XMP dc:description"),
    ("png", "-EXIF:ImageDescription", "EXIF ImageDescription"),
    ("png", "-IPTC:Caption-Abstract", "IPTC Caption-Abstract"),
    ("webp", "-XMP-dc:Description", "XMP dc:description"),
    ("webp", "-EXIF:XPComment", "EXIF XPComment"),
    ("webp", "-XMP-iptcExt:PersonInImage", "XMP PersonInImage"),
    ("tif", "-IPTC:Caption-Abstract", "IPTC Caption-Abstract"),
    ("tif", "-XMP-dc:Description", "XMP dc:description"),
    ("tif", "-EXIF:ImageDescription", "EXIF ImageDescription"),
    ("tif", "-EXIF:XPTitle", "EXIF XPTitle"),
]


def blank(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (24, 16), "red").save(out, {"jpg": "JPEG", "tif": "TIFF"}.get(fmt, fmt))
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "arg", "field"), EXIFTOOL_FIELDS, ids=[f"{f}-{a[1:]}" for f, a, _ in EXIFTOOL_FIELDS]
)
def test_each_field_written_by_exiftool_is_read(
    tmp_path: Path, fmt: str, arg: str, field: str
) -> None:
    exiftool = require_tool("exiftool", "libimage-exiftool-perl")
    path = tmp_path / f"photo.{fmt}"
    path.write_bytes(blank(fmt))
    extra = ["-XMP-mwg-rs:RegionType=Face"] if "mwg" in arg else []
    subprocess.run(
        [exiftool, "-q", "-q", "-overwrite_original", "-charset", "iptc=UTF8", *extra,
         f"{arg}={NAME} on sports day", str(path)],
        check=True,
    )  # fmt: skip

    found = embedded_texts(path.read_bytes())

    assert (field, f"{NAME} on sports day") in {(f.name, f.text) for f in found.fields}
    assert found.problems == []


# --- fixtures written by hand ------------------------------------------------------------------


def jpeg_with_exif(zeroth: dict[int, object], exif: dict[int, object] | None = None) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (24, 16)).save(
        out, "JPEG", exif=piexif.dump({"0th": zeroth, "Exif": exif or {}})
    )
    return out.getvalue()


def xmp(body: str) -> bytes:
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{body}</rdf:RDF></x:xmpmeta>"
    ).encode()
    out = io.BytesIO()
    Image.new("RGB", (24, 16)).save(out, "JPEG")
    plain = out.getvalue()
    seg = b"http://ns.adobe.com/xap/1.0/\0" + packet
    return plain[:2] + b"\xff\xe1" + struct.pack(">H", len(seg) + 2) + seg + plain[2:]


def png_with(info: PngImagePlugin.PngInfo) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (24, 16)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def png_text(kind: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    if kind == "tEXt":
        info.add_text("Description", "Amelia Hart")
    elif kind == "zTXt":
        info.add_text("Description", "Amelia Hart", zip=True)
    elif kind == "iTXt":
        info.add_itxt("Description", "Amélia Hart", lang="en", tkey="Beschreibung")
    else:
        info.add_itxt("Description", "Amélia Hart", zip=True)
    return png_with(info)


DC = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'
MWG = 'xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"'
MP = 'xmlns:MPReg="http://ns.microsoft.com/photo/1.2/t/Region#"'

HAND_MADE = [
    (
        "EXIF ImageDescription",
        lambda: jpeg_with_exif({piexif.ImageIFD.ImageDescription: b"Amelia Hart"}),
        "Amelia Hart",
    ),
    (
        "EXIF XPTitle UTF-16LE",
        lambda: jpeg_with_exif(
            {piexif.ImageIFD.XPTitle: "Amélia Hart".encode("utf-16-le") + b"\0\0"}
        ),
        "Amélia Hart",
    ),
    (
        "EXIF UserComment ASCII",
        lambda: jpeg_with_exif({}, {piexif.ExifIFD.UserComment: b"ASCII\0\0\0Amelia Hart"}),
        "Amelia Hart",
    ),
    (
        "EXIF UserComment UNICODE",
        lambda: jpeg_with_exif(
            {}, {piexif.ExifIFD.UserComment: b"UNICODE\0" + "Amélia Hart".encode("utf-16-be")}
        ),
        "Amélia Hart",
    ),
    ("PNG tEXt", lambda: png_text("tEXt"), "Amelia Hart"),
    ("PNG zTXt", lambda: png_text("zTXt"), "Amelia Hart"),
    ("PNG iTXt", lambda: png_text("iTXt"), "Amélia Hart"),
    ("PNG iTXt compressed", lambda: png_text("iTXt-z"), "Amélia Hart"),
    (
        "XMP dc:description in rdf:Alt",
        lambda: xmp(
            f'<rdf:Description {DC}><dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
            "Amelia Hart</rdf:li></rdf:Alt></dc:description></rdf:Description>"
        ),
        "Amelia Hart",
    ),
    (
        "XMP shorthand attribute",
        lambda: xmp(
            '<rdf:Description xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
            'photoshop:Headline="Amelia Hart"/>'
        ),
        "Amelia Hart",
    ),
    (
        "XMP MWG region name as attribute",
        lambda: xmp(
            f"<rdf:Description {MWG}><mwg-rs:Regions><rdf:Description><mwg-rs:RegionList>"
            '<rdf:Bag><rdf:li><rdf:Description mwg-rs:Name="Amelia Hart" mwg-rs:Type="Face"/>'
            "</rdf:li></rdf:Bag></mwg-rs:RegionList></rdf:Description></mwg-rs:Regions>"
            "</rdf:Description>"
        ),
        "Amelia Hart",
    ),
    (
        "XMP Windows Photos region",
        lambda: xmp(
            f"<rdf:Description {MP}><MPReg:PersonDisplayName>Amelia Hart"
            "</MPReg:PersonDisplayName></rdf:Description>"
        ),
        "Amelia Hart",
    ),
]


@pytest.mark.parametrize(("label", "make", "expected"), HAND_MADE, ids=[c[0] for c in HAND_MADE])
def test_each_hand_made_field_is_read(label: str, make, expected: str) -> None:  # type: ignore[no-untyped-def]
    found = embedded_texts(make())

    assert expected in found.texts(), found
    assert found.problems == []


@pytest.mark.parametrize(
    "maker", [dirty.make_dirty_jpeg, dirty.make_dirty_png, dirty.make_dirty_webp]
)
def test_the_dirty_fixtures_give_their_caption(tmp_path: Path, maker) -> None:  # type: ignore[no-untyped-def]
    path = maker(tmp_path / "dirty", name="Amelia Hart")

    found = embedded_texts(path.read_bytes())

    assert found.caption is not None and "Amelia Hart" in found.caption
    assert found.texts() and all("Amelia Hart" in t for t in found.texts())


def test_the_caption_prefers_iptc_then_xmp_then_exif() -> None:
    jpeg = dirty.make_dirty_jpeg  # has all three
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        data = jpeg(Path(d) / "x.jpg", name="Amelia Hart").read_bytes()

    assert embedded_caption(data) == "Amelia Hart receiving a prize"  # IPTC 2:120


def test_camera_filler_is_not_a_caption() -> None:
    data = jpeg_with_exif({piexif.ImageIFD.ImageDescription: b"OLYMPUS DIGITAL CAMERA"})

    assert embedded_caption(data) is None


def test_a_photo_without_text_has_no_caption() -> None:
    found = embedded_texts(blank("jpg"))

    assert found.fields == [] and found.caption is None and found.problems == []


# --- hostile bytes -----------------------------------------------------------------------------


def zip_bomb_png() -> bytes:
    body = b"Description\0\0" + zlib.compress(b"A" * 5_000_000, 9)
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body
    chunk += struct.pack(">I", zlib.crc32(b"zTXt" + body))
    plain = png_with(PngImagePlugin.PngInfo())
    return plain[:33] + chunk + plain[33:]


HOSTILE = [
    ("empty", b""),
    ("text", b"hello, not an image"),
    ("jpeg header only", b"\xff\xd8"),
    ("jpeg segment past the end", b"\xff\xd8\xff\xe1\xff\xffExif\0\0"),
    ("exif with bad IFD offset", b"\xff\xd8\xff\xe1\x00\x10Exif\0\0MM\0*\xff\xff\xff\xff\xff\xd9"),
    ("xmp with a DTD", xmp('<!DOCTYPE x [<!ENTITY a "aaaa">]><rdf:Description/>')),
    ("xmp not XML", xmp("<rdf:Description><unclosed></rdf:Description>")),
    ("png zTXt bomb", zip_bomb_png()),
    (
        "iptc length damaged",
        b"\xff\xd8\xff\xed\x00\x1ePhotoshop 3.0\x00"
        b"8BIM\x04\x04\x00\x00\x00\x00\x00\x06\x1c\x02x\xff\xff\x00\xff\xd9",
    ),
    ("tiff header only", b"II*\0"),
    ("riff webp header only", b"RIFF\xff\xff\xff\x7fWEBP"),
]


@pytest.mark.parametrize(("label", "data"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bytes_give_no_caption_and_never_raise(label: str, data: bytes) -> None:
    found = embedded_texts(data)

    assert found.caption is None
    assert all(len(f.text) <= MAX_FIELD_CHARS for f in found.fields)


def test_hostile_problems_say_what_went_wrong() -> None:
    assert embedded_texts(HOSTILE[5][1]).problems == ["XMP packet declares a DTD and was not read"]
    assert "inflated within bounds" in embedded_texts(zip_bomb_png()).problems[0]
    assert embedded_texts(b"text").problems == [
        "captions can be read from JPEG, PNG, WebP, TIFF and HEIC/HEIF only"
    ]
    # A HEIF box header with nothing usable behind it: a problem, never an exception.
    assert embedded_texts(b"\0\0\0\x18ftypheic" + b"\0" * 8).problems


def test_a_very_long_caption_is_cut_to_the_bound() -> None:
    data = jpeg_with_exif({piexif.ImageIFD.ImageDescription: b"A" * 60_000})

    assert len(embedded_caption(data) or "") == MAX_FIELD_CHARS


def test_control_characters_never_come_through() -> None:
    data = jpeg_with_exif({piexif.ImageIFD.ImageDescription: b"Amelia\x1b[31m Hart\r\n\x07"})

    assert embedded_caption(data) == "Amelia [31m Hart"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=400), st.sampled_from([b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"II*\0"]))
def test_random_bytes_after_a_real_header_never_raise(tail: bytes, head: bytes) -> None:
    found = embedded_texts(head + tail)

    assert isinstance(found.problems, list)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2000), st.binary(min_size=1, max_size=8))
def test_corrupting_a_dirty_jpeg_never_raises(offset: int, junk: bytes) -> None:
    base = _dirty_jpeg_bytes()
    at = offset % len(base)
    embedded_texts(base[:at] + junk + base[at + len(junk) :])


_CACHE: dict[str, bytes] = {}


def _dirty_jpeg_bytes() -> bytes:
    if "jpeg" not in _CACHE:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            _CACHE["jpeg"] = dirty.make_dirty_jpeg(
                Path(d) / "d.jpg", name="Amelia Hart"
            ).read_bytes()
    return _CACHE["jpeg"]


# --- the sidecar CSV -----------------------------------------------------------------------------

CSV_CASES = [
    ("plain", b"file,caption\nIMG_1.jpg,Amelia Hart wins\n", {"IMG_1.jpg": "Amelia Hart wins"}),
    ("utf-8 BOM", b"\xef\xbb\xbffile,caption\r\nIMG_1.jpg,Zo\xc3\xab\r\n", {"IMG_1.jpg": "Zoë"}),
    ("excel cp1252", b"file,caption\r\nIMG_1.jpg,Zo\xeb\r\n", {"IMG_1.jpg": "Zoë"}),
    (
        "utf-16 BOM tabs",
        "file\tcaption\r\nIMG_1.jpg\tZoë\r\n".encode("utf-16"),
        {"IMG_1.jpg": "Zoë"},
    ),
    ("semicolons", b"file;caption\nIMG_1.jpg;A, B and C\n", {"IMG_1.jpg": "A, B and C"}),
    ("quoted comma", b'file,caption\nIMG_1.jpg,"Amelia, Ben"\n', {"IMG_1.jpg": "Amelia, Ben"}),
    (
        "quoted newline",
        b'file,caption\nIMG_1.jpg,"line one\nline two"\n',
        {"IMG_1.jpg": "line one line two"},
    ),
    ("header case and order", b"Caption,File,notes\nHi,a.jpg,x\n", {"a.jpg": "Hi"}),
    ("blank lines", b"file,caption\n\nIMG_1.jpg,x\n,\n", {"IMG_1.jpg": "x"}),
    ("empty caption", b"file,caption\nIMG_1.jpg,\n", {"IMG_1.jpg": ""}),
]


@pytest.mark.parametrize(("label", "raw", "expected"), CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_captions_csv_variants_are_read(label: str, raw: bytes, expected: dict[str, str]) -> None:
    assert parse_captions_csv(raw) == expected


CSV_ERRORS = [
    ("no header columns", b"name,text\na.jpg,x\n", [(1, "the header needs columns")]),
    ("empty file", b"", [(0, "the file is empty")]),
    ("empty file cell", b"file,caption\n,hello\n", [(2, "the file cell is empty")]),
    (
        "duplicate",
        b"file,caption\na.jpg,x\nb.jpg,y\nA.JPG,z\n",
        [(4, "listed again (first on line 2)")],
    ),
    ("extra cells", b"file,caption\na.jpg,x,y\n", [(2, "3 cells but the header has 2")]),
    ("unclosed quote", b'file,caption\na.jpg,x\nb.jpg,"oops\n', [(3, "unclosed quote")]),
    ("too long", b"file,caption\na.jpg," + b"x" * (MAX_FIELD_CHARS + 1) + b"\n", [(2, "over")]),
]


@pytest.mark.parametrize(("label", "raw", "expected"), CSV_ERRORS, ids=[c[0] for c in CSV_ERRORS])
def test_captions_csv_errors_give_line_numbers(
    label: str, raw: bytes, expected: list[tuple[int, str]]
) -> None:
    with pytest.raises(CaptionCsvError) as caught:
        parse_captions_csv(raw, source="captions.csv")

    assert [line for line, _ in caught.value.problems] == [line for line, _ in expected]
    for (_, got), (_, want) in zip(caught.value.problems, expected, strict=True):
        assert want in got
    assert str(caught.value).startswith("captions.csv cannot be used as a captions file")


def test_every_bad_line_is_reported_at_once() -> None:
    with pytest.raises(CaptionCsvError) as caught:
        parse_captions_csv(b"file,caption\n,a\nx.jpg,b\n,c\n")

    assert [line for line, _ in caught.value.problems] == [2, 4]


def test_read_captions_csv_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "captions.csv"
    path.write_bytes(b"file,caption\nday/IMG_1.jpg,One\nIMG_2.JPG,Two\n")

    captions = read_captions_csv(path)

    assert caption_for(captions, tmp_path / "day" / "IMG_1.jpg", root=tmp_path) == "One"
    assert caption_for(captions, tmp_path / "img_2.jpg") == "Two"
    assert caption_for(captions, tmp_path / "IMG_3.jpg") is None


# --- segments between the scans of a progressive JPEG ---------------------------------------


def test_a_name_in_a_comment_after_the_first_scan_is_read() -> None:
    # COM and APPn segments may stand between the scans of a progressive JPEG (ITU-T T.81
    # B.2.4, B.6); the metadata check always reported them, the name search once stopped
    # at the first SOS and so never saw the name.
    base = builders.progressive_jpeg()
    data = builders.with_segment_after_first_scan(
        base, builders.segment(0xFE, b"Amelia Hart on sports day")
    )
    assert builders.scans(data) > 1 and builders.decodes(data)

    found = embedded_texts(data)

    assert ("JPEG comment", "Amelia Hart on sports day") in {(f.name, f.text) for f in found.fields}
    assert found.problems == []
