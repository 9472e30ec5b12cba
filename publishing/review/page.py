"""What the review pages share: their style, escaping, the verdict forms, the name
picker and the links between the served page's views."""

from __future__ import annotations

import html
from urllib.parse import quote

from consent.registry import list_pupils
from consent.store import Store
from pipeline.matching import Reason
from publishing.review.batch import ReviewFace, Verdict
from publishing.review.images import Shown, shown
from publishing.review.picker import picker_labels

# What the machine said, in the words of the office rather than of matching.
PLAIN_REASONS = {
    Reason.MATCHED_WITH_CONSENT: "recognised as a pupil with consent",
    Reason.NO_MATCH: "not recognised as a pupil",
    Reason.TOO_SMALL: "too small to recognise",
    Reason.TOO_BLURRED: "too blurred to recognise",
    Reason.NOT_ENCODABLE: "could not be recognised",
    Reason.NO_GALLERY: "no pupil with consent for this purpose has a reference photo",
    Reason.AMBIGUOUS: "looks like more than one pupil",
    Reason.SIBLING_AMBIGUOUS: "looks like a pupil and their brother or sister",
    Reason.REFERENCES_DISAGREE: "the pupil's reference photos disagree about it",
    Reason.NO_CONSENT: "recognised as a pupil without consent for this purpose",
    Reason.DUPLICATE: "that pupil is already in this photo",
    Reason.UNCERTAIN: "could be a pupil with consent; not sure enough to keep without you",
    Reason.NO_BIOMETRICS: "no face recognition for this batch: only a reviewer can name it",
}


def plain_reason(reason: Reason) -> str:
    """``reason`` in plain words for the review page."""
    return PLAIN_REASONS.get(reason, reason.value)


def e(value: object) -> str:
    """``value`` as text safe inside HTML, attributes included."""
    return html.escape(str(value), quote=True)


PICKER_ID = "pupil-names"


def verdict_form(
    token: str, face_id: str, verdict: Verdict, label: str, css: str, *, back: str
) -> str:
    """A form POSTing ``verdict`` on one face to the review server; un-blurring carries
    the name picker (a few letters of a name, suggested from the page's `name_datalist`),
    never a typed pupil ID. ``back`` is the view the server returns to."""
    fields = (("token", token), ("face_id", face_id), ("verdict", verdict.value), ("back", back))
    hidden = "".join(f'<input type="hidden" name="{k}" value="{e(v)}">' for k, v in fields)
    button = f'<button type="submit" class="{css}">{label}</button>'
    if verdict is Verdict.UNBLURRED:
        fid = e(face_id)
        picker = (
            f'<label class="picker" for="name-{fid}">{label}</label>'
            f'<input type="text" id="name-{fid}" name="name" required list="{PICKER_ID}" '
            'placeholder="letters of the name" autocomplete="off" size="22">'
        )
        button = f'<button type="submit" class="{css}">Un-blur</button>'
        return f'<form method="post" action="/verdict">{hidden}{picker}{button}</form>'
    return f'<form method="post" action="/verdict">{hidden}{button}</form>'


def name_datalist(store: Store) -> str:
    """The name picker's suggestions: every pupil's label (name and class; see
    `publishing.review.picker`), for the served page only."""
    options = "".join(
        f'<option value="{e(label)}">' for label in picker_labels(list_pupils(store.conn))
    )
    return f'<datalist id="{PICKER_ID}">{options}</datalist>'


def state_label(face: ReviewFace) -> str:
    state = shown(face)
    if state is Shown.PENDING:
        return "pending"
    if state is Shown.CLEAR:
        return "un-blurred" if face.verdict is Verdict.UNBLURRED else "approved"
    return "rejected" if face.verdict is Verdict.REJECTED else "blurred"


def nav(token: str, *, current: str) -> str:
    """Links between the served page's two views, each carrying the page's key."""
    t = quote(token, safe="")
    links = [("pupils", f"/pupils?t={t}", "By pupil"), ("sheet", f"/?t={t}", "All photos")]
    items = "".join(
        f'<a href="{href}" aria-current="page">{label}</a>'
        if key == current
        else f'<a href="{href}">{label}</a>'
        for key, href, label in links
    )
    return f'<nav class="views">{items}</nav>'


CSS = """
:root{--clear:#1a7f37;--pending:#c25d00;--blurred:#6e7681;--line:#d0d7de;--ink:#1f2328}
*{box-sizing:border-box}
/* Words are never broken mid-word (a name cut in two reads as two people): long file
names wrap at their own spaces or scroll inside their box. */
*{word-break:normal;overflow-wrap:normal;hyphens:manual}
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
.file,.path,.reason{color:#57606a}.path{font-size:.8rem}
/* A long file name or path has no spaces to wrap at: it scrolls in its own line. */
.file,.path{display:block;max-width:100%;overflow-x:auto;white-space:nowrap}
.forms{display:flex;flex-wrap:wrap;gap:.35rem;margin-top:.4rem}
form{display:inline-flex;gap:.25rem;margin:0}
button{font:inherit;font-size:.85rem;padding:.15rem .6rem;border-radius:4px;cursor:pointer;
border:1px solid var(--line);background:#f6f8fa}
button.approve{background:var(--clear);border-color:var(--clear);color:#fff}
button.reject{background:#fff;border-color:#b42318;color:#b42318}
input[type=text]{font:inherit;font-size:.85rem;padding:.1rem .3rem;flex:1 1 10rem;
min-width:0;max-width:16rem}
form{flex-wrap:wrap;max-width:100%}.card .about{flex:1;min-width:0}
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
nav.views{display:flex;gap:1rem;margin:1rem 0 0;font-weight:600}
nav.views a[aria-current]{color:var(--ink);text-decoration:none;border-bottom:3px solid var(--ink)}
section.pupil{display:grid;grid-template-columns:220px 1fr;gap:1rem;padding:1rem 0;
border-bottom:1px solid var(--line);break-inside:avoid}
.who h3{margin:.4rem 0 0}.who p{margin:.15rem 0;font-size:.9rem}
.reference{width:200px;height:auto;border-radius:4px;border:3px solid var(--ink)}
.reference.missing{height:120px;background:#f6f8fa;color:var(--blurred);font-size:.8rem;
display:flex;align-items:center;justify-content:center;text-align:center;border-width:1px}
.consent.no{color:#8a1c12}.hint{color:#57606a}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.8rem;
align-content:start}
figure.face{margin:0;border:1px solid var(--line);border-top:6px solid var(--blurred);
border-radius:6px;padding:.4rem;min-width:0}
figure.face.clear{border-top-color:var(--clear)}figure.face.pending{border-top-color:var(--pending)}
figure.face .crop{width:100%}
figure.face figcaption{font-size:.85rem;display:flex;flex-direction:column;gap:.1rem}
figure.face figcaption .badge{align-self:flex-start}
figure.face .file{overflow-x:auto}
.close-up{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}
img.close{max-width:100%;height:auto;border-radius:4px;border:1px solid var(--line)}
.forms.stacked{flex-direction:column;align-items:flex-start}
label.picker{font-size:.85rem;align-self:center}
ul.unproposed{columns:2 20rem;font-size:.9rem}
form.publish{margin:.8rem 0;padding:.6rem .8rem;border:2px solid var(--clear);border-radius:6px}
form.publish{display:block}form.publish p{margin:.3rem 0 0}
.done{font-weight:600}
.clash{color:#8a1c12;font-weight:600}
"""
