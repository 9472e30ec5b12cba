"""photoconsent's command line: parse, call the library, print, map errors to exit codes.

Exit codes: 0 success; 1 a photo was withheld, a check failed, or an operational error
(``Error: ...`` on stderr); 2 a usage error. Data goes to stdout, diagnostics to stderr.
"""

from __future__ import annotations

from pathlib import Path

import click

from commands import __version__

# Shared options and helpers live in commands/_shared.py, so that the command modules
# never import this module (no import cycle when it runs as a script).
from commands._shared import data_dir_option
from commands.app import app
from commands.audit_log import audit_group
from commands.board import board_group
from commands.cluster import cluster_group
from commands.consent_changes import consent_group, takedown
from commands.medical import medical_group
from commands.names import names_group
from commands.publishing import calibrate, check, publish
from commands.pupil_registry import enroll, pupils
from commands.retention import export_pupil, forget, purge, retention_group
from commands.review import review
from commands.serve import serve, token_group
from commands.setup_commands import init, keys, where
from commands.verify_clean import verify_clean


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="photoconsent")
@data_dir_option
def main(data_dir: Path | None) -> None:
    """Publish school photos only as parents' consent slips allow.

    Faces not positively matched to a pupil with consent for the purpose are blurred,
    all metadata is stripped, and every publish is audited.

    \b
    Example, from nothing to a published folder:
        photoconsent init
        photoconsent pupils import consent.csv
        photoconsent enroll --folder reference-photos/
        photoconsent publish --purpose website --event "Sports day" --out web/ photos/
    """


# `init` is commands/setup_commands.py's (keys kept apart, default recorded), not the
# older one in commands/pupil_registry.py. The original registration order (``--help``
# lists commands sorted either way).
main.add_command(init)
main.add_command(pupils)
main.add_command(enroll)
main.add_command(publish)
main.add_command(check)
main.add_command(verify_clean)
main.add_command(calibrate)
main.add_command(review)
main.add_command(audit_group)
main.add_command(consent_group)
main.add_command(takedown)
main.add_command(purge)
main.add_command(retention_group)
main.add_command(forget)
main.add_command(export_pupil)
main.add_command(names_group)
main.add_command(token_group)
main.add_command(serve)
main.add_command(medical_group)
main.add_command(board_group)
main.add_command(cluster_group)
main.add_command(where)
main.add_command(keys)
main.add_command(app)


if __name__ == "__main__":
    main()
