"""What every container walker raises where a file's structure stops adding up."""

from __future__ import annotations

# The two kinds of damage; `find_metadata` reports them under these names, and the loader
# refuses a photo with either.
TRUNCATED = "truncated"
MALFORMED = "malformed"


class Damaged(ValueError):
    """The container ends early (``TRUNCATED``) or does not add up (``MALFORMED``).

    ``detail`` says where, by offsets, markers and chunk types only: it never quotes text
    from the file, so it can go into logs, audit rows and problem lists as it is.
    """

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
