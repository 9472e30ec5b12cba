"""Timeouts and limits at every stage, over real HTTP on loopback (issue 15).

Every loop here is bounded in count and in time; every server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from service.limits import ServiceLimits
from tests.support.service_factories import (
    FakeFaces,
    api_entries,
    kept,
    multipart,
    photo,
    read_until_closed,
    running,
)


class Prober:
    """Asks /health every 0.1 s from another thread and keeps the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url, self.worst, self.failures, self.answers = url, 0.0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for _ in range(200):  # at most 200 probes, ~20 s
            if self._stop.is_set():
                return
            started = time.monotonic()
            try:
                ok = httpx.get(self.url + "/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                ok = False
            self.worst = max(self.worst, time.monotonic() - started)
            self.answers += ok
            self.failures += not ok
            time.sleep(0.1)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_slow_headers_are_cut_off_while_another_client_is_served(
    data_dir: Path, token: str
) -> None:
    limits = ServiceLimits(header_timeout=1.0)
    with running(data_dir, token, limits=limits) as srv, Prober(srv.url) as prober:
        conn = srv.connect()
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed_after = float("inf")
        for i in range(40):  # one header line every 0.2 s: never finishing, for up to 8 s
            try:
                conn.sendall(f"X-Slow-{i}: a\r\n".encode())
            except OSError:
                closed_after = time.monotonic() - started
                break
            got, when = read_until_closed(conn, 0.2)
            if when != float("inf"):
                closed_after = time.monotonic() - started
                break
        conn.close()
        check = srv.check()

    print(f"slow headers cut after {closed_after:.2f} s; /health worst {prober.worst:.3f} s")
    assert closed_after < 1.0 + 1.5
    assert prober.failures == 0 and prober.answers >= 5 and prober.worst < 1.0
    assert check.status_code == 200


def test_a_slow_body_gets_408_and_is_audited_while_another_client_is_served(
    data_dir: Path, token: str
) -> None:
    limits = ServiceLimits(body_idle_timeout=1.0, min_body_rate=10_000)
    with running(data_dir, token, limits=limits) as srv, Prober(srv.url) as prober:
        body = multipart({"purpose": "website"}, [("file", photo())], "zz")
        conn = srv.connect()
        conn.sendall(
            (
                f"POST /check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: multipart/form-data; boundary=zz\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
        )
        started = time.monotonic()
        answer, sent = b"", 0
        for _ in range(60):  # 20 bytes every 0.1 s = 200 B/s, for at most 6 s
            try:
                conn.sendall(body[sent : sent + 20])
            except OSError:
                break
            sent += 20
            got, when = read_until_closed(conn, 0.1)
            answer += got
            if answer or when != float("inf"):
                answer += read_until_closed(conn, 2)[0]
                break
        cut_after = time.monotonic() - started
        conn.close()
        other = srv.check()

    print(f"slow body cut after {cut_after:.2f} s, {sent} of {len(body)} bytes sent")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"bytes per second" in answer
    assert cut_after < 1.0 + 2.0
    assert other.status_code == 200 and prober.failures == 0
    refused = [e for e in api_entries(data_dir) if e.details.get("status") == 408]
    assert refused[0].details["reason"] == "body_too_slow"
    assert refused[0].operator == "api:website"


def test_300_idle_connections_do_not_stop_health_or_signed_in_clients(
    data_dir: Path, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="photoconsent.service")
    # A cap below the attack's size, and a header timeout longer than the test, so only
    # the cap (by dropping the oldest idle connection) keeps the service answering.
    limits = ServiceLimits(max_connections=100, header_timeout=60)
    with running(data_dir, token, limits=limits) as srv:
        idle = []
        try:
            for _ in range(300):
                idle.append(srv.connect())
            time.sleep(1.2)  # idle long enough to be dropped for a real client
            started = time.monotonic()
            health = httpx.get(srv.url + "/health", timeout=5)
            health_s = time.monotonic() - started
            check = srv.check(timeout=10)
        finally:
            for conn in idle:
                conn.close()

    print(f"/health with 300 idle connections open: {health_s * 1000:.0f} ms")
    assert health.status_code == 200 and health_s < 2.0
    assert check.status_code == 200, check.text
    # Hundreds of refusals, a handful of log lines: each kind once per interval.
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused")]
    assert 1 <= len(refusals) <= 4, [r.getMessage() for r in refusals]


def test_beyond_the_connection_cap_a_clear_503(data_dir: Path, token: str) -> None:
    limits = ServiceLimits(max_connections=5)
    with running(data_dir, token, limits=limits) as srv:
        held = [srv.connect() for _ in range(5)]
        try:
            time.sleep(0.1)  # held, but not yet idle long enough to be dropped
            extra = srv.connect()
            answer, _ = read_until_closed(extra, 5)
            extra.close()
        finally:
            for conn in held:
                conn.close()

    assert answer.startswith(b"HTTP/1.1 503")
    assert b"retry-after: 5" in answer.lower()
    assert b"most open connections it allows (5)" in answer


def test_an_idle_kept_alive_connection_is_closed(data_dir: Path, token: str) -> None:
    with running(data_dir, token, limits=ServiceLimits(keep_alive=1)) as srv:
        conn = srv.connect()
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer, closed_after = read_until_closed(conn, 5)
        conn.close()

    assert answer.startswith(b"HTTP/1.1 200")
    assert 0.5 < closed_after < 1 + 1.5


def test_a_request_over_the_total_time_gets_503_and_is_audited(data_dir: Path, token: str) -> None:
    faces = FakeFaces(delay=3.0)
    with running(data_dir, token, faces, limits=ServiceLimits(request_timeout=1.0)) as srv:
        started = time.monotonic()
        response = srv.check()
        took = time.monotonic() - started

    assert response.status_code == 503
    assert "longer than the limit of 1 s" in response.json()["detail"]
    assert took < 2.5
    assert api_entries(data_dir)[-1].details["reason"] == "request_timeout"


def test_a_token_over_its_rate_gets_429_with_retry_after(data_dir: Path, token: str) -> None:
    with running(data_dir, token, limits=ServiceLimits(rate_per_minute=3)) as srv:
        answers = [srv.check() for _ in range(4)]
        health = httpx.get(srv.url + "/health")

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert "3 requests a minute" in answers[-1].json()["detail"]
    assert health.status_code == 200  # the open endpoint is not rate limited
    last = api_entries(data_dir)[-1]
    assert (last.details["status"], last.details["reason"]) == (429, "rate_limited")


def test_beyond_the_workers_and_queue_503_with_retry_after(data_dir: Path, token: str) -> None:
    faces = FakeFaces(faces=[kept("P001")], delay=1.5)
    with running(data_dir, token, faces, workers=1, queue=1) as srv:
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: srv.check(), range(3)))

    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 200, 503]
    (busy,) = [a for a in answers if a.status_code == 503]
    assert busy.headers["retry-after"] == "5"
    assert "2 requests at once" in busy.json()["detail"]
    reasons = [e.details.get("reason") for e in api_entries(data_dir)]
    assert reasons.count("busy") == 1
