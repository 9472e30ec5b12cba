"""The caption of one photo, rewritten for its purpose, and full names found in any text.

`photo_caption` is what `publish` (and the web service) call per photo, through the
batch's `publishing.context.BatchContext`: it takes the faces decided for that photo,
works out which pupils are *shown* (kept clear, with consent for the purpose on the
date) and rewrites the caption with `publishing.captions.rewrite` against every pupil on
the register, so a caption that names a blurred child, a child without
consent or a child who is not in the photo loses that name, and shown children are named
as the school's name policy for the purpose allows (`consent.name_policy`).

`full_names_in` is the pre-check's finder: full names ("Amelia Hart", "Hart, Amelia") in
a caption, a metadata field or a file name such as ``Amelia_Hart-sports.jpg`` or
``ameliaHart.jpg``.
"""

from __future__ import annotations

import enum
import re
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from consent import registry
from consent.name_policy import NamePolicy
from pipeline.analysis import kept
from pipeline.matching import FaceDecision
from publishing.captions.rewrite import NamedPupil, find_mentions, fold, rewrite_caption


class CaptionSource(enum.Enum):
    """Where a photo's caption came from; publish takes the first that gives one, in
    this order."""

    CAPTIONS_FILE = "captions file"
    BATCH_CAPTION = "--caption"
    EMBEDDED = "embedded"


@dataclass(frozen=True)
class PhotoCaption:
    """A rewritten caption. ``removed`` / ``shortened`` are pupil IDs, never names; the
    source caption is deliberately not kept (it is what must not be published)."""

    text: str
    policy: NamePolicy
    removed: list[str] = field(default_factory=list)
    shortened: list[str] = field(default_factory=list)

    def to_report(self) -> dict[str, object]:
        return {
            "caption": self.text,
            "name_policy": self.policy.value,
            "pupils_removed": self.removed,
            "pupils_shortened": self.shortened,
        }


def register_pupils(conn: sqlite3.Connection) -> list[NamedPupil]:
    """Every pupil on the register (leavers too: a caption may name anyone), except those
    whose names an erasure request blanked."""
    return [named_pupil(p) for p in registry.list_pupils(conn) if named_pupil(p).first_names()]


def named_pupil(p: registry.Pupil) -> NamedPupil:
    """The register's pupil with every name they go by, for caption rewriting."""
    others = tuple(n.strip() for n in p.other_names.split(";") if n.strip())
    return NamedPupil(
        p.pupil_id,
        p.first_name,
        p.last_name,
        p.preferred_first_name,
        p.preferred_last_name,
        others,
    )


def shown_pupils(faces: Iterable[FaceDecision], permitted: Collection[str]) -> set[str]:
    """Pupils whose face is kept clear in this photo *and* who are in ``permitted`` (the
    pupils whose consent allows the purpose on the day, checked again here: a caption
    must not trust its caller)."""
    ids = {f.pupil_id for f in kept(list(faces)) if f.pupil_id}
    return {p for p in ids if p in permitted}


def photo_caption(
    caption: str | None,
    faces: Sequence[FaceDecision],
    *,
    pupils: Sequence[NamedPupil],
    policy: NamePolicy,
    permitted: Collection[str],
) -> PhotoCaption | None:
    """``caption`` rewritten given this photo's face decisions, or None when there is no
    caption.

    ``pupils`` is the whole register (`register_pupils`), ``policy`` the purpose's name
    policy and ``permitted`` the pupils whose consent allows the purpose on the day: a
    batch reads them once (`publishing.context.BatchContext.caption`).
    """
    if caption is None or not caption.strip():
        return None
    shown = shown_pupils(faces, permitted)
    result = rewrite_caption(caption, list(pupils), policy=policy, shown=shown)
    return PhotoCaption(result.text, policy, result.removed, result.shortened)


# --- finding full names ---------------------------------------------------------------------


@dataclass(frozen=True)
class NameFound:
    """A pupil's full name found in some text; ``where`` says which ("caption",
    "file name", "XMP dc:description"...). Only the pupil ID is kept, not the name."""

    pupil_id: str
    where: str


def file_name_words(name: str) -> str:
    """A file name as words: ``Amelia_Hart-sports.jpg`` and ``AmeliaHartSports.jpg`` both
    become ``Amelia Hart sports jpg`` (split on ``_ - .`` spaces and camelCase)."""
    spaced = re.sub(r"[_.\-+~()\[\]{}]+", " ", name)
    spaced = re.sub(r"(?<=[a-z\u00df-\u00ff])(?=[A-Z\u00c0-\u00de])", " ", spaced)
    return re.sub(r"\s+", " ", spaced).strip()


def _letters(text: str) -> str:
    return "".join(c for c in fold(text)[0] if c.isalnum())


def full_names_in(
    text: str, pupils: Iterable[NamedPupil], *, where: str, file_name: bool = False
) -> list[NameFound]:
    """Pupils named in full in ``text`` (first and last name together, either order).

    With ``file_name`` the text is split into words first, and names run together
    ("ameliahart") are found as well.
    """
    pupils = [p for p in pupils if p.first_names() and p.last_names()]
    words = file_name_words(text) if file_name else text
    found = {m.pupil_id for m in find_mentions(words, pupils) if m.form in ("full", "reversed")}
    if file_name:
        compact = _letters(text)
        for p in pupils:
            for first in map(_letters, p.first_names()):
                for last in map(_letters, p.last_names()):
                    if first and last and (first + last in compact or last + first in compact):
                        found.add(p.pupil_id)
    return [NameFound(pid, where) for pid in sorted(found)]
