from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from consent import audit
from consent.errors import AuditTampered
from consent.store import MIGRATIONS, Store

# Entries in a fresh log: one per schema migration, then "init". The `imported` fixture
# adds three pupil_add entries and one consent_import after them.
FRESH = len(MIGRATIONS) + 1
P001, P002, P003, IMPORT = FRESH + 1, FRESH + 2, FRESH + 3, FRESH + 4


def tamper(db_path: Path, *statements: str) -> None:
    """Edit the database as an outsider would: plain sqlite3, triggers dropped first."""
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("DROP TRIGGER audit_log_no_delete")
        for statement in statements:
            conn.execute(statement)
    conn.close()


def last_seq(store: Store) -> int:
    return audit.head(store.conn)[0]


def test_fresh_chain_verifies(store: Store) -> None:
    result = audit.verify(store)
    assert result == audit.VerifyResult(ok=True, entries=FRESH, problems=[])


def test_chain_after_imports_verifies(imported: Store) -> None:
    result = audit.verify(imported)
    assert result.ok and result.entries == last_seq(imported) == IMPORT


def test_first_entry_links_to_genesis(store: Store) -> None:
    first = audit.entries(store)[0]
    assert first.seq == 1 and first.prev_hash == "0" * 64


TAMPERING = {
    "edit-details": (
        [f"UPDATE audit_log SET details = replace(details, 'P002', 'P009') WHERE seq = {P002}"],
        f"entry {P002} ('pupil_add'): contents do not match its hash",
    ),
    "edit-operator": (
        [f"UPDATE audit_log SET operator = 'someone-else' WHERE seq = {P001}"],
        f"entry {P001} ('pupil_add'): contents do not match its hash",
    ),
    "delete-middle": (
        [f"DELETE FROM audit_log WHERE seq = {P001}"],
        f"entries {P001}..{P001} are missing",
    ),
    "delete-last": (
        [f"DELETE FROM audit_log WHERE seq = {IMPORT}"],
        f"audit-head records entry {IMPORT} but the log ends at entry {P003}",
    ),
    "delete-last-two": (
        [f"DELETE FROM audit_log WHERE seq >= {P003}"],
        f"audit-head records entry {IMPORT} but the log ends at entry {P002}",
    ),
    "swap-seq": (
        [
            f"UPDATE audit_log SET seq = -1 WHERE seq = {P001}",
            f"UPDATE audit_log SET seq = {P001} WHERE seq = {P002}",
            f"UPDATE audit_log SET seq = {P002} WHERE seq = -1",
        ],
        f"entry {P001}: prev_hash does not match the entry before it",
    ),
}


@pytest.mark.parametrize(("statements", "problem"), TAMPERING.values(), ids=TAMPERING.keys())
def test_tampering_is_detected(imported: Store, statements: list[str], problem: str) -> None:
    assert audit.verify(imported).ok
    tamper(imported.db_path, *statements)
    result = audit.verify(imported)
    assert not result.ok
    assert any(problem in p for p in result.problems), result.problems
    with pytest.raises(AuditTampered, match="stop publishing"):
        audit.ensure_intact(imported)


def test_missing_anchor_is_a_problem(imported: Store) -> None:
    (imported.data_dir / "audit-head").unlink()
    result = audit.verify(imported)
    assert not result.ok
    assert "audit-head is missing" in result.problems[0]


def test_garbled_anchor_is_a_problem(imported: Store) -> None:
    (imported.data_dir / "audit-head").write_text("hello")
    assert "garbled" in audit.verify(imported).problems[0]


def test_triggers_refuse_in_place_edits(imported: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), imported.transaction() as c:
        c.execute(f"DELETE FROM audit_log WHERE seq = {IMPORT}")
    assert audit.verify(imported).ok


def test_rolled_back_append_leaves_chain_and_anchor(imported: Store) -> None:
    anchor = audit.read_anchor(imported.data_dir)
    with pytest.raises(RuntimeError, match="boom"), imported.transaction() as conn:
        audit.append(conn, imported.key, action="publish", operator="t", details={})
        raise RuntimeError("boom")
    assert audit.read_anchor(imported.data_dir) == anchor
    assert audit.verify(imported).ok


def test_append_outside_transaction_is_refused(store: Store) -> None:
    with pytest.raises(RuntimeError, match="inside store.transaction"):
        audit.append(store.conn, store.key, action="publish", operator="t", details={})


@pytest.mark.parametrize(
    "details",
    [
        {"vector": np.zeros(3)},
        {"photo": b"\xff\xd8"},
        {"nested": {"deep": [1, bytearray(b"x")]}},
        {"first_name": "Amy"},
        {"pupils": [{"Last_Name": "Adams"}]},
        {1: "non-string key"},
    ],
    ids=["ndarray", "bytes", "nested-bytearray", "first_name", "nested-last_name", "int-key"],
)
def test_append_refuses_raw_data_and_names(store: Store, details: dict) -> None:
    with pytest.raises(ValueError), store.transaction() as conn:
        audit.append(conn, store.key, action="publish", operator="t", details=details)
    assert last_seq(store) == FRESH


@pytest.mark.parametrize(
    ("action", "operator"), [("publish", "a\nb"), ("pub\x1blish", "t"), ("publish", "")]
)
def test_append_refuses_control_characters(store: Store, action: str, operator: str) -> None:
    with pytest.raises(ValueError), store.transaction() as conn:
        audit.append(conn, store.key, action=action, operator=operator, details={})


def test_details_are_canonical_json(store: Store) -> None:
    with store.transaction() as conn:
        audit.append(conn, store.key, action="publish", operator="t", details={"b": "é", "a": 1})
    raw = store.conn.execute("SELECT details FROM audit_log ORDER BY seq DESC").fetchone()[0]
    assert raw == '{"a":1,"b":"é"}'


def test_entries_filters_and_limits(imported: Store) -> None:
    assert [e.seq for e in audit.entries(imported, action="pupil_add")] == [P001, P002, P003]
    assert [e.seq for e in audit.entries(imported, limit=2)] == [P003, IMPORT]
    assert [e.seq for e in audit.entries(imported, action="pupil_add", limit=1)] == [P003]
    assert audit.entries(imported, action="nothing") == []
