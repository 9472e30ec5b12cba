"""The web service: ``serve`` and its API tokens (``token create/list/revoke``), issue 5."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import click

from commands._shared import (
    chosen_data_dir,
    data_dir_option,
    errors_to_exit,
    json_option,
    matching_settings,
    open_data_store,
    operator_option,
    safe,
    thoroughness_option,
    tolerance_option,
)
from pipeline.detection import DetectionSettings, Thoroughness
from pipeline.matching import MatchSettings
from publishing.enrolling import recogniser_name
from service import tokens
from service.limits import (
    DEFAULT_BODY_IDLE_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEP_ALIVE,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD,
    DEFAULT_MIN_BODY_RATE,
    DEFAULT_PORT,
    DEFAULT_RATE_PER_MINUTE,
    DEFAULT_REQUEST_TIMEOUT,
    ServiceLimits,
)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(0.1, 512),
    default=DEFAULT_MAX_UPLOAD / 1024 / 1024,
    show_default=True,
    help="Largest request body accepted, in MiB (413 above it).",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(1_000, 64_000_000),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Largest image accepted, width x height (413 above it).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Analysis processes [default: as publish, by cores and memory].",
)
@click.option(
    "--queue",
    type=click.IntRange(0, 1000),
    default=None,
    help="Requests that may wait for a worker [default: 2 per worker]; more get 503.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(0.1, 300),
    default=DEFAULT_HEADER_TIMEOUT,
    show_default=True,
    help="Seconds a client has to send its request headers (then disconnected).",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(0.1, 600),
    default=DEFAULT_BODY_IDLE_TIMEOUT,
    show_default=True,
    help="Longest pause in an upload, in seconds (408 beyond it).",
)
@click.option(
    "--min-upload-rate",
    type=click.FloatRange(0.1, 1024 * 1024),
    default=DEFAULT_MIN_BODY_RATE / 1024,
    show_default=True,
    help="Slowest average upload accepted after --body-timeout, in KiB/s (408 below it).",
)
@click.option(
    "--keep-alive",
    type=click.IntRange(1, 300),
    default=DEFAULT_KEEP_ALIVE,
    show_default=True,
    help="Seconds an idle connection is kept open between requests.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(1, 3600),
    default=DEFAULT_REQUEST_TIMEOUT,
    show_default=True,
    help="Longest a whole request may take, analysis included, in seconds (503 beyond it).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1, 100_000),
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    help="Open connections at once; beyond it idle ones are dropped, or else 503.",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(0, 100_000),
    default=DEFAULT_RATE_PER_MINUTE,
    show_default=True,
    help="Requests per minute per token, 0 for no limit (429 beyond it).",
)
@thoroughness_option
@tolerance_option
@data_dir_option
@errors_to_exit
def serve(
    host: str,
    port: int,
    max_upload_mb: float,
    max_pixels: int,
    workers: int | None,
    queue: int | None,
    header_timeout: float,
    body_timeout: float,
    min_upload_rate: float,
    keep_alive: int,
    request_timeout: float,
    max_connections: int,
    rate_limit: int,
    thoroughness: str,
    tolerance: float | None,
    data_dir: Path | None,
) -> None:
    """Run the upload pre-check web service (POST /check, POST /publish) for a school
    website or CMS. Every request needs an API token (`photoconsent token create`) and is
    audited with the token's name. Listens on 127.0.0.1 unless --host says otherwise.

    See docs/web-service.md for the API, limits and curl examples.

    \b
    Example:
        photoconsent token create website
        photoconsent serve --port 8750
    """
    from service.app import ServiceSettings
    from service.app import serve as run

    with open_data_store(data_dir) as store:
        live = tokens.list_tokens(store.conn)
    if not live:
        raise click.ClickException(
            "No API token exists, so nothing could call the service. "
            "Create one first: photoconsent token create NAME"
        )
    if not _is_loopback(host):
        click.echo(
            f"WARNING: serving on {safe(host)}, beyond this machine. Tokens and photos "
            "travel unencrypted over plain HTTP: put it behind an HTTPS reverse proxy.",
            err=True,
        )
    settings = ServiceSettings(
        data_dir=chosen_data_dir(data_dir),
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        max_pixels=max_pixels,
        limits=ServiceLimits(
            header_timeout=header_timeout,
            body_idle_timeout=body_timeout,
            min_body_rate=int(min_upload_rate * 1024),
            keep_alive=keep_alive,
            request_timeout=request_timeout,
            max_connections=max_connections,
            rate_per_minute=rate_limit,
        ),
        workers=workers,
        queue=queue,
        detection=DetectionSettings(thoroughness=Thoroughness(thoroughness)),
        matching=_matching(data_dir, tolerance),
    )
    click.echo("Loading the face models...", err=True)
    run(settings, host, port)


def _matching(data_dir: Path | None, tolerance: float | None) -> MatchSettings:
    """The data directory's recogniser's rule, read once at start-up (restart the service
    after `enroll --reencode` moves the data directory to another recogniser)."""
    with open_data_store(data_dir) as store:
        return matching_settings(recogniser_name(store), tolerance)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.group("token")
def token_group() -> None:
    """API tokens for `photoconsent serve`: one named token per website or plug-in.

    \b
    Example:
        photoconsent token create website
        photoconsent token list
        photoconsent token revoke website
    """


@token_group.command("create")
@click.argument("name")
@data_dir_option
@operator_option
@errors_to_exit
def token_create(name: str, data_dir: Path | None, operator: str) -> None:
    """Create an API token called NAME and print it once (only its hash is kept).

    Paste it into the website's settings; if it is lost, revoke it and create another.

    \b
    Example:
        photoconsent token create website
    """
    with open_data_store(data_dir) as store:
        token = tokens.create_token(store, name, operator=operator)
    click.echo(token)
    click.echo(
        f"Token {safe(name)!r} created. It is shown only this once; store it in the "
        "website's settings now.",
        err=True,
    )


@token_group.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked tokens.")
@data_dir_option
@json_option
@errors_to_exit
def token_list(include_revoked: bool, data_dir: Path | None, as_json: bool) -> None:
    """List API tokens by name (the tokens themselves cannot be shown again).

    \b
    Example:
        photoconsent token list --all
    """
    with open_data_store(data_dir) as store:
        found = tokens.list_tokens(store.conn, include_revoked=include_revoked)
    if as_json:
        click.echo(json.dumps([t.to_json() for t in found], indent=2))
        return
    for t in found:
        state = f"revoked {t.revoked_at} by {safe(t.revoked_by)}" if t.revoked_at else "live"
        click.echo(f"{safe(t.name)}\tcreated {t.created_at} by {safe(t.created_by)}\t{state}")
    if not found:
        click.echo("No tokens. Create one with `photoconsent token create NAME`.", err=True)


@token_group.command("revoke")
@click.argument("name")
@data_dir_option
@operator_option
@errors_to_exit
def token_revoke(name: str, data_dir: Path | None, operator: str) -> None:
    """Revoke the API token called NAME: it stops working at once.

    \b
    Example:
        photoconsent token revoke website
    """
    with open_data_store(data_dir) as store:
        tokens.revoke_token(store, name, operator=operator)
    click.echo(f"Token {safe(name)!r} revoked.", err=True)
