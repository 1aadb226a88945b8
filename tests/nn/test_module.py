"""Module registry, modes, devices and state dicts."""
import numpy as np
import pytest

import minigan
import minigan.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.2))
        self.head = nn.Linear(8, 1, bias=False)
        self.scale = 3.0  # a plain attribute, not registered

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


def test_registry_and_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias",
                     "head.weight"]
    assert list(net.state_dict()) == [
        "body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias", "body.1.running_mean",
        "body.1.running_var", "body.1.num_batches_tracked", "head.weight"]
    assert net.num_parameters() == 4 * 8 + 8 + 8 + 8 + 8
    assert net.head.bias is None
    assert len(net.body) == 3 and isinstance(net.body[1], nn.BatchNorm1d)


def test_layouts_follow_pytorch():
    assert nn.Linear(3, 5).weight.shape == (5, 3)
    assert nn.Conv2d(3, 8, (3, 5)).weight.shape == (8, 3, 3, 5)
    assert nn.ConvTranspose2d(8, 3, 4).weight.shape == (8, 3, 4, 4)
    assert nn.Embedding(10, 6).weight.shape == (10, 6)


def test_default_init_bounds_follow_pytorch():
    minigan.manual_seed(0)
    lin = nn.Linear(100, 50)
    bound = 1 / np.sqrt(100)
    w = lin.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(lin.bias.numpy()).max() <= bound
    bn = nn.BatchNorm2d(4)
    assert np.all(bn.weight.numpy() == 1) and np.all(bn.bias.numpy() == 0)


def test_dcgan_init():
    minigan.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 64, 4), nn.BatchNorm2d(64), nn.Linear(10, 300))
    net.apply(nn.init.dcgan_init_)
    w = net[0].weight.numpy()
    assert abs(w.std() - 0.02) < 0.003 and abs(w.mean()) < 0.003
    assert abs(net[1].weight.numpy().mean() - 1.0) < 0.01
    assert np.all(net[0].bias.numpy() == 0)


def test_seeded_init_is_reproducible():
    minigan.manual_seed(5)
    a = Net().state_dict()
    minigan.manual_seed(5)
    b = Net().state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_train_eval_switches_batchnorm():
    minigan.manual_seed(0)
    net = Net()
    x = minigan.tensor(np.random.default_rng(0).standard_normal((16, 4)))
    net.train()
    y_train = net(x).numpy()
    assert net.body[1].num_batches_tracked == 1
    assert not np.allclose(net.body[1].running_mean, 0)
    net.eval()
    assert not net.training and not net.body[1].training
    y_eval = net(x).numpy()
    assert not np.allclose(y_train, y_eval)
    assert net.body[1].num_batches_tracked == 1


def test_zero_grad_and_requires_grad():
    net = Net()
    x = minigan.tensor(np.ones((4, 4)))
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_state_dict_round_trip_gives_same_outputs():
    minigan.manual_seed(1)
    a, b = Net(), Net()
    x = minigan.tensor(np.random.default_rng(1).standard_normal((8, 4)))
    a(x)  # move running stats
    a.eval(), b.eval()
    assert not np.allclose(a(x).numpy(), b(x).numpy())
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    # a copy, not an alias
    a.head.weight.data[...] = 0
    assert not np.all(b.head.weight.numpy() == 0)


def test_strict_load_names_the_offending_keys():
    net = Net()
    sd = dict(net.state_dict())
    sd.pop("head.weight")
    sd["extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(KeyError, match="missing keys: head.weight.*unexpected keys: extra.weight"):
        net.load_state_dict(sd)
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["head.weight"] and res.unexpected_keys == ["extra.weight"]

    sd = dict(net.state_dict())
    sd["body.0.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(KeyError, match=r"body.0.weight: shape \(3, 3\) in the state, \(8, 4\)"):
        net.load_state_dict(sd)
    # a float64 array loads into a float32 parameter (cast, as torch's copy_ does)
    sd = dict(net.state_dict())
    sd["head.weight"] = np.full((1, 8), 0.1, np.float64)
    net.load_state_dict(sd)
    assert net.head.weight.dtype == np.float32
    np.testing.assert_array_equal(net.head.weight.numpy(), np.float32(0.1))


def test_failed_load_changes_nothing():
    net = Net()
    before = {k: v.copy() for k, v in net.state_dict().items()}
    sd = {k: np.zeros_like(v) for k, v in before.items()}
    sd["head.weight"] = np.zeros((9, 9), np.float32)
    with pytest.raises(KeyError):
        net.load_state_dict(sd)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_module_to_device_and_dtype(device):
    net = Net().to(device)
    assert net.device == device
    assert all(p.device == device for p in net.parameters())
    x = minigan.tensor(np.ones((4, 4), np.float32), device=device)
    assert net(x).device == device
    net.double()
    assert net.head.weight.dtype == np.float64
    assert net.body[1].num_batches_tracked.dtype == np.int64


def test_layers_run_and_shapes():
    minigan.manual_seed(0)
    x = minigan.tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32))
    assert nn.Conv2d(3, 5, 3, padding=1)(x).shape == (2, 5, 8, 8)
    assert nn.ConvTranspose2d(3, 4, 4, 2, 1)(x).shape == (2, 4, 16, 16)
    assert nn.Upsample(scale_factor=2)(x).shape == (2, 3, 16, 16)
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 4, 4)
    assert nn.AvgPool2d(2)(x).shape == (2, 3, 4, 4)
    assert nn.Flatten()(x).shape == (2, 192)
    assert nn.Unflatten(1, (3, 64))(nn.Flatten()(x)).shape == (2, 3, 64)
    assert nn.BatchNorm2d(3)(x).shape == x.shape
    emb = nn.Embedding(10, 4)
    assert emb(np.array([1, 2, 9])).shape == (3, 4)
    d = nn.Dropout(0.5)
    y = d(minigan.tensor(np.ones((100, 100), np.float32)))
    kept = y.numpy() != 0
    assert 0.4 < kept.mean() < 0.6 and np.allclose(y.numpy()[kept], 2.0)
    d.eval()
    assert np.all(d(minigan.tensor(np.ones((3, 3), np.float32))).numpy() == 1)


def test_layer_input_errors_are_clear():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected a 4-D input, got shape \(2, 3\)"):
        nn.BatchNorm2d(3)(minigan.tensor(np.ones((2, 3), np.float32)))
    with pytest.raises(ValueError, match="3 channels but weight"):
        nn.Conv2d(4, 2, 3)(minigan.tensor(np.ones((1, 3, 5, 5), np.float32)))
    with pytest.raises(TypeError, match="Parameter"):
        lin = nn.Linear(2, 2)
        lin.weight = np.zeros((2, 2))
    with pytest.raises(TypeError, match="indices must be integers"):
        nn.Embedding(3, 2)(np.array([0.5]))


def test_repr_lists_children():
    text = repr(Net())
    assert "(body): Sequential" in text and "Linear(in_features=4, out_features=8" in text


@pytest.mark.parametrize("cls, shape", [(nn.BatchNorm1d, (16, 3)), (nn.BatchNorm2d, (8, 3, 4, 5))])
def test_batchnorm_momentum_none_is_a_cumulative_average(device, cls, shape):
    """momentum=None (as in PyTorch): the running stats are the plain mean of every batch's
    mean and unbiased variance so far, also across a state_dict round trip and a move."""
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal(shape) * (k + 1) + k for k in range(5)]
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    means = [b.mean(axes) for b in batches]
    variances = [b.var(axes, ddof=1) for b in batches]

    bn = cls(3, momentum=None).double().to(device)
    for b in batches[:3]:
        bn(minigan.tensor(b, device=device))
    np.testing.assert_allclose(minigan.backend.to_numpy(bn.running_mean),
                               np.mean(means[:3], 0), rtol=1e-12)
    # a fresh module loading the state goes on from the stored count, not from zero
    other = cls(3, momentum=None).double().to(device)
    other.load_state_dict(bn.state_dict())
    for b in batches[3:]:
        other(minigan.tensor(b, device=device))
    assert int(other.num_batches_tracked) == 5
    np.testing.assert_allclose(minigan.backend.to_numpy(other.running_mean), np.mean(means, 0),
                               rtol=1e-12)
    np.testing.assert_allclose(minigan.backend.to_numpy(other.running_var),
                               np.mean(variances, 0), rtol=1e-12)
    # with a momentum the same batches give an exponential average instead
    ema = cls(3, momentum=0.1).double().to(device)
    for b in batches:
        ema(minigan.tensor(b, device=device))
    assert not np.allclose(minigan.backend.to_numpy(ema.running_mean), np.mean(means, 0))
