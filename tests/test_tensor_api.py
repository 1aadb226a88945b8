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
    with pytest.raises(RuntimeError, match="dtype float32 cannot be written into a tensor of "
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


def test_in_place_methods_write_into_the_same_array(xp):
    x = minigan.Tensor(xp.asarray([1.0, -2.0, 3.0]))
    view = x.data
    assert x.add_(1, alpha=2) is x
    np.testing.assert_array_equal(x.numpy(), [3.0, 0.0, 5.0])
    x.sub_(minigan.Tensor(xp.asarray([1.0, 1.0, 1.0])), alpha=0.5)
    x.mul_(2).div_(4)
    np.testing.assert_array_equal(x.numpy(), [1.25, -0.25, 2.25])
    x.clamp_(0, 2)
    np.testing.assert_array_equal(x.numpy(), [1.25, 0.0, 2.0])
    x.neg_().abs_().pow_(2)
    np.testing.assert_array_equal(x.numpy(), [1.5625, 0.0, 4.0])
    x.fill_(2.5)
    np.testing.assert_array_equal(x.numpy(), [2.5, 2.5, 2.5])
    x.fill_(minigan.Tensor(xp.asarray(1.5)))
    np.testing.assert_array_equal(x.numpy(), [1.5, 1.5, 1.5])
    x.copy_(np.array([1, 2, 3]))  # from the host, cast: copy_ moves data when asked to
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0, 3.0])
    x.copy_(minigan.tensor([7.0]))  # broadcast
    np.testing.assert_array_equal(x.numpy(), [7.0, 7.0, 7.0])
    x.zero_()
    np.testing.assert_array_equal(x.numpy(), [0.0, 0.0, 0.0])
    x.relu_().exp_()
    np.testing.assert_array_equal(x.numpy(), [1.0, 1.0, 1.0])
    assert x.data is view and x.dtype == np.float64
    i = minigan.Tensor(xp.asarray([1, 2]))
    i.fill_(1.7)  # truncated into the integer dtype, as torch does
    np.testing.assert_array_equal(i.numpy(), [1, 1])
    i.div_(2, rounding_mode="floor")
    np.testing.assert_array_equal(i.numpy(), [0, 0])


def test_in_place_methods_refuse_what_would_lose_or_corrupt_values():
    w = minigan.tensor([1.0, 2.0], requires_grad=True)
    for call in (lambda: w.add_(1), lambda: w.zero_(), lambda: w.normal_(),
                 lambda: w.copy_(np.zeros(2))):
        with pytest.raises(RuntimeError, match="leaf Tensor that requires grad is used in an "
                                               "in-place operation"):
            call()
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])
    y = w * 2
    with pytest.raises(RuntimeError, match="mul_: in-place operations on a tensor inside a "
                                           "recorded graph are not supported"):
        y.mul_(3)
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0])
    i = minigan.tensor([1, 2])
    with pytest.raises(RuntimeError, match="dtype float32 cannot be written into a tensor of "
                                           "dtype int64"):
        i.add_(0.5)
    with pytest.raises(RuntimeError, match=r"source of shape \(4,\) cannot be broadcast to the "
                                           r"tensor's shape \(2,\)"):
        i.copy_(np.ones(4))
    with pytest.raises(RuntimeError, match=r"result has shape \(2, 2\)"):
        i.add_(minigan.tensor([[1], [2]]))
    with pytest.raises(RuntimeError, match=r"a number or a 0-d tensor, got a tensor of shape"):
        i.fill_(minigan.tensor([1, 2]))
    with pytest.raises(TypeError, match="real number"):
        i.fill_("1")
    np.testing.assert_array_equal(i.numpy(), [1, 2])


def test_in_place_writes_under_no_grad_invalidate_saved_graphs():
    w = minigan.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    with minigan.no_grad():
        w.mul_(0.5)
    np.testing.assert_array_equal(w.numpy(), [0.5, 1.0])
    with pytest.raises(RuntimeError, match="changed in place after the forward"):
        y.backward()


def test_random_fills_and_detach_in_place(xp):
    w = minigan.Tensor(xp.zeros((2000,), dtype=np.float32), requires_grad=True)
    with minigan.no_grad():
        assert w.normal_(1.0, 0.02) is w
    assert abs(float(w.mean()) - 1.0) < 0.005 and abs(float(w.std()) - 0.02) < 0.003
    with minigan.no_grad():
        w.uniform_(-1, 1)
    assert -1 <= float(w.min()) and float(w.max()) < 1 and float(w.std()) > 0.5
    y = w * 2
    assert y.detach_() is y and y.creator is None and not y.requires_grad
    y.add_(1)  # a leaf now: no graph to corrupt
    np.testing.assert_allclose(y.numpy(), 2 * w.numpy() + 1, rtol=1e-6)


def test_sizes_and_dims_must_be_ints():
    x = minigan.zeros(6)
    for sizes in ((2.0, 3), (True, 6), ((2.5, 3),)):
        with pytest.raises(TypeError, match="reshape: sizes must be ints, got"):
            x.reshape(*sizes)
    x.reshape(2, 3)  # remembered: a float equal to a remembered int must still be refused
    with pytest.raises(TypeError, match=r"got 2.0 in \(2.0, 3\)"):
        x.view(2.0, 3)
    assert x.view(np.int64(2), -1).shape == (2, 3)
    with pytest.raises(TypeError, match="unsqueeze: a dimension must be an int, got 1.0"):
        x.unsqueeze(1.0)
    with pytest.raises(TypeError, match="unsqueeze: a dimension must be an int, got True"):
        x.unsqueeze(True)
    assert x.unsqueeze(np.int64(0)).shape == (1, 6)


def test_max_and_min_of_two_tensors_are_elementwise(xp):
    a = minigan.Tensor(xp.asarray([1.0, 5.0, 2.0]), requires_grad=True)
    b = minigan.Tensor(xp.asarray([3.0, 2.0, 2.0]), requires_grad=True)
    np.testing.assert_array_equal(minigan.max(a, b).numpy(), [3.0, 5.0, 2.0])
    np.testing.assert_array_equal(a.min(b).numpy(), [1.0, 2.0, 2.0])
    ga, gb = minigan.grad(minigan.max(a, b).sum(), [a, b])
    np.testing.assert_array_equal(ga.numpy(), [0.0, 1.0, 0.5])  # a tie splits it, as torch
    np.testing.assert_array_equal(gb.numpy(), [1.0, 0.0, 0.5])
    assert float(a.max()) == 5.0 and a.max(0).indices.tolist() == 1


def test_bitwise_operators_and_their_in_place_forms(xp):
    a = minigan.Tensor(xp.asarray([True, False, True]))
    b = minigan.Tensor(xp.asarray([True, True, False]))
    assert (a & b).numpy().tolist() == [True, False, False]
    assert (a | b).numpy().tolist() == [True, True, True]
    assert (a ^ b).numpy().tolist() == [False, True, True]
    assert (~a).numpy().tolist() == [False, True, False]
    assert (minigan.Tensor(xp.asarray([5, 3])) & 1).numpy().tolist() == [1, 1]
    assert (~minigan.Tensor(xp.asarray([0]))).numpy().tolist() == [-1]
    m = a.clone()
    alias = m
    m &= b
    m |= minigan.Tensor(xp.asarray([False, False, True]))
    assert alias.numpy().tolist() == [True, False, True]  # written in place
    m.bitwise_not_()
    assert alias.numpy().tolist() == [False, True, False]
    i = minigan.Tensor(xp.asarray([7, 8]))
    alias = i
    i //= 2
    i %= 3
    assert alias.numpy().tolist() == [0, 1]
    with pytest.raises(TypeError, match="bitwise_and: expects bool or integer tensors, got "
                                        "dtype float32"):
        minigan.ones(2) & minigan.ones(2)


def test_relu_of_infinities_and_nan(xp):
    import minigan.nn.functional as F
    x = minigan.Tensor(xp.asarray([3.0, -np.inf, np.inf, -1.0, np.nan]))
    np.testing.assert_array_equal(F.relu(x).numpy(), [3.0, 0.0, np.inf, 0.0, np.nan])
    np.testing.assert_array_equal(F.leaky_relu(x, 0.2).numpy(),
                                  [3.0, -np.inf, np.inf, -0.2, np.nan])
    y = x.clone()
    y.relu_()
    np.testing.assert_array_equal(y.numpy(), [3.0, 0.0, np.inf, 0.0, np.nan])
    assert F.relu(minigan.Tensor(xp.asarray([1, -2]))).numpy().tolist() == [1, 0]
    assert F.relu(minigan.Tensor(xp.asarray([1, -2]))).dtype == np.int64


def test_writing_into_a_broadcast_view_is_refused_by_name():
    with pytest.raises(RuntimeError, match="fill_: the tensor is a read-only view"):
        minigan.ones(3).expand(2, 3).fill_(1)


def test_fused_relu_layers_map_minus_infinity_to_zero(device):
    """Sequential fuses Linear + ReLU and batch norm + ReLU into one op: their ReLU gives 0
    for -inf too (not 0 * -inf = NaN)."""
    lin = nn.Linear(1, 2)
    with minigan.no_grad():
        lin.weight.copy_(np.array([[-1.0], [1.0]]))
        lin.bias.zero_()
    net = nn.Sequential(lin, nn.ReLU()).to(device)
    x = minigan.tensor([[np.inf]], device=device)
    np.testing.assert_array_equal(net(x).numpy(), [[0.0, np.inf]])
    bn = nn.Sequential(nn.BatchNorm2d(1), nn.ReLU()).to(device)
    with minigan.no_grad():
        bn[0].weight.fill_(np.inf)
    z = minigan.tensor(np.array([-1.0, 1.0]).reshape(2, 1, 1, 1), device=device)
    np.testing.assert_array_equal(bn(z).numpy().ravel(), [0.0, np.inf])


def test_writing_a_tensor_that_requires_grad_into_one_that_does_not_keeps_the_gradient():
    w = minigan.ones(3, requires_grad=True)
    acc = minigan.zeros(3)
    acc += w * 2  # the operator records: acc's name now holds the recorded sum, as in torch
    (acc.sum() + w.sum()).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 3.0, 3.0])
    acc = minigan.zeros(3)
    for call in (lambda: acc.add_(w), lambda: acc.copy_(w * 5), lambda: acc.mul_(w)):
        with pytest.raises(RuntimeError, match="an operand requires grad but the tensor "
                                               "written into does not"):
            call()
    np.testing.assert_array_equal(acc.numpy(), [0.0, 0.0, 0.0])
    with minigan.no_grad():
        acc.add_(w)  # no gradient is being recorded: a plain write
    np.testing.assert_array_equal(acc.numpy(), [1.0, 1.0, 1.0])


def test_in_place_integer_writes_narrow_as_torch():
    u = minigan.tensor(np.array([2], np.uint8))
    u += minigan.tensor([258])  # int64 into uint8 wraps, as in torch
    assert u.dtype == np.uint8 and u.numpy().tolist() == [4]
    b = minigan.tensor([True])
    with pytest.raises(RuntimeError, match="dtype int64 cannot be written into a tensor of "
                                           "dtype bool"):
        b += minigan.tensor([1])
