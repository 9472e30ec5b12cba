"""``names``, ``token`` and ``serve`` through the CLI, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from consent import audit
from consent.store import open_store
from service import tokens


def invoke(runner: CliRunner, data_dir: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(main, ["--data-dir", str(data_dir), *args])


def test_names_show_lists_every_purpose_with_its_default(runner: CliRunner, data_dir: Path) -> None:
    result = invoke(runner, data_dir, "names", "show", "--json")

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["website"] == {"policy": "first", "default": True}
    assert shown["social_media"]["policy"] == "none"
    assert shown["internal_display"]["policy"] == "full"


def test_names_set_changes_the_policy_and_audits_it(runner: CliRunner, data_dir: Path) -> None:
    result = invoke(runner, data_dir, "names", "set", "press", "none", "--operator", "dpo")

    assert result.exit_code == 0, result.output
    assert "press: no names (was first)" in result.stderr
    text = invoke(runner, data_dir, "names", "show").stdout
    assert "press\tnone\tno names\n" in text
    with open_store(data_dir) as store:
        assert [e.operator for e in audit.entries(store, action="name_policy_set")] == ["dpo"]


def test_names_set_full_for_the_website_needs_the_flag(runner: CliRunner, data_dir: Path) -> None:
    refused = invoke(runner, data_dir, "names", "set", "website", "full")
    allowed = invoke(runner, data_dir, "names", "set", "website", "full", "--allow-full-names")

    assert refused.exit_code == 1 and "--allow-full-names" in refused.stderr
    assert allowed.exit_code == 0 and "WARNING" in allowed.stderr


def test_names_set_rejects_unknown_values_as_usage_errors(
    runner: CliRunner, data_dir: Path
) -> None:
    assert invoke(runner, data_dir, "names", "set", "tiktok", "none").exit_code == 2
    assert invoke(runner, data_dir, "names", "set", "website", "initials").exit_code == 2


def test_token_create_prints_the_token_once_on_stdout(runner: CliRunner, data_dir: Path) -> None:
    result = invoke(runner, data_dir, "token", "create", "website", "--operator", "it")

    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("pct_") and "shown only this once" in result.stderr
    with open_store(data_dir) as store:
        assert tokens.authenticate(store.conn, token).name == "website"  # type: ignore[union-attr]
    listed = invoke(runner, data_dir, "token", "list", "--json")
    assert token not in listed.stdout
    assert [t["name"] for t in json.loads(listed.stdout)] == ["website"]


def test_token_revoke_and_list_all(runner: CliRunner, data_dir: Path) -> None:
    invoke(runner, data_dir, "token", "create", "website")
    revoked = invoke(runner, data_dir, "token", "revoke", "website", "--operator", "it")
    again = invoke(runner, data_dir, "token", "revoke", "website")
    live = invoke(runner, data_dir, "token", "list")
    everything = invoke(runner, data_dir, "token", "list", "--all")

    assert revoked.exit_code == 0
    assert again.exit_code == 1 and "No live token" in again.stderr
    assert live.stdout == "" and "No tokens" in live.stderr
    assert "revoked" in everything.stdout and "by it" in everything.stdout


def test_token_create_refuses_a_bad_name(runner: CliRunner, data_dir: Path) -> None:
    result = invoke(runner, data_dir, "token", "create", "my website")

    assert result.exit_code == 1 and "not usable" in result.stderr


def test_serve_refuses_to_start_without_any_token(runner: CliRunner, data_dir: Path) -> None:
    result = invoke(runner, data_dir, "serve", "--port", "0")

    assert result.exit_code == 1
    assert "photoconsent token create" in result.stderr


def test_serve_without_a_data_directory_is_an_error(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, tmp_path / "nothing", "serve")

    assert result.exit_code == 1 and "photoconsent init" in result.stderr


def test_serve_passes_its_limits_to_the_service(
    runner: CliRunner, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.app
    from service.limits import ServiceLimits

    started: list[tuple[object, str, int]] = []
    monkeypatch.setattr(service.app, "serve", lambda s, h, p: started.append((s, h, p)))
    invoke(runner, data_dir, "token", "create", "website")

    result = invoke(
        runner,
        data_dir,
        "serve",
        "--port",
        "0",
        "--max-pixels",
        "12000000",
        "--workers",
        "3",
        "--queue",
        "0",
        "--header-timeout",
        "2",
        "--body-timeout",
        "4",
        "--min-upload-rate",
        "8",
        "--keep-alive",
        "3",
        "--request-timeout",
        "30",
        "--max-connections",
        "50",
        "--rate-limit",
        "10",
    )

    assert result.exit_code == 0, result.output
    ((settings, host, port),) = started
    assert (host, port) == ("127.0.0.1", 0)
    assert settings.max_pixels == 12_000_000  # type: ignore[attr-defined]
    assert (settings.workers, settings.queue) == (3, 0)  # type: ignore[attr-defined]
    assert settings.capacity() == 3  # type: ignore[attr-defined]
    assert settings.limits == ServiceLimits(  # type: ignore[attr-defined]
        header_timeout=2,
        body_idle_timeout=4,
        min_body_rate=8 * 1024,
        keep_alive=3,
        request_timeout=30,
        max_connections=50,
        rate_per_minute=10,
    )


def test_serve_refuses_a_limit_out_of_range(runner: CliRunner, data_dir: Path) -> None:
    invoke(runner, data_dir, "token", "create", "website")

    result = invoke(runner, data_dir, "serve", "--max-connections", "0")

    assert result.exit_code == 2 and "--max-connections" in result.stderr
