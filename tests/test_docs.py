"""Meta-tests on the documentation: every command teaches by example in its own --help."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from tests.support.commands import ALL_COMMANDS


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(("photoconsent", *p)))
def test_every_command_help_has_an_example(runner: CliRunner, path: tuple[str, ...]) -> None:
    result = runner.invoke(main, [*path, "--help"])

    assert result.exit_code == 0, result.output
    example = result.stdout.partition("Example")[2]
    assert example, f"`photoconsent {' '.join(path)} --help` shows no Example"
    # The example is a command line for this very command, not prose.
    assert f"photoconsent {' '.join(path)}".strip() in example


README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize(
    "path", [p for p in ALL_COMMANDS if p], ids=lambda p: " ".join(("photoconsent", *p))
)
def test_every_command_is_documented_in_the_readme(path: tuple[str, ...]) -> None:
    assert f"photoconsent {' '.join(path)}" in README.read_text(encoding="utf-8")


def test_readme_gives_the_two_set_up_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text


@pytest.mark.parametrize("code", ["0", "1", "2"])
def test_readme_documents_exit_codes(code: str) -> None:
    section = README.read_text(encoding="utf-8").partition("## Exit codes")[2]
    assert f"\n| {code} |" in section.partition("\n## ")[0]
