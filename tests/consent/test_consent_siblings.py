"""Sibling links: symmetric, audited, pupil IDs only."""

from __future__ import annotations

import pytest

from consent import audit
from consent.errors import UnknownPupil
from consent.registry import import_pupils_csv
from consent.siblings import link_siblings, siblings, unlink_siblings
from tests.support.consent_factories import pupil_row, write_registry_csv


@pytest.fixture
def store(store, tmp_path):
    csv = write_registry_csv(tmp_path / "p.csv", [pupil_row(p) for p in ("P1", "P2", "P3")])
    import_pupils_csv(store, csv, operator="office")
    return store


def test_links_are_symmetric_and_audited(store):
    assert link_siblings(store, ["P1", "P2", "P3"], operator="office") == 3
    assert siblings(store.conn) == {
        "P1": frozenset({"P2", "P3"}),
        "P2": frozenset({"P1", "P3"}),
        "P3": frozenset({"P1", "P2"}),
    }
    assert link_siblings(store, ["P2", "P1"], operator="office") == 0  # already linked
    [first, _] = audit.entries(store, action="siblings_link")
    assert first.details == {"pupils": ["P1", "P2", "P3"]}
    assert unlink_siblings(store, ["P1", "P3"], operator="office") == 1
    assert siblings(store.conn)["P1"] == frozenset({"P2"})
    assert audit.verify(store).ok


def test_unknown_pupil_is_refused_and_nothing_linked(store):
    with pytest.raises(UnknownPupil):
        link_siblings(store, ["P1", "P9"], operator="office")
    assert siblings(store.conn) == {}
