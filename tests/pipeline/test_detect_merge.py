"""The vectorised merge_detections clusters exactly as the plain loop it replaced."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.boxes import Box
from pipeline.detection import merge_detections
from pipeline.detectors import Detection


def reference_clusters(detections, iou=0.3, containment=0.7):
    """The original one-box-at-a-time rule (before vectorising), kept as the oracle."""
    order = sorted(detections, key=lambda d: d.score, reverse=True)
    clusters = []
    for det in order:
        for cluster in clusters:
            head = cluster[0].box
            inter = head.intersection(det.box)
            smaller = min(head.area, det.box.area)
            if head.iou(det.box) >= iou or (smaller > 0 and inter / smaller >= containment):
                cluster.append(det)
                break
        else:
            clusters.append([det])
    return clusters


coords = st.integers(0, 60).map(float)
sizes = st.integers(0, 30).map(float)
detections = st.lists(
    st.builds(
        lambda x, y, w, h, s, src: Detection(Box(x, y, w, h), s, src),
        coords,
        coords,
        sizes,
        sizes,
        st.floats(0.2, 1.0),
        st.sampled_from(["a", "b"]),
    ),
    max_size=40,
)


@settings(max_examples=300)
@given(detections)
def test_same_clusters_as_the_plain_loop(dets):
    merged = merge_detections(dets)
    clusters = reference_clusters(dets)
    assert len(merged) == len(clusters)
    for m, c in zip(merged, clusters, strict=True):
        assert m.score == c[0].score
        assert m.source == ",".join(sorted({d.source for d in c}))
