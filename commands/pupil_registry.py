"""Setting up: ``init``, the ``pupils`` group and ``enroll``."""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import click

from commands._shared import (
    chosen_data_dir,
    data_dir_option,
    errors_to_exit,
    json_option,
    open_data_store,
    operator_option,
    print_purged,
    safe,
)
from consent import enrolment, registry
from consent import retention as leavers
from consent.errors import ConsentError
from consent.siblings import link_siblings, unlink_siblings
from consent.store import init_data_dir
from pipeline.errors import PipelineError
from pipeline.references import encode_reference, references_in_folder


@click.command()
@data_dir_option
@errors_to_exit
def init(data_dir: Path | None) -> None:
    """Create the data directory, secret key and database (safe to run again).

    \b
    Example:
        photoconsent init --data-dir /srv/photoconsent
    """
    target = chosen_data_dir(data_dir)
    db = init_data_dir(target)
    click.echo(f"Data directory ready: {target}", err=True)
    click.echo(f"Database: {db}", err=True)
    click.echo(
        "Back up the secret key file (secret.key) separately: without it enrolled faces "
        "cannot be read and the audit log cannot be verified.",
        err=True,
    )


@click.group()
def pupils() -> None:
    """Pupils and their photo-consent slips.

    \b
    Example:
        photoconsent pupils import consent-slips.csv
        photoconsent pupils list
    """


@pupils.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def pupils_import(csv_file: Path, data_dir: Path | None, operator: str, as_json: bool) -> None:
    """Import pupils and consent slips from a CSV file (all rows or none).

    Columns: pupil_id, first_name, last_name, class, website, press, social_media,
    prospectus, internal_display, biometric_consent (yes/no each), consent_date (ISO).
    Re-importing updates changed pupils and keeps the history.

    \b
    Example:
        photoconsent pupils import consent-slips-2026.csv
    """
    with open_data_store(data_dir) as store:
        result = registry.import_pupils_csv(store, csv_file, operator=operator)
    summary = {"added": result.added, "updated": result.updated, "unchanged": result.unchanged}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"Imported {safe(csv_file.name)}: {result.added} added, {result.updated} updated, "
            f"{result.unchanged} unchanged."
        )


@pupils.command("list")
@data_dir_option
@json_option
@errors_to_exit
def pupils_list(data_dir: Path | None, as_json: bool) -> None:
    """List pupils with their current consent and number of face references.

    \b
    Example:
        photoconsent pupils list --json
    """
    with open_data_store(data_dir) as store:
        counts = enrolment.reference_counts(store.conn)
        rows = []
        for p in registry.list_pupils(store.conn):
            rec = registry.current_consent(store.conn, p.pupil_id)
            rows.append(
                {
                    "pupil_id": p.pupil_id,
                    "first_name": p.first_name,
                    "last_name": p.last_name,
                    "class": p.class_name,
                    "purposes": sorted(x.value for x in rec.purposes) if rec else [],
                    "biometric_consent": bool(rec and rec.biometric_consent),
                    "references": counts.get(p.pupil_id, 0),
                }
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for r in rows:
        click.echo(
            f"{safe(r['pupil_id'])}\t{safe(r['first_name'])} {safe(r['last_name'])}\t"
            f"{safe(r['class'])}\t{','.join(r['purposes']) or '-'}\t"  # type: ignore[arg-type]
            f"biometric={'yes' if r['biometric_consent'] else 'no'}\trefs={r['references']}"
        )


@pupils.command("siblings")
@click.argument("pupil_ids", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove the links instead of adding them.")
@data_dir_option
@operator_option
@errors_to_exit
def pupils_siblings(
    pupil_ids: tuple[str, ...], remove: bool, data_dir: Path | None, operator: str
) -> None:
    """Name pupils as siblings: matching then needs a wider margin between them.

    \b
    Example:
        photoconsent pupils siblings P0012 P0047
    """
    if len(set(pupil_ids)) < 2:
        raise click.UsageError("Name at least two different pupils.")
    with open_data_store(data_dir) as store:
        if remove:
            n = unlink_siblings(store, pupil_ids, operator=operator)
        else:
            n = link_siblings(store, pupil_ids, operator=operator)
    click.echo(f"{n} sibling link(s) {'removed' if remove else 'added'}.", err=True)


@click.command()
@click.argument("pupil_id", required=False)
@click.argument("photos", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Enrol every <pupil_id>.jpg or <pupil_id>/*.jpg in this folder.",
)
@data_dir_option
@operator_option
@errors_to_exit
def enroll(
    pupil_id: str | None,
    photos: tuple[Path, ...],
    folder: Path | None,
    data_dir: Path | None,
    operator: str,
) -> None:
    """Enrol reference photos of a pupil (needs separate biometric consent).

    Each photo must show exactly one clear face. Only the face encoding is stored,
    encrypted; the photo is not kept. Exits 1 if any photo was rejected.

    \b
    Examples:
        photoconsent enroll P0001 ref/p0001-a.jpg ref/p0001-b.jpg
        photoconsent enroll --folder reference-photos/
    """
    if folder is not None and (pupil_id or photos):
        raise click.UsageError("Give either PUPIL_ID PHOTO... or --folder DIR, not both.")
    if folder is None and (not pupil_id or not photos):
        raise click.UsageError("Give PUPIL_ID and at least one PHOTO, or --folder DIR.")
    jobs = list(references_in_folder(folder)) if folder else [(pupil_id or "", p) for p in photos]
    if not jobs:
        raise click.ClickException(f"No <pupil_id>.jpg or <pupil_id>/*.jpg photos in {folder}.")
    rejected = 0
    with open_data_store(data_dir) as store:
        for pid, photo in jobs:
            try:
                enrolment.enrol(store, pid, partial(encode_reference, photo), operator=operator)
                click.echo(f"enrolled {safe(pid)} from {safe(photo.name)}", err=True)
            except (ConsentError, PipelineError) as exc:
                rejected += 1
                click.echo(f"rejected {safe(photo)}: {safe(exc)}", err=True)
    click.echo(f"{len(jobs) - rejected} enrolled, {rejected} rejected.", err=True)
    if rejected:
        sys.exit(1)


@pupils.command("leave")
@click.argument("pupil_id")
@click.option(
    "--date",
    "left",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="The day the pupil left.",
)
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def pupils_leave(
    pupil_id: str, left: Any, data_dir: Path | None, operator: str, as_json: bool
) -> None:
    """Record that a pupil left; data past its retention (biometrics: at once) is deleted.

    \b
    Example:
        photoconsent pupils leave P0001 --date 2026-07-20
    """
    with open_data_store(data_dir) as store:
        purged = leavers.leave(store, pupil_id, left.date(), operator=operator)
    print_purged(purged, as_json)
