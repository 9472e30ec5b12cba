"""A review server in its own thread, for tests that talk to it over real HTTP."""

from __future__ import annotations

import http.client
import queue
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from consent.store import open_store
from publishing.review.server import serve_review

FORM = "application/x-www-form-urlencoded"


class ReviewClient:
    """Talks to a server that serves exactly ``requests`` requests in its own thread (the
    store's SQLite connection belongs to the thread that opened it); ``serve`` holds
    `serve_review`'s further keyword arguments."""

    def __init__(self, data_dir: Path, batch_id: str, requests: int, **serve: Any) -> None:
        urls: queue.Queue[str] = queue.Queue()
        self.errors: list[BaseException] = []

        def run() -> None:
            try:
                with open_store(data_dir) as store:
                    serve_review(
                        store,
                        batch_id,
                        reviewer="Ms Head",
                        port=0,
                        ready=urls.put,
                        max_requests=requests,
                        **serve,
                    )
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(exc)
                urls.put("")

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        self.url = urls.get(timeout=10)
        assert self.url, self.errors
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname or "", parts.port or 0
        self.key = parts.query.removeprefix("t=")
        self.home = f"{parts.path}?{parts.query}"  # the by-pupil view, with its key

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            text = response.read().decode("utf-8")
            return response.status, dict(response.getheaders()), text
        finally:
            conn.close()

    def get(self, path: str = "") -> tuple[int, dict[str, str], str]:
        return self.request("GET", path or self.home)

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, dict[str, str], str]:
        body = urlencode({"token": self.key, **fields}).encode()
        return self.request("POST", path, body, {"Content-Type": FORM})

    def done(self) -> None:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive() and not self.errors, self.errors


def tokens(page: str) -> set[str]:
    return set(re.findall(r'name="token" value="([^"]+)"', page))
