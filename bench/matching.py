"""Recognisers side by side, measured on children (FG-NET) and adults (LFW).

Usage:
    PYTHONPATH=. .venv/bin/python bench/matching.py [EVAL_DIR] [--repeats 5]

Encodes the largest face (dlib HOG detector) of each photo in ``fgnet_children/`` and
``lfw/`` under EVAL_DIR (default ``../shared/eval``) with every recogniser, caching the
embeddings in /tmp. Prints, per recogniser (dlib, sface, fusion of both z-normalised on
adult impostor pairs):
- a DET table: true match rate at false match rate 1e-2, 1e-3, 1e-4, children and adults;
- the children open set: half the children enrolled (with 1 and with 3 references), the
  other half strangers; false keeps per 1,000 stranger photos and wrong-child keeps at
  gallery 10 and all, genuine photos kept, for a sweep of tolerances with the recogniser's
  margin; and with the review band, the share of genuine photos that are kept or reach
  review and the strangers among the review faces;
- the time to encode one face.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.boxes import Box  # noqa: E402
from pipeline.recognisers import DlibRecogniser, SFaceRecogniser  # noqa: E402

CACHE = Path("/tmp/photoconsent-bench-matching.npz")


def photos(eval_dir: Path) -> list[tuple[Path, str, str, int]]:
    out = []
    kids = eval_dir / "fgnet_children"
    with (kids / "identities.csv").open() as f:
        for row in csv.DictReader(f):
            out.append((kids / row["file"], "child", "c" + row["person"], int(row["age"])))
    for person in sorted((eval_dir / "lfw").iterdir()):
        if person.is_dir():
            for p in sorted(person.iterdir()):
                out.append((p, "adult", "a" + person.name, -1))
    return out


def encode_all(items):  # type: ignore[no-untyped-def]
    from PIL import Image

    from pipeline.matching import face_recognition_module

    fr = face_recognition_module()
    recs = {"dlib": DlibRecogniser(), "sface": SFaceRecogniser()}
    keep, embs, secs = [], {k: [] for k in recs}, {k: 0.0 for k in recs}
    for i, (path, *_rest) in enumerate(items):
        px = np.asarray(Image.open(path).convert("RGB"))
        locs = fr.face_locations(px, number_of_times_to_upsample=1)
        if not locs:
            continue
        t, r, b, left = max(locs, key=lambda q: (q[2] - q[0]) * (q[1] - q[3]))
        box = Box(left, t, r - left, b - t)
        got = {}
        for k, rec in recs.items():
            t0 = time.perf_counter()
            got[k] = rec.encode(px, [box])[0]
            secs[k] += time.perf_counter() - t0
        if any(v is None for v in got.values()):
            continue
        keep.append(i)
        for k in recs:
            embs[k].append(got[k])
    n = len(keep)
    return keep, {k: np.array(v) for k, v in embs.items()}, {k: secs[k] / max(n, 1) for k in recs}


def det(dist, same, mask):  # type: ignore[no-untyped-def]
    iu = np.triu_indices(len(dist), 1)
    m = mask[iu[0]] & mask[iu[1]]
    d, s = dist[iu][m], same[iu][m]
    imp = np.sort(d[~s])
    row = []
    for fmr in (1e-2, 1e-3, 1e-4):
        k = int(fmr * len(imp))
        thr = imp[k] if k < len(imp) else imp[-1]
        row.append(f"{100 * np.mean(d[s] < thr):5.1f}% (thr {thr:.3f})" if k >= 1 else "  n/a")
    return row, int((~s).sum()), int(s.sum())


def open_set(dist, persons, idx, n_refs, gallery, tol, margin, agreement, review, rng):  # type: ignore[no-untyped-def]
    by = {}
    for i in idx:
        by.setdefault(persons[i], []).append(i)
    people = sorted(by)
    rng.shuffle(people)
    half = len(people) // 2
    enrolled_pool = [p for p in people[:half] if len(by[p]) > n_refs]
    strangers = people[half:]
    enrolled = enrolled_pool[:gallery]
    refs = {p: rng.sample(by[p], n_refs) for p in enrolled}
    probes = [(i, p) for p in enrolled for i in by[p] if i not in refs[p]]
    probes += [(i, None) for p in strangers for i in by[p]]
    res = dict(gen=0, gen_kept=0, gen_review=0, str_=0, false_keep=0, wrong=0, rev_str=0, rev=0)
    for i, truth in probes:
        near = sorted((dist[i, refs[p]].min(), dist[i, refs[p]].mean(), p) for p in enrolled)
        top, mean, who = near[0]
        second = near[1][0] if len(near) > 1 else np.inf
        kept = top <= tol and second - top >= margin and (n_refs == 1 or mean <= tol + agreement)
        in_review = not kept and top <= review
        if truth is None:
            res["str_"] += 1
            res["false_keep"] += kept
        else:
            res["gen"] += 1
            res["gen_kept"] += kept and who == truth
            res["wrong"] += kept and who != truth
            res["gen_review"] += (kept or in_review) and who == truth
        if in_review:
            res["rev"] += 1
            res["rev_str"] += who != truth
    return res


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("eval_dir", nargs="?", default=str(ROOT.parent / "shared" / "eval"))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    items = photos(Path(args.eval_dir))
    if CACHE.exists():
        z = np.load(CACHE, allow_pickle=True)
        keep, embs, secs = (
            list(z["keep"]),
            {"dlib": z["dlib"], "sface": z["sface"]},
            z["secs"].item(),
        )
    else:
        keep, embs, secs = encode_all(items)
        np.savez(
            CACHE,
            keep=keep,
            dlib=embs["dlib"],
            sface=embs["sface"],
            secs=np.array(secs, dtype=object),
        )
    kind = np.array([items[i][1] for i in keep])
    persons = np.array([items[i][2] for i in keep])
    same = persons[:, None] == persons[None, :]
    child, adult = kind == "child", kind == "adult"
    print(f"faces encoded: {child.sum()} children, {adult.sum()} adults; of {len(items)} photos")
    print("encode time per face: " + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in secs.items()))
    d = embs["dlib"]
    s = embs["sface"] / np.linalg.norm(embs["sface"], axis=1, keepdims=True)
    dists = {
        "dlib": np.linalg.norm(d[:, None] - d[None], axis=2),
        "sface": 1.0 - s @ s.T,
    }
    iu = np.triu_indices(len(persons), 1)
    adult_imp = adult[iu[0]] & adult[iu[1]] & ~same[iu]
    z = {}
    for k, m in dists.items():
        mu, sd = m[iu][adult_imp].mean(), m[iu][adult_imp].std()
        z[k] = (m - mu) / sd
    dists["fusion"] = (z["dlib"] + z["sface"]) / 2
    print("\nDET: true match rate at a false match rate of 1e-2 / 1e-3 / 1e-4")
    for k, m in dists.items():
        for label, mask in (("children", child), ("adults", adult)):
            row, n_imp, n_gen = det(m, same, mask)
            print(
                f"  {k:7s} {label:9s} {' | '.join(row)}   ({n_gen} genuine, {n_imp} impostor pairs)"
            )
    kids = list(np.flatnonzero(child))
    n_kids = len(set(persons[kids]))
    # (tolerance, margin, agreement, review band) per recogniser; the first row of each is
    # the recogniser's calibrated default (pipeline/recognisers.py).
    sweeps = {
        "dlib": [(0.34, 0.08, 0.10, 0.45), (0.36, 0.08, 0.10, 0.50), (0.40, 0.08, 0.10, 0.50)],
        "sface": [
            (t, m, 0.10, r) for t in (0.28, 0.32, 0.36) for m in (0.08, 0.12) for r in (0.45, 0.50)
        ],
        "fusion": [(t, m, 0.5, r) for t in (-6.0, -5.5, -5.0) for m in (0.5, 1.0) for r in (-4.5,)],
    }
    print(
        f"\nChildren open set ({n_kids} children; half enrolled, half strangers; {args.repeats} draws)"  # noqa: E501
    )
    print(
        "  recogniser tol/margin/review    gallery refs  false keeps/1000  wrong-child  genuine kept  kept+review  strangers in review"  # noqa: E501
    )
    for k, rows in sweeps.items():
        for tol, margin, agreement, review in rows:
            for gallery in (10, 38):
                for n_refs in (1, 3):
                    tot = dict.fromkeys(
                        (
                            "gen",
                            "gen_kept",
                            "gen_review",
                            "str_",
                            "false_keep",
                            "wrong",
                            "rev_str",
                            "rev",
                        ),
                        0,
                    )
                    for rep in range(args.repeats):
                        r = open_set(
                            dists[k],
                            persons,
                            kids,
                            n_refs,
                            gallery,
                            tol,
                            margin,
                            agreement,
                            review,
                            random.Random(rep),
                        )
                        for key in tot:
                            tot[key] += r[key]
                    print(
                        f"  {k:9s} {tol:5.2f}/{margin:4.2f}/{review:5.2f}  {gallery:7d} {n_refs:4d}  {1000 * tot['false_keep'] / max(tot['str_'], 1):14.1f}"  # noqa: E501
                        f"  {tot['wrong']:11d}  {100 * tot['gen_kept'] / max(tot['gen'], 1):11.1f}%"
                        f"  {100 * tot['gen_review'] / max(tot['gen'], 1):10.1f}%"
                        f"  {100 * tot['rev_str'] / max(tot['rev'], 1):8.1f}% of {tot['rev']}"
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
