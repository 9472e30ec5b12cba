"""A photo whose output cannot be written or audited is withheld and leaves no file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from consent import audit
from consent.registry import Purpose
from pipeline.detection import DetectionSettings, Thoroughness
from publishing import publish as publish_module
from publishing.options import PublishOptions
from publishing.outputs import DiskFull
from publishing.publish import publish
from publishing.report import PhotoStatus

pytestmark = pytest.mark.slow  # loads the detector


@pytest.fixture
def setup(store, tmp_path: Path):
    photos = tmp_path / "in"
    photos.mkdir()
    Image.fromarray(np.full((64, 96, 3), 128, np.uint8)).save(photos / "plain.png")
    options = PublishOptions(
        purpose=Purpose.WEBSITE,
        out_dir=tmp_path / "out",
        operator="test",
        detection=DetectionSettings(thoroughness=Thoroughness.FAST),
    )
    return store, photos, options


def test_a_full_disk_withholds_the_photo_instead_of_looping(setup, monkeypatch):
    store, photos, options = setup

    def disk_full(data, temp):
        raise DiskFull("cannot write the output: No space left on device")

    monkeypatch.setattr(publish_module, "write_temp", disk_full)
    report = publish(store, [photos], options)
    [result] = report.results
    assert result.status is PhotoStatus.WITHHELD
    assert "No space left" in result.reason
    assert sorted(p.name for p in options.out_dir.iterdir()) == ["report.json"]


def test_a_failed_audit_entry_removes_the_written_output(setup, monkeypatch):
    store, photos, options = setup
    real_append = audit.append

    def failing_append(conn, key, *, action, operator, details):
        if action == "publish":
            raise RuntimeError("database is locked")
        return real_append(conn, key, action=action, operator=operator, details=details)

    monkeypatch.setattr(publish_module.audit, "append", failing_append)
    report = publish(store, [photos], options)
    [result] = report.results
    assert result.status is PhotoStatus.WITHHELD
    assert "database is locked" in result.reason
    assert sorted(p.name for p in options.out_dir.iterdir()) == ["report.json"]
    assert [e.action for e in audit.entries(store)][-1] == "withhold"


def test_a_name_taken_meanwhile_moves_on_to_the_next_number(setup, monkeypatch):
    store, photos, options = setup
    real_write = publish_module.write_temp
    calls = []

    def racing_write(data, temp):
        calls.append(temp.name)
        if len(calls) == 1:  # another program creates the name while we write
            (temp.parent / "event-0001.jpg").write_bytes(b"someone else's file")
        real_write(data, temp)

    monkeypatch.setattr(publish_module, "write_temp", racing_write)
    [result] = publish(store, [photos], options).results
    assert result.status is PhotoStatus.PUBLISHED
    assert calls[0].startswith(".event-0001.jpg.tmp-")
    assert Path(result.output).name == "event-0002.jpg"
    assert (options.out_dir / "event-0001.jpg").read_bytes() == b"someone else's file"
    assert [e.details["output"] for e in audit.entries(store, action="publish")] == [
        "event-0002.jpg"
    ]
