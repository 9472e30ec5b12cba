"""The whole job through the CLI, in process: init, import the consent CSV, enrol, publish,
then check the files, report.json and the audit log it leaves, on the bundled samples
(``sample_images/``: P001's reference photo, and two event photos with planted metadata)
and on hostile batches."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import piexif
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from cli import main
from consent import audit
from consent.store import open_store
from pipeline.boxes import Box
from pipeline.formats.findings import find_metadata
from pipeline.loading import load_image
from pipeline.matching import Reason
from pipeline.redaction import head_region
from tests.support import dirty
from tests.support.environment import REPO

pytestmark = pytest.mark.slow  # every publish runs the face detector

SAMPLES = REPO / "sample_images"
EVENT = SAMPLES / "event"
# Bytes make_samples.py plants in every event photo (the thumbnail is read from the file).
PLANTED = [b"SN-0042-DEMO", b"Alex Example", b"ExampleCam", b"EC-100"]
# The names in pupils.csv; none may reach report.json or the audit log.
NAMES = ["Alex", "Example", "Sam", "Sample", "Placeholder"]
REPORT_KEYS = {"input", "output", "status", "reason", "faces"}
FACE_KEYS = {"box", "decision", "pupil_id", "distance", "reason"}
# A day on which P001's slip (signed 2026-09-01) is in force, so the result does not
# depend on the machine's clock.
PUBLISH_DATE = "2026-10-01"
OPERATOR = "teacher-1"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def invoke(runner: CliRunner, data_dir: Path, *args: object) -> Result:
    return runner.invoke(main, ["--data-dir", str(data_dir), *map(str, args)])


def publish(
    runner: CliRunner, data_dir: Path, out: Path, *photos: object, **options: str
) -> Result:
    """``photoconsent publish`` with the --purpose, --date and --operator of the samples."""
    opts = {"purpose": "website", "date": PUBLISH_DATE, "operator": OPERATOR, **options}
    flags = [x for k, v in opts.items() for x in (f"--{k}", v)]
    return invoke(runner, data_dir, "publish", *flags, "--out", out, "--", *photos)


def entry(report: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [p for p in report["photos"] if Path(p["input"]).name == name]
    return found


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


def region_diff(a: np.ndarray, b: np.ndarray, box: Box) -> float:
    """Mean absolute difference of two same-size images inside ``box``."""
    rows, cols = box.pixel_slices(a.shape[1], a.shape[0])
    return float(np.abs(a[rows, cols] - b[rows, cols]).mean())


def outside_diff(a: np.ndarray, b: np.ndarray, regions: list[Box]) -> float:
    """Mean absolute difference of two same-size images outside every region."""
    keep = np.ones(a.shape[:2], bool)
    for region in regions:
        rows, cols = region.scaled(1.1).pixel_slices(a.shape[1], a.shape[0])
        keep[rows, cols] = False
    return float(np.abs(a - b)[keep].mean())


def blurred_regions(photo: dict[str, Any]) -> list[Box]:
    return [head_region(Box(*f["box"])) for f in photo["faces"] if f["decision"] == "blurred"]


@pytest.fixture(scope="module")
def module_runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory: pytest.TempPathFactory, module_runner: CliRunner) -> Path:
    """A data directory with the sample pupils and P001's face enrolled."""
    data_dir = tmp_path_factory.mktemp("samples") / "data"
    steps = [
        module_runner.invoke(main, ["init", "--data-dir", str(data_dir)]),
        invoke(module_runner, data_dir, "pupils", "import", SAMPLES / "pupils.csv"),
        invoke(module_runner, data_dir, "enroll", "--folder", SAMPLES / "references"),
    ]
    assert [s.exit_code for s in steps] == [0, 0, 0], [s.output for s in steps]
    return data_dir


@dataclass
class Published:
    result: Result
    out: Path
    report: dict[str, Any]
    inputs_before: dict[str, str]
    inputs_after: dict[str, str]


@pytest.fixture(scope="module")
def website(
    tmp_path_factory: pytest.TempPathFactory, module_runner: CliRunner, sample_data: Path
) -> Published:
    """The bundled event photos published for the website, as in `make demo`."""
    out = tmp_path_factory.mktemp("website") / "web"
    before = tree_hashes(SAMPLES)
    result = publish(module_runner, sample_data, out, EVENT, event="Sports day")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return Published(result, out, report, before, tree_hashes(SAMPLES))


# --- the sample publish ----------------------------------------------------------------------


def test_publish_succeeds_with_one_report_entry_per_photo(website: Published) -> None:
    assert website.result.exit_code == 0, website.result.output
    assert website.result.stdout == ""
    photos = website.report["photos"]
    assert [Path(p["input"]).name for p in photos] == ["IMG_0001.jpg", "IMG_0002.jpg"]
    for photo in photos:
        assert REPORT_KEYS <= photo.keys()
        assert photo["status"] == "published"
        assert photo["reason"]
    assert website.report["purpose"] == "website"
    assert website.report["summary"] == {
        "published": 2,
        "withheld": 0,
        "withheld_by_reason": {},
        "faces_kept": 1,
        "faces_blurred": 2,
        "resumed": 0,
        "captions": 2,
    }


def test_face_entries_have_the_documented_shape(website: Published) -> None:
    reasons = {r.value for r in Reason}
    faces = [f for p in website.report["photos"] for f in p["faces"]]
    assert faces
    for face in faces:
        assert FACE_KEYS <= face.keys()
        assert len(face["box"]) == 4 and all(type(v) is int for v in face["box"])
        x, y, w, h = face["box"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0
        assert face["decision"] in {"kept", "blurred"}
        assert face["reason"] in reasons
        assert face["distance"] is None or isinstance(face["distance"], float)
        assert face["pupil_id"] is None or face["pupil_id"] == "P001"


def test_only_the_consented_pupil_is_kept(website: Published) -> None:
    first, second = entry(website.report, "IMG_0001.jpg"), entry(website.report, "IMG_0002.jpg")

    kept = [f for f in first["faces"] if f["decision"] == "kept"]
    assert [(f["pupil_id"], f["reason"]) for f in kept] == [
        ("P001", Reason.MATCHED_WITH_CONSENT.value)
    ]
    assert kept[0]["distance"] <= 0.40
    # The astronaut (P001) is in the left half, the unknown cameraman in the right half.
    assert kept[0]["box"][0] + kept[0]["box"][2] <= 512
    assert [f["decision"] for f in first["faces"]].count("blurred") == 1
    assert second["faces"] and all(f["decision"] == "blurred" for f in second["faces"])


def test_report_and_audit_hold_no_pupil_names(website: Published, sample_data: Path) -> None:
    def without_inputs(photo: dict[str, Any]) -> dict[str, Any]:
        # The caller's own path, and the caption (checked below).
        return {k: v for k, v in photo.items() if k not in ("input", "caption")}

    report = json.dumps(
        {**website.report, "photos": [without_inputs(p) for p in website.report["photos"]]}
    )
    with open_store(sample_data) as store:
        details = json.dumps([without_inputs(e.details) for e in audit.entries(store)])

    for name in NAMES:
        assert name not in report
        assert name not in details
    # The samples carry "Alex Example, Class 3B" in their own ImageDescription. Rewritten
    # for the website: Alex (P001, kept with consent) by first name where his face is
    # shown, nobody named where it is not.
    first, second = entry(website.report, "IMG_0001.jpg"), entry(website.report, "IMG_0002.jpg")
    assert first["caption"]["caption"] == "Alex, Class 3B"
    assert first["caption"]["source"] == "embedded"
    assert "Alex" not in second["caption"]["caption"]
    assert "Example" not in json.dumps(website.report)


def test_outputs_have_neutral_names_and_nothing_else_is_written(website: Published) -> None:
    names = sorted(p.name for p in website.out.iterdir())

    assert names == ["captions.csv", "report.json", "sports-day-0001.jpg", "sports-day-0002.jpg"]
    assert [Path(p["output"]).name for p in website.report["photos"]] == names[2:]
    assert all(Path(p["output"]).is_file() for p in website.report["photos"])


@pytest.mark.parametrize("name", ["IMG_0001.jpg", "IMG_0002.jpg"])
def test_outputs_carry_no_metadata(website: Published, name: str) -> None:
    source = EVENT / name
    output = Path(entry(website.report, name)["output"]).read_bytes()
    thumbnail = piexif.load(str(source))["thumbnail"]

    assert find_metadata(output) == []
    assert len(thumbnail) > 100 and thumbnail in source.read_bytes()
    for planted in [*PLANTED, thumbnail]:
        assert planted in source.read_bytes()
        assert planted not in output


@pytest.mark.parametrize("name", ["IMG_0001.jpg", "IMG_0002.jpg"])
def test_outputs_are_upright_and_otherwise_unchanged(website: Published, name: str) -> None:
    photo = entry(website.report, name)
    upright = load_image(EVENT / name).pixels.astype(np.int16)
    with Image.open(EVENT / name) as im:
        stored = np.asarray(im.convert("RGB")).astype(np.int16)  # orientation not applied
    output = pixels(Path(photo["output"]))
    regions = blurred_regions(photo)

    assert output.shape == upright.shape
    assert outside_diff(output, upright, regions) < 4  # JPEG re-encoding only
    if name == "IMG_0002.jpg":  # stored sideways with orientation 6
        assert outside_diff(output, stored, regions) > 20


def test_blurred_heads_are_redacted_and_the_kept_face_is_not(website: Published) -> None:
    photo = entry(website.report, "IMG_0001.jpg")
    source = load_image(EVENT / "IMG_0001.jpg").pixels.astype(np.int16)
    output = pixels(Path(photo["output"]))

    for face in photo["faces"]:
        diff = region_diff(output, source, Box(*face["box"]))
        if face["decision"] == "kept":
            assert diff < 4, face
        else:
            assert diff > 15, face


def test_every_photo_has_a_matching_audit_entry(website: Published, sample_data: Path) -> None:
    with open_store(sample_data) as store:
        entries = [
            e for e in audit.entries(store, action="publish") if e.details["event"] == "Sports day"
        ]

    assert len(entries) == len(website.report["photos"])
    for e, photo in zip(entries, website.report["photos"], strict=True):
        output = Path(photo["output"])
        assert e.operator == OPERATOR
        assert e.details["purpose"] == "website"
        assert e.details["publish_date"] == PUBLISH_DATE
        assert e.details["status"] == "published"
        assert e.details["input_sha256"] == sha256(Path(photo["input"]))
        assert e.details["output"] == output.name
        assert e.details["output_sha256"] == sha256(output)
    assert entries[0].details["pupils_kept"] == ["P001"]
    assert entries[1].details["pupils_kept"] == []


def test_audit_verifies_after_publishing(website: Published, sample_data: Path) -> None:
    result = invoke(CliRunner(), sample_data, "audit", "verify")

    assert result.exit_code == 0, result.output


def test_inputs_are_untouched(website: Published) -> None:
    assert website.inputs_after == website.inputs_before


def test_published_photos_pass_check(website: Published, sample_data: Path) -> None:
    result = invoke(
        CliRunner(),
        sample_data,
        "check",
        "--purpose",
        "website",
        "--date",
        PUBLISH_DATE,
        "--json",
        website.out,
    )

    assert result.exit_code == 0, result.output
    assert all(v["safe"] for v in json.loads(result.stdout))


# --- consent decides ------------------------------------------------------------------------

NOT_PERMITTED = {
    "press (P001 said no)": {"purpose": "press"},
    "social media (P001 said no)": {"purpose": "social_media"},
    "before the slip was signed": {"date": "2026-08-31"},
}


@pytest.mark.parametrize("options", NOT_PERMITTED.values(), ids=NOT_PERMITTED.keys())
def test_pupil_without_consent_for_the_purpose_or_date_is_blurred(
    tmp_path: Path, module_runner: CliRunner, sample_data: Path, options: dict[str, str]
) -> None:
    result = publish(
        module_runner, sample_data, tmp_path / "out", EVENT / "IMG_0001.jpg", **options
    )

    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (photo,) = report["photos"]
    assert photo["faces"] and all(f["decision"] == "blurred" for f in photo["faces"])
    # P001 is the astronaut, the left half of the photo. With no enrolled pupil allowed
    # for the purpose nobody can be kept, so no face is encoded at all (no biometric
    # processing for nothing) and P001 is blurred unidentified.
    p001 = [f for f in photo["faces"] if f["box"][0] < 512]
    assert [f["reason"] for f in p001] == [Reason.NO_GALLERY.value]
    assert [f["pupil_id"] for f in p001] == [None]
    source = load_image(EVENT / "IMG_0001.jpg").pixels.astype(np.int16)
    assert region_diff(pixels(Path(photo["output"])), source, Box(*p001[0]["box"])) > 15


# --- dirty and hostile inputs ----------------------------------------------------------------

BUILDERS = {
    "jpeg": dirty.make_dirty_jpeg,
    "png": dirty.make_dirty_png,
    "webp": dirty.make_dirty_webp,
}


def quadrant_colours(image: np.ndarray) -> dict[str, tuple[int, int, int]]:
    """The palette colour nearest each quadrant's centre."""
    h, w = image.shape[:2]
    palette = list(dirty.QUADRANTS.values())
    out = {}
    for where in dirty.QUADRANTS:
        y = h // 4 if where[0] == "t" else 3 * h // 4
        x = w // 4 if where[1] == "l" else 3 * w // 4
        sample = image[y, x].astype(int)
        out[where] = min(palette, key=lambda c: int(np.abs(sample - np.array(c)).sum()))
    return out


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("fmt", BUILDERS)
def test_dirty_photo_comes_out_clean_and_upright(
    tmp_path: Path, runner: CliRunner, data_dir: Path, fmt: str, orientation: int
) -> None:
    source = BUILDERS[fmt](
        tmp_path / f"dirty.{fmt}", dirty.upright_pixels(320, 240), orientation=orientation
    )
    raw = source.read_bytes()

    result = publish(runner, data_dir, tmp_path / "out", source)

    assert result.exit_code == 0, result.output
    (output,) = (tmp_path / "out").glob("*.jpg")
    data = output.read_bytes()
    assert find_metadata(data) == []
    planted = [
        dirty.NAME.encode(),
        dirty.NAME.encode("utf-16-le"),
        dirty.SERIAL.encode(),
        dirty.red_thumbnail_jpeg(),
        b"ExampleCam",
        b"http://ns.adobe.com",
    ]
    assert any(p in raw for p in planted)
    for p in planted:
        assert p not in data
    with Image.open(output) as im:
        assert im.size == (320, 240)
        assert quadrant_colours(np.asarray(im.convert("RGB"))) == dirty.QUADRANTS


def face_free_jpeg(path: Path) -> Path:
    Image.fromarray(dirty.upright_pixels(160, 120), "RGB").save(path, "JPEG", quality=90)
    return path


BAD = {"empty.jpg": "empty", "truncated.jpg": "damaged", "notes.jpg": "not a JPEG"}


@pytest.fixture
def hostile_card(tmp_path: Path) -> Path:
    """A camera card with a zero-byte, a truncated and a fake JPEG next to two good photos,
    one of them named like a command-line option."""
    card = tmp_path / "card"
    card.mkdir()
    (card / "empty.jpg").write_bytes(b"")
    dirty.make_truncated_jpeg(card / "truncated.jpg")
    dirty.make_text_file(card / "notes.jpg")
    face_free_jpeg(card / "-rf.jpg")
    face_free_jpeg(card / "good.jpg")
    return card


@pytest.mark.parametrize("how", ["folder", "files after --", "./ prefixed files"])
def test_bad_photos_are_withheld_and_the_rest_published(
    hostile_card: Path,
    tmp_path: Path,
    runner: CliRunner,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    out = tmp_path / "out"
    names = sorted(p.name for p in hostile_card.iterdir())
    inputs: list[object] = {
        "folder": [hostile_card],
        "files after --": [hostile_card / n for n in names],
        "./ prefixed files": [f"./{n}" for n in names],
    }[how]
    if how == "./ prefixed files":
        monkeypatch.chdir(hostile_card)
    before = tree_hashes(hostile_card)

    result = publish(runner, data_dir, out, *inputs)

    assert result.exit_code == 1, result.output
    report = json.loads((out / "report.json").read_text())
    status = {Path(p["input"]).name: p for p in report["photos"]}
    assert sorted(status) == names
    for name, why in BAD.items():
        assert status[name]["status"] == "withheld"
        assert status[name]["output"] is None
        assert why in status[name]["reason"]
        assert f"withheld {status[name]['input']}" in result.stderr
    for name in ["-rf.jpg", "good.jpg"]:
        assert status[name]["status"] == "published", status[name]
    # Only finished outputs and the report: no temp, partial or hidden files.
    assert sorted(p.name for p in out.iterdir()) == [
        "event-0001.jpg",
        "event-0002.jpg",
        "report.json",
    ]
    with open_store(data_dir) as store:
        withheld = audit.entries(store, action="withhold")
        published = audit.entries(store, action="publish")
    assert sorted(Path(e.details["input"]).name for e in withheld) == sorted(BAD)
    assert all(e.details["reason"] and e.details["output"] is None for e in withheld)
    assert len(published) == 2
    assert tree_hashes(hostile_card) == before


OUT_INSIDE = {
    "the input folder itself": ("card", ["card"]),
    "a folder below the input folder": ("card/web/2026", ["card"]),
    "the folder of the input files": ("card", ["card/IMG_0001.jpg", "card/IMG_0002.jpg"]),
}


@pytest.mark.parametrize(("out", "inputs"), OUT_INSIDE.values(), ids=OUT_INSIDE.keys())
def test_output_folder_among_the_inputs_is_refused(
    tmp_path: Path, runner: CliRunner, data_dir: Path, out: str, inputs: list[str]
) -> None:
    card = tmp_path / "card"
    card.mkdir()
    for name in ["IMG_0001.jpg", "IMG_0002.jpg"]:
        face_free_jpeg(card / name)
    before = tree_hashes(card)

    result = publish(runner, data_dir, tmp_path / out, *(tmp_path / i for i in inputs))

    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ")
    assert "--out" in result.stderr
    assert tree_hashes(card) == before
    assert sorted(p.name for p in card.iterdir()) == ["IMG_0001.jpg", "IMG_0002.jpg"]
    with open_store(data_dir) as store:
        assert audit.entries(store, action="publish") == []


def test_publishing_again_never_overwrites(
    tmp_path: Path, runner: CliRunner, data_dir: Path
) -> None:
    photo, out = face_free_jpeg(tmp_path / "photo.jpg"), tmp_path / "out"
    first = publish(runner, data_dir, out, photo, event="Sports day")
    first_outputs = tree_hashes(out)
    del first_outputs["report.json"]

    second = publish(runner, data_dir, out, photo, photo, event="Sports day")

    assert (first.exit_code, second.exit_code) == (0, 0), second.output
    assert sorted(first_outputs) == ["sports-day-0001.jpg"]
    names = sorted(p.name for p in out.iterdir())
    # A different batch into the same folder keeps the first one's report.
    [archived] = [n for n in names if n.startswith("report-")]
    assert names == [
        archived,
        "report.json",
        "sports-day-0001.jpg",
        "sports-day-0002.jpg",
        "sports-day-0003.jpg",
    ]
    earlier = json.loads((out / archived).read_text())
    assert [Path(p["output"]).name for p in earlier["photos"]] == ["sports-day-0001.jpg"]
    assert {k: v for k, v in tree_hashes(out).items() if k in first_outputs} == first_outputs
    report = json.loads((out / "report.json").read_text())
    assert [Path(p["output"]).name for p in report["photos"]] == [
        "sports-day-0002.jpg",
        "sports-day-0003.jpg",
    ]
