"""What each role may do in the office app (docs/office-app.md has the table)."""

from __future__ import annotations

import enum

from web.accounts import Role


class Permission(enum.Enum):
    DASHBOARD = "see the dashboard"
    PUPILS = "see the pupil list"
    NAMES = "see pupils' names"
    IMPORT = "import the register"
    ENROL = "enrol reference photos"
    PUBLISH = "publish photos"
    REVIEW = "review photos"
    TAKEDOWN = "take down photos"
    AUDIT = "read the audit log"
    ACCOUNTS = "manage staff accounts"
    MEDICAL = "make medical boards"
    EXPORT = "export a pupil's data"
    ERASE = "erase a pupil"
    RETENTION = "change how long data is kept, or purge it"
    SETTINGS = "see or change the settings"


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OFFICE: frozenset(
        {P.DASHBOARD, P.PUPILS, P.NAMES, P.IMPORT, P.ENROL, P.PUBLISH, P.REVIEW, P.TAKEDOWN}
    ),
    Role.DPO: frozenset(
        {P.DASHBOARD, P.PUPILS, P.NAMES, P.AUDIT, P.ACCOUNTS}
        | {P.EXPORT, P.ERASE, P.RETENTION, P.SETTINGS}
    ),
    Role.MEDICAL: frozenset({P.DASHBOARD, P.PUPILS, P.NAMES, P.MEDICAL}),
    # Read-only sees counts, pupil IDs, classes and consent, never a name.
    Role.READONLY: frozenset({P.DASHBOARD, P.PUPILS}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
