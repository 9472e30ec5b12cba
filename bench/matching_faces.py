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
        marks = dlib_landmarks(px, [box])[0]
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
