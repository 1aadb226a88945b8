"""Regressions found by differential fuzzing of minigan/functional/shape.py against torch.
Expected values are NumPy's (torch is not needed); each op runs on "cpu" and "cuda" (emulated
with MINIGAN_EMULATE_GPU=1)."""
import numpy as np
import pytest

import minigan
from minigan import backend
from minigan.testing import check_backward, check_double_backward


def _t(a, device="cpu", grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a), device), requires_grad=grad)


def test_contiguous_of_a_non_contiguous_tensor_is_a_fresh_copy(device):
    """torch: ``x.t().contiguous()`` is a new, C-contiguous tensor; an in-place change of it
    leaves x alone. minigan returned the transposed view itself."""
    a = np.arange(6.0).reshape(2, 3)
    x = _t(a, device)
    y = x.t().contiguous()
    assert y.is_contiguous()
    assert y.shape == (3, 2) and (y.numpy() == a.T).all()
    y.mul_(0.0)
    assert (x.numpy() == a).all()  # x is unchanged
    e = _t(np.ones(3), device).expand(2, 3).contiguous()  # a broadcast (stride 0) too
    assert e.is_contiguous()
    e.add_(1.0)
    assert (e.numpy() == 2.0).all()
    assert x.contiguous() is x  # an already contiguous tensor is returned as it is


def test_contiguous_copy_is_differentiable():
    a = np.random.default_rng(0).standard_normal((3, 4))
    check_backward(lambda x: x.t().contiguous() * 2.0, [a])
    check_double_backward(lambda x: (x.t().contiguous() ** 2), [a])
    x = minigan.tensor(a, requires_grad=True)
    (x.permute(1, 0).contiguous() * minigan.tensor(np.arange(12.0).reshape(4, 3))).sum().backward()
    assert np.array_equal(x.grad.numpy(), np.arange(12.0).reshape(4, 3).T)


def test_narrow_takes_a_0d_integer_tensor_start(device):
    """torch.narrow(input, dim, start, length) takes start as an int or a 0-d integer tensor."""
    a = np.arange(12.0).reshape(3, 4)
    x = _t(a, device)
    y = minigan.narrow(x, 1, _t(np.int64(1), device), 2)
    assert np.array_equal(y.numpy(), a[:, 1:3])
    y = x.narrow(0, _t(np.int64(-2), device), 2)
    assert np.array_equal(y.numpy(), a[1:3])
    with pytest.raises(TypeError):
        minigan.narrow(x, 0, _t(1.0, device), 1)  # a float tensor is refused, as a float is
    with pytest.raises(TypeError):
        minigan.narrow(x, 0, _t(np.array([1]), device), 1)  # so is a 1-d one
