"""Options, helpers and printers shared by several commands."""

from __future__ import annotations

import functools
import json
import sys
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from consent import locations
from consent import retention as leavers
from consent.errors import ConsentError, DataDirError
from consent.registry import Purpose
from consent.store import Store, open_store
from pipeline.detection import DetectionSettings, Thoroughness
from pipeline.errors import PipelineError
from pipeline.matching import MatchSettings
from pipeline.recognisers import match_settings
from pipeline.redaction import RedactionStyle
from pipeline.writing import OutputFormat
from publishing.captions.sources import CaptionCsvError, read_captions_csv
from publishing.context import pupils_in_classes
from publishing.options import PublishOptions, default_operator
from publishing.report import CAPTIONS_NAME, REPORT_NAME, PublishReport

F = TypeVar("F", bound=Callable[..., Any])


def safe(text: object) -> str:
    """``text`` with control characters replaced, for echoing names from files."""
    return "".join("?" if unicodedata.category(c).startswith("C") else c for c in str(text))


# --- shared options ------------------------------------------------------------------------


def data_dir_option(f: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Data directory (registry, audit log). Default: $PHOTOCONSENT_HOME, else the "
        "one `init` recorded for you, else ./photoconsent-data (`photoconsent where`).",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(f)


def operator_option(f: F) -> F:
    return click.option(
        "--operator",
        default=default_operator,
        show_default="the OS user",
        help="Who is doing this, for the audit log.",
    )(f)


def purpose_option(f: F) -> F:
    return click.option(
        "--purpose",
        required=True,
        type=click.Choice([p.value for p in Purpose]),
        help="What the photos are for; consent is checked for this purpose.",
    )(f)


def date_option_for(help_text: str) -> Callable[[F], F]:
    """A ``--date YYYY-MM-DD`` option (into ``on``) whose help says what it judges."""
    return click.option(
        "--date",
        "on",
        type=click.DateTime(["%Y-%m-%d"]),
        default=None,
        help=help_text,
    )


date_option = date_option_for("Judge consent as on this date (default: today).")


def caption_options(f: F) -> F:
    """--captions FILE, --caption TEXT and --embedded-captions/--no-embedded-captions."""
    f = click.option(
        "--embedded-captions/--no-embedded-captions",
        "embedded_captions",
        default=True,
        show_default=True,
        help="Use the caption a photo carries in its own IPTC/XMP/EXIF/PNG fields when "
        "neither --captions nor --caption gives one.",
    )(f)
    f = click.option(
        "--caption",
        "batch_caption",
        default=None,
        help="One caption for every photo without a --captions line (rewritten per photo).",
    )(f)
    f = click.option(
        "--captions",
        "captions_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="CSV with columns file,caption (file name, or path inside the input folder). "
        "Captions are rewritten for the purpose's name policy (`photoconsent names show`) "
        "into captions.csv and report.json, never into an image.",
    )(f)
    return f


def caption_settings(
    captions_file: Path | None, batch_caption: str | None, embedded_captions: bool
) -> dict[str, Any]:
    """The PublishOptions fields for the caption options (a bad CSV is a usage error)."""
    captions = None
    if captions_file is not None:
        try:
            captions = read_captions_csv(captions_file)
        except CaptionCsvError as exc:
            raise click.UsageError(str(exc)) from exc
        except OSError as exc:
            raise click.UsageError(f"cannot read {captions_file}: {exc.strerror}") from exc
    if batch_caption is not None and not batch_caption.strip():
        batch_caption = None
    return {"captions": captions, "caption": batch_caption, "embedded_captions": embedded_captions}


def thoroughness_option(f: F) -> F:
    return click.option(
        "--thoroughness",
        type=click.Choice([t.value for t in Thoroughness]),
        default=Thoroughness.STANDARD.value,
        show_default=True,
        help="Detection passes: fast (one), standard (2x, mirror, turned when the photo "
        "has no orientation tag), paranoid (every pass, no second-look filtering).",
    )(f)


def tolerance_option(f: F) -> F:
    return click.option(
        "--tolerance",
        type=click.FloatRange(0.1, 0.6),
        default=None,
        help="Largest face distance that counts as a match (default: the one the data "
        "directory's recogniser was calibrated with on children; see docs/matching.md). "
        "Raising it keeps more faces and risks keeping the wrong child.",
    )(f)


def matching_options(f: F) -> F:
    f = thoroughness_option(f)
    f = click.option(
        "--class",
        "class_names",
        multiple=True,
        metavar="CLASS",
        help="Only match pupils of this class (repeatable): a smaller gallery means "
        "fewer wrong keeps.",
    )(f)
    f = click.option(
        "--pupils",
        "pupils_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Only match the pupil IDs listed in this file, one per line.",
    )(f)
    return tolerance_option(f)


def chosen_data_dir_choice(data_dir: Path | None) -> locations.DataDirChoice:
    """The command's --data-dir, else the group's (``photoconsent --data-dir X cmd``), else
    $PHOTOCONSENT_HOME, the config file, ./photoconsent-data (`consent.locations`)."""
    if data_dir is None:
        ctx = click.get_current_context(silent=True)
        data_dir = ctx.find_root().params.get("data_dir") if ctx else None
    return locations.find_data_dir(str(data_dir) if data_dir else None)


def chosen_data_dir(data_dir: Path | None) -> Path:
    """The data directory path `chosen_data_dir_choice` picks."""
    return chosen_data_dir_choice(data_dir).path


def open_data_store(data_dir: Path | None) -> Store:
    """The store of the data directory the command was given (see `chosen_data_dir`); a
    missing one is a `DataDirError` that names every place looked in."""
    choice = chosen_data_dir_choice(data_dir)
    if not choice.db_path.is_file():
        raise DataDirError(choice.missing_message())
    return open_store(choice.path)


def errors_to_exit(f: F) -> F:
    """Turn the library's typed errors into ``Error: ...`` and exit 1."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except (ConsentError, PipelineError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


# --- shared by several commands ----------------------------------------------------------


def publish_options(
    *,
    purpose: str,
    out: Path,
    on: date | None,
    event: str = "event",
    operator: str,
    style: str = RedactionStyle.BLUR.value,
    fmt: str = "jpeg",
    thoroughness: str,
    tolerance: float | None,
    recogniser: str,
    candidates: frozenset[str] | None = None,
    destination: str | None = None,
    workers: int | None = None,
    captioning: Mapping[str, Any] | None = None,
) -> PublishOptions:
    """`PublishOptions` from the values of the shared options, as click gives them
    (``captioning`` is what `caption_settings` returns; ``on`` None means today). The
    matching rule is ``recogniser``'s own, with ``tolerance`` instead of its when given."""
    return PublishOptions(
        purpose=Purpose(purpose),
        out_dir=out,
        event=event,
        operator=operator,
        style=RedactionStyle(style),
        output_format=OutputFormat[fmt.upper()],
        detection=DetectionSettings(thoroughness=Thoroughness(thoroughness)),
        matching=matching_settings(recogniser, tolerance),
        on=on or date.today(),
        candidates=candidates,
        destination=destination,
        workers=workers,
        **(captioning or {}),
    )


def matching_settings(recogniser: str, tolerance: float | None = None) -> MatchSettings:
    """``recogniser``'s calibrated rule, with ``tolerance`` replacing its own when given."""
    overrides = {} if tolerance is None else {"tolerance": tolerance}
    return match_settings(recogniser, **overrides)


def candidate_pupils(
    store: Store, class_names: tuple[str, ...], pupils_file: Path | None
) -> frozenset[str] | None:
    """The pupils --class and --pupils name (together: either), or None for everyone."""
    if not class_names and pupils_file is None:
        return None
    chosen = set(pupils_in_classes(store, class_names)) if class_names else set()
    if pupils_file is not None:
        lines = pupils_file.read_text(encoding="utf-8-sig").splitlines()
        chosen |= {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    if not chosen:
        raise click.ClickException(
            "--class/--pupils name no pupil in the registry; check the class names "
            "(`photoconsent pupils list`) or the file."
        )
    return frozenset(chosen)


def print_publish_report(report: PublishReport, as_json: bool) -> None:
    """The report (``--json``, on stdout) or a summary on stderr; exit 1 if any withheld."""
    out = report.options.out_dir
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        summary: dict[str, Any] = report.to_json()["summary"]  # type: ignore[assignment]
        resumed = f", {summary['resumed']} of them by an earlier run" if report.resumed else ""
        click.echo(
            f"{summary['published'] + summary['withheld']} photos: "
            f"{summary['published']} published, {summary['withheld']} withheld{resumed}. "
            f"Faces: {summary['faces_kept']} kept, {summary['faces_blurred']} blurred.",
            err=True,
        )
        for reason, count in summary["withheld_by_reason"].items():
            click.echo(f"  withheld {count}: {safe(reason)}", err=True)
        click.echo(f"Output: {safe(out.resolve())}", err=True)
        click.echo(f"Report: {safe((out / REPORT_NAME).resolve())}", err=True)
        if summary["captions"]:
            click.echo(
                f"Captions: {summary['captions']} rewritten for the {report.options.purpose.value}"
                f" name policy in {safe((out / CAPTIONS_NAME).resolve())}",
                err=True,
            )
        if report.archived_report is not None:
            click.echo(
                f"The earlier batch's report.json was kept as {safe(report.archived_report.name)}.",
                err=True,
            )
        for r in report.withheld:
            click.echo(f"withheld {safe(r.input)}: {safe(r.reason)}", err=True)
    if report.withheld:
        sys.exit(1)


def option_date(value: Any) -> date | None:
    """A ``click.DateTime`` option's value as a date (None stays None)."""
    return None if value is None else value.date()


def print_purged(purged: list[leavers.Purged], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([p.to_json() for p in purged], indent=2, ensure_ascii=False))
        return
    for p in purged:
        click.echo(f"{safe(p.pupil_id)}\t{p.category}\t{p.deleted} deleted\t{safe(p.reason)}")
    click.echo(f"{len(purged)} deletion(s).", err=True)
