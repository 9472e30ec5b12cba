"""Batch progress in the data directory, so an interrupted publish can be finished.

A batch is one publish command: the same purpose, options, output folder and inputs give
the same batch key (:func:`batch_key`), so re-running the command resumes it. Each photo's
outcome is one row of ``publish_journal`` in the registry database, written in the same
SQLite transaction as the photo's audit entry: the journal and the audit log can never
disagree. Rows are keyed by the input's path (raw bytes, so any file name works) and hold
the input's SHA-256, the output's name and SHA-256, the hidden temp file the output waits
in until it is revealed, and the photo's ``report.json`` entry. The table is created by
the store's migrations (`consent.store.MIGRATIONS`, number 6).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consent.store import Store
from publishing.report import PhotoStatus


@dataclass(frozen=True)
class JournalRow:
    """One finished photo of a batch."""

    input: bytes
    input_sha256: str | None
    status: PhotoStatus
    output: str | None
    output_sha256: str | None
    temp: str | None
    result: dict[str, Any]


def path_key(path: Path) -> bytes:
    """The raw bytes of a path made absolute (not resolved: a symlink stays itself)."""
    return os.fsencode(os.path.abspath(path))


def batch_key(options_fingerprint: dict[str, Any], out_dir: Path, inputs: Sequence[Path]) -> str:
    """The key of a batch: a hash of what decides its outputs, the folder and the inputs."""
    h = hashlib.sha256()
    h.update(json.dumps(options_fingerprint, sort_keys=True).encode())
    h.update(b"\0" + os.fsencode(os.path.realpath(out_dir)))
    for path in inputs:
        h.update(b"\0" + path_key(path))
    return h.hexdigest()[:32]


def finished(store: Store, batch: str) -> dict[bytes, JournalRow]:
    """Every photo the batch finished, by input path key."""
    rows = store.conn.execute(
        "SELECT input, input_sha256, status, output, output_sha256, temp, result"
        " FROM publish_journal WHERE batch = ?",
        (batch,),
    ).fetchall()
    return {bytes(r[0]): _row(r) for r in rows}


def pending_reveals(store: Store, out_dir: Path) -> list[JournalRow]:
    """Published rows for ``out_dir`` (any batch) whose output may still be in its temp
    file: a run was killed between the audit commit and the rename."""
    rows = store.conn.execute(
        "SELECT input, input_sha256, status, output, output_sha256, temp, result"
        " FROM publish_journal WHERE out_dir = ? AND status = ?"
        " AND temp IS NOT NULL",
        (os.path.realpath(out_dir), PhotoStatus.PUBLISHED.value),
    ).fetchall()
    return [_row(r) for r in rows]


def reserved_names(store: Store, out_dir: Path) -> set[str]:
    """Output names the journal has handed out in ``out_dir``: never given out again."""
    rows = store.conn.execute(
        "SELECT output FROM publish_journal WHERE out_dir = ? AND output IS NOT NULL",
        (os.path.realpath(out_dir),),
    ).fetchall()
    return {r[0] for r in rows}


def record(
    conn: sqlite3.Connection,
    batch: str,
    out_dir: Path,
    input_key: bytes,
    *,
    input_sha256: str | None,
    status: PhotoStatus,
    output: str | None,
    output_sha256: str | None,
    temp: str | None,
    result: dict[str, Any],
    at: str,
) -> None:
    """Record a photo's outcome inside the caller's transaction (with its audit entry)."""
    if not conn.in_transaction:
        raise RuntimeError("journal.record must run inside store.transaction()")
    conn.execute(
        "INSERT OR REPLACE INTO publish_journal (batch, out_dir, input, input_sha256, status,"
        " output, output_sha256, temp, result, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            batch,
            os.path.realpath(out_dir),
            input_key,
            input_sha256,
            status.value,
            output,
            output_sha256,
            temp,
            json.dumps(result, ensure_ascii=True),
            at,
        ),
    )


def mark_revealed(store: Store, out_dir: Path, output: str) -> None:
    """``output`` has its visible name; nothing is left to recover for it. (A lone UPDATE
    that audits nothing: if it is lost in a crash, recovery finds the output in place.)"""
    store.conn.execute(
        "UPDATE publish_journal SET temp = NULL WHERE out_dir = ? AND output = ?",
        (os.path.realpath(out_dir), output),
    )


def _row(r: Sequence[Any]) -> JournalRow:
    return JournalRow(bytes(r[0]), r[1], PhotoStatus(r[2]), r[3], r[4], r[5], json.loads(r[6]))
