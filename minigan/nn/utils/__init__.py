"""PyTorch's ``torch.nn.utils`` essentials: gradient clipping and spectral normalisation."""
from .clip_grad import clip_grad_norm_, clip_grad_value_
from .spectral_norm import SpectralNorm, remove_spectral_norm, spectral_norm

__all__ = ["SpectralNorm", "clip_grad_norm_", "clip_grad_value_", "remove_spectral_norm",
           "spectral_norm"]
