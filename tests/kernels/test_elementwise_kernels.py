"""Elementwise kernels vs float64 NumPy formulas, on each device, plus GPU-vs-NumPy parity."""
import numpy as np
import pytest

from minigan import backend
from minigan.kernels import elementwise as K
from minigan.kernels import random as R

to_np = backend.to_numpy


def _x(shape=(6, 7), seed=0, low=-4.0, high=4.0, gap=0.05):
    """Inputs away from the kinks at 0 (|x| > gap)."""
    x = np.random.default_rng(seed).uniform(low, high, shape)
    x[np.abs(x) < gap] += 2 * gap
    return x


def _g(shape=(6, 7), seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


def _softplus64(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.logaddexp(0.0, beta * x) / beta)


def _sigmoid64(x):
    return np.exp(-np.logaddexp(0.0, -x))


def _check(xp, fn, ref, *args, dtype=np.float32, rtol=None, atol=None, **kw):
    """Run fn on xp arrays of dtype made from float64 args; compare with ref(*args)."""
    tol = 2e-6 if dtype == np.float32 else 1e-13
    conv = [xp.asarray(a.astype(dtype)) if isinstance(a, np.ndarray) else a for a in args]
    out = fn(*conv, **kw)
    assert out.dtype == dtype
    assert backend.device_of(out) == backend.device_of(conv[0])
    # the reference sees the inputs as rounded to dtype, so only the arithmetic is compared
    ref_args = [a.astype(dtype).astype(np.float64) if isinstance(a, np.ndarray) else a
                for a in args]
    np.testing.assert_allclose(to_np(out), ref(*ref_args), rtol=rtol or tol, atol=atol or tol)


DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("slope", [0.2, 0.0, 1.5, -0.3])
def test_leaky_relu(xp, dtype, slope):
    x, gy = _x(), _g()
    _check(xp, K.leaky_relu_forward, lambda x, s: np.where(x > 0, x, s * x), x, slope,
           dtype=dtype)
    _check(xp, K.leaky_relu_backward, lambda g, x, s: np.where(x > 0, g, s * g), gy, x, slope,
           dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 70), (64, 128), (1, 3), (9, 32), (4, 0)])
@pytest.mark.parametrize("slope", [0.2, 0.0])
def test_leaky_relu_backward_colsum_is_the_masked_gradient_and_its_column_sums(xp, dtype, shape,
                                                                              slope):
    """A fused Linear + LeakyReLU's backward: g as leaky_relu_backward's (the same expression,
    so the same values, NaN included), and the bias gradient g.sum(axis=0)."""
    rng = np.random.default_rng(7)
    y = rng.standard_normal(shape).astype(dtype)
    y[y < 0] *= slope  # an activation's output: y > 0 where its input was
    if y.size:
        y.flat[0] = np.nan
    gy = rng.standard_normal(shape).astype(dtype)
    g, gb = K.leaky_relu_backward_colsum(xp.asarray(gy), xp.asarray(y), slope)
    want = np.where(y > 0, gy, gy * dtype(slope))
    np.testing.assert_array_equal(to_np(g), want)
    assert g.dtype == dtype and gb.dtype == dtype and gb.shape == (shape[1],)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(to_np(gb), want.astype(np.float64).sum(axis=0), rtol=tol,
                               atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(64, 1), (5, 3, 7), (3000,), (1,)])
def test_sum_all_scaled_is_the_sum_times_the_scale(xp, dtype, shape):
    x = np.random.default_rng(8).standard_normal(shape).astype(dtype)
    y = K.sum_all_scaled(xp.asarray(x), 1.0 / x.size)
    assert y.shape == () and y.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(to_np(y), x.astype(np.float64).sum() / x.size, rtol=tol,
                               atol=tol)
    # the scale is applied in x's dtype after the sum: (sum in T) * T(scale)
    assert to_np(K.sum_all_scaled(xp.asarray(np.full(3, 1.0, dtype)), 0.1)) == dtype(3) * \
        dtype(0.1)


def test_leaky_relu_backward_is_linear_in_gy(xp):
    x = xp.asarray(_x())
    g1, g2 = xp.asarray(_g(seed=2)), xp.asarray(_g(seed=3))
    lhs = K.leaky_relu_backward(2.0 * g1 - 3.0 * g2, x, 0.2)
    rhs = 2.0 * K.leaky_relu_backward(g1, x, 0.2) - 3.0 * K.leaky_relu_backward(g2, x, 0.2)
    np.testing.assert_allclose(to_np(lhs), to_np(rhs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("slope", [0.2, 0.0, 0.01, 1.0, 1.5, -0.3, 1e-9, 3e9])
def test_leaky_relu_backward_numpy_matches_masked_select(dtype, slope):
    """The CPU path builds a 1-or-slope factor arithmetically (and falls back to a masked
    fill when 1 - s + s does not round to 1, as for s = 3e9); it must give exactly
    gy where x > 0 else s*gy, also for x = 0, NaN and non-finite gy."""
    x = _x((5, 40), seed=4).astype(dtype)
    x[0, :4] = [0.0, -0.0, np.nan, np.inf]
    gy = _g((5, 40), seed=5).astype(dtype)
    gy[1, :4] = [np.nan, np.inf, -np.inf, -0.0]
    gy[1, 4:8] = gy[1, :4]
    x[1, 4:8] = -1.0
    x[1, :4] = 1.0
    with np.errstate(invalid="ignore"):
        # (ReLU, slope 0, selects: 0 where x <= 0 even for an infinite gy, as torch's)
        want = np.where(x > 0, gy, gy * slope) if slope else np.where(x > 0, gy, dtype(0))
        got = K.leaky_relu_backward(gy, x, slope)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))


def test_leaky_relu_keeps_a_channels_last_layout():
    """Activations stored channels-last (as the CPU conv kernels return them) come back so,
    forward and backward, with the values of the NCHW computation."""
    x = _x((2, 16, 3, 5), seed=6)
    gy = _g((2, 16, 3, 5), seed=7)
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    gyl = np.ascontiguousarray(gy.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    y = K.leaky_relu_forward(xl, 0.2)
    np.testing.assert_array_equal(y, K.leaky_relu_forward(x, 0.2))
    gx = K.leaky_relu_backward(gyl, xl, 0.2)
    np.testing.assert_array_equal(gx, K.leaky_relu_backward(gy, x, 0.2))
    for a in (y, gx):
        assert a.transpose(0, 2, 3, 1).flags.c_contiguous and not a.flags.c_contiguous


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu(xp, dtype):
    x, gy = _x(), _g()
    _check(xp, K.relu_forward, lambda x: np.maximum(x, 0.0), x, dtype=dtype)
    _check(xp, K.relu_backward, lambda g, x: np.where(x > 0, g, 0.0), gy, x, dtype=dtype)


def _relu_layouts(n_rows_of_zeros):
    """Arrays of (3 + rows of K._ZEROS_LEN) values in the layouts activations come in, with
    NaN, infinities and signed zeros among random values."""
    base = np.random.default_rng(4).standard_normal(
        (2, 3, 5, 7 + n_rows_of_zeros * K._ZEROS_LEN // 15 * 2)).astype(np.float32)
    base.flat[:6] = [np.nan, -np.inf, np.inf, -0.0, 0.0, -np.nan]
    channels_last = np.ascontiguousarray(base.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return {"C": base, "F": np.asfortranarray(base), "channels-last": channels_last,
            "strided": base[:, :, ::2], "reversed": base[::-1], "broadcast":
            np.broadcast_to(base[:1], base.shape), "0-d": np.array(-2.5, np.float32),
            "empty": base[:0]}


@pytest.mark.parametrize("rows", [0, 1, 3])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
def test_relu_cpu_gives_maximum_with_zero_in_every_layout(rows, dtype):
    """The CPU ReLU (rows of cached zeros for dense arrays, one broadcast call otherwise) gives
    np.maximum(x, 0)'s bits, in x's layout, forward, in place and through leaky_relu."""
    for name, a in _relu_layouts(rows).items():
        if dtype == np.int32:
            a = np.nan_to_num(a * 100, posinf=7, neginf=-7)
        x = a.astype(dtype) if a.ndim else np.asarray(a, dtype)
        if name == "broadcast":
            x = np.broadcast_to(x[:1], x.shape)
        want = np.maximum(x, dtype(0))
        for got in (K.relu_forward(x), K.leaky_relu_forward(x, 0.0)):
            assert got.dtype == want.dtype and got.shape == want.shape, name
            assert np.array_equal(got, want, equal_nan=dtype != np.int32), name
            assert np.array_equal(np.signbit(got), np.signbit(want)), name
            if name != "broadcast":
                assert got.strides == np.empty_like(x).strides, name
        if name == "broadcast":
            continue
        y = x.copy(order="K") if x.ndim else x.copy()
        assert K.leaky_relu_inplace(y, 0.0) is y, name
        assert np.array_equal(y, want, equal_nan=dtype != np.int32), name
        if rows and name in ("C", "F", "channels-last"):  # the body and a tail both exercised
            assert x.size > K._ZEROS_LEN and x.size % K._ZEROS_LEN, name


def test_memory_order_flat_views_dense_arrays_only():
    a = np.arange(24.0).reshape(2, 3, 4)
    for dense in (a, a.T, a.transpose(1, 0, 2), np.asfortranarray(a), a[1:2], a[1:2, :, None]):
        flat = K.memory_order_flat(dense)
        assert flat is not None and np.shares_memory(flat, dense) and flat.size == dense.size
        assert sorted(flat.tolist()) == sorted(dense.ravel().tolist())
    for sparse in (a[:, ::2], a[::-1], np.broadcast_to(a[:1], a.shape), a[..., :3]):
        assert K.memory_order_flat(sparse) is None


def test_relu_and_leaky_propagate_nan(xp):
    x = xp.asarray(np.array([np.nan, -1.0, 2.0], dtype=np.float32))
    assert np.isnan(to_np(K.relu_forward(x))[0])
    assert np.isnan(to_np(K.leaky_relu_forward(x, 0.2))[0])
    np.testing.assert_allclose(to_np(K.leaky_relu_forward(x, 0.2))[1:], [-0.2, 2.0], rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_backward(xp, dtype):
    y, gy = np.tanh(_x()), _g()
    _check(xp, K.tanh_backward, lambda g, y: g * (1 - y * y), gy, y, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid(xp, dtype):
    x = np.concatenate([_x(low=-10, high=10).ravel(), [-100.0, -80.0, 0.0, 80.0, 100.0]])
    _check(xp, K.sigmoid_forward, _sigmoid64, x, dtype=dtype, atol=1e-30)
    y, gy = _sigmoid64(_x()), _g()
    _check(xp, K.sigmoid_backward, lambda g, y: g * y * (1 - y), gy, y, dtype=dtype)


def test_sigmoid_extremes_are_finite_and_accurate(xp):
    x = xp.asarray(np.array([-1000.0, -80.0, 1000.0, 40.0], dtype=np.float32))
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        y = to_np(K.sigmoid_forward(x))
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, [0.0, 1.8048513e-35, 1.0, 1.0], rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 20.0), (0.5, 3.0)])
def test_softplus(xp, dtype, beta, threshold):
    x = np.concatenate([_x(low=-30, high=30).ravel(), [-1e4, -90.0, 9.0, 10.5, 1e4]])
    _check(xp, K.softplus_forward, _softplus64, x, beta, threshold, dtype=dtype, atol=1e-30)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_forward(xp, dtype):
    x = _x(low=-30, high=30)
    x[0, :3] = [-200.0, 200.0, 0.0]
    t = np.random.default_rng(5).uniform(0, 1, x.shape)
    w = np.random.default_rng(6).uniform(0, 2, x.shape)

    def ref(x, t):
        return np.logaddexp(0.0, x) - x * t

    _check(xp, K.bce_with_logits_forward, ref, x, t, dtype=dtype)
    _check(xp, K.bce_with_logits_forward, lambda x, t, w: ref(x, t) * w, x, t, w, dtype=dtype)
    # the textbook form, where it is representable
    xs = np.clip(x, -15, 15)
    p = _sigmoid64(xs)
    textbook = -(t * np.log(p) + (1 - t) * np.log1p(-p))
    out = K.bce_with_logits_forward(xp.asarray(xs), xp.asarray(t))
    np.testing.assert_allclose(to_np(out), textbook, rtol=1e-9, atol=1e-12)


def test_bce_with_logits_broadcasts_weight(xp):
    x, t = xp.asarray(_x((4, 3))), xp.asarray(np.ones((4, 3)))
    w = xp.asarray(np.array([1.0, 2.0, 0.0]))
    full = K.bce_with_logits_forward(x, t)
    np.testing.assert_allclose(to_np(K.bce_with_logits_forward(x, t, w)), to_np(full * w))
    g = K.bce_with_logits_backward(xp.asarray(np.ones((4, 3))), x, t, w)
    assert (to_np(g)[:, 2] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_with_logits_backward(xp, dtype):
    x = _x(low=-30, high=30)
    t = np.random.default_rng(5).uniform(0, 1, x.shape)
    w = np.random.default_rng(6).uniform(0, 2, x.shape)
    gy = _g()

    def ref(g, x, t):
        return g * (_sigmoid64(x) - t)

    _check(xp, K.bce_with_logits_backward, ref, gy, x, t, dtype=dtype)
    _check(xp, K.bce_with_logits_backward, lambda g, x, t, w: ref(g, x, t) * w, gy, x, t, w,
           dtype=dtype)


def test_bce_backward_is_derivative_of_forward():
    x = _x((5, 4), low=-6, high=6)
    t = np.random.default_rng(2).uniform(0, 1, x.shape)
    h = 1e-6
    num = (K.bce_with_logits_forward(x + h, t) - K.bce_with_logits_forward(x - h, t)) / (2 * h)
    np.testing.assert_allclose(K.bce_with_logits_backward(np.ones_like(x), x, t), num,
                               rtol=1e-7, atol=1e-9)


def test_dropout_mask(xp, device):
    m = K.dropout_mask((300, 100), 0.2, 7, 3, xp, np.float32)
    assert m.shape == (300, 100) and m.dtype == np.float32
    assert backend.device_of(m) == device
    vals = np.unique(to_np(m))
    np.testing.assert_allclose(vals, [0.0, 1.25])
    assert abs(float(to_np(m).mean()) - 1.0) < 0.02
    np.testing.assert_array_equal(to_np(m), R.dropout_mask((300, 100), 0.2, 7, 3))


# GPU vs NumPy parity in float32 (the CPU path is the reference).

def _parity(cuda, fn, *args, rtol=1e-5, atol=1e-6, **kw):
    cpu_args = [a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args]
    gpu_args = [cuda.asarray(a) if isinstance(a, np.ndarray) else a for a in cpu_args]
    cpu, gpu = fn(*cpu_args, **kw), fn(*gpu_args, **kw)
    assert isinstance(gpu, cuda.ndarray) and gpu.dtype == cpu.dtype == np.float32
    np.testing.assert_allclose(gpu.get(), cpu, rtol=rtol, atol=atol)


@pytest.mark.gpu
def test_activation_parity_cuda(cuda):
    x, gy = _x((33, 17), low=-30, high=30), _g((33, 17))
    for s in (0.2, 0.0, 1.5):
        _parity(cuda, K.leaky_relu_forward, x, s)
        _parity(cuda, K.leaky_relu_backward, gy, x, s)
    _parity(cuda, K.relu_forward, x)
    _parity(cuda, K.relu_backward, gy, x)
    _parity(cuda, K.tanh_backward, gy, np.tanh(x))
    _parity(cuda, K.sigmoid_forward, x, atol=1e-30)
    _parity(cuda, K.sigmoid_backward, gy, _sigmoid64(x))
    for beta, th in ((1.0, 20.0), (2.0, 20.0), (0.5, 3.0)):
        _parity(cuda, K.softplus_forward, x, beta, th, atol=1e-30)


@pytest.mark.gpu
def test_bce_parity_cuda(cuda):
    x = _x((33, 17), low=-30, high=30)
    x[0, :2] = [-300.0, 300.0]
    t = np.random.default_rng(5).uniform(0, 1, x.shape)
    w = np.random.default_rng(6).uniform(0, 2, x.shape)
    gy = _g((33, 17))
    _parity(cuda, K.bce_with_logits_forward, x, t)
    _parity(cuda, K.bce_with_logits_forward, x, t, w)
    _parity(cuda, K.bce_with_logits_backward, gy, x, t)
    _parity(cuda, K.bce_with_logits_backward, gy, x, t, w)
    _parity(cuda, K.bce_with_logits_backward, np.ones((1, 17)), x, t, w[0])  # broadcasting


@pytest.mark.gpu
def test_dropout_mask_parity_cuda(cuda):
    for p in (0.0, 0.5, 0.9, 1.0):
        gpu = K.dropout_mask((7, 9, 5), p, 123, 2 ** 32 - 1, cuda, np.float32)
        cpu = K.dropout_mask((7, 9, 5), p, 123, 2 ** 32 - 1, np, np.float32)
        np.testing.assert_array_equal(gpu.get(), cpu)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 70), (64, 128), (1, 3), (4, 0)])
@pytest.mark.parametrize("sliced", [False, True])
def test_tanh_backward_colsum_is_tanh_backward_and_its_column_sums(xp, dtype, shape, sliced):
    """A fused Linear + Tanh's backward: g as tanh_backward's (the same expression, so the same
    values) and g.sum(axis=0); a gy that is a column slice of a wider array is read in place."""
    rng = np.random.default_rng(9)
    y = np.tanh(rng.standard_normal(shape)).astype(dtype)
    wide = rng.standard_normal((shape[0], shape[1] + 5)).astype(dtype)
    gy = xp.asarray(wide)[:, 2:2 + shape[1]] if sliced else xp.asarray(wide[:, :shape[1]].copy())
    g, gb = K.tanh_backward_colsum(gy, xp.asarray(y))
    want = K.tanh_backward(gy, xp.asarray(y))
    np.testing.assert_array_equal(to_np(g), to_np(want))
    assert g.dtype == dtype and gb.dtype == dtype and gb.shape == (shape[1],)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(to_np(gb), to_np(want).astype(np.float64).sum(axis=0), rtol=tol,
                               atol=tol)


def test_leading_strides_accepts_only_layouts_whose_trailing_axes_are_one_block():
    """What the GPU kernels that walk (n, c) with their own strides are told, for each layout
    (it is remembered by shape, strides and item size, so each case is asked twice)."""
    from numpy.lib.stride_tricks import as_strided

    from minigan.kernels.elementwise import leading_strides

    x = np.zeros((2, 3, 4, 5), np.float32)
    channel_major = np.zeros((3, 2, 4, 5), np.float32).transpose(1, 0, 2, 3)
    one_row = as_strided(np.zeros(30, np.float32), (2, 3, 1, 5), (60, 20, 999, 4))
    cases = [
        (x, (60, 20)),
        (channel_major, (20, 40)),
        (x.astype(np.float64), (60, 20)),  # in elements, whatever the item size
        (one_row, (15, 5)),  # a size-1 axis may have any stride
        (x[:, :, :, ::2], None),  # the trailing axes are not one block
        (x.transpose(0, 1, 3, 2), None),
        (x[::-1], None),  # a negative stride
        (x[:, ::2], (60, 40)),  # strided along c: fine
    ]
    for _ in range(2):
        for a, want in cases:
            assert leading_strides(a) == want, (a.shape, a.strides)
