"""`enroll` reports, `enroll --reencode` and `pupils list`'s re-enrol status (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from cli import main
from consent import enrolment
from consent.store import open_store
from pipeline.recognisers import DEFAULT_RECOGNISER
from tests.support.environment import REPO

SAMPLES = REPO / "sample_images"
REFERENCE = SAMPLES / "references" / "P001.jpg"

pytestmark = pytest.mark.slow


def invoke(runner: CliRunner, data_dir: Path, *args: object) -> Result:
    return runner.invoke(main, ["--data-dir", str(data_dir), *map(str, args)])


@pytest.fixture
def school(runner: CliRunner, data_dir: Path) -> Path:
    assert invoke(runner, data_dir, "pupils", "import", SAMPLES / "pupils.csv").exit_code == 0
    return data_dir


def test_enroll_reports_quality_and_what_each_pupil_needs(runner: CliRunner, school: Path) -> None:
    result = invoke(runner, school, "enroll", "P001", REFERENCE)
    assert result.exit_code == 0, result.output
    assert "enrolled P001 from P001.jpg (" in result.stderr
    assert "P001: 1 usable reference(s), 1 from the last year: add 2 more recent photos" in (
        result.stderr
    )


def test_enroll_json_gives_each_photo_and_pupil(runner: CliRunner, school: Path) -> None:
    result = invoke(runner, school, "enroll", "P001", REFERENCE, "--json")
    report = json.loads(result.stdout)
    assert report["recogniser"] == DEFAULT_RECOGNISER
    assert report["photos"][0]["enrolled"] is True
    assert report["pupils"]["P001"]["each"][0]["face_crop_kept"] is True


def test_reencode_moves_to_another_recogniser(runner: CliRunner, school: Path) -> None:
    invoke(runner, school, "enroll", "P001", REFERENCE)
    result = invoke(runner, school, "enroll", "--reencode", "--recogniser", "dlib")
    assert result.exit_code == 0, result.output
    assert f"Re-encoded with dlib (was {DEFAULT_RECOGNISER}): 1 template(s) made" in result.stderr
    with open_store(school) as store:
        assert enrolment.recogniser_setting(store.conn) == "dlib"
        assert list(enrolment.load_gallery(store, recogniser="dlib")) == ["P001"]


def test_reencode_takes_no_photos(runner: CliRunner, school: Path) -> None:
    result = invoke(runner, school, "enroll", "--reencode", "P001", REFERENCE)
    assert result.exit_code == 2 and "--reencode takes no photos" in result.stderr


def test_pupils_list_says_who_needs_re_enrolling(runner: CliRunner, school: Path) -> None:
    with open_store(school) as store:
        legacy = np.random.default_rng(3).normal(size=128)
        enrolment.add_reference(store, "P001", legacy, source_sha256="b" * 64, operator="old")
        enrolment.set_recogniser(store, "sface", operator="dpo")
    result = invoke(runner, school, "pupils", "list", "--json")
    (p001,) = [r for r in json.loads(result.stdout) if r["pupil_id"] == "P001"]
    assert p001["references"] == 1 and p001["references_for_matching"] == 0
    assert p001["references_status"] == "needs re-enrolling (new reference photos)"
    text = invoke(runner, school, "pupils", "list").stdout
    assert "refs=1 (needs re-enrolling (new reference photos))" in text


def test_pupils_list_says_an_older_sface_version_needs_re_encoding(
    runner: CliRunner, school: Path
) -> None:
    assert invoke(runner, school, "enroll", "P001", REFERENCE).exit_code == 0
    with open_store(school) as store, store.transaction() as conn:
        conn.execute("UPDATE face_templates SET version = 'opencv_zoo/before-landmark-box'")
    (p001,) = [
        r
        for r in json.loads(invoke(runner, school, "pupils", "list", "--json").stdout)
        if r["pupil_id"] == "P001"
    ]
    assert p001["references_for_matching"] == 0
    assert p001["references_status"] == "needs re-encoding (run: photoconsent enroll --reencode)"
    result = invoke(runner, school, "enroll", "--reencode")
    assert result.exit_code == 0, result.output
    assert "1 template(s) made" in result.stderr
    (p001,) = [
        r
        for r in json.loads(invoke(runner, school, "pupils", "list", "--json").stdout)
        if r["pupil_id"] == "P001"
    ]
    assert p001["references_for_matching"] == 1
    assert p001["references_status"].startswith("add 2 more recent photos")
