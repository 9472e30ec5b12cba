"""Render a `Board` as one self-contained HTML page (photos as ``data:`` URIs).

No external request of any kind: no fonts, scripts or images from elsewhere, and a
Content-Security-Policy that forbids them, so opening the page on a staff laptop tells no
server which children have which conditions. Print CSS gives A4 pages in the board's
orientation, the CONFIDENTIAL line on every printed page and cards that never split.
Every value is HTML-escaped.
"""

from __future__ import annotations

import base64
from html import escape

from board.model import CONFIDENTIAL, Board, Card, Orientation
from board.pdf import STYLES
from consent.medical.records import Condition, Severity

_CSS = """
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; margin: 0; color: #000;
       background: #fff; }
.confidential { background: #000; color: #fff; font-weight: bold; text-align: center;
                padding: 6px; font-size: 15px; }
.meta { display: flex; justify-content: space-between; font-size: 15px; margin: 8px 0 12px; }
.meta .room { font-weight: bold; font-size: 18px; }
main { padding: 0 12px; }
.cards { display: grid; grid-template-columns: repeat(var(--cols), 1fr); gap: 12px;
         align-items: start; }
.card { border: solid #000; padding: 8px; break-inside: avoid; page-break-inside: avoid;
        overflow-wrap: anywhere; }
.card.life-threatening { border-width: 6px; }
.card.serious { border-width: 4px; }
.card.moderate { border-width: 2.5px; border-style: dashed; }
.card.low { border-width: 1px; }
.top { display: flex; gap: 10px; }
.photo { width: 120px; height: 152px; flex: none; border: 1px solid #000; object-fit: cover;
         display: flex; align-items: center; justify-content: center; text-align: center;
         background: #e1e1e1; font-weight: bold; }
.name { font-size: 22px; font-weight: bold; margin: 0; }
.class { font-size: 16px; margin: 2px 0 6px; }
.badge { display: inline-block; font-weight: bold; border: 1px solid #000; padding: 1px 6px;
         font-size: 14px; }
.photo-note { font-size: 12px; margin-top: 4px; }
.photo-note.stale { font-weight: bold; }
.condition { margin-top: 8px; }
.condition h3 { font-size: 17px; margin: 0 0 3px; }
.condition dl { display: grid; grid-template-columns: 7.5em 1fr; margin: 0; font-size: 16px; }
.condition dt { font-weight: bold; }
.condition dd { margin: 0 0 3px; }
.emergency { border-top: 1px solid #000; margin-top: 8px; padding-top: 4px;
             font-weight: bold; font-size: 15px; }
footer { font-size: 12px; margin: 12px; }
@media print {
  @page { size: A4 %(orientation)s; margin: 12mm 10mm; }
  body { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .confidential.top-line { position: fixed; top: 0; left: 0; right: 0; }
  .confidential.bottom-line { position: fixed; bottom: 0; left: 0; right: 0; }
  main { padding: 40px 0; }
}
"""


def _severity_css() -> str:
    rules = []
    for severity, style in STYLES.items():
        fill = "#{:02x}{:02x}{:02x}".format(*style.fill)
        text = "#{:02x}{:02x}{:02x}".format(*style.text)
        rules.append(f".badge.{severity.label} {{ background: {fill}; color: {text}; }}")
    return "\n".join(rules)


def _badge(severity: Severity) -> str:
    return f'<span class="badge {severity.label}">{escape(STYLES[severity].label)}</span>'


def _condition(c: Condition) -> str:
    rows = [f"<dt>What to do:</dt><dd>{escape(c.action)}</dd>"]
    if c.medication:
        rows.append(f"<dt>Medicine:</dt><dd>{escape(c.medication)}</dd>")
    return (
        f'<div class="condition"><h3>{_badge(c.severity)} {escape(c.name)}</h3>'
        f"<dl>{''.join(rows)}</dl></div>"
    )


def _card(card: Card, emergency: str) -> str:
    if card.photo_jpeg is not None:
        data = base64.b64encode(card.photo_jpeg).decode("ascii")
        alt = escape(f"Photo of {card.full_name}")
        photo = f'<img class="photo" alt="{alt}" src="data:image/jpeg;base64,{data}">'
    else:
        photo = '<div class="photo">NO PHOTO<br>ask the office</div>'
    note = ""
    if card.photo_taken is not None:
        stale = " - OUT OF DATE, re-take" if card.photo_stale else ""
        cls = "photo-note stale" if card.photo_stale else "photo-note"
        note = f'<div class="{cls}">Photo {card.photo_taken.strftime("%b %Y")}{stale}</div>'
    conditions = "".join(_condition(c) for c in card.conditions)
    return (
        f'<section class="card {card.worst.label}">'
        f'<div class="top">{photo}<div><p class="name">{escape(card.full_name)}</p>'
        f'<p class="class">Class {escape(card.class_name)}</p>{_badge(card.worst)}{note}'
        f"</div></div>{conditions}"
        f'<div class="emergency">{escape(emergency)}</div></section>'
    )


def render_html(board: Board) -> bytes:
    """The board as UTF-8 HTML bytes."""
    landscape = board.orientation is Orientation.LANDSCAPE
    css = _CSS % {"orientation": "landscape" if landscape else "portrait"}
    cards = "\n".join(_card(c, board.emergency_line) for c in board.cards)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<title>Medical board - CONFIDENTIAL</title>
<style>{css}
{_severity_css()}
</style>
</head>
<body style="--cols: 2">
<div class="confidential top-line">{escape(CONFIDENTIAL)}</div>
<main>
<div class="meta"><span class="room">Medical board: {escape(board.filter.describe())}</span>
<span>Generated {board.generated_on.isoformat()} by {escape(board.operator)} &nbsp;
<strong>REPLACE BY {board.replace_by.isoformat()}</strong></span></div>
<div class="cards">
{cards}
</div>
</main>
<footer>{len(board.cards)} pupil(s). Replace by {board.replace_by.isoformat()}.</footer>
<div class="confidential bottom-line">{escape(CONFIDENTIAL)}</div>
</body>
</html>
"""
    return page.encode("utf-8")
