"""Shape, indexing and sorting ops (minigan/functional/shape.py): values against NumPy (and
torch where it is installed), first- and second-order float64 gradient checks, errors, dtypes,
index tensors' devices, and the Tensor methods. Each op runs on "cpu" and "cuda" (emulated
with MINIGAN_EMULATE_GPU=1)."""
import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import backend
from minigan.functional import shape as S
from minigan.testing import GradientCheckError, check_backward, check_double_backward

R = np.random.default_rng(7)


def normal(*shape):
    return R.standard_normal(shape)


def _t(a, device="cpu", grad=False):
    a = np.asarray(a)
    return minigan.Tensor(backend.to_device(a, device), requires_grad=grad)


def np_along(idx, dim):
    """The NumPy advanced index that reads x[..., idx[i, j], ...] at each position of idx."""
    grids = list(np.indices(idx.shape, sparse=True))
    grids[dim] = idx
    return tuple(grids)


def _on(a, like):
    """A constant array on tensor ``like``'s device (a mask must live where its input does)."""
    return backend.to_device(a, like.device)


def np_gather(x, dim, idx):
    return x[np_along(np.asarray(idx), dim)]


def np_scatter(x, dim, idx, src, add=False):
    idx = np.asarray(idx)
    y = x.copy()
    part = src[tuple(slice(0, n) for n in idx.shape)] if np.ndim(src) else src
    if add:
        np.add.at(y, np_along(idx, dim), part)
    else:
        y[np_along(idx, dim)] = part
    return y


def np_sort(x, dim, descending=False):
    """Values and stable indices; descending keeps ties in input order."""
    if descending:
        idx = np.flip(np.argsort(np.flip(x, dim), axis=dim, kind="stable"), dim)
        idx = x.shape[dim] - 1 - idx
    else:
        idx = np.argsort(x, axis=dim, kind="stable")
    return np.take_along_axis(x, idx, dim), idx


def np_mask_fill(x, mask, v):
    return np.where(mask, v, x)


X345 = normal(3, 4, 5)
MASK45 = normal(4, 5) > 0
GIDX = [[[0, 3, 3], [1, 1, 0]], [[2, 2, 2], [0, 3, 1]]]  # repeats along dim 1
SIDX = [[[0, 3], [4, 1]], [[2, 0], [1, 3]]]  # no repeats within a row (scatter overwrites)
AIDX = [[[0, 0, 2]], [[2, 2, 2]]]  # repeats along dim 0 (scatter_add accumulates)

# name, function on tensors, NumPy reference on arrays, inputs (float64 arrays)
CASES = [
    ("chunk", lambda x: F.chunk(x, 3, 2), lambda x: tuple(np.split(x, [2, 4], 2)), [X345]),
    ("chunk_method", lambda x: x.chunk(2, 1), lambda x: tuple(np.split(x, 2, 1)), [X345]),
    ("split_size", lambda x: F.split(x, 2, 1), lambda x: tuple(np.split(x, [2], 1)), [X345]),
    ("split_sizes", lambda x: x.split([1, 3, 1], -1), lambda x: tuple(np.split(x, [1, 4], -1)),
     [X345]),
    ("tensor_split", lambda x: F.tensor_split(x, 3, 2),
     lambda x: tuple(np.array_split(x, 3, 2)), [X345]),
    ("tensor_split_idx", lambda x: F.tensor_split(x, [1, 4, 2, 7], 2),
     lambda x: tuple(np.array_split(x, [1, 4, 2, 7], 2)), [X345]),
    ("unbind", lambda x: F.unbind(x, 1), lambda x: tuple(np.moveaxis(x, 1, 0)), [X345]),
    ("narrow", lambda x: F.narrow(x, 2, -3, 2), lambda x: x[:, :, 2:4], [X345]),
    ("flip", lambda x: F.flip(x, (0, 2)), lambda x: np.flip(x, (0, 2)), [X345]),
    ("flip_method", lambda x: x.flip(-1), lambda x: x[..., ::-1], [X345]),
    ("fliplr", F.fliplr, np.fliplr, [X345]),
    ("flipud", F.flipud, np.flipud, [X345]),
    ("roll_flat", lambda x: F.roll(x, 7), lambda x: np.roll(x, 7), [X345]),
    ("roll_dims", lambda x: F.roll(x, (1, -7), (0, 2)), lambda x: np.roll(x, (1, -7), (0, 2)),
     [X345]),
    ("rot90", lambda x: F.rot90(x, 1, (1, 2)), lambda x: np.rot90(x, 1, (1, 2)), [X345]),
    ("rot90_neg", lambda x: F.rot90(x, -1, (2, 0)), lambda x: np.rot90(x, -1, (2, 0)), [X345]),
    ("rot90_two", lambda x: x.rot90(2), lambda x: np.rot90(x, 2), [X345]),
    ("repeat", lambda x: x.repeat(2, 1, 3), lambda x: np.tile(x, (2, 1, 3)), [normal(2, 3)]),
    ("repeat_more_dims", lambda x: x.repeat(2, 1, 2, 1), lambda x: np.tile(x, (2, 1, 2, 1)),
     [X345]),
    ("tile", lambda x: F.tile(x, (2, 2)), lambda x: np.tile(x, (2, 2)), [X345]),
    ("tile_method", lambda x: x.tile(3), lambda x: np.tile(x, 3), [normal(2, 3)]),
    ("repeat_interleave", lambda x: F.repeat_interleave(x, 2, 1), lambda x: np.repeat(x, 2, 1),
     [X345]),
    ("repeat_interleave_flat", lambda x: x.repeat_interleave(3),
     lambda x: np.repeat(x.ravel(), 3), [normal(2, 3)]),
    ("repeat_interleave_counts", lambda x: F.repeat_interleave(x, [1, 0, 3, 1], dim=1),
     lambda x: np.repeat(x, [1, 0, 3, 1], 1), [X345]),
    ("gather", lambda x: F.gather(x, 1, GIDX), lambda x: np_gather(x, 1, GIDX), [X345]),
    ("gather_method", lambda x: x.gather(1, [[4, 4, 0], [1, 2, 3]]),
     lambda x: np_gather(x, 1, [[4, 4, 0], [1, 2, 3]]), [normal(2, 5)]),
    ("scatter", lambda x, s: F.scatter(x, 2, SIDX, s), lambda x, s: np_scatter(x, 2, SIDX, s),
     [X345, normal(2, 3, 4)]),
    ("scatter_value", lambda x: x.scatter(2, SIDX, 2.5), lambda x: np_scatter(x, 2, SIDX, 2.5),
     [X345]),
    ("scatter_add", lambda x, s: F.scatter_add(x, 0, AIDX, s),
     lambda x, s: np_scatter(x, 0, AIDX, s, add=True), [X345, normal(2, 2, 4)]),
    ("scatter_reduce_add", lambda x, s: x.scatter(0, AIDX, s, reduce="add"),
     lambda x, s: np_scatter(x, 0, AIDX, s, add=True), [X345, normal(2, 1, 3)]),
    ("index_select", lambda x: F.index_select(x, 2, [4, 0, 4]), lambda x: x[:, :, [4, 0, 4]],
     [X345]),
    ("masked_fill", lambda x: F.masked_fill(x, _on(MASK45, x), -1.5),
     lambda x: np_mask_fill(x, MASK45, -1.5), [X345]),
    ("masked_fill_broadcast", lambda x: x.masked_fill(_on(MASK45, x), 0.0),
     lambda x: np_mask_fill(x, MASK45, 0.0), [normal(5)]),
    ("masked_fill_tensor_value", lambda x, v: F.masked_fill(x, _on(MASK45, x), v),
     lambda x, v: np_mask_fill(x, MASK45, v), [X345, np.asarray(0.7)]),
    ("masked_select", lambda x: F.masked_select(x, _on(MASK45, x)),
     lambda x: np.broadcast_to(x, (3, 4, 5))[np.broadcast_to(MASK45, (3, 4, 5))], [X345]),
    ("take_along_dim", lambda x: F.take_along_dim(x, [[[0, 4]], [[1, 1]], [[2, 3]]], 2),
     lambda x: np.take_along_axis(x, np.array([[[0, 4]], [[1, 1]], [[2, 3]]]), 2), [X345]),
    ("take_along_dim_flat", lambda x: x.take_along_dim([3, 50, 3]),
     lambda x: x.ravel()[[3, 50, 3]], [X345]),
    ("tril", lambda x: F.tril(x, 1), lambda x: np.tril(x, 1), [X345]),
    ("triu", lambda x: x.triu(-1), lambda x: np.triu(x, -1), [X345]),
    ("diag_of_matrix", lambda x: F.diag(x, 1), lambda x: np.diag(x, 1), [normal(4, 5)]),
    ("diag_of_vector", lambda x: x.diag(-2), lambda x: np.diag(x, -2), [normal(4)]),
    ("diagonal", lambda x: F.diagonal(x, 1, 2, 0), lambda x: np.diagonal(x, 1, 2, 0), [X345]),
    ("diagonal_method", lambda x: x.diagonal(-1, -2, -1), lambda x: np.diagonal(x, -1, -2, -1),
     [X345]),
    ("trace", F.trace, np.trace, [normal(4, 5)]),
    ("movedim", lambda x: F.movedim(x, (0, 1), (2, 0)), lambda x: np.moveaxis(x, (0, 1), (2, 0)),
     [X345]),
    ("moveaxis_method", lambda x: x.moveaxis(0, -1), lambda x: np.moveaxis(x, 0, -1), [X345]),
    ("swapaxes", lambda x: F.swapaxes(x, 0, 2), lambda x: np.swapaxes(x, 0, 2), [X345]),
    ("swapdims_method", lambda x: x.swapdims(1, 2), lambda x: np.swapaxes(x, 1, 2), [X345]),
    ("unflatten", lambda x: F.unflatten(x, 1, (2, -1)), lambda x: x.reshape(3, 2, 2, 5), [X345]),
    ("hstack", lambda a, b: F.hstack([a, b]), lambda a, b: np.hstack([a, b]),
     [normal(3, 2), normal(3, 4)]),
    ("hstack_1d", lambda a, b: F.hstack([a, b]), lambda a, b: np.hstack([a, b]),
     [normal(3), normal(2)]),
    ("vstack", lambda a, b: F.vstack([a, b]), lambda a, b: np.vstack([a, b]),
     [normal(4), normal(2, 4)]),
    ("dstack", lambda a, b: F.dstack([a, b]), lambda a, b: np.dstack([a, b]),
     [normal(4), normal(1, 4)]),
    ("column_stack", lambda a, b: F.column_stack([a, b]), lambda a, b: np.column_stack([a, b]),
     [normal(4), normal(4, 2)]),
    ("meshgrid_ij", lambda a, b: F.meshgrid(a, b, indexing="ij"),
     lambda a, b: tuple(np.meshgrid(a, b, indexing="ij")), [normal(3), normal(4)]),
    ("meshgrid_xy", lambda a, b, c: F.meshgrid([a, b, c], indexing="xy"),
     lambda a, b, c: tuple(np.meshgrid(a, b, c, indexing="xy")),
     [normal(3), normal(4), normal(2)]),
    ("broadcast_tensors", lambda a, b: F.broadcast_tensors(a, b),
     lambda a, b: tuple(np.broadcast_arrays(a, b)), [normal(3, 1), normal(4)]),
    ("sort", lambda x: F.sort(x, 1).values, lambda x: np_sort(x, 1)[0], [X345]),
    ("sort_descending", lambda x: x.sort(0, True).values, lambda x: np_sort(x, 0, True)[0],
     [X345]),
    ("topk", lambda x: F.topk(x, 2, 1).values, lambda x: np_sort(x, 1, True)[0][:, :2],
     [X345]),
    ("topk_smallest", lambda x: x.topk(3, largest=False).values,
     lambda x: np_sort(x, 2)[0][..., :3], [X345]),
    ("kthvalue", lambda x: F.kthvalue(x, 2, 1).values, lambda x: np.sort(x, 1)[:, 1], [X345]),
    ("kthvalue_keepdim", lambda x: x.kthvalue(5, 2, True).values,
     lambda x: np.sort(x, 2)[..., 4:5], [X345]),
    ("median_all", F.median, lambda x: np.sort(x.ravel())[(x.size - 1) // 2], [normal(4, 6)]),
    ("median_dim", lambda x: F.median(x, 1).values, lambda x: np.sort(x, 1)[:, 1], [X345]),
    ("view_as", lambda x: x.view_as(minigan.zeros(5, 12)), lambda x: x.reshape(5, 12), [X345]),
    ("reshape_as", lambda x: x.reshape_as(minigan.zeros(60)), lambda x: x.reshape(60), [X345]),
    ("expand_as", lambda x: x.expand_as(minigan.zeros(2, 4, 5)),
     lambda x: np.broadcast_to(x, (2, 4, 5)), [normal(4, 1)]),
    ("mT", lambda x: x.mT, lambda x: np.swapaxes(x, -1, -2), [X345]),
    ("H", lambda x: x.H, lambda x: x.T, [normal(4, 5)]),
]


def _as_tuple(y):
    return tuple(y) if isinstance(y, (tuple, list)) else (y,)


_SUMS = {"trace"}  # cases whose GPU result may differ in the last bits (another order of adds)


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=[c[0] for c in CASES])
def test_forward_matches_numpy(name, fn, ref, inputs, device):
    ys = _as_tuple(fn(*[_t(a, device) for a in inputs]))
    expected = _as_tuple(ref(*inputs))
    assert len(ys) == len(expected)
    for y, e in zip(ys, expected):
        assert isinstance(y, minigan.Tensor)
        assert y.device == device
        assert y.dtype == np.float64
        assert y.shape == np.shape(e)
        if name in _SUMS and device == "cuda":
            np.testing.assert_allclose(y.numpy(), e, rtol=1e-15, atol=0)
        else:
            np.testing.assert_array_equal(y.numpy(), e)



@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=[c[0] for c in CASES])
def test_backward(name, fn, ref, inputs, device):
    check_backward(fn, [backend.to_device(a, device) for a in inputs])


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=[c[0] for c in CASES])
def test_double_backward(name, fn, ref, inputs, device):
    check_double_backward(fn, [backend.to_device(a, device) for a in inputs])


def test_a_wrong_scatter_backward_fails_the_checker(monkeypatch):
    """The checks above can fail: a scatter gradient that forgets to zero the overwritten
    places is caught."""
    def wrong(self, gy):
        return gy, minigan.functional.getitem(gy, self.index)
    monkeypatch.setattr(S._Scatter, "backward", wrong)
    with pytest.raises(GradientCheckError):
        check_backward(lambda x, s: F.scatter(x, 2, SIDX, s), [X345, normal(2, 3, 4)])


# ----------------------------------------------------------------------------- hand-made values

def test_split_family_sizes_follow_torch():
    x = minigan.arange(6)
    assert [t.tolist() for t in F.chunk(x, 4)] == [[0, 1], [2, 3], [4, 5]]  # 3 pieces, not 4
    assert [t.tolist() for t in F.chunk(minigan.arange(0), 3)] == [[], [], []]
    assert [t.tolist() for t in F.split(x, 4)] == [[0, 1, 2, 3], [4, 5]]
    assert [t.tolist() for t in F.split(minigan.arange(0), 0)] == [[]]
    assert [t.tolist() for t in F.tensor_split(x, 4)] == [[0, 1], [2, 3], [4], [5]]
    assert [t.tolist() for t in F.tensor_split(x, [-2])] == [[0, 1, 2, 3], [4, 5]]
    assert [t.tolist() for t in x.tensor_split(minigan.tensor([1, 3]))] == [[0], [1, 2],
                                                                             [3, 4, 5]]
    assert [t.tolist() for t in F.unbind(minigan.tensor([[1, 2], [3, 4]]), 1)] == [[1, 3],
                                                                                  [2, 4]]
    assert F.narrow(x, 0, 6, 0).tolist() == []


def test_pieces_take_their_own_gradients(device):
    x = _t(np.arange(6.0), device, grad=True)
    a, _, c = F.split(x, 2)
    (a * 1.0 + c * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 1, 0, 0, 3, 3])


def test_repeat_and_repeat_interleave_by_hand():
    x = minigan.tensor([[1, 2]])
    assert x.repeat(2, 2).tolist() == [[1, 2, 1, 2], [1, 2, 1, 2]]
    assert x.repeat((1, 1, 2)).tolist() == [[[1, 2, 1, 2]]]
    assert F.repeat_interleave(x, 2, dim=1).tolist() == [[1, 1, 2, 2]]
    assert F.repeat_interleave(x, minigan.tensor([2])).tolist() == [1, 1, 2, 2]
    assert F.repeat_interleave(minigan.tensor([1, 0, 2])).tolist() == [0, 2, 2]
    assert F.repeat_interleave(minigan.tensor(3.0), 2).tolist() == [3.0, 3.0]
    assert F.tile(minigan.tensor(5), ()).tolist() == 5
    assert x.repeat(1, 1) is not x  # a new tensor, as torch's, even when nothing repeats


def test_repeat_gradient_sums_the_copies(device):
    x = _t(np.array([1.0, 2.0]), device, grad=True)
    y = x.repeat(3, 2)  # (3, 4): each entry of x appears 6 times
    (y * _t(np.arange(12.0).reshape(3, 4), device)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0 + 2 + 4 + 6 + 8 + 10, 1 + 3 + 5 + 7 + 9
                                                   + 11])


def test_gather_and_scatter_add_accumulate_repeated_indices(device):
    x = _t(np.array([[1.0, 2.0, 3.0]]), device, grad=True)
    y = F.gather(x, 1, [[2, 2, 0, 2]])
    assert y.tolist() == [[3.0, 3.0, 1.0, 3.0]]
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 0, 3]])
    src = _t(np.array([[10.0, 20.0, 30.0]]), device, grad=True)
    z = F.scatter_add(_t(np.zeros((1, 2)), device), 1, [[1, 1, 0]], src)
    assert z.tolist() == [[30.0, 30.0]]
    (z * _t(np.array([[1.0, 5.0]]), device)).sum().backward()
    np.testing.assert_array_equal(src.grad.numpy(), [[5, 5, 1]])


def test_scatter_gradients_by_hand(device):
    x = _t(np.zeros((2, 3)), device, grad=True)
    src = _t(np.array([[1.0, 2.0], [3.0, 4.0]]), device, grad=True)
    y = F.scatter(x, 1, [[2, 0], [1, 1]], src)
    # row 1 writes its two values to one place: one lands (unspecified which, as in torch)
    assert y.numpy()[0].tolist() == [2.0, 0.0, 1.0]
    assert y.numpy()[1, 1] in (3.0, 4.0)
    g = np.arange(6.0).reshape(2, 3) + 1
    y.backward(_t(g, device))
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 2, 0], [4, 0, 6]])
    np.testing.assert_array_equal(src.grad.numpy(), [[3, 1], [5, 5]])  # torch: gy gathered


def test_masked_fill_gradient_is_zero_where_filled(device):
    x = _t(np.array([[1.0, 2.0], [3.0, 4.0]]), device, grad=True)
    v = _t(np.asarray(9.0), device, grad=True)
    mask = _t(np.array([True, False]), device)
    y = F.masked_fill(x, mask, v)
    assert y.tolist() == [[9.0, 2.0], [9.0, 4.0]]
    y.backward(_t(np.array([[1.0, 2.0], [3.0, 4.0]]), device))
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 2], [0, 4]])
    assert v.grad.item() == 4.0


def test_masked_fill_keeps_the_input_dtype():
    x = minigan.tensor([1, 2, 3])
    assert F.masked_fill(x, x > 1, 2.7).tolist() == [1, 2, 2]  # truncated, as torch
    assert F.masked_fill(x, x > 1, 2.7).dtype == np.int64
    f = minigan.tensor([1.0, 2.0])
    assert F.masked_fill(f, f > 1, minigan.tensor(5, dtype=np.int64)).dtype == np.float32
    assert F.masked_fill(f, f > 1, minigan.tensor(5.0, dtype=np.float64)).dtype == np.float32


def test_triangles_and_diagonals_by_hand():
    m = minigan.arange(1, 7).reshape(2, 3)
    assert F.tril(m).tolist() == [[1, 0, 0], [4, 5, 0]]
    assert F.triu(m, 1).tolist() == [[0, 2, 3], [0, 0, 6]]
    assert F.tril(m > 3).tolist() == [[False, False, False], [True, True, False]]
    assert F.diag(m).tolist() == [1, 5]
    assert F.diag(m, 5).tolist() == []
    assert F.diag(minigan.tensor([1, 2]), 1).tolist() == [[0, 1, 0], [0, 0, 2], [0, 0, 0]]
    assert F.trace(m).item() == 6
    assert F.trace(m.astype(np.uint8)).dtype == np.int64
    assert F.trace(m.astype(np.int32)).dtype == np.int64
    assert F.trace(m.astype(np.float32)).dtype == np.float32


def test_meshgrid_broadcasts_and_shapes():
    a, b = F.meshgrid(minigan.arange(2), minigan.arange(3), indexing="ij")
    assert a.tolist() == [[0, 0, 0], [1, 1, 1]] and b.tolist() == [[0, 1, 2], [0, 1, 2]]
    a, b = F.meshgrid([minigan.arange(2), minigan.tensor(7)])
    assert a.shape == b.shape == (2, 1)
    assert F.broadcast_shapes((3, 1), (4,), 1) == (3, 4)
    assert F.broadcast_shapes() == ()
    assert [t.shape for t in F.broadcast_tensors(minigan.zeros(3, 1), minigan.zeros(4))] == \
        [(3, 4), (3, 4)]


def test_atleast_nd_and_stacks_of_scalars():
    s = minigan.tensor(1.0)
    assert F.atleast_1d(s).shape == (1,)
    assert [t.shape for t in F.atleast_2d(s, minigan.zeros(3))] == [(1, 1), (1, 3)]
    assert F.atleast_3d(minigan.zeros(4)).shape == (1, 4, 1)
    assert F.atleast_3d(minigan.zeros(3, 4)).shape == (3, 4, 1)
    assert F.atleast_1d([s, s])[0].shape == (1,)
    assert F.hstack([s, minigan.tensor(2.0)]).tolist() == [1.0, 2.0]
    assert F.vstack([s, s]).shape == (2, 1)
    assert F.column_stack([s, minigan.tensor([2.0])]).shape == (1, 2)


# ----------------------------------------------------------------------------- sorting

def test_sort_is_stable_and_puts_nan_last_ascending_first_descending(device):
    nan = np.nan
    x = _t(np.array([1.0, 3.0, 3.0, 2.0, 3.0, nan, 1.0]), device)
    v, i = F.sort(x)
    np.testing.assert_array_equal(v.numpy(), [1, 1, 2, 3, 3, 3, nan])
    assert i.numpy().tolist() == [0, 6, 3, 1, 2, 4, 5]
    assert i.dtype == np.int64 and i.device == device
    s = F.sort(x, descending=True)
    np.testing.assert_array_equal(s.values.numpy(), [nan, 3, 3, 3, 2, 1, 1])
    assert s.indices.numpy().tolist() == [5, 1, 2, 4, 3, 0, 6]
    assert F.argsort(x, descending=True).numpy().tolist() == [5, 1, 2, 4, 3, 0, 6]


def test_sort_of_other_dtypes_and_0d():
    b = F.sort(minigan.tensor([True, False, True]))
    assert b.values.tolist() == [False, True, True] and b.indices.tolist() == [1, 0, 2]
    u = F.sort(minigan.tensor(np.array([3, 1, 2], dtype=np.uint8)), descending=True)
    assert u.values.dtype == np.uint8 and u.indices.tolist() == [0, 2, 1]
    v, i = F.sort(minigan.tensor(2.0))
    assert v.shape == () and v.item() == 2.0 and i.shape == () and i.item() == 0
    v, i = F.topk(minigan.tensor(2.0), 1)
    assert v.shape == () and i.item() == 0
    assert F.topk(minigan.tensor([1.0, 2.0]), 0).values.shape == (0,)


def test_topk_takes_the_earlier_of_equal_values(device):
    x = _t(np.array([1.0, 3.0, 3.0, 2.0, 3.0, 1.0]), device)
    assert F.topk(x, 2).indices.numpy().tolist() == [1, 2]
    assert F.topk(x, 2, largest=False).indices.numpy().tolist() == [0, 5]
    assert F.topk(x, 2, sorted=False).values.numpy().tolist() == [3.0, 3.0]


def test_sort_gradient_follows_the_chosen_indices_among_ties(device):
    x = _t(np.array([2.0, 1.0, 2.0, 1.0]), device, grad=True)
    v = F.sort(x).values
    v.backward(_t(np.array([10.0, 20.0, 30.0, 40.0]), device))
    # ascending, stable: positions [1, 3, 0, 2]
    np.testing.assert_array_equal(x.grad.numpy(), [30, 10, 40, 20])


def test_median_by_hand(device):
    nan = np.nan
    x = _t(np.array([1.0, 3.0, 3.0, 2.0, 3.0, 3.0]), device, grad=True)
    m = F.median(x)
    assert m.shape == () and m.item() == 3.0
    m.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0.25, 0.25, 0, 0.25, 0.25])  # as torch
    y = _t(np.array([1.0, nan, 3.0, nan]), device, grad=True)
    m = F.median(y)
    assert np.isnan(m.item())
    m.backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0, 0.5, 0, 0.5])
    r = F.median(_t(np.array([[2.0, nan, 1.0, 0.5, nan], [4.0, 2.0, 3.0, 5.0, 1.0]]), device), 1)
    np.testing.assert_array_equal(r.values.numpy(), [nan, 3.0])
    assert r.indices.numpy().tolist() == [1, 2]  # the first NaN, as torch
    assert np.isnan(F.median(minigan.tensor(np.zeros(0))).item())
    assert F.median(minigan.tensor([4, 1, 3, 2])).item() == 2  # the lower median


def test_kthvalue_and_median_indices_without_ties(device):
    x = _t(np.array([[5.0, 1.0, 4.0, 2.0]]), device)
    k = F.kthvalue(x, 3, 1)
    assert k.values.numpy().tolist() == [4.0] and k.indices.numpy().tolist() == [2]
    m = x.median(1, keepdim=True)
    assert m.values.shape == (1, 1) and m.indices.numpy().tolist() == [[3]]


def test_sort_family_runs_on_the_device_without_host_syncs(emulated_gpu):
    """The GPU path queues its work: no host read in forward or backward of gather, scatter,
    sort, topk, kthvalue or median (masked_select and tensor repeats need one: their length
    depends on the data)."""
    from tests.kernels.emulated_cupy import LOG
    x = _t(normal(3, 6), "cuda", grad=True)
    idx = minigan.tensor([[0, 2, 2]]).to("cuda")
    LOG.clear()
    outs = [F.gather(x, 1, idx), F.sort(x, 1).values, F.topk(x, 2).values,
            F.kthvalue(x, 2).values, F.median(x, 0).values, F.median(x),
            F.scatter(x, 1, idx, x[:1, :3] * 2.0), F.scatter_add(x, 1, idx, x[:1, :3]),
            F.index_select(x, 1, idx[0]), F.take_along_dim(x, idx, 1), F.roll(x, 2, 1),
            F.tril(x), F.diagonal(x), x.repeat(2, 1), F.repeat_interleave(x, 2, 0)]
    total = outs[0].sum()
    for y in outs[1:]:
        total = total + y.sum()
    minigan.grad(total, [x])
    assert sum(LOG.syncs.values()) == 0, dict(LOG.syncs)


# ----------------------------------------------------------------------------- index checks

def test_index_tensors_must_hold_integers(device):
    x = _t(normal(3, 4), device)
    for fn in (lambda i: F.gather(x, 1, i), lambda i: F.index_select(x, 1, i),
               lambda i: F.scatter(x, 1, i, 0.0), lambda i: F.take_along_dim(x, i, 1)):
        with pytest.raises(TypeError, match="integer"):
            fn(_t(np.array([[1.0]]), device))
        with pytest.raises(TypeError, match="integer"):
            fn(_t(np.array([[True]]), device))


def test_int32_index_tensors_and_numpy_arrays_are_accepted():
    x = minigan.arange(12.0).reshape(3, 4)
    i32 = minigan.tensor(np.array([[3, 0]], dtype=np.int32))
    assert F.gather(x, 1, i32).tolist() == [[3.0, 0.0]]
    assert F.index_select(x, 0, np.array([2])).tolist() == [[8.0, 9.0, 10.0, 11.0]]
    assert F.index_select(x, 1, minigan.tensor(3)).shape == (3, 1)  # a 0-d index keeps the dim


def test_index_on_another_device_is_refused(emulated_gpu):
    x = _t(normal(3, 4), "cuda")
    i = minigan.tensor([[1]])  # on the CPU
    for fn in (lambda: F.gather(x, 1, i), lambda: F.index_select(x, 0, i[0]),
               lambda: F.scatter(x, 1, i, 1.0), lambda: F.scatter_add(x, 1, i, x[:1, :1]),
               lambda: F.take_along_dim(x, i, 1),
               lambda: F.masked_fill(x, minigan.tensor([True, False, True, False]), 0.0)):
        with pytest.raises(backend.DeviceError, match="cpu and cuda|cuda and cpu"):
            fn()
    with pytest.raises(backend.DeviceError, match="cpu and cuda|cuda and cpu"):
        F.scatter(x, 1, i.to("cuda"), _t(normal(1, 1), "cpu"))


@pytest.mark.parametrize("call,fragment", [
    (lambda x: F.gather(x, 1, [[4]]), "index 4 is out of bounds for dimension 1 with size 4"),
    (lambda x: F.gather(x, 1, [[-1]]), "index -1 is out of bounds"),
    (lambda x: F.index_select(x, 0, [3]), "index 3 is out of bounds for dimension 0"),
    (lambda x: F.scatter(x, 0, [[5]], 1.0), "index 5 is out of bounds"),
    (lambda x: F.scatter_add(x, 1, [[-2]], x), "index -2 is out of bounds"),
])
def test_out_of_range_indices_raise_on_the_cpu(call, fragment):
    with pytest.raises(IndexError, match=fragment):
        call(minigan.arange(12.0).reshape(3, 4))


# ----------------------------------------------------------------------------- errors

X = minigan.arange(12.0).reshape(3, 4)


@pytest.mark.parametrize("call,error,fragment", [
    (lambda: F.chunk(X, 0), ValueError, "chunk: chunks must be greater than 0"),
    (lambda: F.chunk(minigan.tensor(1.0), 2), ValueError, "chunk: .*at least one dimension"),
    (lambda: F.split(X, [1, 1]), ValueError, r"split: section sizes \[1, 1\] add up to 2"),
    (lambda: F.split(X, [4, -1]), ValueError, "split: section sizes must be non-negative"),
    (lambda: F.split(X, 0), ValueError, "split_size can be 0 only for an empty dimension"),
    (lambda: F.split(X, -1), ValueError, "split_size must be non-negative"),
    (lambda: F.split(X, 2.0), TypeError, "split: split_size must be an int"),
    (lambda: F.tensor_split(X, 0), ValueError, "number of sections must be greater than 0"),
    (lambda: F.unbind(minigan.tensor(1.0)), IndexError, "unbind: a 0-d tensor"),
    (lambda: F.unbind(X, 2), IndexError, "unbind: dimension 2 is out of range"),
    (lambda: F.narrow(X, 1, 3, 2), ValueError, r"start \(3\) \+ length \(2\) exceeds"),
    (lambda: F.narrow(X, 1, -5, 1), IndexError, "narrow: start -5 is out of range"),
    (lambda: F.narrow(X, 1, 0, -1), ValueError, "length must be non-negative"),
    (lambda: F.flip(X, (0, 0)), ValueError, "flip: dimension 0 appears more than once"),
    (lambda: F.flip(X, 2), IndexError, "flip: dimension 2 is out of range"),
    (lambda: F.fliplr(X[0]), ValueError, "fliplr: .*at least 2 dimensions"),
    (lambda: F.flipud(minigan.tensor(1.0)), ValueError, "flipud: .*at least one dimension"),
    (lambda: F.roll(X, (1, 2)), ValueError, "roll: 2 shifts need as many dims"),
    (lambda: F.roll(X, (1, 2), (0,)), ValueError, "shifts .* and dims .* same length"),
    (lambda: F.roll(X, (), ()), ValueError, "roll: shifts must not be empty"),
    (lambda: F.rot90(X, 1, (0, 0)), ValueError, "rot90: the rotation dims must differ"),
    (lambda: F.rot90(X, 1, (0, 1, 2)), ValueError, "exactly 2 rotation dims"),
    (lambda: F.rot90(X[0]), ValueError, "rot90: .*at least 2 dimensions"),
    (lambda: X.repeat(2), ValueError, "repeat: 1 repeat counts for a tensor of shape"),
    (lambda: X.repeat(2, -1), ValueError, "repeat counts must be non-negative"),
    (lambda: F.repeat_interleave(X, -1), ValueError, "repeats must be non-negative"),
    (lambda: F.repeat_interleave(X, [1, -1, 1], dim=0), ValueError,
     "repeats must be non-negative"),
    (lambda: F.repeat_interleave(X, [1, 2], dim=0), ValueError,
     r"repeats of shape \(2,\) for dimension 0 of size 3"),
    (lambda: F.repeat_interleave(X, minigan.tensor([1.0, 2.0, 1.0]), dim=0), TypeError,
     "repeats must be an integer"),
    (lambda: F.gather(X, 1, [1, 2]), ValueError, "must have as many dimensions as input"),
    (lambda: F.gather(X, 1, [[0]] * 4), ValueError,
     r"larger than input of shape \(3, 4\) in dimension 0 \(only dimension 1 may differ\)"),
    (lambda: F.gather(X, 2, [[0]]), IndexError, "gather: dimension 2 is out of range"),
    (lambda: F.gather(X, 1, [[0.5]]), TypeError, "gather: index must be an integer"),
    (lambda: F.scatter(X, 1, [[0, 1]], minigan.ones(1, 1, dtype=np.float32)), ValueError,
     r"larger than src of shape \(1, 1\)"),
    (lambda: F.scatter(X, 1, [[0]], minigan.ones(1, 1, dtype=np.float64)), TypeError,
     "scatter: src has dtype float64 but input has float32"),
    (lambda: F.scatter(X, 1, [[0]]), TypeError, "scatter: give src or value"),
    (lambda: F.scatter(X, 1, [[0]], X, reduce="multiply"), NotImplementedError,
     "reduce='multiply'"),
    (lambda: F.scatter_add(X, 1, [[0]], 1.0), TypeError, "scatter_add: src must be a tensor"),
    (lambda: F.index_select(X, 1, [[0]]), ValueError, "index_select: index must be 0-d or 1-d"),
    (lambda: F.index_select(minigan.tensor(1.0), 0, [0, 0]), ValueError,
     "a 0-d input takes one index"),
    (lambda: F.masked_fill(X, (X > 3).astype(np.float32), 0.0), TypeError,
     "masked_fill: the mask must be a bool tensor, got dtype float32"),
    (lambda: F.masked_fill(X, X > 3, minigan.tensor([1.0])), ValueError,
     "masked_fill: a tensor value must be 0-d"),
    (lambda: F.masked_fill(X, minigan.tensor([True, False]), 0.0), ValueError,
     r"masked_fill: mask of shape \(2,\) cannot be broadcast with input of shape \(3, 4\)"),
    (lambda: F.masked_fill(X, X > 3, "a"), TypeError, "value must be a number"),
    (lambda: F.masked_select(X, X), TypeError, "masked_select: the mask must be a bool"),
    (lambda: F.take_along_dim(X, [0, 1], 1), ValueError, "same number of dimensions"),
    (lambda: F.take_along_dim(X, [[0], [1]], 1), ValueError,
     "cannot be broadcast outside dimension 1"),
    (lambda: F.tril(X[0]), ValueError, "tril: expects a tensor with at least 2 dimensions"),
    (lambda: F.diag(minigan.tensor(1.0)), ValueError, "diag: expects a 1-d or 2-d tensor"),
    (lambda: F.diag(minigan.zeros(2, 2, 2)), ValueError, "diag: expects a 1-d or 2-d tensor"),
    (lambda: F.diagonal(X, 0, 1, 1), ValueError, "diagonal: dim1 and dim2 must differ"),
    (lambda: F.diagonal(X[0]), IndexError, "diagonal: dimension 1 is out of range"),
    (lambda: F.trace(X[0]), ValueError, r"trace: expects a matrix \(2-d\)"),
    (lambda: F.trace(X > 1), TypeError, "trace: not defined for bool"),
    (lambda: F.movedim(X, (0, 1), (1,)), ValueError, "must name as many dims"),
    (lambda: F.movedim(X, (0, 0), (0, 1)), ValueError, "movedim: a dim is repeated in source"),
    (lambda: F.movedim(X, (0, 1), (1, 1)), ValueError, "repeated in destination"),
    (lambda: F.movedim(X, 2, 0), IndexError, "movedim: dimension 2 is out of range"),
    (lambda: F.unflatten(X, 1, (3, -1)), ValueError, r"sizes \(3, -1\) do not multiply up"),
    (lambda: F.unflatten(X, 1, (-1, -1)), ValueError, "only one size may be -1"),
    (lambda: F.unflatten(X, 1, ()), ValueError, "sizes must not be empty"),
    (lambda: F.hstack([]), ValueError, "hstack: expects a non-empty sequence"),
    (lambda: F.hstack([X, X[0]]), ValueError, r"hstack: shapes \(3, 4\), \(4,\) differ"),
    (lambda: F.vstack([X, minigan.zeros(2, 5)]), ValueError, r"vstack: shapes \(3, 4\)"),
    (lambda: F.meshgrid(minigan.zeros(2, 2), indexing="ij"), ValueError,
     "meshgrid: expects 0-d or 1-d tensors"),
    (lambda: F.meshgrid(minigan.arange(2), minigan.zeros(2), indexing="ij"), TypeError,
     "meshgrid: expects tensors of one dtype"),
    (lambda: F.meshgrid(minigan.arange(2), indexing="foo"), ValueError,
     "indexing must be 'ij' or 'xy'"),
    (lambda: F.meshgrid(indexing="ij"), ValueError, "meshgrid: expects a non-empty sequence"),
    (lambda: F.broadcast_shapes((3, 1), (4,), 5), ValueError,
     r"broadcast_shapes: shapes \(3, 1\), \(4,\), \(5,\) cannot be broadcast"),
    (lambda: F.broadcast_shapes((-1,)), ValueError, "sizes must be non-negative ints"),
    (lambda: F.broadcast_tensors(X, X[:2]), ValueError, "cannot be broadcast"),
    (lambda: F.sort(X, 2), IndexError, "sort: dimension 2 is out of range"),
    (lambda: F.topk(X, 5), ValueError, "topk: k=5 is out of range for dimension 1 of size 4"),
    (lambda: F.topk(X, -1), ValueError, "topk: k=-1 is out of range"),
    (lambda: F.kthvalue(X, 0), ValueError, "kthvalue: k=0 is out of range"),
    (lambda: F.kthvalue(X, 5), ValueError, "kthvalue: k=5 is out of range"),
    (lambda: F.median(minigan.zeros(3, 0), 1), IndexError, "median: dimension 1 to reduce"),
    (lambda: X[0].mT, ValueError, r"tensor.mT is only supported on matrices or batches"),
    (lambda: X[0].mH, ValueError, r"tensor.mH is only supported"),
    (lambda: X.reshape(1, 3, 4).H, ValueError, r"tensor.H is only supported on matrices"),
    (lambda: X.view_as(minigan.zeros(5)), ValueError, "reshape: cannot reshape"),
    (lambda: X.view_as([1, 2]), TypeError, "view_as: expects a tensor"),
    (lambda: X.new_zeros(-1), ValueError, "new_zeros: sizes must be non-negative"),
    (lambda: X.long().new_zeros(2, requires_grad=True), TypeError,
     "only floating-point tensors can require gradients"),
])
def test_bad_arguments_raise_clear_errors(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


# ----------------------------------------------------------------------------- Tensor methods

def test_new_factories_take_self_dtype_and_device(device):
    x = _t(np.zeros(3, dtype=np.float64), device)
    for y, shape, value in ((x.new_zeros(2, 3), (2, 3), 0), (x.new_ones((2,)), (2,), 1),
                            (x.new_full((2, 2), 7), (2, 2), 7), (x.new_empty(4), (4,), None)):
        assert y.shape == shape and y.dtype == np.float64 and y.device == device
        assert not y.requires_grad and y.is_leaf
        if value is not None:
            assert (y.numpy() == value).all()
    assert x.new_ones(()).shape == ()
    assert x.new_zeros(2, dtype=np.int64).dtype == np.int64
    assert x.new_zeros(2, device="cpu").device == "cpu"
    assert x.new_zeros(2, requires_grad=True).requires_grad
    t = x.new_tensor([1, 2])
    assert t.dtype == np.float64 and t.device == device and t.tolist() == [1.0, 2.0]
    assert x.long().new_tensor([1.5, 2.0]).tolist() == [1, 2]
    src = _t(np.array([1.0]), device)
    copy = x.new_tensor(src)
    copy.data[...] = 5.0
    assert src.numpy().tolist() == [1.0]  # a copy


def test_view_type_and_layout_methods(device):
    x = _t(normal(2, 3), device, grad=True)
    assert x.contiguous() is x
    assert x.is_contiguous() and not x.mT.is_contiguous()
    y = x.type_as(_t(np.zeros(1, dtype=np.float32), device))
    assert y.dtype == np.float32 and y.device == device
    y.sum().backward()
    assert x.grad.dtype == np.float64 and (x.grad.numpy() == 1).all()
    assert x.mH.shape == (3, 2) and x.H.shape == (3, 2)
    with pytest.warns(UserWarning, match="deprecated"):  # (torch warns too)
        assert minigan.tensor(2.0).H.item() == 2.0
    z = minigan.zeros(2, 3, 4)
    assert z.mT.shape == (2, 4, 3) and z.mH.shape == (2, 4, 3)


def test_type_as_moves_to_the_other_tensors_device(emulated_gpu):
    x = minigan.tensor([1.0, 2.0])
    y = x.type_as(minigan.tensor([1], dtype=np.int32).to("cuda"))
    assert y.device == "cuda" and y.dtype == np.int32


def test_results_do_not_alias_their_input_where_torch_copies():
    x = minigan.tensor([1.0, 2.0, 3.0])
    for y in (F.flip(x, 0), F.roll(x, 0), F.roll(x, 3), x.repeat(1), F.tile(x, (1,)),
              F.hstack([x]), F.flip(x, ())):
        y += 10.0
        assert x.tolist() == [1.0, 2.0, 3.0]


def test_top_level_and_method_names_exist():
    for name in S.__all__:
        assert getattr(minigan, name) is getattr(S, name)
        assert getattr(F, name) is getattr(S, name)
    assert not hasattr(minigan, "repeat")  # a Tensor method only, as in torch
    for name in S.TENSOR_METHODS:
        assert hasattr(minigan.Tensor, name)
    assert minigan.movedim is minigan.moveaxis


def test_sort_results_are_named_tuples():
    r = F.sort(minigan.tensor([2.0, 1.0]))
    values, indices = r
    assert values is r.values and indices is r.indices and isinstance(r, tuple)
    for fn in (lambda x: F.topk(x, 1), lambda x: F.kthvalue(x, 1), lambda x: F.median(x, 0)):
        r = fn(minigan.tensor([2.0, 1.0]))
        assert r.values is r[0] and r.indices is r[1] and r.indices.dtype == np.int64


# ----------------------------------------------------------------------------- against torch

def _to_torch(torch, a):
    return torch.tensor(np.asarray(a))


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_match_torch(name, fn, ref, inputs):
    """The same function, run through torch with torch's ops: the values, and the input
    gradients for one upstream gradient."""
    torch = pytest.importorskip("torch")
    tf = _torch_twin(torch, name)
    if tf is None:
        pytest.skip(f"{name}: no torch twin (a minigan-only argument form)")
    mg_in = [minigan.Tensor(a.copy(), requires_grad=True) for a in inputs]
    t_in = [torch.tensor(a, requires_grad=True) for a in inputs]
    ys = _as_tuple(fn(*mg_in))
    ts = _as_tuple(tf(*t_in))
    assert len(ys) == len(ts)
    gys = [R.standard_normal(y.shape) for y in ys]
    for y, t in zip(ys, ts):
        assert y.shape == tuple(t.shape)
        np.testing.assert_array_equal(y.numpy(), t.detach().numpy())
    gm = minigan.grad(list(ys), mg_in, [minigan.Tensor(g) for g in gys], allow_unused=True)
    gt = torch.autograd.grad(ts, t_in, [torch.tensor(g) for g in gys], allow_unused=True)
    for a, b in zip(gm, gt):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


def _torch_twin(torch, name):
    """The torch version of CASES[name] (torch lacks list indices: tensors here)."""
    L = torch.tensor
    m45 = torch.tensor(MASK45)
    twins = {
        "chunk": lambda x: torch.chunk(x, 3, 2),
        "chunk_method": lambda x: x.chunk(2, 1),
        "split_size": lambda x: torch.split(x, 2, 1),
        "split_sizes": lambda x: x.split([1, 3, 1], -1),
        "tensor_split": lambda x: torch.tensor_split(x, 3, 2),
        "tensor_split_idx": lambda x: torch.tensor_split(x, [1, 4, 2, 7], 2),
        "unbind": lambda x: torch.unbind(x, 1),
        "narrow": lambda x: torch.narrow(x, 2, -3, 2),
        "flip": lambda x: torch.flip(x, (0, 2)),
        "flip_method": lambda x: x.flip(-1),
        "fliplr": torch.fliplr,
        "flipud": torch.flipud,
        "roll_flat": lambda x: torch.roll(x, 7),
        "roll_dims": lambda x: torch.roll(x, (1, -7), (0, 2)),
        "rot90": lambda x: torch.rot90(x, 1, (1, 2)),
        "rot90_neg": lambda x: torch.rot90(x, -1, (2, 0)),
        "rot90_two": lambda x: x.rot90(2),
        "repeat": lambda x: x.repeat(2, 1, 3),
        "repeat_more_dims": lambda x: x.repeat(2, 1, 2, 1),
        "tile": lambda x: torch.tile(x, (2, 2)),
        "tile_method": lambda x: x.tile(3),
        "repeat_interleave": lambda x: torch.repeat_interleave(x, 2, 1),
        "repeat_interleave_flat": lambda x: x.repeat_interleave(3),
        "repeat_interleave_counts": lambda x: torch.repeat_interleave(x, L([1, 0, 3, 1]), 1),
        "gather": lambda x: torch.gather(x, 1, L(GIDX)),
        "gather_method": lambda x: x.gather(1, L([[4, 4, 0], [1, 2, 3]])),
        # (torch's backward refuses a src larger than index: the twin cuts it first)
        "scatter": lambda x, s: torch.scatter(x, 2, L(SIDX), s[:, :2, :2]),
        "scatter_value": lambda x: x.scatter(2, L(SIDX), 2.5),
        "scatter_add": lambda x, s: torch.scatter_add(x, 0, L(AIDX), s[:, :1, :3]),
        "scatter_reduce_add": None,
        "index_select": lambda x: torch.index_select(x, 2, L([4, 0, 4])),
        "masked_fill": lambda x: torch.masked_fill(x, m45, -1.5),
        "masked_fill_broadcast": lambda x: x.masked_fill(m45, 0.0),
        "masked_fill_tensor_value": lambda x, v: torch.masked_fill(x, m45, v),
        "masked_select": lambda x: torch.masked_select(x, m45),
        "take_along_dim": lambda x: torch.take_along_dim(x, L([[[0, 4]], [[1, 1]], [[2, 3]]]),
                                                         2),
        "take_along_dim_flat": lambda x: x.take_along_dim(L([3, 50, 3])),
        "tril": lambda x: torch.tril(x, 1),
        "triu": lambda x: x.triu(-1),
        "diag_of_matrix": lambda x: torch.diag(x, 1),
        "diag_of_vector": lambda x: x.diag(-2),
        "diagonal": lambda x: torch.diagonal(x, 1, 2, 0),
        "diagonal_method": lambda x: x.diagonal(-1, -2, -1),
        "trace": torch.trace,
        "movedim": lambda x: torch.movedim(x, (0, 1), (2, 0)),
        "moveaxis_method": lambda x: x.moveaxis(0, -1),
        "swapaxes": lambda x: torch.swapaxes(x, 0, 2),
        "swapdims_method": lambda x: x.swapdims(1, 2),
        "unflatten": lambda x: torch.unflatten(x, 1, (2, -1)),
        "hstack": lambda a, b: torch.hstack([a, b]),
        "hstack_1d": lambda a, b: torch.hstack([a, b]),
        "vstack": lambda a, b: torch.vstack([a, b]),
        "dstack": lambda a, b: torch.dstack([a, b]),
        "column_stack": lambda a, b: torch.column_stack([a, b]),
        "meshgrid_ij": lambda a, b: torch.meshgrid(a, b, indexing="ij"),
        "meshgrid_xy": lambda a, b, c: torch.meshgrid([a, b, c], indexing="xy"),
        "broadcast_tensors": lambda a, b: torch.broadcast_tensors(a, b),
        "sort": lambda x: torch.sort(x, 1).values,
        "sort_descending": lambda x: x.sort(0, True).values,
        "topk": lambda x: torch.topk(x, 2, 1).values,
        "topk_smallest": lambda x: x.topk(3, largest=False).values,
        "kthvalue": lambda x: torch.kthvalue(x, 2, 1).values,
        "kthvalue_keepdim": lambda x: x.kthvalue(5, 2, True).values,
        "median_all": torch.median,
        "median_dim": lambda x: torch.median(x, 1).values,
        "view_as": lambda x: x.view_as(torch.zeros(5, 12)),
        "reshape_as": lambda x: x.reshape_as(torch.zeros(60)),
        "expand_as": lambda x: x.expand_as(torch.zeros(2, 4, 5)),
        "mT": lambda x: x.mT,
        "H": lambda x: x.H,
    }
    return twins[name]


def test_index_and_tie_choices_match_torch():
    """Indices where torch is deterministic: stable sorts (with ties and NaN), argsort, and
    gather/scatter_add/index_select with repeated indices; gradients of sort among ties,
    median() split evenly, masked_fill's value, and scatter's src with a repeated index."""
    torch = pytest.importorskip("torch")
    nan = np.nan
    a = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, nan, 1.0], [0.0, 0.0, -1.0, 5.0, 5.0, 0.0, 2.0]])
    for dim, desc in ((1, False), (1, True), (0, False), (0, True)):
        m = F.sort(minigan.tensor(a), dim, desc)
        t = torch.sort(torch.tensor(a), dim=dim, descending=desc, stable=True)
        np.testing.assert_array_equal(m.values.numpy(), t.values.numpy())
        np.testing.assert_array_equal(m.indices.numpy(), t.indices.numpy())
        np.testing.assert_array_equal(F.argsort(minigan.tensor(a), dim, desc).numpy(),
                                      torch.argsort(torch.tensor(a), dim=dim, descending=desc,
                                                    stable=True).numpy())
    ints = np.array([[3, 1, 3, 1, 2]])
    np.testing.assert_array_equal(F.sort(minigan.tensor(ints), descending=True).indices.numpy(),
                                  torch.sort(torch.tensor(ints), descending=True,
                                             stable=True).indices.numpy())
    # gradients among ties, through the indices each library reports
    b = np.array([2.0, 1.0, 2.0, 1.0, 2.0])
    g = np.arange(5.0) + 1
    xm, xt = minigan.tensor(b, requires_grad=True), torch.tensor(b, requires_grad=True)
    F.sort(xm, descending=True).values.backward(minigan.tensor(g))
    torch.sort(xt, descending=True, stable=True).values.backward(torch.tensor(g))
    np.testing.assert_array_equal(xm.grad.numpy(), xt.grad.numpy())
    c = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 3.0], [nan, 1.0, nan, 0.0, 0.0, 0.0]])
    for row in c:
        xm, xt = minigan.tensor(row, requires_grad=True), torch.tensor(row, requires_grad=True)
        F.median(xm).backward()
        torch.median(xt).backward()
        np.testing.assert_array_equal(xm.grad.numpy(), xt.grad.numpy())
    d = np.array([[2.0, nan, 1.0, 0.5, nan], [4.0, 2.0, 3.0, 5.0, 1.0]])
    m, t = F.median(minigan.tensor(d), 1), torch.median(torch.tensor(d), 1)
    np.testing.assert_array_equal(m.values.numpy(), t.values.numpy())
    np.testing.assert_array_equal(m.indices.numpy(), t.indices.numpy())
    xm, xt = minigan.tensor(c, requires_grad=True), torch.tensor(c, requires_grad=True)
    vm, vt = (minigan.tensor(0.5, dtype=np.float64, requires_grad=True),
              torch.tensor(0.5, dtype=torch.float64, requires_grad=True))
    gy = R.standard_normal(c.shape)
    F.masked_fill(xm, minigan.tensor(c > 1), vm).backward(minigan.tensor(gy))
    torch.masked_fill(xt, torch.tensor(c > 1), vt).backward(torch.tensor(gy))
    np.testing.assert_allclose(vm.grad.numpy(), vt.grad.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(xm.grad.numpy(), xt.grad.numpy())
    # scatter with a repeated index: which write lands is unspecified, the gradients are not
    x0, s0 = np.zeros((2, 3)), np.array([[1.0, 2.0], [3.0, 4.0]])
    idx = [[2, 0], [1, 1]]
    xm, sm = minigan.tensor(x0, requires_grad=True), minigan.tensor(s0, requires_grad=True)
    xt, st = torch.tensor(x0, requires_grad=True), torch.tensor(s0, requires_grad=True)
    gy = R.standard_normal((2, 3))
    F.scatter(xm, 1, idx, sm).backward(minigan.tensor(gy))
    torch.scatter(xt, 1, torch.tensor(idx), st).backward(torch.tensor(gy))
    np.testing.assert_array_equal(xm.grad.numpy(), xt.grad.numpy())
    np.testing.assert_array_equal(sm.grad.numpy(), st.grad.numpy())


def test_dtypes_match_torch():
    torch = pytest.importorskip("torch")
    for dt in (np.float32, np.int32, np.int64, np.uint8):
        a = (np.arange(12) % 5).reshape(3, 4).astype(dt)
        m, t = minigan.tensor(a), torch.tensor(a)
        pairs = [(F.sort(m, 1).values, torch.sort(t, 1).values),
                 (F.sort(m, 1).indices, torch.sort(t, 1).indices),
                 (F.topk(m, 2).values, torch.topk(t, 2).values) if dt != np.uint8 else None,
                 (F.gather(m, 1, [[0]]), torch.gather(t, 1, torch.tensor([[0]]))),
                 (F.index_select(m, 0, [1]), torch.index_select(t, 0, torch.tensor([1]))),
                 (F.masked_fill(m, m > 2, 1.5), torch.masked_fill(t, t > 2, 1.5)),
                 (F.trace(m), torch.trace(t)), (F.tril(m), torch.tril(t)),
                 (m.repeat(2, 1), t.repeat(2, 1)),
                 (F.scatter_add(m, 1, [[0, 0]], m[:1, :2]),
                  torch.scatter_add(t, 1, torch.tensor([[0, 0]]), t[:1, :2])),
                 (F.median(m), torch.median(t)), (F.kthvalue(m, 2).values,
                                                  torch.kthvalue(t, 2).values)]
        for p in pairs:
            if p is None:
                continue
            y, ty = p
            assert str(y.dtype) == str(ty.dtype).replace("torch.", ""), (dt, y.dtype, ty.dtype)
            np.testing.assert_array_equal(y.numpy(), ty.numpy())


# ----------------------------------------------------------------------------- fuzzer findings

def _narrow_ref(n, start, length):
    """torch's rules: start in [-n, n], a negative one plus n; then start + length <= n.
    The (start, stop) of the piece, or None where torch raises."""
    if not -n <= start <= n or length < 0:
        return None
    if start < 0:
        start += n
    return (start, start + length) if start + length <= n else None


def test_narrow_follows_torchs_bounds(device):
    """start = n with length > 0 gave the first entries (start % n) instead of an error."""
    x = _t(np.arange(12.0).reshape(3, 4), device)
    with pytest.raises(ValueError, match=r"start \(4\) \+ length \(1\) exceeds the size 4"):
        F.narrow(x, 1, 4, 1)
    with pytest.raises(ValueError, match=r"start \(3\) \+ length \(2\) exceeds"):
        F.narrow(x, 1, -1, 2)
    assert F.narrow(x, 1, 4, 0).shape == (3, 0)
    for start in range(-5, 6):
        for length in range(6):
            want = _narrow_ref(4, start, length)
            if want is None:
                with pytest.raises((IndexError, ValueError), match="narrow: "):
                    F.narrow(x, 1, start, length)
            else:
                np.testing.assert_array_equal(F.narrow(x, 1, start, length).numpy(),
                                              np.arange(12.0).reshape(3, 4)[:, slice(*want)])
    e = _t(np.zeros((2, 0)), device)
    assert F.narrow(e, 1, 0, 0).shape == (2, 0)
    for start in (-1, 1):
        with pytest.raises(IndexError, match=f"narrow: start {start} is out of range"):
            F.narrow(e, 1, start, 0)


def test_narrow_bounds_match_torch():
    torch = pytest.importorskip("torch")
    for n in (0, 1, 4):
        x = np.arange(2.0 * n).reshape(2, n)
        for start in range(-n - 2, n + 3):
            for length in range(-1, n + 2):
                try:
                    want = torch.narrow(torch.tensor(x), 1, start, length).numpy()
                except (IndexError, RuntimeError):
                    want = None
                if want is None:
                    with pytest.raises((IndexError, ValueError)):
                        F.narrow(minigan.tensor(x), 1, start, length)
                else:
                    got = F.narrow(minigan.tensor(x), 1, start, length)
                    np.testing.assert_array_equal(got.numpy(), want)


def test_median_of_a_zero_d_tensor_first_and_second_order(device):
    """The even split of median()'s gradient was a NumPy scalar for a 0-d input (a TypeError
    in backward)."""
    for v in (0.9, -1.5):
        x = _t(np.array(v), device, grad=True)
        (g,) = minigan.grad(F.median(x), [x])
        assert g.shape == () and g.item() == 1.0
        check_backward(lambda t: F.median(t) ** 3, [backend.to_device(np.array(v), device)])
        check_double_backward(lambda t: F.median(t) ** 3,
                              [backend.to_device(np.array(v), device)])
        check_double_backward(lambda t: F.median(t, 0).values ** 3,
                              [backend.to_device(np.array(v), device)])
    x = _t(np.array(np.nan), device, grad=True)
    assert minigan.grad(F.median(x), [x])[0].item() == 1.0


def test_unflatten_infers_minus_one_on_empty_tensors(device):
    """reshape cannot infer -1 for a tensor with no entries: unflatten works it out itself."""
    z = _t(np.zeros((2, 0, 3)), device)
    assert F.unflatten(z, -1, (-1, 1)).shape == (2, 0, 3, 1)
    assert F.unflatten(z, 1, (-1, 1)).shape == (2, 0, 1, 3)
    assert F.unflatten(z, 1, (2, -1)).shape == (2, 2, 0, 3)
    assert F.unflatten(z, 1, (0, 5)).shape == (2, 0, 5, 3)
    assert F.unflatten(_t(normal(2, 6), device), 1, (3, -1)).shape == (2, 3, 2)
    for sizes in ((-1, 0), (0, -1)):
        with pytest.raises(ValueError, match=r"unflatten: sizes .* leave the -1 undetermined"):
            F.unflatten(z, 1, sizes)
    with pytest.raises(ValueError, match="do not multiply up to the size 6"):
        F.unflatten(_t(normal(2, 6), device), 1, (-1, 0))
    with pytest.raises(ValueError, match=r"sizes must be non-negative \(or one -1\)"):
        F.unflatten(_t(normal(2, 6), device), 1, (-2, -3))
    x = _t(normal(2, 0, 3), device, grad=True)
    y = F.unflatten(x, 2, (-1, 3))
    assert minigan.grad(y.sum(), [x])[0].shape == (2, 0, 3)


def test_unflatten_on_empty_tensors_matches_torch():
    torch = pytest.importorskip("torch")
    for shape, dim, sizes in (((2, 0, 3), -1, (-1, 1)), ((2, 0, 3), 1, (-1, 1)),
                              ((2, 0, 3), 1, (2, -1)), ((2, 0, 3), 1, (-1, 0)),
                              ((4, 6), 1, (-1, 0)), ((4, 6), 1, (-1, 2)), ((0,), 0, (3, -1))):
        try:
            want = torch.zeros(shape).unflatten(dim, sizes).shape
        except RuntimeError:
            want = None
        if want is None:
            with pytest.raises(ValueError):
                F.unflatten(minigan.zeros(*shape), dim, sizes)
        else:
            assert F.unflatten(minigan.zeros(*shape), dim, sizes).shape == tuple(want)


def test_matrix_transposes_of_a_zero_d_tensor_warn_and_return_it(device):
    """torch 2.13: x.mT, x.mH and x.H of a 0-d tensor are the identity, with a deprecation
    warning (mT and mH raised here)."""
    x = _t(np.array(2.5), device, grad=True)
    for name in ("mT", "mH", "H"):
        with pytest.warns(UserWarning, match=f"tensor.{name} on a 0-d tensor is deprecated"):
            y = getattr(x, name)
        assert y is x
    with pytest.raises(ValueError, match="tensor.mT is only supported on matrices"):
        _ = _t(np.zeros(3), device).mT


def test_take_along_dim_wraps_indices_as_torch(device):
    """torch takes each index modulo the size of dim (-1 is the last entry, n the first);
    the negative ones were refused as out of range."""
    a = np.arange(12.0).reshape(3, 4)
    idx = np.array([[-1], [-4], [5]])
    x = _t(a, device, grad=True)
    y = F.take_along_dim(x, _t(idx, device), 1)
    np.testing.assert_array_equal(y.numpy(), np.take_along_axis(a, idx % 4, 1))
    assert y.numpy().ravel().tolist() == [3.0, 4.0, 9.0]
    y.backward(_t(np.array([[1.0], [2.0], [3.0]]), device))
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 0, 1], [2, 0, 0, 0], [0, 3, 0, 0]])
    # broadcast outside dim, and gradients of both orders
    b = np.array([[[-2, 0, -9]]])  # (1, 1, 3) against (2, 3, 4)
    host = normal(2, 3, 4)
    xs = [backend.to_device(host, device)]
    got = F.take_along_dim(_t(host, device), _t(b, device), 2)
    np.testing.assert_array_equal(got.numpy(), np.take_along_axis(
        host, np.broadcast_to(b % 4, (2, 3, 3)), 2))
    check_backward(lambda t: F.take_along_dim(t, _t(b, device), 2), xs)
    check_double_backward(lambda t: F.take_along_dim(t, _t(b, device), 2) ** 2, xs)
    # without dim the flattened indices must be in range (torch's gather refuses -1 there)
    with pytest.raises(IndexError, match="gather: index -1 is out of bounds"):
        F.take_along_dim(_t(a, "cpu"), [-1])
    with pytest.raises(IndexError, match="take_along_dim: indices of shape .* dimension 1 of "
                                         "size 0"):
        F.take_along_dim(_t(np.zeros((3, 0)), device), _t(np.zeros((3, 1), np.int64), device), 1)
    assert F.take_along_dim(_t(np.zeros((3, 0)), device),
                            _t(np.zeros((3, 0), np.int64), device), 1).shape == (3, 0)
    with pytest.raises(IndexError, match="take_along_dim: a 0-d input has no dimension 0"):
        F.take_along_dim(_t(np.array(1.0), device), _t(np.array(0), device), 0)
    assert F.take_along_dim(_t(np.array(1.0), device), _t(np.array(0), device)).shape == (1,)


def test_take_along_dim_wrapping_matches_torch():
    torch = pytest.importorskip("torch")
    a = normal(3, 4)
    for i in (-9, -5, -4, -1, 0, 3, 4, 5, 100):
        idx = np.array([[i], [i - 1], [2]])
        want = torch.take_along_dim(torch.tensor(a), torch.tensor(idx), 1).numpy()
        np.testing.assert_array_equal(F.take_along_dim(minigan.tensor(a), idx, 1).numpy(), want)
        want0 = torch.take_along_dim(torch.tensor(a), torch.tensor([[i, 1, -1, 0]]), 0).numpy()
        np.testing.assert_array_equal(
            F.take_along_dim(minigan.tensor(a), [[i, 1, -1, 0]], 0).numpy(), want0)


def test_take_along_dim_wrapping_stays_on_the_gpu(emulated_gpu):
    from tests.kernels.emulated_cupy import LOG
    x = _t(normal(3, 4), "cuda", grad=True)
    idx = minigan.tensor([[-1], [-4], [5]]).to("cuda")
    LOG.clear()
    y = F.take_along_dim(x, idx, 1)
    minigan.grad(y.sum(), [x])
    assert sum(LOG.syncs.values()) == 0, dict(LOG.syncs)
    assert y.numpy().ravel().tolist() == backend.to_numpy(x.data)[[0, 1, 2], [3, 0, 1]].tolist()


@pytest.mark.parametrize("call", [
    lambda b: F.topk(b, 1), lambda b: F.topk(b[0, 0], 1), lambda b: F.topk(b[:, :0], 0),
    lambda b: F.kthvalue(b, 1), lambda b: b.kthvalue(2, 0),
    lambda b: F.median(b), lambda b: F.median(b, 1), lambda b: b.median(),
    lambda b: F.median(b[0, 0]),
], ids=["topk", "topk_0d", "topk_empty", "kthvalue", "kthvalue_method", "median",
        "median_dim", "median_method", "median_0d"])
def test_sorting_reductions_refuse_bool_tensors_as_torch(device, call):
    b = _t(np.array([[True, False, True], [False, False, True]]), device)
    with pytest.raises(TypeError, match="not implemented for bool tensors"):
        call(b)


def test_bool_refusals_match_torch():
    torch = pytest.importorskip("torch")
    b = np.array([[True, False, True]])
    for name, fn in (("topk", lambda m, x: m.topk(x, 1)),
                     ("kthvalue", lambda m, x: m.kthvalue(x, 1)),
                     ("median", lambda m, x: m.median(x)),
                     ("median_dim", lambda m, x: m.median(x, 1)),
                     ("kthvalue_0d", lambda m, x: m.kthvalue(x[0, 0], 1)),
                     ("sort", lambda m, x: m.sort(x))):
        try:
            fn(torch, torch.tensor(b))
            refused = False
        except (RuntimeError, NotImplementedError):
            refused = True
        if refused:
            with pytest.raises(TypeError, match="bool"):
                fn(F, minigan.tensor(b))
        else:
            fn(F, minigan.tensor(b))
    # torch's quirk: kthvalue of a 0-d bool tensor is the tensor
    k = F.kthvalue(minigan.tensor(True), 1)
    assert k.values.item() is True and k.indices.item() == 0


def test_repeat_and_tile_need_their_counts():
    x = minigan.tensor([[1.0, 2.0]])
    with pytest.raises(TypeError, match="repeat: missing the repeat counts"):
        x.repeat()
    with pytest.raises(TypeError, match="tile: missing the repeat counts"):
        x.tile()
    assert minigan.tensor(2.0).repeat(()).shape == ()
    assert x.tile(2).tolist() == [[1.0, 2.0, 1.0, 2.0]]
    with pytest.raises(ValueError, match="repeat: 0 repeat counts for a tensor of shape"):
        x.repeat(())


def test_repeat_interleave_refuses_a_dim_of_a_zero_d_tensor():
    """torch raises for a dim of a 0-d tensor (minigan gave a 1-d result); dim=None works."""
    s = minigan.tensor(3.0)
    for dim in (0, -1):
        with pytest.raises(IndexError, match="repeat_interleave: a 0-d tensor has no dimension"):
            F.repeat_interleave(s, 2, dim)
        with pytest.raises(IndexError, match="repeat_interleave: a 0-d tensor has no dimension"):
            s.repeat_interleave(minigan.tensor([2]), dim)
    assert F.repeat_interleave(s, 2).tolist() == [3.0, 3.0]
