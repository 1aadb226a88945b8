"""The 2-D toy mixtures."""
import numpy as np
import pytest

from minigan.data import TOY_STD, DatasetError, grid25, load_dataset, ring8, toy, toy_centers


def test_centres():
    ring = toy_centers("ring8")
    assert ring.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 2.0)
    np.testing.assert_allclose(ring[0], [2, 0], atol=1e-12)
    np.testing.assert_allclose(ring[2], [0, 2], atol=1e-12)
    grid = toy_centers("grid25")
    assert grid.shape == (25, 2)
    assert sorted(set(grid[:, 0])) == [-4, -2, 0, 2, 4] == sorted(set(grid[:, 1]))
    assert TOY_STD == {"ring8": 0.02, "grid25": 0.05}


@pytest.mark.parametrize("sample, name", [(ring8, "ring8"), (grid25, "grid25")])
def test_samples(sample, name):
    points, labels = sample(40000, seed=3)
    assert points.shape == (40000, 2) and points.dtype == np.float32
    assert labels.shape == (40000,) and labels.dtype == np.int64
    centres = toy_centers(name)
    offsets = points - centres[labels]
    std = TOY_STD[name]
    np.testing.assert_allclose(offsets.std(axis=0), std, rtol=0.03)
    np.testing.assert_allclose(offsets.mean(axis=0), 0, atol=4 * std / 200)
    assert np.abs(offsets).max() < 6 * std  # each point near the centre it came from
    counts = np.bincount(labels, minlength=len(centres))
    assert counts.min() > 0.8 * counts.mean()  # all modes, about equally


def test_seeding():
    a, _ = ring8(100, seed=1)
    b, _ = ring8(100, seed=1)
    c, _ = ring8(100, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    wide, _ = toy("ring8", 5000, std=0.5)
    assert wide.std() > ring8(5000)[0].std()


def test_errors():
    with pytest.raises(DatasetError, match="unknown toy data set 'ring9'"):
        toy_centers("ring9")
    with pytest.raises(DatasetError, match="n must be"):
        grid25(-1)


def test_as_dataset():
    train = load_dataset("ring8", n=1000)
    test = load_dataset("ring8", split="test", n=1000)
    assert train.kind == "points" and train.data.shape == (1000, 2) and train.num_classes == 8
    assert train.std == 0.02 and train.centers.shape == (8, 2)
    assert not np.array_equal(train.data, test.data)
    assert len(load_dataset("grid25")) == 100_000
