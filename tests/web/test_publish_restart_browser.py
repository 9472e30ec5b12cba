"""In a real browser, after a restart: the publish screen's *Recent publishes* finds a
publish the restart interrupted, its page lists what was made and offers nothing to
download, *Run it again* finishes it and the zip holds every photo. axe-core checks the
two new screens. Publish runs in-process with no face models (as in test_publish_jobs)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.environment import require_tool
from tests.web.browser import launch, live_app
from tests.web.conftest import PASSWORD
from tests.web.test_browser import Screens
from tests.web.test_publish_jobs import (  # noqa: F401 - the fixtures are used by name
    PHOTOS,
    interrupted_job,
    no_models,
    publish_entries,
    restart,
)
from web.pages import AppSettings


@pytest.mark.slow
def test_an_interrupted_publish_is_found_and_finished_after_a_restart(
    restart: Callable[[], TestClient],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    web_data: Path,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    chromium = require_tool("chromium", "chromium")
    job_id = interrupted_job(restart, monkeypatch, photos_done=2)
    made = publish_entries(web_data)
    # The app starting again over the same data directory is the restart.
    with live_app(AppSettings(web_data, workers=1)) as url, sync_playwright() as p:
        browser = launch(p, chromium)
        page: Any = browser.new_context(accept_downloads=True, base_url=url).new_page()
        page.set_default_timeout(60_000)
        shot = Screens(page, tmp_path / "screens")
        page.goto("/")
        page.get_by_label("User name").fill("office1")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="What needs doing").wait_for()

        page.get_by_role("link", name="Publish", exact=True).click()
        recent = page.get_by_role("table")
        assert "Interrupted" in recent.inner_text()
        shot("publish-recent")
        recent.get_by_role("link", name="Sports day").click()
        page.get_by_text("Nothing from it was published unless listed").wait_for()
        for name in made:
            assert name in page.content()
        assert page.get_by_role("link", name="Download for upload (zip)").count() == 0
        shot("publish-interrupted")

        page.get_by_role("button", name="Run it again").click()
        page.get_by_text(f"{PHOTOS} published, 0 withheld").wait_for(timeout=120_000)
        assert page.url.endswith(f"/publish/{job_id}")
        with page.expect_download() as caught:
            page.get_by_role("link", name="Download for upload (zip)").click()
        upload = zipfile.ZipFile(io.BytesIO(Path(caught.value.path()).read_bytes()))
        assert len(upload.namelist()) == PHOTOS and set(made) <= set(upload.namelist())
        browser.close()
    assert len(publish_entries(web_data)) == PHOTOS
