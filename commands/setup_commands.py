"""Setting up and finding a data directory: ``init``, ``where`` and ``keys move``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from commands._shared import (
    chosen_data_dir_choice,
    data_dir_option,
    errors_to_exit,
    json_option,
    operator_option,
    safe,
)
from consent import crypto, locations
from consent.keys import move_keys
from consent.medical.key import medical_key_path
from consent.store import init_data_dir

BACKUP_ADVICE = (
    "Back up the data directory and the key directory separately, to different places: "
    "the data directory alone holds the register, encrypted faces and the audit log, "
    "unreadable without the keys; the key directory alone holds no pupil data. Without "
    "the keys enrolled faces and medical records cannot be read and the audit log cannot "
    "be checked."
)


@click.command()
@data_dir_option
@click.option(
    "--key-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to keep the keys (secret.key, medical.key). Default: a folder of its own in "
    "your per-user settings folder, outside the data directory.",
)
@errors_to_exit
def init(data_dir: Path | None, key_dir: Path | None) -> None:
    """Create the data directory, its keys and database (safe to run again).

    The keys go outside the data directory, so a backup of one never holds the other.
    The first data directory made becomes your default, found from any folder.

    \b
    Example:
        photoconsent init --data-dir D:\\photoconsent --key-dir E:\\photoconsent-keys
    """
    choice = chosen_data_dir_choice(data_dir)
    target = choice.path
    db = init_data_dir(target, key_dir=key_dir)
    click.echo(f"Data directory ready: {safe(target)}", err=True)
    click.echo(f"Database: {safe(db)}", err=True)
    click.echo(f"Keys: {safe(crypto.key_path(target).parent)}", err=True)
    if key_dir is not None and locations.key_dir(target).absolute() != key_dir.absolute():
        click.echo(
            "The data directory already had its keys elsewhere; move them with "
            "`photoconsent keys move --to DIR`.",
            err=True,
        )
    default = locations.default_data_dir()
    if default is None or not (default / locations.DB_NAME).is_file():
        config = locations.set_default_data_dir(target)
        click.echo(f"Default data directory recorded in {safe(config)}", err=True)
    elif default.absolute() != target:
        click.echo(
            f"Your default data directory stays {safe(default)}; use --data-dir or "
            f"${locations.HOME_ENV} for this one.",
            err=True,
        )
    click.echo(BACKUP_ADVICE, err=True)


@click.command()
@data_dir_option
@json_option
def where(data_dir: Path | None, as_json: bool) -> None:
    """Print the data directory, the database and the key locations, and how they were found.

    \b
    Example:
        photoconsent where
    """
    choice = chosen_data_dir_choice(data_dir)
    secret = crypto.key_path(choice.path)
    medical = medical_key_path(choice.path)
    found = {
        "data_dir": str(choice.path),
        "chosen_by": choice.source,
        "looked_in": list(choice.looked),
        "database": str(choice.db_path),
        "database_exists": choice.db_path.is_file(),
        "secret_key": str(secret),
        "secret_key_exists": secret.is_file(),
        "medical_key": str(medical),
        "medical_key_exists": medical.is_file(),
        "keys_inside_data_dir": secret.absolute().is_relative_to(choice.path),
        "config_file": str(locations.config_file()),
    }
    if as_json:
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return

    def state(exists: bool, missing: str) -> str:
        return "" if exists else f"  ({missing})"

    click.echo(f"data directory\t{safe(choice.path)}\t(chosen by {safe(choice.source)})")
    click.echo(
        f"database\t{safe(choice.db_path)}"
        + state(found["database_exists"], "none yet: run photoconsent init")
    )
    click.echo(f"secret key\t{safe(secret)}{state(found['secret_key_exists'], 'missing')}")
    click.echo(f"medical key\t{safe(medical)}{state(found['medical_key_exists'], 'not made yet')}")
    click.echo(f"config file\t{safe(locations.config_file())}")
    if found["keys_inside_data_dir"] and found["secret_key_exists"]:
        click.echo(
            "The keys are inside the data directory, so a backup of it holds them too: "
            "run `photoconsent keys move`.",
            err=True,
        )


@click.group()
def keys() -> None:
    """The keys that lock faces, medical records and the audit log.

    \b
    Example:
        photoconsent keys move --to E:\\photoconsent-keys
    """


@keys.command("move")
@data_dir_option
@click.option(
    "--to",
    "to",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to keep the keys in. Default: a folder of its own in your per-user "
    "settings folder, outside the data directory.",
)
@operator_option
@errors_to_exit
def keys_move(data_dir: Path | None, to: Path | None, operator: str) -> None:
    """Move the keys out of the data directory (or to another folder), safely.

    Each key is copied, read back and checked against the database before the old file
    is removed.

    \b
    Example:
        photoconsent keys move --to E:\\photoconsent-keys
    """
    target = chosen_data_dir_choice(data_dir).path
    moved = move_keys(target, to, operator=operator)
    if not moved:
        click.echo(f"The keys are already in {safe(crypto.key_path(target).parent)}.", err=True)
        return
    for key in moved:
        click.echo(f"{key.name}\t{safe(key.source)}\t->\t{safe(key.dest)}")
    click.echo(BACKUP_ADVICE, err=True)
