"""nn.init: PyTorch's names and argument names, on Tensors and on the raw ``.data`` arrays."""
import inspect
import math

import numpy as np
import pytest

import minigan
import minigan.nn as nn
from minigan import backend
from minigan.nn import init

FILLERS = [
    ("uniform_", {"a": -0.5, "b": 2.0}),
    ("normal_", {"mean": 1.0, "std": 0.02}),
    ("trunc_normal_", {"mean": 0.0, "std": 1.0, "a": -1.0, "b": 0.5}),
    ("constant_", {"val": 0.3}),
    ("xavier_uniform_", {"gain": 2.0}),
    ("xavier_normal_", {"gain": 0.5}),
    ("kaiming_uniform_", {"a": 0.2, "mode": "fan_out", "nonlinearity": "leaky_relu"}),
    ("kaiming_normal_", {"a": 0, "mode": "fan_in", "nonlinearity": "relu"}),
    ("orthogonal_", {"gain": 1.5}),
]


@pytest.mark.parametrize("name,kwargs", FILLERS, ids=[f[0] for f in FILLERS])
def test_fills_raw_arrays_and_tensors_in_place(name, kwargs, device):
    lin = nn.Linear(30, 20).to(device)
    raw = lin.weight.data
    assert getattr(init, name)(raw, **kwargs) is raw  # returns what it was given
    assert lin.weight.data is raw and raw.dtype == np.float32
    minigan.manual_seed(3)
    getattr(init, name)(lin.weight, **kwargs)
    a = backend.to_numpy(lin.weight.data).copy()
    minigan.manual_seed(3)
    assert getattr(init, name)(lin.weight.data, **kwargs) is lin.weight.data
    np.testing.assert_array_equal(backend.to_numpy(lin.weight.data), a)  # same draws either way


def test_distributions_follow_the_formulas():
    minigan.manual_seed(0)
    w = np.empty((400, 300), np.float64)
    init.uniform_(w, -0.5, 2.0)
    assert w.min() >= -0.5 and w.max() < 2.0 and abs(w.mean() - 0.75) < 0.01
    init.normal_(w, 1.0, 0.02)
    assert abs(w.mean() - 1.0) < 1e-3 and abs(w.std() - 0.02) < 1e-3
    init.constant_(w, val=0.3)
    assert np.all(w == 0.3)
    init.xavier_uniform_(w, gain=2.0)
    bound = 2.0 * math.sqrt(6 / 700)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.std() - math.sqrt(2 / 400)) < 0.002
    init.kaiming_uniform_(w, a=math.sqrt(5))  # PyTorch's default layer init
    assert abs(np.abs(w).max() - 1 / math.sqrt(300)) < 1e-3
    init.trunc_normal_(w, mean=0.5, std=1.0, a=-1.0, b=1.0)
    assert w.min() >= -1.0 and w.max() <= 1.0
    # the truncated normal's mean, from the density phi on [-1.5, 0.5] (in std units)
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: (1 + math.erf(z / math.sqrt(2))) / 2  # noqa: E731
    expected = 0.5 + (phi(-1.5) - phi(0.5)) / (cdf(0.5) - cdf(-1.5))
    assert abs(w.mean() - expected) < 0.01


def test_erfinv_inverts_erf():
    y = np.linspace(-1 + 1e-7, 1 - 1e-7, 2001)
    x = init._erfinv(y, np)
    back = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(back, y, rtol=5e-7, atol=1e-12)


def test_orthogonal_eye_dirac():
    minigan.manual_seed(1)
    for shape in ((6, 4), (4, 6), (3, 2, 2, 2)):
        w = np.empty(shape)
        init.orthogonal_(w, gain=2.0)
        m = w.reshape(shape[0], -1)
        small = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
        np.testing.assert_allclose(small, 4.0 * np.eye(min(m.shape)), atol=1e-12)
    e = np.full((3, 4), 7.0)
    init.eye_(e)
    np.testing.assert_array_equal(e, np.eye(3, 4))
    d = np.full((4, 2, 3, 3), 7.0)
    init.dirac_(d, groups=2)
    x = minigan.tensor(np.random.default_rng(0).standard_normal((1, 2, 5, 5)))
    y = minigan.nn.functional.conv2d(x, minigan.tensor(d[:2]), padding=1)
    np.testing.assert_allclose(y.numpy(), x.numpy(), atol=1e-12)  # identity per channel
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(np.empty(3))
    with pytest.raises(ValueError, match="3, 4, or 5 dimensions"):
        init.dirac_(np.empty((2, 2)))


def test_calculate_gain_table():
    for name in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                 "conv_transpose2d", "conv_transpose3d", "sigmoid"):
        assert init.calculate_gain(name) == 1
    assert init.calculate_gain("tanh") == 5.0 / 3
    assert init.calculate_gain("relu") == math.sqrt(2.0)
    assert init.calculate_gain("selu") == 0.75
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01 ** 2))
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("leaky_relu", 1) == 1.0
    with pytest.raises(ValueError, match="negative_slope True not a valid number"):
        init.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError, match="Unsupported nonlinearity gelu"):
        init.calculate_gain("gelu")


def test_errors_are_clear():
    with pytest.raises(TypeError, match="Tensor, a Parameter or its .data array, got list"):
        init.normal_([1.0, 2.0])
    with pytest.raises(TypeError, match="floating-point tensors, got dtype int64"):
        init.zeros_(np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"fewer than 2 dimensions \(got shape \(5,\)\)"):
        init.xavier_uniform_(np.zeros(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(np.zeros((2, 2)), mode="fan_avg")


def test_signatures_match_torch():
    torch = pytest.importorskip("torch")
    for name in ("calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_",
                 "zeros_", "eye_", "dirac_", "xavier_uniform_", "xavier_normal_",
                 "kaiming_uniform_", "kaiming_normal_", "orthogonal_"):
        ours = inspect.signature(getattr(init, name)).parameters
        theirs = inspect.signature(getattr(torch.nn.init, name)).parameters
        assert list(ours) == list(theirs), name
        assert [p.default for p in ours.values()] == [p.default for p in theirs.values()], name
    for args in (("linear",), ("leaky_relu", 0.2), ("leaky_relu", 3), ("tanh",), ("selu",)):
        assert init.calculate_gain(*args) == torch.nn.init.calculate_gain(*args)
