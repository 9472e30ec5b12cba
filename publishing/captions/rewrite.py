"""Rewriting captions so they name only the pupils a photo may name, as the policy allows.

A caption that names a pupil whose face was blurred undoes the blur, and the policy says
press and web photos never carry a child's full name. So a caption is rewritten against
the registry: a pupil stays named only if their face is shown (kept, with consent, in this
photo), and then only as the purpose's name policy allows (full name internally, first
name for web and press, no name for social media), and by the name they go by: the
preferred (known-as) name where the register has one. Every other mention of a pupil, by
any name they go by (legal, preferred, or a short form the school lists) as full name,
"Surname, First", surname alone or first name alone, in any case or accent ("Lukasz" is
Łukasz), with or without a possessive, is removed, and lists are rejoined so the sentence
still reads.

Matching is deliberately greedy: a surname that is also an ordinary word ("Green",
"Young") is removed wherever it appears. A clumsy caption is a small cost; a child's
surname on the website is the breach.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from consent.name_policy import NamePolicy


@dataclass(frozen=True)
class NamedPupil:
    """A pupil by every name they go by: legal names, the preferred (known-as) ones and
    the other first names the school lists. A caption that shows the pupil names them by
    the preferred name; one that must not name them loses every form."""

    pupil_id: str
    first_name: str
    last_name: str
    preferred_first_name: str = ""
    preferred_last_name: str = ""
    other_names: tuple[str, ...] = ()

    @property
    def shown_first(self) -> str:
        return self.preferred_first_name or self.first_name

    @property
    def shown_last(self) -> str:
        return self.preferred_last_name or self.last_name

    def first_names(self) -> list[str]:
        names = [self.first_name, self.preferred_first_name, *self.other_names]
        return list(dict.fromkeys(n for n in names if n.strip()))

    def last_names(self) -> list[str]:
        names = [self.last_name, self.preferred_last_name]
        return list(dict.fromkeys(n for n in names if n.strip()))


@dataclass
class CaptionResult:
    """The rewritten caption and which pupils' names were removed or shortened."""

    text: str
    removed: list[str] = field(default_factory=list)
    shortened: list[str] = field(default_factory=list)


_APOSTROPHES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'"}
# Letters NFKD does not take apart: "Lukasz" typed on an English keyboard is Łukasz.
_BASE_LETTERS = str.maketrans(
    {
        "Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h",
        "ı": "i", "Æ": "Ae", "æ": "ae", "Œ": "Oe", "œ": "oe", "Þ": "Th", "þ": "th",
    }
)  # fmt: skip


def fold(text: str) -> tuple[str, list[int]]:
    """``text`` case-folded with accents stripped, and for each folded character the index
    of the original character it came from (so matches map back onto the original)."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        ch = _APOSTROPHES.get(ch, ch).translate(_BASE_LETTERS)  # O’Brien is O'Brien
        decomposed = unicodedata.normalize("NFKD", ch)
        base = "".join(c for c in decomposed if not unicodedata.combining(c))
        for c in base.casefold():
            out.append(c)
            where.append(i)
    return "".join(out), where


_APOS = "'\u2019"
_POSSESSIVE = rf"(?:[{_APOS}]s\b|(?<=s)[{_APOS}](?!\w))?"


def _name_pattern(name: str) -> str:
    """A folded name as a regex: spaces and hyphens inside it match any run of either."""
    parts = [re.escape(p) for p in re.split(r"[\s\-]+", fold(name)[0].strip()) if p]
    return r"[\s\-]+".join(parts)


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int  # end of the name, before any possessive
    stop: int  # end including the possessive
    pupil_id: str
    form: str  # "full", "reversed", "first", "last", "last-part"


def find_mentions(text: str, pupils: Iterable[NamedPupil]) -> list[_Mention]:
    """Every mention of a pupil in ``text``, longest forms first, none overlapping."""
    folded, where = fold(text)
    candidates: list[tuple[int, int, int, str, str]] = []
    for p in pupils:
        firsts = [f for f in (_name_pattern(n) for n in p.first_names()) if f]
        lasts = [x for x in (_name_pattern(n) for n in p.last_names()) if x]
        forms: list[tuple[str, str]] = []
        for first in firsts:
            for last in lasts:
                forms += [
                    (rf"{first}[\s\-]+{last}", "full"),
                    (rf"{last}\s*,\s*{first}", "reversed"),
                ]
        for name, last in zip(p.last_names(), lasts, strict=True):
            forms.append((last, "last"))
            # Each part of a double-barrelled surname ("Smith-Jones", "Lloyd Webber") alone.
            parts = re.split(r"[\s\-]+", fold(name)[0].strip())
            forms += [(re.escape(x), "last-part") for x in parts if len(parts) > 1 and len(x) > 1]
        forms += [(first, "first") for first in firsts]
        for pattern, form in forms:
            for m in re.finditer(rf"(?<!\w)(?:{pattern})(?!\w){_POSSESSIVE}", folded):
                name_end = re.match(rf"(?:{pattern})", folded[m.start() :])
                end = m.start() + (name_end.end() if name_end else len(m.group()))
                candidates.append((m.start(), end, m.end(), p.pupil_id, form))
    # Longest first, then earliest; drop anything overlapping a chosen mention.
    candidates.sort(key=lambda c: (-(c[2] - c[0]), c[0]))
    chosen: list[_Mention] = []
    taken = [False] * (len(folded) + 1)
    for s, e, stop, pid, form in candidates:
        if any(taken[s:stop]):
            continue
        for i in range(s, stop):
            taken[i] = True
        # Map folded offsets back to the original text.
        o_start = where[s]
        o_end = where[e - 1] + 1
        o_stop = where[stop - 1] + 1
        chosen.append(_Mention(o_start, o_end, o_stop, pid, form))
    return sorted(chosen, key=lambda m: m.start)


_TITLE = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?\s*\Z", re.IGNORECASE)


def rewrite_caption(
    caption: str,
    pupils: Iterable[NamedPupil],
    *,
    policy: NamePolicy,
    shown: set[str],
) -> CaptionResult:
    """Rewrite ``caption`` so it names only pupils in ``shown``, as ``policy`` allows.

    ``shown`` is the pupils whose faces are kept clear in this photo with consent for the
    purpose; every other pupil's name goes, whatever the policy.
    """
    pupils = list(pupils)
    by_id: Mapping[str, NamedPupil] = {p.pupil_id: p for p in pupils}
    mentions = find_mentions(caption, pupils)
    result = CaptionResult(text="")
    # Split the caption into text and name pieces; a name piece is its replacement, or
    # None where the name is removed.
    pieces: list[tuple[str, str | None, str]] = []  # (kind, replacement, possessive)
    pos = 0
    for m in mentions:
        before = caption[pos : m.start]
        possessive = caption[m.end : m.stop]
        replacement = _replacement(caption[m.start : m.end], m, by_id[m.pupil_id], policy, shown)
        if replacement is None:
            result.removed.append(m.pupil_id)
        elif replacement != caption[m.start : m.end]:
            result.shortened.append(m.pupil_id)
        if replacement is None and m.form in ("last", "last-part"):
            # A surname alone ("the Smith twins", "Mr Webber's class") is dropped with any
            # title before it, not turned into "a pupil".
            pieces.append(("text", _TITLE.sub("", before), ""))
            pos = m.stop
            continue
        pieces.append(("text", before, ""))
        pieces.append(("name", replacement, possessive))
        pos = m.stop
    pieces.append(("text", caption[pos:], ""))
    result.text = _tidy(_join(pieces), caption)
    result.removed = sorted(set(result.removed))
    result.shortened = sorted(set(result.shortened) - set(result.removed))
    return result


def _replacement(
    written: str, m: _Mention, pupil: NamedPupil, policy: NamePolicy, shown: set[str]
) -> str | None:
    if pupil.pupil_id not in shown or policy is NamePolicy.NONE:
        return None
    # A shown pupil is named as they are known: the preferred name, where the school gave
    # one, in place of any other form of it.
    first, last = pupil.shown_first, pupil.shown_last
    if policy is NamePolicy.FULL:
        wanted = {
            "full": f"{first} {last}",
            "reversed": f"{last}, {first}",
            "first": first,
            "last": last,
        }.get(m.form)
        if wanted is None:  # a part of a double-barrelled surname
            return written if not pupil.preferred_last_name else last
        return _as_written(written, wanted)
    if m.form in ("first", "full", "reversed"):
        return _as_written(written, first) if m.form == "first" else first
    return None  # a surname on its own is never allowed outside FULL


def _as_written(written: str, wanted: str) -> str:
    """``written`` if it already is ``wanted`` in another case, else ``wanted``."""
    same = re.sub(r"[\s\-]+", " ", written.casefold()) == re.sub(r"[\s\-]+", " ", wanted.casefold())
    return written if same else wanted


def _join(pieces: list[tuple[str, str | None, str]]) -> str:
    """Rejoin pieces, rebuilding each run of names joined by commas/and/& so that removed
    names leave a readable list ("A, B and C"), or "a pupil"/"pupils" if none is left."""
    out: list[str] = []
    i = 0
    while i < len(pieces):
        kind, value, poss = pieces[i]
        if kind == "text":
            out.append(value or "")
            i += 1
            continue
        group = [(value, poss)]
        j = i + 1
        # A group continues while the text between two names is only a list separator.
        while j + 1 < len(pieces) and pieces[j][0] == "text" and pieces[j + 1][0] == "name":
            sep = pieces[j][1] or ""
            if not re.fullmatch(r"\s*(?:,\s*and|,\s*&|,|and|&)\s*", sep):
                break
            group.append((pieces[j + 1][1], pieces[j + 1][2]))
            j += 2
        kept = [v for v, _ in group if v is not None]
        possessive = group[-1][1]
        if len(kept) == len(group):
            # Nothing removed: put the original separators back.
            original = [pieces[k][1] or "" for k in range(i, j)]
            out.append("".join(original) + possessive)
        elif kept:
            listed = kept[0] if len(kept) == 1 else ", ".join(kept[:-1]) + " and " + kept[-1]
            out.append(listed + possessive)
        else:
            generic = "a pupil" if len(group) == 1 else "pupils"
            if possessive:
                generic += "'s" if len(group) == 1 else "'"
            out.append(generic)
        i = j
    return "".join(out)


def _tidy(text: str, original: str) -> str:
    """Collapse spaces, drop empty brackets and stray spaces before punctuation, and
    capitalise the first letter of each sentence the rewrite may have lowered."""
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r",\s*,", ",", text)
    text = text.strip()
    text = re.sub(
        r"(^|[.!?]\s+)(a pupil|pupils)\b", lambda m: m.group(1) + m.group(2).capitalize(), text
    )
    # A caption that began with a capital still does ("The Smith twins" -> "The twins",
    # "Mr Webber's class" -> "Class").
    if text and original[:1].isupper():
        text = text[0].upper() + text[1:]
    return text
