"""torch-style custom Functions (``Function.apply`` with ``ctx``) and
``minigan.autograd.functional`` (jacobian, hessian, vjp, jvp, hvp, vhp): values, gradients
of every order, errors, GPU."""
import gc
import weakref

import numpy as np
import pytest

import minigan
from minigan import Function, Tensor, backend
from minigan.autograd import FunctionCtx, once_differentiable
from minigan.testing import GradientCheckError, check_backward, check_double_backward

AF = minigan.autograd.functional


def _t(a, requires_grad=False, device="cpu"):
    return minigan.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad,
                          device=device)


def _np(t):
    return backend.to_numpy(t.data)


class MyExp(Function):
    """y = k exp(x); gx = gy y (the saved output: differentiable again)."""

    @staticmethod
    def forward(ctx, x, k=2.0):
        y = x.exp() * k
        ctx.save_for_backward(y)
        ctx.k = k
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * y, None


class MulAdd(Function):
    """(x y, x + y): two outputs; saves its inputs."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y, x + y

    @staticmethod
    def backward(ctx, gp, gs):
        x, y = ctx.saved_tensors
        return gp * y + gs, gp * x + gs


class Cube(Function):
    """y = x^3 with setup_context (forward without ctx); gx = 3 x^2 gy."""

    @staticmethod
    def forward(x, scale=1.0):
        return x * x * x * scale

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, scale = inputs
        ctx.save_for_backward(x)
        ctx.scale = scale

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        return gy * 3 * x * x * ctx.scale, None


# ----------------------------------------------------------------------------- custom Functions

def test_custom_function_values_and_gradients(device):
    x0 = np.array([0.1, -0.4, 0.7])
    x = _t(x0, True, device)
    y = MyExp.apply(x)
    assert type(y.creator).__name__ == "MyExpBackward" and y.requires_grad
    np.testing.assert_allclose(_np(y), 2 * np.exp(x0))
    y.sum().backward()
    np.testing.assert_allclose(_np(x.grad), 2 * np.exp(x0))
    x.grad = None
    (MyExp.apply(x, 3.0) * _t([1.0, 2.0, 3.0], device=device)).sum().backward()  # k by position
    np.testing.assert_allclose(_np(x.grad), 3 * np.exp(x0) * [1, 2, 3])
    x.grad = None
    MyExp.apply(x, k=0.5).sum().backward()  # and by keyword (passed on to forward)
    np.testing.assert_allclose(_np(x.grad), 0.5 * np.exp(x0))


def test_custom_function_double_backward_through_saved_output(device):
    x0 = np.array([0.3, -1.2])
    x = _t(x0, True, device)
    (g,) = minigan.grad(MyExp.apply(x).sum(), x, create_graph=True)
    assert g.requires_grad
    (gg,) = minigan.grad((g * g).sum(), x)  # d/dx (2 e^x)^2 = 8 e^{2x}
    np.testing.assert_allclose(_np(gg), 8 * np.exp(2 * x0))


def test_custom_functions_pass_the_gradient_checkers():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    check_backward(lambda x: MyExp.apply(x, 1.5), [a])
    check_double_backward(lambda x: MyExp.apply(x, 1.5), [a])
    check_backward(lambda x, y: MulAdd.apply(x, y), [a, b], mode="jacobian")
    check_double_backward(lambda x, y: MulAdd.apply(x, y), [a, b])
    check_double_backward(lambda x: Cube.apply(x, 0.5), [a])


def test_a_wrong_custom_backward_fails_the_checker():
    class WrongExp(MyExp):
        @staticmethod
        def backward(ctx, gy):
            (y,) = ctx.saved_tensors
            return gy * y * 1.01, None

    with pytest.raises(GradientCheckError):
        check_backward(lambda x: WrongExp.apply(x), [np.array([0.2, 0.5])])


def test_multiple_outputs_and_materialized_grads():
    x, y = _t([1.0, 2.0], True), _t([3.0, -1.0], True)
    p, s = MulAdd.apply(x, y)
    p.sum().backward()  # s unused: its gradient reaches backward as zeros
    np.testing.assert_allclose(x.grad.numpy(), [3.0, -1.0])
    np.testing.assert_allclose(y.grad.numpy(), [1.0, 2.0])

    seen = []

    class Both(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            seen.append((ga is None, gb is None))
            return (ga * 2 if ga is not None else 0) + (gb * 3 if gb is not None else 0)

    x = _t([1.0, 2.0], True)
    a, b = Both.apply(x)
    b.sum().backward()
    assert seen == [(True, False)]
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_dropped_output_that_was_saved_is_remade_in_the_graph():
    class ExpAndNeg(Function):
        @staticmethod
        def forward(ctx, x):
            e = x.exp()
            ctx.save_for_backward(e)
            return -x, e

        @staticmethod
        def backward(ctx, gn, ge):
            (e,) = ctx.saved_tensors
            return -gn + ge * e

    x0 = np.array([0.5, -0.2])
    x = _t(x0, True)
    n = ExpAndNeg.apply(x)[0]  # e is dropped; its saved value must stay in the graph
    (g,) = minigan.grad((n * n).sum(), x, create_graph=True)  # 2x; backward reads e too
    np.testing.assert_allclose(g.numpy(), 2 * x0)
    (gg,) = minigan.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), [2.0, 2.0])
    x = _t(x0, True)
    _, e = ExpAndNeg.apply(x)
    (g,) = minigan.grad(e.sum(), x, create_graph=True)  # e^x, through the saved (kept) e
    (gg,) = minigan.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), np.exp(x0))


def test_non_differentiable_outputs():
    received = []

    class SignAndArgmax(Function):
        @staticmethod
        def forward(ctx, x):
            mask = (x > 0).to(dtype=x.dtype)
            ctx.mark_non_differentiable(mask)
            return x * 2, mask, x.argmax()

        @staticmethod
        def backward(ctx, gy, gmask, gidx):
            received.append((gmask.numpy().copy(), gidx.numpy().copy(), gidx.dtype))
            return gy * 2

    x = _t([1.0, -2.0, 3.0], True)
    y, mask, idx = SignAndArgmax.apply(x)
    assert y.requires_grad and not mask.requires_grad and not idx.requires_grad
    assert mask.creator is None and idx.creator is None
    assert idx.item() == 2
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 2.0])
    gmask, gidx, dtype = received[0]
    assert (gmask == 0).all() and gidx == 0 and dtype.kind == "i"


def test_needs_input_grad_and_none_for_non_tensor_arguments():
    seen = []

    class Scale(Function):
        @staticmethod
        def forward(ctx, x, w, k, name):
            seen.append(ctx.needs_input_grad)
            ctx.save_for_backward(x, w)
            ctx.k = k
            return x * w * k

        @staticmethod
        def backward(ctx, gy):
            x, w = ctx.saved_tensors
            gx = gy * w * ctx.k if ctx.needs_input_grad[0] else None
            gw = gy * x * ctx.k if ctx.needs_input_grad[1] else None
            return gx, gw, None, None

    x, w = _t([1.0, 2.0], True), _t([3.0, 4.0])
    Scale.apply(x, w, 2.0, "label").sum().backward()
    assert seen == [(True, False, False, False)]
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 8.0])
    assert w.grad is None


def test_setup_context_style():
    x = _t([1.0, -2.0], True)
    y = Cube.apply(x)  # scale's default is bound, as torch does
    np.testing.assert_allclose(y.numpy(), [1.0, -8.0])
    (g,) = minigan.grad(y.sum(), x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), [3.0, 12.0])
    (gg,) = minigan.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), [6.0, -12.0])
    x.grad = None
    Cube.apply(x, scale=2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])


def test_no_graph_without_grad_or_under_no_grad():
    y = MyExp.apply(_t([0.0, 1.0]))
    assert not y.requires_grad and y.creator is None
    x = _t([0.0, 1.0], True)
    with minigan.no_grad():
        y = MyExp.apply(x)
    assert not y.requires_grad and y.creator is None
    np.testing.assert_allclose(y.numpy(), 2 * np.exp([0.0, 1.0]))


def test_forward_runs_without_recording():
    modes = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, x):
            modes.append(minigan.is_grad_enabled())
            return x * 2

        @staticmethod
        def backward(ctx, gy):
            modes.append(minigan.is_grad_enabled())
            return gy * 2

    x = _t([1.0], True)
    Probe.apply(x).sum().backward()
    minigan.grad(Probe.apply(x).sum(), x, create_graph=True)
    assert modes == [False, False, False, True]  # backward: as the engine sets it


def test_an_input_returned_as_is_gets_a_new_output_tensor():
    class Identity(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, gy):
            return gy * 3

    x = _t([1.0, 2.0], True)
    y = Identity.apply(x)
    assert y is not x and x.is_leaf and y.creator is not None
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_saved_tensors_changed_in_place_are_refused():
    x = _t([1.0, 2.0], True)
    z = x * 1.0
    y = MulAdd.apply(z, _t([1.0, 1.0]))[0]
    with minigan.no_grad():
        z.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    # a saved output, changed in place
    y = MyExp.apply(x)
    with minigan.no_grad():
        y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    y = MyExp.apply(x)  # and without a change, the same calls go through
    y.sum().backward()


def test_saved_outputs_make_no_reference_cycle():
    """A saved output is held by index (the node holds its outputs weakly), so a graph that is
    dropped without a backward is freed at once, not by the cycle collector."""
    x = _t([0.5, 1.0], True)
    gc.disable()
    try:
        y = MyExp.apply(x)
        node, out = weakref.ref(y.creator), weakref.ref(y)
        del y
        assert node() is None and out() is None
    finally:
        gc.enable()


def test_second_backward_needs_retain_graph():
    x = _t([0.5], True)
    y = MyExp.apply(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([0.5]))
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_wrong_number_of_gradients_and_other_errors():
    class TooFew(Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, gy):
            return gy * 2

    class ExtraNones(TooFew):
        @staticmethod
        def backward(ctx, gy):
            return gy * 2, None, None, None

    class GradForNumber(TooFew):
        @staticmethod
        def backward(ctx, gy):
            return gy * 2, gy

    class WrongShape(TooFew):
        @staticmethod
        def backward(ctx, gy):
            return gy[:1], None

    class Broadcast(TooFew):
        @staticmethod
        def backward(ctx, gy):  # a (2, 3) gradient for a (1, 3) input is summed to it
            return (gy * 2).expand(2, 3), None

    class NotATensor(TooFew):
        @staticmethod
        def backward(ctx, gy):
            return gy.numpy(), None

    x = _t(np.ones((2, 3)), True)
    with pytest.raises(RuntimeError, match=r"function TooFewBackward returned an incorrect "
                                           r"number of gradients \(expected 2, got 1\)"):
        TooFew.apply(x, 2.0).sum().backward()
    ExtraNones.apply(x, 2.0).sum().backward()  # extra Nones are allowed, as in torch
    np.testing.assert_allclose(x.grad.numpy(), 2.0)
    with pytest.raises(RuntimeError, match="returned a gradient different than None at "
                                           "position 2, but the corresponding forward input "
                                           "was not a Variable"):
        GradForNumber.apply(x, 2.0).sum().backward()
    with pytest.raises(RuntimeError, match=r"Function WrongShapeBackward returned an invalid "
                                           r"gradient at index 0 - got \[1, 3\] but expected "
                                           r"shape compatible with \[2, 3\]"):
        WrongShape.apply(x, 2.0).sum().backward()
    row = _t(np.ones((1, 3)), True)
    Broadcast.apply(row, 2.0).sum().backward()
    np.testing.assert_allclose(row.grad.numpy(), [[4.0, 4.0, 4.0]])
    with pytest.raises(TypeError, match="expected a Tensor or None"):
        NotATensor.apply(x, 2.0).sum().backward()

    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    with pytest.raises(NotImplementedError, match="implement the backward"):
        NoBackward.apply(x).sum().backward()

    class Dirty(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_dirty(x)
            return x

    with pytest.raises(RuntimeError, match="mark_dirty"):
        Dirty.apply(x)

    class SavesANumber(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3.0)
            return x

    with pytest.raises(TypeError, match="argument 1 is of type float"):
        SavesANumber.apply(x)


def test_once_differentiable():
    class ArrayExp(Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        @once_differentiable
        def backward(ctx, gy):
            assert not minigan.is_grad_enabled()
            (y,) = ctx.saved_tensors
            return Tensor(gy.data * y.data)  # array code: not differentiable again

    x = _t([0.1, 0.2], True)
    ArrayExp.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.1, 0.2]))
    (g,) = minigan.grad(ArrayExp.apply(x).sum(), x, create_graph=True)  # first order: fine
    np.testing.assert_allclose(g.numpy(), np.exp([0.1, 0.2]))
    assert g.requires_grad  # so that differentiating it again cannot silently give zero
    with pytest.raises(RuntimeError, match="differentiate twice a function that was marked "
                                           "with @once_differentiable"):
        minigan.grad(g.sum(), x)
    assert minigan.autograd.function.once_differentiable is once_differentiable
    assert minigan.autograd.function.Function is Function


def test_engine_functions_are_unchanged():
    class Square(Function):  # the engine's own contract: instance methods on arrays
        def forward(self, x):
            return x * x

        def backward(self, gy):
            return 2 * gy * self.inputs[0]

    assert Square._node_class is None and MyExp._node_class is not None
    x = _t([3.0], True)
    Square()(x).backward()
    assert x.grad.item() == 6.0
    x.grad = None
    Square.apply(x).backward()  # apply on an engine Function: cls()(*args)
    assert x.grad.item() == 6.0
    assert isinstance(FunctionCtx(), FunctionCtx)


def test_custom_function_hooks_and_inputs_grad():
    x = _t([0.0, 1.0], True)
    y = MyExp.apply(x)
    y.register_hook(lambda g: g * 10)
    (g,) = minigan.grad(y.sum(), x)
    np.testing.assert_allclose(g.numpy(), 20 * np.exp([0.0, 1.0]))
    assert x.grad is None


# ----------------------------------------------------------------------------- functional

A = np.array([[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]])


def _fd_jacobian(f, x0, eps=1e-6):
    """Central differences: d f(x).flat / d x.flat, shaped f's shape + x's shape."""
    y0 = f(x0)
    jac = np.zeros((y0.size, x0.size))
    for j in range(x0.size):
        d = np.zeros(x0.size)
        d[j] = eps
        d = d.reshape(x0.shape)
        jac[:, j] = ((f(x0 + d) - f(x0 - d)) / (2 * eps)).ravel()
    return jac.reshape(y0.shape + x0.shape)


def _smooth(x):  # R^3 -> R^2, nonlinear
    return (minigan.tensor(A, device=x.device) @ x).tanh() * x[:2]


def _smooth_np(x):
    return np.tanh(A @ x) * x[:2]


def test_autograd_functional_is_reachable():
    from minigan.autograd import functional
    assert functional is minigan.autograd.functional
    assert {"jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"} <= set(dir(functional))
    with pytest.raises(AttributeError):
        minigan.autograd.no_such_name


def test_jacobian_of_a_linear_map_and_structures():
    x = _t([1.0, 2.0, 3.0])
    J = AF.jacobian(lambda v: minigan.tensor(A) @ v, x)
    assert isinstance(J, Tensor) and J.shape == (2, 3) and not J.requires_grad
    np.testing.assert_allclose(J.numpy(), A)
    y = _t([[1.0, -1.0]])
    out = AF.jacobian(lambda a, b: (a * 2, (a[:2] * b).sum()), (x, y))
    assert isinstance(out, tuple) and len(out) == 2 and all(isinstance(r, tuple) for r in out)
    assert [[j.shape for j in r] for r in out] == [[(3, 3), (3, 1, 2)], [(3,), (1, 2)]]
    np.testing.assert_allclose(out[0][0].numpy(), 2 * np.eye(3))
    np.testing.assert_allclose(out[0][1].numpy(), 0)  # unused: zeros
    np.testing.assert_allclose(out[1][0].numpy(), [1.0, -1.0, 0.0])
    np.testing.assert_allclose(out[1][1].numpy(), [[1.0, 2.0]])
    single_in = AF.jacobian(lambda a: (a * 2, a.sum()), x)
    assert isinstance(single_in, tuple) and single_in[1].shape == (3,)
    single_out = AF.jacobian(lambda a, b: (a[:2] * b).sum(), (x, y))
    assert isinstance(single_out, tuple) and single_out[1].shape == (1, 2)


def test_jacobian_matches_finite_differences_both_strategies(device):
    x0 = np.array([0.3, -0.7, 0.2])
    x = _t(x0, device=device)
    expected = _fd_jacobian(_smooth_np, x0)
    J = AF.jacobian(_smooth, x)
    assert J.device == device
    np.testing.assert_allclose(_np(J), expected, atol=1e-8)
    Jf = AF.jacobian(_smooth, x, vectorize=True, strategy="forward-mode")
    np.testing.assert_allclose(_np(Jf), expected, atol=1e-8)
    np.testing.assert_allclose(_np(AF.jacobian(_smooth, x, vectorize=True)), expected, atol=1e-8)


def test_jacobian_create_graph_is_differentiable():
    x0 = np.array([0.5, -1.0])
    x = _t(x0, True)
    J = AF.jacobian(lambda v: v ** 3, x, create_graph=True)  # diag(3 x^2)
    assert J.requires_grad
    (g,) = minigan.grad(J.sum(), x)  # d/dx sum 3x^2 = 6x
    np.testing.assert_allclose(g.numpy(), 6 * x0)
    assert not AF.jacobian(lambda v: v ** 3, x).requires_grad


def test_jacobian_errors():
    x = _t([1.0, 2.0])
    with pytest.raises(RuntimeError, match="output 0 of the function does not depend on "
                                           "input 1"):
        AF.jacobian(lambda a, b: a * 2, (x, _t([1.0])), strict=True)
    with pytest.raises(RuntimeError, match="does not require gradients"):
        AF.jacobian(lambda a: _t([1.0]), x, strict=True)
    with pytest.raises(NotImplementedError, match="vectorize=True"):
        AF.jacobian(lambda a: a, x, strategy="forward-mode")
    with pytest.raises(NotImplementedError, match="create_graph=True"):
        AF.jacobian(lambda a: a, x, create_graph=True, strategy="forward-mode", vectorize=True)
    with pytest.raises(AssertionError, match="strategy"):
        AF.jacobian(lambda a: a, x, strategy="sideways")
    with pytest.raises(TypeError, match="should be a Tensor or a tuple of Tensors"):
        AF.jacobian(lambda a: a, [x])
    np.testing.assert_allclose(AF.jacobian(lambda a: _t([1.0]), x).numpy(), [[0.0, 0.0]])


def _quad(x):
    """x^T B x + sum x^3, with an asymmetric B: H = B + B^T + diag(6x)."""
    B = minigan.tensor(np.array([[1.0, 2.0], [0.0, 3.0]]), device=x.device)
    return (x * (B @ x)).sum() + (x ** 3).sum()


def _quad_hessian(x0):
    B = np.array([[1.0, 2.0], [0.0, 3.0]])
    return B + B.T + np.diag(6 * x0)


def test_hessian(device):
    x0 = np.array([0.5, -2.0])
    H = AF.hessian(_quad, _t(x0, device=device))
    assert isinstance(H, Tensor) and H.shape == (2, 2) and H.device == device
    np.testing.assert_allclose(_np(H), _quad_hessian(x0), atol=1e-12)
    Hf = AF.hessian(_quad, _t(x0, device=device), vectorize=True,
                    outer_jacobian_strategy="forward-mode")
    np.testing.assert_allclose(_np(Hf), _quad_hessian(x0), atol=1e-12)


def test_hessian_of_two_inputs_against_finite_differences():
    a0, b0 = np.array([0.3, -0.5]), np.array([[0.7]])

    def f(a, b):
        return (a.sin() * b.reshape(-1)).sum() * b.sum() + (a ** 2).sum()

    H = AF.hessian(f, (_t(a0), _t(b0)))
    assert [[h.shape for h in row] for row in H] == [[(2, 2), (2, 1, 1)], [(1, 1, 2), (1, 1, 1, 1)]]

    def grad_np(a, b):
        a_, b_ = _t(a, True), _t(b, True)
        return [g.numpy() for g in minigan.grad(f(a_, b_), [a_, b_])]

    fd_aa = _fd_jacobian(lambda a: grad_np(a, b0)[0], a0)
    fd_ab = _fd_jacobian(lambda b: grad_np(a0, b)[0], b0)
    fd_bb = _fd_jacobian(lambda b: grad_np(a0, b)[1], b0)
    np.testing.assert_allclose(H[0][0].numpy(), fd_aa, atol=1e-7)
    np.testing.assert_allclose(H[0][1].numpy(), fd_ab, atol=1e-7)
    np.testing.assert_allclose(H[1][0].numpy(), fd_ab.reshape(2, 1, 1).transpose(1, 2, 0),
                               atol=1e-7)
    np.testing.assert_allclose(H[1][1].numpy(), fd_bb, atol=1e-7)


def test_hessian_errors():
    x = _t([1.0, 2.0])
    with pytest.raises(RuntimeError, match="has to return one Tensor, not a tuple"):
        AF.hessian(lambda a: (a.sum(), a.sum()), x)
    with pytest.raises(RuntimeError, match="has to hold exactly one element"):
        AF.hessian(lambda a: a * 2, x)
    np.testing.assert_allclose(AF.hessian(lambda a: a.sum(), x).numpy(), 0)  # linear


def test_vjp(device):
    x0, v0 = np.array([0.3, -0.7, 0.2]), np.array([1.5, -2.0])
    out, vj = AF.vjp(_smooth, _t(x0, device=device), _t(v0, device=device))
    np.testing.assert_allclose(_np(out), _smooth_np(x0))
    np.testing.assert_allclose(_np(vj), v0 @ _fd_jacobian(_smooth_np, x0), atol=1e-8)
    out, g = AF.vjp(_quad, _t([0.5, -2.0], device=device))  # v may be omitted for a scalar
    assert out.shape == () and g.shape == (2,)
    assert not out.requires_grad and not g.requires_grad  # cut from the graph (no create_graph)


def test_vjp_structures_and_errors():
    x, y = _t([1.0, 2.0]), _t([3.0])
    outs, vjps = AF.vjp(lambda a, b: (a * b, b * 2), (x, y), (_t([1.0, 1.0]), _t([1.0])))
    assert isinstance(outs, tuple) and isinstance(vjps, tuple)
    np.testing.assert_allclose(vjps[0].numpy(), [3.0, 3.0])
    np.testing.assert_allclose(vjps[1].numpy(), [5.0])
    with pytest.raises(RuntimeError, match="v can only be None"):
        AF.vjp(lambda a: a * 2, x)
    with pytest.raises(RuntimeError, match="v has the wrong shape"):
        AF.vjp(lambda a: a * 2, x, _t([1.0]))
    with pytest.raises(RuntimeError, match="v has the wrong number of Tensors"):
        AF.vjp(lambda a: (a, a), x, (_t([1.0, 1.0]),))
    _, vj = AF.vjp(lambda a, b: b * 2, (x, y), _t([1.0]))
    np.testing.assert_allclose(vj[0].numpy(), [0.0, 0.0])  # independent of a: zeros
    with pytest.raises(RuntimeError, match="does not depend on input 0; strict mode forbids"):
        AF.vjp(lambda a, b: b * 2, (x, y), _t([1.0]), strict=True)


def test_jvp_is_the_jacobian_times_v(device):
    x0, v0 = np.array([0.3, -0.7, 0.2]), np.array([0.4, 1.0, -2.0])
    out, jv = AF.jvp(_smooth, _t(x0, device=device), _t(v0, device=device))
    np.testing.assert_allclose(_np(out), _smooth_np(x0))
    eps = 1e-6
    fd = (_smooth_np(x0 + eps * v0) - _smooth_np(x0 - eps * v0)) / (2 * eps)
    np.testing.assert_allclose(_np(jv), fd, atol=1e-8)
    # through a custom Function (its backward, differentiated again, gives the JVP)
    out, jv = AF.jvp(lambda a: MyExp.apply(a, 3.0), _t(x0, device=device),
                     _t(v0, device=device))
    np.testing.assert_allclose(_np(jv), 3 * np.exp(x0) * v0)


def test_jvp_structures_and_create_graph():
    x, y = _t([1.0, 2.0], True), _t([3.0])
    outs, jvps = AF.jvp(lambda a, b: (a * b, (a * a).sum()), (x, y), (_t([1.0, 0.0]), _t([1.0])))
    np.testing.assert_allclose(jvps[0].numpy(), [3.0 + 1.0, 2.0])  # b v_a + a v_b
    np.testing.assert_allclose(jvps[1].numpy(), 2.0)  # 2 a . v_a
    assert not jvps[0].requires_grad and not outs[0].requires_grad
    _, jv = AF.jvp(lambda a: (a ** 3).sum(), x, _t([1.0, 1.0]), create_graph=True)
    assert jv.requires_grad  # 3 sum a^2 v; d/da = 6 a v
    (g,) = minigan.grad(jv, x)
    np.testing.assert_allclose(g.numpy(), [6.0, 12.0])
    out, jv = AF.jvp(lambda a: a * 2, _t([5.0]))  # v may be omitted for one element
    assert jv.item() == 2.0
    with pytest.raises(RuntimeError, match="v can only be None"):
        AF.jvp(lambda a: a * 2, x)


def test_hvp_and_vhp(device):
    x0, v0 = np.array([0.5, -2.0]), np.array([1.0, 3.0])
    H = _quad_hessian(x0)
    x, v = _t(x0, device=device), _t(v0, device=device)
    out, hv = AF.hvp(_quad, x, v)
    np.testing.assert_allclose(_np(out), 0.5 * 0.5 + 2 * 0.5 * -2 * 1 + 3 * 4 + 0.125 - 8)
    np.testing.assert_allclose(_np(hv), H @ v0, atol=1e-12)
    out, vh = AF.vhp(_quad, x, v)
    np.testing.assert_allclose(_np(vh), v0 @ H, atol=1e-12)
    assert hv.device == device and vh.device == device


def test_hvp_vhp_tuples_create_graph_and_errors():
    a, b = _t([1.0, 2.0], True), _t([0.5], True)

    def f(a, b):
        return (a * a).sum() * b.sum()

    va, vb = _t([1.0, -1.0]), _t([2.0])
    # H = [[2b I, 2a], [2a^T, 0]]
    _, (ha, hb) = AF.hvp(f, (a, b), (va, vb))
    np.testing.assert_allclose(ha.numpy(), 2 * 0.5 * va.numpy() + 2 * a.numpy() * 2.0)
    np.testing.assert_allclose(hb.numpy(), [2 * (1.0 * 1 + 2.0 * -1)])
    _, (vha, vhb) = AF.vhp(f, (a, b), (va, vb))
    np.testing.assert_allclose(vha.numpy(), ha.numpy())
    np.testing.assert_allclose(vhb.numpy(), hb.numpy())
    _, hv = AF.hvp(lambda x: (x ** 3).sum(), a, va, create_graph=True)  # 6 x v
    assert hv.requires_grad
    (g,) = minigan.grad(hv.sum(), a)
    np.testing.assert_allclose(g.numpy(), 6 * va.numpy())
    with pytest.raises(RuntimeError, match="has to return one Tensor, not a tuple"):
        AF.hvp(lambda x: (x.sum(), x.sum()), a, va)
    with pytest.raises(RuntimeError, match="has to hold exactly one element"):
        AF.vhp(lambda x: x * 2, a, va)
    with pytest.raises(RuntimeError, match="v can only be None"):
        AF.hvp(lambda x: x.sum(), a)


# ----------------------------------------------------------------------------- against torch

def _to_torch(torch, t):
    return torch.tensor(t.numpy())


def _compare(torch, mine, theirs, path="result"):
    if isinstance(theirs, (tuple, list)):
        assert type(mine) is type(theirs) and len(mine) == len(theirs), path
        for i, (m, t) in enumerate(zip(mine, theirs)):
            _compare(torch, m, t, f"{path}[{i}]")
        return
    assert isinstance(mine, Tensor), path
    assert mine.shape == tuple(theirs.shape), path
    np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), atol=1e-10, err_msg=path)
    assert mine.requires_grad == theirs.requires_grad, path


def test_functional_matches_torch():
    torch = pytest.importorskip("torch")
    TF = torch.autograd.functional
    rng = np.random.default_rng(1)
    W = rng.standard_normal((3, 4))

    def f(lib, x, y):
        return (lib.tensor(W) @ x).tanh() * y, (x * x).sum()

    def g(lib, x, y):
        a, b = f(lib, x, y)
        return (a ** 2).sum() * b

    x, y = _t(rng.standard_normal(4)), _t(rng.standard_normal(3))
    xr = _t(rng.standard_normal(4), True)
    v = (_t(rng.standard_normal(4)), _t(rng.standard_normal(3)))
    u = (_t(rng.standard_normal(3)), _t(1.5))
    tx, ty, txr = _to_torch(torch, x), _to_torch(torch, y), _to_torch(torch, xr)
    txr.requires_grad_(True)
    tv, tu = tuple(_to_torch(torch, a) for a in v), tuple(_to_torch(torch, a) for a in u)

    def both(call):  # call(lib, api, x, y, xr, v, u)
        return (call(minigan, AF, x, y, xr, v, u), call(torch, TF, tx, ty, txr, tv, tu))

    cases = [
        lambda L, F, x, y, xr, v, u: F.jacobian(lambda a, b: f(L, a, b), (x, y)),
        lambda L, F, x, y, xr, v, u: F.jacobian(lambda a: f(L, a, y)[0], x),
        lambda L, F, x, y, xr, v, u: F.jacobian(lambda a: f(L, a, y), x),
        lambda L, F, x, y, xr, v, u: F.jacobian(lambda a, b: f(L, a, b)[1], (x, y)),
        lambda L, F, x, y, xr, v, u: F.jacobian(lambda a, b: f(L, a, b), (x, y),
                                                create_graph=True),
        lambda L, F, x, y, xr, v, u: F.jacobian(lambda a: f(L, a, y)[0], xr, create_graph=True),
        lambda L, F, x, y, xr, v, u: F.hessian(lambda a, b: g(L, a, b), (x, y)),
        lambda L, F, x, y, xr, v, u: F.hessian(lambda a: g(L, a, y), x),
        lambda L, F, x, y, xr, v, u: F.vhp(lambda a, b: g(L, a, b), (x, y), v),
        lambda L, F, x, y, xr, v, u: F.hvp(lambda a, b: g(L, a, b), (x, y), v),
        lambda L, F, x, y, xr, v, u: F.hvp(lambda a: g(L, a, y), xr, v[0], create_graph=True),
        lambda L, F, x, y, xr, v, u: F.jvp(lambda a, b: f(L, a, b), (x, y), v),
        lambda L, F, x, y, xr, v, u: F.jvp(lambda a: f(L, a, y)[0], x, v[0]),
        lambda L, F, x, y, xr, v, u: F.jvp(lambda a: f(L, a, y)[0], xr, v[0],
                                           create_graph=True),
        lambda L, F, x, y, xr, v, u: F.vjp(lambda a, b: f(L, a, b), (x, y), u),
        lambda L, F, x, y, xr, v, u: F.vjp(lambda a: g(L, a, y), x),
        lambda L, F, x, y, xr, v, u: F.vjp(lambda a: f(L, a, y)[0], xr, u[0],
                                           create_graph=True),
        lambda L, F, x, y, xr, v, u: F.jacobian(lambda a, b: a * 2, (x, y)),
        lambda L, F, x, y, xr, v, u: F.hvp(lambda a: a.sum(), x, v[0]),
    ]
    for i, case in enumerate(cases):
        mine, theirs = both(case)
        _compare(torch, mine, theirs, path=f"case {i}")
    # (torch's forward-over-reverse Hessian takes seconds to compile: test_hessian covers
    # that strategy against hand-computed values)


def test_custom_function_matches_torch():
    torch = pytest.importorskip("torch")

    def make(base):
        class SoftClip(base):
            """y = x / (1 + |x| c), two outputs (y, x^2) and a non-tensor arg c."""

            @staticmethod
            def forward(ctx, x, w, c):
                d = 1 + x.abs() * c
                y = x / d * w
                ctx.save_for_backward(x, w, y)
                ctx.c = c
                return y, x * x

            @staticmethod
            def backward(ctx, gy, gsq):
                x, w, y = ctx.saved_tensors
                d = 1 + x.abs() * ctx.c
                gx = gy * w / (d * d) + gsq * 2 * x
                gw = (gy * y / w).sum(0)
                return gx, gw, None
        return SoftClip

    mine, theirs = make(Function), make(torch.autograd.Function)
    rng = np.random.default_rng(2)
    x0, w0 = rng.standard_normal((3, 2)), rng.standard_normal(2) + 3
    x, w = _t(x0, True), _t(w0, True)
    tx, tw = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    y, sq = mine.apply(x, w, 0.7)
    ty, tsq = theirs.apply(tx, tw, 0.7)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy())
    loss = (y * y).sum() + (sq * y).sum()
    tloss = (ty * ty).sum() + (tsq * ty).sum()
    gx, gw = minigan.grad(loss, [x, w], create_graph=True)
    tgx, tgw = torch.autograd.grad(tloss, [tx, tw], create_graph=True)
    np.testing.assert_allclose(gx.numpy(), tgx.detach().numpy())
    np.testing.assert_allclose(gw.numpy(), tgw.detach().numpy())
    ggx, ggw = minigan.grad((gx * gx).sum() + gw.sum(), [x, w])
    tggx, tggw = torch.autograd.grad((tgx * tgx).sum() + tgw.sum(), [tx, tw])
    np.testing.assert_allclose(ggx.numpy(), tggx.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ggw.numpy(), tggw.numpy(), rtol=1e-10)
