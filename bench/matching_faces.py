"""The faces bench/matching.py measures: one face per photo, encoded by every recogniser.

Not a benchmark by itself; ``faces(eval_dir)`` returns the embeddings (cached in /tmp, so
that sweeping the rule does not re-run the networks) and the time each stage took.

- children: ``fgnet_children/`` photos at ages 3-16 (FG-NET subjects photographed year
  after year); FG-NET photos of the same people at 17 and over are adults;
- adults: ``lfw/`` (LFW), plus those FG-NET adults.

The face is the largest one dlib's HOG detector finds (upsampled once); a photo where it
finds none, or where dlib's landmarks cannot be placed, is left out and counted.
"""

from __future__ import annotations

import csv
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.boxes import Box  # noqa: E402
from pipeline.recognisers import (  # noqa: E402
    DlibRecogniser,
    SFaceRecogniser,
    align,
    dlib_landmarks,
    five_points,
)

CHILD_AGES = range(3, 17)


@dataclass
class Faces:
    files: list[str]
    kind: np.ndarray  # "child" or "adult"
    person: np.ndarray
    age: np.ndarray  # years; -1 where unknown (LFW)
    dlib: np.ndarray  # (n, 128)
    sface: np.ndarray  # (n, 128), unit length
    points5: np.ndarray  # (n, 5, 2) the five alignment points, in photo pixels
    box_px: np.ndarray  # face box side (the shorter), pixels
    ms: dict[str, float]  # mean milliseconds per face, by stage
    photos: int  # photos considered (including those left out)


def photo_list(eval_dir: Path) -> list[tuple[Path, str, str, int]]:
    out = []
    kids = eval_dir / "fgnet_children"
    with (kids / "identities.csv").open() as f:
        for row in csv.DictReader(f):
            age = int(row["age"])
            if age < CHILD_AGES.start:
                continue  # babies: not school age, and not what enrolment sees
            kind = "child" if age in CHILD_AGES else "adult"
            out.append((kids / row["file"], kind, "f" + row["person"], age))
    lfw = eval_dir / "lfw"
    with (lfw / "identities.csv").open() as f:
        for row in csv.DictReader(f):
            out.append((lfw / row["file"], "adult", "l" + row["person"], -1))
    return out


def _encode(items: list[tuple[Path, str, str, int]]) -> Faces:
    from PIL import Image

    from pipeline.matching import face_recognition_module

    fr = face_recognition_module()
    dlib_rec, sface_rec = DlibRecogniser(), SFaceRecogniser()
    sface_rec.embed_aligned([np.zeros((112, 112, 3), np.uint8)])  # load the model first
    fr.face_encodings(np.zeros((150, 150, 3), np.uint8), [(0, 150, 150, 0)])
    rows: dict[str, list] = {k: [] for k in ("i", "dlib", "sface", "p5", "px")}
    secs = dict.fromkeys(("dlib", "landmarks68", "sface_net"), 0.0)
    for i, (path, *_rest) in enumerate(items):
        px = np.asarray(Image.open(path).convert("RGB"))
        locs = fr.face_locations(px, number_of_times_to_upsample=1)
        if not locs:
            continue
        t, r, b, left = max(locs, key=lambda q: (q[2] - q[0]) * (q[1] - q[3]))
        box = Box(left, t, r - left, b - t)
        t0 = time.perf_counter()
        d = dlib_rec.encode(px, [box])[0]
        t1 = time.perf_counter()
        marks = dlib_landmarks(px, [box], hog_boxes=True)[0]
        t2 = time.perf_counter()
        if d is None or marks is None:
            continue
        p5 = five_points(marks)
        s = sface_rec.embed_aligned([align(px, p5)])[0]
        t3 = time.perf_counter()
        secs["dlib"] += t1 - t0
        secs["landmarks68"] += t2 - t1
        secs["sface_net"] += t3 - t2
        rows["i"].append(i)
        rows["dlib"].append(d)
        rows["sface"].append(s)
        rows["p5"].append(p5)
        rows["px"].append(min(box.w, box.h))
    n = max(len(rows["i"]), 1)
    idx = rows["i"]
    return Faces(
        files=[str(items[i][0]) for i in idx],
        kind=np.array([items[i][1] for i in idx]),
        person=np.array([items[i][2] for i in idx]),
        age=np.array([items[i][3] for i in idx]),
        dlib=np.array(rows["dlib"]),
        sface=np.array(rows["sface"]),
        points5=np.array(rows["p5"]),
        box_px=np.array(rows["px"]),
        ms={k: 1000 * v / n for k, v in secs.items()},
        photos=len(items),
    )


def faces(eval_dir: Path, refresh: bool = False) -> Faces:
    """Every usable face under ``eval_dir``, from the /tmp cache when it is current."""
    items = photo_list(eval_dir)
    key = hashlib.sha256(
        "\n".join(f"{p}|{k}|{who}|{a}" for p, k, who, a in items).encode()
    ).hexdigest()[:16]
    cache = Path(f"/tmp/photoconsent-bench-faces-{key}.npz")
    if cache.exists() and not refresh:
        z = np.load(cache, allow_pickle=True)
        return Faces(
            files=list(z["files"]),
            kind=z["kind"],
            person=z["person"],
            age=z["age"],
            dlib=z["dlib"],
            sface=z["sface"],
            points5=z["points5"],
            box_px=z["box_px"],
            ms=z["ms"].item(),
            photos=int(z["photos"]),
        )
    f = _encode(items)
    np.savez(
        cache,
        files=np.array(f.files),
        kind=f.kind,
        person=f.person,
        age=f.age,
        dlib=f.dlib,
        sface=f.sface,
        points5=f.points5,
        box_px=f.box_px,
        ms=np.array(f.ms, dtype=object),
        photos=f.photos,
    )
    return f


if __name__ == "__main__":
    got = faces(ROOT.parent / "shared" / "eval", refresh="--refresh" in sys.argv)
    print(
        f"{len(got.files)} faces of {got.photos} photos; "
        f"{(got.kind == 'child').sum()} children; ms per face {got.ms}"
    )


@dataclass
class ProductFaces:
    """The same photos (``Faces.files``, in order) through the product's own path, as
    ``publish`` and ``enroll`` see them: the detection stage's largest face (not dlib's
    HOG box), the quality gates of pipeline.analysis and the reference gate of enrolment."""

    sface: np.ndarray  # (n, 128) unit length; zeros where no face was found or encoded
    found: np.ndarray  # bool: the detection stage found a face and SFace encoded it
    size_px: np.ndarray
    sharpness: np.ndarray
    yaw: np.ndarray  # degrees; nan without landmarks
    reference_ok: np.ndarray  # bool: enrolment would accept the photo as a reference

    def gated(self, settings) -> np.ndarray:  # type: ignore[no-untyped-def]
        """bool: matching compares this face at all (pipeline.analysis's gates)."""
        yaw_ok = np.abs(np.nan_to_num(self.yaw, nan=0.0)) <= (settings.max_yaw or 1e9)
        return ~(
            self.found
            & (self.size_px >= settings.min_face_px)
            & (self.sharpness >= settings.min_sharpness)
            & yaw_ok
        )


def product_faces(files: list[str], refresh: bool = False) -> ProductFaces:
    """`ProductFaces` of ``files`` (cached in /tmp like `faces`)."""
    key = hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]
    cache = Path(f"/tmp/photoconsent-bench-product-faces-{key}.npz")
    if cache.exists() and not refresh:
        z = np.load(cache)
        return ProductFaces(**{k: z[k] for k in z.files})
    from pipeline.detection import DetectionSettings, DetectionStage
    from pipeline.errors import EnrolmentRejected
    from pipeline.loading import load_image
    from pipeline.matching import sharpness, yaw_from_landmarks
    from pipeline.references import reference_from_photo

    stage, rec = DetectionStage(DetectionSettings()), SFaceRecogniser()
    n = len(files)
    out = ProductFaces(
        np.zeros((n, 128)),
        np.zeros(n, bool),
        np.zeros(n),
        np.zeros(n),
        np.full(n, np.nan),
        np.zeros(n, bool),
    )
    for i, path in enumerate(files):
        loaded = load_image(Path(path))
        px = loaded.pixels
        dets = stage.detect(px, orientation_known=loaded.orientation_tagged)
        if not dets:
            continue
        box = max(dets, key=lambda d: d.box.area).box
        marks = dlib_landmarks(px, [box])[0]
        out.size_px[i], out.sharpness[i] = box.size, sharpness(px, box)
        out.yaw[i] = np.nan if marks is None else yaw_from_landmarks(five_points(marks))
        enc = rec.encode(px, [box])[0]
        if enc is not None:
            out.sface[i], out.found[i] = enc, True
        try:
            reference_from_photo(Path(path), stage, rec)
            out.reference_ok[i] = True
        except EnrolmentRejected:
            pass
    np.savez(cache, **{k: getattr(out, k) for k in ProductFaces.__dataclass_fields__})
    return out
