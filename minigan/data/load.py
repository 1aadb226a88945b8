"""`load_dataset`: one entry point from a name or a folder to a `Dataset`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import Dataset, resize_images
from .errors import DatasetError
from .folder import image_folder
from .mnist_data import FASHION_CLASSES, fashion_mnist, mnist
from .toys import TOY_STD, toy, toy_centers

DATASET_NAMES = ("mnist", "fashion-mnist", "ring8", "grid25")
TOY_SIZE = 100_000  # default number of samples drawn for a toy data set


def load_dataset(name_or_path, split: str = "train", image_size: int | None = None,
                 root=None, channels: int | None = None, n: int | None = None, seed: int = 0,
                 download: bool = True) -> Dataset:
    """A `Dataset` from a known name (see ``DATASET_NAMES``) or an image folder's path.

    * ``mnist`` / ``fashion-mnist``: ``root`` is the CLI's ``--data-dir``; ``image_size`` other
      than 28 resizes (bilinear, antialiased); ``channels=3`` repeats the grey channel.
    * ``ring8`` / ``grid25``: ``n`` points (default 100000) drawn from ``seed``; the test split
      is an independent draw.
    * a folder path: images resized and centre-cropped to ``image_size`` (default 64); only a
      train split exists.
    """
    key = str(name_or_path).lower().replace("_", "-")
    if key in ("mnist", "fashion-mnist", "fashionmnist"):
        fashion = key != "mnist"
        images, labels = (fashion_mnist if fashion else mnist)(split, root=root,
                                                               download=download)
        if image_size is not None:
            images = resize_images(images, int(image_size))
        if channels not in (None, 1, 3):
            raise DatasetError(f"channels must be 1, 3 or None, got {channels!r}")
        if channels == 3:
            images = np.repeat(images, 3, axis=1)
        classes = FASHION_CLASSES if fashion else tuple(str(d) for d in range(10))
        return Dataset(images, labels, name="fashion-mnist" if fashion else "mnist",
                       kind="image", classes=classes)
    if key in TOY_STD:
        if split not in ("train", "test"):
            raise DatasetError(f"{key}: unknown split {split!r}; expected 'train' or 'test'")
        # Train and test are independent streams of one seed.
        points, labels = toy(key, TOY_SIZE if n is None else n,
                             seed=[seed, 0 if split == "train" else 1])
        return Dataset(points, labels, name=key, kind="points",
                       classes=tuple(range(len(toy_centers(key)))),
                       centers=toy_centers(key), std=TOY_STD[key])
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if split != "train":
            raise DatasetError(f"{path}: an image folder has only a 'train' split, "
                               f"got {split!r}")
        return image_folder(path, image_size=64 if image_size is None else int(image_size),
                            channels=channels)
    raise DatasetError(f"unknown data set {str(name_or_path)!r}: expected one of "
                       f"{', '.join(DATASET_NAMES)} or an existing folder of images")
