"""The review contact sheet: a hand-made batch over skimage's astronaut, no face models."""

from __future__ import annotations

import base64
import io
import json
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage import data

from consent.store import Store
from pipeline.boxes import Box
from pipeline.redaction import RedactionStyle, head_region
from publishing.review import images
from publishing.review.batch import (
    ReviewBatchOptions,
    ReviewError,
    ReviewPhoto,
    Verdict,
    load_batch,
    record_verdict,
    review_dir,
    save_batch,
)
from publishing.review.contact_sheet import ImageCache, render_contact_sheet, write_contact_sheet
from tests.support.consent_factories import RegistryCsv
from tests.support.review_batch import (
    BATCH_ID,
    KEPT_BOX,
    NEAR_BOX,
    ODD_NAME,
    SMALL_BOX,
    add_review_batch,
)


@pytest.fixture
def store(store: Store, tmp_path: Path, registry_csv: RegistryCsv) -> Store:
    return add_review_batch(store, tmp_path, registry_csv)


def render(store: Store, **kwargs: Any) -> str:
    return render_contact_sheet(store, load_batch(store, BATCH_ID), **kwargs)


def overview(page: str) -> np.ndarray:
    """The one overview image of the page, decoded."""
    (uri,) = re.findall(r'<img class="overview" src="data:image/jpeg;base64,([^"]+)"', page)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB"))


def inner(box: list[int], margin: int = 12) -> tuple[slice, slice]:
    """The inside of a box, clear of the outline and label drawn on it."""
    x, y, w, h = box
    return slice(y + margin, y + h - margin), slice(x + margin, x + w - margin)


def original(store: Store) -> np.ndarray:
    photo = load_batch(store, BATCH_ID).photos[0]
    return np.asarray(Image.open(photo.input).convert("RGB"))


def test_page_shows_the_batch_and_escapes_what_came_from_files(store: Store) -> None:
    page = render(store)
    assert page.startswith("<!DOCTYPE html>")
    assert "CONFIDENTIAL: contains pupils\u2019 faces and names; do not share" in page
    assert BATCH_ID in page and "Mr Lens" in page
    assert "Sports day &lt;2025&gt;" in page
    assert "Ann &lt;b&gt; O&#x27;Brien &amp; Co, class 3B" in page
    assert "Ann <b>" not in page
    assert "a&lt;b&gt;&amp;&quot;c&#x27;.jpg" in page and ODD_NAME not in page
    for face_id in ("F0001", "F0002", "F0003"):
        assert face_id in page
    assert "Distance 0.410 (tolerance 0.550)" in page
    assert "photoconsent review approve 20250601-093000-ab12 F0001" in page
    assert "Reference photos are shown only on the served review page" in page


def test_page_is_self_contained(store: Store) -> None:
    page = render(store, token="t0ken")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "<link" not in page.lower()
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/jpeg;base64,") for s in srcs)


def test_sections_come_in_order_and_near_faces_need_a_person(store: Store) -> None:
    page = render(store)
    titles = [
        "Needs a person",
        "Kept by matching or uncertain, awaiting approval",
        "Reviewed",
        "Photos as they would be published now",
    ]
    positions = [page.index(f"<h2>{t}") for t in titles]
    assert positions == sorted(positions)
    needs = page[positions[0] : positions[1]]
    assert 'id="F0002"' in needs and "Nearest pupil" in needs and "class 4C" in needs
    assert 'id="F0001"' in page[positions[1] : positions[2]]


def test_crops_only_of_faces_a_person_must_see(store: Store) -> None:
    page = render(store)
    crops = re.findall(r'<img class="crop" src="[^"]+" alt="Face (F\d+)"', page)
    # F0001 twice: on its card and in its pupil's grid.
    assert sorted(crops) == ["F0001", "F0001", "F0002"]


def test_preview_blurs_what_would_be_blurred_and_shows_pending_keeps(store: Store) -> None:
    page = render(store)
    shown, before = overview(page).astype(float), original(store).astype(float)
    assert shown.shape == before.shape
    for box in (NEAR_BOX, SMALL_BOX):
        head = head_region(Box(*box)).to_list()
        region = inner(head, 20) if box is NEAR_BOX else inner(box, 6)
        assert np.abs(shown[region] - before[region]).mean() > 8, box
    assert np.abs(shown[inner(KEPT_BOX)] - before[inner(KEPT_BOX)]).mean() < 4
    assert "pending" in page and "published blurred until someone approves" in page


@pytest.mark.parametrize(
    ("verdict", "clear"), [(Verdict.APPROVED, True), (Verdict.REJECTED, False)]
)
def test_preview_follows_the_verdict(store: Store, verdict: Verdict, clear: bool) -> None:
    record_verdict(store, BATCH_ID, ["F0001"], verdict, reviewer="Ms Head")
    page = render(store)
    diff = np.abs(overview(page).astype(float) - original(store).astype(float))
    assert bool(diff[inner(KEPT_BOX)].mean() < 4) is clear
    reviewed = page[page.index("<h2>Reviewed") : page.index("<h2>Photos")]
    assert 'id="F0001"' in reviewed and f"<b>{verdict.value}</b>, by Ms Head" in reviewed


def test_unblurred_face_is_shown_clear_with_the_named_pupil(store: Store) -> None:
    record_verdict(
        store, BATCH_ID, ["F0003"], Verdict.UNBLURRED, reviewer="Ms Head", as_pupil="P002"
    )
    page = render(store)
    diff = np.abs(overview(page).astype(float) - original(store).astype(float))
    assert diff[inner(SMALL_BOX, 6)].mean() < 6
    assert "as <b>P002</b> FirstP002 LastP002, class 4C" in page
    assert 'alt="Face F0003"' in page


def test_changed_photo_shows_a_warning_instead(store: Store) -> None:
    photo = Path(load_batch(store, BATCH_ID).photos[0].input)
    Image.fromarray(data.astronaut()[::-1]).save(photo, "JPEG")
    page = render(store)
    assert "changed since it was analysed" in page
    assert 'class="overview"' not in page and 'class="crop"' not in page


def test_missing_photo_shows_a_warning(store: Store) -> None:
    Path(load_batch(store, BATCH_ID).photos[0].input).unlink()
    assert "cannot be read now" in render(store)


def test_withheld_photo_is_listed_with_its_reason(store: Store, tmp_path: Path) -> None:
    batch = load_batch(store, BATCH_ID)
    batch.photos.append(ReviewPhoto(str(tmp_path / "x.heic"), None, [], "HEIC <unsupported>"))
    page = render_contact_sheet(store, batch)
    withheld = page[page.index("<h2>Withheld photos") :]
    assert "x.heic" in withheld and "HEIC &lt;unsupported&gt;" in withheld


def test_unknown_pupil_is_said_so(store: Store) -> None:
    batch = load_batch(store, BATCH_ID)
    batch.photos[0].faces[0].pupil_id = "P404"
    assert "<b>P404</b>, <em>not in the registry</em>" in render_contact_sheet(store, batch)


def test_forms_only_with_a_token(store: Store) -> None:
    assert "<form" not in render(store)
    page = render(store, token="s3cret-token", reviewer="Ms Head")
    forms = re.findall(r"<form [^>]*>.*?</form>", page)
    assert forms and all('action="/verdict"' in f and 'method="post"' in f for f in forms)
    assert all('name="token" value="s3cret-token"' in f for f in forms)
    assert not any("reviewer" in f for f in forms)
    verdicts = sorted(
        re.findall(
            r'name="face_id" value="(F\d+)"><input type="hidden" '
            r'name="verdict" value="(\w+)"',
            page,
        )
    )
    assert verdicts == [
        ("F0001", "approved"),
        ("F0001", "rejected"),
        ("F0001", "unblurred"),
        ("F0002", "unblurred"),
        ("F0003", "unblurred"),
    ]
    assert "recorded as <b>Ms Head</b>" in page


def test_published_batch_has_no_buttons(store: Store) -> None:
    batch = load_batch(store, BATCH_ID)
    batch.published_to = "/srv/out"
    page = render_contact_sheet(store, batch, token="s3cret-token")
    assert "<form" not in page and "can no longer change" in page


def test_write_puts_a_private_file_in_the_data_dir(store: Store) -> None:
    batch = load_batch(store, BATCH_ID)
    path = write_contact_sheet(store, batch)
    assert path == review_dir(store) / f"{BATCH_ID}.html"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8") == render_contact_sheet(store, batch)
    path.chmod(0o644)
    assert stat.S_IMODE(write_contact_sheet(store, batch).stat().st_mode) == 0o600


def test_cache_renders_a_photo_again_only_when_it_changes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = images.render_photo
    monkeypatch.setattr(images, "render_photo", lambda p, s: calls.append(p.input) or real(p, s))
    cache = ImageCache()
    first = render(store, images=cache)
    assert render(store, images=cache) == first and len(calls) == 1
    record_verdict(store, BATCH_ID, ["F0001"], Verdict.REJECTED, reviewer="Ms Head")
    assert not np.array_equal(overview(render(store, images=cache)), overview(first))
    assert len(calls) == 2


def test_a_saved_batch_loads_back_equal_with_its_enums(store: Store) -> None:
    batch = load_batch(store, BATCH_ID)
    batch.photos[0].faces[0].verdict = Verdict.APPROVED
    save_batch(store, batch)

    again = load_batch(store, BATCH_ID)
    assert again == batch
    assert again.options == ReviewBatchOptions(tolerance=0.55, style=RedactionStyle.BLUR)
    raw = json.loads((review_dir(store) / f"{BATCH_ID}.json").read_text(encoding="utf-8"))
    assert raw["options"]["format"] == "JPEG" and raw["purpose"] == "website"
    assert raw["photos"][0]["faces"][0]["verdict"] == "approved"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: raw["options"].pop("style"), "is damaged"),
        (lambda raw: raw["photos"][0]["faces"][0].update(decision="maybe"), "is damaged"),
        (lambda raw: raw["photos"][0]["faces"][0].update(verdict="maybe"), "Unknown verdict"),
    ],
)
def test_a_damaged_batch_file_is_refused_in_plain_words(
    store: Store, damage: Any, message: str
) -> None:
    path = review_dir(store) / f"{BATCH_ID}.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    damage(raw)
    path.write_text(json.dumps(raw), encoding="utf-8")

    with pytest.raises(ReviewError, match=message):
        load_batch(store, BATCH_ID)
