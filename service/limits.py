"""The service's limits at every stage, and the bookkeeping that enforces them.

`ServiceLimits` holds every timeout and limit (defaults chosen for a school website calling
over a LAN or a reverse proxy); `service.server` applies the connection-level ones (header
read, keep-alive, open connections), `service.guard` the request-level ones (body rate,
total time, per-token rate, analysis admission). The helpers here are thread-safe and
bounded in memory: a flood of sources or tokens cannot grow them without limit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("photoconsent.service")

# The port and size limits `photoconsent serve` offers by default. They live here, beside
# the other limits, and not in service.app, so that the command line can show them
# without importing the web framework (0.4 s on every command).
DEFAULT_PORT = 8750
DEFAULT_MAX_UPLOAD = 25 * 1024 * 1024
# Well below the batch limit (64 MP): a 40 MP PNG of a few KB took 22-33 s and 1.5 GB to
# analyse (issue 15); 24 MP still takes any school camera's photo (6000 x 4000).
DEFAULT_MAX_PIXELS = 24_000_000
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_IDLE_TIMEOUT = 15.0
DEFAULT_MIN_BODY_RATE = 20 * 1024
DEFAULT_KEEP_ALIVE = 5
DEFAULT_REQUEST_TIMEOUT = 120.0
DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_RATE_PER_MINUTE = 120
DEFAULT_LOG_INTERVAL = 60.0
# A source or token table larger than this is summarised as "others" (memory stays bounded).
MAX_TRACKED_KEYS = 1024


@dataclass(frozen=True)
class ServiceLimits:
    """Timeouts (seconds) and limits of the service, one per stage of a request.

    * ``header_timeout``: from the first byte (or the connection) to the end of the request
      headers; a client slower than this is disconnected.
    * ``body_idle_timeout`` and ``min_body_rate`` (bytes per second): the body may pause at
      most ``body_idle_timeout`` between two pieces, and after that grace period it must
      average at least ``min_body_rate``; a slower body is answered 408.
    * ``keep_alive``: an idle kept-alive connection is closed after this long.
    * ``request_timeout``: the whole request, analysis included; beyond it 503.
    * ``max_connections``: open connections at once; beyond it, the oldest connection
      still waiting for its headers is dropped, or else the new one is answered 503.
    * ``rate_per_minute``: signed-in requests per token per minute (bursts up to the same
      number); beyond it 429 with Retry-After.
    * ``log_interval``: each kind of refusal is logged at most once per interval, with its
      count; unauthenticated requests are counted per source over the same interval.
    """

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_idle_timeout: float = DEFAULT_BODY_IDLE_TIMEOUT
    min_body_rate: int = DEFAULT_MIN_BODY_RATE
    keep_alive: int = DEFAULT_KEEP_ALIVE
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
    log_interval: float = DEFAULT_LOG_INTERVAL


class RefusalLog:
    """Logs each kind of refusal once per interval with how many there were, instead of
    once per event (an attack of 170,000 refusals is one line a minute, not 68 MB)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._since: dict[str, float] = {}
        self._messages: dict[str, str] = {}
        self.totals: dict[str, int] = {}

    def note(self, kind: str, message: str) -> None:
        """Count one refusal of ``kind``; ``message`` says what it is, in plain words."""
        now = self._clock()
        with self._lock:
            self.totals[kind] = self.totals.get(kind, 0) + 1
            self._messages[kind] = message
            first = kind not in self._since
            if first:
                self._since[kind] = now
            else:
                self._counts[kind] = self._counts.get(kind, 0) + 1
                if now - self._since[kind] < self.interval:
                    return
            count = self._counts.pop(kind, 0)
            self._since[kind] = now
        if first:
            log.warning(
                "refused: %s (further ones are counted once per %g s)", message, self.interval
            )
        else:
            log.warning("refused %d time(s) in the last %g s: %s", count, self.interval, message)

    def flush(self) -> None:
        """Log what is counted but not yet logged (at shutdown)."""
        with self._lock:
            pending, self._counts = self._counts, {}
            messages = dict(self._messages)
        for kind, count in sorted(pending.items()):
            if count:
                log.warning("refused %d more time(s): %s", count, messages[kind])


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests a minute, bursts up to the same."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def retry_after(self, key: str) -> float | None:
        """None if ``key`` may make a request now (and it is counted), else the seconds to
        wait before the next one would be allowed."""
        if self.per_minute <= 0:
            return None
        rate = self.per_minute / 60.0
        now = self._clock()
        with self._lock:
            level, at = self._buckets.get(key, (float(self.per_minute), now))
            level = min(float(self.per_minute), level + (now - at) * rate)
            if level < 1.0:
                self._buckets[key] = (level, now)
                return (1.0 - level) / rate
            if len(self._buckets) >= MAX_TRACKED_KEYS and key not in self._buckets:
                # Only live tokens get here, so this is a bound, not a limit in practice.
                self._buckets.clear()
            self._buckets[key] = (level - 1.0, now)
            return None


@dataclass(frozen=True)
class SourceCounts:
    """Unauthenticated requests per source over one interval (no token material)."""

    started_at: float
    seconds: float
    by_source: dict[str, int]
    others: int


class SourceCounter:
    """Counts requests without a valid token per source address and interval; when an
    interval ends, the counts are handed to ``report`` once (a log line and one audit
    entry), so an anonymous flood costs one record per interval, not one per request."""

    def __init__(
        self,
        interval: float,
        report: Callable[[SourceCounts], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.interval = interval
        self._report = report
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._counts: dict[str, int] = {}
        self._others = 0

    def count(self, source: str) -> None:
        done = None
        with self._lock:
            now = self._clock()
            if not self._counts and not self._others:
                self._started = now  # an interval starts with its first request
            elif now - self._started >= self.interval:
                done = self._take(now)
            if source in self._counts or len(self._counts) < MAX_TRACKED_KEYS:
                self._counts[source] = self._counts.get(source, 0) + 1
            else:
                self._others += 1
        if done is not None:
            self._report(done)

    def flush(self) -> SourceCounts | None:
        """Report what is counted so far (at shutdown); None if nothing was."""
        with self._lock:
            done = self._take(self._clock())
        if done is not None:
            self._report(done)
        return done

    def _take(self, now: float) -> SourceCounts | None:
        taken = None
        if self._counts or self._others:
            taken = SourceCounts(self._started, now - self._started, self._counts, self._others)
        self._started, self._counts, self._others = now, {}, 0
        return taken


class Admission:
    """Bounds the requests that need the analysis pool: ``capacity`` at once (the pool's
    workers plus its queue); beyond it a request is refused at once, never parked."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self.in_use = 0

    def try_enter(self) -> bool:
        with self._lock:
            if self.in_use >= self.capacity:
                return False
            self.in_use += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_use = max(0, self.in_use - 1)
