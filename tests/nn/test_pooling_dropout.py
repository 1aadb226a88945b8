"""torch 2.13's pooling and dropout variants: minigan.functional.pooling / .dropouts and the
layers of minigan.nn.pooling / .dropout.

Values are held to NumPy references written here with plain loops over windows (so the
tests need no torch), shapes to torch's rules for awkward sizes, gradients to finite
differences at the first and second order in float64, dropout to its statistics, its
channel-wise pattern and its seeds. A comparison with torch itself runs where torch is
installed; the `device` fixture repeats the main tests on the GPU (or its emulation).
"""
import math
import warnings

import numpy as np
import pytest

import minigan
from minigan import backend
from minigan.functional import dropouts as D
from minigan.functional import pooling as P
from minigan.nn import dropout as ND
from minigan.nn import pooling as NP
from minigan.testing import GradientCheckError, check_backward, check_double_backward

R = np.random.default_rng(7)
NAN, INF = float("nan"), float("inf")


def _t(a, device="cpu", dtype=np.float64, grad=False):
    arr = np.asarray(a, dtype=dtype)
    return minigan.Tensor(backend.to_device(arr, device), requires_grad=grad)


def _np(t):
    return backend.to_numpy(t.data)


def _dev(a, device):
    return backend.to_device(np.asarray(a), device)


def _distinct(shape):
    """Values 0.1 apart in random order: no ties, and finite differences keep every argmax."""
    n = int(np.prod(shape))
    return (R.permutation(n) * 0.1 - 0.05 * n + R.uniform(-0.01, 0.01, n)).reshape(shape)


# ----- NumPy references (loops over windows: clarity, not speed)

def _bins(n, out):
    return [(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


def ref_adaptive(x, out, reduce):
    """Adaptive pooling over the trailing len(out) axes; reduce(window) -> (value, flat index
    inside the window's own row-major order, the window's positions)."""
    nsp = len(out)
    lead, sizes = x.shape[:-nsp], x.shape[-nsp:]
    planes = x.reshape(-1, *sizes)
    y = np.zeros((planes.shape[0],) + tuple(out))
    idx = np.zeros(y.shape, dtype=np.int64)
    for b in range(planes.shape[0]):
        for o in np.ndindex(*out):
            ranges = [range(*_bins(n, k)[i]) for n, k, i in zip(sizes, out, o)]
            pos = [p for p in np.ndindex(*sizes) if all(p[a] in ranges[a] for a in range(nsp))]
            vals = np.array([planes[b][p] for p in pos])
            y[b][o], j = reduce(vals)
            idx[b][o] = np.ravel_multi_index(pos[j], sizes)
    return y.reshape(lead + tuple(out)), idx.reshape(lead + tuple(out))


def _mean(vals):
    return vals.mean(), 0


def _max(vals):
    if np.isnan(vals).any():  # torch: the last NaN
        j = len(vals) - 1 - int(np.argmax(np.isnan(vals[::-1])))
        return vals[j], j
    j = int(np.argmax(vals))  # the first maximum
    return vals[j], j


def _out(n, k, s, p, d, ceil):
    span = n + 2 * p - d * (k - 1) - 1
    o = (span + (s - 1 if ceil else 0)) // s + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def ref_max_pool1d(x, k, s, p, d, ceil):
    n = x.shape[-1]
    out = _out(n, k, s, p, d, ceil)
    y = np.zeros(x.shape[:-1] + (out,))
    idx = np.zeros(y.shape, dtype=np.int64)
    for o in range(out):
        pos = [o * s - p + j * d for j in range(k)]
        pos = [q for q in pos if 0 <= q < n]
        for b in np.ndindex(*x.shape[:-1]):
            v, j = _max(x[b][pos])
            y[b + (o,)], idx[b + (o,)] = v, pos[j]
    return y, idx


def ref_max_pool2d(x, k, s, p, d, ceil):
    (H, W), out = x.shape[-2:], [_out(n, k, s, p, d, ceil) for n in x.shape[-2:]]
    y = np.zeros(x.shape[:-2] + tuple(out))
    idx = np.zeros(y.shape, dtype=np.int64)
    for oh, ow in np.ndindex(*out):
        hs = [q for q in (oh * s - p + j * d for j in range(k)) if 0 <= q < H]
        ws = [q for q in (ow * s - p + j * d for j in range(k)) if 0 <= q < W]
        pos = [(h, w) for h in hs for w in ws]
        for b in np.ndindex(*x.shape[:-2]):
            v, j = _max(np.array([x[b][q] for q in pos]))
            y[b + (oh, ow)], idx[b + (oh, ow)] = v, pos[j][0] * W + pos[j][1]
    return y, idx


def ref_avg_pool1d(x, k, s, p, ceil, count_include_pad):
    n = x.shape[-1]
    out = _out(n, k, s, p, 1, ceil)
    y = np.zeros(x.shape[:-1] + (out,))
    for o in range(out):
        start = o * s - p
        end = min(start + k, n + p)
        size = end - start
        lo, hi = max(start, 0), min(end, n)
        y[..., o] = x[..., lo:hi].sum(-1) / (size if count_include_pad else hi - lo)
    return y


def ref_lp_pool1d(x, norm, k, s, ceil):
    return (ref_avg_pool1d(x ** norm, k, s or k, 0, ceil, True) * k) ** (1 / norm)


# ----- values and shapes

ADAPTIVE_2D = [(3, 2), 3, (None, 2), (5, None), 1, (7, 5), (9, 11), (1, 3), (2, 1)]


@pytest.mark.parametrize("out", ADAPTIVE_2D)
def test_adaptive_pool2d_values_indices_and_shapes(device, out):
    x = R.standard_normal((2, 3, 7, 5))
    size = tuple(n if o is None else o for o, n in
                 zip(out if isinstance(out, tuple) else (out, out), (7, 5)))
    y = P.adaptive_avg_pool2d(_t(x, device), out)
    assert y.shape == (2, 3) + size and y.device == device
    np.testing.assert_allclose(_np(y), ref_adaptive(x, size, _mean)[0], rtol=1e-13, atol=1e-15)
    y, idx = P.adaptive_max_pool2d(_t(x, device), out, return_indices=True)
    want, want_idx = ref_adaptive(x, size, _max)
    np.testing.assert_array_equal(_np(y), want)
    np.testing.assert_array_equal(_np(idx), want_idx)
    assert idx.dtype == np.int64 and idx.device == device


@pytest.mark.parametrize("n,out", [(7, 3), (5, 2), (11, 4), (3, 7), (6, 6), (8, 1)])
def test_adaptive_pool1d_values_and_awkward_sizes(device, n, out):
    x = R.standard_normal((2, 3, n))
    y = P.adaptive_avg_pool1d(_t(x, device), out)
    assert y.shape == (2, 3, out)
    np.testing.assert_allclose(_np(y), ref_adaptive(x, (out,), _mean)[0], rtol=1e-13,
                               atol=1e-15)
    y, idx = P.adaptive_max_pool1d(_t(x, device), (out,), True)
    want, want_idx = ref_adaptive(x, (out,), _max)
    np.testing.assert_array_equal(_np(y), want)
    np.testing.assert_array_equal(_np(idx), want_idx)


def test_bins_that_do_not_divide_overlap_as_torchs():
    # 5 -> 2: bins [0, 3) and [2, 5) share position 2; 7 -> 3: [0, 3), [2, 5), [4, 7)
    x = np.arange(7.0).reshape(1, 1, 7)
    np.testing.assert_allclose(P.adaptive_avg_pool1d(_t(x), 3).numpy().ravel(), [1, 3, 5])
    np.testing.assert_allclose(P.adaptive_avg_pool1d(_t(x[..., :5]), 2).numpy().ravel(),
                               [1, 3])
    np.testing.assert_array_equal(P.adaptive_max_pool1d(_t(x), 3, True)[1].numpy().ravel(),
                                  [2, 4, 6])


def test_unbatched_inputs_and_global_pooling():
    x = R.standard_normal((3, 7, 5))
    np.testing.assert_allclose(P.adaptive_avg_pool2d(_t(x), (2, 3)).numpy(),
                               P.adaptive_avg_pool2d(_t(x[None]), (2, 3)).numpy()[0])
    x4 = R.standard_normal((2, 3, 4, 6))
    from minigan.functional.conv import adaptive_avg_pool2d_1
    np.testing.assert_allclose(P.adaptive_avg_pool2d(_t(x4), 1).numpy(),
                               adaptive_avg_pool2d_1(_t(x4)).numpy())
    np.testing.assert_allclose(P.adaptive_avg_pool2d(_t(x), (1, 1)).numpy(),
                               x.mean(axis=(1, 2), keepdims=True), rtol=1e-13)
    y = P.max_pool1d(_t(x[0]), 2)  # (C, L)
    assert y.shape == (7, 2)
    assert P.adaptive_avg_pool2d(_t(np.zeros((0, 3, 4, 4))), 2).shape == (0, 3, 2, 2)


SLIDING = [(3, None, 0, 1, False), (3, 2, 1, 1, True), (4, 3, 2, 1, True), (3, 2, 1, 2, True),
           (2, 1, 0, 3, False), (5, 3, 2, 1, True), (2, 2, 1, 1, False), (1, 1, 0, 1, False)]


@pytest.mark.parametrize("k,s,p,d,ceil", SLIDING)
def test_max_pool1d_and_2d_with_indices(device, k, s, p, d, ceil):
    x = R.standard_normal((2, 3, 11))
    y, idx = P.max_pool1d(_t(x, device), k, s, p, d, ceil, True)
    want, want_idx = ref_max_pool1d(x, k, s or k, p, d, ceil)
    np.testing.assert_array_equal(_np(y), want)
    np.testing.assert_array_equal(_np(idx), want_idx)
    x2 = R.standard_normal((2, 2, 7, 8))[..., :7]  # (a non-contiguous input too)
    y, idx = P.max_pool2d_with_indices(_t(x2, device), k, s, p, d, ceil)
    want, want_idx = ref_max_pool2d(x2, k, s or k, p, d, ceil)
    np.testing.assert_array_equal(_np(y), want)
    np.testing.assert_array_equal(_np(idx), want_idx)


@pytest.mark.parametrize("k,s,p,ceil", [(3, None, 0, False), (3, 2, 1, True), (4, 3, 2, True),
                                        (2, 1, 1, False), (5, 3, 2, True)])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool1d_divisors_and_ceil_mode(device, k, s, p, ceil, count_include_pad):
    x = R.standard_normal((2, 3, 10))
    y = P.avg_pool1d(_t(x, device), k, s, p, ceil, count_include_pad)
    np.testing.assert_allclose(_np(y), ref_avg_pool1d(x, k, s or k, p, ceil, count_include_pad),
                               rtol=1e-13, atol=1e-15)


def test_max_pool_ties_nan_and_padding_follow_torch():
    x = np.array([[[NAN, 1.0, NAN, 0.0, 5.0, 5.0, -INF, -INF]]])
    assert P.max_pool1d(_t(x), 4, return_indices=True)[1].numpy().ravel().tolist() == [2, 4]
    # windows of only -inf pick their first real position, never the padding
    idx = P.max_pool1d(_t(x), 2, 1, 1, return_indices=True)[1].numpy().ravel()
    assert idx.tolist() == [0, 0, 2, 2, 4, 4, 5, 6, 7]
    tie = np.array([[[[1.0, 5.0], [5.0, 5.0]]]])
    assert P.max_pool2d_with_indices(_t(tie), 2)[1].item() == 1
    assert P.adaptive_max_pool2d(_t(tie), 1, True)[1].item() == 1


@pytest.mark.parametrize("norm", [1, 2, 3.5, INF, -INF])
def test_lp_pool_values(device, norm):
    x = R.uniform(0.5, 2.0, (2, 3, 9))
    for k, s, ceil in [(3, None, False), (2, None, True), (3, 2, True)]:
        y = P.lp_pool1d(_t(x, device), norm, k, s, ceil)
        if math.isinf(norm):
            want = ref_max_pool1d(np.abs(x) * np.sign(norm), k, s or k, 0, 1, ceil)[0]
            want = want * np.sign(norm)
        else:
            want = ref_lp_pool1d(x, norm, k, s, ceil)
        np.testing.assert_allclose(_np(y), want, rtol=1e-12)
    x2 = R.uniform(0.5, 2.0, (2, 2, 6, 5))
    y = P.lp_pool2d(_t(x2, device), 2, (2, 3))
    want = np.sqrt(np.stack([(x2[..., 2 * i:2 * i + 2, 0:3] ** 2).sum((-2, -1))
                             for i in range(3)], -1))[..., None]
    np.testing.assert_allclose(_np(y), want, rtol=1e-12)


def test_max_unpool2d_inverts_max_pool(device):
    x = _distinct((2, 3, 6, 7))
    y, idx = P.max_pool2d_with_indices(_t(x, device), 3, 2, 1)
    up = P.max_unpool2d(y, idx, 3, 2, 1, output_size=(6, 7))
    assert up.shape == x.shape
    want = np.zeros_like(x)
    flat = want.reshape(6, 42)
    np.put_along_axis(flat, _np(idx).reshape(6, -1), _np(y).reshape(6, -1), axis=1)
    np.testing.assert_array_equal(_np(up), want)
    # where it is nonzero it is x's maximum
    u = _np(up)
    assert np.all((u == 0) | (u == x))
    # the default size: (in - 1) * stride - 2 * padding + kernel
    y2, i2 = P.max_pool2d_with_indices(_t(x[..., :6], device), 2)
    assert P.max_unpool2d(y2, i2, 2).shape == (2, 3, 6, 6)
    assert P.max_unpool2d(y, idx, 3, 2, 1, output_size=(2, 3, 6, 7)).shape == (2, 3, 6, 7)
    y3, i3 = P.max_pool2d_with_indices(_t(x[0, ..., :6], device), 2)
    assert P.max_unpool2d(y3, i3, 2).shape == (3, 6, 6)


# ----- gradients

GRAD_CASES = {
    "adaptive_avg_pool2d": lambda x: P.adaptive_avg_pool2d(x, (3, None)),
    "adaptive_avg_pool2d_2x4": lambda x: P.adaptive_avg_pool2d(x, (2, 4)),
    "adaptive_avg_pool1d": lambda x: P.adaptive_avg_pool1d(P.adaptive_avg_pool2d(x, (5, 1))
                                                           .reshape(2, 2, 5), 3),
    "adaptive_max_pool2d": lambda x: P.adaptive_max_pool2d(x, (3, 2)),
    "adaptive_max_pool1d": lambda x: P.adaptive_max_pool1d(x.reshape(2, 2, 35), 4),
    "max_pool1d": lambda x: P.max_pool1d(x.reshape(2, 2, 35), 4, 3, 2, 2, True),
    "max_pool2d_with_indices": lambda x: P.max_pool2d_with_indices(x, 3, 2, 1, 1, True)[0],
    "avg_pool1d": lambda x: P.avg_pool1d(x.reshape(4, 35), 4, 3, 2, True, False),
    "lp_pool2d": lambda x: P.lp_pool2d(x * x + 1, 3, 2, None, True),
    "lp_pool1d": lambda x: P.lp_pool1d(x.reshape(2, 2, 35) * x.reshape(2, 2, 35) + 1, 2.5, 3),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients_first_and_second_order(device, name):
    x = _dev(_distinct((2, 2, 7, 5)), device)
    fn = GRAD_CASES[name]
    check_backward(fn, [x])
    check_double_backward(fn, [x])


def test_max_unpool2d_gradients(device):
    x = _distinct((2, 2, 6, 6))
    y, idx = P.max_pool2d_with_indices(_t(x), 2)

    def fn(v):
        return P.max_unpool2d(v * v, _t(_np(idx), device, np.int64), 2)

    check_backward(fn, [_dev(_np(y), device)])
    check_double_backward(fn, [_dev(_np(y), device)])


def test_max_pool_gradient_goes_to_the_argmax_only():
    x = _t(np.array([[[1.0, 3.0, 3.0, 2.0, NAN, 0.0]]]), grad=True)
    P.max_pool1d(x, 3).sum().backward()
    assert x.grad.numpy().ravel().tolist() == [0, 1, 0, 0, 1, 0]  # (the first 3, the NaN)


def test_a_broken_formula_fails_the_gradient_check():
    def wrong(x):  # the max pool's value plus a term whose gradient is dropped
        return P.max_pool1d(x, 2) + minigan.Tensor(x.data[..., ::2] ** 2)

    with pytest.raises(GradientCheckError):
        check_backward(wrong, [_distinct((1, 2, 6))])


# ----- inf and NaN stay in their windows; long inputs; integers; no host syncs

def _nan_where(a):
    return np.argwhere(np.isnan(a)).tolist()


def test_avg_pool1d_inf_and_nan_reach_only_their_windows(device):
    x = np.arange(10.0)
    x[3] = INF
    y = _np(P.avg_pool1d(_t(x[None], device), 2))
    np.testing.assert_array_equal(y, [[0.5, INF, 4.5, 6.5, 8.5]])  # torch's
    x = R.standard_normal((2, 3, 11))
    x[0, 1, 4], x[1, 2, 0] = NAN, INF
    for k, s, p, ceil, cip in [(3, 2, 1, True, False), (4, 3, 2, True, True), (2, 1, 1, False,
                                                                                True)]:
        want = ref_avg_pool1d(x, k, s, p, ceil, cip)  # each window's own positions only
        got = _np(P.avg_pool1d(_t(x, device), k, s, p, ceil, cip))
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
        assert np.isfinite(got).sum() == np.isfinite(want).sum() > 0
    # the gradient: a NaN in gy reaches only the inputs of its window
    xt = _t(R.standard_normal((1, 1, 12)), device, grad=True)
    y = P.avg_pool1d(xt, 3, 2, 1)  # windows [-1, 2), [1, 4), [3, 6), ...
    u = np.ones(y.shape)
    u[0, 0, 2] = NAN
    (g,) = minigan.grad(minigan.functional.sum(y * _t(u, device)), [xt], create_graph=True)
    assert _nan_where(_np(g)) == [[0, 0, 3], [0, 0, 4], [0, 0, 5]]
    np.testing.assert_allclose(_np(g)[0, 0, :3], [1 / 3, 2 / 3, 1 / 3])
    (gg,) = minigan.grad(minigan.functional.sum(g * _t(np.arange(12.0)[None, None], device)),
                         [xt])
    np.testing.assert_array_equal(_np(gg), np.zeros((1, 1, 12)))  # linear: no second order


def test_adaptive_avg_pool2d_nan_stays_in_its_ragged_bins(device):
    x = R.standard_normal((2, 2, 7, 5))
    x[1, 0, 3, 2] = NAN  # rows 3 of 7 -> 3 lie in bins [2, 5) only; cols 2 of 5 -> 2 in both
    for out in [(3, 2), (4, 3), (3, None)]:
        size = tuple(n if o is None else o for o, n in zip(out, (7, 5)))
        want = ref_adaptive(x, size, _mean)[0]
        got = _np(P.adaptive_avg_pool2d(_t(x, device), out))
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
        assert _nan_where(got) == _nan_where(want)
    xt = _t(R.standard_normal((1, 1, 7, 5)), device, grad=True)
    y = P.adaptive_avg_pool2d(xt, (3, 2))  # rows [0, 3) [2, 5) [4, 7); cols [0, 3) [2, 5)
    u = np.ones(y.shape)
    u[0, 0, 1, 0] = INF
    (g,) = minigan.grad(minigan.functional.sum(y * _t(u, device)), [xt])
    g = _np(g)[0, 0]
    assert np.isinf(g).sum() == 9 and np.all(np.isinf(g[2:5, 0:3]))


def test_lp_pool2d_nan_stays_in_its_window_forward_and_backward(device):
    x = R.uniform(0.5, 2.0, (1, 2, 6, 6))
    x[0, 1, 2, 3] = NAN
    xt = _t(x, device, grad=True)
    y = P.lp_pool2d(xt, 2, 2)
    want = np.sqrt((x.reshape(1, 2, 3, 2, 3, 2) ** 2).sum((3, 5)))
    np.testing.assert_allclose(_np(y), want, rtol=1e-13)
    assert _nan_where(_np(y)) == [[0, 1, 1, 1]]
    (g,) = minigan.grad(minigan.functional.sum(y), [xt])
    assert _nan_where(_np(g)) == [[0, 1, h, w] for h in (2, 3) for w in (2, 3)]
    np.testing.assert_allclose(_np(g)[0, 0], x[0, 0] / np.repeat(np.repeat(want[0, 0], 2, 0),
                                                                 2, 1), rtol=1e-13)


def test_avg_pool_of_a_long_input_is_linear_in_its_length(device):
    import tracemalloc
    n = 200_000
    x = R.standard_normal((2, n))
    xt = _t(x, device, grad=True)
    tracemalloc.start()
    try:
        y = P.avg_pool1d(xt, 2)
        (g,) = minigan.grad(minigan.functional.sum(y * y), [xt])
        z = P.adaptive_avg_pool1d(xt, n // 3 + 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # a few copies of the input (3.2 MB), never an (Out, In) matrix (tens of GB)
    assert peak < 100e6, peak
    np.testing.assert_allclose(_np(y), x.reshape(2, -1, 2).mean(-1), rtol=1e-14)
    np.testing.assert_allclose(_np(g), np.repeat(x.reshape(2, -1, 2).mean(-1), 2, -1),
                               rtol=1e-13)
    np.testing.assert_allclose(_np(z)[:, :4], [[x[b, i * n // (n // 3 + 1):
                                                  -(-(i + 1) * n // (n // 3 + 1))].mean()
                                                for i in range(4)] for b in range(2)],
                               rtol=1e-13)


def test_avg_pool1d_takes_int64_as_torch(device):
    x = np.arange(10).reshape(1, 1, 10) * 7 - 20
    y = P.avg_pool1d(_t(x, device, np.int64), 3, 2, 1, True, False)
    assert y.dtype == np.int64 and y.device == device
    assert _np(y).ravel().tolist() == [-16, -6, 8, 22, 36, 43]  # rounded toward zero
    y = P.avg_pool1d(_t(x[0], device, np.int64), 2)
    assert _np(y).ravel().tolist() == [-16, -2, 11, 25, 39]
    assert _np(P.avg_pool1d(_t(x, device, np.int64), 4, 2, 2)).ravel().tolist() == [
        -8, -9, 4, 18, 32, 19]
    for call, name in [(lambda t: P.avg_pool1d(t.to(dtype=np.int32), 2), "avg_pool1d"),
                       (lambda t: P.adaptive_avg_pool1d(t, 2), "adaptive_avg_pool1d"),
                       (lambda t: P.adaptive_max_pool1d(t, 2), "adaptive_max_pool1d")]:
        with pytest.raises(TypeError, match=f"^{name}: .*int.*torch, whose {name} refuses"):
            call(_t(x, device, np.int64))
    with pytest.raises(TypeError, match="lp_pool1d.*int64.*floating type first"):
        P.lp_pool1d(_t(x, device, np.int64), 2, 2)


@pytest.mark.gpu
def test_pooling_on_the_gpu_never_waits_for_it(emulated_gpu):
    from tests.kernels import emulated_cupy as E
    x = _t(_distinct((2, 3, 7, 6)), "cuda", grad=True)
    E.LOG.clear()
    y, idx = P.max_pool2d_with_indices(x, 2, 2, 1)
    up = P.max_unpool2d(y, idx, 2, 2, 1, output_size=(7, 6))
    z = (P.avg_pool1d(up.reshape(2, 3, 42), 4, 3, 2, True, False).sum()
         + P.adaptive_avg_pool2d(up, (3, 4)).sum() + P.lp_pool2d(x * x + 1, 2, 3, 2).sum()
         + P.adaptive_avg_pool1d(x.reshape(6, 42), 5).sum())
    (g,) = minigan.grad(z, [x], create_graph=True)
    minigan.grad(g.square().sum(), [x])
    assert dict(E.LOG.syncs) == {}


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # (inf and NaN on purpose)
def test_nan_windows_and_integer_results_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = R.uniform(0.5, 2.0, (2, 2, 9, 7))
    x[0, 1, 4, 3], x[1, 0, 0, 6] = NAN, INF
    for call in [lambda f, t: f.avg_pool1d(t.reshape(4, 63), 4, 3, 2, True, False),
                 lambda f, t: f.adaptive_avg_pool2d(t, (4, 3)),
                 lambda f, t: f.adaptive_avg_pool1d(t.reshape(4, 63), 10),
                 lambda f, t: f.lp_pool2d(t, 2, 3, 2, True),
                 lambda f, t: f.lp_pool1d(t.reshape(4, 63), 3, 4, 3)]:
        tx, mx = torch.tensor(x, requires_grad=True), _t(x, grad=True)
        ty, my = call(F, tx), call(P, mx)
        np.testing.assert_allclose(my.numpy(), ty.detach().numpy(), rtol=1e-12)
        ty.sum().backward()
        my.sum().backward()
        np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    xi = np.arange(-40, 35, 3).reshape(1, 25)
    for args in [(3,), (4, 2, 2, True, False), (5, 3, 1, True, True)]:
        want = F.avg_pool1d(torch.tensor(xi), *args)
        np.testing.assert_array_equal(P.avg_pool1d(_t(xi, dtype=np.int64), *args).numpy(),
                                      want.numpy())


# ----- errors

@pytest.mark.parametrize("call,err,match", [
    (lambda: P.adaptive_avg_pool2d(_t(np.ones((3, 4))), 2), ValueError, r"3-D or 4-D.*\(3, 4\)"),
    (lambda: P.adaptive_max_pool1d(_t(np.ones(5)), 2), ValueError, r"2-D or 3-D.*\(5,\)"),
    (lambda: P.adaptive_avg_pool1d(_t(np.ones((1, 6))), -1), ValueError, r"output_size.*-1"),
    (lambda: P.adaptive_avg_pool1d(_t(np.ones((1, 6))), (None,)), TypeError, "output_size"),
    (lambda: P.adaptive_avg_pool2d(_t(np.ones((2, 0, 4))), 2), ValueError, r"dimension 1"),
    (lambda: P.adaptive_max_pool2d(_t(np.ones((1, 2, 3))), (1, 2, 3)), TypeError, "2 ints"),
    (lambda: P.max_pool1d(_t(np.ones((1, 1, 4))), 3, padding=2), ValueError, "half of"),
    (lambda: P.max_pool1d(_t(np.ones((1, 1, 2))), 3), ValueError, "empty.*size 2"),
    (lambda: P.max_pool1d(_t(np.ones((1, 1, 6))), 2, stride=0), ValueError, "stride.*>= 1"),
    (lambda: P.max_pool1d(_t(np.ones((1, 1, 6))), 2, dilation=0), ValueError, "dilation"),
    (lambda: P.avg_pool1d(_t(np.ones((1, 1, 6))), 2.5), TypeError, "kernel_size.*2.5"),
    (lambda: P.max_pool1d(_t(np.arange(6).reshape(1, 1, 6), dtype=np.int64), 2), TypeError,
     "int64"),
    (lambda: P.max_unpool2d(_t(np.ones((1, 1, 2, 2))), _t(np.array([[[[0, 1], [2, 17]]]]),
                                                         dtype=np.int64), 2),
     IndexError, r"17.*4x4"),
    (lambda: P.max_unpool2d(_t(np.ones((1, 1, 2, 2))), _t(np.zeros((1, 1, 2, 2)),
                                                         dtype=np.int64), 2, output_size=(9, 9)),
     ValueError, "between 2 and 6"),
    (lambda: P.max_unpool2d(_t(np.ones((1, 1, 2, 2))), _t(np.zeros((1, 1, 2, 1)),
                                                         dtype=np.int64), 2),
     ValueError, r"\(1, 1, 2, 1\)"),
    (lambda: P.max_unpool2d(_t(np.ones((1, 1, 2, 2))), _t(np.zeros((1, 1, 2, 2))), 2),
     TypeError, "integer"),
])
def test_errors_name_the_shapes_and_values(call, err, match):
    with pytest.raises(err, match=match):
        call()


# ----- dropout

def test_channel_dropout_zeroes_whole_channels_and_scales(device):
    minigan.manual_seed(3)
    # (function, shape, how many leading axes index a channel)
    for fn, shape, lead in [(D.dropout1d, (64, 32, 5), 2), (D.dropout2d, (64, 32, 3, 4), 2),
                            (D.dropout3d, (32, 32, 2, 3, 2), 2), (D.dropout1d, (256, 5), 1),
                            (D.dropout3d, (256, 2, 3, 2), 1)]:
        x = R.uniform(1.0, 2.0, shape)
        y = _np(fn(_t(x, device), 0.3))
        per_channel = np.round(y / x, 12).reshape(shape[:lead] + (-1,))
        assert np.all(per_channel == per_channel[..., :1]), fn.__name__  # whole channels
        vals = np.unique(per_channel[..., 0])
        np.testing.assert_allclose(vals, [0.0, 1 / 0.7])
        frac = (per_channel[..., 0] == 0).mean()
        assert abs(frac - 0.3) < 0.06, (fn.__name__, frac)


def test_dropout_gradient_is_the_mask(device):
    minigan.manual_seed(0)
    x = _t(R.standard_normal((8, 6, 3, 3)), device, grad=True)
    y = D.dropout2d(x, 0.4)
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), _np(y) / _np(x))
    check_double_backward(lambda v: D.feature_alpha_dropout(v * v, 0.4, True,
                                                            generator=minigan.Generator(
                                                                device=device).manual_seed(1)),
                          [_dev(R.standard_normal((4, 3, 2)), device)])


def test_alpha_dropout_keeps_mean_and_variance(device):
    minigan.manual_seed(1)
    x = R.standard_normal((200, 500))
    for p in (0.2, 0.5):
        y = _np(D.alpha_dropout(_t(x, device), p, training=True))
        assert abs(y.mean()) < 0.02 and abs(y.var() - 1) < 0.03, (p, y.mean(), y.var())
        # two affine maps: kept a*x + b, dropped a constant
        alpha = 1.7580993408473766
        a = 1 / math.sqrt((alpha ** 2 * p + 1) * (1 - p))
        kept = np.isclose(y, a * x + alpha * a * p)
        dropped = np.isclose(y, -alpha * a + alpha * a * p)
        assert np.all(kept | dropped) and abs(dropped.mean() - p) < 0.01
    y = _np(D.feature_alpha_dropout(_t(R.standard_normal((300, 40, 6)), device), 0.5, True))
    assert abs(y.mean()) < 0.05 and abs(y.var() - 1) < 0.08
    # a dropped channel holds one value throughout
    const = np.all(y == y[..., :1], axis=-1)
    assert abs(const.mean() - 0.5) < 0.03


def test_reproducible_under_manual_seed_and_generators(device):
    x = _t(R.standard_normal((6, 5, 4, 4)), device)
    for fn in (D.dropout2d, D.dropout3d, D.alpha_dropout, D.feature_alpha_dropout):
        minigan.manual_seed(42)
        a = _np(fn(x, 0.5, True))
        b = _np(fn(x, 0.5, True))
        minigan.manual_seed(42)
        np.testing.assert_array_equal(_np(fn(x, 0.5, True)), a)
        assert not np.array_equal(a, b)
        g1 = minigan.Generator(device=device).manual_seed(9)
        g2 = minigan.Generator(device=device).manual_seed(9)
        np.testing.assert_array_equal(_np(fn(x, 0.5, True, generator=g1)),
                                      _np(fn(x, 0.5, True, generator=g2)))


@pytest.mark.filterwarnings("ignore:dropout2d. Received a 3D input")  # (torch's warning)
def test_eval_p0_p1_and_defaults(device):
    x = _t(R.standard_normal((4, 3, 5)), device)
    for fn in (D.dropout1d, D.dropout2d, D.alpha_dropout, D.feature_alpha_dropout):
        assert fn(x, 0.5, False) is x and fn(x, 0.0, True) is x
        np.testing.assert_array_equal(_np(fn(x, 1.0, True)), np.zeros(x.shape))
    # the alpha forms default to training=False, as torch's
    assert D.alpha_dropout(x) is x and D.feature_alpha_dropout(x) is x
    assert D.dropout1d(x[0]) is not x  # (C, L) runs


def test_the_modules_leave_functional_dropout_a_function():
    import minigan.functional as MF
    assert callable(MF.dropout) and MF.dropout.__module__.endswith("activation")
    assert D.__name__ == "minigan.functional.dropouts"


def test_dropout_rank_rules_and_warnings():
    with pytest.raises(ValueError, match="probability has to be between 0 and 1, but got 1.5"):
        D.dropout2d(_t(np.ones((2, 2, 2))), 1.5)
    with pytest.raises(ValueError, match=r"dropout1d.*\(5,\)"):
        D.dropout1d(_t(np.ones(5)), 0.5)
    with pytest.warns(UserWarning, match="3D input to dropout2d"):
        y = D.dropout2d(_t(np.ones((50, 40, 3))), 0.5)
    assert np.all(_np(y) == _np(y)[..., :1])  # read as (N, C, L): channels of 3
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d"):
        D.dropout2d(_t(np.ones((4, 3))), 0.5)
    with pytest.warns(UserWarning, match="Received a 3-D input to dropout3d"):
        D.dropout3d(_t(np.ones((4, 3, 2))), 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        D.dropout2d(_t(np.ones((2, 4, 3, 3))), 0.5)
        D.dropout3d(_t(np.ones((4, 3, 3, 3))), 0.5)
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*\(3,\)"):
        D.feature_alpha_dropout(_t(np.ones(3)), 0.5, True)


# ----- modules

def test_module_reprs_read_as_torchs():
    cases = [
        (NP.AdaptiveAvgPool2d((None, 3)), "AdaptiveAvgPool2d(output_size=(None, 3))"),
        (NP.AdaptiveAvgPool1d(5), "AdaptiveAvgPool1d(output_size=5)"),
        (NP.AdaptiveMaxPool2d(3, True), "AdaptiveMaxPool2d(output_size=3)"),
        (NP.AdaptiveMaxPool1d(4), "AdaptiveMaxPool1d(output_size=4)"),
        (NP.MaxPool1d(3), "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, "
                          "ceil_mode=False)"),
        (NP.AvgPool1d(3), "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"),
        (NP.MaxUnpool2d(2), "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"),
        (NP.LPPool2d(2, 3), "LPPool2d(norm_type=2, kernel_size=3, stride=None, ceil_mode=False)"),
        (NP.LPPool1d(2.5, 3, 2, True), "LPPool1d(norm_type=2.5, kernel_size=3, stride=2, "
                                       "ceil_mode=True)"),
        (ND.Dropout2d(), "Dropout2d(p=0.5, inplace=False)"),
        (ND.Dropout1d(0.1), "Dropout1d(p=0.1, inplace=False)"),
        (ND.Dropout3d(0.2, True), "Dropout3d(p=0.2, inplace=True)"),
        (ND.AlphaDropout(0.2), "AlphaDropout(p=0.2, inplace=False)"),
        (ND.FeatureAlphaDropout(), "FeatureAlphaDropout(p=0.5, inplace=False)"),
    ]
    for module, text in cases:
        assert repr(module) == text


def test_modules_forward_and_train_eval(device):
    x = _t(_distinct((2, 3, 8, 6)), device)
    np.testing.assert_array_equal(_np(NP.AdaptiveMaxPool2d((3, None))(x)),
                                  _np(P.adaptive_max_pool2d(x, (3, None))))
    y, idx = NP.AdaptiveMaxPool2d(2, return_indices=True)(x)
    assert y.shape == idx.shape == (2, 3, 2, 2)
    np.testing.assert_allclose(_np(NP.AdaptiveAvgPool2d(2)(x)), _np(P.adaptive_avg_pool2d(x, 2)))
    x1 = _t(_distinct((2, 3, 10)), device)
    assert NP.AvgPool1d(3, 2, 1, True)(x1).shape == (2, 3, 6)
    assert NP.MaxPool1d(3, 2, 1, 2, ceil_mode=True)(x1).shape == (2, 3, 5)
    y, idx = NP.MaxPool1d(2, return_indices=True)(x1)
    assert idx.shape == (2, 3, 5)
    assert NP.AdaptiveAvgPool1d(4)(x1).shape == NP.AdaptiveMaxPool1d(4)(x1).shape == (2, 3, 4)
    assert NP.LPPool1d(2, 3)(x1).shape == (2, 3, 3)
    assert NP.LPPool2d(2, (2, 3))(x).shape == (2, 3, 4, 2)
    y, idx = P.max_pool2d_with_indices(x, 2)
    np.testing.assert_array_equal(_np(NP.MaxUnpool2d(2)(y, idx)),
                                  _np(P.max_unpool2d(y, idx, 2)))
    with pytest.raises(ValueError, match="between 0 and 1, but got -0.1"):
        ND.Dropout2d(-0.1)
    for layer in (ND.Dropout1d(), ND.Dropout2d(), ND.Dropout3d(), ND.AlphaDropout(),
                  ND.FeatureAlphaDropout()):
        inp = x1 if isinstance(layer, ND.Dropout1d) else x
        if isinstance(layer, ND.Dropout3d):
            inp = minigan.functional.reshape(x, (2, 3, 8, 3, 2))
        layer.eval()
        assert layer(inp) is inp
        layer.train()
        assert not np.array_equal(_np(layer(inp)), _np(inp))


# ----- torch

TORCH_CASES = [
    ("adaptive_avg_pool2d", lambda F, x: F.adaptive_avg_pool2d(x, (3, None))),
    ("adaptive_avg_pool2d_5x9", lambda F, x: F.adaptive_avg_pool2d(x, (5, 9))),
    ("adaptive_avg_pool1d", lambda F, x: F.adaptive_avg_pool1d(x.reshape(2, 3, 35), 8)),
    ("adaptive_max_pool2d", lambda F, x: F.adaptive_max_pool2d(x, (3, 4))),
    ("adaptive_max_pool1d", lambda F, x: F.adaptive_max_pool1d(x.reshape(2, 3, 35), 6)),
    ("max_pool1d", lambda F, x: F.max_pool1d(x.reshape(2, 3, 35), 4, 3, 2, 2, True)),
    ("avg_pool1d", lambda F, x: F.avg_pool1d(x.reshape(6, 35), 4, 3, 2, True, False)),
    ("lp_pool2d", lambda F, x: F.lp_pool2d(x * x + 1, 3, 2, None, True)),
    ("lp_pool1d", lambda F, x: F.lp_pool1d(x.reshape(2, 3, 35) ** 2 + 1, 2.5, 3, 2, True)),
]


@pytest.mark.parametrize("name,call", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_values_and_gradients_match_torch(name, call):
    torch = pytest.importorskip("torch")
    import minigan.functional as MF
    x = _distinct((2, 3, 7, 5))

    class M:  # torch's names for max_pool2d and the new functions, on minigan
        def __getattr__(self, n):
            return getattr(P, n)
    tx = torch.tensor(x, requires_grad=True)
    ty = call(torch.nn.functional, tx)
    mx = _t(x, grad=True)
    my = call(M(), mx)
    np.testing.assert_allclose(my.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    u = R.standard_normal(tuple(ty.shape))
    v = R.standard_normal(x.shape)
    (tg,) = torch.autograd.grad((ty * torch.tensor(u)).sum(), tx, create_graph=True)
    (mg,) = minigan.grad(MF.sum(my * _t(u)), [mx], create_graph=True)
    np.testing.assert_allclose(mg.numpy(), tg.detach().numpy(), rtol=1e-12, atol=1e-14)
    if tg.requires_grad:
        (tgg,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), tx)
        (mgg,) = minigan.grad(MF.sum(mg * _t(v)), [mx])
        np.testing.assert_allclose(mgg.numpy(), tgg.numpy(), rtol=1e-10, atol=1e-12)


def test_indices_unpool_and_alpha_constants_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = R.standard_normal((2, 3, 9, 7))
    x[0, 0, :3, :3] = NAN
    x[0, 1, :2, :2] = 1.0
    tx = torch.tensor(x)
    for k, s, p, d, c in SLIDING:
        ty, ti = F.max_pool2d(tx, k, s, p, d, c, True)
        my, mi = P.max_pool2d_with_indices(_t(x), k, s, p, d, c)
        np.testing.assert_array_equal(mi.numpy(), ti.numpy())
        np.testing.assert_array_equal(my.numpy(), ty.numpy())
        try:  # (torch refuses an output size more than a stride from the default)
            want = F.max_unpool2d(ty, ti, k, s, p, output_size=(9, 7)).numpy()
        except ValueError:
            with pytest.raises(ValueError, match="invalid output_size"):
                P.max_unpool2d(my, mi, k, s, p, output_size=(9, 7))
        else:
            np.testing.assert_array_equal(P.max_unpool2d(my, mi, k, s, p, (9, 7)).numpy(),
                                          want)
    for out in ADAPTIVE_2D:
        np.testing.assert_array_equal(P.adaptive_max_pool2d(_t(x), out, True)[1].numpy(),
                                      F.adaptive_max_pool2d(tx, out, True)[1].numpy())
    # alpha dropout's two values, from torch's own draw
    ones = torch.ones(4000)
    vals = np.unique(F.alpha_dropout(ones, 0.3, True).numpy())
    mine = np.unique(_np(D.alpha_dropout(_t(np.ones(4000)).to(dtype=np.float32), 0.3, True)))
    np.testing.assert_allclose(mine, vals, rtol=1e-6)
    for Mod in ("Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"):
        assert repr(getattr(ND, Mod)(0.25)) == repr(getattr(torch.nn, Mod)(0.25))
    for args in [(3,), (3, 2, 1, 2, False, True)]:
        assert repr(NP.MaxPool1d(*args)) == repr(torch.nn.MaxPool1d(*args))
    assert repr(NP.AvgPool1d(4, 2, 1)) == repr(torch.nn.AvgPool1d(4, 2, 1))
