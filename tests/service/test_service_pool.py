"""The analysis pool with the real face models: concurrent /check requests run in
parallel up to the pool's size, and each gets the same decision it would get alone."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from consent.store import open_store
from publishing.workers import default_workers
from service import tokens
from tests.support.environment import REPO
from tests.support.service_factories import running

SAMPLES = REPO / "sample_images"
REQUESTS = 20


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data_dir = tmp_path_factory.mktemp("pool") / "data"
    runner = CliRunner()
    for args in (
        ["init"],
        ["pupils", "import", str(SAMPLES / "pupils.csv")],
        ["enroll", "--folder", str(SAMPLES / "references")],
    ):
        result = runner.invoke(main, ["--data-dir", str(data_dir), *args])
        assert result.exit_code == 0, result.output
    with open_store(data_dir) as store:
        token = tokens.create_token(store, "website", operator="office")
    return data_dir, token


@pytest.mark.slow
def test_concurrent_checks_run_in_parallel_with_the_real_models(
    enrolled: tuple[Path, str],
) -> None:
    from service.app import ModelDecider, ServiceSettings

    data_dir, token = enrolled
    data = (SAMPLES / "event" / "IMG_0001.jpg").read_bytes()
    settings = ServiceSettings(data_dir=data_dir, queue=REQUESTS)
    decider = ModelDecider.for_settings(settings)
    decider.warm()
    try:
        with running(data_dir, token, decider_factory=decider, queue=REQUESTS) as srv:
            started = time.monotonic()
            serial = [srv.check(data, timeout=300) for _ in range(REQUESTS)]
            serial_s = time.monotonic() - started

            def timed(_: int) -> tuple[float, object]:
                t = time.monotonic()
                response = srv.check(data, timeout=300)
                return time.monotonic() - t, response

            started = time.monotonic()
            with ThreadPoolExecutor(REQUESTS) as pool:
                concurrent = list(pool.map(timed, range(REQUESTS)))
            concurrent_s = time.monotonic() - started
    finally:
        decider.close()

    latencies = [t for t, _ in concurrent]
    print(
        f"\n{REQUESTS} /check with {settings.pool_size()} worker(s) "
        f"(default_workers() = {default_workers()}): serial {serial_s:.1f} s, "
        f"concurrent {concurrent_s:.1f} s, ratio {serial_s / concurrent_s:.2f}x; "
        f"concurrent median {statistics.median(latencies):.1f} s, max {max(latencies):.1f} s"
    )
    answers = [r.json() for r in serial] + [r.json() for _, r in concurrent]  # type: ignore[attr-defined]
    assert all(r.status_code == 200 for r in serial)
    # Every request got the same verdict, whichever worker decided it.
    assert len({(a["faces_kept"], a["faces_not_permitted"]) for a in answers}) == 1
