"""A one-line progress bar for a terminal: count, photos per second and time left."""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 24


def format_duration(seconds: float) -> str:
    """``1:05:09`` or ``5:09`` for a number of seconds."""
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """Redraws ``[#####.....] 120/2000 photos  2.3/s  13:40 left  3 withheld`` in place.

    Photos finished by an earlier, interrupted run (``resumed``) count towards the total
    but not towards the rate, so the time left is not flattered by them. Write to a
    terminal only: the caller decides that (``stream.isatty()``).
    """

    def __init__(self, stream: TextIO, *, clock: type[time.monotonic] | None = None) -> None:
        self.stream = stream
        self._clock = clock or time.monotonic
        self._start = self._clock()
        self._worked = 0
        self._withheld = 0
        self._last_draw = 0.0

    def update(self, done: int, total: int, *, resumed: bool, withheld: bool) -> None:
        if not resumed:
            self._worked += 1
        self._withheld += withheld
        now = self._clock()
        # Redraw at most ten times a second, and always for the last photo.
        if done < total and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        self.stream.write("\r" + self.line(done, total, now - self._start) + "\x1b[K")
        if done == total:
            self.stream.write("\n")
        self.stream.flush()

    def line(self, done: int, total: int, elapsed: float) -> str:
        filled = BAR_WIDTH * done // total if total else BAR_WIDTH
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        text = f"[{bar}] {done}/{total} photos"
        if self._worked and elapsed > 0:
            rate = self._worked / elapsed
            text += f"  {rate:.1f}/s"
            if done < total:
                text += f"  {format_duration((total - done) / rate)} left"
            else:
                text += f"  {format_duration(elapsed)}"
        if self._withheld:
            text += f"  {self._withheld} withheld"
        return text
