"""What a publish takes in: the photo files below the folders and files it is given, and
the check that its output folder is not among them."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import OutputConflict
from publishing.report import CAPTIONS_NAME, REPORT_NAME, is_archived_report

# Files a camera, phone or OS drops beside photos that are not photos of anyone, and the
# reports publish itself writes.
NOT_PHOTOS = frozenset({"thumbs.db", "desktop.ini", REPORT_NAME, CAPTIONS_NAME})


@dataclass(frozen=True)
class InputPhoto:
    """One file to publish; ``refusal`` says why it must be withheld without opening it."""

    path: Path
    refusal: str | None = None
    # The input folder it was found in (None for a file named on the command line); a
    # --captions file may name photos by their path relative to it.
    root: Path | None = None


def collect_inputs(paths: Iterable[Path]) -> list[Path]:
    """Expand folders into the files below them (sorted; hidden files and OS clutter such
    as Thumbs.db skipped).

    Every other file is kept whatever its extension, so a HEIC, a video or a misnamed file
    in a camera folder is reported as withheld with its reason, never silently skipped.
    """
    return [p.path for p in collect_photos(paths)]


def collect_photos(paths: Iterable[Path]) -> list[InputPhoto]:
    """:func:`collect_inputs` with a refusal for links found in a folder that point outside
    it: a link on a memory stick to ``/home/head/Pictures`` must not publish those photos.
    Links to folders are not followed (one inside the folder would list photos twice).
    A file named on the command line is taken as named, link or not.
    """
    found: list[InputPhoto] = []
    for path in paths:
        if not path.is_dir():
            found.append(InputPhoto(path))
            continue
        root = os.path.realpath(path)
        below: list[InputPhoto] = []
        for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for d in dirnames:
                sub = Path(dirpath, d)
                if sub.is_symlink() and not _inside(os.path.realpath(sub), root):
                    below.append(
                        InputPhoto(sub, "is a link to a folder outside the input folder", path)
                    )
            for name in filenames:
                if name.startswith(".") or name.lower() in NOT_PHOTOS or is_archived_report(name):
                    continue
                sub = Path(dirpath, name)
                refusal = None
                if sub.is_symlink() and not _inside(os.path.realpath(sub), root):
                    refusal = "is a link to a file outside the input folder"
                below.append(InputPhoto(sub, refusal, path))
        found.extend(sorted(below, key=lambda p: p.path))
    return found


def _inside(target: str, root: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def check_out_dir(out_dir: Path, inputs: Sequence[Path]) -> None:
    """Refuse an output folder that is, or is inside, an input folder.

    Published copies mixed with originals are how an unredacted original gets uploaded
    by mistake (and a second run would pick the outputs up as inputs).
    """
    out = out_dir.resolve()
    for path in inputs:
        src = path.resolve()
        # A folder is scanned recursively, so nothing below it may be the output; a file's
        # own folder counts too: `--out card card/*.jpg` mixes them just the same.
        if (path.is_dir() and (out == src or src in out.parents)) or out == src.parent:
            raise OutputConflict(
                f"The output folder {out_dir} is inside the input folder {path}; "
                "choose an --out folder outside the photos being published."
            )
