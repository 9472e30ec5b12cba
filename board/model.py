"""What a medical board is: its filter, cards, orientation and options (plain data).

Shared by selection (who is on it), the PDF and HTML renderers and the status check, so none
of them imports another.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from consent.errors import MedicalError
from consent.medical.records import Condition, Room, Severity

CONFIDENTIAL = "CONFIDENTIAL: staff only, do not display where pupils or visitors can see"


class Orientation(enum.Enum):
    """A4 page orientation of the PDF (and of the HTML page when printed)."""

    PORTRAIT = "portrait"
    LANDSCAPE = "landscape"


class BoardError(MedicalError):
    """A board cannot be made as asked (the message says why and how to fix it)."""


@dataclass(frozen=True)
class BoardFilter:
    """Which pupils a board is for: a room, optionally some classes and a condition
    (a case-insensitive part of a condition's name, e.g. ``peanut``)."""

    room: Room
    classes: frozenset[str] = frozenset()
    condition: str | None = None

    def describe(self) -> str:
        parts = [self.room.title]
        if self.classes:
            parts.append("class " + ", ".join(sorted(self.classes)))
        if self.condition:
            parts.append(f"condition: {self.condition}")
        return " · ".join(parts)


@dataclass(frozen=True)
class Card:
    """One pupil's card. ``conditions`` are the current ones, worst first."""

    pupil_id: str
    full_name: str
    class_name: str
    conditions: tuple[Condition, ...]
    photo_jpeg: bytes | None = None
    photo_taken: date | None = None
    photo_stale: bool = False
    record_revision: str = ""
    photo_revision: str | None = None
    person_digest: str = ""

    @property
    def worst(self) -> Severity:
        return self.conditions[0].severity


@dataclass(frozen=True)
class Board:
    """Everything printed on one board."""

    filter: BoardFilter
    cards: tuple[Card, ...]
    generated_on: date
    replace_by: date
    operator: str
    emergency_line: str
    orientation: Orientation = Orientation.PORTRAIT
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class BoardOptions:
    """What to make: the filter, the page orientation, and where to write (PDF and/or HTML)."""

    filter: BoardFilter
    operator: str
    orientation: Orientation = Orientation.PORTRAIT
    pdf: Path | None = None
    html: Path | None = None
    on: date = field(default_factory=date.today)


@dataclass(frozen=True)
class BoardResult:
    """A generated board: the audit entry's sequence number and what was written."""

    seq: int
    board: Board
    files: tuple[Path, ...]
    fingerprint: str
