"""Channel-wise and alpha dropout layers with torch's arguments, reprs and train/eval
behaviour (identity in eval mode)."""
from __future__ import annotations

from ..functional.dropouts import (alpha_dropout, dropout1d, dropout2d, dropout3d,
                                  feature_alpha_dropout)
from .module import Module

__all__ = ["AlphaDropout", "Dropout1d", "Dropout2d", "Dropout3d", "FeatureAlphaDropout"]


class _DropoutNd(Module):
    """``inplace`` is accepted for PyTorch code; the result is always a new tensor."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(_DropoutNd):
    """``torch.nn.Dropout1d``: whole channels of (N, C, L) or (C, L) zeroed in training."""

    def forward(self, input):
        return dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """``torch.nn.Dropout2d``: whole channels of (N, C, H, W) zeroed in training (a 3-D input
    is read as (N, C, L), with torch's warning)."""

    def forward(self, input):
        return dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    """``torch.nn.Dropout3d``: whole channels of (N, C, D, H, W) or (C, D, H, W) zeroed."""

    def forward(self, input):
        return dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """``torch.nn.AlphaDropout``: SELU-preserving dropout of single elements."""

    def forward(self, input):
        return alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    """``torch.nn.FeatureAlphaDropout``: SELU-preserving dropout of whole channels."""

    def forward(self, input):
        return feature_alpha_dropout(input, self.p, self.training)
