"""The engine and the Tensor API where PyTorch users lean on its behaviour: freed graphs in
grad(), a leaf's own .grad, tensors changed in place before backward, elementwise ==, size(),
pow at a zero base, the new reductions, and the tensor factories."""
import math

import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import Tensor


def leaf(values, dtype=np.float64):
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ----------------------------------------------------------------------------- the engine

def test_grad_through_a_graph_freed_by_backward_is_an_error_not_a_wrong_number():
    x = leaf([0.5, 1.0])
    h = F.exp(x)
    F.sum(h).backward()  # frees Exp's graph
    with pytest.raises(RuntimeError, match="freed"):
        minigan.grad(F.sum(h) + F.sum(x * x), x)


def test_a_penalty_whose_inner_grad_freed_the_graph_is_refused():
    x = leaf([0.3, -0.7])
    g, = minigan.grad(F.sum(F.exp(x) + x * x), x, create_graph=True, retain_graph=False)
    with pytest.raises(RuntimeError, match="freed"):
        minigan.grad(F.sum(g), x)
    # kept, the same second derivative is exp(x) + 2
    g, = minigan.grad(F.sum(F.exp(x) + x * x), x, create_graph=True)
    gg, = minigan.grad(F.sum(g), x)
    np.testing.assert_allclose(gg.numpy(), np.exp(x.numpy()) + 2, rtol=1e-12)


def test_each_leaf_grad_is_its_own_writable_array():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    F.sum(a + b).backward()
    assert a.grad is not b.grad and not np.shares_memory(a.grad.data, b.grad.data)
    for t in (a, b):
        assert t.grad.data.flags.writeable and t.grad.data.flags.c_contiguous
        t.grad.data *= 0.5  # in place, as clipping does
    np.testing.assert_array_equal(a.grad.numpy(), [0.5, 0.5])
    np.testing.assert_array_equal(b.grad.numpy(), [0.5, 0.5])


def test_the_callers_gradient_is_not_adopted_as_grad():
    a = leaf([1.0, 2.0])
    g = Tensor(np.array([3.0, 4.0]))
    (a + 0.0).backward(g)
    assert not np.shares_memory(a.grad.data, g.data)
    a.grad.data[...] = 0.0
    np.testing.assert_array_equal(g.numpy(), [3.0, 4.0])


def test_backward_on_a_leaf_sets_its_grad():
    x = leaf([1.0, 2.0])
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])
    x.backward(gradient=np.array([1.0, 1.0]))  # PyTorch's keyword; accumulates
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 5.0])
    s = leaf(2.0)
    s.backward()
    assert s.grad.item() == 1.0


def test_backward_inputs_fills_only_those_grads():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    F.sum(a * b).backward(inputs=[a])
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 4.0])
    assert b.grad is None


def test_grad_accepts_only_inputs_for_old_pytorch_code():
    x = leaf([1.0, 2.0])
    g, = minigan.grad(F.sum(x * x), [x], only_inputs=True)
    np.testing.assert_array_equal(g.numpy(), [2.0, 4.0])


def test_a_parameter_changed_in_place_before_backward_is_refused():
    w = minigan.nn.Parameter(np.array([1.0, 2.0]))
    y = F.sum(w * w * w)
    w.grad = Tensor(np.array([1.0, 1.0]))
    minigan.optim.SGD([w], lr=1.0).step()
    with pytest.raises(RuntimeError, match="changed in place"):
        minigan.grad(y, w)
    # a forward after the step is fine: 3 w^2 at the new w = [0, 1]
    g, = minigan.grad(F.sum(w * w * w), w)
    np.testing.assert_allclose(g.numpy(), [0.0, 3.0])


def test_an_add_does_not_need_its_inputs_so_a_step_between_is_allowed():
    w = minigan.nn.Parameter(np.array([1.0, 2.0]))
    y = F.sum(w + 1.0)
    w.grad = Tensor(np.array([1.0, 1.0]))
    minigan.optim.SGD([w], lr=1.0).step()
    g, = minigan.grad(y, w)  # PyTorch allows this too: Add saves nothing
    np.testing.assert_array_equal(g.numpy(), [1.0, 1.0])


# ----------------------------------------------------------------------------- Tensor API

def test_eq_and_ne_are_elementwise_and_hash_stays_identity():
    t = minigan.tensor([0.0, 1.0, 2.0])
    np.testing.assert_array_equal((t == 1.0).numpy(), [False, True, False])
    np.testing.assert_array_equal((t != minigan.tensor([0.0, 5.0, 2.0])).numpy(),
                                  [False, True, False])
    assert len({t, minigan.tensor([0.0, 1.0, 2.0])}) == 2
    assert t in [t]


def test_truth_value_is_ambiguous_for_many_elements():
    assert bool(minigan.tensor([3.0]) > 2)
    with pytest.raises(RuntimeError, match=r"shape \(2,\) is ambiguous"):
        bool(minigan.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="ambiguous"):
        _ = minigan.tensor([1.0, 2.0]) in [minigan.tensor([1.0, 2.0])]
    assert float(minigan.tensor(2.5)) == 2.5 and int(minigan.tensor([7])) == 7


def test_size_is_numpys_count_and_pytorchs_call():
    t = minigan.zeros(2, 3, 4)
    assert t.size == 24 and t.size + 1 == 25 and isinstance(t.size, int)
    assert t.size() == (2, 3, 4) and t.size(0) == 2 and t.size(-1) == 4
    assert t.numel() == 24 and t.dim() == 3
    with pytest.raises(IndexError, match=r"size\(3\).*\(2, 3, 4\)"):
        t.size(3)
    assert t.view(t.size(0), -1).shape == (2, 12)


def test_to_takes_a_dtype_first():
    t = minigan.tensor([1.0, 2.0])
    assert t.to(np.float64).dtype == np.float64
    assert t.to("float64").dtype == np.float64
    assert t.to("cpu").dtype == np.float32
    assert t.double().dtype == np.float64 and t.double().float().dtype == np.float32


def test_var_follows_pytorch_defaults():
    a = minigan.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(a.var(0).numpy(), [4.5, 4.5, 4.5])  # unbiased by default
    np.testing.assert_allclose(a.var(0, unbiased=False).numpy(), [2.25] * 3)
    np.testing.assert_allclose(a.var(dim=0, correction=0).numpy(), [2.25] * 3)
    np.testing.assert_allclose(a.std(1).numpy(), [1.0, 1.0])
    assert math.isnan(minigan.tensor([3.0]).var().item())  # n = 1: no degrees of freedom
    with pytest.raises(TypeError, match="not both"):
        a.var(0, unbiased=True, correction=1)
    with pytest.raises(TypeError, match="axis or dim"):
        a.sum(0, dim=1)


def test_max_with_dim_sends_the_gradient_to_the_chosen_index():
    x = leaf([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.numpy(), [3.0, 2.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    assert indices.dtype == np.int64
    F.sum(values).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])


def test_amax_splits_the_gradient_among_ties():
    x = leaf([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    F.sum(x.amax(1)).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0.5, 0.5], [1, 0, 0]])
    y = leaf([4.0, 4.0, 1.0, 4.0])
    m = y.max()
    assert m.item() == 4.0
    m.backward()
    np.testing.assert_allclose(y.grad.numpy(), [1 / 3, 1 / 3, 0, 1 / 3])


def test_clamp_passes_the_gradient_inside_the_bounds_inclusive():
    x = leaf([-2.0, -1.0, 0.0, 1.0, 2.0])
    y = x.clamp(-1.0, 1.0)
    np.testing.assert_array_equal(y.numpy(), [-1, -1, 0, 1, 1])
    F.sum(y).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 1, 1, 0])
    with pytest.raises(ValueError, match="min, max or both"):
        x.clamp()


def test_pow_at_a_zero_base_gives_pytorchs_zeros_not_nan():
    a, b = leaf([0.0, 0.0, 2.0]), leaf([2.0, 0.0, 3.0])
    ga, gb = minigan.grad(F.sum(a ** b), [a, b])
    np.testing.assert_allclose(ga.numpy(), [0, 0, 12])
    np.testing.assert_allclose(gb.numpy(), [0, 0, 8 * np.log(2)])
    t = leaf([1.0, 2.0])
    g, = minigan.grad(F.sum(0.0 ** t), t)
    np.testing.assert_array_equal(g.numpy(), [0, 0])
    z = leaf([0.0, 3.0])
    g, = minigan.grad(F.sum(z ** 0), z)
    np.testing.assert_array_equal(g.numpy(), [0, 0])


def test_softplus_gradient_is_one_past_the_threshold():
    x = leaf([3.0, 0.1])
    F.sum(F.softplus(x, beta=2.0, threshold=5.0)).backward()
    assert x.grad.numpy()[0] == 1.0
    np.testing.assert_allclose(x.grad.numpy()[1], 1 / (1 + np.exp(-0.2)), rtol=1e-12)


def test_conv_transpose2d_takes_groups_before_dilation_as_pytorch():
    x = minigan.randn(1, 2, 3, 3, dtype=np.float64)
    w = minigan.randn(2, 1, 3, 3, dtype=np.float64)
    a = F.conv_transpose2d(x, w, None, 1, 0, 0, 1, 2)  # groups=1, dilation=2
    assert a.shape == (1, 1, 7, 7)
    with pytest.raises(NotImplementedError, match="groups=2"):
        F.conv_transpose2d(x, w, None, 1, 0, 0, 2)
    with pytest.raises(NotImplementedError, match="groups=2"):
        F.conv2d(x, minigan.randn(1, 2, 3, 3, dtype=np.float64), None, 1, 0, 1, 2)


def test_inplace_flags_are_accepted_and_leave_the_input_alone():
    x = minigan.tensor([-1.0, 2.0])
    np.testing.assert_array_equal(F.relu(x, inplace=True).numpy(), [0, 2])
    np.testing.assert_allclose(F.leaky_relu(x, 0.2, True).numpy(), [-0.2, 2])
    np.testing.assert_array_equal(x.numpy(), [-1, 2])
    assert F.dropout(x, 0.5, False, True) is x


# ----------------------------------------------------------------------------- factories

def test_factories_follow_pytorchs_dtypes_and_shapes():
    assert minigan.zeros(2, 3).dtype == np.float32 and minigan.zeros((2, 3)).shape == (2, 3)
    assert minigan.ones(4, dtype=np.float64).dtype == np.float64
    assert minigan.full((2,), 7).dtype == np.int64 and minigan.full((2,), 7.0).dtype == np.float32
    assert minigan.full((2,), True).dtype == bool
    np.testing.assert_array_equal(minigan.arange(5).numpy(), np.arange(5))
    assert minigan.arange(5).dtype == np.int64
    np.testing.assert_allclose(minigan.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    assert minigan.arange(0, 1, 0.25).dtype == np.float32
    np.testing.assert_allclose(minigan.arange(1, 2.5, 0.5).numpy(), [1.0, 1.5, 2.0])
    np.testing.assert_allclose(minigan.linspace(0, 1, 5).numpy(), [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(minigan.eye(2, 3).numpy(), np.eye(2, 3))
    like = minigan.zeros(2, 3, dtype=np.float64)
    for f in (minigan.zeros_like, minigan.ones_like, minigan.randn_like, minigan.rand_like,
              minigan.empty_like):
        t = f(like)
        assert t.shape == (2, 3) and t.dtype == np.float64 and t.device == "cpu"
    assert minigan.full_like(like, 3).numpy().tolist() == [[3.0] * 3] * 2
    assert minigan.ones(2, requires_grad=True).requires_grad


def test_random_factories_are_seeded_and_in_range():
    minigan.manual_seed(3)
    a = minigan.randint(2, 9, (1000,))
    minigan.manual_seed(3)
    b = minigan.randint(2, 9, (1000,))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.dtype == np.int64 and a.numpy().min() == 2 and a.numpy().max() == 8
    assert minigan.randint(5, (3, 2)).shape == (3, 2)
    u = minigan.rand_like(minigan.zeros(10000)).numpy()
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.02


@pytest.mark.parametrize("call, match", [
    (lambda: minigan.zeros(2, -1), "non-negative int"),
    (lambda: minigan.arange(0, 5, 0), "non-zero"),
    (lambda: minigan.arange(5, 0, 1), "goes away"),
    (lambda: minigan.randint(3, 3, (2,)), "low < high"),
    (lambda: minigan.randint(3, 10), "the size a tuple"),
    (lambda: minigan.randn_like(minigan.zeros(2, dtype=np.int64)), "floating dtype"),
    (lambda: minigan.zeros_like(np.zeros(2)), "expected a Tensor"),
])
def test_factories_name_bad_arguments(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.parametrize("change", [
    lambda m: minigan.nn.init.normal_(m.weight, 0.0, 1.0),
    lambda m: m.load_state_dict(m.state_dict()),
    lambda m: minigan.optim.Adam(m.parameters()).step(),
], ids=["nn.init", "load_state_dict", "adam_step"])
def test_every_in_place_writer_of_parameters_marks_them_changed(change):
    """The input requires grad, so its gradient reads the weight's old values: a change is an
    error. Where the input needs no gradient the weight is never read, and the backward runs,
    as torch's does (it saves the weight only for the input's gradient)."""
    m = minigan.nn.Linear(2, 1).double()
    y = F.sum(m(Tensor(np.ones((1, 2)), requires_grad=True)))
    z = F.sum(m(Tensor(np.ones((1, 2)))))
    for p in m.parameters():
        p.grad = Tensor(np.ones(p.shape))
    change(m)
    with pytest.raises(RuntimeError, match=r"shape \(1, 2\) that Linear's backward needs"):
        y.backward()
    z.backward()


def test_init_of_a_raw_array_or_reading_fans_marks_nothing():
    m = minigan.nn.Linear(2, 1).double()
    y = F.sum(m(Tensor(np.ones((1, 2)))))
    minigan.nn.init._calculate_fan_in_and_fan_out(m.weight)
    y.backward()  # reading the shape is not a change
    assert m.weight.grad is not None


def test_a_leafs_gradient_has_its_dtype():
    w = minigan.nn.Parameter(np.ones(3, np.float32))
    F.sum(w * Tensor(np.ones(3))).backward()  # a float64 term
    assert w.grad.dtype == np.float32


@pytest.mark.parametrize("loss", [
    lambda x, t: F.binary_cross_entropy_with_logits(x, t),
    lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=np.array([2.0, 2.0])),
    lambda x, t: F.mse_loss(x, t),
    lambda x, t: F.l1_loss(x, t),
    lambda x, t: minigan.nn.BCEWithLogitsLoss(weight=np.array([1.0, 3.0]))(x, t),
])
def test_float64_targets_and_weights_keep_a_float32_loss(loss):
    x = minigan.tensor([0.3, -0.2], requires_grad=True)
    y = loss(x, np.array([1.0, 0.0]))
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32


def test_clamp_keeps_the_dtype_with_numpy_bounds():
    x = minigan.tensor([0.5, -2.0])
    assert x.clamp(np.float64(-1), np.float64(0.25)).dtype == np.float32


def test_comparing_with_none_is_by_identity():
    x = minigan.tensor([1.0, 2.0])
    assert (x == None) is False and (x != None) is True  # noqa: E711


def test_optimizer_zero_grad_in_place_leaves_shared_arrays_alone():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    shared = Tensor(np.array([5.0, 6.0]))
    a.grad = b.grad = shared
    minigan.optim.SGD([a, b], lr=0.1).zero_grad(set_to_none=False)
    np.testing.assert_array_equal(shared.numpy(), [5.0, 6.0])
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.0, 0.0])


def test_amax_of_a_zero_d_tensor():
    a = leaf(3.0)
    a.amax().backward()
    assert a.grad.item() == 1.0


def test_backward_on_a_leaf_copies_the_callers_gradient():
    x = leaf([1.0, 2.0])
    g = Tensor(np.array([3.0, 4.0]))
    x.backward(g)
    x.grad.data[...] = 0.0
    np.testing.assert_array_equal(g.numpy(), [3.0, 4.0])


def test_no_grad_on_a_generator_function_covers_its_body():
    @minigan.no_grad()
    def steps(x):
        for _ in range(2):
            got = yield (x * 2.0).requires_grad, minigan.is_grad_enabled()
            assert got in (None, "sent")
        return "done"

    x = leaf([1.0])
    gen = steps(x)
    assert next(gen) == (False, False)
    assert minigan.is_grad_enabled()  # outside the body the mode is the caller's
    assert gen.send("sent") == (False, False)
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"
    assert (x * 2.0).requires_grad


def test_grad_needs_no_graph_below_its_inputs():
    b = leaf([1.0, 2.0, 3.0])
    bb = F.exp(b)
    F.sum(bb).backward()  # frees Exp's graph
    xh = bb + 0.0  # a penalty's x_hat built on a tensor whose graph is gone
    g, = minigan.grad(F.sum(xh * xh), xh)
    np.testing.assert_allclose(g.numpy(), 2 * np.exp([1.0, 2.0, 3.0]), rtol=1e-12)


def test_a_view_of_another_leafs_gradient_is_copied():
    a, b = leaf([[1.0, 2.0], [3.0, 4.0]]), leaf([1.0, 2.0, 3.0, 4.0])
    F.sum((F.reshape(b, (2, 2)) + a) * 3.0).backward()  # b gets a reshaped view of a's array
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data[...] = 0.0
    np.testing.assert_array_equal(b.grad.numpy(), [3.0] * 4)


def test_max_with_dim_over_infinities():
    x = leaf([[-np.inf, 1.0, 2.0], [3.0, np.inf, 0.0]])
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.numpy(), [2.0, np.inf])
    np.testing.assert_array_equal(indices.numpy(), [2, 1])
    F.sum(x.min(1).values).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 0, 0], [0, 0, 1]])


def test_no_grad_generator_forwards_throw_and_close_into_the_body():
    seen = []

    @minigan.no_grad()
    def body():
        try:
            while True:
                try:
                    yield 1
                except ValueError:
                    seen.append(("caught", minigan.is_grad_enabled()))
        finally:
            seen.append(("finally", minigan.is_grad_enabled()))

    gen = body()
    next(gen)
    assert gen.throw(ValueError("x")) == 1
    gen.close()
    assert seen == [("caught", False), ("finally", False)]
    assert minigan.is_grad_enabled()


def test_the_mean_of_nothing_is_nan_as_in_pytorch():
    assert math.isnan(minigan.zeros(0).mean().item())
    assert math.isnan(F.mse_loss(minigan.zeros(0), minigan.zeros(0)).item())
    assert minigan.zeros(2, 0).mean(0).shape == (0,)


def test_top_level_flatten_starts_at_zero_as_torch_flatten():
    x = minigan.zeros(2, 3, 4)
    assert minigan.flatten(x).shape == (24,) and minigan.flatten(x, 1).shape == (2, 12)
    assert x.flatten().shape == (24,)


_LINSPACE_CASES = [(0, 1, 7), (-3.3, 2.9, 11), (0.1, 0.7, 100), (1e-3, 5.0, 33), (5, -5, 9),
                   (-24.060867244437567, 18.304761057790166, 965), (2, 2, 5), (0, 1, 1),
                   (0, 1, 0), (-10.112774540264333, 2.7100994692420715, 2493)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_linspace_rounds_each_value_once_like_a_fused_multiply_add(dtype):
    """Each value is start + i * step (or end - (steps - 1 - i) * step for the second half),
    with step rounded to the dtype, rounded once from its exact value: within half an ulp of
    it (integers: its truncation), as PyTorch's kernels compute it."""
    from fractions import Fraction
    for a, b, n in _LINSPACE_CASES:
        got = minigan.linspace(a, b, n, dtype=dtype).numpy()
        assert got.dtype == dtype and got.shape == (n,)
        if n == 0:
            continue
        ct = np.dtype(dtype).type if np.dtype(dtype).kind == "f" else None
        lo, hi = (ct(a), ct(b)) if ct else (int(a), int(b))
        if n == 1:
            assert got[0] == lo
            continue
        if ct:
            step = Fraction(float((hi - lo) / ct(n - 1)))
        else:  # torch: the step in float64
            step = Fraction((float(hi) - float(lo)) / (n - 1))
        assert got[0] == lo and got[-1] == hi
        for i in range(n):
            exact = (Fraction(float(lo)) + i * step if i < n // 2
                     else Fraction(float(hi)) - (n - 1 - i) * step)
            if ct:
                assert abs(Fraction(float(got[i])) - exact) <= Fraction(
                    float(np.spacing(np.abs(got[i])))) / 2, (a, b, n, i)
            else:
                assert got[i] == math.trunc(exact), (a, b, n, i)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_linspace_gives_pytorchs_bits(dtype):
    torch = pytest.importorskip("torch")
    for a, b, n in _LINSPACE_CASES:
        want = torch.linspace(a, b, n, dtype=getattr(torch, dtype)).numpy()
        np.testing.assert_array_equal(minigan.linspace(a, b, n, dtype=dtype).numpy(), want,
                                      err_msg=f"linspace({a}, {b}, {n}, {dtype})")
