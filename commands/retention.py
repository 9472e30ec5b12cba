"""Leavers and subject access: ``purge``, ``retention``, ``forget`` and ``export`` (issue 7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from commands._shared import (
    data_dir_option,
    date_option,
    errors_to_exit,
    json_option,
    open_data_store,
    operator_option,
    option_date,
    print_purged,
    safe,
)
from consent import export as subject_export
from consent import retention as leavers
from consent import takedown as takedowns


@click.command()
@date_option
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def purge(on: Any, dry_run: bool, data_dir: Path | None, operator: str, as_json: bool) -> None:
    """Delete leavers' data past its retention period, and biometrics whose consent expired.

    Audited, then the database is vacuumed so no deleted bytes remain in the file.
    Run it regularly (e.g. from cron). See `photoconsent retention show`.

    \b
    Example:
        photoconsent purge --dry-run
    """
    with open_data_store(data_dir) as store:
        purged = leavers.purge(store, operator=operator, today=option_date(on), dry_run=dry_run)
    print_purged(purged, as_json)


@click.group("retention")
def retention_group() -> None:
    """How long leavers' data is kept after they leave, per category.

    \b
    Example:
        photoconsent retention show
        photoconsent retention set biometrics 0
    """


@retention_group.command("show")
@data_dir_option
@json_option
@errors_to_exit
def retention_show(data_dir: Path | None, as_json: bool) -> None:
    """Print each category's retention period in days after leaving.

    \b
    Example:
        photoconsent retention show --json
    """
    with open_data_store(data_dir) as store:
        periods = leavers.retention(store.conn)
    if as_json:
        click.echo(json.dumps(periods))
        return
    for name, days in periods.items():
        kept = "until erased" if days is None else f"{days} day(s) after leaving"
        click.echo(f"{name}\t{kept}\t{leavers.CATEGORIES[name].description}")


@retention_group.command("set")
@click.argument("category", type=click.Choice(sorted(leavers.CATEGORIES)))
@click.argument("days")
@data_dir_option
@operator_option
@errors_to_exit
def retention_set(category: str, days: str, data_dir: Path | None, operator: str) -> None:
    """Set a category's retention: DAYS after leaving (0 = at once), or "never" to keep it.

    \b
    Example:
        photoconsent retention set biometrics 0
    """
    if days != "never" and not days.isdigit():
        raise click.BadParameter("DAYS is a whole number of days or 'never'.")
    with open_data_store(data_dir) as store:
        leavers.set_retention(
            store, category, None if days == "never" else int(days), operator=operator
        )
    click.echo(
        f"{category}: kept {days} day(s) after leaving."
        if days != "never"
        else f"{category}: kept until erased.",
        err=True,
    )


@click.command()
@click.argument("pupil_id")
@click.option(
    "--source",
    default="erasure request",
    show_default=True,
    help="The request this answers (kept in the audit log).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def forget(
    pupil_id: str, source: str, yes: bool, data_dir: Path | None, operator: str, as_json: bool
) -> None:
    """Erase a pupil on request: biometrics and other data deleted, consent withdrawn,
    names blanked. The pupil ID stays in the consent history and audit log.

    \b
    Example:
        photoconsent forget P0001 --source "parent letter 2026-03-02" --yes
    """
    if not yes:
        click.confirm(
            f"Erase {safe(pupil_id)}'s names and data? This cannot be undone", abort=True, err=True
        )
    with open_data_store(data_dir) as store:
        purged = leavers.forget(store, pupil_id, operator=operator, source=source)
        items = takedowns.takedown_report(store, pupil_id)
    print_purged(purged, as_json)
    if not as_json:
        click.echo(
            f"{safe(pupil_id)} erased. {len(items)} published photo(s) to take down: "
            f"`photoconsent takedown {safe(pupil_id)}`.",
            err=True,
        )


@click.command("export")
@click.argument("pupil_id")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="New folder to write (must not exist).",
)
@click.option(
    "--transfer",
    is_flag=True,
    help="For a receiving school: pupil and consent "
    "history only; biometrics are never transferred.",
)
@click.option(
    "--photos",
    "photo_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Another folder to look in for the child's published photos (repeatable); the "
    "folders the audit log says they were published into are always searched.",
)
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def export_pupil(
    pupil_id: str,
    out: Path,
    transfer: bool,
    photo_dirs: tuple[Path, ...],
    data_dir: Path | None,
    operator: str,
    as_json: bool,
) -> None:
    """Write a subject access folder for a parent (or --transfer for a new school).

    Holds the consent history, the published (redacted) photos the child appears in (looked
    for where the audit log says each was published, and in --photos) and what biometric
    data is held (the fact, not the data). Files are readable by you only.

    \b
    Example:
        photoconsent export P0001 --out sar-P0001/ --photos web/
        photoconsent export P0001 --transfer --out transfer-P0001/
    """
    with open_data_store(data_dir) as store:
        result = subject_export.export_pupil(
            store, pupil_id, out, operator=operator, transfer=transfer, photo_folders=photo_dirs
        )
    summary = {
        "folder": str(result.folder.resolve()),
        "files": result.files,
        "photos_published": result.photos_published,
        "photos_copied": result.photos_copied,
        "photos_found": result.photos_found,
        "photos_missing": result.photos_missing,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"Wrote {safe(summary['folder'])}: {', '.join(result.files)}", err=True)
        if not transfer:
            click.echo(
                f"{result.photos_found} of {result.photos_published} published photo(s) "
                "found and copied, from where the audit log says they were published"
                + (" and the --photos folders." if photo_dirs else "."),
                err=True,
            )
            if result.photos_missing:
                click.echo(
                    f"{result.photos_missing} could not be copied: moved or deleted since "
                    "publishing, or uploaded through the web service (which keeps no copy). "
                    "If you know where they are now, add --photos DIR.",
                    err=True,
                )
