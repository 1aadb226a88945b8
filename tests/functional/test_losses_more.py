"""The rest of torch's common losses: kl_div, soft_margin, hinge_embedding, margin_ranking,
cosine_embedding, gaussian_nll, poisson_nll, multilabel_soft_margin, multi_margin and
triplet_margin.

Each is checked against a NumPy formula written here (no torch needed), by first- and
second-order gradient checks in float64 against finite differences on each device, and, where
torch is installed, against ``torch.nn.functional``'s values and gradients for every reduction
and option (and its second derivatives for a few).
"""
import math
import warnings

import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import backend
from minigan.testing import check_backward, check_double_backward

R = np.random.default_rng(23)
REDUCTIONS = ["mean", "sum", "none"]


def _t(a, device="cpu", grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a), device), requires_grad=grad)


def _np(t):
    return backend.to_numpy(t.data)


def red(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](loss)


def softplus_np(x):
    return np.logaddexp(0.0, x)


# ----------------------------------------------------------------------------- data
# (the margins' kinks are at least 0.04 away from every input below: finite differences see
# one smooth piece)

X = R.standard_normal((4, 3))
X2 = R.standard_normal((4, 3))
SIGN = np.array([[1, -1, 1], [-1, -1, 1], [1, 1, -1], [-1, 1, 1]])  # integer targets +-1
SIGN_F = SIGN.astype(np.float64)
ODD_T = np.array([[1, -1, 0], [2, -1, 1], [1, 0, -1], [-1, 1, 3]])  # other values count twice
PROB = R.uniform(0.1, 1.0, (4, 3))
CA, CB = R.standard_normal((4, 3)), R.standard_normal((4, 3))
CT = np.array([1, -1, -1, -1])
MX = R.standard_normal((4, 5))
MT = np.array([0, 3, 4, 1])
MW = R.uniform(0.5, 2.0, 5)
ANC, POS, NEG = R.standard_normal((3, 4, 3))
VAR = R.uniform(0.5, 2.0, (4, 3))
COUNTS = np.array([[0.0, 2.5, 1.3], [0.4, 3.0, 7.2], [1.6, 0.8, 0.0], [5.0, 1.1, 2.2]])
COUNTS_POS = np.where(COUNTS == 0, 0.3, COUNTS)  # (the full loss's target gradient is NaN at 0)
RATE = R.uniform(0.3, 2.0, (4, 3))
LABELS01 = R.uniform(0.0, 1.0, (4, 3))


# ----------------------------------------------------------------------------- NumPy formulas

def kl_np(x, t, log_target=False):
    if log_target:
        return np.exp(t) * (t - x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t == 0, 0.0, t * np.log(t)) - t * x


def hinge_np(x, t, margin=1.0):
    return np.where(t != 1, np.maximum(margin - x, 0), 0) + np.where(t != -1, x, 0)


def cos_np(a, b, axis):
    return (a * b).sum(axis) / np.sqrt(((a * a).sum(axis) + 1e-12) * ((b * b).sum(axis) + 1e-12))


def cos_emb_np(a, b, t, margin=0.0):
    c = cos_np(a, b, t.ndim)
    return np.where(t == 1, 1 - c, 0) + np.where(t == -1, np.maximum(c - margin, 0), 0)


def gauss_np(x, t, v, full=False, eps=1e-6):
    v = np.maximum(v, eps)
    return 0.5 * (np.log(v) + (x - t) ** 2 / v) + (0.5 * math.log(2 * math.pi) if full else 0)


def stirling_np(t):
    with np.errstate(divide="ignore", invalid="ignore"):
        s = t * np.log(t) - t + 0.5 * np.log(2 * np.pi * t)
    return np.where(t > 1, s, 0.0)


def poisson_np(x, t, log_input=True, full=False, eps=1e-8):
    loss = np.exp(x) - t * x if log_input else x - t * np.log(x + eps)
    return loss + stirling_np(t) if full else loss


def mlsm_np(x, t, w=1.0):
    loss = (t * softplus_np(-x) + (1 - t) * softplus_np(x)) * w
    return loss.sum(x.ndim - 1) / x.shape[-1]


def multi_margin_np(x, y, p=1, margin=1.0, w=None):
    """Per sample, by loops over the samples and the classes (torch's definition)."""
    rows, ys = np.atleast_2d(x), np.atleast_1d(y)
    out = np.zeros(len(rows))
    for i, (row, yi) in enumerate(zip(rows, ys)):
        for j in range(row.size):
            z = margin - row[yi] + row[j]
            if j != yi and z > 0:
                out[i] += z ** p * (1.0 if w is None else w[yi])
    out /= rows.shape[1]
    return out.reshape(np.shape(y))


def dist_np(u, v, p=2.0, eps=1e-6):
    return (np.abs(u - v + eps) ** p).sum(-1) ** (1 / p)


def triplet_np(a, p, n, margin=1.0, q=2.0, eps=1e-6, swap=False):
    dp, dn = dist_np(a, p, q, eps), dist_np(a, n, q, eps)
    if swap:
        dn = np.minimum(dn, dist_np(p, n, q, eps))
    return np.maximum(margin + dp - dn, 0)


def _quiet(fn, *args, **kwargs):
    """fn without kl_div's warning about 'mean' (tested on its own below)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


# name, function of tensors, NumPy formula, inputs (float inputs are differentiated)
CASES = [
    ("kl_div_mean", lambda x, t: _quiet(F.kl_div, x, t),
     lambda x, t: kl_np(x, t).mean(), [X, PROB]),
    ("kl_div_batchmean", lambda x, t: F.kl_div(x, t, reduction="batchmean"),
     lambda x, t: kl_np(x, t).sum() / 4, [X, PROB]),
    ("kl_div_log_target_sum", lambda x, t: F.kl_div(x, t, reduction="sum", log_target=True),
     lambda x, t: kl_np(x, t, True).sum(), [X, X2]),
    ("kl_div_none_broadcast", lambda x, t: F.kl_div(x, t, None, None, "none"),
     lambda x, t: kl_np(x, t), [X, PROB[0]]),
    ("soft_margin", lambda x, t: F.soft_margin_loss(x, t),
     lambda x, t: softplus_np(-t * x).mean(), [X, SIGN]),
    ("soft_margin_float_target_none", lambda x, t: F.soft_margin_loss(x, t, reduction="none"),
     lambda x, t: softplus_np(-t * x), [X, X2]),
    ("hinge", lambda x, t: F.hinge_embedding_loss(x, t), lambda x, t: hinge_np(x, t).mean(),
     [2 * X, SIGN]),
    ("hinge_odd_targets_sum", lambda x, t: F.hinge_embedding_loss(x, t, 0.5, reduction="sum"),
     lambda x, t: hinge_np(x, t, 0.5).sum(), [X, ODD_T]),
    ("margin_ranking", lambda a, b, t: F.margin_ranking_loss(a, b, t),
     lambda a, b, t: np.maximum(-t * (a - b), 0).mean(), [X, X2, SIGN_F]),
    ("margin_ranking_margin_none", lambda a, b, t: F.margin_ranking_loss(a, b, t, 0.3,
                                                                         reduction="none"),
     lambda a, b, t: np.maximum(-t * (a - b) + 0.3, 0), [X, X2, SIGN_F]),
    ("cosine_embedding", lambda a, b, t: F.cosine_embedding_loss(a, b, t, -0.2),
     lambda a, b, t: cos_emb_np(a, b, t, -0.2).mean(), [CA, CB, CT]),
    ("cosine_embedding_1d_none",
     lambda a, b, t: F.cosine_embedding_loss(a, b, t, 0.1, reduction="none"),
     lambda a, b, t: cos_emb_np(a, b, t, 0.1), [CA[1], CB[1], np.array(-1)]),
    ("gaussian_nll_full", lambda x, t, v: F.gaussian_nll_loss(x, t, v, full=True),
     lambda x, t, v: gauss_np(x, t, v, True).mean(), [X, X2, VAR]),
    ("gaussian_nll_row_var_sum", lambda x, t, v: F.gaussian_nll_loss(x, t, v, reduction="sum"),
     lambda x, t, v: gauss_np(x, t, v[:, None]).sum(), [X, X2, VAR[:, 0]]),
    ("gaussian_nll_number_var", lambda x, t: F.gaussian_nll_loss(x, t, 0.7, reduction="none"),
     lambda x, t: gauss_np(x, t, 0.7), [X, X2]),
    ("poisson_nll", lambda x, t: F.poisson_nll_loss(x, t), lambda x, t: poisson_np(x, t).mean(),
     [X, COUNTS]),
    ("poisson_nll_full_sum", lambda x, t: F.poisson_nll_loss(x, t, full=True, reduction="sum"),
     lambda x, t: poisson_np(x, t, full=True).sum(), [X, COUNTS_POS]),
    ("poisson_nll_rate_full_none",
     lambda x, t: F.poisson_nll_loss(x, t, False, True, None, 0.01, None, "none"),
     lambda x, t: poisson_np(x, t, False, True, 0.01), [RATE, COUNTS_POS]),
    ("multilabel_soft_margin", lambda x, t: F.multilabel_soft_margin_loss(x, t),
     lambda x, t: mlsm_np(x, t).mean(), [X * 3, LABELS01]),
    ("multilabel_soft_margin_weight_none",
     lambda x, t, w: F.multilabel_soft_margin_loss(x, t, w, reduction="none"),
     lambda x, t, w: mlsm_np(x, t, w), [X, LABELS01, VAR[0]]),
    ("multilabel_soft_margin_1d", lambda x, t: F.multilabel_soft_margin_loss(x, t),
     lambda x, t: mlsm_np(x, t), [X[0], LABELS01[0]]),
    ("multi_margin", lambda x, y: F.multi_margin_loss(x, y), lambda x, y: multi_margin_np(x, y)
     .mean(), [MX, MT]),
    ("multi_margin_p2_weight_sum",
     lambda x, y, w: F.multi_margin_loss(x, y, 2, 0.6, w, reduction="sum"),
     lambda x, y, w: multi_margin_np(x, y, 2, 0.6, w).sum(), [MX, MT, MW]),
    ("multi_margin_1d_none", lambda x, y: F.multi_margin_loss(x, y, reduction="none"),
     lambda x, y: multi_margin_np(x, y), [MX[1], np.array(3)]),
    ("triplet", lambda a, p, n: F.triplet_margin_loss(a, p, n, 0.8),
     lambda a, p, n: triplet_np(a, p, n, 0.8).mean(), [ANC, POS, NEG]),
    ("triplet_swap_p15_none",
     lambda a, p, n: F.triplet_margin_loss(a, p, n, 0.8, 1.5, 1e-3, True, reduction="none"),
     lambda a, p, n: triplet_np(a, p, n, 0.8, 1.5, 1e-3, True), [ANC, POS, NEG]),
    ("triplet_swap_1d_sum",
     lambda a, p, n: F.triplet_margin_loss(a, p, n, 2.0, swap=True, reduction="sum"),
     lambda a, p, n: triplet_np(a, p, n, 2.0, swap=True), [ANC[1], POS[1], NEG[1]]),
]
IDS = [c[0] for c in CASES]


def _inputs(device, arrays):
    return [backend.to_device(np.asarray(a), device) for a in arrays]


def test_the_cases_exercise_both_sides_of_every_hinge():
    """The data above puts samples on both sides of each max(0, .) (and of the swap), so the
    tests see the active and the inactive branch."""
    for active in (np.maximum(-SIGN_F * (X - X2) + 0.3, 0) > 0,
                   hinge_np(2 * X, -np.ones_like(X)) > 0,
                   hinge_np(X, -np.ones_like(X), 0.5) > 0,
                   triplet_np(ANC, POS, NEG, 0.8) > 0,
                   cos_emb_np(CA, CB, CT, -0.2)[1:] > 0,
                   multi_margin_np(MX, MT, 1, 0.6) > 0):
        assert active.any() and not active.all()
    swapped = dist_np(POS, NEG, 1.5, 1e-3) < dist_np(ANC, NEG, 1.5, 1e-3)
    assert swapped.any() and not swapped.all()


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=IDS)
def test_forward_matches_formula(name, fn, ref, inputs, device):
    y = fn(*[minigan.Tensor(a) for a in _inputs(device, inputs)])
    np.testing.assert_allclose(_np(y), ref(*inputs), rtol=1e-12, atol=1e-13)
    assert y.shape == np.shape(ref(*inputs))


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=IDS)
def test_first_order_gradients(name, fn, ref, inputs, device):
    check_backward(fn, _inputs(device, inputs), mode="jacobian")


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=IDS)
def test_second_order_gradients(name, fn, ref, inputs, device):
    check_double_backward(fn, _inputs(device, inputs))


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=IDS)
def test_float32_in_float32_out(name, fn, ref, inputs, device):
    arrays = [a.astype(np.float32) if a.dtype.kind == "f" else a
              for a in map(np.asarray, inputs)]
    xs = [_t(a, device, grad=a.dtype.kind == "f") for a in arrays]
    y = fn(*xs)
    assert y.dtype == np.float32
    np.testing.assert_allclose(_np(y), ref(*inputs), rtol=2e-5, atol=1e-6)
    grads = minigan.grad(y.sum(), [x for x in xs if x.requires_grad])
    assert all(g.dtype == np.float32 for g in grads)


# ----------------------------------------------------------------------------- conventions

def test_kl_div_mean_warns_as_torch_and_points_at_the_caller():
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size") as got:
        F.kl_div(_t(X), _t(PROB))
    assert got[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for reduction in ("batchmean", "sum", "none"):
            F.kl_div(_t(X), _t(PROB), reduction=reduction)


def test_kl_div_zero_and_negative_targets(device):
    """A target 0 adds 0 (torch's xlogy) and its gradient is NaN there, as torch's; a negative
    target gives NaN. The input's gradient is -t everywhere."""
    x = _t([0.3, 0.2, -0.1], device, grad=True)
    t = _t([0.0, -0.5, 0.4], device, grad=True)
    y = F.kl_div(x, t, reduction="none")
    np.testing.assert_allclose(_np(y), [0.0, np.nan, 0.4 * (np.log(0.4) + 0.1)], rtol=1e-14)
    gx, gt = minigan.grad(y.sum(), [x, t])
    np.testing.assert_array_equal(_np(gx), [-0.0, 0.5, -0.4])
    np.testing.assert_allclose(_np(gt), [np.nan, np.nan, np.log(0.4) + 1 + 0.1], rtol=1e-14)


def test_kl_div_batchmean_divides_by_the_inputs_first_size(device):
    x, t = X[:1], np.stack([PROB[0], PROB[1]])[:, None]  # input (1, 3), target (2, 1, 3)
    y = F.kl_div(_t(x, device), _t(t, device), reduction="batchmean")
    np.testing.assert_allclose(y.item(), kl_np(x, t).sum(), rtol=1e-13)  # / 1, not / 2
    y0 = F.kl_div(_t(X[0, 0], device), _t(PROB[0, 0], device), reduction="batchmean")
    np.testing.assert_allclose(y0.item(), kl_np(X[0, 0], PROB[0, 0]), rtol=1e-13)


def test_soft_margin_loss_is_stable_at_large_margins(device):
    """log(1 + exp(-t x)) without overflow: torch's log1p(exp(.)) gives inf (and a NaN
    gradient) at -t x = 1000, this gives 1000 and -t."""
    x = _t([-1000.0, 1000.0, 30.0, -30.0], device, grad=True)
    y = F.soft_margin_loss(x, _t([1.0, 1.0, -1.0, 1.0], device), reduction="none")
    big = 30.0 + np.log1p(np.exp(-30.0))
    np.testing.assert_allclose(_np(y), [1000.0, 0.0, big, big], rtol=1e-15, atol=1e-300)
    (g,) = minigan.grad(y.sum(), [x])
    np.testing.assert_allclose(_np(g), [-1.0, 0.0, 1.0, -1.0], atol=1e-12)


@pytest.mark.parametrize("fn,x,grad", [
    # at margin - x = 0 (hinge), -t (x1 - x2) + margin = 0 and margin + d(a, p) - d(a, n) = 0
    # the gradient passes (torch's clamp_min); at margin - x[y] + x[j] = 0 (multi_margin) it
    # does not (torch's z > 0)
    (lambda x, d: F.hinge_embedding_loss(x, _t([-1, -1], d), reduction="sum"), [1.0, 0.25],
     [-1.0, -1.0]),
    (lambda x, d: F.margin_ranking_loss(x, _t([0.5, 1.0], d), _t([1.0, -1.0], d), 0.5,
                                        reduction="sum"), [1.0, 0.5], [-1.0, 1.0]),
    (lambda x, d: F.multi_margin_loss(x, _t([0, 2], d), reduction="sum"),
     [[1.0, 0.0, 0.5], [0.2, 0.3, 0.1]], [[-1 / 3, 0.0, 1 / 3], [1 / 3, 1 / 3, -2 / 3]]),
    (lambda x, d: F.triplet_margin_loss(_t([[0.0, 0.0]], d), x, _t([[3.0, 0.0]], d), 2.0,
                                        eps=0.0, reduction="sum"), [[1.0, 0.0]], [[1.0, 0.0]]),
], ids=["hinge", "margin_ranking", "multi_margin", "triplet"])
def test_gradients_at_the_kinks_follow_torch(device, fn, x, grad):
    xt = _t(x, device, grad=True)
    (g,) = minigan.grad(fn(xt, device), [xt])
    np.testing.assert_allclose(_np(g), grad, rtol=1e-14, atol=1e-15)


def test_triplet_swap_tie_splits_the_gradient(device):
    """Where d(a, n) = d(p, n) the minimum sends half the gradient each way, as torch's."""
    a, p, n = [[0.0, 0.0]], [[2.0, 0.0]], [[1.0, 5.0]]
    ts = [_t(v, device, grad=True) for v in (a, p, n)]
    y = F.triplet_margin_loss(*ts, 9.0, eps=0.0, swap=True)
    ga, gp, gn = minigan.grad(y, ts)
    r = math.sqrt(26.0)
    # d(a, p) = 2 along x; d(a, n) = d(p, n) = r, each taking half of -1
    np.testing.assert_allclose(_np(ga), [[-1.0 + 0.5 / r, 2.5 / r]], rtol=1e-14)
    np.testing.assert_allclose(_np(gp), [[1.0 - 0.5 / r, 2.5 / r]], rtol=1e-14)
    np.testing.assert_allclose(_np(gn), [[0.0, -5 / r]], rtol=1e-14, atol=1e-15)


def test_gaussian_variance_clamp_changes_the_value_only(device):
    """var is clamped at eps, and the gradient flows through the clamp as if it were not
    there (torch clamps under no_grad): at var = 0 it is d/dv of the loss at v = eps."""
    x, t, v = _t([0.3, 0.2], device, True), _t([0.0, 0.5], device), _t([0.0, 0.5], device, True)
    y = F.gaussian_nll_loss(x, t, v, eps=1e-3, reduction="none")
    np.testing.assert_allclose(_np(y), gauss_np(np.array([0.3, 0.2]), np.array([0.0, 0.5]),
                                                 np.array([0.0, 0.5]), eps=1e-3), rtol=1e-14)
    gx, gv = minigan.grad(y.sum(), [x, v])
    ve = np.array([1e-3, 0.5])
    d = np.array([0.3, -0.3])
    np.testing.assert_allclose(_np(gx), d / ve, rtol=1e-14)
    np.testing.assert_allclose(_np(gv), 0.5 * (1 / ve - d * d / ve ** 2), rtol=1e-13)


@pytest.mark.parametrize("var_shape", [(4, 3), (4,), (4, 1), (1, 3)])
def test_gaussian_variance_shapes(device, var_shape):
    v = VAR[:var_shape[0], :var_shape[1]] if len(var_shape) == 2 else VAR[:, 0]
    y = F.gaussian_nll_loss(_t(X, device), _t(X2, device), _t(v, device), reduction="none")
    np.testing.assert_allclose(_np(y), gauss_np(X, X2, v if v.ndim == 2 else v[:, None]),
                               rtol=1e-13)


def test_poisson_stirling_term_and_its_target_gradient(device):
    """The Stirling term counts where t > 1 only; the target's gradient is -x + log t + 0.5/t
    there, -x where 0 < t <= 1, and NaN where t <= 0 (torch's masked term meets log 0 there)."""
    xa, ta = np.array([0.3, 0.2, -0.1, 0.5, 0.4]), np.array([0.0, 0.5, 1.0, 2.5, -2.0])
    x, t = _t(xa, device, True), _t(ta, device, True)
    y = F.poisson_nll_loss(x, t, full=True, reduction="none")
    np.testing.assert_allclose(_np(y), poisson_np(xa, ta, full=True), rtol=1e-14)
    gx, gt = minigan.grad(y.sum(), [x, t])
    np.testing.assert_allclose(_np(gx), np.exp(xa) - ta, rtol=1e-14)
    want = -xa + np.where(ta > 1, np.log(np.abs(ta) + 1e-300) + 0.5 / np.where(ta, ta, 1), 0)
    want[[0, 4]] = np.nan
    np.testing.assert_allclose(_np(gt), want, rtol=1e-14)


def test_zero_targets_raise_no_numpy_warnings(device):
    """0 log 0 and log 0 are met on purpose at zero targets (torch's values and gradients
    there): NumPy must not warn about them in the forward or the backward."""
    x = _t([0.3, 0.2, -0.1], device, grad=True)
    t = _t([0.0, 0.5, 0.0], device, grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for y in (F.kl_div(x, t, reduction="sum"),
                  F.poisson_nll_loss(x, t, full=True, reduction="sum")):
            minigan.grad(y, [x, t])


def test_multilabel_soft_margin_is_exact_for_large_logits(device):
    x = _t([[40.0, -40.0, 800.0]], device)
    y = F.multilabel_soft_margin_loss(x, _t([[1.0, 0.0, 0.0]], device), reduction="none")
    np.testing.assert_allclose(_np(y), [(np.exp(-40.0) * 2 + 800.0) / 3], rtol=1e-15)


def test_hinge_and_cosine_targets_get_no_gradient(device):
    x = _t(X, device, True)
    t = _t(SIGN_F, device, True)
    _gx, gt = minigan.grad(F.hinge_embedding_loss(x, t), [x, t], allow_unused=True)
    assert gt is None or not _np(gt).any()
    ct = _t(CT.astype(np.float64), device, True)
    a = _t(CA, device, True)
    _ga, gct = minigan.grad(F.cosine_embedding_loss(a, _t(CB, device), ct), [a, ct],
                            allow_unused=True)
    assert gct is None or not _np(gct).any()


# ----------------------------------------------------------------------------- bad input

X43 = np.zeros((4, 3))


@pytest.mark.parametrize("call,error,message", [
    (lambda x: F.kl_div(x, X43, reduction="avg"), ValueError,
     "kl_div: reduction must be 'mean', 'batchmean', 'sum' or 'none', got 'avg'"),
    (lambda x: F.kl_div(x, X43, True), ValueError, "kl_div: size_average=True .* deprecated"),
    (lambda x: F.kl_div(x, np.zeros((2, 3)), reduction="sum"), ValueError,
     r"kl_div: shapes \(4, 3\) and \(2, 3\) cannot be broadcast"),
    (lambda x: F.soft_margin_loss(x, np.ones((2, 4, 3))), ValueError,
     (r"soft_margin_loss: target of shape \(2, 4, 3\) cannot be broadcast to the input shape "
      r"\(4, 3\)")),
    (lambda x: F.soft_margin_loss(x, X43, None, None, "avg"), ValueError,
     "soft_margin_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda x: F.hinge_embedding_loss(x, np.ones(2)), ValueError,
     r"hinge_embedding_loss: shapes \(4, 3\) and \(2,\) cannot be broadcast"),
    (lambda x: F.hinge_embedding_loss(x, X43, 1.0, None, False), ValueError,
     "hinge_embedding_loss: size_average=None and reduce=False .* deprecated"),
    (lambda x: F.margin_ranking_loss(x, x, np.ones(3)), ValueError,
     (r"margin_ranking_loss: all input tensors should have the same number of dimensions, got "
      r"sizes input1: \(4, 3\), input2: \(4, 3\), target: \(3,\)")),
    (lambda x: F.margin_ranking_loss(x, x[:2], X43), ValueError,
     r"margin_ranking_loss: shapes \(4, 3\) and \(2, 3\) and \(4, 3\) cannot be broadcast"),
    (lambda x: F.cosine_embedding_loss(x, x, np.ones((4, 1))), ValueError,
     (r"cosine_embedding_loss: 0D or 1D target tensor expected, multi-target not supported; "
      r"got a target of shape \(4, 1\)")),
    (lambda x: F.cosine_embedding_loss(x, x[0], np.ones(4)), ValueError,
     (r"cosine_embedding_loss: 1D target tensor expects 2D input tensors, but found inputs with "
      r"sizes \(4, 3\) and \(3,\)")),
    (lambda x: F.cosine_embedding_loss(x, x, np.ones(())), ValueError,
     "cosine_embedding_loss: 0D target tensor expects 1D input tensors"),
    (lambda x: F.cosine_embedding_loss(x, x, np.ones(3)), ValueError,
     r"cosine_embedding_loss: shapes .*\(3,\) cannot be broadcast"),
    (lambda x: F.gaussian_nll_loss(x, X43, np.ones((4, 2))), ValueError,
     r"gaussian_nll_loss: var is of incorrect size \(4, 2\) for input of shape \(4, 3\)"),
    (lambda x: F.gaussian_nll_loss(x, X43, np.ones(3)), ValueError,
     r"gaussian_nll_loss: var is of incorrect size \(3,\)"),
    (lambda x: F.gaussian_nll_loss(x, X43, np.ones((2, 4, 3))), ValueError,
     "gaussian_nll_loss: var is of incorrect size"),
    (lambda x: F.gaussian_nll_loss(x, X43, -0.5), ValueError,
     r"gaussian_nll_loss: var has negative entry/entries \(got -0.5\)"),
    (lambda x: F.gaussian_nll_loss(x, X43, np.ones((4, 3)), reduction="avg"), ValueError,
     "gaussian_nll_loss: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda x: F.poisson_nll_loss(x, X43, reduction="batchmean"), ValueError,
     "poisson_nll_loss: reduction must be 'mean', 'sum' or 'none', got 'batchmean'"),
    (lambda x: F.poisson_nll_loss(x, X43, True, False, True), ValueError,
     "poisson_nll_loss: size_average=True .* deprecated"),
    (lambda x: F.multilabel_soft_margin_loss(x[0, 0], X43[0, 0]), ValueError,
     "multilabel_soft_margin_loss: input must have a class dimension, got a 0-D tensor"),
    (lambda x: F.multilabel_soft_margin_loss(x, X43, reduction="avg"), ValueError,
     "got 'avg'"),
    (lambda x: F.multi_margin_loss(x, np.zeros(4, np.int64), p=3), ValueError,
     "multi_margin_loss: only p == 1 and p == 2 supported, got p=3"),
    (lambda x: F.multi_margin_loss(x, np.zeros(4, np.int64), weight=np.ones((1, 3))),
     ValueError, r"multi_margin_loss: weight must be one-dimensional, got shape \(1, 3\)"),
    (lambda x: F.multi_margin_loss(x, np.zeros(4, np.int64), weight=np.ones(4)), ValueError,
     r"multi_margin_loss: inconsistent weight size, expected 3 but got \(4,\)"),
    (lambda x: F.multi_margin_loss(x[None], np.zeros(4, np.int64)), ValueError,
     r"expected a non-empty vector or matrix .* got shape \(1, 4, 3\)"),
    (lambda x: F.multi_margin_loss(x[:, :0], np.zeros(4, np.int64)), ValueError,
     r"expected a non-empty vector or matrix .* got shape \(4, 0\)"),
    (lambda x: F.multi_margin_loss(x, np.zeros(4)), TypeError,
     "multi_margin_loss: target must hold integer class indices, got dtype float64"),
    (lambda x: F.multi_margin_loss(x, np.zeros(2, np.int64)), ValueError,
     (r"multi_margin_loss: target should be 0-D or 1-D with size equal to the number of input "
      r"samples \(4\), got shape \(2,\) for input of shape \(4, 3\)")),
    (lambda x: F.multi_margin_loss(x, np.zeros((1, 4), np.int64)), ValueError,
     r"got shape \(1, 4\)"),
    (lambda x: F.multi_margin_loss(x, np.array([0, 1, 3, 0])), IndexError,
     "multi_margin_loss: target 3 is out of range for 3 classes"),
    (lambda x: F.multi_margin_loss(x, np.array([0, -1, 2, 0])), IndexError,
     "multi_margin_loss: target -1 is out of range"),
    (lambda x: F.triplet_margin_loss(x, x, x, 0), ValueError,
     "triplet_margin_loss: margin must be greater than 0, got 0"),
    (lambda x: F.triplet_margin_loss(x, x[0], x), ValueError,
     ("triplet_margin_loss: the anchor, positive, and negative tensors are expected to have the "
      "same number of dimensions, but got: anchor 2D, positive 1D, and negative 2D inputs")),
    (lambda x: F.triplet_margin_loss(x, x, x, reduction="avg"), ValueError, "got 'avg'"),
])
def test_bad_input_is_refused_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call(minigan.tensor(X))


def test_negative_variances_are_refused_on_the_cpu():
    v = VAR.copy()
    v[2, 1] = -0.25
    with pytest.raises(ValueError, match=r"var has negative entry/entries \(e.g. -0.25\)"):
        F.gaussian_nll_loss(minigan.tensor(X), minigan.tensor(X2), minigan.tensor(v))


@pytest.mark.gpu
def test_the_gpu_checks_nothing_that_needs_a_host_read(cuda):
    """On the GPU the value checks (negative variances, target ranges) would each cost a sync:
    they are skipped, with the behaviour the docstrings state."""
    device = "cuda"
    v = VAR.copy()
    v[2, 1] = -0.25  # clamped at eps like any variance below it
    y = F.gaussian_nll_loss(_t(X, device), _t(X2, device), _t(v, device), reduction="none")
    np.testing.assert_allclose(_np(y), gauss_np(X, X2, v), rtol=1e-13)
    y = F.multi_margin_loss(_t(MX, device), _t(np.array([0, 3, 7, 1]), device),
                            reduction="none")  # 7 picks no class: x[y] counts as 0
    want = multi_margin_np(MX, MT)
    want[2] = np.maximum(1 + MX[2], 0).sum() / 5
    np.testing.assert_allclose(_np(y), want, rtol=1e-13)


def test_inputs_on_two_devices_are_refused(emulated_gpu):
    x = _t(X, "cuda")
    for call in (lambda: F.kl_div(x, PROB, reduction="sum"),
                 lambda: F.soft_margin_loss(x, SIGN_F),
                 lambda: F.hinge_embedding_loss(x, SIGN_F),
                 lambda: F.margin_ranking_loss(x, _t(X2), _t(SIGN_F, "cuda")),
                 lambda: F.cosine_embedding_loss(x, x, CT),
                 lambda: F.gaussian_nll_loss(x, _t(X2, "cuda"), VAR),
                 lambda: F.poisson_nll_loss(x, COUNTS),
                 lambda: F.multilabel_soft_margin_loss(x, _t(LABELS01, "cuda"), np.ones(3)),
                 lambda: F.multi_margin_loss(x, np.zeros(4, np.int64)),
                 lambda: F.triplet_margin_loss(x, x, _t(X2))):
        with pytest.raises(backend.DeviceError, match="cpu and cuda|cuda and cpu"):
            call()


def test_the_losses_never_wait_for_the_gpu(emulated_gpu):
    """Forward, backward and double backward of every loss queue their work: no host read."""
    from tests.kernels.emulated_cupy import LOG
    LOG.clear()
    for name, fn, _, inputs in CASES:
        xs = [_t(a, "cuda", grad=np.asarray(a).dtype.kind == "f") for a in inputs]
        y = fn(*xs)
        leaves = [x for x in xs if x.requires_grad]
        grads = minigan.grad(y.sum(), leaves, create_graph=True)
        total = sum((g * g).sum() for g in grads)
        if total.requires_grad:  # (piecewise-linear losses have constant gradients)
            minigan.grad(total, leaves, allow_unused=True)
        assert sum(LOG.syncs.values()) == 0, (name, dict(LOG.syncs))


# ----------------------------------------------------------------------------- against torch

def _torch_args(torch, args, grads):
    return [torch.tensor(a, requires_grad=bool(g)) if isinstance(a, np.ndarray) else a
            for a, g in zip(args, grads)]


def _mine_args(args, grads):
    return [minigan.tensor(a, requires_grad=bool(g)) if isinstance(a, np.ndarray) else a
            for a, g in zip(args, grads)]


def _kw(kwargs, wrap):
    return {k: wrap(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


# name, positional arguments, keyword arguments, which arguments torch differentiates
TORCH_CASES = [
    ("kl_div", (X, PROB), {}, (1, 1)),
    ("kl_div", (X, X2), {"log_target": True}, (1, 1)),
    ("kl_div", (X, PROB[:1]), {}, (1, 1)),
    ("kl_div", (X, PROB), {"reduction": "batchmean"}, (1, 1)),
    ("kl_div", (X, X2), {"reduction": "batchmean", "log_target": True}, (1, 1)),
    ("kl_div", (np.array([0.3, 0.2, -0.1]), np.array([0.0, -0.5, 0.4])), {}, (1, 1)),
    ("soft_margin_loss", (X, SIGN_F), {}, (1, 0)),
    ("soft_margin_loss", (X * 30, SIGN_F[:1]), {}, (1, 0)),
    ("hinge_embedding_loss", (X, SIGN_F), {}, (1, 0)),
    ("hinge_embedding_loss", (X, ODD_T.astype(float)), {"margin": 0.5}, (1, 0)),
    ("hinge_embedding_loss", (X, SIGN_F[0]), {"margin": -0.3}, (1, 0)),
    ("hinge_embedding_loss", (np.array([1.0, 0.5, 0.3]), np.array([-1.0, -1.0, 1.0])), {},
     (1, 0)),
    ("margin_ranking_loss", (X, X2, SIGN_F), {}, (1, 1, 1)),
    ("margin_ranking_loss", (X, X2[:1], SIGN_F[:, :1]), {"margin": 0.3}, (1, 1, 1)),
    ("margin_ranking_loss", (np.array([1.0, 0.5]), np.array([0.5, 1.0]), np.array([1.0, -1.0])),
     {"margin": 0.5}, (1, 1, 1)),  # (at the kink)
    ("cosine_embedding_loss", (CA, CB, CT.astype(float)), {"margin": -0.2}, (1, 1, 0)),
    ("cosine_embedding_loss", (CA, CB[:1], np.array([1, -1, 0, 2])), {}, (1, 1, 0)),
    ("cosine_embedding_loss", (CA[0], CB[0], np.array(-1.0)), {"margin": -0.5}, (1, 1, 0)),
    ("cosine_embedding_loss", (np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]]),
                               np.array([-1.0])), {"margin": 1 / math.sqrt(2)}, (1, 1, 0)),
    ("cosine_embedding_loss", (np.array([[0.0, 0.0], [1.0, 2.0]]), CB[:2, :2],
                               np.array([1.0, -1.0])), {}, (0, 1, 0)),
    ("gaussian_nll_loss", (X, X2, VAR), {"full": True}, (1, 1, 1)),
    ("gaussian_nll_loss", (X, X2, VAR[:, 0]), {"eps": 0.6}, (1, 1, 1)),
    ("gaussian_nll_loss", (X, X2, VAR[:1]), {}, (1, 1, 1)),
    ("gaussian_nll_loss", (X, X2[0], VAR[:, :1]), {}, (1, 1, 1)),
    ("gaussian_nll_loss", (X, X2, 0.7), {}, (1, 1, 0)),
    ("gaussian_nll_loss", (np.array([0.3, 0.2]), np.array([0.0, 0.5]), np.array([0.0, 0.5])),
     {"eps": 1e-3}, (1, 1, 1)),
    ("poisson_nll_loss", (X, COUNTS), {}, (1, 1)),
    ("poisson_nll_loss", (X, COUNTS), {"full": True}, (1, 1)),
    ("poisson_nll_loss", (RATE, COUNTS[:1]), {"log_input": False, "eps": 0.01}, (1, 1)),
    ("poisson_nll_loss", (RATE, COUNTS), {"log_input": False, "full": True}, (1, 1)),
    ("poisson_nll_loss", (np.array([0.3, 0.2, -0.1, 0.5, 0.4]),
                          np.array([0.0, 0.5, 1.0, 2.5, -2.0])), {"full": True}, (1, 1)),
    ("multilabel_soft_margin_loss", (X * 3, LABELS01), {}, (1, 1)),
    ("multilabel_soft_margin_loss", (X, LABELS01), {"weight": VAR[0]}, (1, 1)),
    ("multilabel_soft_margin_loss", (X, LABELS01), {"weight": VAR[:, :1]}, (1, 1)),
    ("multilabel_soft_margin_loss", (X[0], LABELS01), {}, (1, 1)),
    ("multilabel_soft_margin_loss", (X[0], LABELS01[0]), {}, (1, 1)),
    ("multi_margin_loss", (MX, MT), {}, (1, 0)),
    ("multi_margin_loss", (MX, MT), {"p": 2, "margin": 0.6, "weight": MW}, (1, 0)),
    ("multi_margin_loss", (MX[1], np.array(3)), {"weight": MW}, (1, 0)),
    ("multi_margin_loss", (MX[1], np.array([3])), {"p": 2}, (1, 0)),
    ("multi_margin_loss", (MX[:1], np.array(3)), {}, (1, 0)),
    ("multi_margin_loss", (np.array(1.5), np.array(0)), {}, (1, 0)),
    ("multi_margin_loss", (np.array([[1.0, 0.0, 0.5], [0.2, 0.3, 0.1]]), np.array([0, 2])), {},
     (1, 0)),
    ("triplet_margin_loss", (ANC, POS, NEG), {"margin": 0.8}, (1, 1, 1)),
    ("triplet_margin_loss", (ANC, POS, NEG), {"margin": 0.8, "p": 1.5, "eps": 1e-3,
                                              "swap": True}, (1, 1, 1)),
    ("triplet_margin_loss", (ANC, POS[:1], NEG), {"p": 1, "swap": True}, (1, 1, 1)),
    ("triplet_margin_loss", (ANC[0], POS[0], NEG[0]), {"swap": True}, (1, 1, 1)),
    ("triplet_margin_loss", (ANC[0, 0], POS[0, 0], NEG[0, 0]), {"margin": 3.0}, (1, 1, 1)),
    ("triplet_margin_loss", (np.array([[0.0, 0.0]]), np.array([[2.0, 0.0]]),
                             np.array([[1.0, 5.0]])), {"margin": 9.0, "eps": 0.0,
                                                       "swap": True}, (1, 1, 1)),
]


def _torch_ids():
    return [f"{c[0]}-{i}" for i, c in enumerate(TORCH_CASES)]


def _reductions(name, kwargs):
    if "reduction" in kwargs:
        return [kwargs["reduction"]]
    return REDUCTIONS + (["batchmean"] if name == "kl_div" else [])


@pytest.mark.parametrize("name,args,kwargs,grads", TORCH_CASES, ids=_torch_ids())
def test_matches_torch_values_and_gradients(name, args, kwargs, grads):
    torch = pytest.importorskip("torch")
    args = [np.asarray(a) if isinstance(a, (np.ndarray, np.generic)) else a for a in args]
    for reduction in _reductions(name, kwargs):
        kw = dict(kwargs, reduction=reduction)
        mine, theirs = _mine_args(args, grads), _torch_args(torch, args, grads)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            out = getattr(F, name)(*mine, **_kw(kw, minigan.tensor))
            tout = getattr(torch.nn.functional, name)(*theirs, **_kw(kw, torch.tensor))
        assert out.shape == tuple(tout.shape), reduction
        np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=reduction)
        g = np.random.default_rng(1).standard_normal(out.shape)
        leaves = [m for m, w in zip(mine, grads) if w]
        tleaves = [t for t, w in zip(theirs, grads) if w]
        got = minigan.grad(out, leaves, minigan.tensor(g))
        want = torch.autograd.grad(tout, tleaves, torch.tensor(g))
        for i, (a, b) in enumerate(zip(got, want)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{reduction}: gradient {i}")


# name, arguments, keyword arguments, the argument differentiated twice (the others held)
SECOND_ORDER = [
    ("kl_div", (X, PROB), {"reduction": "batchmean"}, 1),
    ("kl_div", (X, X2), {"reduction": "sum", "log_target": True}, 1),
    ("soft_margin_loss", (X, SIGN_F), {}, 0),
    ("cosine_embedding_loss", (CA, CB, CT.astype(float)), {"margin": -0.2}, 0),
    ("cosine_embedding_loss", (CA, CB, CT.astype(float)), {"margin": -0.2}, 1),
    ("gaussian_nll_loss", (X, X2, VAR), {"full": True}, 0),
    ("gaussian_nll_loss", (X, X2, VAR), {"reduction": "none"}, 2),
    ("gaussian_nll_loss", (np.array([0.3, 0.2]), np.array([0.0, 0.5]), np.array([0.0, 0.5])),
     {"eps": 1e-3}, 2),
    ("poisson_nll_loss", (X, COUNTS), {"full": True}, 0),
    ("poisson_nll_loss", (X, COUNTS_POS), {"full": True}, 1),
    ("poisson_nll_loss", (RATE, COUNTS), {"log_input": False, "reduction": "sum"}, 0),
    ("multilabel_soft_margin_loss", (X, LABELS01), {"weight": VAR[0]}, 0),
    ("triplet_margin_loss", (ANC, POS, NEG), {"margin": 0.8, "p": 1.5, "swap": True}, 0),
    ("triplet_margin_loss", (ANC, POS, NEG), {"margin": 0.8, "swap": True}, 2),
]


@pytest.mark.parametrize("name,args,kwargs,wrt", SECOND_ORDER,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(SECOND_ORDER)])
def test_second_order_matches_torch(name, args, kwargs, wrt):
    """A Hessian-vector product with respect to one argument (torch has no double backward
    for multi_margin_loss; the piecewise-linear losses have none to compare)."""
    torch = pytest.importorskip("torch")
    v = np.random.default_rng(5).standard_normal(args[wrt].shape)

    def hvp(lib, grad, wrap, leaf):
        xs = [leaf(a) if i == wrt else wrap(a) for i, a in enumerate(args)]
        y = getattr(lib, name)(*xs, **_kw(kwargs, wrap))
        g = np.random.default_rng(6).standard_normal(tuple(y.shape))
        (gx,) = grad(y, [xs[wrt]], wrap(g), create_graph=True)
        return grad((gx * wrap(v)).sum(), [xs[wrt]])[0]

    got = hvp(F, minigan.grad, minigan.tensor, lambda a: minigan.tensor(a, requires_grad=True))
    want = hvp(torch.nn.functional, torch.autograd.grad, torch.tensor,
               lambda a: torch.tensor(a, requires_grad=True))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)


def test_soft_margin_loss_where_torch_overflows():
    """The one value difference: torch's log1p(exp(-t x)) is inf past -t x = 709 in float64
    (88 in float32); this is finite."""
    torch = pytest.importorskip("torch")
    x = np.array([-1000.0, 100.0])
    want = torch.nn.functional.soft_margin_loss(torch.tensor(x), torch.ones(2, dtype=torch.float64),
                                                reduction="none").numpy()
    got = F.soft_margin_loss(minigan.tensor(x), np.ones(2), reduction="none").numpy()
    assert np.isinf(want[0]) and got[0] == 1000.0
    assert got[1] == want[1]


def test_kl_div_warning_matches_torchs():
    torch = pytest.importorskip("torch")
    with pytest.warns(UserWarning) as theirs:
        torch.nn.functional.kl_div(torch.zeros(2), torch.ones(2))
    with pytest.warns(UserWarning) as mine:
        F.kl_div(minigan.zeros(2), minigan.ones(2))
    head = "reduction: 'mean' divides the total loss by both the batch size and the support size"
    assert str(theirs[0].message).startswith(head) and str(mine[0].message).startswith(head)
