"""Layers with PyTorch's names, argument orders, weight layouts and default initialisations."""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import backend
from .. import functional as F
from ..functional.activation import linear_leaky_relu, linear_tanh
from ..functional.conv import (check_divisor_override, conv_transpose2d_tanh, pad_end,
                               same_padding)
from ..functional.norm import _batch_norm, checked_slope
from . import init
from .container import Sequential  # noqa: F401 - its former home
from .module import Module, Parameter


def _param(shape, device, dtype) -> Parameter:
    xp = backend.xp_for(device or "cpu")
    return Parameter(xp.empty(shape, dtype=np.dtype(dtype or np.float32)))


def _pair(v, name: str = "size"):
    """An int (a NumPy one too) as (v, v), a pair as a tuple; what is neither (a float) is
    refused by name. Whole numbers, minimums and lengths are checked when the layer runs, by
    the functional ops."""
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, np.integer):
        return (int(v), int(v))
    try:
        return tuple(v)
    except TypeError:
        raise TypeError(f"{name} must be an int or an (h, w) pair, got {v!r}") from None


def _reset_fan_in_uniform(weight: Parameter, bias, fan_in: int) -> None:
    # PyTorch's default: kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)


class Identity(Module):
    """Returns its input; constructor arguments are accepted and ignored, as in PyTorch."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x W^T + b, weight (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _param((out_features, in_features), device, dtype)
        if bias:
            self.bias = _param((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_fan_in_uniform(self.weight, self.bias, self.in_features)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def _forward_without_bias(self, x):
        """x W^T, for a batch-norm layer after this one that adds the bias itself (see
        ``Sequential.forward``)."""
        return F.linear(x, self.weight, None)

    def _forward(self, x, act):
        """forward(x) followed by leaky_relu(., act) (0: ReLU), or by tanh when act is
        ``"tanh"``, as one fused op (see ``Sequential.forward``)."""
        if act == "tanh":
            return linear_tanh(x, self.weight, self.bias)
        return linear_leaky_relu(x, self.weight, self.bias, act)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_padding_mode(cls: str, padding_mode) -> None:
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {list(_PADDING_MODES)}, but got "
                         f"padding_mode={padding_mode!r}")
    if padding_mode != "zeros":
        raise NotImplementedError(f"{cls}: padding_mode={padding_mode!r} is not implemented in "
                                  "minigan; only 'zeros' is")


class Conv2d(Module):
    """2-D convolution, weight (out_channels, in_channels, kh, kw).

    ``padding`` is an int, a pair, ``'valid'`` (no padding) or ``'same'`` (stride 1 only; the
    output keeps the input's size). When the total 'same' padding dilation * (k - 1) is odd,
    the extra row and column go at the bottom and right, as in PyTorch.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__()
        if groups != 1:
            raise NotImplementedError(f"Conv2d: only groups=1 is supported, got groups={groups}")
        _check_padding_mode("Conv2d", padding_mode)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        self.groups, self.padding_mode = groups, padding_mode
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "['valid', 'same']")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f"padding='same' is not supported for strided convolutions "
                                 f"(stride={self.stride})")
            self.padding = padding
        else:
            self.padding = _pair(padding, "padding")
        self._conv_padding, self._end_padding = self._resolve_padding()
        self.weight = _param((out_channels, in_channels) + self.kernel_size, device, dtype)
        if bias:
            self.bias = _param((out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _resolve_padding(self):
        """(symmetric padding for the conv, extra (rows, cols) at the bottom/right)."""
        if self.padding == "valid":
            return (0, 0), (0, 0)
        if self.padding == "same":
            return same_padding(self.kernel_size, self.dilation)
        return self.padding, (0, 0)

    def reset_parameters(self):
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        _reset_fan_in_uniform(self.weight, self.bias, fan_in)

    def forward(self, input):
        if self._end_padding != (0, 0):
            input = pad_end(input, *self._end_padding)
        return F.conv2d(input, self.weight, self.bias, stride=self.stride,
                        padding=self._conv_padding, dilation=self.dilation)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) \
                else f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        return s + ("" if self.bias is not None else ", bias=False")


class ConvTranspose2d(Module):
    """2-D transposed convolution, weight (in_channels, out_channels, kh, kw)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__()
        if groups != 1:
            raise NotImplementedError(f"ConvTranspose2d: only groups=1 is supported, got "
                                      f"groups={groups}")
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for ConvTranspose2d, got '
                             f"padding_mode={padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a pair, got "
                             f"{padding!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.output_padding = _pair(output_padding, "output_padding")
        self.dilation = _pair(dilation, "dilation")
        self.groups, self.padding_mode = groups, padding_mode
        self.weight = _param((in_channels, out_channels) + self.kernel_size, device, dtype)
        if bias:
            self.bias = _param((out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        # PyTorch computes the fan-in from weight.shape[1], i.e. out_channels, for transposes
        fan_in = self.out_channels * self.kernel_size[0] * self.kernel_size[1]
        _reset_fan_in_uniform(self.weight, self.bias, fan_in)

    def _output_padding(self, input, output_size) -> tuple:
        """The output_padding that gives ``output_size`` ((H, W), or with N and C in front)."""
        if output_size is None:
            return self.output_padding
        size = tuple(int(v) for v in output_size)
        if len(size) == 4:
            size = size[2:]
        if len(size) != 2:
            raise ValueError(f"ConvTranspose2d: output_size must have 2 or 4 elements, got "
                             f"{tuple(output_size)}")
        pads = []
        for d in range(2):
            lo = ((input.shape[d + 2] - 1) * self.stride[d] - 2 * self.padding[d]
                  + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            hi = lo + self.stride[d] - 1
            if not lo <= size[d] <= hi:
                raise ValueError(f"ConvTranspose2d: requested an output size of {size}, but "
                                 f"valid sizes range from ({lo}..) to ({hi}..) in dimension "
                                 f"{d + 2} for an input of shape {input.shape}")
            pads.append(size[d] - lo)
        return tuple(pads)

    def forward(self, input, output_size=None):
        return F.conv_transpose2d(input, self.weight, self.bias, stride=self.stride,
                                  padding=self.padding,
                                  output_padding=self._output_padding(input, output_size),
                                  dilation=self.dilation)

    def _forward(self, x, act):
        """forward(x) followed by tanh (``act == "tanh"``), as one fused op (see
        ``Sequential.forward``)."""
        if act != "tanh":
            raise ValueError(f"ConvTranspose2d fuses a Tanh only, got {act!r}")
        return conv_transpose2d_tanh(x, self.weight, self.bias, stride=self.stride,
                                     padding=self.padding, output_padding=self.output_padding,
                                     dilation=self.dilation)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        return s + ("" if self.bias is not None else ", bias=False")


def affine_parameters(module: Module, shape: tuple, affine: bool, bias: bool, device,
                      dtype) -> None:
    """``weight`` and ``bias`` of ``shape`` (``bias=False``: no bias), or both None."""
    if affine:
        module.weight = _param(shape, device, dtype)
        if bias:
            module.bias = _param(shape, device, dtype)
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


def reset_affine(module: Module) -> None:
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


def register_running_stats(module, num_features: int, track: bool, device, dtype) -> None:
    """The buffers ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked``
    (0-d int64) of a normalization layer, as torch's; all None when ``track`` is off."""
    if track:
        xp = backend.xp_for(device or "cpu")
        dt = np.dtype(dtype or np.float32)
        module.register_buffer("running_mean", xp.zeros(num_features, dtype=dt))
        module.register_buffer("running_var", xp.ones(num_features, dtype=dt))
        module.register_buffer("num_batches_tracked", xp.zeros((), dtype=np.int64))
        # a state without it (saved before torch had it) loads, and leaves it as it is
        module._state_optional = ("num_batches_tracked",)
    else:
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            module.register_buffer(name, None)


def reset_running_stats(module) -> None:
    """Running mean 0, running variance 1 and the batch count 0, in place (when tracked)."""
    if module.track_running_stats:
        module.running_mean[...] = 0
        module.running_var[...] = 1
        module.num_batches_tracked[...] = 0


class NormBase(Module):
    """What batch and instance norm share (torch's ``_NormBase``): the per-channel ``weight``
    and ``bias`` when ``affine``, the running-statistics buffers when ``track_running_stats``,
    and their resets."""
    _expected_dims: tuple = ()

    def __init__(self, num_features: int, eps: float, momentum: float | None, affine: bool,
                 track_running_stats: bool, device, dtype, bias: bool):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        affine_parameters(self, (num_features,), affine, bias, device, dtype)
        register_running_stats(self, num_features, track_running_stats, device, dtype)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1 and the batch count 0, in place."""
        reset_running_stats(self)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        reset_affine(self)


class _BatchNorm(NormBase):
    """Batch normalisation over axis 1, with PyTorch's arguments and buffers.

    ``momentum=None`` keeps a cumulative average: batch k moves the running statistics by 1/k,
    where k is the ``num_batches_tracked`` buffer. The factor 1/k is computed from the buffer on
    the buffer's device, so there is no device-to-host read per step and any change of the
    buffer (``load_state_dict``, ``reset_running_stats()``, an in-place edit) is honoured.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None,
                 *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias)

    def forward(self, input):
        return self._forward(input, None)

    def _forward(self, x, slope, shift=None, channel_major: bool = False):
        """forward(x), followed by leaky_relu(., slope) when ``slope`` is not None (0: ReLU),
        fused into the batch-norm op in training (see ``Sequential.forward``); ``shift``, the
        bias of the Linear layer before, which the training op adds to x; ``channel_major``,
        the GPU output's layout in training (a transposed conv comes next)."""
        if x.ndim not in self._expected_dims:
            raise ValueError(f"{type(self).__name__}: expected a "
                             f"{' or '.join(map(str, self._expected_dims))}-D input, got shape "
                             f"{x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): input of shape "
                             f"{x.shape} has {x.shape[1]} channels")
        counter = None
        if shift is not None and not (self.training and self.momentum is not None):
            raise ValueError(f"{type(self).__name__}: a shift is taken in training with a "
                             "momentum only")
        if self.training and self.num_batches_tracked is not None:
            if self.momentum is None:
                self.num_batches_tracked += 1  # in place, on the device: no host sync
                y = self._forward_cumulative(x)
                return y if slope is None else F.leaky_relu(y, slope)
            counter = self.num_batches_tracked  # advanced by the training forward (its kernel)
        if self.training or self.running_mean is None:  # batch statistics
            args = (x, self.running_mean if self.training else None,
                    self.running_var if self.training else None, self.weight, self.bias, True,
                    0.0 if self.momentum is None else self.momentum, self.eps)
        else:
            args = (x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                    self.eps)
        # F.batch_norm, or batch_norm_leaky_relu, with the layer's counter
        return _batch_norm(*args, None if slope is None else checked_slope(slope), counter,
                           shift, channel_major)

    def _forward_cumulative(self, x):
        # A momentum-1 update into zeroed scratch buffers captures the batch mean and unbiased
        # variance; they are then averaged in with 1/k read on the device from the counter.
        xp = backend.get_array_module(self.running_mean)
        batch_mean = xp.zeros_like(self.running_mean)
        batch_var = xp.zeros_like(self.running_var)
        y = F.batch_norm(x, batch_mean, batch_var, self.weight, self.bias, True, 1.0, self.eps)
        factor = 1.0 / self.num_batches_tracked.astype(np.float64)
        self.running_mean[...] = (1.0 - factor) * self.running_mean + factor * batch_mean
        self.running_var[...] = (1.0 - factor) * self.running_var + factor * batch_var
        return y

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs."""
    _expected_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs."""
    _expected_dims = (4,)


_INPLACE_NOTE = ("``inplace`` is accepted for PyTorch compatibility; minigan never overwrites "
                 "activations, so the result is computed out of place and is identical.")


class LeakyReLU(Module):
    """max(x, 0) + negative_slope * min(x, 0)."""
    __doc__ += "\n\n    " + _INPLACE_NOTE

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace
                                                            else "")


class ReLU(Module):
    """max(x, 0)."""
    __doc__ += "\n\n    " + _INPLACE_NOTE

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    def forward(self, input):
        return F.tanh(input)


class Sigmoid(Module):
    def forward(self, input):
        return F.sigmoid(input)


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class _Inplace(Module):
    """An activation whose one argument is torch's ``inplace`` flag, shown by the repr when set
    (unless ``_repr_inplace`` is False: torch's Hardsigmoid and Hardswish never show it)."""
    _repr_inplace = True

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self):
        return "inplace=True" if self.inplace and self._repr_inplace else ""


class _Alpha(Module):
    """ELU and CELU: ``alpha`` and the ``inplace`` flag."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class ELU(_Alpha):
    """x for x > 0, else alpha (exp(x) - 1)."""
    __doc__ += "\n\n    " + _INPLACE_NOTE

    def forward(self, input):
        return F.elu(input, self.alpha)


class CELU(_Alpha):
    """max(0, x) + min(0, alpha (exp(x / alpha) - 1))."""
    __doc__ += "\n\n    " + _INPLACE_NOTE

    def forward(self, input):
        return F.celu(input, self.alpha)


class SELU(_Inplace):
    """scale * elu(x, alpha), torch's self-normalising constants."""
    __doc__ += "\n\n    " + _INPLACE_NOTE

    def forward(self, input):
        return F.selu(input)


class SiLU(_Inplace):
    """x sigmoid(x)."""
    __doc__ += "\n\n    " + _INPLACE_NOTE

    def forward(self, input):
        return F.silu(input)


class Mish(_Inplace):
    """x tanh(softplus(x))."""
    __doc__ += "\n\n    " + _INPLACE_NOTE

    def forward(self, input):
        return F.mish(input)


class Hardsigmoid(_Inplace):
    """relu6(x + 3) / 6."""
    __doc__ += "\n\n    " + _INPLACE_NOTE
    _repr_inplace = False

    def forward(self, input):
        return F.hardsigmoid(input)


class Hardswish(_Inplace):
    """x relu6(x + 3) / 6."""
    __doc__ += "\n\n    " + _INPLACE_NOTE
    _repr_inplace = False

    def forward(self, input):
        return F.hardswish(input)


class GELU(Module):
    """x Phi(x), exactly (``approximate='none'``) or with torch's tanh approximation."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Hardtanh(Module):
    """x clamped to [min_val, max_val] (``min_value``/``max_value``: torch's deprecated
    names, with its warning); max_val must exceed min_val, as torch asserts."""
    __doc__ += "\n\n    " + _INPLACE_NOTE

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value=None, max_value=None):
        super().__init__()
        for old, new, v in (("min_value", "min_val", min_value),
                            ("max_value", "max_val", max_value)):
            if v is not None:
                warnings.warn(f"keyword argument `{old}` is deprecated and renamed to `{new}`",
                              stacklevel=2)
        min_val = min_val if min_value is None else min_value
        max_val = max_val if max_value is None else max_value
        if max_val <= min_val:
            raise AssertionError(f"max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self):
        return (f"min_val={self.min_val}, max_val={self.max_val}"
                + (", inplace=True" if self.inplace else ""))


class ReLU6(Hardtanh):
    """min(max(x, 0), 6) (a Hardtanh, as in torch)."""
    __doc__ += "\n\n    " + _INPLACE_NOTE

    def __init__(self, inplace: bool = False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Softsign(Module):
    def forward(self, input):
        return F.softsign(input)


class LogSigmoid(Module):
    def forward(self, input):
        return F.logsigmoid(input)


class Tanhshrink(Module):
    def forward(self, input):
        return F.tanhshrink(input)


class _Shrink(Module):
    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = lambd

    def extra_repr(self):
        return str(self.lambd)


class Softshrink(_Shrink):
    """x - lambd above lambd, x + lambd below -lambd, else 0."""

    def forward(self, input):
        return F.softshrink(input, self.lambd)


class Hardshrink(_Shrink):
    """x where |x| > lambd, else 0."""

    def forward(self, input):
        return F.hardshrink(input, self.lambd)


class Threshold(Module):
    """``value`` where x <= threshold, else x."""
    __doc__ += "\n\n    " + _INPLACE_NOTE

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value)

    def extra_repr(self):
        return (f"threshold={self.threshold}, value={self.value}"
                + (", inplace=True" if self.inplace else ""))


class PReLU(Module):
    """x for x > 0, else a x, with a learnt ``weight`` of ``num_parameters`` values (1, or one
    per channel of dim 1), initialised to ``init``."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = _param((num_parameters,), device, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        init.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Randomized leaky ReLU: a slope from U(lower, upper) per element in training (from the
    input device's default generator), the mean slope in evaluation."""
    __doc__ += "\n\n    " + _INPLACE_NOTE

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False):
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace
                                                             else "")


class GLU(Module):
    """a * sigmoid(b), a and b the halves of the input along ``dim``."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class _AlongDim(Module):
    """Softmax and its kin along ``dim`` (None: torch's deprecated implicit choice, with its
    warning, which points at the caller of the module: 5 frames up, as torch's)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_AlongDim):
    def forward(self, input):
        return F.softmax(input, self.dim, _stacklevel=5)


class LogSoftmax(_AlongDim):
    def forward(self, input):
        return F.log_softmax(input, self.dim, _stacklevel=5)


class Softmin(_AlongDim):
    def forward(self, input):
        return F.softmin(input, self.dim, _stacklevel=5)


class Dropout(Module):
    """Zero each element with probability p in training, scaling the rest by 1/(1-p)."""
    __doc__ += "\n\n    " + _INPLACE_NOTE

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout(input, self.p, training=self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        d = self.dim % input.ndim
        return F.reshape(input, input.shape[:d] + self.unflattened_size + input.shape[d + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Upsample(Module):
    """Resizing as PyTorch's ``nn.Upsample``, with ``mode='nearest'`` (integer factors use the
    fused upsampling kernel) or ``mode='bilinear'`` (``align_corners`` as torch's), by a
    ``scale_factor`` (any positive number, or a pair) or to a ``size``. Other modes raise
    NotImplementedError."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if mode not in ("nearest", "bilinear"):
            raise NotImplementedError(f"Upsample: mode={mode!r} is not implemented in minigan; "
                                      "only mode='nearest' and mode='bilinear' are")
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: give exactly one of size and scale_factor, got "
                             f"size={size!r}, scale_factor={scale_factor!r}")
        if align_corners is not None and mode == "nearest":
            raise ValueError("align_corners option can only be set with the interpolating "
                             "modes: linear | bilinear | bicubic | trilinear")
        self.name = type(self).__name__
        self.size = tuple(size) if isinstance(size, (tuple, list)) else size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor is not None else None
        for f in (self.scale_factor if isinstance(self.scale_factor, tuple)
                  else (self.scale_factor,)):
            if f is not None and not (math.isfinite(f) and f > 0):
                raise ValueError(f"Upsample: scale_factor must be positive and finite, got "
                                 f"{scale_factor!r}")
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode,
                                self.align_corners, self.recompute_scale_factor)

    def extra_repr(self):
        if self.scale_factor is not None:
            return f"scale_factor={self.scale_factor}, mode={self.mode!r}"
        return f"size={self.size}, mode={self.mode!r}"


class MaxPool2d(Module):
    """Max pooling, as ``torch.nn.MaxPool2d``; ``return_indices=True`` returns ``(output,
    indices)``. ``dilation`` 1 and ``ceil_mode=False`` only (refused otherwise, by name)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        if _pair(dilation, "dilation") != (1, 1) or ceil_mode:
            raise NotImplementedError(
                f"MaxPool2d: dilation={dilation!r}, ceil_mode={ceil_mode!r}: minigan supports "
                "dilation=1 and ceil_mode=False only")
        # as torch: no stride means the window's size
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding,
                            return_indices=self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
                f", dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling, as ``torch.nn.AvgPool2d``: the divisor is the window's size, the number
    of unpadded pixels in it (``count_include_pad=False``), or ``divisor_override``.
    ``ceil_mode=False`` only."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__()
        if ceil_mode:
            raise NotImplementedError(f"AvgPool2d: ceil_mode={ceil_mode!r}: minigan supports "
                                      "ceil_mode=False only")
        self.kernel_size, self.padding = kernel_size, padding
        self.stride = kernel_size if stride is None else stride  # as torch
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override
        if divisor_override is not None:  # checked now, not at the first call
            check_divisor_override("AvgPool2d", divisor_override)

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding,
                            count_include_pad=self.count_include_pad,
                            divisor_override=self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Embedding(Module):
    """A lookup table (num_embeddings, embedding_dim), initialised N(0, 1) as in PyTorch.

    Indices outside [0, num_embeddings) raise an IndexError on the CPU; on the GPU they are
    not checked (that would cost a device-to-host read per call), and an index out of range
    wraps around to a wrong row. ``padding_idx``'s row is
    zeroed at construction and receives no gradient. ``max_norm``, ``scale_grad_by_freq`` and
    ``sparse`` are not supported.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None,
                 max_norm=None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight=None, _freeze: bool = False, device=None,
                 dtype=None):
        super().__init__()
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError(
                f"Embedding: max_norm={max_norm!r}, scale_grad_by_freq={scale_grad_by_freq!r}, "
                f"sparse={sparse!r} are not supported by minigan")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise AssertionError(f"Padding_idx {padding_idx} must be within num_embeddings "
                                     f"({num_embeddings})")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = _param((num_embeddings, embedding_dim), device, dtype)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight of shape {tuple(_weight.shape)} does not "
                                 f"match ({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx=None, max_norm=None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False):
        """torch's ``Embedding.from_pretrained``: an Embedding whose weight is ``embeddings``
        (2-D, rows are the entries), frozen (no gradient) unless ``freeze=False``; the
        ``padding_idx`` row is kept as given."""
        shape = tuple(getattr(embeddings, "shape", ()))
        if len(shape) != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D (entries, "
                             f"dim), got shape {shape}")
        return cls(shape[0], shape[1], padding_idx=padding_idx, max_norm=max_norm,
                   norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse,
                   _weight=embeddings, _freeze=freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
