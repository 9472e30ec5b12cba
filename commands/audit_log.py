"""The ``audit`` group: print and verify the tamper-evident audit log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from commands._shared import (
    data_dir_option,
    errors_to_exit,
    json_option,
    open_data_store,
    safe,
)
from consent import audit


@click.group("audit")
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
    with open_data_store(data_dir) as store:
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
    with open_data_store(data_dir) as store:
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
