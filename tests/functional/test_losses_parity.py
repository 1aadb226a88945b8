"""Losses: PyTorch's signatures and semantics.

Each loss is checked three ways: against a NumPy formula written here (no torch needed), by
first- and second-order gradient checks in float64 against finite differences, and, where
torch is installed, against ``torch.nn.functional`` on the same inputs.
"""
import inspect

import numpy as np
import pytest

import minigan
import minigan.nn as nn
import minigan.nn.functional as F
from minigan import backend
from minigan.testing import check_backward, check_double_backward

R = np.random.default_rng(7)


def _t(a, device="cpu"):
    return minigan.Tensor(backend.to_device(np.asarray(a), device))


def log_softmax_np(x, axis):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


def softplus_np(x):
    return np.logaddexp(0, x)


PROBS = R.uniform(0.05, 0.95, (4, 3))
TARGET01 = R.uniform(0, 1, (4, 3))
LOGITS = R.standard_normal((4, 3)) * 2
W43 = R.uniform(0.5, 2.0, (4, 3))
W3 = R.uniform(0.5, 2.0, 3)
CE_X = R.standard_normal((5, 4))
CE_T = np.array([0, 3, 1, 3, 2])
CE_T_IGN = np.array([0, -100, 1, 3, -100])
CE_W = np.array([0.5, 1.0, 2.0, 2.5])  # sum of w[t] differs from the count of targets
CE_X4 = R.standard_normal((2, 3, 2, 2))
CE_T4 = R.integers(0, 3, (2, 2, 2))
PROB_T = np.exp(log_softmax_np(R.standard_normal((5, 4)), 1))
# Huber/smooth-L1 differences with |d| away from the switch at delta (no kink straddled)
HX = np.array([[0.1, -0.3, 2.0], [-1.7, 0.6, 3.1]])
HT = np.array([[0.4, 0.25, -0.2], [0.1, -0.05, 1.5]])


def bce_np(x, t, w=1.0):
    return -w * (t * np.maximum(np.log(x), -100) + (1 - t) * np.maximum(np.log1p(-x), -100))


def huber_np(d, delta):
    a = np.abs(d)
    return np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))


def nll_np(logp, t, w=None, ignore=-100, reduction="mean"):
    """Per-sample -w[t] logp[t] for (N, C); ignored targets give 0 and weigh 0."""
    n, c = logp.shape
    w = np.ones(c) if w is None else w
    valid = t != ignore
    ts = np.where(valid, t, 0)
    per = np.where(valid, -w[ts] * logp[np.arange(n), ts], 0.0)
    wsum = np.where(valid, w[ts], 0.0).sum()
    return {"none": per, "sum": per.sum(), "mean": per.sum() / wsum}[reduction], wsum


def ce_smooth_np(x, t, eps, w=None, ignore=-100, reduction="mean"):
    logp = log_softmax_np(x, 1)
    c = x.shape[1]
    nll, wsum = nll_np(logp, t, w, ignore, "none")
    valid = t != ignore
    wc = np.ones(c) if w is None else w
    smooth = np.where(valid, -(logp * wc).sum(1), 0.0)
    per = (1 - eps) * nll + eps / c * smooth
    return {"none": per, "sum": per.sum(), "mean": per.sum() / wsum}[reduction]


# name, function of tensors, NumPy formula, inputs (float inputs are differentiated)
CASES = [
    ("bce", lambda x, t: F.binary_cross_entropy(x, t), lambda x, t: bce_np(x, t).mean(),
     [PROBS, TARGET01]),
    ("bce_weight_sum", lambda x, t, w: F.binary_cross_entropy(x, t, w, reduction="sum"),
     lambda x, t, w: bce_np(x, t, w).sum(), [PROBS, TARGET01, W3]),
    ("bce_none", lambda x, t: F.binary_cross_entropy(x, t, reduction="none"), bce_np,
     [PROBS, TARGET01]),
    ("bce_logits_weight_sum",
     lambda x, t, w: F.binary_cross_entropy_with_logits(x, t, w, reduction="sum"),
     lambda x, t, w: ((softplus_np(x) - x * t) * w).sum(), [LOGITS, TARGET01, W43]),
    ("bce_logits_pos_weight",
     lambda x, t, p: F.binary_cross_entropy_with_logits(x, t, pos_weight=p),
     lambda x, t, p: (p * t * softplus_np(-x) + (1 - t) * softplus_np(x)).mean(),
     [LOGITS, TARGET01, W3]),
    ("mse", lambda x, t: F.mse_loss(x, t), lambda x, t: ((x - t) ** 2).mean(),
     [LOGITS, TARGET01]),
    ("mse_weight", lambda x, t, w: F.mse_loss(x, t, weight=w),
     lambda x, t, w: ((x - t) ** 2 * w).sum() / w.sum(), [LOGITS, TARGET01, W43]),
    ("l1", lambda x, t: F.l1_loss(x, t, reduction="sum"), lambda x, t: np.abs(x - t).sum(),
     [HX, HT]),
    ("l1_weight", lambda x, t, w: F.l1_loss(x, t, weight=w),
     lambda x, t, w: (np.abs(x - t) * w).sum() / w.sum(), [HX, HT, W43[:2]]),
    ("huber", lambda x, t: F.huber_loss(x, t, delta=1.0), lambda x, t: huber_np(x - t, 1.0).mean(),
     [HX, HT]),
    ("huber_delta_weight", lambda x, t, w: F.huber_loss(x, t, "none", 0.5, w),
     lambda x, t, w: huber_np(x - t, 0.5) * w, [HX, HT, W43[:2]]),
    ("huber_weight_mean", lambda x, t, w: F.huber_loss(x, t, weight=w),
     lambda x, t, w: (huber_np(x - t, 1.0) * w).mean(), [HX, HT, W43[:2]]),  # not / sum(w)
    ("smooth_l1_beta", lambda x, t: F.smooth_l1_loss(x, t, beta=0.7),
     lambda x, t: (huber_np(x - t, 0.7) / 0.7).mean(), [HX, HT]),
    ("smooth_l1_beta0", lambda x, t: F.smooth_l1_loss(x, t, beta=0.0),
     lambda x, t: np.abs(x - t).mean(), [HX, HT]),
    ("nll", lambda x, t: F.nll_loss(x, t), lambda x, t: nll_np(x, t)[0], [CE_X, CE_T]),
    ("nll_weight_ignore", lambda x, t, w: F.nll_loss(x, t, w),
     lambda x, t, w: nll_np(x, t, w)[0], [CE_X, CE_T_IGN, CE_W]),
    ("cross_entropy", lambda x, t: F.cross_entropy(x, t),
     lambda x, t: nll_np(log_softmax_np(x, 1), t)[0], [CE_X, CE_T]),
    ("cross_entropy_weight_ignore_sum",
     lambda x, t: F.cross_entropy(x, t, _t(CE_W, x.device), ignore_index=3, reduction="sum"),
     lambda x, t: nll_np(log_softmax_np(x, 1), t, CE_W, 3, "sum")[0], [CE_X, CE_T]),
    ("cross_entropy_smoothing",
     lambda x, t: F.cross_entropy(x, t, label_smoothing=0.2),
     lambda x, t: ce_smooth_np(x, t, 0.2), [CE_X, CE_T_IGN]),
    ("cross_entropy_smoothing_weight_none",
     lambda x, t: F.cross_entropy(x, t, _t(CE_W, x.device), reduction="none",
                                  label_smoothing=0.3),
     lambda x, t: ce_smooth_np(x, t, 0.3, CE_W, reduction="none"), [CE_X, CE_T_IGN]),
    ("cross_entropy_4d",
     lambda x, t: F.cross_entropy(x, t),
     lambda x, t: nll_np(log_softmax_np(x.transpose(0, 2, 3, 1).reshape(-1, 3), 1),
                         t.reshape(-1))[0], [CE_X4, CE_T4]),
    ("cross_entropy_probs",
     lambda x, p: F.cross_entropy(x, p, label_smoothing=0.1),
     lambda x, p: -(log_softmax_np(x, 1) * (p * 0.9 + 0.1 / 4)).sum(1).mean(), [CE_X, PROB_T]),
    ("cross_entropy_1d", lambda x, t: F.cross_entropy(x, t),
     lambda x, t: -log_softmax_np(x[None], 1)[0, t], [CE_X[0], np.array(2)]),
]
IDS = [c[0] for c in CASES]


def _inputs(device, arrays):
    return [backend.to_device(np.asarray(a), device) for a in arrays]


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=IDS)
def test_forward_matches_formula(name, fn, ref, inputs, device):
    y = fn(*[minigan.Tensor(a) for a in _inputs(device, inputs)])
    np.testing.assert_allclose(y.numpy(), ref(*inputs), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=IDS)
def test_first_order_gradients(name, fn, ref, inputs, device):
    check_backward(fn, _inputs(device, inputs), mode="jacobian")


@pytest.mark.parametrize("name,fn,ref,inputs", CASES, ids=IDS)
def test_second_order_gradients(name, fn, ref, inputs, device):
    check_double_backward(fn, _inputs(device, inputs))


def test_bce_clamps_logs_at_minus_100_and_uses_torchs_input_gradient():
    x = minigan.tensor(np.array([0.0, 1.0, 1e-13, 0.5]), requires_grad=True)
    t = minigan.tensor(np.array([1.0, 0.0, 1.0, 0.3]))
    loss = F.binary_cross_entropy(x, t, reduction="none")
    np.testing.assert_allclose(loss.numpy()[:2], [100.0, 100.0])
    loss.sum().backward()
    # (x - t) / max(x (1 - x), eps): the denominator is clamped near 0 and 1, at PyTorch's
    # eps, the float32 number nearest 1e-12
    eps = float(np.float32(1e-12))
    np.testing.assert_allclose(x.grad.numpy(), [-1 / eps, 1 / eps, (1e-13 - 1) / eps, 0.8],
                               rtol=1e-13)


def test_cpu_range_checks_name_the_value():
    with pytest.raises(ValueError, match="input should be between 0 and 1, got 1.5"):
        F.binary_cross_entropy(minigan.tensor([1.5, 0.2]), minigan.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="target should be between 0 and 1, got -0.5"):
        F.binary_cross_entropy(minigan.tensor([0.5, 0.2]), minigan.tensor([-0.5, 0.0]))
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        F.cross_entropy(minigan.tensor(CE_X), np.array([0, 4, 1, 1, 1]))
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        F.nll_loss(minigan.tensor(CE_X), np.array([0, -1, 1, 1, 1]))


def test_shape_errors_name_the_shapes():
    x = minigan.tensor(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"Target size \(4, 1\) must be the same as input size "
                                         r"\(4, 3\)"):
        F.binary_cross_entropy_with_logits(x, np.zeros((4, 1)))
    with pytest.raises(ValueError, match=r"target size \(4, 1\) that is different to the input "
                                         r"size \(4, 3\)"):
        F.binary_cross_entropy(x + 0.5, np.zeros((4, 1)))
    for kw in ({"weight": np.ones((2, 4, 3))}, {"weight": np.ones(5)},
               {"pos_weight": np.ones(5)}, {"pos_weight": np.ones((2, 4, 3))}):
        name = next(iter(kw))
        with pytest.raises(ValueError, match=rf"{name} of shape .* cannot be broadcast to the "
                                             r"input shape \(4, 3\)"):
            F.binary_cross_entropy_with_logits(x, np.zeros((4, 3)), **kw)
    # pos_weight per row broadcasts, as in PyTorch
    F.binary_cross_entropy_with_logits(x, np.zeros((4, 3)), pos_weight=np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"weights of shape \(3,\) and input of shape \(4, 3\)"):
        F.mse_loss(x, np.zeros((4, 3)), weight=np.ones(3))
    with pytest.raises(ValueError, match=r"batch_size \(5\) to match target batch_size \(2\)"):
        F.cross_entropy(minigan.tensor(CE_X), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"expected target size \(2, 2, 2\)"):
        F.cross_entropy(minigan.tensor(CE_X4), np.zeros((2, 3, 2), np.int64))
    with pytest.raises(ValueError, match=r"weight tensor should be defined either for all 4 "
                                         r"classes .* shape \(3,\)"):
        F.cross_entropy(minigan.tensor(CE_X), CE_T, np.ones(3))
    with pytest.raises(TypeError, match="integer class indices, got dtype float64"):
        F.nll_loss(minigan.tensor(CE_X), CE_T.astype(float))


def test_mse_warns_and_broadcasts_a_different_target_shape():
    with pytest.warns(UserWarning, match="different to the input size"):
        y = F.mse_loss(minigan.tensor(np.ones((4, 3))), np.zeros((4, 1)))
    assert y.item() == 1.0


def test_legacy_arguments_and_bad_reductions_are_refused_clearly():
    x, t = minigan.tensor(LOGITS), minigan.tensor(TARGET01)
    with pytest.raises(ValueError, match="size_average='sum'.*pass reduction= by keyword"):
        F.binary_cross_entropy_with_logits(x, t, None, "sum")
    for call in (lambda: F.mse_loss(x, t, False), lambda: F.l1_loss(x, t, None, True),
                 lambda: F.cross_entropy(x, CE_T[:4] % 3, None, True),
                 lambda: nn.MSELoss(size_average=False), lambda: nn.CrossEntropyLoss(reduce=False)):
        with pytest.raises(ValueError, match="use reduction|pass reduction"):
            call()
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.mse_loss(x, t, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0, got 1.5"):
        F.cross_entropy(minigan.tensor(CE_X), CE_T, label_smoothing=1.5)
    with pytest.raises(ValueError, match="ignore_index \\(1\\) is not supported for floating"):
        F.cross_entropy(minigan.tensor(CE_X), PROB_T, ignore_index=1)
    with pytest.raises(ValueError, match="negative values for beta, got -1"):
        F.smooth_l1_loss(x, t, beta=-1)
    with pytest.raises(ValueError, match="non-positive values for delta, got 0"):
        F.huber_loss(x, t, delta=0)


def test_every_target_ignored_gives_nan_like_torch():
    y = F.cross_entropy(minigan.tensor(CE_X), np.full(5, -100))
    assert np.isnan(y.item())
    assert F.cross_entropy(minigan.tensor(CE_X), np.full(5, -100), reduction="sum").item() == 0


@pytest.mark.parametrize("loss", [
    lambda x, t, d: F.cross_entropy(x, t),
    lambda x, t, d: F.cross_entropy(x, t, _t(CE_W, d), label_smoothing=0.2),
    lambda x, t, d: F.nll_loss(x, t),
    lambda x, t, d: F.nll_loss(x, t, _t(CE_W, d)),
], ids=["ce", "ce-weight-smoothing", "nll", "nll-weight"])
def test_every_target_ignored_has_a_zero_gradient_like_torch(device, loss):
    """The mean of nothing is NaN (as torch's), but torch's gradient is then 0, not NaN: a
    batch whose targets are all padding must not turn the weights into NaN. A batch with some
    ignored targets gets the usual mean, and its ignored rows no gradient."""
    x = minigan.Tensor(backend.to_device(CE_X, device), requires_grad=True)
    t = backend.to_device(np.full(5, -100), device)
    y = loss(x, t, device)
    y.backward()
    assert np.isnan(y.item())
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros_like(CE_X))
    x.grad = None
    t = backend.to_device(np.array([0, -100, 1, -100, 2]), device)
    loss(x, t, device).backward()
    g = x.grad.numpy()
    np.testing.assert_array_equal(g[[1, 3]], 0.0)
    kept = minigan.Tensor(backend.to_device(CE_X[[0, 2, 4]], device), requires_grad=True)
    loss(kept, backend.to_device(np.array([0, 1, 2]), device), device).backward()
    np.testing.assert_allclose(g[[0, 2, 4]], kept.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert np.abs(g).max() > 0


def test_float32_in_float32_out():
    x = minigan.tensor(CE_X.astype(np.float32))
    assert F.cross_entropy(x, CE_T).dtype == np.float32
    assert F.nll_loss(x, CE_T, np.ones(4, np.float32)).dtype == np.float32
    p = minigan.tensor(PROBS.astype(np.float32))
    assert F.binary_cross_entropy(p, p).dtype == np.float32


def test_loss_modules_match_the_functions_and_keep_weights_as_buffers():
    x, t = minigan.tensor(LOGITS), minigan.tensor(TARGET01)
    m = nn.BCEWithLogitsLoss(weight=minigan.tensor(W43), pos_weight=minigan.tensor(W3),
                             reduction="sum")
    expected = F.binary_cross_entropy_with_logits(x, t, W43, reduction="sum", pos_weight=W3)
    assert m(x, t).item() == expected.item()
    assert list(m.state_dict()) == ["weight", "pos_weight"]
    assert list(nn.BCELoss().state_dict()) == []
    ce = nn.CrossEntropyLoss(minigan.tensor(CE_W), None, 3, None, "none", 0.1)
    np.testing.assert_array_equal(
        ce(minigan.tensor(CE_X), CE_T).numpy(),
        F.cross_entropy(minigan.tensor(CE_X), CE_T, CE_W, ignore_index=3, reduction="none",
                        label_smoothing=0.1).numpy())
    assert list(ce.state_dict()) == ["weight"]
    nll = nn.NLLLoss(ignore_index=0)
    assert nll(minigan.tensor(CE_X), CE_T).item() == F.nll_loss(minigan.tensor(CE_X), CE_T,
                                                               ignore_index=0).item()
    assert nn.MSELoss("sum" if False else None, None, "sum")(x, t).item() == \
        F.mse_loss(x, t, reduction="sum").item()
    assert nn.L1Loss(reduction="none")(x, t).shape == (4, 3)
    assert nn.HuberLoss("sum", 0.5)(x, t).item() == F.huber_loss(x, t, "sum", 0.5).item()
    assert nn.SmoothL1Loss(beta=0.5)(x, t).item() == F.smooth_l1_loss(x, t, beta=0.5).item()
    assert nn.BCELoss()(minigan.tensor(PROBS), t).item() == \
        F.binary_cross_entropy(minigan.tensor(PROBS), t).item()
    with pytest.raises(ValueError, match="got 'avg'"):
        nn.BCELoss(reduction="avg")


# ----------------------------------------------------------------------------- torch parity

TORCH_CASES = [
    ("binary_cross_entropy", (PROBS, TARGET01), {"weight": W3}),
    ("binary_cross_entropy", (np.array([0.0, 1.0, 0.5, 1.0]), np.array([1.0, 0.0, 0.3, 1.0])),
     {"reduction": "none"}),
    ("binary_cross_entropy_with_logits", (LOGITS * 200, TARGET01),
     {"pos_weight": W3, "weight": W43, "reduction": "sum"}),
    ("mse_loss", (LOGITS, TARGET01), {"weight": W43}),
    ("l1_loss", (HX, HT), {"weight": W43[:2]}),
    ("huber_loss", (HX, HT), {"delta": 0.5, "weight": W43[:2]}),
    ("smooth_l1_loss", (HX, HT), {"beta": 0.7}),
    ("nll_loss", (CE_X, CE_T_IGN), {"weight": CE_W}),
    ("nll_loss", (CE_X4, CE_T4), {"reduction": "none", "ignore_index": 1}),
    ("cross_entropy", (CE_X, CE_T_IGN), {"weight": CE_W, "label_smoothing": 0.2}),
    ("cross_entropy", (CE_X4, CE_T4), {"weight": CE_W[:3], "ignore_index": 0,
                                       "label_smoothing": 0.1}),
    ("cross_entropy", (CE_X4, CE_T4), {"reduction": "sum", "label_smoothing": 0.3}),
    ("cross_entropy", (CE_X, PROB_T), {"weight": CE_W, "label_smoothing": 0.25}),
    ("cross_entropy", (CE_X[0], np.array(3)), {}),
]


@pytest.mark.parametrize("name,args,kwargs", TORCH_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TORCH_CASES)])
def test_matches_torch_value_and_gradients(name, args, kwargs):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    x = minigan.tensor(args[0], requires_grad=True)
    t_is_float = args[1].dtype.kind == "f"
    t = minigan.tensor(args[1], requires_grad=t_is_float)
    out = getattr(F, name)(x, t, **{k: (minigan.tensor(v) if isinstance(v, np.ndarray) else v)
                                    for k, v in kwargs.items()})
    tx = torch.tensor(args[0], requires_grad=True)
    tt = torch.tensor(args[1], requires_grad=t_is_float)
    tout = getattr(tF, name)(tx, tt, **{k: (torch.tensor(v) if isinstance(v, np.ndarray) else v)
                                        for k, v in kwargs.items()})
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(minigan.tensor(g) if out.ndim else None)
    tout.backward(torch.tensor(g) if tout.ndim else None)
    finite = np.isfinite(tx.grad.numpy())
    np.testing.assert_allclose(x.grad.numpy()[finite], tx.grad.numpy()[finite], rtol=1e-10,
                               atol=1e-12)
    if t_is_float and name != "binary_cross_entropy":  # torch's BCE target grad is inf at 0/1
        np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "cross_entropy", "huber_loss"])
def test_second_order_matches_torch(name):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    if name == "binary_cross_entropy":
        xa, ta, kw = PROBS, TARGET01, {}
    elif name == "cross_entropy":
        xa, ta, kw = CE_X, CE_T_IGN, {"weight": CE_W, "label_smoothing": 0.2}
    else:
        xa, ta, kw = HX, HT, {"delta": 0.5}
    v = rng.standard_normal(xa.shape)
    x = minigan.tensor(xa, requires_grad=True)
    (gx,) = minigan.grad(getattr(F, name)(x, minigan.tensor(ta), **{
        k: minigan.tensor(a) if isinstance(a, np.ndarray) else a for k, a in kw.items()}), x,
        create_graph=True)
    (gx * minigan.tensor(v)).sum().backward()
    tx = torch.tensor(xa, requires_grad=True)
    (tgx,) = torch.autograd.grad(getattr(torch.nn.functional, name)(tx, torch.tensor(ta), **{
        k: torch.tensor(a) if isinstance(a, np.ndarray) else a for k, a in kw.items()}), tx,
        create_graph=True)
    (tgx * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_signatures_match_torch():
    torch = pytest.importorskip("torch")
    for name in ("binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss",
                 "l1_loss", "nll_loss", "cross_entropy", "huber_loss", "smooth_l1_loss"):
        ours = list(inspect.signature(getattr(F, name)).parameters)
        theirs = list(inspect.signature(getattr(torch.nn.functional, name)).parameters)
        assert ours == theirs, name
    for name in ("BCELoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss", "CrossEntropyLoss",
                 "NLLLoss", "HuberLoss", "SmoothL1Loss"):
        ours = inspect.signature(getattr(nn, name).__init__).parameters
        theirs = inspect.signature(getattr(torch.nn, name).__init__).parameters
        assert list(ours) == list(theirs), name
        assert [p.default for p in ours.values()][1:] == \
            [p.default for p in theirs.values()][1:], name


def test_a_class_masked_with_minus_inf_adds_nothing(device):
    """Masking logits with -inf (a class ruled out) is common: the loss is the one without that
    class, finite, not 0 * -inf = NaN (torch's too); nll_loss likewise for -inf
    log-probabilities of classes that are not the target."""
    inf = np.inf
    x = np.array([[0.0, -inf, 1.0], [2.0, 1.0, -inf]])
    kept = np.array([[0.0, 1.0], [2.0, 1.0]])  # the same rows without the masked classes
    t = backend.to_device(np.array([0, 1]), device)
    a = minigan.Tensor(backend.to_device(x, device), requires_grad=True)
    b = minigan.Tensor(backend.to_device(kept, device), requires_grad=True)
    ya, yb = F.cross_entropy(a, t), F.cross_entropy(b, t)
    ya.backward()
    yb.backward()
    np.testing.assert_allclose(ya.item(), yb.item(), rtol=1e-14)
    g = a.grad.numpy()
    np.testing.assert_array_equal(g[[0, 1], [1, 2]], 0.0)
    np.testing.assert_allclose(g[[0, 0, 1, 1], [0, 2, 0, 1]], b.grad.numpy().ravel(), rtol=1e-13)
    logp = minigan.Tensor(backend.to_device(np.array([[-0.5, -inf, -1.0]]), device))
    assert F.nll_loss(logp, backend.to_device(np.array([0]), device)).item() == 0.5
