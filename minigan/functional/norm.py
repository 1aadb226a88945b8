"""Batch normalisation with exact derivatives of every order."""
from __future__ import annotations

from .. import backend
from ..autograd import ACCUMULATED, Function, Tensor, as_tensor, is_grad_enabled
from ..kernels import batchnorm as KB
from . import basic as B
from .activation import FusedLeakyReLU, leaky_relu


def _axes(ndim: int) -> tuple:
    return (0,) + tuple(range(2, ndim))


def _per_channel(v: Tensor, ndim: int) -> Tensor:
    return B.reshape(v, (1, -1) + (1,) * (ndim - 2))


class BatchNormTrain(Function):
    """y = w * (x - mean) / sqrt(var + eps) + b with batch statistics over all axes but 1.

    gx = w * invstd * (gy - mean(gy) - xhat * mean(gy * xhat)), gw = sum(gy * xhat), gb = sum(gy).

    Without a graph to build, backward is one fused kernel that uses the forward's cached mean and
    1/std. With ``create_graph`` it recomputes the statistics from x with differentiable ops, so
    the second derivative includes how mean and 1/std move with x (treating the cached 1/std as a
    constant is the classic silent bug).

    A fourth input ``shift`` (C,), for 2-D x: the op normalises x + shift, the output of a
    Linear layer whose bias is ``shift`` (``nn.Sequential`` hands it over on the GPU: see
    ``nn.container._linear_into_batch_norm``). There the kernels add it as they read x, and
    the backward kernel also sums gx into its gradient: the Linear's bias add and
    bias-gradient sum cost no launch. Elsewhere x + shift is formed first (the same add as the
    Linear's own), and its gradient is gx summed over the batch, as the Linear's backward
    would sum it.
    """

    slope = None  # the fused LeakyReLU's (BatchNormLeakyReLUTrain)
    channel_major = False  # y stored channel-major on the GPU (``_batch_norm``'s argument)

    def __init__(self, running_mean, running_var, momentum, eps, counter=None):
        self.running_mean, self.running_var = running_mean, running_var
        self.momentum, self.eps = momentum, eps
        self.counter = counter  # a layer's num_batches_tracked, advanced by the forward

    def forward(self, x, w, b, shift=None):
        shifted = None  # x + shift, where it is formed before the kernels
        if shift is not None and not KB.takes_shift(x):
            x = shifted = x + shift
            shift = None
        y, mean, invstd = KB.batch_norm_forward_train(
            x, w, b, self.running_mean, self.running_var, self.momentum, self.eps, self.slope,
            counter=self.counter, shift=shift, channel_major=self.channel_major)
        self.saved = (mean, invstd, shifted)
        if self.slope is not None:
            self.y = y
        return y

    accumulates = True  # on the GPU, the weight's, bias's and shift's gradients: into .grad

    def backward(self, gy):
        if not is_grad_enabled():
            return self._array_backward(gy.data, None)
        return self._graph_backward(gy)

    def _array_backward(self, gy, y):
        """The first-order gradients as arrays from the fused kernels (gy masked by the fused
        LeakyReLU on output y first, when y is given)."""
        x, w = self.inputs[0], self.inputs[1]
        shift = self.inputs[3].data if len(self.inputs) == 4 else None
        mean, invstd, shifted = self.saved
        acc = self.accumulate_into
        into = None if acc is None or acc[1] is None or acc[2] is None else (acc[1], acc[2])
        out = KB.batch_norm_backward_train(
            gy, x.data if shifted is None else shifted, w.data, mean, invstd, y=y,
            negative_slope=self.slope, accumulate_into=into,
            shift=shift if shifted is None else None,
            shift_into=acc[3] if acc is not None and shift is not None else None)
        gx, gw, gb = out[:3]
        wrap = [Tensor(gx)]
        for g, target in ((gw, into and into[0]), (gb, into and into[1])):
            wrap.append(ACCUMULATED if g is target else Tensor(g))
        if shift is None:
            return tuple(wrap)
        if shifted is not None:  # x + shift was formed first: sum as the Linear's backward would
            return (*wrap, Tensor(gx.sum(axis=0)))
        gs = out[3]  # from the gradient kernel
        return (*wrap, ACCUMULATED if acc is not None and gs is acc[3] else Tensor(gs))

    def _graph_backward(self, gy):
        # (a shift moves x and its mean alike: the centred x, and so every formula below, is
        # the same without it)
        x, w = self.inputs[0], self.inputs[1]
        axes, nd = _axes(x.ndim), x.ndim
        m = x.size // x.shape[1]
        xc = x - B.mean(x, axes, keepdims=True)
        invstd = B.pow(B.mean(xc * xc, axes, keepdims=True) + self.eps, -0.5)
        xhat = xc * invstd
        gb = B.sum(gy, axes)
        gw = B.sum(gy * xhat, axes)
        gx = None
        shifted = len(self.inputs) == 4
        if self.needs_input_grad[0] or (shifted and self.needs_input_grad[3]):
            inner = gy - _per_channel(gb, nd) * (1.0 / m) - xhat * _per_channel(gw, nd) * (1.0 / m)
            gx = _per_channel(w, nd) * invstd * inner
        if shifted:
            return gx, gw, gb, B.sum(gx, axes) if self.needs_input_grad[3] else None
        return gx, gw, gb


class BatchNormLeakyReLUTrain(FusedLeakyReLU, BatchNormTrain):
    """leaky_relu(batch_norm(x), s) as one op (s = 0: ReLU): the activation runs in the
    normalising pass (one GPU launch instead of two, no second activation-sized array)."""

    def __init__(self, running_mean, running_var, momentum, eps, slope, counter=None):
        super().__init__(running_mean, running_var, momentum, eps, counter)
        self.slope = slope

    def backward(self, gy):
        if not is_grad_enabled() and backend.is_cupy_array(gy.data):
            # on the GPU the activation's mask runs inside batch norm's two backward kernels
            return self._array_backward(gy.data, self.y)
        return super().backward(gy)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """PyTorch's ``F.batch_norm``: per-channel (axis 1) normalisation of (N, C) or (N, C, ...).

    In training, batch statistics normalise and the running buffers (arrays, updated in place)
    move by ``momentum`` toward the batch mean and unbiased variance. In evaluation the running
    statistics normalise.
    """
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps,
                       None)


def batch_norm_leaky_relu(input, running_mean, running_var, weight=None, bias=None,
                          training: bool = False, momentum: float = 0.1, eps: float = 1e-5,
                          negative_slope: float = 0.0) -> Tensor:
    """``leaky_relu(batch_norm(...), negative_slope)`` (``negative_slope=0``: ReLU), the same
    values and gradients; in training one fused op (``BatchNormLeakyReLUTrain``).
    ``nn.Sequential`` calls it for a batch-norm layer followed by a LeakyReLU or ReLU."""
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps,
                       checked_slope(negative_slope))


def checked_slope(negative_slope) -> float:
    """A fused LeakyReLU's slope, as a float; negative (or NaN) is refused."""
    if not negative_slope >= 0:
        raise ValueError(f"batch_norm_leaky_relu: negative_slope must be >= 0, got "
                         f"{negative_slope}")
    return float(negative_slope)


def _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps,
                slope, counter=None, shift=None, channel_major: bool = False) -> Tensor:
    """``batch_norm`` (``slope``: with a fused LeakyReLU). ``counter``, a batch-norm layer's
    ``num_batches_tracked`` (a 0-d integer array), is advanced by one in training, once the
    input has been checked: on the GPU inside the statistics kernel, not by a launch of its own.
    ``channel_major``: in training on the GPU, the output is stored channel-major (the
    layout a transposed conv after it reads without a copy; ``nn.Sequential`` asks for it
    there); the same values."""
    x = as_tensor(input)
    xd = x.data
    if xd.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C) or (N, C, ...), got {x.shape}")
    if xd.dtype.kind != "f":  # (NumPy would fail deep in the kernel, naming a ufunc cast)
        raise TypeError(f"batch_norm: input must be float32 or float64, got {xd.dtype}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must both be given or both "
                         "be None")
    if training and not eps > 0:  # (0 divides by a zero variance; torch refuses it too)
        raise ValueError(f"batch_norm: eps must be positive in training, got {eps}")
    c = xd.shape[1]
    cls = xd.__class__  # (an array of x's class is on x's device: no check to call)
    for name, buf in (("running_mean", running_mean), ("running_var", running_var)):
        buf = buf.data if isinstance(buf, Tensor) else buf
        if buf is not None:
            if buf.__class__ is not cls:
                backend.check_same_device(xd, buf, what=f"batch_norm ({name})")
            if buf.shape != (c,):
                raise ValueError(f"batch_norm: {name} of shape {buf.shape} does not match input "
                                 f"of shape {x.shape} ({c} channels)")
    if weight is None or bias is None or not training:
        xp = backend.get_array_module(xd)
    w = as_tensor(weight, x) if weight is not None else Tensor(xp.ones(c, dtype=x.dtype))
    b = as_tensor(bias, x) if bias is not None else Tensor(xp.zeros(c, dtype=x.dtype))
    for name, p in (("weight", w), ("bias", b)):
        if p.data.shape != (c,):
            raise ValueError(f"batch_norm: {name} of shape {p.shape} does not match input of "
                             f"shape {x.shape} ({c} channels)")
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    if training:
        if xd.size // c <= 1:
            raise ValueError(f"batch_norm: training needs more than one value per channel, got "
                             f"input of shape {x.shape}")
        if counter is not None and counter.__class__ is not cls:
            backend.check_same_device(xd, counter, what="batch_norm (num_batches_tracked)")
        op = (BatchNormTrain(rm, rv, momentum, eps, counter) if slope is None
              else BatchNormLeakyReLUTrain(rm, rv, momentum, eps, slope, counter))
        if channel_major:
            op.channel_major = True
        if shift is None:
            return op(x, w, b)
        shift = as_tensor(shift, x)
        if x.ndim != 2 or shift.shape != (c,):
            raise ValueError(f"batch_norm: a shift of shape {shift.shape} for input of shape "
                             f"{x.shape}: it takes (N, C) input and a (C,) shift")
        return op(x, w, b, shift)
    if shift is not None:
        raise ValueError("batch_norm: a shift is taken in training only")
    if rm is None or rv is None:
        raise ValueError("batch_norm: evaluation mode needs running_mean and running_var")
    # Evaluation is an affine map with constant statistics: compose it, exact to every order.
    nd = x.ndim
    scale = Tensor((1.0 / xp.sqrt(rv + eps)).astype(x.dtype))
    shift = Tensor(rm.astype(x.dtype))
    xhat = (x - _per_channel(shift, nd)) * _per_channel(scale, nd)
    y = xhat * _per_channel(w, nd) + _per_channel(b, nd)
    return y if slope is None else leaky_relu(y, slope)
