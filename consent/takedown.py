"""Takedown: every published photo that kept a pupil's face under a purpose they no longer
have consent for, read from the audit log, and optional replacements with them blurred.

A ``publish`` audit entry names the purpose, event, date, operator, output file (name and
sha256), destination (``publish --destination``) and the pupils whose faces were kept. After
a withdrawal (or an expiry) `takedown_report` lists each such entry whose purpose the pupil's
current consent no longer allows. `republish` runs the originals, where still present and
unchanged (same sha256), through ``publish`` again under current consent and records
``takedown_republish`` entries linking each replacement to the output it replaces; those
items are then listed as replaced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
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


@dataclass(frozen=True)
class RepublishOutcome:
    """What ``--republish`` did for one item: ``status`` is ``replaced``, ``unavailable``
    (original missing or changed) or ``withheld`` (publish refused the photo)."""

    item: TakedownItem
    status: str
    reason: str
    new_output: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "audit_seq": self.item.audit_seq,
            "replaced_output": self.item.output,
            "status": self.status,
            "reason": self.reason,
            "new_output": self.new_output,
        }


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


def _original(item: TakedownItem) -> Path | None:
    """The original photo if it is still where it was and has the same bytes."""
    path = Path(item.input)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return path if hashlib.sha256(data).hexdigest() == item.input_sha256 else None


def republish(
    store: Store,
    pupil_id: str,
    items: Iterable[TakedownItem],
    out_dir: Path,
    *,
    operator: str,
    on: date | None = None,
) -> list[RepublishOutcome]:
    """Publish replacements of ``items`` (not yet replaced) into ``out_dir`` under current
    consent, one ``publish`` run per purpose, event and destination, and audit each link.

    A replacement that still kept ``pupil_id`` is not linked (status ``withheld``): it
    cannot happen while their consent is withdrawn, and fail-closed says not to assume it.
    """
    # Imported here: the consent package sits below the pipeline, which imports it.
    from pipeline.publish import PublishOptions, publish

    on = on or date.today()
    outcomes: list[RepublishOutcome] = []
    groups: dict[tuple[str, str, str | None], list[tuple[TakedownItem, Path]]] = {}
    for item in items:
        if item.replaced_by is not None:
            continue
        path = _original(item)
        if path is None:
            outcomes.append(
                RepublishOutcome(
                    item, "unavailable", f"original {item.input} is missing or has changed"
                )
            )
            continue
        groups.setdefault((item.purpose, item.event, item.destination), []).append((item, path))
    for (purpose, event, destination), members in groups.items():
        paths = list(dict.fromkeys(path for _, path in members))
        options = PublishOptions(
            purpose=Purpose(purpose),
            out_dir=out_dir,
            event=event,
            operator=operator,
            on=on,
            destination=destination,
        )
        report = publish(store, paths, options)
        by_input = {r.input: r for r in report.results}
        for item, path in members:
            result = by_input[str(path)]
            still_kept = any(
                f.pupil_id == pupil_id and f.decision.value == "kept" for f in result.faces
            )
            if result.status != "published" or result.output is None or still_kept:
                reason = "still kept the pupil" if still_kept else result.reason
                outcomes.append(RepublishOutcome(item, "withheld", reason))
                continue
            new_output = Path(result.output).name
            with store.transaction() as conn:
                audit.append(
                    conn,
                    store.key,
                    action=REPUBLISH_ACTION,
                    operator=operator,
                    details={
                        "pupil_id": pupil_id,
                        "replaced_seq": item.audit_seq,
                        "replaced_output": item.output,
                        "replaced_output_sha256": item.output_sha256,
                        "new_output": new_output,
                        "new_output_sha256": result.output_sha256,
                        "purpose": purpose,
                        "event": event,
                        "destination": destination,
                    },
                )
            outcomes.append(RepublishOutcome(item, "replaced", result.reason, new_output))
    return outcomes
