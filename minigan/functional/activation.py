"""Activations and dropout.

The gradient functions (``LeakyReLUGrad``, ``TanhGrad``, ``SigmoidGrad``) are Functions of their
own: one fused kernel on the fast first-order path, and an exact backward of their own for
higher orders.
"""
from __future__ import annotations

from .. import backend
from ..autograd import ACCUMULATED, Function, Tensor, as_tensor, is_grad_enabled
from ..kernels import elementwise as K
from ..kernels.gemm import matmul as _gemm
from .basic import Linear, _floating, _linear, mul, where


class LeakyReLU(Function):
    """y = x if x > 0 else s*x; gx = LeakyReLUGrad(x)(gy)."""

    def __init__(self, slope: float):
        self.slope = float(slope)

    def forward(self, x):
        return K.leaky_relu_forward(x, self.slope)

    def backward(self, gy):
        if not is_grad_enabled():  # no graph to record: the kernel alone
            return Tensor(K.leaky_relu_backward(gy.data, self.inputs[0].data, self.slope))
        return LeakyReLUGrad(self.inputs[0].data, self.slope)(gy)


class LeakyReLUGrad(Function):
    """gx = gy where x > 0 else s*gy; for s = 0 (ReLU) 0 is selected, not gy * 0, so an
    infinite gy there gives 0 (as PyTorch), at every order. Linear in gy with a
    piecewise-constant mask, so its own backward is itself (and its derivative with respect
    to x is zero almost everywhere)."""

    def __init__(self, x, slope: float):
        self.x, self.slope = x, slope

    def forward(self, gy):
        return K.leaky_relu_backward(gy, self.x, self.slope)

    def backward(self, ggx):
        return LeakyReLUGrad(self.x, self.slope)(ggx)


class FusedLeakyReLU:
    """Mixin for an op fused with a LeakyReLU of slope ``self.slope`` >= 0 (0: ReLU) on its
    output, kept in ``self.y`` by its forward: backward applies the activation's mask, read
    from y (y > 0 exactly where the op's own result is), to gy, then the op's backward."""

    def backward(self, gy):
        if not is_grad_enabled():
            gy = Tensor(K.leaky_relu_backward(gy.data, self.y, self.slope))
        else:
            gy = LeakyReLUGrad(self.y, self.slope)(gy)
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

    def forward(self, x):
        return backend.get_array_module(x).tanh(x)

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
        g = gy * sigmoid(x * self.beta if self.beta != 1.0 else x)
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
