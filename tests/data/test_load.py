"""load_dataset, Dataset and resize_images."""
import ast
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import minigan.data
from minigan.data import Dataset, DatasetError, load_dataset, resize_images


def test_mnist_by_name(fake, tmp_path):
    root = fake.write(tmp_path / "data")
    ds = load_dataset("mnist", root=root)
    assert ds.name == "mnist" and ds.kind == "image" and ds.num_classes == 10
    assert ds.data.shape == (6, 1, 28, 28) and ds.labels.dtype == np.int64
    assert ds.channels == 1 and ds.image_size == 28 and ds.sample_shape == (1, 28, 28)
    big = load_dataset("MNIST", split="test", root=root, image_size=32, channels=3)
    assert big.data.shape == (4, 3, 32, 32)
    fashion = load_dataset("fashion_mnist", root=root)
    assert fashion.name == "fashion-mnist" and fashion.classes[0] == "T-shirt/top"


def test_folder_by_path(tmp_path):
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "a.png")
    ds = load_dataset(tmp_path, image_size=8)
    assert ds.data.shape == (1, 3, 8, 8) and ds.labels is None and ds.num_classes == 0
    with pytest.raises(DatasetError, match="only a 'train' split"):
        load_dataset(tmp_path, split="test")


def test_unknown_name():
    with pytest.raises(DatasetError, match="unknown data set 'cifar10'"):
        load_dataset("cifar10")


def test_dataset_checks():
    with pytest.raises(DatasetError, match="uint8"):
        Dataset(np.zeros((2, 1, 4, 4), np.float32), name="x")
    with pytest.raises(DatasetError, match="labels of shape"):
        Dataset(np.zeros((2, 1, 4, 4), np.uint8), np.arange(3))
    with pytest.raises(DatasetError, match="kind"):
        Dataset(np.zeros((2, 2), np.float32), kind="audio")
    assert "2 x (1, 4, 4)" in repr(Dataset(np.zeros((2, 1, 4, 4), np.uint8)))


def test_resize_images():
    flat = np.full((3, 1, 28, 28), 77, np.uint8)
    assert (resize_images(flat, 64) == 77).all() and (resize_images(flat, 14) == 77).all()
    assert resize_images(flat, 28) is flat
    ramp = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (1, 1, 32, 1))  # 32x32, left to right
    half = resize_images(ramp, 16)
    np.testing.assert_allclose(half[0, 0, 0, 1:-1], np.arange(1, 15) * 16 + 4, atol=1)  # box mean
    assert (np.diff(half[0, 0].astype(int), axis=1) > 0).all()
    big = np.random.default_rng(0).integers(0, 256, (2, 3, 9, 9), dtype=np.uint8)
    np.testing.assert_array_equal(resize_images(big, 5, chunk=1), resize_images(big, 5))


def test_package_imports_only_numpy_pillow_stdlib_and_backend():
    allowed = set(sys.stdlib_module_names) | {"numpy", "PIL"}
    borrowed = ("atomic", "notices")  # stdlib-only modules the data package may borrow
    for name in borrowed:
        source = Path(minigan.data.__file__).parent.parent / f"{name}.py"
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module])
                assert all(n.split(".")[0] in allowed for n in names), \
                    f"{name}.py imports {names}"
    for path in Path(minigan.data.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    continue  # within minigan.data
                if node.level == 2:  # from .. import backend, or a stdlib-only module
                    ok = (node.module is None and [a.name for a in node.names] == ["backend"]) \
                        or node.module in borrowed
                    assert ok, f"{path.name} imports ..{node.module}"
                    continue
                modules = [node.module]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] in allowed or module == "minigan.backend", \
                    f"{path.name} imports {module}"
