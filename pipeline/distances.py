"""How far apart two face templates are, per recogniser (lower is nearer).

One place for each recogniser's distance, imported by both ``pipeline.matching`` (which
ranks a face against the gallery) and ``pipeline.recognisers`` (which makes the
templates): recognisers imports matching, so matching cannot import it back.

- ``dlib``: Euclidean, as face_recognition's ``face_distance``; 0.6 is its "same person".
- ``sface``: cosine distance, 1 - cos(angle); templates need not be unit length.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def euclidean(refs: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Distance from ``probe`` (dim,) to each row of ``refs`` (n, dim)."""
    return np.linalg.norm(np.asarray(refs, np.float64) - np.asarray(probe, np.float64), axis=1)


def cosine(refs: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of ``probe`` (dim,) with each row of ``refs`` (n, dim)."""
    r = np.asarray(refs, np.float64)
    p = np.asarray(probe, np.float64)
    return 1.0 - (r / np.linalg.norm(r, axis=1, keepdims=True)) @ (p / np.linalg.norm(p))


DISTANCES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "dlib": euclidean,
    "sface": cosine,
}


def distance_function(recogniser: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The distance templates of ``recogniser`` are compared with."""
    try:
        return DISTANCES[recogniser]
    except KeyError:
        raise ValueError(
            f"unknown recogniser {recogniser!r} (choose from {sorted(DISTANCES)})"
        ) from None
