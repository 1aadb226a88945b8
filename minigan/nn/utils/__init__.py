"""PyTorch's ``torch.nn.utils`` essentials: gradient clipping, spectral normalisation and the
conversions between parameters and one vector."""
from .clip_grad import clip_grad_norm_, clip_grad_value_
from .convert import parameters_to_vector, vector_to_parameters
from .spectral_norm import SpectralNorm, remove_spectral_norm, spectral_norm

__all__ = ["SpectralNorm", "clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "remove_spectral_norm", "spectral_norm", "vector_to_parameters"]
