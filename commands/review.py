"""The ``review`` group: kept faces wait for a named person's approval."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click

from commands._shared import (
    caption_options,
    caption_settings,
    data_dir_option,
    date_option,
    errors_to_exit,
    json_option,
    open_data_store,
    operator_option,
    option_date,
    print_publish_report,
    safe,
)
from publishing.review.batch import (
    Verdict,
    list_batches,
    load_batch,
    publish_batch,
    record_verdict,
)
from publishing.review.contact_sheet import write_contact_sheet


@click.group()
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
    with open_data_store(data_dir) as store:
        batches = list_batches(store)
    rows = [
        {
            "batch": b.batch_id,
            "purpose": b.purpose.value,
            "event": b.event,
            "created": b.created_at,
            "biometrics": b.biometrics,
            "faces": sum(1 for _ in b.faces()),
            "awaiting_approval": b.awaiting_approval(),
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
    with open_data_store(data_dir) as store:
        sheet = write_contact_sheet(store, load_batch(store, batch_id))
    click.echo(str(sheet))


def _verdict(
    data_dir: Path | None,
    batch_id: str,
    face_ids: tuple[str, ...],
    verdict: Verdict,
    reviewer: str,
    as_pupil: str | None = None,
) -> None:
    with open_data_store(data_dir) as store:
        record_verdict(
            store, batch_id, list(face_ids), verdict, reviewer=reviewer, as_pupil=as_pupil
        )
    click.echo(f"{verdict.value}: {', '.join(face_ids)} (by {safe(reviewer)})", err=True)


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
    _verdict(data_dir, batch_id, face_ids, Verdict.APPROVED, reviewer)


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
    _verdict(data_dir, batch_id, face_ids, Verdict.REJECTED, reviewer)


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
    _verdict(data_dir, batch_id, face_ids, Verdict.UNBLURRED, reviewer, as_pupil)


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
    from publishing.review.server import serve_review  # the HTTP server only when asked for

    with open_data_store(data_dir) as store:
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
@caption_options
@date_option
@data_dir_option
@operator_option
@json_option
@errors_to_exit
def review_publish(
    batch_id: str,
    out: Path,
    destination: str | None,
    captions_file: Path | None,
    batch_caption: str | None,
    embedded_captions: bool,
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
    with open_data_store(data_dir) as store:
        batch = load_batch(store, batch_id)
        captioning = caption_settings(captions_file, batch_caption, embedded_captions)
        options = batch.options.publish_options(
            purpose=batch.purpose,
            out_dir=out,
            event=batch.event,
            operator=operator,
            on=option_date(on) or date.today(),
            destination=destination,
            **captioning,
        )
        report = publish_batch(store, batch_id, options)
    print_publish_report(report, as_json)
