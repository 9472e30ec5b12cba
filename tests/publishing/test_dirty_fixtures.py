"""Issue 5's proof of clean output: a pupil's full name in every metadata field schools'
software writes, in each input format, and none of it in what publish writes.

Each dirty file (see tests/support/cleanproof.py) carries "Amelia Hart" in IPTC, XMP (Dublin
Core, Photoshop, IPTC Extension, MWG and Microsoft face regions, digiKam, Lightroom),
EXIF (description, artist, user comment, the five Windows XP tags), JPEG COM, PNG
tEXt/zTXt/iTXt and the ICC profile's description, plus GPS and a thumbnail of different
content. Every input format is published through the real pipeline into every output
format; each output must hold none of the name's bytes in UTF-8, UTF-16 (both byte
orders) or Latin-1, pass our own walker and show ExifTool nothing beyond the allowlist.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from consent.registry import Purpose, import_pupils_csv
from consent.store import init_data_dir, open_store
from pipeline.detection import DetectionSettings, Thoroughness
from pipeline.formats.findings import find_metadata
from pipeline.writing import OutputFormat
from publishing.captions.per_photo import CaptionSource
from publishing.options import PublishOptions
from publishing.publish import publish
from publishing.report import PhotoStatus, PublishReport
from tests.support import cleanproof as cp
from tests.support.consent_factories import pupil_row, write_registry_csv
from tests.support.environment import REPO

pytestmark = pytest.mark.slow  # publish runs the face detector on a real photo

PHOTO = REPO / "sample_images" / "event" / "IMG_0001.jpg"  # generated, with real faces
FORMATS = list(cp.DIRTY_FORMATS)
OUTPUTS = list(OutputFormat)


def face_pixels() -> np.ndarray:
    with Image.open(PHOTO) as im:
        return np.asarray(im.convert("RGB").resize((512, 256)))


@pytest.fixture(scope="module")
def dirty_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dirty")
    pixels = face_pixels()
    for fmt, spec in cp.DIRTY_FORMATS.items():
        cp.make_dirty(folder / f"{fmt}{spec.suffix}", pixels, fmt)
    return folder


@pytest.fixture(scope="module")
def reports(dirty_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One publish per output format, all five dirty inputs in each batch."""
    root = tmp_path_factory.mktemp("publish")
    init_data_dir(root / "data")
    store = open_store(root / "data")
    # The pupil is in the registry with website consent (no reference photo, so her face
    # is blurred): the caption policy will have a registry name to act on.
    csv = write_registry_csv(
        root / "pupils.csv", [pupil_row("P100", first_name="Amelia", last_name="Hart")]
    )
    import_pupils_csv(store, csv, operator="test")
    out: dict[OutputFormat, PublishReport] = {}
    try:
        for fmt in OUTPUTS:
            options = PublishOptions(
                purpose=Purpose.WEBSITE,
                out_dir=root / f"out-{fmt.value.lower()}",
                operator="test",
                output_format=fmt,
                detection=DetectionSettings(thoroughness=Thoroughness.FAST),
            )
            out[fmt] = publish(store, [dirty_dir], options)
    finally:
        store.close()
    return out


def result_for(report: PublishReport, fmt: str):
    (found,) = [r for r in report.results if Path(r.input).stem == fmt]
    return found


@pytest.mark.parametrize("fmt", FORMATS)
def test_fixture_really_carries_the_name(dirty_dir: Path, fmt: str) -> None:
    # The proof below can fail: the name is there in every encoding, in every group.
    path = dirty_dir / f"{fmt}{cp.DIRTY_FORMATS[fmt].suffix}"
    assert cp.name_hits(path.read_bytes(), cp.FULL_NAME) == list(cp.name_encodings(""))
    groups = {key.split(":")[0] for key in cp.exiftool_tags(path)}
    assert cp.DIRTY_FORMATS[fmt].expected_groups <= groups
    assert cp.exiftool_extras(path)  # the allowlist check rejects the dirty input


@pytest.mark.parametrize("out", OUTPUTS, ids=[o.value for o in OUTPUTS])
@pytest.mark.parametrize("fmt", FORMATS)
def test_published_output_holds_no_trace_of_the_name(
    reports: dict, fmt: str, out: OutputFormat
) -> None:
    result = result_for(reports[out], fmt)
    assert result.status is PhotoStatus.PUBLISHED, result.reason
    output = Path(result.output)
    assert output.suffix == out.suffix
    data = output.read_bytes()

    assert cp.name_hits(data, cp.FULL_NAME) == []
    assert find_metadata(data) == []
    assert cp.exiftool_extras(output) == []
    with Image.open(output) as im:
        assert im.size == (512, 256)
    # The caption the file carries ("Amelia Hart on sports day") is read from its own
    # fields and rewritten: her face was blurred (no reference photo), so she is not named.
    assert cp.DIRTY_FORMATS[fmt].caption == f"{cp.FULL_NAME} on sports day"
    assert result.caption is not None and result.caption_source is CaptionSource.EMBEDDED
    assert result.caption.text.lower() == "a pupil on sports day"
    assert result.caption.removed == ["P100"]
    report_text = str(result.to_report()).lower()
    assert "amelia" not in report_text and "hart" not in report_text


@pytest.mark.parametrize("out", OUTPUTS, ids=[o.value for o in OUTPUTS])
def test_output_folder_holds_no_name_anywhere(reports: dict, out: OutputFormat) -> None:
    folder = reports[out].options.out_dir
    for path in folder.iterdir():
        assert cp.name_hits(path.read_bytes(), cp.FULL_NAME) == [], path.name
        assert "amelia" not in path.name.lower() and "hart" not in path.name.lower()
