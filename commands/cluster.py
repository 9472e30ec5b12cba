"""Setting up a publishing cluster: ``cluster certs``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from commands._shared import errors_to_exit, json_option, safe
from publishing.cluster_certs import CA_CERT, CA_KEY, DEFAULT_DAYS, make_certs


@click.group("cluster")
def cluster_group() -> None:
    """Publish on several computers: certificates for a Dask cluster (docs/cluster.md).

    \b
    Example:
        photoconsent cluster certs cluster-certs/ --host photo-server
        photoconsent publish --purpose website --out to-upload/ \\
            --cluster tls://photo-server:8786 --cluster-certs cluster-certs/ camera-card/
    """


@cluster_group.command("certs")
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=DEFAULT_DAYS,
    show_default=True,
    help="How long the certificates are valid; make a new folder before they expire.",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="The scheduler computer's name or IP address, written into its certificate "
    "(repeatable; localhost and 127.0.0.1 are always there).",
)
@json_option
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@errors_to_exit
def certs(days: int, hosts: tuple[str, ...], as_json: bool, folder: Path) -> None:
    """Make the TLS certificates of a cluster in FOLDER (new or empty): a private CA
    and one certificate each for the scheduler, the workers and this computer.

    Copy to each machine only the files listed for it; key files (*-key.pem) are
    readable by their owner only. Anyone holding a key can join the cluster, and a
    worker is sent pupils' face encodings: keep them like passwords.

    \b
    Example:
        photoconsent cluster certs D:\\cluster-certs --host photo-server
    """
    made = make_certs(folder, days=days, hosts=hosts)
    machines = {
        "scheduler": made.files_for("scheduler"),
        "worker": made.files_for("worker"),
        "client": made.files_for("client"),
    }
    if as_json:
        listing = {m: [str(p) for p in paths] for m, paths in machines.items()}
        listing["keep_offline"] = [str(folder / CA_KEY)]
        click.echo(json.dumps({"folder": str(folder), "days": days, "files": listing}, indent=2))
        return
    where = {
        "scheduler": "the scheduler computer (runs `dask scheduler`)",
        "worker": "every worker computer (runs `dask worker`)",
        "client": "the computer that runs `photoconsent publish --cluster`",
    }
    click.echo(f"Certificates made in {safe(folder)}, valid {days} days.", err=True)
    for machine, paths in machines.items():
        names = ", ".join(p.name for p in paths)
        click.echo(f"  Copy to {where[machine]}: {names}", err=True)
    click.echo(
        f"  Keep {CA_KEY} offline (a USB stick in the office safe): it is needed only to "
        "make more certificates, and with it anyone could join the cluster.",
        err=True,
    )
    click.echo(
        f"Every machine needs {CA_CERT}. The commands to start the cluster are in docs/cluster.md.",
        err=True,
    )
