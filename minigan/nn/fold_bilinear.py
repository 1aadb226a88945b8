"""``nn.Unfold``, ``nn.Fold`` and ``nn.Bilinear``, with PyTorch's arguments, weight layout,
initialisation and ``extra_repr``."""
from __future__ import annotations

import math

from ..functional.folding import bilinear, fold, unfold
from . import init
from .layers import _param
from .module import Module

__all__ = ["Bilinear", "Fold", "Unfold"]


class Unfold(Module):
    """Every kh x kw window of the padded input as a column: (N, C, H, W) -> (N, C*kh*kw, L)
    (``F.unfold``). The arguments are kept as given, as torch keeps them."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, input):
        return unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Fold(Module):
    """Columns summed back onto their windows: (N, C*kh*kw, L) -> (N, C, *output_size)
    (``F.fold``, the adjoint of Unfold)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, input):
        return fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                    self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")


class Bilinear(Module):
    """y = x1^T A x2 + b, weight (out_features, in1_features, in2_features), bias
    (out_features,), both drawn from U(-1/sqrt(in1_features), 1/sqrt(in1_features))."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        self.weight = _param((out_features, in1_features, in2_features), device, dtype)
        if bias:
            self.bias = _param((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.in1_features) if self.in1_features > 0 else 0.0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
