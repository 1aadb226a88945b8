"""PyTorch's ``torch.utils`` namespace, as far as minigan provides it: ``minigan.utils.data``."""
from . import data  # noqa: F401

__all__ = ["data"]
