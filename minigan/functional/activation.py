"""Activations and dropout.

The gradient functions (``LeakyReLUGrad``, ``TanhGrad``, ``SigmoidGrad``) are Functions of their
own: one fused kernel on the fast first-order path, and an exact backward of their own for
higher orders.

The activations follow torch 2.13: values, integer inputs (most are refused, as torch refuses
them), and the gradient at each kink and at NaN, to the second order (``elu`` takes its
negative branch's slope at 0 and a zero second derivative there; ``hardtanh``, ``relu6``,
``hardsigmoid``, the shrink functions and ``threshold`` pass no gradient at their edges). At
NaN the gradient is that of torch's vectorised CPU kernels, which every tensor of more than a
few elements goes through: NaN for the elu family and ``hardswish``, 0 for ``hardtanh``,
``relu6``, ``hardsigmoid`` and the shrink functions, gy for ``threshold``. (torch's scalar
path, taken for its tiniest tensors, passes gy at NaN in all of them but ``hardsigmoid``.)
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import (ACCUMULATED, ZERO_GRAD, Function, Tensor, as_tensor, is_grad_enabled,
                        with_zero_derivative)
from ..kernels import elementwise as K
from ..kernels.gemm import matmul as _gemm
from . import basic as B
from .basic import Linear, _float_input, _floating, _linear, mul, where
from .pointwise import _TWO_OVER_ROOT_PI, erf


class LeakyReLU(Function):
    """y = x if x > 0 else s*x; gx = LeakyReLUGrad(x)(gy)."""

    def __init__(self, slope: float):
        self.slope = float(slope)

    def forward(self, x):
        return K.leaky_relu_forward(x, self.slope)

    def backward(self, gy):
        x = self.inputs[0]
        if not is_grad_enabled():  # no graph to record: the kernel alone
            return Tensor(K.leaky_relu_backward(gy.data, x.data, self.slope))
        return LeakyReLUGrad(x.data, self.slope)(gy, x)


class LeakyReLUGrad(Function):
    """gx = gy where x > 0 else s*gy; for s = 0 (ReLU) 0 is selected, not gy * 0, so an
    infinite gy there gives 0 (as PyTorch), at every order. Linear in gy with a
    piecewise-constant mask, so its own backward is itself, and its derivative with respect
    to x is zero (almost everywhere).

    The mask is read from the array ``x``. Called as ``(gy, anchor)``, with ``anchor`` the
    graph tensor whose values made the mask (the activation's input, or a fused op's output),
    the zero derivative reaches that tensor: ZERO_GRAD, so everything upstream of it gets a
    zero gradient, as in PyTorch, instead of none, at no cost."""

    def __init__(self, x, slope: float):
        self.x, self.slope = x, slope

    def forward(self, gy, anchor=None):
        return K.leaky_relu_backward(gy, self.x, self.slope)

    def backward(self, ggx):
        if len(self.inputs) == 1:
            return LeakyReLUGrad(self.x, self.slope)(ggx)
        return LeakyReLUGrad(self.x, self.slope)(ggx, self.inputs[1]), ZERO_GRAD


class FusedLeakyReLU:
    """Mixin for an op fused with a LeakyReLU of slope ``self.slope`` >= 0 (0: ReLU) on its
    output, kept in ``self.y`` by its forward: backward applies the activation's mask, read
    from y (y > 0 exactly where the op's own result is), to gy, then the op's backward."""

    def backward(self, gy):
        if not is_grad_enabled():
            gy = Tensor(K.leaky_relu_backward(gy.data, self.y, self.slope))
        else:
            y = self.outputs[0]()  # (the mask's anchor: y's zero derivative reaches the inputs)
            mask = LeakyReLUGrad(self.y, self.slope)
            gy = mask(gy) if y is None else mask(gy, y)
        return super().backward(gy)

    def release(self) -> None:
        super().release()
        self.y = None


class LinearLeakyReLU(FusedLeakyReLU, Linear):
    """leaky_relu(x W^T + b, s) as one op (s = 0: ReLU): the bias add and the activation are
    one pass over the GEMM's output, in place (one GPU launch instead of two, no second
    array)."""

    def __init__(self, slope: float):
        self.slope = slope

    def forward(self, x, w, b=None):
        self.y = K.leaky_relu_inplace(_gemm(x, w.T), self.slope, b)
        return self.y

    def backward(self, gy):
        if (not is_grad_enabled() and len(self.inputs) == 3 and self.needs_input_grad[2]
                and gy.data.ndim == 2 and backend.is_cupy_array(gy.data)):
            # on the GPU the activation's mask and the bias gradient (its sum over the batch)
            # are one kernel, not two launches (the sum added into the bias's .grad, where
            # the engine offers it)
            into = self._bias_into()
            g, gb = K.leaky_relu_backward_colsum(gy.data, self.y, self.slope, into)
            return self._array_grads(g, ACCUMULATED if into is not None and gb is into else gb)
        return super().backward(gy)


def linear_leaky_relu(x, weight, bias=None, negative_slope: float = 0.0) -> Tensor:
    """``leaky_relu(linear(x, weight, bias), negative_slope)`` (0: ReLU) as one fused op, the
    same values and gradients. ``nn.Sequential`` calls it for a Linear layer followed by a
    LeakyReLU or ReLU."""
    if not negative_slope >= 0:
        raise ValueError(f"linear_leaky_relu: negative_slope must be >= 0, got "
                         f"{negative_slope}")
    slope = float(negative_slope)
    return _linear(x, weight, bias, lambda: LinearLeakyReLU(slope))


class LinearTanh(Linear):
    """tanh(x W^T + b) as one op: the bias add and the tanh are one pass over the GEMM's output,
    in place (one GPU launch instead of two), and on the GPU the tanh's backward and the bias
    gradient are one kernel too."""

    def forward(self, x, w, b=None):
        return K.tanh_inplace(_gemm(x, w.T), b)

    def backward(self, gy):
        y = self.output()
        if not is_grad_enabled():
            if (len(self.inputs) == 3 and self.needs_input_grad[2] and gy.data.ndim == 2
                    and backend.is_cupy_array(gy.data)):
                into = self._bias_into()
                g, gb = K.tanh_backward_colsum(gy.data, y.data, into)
                return self._array_grads(g, ACCUMULATED if into is not None and gb is into
                                         else gb)
            gy = Tensor(K.tanh_backward(gy.data, y.data))
        else:
            gy = TanhGrad()(gy, y)  # y of the graph: its own derivative runs through this op
        return super().backward(gy)


def linear_tanh(x, weight, bias=None) -> Tensor:
    """``tanh(linear(x, weight, bias))`` as one fused op, the same values and gradients.
    ``nn.Sequential`` calls it for a Linear layer followed by a Tanh."""
    return _linear(x, weight, bias, LinearTanh)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``inplace`` is accepted for PyTorch code; minigan always returns a new tensor (the
    values are the same, and the input is left as it was)."""
    return LeakyReLU(negative_slope)(as_tensor(input))


def relu(input, inplace: bool = False) -> Tensor:
    """``inplace``: see ``leaky_relu``."""
    return LeakyReLU(0.0)(as_tensor(input))


class Tanh(Function):
    """y = tanh(x); gx = gy * (1 - y^2)."""

    saves_inputs = False  # its backward reads its result (checked by output()), not x

    def forward(self, x):
        return K.tanh_forward(x)

    def backward(self, gy):
        return TanhGrad()(gy, self.output())


class TanhGrad(Function):
    """gx = gy * (1 - y^2); d/dgy = ggx * (1 - y^2), d/dy = -2 ggx * gy * y."""

    def forward(self, gy, y):
        return K.tanh_backward(gy, y)

    def backward(self, ggx):
        gy, y = self.inputs
        g_gy = TanhGrad()(ggx, y) if self.needs_input_grad[0] else None
        g_y = ggx * gy * y * -2.0 if self.needs_input_grad[1] else None
        return g_gy, g_y


def tanh(input) -> Tensor:
    return Tanh()(_floating(as_tensor(input)))


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)); gx = gy * y * (1 - y)."""

    saves_inputs = False  # its backward reads its result (checked by output()), not x

    def forward(self, x):
        return K.sigmoid_forward(x)

    def backward(self, gy):
        return SigmoidGrad()(gy, self.output())


class SigmoidGrad(Function):
    """gx = gy * y * (1 - y); d/dgy = ggx * y * (1 - y), d/dy = ggx * gy * (1 - 2y)."""

    def forward(self, gy, y):
        return K.sigmoid_backward(gy, y)

    def backward(self, ggx):
        gy, y = self.inputs
        g_gy = SigmoidGrad()(ggx, y) if self.needs_input_grad[0] else None
        g_y = ggx * gy * (1.0 - y * 2.0) if self.needs_input_grad[1] else None
        return g_gy, g_y


def sigmoid(input) -> Tensor:
    return Sigmoid()(_floating(as_tensor(input)))


class Softplus(Function):
    """y = log(1 + exp(b*x)) / b (linear above the threshold); gx = gy * sigmoid(b*x)."""

    def __init__(self, beta: float, threshold: float):
        self.beta, self.threshold = float(beta), float(threshold)

    def forward(self, x):
        return K.softplus_forward(x, self.beta, self.threshold)

    def backward(self, gy):
        x = self.inputs[0]
        s = sigmoid(x * self.beta if self.beta != 1.0 else x)
        if is_grad_enabled():  # a graph is being built: torch's second derivative is 0 at
            # b*x = threshold (its double backward masks b*x < threshold; the forward and the
            # first derivative take the curve there), so the sigmoid is a constant there
            edge = x.data * self.beta == self.threshold
            if backend.is_cupy_array(edge) or edge.any():
                s = where(edge, Tensor(s.data), s)
        g = gy * s
        linear = x.data * self.beta > self.threshold  # where the forward is x itself
        # the mask is only looked at on the CPU: on the GPU that would be a sync per backward
        if backend.is_cupy_array(linear) or linear.any():
            return where(linear, gy, g)
        return g


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return Softplus(beta, threshold)(as_tensor(input))


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,
            generator=None) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout).
    ``inplace`` is accepted for PyTorch code and ignored: the result is a new tensor.

    The mask is a constant drawn from the device's counter-based generator, so a seeded run is
    reproducible on either device.
    """
    x = as_tensor(input)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    from ..random import default_generator  # the generators sit beside the ops
    gen = generator if generator is not None else default_generator(x.device)
    if gen.device != x.device:
        raise backend.DeviceError(f"dropout: generator on {gen.device} but input on {x.device}")
    mask = gen.dropout_mask(x.shape, p, x.dtype)
    return mul(x, Tensor(mask))


_SQRT1_2 = 0.70710678118654752440  # M_SQRT1_2
_GELU_BETA = 1.41421356237309504880 * _TWO_OVER_ROOT_PI * 0.5  # sqrt(2/pi), as torch forms it
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946




def _numeric_input(fn: str, input) -> Tensor:
    """``input`` as a tensor of numbers, integers included; bool is refused, as torch does."""
    x = as_tensor(input)
    if x.dtype.kind not in "iuf":
        raise TypeError(f"{fn}: expected a tensor of numbers, got dtype {x.dtype} (torch "
                        "refuses bool tensors too)")
    return x


class _ELU(Function):
    """torch's elu family, input scale s: y = scale x for x > 0, else scale alpha (exp(s x) - 1);
    gx = gy scale for x > 0, else gy scale alpha s exp(s x), at x = 0 too. Only x < 0 is
    differentiated again (the second derivative is 0 at x = 0), and NaN gives NaN gradients,
    as torch's (vectorised) kernels do."""

    def __init__(self, alpha: float, scale: float, input_scale: float):
        self.alpha, self.scale, self.input_scale = float(alpha), float(scale), float(input_scale)

    def forward(self, x):
        xp = backend.get_array_module(x)
        with np.errstate(over="ignore"):
            negative = xp.expm1(x * self.input_scale) * (self.alpha * self.scale)
        return xp.where(x > 0, x * self.scale if self.scale != 1.0 else x, negative)

    def backward(self, gy):
        x = self.inputs[0]
        xp = backend.get_array_module(x.data)
        curved = ~(x.data >= 0)  # x < 0, and NaN
        c = self.alpha * self.scale * self.input_scale
        flat = xp.where(x.data == 0, c, self.scale).astype(x.dtype)  # x >= 0
        # exp of x where it is negative only: an overflow elsewhere would meet a zero weight
        curve = B.exp(where(curved, x, 0.0) * self.input_scale) * c
        return gy * where(curved, curve, Tensor(flat))


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, else alpha (exp(x) - 1). ``inplace``: see ``leaky_relu``."""
    return _ELU(alpha, 1.0, 1.0)(_float_input("elu", input))


def selu(input, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with alpha = 1.6733 and scale = 1.0507, torch's (Klambauer et al.,
    2017). ``inplace``: see ``leaky_relu``."""
    return _ELU(_SELU_ALPHA, _SELU_SCALE, 1.0)(_float_input("selu", input))


def celu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha (exp(x / alpha) - 1)); alpha must not be 0. ``inplace``: see
    ``leaky_relu``."""
    x = _float_input("celu", input)
    if alpha == 0:
        raise ValueError("celu: alpha cannot be 0 (the input is divided by it)")
    return _ELU(alpha, 1.0, 1.0 / alpha)(x)


def gelu(input, approximate: str = "none") -> Tensor:
    """x Phi(x), Phi the standard normal CDF: x/2 (1 + erf(x / sqrt(2))), or with
    ``approximate='tanh'`` x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in torch's order of
    operations. Built of differentiable ops: every derivative is exact."""
    x = _float_input("gelu", input)
    if approximate == "none":
        return x * 0.5 * (erf(x * _SQRT1_2) + 1.0)
    if approximate == "tanh":
        return x * 0.5 * (tanh((x + x * x * x * 0.044715) * _GELU_BETA) + 1.0)
    if not isinstance(approximate, str):
        raise TypeError(f"gelu: approximate must be a str, 'none' or 'tanh', got "
                        f"{approximate!r}")
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input, inplace: bool = False) -> Tensor:
    """x sigmoid(x) (swish). ``inplace``: see ``leaky_relu``."""
    x = _float_input("silu", input)
    return x * sigmoid(x)


def mish(input, inplace: bool = False) -> Tensor:
    """x tanh(softplus(x)). ``inplace``: see ``leaky_relu``."""
    x = _float_input("mish", input)
    return x * tanh(softplus(x))


class _PassOrZero(Function):
    """y = fn(x) for an fn of slope 1 or 0 piece by piece (flat pieces and jumps included):
    gx = gy where ``passes(x)``, else 0, selected (an infinite gy gives 0 there, as torch),
    then divided by ``divisor``. The mask is a constant, so gx is linear in gy, its own
    derivative, with a zero derivative in x."""

    saves_inputs = False

    def __init__(self, fn, passes, divisor=None):
        self.fn, self.passes, self.divisor = fn, passes, divisor

    def forward(self, x):
        self.mask = self.passes(x)
        with np.errstate(invalid="ignore"):  # (inf - inf: NaN, as torch, without a warning)
            return self.fn(x)

    def backward(self, gy):
        g = where(self.mask, gy, 0.0)
        g = with_zero_derivative(g, self.inputs[0])  # (the mask's zero derivative reaches x)
        return g if self.divisor is None else g / self.divisor

    def release(self) -> None:
        super().release()
        self.mask = None


def _hardtanh(fn: str, x: Tensor, min_val, max_val) -> Tensor:
    if min_val > max_val:
        raise ValueError(f"{fn}: min_val cannot be greater than max_val, got min_val={min_val}, "
                         f"max_val={max_val}")
    lo, hi = x.dtype.type(min_val), x.dtype.type(max_val)  # (truncated for integers, as torch)

    def clamp(a):
        xp = backend.get_array_module(a)
        return xp.minimum(xp.maximum(a, lo), hi)  # NaN stays NaN

    return _PassOrZero(clamp, lambda a: (a > lo) & (a < hi))(x)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clamped to [min_val, max_val]; the gradient is 0 at the edges (unlike clamp's) and at
    NaN, as torch's. Integer tensors keep their dtype (the bounds are truncated to it).
    ``inplace``: see ``leaky_relu``."""
    return _hardtanh("hardtanh", _numeric_input("hardtanh", input), min_val, max_val)


def relu6(input, inplace: bool = False) -> Tensor:
    """hardtanh(x, 0, 6). ``inplace``: see ``leaky_relu``."""
    return _hardtanh("relu6", _numeric_input("relu6", input), 0.0, 6.0)


def hardsigmoid(input, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6; the gradient is gy / 6 on (-3, 3) only (0 at the edges and at NaN,
    as torch's). ``inplace``: see ``leaky_relu``."""
    x = _float_input("hardsigmoid", input)

    def fn(a):
        xp = backend.get_array_module(a)
        return xp.minimum(xp.maximum(a + 3, 0), 6) / 6

    return _PassOrZero(fn, lambda a: (a > -3) & (a < 3), 6.0)(x)


class _Hardswish(Function):
    """y = x relu6(x + 3) / 6; gx = 0 for x <= -3, gy (x/3 + 1/2) for -3 < x < 3, gy from 3 on,
    NaN at NaN, torch's conventions; the ramp's 1/3 is differentiated on (-3, 3) only."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        with np.errstate(invalid="ignore"):  # (-inf * 0: NaN, as torch, without a warning)
            return x * xp.minimum(xp.maximum(x + 3, 0), 6) / 6

    def backward(self, gy):
        x = self.inputs[0]
        xd = x.data
        xp = backend.get_array_module(xd)
        ramp = (xd > -3) & (xd < 3)
        # the slope off the ramp: 1 from 3 on, NaN at NaN; below -3 the outer where selects 0,
        # and 1 there keeps an infinite gy from making a NaN first
        off = xp.where(xp.isnan(xd), xd, xd.dtype.type(1))
        return where(xd <= -3, 0.0, gy * where(ramp, x / 3.0 + 0.5, Tensor(off)))


def hardswish(input, inplace: bool = False) -> Tensor:
    """x relu6(x + 3) / 6 (Howard et al., 2019). ``inplace``: see ``leaky_relu``."""
    return _Hardswish()(_float_input("hardswish", input))


def softsign(input) -> Tensor:
    """x / (1 + |x|); integer tensors give float32, as torch's."""
    x = _numeric_input("softsign", input)
    return x / (B.abs(x) + 1)


class LogSigmoid(Function):
    """y = log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)); gx = gy sigmoid(-x)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, gy):
        return gy * sigmoid(-self.inputs[0])


def logsigmoid(input) -> Tensor:
    return LogSigmoid()(_float_input("logsigmoid", input))


def tanhshrink(input) -> Tensor:
    """x - tanh(x); integer tensors give float32, as torch's."""
    x = _numeric_input("tanhshrink", input)
    return x - tanh(x)


def softshrink(input, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, else 0 (lambd >= 0); the gradient is 0
    on [-lambd, lambd], edges included, and at NaN, as torch's."""
    x = _float_input("softshrink", input)
    if not lambd >= 0:
        raise ValueError(f"softshrink: lambd must be >= 0, got {lambd}")
    lam = x.dtype.type(lambd)

    def fn(a):
        xp = backend.get_array_module(a)
        return xp.where(a > lam, a - lam, xp.where(a < -lam, a + lam, a - a))  # (NaN stays)

    return _PassOrZero(fn, lambda a: (a < -lam) | (a > lam))(x)


def hardshrink(input, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0; the gradient is 0 on [-lambd, lambd], edges included, and
    at NaN, as torch's."""
    x = _float_input("hardshrink", input)
    lam = x.dtype.type(lambd)

    def inside(a):
        return (a >= -lam) & (a <= lam)

    def fn(a):
        return backend.get_array_module(a).where(inside(a), a.dtype.type(0), a)

    return _PassOrZero(fn, lambda a: (a < -lam) | (a > lam))(x)


def threshold(input, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``value`` where x <= threshold, else x (NaN stays NaN); both numbers are taken in x's
    dtype, as torch's (truncated for integer tensors, which keep their dtype). The gradient
    passes where x is kept. ``inplace``: see ``leaky_relu``."""
    x = _numeric_input("threshold", input)
    th, v = x.dtype.type(threshold), x.dtype.type(value)

    def fn(a):
        return backend.get_array_module(a).where(a <= th, v, a)

    return _PassOrZero(fn, lambda a: ~(a <= th))(x)


def prelu(input, weight) -> Tensor:
    """x where x > 0, else weight * x, with one weight per channel (dim 1; an input of fewer
    than 2 dims has one channel) or one for all. As torch: weight's dtype must be input's,
    gx = weight gy at x = 0 and at NaN, and gw sums x gy over x <= 0."""
    x = _float_input("prelu", input)
    if not isinstance(weight, Tensor) and not hasattr(weight, "dtype"):
        raise TypeError(f"prelu: weight must be a tensor, got {type(weight).__name__}")
    w = as_tensor(weight)
    if w.dtype != x.dtype:
        raise TypeError(f"prelu: weight of dtype {w.dtype} for an input of dtype {x.dtype}; "
                        "they must match (torch does not promote them either)")
    if w.ndim > 1:
        raise ValueError(f"prelu: weight must be 0-d or 1-D, got shape {tuple(w.shape)}")
    n = int(np.prod(w.shape))
    if n == 1:
        w = B.reshape(w, ())
    else:
        channels = x.shape[1] if x.ndim >= 2 else 1
        if n != channels:
            raise ValueError(f"prelu: {n} weights for an input of shape {tuple(x.shape)} with "
                             f"{channels} channel(s) (dim 1); give 1 or {channels}")
        w = B.reshape(w, (n,) + (1,) * (x.ndim - 2))
    return where(x.data > 0, x, w * x)


def glu(input, dim: int = -1) -> Tensor:
    """a * sigmoid(b), a and b the two halves of ``input`` along ``dim`` (even-sized)."""
    x = _float_input("glu", input)
    if x.ndim == 0:
        raise ValueError("glu: a 0-d input has no dimension to halve (torch refuses scalars "
                         "too)")
    d = B._dim("glu", dim, x.ndim)
    n = x.shape[d]
    if n % 2:
        raise ValueError(f"glu: halving dimension must be even, but dimension {d} is size {n}")
    lead = (slice(None),) * d
    a = B.getitem(x, lead + (slice(0, n // 2),))
    b = B.getitem(x, lead + (slice(n // 2, n),))
    return a * sigmoid(b)


def softmin(input, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """softmax(-input, dim): torch's implicit ``dim`` (deprecated, with its warning) when none
    is given, and ``dtype`` to compute in (integer input needs one, as in torch)."""
    from . import loss  # (loss imports this module)
    x = as_tensor(input)
    if x.dtype == np.bool_:
        raise TypeError("softmin: a bool input cannot be negated (torch refuses it too)")
    if x.dtype.kind != "f" and dtype is None:
        raise TypeError(f"softmin: expected a floating-point input, got dtype {x.dtype}; pass "
                        "dtype= for integers (torch refuses them too)")
    dim = loss._softmax_dim("softmin", x, dim, _stacklevel)
    return loss.softmax(-x, dim, dtype=dtype)


def rrelu(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False, *, generator=None) -> Tensor:
    """Randomized leaky ReLU (Xu et al., 2015): in training, x <= 0 is scaled by a slope drawn
    from U(lower, upper) per element (a constant of the graph, from the device's generator, or
    ``generator``; x > 0 and NaN pass); in evaluation, leaky_relu(x, (lower + upper) / 2).
    ``inplace``: see ``leaky_relu``."""
    x = _float_input("rrelu", input)
    if lower > upper:
        raise ValueError(f"rrelu: the lower bound must be <= the upper bound, got lower={lower}"
                         f", upper={upper}")
    if not training:
        return LeakyReLU((lower + upper) / 2)(x)
    from ..random import default_generator
    gen = generator if generator is not None else default_generator(x.device)
    if gen.device != x.device:
        raise backend.DeviceError(f"rrelu: generator on {gen.device} but input on {x.device}")
    slopes = gen.uniform(x.shape, x.dtype, lower, upper)
    xp = backend.get_array_module(x.data)
    return mul(x, Tensor(xp.where(x.data <= 0, slopes, x.dtype.type(1))))
