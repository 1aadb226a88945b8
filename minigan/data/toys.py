"""2-D Gaussian mixtures for mode-collapse studies.

* ``ring8``: 8 Gaussians evenly spaced on a circle of radius 2, standard deviation 0.02, as in
  the unrolled-GAN paper (Metz et al. 2017) and DRAGAN's toy experiments.
* ``grid25``: 25 Gaussians on the 5x5 grid {-4, -2, 0, 2, 4}^2, standard deviation 0.05.

Samples are float32 of shape (n, 2); labels are the index of the mode each sample came from.
`toy_centers` and `TOY_STD` let metrics count covered modes (samples within 3 std of a centre).
"""
from __future__ import annotations

import numpy as np

from .errors import DatasetError

TOY_STD = {"ring8": 0.02, "grid25": 0.05}
RING_RADIUS = 2.0
GRID_VALUES = (-4.0, -2.0, 0.0, 2.0, 4.0)


def toy_centers(name: str) -> np.ndarray:
    """The mode centres of a toy mixture, float64 of shape (k, 2)."""
    if name == "ring8":
        angles = 2 * np.pi * np.arange(8) / 8
        return RING_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if name == "grid25":
        xs, ys = np.meshgrid(GRID_VALUES, GRID_VALUES, indexing="ij")
        return np.stack([xs.ravel(), ys.ravel()], axis=1)
    raise DatasetError(f"unknown toy data set {name!r}; expected one of {sorted(TOY_STD)}")


def toy(name: str, n: int, seed: int = 0, std: float | None = None):
    """``n`` samples of a toy mixture with equal mode weights: ``(points float32 (n, 2),
    mode labels int64 (n,))``, reproducible from ``seed``."""
    centers = toy_centers(name)
    if n < 0:
        raise DatasetError(f"{name}: n must be >= 0, got {n}")
    std = TOY_STD[name] if std is None else float(std)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(centers), size=n)
    points = centers[labels] + std * rng.standard_normal((n, 2))
    return points.astype(np.float32), labels.astype(np.int64)


def ring8(n: int, seed: int = 0, std: float | None = None):
    """8 Gaussians on a circle of radius 2 (std 0.02); see `toy`."""
    return toy("ring8", n, seed, std)


def grid25(n: int, seed: int = 0, std: float | None = None):
    """25 Gaussians on a 5x5 grid with spacing 2 (std 0.05); see `toy`."""
    return toy("grid25", n, seed, std)
