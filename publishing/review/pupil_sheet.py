"""The "by pupil" view of a review batch, and the close-up of one face.

Per pupil, a grid of every face the machine proposes as them (crops of the photo with
the head's margin) beside their reference photo, with "Approve all" for the pupil and
"Reject" under each face; faces nobody is proposed for are listed after, each opening in
a close-up where a reviewer can un-blur it through the name picker. The written contact
sheet carries the grids without forms and without reference photos (those are
special-category data, shown only from memory by the served page).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from urllib.parse import quote

from PIL import Image

from consent.registry import pupils_with_consent
from consent.store import Store
from pipeline.boxes import Box
from pipeline.errors import PipelineError
from pipeline.loading import load_image
from pipeline.redaction import head_region
from publishing.review.batch import ReviewBatch, ReviewError, ReviewFace, ReviewPhoto, Verdict
from publishing.review.by_pupil import (
    FaceKind,
    PupilFace,
    PupilGroup,
    ReferenceImage,
    batch_pupils,
    group_by_pupil,
)
from publishing.review.images import ImageCache, PhotoImages, data_uri, shown
from publishing.review.page import (
    CSS,
    e,
    name_datalist,
    nav,
    plain_reason,
    state_label,
    verdict_form,
)

# A close-up is for telling one child from another: larger than a grid's crop.
CLOSE_UP_SIDE = 480
KIND_WORDS = {
    FaceKind.MATCHED: "recognised as this pupil",
    FaceKind.UNCERTAIN: "could be this pupil (not sure enough to keep without you)",
    FaceKind.NAMED: "named as this pupil by a reviewer",
}


def pupil_sections(
    store: Store,
    batch: ReviewBatch,
    images: Mapping[str, PhotoImages],
    *,
    token: str | None,
    reference_image: ReferenceImage | None = None,
    on: date | None = None,
) -> str:
    """One section per pupil (see `group_by_pupil`), as HTML. With ``token`` each has
    its forms; ``reference_image`` gives the reference photo beside the grid (None: the
    written sheet, which never holds one). ``on`` (default today) is the date whose
    consent the grid reports; publishing checks it again on its own day."""
    groups = group_by_pupil(batch, batch_pupils(store, batch))
    if not groups:
        return '<p class="none">No face in this batch is proposed as a pupil.</p>'
    permitted = pupils_with_consent(store.conn, batch.purpose, on or date.today())
    token = token if batch.published_to is None else None
    return "".join(
        _section(g, images, token, reference_image, g.pupil_id in permitted, batch) for g in groups
    )


def _section(
    group: PupilGroup,
    images: Mapping[str, PhotoImages],
    token: str | None,
    reference_image: ReferenceImage | None,
    permitted: bool,
    batch: ReviewBatch,
) -> str:
    pid = e(group.pupil_id)
    name = e(group.name) if group.name else f"{pid} <em>(not in the registry)</em>"
    klass = e(group.pupil.class_name) if group.pupil and group.pupil.class_name else "no class"
    if reference_image is None:
        ref = ""
    else:
        jpeg = reference_image(group.pupil_id)
        if jpeg:
            uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
            ref = f'<img class="reference" src="{uri}" alt="Reference photo of {name}">'
        else:
            ref = '<div class="reference missing">no reference photo stored</div>'
    purpose = e(batch.purpose.value.replace("_", " "))
    consent = (
        f'<p class="consent yes">Consent for {purpose} today: yes.</p>'
        if permitted
        else f'<p class="consent no">Consent for {purpose} today: <b>no</b>: their faces '
        "are blurred whatever you approve.</p>"
    )
    waiting = len(group.awaiting)
    counts = (
        f"{len(group.faces)} face{'s' if len(group.faces) != 1 else ''}: "
        f"{group.count(FaceKind.MATCHED)} recognised, {group.count(FaceKind.UNCERTAIN)} "
        f"uncertain; {waiting} waiting for you."
    )
    form = ""
    if token is not None and waiting:
        fields = (("token", token), ("pupil_id", group.pupil_id), ("back", "pupils"))
        hidden = "".join(f'<input type="hidden" name="{k}" value="{e(v)}">' for k, v in fields)
        form = (
            f'<form method="post" action="/approve-pupil">{hidden}'
            f'<button type="submit" class="approve">Approve all {waiting} waiting</button></form>'
            '<p class="hint">Reject the odd one out first: rejected faces stay rejected.</p>'
        )
    clashes = "".join(
        f'<p class="clash">{e(" and ".join(ids))} are in the same photo: only one can be '
        "this pupil. Reject the other before approving.</p>"
        for ids in group.same_photo()
    )
    cards = "".join(_face_card(f, images, token) for f in group.faces)
    return (
        f'<section class="pupil" id="pupil-{pid}"><div class="who">{ref}'
        f"<h3>{name}</h3><p>Class {klass}</p>{consent}<p>{counts}</p>{clashes}{form}</div>"
        f'<div class="grid">{cards}</div></section>'
    )


def _face_card(pf: PupilFace, images: Mapping[str, PhotoImages], token: str | None) -> str:
    face = pf.face
    fid = e(face.face_id)
    photo_images = images.get(pf.photo.input)
    crop = photo_images.crops.get(face.face_id) if photo_images else None
    img = (
        f'<img class="crop" src="{crop}" alt="Face {fid}">'
        if crop
        else '<div class="crop missing">photo not available</div>'
    )
    if token is not None:
        img = f'<a href="/face?t={quote(token, safe="")}&amp;id={quote(face.face_id)}">{img}</a>'
    state = shown(face)
    verdict = ""
    if face.verdict is not None:
        verdict = f'<p class="by">{e(state_label(face))} by {e(face.reviewer or "unknown")}</p>'
    mark = f'<span class="mark">{e(pf.mark)}</span>' if pf.mark else ""
    forms = ""
    if token is not None and pf.kind is not FaceKind.NAMED:
        if face.verdict is not Verdict.REJECTED:
            forms += verdict_form(
                token, face.face_id, Verdict.REJECTED, "Reject", "reject", back="pupils"
            )
        if face.verdict is not Verdict.APPROVED:
            forms += verdict_form(
                token, face.face_id, Verdict.APPROVED, "Approve", "approve", back="pupils"
            )
    return (
        f'<figure class="face {state.value}" id="{fid}">{img}<figcaption>'
        f'<b>{fid}</b> <span class="badge {state.value}">{e(state_label(face))}</span>'
        f'<span class="file">{e(Path(pf.photo.input).name)}</span>'
        f'<span class="kind">{e(KIND_WORDS[pf.kind])}</span>{mark}{verdict}'
        f'</figcaption><div class="forms">{forms}</div></figure>'
    )


def _unproposed(batch: ReviewBatch, token: str) -> str:
    """Faces nobody is proposed for (blurred): each a link to its close-up."""
    rows = []
    for photo in batch.photos:
        if photo.withheld is not None:
            continue
        for face in photo.faces:
            if face.shown_as is not None:
                continue
            href = f"/face?t={quote(token, safe='')}&amp;id={quote(face.face_id)}"
            rows.append(
                f'<li id="{e(face.face_id)}"><a href="{href}">{e(face.face_id)}</a> in '
                f'<span class="file">{e(Path(photo.input).name)}</span>: '
                f'<span class="reason">{e(plain_reason(face.reason))}</span></li>'
            )
    if not rows:
        return ""
    return (
        '<section id="unproposed"><h2>Blurred faces nobody is proposed for '
        f'<span class="n">({len(rows)})</span></h2><p>Open one to see it close up; if you '
        "know the child, un-blur it by their name.</p>"
        f'<ul class="unproposed">{"".join(rows)}</ul></section>'
    )


def render_by_pupil(
    store: Store,
    batch: ReviewBatch,
    *,
    token: str,
    reviewer: str,
    images: ImageCache,
    reference_image: ReferenceImage | None,
    can_publish: bool,
    on: date | None = None,
) -> str:
    """The served page's "by pupil" view: every pupil's grid with its forms, the faces
    nobody is proposed for, and (``can_publish``) the button that publishes the batch."""
    photo_images = {
        p.input: images.get(p, batch.options.style) for p in batch.photos if p.withheld is None
    }
    sections = pupil_sections(
        store, batch, photo_images, token=token, reference_image=reference_image, on=on
    )
    waiting = batch.awaiting_approval()
    if batch.published_to is not None:
        action = (
            f'<p class="done">This batch is published to {e(batch.published_to)}; its '
            "verdicts can no longer change.</p>"
        )
    elif can_publish:
        hidden = f'<input type="hidden" name="token" value="{e(token)}">'
        note = (
            f" {waiting} face{'s are' if waiting != 1 else ' is'} still waiting: "
            "they are published blurred."
            if waiting
            else ""
        )
        action = (
            f'<form method="post" action="/publish" class="publish">{hidden}'
            '<button type="submit" class="approve">Publish the batch</button>'
            f"<p>Only approved and un-blurred faces stay clear, and only of pupils whose "
            f"consent allows it today.{e(note)}</p></form>"
        )
    else:
        action = (
            "<p>To publish from this page, start it with <code>--out FOLDER</code>; or run "
            f"<code>photoconsent review publish {e(batch.batch_id)} --out FOLDER</code>.</p>"
        )
    body = [
        _head(f"Review {batch.batch_id} by pupil"),
        nav(token, current="pupils"),
        f"<header><h1>Review by pupil: {e(batch.event)}</h1>",
        f"<p>Batch {e(batch.batch_id)}, for {e(batch.purpose.value.replace('_', ' '))}. "
        f"Verdicts are recorded as <b>{e(reviewer)}</b> and audited. "
        f"{waiting} face{'s' if waiting != 1 else ''} waiting for a verdict.</p>",
        f"{action}</header>",
        f'<section id="pupils"><h2>Pupils</h2>{sections}</section>',
        _unproposed(batch, token) if batch.published_to is None else "",
        "</main></body></html>\n",
    ]
    return "\n".join(body)


def render_close_up(
    store: Store, batch: ReviewBatch, face_id: str, *, token: str, on: date | None = None
) -> str:
    """One face, large, with what the machine said and the forms that apply to it: the
    name picker (un-blur as a named pupil) always, approve/reject for a proposed face."""
    photo, face = _find(batch, face_id)
    picture = _close_up_image(photo, face)
    proposed = face.proposed_pupil
    facts = [f"<p>In <b>{e(Path(photo.input).name)}</b>.</p>"]
    facts.append(f"<p>The machine: {e(plain_reason(face.reason))}.</p>")
    if proposed is not None:
        pupils = batch_pupils(store, batch)
        who = pupils.get(proposed)
        label = f"{who.known_first_name} {who.known_last_name}" if who else proposed
        facts.append(f"<p>Proposed as <b>{e(label)}</b>.</p>")
    if face.verdict is not None:
        facts.append(f"<p>Verdict: <b>{e(state_label(face))}</b> by {e(face.reviewer or '')}.</p>")
    forms = ""
    if batch.published_to is None:
        if face.approvable:
            forms += verdict_form(
                token, face.face_id, Verdict.APPROVED, "Approve", "approve", back="pupils"
            )
            forms += verdict_form(
                token, face.face_id, Verdict.REJECTED, "Reject", "reject", back="pupils"
            )
        forms += verdict_form(
            token, face.face_id, Verdict.UNBLURRED, "Un-blur as", "unblur", back="pupils"
        )
        forms += name_datalist(store)
    back = f"/pupils?t={quote(token, safe='')}#{quote(face.face_id)}"
    return "\n".join(
        [
            _head(f"Face {face_id}"),
            nav(token, current="face"),
            f"<h1>Face {e(face.face_id)}</h1>",
            f'<div class="close-up">{picture}<div class="about">{"".join(facts)}',
            f'<div class="forms stacked">{forms}</div>',
            f'<p><a href="{back}">Back to the pupils</a></p></div></div>',
            "</main></body></html>\n",
        ]
    )


def _find(batch: ReviewBatch, face_id: str) -> tuple[ReviewPhoto, ReviewFace]:
    for photo, face in batch.faces():
        if face.face_id == face_id and photo.withheld is None:
            return photo, face
    raise ReviewError(f"No face {face_id!r} in review batch {batch.batch_id}.")


def _close_up_image(photo: ReviewPhoto, face: ReviewFace) -> str:
    try:
        loaded = load_image(Path(photo.input))
    except PipelineError as exc:
        return f'<p class="warning">The photo cannot be read now ({e(exc)}).</p>'
    if loaded.sha256 != photo.sha256:
        return '<p class="warning">The photo changed since it was analysed.</p>'
    h, w = loaded.pixels.shape[:2]
    rows, cols = head_region(Box(*face.box)).pixel_slices(w, h)
    crop = Image.fromarray(loaded.pixels[rows, cols])
    scale = CLOSE_UP_SIDE / max(crop.size)
    if scale < 1:
        crop.thumbnail((CLOSE_UP_SIDE, CLOSE_UP_SIDE), Image.Resampling.LANCZOS)
    else:  # a small face shown larger, so that a reviewer can actually look at it
        size = (round(crop.width * scale), round(crop.height * scale))
        crop = crop.resize(size, Image.Resampling.LANCZOS)
    return f'<img class="close" src="{data_uri(crop)}" alt="Face {e(face.face_id)} close up">'


def _head(title: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{e(title)}: CONFIDENTIAL</title><style>{CSS}</style></head><body>"
        '<p class="confidential">CONFIDENTIAL: contains pupils\u2019 faces and names; '
        "do not share</p><main>"
    )
