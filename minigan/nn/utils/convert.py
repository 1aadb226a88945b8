"""``torch.nn.utils.parameters_to_vector`` and ``vector_to_parameters``."""
from __future__ import annotations

from ... import backend
from ...autograd import Tensor, mark_modified
from ...functional import basic as B

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _as_list(parameters, what: str) -> list:
    if isinstance(parameters, Tensor):
        return [parameters]
    params = list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{what}: parameter {i} is a {type(p).__name__}, not a Tensor")
    return params


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and joined into one 1-D tensor, in order. It is differentiable
    (a reshape and a concatenation), as in torch; all parameters must be on one device."""
    params = _as_list(parameters, "parameters_to_vector")
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    backend.get_array_module(*[p.data for p in params])  # refuses two devices
    return B.concat([B.reshape(p, -1) for p in params])


def vector_to_parameters(vec, parameters) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into the parameters' arrays, in place (cast
    to each parameter's dtype), in order. Unlike torch, a ``vec`` whose length is not the
    parameters' total size is refused rather than read in part."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a Tensor for vec, got "
                        f"{type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: vec must be 1-D, got shape {vec.shape}")
    params = _as_list(parameters, "vector_to_parameters")
    backend.get_array_module(vec.data, *[p.data for p in params])  # refuses two devices
    total = sum(p.data.size for p in params)
    if vec.shape[0] != total:
        raise ValueError(f"vector_to_parameters: vec has {vec.shape[0]} elements but the "
                         f"parameters hold {total}")
    start = 0
    for p in params:
        n = p.data.size
        p.data[...] = vec.data[start:start + n].reshape(p.data.shape)
        start += n
    mark_modified(*params)  # a graph recorded with the old values may not backward now
