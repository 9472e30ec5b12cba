"""Every command of the CLI, walked from the click group (for the help and docs meta-tests)."""

from __future__ import annotations

import click

from cli import main


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand of ``group`` as argument tuples, the group first."""
    paths = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


ALL_COMMANDS = command_paths(main)
