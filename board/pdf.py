"""Render a `Board` as an A4 PDF (portrait or landscape, 2 cards across) with fpdf2.

Text is set in DejaVu Sans, bundled in ``board/fonts`` (Bitstream Vera licence, see
LICENSE.txt there) so every pupil's name renders on any machine; fpdf2 embeds only the
glyphs used. Every page carries the CONFIDENTIAL line at the top and bottom, the room,
the generation date and the "replace by" date.

Cards are measured before they are drawn, so nothing overflows or is cut: a card grows to
fit its text; a card too tall for its column is set full width, then in slightly smaller
type; if it still does not fit a page, `BoardError` names the pupil (fail closed rather
than print a partial action plan).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF

from board.model import CONFIDENTIAL, Board, BoardError, Card, Orientation
from consent.medical.records import Condition, Severity

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVu"
MARGIN = 10.0  # mm
GAP = 5.0  # mm between cards
BODY_TOP = 27.0  # mm: below the header band and the board line
FOOTER_H = 12.0  # mm
PAD = 3.0  # mm inside a card


@dataclass(frozen=True)
class SeverityStyle:
    """How a severity prints: a label with a count of "!" and a fill that also reads in
    grey (dark / mid / light / white), plus a card border weight, so colour is never the
    only signal."""

    label: str
    fill: tuple[int, int, int]
    text: tuple[int, int, int]
    border_mm: float


STYLES: dict[Severity, SeverityStyle] = {
    Severity.LIFE_THREATENING: SeverityStyle(
        "!!! LIFE-THREATENING", (176, 0, 0), (255, 255, 255), 1.4
    ),
    Severity.SERIOUS: SeverityStyle("!! SERIOUS", (232, 118, 0), (0, 0, 0), 1.0),
    Severity.MODERATE: SeverityStyle("! MODERATE", (255, 214, 0), (0, 0, 0), 0.6),
    Severity.LOW: SeverityStyle("LOW", (255, 255, 255), (0, 0, 0), 0.3),
}


class _BoardPDF(FPDF):
    def __init__(self, board: Board) -> None:
        super().__init__(
            orientation="L" if board.orientation is Orientation.LANDSCAPE else "P",
            unit="mm",
            format="A4",
        )
        self.board = board
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(False)
        self.set_margins(MARGIN, MARGIN, MARGIN)
        # Metadata names no pupil: the file may be e-mailed or left on a shared drive.
        self.set_title("Medical board - CONFIDENTIAL")
        self.set_creator("photoconsent")
        self.set_author("")

    def header(self) -> None:
        b = self.board
        self.set_fill_color(0, 0, 0)
        self.rect(MARGIN, 7, self.w - 2 * MARGIN, 9, style="F")
        self.set_text_color(255, 255, 255)
        self.set_font(FONT, "B", 11)
        self.set_xy(MARGIN, 7)
        self.cell(self.w - 2 * MARGIN, 9, CONFIDENTIAL, align="C")
        self.set_text_color(0, 0, 0)
        self.set_font(FONT, "B", 12)
        self.set_xy(MARGIN, 17.5)
        self.cell(0, 7, f"Medical board: {b.filter.describe()}")
        self.set_font(FONT, "", 10)
        right = (
            f"Generated {b.generated_on.isoformat()} by {b.operator}   "
            f"REPLACE BY {b.replace_by.isoformat()}"
        )
        self.set_xy(MARGIN, 17.5)
        self.cell(self.w - 2 * MARGIN, 7, right, align="R")

    def footer(self) -> None:
        self.set_draw_color(0, 0, 0)
        self.set_line_width(0.3)
        y = self.h - FOOTER_H + 2
        self.line(MARGIN, y, self.w - MARGIN, y)
        self.set_font(FONT, "B", 8.5)
        self.set_xy(MARGIN, y + 1)
        self.cell(0, 5, CONFIDENTIAL)
        self.set_font(FONT, "", 8.5)
        self.set_xy(MARGIN, y + 1)
        text = f"Replace by {self.board.replace_by.isoformat()}   Page {self.page_no()} of {{nb}}"
        self.cell(self.w - 2 * MARGIN, 5, text, align="R")


class _CardPainter:
    """Lays out one card; with ``draw`` False it only measures (same code path, so the
    measured height is exactly the drawn one)."""

    def __init__(self, pdf: _BoardPDF, scale: float, emergency: str) -> None:
        self.pdf, self.s, self.emergency = pdf, scale, emergency

    def _text(
        self, x: float, y: float, w: float, size: float, text: str, *, bold: bool, draw: bool
    ) -> float:
        """Wrap ``text`` in width ``w``; return the y below it."""
        pdf = self.pdf
        pdf.set_font(FONT, "B" if bold else "", size * self.s)
        lh = size * self.s * 0.45  # mm per line: 1.27 x the point size
        lines = pdf.multi_cell(w, lh, text, dry_run=True, output="LINES", align="L")
        if draw:
            pdf.set_xy(x, y)
            pdf.multi_cell(w, lh, text, align="L", new_x="LEFT", new_y="NEXT")
        return y + len(lines) * lh

    def _badge(self, x: float, y: float, severity: Severity, size: float, draw: bool) -> float:
        """A filled label box; return its width."""
        style = STYLES[severity]
        pdf = self.pdf
        pdf.set_font(FONT, "B", size * self.s)
        h = size * self.s * 0.5
        w = pdf.get_string_width(style.label) + 3 * self.s
        if draw:
            pdf.set_fill_color(*style.fill)
            pdf.set_draw_color(0, 0, 0)
            pdf.set_line_width(0.35)
            pdf.rect(x, y, w, h, style="DF")
            pdf.set_text_color(*style.text)
            pdf.set_xy(x, y)
            pdf.cell(w, h, style.label, align="C")
            pdf.set_text_color(0, 0, 0)
        return w

    def card(self, card: Card, x: float, y: float, w: float, h: float | None) -> float:
        """Draw (``h`` given: the slot height) or measure (``h`` None); return the height."""
        draw = h is not None
        pdf, s = self.pdf, self.s
        pw, ph = 30.0 * s, 38.0 * s
        inner_x, inner_w = x + PAD, w - 2 * PAD
        if draw:
            self._frame(card, x, y, w, h)  # type: ignore[arg-type]
            self._photo(card, inner_x, y + PAD, pw, ph)
        rx, rw = inner_x + pw + 3, inner_w - pw - 3
        ry = self._text(rx, y + PAD, rw, 15, card.full_name, bold=True, draw=draw)
        ry = self._text(rx, ry + 0.5, rw, 11, f"Class {card.class_name}", bold=False, draw=draw)
        ry += 1.5
        self._badge(rx, ry, card.worst, 11, draw)
        ry += 11 * s * 0.5 + 1.5
        if card.photo_taken is not None:
            note = f"Photo {card.photo_taken.strftime('%b %Y')}"
            if card.photo_stale:
                note += " - OUT OF DATE, re-take"
            ry = self._text(rx, ry, rw, 8.5, note, bold=card.photo_stale, draw=draw)
        cy = max(y + PAD + ph, ry) + 2.5
        for condition in card.conditions:
            cy = self._condition(condition, inner_x, cy, inner_w, draw) + 2.0
        if draw:
            pdf.set_draw_color(0, 0, 0)
            pdf.set_line_width(0.3)
            pdf.line(inner_x, cy, inner_x + inner_w, cy)
        cy = self._text(inner_x, cy + 1, inner_w, 10.5, self.emergency, bold=True, draw=draw)
        return cy + PAD - y

    def _condition(self, condition: Condition, x: float, y: float, w: float, draw: bool) -> float:
        bw = self._badge(x, y, condition.severity, 9.5, draw)
        name_bottom = self._text(
            x + bw + 2, y - 0.3, w - bw - 2, 12.5, condition.name, bold=True, draw=draw
        )
        y = max(name_bottom, y + 9.5 * self.s * 0.5) + 0.8
        rows = [("What to do:", condition.action)]
        if condition.medication:
            rows.append(("Medicine:", condition.medication))
        self.pdf.set_font(FONT, "B", 10 * self.s)
        label_w = max(self.pdf.get_string_width(label) for label, _ in rows) + 2.5
        for label, text in rows:
            label_bottom = self._text(x, y, label_w, 10, label, bold=True, draw=draw)
            text_bottom = self._text(x + label_w, y, w - label_w, 11.5, text, bold=False, draw=draw)
            y = max(label_bottom, text_bottom) + 0.6
        return y

    def _frame(self, card: Card, x: float, y: float, w: float, h: float) -> None:
        pdf = self.pdf
        style = STYLES[card.worst]
        pdf.set_draw_color(0, 0, 0)
        pdf.set_line_width(style.border_mm)
        half = style.border_mm / 2
        pdf.rect(x + half, y + half, w - style.border_mm, h - style.border_mm)

    def _photo(self, card: Card, x: float, y: float, w: float, h: float) -> None:
        pdf = self.pdf
        if card.photo_jpeg is not None:
            pdf.image(io.BytesIO(card.photo_jpeg), x, y, w, h, keep_aspect_ratio=True)
        else:
            pdf.set_fill_color(225, 225, 225)
            pdf.rect(x, y, w, h, style="F")
            pdf.set_font(FONT, "B", 10 * self.s)
            pdf.set_xy(x, y + h / 2 - 6)
            pdf.multi_cell(w, 4.5 * self.s, "NO PHOTO\nask the office", align="C")
        pdf.set_draw_color(0, 0, 0)
        pdf.set_line_width(0.3)
        pdf.rect(x, y, w, h)


def _columns(board: Board) -> int:
    """Two cards across either way: three on a landscape page leave a 60 mm text column,
    which makes cards too tall to read at a glance."""
    return 2


def render_pdf(board: Board) -> bytes:
    """The board as PDF bytes; raises `BoardError` if a card cannot fit on a page."""
    pdf = _BoardPDF(board)
    pdf.add_page()  # fpdf2 measures text only with a page open
    cols = _columns(board)
    full_w = pdf.w - 2 * MARGIN
    col_w = (full_w - GAP * (cols - 1)) / cols
    body_h = pdf.h - FOOTER_H - BODY_TOP
    # (card, width, scale, height, full_width)
    placed: list[tuple[Card, float, float, float, bool]] = []
    for card in board.cards:
        for width, scale, wide in ((col_w, 1.0, False), (full_w, 1.0, True), (full_w, 0.85, True)):
            height = _CardPainter(pdf, scale, board.emergency_line).card(card, 0, 0, width, None)
            if height <= body_h:
                placed.append((card, width, scale, height, wide))
                break
        else:
            raise BoardError(
                f"{card.pupil_id}'s card does not fit on one A4 page even in smaller type: "
                "shorten its action or medication text (`photoconsent medical show "
                f"{card.pupil_id}`), or split the conditions into fewer words."
            )
    # Newspaper order: down the first column, then the next; a full-width card starts
    # below every column. Cards keep their measured height, so nothing is stretched or cut.
    bottom = pdf.h - FOOTER_H
    tops = [BODY_TOP] * cols
    col = 0
    for card, width, scale, height, wide in placed:
        painter = _CardPainter(pdf, scale, board.emergency_line)
        if wide:
            y = max(tops)
            if y + height > bottom + 0.01:
                pdf.add_page()
                y = BODY_TOP
            painter.card(card, MARGIN, y, width, height)
            tops = [y + height + GAP] * cols
            col = 0
            continue
        while tops[col] + height > bottom + 0.01:
            col += 1
            if col == cols:
                pdf.add_page()
                tops, col = [BODY_TOP] * cols, 0
        x = MARGIN + col * (col_w + GAP)
        painter.card(card, x, tops[col], width, height)
        tops[col] += height + GAP
    return bytes(pdf.output())
