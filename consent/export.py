"""Subject access export (UK GDPR Art. 15) and the transfer file for a receiving school.

`export_pupil` writes one new folder (mode 0700, files 0600: it holds the child's name)::

    README.txt              what is in the folder, in plain words
    pupil.json              ID, names, class, leaving date
    consent-history.json    every version of the consent record and what changed
    published-photos.json   every published photo the child's face was kept in
    photos/                 copies of those published (redacted) files, where found
    biometrics.json         whether face references are held, how many, since when, and
                            which recognisers' templates each has
    reference-faces/        the face crops kept of the child's reference photos

Only published outputs are copied, never originals: they are what the world could see,
with everyone else blurred. The reference face crops are the child's own face as the
school holds it, so they are included. The templates (numbers) are never exported, only
the fact that they are held.

``transfer=True`` makes the file for a receiving school: pupil and consent history only.
Biometric data is never transferred (a new school needs its own consent under the
Protection of Freedoms Act 2012), and the published-photo list stays with this school.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consent import audit, changes, enrolment, registry
from consent.errors import ExportExists, UnknownPupil
from consent.files import PRIVATE, create_exclusive
from consent.retention import CATEGORIES
from consent.store import Store


@dataclass(frozen=True)
class ExportResult:
    """The folder written, its files (relative names) and how many photos were copied
    out of how many published ones."""

    folder: Path
    files: list[str]
    photos_published: int
    photos_copied: int


def published_with(store: Store, pupil_id: str) -> list[dict[str, Any]]:
    """Every published photo ``pupil_id`` was recognised in, oldest first: ``face_shown``
    is True where their face was kept, False where it was recognised and blurred."""
    replaced = {
        int(e.details["replaced_seq"]): e.details.get("new_output")
        for e in audit.entries(store, action="takedown_republish")
    }
    found = []
    for e in audit.entries(store, action="publish"):
        d = e.details
        shown = pupil_id in d.get("pupils_kept", [])
        if d.get("status") != "published" or not (shown or pupil_id in d.get("pupils_blurred", [])):
            continue
        found.append(
            {
                "face_shown": shown,
                "output": d.get("output"),
                "output_sha256": d.get("output_sha256"),
                "event": d.get("event"),
                "purpose": d.get("purpose"),
                "publish_date": d.get("publish_date"),
                "destination": d.get("destination"),
                "published_at": e.at,
                "replaced_by": replaced.get(e.seq),
            }
        )
    return found


def _index_photos(folders: Iterable[Path]) -> dict[str, Path]:
    """``sha256 -> path`` of every file below ``folders``."""
    index: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                index.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    return index


def _write_private(path: Path, text: str) -> None:
    create_exclusive(path, text.encode("utf-8"), mode=PRIVATE)


def _write_json(path: Path, data: object) -> None:
    _write_private(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _biometrics(store: Store, pupil_id: str) -> dict[str, Any]:
    rows = store.conn.execute(
        "SELECT enrolled_at FROM face_references WHERE pupil_id = ? ORDER BY id", (pupil_id,)
    ).fetchall()
    infos = enrolment.pupil_references(store.conn, "", [pupil_id]).get(pupil_id)
    record = registry.current_consent(store.conn, pupil_id)
    held = {
        name: cat.count(store.conn, pupil_id)
        for name, cat in sorted(CATEGORIES.items())
        if name != "biometrics"
    }
    return {
        "biometric_consent": bool(record and record.biometric_consent),
        "face_encodings_held": len(rows),
        "enrolled_at": [r[0] for r in rows],
        "references": [
            {
                "enrolled_at": r.enrolled_at,
                "taken_on": r.taken_on,
                "face_crop_kept": r.has_crop,
                "templates_of": list(r.recognisers),
            }
            for r in (infos.references if infos else ())
        ],
        "what_an_encoding_is": (
            "Numbers (a template) computed from the face in a reference photo by a face "
            "recogniser, stored encrypted, used only to recognise the child in event photos "
            "so their face can be kept or blurred as the consent slip says. Of the reference "
            "photo only the face, with a margin, is kept (encrypted): it is included in "
            "reference-faces/. The numbers are not included here."
        ),
        "other_data_held": held,
    }


def _reference_faces(store: Store, pupil_id: str, folder: Path) -> int:
    """Write the pupil's reference face crops (PNG, 0600) into ``folder``; how many."""
    ids = [
        int(r[0])
        for r in store.conn.execute(
            "SELECT id FROM face_references WHERE pupil_id = ? AND crop IS NOT NULL ORDER BY id",
            (pupil_id,),
        )
    ]
    if not ids:
        return 0
    folder.mkdir(mode=0o700)
    for n, ref_id in enumerate(ids, 1):
        png = enrolment.reference_crop_png(store, pupil_id, ref_id)
        create_exclusive(folder / f"reference-{n}.png", png, mode=PRIVATE)
    return len(ids)


def _readme(pupil_id: str, transfer: bool, published: int, copied: int) -> str:
    if transfer:
        return (
            f"Transfer record for pupil {pupil_id}.\n\n"
            "pupil.json: the pupil's ID, name and class.\n"
            "consent-history.json: every version of the photo-consent record held by the "
            "sending school.\n\n"
            "Biometric data (face encodings) is never transferred. Consent given to the "
            "sending school does not carry over: ask the parents for a new consent slip.\n"
        )
    return (
        f"Subject access copy for pupil {pupil_id}.\n\n"
        "pupil.json: the pupil's ID, name and class as the school holds them.\n"
        "consent-history.json: every version of the photo-consent record, who recorded "
        "it, when and from which slip or letter.\n"
        f"published-photos.json: the {published} published photo(s) in which the child was "
        "recognised, with event, purpose, date, where published and whether their face was "
        "shown (face_shown) or blurred.\n"
        f"photos/: {copied} of those published photos (everyone else is blurred in them). "
        "Originals are not included.\n"
        "biometrics.json: whether face references of the child are held, since when, and "
        "which recognisers' templates (the fact, not the numbers).\n"
        "reference-faces/ (when any are held): the face crops kept of the child's reference "
        "photos.\n"
    )


def export_pupil(
    store: Store,
    pupil_id: str,
    dest: Path,
    *,
    operator: str,
    transfer: bool = False,
    photo_folders: Iterable[Path] = (),
) -> ExportResult:
    """Write the subject access folder (or the transfer folder) ``dest``; audited.

    ``photo_folders`` are searched for the published files (by sha256) to copy. Raises
    `UnknownPupil`, or `ExportExists` if ``dest`` exists.
    """
    pupil = registry.get_pupil(store.conn, pupil_id)
    row = store.conn.execute(
        "SELECT left_on, erased_at FROM pupils WHERE pupil_id = ?", (pupil_id,)
    ).fetchone()
    if row is None:
        raise UnknownPupil(pupil_id)
    dest = Path(dest)
    if dest.exists():
        raise ExportExists(f"{dest} already exists; give a new folder to export into.")
    versions = [changes.version_json(v) for v in changes.history(store.conn, pupil_id)]
    published = [] if transfer else published_with(store, pupil_id)
    index = _index_photos(photo_folders) if published else {}
    dest.mkdir(parents=True, mode=0o700)
    dest.chmod(0o700)
    files = ["README.txt", "pupil.json", "consent-history.json"]
    copied = 0
    try:
        _write_json(
            dest / "pupil.json",
            {
                "pupil_id": pupil.pupil_id,
                "first_name": pupil.first_name,
                "last_name": pupil.last_name,
                "preferred_first_name": pupil.preferred_first_name,
                "preferred_last_name": pupil.preferred_last_name,
                "other_names": pupil.other_names,
                "class": pupil.class_name,
                "left_on": row["left_on"],
                "erased_at": row["erased_at"],
            },
        )
        _write_json(dest / "consent-history.json", versions)
        if not transfer:
            photos = dest / "photos"
            photos.mkdir(mode=0o700)
            for item in published:
                source = index.get(str(item["output_sha256"]))
                item["included_as"] = None
                if source is not None:
                    target = photos / f"{item['output_sha256'][:12]}{source.suffix.lower()}"
                    if not target.exists():
                        # 0600 from the start: the copy shows the child's face.
                        create_exclusive(target, source.read_bytes(), mode=PRIVATE)
                        copied += 1
                    item["included_as"] = f"photos/{target.name}"
            _write_json(dest / "published-photos.json", published)
            _write_json(dest / "biometrics.json", _biometrics(store, pupil_id))
            files += ["published-photos.json", "biometrics.json", "photos/"]
            faces = _reference_faces(store, pupil_id, dest / "reference-faces")
            if faces:
                files.append("reference-faces/")
        _write_private(dest / "README.txt", _readme(pupil_id, transfer, len(published), copied))
        with store.transaction() as conn:
            audit.append(
                conn,
                store.key,
                action="transfer_export" if transfer else "subject_access_export",
                operator=operator,
                details={
                    "pupil_id": pupil_id,
                    "files": files,
                    "photos_published": len(published),
                    "photos_copied": copied,
                },
            )
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # no half-written folder of personal data
        raise
    return ExportResult(dest, files, len(published), copied)
