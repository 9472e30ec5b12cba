"""Publishing and checking photos: ``publish``, ``check`` and ``calibrate``."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from commands._shared import (
    candidate_pupils,
    caption_options,
    caption_settings,
    data_dir_option,
    date_option,
    errors_to_exit,
    json_option,
    matching_options,
    open_data_store,
    operator_option,
    option_date,
    print_publish_report,
    publish_options,
    purpose_option,
    safe,
)
from commands.progress import ProgressBar
from consent import enrolment
from consent.siblings import siblings as sibling_links
from pipeline.calibration import DEFAULT_TARGET
from pipeline.calibration import calibrate as calibrate_gallery
from pipeline.calibration import plot as plot_calibration
from pipeline.recognisers import match_settings
from pipeline.redaction import RedactionStyle
from publishing.check import check as check_photos
from publishing.cluster import ClientCerts, DaskCluster, check_address
from publishing.enrolling import recogniser_name
from publishing.options import FULL_SIZE
from publishing.publish import publish as publish_photos
from publishing.report import PhotoResult, PhotoStatus
from publishing.review.batch import ReviewBatch, create_batch
from publishing.review.contact_sheet import write_contact_sheet


class _MaxSide(click.ParamType):
    """``--max-side``: a number of pixels (64 or more) or ``full`` (the photo's own size)."""

    name = "max-side"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == "full":
            return FULL_SIZE
        try:
            side = int(text)
        except ValueError:
            self.fail(f"{value!r} is not a number of pixels or 'full'.", param, ctx)
        if side < 64:
            self.fail(f"{side} px is too small; give 64 or more, or 'full'.", param, ctx)
        return side


def _progress_bar() -> Any:
    """A progress callback drawing a bar on stderr when it is a terminal, else None
    (a log file or a scheduled task gets the summary only)."""
    if not sys.stderr.isatty():
        return None
    bar = ProgressBar(sys.stderr)

    def update(done: int, total: int, result: PhotoResult) -> None:
        bar.update(
            done, total, resumed=result.resumed, withheld=result.status is PhotoStatus.WITHHELD
        )

    return update


@click.command()
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
@caption_options
@date_option
@matching_options
@data_dir_option
@operator_option
@json_option
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Photos processed at once, one process each (default: one per usable core, as "
    "many as free memory allows; each needs about 1.1 GB, 1.6 GB is set aside).",
)
@click.option(
    "--cluster",
    "cluster_address",
    default=None,
    metavar="tls://HOST:PORT",
    help="Process the photos on a Dask cluster's workers instead of this computer's cores "
    "(tls:// only; see docs/cluster.md). Outputs, report and audit stay on this computer.",
)
@click.option(
    "--cluster-certs",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="With --cluster: the folder with ca.pem, client.pem and client-key.pem made by "
    "`photoconsent cluster certs`.",
)
@click.option(
    "--shared-storage",
    is_flag=True,
    help="With --cluster: the photos sit on storage every worker reads under the same "
    "path; send workers each photo's path instead of its bytes.",
)
@click.option(
    "--max-side",
    type=_MaxSide(),
    default=None,
    metavar="PIXELS|full",
    help="Long side of the published photos, or 'full' for their own size (default: 2560 "
    "for website and social media, full size for press, prospectus and internal display). "
    "Faces are found on the photo at this size.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar on a terminal.")
@click.argument(
    "photos",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, path_type=Path),
)
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
    captions_file: Path | None,
    batch_caption: str | None,
    embedded_captions: bool,
    on: Any,
    thoroughness: str,
    tolerance: float | None,
    class_names: tuple[str, ...],
    pupils_file: Path | None,
    data_dir: Path | None,
    operator: str,
    as_json: bool,
    workers: int | None,
    cluster_address: str | None,
    cluster_certs: Path | None,
    shared_storage: bool,
    max_side: int | None,
    quiet: bool,
    photos: tuple[Path, ...],
) -> None:
    """Publish photos for a purpose: blur everyone without consent, strip metadata.

    Writes <event>-0001.jpg... and report.json to --out, one audit entry per photo.
    Exits 0 when every photo was published, 1 when any was withheld (see report.json).

    Captions (--captions, --caption, or the photo's own caption fields, in that order)
    are rewritten for the purpose's name policy: pupils blurred in the photo or without
    consent are not named, kept pupils only as the policy allows. They go into
    captions.csv beside the photos, never into an image.

    Interrupted (Ctrl-C, power cut, killed)? Run the same command again: photos already
    published are not redone, the rest are finished, and report.json covers the whole
    batch. A different batch into the same folder keeps the earlier report as
    report-<time>.json. Two publishes into one folder at once are refused.

    With --review nothing is published yet: see `photoconsent review --help`.

    With --cluster the per-photo work runs on a Dask cluster's workers over TLS (see
    `photoconsent cluster certs --help` and docs/cluster.md); the same command resumes
    a batch begun with or without it.

    \b
    Examples:
        photoconsent publish --purpose website --event "Sports day 2026" \\
            --out to-upload/ camera-card/
        photoconsent publish --purpose press --captions captions.csv \\
            --out to-press/ camera-card/
        photoconsent publish --purpose press --review --class 3B camera-card/
        photoconsent publish --purpose website --class 3B --out to-upload/ \\
            --cluster tls://photo-server:8786 --cluster-certs certs/ camera-card/
    """
    if no_biometrics and not review:
        raise click.UsageError("--no-biometrics goes with --review.")
    if out is None and not review:
        raise click.UsageError("Missing option '--out' (needed unless --review).")
    if cluster_address is None and (cluster_certs is not None or shared_storage):
        raise click.UsageError("--cluster-certs and --shared-storage go with --cluster.")
    if cluster_address is not None:
        if review:
            raise click.UsageError("--cluster publishes; a --review batch is made here.")
        if workers is not None:
            raise click.UsageError(
                "--workers is for this computer; with --cluster the workers are the cluster's."
            )
        if cluster_certs is None:
            raise click.UsageError(
                "--cluster needs --cluster-certs DIR (see `photoconsent cluster certs --help`)."
            )
        check_address(cluster_address)  # refused before anything is read or connected
    if review and (captions_file is not None or batch_caption is not None):
        raise click.UsageError(
            "With --review, give --captions/--caption to `photoconsent review publish`."
        )
    if review and max_side is not None:
        raise click.UsageError(
            "--max-side goes with publishing; a reviewed batch is published at its purpose's size."
        )
    captioning = caption_settings(captions_file, batch_caption, embedded_captions)
    with open_data_store(data_dir) as store:
        options = publish_options(
            purpose=purpose,
            out=out or Path("."),
            on=option_date(on),
            event=event,
            operator=operator,
            style=style,
            fmt=fmt,
            thoroughness=thoroughness,
            tolerance=tolerance,
            recogniser=recogniser_name(store),
            candidates=candidate_pupils(store, class_names, pupils_file),
            destination=destination,
            workers=workers,
            captioning=captioning,
        )
        if max_side is not None:
            options = dataclasses.replace(options, max_side=max_side)
        if review:
            batch = create_batch(store, list(photos), options, biometrics=not no_biometrics)
            sheet = write_contact_sheet(store, batch)
            _print_batch(batch, sheet, as_json)
            return
        bar = None if quiet else _progress_bar()
        if cluster_address is None:
            report = publish_photos(store, list(photos), options, progress=bar)
        else:
            assert cluster_certs is not None
            certs = ClientCerts.in_folder(cluster_certs)
            click.echo(f"Connecting to the cluster at {safe(cluster_address)}...", err=True)
            with DaskCluster(
                cluster_address,
                certs,
                detection=options.detection,
                shared_storage=shared_storage,
            ) as cluster:
                click.echo(f"Cluster ready: {cluster.workers} worker(s).", err=True)
                report = publish_photos(store, list(photos), options, progress=bar, mapper=cluster)
    print_publish_report(report, as_json)


def _print_batch(batch: ReviewBatch, sheet: Path, as_json: bool) -> None:
    faces = [f for _, f in batch.faces()]
    summary = {
        "batch": batch.batch_id,
        "contact_sheet": str(sheet),
        "photos": len(batch.photos),
        "faces": len(faces),
        "awaiting_approval": batch.awaiting_approval(),
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
        f"Next: review it pupil by pupil with photoconsent review serve {batch.batch_id} "
        f"--reviewer NAME (or photoconsent review pupils {batch.batch_id}), "
        f"then photoconsent review publish {batch.batch_id} --out DIR",
        err=True,
    )


@click.command()
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
    tolerance: float | None,
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
    with open_data_store(data_dir) as store:
        options = publish_options(
            purpose=purpose,
            out=Path("."),
            on=option_date(on),
            event="check",
            operator="check",
            thoroughness=thoroughness,
            tolerance=tolerance,
            recogniser=recogniser_name(store),
            candidates=candidate_pupils(store, class_names, pupils_file),
        )
        results = check_photos(store, list(photos), options)
    if as_json:
        click.echo(json.dumps([r.to_report() for r in results], indent=2, ensure_ascii=False))
    else:
        for r in results:
            verdict = "safe" if r.safe else "NOT SAFE: " + "; ".join(r.reasons)
            click.echo(f"{safe(r.input)}: {safe(verdict)}")
    if not all(r.safe for r in results):
        sys.exit(1)


@click.command()
@click.option(
    "--tolerance",
    type=click.FloatRange(0.1, 0.6),
    default=None,
    help="The tolerance to mark on the plot and report on (default: the recogniser's own).",
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
    tolerance: float | None,
    target: float,
    gallery_size: int | None,
    plot_file: Path | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Measure matching on the school's own references and recommend a tolerance.

    Genuine distances (two references of one pupil) and impostor distances (references
    of different pupils, siblings apart), by the data directory's recogniser, give, per
    tolerance, the share of pupils' own faces kept and the estimated false keeps per
    unenrolled face for the gallery size. The defaults' own rule (keep at a false match
    rate of 1 in 10,000 pairs, review at 1 in 1,000) is applied to the school's pupils too,
    with a warning when it comes out stricter than the default.

    \b
    Example:
        photoconsent calibrate --gallery-size 30 --plot calibration.png
    """
    with open_data_store(data_dir) as store:
        recogniser = recogniser_name(store)
        gallery = enrolment.load_gallery(store, recogniser=recogniser)
        siblings = sibling_links(store.conn)
    default = match_settings(recogniser)
    tolerance = default.tolerance if tolerance is None else tolerance
    cal = calibrate_gallery(
        gallery,
        gallery_size=gallery_size,
        target=target,
        siblings=siblings,
        recogniser=recogniser,
        default_tolerance=default.tolerance,
    )
    if plot_file is not None:
        plot_calibration(cal, str(plot_file), tolerance)
    if as_json:
        click.echo(json.dumps(cal.to_json(), indent=2))
    else:
        click.echo(
            f"Recogniser {recogniser} (default tolerance {default.tolerance:.2f}, "
            f"review band {default.review:.2f}). "
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
        if cal.rule_tolerance is not None and cal.rule_review is not None:
            click.echo(
                f"The defaults' rule on your pupils: tolerance {cal.rule_tolerance:.3f} "
                f"(1 in 10,000 pairs of different pupils within it), review band "
                f"{cal.rule_review:.3f} (1 in 1,000)."
            )
    for w in cal.warnings:
        click.echo(f"Warning: {w}", err=True)
    if plot_file is not None:
        click.echo(f"Plot: {plot_file.resolve()}", err=True)
