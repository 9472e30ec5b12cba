"""The sidecar captions CSV: ``file,caption`` lines a school exports from a spreadsheet.

This is about the CSV file only; the captions a photo carries in its own metadata are
read by :mod:`pipeline.formats.embedded`. A caption from either source is cleaned the
same way (:func:`~pipeline.formats.embedded.clean_text`) and bounded by the same
``MAX_FIELD_CHARS``.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

from pipeline.formats.embedded import MAX_FIELD_CHARS, clean_text

# A sidecar CSV larger than this is refused before it is read.
MAX_CSV_BYTES = 10 * 1024 * 1024


class CaptionCsvError(ValueError):
    """A captions CSV that cannot be used; ``problems`` lists ``(line, message)``."""

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  line {n}: {msg}" if n else f"  {msg}" for n, msg in problems)
        super().__init__(f"{source} cannot be used as a captions file:\n{lines}")


def _decode_csv(raw: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM (Excel "Unicode text"), else Windows-1252
    (Excel's plain "CSV" on a UK PC)."""
    if raw.startswith(codecs.BOM_UTF8):
        return raw[3:].decode("utf-8", errors="replace")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def parse_captions_csv(raw: bytes, *, source: str = "the captions file") -> dict[str, str]:
    """``{file: caption}`` from a CSV with a ``file`` and a ``caption`` column.

    Other columns are ignored, the delimiter may be ``,``, ``;`` or a tab (Excel's choice
    depends on the PC's region), and blank lines are skipped. Every problem is collected,
    with its line number, into one `CaptionCsvError`.
    """
    if len(raw) > MAX_CSV_BYTES:
        raise CaptionCsvError(source, [(0, f"file is over {MAX_CSV_BYTES:,} bytes")])
    text = _decode_csv(raw)
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    problems: list[tuple[int, str]] = []
    captions: dict[str, str] = {}
    where: dict[str, int] = {}
    header: list[str] | None = None
    line = 1
    while True:
        start = line
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append((start, f"malformed CSV ({exc}); look for an unclosed quote"))
            break
        line = reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip().lstrip("\ufeff").casefold() for c in cells]
            missing = [c for c in ("file", "caption") if c not in header]
            if missing:
                problems.append(
                    (
                        start,
                        f"the header needs columns 'file' and 'caption' (missing: "
                        f"{', '.join(missing)})",
                    )
                )
                break
            continue
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            problems.append((start, f"{len(cells)} cells but the header has {len(header)}"))
            continue
        row = dict(zip(header, cells, strict=False))
        name = row.get("file", "").strip()
        caption = clean_text(row.get("caption", ""))
        if not name:
            problems.append((start, "the file cell is empty"))
            continue
        if len(row.get("caption", "")) > MAX_FIELD_CHARS:
            problems.append((start, f"the caption is over {MAX_FIELD_CHARS} characters"))
            continue
        key = _file_key(name)
        if key in where:
            problems.append((start, f"file {name!r} is listed again (first on line {where[key]})"))
            continue
        where[key] = start
        captions[name] = caption
    if header is None and not problems:
        problems.append((0, "the file is empty; it needs a header line 'file,caption'"))
    if problems:
        raise CaptionCsvError(source, problems)
    return captions


def read_captions_csv(path: Path) -> dict[str, str]:
    """`parse_captions_csv` of the file at ``path`` (its size checked before reading)."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise CaptionCsvError(str(path), [(0, f"file is over {MAX_CSV_BYTES:,} bytes")])
    return parse_captions_csv(path.read_bytes(), source=str(path))


def _file_key(name: str) -> str:
    return name.replace("\\", "/").strip().casefold()


def caption_for(captions: Mapping[str, str], photo: Path, root: Path | None = None) -> str | None:
    """The CSV caption of ``photo``: by its path relative to ``root`` if the CSV gives one,
    else by file name (case-insensitive, as Windows and cameras disagree on case)."""
    keys = {_file_key(k): v for k, v in captions.items()}
    candidates: Iterable[str] = []
    if root is not None:
        try:
            candidates = [photo.relative_to(root).as_posix()]
        except ValueError:
            candidates = []
    for candidate in [*candidates, photo.name]:
        value = keys.get(_file_key(candidate))
        if value is not None:
            return value
    return None
