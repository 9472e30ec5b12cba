"""Publishing on a Dask cluster (issue 17): TLS only, the same outputs, report and audit as
a local publish, nothing lost or duplicated when a worker dies or the client is killed.

The slow tests start a real TLS scheduler and two workers on loopback as subprocesses of
the venv's `dask scheduler` / `dask worker` (``--nthreads 1``, no dashboard, free ports),
with certificates made by `photoconsent cluster certs`, and publish the bundled sample
photos with the real models. The workers import this worktree's code (PYTHONPATH).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from cli import main
from consent import audit
from consent.registry import Purpose
from consent.store import Store, init_data_dir, open_store
from pipeline.detection import DetectionSettings
from pipeline.errors import InvalidOptions
from publishing import journal
from publishing.cluster import (
    ClientCerts,
    ClusterUnavailable,
    DaskCluster,
    InsecureCluster,
    check_address,
)
from publishing.cluster_certs import make_certs
from publishing.options import PublishOptions
from publishing.publish import publish
from publishing.report import PhotoStatus
from publishing.workers import LocalPool, PhotoWork, Processed
from tests.support.environment import REPO

SAMPLES = REPO / "sample_images"
DASK = Path(sys.executable).parent / "dask"
# A busy two-core machine starts a worker (and loads its models) slowly: be generous.
START_TIMEOUT_S = 180
# What `dask worker` must be told so that nothing of a batch reaches its disk (docs/cluster.md).
NO_SPILL = {
    "DASK_DISTRIBUTED__WORKER__MEMORY__TARGET": "False",
    "DASK_DISTRIBUTED__WORKER__MEMORY__SPILL": "False",
}


# --- no cluster needed ------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "tcp://127.0.0.1:8786",
        "TCP://photo-server:8786",
        "127.0.0.1:8786",
        "photo-server",
        "ws://photo-server:8786",
        "inproc://x",
        "tls://",
        "",
    ],
)
def test_an_address_without_tls_is_refused_in_plain_words(address: str) -> None:
    with pytest.raises(InsecureCluster, match="tls://HOST:8786") as refused:
        check_address(address)

    assert "in clear" in str(refused.value)


def test_a_tls_address_is_accepted() -> None:
    assert check_address(" TLS://photo-server:8786 ") == "tls://photo-server:8786"


def test_publish_refuses_tcp_before_reading_or_connecting(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    certs = tmp_path / "certs"
    make_certs(certs)
    out = tmp_path / "out"

    result = runner.invoke(
        main,
        [
            "--data-dir",
            str(data_dir),
            "publish",
            "--purpose",
            "website",
            "--out",
            str(out),
            "--cluster",
            "tcp://127.0.0.1:9",
            "--cluster-certs",
            str(certs),
            str(SAMPLES / "event"),
        ],
    )

    assert result.exit_code == 1, result.output
    assert "tcp://, which is not encrypted" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--cluster-certs", "CERTS"], "go with --cluster"),
        (["--shared-storage"], "go with --cluster"),
        (["--cluster", "tls://127.0.0.1:9"], "needs --cluster-certs"),
        (["--cluster", "tls://127.0.0.1:9", "--cluster-certs", "CERTS", "--workers", "2"], ""),
    ],
)
def test_cluster_options_go_together(
    runner: CliRunner, data_dir: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    args = [str(certs) if a == "CERTS" else a for a in extra]

    result = runner.invoke(
        main,
        ["--data-dir", str(data_dir), "publish", "--purpose", "website", "--out", "o", *args]
        + [str(SAMPLES / "event")],
    )

    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_cluster_certs_says_which_file_goes_where(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "certs"

    result = runner.invoke(main, ["cluster", "certs", str(folder), "--host", "photo-server"])

    assert result.exit_code == 0, result.output
    for line in (
        "scheduler computer (runs `dask scheduler`): ca.pem, scheduler.pem, scheduler-key.pem",
        "every worker computer (runs `dask worker`): ca.pem, worker.pem, worker-key.pem",
        "`photoconsent publish --cluster`: ca.pem, client.pem, client-key.pem",
        "Keep ca-key.pem offline",
    ):
        assert line in result.stderr
    assert result.stdout == ""


def test_cluster_certs_are_signed_by_their_ca_and_keys_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "certs"
    make_certs(folder, days=30, hosts=("photo-server", "10.0.0.5"))

    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for role in ("scheduler", "worker", "client"):
        cert = x509.load_pem_x509_certificate((folder / f"{role}.pem").read_bytes())
        cert.verify_directly_issued_by(ca)
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
        assert days == 30
    for key in ("ca-key.pem", "scheduler-key.pem", "worker-key.pem", "client-key.pem"):
        assert stat.S_IMODE((folder / key).stat().st_mode) == 0o600
    scheduler = x509.load_pem_x509_certificate((folder / "scheduler.pem").read_bytes())
    names = scheduler.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "photo-server" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "10.0.0.5",
    ]


def test_cluster_certs_never_overwrite(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "certs"
    make_certs(folder)
    before = (folder / "ca.pem").read_bytes()

    result = runner.invoke(main, ["cluster", "certs", str(folder)])

    assert result.exit_code == 1
    assert "choose a new folder" in result.stderr
    assert (folder / "ca.pem").read_bytes() == before


def test_cluster_certs_folder_must_hold_the_client_files(tmp_path: Path) -> None:
    folder = tmp_path / "certs"
    make_certs(folder)
    (folder / "client-key.pem").unlink()

    with pytest.raises(InvalidOptions, match="lacks client-key.pem"):
        ClientCerts.in_folder(folder)


def test_an_unreachable_scheduler_is_said_in_plain_words(tmp_path: Path) -> None:
    make_certs(tmp_path / "certs")
    port = free_port()
    cluster = DaskCluster(
        f"tls://127.0.0.1:{port}",
        ClientCerts.in_folder(tmp_path / "certs"),
        detection=DetectionSettings(),
        connect_timeout=3,
    )

    with pytest.raises(ClusterUnavailable, match="cannot reach the cluster scheduler"):
        with cluster:
            pass


class DescribedPool(LocalPool):
    """The local pool, described as a cluster: what the audit records of the mapper."""

    def describe(self) -> dict[str, object]:
        return {"cluster": {"scheduler": "tls://photo-server:8786", "workers": 3}}


def no_faces(path: Path, loaded: object) -> list:
    return []


@pytest.mark.parametrize("mapper, cluster", [(None, None), (DescribedPool(1), 3)])
def test_the_audit_records_where_faces_were_decided(
    store: Store, tmp_path: Path, mapper: LocalPool | None, cluster: int | None
) -> None:
    opts = PublishOptions(purpose=Purpose.WEBSITE, out_dir=tmp_path / "out", operator="office")

    publish(store, [SAMPLES / "event"], opts, decider=no_faces, mapper=mapper)

    for entry in audit.entries(store, action="publish"):
        detection = entry.details["detection"]
        if cluster is None:
            assert "cluster" not in detection
        else:
            assert detection["cluster"]["workers"] == cluster
            assert detection["thoroughness"] == "standard"


# --- a real cluster on loopback -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Loopback:
    """A TLS scheduler and its workers, each a process group of its own."""

    certs: Path
    logs: Path
    address: str = ""
    scheduler: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] = "True"
        env.update(extra)
        return env

    def start_scheduler(self, **env: str) -> None:
        port = free_port()
        self.address = f"tls://127.0.0.1:{port}"
        self.scheduler = self._spawn(
            "scheduler",
            [str(DASK), "scheduler", "--protocol", "tls", "--host", "127.0.0.1"]
            + ["--port", str(port), "--no-dashboard", *self._tls("scheduler")],
            self.env(**env),
        )

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        name = f"worker-{len(self.workers) + 1}"
        proc = self._spawn(
            name,
            [str(DASK), "worker", self.address, "--nthreads", "1", "--no-dashboard"]
            + ["--name", name, "--local-directory", str(self.logs / name), *self._tls("worker")],
            self.env(**{**NO_SPILL, **env}),
        )
        self.workers.append(proc)
        return proc

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client
        from distributed.security import Security

        certs = ClientCerts.in_folder(self.certs)
        security = Security(
            tls_ca_file=str(certs.ca),
            tls_client_cert=str(certs.cert),
            tls_client_key=str(certs.key),
            require_encryption=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with Client(self.address, security=security, timeout=10) as client:
                    client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
                    return
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"the loopback cluster did not start:\n{self.log()}"
                    ) from None
                time.sleep(1)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a worker's whole group (its nanny and the worker process)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill(proc)

    def log(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.logs.glob("*.log"))
        )

    def _tls(self, role: str) -> list[str]:
        c = self.certs
        return ["--tls-ca-file", str(c / "ca.pem"), "--tls-cert", str(c / f"{role}.pem")] + [
            "--tls-key",
            str(c / f"{role}-key.pem"),
        ]

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - the child keeps it
        try:
            return subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        finally:
            log.close()


@pytest.fixture
def loopback(tmp_path: Path, runner: CliRunner) -> Iterator[Loopback]:
    """A TLS scheduler and two workers on loopback, certificates made by `cluster certs`."""
    with started_cluster(tmp_path, runner, {}, {}) as cluster:
        yield cluster


@contextlib.contextmanager
def started_cluster(
    tmp_path: Path, runner: CliRunner, scheduler_env: dict[str, str], worker_env: dict[str, str]
) -> Iterator[Loopback]:
    if not DASK.is_file():
        pytest.fail(f"{DASK} missing: `make install` installs dask[distributed]")
    certs = tmp_path / "cluster-certs"
    made = runner.invoke(main, ["cluster", "certs", str(certs)])
    assert made.exit_code == 0, made.output
    cluster = Loopback(certs, tmp_path / "cluster-logs")
    try:
        cluster.start_scheduler(**scheduler_env)
        cluster.start_worker(**worker_env)
        cluster.start_worker(**worker_env)
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.stop()


def card(tmp_path: Path, copies: int) -> Path:
    """The two sample event photos, each ``copies`` times under other names."""
    folder = tmp_path / "card"
    folder.mkdir()
    for n in range(copies):
        for src in sorted((SAMPLES / "event").glob("*.jpg")):
            shutil.copyfile(src, folder / f"{src.stem}-{n}.jpg")
    return folder


def data_directory(runner: CliRunner, path: Path) -> Path:
    """A data directory with the sample register and its one reference enrolled."""
    init_data_dir(path)
    for args in (
        ["pupils", "import", str(SAMPLES / "pupils.csv")],
        ["enroll", "--folder", str(SAMPLES / "references")],
    ):
        result = runner.invoke(main, ["--data-dir", str(path), *args])
        assert result.exit_code == 0, result.output
    return path


def publish_cli(runner: CliRunner, data: Path, out: Path, photos: Path, *extra: str) -> None:
    result = runner.invoke(
        main,
        ["--data-dir", str(data), "publish", "--purpose", "website", "--event", "Sports day"]
        + ["--operator", "office", "--out", str(out), "-q", *extra, str(photos)],
    )
    assert result.exit_code == 0, result.output


def audit_details(data: Path) -> list[dict[str, object]]:
    with open_store(data) as store:
        return [e.details for e in audit.entries(store, action="publish")]


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.slow
@pytest.mark.parametrize("shared_storage", [False, True], ids=["bytes", "shared-storage"])
def test_a_cluster_publish_is_identical_to_a_local_one(
    loopback: Loopback, runner: CliRunner, tmp_path: Path, shared_storage: bool
) -> None:
    photos = card(tmp_path, copies=2)
    out = tmp_path / "out"
    local_data = data_directory(runner, tmp_path / "local-data")
    cluster_data = data_directory(runner, tmp_path / "cluster-data")
    # The same output folder for both (moved away in between), so the batch is the same.
    publish_cli(runner, local_data, out, photos, "--workers", "1")
    local = out.rename(tmp_path / "local-out")
    extra = ["--cluster", loopback.address, "--cluster-certs", str(loopback.certs)]

    publish_cli(
        runner, cluster_data, out, photos, *extra, *(["--shared-storage"] if shared_storage else [])
    )

    assert folder_files(out) == folder_files(local)  # photos, report.json, captions.csv
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["summary"]["published"] == 4 and report["summary"]["faces_kept"] == 2
    on_cluster, here = audit_details(cluster_data), audit_details(local_data)
    assert len(on_cluster) == len(here) == 4
    for details in on_cluster:
        assert details["detection"].pop("cluster") == {  # type: ignore[union-attr]
            "scheduler": loopback.address,
            "workers": 2,
            "shared_storage": shared_storage,
        }
    assert on_cluster == here


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    loopback: Loopback, runner: CliRunner, tmp_path: Path
) -> None:
    data = data_directory(runner, tmp_path / "data")
    photos = card(tmp_path, copies=4)
    opts = PublishOptions(
        purpose=Purpose.WEBSITE, out_dir=tmp_path / "out", operator="office", event="Sports day"
    )
    victim = loopback.workers[0]

    def kill_after_first(done: int, total: int, result: object) -> None:
        if done == 1:  # 7 photos still to come, up to 4 of them out on the workers
            loopback.kill(victim)

    with open_store(data) as store:
        with DaskCluster(
            loopback.address, ClientCerts.in_folder(loopback.certs), detection=opts.detection
        ) as cluster:
            report = publish(store, [photos], opts, progress=kill_after_first, mapper=cluster)
        entries = audit.entries(store, action="publish")
        rows = journal.finished(store, report.batch)

    assert victim.poll() is not None
    assert [r.status for r in report.results] == [PhotoStatus.PUBLISHED] * 8
    names = [Path(str(r.output)).name for r in report.results]
    assert names == [f"sports-day-{n:04d}.jpg" for n in range(1, 9)]
    assert sorted(e.details["output"] for e in entries) == names
    assert len(rows) == 8
    # Whichever worker did it, each copy of a photo came out byte for byte the same.
    by_input: dict[str, set[bytes]] = {}
    for r in report.results:
        original = Path(r.input).stem.rsplit("-", 1)[0]
        by_input.setdefault(original, set()).add(Path(str(r.output)).read_bytes())
    assert {k: len(v) for k, v in by_input.items()} == {"IMG_0001": 1, "IMG_0002": 1}


@pytest.mark.slow
def test_a_client_killed_mid_batch_resumes_without_duplicates(
    loopback: Loopback, runner: CliRunner, tmp_path: Path
) -> None:
    data = data_directory(runner, tmp_path / "data")
    photos = card(tmp_path, copies=2)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "cli", "--data-dir", str(data), "publish"]
    command += ["--purpose", "website", "--event", "Sports day", "--operator", "office", "-q"]
    command += ["--out", str(out), "--cluster", loopback.address]
    command += ["--cluster-certs", str(loopback.certs), str(photos)]
    env = loopback.env(PHOTOCONSENT_TEST_KILL="committed:2")

    killed = subprocess.run(command, env=env, cwd=REPO, capture_output=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode(errors="replace")
    again = subprocess.run(command, env=loopback.env(), cwd=REPO, capture_output=True, timeout=600)

    assert again.returncode == 0, again.stderr.decode(errors="replace")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [p["status"] for p in report["photos"]] == ["published"] * 4
    assert report["summary"]["resumed"] == 2
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    names = [f"sports-day-{n:04d}.jpg" for n in range(1, 5)]
    assert visible == sorted([*names, "captions.csv", "report.json"])
    assert sorted(d["output"] for d in audit_details(data)) == names  # type: ignore[type-var]


@pytest.mark.slow
def test_a_photo_that_keeps_killing_workers_is_withheld_with_the_reason(
    runner: CliRunner, tmp_path: Path
) -> None:
    data = data_directory(runner, tmp_path / "data")
    photos = card(tmp_path, copies=1)
    out = tmp_path / "out"
    # Each worker dies on IMG_0002-0.jpg; the scheduler gives up after its second death.
    with started_cluster(
        tmp_path,
        runner,
        {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"},
        {"PHOTOCONSENT_TEST_WORKER_EXIT": "IMG_0002-0.jpg"},
    ) as cluster:
        result = runner.invoke(
            main,
            ["--data-dir", str(data), "publish", "--purpose", "website", "--out", str(out)]
            + ["--cluster", cluster.address, "--cluster-certs", str(cluster.certs), "-q"]
            + [str(photos)],
        )

    assert result.exit_code == 1, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    by_name = {Path(p["input"]).name: p for p in report["photos"]}
    assert by_name["IMG_0001-0.jpg"]["status"] == "published"
    assert by_name["IMG_0002-0.jpg"]["status"] == "withheld"
    assert "cluster workers kept dying" in by_name["IMG_0002-0.jpg"]["reason"]
    assert sorted(p.name for p in out.iterdir()) == [
        "captions.csv",
        "event-0001.jpg",
        "report.json",
    ]
    with open_store(data) as store:
        [withhold] = audit.entries(store, action="withhold")
    assert withhold.details["detection"]["cluster"]["workers"] == 2


@pytest.mark.slow
def test_a_lost_scheduler_withholds_the_rest_with_the_reason(
    loopback: Loopback, runner: CliRunner, tmp_path: Path
) -> None:
    data = data_directory(runner, tmp_path / "data")
    photos = card(tmp_path, copies=4)  # 8: the last ones are not even sent when it goes
    opts = PublishOptions(purpose=Purpose.WEBSITE, out_dir=tmp_path / "out", operator="office")
    scheduler = loopback.scheduler
    assert scheduler is not None

    def kill_scheduler_after_first(done: int, total: int, result: object) -> None:
        if done == 1:
            loopback.kill(scheduler)

    with open_store(data) as store:
        with DaskCluster(
            loopback.address, ClientCerts.in_folder(loopback.certs), detection=opts.detection
        ) as cluster:
            report = publish(
                store, [photos], opts, progress=kill_scheduler_after_first, mapper=cluster
            )

    assert report.results[0].status is PhotoStatus.PUBLISHED
    # What had already come back may still be published; the rest is withheld, saying why.
    assert report.results[-1].status is PhotoStatus.WITHHELD
    for result in report.withheld:
        assert "connection to the cluster was lost" in result.reason
    published = [Path(str(r.output)).name for r in report.published]
    visible = sorted(p.name for p in opts.out_dir.iterdir())
    assert visible == sorted(["captions.csv", "report.json", *published])


@pytest.mark.slow
def test_a_worker_that_may_spill_to_disk_is_refused(loopback: Loopback, tmp_path: Path) -> None:
    loopback.start_worker(
        DASK_DISTRIBUTED__WORKER__MEMORY__TARGET="0.6",
        DASK_DISTRIBUTED__WORKER__MEMORY__SPILL="0.7",
    )
    loopback.wait_for_workers(3)

    with pytest.raises(ClusterUnavailable, match="may write photos and face data to their disk"):
        with DaskCluster(
            loopback.address, ClientCerts.in_folder(loopback.certs), detection=DetectionSettings()
        ):
            pass


def test_the_work_sent_to_workers_carries_no_captions_or_names(tmp_path: Path) -> None:
    from pipeline.analysis import Gallery
    from publishing.cluster import _for_workers

    opts = PublishOptions(
        purpose=Purpose.WEBSITE,
        out_dir=tmp_path / "Year 3 Smith",
        operator="Mrs Jones",
        event="Amy's party",
        destination="https://school.example/gallery",
        candidates=frozenset({"P001"}),
        captions={"IMG_1.jpg": "Amy Smith wins"},
        caption="Amy and Ben",
    )
    work = PhotoWork(opts, Gallery(encodings={}, permitted={}), None)

    sent = _for_workers(work)

    for text in ("Smith", "Jones", "Amy", "school.example", "P001"):
        assert text not in repr(sent.options)
    assert sent.options.style == opts.style and sent.options.detection == opts.detection
    assert work.options is opts  # the batch's own work is untouched
    assert isinstance(sent.process(SAMPLES / "event" / "missing.jpg"), Processed)


def test_a_worker_keeps_its_copy_of_the_batch_only_until_the_batch_ends(tmp_path: Path) -> None:
    from pipeline.analysis import Gallery
    from publishing import cluster

    opts = PublishOptions(purpose=Purpose.WEBSITE, out_dir=tmp_path, operator="office")
    work = PhotoWork(opts, Gallery(encodings={}, permitted={}), no_faces)
    photo = SAMPLES / "event" / "IMG_0002.jpg"

    sent = cluster._process_remote(work, "batch-a", photo.name, photo.read_bytes())
    from_share = cluster._process_remote(work, "batch-a", photo.name, str(photo))
    missing = cluster._process_remote(work, "batch-a", "gone.jpg", str(tmp_path / "gone.jpg"))

    assert sent.error is None and sent.data == from_share.data
    assert missing.error == cluster.NOT_ON_SHARED_STORAGE
    assert "batch-a" in cluster._copies
    cluster._drop_batch("batch-a")
    assert "batch-a" not in cluster._copies


class Done:
    """A finished Dask future's stand-in."""

    def __init__(self, value: object) -> None:
        self.value = value

    def result(self, timeout: float | None = None) -> object:
        return self.value

    def done(self) -> bool:
        return True

    def release(self) -> None:
        pass


class SchedulerLostAfter:
    """A Dask client's stand-in that runs tasks here and loses its scheduler after
    ``n`` submissions (Client.submit raises once the client has closed)."""

    status = "running"

    def __init__(self, n: int) -> None:
        self.n, self.submitted = n, 0

    def scatter(self, work: object, **kw: object) -> Done:
        return Done(work)

    def nthreads(self) -> dict[str, int]:
        return {"tls://127.0.0.1:1": 1}

    def submit(self, fn, work: Done, *args: object, **kw: object) -> Done:  # noqa: ANN001
        self.submitted += 1
        if self.submitted > self.n:
            raise OSError("the client has closed")
        return Done(fn(work.value, *args))

    def run(self, *args: object, **kw: object) -> None:
        pass


def test_photos_after_the_scheduler_is_lost_are_withheld_in_order(tmp_path: Path) -> None:
    from pipeline.analysis import Gallery
    from publishing.cluster import LOST_SCHEDULER

    opts = PublishOptions(purpose=Purpose.WEBSITE, out_dir=tmp_path, operator="office")
    work = PhotoWork(opts, Gallery(encodings={}, permitted={}), no_faces)
    photos = sorted((SAMPLES / "event").glob("*.jpg")) * 3
    cluster = DaskCluster(
        "tls://127.0.0.1:1", ClientCerts(tmp_path, tmp_path, tmp_path), detection=opts.detection
    )
    cluster._client = SchedulerLostAfter(2)  # type: ignore[assignment]

    outcomes = list(cluster.map(work, photos))

    assert len(outcomes) == 6
    assert [o.error for o in outcomes] == [None, None] + [LOST_SCHEDULER] * 4
    assert outcomes[0].data != outcomes[1].data  # in input order: two different photos
