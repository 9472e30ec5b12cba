"""Latency of the web service over real HTTP on loopback, with the real face models.

Usage:
    .venv/bin/python bench/service_latency.py [PHOTO] [--requests 16] [--clients 1,4,16]

Builds a throw-away data directory from ``sample_images/`` (pupils, P001 enrolled), starts
the service exactly as ``photoconsent serve`` does (its protocol, limits and pool of
analysis workers, sized like publish's) on a free loopback port in this process, and
times ``POST /check`` of PHOTO (default the first sample event photo) with 1, 4 and 16
clients at once: median and 95th percentile per level, and the throughput. Then the cost
of ``/publish`` alone, of a request refused for its token and of one refused for its size.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, -(-95 * len(ordered) // 100) - 1)]


def main() -> None:
    import httpx
    from click.testing import CliRunner

    from cli import main as cli
    from consent.store import open_store
    from service import tokens
    from service.app import ModelDecider, ServiceSettings, create_app
    from service.server import build_server

    parser = argparse.ArgumentParser()
    parser.add_argument("photo", nargs="?", default=ROOT / "sample_images/event/IMG_0001.jpg")
    parser.add_argument("--requests", type=int, default=16, help="requests per level")
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels")
    args = parser.parse_args()
    photo = Path(args.photo).read_bytes()
    levels = [int(c) for c in args.clients.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        runner = CliRunner()
        samples = ROOT / "sample_images"
        for step in (
            ["init"],
            ["pupils", "import", str(samples / "pupils.csv")],
            ["enroll", "--folder", str(samples / "references")],
        ):
            result = runner.invoke(cli, ["--data-dir", str(data_dir), *step])
            assert result.exit_code == 0, result.output
        with open_store(data_dir) as store:
            token = tokens.create_token(store, "bench", operator="bench")
        # A queue deep enough for the largest level: this measures waiting, not refusing.
        settings = ServiceSettings(data_dir=data_dir, queue=max(levels))
        decider = ModelDecider.for_settings(settings)
        started = time.perf_counter()
        decider.warm()
        warm_s = time.perf_counter() - started
        app = create_app(settings, decider_factory=decider)
        logging.getLogger("photoconsent.service").setLevel(logging.ERROR)
        refusals = app.app.state.service.refusals
        server = build_server(app, settings.limits, refusals, "127.0.0.1", 0, log_level="error")
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        auth = {"Authorization": f"Bearer {token}"}
        form = {"purpose": "website", "caption": "Alex Example and Sam Sample on sports day"}

        def timed(path: str, headers: dict[str, str], body: bytes = photo) -> float:
            t = time.perf_counter()
            r = httpx.post(
                url + path,
                headers=headers,
                files={"file": ("IMG.jpg", body, "image/jpeg")},
                data=form,
                timeout=300,
            )
            assert r.status_code in (200, 401, 413, 422), r.text
            return time.perf_counter() - t

        print(
            f"photo: {len(photo):,} bytes; {settings.pool_size()} analysis worker(s); "
            f"warm-up at start: {warm_s:.2f} s"
        )
        for clients in levels:
            count = max(args.requests, clients)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                times = list(pool.map(lambda _: timed("/check", auth), range(count)))
            wall = time.perf_counter() - t0
            print(
                f"/check {clients:>2} client(s): median {statistics.median(times):.2f} s, "
                f"p95 {p95(times):.2f} s, {count / wall:.2f} requests/s over {count} requests"
            )
        pub = [timed("/publish", auth) for _ in range(3)]
        print(f"/publish 1 client: median {statistics.median(pub):.2f} s over 3 requests")
        bad = [timed("/check", {"Authorization": "Bearer pct_wrong"}) for _ in range(5)]
        print(f"401      median {statistics.median(bad) * 1000:.1f} ms")
        big = b"\xff\xd8" + b"\0" * (settings.max_upload_bytes + 1)
        over = [timed("/check", auth, big) for _ in range(3)]
        print(f"413      median {statistics.median(over) * 1000:.1f} ms (26 MB body)")
        server.should_exit = True
        thread.join()
        decider.close()


if __name__ == "__main__":
    main()
