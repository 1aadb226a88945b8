"""F.unfold / F.fold / F.bilinear, nn.Unfold / nn.Fold / nn.Bilinear and nn.utils'
parameters_to_vector / vector_to_parameters: values against NumPy loops written here, the
fold-unfold adjoint identities, gradients of first and second order, shapes and errors; on the
GPU through the `device` fixture; against torch where it is installed."""
import numpy as np
import pytest

import minigan
import minigan.nn.fold_bilinear as L
from minigan import backend
from minigan.functional import folding as FF
from minigan.functional.folding import bilinear, fold, unfold
from minigan.nn.utils.convert import parameters_to_vector, vector_to_parameters
from minigan.testing import GradientCheckError, check_backward, check_double_backward

R = np.random.default_rng(11)

# (kernel_size, dilation, padding, stride), as F.unfold takes them
GEOMETRIES = [
    (3, 1, 0, 1),
    (2, 1, 0, 2),
    ((2, 3), (2, 1), (1, 2), (2, 3)),
    (3, 2, 1, 1),
    ((1, 2), 1, (0, 1), (1, 2)),
]
IMAGE = (2, 3, 7, 6)


def _t(a, device="cpu", grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a), device), requires_grad=grad)


def _np(t):
    return backend.to_numpy(t.data)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _grid(hw, k, d, p, s):
    return tuple((hw[t] + 2 * p[t] - d[t] * (k[t] - 1) - 1) // s[t] + 1 for t in range(2))


def unfold_ref(x, kernel_size, dilation, padding, stride):
    """cols[n, (c,i,j), (a,b)] = xpad[n, c, a*s + i*d, b*s + j*d], by loops."""
    k, d, p, s = map(_pair, (kernel_size, dilation, padding, stride))
    n, c, h, w = x.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    gh, gw = _grid((h, w), k, d, p, s)
    out = np.zeros((n, c, k[0], k[1], gh, gw), x.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            for a in range(gh):
                for b in range(gw):
                    out[:, :, i, j, a, b] = xpad[:, :, a * s[0] + i * d[0], b * s[1] + j * d[1]]
    return out.reshape(n, c * k[0] * k[1], gh * gw)


def fold_ref(cols, output_size, kernel_size, dilation, padding, stride):
    """y[n, c, a*s - p + i*d, b*s - p + j*d] += cols[n, (c,i,j), (a,b)], by loops."""
    k, d, p, s = map(_pair, (kernel_size, dilation, padding, stride))
    h, w = _pair(output_size)
    n = cols.shape[0]
    c = cols.shape[1] // (k[0] * k[1])
    gh, gw = _grid((h, w), k, d, p, s)
    taps = cols.reshape(n, c, k[0], k[1], gh, gw)
    ypad = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]), cols.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            for a in range(gh):
                for b in range(gw):
                    ypad[:, :, a * s[0] + i * d[0], b * s[1] + j * d[1]] += taps[:, :, i, j, a, b]
    return ypad[:, :, p[0]:p[0] + h, p[1]:p[1] + w]


def overlap_counts(hw, kernel_size, dilation, padding, stride):
    """How many windows cover each pixel of an (h, w) image (counted, not folded)."""
    k, d, p, s = map(_pair, (kernel_size, dilation, padding, stride))
    gh, gw = _grid(hw, k, d, p, s)
    counts = np.zeros(hw)
    for a in range(gh):
        for b in range(gw):
            for i in range(k[0]):
                for j in range(k[1]):
                    r, q = a * s[0] - p[0] + i * d[0], b * s[1] - p[1] + j * d[1]
                    if 0 <= r < hw[0] and 0 <= q < hw[1]:
                        counts[r, q] += 1
    return counts


# unfold / fold values

@pytest.mark.parametrize("geom", GEOMETRIES)
def test_unfold_matches_the_loops(device, geom):
    x = R.standard_normal(IMAGE)
    got = unfold(_t(x, device), *geom)
    assert got.device == device and got.dtype == np.float64
    np.testing.assert_array_equal(_np(got), unfold_ref(x, *geom))


@pytest.mark.parametrize("geom", GEOMETRIES)
def test_fold_matches_the_loops(device, geom):
    cols = unfold_ref(R.standard_normal(IMAGE), *geom)
    cols = R.standard_normal(cols.shape).astype(np.float32)
    got = fold(_t(cols, device), IMAGE[2:], *geom)
    assert got.shape == IMAGE and got.dtype == np.float32 and got.device == device
    np.testing.assert_allclose(_np(got), fold_ref(cols, IMAGE[2:], *geom), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("geom", GEOMETRIES)
def test_fold_of_unfold_is_x_times_the_overlap_counts(device, geom):
    x = R.standard_normal(IMAGE)
    got = fold(unfold(_t(x, device), *geom), IMAGE[2:], *geom)
    np.testing.assert_allclose(_np(got), x * overlap_counts(IMAGE[2:], *geom), rtol=1e-12)


@pytest.mark.parametrize("geom", GEOMETRIES)
def test_fold_and_unfold_are_adjoint(geom):
    x = R.standard_normal(IMAGE)
    g = R.standard_normal(unfold_ref(x, *geom).shape)
    lhs = (_np(unfold(_t(x), *geom)) * g).sum()
    rhs = (x * _np(fold(_t(g), IMAGE[2:], *geom))).sum()
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_unbatched_inputs(device):
    x = R.standard_normal(IMAGE[1:])
    cols = unfold(_t(x, device), (2, 3), padding=1)
    assert cols.shape == (3 * 6, 8 * 6)
    np.testing.assert_array_equal(_np(cols), unfold_ref(x[None], (2, 3), 1, 1, 1)[0])
    back = fold(cols, IMAGE[2:], (2, 3), padding=1)
    assert back.shape == IMAGE[1:]
    np.testing.assert_allclose(_np(back), fold_ref(_np(cols)[None], IMAGE[2:], (2, 3), 1, 1,
                                                   1)[0], rtol=1e-12)


def test_empty_batch_gives_empty_results():
    x = np.zeros((0, 2, 5, 5))
    assert unfold(_t(x), 2).shape == (0, 8, 16)
    assert fold(_t(np.zeros((0, 8, 16))), 5, 2).shape == (0, 2, 5, 5)


# gradients

GRAD_GEOMETRIES = [(2, 1, 0, 1), ((2, 3), (2, 1), (1, 2), (2, 3)), (3, 2, 1, 2)]


@pytest.mark.parametrize("geom", GRAD_GEOMETRIES)
def test_unfold_gradients_first_and_second_order(device, geom):
    x = backend.to_device(R.standard_normal((2, 2, 6, 5)), device)
    check_backward(lambda t: unfold(t, *geom), [x])
    check_double_backward(lambda t: unfold(t, *geom), [x])
    xu = backend.to_device(R.standard_normal((2, 6, 5)), device)  # unbatched
    check_double_backward(lambda t: unfold(t, *geom), [xu])


@pytest.mark.parametrize("geom", GRAD_GEOMETRIES)
def test_fold_gradients_first_and_second_order(device, geom):
    shape = unfold_ref(np.zeros((2, 2, 6, 5)), *geom).shape
    cols = backend.to_device(R.standard_normal(shape), device)
    check_backward(lambda t: fold(t, (6, 5), *geom), [cols])
    check_double_backward(lambda t: fold(t, (6, 5), *geom), [cols])
    check_double_backward(lambda t: fold(t, (6, 5), *geom), [cols[0]])


def test_unfold_gradient_is_fold_exactly():
    x = _t(R.standard_normal(IMAGE), grad=True)
    g = R.standard_normal(unfold_ref(np.zeros(IMAGE), 3, 2, 1, 1).shape)
    unfold(x, 3, 2, 1, 1).backward(_t(g))
    np.testing.assert_allclose(_np(x.grad), fold_ref(g, IMAGE[2:], 3, 2, 1, 1), rtol=1e-12)


def test_a_wrong_backward_fails_the_checker(monkeypatch):
    x = R.standard_normal((1, 2, 5, 5))

    check_backward(lambda t: unfold(t, 2, padding=1), [x])
    # a backward that reads the windows in reverse order (a layout mix-up)
    monkeypatch.setattr(FF.Unfold, "backward",
                        lambda self, gy: FF.Fold(self.image_hw, self.k, self.d, self.p,
                                                 self.s)(gy[:, :, ::-1]))
    with pytest.raises(GradientCheckError):
        check_backward(lambda t: unfold(t, 2, padding=1), [x])


# errors

def test_fold_unfold_errors():
    x = _t(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="3-D .* or 4-D"):
        unfold(_t(np.zeros((4, 4))), 2)
    with pytest.raises(ValueError, match="2-D .* or 3-D"):
        fold(x, 4, 2)
    with pytest.raises(TypeError, match="float32 and float64"):
        unfold(_t(np.zeros((1, 1, 4, 4), np.int64)), 2)
    with pytest.raises(ValueError, match="no sliding block fits"):
        unfold(x, 5)
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        unfold(x, 0)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        unfold(x, 2, stride=0)
    with pytest.raises(TypeError, match="kernel_size"):
        unfold(x, 2.5)
    with pytest.raises(ValueError, match="divisible by the product of kernel_size"):
        fold(_t(np.zeros((1, 7, 9))), 4, 2)
    with pytest.raises(ValueError, match="3 \\* 3 = 9 sliding blocks.*size 10"):
        fold(_t(np.zeros((1, 8, 10))), 4, 2)
    with pytest.raises(ValueError, match="no sliding block fits"):
        fold(_t(np.zeros((1, 8, 1))), 1, 2)


# bilinear

def bilinear_ref(x1, x2, w, b=None):
    y = np.zeros(x1.shape[:-1] + (w.shape[0],))
    for o in range(w.shape[0]):
        y[..., o] = ((x1 @ w[o]) * x2).sum(-1)
    return y if b is None else y + b


@pytest.mark.parametrize("lead", [(4,), (2, 3), ()])
def test_bilinear_matches_the_formula(device, lead):
    x1, x2 = R.standard_normal(lead + (5,)), R.standard_normal(lead + (3,))
    w, b = R.standard_normal((2, 5, 3)), R.standard_normal(2)
    got = bilinear(*[_t(a, device) for a in (x1, x2, w, b)])
    assert got.shape == lead + (2,) and got.device == device
    np.testing.assert_allclose(_np(got), bilinear_ref(x1, x2, w, b), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_np(bilinear(*[_t(a, device) for a in (x1, x2, w)])),
                               bilinear_ref(x1, x2, w), rtol=1e-12, atol=1e-12)


def test_bilinear_gradients_first_and_second_order(device):
    arrays = [backend.to_device(a, device) for a in (
        R.standard_normal((3, 4)), R.standard_normal((3, 2)), R.standard_normal((5, 4, 2)),
        R.standard_normal(5))]
    check_backward(bilinear, arrays)
    check_double_backward(bilinear, arrays)
    check_double_backward(bilinear, arrays[:3])


def test_bilinear_errors():
    x1, x2, w = _t(np.zeros((3, 4))), _t(np.zeros((3, 2))), _t(np.zeros((5, 4, 2)))
    with pytest.raises(ValueError, match="weight must be 3-D"):
        bilinear(x1, x2, _t(np.zeros((4, 2))))
    with pytest.raises(ValueError, match="same leading"):
        bilinear(x1, _t(np.zeros((2, 2))), w)
    with pytest.raises(ValueError, match="expects inputs of 4 and 2 features"):
        bilinear(x1, _t(np.zeros((3, 3))), w)
    with pytest.raises(ValueError, match="bias must have shape \\(5,\\)"):
        bilinear(x1, x2, w, _t(np.zeros(4)))


# modules

def test_unfold_and_fold_modules(device):
    x = R.standard_normal(IMAGE)
    u = L.Unfold((2, 3), dilation=(2, 1), padding=1, stride=2)
    f = L.Fold(IMAGE[2:], (2, 3), dilation=(2, 1), padding=1, stride=2)
    assert repr(u) == "Unfold(kernel_size=(2, 3), dilation=(2, 1), padding=1, stride=2)"
    assert repr(f) == ("Fold(output_size=(7, 6), kernel_size=(2, 3), dilation=(2, 1), "
                       "padding=1, stride=2)")
    cols = u(_t(x, device))
    np.testing.assert_array_equal(_np(cols), unfold_ref(x, (2, 3), (2, 1), 1, 2))
    np.testing.assert_allclose(_np(f(cols)), x * overlap_counts(IMAGE[2:], (2, 3), (2, 1), 1, 2),
                               rtol=1e-12)
    assert list(u.parameters()) == [] and list(f.parameters()) == []


def test_bilinear_module_shapes_init_and_forward(device):
    minigan.manual_seed(0)
    m = L.Bilinear(16, 3, 4, device=device)
    assert repr(m) == "Bilinear(in1_features=16, in2_features=3, out_features=4, bias=True)"
    assert m.weight.shape == (4, 16, 3) and m.bias.shape == (4,)
    assert m.weight.dtype == np.float32 and m.weight.device == device
    w, b = _np(m.weight), _np(m.bias)
    assert np.abs(w).max() <= 0.25 and np.abs(b).max() <= 0.25
    assert np.abs(w).max() > 0.2  # drawn from the whole interval (48 draws)
    x1 = R.standard_normal((5, 16)).astype(np.float32)
    x2 = R.standard_normal((5, 3)).astype(np.float32)
    y = m(_t(x1, device), _t(x2, device))
    np.testing.assert_allclose(_np(y), bilinear_ref(x1, x2, w, b), rtol=1e-4, atol=1e-5)
    y.sum().backward()
    assert m.weight.grad.shape == (4, 16, 3) and m.bias.grad.shape == (4,)
    nb = L.Bilinear(2, 3, 1, bias=False)
    assert nb.bias is None and len(list(nb.parameters())) == 1
    assert "bias=False" in repr(nb)


# parameters_to_vector / vector_to_parameters

def test_parameters_to_vector_and_back(device):
    m = L.Bilinear(3, 2, 2, device=device)
    params = list(m.parameters())
    vec = parameters_to_vector(params)
    want = np.concatenate([_np(p).ravel() for p in params])
    assert vec.shape == (14,) and vec.device == device
    np.testing.assert_array_equal(_np(vec), want)
    arrays = [p.data for p in params]
    new = np.arange(14, dtype=np.float32)
    vector_to_parameters(_t(new, device), m.parameters())
    assert all(p.data is a for p, a in zip(params, arrays))  # written in place
    np.testing.assert_array_equal(_np(m.weight), new[:12].reshape(2, 3, 2))
    np.testing.assert_array_equal(_np(m.bias), new[12:])


def test_parameters_to_vector_is_differentiable():
    a = minigan.nn.Parameter(_t(R.standard_normal((2, 3))))
    b = minigan.nn.Parameter(_t(R.standard_normal(4)))
    (parameters_to_vector([a, b]) * _t(np.arange(10.0))).sum().backward()
    np.testing.assert_array_equal(_np(a.grad), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(_np(b.grad), np.arange(6.0, 10.0))


def test_vector_to_parameters_marks_the_parameters_modified():
    p = minigan.nn.Parameter(_t(R.standard_normal(3)))
    y = (p * p).sum()
    vector_to_parameters(_t(np.ones(3)), [p])
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()


def test_convert_errors():
    p = minigan.nn.Parameter(_t(np.zeros(3)))
    with pytest.raises(TypeError, match="expected a Tensor"):
        vector_to_parameters(np.zeros(3), [p])
    with pytest.raises(ValueError, match="1-D"):
        vector_to_parameters(_t(np.zeros((1, 3))), [p])
    with pytest.raises(ValueError, match="has 4 elements but the parameters hold 3"):
        vector_to_parameters(_t(np.zeros(4)), [p])
    with pytest.raises(TypeError, match="not a Tensor"):
        parameters_to_vector([p, np.zeros(2)])
    with pytest.raises(ValueError, match="no parameters"):
        parameters_to_vector([])


# against torch

@pytest.mark.parametrize("geom", GEOMETRIES)
def test_fold_unfold_match_torch(geom):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    x = R.standard_normal(IMAGE)
    tx = torch.tensor(x, requires_grad=True)
    ty = tF.unfold(tx, *geom)
    g = R.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(g))
    mx = _t(x, grad=True)
    my = unfold(mx, *geom)
    my.backward(_t(g))
    np.testing.assert_array_equal(_np(my), ty.detach().numpy())
    np.testing.assert_allclose(_np(mx.grad), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_np(fold(_t(g), IMAGE[2:], *geom)),
                               tF.fold(torch.tensor(g), IMAGE[2:], *geom).numpy(), rtol=1e-12,
                               atol=1e-12)
    tu = torch.nn.Unfold(*geom)
    tf = torch.nn.Fold(IMAGE[2:], *geom)
    assert repr(L.Unfold(*geom)) == repr(tu) and repr(L.Fold(IMAGE[2:], *geom)) == repr(tf)


def test_bilinear_matches_torch():
    torch = pytest.importorskip("torch")
    arrays = [R.standard_normal(s) for s in ((2, 3, 4), (2, 3, 5), (6, 4, 5), (6,))]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ms = [_t(a, grad=True) for a in arrays]
    g = R.standard_normal((2, 3, 6))
    torch.nn.functional.bilinear(*ts).backward(torch.tensor(g))
    y = bilinear(*ms)
    y.backward(_t(g))
    np.testing.assert_allclose(_np(y), torch.nn.functional.bilinear(*ts).detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    for m, t in zip(ms, ts):
        np.testing.assert_allclose(_np(m.grad), t.grad.numpy(), rtol=1e-12, atol=1e-12)
    tm = torch.nn.Bilinear(7, 3, 2, bias=False)
    mm = L.Bilinear(7, 3, 2, bias=False)
    assert repr(mm) == repr(tm) and mm.weight.shape == tuple(tm.weight.shape)


def test_parameters_to_vector_matches_torch():
    torch = pytest.importorskip("torch")
    shapes = ((2, 3), (4,), (1, 2, 2))
    arrays = [R.standard_normal(s) for s in shapes]
    vec = parameters_to_vector([_t(a) for a in arrays])
    np.testing.assert_array_equal(
        _np(vec), torch.nn.utils.parameters_to_vector([torch.tensor(a) for a in arrays]).numpy())
    new = R.standard_normal(14)
    tps = [torch.nn.Parameter(torch.zeros(s, dtype=torch.float64)) for s in shapes]
    mps = [minigan.nn.Parameter(_t(np.zeros(s))) for s in shapes]
    torch.nn.utils.vector_to_parameters(torch.tensor(new), tps)
    vector_to_parameters(_t(new), mps)
    for m, t in zip(mps, tps):
        np.testing.assert_array_equal(_np(m), t.detach().numpy())
