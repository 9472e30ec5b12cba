"""Medical records for the staff-room board: ``medical import/set/remove/list/show`` (issue 6)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click

from commands._shared import (
    data_dir_option,
    date_option_for,
    errors_to_exit,
    json_option,
    open_data_store,
    operator_option,
    option_date,
    safe,
)
from consent import audit
from consent import retention as leavers
from consent.medical import records as medical
from consent.medical.records import Condition, Room, Severity
from consent.medical.records_csv import import_medical_csv

_SEVERITIES = [s.label for s in sorted(Severity, reverse=True)]


_date_option = date_option_for(
    "Judge current conditions and reviews as on this date (default: today)."
)


@click.group("medical")
def medical_group() -> None:
    """Pupils' medical needs for the staff-room board (encrypted, never in logs).

    \b
    Example:
        photoconsent medical import medical.csv
        photoconsent medical list
    """


@medical_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def medical_import(csv_file: Path, data_dir: Path | None, operator: str, as_json: bool) -> None:
    """Import medical records from a CSV, one line per condition.

    Columns: pupil_id, condition, severity (life-threatening, serious, moderate, low),
    action, medication_location, rooms (staff-room; classroom; kitchen; medical-room, or
    all), review_date (YYYY-MM-DD or empty); optional ends_on, notes. Each pupil listed
    gets exactly the conditions of the file; pupils not listed keep theirs. One bad line
    and nothing is imported (every bad line is listed with its number).

    \b
    Example:
        photoconsent medical import medical.csv --operator "J Smith"
    """
    with open_data_store(data_dir) as store:
        result = import_medical_csv(store, csv_file, operator=operator)
    summary = {"added": result.added, "updated": result.updated, "unchanged": result.unchanged}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"{result.added} added, {result.updated} updated, {result.unchanged} unchanged. "
            "Printed boards may now be out of date: `photoconsent board status`.",
            err=True,
        )


def _rooms(value: str | None) -> frozenset[Room] | None:
    if value is None:
        return None
    try:
        return medical.parse_rooms(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--rooms") from None


@medical_group.command("set")
@click.argument("pupil_id")
@click.option("--condition", required=True, help="The condition's name, e.g. 'Asthma'.")
@click.option("--severity", required=True, type=click.Choice(_SEVERITIES))
@click.option("--action", required=True, help="What staff must do.")
@click.option("--medication", default="", help="Where the medication is kept.")
@click.option("--ends", type=click.DateTime(["%Y-%m-%d"]), help="Last day of a temporary need.")
@click.option("--rooms", help="Boards to show the pupil on: 'staff-room; classroom' or all.")
@click.option("--review", type=click.DateTime(["%Y-%m-%d"]), help="IHCP review date.")
@click.option("--notes", help="Notes for the office (not printed on the board).")
@data_dir_option
@operator_option
@errors_to_exit
def medical_set(
    pupil_id: str,
    condition: str,
    severity: str,
    action: str,
    medication: str,
    ends: Any,
    rooms: str | None,
    review: Any,
    notes: str | None,
    data_dir: Path | None,
    operator: str,
) -> None:
    """Add a condition to a pupil's record, or replace the one of the same name.

    Other conditions, rooms, review date and notes are kept unless given.

    \b
    Example:
        photoconsent medical set P001 --condition "Anaphylaxis (peanuts)" \\
            --severity life-threatening --action "Give adrenaline pen, call 999" \\
            --medication "Office cupboard, red box" --rooms "staff-room; kitchen"
    """
    entry = Condition(
        name=medical.clean_text(condition),
        severity=Severity.parse(severity),
        action=medical.clean_text(action),
        medication=medical.clean_text(medication),
        ends_on=option_date(ends),
    )
    with open_data_store(data_dir) as store:
        record = medical.update_condition(
            store,
            pupil_id,
            entry,
            operator=operator,
            rooms=_rooms(rooms),
            review_on=option_date(review),
            notes=None if notes is None else medical.clean_text(notes),
        )
    click.echo(
        f"{safe(pupil_id)}: {len(record.conditions)} condition(s) on record. "
        "Printed boards may now be out of date: `photoconsent board status`.",
        err=True,
    )


@medical_group.command("remove")
@click.argument("pupil_id")
@click.option("--condition", help="Remove only this condition (default: the whole record).")
@data_dir_option
@operator_option
@errors_to_exit
def medical_remove(
    pupil_id: str, condition: str | None, data_dir: Path | None, operator: str
) -> None:
    """Remove a pupil's medical record, or one condition of it.

    \b
    Example:
        photoconsent medical remove P001 --condition "Broken arm"
    """
    with open_data_store(data_dir) as store:
        left = medical.remove(store, pupil_id, operator=operator, condition=condition)
        if left is None:
            leavers.compact(store)  # no deleted ciphertext left in free pages or WAL
    what = "record removed" if left is None else f"{len(left.conditions)} condition(s) left"
    click.echo(f"{safe(pupil_id)}: {what}. Check `photoconsent board status`.", err=True)


@medical_group.command("list")
@_date_option
@data_dir_option
@json_option
@errors_to_exit
def medical_list(on: Any, data_dir: Path | None, as_json: bool) -> None:
    """List who has a medical record: ids, rooms, counts, review dates; no medical text.

    \b
    Example:
        photoconsent medical list --json
    """
    day = option_date(on)
    with open_data_store(data_dir) as store:
        rows = medical.summarise(medical.all_records(store), day or date.today())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        review = r["review_on"] or "-"
        flag = "  REVIEW OVERDUE" if r["review_overdue"] else ""
        click.echo(
            f"{safe(r['pupil_id'])}\t{';'.join(r['rooms'])}\t"  # type: ignore[arg-type]
            f"{r['current']}/{r['conditions']} current\treview {review}{flag}"
        )
    click.echo(f"{len(rows)} record(s).", err=True)


@medical_group.command("show")
@click.argument("pupil_id")
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def medical_show(pupil_id: str, data_dir: Path | None, operator: str, as_json: bool) -> None:
    """Print one pupil's medical record (the access is audited, the text is not).

    \b
    Example:
        photoconsent medical show P001
    """
    with open_data_store(data_dir) as store:
        record = medical.get_record(store, pupil_id)
        if record is None:
            raise medical.NoMedicalRecord(f"{pupil_id} has no medical record.")
        with store.transaction() as conn:
            audit.append(
                conn,
                store.key,
                action="medical_view",
                operator=operator,
                details={"pupil_id": pupil_id, "revision": record.revision},
            )
    data = {
        "pupil_id": record.pupil_id,
        "rooms": sorted(r.value for r in record.rooms),
        "review_on": None if record.review_on is None else record.review_on.isoformat(),
        "notes": record.notes,
        "conditions": [c.to_json() for c in record.conditions],
        "updated_at": record.updated_at,
    }
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(f"{safe(record.pupil_id)}  rooms: {', '.join(data['rooms'])}")  # type: ignore[arg-type]
    click.echo(f"IHCP review: {data['review_on'] or '-'}")
    for c in sorted(record.conditions, key=lambda c: -c.severity):
        ends = f" (until {c.ends_on})" if c.ends_on else ""
        click.echo(f"- [{c.severity.label}] {safe(c.name)}{ends}")
        click.echo(f"    what to do: {safe(c.action)}")
        if c.medication:
            click.echo(f"    medication: {safe(c.medication)}")
    if record.notes:
        click.echo(f"notes: {safe(record.notes)}")
