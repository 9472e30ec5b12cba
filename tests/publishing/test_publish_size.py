"""Resolution by purpose (issue 18): each purpose publishes at a long side (website and
social media 2560 px, the rest full size), faces are detected on the photo at that size,
a caller's boxes are scaled to it, and the audit says what size was published."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli import main
from consent import audit
from consent.registry import Purpose
from consent.store import Store
from pipeline.analysis import Gallery
from pipeline.boxes import Box
from pipeline.loading import load_image
from pipeline.matching import Decision, FaceDecision, Reason
from publishing.options import FULL_SIZE, PURPOSE_MAX_SIDE, PublishOptions
from publishing.publish import publish
from publishing.workers import PhotoWork, reduced


@pytest.mark.parametrize(
    "purpose, side",
    [
        (Purpose.WEBSITE, 2560),
        (Purpose.SOCIAL_MEDIA, 2560),
        (Purpose.PRESS, None),
        (Purpose.PROSPECTUS, None),
        (Purpose.INTERNAL_DISPLAY, None),
    ],
)
def test_each_purpose_has_an_output_size(purpose, side, tmp_path):
    assert PublishOptions(purpose=purpose, out_dir=tmp_path).output_max_side == side
    assert set(PURPOSE_MAX_SIDE) == set(Purpose)


def test_max_side_overrides_the_purpose(tmp_path):
    web = PublishOptions(purpose=Purpose.WEBSITE, out_dir=tmp_path, max_side=FULL_SIZE)
    press = PublishOptions(purpose=Purpose.PRESS, out_dir=tmp_path, max_side=1600)
    assert web.output_max_side is None
    assert press.output_max_side == 1600
    with pytest.raises(ValueError, match="max_side"):
        PublishOptions(purpose=Purpose.PRESS, out_dir=tmp_path, max_side=-1)


def photo(path: Path, size: tuple[int, int]) -> Path:
    w, h = size
    ramp = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    Image.fromarray(np.broadcast_to(ramp, (h, w, 3)).copy()).save(path, quality=90)
    return path


def test_reduced_scales_the_long_side_and_never_enlarges(tmp_path):
    big = load_image(photo(tmp_path / "big.jpg", (3000, 2000)))
    small = reduced(big, 2560)
    assert small.size == (2560, 1707)
    assert small.pixels.shape == (1707, 2560, 3)
    assert small.sha256 == big.sha256  # still the original file's hash
    assert reduced(big, 3000) is big
    assert reduced(big, None) is big


class Recording:
    """A decider that records the size it was shown and keeps one face as given."""

    def __init__(self, box):
        self.box = box
        self.seen = []

    def __call__(self, path, loaded):
        self.seen.append(loaded.size)
        return [FaceDecision(self.box, Decision.BLURRED, Reason.NO_CONSENT)]


def test_a_callers_boxes_are_scaled_to_the_published_size(tmp_path):
    src = photo(tmp_path / "in.jpg", (3000, 2000))
    options = PublishOptions(purpose=Purpose.WEBSITE, out_dir=tmp_path / "out")
    decide = Recording(Box(1500, 1000, 300, 300))
    out = PhotoWork(options, Gallery({}, {}), decide).process(src)
    assert out.error is None
    assert decide.seen == [(3000, 2000)]  # a review's boxes are in the original's pixels
    [face] = out.faces
    f = 2560 / 3000
    assert face.box.x == pytest.approx(1500 * f) and face.box.w == pytest.approx(300 * f)
    assert face.box.y == pytest.approx(1000 * 1707 / 2000)
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.size == (2560, 1707)


def test_publishs_own_analysis_detects_on_the_published_size(tmp_path):
    src = photo(tmp_path / "in.jpg", (3000, 2000))
    options = PublishOptions(purpose=Purpose.WEBSITE, out_dir=tmp_path / "out")
    work = PhotoWork(options, Gallery({}, {}), None)
    decide = Recording(Box(100, 100, 50, 50))
    work.decide = decide  # the analysing decider, without its models
    out = work.process(src)
    assert decide.seen == [(2560, 1707)]
    assert out.faces[0].box == Box(100, 100, 50, 50)  # found at that size, kept as found


def test_full_size_purposes_are_published_as_they_came(tmp_path):
    src = photo(tmp_path / "in.jpg", (3000, 2000))
    options = PublishOptions(purpose=Purpose.PRESS, out_dir=tmp_path / "out")
    out = PhotoWork(options, Gallery({}, {}), Recording(Box(1, 1, 9, 9))).process(src)
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.size == (3000, 2000)


def no_faces(path, loaded):
    return []


def test_the_audit_records_the_published_size(store: Store, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    photo(folder / "a.jpg", (2800, 1000))
    options = PublishOptions(purpose=Purpose.WEBSITE, out_dir=tmp_path / "out", workers=1)
    report = publish(store, [folder], options, decider=no_faces)
    [entry] = audit.entries(store, action="publish")
    assert entry.details["output_max_side"] == 2560
    [result] = report.results
    with Image.open(result.output) as im:
        assert im.size == (2560, 914)


@pytest.mark.parametrize("value, message", [("12", "too small"), ("big", "not a number of pixels")])
def test_the_cli_refuses_a_size_it_cannot_use(value, message, tmp_path):
    photo(tmp_path / "a.jpg", (64, 48))
    result = CliRunner().invoke(
        main,
        ["publish", "--purpose", "website", "--out", str(tmp_path / "o"), "--max-side", value]
        + [str(tmp_path / "a.jpg")],
    )
    assert result.exit_code == 2
    assert message in result.output
