"""Pupils and their versioned consent slips, imported from the school's CSV.

photoconsent's own CSV has these columns (any order, header on line 1)::

    pupil_id,first_name,last_name,class,website,press,social_media,prospectus,
    internal_display,biometric_consent,consent_date

plus the optional ``preferred_first_name``, ``preferred_last_name``, ``other_names`` (the
names a pupil is known by, ``;``-separated) and ``consent_expiry``. A SIMS, Arbor or
Bromcom export is read as it comes through the presets in `consent.mis` (or a mapping
file); columns no field uses are ignored and never stored. Yes/no cells take the usual
forms (yes/no, Y/N, Granted/Refused, TRUE/FALSE, 1/0...); an empty consent cell or a
missing consent column is no consent and is counted in the result. Dates are UK or ISO;
without a consent-date column the slip is dated the day of the import. The whole file is
checked before anything is written: one bad line and nothing is imported
(`CsvImportError` lists every bad line).

Consent is versioned: a changed slip adds a new ``consent_records`` row and marks the old
one superseded; an unchanged slip adds nothing. A single change made since with
``photoconsent consent set/withdraw`` (`consent.changes`) wins over an import whose slip is
not dated after that change, so re-importing an old spreadsheet cannot undo a withdrawal.
Pupils missing from a later file are kept (a file may cover one class only). Names stay in
``pupils`` and never reach the audit log.
"""

from __future__ import annotations

import codecs
import csv
import enum
import hashlib
import io
import re
import sqlite3
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from consent import audit, mis
from consent.enrolment import purge_references
from consent.errors import CsvImportError, UnknownPupil
from consent.store import Store


class Purpose(enum.Enum):
    """What a photo is published for; each is a yes/no column of the consent slip."""

    WEBSITE = "website"
    PRESS = "press"
    SOCIAL_MEDIA = "social_media"
    PROSPECTUS = "prospectus"
    INTERNAL_DISPLAY = "internal_display"


NAME_COLUMNS = ("pupil_id", "first_name", "last_name", "class")
PREFERRED_COLUMNS = ("preferred_first_name", "preferred_last_name", "other_names")
PURPOSE_COLUMNS = tuple(p.value for p in Purpose)
COLUMNS = (*NAME_COLUMNS, *PURPOSE_COLUMNS, "biometric_consent", "consent_date")
OPTIONAL_COLUMNS = (*PREFERRED_COLUMNS, "consent_expiry")
MAX_ID_LENGTH = 64
# Bidi embeddings/overrides/isolates: they can make a name print as something else.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class Pupil:
    """A pupil as listed on the school's CSV (``class_name`` is the CSV's ``class``).

    ``preferred_first_name`` / ``preferred_last_name`` are the known-as names ("" when
    not given); ``other_names`` the further names the school lists ("; "-separated).
    """

    pupil_id: str
    first_name: str
    last_name: str
    class_name: str
    preferred_first_name: str = ""
    preferred_last_name: str = ""
    other_names: str = ""

    @property
    def known_first_name(self) -> str:
        """The first name the pupil goes by: the preferred one if given."""
        return self.preferred_first_name or self.first_name

    @property
    def known_last_name(self) -> str:
        return self.preferred_last_name or self.last_name


@dataclass(frozen=True)
class ConsentRecord:
    """One version of a pupil's consent slip; ``recorded_at`` is UTC ISO-8601."""

    record_id: int
    pupil_id: str
    purposes: frozenset[Purpose]
    biometric_consent: bool
    consent_date: date
    recorded_at: str
    recorded_by: str
    source: str
    expires_on: date | None = None
    change_kind: str | None = None  # None for a CSV import, else see consent.changes


@dataclass(frozen=True)
class CsvRow:
    """One validated CSV line."""

    line: int
    pupil: Pupil
    purposes: frozenset[Purpose]
    biometric_consent: bool
    consent_date: date
    consent_expiry: date | None = None
    dated_by_import: bool = False  # no consent-date column: dated the day of the import


@dataclass(frozen=True)
class ParsedImport:
    """A validated file: its rows, the format read, the ignored columns (names only, the
    cells are never kept), the consent fields the file lacks and the empty consent cells."""

    rows: list[CsvRow]
    format: str
    ignored_columns: tuple[str, ...] = ()
    absent_fields: tuple[str, ...] = ()
    empty_consent_cells: int = 0


@dataclass(frozen=True)
class ImportResult:
    """How many pupils an import added, updated (names or consent) and left unchanged.

    ``kept_newer`` lists pupils whose slip in the file was not applied because a single
    change recorded since (`consent.changes`) is newer than it.
    """

    added: int
    updated: int
    unchanged: int
    kept_newer: tuple[str, ...] = ()
    format: str = "photoconsent"
    ignored_columns: tuple[str, ...] = ()
    absent_fields: tuple[str, ...] = ()
    empty_consent_cells: int = 0
    dry_run: bool = False


def clean_text(value: str) -> str:
    """Drop control and bidi-override characters, then surrounding whitespace."""
    return "".join(c for c in value if unicodedata.category(c) != "Cc" and c not in _BIDI).strip()


def _show(value: str) -> str:
    shown = clean_text(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def decode_csv(raw: bytes) -> tuple[str, list[tuple[int, str]]]:
    """Decode UTF-8 (BOM allowed), reporting every line that is not valid UTF-8."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    errors = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(
                (
                    number,
                    f"not valid UTF-8 (byte 0x{line[exc.start]:02x} at position {exc.start + 1});"
                    " save the file as 'CSV UTF-8' and import again",
                )
            )
    return raw.decode("utf-8", errors="replace"), errors


def read_csv_records(text: str, errors: list[tuple[int, str]]) -> list[tuple[int, list[str]]]:
    """CSV records with the line each starts on; a quoting error stops the read."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records, end = [], 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append((end + 1, f"malformed CSV ({exc}); look for an unclosed quote"))
            break
        records.append((end + 1, fields))
        end = reader.line_num
    return records


def csv_rows(
    records: list[tuple[int, list[str]]], names: list[str], errors: list[tuple[int, str]]
) -> Iterator[tuple[int, dict[str, str]]]:
    """The data records after the header as ``(line, {column: cell})``; blank lines are
    skipped and a record with the wrong number of fields is reported in ``errors``."""
    for line, fields in records[1:]:
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(names):
            errors.append((line, f"expected {len(names)} fields, found {len(fields)}"))
            continue
        yield line, dict(zip(names, fields, strict=True))


def _yes_no(column: str, value: str, problems: list[str], empty: list[int]) -> bool:
    try:
        answer = mis.yes_no(value)
    except ValueError:
        problems.append(
            f"{column} '{_show(value)}' is not yes or no (Y/N, Granted/Refused, Given/Not "
            "given, TRUE/FALSE and 1/0 also accepted; empty means no)"
        )
        return False
    if answer is None:
        empty.append(1)  # an empty cell: the slip never came back, so no consent
        return False
    return answer


def _date(column: str, value: str, problems: list[str], us_order: bool) -> date | None:
    try:
        return mis.parse_date(value, us_order_seen=us_order)
    except ValueError as exc:
        problems.append(f"{column} '{_show(value)}' {exc}")
        return None


def _other_names(value: str) -> str:
    names = [clean_text(n) for n in re.split(r"[;,/]", value)]
    return "; ".join(n for n in names if n)


def _parse_row(
    line: int,
    cells: dict[str, str],
    problems: list[str],
    empty: list[int],
    us_order: dict[str, bool],
    today: date,
) -> CsvRow:
    pupil_id = cells["pupil_id"].strip()
    if not pupil_id:
        problems.append("pupil_id is empty")
    elif clean_text(pupil_id) != pupil_id or len(pupil_id) > MAX_ID_LENGTH:
        problems.append(
            f"pupil_id '{_show(pupil_id)}' has control characters or is longer than "
            f"{MAX_ID_LENGTH} characters"
        )
    first_name = clean_text(cells["first_name"])
    if not first_name:
        problems.append("first_name is empty")
    purposes = frozenset(
        p for p in Purpose if p.value in cells and _yes_no(p.value, cells[p.value], problems, empty)
    )
    biometric = "biometric_consent" in cells and _yes_no(
        "biometric_consent", cells["biometric_consent"], problems, empty
    )
    dated_by_import = "consent_date" not in cells
    consent_date = today
    if not dated_by_import:
        raw_date = cells["consent_date"].strip()
        if not raw_date:
            problems.append("consent_date is empty")
        else:
            parsed = _date("consent_date", raw_date, problems, us_order["consent_date"])
            consent_date = parsed or date.min
    expiry = None
    raw_expiry = cells.get("consent_expiry", "").strip()
    if raw_expiry:
        expiry = _date("consent_expiry", raw_expiry, problems, us_order["consent_expiry"])
    pupil = Pupil(
        pupil_id,
        first_name,
        clean_text(cells["last_name"]),
        clean_text(cells.get("class", "")),
        clean_text(cells.get("preferred_first_name", "")),
        clean_text(cells.get("preferred_last_name", "")),
        _other_names(cells.get("other_names", "")),
    )
    return CsvRow(line, pupil, purposes, biometric, consent_date, expiry, dated_by_import)


def read_pupils_export(
    raw: bytes,
    *,
    filename: str = "the CSV file",
    fmt: str = "auto",
    mapping: dict[str, str] | None = None,
    today: date | None = None,
) -> ParsedImport:
    """Validate a whole pupil export in photoconsent's own, a preset MIS format (``fmt``,
    ``auto`` recognises it from the header) or through ``mapping`` (field -> column
    header, `consent.mis.parse_mapping`); raise `CsvImportError` with every bad line.

    Blank lines (also Excel's all-comma lines) are skipped. Line numbers count from the
    header as line 1.
    """
    text, errors = decode_csv(raw)
    records = read_csv_records(text, errors)
    if not records or not any(f.strip() for f in records[0][1]):
        errors.append((1, f"the file is empty; the header must be: {','.join(COLUMNS)}"))
        raise CsvImportError(errors, filename=filename)
    header_line, header = records[0]
    try:
        columns = mis.column_map([clean_text(h) for h in header], fmt, mapping)
    except mis.MappingError as exc:
        errors.append((header_line, str(exc)))
        raise CsvImportError(errors, filename=filename) from None
    index = columns.columns
    data: list[tuple[int, dict[str, str]]] = []
    for line, fields in records[1:]:
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            errors.append((line, f"expected {len(header)} fields, found {len(fields)}"))
            continue
        data.append((line, {f: fields[i] for f, i in index.items()}))
    us_order = {
        f: mis.month_first([cells.get(f, "") for _, cells in data])
        for f in ("consent_date", "consent_expiry")
    }
    rows: list[CsvRow] = []
    seen: dict[str, int] = {}
    empty: list[int] = []
    for line, cells in data:
        problems: list[str] = []
        row = _parse_row(line, cells, problems, empty, us_order, today or date.today())
        pupil_id = row.pupil.pupil_id
        if pupil_id in seen:
            problems.append(f"pupil_id '{_show(pupil_id)}' is already on line {seen[pupil_id]}")
        elif pupil_id:
            seen[pupil_id] = line
        errors.extend((line, p) for p in problems)
        rows.append(row)
    if errors:
        raise CsvImportError(errors, filename=filename)
    absent = tuple(f for f in (*mis.CONSENT_FIELDS, "consent_date") if f not in index)
    return ParsedImport(rows, columns.format, columns.ignored, absent, len(empty))


def parse_pupils_csv(raw: bytes, *, filename: str = "the CSV file") -> list[CsvRow]:
    """The rows of a pupil export (`read_pupils_export` with ``auto``)."""
    return read_pupils_export(raw, filename=filename).rows


def import_pupils_csv(
    store: Store,
    path: Path,
    *,
    operator: str,
    fmt: str = "auto",
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Validate then import a pupil export in one audited transaction (see
    `read_pupils_export` for ``fmt`` and ``mapping``).

    Raises `CsvImportError` (nothing written) if any line is bad. With ``dry_run`` the
    counts are worked out and the transaction rolled back: nothing is written or audited.
    Withdrawing biometric consent deletes the pupil's stored face references in the same
    transaction.
    """
    raw = Path(path).read_bytes()
    parsed = read_pupils_export(raw, filename=Path(path).name, fmt=fmt, mapping=mapping)
    try:
        result = _import_rows(store, raw, Path(path).name, parsed, operator, dry_run)
    except _DryRun as done:
        return done.result
    return result


class _DryRun(Exception):
    """Raised inside the transaction of a dry run so it rolls back."""

    def __init__(self, result: ImportResult) -> None:
        super().__init__("dry run")
        self.result = result


def _import_rows(
    store: Store, raw: bytes, name: str, parsed: ParsedImport, operator: str, dry_run: bool
) -> ImportResult:
    rows = parsed.rows
    added = updated = 0
    kept_newer: list[str] = []
    with store.transaction() as conn:
        for row in rows:
            source = f"csv:{name}:line {row.line}"
            outcome = _upsert(
                conn, store.key, row, operator=operator, source=source, kept_newer=kept_newer
            )
            added += outcome == "added"
            updated += outcome == "updated"
        result = ImportResult(
            added,
            updated,
            len(rows) - added - updated,
            tuple(kept_newer),
            parsed.format,
            parsed.ignored_columns,
            parsed.absent_fields,
            parsed.empty_consent_cells,
            dry_run,
        )
        if dry_run:
            raise _DryRun(result)
        audit.append(
            conn,
            store.key,
            action="consent_import",
            operator=operator,
            details={
                "file": name,
                "format": result.format,
                "sha256": hashlib.sha256(raw).hexdigest(),
                "added": result.added,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "kept_newer": list(result.kept_newer),
                "empty_consent_cells": result.empty_consent_cells,
            },
        )
    return result


def _consent_fields(
    slip: CsvRow | ConsentRecord, *, date_from: ConsentRecord | None = None
) -> dict[str, bool | str]:
    """The slip as CSV column -> value, for comparing and for the audit entry."""
    fields: dict[str, bool | str] = {p.value: p in slip.purposes for p in Purpose}
    fields["biometric_consent"] = slip.biometric_consent
    fields["consent_date"] = slip.consent_date.isoformat()
    if date_from is not None:
        # A file without a consent-date column: an unchanged slip keeps its first date.
        fields["consent_date"] = date_from.consent_date.isoformat()
    expiry = slip.consent_expiry if isinstance(slip, CsvRow) else slip.expires_on
    if expiry is not None:
        fields["consent_expiry"] = expiry.isoformat()
    return fields


def _is_stale(row: CsvRow, current: ConsentRecord | None) -> bool:
    """True if ``current`` is a single change and the CSV slip is not dated after it."""
    if current is None or current.change_kind is None:
        return False
    return row.consent_date <= date.fromisoformat(current.recorded_at[:10])


def _upsert(
    conn: sqlite3.Connection,
    key: bytes,
    row: CsvRow,
    *,
    operator: str,
    source: str,
    kept_newer: list[str],
) -> str:
    """Write one row; return "added", "updated" or "unchanged"."""
    pupil, now = row.pupil, audit.utc_now()
    if conn.execute(
        "SELECT 1 FROM pupils WHERE pupil_id = ? AND erased_at IS NOT NULL", (pupil.pupil_id,)
    ).fetchone():
        # Erased on request (`photoconsent forget`): an old spreadsheet must not bring back
        # the names or the consent.
        kept_newer.append(pupil.pupil_id)
        return "unchanged"
    old_pupil = _fetch_pupil(conn, pupil.pupil_id)
    old_consent = current_consent(conn, pupil.pupil_id)
    changed: list[str] = []
    if old_pupil is None:
        conn.execute(
            "INSERT INTO pupils (pupil_id, first_name, last_name, class_name,"
            " preferred_first_name, preferred_last_name, other_names, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (pupil.pupil_id, *_names(pupil), now, now),
        )
    else:
        changed += [
            column
            for column, old, new in zip(
                (*NAME_COLUMNS[1:], *PREFERRED_COLUMNS),
                _names(old_pupil),
                _names(pupil),
                strict=True,
            )
            if old != new
        ]
        if changed:
            conn.execute(
                "UPDATE pupils SET first_name = ?, last_name = ?, class_name = ?,"
                " preferred_first_name = ?, preferred_last_name = ?, other_names = ?,"
                " updated_at = ? WHERE pupil_id = ?",
                (*_names(pupil), now, pupil.pupil_id),
            )
    old_fields = None if old_consent is None else _consent_fields(old_consent)
    new_fields = _consent_fields(row)
    if row.dated_by_import and old_fields is not None:
        same = _consent_fields(row, date_from=old_consent)
        if same == old_fields:
            new_fields = same
    keys = [*new_fields, *(k for k in old_fields or {} if k not in new_fields)]
    consent_changed = [
        k for k in keys if old_fields is None or old_fields.get(k) != new_fields.get(k)
    ]
    if consent_changed and _is_stale(row, old_consent):
        # The office recorded a parent's change after this slip was signed: keep it.
        kept_newer.append(pupil.pupil_id)
        consent_changed = []
    if old_pupil is not None:
        changed += consent_changed
    details: dict[str, object] = {"pupil_id": pupil.pupil_id, "source": source}
    if consent_changed:
        if old_consent is not None:
            conn.execute(
                "UPDATE consent_records SET superseded_at = ? WHERE id = ?",
                (now, old_consent.record_id),
            )
        details["record_id"] = _insert_record(conn, row, now, operator, source)
        details["consent"] = new_fields
    if old_pupil is None:
        audit.append(conn, key, action="pupil_add", operator=operator, details=details)
        return "added"
    if not changed:
        return "unchanged"
    details["changed"] = changed
    audit.append(conn, key, action="pupil_update", operator=operator, details=details)
    if old_consent is not None and old_consent.biometric_consent and not row.biometric_consent:
        purge_references(
            conn, key, pupil.pupil_id, operator=operator, reason="biometric consent withdrawn"
        )
    return "updated"


def _names(pupil: Pupil) -> tuple[str, str, str, str, str, str]:
    return (
        pupil.first_name,
        pupil.last_name,
        pupil.class_name,
        pupil.preferred_first_name,
        pupil.preferred_last_name,
        pupil.other_names,
    )


_PUPIL_SELECT = (
    "SELECT pupil_id, first_name, last_name, class_name, coalesce(preferred_first_name, ''),"
    " coalesce(preferred_last_name, ''), coalesce(other_names, '') FROM pupils"
)


def _insert_record(
    conn: sqlite3.Connection, row: CsvRow, now: str, operator: str, source: str
) -> int:
    flags = [int(p in row.purposes) for p in Purpose]
    cursor = conn.execute(
        "INSERT INTO consent_records (pupil_id, website, press, social_media, prospectus,"
        " internal_display, biometric_consent, consent_date, recorded_at, recorded_by, source,"
        " expires_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.pupil.pupil_id,
            *flags,
            int(row.biometric_consent),
            row.consent_date.isoformat(),
            now,
            operator,
            source,
            None if row.consent_expiry is None else row.consent_expiry.isoformat(),
        ),
    )
    return int(cursor.lastrowid or 0)


def _fetch_pupil(conn: sqlite3.Connection, pupil_id: str) -> Pupil | None:
    row = conn.execute(_PUPIL_SELECT + " WHERE pupil_id = ?", (pupil_id,)).fetchone()
    return None if row is None else Pupil(*row)


def get_pupil(conn: sqlite3.Connection, pupil_id: str) -> Pupil:
    """The pupil with this id; raises `UnknownPupil`."""
    pupil = _fetch_pupil(conn, pupil_id)
    if pupil is None:
        raise UnknownPupil(pupil_id)
    return pupil


def list_pupils(conn: sqlite3.Connection) -> list[Pupil]:
    """Every pupil, ordered by pupil_id."""
    rows = conn.execute(_PUPIL_SELECT + " ORDER BY pupil_id")
    return [Pupil(*row) for row in rows]


def _record(row: sqlite3.Row) -> ConsentRecord:
    return ConsentRecord(
        record_id=row["id"],
        pupil_id=row["pupil_id"],
        purposes=frozenset(p for p in Purpose if row[p.value]),
        biometric_consent=bool(row["biometric_consent"]),
        consent_date=date.fromisoformat(row["consent_date"]),
        recorded_at=row["recorded_at"],
        recorded_by=row["recorded_by"],
        source=row["source"],
        expires_on=None if row["expires_on"] is None else date.fromisoformat(row["expires_on"]),
        change_kind=row["change_kind"],
    )


def current_consent(conn: sqlite3.Connection, pupil_id: str) -> ConsentRecord | None:
    """The pupil's current consent record, or None (also for an unknown pupil)."""
    row = conn.execute(
        "SELECT * FROM consent_records WHERE pupil_id = ? AND superseded_at IS NULL",
        (pupil_id,),
    ).fetchone()
    return None if row is None else _record(row)


def consent_history(conn: sqlite3.Connection, pupil_id: str) -> list[ConsentRecord]:
    """Every consent record of the pupil, oldest first (the last is the current one)."""
    rows = conn.execute("SELECT * FROM consent_records WHERE pupil_id = ? ORDER BY id", (pupil_id,))
    return [_record(row) for row in rows]


def consent_allows(record: ConsentRecord | None, purpose: Purpose, on: date) -> bool:
    """True only if the slip grants ``purpose``, was signed on or before ``on`` and has not
    expired by ``on`` (a slip with ``expires_on`` still counts on that day, not after).

    None (no record) is False: no slip, no publishing.
    """
    return (
        record is not None
        and purpose in record.purposes
        and record.consent_date <= on
        and (record.expires_on is None or on <= record.expires_on)
    )


def pupils_with_consent(
    conn: sqlite3.Connection, purpose: Purpose, on: date
) -> dict[str, ConsentRecord]:
    """``pupil_id -> current record`` for every pupil whose consent allows ``purpose`` on ``on``."""
    rows = conn.execute(
        "SELECT * FROM consent_records WHERE superseded_at IS NULL ORDER BY pupil_id"
    )
    records = (_record(row) for row in rows)
    return {r.pupil_id: r for r in records if consent_allows(r, purpose, on)}
