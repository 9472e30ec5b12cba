"""The images of a review batch: each photo as it would be published now, and clear
crops of the faces a reviewer has to look at, rendered again from the original photo
(never stored: the batch file holds no pixels)."""

from __future__ import annotations

import base64
import enum
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pipeline.boxes import Box
from pipeline.errors import PipelineError
from pipeline.loading import load_image
from pipeline.matching import Reason
from pipeline.redaction import RedactionStyle, head_region, redact_faces
from publishing.review.batch import ReviewFace, ReviewPhoto, Verdict

# The overview's long side in pixels: enough to tell who is where on a laptop screen,
# small enough that a batch of a few hundred photos stays a page a browser can open.
MAX_SIDE = 1000
THUMB_SIDE = 200
JPEG_QUALITY = 80
COLOURS = {"clear": (26, 127, 55), "pending": (194, 93, 0), "blurred": (110, 118, 129)}


class Shown(enum.Enum):
    """How a face appears on the sheet under the current verdicts."""

    CLEAR = "clear"  # approved or un-blurred: published clear if consent still allows it
    PENDING = "pending"  # kept by matching or uncertain, no verdict: published blurred
    BLURRED = "blurred"


def shown(face: ReviewFace) -> Shown:
    """Clear only when approved (a kept or uncertain face) or un-blurred; a kept or
    uncertain face without verdict is pending."""
    proposed = face.approvable
    if face.verdict is Verdict.UNBLURRED or (proposed and face.verdict is Verdict.APPROVED):
        return Shown.CLEAR
    if proposed and face.verdict is None:
        return Shown.PENDING
    return Shown.BLURRED


def needs_crop(face: ReviewFace) -> bool:
    """Whether the sheet shows this face's clear crop: never for a face only blurred by
    matching; always in no-biometrics mode, where the reviewer is the only one who can
    name a face (staff who may see the originals anyway)."""
    return (
        face.approvable
        or face.needs_person
        or face.verdict is Verdict.UNBLURRED
        or face.reason is Reason.NO_BIOMETRICS
    )


@dataclass
class PhotoImages:
    """The rendered images of one photo: an overview data URI and face crops by face ID,
    or ``problem`` (why the photo cannot be shown) instead."""

    overview: str | None = None
    crops: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


class ImageCache:
    """Rendered images kept between renders (the review server re-renders on every
    request; only a photo whose verdicts changed is decoded and redacted again). Holds
    the latest rendering of each photo only."""

    def __init__(self) -> None:
        self._images: dict[str, tuple[tuple[object, ...], PhotoImages]] = {}

    def get(self, photo: ReviewPhoto, style: RedactionStyle) -> PhotoImages:
        try:  # a file replaced while the server runs is decoded (and refused) again
            st = os.stat(photo.input)
            on_disk: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            on_disk = None
        key = (
            photo.sha256,
            on_disk,
            style,
            tuple((f.face_id, tuple(f.box), shown(f), needs_crop(f)) for f in photo.faces),
        )
        cached = self._images.get(photo.input)
        if cached is None or cached[0] != key:
            cached = self._images[photo.input] = (key, render_photo(photo, style))
        return cached[1]


def render_photo(photo: ReviewPhoto, style: RedactionStyle) -> PhotoImages:
    """Decode ``photo`` again and draw its overview and face crops (JPEG data URIs)."""
    try:
        loaded = load_image(Path(photo.input))
    except PipelineError as exc:
        return PhotoImages(problem=f"cannot be read now ({exc}); it will not be published")
    if loaded.sha256 != photo.sha256:
        return PhotoImages(
            problem="the file changed since it was analysed; it will not be published from "
            "this batch (start a new review)"
        )
    pixels = loaded.pixels
    h, w = pixels.shape[:2]
    crops = {}
    for face in photo.faces:
        if needs_crop(face):
            rows, cols = head_region(Box(*face.box)).pixel_slices(w, h)
            crop = Image.fromarray(pixels[rows, cols])
            crop.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
            crops[face.face_id] = data_uri(crop)
    blurred = [Box(*f.box) for f in photo.faces if shown(f) is Shown.BLURRED]
    clear = [Box(*f.box) for f in photo.faces if shown(f) is not Shown.BLURRED]
    published = Image.fromarray(redact_faces(pixels, blurred, clear, style))
    scale = min(1.0, MAX_SIDE / max(w, h))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        published = published.resize(size, Image.Resampling.LANCZOS)
    _draw_labels(published, photo.faces, scale)
    return PhotoImages(overview=data_uri(published), crops=crops)


def _draw_labels(image: Image.Image, faces: Iterable[ReviewFace], scale: float) -> None:
    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 350))
    font = ImageFont.load_default(size=max(12, round(max(image.size) / 55)))
    for face in faces:
        state = shown(face)
        colour = COLOURS[state.value]
        b = Box(*face.box)
        draw.rectangle(
            [b.x * scale, b.y * scale, b.x2 * scale, b.y2 * scale], outline=colour, width=width
        )
        label = face.face_id + (" pending" if state is Shown.PENDING else "")
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        tw, th = right - left + 2 * width, bottom - top + 2 * width
        x = min(max(0.0, b.x * scale), image.width - tw)
        y = b.y * scale - th if b.y * scale >= th else b.y2 * scale
        draw.rectangle([x, y, x + tw, y + th], fill=colour)
        draw.text((x + width - left, y + width - top), label, fill=(255, 255, 255), font=font)


def data_uri(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
