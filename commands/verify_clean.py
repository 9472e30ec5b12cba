"""``photoconsent verify-clean``: prove files carry no metadata, by parsing them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from commands._shared import json_option, safe
from pipeline.formats.findings import describe, find_metadata


@click.command("verify-clean")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@json_option
def verify_clean(files: tuple[Path, ...], as_json: bool) -> None:
    """Check that files hold pixels and the bare file structure only: no EXIF, GPS, XMP,
    IPTC, comments, ICC profiles, PNG text or trailing data. Exit 0 if all are clean.

    Only JPEG, PNG and WebP can be proven clean; any other file fails. `publish` runs the
    same check on every output before counting it as published.

    \b
    Example:
        photoconsent verify-clean to-upload/*.jpg
    """
    results = []
    for path in files:
        try:
            findings = find_metadata(path.read_bytes())
        except OSError as exc:
            results.append({"file": str(path), "clean": False, "findings": [str(exc)]})
            continue
        results.append(
            {
                "file": str(path),
                "clean": not findings,
                "findings": [f"{f.kind}: {f.detail}" for f in findings],
                "summary": describe(findings),
            }
        )
    if as_json:
        click.echo(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        for r in results:
            verdict = "clean" if r["clean"] else "NOT CLEAN: " + "; ".join(r["findings"])
            click.echo(f"{safe(r['file'])}: {safe(verdict)}")
    if not all(r["clean"] for r in results):
        sys.exit(1)
