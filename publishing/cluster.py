"""Publishing on a Dask distributed cluster: the per-photo work on other computers.

`DaskCluster` is a `publishing.workers.PhotoMapper`, like this computer's process pool:
the workers compute and return each photo's encoded bytes and face decisions; this
process stays the single writer of outputs, journal and audit, and takes results in input
order, so names, report, audit and resuming are exactly those of a local publish.

What travels (all over mutual TLS, see `publishing.cluster_certs`; any other address is
refused before connecting):

- to every worker, once per batch: the batch's `PhotoWork` (the gallery of the candidate
  pupils' encodings, who of them may be kept, sibling links, and the detection, matching,
  redaction and output settings), scattered into the workers' memory and released when
  the batch ends. Captions, the operator, the event, the destination and the output
  folder stay here: workers have no use for them.
- per photo: its bytes and its file name (or, with ``shared_storage``, its path on
  storage every worker reads); back: the encoded photo and its face decisions.

Workers need photoconsent installed (the same version, detecting the same way, checked
before anything is sent) and nothing else: no data directory, no keys.

A worker lost mid-task has its photos retried on another by the scheduler (up to its
``distributed.scheduler.allowed-failures``, 3 by default); a photo that keeps killing
workers is withheld with the reason, as is every photo still out when the scheduler is
lost or no worker is left. Run the same command again to finish the batch.
"""

from __future__ import annotations

import collections
import os
import pickle
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import __version__
from pipeline.detection import opencv_threads
from pipeline.errors import InvalidOptions, PipelineError
from pipeline.loading import read_photo_bytes
from publishing.cluster_certs import CA_CERT, cert_name, key_name
from publishing.workers import QUEUE_PER_WORKER, PhotoWork, Processed, withheld_reason

if TYPE_CHECKING:
    from distributed import Client, Future

    from pipeline.detection import DetectionSettings

TLS = "tls://"
# Task retries after an error raised on a worker (not a photo's own failure: PhotoWork
# catches those and withholds the photo), e.g. a worker short of memory to unpickle it.
RETRIES = 2
CONNECT_TIMEOUT_S = 30
WORKER_WAIT_S = 60
# How long the batch waits with no worker at all before withholding what is left.
NO_WORKER_GRACE_S = 120
POLL_S = 5

LOST_SCHEDULER = (
    "the connection to the cluster was lost before this photo came back; check the "
    "scheduler computer, then run the same command again to finish the batch"
)
NO_WORKERS_LEFT = (
    "no cluster worker was left to process this photo; start the workers again, then run "
    "the same command again to finish the batch"
)

NOT_ON_SHARED_STORAGE = (
    "a cluster worker cannot see this photo at its path; with --shared-storage every "
    "worker must reach the photos under the same path as this computer (or leave "
    "--shared-storage out to send the photos themselves)"
)


class InsecureCluster(InvalidOptions):
    """A cluster address or worker that does not use TLS: nothing is sent to it."""


class ClusterUnavailable(PipelineError):
    """The cluster cannot be reached, has no workers, or its workers cannot run the batch."""


def check_address(address: str) -> str:
    """``address`` if it is a ``tls://HOST:PORT`` address, else raise `InsecureCluster`.

    Checked before any connection, so pupils' face encodings never leave in clear.
    """
    text = address.strip()
    shown = repr(address)
    if not text.lower().startswith(TLS) or not text[len(TLS) :].strip("/"):
        scheme = text.split("://", 1)[0] + "://" if "://" in text else None
        why = (
            f"it uses {scheme}, which is not encrypted"
            if scheme
            else "it does not say tls://, so the connection would not be encrypted"
        )
        raise InsecureCluster(
            f"--cluster {shown} refused: {why}. Pupils' face data must never cross the "
            "network in clear: give the scheduler's address as tls://HOST:8786 and start "
            "the scheduler and workers with the certificates of `photoconsent cluster "
            "certs` (see docs/cluster.md)."
        )
    return TLS + text[len(TLS) :]


@dataclass(frozen=True)
class ClientCerts:
    """The files this computer shows the cluster: the CA and the client's certificate."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def in_folder(cls, folder: Path) -> ClientCerts:
        """The client's files in a folder made by `photoconsent cluster certs` (or a copy
        holding ``ca.pem``, ``client.pem`` and ``client-key.pem``)."""
        certs = cls(folder / CA_CERT, folder / cert_name("client"), folder / key_name("client"))
        missing = [p.name for p in (certs.ca, certs.cert, certs.key) if not p.is_file()]
        if missing:
            raise InvalidOptions(
                f"--cluster-certs {folder} lacks {', '.join(missing)}; give the folder made "
                "by `photoconsent cluster certs` (or a copy of its ca.pem, client.pem and "
                "client-key.pem)."
            )
        return certs


class DaskCluster:
    """The per-photo work of a batch on the Dask cluster at ``address`` (``tls://`` only).

    A context manager: entering connects with ``certs``, waits up to ``worker_wait`` s for
    a worker and checks every worker (TLS address, photoconsent version, detection); the
    batch's `map` runs inside it. ``shared_storage`` sends each photo's path instead of
    its bytes, for inputs on storage every worker reads under the same path.
    """

    def __init__(
        self,
        address: str,
        certs: ClientCerts,
        *,
        detection: DetectionSettings,
        shared_storage: bool = False,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        worker_wait: float = WORKER_WAIT_S,
        no_worker_grace: float = NO_WORKER_GRACE_S,
    ) -> None:
        self.address = check_address(address)
        self.certs = certs
        self.detection = detection
        self.shared_storage = shared_storage
        self.connect_timeout, self.worker_wait = connect_timeout, worker_wait
        self.no_worker_grace = no_worker_grace
        self.workers = 0
        self._client: Client | None = None

    def __enter__(self) -> DaskCluster:
        from distributed import Client
        from distributed.security import Security

        security = Security(
            tls_ca_file=str(self.certs.ca),
            tls_client_cert=str(self.certs.cert),
            tls_client_key=str(self.certs.key),
            require_encryption=True,
        )
        try:
            self._client = Client(
                self.address,
                security=security,
                timeout=self.connect_timeout,
                set_as_default=False,
            )
        except (OSError, TimeoutError) as exc:
            raise ClusterUnavailable(
                f"cannot reach the cluster scheduler at {self.address} within "
                f"{self.connect_timeout:g} s ({_plain(exc)}). Check that `dask scheduler` runs "
                "there with the certificates, that the port is open, and that this "
                "computer's client certificate comes from the same `photoconsent cluster "
                "certs` folder."
            ) from exc
        try:
            self._check_workers()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def describe(self) -> dict[str, object]:
        """For the audit, beside the detection settings: where the faces were decided."""
        return {
            "cluster": {
                "scheduler": self.address,
                "workers": self.workers,
                "shared_storage": self.shared_storage,
            }
        }

    def _check_workers(self) -> None:
        client = self._require_client()
        try:
            client.wait_for_workers(1, timeout=self.worker_wait)
        except TimeoutError as exc:
            raise ClusterUnavailable(
                f"the cluster at {self.address} has no workers (waited "
                f"{self.worker_wait:g} s); start `dask worker {self.address} ...` on the "
                "worker computers (docs/cluster.md)."
            ) from exc
        workers = client.scheduler_info(n_workers=-1)["workers"]
        clear = sorted(a for a in workers if not a.startswith(TLS))
        if clear:
            raise InsecureCluster(
                f"cluster worker(s) {', '.join(clear)} listen without TLS; nothing was sent. "
                "Start every worker with --tls-ca-file, --tls-cert and --tls-key."
            )
        facts = client.run(_worker_facts, self.detection)
        wanted = _worker_facts(self.detection)
        for addr, got in sorted(facts.items()):
            if got["version"] != wanted["version"]:
                raise ClusterUnavailable(
                    f"worker {addr} runs photoconsent {got['version']}, this computer "
                    f"{wanted['version']}; install the same version on every machine."
                )
            if got["detection"] != wanted["detection"]:
                raise ClusterUnavailable(
                    f"worker {addr} would detect faces differently from this computer "
                    f"({_difference(got['detection'], wanted['detection'])}); install "
                    "photoconsent the same way on every machine (`make install`)."
                )
        spilling = sorted(a for a, got in facts.items() if got["spills"])
        if spilling:
            raise ClusterUnavailable(
                f"cluster worker(s) {', '.join(spilling)} may write photos and face data to "
                "their disk when memory runs short; nothing was sent. Start them with "
                "DASK_DISTRIBUTED__WORKER__MEMORY__TARGET=False and "
                "DASK_DISTRIBUTED__WORKER__MEMORY__SPILL=False (docs/cluster.md)."
            )
        self.workers = len(facts)

    def _require_client(self) -> Client:
        if self._client is None:
            raise RuntimeError("DaskCluster is used outside its `with` block")
        return self._client

    def map(self, work: PhotoWork, photos: Sequence[Path]) -> Iterator[Processed]:
        """Each photo's outcome, in the order of ``photos``; see the module's docstring."""
        if not photos:
            return
        client = self._require_client()
        _require_picklable(work)
        token = secrets.token_hex(6)
        lost: str | None = None
        try:
            shared = client.scatter(_for_workers(work), broadcast=True, hash=False)
            threads = sum(client.nthreads().values()) or 1
        except Exception:  # noqa: BLE001 - the cluster went between connecting and now
            lost, threads = LOST_SCHEDULER, 1
        window = max(2, QUEUE_PER_WORKER * threads)
        pending: collections.deque[tuple[int, Future[Processed] | Processed]]
        pending = collections.deque()
        todo = collections.deque(enumerate(photos))
        try:
            while todo or pending:
                while todo and len(pending) < window and lost is None:
                    i, photo = todo.popleft()
                    try:
                        task = self._submit(client, shared, token, i, photo)
                    except Exception:  # noqa: BLE001 - the client lost its scheduler
                        lost = LOST_SCHEDULER
                        task = Processed(error=lost)
                    pending.append((i, task))
                if not pending:
                    # The cluster was lost: what was never sent is withheld, in order.
                    todo.popleft()
                    yield Processed(error=lost)
                    continue
                _, task = pending.popleft()
                if isinstance(task, Processed):
                    yield task
                    continue
                outcome, lost_now = self._outcome(client, task, lost)
                lost = lost or lost_now
                yield outcome
        finally:
            for _, task in pending:
                if not isinstance(task, Processed):
                    task.release()
            if lost is None:  # a lost cluster has dropped it already
                self._drop(client, shared, token)

    def _submit(
        self, client: Client, shared: Future[PhotoWork], token: str, i: int, photo: Path
    ) -> Future[Processed] | Processed:
        if self.shared_storage:
            payload: bytes | str = str(Path(photo).absolute())
        else:
            try:
                payload = read_photo_bytes(photo)
            except Exception as exc:  # fail closed, as a worker would: withheld with the reason
                return Processed(error=withheld_reason(exc))
        # A neutral task key: the scheduler's logs and dashboard never show a file name.
        return client.submit(
            _process_remote,
            shared,
            token,
            photo.name,
            payload,
            key=f"photoconsent-{token}-{i:06d}",
            retries=RETRIES,
            pure=False,
        )

    def _outcome(
        self, client: Client, task: Future[Processed], lost: str | None
    ) -> tuple[Processed, str | None]:
        """The task's `Processed`, or a withheld one; and why the cluster is gone, if it is."""
        from distributed import KilledWorker

        if lost is not None:
            # The cluster is gone: only what had already come back can still be had.
            try:
                if task.done():
                    return task.result(timeout=POLL_S), lost
            except Exception:  # noqa: BLE001, S110 - lost with the cluster
                pass
            task.release()
            return Processed(error=lost), lost
        alone_since: float | None = None
        while True:
            try:
                return task.result(timeout=POLL_S), None
            except TimeoutError:
                pass
            except KilledWorker:
                return Processed(error=_killed_reason()), None
            except Exception as exc:  # noqa: BLE001 - the cluster's own failures
                if client.status in ("closing", "closed") or _is_cancelled(exc):
                    return Processed(error=LOST_SCHEDULER), LOST_SCHEDULER
                return Processed(error=withheld_reason(exc)), None
            if client.status in ("closing", "closed"):
                task.release()
                return Processed(error=LOST_SCHEDULER), LOST_SCHEDULER
            try:
                alive = bool(client.nthreads())
            except Exception:  # noqa: BLE001 - the scheduler itself is unreachable
                alive = False
            if alive:
                alone_since = None
            elif alone_since is None:
                alone_since = time.monotonic()
            elif time.monotonic() - alone_since > self.no_worker_grace:
                task.release()
                return Processed(error=NO_WORKERS_LEFT), NO_WORKERS_LEFT

    def _drop(self, client: Client, shared: Future[PhotoWork], token: str) -> None:
        """Release the batch's gallery from the workers' memory (and their own copies)."""
        try:
            shared.release()
            client.run(_drop_batch, token, on_error="ignore")
        except Exception:  # noqa: BLE001, S110 - a lost cluster has dropped it already
            pass


def _killed_reason() -> str:
    return (
        "cluster workers kept dying while processing this photo (out of memory, or "
        "computers switched off?); run the same command again to try it once more, or "
        "publish it on one computer"
    )


def _is_cancelled(exc: BaseException) -> bool:
    from concurrent.futures import CancelledError

    return isinstance(exc, CancelledError)


def _plain(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _difference(got: dict[str, object], wanted: dict[str, object]) -> str:
    keys = sorted(k for k in set(got) | set(wanted) if got.get(k) != wanted.get(k))
    return "; ".join(f"{k}: {got.get(k)!r} there, {wanted.get(k)!r} here" for k in keys[:3])


def _require_picklable(work: PhotoWork) -> None:
    try:
        pickle.dumps(_for_workers(work))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise InvalidOptions(
            "this batch's decisions cannot be sent to a cluster (they were made here, as "
            "a review's are); publish it without --cluster."
        ) from exc


def _for_workers(work: PhotoWork) -> PhotoWork:
    """``work`` without what workers have no use for: captions (pupils' names), the
    operator, event, destination, candidates' names and the output folder."""
    options = replace(
        work.options,
        captions=None,
        caption=None,
        operator="cluster",
        event="event",
        destination=None,
        candidates=None,
        out_dir=Path("."),
    )
    slim = PhotoWork.__new__(PhotoWork)
    slim.__dict__.update(work.__dict__)
    slim.options = options
    return slim


# --- on the workers ------------------------------------------------------------------

# Each worker thread's own copy of a batch's work (its models load once, on its first
# photo), by batch token then thread; dropped by `_drop_batch` when the batch ends.
_copies: dict[str, dict[int, PhotoWork]] = {}
_copies_lock = threading.Lock()


def _worker_facts(detection: DetectionSettings, dask_worker: Any = None) -> dict[str, Any]:
    """What must be the same on every machine for a photo to get the same decision, and
    whether this worker (``dask_worker``, given by `Client.run`) may spill task data (the
    gallery, photos) to its disk when memory runs short: a plain dict never does."""
    spills = dask_worker is not None and type(dask_worker.data) is not dict
    return {"version": __version__, "detection": detection.describe(), "spills": spills}


def _process_remote(work: PhotoWork, token: str, name: str, payload: bytes | str) -> Processed:
    """One photo on a worker: ``payload`` is its bytes, or its path on shared storage."""
    _test_hook(name)
    me = threading.get_ident()
    with _copies_lock:
        batch = _copies.setdefault(token, {})
        mine = batch.get(me)
        if mine is None:
            # Threads of one worker must not share one detector; each gets its own copy.
            opencv_threads(1)
            mine = batch[me] = pickle.loads(pickle.dumps(work))
    if isinstance(payload, str):
        if not os.path.lexists(payload):
            return Processed(error=NOT_ON_SHARED_STORAGE)
        return mine.process(Path(payload))
    return mine.process(Path(name), payload)


def _test_hook(name: str) -> None:
    """For the cluster tests only: ``PHOTOCONSENT_TEST_WORKER_EXIT=NAME`` in a worker's
    environment makes it die at once, as if killed, on the photo NAME (a photo that kills
    every worker it reaches; see tests/publishing/test_cluster.py)."""
    if os.environ.get("PHOTOCONSENT_TEST_WORKER_EXIT") == name:
        os._exit(70)


def _drop_batch(token: str) -> None:
    with _copies_lock:
        _copies.pop(token, None)
