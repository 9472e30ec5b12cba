"""publishing.outputs over the shared writer: the same errors and messages as before it."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from pipeline.errors import OutputConflict
from publishing.outputs import DiskFull, remove_stale_temps, reveal, temp_name, write_temp


def fill_the_disk(*args: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_write_temp_is_fsynced_and_readable(tmp_path: Path) -> None:
    temp = tmp_path / temp_name("event-0001.jpg")
    old = os.umask(0o022)
    try:
        write_temp(b"jpeg", temp)
    finally:
        os.umask(old)
    assert temp.read_bytes() == b"jpeg" and stat.S_IMODE(temp.stat().st_mode) == 0o644


def test_write_temp_refuses_an_existing_file(tmp_path: Path) -> None:
    temp = tmp_path / temp_name("event-0001.jpg")
    temp.write_bytes(b"other")
    with pytest.raises(OutputConflict) as caught:
        write_temp(b"jpeg", temp)
    assert str(caught.value) == f"cannot write in {tmp_path}: File exists"
    assert temp.read_bytes() == b"other"


def test_a_full_disk_while_writing_is_disk_full_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / temp_name("event-0001.jpg")
    monkeypatch.setattr(os, "write", fill_the_disk)
    with pytest.raises(DiskFull) as caught:
        write_temp(b"jpeg", temp)
    monkeypatch.undo()
    assert str(caught.value) == "cannot write the output: No space left on device"
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_on_create_names_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def open_full(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_CREAT:
            fill_the_disk()
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", open_full)
    with pytest.raises(DiskFull) as caught:
        write_temp(b"jpeg", tmp_path / temp_name("event-0001.jpg"))
    assert str(caught.value) == f"cannot write in {tmp_path}: No space left on device"


def test_reveal_names_the_output(tmp_path: Path) -> None:
    temp = tmp_path / temp_name("event-0001.jpg")
    write_temp(b"jpeg", temp)
    reveal(temp, tmp_path / "event-0001.jpg")
    assert [p.name for p in tmp_path.iterdir()] == ["event-0001.jpg"]


def test_reveal_conflict_is_an_output_conflict_and_keeps_the_temp(tmp_path: Path) -> None:
    temp = tmp_path / temp_name("event-0001.jpg")
    write_temp(b"jpeg", temp)
    (tmp_path / "event-0001.jpg").write_bytes(b"another program")
    with pytest.raises(OutputConflict) as caught:
        reveal(temp, tmp_path / "event-0001.jpg")
    assert str(caught.value) == "event-0001.jpg exists"
    assert temp.exists() and (tmp_path / "event-0001.jpg").read_bytes() == b"another program"


def test_reveal_io_error_stays_an_os_error_and_keeps_the_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # publish reports it as "could not read or write a file: ..." and the journal lets the
    # next run finish the reveal; an OutputConflict would void the audited entry instead.
    temp = tmp_path / temp_name("event-0001.jpg")
    write_temp(b"jpeg", temp)

    def failing_link(*args: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "link", failing_link)
    with pytest.raises(OSError) as caught:
        reveal(temp, tmp_path / "event-0001.jpg")
    assert not isinstance(caught.value, OutputConflict)
    assert caught.value.errno == errno.EIO and caught.value.strerror == "Input/output error"
    assert temp.exists()


def test_stale_temps_are_the_writers_temp_names(tmp_path: Path) -> None:
    stale, kept = temp_name("event-0001.jpg"), temp_name("event-0002.jpg")
    for name in (stale, kept, "event-0003.jpg", ".hidden"):
        (tmp_path / name).write_bytes(b"x")
    assert remove_stale_temps(tmp_path, {kept}) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([kept, "event-0003.jpg", ".hidden"])
