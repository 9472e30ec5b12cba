"""End to end in a real browser (Debian's Chromium through Playwright): sign in, import a
SIMS-shaped export through the wizard, enrol, publish a folder and wait for progress,
download the zip and check it, withdraw a consent and republish, make a medical board and
check the PDF. Every screen is screenshotted into tmp_path/screens and checked with axe-core
(no serious or critical violations)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from consent import audit
from consent.medical.records_csv import import_medical_csv
from consent.store import open_store
from tests.support.environment import require_tool
from tests.web.browser import launch, live_app, serious_violations
from tests.web.conftest import PASSWORD, make_accounts
from web.pages import AppSettings

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_images"
# A SIMS-shaped export (its own headers, UK dates, Granted/Refused) of the sample pupils.
SIMS = [
    "UPN,Legal Surname,Legal Forename,Preferred Forename,Reg Group,Year,Date of Birth,"
    "Photo Consent - Website,Photo Consent - Press,Photo Consent - Social Media,"
    "Photo Consent - Prospectus,Photo Consent - Internal Display,Biometric Consent,"
    "Consent Date",
    "P001,Example,Alexander,Alex,3B,Year 3,14/03/2018,Granted,Refused,Refused,Granted,"
    "Granted,Granted,01/09/2026",
    "P002,Sample,Sam,,3B,Year 3,02/11/2017,Refused,Refused,Refused,Refused,Granted,"
    "Refused,01/09/2026",
    "P003,Placeholder,Jo,,4A,Year 4,20/05/2016,Granted,Granted,Granted,Granted,Granted,"
    "Refused,03/09/2026",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_tool("chromium", "chromium")


@pytest.fixture
def app_url(data_dir: Path, tmp_path: Path) -> Iterator[str]:
    make_accounts(data_dir)
    with live_app(AppSettings(data_dir, workers=1)) as url:
        yield url


@pytest.fixture
def page(chromium: str, app_url: str, tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p, chromium)
        context = browser.new_context(accept_downloads=True, base_url=app_url)
        tab = context.new_page()
        tab.set_default_timeout(60_000)
        yield tab
        browser.close()


class Screens:
    """Screenshots of each screen (tmp_path/screens/NN-name.png) and axe-core on each."""

    def __init__(self, page: Any, folder: Path) -> None:
        self.page, self.folder, self.n = page, folder, 0
        folder.mkdir()

    def __call__(self, name: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        bad = serious_violations(self.page)
        assert not bad, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in bad]
        return path


def sign_in(page: Any, username: str, shot: Screens | None = None) -> None:
    page.goto("/")
    assert "/sign-in" in page.url
    if shot:
        shot("sign-in")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="What needs doing").wait_for()


@pytest.mark.slow
def test_the_office_does_the_whole_job_in_the_browser(
    page: Any, data_dir: Path, tmp_path: Path
) -> None:
    shot = Screens(page, tmp_path / "screens")
    sign_in(page, "office1", shot)
    shot("dashboard")

    # Import a SIMS export through the wizard: file, preset, preview, confirm.
    export = tmp_path / "SIMS pupils.csv"
    export.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(SIMS).encode("utf-8") + b"\r\n")
    page.get_by_role("link", name="Import register").click()
    shot("import-start")
    page.get_by_label("Export file (.csv)").set_input_files(str(export))
    page.get_by_label("SIMS").check()
    page.get_by_role("button", name="Check the file").click()
    page.get_by_text("read as sims").wait_for()
    assert "Alex Example" in page.content()
    shot("import-preview")
    page.get_by_role("button", name="Import 3 pupils").click()
    page.get_by_text("3 added, 0 updated, 0 unchanged").wait_for()
    shot("import-done")

    page.goto("/pupils?q=alex")
    assert page.locator("tbody tr").count() == 1
    shot("pupils")

    # Enrol P001's reference photo; P002 has no biometric consent and is refused.
    page.get_by_role("link", name="Enrol photos").click()
    shot("enrol")
    page.get_by_label("Pupil", exact=True).select_option("P001")
    page.get_by_label("Their photos").set_input_files(str(SAMPLES / "references" / "P001.jpg"))
    page.get_by_role("button", name="Enrol").click()
    page.get_by_text("1 of 1 photo accepted").wait_for()
    assert page.locator("img[alt*='faces found boxed']").count() == 1
    shot("enrol-done")

    # Publish the sample event folder for the website and wait for the progress.
    page.get_by_role("link", name="Publish", exact=True).click()
    shot("publish")
    page.get_by_label("Or the folder they are in on this computer").fill(str(SAMPLES / "event"))
    page.get_by_label("What they are for").select_option("website")
    page.get_by_label("Event").fill("Sports day")
    page.get_by_label("Where they will go (optional)").fill("school website")
    page.get_by_role("button", name="Publish").click()
    page.get_by_text("2 published, 0 withheld").wait_for(timeout=300_000)
    page.locator("img[alt^='After']").first.wait_for()
    # P001 (enrolled, website consent) is kept with the data directory's recogniser.
    assert "1 face kept, 1 blurred" in page.content()
    shot("publish-results")
    with page.expect_download() as caught:
        page.get_by_role("link", name="Download for upload (zip)").click()
    data = Path(caught.value.path()).read_bytes()
    upload = zipfile.ZipFile(io.BytesIO(data))
    # The photos and their rewritten captions (the samples carry captions); never report.json.
    assert sorted(upload.namelist()) == [
        "captions.csv",
        "sports-day-0001.jpg",
        "sports-day-0002.jpg",
    ]
    captions = upload.read("captions.csv").decode("utf-8-sig")
    assert "sports-day-0001.jpg" in captions and str(SAMPLES) not in captions

    # A parent withdraws website consent: the photos that kept P001 are listed, republished.
    page.goto("/pupils/P001")
    shot("pupil")
    page.get_by_text("Record a withdrawal of consent").click()
    page.get_by_label("School website").check()
    page.get_by_label("Where the withdrawal came from").fill("letter from parent")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Withdraw consent").click()
    page.get_by_role("heading", name="Take down: P001").wait_for()
    assert page.locator("img[alt^='The published photo']").count() >= 1
    shot("takedown")
    page.get_by_role("button", name="Republish replacements with the pupil blurred").click()
    page.get_by_role("heading", name="Republished").wait_for(timeout=300_000)
    assert "replaced by" in page.content()
    shot("takedown-done")
    with open_store(data_dir) as store:
        entries = audit.entries(store)
    assert {"publish", "takedown_republish", "consent_change"} <= {e.action for e in entries}
    # Every action is the signed-in person's, never the OS user's.
    mine = [e for e in entries if e.action in ("publish", "takedown_republish", "reference_add")]
    assert mine and {e.operator for e in mine} == {"office1"}


@pytest.mark.slow
def test_the_medical_lead_prints_a_board(page: Any, data_dir: Path, tmp_path: Path) -> None:
    from consent.registry import import_pupils_csv

    with open_store(data_dir) as store:
        import_pupils_csv(store, SAMPLES / "pupils.csv", operator="test-setup")
        import_medical_csv(store, SAMPLES / "medical.csv", operator="test-setup")
    shot = Screens(page, tmp_path / "screens")
    sign_in(page, "medical1")
    page.get_by_role("link", name="Medical board", exact=True).click()
    shot("board")
    page.get_by_label("Room").select_option("staff-room")
    page.get_by_label("Page").select_option("landscape")
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("CONFIDENTIAL").first.wait_for()
    page.go_back()
    page.get_by_role("button", name="Make the PDF").click()
    page.get_by_text("Board for the staff room made").wait_for()
    shot("board-made")
    with page.expect_download() as caught:
        page.get_by_role("link", name="Download the PDF").click()
    pdf = PdfReader(caught.value.path())
    text = " ".join(p.extract_text() for p in pdf.pages)
    assert "Anaphylaxis" in text
    assert pdf.pages[0].mediabox.width > pdf.pages[0].mediabox.height  # landscape
    page.goto("/board")
    assert "Current" in page.content()
    shot("board-status")


@pytest.mark.parametrize("username", ["dpo1", "readonly1"])
def test_other_roles_screens_are_accessible(page: Any, tmp_path: Path, username: str) -> None:
    shot = Screens(page, tmp_path / "screens")
    sign_in(page, username)
    shot("dashboard")
    page.goto("/pupils")
    shot("pupils")
    if username == "dpo1":
        page.goto("/accounts")
        shot("accounts")
        page.goto("/audit")
        page.get_by_text("The audit log checks out").wait_for()
        shot("audit")


def test_every_control_is_reachable_by_keyboard(page: Any) -> None:
    page.goto("/sign-in")
    page.keyboard.press("Tab")  # the skip link first
    focused = []
    for _ in range(6):
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent")
        )
    assert "username" in focused and "password" in focused and "Sign in" in focused


@pytest.mark.slow
def test_the_office_reviews_a_batch_then_publishes_it(
    page: Any, data_dir: Path, tmp_path: Path
) -> None:
    from consent.registry import import_pupils_csv
    from publishing.enrolling import enrol_photos

    with open_store(data_dir) as store:
        import_pupils_csv(store, SAMPLES / "pupils.csv", operator="test-setup")
        enrol_photos(store, [("P001", SAMPLES / "references" / "P001.jpg")], operator="test-setup")
    shot = Screens(page, tmp_path / "screens")
    sign_in(page, "office1")
    page.get_by_role("link", name="Publish", exact=True).click()
    page.get_by_label("Or the folder they are in on this computer").fill(str(SAMPLES / "event"))
    page.get_by_label("Event").fill("Harvest festival")
    page.get_by_label("Let me check the faces before anything is published").check()
    page.get_by_role("button", name="Publish").click()
    page.get_by_role("heading", name="Review: Harvest festival").wait_for(timeout=300_000)
    assert "1 recognised face waiting for your approval" in page.content()
    assert "recognised as Alex Example" in page.content()
    page.locator("img[alt^='Close-up']").first.wait_for()
    shot("review")
    # A blurred face's un-blur is a name picker: the datalist lists names, never bare IDs.
    assert page.locator("datalist#pupil-names option").count() >= 1
    # Review by pupil: Alex's faces beside Alex's reference photo, approved in one click.
    page.get_by_role("link", name="Review by pupil").click()
    page.get_by_role("heading", name="Alex Example (3B)").wait_for()
    page.locator("img[alt^='Reference photo of Alex Example']").wait_for()
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)"), (
        "a reference or face image did not load"
    )
    shot("review-by-pupil")
    page.get_by_role("button", name="Approve 1 face of Alex Example").click()
    page.get_by_text("Nothing of theirs is waiting").wait_for()
    page.get_by_role("link", name="Every photo, face by face").click()
    page.get_by_text("0 recognised faces waiting").wait_for()
    shot("review-approved")
    page.get_by_role("button", name="Publish as reviewed").click()
    page.get_by_text("2 published, 0 withheld").wait_for(timeout=300_000)
    assert "1 face kept, 1 blurred" in page.content()
    with open_store(data_dir) as store:
        verdicts = [e for e in audit.entries(store) if e.action.startswith("review")]
    assert verdicts and {e.operator for e in verdicts} == {"office1"}
    # The publish of the reviewed batch is recorded as one (its photos are the batch's,
    # not kept in its folder), so after a restart it is not offered to run again.
    records = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in (data_dir / "office-app" / "publish").glob("*/job.json")
    ]
    assert sorted(r["source"] for r in records) == ["folder", "reviewed"]
    page.goto("/review")
    assert "Nothing waiting" in page.content()


@pytest.mark.slow
def test_the_office_unblurs_several_ticked_faces_as_one_pupil(
    page: Any, data_dir: Path, tmp_path: Path, registry_csv: Any
) -> None:
    """The hand-made batch of tests.support.pupil_batch (no face models): the sample
    event has one blurred face only, too few to tick several."""
    from publishing.review.batch import Verdict, load_batch
    from tests.support.pupil_batch import BATCH_ID, add_pupil_batch

    with open_store(data_dir) as store:
        add_pupil_batch(store, tmp_path, registry_csv)
    shot = Screens(page, tmp_path / "screens")
    sign_in(page, "office1")
    page.goto(f"/review/{BATCH_ID}")
    page.locator("img[alt^='Close-up']").first.wait_for()
    # Two faces of one photo (F0003, F0004) cannot both be one child: refused in words.
    page.get_by_label("Un-blur F0003").check()
    page.get_by_label("Un-blur F0004").focus()
    page.keyboard.press("Space")  # ticked from the keyboard
    page.get_by_label("Un-blur F0007").check()
    page.get_by_label("The ticked faces are").fill("amir br")
    page.get_by_role("button", name="Un-blur the ticked faces").click()
    page.get_by_text("F0003 and F0004 are in the same photo").wait_for()
    assert page.get_by_label("Un-blur F0004").is_checked()  # the ticks come back
    shot("review-unblur-refused")
    page.get_by_label("Un-blur F0003").uncheck()
    page.get_by_role("button", name="Un-blur the ticked faces").click()
    page.get_by_text("shown as Amir Brownlow").first.wait_for()
    assert page.content().count("shown as Amir Brownlow") == 2
    shot("review-unblurred-two")
    with open_store(data_dir) as store:
        batch = load_batch(store, BATCH_ID)
        [entry] = audit.entries(store, action="review_unblurred")
    assert [batch.face(f).verdict for f in ("F0003", "F0004", "F0007")] == [
        None,
        Verdict.UNBLURRED,
        Verdict.UNBLURRED,
    ]
    assert entry.details["faces"] == ["F0004", "F0007"] and entry.operator == "office1"


@pytest.mark.slow
def test_the_dpo_exports_erases_and_purges_in_the_browser(
    page: Any, data_dir: Path, tmp_path: Path
) -> None:
    from datetime import date, timedelta

    from consent import retention as leavers
    from consent.registry import import_pupils_csv, list_pupils

    with open_store(data_dir) as store:
        import_pupils_csv(store, SAMPLES / "pupils.csv", operator="test-setup")
        pupils = sorted(list_pupils(store.conn), key=lambda p: p.pupil_id)
        first, leaver = pupils[0], pupils[-1]
        import_medical_csv(store, SAMPLES / "medical.csv", operator="test-setup")
        # Left a year ago (recorded the day before, so nothing went then): their medical
        # records are past the retention period and the purge has work to do.
        gone = date.today() - timedelta(days=365)
        leavers.leave(
            store, leaver.pupil_id, gone, operator="test-setup", today=gone - timedelta(days=1)
        )
    shot = Screens(page, tmp_path / "screens")
    sign_in(page, "dpo1")
    shot("dpo-dashboard")

    page.get_by_role("link", name="Export", exact=True).click()
    shot("export")
    page.get_by_label("Pupil (type").fill(f"{first.known_first_name} {first.last_name}")
    with page.expect_download() as caught:
        page.get_by_role("button", name="Download the export").click()
    names = zipfile.ZipFile(caught.value.path()).namelist()
    assert {"README.txt", "pupil.json", "consent-history.json", "biometrics.json"} <= set(names)

    page.get_by_role("link", name="Erase", exact=True).click()
    shot("erase")
    page.get_by_label("Pupil (type").fill(f"{first.known_first_name} {first.last_name}")
    page.get_by_role("button", name="Next: check what will be erased").click()
    page.get_by_role("heading", name="What is kept, and why").wait_for()
    shot("erase-confirm")
    page.get_by_label("I have checked this is the right child").check()
    page.get_by_role("button", name="Erase this pupil").click()
    page.get_by_text(f"Pupil {first.pupil_id} erased").wait_for()
    page.get_by_role("link", name="Pupils", exact=True).click()
    assert first.last_name not in page.content()

    page.goto("/")
    page.get_by_role("link", name="Data due for purge").click()
    page.get_by_text("A purge now would delete").wait_for()
    assert leaver.pupil_id in page.content()
    shot("retention-preview")
    page.get_by_role("button", name="Purge now").click()
    page.get_by_text("Purge done:").wait_for()
    assert "Nothing is due for purge today" in page.content()
    shot("retention-purged")

    page.get_by_role("link", name="Settings", exact=True).click()
    shot("settings")
    page.get_by_label("Names").first.select_option("none")
    page.get_by_role("button", name="Save").first.click()
    page.get_by_text("captions: no names").wait_for()
    with open_store(data_dir) as store:
        actions = {e.action for e in audit.entries(store) if e.operator == "dpo1"}
    assert {"subject_access_export", "pupil_erase", "purge", "name_policy_set"} <= actions
