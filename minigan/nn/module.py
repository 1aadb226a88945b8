"""``Module`` and ``Parameter``: the PyTorch-style container for weights, buffers and submodules.

Conventions that differ from PyTorch, on purpose:

* Buffers are stored as raw arrays (NumPy or CuPy), not Tensors: nothing differentiates them.
* ``state_dict()`` maps names to arrays (the parameters' ``.data`` and the buffers themselves,
  references, not copies); ``keep_vars=True`` gives the ``Parameter`` objects instead.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Iterator, NamedTuple

import numpy as np

from .. import backend
from ..autograd import RemovableHandle, Tensor, mark_modified


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


class StateDictError(RuntimeError, KeyError):
    """``load_state_dict`` refused a state: missing or unexpected keys, or a shape that differs.

    A ``RuntimeError`` as in PyTorch, and a ``KeyError`` as minigan raised before."""

    __str__ = BaseException.__str__  # KeyError's own str() would quote the message


def _private_grads(arrays) -> list:
    """For each gradient array, whether it may be changed in place: it owns its memory (not a
    view, e.g. a broadcast) and no other array of the list is the same one."""
    counts: dict = {}
    for a in arrays:
        counts[id(a)] = counts.get(id(a), 0) + 1
    return [a.base is None and counts[id(a)] == 1
            and (not isinstance(a, np.ndarray) or a.flags.writeable) for a in arrays]


def zero_grads(params, set_to_none: bool) -> None:
    """``zero_grad`` of modules and optimizers: drop the gradients, or zero them in place where
    the array is the parameter's own (else replace it by a fresh zero array)."""
    params = [p for p in params if p.grad is not None]
    if set_to_none:
        for p in params:
            p.grad = None
        return
    for p, private in zip(params, _private_grads([p.grad.data for p in params])):
        if private:
            p.grad.data[...] = 0
        else:
            p.grad = Tensor(backend.get_array_module(p.grad.data).zeros_like(p.grad.data))


def _as_dtype(value):
    """``value`` as a NumPy dtype if it names one (np.float64, 'float64', np.dtype), else None."""
    if isinstance(value, np.dtype):
        return value
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value)
    if isinstance(value, str):
        try:
            return np.dtype(value)
        except (TypeError, ValueError):
            return None
    return None


def _parse_to_args(args, kwargs):
    """PyTorch's ``to(device=None, dtype=None, non_blocking=False)``, ``to(dtype)``,
    ``to(device, dtype)`` and ``to(tensor)`` forms, as (device, dtype)."""
    kwargs = dict(kwargs)
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, bool):  # non_blocking, positionally
            continue
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
            continue
        as_dt = _as_dtype(a)
        if as_dt is not None:
            dtype = as_dt
        elif isinstance(a, str):  # normalize_device names the unknown ones
            device = a
        else:
            raise TypeError(f"to(): {a!r} is neither a device ('cpu', 'cuda') nor a dtype "
                            "(np.float64, 'float32', ...)")
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired "
                            f"dtype={dtype}")
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"nn.Module.to: minigan's kernels take float32 and float64, not "
                            f"{dtype} (half precision is not supported)")
    return device, dtype


def _state_array(value, key: str):
    """A state-dict entry as an array: minigan Tensors, arrays, and (duck-typed) torch tensors."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray) or backend.is_cupy_array(value):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()  # a torch.Tensor: no torch import needed
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - re-raised with the key named
        raise StateDictError(f"{key}: cannot read a {type(value).__name__} as an array "
                             f"({exc})") from None
    if arr.dtype == object:  # None, a string, a ragged list: not numbers
        raise StateDictError(f"{key}: the state holds a {type(value).__name__}, not an array "
                             "of numbers")
    return arr


class Module:
    """Base class of layers and models. Assigning a ``Parameter`` or a ``Module`` to an
    attribute registers it; ``register_buffer`` registers non-trainable state (e.g. running
    statistics) that ``state_dict`` saves and ``to`` moves."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning {name!r}")
        params, bufs, mods = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            bufs.pop(name, None)
            self._non_persistent_buffers_set.discard(name)
            mods.pop(name, None)
            self.__dict__.pop(name, None)
            params[name] = value
        elif name in params:  # (a module too: as PyTorch, a parameter is not silently dropped)
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to parameter {name!r} "
                                "(an nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            bufs.pop(name, None)
            self._non_persistent_buffers_set.discard(name)
            self.__dict__.pop(name, None)
            mods[name] = value
        elif name in bufs:
            if isinstance(value, Tensor):
                value = value.data
            elif not (value is None or isinstance(value, np.ndarray)
                      or backend.is_cupy_array(value)):
                raise TypeError(f"cannot assign a {type(value).__name__} to buffer {name!r} "
                                "(a Tensor, an array or None expected)")
            bufs[name] = value
        elif name in mods:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to submodule {name!r}")
            mods[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # (runs for every parameter, buffer and submodule read: unrolled, parameters first)
        d = self.__dict__
        store = d.get("_parameters")
        if store is not None and name in store:
            return store[name]
        store = d.get("_buffers")
        if store is not None and name in store:
            return store[name]
        store = d.get("_modules")
        if store is not None and name in store:
            return store[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def _check_new_name(self, kind: str, name, store: dict) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain ".", got {name!r}')
        if name not in store and hasattr(type(self), name):  # a method or property
            raise KeyError(f"attribute {name!r} already exists")
        self.__dict__.pop(name, None)  # a plain attribute gives way, as in __setattr__

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Register an array (or a Tensor's array, or None) as state that ``to`` moves and,
        when ``persistent``, ``state_dict`` saves; it is not trained."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_new_name("buffer", name, self._buffers)
        if name in self._parameters or name in self._modules:
            raise KeyError(f"attribute {name!r} already exists")
        if isinstance(tensor, Tensor):
            tensor = tensor.data
        if tensor is not None and not (isinstance(tensor, np.ndarray)
                                       or backend.is_cupy_array(tensor)):
            raise TypeError(f"cannot assign a {type(tensor).__name__} object to buffer {name!r} "
                            "(an array, a Tensor or None is required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_new_name("parameter", name, self._parameters)
        if name in self._buffers or name in self._modules:
            raise KeyError(f"attribute {name!r} already exists")
        if param is None:
            self._parameters[name] = None
        elif not isinstance(param, Parameter):
            raise TypeError(f"cannot assign a {type(param).__name__} object to parameter "
                            f"{name!r} (nn.Parameter or None required)")
        else:
            self._parameters[name] = param

    def add_module(self, name: str, module: "Module | None") -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_new_name("module", name, self._modules)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> "Module":
        """The submodule at a dotted path such as ``"net.0"`` (``""`` is this module)."""
        if target == "":
            return self
        mod = self
        for item in target.split("."):
            if item not in mod._modules or mod._modules[item] is None:
                raise AttributeError(f"{type(mod).__name__} has no attribute `{item}` "
                                     f"(looking up {target!r})")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target: str) -> Parameter:
        return self._get_member(target, "_parameters", "parameter")

    def get_buffer(self, target: str):
        return self._get_member(target, "_buffers", "buffer")

    def _get_member(self, target: str, store: str, kind: str):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        members = getattr(mod, store)
        if name not in members:
            raise AttributeError(f"{type(mod).__name__} has no {kind} `{name}` "
                                 f"(looking up {target!r})")
        return members[name]

    # ----- traversal
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """Every module of the tree, this one first, by dotted name. A module reachable by two
        paths is given once (under its first name) unless ``remove_duplicate=False``."""
        if memo is None:
            memo = set()
        # depth first with a stack (the order of the recursive walk, without a generator per
        # level: training steps walk their models)
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if remove_duplicate:
                if id(m) in memo:
                    continue
                memo.add(id(m))
            yield name, m
            children = m._modules
            if children:
                stack.extend([(f"{name}.{k}" if name else k, c)
                              for k, c in reversed(children.items()) if c is not None])

    def _walk(self) -> list:
        """Every module of the tree, this one first, each once: ``named_modules``' order
        without the names, as a list (the walks a training step makes, in fewer steps)."""
        out, memo, stack = [], set(), [self]
        while stack:
            m = stack.pop()
            if id(m) in memo:
                continue
            memo.add(id(m))
            out.append(m)
            children = m._modules
            if children:
                stack.extend([c for c in reversed(children.values()) if c is not None])
        return out

    def modules(self) -> Iterator["Module"]:
        yield from self._walk()

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        seen = set()
        for n, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield n, m

    def children(self) -> Iterator["Module"]:
        return (m for _, m in self.named_children())

    def _named_members(self, store: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        mods = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse
                else [(prefix, self)])
        for mname, m in mods:
            for name, v in getattr(m, store).items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield (f"{mname}.{name}" if mname else name), v

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True):
        """Buffers (arrays) by dotted name, persistent or not."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    def apply(self, fn) -> "Module":
        """Call ``fn`` on every child (recursively), then on this module, as PyTorch does."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    # ----- modes and devices
    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        # (a trainer calls this twice a step: no names, no generators)
        seen = set()
        for m in self._walk():
            for p in m._parameters.values():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients, or with ``set_to_none=False`` zero them (in place where the
        array is the parameter's own, else by a fresh zero array)."""
        zero_grads(self.parameters(), set_to_none)

    @property
    def device(self) -> backend.Device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return backend.CUDA if backend.is_cupy_array(b) else backend.CPU
        return backend.CPU

    def to(self, *args, **kwargs) -> "Module":
        """Move and/or cast every parameter and floating buffer in place; returns self.

        As in PyTorch: ``to(device)``, ``to(dtype)`` (np.float64, 'float64', np.dtype),
        ``to(device, dtype)``, ``to(tensor)``, or the keywords ``device=``/``dtype=``. Only
        floating-point arrays change dtype (integer buffers such as num_batches_tracked keep
        theirs).
        """
        device, dtype = _parse_to_args(args, kwargs)
        if device is not None:
            device = backend.normalize_device(device)

        def move(a):
            if device is not None:
                a = backend.to_device(a, device)
            if dtype is not None and a.dtype.kind == "f":
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
                    m._buffers[name] = move(b)
        return self

    def cpu(self) -> "Module":
        return self.to("cpu")

    def cuda(self, device=None) -> "Module":
        return self.to("cuda" if device is None else device)

    def double(self) -> "Module":
        return self.to(dtype=np.float64)

    def float(self) -> "Module":
        return self.to(dtype=np.float32)

    def half(self) -> "Module":
        """torch's ``half()``: refused here by name (minigan's kernels take float32 and
        float64)."""
        return self.to(dtype=np.float16)

    # ----- state
    def _state_items(self, prefix: str = ""):
        """(key, module, store, name) of every saved slot, in PyTorch's order: each module's
        parameters, then its persistent buffers, then its children's. A submodule reachable by
        two paths appears under both, as in PyTorch."""
        for mname, m in self.named_modules(prefix=prefix, remove_duplicate=False):
            for pname, p in m._parameters.items():
                if p is not None:
                    yield (f"{mname}.{pname}" if mname else pname), m, "_parameters", pname
            for bname, b in m._buffers.items():
                if b is not None and bname not in m._non_persistent_buffers_set:
                    yield (f"{mname}.{bname}" if mname else bname), m, "_buffers", bname

    def state_dict(self, *args, destination=None, prefix: str = "",
                   keep_vars: bool = False) -> "OrderedDict[str, object]":
        """Parameters and persistent buffers by dotted name.

        minigan's convention: the values are arrays (each parameter's ``.data`` and each buffer,
        references, not copies); with ``keep_vars=True`` parameters are the ``Parameter``
        objects. ``destination`` (a dict to fill) and ``prefix`` (prepended to every key) are
        PyTorch's; they may also be given positionally, in that order.
        """
        if args:
            if len(args) > 3:
                raise TypeError(f"state_dict() takes at most 3 positional arguments, got "
                                f"{len(args)}")
            destination = args[0] if destination is None else destination
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        out = OrderedDict() if destination is None else destination
        for key, m, store, name in self._state_items():
            v = getattr(m, store)[name]
            if store == "_parameters" and not keep_vars:
                v = v.data
            out[prefix + key] = v
        return out

    def load_state_dict(self, state_dict, strict: bool = True,
                        assign: bool = False) -> IncompatibleKeys:
        """Copy arrays into this module's parameters and buffers, on this module's device.

        As PyTorch's ``copy_``, values are cast to each parameter's or buffer's dtype (a float64
        array loads into a float32 parameter); shapes must match exactly. With ``strict`` the key
        sets must match too. Errors (``StateDictError``: both a RuntimeError and a KeyError) name
        every offending key; nothing is changed unless every check passes. Values may be arrays,
        minigan Tensors or torch tensors.
        """
        if assign:
            raise NotImplementedError("load_state_dict(assign=True) is not supported; minigan "
                                      "always copies into the existing parameters")
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict for {type(self).__name__}: expected a dict-like "
                            f"state_dict (names to arrays), got a {type(state_dict).__name__}")
        own = OrderedDict((key, (m, store, name)) for key, m, store, name in self._state_items())
        # (a module's optional entries, such as batch norm's num_batches_tracked, which torch
        # too fills in for a state that lacks it: left as they are, and not reported missing)
        missing = [k for k, (m, _, name) in own.items() if k not in state_dict
                   and name not in getattr(m, "_state_optional", ())]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and (missing or unexpected):
            if missing:
                problems.append("missing keys: " + ", ".join(missing))
            if unexpected:
                problems.append("unexpected keys: " + ", ".join(unexpected))
        staged = []
        for key, (m, store, name) in own.items():
            if key not in state_dict:
                continue
            new = _state_array(state_dict[key], key)
            cur = getattr(m, store)[name]
            cur_arr = cur.data if store == "_parameters" else cur
            if tuple(new.shape) != tuple(cur_arr.shape):
                problems.append(f"{key}: shape {tuple(new.shape)} in the state, "
                                f"{tuple(cur_arr.shape)} in the model")
            elif np.dtype(new.dtype).kind not in "biuf":
                problems.append(f"{key}: dtype {np.dtype(new.dtype)} in the state cannot be "
                                f"cast to {cur_arr.dtype}")
            else:
                staged.append((m, store, name, new, cur_arr))
        if problems:
            raise StateDictError(f"load_state_dict for {type(self).__name__}: "
                                 + "; ".join(problems))
        for m, store, name, new, cur_arr in staged:
            arr = backend.to_device(new, backend.device_of(cur_arr)).astype(cur_arr.dtype,
                                                                           copy=False)
            if isinstance(cur_arr, np.ndarray) and not cur_arr.flags.writeable:
                # (a read-only array, such as one a user wrapped: replaced, not written)
                arr = arr.copy() if arr is new else arr
                if store == "_parameters":
                    m._parameters[name].data = arr
                else:
                    m._buffers[name] = arr
            else:
                # copied INTO the existing arrays, as PyTorch's copy_: whatever holds them (a
                # view, an earlier state_dict(), a captured CUDA graph) sees the loaded values
                cur_arr[...] = arr
            if store == "_parameters":
                mark_modified(m._parameters[name])  # a graph recorded before may not backward
        return IncompatibleKeys(missing, unexpected)

    # ----- hooks
    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before each forward; a non-None result replaces args (a
        tuple, or one value). With ``with_kwargs``: ``hook(module, args, kwargs)`` returning
        None or ``(args, kwargs)``."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = (hook, with_kwargs)
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each forward (``hook(module, args, kwargs,
        output)`` with ``with_kwargs``); a non-None result replaces the output."""
        if always_call:
            raise NotImplementedError("register_forward_hook(always_call=True) is not supported")
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = (hook, with_kwargs)
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    # ----- calling and printing
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks or self._forward_hooks:
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args, kwargs):
        for hook, with_kwargs in list(self._forward_pre_hooks.values()):
            if with_kwargs:
                res = hook(self, args, kwargs)
                if res is not None:
                    if not (isinstance(res, tuple) and len(res) == 2):
                        raise RuntimeError("forward pre-hook with kwargs must return None or a "
                                           f"tuple of (new_args, new_kwargs), got {res!r}")
                    args, kwargs = res
            else:
                res = hook(self, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        out = self.forward(*args, **kwargs)
        for hook, with_kwargs in list(self._forward_hooks.values()):
            res = hook(self, args, kwargs, out) if with_kwargs else hook(self, args, out)
            if res is not None:
                out = res
        return out

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
