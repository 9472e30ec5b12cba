"""The contact sheet of a review batch: one self-contained HTML page for the reviewer.

It shows every photo as it would be published under the current verdicts, a clear crop
of every face a person has to look at (kept by matching, uncertain, near the tolerance,
or un-blurred by a reviewer) beside the pupil's name and class, and the same faces by
pupil (`publishing.review.pupil_sheet`). Reference photos are special-category data kept
encrypted, so the written sheet never holds them; only the served review page shows
them, from memory.

The page shows children's faces and names: `write_contact_sheet` puts it in the protected
data directory (0600), never in an output folder. It needs no network and no JavaScript:
images are inline JPEG data URIs, and every text that came from a file is escaped.
"""

from __future__ import annotations

import os
from pathlib import Path

from consent.errors import UnknownPupil
from consent.registry import get_pupil
from consent.store import Store
from pipeline.matching import Decision, Reason
from publishing.review.batch import ReviewBatch, ReviewFace, ReviewPhoto, Verdict, review_dir
from publishing.review.images import (  # re-exported: the sheet's users render with them
    ImageCache,
    PhotoImages,
    Shown,
    needs_crop,
    render_photo,
    shown,
)
from publishing.review.page import CSS, e, name_datalist, nav, state_label, verdict_form
from publishing.review.pupil_sheet import pupil_sections

__all__ = [
    "ImageCache",
    "PhotoImages",
    "Shown",
    "needs_crop",
    "render_contact_sheet",
    "render_photo",
    "shown",
    "write_contact_sheet",
]


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
            elif face.approvable:
                groups["pending"].append((photo, face))
        carded = {f.face_id for g in groups.values() for _, f in g}
        withheld = [p for p in b.photos if p.withheld is not None]
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="robots" content="noindex">',
            f"<title>Review {e(b.batch_id)}: CONFIDENTIAL</title>",
            f"<style>{CSS}</style></head><body>",
            '<p class="confidential">CONFIDENTIAL: contains pupils\u2019 faces and names; '
            "do not share</p><main>",
            self._nav(),
            self._header(faces, len(withheld)),
            self._by_pupil(),
            self._section(
                "needs",
                "Needs a person",
                "Faces close to the tolerance, kept or blurred: look at each one.",
                groups["needs"],
            ),
            self._section(
                "pending",
                "Kept by matching or uncertain, awaiting approval",
                "Published blurred unless approved.",
                groups["pending"],
            ),
            self._section("reviewed", "Reviewed", "", groups["reviewed"]),
            self._overview(carded),
        ]
        if withheld:
            items = "".join(
                f"<li><b>{e(Path(p.input).name)}</b>: {e(p.withheld)}</li>" for p in withheld
            )
            parts.append(
                '<section id="withheld"><h2>Withheld photos</h2>'
                f"<p>These cannot be published at all.</p><ul>{items}</ul></section>"
            )
        if self.token is not None:
            parts.append(name_datalist(self.store))
        parts.append("</main></body></html>\n")
        return "\n".join(parts)

    def _nav(self) -> str:
        if self.token is None:
            return ""
        return nav(self.token, current="sheet")

    def _by_pupil(self) -> str:
        body = pupil_sections(self.store, self.batch, self.images, token=None)
        return (
            '<section id="by-pupil"><h2>By pupil</h2><p>Each pupil\u2019s faces in this batch '
            "(kept by matching as them, or uncertain with them as the candidate). Reference "
            "photos are shown only on the served review page "
            "(<code>photoconsent review serve</code>).</p>"
            f"{body}</section>"
        )

    def _header(self, faces: list[tuple[ReviewPhoto, ReviewFace]], n_withheld: int) -> str:
        b = self.batch
        verdicts = [f.verdict for _, f in faces]
        pending = b.awaiting_approval()
        meta = [
            ("Batch", b.batch_id),
            ("Purpose", b.purpose.value),
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
        rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in meta)
        bid = e(b.batch_id)
        if self.token is not None:
            how = (
                "<p>Use the buttons under each face. Verdicts are recorded as "
                f"<b>{e(self.reviewer or 'the reviewer who started this page')}</b> and "
                "audited; you can change a verdict until the batch is published.</p>"
            )
        elif b.published_to is not None:
            how = "<p>This batch is published; its verdicts can no longer change.</p>"
        else:
            how = "<p>Record verdicts from the command line (each one is audited):</p>"
        commands = (
            f'photoconsent review approve {bid} F0001 F0002 --reviewer "Name"\n'
            f'photoconsent review reject {bid} F0003 --reviewer "Name"\n'
            f'photoconsent review unblur {bid} F0004 --name "first letters" --reviewer "Name"\n'
            f"photoconsent review pupils {bid}\n"
            f'photoconsent review approve-pupil {bid} --name "first letters" --reviewer "Name"\n'
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
        fid = e(face.face_id)
        if crop is not None:
            thumb = f'<img class="crop" src="{crop}" alt="Face {fid}">'
        else:
            thumb = '<div class="crop missing">photo not available</div>'
        who = "Matched pupil" if face.decision is Decision.KEPT else "Nearest pupil"
        if face.reason is Reason.UNCERTAIN and face.candidate_id is not None:
            lines_pupil = face.candidate_id
            who = "Could be"
        else:
            lines_pupil = face.pupil_id
        lines = [
            f'<h3>{fid} <span class="badge {state.value}">{state_label(face)}</span></h3>',
            f'<p class="file">{e(Path(photo.input).name)}</p>',
        ]
        if lines_pupil is not None:
            lines.append(f"<p>{who}: {self._pupil(lines_pupil)}</p>")
        if face.distance is not None:
            tol = f" (tolerance {self.batch.options.tolerance:.3f})"
            lines.append(f"<p>Distance {face.distance:.3f}{tol}; lower is closer.</p>")
        machine = f"{e(face.decision.value)}, {e(face.reason.value)}"
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
            return f"<b>{e(pupil_id)}</b>, <em>not in the registry</em>"
        name = f"{e(p.first_name)} {e(p.last_name)}"
        return f"<b>{e(p.pupil_id)}</b> {name}, class {e(p.class_name)}"

    def _verdict(self, face: ReviewFace) -> str:
        if face.verdict is None:
            return "Verdict: <b>none yet</b>."
        text = f"Verdict: <b>{e(face.verdict.value)}</b>"
        if face.verdict is Verdict.UNBLURRED and face.as_pupil is not None:
            text += f" as {self._pupil(face.as_pupil)}"
        return text + f", by {e(face.reviewer or 'unknown')}."

    def _forms(self, face: ReviewFace) -> str:
        if self.token is None:
            return ""
        forms = []
        if face.approvable:
            forms.append(self._form(face, Verdict.APPROVED, "Approve", "approve"))
            forms.append(self._form(face, Verdict.REJECTED, "Reject", "reject"))
        forms.append(self._form(face, Verdict.UNBLURRED, "Un-blur as", "unblur"))
        return f'<div class="forms">{"".join(forms)}</div>'

    def _form(self, face: ReviewFace, verdict: Verdict, label: str, css: str) -> str:
        return verdict_form(self.token or "", face.face_id, verdict, label, css, back="sheet")

    def _overview(self, carded: set[str]) -> str:
        figures = []
        for photo in self.batch.photos:
            if photo.withheld is not None:
                continue
            name = e(Path(photo.input).name)
            images = self.images[photo.input]
            if images.problem is not None:
                body = f'<p class="warning">Warning: {name} {e(images.problem)}.</p>'
            else:
                body = f'<img class="overview" src="{images.overview}" alt="{name} as published">'
            rows = "".join(self._face_row(f, carded) for f in photo.faces) or (
                "<li>No faces found.</li>"
            )
            figures.append(
                f'<figure class="photo"><figcaption><b>{name}</b> '
                f'<span class="path">{e(photo.input)}</span></figcaption>'
                f'{body}<ul class="faces">{rows}</ul></figure>'
            )
        content = "".join(figures) or '<p class="none">No photos.</p>'
        return (
            '<section id="photos"><h2>Photos as they would be published now</h2>'
            f"{content}</section>"
        )

    def _face_row(self, face: ReviewFace, carded: set[str]) -> str:
        fid = e(face.face_id)
        label = f'<span class="badge {shown(face).value}">{state_label(face)}</span>'
        if face.face_id in carded:
            return f'<li><a href="#{fid}">{fid}</a> {label}</li>'
        return (
            f'<li id="{fid}">{fid} {label} <span class="reason">{e(face.reason.value)}</span>'
            f"{self._forms(face)}</li>"
        )


LEGEND = """<div class="legend"><p><span class="badge clear">approved / un-blurred</span>
published clear, if the pupil's consent still allows the purpose when the batch is published
(consent is checked again then). <span class="badge pending">pending</span> kept by matching,
or uncertain (plausibly a pupil with consent), and shown clear here so you can check it, but
<b>published blurred until someone approves it</b>. <span class="badge blurred">blurred</span>
blurred in the published photo; crops of these faces are not shown here (on the served page
they open in a close-up).</p>
<p>Check each match against the pupil's name and class (and, on the served page's
"By pupil" view, their reference photo). Approve only a child you recognise.</p></div>"""
