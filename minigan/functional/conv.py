"""Convolutions, pooling and upsampling as differentiable functions.

conv2d, conv_transpose2d and conv2d_grad_weight cover each other's backward passes, so every
one of them can be differentiated any number of times:

* conv2d(x, W):           gx = conv_transpose2d(gy, W),   gW = conv2d_grad_weight(x, gy)
* conv_transpose2d(x, W): gx = conv2d(gy, W),             gW = conv2d_grad_weight(gy, x)
* conv2d_grad_weight(x, gy) -> gW:  gx = conv_transpose2d(gy, ggW),  ggy = conv2d(x, ggW)
"""
from __future__ import annotations

import numbers

from .. import backend
from ..autograd import ACCUMULATED, Function, Tensor, as_tensor, is_grad_enabled
from ..kernels import conv as KC
from ..kernels import elementwise as K
from ..kernels import pool as KP
from . import basic as B
from .activation import TanhGrad


def _pair(v, name: str, minimum: int) -> tuple:
    """An int or an (h, w) pair as a pair of ints; anything else (a float, a fractional entry,
    a string, three entries) is refused with an error that names it, as is an entry below
    ``minimum`` (for a pair of ints the kernels check that, at every call)."""
    if v.__class__ is tuple and len(v) == 2 and v[0].__class__ is int \
            and v[1].__class__ is int:
        return v  # (what the layers hold, on every call; the kernels check the minimum)
    return KC._pair(v, name, minimum)


def _output_padding(in_size, out_size, k, s, p, d) -> tuple:
    """The output_padding that makes conv_transpose2d map ``out_size`` back to ``in_size``."""
    return tuple(i - ((o - 1) * s_ - 2 * p_ + d_ * (k_ - 1) + 1)
                 for i, o, k_, s_, p_, d_ in zip(in_size, out_size, k, s, p, d))


def _crop_to(t: Tensor, shape) -> Tensor:
    """Drop trailing rows/columns a conv produced beyond ``shape``.

    With output_padding >= stride (allowed when it is below the dilation) a transposed conv's
    output has rows that no input pixel produced; convolving back over them yields positions
    that have no input to receive a gradient.
    """
    if t.shape == tuple(shape):
        return t
    return B.getitem(t, (slice(None), slice(None), slice(0, shape[2]), slice(0, shape[3])))


def _with_bias_grad(f, gy, gx, gw):
    """(gx, gw), plus gb = the sum of gy over (N, H, W) when the layer has a bias."""
    if len(f.inputs) == 3:
        return gx, gw, (Tensor(gy.sum(axis=(0, 2, 3))) if f.needs_input_grad[2] else None)
    return gx, gw


def _conv2d_backward_arrays(f, gy, x, w):
    """Conv2d's first-order backward on arrays (the formulas of ``Conv2d.backward``). The
    weight's gradient is added into its .grad by the GEMM itself where the engine offers that
    array (``Function.accumulates``)."""
    s, p, d = f.stride, f.padding, f.dilation
    need = f.needs_input_grad
    into = f.accumulate_into[1] if f.accumulate_into is not None else None
    cols = f.saved  # the forward's im2col of x, where it kept one (GPU)
    gx = gw = None
    if need[0] and need[1]:  # on the GPU, from one transposed copy of gy
        gx, gw = KC.conv2d_input_and_weight_grads(x, w, gy, s, p, d, accumulate_into=into,
                                                  cols=cols)
        gx = Tensor(gx)
    elif need[0]:
        op = _output_padding(x.shape[2:], gy.shape[2:], w.shape[2:], s, p, d)
        gx = Tensor(KC.conv_transpose2d_forward(gy, w, None, s, p, op, d))
    elif need[1]:
        gw = KC.conv2d_grad_weight(x, gy, w.shape[2:], s, p, d, accumulate_into=into,
                                   cols=cols)
    if gw is not None:
        gw = ACCUMULATED if into is not None and gw is into else Tensor(gw)
    return _with_bias_grad(f, gy, gx, gw)


def _conv_transpose2d_backward_arrays(f, gy, x, w, tanh_y=None):
    """ConvTranspose2d's first-order backward on arrays (``ConvTranspose2d.backward``);
    with ``tanh_y``, the output of a Tanh after it, gy is first taken through that Tanh's
    backward (on the GPU inside the im2col gather of gy, where both gradients are wanted and
    there is no bias)."""
    s, p, d = f.stride, f.padding, f.dilation
    need = f.needs_input_grad
    if tanh_y is not None and not (need[0] and need[1] and len(f.inputs) == 2):
        gy, tanh_y = K.tanh_backward(gy, tanh_y), None
    gx = gw = None
    if need[0] and need[1]:  # both from one im2col of gy
        g, gw = KC.conv2d_forward_and_grad_weight(gy, w, x, s, p, d, tanh_y=tanh_y)
        gw = Tensor(gw)
    elif need[0]:
        g = KC.conv2d_forward(gy, w, None, s, p, d)
    elif need[1]:
        gw = Tensor(KC.conv2d_grad_weight(gy, x, w.shape[2:], s, p, d))
    if need[0]:
        if g.shape != x.shape:
            g = g[:, :, :x.shape[2], :x.shape[3]]
        gx = Tensor(g)
    return _with_bias_grad(f, gy, gx, gw)


class Conv2d(Function):
    """y = conv2d(x, W) + b; gx = conv_transpose2d(gy, W), gW = conv2d_grad_weight(x, gy),
    gb = sum of gy over (N, H, W)."""

    accumulates = True  # the weight's gradient: a GEMM with beta = 1 into its .grad
    saved = None  # the forward's im2col matrix, when it keeps one

    def __init__(self, stride, padding, dilation, keep_cols: bool = False):
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.keep_cols = keep_cols

    def forward(self, x, w, b=None):
        if not self.keep_cols:
            return KC.conv2d_forward(x, w, b, self.stride, self.padding, self.dilation)
        # the weight's gradient will be wanted: on the GPU its im2col of x is kept (in saved,
        # which release() frees) for the backward to reuse
        y, self.saved = KC.conv2d_forward(x, w, b, self.stride, self.padding, self.dilation,
                                          keep_cols=True)
        return y

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        s, p, d = self.stride, self.padding, self.dilation
        if not is_grad_enabled():  # a plain backward: the kernels, without the op layer
            return _conv2d_backward_arrays(self, gy.data, x.data, w.data)
        gx = gw = None
        if self.needs_input_grad[0]:
            op = _output_padding(x.shape[2:], gy.shape[2:], w.shape[2:], s, p, d)
            gx = conv_transpose2d(gy, w, None, s, p, op, dilation=d)
        if self.needs_input_grad[1]:
            gw = conv2d_grad_weight(x, gy, w.shape[2:], s, p, d)
        if len(self.inputs) == 3:
            gb = B.sum(gy, (0, 2, 3)) if self.needs_input_grad[2] else None
            return gx, gw, gb
        return gx, gw


class ConvTranspose2d(Function):
    """y = conv_transpose2d(x, W) + b; gx = conv2d(gy, W), gW = conv2d_grad_weight(gy, x),
    gb = sum of gy over (N, H, W)."""

    def __init__(self, stride, padding, output_padding, dilation):
        self.stride, self.padding = stride, padding
        self.output_padding, self.dilation = output_padding, dilation

    def forward(self, x, w, b=None):
        return KC.conv_transpose2d_forward(x, w, b, self.stride, self.padding,
                                           self.output_padding, self.dilation)

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        s, p, d = self.stride, self.padding, self.dilation
        if not is_grad_enabled():
            return _conv_transpose2d_backward_arrays(self, gy.data, x.data, w.data)
        gx = None
        if self.needs_input_grad[0]:
            gx = _crop_to(conv2d(gy, w, None, s, p, d), x.shape)
        gw = conv2d_grad_weight(gy, x, w.shape[2:], s, p, d) if self.needs_input_grad[1] else None
        if len(self.inputs) == 3:
            gb = B.sum(gy, (0, 2, 3)) if self.needs_input_grad[2] else None
            return gx, gw, gb
        return gx, gw


class ConvTranspose2dTanh(ConvTranspose2d):
    """tanh(conv_transpose2d(x, W) + b) as one op: on the GPU the tanh is taken by the col2im
    kernel that writes the output (one launch instead of two, no second output-sized array);
    elsewhere in place on the new output. Backward: gy * (1 - y^2), then the transposed
    conv's backward, with gy * (1 - y^2) computed inside the GPU's im2col gather of it where
    the layer has no bias."""

    def forward(self, x, w, b=None):
        return KC.conv_transpose2d_forward(x, w, b, self.stride, self.padding,
                                           self.output_padding, self.dilation, tanh=True)

    def backward(self, gy):
        y = self.output()
        if not is_grad_enabled():
            x, w = self.inputs[0], self.inputs[1]
            return _conv_transpose2d_backward_arrays(self, gy.data, x.data, w.data,
                                                     tanh_y=y.data)
        gy = TanhGrad()(gy, y)  # y of the graph: its own derivative runs through this op
        return super().backward(gy)


class Conv2dGradWeight(Function):
    """gW = conv2d_grad_weight(x, gy), the weight gradient of conv2d. It is bilinear in (x, gy):
    gx = conv_transpose2d(gy, ggW), ggy = conv2d(x, ggW)."""

    def __init__(self, kernel_size, stride, padding, dilation):
        self.kernel_size = kernel_size
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def forward(self, x, gy):
        return KC.conv2d_grad_weight(x, gy, self.kernel_size, self.stride, self.padding,
                                     self.dilation)

    def backward(self, ggw):
        x, gy = self.inputs
        s, p, d = self.stride, self.padding, self.dilation
        gx = ggy = None
        if self.needs_input_grad[0]:
            op = _output_padding(x.shape[2:], gy.shape[2:], self.kernel_size, s, p, d)
            gx = conv_transpose2d(gy, ggw, None, s, p, op, dilation=d)
        if self.needs_input_grad[1]:
            ggy = _crop_to(conv2d(x, ggw, None, s, p, d), gy.shape)
        return gx, ggy


def _check_groups(name, groups):
    if groups != 1:
        raise NotImplementedError(f"{name}: groups={groups!r} is not supported; minigan's "
                                  "convolutions have groups=1")


def _refuse(fn: str, name: str, value, default) -> None:
    """The error for a torch argument that minigan takes at torch's default value only (the
    caller compares first, so a call with the default pays one comparison)."""
    raise NotImplementedError(f"{fn}: {name}={value!r} is not supported; minigan supports "
                              f"only {name}={default!r}")


def _check_4d(name, x):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D input (N, C, H, W), got shape {x.shape}")


def _conv_operands(name: str, input, weight, weight_axes: str):
    """``(x, w, x's shape, w's shape)``: input and weight as tensors (a tensor as it is), both
    checked 4-D; ``weight_axes`` names the weight's axes for the error."""
    x = input if isinstance(input, Tensor) else as_tensor(input)
    w = weight if isinstance(weight, Tensor) else as_tensor(weight, x)
    xs, ws = x.data.shape, w.data.shape
    if len(xs) != 4:
        _check_4d(name, x)
    if len(ws) != 4:
        raise ValueError(f"{name}: weight must be 4-D ({weight_axes}), got shape {w.shape}")
    return x, w, xs, ws


def same_padding(kernel_size, dilation) -> tuple:
    """``padding='same'`` of a stride-1 2-D conv as ``(padding, extra)``: the symmetric padding
    each side, and the zero rows and columns added at the bottom and right when the total
    dilation * (k - 1) is odd (where PyTorch puts the odd one)."""
    total = [d * (k - 1) for d, k in zip(dilation, kernel_size)]
    left = tuple(t // 2 for t in total)
    return left, tuple(t - 2 * lf for t, lf in zip(total, left))


def string_padding(fn: str, padding: str, stride, kernel_size, dilation) -> tuple:
    """``(padding, extra)`` for ``padding='valid'`` or ``'same'`` (see ``same_padding``); the
    errors of torch's for another string or 'same' with a stride."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding != "same":
        raise ValueError(f"{fn}: invalid padding string {padding!r}, should be one of "
                         "['valid', 'same']")
    if tuple(stride) != (1, 1):
        raise ValueError(f"{fn}: padding='same' is not supported for strided convolutions "
                         f"(stride={tuple(stride)})")
    return same_padding(kernel_size, dilation)


def pad_end(x: Tensor, extra_h: int, extra_w: int) -> Tensor:
    """x (N, C, H, W) with ``extra_h`` zero rows at the bottom and ``extra_w`` zero columns on
    the right (how PyTorch places the odd pixel of a 'same' padding)."""
    x = as_tensor(x)
    xp = backend.get_array_module(x.data)
    if extra_h:
        n, c, _, w = x.shape
        x = B.concat([x, Tensor(xp.zeros((n, c, extra_h, w), dtype=x.dtype))], 2)
    if extra_w:
        n, c, h, _ = x.shape
        x = B.concat([x, Tensor(xp.zeros((n, c, h, extra_w), dtype=x.dtype))], 3)
    return x



def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """PyTorch's ``F.conv2d`` (groups=1 only); weight of shape (out, in, kh, kw). ``padding``
    is an int, a pair, ``'valid'`` or ``'same'`` (stride 1; see ``same_padding``)."""
    _check_groups("conv2d", groups)
    x, w, xs, ws = _conv_operands("conv2d", input, weight, "out, in, kh, kw")
    if xs[1] != ws[1]:
        raise ValueError(f"conv2d: input of shape {x.shape} has {x.shape[1]} channels but weight "
                         f"of shape {w.shape} expects {w.shape[1]}")
    if isinstance(padding, str):
        stride, dilation = _pair(stride, "stride", 1), _pair(dilation, "dilation", 1)
        padding, extra = string_padding("conv2d", padding, stride, tuple(ws[2:]), dilation)
        if extra != (0, 0):
            x = pad_end(x, *extra)
            xs = x.shape
    f = Conv2d(_pair(stride, "stride", 1), _pair(padding, "padding", 0),
               _pair(dilation, "dilation", 1),
               keep_cols=w.requires_grad and is_grad_enabled() and backend.is_cupy_array(x.data))
    if xs[0]:
        return f(x, w) if bias is None else f(x, w, as_tensor(bias, x))
    # an empty batch, after the kernels' checks of the arguments
    b = None if bias is None else as_tensor(bias, x)
    out_hw = KC._conv2d_args(x.data, w.data, None if b is None else b.data, f.stride,
                             f.padding, f.dilation)[4]
    return _EmptyBatch((0, ws[0], *out_hw))(*((x, w) if b is None else (x, w, b)))


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1) -> Tensor:
    """PyTorch's ``F.conv_transpose2d`` (groups=1 only); weight of shape (in, out, kh, kw).
    The arguments come in PyTorch's order: ``groups`` before ``dilation``."""
    return _conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, ConvTranspose2d)


def conv_transpose2d_tanh(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                          groups=1, dilation=1) -> Tensor:
    """``tanh(conv_transpose2d(...))`` as one fused op (``ConvTranspose2dTanh``), the same
    values and gradients. ``nn.Sequential`` calls it for a ConvTranspose2d layer followed by
    a Tanh (a DCGAN generator's output layer)."""
    return _conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups,
                             dilation, ConvTranspose2dTanh)


def _conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation,
                      make) -> Tensor:
    _check_groups("conv_transpose2d", groups)
    x, w, xs, ws = _conv_operands("conv_transpose2d", input, weight, "in, out, kh, kw")
    if xs[1] != ws[0]:
        raise ValueError(f"conv_transpose2d: input of shape {x.shape} has {x.shape[1]} channels "
                         f"but weight of shape {w.shape} expects {w.shape[0]}")
    f = make(_pair(stride, "stride", 1), _pair(padding, "padding", 0),
             _pair(output_padding, "output_padding", 0), _pair(dilation, "dilation", 1))
    if xs[0]:
        return f(x, w) if bias is None else f(x, w, as_tensor(bias, x))
    # an empty batch, after the kernels' checks of the arguments
    b = None if bias is None else as_tensor(bias, x)
    out_hw = KC._checked(KC._check_conv_transpose_args, x.data, w.data,
                         None if b is None else b.data, f.stride, f.padding, f.output_padding,
                         f.dilation)[5]
    return _EmptyBatch((0, ws[1], *out_hw))(*((x, w) if b is None else (x, w, b)))


class _EmptyBatch(Function):
    """A conv of a batch of none (N = 0): an empty output of ``shape``, and zero gradients for
    the input, the weight and the bias (the sums over no samples), as torch gives; the GPU
    kernels' launch shapes assume N >= 1. The op is identically zero, so its zero gradients are
    exact at every order."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, shape):
        self.shape = shape

    def forward(self, *arrays):
        return backend.get_array_module(arrays[0]).zeros(self.shape, dtype=arrays[0].dtype)

    def backward(self, gy):
        xp = backend.get_array_module(gy.data)
        return tuple(Tensor(xp.zeros(t.shape, dtype=t.dtype)) if want else None
                     for t, want in zip(self.inputs, self.needs_input_grad))


def conv2d_grad_weight(input, grad_output, kernel_size, stride=1, padding=0,
                       dilation=1) -> Tensor:
    """The gradient of ``sum(grad_output * conv2d(input, W))`` with respect to W."""
    x = as_tensor(input)
    gy = as_tensor(grad_output, x)
    return Conv2dGradWeight(_pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1),
                            _pair(padding, "padding", 0), _pair(dilation, "dilation", 1))(x, gy)


# ----------------------------------------------------------------------------- pooling

class MaxPool2d(Function):
    """y = max over each window; gx = gy routed to each window's argmax.

    Declared once-differentiable: it is only used by the evaluation classifier, which never
    needs second derivatives.
    """

    once_differentiable = True

    def __init__(self, kernel_size, stride, padding):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        y, self.saved = KP.max_pool2d_forward(x, self.kernel_size, self.stride, self.padding)
        return y

    def backward(self, gy):
        x = self.inputs[0]
        return Tensor(KP.max_pool2d_backward(gy.data, self.saved, x.shape, self.kernel_size,
                                             self.stride, self.padding))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """PyTorch's ``F.max_pool2d`` (its argument order: ``ceil_mode`` before
    ``return_indices``); ``dilation`` 1 and ``ceil_mode=False`` only. With ``return_indices``:
    ``(output, indices)``, each index h*W + w in its input plane (int64), as torch's."""
    if dilation != 1 and _pair(dilation, "dilation", 1) != (1, 1):
        _refuse("max_pool2d", "dilation", dilation, 1)
    if ceil_mode:
        _refuse("max_pool2d", "ceil_mode", ceil_mode, False)
    x = as_tensor(input)
    _check_4d("max_pool2d", x)
    k = _pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else _pair(stride, "stride", 1)
    f = MaxPool2d(k, s, _pair(padding, "padding", 0))
    y = f(x)
    if return_indices:  # the forward's argmax positions, a copy (backward reads its own)
        return y, Tensor(f.saved.copy())
    return y


class AvgPool2d(Function):
    """y = mean over each window (padding counted); gx = AvgPool2dGrad(gy), a linear map."""

    def __init__(self, kernel_size, stride, padding):
        self.args = (kernel_size, stride, padding)

    def forward(self, x):
        return KP.avg_pool2d_forward(x, *self.args)

    def backward(self, gy):
        return AvgPool2dGrad(self.inputs[0].shape, self.args)(gy)


class AvgPool2dGrad(Function):
    """gx = adjoint of average pooling applied to gy; its own backward is average pooling."""

    def __init__(self, x_shape, args):
        self.x_shape, self.args = x_shape, args

    def forward(self, gy):
        return KP.avg_pool2d_backward(gy, self.x_shape, *self.args)

    def backward(self, ggx):
        return AvgPool2d(*self.args)(ggx)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None) -> Tensor:
    """PyTorch's ``F.avg_pool2d`` (``ceil_mode=False`` only). Each window's sum is divided by
    kh*kw, by the number of real (unpadded) pixels in it with ``count_include_pad=False``, or
    by ``divisor_override`` (a nonzero int) when given."""
    if ceil_mode:
        _refuse("avg_pool2d", "ceil_mode", ceil_mode, False)
    d = divisor_override
    if d is not None:
        check_divisor_override("avg_pool2d", d)
    x = as_tensor(input)
    _check_4d("avg_pool2d", x)
    k = _pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else _pair(stride, "stride", 1)
    p = _pair(padding, "padding", 0)
    y = AvgPool2d(k, s, p)(x)  # the mean over kh*kw, rescaled below for the other divisors
    if d is not None:
        return y * (k[0] * k[1] / int(d))
    if not count_include_pad and p != (0, 0):
        return y * Tensor(_real_pixel_scale(x, k, s, p, y.shape[2:]))
    return y


def check_divisor_override(fn: str, d) -> None:
    """``divisor_override`` must be a nonzero int (torch's rule)."""
    if isinstance(d, bool) or not isinstance(d, numbers.Integral):
        raise TypeError(f"{fn}: divisor_override must be an int, got {d!r}")
    if d == 0:
        raise ValueError(f"{fn}: divisor_override must not be zero")


def _real_pixel_scale(x: Tensor, k, s, p, out_hw):
    """kh*kw / (the number of real pixels in each window), of shape (Ho, Wo) in x's dtype on
    x's device: what turns a mean over kh*kw into one over the unpadded pixels. From the
    geometry alone (no data read)."""
    xp = backend.get_array_module(x.data)
    counts = []
    for t in range(2):
        start = xp.arange(out_hw[t]) * s[t] - p[t]
        counts.append(xp.minimum(start + k[t], x.shape[2 + t]) - xp.maximum(start, 0))
    return ((k[0] * k[1]) / (counts[0][:, None] * counts[1][None, :])).astype(x.dtype)


def adaptive_avg_pool2d_1(input) -> Tensor:
    """Global average pooling to 1x1 (N, C, 1, 1)."""
    x = as_tensor(input)
    return B.mean(x, (2, 3), keepdims=True)


class UpsampleNearest2d(Function):
    """y = each pixel repeated s x s times; gx = gy summed over each s x s block."""

    def __init__(self, scale):
        self.scale = scale

    def forward(self, x):
        return KP.upsample_nearest2d_forward(x, self.scale)

    def backward(self, gy):
        return UpsampleNearest2dGrad(self.scale)(gy)


class UpsampleNearest2dGrad(Function):
    """gx = block sums of gy (the adjoint of nearest upsampling); its backward is upsampling."""

    def __init__(self, scale):
        self.scale = scale

    def forward(self, gy):
        return KP.upsample_nearest2d_backward(gy, self.scale)

    def backward(self, ggx):
        return UpsampleNearest2d(self.scale)(ggx)


def upsample_nearest2d(input, scale_factor: int = 2) -> Tensor:
    x = as_tensor(input)
    _check_4d("upsample_nearest2d", x)
    if int(scale_factor) != scale_factor or scale_factor < 1:
        raise ValueError(f"upsample_nearest2d: scale_factor must be a positive integer, got "
                         f"{scale_factor}")
    return UpsampleNearest2d(int(scale_factor))(x)
