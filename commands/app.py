"""`photoconsent app`: the school office app, in a browser on the office PC (issue 16)."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click

from commands._shared import chosen_data_dir, data_dir_option, errors_to_exit, open_data_store, safe
from publishing.options import default_operator

# web/ (FastAPI, uvicorn, argon2) is imported when the command runs, so the rest of the
# CLI starts without it.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@click.command("app")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True,
    help="Port to listen on.",
)  # fmt: skip
@click.option(
    "--create-admin",
    "admin",
    metavar="NAME",
    default=None,
    help="Make the first account NAME (data protection officer, who makes the others); "
    "the password is asked for twice. Then exits.",
)
@click.option(
    "--open/--no-open",
    "open_browser",
    default=False,
    help="Open the app in the web browser once it is running (for a desktop shortcut).",
)
@click.option(
    "--idle-minutes",
    type=click.IntRange(1, 480),
    default=20,
    show_default=True,
    help="Sign a person out after this long without using the app.",
)
@data_dir_option
@errors_to_exit
def app(
    host: str,
    port: int,
    admin: str | None,
    open_browser: bool,
    idle_minutes: int,
    data_dir: Path | None,
) -> None:
    """Run the school office app: import, enrol, publish, review and takedown in a browser.

    Listens on this computer only (127.0.0.1) unless --host says otherwise. Staff sign in
    with their own accounts; every action is audited under the person signed in.

    \b
    Example:
        photoconsent app --create-admin office.dpo
        photoconsent app --open
    """
    from web import accounts
    from web.pages import AppSettings
    from web.server import build_server, is_loopback

    if admin is not None:
        password = click.prompt(
            f"Password for {safe(admin)}", hide_input=True, confirmation_prompt=True, err=True
        )
        with open_data_store(data_dir) as store:
            made = accounts.create_account(
                store, admin, password, accounts.Role.DPO, operator=default_operator()
            )
        click.echo(
            f"Made the account {safe(made.username)} ({made.role.label}). Start the app with "
            "`photoconsent app` and sign in.",
            err=True,
        )
        return
    with open_data_store(data_dir) as store:
        if not accounts.list_accounts(store.conn):
            raise click.ClickException(
                "There is no staff account yet, so nobody could sign in. Make the first: "
                "photoconsent app --create-admin NAME"
            )
    if not is_loopback(host):
        click.echo(
            f"WARNING: the office app is listening on {safe(host)}, beyond this computer. "
            "Pupils' names, consent and photos travel unencrypted over plain HTTP: anyone on "
            "the network can read them. Use the default (127.0.0.1) unless an HTTPS reverse "
            "proxy stands in front.",
            err=True,
        )
    settings = AppSettings(data_dir=chosen_data_dir(data_dir), idle_seconds=idle_minutes * 60)
    server = build_server(settings, host, port)
    address = f"http://{'localhost' if is_loopback(host) else host}:{port}/"
    click.echo(f"The office app is at {address} (Ctrl+C stops it).", err=True)
    if open_browser:
        webbrowser.open(address)
    server.run()
