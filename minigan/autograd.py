"""Reverse-mode automatic differentiation: ``Tensor``, ``Function``, ``grad``, ``no_grad``.

A ``Tensor`` wraps one NumPy or CuPy array. Applying a ``Function`` to tensors records the
function as the ``creator`` of its outputs, so the graph is a web of functions pointing back at
their input tensors. ``backward``/``grad`` walk that graph from the outputs in reverse
topological order (by ``generation``).

Higher-order gradients come for free from one rule (see ``Function``): a function's backward is
written with differentiable functions on tensors. With ``create_graph=True`` the backward pass runs
with recording on, so the gradients it returns are themselves tensors in a graph, and can be
differentiated again. Without it, the backward pass runs under ``no_grad`` and records nothing,
and the busiest backward formulas then work on arrays directly (rule 4 of ``Function``).
"""
from __future__ import annotations

import functools
import heapq
import inspect
import itertools
import operator
import sys
import threading
import weakref

import numpy as np

from . import backend


class _GradMode(threading.local):
    enabled = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _mode.enabled


class _SetGradMode:
    """Context manager (and decorator) that sets whether functions record a graph."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        self.prev = _mode.enabled
        _mode.enabled = self.enabled
        return self

    def __exit__(self, *exc):
        _mode.enabled = self.prev
        return False

    def __call__(self, fn):
        if inspect.isgeneratorfunction(fn):  # the mode holds in the body, between yields too
            def wrapped(*args, **kwargs):
                gen = fn(*args, **kwargs)
                resume = gen.send, None  # the first resume: send(None), i.e. next()
                while True:
                    with _SetGradMode(self.enabled):
                        try:
                            value = resume[0](resume[1])
                        except StopIteration as stop:
                            return stop.value
                    try:
                        resume = gen.send, (yield value)
                    except GeneratorExit:  # close(): the body's cleanup runs in the mode too
                        with _SetGradMode(self.enabled):
                            gen.close()
                        raise
                    except BaseException as exc:  # throw(): into the body
                        resume = gen.throw, exc

            return functools.wraps(fn)(wrapped)

        def wrapped(*args, **kwargs):
            with _SetGradMode(self.enabled):
                return fn(*args, **kwargs)

        functools.update_wrapper(wrapped, fn)
        return wrapped


def no_grad():
    """Inside ``with minigan.no_grad():`` no graph is recorded (also usable as a decorator)."""
    return _SetGradMode(False)


def enable_grad():
    return _SetGradMode(True)


class set_grad_enabled(_SetGradMode):  # noqa: N801 - torch's name
    """``minigan.set_grad_enabled(mode)``: called, it switches recording on or off at once;
    as a context manager, for the block only (the mode before it comes back at its end)."""

    def __init__(self, mode: bool):
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"set_grad_enabled: expected True or False, got {mode!r}")
        super().__init__(bool(mode))
        self.prev = _mode.enabled
        _mode.enabled = self.enabled

    def __enter__(self):  # (set when the object was made; again, for a reused object)
        _mode.enabled = self.enabled
        return self

    def __call__(self, fn):  # as a decorator: the mode holds in the calls only
        _mode.enabled = self.prev
        return _SetGradMode(self.enabled)(fn)


def inference_mode(mode: bool = True):
    """``torch.inference_mode``: here the same as ``no_grad`` (``mode=False`` records as usual);
    a context manager and a decorator."""
    if callable(mode):  # @inference_mode without parentheses
        return _SetGradMode(False)(mode)
    return _SetGradMode(not mode)


FLOAT_DTYPES = (np.float16, np.float32, np.float64)

# Creation order of recorded functions: ties in the backward queue are broken by it, so that
# gradients are always accumulated in the same order (float addition is not associative, and
# breaking ties by memory address made runs differ in the last bit).
_sequence = itertools.count()


class RemovableHandle:
    """What ``Tensor.register_hook`` and the Module hook registrations return: ``remove()``
    undoes the registration (also usable as a context manager)."""

    _ids = itertools.count()

    def __init__(self, hooks: dict):
        self.hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


class Tensor:
    """An array (NumPy on "cpu", CuPy on "cuda") with an optional gradient and graph history.

    Attributes: ``data`` (the array), ``grad`` (a Tensor or None), ``requires_grad``,
    ``creator`` (the Function that made it, None for leaves).
    """

    # Make ``ndarray <op> Tensor`` call the Tensor's reflected operator instead of NumPy's.
    __array_priority__ = 1000
    # When ``data`` was last changed in place (see ``mark_modified``); a class default, so a new
    # tensor costs nothing for it
    _modified_at = 0
    # Gradient hooks (register_hook) by handle id, and whether retain_grad() was called: the
    # backward looks at _hooks alone (None for nearly every tensor), so retain_grad sets both
    _hooks = None
    _retains_grad = False

    def __init__(self, data, requires_grad: bool = False):
        if data.__class__ not in _ARRAY_CLASSES:  # (a NumPy or CuPy array: no calls)
            if isinstance(data, Tensor):
                data = data.data
            if not isinstance(data, np.ndarray) and not backend.is_cupy_array(data):
                raise TypeError(f"Tensor wraps a numpy or cupy array, got "
                                f"{type(data).__name__}; use minigan.tensor(...) to convert "
                                "other data")
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {data.dtype}")
        self.data = data
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self.creator: Function | None = None
        self.generation = 0

    # ----- array-like attributes
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> "_Size":
        """The number of elements, as NumPy's ``size`` (an int). Called, it is PyTorch's
        ``size()``: ``x.size()`` is the shape and ``x.size(0)`` its first entry."""
        return _Size(self.data.size, self.data.shape)

    def numel(self) -> int:
        return self.data.size

    def dim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> backend.Device:
        """Where the data lives, as ``minigan.device`` (equal to the name "cpu" or "cuda")."""
        return backend.CUDA if backend.is_cupy_array(self.data) else backend.CPU

    @property
    def is_cuda(self) -> bool:
        return backend.is_cupy_array(self.data)

    @property
    def is_leaf(self) -> bool:
        return self.creator is None

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is "
                               "ambiguous: use .any() or .all() on its numpy() values")
        return bool(self.data.reshape(()).item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self.requires_grad else ""
        dev = ", device='cuda'" if self.device == "cuda" else ""
        body = np.array2string(backend.to_numpy(self.data), prefix="tensor(", precision=4)
        return f"tensor({body}{dev}{extra})"

    # ----- conversions
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (a copy from the GPU; the array itself on the CPU)."""
        return backend.to_numpy(self.data)

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> "Tensor":
        """The same array, cut from the graph."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if not requires_grad and self.creator is not None:  # (is_leaf, without its call)
            raise RuntimeError("requires_grad can only be switched off on leaf tensors; "
                               "use .detach()")
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def to(self, device=None, dtype=None) -> "Tensor":
        """A tensor on ``device`` and/or of ``dtype``; differentiable, like PyTorch's ``.to``.
        A dtype may come first (``x.to(np.float64)``, ``x.to("float64")``)."""
        from .functional import to_device, astype  # late import: ops sit above autograd

        if dtype is None and device is not None and _is_dtype(device):
            device, dtype = None, device
        out = self
        if device is not None and backend.normalize_device(device) != self.device:
            out = to_device(out, device)
        if dtype is not None and np.dtype(dtype) != self.dtype:
            out = astype(out, dtype)
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def zero_grad(self) -> None:
        self.grad = None

    # ----- gradient hooks
    def register_hook(self, hook) -> RemovableHandle:
        """Call ``hook(grad)`` with this tensor's gradient each time a backward computes it;
        a Tensor it returns replaces the gradient (for the rest of the backward, and for a
        leaf's .grad), None keeps it. As in PyTorch, a leaf's hooks see the sum of all its
        gradient's parts, before it is added to .grad."""
        if not callable(hook):
            raise TypeError(f"register_hook: expected a callable, got {type(hook).__name__}")
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does "
                               "not require grad")
        if self._hooks is None:
            self._hooks = {}
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` at each ``backward()`` (summed over
        backwards, as a leaf's is; after its hooks). A no-op on a leaf."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad")
        if self.creator is None:
            return
        self._retains_grad = True
        if self._hooks is None:
            self._hooks = {}

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    # ----- differentiation
    def backward(self, gradient=None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad (or
        only for the tensors in ``inputs``), as PyTorch's ``Tensor.backward``.

        ``gradient`` is the gradient of some scalar with respect to ``self``; it may be omitted
        only when ``self`` holds a single element.
        """
        grad = gradient
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph; "
                               "did you create it under no_grad() or from tensors that do not "
                               "require grad?")
        if grad is None:
            if self.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a tensor with one element, got shape "
                    f"{self.shape}; pass grad= of the same shape, or reduce first (e.g. .sum())")
            grad = Tensor(_seed(self.data) if not create_graph
                          else backend.get_array_module(self.data).ones_like(self.data))
        else:
            grad = _as_grad(grad, self)
        if inputs is not None:
            inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
            for t in inputs:
                if not isinstance(t, Tensor) or not t.requires_grad:
                    raise RuntimeError("backward(inputs=...): every input must be a Tensor "
                                       "that requires grad")
            got = _run_backward([self], [grad], inputs, create_graph, retain_graph,
                                hooked_targets=True)
            for t, g in zip(inputs, got):
                if g is not None:
                    _store_grad(t, g, create_graph, {id(grad.data)})
            return
        if self.creator is None:  # a leaf: its gradient is the one given (after its hooks)
            if self._hooks is not None:
                grad = _hooked(self, grad, {}, None, set())
            _store_grad(self, grad, create_graph, {id(grad.data)})
            return
        _run_backward([self], [grad], None, create_graph, retain_graph)

    # Tensors are compared by identity in graph bookkeeping; == is elementwise in ops.
    __hash__ = object.__hash__


_SEEDS: dict = {}  # (dtype, shape, array class, GPU id or None) -> a shared array of ones


def _seed(a):
    """``ones_like(a)``, the seed of a plain ``backward()``: one shared array per dtype, shape
    and device, which on the GPU saves a fill launch per backward. Nothing writes into it. The
    engine copies a gradient it was handed before making it a leaf's .grad (its id is in
    ``stored``), and it never sums into an array that something else holds, such as this
    cache. On the CPU it is read-only besides, so a kernel that tried would raise. Not cached
    while a CUDA graph is being captured: a captured fill holds its values only in replays."""
    gpu = backend.is_cupy_array(a)
    # (the class too: a seed made by one array library is never handed to another)
    key = (a.dtype, a.shape, a.__class__, a.device.id if gpu else None)
    seed = _SEEDS.get(key)
    if seed is None:
        xp = backend.get_array_module(a)
        if gpu and backend.is_capturing():
            return xp.ones_like(a)
        seed = xp.ones_like(a)
        if not gpu:
            seed.flags.writeable = False
        _SEEDS[key] = seed
    return seed


class _Size(int):
    """A tensor's element count that, called, gives its shape (PyTorch's ``size()``)."""

    def __new__(cls, n, shape):
        self = super().__new__(cls, n)
        self.shape = shape
        return self

    def __call__(self, dim=None):
        if dim is None:
            return self.shape
        nd = len(self.shape)
        if not -nd <= dim < nd:
            raise IndexError(f"size({dim}): dimension out of range for a tensor of shape "
                             f"{self.shape}")
        return self.shape[dim]


_new_tensor = object.__new__
_ARRAY_CLASSES = backend.ARRAY_CLASSES


def _is_dtype(x) -> bool:
    if isinstance(x, str):
        if x in ("cpu", "cuda") or x.startswith("cuda:"):
            return False
        try:
            np.dtype(x)
        except TypeError:
            return False
        return True
    return isinstance(x, (np.dtype, type)) and not isinstance(x, str)


def _as_grad(g, like: Tensor) -> Tensor:
    if not isinstance(g, Tensor):
        xp = backend.get_array_module(like.data)
        g = Tensor(xp.asarray(g, dtype=like.dtype))
    backend.check_same_device(like.data, g.data, what="backward(grad=...)")
    if g.shape != like.shape:
        raise ValueError(f"gradient of shape {g.shape} given for a tensor of shape {like.shape}")
    return g


def tensor(data, requires_grad: bool = False, device=None, dtype=None) -> Tensor:
    """Make a leaf tensor from array-like data. Floats default to float32, as in PyTorch."""
    if isinstance(data, Tensor):
        data = data.data
    elif isinstance(data, (list, tuple)):
        data = _unwrapped(data)
    if dtype is not None:
        dtype = np.dtype(dtype)
    if device is None:
        device = backend.device_of(data)
    device = backend.normalize_device(device)
    xp = backend.xp_for(device)
    if dtype is None:
        probe = data if hasattr(data, "dtype") else np.asarray(data)
        if probe.dtype.kind == "f":
            # keep explicit float arrays' precision; plain Python floats become float32
            dtype = probe.dtype if hasattr(data, "dtype") else np.dtype(np.float32)
        elif probe.dtype.kind in "iu":
            dtype = np.dtype(np.int64) if not hasattr(data, "dtype") else probe.dtype
        elif probe.dtype.kind in "OSUV":  # None, strings, sets, ragged lists: not numbers
            raise TypeError(f"tensor: cannot make a tensor of numbers from a "
                            f"{type(data).__name__} ({probe.dtype} when read as an array)")
        else:
            dtype = probe.dtype
    if backend.is_cupy_array(data) and device == "cpu":
        data = backend.to_numpy(data)
    arr = xp.array(data, dtype=dtype)  # always a copy, as torch.tensor
    return Tensor(arr, requires_grad=requires_grad)


def _unwrapped(data):
    """A (nested) list or tuple with any Tensors in it replaced by their values on the host,
    as torch.tensor([t1, t2]) reads 0-d tensors as numbers."""
    if not any(isinstance(v, (Tensor, list, tuple)) for v in data):
        return data
    return [backend.to_numpy(v.data) if isinstance(v, Tensor)
            else _unwrapped(v) if isinstance(v, (list, tuple)) else v for v in data]


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """Wrap arrays and Python numbers (as constants); scalars take ``like``'s dtype and device."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray) or backend.is_cupy_array(x):
        return Tensor(x)
    if like is not None:
        xp = backend.get_array_module(like.data)
        dtype = like.dtype if like.dtype.kind == "f" else None
        if xp is not np and isinstance(x, (int, float, np.generic)):
            # on the GPU a number is filled in by a kernel, not copied from the host
            return Tensor(xp.full((), x, dtype=dtype or np.result_type(x)))
        return Tensor(xp.asarray(x, dtype=dtype))
    return tensor(x)


class _Accumulated:
    """What a backward returns for an input whose gradient it added into
    ``accumulate_into[i]`` itself (see ``Function.accumulates``)."""

    __slots__ = ()

    def __repr__(self):
        return "ACCUMULATED"


ACCUMULATED = _Accumulated()


class _ZeroGrad:
    """What a backward returns for an input its output depends on only through a piecewise
    constant map (the mask of ReLU's gradient reads x): the gradient is zero, but the input
    was used, and PyTorch gives it (and everything upstream of it) a zero gradient, not none.
    The engine computes nothing for it: it marks the input as reached, passes the mark on
    through the input's creator without calling that backward, and at the end gives zeros to
    whatever the marks reached and no gradient did (a leaf's .grad, grad()'s results). A tensor
    with hooks or a retained gradient gets the zeros at once, so its hooks see them."""

    __slots__ = ()

    def __repr__(self):
        return "ZERO_GRAD"


ZERO_GRAD = _ZeroGrad()


class Function:
    """A differentiable operation. Subclasses implement ``forward`` and ``backward``.

    The contract (it is what makes higher-order gradients exact):

    1. ``forward(*arrays) -> array or tuple of arrays`` computes on raw arrays with kernels. It
       may keep its inputs, its outputs, and masks that are piecewise constant in the inputs
       (in ``self.saved``), nothing else.
    2. ``backward(*grad_outputs: Tensor) -> Tensor, tuple of Tensors or None per input`` is
       written with minigan's differentiable functions on Tensors (``self.inputs`` and
       ``self.output(i)``). It never treats a cached intermediate array (say 1/std) as a constant.
       Under ``create_graph=True`` it therefore records its own graph, and higher derivatives are
       exact with no extra code. ``self.needs_input_grad[i]`` says which input gradients are
       wanted; return None for the others.
    3. A function that cannot follow rule 2 sets ``once_differentiable = True``; going through it
       with ``create_graph=True`` raises an error instead of returning wrong numbers.
    4. A shortcut, allowed by rule 2 because nothing is recorded: when ``is_grad_enabled()`` is
       False inside ``backward`` (a plain backward, no ``create_graph``), it may compute the same
       formulas on the arrays with kernels and wrap the results in Tensors. That skips one op
       dispatch per term, which on the GPU is host time per step. Linear, MatMul, Reshape,
       Transpose, Sum, LeakyReLU, Conv2d, ConvTranspose2d and BatchNorm do this; the tests hold
       each shortcut to its graph-building formula.

    PyTorch-style custom Functions are subclasses too: a ``forward`` that is a staticmethod,
    ``forward(ctx, *args)`` (or ``forward(*args)`` with ``setup_context(ctx, inputs, output)``),
    and ``backward(ctx, *grads)``, called through ``MyFn.apply(...)``. Forward runs under
    ``no_grad`` on the Tensors themselves; one node is recorded whose backward calls the user's
    (see ``FunctionCtx`` for ``ctx``, and ``once_differentiable``). None of this adds work to
    ``__call__``, or to the engine's loop for the other functions.
    """

    once_differentiable = False
    released = False  # set by release(): the graph below this function was freed
    # whether backward reads the inputs' values (then changing one in place between forward
    # and backward is refused); functions whose gradient ignores them set it False
    saves_inputs = True
    # None: backward reads every input's values; else a method giving the inputs it will read,
    # knowing needs_input_grad (a product reads x only for y's gradient): only those are checked
    # for in-place changes since the forward, as torch saves only those
    reads_inputs = None
    # Whether a plain backward (no create_graph, into leaves' .grad) may add an input's
    # gradient straight into that leaf's .grad array: the engine then sets accumulate_into,
    # for each input, to the array of a .grad that nothing else can see (a GPU array, as for
    # the in-place sums), or None; a backward that added into one returns ACCUMULATED for
    # that input. (A GEMM with beta = 1 saves the separate add's launch.)
    accumulates = False
    accumulate_into = None
    # Whether the engine hands backward zeros for the gradients of unused outputs (a function
    # with several outputs); a torch-style custom Function's node fills them in itself
    materializes_grads = True
    # The graph node class of a torch-style custom Function (see ``apply``); None for the
    # engine's own functions
    _node_class = None

    def __init_subclass__(cls, **kwargs):
        # A ``forward`` that is a staticmethod marks a torch-style Function: forward(ctx, *args)
        # (or forward(*args) with setup_context) and backward(ctx, *grads), used through
        # ``apply``. Its calls are recorded by a node class of its own, named as torch's.
        super().__init_subclass__(**kwargs)
        if isinstance(inspect.getattr_static(cls, "forward", None), staticmethod):
            cls._node_class = type(f"{cls.__name__}Backward", (_CustomFunctionNode,),
                                   {"function_class": cls, "__module__": cls.__module__,
                                    "__qualname__": f"{cls.__qualname__}Backward"})

    @classmethod
    def apply(cls, *args, **kwargs):
        """PyTorch's ``Function.apply``: run a torch-style Function on ``args``, recording
        one node whose backward is the class's ``backward(ctx, *grads)``. Tensor arguments
        (positional ones) are the inputs; other arguments are passed through and get no
        gradient. For one of the engine's own Functions, ``cls()(*args)``."""
        if cls._node_class is None:
            if kwargs:
                raise TypeError(f"{cls.__name__}.apply takes no keyword arguments")
            return cls()(*args)
        return _apply_custom(cls, args, kwargs)

    def __call__(self, *inputs):
        # Every op goes through here, so it is written for speed: plain loops, no generators
        # (on the GPU a small step is bound by this Python, not by the kernels).
        arrays = []
        record = False
        mixed = False  # arrays of more than one class: the device check below is needed
        cls = None
        for x in inputs:
            if x.__class__ is not Tensor and not isinstance(x, Tensor):
                break  # a Python number or array among the inputs: the general path below
            a = x.data
            if a.__class__ is not cls:
                mixed = cls is not None
                cls = a.__class__
            arrays.append(a)
            if x.requires_grad:
                record = True
        else:
            tensors = inputs
        if len(arrays) != len(inputs):
            tensors, arrays, record = self._as_tensors(inputs)
            mixed = True
        if mixed and backend.CUPY_IMPORTED:  # (arrays of one class live on one device)
            backend.check_same_device(*arrays, what=type(self).__name__)
        outs = self.forward(*arrays)
        single = outs.__class__ is not tuple
        if single:
            outs = (outs,)
        record = record and _mode.enabled
        outputs = []
        for o in outs:
            if isinstance(o, np.generic):  # NumPy reductions to 0-d give scalars: wrap them
                o = np.asarray(o)
            if o.__class__ in _ARRAY_CLASSES and (not record or o.dtype.kind == "f"):
                t = _new_tensor(Tensor)  # what Tensor(o, record) makes, without its checks
                t.data, t.grad, t.requires_grad, t.creator, t.generation = o, None, record, None, 0
                outputs.append(t)
            else:
                outputs.append(Tensor(o, requires_grad=record))
        if record:
            self.inputs = tensors
            generation = 0
            for t in tensors:
                if t.generation > generation:
                    generation = t.generation
            self.stamp = _mutations[0]
            self.generation = generation
            self.sequence = next(_sequence)
            # weak references: an output keeps its creator alive, not the other way round
            self.outputs = list(map(weakref.ref, outputs))
            for o in outputs:
                o.creator = self
                o.generation = generation + 1
        return outputs[0] if single else tuple(outputs)

    @staticmethod
    def _as_tensors(inputs):
        """Inputs as tensors (numbers and arrays become constants like the first tensor), their
        arrays, and whether any requires grad."""
        like = None
        for x in inputs:
            if isinstance(x, Tensor):
                like = x
                break
        tensors, arrays, record = [], [], False
        for x in inputs:
            if not isinstance(x, Tensor):
                x = as_tensor(x, like)
            tensors.append(x)
            arrays.append(x.data)
            if x.requires_grad:
                record = True
        return tensors, arrays, record

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, *gys):
        raise NotImplementedError

    def output(self, i: int = 0) -> Tensor:
        """Output ``i`` as a Tensor of the graph (for backward formulas that use the result)."""
        out = self.outputs[i]()
        if out is None:
            raise RuntimeError(f"{type(self).__name__}: output {i} was freed before backward")
        if self.stamp != _mutations[0] and _changed_since(out, self.stamp):
            raise RuntimeError(
                f"a result of shape {out.shape} that {type(self).__name__}'s backward needs was "
                "changed in place after the forward; run the forward again after the change, "
                "or backward first")
        return out

    def release(self) -> None:
        """Free what backward needed; called after use unless the graph is retained."""
        self.inputs = None
        self.saved = None
        self.released = True

    def __lt__(self, other):  # heap tie-breaker: the later-created function first
        return self.sequence > other.sequence


def _needed_functions(outputs, inputs) -> set:
    """Functions on a path from ``outputs`` back to any of ``inputs`` (for pruning in grad())."""
    targets = {id(t) for t in inputs}
    # Generations grow along the graph, so a function below the lowest target generation has
    # no target upstream: it is pruned unseen (and its graph may well be freed: grad() with
    # respect to x_hat = a + fake never needs the graph that made fake).
    lowest = min(t.generation for t in inputs)
    memo: dict[int, bool] = {}
    needed = set()
    stack = [(o.creator, False) for o in outputs if o.creator is not None]
    while stack:
        f, expanded = stack.pop()
        if id(f) in memo:
            continue
        if f.generation < lowest:
            memo[id(f)] = False
            continue
        if f.released:
            raise RuntimeError(
                f"grad() through {type(f).__name__} after its graph was freed by an earlier "
                "backward; pass retain_graph=True to that backward (or to the grad() call)")
        if not expanded:
            stack.append((f, True))
            for x in f.inputs or ():
                if x.creator is not None and id(x.creator) not in memo:
                    stack.append((x.creator, False))
            continue
        hit = False
        for x in f.inputs or ():
            if id(x) in targets or (x.creator is not None and memo.get(id(x.creator), False)):
                hit = True
        memo[id(f)] = hit
        if hit:
            needed.add(id(f))
    return needed


# In-place changes of tensors' data (optimizer steps, nn.init, load_state_dict) are counted
# here. A recording function notes the count (one store per op, no loop over its inputs); its
# backward then checks its inputs only if something was changed since, which in a training
# loop (forward, backward, step) never happens before the backward.
_mutations = [0]


# The same count per memory block: the array that owns the memory a tensor's array views (its
# ``.base`` chain's end), keyed by id. A change through one view (``w[0].mul_(2)``, an
# optimizer step on a parameter whose transpose a function saved) is then seen by functions
# that saved another view of the same memory, as PyTorch's version counter, shared by a
# tensor's views, sees it. An entry is removed when its array is freed (a weak reference's
# callback), so an id in the table is always the array it was recorded for.
_block_stamps: dict = {}  # id(owner array) -> count
_block_refs: dict = {}  # id(owner array) -> the weak reference that removes both entries


def _owner(a):
    """The array owning ``a``'s memory: the end of its chain of ``.base`` arrays."""
    base = a.base
    while base is not None and hasattr(base, "base"):
        a, base = base, base.base
    return a


def _forget_block(key):
    def forget(_ref):
        _block_stamps.pop(key, None)
        _block_refs.pop(key, None)
    return forget


def mark_modified(*tensors) -> None:
    """Say that these tensors' arrays were just changed in place. A backward through a function
    recorded before the change, that needs those values (or other views of the same memory),
    then raises instead of returning a gradient of neither the old nor the new values
    (PyTorch's version counter does the same)."""
    _mutations[0] += 1
    n = _mutations[0]
    stamps = _block_stamps
    for t in tensors:
        t._modified_at = n
        d = t.data
        owner = d if d.base is None else _owner(d)
        key = id(owner)
        if key in stamps:  # (a parameter: every step after its first)
            stamps[key] = n
            continue
        try:
            _block_refs[key] = weakref.ref(owner, _forget_block(key))
        except TypeError:  # an array type without weak references: its tensor's count only
            continue
        stamps[key] = n


def _changed_since(t, stamp: int) -> bool:
    """Whether ``t``'s values, or the memory its array views, changed after count ``stamp``."""
    if t._modified_at > stamp:
        return True
    d = t.data
    return _block_stamps.get(id(d if d.base is None else _owner(d)), 0) > stamp


def _store_grad(x: Tensor, g: Tensor, create_graph: bool, stored: set) -> None:
    """Add ``g`` into leaf ``x``'s ``.grad``. Without a graph to keep, a new ``.grad`` is an
    array of its own: writable and not shared with another leaf or with the caller's gradient
    (backward passes views and the same array to several inputs), so that in-place changes
    to it (``zero_grad(set_to_none=False)``, clipping) touch nothing else. As in PyTorch, the
    gradient has the leaf's dtype (a float64 loss term does not make a float32 weight's
    gradient float64, which the optimizers' GPU kernels would refuse)."""
    if g.data.dtype != x.data.dtype:
        g = g.to(dtype=x.dtype)
    if x.grad is not None:
        # (_OWNED[0] is None where counts prove nothing: no count tuple equals it)
        if not create_graph and _ref_counts(x.grad) == _OWNED[0] and _add_in_place(x.grad, g):
            return  # summed into the array x.grad alone holds
        old = x.grad.data
        x.grad = _accumulate(x.grad, g, create_graph)
        # the replaced array (and the base it viewed) is no leaf's gradient any more, and once
        # freed its id may be reused by a new gradient, which would then be copied for nothing
        stored.discard(id(old))
        if old.base is not None:
            stored.discard(id(old.base))
        return
    if not create_graph:
        a = g.data
        base = a.base
        # Copied: an array (or a view of one) already given to another leaf or passed in by the
        # caller, a broadcast (zero strides), a non-contiguous view, a read-only NumPy array.
        # A contiguous view of a fresh result (a reshaped GEMM output) is kept as it is.
        if id(a) in stored or (base is not None and id(base) in stored) \
                or not a.flags.c_contiguous or 0 in a.strides \
                or (type(a) is np.ndarray and not a.flags.writeable):
            a = backend.get_array_module(a).array(a, copy=True, order="C")
            g = Tensor(a)
            base = None
        stored.add(id(a))
        if base is not None:
            stored.add(id(base))
    x.grad = g


def _ref_counts(t: Tensor) -> tuple:
    """(references to ``t``, references to its array), as counted inside this call."""
    return sys.getrefcount(t), sys.getrefcount(t.data)


def _owned_counts():
    """What ``_ref_counts(holder.grad)`` and ``_ref_counts(table[key])`` give when the holder
    alone holds the gradient and the gradient alone holds its array; None where reference
    counts cannot prove that (only CPython with the GIL before 3.14 is trusted: 3.14 borrows
    stack references, so its counts can be lower). Measured here, once, with the very calls
    the backward makes, and checked to go up for a second holder of either."""
    if (sys.implementation.name != "cpython" or sys.version_info >= (3, 14)
            or not getattr(sys, "_is_gil_enabled", lambda: True)()):
        return None

    class Holder:
        grad = None
    leaf, table = Holder(), {}
    leaf.grad, table[0] = Tensor(np.zeros(2)), Tensor(np.zeros(2))
    owned = _ref_counts(leaf.grad)
    if _ref_counts(table[0]) != owned:
        return None
    other = table[0]  # a second holder of the tensor
    more_t = _ref_counts(table[0])
    del other
    view = table[0].data[:1]  # a second holder of the array
    more_a = _ref_counts(table[0])
    del view
    if more_t[0] <= owned[0] or more_a[1] <= owned[1] or _ref_counts(table[0]) != owned:
        return None
    return owned


_OWNED = [_owned_counts()]  # a list, so that tests can switch the in-place sums off


def _add_in_place(a: Tensor, b: Tensor) -> bool:
    """``a.data += b.data`` for a gradient ``a`` that its caller found owned (``_OWNED``): no
    caller, other tensor or view can see its array. It must also own its memory (not be a
    view of another array), be writable, and have b's dtype and shape; then the in-place
    sum is bit for bit the new array ``a + b`` would be, without allocating one (on the CPU
    a fresh multi-megabyte sum costs its page faults). Returns whether it was done."""
    arr, other = a.data, b.data
    if (arr.base is not None or arr.dtype != other.dtype or arr.shape != other.shape
            or not getattr(arr.flags, "writeable", True)):
        return False
    arr += other
    return True


def _accumulation_targets(f):
    """``Function.accumulate_into`` for ``f``'s plain backward: per input, the array of its
    ``.grad`` when the input is a leaf (appearing once among f's inputs) whose gradient is
    wanted and whose ``.grad`` is owned as for ``_add_in_place`` (no other holder of the
    tensor or its array, its own memory, the leaf's dtype), C-contiguous and on the GPU;
    else None. None when no input qualifies."""
    owned = _OWNED[0]
    if owned is None or not backend.CUPY_IMPORTED:  # (the CPU sums in place instead)
        return None
    out = None
    inputs = f.inputs
    for i, x in enumerate(inputs):
        if (not f.needs_input_grad[i] or x.creator is not None or x.grad is None
                or _ref_counts(x.grad) != owned):
            continue
        arr = x.grad.data
        if (arr.base is not None or arr.dtype != x.data.dtype or not backend.is_cupy_array(arr)
                or not arr.flags.c_contiguous or list(map(id, inputs)).count(id(x)) != 1):
            continue
        if out is None:
            out = [None] * len(inputs)
        out[i] = arr
    return None if out is None else tuple(out)


def _accumulate(a: Tensor, b: Tensor, create_graph: bool) -> Tensor:
    """a + b for two gradients of one tensor: an op of the graph under ``create_graph``, else
    the plain array sum (no op to dispatch; a new array, since either may be a view)."""
    if create_graph:
        return a + b
    total = a.data + b.data
    if isinstance(total, np.generic):  # NumPy gives a scalar for two 0-d arrays
        total = np.asarray(total)
    return Tensor(total)


_REQUIRES_GRAD = operator.attrgetter("requires_grad")


def _run_backward(outputs, grad_outputs, inputs, create_graph, retain_graph,
                  hooked_targets: bool = False):
    """Propagate gradients from ``outputs``. With ``inputs`` None, accumulate into leaves' .grad;
    otherwise return the gradients of ``inputs`` (and leave every .grad alone): for a non-leaf
    input, its gradient before its hooks (``grad()``'s), or with ``hooked_targets`` after them
    (what ``backward(inputs=...)`` stores)."""
    if retain_graph is None:
        retain_graph = create_graph
    grads: dict[int, Tensor] = {}
    keep: dict[int, Tensor] = {}  # keeps tensors alive so that their ids stay unique
    for o, g in zip(outputs, grad_outputs):
        if id(o) in grads:
            grads[id(o)] = grads[id(o)] + g
        else:
            grads[id(o)] = g
        keep[id(o)] = o
    target_ids = None if inputs is None else {id(t) for t in inputs}
    needed = None if inputs is None else _needed_functions(outputs, inputs)
    stored = {id(g.data) for g in grad_outputs}  # arrays a leaf's .grad must not alias

    heap: list = []
    queued = set()
    hooked: set = set()  # ids of tensors whose hooks have run
    hooked_leaves: list = []  # leaves with hooks whose gradients wait in grads
    zeros: dict = {}  # id -> tensor reached only by ZERO_GRAD so far (see _ZeroGrad)

    def mark_zero(x):
        """x reached by ZERO_GRAD: None once marked, or zeros to pass on as a gradient."""
        if x._hooks is not None or x._retains_grad:
            return _zeros_for(x)
        if id(x) not in zeros:
            zeros[id(x)] = x
            push(x.creator)
        return None

    def push(f):
        if f is not None and id(f) not in queued and (needed is None or id(f) in needed):
            queued.add(id(f))
            heapq.heappush(heap, (-f.generation, f))

    for o in outputs:
        push(o.creator)

    with _SetGradMode(create_graph):
        while heap:
            _, f = heapq.heappop(heap)
            refs = f.outputs
            if len(refs) == 1:  # (most functions: the general loop's work, in fewer steps)
                o = refs[0]()
                if o is None:
                    continue
                if target_ids is not None and id(o) in target_ids:
                    g = grads.get(id(o))  # a requested gradient: keep it for the caller
                else:
                    g = grads.pop(id(o), None)
                if g is None:
                    if not zeros or id(o) not in zeros:
                        continue
                    gys = None  # reached only by ZERO_GRAD
                else:
                    if o._hooks is not None:
                        g = _hooked(o, g, grads, target_ids, hooked, hooked_targets)
                    gys = [g]
            else:
                gys = []
                some = zero = False
                for ref in refs:
                    o = ref()
                    if o is None:
                        g = None
                    elif target_ids is not None and id(o) in target_ids:
                        g = grads.get(id(o))
                    else:
                        g = grads.pop(id(o), None)
                    if g is not None and o._hooks is not None:
                        g = _hooked(o, g, grads, target_ids, hooked, hooked_targets)
                    gys.append(g)
                    if g is not None:
                        some = True
                    elif o is not None and id(o) in zeros:
                        zero = True
                if not some:
                    if not zero:
                        continue
                    gys = None
            if gys is None and f.released:
                continue  # (a zero gradient into a freed graph: nothing to compute or mark)
            if f.released:
                raise RuntimeError(
                    f"backward through {type(f).__name__} a second time: its graph was freed "
                    "after the first backward; pass retain_graph=True the first time")
            if create_graph and f.once_differentiable and gys is not None:
                raise RuntimeError(
                    f"{type(f).__name__} is once-differentiable: its backward cannot be "
                    "differentiated again, so create_graph=True cannot go through it")
            if gys is not None and len(gys) > 1:  # (a single output's gradient is never None)
                for i, g in enumerate(gys):  # multi-output functions get zeros for unused outputs
                    if g is None:
                        if not f.materializes_grads:
                            continue
                        o = f.outputs[i]()
                        if o is None:
                            raise RuntimeError(f"{type(f).__name__}: an output was freed")
                        xp = backend.get_array_module(f.inputs[0].data)
                        gys[i] = Tensor(xp.zeros(o.shape, o.dtype))
            if target_ids is None:
                f.needs_input_grad = tuple(map(_REQUIRES_GRAD, f.inputs))
            else:
                want = []
                for x in f.inputs:
                    if not x.requires_grad:
                        want.append(False)
                    else:
                        want.append(id(x) in target_ids
                                    or (x.creator is not None and id(x.creator) in needed))
                f.needs_input_grad = tuple(want)
            if gys is None:  # zero in, zero out: no backward call, the marks passed on
                gxs = (ZERO_GRAD,) * len(f.inputs)
            else:
                if f.saves_inputs and f.stamp != _mutations[0]:
                    read = f.inputs if f.reads_inputs is None else f.reads_inputs()
                    for x in read:  # (a saved output is checked by f.output())
                        if _changed_since(x, f.stamp):
                            raise RuntimeError(
                                f"a tensor of shape {x.shape} that {type(f).__name__}'s "
                                "backward needs was changed in place after the forward (say "
                                "by an optimizer step); run the forward again after the "
                                "change, or backward first")
                if f.accumulates and target_ids is None and not create_graph:
                    f.accumulate_into = _accumulation_targets(f)
                    try:
                        gxs = f.backward(*gys)
                    finally:
                        f.accumulate_into = None
                else:
                    gxs = f.backward(*gys)
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            if len(gxs) != len(f.inputs):
                raise RuntimeError(f"{type(f).__name__}.backward returned {len(gxs)} gradients "
                                   f"for {len(f.inputs)} inputs")
            for x, gx, want in zip(f.inputs, gxs, f.needs_input_grad):
                if gx is None or not want or gx is ACCUMULATED:
                    continue
                if gx is ZERO_GRAD:
                    gx = mark_zero(x)
                    if gx is None:
                        continue
                if gx.data.shape != x.data.shape:
                    raise RuntimeError(f"{type(f).__name__}.backward returned a gradient of shape "
                                       f"{gx.shape} for an input of shape {x.shape}")
                c = x.creator
                if c is None and target_ids is None:  # a leaf: accumulate into .grad
                    if x._hooks is None:
                        _store_grad(x, gx, create_graph, stored)
                        continue
                    if id(x) not in grads:  # (its hooks see the whole sum: stored at the end)
                        hooked_leaves.append(x)
                k = id(x)
                if k not in grads:
                    grads[k] = gx
                elif (create_graph or _ref_counts(grads[k]) != _OWNED[0]
                      or not _add_in_place(grads[k], gx)):
                    grads[k] = _accumulate(grads[k], gx, create_graph)
                keep[k] = x
                if c is not None and id(c) not in queued and (needed is None or id(c) in needed):
                    queued.add(id(c))  # push(c), inlined: this loop runs once per edge
                    heapq.heappush(heap, (-c.generation, c))
            # no stale references to the gradients just stored: a later function's backward may
            # find a leaf's .grad owned (an in-place sum, an accumulating GEMM) only if nothing
            # here still holds it
            gxs = gx = None
            if not retain_graph:
                f.release()
        for x in hooked_leaves:  # leaves with hooks: their summed gradients, hooked, stored
            g = _hooked(x, grads.pop(id(x)), grads, target_ids, hooked)
            stored.add(id(g.data))  # (a hook saw it, or made it: .grad gets an array of its own)
            _store_grad(x, g, create_graph, stored)
        if inputs is not None:  # requested gradients whose hooks have not run yet
            for t in inputs:
                if t._hooks is not None and id(t) not in hooked and grads.get(id(t)) is not None:
                    _hooked(t, grads[id(t)], grads, target_ids, hooked, hooked_targets)
    if inputs is None:
        for x in zeros.values():  # leaves the marks reached and no gradient did: zeros
            if x.creator is None and x.grad is None:
                x.grad = _zeros_for(x)
        return None
    return [_zeros_for(t) if id(t) in zeros and grads.get(id(t)) is None else grads.get(id(t))
            for t in inputs]


def _zeros_for(t: Tensor) -> Tensor:
    return Tensor(backend.get_array_module(t.data).zeros_like(t.data))


def _hooked(t: Tensor, g: Tensor, grads: dict, target_ids, hooked: set,
            hooked_targets: bool = False) -> Tensor:
    """``t``'s complete gradient ``g`` after t's hooks (a hook's Tensor replaces it, and must
    keep its shape and dtype). A requested leaf's gradient is updated for the caller (a
    requested non-leaf's is returned as it was before the hooks, as torch's grad() does, but
    for ``backward(inputs=...)``), and a retained one is summed into t.grad, after the hooks
    (by grad() too, as torch)."""
    hooked.add(id(t))
    for hook in list(t._hooks.values()):
        out = hook(g)
        if out is None:
            continue
        if not isinstance(out, Tensor) or out.shape != g.shape or out.dtype != g.dtype:
            raise RuntimeError(f"a gradient hook of a tensor of shape {t.shape} returned "
                               f"{type(out).__name__}"
                               + (f" of shape {out.shape} and dtype {out.dtype}"
                                  if isinstance(out, Tensor) else "")
                               + f"; it must return None or a Tensor of the gradient's shape "
                               f"{g.shape} and dtype {g.dtype}")
        backend.check_same_device(g.data, out.data, what="gradient hook")
        g = out
    if target_ids is not None and id(t) in target_ids:
        # (torch's grad() gives a non-leaf's gradient from before its hooks; backward(inputs=)
        # stores it after them)
        if t.creator is None or hooked_targets:
            grads[id(t)] = g
    if t._retains_grad and not (hooked_targets and target_ids is not None
                                and id(t) in target_ids):  # (that one is stored by backward)
        if t.grad is None:
            t.grad = Tensor(g.data.copy()) if not g.requires_grad else g
        else:
            t.grad = t.grad + g
    return g


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, only_inputs: bool = True,
         allow_unused: bool = False) -> tuple:
    """Gradients of ``outputs`` with respect to ``inputs``, as a tuple of Tensors.

    Like ``torch.autograd.grad``: ``.grad`` attributes are left untouched. With
    ``create_graph=True`` the returned gradients are part of a graph and can be differentiated
    again (this is what a gradient penalty needs). ``only_inputs`` is accepted for old PyTorch
    code and, as there, has no effect.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single_input = isinstance(inputs, Tensor)
    inputs = [inputs] if single_input else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad(): {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    gos = []
    for o, g in zip(outputs, grad_outputs):
        if not o.requires_grad:
            raise RuntimeError("grad(): an output does not require grad and has no graph")
        if g is None:
            if o.size != 1:
                raise RuntimeError(f"grad(): output of shape {o.shape} is not a scalar; "
                                   "pass grad_outputs")
            g = Tensor(backend.get_array_module(o.data).ones_like(o.data))
        gos.append(_as_grad(g, o))
    for t in inputs:
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError("grad(): every input must be a Tensor that requires grad")
    result = _run_backward(outputs, gos, inputs, create_graph, retain_graph)
    for i, (t, g) in enumerate(zip(inputs, result)):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad(): an input of shape {t.shape} was not used to compute "
                               "the outputs; pass allow_unused=True to get None for it")
        if create_graph and g is not None and not g.requires_grad:
            # a gradient that no recorded op connects to the inputs (that of x.abs().sum(),
            # sign(x), is piecewise constant): its derivative is 0, as torch gives it where its
            # formula reads x (abs, relu), and differentiating it again gives zeros instead of
            # finding no graph (torch's has none where the formula does not read x: x.sum())
            with _SetGradMode(True):
                result[i] = _ZeroDerivative()(g, t)
    return tuple(result)


class _ZeroDerivative(Function):
    """``g`` as a function of ``x`` whose derivative is 0: the identity in g, ZERO_GRAD for x
    (see ``grad`` and ``with_zero_derivative``)."""

    saves_inputs = False

    def forward(self, g, x):
        return g

    def backward(self, gy):
        return gy, ZERO_GRAD


def with_zero_derivative(g: Tensor, x: Tensor) -> Tensor:
    """``g`` recorded as depending on ``x`` with a zero derivative, where a graph is being
    recorded and x requires grad (else g itself): for a backward formula that reads x only
    through a piecewise-constant map (a mask, a sign), so that what lies upstream of x gets a
    zero gradient from it, as in PyTorch, rather than none."""
    if not (_mode.enabled and x.requires_grad):
        return g
    return _ZeroDerivative()(g, x)


class FunctionCtx:
    """The ``ctx`` of a torch-style custom Function (see ``Function.apply``): what its forward
    (or setup_context) leaves for its backward. Any attribute may be set on it besides."""

    def __init__(self):
        self._to_save = ()  # what save_for_backward was given
        self._saved = None  # the same, resolved to graph tensors once the call is recorded
        self._non_differentiable = ()
        self._materialize_grads = True
        self._node_ref = None  # a weak reference to the recorded node (which holds the ctx)
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors (or None) for backward; read them back with ``saved_tensors``. Inputs
        and outputs come back as the graph's tensors, so a backward written with minigan ops
        is differentiable again; all are checked for in-place changes since the forward."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save tensors, but argument {i} is "
                                f"of type {type(t).__name__}")
        self._to_save = tensors

    @property
    def saved_tensors(self) -> tuple:
        node = self._graph_node()
        if node is None:  # not recorded (or asked in forward): the tensors as given
            return tuple(self._to_save)
        if node.released:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved "
                "tensors after they have already been freed); pass retain_graph=True to the "
                "first backward")
        out = []
        for kind, v, data in self._saved:
            t = v if kind is _SAVED_CONST else (node.inputs[v] if kind is _SAVED_INPUT
                                                else node._saved_output(v, data))
            if t is not None and node.stamp != _mutations[0] and _changed_since(t, node.stamp):
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: a tensor of shape {t.shape} that "
                    f"{type(node).__name__} saved with save_for_backward was changed in place "
                    "after the forward; run the forward again after the change, or backward "
                    "first")
            out.append(t)
        return tuple(out)

    def _graph_node(self):
        return None if self._node_ref is None else self._node_ref()

    def mark_non_differentiable(self, *tensors) -> None:
        """Say which outputs have no gradient (indices, masks): they do not require grad, and
        backward gets zeros for them (None without materialized grads)."""
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"mark_non_differentiable: argument {i} is of type "
                                f"{type(t).__name__}, not a Tensor")
        self._non_differentiable = self._non_differentiable + tensors

    def set_materialize_grads(self, value: bool) -> None:
        """With False, backward gets None (not zeros) for outputs that received no gradient."""
        self._materialize_grads = bool(value)

    def mark_dirty(self, *tensors) -> None:
        raise RuntimeError(
            "mark_dirty: minigan's custom Functions cannot change their inputs in place (the "
            "engine has no per-tensor version to rebase the input's history on); return a new "
            "tensor from forward instead")


_SAVED_INPUT, _SAVED_OUTPUT, _SAVED_CONST = "input", "output", "const"


def _apply_custom(cls, args, kwargs):
    """``cls.apply(*args, **kwargs)`` for a torch-style Function ``cls``."""
    setup_context = getattr(cls, "setup_context", None)
    if setup_context is not None:  # forward(*args) and setup_context(ctx, inputs, output)
        bound = inspect.signature(cls.forward).bind(*args, **kwargs)
        bound.apply_defaults()
        args, kwargs = bound.args, {}
    ctx = FunctionCtx()
    inputs = [a for a in args if isinstance(a, Tensor)]
    record = _mode.enabled and any(t.requires_grad for t in inputs)
    ctx.needs_input_grad = tuple(record and isinstance(a, Tensor) and a.requires_grad
                                 for a in args)
    with _SetGradMode(False):
        if setup_context is not None:
            outputs = cls.forward(*args)
            setup_context(ctx, args, outputs)
        else:
            outputs = cls.forward(ctx, *args, **kwargs)
    if not record:
        return outputs
    single = not isinstance(outputs, tuple)
    outs = (outputs,) if single else outputs
    input_index: dict[int, int] = {}
    for j, t in enumerate(inputs):
        input_index.setdefault(id(t), j)
    non_diff = {id(t) for t in ctx._non_differentiable}
    node = cls._node_class()
    result, graph_outputs, differentiable, output_index = [], [], [], {}
    for o in outs:
        if not isinstance(o, Tensor):  # (torch passes non-tensor outputs through too)
            result.append(o)
            continue
        if (id(o) in input_index or id(o) in output_index or o.creator is not None
                or o.requires_grad):
            t = Tensor(o.data)  # an input (or other graph tensor) returned: a new tensor
        else:
            t = o  # a tensor the forward made: it becomes the graph's output, as in torch
        output_index.setdefault(id(o), len(graph_outputs))
        graph_outputs.append(t)
        differentiable.append(id(o) not in non_diff and t.data.dtype.kind == "f")
        result.append(t)
    if not any(differentiable):
        return outputs
    generation = max(t.generation for t in inputs)
    node.ctx = ctx
    node.inputs = tuple(inputs)
    # per argument, its index among the inputs (the n-th tensor argument is input n), or None
    node.arg_tensor_index = tuple(_tensor_positions(args))
    node.output_meta = [(t.data.shape, t.data.dtype, backend.get_array_module(t.data))
                        for t in graph_outputs]
    node.stamp = _mutations[0]
    node.generation = generation
    node.sequence = next(_sequence)
    node.outputs = list(map(weakref.ref, graph_outputs))
    for t, diff in zip(graph_outputs, differentiable):
        if diff:
            t.requires_grad, t.creator, t.generation = True, node, generation + 1
    saved = []
    for t in ctx._to_save:
        if t is None:
            saved.append((_SAVED_CONST, None, None))
        elif id(t) in input_index:
            saved.append((_SAVED_INPUT, input_index[id(t)], None))
        elif id(t) in output_index:  # by index (the node holds its outputs weakly, no cycle)
            saved.append((_SAVED_OUTPUT, output_index[id(t)], t.data))
        else:  # a tensor made in forward: a constant of the backward
            saved.append((_SAVED_CONST, t, None))
    ctx._saved, ctx._to_save, ctx._node_ref = saved, (), weakref.ref(node)
    return result[0] if single else tuple(result)


def _tensor_positions(args):
    n = 0
    for a in args:
        if isinstance(a, Tensor):
            yield n
            n += 1
        else:
            yield None


class _CustomFunctionNode(Function):
    """The graph node of one ``apply`` of a torch-style Function: its backward calls the
    class's ``backward(ctx, *grads)`` (in the grad mode the engine sets, so a backward written
    with minigan ops supports create_graph) and checks what it returns, as torch does."""

    saves_inputs = False  # the ctx checks what was saved, when saved_tensors reads it
    materializes_grads = False  # done here, as the ctx says
    function_class = None  # the torch-style class (set on each per-class subclass)

    def _saved_output(self, i: int, data) -> Tensor:
        """Output ``i`` as a tensor of the graph; remade (as torch unpacks a saved output) if
        the caller has dropped it, so that its dependence on the inputs is kept."""
        out = self.outputs[i]()
        if out is None:
            out = Tensor(data)
            if self.output_meta[i][1].kind == "f":
                out.requires_grad, out.creator = True, self
                out.generation = self.generation + 1
            self.outputs[i] = weakref.ref(out)
        return out

    def backward(self, *gys):
        ctx, name = self.ctx, type(self).__name__
        if ctx._materialize_grads:
            gys = tuple(Tensor(xp.zeros(shape, dtype)) if g is None else g
                        for g, (shape, dtype, xp) in zip(gys, self.output_meta))
        user_backward = inspect.getattr_static(self.function_class, "backward", None)
        if not isinstance(user_backward, staticmethod):
            raise NotImplementedError(
                f"{self.function_class.__name__}: you must implement the backward method (a "
                "staticmethod backward(ctx, *grad_outputs)) for your custom Function to use it "
                "with backward mode AD")
        gxs = self.function_class.backward(ctx, *gys)
        if not isinstance(gxs, tuple):
            gxs = (gxs,)
        positions = self.arg_tensor_index
        n = len(positions)
        if len(gxs) > n and all(g is None for g in gxs[n:]):
            gxs = gxs[:n]  # extra Nones are allowed, as in torch
        if len(gxs) != n:
            raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                               f"(expected {n}, got {len(gxs)})")
        result = [None] * len(self.inputs)
        for pos, (gx, j) in enumerate(zip(gxs, positions)):
            if gx is None:
                continue
            if j is None:
                raise RuntimeError(f"function {name} returned a gradient different than None "
                                   f"at position {pos + 1}, but the corresponding forward "
                                   "input was not a Variable")
            if not isinstance(gx, Tensor):
                raise TypeError(f"function {name} returned a {type(gx).__name__} as the "
                                f"gradient at position {pos + 1}; expected a Tensor or None")
            x = self.inputs[j]
            backend.check_same_device(x.data, gx.data, what=name)
            if gx.shape != x.shape:
                if np.broadcast_shapes(gx.shape, x.shape) != gx.shape:
                    raise RuntimeError(
                        f"Function {name} returned an invalid gradient at index {pos} - got "
                        f"{list(gx.shape)} but expected shape compatible with {list(x.shape)}")
                from .functional.basic import sum_to  # late import: ops sit above autograd
                gx = sum_to(gx, x.shape)
            if gx.dtype != x.dtype:
                gx = gx.to(dtype=x.dtype)
            result[j] = gx
        return tuple(result)

    def release(self) -> None:
        super().release()
        self.ctx._saved = None


def once_differentiable(fn):
    """Decorate a torch-style Function's ``backward`` whose formulas are not differentiable
    (say, array code): it runs without recording, and under create_graph the gradients it
    returns raise an error when they are differentiated again, instead of giving 0."""
    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with _SetGradMode(False):
            outputs = fn(ctx, *args)
        if not _mode.enabled:  # (a plain backward: nothing would be recorded anyway)
            return outputs
        node = ctx._graph_node() if isinstance(ctx, FunctionCtx) else None
        anchors = [t for t in (node.inputs if node is not None else ()) if t.requires_grad]
        anchors += [g for g in args if isinstance(g, Tensor) and g.requires_grad]
        if not anchors:
            return outputs
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        outs = tuple(_DelayedError()(g, *anchors) if isinstance(g, Tensor) else g for g in outs)
        return outs[0] if single else outs
    return wrapper


class _DelayedError(Function):
    """``g`` as a function of the inputs whose backward raises: the gradient a
    once-differentiable backward returned under create_graph."""

    saves_inputs = False

    def forward(self, g, *anchors):
        return g

    def backward(self, gy):
        raise RuntimeError("trying to differentiate twice a function that was marked with "
                           "@once_differentiable")


# ``minigan.autograd.function`` stands for torch's ``torch.autograd.function`` module
function = type(sys)("minigan.autograd.function",
                    "torch.autograd.function's names: Function, FunctionCtx, once_differentiable")
function.Function, function.FunctionCtx = Function, FunctionCtx
function.once_differentiable = once_differentiable


def __getattr__(name):
    # ``minigan.autograd.functional`` (torch.autograd.functional: jacobian, hessian, vjp, jvp,
    # hvp, vhp) is imported on first access: it is built on the ops, which sit above this
    # module. (``import minigan.autograd.functional`` cannot work: this is a module, not a
    # package; use ``from minigan.autograd import functional`` or attribute access.)
    if name == "functional":
        from . import autograd_functional
        globals()["functional"] = autograd_functional
        return autograd_functional
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
