"""``Module`` and ``Parameter``: the PyTorch-style container for weights, buffers and submodules."""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator, NamedTuple

import numpy as np

from .. import backend
from ..autograd import Tensor


class Parameter(Tensor):
    """A leaf tensor that a Module registers as trainable (``requires_grad=True`` by default)."""

    def __init__(self, data, requires_grad: bool = True):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    missing_keys: list
    unexpected_keys: list


class Module:
    """Base class of layers and models. Assigning a ``Parameter`` or a ``Module`` to an
    attribute registers it; ``register_buffer`` registers non-trainable state (e.g. running
    statistics) that ``state_dict`` saves and ``to`` moves."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning {name!r}")
        params, bufs, mods = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            bufs.pop(name, None)
            mods.pop(name, None)
            self.__dict__.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            bufs.pop(name, None)
            self.__dict__.pop(name, None)
            mods[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to parameter {name!r}; "
                                "wrap it in nn.Parameter")
            params[name] = None
        elif name in bufs:
            bufs[name] = value.data if isinstance(value, Tensor) else value
        elif name in mods:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to submodule {name!r}")
            mods[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array) -> None:
        """Register an array (or None) as state that is saved and moved but not trained."""
        if isinstance(array, Tensor):
            array = array.data
        self.__dict__.pop(name, None)
        self._buffers[name] = array

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module: "Module") -> None:
        self._modules[name] = module

    # ----- traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for pname, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse: bool = True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = ""):
        for mname, m in self.named_modules(prefix):
            for bname, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self):
        return (b for _, b in self.named_buffers())

    def apply(self, fn) -> "Module":
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    # ----- modes and devices
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, flag: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    @property
    def device(self) -> str:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return backend.device_of(b)
        return "cpu"

    def to(self, device=None, dtype=None) -> "Module":
        """Move (and/or cast) every parameter and floating buffer in place; returns self."""
        if device is not None:
            device = backend.normalize_device(device)

        def move(a, floating_only=True):
            if device is not None:
                a = backend.to_device(a, device)
            if dtype is not None and (a.dtype.kind == "f" or not floating_only):
                a = a.astype(dtype, copy=False)
            return a

        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = move(p.data)
                    if p.grad is not None:
                        p.grad = Tensor(move(p.grad.data))
            for name, b in list(m._buffers.items()):
                if b is not None:
                    m._buffers[name] = move(b) if b.dtype.kind == "f" or dtype is None \
                        else (backend.to_device(b, device) if device else b)
        return self

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self) -> "Module":
        return self.to("cuda")

    def double(self) -> "Module":
        return self.to(dtype=np.float64)

    def float(self) -> "Module":
        return self.to(dtype=np.float32)

    # ----- state
    def state_dict(self) -> "OrderedDict[str, object]":
        """Parameters and buffers by dotted name, as arrays (references, not copies)."""
        out = OrderedDict()
        for name, m in self.named_modules():
            for pname, p in m._parameters.items():
                if p is not None:
                    out[f"{name}.{pname}" if name else pname] = p.data
            for bname, b in m._buffers.items():
                if b is not None:
                    out[f"{name}.{bname}" if name else bname] = b
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into this module's parameters and buffers, on this module's device.

        Shapes and dtypes must match; with ``strict`` the key sets must match exactly. Errors
        name the offending key. Nothing is changed unless every check passes.
        """
        own = self._state_slots()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and (missing or unexpected):
            if missing:
                problems.append("missing keys: " + ", ".join(missing))
            if unexpected:
                problems.append("unexpected keys: " + ", ".join(unexpected))
        for key, (get, _) in own.items():
            if key not in state_dict:
                continue
            new = state_dict[key]
            new = new.data if isinstance(new, Tensor) else new
            cur = get()
            if tuple(new.shape) != tuple(cur.shape):
                problems.append(f"{key}: shape {tuple(new.shape)} in the state, "
                                f"{tuple(cur.shape)} in the model")
            elif np.dtype(new.dtype) != cur.dtype:
                problems.append(f"{key}: dtype {np.dtype(new.dtype)} in the state, "
                                f"{cur.dtype} in the model")
        if problems:
            raise KeyError(f"load_state_dict for {type(self).__name__}: " + "; ".join(problems))
        for key, (get, set_) in own.items():
            if key in state_dict:
                new = state_dict[key]
                new = new.data if isinstance(new, Tensor) else new
                cur = get()
                set_(backend.to_device(new, backend.device_of(cur)).astype(cur.dtype, copy=True))
        return IncompatibleKeys(missing, unexpected)

    def _state_slots(self) -> "OrderedDict[str, tuple]":
        slots = OrderedDict()
        for name, m in self.named_modules():
            for pname, p in m._parameters.items():
                if p is not None:
                    def setp(v, p=p):
                        p.data = v
                    slots[f"{name}.{pname}" if name else pname] = (lambda p=p: p.data, setp)
            for bname in list(m._buffers):
                if m._buffers[bname] is not None:
                    def setb(v, m=m, bname=bname):
                        m._buffers[bname] = v
                    slots[f"{name}.{bname}" if name else bname] = (
                        lambda m=m, bname=bname: m._buffers[bname], setb)
        return slots

    # ----- calling and printing
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
