"""Staff accounts of the office app: named people, a role each, argon2 password hashes.

Accounts live in the data directory's ``staff_accounts`` table (a migration in
`consent.store`), so a backup of the data directory carries them, and every change to
one is audited in the same transaction. Only the argon2id hash of a password is kept
(argon2-cffi's defaults, RFC 9106's second recommended set).

Lock-out: `MAX_FAILED_SIGN_INS` wrong passwords in a row lock the account for
`LOCK_MINUTES`; the count is in the database, so restarting the app does not reset it.
A sign-in with an unknown user name is refused the same way, and is not audited: people
type their password into the user name box, and the audit log must never hold one.
"""

from __future__ import annotations

import enum
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from consent import audit
from consent.errors import ConsentError
from consent.store import Store

MAX_FAILED_SIGN_INS = 5
LOCK_MINUTES = 15
MIN_PASSWORD_LENGTH = 10
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
_hasher = PasswordHasher()


class Role(enum.Enum):
    """What a person does at school, and so what the app lets them do."""

    OFFICE = "office"
    DPO = "dpo"
    MEDICAL = "medical"
    READONLY = "readonly"

    @property
    def label(self) -> str:
        return {
            Role.OFFICE: "School office",
            Role.DPO: "Data protection officer",
            Role.MEDICAL: "Medical lead",
            Role.READONLY: "Read only",
        }[self]


class AccountError(ConsentError):
    """An account cannot be created or changed as asked (the message says why)."""


class SignInRefused(ConsentError):
    """The user name or password is wrong, or the account is locked or switched off."""


@dataclass(frozen=True)
class Account:
    username: str
    role: Role
    created_at: str
    created_by: str
    failed_sign_ins: int = 0
    locked_until: str | None = None
    last_sign_in: str | None = None
    disabled_at: str | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and datetime.fromisoformat(self.locked_until) > now


def _now() -> datetime:
    return datetime.now(UTC)


def check_username(username: str) -> str:
    """``username`` as stored: lower case letters, digits, dot, dash, underscore, 1-40."""
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise AccountError(
            "A user name is 1 to 40 lower-case letters, digits, dots, dashes or underscores, "
            "starting with a letter or digit (for example j.smith)."
        )
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters long; "
            "three or four unrelated words make a good one."
        )


def _account(row: sqlite3.Row) -> Account:
    return Account(
        username=row["username"],
        role=Role(row["role"]),
        created_at=row["created_at"],
        created_by=row["created_by"],
        failed_sign_ins=row["failed_sign_ins"],
        locked_until=row["locked_until"],
        last_sign_in=row["last_sign_in"],
        disabled_at=row["disabled_at"],
    )


def get_account(conn: sqlite3.Connection, username: str) -> Account | None:
    row = conn.execute("SELECT * FROM staff_accounts WHERE username = ?", (username,)).fetchone()
    return None if row is None else _account(row)


def list_accounts(conn: sqlite3.Connection) -> list[Account]:
    rows = conn.execute("SELECT * FROM staff_accounts ORDER BY username").fetchall()
    return [_account(r) for r in rows]


def create_account(
    store: Store, username: str, password: str, role: Role, *, operator: str
) -> Account:
    """Add a staff account; audited as ``staff_account_create`` under ``operator``."""
    name = check_username(username)
    check_password(password)
    with store.transaction() as conn:
        if get_account(conn, name) is not None:
            raise AccountError(f"There is already an account called {name}. Choose another name.")
        conn.execute(
            "INSERT INTO staff_accounts (username, role, password_hash, created_at, created_by)"
            " VALUES (?, ?, ?, ?, ?)",
            (name, role.value, _hasher.hash(password), audit.utc_now(), operator),
        )
        audit.append(
            conn,
            store.key,
            action="staff_account_create",
            operator=operator,
            details={"username": name, "role": role.value},
        )
    account = get_account(store.conn, name)
    assert account is not None
    return account


def set_password(store: Store, username: str, password: str, *, operator: str) -> None:
    """Replace the password and lift any lock-out; audited as ``staff_password_set``."""
    check_password(password)
    with store.transaction() as conn:
        if get_account(conn, username) is None:
            raise AccountError(f"There is no account called {username}.")
        conn.execute(
            "UPDATE staff_accounts SET password_hash = ?, failed_sign_ins = 0,"
            " locked_until = NULL WHERE username = ?",
            (_hasher.hash(password), username),
        )
        audit.append(
            conn,
            store.key,
            action="staff_password_set",
            operator=operator,
            details={"username": username},
        )


def set_disabled(store: Store, username: str, disabled: bool, *, operator: str) -> None:
    """Switch an account off (it can no longer sign in) or back on; audited."""
    with store.transaction() as conn:
        if get_account(conn, username) is None:
            raise AccountError(f"There is no account called {username}.")
        conn.execute(
            "UPDATE staff_accounts SET disabled_at = ? WHERE username = ?",
            (audit.utc_now() if disabled else None, username),
        )
        audit.append(
            conn,
            store.key,
            action="staff_account_disable" if disabled else "staff_account_enable",
            operator=operator,
            details={"username": username},
        )


def sign_in(store: Store, username: str, password: str, *, now: datetime | None = None) -> Account:
    """The account if the password is right; else `SignInRefused`, counting the failure.

    The message never says which of user name and password was wrong.
    """
    now = now or _now()
    refused = SignInRefused("That user name and password do not match. Check them and try again.")
    try:
        name = check_username(username)
    except AccountError:
        raise refused from None
    with store.transaction() as conn:
        row = conn.execute("SELECT * FROM staff_accounts WHERE username = ?", (name,)).fetchone()
        if row is None:
            _hasher.hash(password)  # the same time as a known name: no user-name probing
            raise refused
        account = _account(row)
        if account.disabled_at is not None:
            raise SignInRefused("This account is switched off. Ask your data protection officer.")
        if account.locked(now):
            raise SignInRefused(
                "This account is locked after too many wrong passwords. Try again in "
                f"{LOCK_MINUTES} minutes, or ask your data protection officer to reset it."
            )
        failure = _check_password_or_count(conn, store.key, row, account, password, now)
        if failure is None:
            if _hasher.check_needs_rehash(row["password_hash"]):
                conn.execute(
                    "UPDATE staff_accounts SET password_hash = ? WHERE username = ?",
                    (_hasher.hash(password), name),
                )
            conn.execute(
                "UPDATE staff_accounts SET failed_sign_ins = 0, locked_until = NULL,"
                " last_sign_in = ? WHERE username = ?",
                (now.isoformat(), name),
            )
            audit.append(
                conn, store.key, action="staff_sign_in", operator=name, details={"username": name}
            )
    # Raised after the commit, so the counted failure is kept.
    if failure is not None:
        raise failure
    signed = get_account(store.conn, name)
    assert signed is not None
    return signed


def _check_password_or_count(
    conn: sqlite3.Connection,
    key: bytes,
    row: sqlite3.Row,
    account: Account,
    password: str,
    now: datetime,
) -> SignInRefused | None:
    """None if ``password`` is right; else count the failure (locking the account at
    `MAX_FAILED_SIGN_INS`), audit it, and return the refusal to raise after the commit."""
    try:
        _hasher.verify(row["password_hash"], password)
        return None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        pass
    failures = account.failed_sign_ins + 1
    locked = failures >= MAX_FAILED_SIGN_INS
    until = (now + timedelta(minutes=LOCK_MINUTES)).isoformat() if locked else None
    conn.execute(
        "UPDATE staff_accounts SET failed_sign_ins = ?, locked_until = ? WHERE username = ?",
        (0 if locked else failures, until, account.username),
    )
    audit.append(
        conn,
        key,
        action="staff_account_locked" if locked else "staff_sign_in_failed",
        operator=account.username,
        details={"username": account.username, "failures": failures},
    )
    if locked:
        return SignInRefused(
            f"Too many wrong passwords: this account is locked for {LOCK_MINUTES} "
            "minutes. Ask your data protection officer if you need in sooner."
        )
    return SignInRefused("That user name and password do not match. Check them and try again.")
