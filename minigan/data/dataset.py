"""`Dataset`, the small record every loader and trainer takes, and a vectorised image resize."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DatasetError

KINDS = ("image", "points")


@dataclass
class Dataset:
    """A whole data set in host memory.

    ``data`` is uint8 of shape (N, C, H, W) for ``kind="image"`` (0..255, NCHW) or float32 of
    shape (N, D) for ``kind="points"``. ``labels`` is int64 of shape (N,) or None.
    ``num_classes`` is 0 for unlabelled data. Toys also carry their mode ``centers`` and ``std``
    so that metrics can count covered modes.
    """

    data: np.ndarray
    labels: np.ndarray | None = None
    name: str = ""
    kind: str = "image"
    classes: tuple = ()
    num_classes: int = 0
    centers: np.ndarray | None = None
    std: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise DatasetError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "image" and (self.data.dtype != np.uint8 or self.data.ndim != 4):
            raise DatasetError(f"{self.name}: images must be uint8 (N, C, H, W), got "
                               f"{self.data.dtype} {self.data.shape}")
        if self.kind == "points" and self.data.ndim != 2:
            raise DatasetError(f"{self.name}: points must be (N, D), got {self.data.shape}")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (len(self.data),):
                raise DatasetError(f"{self.name}: {len(self.data)} samples but labels of shape "
                                   f"{self.labels.shape}")
            if not self.num_classes:
                self.num_classes = len(self.classes) or int(self.labels.max(initial=-1)) + 1
        self.classes = tuple(self.classes)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def sample_shape(self) -> tuple:
        """Shape of one sample: (C, H, W) for images, (D,) for points."""
        return tuple(self.data.shape[1:])

    @property
    def channels(self) -> int:
        return self.data.shape[1] if self.kind == "image" else 0

    @property
    def image_size(self) -> int:
        return self.data.shape[-1] if self.kind == "image" else 0

    def __repr__(self) -> str:
        labels = f", {self.num_classes} classes" if self.labels is not None else ", unlabelled"
        return (f"Dataset({self.name!r}, {self.kind}, {len(self)} x {self.sample_shape} "
                f"{self.data.dtype}{labels})")


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Rows of weights mapping n_in samples to n_out with a triangle (bilinear) filter.

    When shrinking, the filter is widened by the scale factor so that every input pixel
    contributes (antialiasing), as Pillow's resize does.
    """
    scale = n_in / n_out
    support = max(scale, 1.0)
    centers = (np.arange(n_out) + 0.5) * scale
    distance = (np.arange(n_in)[None, :] + 0.5 - centers[:, None]) / support
    weights = np.clip(1.0 - np.abs(distance), 0.0, None)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def resize_images(images: np.ndarray, size: int, chunk: int = 4096) -> np.ndarray:
    """Resize uint8 (N, C, H, W) images to (N, C, size, size), vectorised over the batch.

    Aspect ratio is not kept: this is for square data sets such as MNIST (28 -> 32 or 64).
    Works in chunks so the float32 intermediate stays small.
    """
    n, c, h, w = images.shape
    if (h, w) == (size, size):
        return images
    rows, cols = _resize_matrix(h, size), _resize_matrix(w, size).T
    out = np.empty((n, c, size, size), dtype=np.uint8)
    for start in range(0, n, chunk):
        block = images[start:start + chunk].astype(np.float32)
        resized = rows @ (block @ cols)   # (size, h) @ (.., h, w) @ (w, size)
        np.clip(np.rint(resized), 0, 255, out=resized)
        out[start:start + chunk] = resized
    return out
