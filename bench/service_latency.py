"""Latency of the web service over real HTTP on loopback, with the real face models.

Usage:
    .venv/bin/python bench/service_latency.py [PHOTO] [--runs 5]

Builds a throw-away data directory from ``sample_images/`` (pupils, P001 enrolled), starts
the service with uvicorn on a free loopback port in this process, and times ``POST
/check`` and ``POST /publish`` of PHOTO (default the first sample event photo), plus the
cost of a request refused for its token and one refused for its size. Prints the median
and the worst of ``--runs`` requests, and the first request separately (models warm).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import httpx
    import uvicorn
    from click.testing import CliRunner

    from cli import main as cli
    from consent.store import open_store
    from service import tokens
    from service.app import ModelDecider, ServiceSettings, create_app

    parser = argparse.ArgumentParser()
    parser.add_argument("photo", nargs="?", default=ROOT / "sample_images/event/IMG_0001.jpg")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    photo = Path(args.photo).read_bytes()

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
        settings = ServiceSettings(data_dir=data_dir)
        decider = ModelDecider(settings.detection)
        started = time.perf_counter()
        decider.warm()
        warm_s = time.perf_counter() - started
        app = create_app(settings, decider_factory=decider)
        import logging

        logging.getLogger("photoconsent.service").setLevel(logging.ERROR)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        auth = {"Authorization": f"Bearer {token}"}
        form = {"purpose": "website", "caption": "Alex Example and Sam Sample on sports day"}
        files = {"file": ("IMG.jpg", photo, "image/jpeg")}

        client = httpx.Client()  # one client: its TLS set-up would otherwise dominate

        def timed(path: str, headers: dict[str, str], body: bytes = photo) -> float:
            t = time.perf_counter()
            r = client.post(
                url + path,
                headers=headers,
                files={"file": ("IMG.jpg", body, "image/jpeg")},
                data=form,
                timeout=300,
            )
            assert r.status_code in (200, 401, 413, 422), r.text
            return time.perf_counter() - t

        print(f"photo: {len(photo):,} bytes; model warm-up at start: {warm_s:.2f} s")
        for path in ("/check", "/publish"):
            times = [timed(path, auth) for _ in range(args.runs)]
            print(
                f"{path:9} first {times[0]:.2f} s, median {statistics.median(times):.2f} s, "
                f"worst {max(times):.2f} s over {args.runs} runs"
            )
        bad = [timed("/check", {"Authorization": "Bearer pct_wrong"}) for _ in range(args.runs)]
        print(f"401      median {statistics.median(bad) * 1000:.1f} ms")
        big = b"\xff\xd8" + b"\0" * (settings.max_upload_bytes + 1)
        over = [timed("/check", auth, big) for _ in range(3)]
        print(f"413      median {statistics.median(over) * 1000:.1f} ms (26 MB body)")
        del files
        client.close()
        server.should_exit = True
        thread.join()


if __name__ == "__main__":
    main()
