"""Whole-function derivatives: jacobian, hessian, vjp, jvp, hvp and vhp.

This is the API of ``torch.autograd.functional``, reached here as
``minigan.autograd.functional`` (by attribute, or ``from minigan.autograd import functional``;
``minigan.autograd`` is a plain module, so ``import minigan.autograd.functional`` is not
possible).

Each function takes a callable and its argument(s): one Tensor, or a tuple of Tensors that is
spread over the callable's positional parameters. Results mirror that choice: a single Tensor
comes back where a single Tensor went in, a tuple where a tuple went in.

Everything is built on reverse mode (``minigan.grad``). Products with a Jacobian from the right
(jvp, hvp) use two backward passes: the vector-Jacobian product ``u -> u^T J`` is linear in
``u``, and differentiating it with respect to ``u`` along ``v`` yields ``J v``. The callable must
therefore be differentiable twice. ``strategy="forward-mode"`` and ``vectorize=True`` are
accepted for compatibility; they give the same numbers through the same row-by-row loop.
"""
from __future__ import annotations

from . import backend
from .autograd import Tensor, enable_grad, grad, is_grad_enabled, set_grad_enabled

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]

_STRATEGIES = ("reverse-mode", "forward-mode")


# ----------------------------------------------------------------------------- small helpers

def _normalise(value, role: str, caller: str):
    """Return ``(given_as_tuple, members)`` where members is a tuple of Tensors.

    ``role`` names the value in error messages ("inputs", "v", ...), ``caller`` the public
    function that received it.
    """
    given_as_tuple = isinstance(value, tuple)
    members = value if given_as_tuple else (value,)
    for pos, item in enumerate(members):
        if isinstance(item, Tensor):
            continue
        culprit = f"member {pos} is a {type(item).__name__}" if given_as_tuple \
            else f"got a {type(item).__name__}"
        raise TypeError(f"{caller}(): {role} should be a Tensor or a tuple of Tensors; "
                        f"{culprit}")
    return given_as_tuple, members


def _shape_like_caller(items, given_as_tuple: bool):
    """Undo ``_normalise``: a lone Tensor for callers that passed one."""
    return tuple(items) if given_as_tuple else items[0]


def _fresh_leaves(tensors, create_graph: bool):
    """Copies of the inputs that record a graph of their own.

    Under ``create_graph`` an input that already takes part in a graph is passed through an
    identity view, so that results stay differentiable with respect to the caller's tensor.
    """
    return tuple(t.view_as(t) if (create_graph and t.requires_grad)
                 else t.detach().requires_grad_(True) for t in tensors)


def _as_constants(tensors, create_graph: bool):
    """The vectors a product is taken with: graph kept only when a graph is being built."""
    return tuple(t.view_as(t) if (create_graph and t.requires_grad) else t.detach()
                 for t in tensors)


def _release(tensors, create_graph: bool):
    """Results as handed back: cut from the graph unless the caller asked to keep it."""
    if create_graph:
        return tuple(tensors)
    return tuple(t.detach() for t in tensors)


def _zeros(like: Tensor, requires_grad: bool = False) -> Tensor:
    xp = backend.get_array_module(like.data)
    return Tensor(xp.zeros_like(like.data), requires_grad=requires_grad)


def _unit(like: Tensor, flat_index: int) -> Tensor:
    """A tensor shaped like ``like``: one at ``flat_index``, zero elsewhere."""
    xp = backend.get_array_module(like.data)
    buf = xp.zeros(like.data.size, like.data.dtype)
    buf[flat_index] = 1
    return Tensor(buf.reshape(like.shape))


def _check_same_shapes(vectors, targets, targets_tuple: bool, caller: str):
    """``vectors`` must line up with ``targets`` one to one, shape for shape."""
    if len(vectors) != len(targets):
        if targets_tuple:
            raise RuntimeError(f"{caller}(): v has the wrong number of Tensors: expected "
                               f"{len(targets)} Tensors, received {len(vectors)}")
        raise RuntimeError(f"{caller}(): v must hold exactly one Tensor here, "
                           f"received {len(vectors)}")
    for pos, (vec, ref) in enumerate(zip(vectors, targets)):
        if tuple(vec.shape) != tuple(ref.shape):
            where = f" (entry {pos})" if targets_tuple else ""
            raise RuntimeError(f"{caller}(): v has the wrong shape{where}: expected "
                               f"{tuple(ref.shape)}, received {tuple(vec.shape)}")


def _demand_graph(outputs, strict: bool, caller: str):
    """Under ``strict``, every output has to depend differentiably on the inputs."""
    if not strict:
        return
    for pos, out in enumerate(outputs):
        if out is None or not out.requires_grad:
            raise RuntimeError(f"{caller}(): output {pos} of the function does not require "
                               "gradients, so it cannot depend on the inputs (strict mode)")


def _backprop(outputs, wrt, seeds, create_graph: bool):
    """``sum_k seeds[k] . d outputs[k] / d wrt`` as a list aligned with ``wrt``.

    ``seeds`` may be None (each output is then a one-element tensor, seeded with one).
    Outputs that are None or carry no graph contribute nothing; members of ``wrt`` that no
    remaining output reaches get None.
    """
    live = [k for k, out in enumerate(outputs) if out is not None and out.requires_grad]
    if not live:
        return [None] * len(wrt)
    chosen_seeds = [None if seeds is None else seeds[k] for k in live]
    found = grad([outputs[k] for k in live], list(wrt), chosen_seeds, retain_graph=True,
                 create_graph=create_graph, allow_unused=True)
    return list(found)


def _fill_gaps(found, shapes_from, strict: bool, complaint):
    """Swap each None in ``found`` for zeros shaped like the matching ``shapes_from`` entry.

    Under ``strict`` a gap is an error instead; ``complaint(pos)`` words it.
    """
    filled = []
    for pos, (g, ref) in enumerate(zip(found, shapes_from)):
        if g is None:
            if strict:
                raise RuntimeError(complaint(pos))
            g = _zeros(ref)
        filled.append(g)
    return tuple(filled)


# ----------------------------------------------------------------------------- products

def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """Evaluate ``func(inputs)`` and the vector-Jacobian product ``v^T J`` at ``inputs``.

    ``v`` matches the function's output(s) in number and shape; it may be left out when the
    function returns a single one-element Tensor. Returns ``(outputs, product)``, the product
    shaped like ``inputs``; inputs the output does not depend on get zeros (an error under
    ``strict``). With ``create_graph`` both results stay differentiable.
    """
    with enable_grad():
        in_tuple, xs = _normalise(inputs, "inputs", "vjp")
        xs = _fresh_leaves(xs, create_graph)
        out_tuple, ys = _normalise(func(*xs), "the function's result", "vjp")
        _demand_graph(ys, strict, "vjp")
        if v is None:
            if len(ys) != 1 or ys[0].numel() != 1:
                raise RuntimeError("vjp(): v can only be None when the function returns one "
                                   "Tensor holding one element")
            seeds = None
        else:
            seeds = _as_constants(_normalise(v, "v", "vjp")[1], create_graph)
            _check_same_shapes(seeds, ys, out_tuple, "vjp")

    with set_grad_enabled(create_graph or is_grad_enabled()):
        found = _backprop(ys, xs, seeds, create_graph)
        product = _fill_gaps(found, xs, strict, lambda pos: (
            f"vjp(): the function's output does not depend on input {pos}; strict mode "
            "forbids that"))
    return (_shape_like_caller(_release(ys, create_graph), out_tuple),
            _shape_like_caller(_release(product, create_graph), in_tuple))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """Evaluate ``func(inputs)`` and the Jacobian-vector product ``J v`` at ``inputs``.

    ``v`` matches ``inputs`` in number and shape; it may be left out when there is one input
    with one element. Returns ``(outputs, product)``, the product shaped like the outputs.
    Computed with two reverse passes (see the module docstring).
    """
    with enable_grad():
        in_tuple, xs = _normalise(inputs, "inputs", "jvp")
        xs = _fresh_leaves(xs, create_graph)
        if v is None:
            if len(xs) != 1 or xs[0].numel() != 1:
                raise RuntimeError("jvp(): v can only be None when the input is one Tensor "
                                   "holding one element")
            directions = (Tensor(backend.get_array_module(xs[0].data).ones_like(xs[0].data)),)
        else:
            directions = _as_constants(_normalise(v, "v", "jvp")[1], create_graph)
            _check_same_shapes(directions, xs, in_tuple, "jvp")
        out_tuple, ys = _normalise(func(*xs), "the function's result", "jvp")
        _demand_graph(ys, strict, "jvp")
        # u -> u^T J, kept as a graph in the placeholder cotangents u
        cotangents = tuple(_zeros(y, requires_grad=True) for y in ys)
        pulled = _backprop(ys, xs, cotangents, create_graph=True)
        if strict:
            for pos, p in enumerate(pulled):
                if p is None or not p.requires_grad:
                    raise RuntimeError(f"jvp(): the outputs do not depend on input {pos}; "
                                       "strict mode forbids that")

    with set_grad_enabled(create_graph or is_grad_enabled()):
        found = _backprop(pulled, cotangents, directions, create_graph)
        product = _fill_gaps(found, ys, strict, lambda pos: (
            f"jvp(): output {pos} of the function does not depend on the inputs; strict "
            "mode forbids that"))
    return (_shape_like_caller(_release(ys, create_graph), out_tuple),
            _shape_like_caller(_release(product, create_graph), out_tuple))


def _scalar_function_setup(func, inputs, v, create_graph, strict, caller):
    """Shared first half of hvp and vhp.

    Returns ``(given_as_tuple, leaves, scalar_output, directions, gradient)`` where the
    gradient keeps its graph so that it can be differentiated again.
    """
    in_tuple, xs = _normalise(inputs, "inputs", caller)
    xs = _fresh_leaves(xs, create_graph)
    if v is None:
        if len(xs) != 1 or xs[0].numel() != 1:
            raise RuntimeError(f"{caller}(): v can only be None when the input is one Tensor "
                               "holding one element")
        directions = (Tensor(backend.get_array_module(xs[0].data).ones_like(xs[0].data)),)
    else:
        directions = _as_constants(_normalise(v, "v", caller)[1], create_graph)
        _check_same_shapes(directions, xs, in_tuple, caller)
    out_tuple, ys = _normalise(func(*xs), "the function's result", caller)
    if out_tuple:
        raise RuntimeError(f"{caller}(): the function has to return one Tensor, not a tuple")
    if ys[0].numel() != 1:
        raise RuntimeError(f"{caller}(): the function's Tensor has to hold exactly one "
                           f"element; it has shape {tuple(ys[0].shape)}")
    _demand_graph(ys, strict, caller)
    gradient = _backprop(ys, xs, None, create_graph=True)
    if strict:
        for pos, g in enumerate(gradient):
            if g is None or not g.requires_grad:
                raise RuntimeError(f"{caller}(): the gradient does not depend on input {pos}; "
                                   "strict mode forbids that")
    return in_tuple, xs, ys[0], directions, gradient


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """Evaluate a scalar ``func(inputs)`` and the product ``v^T H`` with its Hessian.

    Returns ``(output, product)``; the product is shaped like ``inputs``.
    """
    with enable_grad():
        in_tuple, xs, out, directions, gradient = _scalar_function_setup(
            func, inputs, v, create_graph, strict, "vhp")

    with set_grad_enabled(create_graph or is_grad_enabled()):
        found = _backprop(gradient, xs, directions, create_graph)
        product = _fill_gaps(found, xs, strict, lambda pos: (
            f"vhp(): the Hessian has no entries for input {pos}; strict mode forbids that"))
    return (_release((out,), create_graph)[0],
            _shape_like_caller(_release(product, create_graph), in_tuple))


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """Evaluate a scalar ``func(inputs)`` and the product ``H v`` with its Hessian.

    Returns ``(output, product)``; the product is shaped like ``inputs``. For functions with
    a symmetric Hessian (twice continuously differentiable ones) this equals ``vhp``; it is
    computed with one more backward pass.
    """
    with enable_grad():
        in_tuple, xs, out, directions, gradient = _scalar_function_setup(
            func, inputs, v, create_graph, strict, "hvp")
        # w -> w^T H as a graph in the placeholders w, then differentiated along v
        placeholders = tuple(_zeros(x, requires_grad=True) for x in xs)
        curved = _backprop(gradient, xs, placeholders, create_graph=True)

    with set_grad_enabled(create_graph or is_grad_enabled()):
        found = _backprop(curved, placeholders, directions, create_graph)
        product = _fill_gaps(found, xs, strict, lambda pos: (
            f"hvp(): the Hessian has no entries for input {pos}; strict mode forbids that"))
    return (_release((out,), create_graph)[0],
            _shape_like_caller(_release(product, create_graph), in_tuple))


# ----------------------------------------------------------------------------- full matrices

def _assemble(rows, out: Tensor, inp: Tensor) -> Tensor:
    """Stack the per-element gradients into a block of shape ``out.shape + inp.shape``."""
    block_shape = tuple(out.shape) + tuple(inp.shape)
    if not rows:  # an output without elements
        xp = backend.get_array_module(inp.data)
        return Tensor(xp.zeros(block_shape, inp.data.dtype))
    from .functional import stack  # deferred: the op modules import autograd first
    return stack(rows, 0).reshape(block_shape)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``.

    For output ``i`` and input ``j`` the block has shape ``out_i.shape + in_j.shape``. The
    result is a nested tuple ``[i][j]``; a level collapses to a bare Tensor where the function
    returned a single Tensor (outputs) or a single Tensor was passed (inputs). Inputs an output
    does not depend on give zero blocks (an error under ``strict``).

    ``strategy`` may be "reverse-mode" or "forward-mode"; the latter needs ``vectorize=True``
    and no ``create_graph``, as in torch, and is evaluated here by the same reverse loop.
    """
    assert strategy in _STRATEGIES, (
        f"jacobian(): strategy must be one of {_STRATEGIES}, got {strategy!r}")
    if strategy == "forward-mode":
        if not vectorize:
            raise NotImplementedError("jacobian(): strategy='forward-mode' is only available "
                                      "with vectorize=True")
        if create_graph:
            raise NotImplementedError("jacobian(): strategy='forward-mode' cannot be combined "
                                      "with create_graph=True")

    with enable_grad():
        in_tuple, xs = _normalise(inputs, "inputs", "jacobian")
        xs = _fresh_leaves(xs, create_graph)
        out_tuple, ys = _normalise(func(*xs), "the function's result", "jacobian")
        _demand_graph(ys, strict, "jacobian")

        table = []
        for i, out in enumerate(ys):
            rows_per_input = [[] for _ in xs]
            for flat in range(out.numel()):
                found = _backprop((out,), xs, (_unit(out, flat),), create_graph)
                for j, g in enumerate(found):
                    if g is None:
                        if strict:
                            raise RuntimeError(f"jacobian(): output {i} of the function does "
                                               f"not depend on input {j}; strict mode "
                                               "forbids that")
                        g = _zeros(xs[j])
                    elif strict and create_graph and not g.requires_grad:
                        raise RuntimeError(f"jacobian(): the Jacobian is constant in input "
                                           f"{j}; strict mode with create_graph=True forbids "
                                           "that")
                    rows_per_input[j].append(g)
            blocks = _release((_assemble(rows, out, x) for rows, x in zip(rows_per_input, xs)),
                              create_graph)
            table.append(_shape_like_caller(blocks, in_tuple))
    return _shape_like_caller(table, out_tuple)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar-valued ``func`` at ``inputs``.

    Block ``[i][j]`` has shape ``in_i.shape + in_j.shape``; each level collapses to a bare
    Tensor where a single input Tensor was passed. Obtained as the Jacobian of the gradient;
    ``outer_jacobian_strategy`` is handed to that outer ``jacobian`` call.
    """
    assert outer_jacobian_strategy in _STRATEGIES, (
        f"hessian(): outer_jacobian_strategy must be one of {_STRATEGIES}, "
        f"got {outer_jacobian_strategy!r}")
    in_tuple, _ = _normalise(inputs, "inputs", "hessian")

    def as_scalar(*args):
        out_tuple, ys = _normalise(func(*args), "the function's result", "hessian")
        if out_tuple:
            raise RuntimeError("hessian(): the function has to return one Tensor, "
                               "not a tuple")
        if ys[0].numel() != 1:
            raise RuntimeError("hessian(): the function's Tensor has to hold exactly one "
                               f"element; it has shape {tuple(ys[0].shape)}")
        return ys[0].reshape(())

    def gradient_of(*args):
        point = args if in_tuple else args[0]
        return jacobian(as_scalar, point, create_graph=True, strict=strict)

    return jacobian(gradient_of, inputs, create_graph=create_graph, strict=strict,
                    vectorize=vectorize, strategy=outer_jacobian_strategy)
