"""The subject access export finds every published photo of the child, not only the app's
own (issue 16): it looks where each ``publish`` audit entry says the file was written
(then through that output folder), copies only files with the recorded sha256, never
reads an original, and says how many were found and why the rest could not be copied.

Photos are published the way `photoconsent publish --out DIR` does
(`tests.support.cli_publish`: no model loads, P001's face kept).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from consent import audit
from consent.export import NOT_FOUND, export_pupil
from consent.registry import import_pupils_csv
from consent.store import Store, open_store
from tests.support.cli_publish import publish_like_the_cli
from tests.support.consent_factories import pupil_row, write_registry_csv


def add_pupils(store: Store, folder: Path) -> None:
    rows = [pupil_row("P001", first_name="Amelia", last_name="Hart"), pupil_row("P002")]
    import_pupils_csv(store, write_registry_csv(folder / "pupils.csv", rows), operator="t")


@pytest.fixture
def store(store: Store, tmp_path: Path) -> Store:
    add_pupils(store, tmp_path)
    return store


def listed(folder: Path) -> list[dict[str, object]]:
    return json.loads((folder / "published-photos.json").read_text())


def test_photos_published_from_the_command_line_are_found_and_copied(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative --out, as typed
    outputs = publish_like_the_cli(store, tmp_path / "card", Path("web-out"))
    assert len(outputs) == 2
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # exported from another folder

    result = export_pupil(store, "P001", tmp_path / "sar", operator="dpo")

    assert (result.photos_published, result.photos_found, result.photos_copied) == (2, 2, 2)
    items = listed(result.folder)
    copies = sorted((result.folder / str(i["included_as"])).read_bytes() for i in items)
    assert copies == sorted((tmp_path / "web-out" / p.name).read_bytes() for p in outputs)
    assert all(i["not_included_because"] is None for i in items)
    readme = (result.folder / "README.txt").read_text()
    assert "copies of 2 of those 2 published photo(s)" in readme
    assert "moved or deleted since it was published cannot be copied" in readme
    entry = audit.entries(store, action="subject_access_export")[-1]
    assert (entry.details["photos_published"], entry.details["photos_found"]) == (2, 2)


def test_a_renamed_photo_is_found_in_its_folder_and_a_deleted_one_is_said_so(
    store: Store, tmp_path: Path
) -> None:
    renamed, deleted = publish_like_the_cli(store, tmp_path / "card", tmp_path / "web-out")
    renamed.rename(renamed.with_name("renamed.jpg"))
    deleted.unlink()

    result = export_pupil(store, "P001", tmp_path / "sar", operator="dpo")

    assert (result.photos_published, result.photos_found, result.photos_missing) == (2, 1, 1)
    by_name = {i["output"]: i for i in listed(result.folder)}
    assert by_name[renamed.name]["included_as"] and by_name[deleted.name]["included_as"] is None
    assert by_name[deleted.name]["not_included_because"] == NOT_FOUND
    readme = (result.folder / "README.txt").read_text()
    assert "copies of 1 of those 2 published photo(s)" in readme
    assert "1 could not be" in readme and "not_included_because" in readme


def test_a_vanished_output_folder_is_passed_over_and_a_folder_given_is_searched(
    store: Store, tmp_path: Path
) -> None:
    publish_like_the_cli(store, tmp_path / "card", tmp_path / "gone", count=1)
    moved = publish_like_the_cli(store, tmp_path / "card2", tmp_path / "moved", 1, shade=160)
    shutil.rmtree(tmp_path / "gone")
    later = tmp_path / "found-later"
    later.mkdir()
    shutil.move(moved[0], later / "x.jpg")

    result = export_pupil(store, "P001", tmp_path / "sar", operator="dpo", photo_folders=[later])

    # The deleted folder's photo is missing; the moved one is found in the folder given.
    assert (result.photos_published, result.photos_found) == (2, 1)


def test_an_unreadable_output_folder_is_passed_over(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_like_the_cli(store, tmp_path / "card", tmp_path / "locked", count=1)
    locked = tmp_path / "locked"
    real = Path.read_bytes

    def refuse(path: Path) -> bytes:
        # As chmod 0 would for anyone but root (the tests may run as root).
        if path.absolute().is_relative_to(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    result = export_pupil(store, "P001", tmp_path / "sar", operator="dpo")
    assert (result.photos_published, result.photos_found) == (1, 0)


def _entry(store: Store, **details: object) -> None:
    with store.transaction() as conn:
        audit.append(
            conn,
            store.key,
            action="publish",
            operator="t",
            details={
                "purpose": "website",
                "status": "published",
                "pupils_kept": ["P001"],
                "pupils_blurred": [],
                **details,
            },
        )


def test_an_original_is_never_read_even_where_an_entry_points_at_it(
    store: Store, tmp_path: Path
) -> None:
    originals = tmp_path / "originals"
    originals.mkdir()
    photo = originals / "IMG_0001.jpg"
    photo.write_bytes(b"the child's unredacted original")
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    # A hand-edited or confused entry: the output "is" the input, in the input's folder.
    _entry(
        store,
        input_path=str(photo),
        output=photo.name,
        output_path=str(photo),
        out_dir=str(originals),
        output_sha256=sha,
    )

    result = export_pupil(store, "P001", tmp_path / "sar", operator="dpo")

    assert (result.photos_published, result.photos_found) == (1, 0)
    everything = b"".join(p.read_bytes() for p in result.folder.rglob("*") if p.is_file())
    assert b"unredacted original" not in everything


def test_a_web_service_upload_says_no_copy_was_kept(store: Store, tmp_path: Path) -> None:
    _entry(store, output="upload.jpg", output_sha256="0" * 64, via_service=True)
    result = export_pupil(store, "P001", tmp_path / "sar", operator="dpo")
    [item] = listed(result.folder)
    assert item["included_as"] is None and "web service" in str(item["not_included_because"])


def test_the_export_command_searches_the_recorded_folders_and_says_what_is_missing(
    data_dir: Path, tmp_path: Path
) -> None:
    with open_store(data_dir) as store:
        add_pupils(store, tmp_path)
        outputs = publish_like_the_cli(store, tmp_path / "card", tmp_path / "web-out")
    outputs[0].unlink()
    runner = CliRunner()
    args = ["--data-dir", str(data_dir), "export", "P001", "--operator", "dpo"]
    plain = runner.invoke(main, [*args, "--out", str(tmp_path / "sar")])
    assert plain.exit_code == 0, plain.output
    assert "1 of 2 published photo(s) found and copied" in plain.stderr
    assert "1 could not be copied: moved or deleted since publishing" in plain.stderr
    as_json = runner.invoke(main, [*args, "--out", str(tmp_path / "sar2"), "--json"])
    summary = json.loads(as_json.stdout)
    assert (summary["photos_found"], summary["photos_missing"]) == (1, 1)
    assert len(list((tmp_path / "sar2" / "photos").iterdir())) == 1
