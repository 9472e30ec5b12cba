"""One photo's caption decided from its faces, the register and the name policy; and the
full-name finder used by the pre-check."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.name_policy import NamePolicy, set_name_policy
from consent.registry import Purpose, import_pupils_csv
from consent.store import Store
from pipeline.boxes import Box
from pipeline.matching import Decision, FaceDecision, Reason
from publishing.captions.per_photo import (
    PhotoCaption,
    file_name_words,
    full_names_in,
    register_pupils,
    shown_pupils,
)
from publishing.captions.rewrite import NamedPupil, fold
from publishing.context import load_context
from publishing.options import PublishOptions
from tests.support.consent_factories import pupil_row, write_registry_csv

ON = date(2026, 10, 1)
PUPILS = [
    ("P1", "Amelia", "Hart", {"website": "yes", "press": "yes"}),
    ("P2", "Ben", "Stone", {"website": "no"}),
    ("P3", "Zoë", "Smith-Jones", {"website": "yes"}),
    ("P4", "Tom", "Lloyd Webber", {"website": "yes", "social_media": "yes"}),
]


@pytest.fixture
def store(store: Store, tmp_path: Path) -> Store:
    """The shared store (closed by tests/conftest.py) with PUPILS imported."""
    rows = [pupil_row(pid, first_name=f, last_name=last, **cells) for pid, f, last, cells in PUPILS]
    path = write_registry_csv(tmp_path / "p.csv", rows)
    import_pupils_csv(store, path, operator="office")
    return store


def caption_for(
    store: Store, text: str | None, faces: list[FaceDecision], purpose: Purpose
) -> PhotoCaption | None:
    """The caption as a batch for ``purpose`` on ``ON`` rewrites it."""
    options = PublishOptions(purpose=purpose, out_dir=Path("unused"), on=ON)
    return load_context(store, options, encodings=False).caption(text, faces)


def face(pupil: str | None, decision: Decision = Decision.KEPT) -> FaceDecision:
    reason = Reason.MATCHED_WITH_CONSENT if decision is Decision.KEPT else Reason.NO_MATCH
    return FaceDecision(Box(0, 0, 80, 80), decision, reason, pupil)


CASES = [
    # (caption, faces, purpose, expected)
    ("Amelia Hart wins", [face("P1")], "website", "Amelia wins"),
    ("Amelia Hart wins", [face("P1", Decision.BLURRED)], "website", "A pupil wins"),
    ("Amelia Hart wins", [], "website", "A pupil wins"),
    ("Amelia Hart and Ben Stone", [face("P1"), face("P2")], "website", "Amelia"),
    ("Hart, Amelia and Zoë Smith-Jones", [face("P3")], "website", "Zoë"),
    ("Tom Lloyd Webber sings", [face("P4")], "social_media", "A pupil sings"),
    ("Tom Lloyd Webber sings", [face("P4")], "internal_display", "Tom Lloyd Webber sings"),
    ("Amelia Hart wins", [face("P1")], "internal_display", "Amelia Hart wins"),
    ("Sports day relay", [face("P1")], "website", "Sports day relay"),
]


@pytest.mark.parametrize(("caption", "faces", "purpose", "expected"), CASES)
def test_caption_follows_faces_consent_and_policy(
    store: Store, caption: str, faces: list[FaceDecision], purpose: str, expected: str
) -> None:
    result = caption_for(store, caption, faces, Purpose(purpose))

    assert result is not None and result.text == expected


def test_a_kept_face_without_consent_is_still_not_named(store: Store) -> None:
    # A decider should never keep P2 for the website; the caption does not trust it.
    permitted = load_context(
        store, PublishOptions(purpose=Purpose.WEBSITE, out_dir=Path("unused"), on=ON)
    ).permitted
    assert shown_pupils([face("P2")], permitted) == set()
    result = caption_for(store, "Ben Stone", [face("P2")], Purpose.WEBSITE)

    assert result is not None and result.text == "A pupil" and result.removed == ["P2"]


def test_the_schools_policy_is_used_and_reported(store: Store) -> None:
    set_name_policy(store, Purpose.WEBSITE, NamePolicy.NONE, operator="dpo")

    result = caption_for(store, "Amelia Hart wins", [face("P1")], Purpose.WEBSITE)

    assert result is not None
    assert result.to_report() == {
        "caption": "A pupil wins",
        "name_policy": "none",
        "pupils_removed": ["P1"],
        "pupils_shortened": [],
    }


def test_no_caption_gives_none(store: Store) -> None:
    assert caption_for(store, None, [], Purpose.WEBSITE) is None
    assert caption_for(store, "  ", [], Purpose.WEBSITE) is None


def test_the_register_includes_pupils_without_consent_but_not_erased_names(store: Store) -> None:
    store.conn.execute("UPDATE pupils SET first_name = '', last_name = '' WHERE pupil_id = 'P4'")

    assert [p.pupil_id for p in register_pupils(store.conn)] == ["P1", "P2", "P3"]


# --- full names ---------------------------------------------------------------------------------

NAMED = [NamedPupil(pid, f, last) for pid, f, last, _ in PUPILS]

FILE_NAMES = [
    ("Amelia_Hart_sports.jpg", ["P1"]),
    ("amelia-hart.jpg", ["P1"]),
    ("AmeliaHart.jpg", ["P1"]),
    ("AMELIAHART2026.JPG", ["P1"]),
    ("hart_amelia.png", ["P1"]),
    ("zoe.smith-jones.heic", ["P3"]),
    ("ZoeSmithJones.jpg", ["P3"]),
    ("tom_lloyd_webber_and_ben_stone.jpg", ["P2", "P4"]),
    ("amelia.jpg", []),
    ("hart.jpg", []),
    ("IMG_0001.JPG", []),
    ("heart_of_amelia.jpg", []),
]


@pytest.mark.parametrize(("name", "expected"), FILE_NAMES)
def test_full_names_in_file_names(name: str, expected: list[str]) -> None:
    found = full_names_in(name, NAMED, where="file name", file_name=True)

    assert [f.pupil_id for f in found] == expected
    assert all(f.where == "file name" for f in found)


CAPTIONS = [
    ("Amelia Hart wins", ["P1"]),
    ("AMÉLIA HART wins", ["P1"]),
    ("Hart, Amelia (3B)", ["P1"]),
    ("Amelia and Ben", []),
    ("Mr Stone's class", []),
    ("Zoe Smith Jones and Tom Lloyd-Webber", ["P3", "P4"]),
]


@pytest.mark.parametrize(("text", "expected"), CAPTIONS)
def test_full_names_in_captions(text: str, expected: list[str]) -> None:
    assert [f.pupil_id for f in full_names_in(text, NAMED, where="caption")] == expected


def test_file_name_words_splits_the_usual_separators() -> None:
    assert file_name_words("Amelia_Hart-sportsDay.2026.jpg") == "Amelia Hart sports Day 2026 jpg"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    shown=st.sets(st.sampled_from(["P1", "P2", "P3", "P4"])),
    order=st.permutations(NAMED),
    joiner=st.sampled_from([" and ", ", ", " & ", " with "]),
)
def test_no_surname_survives_a_website_caption(
    store: Store, shown: set[str], order: list[NamedPupil], joiner: str
) -> None:
    caption = joiner.join(f"{p.first_name} {p.last_name}" for p in order) + " at sports day"
    faces = [face(pid) for pid in shown if pid != "P2"] + ([face("P2", Decision.BLURRED)])

    result = caption_for(store, caption, faces, Purpose.WEBSITE)

    assert result is not None
    folded = fold(result.text)[0]
    for p in NAMED:
        for part in p.last_name.replace("-", " ").split():
            assert not re.search(rf"\b{re.escape(fold(part)[0])}\b", folded), result.text
