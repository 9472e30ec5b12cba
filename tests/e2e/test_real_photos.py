"""Real photographs (``../shared/eval``, skipped when absent): enrol one photo of a person,
publish another photo of them among others, and check every face against ground truth.
Then try to undo the redaction with the project's own detector and recogniser.

The composed group photo gives exact ground truth: LFW portraits of known people pasted
on a grey board at known places, some enrolled with consent, one enrolled without, two
never enrolled. Keeping a face for the wrong person is never acceptable; blurring a
consented pupil (fail closed) is tolerated for at most one of three.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from consent import registry
from consent.registry import Purpose
from consent.store import init_data_dir, open_store
from pipeline.boxes import Box
from pipeline.detection import DetectionSettings, DetectionStage, Thoroughness
from pipeline.loading import load_image
from pipeline.matching import Decision, FaceDecision, Reason, encode_faces
from pipeline.recognisers import DEFAULT_RECOGNISER, match_settings
from pipeline.redaction import RedactionStyle, head_region
from publishing.enrolling import enrol_photos
from publishing.options import PublishOptions
from publishing.publish import publish
from publishing.report import PhotoStatus, PublishReport
from tests.support.consent_factories import pupil_row, write_registry_csv

pytestmark = [pytest.mark.slow, pytest.mark.eval]

ON = date(2026, 10, 1)
# dlib's own "same person" threshold (face_recognition's default tolerance): a redacted
# face must not come anywhere near it.
SAME_PERSON = 0.6
TILE, GAP = 250, 40  # LFW images are 250x250; the gap keeps every head region in its tile
# One detection pass is plenty to find the one big face of a ground-truth photo.
FAST = DetectionStage(DetectionSettings(thoroughness=Thoroughness.FAST))


@dataclass(frozen=True)
class Tile:
    person: str
    role: str  # "consented" | "no consent" | "not enrolled"
    pupil_id: str | None
    rect: Box


# Chosen from LFW people whose two photos dlib encodes within the default tolerance and
# whose photo #2 shows one face; photo #1 is enrolled, photo #2 goes into the group.
GROUP = [
    ("Hosni_Mubarak", "consented", "P101"),
    ("Leonardo_DiCaprio", "consented", "P102"),
    ("Condoleezza_Rice", "consented", "P103"),
    ("Yao_Ming", "no consent", "P104"),
    ("Nancy_Pelosi", "not enrolled", None),
    ("Hamid_Karzai", "not enrolled", None),
]
TILES = [
    Tile(
        person,
        role,
        pupil_id,
        Box(GAP + (i % 3) * (TILE + GAP), GAP + (i // 3) * (TILE + GAP), TILE, TILE),
    )
    for i, (person, role, pupil_id) in enumerate(GROUP)
]


def lfw_photo(eval_dir: Path, person: str, n: int) -> Path:
    return eval_dir / "lfw" / person / f"{person}_{n:04d}.jpg"


def tile_of(box: Box) -> Tile | None:
    cx, cy = box.center
    for tile in TILES:
        r = tile.rect
        if r.x <= cx < r.x2 and r.y <= cy < r.y2:
            return tile
    return None


def main_face(faces: list[FaceDecision], tile: Tile) -> FaceDecision:
    """The largest face whose centre lies in ``tile``."""
    inside = [f for f in faces if tile_of(f.box) == tile]
    assert inside, f"no face found in the tile of {tile.person}"
    return max(inside, key=lambda f: f.box.area)


def distance(a: np.ndarray | None, b: np.ndarray) -> float:
    return float("inf") if a is None else float(np.linalg.norm(a - b))


def enrolled_store(root: Path, eval_dir: Path, pupils: list[tuple[str, str, str]]) -> Path:
    """A data directory with ``(pupil_id, website, photo)`` pupils, each photo enrolled."""
    data_dir = root / "data"
    init_data_dir(data_dir)
    rows = [pupil_row(pid, website=website) for pid, website, _ in pupils]
    csv_file = write_registry_csv(root / "pupils.csv", rows)
    with open_store(data_dir) as store:
        registry.import_pupils_csv(store, csv_file, operator="office")
        # As `photoconsent enroll` does: the default recogniser, crop and quality kept.
        report = enrol_photos(
            store, [(pid, eval_dir / photo) for pid, _, photo in pupils], operator="office"
        )
        assert report.rejected == 0, [o.problem for o in report.outcomes]
    return data_dir


def publish_one(data_dir: Path, photo: Path, out: Path, style: RedactionStyle) -> PublishReport:
    options = PublishOptions(
        purpose=Purpose.WEBSITE,
        out_dir=out,
        event="group",
        operator="test",
        style=style,
        on=ON,
        matching=match_settings(DEFAULT_RECOGNISER),
    )
    with open_store(data_dir) as store:
        return publish(store, [photo], options)


# --- one enrolled person in another photo of a group ------------------------------------------


@dataclass(frozen=True)
class PairCase:
    enrol: str  # one single-face photo of the person
    group: str  # another photo, with the person and somebody else
    truth: tuple[str, ...]  # more photos of the person, to find them in ``group``
    scale: float = 1.0  # downscale ``group`` (faces stay large; detection gets faster)


PAIRS = {
    "obama (face_recognition)": PairCase(
        "face_recognition/examples/obama_small.jpg",
        "face_recognition/examples/two_people.jpg",
        ("face_recognition/examples/obama-480p.jpg", "face_recognition/examples/obama2.jpg"),
        scale=0.6,
    ),
    "p01 (deepface couple)": PairCase(
        "deepface/img5.jpg",
        "deepface/couple.jpg",
        ("deepface/img10.jpg", "deepface/img11.jpg"),
        scale=0.3,
    ),
}


def largest_face_encoding(path: Path, stage: DetectionStage) -> np.ndarray:
    pixels = load_image(path).pixels
    face = max(stage.detect(pixels), key=lambda d: d.box.area)
    (encoding,) = encode_faces(pixels, [face.box])
    assert encoding is not None
    return encoding


@pytest.mark.parametrize("case", PAIRS.values(), ids=PAIRS.keys())
def test_enrolled_person_is_kept_and_everyone_else_blurred(
    eval_dir: Path, tmp_path: Path, case: PairCase
) -> None:
    data_dir = enrolled_store(tmp_path, eval_dir, [("P001", "yes", case.enrol)])
    photo = tmp_path / "group.png"
    with Image.open(eval_dir / case.group) as im:
        size = (round(im.width * case.scale), round(im.height * case.scale))
        im.convert("RGB").resize(size).save(photo)

    report = publish_one(data_dir, photo, tmp_path / "out", RedactionStyle.BLUR)

    (result,) = report.results
    assert result.status is PhotoStatus.PUBLISHED, result.reason
    # Ground truth, independent of the enrolled photo: the face nearest other photos of
    # the person, and clearly so.
    truth = [largest_face_encoding(eval_dir / t, FAST) for t in case.truth]
    source = load_image(photo).pixels
    encodings = encode_faces(source, [f.box for f in result.faces])
    nearest = [min(distance(e, t) for t in truth) for e in encodings]
    person = int(np.argmin(nearest))
    assert nearest[person] < 0.5
    assert all(d > SAME_PERSON for i, d in enumerate(nearest) if i != person)

    decisions = [(f.decision, f.pupil_id) for f in result.faces]
    assert decisions[person] == (Decision.KEPT, "P001")
    assert len(result.faces) >= 2
    assert [d for i, d in enumerate(decisions) if i != person] == [(Decision.BLURRED, None)] * (
        len(decisions) - 1
    )


# --- the composed group photo -------------------------------------------------------------


@pytest.fixture(scope="module")
def group_photo(eval_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Photo #2 of every person in GROUP on a grey board, saved as a camera would (JPEG)."""
    width, height = 3 * TILE + 4 * GAP, 2 * TILE + 3 * GAP
    board = np.full((height, width, 3), 128, np.uint8)
    for tile in TILES:
        rows, cols = tile.rect.pixel_slices(width, height)
        board[rows, cols] = load_image(lfw_photo(eval_dir, tile.person, 2)).pixels
    path = tmp_path_factory.mktemp("group") / "group.jpg"
    Image.fromarray(board).save(path, "JPEG", quality=95)
    return path


@pytest.fixture(scope="module")
def group_data(eval_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Photo #1 of every enrolled person in GROUP enrolled; website consent as the role says."""
    pupils = [
        (
            t.pupil_id,
            "yes" if t.role == "consented" else "no",
            str(lfw_photo(eval_dir, t.person, 1).relative_to(eval_dir)),
        )
        for t in TILES
        if t.pupil_id is not None
    ]
    return enrolled_store(tmp_path_factory.mktemp("group-data"), eval_dir, pupils)


@pytest.fixture(scope="module")
def published_group(
    group_photo: Path, group_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[RedactionStyle], tuple[list[FaceDecision], Path]]:
    """``published_group(style)``: the group photo's face decisions and output file,
    published once per style and module."""
    done: dict[RedactionStyle, tuple[list[FaceDecision], Path]] = {}

    def get(style: RedactionStyle) -> tuple[list[FaceDecision], Path]:
        if style not in done:
            out = tmp_path_factory.mktemp(f"group-{style.value}")
            (result,) = publish_one(group_data, group_photo, out, style).results
            assert result.status is PhotoStatus.PUBLISHED, result.reason
            done[style] = (result.faces, Path(result.output or ""))
        return done[style]

    return get


@pytest.fixture(scope="module")
def group_faces(
    published_group: Callable[[RedactionStyle], tuple[list[FaceDecision], Path]],
) -> list[FaceDecision]:
    return published_group(RedactionStyle.BLUR)[0]


def test_no_face_is_kept_for_the_wrong_pupil_or_a_stranger(group_faces: list[FaceDecision]) -> None:
    for face in group_faces:
        if face.decision is Decision.KEPT:
            tile = tile_of(face.box)
            assert tile is not None, face
            assert tile.role == "consented", (tile.person, face)
            assert face.pupil_id == tile.pupil_id, (tile.person, face)


def test_most_consented_pupils_are_kept(group_faces: list[FaceDecision]) -> None:
    kept = {f.pupil_id for f in group_faces if f.decision is Decision.KEPT}
    consented = {t.pupil_id for t in TILES if t.role == "consented"}

    assert len(kept & consented) >= 2, kept


EXPECTED = {
    "consented": None,  # kept, or blurred if not recognised (fail closed): see the tests above
    "no consent": Reason.NO_CONSENT,
    "not enrolled": Reason.NO_MATCH,
}


@pytest.mark.parametrize("tile", TILES, ids=[f"{t.person} ({t.role})" for t in TILES])
def test_each_person_gets_the_decision_their_consent_allows(
    group_faces: list[FaceDecision], tile: Tile
) -> None:
    face = main_face(group_faces, tile)
    others = [f for f in group_faces if tile_of(f.box) == tile and f is not face]

    assert face.box.size >= 60, face  # every portrait is large enough to be judged
    assert all(f.decision is Decision.BLURRED for f in others)
    if tile.role == "consented":
        if face.decision is Decision.KEPT:
            assert (face.pupil_id, face.reason) == (tile.pupil_id, Reason.MATCHED_WITH_CONSENT)
        return
    assert face.decision is Decision.BLURRED
    assert face.reason is EXPECTED[tile.role]
    assert face.pupil_id == (tile.pupil_id if tile.role == "no consent" else None)


def test_kept_faces_stay_clear_and_blurred_heads_change(
    published_group: Callable[[RedactionStyle], tuple[list[FaceDecision], Path]],
    group_photo: Path,
) -> None:
    faces, output = published_group(RedactionStyle.BLUR)
    before = load_image(group_photo).pixels.astype(np.int16)
    after = load_image(output).pixels.astype(np.int16)

    for face in faces:
        if face.box.size < 60:
            continue  # a stray small detection; its blur is checked by the redaction tests
        rows, cols = face.box.pixel_slices(after.shape[1], after.shape[0])
        diff = float(np.abs(after[rows, cols] - before[rows, cols]).mean())
        if face.decision is Decision.KEPT:
            assert diff < 5, face
        else:
            assert diff > 10, face


# --- redaction cannot be undone by the project's own models ------------------------------------


@pytest.fixture(scope="module")
def original_encodings(
    group_photo: Path, group_faces: list[FaceDecision], eval_dir: Path
) -> dict[str, list[np.ndarray]]:
    """Per person: their face as the publish job saw it, and their other LFW photo."""
    pixels = load_image(group_photo).pixels
    found: dict[str, list[np.ndarray]] = {}
    for tile in TILES:
        face = main_face(group_faces, tile)
        (seen,) = encode_faces(pixels, [face.box])
        assert seen is not None
        other = largest_face_encoding(lfw_photo(eval_dir, tile.person, 1), FAST)
        found[tile.person] = [seen, other]
    return found


@pytest.mark.parametrize("style", list(RedactionStyle), ids=lambda s: s.value)
def test_redacted_faces_cannot_be_found_or_recognised(
    published_group: Callable[[RedactionStyle], tuple[list[FaceDecision], Path]],
    original_encodings: dict[str, list[np.ndarray]],
    style: RedactionStyle,
) -> None:
    faces, output = published_group(style)
    pixels = load_image(output).pixels
    blurred = [f for f in faces if f.decision is Decision.BLURRED]
    heads = [head_region(f.box) for f in blurred]
    redacted_tiles = {tile_of(f.box) for f in blurred if f.box.size >= 60} - {None}
    assert {t.person for t in redacted_tiles} >= {"Yao_Ming", "Nancy_Pelosi", "Hamid_Karzai"}

    found = DetectionStage().detect(pixels)

    # No confident detection left inside any redacted head.
    for det in found:
        cx, cy = det.box.center
        inside = [h for h in heads if h.x <= cx < h.x2 and h.y <= cy < h.y2]
        assert not (inside and det.score >= 0.5), det
    # Whatever the detector still finds in a redacted tile is nobody's face...
    in_tiles = [(d, tile_of(d.box)) for d in found if tile_of(d.box) in redacted_tiles]
    encodings = encode_faces(pixels, [d.box for d, _ in in_tiles])
    for (det, tile), enc in zip(in_tiles, encodings, strict=True):
        assert tile is not None
        for original in original_encodings[tile.person]:
            assert distance(enc, original) >= SAME_PERSON, (tile.person, det)
    # ...and neither is the redacted patch where the face was, encoded on purpose.
    for tile in redacted_tiles:
        face = main_face(faces, tile)
        (enc,) = encode_faces(pixels, [face.box])
        for original in original_encodings[tile.person]:
            assert distance(enc, original) >= SAME_PERSON, tile.person
