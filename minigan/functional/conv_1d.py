"""1-d convolutions with ``torch.nn.functional``'s names: ``conv1d`` and ``conv_transpose1d``.

Each runs the 2-d op on (N, C, 1, L) with a (.., .., 1, K) weight: a unit height, stride 1,
padding 0 and dilation 1 along it. The reshapes are differentiable views and conv2d /
conv_transpose2d are differentiable to every order, so these are too.

``groups`` > 1 (which the 2-d kernels do not take) is a loop over the groups, not over
samples or positions: each group's channels are convolved with their own slice of the weight
and the outputs are concatenated along the channels, as a grouped convolution defines them.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Tensor, as_tensor
from . import basic as B
from .conv import conv2d, conv_transpose2d
from .normalization import pad as _pad

__all__ = ["conv1d", "conv_transpose1d"]


def _single(fn: str, name: str, v, minimum: int) -> int:
    """An int or a 1-element tuple/list as an int >= ``minimum``; anything else is refused
    by name."""
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{fn}: {name} must be an int or a 1-element tuple, got {v!r}")
        v = v[0]
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be an int or a 1-element tuple, got {v!r}")
    if v < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {int(v)}")
    return int(v)


def _groups(fn: str, groups) -> int:
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"{fn}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{fn}: groups must be a positive integer, got {int(groups)}")
    return int(groups)


def _operands(fn: str, input, weight, bias, weight_axes: str):
    """(x as (N, C, L), w, b, the input's shape), shapes checked."""
    x = input if isinstance(input, Tensor) else as_tensor(input)
    w = weight if isinstance(weight, Tensor) else as_tensor(weight, x)
    if x.ndim not in (2, 3):
        raise ValueError(f"{fn}: expected a 2-D (unbatched: C, L) or 3-D (batched: N, C, L) "
                         f"input, got shape {tuple(x.shape)}")
    if w.ndim != 3:
        raise ValueError(f"{fn}: weight must be 3-D ({weight_axes}), got shape "
                         f"{tuple(w.shape)}")
    backend.check_same_device(x.data, w.data, what=f"{fn} (input and weight)")
    b = None if bias is None else as_tensor(bias, x)
    shape = tuple(x.shape)
    return (x if x.ndim == 3 else B.unsqueeze(x, 0)), w, b, shape


def _check_bias(fn: str, b, channels: int, x: Tensor) -> None:
    if b is None:
        return
    backend.check_same_device(x.data, b.data, what=f"{fn} (input and bias)")
    if tuple(b.shape) != (channels,):
        raise ValueError(f"{fn}: bias must have shape ({channels},) (one value per output "
                         f"channel), got {tuple(b.shape)}")


def _channels(t: Tensor, start: int, count: int) -> Tensor:
    """Channels [start, start + count) of axis 1 (axis 0 for a 1-d bias)."""
    if t.ndim == 1:
        return B.getitem(t, slice(start, start + count))
    return B.getitem(t, (slice(None), slice(start, start + count)))


def _rows(t: Tensor, start: int, count: int) -> Tensor:
    return B.getitem(t, slice(start, start + count))


def _grouped(conv, x4: Tensor, w4: Tensor, b, groups: int, out_per_group: int) -> Tensor:
    """``conv`` (a 2-d op of (x, w, b)) per group: group i reads input channels
    [i ci, (i+1) ci) and weight rows [i wr, (i+1) wr), and writes output channels
    [i co, (i+1) co); the outputs are concatenated."""
    if groups == 1:
        return conv(x4, w4, b)
    ci, wr = x4.shape[1] // groups, w4.shape[0] // groups
    parts = [conv(_channels(x4, i * ci, ci), _rows(w4, i * wr, wr),
                  None if b is None else _channels(b, i * out_per_group, out_per_group))
             for i in range(groups)]
    return B.concat(parts, 1)


def _finish(y4: Tensor, batched: bool) -> Tensor:
    """(N, C, 1, L) back to (N, C, L), or (C, L) for an unbatched input."""
    y = B.squeeze(y4, 2)
    return y if batched else B.squeeze(y, 0)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """PyTorch's ``F.conv1d``: input (N, C_in, L) or unbatched (C_in, L), weight
    (C_out, C_in / groups, K), bias (C_out,). ``padding`` is an int, a 1-tuple, ``'valid'``
    (none) or ``'same'`` (stride 1 only; when the total padding dilation * (K - 1) is odd
    the extra position goes on the right, as in torch)."""
    fn = "conv1d"
    x, w, b, shape = _operands(fn, input, weight, bias, "out_channels, in_channels / groups, "
                                                          "kernel_size")
    s = _single(fn, "stride", stride, 1)
    d = _single(fn, "dilation", dilation, 1)
    g = _groups(fn, groups)
    c_out, c_in_g, k = w.shape
    c = x.shape[1]
    if c != c_in_g * g:
        raise ValueError(f"{fn}: input of shape {shape} has {c} channels, but "
                         f"weight of shape {tuple(w.shape)} with groups={g} expects "
                         f"{c_in_g * g} (= {c_in_g} * {g})")
    if c_out % g:
        raise ValueError(f"{fn}: weight of shape {tuple(w.shape)} has {c_out} output "
                         f"channels, which groups={g} does not divide")
    _check_bias(fn, b, c_out, x)
    extra = 0
    if isinstance(padding, str):
        if padding == "valid":
            p = 0
        elif padding == "same":
            if s != 1:
                raise ValueError(f"{fn}: padding='same' is not supported for strided "
                                 f"convolutions (stride={s})")
            total = d * (k - 1)
            p, extra = total // 2, total - 2 * (total // 2)
        else:
            raise ValueError(f"{fn}: invalid padding string {padding!r}, should be one of "
                             "['valid', 'same']")
    else:
        p = _single(fn, "padding", padding, 0)
    length = x.shape[2] + extra
    out = (length + 2 * p - d * (k - 1) - 1) // s + 1
    if out < 1:
        raise ValueError(f"{fn}: input of shape {shape} (padded length "
                         f"{length + 2 * p}) is shorter than the dilated kernel "
                         f"{d * (k - 1) + 1} of weight {tuple(w.shape)} (dilation {d})")
    if extra:
        x = _pad(x, (0, extra))

    def conv(xi, wi, bi):
        return conv2d(xi, wi, bi, stride=(1, s), padding=(0, p), dilation=(1, d))

    y4 = _grouped(conv, B.unsqueeze(x, 2), B.unsqueeze(w, 2), b, g, c_out // g)
    return _finish(y4, len(shape) == 3)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1) -> Tensor:
    """PyTorch's ``F.conv_transpose1d`` (its argument order: ``groups`` before ``dilation``):
    input (N, C_in, L) or unbatched (C_in, L), weight (C_in, C_out / groups, K), bias
    (C_out,). The output has length (L - 1) stride - 2 padding + dilation (K - 1) +
    output_padding + 1."""
    fn = "conv_transpose1d"
    if isinstance(padding, str):
        raise ValueError(f"{fn}: padding must be an int or a 1-tuple, got {padding!r} (torch "
                         "takes no padding strings for transposed convolutions)")
    x, w, b, shape = _operands(fn, input, weight, bias, "in_channels, out_channels / groups, "
                                                          "kernel_size")
    s = _single(fn, "stride", stride, 1)
    p = _single(fn, "padding", padding, 0)
    op = _single(fn, "output_padding", output_padding, 0)
    d = _single(fn, "dilation", dilation, 1)
    g = _groups(fn, groups)
    c_in, c_out_g, k = w.shape
    c = x.shape[1]
    if c != c_in:
        raise ValueError(f"{fn}: input of shape {shape} has {c} channels, but "
                         f"weight of shape {tuple(w.shape)} expects {c_in}")
    if c_in % g:
        raise ValueError(f"{fn}: weight of shape {tuple(w.shape)} has {c_in} input channels, "
                         f"which groups={g} does not divide")
    _check_bias(fn, b, c_out_g * g, x)
    if not (op < s or op < d):
        raise ValueError(f"{fn}: output_padding ({op}) must be smaller than either stride "
                         f"({s}) or dilation ({d})")
    out = (x.shape[2] - 1) * s - 2 * p + d * (k - 1) + op + 1
    if out < 1:
        raise ValueError(f"{fn}: the output length {out} is not positive for input of shape "
                         f"{shape}, weight {tuple(w.shape)}, stride {s}, padding "
                         f"{p}, output_padding {op}, dilation {d}")

    def conv(xi, wi, bi):
        return conv_transpose2d(xi, wi, bi, stride=(1, s), padding=(0, p),
                                output_padding=(0, op), dilation=(1, d))

    y4 = _grouped(conv, B.unsqueeze(x, 2), B.unsqueeze(w, 2), b, g, c_out_g)
    return _finish(y4, len(shape) == 3)
