"""Declarative op tests: every case yields a forward test against NumPy, a first-order and a
second-order gradient check in float64, on each backend."""
import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import backend
from minigan.functional.loss import (
    bce_with_logits_const,
    bce_with_logits_const_pair,
    bce_with_logits_const_split,
    unit_norm_penalty,
)
from minigan.testing import check_backward, check_double_backward

R = np.random.default_rng(1234)


def normal(*shape):
    return R.standard_normal(shape)


def away_from_zero(*shape, margin=0.1):
    """Values with |x| > margin, so kinks (relu, leaky_relu, abs) are not straddled by eps."""
    x = R.uniform(margin, 2.0, shape)
    return x * R.choice([-1.0, 1.0], shape)


def positive(*shape):
    return R.uniform(0.5, 2.0, shape)


def np_softplus(x):
    return np.logaddexp(0, x)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


MASK = R.standard_normal((3, 4)) > 0
IDX = np.array([2, 0, 2, 1])

# name, function on tensors, NumPy reference on arrays, inputs
CASES = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, [normal(3, 4), normal(4)]),
    ("add_scalar", lambda a: a + 2.5, lambda a: a + 2.5, [normal(3, 4)]),
    ("sub", lambda a, b: a - b, lambda a, b: a - b, [normal(3, 1), normal(1, 4)]),
    ("rsub", lambda a: 1.0 - a, lambda a: 1.0 - a, [normal(3, 4)]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [normal(2, 3, 4), normal(3, 1)]),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [normal(3, 4), positive(3, 4)]),
    ("rdiv", lambda a: 2.0 / a, lambda a: 2.0 / a, [positive(3, 4)]),
    ("radd_scalar", lambda a: np.float32(0.75) + a, lambda a: 0.75 + a, [normal(3, 4)]),
    ("sub_scalar", lambda a: a - 3, lambda a: a - 3, [normal(3, 4)]),
    ("mul_scalar", lambda a: a * -1.5, lambda a: a * -1.5, [normal(3, 4)]),
    ("rmul_scalar", lambda a: 2 * a, lambda a: 2 * a, [normal(3, 4)]),
    ("div_scalar", lambda a: a / 3.0, lambda a: a / 3.0, [normal(3, 4)]),
    ("scalar_chain", lambda a: (1.0 - a * 0.5) / 4.0 + 2.0, lambda a: (1.0 - a * 0.5) / 4.0 + 2.0,
     [normal(3, 4)]),
    ("neg", lambda a: -a, lambda a: -a, [normal(3, 4)]),
    ("pow_const", lambda a: a ** 3, lambda a: a ** 3, [normal(3, 4)]),
    ("pow_frac", lambda a: F.pow(a, -0.5), lambda a: a ** -0.5, [positive(3, 4)]),
    ("pow_tensor", lambda a, b: a ** b, lambda a, b: a ** b, [positive(3, 4), normal(4)]),
    ("exp", F.exp, np.exp, [normal(3, 4)]),
    ("log", F.log, np.log, [positive(3, 4)]),
    ("sqrt", F.sqrt, np.sqrt, [positive(3, 4)]),
    ("abs", F.abs, np.abs, [away_from_zero(3, 4)]),
    ("tanh", F.tanh, np.tanh, [normal(3, 4)]),
    ("sigmoid", F.sigmoid, np_sigmoid, [normal(3, 4) * 3]),
    ("relu", F.relu, lambda a: np.maximum(a, 0), [away_from_zero(3, 4)]),
    ("leaky_relu", lambda a: F.leaky_relu(a, 0.2), lambda a: np.where(a > 0, a, 0.2 * a),
     [away_from_zero(3, 4)]),
    ("softplus", F.softplus, np_softplus, [normal(3, 4) * 3]),
    ("softplus_beta", lambda a: F.softplus(a, beta=2.0), lambda a: np.logaddexp(0, 2 * a) / 2,
     [normal(3, 4)]),
    ("matmul", F.matmul, np.matmul, [normal(3, 4), normal(4, 5)]),
    ("matmul_batched", F.matmul, np.matmul, [normal(2, 3, 4), normal(4, 5)]),
    ("matmul_vec", F.matmul, np.matmul, [normal(4), normal(4, 5)]),
    ("linear", F.linear, lambda x, w, b: x @ w.T + b, [normal(3, 4), normal(5, 4), normal(5)]),
    ("linear_nobias", F.linear, lambda x, w: x @ w.T, [normal(2, 3, 4), normal(5, 4)]),
    ("sum_all", F.sum, np.sum, [normal(3, 4)]),
    ("sum_axis", lambda a: F.sum(a, 1), lambda a: a.sum(1), [normal(3, 4, 2)]),
    ("sum_keepdims", lambda a: F.sum(a, (0, 2), keepdims=True),
     lambda a: a.sum((0, 2), keepdims=True), [normal(3, 4, 2)]),
    ("mean", lambda a: F.mean(a, 0), lambda a: a.mean(0), [normal(3, 4)]),
    ("var", lambda a: F.var(a, 1, unbiased=True), lambda a: a.var(1, ddof=1), [normal(3, 5)]),
    ("var_default_unbiased", lambda a: F.var(a, 1), lambda a: a.var(1, ddof=1), [normal(3, 5)]),
    ("var_correction0_dim", lambda a: F.var(a, dim=0, correction=0, keepdim=True),
     lambda a: a.var(0, keepdims=True), [normal(3, 5)]),
    ("std", lambda a: F.std(a, (0, 1)), lambda a: a.std(ddof=1), [normal(3, 4)]),
    ("sum_dim_keepdim", lambda a: F.sum(a, dim=1, keepdim=True),
     lambda a: a.sum(1, keepdims=True), [normal(3, 4)]),
    ("amax", lambda a: F.amax(a, 1), lambda a: a.max(1), [normal(3, 4)]),
    ("amin_all", F.amin, np.min, [normal(3, 4)]),
    ("max_dim_values", lambda a: F.max(a, 1)[0], lambda a: a.max(1), [normal(3, 4)]),
    ("min_dim_keepdim", lambda a: F.min(a, 0, keepdim=True).values,
     lambda a: a.min(0, keepdims=True), [normal(3, 4)]),
    ("clamp", lambda a: F.clamp(a, -0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5),
     [away_from_zero(3, 4) + 0.5]),  # away from both bounds: |x - 0.5| > 0.1 or x > 0.6
    ("clamp_min_only", lambda a: F.clamp(a, min=0.0), lambda a: np.maximum(a, 0),
     [away_from_zero(3, 4)]),
    ("clone", F.clone, np.copy, [normal(3, 4)]),
    ("unsqueeze_squeeze", lambda a: F.squeeze(F.unsqueeze(a, -1) * 2.0, 2),
     lambda a: a * 2.0, [normal(3, 4)]),
    ("expand", lambda a: F.expand(a, 2, -1, 4), lambda a: np.broadcast_to(a, (2, 3, 4)),
     [normal(3, 1)]),
    ("softplus_threshold", lambda a: F.softplus(a, beta=2.0, threshold=1.0),
     lambda a: np.where(2 * a > 1.0, a, np.logaddexp(0, 2 * a) / 2),
     [away_from_zero(3, 4) + 0.5]),  # 2a - 1 is away from 0: the switch is not straddled
    ("reshape", lambda a: F.reshape(a, (4, -1)), lambda a: a.reshape(4, -1), [normal(3, 4)]),
    ("flatten", lambda a: F.flatten(a), lambda a: a.reshape(2, -1), [normal(2, 3, 4)]),
    ("permute", lambda a: F.permute(a, (2, 0, 1)), lambda a: a.transpose(2, 0, 1),
     [normal(2, 3, 4)]),
    ("transpose", lambda a: F.transpose(a, 0, 1), lambda a: a.swapaxes(0, 1), [normal(3, 4)]),
    ("broadcast_to", lambda a: F.broadcast_to(a, (2, 3, 4)),
     lambda a: np.broadcast_to(a, (2, 3, 4)), [normal(3, 1)]),
    ("sum_to", lambda a: F.sum_to(a, (3, 1)), lambda a: a.sum(axis=(0, 2), keepdims=True)[0],
     [normal(2, 3, 4)]),
    ("concat", lambda a, b: F.concat([a, b], 1), lambda a, b: np.concatenate([a, b], 1),
     [normal(3, 2), normal(3, 4)]),
    ("stack", lambda a, b: F.stack([a, b], 0), lambda a, b: np.stack([a, b], 0),
     [normal(3, 2), normal(3, 2)]),
    ("slice", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [normal(3, 4)]),
    ("fancy_index", lambda a: a[_on(IDX, a)], lambda a: a[IDX], [normal(3, 4)]),
    # an integer and an index array with a slice between them: torch's meaning (the integer
    # is a plain index, the selection stays in place), not NumPy's (the selection goes first)
    ("int_slice_array", lambda a: a[1, :, _on(IDX, a)], lambda a: a[1][:, IDX],
     [normal(2, 3, 4)]),
    ("int_none_ellipsis_mask", lambda a: a[None, 0, ..., _on(np.array([True, False, True, True]),
                                                            a)],
     lambda a: a[0][None][..., np.array([True, False, True, True])], [normal(2, 3, 4)]),
    # basic indices (the backward assigns): reversed and stepped slices, an integer (a NumPy
    # one too), Ellipsis and None
    ("basic_index", lambda a: a[::-1, np.int64(1), ..., None, 1:],
     lambda a: a[::-1, 1, ..., None, 1:], [normal(3, 4, 5)]),
    ("index_int_then_slice", lambda a: a[1][2:0:-1], lambda a: a[1][2:0:-1], [normal(3, 4)]),
    # a boolean mask and a tuple of integer arrays with a repeat are advanced indices (the
    # backward adds, so the repeated element gets both gradients)
    ("mask_index", lambda a: a[_on(MASK, a)], lambda a: a[MASK], [normal(3, 4)]),
    ("pair_index", lambda a: a[_on(IDX[:3], a), _on(np.array([1, 3, 1]), a)],
     lambda a: a[IDX[:3], np.array([1, 3, 1])], [normal(3, 4)]),
    ("where", lambda a, b: F.where(_on(MASK, a), a, b), lambda a, b: np.where(MASK, a, b),
     [normal(3, 4), normal(4)]),
    ("bce_logits", lambda x, t: F.binary_cross_entropy_with_logits(x, t),
     lambda x, t: np.mean(np_softplus(x) - x * t), [normal(3, 4) * 3, R.uniform(0, 1, (3, 4))]),
    ("bce_logits_weight",
     lambda x, t, w: F.binary_cross_entropy_with_logits(x, t, w, reduction="sum"),
     lambda x, t, w: np.sum((np_softplus(x) - x * t) * w),
     [normal(3, 4), R.uniform(0, 1, (3, 4)), positive(4)]),
    ("bce_logits_posw", lambda x, t: F.binary_cross_entropy_with_logits(
        x, t, pos_weight=_on(np.array(2.0), x), reduction="none"),
     lambda x, t: 2.0 * t * np_softplus(-x) + (1 - t) * np_softplus(x),
     [normal(3, 4), R.uniform(0, 1, (3, 4))]),
    ("bce_logits_const", lambda x: bce_with_logits_const(x, 0.9),
     lambda x: np.mean(np_softplus(x) - x * 0.9), [normal(3, 4) * 3]),
    ("bce_logits_const_sum", lambda x: bce_with_logits_const(x, 0.0, reduction="sum"),
     lambda x: np.sum(np_softplus(x)), [normal(3, 4)]),
    ("bce_logits_const_pair", lambda a, b: bce_with_logits_const_pair(a, 0.9, b, 0.0),
     lambda a, b: np.mean(np_softplus(a) - a * 0.9) + np.mean(np_softplus(b)),
     [normal(6, 1) * 3, normal(6, 1) * 3]),
    ("bce_logits_const_pair_shapes", lambda a, b: bce_with_logits_const_pair(a, 1.0, b, 0.2),
     lambda a, b: np.mean(np_softplus(a) - a) + np.mean(np_softplus(b) - b * 0.2),
     [normal(3, 4), normal(5, 1)]),
    ("bce_logits_const_split", lambda x: bce_with_logits_const_split(x, 4, 0.9, 0.0),
     lambda x: np.mean(np_softplus(x[:4]) - x[:4] * 0.9) + np.mean(np_softplus(x[4:])),
     [normal(8) * 3]),
    ("bce_logits_const_split_uneven", lambda x: bce_with_logits_const_split(x, 2, 1.0, 0.2),
     lambda x: np.mean(np_softplus(x[:2]) - x[:2]) + np.mean(np_softplus(x[2:]) - x[2:] * 0.2),
     [normal(5, 3)]),
    ("unit_norm_penalty", lambda x: unit_norm_penalty(x, 10.0),
     lambda x: 10.0 * np.mean((np.sqrt((x * x).sum(1) + 1e-12) - 1) ** 2), [normal(4, 6) * 0.4]),
    ("unit_norm_penalty_4d", lambda x: unit_norm_penalty(x, 2.5, eps=1e-3),
     lambda x: 2.5 * np.mean((np.sqrt((x * x).reshape(3, -1).sum(1) + 1e-3) - 1) ** 2),
     [normal(3, 2, 2, 3) * 0.3]),
    ("mse", F.mse_loss, lambda a, b: np.mean((a - b) ** 2), [normal(3, 4), normal(3, 4)]),
    ("log_softmax", lambda a: F.log_softmax(a, 1),
     lambda a: a - np.log(np.exp(a).sum(1, keepdims=True)), [normal(3, 5)]),
    ("cross_entropy", lambda a: F.cross_entropy(a, _on(np.array([0, 4, 2]), a)),
     lambda a: -np.mean((a - np.log(np.exp(a).sum(1, keepdims=True)))[[0, 1, 2], [0, 4, 2]]),
     [normal(3, 5)]),
]


def _on(array, like):
    """A constant (mask, index) moved to the device of the tensor it is used with."""
    return backend.to_device(array, like.device)


def _to(xp, arrays):
    return [xp.asarray(a) for a in arrays]


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=[c[0] for c in CASES])
def test_forward(name, fn, ref, inputs, xp):
    y = fn(*[minigan.Tensor(a) for a in _to(xp, inputs)])
    expected = ref(*inputs)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=[c[0] for c in CASES])
def test_backward(name, fn, ref, inputs, xp):
    check_backward(fn, _to(xp, inputs))


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=[c[0] for c in CASES])
def test_double_backward(name, fn, ref, inputs, xp):
    check_double_backward(fn, _to(xp, inputs))


@pytest.mark.parametrize("name,fn,ref,inputs", [c for c in CASES if c[0] in
                                                ("mul", "linear", "softplus", "bce_logits",
                                                 "fancy_index", "log_softmax")],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_full_jacobian(name, fn, ref, inputs, xp):
    check_backward(fn, _to(xp, inputs), mode="jacobian")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_with_a_number_equal_the_ops_with_a_0d_array_bit_for_bit(xp, dtype):
    """A Python or NumPy number next to a tensor is a kernel argument of the tensor's dtype
    (no array is made for it), with the values the 0-d array of that dtype gave, forward and
    backward, and the dtype kept (a float64 NumPy scalar does not promote a float32 tensor)."""
    x0 = xp.asarray(R.standard_normal((5, 7)).astype(dtype))
    for c in (0.1, 3, -2.5, np.float64(1 / 3), np.int64(7)):
        k = xp.asarray(np.asarray(c, dtype=dtype))  # the number as a 0-d array of x's dtype
        for op in (lambda a, b: a + b, lambda a, b: b + a, lambda a, b: a - b,
                   lambda a, b: b - a, lambda a, b: a * b, lambda a, b: b * a,
                   lambda a, b: a / b):
            x = minigan.Tensor(x0, requires_grad=True)
            y = op(x, c)
            assert y.dtype == dtype and y.creator is not None
            want = op(x0, k)
            np.testing.assert_array_equal(backend.to_numpy(y.data), backend.to_numpy(want))
            gy = xp.asarray(R.standard_normal(y.shape).astype(dtype))
            y.backward(minigan.Tensor(gy))
            xt = minigan.Tensor(x0, requires_grad=True)
            op(xt, minigan.Tensor(k)).backward(minigan.Tensor(gy))
            np.testing.assert_array_equal(backend.to_numpy(x.grad.data),
                                          backend.to_numpy(xt.grad.data))


def test_bce_with_a_constant_target_equals_bce_with_a_full_target(xp):
    x0 = xp.asarray(R.standard_normal((6, 1)).astype(np.float32) * 3)
    for value in (0.0, 0.9, 1.0):
        x = minigan.Tensor(x0, requires_grad=True)
        loss = bce_with_logits_const(x, value)
        loss.backward()
        xr = minigan.Tensor(x0, requires_grad=True)
        ref = F.binary_cross_entropy_with_logits(xr, minigan.Tensor(xp.full((6, 1), value,
                                                                           dtype=np.float32)))
        ref.backward()
        assert loss.dtype == np.float32
        # bit for bit on the CPU; on a GPU the kernels differ, and NVRTC may contract
        # a product and a sum into one fused multiply-add in one and not the other
        tol = {"rtol": 0, "atol": 0} if xp is np else {"rtol": 1e-6, "atol": 1e-7}
        np.testing.assert_allclose(backend.to_numpy(loss.data), backend.to_numpy(ref.data),
                                   **tol)
        np.testing.assert_allclose(backend.to_numpy(x.grad.data),
                                   backend.to_numpy(xr.grad.data), **tol)
    with pytest.raises(TypeError, match="logits must be floating point, got int64"):
        bce_with_logits_const(minigan.Tensor(xp.arange(3)), 1.0)
    with pytest.raises(ValueError, match="reduction must be"):
        bce_with_logits_const(minigan.Tensor(x0), 1.0, reduction="avg")


@pytest.mark.parametrize("other", [None, "a", b"a", 1 + 2j])
def test_a_tensor_with_none_a_string_or_a_complex_number_is_refused(other):
    """Not NaN (NumPy's float(None)) nor a conversion error: the operand is named."""
    x = minigan.tensor(np.arange(3.0, dtype=np.float32))
    for op in (lambda a, b: a + b, lambda a, b: b - a, lambda a, b: a * b, lambda a, b: a / b,
               lambda a, b: a ** b):
        with pytest.raises(TypeError, match=f"unsupported operand: a {type(other).__name__}"):
            op(x, other)


def test_unit_norm_penalty_equals_its_ops_and_names_bad_input(xp):
    """The one-op penalty against the ops it stands for (DRAGAN's former code), float32, and
    its refusals."""
    g0 = xp.asarray(R.standard_normal((9, 13)).astype(np.float32) * 0.3)
    g = minigan.Tensor(g0, requires_grad=True)
    y = unit_norm_penalty(g, 10.0)
    y.backward()
    r = minigan.Tensor(g0, requires_grad=True)
    ref = F.mean((F.sqrt(F.sum(r * r, 1) + 1e-12) - 1.0) ** 2) * 10.0
    ref.backward()
    assert y.dtype == np.float32 and y.shape == ()
    # bit for bit on the CPU (the same NumPy ops); the GPU kernel sums in double
    tol = {"rtol": 0, "atol": 0} if xp is np else {"rtol": 1e-6, "atol": 1e-7}
    np.testing.assert_allclose(backend.to_numpy(y.data), backend.to_numpy(ref.data), **tol)
    np.testing.assert_allclose(backend.to_numpy(g.grad.data), backend.to_numpy(r.grad.data),
                               rtol=1e-5, atol=1e-7)
    with pytest.raises(TypeError, match="must be floating point, got int64"):
        unit_norm_penalty(minigan.Tensor(xp.arange(6).reshape(2, 3)))
    with pytest.raises(ValueError, match=r"at least one sample \(one row\), got shape \(0, 3\)"):
        unit_norm_penalty(minigan.Tensor(xp.zeros((0, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        unit_norm_penalty(minigan.Tensor(xp.asarray(np.float32(1.0))))
    for eps in (0.0, -1e-3, float("nan")):
        with pytest.raises(ValueError, match="eps must be > 0"):
            unit_norm_penalty(g, eps=eps)


def test_the_split_gan_loss_equals_the_pair_of_its_halves(xp):
    """D's loss on one pass over real + fake logits: the pair's value and, per half, the
    pair's gradients (bit for bit: the same kernels), for even and uneven halves."""
    tol = {"rtol": 0, "atol": 0} if xp is np else {"rtol": 1e-6, "atol": 1e-7}
    for shape, n in (((12,), 6), ((10, 1), 6), ((9, 2), 4)):
        x0 = xp.asarray(R.standard_normal(shape).astype(np.float32) * 3)
        x = minigan.Tensor(x0, requires_grad=True)
        loss = bce_with_logits_const_split(x, n, 0.9, 0.0)
        loss.backward()
        r = minigan.Tensor(x0[:n], requires_grad=True)
        f = minigan.Tensor(x0[n:], requires_grad=True)
        ref = bce_with_logits_const_pair(r, 0.9, f, 0.0)
        ref.backward()
        assert loss.shape == () and loss.dtype == np.float32
        assert x.grad.shape == shape
        np.testing.assert_allclose(backend.to_numpy(loss.data), backend.to_numpy(ref.data),
                                   **tol)
        for got, want in ((x.grad.data[:n], r.grad.data), (x.grad.data[n:], f.grad.data)):
            np.testing.assert_allclose(backend.to_numpy(got), backend.to_numpy(want), **tol)
    x = minigan.Tensor(xp.zeros((4, 1), dtype=np.float32))
    for n in (0, 4, -1, 2.0, True, "2"):
        with pytest.raises(ValueError, match=r"0 < n < 4 \(the logits' first axis, shape "
                                             r"\(4, 1\)\), got"):
            bce_with_logits_const_split(x, n, 1.0, 0.0)
    with pytest.raises(TypeError, match="must be floating point, got int64"):
        bce_with_logits_const_split(minigan.Tensor(xp.zeros(4, dtype=np.int64)), 2, 1.0, 0.0)


def test_the_pair_of_gan_losses_equals_the_two_losses_and_their_sum(xp):
    """D's loss on real and fake logits as one op: the values of the two losses added, and
    their gradients, for both inputs and for either alone; D's statistics likewise."""
    from minigan.kernels import elementwise as KE
    r0 = xp.asarray(R.standard_normal((7, 1)).astype(np.float32) * 3)
    f0 = xp.asarray(R.standard_normal((7, 1)).astype(np.float32) * 3)
    # bit for bit on the CPU; on a GPU rounding may differ between kernels (see above)
    tol = {"rtol": 0, "atol": 0} if xp is np else {"rtol": 1e-6, "atol": 1e-7}

    def close(a, b):
        np.testing.assert_allclose(backend.to_numpy(a), backend.to_numpy(b), **tol)

    for need in ((True, True), (True, False), (False, True)):
        r, f = (minigan.Tensor(a, requires_grad=n) for a, n in zip((r0, f0), need))
        loss = bce_with_logits_const_pair(r, 0.9, f, 0.0)
        loss.backward()
        rr, fr = (minigan.Tensor(a, requires_grad=n) for a, n in zip((r0, f0), need))
        ref = bce_with_logits_const(rr, 0.9) + bce_with_logits_const(fr, 0.0)
        ref.backward()
        assert loss.dtype == np.float32 and loss.shape == ()
        close(loss.data, ref.data)
        for t, tr in ((r, rr), (f, fr)):
            assert (t.grad is None) == (tr.grad is None)
            if t.grad is not None:
                close(t.grad.data, tr.grad.data)
    d_real, d_fake = KE.sigmoid_mean_pair(r0, f0)
    close(d_real, KE.sigmoid_mean(r0))
    close(d_fake, KE.sigmoid_mean(f0))
    # other dtypes or an empty input: the two losses, as before
    r64 = minigan.Tensor(r0.astype(np.float64))
    y = bce_with_logits_const_pair(r64, 1.0, minigan.Tensor(f0), 0.0)
    assert y.dtype == np.float64
    e = minigan.Tensor(xp.zeros((0, 1), dtype=np.float32))
    assert np.isnan(float(backend.to_numpy(bce_with_logits_const_pair(e, 1.0, e, 0.0).data)))


def test_reshape_resolves_minus_one_and_refuses_bad_shapes_every_time():
    x = minigan.Tensor(np.arange(24.0).reshape(2, 3, 4))
    for _ in range(2):  # the second round reads remembered answers
        assert F.reshape(x, (4, -1)).shape == (4, 6)
        assert F.reshape(x, [4, -1]).shape == (4, 6)  # a list
        assert F.reshape(x, (np.int64(-1), 8)).shape == (3, 8)
        assert F.reshape(x, 24).shape == (24,)
        with pytest.raises(ValueError, match=r"cannot reshape a tensor of shape \(2, 3, 4\)"):
            F.reshape(x, (5, -1))
        with pytest.raises(ValueError, match="into"):
            F.reshape(x, (-1, -1))
    y = minigan.Tensor(np.arange(30.0).reshape(5, 6))  # another size, the same request
    assert F.reshape(y, (5, -1)).shape == (5, 6)
    with pytest.raises(ValueError, match=r"\(5, 6\)"):
        F.reshape(y, (4, -1))


def test_bce_with_logits_and_pos_weight_keeps_the_tails_of_confident_logits():
    """With pos_weight the loss is (1 - t) softplus(x) + pw t softplus(-x), each term computed
    without a cut-off: a confident, right logit keeps its tiny loss and gradient (1e-11 at
    |x| = 25), which x - x cancelled to 0 before, and far logits stay finite."""
    x = minigan.tensor(np.array([-25.0, -21.0, 25.0, 0.3, -800.0, 800.0]), requires_grad=True)
    t = minigan.tensor(np.array([0.0, 0.0, 1.0, 0.3, 1.0, 0.0]))
    pw = minigan.tensor(np.array([1.0, 2.0, 3.0, 0.5, 2.0, 1.0]))
    loss = F.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction="none")
    xv, tv, pv = x.numpy(), t.numpy(), pw.numpy()
    want = (1 - tv) * np.logaddexp(0, xv) + pv * tv * np.logaddexp(0, -xv)
    np.testing.assert_allclose(loss.numpy(), want, rtol=1e-12, atol=0)
    assert loss.numpy()[0] > 1e-11 and loss.numpy()[2] > 4e-11
    loss.sum().backward()
    want_g = (1 - tv) * np_sigmoid(xv) - pv * tv * np_sigmoid(-xv)
    np.testing.assert_allclose(x.grad.numpy(), want_g, rtol=1e-12, atol=0)
