"""Plain words for the office: UK dates and the reasons a face or photo was treated so."""

from __future__ import annotations

from datetime import date, datetime

from pipeline.matching import Reason

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip

# What report.json says (exact, for the record) and what the office reads.
PLAIN_REASONS: dict[str, str] = {
    Reason.MATCHED_WITH_CONSENT.value: "recognised as a pupil with consent",
    Reason.TOO_SMALL.value: "face too small to recognise",
    Reason.TOO_BLURRED.value: "face too blurred to recognise",
    Reason.TURNED_AWAY.value: "face turned too far away to recognise",
    Reason.NOT_ENCODABLE.value: "face could not be read",
    Reason.NO_GALLERY.value: "no pupil with reference photos has consent for this purpose",
    Reason.NO_MATCH.value: "not recognised as a pupil with consent",
    Reason.AMBIGUOUS.value: "looks like two pupils: cannot tell which",
    Reason.SIBLING_AMBIGUOUS.value: "looks like a pupil and their sibling: cannot tell which",
    Reason.REFERENCES_DISAGREE.value: "the pupil's reference photos disagree about this face",
    Reason.NO_CONSENT.value: "a pupil without consent for this purpose",
    Reason.DUPLICATE.value: "the same pupil is already recognised elsewhere in the photo",
    Reason.UNCERTAIN.value: "probably a pupil with consent, but not sure enough: blurred",
    Reason.NOT_APPROVED.value: "recognised, but not approved in review",
    Reason.REJECTED.value: "rejected in review",
    Reason.NO_BIOMETRICS.value: "no biometric consent: blurred unless a reviewer un-blurs it",
    Reason.REVIEWER_UNBLURRED.value: "un-blurred in review as a pupil with consent",
    Reason.APPROVED.value: "recognised as a pupil with consent and approved in review",
}


def plain_reason(text: str) -> str:
    """The office's words for a face reason; other texts (withheld photos) as they are."""
    return PLAIN_REASONS.get(text, text)


def uk_date(value: date | datetime | str | None) -> str:
    """``1 December 2026`` for a date, a datetime or an ISO string; "" for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return value
    day = value.date() if isinstance(value, datetime) else value
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def uk_datetime(value: str | datetime | None) -> str:
    """``1 December 2026, 14:05`` (the time in UTC as stored, shown as local time)."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = moment.astimezone() if moment.tzinfo else moment
    return f"{uk_date(local)}, {local:%H:%M}"
