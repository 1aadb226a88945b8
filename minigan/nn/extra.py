"""More layers and containers with PyTorch's names, arguments, defaults, weight layouts,
initialisation, state-dict keys and reprs: ``Conv1d``, ``ConvTranspose1d``, ``RMSNorm``,
``LocalResponseNorm``, ``ParameterList``, ``ParameterDict``, ``Softmax2d``,
``UpsamplingNearest2d``, ``UpsamplingBilinear2d`` and the 1-d / 3-d (and circular 2-d)
padding layers."""
from __future__ import annotations

import math
import numbers
import operator
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import numpy as np

from ..autograd import Tensor, as_tensor
from ..functional import conv_1d as FC
from ..functional import extra as FX
from ..functional.loss import softmax
from ..functional.normalization import pad
from . import init
from .layers import Upsample, _param, _reset_fan_in_uniform
from .module import Module, Parameter

__all__ = [
    "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad3d",
    "Conv1d", "ConvTranspose1d", "LocalResponseNorm", "ParameterDict", "ParameterList",
    "RMSNorm", "ReflectionPad1d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad3d",
    "Softmax2d", "UpsamplingBilinear2d", "UpsamplingNearest2d", "ZeroPad1d", "ZeroPad3d",
]


def _torch_repr(module: Module) -> str:
    """torch's ``Module.__repr__``: a one-line extra_repr stays on the first line; a multi-line
    one (a parameter container's) goes below, indented, before the children."""
    extra = module.extra_repr()
    extra_lines = extra.split("\n") if extra else []
    child_lines = []
    for name, m in module._modules.items():
        child_lines.append(f"({name}): " + repr(m).replace("\n", "\n  "))
    lines = extra_lines + child_lines
    head = type(module).__name__ + "("
    if lines:
        if len(extra_lines) == 1 and not child_lines:
            head += extra_lines[0]
        else:
            head += "\n  " + "\n  ".join(lines) + "\n"
    return head + ")"


def _single(v, name: str) -> tuple:
    """An int as (v,), a 1-element sequence as a tuple (torch's ``_single``)."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return (int(v),)
    try:
        out = tuple(v)
    except TypeError:
        raise TypeError(f"{name} must be an int or a 1-element tuple, got {v!r}") from None
    if len(out) != 1:
        raise ValueError(f"{name} must be an int or a 1-element tuple, got {v!r}")
    return out


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd1(Module):
    """What Conv1d and ConvTranspose1d share (torch's ``_ConvNd``): argument checks, the
    weight and bias, their default initialisation and the repr."""

    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 output_padding, groups, bias, padding_mode, device, dtype):
        super().__init__()
        name = type(self).__name__
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups != 0:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups "
                             f"({groups})")
        if out_channels % groups != 0:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {list(_PADDING_MODES)}, but got "
                             f"padding_mode={padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _single(kernel_size, "kernel_size")
        self.stride = _single(stride, "stride")
        self.dilation = _single(dilation, "dilation")
        self.output_padding = _single(output_padding, "output_padding")
        self.groups, self.padding_mode = int(groups), padding_mode
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "['valid', 'same']")
            if padding == "same" and self.stride != (1,):
                raise ValueError(f"padding='same' is not supported for strided convolutions "
                                 f"(stride={self.stride})")
            self.padding = padding
        else:
            self.padding = _single(padding, "padding")
        if self.transposed:
            shape = (in_channels, out_channels // self.groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // self.groups) + self.kernel_size
        self.weight = _param(shape, device, dtype)
        if bias:
            self.bias = _param((out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch: kaiming_uniform(a=sqrt(5)) on the weight, whose fan-in is
        # weight.shape[1] * K (in/groups * K; out/groups * K for a transposed conv)
        w = self.weight
        _reset_fan_in_uniform(w, self.bias, w.shape[1] * math.prod(w.shape[2:]))

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,):
            s += f", padding={self.padding}"  # a string without quotes, as torch's
        if self.dilation != (1,):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd1):
    """1-d convolution, weight (out_channels, in_channels / groups, kernel_size), input
    (N, C_in, L) or unbatched (C_in, L). ``padding``: an int, ``'valid'`` or ``'same'``
    (stride 1); ``padding_mode``: 'zeros', or 'reflect' / 'replicate' / 'circular', which
    pad the input with ``F.pad`` first, as torch does."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         0, groups, bias, padding_mode, device, dtype)

    def _mode_padding(self) -> tuple:
        """(left, right) for F.pad when padding_mode is not 'zeros'."""
        if self.padding == "valid":
            return (0, 0)
        if self.padding == "same":
            total = self.dilation[0] * (self.kernel_size[0] - 1)
            return (total // 2, total - total // 2)
        return (self.padding[0], self.padding[0])

    def forward(self, input):
        if self.padding_mode != "zeros":
            x = pad(as_tensor(input), self._mode_padding(), self.padding_mode)
            return FC.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation,
                             self.groups)
        return FC.conv1d(input, self.weight, self.bias, self.stride, self.padding,
                         self.dilation, self.groups)


class ConvTranspose1d(_ConvNd1):
    """1-d transposed convolution, weight (in_channels, out_channels / groups, kernel_size);
    ``forward(input, output_size=None)`` picks the output_padding that gives
    ``output_size`` (L, or with N and C in front), as torch's."""

    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for ConvTranspose1d, got '
                             f"padding_mode={padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose1d: padding must be an int or a 1-tuple, got "
                             f"{padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         output_padding, groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input, output_size) -> int:
        if output_size is None:
            return self.output_padding[0]
        non_spatial = 2 if input.ndim == 3 else 1
        size = [int(v) for v in output_size]
        if len(size) == non_spatial + 1:
            size = size[non_spatial:]
        if len(size) != 1:
            raise ValueError(f"ConvTranspose1d: for {input.ndim}D input, output_size must have "
                             f"1 or {non_spatial + 1} elements (got {len(size)})")
        s, p, d, k = self.stride[0], self.padding[0], self.dilation[0], self.kernel_size[0]
        lo = (input.shape[-1] - 1) * s - 2 * p + d * (k - 1) + 1
        hi = lo + s - 1
        if not lo <= size[0] <= hi:
            raise ValueError(f"ConvTranspose1d: requested an output size of {size}, but valid "
                             f"sizes range from [{lo}] to [{hi}] (for an input of shape "
                             f"{tuple(input.shape)})")
        return size[0] - lo

    def forward(self, input, output_size=None):
        x = as_tensor(input)
        return FC.conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding,
                                   self._output_padding(x, output_size), self.groups,
                                   self.dilation)


# ----------------------------------------------------------------------------- normalisation

class RMSNorm(Module):
    """RMS normalisation over the last dims, ``normalized_shape`` (an int or a shape), with a
    ``weight`` of ones of that shape when ``elementwise_affine``. ``eps=None``: the machine
    epsilon of the input's computation type (see ``rms_norm``)."""

    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = _param(self.normalized_shape, device, dtype)
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, input):
        return FX.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class LocalResponseNorm(Module):
    """Normalisation of each channel by the mean square over a window of ``size`` adjacent
    channels: ``x / (k + alpha * mean)^beta`` (see ``local_response_norm``)."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return FX.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class Softmax2d(Module):
    """Softmax over the channels (dim -3) of a (C, H, W) or (N, C, H, W) input."""

    def forward(self, input):
        x = as_tensor(input)
        if x.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {x.ndim}D instead "
                             f"(shape {tuple(x.shape)})")
        return softmax(x, -3)


# ----------------------------------------------------------------------------- upsampling

class UpsamplingNearest2d(Upsample):
    """``Upsample(size, scale_factor, mode='nearest')`` (torch's deprecated name)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear resizing of (N, C, H, W) with ``align_corners=True`` (torch's deprecated
    ``UpsamplingBilinear2d``), by ``scale_factor`` or to ``size``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor)  # (the checks of size and scale_factor)
        self.mode, self.align_corners = "bilinear", True

    def forward(self, input):
        return FX.bilinear_interpolate(input, self.size, self.scale_factor, align_corners=True,
                                       recompute_scale_factor=self.recompute_scale_factor)


# ----------------------------------------------------------------------------- padding

def _ntuple(padding, n: int) -> tuple:
    """An int as n copies, an n-element sequence as a tuple (torch's ``_pair``,
    ``_quadruple``, ``_ntuple(6)``)."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, (bool, np.bool_)):
        return (int(padding),) * n
    try:
        out = tuple(padding)
    except TypeError:
        raise TypeError(f"padding must be an int or a tuple of {n} ints, got "
                        f"{padding!r}") from None
    if len(out) != n:
        raise ValueError(f"padding must be an int or a tuple of {n} ints (left, right, ...), "
                         f"got {padding!r}")
    return out


class _ConstantPadNd(Module):
    _dims = 1

    def __init__(self, padding, value: float):
        super().__init__()
        self.padding, self.value = _ntuple(padding, 2 * self._dims), value

    def forward(self, input):
        return pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pads the last dim with ``value``: ``padding`` is an int or (left, right); negative
    amounts crop."""
    _dims = 1


class ConstantPad3d(_ConstantPadNd):
    """Pads the last three dims with ``value``: ``padding`` is an int or (left, right, top,
    bottom, front, back)."""
    _dims = 3


class ZeroPad1d(ConstantPad1d):
    """Pads the last dim with zeros; ``padding`` is an int or (left, right)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """Pads the last three dims with zeros; ``padding`` as ``ConstantPad3d``'s."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ModePadNd(Module):
    """Reflection, replication or circular padding of the last ``_dims`` dims."""
    _dims = 1
    _mode = "reflect"

    def __init__(self, padding):
        super().__init__()
        self.padding = _ntuple(padding, 2 * self._dims)

    def forward(self, input):
        return pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_ModePadNd):
    """Pads the last dim of (C, L) or (N, C, L) by mirroring about the edges (each amount
    below L)."""
    _dims, _mode = 1, "reflect"


class ReflectionPad3d(_ModePadNd):
    """Pads the last three dims of (C, D, H, W) or (N, C, D, H, W) by mirroring."""
    _dims, _mode = 3, "reflect"


class ReplicationPad1d(_ModePadNd):
    """Pads the last dim of (C, L) or (N, C, L) by repeating the edge values."""
    _dims, _mode = 1, "replicate"


class ReplicationPad3d(_ModePadNd):
    """Pads the last three dims of (C, D, H, W) or (N, C, D, H, W) by repeating the edges."""
    _dims, _mode = 3, "replicate"


class _CircularPadNd(_ModePadNd):
    _mode = "circular"

    def forward(self, input):
        x = as_tensor(input)
        if x.ndim not in (self._dims + 1, self._dims + 2):
            raise ValueError(f"{type(self).__name__}: expected {self._dims + 1}D or "
                             f"{self._dims + 2}D input (got {x.ndim}D input of shape "
                             f"{tuple(x.shape)})")
        return pad(x, self.padding, "circular")


class CircularPad1d(_CircularPadNd):
    """Pads the last dim of (C, L) or (N, C, L) by wrapping around."""
    _dims = 1


class CircularPad2d(_CircularPadNd):
    """Pads the last two dims of (C, H, W) or (N, C, H, W) by wrapping around; ``padding``
    is an int or (left, right, top, bottom)."""
    _dims = 2


class CircularPad3d(_CircularPadNd):
    """Pads the last three dims of (C, D, H, W) or (N, C, D, H, W) by wrapping around."""
    _dims = 3


# ----------------------------------------------------------------------------- containers

def _param_line(key, p) -> str:
    """One line of torch's ParameterList / ParameterDict repr (the dtype by NumPy's name)."""
    if isinstance(p, Tensor):
        size = "x".join(str(s) for s in p.shape)
        dev = f" ({p.device})" if p.device == "cuda" else ""
        kind = "Parameter" if isinstance(p, Parameter) else "Tensor"
        return f"  ({key}): {kind} containing: [{p.dtype} of size {size}{dev}]"
    return f"  ({key}): Object of type: {type(p).__name__}"


def _as_parameter(value):
    """A plain Tensor becomes a Parameter (sharing its array), as torch wraps one."""
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


class ParameterList(Module):
    """A list of parameters registered as "0", "1", ... (so they are the module's
    parameters and state-dict keys). Plain Tensors are wrapped into Parameters; other
    objects are kept as attributes, as in torch. Indexing (a slice: a new ParameterList),
    item assignment, append, extend, ``+=``, len and iteration."""

    def __init__(self, values=None):
        super().__init__()
        self._size = 0
        if values is not None:
            self += values

    def _abs_index(self, idx) -> str:
        idx = operator.index(idx)
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"ParameterList: index {idx} is out of range for length {n}")
        return str(idx + n if idx < 0 else idx)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            out = type(self)()
            for i in range(*idx.indices(len(self))):
                out.append(self[i])
            return out
        return getattr(self, self._abs_index(idx))

    def __setitem__(self, idx, param) -> None:
        setattr(self, self._abs_index(idx), _as_parameter(param))

    def __len__(self) -> int:
        return self._size

    def __iter__(self):
        return iter([self[i] for i in range(len(self))])

    def __iadd__(self, parameters) -> "ParameterList":
        return self.extend(parameters)

    def __dir__(self):
        return [k for k in super().__dir__() if not k.isdigit()]

    def append(self, value) -> "ParameterList":
        idx = len(self)
        self._size += 1
        try:
            self[idx] = value
        except BaseException:
            self._size -= 1
            raise
        return self

    def extend(self, values) -> "ParameterList":
        if not isinstance(values, Iterable) or isinstance(values, Tensor):
            raise TypeError(f"ParameterList.extend should be called with an iterable, but got "
                            f"{type(values).__name__}")
        for value in values:
            self.append(value)
        return self

    def extra_repr(self) -> str:
        return "\n".join(_param_line(k, p) for k, p in enumerate(self))

    __repr__ = _torch_repr

    def __call__(self, *args, **kwargs):
        raise RuntimeError("ParameterList should not be called.")


class ParameterDict(Module):
    """An ordered dict of parameters registered under their (string) keys. Plain Tensors are
    wrapped into Parameters; other objects are kept as attributes, as in torch. A plain dict
    given to the constructor or to ``update`` is read in sorted key order (torch's rule); an
    OrderedDict, a ParameterDict or (key, value) pairs keep their order."""

    def __init__(self, parameters=None):
        super().__init__()
        self._keys: dict = {}
        if parameters is not None:
            self.update(parameters)

    @staticmethod
    def _key_to_attr(key) -> str:
        if not isinstance(key, str):
            raise TypeError(f"Index given to ParameterDict cannot be used as a key as it is not "
                            f"a string (type is '{type(key).__name__}')")
        return key

    def __getitem__(self, key: str):
        attr = self._key_to_attr(key)
        if key not in self._keys:
            raise KeyError(key)
        return getattr(self, attr)

    def __setitem__(self, key: str, value) -> None:
        attr = self._key_to_attr(key)
        value = _as_parameter(value)
        if isinstance(value, Parameter):
            self.register_parameter(attr, value)  # (refuses '.', '' and method names)
        else:
            setattr(self, attr, value)
        self._keys[key] = None

    def __delitem__(self, key: str) -> None:
        del self._keys[key]
        delattr(self, self._key_to_attr(key))

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self):
        return iter(list(self._keys))

    def __reversed__(self):
        return reversed(list(self._keys))

    def __contains__(self, key) -> bool:
        return key in self._keys

    def copy(self) -> "ParameterDict":
        return ParameterDict(OrderedDict((k, self[k]) for k in self._keys))

    def setdefault(self, key: str, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        for k in list(self._keys):
            del self[k]

    def pop(self, key: str):
        v = self[key]
        del self[key]
        return v

    def popitem(self):
        if not self._keys:
            raise KeyError("popitem(): ParameterDict is empty")
        k = next(reversed(self._keys))
        return k, self.pop(k)

    def get(self, key: str, default=None):
        return self[key] if key in self else default

    def fromkeys(self, keys, default=None) -> "ParameterDict":
        return ParameterDict((k, default) for k in keys)

    def keys(self):
        return self._keys.keys()

    def items(self):
        return ((k, self[k]) for k in self._keys)

    def values(self):
        return (self[k] for k in self._keys)

    def update(self, parameters) -> None:
        if not isinstance(parameters, Iterable):
            raise TypeError(f"ParametersDict.update should be called with an iterable of "
                            f"key/value pairs, but got {type(parameters).__name__}")
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            for key, value in parameters.items():
                self[key] = value
        elif isinstance(parameters, Mapping):
            for key, value in sorted(parameters.items()):
                self[key] = value
        else:
            for j, p in enumerate(parameters):
                if not isinstance(p, Iterable):
                    raise TypeError(f"ParameterDict update sequence element #{j} should be "
                                    f"Iterable; is {type(p).__name__}")
                p = tuple(p)
                if len(p) != 2:
                    raise ValueError(f"ParameterDict update sequence element #{j} has length "
                                     f"{len(p)}; 2 is required")
                self[p[0]] = p[1]

    def __or__(self, other) -> "ParameterDict":
        out = self.copy()
        out.update(other)
        return out

    def __ror__(self, other) -> "ParameterDict":
        out = other.copy()
        out.update(self)
        return out

    def __ior__(self, other) -> "ParameterDict":
        self.update(other)
        return self

    def extra_repr(self) -> str:
        return "\n".join(_param_line(k, p) for k, p in self.items())

    __repr__ = _torch_repr

    def __call__(self, input):
        raise RuntimeError("ParameterDict should not be called.")
