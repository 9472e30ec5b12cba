"""publish --review, the review commands and calibrate, through the CLI in process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from tests.support.environment import REPO

pytestmark = pytest.mark.slow  # detection and matching run

SAMPLES = REPO / "sample_images"
PHOTO = SAMPLES / "event" / "IMG_0001.jpg"  # P001 beside an unenrolled adult


def run(runner: CliRunner, data: Path, *args: object):
    return runner.invoke(main, ["--data-dir", str(data), *map(str, args)])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("review") / "data"
    r = CliRunner()
    for args in (
        ["init"],
        ["pupils", "import", SAMPLES / "pupils.csv"],
        ["enroll", "--folder", SAMPLES / "references"],
    ):
        result = run(r, d, *args)
        assert result.exit_code == 0, result.output
    return d


def start_review(runner: CliRunner, data: Path, *extra: str) -> dict:
    result = run(
        runner,
        data,
        "publish",
        "--purpose",
        "website",
        "--review",
        "--json",
        "--date",
        "2026-10-01",
        *extra,
        PHOTO,
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_review_round_trip(data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    batch = start_review(runner, data)
    assert batch["awaiting_approval"] == 1
    assert Path(batch["contact_sheet"]).is_file()
    assert Path(batch["contact_sheet"]).stat().st_mode & 0o077 == 0
    listed = json.loads(run(runner, data, "review", "list", "--json").stdout)
    assert batch["batch"] in [b["batch"] for b in listed]

    approve = run(
        runner,
        data,
        "review",
        "approve",
        batch["batch"],
        "F0001",
        "F0002",
        "--reviewer",
        "Mrs Head",
    )
    # F0002 is the blurred stranger: approving it is refused, nothing is recorded.
    assert approve.exit_code == 1 and "un-blur" in approve.stderr
    kept_id = next(
        f["face_id"]
        for p in json.loads((Path(batch["contact_sheet"]).with_suffix(".json")).read_text())[
            "photos"
        ]
        for f in p["faces"]
        if f["decision"] == "kept"
    )
    ok = run(runner, data, "review", "approve", batch["batch"], kept_id, "--reviewer", "Mrs Head")
    assert ok.exit_code == 0, ok.output

    out = tmp_path / "out"
    pub = run(
        runner,
        data,
        "review",
        "publish",
        batch["batch"],
        "--out",
        out,
        "--json",
        "--date",
        "2026-10-01",
        "--operator",
        "office",
    )
    assert pub.exit_code == 0, pub.output
    [photo] = json.loads(pub.stdout)["photos"]
    kept = [f for f in photo["faces"] if f["decision"] == "kept"]
    assert [f["pupil_id"] for f in kept] == ["P001"]
    again = run(runner, data, "review", "publish", batch["batch"], "--out", tmp_path / "o2")
    assert again.exit_code == 1 and "already published" in again.stderr
    log = json.loads(
        run(runner, data, "audit", "log", "--json", "--action", "review_approved").stdout
    )
    assert log[-1]["operator"] == "Mrs Head"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--no-biometrics", "--out", "x"], "--no-biometrics goes with --review"),
        ([], "Missing option '--out'"),
    ],
)
def test_publish_review_usage_errors(data: Path, args: list[str], message: str) -> None:
    result = run(CliRunner(), data, "publish", "--purpose", "website", *args, PHOTO)
    assert result.exit_code == 2
    assert message in result.stderr


def test_no_biometrics_review_starts_with_everyone_blurred(data: Path) -> None:
    batch = start_review(CliRunner(), data, "--no-biometrics")
    assert batch["faces"] == 2 and batch["awaiting_approval"] == 0


def test_calibrate_with_one_enrolled_pupil_warns_and_plots(data: Path, tmp_path: Path) -> None:
    plot = tmp_path / "cal.png"
    result = run(CliRunner(), data, "calibrate", "--json", "--plot", plot)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["pupils"] == 1 and report["recommended_tolerance"] is None
    assert "Fewer than two pupils" in result.stderr
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_class_filter_naming_nobody_is_an_error(data: Path, tmp_path: Path) -> None:
    result = run(
        CliRunner(),
        data,
        "publish",
        "--purpose",
        "website",
        "--class",
        "9Z",
        "--out",
        tmp_path / "o",
        PHOTO,
    )
    assert result.exit_code == 1 and "name no pupil" in result.stderr


def test_class_filter_keeps_the_class(data: Path, tmp_path: Path) -> None:
    result = run(
        CliRunner(),
        data,
        "publish",
        "--purpose",
        "website",
        "--class",
        "3b",
        "--date",
        "2026-10-01",
        "--json",
        "--out",
        tmp_path / "o",
        PHOTO,
    )
    assert result.exit_code == 0, result.output
    [photo] = json.loads(result.stdout)["photos"]
    assert [f["pupil_id"] for f in photo["faces"] if f["decision"] == "kept"] == ["P001"]


def test_review_by_pupil_round_trip_on_a_real_photo(data: Path, tmp_path: Path) -> None:
    """publish --review -> the pupil's grid -> approve all by name -> review publish."""
    runner = CliRunner()
    batch = start_review(runner, data)["batch"]
    listed = run(runner, data, "review", "pupils", batch, "--json")
    assert listed.exit_code == 0, listed.output
    [alex] = json.loads(listed.stdout)
    assert (alex["pupil_id"], alex["name"], alex["class"]) == ("P001", "Alex Example", "3B")
    [face] = alex["faces"]
    assert (face["kind"], face["verdict"], alex["waiting"]) == ("matched", None, 1)
    text = run(runner, data, "review", "pupils", batch)
    assert f"Alex Example (3B)\twaiting=1\t{face['face_id']}(matched)" in text.stdout

    # A name is a few letters of it; a pupil ID is not a name.
    refused = run(
        runner, data, "review", "approve-pupil", batch, "--name", "P001", "--reviewer", "Mrs Head"
    )
    assert refused.exit_code == 1 and "No pupil's name begins" in refused.stderr
    ok = run(
        runner, data, "review", "approve-pupil", batch, "--name", "alex ex", "--reviewer", "Mrs H"
    )
    assert ok.exit_code == 0, ok.output
    assert f"approved: {face['face_id']} as Alex Example (3B) (by Mrs H)" in ok.stderr

    out = tmp_path / "out"
    pub = run(
        runner, data, "review", "publish", batch, "--out", out, "--json", "--date", "2026-10-01"
    )
    assert pub.exit_code == 0, pub.output
    [photo] = json.loads(pub.stdout)["photos"]
    kept = [(f["pupil_id"], f["reason"]) for f in photo["faces"] if f["decision"] == "kept"]
    assert kept == [("P001", "matched a pupil with consent, and a reviewer approved it")]
    log = json.loads(
        run(runner, data, "audit", "log", "--json", "--action", "review_approved").stdout
    )
    assert log[-1]["operator"] == "Mrs H" and log[-1]["details"]["by_pupil"] == "P001"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--name", "s"], 1, "at least 2 letters"),
        (["--name", "jo pl"], 0, "as Jo Placeholder (4A)"),
        ([], 2, "Say who it is with --name"),
        (["--name", "sam", "--as", "P002"], 2, "Say who it is with --name"),
    ],
)
def test_unblur_by_name(data: Path, args: list[str], code: int, message: str) -> None:
    runner = CliRunner()
    batch = start_review(runner, data, "--no-biometrics")["batch"]
    result = run(runner, data, "review", "unblur", batch, "F0001", *args, "--reviewer", "Mrs H")
    assert result.exit_code == code, result.output
    assert message in result.stderr


def test_the_review_page_is_given_the_pupils_stored_reference_crop(data: Path) -> None:
    import io

    from PIL import Image

    from commands.review import reference_provider
    from consent.store import open_store

    with open_store(data) as store:
        reference = reference_provider(store)
        jpeg = reference("P001")  # enrolled by the fixture, with biometric consent
        # P002 has no biometric consent, P003 no reference, P999 is not in the register.
        others = [reference(p) for p in ("P002", "P003", "P999")]
    assert jpeg is not None and others == [None, None, None]
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.format == "JPEG" and 40 <= max(image.size) <= 200


def test_publish_review_points_to_review_by_pupil(data: Path) -> None:
    """The hint after publish --review names the by-pupil review, not face-by-face IDs."""
    result = run(
        CliRunner(),
        data,
        "publish",
        "--purpose",
        "website",
        "--review",
        "--date",
        "2026-10-01",
        PHOTO,
    )
    assert result.exit_code == 0, result.output
    batch = re.search(r"Review batch (\S+):", result.stderr)
    assert batch is not None, result.stderr
    assert f"photoconsent review serve {batch.group(1)} --reviewer NAME" in result.stderr
    assert f"photoconsent review pupils {batch.group(1)}" in result.stderr
    assert "FACE_ID" not in result.stderr
