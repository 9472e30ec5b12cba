"""Batches: resuming, report.json over a whole batch, the folder lock, and hostile file-system
input (links out of the folder, unreadable files, odd file names, a full disk, 2,000 files).

These run publish in-process with a decider that finds no faces (the same seam a reviewed
batch uses), so no model loads; tests/e2e/test_crash_resume.py drives the real command.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli import main
from consent import audit
from consent import store as store_module
from consent.registry import Purpose
from consent.store import Store, init_data_dir, open_store
from pipeline.errors import OutputConflict
from publishing import outputs
from publishing import publish as publish_module
from publishing.inputs import collect_photos
from publishing.options import PublishOptions
from publishing.outputs import FolderLock
from publishing.publish import publish
from publishing.report import PhotoStatus, PublishReport

PUBLISHED, WITHHELD = PhotoStatus.PUBLISHED, PhotoStatus.WITHHELD


def no_faces(path: Path, loaded: object) -> list:
    return []


def photo(path: Path, shade: int = 128, size: tuple[int, int] = (24, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((size[1], size[0], 3), shade % 256, np.uint8)
    Image.fromarray(pixels).save(path, "PNG")
    return path


@pytest.fixture
def card(tmp_path: Path) -> Path:
    card = tmp_path / "card"
    for i in range(5):
        photo(card / f"IMG_{i:04d}.png", shade=40 * i)
    return card


def options(tmp_path: Path, **kw: object) -> PublishOptions:
    return PublishOptions(
        purpose=Purpose.WEBSITE, out_dir=tmp_path / "out", operator="office", workers=1, **kw
    )


def run(store: Store, inputs: list[Path], opts: PublishOptions) -> PublishReport:
    return publish(store, inputs, opts, decider=no_faces)


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def audit_outputs(store: Store) -> list[str]:
    return sorted(e.details["output"] for e in audit.entries(store, action="publish"))


def test_a_rerun_of_a_finished_batch_redoes_nothing(
    store: Store, card: Path, tmp_path: Path
) -> None:
    opts = options(tmp_path)
    first = run(store, [card], opts)
    entries = len(audit.entries(store))

    second = run(store, [card], opts)

    assert len(first.published) == len(second.published) == 5
    assert len(second.resumed) == 5
    assert len(audit.entries(store)) == entries  # nothing new to account for
    assert visible(opts.out_dir) == [f"event-{i:04d}.jpg" for i in range(1, 6)] + ["report.json"]
    report = json.loads((opts.out_dir / "report.json").read_text())
    assert report["batch"] == first.batch == second.batch
    assert [p["output"] for p in report["photos"]] == [r.output for r in first.results]
    assert report["summary"]["resumed"] == 5


def test_an_interrupted_batch_finishes_and_reports_the_whole_batch(
    store: Store, card: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = options(tmp_path)
    calls = 0
    real_reveal = publish_module.reveal

    def interrupted_reveal(temp: Path, dest: Path) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:  # Ctrl-C after the 3rd photo's audit entry committed
            raise KeyboardInterrupt
        real_reveal(temp, dest)

    monkeypatch.setattr(publish_module, "reveal", interrupted_reveal)
    with pytest.raises(KeyboardInterrupt):
        run(store, [card], opts)
    monkeypatch.undo()
    # Two visible, one committed but still hidden, no report yet.
    assert visible(opts.out_dir) == ["event-0001.jpg", "event-0002.jpg"]

    report = run(store, [card], opts)

    assert [r.status for r in report.results] == [PhotoStatus.PUBLISHED] * 5
    assert [r.resumed for r in report.results] == [True, True, True, False, False]
    names = [Path(r.output or "").name for r in report.results]
    assert names == [f"event-{i:04d}.jpg" for i in range(1, 6)]
    assert visible(opts.out_dir) == sorted(names) + ["report.json"]
    # No hidden leftovers: no temp file, no lock (it lives in the temporary folder).
    assert sorted(p.name for p in opts.out_dir.iterdir()) == visible(opts.out_dir)
    assert audit_outputs(store) == sorted(names)  # exactly one entry per output
    assert audit.verify(store).ok
    saved = json.loads((opts.out_dir / "report.json").read_text())
    assert [Path(p["output"]).name for p in saved["photos"]] == names


def test_a_deleted_or_changed_output_is_published_again(
    store: Store, card: Path, tmp_path: Path
) -> None:
    opts = options(tmp_path)
    run(store, [card], opts)
    (opts.out_dir / "event-0002.jpg").unlink()
    (opts.out_dir / "event-0004.jpg").write_bytes(b"edited")

    report = run(store, [card], opts)

    redone = [Path(r.output or "").name for r in report.results if not r.resumed]
    # Names are never reused in a folder, so each audit entry names one file.
    assert redone == ["event-0006.jpg", "event-0007.jpg"]
    assert len(audit_outputs(store)) == len(set(audit_outputs(store))) == 7


def test_a_different_batch_keeps_the_earlier_report(
    store: Store, card: Path, tmp_path: Path
) -> None:
    opts = options(tmp_path)
    first = run(store, [card], opts)
    second = run(store, [card / "IMG_0000.png"], opts)

    reports = [p for p in visible(opts.out_dir) if p.startswith("report")]
    assert len(reports) == 2 and second.archived_report is not None
    kept = json.loads(second.archived_report.read_text())
    assert kept["batch"] == first.batch and len(kept["photos"]) == 5
    latest = json.loads((opts.out_dir / "report.json").read_text())
    assert latest["batch"] == second.batch and len(latest["photos"]) == 1
    # Report files found in an input folder are not taken for photos.
    assert not [p for p in collect_photos([opts.out_dir]) if "report" in p.path.name]


def test_a_second_publish_into_a_locked_folder_is_refused(
    store: Store, card: Path, tmp_path: Path
) -> None:
    opts = options(tmp_path)
    opts.out_dir.mkdir()
    with FolderLock(opts.out_dir), pytest.raises(OutputConflict, match=f"process {os.getpid()}"):
        run(store, [card], opts)
    assert audit.entries(store, action="publish") == []
    # Released: the holder note is gone and the folder is usable again.
    assert run(store, [card], opts).published
    assert not FolderLock(opts.out_dir).holder_path.exists()


def test_a_lock_left_by_a_dead_process_is_not_stale(
    store: Store, card: Path, tmp_path: Path
) -> None:
    opts = options(tmp_path)
    opts.out_dir.mkdir()
    lock = FolderLock(opts.out_dir)
    lock.path.write_text("")  # a killed holder's lock file and note
    lock.holder_path.write_text("999999\n")
    assert len(run(store, [card], opts).published) == 5


def test_leftover_temp_files_are_removed(store: Store, card: Path, tmp_path: Path) -> None:
    opts = options(tmp_path)
    opts.out_dir.mkdir()
    stale = opts.out_dir / outputs.temp_name("event-0001.jpg")
    stale.write_bytes(b"half a photo")
    (opts.out_dir / ".report.json.tmp").write_text("{")

    run(store, [card], opts)

    # No hidden leftovers: no temp file, no lock (it lives in the temporary folder).
    assert sorted(p.name for p in opts.out_dir.iterdir()) == visible(opts.out_dir)


# --- hostile file-system input ---------------------------------------------------------------


def test_links_out_of_the_input_folder_are_withheld(
    store: Store, card: Path, tmp_path: Path
) -> None:
    secret = photo(tmp_path / "private" / "head.png")
    (card / "link-out.png").symlink_to(secret)
    (card / "folder-out").symlink_to(secret.parent, target_is_directory=True)
    (card / "link-in.png").symlink_to(card / "IMG_0000.png")
    (card / "dangling.png").symlink_to(card / "deleted.png")

    report = run(store, [card], options(tmp_path))

    by_name = {Path(r.input).name: r for r in report.results}
    assert by_name["link-out.png"].status is PhotoStatus.WITHHELD
    assert "outside the input folder" in by_name["link-out.png"].reason
    assert "outside the input folder" in by_name["folder-out"].reason
    assert by_name["link-in.png"].status is PhotoStatus.PUBLISHED
    assert "cannot open" in by_name["dangling.png"].reason
    assert secret.read_bytes() and not any("head" in str(r.output) for r in report.results)
    withheld = audit.entries(store, action="withhold")
    assert sorted(Path(e.details["input"]).name for e in withheld) == [
        "dangling.png",
        "folder-out",
        "link-out.png",
    ]


UNREADABLE = {
    "a named pipe": lambda p: os.mkfifo(p),
    "no read permission": lambda p: (photo(p), p.chmod(0)),
}


@pytest.mark.parametrize("make", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_unreadable_files_are_withheld_and_the_batch_goes_on(
    store: Store, tmp_path: Path, make: object
) -> None:
    if make is UNREADABLE["no read permission"] and os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    photo(tmp_path / "in" / "a.png")
    bad = tmp_path / "in" / "b.png"
    make(bad)  # type: ignore[operator]
    photo(tmp_path / "in" / "c.png")

    report = run(
        store, [tmp_path / "in" / n for n in ("a.png", "b.png", "c.png")], options(tmp_path)
    )

    assert [r.status for r in report.results] == [PUBLISHED, WITHHELD, PUBLISHED]
    assert report.results[1].reason.startswith("b.png: ")


ODD_NAMES = {
    "not UTF-8 (Latin-1 e-acute)": b"caf\xe9.png",
    "terminal escape": b"\x1b[2J\x1b[31mOK.png",
    "newline and carriage return": b"a\nwithheld other.png: fine\r.png",
    "right-to-left override": "gnp.\u202eexe.png".encode(),
}


@pytest.mark.parametrize("raw", ODD_NAMES.values(), ids=ODD_NAMES.keys())
def test_odd_file_names_cannot_break_or_spoof_the_report(
    store: Store, tmp_path: Path, raw: bytes
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(raw)
    photo(folder / name)
    (folder / (name + ".bad.png")).write_bytes(b"not an image")

    report = run(store, [folder], options(tmp_path))

    assert [r.status for r in report.results] == [PUBLISHED, WITHHELD]
    text = (tmp_path / "out" / "report.json").read_bytes().decode("utf-8")  # valid UTF-8
    saved = json.loads(text)
    assert all("\n" not in line or line == "" for line in text.split("\n"))
    assert [Path(p["input"]).name for p in saved["photos"]][0] == os.fsencode(name).decode(
        "utf-8", "backslashreplace"
    )
    assert audit.verify(store).ok
    # Outputs have neutral names whatever the input was called.
    assert visible(tmp_path / "out") == ["event-0001.jpg", "report.json"]


def test_odd_names_reach_the_terminal_only_made_safe(
    runner, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    (folder).mkdir()
    (folder / "\x1b[2J\u202eevil\r.png").write_bytes(b"not an image")
    result = runner.invoke(
        main,
        [
            "--data-dir",
            str(data_dir),
            "publish",
            "--purpose",
            "website",
            "--out",
            str(tmp_path / "out"),
            str(folder),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
    assert "\r" not in result.stderr
    assert "withheld 1: " in result.stderr


def test_a_full_disk_stops_the_batch_and_a_rerun_finishes_it(
    store: Store, card: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = options(tmp_path)
    real_write = os.write
    writes = 0

    def filling_write(fd: int, data: bytes) -> int:
        nonlocal writes
        # Only the photos hit the full disk (the data directory is on another one); the
        # report written at the end is not what this test is about.
        if ".jpg.tmp-" not in os.readlink(f"/proc/self/fd/{fd}"):
            return real_write(fd, data)
        writes += 1
        if writes > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(outputs.os, "write", filling_write)
    report = run(store, [card], opts)
    monkeypatch.undo()

    assert [r.status for r in report.results] == [PhotoStatus.PUBLISHED] * 2 + [
        PhotoStatus.WITHHELD
    ] * 3
    assert "No space left on device" in report.results[2].reason
    assert all("disk is full" in r.reason for r in report.results[3:])
    assert visible(opts.out_dir) == ["event-0001.jpg", "event-0002.jpg", "report.json"]
    # No hidden leftovers: no temp file, no lock (it lives in the temporary folder).
    assert sorted(p.name for p in opts.out_dir.iterdir()) == visible(opts.out_dir)
    # Only the photo that hit the full disk is audited as withheld; the rest never ran.
    assert len(audit.entries(store, action="withhold")) == 1

    again = run(store, [card], opts)

    assert [r.status for r in again.results] == [PhotoStatus.PUBLISHED] * 5
    assert audit_outputs(store) == [f"event-{i:04d}.jpg" for i in range(1, 6)]


@pytest.mark.slow  # 2,000 photos and 2,000 audit commits: about a minute
def test_a_folder_of_two_thousand_files(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    data = photo(tmp_path / "one.png").read_bytes()
    folder.mkdir()
    for i in range(2000):
        (folder / f"DSC{i:05d}.png").write_bytes(data)
    (folder / "DSC00007.png").write_bytes(b"")

    report = run(store, [folder], options(tmp_path))

    assert len(report.results) == 2000
    assert len(report.published) == 1999
    assert report.withheld_by_reason() == {"file is empty (0 bytes)": 1}
    assert len(visible(tmp_path / "out")) == 2000  # 1,999 photos and report.json
    assert len(set(audit_outputs(store))) == 1999


# Before the journal table became migration 6, publishing/journal.py ran these very
# statements on a batch's first publish: a data directory made then has the table and
# stops at migration 5.
OLD_JOURNAL_SCHEMA = store_module.MIGRATIONS[5]
LATER_PUPIL_COLUMNS = store_module.MIGRATIONS[6]


def test_a_new_data_directory_has_the_journal_from_its_migrations(store: Store) -> None:
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
    assert {"publish_journal", "publish_journal_out"} <= tables


def test_a_batch_journalled_before_migration_6_still_resumes(
    tmp_path: Path, card: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "old-data"
    with monkeypatch.context() as old_code:
        old_code.setattr(store_module, "MIGRATIONS", store_module.MIGRATIONS[:5])
        init_data_dir(data)
        with open_store(data) as old:
            with old.transaction() as conn:
                for statement in OLD_JOURNAL_SCHEMA:
                    conn.execute(statement)
                # Today's publish reads the names of migration 7; the old run gets those
                # columns for its duration only, so the upgrade below adds them as it would.
                for statement in LATER_PUPIL_COLUMNS:
                    conn.execute(statement)
            first = run(old, [card], options(tmp_path))
            assert store_module.schema_version(old.conn) == 5
            with old.transaction() as conn:
                for column in ("preferred_first_name", "preferred_last_name", "other_names"):
                    conn.execute(f"ALTER TABLE pupils DROP COLUMN {column}")

    with open_store(data) as upgraded:
        assert store_module.schema_version(upgraded.conn) == len(store_module.MIGRATIONS)
        assert audit.verify(upgraded).ok
        rows = upgraded.conn.execute("SELECT COUNT(*) FROM publish_journal").fetchone()[0]
        again = run(upgraded, [card], options(tmp_path))

    assert rows == 5 and len(first.published) == 5
    assert len(again.resumed) == 5 and again.batch == first.batch
    assert [r.output for r in again.results] == [r.output for r in first.results]


def test_the_folder_lock_is_outside_the_output_folder_and_one_per_folder(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert FolderLock(a).path == FolderLock(a).path != FolderLock(b).path
    assert tmp_path not in FolderLock(a).path.parents
    with FolderLock(a), pytest.raises(OutputConflict, match="Another publish"):
        with FolderLock(a):
            pass
    with FolderLock(a), FolderLock(b):  # different folders do not block each other
        pass
