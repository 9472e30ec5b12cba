"""The terminal progress bar: count, rate and time left, drawn in place."""

from __future__ import annotations

import io

import pytest

from commands.progress import ProgressBar, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00"), (59.6, "1:00"), (605, "10:05"), (3725, "1:02:05")]
)
def test_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_bar_shows_count_rate_time_left_and_withheld() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar(out, clock=clock)  # type: ignore[arg-type]
    for done in range(1, 5):
        clock.now = done * 2.0  # one photo every 2 s
        bar.update(done, 10, resumed=False, withheld=done == 3)

    last = out.getvalue().split("\r")[-1]
    assert last.startswith("[#########...............] 4/10 photos  0.5/s  0:12 left")
    assert "1 withheld" in last
    assert "\n" not in out.getvalue()


def test_photos_finished_by_an_earlier_run_do_not_inflate_the_rate() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar(out, clock=clock)  # type: ignore[arg-type]
    for done in range(1, 9):
        bar.update(done, 10, resumed=True, withheld=False)
    clock.now = 4.0
    bar.update(9, 10, resumed=False, withheld=False)

    assert "9/10 photos  0.2/s  0:04 left" in out.getvalue().split("\r")[-1]


def test_the_last_update_ends_the_line() -> None:
    clock, out = Clock(), io.StringIO()
    bar = ProgressBar(out, clock=clock)  # type: ignore[arg-type]
    clock.now = 3.0
    bar.update(1, 1, resumed=False, withheld=False)
    assert out.getvalue().endswith("\n")
    assert "1/1 photos  0.3/s  0:03" in out.getvalue()
