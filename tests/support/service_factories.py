"""Helpers for the service tests: a server on a free loopback port with the service's own
protocol and limits (`service.server.build_server`), a fixed decider, raw sockets."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from consent import audit
from consent.store import open_store
from pipeline.boxes import Box
from pipeline.matching import Decision, FaceDecision, Reason
from service.app import ServiceSettings, create_app
from service.server import build_server

FACE = Box(40, 40, 60, 60)
SIZE = (320, 240)


@dataclass
class FakeFaces:
    """A fixed decider (the hook a reviewed batch uses): hands out ``faces`` after
    sleeping ``delay`` seconds, so tests can hold an analysis place on purpose."""

    faces: list[FaceDecision] = field(default_factory=list)
    delay: float = 0.0
    calls: int = 0

    def factory(self, store: Any, options: Any) -> Any:
        def decide(photo: Path, loaded: Any) -> list[FaceDecision]:
            self.calls += 1
            if self.delay:
                time.sleep(self.delay)
            return list(self.faces)

        return decide


def kept(pupil: str, box: Box = FACE) -> FaceDecision:
    return FaceDecision(box, Decision.KEPT, Reason.MATCHED_WITH_CONSENT, pupil, 0.3)


def photo(fmt: str = "JPEG", size: tuple[int, int] = SIZE, **save: Any) -> bytes:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, **save)
    return out.getvalue()


@dataclass
class Running:
    """A started server: its address, a live token and the fake decider behind it."""

    url: str
    host: str
    port: int
    token: str
    data_dir: Path
    faces: FakeFaces
    service: Any

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def check(self, data: bytes | None = None, timeout: float = 30, **form: str) -> httpx.Response:
        return httpx.post(
            self.url + "/check",
            headers=self.auth(),
            files={"file": ("IMG_0001.jpg", data or photo(), "image/jpeg")},
            data={"purpose": "website", **form},
            timeout=timeout,
        )

    def connect(self, timeout: float = 10) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)


@contextlib.contextmanager
def running(
    data_dir: Path,
    token: str,
    faces: FakeFaces | None = None,
    decider_factory: Any = None,
    **settings: Any,
) -> Iterator[Running]:
    """Serve ``data_dir`` on 127.0.0.1 (a free port) until the block ends."""
    faces = faces or FakeFaces()
    service_settings = ServiceSettings(data_dir=data_dir, **settings)
    app = create_app(service_settings, decider_factory=decider_factory or faces.factory)
    service = app.app.state.service
    server = build_server(
        app, service_settings.limits, service.refusals, "127.0.0.1", 0, log_level="warning"
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn stopped at start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(
            f"http://127.0.0.1:{port}", "127.0.0.1", port, token, data_dir, faces, service
        )
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def api_entries(data_dir: Path, action: str = "api_request") -> list[audit.AuditEntry]:
    with open_store(data_dir) as store:
        return [e for e in audit.entries(store) if e.action == action]


def read_until_closed(conn: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it did
    (seconds from now); gives up after ``limit_s`` (then the time is ``inf``)."""
    started = time.monotonic()
    conn.settimeout(0.2)
    got = b""
    while time.monotonic() - started < limit_s:
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return got, time.monotonic() - started
        if not chunk:
            return got, time.monotonic() - started
        got += chunk
    return got, float("inf")


def multipart(fields: dict[str, str], files: list[tuple[str, bytes]], boundary: str) -> bytes:
    """A multipart/form-data body built by hand (so tests control every part)."""
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    for i, (name, data) in enumerate(files):
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="f{i}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue()
