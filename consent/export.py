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
with everyone else blurred. Each is looked for where its ``publish`` audit entry says it
was written (the file, then the rest of its output folder, in case it was renamed), and
in any ``photo_folders`` given; a file is copied only if its sha256 is the one the entry
recorded, and no file an audit entry records as an input is ever read. Photos moved
elsewhere or deleted since publishing, and web-service uploads (never kept), cannot be
copied: published-photos.json still lists them, and says why each was not copied.

The reference face crops are the child's own face as the school holds it, so they are
included. The templates (numbers) are never exported, only the fact that they are held.

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
from consent.files import PRIVATE, create_exclusive, file_sha256
from consent.retention import CATEGORIES
from consent.store import Store


@dataclass(frozen=True)
class ExportResult:
    """The folder written, its files (relative names), how many published photos the
    child was recognised in, how many files were copied and how many of those photos
    were found (two entries of one file are one copy)."""

    folder: Path
    files: list[str]
    photos_published: int
    photos_copied: int
    photos_found: int = 0

    @property
    def photos_missing(self) -> int:
        """Published photos that could not be found to copy (moved, deleted, or uploaded
        through the web service, which keeps no copy)."""
        return self.photos_published - self.photos_found


# Why a listed photo is not in photos/, in the words published-photos.json uses.
NOT_FOUND = (
    "not found where it was published, nor in the folders searched: moved or deleted "
    "since publishing"
)
VIA_SERVICE = "uploaded through the web service, which keeps no copy"


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
                "via_service": bool(d.get("via_service")),
            }
        )
    return found


def _recorded_places(store: Store) -> tuple[list[Path], set[Path], dict[str, Path]]:
    """From every ``publish`` entry: the output folders (oldest first, each once), the
    input files of every ``publish`` and ``withhold`` entry (never to be read), and
    ``output sha256 -> recorded output path``. Web-service entries record none."""
    folders: dict[Path, None] = {}
    inputs: set[Path] = set()
    outputs: dict[str, Path] = {}
    for action in ("publish", "withhold"):
        for e in audit.entries(store, action=action):
            d = e.details
            if d.get("input_path"):
                inputs.add(_resolved(Path(str(d["input_path"]))))
            if action != "publish" or d.get("via_service"):
                continue
            if d.get("out_dir"):
                folders.setdefault(Path(str(d["out_dir"])), None)
            if d.get("output_path") and d.get("output_sha256"):
                outputs.setdefault(str(d["output_sha256"]), Path(str(d["output_path"])))
    return list(folders), inputs, outputs


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _bytes_with_sha(path: Path, sha: str) -> bytes | None:
    """The file's bytes if they still hash to ``sha`` (what is copied is what was
    published), else None (gone, unreadable, or changed since it was found)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha else None


def find_published(
    store: Store, wanted: Iterable[str], photo_folders: Iterable[Path] = ()
) -> dict[str, Path]:
    """``output sha256 -> a readable file with those bytes`` for the ``wanted`` hashes.

    Looks first at the path each ``publish`` entry recorded, then through the output
    folders the entries recorded and ``photo_folders`` (recursively), stopping once all
    are found. Folders that no longer exist or cannot be read are passed over; a folder
    holding a recorded input is not searched (it is a camera card or an originals
    folder, not an output), and a recorded input file is never read.
    """
    missing = {w for w in wanted if w}
    if not missing:
        return {}
    recorded_folders, inputs, recorded = _recorded_places(store)
    found: dict[str, Path] = {}
    for sha in sorted(missing):
        path = recorded.get(sha)
        if path is not None and _resolved(path) not in inputs and file_sha256(path) == sha:
            found[sha] = path
    missing -= set(found)
    # Each folder once, the recorded ones first; only they are checked for inputs (a
    # folder given is the caller's choice, but its recorded inputs are still skipped).
    folders: dict[Path, bool] = {_resolved(f): True for f in recorded_folders}
    for f in photo_folders:
        folders.setdefault(_resolved(Path(f)), False)
    for folder, was_recorded in folders.items():
        if not missing:
            break
        if was_recorded and any(i.is_relative_to(folder) for i in inputs):
            continue
        for path in _files_below(folder):
            if _resolved(path) in inputs:
                continue
            sha = file_sha256(path)
            if sha in missing:
                found[sha] = path
                missing.discard(sha)
                if not missing:
                    break
    return found


def _files_below(folder: Path) -> list[Path]:
    """Every regular file below ``folder``, sorted; [] if it is gone or unreadable."""
    try:
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    except OSError:
        return []


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


def _readme(pupil_id: str, transfer: bool, published: int, found: int) -> str:
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
        f"photos/: copies of {found} of those {published} published photo(s), found "
        "where they were published (everyone else is blurred in them). Originals are not "
        "included. A photo moved or deleted since it was published cannot be copied, nor "
        "one uploaded through the web service (it keeps no copy)"
        + (
            f": {published - found} could not be, and published-photos.json says why for "
            "each (not_included_because).\n"
            if found < published
            else ".\n"
        )
        + "biometrics.json: whether face references of the child are held, since when, and "
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

    The published files are looked for (by sha256) where the audit log says they were
    written and in ``photo_folders`` (see `find_published`). Raises `UnknownPupil`, or
    `ExportExists` if ``dest`` exists.
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
    index = find_published(store, (str(p["output_sha256"]) for p in published), photo_folders)
    dest.mkdir(parents=True, mode=0o700)
    dest.chmod(0o700)
    files = ["README.txt", "pupil.json", "consent-history.json"]
    copied = found = 0
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
                sha = str(item["output_sha256"])
                source = index.get(sha)
                data = None if source is None else _bytes_with_sha(source, sha)
                item["included_as"] = None
                item["not_included_because"] = None
                if source is None or data is None:
                    item["not_included_because"] = VIA_SERVICE if item["via_service"] else NOT_FOUND
                else:
                    found += 1
                    target = photos / f"{sha[:12]}{source.suffix.lower()}"
                    if not target.exists():
                        # 0600 from the start: the copy shows the child's face.
                        create_exclusive(target, data, mode=PRIVATE)
                        copied += 1
                    item["included_as"] = f"photos/{target.name}"
            _write_json(dest / "published-photos.json", published)
            _write_json(dest / "biometrics.json", _biometrics(store, pupil_id))
            files += ["published-photos.json", "biometrics.json", "photos/"]
            faces = _reference_faces(store, pupil_id, dest / "reference-faces")
            if faces:
                files.append("reference-faces/")
        _write_private(dest / "README.txt", _readme(pupil_id, transfer, len(published), found))
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
                    "photos_found": found,
                },
            )
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # no half-written folder of personal data
        raise
    return ExportResult(dest, files, len(published), copied, found)
