"""Linear-algebra products (minigan.functional.linalg): mm, bmm, mv, dot, vdot, inner, outer,
the fused add* products, tensordot, einsum, kron, cross and cdist.

Values are checked against NumPy references written here (and against torch where it is
installed), dtypes against torch's rules (minigan promotes mixed dtypes, as its matmul does),
error messages name the function and both shapes, and every op's gradient is checked against
finite differences in float64, first and second order. The conventions finite differences
cannot see are spelled out: diagonals of einsum get their gradient back on the diagonal only,
beta = 0 ignores NaN in ``input`` and sends it a zero gradient, and cdist has a zero gradient
at a zero distance.
"""
import numpy as np
import pytest

import minigan
from minigan import backend
from minigan.functional import linalg as L
from minigan.testing import GradientCheckError, check_backward, check_double_backward

to_np = backend.to_numpy
R = np.random.default_rng(11)


def _t(a, device="cpu", dtype=np.float64, grad=False):
    arr = np.asarray(a, dtype=dtype)
    return minigan.Tensor(backend.to_device(arr, device), requires_grad=grad)


def _r(*shape):
    return R.standard_normal(shape)


def _cdist_ref(a, b, p):
    d = a[..., :, None, :] - b[..., None, :, :]
    if p == 0:
        return (d != 0).sum(-1).astype(a.dtype)
    if p == np.inf:
        return np.abs(d).max(-1)
    return (np.abs(d) ** p).sum(-1) ** (1.0 / p)


# name, function of tensors, inputs (float64 arrays), NumPy reference of the arrays
A23, B34, V3, W4 = _r(2, 3), _r(3, 4), _r(3), _r(4)
BA, BB = _r(4, 2, 3), _r(4, 3, 5)
SQ = _r(3, 3)
CASES = [
    ("mm", L.mm, [A23, B34], lambda a, b: a @ b),
    ("bmm", L.bmm, [BA, BB], np.matmul),
    ("mv", L.mv, [A23, V3], lambda a, v: a @ v),
    ("dot", L.dot, [V3, _r(3)], np.dot),
    ("vdot", L.vdot, [V3, _r(3)], np.vdot),
    ("inner", L.inner, [BA, _r(5, 3)], np.inner),
    ("inner_0d", L.inner, [np.array(1.5), A23], lambda a, b: a * b),
    ("outer", L.outer, [V3, W4], np.outer),
    ("ger", L.ger, [W4, V3], np.outer),
    ("addmm", lambda x, a, b: L.addmm(x, a, b, beta=0.5, alpha=-2.0), [_r(4), A23, B34],
     lambda x, a, b: 0.5 * x - 2.0 * (a @ b)),
    ("addmm_default", L.addmm, [_r(2, 4), A23, B34], lambda x, a, b: x + a @ b),
    ("addmv", lambda x, m, v: L.addmv(x, m, v, beta=2.0, alpha=0.5), [_r(2), A23, V3],
     lambda x, m, v: 2.0 * x + 0.5 * (m @ v)),
    ("addr", lambda x, a, b: L.addr(x, a, b, beta=-1.0, alpha=3.0), [_r(3, 1), V3, W4],
     lambda x, a, b: -x + 3.0 * np.outer(a, b)),
    ("baddbmm", lambda x, a, b: L.baddbmm(x, a, b, beta=0.5, alpha=1.5), [_r(2, 1), BA, BB],
     lambda x, a, b: 0.5 * x + 1.5 * np.matmul(a, b)),
    ("addbmm", lambda x, a, b: L.addbmm(x, a, b, beta=1.5, alpha=0.5), [_r(2, 5), BA, BB],
     lambda x, a, b: 1.5 * x + 0.5 * np.einsum("bij,bjk->ik", a, b)),
    ("tensordot_int", L.tensordot, [_r(2, 3, 4), _r(3, 4, 5)], np.tensordot),
    ("tensordot_lists", lambda a, b: L.tensordot(a, b, ([0, 2], [2, 1])),
     [_r(2, 3, 4), _r(5, 4, 2)], lambda a, b: np.tensordot(a, b, ([0, 2], [2, 1]))),
    ("tensordot_0", lambda a, b: L.tensordot(a, b, 0), [V3, _r(2)],
     lambda a, b: np.tensordot(a, b, 0)),
    ("tensordot_size1", lambda a, b: L.tensordot(a, b, ([1], [0])), [_r(2, 1), _r(3, 4)],
     lambda a, b: a @ b.sum(0, keepdims=True)),
    ("einsum_matmul", lambda a, b: L.einsum("ij,jk->ik", a, b), [A23, B34],
     lambda a, b: a @ b),
    ("einsum_list", lambda a, b: L.einsum("ij,jk", [a, b]), [A23, B34], lambda a, b: a @ b),
    ("einsum_batch", lambda a, b: L.einsum("bij,bjk->bik", a, b), [BA, BB], np.matmul),
    ("einsum_ellipsis", lambda a, b: L.einsum("...ij,...jk", a, b), [BA, _r(3, 2)],
     lambda a, b: np.einsum("...ij,...jk", a, b)),
    ("einsum_ellipsis_broadcast", lambda a, b: L.einsum("...ij,...jk->...ik", a, b),
     [_r(2, 1, 2, 3), _r(3, 3, 4)], lambda a, b: np.matmul(a, b)),
    ("einsum_ellipsis_summed", lambda a, b: L.einsum("...ij,...jk->ik", a, b), [BA, BB],
     lambda a, b: np.einsum("bij,bjk->ik", a, b)),
    ("einsum_diagonal", lambda a: L.einsum("ii->i", a), [SQ], np.diagonal),
    ("einsum_trace", lambda a: L.einsum("ii", a), [SQ], np.trace),
    ("einsum_diag_3d", lambda a: L.einsum("iji->j", a), [_r(3, 2, 3)],
     lambda a: np.einsum("iji->j", a)),
    ("einsum_diag_times", lambda a, v: L.einsum("ii,i->i", a, v), [SQ, V3],
     lambda a, v: np.diagonal(a) * v),
    ("einsum_implicit", lambda a, b: L.einsum("ba,cb", a, b), [_r(3, 2), _r(4, 3)],
     lambda a, b: np.einsum("ba,cb", a, b)),
    ("einsum_implicit_ellipsis", lambda a, c: L.einsum("b...a,c", a, c), [_r(2, 5, 3), W4],
     lambda a, c: np.einsum("b...a,c", a, c)),
    ("einsum_three", lambda a, b, c: L.einsum("ij,jk,kl->li", a, b, c), [A23, B34, _r(4, 2)],
     lambda a, b, c: (a @ b @ c).T),
    ("einsum_sum", lambda a: L.einsum("ij->", a), [A23], np.sum),
    ("einsum_transpose", lambda a: L.einsum(" i j -> j i ", a), [A23], np.transpose),
    ("einsum_outer", lambda a, b: L.einsum("i,j->ij", a, b), [V3, W4], np.outer),
    ("einsum_hadamard", lambda a, b: L.einsum("ij,ij->ij", a, b), [_r(1, 3), A23],
     lambda a, b: a * b),
    ("einsum_dot", lambda a, b: L.einsum("i,i", a, b), [V3, _r(3)], np.dot),
    ("einsum_scalars", lambda a, b: L.einsum(",->", a, b), [np.array(2.5), np.array(-1.5)],
     np.multiply),
    ("kron", L.kron, [A23, _r(2, 2)], np.kron),
    ("kron_ranks", L.kron, [V3, _r(2, 2)], np.kron),
    ("cross_default", L.cross, [_r(4, 3), _r(4, 3)], lambda a, b: np.cross(a, b)),
    ("cross_dim0_broadcast", lambda a, b: L.cross(a, b, dim=0), [_r(3, 4), _r(3, 1)],
     lambda a, b: np.cross(a, b, axis=0)),
    ("cross_negative_dim", lambda a, b: L.cross(a, b, dim=-2), [_r(2, 3, 2), _r(2, 3, 2)],
     lambda a, b: np.cross(a, b, axis=-2)),
    ("cdist_p2", L.cdist, [_r(4, 3), _r(5, 3)], lambda a, b: _cdist_ref(a, b, 2.0)),
    ("cdist_p2_mm", lambda a, b: L.cdist(a, b, compute_mode="use_mm_for_euclid_dist"),
     [_r(4, 3), _r(5, 3)], lambda a, b: _cdist_ref(a, b, 2.0)),
    ("cdist_p2_large", L.cdist, [_r(27, 3), _r(4, 3)], lambda a, b: _cdist_ref(a, b, 2.0)),
    ("cdist_p1", lambda a, b: L.cdist(a, b, p=1), [_r(4, 3), _r(5, 3)],
     lambda a, b: _cdist_ref(a, b, 1.0)),
    ("cdist_p3_batched", lambda a, b: L.cdist(a, b, p=3), [_r(2, 1, 4, 3), _r(3, 5, 3)],
     lambda a, b: _cdist_ref(a, b, 3.0)),
    ("cdist_pinf", lambda a, b: L.cdist(a, b, p=float("inf")), [_r(4, 3), _r(5, 3)],
     lambda a, b: _cdist_ref(a, b, np.inf)),
]
IDS = [c[0] for c in CASES]
# cdist with p = 0 has a zero gradient everywhere and a piecewise-constant value
VALUE_ONLY = [("cdist_p0", lambda a, b: L.cdist(a, b, p=0), [_r(4, 3), np.round(_r(5, 3))],
               lambda a, b: _cdist_ref(a, b, 0))]


@pytest.mark.parametrize("name, fn, inputs, ref", CASES + VALUE_ONLY,
                         ids=IDS + [c[0] for c in VALUE_ONLY])
def test_values_match_numpy(device, name, fn, inputs, ref):
    y = fn(*[_t(a, device) for a in inputs])
    want = np.asarray(ref(*inputs))
    assert y.device == device
    assert y.dtype == np.float64
    assert y.shape == want.shape
    np.testing.assert_allclose(to_np(y.data), want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, fn, inputs, ref", CASES, ids=IDS)
def test_first_order_gradients(name, fn, inputs, ref):
    check_backward(fn, inputs)


@pytest.mark.parametrize("name, fn, inputs, ref", CASES, ids=IDS)
def test_second_order_gradients(name, fn, inputs, ref):
    check_double_backward(fn, inputs, atol=1e-6, rtol=1e-5)


def test_a_wrong_einsum_backward_fails_the_checker(monkeypatch):
    right = L.Einsum.backward

    def wrong(self, gy):
        return tuple(None if g is None else g * 1.001 for g in right(self, gy))
    monkeypatch.setattr(L.Einsum, "backward", wrong)
    with pytest.raises(GradientCheckError):
        check_backward(lambda a, b: L.einsum("ij,jk", a, b), [A23, B34])


# ----------------------------------------------------------------------------- einsum details

def test_diagonal_gradient_lands_on_the_diagonal_only():
    x = _t(SQ, grad=True)
    g, = minigan.grad(L.einsum("ii->i", x), x, _t([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(g.numpy(), np.diag([1.0, 2.0, 3.0]))
    g, = minigan.grad(L.einsum("ii", x), x)
    np.testing.assert_array_equal(g.numpy(), np.eye(3))
    x3 = _t(_r(2, 3, 2), grad=True)
    g, = minigan.grad(L.einsum("iji->j", x3), x3, _t([1.0, 2.0, 3.0]))
    want = np.zeros((2, 3, 2))
    for i in range(2):
        want[i, :, i] = [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(g.numpy(), want)


def test_einsum_second_derivative_of_a_quadratic_form_is_exact():
    # f(x) = x^T A x: the Hessian is A + A^T, the gradient of sum(grad) its row sums
    a = _t(SQ)
    x = _t(V3, grad=True)
    g, = minigan.grad(L.einsum("i,ij,j", x, a, x), x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), (SQ + SQ.T) @ V3, rtol=1e-12)
    h, = minigan.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), (SQ + SQ.T).sum(0), rtol=1e-12)


@pytest.mark.parametrize("eq, shapes, want", [
    ("ij,jk", [(2, 3), (3, 4)], (2, 4)),
    ("Ba,ab", [(3, 2), (2, 3)], (3, 3)),  # upper case sorts first, as in torch
    ("...ij,...jk", [(1, 2, 3), (6, 3, 4)], (6, 2, 4)),
    ("ij->...ij", [(2, 3)], (2, 3)),
    ("ijk,j", [(2, 3, 4), (3,)], (2, 4)),
])
def test_einsum_output_shapes(eq, shapes, want):
    assert L.einsum(eq, *[_t(np.ones(s)) for s in shapes]).shape == want


# ----------------------------------------------------------------------------- dtypes

def test_float32_stays_float32_and_mixed_floats_promote():
    a32, b32 = _t(A23, dtype=np.float32), _t(B34, dtype=np.float32)
    for y in (L.mm(a32, b32), L.einsum("ij,jk", a32, b32), L.tensordot(a32, b32, 1),
              L.addmm(_t(W4, dtype=np.float32), a32, b32, beta=0.5, alpha=2.0),
              L.cdist(a32, a32), L.kron(a32, b32), L.outer(_t(V3, dtype=np.float32), b32[0])):
        assert y.dtype == np.float32
    assert L.mm(a32, _t(B34)).dtype == np.float64
    assert L.mm(_t(A23, dtype=np.int64), b32).dtype == np.float32
    assert L.cross(_t(SQ, dtype=np.float32), _t(SQ)).dtype == np.float64


def test_integer_inputs_compute_exactly_in_their_dtype():
    a = np.arange(6).reshape(2, 3)
    b = np.arange(12).reshape(3, 4) - 5
    ti, tb = _t(a, dtype=np.int64), _t(b, dtype=np.int64)
    cases = [
        (L.mm(ti, tb), a @ b), (L.mv(ti, _t([1, 2, 3], dtype=np.int64)), a @ [1, 2, 3]),
        (L.dot(ti[0], ti[1]), a[0] @ a[1]), (L.outer(ti[0], tb[0]), np.outer(a[0], b[0])),
        (L.einsum("ij,jk->ki", ti, tb), (a @ b).T), (L.einsum("ii", tb[:, 1:]), np.trace(b[:, 1:])),
        (L.tensordot(ti, tb, 1), a @ b), (L.kron(ti, tb), np.kron(a, b)),
        (L.cross(ti, tb[:2, :3], dim=1), np.cross(a, b[:2, :3])),
        (L.addmm(tb[0], ti, tb, beta=2, alpha=3), 2 * b[0] + 3 * (a @ b)),
        (L.bmm(ti[None], tb[None]), (a @ b)[None]),
    ]
    for y, want in cases:
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y.numpy(), want)
    i32 = _t(a, dtype=np.int32)
    assert L.einsum("ij->i", i32).dtype == np.int64  # a sum within one operand, as torch's
    assert L.einsum("ij,ij->", i32, i32).dtype == np.int32  # products only


def _full(shape, value, dtype, device="cpu"):
    return _t(np.full(shape, value), device, dtype=dtype)


# (equation, operands as (shape, value, dtype), torch 2.13's result dtype and values)
_U8, _I8, _I32 = np.uint8, np.int8, np.int32
_INTEGER_EINSUM = [
    # a subscript summed within one operand: torch's sum, int64
    ("ij->j", [((300, 2), 200, _U8)], np.int64, [60000, 60000]),
    ("ij->", [((300, 2), 200, _U8)], np.int64, 120000),
    ("i...->...", [((300, 2), 200, _U8)], np.int64, [60000, 60000]),
    ("ij->i", [((2, 1), 200, _U8)], np.int64, [200, 200]),  # (one operand: summed, size 1 too)
    ("ij->i", [((2, 0), 200, _U8)], np.int64, [0, 0]),
    ("ii", [((3, 3), 200, _I32)], np.int64, 600),  # a trace
    ("ii->", [((3, 3), 200, _U8)], np.int64, 600),
    ("ij,k->i", [((2, 300), 200, _U8), ((2,), 200, _U8)], np.int64, [24000000, 24000000]),
    ("ij,kj->", [((2, 3), 200, _U8), ((2, 3), 200, _U8)], np.int64, 480000),
    ("ii,j->j", [((3, 3), 200, _U8), ((2,), 200, _U8)], np.int64, [120000, 120000]),
    ("ij,jk->ik", [((2, 1), 200, _U8), ((3, 2), 200, _U8)], np.int64, [[120000] * 2] * 2),
    ("ij,k->i", [((2, 3), 200, _I32), ((2,), 200, _U8)], np.int64, [240000, 240000]),
    ("i,->", [((300,), 100, _I8), ((), 200, _U8)], np.int64, 6000000),
    # the products before the sum wrap in uint8, as torch's (200 * 200 * 300 % 256 == 0)
    ("ij,jk,l->ik", [((2, 300), 200, _U8), ((300, 2), 200, _U8), ((2,), 200, _U8)],
     np.int64, [[0, 0], [0, 0]]),
    # m of size 1 is squeezed, not summed: 3 * 3 * 3 * 300 % 256 == 164, times 3 + 3
    ("ij,m,jk,l->ik", [((2, 300), 3, _U8), ((1,), 3, _U8), ((300, 2), 3, _U8), ((2,), 3, _U8)],
     np.int64, [[984, 984], [984, 984]]),
    # mixed: int8 * uint8 is int16 and wraps there before the int64 sum of j, as in torch
    ("i,i,i,j->i", [((2,), 100, _I8), ((2,), 200, _U8), ((2,), 200, _U8), ((3,), 200, _U8)],
     np.int64, [1382400, 1382400]),
    # products only (a diagonal, a contraction, a size-1 dim squeezed): the operands' dtype
    ("ii->i", [((3, 3), 200, _U8)], np.uint8, [200, 200, 200]),
    ("ij,jk->ik", [((2, 300), 200, _U8), ((300, 2), 200, _U8)], np.uint8, [[0, 0], [0, 0]]),
    ("ij,jk->ik", [((2, 300), 200, _I32), ((300, 2), 200, _I32)], np.int32,
     [[12000000] * 2] * 2),
    ("ij,jk->ik", [((2, 1), 200, _U8), ((1, 2), 200, _U8)], np.uint8, [[64, 64], [64, 64]]),
    ("ij,k->i", [((2, 1), 200, _U8), ((1,), 200, _U8)], np.uint8, [64, 64]),
    ("i,j->ij", [((2,), 200, _I32), ((2,), 200, _U8)], np.int32, [[40000] * 2] * 2),
    ("i,->i", [((2,), 100, _I8), ((), 200, _U8)], np.int16, [20000, 20000]),  # 0-d: dims too
]


@pytest.mark.parametrize("eq, ops, dtype, want", _INTEGER_EINSUM,
                         ids=[f"{c[0]}-{len(c[1])}-{i}" for i, c in enumerate(_INTEGER_EINSUM)])
def test_integer_einsum_dtypes_and_values_follow_torch(eq, ops, dtype, want, device):
    y = L.einsum(eq, *[_full(*op, device) for op in ops])
    assert y.dtype == dtype and y.device == device
    np.testing.assert_array_equal(to_np(y.data), np.asarray(want, dtype=dtype))


def test_float_einsum_keeps_its_dtype_where_integers_widen():
    for dt in (np.float16, np.float32, np.float64):
        assert L.einsum("ij->j", _full((3, 2), 2.0, dt)).dtype == dt
        assert L.einsum("ii", _full((3, 3), 2.0, dt)).dtype == dt
        assert L.einsum("ij,k->i", _full((2, 3), 2.0, dt), _full((2,), 2.0, dt)).dtype == dt
    assert L.einsum("ij,k->i", _full((2, 3), 2, np.int64), _full((2,), 2.0, np.float32)
                    ).dtype == np.float32


def test_bool_tensors_are_refused_where_torch_refuses_them():
    t = _t([[True, False], [True, True]], dtype=np.bool_)
    for fn in (lambda: L.mm(t, t), lambda: L.einsum("ij,jk", t, t), lambda: L.dot(t[0], t[1]),
               lambda: L.cdist(t, t)):
        with pytest.raises(TypeError, match="bool"):
            fn()
    assert L.outer(t[0], t[1]).dtype == np.bool_
    np.testing.assert_array_equal(L.kron(t, t).numpy(), np.kron(t.numpy(), t.numpy()))
    y = L.addr(_t(np.zeros((2, 2)), dtype=np.bool_), t[0], t[1], beta=True, alpha=True)
    np.testing.assert_array_equal(y.numpy(), np.outer([True, False], [True, True]))


def test_only_float_tensors_get_gradients_and_cdist_refuses_integers():
    with pytest.raises(TypeError, match="floating"):
        _t(A23, dtype=np.int64, grad=True)
    with pytest.raises(TypeError, match="cdist: only supports floating-point"):
        L.cdist(_t(A23, dtype=np.int64), _t(A23, dtype=np.int64))


def test_integer_tensors_refuse_float_beta_and_alpha():
    i = _t(np.ones((2, 2)), dtype=np.int64)
    # stricter than torch, which truncates beta to 0 here (only its addr refuses)
    with pytest.raises(TypeError, match="addmm: for integral input tensors, argument beta.*"
                                        "truncate it to an integer silently"):
        L.addmm(i, i, i, beta=0.5)
    for fn, args in ((L.addmv, (i[0], i, i[0])), (L.baddbmm, (i[None], i[None], i[None])),
                     (L.addbmm, (i, i[None], i[None]))):
        with pytest.raises(TypeError, match="argument alpha must not be a floating point"):
            fn(*args, alpha=1.5)
    with pytest.raises(TypeError, match="addr: .*argument alpha"):
        L.addr(i, i[0], i[0], alpha=1.5)


# ----------------------------------------------------------------------------- beta = 0

@pytest.mark.parametrize("fn, shape, others", [
    (L.addmm, (2, 4), [A23, B34]),
    (L.addmv, (2,), [A23, V3]),
    (L.addr, (3, 4), [V3, W4]),
    (L.baddbmm, (4, 2, 5), [BA, BB]),
    (L.addbmm, (2, 5), [BA, BB]),
])
def test_beta_zero_ignores_nan_and_inf_in_input(fn, shape, others):
    bad = np.full(shape, np.nan)
    bad.flat[0] = np.inf
    x = _t(bad, grad=True)
    ops = [_t(o, grad=True) for o in others]
    y = fn(x, *ops, beta=0, alpha=2.0)
    want = 2.0 * fn(_t(np.zeros(shape)), *[_t(o) for o in others]).numpy()
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12)
    gx, *gops = minigan.grad(y.sum(), [x] + ops)
    np.testing.assert_array_equal(gx.numpy(), np.zeros(shape))  # torch's: beta * gy
    assert all(np.isfinite(g.numpy()).all() for g in gops)


# ----------------------------------------------------------------------------- cdist at zero

@pytest.mark.parametrize("p, mode", [
    (2.0, "donot_use_mm_for_euclid_dist"), (2.0, "use_mm_for_euclid_dist"), (1.0, None),
    (3.0, None), (float("inf"), None),
])
def test_cdist_gradient_at_zero_distance_is_zero(p, mode):
    x = _t([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], grad=True)
    y = _t([[1.0, 2.0, 3.0], [4.0, 0.0, -1.0]], grad=True)
    kw = {} if mode is None else {"compute_mode": mode}
    d = L.cdist(x, y, p, **kw)
    assert d.numpy()[0, 0] == 0.0
    # only the (0, 0) distance: its gradient must be 0, not NaN
    gy = _t([[1.0, 0.0], [0.0, 0.0]])
    gx, gyy = minigan.grad(d, [x, y], gy, create_graph=True)
    np.testing.assert_array_equal(gx.numpy(), 0.0)
    np.testing.assert_array_equal(gyy.numpy(), 0.0)
    if gx.requires_grad:  # (p = 1 and inf: the gradient is constant in x, no graph)
        g2, = minigan.grad(gx.sum(), x, allow_unused=True)
        assert g2 is None or np.isfinite(g2.numpy()).all()


@pytest.mark.parametrize("rows1, rows2, mode, mm", [
    (4, 5, "use_mm_for_euclid_dist_if_necessary", False),
    (26, 5, "use_mm_for_euclid_dist_if_necessary", True),
    (4, 26, "use_mm_for_euclid_dist_if_necessary", True),
    (4, 5, "use_mm_for_euclid_dist", True),
    (30, 30, "donot_use_mm_for_euclid_dist", False),
])
def test_cdist_takes_the_gemm_path_where_torch_does(rows1, rows2, mode, mm):
    a, b = _t(_r(rows1, 3), grad=True), _t(_r(rows2, 3))
    d = L.cdist(a, b, compute_mode=mode)
    assert isinstance(d.creator, L._SqrtClamped) == mm
    np.testing.assert_allclose(d.numpy(), _cdist_ref(a.numpy(), b.numpy(), 2.0), rtol=1e-10)
    assert not isinstance(L.cdist(a, b, p=1, compute_mode=mode).creator, L._SqrtClamped)


def test_cdist_of_no_columns_is_zero():
    y = L.cdist(_t(np.ones((2, 0))), _t(np.ones((3, 0))), p=float("inf"))
    np.testing.assert_array_equal(y.numpy(), np.zeros((2, 3)))


# ----------------------------------------------------------------------------- errors

ERRORS = [
    (lambda: L.mm(_t(np.ones((2, 3))), _t(np.ones((4, 5)))), ValueError,
     r"mm: input and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"),
    (lambda: L.mm(_t(np.ones(3)), _t(np.ones((3, 5)))), ValueError,
     r"mm: input must be a 2-D tensor, got shape \(3,\)"),
    (lambda: L.bmm(_t(np.ones((2, 3))), _t(np.ones((2, 3, 4)))), ValueError,
     r"bmm: batch1 must be a 3-D tensor, got shape \(2, 3\)"),
    (lambda: L.bmm(_t(np.ones((2, 2, 3))), _t(np.ones((3, 3, 4)))), ValueError,
     r"bmm: batch1 of shape \(2, 2, 3\) and batch2 of shape \(3, 3, 4\)"),
    (lambda: L.mv(_t(np.ones((2, 3))), _t(np.ones(4))), ValueError,
     r"mv: size mismatch, mat of shape \(2, 3\) and vec of shape \(4,\)"),
    (lambda: L.mv(_t(np.ones((2, 3))), _t(np.ones((3, 1)))), ValueError,
     r"mv: vec must be a 1-D tensor"),
    (lambda: L.dot(_t(np.ones(3)), _t(np.ones(4))), ValueError,
     r"dot: inconsistent tensor sizes, got shapes \(3,\) and \(4,\)"),
    (lambda: L.vdot(_t(np.ones((3, 1))), _t(np.ones(3))), ValueError,
     r"vdot: 1-D tensors expected, got shapes \(3, 1\) and \(3,\)"),
    (lambda: L.inner(_t(np.ones((2, 3))), _t(np.ones(4))), ValueError,
     r"inner: the last dimension must match .* \(2, 3\) and \(4,\)"),
    (lambda: L.outer(_t(np.ones((2, 3))), _t(np.ones(4))), ValueError,
     r"outer: input must be a 1-D tensor, got shape \(2, 3\)"),
    (lambda: L.addmm(_t(np.ones(4)), _t(np.ones((2, 3))), _t(np.ones((3, 5)))), ValueError,
     r"addmm: input of shape \(4,\) cannot be broadcast to the result's shape \(2, 5\)"),
    (lambda: L.addmm(_t(np.ones((1, 2, 5))), _t(np.ones((2, 3))), _t(np.ones((3, 5)))),
     ValueError, r"addmm: input of shape \(1, 2, 5\) cannot be broadcast"),
    (lambda: L.addmm(_t(np.ones(5)), _t(np.ones((2, 3))), _t(np.ones((4, 5)))), ValueError,
     r"addmm: mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"),
    (lambda: L.addmv(_t(np.ones(3)), _t(np.ones((2, 3))), _t(np.ones(3))), ValueError,
     r"addmv: input of shape \(3,\) cannot be broadcast to the result's shape \(2,\)"),
    (lambda: L.addr(_t(np.ones(3)), _t(np.ones(2)), _t(np.ones(4))), ValueError,
     r"addr: input of shape \(3,\) cannot be broadcast to the result's shape \(2, 4\)"),
    (lambda: L.baddbmm(_t(np.ones((3, 1, 5))), _t(np.ones((2, 2, 3))), _t(np.ones((2, 3, 5)))),
     ValueError, r"baddbmm: input of shape \(3, 1, 5\) cannot be broadcast .* \(2, 2, 5\)"),
    (lambda: L.addbmm(_t(np.ones((3, 5))), _t(np.ones((2, 2, 3))), _t(np.ones((2, 3, 5)))),
     ValueError, r"addbmm: input of shape \(3, 5\) cannot be broadcast .* \(2, 5\)"),
    (lambda: L.addmm(_t(np.ones(5)), _t(np.ones((2, 3))), _t(np.ones((3, 5))), beta="x"),
     TypeError, r"addmm: beta must be a real number"),
    (lambda: L.tensordot(_t(np.ones((2, 3, 4))), _t(np.ones((4, 4, 5)))), ValueError,
     r"tensordot: contracted dimensions need to match.*\(2, 3, 4\).*size 3 in dim 1.*"
     r"\(4, 4, 5\).*size 4 in dim 0"),
    (lambda: L.tensordot(_t(np.ones((2, 3))), _t(np.ones((3, 4))), -1), ValueError,
     r"tensordot: expects dims >= 0, got dims=-1"),
    (lambda: L.tensordot(_t(np.ones((2, 3))), _t(np.ones((3, 4))), 3), ValueError,
     r"tensordot: dims=3 is more than the dimensions"),
    (lambda: L.tensordot(_t(np.ones((3, 3))), _t(np.ones((3, 3))), ([0, 0], [0, 1])),
     ValueError, r"tensordot: a dim appears more than once"),
    (lambda: L.tensordot(_t(np.ones((3, 3))), _t(np.ones((3, 3))), ([0, 1], [0])),
     ValueError, r"tensordot: both dimension lists should have the same length"),
    (lambda: L.tensordot(_t(np.ones((3, 3))), _t(np.ones((3, 3))), "x"), TypeError,
     r"tensordot: dims must be an int or a pair of lists"),
    (lambda: L.einsum("ij,jk", _t(np.ones((2, 3))), _t(np.ones((4, 5)))), ValueError,
     r"einsum\(\): subscript j has size 4 for operand 1 \(shape \(4, 5\)\), which does not "
     r"broadcast with the size 3"),
    (lambda: L.einsum("ii->i", _t(np.ones((2, 3)))), ValueError,
     r"einsum\(\): subscript i is repeated for operand 0 \(shape \(2, 3\)\) but the sizes "
     r"don't match, 2 != 3"),
    (lambda: L.einsum("ij,jk", _t(np.ones((2, 3)))), ValueError,
     r"einsum\(\): fewer operands were provided \(1\)"),
    (lambda: L.einsum("ij", _t(np.ones((2, 3))), _t(np.ones(2))), ValueError,
     r"einsum\(\): more operands were provided \(2\)"),
    (lambda: L.einsum("ijk", _t(np.ones((2, 3)))), ValueError,
     r"einsum\(\): the number of subscripts in the equation \(3\) does not match the number "
     r"of dimensions \(2\) of operand 0 \(shape \(2, 3\)\)"),
    (lambda: L.einsum("ij->k", _t(np.ones((2, 3)))), ValueError,
     r"einsum\(\): output subscript k does not appear"),
    (lambda: L.einsum("ij->ii", _t(np.ones((2, 3)))), ValueError,
     r"einsum\(\): output subscript i appears more than once"),
    (lambda: L.einsum("i1->i", _t(np.ones((2, 3)))), ValueError,
     r"einsum\(\): invalid subscript '1' in operand 0"),
    (lambda: L.einsum("...i...->i", _t(np.ones((2, 3)))), ValueError,
     r"einsum\(\): more than one ellipsis in operand 0"),
    (lambda: L.einsum("i.j", _t(np.ones((2, 3)))), ValueError, r"einsum\(\): invalid '\.'"),
    (lambda: L.einsum("ij"), ValueError, r"einsum\(\): needs at least one operand"),
    (lambda: L.einsum(_t(np.ones(2)), [0]), TypeError, r"einsum\(\): the equation must be a "),
    (lambda: L.cross(_t(np.ones((2, 3))), _t(np.ones(3))), ValueError,
     r"cross: inputs must have the same number of dimensions, got shapes \(2, 3\) and \(3,\)"),
    (lambda: L.cross(_t(np.ones((2, 4))), _t(np.ones((2, 4)))), ValueError,
     r"cross: no dimension of size 3 in input of shape \(2, 4\)"),
    (lambda: L.cross(_t(np.ones((2, 4))), _t(np.ones((2, 4))), dim=1), ValueError,
     r"cross: inputs dimension 1 must have length 3, got shapes \(2, 4\) and \(2, 4\)"),
    (lambda: L.cross(_t(np.ones((2, 3))), _t(np.ones((4, 3))), dim=1), ValueError,
     r"cross: shapes \(2, 3\) and \(4, 3\) cannot be broadcast together"),
    (lambda: L.cdist(_t(np.ones(3)), _t(np.ones((4, 3)))), ValueError,
     r"cdist: only supports at least 2-D tensors, x1 has shape \(3,\)"),
    (lambda: L.cdist(_t(np.ones((2, 3))), _t(np.ones((4, 5)))), ValueError,
     r"cdist: x1 and x2 must have the same number of columns, got shapes \(2, 3\) and \(4, 5\)"),
    (lambda: L.cdist(_t(np.ones((5, 2, 3))), _t(np.ones((7, 4, 3)))), ValueError,
     r"cdist \(batch dimensions\): shapes \(5,\) and \(7,\) cannot be broadcast"),
    (lambda: L.cdist(_t(np.ones((2, 3))), _t(np.ones((4, 3))), p=-1), ValueError,
     r"cdist: only supports non-negative p values"),
    (lambda: L.cdist(_t(np.ones((2, 3))), _t(np.ones((4, 3))), compute_mode="x"), ValueError,
     r"cdist: compute_mode must be one of"),
]


@pytest.mark.parametrize("call, exc, pattern", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors_name_the_function_and_the_shapes(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_module_exports_exactly_the_new_names():
    assert sorted(L.__all__) == sorted([
        "addbmm", "addmm", "addmv", "addr", "baddbmm", "bmm", "cdist", "cross", "dot",
        "einsum", "ger", "inner", "kron", "mm", "mv", "outer", "tensordot", "vdot"])
    assert all(callable(getattr(L, n)) for n in L.__all__)
    assert "trace" not in L.__all__ and "matmul" not in L.__all__  # they exist already


# ----------------------------------------------------------------------------- GPU

@pytest.mark.gpu
def test_gpu_results_and_gradients_match_the_cpu(cuda):
    """A few ops on "cuda" (a real GPU, or the emulated one with MINIGAN_EMULATE_GPU=1),
    forward and first- and second-order gradients against the CPU."""
    ops = [
        (lambda a, b: L.einsum("bij,bjk->bik", a, b), [BA, BB]),
        (lambda a, b: L.einsum("ii,i->i", a, b), [SQ, V3]),
        (lambda x, a, b: L.addmm(x, a, b, beta=0.5, alpha=2.0), [_r(4), A23, B34]),
        (L.mm, [A23, B34]),
        (L.bmm, [BA, BB]),
        (L.tensordot, [_r(2, 3, 4), _r(3, 4, 5)]),
        (L.cross, [_r(4, 3), _r(4, 3)]),
        (L.cdist, [_r(30, 3), _r(4, 3)]),
        (lambda a, b: L.cdist(a, b, p=1), [_r(3, 3), _r(4, 3)]),
        (L.kron, [A23, _r(2, 2)]),
    ]
    for fn, arrays in ops:
        outs = {}
        for device in ("cpu", "cuda"):
            xs = [_t(a, device, grad=True) for a in arrays]
            y = fn(*xs)
            assert y.device == device
            gy = _t(np.linspace(-1.0, 1.0, y.size).reshape(y.shape), device)
            gs = minigan.grad(y, xs, gy, create_graph=True)
            assert all(g.device == device for g in gs)
            total = gs[0].sum()
            for g in gs[1:]:
                total = total + (g * g).sum()
            # (cdist with p = 1: a gradient constant in the inputs, so no second order)
            ggs = minigan.grad(total, xs, allow_unused=True) if total.requires_grad \
                else [None] * len(xs)
            outs[device] = [y.numpy()] + [g.numpy() for g in gs] + \
                [None if g is None else g.numpy() for g in ggs]
        for c, g in zip(outs["cpu"], outs["cuda"]):
            if c is None or g is None:
                assert c is None and g is None
                continue
            np.testing.assert_allclose(g, c, rtol=1e-10, atol=1e-12)


def test_mixed_devices_are_refused(emulated_gpu):
    a = _t(A23)
    b = _t(B34, "cuda")
    with pytest.raises(backend.DeviceError, match="mm: expected all inputs on one device"):
        L.mm(a, b)


# ----------------------------------------------------------------------------- torch

def test_against_torch_values_and_gradients():
    torch = pytest.importorskip("torch")
    for name, fn, inputs, _ in CASES:
        tname = name.split("_")[0]
        if not hasattr(torch, tname):
            continue
        xs = [_t(a, grad=True) for a in inputs]
        txs = [torch.tensor(a, requires_grad=True) for a in inputs]
        y = fn(*xs)
        args = {"einsum": None, "addmm": None, "addmv": None, "addr": None, "baddbmm": None,
                "addbmm": None, "tensordot": None, "cross": None, "cdist": None}
        if tname in args:
            continue  # (their arguments differ from the positional call; checked below)
        ty = getattr(torch, tname)(*txs)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    gy = R.standard_normal((2, 4))
    pairs = [
        (lambda m, a, b: m.einsum("ij,jk->ik", a, b), [A23, B34]),
        (lambda m, a: m.einsum("ii->i", a), [SQ]),
        (lambda m, a, b: m.einsum("...ij,...jk", a, b), [BA, _r(3, 4)]),
        (lambda m, x, a, b: m.addmm(x, a, b, beta=0.5, alpha=2.0), [_r(4), A23, B34]),
        (lambda m, x, a, b: m.addbmm(x, a, b, beta=0.5, alpha=2.0), [_r(4), _r(3, 2, 3),
                                                                     _r(3, 3, 4)]),
        (lambda m, a, b: m.tensordot(a, b, ([1], [0])), [A23, B34]),
        (lambda m, a, b: m.cross(a, b, dim=1), [_r(4, 3), _r(1, 3)]),
        (lambda m, a, b: m.cdist(a, b, p=1.0), [_r(2, 3), _r(4, 3)]),
        (lambda m, a, b: m.cdist(a, b), [_r(2, 3), _r(4, 3)]),
        (lambda m, a, b: m.cdist(a, b, p=float("inf")), [_r(2, 3), _r(4, 3)]),
    ]
    for f, arrays in pairs:
        xs = [_t(a, grad=True) for a in arrays]
        txs = [torch.tensor(a, requires_grad=True) for a in arrays]
        y, ty = f(L, *xs), f(torch, *txs)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = gy[:, :ty.shape[-1]] if ty.shape == (2, 4) else np.ones(tuple(ty.shape))
        gs = minigan.grad(y, xs, _t(g))
        tgs = torch.autograd.grad(ty, txs, torch.tensor(g))
        for a, b in zip(gs, tgs):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)
