"""Per-sample normalisation, padding and pixel shuffling with ``torch.nn.functional``'s names:
``layer_norm``, ``group_norm``, ``instance_norm``, ``normalize``, ``cosine_similarity``,
``pairwise_distance``, ``pad`` (constant, reflect, replicate, circular), ``pixel_shuffle`` and
``pixel_unshuffle``.

Each is a composition of the differentiable ops of ``basic`` and ``pointwise`` (mean, pow,
reshape, permute, getitem, concat, the vector norm), or a Function whose backward is one, so
their gradients of every order are exact. Nothing here reads a value back to the host: the
running statistics of ``instance_norm`` are updated in place on their device.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor
from . import basic as B
from .basic import _float_input, _int
from .shape import _fresh
from .pointwise import norm as _vector_norm
from .promotion import result_type

__all__ = [
    "cosine_similarity", "group_norm", "instance_norm", "layer_norm", "normalize", "pad",
    "pairwise_distance", "pixel_shuffle", "pixel_unshuffle",
]


def _affine(fn: str, name: str, p, x: Tensor, shape: tuple, what: str):
    """An optional weight or bias as a tensor on x's device, of ``shape``."""
    if p is None:
        return None
    p = as_tensor(p, x)
    backend.check_same_device(x.data, p.data, what=f"{fn} ({name})")
    if tuple(p.shape) != shape:
        raise RuntimeError(f"{fn}: expected {name} of shape {shape} ({what}), got {name} of "
                           f"shape {tuple(p.shape)} for input of shape {tuple(x.shape)}")
    return p


def _standardize(x: Tensor, axes: tuple, eps: float):
    """((x - mean) / sqrt(var + eps), mean, var) with the biased variance over ``axes``."""
    mean = B.mean(x, axes, keepdims=True)
    xc = x - mean
    var = B.mean(xc * xc, axes, keepdims=True)
    return xc * B.pow(var + eps, -0.5), mean, var


def _per_channel(v: Tensor, ndim: int) -> Tensor:
    """A (C,) tensor shaped to broadcast over axis 1 of an ndim-D (N, C, ...) tensor."""
    return B.reshape(v, (1, -1) + (1,) * (ndim - 2))


def _scale_shift(y: Tensor, w, b, reshape=None) -> Tensor:
    if w is not None:
        y = y * (w if reshape is None else reshape(w))
    if b is not None:
        y = y + (b if reshape is None else reshape(b))
    return y


# ----------------------------------------------------------------------------- normalisation

def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """``F.layer_norm``: normalise over the last ``len(normalized_shape)`` dims, which must be
    ``normalized_shape``, with the biased variance; then ``* weight + bias`` (each optional,
    of shape ``normalized_shape``). An int ``normalized_shape`` is taken as ``(n,)``."""
    x = _float_input("layer_norm", input)
    if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape,
                                                                          bool):
        normalized_shape = (normalized_shape,)
    shape = tuple(_int("layer_norm", "normalized_shape", s) for s in normalized_shape)
    if not shape:
        raise RuntimeError("layer_norm: normalized_shape must have at least one element, got "
                           "()")
    k = len(shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise RuntimeError(f"layer_norm: given normalized_shape={list(shape)}, expected input "
                           f"with shape [*, {', '.join(map(str, shape))}], but got input of "
                           f"size {list(x.shape)}")
    w = _affine("layer_norm", "weight", weight, x, shape, "normalized_shape")
    b = _affine("layer_norm", "bias", bias, x, shape, "normalized_shape")
    y, _, _ = _standardize(x, tuple(range(x.ndim - k, x.ndim)), eps)
    return _scale_shift(y, w, b)


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """``F.group_norm``: (N, C, *) split into ``num_groups`` groups of C / num_groups channels,
    each sample's group normalised over its channels and positions (biased variance); then
    ``* weight + bias`` per channel (each optional, of shape (C,))."""
    x = _float_input("group_norm", input)
    g = _int("group_norm", "num_groups", num_groups)
    if x.ndim < 2:
        raise RuntimeError(f"group_norm: expected at least 2 dimensions for input tensor but "
                           f"received {x.ndim}")
    if g <= 0:
        raise ValueError(f"group_norm: num_groups must be positive, got {g}")
    n, c = x.shape[:2]
    if c % g:
        raise RuntimeError(f"group_norm: expected number of channels in input to be divisible "
                           f"by num_groups, but got input of shape {list(x.shape)} and "
                           f"num_groups={g}")
    per_group = (c // g) * math.prod(x.shape[2:])
    if n * per_group == 1:  # torch's check, on N * C / G * (positions)
        raise ValueError(f"group_norm: expected more than 1 value per channel when training, "
                         f"got input size {list(x.shape)}")
    w = _affine("group_norm", "weight", weight, x, (c,), "one value per channel")
    b = _affine("group_norm", "bias", bias, x, (c,), "one value per channel")
    y, _, _ = _standardize(B.reshape(x, (n, g, per_group)), (2,), eps)
    return _scale_shift(B.reshape(y, x.shape), w, b, lambda v: _per_channel(v, x.ndim))


def _stat_buffer(fn: str, name: str, buf, x: Tensor, c: int):
    """A running-statistics buffer (array or tensor) as its array, checked against x."""
    if buf is None:
        return None
    arr = buf.data if isinstance(buf, Tensor) else buf
    if not (isinstance(arr, np.ndarray) or backend.is_cupy_array(arr)):
        raise TypeError(f"{fn}: {name} must be an array or a tensor, got "
                        f"{type(buf).__name__}")
    backend.check_same_device(x.data, arr, what=f"{fn} ({name})")
    if tuple(arr.shape) != (c,):
        raise RuntimeError(f"{fn}: {name} of shape {tuple(arr.shape)} does not match input "
                           f"of shape {tuple(x.shape)} ({c} channels)")
    return arr


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """``F.instance_norm``: each sample's channel of (N, C, *) normalised over its positions.

    With ``use_input_stats`` (training) the instance statistics normalise (biased variance),
    and running buffers, if given (arrays or tensors, updated in place on their device, as
    torch's are), move by ``momentum`` toward the batch average of the instance means and of
    the unbiased instance variances. Without it the running statistics normalise (both must
    be given). ``weight`` and ``bias`` (C,) are optional.
    """
    x = _float_input("instance_norm", input)
    if x.ndim < 2:
        raise ValueError(f"instance_norm: expected input of shape (N, C, *), got shape "
                         f"{tuple(x.shape)}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("instance_norm: running_mean and running_var must either both be "
                         "None or neither be None")
    c = x.shape[1]
    rm = _stat_buffer("instance_norm", "running_mean", running_mean, x, c)
    rv = _stat_buffer("instance_norm", "running_var", running_var, x, c)
    w = _affine("instance_norm", "weight", weight, x, (c,), "one value per channel")
    b = _affine("instance_norm", "bias", bias, x, (c,), "one value per channel")
    def per_channel(v):
        return _per_channel(v, x.ndim)
    if not use_input_stats:
        if rm is None:
            raise RuntimeError("instance_norm: expected running_mean and running_var to be "
                               "defined when use_input_stats is false")
        # evaluation: an affine map with constant statistics (exact to every order)
        xp = backend.get_array_module(x.data)
        scale = Tensor((1.0 / xp.sqrt(rv.astype(x.dtype) + eps)).astype(x.dtype))
        shift = Tensor(rm.astype(x.dtype))
        y = (x - per_channel(shift)) * per_channel(scale)
        return _scale_shift(y, w, b, per_channel)
    positions = math.prod(x.shape[2:])
    if positions == 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element when training, "
                         f"got input size {list(x.shape)}")
    y, mean, var = _standardize(x, tuple(range(2, x.ndim)), eps)
    if rm is not None and x.shape[0] > 0:
        # in place and on the device (no host read); the unbiased variance, as torch keeps
        if not isinstance(momentum, (int, float, np.number)) or isinstance(momentum, bool):
            raise TypeError(f"instance_norm: momentum must be a number, got {momentum!r}")
        m = float(momentum)  # (a Python number: no device read)
        batch_mean = mean.data.reshape(x.shape[0], c).mean(axis=0)
        unbiased = var.data.reshape(x.shape[0], c) * (positions / max(positions - 1, 1))
        rm[...] = ((1.0 - m) * rm + m * batch_mean).astype(rm.dtype, copy=False)
        rv[...] = ((1.0 - m) * rv + m * unbiased.mean(axis=0)).astype(rv.dtype, copy=False)
    return _scale_shift(y, w, b, per_channel)


# ----------------------------------------------------------------------------- distances

def normalize(input, p: float = 2.0, dim=1, eps: float = 1e-12) -> Tensor:
    """``F.normalize``: ``input / max(||input||_p over dim, eps)``. At a zero vector the
    gradient is finite, as torch's: the norm's is 0 there and the clamp passes none. (No
    ``out=``, as nowhere in minigan.)"""
    x = _float_input("normalize", input)
    n = _vector_norm(x, p, dim, keepdim=True)
    return x / B.clamp(n, min=eps)


def _float_pair(fn: str, x1, x2):
    """Two operands as tensors of their common floating dtype, as torch promotes them."""
    like = x1 if isinstance(x1, Tensor) else (x2 if isinstance(x2, Tensor) else None)
    a, b = as_tensor(x1, like), as_tensor(x2, like)
    backend.check_same_device(a.data, b.data, what=fn)
    dt = result_type(a, b)
    if dt.kind != "f":
        raise RuntimeError(f"{fn}: expected common dtype to be floating point, yet common "
                           f"dtype is {dt}")
    return B.astype(a, dt), B.astype(b, dt)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``F.cosine_similarity``: sum over ``dim`` of (x1 / ||x1||) * (x2 / ||x2||), the inputs
    broadcast together first and each norm at least ``eps``.

    Gradient convention as torch's: the floor on the norms is applied to their values only,
    so the gradient flows through each norm as if it were not clamped (and, the norm's
    gradient being 0 at a zero vector, it is finite there)."""
    a, b = _float_pair("cosine_similarity", x1, x2)
    shape = B._broadcast_check("cosine_similarity", a.shape, b.shape)
    a, b = B.broadcast_to(a, shape), B.broadcast_to(b, shape)
    d = B._dim("cosine_similarity", dim, len(shape))
    xp = backend.get_array_module(a.data)

    def unit(v):
        n = _vector_norm(v, 2, d, keepdim=True)
        # the clamped norm as n plus a constant: its value is max(n, eps), its gradient n's
        return v / (n + Tensor(xp.maximum(n.data, eps) - n.data))

    return B.sum(unit(a) * unit(b), d)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """``F.pairwise_distance``: the p-norm of ``x1 - x2 + eps`` over the last dimension of the
    broadcast inputs (the vector norm's gradient conventions)."""
    if isinstance(p, (bool, str)) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"pairwise_distance: p must be a real number, got {p!r}")
    like = x1 if isinstance(x1, Tensor) else (x2 if isinstance(x2, Tensor) else None)
    a, b = as_tensor(x1, like), as_tensor(x2, like)
    B._broadcast_check("pairwise_distance", a.shape, b.shape)
    nd = max(a.ndim, b.ndim)
    return _vector_norm(a - b + eps, p, nd - 1 if nd else -1, keepdim=bool(keepdim))


# ----------------------------------------------------------------------------- padding

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


class ConstantPad(Function):
    """y = an array of ``shape`` filled with ``value``, x written at ``index``;
    gx = gy[index] (linear in x, so exact at every order)."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, index: tuple, shape: tuple, value):
        self.index, self.shape, self.value = index, shape, value

    def forward(self, x):
        y = backend.get_array_module(x).full(self.shape, self.value, dtype=x.dtype)
        y[self.index] = x
        return y

    def backward(self, gy):
        return B.getitem(gy, self.index)


def _pad_amounts(input_ndim: int, pad) -> list:
    """torch's pad tuple (last dim first, (left, right) each) as [(dim, left, right)]."""
    if isinstance(pad, (Tensor, np.ndarray)) or backend.is_cupy_array(pad):
        raise TypeError("pad: the padding must be a tuple or list of ints, not an array")
    try:
        pad = list(pad)
    except TypeError:
        raise TypeError(f"pad: the padding must be a tuple or list of ints, got "
                        f"{pad!r}") from None
    pad = [_int("pad", f"padding entry {i}", v) for i, v in enumerate(pad)]
    if len(pad) % 2:
        raise RuntimeError(f"pad: padding length must be divisible by 2, got {len(pad)} "
                           f"entries {tuple(pad)}")
    if len(pad) > 2 * input_ndim:
        raise RuntimeError(f"pad: padding length should be less than or equal to two times "
                           f"the input dimension but got padding length {len(pad)} and input "
                           f"of dimension {input_ndim}")
    return [(input_ndim - 1 - i, pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)]


def _pad_constant(x: Tensor, amounts, value) -> Tensor:
    """Crop where a pad is negative (a crop deeper than the dim is refused, as torch's narrow
    does), then place the rest in a ``value``-filled array."""
    crop, place = [slice(None)] * x.ndim, [slice(None)] * x.ndim
    out_shape = list(x.shape)
    for d, lo, hi in amounts:
        size = x.shape[d]
        cut_lo, cut_hi = max(-lo, 0), max(-hi, 0)
        if cut_lo + cut_hi > size:
            raise RuntimeError(f"pad: the negative padding ({lo}, {hi}) removes more than the "
                               f"{size} elements of dimension {d} of input of shape "
                               f"{tuple(x.shape)}")
        kept = size - cut_lo - cut_hi
        crop[d] = slice(cut_lo, cut_lo + kept)
        place[d] = slice(max(lo, 0), max(lo, 0) + kept)
        out_shape[d] = kept + max(lo, 0) + max(hi, 0)
    y = x
    if any(lo < 0 or hi < 0 for _, lo, hi in amounts):
        y = B.getitem(x, tuple(crop))
    if any(lo > 0 or hi > 0 for _, lo, hi in amounts):
        y = ConstantPad(tuple(place), tuple(out_shape), 0 if value is None else value)(y)
    return _fresh(y, x)


def _along(x: Tensor, d: int, sl: slice) -> Tensor:
    return B.getitem(x, (slice(None),) * d + (sl,))


def _reflect_or_replicate(x: Tensor, d: int, lo: int, hi: int, reflect: bool) -> Tensor:
    """Dimension d of x extended by ``lo`` and ``hi`` positions (negative: cropped). Output
    position j reads source position j - lo, mirrored about the edges (reflect) or clamped to
    them (replicate), from the original x: as torch, a crop on one side does not move the
    other side's mirror. The output is built from slices of x (reversed ones for reflect,
    the edge broadcast for replicate) joined by concat."""
    size = x.shape[d]
    first, stop = -lo, size + hi  # the source positions the output covers
    pieces = []
    a, b = first, min(0, stop)  # before the start
    if a < b:
        if reflect:
            pieces.append(_along(x, d, slice(-a, -b, -1)))
        else:
            pieces.append(_edge(x, d, 0, b - a))
    a, b = max(first, 0), min(stop, size)  # inside
    if a < b:
        pieces.append(_along(x, d, slice(a, b)))
    a, b = max(first, size), stop  # past the end
    if a < b:
        if reflect:
            top, end = 2 * size - 2 - a, 2 * size - 2 - b
            pieces.append(_along(x, d, slice(top, end if end >= 0 else None, -1)))
        else:
            pieces.append(_edge(x, d, size - 1, b - a))
    return pieces[0] if len(pieces) == 1 else B.concat(pieces, d)


def _edge(x: Tensor, d: int, i: int, count: int) -> Tensor:
    """Position i of dimension d repeated ``count`` times (a broadcast: its gradient sums)."""
    e = _along(x, d, slice(i, i + 1))
    return B.broadcast_to(e, e.shape[:d] + (count,) + e.shape[d + 1:])


def _circular(x: Tensor, d: int, lo: int, hi: int) -> Tensor:
    """Dimension d cropped where a pad is negative, then wrapped around: the last ``lo``
    positions of what is kept go before it and the first ``hi`` after it (torch's order)."""
    size = x.shape[d]
    kept = _along(x, d, slice(max(-lo, 0), size - max(-hi, 0)))
    n = kept.shape[d]
    if lo > n or hi > n:
        raise RuntimeError(f"pad: circular padding ({lo}, {hi}) of dimension {d} wraps around "
                           f"more than once (it keeps {n} of its {size} elements)")
    pieces = [_along(kept, d, slice(n - lo, n))] if lo > 0 else []
    pieces.append(kept)
    if hi > 0:
        pieces.append(_along(kept, d, slice(0, hi)))
    return pieces[0] if len(pieces) == 1 else B.concat(pieces, d)


def _check_non_constant(x: Tensor, amounts, mode: str) -> None:
    k = len(amounts)
    if not amounts or x.ndim not in (k + 1, k + 2) or k > 3:
        raise NotImplementedError(f"pad: mode {mode!r} pads the last 1, 2 or 3 dims of a "
                                  f"(batch of) (C, ...) input: padding size {2 * k} is not "
                                  f"supported for {x.ndim}D input tensor (it needs a "
                                  f"{k + 1}D or {k + 2}D one)")
    if mode == "circular":  # (how far it may wrap is checked by _circular)
        for d, lo, hi in amounts:
            size = x.shape[d]
            if size + lo + hi < 0:
                raise RuntimeError(f"pad: negative circular padding ({lo}, {hi}) of "
                                   f"dimension {d} (size {size}) gives an empty dimension")
        return
    batched = x.ndim == k + 2
    if any(s == 0 for s in x.shape[1 if batched else 0:]):
        raise RuntimeError(f"pad: mode {mode!r} expects non-zero sizes outside the batch "
                           f"dimension, got input of shape {tuple(x.shape)}")
    for d, lo, hi in amounts:
        size = x.shape[d]
        if mode == "reflect" and (lo >= size or hi >= size):
            raise RuntimeError(f"pad: padding size should be less than the corresponding "
                               f"input dimension, but got: padding ({lo}, {hi}) at dimension "
                               f"{d} of input {list(x.shape)} (reflect mode)")
        if size + lo + hi < 1:
            raise RuntimeError(f"pad: input of shape {tuple(x.shape)} is too small: padding "
                               f"({lo}, {hi}) of dimension {d} gives size {size + lo + hi}")


def pad(input, pad, mode: str = "constant", value=None) -> Tensor:
    """``F.pad``: ``pad`` lists (left, right) amounts from the last dimension backwards:
    ``(1, 2)`` pads the last dim by 1 before and 2 after, ``(1, 1, 2, 2)`` also the one before.

    ``'constant'`` fills with ``value`` (0 by default) and pads any number of dims; a negative
    amount crops. ``'reflect'`` mirrors about the edge (without repeating it; each amount
    below the dim's size), ``'replicate'`` repeats the edge and ``'circular'`` wraps around;
    these pad the last 1, 2 or 3 dims of a (C, ...) or (N, C, ...) input and take no
    ``value``. Negative amounts crop in these modes too, as torch's kernels do.
    """
    x = as_tensor(input)
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"pad: unrecognised padding mode {mode!r}; expected one of "
                                  f"{list(_PAD_MODES)}")
    if value is not None and not isinstance(value, (int, float, np.number, np.bool_)):
        raise TypeError(f"pad: value must be a number, got {type(value).__name__}")
    amounts = _pad_amounts(x.ndim, pad)
    if mode == "constant":
        return _pad_constant(x, amounts, value)
    if value is not None and value != 0:
        raise RuntimeError(f"pad: padding mode {mode!r} doesn't take in value argument")
    _check_non_constant(x, amounts, mode)
    y = x
    for d, lo, hi in amounts:
        if lo or hi:
            y = (_circular(y, d, lo, hi) if mode == "circular"
                 else _reflect_or_replicate(y, d, lo, hi, mode == "reflect"))
    return _fresh(y, x)


# ----------------------------------------------------------------------------- pixel shuffle

def _factor(fn: str, name: str, v) -> int:
    r = _int(fn, name, v)
    if r <= 0:
        raise RuntimeError(f"{fn} expects a positive {name}, but got {r}")
    return r


def _at_least_3d(fn: str, x: Tensor) -> None:
    if x.ndim < 3:
        raise RuntimeError(f"{fn} expects input to have at least 3 dimensions, but got input "
                           f"with {x.ndim} dimension(s)")


def pixel_shuffle(input, upscale_factor: int) -> Tensor:
    """``F.pixel_shuffle``: (*, C r^2, H, W) -> (*, C, H r, W r); channel c r^2 + i r + j of
    the input becomes row offset i and column offset j of output channel c."""
    x = as_tensor(input)
    r = _factor("pixel_shuffle", "upscale_factor", upscale_factor)
    _at_least_3d("pixel_shuffle", x)
    *lead, c, h, w = x.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but input.size(-3)={c} "
                           f"is not divisible by {r * r}")
    lead, k = tuple(lead), len(lead)
    y = B.reshape(x, lead + (c // (r * r), r, r, h, w))
    y = B.permute(y, tuple(range(k)) + (k, k + 3, k + 1, k + 4, k + 2))
    return _fresh(B.reshape(y, lead + (c // (r * r), h * r, w * r)), x)


def pixel_unshuffle(input, downscale_factor: int) -> Tensor:
    """``F.pixel_unshuffle``, the inverse of ``pixel_shuffle``: (*, C, H r, W r) ->
    (*, C r^2, H, W)."""
    x = as_tensor(input)
    r = _factor("pixel_unshuffle", "downscale_factor", downscale_factor)
    _at_least_3d("pixel_unshuffle", x)
    *lead, c, h, w = x.shape
    for name, size, dim in (("height", h, -2), ("width", w, -1)):
        if size % r:
            raise RuntimeError(f"pixel_unshuffle expects {name} to be divisible by "
                               f"downscale_factor, but input.size({dim})={size} is not "
                               f"divisible by {r}")
    lead, k = tuple(lead), len(lead)
    y = B.reshape(x, lead + (c, h // r, r, w // r, r))
    y = B.permute(y, tuple(range(k)) + (k, k + 2, k + 4, k + 1, k + 3))
    return _fresh(B.reshape(y, lead + (c * r * r, h // r, w // r)), x)
