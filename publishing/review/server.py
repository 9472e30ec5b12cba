"""A local web page for reviewing a batch: the contact sheet with Approve / Reject /
Un-blur buttons, served on the loopback interface only.

The page shows children's faces and names, so it is never served beyond this machine:
a non-loopback host is refused, and a request whose ``Host`` header is not this server's
own address is refused too (a web page on another site could otherwise point its own
domain at 127.0.0.1 and read the sheet: DNS rebinding). Every POST must carry a random
per-run token (a CSRF guard: another site cannot learn it). Requests are handled one at
a time in the serving thread, because the store's SQLite connection is not thread-safe.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import secrets
import socket
import socketserver
import sys
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, quote, urlsplit

from consent.errors import UnknownPupil
from consent.registry import get_pupil
from consent.store import Store
from pipeline.errors import PipelineError
from publishing.publish import check_operator
from publishing.review.batch import load_batch, parse_verdict, record_verdict
from publishing.review.contact_sheet import ImageCache, render_contact_sheet

MAX_BODY = 10 * 1024
DRAIN_LIMIT = 1024 * 1024
# Seconds a connection may stay silent; one slow client must not block the page for good.
REQUEST_TIMEOUT = 30
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'"
    ),
}
FORM_FIELDS = ("token", "face_id", "verdict", "as_pupil")


def loopback_host(host: str) -> str:
    """``host`` as an IP literal on the loopback interface; raises ValueError otherwise."""
    address = "127.0.0.1" if host == "localhost" else host
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"Refusing to serve the review page on {host!r}: it shows children's faces and "
            "names, so it is only served on this computer (use 127.0.0.1)."
        )
    return address


def serve_review(
    store: Store,
    batch_id: str,
    *,
    reviewer: str,
    host: str = "127.0.0.1",
    port: int = 8765,
    ready: Callable[[str], None] | None = None,
    max_requests: int | None = None,
) -> None:
    """Serve batch ``batch_id``'s contact sheet with verdict buttons until interrupted.

    Verdicts are recorded (and audited) as ``reviewer``. ``port=0`` picks a free port;
    ``ready(url)`` is called once the socket is bound. ``max_requests`` stops the server
    after that many requests (for tests); ``None`` serves until KeyboardInterrupt.
    Raises ValueError for a non-loopback host, InvalidOptions for an unusable reviewer
    name and ReviewError for an unknown batch.
    """
    address = loopback_host(host)
    check_operator(reviewer)
    load_batch(store, batch_id)  # an unknown batch fails here, not on the first request
    token = secrets.token_urlsafe(32)
    images = ImageCache()

    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET

    class Server(HTTPServer):
        address_family = family

        def server_bind(self) -> None:
            # HTTPServer.server_bind looks the name up in DNS (socket.getfqdn), which can
            # stall for seconds; the name is never used here.
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = address, self.server_address[1]

    class Handler(_ReviewHandler):
        pass

    Handler.context = _Context(store, batch_id, reviewer, token, images)
    server = Server((address, port), Handler)
    try:
        bound = server.server_address[1]
        netloc = f"[{address}]:{bound}" if family == socket.AF_INET6 else f"{address}:{bound}"
        Handler.context.allowed_hosts = {netloc, f"localhost:{bound}"}
        if ready is not None:
            ready(f"http://{netloc}/?t={token}")
        if max_requests is None:
            server.serve_forever()
        else:
            for _ in range(max_requests):
                server.handle_request()
    finally:
        server.server_close()


class _Context:
    def __init__(
        self, store: Store, batch_id: str, reviewer: str, token: str, images: ImageCache
    ) -> None:
        self.store, self.batch_id, self.reviewer = store, batch_id, reviewer
        self.token, self.images = token, images
        self.allowed_hosts: set[str] = set()


class _ReviewHandler(BaseHTTPRequestHandler):
    context: _Context
    server_version = "photoconsent-review"
    sys_version = ""
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
        self._guarded(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guarded(self._post)

    def _guarded(self, handle: Callable[[], None]) -> None:
        if self.headers.get("Host", "") not in self.context.allowed_hosts:
            self._page(HTTPStatus.FORBIDDEN, "Not allowed", "Open the address the command printed.")
            return
        try:
            handle()
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the review
            sys.stderr.write(f"review: error: {type(exc).__name__}: {exc}\n")
            self._page(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Nothing was recorded for this request; the terminal running the review shows why.",
            )

    def _get(self) -> None:
        if urlsplit(self.path).path != "/":
            self._page(HTTPStatus.NOT_FOUND, "Not found", "There is nothing here.")
            return
        c = self.context
        # The page shows children's faces: only whoever holds the printed address (with
        # its per-run key) may see it, not any other user of this computer.
        given = parse_qs(urlsplit(self.path).query).get("t", [""])[0].encode("utf-8")
        if not hmac.compare_digest(given, c.token.encode("ascii")):
            self._page(
                HTTPStatus.FORBIDDEN,
                "Not allowed",
                "Open the exact address the review command printed: it carries a key.",
            )
            return
        batch = load_batch(c.store, c.batch_id)
        body = render_contact_sheet(
            c.store, batch, token=c.token, reviewer=c.reviewer, images=c.images
        )
        self._send(HTTPStatus.OK, body)

    def _post(self) -> None:
        if urlsplit(self.path).path != "/verdict":
            self._page(HTTPStatus.NOT_FOUND, "Not found", "There is nothing here.")
            return
        form = self._read_form()
        if form is None:
            return
        c = self.context
        given = form.get("token", "").encode("utf-8")
        if not hmac.compare_digest(given, c.token.encode("ascii")):
            self._page(
                HTTPStatus.FORBIDDEN,
                "Not allowed",
                "This form is not from the current review page. Reload the page and try again.",
            )
            return
        face_id = form.get("face_id", "")
        as_pupil = form.get("as_pupil", "").strip() or None
        try:
            verdict = parse_verdict(form.get("verdict", ""))
            if as_pupil is not None:
                get_pupil(c.store.conn, as_pupil)  # a typo must not be recorded as a name
            record_verdict(
                c.store,
                c.batch_id,
                [face_id],
                verdict,
                reviewer=c.reviewer,
                as_pupil=as_pupil,
            )
        except (PipelineError, UnknownPupil) as exc:
            self._page(HTTPStatus.BAD_REQUEST, "Verdict not recorded", str(exc))
            return
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header(
            "Location", f"/?t={quote(self.context.token, safe='')}#" + quote(face_id, safe="")
        )
        self.send_header("Content-Length", "0")
        self._security_headers()
        self.end_headers()

    def _read_form(self) -> dict[str, str] | None:
        """The urlencoded body as field -> value, or None after sending an error."""
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            self._page(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "Unsupported form", "Send the page's form."
            )
            return None
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._page(HTTPStatus.LENGTH_REQUIRED, "Length required", "Send the page's form.")
            return None
        if length > MAX_BODY:
            self._discard(length)
            self._page(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Too large", "Send the page's form.")
            return None
        if length < 0:
            self._page(HTTPStatus.BAD_REQUEST, "Bad request", "Send the page's form.")
            return None
        try:
            raw = parse_qs(
                self.rfile.read(length).decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=bool(length),
                max_num_fields=len(FORM_FIELDS),
            )
        except ValueError:  # bad UTF-8, bad syntax or too many fields
            self._page(HTTPStatus.BAD_REQUEST, "Bad request", "Send the page's form.")
            return None
        if any(len(v) != 1 for v in raw.values()) or not set(raw) <= set(FORM_FIELDS):
            self._page(HTTPStatus.BAD_REQUEST, "Bad request", "Send the page's form.")
            return None
        return {k: v[0] for k, v in raw.items()}

    def _discard(self, length: int) -> None:
        """Read (up to DRAIN_LIMIT of) an unwanted body, so that closing the connection
        does not reset it before the client has read the error response."""
        left = min(length, DRAIN_LIMIT)
        while left > 0:
            chunk = self.rfile.read(min(left, 64 * 1024))
            if not chunk:
                break
            left -= len(chunk)

    def _page(self, status: HTTPStatus, title: str, message: str) -> None:
        body = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>"
            "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;"
            "padding:0 1rem}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
            '<p><a href="/">Back to the review page</a></p></body></html>\n'
        )
        self._send(status, body)

    def _send(self, status: HTTPStatus, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self._security_headers()
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _security_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The standard error page has none of the security headers; and its message can
        # echo the request line, which is not shown back.
        self.close_connection = True
        status = HTTPStatus(code)
        self._page(status, f"{status.value} {status.phrase}", "Use the review page's buttons.")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Method, path without the query string, status: never the body or the token.
        path = urlsplit(self.path).path if getattr(self, "path", None) else "-"
        status = int(code) if isinstance(code, int) else code
        sys.stderr.write(f"review: {self.command or '-'} {path} {status}\n")

    def log_error(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # send_error's message may hold the raw request line; log_request logs the code

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        sys.stderr.write("review: " + (format % args) + "\n")
