"""The engine core: graph building, gradients of every order, errors, memory."""
import gc
import re
import tracemalloc
import types

import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import Function, Tensor, backend
from minigan.testing import GradientCheckError, check_backward, check_double_backward


def test_tensor_defaults_and_attributes():
    t = minigan.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert t.dtype == np.float32 and t.shape == (2, 2) and t.device == "cpu"
    assert t.is_leaf and t.grad is None
    assert minigan.tensor([1, 2]).dtype == np.int64
    assert minigan.tensor(np.ones(3)).dtype == np.float64  # explicit arrays keep their dtype
    assert minigan.tensor([1.0], dtype="float64").dtype == np.float64
    assert (t * 2.0).dtype == np.float32 and (2 * t).dtype == np.float32
    assert t.detach().requires_grad is False
    assert isinstance(t.numpy(), np.ndarray)
    assert minigan.tensor(3.5).item() == 3.5
    with pytest.raises(ValueError, match="one element"):
        t.item()
    with pytest.raises(TypeError, match="floating-point"):
        minigan.tensor([1, 2], requires_grad=True)


def test_function_outputs_are_plain_tensors_whatever_the_inputs():
    """Function.__call__ wraps outputs itself (no Tensor() checks on its fast path): they must
    still be Tensors with every attribute set, 0-d NumPy scalars become arrays, numbers and
    arrays among the inputs become constants, and a recorded non-float output is refused as
    Tensor() refuses it."""

    class Pair(Function):
        def forward(self, a, b):
            return a * b, (a + b).sum()  # the second: a NumPy scalar for 1-d inputs

        def backward(self, g0, g1):
            a, b = self.inputs
            return g0 * b + g1, g0 * a + g1

    x = minigan.tensor([1.0, 2.0], requires_grad=True, dtype="float64")
    for other in (minigan.tensor([3.0, 4.0], dtype="float64"), np.array([3.0, 4.0]), 3.0):
        y, total = Pair()(x, other)
        for t in (y, total):
            assert type(t) is Tensor and type(t.data) is np.ndarray
            assert t.requires_grad and t.grad is None and t.creator is not None
            assert t.generation == x.generation + 1 and t._modified_at == 0
        assert total.shape == () and isinstance(Pair()(x.detach(), other)[0], Tensor)
        assert not Pair()(x.detach(), other)[0].requires_grad  # nothing to record
        (y.sum() + total).backward()
    # d/dx of sum(x * o) + sum(x + o) is o + 1, for o = [3, 4] twice and then 3
    np.testing.assert_allclose(x.grad.numpy(), [4 + 4 + 4, 5 + 5 + 4])

    class ToInt(Function):
        def forward(self, a):
            return (a > 0).astype(np.int64)

    with pytest.raises(TypeError, match="floating-point"):
        ToInt()(x)
    assert ToInt()(x.detach()).dtype == np.int64  # not recorded: an int output is fine


def test_backward_accumulates_into_leaves():
    x = minigan.tensor([1.0, -2.0, 3.0], requires_grad=True, dtype="float64")
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0, 6.0])
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, -1.0, 9.0])


def _twin_backwards(build, monkeypatch):
    """Run ``build()`` (which returns the loss and the tensors to read) twice: with gradients
    summed in place where the engine proves it may, and with every sum a new array."""
    from minigan import autograd
    owned = autograd._OWNED[0]
    out = []
    for mode in (owned, None):
        monkeypatch.setattr(autograd, "_OWNED", [mode])
        loss, tensors = build()
        loss.backward()
        out.append([t.grad.numpy().copy() for t in tensors])
    return out


def test_gradient_sums_in_place_change_no_value(monkeypatch):
    from minigan import autograd
    if autograd._OWNED[0] is None:
        pytest.skip("this interpreter's reference counts cannot prove ownership")
    def build():
        rng = np.random.default_rng(0)
        xs = rng.standard_normal((5, 4))
        w = minigan.tensor(rng.standard_normal((4, 3)), requires_grad=True)
        b = minigan.tensor(rng.standard_normal(3), requires_grad=True)
        x = minigan.tensor(xs, requires_grad=True)
        h = F.matmul(x, w) + b  # a non-leaf used three times: its table entry is summed
        loss = (F.leaky_relu(h, 0.2) * 2.0).sum() + (h * h).sum() + F.tanh(h).mean()
        loss = loss + (F.matmul(x * 3.0, w) + b).sum()  # w, b, x: a second use each
        return loss, [w, b, x]

    done = []
    real = autograd._add_in_place
    monkeypatch.setattr(autograd, "_add_in_place", lambda a, b: done.append(real(a, b))
                        or done[-1])
    in_place, fresh = _twin_backwards(build, monkeypatch)
    assert sum(done) >= 3  # summed in place in the first run (a view, say, is not)
    for a, b in zip(in_place, fresh):
        np.testing.assert_array_equal(a, b)


def test_a_leaf_gradient_nobody_else_holds_is_summed_in_place():
    from minigan import autograd
    if autograd._OWNED[0] is None:
        pytest.skip("this interpreter's reference counts cannot prove ownership")
    w = minigan.tensor(np.ones((3, 2)), requires_grad=True, dtype="float64")
    (w * 2.0).sum().backward()
    ids = id(w.grad), id(w.grad.data)  # ids only: holding them holds no reference
    (w * 3.0).sum().backward()
    assert (id(w.grad), id(w.grad.data)) == ids  # the same array: no new one was allocated
    np.testing.assert_array_equal(w.grad.numpy(), np.full((3, 2), 5.0))


@pytest.mark.parametrize("held", ["tensor", "array", "view"])
def test_a_gradient_someone_holds_is_never_changed_in_place(held):
    w = minigan.tensor(np.ones((3, 2)), requires_grad=True, dtype="float64")
    (w * 2.0).sum().backward()
    keep = {"tensor": lambda: w.grad, "array": lambda: w.grad.data,
            "view": lambda: w.grad.data[1:]}[held]()
    before = np.array(keep.numpy() if held == "tensor" else keep)
    (w * 3.0).sum().backward()
    after = keep.numpy() if held == "tensor" else keep
    np.testing.assert_array_equal(after, before)  # what the caller holds did not change
    np.testing.assert_array_equal(w.grad.numpy(), np.full((3, 2), 5.0))


def test_a_gradient_array_shared_between_paths_is_not_summed_into():
    # Add's backward hands its gradient to both inputs. Built last, it runs before h1's other
    # use (ties go to the later function), so that use's gradient is summed into h1's entry
    # while the other input (a leaf's .grad, or a pending entry) still holds the same gradient
    ones = np.ones(4)
    x = minigan.tensor(ones, requires_grad=True, dtype="float64")
    b = minigan.tensor(ones, requires_grad=True, dtype="float64")
    h1 = x * 2.0
    ((h1 * 5.0).sum() + ((h1 + b) * 1.5).sum()).backward()  # * 1.5: a gradient of its own,
    np.testing.assert_array_equal(b.grad.numpy(), 1.5 * ones)  # not a broadcast view
    np.testing.assert_array_equal(x.grad.numpy(), 13.0 * ones)

    y = minigan.tensor(ones, requires_grad=True, dtype="float64")
    x.grad = None
    h1, h2 = x * 2.0, y * 3.0
    ((h1 * 5.0).sum() + ((h1 + h2) * 1.5).sum()).backward()
    np.testing.assert_array_equal(y.grad.numpy(), 4.5 * ones)
    np.testing.assert_array_equal(x.grad.numpy(), 13.0 * ones)


def test_ndarray_on_the_left_defers_to_tensor():
    x = minigan.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0], dtype=np.float32) * x
    assert isinstance(y, Tensor) and y.requires_grad


def test_diamond_graph_gradients_add_up():
    x = minigan.tensor(2.0, requires_grad=True, dtype="float64")
    a = x * x
    y = a * a + a  # dy/dx = (2a + 1) * 2x = 9 * 4 = 36
    (gx,) = minigan.grad(y, x)
    assert gx.item() == pytest.approx(36.0)


def test_grad_leaves_dot_grad_alone_and_prunes():
    w = minigan.tensor(np.ones((3, 2)), requires_grad=True)
    x = minigan.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = F.matmul(x, w).sum()
    (gx,) = minigan.grad(y, x)
    assert w.grad is None and x.grad is None
    np.testing.assert_allclose(gx.numpy(), np.full((2, 3), 2.0))


def test_grad_through_an_intermediate_input_keeps_every_path():
    w = minigan.tensor(3.0, requires_grad=True, dtype="float64")
    h = w * w
    y = h * w  # w^3: dy/dw = 27 in total, dy/dh = w = 3
    gh, gw = minigan.grad(y, [h, w])
    assert gh.item() == pytest.approx(3.0)
    assert gw.item() == pytest.approx(27.0)


def test_without_create_graph_no_graph_is_built():
    x = minigan.tensor(np.linspace(-1, 1, 5), requires_grad=True)
    (gx,) = minigan.grad(F.tanh(x).sum(), x)
    assert gx.creator is None and not gx.requires_grad
    (gx2,) = minigan.grad(F.tanh(x).sum(), x, create_graph=True)
    assert gx2.creator is not None and gx2.requires_grad


def test_second_derivative_of_tanh_is_exact():
    xv = np.linspace(-2, 2, 7)
    x = minigan.tensor(xv, requires_grad=True)
    (g,) = minigan.grad(F.tanh(x).sum(), x, create_graph=True)
    (gg,) = minigan.grad(g.sum(), x)
    t = np.tanh(xv)
    np.testing.assert_allclose(gg.numpy(), -2 * t * (1 - t * t), rtol=1e-12)


def test_no_grad_records_nothing():
    x = minigan.tensor([1.0], requires_grad=True)
    with minigan.no_grad():
        y = x * 2.0
    assert y.creator is None and not y.requires_grad

    @minigan.no_grad()
    def f(t):
        return t * 3.0

    assert f(x).creator is None
    assert minigan.is_grad_enabled()


def _mlp_params(rng):
    return [rng.standard_normal((6, 3)) * 0.7, rng.standard_normal(6) * 0.1,
            rng.standard_normal((5, 6)) * 0.5, rng.standard_normal(5) * 0.1,
            rng.standard_normal((1, 5)) * 0.5]


def _mlp(x, w1, b1, w2, b2, w3):
    h = F.leaky_relu(F.linear(x, w1, b1), 0.2)
    h = F.tanh(F.linear(h, w2, b2)) + F.sigmoid(h[:, :5]) * F.softplus(h[:, 1:])
    return F.linear(h, w3)


def test_input_gradient_norm_of_mlp_matches_finite_differences():
    """The acceptance test: ||d f / d x||^2 through grad(create_graph=True), differentiated with
    respect to the weights, matches central differences to 1e-6 relative in float64."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3))
    params = _mlp_params(rng)

    def penalty(*ws):
        xt = Tensor(x.copy(), requires_grad=True)
        y = _mlp(xt, *ws)
        (gx,) = minigan.grad(y.sum(), xt, create_graph=True)
        return (gx * gx).sum()

    weights = [Tensor(w, requires_grad=True) for w in params]
    value = penalty(*weights)
    analytic = minigan.grad(value, weights)
    eps = 1e-6
    for w_index in range(len(params)):
        flat = params[w_index].ravel()
        for j in range(0, flat.size, max(1, flat.size // 7)):
            plus = [p.copy() for p in params]
            minus = [p.copy() for p in params]
            plus[w_index].ravel()[j] += eps
            minus[w_index].ravel()[j] -= eps
            with minigan.enable_grad():
                num = (penalty(*[Tensor(p) for p in plus]).item()
                       - penalty(*[Tensor(p) for p in minus]).item()) / (2 * eps)
            ana = analytic[w_index].numpy().ravel()[j]
            assert abs(ana - num) <= 1e-6 * max(1.0, abs(num)), (w_index, j, ana, num)


def test_gradient_penalty_passes_full_checker():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 3))

    def penalty(*ws):
        xt = Tensor(x.copy(), requires_grad=True)
        (gx,) = minigan.grad(_mlp(xt, *ws).sum(), xt, create_graph=True)
        return ((F.sqrt((gx * gx).sum(1) + 1e-12) - 1.0) ** 2).mean()

    check_backward(penalty, _mlp_params(rng))


class _WrongSquare(Function):
    """x^2 with a deliberately wrong backward (3x instead of 2x)."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return gy * self.inputs[0] * 3.0


class _WrongSecondOrder(Function):
    """x^3 whose backward treats the input as a constant array: right first derivative,
    wrong second derivative (the cached-intermediate bug the contract forbids)."""

    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        return gy * Tensor(3 * self.inputs[0].data ** 2)


def test_checker_catches_a_wrong_backward():
    x = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(GradientCheckError, match="finite differences"):
        check_backward(lambda a: _WrongSquare()(a), [x])
    with pytest.raises(GradientCheckError):
        check_backward(lambda a: _WrongSquare()(a), [x], mode="jacobian")


def test_checker_catches_a_wrong_second_derivative():
    x = np.random.default_rng(0).standard_normal((3, 4))
    check_backward(lambda a: _WrongSecondOrder()(a), [x])  # first order is right
    with pytest.raises(GradientCheckError):
        check_double_backward(lambda a: _WrongSecondOrder()(a), [x])


class _OnceOnly(Function):
    once_differentiable = True

    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return gy * 2.0


def test_create_graph_through_once_differentiable_op_raises():
    x = minigan.tensor([1.0, 2.0], requires_grad=True)
    y = _OnceOnly()(x).sum()
    with pytest.raises(RuntimeError, match="once-differentiable"):
        minigan.grad(y, x, create_graph=True)
    (g,) = minigan.grad(_OnceOnly()(x).sum(), x)  # first order is fine
    np.testing.assert_allclose(g.numpy(), [2.0, 2.0])


def test_backward_on_non_scalar_without_grad_raises():
    x = minigan.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one element, got shape \(2, 3\)"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.ones((2, 3)))
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 2.0))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        (x * 2.0).backward(np.ones(3))


def test_shape_errors_name_both_shapes():
    a = minigan.tensor(np.ones((2, 3)))
    b = minigan.tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        F.matmul(a, b)
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4, 5\)"):
        a + b
    with pytest.raises(ValueError, match=r"mul: shapes \(2, 3\) and \(4,\)"):
        a * minigan.tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3\).*\(4, 5\)"):
        F.linear(a, b)
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\).*\(4,\)"):
        a.reshape(4)


def test_second_backward_through_freed_graph_raises_clearly():
    x = minigan.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    z = (x * x).sum()
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0 + 2 * 2, 4.0 + 2 * 4])


class _StandInGPUArray(np.ndarray):
    """Plays a CuPy array for the device checks (CI has no GPU)."""


def test_mixed_devices_error_names_both(monkeypatch):
    """Simulated here (CI has no GPU): an array of CuPy's array class next to a NumPy array.
    Every op's inputs are checked (the check runs only where CuPy is imported, since without it
    every array is a NumPy array, and only when the inputs' arrays are not all of one class)."""
    monkeypatch.setattr(backend, "cupy", types.SimpleNamespace(ndarray=_StandInGPUArray))
    monkeypatch.setattr(backend, "CUPY_IMPORTED", True)
    a = minigan.tensor(np.ones(3))
    b = minigan.Tensor(np.ones(3).view(_StandInGPUArray))
    assert backend.device_of(b.data) == "cuda" and backend.device_of(a.data) == "cpu"
    for op, order in ((lambda: a + b, "cpu and cuda"), (lambda: b * a, "cuda and cpu"),
                      (lambda: F.linear(a.reshape(1, 3), b.reshape(1, 3)), "cpu and cuda")):
        with pytest.raises(backend.DeviceError, match=order):
            op()
    assert backend.check_same_device(b.data, b.data, None, 2.0) == "cuda"
    assert backend.check_same_device(a.data, a.data) == "cpu"
    with pytest.raises(backend.DeviceError, match="Mul: expected all inputs on one device, got "
                                                  "cuda and cpu"):
        backend.check_same_device(b.data, a.data, what="Mul")



def test_a_backward_seed_is_never_handed_to_another_array_class():
    """The shared seed of a plain backward is cached per array class too: one made for one
    array library (say an emulated CuPy in a benchmark) is not what another one's backward
    gets, where a kernel would refuse it as a foreign array."""
    from minigan import autograd
    plain = autograd._seed(np.ones((), np.float32))
    other = autograd._seed(np.ones((), np.float32).view(_StandInGPUArray))
    assert type(plain) is np.ndarray and type(other) is _StandInGPUArray
    assert autograd._seed(np.zeros((), np.float32)) is plain  # still one per class

def test_get_array_module_refuses_a_device_name():
    """get_array_module("cuda") used to answer NumPy, which silently put a GPU benchmark's
    data on the CPU; a name now raises and points to xp_for."""
    with pytest.raises(TypeError, match=r"device name 'cuda'.*xp_for"):
        backend.get_array_module("cuda")
    with pytest.raises(TypeError, match="device name 'cpu'"):
        backend.get_array_module(np.ones(2), "cpu")
    assert backend.get_array_module(np.ones(2), None) is np
    assert backend.xp_for("cpu") is np


@pytest.mark.gpu
def test_mixed_devices_error_names_both_on_gpu(cuda):
    a = minigan.tensor(np.ones(3))
    b = minigan.tensor(np.ones(3), device="cuda")
    with pytest.raises(backend.DeviceError, match="cpu and cuda"):
        a + b
    with pytest.raises(backend.DeviceError, match="cpu and cuda"):
        F.matmul(a.reshape(1, 3), b.reshape(3, 1))
    c = (b * 2.0).to("cpu")
    assert c.device == "cpu" and np.allclose(c.numpy(), 2.0)


def test_asking_for_cuda_without_cupy_says_how_to_install(monkeypatch):
    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    monkeypatch.setattr(backend, "CUPY_IMPORTED", False)
    monkeypatch.setattr(backend, "_CUPY_ERROR", ImportError("No module named 'cupy'"))
    with pytest.raises(backend.DeviceError, match=re.escape(
            "device 'cuda' needs CuPy and an NVIDIA GPU (import failed: No module named "
            "'cupy'). Install the extra that matches your CUDA toolkit: pip install "
            "'minigan[cuda12]'")):
        minigan.tensor([1.0], device="cuda")


def test_asking_for_cuda_with_cupy_but_no_gpu_says_why(monkeypatch):
    """CuPy installed, the driver missing: the error gives the runtime's reason, not an
    install hint for a package that is already there."""
    class Runtime:
        @staticmethod
        def getDeviceCount():
            raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is "
                               "insufficient for CUDA runtime version")

    class FakeCupy:
        __version__ = "14.2.0"

        class cuda:
            runtime = Runtime

    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    monkeypatch.setattr(backend, "CUPY_IMPORTED", True)
    monkeypatch.setattr(backend, "_CUPY_ERROR", None)
    monkeypatch.setattr(backend, "cupy", FakeCupy)
    backend._gpu_problem.cache_clear()
    try:
        with pytest.raises(backend.DeviceError, match=re.escape(
                "device 'cuda' needs an NVIDIA GPU: CuPy 14.2.0 is installed but sees no usable "
                "GPU (RuntimeError: cudaErrorInsufficientDriver: CUDA driver version is "
                "insufficient for CUDA runtime version). Check the driver with nvidia-smi, or "
                "run on the CPU with --device cpu.")):
            backend.normalize_device("cuda")
    finally:
        backend._gpu_problem.cache_clear()


def test_to_device_round_trip_is_differentiable(device):
    x = minigan.tensor(np.arange(3.0), requires_grad=True)
    y = (x.to(device) * 2.0).to("cpu").sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 2.0])


def test_float64_end_to_end(device):
    x = minigan.tensor(np.ones((2, 3)), requires_grad=True, device=device, dtype="float64")
    w = minigan.tensor(np.ones((4, 3)), requires_grad=True, device=device, dtype="float64")
    y = F.softplus(F.linear(x, w)).mean()
    y.backward()
    assert y.dtype == np.float64 and x.grad.dtype == np.float64 and w.grad.dtype == np.float64


def test_graph_memory_stays_flat_over_1000_iterations():
    rng = np.random.default_rng(0)
    w1 = minigan.tensor(rng.standard_normal((32, 16)) * 0.1, requires_grad=True)
    w2 = minigan.tensor(rng.standard_normal((1, 32)) * 0.1, requires_grad=True)
    x = minigan.tensor(rng.standard_normal((64, 16)).astype(np.float32))

    def step():
        xt = Tensor(x.data, requires_grad=True)
        out = F.linear(F.leaky_relu(F.linear(xt, w1), 0.2), w2)
        (gx,) = minigan.grad(out.sum(), xt, create_graph=True)
        loss = F.softplus(out).mean() + ((gx * gx).sum(1) - 1.0).mean() ** 2
        loss.backward()
        w1.data -= 1e-3 * w1.grad.data
        w2.data -= 1e-3 * w2.grad.data
        w1.grad = w2.grad = None

    for _ in range(50):
        step()
    gc.collect()
    tracemalloc.start()
    for _ in range(100):
        step()
    base, _ = tracemalloc.get_traced_memory()
    gc.disable()  # graphs must die by reference counting alone, with no cycle collector
    try:
        for _ in range(900):
            step()
        now, _ = tracemalloc.get_traced_memory()
        cyclic = gc.collect()
    finally:
        gc.enable()
        tracemalloc.stop()
    assert now - base < 256 * 1024, f"memory grew by {now - base} bytes over 900 iterations"
    assert cyclic < 100, f"{cyclic} objects were only freeable by the cycle collector"


def test_the_gradients_of_one_layer_on_two_batches_are_summed_in_place(monkeypatch):
    """A D step's shape: one layer on a real and a fake batch, losses added, in one backward
    from no .grad: the first branch's gradients become the .grad arrays and the second's are
    summed into them in place. (On the GPU the second goes into them inside its kernels; the
    launch budgets of test_emulated_cupy's training steps hold that.)"""
    from minigan import autograd, nn
    if autograd._OWNED[0] is None:
        pytest.skip("this interpreter's reference counts cannot prove ownership")
    rng = np.random.default_rng(3)
    layer = nn.Linear(4, 3)
    a, b = (minigan.tensor(rng.standard_normal((5, 4)).astype(np.float32)) for _ in range(2))
    done = []
    real = autograd._add_in_place
    monkeypatch.setattr(autograd, "_add_in_place", lambda x, y: done.append(real(x, y))
                        or done[-1])
    ((layer(a) * 2.0).sum() + layer(b).sum()).backward()
    assert done == [True, True]  # the weight and the bias, each summed into its first array
    want_w = 2.0 * np.ones((5, 3)).T @ a.numpy() + np.ones((5, 3)).T @ b.numpy()
    np.testing.assert_allclose(layer.weight.grad.numpy(), want_w, rtol=1e-5)
    np.testing.assert_allclose(layer.bias.grad.numpy(), np.full(3, 15.0), rtol=1e-6)


def test_a_plain_backward_seeds_with_one_shared_read_only_array():
    """Every plain backward of a one-element tensor starts from the same array of ones (on the
    GPU that saves a fill launch). It is read-only on the CPU, so a kernel that wrote into its
    gy would raise here; a leaf's .grad is never that array; a create_graph backward gets a
    fresh seed (its gradients may be the seed itself, and are the caller's)."""
    from minigan import autograd
    x = minigan.tensor(np.ones(3, np.float32), requires_grad=True)
    (x * 2.0).sum().backward()
    seeds = [v for k, v in autograd._SEEDS.items() if k == (np.float32, (), np.ndarray, None)]
    assert len(seeds) == 1 and not seeds[0].flags.writeable
    (x * 3.0).sum().backward()
    assert [v for k, v in autograd._SEEDS.items()
            if k == (np.float32, (), np.ndarray, None)] == seeds
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 5.0, np.float32))
    leaf = minigan.tensor(np.float32(2.0), requires_grad=True)
    leaf.backward()  # the leaf's gradient is the seed itself: stored as a copy
    assert leaf.grad.data is not seeds[0] and leaf.grad.data.flags.writeable
    leaf.grad.data[...] = 7.0
    assert float(seeds[0]) == 1.0
    y = minigan.tensor(np.float32(3.0), requires_grad=True)
    (y * 1.0).backward(create_graph=True)
    assert y.grad.data is not seeds[0] and y.grad.data.flags.writeable


def test_a_change_through_another_view_of_saved_memory_is_refused_at_backward():
    """As torch's version counter, shared by a tensor's views: changing the memory a saved
    tensor views, through any view of it (or a saved result, through its detached twin),
    makes the backward that needs the old values raise instead of using the new ones."""
    def fresh():
        return (minigan.tensor([1.0, 2.0], requires_grad=True),
                minigan.tensor([[3.0, 4.0], [5.0, 6.0]]))

    x, w = fresh()
    y = (x * w).sum()
    minigan.unbind(w, 0)[0].mul_(2)  # a view of w
    with pytest.raises(RuntimeError, match="Mul's backward needs was changed in place"):
        minigan.grad(y, x)
    x, w = fresh()
    y = (x * w[0]).sum()  # a view saved, its base changed
    with minigan.no_grad():
        w.mul_(2)
    with pytest.raises(RuntimeError, match="Mul's backward needs was changed in place"):
        minigan.grad(y, x)
    x, _ = fresh()
    e = minigan.exp(x)
    s = (e * e).sum()
    e.detach().add_(1)  # the saved result, through a tensor sharing its array
    with pytest.raises(RuntimeError, match="a result of shape .2,. that Exp's backward needs"):
        minigan.grad(minigan.exp(x).sum() + e.sum(), x)
    del s
    # what a backward does not read may change: Mul saves its inputs, not its result
    x, w = fresh()
    y = x * w
    y.detach().zero_()
    np.testing.assert_array_equal(minigan.grad(y.sum(), x)[0].numpy(), [8.0, 10.0])
    # and a change of unrelated memory is no error
    x, w = fresh()
    y = (x * w[1]).sum()
    other = minigan.zeros(2, 2)
    other[0].add_(1)
    np.testing.assert_array_equal(minigan.grad(y, x)[0].numpy(), [5.0, 6.0])


def test_only_the_values_a_backward_reads_are_checked_for_in_place_changes():
    """As torch saves them: a product reads x only for y's gradient, and exp, sqrt, tanh and
    sigmoid read their result, not their input. Changing what is not read is no error."""
    for forward in (lambda w, x: (w.T * x).sum(), lambda w, x: w.T.tanh().sum(),
                    lambda w, x: w.reshape(-1).exp().sum(), lambda w, x: (x @ w).sum(),
                    lambda w, x: minigan.sigmoid(w).sum() + minigan.sqrt(w).sum()):
        w = minigan.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        x = minigan.tensor([[0.5, 1.5], [2.0, 1.0]])
        y = forward(w, x)
        with minigan.no_grad():
            w.add_(1)
        y.backward()  # no error: the backward never reads w's old values
        assert w.grad is not None
    # but where the value is read, the change is still refused
    w = minigan.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    x = minigan.tensor([[0.5, 1.5], [2.0, 1.0]], requires_grad=True)
    y = (x @ w).sum()
    with minigan.no_grad():
        w.add_(1)
    with pytest.raises(RuntimeError, match="changed in place after the forward"):
        y.backward()


# -- zero derivatives through activation masks (autograd.ZERO_GRAD) ---------------------------

def _mask_net(fused: bool, slope: float):
    """x -> Linear(3, 4) -> LeakyReLU(slope) (0: ReLU) -> Linear(4, 1), in float64: the
    activation fused with its Linear by Sequential, or called on its own."""
    minigan.manual_seed(3)
    lin1, lin2 = minigan.nn.Linear(3, 4, dtype=minigan.float64), minigan.nn.Linear(
        4, 1, dtype=minigan.float64)
    act = minigan.nn.LeakyReLU(slope) if slope else minigan.nn.ReLU()
    if fused:
        return minigan.nn.Sequential(lin1, act, lin2), lin1, lin2
    return (lambda x: lin2(act(lin1(x)))), lin1, lin2


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_a_parameter_reached_only_through_a_relu_mask_gets_a_zero_gradient(fused, slope):
    """grad_x of a ReLU network depends on the first layer's bias only through the masks, a
    piecewise-constant map: its gradient is zero, and it is given (PyTorch gives zeros too),
    where it used to be missing (grad() refused it as unused; backward left .grad None)."""
    net, lin1, lin2 = _mask_net(fused, slope)
    x = minigan.tensor(np.random.default_rng(0).standard_normal((5, 3)), requires_grad=True)
    (gx,) = minigan.grad(net(x).sum(), x, create_graph=True)
    penalty = (gx * gx).sum()
    (gb,) = minigan.grad(penalty, [lin1.bias], retain_graph=True)
    assert gb.shape == (4,) and gb.dtype == np.float64 and not gb.numpy().any()
    penalty.backward()
    assert lin1.bias.grad is not None and not lin1.bias.grad.numpy().any()
    assert x.grad is not None and x.grad.shape == x.shape and not x.grad.numpy().any()
    assert lin1.weight.grad.numpy().any() and lin2.weight.grad.numpy().any()
    assert lin2.bias.grad is None  # not upstream of any mask: no gradient at all, as in torch
    # the weights' gradients are the finite-difference slopes of the penalty
    w = lin1.weight
    base = w.data.copy()

    def pen():
        (g,) = minigan.grad(net(x).sum(), x, create_graph=True)
        return float((g * g).sum().item())
    num = np.zeros_like(base)
    for i in np.ndindex(base.shape):
        for sign in (1, -1):
            w.data[...] = base
            w.data[i] += sign * 1e-6
            num[i] += sign * pen() / 2e-6
    w.data[...] = base
    np.testing.assert_allclose(lin1.weight.grad.numpy(), num, rtol=1e-6, atol=1e-8)


def test_zero_marks_compute_nothing_and_hooks_see_zeros():
    """What the marks reach is not differentiated: an upstream function's backward is not
    called. A hook or retain_grad on a marked tensor sees (real) zeros, which then flow."""
    calls = []

    class Spy(Function):
        def forward(self, a):
            return a * 1.0

        def backward(self, g):
            calls.append(g.numpy().copy())
            return g

    b = minigan.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    h = Spy()(b)
    (g,) = minigan.grad(F.relu(h * 3.0).sum(), h, create_graph=True)
    calls.clear()
    (g * g).sum().backward(retain_graph=True)
    assert calls == [] and not b.grad.numpy().any()
    b.grad = None
    seen = []
    h.register_hook(lambda t: seen.append(t.numpy().copy()))
    (g * g).sum().backward()
    assert len(seen) == 1 and seen[0].shape == (3,) and not seen[0].any()
    assert len(calls) == 1 and not calls[0].any() and not b.grad.numpy().any()


def test_a_zero_mark_into_a_freed_graph_is_dropped():
    """A zero derivative that reaches a graph already freed by a backward adds nothing, so it
    is dropped (no error), and what lies beyond gets no gradient from it."""
    b = minigan.tensor(np.array([0.5, -1.0]), requires_grad=True)
    h = b * 2.0
    (g,) = minigan.grad(F.relu(h).sum(), h, create_graph=True)
    h.sum().backward()  # frees h's creator
    np.testing.assert_array_equal(b.grad.numpy(), [2.0, 2.0])
    (g * 3.0).sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), [2.0, 2.0])
    c = minigan.tensor(np.array([0.5, -1.0]), requires_grad=True)
    k = c * 2.0
    (g,) = minigan.grad(F.relu(k).sum(), k, create_graph=True)
    (g * 3.0).sum().backward()  # the same with k's creator alive: zeros
    np.testing.assert_array_equal(c.grad.numpy(), [0.0, 0.0])


@pytest.mark.parametrize("op", ["hardtanh", "relu6", "threshold", "hardshrink", "softshrink",
                                "hardsigmoid", "abs"])
def test_other_masked_gradients_give_their_input_a_zero_derivative(op):
    """The other ops whose gradient is a mask (or a sign) times gy: the same zeros as PyTorch
    for what lies upstream of their input, with every order still exact."""
    fns = {"hardtanh": lambda h: F.hardtanh(h, -0.5, 0.5), "relu6": F.relu6,
           "threshold": lambda h: F.threshold(h, 0.1, -2.0), "hardshrink": F.hardshrink,
           "softshrink": F.softshrink, "hardsigmoid": F.hardsigmoid, "abs": lambda h: h.abs()}
    rng = np.random.default_rng(5)
    x = minigan.tensor(rng.standard_normal(7) * 4, requires_grad=True)
    b = minigan.tensor(rng.standard_normal(7), requires_grad=True)
    y = (fns[op](x * 2.0 + b) * 1.5).sum()
    (gx,) = minigan.grad(y, x, create_graph=True)
    assert gx.requires_grad
    (gb,) = minigan.grad((gx * gx).sum(), [b])
    assert gb.shape == (7,) and not gb.numpy().any()
