"""Text that cameras and software write into a photo's caption fields, which is no caption.

Cameras fill EXIF ImageDescription with their maker ("SAMSUNG CSC", "OLYMPUS DIGITAL
CAMERA"), editors leave their name in a comment ("File written by Adobe Photoshop 4.0"),
and copying tools store the file's own path ("DCIM\\100GOPRO\\GOPR0482.JPG"). Published as
a caption it is at best noise and at worst a path naming a child's folder (issue 15). Each
pattern below is one kind, with a name for the tests; a caption matching any of them in
full (case-insensitive, ignoring surrounding spaces and punctuation) is treated as absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CAMERA_MAKERS = (
    r"samsung|olympus|sony|nikon|canon|kodak|fujifilm|fuji|panasonic|pentax|minolta|"
    r"konica minolta|casio|ricoh|leica|sigma|gopro|dji|huawei|xiaomi|oppo|vivo|oneplus|"
    r"motorola|lg|htc|nokia|apple|google|hasselblad|polaroid|benq|sanyo|epson|hp"
)
_FILE_EXT = r"(?:jpe?g|png|heic|heif|tiff?|webp|gif|bmp|dng|raw|cr2|nef|arw|mp4|mov)"


@dataclass(frozen=True)
class Boilerplate:
    """One kind of non-caption: its ``name`` and the pattern it matches in full."""

    name: str
    pattern: re.Pattern[str]


def _p(name: str, regex: str) -> Boilerplate:
    return Boilerplate(name, re.compile(regex, re.IGNORECASE))


PATTERNS: tuple[Boilerplate, ...] = (
    # A Windows path (a caption has no backslashes): DCIM\100GOPRO\GOPR0482.JPG, C:\Users\...
    _p("windows path", r"(?:[a-z]:)?\\?(?:[^\\\n]+\\)+[^\\\n]*"),
    # A POSIX path: from the root without spaces, or any folders ending in a photo file.
    _p("posix path", r"/(?:[^/\s]+/)*[^/\s]+|(?:[^/\n]+/)+[^/\n]*\." + _FILE_EXT),
    # A bare camera or phone file name: IMG_1234.JPG, DSC01234, PXL_20240101_101010.jpg.
    _p(
        "camera file name",
        r"(?:img|dsc[fn]?|p\d{3}|pict|pxl|mvimg|gopr|gp|dji|sam|wp|photo|image|_dsc|"
        r"screenshot|scan)[_\- ]?\d{3,}[\d_\-]*(?:[_\-~ ]\w+)?(?:\." + _FILE_EXT + r")?",
    ),
    _p("file name", r"[\w\-. ]{1,80}\." + _FILE_EXT),
    # Maker defaults: SAMSUNG CSC, OLYMPUS DIGITAL CAMERA, SONY DSC, KODAK Digital Still Camera.
    _p(
        "camera default",
        r"(?:(?:" + _CAMERA_MAKERS + r")(?: corporation| imaging)?\s+)?"
        r"(?:digital\s+(?:still\s+)?camera|dsc|csc|camera|digicam|digital image)",
    ),
    # A maker or model name alone: "Canon", "NIKON CORPORATION", "Canon PowerShot G7 X".
    _p(
        "camera model",
        r"(?:" + _CAMERA_MAKERS + r")(?:\s+(?:corporation|imaging|inc\.?|co\.?,? ltd\.?))?"
        r"(?:\s+[a-z]*\d[\w\-]*|\s+(?:powershot|coolpix|cyber-shot|lumix|galaxy|eos|"
        r"iphone|pixel|hero\d*)(?:\s+[\w\-]+){0,3})?",
    ),
    _p(
        "editing software",
        r"file written by adobe photoshop.*|adobe photoshop.*|created with (?:the )?gimp.*|"
        r"(?:picasa|lightroom|snapseed|paint\.net|irfanview|acd ?see|ms photo|"
        r"windows photo editor|microsoft windows photo viewer)(?: [\w. ()]*)?",
    ),
    _p(
        "encoder comment",
        r"(?:creator: )?gd-jpeg.*|lead technologies.*|ijg jpeg.*|jpeg encoder.*|"
        r"(?:optimi[sz]ed|compressed|processed) (?:by|with) [\w.\- ]+|"
        r"(?:shot on|made with) (?:" + _CAMERA_MAKERS + r"|iphone|pixel|galaxy)\b.*",
    ),
    _p(
        "placeholder",
        r"exif[_ ]jpeg[_ ](?:picture|422)|jpeg picture|default|untitled(?:[- ]\d+)?|"
        r"image|photo|picture|no ?title|none|null|description|caption|title",
    ),
    # A date or time stamp alone: 2024:05:01 10:11:12, 2024-05-01, 20240501_101112.
    _p(
        "timestamp",
        r"\d{4}[:\-/.]\d{2}[:\-/.]\d{2}(?:[ t_]\d{2}[:.\-]?\d{2}(?:[:.\-]?\d{2})?)?|"
        r"\d{8}[_\- ]?\d{6}",
    ),
    # Nothing but digits and punctuation (serials, "-", "....").
    _p("no words", r"[\s\d\-_.,:;/#*+=~|]*"),
)

_EDGES = " \t\r\n.,;:!?'\"()[]{}"


def boilerplate_kind(text: str) -> str | None:
    """The name of the pattern ``text`` matches in full, or None if it may be a caption."""
    candidates = {text.strip(), text.strip(_EDGES)}
    for item in PATTERNS:
        if any(item.pattern.fullmatch(c) for c in candidates):
            return item.name
    return None


def real_caption(text: str | None) -> str | None:
    """``text`` if it can be a caption; None when it is absent or camera/software
    boilerplate (see `PATTERNS`). Used where a photo's own embedded caption is chosen."""
    if text is None or boilerplate_kind(text) is not None:
        return None
    return text
