"""Publish throughput: this computer's process pool against a loopback Dask cluster.

Usage:
    .venv/bin/python bench/cluster.py [--photos 8] [--rounds 3] [--scale 4] [--workers 2]

Makes camera-sized photos from the bundled sample event photos (scaled ``--scale`` times,
with sensor-like noise, so a JPEG weighs what a camera's does), a data directory with
the sample register and its reference enrolled, and certificates (`make_certs`); starts a
TLS scheduler and ``--workers`` workers (``--nthreads 1``) on loopback, like
tests/publishing/test_cluster.py. Then, round by round so a shared machine's noise hits
all alike, it publishes the same photos into a fresh folder with:

* local: `publish` with this computer's pool of ``--workers`` processes (started for
  the batch, as every `photoconsent publish` does);
* cluster: `publish --cluster` on the loopback cluster, photo bytes sent with each task;
* cluster-shared: the same with ``--shared-storage`` (only the path is sent).

And it times the network hop alone: each photo's bytes sent to a worker and an
output-sized reply brought back, through the same TLS scheduler, nothing computed.

Prints each variant's median photos per second and its ratio to local, the per-photo
difference in milliseconds, and the hop's cost per photo. On one computer the cluster's
workers share its cores with the client and scheduler, so this measures what the cluster
costs, not what more computers gain: with W computers the work itself divides by W.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consent.registry import Purpose  # noqa: E402
from consent.store import open_store  # noqa: E402
from pipeline.detection import DetectionSettings  # noqa: E402
from publishing.cluster import ClientCerts, DaskCluster  # noqa: E402
from publishing.cluster_certs import make_certs  # noqa: E402
from publishing.options import PublishOptions  # noqa: E402
from publishing.publish import publish  # noqa: E402
from publishing.workers import LocalPool, PhotoMapper  # noqa: E402

SAMPLES = ROOT / "sample_images"
DASK = Path(sys.executable).parent / "dask"
NO_SPILL = {
    "DASK_DISTRIBUTED__WORKER__MEMORY__TARGET": "False",
    "DASK_DISTRIBUTED__WORKER__MEMORY__SPILL": "False",
    "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
}


def make_photos(folder: Path, n: int, scale: int) -> list[Path]:
    """``n`` photos: the sample event photos in turn, scaled up and noised (distinct files)."""
    folder.mkdir(parents=True)
    sources = sorted((SAMPLES / "event").glob("*.jpg"))
    rng = np.random.default_rng(17)
    made = []
    for i in range(n):
        im = Image.open(sources[i % len(sources)]).convert("RGB")
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.BICUBIC)
        pixels = np.asarray(im).astype(np.int16) + rng.normal(0, 3, (im.height, im.width, 3))
        path = folder / f"IMG_{i:04d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=92)
        made.append(path)
    return made


def cli(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cluster(certs: Path, logs: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    env = {**os.environ, **NO_SPILL, "PYTHONPATH": str(ROOT)}
    port = free_port()
    address = f"tls://127.0.0.1:{port}"

    def tls(role: str) -> list[str]:
        return [
            "--tls-ca-file",
            str(certs / "ca.pem"),
            "--tls-cert",
            str(certs / f"{role}.pem"),
            "--tls-key",
            str(certs / f"{role}-key.pem"),
        ]

    def spawn(name: str, args: list[str]) -> subprocess.Popen:
        with open(logs / f"{name}.log", "wb") as log:
            return subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    logs.mkdir(parents=True)
    procs = [
        spawn(
            "scheduler",
            [
                str(DASK),
                "scheduler",
                "--protocol",
                "tls",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
                *tls("scheduler"),
            ],
        )
    ]
    for w in range(workers):
        procs.append(
            spawn(
                f"worker-{w}",
                [str(DASK), "worker", address, "--nthreads", "1", "--no-dashboard", *tls("worker")],
            )
        )
    return address, procs


def timed_publish(data: Path, photos: Path, out: Path, mapper: PhotoMapper) -> float:
    """Photos per second of one publish of ``photos`` into the new folder ``out``."""
    options = PublishOptions(purpose=Purpose.WEBSITE, out_dir=out, operator="bench")
    with open_store(data) as store:
        start = time.perf_counter()
        report = publish(store, [photos], options, mapper=mapper)
        took = time.perf_counter() - start
    if report.withheld:
        raise SystemExit(
            f"bench: {len(report.withheld)} photo(s) withheld: {report.withheld[0].reason}"
        )
    return len(report.results) / took


def hop_ms(cluster: DaskCluster, photos: list[Path], reply_bytes: int) -> float:
    """Milliseconds per photo to send its bytes to a worker and get ``reply_bytes`` back
    through the scheduler (the window of a publish: two tasks per worker thread)."""
    client = cluster._require_client()
    window = 2 * max(1, sum(client.nthreads().values()))
    start = time.perf_counter()
    pending: list = []
    for path in photos:
        pending.append(client.submit(_echo, path.read_bytes(), reply_bytes, pure=False))
        if len(pending) >= window:
            pending.pop(0).result()
    for f in pending:
        f.result()
    return (time.perf_counter() - start) * 1000 / len(photos)


def _echo(data: bytes, reply_bytes: int) -> bytes:
    return data[:reply_bytes].ljust(reply_bytes, b"\0")


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=4, help="sample photos scaled by this")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp_name:
        tmp = Path(tmp_name)
        env = {
            **os.environ,
            "PHOTOCONSENT_CONFIG_DIR": str(tmp / "settings"),
            "PYTHONPATH": str(ROOT),
        }
        os.environ["PHOTOCONSENT_CONFIG_DIR"] = env["PHOTOCONSENT_CONFIG_DIR"]
        data = tmp / "data"
        cli(env, "--data-dir", str(data), "init")
        cli(env, "--data-dir", str(data), "pupils", "import", str(SAMPLES / "pupils.csv"))
        cli(env, "--data-dir", str(data), "enroll", "--folder", str(SAMPLES / "references"))
        photo_dir = tmp / "photos"
        photos = make_photos(photo_dir, args.photos, args.scale)
        mean_mb = sum(p.stat().st_size for p in photos) / len(photos) / 1e6
        make_certs(tmp / "certs")
        address, procs = start_cluster(tmp / "certs", tmp / "logs", args.workers)
        try:
            certs = ClientCerts.in_folder(tmp / "certs")
            connect_start = time.perf_counter()
            with (
                DaskCluster(
                    address, certs, detection=DetectionSettings(), worker_wait=300
                ) as plain,
                DaskCluster(
                    address, certs, detection=DetectionSettings(), shared_storage=True
                ) as shared,
            ):
                connect_s = time.perf_counter() - connect_start
                variants: dict[str, Callable[[Path], float]] = {
                    "local": lambda out: timed_publish(
                        data, photo_dir, out, LocalPool(args.workers)
                    ),
                    "cluster": lambda out: timed_publish(data, photo_dir, out, plain),
                    "cluster-shared": lambda out: timed_publish(data, photo_dir, out, shared),
                }
                # A first round warms the workers' models (a standing cluster keeps them).
                for name, run in variants.items():
                    run(tmp / f"warm-{name}")
                rates: dict[str, list[float]] = {name: [] for name in variants}
                hops: list[float] = []
                reply = int(mean_mb * 1e6 * 0.8)  # an output JPEG is about the input's size
                for r in range(args.rounds):
                    for name, run in variants.items():
                        rates[name].append(run(tmp / f"out-{r}-{name}"))
                    hops.append(hop_ms(plain, photos, reply))
        finally:
            for proc in procs:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            for proc in procs:
                proc.wait(timeout=60)

    print(
        f"{args.photos} photos of {mean_mb:.1f} MB on average ({args.scale}x the samples), "
        f"{args.workers} workers each way, {args.rounds} rounds, medians; "
        f"connecting and checking the cluster took {connect_s:.1f} s"
    )
    local = median(rates["local"])
    print(f"{'variant':<16}{'photos/s':>10}{'vs local':>10}{'ms/photo more':>15}")
    for name, values in rates.items():
        rate = median(values)
        extra = (1 / rate - 1 / local) * 1000
        print(f"{name:<16}{rate:>10.2f}{rate / local:>9.2f}x{extra:>15.0f}")
    print(
        f"network hop alone (photo out, output back over TLS): {median(hops):.0f} ms per photo, "
        f"{median(hops) * local / 10:.1f}% of a local photo's {1000 / local:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
