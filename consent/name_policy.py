"""How captions may name pupils, per purpose: the school's name policy.

The policy statement behind it: photos for the press or the internet never carry a child's
full name. So by default captions for internal display keep full names, the website, press
and prospectus get first names only, and social media gets no names at all. A school can
change any purpose (`set_name_policy`, audited); a full-names policy for a purpose that
leaves the school must be asked for explicitly (``allow_full_external``).

The policy only says how a *shown* pupil may be named; a pupil whose face was blurred, or
who has no consent for the purpose, is never named whatever the policy
(`publishing.captions.rewrite.rewrite_caption`).
"""

from __future__ import annotations

import enum
import sqlite3

from consent import audit
from consent.errors import ConsentError
from consent.registry import Purpose
from consent.store import Store


class NamePolicy(enum.Enum):
    """How a shown pupil may be named in a caption."""

    FULL = "full"  # "Jack Smith"
    FIRST_ONLY = "first"  # "Jack"
    NONE = "none"  # no names at all


DEFAULTS: dict[Purpose, NamePolicy] = {
    Purpose.WEBSITE: NamePolicy.FIRST_ONLY,
    Purpose.PRESS: NamePolicy.FIRST_ONLY,
    Purpose.SOCIAL_MEDIA: NamePolicy.NONE,
    Purpose.PROSPECTUS: NamePolicy.FIRST_ONLY,
    Purpose.INTERNAL_DISPLAY: NamePolicy.FULL,
}
# Purposes whose photos stay inside the school; every other one is published outside it.
INTERNAL: frozenset[Purpose] = frozenset({Purpose.INTERNAL_DISPLAY})


class FullNamesOutside(ConsentError):
    """A full-names policy was asked for a purpose published outside the school."""


def name_policies(conn: sqlite3.Connection) -> dict[Purpose, NamePolicy]:
    """The policy of every purpose: the school's setting, else the default."""
    stored = {
        row["purpose"]: row["policy"]
        for row in conn.execute("SELECT purpose, policy FROM name_policies")
    }
    policies = {}
    for purpose in Purpose:
        value = stored.get(purpose.value)
        policies[purpose] = NamePolicy(value) if value else DEFAULTS[purpose]
    return policies


def name_policy(conn: sqlite3.Connection, purpose: Purpose) -> NamePolicy:
    """The name policy for ``purpose`` (the school's setting, else the default)."""
    return name_policies(conn)[purpose]


def is_default(conn: sqlite3.Connection, purpose: Purpose) -> bool:
    row = conn.execute("SELECT 1 FROM name_policies WHERE purpose = ?", (purpose.value,)).fetchone()
    return row is None


def set_name_policy(
    store: Store,
    purpose: Purpose,
    policy: NamePolicy,
    *,
    operator: str,
    allow_full_external: bool = False,
) -> NamePolicy:
    """Set ``purpose``'s name policy, audited; return the previous one.

    Raises `FullNamesOutside` for `NamePolicy.FULL` on a purpose outside `INTERNAL`
    unless ``allow_full_external``: a child's full name on the web is the breach this
    policy exists to stop.
    """
    if policy is NamePolicy.FULL and purpose not in INTERNAL and not allow_full_external:
        raise FullNamesOutside(
            f"Full names in {purpose.value} captions would put children's full names outside "
            "the school. If the school has decided so, add --allow-full-names."
        )
    with store.transaction() as conn:
        previous = name_policy(conn, purpose)
        conn.execute(
            "INSERT INTO name_policies (purpose, policy, set_at, set_by) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (purpose) DO UPDATE SET policy = excluded.policy,"
            " set_at = excluded.set_at, set_by = excluded.set_by",
            (purpose.value, policy.value, audit.utc_now(), operator),
        )
        audit.append(
            conn,
            store.key,
            action="name_policy_set",
            operator=operator,
            details={
                "purpose": purpose.value,
                "policy": policy.value,
                "previous_policy": previous.value,
            },
        )
    return previous
