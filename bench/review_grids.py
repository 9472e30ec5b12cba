"""Review by pupil on real children: how many genuine photos reach the right pupil's grid,
and how many strangers the grids hold, through the product's own path.

On ``../shared/eval/fgnet_children`` (ages 3-16): half the children (by person number)
are enrolled with 1 or 3 references (the photos nearest their median age), the other
half are strangers. The event is every other photo of an enrolled child taken within two
years of one of their references, and every photo of a stranger. Each recogniser gets its
own data directory (its own calibrated rule and review band, as `publish --review` uses
them); the event goes through `publishing.review.batch.create_batch` and
`publishing.review.by_pupil.group_by_pupil`, exactly as a school's batch would.

Printed per recogniser and number of references, side by side:
  - genuine photos whose face is kept as the right child, and kept or in the right
    child's grid (what reaches a reviewer);
  - false keeps: stranger photos kept as a pupil (per 1,000), and photos kept as the
    wrong child;
  - the grids: how many, faces in them, the share of faces in a grid that are not that
    pupil, the worst grid's share, and how many grids exceed one in twenty;
  - with --why, every genuine photo that misses its pupil's grid: its face's reason, its
    distance to the nearest pupil and where it went, its sharpness.

A review batch compares faces below the keep's quality gates too (low-quality review,
pipeline.matching); "low-q" counts the genuine photos that reach their grid that way.

Issue 13's target: at least 90% of genuine photos reach a grid while no grid holds more
than one stranger in twenty faces. A photo's subject is its largest face; any other face
found in these single-person photos counts as "not the pupil" wherever it lands.

Run: PYTHONPATH=. python bench/review_grids.py [--refs 1 3] [--recognisers sface dlib] [--why]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from consent import enrolment  # noqa: E402
from consent.registry import Purpose, import_pupils_csv  # noqa: E402
from consent.store import init_data_dir, open_store  # noqa: E402
from pipeline.matching import Decision  # noqa: E402
from pipeline.recognisers import match_settings  # noqa: E402
from publishing.enrolling import enrol_photos  # noqa: E402
from publishing.options import PublishOptions  # noqa: E402
from publishing.review.batch import create_batch  # noqa: E402
from publishing.review.by_pupil import FaceKind, group_by_pupil  # noqa: E402

EVAL = REPO.parent / "shared" / "eval" / "fgnet_children"
ON = date(2026, 10, 1)
HEADER = (
    "pupil_id,first_name,last_name,class,website,press,social_media,prospectus,"
    "internal_display,biometric_consent,consent_date"
)


def children() -> dict[str, list[tuple[int, Path]]]:
    """person -> [(age, photo)] for ages 3 to 16, by age."""
    people: dict[str, list[tuple[int, Path]]] = defaultdict(list)
    with (EVAL / "identities.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            age = int(row["age"])
            if 3 <= age <= 16 and (EVAL / row["file"]).is_file():
                people[row["person"]].append((age, EVAL / row["file"]))
    return {p: sorted(v) for p, v in sorted(people.items()) if len(v) >= 2}


def split(people):  # type: ignore[no-untyped-def]
    """Enrolled children's reference candidates (nearest their median age first) and the
    event: (photo, person) for genuine probes and strangers."""
    persons = sorted(people)
    enrolled, strangers = persons[0::2], persons[1::2]
    candidates = {}
    for p in enrolled:
        photos = people[p]
        median = photos[len(photos) // 2][0]
        candidates[p] = sorted(photos, key=lambda ap: (abs(ap[0] - median), ap[0]))
    stranger_photos = [(path, p) for p in strangers for _, path in people[p]]
    return candidates, stranger_photos


def run(recogniser: str, n_refs: int, people) -> tuple[dict[str, float], list[str]]:  # type: ignore[no-untyped-def]
    candidates, stranger_photos = split(people)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        init_data_dir(data)
        registry = Path(tmp) / "pupils.csv"
        lines = [HEADER] + [
            f"C{p},Child,{p},3B,yes,no,no,no,yes,yes,2026-09-01" for p in sorted(candidates)
        ]
        registry.write_text("\n".join(lines) + "\n", encoding="utf-8")
        with open_store(data) as store:
            import_pupils_csv(store, registry, operator="bench")
            enrolment.set_recogniser(store, recogniser, operator="bench")
            refs: dict[str, list[tuple[int, Path]]] = {}
            for p, photos in candidates.items():
                # The first n photos (nearest the median age) that enrolment accepts.
                for age, path in photos:
                    if len(refs.get(p, [])) >= n_refs:
                        break
                    report = enrol_photos(store, [(f"C{p}", path)], operator="bench")
                    if report.outcomes[0].problem is None:
                        refs.setdefault(p, []).append((age, path))
            genuine = []
            for p, photos in candidates.items():
                used = {path for _, path in refs.get(p, [])}
                ages = [a for a, _ in refs.get(p, [])]
                genuine += [
                    (path, p)
                    for age, path in photos
                    if path not in used and ages and min(abs(age - a) for a in ages) <= 2
                ]
            event = genuine + stranger_photos
            truth = {str(path): p for path, p in event}
            options = PublishOptions(
                purpose=Purpose.WEBSITE,
                out_dir=Path(tmp) / "out",
                event="bench",
                operator="bench",
                on=ON,
                matching=match_settings(recogniser),
            )
            start = time.perf_counter()
            batch = create_batch(store, [path for path, _ in event], options)
            seconds = time.perf_counter() - start
    subject = {}
    for photo in batch.photos:
        if photo.faces:
            subject[photo.input] = max(photo.faces, key=lambda f: f.box[2] * f.box[3]).face_id
    enrolled = {f"C{p}" for p in refs}
    r = defaultdict(float)
    lost: list[str] = []
    r["seconds_per_photo"] = seconds / max(len(event), 1)
    r["pupils"] = len(enrolled)
    for photo in batch.photos:
        person = truth[photo.input]
        pid = f"C{person}"
        is_genuine = pid in enrolled
        r["genuine" if is_genuine else "strangers"] += 1
        face = next((f for f in photo.faces if f.face_id == subject.get(photo.input)), None)
        if face is None:
            if is_genuine:
                lost.append(f"{Path(photo.input).name}: no face found ({photo.withheld or 'none'})")
            continue
        kept_as = face.pupil_id if face.decision is Decision.KEPT else None
        if is_genuine:
            r["genuine_kept"] += kept_as == pid
            r["genuine_reach"] += face.proposed_pupil == pid
            r["genuine_low_quality"] += face.proposed_pupil == pid and face.low_quality is not None
            r["wrong_child_kept"] += kept_as is not None and kept_as != pid
            if face.proposed_pupil != pid:
                lost.append(_why(photo.input, face, pid))
        else:
            r["false_keeps"] += kept_as is not None
    grids = group_by_pupil(batch)
    shares = []
    for g in grids:
        faces = [f for f in g.faces if f.kind is not FaceKind.NAMED]
        others = sum(
            1
            for f in faces
            if f"C{truth[f.photo.input]}" != g.pupil_id
            or subject.get(f.photo.input) != f.face.face_id
        )
        r["grid_faces"] += len(faces)
        r["grid_others"] += others
        shares.append(others / len(faces) if faces else 0.0)
    r["grids"] = len(grids)
    r["worst_share"] = max(shares, default=0.0)
    r["grids_over_1_in_20"] = sum(1 for s in shares if s > 0.05)
    return dict(r), lost


def _why(photo: str, face, pupil_id: str) -> str:  # type: ignore[no-untyped-def]
    """One line on a genuine photo that is in nobody's grid, or in another pupil's."""
    from pipeline.boxes import Box
    from pipeline.loading import load_image
    from pipeline.matching import sharpness

    sharp = sharpness(load_image(Path(photo)).pixels, Box(*face.box))
    shown = face.proposed_pupil
    where = "in no grid" if shown is None else f"in {shown}'s grid"
    dist = "not compared" if face.distance is None else f"nearest pupil at {face.distance:.3f}"
    name = Path(photo).name
    return f"{name} ({pupil_id}): {where}; {face.reason.value}; {dist}; sharpness {sharp:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refs", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--recognisers", nargs="+", default=["sface", "dlib"])
    parser.add_argument(
        "--why", action="store_true", help="list the genuine photos that miss their grid"
    )
    args = parser.parse_args()
    if not (EVAL / "identities.csv").is_file():
        print(f"FG-NET children not found at {EVAL}", file=sys.stderr)
        return 1
    people = children()
    print(
        f"FG-NET children aged 3-16: {len(people)} children, "
        f"{sum(len(v) for v in people.values())} photos; half enrolled, half strangers."
    )
    print(
        "  recogniser refs pupils  genuine  kept   kept or in grid  wrong-child  "
        "strangers  false keeps/1000  grids  grid faces  not the pupil  worst grid  "
        "grids >1/20  s/photo  low-q"
    )
    for recogniser in args.recognisers:
        for n in args.refs:
            r, lost = run(recogniser, n, people)
            g = max(r["genuine"], 1)
            print(
                f"  {recogniser:10s} {n:4d} {int(r['pupils']):6d} {int(r['genuine']):8d} "
                f"{100 * r['genuine_kept'] / g:5.1f}% {100 * r['genuine_reach'] / g:14.1f}% "
                f"{int(r['wrong_child_kept']):11d} {int(r['strangers']):10d} "
                f"{1000 * r['false_keeps'] / max(r['strangers'], 1):16.1f} "
                f"{int(r['grids']):6d} {int(r['grid_faces']):11d} "
                f"{100 * r['grid_others'] / max(r['grid_faces'], 1):13.1f}% "
                f"{100 * r['worst_share']:10.1f}% {int(r['grids_over_1_in_20']):12d} "
                f"{r['seconds_per_photo']:8.2f}  {int(r['genuine_low_quality']):5d}",
                flush=True,
            )
            if args.why:
                for line in lost:
                    print(f"      {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
