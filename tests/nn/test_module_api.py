"""Module API details that PyTorch code relies on: traversal with shared modules, buffers,
state dicts, load casting and errors, ``to`` forms, submodule lookup and forward hooks."""
import numpy as np
import pytest

import minigan
import minigan.nn as nn


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2)
        self.b = self.a  # the same module under two names
        self.c = nn.Sequential(self.a, nn.ReLU())


def test_named_modules_deduplicates_shared_modules():
    m = Shared()
    assert [n for n, _ in m.named_modules()] == ["", "a", "c", "c.1"]
    assert [n for n, _ in m.named_modules(remove_duplicate=False)] == \
        ["", "a", "b", "c", "c.0", "c.1"]
    assert [n for n, _ in m.named_modules(prefix="net")] == ["net", "net.a", "net.c", "net.c.1"]
    assert [n for n, _ in m.named_children()] == ["a", "c"]
    assert [n for n, _ in m.named_parameters()] == ["a.weight", "a.bias"]
    assert [n for n, _ in m.named_parameters(remove_duplicate=False)] == [
        "a.weight", "a.bias", "b.weight", "b.bias", "c.0.weight", "c.0.bias"]
    # state_dict keeps every path, as in PyTorch
    assert list(m.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias", "c.0.weight",
                                    "c.0.bias"]


def test_modules_and_requires_grad_walk_the_tree_of_named_modules():
    m = Shared()
    m.d = nn.Sequential()  # empty: falsy (len 0), still a module of the tree
    m.d2 = nn.Module()
    m.d2.e = nn.Sequential(nn.Linear(2, 1))
    names = [n for n, _ in m.named_modules()]
    assert names == ["", "a", "c", "c.1", "d", "d2", "d2.e", "d2.e.0"]
    assert list(m.modules()) == [mod for _, mod in m.named_modules()]
    m.requires_grad_(False)
    assert [p.requires_grad for p in m.parameters()] == [False] * 4
    m.d2.e[0].requires_grad_(True)
    assert [n for n, p in m.named_parameters() if p.requires_grad] == [
        "d2.e.0.weight", "d2.e.0.bias"]
    m.requires_grad_()
    assert all(p.requires_grad for p in m.parameters())


def test_apply_visits_a_module_shared_by_two_children_once():
    seen = []
    outer = nn.Module()
    lin = nn.Linear(1, 1)
    outer.x, outer.y = lin, lin
    outer.apply(seen.append)
    assert seen == [lin, outer]


def test_named_modules_matches_torch_with_sharing():
    torch = pytest.importorskip("torch")

    class TShared(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(2, 2)
            self.b = self.a
            self.c = torch.nn.Sequential(self.a, torch.nn.ReLU())

    ours, theirs = Shared(), TShared()
    for kw in ({}, {"remove_duplicate": False}):
        assert [n for n, _ in ours.named_modules(**kw)] == \
            [n for n, _ in theirs.named_modules(**kw)]
        assert [n for n, _ in ours.named_parameters(**kw)] == \
            [n for n, _ in theirs.named_parameters(**kw)]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    seen_o, seen_t = [], []
    ours.apply(lambda m: seen_o.append(type(m).__name__))
    theirs.apply(lambda m: seen_t.append(type(m).__name__.replace("TShared", "Shared")))
    assert seen_o == seen_t


def test_requires_grad_keyword():
    lin = nn.Linear(2, 2)
    assert lin.requires_grad_(requires_grad=False) is lin
    assert not any(p.requires_grad for p in lin.parameters())
    lin.requires_grad_()
    assert all(p.requires_grad for p in lin.parameters())


def test_non_persistent_buffers_are_moved_but_not_saved():
    m = nn.Module()
    m.register_buffer("kept", np.zeros(2, np.float32))
    m.register_buffer("scratch", minigan.tensor(np.ones(3, np.float32)), persistent=False)
    assert isinstance(m.scratch, np.ndarray)  # buffers are arrays in minigan
    assert list(m.state_dict()) == ["kept"]
    assert [n for n, _ in m.named_buffers()] == ["kept", "scratch"]
    m.double()
    assert m.scratch.dtype == np.float64 and m.kept.dtype == np.float64
    m.load_state_dict({"kept": np.ones(2)})  # scratch is not expected
    with pytest.raises(KeyError, match="unexpected keys: scratch"):
        m.load_state_dict({"kept": np.ones(2), "scratch": np.ones(3)})
    m.register_buffer("scratch", np.ones(3), persistent=True)
    assert list(m.state_dict()) == ["kept", "scratch"]
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("double", np.ones(1))
    with pytest.raises(TypeError, match="buffer 'x'"):
        m.register_buffer("x", [1, 2])


def test_state_dict_arguments():
    lin = nn.Linear(2, 3)
    sd = lin.state_dict(prefix="head.")
    assert list(sd) == ["head.weight", "head.bias"] and isinstance(sd["head.weight"], np.ndarray)
    assert sd["head.weight"] is lin.weight.data  # a reference, not a copy
    kv = lin.state_dict(keep_vars=True)
    assert kv["weight"] is lin.weight
    dest = {"other": 1}
    assert lin.state_dict(destination=dest, prefix="p.") is dest
    assert list(dest) == ["other", "p.weight", "p.bias"]


def test_load_state_dict_casts_dtypes_but_refuses_shapes():
    lin = nn.Linear(2, 3)
    sd = {"weight": np.arange(6.0).reshape(3, 2), "bias": minigan.tensor(np.ones(3))}
    lin.load_state_dict(sd)
    assert lin.weight.dtype == np.float32 and lin.bias.dtype == np.float32
    np.testing.assert_array_equal(lin.weight.numpy(), np.arange(6.0).reshape(3, 2))
    sd["bias"] = np.ones(4)
    with pytest.raises(RuntimeError, match=r"bias: shape \(4,\) in the state, \(3,\)"):
        lin.load_state_dict(sd)
    bn = nn.BatchNorm1d(2)
    state = dict(bn.state_dict())
    state["num_batches_tracked"] = np.array(7.0)  # cast to the int64 buffer
    bn.load_state_dict(state)
    assert bn.num_batches_tracked.dtype == np.int64 and int(bn.num_batches_tracked) == 7


def test_load_errors_are_runtime_and_key_errors_with_a_plain_message():
    lin = nn.Linear(2, 3)
    with pytest.raises(nn.StateDictError) as info:
        lin.load_state_dict({"weight": np.zeros((3, 2))})
    err = info.value
    assert isinstance(err, RuntimeError) and isinstance(err, KeyError)
    assert str(err) == "load_state_dict for Linear: missing keys: bias"  # not KeyError's quotes
    res = lin.load_state_dict({"weight": np.zeros((3, 2)), "x": 1}, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == ["x"]
    with pytest.raises(NotImplementedError, match="assign=True"):
        lin.load_state_dict(lin.state_dict(), assign=True)


def test_load_state_dict_copies_into_the_existing_arrays(device):
    """As torch's copy_: the parameter and buffer arrays keep their identity, so a view or an
    earlier state_dict() shows the loaded values (and a captured CUDA graph reads them)."""
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).to(device)
    w, rm = m[0].weight.data, m[1].running_mean
    before = m.state_dict()
    m.load_state_dict({"0.weight": np.full((3, 2), 2.0), "0.bias": np.zeros(3),
                       "1.weight": np.ones(3), "1.bias": np.zeros(3),
                       "1.running_mean": np.arange(3.0), "1.running_var": np.ones(3),
                       "1.num_batches_tracked": np.array(5)})
    assert m[0].weight.data is w and m[1].running_mean is rm
    np.testing.assert_array_equal(minigan.backend.to_numpy(w), np.full((3, 2), 2.0))
    np.testing.assert_array_equal(minigan.backend.to_numpy(before["1.running_mean"]),
                                  [0.0, 1.0, 2.0])
    assert w.dtype == np.float32 and int(m[1].num_batches_tracked) == 5


def test_load_state_dict_replaces_a_read_only_array_instead_of_failing():
    w = np.zeros((3, 2), dtype=np.float32)
    w.flags.writeable = False
    lin = nn.Linear(2, 3)
    lin.weight = nn.Parameter(w)
    new = np.ones((3, 2))
    lin.load_state_dict({"weight": new, "bias": np.zeros(3)})
    np.testing.assert_array_equal(lin.weight.numpy(), 1.0)
    assert lin.weight.data is not new and lin.weight.data.flags.writeable


def test_load_state_dict_names_what_is_not_a_state():
    lin = nn.Linear(2, 3)
    w = lin.weight.numpy().copy()
    for bad in ([("weight", np.zeros((3, 2)))], None):
        with pytest.raises(TypeError, match="load_state_dict for Linear: expected a dict-like "
                                            f"state_dict .*got a {type(bad).__name__}"):
            lin.load_state_dict(bad)
    with pytest.raises(nn.StateDictError, match="weight: the state holds a NoneType, not an "
                                                "array of numbers"):
        lin.load_state_dict({"weight": None, "bias": np.zeros(3)})
    np.testing.assert_array_equal(lin.weight.numpy(), w)  # nothing loaded


def test_assignments_torch_refuses_are_refused():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(TypeError, match="cannot assign a list to buffer 'running_mean' "
                                        r"\(a Tensor, an array or None expected\)"):
        bn.running_mean = [0.0, 0.0, 0.0]
    assert bn.running_mean.shape == (3,)
    bn.running_mean = minigan.tensor(np.ones(3))  # a Tensor is stored as its array
    assert isinstance(bn.running_mean, np.ndarray)
    bn.running_mean = None
    assert bn.running_mean is None and "running_mean" in bn._buffers
    m = nn.Module()
    m.a = nn.Parameter(minigan.tensor(np.ones(2)).data)
    with pytest.raises(TypeError, match="cannot assign a Linear to parameter 'a'"):
        m.a = nn.Linear(1, 1)
    assert [n for n, _ in m.named_parameters()] == ["a"] and not m._modules


def test_loads_a_torch_state_dict():
    torch = pytest.importorskip("torch")
    t = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                            torch.nn.LeakyReLU(0.2), torch.nn.Flatten(), torch.nn.Linear(18, 1))
    t(torch.randn(4, 1, 5, 5))  # move the running stats
    t.eval()
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.LeakyReLU(0.2), nn.Flatten(),
                      nn.Linear(18, 1)).eval()
    m.load_state_dict(t.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 1, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(m(minigan.tensor(x)).numpy(),
                               t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arg", [np.float64, "float64", np.dtype("float64")])
def test_to_accepts_a_positional_dtype(arg):
    bn = nn.BatchNorm1d(2)
    assert bn.to(arg) is bn
    assert bn.weight.dtype == np.float64 and bn.running_mean.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64  # integer buffers keep their dtype


def test_to_forms():
    lin = nn.Linear(2, 2)
    lin.to("cpu", np.float64)
    assert lin.weight.dtype == np.float64
    lin.to(minigan.tensor(np.zeros(1, np.float32)))
    assert lin.weight.dtype == np.float32
    lin.to(device="cpu", dtype="float64", non_blocking=True)
    assert lin.weight.dtype == np.float64
    with pytest.raises(TypeError, match="only accepts floating point dtypes.*int64"):
        lin.to(np.int64)
    with pytest.raises(minigan.backend.DeviceError, match="unknown device 'tpu'"):
        lin.to("tpu")
    with pytest.raises(TypeError, match="neither a device"):
        lin.to(3)


def test_get_submodule_parameter_buffer():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.BatchNorm1d(2)))
    assert net.get_submodule("") is net
    assert net.get_submodule("1.0") is net[1][0]
    assert net.get_parameter("0.weight") is net[0].weight
    assert net.get_buffer("1.0.running_mean") is net[1][0].running_mean
    with pytest.raises(AttributeError, match="has no attribute `2`"):
        net.get_submodule("2")
    with pytest.raises(AttributeError, match="has no attribute `weight`"):
        net.get_submodule("0.weight")


def test_forward_hooks():
    lin = nn.Linear(2, 2, bias=False).double()
    lin.weight.data[...] = np.eye(2)
    x = minigan.tensor(np.array([[1.0, 2.0]]))
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 2.0,))
    h2 = lin.register_forward_hook(lambda m, args, out: calls.append(out.numpy().copy()))
    np.testing.assert_array_equal(lin(x).numpy(), [[2.0, 4.0]])
    assert len(calls) == 1
    h3 = lin.register_forward_hook(lambda m, args, out: out + 1.0, prepend=True)
    np.testing.assert_array_equal(lin(x).numpy(), [[3.0, 5.0]])
    np.testing.assert_array_equal(calls[-1], [[3.0, 5.0]])  # ran after the prepended hook
    h1.remove(), h2.remove(), h3.remove()
    np.testing.assert_array_equal(lin(x).numpy(), [[1.0, 2.0]])
    with lin.register_forward_pre_hook(lambda m, a, kw: ((a[0] * 0.0,), kw), with_kwargs=True):
        assert np.all(lin(x).numpy() == 0)
    np.testing.assert_array_equal(lin(x).numpy(), [[1.0, 2.0]])


def test_register_parameter_and_add_module_validate_like_torch():
    m = nn.Module()
    with pytest.raises(TypeError, match="nn.Parameter or None required"):
        m.register_parameter("w", minigan.tensor(np.ones(1)))
    with pytest.raises(KeyError, match="already exists"):
        m.add_module("train", nn.ReLU())
    with pytest.raises(KeyError, match=r'contain "\."'):
        m.register_parameter("a.b", None)
    m.plain = None  # a plain attribute gives way to a registration
    m.register_parameter("plain", None)
    assert "plain" in m._parameters
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        m.train("no")


@pytest.mark.parametrize("call", [lambda m: m.half(), lambda m: m.to(np.float16),
                                  lambda m: m.to(dtype="float16")])
def test_half_precision_is_refused_by_name_and_changes_nothing(call):
    """The kernels take float32 and float64: a float16 model would overflow in batch norm and
    Adam, and the conv kernels refuse it, so the cast itself is refused."""
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    with pytest.raises(TypeError, match="minigan's kernels take float32 and float64, not "
                                        "float16"):
        call(m)
    assert m[0].weight.dtype == np.float32 and m[1].running_mean.dtype == np.float32


def test_a_batch_norm_state_without_num_batches_tracked_loads_and_keeps_the_count():
    """States saved before torch had num_batches_tracked lack it; torch fills it in, and so
    does minigan: not missing, strict or not, and the module's own count stays. Any other
    missing key is still refused."""
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    net(minigan.tensor(np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)))
    assert int(net[1].num_batches_tracked) == 1
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["1.running_mean"] = np.full(3, 0.25, np.float32)
    for strict in (True, False):
        result = net.load_state_dict(state, strict=strict)
        assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(net[1].running_mean, np.full(3, 0.25, np.float32))
    assert int(net[1].num_batches_tracked) == 1
    del state["1.running_var"]
    with pytest.raises(nn.StateDictError, match="missing keys: 1.running_var$"):
        net.load_state_dict(state)
    assert net.load_state_dict(state, strict=False).missing_keys == ["1.running_var"]
