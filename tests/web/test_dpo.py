"""The DPO's screens: a subject access export as a zip, erasure after a confirmation page,
retention periods and a purge previewed before it runs, the name policy and the
installation's facts (never key material). Each audited under the signed-in person."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from consent import audit, crypto, enrolment, registry
from consent import name_policy as policies
from consent import retention as leavers
from consent.registry import Purpose
from consent.store import open_store
from tests.support.cli_publish import publish_like_the_cli
from tests.web.conftest import FIRST, LAST, sign_in
from web.accounts import Role
from web.permissions import ROLE_PERMISSIONS, Permission
from web.words import uk_date


def _enrol(data_dir: Path, pupil_id: str) -> None:
    with open_store(data_dir) as store:
        vec = np.random.default_rng(1).normal(size=128)
        enrolment.add_reference(store, pupil_id, vec, source_sha256="a" * 64, operator="t")


def test_a_subject_access_export_downloads_as_a_zip(client: TestClient, web_data: Path) -> None:
    csrf = sign_in(client, "dpo1")
    page = client.get("/export")
    assert f"{FIRST} {LAST}" in page.text  # the picker's options
    reply = client.post("/export", data={"csrf": csrf, "pupil": FIRST[:5], "transfer": "0"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(reply.content)).namelist()
    assert {"README.txt", "pupil.json", "consent-history.json", "biometrics.json"} <= set(names)
    pupil = zipfile.ZipFile(io.BytesIO(reply.content)).read("pupil.json").decode()
    assert FIRST in pupil and "P0001" in pupil
    with open_store(web_data) as store:
        entry = audit.entries(store, action="subject_access_export")[-1]
    assert entry.operator == "dpo1" and entry.details["pupil_id"] == "P0001"
    # Nothing of the export is left behind in the app's folder.
    assert not list((web_data / "office-app").glob(".export-*"))
    assert not list((web_data / "office-app").glob(".download-*"))


def test_the_export_copies_photos_published_from_the_command_line(
    client: TestClient, web_data: Path, tmp_path: Path
) -> None:
    # `photoconsent publish --out DIR` into a folder of its own, outside the app's work area.
    with open_store(web_data) as store:
        outputs = publish_like_the_cli(
            store, tmp_path / "card", tmp_path / "website-upload", pupil_id="P0001"
        )
    outputs[1].unlink()  # deleted from the PC since publishing
    csrf = sign_in(client, "dpo1")
    reply = client.post("/export", data={"csrf": csrf, "pupil": FIRST[:5], "transfer": "0"})
    assert reply.status_code == 200, reply.text
    archive = zipfile.ZipFile(io.BytesIO(reply.content))
    photos = [n for n in archive.namelist() if n.startswith("photos/")]
    assert [archive.read(n) for n in photos] == [outputs[0].read_bytes()]
    readme = archive.read("README.txt").decode()
    assert "copies of 1 of those 2 published photo(s)" in readme
    assert "moved or deleted since it was published cannot be copied" in readme
    listed = {i["output"]: i for i in json.loads(archive.read("published-photos.json"))}
    assert listed[outputs[1].name]["not_included_because"].endswith("deleted since publishing")


def test_a_transfer_export_holds_no_biometrics(client: TestClient, web_data: Path) -> None:
    csrf = sign_in(client, "dpo1")
    reply = client.post("/export", data={"csrf": csrf, "pupil": f"{FIRST} {LAST}", "transfer": "1"})
    names = zipfile.ZipFile(io.BytesIO(reply.content)).namelist()
    assert "biometrics.json" not in names and "pupil.json" in names
    with open_store(web_data) as store:
        assert audit.entries(store, action="transfer_export")[-1].operator == "dpo1"


def test_a_pick_that_fits_nobody_or_several_is_refused_in_plain_words(
    client: TestClient,
) -> None:
    csrf = sign_in(client, "dpo1")
    nobody = client.post("/export", data={"csrf": csrf, "pupil": "Zzyzx"})
    assert nobody.status_code == 400 and "problem" in nobody.text
    several = client.post("/export", data={"csrf": csrf, "pupil": "3B"})  # both pupils
    assert several.status_code == 400
    typed_id = client.post("/erase/check", data={"csrf": csrf, "pupil": "P0001"})
    assert typed_id.status_code == 400  # an ID is not a name: the picker refuses it


def test_erasure_asks_first_then_forgets(client: TestClient, web_data: Path) -> None:
    _enrol(web_data, "P0001")
    csrf = sign_in(client, "dpo1")
    check = client.post("/erase/check", data={"csrf": csrf, "pupil": FIRST})
    assert check.status_code == 200
    assert "What will be deleted" in check.text and "audit log" in check.text
    assert "Face references" in check.text and "1 held" in check.text
    with open_store(web_data) as store:
        assert not leavers.is_erased(store.conn, "P0001")  # nothing done yet
    unticked = client.post("/erase", data={"csrf": csrf, "pupil_id": "P0001"})
    assert unticked.status_code == 400
    done = client.post(
        "/erase",
        data={"csrf": csrf, "pupil_id": "P0001", "source": "letter 2 Dec", "confirm": "1"},
    )
    assert done.status_code == 200 and "erased" in done.text
    with open_store(web_data) as store:
        assert leavers.is_erased(store.conn, "P0001")
        assert enrolment.reference_counts(store.conn).get("P0001") is None
        entry = audit.entries(store, action="pupil_erase")[-1]
    assert entry.operator == "dpo1" and entry.details["source"] == "letter 2 Dec"
    assert FIRST not in client.get("/pupils").text
    assert FIRST not in client.get("/erase").text  # gone from the picker too


def _erase(client: TestClient, csrf: str) -> str:
    reply = client.post(
        "/erase",
        data={"csrf": csrf, "pupil_id": "P0001", "source": "letter 2 Dec", "confirm": "1"},
    )
    assert reply.status_code == 200, reply.text
    return reply.text


def test_erasure_says_the_office_takes_the_published_photos_down(
    client: TestClient, web_data: Path, tmp_path: Path
) -> None:
    with open_store(web_data) as store:
        publish_like_the_cli(store, tmp_path / "card", tmp_path / "web-out", pupil_id="P0001")
    csrf = sign_in(client, "dpo1")
    check = client.post("/erase/check", data={"csrf": csrf, "pupil": FIRST}).text
    assert "2 published photos show their face" in check
    assert "the school office takes each down" in check
    # The DPO's account has no takedown (web.permissions): no link it cannot follow.
    assert 'href="/takedown' not in check and "tell the office" in check
    done = _erase(client, csrf)
    assert "2 published photos showed their face" in done
    assert "now on the Takedown list under pupil P0001" in done
    assert 'href="/takedown' not in done and "tell the school office" in done
    # And so they are: the office sees them on its list, under the ID (the name is gone).
    client.cookies.clear()
    sign_in(client, "office1")
    listed = client.get("/takedown").text
    assert 'href="/takedown/P0001"' in listed and FIRST not in listed


def test_erasure_links_to_takedown_for_an_account_that_may_do_it(
    client: TestClient, web_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        ROLE_PERMISSIONS, Role.DPO, ROLE_PERMISSIONS[Role.DPO] | {Permission.TAKEDOWN}
    )
    with open_store(web_data) as store:
        publish_like_the_cli(store, tmp_path / "card", tmp_path / "out", 1, pupil_id="P0001")
    csrf = sign_in(client, "dpo1")
    check = client.post("/erase/check", data={"csrf": csrf, "pupil": FIRST}).text
    assert "1 published photo shows their face" in check and "it goes" in check
    assert 'href="/takedown/P0001"' in check
    assert 'href="/takedown/P0001">See the photos to take down' in _erase(client, csrf)


def test_erasure_with_nothing_published_says_nothing_is_to_take_down(
    client: TestClient,
) -> None:
    csrf = sign_in(client, "dpo1")
    check = client.post("/erase/check", data={"csrf": csrf, "pupil": FIRST}).text
    assert "No published photo showing their face is waiting to be taken down" in check
    assert "No published photo of them is waiting to be taken down" in _erase(client, csrf)


def test_retention_is_shown_changed_and_a_purge_previewed_then_run(
    client: TestClient, web_data: Path
) -> None:
    csrf = sign_in(client, "dpo1")
    page = client.get("/retention")
    assert "Face references" in page.text and "Nothing is due" in page.text
    changed = client.post("/retention/biometrics", data={"csrf": csrf, "days": "30"})
    assert changed.status_code == 200 and "30 day(s)" in changed.text
    with open_store(web_data) as store:
        assert leavers.retention_days(store.conn, "biometrics") == 30
        assert audit.entries(store, action="retention_set")[-1].operator == "dpo1"
    bad = client.post("/retention/biometrics", data={"csrf": csrf, "days": "soon"})
    assert bad.status_code == 400 and "whole number" in bad.text
    unknown = client.post("/retention/shoe_sizes", data={"csrf": csrf, "days": "1"})
    assert unknown.status_code == 400

    _enrol(web_data, "P0002")
    with open_store(web_data) as store:
        left = date.today() - timedelta(days=40)
        leavers.leave(store, "P0002", left, operator="office", today=left)
    preview = client.get("/retention")
    assert "P0002" in preview.text and "Purge now" in preview.text
    assert f"left {uk_date(left)}" in preview.text  # UK dates, not ISO
    with open_store(web_data) as store:
        assert enrolment.reference_counts(store.conn) == {"P0002": 1}  # a preview only
    ran = client.post("/purge", data={"csrf": csrf})
    assert "Purge done: 1 item(s) of 1 pupil(s)" in ran.text
    with open_store(web_data) as store:
        assert enrolment.reference_counts(store.conn) == {}
        assert audit.entries(store, action="purge")[-1].operator == "dpo1"
    assert "/retention#due" in client.get("/").text  # the dashboard links here


def test_settings_change_the_name_policy_and_never_show_a_key(
    client: TestClient, web_data: Path
) -> None:
    csrf = sign_in(client, "dpo1")
    page = client.get("/settings")
    assert str(web_data) in page.text and "Face recogniser" in page.text
    secret = crypto.key_path(web_data).read_bytes()
    for piece in (secret, secret.hex().encode(), secret.strip()):
        assert piece.decode("latin-1") not in page.text
    done = client.post("/settings/names", data={"csrf": csrf, "purpose": "press", "policy": "none"})
    assert done.status_code == 200
    refused = client.post(
        "/settings/names", data={"csrf": csrf, "purpose": "website", "policy": "full"}
    )
    assert refused.status_code == 400
    with open_store(web_data) as store:
        assert policies.name_policy(store.conn, Purpose.PRESS).value == "none"
        assert policies.name_policy(store.conn, Purpose.WEBSITE).value != "full"
    allowed = client.post(
        "/settings/names",
        data={"csrf": csrf, "purpose": "website", "policy": "full", "allow_full": "1"},
    )
    assert allowed.status_code == 200
    with open_store(web_data) as store:
        assert policies.name_policy(store.conn, Purpose.WEBSITE).value == "full"
        assert registry.get_pupil(store.conn, "P0001").first_name == FIRST
