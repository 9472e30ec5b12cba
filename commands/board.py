"""The staff-room medical board: ``board make/status``, board photos and settings (issue 6)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from board.generate import generate
from board.model import BoardFilter, BoardOptions, Orientation
from board.photo_prep import prepare_photo
from board.status import board_status
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
from consent import retention as leavers
from consent.medical import board_photos, board_settings
from consent.medical.records import Room

_date_option = date_option_for("Judge records, photos and boards as on this date (default: today).")


@click.group("board")
def board_group() -> None:
    """Printable medical boards for the staff room, classroom, kitchen or medical room.

    \b
    Example:
        photoconsent board make --room staff-room --operator "J Smith" --pdf board.pdf
        photoconsent board status
    """


@board_group.command("make")
@click.option(
    "--room", required=True, type=click.Choice([r.value for r in Room]), help="Where it hangs."
)
@click.option("--class", "class_names", multiple=True, metavar="CLASS", help="Only this class.")
@click.option("--condition", help="Only pupils with a condition whose name contains this.")
@click.option(
    "--orientation",
    type=click.Choice([o.value for o in Orientation]),
    default=Orientation.PORTRAIT.value,
    show_default=True,
    help="A4 page orientation (portrait: 2 cards across, landscape: 3).",
)
@click.option("--pdf", type=click.Path(dir_okay=False, path_type=Path), help="PDF file to write.")
@click.option("--html", type=click.Path(dir_okay=False, path_type=Path), help="HTML file to write.")
@click.option(
    "--operator",
    required=True,
    help="The named member of staff making the board (recorded in the audit log).",
)
@_date_option
@data_dir_option
@json_option
@errors_to_exit
def board_make(
    room: str,
    class_names: tuple[str, ...],
    condition: str | None,
    orientation: str,
    pdf: Path | None,
    html: Path | None,
    operator: str,
    on: Any,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Print a medical board: one card per pupil with a current need, worst first.

    Each card has the photo, name, class, conditions by severity, what to do, where the
    medication is, and the emergency line. Every page is marked CONFIDENTIAL with the
    generation and replace-by dates. Files are readable by you only and never
    overwritten; the board is audited (who, when, room, which pupils).

    \b
    Example:
        photoconsent board make --room staff-room --operator "J Smith" --pdf staff.pdf
        photoconsent board make --room classroom --class 3B --orientation landscape \\
            --operator "J Smith" --pdf 3B.pdf --html 3B.html
    """
    if pdf is None and html is None:
        raise click.UsageError("Give --pdf FILE and/or --html FILE.")
    if not operator.strip():
        raise click.UsageError("--operator must name the member of staff.")
    options = BoardOptions(
        filter=BoardFilter(
            room=Room(room),
            classes=frozenset(class_names),
            condition=condition.strip() if condition else None,
        ),
        operator=operator.strip(),
        orientation=Orientation(orientation),
        pdf=pdf,
        html=html,
    )
    day = option_date(on)
    if day is not None:
        options = dataclasses.replace(options, on=day)
    with open_data_store(data_dir) as store:
        result = generate(store, options)
    summary = {
        "audit_seq": result.seq,
        "pupils": [c.pupil_id for c in result.board.cards],
        "replace_by": result.board.replace_by.isoformat(),
        "files": [str(p.resolve()) for p in result.files],
        "fingerprint": result.fingerprint,
        "warnings": list(result.board.warnings),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"Board of {len(result.board.cards)} pupil(s), replace by "
        f"{summary['replace_by']} (audit entry {result.seq}).",
        err=True,
    )
    for path in summary["files"]:
        click.echo(f"Wrote {safe(path)}", err=True)
    for warning in result.board.warnings:
        click.echo(f"warning: {safe(warning)}", err=True)


@board_group.command("status")
@click.option("--all", "every", is_flag=True, help="Also judge boards that were replaced.")
@_date_option
@data_dir_option
@json_option
@errors_to_exit
def board_status_cmd(every: bool, on: Any, data_dir: Path | None, as_json: bool) -> None:
    """List printed boards and which are out of date, and why (no medical text).

    Exits 1 when a board still on the wall (the newest for its room and filters) is out
    of date, so a scheduled job can alert the office.

    \b
    Example:
        photoconsent board status
    """
    with open_data_store(data_dir) as store:
        states = board_status(store, on=option_date(on), every=every)
    stale = [s for s in states if s.replaced_by is None and s.reasons]
    if as_json:
        click.echo(json.dumps([s.to_json() for s in states], indent=2))
    else:
        for s in states:
            if s.replaced_by is not None and not every:
                continue
            verdict = "CURRENT" if s.current else ("REPLACED" if not s.reasons else "OUT OF DATE")
            click.echo(
                f"board {s.seq}\t{s.at[:10]}\t{s.room}\t{s.filters}\t{s.pupils} pupil(s)\t"
                f"replace by {s.replace_by}\t{verdict}"
            )
            for reason in s.reasons:
                click.echo(f"    {safe(reason)}")
        if not states:
            click.echo("No boards have been generated.", err=True)
    if stale:
        raise SystemExit(1)


@board_group.group("photo")
def photo_group() -> None:
    """Board photos: one current, encrypted photo per pupil, with the day it was taken.

    \b
    Example:
        photoconsent board photo add P001 P001-2026.jpg --taken 2026-09-10
    """


@photo_group.command("add")
@click.argument("pupil_id")
@click.argument("photo", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--taken",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Day the photo was taken; required when it has no EXIF date, wins over EXIF.",
)
@data_dir_option
@operator_option
@errors_to_exit
def photo_add(pupil_id: str, photo: Path, taken: Any, data_dir: Path | None, operator: str) -> None:
    """Store a pupil's board photo (re-encoded, no metadata kept), replacing the old one.

    \b
    Example:
        photoconsent board photo add P001 P001-2026.jpg --taken 2026-09-10
    """
    prepared = prepare_photo(photo, option_date(taken))
    with open_data_store(data_dir) as store:
        info = board_photos.add_photo(
            store,
            pupil_id,
            prepared.jpeg,
            taken_on=prepared.taken_on,
            source_sha256=prepared.source_sha256,
            date_source=prepared.date_source.value,
            operator=operator,
        )
    click.echo(
        f"{safe(pupil_id)}: photo taken {info.taken_on} ({prepared.date_source.value}) stored.",
        err=True,
    )


@photo_group.command("list")
@_date_option
@data_dir_option
@json_option
@errors_to_exit
def photo_list(on: Any, data_dir: Path | None, as_json: bool) -> None:
    """List board photos with their dates; flags those older than the school's maximum.

    \b
    Example:
        photoconsent board photo list
    """
    from datetime import date

    day = option_date(on) or date.today()
    with open_data_store(data_dir) as store:
        conf = board_settings.settings(store.conn)
        infos = board_photos.photo_info(store.conn)
    rows = [
        {
            "pupil_id": i.pupil_id,
            "taken_on": i.taken_on.isoformat(),
            "retake": board_photos.is_stale(i, conf.photo_max_age_months, day),
            "from_reference": i.from_reference,
        }
        for i in sorted(infos.values(), key=lambda i: i.pupil_id)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        flag = f"\tRE-TAKE (over {conf.photo_max_age_months} months)" if r["retake"] else ""
        click.echo(f"{safe(r['pupil_id'])}\ttaken {r['taken_on']}{flag}")


@photo_group.command("remove")
@click.argument("pupil_id")
@data_dir_option
@operator_option
@errors_to_exit
def photo_remove(pupil_id: str, data_dir: Path | None, operator: str) -> None:
    """Delete a pupil's board photo.

    \b
    Example:
        photoconsent board photo remove P001
    """
    with open_data_store(data_dir) as store:
        count = board_photos.remove_photo(store, pupil_id, operator=operator)
        if count:
            leavers.compact(store)
    click.echo(f"{safe(pupil_id)}: {count} photo(s) deleted.", err=True)


@board_group.group("settings")
def settings_group() -> None:
    """The school's board settings (photo age, replace-by period, emergency line...).

    \b
    Example:
        photoconsent board settings set photo_max_age_months 12
    """


@settings_group.command("show")
@data_dir_option
@json_option
@errors_to_exit
def settings_show(data_dir: Path | None, as_json: bool) -> None:
    """Print the board settings in force.

    \b
    Example:
        photoconsent board settings show
    """
    with open_data_store(data_dir) as store:
        values = board_settings.raw_settings(store.conn)
    data = {k.value: v for k, v in values.items()}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for name, value in data.items():
        click.echo(f"{name}\t{safe(value)}")


@settings_group.command("set")
@click.argument("name", type=click.Choice([s.value for s in board_settings.Setting]))
@click.argument("value")
@data_dir_option
@operator_option
@errors_to_exit
def settings_set(name: str, value: str, data_dir: Path | None, operator: str) -> None:
    """Set a board setting (audited with the old and new value).

    reference_photos yes records the school's decision that face-matching enrolment
    photos may also be used as board photos.

    \b
    Example:
        photoconsent board settings set emergency_line "Call 999, then the office (ext 200)"
    """
    with open_data_store(data_dir) as store:
        stored = board_settings.set_setting(
            store, board_settings.Setting(name), value, operator=operator
        )
    click.echo(f"{name} = {safe(stored)}", err=True)
