"""The local review server, over real HTTP on the loopback interface."""

from __future__ import annotations

import http.client
import queue
import re
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from consent import audit
from consent.store import Store, open_store
from publishing.review.batch import Verdict, load_batch
from publishing.review.server import MAX_BODY, serve_review
from tests.support.consent_factories import RegistryCsv
from tests.support.review_batch import BATCH_ID, add_review_batch

FORM = "application/x-www-form-urlencoded"


class Client:
    """Talks to a server that serves exactly ``requests`` requests in its own thread (the
    store's SQLite connection belongs to the thread that opened it)."""

    def __init__(self, data_dir: Path, requests: int) -> None:
        urls: queue.Queue[str] = queue.Queue()
        self.errors: list[BaseException] = []

        def run() -> None:
            try:
                with open_store(data_dir) as store:
                    serve_review(
                        store,
                        BATCH_ID,
                        reviewer="Ms Head",
                        port=0,
                        ready=urls.put,
                        max_requests=requests,
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
        self.home = f"{parts.path}?{parts.query}"  # the page needs the printed key
        self.key = parts.query.removeprefix("t=")
        self.sheet = f"/?{parts.query}"  # the contact sheet view, with the same key

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            text = response.read().decode("utf-8")
            return response.status, dict(response.getheaders()), text
        finally:
            conn.close()

    def post(
        self, fields: dict[str, str], path: str = "/verdict"
    ) -> tuple[int, dict[str, str], str]:
        return self.request("POST", path, urlencode(fields).encode(), {"Content-Type": FORM})

    def token(self) -> str:
        status, _, page = self.request("GET", self.home)
        assert status == 200
        return re.findall(r'name="token" value="([^"]+)"', page)[0]

    def done(self) -> None:
        self.thread.join(timeout=10)
        assert not self.thread.is_alive() and not self.errors


@pytest.fixture
def store(store: Store, tmp_path: Path, registry_csv: RegistryCsv) -> Store:
    return add_review_batch(store, tmp_path, registry_csv)


@pytest.fixture
def serve(store: Store, data_dir: Path) -> Callable[[int], Client]:
    return lambda requests: Client(data_dir, requests)


def verdict(token: str, face_id: str, value: str, name: str = "") -> dict[str, str]:
    return {"token": token, "face_id": face_id, "verdict": value, "name": name, "back": "sheet"}


def test_page_has_the_forms_and_safe_headers(serve: Callable[[int], Client]) -> None:
    client = serve(1)
    status, headers, page = client.request("GET", client.home)
    client.done()
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Security-Policy"] == (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'"
    )
    assert BATCH_ID in page and 'action="/verdict"' in page
    assert len(set(re.findall(r'name="token" value="([^"]+)"', page))) == 1


def test_approve_records_an_audited_verdict(serve: Callable[[int], Client], store: Store) -> None:
    client = serve(3)
    status, headers, _ = client.post(verdict(client.token(), "F0001", "approved"))
    assert status == 303 and headers["Location"] == f"{client.sheet}#F0001"
    _, _, page = client.request("GET", client.sheet)
    client.done()
    face = load_batch(store, BATCH_ID).face("F0001")
    assert (face.verdict, face.reviewer) == (Verdict.APPROVED, "Ms Head")
    (entry,) = audit.entries(store, action="review_approved")
    assert entry.operator == "Ms Head" and entry.details["faces"] == ["F0001"]
    assert "<b>approved</b>, by Ms Head" in page


def test_unblur_as_a_pupil_by_a_few_letters_of_the_name(
    serve: Callable[[int], Client], store: Store
) -> None:
    client = serve(2)
    status, _, _ = client.post(verdict(client.token(), "F0003", "unblurred", " firstp00 "))
    client.done()
    assert status == 303
    face = load_batch(store, BATCH_ID).face("F0003")
    assert (face.verdict, face.as_pupil, face.reviewer) == (Verdict.UNBLURRED, "P002", "Ms Head")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"verdict": "maybe"}, "Unknown verdict"),
        ({"face_id": "F0404"}, "No face"),
        ({"face_id": "F0002"}, "was blurred by matching"),
        ({"verdict": "unblurred"}, "type a few letters of the pupil&#x27;s name"),
        ({"verdict": "unblurred", "name": "P002"}, "No pupil&#x27;s name begins"),
        ({"verdict": "unblurred", "name": "F"}, "at least 2 letters"),
        ({"name": "firstp002"}, "Only un-blurring"),
    ],
)
def test_bad_verdict_is_400_and_changes_nothing(
    serve: Callable[[int], Client], store: Store, fields: dict[str, str], message: str
) -> None:
    client = serve(2)
    status, headers, page = client.post({**verdict(client.token(), "F0001", "approved"), **fields})
    client.done()
    assert status == 400 and message in page
    assert headers["X-Frame-Options"] == "DENY"
    assert all(f.verdict is None for _, f in load_batch(store, BATCH_ID).faces())
    assert audit.entries(store, action="review_approved") == []


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_post_without_the_token_is_403(
    serve: Callable[[int], Client], store: Store, token: str | None
) -> None:
    client = serve(1)
    fields = {"face_id": "F0001", "verdict": "approved", "name": ""}
    if token is not None:
        fields["token"] = token
    status, _, _ = client.post(fields)
    client.done()
    assert status == 403
    assert load_batch(store, BATCH_ID).face("F0001").verdict is None


def test_oversize_body_is_413(serve: Callable[[int], Client]) -> None:
    client = serve(1)
    body = b"token=" + b"x" * (MAX_BODY + 1)
    status, _, _ = client.request("POST", "/verdict", body, {"Content-Type": FORM})
    client.done()
    assert status == 413


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/verdict", {}, 404),
        ("GET", "/../reviews", {}, 404),
        ("POST", "/", {"Content-Type": FORM}, 404),
        ("POST", "/verdict", {"Content-Type": "application/json"}, 415),
        ("GET", "/", {"Host": "evil.example:8765"}, 403),
        ("PUT", "/", {}, 501),
    ],
)
def test_other_requests_are_refused(
    serve: Callable[[int], Client], method: str, path: str, headers: dict, status: int
) -> None:
    client = serve(1)
    got, got_headers, page = client.request(method, path, b"" if method != "GET" else None, headers)
    client.done()
    assert got == status
    assert got_headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert BATCH_ID not in page and 'name="token"' not in page


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com", ""])
def test_non_loopback_host_is_refused(store: Store, host: str) -> None:
    with pytest.raises(ValueError, match="only served on this computer"):
        serve_review(store, BATCH_ID, reviewer="Ms Head", host=host, port=0, max_requests=0)


def test_requests_are_logged_without_query_or_body(
    serve: Callable[[int], Client], capfd: pytest.CaptureFixture[str]
) -> None:
    client = serve(2)
    token = client.token()
    client.request("GET", "/?secret=1")
    client.done()
    err = capfd.readouterr().err
    assert "review: GET /pupils 200" in err and "review: GET / 403" in err
    assert "secret" not in err and token not in err


def test_the_page_needs_the_printed_key(serve: Callable[[int], Client]) -> None:
    client = serve(2)
    assert client.request("GET", "/")[0] == 403
    assert client.request("GET", "/?t=wrong")[0] == 403
    client.done()
