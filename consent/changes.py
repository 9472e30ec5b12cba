"""Single consent changes between imports: a parent tells the school, the office records it.

``photoconsent consent set/withdraw`` lands here. Each change adds a new version of the
pupil's consent record (the old one is marked superseded, never edited), naming who
recorded it, when, and the slip or letter it came from (``source``). It takes effect at
once: publishing reads only the current version. Withdrawing biometric consent deletes the
pupil's face references in the same transaction (Protection of Freedoms Act 2012, s. 27).

`history` reads the versions back with what changed between each, for ``consent show``.
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass
from datetime import date

from consent import audit, registry
from consent.enrolment import purge_references
from consent.errors import ConsentError, NoChange, NoConsentToChange, UnknownPupil
from consent.registry import ConsentRecord, Purpose
from consent.store import Store


class ChangeKind(enum.Enum):
    """Why a consent version was written outside a CSV import."""

    SET = "set"
    WITHDRAW = "withdraw"
    ERASURE = "erasure"


@dataclass(frozen=True)
class ConsentChange:
    """What one change does. ``grant``/``withdraw`` are purposes; ``biometric`` None leaves
    biometric consent as it is. ``expires_on``: None keeps the current use-by date,
    ``clear_expiry`` removes it. ``consent_date`` is the date a new permission was signed
    (default: the current slip's date for a withdrawal, today for a grant)."""

    kind: ChangeKind
    source: str
    grant: frozenset[Purpose] = frozenset()
    withdraw: frozenset[Purpose] = frozenset()
    biometric: bool | None = None
    expires_on: date | None = None
    clear_expiry: bool = False
    consent_date: date | None = None


@dataclass(frozen=True)
class ConsentVersion:
    """One version of the consent record with the fields that changed from the one before
    (``{field: [old, new]}``; every field for the first version, old being None)."""

    record: ConsentRecord
    superseded_at: str | None
    changes: dict[str, list[object]]


def record_fields(record: ConsentRecord | None) -> dict[str, object]:
    """A record as ``field -> value`` (purposes and biometric as booleans, dates as ISO)."""
    if record is None:
        return {}
    fields: dict[str, object] = {p.value: p in record.purposes for p in Purpose}
    fields["biometric_consent"] = record.biometric_consent
    fields["consent_date"] = record.consent_date.isoformat()
    fields["expires_on"] = None if record.expires_on is None else record.expires_on.isoformat()
    return fields


def _diff(old: ConsentRecord | None, new: ConsentRecord) -> dict[str, list[object]]:
    before, after = record_fields(old), record_fields(new)
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


def _check_source(source: str) -> str:
    cleaned = registry.clean_text(source)
    if not cleaned:
        raise ConsentError(
            "Say where the change came from with --source (e.g. 'letter 2026-03-02' or "
            "'email from parent, ref 118')."
        )
    return cleaned


def apply_change(
    conn: sqlite3.Connection,
    key: bytes,
    pupil_id: str,
    change: ConsentChange,
    *,
    operator: str,
    today: date,
) -> ConsentRecord:
    """Write ``change`` inside the caller's transaction, audited; return the new version.

    Raises `UnknownPupil`, `NoConsentToChange` (a grant for a pupil without any slip) or
    `NoChange` when the result equals the current version.
    """
    source = _check_source(change.source)
    if conn.execute("SELECT 1 FROM pupils WHERE pupil_id = ?", (pupil_id,)).fetchone() is None:
        raise UnknownPupil(pupil_id)
    old = registry.current_consent(conn, pupil_id)
    if old is None and (change.grant or change.biometric):
        raise NoConsentToChange(
            f"{pupil_id} has no consent slip on record; import the signed slip with "
            "`photoconsent pupils import` first."
        )
    purposes = (frozenset() if old is None else old.purposes) - change.withdraw | change.grant
    biometric = bool(old and old.biometric_consent)
    if change.biometric is not None:
        biometric = change.biometric
    expires = None if old is None else old.expires_on
    if change.clear_expiry:
        expires = None
    if change.expires_on is not None:
        expires = change.expires_on
    signed = change.consent_date
    if signed is None:
        signed = today if change.grant or change.biometric or old is None else old.consent_date
    now = audit.utc_now()
    new = ConsentRecord(
        record_id=0,
        pupil_id=pupil_id,
        purposes=purposes,
        biometric_consent=biometric,
        consent_date=signed,
        recorded_at=now,
        recorded_by=operator,
        source=source,
        expires_on=expires,
        change_kind=change.kind.value,
    )
    changed = _diff(old, new)
    if old is not None and not changed:
        raise NoChange(
            f"{pupil_id}'s current consent already says that; nothing was recorded. "
            "See `photoconsent consent show`."
        )
    if old is not None:
        conn.execute(
            "UPDATE consent_records SET superseded_at = ? WHERE id = ?", (now, old.record_id)
        )
    cursor = conn.execute(
        "INSERT INTO consent_records (pupil_id, website, press, social_media, prospectus,"
        " internal_display, biometric_consent, consent_date, recorded_at, recorded_by, source,"
        " expires_on, change_kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            pupil_id,
            *(int(p in purposes) for p in Purpose),
            int(biometric),
            signed.isoformat(),
            now,
            operator,
            source,
            None if expires is None else expires.isoformat(),
            change.kind.value,
        ),
    )
    record_id = int(cursor.lastrowid or 0)
    audit.append(
        conn,
        key,
        action="consent_change",
        operator=operator,
        details={
            "pupil_id": pupil_id,
            "kind": change.kind.value,
            "record_id": record_id,
            "previous_record_id": None if old is None else old.record_id,
            "source": source,
            "changed": changed,
        },
    )
    if old is not None and old.biometric_consent and not biometric:
        purge_references(
            conn, key, pupil_id, operator=operator, reason="biometric consent withdrawn"
        )
    current = registry.current_consent(conn, pupil_id)
    assert current is not None and current.record_id == record_id
    return current


def change_consent(
    store: Store,
    pupil_id: str,
    change: ConsentChange,
    *,
    operator: str,
    today: date | None = None,
) -> ConsentRecord:
    """Record one consent change in its own audited transaction; return the new version."""
    with store.transaction() as conn:
        return apply_change(
            conn, store.key, pupil_id, change, operator=operator, today=today or date.today()
        )


def history(conn: sqlite3.Connection, pupil_id: str) -> list[ConsentVersion]:
    """Every version of the pupil's consent, oldest first, each with what it changed.

    Raises `UnknownPupil` for an id not in the registry.
    """
    if conn.execute("SELECT 1 FROM pupils WHERE pupil_id = ?", (pupil_id,)).fetchone() is None:
        raise UnknownPupil(pupil_id)
    superseded = dict(
        conn.execute(
            "SELECT id, superseded_at FROM consent_records WHERE pupil_id = ?", (pupil_id,)
        ).fetchall()
    )
    versions, previous = [], None
    for record in registry.consent_history(conn, pupil_id):
        versions.append(
            ConsentVersion(record, superseded[record.record_id], _diff(previous, record))
        )
        previous = record
    return versions


def allowed_purposes(record: ConsentRecord | None, on: date) -> list[Purpose]:
    """The purposes ``record`` allows on ``on`` (none once it has expired)."""
    return [p for p in Purpose if registry.consent_allows(record, p, on)]


def version_json(version: ConsentVersion) -> dict[str, object]:
    """One version for ``--json`` output and the subject access export."""
    r = version.record
    return {
        "record_id": r.record_id,
        **record_fields(r),
        "recorded_at": r.recorded_at,
        "recorded_by": r.recorded_by,
        "source": r.source,
        "kind": r.change_kind or "import",
        "superseded_at": version.superseded_at,
        "changed": version.changes,
    }
