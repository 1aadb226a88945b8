"""Per-sample normalisation, padding, pixel-shuffle and distance layers with PyTorch's names,
arguments, parameter and buffer names (so state dicts carry over), defaults and reprs:
``LayerNorm``, ``GroupNorm``, ``InstanceNorm1d``/``2d``, ``ZeroPad2d``, ``ConstantPad2d``,
``ReflectionPad2d``, ``ReplicationPad2d``, ``PixelShuffle``, ``PixelUnshuffle``,
``CosineSimilarity`` and ``PairwiseDistance``."""
from __future__ import annotations

import warnings

import numpy as np

from ..autograd import as_tensor
from ..functional import normalization as FN
from .layers import NormBase, affine_parameters, reset_affine
from .module import Module


class LayerNorm(Module):
    """Normalisation over the last dims, ``normalized_shape`` (an int or a shape), with the
    biased variance; ``weight`` (ones) and ``bias`` (zeros) of that shape when
    ``elementwise_affine`` (``bias=False``: no bias)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        affine_parameters(self, self.normalized_shape, elementwise_affine, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_affine(self)

    def forward(self, input):
        return FN.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine="
                f"{self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalisation of each sample over groups of ``num_channels // num_groups`` channels
    (and all positions); per-channel ``weight`` (ones) and ``bias`` (zeros) when ``affine``."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError(f"num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        affine_parameters(self, (num_channels,), affine, bias, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_affine(self)

    def forward(self, input):
        return FN.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class _InstanceNorm(NormBase):
    """Instance normalisation over axis 1 with torch's arguments, parameters and buffers.

    Instance statistics normalise in training, and always when ``track_running_stats`` is
    False; with it, training moves ``running_mean``/``running_var`` by ``momentum`` (None: they
    stay put, as in torch) and evaluation normalises with them. ``num_batches_tracked`` is kept
    for state-dict compatibility; like torch's, it is not advanced. An unbatched input (one
    dim fewer) is normalised as a batch of one.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias)

    def forward(self, input):
        input = as_tensor(input)
        name = type(self).__name__
        lo, hi = self._expected_dims
        if input.ndim not in (lo, hi):
            raise ValueError(f"{name}: expected {lo}D or {hi}D input (got {input.ndim}D input)")
        feature_dim = input.ndim - lo  # (lo: the dims of an unbatched input)
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"{name}: expected input's size at dim={feature_dim} to match "
                                 f"num_features ({self.num_features}), but got: "
                                 f"{input.shape[feature_dim]}.")
            warnings.warn(f"{name}: input's size at dim={feature_dim} does not match "
                          "num_features. You can silence this warning by not passing in "
                          "num_features, which is not used because affine=False",
                          stacklevel=2)
        x = input if input.ndim == hi else input.unsqueeze(0)
        y = FN.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             self.training or not self.track_running_stats,
                             0.0 if self.momentum is None else self.momentum, self.eps)
        return y if input.ndim == hi else y.squeeze(0)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) inputs, or unbatched (C, L)."""
    _expected_dims = (2, 3)


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) inputs, or unbatched (C, H, W)."""
    _expected_dims = (3, 4)


def _quadruple(padding) -> tuple:
    """An int as (p, p, p, p); a (left, right, top, bottom) sequence as a tuple."""
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
        return (int(padding),) * 4
    try:
        out = tuple(padding)
    except TypeError:
        raise TypeError(f"padding must be an int or a (left, right, top, bottom) tuple, got "
                        f"{padding!r}") from None
    if len(out) != 4:
        raise ValueError(f"padding must be an int or a (left, right, top, bottom) tuple of 4 "
                         f"ints, got {padding!r}")
    return out


class ConstantPad2d(Module):
    """Pads the last two dims with ``value``: ``padding`` is an int or (left, right, top,
    bottom); negative amounts crop."""

    def __init__(self, padding, value: float):
        super().__init__()
        self.padding, self.value = _quadruple(padding), value

    def forward(self, input):
        return FN.pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ZeroPad2d(ConstantPad2d):
    """Pads the last two dims with zeros (``padding`` as ``ConstantPad2d``'s)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad2d(Module):
    """Pads the last two dims of (C, H, W) or (N, C, H, W) by mirroring about the edges
    (each amount below the dim's size); ``padding`` is an int or (left, right, top, bottom)."""

    def __init__(self, padding):
        super().__init__()
        self.padding = _quadruple(padding)

    def forward(self, input):
        return FN.pad(input, self.padding, "reflect")

    def extra_repr(self):
        return f"{self.padding}"


class ReplicationPad2d(ReflectionPad2d):
    """Pads the last two dims of (C, H, W) or (N, C, H, W) by repeating the edge values."""

    def forward(self, input):
        return FN.pad(input, self.padding, "replicate")


class PixelShuffle(Module):
    """(*, C r^2, H, W) -> (*, C, H r, W r), with r = ``upscale_factor``."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return FN.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H r, W r) -> (*, C r^2, H, W), with r = ``downscale_factor``."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return FN.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


class CosineSimilarity(Module):
    """The cosine of the angle between x1 and x2 along ``dim`` (norms floored at ``eps``)."""

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return FN.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """The p-norm of x1 - x2 + eps over the last dimension (``norm`` holds p, as in torch)."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return FN.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
