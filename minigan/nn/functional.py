"""PyTorch-style functional API: every differentiable op of minigan, by PyTorch's names.

Everything in ``minigan.functional``, plus the losses and ops that ``torch.nn.functional``
has and that nn's layers use (``binary_cross_entropy``, ``l1_loss``, ``nll_loss``,
``huber_loss``, ``smooth_l1_loss``, ``interpolate``, ``embedding``).
"""
from ..functional import *  # noqa: F401,F403
from ..functional import __all__ as _core_all
from ..functional.loss import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401
                               cross_entropy, huber_loss, l1_loss, mse_loss, nll_loss,
                               smooth_l1_loss)
from ._ops import embedding, interpolate  # noqa: F401

__all__ = sorted(set(_core_all) | {
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "embedding",
    "huber_loss", "interpolate", "l1_loss", "mse_loss", "nll_loss", "smooth_l1_loss"})
