"""What a batch needs to know of the data directory, read from it once when the batch
starts: the gallery of references, who may be kept for the purpose on the date, every
pupil on the register (a caption may name any of them) and the purpose's name policy.

Every job that decides faces or rewrites captions for a batch (``publish``, ``check``, a
review batch, each request of the web service) builds one `BatchContext` with
`load_context` and passes it down, so no photo of the batch reads any of it again and
every photo of a batch is judged on the same data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from consent import enrolment, registry
from consent.name_policy import NamePolicy, name_policy
from consent.registry import Purpose
from consent.siblings import siblings
from consent.store import Store
from pipeline.analysis import Gallery
from pipeline.errors import InvalidOptions
from pipeline.matching import FaceDecision
from publishing.captions.per_photo import PhotoCaption, photo_caption, register_pupils
from publishing.captions.rewrite import NamedPupil
from publishing.options import PublishOptions


@dataclass(frozen=True)
class BatchContext:
    """The data directory as one batch sees it, for ``purpose`` on ``on``.

    ``gallery`` is what matching uses (see `load_context` for what it holds without
    encodings); ``permitted`` maps *every* pupil whose consent allows the purpose on the
    date to the consent record that allows it, whatever the candidates or references;
    ``pupils`` is the whole register (leavers too) for captions; ``policy`` the purpose's
    name policy.
    """

    purpose: Purpose
    on: date
    candidates: frozenset[str] | None
    gallery: Gallery
    permitted: Mapping[str, int]
    pupils: tuple[NamedPupil, ...]
    policy: NamePolicy

    def caption(self, text: str | None, faces: Sequence[FaceDecision]) -> PhotoCaption | None:
        """``text`` rewritten for the purpose given one photo's face decisions (None when
        there is no caption); see `publishing.captions.per_photo.photo_caption`."""
        return photo_caption(
            text, faces, pupils=self.pupils, policy=self.policy, permitted=self.permitted
        )

    def require_for(self, options: PublishOptions) -> None:
        """Refuse to serve a job of another purpose, date or set of candidates: its
        consent would be judged on the wrong records."""
        if (self.purpose, self.on, self.candidates) != (
            options.purpose,
            options.on,
            options.candidates,
        ):
            raise InvalidOptions(
                f"The batch's data was read for {self.purpose.value} on {self.on}, not for "
                f"{options.purpose.value} on {options.on}; read it again for this job."
            )


def load_context(store: Store, options: PublishOptions, *, encodings: bool = True) -> BatchContext:
    """Read what a batch for ``options`` (purpose, date, candidates) needs, once.

    ``options.candidates`` restricts matching to the pupils expected in the photos (a
    class, a team): every pupil left out is one fewer stranger's look-alike to keep by
    mistake. The gallery holds the templates of ``options.matching.recogniser`` only
    (`publishing.enrolling.recogniser_name` says which one the data directory uses);
    pupils without one are not recognised, so blurred. With ``encodings=False`` no
    template is decrypted and the gallery's ``permitted`` lists every candidate whose
    consent allows the purpose (a reviewer, not a matcher, names who is who).
    """
    consented = registry.pupils_with_consent(store.conn, options.purpose, options.on)
    permitted = {p: rec.record_id for p, rec in consented.items()}
    candidates = options.candidates
    if encodings:
        recogniser = options.matching.recogniser
        refs = enrolment.load_gallery(store, candidates, recogniser=recogniser)
        gallery = Gallery(
            encodings=refs,
            permitted={p: r for p, r in permitted.items() if p in refs},
            siblings=siblings(store.conn),
            recogniser=recogniser,
        )
    else:
        wanted = permitted
        if candidates is not None:
            wanted = {p: r for p, r in wanted.items() if p in candidates}
        gallery = Gallery(encodings={}, permitted=wanted)
    return BatchContext(
        purpose=options.purpose,
        on=options.on,
        candidates=candidates,
        gallery=gallery,
        permitted=permitted,
        pupils=tuple(register_pupils(store.conn)),
        policy=name_policy(store.conn, options.purpose),
    )


def pupils_in_classes(store: Store, classes: Iterable[str]) -> frozenset[str]:
    """IDs of the pupils in any of ``classes`` (compared case-insensitively)."""
    wanted = {c.strip().casefold() for c in classes}
    return frozenset(
        p.pupil_id for p in registry.list_pupils(store.conn) if p.class_name.casefold() in wanted
    )
