"""Decode one input photo into upright 8-bit sRGB pixels, refusing anything doubtful.

The file is read once into memory; the hash, the structure check and the decode all use
those same bytes, so the audited ``sha256`` is exactly what was processed. Every refusal
is an :class:`~pipeline.errors.UnreadableImage` whose message says why and what to do.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import re
import stat
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps

from pipeline.errors import UnreadableImage
from pipeline.formats import heif
from pipeline.formats.findings import (
    DAMAGED_EXIF,
    MALFORMED,
    TRUNCATED,
    MetadataFinding,
    find_metadata,
)

# Pillow plugins allowed to parse untrusted input; every other decoder stays unused.
# The JPEG plugin opens files with an MPF index (phones, cameras) as "MPO"; "HEIF" is
# pillow-heif's plugin (HEIC from iPhones and iPads, see pipeline/formats/heif.py).
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", heif.FORMAT)
# What a refusal lists as readable, in words an office manager knows.
READABLE = "JPEG, PNG, WebP, HEIC/HEIF, TIFF, BMP or GIF"
# Guards reading a whole file into memory; a 64 MP 16-bit uncompressed TIFF is ~400 MiB.
MAX_FILE_BYTES = 512 * 1024 * 1024

# Recognisable files that are refused, and what to say about each. A HEIC only gets here
# when libheif could not parse it, hence "damaged".
_MAGIC_HINTS = (
    (4, b"ftypheic", "HEIC file is damaged or uses a feature libheif cannot decode"),
    (4, b"ftypheix", "HEIC file is damaged or uses a feature libheif cannot decode"),
    (4, b"ftypmif1", "HEIF file is damaged or uses a feature libheif cannot decode"),
    (4, b"ftypavif", "AVIF is not supported"),
    (0, b"%PDF", "PDF is not supported"),
    (4, b"ftypqt  ", "a video (QuickTime) is not a photo"),
    (4, b"ftypisom", "a video (MP4) is not a photo"),
    (4, b"ftypmp42", "a video (MP4) is not a photo"),
)


@dataclass(frozen=True)
class LoadedImage:
    """An input photo decoded to upright 8-bit sRGB.

    ``pixels`` is (height, width, 3) uint8 RGB, C-contiguous and owned by the caller;
    ``size`` is (width, height) of the upright image; ``orientation`` is the EXIF
    orientation that was applied (1 when absent or invalid); ``sha256`` is the hex digest
    of the file bytes exactly as read; ``format`` is Pillow's name ("JPEG", "PNG", ...).
    ``orientation_tagged`` says whether the file carried a valid orientation tag at all:
    without one, nobody knows which way up the photo is (scans, exports, screenshots).
    ``metadata`` is what :func:`~pipeline.formats.findings.find_metadata` found in those same
    bytes (the pre-check reports it; the pixels never carry it onward).
    """

    pixels: np.ndarray
    sha256: str
    format: str
    orientation: int
    size: tuple[int, int]
    orientation_tagged: bool = False
    metadata: tuple[MetadataFinding, ...] = ()


def load_image(path: Path, *, max_pixels: int = 64_000_000) -> LoadedImage:
    """Read ``path`` and decode it to upright sRGB pixels.

    ``max_pixels`` bounds width x height as declared in the header and is checked before
    any pixel is decoded; 64 MP admits every current camera and phone while capping the
    decoded buffer near 200 MB (Pillow's own hard limit of about 179 MP still applies).
    Transparency is composited onto white. HEIC/HEIF is read through libheif, which
    applies the container's rotation itself. Raises UnreadableImage for anything that is
    not a complete, single-image JPEG, PNG, WebP, HEIC/HEIF, TIFF, BMP or GIF.
    """
    return decode_image(read_photo_bytes(path), Path(path).name, max_pixels=max_pixels)


def read_photo_bytes(path: Path) -> bytes:
    """The bytes of one input file, read once, with the loader's refusals (a folder, a
    FIFO, an empty or oversized file) as :class:`UnreadableImage`.

    For callers that need more from the same bytes than the pixels (the caption a photo
    carries), then :func:`decode_image` on them, so both come from what was hashed.
    """
    return _read_bytes(Path(path))


def decode_image(data: bytes, file_name: str, *, max_pixels: int = 64_000_000) -> LoadedImage:
    """:func:`load_image` on bytes already read; ``file_name`` is only for the reasons."""
    # Reasons quote the file name; a name may carry escape sequences of its own.
    name = _CONTROL.sub("?", file_name)
    heif.register()
    with _truncated_images_are_errors():
        loaded = _open_and_decode(data, name, max_pixels)
    return loaded


def _check_structure(name: str, findings: tuple[MetadataFinding, ...]) -> None:
    """Refuse what our own container walker found damaged (see pipeline.formats.findings)."""
    for finding in findings:
        if finding.kind in (TRUNCATED, MALFORMED):
            raise UnreadableImage(f"{name}: damaged file ({finding.detail}); re-export it")
        if finding.kind == DAMAGED_EXIF:
            # Pillow would quietly assume orientation 1, and the face detector would
            # then look at a sideways picture.
            raise UnreadableImage(
                f"{name}: EXIF block is damaged, so the orientation is unknown; re-export it"
            )


def _open_and_decode(data: bytes, name: str, max_pixels: int) -> LoadedImage:
    # Order matters: the header's size is checked before our walker inflates a PNG's
    # data stream (a bomb costs nothing), and the walker's verdict on damage comes
    # before Pillow's decoders, which pad or guess where the walker refuses.
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check replaces Pillow's global warning. (catch_warnings
            # is process-wide; if threads race here the worst outcome is that this one
            # warning stays ignored, which is harmless given our own check.)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise UnreadableImage(f"{name}: image dimensions are too large ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - see _decode: any parser failure is a refusal
        _check_structure(name, tuple(find_metadata(data)))
        raise UnreadableImage(f"{name}: {_not_an_image_reason(data)}") from exc
    with im:
        try:
            _check_size(im, max_pixels)
        except UnreadableImage as exc:
            raise UnreadableImage(f"{name}: {exc}") from exc
        findings = tuple(find_metadata(data))
        _check_structure(name, findings)
        try:
            tagged = _orientation_tagged(im)  # before decoding: see _decode
            pixels, orientation = _decode(im, max_pixels)
        except UnreadableImage as exc:
            raise UnreadableImage(f"{name}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - see _decode
            reason = _library_message(exc)
            raise UnreadableImage(f"{name}: cannot decode ({reason}); re-export it") from exc
        fmt = "JPEG" if im.format == "MPO" else str(im.format)
    h, w = pixels.shape[:2]
    digest = hashlib.sha256(data).hexdigest()
    return LoadedImage(pixels, digest, fmt, orientation, (w, h), tagged, findings)


_strict_lock = threading.Lock()
_strict_users = 0
_saved_flag = False


@contextlib.contextmanager
def _truncated_images_are_errors() -> Iterator[None]:
    """Make Pillow raise on cut-off files while any load_image call is decoding.

    face_recognition sets ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` when imported, which
    makes Pillow pad a cut-off file with grey instead of raising. The flag is global, so
    it is switched off while at least one load is running (counted under a lock, so
    concurrent loads cannot switch it back on under each other) and then restored.
    """
    global _strict_users, _saved_flag
    with _strict_lock:
        if _strict_users == 0:
            _saved_flag = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = False
        _strict_users += 1
    try:
        yield
    finally:
        with _strict_lock:
            _strict_users -= 1
            if _strict_users == 0:
                ImageFile.LOAD_TRUNCATED_IMAGES = _saved_flag


def _check_size(im: Image.Image, max_pixels: int) -> None:
    """Refuse a header that declares more than ``max_pixels``, before any decoding."""
    width, height = im.size
    if width * height > max_pixels:
        raise UnreadableImage(
            f"{width}x{height} pixels is over the limit of {max_pixels:,}"
            " (possible decompression bomb); downscale it first"
        )


def _decode(im: Image.Image, max_pixels: int) -> tuple[np.ndarray, int]:
    """Pixels and applied orientation of an opened image, after the size/frame checks.

    Pillow's plugins raise assorted exception types on hostile input (OSError,
    struct.error, IndexError, ...), so callers treat any exception as a refusal.
    """
    _check_size(im, max_pixels)
    _check_single_image(im)
    # Read before load(): Pillow 13's TIFF plugin applies the orientation itself while
    # loading and then drops the tag (exif_transpose below is then a no-op for it).
    orientation = _orientation(im)
    im.load()
    if im.format == heif.FORMAT:
        # libheif has already applied irot/imir and the plugin reset the EXIF tag to 1;
        # applying the stored EXIF value again would turn the photo a second time.
        original = im.info.get("original_orientation")
        orientation = original if isinstance(original, int) and 1 <= original <= 8 else 1
        return _to_srgb_array(im), orientation
    # exif_transpose copies a photo it need not turn (a 12 MP copy, 0.1 s): ask it only
    # when the tag says to turn. A tag Pillow applied while loading (see above) is gone,
    # so it is asked in vain there, as before.
    upright = (ImageOps.exif_transpose(im) or im) if orientation != 1 else im
    return _to_srgb_array(upright), orientation


def _check_single_image(im: Image.Image) -> None:
    """Refuse animations, bursts and multi-page files: which picture to publish is a
    person's choice, and publishing only the first could hide what the rest show."""
    if im.format == "MPO":
        return  # MPO's extra pictures are previews/depth maps; the primary one is the photo
    frames = getattr(im, "n_frames", 1)
    if im.format == "TIFF" and frames > 1:
        frames = _tiff_pages(im)
    if frames <= 1:
        return
    what = {
        "GIF": f"animated GIF ({frames} frames)",
        "WEBP": f"animated WebP ({frames} frames)",
        "PNG": f"animated PNG ({frames} frames)",
        "TIFF": f"multi-page TIFF ({frames} pages)",
        heif.FORMAT: f"HEIC/HEIF holding {frames} images (a burst or an image sequence)",
    }.get(str(im.format), f"multi-frame image ({frames} frames)")
    raise UnreadableImage(
        f"{what} is not supported (multi-frame); export the one picture you want as a single image"
    )


def _tiff_pages(im: Image.Image) -> int:
    """Full-resolution pages of a TIFF: subfiles flagged as reduced-resolution copies
    (NewSubfileType bit 0, TIFF 6.0 section 8: thumbnails, previews) do not count."""
    pages = 0
    for index in range(im.n_frames):
        im.seek(index)
        subfile = im.tag_v2.get(254, 0)  # NewSubfileType
        if not (isinstance(subfile, int) and subfile & 1):
            pages += 1
    im.seek(0)
    return pages


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")


def _library_message(exc: Exception) -> str:
    """A decoder's exception as one short printable line for reports and audit rows.

    libheif's messages span lines, and some decoders quote bytes of the file; control
    and bidirectional-override characters would garble a terminal or a log.
    """
    text = _CONTROL.sub(" ", f"{type(exc).__name__}: {exc}").strip()
    return text if len(text) <= 200 else text[:197] + "..."


def _read_bytes(path: Path) -> bytes:
    name = _CONTROL.sub("?", path.name)
    # O_NONBLOCK so that a FIFO cannot hang the open; fstat on the open descriptor so the
    # checked file is the one that is read.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except IsADirectoryError as exc:
        raise UnreadableImage(f"{name}: is a directory, not an image file") from exc
    except OSError as exc:
        raise UnreadableImage(f"{name}: cannot open ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableImage(f"{name}: is a directory, not an image file")
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableImage(f"{name}: is not a regular file")
        if info.st_size == 0:
            raise UnreadableImage(f"{name}: file is empty (0 bytes)")
        if info.st_size > MAX_FILE_BYTES:
            raise UnreadableImage(f"{name}: file is over {MAX_FILE_BYTES:,} bytes")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UnreadableImage(f"{name}: cannot read ({exc.strerror})") from exc
    finally:
        os.close(fd)
    if not data:
        raise UnreadableImage(f"{name}: file is empty (0 bytes)")
    return data


def _not_an_image_reason(data: bytes) -> str:
    for offset, magic, label in _MAGIC_HINTS:
        if data[offset : offset + len(magic)] == magic:
            return f"{label}; export the photo as JPEG or PNG"  # each label is a sentence
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "an SVG drawing is not a photo; export it as PNG"
    return f"not a {READABLE} image (or its header is damaged)"


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation exif_transpose will honour, 1 when absent or out of range."""
    value = im.getexif().get(0x0112, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orientation_tagged(im: Image.Image) -> bool:
    """Whether the file states its orientation (a valid tag, 1 included)."""
    value = im.getexif().get(0x0112)
    return isinstance(value, int) and 1 <= value <= 8


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb_array(im: Image.Image) -> np.ndarray:
    """Any supported mode to (h, w, 3) uint8 sRGB, alpha composited onto white."""
    icc = im.info.get("icc_profile")
    im, alpha = _split_alpha(_to_8bit(im))
    if icc:
        im = _apply_icc(im, icc)
    # convert() copies an image already in RGB, as most photos are.
    rgb = np.asarray(im if im.mode == "RGB" else im.convert("RGB"), dtype=np.uint8)
    if alpha is not None:
        a = np.asarray(alpha, dtype=np.uint16)[..., None]
        # Round to nearest: (rgb*a + 255*(255-a)) / 255, all in integers.
        blended = (rgb.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
        rgb = blended.astype(np.uint8)
    return np.ascontiguousarray(rgb)


def _to_8bit(im: Image.Image) -> Image.Image:
    if im.mode in ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr"):
        return im
    if im.mode.startswith("I"):  # "I;16", "I;16B", "I": 16-bit greyscale PNG/TIFF
        values = np.asarray(im).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise UnreadableImage("32-bit integer pixels are not supported; export 8/16-bit")
        # Scale 0..65535 onto 0..255 with rounding, so full white stays 255.
        scaled = (values * 255 + 32767) // 65535
        return Image.fromarray(scaled.astype(np.uint8), "L")
    raise UnreadableImage(f"pixel mode {im.mode} is not supported; export as 8-bit RGB")


def _split_alpha(im: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Colour part in L/RGB/CMYK plus the alpha band, if the image has transparency."""
    if im.mode == "1":
        return im.convert("L"), None
    if im.mode in ("P", "PA"):
        has_alpha = im.mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif im.mode == "YCbCr":
        im = im.convert("RGB")
    if im.mode in ("LA", "RGBA"):
        return im.convert(im.mode[:-1]), im.getchannel("A")
    if im.mode in ("L", "RGB") and "transparency" in im.info:  # tRNS colour key
        im = im.convert(im.mode + "A")
        return im.convert(im.mode[:-1]), im.getchannel("A")
    return im, None


def _apply_icc(im: Image.Image, icc: bytes) -> Image.Image:
    """Convert from the embedded profile to sRGB; a damaged profile is a refusal."""
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError) as exc:
        raise UnreadableImage("embedded ICC colour profile is damaged") from exc
    space = src.profile.xcolor_space.strip()
    expected = {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}[im.mode]
    if space == "RGB" and im.mode == "L":
        im = im.convert("RGB")  # greyscale tagged with an RGB profile: common, harmless
    elif space != expected:
        raise UnreadableImage(f"ICC profile is for {space} but the pixels are {im.mode}")
    return ImageCms.profileToProfile(im, src, _srgb(), outputMode="RGB")


def exif_taken(data: bytes) -> date | None:
    """EXIF DateTimeOriginal (``YYYY:MM:DD HH:MM:SS``) as a date, None if absent or bad."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            value = im.getexif().get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal)
    except Exception:  # noqa: BLE001 - load_image has already vetted the file
        return None
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S").date()
    except ValueError:
        return None
