"""The LeNet-style classifiers behind the image metrics, and their shipped weights.

minigan downloads nothing: both classifiers were trained by minigan itself with
``scripts/train_classifier.py`` and ship as small ``.npz`` files in ``minigan/weights/``. Each
file's SHA-256 is pinned below and checked on every load, so a corrupt or swapped file fails
loudly instead of quietly changing every FID.

Input convention: images in [-1, 1] (the GANs' tanh range), 1 x 28 x 28. ``prepare_images``
converts uint8 data, drops or averages channels and resizes other sizes.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .. import backend, nn
from ..atomic import atomic_writer
from ..autograd import Tensor, no_grad

__all__ = [
    "FEATURE_DIM",
    "IMAGE_SIZE",
    "WEIGHTS",
    "LeNet",
    "WeightsError",
    "accuracy",
    "features_and_probs",
    "load_classifier",
    "prepare_images",
    "read_weights",
    "save_weights",
    "sha256_file",
    "weights_path",
]

FEATURE_DIM = 128
IMAGE_SIZE = 28
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

# name -> (file in minigan/weights, sha256 of that file). Update both together with the
# output of scripts/train_classifier.py; the test suite checks that the shipped files match.
WEIGHTS = {
    "mnist": ("mnist_classifier.npz",
              "8ae86b6114464500026a94bcde7d3fce7dfa1d296c7c3ae4685d605ee3dce277"),
    "fashion-mnist": ("fashion-mnist_classifier.npz",
                      "410b8eeeb964896d39504d4ca34e316df20cd849bd9c0c2944354f30ad5deeed"),
}

_META_KEY = "__meta__"


class WeightsError(ValueError):
    """A classifier's weight file is missing, corrupt or not the pinned one."""


class LeNet(nn.Module):
    """conv5x5(32, pad 2)-ReLU-pool2, conv5x5(64)-ReLU-pool2, fc 1600->128-ReLU (the features),
    dropout, fc 128->10.

    About 258k parameters (1 MB in float32): enough for 99.2% on MNIST and 91% on Fashion-MNIST
    after a few epochs, small enough to train on two CPU cores.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),   # 32 x 14 x 14
            nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),             # 64 x 5 x 5
            nn.Flatten(), nn.Linear(64 * 5 * 5, FEATURE_DIM), nn.ReLU(),
        )
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(FEATURE_DIM, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))

    def features_and_logits(self, x):
        """(penultimate features after ReLU, logits) in one pass."""
        h = self.features(x)
        return h, self.classifier(h)


# ----------------------------------------------------------------------------- weight files

def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_path(name: str) -> Path:
    if name not in WEIGHTS:
        raise ValueError(f"no classifier for dataset {name!r}; metrics exist for "
                         f"{', '.join(sorted(WEIGHTS))} (and the 2-D toys)")
    return WEIGHTS_DIR / WEIGHTS[name][0]


def save_weights(path, state: dict, meta: dict) -> Path:
    """Write a state dict and JSON metadata as an ``.npz`` whose bytes depend only on its
    contents, atomically.

    ``np.savez`` stamps each member with the current time, so retraining with the same seed
    would give the same weights but a different SHA-256; fixed timestamps and sorted names make
    the file hash reproducible wherever the arrays are.
    """
    path = Path(path)
    members = {k: np.ascontiguousarray(backend.to_numpy(v)) for k, v in state.items()}
    members[_META_KEY] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    with atomic_writer(path) as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            for key in sorted(members):
                info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                with zf.open(info, "w") as member:
                    np.lib.format.write_array(member, members[key], allow_pickle=False)
    os.chmod(path, 0o644)  # package data: world-readable whatever the umask
    return path


def read_weights(path, expected_sha256: str | None) -> tuple[dict, dict]:
    """(state dict of NumPy arrays, metadata) from a weight file, after checking its SHA-256
    against ``expected_sha256`` (skipped only when that is None)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"classifier weights {path} are missing; they ship with minigan "
                           "(reinstall it) or can be rebuilt with scripts/train_classifier.py")
    if expected_sha256 is not None:
        got = sha256_file(path)
        if got != expected_sha256:
            raise WeightsError(f"classifier weights {path} have sha256 {got}, expected "
                               f"{expected_sha256}: the file is corrupt or not the one this "
                               "minigan was released with; reinstall minigan or retrain with "
                               "scripts/train_classifier.py and update WEIGHTS in "
                               "minigan/metrics/classifier.py")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise WeightsError(f"classifier weights {path} cannot be read: {exc}") from exc
    raw = arrays.pop(_META_KEY, None)
    meta = json.loads(raw.tobytes().decode()) if raw is not None else {}
    return arrays, meta


def load_classifier(name: str, device: str = "cpu", path=None,
                    sha256: str | None = None) -> LeNet:
    """The shipped classifier for ``name`` ("mnist" or "fashion-mnist") on ``device``, in eval
    mode, its file's SHA-256 verified.

    ``path`` and ``sha256`` override the shipped file and its pinned hash (both or neither),
    e.g. to check a freshly trained file before pinning it.
    """
    if path is None:
        path = weights_path(name)
        sha256 = WEIGHTS[name][1]
        if sha256 is None:
            raise WeightsError(f"no pinned sha256 for the {name} classifier yet: train it with "
                               "scripts/train_classifier.py and pin the hash it prints in "
                               "minigan/metrics/classifier.py")
    elif sha256 is None:
        raise WeightsError("load_classifier: a custom path needs its expected sha256")
    state, meta = read_weights(path, sha256)
    model = LeNet(num_classes=int(meta.get("num_classes", 10)))
    try:
        model.load_state_dict(state)
    except KeyError as exc:
        raise WeightsError(f"classifier weights {path} do not fit the LeNet: {exc}") from exc
    model.meta = meta
    return model.to(backend.normalize_device(device)).eval()


# ----------------------------------------------------------------------------- inference

def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear interpolation weights with half-pixel centres (align_corners
    False), so y = R x R^T resizes an image with two small matrix products."""
    r = np.zeros((n_out, n_in))
    pos = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    w = pos - lo
    r[np.arange(n_out), lo] += 1 - w
    r[np.arange(n_out), hi] += w
    return r


def prepare_images(images) -> np.ndarray:
    """Images as the classifier takes them: float32, N x 1 x 28 x 28, in [-1, 1].

    uint8 input is scaled from [0, 255]; float input is taken to be in [-1, 1] already (the
    generators' range) and clipped. N x H x W gains a channel axis; several channels are
    averaged (grey); other sizes are resized bilinearly, as a GAN trained with --image-size 32
    produces 32 x 32 digits.
    """
    x = backend.to_numpy(images)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"expected images N x C x H x W or N x H x W, got shape {x.shape}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 127.5 - 1.0
    else:
        x = np.clip(x.astype(np.float32, copy=False), -1.0, 1.0)
    if x.shape[1] != 1:
        x = x.mean(axis=1, keepdims=True)
    h, w = x.shape[2:]
    if (h, w) != (IMAGE_SIZE, IMAGE_SIZE):
        rh = _resize_matrix(h, IMAGE_SIZE).astype(np.float32)
        rw = _resize_matrix(w, IMAGE_SIZE).astype(np.float32)
        x = np.einsum("ih,nchw,jw->ncij", rh, x, rw, optimize=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def _softmax64(logits: np.ndarray) -> np.ndarray:
    # In float64: a confident float32 softmax rounds the small classes to exactly 0, which the
    # Inception Score's logs then treat as certainty.
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@no_grad()
def features_and_probs(model: LeNet, images, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(penultimate features float32 N x 128, class probabilities float64 N x 10) for images
    (uint8, or floats in [-1, 1]), computed in eval mode on the model's device in batches."""
    was_training = model.training
    model.eval()
    device = model.device
    feats, logits = [], []
    try:
        n = len(images)
        for i in range(0, n, batch):
            # Convert per batch: a 10k float32 copy is 31 MB, and the GPU needs only a batch.
            x = prepare_images(images[i:i + batch])
            h, y = model.features_and_logits(Tensor(backend.to_device(x, device)))
            feats.append(backend.to_numpy(h.data))
            logits.append(backend.to_numpy(y.data))
    finally:
        model.train(was_training)
    if not feats:
        return np.zeros((0, FEATURE_DIM), np.float32), np.zeros((0, 10))
    return np.concatenate(feats).astype(np.float32), _softmax64(np.concatenate(logits))


def accuracy(model: LeNet, images, labels, batch: int = 500) -> float:
    """Top-1 accuracy of ``model`` on labelled images."""
    _, probs = features_and_probs(model, images, batch)
    return float((probs.argmax(axis=1) == np.asarray(labels)).mean())
