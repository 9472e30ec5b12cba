"""Setting up: ``init``, the ``pupils`` group and ``enroll``."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from commands._shared import (
    data_dir_option,
    errors_to_exit,
    json_option,
    open_data_store,
    operator_option,
    print_purged,
    safe,
)
from consent import enrolment, mis, registry
from consent import retention as leavers
from consent.siblings import link_siblings, unlink_siblings
from pipeline.recognisers import DEFAULT_RECOGNISER, RECOGNISERS
from pipeline.references import references_in_folder
from publishing.enrolling import enrol_photos, reencode, reference_status


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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(mis.FORMATS, case_sensitive=False),
    default="auto",
    show_default=True,
    help="Which system wrote the file; auto recognises SIMS, Arbor and Bromcom exports.",
)
@click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A mapping file (from 'pupils mapping init') for any other export.",
)
@click.option("--dry-run", is_flag=True, help="Check the file and say what would change.")
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def pupils_import(
    csv_file: Path,
    fmt: str,
    mapping_file: Path | None,
    dry_run: bool,
    data_dir: Path | None,
    operator: str,
    as_json: bool,
) -> None:
    """Import pupils and consent slips from a CSV file (all rows or none).

    Takes a SIMS, Arbor or Bromcom export as it comes, photoconsent's own CSV, or any
    other export through --mapping. Columns not used are ignored and never stored. An
    empty consent cell means no consent. Re-importing updates changed pupils and keeps
    the history.

    \b
    Examples:
        photoconsent pupils import "Pupil export.csv" --dry-run
        photoconsent pupils import consent-slips-2026.csv --format sims
        photoconsent pupils import export.csv --mapping export.mapping.txt
    """
    mapping = None
    if mapping_file is not None:
        try:
            mapping = mis.parse_mapping(mapping_file.read_text(encoding="utf-8-sig"))
        except mis.MappingError as exc:
            raise click.ClickException(f"{safe(mapping_file.name)}: {safe(exc)}") from None
    with open_data_store(data_dir) as store:
        result = registry.import_pupils_csv(
            store, csv_file, operator=operator, fmt=fmt.lower(), mapping=mapping, dry_run=dry_run
        )
    summary = {
        "added": result.added,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "format": result.format,
        "ignored_columns": list(result.ignored_columns),
        "consent_columns_not_in_file": list(result.absent_fields),
        "empty_consent_cells": result.empty_consent_cells,
        "dry_run": result.dry_run,
    }
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
        return
    verb = "Would import" if dry_run else "Imported"
    click.echo(
        f"{verb} {safe(csv_file.name)} ({result.format}): {result.added} added, "
        f"{result.updated} updated, {result.unchanged} unchanged."
    )
    if result.ignored_columns:
        shown = ", ".join(safe(c) for c in result.ignored_columns)
        click.echo(f"Columns ignored (not stored): {shown}")
    if result.absent_fields:
        click.echo(
            f"Not in the file, so recorded as no consent: {', '.join(result.absent_fields)}"
            if "consent_date" not in result.absent_fields or len(result.absent_fields) > 1
            else "No consent date column: slips are dated today."
        )
    if result.empty_consent_cells:
        click.echo(
            f"{result.empty_consent_cells} empty consent cell(s) recorded as no consent "
            "(slip not returned)."
        )
    if dry_run:
        click.echo("Dry run: nothing was written.")


@pupils.group("mapping")
def pupils_mapping() -> None:
    """Mapping files: which column of an export holds which field.

    \b
    Example:
        photoconsent pupils mapping init export.csv
    """


@pupils_mapping.command("init")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write it (default: next to the file, NAME.mapping.txt).",
)
@errors_to_exit
def pupils_mapping_init(csv_file: Path, out: Path | None) -> None:
    """Write a mapping file for an export to check and edit, then import with --mapping.

    Only the header line is read.

    \b
    Example:
        photoconsent pupils mapping init export.csv
        photoconsent pupils import export.csv --mapping export.mapping.txt
    """
    text, _ = registry.decode_csv(csv_file.read_bytes())
    records = registry.read_csv_records(text.split("\n", 1)[0], [])
    if not records:
        raise click.ClickException(f"{safe(csv_file.name)} has no header line.")
    headers = [registry.clean_text(h) for h in records[0][1]]
    target = out or csv_file.with_name(csv_file.stem + ".mapping.txt")
    if target.exists():
        raise click.ClickException(f"{safe(target)} already exists; edit it or give --out.")
    target.write_text(mis.mapping_template(headers), encoding="utf-8")
    click.echo(f"Mapping written: {safe(target)}. Check each line, then import with", err=True)
    click.echo(
        f"  photoconsent pupils import {safe(csv_file.name)} --mapping {safe(target.name)}",
        err=True,
    )


@pupils.command("list")
@data_dir_option
@json_option
@errors_to_exit
def pupils_list(data_dir: Path | None, as_json: bool) -> None:
    """List pupils with their consent and face references, and who needs new references.

    \b
    Example:
        photoconsent pupils list --json
    """
    with open_data_store(data_dir) as store:
        counts = enrolment.reference_counts(store.conn)
        refs = reference_status(store)
        today = date.today()
        rows = []
        for p in registry.list_pupils(store.conn):
            rec = registry.current_consent(store.conn, p.pupil_id)
            rows.append(
                {
                    "pupil_id": p.pupil_id,
                    "first_name": p.first_name,
                    "last_name": p.last_name,
                    "preferred_first_name": p.preferred_first_name,
                    "preferred_last_name": p.preferred_last_name,
                    "other_names": p.other_names,
                    "class": p.class_name,
                    "purposes": sorted(x.value for x in rec.purposes) if rec else [],
                    "biometric_consent": bool(rec and rec.biometric_consent),
                    "references": counts.get(p.pupil_id, 0),
                    "references_for_matching": refs[p.pupil_id].matching
                    if p.pupil_id in refs
                    else 0,
                    "references_status": refs[p.pupil_id].status(today)
                    if p.pupil_id in refs
                    else ("not enrolled" if rec and rec.biometric_consent else "-"),
                }
            )
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for r in rows:
        known = ""
        if r["preferred_first_name"] or r["preferred_last_name"]:
            first = r["preferred_first_name"] or r["first_name"]
            last = r["preferred_last_name"] or r["last_name"]
            known = f" (known as {safe(first)} {safe(last)})"
        click.echo(
            f"{safe(r['pupil_id'])}\t{safe(r['first_name'])} {safe(r['last_name'])}{known}\t"
            f"{safe(r['class'])}\t{','.join(r['purposes']) or '-'}\t"  # type: ignore[arg-type]
            f"biometric={'yes' if r['biometric_consent'] else 'no'}\trefs={r['references']}"
            + (f" ({safe(r['references_status'])})" if r["references"] else "")
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
@click.option(
    "--reencode",
    is_flag=True,
    help="Re-encode every stored face crop with --recogniser (default: the recommended "
    "one), then match with it. No new photos are needed, except for pupils enrolled "
    "before face crops were kept.",
)
@click.option(
    "--recogniser",
    type=click.Choice(sorted(RECOGNISERS)),
    default=None,
    help=f"With --reencode: the recogniser to move to (default: {DEFAULT_RECOGNISER}).",
)
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def enroll(
    pupil_id: str | None,
    photos: tuple[Path, ...],
    folder: Path | None,
    reencode: bool,
    recogniser: str | None,
    data_dir: Path | None,
    operator: str,
    as_json: bool,
) -> None:
    """Enrol reference photos of a pupil (needs separate biometric consent).

    Each photo must show exactly one clear, sharp, front-on face. What is kept, encrypted:
    the face's template for matching and the face itself (a crop with a margin), so a
    new recogniser can re-encode it and a reviewer can see it; the rest of the photo is
    not kept. Three photos from the last year per pupil are asked for: the report says
    per pupil how many usable ones they have. Exits 1 if any photo was rejected.

    \b
    Examples:
        photoconsent enroll P0001 ref/p0001-a.jpg ref/p0001-b.jpg ref/p0001-c.jpg
        photoconsent enroll --folder reference-photos/
        photoconsent enroll --reencode
    """
    if reencode:
        if folder is not None or pupil_id or photos:
            raise click.UsageError("--reencode takes no photos.")
        _reencode(data_dir, recogniser, operator, as_json)
        return
    if recogniser is not None:
        raise click.UsageError("--recogniser goes with --reencode.")
    if folder is not None and (pupil_id or photos):
        raise click.UsageError("Give either PUPIL_ID PHOTO... or --folder DIR, not both.")
    if folder is None and (not pupil_id or not photos):
        raise click.UsageError("Give PUPIL_ID and at least one PHOTO, or --folder DIR.")
    jobs = list(references_in_folder(folder)) if folder else [(pupil_id or "", p) for p in photos]
    if not jobs:
        raise click.ClickException(f"No <pupil_id>.jpg or <pupil_id>/*.jpg photos in {folder}.")
    with open_data_store(data_dir) as store:
        report = enrol_photos(store, jobs, operator=operator)
    today = date.today()
    if as_json:
        click.echo(json.dumps(report.to_json(today), indent=2, ensure_ascii=False))
    for o in report.outcomes:
        if o.problem is None:
            grade = (o.quality or {}).get("grade", "?")
            click.echo(f"enrolled {safe(o.pupil_id)} from {safe(o.photo.name)} ({grade})", err=True)
        else:
            click.echo(f"rejected {safe(o.photo)}: {safe(o.problem)}", err=True)
            if o.preview is not None:
                click.echo(f"  the faces found, boxed: {safe(o.preview)}", err=True)
    for pid, refs in report.pupils.items():
        click.echo(
            f"{safe(pid)}: {refs.matching} usable reference(s), {refs.current(today)} from the "
            f"last year: {safe(refs.status(today))}",
            err=True,
        )
    click.echo(f"{report.enrolled} enrolled, {report.rejected} rejected.", err=True)
    if report.rejected:
        sys.exit(1)


def _reencode(data_dir: Path | None, recogniser: str | None, operator: str, as_json: bool) -> None:
    with open_data_store(data_dir) as store:
        report = reencode(store, recogniser, operator=operator, progress=_progress())
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    click.echo(
        f"Re-encoded with {report.recogniser} (was {report.was}): {report.encoded} template(s) "
        f"made, {report.already} already there, {len(report.failed)} crop(s) would not encode.",
        err=True,
    )
    if report.need_new_photos:
        click.echo(
            f"{len(report.need_new_photos)} pupil(s) need new reference photos (enrolled "
            "before face crops were kept): " + ", ".join(safe(p) for p in report.need_new_photos),
            err=True,
        )


def _progress():  # type: ignore[no-untyped-def]
    """A one-line counter on a terminal, nothing otherwise."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        click.echo(f"\rre-encoding pupils: {done}/{total}", nl=done == total, err=True)

    return show


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
