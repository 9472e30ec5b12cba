"""Meta-tests on the documentation: every command teaches by example in its own --help."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli import main
from tests.test_cli import ALL_COMMANDS


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(("photoconsent", *p)))
def test_every_command_help_has_an_example(runner: CliRunner, path: tuple[str, ...]) -> None:
    result = runner.invoke(main, [*path, "--help"])

    assert result.exit_code == 0, result.output
    example = result.stdout.partition("Example")[2]
    assert example, f"`photoconsent {' '.join(path)} --help` shows no Example"
    # The example is a command line for this very command, not prose.
    assert f"photoconsent {' '.join(path)}".strip() in example
