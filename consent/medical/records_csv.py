"""The medical CSV import: one line per condition, validated whole, imported in one step.

Columns: ``pupil_id, condition, severity, action, medication_location, rooms,
review_date`` and optionally ``ends_on`` and ``notes``. A pupil's lines must agree on rooms,
review date and notes. Every bad line is reported and then nothing is imported; a good
file replaces the records of the pupils it lists in one audited transaction.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from consent import audit
from consent.errors import CsvImportError
from consent.medical.key import medical_key
from consent.medical.records import (
    MAX_TEXT,
    Condition,
    MedicalRecord,
    Room,
    Severity,
    all_records,
    audit_details,
    content_digest,
    parse_rooms,
    store_record,
)
from consent.registry import clean_text, csv_rows, decode_csv, read_csv_records
from consent.store import Store

CSV_COLUMNS = (
    "pupil_id",
    "condition",
    "severity",
    "action",
    "medication_location",
    "rooms",
    "review_date",
)
CSV_OPTIONAL = ("ends_on", "notes")


@dataclass
class _Draft:
    first_line: int
    rooms: frozenset[Room]
    review_on: date | None
    notes: str
    conditions: list[Condition] = field(default_factory=list)


@dataclass(frozen=True)
class MedicalImportResult:
    """Per import: records added, replaced and unchanged (same content as stored)."""

    added: int
    updated: int
    unchanged: int


def _date_cell(column: str, value: str, problems: list[str]) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{column} {clean_text(value)[:20]!r} is not a date (YYYY-MM-DD) or empty")
        return None


def _text_cell(column: str, value: str, problems: list[str], *, required: bool) -> str:
    text = clean_text(value)
    if required and not text:
        problems.append(f"{column} is empty")
    if len(text) > MAX_TEXT:
        problems.append(f"{column} is {len(text)} characters; keep it under {MAX_TEXT}")
    return text


def parse_medical_csv(
    conn: sqlite3.Connection, raw: bytes, *, filename: str = "the CSV file"
) -> list[MedicalRecord]:
    """Validate a whole medical CSV (one line per condition); return one record per pupil.

    Raises `CsvImportError` listing every bad line (line 1 is the header); a pupil's
    lines must agree on rooms, review_date and notes (blank on later lines = the same).
    """
    text, errors = decode_csv(raw)
    records = read_csv_records(text, errors)
    if not records:
        raise CsvImportError([(1, "the file is empty")], filename=filename)
    header_line, header = records[0]
    names = [clean_text(h).lower() for h in header]
    missing = [c for c in CSV_COLUMNS if c not in names]
    extra = [n for n in names if n not in CSV_COLUMNS + CSV_OPTIONAL]
    if missing or extra or len(set(names)) != len(names):
        problem = "the header must name: " + ",".join(CSV_COLUMNS)
        problem += f" (optional: {','.join(CSV_OPTIONAL)})"
        if missing:
            problem = f"missing column(s) {', '.join(missing)}; " + problem
        if extra:
            problem = f"unknown column(s) {', '.join(e[:30] for e in extra)}; " + problem
        raise CsvImportError([*errors, (header_line, problem)], filename=filename)
    drafts: dict[str, _Draft] = {}
    for line, cells in csv_rows(records, names, errors):
        problems: list[str] = []
        pupil_id = cells["pupil_id"].strip()
        if not pupil_id:
            problems.append("pupil_id is empty")
        else:
            row = conn.execute(
                "SELECT left_on, erased_at FROM pupils WHERE pupil_id = ?", (pupil_id,)
            ).fetchone()
            if row is None:
                problems.append(
                    f"pupil_id {clean_text(pupil_id)[:40]!r} is not in the registry "
                    "(import the consent CSV first)"
                )
            elif row["erased_at"] is not None or row["left_on"] is not None:
                problems.append(f"pupil {pupil_id} has left or was erased")
        name = _text_cell("condition", cells["condition"], problems, required=True)
        action = _text_cell("action", cells["action"], problems, required=True)
        medication = _text_cell(
            "medication_location", cells["medication_location"], problems, required=False
        )
        notes = _text_cell("notes", cells.get("notes", ""), problems, required=False)
        severity = Severity.LOW
        try:
            severity = Severity.parse(cells["severity"])
        except ValueError as exc:
            problems.append(str(exc))
        rooms: frozenset[Room] = frozenset()
        raw_rooms = cells["rooms"].strip()
        if raw_rooms:
            try:
                rooms = parse_rooms(raw_rooms)
            except ValueError as exc:
                problems.append(str(exc))
        review = _date_cell("review_date", cells["review_date"], problems)
        ends = _date_cell("ends_on", cells.get("ends_on", ""), problems)
        condition = Condition(name, severity, action, medication, ends)
        draft = drafts.get(pupil_id)
        if draft is None:
            if not raw_rooms:
                problems.append("rooms is empty (e.g. staff-room; classroom, or all)")
            if not problems:
                drafts[pupil_id] = _Draft(line, rooms, review, notes, [condition])
        else:
            if raw_rooms and rooms and rooms != draft.rooms:
                problems.append(f"rooms differ from line {draft.first_line} for {pupil_id}")
            if cells["review_date"].strip() and review != draft.review_on:
                problems.append(f"review_date differs from line {draft.first_line}")
            if notes and draft.notes and notes != draft.notes:
                problems.append(f"notes differ from line {draft.first_line}")
            if any(c.name.lower() == name.lower() for c in draft.conditions):
                problems.append(f"condition {name[:40]!r} is already listed for {pupil_id}")
            if not problems:
                draft.conditions.append(condition)
                draft.notes = draft.notes or notes
        errors.extend((line, p) for p in problems)
    if errors:
        raise CsvImportError(errors, filename=filename)
    return [
        MedicalRecord(pid, tuple(d.conditions), d.rooms, d.review_on, d.notes)
        for pid, d in sorted(drafts.items())
    ]


def import_medical_csv(store: Store, path: Path, *, operator: str) -> MedicalImportResult:
    """Validate, then replace the records of every pupil the CSV lists, in one audited
    transaction. Pupils not in the file keep their records. Raises `CsvImportError`."""
    raw = Path(path).read_bytes()
    parsed = parse_medical_csv(store.conn, raw, filename=Path(path).name)
    old = {r.pupil_id: r for r in all_records(store, [r.pupil_id for r in parsed])}
    added = updated = unchanged = 0
    with store.transaction() as conn:
        key = medical_key(store, create=True)
        assert key is not None
        for record in parsed:
            previous = old.get(record.pupil_id)
            if previous is not None and content_digest(key, previous) == content_digest(
                key, record
            ):
                unchanged += 1
                continue
            stored = store_record(conn, key, record, operator)
            outcome = "added" if previous is None else "updated"
            added += outcome == "added"
            updated += outcome == "updated"
            audit.append(
                conn,
                store.key,
                action="medical_set",
                operator=operator,
                details={**audit_details(stored, outcome), "source": Path(path).name},
            )
        result = MedicalImportResult(added, updated, unchanged)
        audit.append(
            conn,
            store.key,
            action="medical_import",
            operator=operator,
            details={
                "file": Path(path).name,
                "sha256": hashlib.sha256(raw).hexdigest(),
                "pupils": len(parsed),
                "added": added,
                "updated": updated,
                "unchanged": unchanged,
            },
        )
    return result
