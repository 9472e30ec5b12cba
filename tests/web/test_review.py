"""The review screens over a hand-made batch (no face models): by pupil, the odd one out,
approve the rest, un-blur by typing letters of a name (never an ID), all audited under
the signed-in person."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consent import audit
from consent.store import open_store
from pipeline.matching import Reason
from publishing.review.batch import Verdict, load_batch, save_batch
from tests.support.consent_factories import RegistryCsv
from tests.support.pupil_batch import BATCH_ID, add_pupil_batch
from tests.web.conftest import sign_in


@pytest.fixture
def batch_client(client: TestClient, web_data: Path, tmp_path: Path, registry_csv: RegistryCsv):  # type: ignore[no-untyped-def]
    with open_store(web_data) as store:
        add_pupil_batch(store, tmp_path, registry_csv)
    return client


def _face(web_data: Path, face_id: str):  # type: ignore[no-untyped-def]
    with open_store(web_data) as store:
        return load_batch(store, BATCH_ID).face(face_id)


def test_the_by_pupil_page_groups_each_pupils_faces(batch_client: TestClient) -> None:
    sign_in(batch_client, "office1")
    page = batch_client.get(f"/review/{BATCH_ID}/pupils")
    assert page.status_code == 200
    assert "Zoe Adams (2A)" in page.text and "Amy Brown" in page.text
    zoe = page.text.split("Zoe Adams (2A)")[1].split("<section")[0]
    assert all(f in zoe for f in ("F0001", "F0002", "F0006")) and "F0005" not in zoe
    # The withheld photo's face is in no grid.
    assert "F0008" not in page.text


def test_reject_the_odd_one_out_then_approve_the_rest(
    batch_client: TestClient, web_data: Path
) -> None:
    csrf = sign_in(batch_client, "office1")
    # F0001 and F0002 are both proposed as Zoe in one photo: approving both is refused.
    page = batch_client.post(f"/review/{BATCH_ID}/pupils/P001/approve", data={"csrf": csrf})
    assert page.status_code == 400 and "Zoe Adams (2A)" in page.text
    assert _face(web_data, "F0001").verdict is None
    reply = batch_client.post(
        f"/review/{BATCH_ID}/reject",
        data={"csrf": csrf, "face_id": "F0002", "back": "pupils"},
        follow_redirects=False,
    )
    assert reply.headers["location"] == f"/review/{BATCH_ID}/pupils"
    batch_client.post(f"/review/{BATCH_ID}/pupils/P001/approve", data={"csrf": csrf})
    assert _face(web_data, "F0002").verdict is Verdict.REJECTED
    assert _face(web_data, "F0001").verdict is Verdict.APPROVED
    assert _face(web_data, "F0006").verdict is Verdict.APPROVED
    with open_store(web_data) as store:
        mine = [e for e in audit.entries(store) if e.action.startswith("review")]
    assert mine and {e.operator for e in mine} == {"office1"}


def test_unblur_by_typing_letters_of_a_name(batch_client: TestClient, web_data: Path) -> None:
    csrf = sign_in(batch_client, "office1")
    batch_client.post(
        f"/review/{BATCH_ID}/unblur", data={"csrf": csrf, "face_id": "F0004", "as_pupil": "amir"}
    )
    face = _face(web_data, "F0004")
    assert face.verdict is Verdict.UNBLURRED and face.as_pupil == "P003"


@pytest.mark.parametrize(
    ("typed", "words"),
    [("P003", "name begins with those letters"), ("zoe ada", "fit 2 pupils"), ("z", "at least")],
)
def test_unblur_refuses_an_id_or_letters_that_fit_several(
    batch_client: TestClient, web_data: Path, typed: str, words: str
) -> None:
    csrf = sign_in(batch_client, "office1")
    page = batch_client.post(
        f"/review/{BATCH_ID}/unblur", data={"csrf": csrf, "face_id": "F0004", "as_pupil": typed}
    )
    assert page.status_code == 400 and words in page.text
    assert _face(web_data, "F0004").verdict is None


def test_the_reference_thumbnail_needs_an_enrolled_crop(batch_client: TestClient) -> None:
    sign_in(batch_client, "office1")
    # Nobody in the hand-made register is enrolled: no crop to show, and nothing invented.
    assert batch_client.get(f"/review/{BATCH_ID}/reference/P001.jpg").status_code == 404


def test_a_face_close_up_is_a_jpeg(batch_client: TestClient) -> None:
    sign_in(batch_client, "office1")
    reply = batch_client.get(f"/review/{BATCH_ID}/face/F0001.jpg")
    assert reply.status_code == 200 and reply.content[:2] == b"\xff\xd8"


def test_the_review_list_shows_the_waiting_batch(batch_client: TestClient) -> None:
    sign_in(batch_client, "office1")
    page = batch_client.get("/review")
    assert "Sports day" in page.text and BATCH_ID in page.text


def _audited_unblurs(web_data: Path) -> list:  # type: ignore[type-arg]
    with open_store(web_data) as store:
        return audit.entries(store, action="review_unblurred")


@pytest.mark.parametrize("back", ["", "pupils"])
def test_several_ticked_faces_are_unblurred_as_one_pupil_in_one_submit(
    batch_client: TestClient, web_data: Path, back: str
) -> None:
    csrf = sign_in(batch_client, "office1")
    # F0004 (photo a) and F0007 (photo b): one child in two photos, named once.
    reply = batch_client.post(
        f"/review/{BATCH_ID}/unblur",
        data={"csrf": csrf, "face_id": ["F0004", "F0007"], "as_pupil": "amir br", "back": back},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    assert reply.headers["location"] == f"/review/{BATCH_ID}" + ("/pupils" if back else "")
    for face_id in ("F0004", "F0007"):
        face = _face(web_data, face_id)
        assert (face.verdict, face.as_pupil, face.reviewer) == (
            Verdict.UNBLURRED,
            "P003",
            "office1",
        )
    [entry] = _audited_unblurs(web_data)
    assert entry.details["faces"] == ["F0004", "F0007"] and entry.operator == "office1"


def test_two_ticked_faces_in_one_photo_are_refused_and_the_ticks_kept(
    batch_client: TestClient, web_data: Path
) -> None:
    csrf = sign_in(batch_client, "office1")
    # F0003 and F0004 are both in photo a: one child cannot be both.
    page = batch_client.post(
        f"/review/{BATCH_ID}/unblur",
        data={"csrf": csrf, "face_id": ["F0003", "F0004", "F0007"], "as_pupil": "amir br"},
    )
    assert page.status_code == 400
    assert "F0003 and F0004 are in the same photo" in page.text
    assert "Nothing was recorded" in page.text
    assert [_face(web_data, f).verdict for f in ("F0003", "F0004", "F0007")] == [None] * 3
    assert _audited_unblurs(web_data) == []
    # The page comes back as it was sent, to untick one and try again.
    for face_id in ("F0003", "F0004", "F0007"):
        assert f'value="{face_id}" form="unblur-ticked" checked' in page.text
    assert 'value="F0006" form="unblur-ticked" checked' not in page.text
    assert 'value="amir br"' in page.text


def test_a_ticked_face_beside_one_already_kept_as_the_pupil_is_refused(
    batch_client: TestClient, web_data: Path
) -> None:
    csrf = sign_in(batch_client, "office1")
    batch_client.post(
        f"/review/{BATCH_ID}/unblur", data={"csrf": csrf, "face_id": "F0004", "as_pupil": "amir"}
    )
    page = batch_client.post(
        f"/review/{BATCH_ID}/unblur",
        data={"csrf": csrf, "face_id": ["F0003", "F0007"], "as_pupil": "amir"},
    )
    assert page.status_code == 400
    assert "F0003 is in the same photo as F0004, which is already kept as that pupil" in page.text
    assert _face(web_data, "F0003").verdict is None and _face(web_data, "F0007").verdict is None


def test_unblur_with_nothing_ticked_says_so(batch_client: TestClient, web_data: Path) -> None:
    csrf = sign_in(batch_client, "office1")
    page = batch_client.post(f"/review/{BATCH_ID}/unblur", data={"csrf": csrf, "as_pupil": "amir"})
    assert page.status_code == 400 and "Tick at least one face" in page.text
    assert _audited_unblurs(web_data) == []


@pytest.mark.parametrize("path", ["", "/pupils"])
def test_every_tick_box_is_labelled_and_belongs_to_the_one_unblur_form(
    batch_client: TestClient, path: str
) -> None:
    sign_in(batch_client, "office1")
    page = batch_client.get(f"/review/{BATCH_ID}{path}").text
    boxes = re.findall(r'<input type="checkbox" id="([^"]+)" name="face_id" value="([^"]+)"'
                       r' form="([^"]+)"', page)  # fmt: skip
    assert boxes, "no tick boxes"
    assert {form for _, _, form in boxes} == {"unblur-ticked"}
    assert page.count('id="unblur-ticked"') == 1 and 'list="pupil-names"' in page
    for box_id, face_id, _ in boxes:
        assert f'<label class="inline" for="{box_id}">Un-blur {face_id} ' in page
    ticked = {face_id for _, face_id, _ in boxes}
    if path:  # the grids: every face proposed as a pupil, whatever its state
        assert {"F0001", "F0002", "F0003", "F0005", "F0006"} <= ticked
    else:  # face by face: the blurred faces of photos that can be published
        assert ticked == {"F0002", "F0003", "F0004", "F0006", "F0007"}
    assert "<script>" not in page and " onclick" not in page


def test_a_read_only_account_cannot_unblur(batch_client: TestClient, web_data: Path) -> None:
    csrf = sign_in(batch_client, "readonly1")
    reply = batch_client.post(
        f"/review/{BATCH_ID}/unblur",
        data={"csrf": csrf, "face_id": ["F0004", "F0007"], "as_pupil": "amir br"},
    )
    assert reply.status_code == 403 and _face(web_data, "F0004").verdict is None


def test_a_low_quality_face_is_marked_in_its_pupils_grid(
    batch_client: TestClient, web_data: Path
) -> None:
    with open_store(web_data) as store:
        batch = load_batch(store, BATCH_ID)
        batch.face("F0006").low_quality = Reason.TOO_BLURRED
        save_batch(store, batch)
    sign_in(batch_client, "office1")
    page = batch_client.get(f"/review/{BATCH_ID}/pupils").text
    zoe = page.split("Zoe Adams (2A)")[1].split("<section")[0]
    items = dict(re.findall(r'alt="Face (F\d+) in [^"]*"(.*?)</li>', zoe, re.S))
    assert {fid for fid, item in items.items() if 'class="mark"' in item} == {"F0006"}
    assert "low quality photo: the face is blurred" in items["F0006"]


@pytest.mark.parametrize(("page", "back"), [("", None), ("/pupils", "pupils")])
def test_the_unblur_form_comes_back_to_the_page_it_was_sent_from(
    batch_client: TestClient, page: str, back: str | None
) -> None:
    sign_in(batch_client, "office1")
    html = batch_client.get(f"/review/{BATCH_ID}{page}").text
    form = html.split('id="unblur-ticked"')[1].split("</form>")[0]
    found = re.findall(r'name="back" value="([^"]*)"', form)
    assert found == ([] if back is None else [back])
