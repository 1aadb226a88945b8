"""Batch-norm kernels vs float64 formulas and finite differences, plus GPU-vs-NumPy parity."""
import numpy as np
import pytest

from minigan import backend
from minigan.kernels import batchnorm as KB

to_np = backend.to_numpy
SHAPES = [(8, 3), (4, 3, 5, 6), (2, 4, 7)]


def _data(shape, seed=0, loc=0.5):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.standard_normal(shape) * rng.uniform(0.5, 2.0, (1, c) + (1,) * (len(shape) - 2)) + loc
    w = rng.uniform(0.5, 1.5, c)
    b = rng.standard_normal(c)
    rm = rng.standard_normal(c) * 0.1
    rv = rng.uniform(0.5, 2.0, c)
    gy = rng.standard_normal(shape)
    return x, w, b, rm, rv, gy


def _axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _bc(v, x):
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def _ref_train(x, w, b, eps):
    ax = _axes(x)
    mean = x.mean(ax)
    var = ((x - _bc(mean, x)) ** 2).mean(ax)
    invstd = 1 / np.sqrt(var + eps)
    y = (x - _bc(mean, x)) * _bc(invstd, x)
    if w is not None:
        y = y * _bc(w, x)
    if b is not None:
        y = y + _bc(b, x)
    return y, mean, var, invstd


def _ref_backward(gy, x, w, eps):
    ax = _axes(x)
    m = x.size // x.shape[1]
    _, mean, _, invstd = _ref_train(x, None, None, eps)
    xhat = (x - _bc(mean, x)) * _bc(invstd, x)
    gb = gy.sum(ax)
    gw = (gy * xhat).sum(ax)
    w = np.ones(x.shape[1]) if w is None else w
    gx = _bc(w * invstd, x) * (gy - _bc(gb, x) / m - xhat * _bc(gw, x) / m)
    return gx, gw, gb


def _tol(dtype):
    return {"rtol": 2e-5, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-11}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_forward_train_and_running_stats(xp, dtype, shape, affine):
    x, w, b, rm, rv, _ = _data(shape)
    eps, momentum = 1e-5, 0.1
    if not affine:
        w = b = None
    x, rm, rv = x.astype(dtype), rm.astype(dtype), rv.astype(dtype)
    w = w.astype(dtype) if affine else None
    b = b.astype(dtype) if affine else None

    def d(a):
        return None if a is None else xp.asarray(a)

    rm_d, rv_d = d(rm.copy()), d(rv.copy())  # on the CPU asarray would alias rm, rv
    y, mean, invstd = KB.batch_norm_forward_train(d(x), d(w), d(b), rm_d, rv_d, momentum, eps)
    x64 = x.astype(np.float64)
    y_ref, mean_ref, var_ref, invstd_ref = _ref_train(
        x64, None if w is None else w.astype(np.float64),
        None if b is None else b.astype(np.float64), eps)
    assert y.shape == shape and y.dtype == dtype
    assert mean.shape == invstd.shape == (shape[1],)
    np.testing.assert_allclose(to_np(y), y_ref, **_tol(dtype))
    np.testing.assert_allclose(to_np(mean), mean_ref, **_tol(dtype))
    np.testing.assert_allclose(to_np(invstd), invstd_ref, **_tol(dtype))
    # running stats, updated in place: momentum toward the batch mean and UNBIASED variance
    m = x.size // shape[1]
    np.testing.assert_allclose(to_np(rm_d), 0.9 * rm + 0.1 * mean_ref, **_tol(dtype))
    np.testing.assert_allclose(to_np(rv_d), 0.9 * rv + 0.1 * var_ref * m / (m - 1), **_tol(dtype))


def test_forward_train_without_running_stats(xp):
    x, w, b, _, rv, _ = _data((4, 3, 2, 2))
    y, _, _ = KB.batch_norm_forward_train(xp.asarray(x), xp.asarray(w), xp.asarray(b), None,
                                          None, 0.1, 1e-5)
    np.testing.assert_allclose(to_np(y), _ref_train(x, w, b, 1e-5)[0], rtol=1e-12, atol=1e-12)
    # one buffer alone is updated, the other left out
    rv_d = xp.asarray(rv.copy())
    KB.batch_norm_forward_train(xp.asarray(x), None, None, None, rv_d, 0.3, 1e-5)
    var = _ref_train(x, None, None, 1e-5)[2]
    np.testing.assert_allclose(to_np(rv_d), 0.7 * rv + 0.3 * var * 16 / 15, rtol=1e-12)


def test_forward_train_needs_two_values_per_channel(xp):
    with pytest.raises(ValueError, match="more than 1 value"):
        KB.batch_norm_forward_train(xp.ones((1, 3)), None, None, None, None, 0.1, 1e-5)


def test_variance_is_two_pass_accurate(xp):
    # |mean| / std = 1e4: E[x^2] - E[x]^2 in float32 would lose every digit of the variance.
    rng = np.random.default_rng(3)
    x = (1e4 + rng.standard_normal((64, 2, 4, 4))).astype(np.float32)
    y, _, invstd = KB.batch_norm_forward_train(xp.asarray(x), None, None, None, None, 0.1, 1e-5)
    var = x.astype(np.float64).var(axis=(0, 2, 3))
    np.testing.assert_allclose(to_np(invstd), 1 / np.sqrt(var + 1e-5), rtol=2e-3)
    y = to_np(y).astype(np.float64)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=2e-3)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1.0, rtol=2e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_forward_eval(xp, dtype, shape, affine):
    x, w, b, rm, rv, _ = _data(shape)
    eps = 1e-3
    args = [a.astype(dtype) for a in (x, w, b, rm, rv)]
    if not affine:
        args[1] = args[2] = None
    d = [None if a is None else xp.asarray(a) for a in args]
    y = KB.batch_norm_forward_eval(d[0], d[1], d[2], d[3], d[4], eps)
    x64, w64, b64, rm64, rv64 = (a.astype(dtype).astype(np.float64) for a in (x, w, b, rm, rv))
    ref = (x64 - _bc(rm64, x)) / np.sqrt(_bc(rv64, x) + eps)
    if affine:
        ref = ref * _bc(w64, x) + _bc(b64, x)
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_allclose(to_np(y), ref, **_tol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_backward_closed_form(xp, dtype, shape, affine):
    x, w, b, _, _, gy = _data(shape)
    eps = 1e-5
    x, w, b, gy = (a.astype(dtype) for a in (x, w, b, gy))
    wd = xp.asarray(w) if affine else None
    _, mean, invstd = KB.batch_norm_forward_train(xp.asarray(x), wd, xp.asarray(b), None, None,
                                                  0.1, eps)
    gx, gw, gb = KB.batch_norm_backward_train(xp.asarray(gy), xp.asarray(x), wd, mean, invstd)
    x64, w64, gy64 = (a.astype(np.float64) for a in (x, w, gy))
    gx_ref, gw_ref, gb_ref = _ref_backward(gy64, x64, w64 if affine else None, eps)
    assert gx.shape == shape and gw.shape == gb.shape == (shape[1],)
    assert gx.dtype == gw.dtype == gb.dtype == dtype
    tol = _tol(dtype)
    np.testing.assert_allclose(to_np(gx), gx_ref, **tol)
    np.testing.assert_allclose(to_np(gw), gw_ref, **tol)
    np.testing.assert_allclose(to_np(gb), gb_ref, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("slope", [0.2, 0.0])
def test_backward_with_the_fused_activations_mask(xp, dtype, shape, slope):
    """With ``y`` and ``negative_slope`` the gradient is first masked by the LeakyReLU fused on
    the output: the same values as masking with leaky_relu_backward and then the plain
    backward (bit for bit: the GPU kernels mask in the same T arithmetic)."""
    from minigan.kernels import elementwise as KE
    x, w, b, _, _, gy = _data(shape)
    x, w, b, gy = (xp.asarray(a.astype(dtype)) for a in (x, w, b, gy))
    y, mean, invstd = KB.batch_norm_forward_train(x, w, b, None, None, 0.1, 1e-5, slope)
    got = KB.batch_norm_backward_train(gy, x, w, mean, invstd, y=y, negative_slope=slope)
    want = KB.batch_norm_backward_train(KE.leaky_relu_backward(gy, y, slope), x, w, mean, invstd)
    assert float(to_np(y).min()) < 0 or slope == 0  # the mask matters here
    for a, b_ in zip(got, want):
        np.testing.assert_array_equal(to_np(a), to_np(b_))


@pytest.mark.parametrize("shape", [(5, 2), (3, 2, 2, 3)])
def test_backward_matches_finite_differences(shape):
    """gx, gw, gb are the gradients of L = sum(gy * y(x, w, b)), y the training forward."""
    x, w, b, _, _, gy = _data(shape, seed=4)
    eps, h = 1e-3, 1e-6

    def loss(x, w, b):
        return float((gy * KB.batch_norm_forward_train(x, w, b, None, None, 0.1, eps)[0]).sum())

    def numeric(arr, fn):
        g = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + h
            up = fn()
            arr[i] = old - h
            down = fn()
            arr[i] = old
            g[i] = (up - down) / (2 * h)
        return g

    _, mean, invstd = KB.batch_norm_forward_train(x, w, b, None, None, 0.1, eps)
    gx, gw, gb = KB.batch_norm_backward_train(gy, x, w, mean, invstd)
    np.testing.assert_allclose(gx, numeric(x, lambda: loss(x, w, b)), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gw, numeric(w, lambda: loss(x, w, b)), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gb, numeric(b, lambda: loss(x, w, b)), rtol=1e-6, atol=1e-8)


def test_non_contiguous_input(xp):
    x, w, b, _, _, gy = _data((3, 4, 5, 6))
    xt = xp.asarray(x.transpose(0, 1, 3, 2))  # a strided view
    y, mean, invstd = KB.batch_norm_forward_train(xt, xp.asarray(w), xp.asarray(b), None, None,
                                                  0.1, 1e-5)
    xc = np.ascontiguousarray(x.transpose(0, 1, 3, 2))
    np.testing.assert_allclose(to_np(y), _ref_train(xc, w, b, 1e-5)[0], rtol=1e-12, atol=1e-12)
    gyt = xp.asarray(gy.transpose(0, 1, 3, 2))
    gx = KB.batch_norm_backward_train(gyt, xt, xp.asarray(w), mean, invstd)[0]
    ref = _ref_backward(np.ascontiguousarray(gy.transpose(0, 1, 3, 2)), xc, w, 1e-5)[0]
    np.testing.assert_allclose(to_np(gx), ref, rtol=1e-11, atol=1e-11)


def test_matches_torch_if_available():
    torch = pytest.importorskip("torch")
    x, w, b, rm, rv, gy = _data((4, 3, 5, 5))
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    xt = torch.tensor(x, requires_grad=True)
    wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    yt = torch.nn.functional.batch_norm(xt, rm_t, rv_t, wt, bt, True, 0.1, 1e-5)
    yt.backward(torch.tensor(gy))
    y, mean, invstd = KB.batch_norm_forward_train(x, w, b, rm, rv, 0.1, 1e-5)
    gx, gw, gb = KB.batch_norm_backward_train(gy, x, w, mean, invstd)
    for ours, theirs in ((y, yt), (rm, rm_t), (rv, rv_t), (gx, xt.grad), (gw, wt.grad),
                         (gb, bt.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


# GPU vs NumPy parity, float32.

@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES + [(64, 16, 8, 8)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "two_launch"])
def test_parity_cuda(cuda, shape, affine, fused, monkeypatch):
    """Both GPU paths: the statistics kernels that also write y and gx (small channels), and
    the elementwise second launch (``_FUSED_MAX`` 0)."""
    if not fused:
        monkeypatch.setattr(KB, "_FUSED_MAX", 0)
    x, w, b, rm, rv, gy = (a.astype(np.float32) for a in _data(shape, seed=9, loc=3.0))
    if not affine:
        w = b = None

    def g(a):
        return None if a is None else cuda.asarray(a)

    tol = {"rtol": 1e-5, "atol": 1e-5}
    rm_c, rv_c, rm_g, rv_g = rm.copy(), rv.copy(), g(rm), g(rv)
    yc, mc, ic = KB.batch_norm_forward_train(x, w, b, rm_c, rv_c, 0.1, 1e-5)
    yg, mg, ig = KB.batch_norm_forward_train(g(x), g(w), g(b), rm_g, rv_g, 0.1, 1e-5)
    for c_, g_ in ((yc, yg), (mc, mg), (ic, ig), (rm_c, rm_g), (rv_c, rv_g)):
        assert isinstance(g_, cuda.ndarray) and g_.dtype == np.float32
        np.testing.assert_allclose(g_.get(), c_, **tol)
    ec = KB.batch_norm_forward_eval(x, w, b, rm, rv, 1e-5)
    eg = KB.batch_norm_forward_eval(g(x), g(w), g(b), g(rm), g(rv), 1e-5)
    np.testing.assert_allclose(eg.get(), ec, **tol)
    bc = KB.batch_norm_backward_train(gy, x, w, mc, ic)
    bg = KB.batch_norm_backward_train(g(gy), g(x), g(w), mg, ig)
    m = x.size // x.shape[1]
    for c_, g_, scale in zip(bc, bg, (1.0, np.sqrt(m), np.sqrt(m))):  # sums grow like sqrt(m)
        np.testing.assert_allclose(g_.get(), c_, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.gpu
def test_parity_cuda_one_running_buffer_and_strided(cuda):
    x, w, b, _, rv, _ = (a.astype(np.float32) for a in _data((3, 4, 5, 6)))
    xt = x.transpose(0, 1, 3, 2)
    rv_c, rv_g = rv.copy(), cuda.asarray(rv)
    yc = KB.batch_norm_forward_train(xt, w, b, None, rv_c, 0.2, 1e-5)[0]
    yg = KB.batch_norm_forward_train(cuda.asarray(x).transpose(0, 1, 3, 2), cuda.asarray(w),
                                     cuda.asarray(b), None, rv_g, 0.2, 1e-5)[0]
    np.testing.assert_allclose(yg.get(), yc, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rv_g.get(), rv_c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(150, 3, 2, 2), (129, 5), (64, 2, 3)])
def test_channel_sums_over_many_rows(shape):
    """The CPU statistics add rows in blocks of _SUM_ROWS (float32 inside a block, double
    across blocks and over the spatial positions): batches above, below and at one block,
    with a block left over, match the float64 formulas to float32 accuracy."""
    x, w, b, _, _, gy = _data(shape, seed=8, loc=3.0)
    x32, w32, b32, gy32 = (a.astype(np.float32) for a in (x, w, b, gy))
    y, mean, invstd = KB.batch_norm_forward_train(x32, w32, b32, None, None, 0.1, 1e-5)
    x64 = x32.astype(np.float64)
    y_ref, mean_ref, _, invstd_ref = _ref_train(x64, w32.astype(np.float64),
                                                b32.astype(np.float64), 1e-5)
    tol = _tol(np.float32)
    np.testing.assert_allclose(y, y_ref, **tol)
    np.testing.assert_allclose(mean, mean_ref, **tol)
    np.testing.assert_allclose(invstd, invstd_ref, **tol)
    gx, gw, gb = KB.batch_norm_backward_train(gy32, x32, w32, mean, invstd)
    gx_ref, gw_ref, gb_ref = _ref_backward(gy32.astype(np.float64), x64,
                                           w32.astype(np.float64), 1e-5)
    np.testing.assert_allclose(gx, gx_ref, **tol)
    np.testing.assert_allclose(gw, gw_ref, **tol)
    np.testing.assert_allclose(gb, gb_ref, **tol)


def test_channel_sum_numpy_blocks_match_float64():
    rng = np.random.default_rng(9)
    for n in (1, 63, 64, 65, 128, 200):
        a = (rng.standard_normal((n, 3, 5)) + 100).astype(np.float32)
        got = KB._channel_sum_numpy(a)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, a.astype(np.float64).sum(axis=(0, 2)), rtol=1e-6)


def _channels_last(a):
    """The same values stored channels-last, as the CPU conv kernels return 4-D outputs."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (70, 5, 3, 2)])  # 120 and 420 rows
def test_channels_last_input_matches_formulas_and_keeps_its_layout(dtype, shape):
    """Input stored channels-last takes the (N*H*W, C) row path: every result matches the
    float64 formulas, and y and gx come back channels-last (no layout copy for the next
    conv). gy may arrive in either layout."""
    x, w, b, rm, rv, gy = _data(shape, seed=10, loc=2.0)
    x, w, b, rm, rv, gy = (a.astype(dtype) for a in (x, w, b, rm, rv, gy))
    xl = _channels_last(x)
    assert KB.is_channels_last(xl)
    rm_l, rv_l = rm.copy(), rv.copy()
    y, mean, invstd = KB.batch_norm_forward_train(xl, w, b, rm_l, rv_l, 0.1, 1e-5)
    x64 = x.astype(np.float64)
    y_ref, mean_ref, var_ref, invstd_ref = _ref_train(x64, w.astype(np.float64),
                                                      b.astype(np.float64), 1e-5)
    tol = _tol(dtype)
    np.testing.assert_allclose(y, y_ref, **tol)
    np.testing.assert_allclose(mean, mean_ref, **tol)
    np.testing.assert_allclose(invstd, invstd_ref, **tol)
    m = x.size // x.shape[1]
    np.testing.assert_allclose(rm_l, 0.9 * rm + 0.1 * mean_ref, **tol)
    np.testing.assert_allclose(rv_l, 0.9 * rv + 0.1 * var_ref * m / (m - 1), **tol)
    assert KB.is_channels_last(y)
    gx_ref, gw_ref, gb_ref = _ref_backward(gy.astype(np.float64), x64, w.astype(np.float64),
                                           1e-5)
    for g in (_channels_last(gy), gy):
        gx, gw, gb = KB.batch_norm_backward_train(g, xl, w, mean, invstd)
        np.testing.assert_allclose(gx, gx_ref, **tol)
        np.testing.assert_allclose(gw, gw_ref, **tol)
        np.testing.assert_allclose(gb, gb_ref, **tol)
        assert KB.is_channels_last(gx)
    ye = KB.batch_norm_forward_eval(xl, w, b, rm, rv, 1e-5)
    np.testing.assert_allclose(ye, KB.batch_norm_forward_eval(x, w, b, rm, rv, 1e-5), **tol)
    assert KB.is_channels_last(ye)


def test_channels_last_variance_is_two_pass_accurate():
    rng = np.random.default_rng(4)
    x = (1e4 + rng.standard_normal((64, 20, 4, 4))).astype(np.float32)
    y, _, invstd = KB.batch_norm_forward_train(_channels_last(x), None, None, None, None, 0.1,
                                               1e-5)
    var = x.astype(np.float64).var(axis=(0, 2, 3))
    np.testing.assert_allclose(invstd, 1 / np.sqrt(var + 1e-5), rtol=2e-3)
    np.testing.assert_allclose(y.astype(np.float64).std(axis=(0, 2, 3)), 1.0, rtol=2e-3)


def test_row_sum_numpy_blocks_match_float64():
    rng = np.random.default_rng(11)
    for m in (1, 63, 64, 65, 128, 200, 4097):
        a = (rng.standard_normal((m, 7)) + 100).astype(np.float32)
        got = KB._row_sum_numpy(a)
        assert got.dtype == np.float64 and got.shape == (7,)
        np.testing.assert_allclose(got, a.astype(np.float64).sum(axis=0), rtol=1e-6)


# A layer's num_batches_tracked: advanced by the training forward, on the GPU by the statistics
# kernel itself (one thread), so that it costs no launch of its own.

def _counted(xp, counter, n=3):
    x, w, b, rm, rv, _ = (xp.asarray(a.astype(np.float32)) for a in _data((4, 3, 5, 5)))
    for _ in range(n):
        KB.batch_norm_forward_train(x, w, b, rm, rv, 0.1, 1e-5, 0.2, counter=counter)
    KB.batch_norm_forward_eval(x, w, b, rm, rv, 1e-5)  # evaluation counts nothing
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        KB.batch_norm_forward_train(x[:1, :, :1, :1], w, b, rm, rv, 0.1, 1e-5, counter=counter)
    return int(counter)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_the_counter_advances_once_per_training_forward_on_the_cpu(dtype):
    assert _counted(np, np.zeros((), dtype)) == 3


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_the_counter_advances_once_per_training_forward_on_the_gpu(cuda, dtype):
    assert _counted(cuda, cuda.zeros((), dtype)) == 3
    c = cuda.full((), 41, dtype)
    _counted(cuda, c, n=1)
    assert int(c) == 42


def test_the_gpu_counter_is_advanced_inside_the_statistics_kernel(emulated_gpu):
    from minigan import nn
    from tests.kernels import emulated_cupy as E
    cp = emulated_gpu
    x = cp.asarray(_data((4, 3, 5, 5))[0].astype(np.float32))
    bn = nn.BatchNorm2d(3).to("cuda")
    launches = []
    for counter in (None, bn.num_batches_tracked):
        KB.batch_norm_forward_train(x, None, None, None, None, 0.1, 1e-5, counter=counter)
        E.LOG.clear()
        KB.batch_norm_forward_train(x, None, None, None, None, 0.1, 1e-5, counter=counter)
        launches.append(dict(E.LOG.launches))
    assert launches[0] == launches[1]  # the same launches with the counter as without
    assert int(bn.num_batches_tracked) == 2
    bn(x)  # the layer hands its counter to the kernel
    assert int(bn.num_batches_tracked) == 3
    E.LOG.clear()
    bn(x)
    assert not any(k[0] == "ufunc" for k in E.LOG.launches), E.LOG.launches
    assert int(bn.num_batches_tracked) == 4
    bn.eval()
    bn(x)
    assert int(bn.num_batches_tracked) == 4


def _channel_major(cp, a):
    """a (N, C, H, W) stored as (C, N, H, W): the layout of a GPU conv's output."""
    return cp.ascontiguousarray(cp.asarray(a).transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["nchw", "channel_major", "strided", "2d"])
@pytest.mark.parametrize("affine,slope", [(True, None), (False, None), (True, 0.2),
                                          (False, 0.0)])
def test_the_fused_kernels_give_the_two_launch_values(cuda, monkeypatch, dtype, layout, affine,
                                                      slope):
    """The statistics kernel writing y (and the gradient kernel writing gx) against the
    elementwise second launch: the same T arithmetic, so the same values to rounding (bit for
    bit where one compiler builds both, as in the emulator), in the input's layout."""
    shape = (6, 3) if layout == "2d" else (4, 3, 5, 6)
    x, w, b, rm, rv, gy = (a.astype(dtype) for a in _data(shape, seed=3, loc=1.0))
    if layout == "channel_major":
        xg, gyg = _channel_major(cuda, x), _channel_major(cuda, gy)
    elif layout == "strided":
        xg = cuda.asarray(x.transpose(0, 1, 3, 2).copy()).transpose(0, 1, 3, 2)
        gyg = cuda.asarray(gy)
    else:
        xg, gyg = cuda.asarray(x), cuda.asarray(gy)
    wg, bg = (cuda.asarray(w), cuda.asarray(b)) if affine else (None, None)
    runs = []
    for limit in (KB._FUSED_MAX, 0):
        monkeypatch.setattr(KB, "_FUSED_MAX", limit)
        rmg, rvg, cnt = cuda.asarray(rm), cuda.asarray(rv), cuda.zeros((), np.int64)
        y, mean, invstd = KB.batch_norm_forward_train(xg, wg, bg, rmg, rvg, 0.1, 1e-5, slope,
                                                      counter=cnt)
        grads = KB.batch_norm_backward_train(gyg, xg, wg, mean, invstd,
                                             y=y if slope is not None else None,
                                             negative_slope=slope)
        runs.append((y, mean, invstd, rmg, rvg, cnt) + tuple(grads))
    exact = backend.cupy.__name__ != "cupy"  # the emulator compiles both kernels alike
    for fused, plain in zip(*runs):
        assert fused.shape == plain.shape and fused.dtype == plain.dtype == (
            np.int64 if fused.ndim == 0 else dtype)
        if exact:
            np.testing.assert_array_equal(fused.get(), plain.get())
        else:
            np.testing.assert_allclose(fused.get(), plain.get(), rtol=1e-6, atol=1e-6)
    y, gx = runs[0][0], runs[0][6]
    if layout != "strided":  # (a strided view is copied to C order first)
        assert y.strides == xg.strides and gx.strides == xg.strides  # the input's layout kept
    if slope:
        assert float(y.min()) < 0  # the activation matters here


@pytest.mark.gpu
@pytest.mark.parametrize("layout", ["nchw", "channel_major", "strided"])
@pytest.mark.parametrize("slope", [None, 0.0])
def test_a_channel_major_output_has_the_values_of_the_input_layout(cuda, layout, slope):
    """``channel_major=True`` stores y as (C, N, H, W) whatever x's layout (what a transposed
    conv after it reads without a copy), with the same values; the backward, fed a
    channel-major gy and that y, gives the same gradients, gx in x's layout."""
    x, w, b, rm, rv, gy = (a.astype(np.float32) for a in _data((4, 3, 5, 6), seed=5, loc=1.0))
    if layout == "channel_major":
        xg = _channel_major(cuda, x)
    elif layout == "strided":
        xg = cuda.asarray(x.transpose(0, 1, 3, 2).copy()).transpose(0, 1, 3, 2)
    else:
        xg = cuda.asarray(x)
    wg, bg = cuda.asarray(w), cuda.asarray(b)
    runs = []
    for cm in (False, True):
        rmg, rvg = cuda.asarray(rm), cuda.asarray(rv)
        y, mean, invstd = KB.batch_norm_forward_train(xg, wg, bg, rmg, rvg, 0.1, 1e-5, slope,
                                                      channel_major=cm)
        gyg = _channel_major(cuda, gy) if cm else cuda.asarray(gy)
        grads = KB.batch_norm_backward_train(gyg, xg, wg, mean, invstd,
                                             y=y if slope is not None else None,
                                             negative_slope=slope)
        runs.append((y, mean, invstd, rmg, rvg) + tuple(grads))
    for plain, cm in zip(*runs):
        np.testing.assert_array_equal(cm.get(), plain.get())
    y, gx = runs[1][0], runs[1][5]
    assert y.strides == _channel_major(cuda, x).strides
    if layout != "strided":  # (a strided view is copied to C order first)
        assert gx.strides == xg.strides


@pytest.mark.parametrize("m,launches", [(4 * 5 * 6, 1), (1 << 17, 2)])
def test_a_batch_norm_is_one_launch_each_way_up_to_the_fused_size(emulated_gpu, m, launches,
                                                                   monkeypatch):
    """Forward (statistics, normalisation and activation) and backward (statistics and input
    gradient) are one kernel each while a channel holds at most _FUSED_MAX values; beyond it
    the elementwise pass is a launch of its own."""
    from tests.kernels import emulated_cupy as E
    cp = emulated_gpu
    x, w, b, _, _, gy = (cp.asarray(a.astype(np.float32)) for a in _data((4, 3, 5, 6)))
    if m > 4 * 5 * 6:
        monkeypatch.setattr(KB, "_FUSED_MAX", 4 * 5 * 6 - 1)  # the same data, past the limit
    E.LOG.clear()
    y, mean, invstd = KB.batch_norm_forward_train(x, w, b, None, None, 0.1, 1e-5, 0.2)
    assert E.LOG.n_launches == launches, E.LOG.launches
    E.LOG.clear()
    KB.batch_norm_backward_train(gy, x, w, mean, invstd, y=y, negative_slope=0.2)
    assert E.LOG.n_launches == launches, E.LOG.launches


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine,slope", [(True, None), (False, None), (True, 0.2),
                                          (False, 0.0)])
def test_a_shift_is_the_input_plus_it(cuda, dtype, affine, slope):
    """``shift`` (a Linear layer's bias, handed over by nn.Sequential): the kernels read
    x + shift, so every result is the one of the unshifted kernels on x + shift (bit for bit
    where one compiler builds both, as in the emulator), and the shift's gradient is gx summed
    per channel, stored or added into a given array."""
    x, w, b, rm, rv, gy = (a.astype(dtype) for a in _data((9, 4), seed=5, loc=1.0))
    s = np.random.default_rng(6).standard_normal(4).astype(dtype) * 3
    xg, gyg, sg = cuda.asarray(x), cuda.asarray(gy), cuda.asarray(s)
    wg, bg = (cuda.asarray(w), cuda.asarray(b)) if affine else (None, None)
    assert KB.takes_shift(xg)
    runs = []
    for shifted in (True, False):
        rmg, rvg = cuda.asarray(rm), cuda.asarray(rv)
        xin = xg if shifted else xg + sg
        y, mean, invstd = KB.batch_norm_forward_train(xin, wg, bg, rmg, rvg, 0.1, 1e-5, slope,
                                                      shift=sg if shifted else None)
        grads = KB.batch_norm_backward_train(gyg, xin, wg, mean, invstd,
                                             y=y if slope is not None else None,
                                             negative_slope=slope,
                                             shift=sg if shifted else None)
        runs.append((y, mean, invstd, rmg, rvg) + tuple(grads))
    assert len(runs[0]) == len(runs[1]) + 1  # the shift's gradient
    exact = backend.cupy.__name__ != "cupy"
    for a, b_ in zip(runs[0], runs[1]):
        assert a.shape == b_.shape and a.dtype == b_.dtype == dtype
        if exact:
            np.testing.assert_array_equal(a.get(), b_.get())
        else:
            np.testing.assert_allclose(a.get(), b_.get(), rtol=1e-6, atol=1e-6)
    gx, gs = runs[0][5].get(), runs[0][8].get()
    # (gx sums to about 0 per channel: the sum is compared at the size of its terms)
    np.testing.assert_allclose(gs, gx.sum(0, dtype=np.float64).astype(dtype), rtol=0,
                               atol=(1e-6 if dtype == np.float32 else 1e-14) * np.abs(gx).max())
    into = cuda.full(4, 0.5, dtype=dtype)
    xin = xg
    y, mean, invstd = KB.batch_norm_forward_train(xin, wg, bg, None, None, 0.1, 1e-5, slope,
                                                  shift=sg)
    out = KB.batch_norm_backward_train(gyg, xin, wg, mean, invstd,
                                       y=y if slope is not None else None,
                                       negative_slope=slope, shift=sg, shift_into=into)
    assert out[3] is into
    np.testing.assert_allclose(into.get(), gs + dtype(0.5), rtol=0, atol=1e-6)
    if slope:
        assert float(y.min()) < 0  # the activation matters here


def test_a_shift_is_refused_where_the_kernels_cannot_add_it(emulated_gpu, monkeypatch):
    cp = emulated_gpu
    x, w, b, _, _, gy = _data((6, 3))
    s = np.ones(3)
    for xa, what in ((x, "on cpu"), (cp.asarray(x).reshape(6, 3, 1), r"\(6, 3, 1\)")):
        with pytest.raises(ValueError, match="a shift is taken only with a 2-D float GPU "
                                             "input.*" + what):
            KB.batch_norm_forward_train(xa, w, b, None, None, 0.1, 1e-5, shift=s)
    xg = cp.asarray(x)
    y, mean, invstd = KB.batch_norm_forward_train(xg, None, None, None, None, 0.1, 1e-5)
    monkeypatch.setattr(KB, "_FUSED_MAX", 5)  # 6 rows: past the one-kernel size
    assert not KB.takes_shift(xg)
    with pytest.raises(ValueError, match="batch norm backward: a shift is taken only"):
        KB.batch_norm_backward_train(cp.asarray(gy), xg, None, mean, invstd, shift=cp.asarray(s))


def test_a_shifted_batch_norm_is_one_launch_each_way(emulated_gpu):
    from tests.kernels import emulated_cupy as E
    cp = emulated_gpu
    x, w, b, _, _, gy = (cp.asarray(a.astype(np.float32)) for a in _data((8, 5)))
    s = cp.asarray(np.arange(5, dtype=np.float32))
    E.LOG.clear()
    y, mean, invstd = KB.batch_norm_forward_train(x, w, b, None, None, 0.1, 1e-5, 0.2, shift=s)
    assert E.LOG.n_launches == 1, E.LOG.launches
    E.LOG.clear()
    KB.batch_norm_backward_train(gy, x, w, mean, invstd, y=y, negative_slope=0.2, shift=s)
    assert E.LOG.n_launches == 1, E.LOG.launches
