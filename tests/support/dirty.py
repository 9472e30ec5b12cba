"""Builders of "dirty" and hostile image files for tests (mat2's per-format fixtures).

Every dirty file carries the person's ``name`` in several metadata blocks plus GPS, a
camera serial number and an IFD1 thumbnail showing *different* content (a red square,
as if the camera kept a preview of the uncropped original), so tests can assert that
none of it survives. ``pixels`` are always what a viewer should see (upright); builders
store them transformed so that honouring ``orientation`` gives them back.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import piexif
from PIL import Image, ImageCms, PngImagePlugin

NAME = "Jane Doe"
SERIAL = "SN-12345"
# Quadrant colours of upright_pixels(): top-left, top-right, bottom-left, bottom-right.
QUADRANTS = {"tl": (255, 0, 0), "tr": (0, 255, 0), "bl": (0, 0, 255), "br": (255, 255, 255)}


def upright_pixels(width: int = 64, height: int = 48) -> np.ndarray:
    """A (height, width, 3) uint8 image with four differently coloured quadrants."""
    img = np.empty((height, width, 3), np.uint8)
    h2, w2 = height // 2, width // 2
    img[:h2, :w2], img[:h2, w2:] = QUADRANTS["tl"], QUADRANTS["tr"]
    img[h2:, :w2], img[h2:, w2:] = QUADRANTS["bl"], QUADRANTS["br"]
    return img


def stored_for_orientation(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores so that EXIF ``orientation`` displays ``upright``.

    Written from the EXIF 2.32 definitions with numpy, independently of Pillow.
    """
    transforms = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, 1),  # viewer turns it 90 degrees clockwise
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, -1),  # viewer turns it 90 degrees anticlockwise
    }
    return np.ascontiguousarray(transforms[orientation](upright))


def srgb_icc() -> bytes:
    """A real sRGB ICC profile, as embedded by cameras and editors."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def red_thumbnail_jpeg() -> bytes:
    """A 16x16 red JPEG: the "original" preview a camera leaves in IFD1."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (255, 0, 0)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def dirty_exif(*, orientation: int = 6, name: str = NAME) -> bytes:
    """EXIF (with the ``Exif\\0\\0`` prefix): GPS, serials, name, IFD1 thumbnail."""
    exif = {
        "0th": {
            piexif.ImageIFD.Make: b"ExampleCam",
            piexif.ImageIFD.Model: b"EC-1",
            piexif.ImageIFD.Orientation: orientation,
            piexif.ImageIFD.ImageDescription: f"{name} at sports day".encode(),
            piexif.ImageIFD.Artist: name.encode(),
            piexif.ImageIFD.XPAuthor: name.encode("utf-16-le") + b"\0\0",
        },
        "Exif": {
            piexif.ExifIFD.BodySerialNumber: SERIAL.encode(),
            piexif.ExifIFD.DateTimeOriginal: b"2024:06:01 10:30:00",
        },
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: ((51, 1), (30, 1), (1234, 100)),
            piexif.GPSIFD.GPSLongitudeRef: b"W",
            piexif.GPSIFD.GPSLongitude: ((0, 1), (7, 1), (3921, 100)),
        },
        "1st": {piexif.ImageIFD.XResolution: (72, 1), piexif.ImageIFD.YResolution: (72, 1)},
        "thumbnail": red_thumbnail_jpeg(),
    }
    return piexif.dump(exif)


def xmp_packet(name: str = NAME) -> bytes:
    """An XMP packet whose dc:description contains ``name``."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
        ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{name} on stage'
        "</rdf:li></rdf:Alt></dc:description></rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def iptc_app13_payload(name: str = NAME) -> bytes:
    """APP13 "Photoshop 3.0" payload with an 8BIM 0x0404 IPTC block, caption 2:120."""
    caption = f"{name} receiving a prize".encode()
    iptc = b"\x1c\x02\x00\x00\x02\x00\x04"  # 2:00 record version 4
    iptc += b"\x1c\x02\x78" + struct.pack(">H", len(caption)) + caption
    iptc += b"\0" * (len(iptc) & 1)
    resource = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    return b"Photoshop 3.0\0" + resource


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def make_dirty_jpeg(
    path: Path, pixels: np.ndarray | None = None, *, orientation: int = 6, name: str = NAME
) -> Path:
    """Write a JPEG with EXIF (GPS, serial, name, IFD1 thumbnail), XMP, IPTC, COM, ICC.

    ``pixels`` (upright, default :func:`upright_pixels`) are stored rotated/flipped per
    ``orientation``. Segments are spliced in by hand after JFIF, independent of Pillow.
    """
    upright = upright_pixels() if pixels is None else pixels
    buf = io.BytesIO()
    Image.fromarray(stored_for_orientation(upright, orientation), "RGB").save(
        buf, "JPEG", quality=95
    )
    plain = buf.getvalue()
    assert plain[2:4] == b"\xff\xe0", "Pillow JPEGs start with a JFIF APP0"
    app0_end = 4 + struct.unpack(">H", plain[4:6])[0]
    extra = b"".join(
        (
            _segment(0xE1, dirty_exif(orientation=orientation, name=name)),
            _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + xmp_packet(name)),
            _segment(0xE2, b"ICC_PROFILE\0\x01\x01" + srgb_icc()),
            _segment(0xED, iptc_app13_payload(name)),
            _segment(0xFE, f"Photo of {name}".encode()),
        )
    )
    path = Path(path)
    path.write_bytes(plain[:app0_end] + extra + plain[app0_end:])
    return path


def make_dirty_png(
    path: Path, pixels: np.ndarray | None = None, *, orientation: int = 6, name: str = NAME
) -> Path:
    """Write a PNG with tEXt, zTXt, iTXt, eXIf (GPS, serial, thumbnail), iCCP and tIME."""
    upright = upright_pixels() if pixels is None else pixels
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", name)
    info.add_text("Description", f"{name} at sports day", zip=True)
    info.add_itxt("Comment", f"Photo of {name}", lang="en", tkey="Comment")
    info.add(b"tIME", struct.pack(">HBBBBB", 2024, 6, 1, 10, 30, 0))
    Image.fromarray(stored_for_orientation(upright, orientation), "RGB").save(
        path,
        "PNG",
        pnginfo=info,
        exif=dirty_exif(orientation=orientation, name=name),
        icc_profile=srgb_icc(),
    )
    return Path(path)


def make_dirty_webp(
    path: Path, pixels: np.ndarray | None = None, *, orientation: int = 6, name: str = NAME
) -> Path:
    """Write a lossless WebP with EXIF (GPS, serial, thumbnail), XMP and ICC chunks."""
    upright = upright_pixels() if pixels is None else pixels
    Image.fromarray(stored_for_orientation(upright, orientation), "RGB").save(
        path,
        "WEBP",
        lossless=True,
        exif=dirty_exif(orientation=orientation, name=name),
        xmp=xmp_packet(name),
        icc_profile=srgb_icc(),
    )
    return Path(path)


def noisy_pixels(width: int = 256, height: int = 192, seed: int = 0) -> np.ndarray:
    """Random pixels: they compress badly, so the scan data is most of the file."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def make_truncated_jpeg(path: Path) -> Path:
    """A JPEG cut in the middle of its entropy-coded scan data."""
    buf = io.BytesIO()
    Image.fromarray(noisy_pixels(), "RGB").save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    sos = data.index(b"\xff\xda")
    Path(path).write_bytes(data[: (sos + len(data)) // 2])
    return Path(path)


def make_truncated_png(path: Path, *, keep_idat: bool = False) -> Path:
    """A PNG cut inside its IDAT data, or (``keep_idat``) missing only its IEND chunk."""
    buf = io.BytesIO()
    Image.fromarray(noisy_pixels(), "RGB").save(buf, "PNG")
    data = buf.getvalue()
    Path(path).write_bytes(data[:-12] if keep_idat else data[: len(data) // 2])
    return Path(path)


def make_bomb_png(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny valid PNG whose IHDR claims ``width`` x ``height`` (CRC recomputed)."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR body starts at byte 16
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    Path(path).write_bytes(bytes(data))
    return Path(path)


def make_animated_gif(path: Path) -> Path:
    """A two-frame animated GIF (red, then blue)."""
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100)
    return Path(path)


def make_text_file(path: Path) -> Path:
    """A text file, whatever its name (use a .jpg name to pose as a photo)."""
    Path(path).write_text("this is not a photo\n")
    return Path(path)
