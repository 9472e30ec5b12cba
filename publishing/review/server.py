"""A local web page for reviewing a batch, served on the loopback interface only: the
"by pupil" view (each pupil's faces beside their reference photo, "Approve all", "Reject"
per face, the name picker for un-blurring, a close-up of any face, and "Publish the
batch"), and the contact sheet of all photos with Approve / Reject / Un-blur buttons.

The page shows children's faces and names, so it is never served beyond this machine:
a non-loopback host is refused, and a request whose ``Host`` header is not this server's
own address is refused too (a web page on another site could otherwise point its own
domain at 127.0.0.1 and read the sheet: DNS rebinding). Every POST must carry a random
per-run token (a CSRF guard: another site cannot learn it), and every page the same token
as its key (``?t=``); an error page's Back link carries the key only to a request that
already had it. Requests are handled one at a time in the serving thread, because the
store's SQLite connection is not thread-safe.
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
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from consent.errors import UnknownPupil
from consent.store import Store
from pipeline.errors import PipelineError
from publishing.options import PublishOptions
from publishing.publish import check_operator
from publishing.review.batch import (
    ReviewError,
    Verdict,
    load_batch,
    parse_verdict,
    publish_batch,
    record_verdict,
)
from publishing.review.by_pupil import ReferenceImage, approve_pupil
from publishing.review.contact_sheet import ImageCache, render_contact_sheet
from publishing.review.page import e
from publishing.review.picker import pick_from_register
from publishing.review.pupil_sheet import render_by_pupil, render_close_up

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
FORM_FIELDS = ("token", "face_id", "verdict", "name", "pupil_id", "back")
# Where a POST returns to: the view its form was on.
VIEWS = {"sheet": "/", "pupils": "/pupils"}


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
    reference_image: ReferenceImage | None = None,
    publish_options: Callable[[], PublishOptions] | None = None,
) -> None:
    """Serve batch ``batch_id``'s review page with verdict buttons until interrupted.

    Verdicts are recorded (and audited) as ``reviewer``. ``port=0`` picks a free port;
    ``ready(url)`` is called once the socket is bound, with the by-pupil view's address
    (it carries the key). ``max_requests`` stops the server after that many requests (for
    tests); ``None`` serves until KeyboardInterrupt. ``reference_image`` gives each
    pupil's reference photo (held in memory only; None: the grids show none).
    ``publish_options`` (called when the reviewer presses "Publish the batch", so the
    consent date is that day) enables publishing from the page; None: no button.
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
    Handler.context.reference_image = reference_image
    Handler.context.publish_options = publish_options
    server = Server((address, port), Handler)
    try:
        bound = server.server_address[1]
        netloc = f"[{address}]:{bound}" if family == socket.AF_INET6 else f"{address}:{bound}"
        Handler.context.allowed_hosts = {netloc, f"localhost:{bound}"}
        if ready is not None:
            ready(f"http://{netloc}/pupils?t={token}")
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
        self.reference_image: ReferenceImage | None = None
        self.publish_options: Callable[[], PublishOptions] | None = None


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
        path = urlsplit(self.path).path
        if path not in ("/", "/pupils", "/face"):
            self._page(HTTPStatus.NOT_FOUND, "Not found", "There is nothing here.")
            return
        c = self.context
        query = parse_qs(urlsplit(self.path).query)
        # The page shows children's faces: only whoever holds the printed address (with
        # its per-run key) may see it, not any other user of this computer.
        given = query.get("t", [""])[0].encode("utf-8")
        if not hmac.compare_digest(given, c.token.encode("ascii")):
            self._page(
                HTTPStatus.FORBIDDEN,
                "Not allowed",
                "Open the exact address the review command printed: it carries a key.",
            )
            return
        batch = load_batch(c.store, c.batch_id)
        if path == "/pupils":
            body = render_by_pupil(
                c.store,
                batch,
                token=c.token,
                reviewer=c.reviewer,
                images=c.images,
                reference_image=c.reference_image,
                can_publish=c.publish_options is not None,
            )
        elif path == "/face":
            try:
                body = render_close_up(c.store, batch, query.get("id", [""])[0], token=c.token)
            except ReviewError as exc:
                self._page(HTTPStatus.NOT_FOUND, "No such face", str(exc), keyed=True)
                return
        else:
            body = render_contact_sheet(
                c.store, batch, token=c.token, reviewer=c.reviewer, images=c.images
            )
        self._send(HTTPStatus.OK, body)

    def _post(self) -> None:
        path = urlsplit(self.path).path
        handlers = {
            "/verdict": self._post_verdict,
            "/approve-pupil": self._post_approve_pupil,
            "/publish": self._post_publish,
        }
        if path not in handlers:
            self._page(HTTPStatus.NOT_FOUND, "Not found", "There is nothing here.")
            return
        form = self._read_form()
        if form is None:
            return
        given = form.get("token", "").encode("utf-8")
        if not hmac.compare_digest(given, self.context.token.encode("ascii")):
            self._page(
                HTTPStatus.FORBIDDEN,
                "Not allowed",
                "This form is not from the current review page. Reload the page and try again.",
            )
            return
        try:
            handlers[path](form)
        except (PipelineError, UnknownPupil) as exc:
            title = "Not published" if path == "/publish" else "Verdict not recorded"
            self._page(HTTPStatus.BAD_REQUEST, title, str(exc), keyed=True)

    def _post_verdict(self, form: dict[str, str]) -> None:
        c = self.context
        face_id = form.get("face_id", "")
        name = form.get("name", "").strip()
        verdict = parse_verdict(form.get("verdict", ""))
        if verdict is Verdict.UNBLURRED and not name:
            raise ReviewError("To un-blur a face, type a few letters of the pupil's name.")
        if verdict is not Verdict.UNBLURRED and name:
            raise ReviewError("Only un-blurring takes a pupil's name.")
        # The name picker: a few letters of a name, one pupil or refused (never an ID).
        as_pupil = pick_from_register(c.store, name).pupil_id if name else None
        record_verdict(
            c.store, c.batch_id, [face_id], verdict, reviewer=c.reviewer, as_pupil=as_pupil
        )
        self._redirect(form.get("back", "sheet"), face_id)

    def _post_approve_pupil(self, form: dict[str, str]) -> None:
        c = self.context
        pupil_id = form.get("pupil_id", "")
        approve_pupil(c.store, c.batch_id, pupil_id, reviewer=c.reviewer)
        self._redirect("pupils", f"pupil-{pupil_id}")

    def _post_publish(self, form: dict[str, str]) -> None:
        c = self.context
        if c.publish_options is None:
            raise ReviewError(
                "This page was started without a folder to publish to; run "
                f"`photoconsent review publish {c.batch_id} --out FOLDER`."
            )
        report = publish_batch(c.store, c.batch_id, c.publish_options())
        summary = report.to_json()["summary"]
        assert isinstance(summary, dict)
        withheld = "".join(
            f"<li><b>{e(Path(r.input).name)}</b>: {e(r.reason)}</li>" for r in report.withheld
        )
        body = (
            f"<p>{summary['published']} photos published to <b>{e(report.options.out_dir)}</b>"
            f" ({summary['faces_kept']} faces kept clear, {summary['faces_blurred']} "
            f"blurred); {summary['withheld']} withheld.</p>"
        )
        if withheld:
            body += f"<p>Withheld, and why:</p><ul>{withheld}</ul>"
        self._page_html(HTTPStatus.OK, "Published", body, keyed=True)

    def _redirect(self, view: str, anchor: str) -> None:
        target = VIEWS.get(view, "/")
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header(
            "Location",
            f"{target}?t={quote(self.context.token, safe='')}#" + quote(anchor, safe=""),
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

    def _page(self, status: HTTPStatus, title: str, message: str, *, keyed: bool = False) -> None:
        """A plain page; its Back link carries the key only when ``keyed`` (a request that
        proved it holds the key): a page refused for a missing key must not hand it out."""
        self._page_html(status, title, f"<p>{html.escape(message)}</p>", keyed=keyed)

    def _page_html(self, status: HTTPStatus, title: str, content: str, *, keyed: bool) -> None:
        href = f"/pupils?t={quote(self.context.token, safe='')}" if keyed else "/"
        body = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>"
            "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;"
            "padding:0 1rem;word-break:normal;overflow-wrap:normal;hyphens:manual}</style>"
            f"</head><body><h1>{html.escape(title)}</h1>{content}"
            f'<p><a href="{href}">Back to the review page</a></p></body></html>\n'
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
