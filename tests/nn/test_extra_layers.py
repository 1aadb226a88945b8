"""conv1d / conv_transpose1d (minigan/functional/conv_1d.py), rms_norm, local_response_norm,
gumbel_softmax and bilinear resizing (minigan/functional/extra.py), and the layers of
minigan/nn/extra.py: values against NumPy references written here, first- and second-order
float64 gradient checks, parameter layouts, initialisation, state-dict keys, reprs and
errors; on the GPU through the `device` fixture; against torch where it is installed."""
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import minigan
from minigan import backend
from minigan.functional.conv_1d import conv1d, conv_transpose1d
from minigan.functional.extra import (bilinear_interpolate, gumbel_softmax,
                                      local_response_norm, rms_norm, upsample_bilinear,
                                      upsample_nearest)
from minigan.kernels.random import Generator
from minigan.nn import extra as X
from minigan.nn.module import Module, Parameter
from minigan.testing import GradientCheckError, check_backward, check_double_backward

R = np.random.default_rng(11)


def normal(*shape):
    return R.standard_normal(shape)


def _t(a, device="cpu", grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a), device), requires_grad=grad)


def _np(a):
    return backend.to_numpy(a.data if isinstance(a, minigan.Tensor) else a)


def close(a, b, tol=1e-10):
    a = _np(a)
    assert a.shape == np.shape(b), (a.shape, np.shape(b))
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def ts(device, *arrays):
    return [_t(a, device) for a in arrays]


def on(device, *arrays):
    return [backend.to_device(np.asarray(a), device) for a in arrays]


# ----------------------------------------------------------------------------- references

def np_conv1d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Direct 1-d cross-correlation; padding an int, 'valid' or 'same' (extra on the right)."""
    k = w.shape[2]
    if padding == "valid":
        left = right = 0
    elif padding == "same":
        total = dilation * (k - 1)
        left, right = total // 2, total - total // 2
    else:
        left = right = padding
    xp_ = np.pad(x, ((0, 0), (0, 0), (left, right)))
    out = (xp_.shape[2] - dilation * (k - 1) - 1) // stride + 1
    idx = np.arange(out)[:, None] * stride + np.arange(k)[None, :] * dilation
    win = xp_[:, :, idx]  # (N, C, out, K)
    ci, co = x.shape[1] // groups, w.shape[0] // groups
    parts = [np.einsum("nclk,ock->nol", win[:, g * ci:(g + 1) * ci], w[g * co:(g + 1) * co])
             for g in range(groups)]
    y = np.concatenate(parts, 1)
    return y if b is None else y + b[None, :, None]


def np_conv_transpose1d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                        dilation=1):
    """Scatter-add definition: input position i, tap k writes output i*stride + k*dilation."""
    n, cin, length = x.shape
    k = w.shape[2]
    ci, co = cin // groups, w.shape[1]
    full = (length - 1) * stride + dilation * (k - 1) + 1 + output_padding
    y = np.zeros((n, co * groups, full))
    for g in range(groups):
        xg, wg = x[:, g * ci:(g + 1) * ci], w[g * ci:(g + 1) * ci]
        for t in range(k):
            pos = np.arange(length) * stride + t * dilation
            y[:, g * co:(g + 1) * co, pos] += np.einsum("ncl,co->nol", xg, wg[:, :, t])
    out = full - 2 * padding
    y = y[:, :, padding:padding + out]
    return y if b is None else y + b[None, :, None]


def np_rms_norm(x, k, w=None, eps=None):
    if eps is None:
        eps = np.finfo(np.float64 if x.dtype == np.float64 else np.float32).eps
    axes = tuple(range(x.ndim - k, x.ndim))
    y = x / np.sqrt((x ** 2).mean(axis=axes, keepdims=True) + eps)
    return y if w is None else y * w


def np_lrn(x, size, alpha=1e-4, beta=0.75, k=1.0):
    c = x.shape[1]
    sq = x ** 2
    div = np.zeros_like(x)
    for ch in range(c):
        lo, hi = max(ch - size // 2, 0), min(ch + (size - 1) // 2, c - 1)
        div[:, ch] = sq[:, lo:hi + 1].sum(axis=1) / size
    return x / (k + alpha * div) ** beta


def np_bilinear(x, out_hw, align_corners, scales=(None, None)):
    """Per-output-pixel bilinear blend (torch's source-index rule), written independently."""
    def coords(n_in, n_out, scale):
        j = np.arange(n_out, dtype=np.float64)
        if n_in == n_out:  # torch's CPU kernels copy an axis that keeps its size
            src = j
        elif align_corners:
            src = j * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        else:
            r = 1.0 / scale if scale else n_in / n_out
            src = np.clip((j + 0.5) * r - 0.5, 0, None)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0
    h0, h1, lh = coords(x.shape[2], out_hw[0], scales[0])
    w0, w1, lw = coords(x.shape[3], out_hw[1], scales[1])
    lh, lw = lh[:, None], lw[None, :]
    g = lambda a, b: x[:, :, a][:, :, :, b]  # noqa: E731
    return ((1 - lh) * ((1 - lw) * g(h0, w0) + lw * g(h0, w1))
            + lh * ((1 - lw) * g(h1, w0) + lw * g(h1, w1)))


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------------------- conv1d

CONV1D = [  # (C_in, C_out, K, stride, padding, dilation, groups, bias)
    (3, 4, 3, 1, 0, 1, 1, True),
    (4, 6, 3, 2, 1, 2, 2, False),
    (6, 6, 2, 1, "same", 1, 3, True),
    (2, 4, 4, 1, "same", 3, 1, True),   # odd total padding: the extra zero on the right
    (3, 2, 3, 1, "valid", 1, 1, True),
    (4, 4, 5, 3, 2, 1, 4, True),         # depthwise
]


@pytest.mark.parametrize("cin,cout,k,s,p,d,g,bias", CONV1D)
def test_conv1d_matches_the_direct_sum(device, cin, cout, k, s, p, d, g, bias):
    x, w, b = normal(2, cin, 9), normal(cout, cin // g, k), normal(cout)
    got = conv1d(*ts(device, x, w), _t(b, device) if bias else None, s, p, d, g)
    assert got.device == device
    close(got, np_conv1d(x, w, b if bias else None, s, p, d, g))


def test_conv1d_takes_unbatched_input_and_tuples(device):
    x, w = normal(3, 8), normal(5, 3, 3)
    got = conv1d(_t(x, device), _t(w, device), None, (2,), (1,), (1,))
    close(got, np_conv1d(x[None], w, None, 2, 1)[0])
    assert got.shape == (5, 4)


CONVT1D = [  # (C_in, C_out per group, K, stride, padding, output_padding, groups, dilation)
    (3, 4, 3, 1, 0, 0, 1, 1),
    (4, 3, 3, 2, 1, 1, 2, 1),
    (6, 2, 4, 3, 2, 2, 3, 2),
    (2, 2, 3, 1, 1, 1, 1, 2),   # output_padding below the dilation, not the stride
]


@pytest.mark.parametrize("cin,cog,k,s,p,op,g,d", CONVT1D)
def test_conv_transpose1d_matches_the_scatter_add(device, cin, cog, k, s, p, op, g, d):
    x, w, b = normal(2, cin, 5), normal(cin, cog, k), normal(cog * g)
    got = conv_transpose1d(*ts(device, x, w, b), s, p, op, g, d)
    close(got, np_conv_transpose1d(x, w, b, s, p, op, g, d))
    assert got.shape[2] == (5 - 1) * s - 2 * p + d * (k - 1) + op + 1


def test_conv_transpose1d_is_the_adjoint_of_conv1d():
    # <conv1d(x, W), y> == <x, conv_transpose1d(y, W)> for the same stride/padding/dilation
    x, w, y = normal(2, 4, 11), normal(6, 2, 3), normal(2, 6, 5)
    a = (np_conv1d(x, w, None, 2, 1, 2, 2) * y).sum()
    xt = _np(conv_transpose1d(_t(y), _t(w), None, 2, 1, 0, 2, 2))
    assert xt.shape == x.shape
    np.testing.assert_allclose(a, (x * xt).sum(), rtol=1e-12)


@pytest.mark.parametrize("cfg", [CONV1D[1], CONV1D[2], CONV1D[3]])
def test_conv1d_gradients_first_and_second_order(device, cfg):
    cin, cout, k, s, p, d, g, _ = cfg
    x, w, b = on(device, normal(2, cin, 7), normal(cout, cin // g, k), normal(cout))

    def f(x, w, b):
        return conv1d(x, w, b, s, p, d, g)
    check_backward(f, [x, w, b])
    check_double_backward(f, [x, w, b])


@pytest.mark.parametrize("cfg", CONVT1D[1:])
def test_conv_transpose1d_gradients_first_and_second_order(device, cfg):
    cin, cog, k, s, p, op, g, d = cfg
    x, w, b = on(device, normal(2, cin, 4), normal(cin, cog, k), normal(cog * g))

    def f(x, w, b):
        return conv_transpose1d(x, w, b, s, p, op, g, d)
    check_backward(f, [x, w, b])
    check_double_backward(f, [x, w, b])


@pytest.mark.parametrize("call,match", [
    (lambda: conv1d(_t(normal(2, 3, 4, 5)), _t(normal(2, 3, 3))), r"2-D .* 3-D .*\(2, 3, 4, 5\)"),
    (lambda: conv1d(_t(normal(2, 3, 5)), _t(normal(2, 3, 3, 1))), r"weight must be 3-D"),
    (lambda: conv1d(_t(normal(2, 4, 5)), _t(normal(2, 3, 3))), r"4 channels.*\(2, 3, 3\)"),
    (lambda: conv1d(_t(normal(2, 4, 5)), _t(normal(3, 2, 3)), groups=2),
     r"3 output channels.*groups=2"),
    (lambda: conv1d(_t(normal(2, 3, 5)), _t(normal(2, 3, 3)), stride=2, padding="same"),
     r"'same' is not supported for strided"),
    (lambda: conv1d(_t(normal(2, 3, 5)), _t(normal(2, 3, 3)), padding="full"),
     r"invalid padding string 'full'"),
    (lambda: conv1d(_t(normal(2, 3, 2)), _t(normal(2, 3, 3))), r"shorter than the dilated"),
    (lambda: conv1d(_t(normal(2, 3, 5)), _t(normal(2, 3, 3)), _t(normal(3))),
     r"bias must have shape \(2,\)"),
    (lambda: conv1d(_t(normal(2, 3, 5)), _t(normal(2, 3, 3)), stride=(1, 1)), r"1-element"),
    (lambda: conv1d(_t(normal(2, 3, 5)), _t(normal(2, 3, 3)), groups=0), r"positive"),
    (lambda: conv_transpose1d(_t(normal(2, 3, 5)), _t(normal(3, 2, 3)), stride=2,
                              output_padding=2), r"output_padding \(2\) must be smaller"),
    (lambda: conv_transpose1d(_t(normal(2, 4, 5)), _t(normal(3, 2, 3))), r"4 channels"),
    (lambda: conv_transpose1d(_t(normal(2, 3, 5)), _t(normal(3, 2, 3)), groups=2),
     r"groups=2 does not divide"),
    (lambda: conv_transpose1d(_t(normal(2, 3, 5)), _t(normal(3, 2, 3)), padding="same"),
     r"padding strings"),
])
def test_conv1d_errors_name_the_shapes_and_arguments(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_conv1d_layer_parameters_init_and_state_dict():
    minigan.manual_seed(0)
    m = X.Conv1d(6, 8, 5, groups=2)
    assert m.weight.shape == (8, 3, 5) and m.bias.shape == (8,)
    bound = 1 / np.sqrt(3 * 5)  # fan-in: in_channels / groups * K
    for p in (m.weight, m.bias):
        v = _np(p)
        assert np.abs(v).max() <= bound and np.abs(v).max() > 0.8 * bound
    assert list(m.state_dict()) == ["weight", "bias"]
    t = X.ConvTranspose1d(6, 8, 5, groups=2, bias=False)
    assert t.weight.shape == (6, 4, 5) and t.bias is None
    v = _np(t.weight)  # fan-in: out_channels / groups * K
    assert np.abs(v).max() <= 1 / np.sqrt(4 * 5) and np.abs(v).max() > 0.8 / np.sqrt(20)
    assert list(t.state_dict()) == ["weight"]


@pytest.mark.parametrize("make,want", [
    (lambda: X.Conv1d(3, 4, 3), "Conv1d(3, 4, kernel_size=(3,), stride=(1,))"),
    (lambda: X.Conv1d(4, 6, 3, 2, 1, 2, 2, False),
     "Conv1d(4, 6, kernel_size=(3,), stride=(2,), padding=(1,), dilation=(2,), groups=2, "
     "bias=False)"),
    (lambda: X.Conv1d(3, 4, 4, padding="same", padding_mode="reflect"),
     "Conv1d(3, 4, kernel_size=(4,), stride=(1,), padding=same, padding_mode=reflect)"),
    (lambda: X.ConvTranspose1d(3, 4, 3, 2, 1, 1),
     "ConvTranspose1d(3, 4, kernel_size=(3,), stride=(2,), padding=(1,), "
     "output_padding=(1,))"),
    (lambda: X.RMSNorm(4), "RMSNorm((4,), eps=None, elementwise_affine=True)"),
    (lambda: X.RMSNorm([2, 3], 1e-3, False),
     "RMSNorm((2, 3), eps=0.001, elementwise_affine=False)"),
    (lambda: X.LocalResponseNorm(2), "LocalResponseNorm(2, alpha=0.0001, beta=0.75, k=1.0)"),
    (lambda: X.Softmax2d(), "Softmax2d()"),
    (lambda: X.UpsamplingNearest2d(scale_factor=2),
     "UpsamplingNearest2d(scale_factor=2.0, mode='nearest')"),
    (lambda: X.UpsamplingBilinear2d(size=(4, 5)),
     "UpsamplingBilinear2d(size=(4, 5), mode='bilinear')"),
    (lambda: X.ZeroPad1d(2), "ZeroPad1d((2, 2))"),
    (lambda: X.ConstantPad1d((1, 2), 3.5), "ConstantPad1d(padding=(1, 2), value=3.5)"),
    (lambda: X.ReflectionPad1d((1, 0)), "ReflectionPad1d((1, 0))"),
    (lambda: X.ReplicationPad1d(1), "ReplicationPad1d((1, 1))"),
    (lambda: X.CircularPad1d(1), "CircularPad1d((1, 1))"),
    (lambda: X.CircularPad2d((1, 0, 2, 1)), "CircularPad2d((1, 0, 2, 1))"),
    (lambda: X.ZeroPad3d(1), "ZeroPad3d((1, 1, 1, 1, 1, 1))"),
    (lambda: X.ConstantPad3d(1, -1.0), "ConstantPad3d(padding=(1, 1, 1, 1, 1, 1), value=-1.0)"),
])
def test_reprs_are_torchs(make, want):
    assert repr(make()) == want


def test_conv1d_layer_forward_and_padding_modes(device):
    x = normal(2, 4, 9)
    for mode, np_mode in (("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")):
        m = X.Conv1d(4, 6, 4, padding="same", padding_mode=mode).double().to(device)
        xp_ = np.pad(x, ((0, 0), (0, 0), (1, 2)), mode=np_mode)  # 'same' for K=4: (1, 2)
        close(m(_t(x, device)), np_conv1d(xp_, _np(m.weight), _np(m.bias)))
        m = X.Conv1d(4, 2, 3, padding=2, padding_mode=mode).double().to(device)
        xp_ = np.pad(x, ((0, 0), (0, 0), (2, 2)), mode=np_mode)
        close(m(_t(x, device)), np_conv1d(xp_, _np(m.weight), _np(m.bias)))
    m = X.Conv1d(4, 6, 3, stride=2, groups=2).double().to(device)
    close(m(_t(x, device)), np_conv1d(x, _np(m.weight), _np(m.bias), 2, 0, 1, 2))


def test_conv_transpose1d_layer_output_size(device):
    m = X.ConvTranspose1d(3, 2, 3, stride=3, padding=1).double().to(device)
    x = normal(2, 3, 4)
    for size in (10, 11, 12):
        for given in ((size,), [2, 2, size]):
            y = m(_t(x, device), output_size=given)
            close(y, np_conv_transpose1d(x, _np(m.weight), _np(m.bias), 3, 1, size - 10))
    with pytest.raises(ValueError, match=r"output size of \[13\].*\[10\] to \[12\]"):
        m(_t(x, device), output_size=[13])
    with pytest.raises(ValueError, match="must have 1 or 3 elements"):
        m(_t(x, device), output_size=(2, 12))


@pytest.mark.parametrize("make,match", [
    (lambda: X.Conv1d(3, 4, 3, groups=2), r"in_channels \(3\) must be divisible"),
    (lambda: X.Conv1d(4, 3, 3, groups=2), r"out_channels \(3\) must be divisible"),
    (lambda: X.Conv1d(4, 4, 3, groups=0), "groups must be a positive integer"),
    (lambda: X.Conv1d(4, 4, 3, padding="full"), "Invalid padding string 'full'"),
    (lambda: X.Conv1d(4, 4, 3, stride=2, padding="same"), "strided convolutions"),
    (lambda: X.Conv1d(4, 4, 3, padding_mode="mirror"), "padding_mode must be one of"),
    (lambda: X.Conv1d(4, 4, (3, 3)), "1-element"),
    (lambda: X.ConvTranspose1d(4, 4, 3, padding_mode="reflect"), 'Only "zeros"'),
    (lambda: X.ConvTranspose1d(4, 4, 3, padding="same"), "padding must be an int"),
])
def test_conv1d_layer_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ----------------------------------------------------------------------------- rms / lrn

def test_rms_norm_values_and_default_eps(device):
    x, w = normal(2, 3, 4, 5), normal(4, 5)
    close(rms_norm(_t(x, device), (4, 5), _t(w, device)), np_rms_norm(x, 2, w))
    close(rms_norm(_t(x, device), 5, eps=0.5), np_rms_norm(x, 1, eps=0.5))
    tiny = np.full((2, 3), 1e-9)  # eps dominates: float64's machine epsilon, not float32's
    close(rms_norm(_t(tiny, device), [3]), tiny / np.sqrt(1e-18 + np.finfo(np.float64).eps))
    x32 = np.full((2, 3), 1e-4, np.float32)
    want = x32 / np.sqrt(np.float32(1e-8) + np.finfo(np.float32).eps)
    np.testing.assert_allclose(_np(rms_norm(_t(x32, device), 3)), want, rtol=1e-5)


def test_rms_norm_gradients(device):
    x, w = on(device, normal(3, 4, 5), normal(4, 5))

    def f(x, w):
        return rms_norm(x, (4, 5), w, eps=1e-3)
    check_backward(f, [x, w])
    check_double_backward(f, [x, w])


def test_rms_norm_errors():
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[4\].*\[\*, 4\].*\[2, 3\]"):
        rms_norm(_t(normal(2, 3)), 4)
    with pytest.raises(RuntimeError, match=r"expected weight of shape \(3,\)"):
        rms_norm(_t(normal(2, 3)), 3, _t(normal(4)))
    with pytest.raises(TypeError, match="floating-point"):
        rms_norm(_t(np.ones((2, 3), np.int64)), 3)


def test_rms_norm_layer(device):
    m = X.RMSNorm((3, 4), eps=1e-4).double().to(device)
    assert m.weight.shape == (3, 4) and np.all(_np(m.weight) == 1)
    assert list(m.state_dict()) == ["weight"]
    m.weight.data[...] = backend.to_device(normal(3, 4), device)
    x = normal(2, 3, 4)
    close(m(_t(x, device)), np_rms_norm(x, 2, _np(m.weight), 1e-4))
    n = X.RMSNorm(4, elementwise_affine=False)
    assert n.weight is None and list(n.state_dict()) == []


@pytest.mark.parametrize("shape", [(2, 5, 4), (2, 6, 3, 2), (1, 4, 2, 2, 3)])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 8])
def test_local_response_norm_values(device, shape, size):
    x = normal(*shape)
    close(local_response_norm(_t(x, device), size, 0.3, 0.6, 1.5),
          np_lrn(x, size, 0.3, 0.6, 1.5))


def test_local_response_norm_gradients_and_layer(device):
    x = on(device, normal(2, 5, 3))[0]

    def f(x):
        return local_response_norm(x, 3, 0.5, 0.75, 1.0)
    check_backward(f, [x])
    check_double_backward(f, [x])
    m = X.LocalResponseNorm(2, alpha=0.2)
    xx = normal(2, 4, 3, 3)
    close(m(_t(xx, device)), np_lrn(xx, 2, 0.2))
    assert list(m.state_dict()) == []
    with pytest.raises(ValueError, match=r"3D or higher.*\(2, 4\)"):
        m(_t(normal(2, 4)))
    empty = _t(np.zeros((0, 3, 2)))
    assert local_response_norm(empty, 2).shape == (0, 3, 2)


# ----------------------------------------------------------------------------- gumbel

def test_gumbel_softmax_soft_and_hard(device):
    logits = _t(normal(6, 5), device)
    y = gumbel_softmax(logits, tau=0.7, generator=Generator(3, device))
    close(y.sum(-1), np.ones(6), 1e-12)
    # the noise is -log(-log(1 - U)) from the generator's uniforms
    u = _np(Generator(3, device).uniform((6, 5), np.float64))
    g = -np.log(-np.log1p(-u))
    close(y, np_softmax((_np(logits) + g) / 0.7, -1), 1e-12)
    h = gumbel_softmax(logits, tau=0.7, hard=True, dim=0, generator=Generator(3, device))
    hv = _np(h)
    soft0 = np_softmax((_np(logits) + g) / 0.7, 0)
    np.testing.assert_allclose(hv, (np.arange(6)[:, None] == soft0.argmax(0)), atol=1e-12)


def test_gumbel_softmax_hard_is_straight_through():
    lg = normal(4, 3)

    def f(hard):
        x = _t(lg, grad=True)
        y = gumbel_softmax(x, 0.5, hard, generator=Generator(5))
        (y * _t(np.arange(12.0).reshape(4, 3))).sum().backward()
        return _np(x.grad)
    np.testing.assert_allclose(f(True), f(False), rtol=1e-12)
    assert np.abs(f(True)).max() > 1e-6


def test_gumbel_softmax_gradients():
    def f(x):
        return gumbel_softmax(x, 0.8, generator=Generator(7))
    check_backward(f, [normal(3, 4)])
    check_double_backward(f, [normal(3, 4)])


def test_gumbel_softmax_samples_the_softmax_and_is_seeded():
    logits = np.log(np.array([0.1, 0.2, 0.7]))
    minigan.manual_seed(123)
    x = _t(np.tile(logits, (20000, 1)))
    a = _np(gumbel_softmax(x, hard=True))
    np.testing.assert_allclose(a.mean(0), [0.1, 0.2, 0.7], atol=0.015)
    minigan.manual_seed(123)
    np.testing.assert_array_equal(_np(gumbel_softmax(x, hard=True)), a)


def test_gumbel_softmax_eps_warns_and_device_checked():
    with pytest.warns(UserWarning, match="deprecated"):
        gumbel_softmax(_t(normal(2, 3)), eps=1e-5)
    if backend.cuda_available():
        with pytest.raises(backend.DeviceError, match="generator on cuda"):
            gumbel_softmax(_t(normal(2, 3)), generator=Generator(0, "cuda"))


# ----------------------------------------------------------------------------- resizing

RESIZES = [dict(size=(7, 3)), dict(scale_factor=2), dict(scale_factor=1.7),
           dict(size=(1, 1)), dict(scale_factor=(0.5, 2.5)),
           dict(scale_factor=(1.2, 1.3))]  # floor(4 * 1.2) = 4 rows: that axis is copied


@pytest.mark.parametrize("kw", RESIZES)
@pytest.mark.parametrize("align", [True, False])
def test_bilinear_matches_the_reference(device, kw, align):
    x = normal(2, 3, 4, 5)
    if "size" in kw:
        out, scales = kw["size"], (None, None)
    else:
        f = kw["scale_factor"]
        f = f if isinstance(f, tuple) else (f, f)
        out, scales = (int(4 * f[0]), int(5 * f[1])), f
    got = bilinear_interpolate(_t(x, device), align_corners=align, **kw)
    close(got, np_bilinear(x, out, align, scales), 1e-12)


def test_bilinear_align_corners_keeps_the_corners_and_torchs_example():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    want = np.array([[1.0, 4 / 3, 5 / 3, 2.0], [5 / 3, 2.0, 7 / 3, 8 / 3],
                     [7 / 3, 8 / 3, 3.0, 10 / 3], [3.0, 10 / 3, 11 / 3, 4.0]])
    close(upsample_bilinear(_t(x), scale_factor=2)[0, 0], want, 1e-12)
    close(X.UpsamplingBilinear2d(scale_factor=2)(_t(x))[0, 0], want, 1e-12)
    y = _np(bilinear_interpolate(_t(normal(1, 1, 3, 4)), size=(5, 9), align_corners=False))
    assert y.shape == (1, 1, 5, 9)


@pytest.mark.parametrize("align", [True, False])
def test_bilinear_gradients(device, align):
    x = on(device, normal(2, 2, 3, 4))[0]

    def f(x):
        return bilinear_interpolate(x, size=(5, 3), align_corners=align)
    check_backward(f, [x])
    check_double_backward(f, [x])


def test_bilinear_errors():
    with pytest.raises(ValueError, match=r"4-D input.*\(2, 3, 4\)"):
        bilinear_interpolate(_t(normal(2, 3, 4)), size=2)
    with pytest.raises(ValueError, match="exactly one"):
        bilinear_interpolate(_t(normal(1, 1, 2, 2)))
    with pytest.raises(ValueError, match="positive"):
        bilinear_interpolate(_t(normal(1, 1, 2, 2)), scale_factor=-1)


def test_upsampling_nearest_layers(device):
    x = normal(1, 2, 2, 3)
    close(X.UpsamplingNearest2d(scale_factor=2)(_t(x, device)),
          x.repeat(2, axis=2).repeat(2, axis=3))
    close(upsample_nearest(_t(x, device), size=(4, 6)), x.repeat(2, axis=2).repeat(2, axis=3))
    m = X.UpsamplingBilinear2d(size=(3, 4))
    close(m(_t(x, device)), np_bilinear(x, (3, 4), True))
    assert isinstance(m, minigan.nn.Upsample) and m.align_corners is True


def test_softmax2d(device):
    x = normal(2, 3, 4, 5)
    close(X.Softmax2d()(_t(x, device)), np_softmax(x, 1))
    close(X.Softmax2d()(_t(x[0], device)), np_softmax(x[0], 0))
    with pytest.raises(ValueError, match="3D or 4D, got 2D"):
        X.Softmax2d()(_t(normal(2, 3)))


# ----------------------------------------------------------------------------- padding

PADS = [  # (layer, numpy mode, input shape)
    (X.ZeroPad1d((2, 1)), "constant", (2, 3, 5)),
    (X.ReflectionPad1d((2, 1)), "reflect", (2, 3, 5)),
    (X.ReplicationPad1d((2, 1)), "edge", (3, 5)),
    (X.CircularPad1d((2, 1)), "wrap", (2, 3, 5)),
    (X.CircularPad2d((1, 2, 2, 0)), "wrap", (2, 3, 4, 5)),
    (X.ZeroPad3d((1, 0, 2, 1, 0, 1)), "constant", (1, 2, 3, 4, 5)),
    (X.ReflectionPad3d(1), "reflect", (1, 2, 3, 4, 5)),
    (X.ReplicationPad3d((0, 1, 1, 0, 2, 1)), "edge", (2, 3, 4, 5)),
    (X.CircularPad3d(1), "wrap", (1, 2, 3, 4, 5)),
]


@pytest.mark.parametrize("layer,mode,shape", PADS)
def test_padding_layers_match_numpy(device, layer, mode, shape):
    x = normal(*shape)
    p = layer.padding
    widths = [(0, 0)] * (len(shape) - len(p) // 2) + [(p[2 * i], p[2 * i + 1])
                                                      for i in reversed(range(len(p) // 2))]
    close(layer(_t(x, device)), np.pad(x, widths, mode=mode))
    assert list(layer.state_dict()) == []


def test_constant_pad_value_gradients_and_circular_dim_errors():
    x = normal(2, 3)
    close(X.ConstantPad1d((1, 2), 7.0)(_t(x)), np.pad(x, ((0, 0), (1, 2)), constant_values=7))
    check_double_backward(lambda t: X.ReflectionPad1d((2, 1))(t), [normal(2, 3, 4)])
    check_double_backward(lambda t: X.CircularPad2d(1)(t), [normal(1, 2, 3, 3)])
    with pytest.raises(ValueError, match=r"CircularPad1d: expected 2D or 3D input \(got 4D"):
        X.CircularPad1d(1)(_t(normal(1, 2, 3, 4)))
    with pytest.raises(ValueError, match=r"CircularPad2d: expected 3D or 4D input \(got 2D"):
        X.CircularPad2d(1)(_t(normal(3, 4)))
    with pytest.raises(ValueError, match="tuple of 2 ints"):
        X.ZeroPad1d((1, 2, 3))


# ----------------------------------------------------------------------------- containers

def test_parameter_list_registers_wraps_and_indexes():
    a, b = np.zeros((3, 4), np.float32), np.ones(5, np.float32)
    pl = X.ParameterList([minigan.Tensor(a), Parameter(b)])
    assert len(pl) == 2 and all(isinstance(p, Parameter) for p in pl)
    assert pl[0].requires_grad and pl[0].data is a  # wrapped, sharing the array
    assert list(pl.state_dict()) == ["0", "1"]
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"]
    pl.append(minigan.Tensor(np.ones(2, np.float32)))
    pl.extend([Parameter(np.ones(1, np.float32))])
    pl += [minigan.Tensor(np.ones(1, np.float32))]
    assert len(pl) == 5 and list(pl.state_dict()) == ["0", "1", "2", "3", "4"]
    assert pl[-1] is pl[4] and pl[1].shape == (5,)
    sl = pl[1:4:2]
    assert isinstance(sl, X.ParameterList) and list(sl.state_dict()) == ["0", "1"]
    assert sl[0] is pl[1] and sl[1] is pl[3]
    new = minigan.Tensor(np.full(3, 2.0, np.float32))
    pl[0] = new
    assert isinstance(pl[0], Parameter) and pl[0].data is new.data
    pl.append("not a tensor")
    assert pl[5] == "not a tensor" and len(list(pl.parameters())) == 5
    with pytest.raises(IndexError, match="index 6 is out of range"):
        pl[6]
    with pytest.raises(TypeError, match="iterable, but got Tensor"):
        pl.extend(minigan.Tensor(a))
    with pytest.raises(RuntimeError, match="should not be called"):
        pl(1)


def test_parameter_list_in_a_model_trains_and_moves():
    class M(Module):
        def __init__(self):
            super().__init__()
            self.ps = X.ParameterList([Parameter(np.ones((2, 3))), Parameter(np.ones(3))])

        def forward(self, x):
            return (x @ self.ps[0] + self.ps[1]).sum()

    m = M()
    assert list(m.state_dict()) == ["ps.0", "ps.1"]
    m(_t(np.ones((4, 2)))).backward()
    close(m.ps[1].grad, np.full(3, 4.0))
    m.float()
    assert m.ps[0].dtype == np.float32
    m2 = M()
    m2.load_state_dict({"ps.0": np.full((2, 3), 5.0), "ps.1": np.zeros(3)})
    close(m2.ps[0], np.full((2, 3), 5.0))


def test_parameter_list_repr():
    pl = X.ParameterList([Parameter(np.zeros((3, 4), np.float32)),
                          Parameter(np.zeros(5, np.float64))])
    assert repr(pl) == ("ParameterList(\n"
                        "    (0): Parameter containing: [float32 of size 3x4]\n"
                        "    (1): Parameter containing: [float64 of size 5]\n)")
    one = X.ParameterList([Parameter(np.zeros(2, np.float32))])
    assert repr(one) == "ParameterList(  (0): Parameter containing: [float32 of size 2])"
    assert repr(X.ParameterList()) == "ParameterList()"
    one.append(3)
    assert repr(one).endswith("(1): Object of type: int\n)")


def test_parameter_dict_semantics():
    a, b = np.zeros(2, np.float32), np.ones(3, np.float32)
    pd = X.ParameterDict({"b": minigan.Tensor(b), "a": Parameter(a)})
    assert list(pd) == ["a", "b"]  # a plain dict is read in sorted order, as torch does
    assert list(pd.state_dict()) == ["a", "b"] and isinstance(pd["b"], Parameter)
    od = X.ParameterDict(OrderedDict([("z", Parameter(a)), ("y", Parameter(b))]))
    assert list(od.keys()) == ["z", "y"]
    pairs = X.ParameterDict([("q", Parameter(a)), ("p", Parameter(b))])
    assert list(pairs.state_dict()) == ["q", "p"]
    pd["c"] = minigan.Tensor(np.ones(1, np.float32))
    assert "c" in pd and len(pd) == 3 and [k for k, _ in pd.named_parameters()] == ["a", "b",
                                                                                    "c"]
    assert pd.get("nope", 7) == 7 and pd.setdefault("c") is pd["c"]
    c = pd.pop("c")
    assert isinstance(c, Parameter) and "c" not in pd and list(pd.state_dict()) == ["a", "b"]
    k, v = pd.popitem()
    assert k == "b" and v.shape == (3,) and list(pd) == ["a"]
    merged = pd | pairs
    assert list(merged) == ["a", "q", "p"] and merged["q"] is pairs["q"]
    pd |= pairs
    assert list(pd) == ["a", "q", "p"]
    cp = pd.copy()
    assert cp["a"] is pd["a"] and list(cp) == list(pd)
    assert list(reversed(pd)) == ["p", "q", "a"]
    assert [p.shape for p in pd.values()] == [(2,), (2,), (3,)]
    fk = pd.fromkeys(["u", "v"])
    assert list(fk) == ["u", "v"] and fk["u"] is None and list(fk.state_dict()) == []
    del pd["q"]
    assert list(pd.state_dict()) == ["a", "p"]
    pd.clear()
    assert len(pd) == 0 and list(pd.state_dict()) == []
    with pytest.raises(TypeError, match="not a string"):
        pd[1] = Parameter(a)
    with pytest.raises(KeyError):
        pd["missing"]
    with pytest.raises(KeyError, match="contain"):
        pd["a.b"] = Parameter(a)
    with pytest.raises(ValueError, match="#0 has length 3"):
        pd.update([("a", 1, 2)])
    with pytest.raises(TypeError, match="iterable of key/value pairs"):
        pd.update(5)
    with pytest.raises(RuntimeError, match="should not be called"):
        pd(1)


def test_parameter_dict_in_a_model_and_repr():
    class M(Module):
        def __init__(self):
            super().__init__()
            self.pd = X.ParameterDict([("w", Parameter(np.ones((2, 2), np.float32)))])
            self.pl = X.ParameterList([Parameter(np.ones(3, np.float32))])

    m = M()
    assert list(m.state_dict()) == ["pd.w", "pl.0"]
    assert repr(m) == ("M(\n"
                       "  (pd): ParameterDict(  (w): Parameter containing: [float32 of size "
                       "2x2])\n"
                       "  (pl): ParameterList(  (0): Parameter containing: [float32 of size "
                       "3])\n)")


# ----------------------------------------------------------------------------- gpu moves

def test_layers_on_the_device_match_the_cpu(device):
    x = normal(2, 4, 9)
    for make in (lambda: X.Conv1d(4, 6, 3, stride=2, padding=1, groups=2),
                 lambda: X.ConvTranspose1d(4, 6, 3, stride=2, groups=2, output_padding=1),
                 lambda: X.RMSNorm(9)):
        minigan.manual_seed(1)
        cpu = make().double()
        minigan.manual_seed(1)
        dev = make().double().to(device)
        dev.load_state_dict(cpu.state_dict())
        xc, xd = _t(x, grad=True), _t(x, device, grad=True)
        yc, yd = cpu(xc), dev(xd)
        assert yd.device == device
        close(yd, _np(yc))
        (yc * yc).sum().backward()
        (yd * yd).sum().backward()
        close(xd.grad, _np(xc.grad))
        for (n, pc), (_, pd) in zip(cpu.named_parameters(), dev.named_parameters()):
            assert pd.device == device, n
            close(pd.grad, _np(pc.grad))
    pl = X.ParameterList([Parameter(np.ones(2))]).to(device)
    assert pl[0].device == device
    tail = " (cuda:0)" if device == "cuda" else ""  # torch's device string
    assert repr(pl).endswith(f"size 2{tail}])")


# ----------------------------------------------------------------------------- the checker

def test_a_wrong_gradient_is_caught():
    # rms_norm's values with the identity's gradient (straight-through): the checker must object
    def wrong(x):
        return rms_norm(x.detach(), 3) + (x - x.detach())
    check_backward(lambda x: rms_norm(x, 3), [normal(2, 3)])
    with pytest.raises(GradientCheckError):
        check_backward(wrong, [normal(2, 3)])


# ----------------------------------------------------------------------------- vs torch

def _torch():
    return pytest.importorskip("torch")


TORCH_LAYERS = [
    ("Conv1d", (4, 6, 3), dict(stride=2, padding=1, dilation=2, groups=2), (2, 4, 11)),
    ("Conv1d", (4, 6, 4), dict(padding="same", padding_mode="circular"), (2, 4, 9)),
    ("Conv1d", (4, 6, 4), dict(padding="same"), (4, 9)),
    ("ConvTranspose1d", (4, 6, 3), dict(stride=3, padding=1, output_padding=2, groups=2,
                                        dilation=2), (2, 4, 5)),
    ("RMSNorm", ((3, 5),), dict(), (2, 4, 3, 5)),
    ("RMSNorm", (5,), dict(eps=1e-2, elementwise_affine=False), (2, 4, 5)),
    ("LocalResponseNorm", (3,), dict(alpha=0.3, beta=0.6, k=2.0), (2, 5, 3, 2)),
    ("Softmax2d", (), dict(), (2, 3, 4, 5)),
    ("UpsamplingBilinear2d", (), dict(scale_factor=1.5), (2, 3, 4, 5)),
    ("UpsamplingNearest2d", (), dict(size=(6, 7)), (2, 3, 4, 5)),
    ("CircularPad2d", ((1, 2, 2, 0),), dict(), (2, 3, 4, 5)),
    ("ReflectionPad1d", ((2, 1),), dict(), (2, 3, 5)),
    ("ReplicationPad3d", (1,), dict(), (2, 3, 4, 5)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", TORCH_LAYERS)
def test_layers_against_torch(name, args, kwargs, shape):
    torch = _torch()
    t = getattr(torch.nn, name)(*args, **kwargs).double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = getattr(X, name)(*args, **kwargs).double()
    assert repr(m) == repr(t)
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in t.state_dict().items()]
    with torch.no_grad():
        for p in t.parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64))
    m.load_state_dict(t.state_dict())
    x = normal(*shape)
    xt = torch.tensor(x, requires_grad=True)
    xm = _t(x, grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yt = t(xt)
    ym = m(xm)
    close(ym, yt.detach().numpy(), 1e-9)
    gy = normal(*yt.shape)
    yt.backward(torch.tensor(gy))
    ym.backward(_t(gy))
    close(xm.grad, xt.grad.numpy(), 1e-9)
    for (n, pm), (_, pt) in zip(m.named_parameters(), t.named_parameters()):
        close(pm.grad, pt.grad.numpy(), 1e-9)


def test_functionals_against_torch():
    torch = _torch()
    F = torch.nn.functional
    x, w, b = normal(2, 6, 10), normal(4, 3, 3), normal(4)
    close(conv1d(_t(x), _t(w), _t(b), 1, "same", 2, 2),
          F.conv1d(*map(torch.tensor, (x, w, b)), 1, "same", 2, 2).numpy())
    wt = normal(6, 2, 4)
    close(conv_transpose1d(_t(x), _t(wt), None, 2, 1, 1, 3, 1),
          F.conv_transpose1d(torch.tensor(x), torch.tensor(wt), None, 2, 1, 1, 3, 1).numpy())
    close(rms_norm(_t(x), [6, 10]), F.rms_norm(torch.tensor(x), [6, 10]).numpy())
    x32 = normal(3, 7).astype(np.float32) * 1e-3
    np.testing.assert_allclose(_np(rms_norm(_t(x32), 7)), F.rms_norm(torch.tensor(x32),
                                                                      [7]).numpy(), rtol=1e-5)
    close(local_response_norm(_t(x), 4, 0.1, 0.5, 1.2),
          F.local_response_norm(torch.tensor(x), 4, 0.1, 0.5, 1.2).numpy())
    img = normal(2, 3, 5, 4)
    for kw in RESIZES:
        for align in (True, False):
            close(bilinear_interpolate(_t(img), align_corners=align, **kw),
                  F.interpolate(torch.tensor(img), mode="bilinear", align_corners=align,
                                **kw).numpy(), 1e-12)


def test_parameter_containers_against_torch():
    torch = _torch()
    a, b = np.zeros((3, 4), np.float32), np.zeros(5, np.float32)
    pl = X.ParameterList([minigan.Tensor(a), Parameter(b), None, "s"])
    tl = torch.nn.ParameterList([torch.tensor(a), torch.nn.Parameter(torch.tensor(b)), None,
                                 "s"])
    assert repr(pl) == repr(tl).replace("torch.", "")
    assert list(pl.state_dict()) == list(tl.state_dict())
    src = {"b": b, "a": a, "c": a}
    pd = X.ParameterDict({k: minigan.Tensor(v) for k, v in src.items()})
    td = torch.nn.ParameterDict({k: torch.tensor(v) for k, v in src.items()})
    assert list(pd.state_dict()) == list(td.state_dict())
    assert list(pd.popitem()[0]) == list(td.popitem()[0])
    assert list(pd) == list(td)
