"""The medical board: who is on it, the PDF and HTML, the audit and `board status` (issue 6)."""

from __future__ import annotations

import errno
import os
import re
import stat
import subprocess
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pypdf import PdfReader

from board.generate import generate
from board.model import BoardError, BoardFilter, BoardOptions, Orientation
from board.pdf import FOOTER_H, MARGIN
from board.photo_prep import prepare_photo
from board.status import board_status
from cli import main
from consent import audit
from consent import retention as leavers
from consent.medical import board_photos
from consent.medical import records as medical
from consent.medical.board_settings import Setting, set_setting
from consent.medical.records import Condition, MedicalRecord, Room, Severity
from consent.registry import import_pupils_csv
from consent.store import open_store
from pipeline.errors import OutputConflict
from tests.support.consent_factories import RegistryCsv
from tests.support.environment import require_tool
from tests.support.photos import jpeg_file

ON = date(2026, 11, 2)
MM = 72 / 25.4  # PDF points per mm
ZOE, SIOBHAN = "Zoë Łukasiewicz", "Siobhán Ó Briain"
SECRET_ACTION = "Give the pen qxz"


def _record(pupil_id: str, *conditions: Condition, rooms: frozenset[Room] | None = None):
    return MedicalRecord(pupil_id, conditions, rooms or frozenset({Room.STAFF_ROOM}))


@pytest.fixture
def school(data_dir: Path, registry_csv: RegistryCsv, tmp_path: Path) -> Path:
    """Pupils: A1 (Zoë, 3B, life-threatening), A2 (Siobhán, 4A, serious), A3 (3B, a need
    that ended), A4 (3B, kitchen only), A5 (3B, leaver), A6 (no record)."""
    names = {
        "A1": ("Zoë", "Łukasiewicz", "3B"),
        "A2": ("Siobhán", "Ó Briain", "4A"),
        "A3": ("Ended", "Need", "3B"),
        "A4": ("Kitchen", "Only", "3B"),
        "A5": ("Has", "Left", "3B"),
        "A6": ("No", "Record", "3B"),
    }
    rows = [
        {"pupil_id": pid, "first_name": f, "last_name": last, "class": c}
        for pid, (f, last, c) in names.items()
    ]
    with open_store(data_dir) as store:
        import_pupils_csv(store, registry_csv(rows), operator="office")
        life = Condition(
            "Anaphylaxis (peanuts)", Severity.LIFE_THREATENING, SECRET_ACTION, "Office"
        )
        for record in (
            _record("A1", life, Condition("Asthma", Severity.MODERATE, "Inhaler", "Class bag")),
            _record("A2", Condition("Epilepsy", Severity.SERIOUS, "Time it", "Medical room")),
            _record(
                "A3", Condition("Broken arm", Severity.LOW, "No PE", ends_on=ON - timedelta(1))
            ),
            _record("A4", life, rooms=frozenset({Room.KITCHEN})),
            _record("A5", life),
        ):
            medical.set_record(store, record, operator="office")
        leavers.leave(store, "A5", ON - timedelta(days=30), operator="office", today=ON)
        photo = prepare_photo(jpeg_file(tmp_path / "a1.jpg"), date(2026, 9, 1))
        board_photos.add_photo(
            store,
            "A1",
            photo.jpeg,
            taken_on=photo.taken_on,
            source_sha256=photo.source_sha256,
            operator="office",
            today=ON,
        )
    return data_dir


def make(
    data_dir: Path,
    out: Path,
    *,
    room: Room = Room.STAFF_ROOM,
    classes: frozenset[str] = frozenset(),
    condition: str | None = None,
    orientation: Orientation = Orientation.PORTRAIT,
    html: bool = False,
    on: date = ON,
):
    with open_store(data_dir) as store:
        return generate(
            store,
            BoardOptions(
                filter=BoardFilter(room, classes, condition),
                operator="J Smith",
                orientation=orientation,
                pdf=out,
                html=out.with_suffix(".html") if html else None,
                on=on,
            ),
        )


def pdf_pages(path: Path) -> list[str]:
    """Each page's text with line breaks and runs of spaces made single spaces."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(path).pages]


# --- who is on it ----------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", list(Orientation))
def test_pdf_has_the_right_pupils_names_and_markings(
    school: Path, tmp_path: Path, orientation: Orientation
) -> None:
    result = make(school, tmp_path / "b.pdf", orientation=orientation)
    reader = PdfReader(tmp_path / "b.pdf")
    pages = pdf_pages(tmp_path / "b.pdf")
    text = "\n".join(pages)

    assert [c.pupil_id for c in result.board.cards] == ["A1", "A2"]  # worst first
    assert ZOE in text and SIOBHAN in text
    for absent in ("Ended", "Kitchen", "Has Left", "No Record"):
        assert absent not in text
    for page in pages:
        assert "CONFIDENTIAL: staff only, do not display where pupils or visitors can see" in page
        assert f"Generated {ON.isoformat()}" in page
        assert f"REPLACE BY {result.board.replace_by.isoformat()}" in page
    width, height = (float(v) for v in reader.pages[0].mediabox[2:])
    expected = (595, 842) if orientation is Orientation.PORTRAIT else (842, 595)
    assert (round(width), round(height)) == expected
    assert "Anaphylaxis (peanuts)" in text and SECRET_ACTION in text
    assert text.index("Anaphylaxis") < text.index("Asthma")  # by severity
    assert "LIFE-THREATENING" in text and "SERIOUS" in text  # not colour alone
    assert "NO PHOTO" in text  # A2 has none; A1's is an image


def test_filters_by_class_room_and_condition(school: Path, tmp_path: Path) -> None:
    by_class = make(school, tmp_path / "c.pdf", classes=frozenset({"4A"}))
    kitchen = make(school, tmp_path / "k.pdf", room=Room.KITCHEN)
    asthma = make(school, tmp_path / "a.pdf", condition="ASTH")

    assert [c.pupil_id for c in by_class.board.cards] == ["A2"]
    assert [c.pupil_id for c in kitchen.board.cards] == ["A1", "A4"] or [
        c.pupil_id for c in kitchen.board.cards
    ] == ["A4"]
    assert [c.pupil_id for c in asthma.board.cards] == ["A1"]


def test_a_board_with_nobody_on_it_is_refused(school: Path, tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="nothing to print"):
        make(school, tmp_path / "m.pdf", room=Room.MEDICAL_ROOM)

    assert not (tmp_path / "m.pdf").exists()


def test_a_pupil_leaving_today_is_off_the_board(school: Path, tmp_path: Path) -> None:
    with open_store(school) as store:
        store.conn.execute("UPDATE pupils SET left_on = ? WHERE pupil_id = 'A2'", (ON.isoformat(),))

    result = make(school, tmp_path / "b.pdf")

    assert [c.pupil_id for c in result.board.cards] == ["A1"]


def test_replace_by_is_the_earliest_review_or_end(school: Path, tmp_path: Path) -> None:
    with open_store(school) as store:
        medical.update_condition(
            store,
            "A2",
            Condition("Cast", Severity.LOW, "No PE", ends_on=ON + timedelta(days=5)),
            operator="office",
        )
    result = make(school, tmp_path / "b.pdf")

    assert result.board.replace_by == ON + timedelta(days=6)


# --- files, HTML, audit ----------------------------------------------------------------------


def test_html_is_self_contained_private_and_escaped(
    school: Path, tmp_path: Path, registry_csv: RegistryCsv
) -> None:
    with open_store(school) as store:
        import_pupils_csv(
            store,
            registry_csv([{"pupil_id": "A7", "first_name": "<script>alert(1)</script>"}], "x.csv"),
            operator="office",
        )
        medical.set_record(
            store, _record("A7", Condition("<b>x</b>", Severity.LOW, "y")), operator="office"
        )
    make(school, tmp_path / "b.pdf", html=True)
    html = (tmp_path / "b.html").read_text(encoding="utf-8")

    assert stat.S_IMODE((tmp_path / "b.html").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "b.pdf").stat().st_mode) == 0o600
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;x" in html
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", html)
    assert "url(" not in html and "@import" not in html
    assert 'src="data:image/jpeg;base64,' in html
    assert "default-src 'none'" in html
    assert html.count("CONFIDENTIAL: staff only") >= 2 and ZOE in html


def test_existing_output_is_never_overwritten_and_nothing_is_audited(
    school: Path, tmp_path: Path
) -> None:
    (tmp_path / "b.html").write_text("keep")
    with open_store(school) as store:
        before = len(audit.entries(store))
    with pytest.raises(Exception, match="exists"):
        make(school, tmp_path / "b.pdf", html=True)

    assert (tmp_path / "b.html").read_text() == "keep"
    assert not (tmp_path / "b.pdf").exists()
    with open_store(school) as store:
        assert len(audit.entries(store)) == before


def test_an_output_appearing_while_writing_is_a_conflict_and_nothing_is_left(
    school: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        if str(dst).endswith(".html"):
            Path(dst).write_text("another program")  # after generate's own check
        real_link(src, dst)

    with open_store(school) as store:
        before = len(audit.entries(store))
    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(OutputConflict) as caught:
        make(school, tmp_path / "b.pdf", html=True)
    monkeypatch.undo()

    assert (
        str(caught.value) == f"{tmp_path / 'b.html'} exists; choose another file name or remove it"
    )
    assert (tmp_path / "b.html").read_text() == "another program"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("b", ".b"))) == [
        "b.html"
    ]
    with open_store(school) as store:
        assert len(audit.entries(store)) == before


def test_a_disk_error_names_the_file_and_leaves_nothing(
    school: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_link(*args: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "link", failing_link)
    with pytest.raises(OutputConflict) as caught:
        make(school, tmp_path / "b.pdf")
    monkeypatch.undo()

    assert str(caught.value) == f"cannot write {tmp_path / 'b.pdf'}: Input/output error"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith((".b", "b"))] == []


def test_every_generation_is_audited_without_medical_text(school: Path, tmp_path: Path) -> None:
    make(school, tmp_path / "one.pdf")
    make(school, tmp_path / "two.pdf", condition="peanut", room=Room.KITCHEN)
    with open_store(school) as store:
        entries = audit.entries(store, action="board_generate")
        assert audit.verify(store).ok

    assert len(entries) == 2
    first, second = (e.details for e in entries)
    assert entries[0].operator == "J Smith"
    assert first["room"] == "staff-room" and second["room"] == "kitchen"
    assert [p["pupil_id"] for p in first["pupils"]] == ["A1", "A2"]
    assert len(first["fingerprint"]) == 64
    assert [f["file"] for f in first["files"]] == ["one.pdf"]
    logged = audit.canonical_json(second)
    for text in ("peanut", "Anaphylaxis", SECRET_ACTION, "Zoë", "Łukasiewicz"):
        assert text not in logged


def test_cli_needs_a_named_operator(school: Path, tmp_path: Path, runner: CliRunner) -> None:
    args = ["--data-dir", str(school), "board", "make", "--room", "staff-room"]
    missing = runner.invoke(main, [*args, "--pdf", str(tmp_path / "b.pdf")])
    ok = runner.invoke(
        main,
        [*args, "--pdf", str(tmp_path / "b.pdf"), "--operator", "J Smith", "--date", "2026-11-02"],
    )

    assert missing.exit_code == 2 and "--operator" in missing.stderr
    assert ok.exit_code == 0, ok.output
    assert "warning: A2: no board photo" in ok.stderr


# --- board status ----------------------------------------------------------------------------


def status(data_dir: Path, on: date = ON, every: bool = False):
    with open_store(data_dir) as store:
        return board_status(store, on=on, every=every)


def test_a_fresh_board_is_current(school: Path, tmp_path: Path) -> None:
    make(school, tmp_path / "b.pdf")

    [state] = status(school)

    assert state.current and state.reasons == [] and state.pupils == 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("record", "A2's medical record changed"),
        ("removed", "A2's medical record was removed"),
        ("left", "A2 has left"),
        ("photo", "A1's photo changed"),
        ("name", "A2's name or class changed"),
        ("new", "A4 is missing"),
        ("ended", "A2 no longer belongs on this board"),
    ],
)
def test_status_says_why_a_board_is_out_of_date(
    school: Path, tmp_path: Path, registry_csv: RegistryCsv, change: str, reason: str
) -> None:
    make(school, tmp_path / "b.pdf")
    with open_store(school) as store:
        if change == "record":
            medical.update_condition(
                store, "A2", Condition("Epilepsy", Severity.SERIOUS, "New plan"), operator="o"
            )
        elif change == "removed":
            medical.remove(store, "A2", operator="o")
        elif change == "left":
            leavers.leave(store, "A2", ON, operator="o", today=ON)
        elif change == "photo":
            photo = prepare_photo(jpeg_file(tmp_path / "new.jpg", seed=3), date(2026, 10, 1))
            board_photos.add_photo(
                store,
                "A1",
                photo.jpeg,
                taken_on=photo.taken_on,
                source_sha256=photo.source_sha256,
                operator="o",
                today=ON,
            )
        elif change == "name":
            import_pupils_csv(
                store,
                registry_csv(
                    [
                        {
                            "pupil_id": "A2",
                            "first_name": "Siobhán",
                            "last_name": "Ó Briain",
                            "class": "5C",
                        }
                    ],
                    "moved.csv",
                ),
                operator="o",
            )
        elif change == "new":
            medical.update_condition(
                store,
                "A4",
                Condition("Asthma", Severity.LOW, "Inhaler"),
                operator="o",
                rooms=frozenset({Room.STAFF_ROOM, Room.KITCHEN}),
            )
        elif change == "ended":
            medical.set_record(
                store,
                _record(
                    "A2", Condition("Epilepsy", Severity.SERIOUS, "x", ends_on=ON - timedelta(1))
                ),
                operator="o",
            )

    [state] = status(school)

    assert not state.current
    assert any(r.startswith(reason) for r in state.reasons), state.reasons
    assert "Epilepsy" not in " ".join(state.reasons)


def test_status_flags_a_passed_replace_by_date(school: Path, tmp_path: Path) -> None:
    result = make(school, tmp_path / "b.pdf")

    [state] = status(school, on=result.board.replace_by + timedelta(days=1))

    assert state.reasons == [f"replace-by date {result.board.replace_by} has passed"]


def test_a_new_board_replaces_the_old_one_for_the_same_room(school: Path, tmp_path: Path) -> None:
    make(school, tmp_path / "old.pdf")
    with open_store(school) as store:
        medical.remove(store, "A2", operator="o")
    make(school, tmp_path / "new.pdf")
    make(school, tmp_path / "kitchen.pdf", room=Room.KITCHEN)

    states = status(school)

    kitchen, new, old = states
    assert kitchen.current and new.current
    assert old.replaced_by == new.seq and not old.reasons
    assert status(school, every=True)[2].reasons == ["A2's medical record was removed"]


def test_cli_status_exits_1_when_a_board_is_out_of_date(
    school: Path, tmp_path: Path, runner: CliRunner
) -> None:
    make(school, tmp_path / "b.pdf")
    base = ["--data-dir", str(school), "board", "status", "--date", ON.isoformat()]
    fresh = runner.invoke(main, base)
    with open_store(school) as store:
        medical.remove(store, "A2", operator="o")
    stale = runner.invoke(main, base)

    assert fresh.exit_code == 0 and "CURRENT" in fresh.stdout
    assert stale.exit_code == 1 and "A2's medical record was removed" in stale.stdout


def test_setting_changes_are_audited(school: Path) -> None:
    with open_store(school) as store:
        set_setting(store, Setting.EMERGENCY_LINE, "Call 999 then ext 200", operator="head")
        [entry] = audit.entries(store, action="board_setting")

    assert entry.details == {
        "setting": "emergency_line",
        "value": "Call 999 then ext 200",
        "previous": "In an emergency: call 999, then tell the school office.",
    }


# --- layout: nothing runs off the page --------------------------------------------------------


LONG_ACTION = " ".join(f"step{i:03d}" for i in range(90))


def _long_school(school: Path) -> None:
    with open_store(school) as store:
        medical.set_record(
            store,
            _record(
                "A2",
                Condition("Epilepsy", Severity.SERIOUS, LONG_ACTION, "Medical room " * 8),
                Condition("Asthma", Severity.MODERATE, LONG_ACTION[:300], "Class bag"),
                Condition("Diabetes " + "x" * 70, Severity.SERIOUS, LONG_ACTION[:400], "Fridge"),
            ),
            operator="o",
        )


@pytest.mark.parametrize("orientation", list(Orientation))
def test_long_cards_render_whole_and_inside_the_page(
    school: Path, tmp_path: Path, orientation: Orientation
) -> None:
    pdftoppm = require_tool("pdftoppm", "poppler-utils")
    _long_school(school)
    make(school, tmp_path / "b.pdf", orientation=orientation)
    text = " ".join(pdf_pages(tmp_path / "b.pdf"))
    # Every word of the long action plan is printed (nothing cut or hidden).
    words = set(re.findall(r"step\d{3}", text))
    assert words == set(LONG_ACTION.split())

    dpi = 50
    subprocess.run(
        [pdftoppm, "-r", str(dpi), "-gray", "-png", str(tmp_path / "b.pdf"), str(tmp_path / "p")],
        check=True,
    )
    pngs = sorted(tmp_path.glob("p-*.png"))
    assert len(pngs) == len(PdfReader(tmp_path / "b.pdf").pages)
    px = dpi / 25.4
    for png in pngs:
        page = np.asarray(Image.open(png).convert("L"))
        h, w = page.shape
        inset = int((MARGIN - 2) * px)
        # Left and right margins, and the band between the body and the footer rule,
        # must be paper-white: a card running off its area would mark them.
        assert page[:, :inset].min() > 200, png.name
        assert page[:, w - inset :].min() > 200, png.name
        body_end = int((h / px - FOOTER_H) * px) + 1
        assert page[body_end : body_end + int(1.0 * px), inset : w - inset].min() > 200, png.name


def test_a_card_that_cannot_fit_a_page_is_refused_not_cut(school: Path, tmp_path: Path) -> None:
    conditions = tuple(
        Condition(f"Condition {i}", Severity.SERIOUS, LONG_ACTION, "Medical room") for i in range(8)
    )
    with open_store(school) as store:
        medical.set_record(store, _record("A2", *conditions), operator="o")

    with pytest.raises(BoardError, match="A2's card does not fit"):
        make(school, tmp_path / "b.pdf")
    assert not (tmp_path / "b.pdf").exists()
