"""Issue 8's hostile file contents, as one table run through the loader and through publish.

Each row is a file a school could meet (or an attacker could plant) and the one right
answer: ``None`` means the photo loads and is published clean; a pattern means it is
refused by the loader with a reason matching it, and withheld by publish with the same
reason while the rest of the batch goes on. Every row is published in one batch, so a
row that crashed the job would fail every other row too.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from consent.registry import Purpose
from consent.store import init_data_dir, open_store
from pipeline.detection import DetectionSettings, Thoroughness
from pipeline.errors import UnreadableImage
from pipeline.formats import heif
from pipeline.formats.findings import find_metadata
from pipeline.loading import load_image
from publishing.options import PublishOptions
from publishing.publish import publish
from publishing.report import PhotoStatus, PublishReport
from tests.support import cleanproof as cp
from tests.support import dirty

# Pillow warns about the corrupt EXIF rows; the walker, not the warning, decides.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

NAME = cp.FULL_NAME
DAMAGED = r"damaged|truncated|EOI|past the end|cannot decode|IEND|image data"
TOO_BIG = r"over the limit|too large"


@dataclass(frozen=True)
class Case:
    build: Callable[[Path], None]  # writes the file at the given path
    suffix: str
    refusal: str | None  # None: loads and is published; else the reason's pattern


def _save(image: Image.Image, fmt: str, **params: object) -> Callable[[Path], None]:
    return lambda p: image.save(p, fmt, **params)


def _bytes(make: Callable[[], bytes]) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(make())


def _encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _photo(width: int = 96, height: int = 64) -> Image.Image:
    return Image.fromarray(dirty.noisy_pixels(width, height, seed=7))


def _cut(make: Callable[[], bytes], keep: float | int) -> Callable[[Path], None]:
    """The file cut after ``keep`` bytes (an int; negative counts from the end) or after
    that fraction of its length (a float)."""

    def write(p: Path) -> None:
        data = make()
        n = int(len(data) * keep) if isinstance(keep, float) else keep
        p.write_bytes(data[:n])

    return write


def _jpeg() -> bytes:
    return _encoded(_photo(), "JPEG", quality=90)


def _png() -> bytes:
    return _encoded(_photo(), "PNG")


def _webp() -> bytes:
    return _encoded(_photo(), "WEBP", quality=90)


def _tiff() -> bytes:
    return _encoded(_photo(), "TIFF")


def _heic() -> bytes:
    heif.register()
    return _encoded(_photo(), "HEIF", quality=80)


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _with_app1(tiff: bytes) -> bytes:
    data = _jpeg()
    return data[:2] + _segment(0xE1, b"Exif\0\0" + tiff) + data[2:]


def _png_bomb() -> bytes:
    """A small PNG whose IHDR declares 100,000 x 100,000 pixels (CRC recomputed)."""
    data = bytearray(_png())
    data[16:24] = struct.pack(">II", 100_000, 100_000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _jpeg_bomb() -> bytes:
    """A small JPEG whose SOF0 declares 65,500 x 65,500 pixels."""
    data = bytearray(_jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65_500, 65_500)
    return bytes(data)


def _webp_bomb() -> bytes:
    """A WebP whose VP8X canvas claims 16,384 x 16,384 (the format's maximum)."""
    body = bytes(4) + (16_383).to_bytes(3, "little") * 2
    vp8x = b"VP8X" + struct.pack("<I", 10) + body
    rest = _webp()[12:]
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x) + len(rest)) + b"WEBP" + vp8x + rest


def _jpeg_bad_header() -> bytes:
    """SOF0 says the image has 0 colour components."""
    data = bytearray(_jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 9] = 0
    return bytes(data)


def _jpeg_bad_scan() -> bytes:
    """Scan data overwritten with garbage (markers kept intact)."""
    data = bytearray(_jpeg())
    start = data.index(b"\xff\xda") + 20
    rng = np.random.default_rng(1)
    for i in range(start, len(data) - 2, 7):
        if data[i] != 0xFF and data[i - 1] != 0xFF:
            data[i] = int(rng.integers(0, 0xFF))
    return bytes(data)


def _png_bad_crc() -> bytes:
    data = bytearray(_png())
    data[data.index(b"IDAT") + 10] ^= 0x55
    return bytes(data)


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(ctype + body)
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", crc)


def _png_rgb16() -> bytes:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow cannot save one)."""
    rows = np.random.default_rng(2).integers(0, 65536, (8, 12, 3), np.uint16).astype(">u2")
    raw = b"".join(b"\0" + r.tobytes() for r in rows)
    ihdr = struct.pack(">IIBBBBB", 12, 8, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _png_smuggled() -> bytes:
    """Bytes hidden after the end of the zlib stream inside IDAT (viewers ignore them)."""
    data = _png()
    start = data.index(b"IDAT") - 4
    (length,) = struct.unpack_from(">I", data, start)
    body = data[start + 8 : start + 8 + length] + NAME.encode()
    return data[:start] + _png_chunk(b"IDAT", body) + data[start + 12 + length :]


def _palette_trns(p: Path) -> None:
    pal = Image.new("P", (32, 32), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (16, 0, 32, 32))
    pal.save(p, "PNG", transparency=1)


def _animated(fmt: str, **params: object) -> Callable[[Path], None]:
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], **params)


def _heic_burst(p: Path) -> None:
    heif.register()
    frames = [_photo(), _photo()]
    frames[0].save(p, "HEIF", save_all=True, append_images=frames[1:])


def _exif_64k() -> bytes:
    """A maximal (64 KB) APP1: a UserComment of the name repeated to fill it."""
    text = (NAME + " ").encode() * 5800
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"ASCII\0\0\0" + text[:64_000]
    exif[0x0112] = 1
    return _with_app1(exif.tobytes()[6:] if exif.tobytes().startswith(b"Exif") else exif.tobytes())


def _exif_many_entries() -> bytes:
    """IFD0 with 4,000 (private, inline SHORT) entries before the orientation tag."""
    count = 4000
    entries = b"".join(struct.pack("<HHIHH", 0xC000 + i, 3, 1, i, 0) for i in range(count - 1))
    entries += struct.pack("<HHIHH", 0xFFF0, 3, 1, 1, 0)
    return _with_app1(b"II*\0" + struct.pack("<IH", 8, count) + entries + struct.pack("<I", 0))


def _exif_bogus_counts() -> bytes:
    """Tags whose counts claim gigabytes of data far past the end of the block."""
    entries = [
        struct.pack("<HHII", 0x010E, 2, 0xFFFF_FFF0, 44),  # ImageDescription
        struct.pack("<HHII", 0x9C9D, 1, 0x7FFF_FFFF, 44),  # XPAuthor
        struct.pack("<HHIHH", 0x0112, 3, 1, 1, 0),  # Orientation 1
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    return _with_app1(b"II*\0" + struct.pack("<I", 8) + ifd + NAME.encode())


def _exif_bad_text() -> bytes:
    """Non-UTF-8 bytes and terminal escape sequences in EXIF, COM and XMP text."""
    exif = Image.Exif()
    exif[0x010E] = "\x1b[31mAmelia Hart\x07 \udcff".encode("utf-8", "surrogateescape").decode(
        "latin-1"
    )
    exif[0x013B] = "Hart\x00\x1b]0;owned\x07"
    exif[0x0112] = 1
    data = _encoded(_photo(), "JPEG", exif=exif, comment=b"\xff\xfe\x1b[2J" + NAME.encode())
    xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>\xc3\x28\x1b[0m" + NAME.encode()
    return data[:2] + _segment(0xE1, xmp) + data[2:]


def _png_bad_text(p: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "\x1b[31m" + NAME + "\x00\x07\xff")
    info.add_itxt("Comment", "\u202e" + NAME + "\r\n\x1b[2J", lang="en", tkey="Comment")
    _photo().save(p, "PNG", pnginfo=info)


def _svg(p: Path) -> None:
    p.write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>\n')


def _pdf(p: Path) -> None:
    p.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n")


CASES: dict[str, Case] = {
    # Decompression bombs: refused from the header, before any decoding.
    "png-bomb": Case(_bytes(_png_bomb), ".png", TOO_BIG),
    "jpeg-bomb": Case(_bytes(_jpeg_bomb), ".jpg", TOO_BIG),
    "webp-bomb": Case(_bytes(_webp_bomb), ".webp", TOO_BIG),
    # Truncated files, at several cut points.
    "jpeg-cut-header": Case(_cut(_jpeg, 20), ".jpg", DAMAGED),
    "jpeg-cut-30pc": Case(_cut(_jpeg, 0.3), ".jpg", DAMAGED),
    "jpeg-cut-70pc": Case(_cut(_jpeg, 0.7), ".jpg", DAMAGED),
    "jpeg-no-eoi": Case(_cut(_jpeg, -2), ".jpg", DAMAGED),
    "png-cut-ihdr": Case(_cut(_png, 20), ".png", DAMAGED),
    "png-cut-half": Case(_cut(_png, 0.5), ".png", DAMAGED),
    "png-no-iend": Case(_cut(_png, -12), ".png", DAMAGED),
    "webp-cut-half": Case(_cut(_webp, 0.5), ".webp", DAMAGED),
    "webp-cut-header": Case(_cut(_webp, 16), ".webp", DAMAGED + "|not a"),
    "tiff-cut-half": Case(_cut(_tiff, 0.5), ".tif", DAMAGED),
    "heic-cut-half": Case(_cut(_heic, 0.5), ".heic", "HEIC|damaged|cannot decode"),
    # Corrupt contents.
    "jpeg-bad-header": Case(_bytes(_jpeg_bad_header), ".jpg", DAMAGED + "|not a"),
    "jpeg-garbage-scan": Case(_bytes(_jpeg_bad_scan), ".jpg", None),
    "png-bad-crc": Case(_bytes(_png_bad_crc), ".png", "bad CRC"),
    "png-smuggled-bytes": Case(_bytes(_png_smuggled), ".png", None),
    "jpeg-trailing-zip": Case(
        _bytes(lambda: _jpeg() + b"PK\x03\x04" + NAME.encode()), ".jpg", None
    ),
    # Unusual but valid pixel formats: published.
    "png-16-bit-grey": Case(
        _save(Image.fromarray(np.full((8, 8), 40000, np.uint16)), "PNG"), ".png", None
    ),
    "png-16-bit-rgb": Case(_bytes(_png_rgb16), ".png", None),
    "jpeg-cmyk": Case(_save(Image.new("CMYK", (32, 32), (0, 90, 200, 10)), "JPEG"), ".jpg", None),
    "jpeg-grey": Case(_save(_photo().convert("L"), "JPEG"), ".jpg", None),
    "png-palette-trns": Case(_palette_trns, ".png", None),
    "png-la": Case(_save(_photo().convert("LA"), "PNG"), ".png", None),
    "png-rgba": Case(_save(_photo().convert("RGBA"), "PNG"), ".png", None),
    "gif-single-frame": Case(_save(_photo().convert("P"), "GIF"), ".gif", None),
    # Several pictures in one file: withheld, whoever is in the other frames.
    "gif-animated": Case(_animated("GIF", duration=100), ".gif", "animated GIF"),
    "webp-animated": Case(_animated("WEBP", duration=100), ".webp", "animated WebP"),
    "png-animated": Case(_animated("PNG", duration=100), ".png", "animated PNG"),
    "tiff-multi-page": Case(_animated("TIFF"), ".tif", "multi-page TIFF"),
    "heic-burst": Case(_heic_burst, ".heic", "burst"),
    # Huge and hostile EXIF blocks: the photo is fine, the block is dropped.
    "exif-64k-app1": Case(_bytes(_exif_64k), ".jpg", None),
    "exif-4000-entries": Case(_bytes(_exif_many_entries), ".jpg", None),
    "exif-bogus-counts": Case(_bytes(_exif_bogus_counts), ".jpg", None),
    "exif-non-utf8-control": Case(_bytes(_exif_bad_text), ".jpg", None),
    "png-text-control": Case(_png_bad_text, ".png", None),
    # Not photos at all, whatever the name says.
    "zero-bytes": Case(lambda p: p.write_bytes(b""), ".jpg", "empty"),
    "text-named-jpg": Case(lambda p: p.write_text("not a photo\n"), ".jpg", "not a JPEG"),
    "pdf-named-jpg": Case(_pdf, ".jpg", "PDF is not supported"),
    "svg": Case(_svg, ".svg", "SVG drawing"),
    # A real HEIC with the wrong name is read by its content.
    "heic-named-jpg": Case(_bytes(_heic), ".jpg", None),
}


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202e]")


def write_case(folder: Path, case_id: str) -> Path:
    path = folder / f"{case_id}{CASES[case_id].suffix}"
    CASES[case_id].build(path)
    return path


@pytest.mark.parametrize("case_id", CASES)
def test_loader(tmp_path: Path, case_id: str) -> None:
    path = write_case(tmp_path, case_id)
    refusal = CASES[case_id].refusal
    if refusal is None:
        loaded = load_image(path)
        assert loaded.pixels.dtype == np.uint8 and loaded.pixels.ndim == 3
        assert loaded.pixels.shape[:2] == loaded.size[::-1]
        return
    with pytest.raises(UnreadableImage, match=refusal) as info:
        load_image(path)
    message = str(info.value)
    assert message.startswith(path.name + ":")
    assert not CONTROL.search(message) and NAME not in message


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> PublishReport:
    """Every row in one publish batch."""
    root = tmp_path_factory.mktemp("hostile")
    photos = root / "in"
    photos.mkdir()
    for case_id in CASES:
        write_case(photos, case_id)
    init_data_dir(root / "data")
    store = open_store(root / "data")
    try:
        options = PublishOptions(
            purpose=Purpose.WEBSITE,
            out_dir=root / "out",
            operator="test",
            detection=DetectionSettings(thoroughness=Thoroughness.FAST),
        )
        return publish(store, [photos], options)
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("case_id", CASES)
def test_publish(batch: PublishReport, case_id: str) -> None:
    assert len(batch.results) == len(CASES)  # the batch went on past every bad file
    (result,) = [r for r in batch.results if Path(r.input).stem == case_id]
    refusal = CASES[case_id].refusal
    assert not CONTROL.search(result.reason) and NAME not in result.reason
    if refusal is not None:
        assert result.status is PhotoStatus.WITHHELD
        assert re.search(refusal, result.reason), result.reason
        assert result.output is None
        return
    assert result.status is PhotoStatus.PUBLISHED, result.reason
    data = Path(result.output).read_bytes()
    assert find_metadata(data) == []
    assert cp.name_hits(data, NAME) == []
