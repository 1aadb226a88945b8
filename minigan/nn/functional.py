"""PyTorch-style functional API: ``minigan.functional`` under ``torch.nn.functional``'s name
(every differentiable op and loss of minigan, by PyTorch's names)."""
from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
