"""``names show`` / ``names set``: how captions may name pupils, per purpose (issue 5)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from commands._shared import (
    data_dir_option,
    errors_to_exit,
    json_option,
    open_data_store,
    operator_option,
)
from consent import name_policy as policies
from consent.name_policy import NamePolicy
from consent.registry import Purpose

_MEANING = {
    NamePolicy.FULL: "full names of shown pupils",
    NamePolicy.FIRST_ONLY: "first names only",
    NamePolicy.NONE: "no names",
}


@click.group("names")
def names_group() -> None:
    """The caption name policy per purpose: full names, first names only, or none.

    Whatever the policy, a caption never names a pupil whose face was blurred or who has
    no consent for the purpose.

    \b
    Example:
        photoconsent names show
        photoconsent names set press none
    """


@names_group.command("show")
@data_dir_option
@json_option
@errors_to_exit
def names_show(data_dir: Path | None, as_json: bool) -> None:
    """Print each purpose's name policy (and whether it is the default).

    \b
    Example:
        photoconsent names show --json
    """
    with open_data_store(data_dir) as store:
        current = policies.name_policies(store.conn)
        defaults = {p: policies.is_default(store.conn, p) for p in Purpose}
    if as_json:
        click.echo(
            json.dumps(
                {p.value: {"policy": v.value, "default": defaults[p]} for p, v in current.items()}
            )
        )
        return
    for purpose, policy in current.items():
        note = " (default)" if defaults[purpose] else ""
        click.echo(f"{purpose.value}\t{policy.value}\t{_MEANING[policy]}{note}")


@names_group.command("set")
@click.argument("purpose", type=click.Choice([p.value for p in Purpose]))
@click.argument("policy", type=click.Choice([p.value for p in NamePolicy]))
@click.option(
    "--allow-full-names",
    is_flag=True,
    help="Allow 'full' for a purpose published outside the school (website, press...).",
)
@data_dir_option
@operator_option
@errors_to_exit
def names_set(
    purpose: str, policy: str, allow_full_names: bool, data_dir: Path | None, operator: str
) -> None:
    """Set how captions for PURPOSE name pupils: full, first (first names only) or none.

    \b
    Example:
        photoconsent names set social_media none
    """
    chosen = NamePolicy(policy)
    with open_data_store(data_dir) as store:
        previous = policies.set_name_policy(
            store,
            Purpose(purpose),
            chosen,
            operator=operator,
            allow_full_external=allow_full_names,
        )
    click.echo(f"{purpose}: {_MEANING[chosen]} (was {previous.value}).", err=True)
    if chosen is NamePolicy.FULL and Purpose(purpose) not in policies.INTERNAL:
        click.echo(f"WARNING: {purpose} captions will now carry children's full names.", err=True)
