"""``report.json`` read back (`read_report`): what `write_report` wrote comes back the same,
and a damaged or foreign file is refused whole, never read in part (the office app offers
a download only from a report it could read)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.name_policy import NamePolicy
from consent.registry import Purpose
from pipeline.boxes import Box
from pipeline.matching import Decision, FaceDecision, Reason
from publishing.captions.per_photo import CaptionSource, PhotoCaption
from publishing.options import PublishOptions
from publishing.report import (
    REPORT_NAME,
    PhotoResult,
    PhotoStatus,
    PublishReport,
    UnreadableReport,
    read_report,
    write_report,
)

ON = date(2026, 7, 3)


def options(out: Path, event: str = "Sports day") -> PublishOptions:
    return PublishOptions(
        purpose=Purpose.WEBSITE, out_dir=out, event=event, operator="office1", on=ON
    )


def sample(out: Path) -> PublishReport:
    kept = FaceDecision(
        Box(10, 12, 40, 44), Decision.KEPT, Reason.MATCHED_WITH_CONSENT, "P0001", 0.41
    )
    unsure = FaceDecision(
        Box(90, 12, 30, 31), Decision.BLURRED, Reason.UNCERTAIN, None, 0.5312, candidate_id="P0002"
    )
    small = FaceDecision(Box(1, 2, 3, 4), Decision.BLURRED, Reason.TOO_SMALL)
    caption = PhotoCaption("Year 2 on the track", NamePolicy.FIRST_ONLY, ["P0002"], ["P0001"])
    results = [
        PhotoResult(
            input=str(out.parent / "in" / "IMG_0001.jpg"),
            status=PhotoStatus.PUBLISHED,
            reason="published: 1 face kept, 2 blurred",
            output=str(out / "sports-day-0001.jpg"),
            faces=[kept, unsure, small],
            input_sha256="a" * 64,
            output_sha256="b" * 64,
            caption=caption,
            caption_source=CaptionSource.CAPTIONS_FILE,
        ),
        PhotoResult(
            input=str(out.parent / "in" / "caf\\xe9.png"),
            status=PhotoStatus.PUBLISHED,
            reason="published: no faces found",
            output=str(out / "sports-day-0002.jpg"),
            input_sha256="c" * 64,
            output_sha256="d" * 64,
        ),
        PhotoResult(
            input=str(out.parent / "in" / "broken.jpg"),
            status=PhotoStatus.WITHHELD,
            reason="broken.jpg: the file is not a photo that can be read",
        ),
    ]
    return PublishReport(options(out), results, batch="0123456789abcdef0123456789abcdef")


def test_what_was_written_reads_back_the_same(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    report = sample(out)
    write_report(out, report)
    back = read_report(out, options(out))
    assert back.to_json() == report.to_json()
    assert back.results[0].caption == report.results[0].caption
    assert back.results[0].caption_source is CaptionSource.CAPTIONS_FILE
    assert back.results[0].faces[1].candidate_id == "P0002"
    assert [r.status for r in back.results] == [r.status for r in report.results]


faces = st.builds(
    FaceDecision,
    st.builds(Box, *(st.integers(0, 5000) for _ in range(4))),
    st.sampled_from(Decision),
    st.sampled_from(Reason),
    st.one_of(st.none(), st.from_regex(r"P[0-9]{4}", fullmatch=True)),
    st.one_of(st.none(), st.floats(0, 2).map(lambda d: round(d, 4))),
    st.one_of(st.none(), st.from_regex(r"P[0-9]{4}", fullmatch=True)),
)
texts = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)


@st.composite
def results(draw: st.DrawFn) -> PhotoResult:
    published = draw(st.booleans())
    caption = None
    if published and draw(st.booleans()):
        caption = PhotoCaption(draw(texts), draw(st.sampled_from(NamePolicy)), ["P0001"], [])
    return PhotoResult(
        input=draw(texts),
        status=PhotoStatus.PUBLISHED if published else PhotoStatus.WITHHELD,
        reason=draw(texts),
        output=f"/out/e-{draw(st.integers(1, 9999)):04d}.jpg" if published else None,
        faces=draw(st.lists(faces, max_size=4)),
        input_sha256=draw(st.one_of(st.none(), st.just("e" * 64))),
        output_sha256="f" * 64 if published else None,
        caption=caption,
        caption_source=draw(st.sampled_from(CaptionSource)) if caption else None,
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(results(), max_size=6), texts.filter(lambda t: t.strip() != ""))
def test_any_report_round_trips(tmp_path: Path, made: list[PhotoResult], event: str) -> None:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    report = PublishReport(options(out, event=event), made, batch="b" * 32)
    write_report(out, report)
    assert read_report(out, options(out, event=event)).to_json() == report.to_json()


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


DAMAGE = {
    "zero bytes": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "not utf-8": lambda p: p.write_bytes(b"\xff\xfe{" + p.read_bytes()),
    "a list": lambda p: p.write_text("[]"),
    "another tool": lambda p: _edit(p, lambda d: d.update(tool="other")),
    "another event": lambda p: _edit(p, lambda d: d.update(event="Leavers' assembly")),
    "another date": lambda p: _edit(p, lambda d: d.update(date="2026-07-04")),
    "summary edited": lambda p: _edit(p, lambda d: d["summary"].update(published=3)),
    "photo dropped": lambda p: _edit(p, lambda d: d["photos"].pop()),
    "output removed": lambda p: _edit(p, lambda d: d["photos"][0].update(output=None)),
    "hash removed": lambda p: _edit(p, lambda d: d["photos"][1].update(output_sha256=None)),
    "unknown status": lambda p: _edit(p, lambda d: d["photos"][0].update(status="maybe")),
    "unknown decision": lambda p: _edit(
        p, lambda d: d["photos"][0]["faces"][0].update(decision="x")
    ),
    "box cut short": lambda p: _edit(p, lambda d: d["photos"][0]["faces"][0].update(box=[1, 2])),
    "faces not a list": lambda p: _edit(p, lambda d: d["photos"][0].update(faces="none")),
    "caption not text": lambda p: _edit(p, lambda d: d["photos"][0]["caption"].update(caption=5)),
    "output not text": lambda p: _edit(p, lambda d: d["photos"][1].update(output=7)),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_report_is_refused_whole(tmp_path: Path, damage: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write_report(out, sample(out))
    DAMAGE[damage](out / REPORT_NAME)
    with pytest.raises(UnreadableReport):
        read_report(out, options(out))


def test_a_missing_report_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnreadableReport, match="cannot be read"):
        read_report(tmp_path, options(tmp_path))
