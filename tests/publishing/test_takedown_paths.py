"""A takedown trail that names files (issue 14): publish records absolute input and output
paths, the output folder and the destination, so a takedown run from any folder names the
very file to remove, tells apart two outputs of the same name in two folders, finds the
original to republish, and says plainly when a web-service upload left no original.

Faces come from fixed deciders (no model loads): `keeps_p001` keeps Amelia (P001).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli import main
from consent.changes import ChangeKind, ConsentChange, change_consent
from consent.registry import Purpose, import_pupils_csv
from consent.store import Store
from consent.takedown import takedown_report
from pipeline.boxes import Box
from pipeline.matching import Decision, FaceDecision, Reason
from publishing import publish as publish_module
from publishing import republish as republish_module
from publishing.options import PublishOptions
from publishing.publish import publish
from publishing.republish import RepublishStatus, republish
from tests.support.consent_factories import pupil_row, write_registry_csv


def keeps_p001(path: Path, loaded: object) -> list[FaceDecision]:
    return [FaceDecision(Box(2, 2, 8, 8), Decision.KEPT, Reason.MATCHED_WITH_CONSENT, "P001", 0.3)]


def no_faces(path: Path, loaded: object) -> list[FaceDecision]:
    return []


@pytest.fixture
def store(store: Store, tmp_path: Path) -> Store:
    rows = [pupil_row("P001", first_name="Amelia", last_name="Hart")]
    import_pupils_csv(store, write_registry_csv(tmp_path / "pupils.csv", rows), operator="t")
    return store


def photos(folder: Path, count: int = 1) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(np.full((24, 32, 3), 60 + i, np.uint8)).save(folder / f"IMG_{i}.jpg")


def withdraw_website(store: Store) -> None:
    change = ConsentChange(
        kind=ChangeKind.WITHDRAW, source="phone call", withdraw=frozenset({Purpose.WEBSITE})
    )
    change_consent(store, "P001", change, operator="office")


def test_takedown_from_another_folder_names_full_paths_and_republishes(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    school = tmp_path / "school"
    photos(school / "sports")
    photos(school / "nativity")
    monkeypatch.chdir(school)
    # Relative paths as an office manager types them; the same output name in two folders.
    for event in ("sports", "nativity"):
        opts = PublishOptions(
            purpose=Purpose.WEBSITE,
            out_dir=Path(f"web-{event}"),
            operator="office",
            workers=1,
            destination="school website",
        )
        publish(store, [Path(event)], opts, decider=keeps_p001)
    withdraw_website(store)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    items = takedown_report(store, "P001")

    assert sorted(i.where for i in items) == sorted(
        str(school / f"web-{e}" / "event-0001.jpg") for e in ("nativity", "sports")
    )
    assert {i.output for i in items} == {"event-0001.jpg"}  # the name alone is ambiguous
    assert {i.out_dir for i in items} == {str(school / "web-sports"), str(school / "web-nativity")}
    assert all(Path(i.input).is_absolute() and Path(i.input).is_file() for i in items)
    assert all("school website" in i.action and i.where in i.action for i in items)

    # Republished from this other folder: the originals are found by their absolute paths.
    real_publish = publish_module.publish
    monkeypatch.setattr(
        republish_module,
        "publish",
        lambda store, paths, options: real_publish(store, paths, options, decider=no_faces),
    )
    outcomes = republish(store, "P001", items, Path("replacements"), operator="office")

    assert [o.status for o in outcomes] == [RepublishStatus.REPLACED] * 2
    assert len(list((elsewhere / "replacements").glob("*.jpg"))) == 2
    assert all(i.replaced_by for i in takedown_report(store, "P001"))


def test_a_service_upload_says_no_original_was_kept(store: Store, tmp_path: Path) -> None:
    photos(tmp_path / "inbox")
    opts = PublishOptions(
        purpose=Purpose.WEBSITE,
        out_dir=tmp_path / "out",
        operator="token:cms",
        workers=1,
        destination="https://school.example/news",
        via_service=True,
    )
    publish(store, [tmp_path / "inbox"], opts, decider=keeps_p001)
    withdraw_website(store)

    (item,) = takedown_report(store, "P001")

    assert item.via_service and item.output_path is None
    assert item.action == (
        "uploaded through the web service, no original kept: remove event-0001.jpg from "
        "https://school.example/news"
    )
    assert str(tmp_path) not in item.action  # never the deleted temporary folder
    (outcome,) = republish(store, "P001", [item], tmp_path / "again", operator="office")
    assert outcome.status is RepublishStatus.UNAVAILABLE
    assert outcome.reason == item.action
    assert not (tmp_path / "again").exists()


def test_the_takedown_command_prints_full_paths_from_another_folder(
    store: Store, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos(tmp_path / "school" / "sports")
    monkeypatch.chdir(tmp_path / "school")
    opts = PublishOptions(
        purpose=Purpose.WEBSITE, out_dir=Path("web"), operator="office", workers=1
    )
    publish(store, [Path("sports")], opts, decider=keeps_p001)
    withdraw_website(store)
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), "takedown", "P001"])

    assert result.exit_code == 0, result.stderr
    full = str(tmp_path / "school" / "web" / "event-0001.jpg")
    assert full in result.stdout.splitlines()[1]
    assert f"remove {full}" in result.stderr
