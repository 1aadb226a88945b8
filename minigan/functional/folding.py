"""PyTorch's ``F.unfold`` (im2col), ``F.fold`` (col2im) and ``F.bilinear``.

unfold copies every kh x kw window of a zero-padded (N, C, H, W) input into a column,

    cols[n, (c,i,j), (a,b)] = xpad[n, c, a*s + i*d, b*s + j*d]       shape (N, C*kh*kw, L),

with L = Ho*Wo windows in row-major order. fold is its adjoint: every column entry is added
back onto the pixel it was copied from, so overlapping windows sum. Being each other's
adjoints (and both linear), ``Unfold``'s backward is a fold and ``Fold``'s an unfold, and
every order of derivative is exact. Both run on the conv kernels' im2col/col2im
(``minigan.kernels.conv``), which lay cols out as (C*kh*kw, N*L); here only a transpose of the
(N, L) axes separates the two layouts.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor
from ..kernels import conv as KC
from . import basic as B
from .linalg import einsum

__all__ = ["bilinear", "fold", "unfold"]


def _geometry(kernel_size, dilation, padding, stride) -> tuple:
    """(k, d, p, s), each an (h, w) pair of ints, checked."""
    return (KC._pair(kernel_size, "kernel_size", 1), KC._pair(dilation, "dilation", 1),
            KC._pair(padding, "padding", 0), KC._pair(stride, "stride", 1))


def _blocks(what: str, hw, k, d, p, s) -> tuple:
    """The (Ho, Wo) grid of sliding blocks over an image of size hw; an error when empty."""
    grid = KC.conv_output_size(tuple(hw), k, s, p, d)
    if min(grid) <= 0:
        raise ValueError(
            f"{what}: no sliding block fits: image size {tuple(hw)}, kernel_size {k}, dilation "
            f"{d}, padding {p}, stride {s} give a block grid of {tuple(grid)} (the dilated "
            f"kernel d*(k-1)+1 must fit in the padded image)")
    return tuple(grid)


def _check_float(what: str, a) -> None:
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{what}: supported dtypes are float32 and float64, got {a.dtype}")


class Unfold(Function):
    """y[n,(c,i,j),(a,b)] = xpad[n, c, a*s + i*d, b*s + j*d] on (N, C, H, W); gx = fold(gy)."""

    saves_inputs = False  # linear: the gradient does not read x

    def __init__(self, k, d, p, s):
        self.k, self.d, self.p, self.s = k, d, p, s

    def forward(self, x):
        xp = backend.get_array_module(x)
        n, c, h, w = x.shape
        self.image_hw = (h, w)
        grid = _blocks("unfold", (h, w), self.k, self.d, self.p, self.s)
        rows, length = c * self.k[0] * self.k[1], grid[0] * grid[1]
        if x.size == 0:
            return xp.zeros((n, rows, length), x.dtype)
        cols = KC.im2col(x, self.k, self.s, self.p, self.d)  # (C*kh*kw, N*L)
        return xp.ascontiguousarray(cols.reshape(rows, n, length).transpose(1, 0, 2))

    def backward(self, gy):
        return Fold(self.image_hw, self.k, self.d, self.p, self.s)(gy)


class Fold(Function):
    """y[n, c, a*s - p + i*d, b*s - p + j*d] += x[n,(c,i,j),(a,b)], y of size output_size;
    gx = unfold(gy)."""

    saves_inputs = False  # linear: the gradient does not read x

    def __init__(self, output_size, k, d, p, s):
        self.output_size, self.k, self.d, self.p, self.s = output_size, k, d, p, s

    def forward(self, x):
        xp = backend.get_array_module(x)
        n, rows, length = x.shape
        c = rows // (self.k[0] * self.k[1])
        shape = (n, c, *self.output_size)
        if x.size == 0:
            return xp.zeros(shape, x.dtype)
        cols = xp.ascontiguousarray(x.transpose(1, 0, 2)).reshape(rows, n * length)
        return KC.col2im(cols, shape, self.k, self.s, self.p, self.d)

    def backward(self, gy):
        return Unfold(self.k, self.d, self.p, self.s)(gy)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """PyTorch's ``F.unfold``: (N, C, H, W) -> (N, C*kh*kw, L), or (C, H, W) -> (C*kh*kw, L),
    every kh x kw window of the zero-padded input as one column (L windows, row-major)."""
    x = as_tensor(input)
    if x.ndim not in (3, 4):
        raise ValueError(f"unfold: only 3-D (C, H, W) or 4-D (N, C, H, W) inputs are "
                         f"supported, got shape {x.shape}")
    _check_float("unfold", x.data)
    f = Unfold(*_geometry(kernel_size, dilation, padding, stride))
    if x.ndim == 3:
        return B.squeeze(f(B.unsqueeze(x, 0)), 0)
    return f(x)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """PyTorch's ``F.fold``: (N, C*kh*kw, L) -> (N, C, *output_size), or (C*kh*kw, L) ->
    (C, *output_size), each column added back onto the window it came from (overlaps sum)."""
    x = as_tensor(input)
    if x.ndim not in (2, 3):
        raise ValueError(f"fold: only 2-D (C*kh*kw, L) or 3-D (N, C*kh*kw, L) inputs are "
                         f"supported, got shape {x.shape}")
    _check_float("fold", x.data)
    out_hw = KC._pair(output_size, "output_size", 1)
    k, d, p, s = _geometry(kernel_size, dilation, padding, stride)
    rows, length = x.shape[-2:]
    if rows % (k[0] * k[1]):
        raise ValueError(f"fold: the size of the input's channel dimension, {rows}, must be "
                         f"divisible by the product of kernel_size {k} = {k[0] * k[1]}")
    grid = _blocks("fold", out_hw, k, d, p, s)
    if length != grid[0] * grid[1]:
        raise ValueError(
            f"fold: output_size {out_hw}, kernel_size {k}, dilation {d}, padding {p} and stride "
            f"{s} give {grid[0]} * {grid[1]} = {grid[0] * grid[1]} sliding blocks, but the "
            f"input's last dimension has size {length}")
    f = Fold(out_hw, k, d, p, s)
    if x.ndim == 2:
        return B.squeeze(f(B.unsqueeze(x, 0)), 0)
    return f(x)


def bilinear(input1, input2, weight, bias=None) -> Tensor:
    """PyTorch's ``F.bilinear``: y[..., o] = sum_{i,j} x1[..., i] W[o, i, j] x2[..., j] + b[o],
    for x1 (*, in1), x2 (*, in2) with the same leading dims and W (out, in1, in2)."""
    x1, x2 = as_tensor(input1), as_tensor(input2)
    w = as_tensor(weight)
    if w.ndim != 3:
        raise ValueError(f"bilinear: weight must be 3-D (out, in1, in2), got shape {w.shape}")
    if x1.ndim == 0 or x2.ndim == 0:
        raise ValueError("bilinear: the inputs must have at least one dimension")
    if x1.shape[:-1] != x2.shape[:-1]:
        raise ValueError(f"bilinear: input1 of shape {x1.shape} and input2 of shape {x2.shape} "
                         "must have the same leading (batch) dimensions")
    if (x1.shape[-1], x2.shape[-1]) != w.shape[1:]:
        raise ValueError(f"bilinear: weight of shape {w.shape} expects inputs of "
                         f"{w.shape[1]} and {w.shape[2]} features, got input1 of shape "
                         f"{x1.shape} and input2 of shape {x2.shape}")
    y = einsum("...i,oij,...j->...o", x1, w, x2)
    if bias is None:
        return y
    b = as_tensor(bias, y)
    if b.shape != (w.shape[0],):
        raise ValueError(f"bilinear: bias must have shape ({w.shape[0]},), got {b.shape}")
    return B.add(y, b)

