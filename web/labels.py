"""How purposes and consent read in the office app."""

from __future__ import annotations

from consent.registry import Purpose

PURPOSE_LABELS: dict[Purpose, str] = {
    Purpose.WEBSITE: "School website",
    Purpose.PRESS: "Press",
    Purpose.SOCIAL_MEDIA: "Social media",
    Purpose.PROSPECTUS: "Prospectus",
    Purpose.INTERNAL_DISPLAY: "Displays in school",
}


def purpose_label(value: Purpose | str) -> str:
    try:
        return PURPOSE_LABELS[Purpose(value)]
    except ValueError:
        return str(value)


def purpose_list(purposes: object, nothing: str = "Nothing") -> str:
    """Purposes in the consent slip's order, in the office's words (``nothing`` if none)."""
    chosen = {Purpose(p) for p in purposes}  # type: ignore[attr-defined]
    return ", ".join(PURPOSE_LABELS[p] for p in Purpose if p in chosen) or nothing
