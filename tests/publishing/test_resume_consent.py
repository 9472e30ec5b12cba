"""Resuming a batch never carries a copy past a consent change (fail closed): a photo the
batch already published is reused only while every pupil it kept still has consent for
the purpose on this run's date; otherwise its copy leaves the folder and the photo is
made again from the original, so the withdrawn child is blurred in it.

Publish runs in-process with a decider that keeps P001's face (no model loads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from consent import audit
from consent.changes import ChangeKind, ConsentChange, change_consent
from consent.registry import Purpose, import_pupils_csv
from consent.store import Store
from pipeline.boxes import Box
from pipeline.matching import Decision, FaceDecision, Reason
from publishing.options import PublishOptions
from publishing.publish import KEPT_WITHOUT_CONSENT, publish
from publishing.report import PhotoStatus
from tests.support.cli_publish import keeps, publish_like_the_cli
from tests.support.consent_factories import pupil_row, write_registry_csv


@pytest.fixture
def store(store: Store, tmp_path: Path) -> Store:
    rows = [pupil_row("P001", first_name="Amelia", last_name="Hart"), pupil_row("P002")]
    import_pupils_csv(store, write_registry_csv(tmp_path / "pupils.csv", rows), operator="t")
    return store


def withdraw_website(store: Store, pupil_id: str) -> None:
    change = ConsentChange(
        kind=ChangeKind.WITHDRAW, source="phone call", withdraw=frozenset({Purpose.WEBSITE})
    )
    change_consent(store, pupil_id, change, operator="office")


def blurs(path: Path, loaded: object) -> list[FaceDecision]:
    """What analysis decides for the same face once the child's consent is withdrawn."""
    return [FaceDecision(Box(2, 2, 8, 8), Decision.BLURRED, Reason.NO_CONSENT, "P001", 0.3)]


def options(out: Path) -> PublishOptions:
    return PublishOptions(purpose=Purpose.WEBSITE, out_dir=out, operator="office", workers=1)


def rerun(store: Store, camera: Path, out: Path, decider=blurs):  # type: ignore[no-untyped-def]
    return publish(store, [camera], options(out), decider=decider)


def test_a_rerun_after_a_withdrawal_remakes_the_photos_with_the_child_blurred(
    store: Store, tmp_path: Path
) -> None:
    camera, out = tmp_path / "card", tmp_path / "out"
    first = publish_like_the_cli(store, camera, out)
    assert len(first) == 2
    withdraw_website(store, "P001")

    report = rerun(store, camera, out)

    assert not any(r.resumed for r in report.results)
    for r in report.results:
        assert r.status is PhotoStatus.PUBLISHED
        assert [f.decision for f in r.faces] == [Decision.BLURRED]
        assert r.faces[0].reason is Reason.NO_CONSENT
    # The copies that kept her are gone from the folder; the new ones have new names.
    assert not any(p.exists() for p in first)
    names = sorted(p.name for p in out.iterdir() if p.suffix == ".jpg")
    assert names == sorted(Path(r.output or "").name for r in report.results)
    assert set(names).isdisjoint(p.name for p in first)
    # Each made copy has its own audit entry: 2 first, 2 again.
    assert len(audit.entries(store, action="publish")) == 4


def test_a_rerun_with_consent_unchanged_still_reuses_the_copies(
    store: Store, tmp_path: Path
) -> None:
    camera, out = tmp_path / "card", tmp_path / "out"
    first = publish_like_the_cli(store, camera, out)
    withdraw_website(store, "P002")  # someone else's change does not touch these photos

    report = rerun(store, camera, out, keeps("P001"))

    assert all(r.resumed for r in report.results)
    assert all(p.exists() for p in first)
    assert len(audit.entries(store, action="publish")) == 2


def test_a_face_kept_for_a_pupil_without_consent_withholds_the_photo(
    store: Store, tmp_path: Path
) -> None:
    """The backstop behind every decider: a kept face must have consent in this run's
    records, or the already-made pixels are not used."""
    camera, out = tmp_path / "card", tmp_path / "out"
    publish_like_the_cli(store, camera, out, count=1)
    withdraw_website(store, "P001")
    (camera / "IMG_new.jpg").write_bytes((camera / "IMG_0.jpg").read_bytes()[:-2] + b"\xff\xd9")

    report = publish(store, [camera / "IMG_new.jpg"], options(out), decider=keeps("P001"))

    (result,) = report.results
    assert result.status is PhotoStatus.WITHHELD
    assert result.reason == KEPT_WITHOUT_CONSENT
    assert not (out / "event-0002.jpg").exists()
