"""Captions through publish: --captions, --caption and the photo's own fields, rewritten for
the purpose against the registry and the photo's face decisions, into report.json and
captions.csv, never into the image; the audit records what was done, not the text.

Faces come from a fixed decider (the seam a reviewed batch uses), so no model loads: in
every photo the first face is Amelia Hart (P001, website consent) kept, the second is
Oliver Stone-Bright (P002, website consent) blurred; Zoë Ng (P003) has no website consent.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli import main
from consent import audit
from consent.name_policy import NamePolicy, set_name_policy
from consent.registry import Purpose, import_pupils_csv
from consent.store import Store
from pipeline.boxes import Box
from pipeline.matching import Decision, FaceDecision, Reason
from publishing.captions.per_photo import CaptionSource
from publishing.options import PublishOptions
from publishing.publish import publish
from publishing.report import PublishReport
from tests.support.consent_factories import pupil_row, write_registry_csv

CAPTION = "Amelia Hart and Oliver Stone-Bright win the relay while Zoë Ng cheers"
# EXIF ImageDescription is ASCII (Pillow writes "?" for other letters); the accent-free
# spelling must still be recognised as Zoë.
EMBEDDED = CAPTION.replace("Zoë", "Zoe")
SURNAMES = ("hart", "stone", "bright", "ng ", "zo")


def two_faces(path: Path, loaded: object) -> list[FaceDecision]:
    return [
        FaceDecision(Box(2, 2, 8, 8), Decision.KEPT, Reason.MATCHED_WITH_CONSENT, "P001", 0.3),
        FaceDecision(Box(14, 2, 8, 8), Decision.BLURRED, Reason.AMBIGUOUS, "P002", 0.38),
    ]


def photo(path: Path, *, description: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.full((24, 32, 3), 90, np.uint8))
    exif = Image.Exif()
    if description is not None:
        exif[0x010E] = description  # ImageDescription
    image.save(path, "JPEG", exif=exif.tobytes())
    return path


@pytest.fixture
def store(store: Store, tmp_path: Path) -> Store:
    rows = [
        pupil_row("P001", first_name="Amelia", last_name="Hart"),
        pupil_row("P002", first_name="Oliver", last_name="Stone-Bright"),
        pupil_row("P003", first_name="Zoë", last_name="Ng", website="no"),
    ]
    import_pupils_csv(store, write_registry_csv(tmp_path / "pupils.csv", rows), operator="t")
    return store


@pytest.fixture
def card(tmp_path: Path) -> Path:
    card = tmp_path / "card"
    photo(card / "IMG_0001.jpg")
    photo(card / "IMG_0002.jpg", description=EMBEDDED)
    photo(card / "sub" / "IMG_0003.jpg")
    return card


def run(store: Store, card: Path, tmp_path: Path, **kw: object) -> PublishReport:
    options = PublishOptions(
        purpose=kw.pop("purpose", Purpose.WEBSITE),  # type: ignore[arg-type]
        out_dir=tmp_path / "out",
        operator="office",
        workers=1,
        **kw,  # type: ignore[arg-type]
    )
    return publish(store, [card], options, decider=two_faces)


def by_name(report: PublishReport) -> dict[str, object]:
    return {Path(r.input).name: r for r in report.results}


def captions_csv(folder: Path) -> dict[str, str]:
    raw = (folder / "captions.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel shows the accents
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    return {row["file"]: row["caption"] for row in rows}


def assert_no_surname(text: str) -> None:
    low = text.lower() + " "
    assert not [s for s in SURNAMES if s in low], text


def test_csv_captions_are_rewritten_for_the_website(
    store: Store, card: Path, tmp_path: Path
) -> None:
    report = run(
        store,
        card,
        tmp_path,
        captions={"IMG_0001.jpg": CAPTION, "sub/IMG_0003.jpg": "Zoë Ng's painting"},
    )
    results = by_name(report)
    first = results["IMG_0001.jpg"].caption
    assert (
        first is not None and results["IMG_0001.jpg"].caption_source is CaptionSource.CAPTIONS_FILE
    )
    # Amelia is shown with consent: first name only. Oliver was blurred, Zoë has no
    # website consent: neither is named at all.
    assert "Amelia" in first.text
    assert_no_surname(first.text)
    assert "Oliver" not in first.text
    assert first.shortened == ["P001"] and first.removed == ["P002", "P003"]
    third = results["IMG_0003.jpg"].caption
    assert third is not None and "Zoë" not in third.text and "Ng" not in third.text

    # The same text in report.json and captions.csv, keyed by the output file.
    written = captions_csv(tmp_path / "out")
    assert written[Path(str(results["IMG_0001.jpg"].output)).name] == first.text
    report_json = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report_json["summary"]["captions"] == 3  # the embedded one of IMG_0002 too
    entry = next(p for p in report_json["photos"] if p["input"].endswith("IMG_0001.jpg"))
    assert entry["caption"]["caption"] == first.text
    assert entry["caption"]["name_policy"] == "first"


def test_caption_never_goes_into_the_image(store: Store, card: Path, tmp_path: Path) -> None:
    report = run(store, card, tmp_path, caption="Amelia Hart wins the relay")
    for result in report.published:
        data = Path(str(result.output)).read_bytes()
        assert b"Amelia" not in data and b"Hart" not in data
        assert b"relay" not in data


def test_order_is_csv_then_batch_caption_then_the_photos_own(
    store: Store, card: Path, tmp_path: Path
) -> None:
    report = run(
        store,
        card,
        tmp_path,
        captions={"IMG_0003.jpg": "Amelia at the finish"},
        caption="Sports day at Hart Lane",
    )
    results = by_name(report)
    assert results["IMG_0003.jpg"].caption_source is CaptionSource.CAPTIONS_FILE
    assert results["IMG_0001.jpg"].caption_source is CaptionSource.BATCH_CAPTION
    # The batch caption wins over the photo's own; its surname-like word is removed too.
    assert results["IMG_0002.jpg"].caption_source is CaptionSource.BATCH_CAPTION
    assert "Hart" not in results["IMG_0001.jpg"].caption.text


def test_the_photos_own_caption_is_used_and_rewritten(
    store: Store, card: Path, tmp_path: Path
) -> None:
    results = by_name(run(store, card, tmp_path))
    own = results["IMG_0002.jpg"]
    assert own.caption_source is CaptionSource.EMBEDDED
    assert own.caption.text.startswith("Amelia")
    assert_no_surname(own.caption.text)
    assert results["IMG_0001.jpg"].caption is None  # no caption anywhere: none invented
    assert not (tmp_path / "out" / "captions.csv").exists() or captions_csv(tmp_path / "out")


def test_no_embedded_captions_ignores_the_photos_own(
    store: Store, card: Path, tmp_path: Path
) -> None:
    report = run(store, card, tmp_path, embedded_captions=False)
    assert all(r.caption is None for r in report.results)
    assert not (tmp_path / "out" / "captions.csv").exists()


def test_name_policy_none_names_nobody(store: Store, card: Path, tmp_path: Path) -> None:
    set_name_policy(store, Purpose.WEBSITE, NamePolicy.NONE, operator="dpo")
    report = run(store, card, tmp_path, caption=CAPTION)
    for result in report.published:
        assert "Amelia" not in result.caption.text
        assert result.caption.policy is NamePolicy.NONE


def test_audit_records_what_was_done_to_the_caption_not_its_text(
    store: Store, card: Path, tmp_path: Path
) -> None:
    run(store, card, tmp_path, caption=CAPTION)
    entries = audit.entries(store, action="publish")
    assert len(entries) == 3
    for entry in entries:
        caption = entry.details["caption"]
        assert caption["source"] == "--caption"
        assert len(caption["sha256"]) == 64
        assert caption["pupils_removed"] == ["P002", "P003"]
        assert caption["pupils_shortened"] == ["P001"]
        text = json.dumps(entry.details, ensure_ascii=False)
        assert "Amelia" not in text and "relay" not in text


def test_a_rerun_takes_the_new_captions_without_redoing_photos(
    store: Store, card: Path, tmp_path: Path
) -> None:
    first = run(store, card, tmp_path, caption="Amelia Hart runs")
    again = run(store, card, tmp_path, caption="Amelia Hart jumps")
    assert len(again.resumed) == 3
    assert [r.output for r in again.results] == [r.output for r in first.results]
    assert all("jumps" in r.caption.text for r in again.results)
    assert all("jumps" in c for c in captions_csv(tmp_path / "out").values())


def test_a_caption_that_looks_like_a_formula_is_not_one_in_the_csv(
    store: Store, card: Path, tmp_path: Path
) -> None:
    run(store, card, tmp_path, caption='=HYPERLINK("http://x","Amelia")')
    for text in captions_csv(tmp_path / "out").values():
        assert text.startswith("'=")


def test_another_batch_keeps_the_earlier_captions(store: Store, card: Path, tmp_path: Path) -> None:
    run(store, card, tmp_path, caption="Amelia runs")
    run(store, card, tmp_path, caption="Amelia jumps", event="Other event")
    archived = sorted((tmp_path / "out").glob("captions-*.csv"))
    assert len(archived) == 1
    assert "runs" in archived[0].read_text(encoding="utf-8-sig")
    assert "jumps" in (tmp_path / "out" / "captions.csv").read_text(encoding="utf-8-sig")


def test_withheld_photos_get_no_caption(store: Store, tmp_path: Path) -> None:
    card = tmp_path / "card"
    photo(card / "IMG_0001.jpg")
    (card / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0not a jpeg")
    report = run(store, card, tmp_path, caption="Amelia runs")
    (withheld,) = report.withheld
    assert withheld.caption is None and "caption" not in withheld.to_report()
    assert list(captions_csv(tmp_path / "out")) == [Path(str(report.published[0].output)).name]


# --- the command line ---------------------------------------------------------------------


def test_cli_rejects_a_bad_captions_file_before_doing_anything(
    runner, data_dir: Path, card: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "captions.csv"
    bad.write_text("file,caption\nIMG_0001.jpg,one\nIMG_0001.jpg,two\n", encoding="utf-8")
    result = runner.invoke(
        main,
        ["--data-dir", str(data_dir), "publish", "--purpose", "website"]
        + ["--out", str(tmp_path / "out"), "--captions", str(bad), str(card)],
    )
    assert result.exit_code == 2, result.output
    assert "line 3" in result.output
    assert not (tmp_path / "out").exists()


def test_cli_sends_captions_to_review_publish(runner, data_dir: Path, card: Path) -> None:
    result = runner.invoke(
        main,
        ["--data-dir", str(data_dir), "publish", "--purpose", "website", "--review"]
        + ["--caption", "Sports day", str(card)],
    )
    assert result.exit_code == 2
    assert "review publish" in result.output


@pytest.mark.parametrize("photos", [1, 4])
def test_a_batch_reads_consent_register_and_policy_once_whatever_its_size(
    store: Store, tmp_path: Path, photos: int
) -> None:
    card = tmp_path / "card"
    for i in range(photos):
        photo(card / f"IMG_{i:04d}.jpg")
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        report = run(store, card, tmp_path, caption=CAPTION)
    finally:
        store.conn.set_trace_callback(None)

    assert len(report.published) == photos
    assert all(r.caption is not None for r in report.results)
    reads = Counter(
        table
        for s in statements
        if s.lstrip().upper().startswith("SELECT")
        for table in ("consent_records", "pupils", "name_policies")
        if re.search(rf"\bFROM {table}\b", s)
    )
    assert reads == {"consent_records": 1, "pupils": 1, "name_policies": 1}
