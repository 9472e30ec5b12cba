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
from consent import enrolment
from consent.errors import ConsentError
from consent.store import Store
from publishing.options import PublishOptions
from publishing.review.batch import (
    Verdict,
    list_batches,
    load_batch,
    publish_batch,
    record_verdict,
)
from publishing.review.by_pupil import (
    ReferenceImage,
    approve_pupil,
    batch_pupils,
    group_by_pupil,
    jpeg_thumbnail,
    unblur_as_named,
)
from publishing.review.contact_sheet import write_contact_sheet
from publishing.review.picker import pick_from_register, pupil_label


@click.group()
def review() -> None:
    """Review batches: kept and uncertain faces wait for a named person's approval.

    The quick way is by pupil: `review serve` shows each pupil's faces beside their
    reference photo, to approve all and reject the odd one out.

    \b
    Example:
        photoconsent publish --purpose website --review --event "Fair" camera-card/
        photoconsent review serve 20261129-101500-ab12 --reviewer "J Smith" --out to-upload/
        photoconsent review pupils 20261129-101500-ab12
        photoconsent review approve-pupil 20261129-101500-ab12 --name "alex ex" --reviewer "J Smith"
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
    """Approve keeping matched or uncertain faces clear (only approved faces are
    published clear; an uncertain one as the pupil it was proposed as).

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
    """Reject matches (or uncertain faces): these faces are blurred.

    \b
    Example:
        photoconsent review reject 20261129-101500-ab12 F0002 --reviewer "J Smith"
    """
    _verdict(data_dir, batch_id, face_ids, Verdict.REJECTED, reviewer)


@review.command("pupils")
@click.argument("batch_id")
@data_dir_option
@json_option
@errors_to_exit
def review_pupils(batch_id: str, data_dir: Path | None, as_json: bool) -> None:
    """List the batch by pupil: each pupil's faces, recognised or uncertain.

    \b
    Example:
        photoconsent review pupils 20261129-101500-ab12
    """
    with open_data_store(data_dir) as store:
        batch = load_batch(store, batch_id)
        groups = group_by_pupil(batch, batch_pupils(store, batch))
    rows = [
        {
            "pupil_id": g.pupil_id,
            "name": g.name,
            "class": g.pupil.class_name if g.pupil else None,
            "faces": [
                {
                    "face_id": f.face.face_id,
                    "photo": Path(f.photo.input).name,
                    "kind": f.kind.value,
                    "verdict": None if f.face.verdict is None else f.face.verdict.value,
                    "mark": f.mark,
                }
                for f in g.faces
            ],
            "waiting": len(g.awaiting),
            "same_photo": g.same_photo(),
        }
        for g in groups
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("No face in this batch is proposed as a pupil.", err=True)
    for g, r in zip(groups, rows, strict=True):
        who = pupil_label(g.pupil) if g.pupil else f"{g.pupil_id} (not in the registry)"
        faces = " ".join(
            f"{f['face_id']}({f['kind']}{', low quality' if f['mark'] else ''}"
            f"{', ' + f['verdict'] if f['verdict'] else ''})"
            for f in r["faces"]
        )
        click.echo(f"{safe(who)}\twaiting={r['waiting']}\t{faces}")


name_option = click.option(
    "--name",
    "name",
    help='A few letters of the pupil\'s first and last name (e.g. "alex ex"); refused if '
    "they fit more than one pupil.",
)


@review.command("approve-pupil")
@click.argument("batch_id")
@name_option
@click.option(
    "--except",
    "except_faces",
    multiple=True,
    metavar="FACE_ID",
    help="A face of theirs not to approve (repeat for more).",
)
@reviewer_option
@data_dir_option
@errors_to_exit
def review_approve_pupil(
    batch_id: str,
    name: str | None,
    except_faces: tuple[str, ...],
    reviewer: str,
    data_dir: Path | None,
) -> None:
    """Approve all of one pupil's faces still waiting, except those you name.

    Rejected faces stay rejected. Two faces of one photo are never both approved as one
    child: reject the one that is not them first.

    \b
    Example:
        photoconsent review approve-pupil 20261129-101500-ab12 --name "alex ex" \\
            --except F0007 --reviewer "J Smith"
    """
    if not name:
        raise click.UsageError("Say whose faces with --name (a few letters of their name).")
    with open_data_store(data_dir) as store:
        pupil = pick_from_register(store, name)
        approved = approve_pupil(
            store, batch_id, pupil.pupil_id, reviewer=reviewer, except_faces=except_faces
        )
    click.echo(
        f"approved: {', '.join(approved)} as {safe(pupil_label(pupil))} (by {safe(reviewer)})",
        err=True,
    )


@review.command("unblur")
@click.argument("batch_id")
@click.argument("face_ids", nargs=-1, required=True)
@name_option
@click.option(
    "--as",
    "as_pupil",
    default=None,
    help="The pupil ID instead of --name (for scripts; people use --name).",
)
@reviewer_option
@data_dir_option
@errors_to_exit
def review_unblur(
    batch_id: str,
    face_ids: tuple[str, ...],
    name: str | None,
    as_pupil: str | None,
    reviewer: str,
    data_dir: Path | None,
) -> None:
    """Show faces clear as a named pupil (if their consent allows the purpose).

    The way to keep anyone in no-biometrics mode, or a face matching blurred.

    \b
    Example:
        photoconsent review unblur 20261129-101500-ab12 F0003 --name "alex ex" \\
            --reviewer "J Smith"
    """
    if (name is None) == (as_pupil is None):
        raise click.UsageError("Say who it is with --name (a few letters of their name).")
    if name is not None:
        with open_data_store(data_dir) as store:
            _, pupil = unblur_as_named(store, batch_id, face_ids, name, reviewer=reviewer)
        click.echo(
            f"unblurred: {', '.join(face_ids)} as {safe(pupil_label(pupil))} (by {safe(reviewer)})",
            err=True,
        )
        return
    _verdict(data_dir, batch_id, face_ids, Verdict.UNBLURRED, reviewer, as_pupil)


@review.command("serve")
@click.argument("batch_id")
@reviewer_option
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help='Folder to publish into from the page\'s "Publish the batch" button (without it '
    "the page has no such button).",
)
@click.option("--destination", default=None, help="Where the photos will be published.")
@data_dir_option
@errors_to_exit
def review_serve(
    batch_id: str,
    reviewer: str,
    port: int,
    out: Path | None,
    destination: str | None,
    data_dir: Path | None,
) -> None:
    """Serve the review page on this computer only: by pupil, with approve all, reject,
    un-blur by name, and publish.

    Stop it with Ctrl-C. Every click is audited under --reviewer; a publish from the
    page is recorded under --reviewer too, with consent checked on that day.

    \b
    Example:
        photoconsent review serve 20261129-101500-ab12 --reviewer "J Smith" --out to-upload/
    """
    from publishing.review.server import serve_review  # the HTTP server only when asked for

    with open_data_store(data_dir) as store:
        batch = load_batch(store, batch_id)  # a clear error before the server starts

        def options() -> PublishOptions:
            assert out is not None
            return batch.options.publish_options(
                purpose=batch.purpose,
                out_dir=out,
                event=batch.event,
                operator=reviewer,
                on=date.today(),
                destination=destination,
            )

        try:
            serve_review(
                store,
                batch_id,
                reviewer=reviewer,
                port=port,
                ready=lambda url: click.echo(f"Review page: {url} (Ctrl-C to stop)", err=True),
                reference_image=reference_provider(store),
                publish_options=None if out is None else options,
            )
        except KeyboardInterrupt:
            click.echo("Stopped.", err=True)


def reference_provider(store: Store) -> ReferenceImage:
    """The review page's reference photos: each pupil's most recent stored face crop as
    a small JPEG, decrypted when the page is drawn and held in memory only; None for a
    pupil without one (enrolled before crops were kept) or without biometric consent."""

    def reference_image(pupil_id: str) -> bytes | None:
        try:
            crops = enrolment.reference_crops(store, pupil_id)
        except ConsentError:  # not in the register, or no biometric consent any more
            return None
        if not crops:
            return None
        newest = max(crops, key=lambda c: (c.taken_on or c.enrolled_at[:10], c.enrolled_at))
        return jpeg_thumbnail(newest.pixels)

    return reference_image


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
