"""The staff-room medical board: choose the pupils, render PDF and HTML, audit the print.

`board.selection.select_cards` picks every pupil who is on roll on the day (not left, not
erased), has a medical record for the room and at least one current condition, and passes
the class and condition filters; cards are ordered worst severity first, then class and name.
`generate` renders the board (A4 PDF, and/or a self-contained HTML page), writes the files
(mode 0600, never overwriting) and records a ``board_generate`` audit entry in the same
transaction: who, when, room, filters, each pupil's record and photo revision and a
fingerprint of all of it, never medical text. `board.status` reads those entries
back to tell which printed boards are out of date.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from board.html import render_html
from board.model import BoardError, BoardOptions, BoardResult
from board.pdf import render_pdf
from board.selection import build_board, filter_key, fingerprint, printed_pupils
from consent import audit, files
from consent.errors import FileConflict, FileWriteError
from consent.medical.key import require_medical_key
from consent.store import Store
from pipeline.errors import OutputConflict


def _write_private(data: bytes, dest: Path) -> None:
    """Create ``dest`` (mode 0600) with ``data``, never overwriting; nothing left on error."""
    try:
        files.write_new(dest, data, mode=files.PRIVATE)
    except FileConflict as exc:
        raise OutputConflict(f"{dest} exists; choose another file name or remove it") from exc
    except FileWriteError as exc:
        raise OutputConflict(f"cannot write {dest}: {exc.reason}") from exc


def generate(store: Store, options: BoardOptions) -> BoardResult:
    """Render the board, write its files and audit it, all or nothing.

    Raises `BoardError` for an empty board or a card too long for a page, and
    `OutputConflict` if an output file exists (nothing is written then).
    """
    if options.pdf is None and options.html is None:
        raise BoardError("Say where to write the board: --pdf FILE and/or --html FILE.")
    if not options.operator.strip():
        raise BoardError("A board needs a named staff operator (--operator 'J Smith').")
    board = build_board(store, options)
    outputs: list[tuple[Path, bytes]] = []
    if options.pdf is not None:
        outputs.append((Path(options.pdf), render_pdf(board)))
    if options.html is not None:
        outputs.append((Path(options.html), render_html(board)))
    for path, _ in outputs:
        if os.path.lexists(path):
            raise OutputConflict(f"{path} exists; choose another file name or remove it")
    key = require_medical_key(store)
    flt = filter_key(key, board.filter)
    pupils = printed_pupils(board)
    print_hash = fingerprint({k: v for k, v in flt.items() if k != "condition"}, pupils)
    written: list[Path] = []
    try:
        with store.transaction() as conn:
            entry = audit.append(
                conn,
                store.key,
                action="board_generate",
                operator=options.operator,
                details={
                    **flt,
                    "orientation": board.orientation.value,
                    "generated_on": board.generated_on.isoformat(),
                    "replace_by": board.replace_by.isoformat(),
                    "pupils": pupils,
                    "count": len(pupils),
                    "fingerprint": print_hash,
                    "emergency_line_sha256": hashlib.sha256(
                        board.emergency_line.encode("utf-8")
                    ).hexdigest(),
                    "files": [
                        {"file": p.name, "sha256": hashlib.sha256(data).hexdigest()}
                        for p, data in outputs
                    ],
                    "warnings": len(board.warnings),
                },
            )
            for path, data in outputs:
                _write_private(data, path)
                written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return BoardResult(entry.seq, board, tuple(written), print_hash)
