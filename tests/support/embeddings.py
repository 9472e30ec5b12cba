"""Synthetic face embeddings for the matching rule's exact tests: unit vectors a known
distance apart, and a three-pupil gallery of them."""

from __future__ import annotations

import numpy as np


def unit(i: int) -> np.ndarray:
    """The 128-d unit vector along axis ``i`` (two of them are sqrt(2) apart)."""
    v = np.zeros(128)
    v[i] = 1.0
    return v


def near(v: np.ndarray, d: float, axis: int = 127) -> np.ndarray:
    """A point at distance ``d`` from ``v`` (moving along one axis)."""
    out = v.copy()
    out[axis] += d
    return out


def three_pupil_gallery() -> dict[str, np.ndarray]:
    """Pupils P1, P2, P3 with one reference each, along axes 0, 1 and 2."""
    return {"P1": np.array([unit(0)]), "P2": np.array([unit(1)]), "P3": np.array([unit(2)])}
