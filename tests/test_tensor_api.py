"""Tensor operators and creation functions as a PyTorch user types them: in-place arithmetic,
iteration, max/min over a dim of integer tensors, and the argument forms of rand, randn,
randint and tensor."""
import numpy as np
import pytest

import minigan
import minigan.nn as nn
from minigan import backend


def test_in_place_arithmetic_under_no_grad_updates_the_parameter_itself(device):
    """A hand-written SGD step (`p -= lr * p.grad` under no_grad) changes the parameter every
    name and view sees, as in torch; it used to bind a new tensor to the loop variable and
    leave the model as it was."""
    lin = nn.Linear(2, 1).to(device)
    w = lin.weight
    before = w.numpy().copy()
    lin(minigan.ones(1, 2, device=device)).sum().backward()
    with minigan.no_grad():
        for p in lin.parameters():
            p -= 0.1 * p.grad
    assert lin.weight is w and w.requires_grad
    np.testing.assert_allclose(w.numpy(), before - 0.1, rtol=1e-6)
    x = minigan.ones(3, device=device)
    y = x
    x *= 4
    x += 1
    x /= 5
    np.testing.assert_array_equal(y.numpy(), [1.0, 1.0, 1.0])  # y is x
    assert x is y


def test_in_place_arithmetic_refusals_name_the_problem():
    p = nn.Parameter(minigan.ones(2).data)
    with pytest.raises(RuntimeError, match="a leaf Tensor that requires grad is used in an "
                                           "in-place operation"):
        p += 1
    i = minigan.tensor([1, 2])
    with pytest.raises(RuntimeError, match="dtype float64 cannot be written into a tensor of "
                                           "dtype int64"):
        i += 1.5
    z = minigan.ones(2)
    with pytest.raises(RuntimeError, match=r"the result has shape \(3, 2\), which does not fit "
                                           r"the tensor's \(2,\)"):
        z -= minigan.ones(3, 2)
    np.testing.assert_array_equal(z.numpy(), [1.0, 1.0])  # nothing written


def test_in_place_arithmetic_inside_a_graph_records_the_op():
    a = minigan.tensor([1.0, 2.0], requires_grad=True)
    b = a * 3
    b += a  # b = 4a, recorded
    b.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [4.0, 4.0])


def test_iteration_walks_the_first_dim_and_refuses_a_0d_tensor():
    rows = list(minigan.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert [r.numpy().tolist() for r in rows] == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(minigan.tensor(5.0))


def test_max_and_min_over_a_dim_keep_integer_and_bool_dtypes(device):
    big = minigan.tensor(np.array([2 ** 53 + 1, 3]), device=device)
    v = big.max(0)
    assert v.values.dtype == np.int64 and int(v.values.item()) == 2 ** 53 + 1  # not rounded
    m = minigan.tensor(np.arange(6).reshape(2, 3), device=device).min(1, keepdim=True)
    np.testing.assert_array_equal(m.values.numpy(), [[0], [3]])
    np.testing.assert_array_equal(m.indices.numpy(), [[0], [0]])
    assert minigan.tensor(np.array([True, False]), device=device).max(0).values.dtype == bool
    s = minigan.tensor(2.5).max(0)
    assert s.values.item() == 2.5 and s.indices.item() == 0


@pytest.mark.parametrize("call, error, message", [
    (lambda: minigan.rand(-1), ValueError, "rand: negative dimension in size"),
    (lambda: minigan.rand(2, -1), ValueError, "rand: negative dimension"),
    (lambda: minigan.randn(2.7, 3), TypeError, "randn: the size must be ints"),
    (lambda: minigan.rand(2, dtype=np.int64), TypeError, "rand: samples are floats"),
    (lambda: minigan.randn(3, dtype=bool), TypeError, "randn: samples are floats"),
    (lambda: minigan.tensor(None), TypeError, "tensor: cannot make a tensor of numbers from a "
                                              "NoneType"),
    (lambda: minigan.tensor("a"), TypeError, "from a str"),
])
def test_creation_refuses_what_torch_refuses(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_randint_and_tensor_take_torchs_argument_forms():
    assert minigan.randint(5, size=(3,)).shape == (3,)
    assert minigan.randint(high=5, size=(2, 2)).shape == (2, 2)
    r = minigan.randint(5, ())
    assert r.shape == () and r.dtype == np.int64 and 0 <= r.item() < 5
    t = minigan.tensor([minigan.tensor(1.0), minigan.tensor(2.0)])
    assert t.dtype == np.float32 and t.numpy().tolist() == [1.0, 2.0]
    assert minigan.tensor([minigan.ones(2), minigan.zeros(2)]).shape == (2, 2)
    assert backend.to_numpy(minigan.rand(2, 3).data).shape == (2, 3)
