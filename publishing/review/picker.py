"""The name picker: a reviewer names a pupil by typing a few letters of their name.

A reviewer recognises a child by face and name, never by a 13-character UPN; typing an
ID invites the wrong child. So every place a reviewer names a pupil (the review page's
un-blur box, ``review unblur --name``, ``review approve-pupil --name``) goes through
`pick_pupil`: each word typed must begin a word of the pupil's names or class, and the
pick must fit exactly one pupil, or it is refused (an ambiguous pick is never guessed).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from consent.registry import Pupil, list_pupils
from consent.store import Store
from publishing.review.batch import ReviewError

# Fewer letters than this fit half a school; the picker asks for more rather than list it.
MIN_LETTERS = 2
_APOSTROPHES = str.maketrans("", "", "'\u2019\u02bc`")


class NameNotFound(ReviewError):
    """No pupil's name fits the letters typed."""


class AmbiguousName(ReviewError):
    """The letters typed fit more than one pupil."""

    def __init__(self, message: str, matches: Sequence[Pupil]) -> None:
        super().__init__(message)
        self.matches = tuple(matches)


def pupil_label(pupil: Pupil) -> str:
    """How a pupil is shown in a picker: known-as first and last name, and class."""
    name = f"{pupil.known_first_name} {pupil.known_last_name}".strip()
    return f"{name} ({pupil.class_name})" if pupil.class_name else name


def picker_labels(pupils: Iterable[Pupil]) -> dict[str, Pupil]:
    """``label -> pupil`` for a picker's options, sorted by label. Two pupils with the
    same name in the same class are told apart by their pupil ID (only then)."""
    pupils = list(pupils)
    counts: dict[str, int] = {}
    for p in pupils:
        counts[_fold(pupil_label(p))] = counts.get(_fold(pupil_label(p)), 0) + 1
    labels = {}
    for p in pupils:
        label = pupil_label(p)
        if counts[_fold(label)] > 1:
            label = f"{label} {p.pupil_id}"
        labels[label] = p
    return dict(sorted(labels.items(), key=lambda kv: (_fold(kv[0]), kv[1].pupil_id)))


def find_pupils(pupils: Iterable[Pupil], text: str) -> list[Pupil]:
    """The pupils ``text`` fits, in label order: every word typed begins one of the
    pupil's words (first, known-as, last and other names, class), ignoring case,
    accents and apostrophes; a picker label typed in full fits its pupil only."""
    labels = picker_labels(pupils)
    wanted = _fold(text)
    for label, pupil in labels.items():
        if _fold(label) == wanted:
            return [pupil]
    typed = _words(text)
    if not typed:
        return []
    found = []
    for pupil in labels.values():
        words = _words(
            " ".join(
                (
                    pupil.first_name,
                    pupil.preferred_first_name,
                    pupil.last_name,
                    pupil.preferred_last_name,
                    pupil.other_names,
                    pupil.class_name,
                )
            )
        )
        if all(any(w.startswith(t) for w in words) for t in typed):
            found.append(pupil)
    return found


def pick_pupil(pupils: Iterable[Pupil], text: str) -> Pupil:
    """The one pupil ``text`` fits; `NameNotFound` or `AmbiguousName` otherwise.

    The messages never list names (they can end up in a log): they say how many fit and
    how to narrow the pick.
    """
    letters = sum(1 for c in _fold(text) if c.isalnum())
    if letters < MIN_LETTERS:
        raise NameNotFound(
            f"Type at least {MIN_LETTERS} letters of the pupil's name (first name, last name "
            "or both)."
        )
    found = find_pupils(pupils, text)
    if not found:
        raise NameNotFound(
            "No pupil's name begins with those letters; check the spelling, or type the "
            "start of the first and last name."
        )
    if len(found) > 1:
        raise AmbiguousName(
            f"Those letters fit {len(found)} pupils; type more of the name (the start of the "
            "first and last name, or the class too) so that only one fits.",
            found,
        )
    return found[0]


def pick_from_register(store: Store, text: str) -> Pupil:
    """`pick_pupil` over every pupil in the registry."""
    return pick_pupil(list_pupils(store.conn), text)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", _fold(text))
