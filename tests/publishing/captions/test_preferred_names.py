"""Every name a pupil goes by is that pupil's name in a caption (issue 14): a blurred
pupil loses each form (legal, preferred, the short forms the school lists); a shown one is
named by the preferred name."""

from __future__ import annotations

import pytest

from consent.name_policy import NamePolicy
from consent.registry import Pupil
from publishing.captions.per_photo import full_names_in, named_pupil
from publishing.captions.rewrite import NamedPupil, rewrite_caption

LUKE = NamedPupil("L", "Łukasz", "Nowak", "Luke", "", ("Lukey",))
PEPE = NamedPupil("J", "José", "García-López", "Pepe")
OLLY = NamedPupil("O", "Oliver", "Smith", "Olly")
AMY = NamedPupil("A", "Amy", "Lee")
ZOE = NamedPupil("Z", "Zoë", "Ìmọlẹ", "", "Imole")
PUPILS = [LUKE, PEPE, OLLY, AMY, ZOE]
FIRST, FULL, NONE = NamePolicy.FIRST_ONLY, NamePolicy.FULL, NamePolicy.NONE

CASES = [
    # (caption, shown, policy, expected)
    # The cases: blurred, so every form goes.
    ("Luke Nowak in the relay", set(), FIRST, "A pupil in the relay"),
    ("Luke in the relay", set(), FIRST, "A pupil in the relay"),
    ("Lukasz Nowak in the relay", set(), FIRST, "A pupil in the relay"),
    ("Łukasz in the relay", set(), FULL, "A pupil in the relay"),
    ("Lukey's medal", set(), FIRST, "A pupil's medal"),
    ("Pepe and Amy Lee", {"A"}, FIRST, "Amy"),
    ("Jose Garcia-Lopez scored", set(), FIRST, "A pupil scored"),
    ("Pepe García-López scored", set(), FIRST, "A pupil scored"),
    ("Olly, Amy and Pepe", {"A"}, FIRST, "Amy"),
    ("Olly Smith won", set(), FULL, "A pupil won"),
    ("Smith, Olly", set(), FIRST, "A pupil"),
    ("Zoë Imole sang", set(), FIRST, "A pupil sang"),
    # Shown: the web caption names them as they are known.
    ("Lukasz Nowak in the relay", {"L"}, FIRST, "Luke in the relay"),
    ("Łukasz in the relay", {"L"}, FIRST, "Luke in the relay"),
    ("Luke Nowak in the relay", {"L"}, FIRST, "Luke in the relay"),
    ("Lukey in the relay", {"L"}, FIRST, "Luke in the relay"),
    ("Nowak, Łukasz", {"L"}, FIRST, "Luke"),
    ("José García-López scored", {"J"}, FIRST, "Pepe scored"),
    ("Oliver Smith and Amy Lee", {"O", "A"}, FIRST, "Olly and Amy"),
    ("Oliver Smith won", {"O"}, FULL, "Olly Smith won"),
    ("Olly Smith won", {"O"}, FULL, "Olly Smith won"),
    ("Zoë Ìmọlẹ sang", {"Z"}, FULL, "Zoë Imole sang"),
    ("Lukasz Nowak in the relay", {"L"}, NONE, "A pupil in the relay"),
    # Shown, but a surname alone still never leaves the school.
    ("The Nowak family", {"L"}, FIRST, "The family"),
]


@pytest.mark.parametrize(("caption", "shown", "policy", "expected"), CASES)
def test_every_name_a_pupil_goes_by(
    caption: str, shown: set[str], policy: NamePolicy, expected: str
) -> None:
    assert rewrite_caption(caption, PUPILS, policy=policy, shown=shown).text == expected


def test_a_removed_preferred_name_is_reported_by_id_only() -> None:
    result = rewrite_caption("Luke and Pepe", PUPILS, policy=FIRST, shown=set())
    assert result.removed == ["J", "L"]


def test_full_names_are_found_by_preferred_forms_too() -> None:
    assert [f.pupil_id for f in full_names_in("Luke Nowak at sports day", PUPILS, where="c")] == [
        "L"
    ]
    found = full_names_in("olly_smith-sportsday.jpg", PUPILS, where="file name", file_name=True)
    assert [f.pupil_id for f in found] == ["O"]
    compact = full_names_in("PepeGarciaLopez.jpg", PUPILS, where="file name", file_name=True)
    assert [f.pupil_id for f in compact] == ["J"]


def test_the_register_gives_every_name() -> None:
    pupil = Pupil("L", "Łukasz", "Nowak", "3B", "Luke", "", "Lukey; Łukaszek")
    named = named_pupil(pupil)
    assert named.first_names() == ["Łukasz", "Luke", "Lukey", "Łukaszek"]
    assert named.shown_first == "Luke"
