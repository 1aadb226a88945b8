"""The activation modules beyond ReLU/LeakyReLU/Tanh/Sigmoid/Softplus: torch's constructors,
reprs and state-dict keys, each module computing its functional form, PReLU's learnt weight
(loaded from torch and back), Hardtanh's checks, the softmax modules' warning, RReLU's modes."""
import inspect
import warnings

import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import backend, nn
from minigan.testing import check_backward, check_double_backward

R = np.random.default_rng(23)


def _np(t):
    return backend.to_numpy(t.data)


def _t(a, device="cpu", grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a, dtype=np.float64), device),
                          requires_grad=grad)


# constructor call -> torch 2.13's repr of it
REPRS = {
    "ELU()": "ELU(alpha=1.0)",
    "ELU(alpha=0.5, inplace=True)": "ELU(alpha=0.5, inplace=True)",
    "CELU(2.0)": "CELU(alpha=2.0)",
    "CELU(inplace=True)": "CELU(alpha=1.0, inplace=True)",
    "SELU()": "SELU()",
    "SELU(inplace=True)": "SELU(inplace=True)",
    "GELU()": "GELU(approximate='none')",
    "GELU('tanh')": "GELU(approximate='tanh')",
    "SiLU()": "SiLU()",
    "SiLU(True)": "SiLU(inplace=True)",
    "Mish()": "Mish()",
    "Mish(True)": "Mish(inplace=True)",
    "Hardtanh()": "Hardtanh(min_val=-1.0, max_val=1.0)",
    "Hardtanh(-2, 3, True)": "Hardtanh(min_val=-2, max_val=3, inplace=True)",
    "ReLU6()": "ReLU6()",
    "ReLU6(True)": "ReLU6(inplace=True)",
    "Hardsigmoid()": "Hardsigmoid()",
    "Hardsigmoid(True)": "Hardsigmoid()",
    "Hardswish(True)": "Hardswish()",
    "Softsign()": "Softsign()",
    "LogSigmoid()": "LogSigmoid()",
    "Tanhshrink()": "Tanhshrink()",
    "Softshrink()": "Softshrink(0.5)",
    "Softshrink(1)": "Softshrink(1)",
    "Hardshrink(2)": "Hardshrink(2)",
    "Threshold(0.1, 20)": "Threshold(threshold=0.1, value=20)",
    "Threshold(1, 2, True)": "Threshold(threshold=1, value=2, inplace=True)",
    "PReLU()": "PReLU(num_parameters=1)",
    "PReLU(3, 0.1)": "PReLU(num_parameters=3)",
    "RReLU()": "RReLU(lower=0.125, upper=0.3333333333333333)",
    "RReLU(0.1, 0.3, True)": "RReLU(lower=0.1, upper=0.3, inplace=True)",
    "GLU()": "GLU(dim=-1)",
    "GLU(1)": "GLU(dim=1)",
    "Softmax()": "Softmax(dim=None)",
    "Softmax(1)": "Softmax(dim=1)",
    "LogSoftmax(dim=0)": "LogSoftmax(dim=0)",
    "Softmin(-1)": "Softmin(dim=-1)",
}

NAMES = ["ELU", "CELU", "SELU", "GELU", "SiLU", "Mish", "Hardtanh", "ReLU6", "Hardsigmoid",
         "Hardswish", "Softsign", "LogSigmoid", "Tanhshrink", "Softshrink", "Hardshrink",
         "Threshold", "PReLU", "RReLU", "GLU", "Softmax", "LogSoftmax", "Softmin"]


@pytest.mark.parametrize("call", sorted(REPRS))
def test_reprs_read_as_torchs(call):
    assert repr(eval("nn." + call)) == REPRS[call]


def test_the_reprs_are_torchs_own():
    torch = pytest.importorskip("torch")
    for call, want in REPRS.items():
        assert repr(eval("torch.nn." + call, {"torch": torch})) == want, call


def test_constructor_signatures_match_torch():
    torch = pytest.importorskip("torch")
    for name in NAMES:
        if name in ("Softsign", "LogSigmoid", "Tanhshrink"):  # (torch's take *args, **kwargs)
            continue
        ours = inspect.signature(getattr(nn, name).__init__).parameters
        theirs = inspect.signature(getattr(torch.nn, name).__init__).parameters
        assert list(ours) == list(theirs), name
        assert [p.default for p in ours.values()] == [p.default for p in theirs.values()], name


def test_the_modules_are_exported_and_distinct():
    for name in NAMES:
        assert name in nn.__all__ and issubclass(getattr(nn, name), nn.Module)
    assert not isinstance(nn.CELU(), nn.ELU) and not isinstance(nn.SiLU(), nn.SELU)
    assert isinstance(nn.ReLU6(), nn.Hardtanh)  # as torch's
    assert (nn.ReLU6().min_val, nn.ReLU6().max_val) == (0.0, 6.0)


# module -> the functional call it stands for
MODULES = [
    (nn.ELU(0.7), lambda x: F.elu(x, 0.7)),
    (nn.CELU(1.5), lambda x: F.celu(x, 1.5)),
    (nn.SELU(), F.selu),
    (nn.GELU(), F.gelu),
    (nn.GELU("tanh"), lambda x: F.gelu(x, approximate="tanh")),
    (nn.SiLU(), F.silu),
    (nn.Mish(), F.mish),
    (nn.Hardtanh(-0.5, 2.0), lambda x: F.hardtanh(x, -0.5, 2.0)),
    (nn.ReLU6(), F.relu6),
    (nn.Hardsigmoid(), F.hardsigmoid),
    (nn.Hardswish(), F.hardswish),
    (nn.Softsign(), F.softsign),
    (nn.LogSigmoid(), F.logsigmoid),
    (nn.Tanhshrink(), F.tanhshrink),
    (nn.Softshrink(0.3), lambda x: F.softshrink(x, 0.3)),
    (nn.Hardshrink(0.3), lambda x: F.hardshrink(x, 0.3)),
    (nn.Threshold(0.2, -3.0), lambda x: F.threshold(x, 0.2, -3.0)),
    (nn.RReLU().eval(), F.rrelu),
    (nn.GLU(1), lambda x: F.glu(x, 1)),
    (nn.Softmax(1), lambda x: F.softmax(x, 1)),
    (nn.LogSoftmax(0), lambda x: F.log_softmax(x, 0)),
    (nn.Softmin(1), lambda x: F.softmin(x, 1)),
]


@pytest.mark.parametrize("case", range(len(MODULES)))
def test_each_module_computes_its_functional_form(device, case):
    module, fn = MODULES[case]
    x = R.standard_normal((3, 4)) * 3
    y = module(input=_t(x, device))
    assert y.device == device
    # the same device on both sides: the GPU's tanh and the CPU's differ in the last bits, which
    # Tanhshrink's x - tanh(x) turns into a relative 2e-15
    np.testing.assert_allclose(_np(y), _np(fn(_t(x, device))), rtol=1e-15, atol=1e-300)


def test_a_few_modules_against_numpy():
    x = R.standard_normal((3, 4)) * 3
    np.testing.assert_allclose(_np(nn.ELU(0.7)(_t(x))), np.where(x > 0, x, 0.7 * np.expm1(x)),
                               rtol=1e-15)
    np.testing.assert_allclose(_np(nn.ReLU6()(_t(x))), np.clip(x, 0, 6))
    np.testing.assert_allclose(_np(nn.Hardshrink(0.3)(_t(x))), np.where(np.abs(x) > 0.3, x, 0))
    e = np.exp(-x)
    np.testing.assert_allclose(_np(nn.Softmin(1)(_t(x))), e / e.sum(1, keepdims=True),
                               rtol=1e-14)
    a, b = x[:, :2], x[:, 2:]
    np.testing.assert_allclose(_np(nn.GLU()(_t(x))), a / (1 + np.exp(-b)), rtol=1e-14)


@pytest.mark.parametrize("case", range(len(MODULES)))
def test_modules_match_torchs(case):
    torch = pytest.importorskip("torch")
    module, _ = MODULES[case]
    theirs = eval("torch.nn." + repr(module).replace("(dim=", "(").replace("approximate=", ""),
                  {"torch": torch})
    theirs.train(module.training)
    x = R.standard_normal((3, 4)) * 3
    np.testing.assert_allclose(_np(module(_t(x))), theirs(torch.tensor(x)).numpy(), rtol=1e-13,
                               atol=1e-15)


def test_a_network_of_them_is_differentiable_twice(device):
    net = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 6), nn.PReLU(6, 0.2),
                        nn.Linear(6, 6), nn.Mish(), nn.Linear(6, 4), nn.GLU(),
                        nn.Linear(2, 3), nn.LogSoftmax(1)).double().to(device)
    x = backend.to_device(R.standard_normal((5, 4)), device)
    check_backward(net, [x])
    check_double_backward(net, [x])


# ----------------------------------------------------------------------------- PReLU

def test_prelu_weight_is_a_parameter_of_torchs_shape_and_value(device):
    m = nn.PReLU(3, 0.1, device=device, dtype=np.float64)
    assert [n for n, _ in m.named_parameters()] == ["weight"] and m.weight.requires_grad
    assert m.weight.shape == (3,) and m.weight.dtype == np.float64 and m.weight.device == device
    np.testing.assert_array_equal(_np(m.weight), [0.1] * 3)
    assert list(m.state_dict()) == ["weight"]
    assert nn.PReLU().weight.dtype == np.float32 and _np(nn.PReLU().weight).tolist() == [0.25]
    m.weight.data[...] = 2.0
    m.reset_parameters()
    np.testing.assert_array_equal(_np(m.weight), [0.1] * 3)


def test_prelu_learns_its_weight(device):
    m = nn.PReLU(3, 0.2).double().to(device)
    x = R.standard_normal((4, 3, 2))
    y = m(_t(x, device))
    (g,) = minigan.grad(y.sum(), [m.weight])
    np.testing.assert_allclose(_np(g), np.where(x > 0, 0, x).sum((0, 2)), rtol=1e-14)
    check_double_backward(lambda w: F.prelu(_t(x, device), w),
                          [backend.to_device(np.array([0.2, 0.3, 0.4]), device)])


def test_prelu_state_dicts_load_from_torch_and_back():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.PReLU(3, 0.1).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor([0.05, -0.2, 0.7], dtype=torch.float64))
    mine = nn.PReLU(3).double()
    mine.load_state_dict(theirs.state_dict())
    x = R.standard_normal((2, 3, 4))
    np.testing.assert_allclose(_np(mine(_t(x))), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-15)
    back = torch.nn.PReLU(3).double()
    back.load_state_dict({k: torch.tensor(np.array(_np_state(v)))
                          for k, v in mine.state_dict().items()})
    assert list(back.state_dict()) == list(mine.state_dict()) == ["weight"]
    np.testing.assert_array_equal(back.weight.detach().numpy(), [0.05, -0.2, 0.7])


def _np_state(v):
    return backend.to_numpy(v.data if isinstance(v, minigan.Tensor) else v)


# ----------------------------------------------------------------------------- the others

def test_hardtanh_checks_its_bounds_and_takes_torchs_old_names():
    with pytest.raises(AssertionError, match=r"max_val \(1.0\) must be greater than min_val"):
        nn.Hardtanh(1.0, 1.0)
    with pytest.warns(UserWarning, match="`min_value` is deprecated and renamed to `min_val`"):
        m = nn.Hardtanh(min_value=-0.5)
    with pytest.warns(UserWarning, match="`max_value` is deprecated"):
        m2 = nn.Hardtanh(max_value=2.0)
    assert (m.min_val, m.max_val, m2.min_val, m2.max_val) == (-0.5, 1.0, -1.0, 2.0)


@pytest.mark.parametrize("cls,fn", [(nn.Softmax, "softmax"), (nn.LogSoftmax, "log_softmax"),
                                    (nn.Softmin, "softmin")])
def test_softmax_modules_warn_at_the_caller_without_a_dim(cls, fn):
    x = _t(R.standard_normal((2, 3)))
    with pytest.warns(UserWarning, match=f"Implicit dimension choice for {fn}") as got:
        y = cls()(x)
    assert got[0].filename == __file__
    np.testing.assert_allclose(_np(y), _np(cls(1)(x)))  # 2-d: dim 1, as torch
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cls(0)(x)


def test_rrelu_draws_in_training_only(device):
    m = nn.RReLU(0.1, 0.3).to(device)
    x = _t(-np.abs(R.standard_normal((20, 30))) - 0.1, device)
    slopes = _np(m(x)) / _np(x)
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.03
    m.eval()
    np.testing.assert_allclose(_np(m(x)) / _np(x), 0.2, rtol=1e-14)
