"""A live office app on a free port and Debian's Chromium driven by Playwright, for the
browser tests and for docs/office-app.png (`python -m tests.web.browser --screenshot`).

Never a downloaded browser: ``chromium.launch(executable_path=...)`` points at the
system's ``/usr/bin/chromium`` (``make tools`` installs it).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from web.pages import AppSettings
from web.server import build_server

SERIOUS = ("serious", "critical")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_app(settings: AppSettings) -> Iterator[str]:
    """The app served on 127.0.0.1 in a thread; yields its base address."""
    port = free_port()
    server = build_server(settings, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the office app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def launch(playwright: Any, chromium: str) -> Any:
    return playwright.chromium.launch(
        executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of serious or critical impact on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v for v in results.response["violations"] if v.get("impact") in SERIOUS]


def make_screenshot(dest: Path) -> None:
    """docs/office-app.png: the office's dashboard over the bundled samples, after an
    import, an enrolment, a publish and a withdrawal (so the takedown card shows)."""
    import tempfile
    from datetime import date

    from playwright.sync_api import sync_playwright

    from consent import changes
    from consent.registry import Purpose, import_pupils_csv
    from consent.store import init_data_dir, open_store
    from pipeline.recognisers import match_settings
    from publishing.enrolling import enrol_photos, recogniser_name
    from publishing.options import PublishOptions
    from publishing.publish import publish
    from web import accounts

    root = Path(__file__).resolve().parents[2]
    samples = root / "sample_images"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        init_data_dir(data, key_dir=Path(tmp) / "keys")
        with open_store(data) as store:
            import_pupils_csv(store, samples / "pupils.csv", operator="demo")
            enrol_photos(store, [("P001", samples / "references" / "P001.jpg")], operator="demo")
            options = PublishOptions(
                purpose=Purpose.WEBSITE,
                matching=match_settings(recogniser_name(store)),
                out_dir=Path(tmp) / "out",
                event="Sports day",
                operator="j.smith",
                workers=1,
                destination="school website",
            )
            publish(store, [samples / "event"], options)
            changes.change_consent(
                store,
                "P001",
                changes.ConsentChange(
                    kind=changes.ChangeKind.WITHDRAW,
                    source="letter from parent",
                    withdraw=frozenset({Purpose.WEBSITE}),
                ),
                operator="j.smith",
                today=date.today(),
            )
            accounts.create_account(
                store, "j.smith", "a demo passphrase only", accounts.Role.OFFICE, operator="demo"
            )
        with live_app(AppSettings(data)) as url, sync_playwright() as p:
            browser = launch(p, "/usr/bin/chromium")
            page = browser.new_page(base_url=url, viewport={"width": 1100, "height": 640})
            page.goto("/")
            page.get_by_label("User name").fill("j.smith")
            page.get_by_label("Password").fill("a demo passphrase only")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="What needs doing").wait_for()
            page.screenshot(path=str(dest))
            browser.close()


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/office-app.png")
    make_screenshot(target)
    print(f"wrote {target}", file=sys.stderr)
