"""The screens' behaviour without a browser: the import wizard's preview and problems, a
zip of reference photos that tries to climb out of its folder, the dashboard's counts,
a withdrawal, the DPO's accounts, UK dates and plain words."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consent import audit, registry
from consent.store import open_store
from pipeline.matching import Reason
from tests.web.conftest import FIRST, PASSWORD, sign_in
from web.dashboard import dashboard
from web.views.enrol import _unzip
from web.views.register import safe_file_name
from web.words import PLAIN_REASONS, plain_reason, uk_date, uk_datetime

SIMS = (
    "UPN,Legal Surname,Legal Forename,Preferred Forename,Reg Group,"
    "Photo Consent - Website,Photo Consent - Press,Photo Consent - Social Media,"
    "Photo Consent - Prospectus,Photo Consent - Internal Display,Consent Date\r\n"
    "N001,Newby,Nadia,,5C,Granted,Refused,Refused,Refused,Granted,01/09/2026\r\n"
)


def _preview(client: TestClient, csrf: str, body: str, fmt: str = "auto"):  # type: ignore[no-untyped-def]
    return client.post(
        "/import/preview",
        data={"csrf": csrf, "format": fmt},
        files={"export": ("export.csv", body.encode("utf-8"), "text/csv")},
    )


def test_the_wizard_previews_then_imports_only_on_confirm(
    client: TestClient, web_data: Path
) -> None:
    csrf = sign_in(client, "office1")
    page = _preview(client, csrf, SIMS)
    assert page.status_code == 200
    assert "read as <strong>sims</strong>" in page.text and "Nadia Newby" in page.text
    assert "add 1 pupil" in page.text
    with open_store(web_data) as store:
        assert "N001" not in {p.pupil_id for p in registry.list_pupils(store.conn)}
    done = client.post("/import/confirm", data={"csrf": csrf})
    assert "1 added" in done.text
    with open_store(web_data) as store:
        assert "N001" in {p.pupil_id for p in registry.list_pupils(store.conn)}
        entry = audit.entries(store, action="pupils_import")[-1:] or audit.entries(store)[-1:]
        assert entry[0].operator == "office1"
    # Nothing of the upload is left in the app's folder.
    assert not list((web_data / "office-app").glob(".import-*"))


def test_every_problem_is_shown_on_its_line(client: TestClient, web_data: Path) -> None:
    csrf = sign_in(client, "office1")
    bad = SIMS + "N002,Odd,Olive,,5C,Maybe,No,No,No,No,31/02/2026\r\n,,Nameless,,5C,,,,,,\r\n"
    page = _preview(client, csrf, bad)
    assert page.status_code == 422
    assert "nothing was imported" in page.text
    assert "<td>3</td>" in page.text and "<td>4</td>" in page.text
    with open_store(web_data) as store:
        assert "N002" not in {p.pupil_id for p in registry.list_pupils(store.conn)}


def test_confirm_without_a_preview_goes_back_to_the_start(client: TestClient) -> None:
    csrf = sign_in(client, "office1")
    reply = client.post("/import/confirm", data={"csrf": csrf}, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/import"


def test_the_wizard_asks_for_a_file(client: TestClient) -> None:
    csrf = sign_in(client, "office1")
    page = client.post("/import/preview", data={"csrf": csrf, "format": "auto"})
    assert page.status_code == 400 and "Choose the export file" in page.text


def test_a_zip_cannot_write_outside_its_folder(tmp_path: Path) -> None:
    archive = tmp_path / "refs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../../evil.jpg", b"x")
        z.writestr("/etc/cron.d/job.jpg", b"x")
        z.writestr("P0001.jpg", b"x")
        z.writestr("P0002/a.jpg", b"x")
        z.writestr("notes.txt", b"x")
        z.writestr("__MACOSX/._P0001.jpg", b"x")
    into = tmp_path / "into"
    into.mkdir()
    skipped = _unzip(archive, into)
    written = sorted(str(p.relative_to(into)) for p in into.rglob("*") if p.is_file())
    assert written == ["P0001.jpg", "P0002/a.jpg", "cron.d/job.jpg", "evil.jpg"]
    assert not (tmp_path / "evil.jpg").exists()
    assert skipped == ["notes.txt"]


@pytest.mark.parametrize(
    ("name", "safe"),
    [("../../x.csv", "x.csv"), ("C:\\Users\\a\\SIMS.csv", "SIMS.csv"), ("-v.jpg", "-v.jpg"),
     ("..", "f"), ("a\x00b.jpg", "ab.jpg")],
)  # fmt: skip
def test_uploaded_file_names_are_made_safe(name: str, safe: str) -> None:
    assert safe_file_name(name, "f") == safe


def test_the_dashboard_counts_consents_that_expire_soon(web_data: Path, tmp_path: Path) -> None:
    from tests.support.consent_factories import pupil_row, write_registry_csv

    soon = (date.today() + timedelta(days=10)).isoformat()
    later = (date.today() + timedelta(days=90)).isoformat()
    rows = [pupil_row("E1", consent_expiry=soon), pupil_row("E2", consent_expiry=later)]
    csv = tmp_path / "expiry.csv"
    write_registry_csv(csv, [])
    header = csv.read_text().strip() + ",consent_expiry\n"
    body = "".join(
        ",".join(r[c] for c in registry.COLUMNS) + f",{r['consent_expiry']}\n" for r in rows
    )
    csv.write_text(header + body)
    with open_store(web_data) as store:
        registry.import_pupils_csv(store, csv, operator="t")
        board = dashboard(store)
    assert [e.pupil_id for e in board.expiring] == ["E1"]
    assert board.review_batches == 0 and board.takedown_photos == 0


def test_a_withdrawal_is_recorded_under_the_signed_in_person(
    client: TestClient, web_data: Path
) -> None:
    csrf = sign_in(client, "office1")
    reply = client.post(
        "/pupils/P0001/withdraw",
        data={"csrf": csrf, "purpose_website": "1", "source": "letter from parent"},
        follow_redirects=False,
    )
    assert reply.status_code == 303 and reply.headers["location"] == "/takedown/P0001"
    with open_store(web_data) as store:
        record = registry.current_consent(store.conn, "P0001")
        assert record is not None and registry.Purpose.WEBSITE not in record.purposes
        assert audit.entries(store, action="consent_change")[-1].operator == "office1"
    page = client.get("/takedown/P0001")
    assert "has been replaced" in page.text  # nothing was ever published of them


def test_a_withdrawal_needs_its_source(client: TestClient) -> None:
    csrf = sign_in(client, "office1")
    reply = client.post("/pupils/P0001/withdraw", data={"csrf": csrf, "purpose_website": "1"})
    assert reply.status_code == 400 and "where the withdrawal came from" in reply.text


def test_the_dpo_makes_an_account_that_can_sign_in(client: TestClient, web_data: Path) -> None:
    csrf = sign_in(client, "dpo1")
    new = "another long passphrase"
    page = client.post(
        "/accounts",
        data={
            "csrf": csrf,
            "username": "M.Jones",
            "role": "medical",
            "password": new,
            "password_again": new,
        },  # fmt: skip
    )
    assert "Account m.jones (Medical lead) made" in page.text
    assert new not in page.text
    client.cookies.clear()
    sign_in(client, "m.jones", new)
    assert "Medical board" in client.get("/").text
    with open_store(web_data) as store:
        assert new not in str([e.details for e in audit.entries(store)])


def test_the_dpo_refuses_mismatched_or_short_passwords(client: TestClient) -> None:
    csrf = sign_in(client, "dpo1")
    base = {"csrf": csrf, "username": "x.y", "role": "office"}
    differ = client.post(
        "/accounts", data={**base, "password": "a" * 12, "password_again": "b" * 12}
    )
    assert differ.status_code == 400 and "not the same" in differ.text
    short = client.post("/accounts", data={**base, "password": "short", "password_again": "short"})
    assert short.status_code == 400 and "at least 10" in short.text


def test_a_switched_off_account_is_signed_out_and_cannot_sign_in(web_data: Path) -> None:
    from web.app import create_app
    from web.pages import AppSettings

    app = create_app(AppSettings(web_data))
    with TestClient(app) as dpo, TestClient(app) as office:
        sign_in(office, "office1")
        csrf = sign_in(dpo, "dpo1")
        dpo.post("/accounts/office1/switch", data={"csrf": csrf, "off": "1"})
        assert office.get("/", follow_redirects=False).status_code == 303
        page = office.get("/sign-in")
        from tests.web.conftest import csrf_of

        reply = office.post(
            "/sign-in",
            data={"csrf": csrf_of(page.text), "username": "office1", "password": PASSWORD},
        )
        assert reply.status_code == 401 and "switched off" in reply.text


def test_the_pupil_page_shows_consent_history(client: TestClient) -> None:
    sign_in(client, "office1")
    page = client.get("/pupils/P0001")
    assert FIRST in page.text and "1 September 2024" in page.text and "School website" in page.text


def test_uk_dates() -> None:
    assert uk_date(date(2026, 12, 1)) == "1 December 2026"
    assert uk_date("2026-03-09") == "9 March 2026"
    assert uk_date(None) == ""
    assert uk_datetime(datetime(2026, 12, 1, 14, 5)).startswith("1 December 2026, 14:05")


def test_every_face_reason_has_plain_words() -> None:
    assert set(PLAIN_REASONS) == {r.value for r in Reason}
    assert plain_reason(Reason.NO_MATCH.value) == "not recognised as a pupil with consent"


def _published_job(out: Path, published: bytes):  # type: ignore[no-untyped-def]
    """A finished job whose report says ``a.jpg`` in ``out`` was published as ``published``."""
    from web import jobs

    class Result:
        status = jobs.PhotoStatus.PUBLISHED
        output = "a.jpg"
        output_sha256 = hashlib.sha256(published).hexdigest()

    job = jobs.PublishJob.__new__(jobs.PublishJob)
    job.options = type("O", (), {"out_dir": out})()  # type: ignore[assignment]
    job.report = type("R", (), {"results": [Result()]})()  # type: ignore[assignment]
    return job


def test_the_upload_zip_never_holds_the_report(tmp_path: Path) -> None:
    from publishing.report import REPORT_NAME
    from web import jobs

    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(b"jpeg")
    (out / REPORT_NAME).write_text("{}")
    (out / "captions.csv").write_text("file,caption\n")
    dest = jobs.write_upload_zip(_published_job(out, b"jpeg"), tmp_path / "up.zip")
    assert sorted(zipfile.ZipFile(io.BytesIO(dest.read_bytes())).namelist()) == [
        "a.jpg",
        "captions.csv",
    ]


def test_the_upload_zip_is_not_left_behind_when_a_copy_has_changed(tmp_path: Path) -> None:
    from web import jobs

    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(b"edited since")
    with pytest.raises(jobs.UnsafeDownload, match="a.jpg is missing or has changed"):
        jobs.write_upload_zip(_published_job(out, b"jpeg"), tmp_path / "up.zip")
    assert not (tmp_path / "up.zip").exists()
