"""photoconsent's command line: parse, call the library, print, map errors to exit codes.

Exit codes: 0 success; 1 a photo was withheld, a check failed, or an operational error
(``Error: ...`` on stderr); 2 a usage error. Data goes to stdout, diagnostics to stderr.
"""

from __future__ import annotations

import functools
import json
import sys
import unicodedata
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from consent import audit, enrolment, registry
from consent.errors import ConsentError
from consent.registry import Purpose
from consent.store import Store, init_data_dir, open_store, resolve_data_dir
from pipeline import __version__
from pipeline.check import check as check_photos
from pipeline.detection import DetectionSettings, Thoroughness
from pipeline.errors import PipelineError
from pipeline.matching import DEFAULT_MARGIN, DEFAULT_TOLERANCE, MatchSettings
from pipeline.publish import (
    PhotoResult,
    PublishOptions,
    default_operator,
)
from pipeline.publish import (
    publish as publish_photos,
)
from pipeline.redaction import RedactionStyle
from pipeline.references import enrol_photo, references_in_folder
from pipeline.writing import OutputFormat

F = TypeVar("F", bound=Callable[..., Any])


def safe(text: object) -> str:
    """``text`` with control characters replaced, for echoing names from files."""
    return "".join("?" if unicodedata.category(c).startswith("C") else c for c in str(text))


# --- shared options ------------------------------------------------------------------------


def data_dir_option(f: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Data directory (registry, audit log, key). "
        "Default: $PHOTOCONSENT_HOME, else ./photoconsent-data.",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(f)


def operator_option(f: F) -> F:
    return click.option(
        "--operator",
        default=default_operator,
        show_default="the OS user",
        help="Who is doing this, for the audit log.",
    )(f)


def purpose_option(f: F) -> F:
    return click.option(
        "--purpose",
        required=True,
        type=click.Choice([p.value for p in Purpose]),
        help="What the photos are for; consent is checked for this purpose.",
    )(f)


def date_option(f: F) -> F:
    return click.option(
        "--date",
        "on",
        type=click.DateTime(["%Y-%m-%d"]),
        default=None,
        help="Judge consent as on this date (default: today).",
    )(f)


def matching_options(f: F) -> F:
    f = click.option(
        "--thoroughness",
        type=click.Choice([t.value for t in Thoroughness]),
        default=Thoroughness.STANDARD.value,
        show_default=True,
        help="Detection passes: fast (one), standard (multi-scale + mirror), "
        "paranoid (also rotated and dlib HOG).",
    )(f)
    f = click.option(
        "--tolerance",
        type=click.FloatRange(0.1, 0.6),
        default=DEFAULT_TOLERANCE,
        show_default=True,
        help="Largest face distance that counts as a match. Raising it keeps more "
        "faces and risks keeping the wrong child.",
    )(f)
    return f


def _data_dir(data_dir: Path | None) -> Path:
    """The command's --data-dir, else the group's (``photoconsent --data-dir X cmd``),
    else $PHOTOCONSENT_HOME, else ./photoconsent-data."""
    if data_dir is None:
        ctx = click.get_current_context(silent=True)
        data_dir = ctx.find_root().params.get("data_dir") if ctx else None
    return resolve_data_dir(str(data_dir) if data_dir else None)


def _store(data_dir: Path | None) -> Store:
    return open_store(_data_dir(data_dir))


def errors_to_exit(f: F) -> F:
    """Turn the library's typed errors into ``Error: ...`` and exit 1."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except (ConsentError, PipelineError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


# --- commands ------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="photoconsent")
@data_dir_option
def main(data_dir: Path | None) -> None:
    """Publish school photos only as parents' consent slips allow.

    Faces not positively matched to a pupil with consent for the purpose are blurred,
    all metadata is stripped, and every publish is audited.

    \b
    Example, from nothing to a published folder:
        photoconsent init
        photoconsent pupils import consent.csv
        photoconsent enroll --folder reference-photos/
        photoconsent publish --purpose website --event "Sports day" --out web/ photos/
    """


@main.command()
@data_dir_option
@errors_to_exit
def init(data_dir: Path | None) -> None:
    """Create the data directory, secret key and database (safe to run again).

    \b
    Example:
        photoconsent init --data-dir /srv/photoconsent
    """
    target = _data_dir(data_dir)
    db = init_data_dir(target)
    click.echo(f"Data directory ready: {target}", err=True)
    click.echo(f"Database: {db}", err=True)
    click.echo(
        "Back up the secret key file (secret.key) separately: without it enrolled faces "
        "cannot be read and the audit log cannot be verified.",
        err=True,
    )


@main.group()
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
    with _store(data_dir) as store:
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
    with _store(data_dir) as store:
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


@main.command()
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
    with _store(data_dir) as store:
        for pid, photo in jobs:
            try:
                enrol_photo(store, pid, photo, operator=operator)
                click.echo(f"enrolled {safe(pid)} from {safe(photo.name)}", err=True)
            except (ConsentError, PipelineError) as exc:
                rejected += 1
                click.echo(f"rejected {safe(photo)}: {safe(exc)}", err=True)
    click.echo(f"{len(jobs) - rejected} enrolled, {rejected} rejected.", err=True)
    if rejected:
        sys.exit(1)


def _options(
    purpose: str,
    out: Path,
    event: str,
    operator: str,
    style: str,
    fmt: str,
    thoroughness: str,
    tolerance: float,
    on: date | None,
) -> PublishOptions:
    return PublishOptions(
        purpose=Purpose(purpose),
        out_dir=out,
        event=event,
        operator=operator,
        style=RedactionStyle(style),
        output_format=OutputFormat[fmt.upper()],
        detection=DetectionSettings(thoroughness=Thoroughness(thoroughness)),
        matching=MatchSettings(tolerance=tolerance, margin=DEFAULT_MARGIN),
        on=on or date.today(),
    )


def _print_progress(done: int, total: int, result: PhotoResult) -> None:
    kept = sum(1 for f in result.faces if f.decision.value == "kept")
    detail = (
        f"{Path(result.output or '').name} ({kept} kept, {len(result.faces) - kept} blurred)"
        if result.status == "published"
        else f"WITHHELD: {result.reason}"
    )
    click.echo(f"[{done}/{total}] {safe(result.input)} -> {safe(detail)}", err=True)


@main.command()
@purpose_option
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the safe photos and report.json (created if missing).",
)
@click.option(
    "--event",
    default="event",
    show_default=True,
    help="Event name, used for output file names and the audit log.",
)
@click.option(
    "--style",
    type=click.Choice([s.value for s in RedactionStyle]),
    default=RedactionStyle.BLUR.value,
    show_default=True,
    help="How faces without consent are hidden.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jpeg", "png", "webp"]),
    default="jpeg",
    show_default=True,
    help="Output image format.",
)
@date_option
@matching_options
@data_dir_option
@operator_option
@json_option
@click.option("--quiet", "-q", is_flag=True, help="No per-photo progress on stderr.")
@click.argument("photos", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@errors_to_exit
def publish(
    purpose: str,
    out: Path,
    event: str,
    style: str,
    fmt: str,
    on: Any,
    thoroughness: str,
    tolerance: float,
    data_dir: Path | None,
    operator: str,
    as_json: bool,
    quiet: bool,
    photos: tuple[Path, ...],
) -> None:
    """Publish photos for a purpose: blur everyone without consent, strip metadata.

    Writes <event>-0001.jpg... and report.json to --out, one audit entry per photo.
    Exits 0 when every photo was published, 1 when any was withheld (see report.json).

    \b
    Example:
        photoconsent publish --purpose website --event "Sports day 2026" \\
            --out to-upload/ camera-card/
    """
    options = _options(
        purpose,
        out,
        event,
        operator,
        style,
        fmt,
        thoroughness,
        tolerance,
        on.date() if on else None,
    )
    with _store(data_dir) as store:
        report = publish_photos(
            store, list(photos), options, progress=None if quiet else _print_progress
        )
    summary = report.to_json()["summary"]
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(
            f"{summary['published']} published, {summary['withheld']} withheld "  # type: ignore[index]
            f"({summary['faces_kept']} faces kept, {summary['faces_blurred']} blurred).",  # type: ignore[index]
            err=True,
        )
        click.echo(f"Output: {out.resolve()}", err=True)
        click.echo(f"Report: {(out / 'report.json').resolve()}", err=True)
        for r in report.withheld:
            click.echo(f"withheld {safe(r.input)}: {safe(r.reason)}", err=True)
    if report.withheld:
        sys.exit(1)


@main.command()
@purpose_option
@date_option
@matching_options
@data_dir_option
@json_option
@click.argument("photos", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@errors_to_exit
def check(
    purpose: str,
    on: Any,
    thoroughness: str,
    tolerance: float,
    data_dir: Path | None,
    as_json: bool,
    photos: tuple[Path, ...],
) -> None:
    """Would these photos be safe to publish exactly as they are?

    Safe means: no face that is not positively matched to a pupil with consent for the
    purpose, and no metadata at all. Exits 0 if every photo is safe, 1 if not.

    \b
    Example:
        photoconsent check --purpose website upload/*.jpg
    """
    options = _options(
        purpose,
        Path("."),
        "check",
        "check",
        "blur",
        "jpeg",
        thoroughness,
        tolerance,
        on.date() if on else None,
    )
    with _store(data_dir) as store:
        results = check_photos(store, list(photos), options)
    if as_json:
        click.echo(json.dumps([r.to_report() for r in results], indent=2, ensure_ascii=False))
    else:
        for r in results:
            verdict = "safe" if r.safe else "NOT SAFE: " + "; ".join(r.reasons)
            click.echo(f"{safe(r.input)}: {safe(verdict)}")
    if not all(r.safe for r in results):
        sys.exit(1)


@main.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log.

    \b
    Example:
        photoconsent audit log --action publish --limit 20
        photoconsent audit verify
    """


@audit_group.command("log")
@data_dir_option
@json_option
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the newest N entries.")
@click.option("--action", default=None, help="Only entries of this action (e.g. publish).")
@errors_to_exit
def audit_log(data_dir: Path | None, as_json: bool, limit: int | None, action: str | None) -> None:
    """Print audit entries, oldest first.

    \b
    Example:
        photoconsent audit log --action publish --limit 20
    """
    with _store(data_dir) as store:
        rows = audit.entries(store, limit=limit, action=action)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "seq": e.seq,
                        "at": e.at,
                        "operator": e.operator,
                        "action": e.action,
                        "details": e.details,
                        "entry_hash": e.entry_hash,
                    }
                    for e in rows
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for e in rows:
        click.echo(
            f"{e.seq}\t{e.at}\t{safe(e.operator)}\t{e.action}\t"
            f"{safe(json.dumps(e.details, sort_keys=True, ensure_ascii=False))}"
        )


@audit_group.command("verify")
@data_dir_option
@json_option
@errors_to_exit
def audit_verify(data_dir: Path | None, as_json: bool) -> None:
    """Check the audit chain: any edited, deleted or reordered entry fails (exit 1).

    \b
    Example:
        photoconsent audit verify
    """
    with _store(data_dir) as store:
        result = audit.verify(store)
    if as_json:
        click.echo(
            json.dumps({"ok": result.ok, "entries": result.entries, "problems": result.problems})
        )
    elif result.ok:
        click.echo(f"Audit log intact: {result.entries} entries verified.")
    else:
        click.echo(f"AUDIT LOG TAMPERED ({result.entries} entries):", err=True)
        for p in result.problems:
            click.echo(f"  {safe(p)}", err=True)
    if not result.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
