"""The PyTorch spellings that scripts use at every turn: ``minigan.device``, ``minigan.cuda``,
dtype names, ``from_numpy``, ``set_grad_enabled``, the random samplers and fills, comparison
functions, in-place forms, Tensor odds and ends, and gradient hooks (``register_hook``,
``retain_grad``).

Expected values are written out (or follow from NumPy), so these run without torch; where torch
is importable, the hook and sampler semantics are also compared with its.
"""
import json
import pickle

import numpy as np
import pytest

import minigan
from minigan import backend

# ----------------------------------------------------------------------------- device


def test_device_parses_torch_spellings_and_equals_the_plain_name():
    d = minigan.device("cuda:0")
    assert (d.type, d.index, str(d), repr(d)) == ("cuda", 0, "cuda:0",
                                                   "device(type='cuda', index=0)")
    assert d == "cuda" and {"cuda": 1}[d] == 1 and f"{d}" == "cuda:0"
    assert minigan.device("cuda", 0) == d and minigan.device(0).index == 0
    cpu = minigan.device("cpu")
    assert (cpu.type, cpu.index, repr(cpu)) == ("cpu", None, "device(type='cpu')")
    assert minigan.device(cpu) is cpu
    assert pickle.loads(pickle.dumps(d)).index == 0
    assert json.loads(json.dumps({"d": cpu})) == {"d": "cpu"}
    assert isinstance(d, str)


@pytest.mark.parametrize("bad, error, words", [
    ("cuda:1", minigan.DeviceError, "one GPU"),
    ("xla", ValueError, "unknown device type 'xla'"),
    ("cuda:x", ValueError, "invalid device string"),
    ("cpu:1", ValueError, "index 0 only"),
    (2.0, TypeError, "2.0 (float)"),
])
def test_device_refuses_what_minigan_cannot_drive(bad, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        minigan.device(bad)
    with pytest.raises(ValueError, match="already names an index"):
        minigan.device("cuda:0", 0)


def test_tensor_and_module_devices_are_device_objects():
    x = minigan.zeros(2)
    assert isinstance(x.device, minigan.device) and x.device == "cpu"
    assert x.device.type == "cpu" and x.is_cuda is False
    assert minigan.nn.Linear(2, 2).device.type == "cpu"
    assert x.to(minigan.device("cpu")) is x
    if not backend.cuda_available():
        with pytest.raises(minigan.DeviceError):
            x.to(0)  # torch's .to(0): the GPU


def test_device_on_the_gpu_has_index_0(device):
    x = minigan.zeros(2, device=minigan.device(device))
    assert x.device == device and x.device.type == device
    assert x.device.index == (0 if device == "cuda" else None)
    assert x.is_cuda == (device == "cuda")
    assert minigan.ones(3, device=x.device).device == device


def test_cuda_namespace_without_a_gpu(monkeypatch):
    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    assert minigan.cuda.is_available() is False and minigan.cuda.device_count() == 0
    for call in (minigan.cuda.current_device, minigan.cuda.get_device_name,
                 minigan.cuda.synchronize, minigan.cuda.memory_allocated):
        with pytest.raises(minigan.DeviceError, match=f"cuda.{call.__name__}"):
            call()
    minigan.cuda.empty_cache()  # a no-op, as in torch


@pytest.mark.gpu
def test_cuda_namespace_on_the_gpu(cuda):
    assert minigan.cuda.is_available() and minigan.cuda.device_count() == 1
    assert minigan.cuda.current_device() == 0
    assert isinstance(minigan.cuda.get_device_name(), str) and minigan.cuda.get_device_name()
    minigan.cuda.synchronize()
    assert minigan.cuda.memory_allocated() <= minigan.cuda.memory_reserved()
    with pytest.raises(ValueError, match="expected a CUDA device"):
        minigan.cuda.memory_allocated("cpu")


def test_cuda_manual_seed_seeds_the_gpu_stream_only():
    from minigan import random as mrandom
    minigan.manual_seed(3)
    cpu_first = mrandom.default_generator("cpu")
    minigan.cuda.manual_seed(11)
    assert mrandom.default_generator("cpu") is cpu_first  # the CPU's stream goes on
    assert mrandom._device_seeds["cuda"] == 11
    minigan.manual_seed(3)  # seeds both again, the GPU one from the common seed
    assert mrandom._device_seeds == {}
    with pytest.raises(TypeError, match="seed must be an int"):
        minigan.cuda.manual_seed(1.5)


# ----------------------------------------------------------------------------- dtypes etc.


def test_dtype_names_are_numpy_dtypes():
    assert minigan.float32 == np.float32 and minigan.float == np.float32
    assert minigan.double == np.float64 and minigan.half == np.float16
    assert minigan.long == np.int64 and minigan.int == np.int32 and minigan.short == np.int16
    assert minigan.bool == np.bool_ and minigan.uint8 == np.uint8 and minigan.int8 == np.int8
    assert minigan.zeros(2, dtype=minigan.long).dtype == np.int64
    assert minigan.ones(2).to(minigan.double).dtype == np.float64
    assert minigan.get_default_dtype() == minigan.float32
    namespace = {}
    exec("from minigan import *", namespace)
    assert "float" not in namespace and "int" not in namespace and "bool" not in namespace


def test_from_numpy_shares_memory_and_keeps_the_dtype():
    a = np.arange(4, dtype=np.int16)
    t = minigan.from_numpy(a)
    a[0] = 7
    assert t.dtype == np.int16 and t.tolist() == [7, 1, 2, 3]
    with pytest.raises(TypeError, match="numpy.ndarray, got list"):
        minigan.from_numpy([1, 2])
    with pytest.raises(TypeError, match="complex128"):
        minigan.from_numpy(np.zeros(2, complex))
    assert minigan.is_tensor(t) and not minigan.is_tensor(a)
    assert minigan.numel(minigan.zeros(2, 3)) == 6
    assert minigan.is_floating_point(minigan.zeros(1)) and not minigan.is_floating_point(t)
    with pytest.raises(TypeError, match="numel: expected a Tensor, got ndarray"):
        minigan.numel(a)


def test_set_grad_enabled_as_call_context_and_decorator():
    w = minigan.ones(2, requires_grad=True)
    minigan.set_grad_enabled(False)
    try:
        assert not minigan.is_grad_enabled() and not (w * 2).requires_grad
    finally:
        minigan.set_grad_enabled(True)
    assert minigan.is_grad_enabled()
    with minigan.set_grad_enabled(False):
        assert not (w * 2).requires_grad
    assert minigan.is_grad_enabled()
    with minigan.no_grad():
        with minigan.set_grad_enabled(True):
            assert (w * 2).requires_grad
        assert not minigan.is_grad_enabled()

    @minigan.set_grad_enabled(False)
    def f():
        return minigan.is_grad_enabled()
    assert minigan.is_grad_enabled() and f() is False and minigan.is_grad_enabled()
    with pytest.raises(TypeError, match="True or False"):
        minigan.set_grad_enabled("no")


def test_inference_mode_is_no_grad_and_its_false_records():
    w = minigan.ones(2, requires_grad=True)
    with minigan.inference_mode():
        assert not (w * 2).requires_grad
    with minigan.no_grad(), minigan.inference_mode(False):
        assert (w * 2).requires_grad

    @minigan.inference_mode
    def g():
        return minigan.is_grad_enabled()
    assert g() is False and minigan.is_grad_enabled()


# ----------------------------------------------------------------------------- random


def test_generator_takes_a_device_alone_and_its_state_round_trips():
    g = minigan.Generator("cpu")
    assert (g.device, g.initial_seed()) == ("cpu", 0)
    g.manual_seed(5)
    state = g.get_state()
    assert state.dtype == np.uint8 and state.shape == (16,)
    a = minigan.randn(4, generator=g)
    g.set_state(state)
    assert np.array_equal(minigan.randn(4, generator=g).numpy(), a.numpy())
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        g.set_state(minigan.zeros(3, dtype=minigan.uint8))
    with pytest.raises(TypeError, match="seed must be an int"):
        minigan.Generator(1.5)


def test_seed_and_initial_seed():
    s = minigan.seed()
    assert minigan.initial_seed() == s
    assert minigan.manual_seed(9) is minigan.random.default_generator("cpu")
    assert minigan.initial_seed() == 9


def test_randperm_is_a_repeatable_permutation(device):
    minigan.manual_seed(0)
    p = minigan.randperm(1000, device=device)
    minigan.manual_seed(0)
    q = minigan.randperm(1000, device=device)
    assert p.dtype == np.int64 and p.device == device
    assert sorted(p.tolist()) == list(range(1000)) and p.tolist() == q.tolist()
    assert p.tolist() != list(range(1000))
    assert minigan.randperm(5, dtype=minigan.int32).dtype == np.int32
    assert minigan.randperm(0).shape == (0,)
    with pytest.raises(ValueError, match="n must be an int >= 0"):
        minigan.randperm(-1)
    with pytest.raises(ValueError, match="does not fit in int8"):
        minigan.randperm(300, dtype=minigan.int8)


def test_normal_with_tensor_parameters_broadcasts_promotes_and_has_zero_gradients(device):
    minigan.manual_seed(1)
    mean = minigan.tensor([[0.0], [10.0]], device=device, dtype=minigan.float64,
                          requires_grad=True)
    std = minigan.full((1, 50000), 2.0, device=device, requires_grad=True)
    x = minigan.normal(mean, std)
    assert x.shape == (2, 50000) and x.dtype == np.float64 and x.requires_grad
    v = x.numpy()
    assert abs(v[0].mean()) < 0.05 and abs(v[1].mean() - 10) < 0.05
    assert abs(v.std(axis=1) - 2).max() < 0.05
    x.sum().backward()
    assert np.array_equal(mean.grad.numpy(), np.zeros((2, 1)))
    assert np.array_equal(std.grad.numpy(), np.zeros((1, 50000), np.float32))
    y = minigan.normal(3.0, 0.5, (20000,), device=device)
    assert y.dtype == np.float32 and abs(y.numpy().mean() - 3) < 0.02
    assert minigan.normal(minigan.zeros(3, device=device), 1.0).shape == (3,)
    with pytest.raises(ValueError, match="std holds negative values"):
        minigan.normal(mean, minigan.full((1, 2), -1.0, device=device))
    with pytest.raises(ValueError, match="do not broadcast"):
        minigan.normal(minigan.zeros(3), minigan.ones(2))
    with pytest.raises(TypeError, match="give the size"):
        minigan.normal(0.0, 1.0)
    with pytest.raises(ValueError, match="std must be >= 0"):
        minigan.normal(0.0, -1.0, (2,))


def test_bernoulli_follows_its_probabilities(device):
    minigan.manual_seed(2)
    p = minigan.tensor([0.0, 0.25, 1.0], device=device, dtype=minigan.float64)
    draws = minigan.bernoulli(minigan.broadcast_to(p, (40000, 3)))
    v = draws.numpy()
    assert draws.dtype == np.float64 and set(np.unique(v)) <= {0.0, 1.0}
    assert v[:, 0].sum() == 0 and v[:, 2].min() == 1 and abs(v[:, 1].mean() - 0.25) < 0.01
    half = minigan.bernoulli(minigan.zeros(40000, device=device, dtype=minigan.float16), 0.5)
    assert half.dtype == np.float16 and abs(half.numpy().astype(float).mean() - 0.5) < 0.01
    if device == "cpu":  # (on the GPU the check would make each draw wait: not made)
        with pytest.raises(ValueError, match="probabilities must lie in \\[0, 1\\]"):
            minigan.bernoulli(minigan.tensor([1.5], device=device))
    with pytest.raises(ValueError, match="p must lie in"):
        minigan.bernoulli(p, 2.0)
    with pytest.raises(TypeError, match="floating point tensor, got int64"):
        minigan.bernoulli(minigan.zeros(2, dtype=minigan.long))


def test_multinomial_frequencies_and_distinct_draws(device):
    minigan.manual_seed(3)
    w = minigan.tensor([1.0, 0.0, 3.0, 6.0], device=device)
    with_rep = minigan.multinomial(w, 100000, replacement=True)
    assert with_rep.shape == (100000,) and with_rep.dtype == np.int64
    freq = np.bincount(with_rep.numpy(), minlength=4) / 1e5
    assert freq[1] == 0 and np.abs(freq - [0.1, 0, 0.3, 0.6]).max() < 0.01
    rows = minigan.multinomial(minigan.broadcast_to(w, (30000, 4)), 3)
    r = rows.numpy()
    assert r.shape == (30000, 3) and (np.sort(r, axis=1) == [0, 2, 3]).all()  # distinct, no 1
    first = np.bincount(r[:, 0], minlength=4) / 3e4
    assert np.abs(first - [0.1, 0, 0.3, 0.6]).max() < 0.015  # the first draw as with replacement
    with pytest.raises(ValueError, match="fewer categories of nonzero weight"):
        minigan.multinomial(w, 4)
    with pytest.raises(ValueError, match="5 samples without replacement from 4"):
        minigan.multinomial(w, 5)
    with pytest.raises(ValueError, match="finite and >= 0"):
        minigan.multinomial(minigan.tensor([1.0, -1.0]), 1)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        minigan.multinomial(minigan.ones(2, 2, 2), 1)


def test_random_fills_in_place(device):
    minigan.manual_seed(4)
    n = 50000
    e = minigan.zeros(n, device=device, dtype=minigan.float64)
    assert e.exponential_(2.0) is e and abs(e.numpy().mean() - 0.5) < 0.01 and e.numpy().min() >= 0
    g = minigan.zeros(n, device=device).geometric_(0.25)
    assert g.numpy().min() == 1 and abs(g.numpy().mean() - 4) < 0.1
    c = minigan.zeros(n, device=device).cauchy_(5.0, 1.0)
    assert abs(np.median(c.numpy()) - 5) < 0.05
    ln = minigan.zeros(n, device=device, dtype=minigan.float64).log_normal_(0.0, 0.5)
    assert abs(np.log(ln.numpy()).std() - 0.5) < 0.01
    b = minigan.zeros(n, device=device).bernoulli_(0.3)
    assert abs(b.numpy().mean() - 0.3) < 0.01
    ints = minigan.zeros(n, device=device, dtype=minigan.int32).random_(3, 7)
    assert ints.dtype == np.int32 and set(np.unique(ints.numpy())) == {3, 4, 5, 6}
    u8 = minigan.zeros(n, device=device, dtype=minigan.uint8).random_()
    assert u8.numpy().max() > 250
    f = minigan.zeros(n, device=device).random_(10)
    assert set(np.unique(f.numpy())) == set(range(10))
    with pytest.raises(ValueError, match="does not fit in uint8"):
        minigan.zeros(2, dtype=minigan.uint8).random_(0, 300)
    with pytest.raises(ValueError, match="lambd must be > 0"):
        minigan.zeros(2).exponential_(0)
    with pytest.raises(TypeError, match="fills floating point tensors"):
        minigan.zeros(2, dtype=minigan.long).exponential_()
    w = minigan.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Tensor that requires grad"):
        w.bernoulli_()


def test_a_fill_invalidates_graphs_that_saved_the_tensor():
    x = minigan.ones(3)
    w = minigan.ones(3, requires_grad=True)
    y = (w * x).sum()
    x.exponential_()
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()


def test_tensor_bernoulli_and_multinomial_methods():
    minigan.manual_seed(5)
    assert minigan.full((4,), 1.0).bernoulli().tolist() == [1.0] * 4
    assert minigan.zeros(3).bernoulli(minigan.ones(3)).tolist() == [1.0] * 3
    assert minigan.tensor([0.0, 1.0]).multinomial(1).tolist() == [1]


# ----------------------------------------------------------------------------- comparisons


def test_comparison_functions_methods_and_in_place_forms(device):
    a = minigan.tensor([1, 2, 3], device=device)
    b = minigan.tensor([3.0, 2.0, 1.0], device=device)
    expect = {"eq": [0, 1, 0], "ne": [1, 0, 1], "lt": [1, 0, 0], "le": [1, 1, 0],
              "gt": [0, 0, 1], "ge": [0, 1, 1]}
    aliases = {"ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
               "ge": "greater_equal"}
    for name, want in expect.items():
        for n in (name, aliases.get(name, name)):
            out = getattr(minigan, n)(a, b)
            assert out.dtype == np.bool_ and out.tolist() == [bool(v) for v in want], n
            assert getattr(a, n)(b).tolist() == out.tolist()
    assert minigan.lt(2, a).tolist() == [False, False, True]  # a number first: 2 < a
    assert minigan.ge(2, a).tolist() == [True, True, False]
    c = b.clone()
    assert c.gt_(1.5) is c and c.dtype == np.float32 and c.tolist() == [1.0, 1.0, 0.0]
    with pytest.raises(TypeError, match="eq: expected a Tensor"):
        minigan.eq(1, 2)


@pytest.mark.gpu
def test_comparisons_refuse_mixed_devices(cuda):
    with pytest.raises(minigan.DeviceError, match="lt: expected all inputs on one device"):
        minigan.zeros(2, device="cuda").lt(minigan.zeros(2))


# ----------------------------------------------------------------------------- in-place forms


def test_in_place_pointwise_methods_match_their_out_of_place_forms():
    base = minigan.tensor([0.25, -1.5, 2.0], dtype=minigan.float64)
    for name in ("cos", "sin", "tan", "atan", "sinh", "floor", "ceil", "trunc", "frac", "sign",
                 "expm1", "log1p", "erf", "square", "exp2", "reciprocal"):
        x = base.clone()
        want = getattr(base, name)().numpy()
        assert getattr(x, name + "_")() is x, name
        np.testing.assert_array_equal(x.numpy(), want, err_msg=name)
    x = base.clone()
    x.lerp_(minigan.zeros(3, dtype=minigan.float64), 0.5)
    np.testing.assert_array_equal(x.numpy(), base.numpy() / 2)
    x = base.clone()
    x.round_(decimals=1)
    np.testing.assert_array_equal(x.numpy(), [0.2, -1.5, 2.0])
    with pytest.raises(RuntimeError, match="cos_"):
        minigan.ones(2, requires_grad=True).cos_()
    with pytest.raises(RuntimeError, match="float32 cannot be written into a tensor of dtype "
                                           "int64"):
        minigan.tensor([1, 2]).reciprocal_()  # (torch's reciprocal of integers is float)


def test_shape_changing_in_place_methods_rebind_the_view():
    data = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    x = minigan.from_numpy(data)
    assert x.t_() is x and x.shape == (3, 2)
    x.unsqueeze_(0)
    assert x.shape == (1, 3, 2)
    x.squeeze_()
    x.transpose_(0, 1)
    assert x.shape == (2, 3)
    data[0, 0] = 100  # still the caller's memory
    assert x.tolist()[0][0] == 100
    w = minigan.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="unsqueeze_"):
        w.unsqueeze_(0)


# ----------------------------------------------------------------------------- tensor odds


def test_type_casts_and_sizes():
    x = minigan.arange(6.0).reshape(2, 3)
    assert x.type() == "minigan.FloatTensor"
    assert x.long().type() == "minigan.LongTensor"
    assert x.type("torch.DoubleTensor").dtype == np.float64
    assert x.type(minigan.int16).dtype == np.int16
    with pytest.raises(TypeError, match="unknown tensor type 'torch.ComplexTensor'"):
        x.type("torch.ComplexTensor")
    assert [x.int().dtype, x.short().dtype, x.char().dtype, x.byte().dtype, x.bool().dtype] == \
        [np.int32, np.int16, np.int8, np.uint8, np.bool_]
    assert (x.element_size(), x.double().element_size(), x.nelement()) == (4, 8, 6)
    assert x.stride() == (3, 1) and x.t().stride() == (1, 3) and x.stride(-1) == 1
    with pytest.raises(IndexError, match="stride\\(2\\)"):
        x.stride(2)
    assert x.is_floating_point() and not x.long().is_floating_point()
    assert not x.is_complex() and x.is_signed() and not x.byte().is_signed()
    assert x[1].data_ptr() == x.data_ptr() + 3 * 4


def test_grad_fn_is_the_creator():
    w = minigan.ones(2, requires_grad=True)
    y = w * 2
    assert w.grad_fn is None and y.grad_fn is y.creator and y.grad_fn is not None


@pytest.mark.gpu
def test_type_names_the_gpu(cuda):
    x = minigan.zeros(2, device="cuda")
    assert x.type() == "minigan.cuda.FloatTensor" and x.is_cuda
    assert x.type("torch.DoubleTensor").device == "cpu"  # as torch: the name says the device


# ----------------------------------------------------------------------------- hooks


def _hook_run(lib):
    """Hooks on a leaf and a non-leaf, retain_grad, removal, grad() with hooks: the values
    torch 2.13 gives are written in the test below."""
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.numpy().copy()))
    x.register_hook(lambda g: g * 2)
    y = x * x
    y.retain_grad()
    y.register_hook(lambda g: g + 1)
    z = (y * 3).sum() + x.sum()
    z.backward()
    out = [x.grad.numpy().copy(), y.grad.numpy().copy(), seen[0]]
    handle.remove()
    (x * x * 3).sum().backward()
    out += [x.grad.numpy().copy(), [len(seen)]]
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    a.register_hook(lambda g: g * 10)
    (ga,) = lib.autograd.grad((a * a).sum(), a)
    a2 = lib.tensor([1.0, 2.0], requires_grad=True)
    m = a2 * 2
    m.register_hook(lambda g: g * 100)
    gm, ga2 = lib.autograd.grad((m * m).sum(), [m, a2])
    out += [ga.numpy().copy(), gm.numpy().copy(), ga2.numpy().copy()]
    return [np.asarray(v, dtype=float).tolist() for v in out]


HOOK_VALUES = [
    [18.0, 34.0, 50.0],  # x.grad: (3 + 1) * 2x + 1, doubled by x's second hook
    [4.0, 4.0, 4.0],  # y's retained gradient, after its +1 hook
    [9.0, 17.0, 25.0],  # what x's first hook saw: the sum of both paths, before doubling
    [30.0, 58.0, 86.0],  # the second backward adds 6x * 2 (the first hook removed)
    [1.0],  # the removed hook was not called again
    [20.0, 40.0],  # grad() of a leaf: after its hook
    [4.0, 8.0],  # grad() of a non-leaf: before its hook, as torch gives it
    [800.0, 1600.0],  # ... while the hooked value flows on to a2
]


def test_gradient_hooks_and_retain_grad():
    assert _hook_run(minigan) == HOOK_VALUES


def test_gradient_hooks_match_torch():
    torch = pytest.importorskip("torch")
    assert _hook_run(torch) == HOOK_VALUES


def test_hooks_on_the_gpu(device):
    x = minigan.tensor([1.0, 2.0], device=device, requires_grad=True)
    x.register_hook(lambda g: g * 3)
    (x * x).sum().backward()
    assert x.grad.device == device and x.grad.tolist() == [6.0, 12.0]


def test_hooks_refuse_bad_use():
    with pytest.raises(RuntimeError, match="does not require grad"):
        minigan.ones(2).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="expected a callable"):
        minigan.ones(2, requires_grad=True).register_hook(3)
    w = minigan.ones(2, requires_grad=True)
    w.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match="returned Tensor of shape \\(\\)"):
        (w * w).sum().backward()
    v = minigan.ones(2, requires_grad=True)
    v.retain_grad()  # a leaf: a no-op
    assert not v.retains_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        minigan.ones(2).retain_grad()


def test_hooks_take_part_in_second_order_gradients():
    def f(x):
        y = x * x
        if y.requires_grad:  # (check_backward also evaluates f without a graph)
            y.register_hook(lambda g: g * x)  # the hook's result is differentiable too
        return (y * 1).sum()

    def first(x):
        (g,) = minigan.grad(f(x), x, create_graph=True)
        return g

    x0 = np.array([0.5, -1.25, 2.0])
    # d/dx sum(x^2), with the hook: 2x * x = 2x^2; its gradient 4x
    x = minigan.tensor(x0, requires_grad=True)
    np.testing.assert_allclose(first(x).numpy(), 2 * x0 ** 2)
    (gg,) = minigan.grad(first(x).sum(), x)
    np.testing.assert_allclose(gg.numpy(), 4 * x0)


def test_retained_gradients_sum_over_backwards():
    w = minigan.tensor([1.0, 2.0], requires_grad=True)
    y = w * 3
    y.retain_grad()
    (y * y).sum().backward(retain_graph=True)
    (y * y).sum().backward()
    assert y.retains_grad and y.grad.tolist() == [12.0, 24.0]


def test_comparisons_promote_as_torch():
    f32 = minigan.tensor(np.full(2, 0.1, np.float32))
    assert (f32 == 0.1).tolist() == [True, True]  # 0.1 as float32, as torch compares it
    assert (f32 == np.float64(0.1)).tolist() == [True, True]
    assert (f32 == minigan.tensor(np.array(0.1))).tolist() == [True, True]  # a 0-d float64
    assert (minigan.tensor(np.uint8([7, 255])) < -1).tolist() == [True, False]  # -1 as uint8
    big = minigan.tensor(np.array([16777217], np.int32))
    assert (big == minigan.tensor(np.array([16777216.0], np.float32))).tolist() == [True]
    assert minigan.tensor([1.0, 2.0]) != None  # noqa: E711 - identity, as torch


def test_top_level_softmax_family_and_methods():
    x = minigan.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=minigan.float64)
    e = np.exp(x.numpy())
    np.testing.assert_allclose(minigan.softmax(x, 1).numpy(), e / e.sum(1, keepdims=True))
    np.testing.assert_allclose(x.softmax(-1).numpy(), e / e.sum(1, keepdims=True))
    np.testing.assert_allclose(minigan.log_softmax(x, dim=1).numpy(),
                               np.log(e / e.sum(1, keepdims=True)))
    np.testing.assert_allclose(x.log_softmax(1).numpy(), np.log(e / e.sum(1, keepdims=True)))
    np.testing.assert_allclose(minigan.logsumexp(x, 1).numpy(), np.log(e.sum(1)))
    np.testing.assert_allclose(x.logsumexp(0, keepdim=True).numpy(),
                               np.log(e.sum(0, keepdims=True)))
    assert minigan.relu(x - 2).tolist() == [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    assert minigan.softmax.__name__ == "softmax"
    assert not hasattr(minigan.nn.functional, "relu_")  # (torch's relu_ is in place)


def test_piecewise_constant_gradients_differentiate_to_zero():
    x = minigan.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (g,) = minigan.grad(x.abs().sum(), x, create_graph=True)
    assert g.tolist() == [1.0, -1.0, 1.0] and g.requires_grad
    (h,) = minigan.grad((g * g).sum(), x)
    assert h.tolist() == [0.0, 0.0, 0.0]
    (g,) = minigan.grad(minigan.relu(x).sum(), x, create_graph=True)
    assert minigan.grad(g.sum(), x)[0].tolist() == [0.0, 0.0, 0.0]
    (g,) = minigan.grad(x.abs().sum(), x)  # without create_graph: no graph, as before
    assert not g.requires_grad


def test_random_fill_ranges_without_to_follow_the_dtype():
    minigan.manual_seed(6)
    f = minigan.zeros(20000).random_()
    assert f.numpy().max() > 2 ** 20 and f.numpy().max() <= 2 ** 24
    assert np.array_equal(f.numpy(), np.floor(f.numpy()))
    b = minigan.zeros(1000, dtype=minigan.bool).random_()
    assert set(np.unique(b.numpy())) == {False, True}


def test_cuda_manual_seed_drops_a_made_gpu_generator():
    from minigan import random as mrandom
    minigan.manual_seed(0)
    mrandom._defaults["cuda"] = "a generator made before"
    minigan.cuda.manual_seed(4)
    assert "cuda" not in mrandom._defaults
    minigan.manual_seed(0)


def test_linear_algebra_and_data_utilities_are_wired():
    a = minigan.arange(6.0).reshape(2, 3)
    b = minigan.ones(3, 2)
    assert a.mm(b).tolist() == [[3.0, 3.0], [12.0, 12.0]]
    assert minigan.einsum("ij,jk->ik", a, b).tolist() == a.mm(b).tolist()
    c = minigan.zeros(2, 2)
    assert c.addmm_(a, b, alpha=2) is c and c.tolist() == [[6.0, 6.0], [24.0, 24.0]]
    assert minigan.tensor([1.0, 2.0]).dot(minigan.tensor([3.0, 4.0])).item() == 11.0
    loader = minigan.utils.data.DataLoader(
        minigan.utils.data.TensorDataset(minigan.arange(10.0)), batch_size=4)
    assert [len(x) for (x,) in loader] == [4, 4, 2]


# ----------------------------------------------------------------------------- x[i] = v


def test_setitem_writes_in_place_with_torchs_index_reading(device):
    x = minigan.tensor(np.arange(24.0).reshape(2, 3, 4), device=device)
    ref = np.arange(24.0).reshape(2, 3, 4)
    block = np.arange(6.0).reshape(3, 2) + 100
    x[0, :, [1, 0]] = minigan.tensor(block, device=device)  # torch: the (3, 2) selection
    ref[0][:, [1, 0]] = block
    x[x > 110] = 0.0
    ref[ref > 110] = 0.0
    x[:, 1] = 3.0
    ref[:, 1] = 3.0
    x[[0, 1], [1, 2]] = -1.0
    ref[[0, 1], [1, 2]] = -1.0
    row = x[1]  # a view: writing into it writes into x, as torch
    row[0] = 55.0
    ref[1, 0] = 55.0
    x[..., 0] = minigan.tensor([1.0, 2.0, 3.0], device=device)
    ref[..., 0] = [1.0, 2.0, 3.0]
    x[minigan.tensor(1, device=device)] = x[0] * 2  # (values read before the write)
    ref[1] = ref[0] * 2
    x[[[0], [1]]] = 9.0  # a list of lists: a tuple
    ref[0, 1] = 9.0
    np.testing.assert_array_equal(x.numpy(), ref)
    ints = minigan.tensor([1, 2, 3], device=device)
    ints[0] = 9.7  # cast to the tensor's dtype, as torch
    assert ints.tolist() == [9, 2, 3]


def test_setitem_follows_the_in_place_rules():
    w = minigan.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Tensor that requires grad.*x\\[index\\]"):
        w[0] = 2.0
    with minigan.no_grad():
        w[0] = 2.0
    assert w.tolist() == [2.0, 1.0, 1.0]
    x = minigan.ones(3)
    with pytest.raises(RuntimeError, match="value requires grad"):
        x[0] = w[1] * 1
    y = w * 2
    with pytest.raises(RuntimeError, match="inside a recorded graph"):
        y[0] = 1.0
    c = minigan.ones(3)
    loss = (w * c).sum()
    c[1] = 5.0  # w's gradient needs c's old values
    with pytest.raises(RuntimeError, match="changed in place"):
        loss.backward()
    e = minigan.ones(3).expand(2, 3)
    with pytest.raises(RuntimeError, match="read-only view"):
        e[0, 0] = 1.0


@pytest.mark.gpu
def test_setitem_refuses_a_value_on_another_device(cuda):
    x = minigan.zeros(3, device="cuda")
    with pytest.raises(minigan.DeviceError, match="x\\[index\\] = value"):
        x[0:2] = minigan.ones(2)
    x[0:2] = [1.0, 2.0]  # a list goes to x's device
    assert x.tolist() == [1.0, 2.0, 0.0]


# ----------------------------------------------------------------------------- review mends


def test_shape_changing_in_place_invalidates_graphs_that_saved_the_tensor():
    x = minigan.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    c = minigan.tensor([[1.0, 2.0], [5.0, 6.0]])
    y = (x @ c).sum()
    c.t_()  # the product's backward needs c as it was
    with pytest.raises(RuntimeError, match="changed in place"):
        y.backward()


def test_a_hooked_leafs_grad_is_its_own_array():
    x = minigan.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(seen.append)
    (x * 3).sum().backward()
    x.grad.zero_()
    assert seen[0].tolist() == [3.0, 3.0]


def test_backward_inputs_stores_a_non_leafs_gradient_after_its_hooks():
    x = minigan.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g * 10)
    (y * y).sum().backward(inputs=[y])
    assert y.grad.tolist() == [40.0, 80.0] and x.grad is None


def test_retained_gradients_are_kept_by_grad_too():
    x = minigan.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    minigan.grad((y * y).sum(), x)
    assert y.grad.tolist() == [4.0, 8.0]
    z = x * 3
    z.retain_grad()
    minigan.grad((z * z).sum(), z)  # a requested tensor that is also retained
    assert z.grad.tolist() == [6.0, 12.0]


def test_a_leafs_own_backward_runs_its_hooks():
    x = minigan.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g * 3)
    x.backward(minigan.ones(2))
    assert x.grad.tolist() == [3.0, 3.0]


def test_a_hook_may_not_change_the_gradients_dtype():
    x = minigan.tensor([1.0, 2.0], dtype=minigan.float64, requires_grad=True)
    x.register_hook(lambda g: g.float())
    with pytest.raises(RuntimeError, match="dtype float64"):
        (x * x).sum().backward()


def test_a_set_grad_enabled_object_sets_its_mode_each_time_it_is_entered():
    off = minigan.set_grad_enabled(False)
    minigan.set_grad_enabled(True)
    with off:
        assert not minigan.is_grad_enabled()
    assert minigan.is_grad_enabled()


def test_rms_norm_of_float16_is_computed_in_float32():
    import minigan.nn.functional as F
    x = np.array([0.05, 1.0, -3.84, 0.48], np.float16) * 500  # x * x overflows float16
    y = F.rms_norm(minigan.tensor(x), (4,))
    want = x.astype(np.float64) / np.sqrt(np.mean(x.astype(np.float64) ** 2))
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.numpy().astype(float), want, rtol=2e-3)


def test_setitem_on_a_recorded_tensor_points_to_the_out_of_place_forms():
    w = minigan.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="minigan.where"):
        (w * 2)[0] = 1.0


def test_bernoulli_draws_do_not_wait_for_the_gpu(emulated_gpu):
    from tests.kernels import emulated_cupy as E
    p = minigan.full((64,), 0.3, device="cuda")
    E.LOG.clear()
    minigan.bernoulli(p)
    minigan.zeros(64, device="cuda").bernoulli_(p)
    minigan.zeros(64, device="cuda").bernoulli(p)
    assert dict(E.LOG.syncs) == {}
