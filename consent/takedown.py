"""Takedown: every published photo that kept a pupil's face under a purpose they no longer
have consent for, read from the audit log, and optional replacements with them blurred.

A ``publish`` audit entry names the purpose, event, date, operator, output file (name,
absolute path, folder and sha256), the input (absolute path and sha256), destination
(``publish --destination``), whether it came through the web service, and the pupils whose
faces were kept. After a withdrawal (or an expiry) `takedown_report` lists each such entry
whose purpose the pupil's current consent no longer allows. Replacements are made by
`publishing.republish`, which records ``takedown_republish`` entries linking each
replacement to the output it replaces; those items are then listed as replaced.
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
    # Where the output was written (absolute) and its folder; None for a web-service
    # upload, whose file went back to the website and was never kept, and for entries
    # written before publish recorded them (then ``output`` is the file name only).
    output_path: str | None = None
    out_dir: str | None = None
    via_service: bool = False

    @property
    def where(self) -> str:
        """The file to remove, as fully as the audit knows it."""
        return self.output_path or self.output

    @property
    def action(self) -> str:
        """What to do, in plain words."""
        if self.via_service:
            place = self.destination or "the website it was uploaded to"
            return (
                "uploaded through the web service, no original kept: "
                f"remove {self.output} from {place}"
            )
        place = f" and from {self.destination}" if self.destination else ""
        return f"remove {self.where}{place}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "where": self.where, "action": self.action}


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
                # The absolute path where recorded (publish since issue 14), else the
                # path as typed, relative to the folder publish was run from.
                input=str(d.get("input_path") or d.get("input")),
                input_sha256=d.get("input_sha256"),
                consent_record=(d.get("consent_records") or {}).get(pupil_id),
                replaced_by=replaced.get(e.seq),
                output_path=d.get("output_path"),
                out_dir=d.get("out_dir"),
                via_service=bool(d.get("via_service")),
            )
        )
    if not seen_pupil:
        raise UnknownPupil(pupil_id)
    return items
