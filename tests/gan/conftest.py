"""Fixtures for the training-run tests: tiny in-memory data sets and small run configs."""
import numpy as np
import pytest

import minigan.data
from minigan.data import Dataset
from minigan.gan.trainer import TrainConfig


def _tiny_images(shape, n=64, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    # class-dependent blobs so the data has structure
    images = rng.integers(0, 60, (n,) + shape).astype(np.uint8)
    images[:, :, 2:6, 2:6] += (labels * 18)[:, None, None, None].astype(np.uint8)
    return Dataset(images, labels, name="tiny", kind="image",
                   classes=tuple(str(i) for i in range(10)))


@pytest.fixture
def tiny_data(monkeypatch):
    def fake_load(name, split="train", image_size=None, root=None, **kw):
        if name in ("ring8", "grid25"):
            return real(name, split, image_size, root, n=512)
        size = image_size or 28
        return _tiny_images((3 if size != 28 else 1, size, size))
    real = minigan.data.load_dataset
    monkeypatch.setattr(minigan.data, "load_dataset", fake_load)


def _cfg(tmp_path, preset, **kw):
    base = dict(preset=preset, dataset="tiny", steps=2, batch_size=16, device="cpu",
                out=str(tmp_path / preset), sample_every=1, checkpoint_every=2, log_every=1,
                seed=0)
    base.update(kw)
    return TrainConfig(**base)
