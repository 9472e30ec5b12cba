"""Error bodies of the web service: each names the field and the limit, never the content.

FastAPI's default 422 body repeats every invalid value (``"input": ...``), so a caption of a
million characters, or one naming a child, came back in full (issue 15). Here each problem
is rebuilt from the error's type and its limits alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# The form fields the endpoints declare; anything else is reported as "form".
FIELDS = frozenset({"file", "purpose", "caption", "event", "destination"})


def _field(loc: Sequence[Any]) -> str:
    names = [str(part) for part in loc if isinstance(part, str) and part != "body"]
    return names[-1] if names and names[-1] in FIELDS else "form"


def _problem(error: dict[str, Any]) -> str:
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "string_too_long":
        return f"is longer than the limit of {int(ctx.get('max_length', 0)):,} characters"
    if kind == "string_too_short":
        return f"is shorter than {int(ctx.get('min_length', 0)):,} characters"
    if kind == "enum":
        expected = str(ctx.get("expected", "")).replace("'", "")
        return f"must be one of: {expected}" if expected else "is not one of the allowed values"
    if kind in ("string_type", "bytes_type", "value_error", "string_unicode"):
        return "must be text"
    if kind.startswith("int") or kind.startswith("float"):
        return "must be a number"
    return "is not valid"


def validation_detail(errors: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """``[{"field": ..., "problem": ...}]`` for FastAPI's validation ``errors``; no value
    the client sent is ever included (the field names are the API's own)."""
    out: list[dict[str, str]] = []
    for error in errors:
        item = {"field": _field(error.get("loc", ())), "problem": _problem(error)}
        if item not in out:
            out.append(item)
    return out
