"""Proof-of-clean helpers: ExifTool as a second opinion, name scans in every encoding, and
"dirty" input files with a pupil's full name in every field schools' software writes.

The dirty files are written the way real software writes them: ExifTool (the reference
implementation of IPTC, XMP and EXIF writing) for every field it can put in the format,
Pillow for PNG text chunks and the ICC profile, pillow-heif for the HEIC container.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, PngImagePlugin

from tests.support.environment import require_tool

FULL_NAME = "Amelia Hart"

# Everything ExifTool may list for a clean output, by group (-G1). Anything else (a group
# not named here, or a tag of an allowed group that is not listed) fails the proof.
EXIFTOOL_ALLOWED: dict[str, set[str] | None] = {
    # The file on disk (name, size, dates, permissions), not its content: any tag.
    "System": None,
    # ExifTool about itself. Its "Warning"/"Error" tags are deliberately not allowed:
    # a warning such as "Trailer data after PNG IEND" means the file holds something.
    "ExifTool": {"ExifToolVersion"},
    # Facts ExifTool derives from the format's own structure. "File:Comment" (a JPEG COM
    # segment) and "File:ExifByteOrder" (present only with EXIF) are not in the list.
    "File": {
        "FileType",
        "FileTypeExtension",
        "MIMEType",
        "ImageWidth",
        "ImageHeight",
        "EncodingProcess",
        "BitsPerSample",
        "ColorComponents",
        "YCbCrSubSampling",
    },
    # JPEG's JFIF APP0 header: version and pixel aspect only (no thumbnail tags).
    "JFIF": {"JFIFVersion", "ResolutionUnit", "XResolution", "YResolution"},
    # PNG's IHDR chunk only (no text, time, ICC, eXIf or physical-size tags).
    "PNG": {
        "ImageWidth",
        "ImageHeight",
        "BitDepth",
        "ColorType",
        "Compression",
        "Filter",
        "Interlace",
    },
    # WebP's VP8/VP8L bitstream header (and the VP8X canvas size for extended files).
    "RIFF": {
        "VP8Version",
        "ImageWidth",
        "ImageHeight",
        "HorizontalScale",
        "VerticalScale",
        "AlphaIsUsed",
        "WebP_Flags",
    },
    # Values ExifTool computes from the above (width x height, megapixels).
    "Composite": {"ImageSize", "Megapixels"},
}


def exiftool_tags(path: Path) -> dict[str, object]:
    """Every tag ExifTool finds, keyed "Group1:Tag": ``-a`` keeps duplicates, ``-u``
    lists unknown tags, ``-G1`` names the specific group (IFD0, XMP-dc, IPTC, ICC_Profile,
    PNG...), ``-j`` gives JSON; ``-b`` is not used, binary blocks are named anyway."""
    exe = require_tool("exiftool", "libimage-exiftool-perl")
    out = subprocess.run(
        [exe, "-j", "-G1", "-a", "-u", "--", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (record,) = json.loads(out)
    record.pop("SourceFile", None)
    return record


def exiftool_extras(path: Path) -> list[str]:
    """The tags ExifTool lists for ``path`` beyond :data:`EXIFTOOL_ALLOWED`."""
    extras = []
    for key in exiftool_tags(path):
        group, _, tag = key.partition(":")
        allowed = EXIFTOOL_ALLOWED.get(group, set())
        if allowed is not None and tag not in allowed:
            extras.append(key)
    return extras


def name_encodings(name: str) -> dict[str, bytes]:
    """``name`` as the byte strings metadata formats use for text."""
    return {
        "utf-8": name.encode("utf-8"),
        "utf-16-le": name.encode("utf-16-le"),
        "utf-16-be": name.encode("utf-16-be"),
        "latin-1": name.encode("latin-1"),
    }


def name_hits(data: bytes, name: str) -> list[str]:
    """The encodings in which ``name`` occurs in ``data``, ignoring ASCII case (bytes
    .lower() lowercases A-Z only, which is exact for ASCII names in all four encodings)."""
    haystack = data.lower()
    return [enc for enc, b in name_encodings(name).items() if b.lower() in haystack]


def icc_with_description(text: str) -> bytes:
    """A working sRGB ICC profile whose description ('desc' tag) is ``text``.

    Built from LittleCMS's sRGB profile: the 'desc' tag is rewritten as an ICC v4
    multiLocalizedUnicode (UTF-16BE) record appended at the end, the tag table entry and
    the header's size are updated and the profile ID (an optional MD5) is zeroed.
    """
    base = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    utf16 = text.encode("utf-16-be")
    mluc = b"mluc\0\0\0\0" + struct.pack(">II", 1, 12) + b"enUS"
    mluc += struct.pack(">II", len(utf16), 28) + utf16
    count = struct.unpack_from(">I", base, 128)[0]
    for i in range(count):
        entry = 132 + 12 * i
        if base[entry : entry + 4] == b"desc":
            base += b"\0" * (-len(base) % 4)
            struct.pack_into(">II", base, entry + 4, len(base), len(mluc))
            base += mluc
            break
    else:  # pragma: no cover - LittleCMS always writes a description
        raise AssertionError("no desc tag in the sRGB profile")
    struct.pack_into(">I", base, 0, len(base))
    base[84:100] = b"\0" * 16
    return bytes(base)


def _exiftool_args(name: str, thumb: Path, *, iptc: bool, comment: bool) -> list[str]:
    """ExifTool assignments putting ``name`` in every field the issue lists."""
    args = [
        f"-XMP-dc:Description={name} on sports day",
        f"-XMP-dc:Title={name}",
        f"-XMP-dc:Subject={name}",
        f"-XMP-photoshop:Headline={name} wins the egg-and-spoon race",
        f"-XMP-iptcExt:PersonInImage={name}",
        # Lightroom/MWG face region, and Windows Photos' region (commas escaped with |).
        "-XMP-mwg-rs:RegionInfo={AppliedToDimensions={W=64,H=48,Unit=pixel},"
        "RegionList=[{Area={X=0.5,Y=0.5,W=0.2,H=0.2,Unit=normalized},"
        f"Name={name},Type=Face}}]}}",
        f"-XMP-MP:RegionInfoMP={{Regions=[{{PersonDisplayName={name},"
        "Rectangle=0.1|, 0.1|, 0.2|, 0.2}]}",
        f"-XMP-digiKam:TagsList=People/{name}",
        f"-XMP-lr:HierarchicalSubject=People|{name}",
        f"-EXIF:ImageDescription={name} on sports day",
        f"-EXIF:Artist={name}",
        f"-EXIF:UserComment={name}",
        f"-EXIF:XPTitle={name}",
        f"-EXIF:XPComment={name}",
        f"-EXIF:XPKeywords={name}",
        f"-EXIF:XPSubject={name}",
        f"-EXIF:XPAuthor={name}",
        "-GPS:GPSLatitude=51.5014",
        "-GPS:GPSLatitudeRef=N",
        "-GPS:GPSLongitude=0.1419",
        "-GPS:GPSLongitudeRef=W",
        f"-ThumbnailImage<={thumb}",
    ]
    if iptc:
        args += [
            f"-IPTC:Caption-Abstract={name} on sports day",
            f"-IPTC:By-line={name}",
            f"-IPTC:Keywords={name}",
            f"-IPTC:Headline={name} wins the egg-and-spoon race",
            f"-IPTC:ObjectName={name}",
        ]
    if comment:
        args.append(f"-Comment=Photo of {name}")
    return args


@dataclass(frozen=True)
class DirtyFormat:
    """How to make one format's dirty fixture and what it is expected to carry.

    ``caption`` is the caption text the file's own description fields hold; the caption
    assertions on publish's report (rewritten per purpose) hook in here once captions
    are wired into publish.
    """

    suffix: str
    pillow_format: str
    iptc: bool  # ExifTool writes IPTC into JPEG, TIFF and PNG, not into WebP or HEIC
    expected_groups: frozenset[str]
    caption: str = f"{FULL_NAME} on sports day"


_COMMON = {"IFD0", "ExifIFD", "GPS", "XMP-dc", "XMP-mwg-rs", "XMP-MP", "XMP-lr"}
_COMMON |= {"XMP-digiKam", "XMP-iptcExt", "XMP-photoshop", "ICC_Profile"}

DIRTY_FORMATS = {
    "jpeg": DirtyFormat(".jpg", "JPEG", True, frozenset(_COMMON | {"IPTC", "IFD1"})),
    "png": DirtyFormat(".png", "PNG", True, frozenset(_COMMON | {"IPTC", "IFD1", "PNG"})),
    "webp": DirtyFormat(".webp", "WEBP", False, frozenset(_COMMON | {"IFD1"})),
    # A TIFF's IFD1 is a second page, so its thumbnail is a reduced-resolution subfile.
    "tiff": DirtyFormat(".tif", "TIFF", True, frozenset(_COMMON | {"IPTC"})),
    "heic": DirtyFormat(".heic", "HEIF", False, frozenset(_COMMON | {"IFD1"})),
}


def thumbnail_jpeg(path: Path) -> Path:
    """The "uncropped original" preview a camera keeps: a small JPEG of other content."""
    Image.new("RGB", (32, 24), (250, 10, 10)).save(path, "JPEG", quality=80)
    return path


def make_dirty(path: Path, pixels: np.ndarray, fmt: str, name: str = FULL_NAME) -> Path:
    """Write ``pixels`` as ``fmt`` (a key of DIRTY_FORMATS) with ``name`` everywhere."""
    exe = require_tool("exiftool", "libimage-exiftool-perl")
    spec = DIRTY_FORMATS[fmt]
    image = Image.fromarray(pixels, "RGB")
    icc = icc_with_description(f"Profile of {name}")
    params: dict[str, object] = {"icc_profile": icc}
    if fmt == "png":
        info = PngImagePlugin.PngInfo()
        info.add_text("Author", name)
        info.add_text("Description", f"{name} at sports day", zip=True)
        info.add_itxt("Comment", f"Photo of {name}", lang="en", tkey="Comment")
        params["pnginfo"] = info
    elif fmt == "jpeg":
        params["quality"] = 92
    elif fmt == "webp":
        params["quality"] = 90
    elif fmt == "heic":
        from pipeline.formats import heif

        heif.register()
        params.update(quality=90, thumbnails=[32])  # HEIF's own thumbnail item too
    elif fmt == "tiff":
        # A reduced-resolution copy as the second subfile: the TIFF form of a thumbnail.
        thumb = image.resize((32, 24))
        thumb.encoderinfo = {}
        params.update(save_all=True, append_images=[thumb], compression="tiff_lzw")
    image.save(path, spec.pillow_format, **params)
    if fmt == "tiff":
        _mark_reduced_resolution(path)
    thumb = thumbnail_jpeg(path.with_name(path.name + ".thumb.jpg"))
    args = _exiftool_args(name, thumb, iptc=spec.iptc, comment=fmt == "jpeg")
    if fmt == "tiff":
        args = [a for a in args if not a.startswith("-ThumbnailImage")]
    subprocess.run(
        [exe, "-q", "-m", "-overwrite_original", *args, "--", str(path)],
        check=True,
        capture_output=True,
    )
    thumb.unlink()
    return path


_REDUCED = "Reduced-resolution image"  # ExifTool's name for NewSubfileType = 1


def _mark_reduced_resolution(path: Path) -> None:
    """Set NewSubfileType=1 (reduced-resolution image) on the TIFF's second IFD."""
    exe = require_tool("exiftool", "libimage-exiftool-perl")
    subprocess.run(
        [exe, "-q", "-m", "-overwrite_original", f"-IFD1:SubfileType={_REDUCED}", "--", str(path)],
        check=True,
        capture_output=True,
    )


def png_bytes(image: Image.Image, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", **params)
    return buf.getvalue()
