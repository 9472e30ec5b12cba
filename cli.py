"""photoconsent's command line: parse, call the library, print, map errors to exit codes.

Exit codes: 0 success; 1 a photo was withheld, a check failed, or an operational error
(``Error: ...`` on stderr); 2 a usage error. Data goes to stdout, diagnostics to stderr.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import unicodedata
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click
import numpy as np

from consent import audit, changes, enrolment, leavers, registry
from consent import export as subject_export
from consent import takedown as takedowns
from consent.errors import ConsentError
from consent.registry import Purpose
from consent.siblings import link_siblings, unlink_siblings
from consent.siblings import siblings as sibling_links
from consent.store import Store, init_data_dir, open_store, resolve_data_dir
from pipeline import __version__
from pipeline.analysis import pupils_in_classes
from pipeline.calibration import DEFAULT_TARGET
from pipeline.calibration import calibrate as calibrate_gallery
from pipeline.calibration import plot as plot_calibration
from pipeline.check import check as check_photos
from pipeline.contact_sheet import write_contact_sheet
from pipeline.detection import DetectionSettings, Thoroughness
from pipeline.errors import PipelineError
from pipeline.matching import DEFAULT_MARGIN, DEFAULT_TOLERANCE, MatchSettings
from pipeline.publish import (
    PhotoResult,
    PublishOptions,
    PublishReport,
    default_operator,
)
from pipeline.publish import (
    publish as publish_photos,
)
from pipeline.redaction import RedactionStyle
from pipeline.references import enrol_photo, references_in_folder
from pipeline.review import (
    ReviewBatch,
    create_batch,
    list_batches,
    load_batch,
    publish_batch,
    record_verdict,
)
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
        help="Detection passes: fast (one), standard (2x, mirror, turned when the photo "
        "has no orientation tag), paranoid (every pass, no second-look filtering).",
    )(f)
    f = click.option(
        "--class",
        "class_names",
        multiple=True,
        metavar="CLASS",
        help="Only match pupils of this class (repeatable): a smaller gallery means "
        "fewer wrong keeps.",
    )(f)
    f = click.option(
        "--pupils",
        "pupils_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Only match the pupil IDs listed in this file, one per line.",
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
    with _store(data_dir) as store:
        if remove:
            n = unlink_siblings(store, pupil_ids, operator=operator)
        else:
            n = link_siblings(store, pupil_ids, operator=operator)
    click.echo(f"{n} sibling link(s) {'removed' if remove else 'added'}.", err=True)


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
    candidates: frozenset[str] | None = None,
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
        candidates=candidates,
    )


def _candidates(
    store: Store, class_names: tuple[str, ...], pupils_file: Path | None
) -> frozenset[str] | None:
    """The pupils --class and --pupils name (together: either), or None for everyone."""
    if not class_names and pupils_file is None:
        return None
    chosen = set(pupils_in_classes(store, class_names)) if class_names else set()
    if pupils_file is not None:
        lines = pupils_file.read_text(encoding="utf-8-sig").splitlines()
        chosen |= {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    if not chosen:
        raise click.ClickException(
            "--class/--pupils name no pupil in the registry; check the class names "
            "(`photoconsent pupils list`) or the file."
        )
    return frozenset(chosen)


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
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the safe photos and report.json (created if missing). "
    "Required unless --review.",
)
@click.option(
    "--review",
    is_flag=True,
    help="Do not publish yet: save a review batch and a contact sheet; kept faces wait "
    "for a reviewer's approval (`photoconsent review ...`).",
)
@click.option(
    "--no-biometrics",
    is_flag=True,
    help="With --review: encode no face at all; everyone is blurred unless a reviewer "
    "un-blurs them as a named pupil.",
)
@click.option(
    "--event",
    default="event",
    show_default=True,
    help="Event name, used for output file names and the audit log.",
)
@click.option(
    "--destination",
    default=None,
    help="Where the photos will be published (URL or name, e.g. newsletter); recorded in "
    "the audit log so a takedown can say where to remove them from.",
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
    out: Path | None,
    review: bool,
    no_biometrics: bool,
    event: str,
    destination: str | None,
    style: str,
    fmt: str,
    on: Any,
    thoroughness: str,
    tolerance: float,
    class_names: tuple[str, ...],
    pupils_file: Path | None,
    data_dir: Path | None,
    operator: str,
    as_json: bool,
    quiet: bool,
    photos: tuple[Path, ...],
) -> None:
    """Publish photos for a purpose: blur everyone without consent, strip metadata.

    Writes <event>-0001.jpg... and report.json to --out, one audit entry per photo.
    Exits 0 when every photo was published, 1 when any was withheld (see report.json).

    With --review nothing is published yet: see `photoconsent review --help`.

    \b
    Examples:
        photoconsent publish --purpose website --event "Sports day 2026" \\
            --out to-upload/ camera-card/
        photoconsent publish --purpose press --review --class 3B camera-card/
    """
    if no_biometrics and not review:
        raise click.UsageError("--no-biometrics goes with --review.")
    if out is None and not review:
        raise click.UsageError("Missing option '--out' (needed unless --review).")
    options = _options(
        purpose,
        out or Path("."),
        event,
        operator,
        style,
        fmt,
        thoroughness,
        tolerance,
        on.date() if on else None,
    )
    with _store(data_dir) as store:
        candidates = _candidates(store, class_names, pupils_file)
        options = dataclasses.replace(options, destination=destination, candidates=candidates)
        if review:
            batch = create_batch(store, list(photos), options, biometrics=not no_biometrics)
            sheet = write_contact_sheet(store, batch)
            _print_batch(batch, sheet, as_json)
            return
        report = publish_photos(
            store, list(photos), options, progress=None if quiet else _print_progress
        )
    _print_report(report, options.out_dir, as_json)


def _print_batch(batch: ReviewBatch, sheet: Path, as_json: bool) -> None:
    faces = [f for _, f in batch.faces()]
    summary = {
        "batch": batch.batch_id,
        "contact_sheet": str(sheet),
        "photos": len(batch.photos),
        "faces": len(faces),
        "awaiting_approval": sum(1 for f in faces if f.decision == "kept" and not f.verdict),
        "needs_a_person": sum(1 for f in faces if f.needs_person),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"Review batch {batch.batch_id}: {summary['photos']} photos, {summary['faces']} faces, "
        f"{summary['awaiting_approval']} keeps awaiting approval, "
        f"{summary['needs_a_person']} near the tolerance.",
        err=True,
    )
    click.echo(f"Contact sheet (confidential): {sheet}", err=True)
    click.echo(
        f"Next: photoconsent review approve {batch.batch_id} FACE_ID... --reviewer NAME, "
        f"then photoconsent review publish {batch.batch_id} --out DIR",
        err=True,
    )


def _print_report(report: PublishReport, out: Path, as_json: bool) -> None:
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
    class_names: tuple[str, ...],
    pupils_file: Path | None,
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
        candidates = _candidates(store, class_names, pupils_file)
        options = dataclasses.replace(options, candidates=candidates)
        results = check_photos(store, list(photos), options)
    if as_json:
        click.echo(json.dumps([r.to_report() for r in results], indent=2, ensure_ascii=False))
    else:
        for r in results:
            verdict = "safe" if r.safe else "NOT SAFE: " + "; ".join(r.reasons)
            click.echo(f"{safe(r.input)}: {safe(verdict)}")
    if not all(r.safe for r in results):
        sys.exit(1)


@main.command()
@click.option(
    "--tolerance",
    type=click.FloatRange(0.1, 0.6),
    default=DEFAULT_TOLERANCE,
    show_default=True,
    help="The tolerance to mark on the plot and report on.",
)
@click.option(
    "--target",
    type=click.FloatRange(1e-9, 0.5),
    default=DEFAULT_TARGET,
    show_default=True,
    help="Acceptable false keeps per unenrolled face (1e-4 = 1 in 10,000).",
)
@click.option(
    "--gallery-size",
    type=click.IntRange(1),
    default=None,
    help="Pupils matched against per photo (default: all enrolled; a --class gallery is smaller).",
)
@click.option(
    "--plot",
    "plot_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also draw both distance distributions, tolerance marked, as a PNG.",
)
@data_dir_option
@json_option
@errors_to_exit
def calibrate(
    tolerance: float,
    target: float,
    gallery_size: int | None,
    plot_file: Path | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Measure matching on the school's own references and recommend a tolerance.

    Genuine distances (two references of one pupil) and impostor distances (references
    of different pupils, siblings apart) give, per tolerance, the share of pupils' own
    faces kept and the estimated false keeps per unenrolled face for the gallery size.

    \b
    Example:
        photoconsent calibrate --gallery-size 30 --plot calibration.png
    """
    with _store(data_dir) as store:
        gallery = enrolment.load_gallery(store)
        siblings = sibling_links(store.conn)
    cal = calibrate_gallery(gallery, gallery_size=gallery_size, target=target, siblings=siblings)
    if plot_file is not None:
        plot_calibration(cal, str(plot_file), tolerance)
    if as_json:
        click.echo(json.dumps(cal.to_json(), indent=2))
    else:
        click.echo(
            f"{cal.pupils} pupils enrolled, {cal.references} references; "
            f"{len(cal.genuine)} genuine, {len(cal.impostor)} impostor and "
            f"{len(cal.sibling)} sibling pairs; gallery size {cal.gallery_size}."
        )
        click.echo("tolerance\town faces kept\timpostor pairs within\tfalse keeps per face")
        for r in cal.rows:
            kept = "-" if r.genuine_kept is None else f"{r.genuine_kept:.1%}"
            mark = "  <- current" if abs(r.tolerance - tolerance) < 1e-9 else ""
            mark += "  <- recommended" if r.tolerance == cal.recommended else ""
            click.echo(
                f"{r.tolerance:.2f}\t\t{kept}\t\t{r.impostor_pairs_within}\t\t\t"
                f"{r.false_keep_per_face:.2e}{mark}"
            )
        if len(cal.sibling):
            click.echo(
                f"Siblings: {len(cal.sibling)} pairs, closest {float(cal.sibling.min()):.3f}, "
                f"median {float(np.median(cal.sibling)):.3f} (the sibling margin applies)."
            )
        rec = "none" if cal.recommended is None else f"{cal.recommended:.2f}"
        click.echo(f"Recommended tolerance for at most {target:g} per face: {rec}")
    for w in cal.warnings:
        click.echo(f"Warning: {w}", err=True)
    if plot_file is not None:
        click.echo(f"Plot: {plot_file.resolve()}", err=True)


@main.group()
def review() -> None:
    """Review batches: kept faces wait for a named person's approval.

    \b
    Example:
        photoconsent publish --purpose website --review --event "Fair" camera-card/
        photoconsent review approve 20261129-101500-ab12 F0001 --reviewer "J Smith"
        photoconsent review publish 20261129-101500-ab12 --out to-upload/
    """


reviewer_option = click.option(
    "--reviewer", required=True, help="Your name, recorded with every verdict in the audit log."
)


@review.command("list")
@data_dir_option
@json_option
@errors_to_exit
def review_list(data_dir: Path | None, as_json: bool) -> None:
    """List review batches and how far each has got.

    \b
    Example:
        photoconsent review list
    """
    with _store(data_dir) as store:
        batches = list_batches(store)
    rows = [
        {
            "batch": b.batch_id,
            "purpose": b.purpose,
            "event": b.event,
            "created": b.created_at,
            "biometrics": b.biometrics,
            "faces": sum(1 for _ in b.faces()),
            "awaiting_approval": sum(
                1 for _, f in b.faces() if f.decision == "kept" and not f.verdict
            ),
            "published_to": b.published_to,
        }
        for b in batches
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(
            f"{r['batch']}\t{r['purpose']}\t{safe(r['event'])}\t{r['created']}\t"
            f"faces={r['faces']}\tawaiting={r['awaiting_approval']}\t"
            f"{'published to ' + safe(r['published_to']) if r['published_to'] else 'open'}"
        )


@review.command("sheet")
@click.argument("batch_id")
@data_dir_option
@errors_to_exit
def review_sheet(batch_id: str, data_dir: Path | None) -> None:
    """Write the batch's contact sheet again (after verdicts) and print where it is.

    \b
    Example:
        photoconsent review sheet 20261129-101500-ab12
    """
    with _store(data_dir) as store:
        sheet = write_contact_sheet(store, load_batch(store, batch_id))
    click.echo(str(sheet))


def _verdict(
    data_dir: Path | None,
    batch_id: str,
    face_ids: tuple[str, ...],
    verdict: str,
    reviewer: str,
    as_pupil: str | None = None,
) -> None:
    with _store(data_dir) as store:
        record_verdict(
            store, batch_id, list(face_ids), verdict, reviewer=reviewer, as_pupil=as_pupil
        )
    click.echo(f"{verdict}: {', '.join(face_ids)} (by {safe(reviewer)})", err=True)


@review.command("approve")
@click.argument("batch_id")
@click.argument("face_ids", nargs=-1, required=True)
@reviewer_option
@data_dir_option
@errors_to_exit
def review_approve(
    batch_id: str, face_ids: tuple[str, ...], reviewer: str, data_dir: Path | None
) -> None:
    """Approve keeping matched faces clear (only approved keeps are published).

    \b
    Example:
        photoconsent review approve 20261129-101500-ab12 F0001 F0004 --reviewer "J Smith"
    """
    _verdict(data_dir, batch_id, face_ids, "approved", reviewer)


@review.command("reject")
@click.argument("batch_id")
@click.argument("face_ids", nargs=-1, required=True)
@reviewer_option
@data_dir_option
@errors_to_exit
def review_reject(
    batch_id: str, face_ids: tuple[str, ...], reviewer: str, data_dir: Path | None
) -> None:
    """Reject matches: these faces are blurred.

    \b
    Example:
        photoconsent review reject 20261129-101500-ab12 F0002 --reviewer "J Smith"
    """
    _verdict(data_dir, batch_id, face_ids, "rejected", reviewer)


@review.command("unblur")
@click.argument("batch_id")
@click.argument("face_ids", nargs=-1, required=True)
@click.option("--as", "as_pupil", required=True, help="The pupil ID the reviewer recognises.")
@reviewer_option
@data_dir_option
@errors_to_exit
def review_unblur(
    batch_id: str,
    face_ids: tuple[str, ...],
    as_pupil: str,
    reviewer: str,
    data_dir: Path | None,
) -> None:
    """Show faces clear as a named pupil (if their consent allows the purpose).

    The way to keep anyone in no-biometrics mode, or a face matching blurred.

    \b
    Example:
        photoconsent review unblur 20261129-101500-ab12 F0003 --as P001 --reviewer "J Smith"
    """
    _verdict(data_dir, batch_id, face_ids, "unblurred", reviewer, as_pupil)


@review.command("serve")
@click.argument("batch_id")
@reviewer_option
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@data_dir_option
@errors_to_exit
def review_serve(batch_id: str, reviewer: str, port: int, data_dir: Path | None) -> None:
    """Serve the contact sheet on this computer only, with approve/reject buttons.

    Stop it with Ctrl-C. Every click is audited under --reviewer.

    \b
    Example:
        photoconsent review serve 20261129-101500-ab12 --reviewer "J Smith"
    """
    from pipeline.review_server import serve_review  # the HTTP server only when asked for

    with _store(data_dir) as store:
        load_batch(store, batch_id)  # a clear error before the server starts
        try:
            serve_review(
                store,
                batch_id,
                reviewer=reviewer,
                port=port,
                ready=lambda url: click.echo(f"Review page: {url} (Ctrl-C to stop)", err=True),
            )
        except KeyboardInterrupt:
            click.echo("Stopped.", err=True)


@review.command("publish")
@click.argument("batch_id")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the safe photos and report.json.",
)
@click.option("--destination", default=None, help="Where the photos will be published.")
@date_option
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def review_publish(
    batch_id: str,
    out: Path,
    destination: str | None,
    on: Any,
    data_dir: Path | None,
    operator: str,
    as_json: bool,
) -> None:
    """Publish a reviewed batch: only approved (or un-blurred) faces stay clear.

    Consent is checked again as on --date (default today); a photo changed since review
    is withheld. Exit codes as for publish.

    \b
    Example:
        photoconsent review publish 20261129-101500-ab12 --out to-upload/
    """
    with _store(data_dir) as store:
        batch = load_batch(store, batch_id)
        opts = batch.options
        options = _options(
            batch.purpose,
            out,
            batch.event,
            operator,
            str(opts["style"]),
            str(opts["format"]).lower(),
            str(opts["thoroughness"]),
            float(opts["tolerance"]),  # type: ignore[arg-type]
            on.date() if on else None,
        )
        options = dataclasses.replace(options, destination=destination)
        report = publish_batch(store, batch_id, options)
    _print_report(report, out, as_json)


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


# --- consent changes, takedowns, leavers and subject access (issue 7) -----------------------


def _iso_date(value: Any) -> date | None:
    return None if value is None else value.date()


def _consent_summary(record: registry.ConsentRecord | None, on: date) -> dict[str, object]:
    allowed = {p.value for p in changes.allowed_purposes(record, on)}
    return {
        "purposes": {p.value: p.value in allowed for p in Purpose},
        "biometric_consent": bool(record and record.biometric_consent),
        "consent_date": None if record is None else record.consent_date.isoformat(),
        "expires_on": None
        if record is None or record.expires_on is None
        else record.expires_on.isoformat(),
        "expired": bool(record and record.expires_on and record.expires_on < on),
    }


def _echo_summary(pupil_id: str, summary: dict[str, Any]) -> None:
    allowed = [p for p, ok in summary["purposes"].items() if ok]
    expiry = f", use-by {summary['expires_on']}" if summary["expires_on"] else ""
    expired = " (EXPIRED: counts as withdrawn)" if summary["expired"] else ""
    click.echo(
        f"{safe(pupil_id)}: {', '.join(allowed) or 'no purposes'}; biometric "
        f"{'yes' if summary['biometric_consent'] else 'no'}{expiry}{expired}"
    )


def _takedown_table(items: list[takedowns.TakedownItem]) -> None:
    if not items:
        click.echo(
            "Nothing to take down: no published photo kept this pupil for a purpose "
            "they no longer have consent for.",
            err=True,
        )
        return
    click.echo("output\tevent\tpurpose\tdate\toperator\tdestination\tstatus")
    for i in items:
        status = f"replaced by {i.replaced_by}" if i.replaced_by else "TAKE DOWN"
        click.echo(
            f"{safe(i.output)}\t{safe(i.event)}\t{i.purpose}\t{i.publish_date}\t"
            f"{safe(i.operator)}\t{safe(i.destination or '-')}\t{safe(status)}"
        )


def _print_change(
    pupil_id: str, record: registry.ConsentRecord, as_json: bool, items: list[Any] | None
) -> None:
    summary = _consent_summary(record, date.today())
    if as_json:
        payload: dict[str, object] = {
            "pupil_id": pupil_id,
            "record_id": record.record_id,
            **summary,
        }
        if items is not None:
            payload["takedown"] = [i.to_json() for i in items]
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    click.echo(f"Recorded consent version {record.record_id}.", err=True)
    _echo_summary(pupil_id, summary)
    if items is not None:
        click.echo(f"Takedown list ({len(items)} published photo(s)):", err=True)
        _takedown_table(items)


def purposes_option(required: bool) -> Callable[[F], F]:
    def decorate(f: F) -> F:
        return click.option(
            "--purpose",
            "purposes",
            multiple=True,
            required=required,
            type=click.Choice([p.value for p in Purpose]),
            help="A purpose (repeat for several).",
        )(f)

    return decorate


def source_option(f: F) -> F:
    return click.option(
        "--source",
        required=True,
        help="The slip, letter or e-mail the change came from (kept in the history).",
    )(f)


@main.group("consent")
def consent_group() -> None:
    """Change one pupil's consent between imports, and see its history.

    \b
    Example:
        photoconsent consent withdraw P0001 --purpose website --source "letter 2026-03-02"
        photoconsent consent show P0001
    """


@consent_group.command("set")
@click.argument("pupil_id")
@purposes_option(required=False)
@click.option(
    "--biometric",
    is_flag=True,
    help="Grant biometric consent (separate written consent, Protection of Freedoms Act 2012).",
)
@click.option(
    "--expires",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Use-by date: after it the consent counts as withdrawn.",
)
@click.option("--no-expiry", is_flag=True, help="Remove the use-by date.")
@click.option(
    "--signed",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Date the parent signed (default: today).",
)
@source_option
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def consent_set(
    pupil_id: str,
    purposes: tuple[str, ...],
    biometric: bool,
    expires: Any,
    no_expiry: bool,
    signed: Any,
    source: str,
    data_dir: Path | None,
    operator: str,
    as_json: bool,
) -> None:
    """Grant purposes (or biometric consent, or a use-by date) to one pupil.

    Adds a new version of the consent record; the old one stays in the history.

    \b
    Example:
        photoconsent consent set P0001 --purpose press --source "slip 2026-03-02"
    """
    if not (purposes or biometric or expires or no_expiry):
        raise click.UsageError("Give --purpose, --biometric, --expires or --no-expiry.")
    if expires and no_expiry:
        raise click.UsageError("Give --expires or --no-expiry, not both.")
    change = changes.ConsentChange(
        kind=changes.ChangeKind.SET,
        source=source,
        grant=frozenset(Purpose(p) for p in purposes),
        biometric=True if biometric else None,
        expires_on=_iso_date(expires),
        clear_expiry=no_expiry,
        consent_date=_iso_date(signed),
    )
    with _store(data_dir) as store:
        record = changes.change_consent(store, pupil_id, change, operator=operator)
    _print_change(pupil_id, record, as_json, None)


@consent_group.command("withdraw")
@click.argument("pupil_id")
@purposes_option(required=False)
@click.option(
    "--all", "withdraw_all", is_flag=True, help="Withdraw every purpose and biometric consent."
)
@click.option(
    "--biometric",
    is_flag=True,
    help="Withdraw biometric consent (deletes the face encodings at once).",
)
@source_option
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def consent_withdraw(
    pupil_id: str,
    purposes: tuple[str, ...],
    withdraw_all: bool,
    biometric: bool,
    source: str,
    data_dir: Path | None,
    operator: str,
    as_json: bool,
) -> None:
    """Withdraw purposes (or biometric consent) for one pupil, effective at once.

    Then prints the takedown list: published photos that kept the pupil for a purpose
    they no longer have consent for (see `photoconsent takedown`).

    \b
    Example:
        photoconsent consent withdraw P0001 --purpose website --source "e-mail 2026-03-02"
    """
    if not (purposes or withdraw_all or biometric):
        raise click.UsageError("Give --purpose, --biometric or --all.")
    chosen = frozenset(Purpose) if withdraw_all else frozenset(Purpose(p) for p in purposes)
    change = changes.ConsentChange(
        kind=changes.ChangeKind.WITHDRAW,
        source=source,
        withdraw=chosen,
        biometric=False if (biometric or withdraw_all) else None,
    )
    with _store(data_dir) as store:
        record = changes.change_consent(store, pupil_id, change, operator=operator)
        items = takedowns.takedown_report(store, pupil_id)
    _print_change(pupil_id, record, as_json, items)


@consent_group.command("show")
@click.argument("pupil_id")
@date_option
@data_dir_option
@json_option
@errors_to_exit
def consent_show(pupil_id: str, on: Any, data_dir: Path | None, as_json: bool) -> None:
    """Print a pupil's current consent and every earlier version, oldest first.

    \b
    Example:
        photoconsent consent show P0001 --json
    """
    day = _iso_date(on) or date.today()
    with _store(data_dir) as store:
        versions = changes.history(store.conn, pupil_id)
        current = registry.current_consent(store.conn, pupil_id)
    summary = _consent_summary(current, day)
    history = [changes.version_json(v) for v in versions]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "pupil_id": pupil_id,
                    "on": day.isoformat(),
                    "current": summary,
                    "history": history,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    _echo_summary(pupil_id, summary)
    click.echo("History:")
    for v in history:
        what = ", ".join(f"{k} {old}->{new}" for k, (old, new) in v["changed"].items())
        click.echo(
            f"  v{v['record_id']}\t{v['recorded_at']}\t{safe(v['recorded_by'])}\t{v['kind']}\t"
            f"{safe(v['source'])}\t{safe(what) or 'no change'}"
        )


@main.command()
@click.argument("pupil_id")
@purposes_option(required=False)
@date_option
@click.option(
    "--republish",
    is_flag=True,
    help="Publish replacements of the listed photos "
    "from their originals under current consent (the pupil blurred).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the replacements (needed with --republish).",
)
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def takedown(
    pupil_id: str,
    purposes: tuple[str, ...],
    on: Any,
    republish: bool,
    out: Path | None,
    data_dir: Path | None,
    operator: str,
    as_json: bool,
) -> None:
    """List published photos that kept a pupil for a purpose they no longer consent to.

    From the audit log: output file, event, purpose, date, operator and destination.
    With --republish, replacements with the pupil blurred are written to --out and
    audited as replacements; exits 1 if any original was missing or withheld.

    \b
    Example:
        photoconsent takedown P0001
        photoconsent takedown P0001 --republish --out replacements/
    """
    if republish and out is None:
        raise click.UsageError("--republish needs --out DIR for the replacements.")
    day = _iso_date(on) or date.today()
    chosen = [Purpose(p) for p in purposes] or None
    outcomes: list[takedowns.RepublishOutcome] = []
    with _store(data_dir) as store:
        items = takedowns.takedown_report(store, pupil_id, on=day, purposes=chosen)
        if republish and out is not None:
            outcomes = takedowns.republish(store, pupil_id, items, out, operator=operator, on=day)
            items = takedowns.takedown_report(store, pupil_id, on=day, purposes=chosen)
    if as_json:
        payload: dict[str, object] = {"pupil_id": pupil_id, "items": [i.to_json() for i in items]}
        if republish:
            payload["republish"] = [o.to_json() for o in outcomes]
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        _takedown_table(items)
        for o in outcomes:
            click.echo(
                f"{safe(o.item.output)}: {o.status}"
                + (f" -> {safe(o.new_output)}" if o.new_output else f" ({safe(o.reason)})"),
                err=True,
            )
    if any(o.status != "replaced" for o in outcomes):
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
    with _store(data_dir) as store:
        purged = leavers.leave(store, pupil_id, left.date(), operator=operator)
    _print_purged(purged, as_json)


def _print_purged(purged: list[leavers.Purged], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([p.to_json() for p in purged], indent=2, ensure_ascii=False))
        return
    for p in purged:
        click.echo(f"{safe(p.pupil_id)}\t{p.category}\t{p.deleted} deleted\t{safe(p.reason)}")
    click.echo(f"{len(purged)} deletion(s).", err=True)


@main.command()
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
    with _store(data_dir) as store:
        purged = leavers.purge(store, operator=operator, today=_iso_date(on), dry_run=dry_run)
    _print_purged(purged, as_json)


@main.group("retention")
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
    with _store(data_dir) as store:
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
    with _store(data_dir) as store:
        leavers.set_retention(
            store, category, None if days == "never" else int(days), operator=operator
        )
    click.echo(
        f"{category}: kept {days} day(s) after leaving."
        if days != "never"
        else f"{category}: kept until erased.",
        err=True,
    )


@main.command()
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
    with _store(data_dir) as store:
        purged = leavers.forget(store, pupil_id, operator=operator, source=source)
        items = takedowns.takedown_report(store, pupil_id)
    _print_purged(purged, as_json)
    if not as_json:
        click.echo(
            f"{safe(pupil_id)} erased. {len(items)} published photo(s) to take down: "
            f"`photoconsent takedown {safe(pupil_id)}`.",
            err=True,
        )


@main.command("export")
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
    help="Folder of published photos to copy the child's from (repeatable).",
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

    Holds the consent history, the published (redacted) photos the child appears in and
    what biometric data is held (the fact, not the data). Files are readable by you only.

    \b
    Example:
        photoconsent export P0001 --out sar-P0001/ --photos web/
        photoconsent export P0001 --transfer --out transfer-P0001/
    """
    with _store(data_dir) as store:
        result = subject_export.export_pupil(
            store, pupil_id, out, operator=operator, transfer=transfer, photo_folders=photo_dirs
        )
    summary = {
        "folder": str(result.folder.resolve()),
        "files": result.files,
        "photos_published": result.photos_published,
        "photos_copied": result.photos_copied,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"Wrote {safe(summary['folder'])}: {', '.join(result.files)}", err=True)
        if not transfer:
            click.echo(
                f"{result.photos_copied} of {result.photos_published} published "
                "photo(s) copied (use --photos DIR to find more).",
                err=True,
            )


if __name__ == "__main__":
    main()
