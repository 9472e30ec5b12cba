"""The limits' bookkeeping with a fake clock: refusals logged once per interval, the
per-token bucket, anonymous counts per source and interval, and analysis admission."""

from __future__ import annotations

import logging

import pytest

from service.limits import (
    MAX_TRACKED_KEYS,
    Admission,
    RateLimiter,
    RefusalLog,
    SourceCounter,
    SourceCounts,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_refusals_is_a_few_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="photoconsent.service")
    clock = Clock()
    refusals = RefusalLog(60.0, clock)

    for i in range(170_000):
        clock.now = 1000.0 + i * 0.0003  # 170,000 refusals over 51 s
        refusals.note("header_timeout", "a client too slow with its headers")
    clock.now += 10  # past the interval
    refusals.note("header_timeout", "a client too slow with its headers")
    refusals.note("connections", "a connection over the limit")
    refusals.flush()

    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "refused: a client too slow with its headers (further ones are counted once per 60 s)",
        "refused 170000 time(s) in the last 60 s: a client too slow with its headers",
        "refused: a connection over the limit (further ones are counted once per 60 s)",
    ]
    assert refusals.totals == {"header_timeout": 170_001, "connections": 1}


def test_flush_logs_what_was_counted_but_not_yet_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="photoconsent.service")
    refusals = RefusalLog(60.0, Clock())
    for _ in range(5):
        refusals.note("rate", "a token over its rate")
    refusals.flush()

    assert caplog.records[-1].getMessage() == "refused 4 more time(s): a token over its rate"


def test_the_rate_limiter_allows_a_burst_then_one_per_interval() -> None:
    clock = Clock()
    rates = RateLimiter(per_minute=3, clock=clock)

    assert [rates.retry_after("website") for _ in range(3)] == [None, None, None]
    wait = rates.retry_after("website")
    assert wait == pytest.approx(20.0)  # one request every 20 s at 3 a minute
    assert rates.retry_after("cms") is None  # tokens are limited separately
    clock.now += 20.0
    assert rates.retry_after("website") is None
    assert rates.retry_after("website") is not None


def test_no_rate_limit_when_zero() -> None:
    rates = RateLimiter(per_minute=0)
    assert all(rates.retry_after("website") is None for _ in range(1000))


def test_anonymous_requests_are_reported_once_per_interval_per_source() -> None:
    clock = Clock()
    reports: list[SourceCounts] = []
    counter = SourceCounter(60.0, reports.append, clock)

    for source in ["10.0.0.1", "10.0.0.1", "10.0.0.2"]:
        counter.count(source)
    assert reports == []
    clock.now += 61
    counter.count("10.0.0.3")

    (report,) = reports
    assert report.by_source == {"10.0.0.1": 2, "10.0.0.2": 1} and report.others == 0
    assert report.seconds == pytest.approx(61)
    assert counter.flush() is not None and reports[-1].by_source == {"10.0.0.3": 1}
    assert counter.flush() is None


def test_anonymous_counts_stay_bounded_in_memory() -> None:
    reports: list[SourceCounts] = []
    counter = SourceCounter(60.0, reports.append, Clock())

    for i in range(MAX_TRACKED_KEYS + 500):
        counter.count(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    counter.flush()

    (report,) = reports
    assert len(report.by_source) == MAX_TRACKED_KEYS and report.others == 500


def test_admission_refuses_beyond_capacity_and_frees_on_leave() -> None:
    admission = Admission(2)

    assert [admission.try_enter() for _ in range(3)] == [True, True, False]
    admission.leave()
    assert admission.try_enter() is True
    assert admission.in_use == 2
