"""Searching and indexing ops of minigan/functional/shape.py: nonzero/argwhere/where(cond),
unique/unique_consecutive, index_add/index_copy/index_fill/index_put, select/take,
Tensor.unfold, cummax/cummin, bincount/histc, searchsorted/bucketize.

Values against NumPy references computed here (torch is not needed; where it is installed the
values and dtypes are also compared with its), dtypes, empty inputs, negative dims, repeated
indices, first- and second-order float64 gradient checks, and errors. Each op runs on "cpu" and
"cuda" (emulated with MINIGAN_EMULATE_GPU=1)."""
import numpy as np
import pytest

import minigan
from minigan import backend
from minigan.testing import GradientCheckError, check_backward, check_double_backward

R = np.random.default_rng(23)


def _t(a, device="cpu", grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a), device), requires_grad=grad)


def _np(t):
    return backend.to_numpy(t.data)


def _same(got, want):
    """Equal values, dtype and shape (NaNs equal)."""
    got = _np(got)
    want = np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(got, want)


def distinct(*shape):
    """float64 values without ties (so running extremes have one index each)."""
    return R.permutation(int(np.prod(shape))).reshape(shape) * 0.37 - 3.0


def _grads(f, arrays, **kw):
    check_backward(f, arrays, **kw)
    check_double_backward(f, arrays, **kw)


# ----------------------------------------------------------------------------- nonzero, where

def test_nonzero_and_argwhere(device):
    x = R.integers(0, 3, (3, 4, 2))
    t = _t(x, device)
    want = np.argwhere(x).astype(np.int64)
    _same(minigan.nonzero(t), want)
    _same(minigan.argwhere(t), want)
    _same(t.nonzero(), want)
    _same(t.argwhere(), want)
    parts = minigan.nonzero(t, as_tuple=True)
    assert isinstance(parts, tuple) and len(parts) == 3
    for got, w in zip(parts, np.nonzero(x)):
        _same(got, w.astype(np.int64))
    for got, w in zip(t.nonzero(as_tuple=True), np.nonzero(x)):
        _same(got, w.astype(np.int64))


def test_nonzero_of_floats_bools_and_empty(device):
    f = np.array([[0.0, -1.5], [np.nan, 0.0]])
    _same(minigan.nonzero(_t(f, device)), np.array([[0, 1], [1, 0]]))
    b = np.array([True, False, True])
    _same(minigan.nonzero(_t(b, device)), np.array([[0], [2]]))
    _same(minigan.nonzero(_t(np.zeros((0, 3)), device)), np.zeros((0, 2), np.int64))
    _same(minigan.nonzero(_t(np.zeros((2, 3)), device)), np.zeros((0, 2), np.int64))


@pytest.mark.parametrize("value,rows", [(3, 1), (0, 0)])
def test_nonzero_of_a_0d_tensor(device, value, rows):
    t = _t(np.array(value), device)
    _same(minigan.nonzero(t), np.zeros((rows, 0), np.int64))
    (got,) = minigan.nonzero(t, as_tuple=True)  # a 0-d input counts as 1-d here, as in torch
    _same(got, np.zeros(rows, np.int64))


def test_where_with_one_argument_is_nonzero_as_tuple(device):
    x = R.standard_normal((4, 5))
    t = _t(x, device)
    got = minigan.where(t > 0)
    assert isinstance(got, tuple) and len(got) == 2
    for g, w in zip(got, np.nonzero(x > 0)):
        _same(g, w.astype(np.int64))
    # the three-argument form keeps working, through the same name and as a method
    y = R.standard_normal((4, 5))
    _same(minigan.where(t > 0, t, _t(y, device)), np.where(x > 0, x, y))
    _same(minigan.where(t > 0, input=t, other=_t(y, device)), np.where(x > 0, x, y))
    _same(t.where(t > 0, _t(y, device)), np.where(x > 0, x, y))
    with pytest.raises(TypeError, match="where: give both input and other, or neither"):
        minigan.where(t > 0, t)


def test_three_argument_where_keeps_its_gradients(xp):
    x, y = xp.asarray(R.standard_normal((3, 4))), xp.asarray(R.standard_normal((3, 4)))
    mask = xp.asarray(R.standard_normal((3, 4)) > 0)
    _grads(lambda a, b: minigan.where(mask, a, b), [x, y])


# ----------------------------------------------------------------------------- unique

def np_unique_consecutive(x):
    """(values, inverse, counts) of runs along axis 0 of x (rows compared whole), by a loop."""
    values, inverse, counts = [], [], []
    for i in range(len(x)):
        if i == 0 or not np.array_equal(x[i], x[i - 1]):
            values.append(x[i])
            counts.append(0)
        counts[-1] += 1
        inverse.append(len(values) - 1)
    shape = (len(values),) + x.shape[1:]
    return (np.array(values, dtype=x.dtype).reshape(shape), np.array(inverse, np.int64),
            np.array(counts, np.int64))


def test_unique_flattened(device):
    x = R.integers(-2, 3, (4, 5))
    t = _t(x, device)
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    _same(minigan.unique(t), values)
    _same(t.unique(), values)
    got = minigan.unique(t, sorted=True, return_inverse=True, return_counts=True)
    assert isinstance(got, tuple) and len(got) == 3
    _same(got[0], values)
    _same(got[1], inverse.reshape(x.shape).astype(np.int64))  # input's shape, as torch's
    _same(got[2], counts.astype(np.int64))
    v, c = minigan.unique(t, return_counts=True)
    _same(c, counts.astype(np.int64))
    v, i = t.unique(return_inverse=True)
    np.testing.assert_array_equal(_np(v)[_np(i)], x)  # values[inverse] rebuilds the input
    _same(minigan.unique(t, sorted=False), values)  # (sorted anyway, as torch's kernels)


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_unique_along_a_dim(device, dim):
    x = R.integers(0, 2, (5, 3, 4))
    x[3] = x[1]  # some repeated slices along every dim
    x[:, 2] = x[:, 0]
    x[..., 3] = x[..., 1]
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True, axis=dim)
    got = minigan.unique(_t(x, device), return_inverse=True, return_counts=True, dim=dim)
    _same(got[0], values)
    _same(got[1], inverse.reshape(-1).astype(np.int64))
    _same(got[2], counts.astype(np.int64))


def test_unique_nan_entries_are_each_their_own(device):
    x = np.array([np.nan, 1.0, np.nan, 1.0, 0.5])
    values, counts = minigan.unique(_t(x, device), return_counts=True)
    _same(values, np.array([0.5, 1.0, np.nan, np.nan]))
    _same(counts, np.array([1, 2, 1, 1]))


def test_unique_edge_cases(device):
    _same(minigan.unique(_t(np.array([True, False, True]), device)), np.array([False, True]))
    v, i, c = minigan.unique(_t(np.array(3.0), device), return_inverse=True, return_counts=True)
    _same(v, np.array([3.0]))
    _same(i, np.array(0))  # 0-d, as the input
    _same(c, np.array([1]))
    v, i, c = minigan.unique(_t(np.zeros((0, 2), np.float32), device), return_inverse=True,
                             return_counts=True)
    _same(v, np.zeros(0, np.float32))
    _same(i, np.zeros((0, 2), np.int64))
    _same(c, np.zeros(0, np.int64))
    v, i = minigan.unique(_t(np.zeros((0, 2)), device), return_inverse=True, dim=0)
    _same(v, np.zeros((0, 2)))
    _same(i, np.zeros(0, np.int64))


def test_unique_has_no_gradient(device):
    t = _t(R.standard_normal(5), device, grad=True)
    assert not minigan.unique(t).requires_grad


@pytest.mark.parametrize("dim", [None, 0, 1, -2])
def test_unique_consecutive(device, dim):
    x = R.integers(0, 2, (7, 2))
    x[3] = x[2]
    t = _t(x, device)
    if dim is None:
        values, inverse, counts = np_unique_consecutive(x.reshape(-1))
        inverse = inverse.reshape(x.shape)
    else:
        moved = np.moveaxis(x, dim, 0)
        values, inverse, counts = np_unique_consecutive(moved)
        values = np.moveaxis(values, 0, dim)
    got = minigan.unique_consecutive(t, return_inverse=True, return_counts=True, dim=dim)
    _same(got[0], values)
    _same(got[1], inverse)
    _same(got[2], counts)
    _same(t.unique_consecutive(dim=dim), values)
    _same(minigan.unique_consecutive(t, False, True, dim)[1], counts)


def test_unique_consecutive_keeps_order_and_nans(device):
    x = np.array([3, 3, 1, 1, 1, 3, 2, 2])
    v, i, c = minigan.unique_consecutive(_t(x, device), return_inverse=True, return_counts=True)
    _same(v, np.array([3, 1, 3, 2]))
    _same(i, np.array([0, 0, 1, 1, 1, 2, 3, 3]))
    _same(c, np.array([2, 3, 1, 2]))
    _same(minigan.unique_consecutive(_t(np.array([np.nan, np.nan, 1.0]), device)),
          np.array([np.nan, np.nan, 1.0]))
    _same(minigan.unique_consecutive(_t(np.zeros(0), device)), np.zeros(0))


@pytest.mark.parametrize("call,error,message", [
    (lambda t: minigan.unique(t, dim=3), IndexError, "unique: dimension 3 is out of range"),
    (lambda t: minigan.unique(t[0, 0], dim=0), IndexError,
     "unique: dimension 0 given for a 0-d tensor"),
    (lambda t: minigan.unique(t[:, :0], dim=0), ValueError,
     r"unique: tensor of shape \(2, 0\) has a 0-sized dimension other than dim 0"),
    (lambda t: minigan.unique_consecutive(t, dim=-3), IndexError,
     "unique_consecutive: dimension -3 is out of range"),
])
def test_unique_errors(device, call, error, message):
    with pytest.raises(error, match=message):
        call(_t(np.ones((2, 3)), device))


# ----------------------------------------------------------------------------- index_add, ...

def np_index_add(x, dim, idx, src, alpha=1):
    y = x.copy()
    np.add.at(y, (slice(None),) * dim + (idx,), alpha * src)
    return y


def test_index_add_accumulates_repeated_indices(device):
    x, src = R.standard_normal((3, 4)), R.standard_normal((3, 5))
    idx = np.array([0, 2, 0, 3, 0])
    got = minigan.index_add(_t(x, device), 1, _t(idx, device), _t(src, device), alpha=2.5)
    _same(got, np_index_add(x, 1, idx, src, 2.5))
    _same(_t(x, device).index_add(-1, _t(idx, device), _t(src, device)),
          np_index_add(x, 1, idx, src))
    got = minigan.index_add(_t(x, device), 0, _t([2, 2], device), _t(src[:2, :4], device))
    _same(got, np_index_add(x, 0, np.array([2, 2]), src[:2, :4]))


def test_index_add_dtypes_and_edge_cases(device):
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    src = np.ones((2, 2), np.int32)
    got = minigan.index_add(_t(x, device), 1, _t([0, 0], device), _t(src, device), alpha=3)
    assert got.dtype == np.int32
    _same(got, np_index_add(x, 1, np.array([0, 0]), src, 3))
    # an integer input truncates a float alpha to an int, as torch does
    _same(minigan.index_add(_t(x, device), 1, _t([0, 0], device), _t(src, device), alpha=1.9),
          np_index_add(x, 1, np.array([0, 0]), src, 1))
    f32 = R.standard_normal((2, 3)).astype(np.float32)
    assert minigan.index_add(_t(f32, device), 0, _t([1], device),
                             _t(f32[:1], device), alpha=2).dtype == np.float32
    _same(minigan.index_add(_t(np.array(1.0), device), 0, _t([0], device),
                            _t(np.array(2.0), device)), np.array(3.0))
    empty = minigan.index_add(_t(f32, device), 1, _t(np.zeros(0, np.int64), device),
                              _t(np.zeros((2, 0), np.float32), device))
    _same(empty, f32)


def test_index_copy_and_index_fill(device):
    x, src = R.standard_normal((4, 3)), R.standard_normal((2, 3))
    want = x.copy()
    want[[3, 1]] = src
    _same(minigan.index_copy(_t(x, device), 0, _t([3, 1], device), _t(src, device)), want)
    _same(_t(x, device).index_copy(-2, _t([3, 1], device), _t(src, device)), want)
    want = x.copy()
    want[:, [0, 2]] = 7.5
    _same(minigan.index_fill(_t(x, device), 1, _t([0, -1], device), 7.5), want)  # -1: the last
    _same(_t(x, device).index_fill(1, _t([2, 0, 2], device), _t(np.array(7.5), device)), want)
    ints = np.array([1, 5, 3])
    _same(minigan.index_fill(_t(ints, device), 0, _t([1], device), 2.7), np.array([1, 2, 3]))
    _same(minigan.index_fill(_t(x, device), 0, _t(np.zeros(0, np.int64), device), 1.0), x)


def test_index_put(device):
    x = R.standard_normal((3, 4))
    rows, cols = np.array([0, 2, 1]), np.array([1, -1, 0])
    vals = R.standard_normal(3)
    want = x.copy()
    want[rows, cols] = vals
    got = minigan.index_put(_t(x, device), (_t(rows, device), _t(cols, device)), _t(vals, device))
    _same(got, want)
    # values broadcast to the indexed shape; a list of indices is taken as well
    want = x.copy()
    want[[2, 0]] = vals[:1]
    _same(_t(x, device).index_put([_t([2, 0], device)], _t(vals[:1], device)), want)
    # a bool mask picks its True entries
    mask = x > 0
    want = np.where(mask, -1.0, x)
    _same(minigan.index_put(_t(x, device), (_t(mask, device),), _t(np.array(-1.0), device)),
          want)


def test_index_put_accumulate_adds_repeated_indices(device):
    x = R.standard_normal((3, 4))
    idx = np.array([1, 1, 2, 1])
    vals = R.standard_normal((4, 4))
    want = x.copy()
    np.add.at(want, idx, vals)
    got = minigan.index_put(_t(x, device), (_t(idx, device),), _t(vals, device), accumulate=True)
    _same(got, want)
    want = np.zeros(3)
    np.add.at(want, np.array([0, 0, 2]), 1.0)
    _same(_t(np.zeros(3), device).index_put((_t([0, 0, 2], device),),
                                            _t(np.array(1.0), device), True), want)


@pytest.mark.parametrize("call,error,message", [
    (lambda t, i: minigan.index_add(t, 1, i, t), ValueError,
     r"index_add: source of shape \(3, 4\) does not fit input of shape \(3, 4\) with 2 "
     r"indices along dim 1 \(expected shape \(3, 2\)\)"),
    (lambda t, i: minigan.index_add(t, 1, i, t[:, :2].float()), TypeError,
     "index_add: source has dtype float32 but input has float64"),
    (lambda t, i: minigan.index_add(t, 1, i.double(), t[:, :2]), TypeError,
     "index_add: index must be an integer"),
    (lambda t, i: minigan.index_add(t, 1, i.reshape(2, 1), t[:, :2]), ValueError,
     r"index_add: index must be 0-d or 1-d, got shape \(2, 1\)"),
    (lambda t, i: minigan.index_add(t, 2, i, t[:, :2]), IndexError,
     "index_add: dimension 2 is out of range"),
    (lambda t, i: minigan.index_add(t, 1, i, t[:, :2], alpha="2"), TypeError,
     "index_add: alpha must be a number"),
    (lambda t, i: minigan.index_copy(t, 0, i, t[:2, :3]), ValueError,
     r"index_copy: source of shape \(2, 3\) does not fit"),
    (lambda t, i: minigan.index_fill(t, 1, i, t[0]), ValueError,
     r"index_fill: a tensor value must be 0-d, got shape \(4,\)"),
    (lambda t, i: minigan.index_put(t, i, t[0, :2]), TypeError,
     "index_put: indices must be a tuple of tensors, got Tensor"),
    (lambda t, i: minigan.index_put(t, (), t[0, :2]), ValueError,
     "index_put: indices must not be empty"),
    (lambda t, i: minigan.index_put(t, (i, i, i), t[0, :2]), IndexError,
     r"index_put: too many indices for a tensor of shape \(3, 4\)"),
    (lambda t, i: minigan.index_put(t, (i.double(),), t[0, :2]), TypeError,
     "index_put: index 0 must be an integer or bool tensor, got dtype float64"),
    (lambda t, i: minigan.index_put(t, (i,), t[0, :3]), ValueError,
     r"index_put: values of shape \(3,\) cannot be broadcast to the indexed shape \(2, 4\)"),
    (lambda t, i: minigan.index_put(t, (i,), t[0].float()), TypeError,
     "index_put: values have dtype float32 but input has float64"),
    (lambda t, i: minigan.index_put(t, (t[:2, 0] > 0,), t[0]), IndexError,
     r"index_put: the mask of shape \(2,\) at index 0 does not match the shape \(3, 4\)"),
    (lambda t, i: minigan.index_put(t, (None,), t[0]), TypeError,
     "index_put: index 0 is None"),
])
def test_index_op_errors(device, call, error, message):
    t = _t(R.standard_normal((3, 4)), device)
    with pytest.raises(error, match=message):
        call(t, _t([0, 2], device))


@pytest.mark.parametrize("call,message", [
    (lambda t: minigan.index_add(t, 1, _t([0, 4]), t[:, :2]),
     "index_add: index 4 is out of bounds for dimension 1 with size 4"),
    (lambda t: minigan.index_add(t, 1, _t([-1, 0]), t[:, :2]),
     "index_add: index -1 is out of bounds for dimension 1 with size 4"),
    (lambda t: minigan.index_copy(t, 0, _t([3]), t[:1]),
     "index_copy: index 3 is out of bounds for dimension 0 with size 3"),
    (lambda t: minigan.index_fill(t, 1, _t([-5]), 0.0),
     "index_fill: index -5 is out of bounds for dimension 1 with size 4"),
    (lambda t: minigan.index_put(t, (_t([0]), _t([4])), t[0, 0]),
     "index_put: index 4 is out of bounds for dimension 1 with size 4"),
])
def test_out_of_range_indices_are_refused_on_the_cpu(call, message):
    with pytest.raises(IndexError, match=message):
        call(_t(R.standard_normal((3, 4))))


def test_index_add_gradients(xp):
    x, src = xp.asarray(R.standard_normal((3, 4))), xp.asarray(R.standard_normal((3, 5)))
    idx = xp.asarray(np.array([0, 2, 0, 3, 0]))
    _grads(lambda a, s: minigan.index_add(a, 1, idx, s, alpha=-1.5), [x, src])
    # the function of x and src is linear: gx = gy, gsrc = alpha * gy[:, idx]
    tx, ts = minigan.Tensor(x, requires_grad=True), minigan.Tensor(src, requires_grad=True)
    gy = R.standard_normal((3, 4))
    gx, gs = minigan.grad(minigan.index_add(tx, 1, idx, ts, alpha=-1.5), [tx, ts],
                          minigan.Tensor(xp.asarray(gy)))
    np.testing.assert_allclose(_np(gx), gy)
    np.testing.assert_allclose(_np(gs), -1.5 * gy[:, [0, 2, 0, 3, 0]])


def test_index_copy_gradients(xp):
    x, src = xp.asarray(R.standard_normal((4, 3))), xp.asarray(R.standard_normal((2, 3)))
    idx = xp.asarray(np.array([3, 1]))
    _grads(lambda a, s: minigan.index_copy(a, 0, idx, s) ** 2, [x, src])
    tx, ts = minigan.Tensor(x, requires_grad=True), minigan.Tensor(src, requires_grad=True)
    gy = R.standard_normal((4, 3))
    gx, gs = minigan.grad(minigan.index_copy(tx, 0, idx, ts), [tx, ts],
                          minigan.Tensor(xp.asarray(gy)))
    want = gy.copy()
    want[[3, 1]] = 0  # nothing reaches the overwritten rows
    np.testing.assert_allclose(_np(gx), want)
    np.testing.assert_allclose(_np(gs), gy[[3, 1]])


def test_index_fill_gradients(xp):
    x, v = xp.asarray(R.standard_normal((3, 4))), xp.asarray(np.array(0.7))
    idx = xp.asarray(np.array([1, -1, 1]))  # a repeat fills once: v's gradient counts it once
    _grads(lambda a, value: minigan.index_fill(a, 1, idx, value) ** 2, [x, v])
    tx, tv = minigan.Tensor(x, requires_grad=True), minigan.Tensor(v, requires_grad=True)
    gy = R.standard_normal((3, 4))
    gx, gv = minigan.grad(minigan.index_fill(tx, 1, idx, tv), [tx, tv],
                          minigan.Tensor(xp.asarray(gy)))
    want = gy.copy()
    want[:, [1, 3]] = 0
    np.testing.assert_allclose(_np(gx), want)
    np.testing.assert_allclose(_np(gv), gy[:, [1, 3]].sum())


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_gradients(xp, accumulate):
    x = xp.asarray(R.standard_normal((3, 4)))
    vals = xp.asarray(R.standard_normal((1, 4)))  # broadcast over the rows
    rows = xp.asarray(np.array([2, 0, 2]) if accumulate else np.array([2, 0]))
    _grads(lambda a, v: minigan.index_put(a, (rows,), v, accumulate) ** 2, [x, vals])
    tx, tv = minigan.Tensor(x, requires_grad=True), minigan.Tensor(vals, requires_grad=True)
    gy = R.standard_normal((3, 4))
    gx, gv = minigan.grad(minigan.index_put(tx, (rows,), tv, accumulate), [tx, tv],
                          minigan.Tensor(xp.asarray(gy)))
    r = _np(minigan.Tensor(rows))
    want = gy.copy()
    if not accumulate:
        want[r] = 0
    np.testing.assert_allclose(_np(gx), want)
    np.testing.assert_allclose(_np(gv), gy[r].sum(0, keepdims=True))


def test_a_wrong_gradient_fails_the_check(xp):
    """The checks above can fail: index_fill's values with the gradient let through at the
    wrong columns (0 and 1 instead of the unfilled 1 and 3) are caught."""
    x = xp.asarray(R.standard_normal((3, 4)))
    idx = xp.asarray(np.array([0, 2]))
    leak = minigan.Tensor(xp.asarray(np.array([1.0, 1.0, 0.0, 0.0])))

    def wrong(a):
        return (minigan.index_fill(a.detach(), 1, idx, 0.0) + a * leak
                - (a * leak).detach())

    check_backward(lambda a: minigan.index_fill(a, 1, idx, 0.0), [x])
    with pytest.raises(GradientCheckError):
        check_backward(wrong, [x])


# ----------------------------------------------------------------------------- select, take

def test_select(device):
    x = R.standard_normal((3, 4, 2))
    t = _t(x, device)
    _same(minigan.select(t, 1, -1), x[:, -1])
    _same(t.select(0, 2), x[2])
    _same(minigan.select(t, -1, 0), x[..., 0])
    _same(minigan.select(t, 0, _t(np.array(1))), x[1])


def test_take(device):
    x = R.standard_normal((2, 3))
    idx = np.array([[0, -1], [5, 2]])
    _same(minigan.take(_t(x, device), _t(idx, device)), np.take(x, idx))
    _same(_t(x, device).take(_t(np.array(4), device)), np.take(x, 4))
    _same(minigan.take(_t(x, device), _t(np.zeros(0, np.int64), device)), np.zeros(0))
    _same(minigan.take(_t(np.array(5.0), device), _t(np.array([0, 0]), device)),
          np.array([5.0, 5.0]))


@pytest.mark.parametrize("call,error,message", [
    (lambda t: minigan.select(t[0, 0], 0, 0), IndexError,
     "select: a 0-d tensor has no dimension"),
    (lambda t: minigan.select(t, 0, 3), IndexError,
     r"select: index 3 is out of range for dimension 0 of size 3 \(shape \(3, 4\)\)"),
    (lambda t: minigan.select(t, 1, -5), IndexError,
     "select: index -5 is out of range for dimension 1 of size 4"),
    (lambda t: minigan.select(t, 2, 0), IndexError, "select: dimension 2 is out of range"),
    (lambda t: minigan.select(t, 0, 1.0), TypeError, "select: index must be an int"),
    (lambda t: minigan.take(t, _t([12])), IndexError,
     r"take: index 12 is out of range for a tensor of 12 entries \(shape \(3, 4\)\)"),
    (lambda t: minigan.take(t, _t([-13])), IndexError, "take: index -13 is out of range"),
    (lambda t: minigan.take(t, _t([1.0])), TypeError, "take: index must be an integer"),
])
def test_select_and_take_errors(call, error, message):
    with pytest.raises(error, match=message):
        call(_t(R.standard_normal((3, 4))))


def test_select_and_take_gradients(xp):
    x = xp.asarray(R.standard_normal((3, 4)))
    _grads(lambda a: minigan.select(a, 1, -2) ** 2, [x])
    idx = xp.asarray(np.array([[0, 11, 0], [-1, 5, 0]]))  # repeats add up
    _grads(lambda a: minigan.take(a, idx) ** 2, [x])
    tx = minigan.Tensor(x, requires_grad=True)
    (g,) = minigan.grad(minigan.take(tx, idx), [tx], minigan.Tensor(xp.ones((2, 3))))
    want = np.zeros(12)
    np.add.at(want, np.array([0, 11, 0, 11, 5, 0]), 1.0)
    np.testing.assert_array_equal(_np(g), want.reshape(3, 4))


# ----------------------------------------------------------------------------- unfold

def np_unfold(x, dim, size, step):
    win = np.lib.stride_tricks.sliding_window_view(x, size, axis=dim)
    return win[(slice(None),) * (dim % x.ndim) + (slice(None, None, step),)]


@pytest.mark.parametrize("dim,size,step", [(1, 3, 2), (1, 7, 1), (-1, 2, 1), (0, 1, 3),
                                           (1, 0, 3), (1, 2, 5)])
def test_unfold(device, dim, size, step):
    x = R.standard_normal((2, 7, 3))
    got = _t(x, device).unfold(dim, size, step)
    _same(got, np_unfold(x, dim, size, step))


def test_unfold_edge_cases(device):
    _same(_t(np.array(5.0), device).unfold(0, 1, 1), np.array([5.0]))
    _same(_t(np.array(5.0), device).unfold(-1, 0, 1), np.zeros(0))
    _same(_t(np.zeros((0, 3)), device).unfold(0, 0, 1), np.zeros((1, 3, 0)))
    assert not hasattr(minigan, "unfold")  # torch.unfold does not exist (F.unfold is im2col)


@pytest.mark.parametrize("args,error,message", [
    ((0, 8, 1), ValueError, r"unfold: size 8 is larger than the size 7 of dimension 0"),
    ((0, 2, 0), ValueError, "unfold: step must be positive, got 0"),
    ((0, -1, 1), ValueError, "unfold: size must be non-negative, got -1"),
    ((1, 1, 1), IndexError, "unfold: dimension 1 is out of range"),
    ((0, 2.0, 1), TypeError, "unfold: size must be an int"),
])
def test_unfold_errors(args, error, message):
    with pytest.raises(error, match=message):
        _t(np.arange(7.0)).unfold(*args)


def test_unfold_gradients_add_up_the_overlaps(xp):
    x = xp.asarray(R.standard_normal((2, 7, 3)))
    _grads(lambda a: a.unfold(1, 3, 2) ** 2, [x])
    tx = minigan.Tensor(x, requires_grad=True)
    (g,) = minigan.grad(tx.unfold(1, 3, 2), [tx], minigan.Tensor(xp.ones((2, 3, 3, 3))))
    per_row = np.array([1, 1, 2, 1, 2, 1, 1.0])  # windows 0-2, 2-4, 4-6
    np.testing.assert_array_equal(_np(g), np.broadcast_to(per_row[None, :, None], (2, 7, 3)))


# ----------------------------------------------------------------------------- cummax, cummin

def np_cum_extreme(x, dim, largest):
    """(values, indices) by a loop: the latest index of the running extreme; NaN sticks."""
    x = np.moveaxis(x, dim, -1)
    vals, idx = np.empty_like(x), np.zeros(x.shape, np.int64)
    for pos in np.ndindex(x.shape[:-1]):
        best, at = None, 0
        for j, v in enumerate(x[pos]):
            if best is None or np.isnan(v) or (not np.isnan(best) and
                                               (v >= best if largest else v <= best)):
                best, at = v, j
            vals[pos + (j,)], idx[pos + (j,)] = best, at
    return np.moveaxis(vals, -1, dim), np.moveaxis(idx, -1, dim)


@pytest.mark.parametrize("name", ["cummax", "cummin"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cummax_cummin(device, name, dim):
    x = R.integers(0, 4, (5, 17)).astype(np.float32)  # many ties
    x[1, 5] = x[3, 9] = np.nan
    got = getattr(minigan, name)(_t(x, device), dim)
    assert type(got).__name__ == name and got._fields == ("values", "indices")
    values, indices = np_cum_extreme(x, dim, name == "cummax")
    _same(got.values, values)
    _same(got.indices, indices)
    _same(getattr(_t(x, device), name)(dim).indices, indices)


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_dtypes_and_edge_cases(device, name):
    largest = name == "cummax"
    fn = getattr(minigan, name)
    ints = R.integers(-5, 5, (3, 6))
    v, i = fn(_t(ints, device), 1)
    want_v, want_i = np_cum_extreme(ints, 1, largest)
    _same(v, want_v)
    _same(i, want_i)
    bools = np.array([False, True, True, False])
    _same(fn(_t(bools, device), 0).indices, np_cum_extreme(bools, 0, largest)[1])
    v, i = fn(_t(np.array(2.5), device), 0)
    _same(v, np.array(2.5))
    _same(i, np.array(0))
    v, i = fn(_t(np.zeros((0, 3)), device), 0)
    _same(v, np.zeros((0, 3)))
    _same(i, np.zeros((0, 3), np.int64))
    with pytest.raises(IndexError, match=f"{name}: dimension 2 is out of range"):
        fn(_t(ints, device), 2)


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin_gradients(xp, name):
    x = xp.asarray(distinct(3, 6))
    _grads(lambda a: getattr(minigan, name)(a, 1).values ** 2, [x])
    # with ties the gradient goes to the latest index of each running extreme, as torch's
    ties = xp.asarray(np.array([1.0, 3.0, 3.0, 2.0]))
    tx = minigan.Tensor(ties, requires_grad=True)
    (g,) = minigan.grad(minigan.sum(minigan.cummax(tx, 0).values), [tx])
    np.testing.assert_array_equal(_np(g), [1.0, 1.0, 2.0, 0.0])


# ----------------------------------------------------------------------------- bincount, histc

def test_bincount(device):
    x = R.integers(0, 6, 20)
    _same(minigan.bincount(_t(x, device)), np.bincount(x).astype(np.int64))
    _same(_t(x, device).bincount(minlength=10), np.bincount(x, minlength=10).astype(np.int64))
    _same(minigan.bincount(_t(x.astype(np.int32), device)), np.bincount(x).astype(np.int64))
    w32 = R.standard_normal(20).astype(np.float32)
    got = minigan.bincount(_t(x, device), _t(w32, device))
    assert got.dtype == np.float32
    np.testing.assert_allclose(_np(got), np.bincount(x, w32), rtol=1e-6)
    w64 = R.standard_normal(20)
    _same(_t(x, device).bincount(_t(w64, device), 8),
          np.bincount(x, w64, minlength=8))  # (add.at in index order: the same sums)
    wint = R.integers(0, 3, 20)
    _same(minigan.bincount(_t(x, device), _t(wint, device)), np.bincount(x, wint))  # float64
    _same(minigan.bincount(_t(np.zeros(0, np.int64), device)), np.zeros(0, np.int64))
    _same(minigan.bincount(_t(np.zeros(0, np.int64), device), minlength=3),
          np.zeros(3, np.int64))


def test_bincount_weights_gradient(xp):
    idx = xp.asarray(np.array([1, 1, 3, 0, 3]))
    w = xp.asarray(R.standard_normal(5))
    _grads(lambda a: minigan.bincount(idx, a) ** 2, [w])


@pytest.mark.parametrize("call,error,message", [
    (lambda: minigan.bincount(_t([-1, 2])), ValueError,
     "bincount: input must be non-negative, got -1"),
    (lambda: minigan.bincount(_t([[1, 2]])), ValueError,
     r"bincount: input must be 1-d, got shape \(1, 2\)"),
    (lambda: minigan.bincount(_t([1.0, 2.0])), TypeError,
     "bincount: input must be an integer"),
    (lambda: minigan.bincount(_t([True])), TypeError, "bincount: input must be an integer"),
    (lambda: minigan.bincount(_t([1, 2]), minlength=-1), ValueError,
     "bincount: minlength must be non-negative, got -1"),
    (lambda: minigan.bincount(_t([1, 2]), _t([1.0])), ValueError,
     r"bincount: weights of shape \(1,\) must be 1-d with one weight per input entry \(2\)"),
])
def test_bincount_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def np_histc(x, bins, lo, hi):
    """torch's rule in float64: bin int((x - lo) * bins / (hi - lo)), max in the last bin,
    entries outside [lo, hi] and NaNs left out."""
    x = x[(x >= lo) & (x <= hi)].astype(np.float64)
    pos = np.minimum(((x - lo) * bins / (hi - lo)).astype(np.int64), bins - 1)
    return np.bincount(pos, minlength=bins).astype(np.float64)


def test_histc(device):
    x = (R.integers(-20, 20, 300) + 0.5) / 4  # away from the bin edges below
    _same(minigan.histc(_t(x, device), 8, -5, 5), np_histc(x, 8, -5, 5))
    _same(_t(x, device).histc(bins=5, min=-2.5, max=2.5), np_histc(x, 5, -2.5, 2.5))
    # min == max: the data's range; the maximum goes in the last bin
    _same(minigan.histc(_t(x, device), 10), np_histc(x, 10, x.min(), x.max()))
    assert _np(minigan.histc(_t(x, device), 10))[-1] >= 1
    _same(minigan.histc(_t(x, device), 10, 3, 3), np_histc(x, 10, x.min(), x.max()))
    f32 = minigan.histc(_t(x.astype(np.float32), device), 4)
    assert f32.dtype == np.float32 and not f32.requires_grad
    _same(minigan.histc(_t(np.array([2.0, 2.0]), device), 4), np.array([0.0, 0.0, 2.0, 0.0]))
    _same(minigan.histc(_t(np.array([1.0, np.nan, 2.0, 9.0]), device), 3, 0, 3),
          np.array([0.0, 1.0, 1.0]))
    _same(minigan.histc(_t(np.zeros(0), device), 3), np.zeros(3))
    _same(minigan.histc(_t(np.array([[0.0, 1.0], [3.0, 2.0]]), device), 3),
          np.array([1.0, 1.0, 2.0]))


@pytest.mark.parametrize("call,error,message", [
    (lambda: minigan.histc(_t([1, 2]), 3), TypeError,
     "histc: expects a floating point tensor, got dtype int64"),
    (lambda: minigan.histc(_t([1.0, 2.0]), 3, 3, 1), ValueError,
     "histc: max must be larger than min, got min=3 and max=1"),
    (lambda: minigan.histc(_t([1.0, 2.0]), 0), ValueError, "histc: bins must be positive"),
    (lambda: minigan.histc(_t([1.0, np.inf]), 3), ValueError,
     r"histc: the range \[1.0, inf\] is not finite"),
    (lambda: minigan.histc(_t([1.0, 2.0]), 3, None, 1), TypeError,
     "histc: min must be a number, got None"),
])
def test_histc_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ----------------------------------------------------------------------------- searchsorted

@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_1d(device, right):
    seq = np.sort(R.integers(0, 10, 12)).astype(np.float64)  # with repeats
    vals = R.integers(-1, 11, (3, 4)).astype(np.float64)
    side = "right" if right else "left"
    want = np.searchsorted(seq, vals, side=side).astype(np.int64)
    _same(minigan.searchsorted(_t(seq, device), _t(vals, device), right=right), want)
    _same(minigan.searchsorted(_t(seq, device), _t(vals, device), side=side), want)
    got = minigan.searchsorted(_t(seq, device), _t(vals, device), right=right, out_int32=True)
    _same(got, want.astype(np.int32))
    _same(minigan.bucketize(_t(vals, device), _t(seq, device), right=right), want)
    _same(minigan.searchsorted(_t(seq, device), 4.5, right=right),
          np.searchsorted(seq, 4.5, side=side))  # a number gives a 0-d result
    _same(minigan.bucketize(4, _t(seq, device), right=right, out_int32=True),
          np.int32(np.searchsorted(seq, 4, side=side)))


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_row_by_row(device, right):
    seq = np.sort(R.integers(0, 10, (2, 3, 9)), axis=-1)
    vals = R.integers(-1, 11, (2, 3, 5))
    side = "right" if right else "left"
    want = np.stack([np.searchsorted(seq[i, j], vals[i, j], side=side)
                     for i in range(2) for j in range(3)]).reshape(2, 3, 5).astype(np.int64)
    _same(minigan.searchsorted(_t(seq, device), _t(vals, device), right=right), want)


def test_searchsorted_sorter_dtypes_and_empty(device):
    seq = R.permutation(10).astype(np.float64) * 1.5
    order = np.argsort(seq)
    vals = R.standard_normal(6) * 8
    _same(minigan.searchsorted(_t(seq, device), _t(vals, device), sorter=_t(order, device)),
          np.searchsorted(seq, vals, sorter=order).astype(np.int64))
    # an integer sequence and float values compare as floats (torch's promotion)
    _same(minigan.searchsorted(_t([1, 2, 3], device), 2.5), np.array(2))
    _same(minigan.searchsorted(_t([1.0, 2.0, 3.0], device), _t([2, 5], device)),
          np.array([1, 3]))
    _same(minigan.searchsorted(_t(np.zeros(0), device), _t([1.0, 2.0], device)),
          np.array([0, 0]))
    _same(minigan.searchsorted(_t([1.0, 2.0], device), _t(np.zeros((2, 0)), device)),
          np.zeros((2, 0), np.int64))


def test_searchsorted_nans_land_where_torchs_do(device):
    # torch's binary search compares with >= (> with right); a NaN compares false either way
    seq = _t(np.array([1.0, 2.0, np.nan]), device)
    vals = _t(np.array([np.nan, 2.0, 3.0]), device)
    _same(minigan.searchsorted(seq, vals), np.array([3, 1, 3]))
    _same(minigan.searchsorted(seq, vals, right=True), np.array([3, 3, 3]))


@pytest.mark.parametrize("call,error,message", [
    (lambda s: minigan.searchsorted(s, s, side="left", right=True), ValueError,
     "searchsorted: side='left' and right=True contradict each other"),
    (lambda s: minigan.searchsorted(s, s, side="middle"), ValueError,
     "searchsorted: side must be 'left' or 'right', got 'middle'"),
    (lambda s: minigan.searchsorted(s[0], s), ValueError,
     "searchsorted: sorted_sequence must have at least 1 dimension"),
    (lambda s: minigan.searchsorted(s.reshape(2, 2), s), ValueError,
     r"searchsorted: sorted_sequence of shape \(2, 2\) searches row by row, so values need "
     r"the same leading dims, got shape \(4,\)"),
    (lambda s: minigan.searchsorted(s, s, sorter=_t([0, 1])), ValueError,
     r"searchsorted: sorter of shape \(2,\) must have sorted_sequence's shape \(4,\)"),
    (lambda s: minigan.searchsorted(s, s, sorter=_t([0, 1, 2, 4])), IndexError,
     "searchsorted: index 4 is out of bounds"),
    (lambda s: minigan.searchsorted(s, "a"), TypeError,
     "searchsorted: values must be a tensor or a number, got str"),
    (lambda s: minigan.bucketize(s, s.reshape(2, 2)), ValueError,
     r"bucketize: boundaries must be 1-d, got shape \(2, 2\)"),
])
def test_searchsorted_errors(call, error, message):
    with pytest.raises(error, match=message):
        call(_t([1.0, 2.0, 3.0, 4.0]))


# ----------------------------------------------------------------------------- the GPU path

def test_data_independent_sizes_do_not_wait_for_the_gpu(emulated_gpu):
    """histc, searchsorted, cummax and the index ops keep to the device (no host read; only
    nonzero, unique and bincount, whose sizes depend on the values, wait for it, as torch's)."""
    log = emulated_gpu.LOG
    x = _t(R.standard_normal((3, 9)), "cuda")
    idx = _t([0, 2, 0], "cuda")
    seq = _t(np.sort(R.standard_normal(10)), "cuda")
    log.clear()
    minigan.histc(x, 5)
    minigan.histc(x, 5, -1, 1)
    minigan.searchsorted(seq, x[:, :4])
    minigan.bucketize(x, seq, right=True)
    minigan.cummax(x, 1)
    minigan.cummin(x, 0)
    minigan.index_add(x, 1, idx, x[:, :3])
    minigan.index_copy(x, 1, idx[:2] + _t([1, 0], "cuda"), x[:, :2])
    minigan.index_fill(x, 1, idx, 0.5)
    minigan.index_put(x, (idx, idx), x[0, 0], accumulate=True)
    minigan.take(x, idx)
    minigan.select(x, 1, 3)
    x.unfold(1, 3, 2)
    assert not log.syncs, dict(log.syncs)


# ----------------------------------------------------------------------------- against torch

def _torch(a):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.array(a))  # (a C-ordered copy; ascontiguousarray makes 0-d 1-d)


def _same_as_torch(got, want):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            _same_as_torch(g, w)
        return
    got, want = _np(got), want.numpy()
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    # (torch may fuse alpha * source + input into one rounding, and minigan's GPU kernel may
    # too: the last bit of the larger term can differ, which a cancelling sum makes relatively
    # large, so the slack is in units of the largest value: -0.01337 came 5.6e-17 off on an H200)
    scale = float(np.abs(want).max()) if want.size and want.dtype.kind == "f" else 0.0
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-15 * scale)


def test_values_and_dtypes_match_torch(device):
    torch = pytest.importorskip("torch")
    x = R.integers(0, 3, (3, 4, 2))
    t, tt = _t(x, device), _torch(x)
    _same_as_torch(minigan.nonzero(t), torch.nonzero(tt))
    _same_as_torch(minigan.where(t > 0), torch.where(tt > 0))
    _same_as_torch(minigan.argwhere(t[0, 0, 0]), torch.argwhere(tt[0, 0, 0]))
    for dim in (None, 0, 1, -1):
        kw = {"return_inverse": True, "return_counts": True, "dim": dim}
        _same_as_torch(minigan.unique(t, **kw), torch.unique(tt, **kw))
        _same_as_torch(minigan.unique_consecutive(t, **kw), torch.unique_consecutive(tt, **kw))
    f = np.array([1.0, 3.0, 3.0, 2.0, np.nan, 5.0, np.nan, 1.0], np.float32)
    for name in ("cummax", "cummin"):
        _same_as_torch(tuple(getattr(minigan, name)(_t(f, device), 0)),
                       tuple(getattr(torch, name)(_torch(f), 0)))
    idx = np.array([1, 1, 3])
    w = np.array([0.5, 1.0, 2.0], np.float32)
    _same_as_torch(minigan.bincount(_t(idx, device), _t(w, device), 6),
                   torch.bincount(_torch(idx), _torch(w), 6))
    _same_as_torch(minigan.bincount(_t(idx, device), _t(idx, device)),
                   torch.bincount(_torch(idx), _torch(idx)))
    h = R.standard_normal(1000).astype(np.float32)
    for args in ((), (7,), (7, -1, 1), (5, 2, 2)):
        _same_as_torch(minigan.histc(_t(h, device), *args), torch.histc(_torch(h), *args))
    seq = np.array([1.0, 2.0, np.nan, 3.0, np.nan])
    vals = np.array([np.nan, 2.0, 3.0, 0.0, 10.0])
    for right in (False, True):
        _same_as_torch(minigan.searchsorted(_t(seq, device), _t(vals, device), right=right),
                       torch.searchsorted(_torch(seq), _torch(vals), right=right))
        _same_as_torch(minigan.bucketize(2, _t(seq[:2], device), right=right, out_int32=True),
                       torch.bucketize(2, _torch(seq[:2]), right=right, out_int32=True))
    a = R.standard_normal((3, 4))
    ta, tta = _t(a, device), _torch(a)
    i2, ti2 = _t([0, 2], device), _torch(np.array([0, 2]))
    _same_as_torch(minigan.index_add(ta, 1, i2, ta[:, :2], alpha=3),
                   torch.index_add(tta, 1, ti2, tta[:, :2], alpha=3))
    _same_as_torch(minigan.index_add(_t([1, 2], device), 0, _t([0], device), _t([3], device),
                                     alpha=0.5),
                   torch.index_add(_torch(np.array([1, 2])), 0, _torch(np.array([0])),
                                   _torch(np.array([3])), alpha=0.5))
    _same_as_torch(minigan.index_copy(ta, 0, i2, ta[:2]), torch.index_copy(tta, 0, ti2, tta[:2]))
    _same_as_torch(minigan.index_fill(ta, 1, i2, -1), torch.index_fill(tta, 1, ti2, -1))
    _same_as_torch(minigan.index_put(ta, (i2, i2), ta[0, :2], True),
                   torch.index_put(tta, (ti2, ti2), tta[0, :2], True))
    _same_as_torch(minigan.index_put(ta, (_t(a > 0, device),), ta[0, 0]),
                   torch.index_put(tta, (_torch(a > 0),), tta[0, 0]))
    _same_as_torch(minigan.select(ta, 1, -1), torch.select(tta, 1, -1))
    _same_as_torch(minigan.take(ta, _t([[0, -1]], device)),
                   torch.take(tta, _torch(np.array([[0, -1]]))))
    _same_as_torch(ta.unfold(1, 2, 1), tta.unfold(1, 2, 1))
    _same_as_torch(_t(np.array(5.0), device).unfold(0, 1, 1),
                   _torch(np.array(5.0)).unfold(0, 1, 1))


def test_gradients_match_torch(device):
    torch = pytest.importorskip("torch")
    a = distinct(3, 5)
    src = R.standard_normal((3, 3))
    gy = R.standard_normal((3, 5))
    idx = np.array([0, 4, 0])

    def mine(fn):
        x, s = _t(a, device, grad=True), _t(src, device, grad=True)
        out = fn(minigan, x, s)
        g = minigan.grad(minigan.sum(out * _t(gy[:, :out.shape[1]], device)), [x, s],
                         allow_unused=True)
        return [np.zeros_like(v) if gi is None else _np(gi) for gi, v in zip(g, (a, src))]

    def theirs(fn):
        x = _torch(a).requires_grad_()
        s = _torch(src).requires_grad_()
        out = fn(torch, x, s)
        g = torch.autograd.grad((out * _torch(gy[:, :out.shape[1]])).sum(), [x, s],
                                allow_unused=True)
        return [np.zeros_like(v) if gi is None else gi.numpy() for gi, v in zip(g, (a, src))]

    def ix(lib, values=idx):
        return _t(values, device) if lib is minigan else _torch(values)

    rows, cols = np.array([0, 2, 0]), np.array([1])
    cases = [
        lambda lib, x, s: lib.index_add(x, 1, ix(lib), s, alpha=2),
        lambda lib, x, s: lib.index_copy(x, 1, ix(lib, np.array([3, 1])), s[:, :2]),
        lambda lib, x, s: lib.index_fill(x, 1, ix(lib), 0.0) * s.sum(),
        lambda lib, x, s: lib.index_put(x, (ix(lib, rows), ix(lib, cols)), s[0], True),
        lambda lib, x, s: lib.index_put(x, (ix(lib, rows[:2]),), s[:2, :1] * 2),
        lambda lib, x, s: lib.cummax(x, 1).values + lib.cummin(x, 0).values,
        lambda lib, x, s: lib.take(x, ix(lib).reshape(1, 3)) * s[:1],
        lambda lib, x, s: lib.select(x, 1, 2).reshape(3, 1) * s,
        lambda lib, x, s: x.unfold(1, 2, 1).sum(-1),
    ]
    for k, fn in enumerate(cases):
        for got, want in zip(mine(fn), theirs(fn)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=f"case {k}")
