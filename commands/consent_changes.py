"""Consent changes between imports (the ``consent`` group) and ``takedown`` (issue 7)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from commands._shared import (
    F,
    data_dir_option,
    date_option,
    errors_to_exit,
    json_option,
    open_data_store,
    operator_option,
    option_date,
    safe,
)
from consent import changes, registry
from consent import takedown as takedowns
from consent.registry import Purpose
from publishing.republish import RepublishOutcome, RepublishStatus
from publishing.republish import republish as republish_photos


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
            f"{safe(i.where)}\t{safe(i.event)}\t{i.purpose}\t{i.publish_date}\t"
            f"{safe(i.operator)}\t{safe(i.destination or '-')}\t{safe(status)}"
        )
    for i in items:
        if not i.replaced_by:
            click.echo(f"  {safe(i.action)}", err=True)


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


@click.group("consent")
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
        expires_on=option_date(expires),
        clear_expiry=no_expiry,
        consent_date=option_date(signed),
    )
    with open_data_store(data_dir) as store:
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
    with open_data_store(data_dir) as store:
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
    day = option_date(on) or date.today()
    with open_data_store(data_dir) as store:
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


@click.command()
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
    day = option_date(on) or date.today()
    chosen = [Purpose(p) for p in purposes] or None
    outcomes: list[RepublishOutcome] = []
    with open_data_store(data_dir) as store:
        items = takedowns.takedown_report(store, pupil_id, on=day, purposes=chosen)
        if republish and out is not None:
            outcomes = republish_photos(store, pupil_id, items, out, operator=operator, on=day)
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
                f"{safe(o.item.output)}: {o.status.value}"
                + (f" -> {safe(o.new_output)}" if o.new_output else f" ({safe(o.reason)})"),
                err=True,
            )
    if any(o.status is not RepublishStatus.REPLACED for o in outcomes):
        sys.exit(1)
