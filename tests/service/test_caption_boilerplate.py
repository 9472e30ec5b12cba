"""Camera and software boilerplate is not a caption (`publishing.captions.boilerplate`),
wherever a photo's embedded caption is chosen: publish's captions.csv and the service."""

from __future__ import annotations

from pathlib import Path

import piexif
import pytest

from consent.registry import Purpose
from consent.store import open_store
from publishing.captions.boilerplate import PATTERNS, boilerplate_kind, real_caption
from publishing.options import PublishOptions
from publishing.publish import publish
from tests.support.service_factories import FakeFaces, kept, photo, running

# (text as found in real files, the pattern that must claim it)
BOILERPLATE = [
    ("DCIM\\100GOPRO\\GOPR0482.JPG", "windows path"),
    ("C:\\Users\\office\\Pictures\\Sports Day\\IMG_0001.JPG", "windows path"),
    ("/storage/emulated/0/DCIM/Camera/PXL_20240501_101112.jpg", "posix path"),
    ("Photos/2024/sports/IMG_0001.jpg", "posix path"),
    ("IMG_1234.JPG", "camera file name"),
    ("DSC01234", "camera file name"),
    ("PXL_20240501_101112345.jpg", "camera file name"),
    ("GOPR0482", "camera file name"),
    ("sports-day.jpeg", "file name"),
    ("SAMSUNG CSC", "camera default"),
    ("OLYMPUS DIGITAL CAMERA", "camera default"),
    ("SONY DSC", "camera default"),
    ("KODAK Digital Still Camera", "camera default"),
    ("NIKON CORPORATION", "camera model"),
    ("Canon PowerShot G7 X", "camera model"),
    ("Canon EOS 250D", "camera model"),
    ("Apple iPhone 15", "camera model"),
    ("File written by Adobe Photoshop\u00ae 4.0", "editing software"),
    ("Adobe Photoshop CS6 (Windows)", "editing software"),
    ("Created with GIMP", "editing software"),
    ("Picasa", "editing software"),
    ("CREATOR: gd-jpeg v1.0 (using IJG JPEG v62), quality = 90", "encoder comment"),
    ("LEAD Technologies Inc. V1.01", "encoder comment"),
    ("Shot on iPhone 15 Pro", "encoder comment"),
    ("Exif_JPEG_PICTURE", "placeholder"),
    ("Untitled-1", "placeholder"),
    ("default", "placeholder"),
    ("2024:05:01 10:11:12", "timestamp"),
    ("20240501_101112", "timestamp"),
    ("   ", "no words"),
    ("----", "no words"),
]

REAL_CAPTIONS = [
    "Amelia wins the relay",
    "Years 5/6 sports day",
    "Sam and Ben at sports day",
    "Made with love by Year 2",
    "Photo of the week: the egg-and-spoon race",
    "Apple picking day",
    "Sports day 2024",
    "Class 3B's trip to the museum",
    "Canon Park trip",  # a place that shares a maker's name, with more words
]


@pytest.mark.parametrize(("text", "kind"), BOILERPLATE, ids=[b[0] for b in BOILERPLATE])
def test_boilerplate_is_recognised_by_its_kind(text: str, kind: str) -> None:
    assert boilerplate_kind(text) == kind
    assert real_caption(text) is None


@pytest.mark.parametrize("text", REAL_CAPTIONS)
def test_real_captions_are_kept(text: str) -> None:
    assert boilerplate_kind(text) is None
    assert real_caption(text) == text


def test_every_pattern_is_exercised_by_the_table() -> None:
    assert {p.name for p in PATTERNS} == {kind for _, kind in BOILERPLATE}


def test_no_caption_stays_no_caption() -> None:
    assert real_caption(None) is None


def _described(text: str) -> bytes:
    return photo(exif=piexif.dump({"0th": {piexif.ImageIFD.ImageDescription: text.encode()}}))


def test_publish_writes_no_camera_text_into_captions_csv(data_dir: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "a.jpg").write_bytes(_described("SAMSUNG CSC"))
    (inbox / "b.jpg").write_bytes(_described("DCIM\\100GOPRO\\GOPR0482.JPG"))
    (inbox / "c.jpg").write_bytes(_described("Amelia Hart on the beam"))
    options = PublishOptions(purpose=Purpose.WEBSITE, out_dir=tmp_path / "out", workers=1)
    with open_store(data_dir) as store:
        report = publish(
            store,
            sorted(inbox.iterdir()),
            options,
            decider=FakeFaces([kept("P001")]).factory(store, options),
        )

    captions = {Path(r.input).name: r.caption for r in report.results}
    assert captions["a.jpg"] is None and captions["b.jpg"] is None
    assert captions["c.jpg"] is not None and captions["c.jpg"].text == "Amelia on the beam"
    written = (tmp_path / "out" / "captions.csv").read_text(encoding="utf-8")
    assert "SAMSUNG" not in written and "GOPR" not in written
    assert "Amelia on the beam" in written


def test_the_service_suggests_no_caption_from_camera_text(data_dir: Path, token: str) -> None:
    with running(data_dir, token, FakeFaces([kept("P001")])) as srv:
        body = srv.check(_described("OLYMPUS DIGITAL CAMERA")).json()

    assert body["suggested_caption"] is None
