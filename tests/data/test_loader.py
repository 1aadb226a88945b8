"""DataLoader: batches, epochs, seeding, resume, and the device path."""
import json

import numpy as np
import pytest

from minigan import backend
from minigan.data import DataLoader, Dataset, DatasetError


def _images(n=10, seed=0):
    images = np.random.default_rng(seed).integers(0, 256, (n, 1, 4, 4), dtype=np.uint8)
    images[0, 0, 0, 0], images[0, 0, 0, 1] = 0, 255
    return images


def _collect(batches):
    return [(backend.to_numpy(x), None if y is None else backend.to_numpy(y)) for x, y in batches]


def test_batches_are_scaled_gathered_samples():
    images, labels = _images(), np.arange(10)
    loader = DataLoader(images, labels, batch_size=4, seed=5)
    order = loader.epoch_order(0)
    x, y = next(iter(loader))
    assert x.dtype == np.float32 and x.shape == (4, 1, 4, 4) and y.dtype == np.int64
    np.testing.assert_array_equal(y, order[:4])
    np.testing.assert_array_equal(x, images[order[:4]].astype(np.float32) / 127.5 - 1)
    assert x.min() >= -1 and x.max() <= 1


def test_extremes_map_to_exactly_minus_one_and_one():
    loader = DataLoader(_images(), batch_size=10, shuffle=False)
    x, y = loader.next_batch()
    assert y is None
    assert x[0, 0, 0, 0] == -1.0 and x[0, 0, 0, 1] == 1.0


@pytest.mark.parametrize("drop_last, sizes", [(True, [4, 4]), (False, [4, 4, 2])])
def test_drop_last(drop_last, sizes):
    loader = DataLoader(_images(), batch_size=4, drop_last=drop_last)
    assert len(loader) == loader.steps_per_epoch == len(sizes)
    epoch = _collect(loader)
    assert [len(x) for x, _ in epoch] == sizes
    assert loader.epoch == 1 and loader.position == 0


def test_each_epoch_is_a_new_permutation():
    loader = DataLoader(_images(), np.arange(10), batch_size=3, drop_last=False, seed=1)
    epochs = [np.concatenate([y for _, y in _collect(loader)]) for _ in range(3)]
    for seen in epochs:
        assert sorted(seen) == list(range(10))
    assert not np.array_equal(epochs[0], epochs[1])


def test_seeded_and_deterministic():
    def run(seed):
        loader = DataLoader(_images(), np.arange(10), batch_size=2, seed=seed)
        return np.concatenate([loader.next_batch()[1] for _ in range(12)])

    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


def test_no_shuffle_keeps_order():
    loader = DataLoader(_images(), np.arange(10), batch_size=5, shuffle=False)
    assert [y.tolist() for _, y in _collect(loader)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 4, 7])
def test_resume_mid_epoch_is_exact(steps):
    data = Dataset(_images(11), np.arange(11), name="tiny")
    original = DataLoader(data, batch_size=3, seed=42)  # 3 batches per epoch
    for _ in range(steps):
        original.next_batch()
    state = json.loads(json.dumps(original.state_dict()))  # what a checkpoint stores
    expected = _collect(original.next_batch() for _ in range(8))

    resumed = DataLoader(data, batch_size=3, seed=0)  # the seed comes from the state
    resumed.load_state_dict(state)
    got = _collect(resumed.next_batch() for _ in range(8))
    for (xe, ye), (xg, yg) in zip(expected, got):
        np.testing.assert_array_equal(xe, xg)
        np.testing.assert_array_equal(ye, yg)


def test_resume_inside_a_for_loop():
    data = (_images(), np.arange(10))
    original = DataLoader(data, batch_size=2, seed=3)
    for i, _ in enumerate(original):
        if i == 1:
            state = original.state_dict()  # taken while training on the second batch
            break
    assert state["epoch"] == 0 and state["position"] == 2
    rest = [y.tolist() for _, y in original]  # a break keeps the position
    resumed = DataLoader(data, batch_size=2)
    resumed.load_state_dict(state)
    assert [y.tolist() for _, y in resumed] == rest
    assert resumed.epoch == original.epoch == 1


def test_state_at_epoch_end_rolls_over():
    loader = DataLoader(_images(), np.arange(10), batch_size=5, seed=1)
    _collect(loader.next_batch() for _ in range(2))
    assert (loader.epoch, loader.position) == (0, 2)
    resumed = DataLoader(_images(), np.arange(10), batch_size=5)
    resumed.load_state_dict(loader.state_dict())
    np.testing.assert_array_equal(resumed.next_batch()[1], loader.epoch_order(1)[:5])


def test_load_state_dict_refuses_a_different_setup():
    state = DataLoader(_images(), batch_size=2).state_dict()
    with pytest.raises(DatasetError, match="batch_size=2 but this loader has 5"):
        DataLoader(_images(), batch_size=5).load_state_dict(state)
    with pytest.raises(DatasetError, match="num_samples"):
        DataLoader(_images(12), batch_size=2).load_state_dict(state)
    with pytest.raises(DatasetError, match="out of range"):
        DataLoader(_images(), batch_size=2).load_state_dict({**state, "position": 99})
    with pytest.raises(DatasetError, match="version"):
        DataLoader(_images(), batch_size=2).load_state_dict({**state, "version": 0})


def test_a_different_number_of_samples_blames_the_data_first():
    """A folder that gained an image (or the run's own grids) since the checkpoint is the
    usual cause: the message says so before anything else."""
    state = DataLoader(_images(), batch_size=2).state_dict()
    with pytest.raises(DatasetError) as info:
        DataLoader(_images(11), batch_size=2).load_state_dict(state)
    message = str(info.value)
    assert message.startswith("loader state has num_samples=10 but this loader has 11: the "
                              "data itself has probably changed")
    assert "an image added to or removed from the folder" in message
    assert "--out folder lying inside the data folder" in message


def test_points_pass_through():
    points = np.random.default_rng(0).standard_normal((9, 2))
    loader = DataLoader(points, batch_size=3, shuffle=False)
    x, y = loader.next_batch()
    assert x.dtype == np.float32 and y is None
    np.testing.assert_array_equal(x, points[:3].astype(np.float32))


def test_errors():
    with pytest.raises(DatasetError, match="no full batch of 64"):
        DataLoader(_images(), batch_size=64)
    assert len(DataLoader(_images(), batch_size=64, drop_last=False)) == 1
    with pytest.raises(DatasetError, match="batch_size must be"):
        DataLoader(_images(), batch_size=0)
    with pytest.raises(DatasetError, match="uint8 images or float points"):
        DataLoader(np.zeros((4, 2), np.int32), batch_size=2)
    with pytest.raises(DatasetError, match="labels of shape"):
        DataLoader(_images(), np.arange(3), batch_size=2)
    with pytest.raises(DatasetError, match="not both"):
        DataLoader(Dataset(_images()), np.arange(10))
    with pytest.raises(DatasetError, match="at least one sample"):
        DataLoader(np.zeros((0, 3), np.float32), batch_size=1, drop_last=False)


def test_device_batches_match_cpu(device):
    images, labels = _images(50), np.arange(50) % 7
    cpu = DataLoader(images, labels, batch_size=8, seed=9, drop_last=False)
    dev = DataLoader(images, labels, batch_size=8, seed=9, drop_last=False, device=device)
    for _ in range(2 * len(cpu) + 1):  # crosses two epoch boundaries and a short batch
        (xc, yc), (xd, yd) = cpu.next_batch(), dev.next_batch()
        assert backend.device_of(xd) == device and backend.device_of(yd) == device
        assert xd.dtype == np.float32 and xd.shape == xc.shape
        np.testing.assert_array_equal(backend.to_numpy(xd), xc)  # bit-identical scaling
        np.testing.assert_array_equal(backend.to_numpy(yd), yc)
    points = np.random.default_rng(1).standard_normal((20, 2)).astype(np.float32)
    x, _ = DataLoader(points, batch_size=4, shuffle=False, device=device).next_batch()
    assert backend.device_of(x) == device
    np.testing.assert_array_equal(backend.to_numpy(x), points[:4])


def test_only_one_transfer_per_epoch(device, monkeypatch):
    loader = DataLoader(_images(40), np.arange(40), batch_size=4, device=device)
    moves = []
    real = backend.to_device
    monkeypatch.setattr(backend, "to_device", lambda x, d: moves.append(x.shape) or real(x, d))
    for _ in range(2 * len(loader)):
        loader.next_batch()
    assert moves == [(40,), (40,)]  # the two epochs' orders; nothing per step
