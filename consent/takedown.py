"""Takedown: every published photo that kept a pupil's face under a purpose they no longer
have consent for, read from the audit log, and optional replacements with them blurred.

A ``publish`` audit entry names the purpose, event, date, operator, output file (name and
sha256), destination (``publish --destination``) and the pupils whose faces were kept. After
a withdrawal (or an expiry) `takedown_report` lists each such entry whose purpose the pupil's
current consent no longer allows. Replacements are made by `publishing.republish`, which
records ``takedown_republish`` entries linking each replacement to the output it replaces;
those items are then listed as replaced.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from consent import audit, registry
from consent.errors import UnknownPupil
from consent.registry import Purpose
from consent.store import Store

REPUBLISH_ACTION = "takedown_republish"


@dataclass(frozen=True)
class TakedownItem:
    """One published photo to take down. ``audit_seq`` is its ``publish`` entry;
    ``replaced_by`` the file name of its replacement (None until republished)."""

    audit_seq: int
    output: str
    output_sha256: str
    event: str
    purpose: str
    publish_date: str
    operator: str
    at: str
    destination: str | None
    input: str
    input_sha256: str | None
    consent_record: int | None
    replaced_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _replacements(store: Store) -> dict[int, str]:
    """``publish audit seq -> replacement file name`` from ``takedown_republish`` entries."""
    return {
        int(e.details["replaced_seq"]): str(e.details["new_output"])
        for e in audit.entries(store, action=REPUBLISH_ACTION)
    }


def takedown_report(
    store: Store,
    pupil_id: str,
    *,
    on: date | None = None,
    purposes: Iterable[Purpose] | None = None,
) -> list[TakedownItem]:
    """Published photos that kept ``pupil_id`` for a purpose their consent no longer allows
    on ``on`` (default today), oldest first; ``purposes`` narrows the purposes looked at.

    Works also for a pupil erased with ``forget`` (the audit keeps pupil IDs); raises
    `UnknownPupil` only for an ID that never appears in the registry or the log.
    """
    on = on or date.today()
    current = registry.current_consent(store.conn, pupil_id)
    known = store.conn.execute("SELECT 1 FROM pupils WHERE pupil_id = ?", (pupil_id,)).fetchone()
    wanted = None if purposes is None else {p.value for p in purposes}
    replaced = _replacements(store)
    items: list[TakedownItem] = []
    seen_pupil = known is not None
    for e in audit.entries(store, action="publish"):
        d = e.details
        if pupil_id not in d.get("pupils_kept", []):
            continue
        seen_pupil = True
        if d.get("status") != "published" or not d.get("output_sha256"):
            continue
        if wanted is not None and d.get("purpose") not in wanted:
            continue
        if registry.consent_allows(current, Purpose(d["purpose"]), on):
            continue
        items.append(
            TakedownItem(
                audit_seq=e.seq,
                output=str(d.get("output")),
                output_sha256=str(d["output_sha256"]),
                event=str(d.get("event")),
                purpose=str(d["purpose"]),
                publish_date=str(d.get("publish_date")),
                operator=e.operator,
                at=e.at,
                destination=d.get("destination"),
                input=str(d.get("input")),
                input_sha256=d.get("input_sha256"),
                consent_record=(d.get("consent_records") or {}).get(pupil_id),
                replaced_by=replaced.get(e.seq),
            )
        )
    if not seen_pupil:
        raise UnknownPupil(pupil_id)
    return items
