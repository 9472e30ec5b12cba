"""The school's settings for medical boards, each change audited (who, when, old, new).

``photo_max_age_months``  a board photo older than this is flagged for a re-take (12)
``replace_after_days``    a printed board's "replace by" date, at the latest (28); earlier
                          when an IHCP review or a temporary condition ends sooner
``emergency_line``        the line printed on every card
``reference_photos``      ``yes`` records the school's decision that photos taken for
                          face-matching enrolment may also be used as board photos (no by
                          default: information collected for one purpose is not silently
                          used for another)
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass

from consent import audit
from consent.errors import MedicalError
from consent.registry import clean_text
from consent.store import Store


class Setting(enum.Enum):
    """A board setting's name, as typed on the command line."""

    PHOTO_MAX_AGE_MONTHS = "photo_max_age_months"
    REPLACE_AFTER_DAYS = "replace_after_days"
    EMERGENCY_LINE = "emergency_line"
    REFERENCE_PHOTOS = "reference_photos"


DEFAULTS: dict[Setting, str] = {
    Setting.PHOTO_MAX_AGE_MONTHS: "12",
    Setting.REPLACE_AFTER_DAYS: "28",
    Setting.EMERGENCY_LINE: "In an emergency: call 999, then tell the school office.",
    Setting.REFERENCE_PHOTOS: "no",
}


@dataclass(frozen=True)
class BoardSettings:
    """The settings in force (the school's value, else the default)."""

    photo_max_age_months: int
    replace_after_days: int
    emergency_line: str
    reference_photos: bool


def _normalise(setting: Setting, value: str) -> str:
    value = clean_text(value)
    if setting in (Setting.PHOTO_MAX_AGE_MONTHS, Setting.REPLACE_AFTER_DAYS):
        limit = 36 if setting is Setting.PHOTO_MAX_AGE_MONTHS else 366
        if not value.isdigit() or not 1 <= int(value) <= limit:
            raise MedicalError(f"{setting.value} is a whole number from 1 to {limit}.")
        return str(int(value))
    if setting is Setting.REFERENCE_PHOTOS:
        word = value.lower()
        if word not in ("yes", "no"):
            raise MedicalError(f"{setting.value} is yes or no.")
        return word
    if not value or len(value) > 160:
        raise MedicalError(f"{setting.value} is 1 to 160 characters of text.")
    return value


def raw_settings(conn: sqlite3.Connection) -> dict[Setting, str]:
    values = dict(DEFAULTS)
    for key, value in conn.execute("SELECT key, value FROM board_settings"):
        try:
            values[Setting(key)] = value
        except ValueError:
            continue  # a setting of a newer version: ignored, never guessed at
    return values


def settings(conn: sqlite3.Connection) -> BoardSettings:
    """The settings in force."""
    values = raw_settings(conn)
    return BoardSettings(
        photo_max_age_months=int(values[Setting.PHOTO_MAX_AGE_MONTHS]),
        replace_after_days=int(values[Setting.REPLACE_AFTER_DAYS]),
        emergency_line=values[Setting.EMERGENCY_LINE],
        reference_photos=values[Setting.REFERENCE_PHOTOS] == "yes",
    )


def set_setting(store: Store, setting: Setting, value: str, *, operator: str) -> str:
    """Record a setting (audited with its old and new value); return the stored value."""
    new = _normalise(setting, value)
    with store.transaction() as conn:
        old = raw_settings(conn)[setting]
        conn.execute(
            "INSERT INTO board_settings (key, value, set_at, set_by) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
            " set_at = excluded.set_at, set_by = excluded.set_by",
            (setting.value, new, audit.utc_now(), operator),
        )
        audit.append(
            conn,
            store.key,
            action="board_setting",
            operator=operator,
            details={"setting": setting.value, "value": new, "previous": old},
        )
    return new
