"""Takedown replacements: the originals of published photos run through ``publish`` again
under current consent, each replacement linked to the output it replaces in the audit log.

`consent.takedown` lists what must come down; this module makes the replacements, where the
original is still present and unchanged (same sha256).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from consent import audit
from consent.registry import Purpose
from consent.store import Store
from consent.takedown import REPUBLISH_ACTION, TakedownItem
from pipeline.matching import Decision
from pipeline.recognisers import match_settings
from publishing.enrolling import recogniser_name
from publishing.options import PublishOptions
from publishing.publish import publish
from publishing.report import PhotoStatus


class RepublishStatus(enum.Enum):
    """What became of one published photo to be replaced."""

    REPLACED = "replaced"
    UNAVAILABLE = "unavailable"  # the original is missing or has changed
    WITHHELD = "withheld"  # publish refused the photo, or it still kept the pupil


@dataclass(frozen=True)
class RepublishOutcome:
    """What ``--republish`` did for one item."""

    item: TakedownItem
    status: RepublishStatus
    reason: str
    new_output: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "audit_seq": self.item.audit_seq,
            "replaced_output": self.item.where,
            "status": self.status.value,
            "reason": self.reason,
            "new_output": self.new_output,
        }


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

    A replacement that still kept ``pupil_id`` is not linked (status ``WITHHELD``): it
    cannot happen while their consent is withdrawn, and fail-closed says not to assume it.
    """
    on = on or date.today()
    outcomes: list[RepublishOutcome] = []
    groups: dict[tuple[str, str, str | None], list[tuple[TakedownItem, Path]]] = {}
    for item in items:
        if item.replaced_by is not None:
            continue
        if item.via_service:
            outcomes.append(RepublishOutcome(item, RepublishStatus.UNAVAILABLE, item.action))
            continue
        path = _original(item)
        if path is None:
            outcomes.append(
                RepublishOutcome(
                    item,
                    RepublishStatus.UNAVAILABLE,
                    f"original {item.input} is missing or has changed",
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
            # The data directory's recogniser and its rule, as publish itself uses.
            matching=match_settings(recogniser_name(store)),
        )
        report = publish(store, paths, options)
        by_input = {r.input: r for r in report.results}
        for item, path in members:
            result = by_input[str(path)]
            still_kept = any(
                f.pupil_id == pupil_id and f.decision is Decision.KEPT for f in result.faces
            )
            if result.status is not PhotoStatus.PUBLISHED or result.output is None or still_kept:
                reason = "still kept the pupil" if still_kept else result.reason
                outcomes.append(RepublishOutcome(item, RepublishStatus.WITHHELD, reason))
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
            outcomes.append(
                RepublishOutcome(item, RepublishStatus.REPLACED, result.reason, new_output)
            )
    return outcomes
