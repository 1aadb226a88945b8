"""Containers with PyTorch's semantics: ``Sequential``, ``ModuleList`` and ``ModuleDict``.

Children are registered under the same names as in PyTorch, so parameter names and state-dict
keys match for the same structure.
"""
from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Mapping

from .. import backend
from .module import Module


def _abs_index(idx, size: int, what: str) -> int:
    idx = operator.index(idx)
    if not -size <= idx < size:
        raise IndexError(f"{what}: index {idx} is out of range for length {size}")
    return idx % size


def _renumber(container: Module) -> None:
    mods = list(container._modules.values())
    container._modules.clear()
    container._modules.update((str(i), m) for i, m in enumerate(mods))


class Sequential(Module):
    """Modules applied in order, named "0", "1", ... (or by an OrderedDict's keys).

    A slice is a new Sequential that keeps the children's names (``s[1:]`` of a three-layer
    Sequential has children "1" and "2"), so its state-dict keys are those of the original.
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, m in args[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), m)

    def _key(self, idx) -> str:
        return list(self._modules)[_abs_index(idx, len(self), type(self).__name__)]

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._key(idx)]

    def __setitem__(self, idx, module: Module) -> None:
        setattr(self, self._key(idx), module)

    def __delitem__(self, idx) -> None:
        if isinstance(idx, slice):
            for key in list(self._modules)[idx]:
                del self._modules[key]
        else:
            del self._modules[self._key(idx)]
        _renumber(self)  # as PyTorch does, so that append() keeps working

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, sequential) -> "Sequential":
        for m in sequential:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> "Sequential":
        if not isinstance(module, Module):
            raise AssertionError(f"module should be of type Module, got {type(module).__name__}")
        n = len(self._modules)
        index = operator.index(index)
        if not -n <= index <= n:
            raise IndexError(f"Sequential.insert: index {index} is out of range for length {n}")
        if index < 0:
            index += n
        for i in range(n, index, -1):
            self._modules[str(i)] = self._modules[str(i - 1)]
        self._modules[str(index)] = module
        return self

    def pop(self, key):
        v = self[key]
        del self[key]
        return v

    def forward(self, input):
        mods = list(self._modules.values())
        i, n = 0, len(mods)
        while i < n:
            m = mods[i]
            if i + 1 < n and _linear_into_batch_norm(m, mods[i + 1], input):
                # the Linear's bias goes into the batch-norm op, which adds it as it reads
                bn = mods[i + 1]
                act = _fusable_activation(bn, mods[i + 2]) if i + 2 < n else None
                input = bn._forward(m._forward_without_bias(input), act, shift=m.bias)
                i += 2 if act is None else 3
                continue
            if i + 1 < n:
                act = _fusable_activation(m, mods[i + 1])
                if act is not None:  # the layer and its activation as one op
                    if i + 2 < n and _batch_norm_into_transposed_conv(m, mods[i + 2], input):
                        input = m._forward(input, act, channel_major=True)
                    else:
                        input = m._forward(input, act)
                    i += 2
                    continue
            input = m(input)
            i += 1
        return input


_FUSE: list = []  # _BatchNorm, Linear, LeakyReLU, ReLU, Tanh, ConvTranspose2d, once imported


def _fusable_activation(m, nxt):
    """What ``Sequential`` hands to ``m._forward(x, act)`` to run ``m`` and the activation
    ``nxt`` after it as one fused op, with the same values and gradients; else None.

    - The slope of ``nxt`` (0 for ReLU) when it is a LeakyReLU (slope >= 0) or ReLU after a
      Linear layer or a training batch-norm layer
      (``functional.activation.linear_leaky_relu``, ``functional.norm.batch_norm_leaky_relu``).
    - ``"tanh"`` when it is a Tanh after a Linear layer (``functional.activation.linear_tanh``)
      or after a ConvTranspose2d layer (``functional.conv.conv_transpose2d_tanh``).

    Neither layer may have hooks, nor ``m`` a subclass's own forward."""
    if not _FUSE:
        from .layers import (  # (layers imports this module)
            ConvTranspose2d, LeakyReLU, Linear, ReLU, Tanh, _BatchNorm)
        _FUSE.extend((_BatchNorm, Linear, LeakyReLU, ReLU, Tanh, ConvTranspose2d))
    bn, lin, leaky, relu, tanh, convt = _FUSE
    kind = type(nxt)
    if kind not in (leaky, relu, tanh):
        return None
    if isinstance(m, convt):
        if kind is not tanh or type(m).forward is not convt.forward:
            return None
    elif isinstance(m, bn):
        if kind is tanh or not (m.training and type(m).forward is bn.forward):
            return None
    elif not (isinstance(m, lin) and type(m).forward is lin.forward):
        return None
    if m._forward_pre_hooks or m._forward_hooks or nxt._forward_pre_hooks \
            or nxt._forward_hooks:
        return None
    if kind is tanh:
        return "tanh"
    slope = 0.0 if kind is relu else float(nxt.negative_slope)
    return slope if slope >= 0 else None


def _batch_norm_into_transposed_conv(m, nxt, x) -> bool:
    """Whether ``Sequential`` asks the fused batch norm + activation ``m`` (see
    ``_fusable_activation``) for an output stored channel-major: when a ConvTranspose2d
    ``nxt`` reads it, on 4-D GPU input. That conv multiplies its input as the (C, N*H*W)
    matrix, forward and for its weight gradient, and an input in NCHW order (a generator's
    first layer writes one) costs a transposing copy each time. The same values."""
    if not _FUSE:
        _fusable_activation(m, nxt)  # (imports the layer classes)
    bn, convt = _FUSE[0], _FUSE[5]
    return isinstance(m, bn) and isinstance(nxt, convt) and _gpu_input(x, 4)


def _gpu_input(x, ndim: int) -> bool:
    """Whether ``x`` (a tensor or an array) is an ``ndim``-D GPU array: where the layer pairs
    above save a launch or a copy."""
    return getattr(x, "ndim", 0) == ndim and backend.is_cupy_array(getattr(x, "data", x))


def _linear_into_batch_norm(m, nxt, x) -> bool:
    """Whether ``Sequential`` runs the Linear layer ``m`` without its bias and hands the bias
    to the training batch-norm layer ``nxt`` after it, as the shift that its op adds to its
    input (``functional.norm.BatchNormTrain``): the same values and gradients, and on the GPU
    no launch for the bias add nor for the bias gradient's sum.

    ``m``: a Linear layer with a bias, its own forward and no hooks, on 2-D GPU input ``x``
    (on the CPU there is no launch to save, and the layers run as they are).
    ``nxt``: a batch-norm layer in training, with a momentum (not the cumulative average),
    its own forward and no hooks."""
    if not _FUSE:
        _fusable_activation(m, nxt)  # (imports the layer classes)
    bn, lin = _FUSE[0], _FUSE[1]
    if not (isinstance(m, lin) and type(m).forward is lin.forward
            and type(m)._forward_without_bias is lin._forward_without_bias
            and isinstance(nxt, bn) and nxt.training
            and type(nxt).forward is bn.forward and type(nxt)._forward is bn._forward):
        return False
    return (m.bias is not None and nxt.momentum is not None and _gpu_input(x, 2)
            and not (m._forward_pre_hooks or m._forward_hooks or nxt._forward_pre_hooks
                     or nxt._forward_hooks))


class ModuleList(Module):
    """A list of modules, registered as "0", "1", ... Indexing, slicing (a new ModuleList,
    renumbered from 0 as in PyTorch), append, extend, insert, pop, del and iteration."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(_abs_index(idx, len(self), "ModuleList"))]

    def __setitem__(self, idx, module: Module) -> None:
        idx = _abs_index(idx, len(self), "ModuleList")
        setattr(self, str(idx), module)

    def __delitem__(self, idx) -> None:
        if isinstance(idx, slice):
            for k in range(len(self._modules))[idx]:
                del self._modules[str(k)]
        else:
            del self._modules[str(_abs_index(idx, len(self), "ModuleList"))]
        _renumber(self)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules) -> "ModuleList":
        return self.extend(modules)

    def __add__(self, other) -> "ModuleList":
        return type(self)(list(self) + list(other))

    def append(self, module: Module) -> "ModuleList":
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> "ModuleList":
        if isinstance(modules, (Module, Mapping)) and not isinstance(modules, (ModuleList,
                                                                              Sequential)):
            raise TypeError("ModuleList.extend should be called with an iterable of modules, "
                            f"but got {type(modules).__name__}")
        for m in list(modules):
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        n = len(self._modules)
        index = operator.index(index)
        if index < 0:
            index = max(index + n, 0)
        index = min(index, n)  # list.insert semantics
        for i in range(n, index, -1):
            self._modules[str(i)] = self._modules[str(i - 1)]
        self._modules[str(index)] = None
        self.add_module(str(index), module)

    def pop(self, key=-1):
        v = self[key]
        del self[key]
        return v

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList is a container and has no forward(); iterate "
                                  "over it in your own module's forward")


class ModuleDict(Module):
    """An ordered dict of modules, registered under their keys: ``d[key]``, ``d[key] = m``,
    ``del d[key]``, ``in``, ``len``, iteration over keys, keys/items/values/update/pop/clear."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str) -> Module:
        v = self[key]
        del self[key]
        return v

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules) -> None:
        """Add or replace entries from a mapping (in its order) or from (key, module) pairs."""
        if isinstance(modules, (OrderedDict, ModuleDict, Mapping)):
            for key, m in modules.items():
                self[key] = m
            return
        if isinstance(modules, Module):
            raise TypeError("ModuleDict.update should be called with a mapping or an iterable "
                            f"of key/value pairs, but got {type(modules).__name__}")
        for j, pair in enumerate(modules):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"ModuleDict update sequence element #{j} should be a "
                                 f"(key, module) pair, got {pair!r}")
            self[pair[0]] = pair[1]

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict is a container and has no forward()")
