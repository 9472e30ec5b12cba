"""The one safe-file writer: exclusive create, no clobber, fsync, atomic replace, modes."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent import files
from consent.errors import ConsentError, FileConflict, FileWriteError


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def io_error(*args: object, **kwargs: object) -> None:
    raise OSError(errno.EIO, "Input/output error")


def no_links(*args: object) -> None:
    raise OSError(errno.EPERM, "Operation not permitted")  # as on FAT/exFAT


# --- write_new: a new file, whole or not at all ---------------------------------------------


def test_write_new_writes_exact_bytes(tmp_path: Path) -> None:
    dest = tmp_path / "out.jpg"
    files.write_new(dest, b"payload", mode=files.PUBLIC)
    assert dest.read_bytes() == b"payload"
    assert leftovers(tmp_path) == []


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    dest = tmp_path / "out.jpg"
    dest.write_bytes(b"original")
    with pytest.raises(FileConflict, match="already exists and was left untouched"):
        files.write_new(dest, b"new", mode=files.PUBLIC)
    assert dest.read_bytes() == b"original"
    assert leftovers(tmp_path) == []


def test_refuses_dangling_symlink(tmp_path: Path) -> None:
    dest = tmp_path / "out.jpg"
    dest.symlink_to(tmp_path / "elsewhere.jpg")
    with pytest.raises(FileConflict, match="exists"):
        files.write_new(dest, b"new", mode=files.PUBLIC)
    assert not (tmp_path / "elsewhere.jpg").exists()


@pytest.mark.parametrize("links", [True, False], ids=["hard links", "no hard links"])
def test_race_with_another_writer_is_a_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool
) -> None:
    dest = tmp_path / "out.jpg"
    real_link = os.link

    def racing_link(src: Path, dst: Path) -> None:
        Path(dst).write_bytes(b"the other writer")  # appears after the existence check
        (real_link if links else no_links)(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(FileConflict, match="exists"):
        files.write_new(dest, b"mine", mode=files.PUBLIC)
    monkeypatch.undo()
    assert dest.read_bytes() == b"the other writer"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("writer", "failing", "old"),
    [(files.write_new, name, None) for name in ("link", "fsync", "write")]
    + [(files.replace_atomic, name, b"old") for name in ("replace", "fsync", "write")],
)
def test_failure_leaves_no_temp_file_and_the_name_as_it_was(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    writer: Callable[..., None],
    failing: str,
    old: bytes | None,
) -> None:
    dest = tmp_path / "out.png"
    if old is not None:
        dest.write_bytes(old)
    monkeypatch.setattr(os, failing, io_error)
    with pytest.raises(FileWriteError, match="Input/output error") as caught:
        writer(dest, b"data", mode=files.PUBLIC)
    monkeypatch.undo()
    assert caught.value.step == "write" and caught.value.path == dest
    assert leftovers(tmp_path) == []
    assert (dest.read_bytes() if dest.exists() else None) == old


def test_directory_fsync_failure_removes_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync, calls = os.fsync, []

    def second_fsync_fails(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:  # 1st: the file, 2nd: the directory
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", second_fsync_fails)
    dest = tmp_path / "out.png"
    with pytest.raises(FileWriteError):
        files.write_new(dest, b"data", mode=files.PUBLIC)
    assert not dest.exists() and leftovers(tmp_path) == []


def test_falls_back_when_hard_links_are_unsupported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "link", no_links)
    dest = tmp_path / "out.webp"
    files.write_new(dest, b"data", mode=files.PUBLIC)
    assert dest.read_bytes() == b"data"
    assert leftovers(tmp_path) == []


def test_missing_directory_is_a_write_error_saying_what_to_check(tmp_path: Path) -> None:
    dest = tmp_path / "no-such-dir" / "out.jpg"
    with pytest.raises(FileWriteError, match="Check that the folder exists") as caught:
        files.write_new(dest, b"data", mode=files.PUBLIC)
    assert caught.value.step == "create" and caught.value.path == dest


@pytest.mark.usefixtures("umask_022")
@pytest.mark.parametrize(("wanted", "expected"), [(files.PUBLIC, 0o644), (files.PRIVATE, 0o600)])
def test_mode_is_set_when_the_file_is_created(tmp_path: Path, wanted: int, expected: int) -> None:
    files.write_new(tmp_path / "out.jpg", b"data", mode=wanted)
    assert mode(tmp_path / "out.jpg") == expected


def test_dash_name_is_just_a_file(tmp_path: Path) -> None:
    files.write_new(tmp_path / "-v.jpg", b"data", mode=files.PUBLIC)
    assert (tmp_path / "-v.jpg").read_bytes() == b"data"


def test_short_writes_are_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    files.write_new(tmp_path / "out.bin", b"0123456789", mode=files.PRIVATE)
    monkeypatch.undo()
    assert (tmp_path / "out.bin").read_bytes() == b"0123456789"


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=4096))
def test_bytes_round_trip(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    dest = tmp_path_factory.mktemp("round") / "f"
    files.write_new(dest, data, mode=files.PRIVATE)
    assert dest.read_bytes() == data


# --- create_exclusive: the name itself, opened with O_EXCL --------------------------------


def test_create_exclusive_writes_and_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "pupil.json"
    files.create_exclusive(path, b"{}", mode=files.PRIVATE)
    assert path.read_bytes() == b"{}"
    with pytest.raises(FileConflict) as caught:
        files.create_exclusive(path, b"other", mode=files.PRIVATE)
    assert caught.value.step == "create" and caught.value.reason == "File exists"
    assert path.read_bytes() == b"{}"


@pytest.mark.parametrize("sync_folder", [True, False])
def test_create_exclusive_removes_the_file_when_the_disk_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync_folder: bool
) -> None:
    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    path = tmp_path / "out.jpg"
    with pytest.raises(FileWriteError) as caught:
        files.create_exclusive(path, b"data", mode=files.PUBLIC, sync_folder=sync_folder)
    monkeypatch.undo()
    assert caught.value.disk_full and caught.value.step == "write"
    assert str(caught.value) == (
        f"Cannot write {path}: No space left on device. Free some space on that disk, then "
        "try again."
    )
    assert not path.exists()


def test_create_exclusive_folder_sync_is_optional(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    files.create_exclusive(tmp_path / "a", b"x", mode=files.PUBLIC, sync_folder=False)
    files.create_exclusive(tmp_path / "b", b"x", mode=files.PUBLIC)
    assert len(synced) == 3  # a: the file; b: the file and the folder


# --- link_no_clobber: the visible name for a finished temp file ---------------------------


def finished_temp(folder: Path, name: str, data: bytes = b"data") -> Path:
    temp = folder / files.temp_name(name)
    files.create_exclusive(temp, data, mode=files.PUBLIC, sync_folder=False)
    return temp


def test_link_names_the_file_and_drops_the_temp(tmp_path: Path) -> None:
    temp = finished_temp(tmp_path, "out.jpg")
    files.link_no_clobber(temp, tmp_path / "out.jpg")
    assert (tmp_path / "out.jpg").read_bytes() == b"data" and not temp.exists()


@pytest.mark.parametrize("links", [True, False])
def test_link_refuses_an_existing_name_and_keeps_the_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool
) -> None:
    temp = finished_temp(tmp_path, "out.jpg")
    (tmp_path / "out.jpg").write_bytes(b"someone else's")
    if not links:
        monkeypatch.setattr(os, "link", no_links)
    with pytest.raises(FileConflict):
        files.link_no_clobber(temp, tmp_path / "out.jpg")
    assert (tmp_path / "out.jpg").read_bytes() == b"someone else's" and temp.exists()


def test_link_failure_keeps_the_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    temp = finished_temp(tmp_path, "out.jpg")
    monkeypatch.setattr(os, "link", io_error)
    with pytest.raises(FileWriteError, match="Input/output error"):
        files.link_no_clobber(temp, tmp_path / "out.jpg")
    assert temp.exists() and not (tmp_path / "out.jpg").exists()


# --- replace_atomic: the old file or the new one, never a mix -------------------------------


@pytest.mark.usefixtures("umask_022")
def test_replace_creates_then_replaces(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    files.replace_atomic(path, b"first", mode=files.PRIVATE)
    assert path.read_bytes() == b"first" and mode(path) == 0o600
    files.replace_atomic(path, b"second", mode=files.PRIVATE)
    assert path.read_bytes() == b"second"
    assert leftovers(tmp_path) == []


def test_replace_never_follows_a_planted_temp_link(tmp_path: Path) -> None:
    # The old writer reused ".report.json.tmp"; a link planted there was written through.
    target = tmp_path / "elsewhere"
    (tmp_path / ".report.json.tmp").symlink_to(target)
    files.replace_atomic(tmp_path / "report.json", b"data", mode=files.PRIVATE)
    assert not target.exists()


# --- names and errors ---------------------------------------------------------------------


def test_temp_names_are_hidden_fresh_and_recognised() -> None:
    first, second = files.temp_name("a.jpg"), files.temp_name("a.jpg")
    assert first != second and first.startswith(".a.jpg.tmp-")
    assert files.TEMP_RE.match(first) and not files.TEMP_RE.match("a.jpg")


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (errno.ENOSPC, "Free some space on that disk"),
        (errno.EACCES, "Check that you may write in that folder"),
        (errno.EROFS, "That disk is read-only"),
        (errno.EIO, "Check the disk, then try again"),
    ],
)
def test_errors_say_what_to_do(code: int, hint: str) -> None:
    error = FileWriteError("/x/out.jpg", OSError(code, os.strerror(code)), step="write")
    assert isinstance(error, ConsentError)
    assert str(error).startswith(f"Cannot write /x/out.jpg: {os.strerror(code)}. {hint}")
    assert error.disk_full == (code == errno.ENOSPC)
