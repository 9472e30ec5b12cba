"""Reading pupil exports as school MIS systems write them: presets, mappings, dates, yes/no.

A preset says, for each field photoconsent keeps, which column headers SIMS, Arbor or
Bromcom use for it (docs/importing.md says what is known and what is assumed). `auto`
picks the preset whose headers the file has; anything else is read through a mapping
file (``photoconsent pupils mapping init FILE.csv`` writes one to edit). Columns no field
uses (date of birth, year group, ...) are ignored and listed once; they are never stored.

Dates are UK dates (DD/MM/YYYY, D/M/YY) or ISO (YYYY-MM-DD). A column whose dates show
month-first order anywhere (a "month" above 12) makes every date that could be read
either way ambiguous, and those lines are refused. Yes/no cells take the words MIS and
Excel write; an empty consent cell is no consent (fail closed) and is counted, not an
error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# The answers an export gives per pupil: one per purpose (`consent.registry.Purpose`, which
# imports this module, so the names are spelt here; a test keeps the two the same) and
# whether biometric data may be processed.
CONSENT_FIELDS = (
    "website",
    "press",
    "social_media",
    "prospectus",
    "internal_display",
    "biometric_consent",
)
# The fields photoconsent keeps, in the order a mapping file lists them.
FIELDS = (
    "pupil_id",
    "first_name",
    "last_name",
    "preferred_first_name",
    "preferred_last_name",
    "other_names",
    "class",
    *CONSENT_FIELDS,
    "consent_date",
    "consent_expiry",
)
REQUIRED = ("pupil_id", "first_name", "last_name")
FORMATS = ("auto", "sims", "arbor", "bromcom", "photoconsent")


def _consent(*labels: str) -> tuple[str, ...]:
    """The headers a consent field may carry: "Photo Consent - Website" and the like."""
    out: list[str] = []
    for label in labels:
        out += [
            f"photo consent - {label}",
            f"photo consent: {label}",
            f"photograph consent - {label}",
            f"consent - {label}",
            f"consent: {label}",
            f"{label} consent",
            f"{label} photo consent",
            f"{label} photos",
        ]
    return tuple(out)


_CONSENT_HEADERS = {
    "website": _consent("website", "school website", "web"),
    "press": _consent("press", "newspaper", "media"),
    "social_media": _consent("social media", "social"),
    "prospectus": _consent("prospectus", "printed materials", "publications"),
    "internal_display": _consent("internal display", "display", "school displays", "internal"),
    "biometric_consent": (
        "biometric consent",
        "biometrics consent",
        "consent - biometric",
        "consent: biometric",
        "photo consent - biometric",
        "biometric",
        "face recognition consent",
    ),
    "consent_date": (
        "consent date",
        "date consent given",
        "consent given date",
        "photo consent date",
        "date of consent",
        "consent collected",
        "date collected",
    ),
    "consent_expiry": ("consent expiry", "consent expiry date", "consent end date", "expiry date"),
}

# Header names (lower case) per field and preset. What each MIS writes is documented with
# its sources and assumptions in docs/importing.md.
PRESETS: dict[str, dict[str, tuple[str, ...]]] = {
    "sims": {
        "pupil_id": ("upn",),
        "first_name": ("legal forename", "forename"),
        "last_name": ("legal surname", "surname"),
        "preferred_first_name": ("preferred forename",),
        "preferred_last_name": ("preferred surname",),
        "class": ("reg group", "registration group", "reg"),
        **_CONSENT_HEADERS,
    },
    "arbor": {
        "pupil_id": ("upn",),
        "first_name": ("legal first name", "first name"),
        "last_name": ("legal last name", "last name"),
        "preferred_first_name": ("preferred first name",),
        "preferred_last_name": ("preferred last name",),
        "class": ("registration form", "form", "reg form", "tutor group"),
        **_CONSENT_HEADERS,
    },
    "bromcom": {
        "pupil_id": ("upn", "student upn", "pupil upn"),
        "first_name": ("legal first name", "legal forename", "first name", "forename"),
        "last_name": ("legal last name", "legal surname", "last name", "surname"),
        "preferred_first_name": ("preferred first name", "preferred forename"),
        "preferred_last_name": ("preferred last name", "preferred surname"),
        "class": ("tutor group", "registration group", "form group"),
        **_CONSENT_HEADERS,
    },
    "photoconsent": {f: (f,) for f in FIELDS},
}
# Headers that tell one MIS from another when the names alone do not.
_SIGNATURE = {
    "sims": ("reg group", "adno"),
    "arbor": ("registration form",),
    "bromcom": ("tutor group", "student upn", "admission no", "admission number"),
    "photoconsent": ("pupil_id", "first_name", "last_name"),
}


class MappingError(ValueError):
    """A header no preset or mapping can read; the message says what to do."""


@dataclass(frozen=True)
class ColumnMap:
    """Which column (index) holds each field; ``ignored`` lists the unused headers."""

    format: str
    columns: dict[str, int]
    ignored: tuple[str, ...]


def _norm(header: str) -> str:
    return re.sub(r"\s+", " ", header.replace("\ufeff", "")).strip().lower()


def _match(headers: list[str], wanted: dict[str, tuple[str, ...]]) -> dict[str, int]:
    names = [_norm(h) for h in headers]
    found: dict[str, int] = {}
    for field in FIELDS:
        for candidate in wanted.get(field, ()):
            if candidate in names and names.index(candidate) not in found.values():
                found[field] = names.index(candidate)
                break
    return found


def detect_format(headers: list[str]) -> str:
    """The preset whose headers the file has, else raise `MappingError`."""
    names = {_norm(h) for h in headers}
    best, best_score = None, -1
    for name in ("photoconsent", "sims", "arbor", "bromcom"):
        found = _match(headers, PRESETS[name])
        if not all(f in found for f in REQUIRED):
            continue
        score = len(found) * 10 + sum(s in names for s in _SIGNATURE[name])
        if score > best_score:
            best, best_score = name, score
    if best is None:
        raise MappingError(
            "the columns are not a SIMS, Arbor or Bromcom export photoconsent recognises; "
            "run 'photoconsent pupils mapping init FILE.csv', edit the mapping it writes "
            "and import with --mapping"
        )
    return best


def column_map(
    headers: list[str], fmt: str = "auto", mapping: dict[str, str] | None = None
) -> ColumnMap:
    """Map the header onto photoconsent's fields by ``mapping`` (field -> header), else by
    preset ``fmt`` (``auto`` detects it). Raises `MappingError` naming what is missing."""
    if mapping is not None:
        wanted = {f: (_norm(h),) for f, h in mapping.items() if h.strip()}
        fmt = "mapping"
    else:
        if fmt == "auto":
            fmt = detect_format(headers)
        if fmt not in PRESETS:
            raise MappingError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
        wanted = PRESETS[fmt]
    names = [_norm(h) for h in headers]
    doubled = sorted({n for n in names if n and names.count(n) > 1})
    if doubled:
        raise MappingError(f"repeated column(s): {', '.join(doubled)}")
    found = _match(headers, wanted)
    if mapping is not None:
        absent = [f"{f} = {h}" for f, h in mapping.items() if h.strip() and f not in found]
        if absent:
            raise MappingError(f"the mapping names columns the file lacks: {'; '.join(absent)}")
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        hint = ", ".join(wanted.get(missing[0], ())[:2])
        raise MappingError(
            f"missing column(s) for {', '.join(missing)} in the {fmt} format"
            + (f" (expected e.g. {hint})" if hint else "")
        )
    used = set(found.values())
    ignored = tuple(h.strip() for i, h in enumerate(headers) if i not in used and h.strip())
    return ColumnMap(fmt, found, ignored)


# --- mapping files -----------------------------------------------------------------------


def parse_mapping(text: str) -> dict[str, str]:
    """A mapping file: ``field = Column header`` per line, ``#`` comments, blank right side
    for a field the file does not have. Raises `MappingError` on unknown fields."""
    mapping: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        field, sep, header = line.partition("=")
        field = field.strip().lower()
        if not sep or field not in FIELDS:
            raise MappingError(
                f"mapping line {number}: expected 'field = Column header' with a field from "
                f"{', '.join(FIELDS)}"
            )
        mapping[field] = header.strip()
    missing = [f for f in REQUIRED if not mapping.get(f)]
    if missing:
        raise MappingError(f"the mapping gives no column for {', '.join(missing)}")
    return mapping


def mapping_template(headers: list[str]) -> str:
    """A mapping file to edit for a file with ``headers``: each field with the column a
    preset would take for it (or blank), and the file's columns listed as comments."""
    try:
        found = column_map(headers).columns
    except MappingError:
        found = {}
        for preset in ("sims", "arbor", "bromcom", "photoconsent"):
            for f, i in _match(headers, PRESETS[preset]).items():
                if f not in found and i not in found.values():
                    found[f] = i
    lines = [
        "# photoconsent import mapping: one 'field = Column header' a line.",
        "# Leave the right side empty for a field your file does not have; an empty or",
        "# missing consent column means no consent. Columns not named here are ignored",
        "# and never stored. Required: pupil_id, first_name, last_name.",
        "# other_names: names the pupil also goes by, separated by ';' (e.g. Luke; Lukey).",
        "#",
        "# The columns in your file:",
        *(f"#   {h.strip()}" for h in headers if h.strip()),
        "",
    ]
    lines += [f"{f} = {headers[found[f]].strip() if f in found else ''}" for f in FIELDS]
    return "\n".join(lines) + "\n"


# --- cells -------------------------------------------------------------------------------

_YES = frozenset({"yes", "y", "granted", "given", "true", "1", "consent given", "agreed"})
_NO = frozenset(
    {"no", "n", "refused", "not given", "false", "0", "declined", "withdrawn", "not granted"}
)


def yes_no(value: str) -> bool | None:
    """True/False for the yes/no words MIS and Excel write (any case), None for an empty
    cell; raises ValueError for anything else."""
    word = re.sub(r"\s+", " ", value).strip().lower()
    if not word:
        return None
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise ValueError(word)


_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_UK = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4}|[0-9]{2})")
# Excel sometimes adds a midnight time to a date cell.
_TIME = re.compile(r"\s+[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?\Z")


def month_first(values: list[str]) -> bool:
    """True if any D/M date in ``values`` can only be month-first (its middle part > 12):
    then the file's other slash dates cannot be trusted as UK order."""
    for value in values:
        m = _UK.fullmatch(_TIME.sub("", value.strip()))
        if m and int(m.group(2)) > 12 and int(m.group(1)) <= 12:
            return True
    return False


def parse_date(value: str, *, us_order_seen: bool = False) -> date:
    """A UK (DD/MM/YYYY, D/M/YY) or ISO date; ValueError with the reason otherwise.

    With ``us_order_seen`` (see `month_first`) a slash date whose day and month are both
    12 or under is ambiguous and refused.
    """
    text = _TIME.sub("", value.strip())
    if m := _ISO.fullmatch(text):
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            raise ValueError("is not a real date") from None
    m = _UK.fullmatch(text)
    if not m:
        raise ValueError("is not a date (use DD/MM/YYYY or YYYY-MM-DD)")
    day, month, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if len(m.group(3)) == 2:
        year += 2000
    if month > 12 and day <= 12:
        raise ValueError("reads month first (US order); save the dates as DD/MM/YYYY")
    if us_order_seen and day <= 12 and month <= 12 and day != month:
        raise ValueError(
            "is ambiguous: other dates in this column are month first, so it could be "
            "either; save the dates as DD/MM/YYYY or YYYY-MM-DD"
        )
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError("is not a real date") from None
