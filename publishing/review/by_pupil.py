"""Review by pupil: each pupil's faces from the whole batch together, approved at once.

Reviewing face by face, a big event is hundreds of decisions. By pupil it is one look per
child: every face the machine proposes as that pupil (kept by matching as them, or
*uncertain* with them as the candidate), side by side and beside their reference photo;
the reviewer rejects the odd one out and approves the rest with one click. Every verdict
is audited under the reviewer's name (`publishing.review.batch.save_verdicts`).

The reference photo is special-category data, kept encrypted by ``consent``; this module
never reads it. Whoever shows a grid passes a `ReferenceImage` (pupil ID -> JPEG bytes of
their reference crop, or None), so the caller decides where it comes from and that it is
only ever held in memory.
"""

from __future__ import annotations

import enum
import io
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image

from consent.errors import UnknownPupil
from consent.registry import Pupil, get_pupil
from consent.store import Store
from pipeline.matching import Reason
from publishing.review.batch import (
    ReviewBatch,
    ReviewError,
    ReviewFace,
    ReviewPhoto,
    Verdict,
    load_batch,
    record_verdict,
    save_verdicts,
)
from publishing.review.picker import pick_from_register

# Pupil ID -> JPEG bytes of their reference crop, or None when there is none to show.
ReferenceImage = Callable[[str], bytes | None]
REFERENCE_SIDE = 200
JPEG_QUALITY = 85


class FaceKind(enum.Enum):
    """Why a face is in a pupil's grid."""

    MATCHED = "matched"  # kept by matching as this pupil
    UNCERTAIN = "uncertain"  # plausibly this pupil, below the keep rule
    NAMED = "named"  # un-blurred by a reviewer as this pupil


# How a grid marks a face below the keep's quality gates (blurred or turned): matching
# never keeps such a face, only a reviewer can (pipeline.matching, review_low_quality).
LOW_QUALITY_MARK = "low quality photo"
LOW_QUALITY_WHY = {
    Reason.TOO_BLURRED: "low quality photo: the face is blurred",
    Reason.TURNED_AWAY: "low quality photo: the face is turned away",
}


@dataclass(frozen=True, eq=False)
class PupilFace:
    photo: ReviewPhoto
    face: ReviewFace
    kind: FaceKind

    @property
    def low_quality(self) -> bool:
        """Proposed although below the keep's quality gates (shown "low quality photo")."""
        return self.kind is FaceKind.UNCERTAIN and self.face.low_quality is not None

    @property
    def mark(self) -> str | None:
        """The plain words a grid shows under this face for its quality, or None."""
        if not self.low_quality or self.face.low_quality is None:
            return None
        return LOW_QUALITY_WHY.get(self.face.low_quality, LOW_QUALITY_MARK)

    @property
    def awaiting(self) -> bool:
        """Proposed by the machine and no verdict yet (published blurred as it stands)."""
        return self.kind is not FaceKind.NAMED and self.face.verdict is None


@dataclass(frozen=True, eq=False)
class PupilGroup:
    """One pupil's faces in a batch, by photo (in batch order) then position."""

    pupil_id: str
    pupil: Pupil | None  # None: not in the registry (any more)
    faces: tuple[PupilFace, ...]

    @property
    def name(self) -> str | None:
        if self.pupil is None:
            return None
        return f"{self.pupil.known_first_name} {self.pupil.known_last_name}".strip()

    @property
    def awaiting(self) -> list[PupilFace]:
        return [f for f in self.faces if f.awaiting]

    def same_photo(self) -> list[list[str]]:
        """Face IDs (not rejected) that share a photo, per photo: only one of each can be
        this pupil, so approving all of them is refused."""
        by_photo: dict[int, list[str]] = {}
        for f in self.faces:
            if f.face.verdict is not Verdict.REJECTED:
                by_photo.setdefault(id(f.photo), []).append(f.face.face_id)
        return [ids for ids in by_photo.values() if len(ids) > 1]

    def count(self, kind: FaceKind) -> int:
        return sum(1 for f in self.faces if f.kind is kind)

    def count_low_quality(self) -> int:
        """Faces in the grid marked "low quality photo"."""
        return sum(1 for f in self.faces if f.low_quality)


def batch_pupils(store: Store, batch: ReviewBatch) -> dict[str, Pupil]:
    """The registry entries of every pupil a face of ``batch`` is proposed or named as."""
    ids = {f.shown_as for _, f in batch.faces() if f.shown_as}
    found = {}
    for pupil_id in sorted(ids):
        try:
            found[pupil_id] = get_pupil(store.conn, pupil_id)
        except UnknownPupil:
            continue  # erased since the batch was made: shown by ID, still blurred unless kept
    return found


def group_by_pupil(
    batch: ReviewBatch, pupils: Mapping[str, Pupil] | None = None
) -> list[PupilGroup]:
    """Every pupil's faces in ``batch``, one `PupilGroup` per pupil.

    A face belongs to the pupil it would be published as if its verdict stands: the
    pupil a reviewer un-blurred it as, else the pupil matching kept it as, else (for an
    uncertain face) its candidate. Rejected faces stay in their pupil's grid, marked, so
    a rejection can be seen and changed. Faces of withheld photos and faces nobody is
    proposed for are in no group. Pupils are ordered by known-as name (``pupils``, from
    `batch_pupils`; without it, or for a pupil missing from it, by ID after the named
    ones), then ID; faces by photo in batch order, then left to right, top to bottom.
    """
    pupils = pupils or {}
    by_id: dict[str, list[tuple[int, PupilFace]]] = {}
    for index, photo in enumerate(batch.photos):
        if photo.withheld is not None:
            continue
        for face in photo.faces:
            pupil_id = face.shown_as
            if pupil_id is None:
                continue
            if face.verdict is Verdict.UNBLURRED:
                kind = FaceKind.NAMED
            elif face.reason is Reason.UNCERTAIN:
                kind = FaceKind.UNCERTAIN
            else:
                kind = FaceKind.MATCHED
            by_id.setdefault(pupil_id, []).append((index, PupilFace(photo, face, kind)))
    groups = []
    for pupil_id, faces in by_id.items():
        faces.sort(key=lambda pf: (pf[0], pf[1].face.box[0], pf[1].face.box[1], pf[1].face.face_id))
        groups.append(PupilGroup(pupil_id, pupils.get(pupil_id), tuple(f for _, f in faces)))

    def order(group: PupilGroup) -> tuple[bool, str, str, str]:
        p = group.pupil
        if p is None:
            return (True, "", "", group.pupil_id)
        return (False, p.known_last_name.casefold(), p.known_first_name.casefold(), group.pupil_id)

    return sorted(groups, key=order)


def pupil_group(batch: ReviewBatch, pupil_id: str) -> PupilGroup:
    """``pupil_id``'s group in ``batch``; `ReviewError` if no face of the batch is theirs."""
    for group in group_by_pupil(batch):
        if group.pupil_id == pupil_id:
            return group
    raise ReviewError(f"No face in review batch {batch.batch_id} is proposed as that pupil.")


def approve_pupil(
    store: Store,
    batch_id: str,
    pupil_id: str,
    *,
    reviewer: str,
    except_faces: Collection[str] = (),
) -> list[str]:
    """Approve every face of ``pupil_id``'s grid that awaits a verdict, except
    ``except_faces``; return the face IDs approved. One audit row, under ``reviewer``.

    Faces already rejected stay rejected and faces already approved are not approved
    again (change one with `record_verdict`); an approved uncertain face is kept as the
    pupil, if their consent allows the purpose on the day the batch is published.
    Raises `ReviewError` when an excepted face is not in the grid (a typo must not
    approve the face it meant to spare), when two faces of one photo would be kept as
    the pupil (reject the one that is not them first), or when nothing is left to approve.
    """
    batch = load_batch(store, batch_id)
    group = pupil_group(batch, pupil_id)
    ids = {f.face.face_id for f in group.faces}
    stray = sorted(set(except_faces) - ids)
    if stray:
        raise ReviewError(
            f"{', '.join(stray)} not in this pupil's faces; nothing was approved. "
            "Check the face IDs on the review page."
        )
    chosen = [f.face for f in group.awaiting if f.face.face_id not in except_faces]
    if not chosen:
        raise ReviewError("Nothing of this pupil's is waiting for approval.")
    save_verdicts(
        store,
        batch,
        chosen,
        Verdict.APPROVED,
        reviewer=reviewer,
        details={"by_pupil": pupil_id, "excepted": sorted(except_faces)},
    )
    return [f.face_id for f in chosen]


def reject_face(store: Store, batch_id: str, face_id: str, *, reviewer: str) -> ReviewBatch:
    """Reject one proposed face (the odd one out of a grid): it is published blurred."""
    return record_verdict(store, batch_id, [face_id], Verdict.REJECTED, reviewer=reviewer)


def unblur_as_named(
    store: Store, batch_id: str, face_ids: Iterable[str], name: str, *, reviewer: str
) -> tuple[ReviewBatch, Pupil]:
    """Un-blur faces (any number, from any photos of the batch) as the one pupil whose
    name begins with the letters ``name`` (see `publishing.review.picker`); one audit row
    for them all. A face ID given twice counts once.

    Refused, with nothing recorded, when no face is given, when the letters fit no pupil
    or several, or when two faces of one photo would be that pupil: two of the faces
    given, or one given and one already kept as them (approved or un-blurred). A child
    is in a photo once, so one of the two is someone else.
    """
    ids = list(dict.fromkeys(face_ids))
    if not ids:
        raise ReviewError("Tick at least one face to un-blur. Nothing was recorded.")
    pupil = pick_from_register(store, name)
    batch = load_batch(store, batch_id)
    for face_id in ids:
        batch.face(face_id)  # ReviewError for an ID not in the batch, before anything else
    wanted = set(ids)
    for photo in batch.photos:
        ticked = [f.face_id for f in photo.faces if f.face_id in wanted]
        if len(ticked) > 1:
            raise ReviewError(
                f"{', '.join(ticked[:-1])} and {ticked[-1]} are in the same photo, and a "
                "child is in a photo only once, so they cannot all be un-blurred as the same "
                "pupil. Untick the faces that are not them (un-blur those separately, as "
                "whoever they are), then un-blur again. Nothing was recorded."
            )
        if not ticked:
            continue
        kept = [
            f.face_id
            for f in photo.faces
            if f.face_id not in wanted
            and (
                (f.verdict is Verdict.UNBLURRED and f.as_pupil == pupil.pupil_id)
                or (f.verdict is Verdict.APPROVED and f.proposed_pupil == pupil.pupil_id)
            )
        ]
        if kept:
            raise ReviewError(
                f"{ticked[0]} is in the same photo as {kept[0]}, which is already kept as "
                "that pupil, and a child is in a photo only once. Blur the face that is not "
                "them first (or leave it unticked). Nothing was recorded."
            )
    batch = record_verdict(
        store,
        batch_id,
        ids,
        Verdict.UNBLURRED,
        reviewer=reviewer,
        as_pupil=pupil.pupil_id,
    )
    return batch, pupil


def jpeg_thumbnail(pixels: np.ndarray, side: int = REFERENCE_SIDE) -> bytes:
    """``pixels`` (RGB uint8, rows x columns x 3) as JPEG bytes at most ``side`` px on
    the long side: for a `ReferenceImage` provider, which holds them in memory only."""
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).convert("RGB")
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()
