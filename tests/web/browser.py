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
