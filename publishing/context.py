"""What a batch needs to know of the data directory, read from it: the gallery of
references and who of them may be kept for the purpose on the date."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from consent import enrolment, registry
from consent.registry import Purpose
from consent.siblings import siblings
from consent.store import Store
from pipeline.analysis import Gallery


def load_gallery(
    store: Store,
    purpose: Purpose,
    on: date,
    candidates: frozenset[str] | None = None,
    *,
    encodings: bool = True,
) -> Gallery:
    """The enrolled pupils' references, and who of them may be kept for ``purpose``.

    ``candidates`` restricts matching to the pupils expected in the photos (a class, a
    team): every pupil left out is one fewer stranger's look-alike to keep by mistake.
    With ``encodings=False`` no template is decrypted and ``permitted`` lists every pupil
    whose consent allows the purpose (a reviewer, not a matcher, names who is who).
    """
    consented = registry.pupils_with_consent(store.conn, purpose, on)
    if not encodings:
        wanted = {p: rec.record_id for p, rec in consented.items()}
        if candidates is not None:
            wanted = {p: r for p, r in wanted.items() if p in candidates}
        return Gallery(encodings={}, permitted=wanted)
    refs = enrolment.load_gallery(store, candidates)
    permitted = {p: rec.record_id for p, rec in consented.items() if p in refs}
    return Gallery(encodings=refs, permitted=permitted, siblings=siblings(store.conn))


def pupils_in_classes(store: Store, classes: Iterable[str]) -> frozenset[str]:
    """IDs of the pupils in any of ``classes`` (compared case-insensitively)."""
    wanted = {c.strip().casefold() for c in classes}
    return frozenset(
        p.pupil_id for p in registry.list_pupils(store.conn) if p.class_name.casefold() in wanted
    )
