"""The review page's "by pupil" view over real HTTP (no face models): grids beside the
injected reference photos, approve all, reject one, the close-up, the name picker, the
error page's Back link, and publishing from the page."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from consent import audit
from consent.store import Store
from publishing.review.batch import Verdict, load_batch
from publishing.review.by_pupil import jpeg_thumbnail
from publishing.review.contact_sheet import render_contact_sheet
from tests.support.consent_factories import RegistryCsv
from tests.support.pupil_batch import BATCH_ID, add_pupil_batch
from tests.support.review_server import ReviewClient, tokens

# A reference photo per pupil, told apart by colour: what the caller's provider returns.
REFERENCES = {
    "P001": jpeg_thumbnail(np.full((40, 30, 3), (200, 30, 30), np.uint8)),
    "P002": None,  # enrolled without a stored crop (an old data directory)
}


class FakeReferences:
    """The injected provider: records who was asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, pupil_id: str) -> bytes | None:
        self.asked.append(pupil_id)
        return REFERENCES.get(pupil_id)


@pytest.fixture
def store(store: Store, tmp_path: Path, registry_csv: RegistryCsv) -> Store:
    add_pupil_batch(store, tmp_path, registry_csv)
    return store


@pytest.fixture
def serve(store: Store, data_dir: Path) -> Callable[..., ReviewClient]:
    return lambda requests, **kw: ReviewClient(data_dir, BATCH_ID, requests, **kw)


def section(page: str, pupil_id: str) -> str:
    start = page.index(f'id="pupil-{pupil_id}"')
    end = page.find('<section class="pupil"', start)
    return page[start : end if end != -1 else len(page)]


def test_each_pupil_has_a_grid_beside_the_injected_reference(serve) -> None:
    references = FakeReferences()
    client = serve(1, reference_image=references)
    status, headers, page = client.get()
    client.done()
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert sorted(references.asked) == ["P001", "P002"]  # only pupils with a grid
    # Adams before Brown; in Adams' grid F0002 (left) before F0001, then photo b's F0006.
    assert page.index('id="pupil-P001"') < page.index('id="pupil-P002"')
    adams = section(page, "P001")
    assert re.findall(r'<figure class="face [a-z]+" id="(F\d+)"', adams) == [
        "F0002",
        "F0001",
        "F0006",
    ]
    [uri] = re.findall(r'<img class="reference" src="data:image/jpeg;base64,([^"]+)"', adams)
    assert base64.b64decode(uri) == REFERENCES["P001"]
    assert "Zoe Adams" in adams and "Class 2A" in adams
    assert "Approve all 3 waiting" in adams
    assert "F0002 and F0001 are in the same photo: only one can be this pupil" in adams
    brown = section(page, "P002")
    assert "no reference photo stored" in brown
    assert "Consent for website today: <b>no</b>" in brown  # P002 has no website consent
    # Faces nobody is proposed for open in a close-up, with the key.
    assert f'href="/face?t={client.key}&amp;id=F0004"' in page
    assert tokens(page) == {client.key}


def test_without_a_provider_no_reference_is_shown(serve) -> None:
    client = serve(1)
    _, _, page = client.get()
    client.done()
    assert 'class="reference' not in page and "Approve all 3 waiting" in page


def test_approve_all_from_the_page_is_audited_and_returns_to_the_pupil(serve, store) -> None:
    client = serve(3)
    status, _, _ = client.post(
        "/verdict", {"face_id": "F0002", "verdict": "rejected", "name": "", "back": "pupils"}
    )
    assert status == 303
    status, headers, _ = client.post("/approve-pupil", {"pupil_id": "P001", "back": "pupils"})
    assert status == 303
    assert headers["Location"] == f"/pupils?t={client.key}#pupil-P001"
    _, _, page = client.get()
    client.done()
    batch = load_batch(store, BATCH_ID)
    verdicts = {f: batch.face(f).verdict for f in ("F0001", "F0002", "F0006", "F0003")}
    assert verdicts == {
        "F0001": Verdict.APPROVED,
        "F0002": Verdict.REJECTED,
        "F0006": Verdict.APPROVED,
        "F0003": None,
    }
    [entry] = audit.entries(store, action="review_approved")
    assert entry.operator == "Ms Head" and entry.details["by_pupil"] == "P001"
    assert entry.details["faces"] == ["F0001", "F0006"]
    assert "Approve all" not in section(page, "P001")  # nothing of Adams' left waiting
    assert "rejected by Ms Head" in section(page, "P001")


def test_a_reject_returns_to_the_face_in_the_by_pupil_view(serve) -> None:
    client = serve(1)
    _, headers, _ = client.post(
        "/verdict", {"face_id": "F0002", "verdict": "rejected", "name": "", "back": "pupils"}
    )
    client.done()
    assert headers["Location"] == f"/pupils?t={client.key}#F0002"


def test_the_error_pages_back_link_keeps_the_key(serve, store) -> None:
    client = serve(3)
    status, _, page = client.post(
        "/verdict", {"face_id": "F0004", "verdict": "unblurred", "name": "am", "back": "pupils"}
    )
    assert status == 400 and "fit 2 pupils" in page  # Amy Brown and Amir Brownlow
    [back] = re.findall(r'<a href="([^"]+)">Back to the review page</a>', page)
    assert back == f"/pupils?t={client.key}"
    assert client.get(back)[0] == 200  # and it opens the page, not a 403
    # A request without the key gets a page without it.
    status, _, refused = client.get("/pupils?t=wrong")
    client.done()
    assert status == 403 and client.key not in refused
    assert load_batch(store, BATCH_ID).face("F0004").verdict is None


def test_unblur_through_the_name_picker(serve, store) -> None:
    client = serve(2)
    _, _, close_up = client.get(f"/face?t={client.key}&id=F0004")
    assert '<img class="close"' in close_up and 'list="pupil-names"' in close_up
    assert '<option value="Amir Brownlow (4C)">' in close_up
    assert 'name="as_pupil"' not in close_up  # never a typed pupil ID
    status, _, _ = client.post(
        "/verdict", {"face_id": "F0004", "verdict": "unblurred", "name": "Amir Brownlow (4C)"}
    )
    client.done()
    assert status == 303
    face = load_batch(store, BATCH_ID).face("F0004")
    assert (face.verdict, face.as_pupil, face.reviewer) == (Verdict.UNBLURRED, "P003", "Ms Head")


def test_the_close_up_is_large_and_needs_the_key(serve) -> None:
    client = serve(3)
    _, _, page = client.get(f"/face?t={client.key}&id=F0007")  # a 30 px face
    [uri] = re.findall(r'<img class="close" src="data:image/jpeg;base64,([^"]+)"', page)
    with Image.open(io.BytesIO(base64.b64decode(uri))) as image:
        assert max(image.size) == 480
    status, _, missing = client.get(f"/face?t={client.key}&id=F0404")
    assert status == 404 and f'href="/pupils?t={client.key}"' in missing
    assert client.get("/face?id=F0004")[0] == 403
    client.done()


def test_words_are_never_broken_mid_word(serve) -> None:
    client = serve(2)
    pages = [client.get()[2], client.get(f"/?t={client.key}")[2]]
    client.done()
    for page in pages:
        assert "break-all" not in page and "overflow-wrap:anywhere" not in page
        assert "word-break:normal;overflow-wrap:normal;hyphens:manual" in page


def test_publish_from_the_page(serve, store, tmp_path: Path) -> None:
    out = tmp_path / "to-upload"
    built: list[date] = []

    def options():
        batch = load_batch(store, BATCH_ID)
        built.append(date.today())
        return batch.options.publish_options(
            purpose=batch.purpose,
            out_dir=out,
            event=batch.event,
            operator="Ms Head",
            on=date.today(),
        )

    client = serve(6, publish_options=options)
    assert "Publish the batch" in client.get()[2]
    status, _, refused = client.post("/approve-pupil", {"pupil_id": "P001", "back": "pupils"})
    assert status == 400 and "F0001 and F0002 are in the same photo" in refused
    client.post("/verdict", {"face_id": "F0001", "verdict": "rejected", "back": "pupils"})
    client.post("/approve-pupil", {"pupil_id": "P001", "back": "pupils"})
    status, _, page = client.post("/publish", {})
    assert status == 200 and "2 photos published to" in page, page
    assert "faces kept clear" in page
    _, _, after = client.get()
    client.done()
    assert len(built) == 1  # built when the button was pressed
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    kept = {
        (Path(p["input"]).name, tuple(f["box"])): f["pupil_id"]
        for p in report["photos"]
        for f in p["faces"]
        if f["decision"] == "kept"
    }
    # Zoe Adams' uncertain faces, approved, are kept as her; her rejected keep is not;
    # Amy Brown's faces, not approved, are blurred.
    assert kept == {("a.jpg", (100, 60, 90, 110)): "P001", ("b.jpg", (40, 200, 90, 110)): "P001"}
    assert len([p for p in out.iterdir() if p.suffix == ".jpg"]) == 2
    assert load_batch(store, BATCH_ID).published_to == str(out)
    assert "Publish the batch" not in after and 'action="/verdict"' not in after


def test_publishing_needs_a_folder_given_when_the_page_was_started(serve, store) -> None:
    client = serve(2)
    page = client.get()[2]
    assert "Publish the batch" not in page and "--out FOLDER" in page
    status, _, refused = client.post("/publish", {})
    client.done()
    assert status == 400 and "started without a folder" in refused
    assert load_batch(store, BATCH_ID).published_to is None


def test_the_written_sheet_groups_by_pupil_without_references_or_forms(store) -> None:
    page = render_contact_sheet(store, load_batch(store, BATCH_ID))
    by_pupil = page[page.index('<section id="by-pupil">') : page.index('<section id="needs">')]
    assert by_pupil.index('id="pupil-P001"') < by_pupil.index('id="pupil-P002"')
    assert "<form" not in by_pupil and 'class="reference' not in by_pupil
    assert len(re.findall(r'<img class="crop"', by_pupil)) == 5
