"""The loss modules over the rest of torch's common losses: KLDivLoss, SoftMarginLoss,
HingeEmbeddingLoss, MarginRankingLoss, CosineEmbeddingLoss, GaussianNLLLoss, PoissonNLLLoss,
MultiLabelSoftMarginLoss, MultiMarginLoss and TripletMarginLoss.

Each module gives its function's values and gradients with the options it was built with;
reprs are torch's (the bare class name); class weights are buffers (moved by ``to``, saved by
``state_dict``); constructors refuse what torch's refuse. Signatures and reprs are also compared
with torch's where it is installed.
"""
import inspect
import warnings

import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import backend, nn

R = np.random.default_rng(31)
X, X2 = R.standard_normal((2, 4, 3))
SIGN = np.array([[1, -1, 1], [-1, -1, 1], [1, 1, -1], [-1, 1, 1]])  # (integers: no gradient)
PROB = R.uniform(0.1, 1.0, (4, 3))
VAR = R.uniform(0.5, 2.0, (4, 3))
COUNTS = np.array([[0.0, 2.5, 1.3], [0.4, 3.0, 7.2], [1.6, 0.8, 0.0], [5.0, 1.1, 2.2]])
LABELS01 = R.uniform(0.0, 1.0, (4, 3))
MX = R.standard_normal((4, 5))
MT = np.array([0, 3, 4, 1])
MW = R.uniform(0.5, 2.0, 5)
ANC, POS, NEG = R.standard_normal((3, 4, 3))
CT = np.array([1, -1, -1, 1])

NAMES = ["KLDivLoss", "SoftMarginLoss", "HingeEmbeddingLoss", "MarginRankingLoss",
         "CosineEmbeddingLoss", "GaussianNLLLoss", "PoissonNLLLoss", "MultiLabelSoftMarginLoss",
         "MultiMarginLoss", "TripletMarginLoss"]


def _t(a, device="cpu", grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a), device), requires_grad=grad)


def _np(t):
    return backend.to_numpy(t.data)


W = object()  # stands for the case's weight (a minigan or a torch tensor) in a constructor call

# id, class, constructor arguments, keywords, inputs, the same loss by the function
CASES = [
    ("kl_batchmean_log_target", "KLDivLoss", (), {"reduction": "batchmean", "log_target": True},
     (X, X2), lambda x, t: F.kl_div(x, t, reduction="batchmean", log_target=True)),
    ("kl_none", "KLDivLoss", (None, None, "none"), {}, (X, PROB),
     lambda x, t: F.kl_div(x, t, reduction="none")),
    ("soft_margin_sum", "SoftMarginLoss", (), {"reduction": "sum"}, (X, SIGN),
     lambda x, t: F.soft_margin_loss(x, t, reduction="sum")),
    ("hinge_margin", "HingeEmbeddingLoss", (0.4,), {}, (X, SIGN),
     lambda x, t: F.hinge_embedding_loss(x, t, 0.4)),
    ("margin_ranking_none", "MarginRankingLoss", (0.3,), {"reduction": "none"},
     (X, X2, SIGN * 1.0),
     lambda a, b, t: F.margin_ranking_loss(a, b, t, 0.3, reduction="none")),
    ("cosine_embedding", "CosineEmbeddingLoss", (-0.2,), {}, (X, X2, CT),
     lambda a, b, t: F.cosine_embedding_loss(a, b, t, -0.2)),
    ("gaussian_full_eps", "GaussianNLLLoss", (), {"full": True, "eps": 0.6, "reduction": "sum"},
     (X, X2, VAR), lambda x, t, v: F.gaussian_nll_loss(x, t, v, True, 0.6, "sum")),
    ("poisson_rate_full", "PoissonNLLLoss", (False, True, None, 0.01), {}, (VAR, COUNTS),
     lambda x, t: F.poisson_nll_loss(x, t, False, True, eps=0.01)),
    ("poisson_log_sum", "PoissonNLLLoss", (), {"reduction": "sum"}, (X, COUNTS),
     lambda x, t: F.poisson_nll_loss(x, t, reduction="sum")),
    ("multilabel_weight", "MultiLabelSoftMarginLoss", (W,), {"reduction": "none"},
     (X, LABELS01), lambda x, t: F.multilabel_soft_margin_loss(x, t, VAR[0], reduction="none")),
    ("multi_margin_weight", "MultiMarginLoss", (2, 0.6, W), {}, (MX, MT),
     lambda x, y: F.multi_margin_loss(x, y, 2, 0.6, MW)),
    ("triplet_swap", "TripletMarginLoss", (0.8, 1.5, 1e-3, True), {"reduction": "none"},
     (ANC, POS, NEG), lambda a, p, n: F.triplet_margin_loss(a, p, n, 0.8, 1.5, 1e-3, True,
                                                             reduction="none")),
]
IDS = [c[0] for c in CASES]
WEIGHTS = {"multilabel_weight": VAR[0], "multi_margin_weight": MW}


def _build(namespace, case, wrap):
    """The case's module from ``namespace`` (minigan.nn or torch.nn), its weight by ``wrap``."""
    key, cls, args, kwargs = case[:4]
    w = WEIGHTS.get(key)
    args = [wrap(w) if a is W else a for a in args]
    return getattr(namespace, cls)(*args, **kwargs)


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # (KLDivLoss's 'mean' warning)
        return fn(*args)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_module_is_its_function(device, case):
    inputs, ref = case[4:]
    m = _build(nn, case, minigan.tensor).to(device)
    xs = [_t(a, device, grad=np.asarray(a).dtype.kind == "f") for a in inputs]
    y = _quiet(m, *xs)
    cpu = [_t(a, grad=np.asarray(a).dtype.kind == "f") for a in inputs]
    want = _quiet(ref, *cpu)
    np.testing.assert_allclose(_np(y), _np(want), rtol=1e-13, atol=1e-15)
    assert y.device == device
    grads = minigan.grad(y.sum(), [x for x in xs if x.requires_grad])
    wants = minigan.grad(want.sum(), [x for x in cpu if x.requires_grad])
    for g, w in zip(grads, wants):
        assert g.device == device
        np.testing.assert_allclose(_np(g), _np(w), rtol=1e-12, atol=1e-14)


def test_reprs_are_the_bare_class_names_as_torchs():
    for m in (nn.KLDivLoss(reduction="batchmean", log_target=True),
              nn.SoftMarginLoss(reduction="sum"), nn.HingeEmbeddingLoss(0.5),
              nn.MarginRankingLoss(0.1, reduction="none"), nn.CosineEmbeddingLoss(0.2),
              nn.GaussianNLLLoss(full=True), nn.PoissonNLLLoss(False),
              nn.MultiLabelSoftMarginLoss(minigan.ones(3)), nn.MultiMarginLoss(2, 0.5),
              nn.TripletMarginLoss(swap=True), nn.MSELoss(reduction="sum"),
              nn.CrossEntropyLoss(label_smoothing=0.1)):
        assert repr(m) == type(m).__name__ + "()"


def test_options_are_attributes_as_torchs():
    m = nn.TripletMarginLoss(0.5, 1.0, 1e-3, True, reduction="sum")
    assert (m.margin, m.p, m.eps, m.swap, m.reduction) == (0.5, 1.0, 1e-3, True, "sum")
    m = nn.PoissonNLLLoss(False, True, None, 0.1, None, "none")
    assert (m.log_input, m.full, m.eps, m.reduction) == (False, True, 0.1, "none")
    m = nn.GaussianNLLLoss(full=True, eps=0.2)
    assert (m.full, m.eps, m.reduction) == (True, 0.2, "mean")
    m = nn.MultiMarginLoss(2, 0.3)
    assert (m.p, m.margin, m.weight) == (2, 0.3, None)
    assert nn.KLDivLoss(log_target=True).log_target is True
    assert nn.HingeEmbeddingLoss().margin == 1.0
    assert nn.MarginRankingLoss().margin == 0.0 and nn.CosineEmbeddingLoss().margin == 0.0


def test_class_weights_are_buffers():
    for m in (nn.MultiMarginLoss(weight=minigan.tensor(MW)),
              nn.MultiLabelSoftMarginLoss(minigan.tensor(VAR[0]))):
        assert list(m.state_dict()) == ["weight"] and list(m.parameters()) == []
        src = m.state_dict()["weight"]
        fresh = type(m)(weight=minigan.zeros(*src.shape, dtype=np.float64))
        fresh.load_state_dict(m.state_dict())
        np.testing.assert_array_equal(_np(minigan.tensor(fresh.weight)), _np(
            minigan.tensor(src)))
    for name in NAMES:  # (a None weight is not saved, as in torch)
        assert getattr(nn, name)().state_dict() == {}, name


def test_weights_move_with_the_module_and_nothing_waits_for_the_gpu(emulated_gpu):
    from tests.kernels import emulated_cupy as E
    mm = nn.MultiMarginLoss(weight=minigan.tensor(MW)).to("cuda")
    ml = nn.MultiLabelSoftMarginLoss(minigan.tensor(VAR[0])).to("cuda")
    assert isinstance(mm.weight, emulated_gpu.ndarray) and isinstance(ml.weight,
                                                                       emulated_gpu.ndarray)
    E.LOG.clear()
    for case in CASES:
        m = _build(nn, case, minigan.tensor).to("cuda")
        xs = [_t(a, "cuda", grad=np.asarray(a).dtype.kind == "f") for a in case[4]]
        y = _quiet(m, *xs)
        minigan.grad(y.sum(), [x for x in xs if x.requires_grad])
    assert dict(E.LOG.syncs) == {}
    with pytest.raises(backend.DeviceError, match="cuda and cpu|cpu and cuda"):
        mm(_t(MX), _t(MT))  # the inputs left on the CPU


def test_kl_div_loss_mean_warns_batchmean_does_not():
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        nn.KLDivLoss()(_t(X), _t(PROB))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = nn.KLDivLoss(reduction="batchmean")(_t(X), _t(PROB))
    np.testing.assert_allclose(y.item(), F.kl_div(_t(X), _t(PROB), reduction="sum").item() / 4,
                               rtol=1e-14)


@pytest.mark.parametrize("make,error,message", [
    (lambda: nn.MultiMarginLoss(p=3), ValueError,
     "MultiMarginLoss: only p == 1 and p == 2 supported, got p=3"),
    (lambda: nn.MultiMarginLoss(weight=minigan.ones(1, 3)), ValueError,
     "MultiMarginLoss: expected weight to be None or 1D tensor, got 2D instead"),
    (lambda: nn.TripletMarginLoss(margin=0), ValueError,
     "TripletMarginLoss: expected margin to be greater than 0, got 0 instead"),
    (lambda: nn.TripletMarginLoss(-1.0), ValueError, "greater than 0, got -1.0"),
    (lambda: nn.KLDivLoss(reduction="avg"), ValueError,
     "KLDivLoss: reduction must be 'mean', 'batchmean', 'sum' or 'none', got 'avg'"),
    (lambda: nn.PoissonNLLLoss(reduction="batchmean"), ValueError,
     "PoissonNLLLoss: reduction must be 'mean', 'sum' or 'none', got 'batchmean'"),
    (lambda: nn.GaussianNLLLoss(reduction="avg"), ValueError, "got 'avg'"),
    (lambda: nn.GaussianNLLLoss(True), TypeError, "positional"),
    (lambda: nn.SoftMarginLoss(True), ValueError, "size_average=True .* deprecated"),
    (lambda: nn.HingeEmbeddingLoss(1.0, None, False), ValueError, "reduce=False .* deprecated"),
    (lambda: nn.MultiLabelSoftMarginLoss(None, True), ValueError, "deprecated"),
])
def test_constructors_refuse_what_torch_refuses(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_gaussian_nll_loss_takes_a_number_variance():
    m = nn.GaussianNLLLoss(reduction="none")
    np.testing.assert_array_equal(_np(m(_t(X), _t(X2), 0.7)),
                                  _np(F.gaussian_nll_loss(_t(X), _t(X2), 0.7, reduction="none")))


# ----------------------------------------------------------------------------- torch

def test_signatures_match_torchs():
    torch = pytest.importorskip("torch")
    for name in NAMES:
        for method in ("__init__", "forward"):
            ours = inspect.signature(getattr(getattr(nn, name), method)).parameters
            theirs = inspect.signature(getattr(getattr(torch.nn, name), method)).parameters
            assert [(p.name, p.kind, p.default) for p in ours.values()] == \
                [(p.name, p.kind, p.default) for p in theirs.values()], (name, method)


def test_reprs_and_buffers_match_torchs():
    torch = pytest.importorskip("torch")
    for name in NAMES:
        kw = {"weight": np.ones(3)} if name in ("MultiMarginLoss",
                                                "MultiLabelSoftMarginLoss") else {}
        ours = getattr(nn, name)(**{k: minigan.tensor(v) for k, v in kw.items()})
        theirs = getattr(torch.nn, name)(**{k: torch.tensor(v) for k, v in kw.items()})
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict()), name


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_module_values_and_gradients_match_torchs(case):
    torch = pytest.importorskip("torch")
    ours = _build(nn, case, minigan.tensor)
    theirs = _build(torch.nn, case, torch.tensor)
    floats = [np.asarray(a).dtype.kind == "f" for a in case[4]]
    xs = [_t(a, grad=f) for a, f in zip(case[4], floats)]
    txs = [torch.tensor(a, requires_grad=f) for a, f in zip(case[4], floats)]
    y, ty = _quiet(ours, *xs), _quiet(theirs, *txs)
    np.testing.assert_allclose(_np(y), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    grads = minigan.grad(y.sum(), [x for x in xs if x.requires_grad])
    tgrads = torch.autograd.grad(ty.sum(), [x for x in txs if x.requires_grad])
    for g, tg in zip(grads, tgrads):
        np.testing.assert_allclose(_np(g), tg.numpy(), rtol=1e-10, atol=1e-12)
