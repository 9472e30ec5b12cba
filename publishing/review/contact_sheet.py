"""The contact sheet of a review batch: one self-contained HTML page for the reviewer.

It shows every photo as it would be published under the current verdicts, and a clear
crop of every face a person has to look at (kept by matching, near the tolerance, or
un-blurred by a reviewer) beside the pupil's name and class. No reference photos are
stored, only encodings, so the reviewer recognises the child by name.

The page shows children's faces and names: `write_contact_sheet` puts it in the protected
data directory (0600), never in an output folder. It needs no network and no JavaScript:
images are inline JPEG data URIs, and every text that came from a file is escaped.
"""

from __future__ import annotations

import base64
import enum
import html
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from consent.errors import UnknownPupil
from consent.registry import get_pupil
from consent.store import Store
from pipeline.boxes import Box
from pipeline.errors import PipelineError
from pipeline.loading import load_image
from pipeline.matching import Decision, Reason
from pipeline.redaction import RedactionStyle, head_region, redact_faces
from publishing.review.batch import ReviewBatch, ReviewFace, ReviewPhoto, Verdict, review_dir

# The overview's long side in pixels: enough to tell who is where on a laptop screen,
# small enough that a batch of a few hundred photos stays a page a browser can open.
MAX_SIDE = 1000
THUMB_SIDE = 200
JPEG_QUALITY = 80
COLOURS = {"clear": (26, 127, 55), "pending": (194, 93, 0), "blurred": (110, 118, 129)}


class Shown(enum.Enum):
    """How a face appears on the sheet under the current verdicts."""

    CLEAR = "clear"  # approved or un-blurred: published clear if consent still allows it
    PENDING = "pending"  # kept by matching, no verdict: shown here, published blurred
    BLURRED = "blurred"


def shown(face: ReviewFace) -> Shown:
    """Clear only when approved (a kept face) or un-blurred; a keep without verdict is pending."""
    kept = face.decision is Decision.KEPT
    if face.verdict is Verdict.UNBLURRED or (kept and face.verdict is Verdict.APPROVED):
        return Shown.CLEAR
    if kept and face.verdict is None:
        return Shown.PENDING
    return Shown.BLURRED


def needs_crop(face: ReviewFace) -> bool:
    """Whether the sheet shows this face's clear crop: never for a face only blurred by
    matching; always in no-biometrics mode, where the reviewer is the only one who can
    name a face (staff who may see the originals anyway)."""
    return (
        face.decision is Decision.KEPT
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
            crops[face.face_id] = _data_uri(crop)
    blurred = [Box(*f.box) for f in photo.faces if shown(f) is Shown.BLURRED]
    clear = [Box(*f.box) for f in photo.faces if shown(f) is not Shown.BLURRED]
    published = Image.fromarray(redact_faces(pixels, blurred, clear, style))
    scale = min(1.0, MAX_SIDE / max(w, h))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        published = published.resize(size, Image.Resampling.LANCZOS)
    _draw_labels(published, photo.faces, scale)
    return PhotoImages(overview=_data_uri(published), crops=crops)


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


def _data_uri(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def render_contact_sheet(
    store: Store,
    batch: ReviewBatch,
    *,
    token: str | None = None,
    reviewer: str | None = None,
    images: ImageCache | None = None,
) -> str:
    """The batch's contact sheet as one HTML page.

    With ``token`` (the review server's per-run secret) every face gets buttons that POST
    a verdict to ``/verdict``; without it the page is read-only and says which commands
    record verdicts. ``reviewer`` is shown as the name verdicts are recorded under.
    """
    return _Sheet(store, batch, token, reviewer, images or ImageCache()).page()


def write_contact_sheet(store: Store, batch: ReviewBatch) -> Path:
    """Write the read-only sheet to ``DATA_DIR/reviews/<batch>.html`` (0600); return it."""
    path = review_dir(store) / f"{batch.batch_id}.html"
    text = render_contact_sheet(store, batch)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older tmp file may have had another mode
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


class _Sheet:
    def __init__(
        self,
        store: Store,
        batch: ReviewBatch,
        token: str | None,
        reviewer: str | None,
        images: ImageCache,
    ) -> None:
        self.store, self.batch, self.reviewer = store, batch, reviewer
        # Verdicts cannot change once the batch is published, so no buttons then.
        self.token = token if batch.published_to is None else None
        self.style = batch.options.style
        self.images = {
            p.input: images.get(p, self.style) for p in batch.photos if p.withheld is None
        }

    def page(self) -> str:
        b = self.batch
        faces = list(b.faces())
        groups: dict[str, list[tuple[ReviewPhoto, ReviewFace]]] = {
            "needs": [],
            "pending": [],
            "reviewed": [],
        }
        for photo, face in faces:
            if photo.withheld is not None:
                continue
            if face.needs_person:
                groups["needs"].append((photo, face))
            elif face.verdict is not None:
                groups["reviewed"].append((photo, face))
            elif face.decision is Decision.KEPT:
                groups["pending"].append((photo, face))
        carded = {f.face_id for g in groups.values() for _, f in g}
        withheld = [p for p in b.photos if p.withheld is not None]
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="robots" content="noindex">',
            f"<title>Review {_e(b.batch_id)}: CONFIDENTIAL</title>",
            f"<style>{CSS}</style></head><body>",
            '<p class="confidential">CONFIDENTIAL: contains pupils\u2019 faces and names; '
            "do not share</p><main>",
            self._header(faces, len(withheld)),
            self._section(
                "needs",
                "Needs a person",
                "Faces close to the tolerance, kept or blurred: look at each one.",
                groups["needs"],
            ),
            self._section(
                "pending",
                "Kept by matching, awaiting approval",
                "Published blurred unless approved.",
                groups["pending"],
            ),
            self._section("reviewed", "Reviewed", "", groups["reviewed"]),
            self._overview(carded),
        ]
        if withheld:
            items = "".join(
                f"<li><b>{_e(Path(p.input).name)}</b>: {_e(p.withheld)}</li>" for p in withheld
            )
            parts.append(
                '<section id="withheld"><h2>Withheld photos</h2>'
                f"<p>These cannot be published at all.</p><ul>{items}</ul></section>"
            )
        parts.append("</main></body></html>\n")
        return "\n".join(parts)

    def _header(self, faces: list[tuple[ReviewPhoto, ReviewFace]], n_withheld: int) -> str:
        b = self.batch
        verdicts = [f.verdict for _, f in faces]
        pending = b.awaiting_approval()
        meta = [
            ("Batch", b.batch_id),
            ("Purpose", b.purpose),
            ("Event", b.event),
            ("Created", b.created_at),
            ("Operator", b.operator),
            ("Biometrics", "yes" if b.biometrics else "no (every face starts blurred)"),
            ("Photos", f"{len(b.photos)}" + (f" ({n_withheld} withheld)" if n_withheld else "")),
            ("Faces", len(faces)),
            (
                "Keeps",
                f"{pending} pending, {verdicts.count(Verdict.APPROVED)} approved, "
                f"{verdicts.count(Verdict.REJECTED)} rejected",
            ),
            ("Un-blurred", verdicts.count(Verdict.UNBLURRED)),
        ]
        if b.published_to is not None:
            meta.append(("Published to", b.published_to))
        rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
        bid = _e(b.batch_id)
        if self.token is not None:
            how = (
                "<p>Use the buttons under each face. Verdicts are recorded as "
                f"<b>{_e(self.reviewer or 'the reviewer who started this page')}</b> and "
                "audited; you can change a verdict until the batch is published.</p>"
            )
        elif b.published_to is not None:
            how = "<p>This batch is published; its verdicts can no longer change.</p>"
        else:
            how = "<p>Record verdicts from the command line (each one is audited):</p>"
        commands = (
            f'photoconsent review approve {bid} F0001 F0002 --reviewer "Name"\n'
            f'photoconsent review reject {bid} F0003 --reviewer "Name"\n'
            f'photoconsent review unblur {bid} F0004 --as P001 --reviewer "Name"\n'
            f"photoconsent review publish {bid} --out DIR"
        )
        return (
            f"<header><h1>Review batch {bid}</h1><dl class='meta'>{rows}</dl>{how}"
            f"<pre class='commands'>{commands}</pre>{LEGEND}</header>"
        )

    def _section(
        self, key: str, title: str, note: str, faces: list[tuple[ReviewPhoto, ReviewFace]]
    ) -> str:
        if not faces:
            return f'<section id="{key}"><h2>{title}</h2><p class="none">None.</p></section>'
        cards = "".join(self._card(photo, face) for photo, face in faces)
        note_html = f"<p>{note}</p>" if note else ""
        return (
            f'<section id="{key}"><h2>{title} <span class="n">({len(faces)})</span></h2>'
            f'{note_html}<div class="cards">{cards}</div></section>'
        )

    def _card(self, photo: ReviewPhoto, face: ReviewFace) -> str:
        state = shown(face)
        images = self.images.get(photo.input)
        crop = images.crops.get(face.face_id) if images else None
        fid = _e(face.face_id)
        if crop is not None:
            thumb = f'<img class="crop" src="{crop}" alt="Face {fid}">'
        else:
            thumb = '<div class="crop missing">photo not available</div>'
        who = "Matched pupil" if face.decision is Decision.KEPT else "Nearest pupil"
        lines = [
            f'<h3>{fid} <span class="badge {state.value}">{_state_label(face)}</span></h3>',
            f'<p class="file">{_e(Path(photo.input).name)}</p>',
        ]
        if face.pupil_id is not None:
            lines.append(f"<p>{who}: {self._pupil(face.pupil_id)}</p>")
        if face.distance is not None:
            tol = f" (tolerance {self.batch.options.tolerance:.3f})"
            lines.append(f"<p>Distance {face.distance:.3f}{tol}; lower is closer.</p>")
        machine = f"{_e(face.decision.value)}, {_e(face.reason.value)}"
        lines.append(f'<p class="reason">Machine: {machine}.</p>')
        lines.append(f"<p>{self._verdict(face)}</p>")
        lines.append(self._forms(face))
        return (
            f'<article class="card {state.value}" id="{fid}">{thumb}'
            f'<div class="about">{"".join(lines)}</div></article>'
        )

    def _pupil(self, pupil_id: str) -> str:
        try:
            p = get_pupil(self.store.conn, pupil_id)
        except UnknownPupil:
            return f"<b>{_e(pupil_id)}</b>, <em>not in the registry</em>"
        name = f"{_e(p.first_name)} {_e(p.last_name)}"
        return f"<b>{_e(p.pupil_id)}</b> {name}, class {_e(p.class_name)}"

    def _verdict(self, face: ReviewFace) -> str:
        if face.verdict is None:
            return "Verdict: <b>none yet</b>."
        text = f"Verdict: <b>{_e(face.verdict.value)}</b>"
        if face.verdict is Verdict.UNBLURRED and face.as_pupil is not None:
            text += f" as {self._pupil(face.as_pupil)}"
        return text + f", by {_e(face.reviewer or 'unknown')}."

    def _forms(self, face: ReviewFace) -> str:
        if self.token is None:
            return ""
        forms = []
        if face.decision is Decision.KEPT:
            forms.append(self._form(face, Verdict.APPROVED, "Approve", "approve"))
            forms.append(self._form(face, Verdict.REJECTED, "Reject", "reject"))
        forms.append(self._form(face, Verdict.UNBLURRED, "Un-blur as", "unblur"))
        return f'<div class="forms">{"".join(forms)}</div>'

    def _form(self, face: ReviewFace, verdict: Verdict, label: str, css: str) -> str:
        fields = (("token", self.token), ("face_id", face.face_id), ("verdict", verdict.value))
        hidden = "".join(f'<input type="hidden" name="{k}" value="{_e(v)}">' for k, v in fields)
        button = f'<button type="submit" class="{css}">{label}</button>'
        if verdict is Verdict.UNBLURRED:
            pupil = (
                '<input type="text" name="as_pupil" required size="8" placeholder="P001" '
                f'aria-label="Pupil ID to un-blur {_e(face.face_id)} as" autocomplete="off">'
            )
            return f'<form method="post" action="/verdict">{hidden}{button}{pupil}</form>'
        pupil = '<input type="hidden" name="as_pupil" value="">'
        return f'<form method="post" action="/verdict">{hidden}{pupil}{button}</form>'

    def _overview(self, carded: set[str]) -> str:
        figures = []
        for photo in self.batch.photos:
            if photo.withheld is not None:
                continue
            name = _e(Path(photo.input).name)
            images = self.images[photo.input]
            if images.problem is not None:
                body = f'<p class="warning">Warning: {name} {_e(images.problem)}.</p>'
            else:
                body = f'<img class="overview" src="{images.overview}" alt="{name} as published">'
            rows = "".join(self._face_row(f, carded) for f in photo.faces) or (
                "<li>No faces found.</li>"
            )
            figures.append(
                f'<figure class="photo"><figcaption><b>{name}</b> '
                f'<span class="path">{_e(photo.input)}</span></figcaption>'
                f'{body}<ul class="faces">{rows}</ul></figure>'
            )
        content = "".join(figures) or '<p class="none">No photos.</p>'
        return (
            '<section id="photos"><h2>Photos as they would be published now</h2>'
            f"{content}</section>"
        )

    def _face_row(self, face: ReviewFace, carded: set[str]) -> str:
        fid = _e(face.face_id)
        label = f'<span class="badge {shown(face).value}">{_state_label(face)}</span>'
        if face.face_id in carded:
            return f'<li><a href="#{fid}">{fid}</a> {label}</li>'
        return (
            f'<li id="{fid}">{fid} {label} <span class="reason">{_e(face.reason.value)}</span>'
            f"{self._forms(face)}</li>"
        )


def _state_label(face: ReviewFace) -> str:
    state = shown(face)
    if state is Shown.PENDING:
        return "pending"
    if state is Shown.CLEAR:
        return "un-blurred" if face.verdict is Verdict.UNBLURRED else "approved"
    return "rejected" if face.verdict is Verdict.REJECTED else "blurred"


LEGEND = """<div class="legend"><p><span class="badge clear">approved / un-blurred</span>
published clear, if the pupil's consent still allows the purpose when the batch is published
(consent is checked again then). <span class="badge pending">pending</span> kept by matching
and shown clear here so you can check it, but <b>published blurred until someone approves
it</b>. <span class="badge blurred">blurred</span> blurred in the published photo; crops of
these faces are not shown (open the original photo to identify one).</p>
<p>No reference photos are stored, only face encodings: check each match against the
pupil's name and class. Approve only a child you recognise.</p></div>"""

CSS = """
:root{--clear:#1a7f37;--pending:#c25d00;--blurred:#6e7681;--line:#d0d7de;--ink:#1f2328}
*{box-sizing:border-box}
body{margin:0;color:var(--ink);background:#fff;
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:0 1.5rem 3rem}
.confidential{position:sticky;top:0;z-index:1;margin:0;padding:.45rem 1rem;background:#b42318;
color:#fff;font-weight:700;text-align:center;letter-spacing:.02em}
h1{font-size:1.6rem;margin:1.2rem 0 .6rem}
h2{font-size:1.25rem;margin:2rem 0 .6rem;padding-bottom:.25rem;border-bottom:2px solid var(--line)}
h3{font-size:1.05rem;margin:0 0 .2rem}
.n{color:var(--blurred);font-weight:400}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:0 0 1rem}
dl.meta dt{font-weight:600}dl.meta dd{margin:0}
pre.commands{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:.6rem .8rem;
overflow-x:auto;font-size:.85rem}
.legend{font-size:.92rem;background:#fffbeb;border:1px solid #f5d68a;border-radius:6px;
padding:.2rem .9rem}
.badge{display:inline-block;padding:0 .45rem;border-radius:1rem;color:#fff;font-size:.8rem;
font-weight:600;vertical-align:middle}
.badge.clear{background:var(--clear)}.badge.pending{background:var(--pending)}
.badge.blurred{background:var(--blurred)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:.9rem}
.card{display:flex;gap:.8rem;border:1px solid var(--line);border-left:6px solid var(--blurred);
border-radius:6px;padding:.7rem;break-inside:avoid}
.card.clear{border-left-color:var(--clear)}.card.pending{border-left-color:var(--pending)}
.card p{margin:.1rem 0;font-size:.9rem}
.crop{width:120px;height:auto;align-self:flex-start;border-radius:4px}
.crop.missing{height:120px;background:#f6f8fa;color:var(--blurred);font-size:.8rem;
display:flex;align-items:center;justify-content:center;text-align:center}
.file,.path,.reason{color:#57606a;word-break:break-all}.path{font-size:.8rem;margin-left:.4rem}
.forms{display:flex;flex-wrap:wrap;gap:.35rem;margin-top:.4rem}
form{display:inline-flex;gap:.25rem;margin:0}
button{font:inherit;font-size:.85rem;padding:.15rem .6rem;border-radius:4px;cursor:pointer;
border:1px solid var(--line);background:#f6f8fa}
button.approve{background:var(--clear);border-color:var(--clear);color:#fff}
button.reject{background:#fff;border-color:#b42318;color:#b42318}
input[type=text]{font:inherit;font-size:.85rem;padding:.1rem .3rem;width:6.5rem}
figure.photo{margin:1.2rem 0 2rem;break-inside:avoid}
figure.photo img{display:block;max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{margin-bottom:.3rem}
ul.faces{list-style:none;padding:0;margin:.4rem 0 0;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;
font-size:.9rem}
ul.faces li .forms{display:inline-flex;margin:0 0 0 .4rem}
.warning{background:#fff1f0;border:1px solid #f4a7a0;border-radius:6px;padding:.6rem .8rem;
color:#8a1c12;font-weight:600}
.none{color:var(--blurred)}
:target{outline:3px solid #0969da;outline-offset:2px}
@media print{.confidential{position:static}.forms{display:none}body{font-size:11pt}
main{max-width:none;padding:0}.card,figure.photo{break-inside:avoid}a{color:inherit}}
"""
