"""Linear-algebra products with PyTorch's names and signatures: ``mm``, ``bmm``, ``mv``,
``dot``/``vdot``/``inner``/``outer`` (``ger``), the fused ``addmm``/``addmv``/``addr``/
``baddbmm``/``addbmm``, ``tensordot``, ``einsum``, ``kron``, ``cross`` and ``cdist``.

Plain products go to the GEMM of ``basic.matmul`` (BLAS on the CPU, cuBLAS on the GPU), whose
backward is again a product. ``einsum`` is one ``Einsum`` function: its forward contracts the
operands pairwise with (batched) GEMMs, and the gradient of each operand is an einsum of the
output gradient with the other operands, so gradients of every order are einsums too. What an
einsum cannot express directly is done first with differentiable ops: a diagonal (a repeated
subscript, ``'ii->i'``) is a ``GetItem`` whose gradient puts the values back on the diagonal,
a subscript summed within one operand is a ``sum``, and a dimension of size 1 that broadcasts
is dropped.

Operands of different dtypes are promoted by torch's rules (``promotion.result_type``), as
``minigan.matmul`` does; torch itself refuses mixed dtypes for most of these products. Integer
tensors work in the forward of every product but ``cdist``, and only floating tensors require
grad. One place is stricter than torch: with integer tensors, ``addmm``, ``addmv``,
``baddbmm`` and ``addbmm`` refuse a floating ``beta`` or ``alpha``, as torch's ``addr`` does,
where torch truncates the scalar to an integer without a word (``beta=0.5`` would drop
``input``). An integer ``einsum`` that sums a subscript within one operand (a summed-only
subscript, a trace, a whole-operand sum) gives int64, as torch's, whose ``sum`` it uses there.
"""
from __future__ import annotations

import functools
import math
import string

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor, is_grad_enabled
from ..kernels.gemm import matmul as _gemm
from .basic import (
    GetItem,
    MatMul,
    Where,
    _broadcast_check,
    _cast,
    _dim,
    _shape_str,
    add,
    bitwise_or,
    broadcast_to,
    matmul,
    mul,
    permute,
    reshape,
    sub,
    transpose,
)
from .basic import sum as _sum
from .pointwise import _VectorNorm
from .promotion import promote_types, result_type
from .shape import roll

__all__ = [
    "addbmm", "addmm", "addmv", "addr", "baddbmm", "bmm", "cdist", "cross", "dot", "einsum",
    "ger", "inner", "kron", "mm", "mv", "outer", "tensordot", "vdot",
]


# ----------------------------------------------------------------------------- operand checks

def _operands(fn: str, *inputs, allow_bool: bool = False, promote: bool = True) -> list:
    """The inputs as tensors on one device, promoted to their torch result type (with
    ``promote=False``, left in their own dtypes)."""
    like = next((x for x in inputs if isinstance(x, Tensor)), None)
    tensors = []
    for x in inputs:
        if x is None or isinstance(x, (str, bytes, complex)):
            raise TypeError(f"{fn}: expected tensors, got a {type(x).__name__} ({x!r})")
        tensors.append(as_tensor(x, like))
    backend.check_same_device(*[t.data for t in tensors], what=fn)
    dt = result_type(*tensors)
    if dt == np.bool_ and not allow_bool:
        raise TypeError(f"{fn}: not defined for bool tensors (torch refuses them too); cast "
                        "them to an integer or floating dtype first")
    return [_cast(t, dt) for t in tensors] if promote else tensors


def _need_dims(fn: str, name: str, x: Tensor, nd: int) -> None:
    if x.ndim != nd:
        raise ValueError(f"{fn}: {name} must be a {nd}-D tensor, got shape {_shape_str(x.shape)}")


def _mat(shape) -> str:
    return "x".join(str(s) for s in shape)


def _check_mm(fn: str, a: Tensor, b: Tensor, names=("mat1", "mat2")) -> None:
    _need_dims(fn, names[0], a, 2)
    _need_dims(fn, names[1], b, 2)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"{fn}: {names[0]} and {names[1]} shapes cannot be multiplied "
                         f"({_mat(a.shape)} and {_mat(b.shape)})")


def _check_bmm(fn: str, a: Tensor, b: Tensor) -> None:
    _need_dims(fn, "batch1", a, 3)
    _need_dims(fn, "batch2", b, 3)
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise ValueError(f"{fn}: batch1 of shape {_shape_str(a.shape)} and batch2 of shape "
                         f"{_shape_str(b.shape)} cannot be multiplied (expected batch2 of shape "
                         f"({a.shape[0]}, {a.shape[2]}, p))")


def _check_mv(fn: str, m: Tensor, v: Tensor) -> None:
    _need_dims(fn, "mat", m, 2)
    _need_dims(fn, "vec", v, 1)
    if m.shape[1] != v.shape[0]:
        raise ValueError(f"{fn}: size mismatch, mat of shape {_shape_str(m.shape)} and vec of "
                         f"shape {_shape_str(v.shape)}")


# ----------------------------------------------------------------------------- plain products

def mm(input, mat2) -> Tensor:
    """``input @ mat2`` for two matrices (n, m) and (m, p); no broadcasting."""
    a, b = _operands("mm", input, mat2)
    _check_mm("mm", a, b, ("input", "mat2"))
    return MatMul()(a, b)


def bmm(input, mat2) -> Tensor:
    """Batched ``input[i] @ mat2[i]`` for (b, n, m) and (b, m, p); no broadcasting."""
    a, b = _operands("bmm", input, mat2)
    _check_bmm("bmm", a, b)
    return MatMul()(a, b)


def mv(input, vec) -> Tensor:
    """The matrix-vector product of (n, m) and (m,): shape (n,)."""
    m, v = _operands("mv", input, vec)
    _check_mv("mv", m, v)
    return matmul(m, v)


def dot(input, tensor) -> Tensor:
    """The inner product of two 1-D tensors of one length (a 0-d tensor)."""
    return _dot("dot", input, tensor)


def vdot(input, other) -> Tensor:
    """``dot`` of the conjugate of ``input`` with ``other``: for real tensors, ``dot``."""
    return _dot("vdot", input, other)


def _dot(fn: str, input, other) -> Tensor:
    a, b = _operands(fn, input, other)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"{fn}: 1-D tensors expected, got shapes {_shape_str(a.shape)} and "
                         f"{_shape_str(b.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"{fn}: inconsistent tensor sizes, got shapes {_shape_str(a.shape)} "
                         f"and {_shape_str(b.shape)} ({a.shape[0]} and {b.shape[0]} elements)")
    return matmul(a, b)


def inner(input, other) -> Tensor:
    """The sum of products over the last dims: shape ``input.shape[:-1] + other.shape[:-1]``;
    a 0-d operand multiplies the other."""
    a, b = _operands("inner", input, other)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"inner: the last dimension must match on both inputs, got shapes "
                         f"{_shape_str(a.shape)} and {_shape_str(b.shape)}")
    return _tensordot(a, b, [a.ndim - 1], [b.ndim - 1])


def outer(input, vec2) -> Tensor:
    """The outer product of two 1-D tensors: ``out[i, j] = input[i] * vec2[j]``."""
    a, b = _operands("outer", input, vec2, allow_bool=True)
    _need_dims("outer", "input", a, 1)
    _need_dims("outer", "vec2", b, 1)
    return mul(reshape(a, (-1, 1)), reshape(b, (1, -1)))


ger = outer


# ----------------------------------------------------------------------------- fused products

def _scalar(fn: str, name: str, v, dtype) -> None:
    if isinstance(v, Tensor) or not isinstance(v, (int, float, np.integer, np.floating,
                                                   np.bool_)):
        raise TypeError(f"{fn}: {name} must be a real number, got {v!r}")
    if dtype.kind in "iub" and isinstance(v, (float, np.floating)):
        # stricter than torch, which refuses it only in addr and elsewhere truncates the
        # scalar silently (beta=0.5 would multiply input by 0)
        raise TypeError(f"{fn}: for integral input tensors, argument {name} must not be a "
                        f"floating point number (got {name}={v!r} for dtype {dtype}); torch "
                        f"would truncate it to an integer silently, so minigan refuses it: "
                        f"pass an int, or cast the tensors to a floating dtype")


def _add_scaled(fn: str, input: Tensor, prod: Tensor, beta, alpha) -> Tensor:
    """``beta * input + alpha * prod`` with input broadcast to prod's shape; beta = 0 ignores
    input's values (NaN and inf too), as torch does, while a gradient of zeros still reaches
    it."""
    shape = prod.shape
    s = input.shape
    if len(s) > len(shape) or any(a != b and a != 1 for a, b in zip(s[::-1], shape[::-1])):
        raise ValueError(f"{fn}: input of shape {_shape_str(s)} cannot be broadcast to the "
                         f"result's shape {_shape_str(shape)}")
    _scalar(fn, "beta", beta, prod.dtype)
    _scalar(fn, "alpha", alpha, prod.dtype)
    if prod.dtype == np.bool_:  # torch: beta and alpha as truth values, sum as logical or
        if not alpha:
            prod = Tensor(backend.get_array_module(prod.data).zeros(shape, dtype=np.bool_))
        return bitwise_or(broadcast_to(input, shape), prod) if beta else prod
    term = prod if alpha == 1 else mul(prod, alpha)
    if beta == 0:
        if input.requires_grad and is_grad_enabled():
            # where(False, input, term): term's values, and zeros as input's gradient
            xp = backend.get_array_module(prod.data)
            return Where(xp.zeros(shape, dtype=np.bool_))(input, term)
        return term
    return add(input if beta == 1 else mul(input, beta), term)


def addmm(input, mat1, mat2, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)``, input broadcast to (n, p)."""
    x, a, b = _operands("addmm", input, mat1, mat2)
    _check_mm("addmm", a, b)
    return _add_scaled("addmm", x, MatMul()(a, b), beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * (mat @ vec)``, input broadcast to (n,)."""
    x, m, v = _operands("addmv", input, mat, vec)
    _check_mv("addmv", m, v)
    return _add_scaled("addmv", x, matmul(m, v), beta, alpha)


def addr(input, vec1, vec2, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * outer(vec1, vec2)``, input broadcast to (n, m). Bool tensors
    take beta and alpha as truth values, as torch's."""
    x, a, b = _operands("addr", input, vec1, vec2, allow_bool=True)
    _need_dims("addr", "vec1", a, 1)
    _need_dims("addr", "vec2", b, 1)
    return _add_scaled("addr", x, mul(reshape(a, (-1, 1)), reshape(b, (1, -1))), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * bmm(batch1, batch2)``, input broadcast to (b, n, p)."""
    x, a, b = _operands("baddbmm", input, batch1, batch2)
    _check_bmm("baddbmm", a, b)
    return _add_scaled("baddbmm", x, MatMul()(a, b), beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:
    """``beta * input + alpha * sum_i batch1[i] @ batch2[i]``, input broadcast to (n, p)."""
    x, a, b = _operands("addbmm", input, batch1, batch2)
    _check_bmm("addbmm", a, b)
    nb, n, m = a.shape
    # the sum over the batch is one GEMM: (n, b*m) @ (b*m, p)
    a2 = reshape(permute(a, (1, 0, 2)), (n, nb * m))
    b2 = reshape(b, (nb * m, b.shape[2]))
    return _add_scaled("addbmm", x, MatMul()(a2, b2), beta, alpha)


# ----------------------------------------------------------------------------- tensordot

def _dims_list(fn: str, v) -> list:
    if isinstance(v, Tensor):
        v = v.tolist()
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return [int(v)]
    if not isinstance(v, (list, tuple)):
        raise TypeError(f"{fn}: dims must be an int or a pair of lists of ints, got {v!r}")
    return list(v)


def tensordot(a, b, dims=2) -> Tensor:
    """Contract ``a`` and ``b`` over ``dims``: an int n (a's last n dims with b's first n) or
    a pair of lists ``(dims_a, dims_b)``. The result has a's free dims, then b's."""
    x, y = _operands("tensordot", a, b)
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, (int, np.integer)) and not isinstance(dims, (bool, np.bool_)):
        n = int(dims)
        if n < 0:
            raise ValueError(f"tensordot: expects dims >= 0, got dims={n}")
        if n > min(x.ndim, y.ndim):
            raise ValueError(f"tensordot: dims={n} is more than the dimensions of the inputs "
                             f"(shapes {_shape_str(x.shape)} and {_shape_str(y.shape)})")
        da, db = list(range(x.ndim - n, x.ndim)), list(range(n))
    elif isinstance(dims, (list, tuple)) and len(dims) == 2:
        da, db = _dims_list("tensordot", dims[0]), _dims_list("tensordot", dims[1])
        if len(da) != len(db):
            raise ValueError(f"tensordot: both dimension lists should have the same length, got "
                             f"{da} and {db}")
        da = [_dim("tensordot", d, x.ndim) for d in da]
        db = [_dim("tensordot", d, y.ndim) for d in db]
        for ds in (da, db):
            if len(set(ds)) != len(ds):
                raise ValueError(f"tensordot: a dim appears more than once in {ds}")
    else:
        raise TypeError(f"tensordot: dims must be an int or a pair of lists of ints, got "
                        f"{dims!r}")
    for i, j in zip(da, db):
        sa, sb = x.shape[i], y.shape[j]
        if sa != sb and sa != 1 and sb != 1:
            raise ValueError(f"tensordot: contracted dimensions need to match, but the first "
                             f"tensor (shape {_shape_str(x.shape)}) has size {sa} in dim {i} "
                             f"and the second (shape {_shape_str(y.shape)}) has size {sb} in "
                             f"dim {j}")
    return _tensordot(x, y, da, db)


def _tensordot(x: Tensor, y: Tensor, da: list, db: list) -> Tensor:
    """tensordot of same-dtype tensors over checked dims: one GEMM of the operands permuted
    to (free, contracted) and (contracted, free). A contracted dim of size 1 on one side only
    broadcasts (as in torch): the other side is summed over it first."""
    da, db = list(da), list(db)
    for k in range(len(da) - 1, -1, -1):
        i, j = da[k], db[k]
        if x.shape[i] != y.shape[j]:
            if x.shape[i] == 1:
                y = _sum(y, j, keepdims=True)
            else:
                x = _sum(x, i, keepdims=True)
    free_a = [i for i in range(x.ndim) if i not in da]
    free_b = [j for j in range(y.ndim) if j not in db]
    k = math.prod(x.shape[i] for i in da)
    out_shape = tuple(x.shape[i] for i in free_a) + tuple(y.shape[j] for j in free_b)
    xa = permute(x, free_a + da) if free_a + da != list(range(x.ndim)) else x
    yb = permute(y, db + free_b) if db + free_b != list(range(y.ndim)) else y
    m = math.prod(x.shape[i] for i in free_a)
    n = math.prod(y.shape[j] for j in free_b)
    prod = MatMul()(reshape(xa, (m, k)), reshape(yb, (k, n)))
    out = reshape(prod, out_shape)
    return _cast(out, x.dtype)


# ----------------------------------------------------------------------------- einsum

# torch's order of subscripts: upper case before lower case (also that of implicit outputs)
_LETTERS = string.ascii_uppercase + string.ascii_lowercase
_ELLIPSIS = -1


def _parse_term(term: str, where: str) -> list:
    """Subscripts of one term as label ints (letters 0..51, in torch's order), with
    ``_ELLIPSIS`` for '...'."""
    out, i, seen = [], 0, False
    while i < len(term):
        c = term[i]
        if c == ".":
            if term[i:i + 3] != "...":
                raise ValueError(f"einsum(): invalid '.' in {where}: an ellipsis is '...'")
            if seen:
                raise ValueError(f"einsum(): more than one ellipsis in {where}")
            seen = True
            out.append(_ELLIPSIS)
            i += 3
            continue
        k = _LETTERS.find(c)
        if k < 0:
            raise ValueError(f"einsum(): invalid subscript {c!r} in {where}; subscripts must be "
                             "in [a-zA-Z]")
        out.append(k)
        i += 1
    return out


def _label_name(label: int) -> str:
    return _LETTERS[label] if label < len(_LETTERS) else "..."


def _parse_equation(equation: str, shapes: list):
    """The equation as (operands' label lists, output labels), ellipses expanded into labels
    52, 53, ... (right-aligned across operands, as broadcasting aligns them)."""
    eq = "".join(equation.split())
    if "->" in eq:
        lhs, rhs = eq.split("->", 1)
        if "->" in rhs or ">" in rhs or "-" in rhs:
            raise ValueError(f"einsum(): invalid equation {equation!r}: '->' may appear once")
    else:
        lhs, rhs = eq, None
    terms = lhs.split(",")
    if len(terms) > len(shapes):
        raise ValueError(f"einsum(): fewer operands were provided ({len(shapes)}) than the "
                         f"equation {equation!r} specifies ({len(terms)})")
    if len(terms) < len(shapes):
        raise ValueError(f"einsum(): more operands were provided ({len(shapes)}) than the "
                         f"equation {equation!r} specifies ({len(terms)})")
    parsed = [_parse_term(t, f"operand {k}") for k, t in enumerate(terms)]
    n_ell = 0
    for k, (labels, shape) in enumerate(zip(parsed, shapes)):
        named = len(labels) - (1 if _ELLIPSIS in labels else 0)
        if _ELLIPSIS in labels:
            if named > len(shape):
                raise ValueError(f"einsum(): operand {k} has {named} subscripts besides the "
                                 f"ellipsis but only {len(shape)} dimensions (shape "
                                 f"{_shape_str(shape)})")
            n_ell = max(n_ell, len(shape) - named)
        elif named != len(shape):
            raise ValueError(f"einsum(): the number of subscripts in the equation ({named}) "
                             f"does not match the number of dimensions ({len(shape)}) of "
                             f"operand {k} (shape {_shape_str(shape)}), and no ellipsis was "
                             "given")
    ell = [len(_LETTERS) + e for e in range(n_ell)]
    subs = []
    for labels, shape in zip(parsed, shapes):
        if _ELLIPSIS in labels:
            p = labels.index(_ELLIPSIS)
            n = len(shape) - (len(labels) - 1)
            labels = labels[:p] + ell[n_ell - n:] + labels[p + 1:]
        subs.append(labels)
    if rhs is None:  # implicit: the ellipsis, then the subscripts seen once, sorted
        counts = {}
        for labels in parsed:
            for lab in labels:
                if lab != _ELLIPSIS:
                    counts[lab] = counts.get(lab, 0) + 1
        out = ell + sorted(lab for lab, c in counts.items() if c == 1)
    else:
        out_labels = _parse_term(rhs, "the output")
        seen_in = {lab for labels in parsed for lab in labels}
        out = []
        for lab in out_labels:
            if lab == _ELLIPSIS:
                out.extend(ell)  # (an ellipsis in the output only stands for no dims)
                continue
            if lab not in seen_in:
                raise ValueError(f"einsum(): output subscript {_label_name(lab)} does not "
                                 "appear in the equation for any input operand")
            if lab in out:
                raise ValueError(f"einsum(): output subscript {_label_name(lab)} appears more "
                                 "than once in the output")
            out.append(lab)
        # without '...' in the output, the ellipsis dims are summed, as in torch
    return subs, out


def einsum(equation, *operands) -> Tensor:
    """``torch.einsum``: the sum of products of the operands' entries given by the subscripts
    of ``equation`` (letters, '...' for broadcast dims, '->' before the output's subscripts;
    without '->', the output has the ellipsis dims, then the subscripts seen once, sorted).
    A subscript repeated in one operand takes its diagonal ('ii->i', 'ii' the trace), one not
    in the output is summed, and dims of size 1 broadcast. The operands may be given as one
    list. Gradients of every order are einsums of the same kind. Integers give int64 where
    torch's do: when a subscript is summed within one operand (see
    ``_sums_within_an_operand``); products stay in the operands' dtype."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): the equation must be a string, got {equation!r} (the "
                        "sublist format is not supported)")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum(): needs at least one operand")
    tensors = _operands("einsum", *operands, promote=False)
    shapes = [t.shape for t in tensors]
    subs, out = _parse_equation(equation, shapes)
    # torch's einsum views every operand with all the equation's dims first, so a 0-d one
    # promotes as a tensor with dims (int8 and a 0-d uint8 give int16, not int8)
    dtype = functools.reduce(promote_types, [t.dtype for t in tensors])
    tensors = [_cast(t, dtype) for t in tensors]  # (exact: the dtype holds every value)
    # an integer sum within an operand is int64 (torch's sum there), and so is every product
    # with it; products before it stay in ``dtype`` and wrap around, as torch's do
    y = _einsum_labels(subs, tensors, out, checked=False)
    wide = dtype.kind in "iu" and _sums_within_an_operand(subs, shapes, out)
    return _cast(y, _INT64 if wide else dtype)


_INT64 = np.dtype(np.int64)


def _sums_within_an_operand(subs: list, shapes: list, out: list) -> bool:
    """Whether torch's einsum calls ``sum`` on an operand, which makes an integer result
    int64 (torch sums integers as int64): with one operand, when a subscript (after taking
    diagonals) is not in the output; with several, when a subscript not in the output has a
    size other than 1 (0 too) in exactly one operand. A subscript of size 1 everywhere is
    squeezed, and one in several operands is contracted by products, in their dtype."""
    own = [dict(zip(labels, shape)) for labels, shape in zip(subs, shapes)]
    summed = set().union(*own) - set(out)
    if len(own) == 1:
        return bool(summed)
    return any(sum(d.get(lab, 1) != 1 for d in own) == 1 for lab in summed)


def _label_sizes(subs: list, tensors: list) -> dict:
    """Each label's size: the operands' sizes must agree or be 1 (a 1 broadcasts)."""
    sizes = {}
    for k, (labels, t) in enumerate(zip(subs, tensors)):
        own = {}
        for lab, s in zip(labels, t.shape):
            if lab in own and own[lab] != s:
                raise ValueError(f"einsum(): subscript {_label_name(lab)} is repeated for "
                                 f"operand {k} (shape {_shape_str(t.shape)}) but the sizes "
                                 f"don't match, {own[lab]} != {s}")
            own[lab] = s
        for lab, s in own.items():
            prev = sizes.get(lab)
            if prev is None or prev == 1:
                sizes[lab] = s
            elif s != prev and s != 1:
                raise ValueError(f"einsum(): subscript {_label_name(lab)} has size {s} for "
                                 f"operand {k} (shape {_shape_str(t.shape)}), which does not "
                                 f"broadcast with the size {prev} seen before")
    return sizes


def _diagonal_of(x: Tensor, labels: list, unique: list) -> Tensor:
    """The entries of ``x`` whose repeated labels have equal indices, with one dim per
    unique label: a GetItem, whose gradient puts the values back on the diagonal."""
    xp = backend.get_array_module(x.data)
    n = len(unique)
    index = []
    for lab, s in zip(labels, x.shape):
        shape = [1] * n
        shape[unique.index(lab)] = s
        index.append(xp.arange(s).reshape(shape))
    return GetItem(tuple(index))(x)


def _einsum_labels(subs: list, tensors: list, out: list, checked: bool = True) -> Tensor:
    """einsum on label lists (ints) of same-dtype tensors; ``checked``: the sizes are known to
    agree (the gradients' einsums)."""
    sizes = _label_sizes(subs, tensors) if not checked else None
    subs, tensors = list(subs), list(tensors)
    for k, (labels, x) in enumerate(zip(subs, tensors)):
        unique = list(dict.fromkeys(labels))
        if len(unique) != len(labels):  # a diagonal
            x = _diagonal_of(x, labels, unique)
            labels = unique
        if sizes is not None:  # broadcast dims of size 1: the operand does not vary along them
            keep = [i for i, lab in enumerate(labels) if x.shape[i] == sizes[lab]]
            if len(keep) != len(labels):
                x = reshape(x, tuple(x.shape[i] for i in keep))
                labels = [labels[i] for i in keep]
        subs[k], tensors[k] = labels, x
    for k, (labels, x) in enumerate(zip(subs, tensors)):
        # a label in this operand only, not in the output, is summed here first
        elsewhere = set(out).union(*(set(s) for j, s in enumerate(subs) if j != k))
        lonely = [i for i, lab in enumerate(labels) if lab not in elsewhere]
        if lonely:
            if (len(tensors) > 1 and x.dtype.kind in "iu"
                    and all(x.shape[i] == 1 for i in lonely)):
                # torch squeezes these (no sum, so no int64): later products of this operand
                # stay in its dtype and wrap around as torch's do
                x = reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in lonely))
            else:
                x = _sum(x, tuple(lonely))  # integers: int64, as torch's sum here
            subs[k], tensors[k] = [lab for lab in labels if lab in elsewhere], x
    if len(tensors) == 1:
        labels, x = subs[0], tensors[0]
        order = [labels.index(lab) for lab in out]
        return permute(x, order) if order != list(range(x.ndim)) else x
    return Einsum(subs, out)(*tensors)


class Einsum(Function):
    """y = einsum(subs -> out) of operands with unique labels, each in the output or in
    another operand; gx_k = einsum(out, subs of the others -> subs_k) of gy and the others."""

    def __init__(self, subs: list, out: list):
        self.subs, self.out = [list(s) for s in subs], list(out)

    def forward(self, *xs):
        return _contract(backend.get_array_module(*xs), self.subs, self.out, xs)

    def backward(self, gy):
        ops = self.inputs
        gxs = []
        for k, want in enumerate(self.needs_input_grad):
            if not want:
                gxs.append(None)
                continue
            others = [j for j in range(len(ops)) if j != k]
            gxs.append(_einsum_labels([self.out] + [self.subs[j] for j in others],
                                      [gy] + [ops[j] for j in others], self.subs[k]))
        return tuple(gxs)


def _contract(xp, subs: list, out: list, arrays) -> object:
    """The einsum of arrays with unique labels, contracted pairwise from the left with GEMMs."""
    cur_s, cur = list(subs[0]), arrays[0]
    for k in range(1, len(arrays)):
        keep = set(out).union(*(set(s) for s in subs[k + 1:]))
        cur_s, cur = _pair(xp, cur_s, cur, list(subs[k]), arrays[k], keep)
    extra = tuple(i for i, lab in enumerate(cur_s) if lab not in out)
    if extra:
        cur = cur.sum(axis=extra, dtype=cur.dtype)
        cur_s = [lab for lab in cur_s if lab in out]
    order = [cur_s.index(lab) for lab in out]
    if order != list(range(len(order))):
        cur = cur.transpose(order)
    # (a fresh array: every path above made one; a C-order copy feeds later GEMMs directly)
    return cur if cur.flags.c_contiguous else cur.copy()


def _pair(xp, sa: list, a, sb: list, b, keep: set):
    """Contract two arrays: labels in both and kept are batch dims, labels in both not kept
    are summed (the GEMM's inner dim), the others are free. Returns (labels, array)."""
    for s, name in ((sa, "a"), (sb, "b")):
        other = sb if s is sa else sa
        drop = tuple(i for i, lab in enumerate(s) if lab not in keep and lab not in other)
        if drop:
            arr = a if name == "a" else b
            arr = arr.sum(axis=drop, dtype=arr.dtype)
            s2 = [lab for i, lab in enumerate(s) if i not in drop]
            if name == "a":
                a, sa = arr, s2
            else:
                b, sb = arr, s2
    batch = [lab for lab in sa if lab in sb and lab in keep]
    inner = [lab for lab in sa if lab in sb and lab not in keep]
    left = [lab for lab in sa if lab not in sb]
    right = [lab for lab in sb if lab not in sa]
    size = dict(zip(sa, a.shape))
    size.update(zip(sb, b.shape))
    nb = math.prod(size[lab] for lab in batch)
    m = math.prod(size[lab] for lab in left)
    k = math.prod(size[lab] for lab in inner)
    n = math.prod(size[lab] for lab in right)
    A = a.transpose([sa.index(lab) for lab in batch + left + inner]).reshape(nb, m, k)
    B = b.transpose([sb.index(lab) for lab in batch + inner + right]).reshape(nb, k, n)
    if not inner:  # no sum: a broadcast product (an outer or elementwise one)
        C = A * B.reshape(nb, 1, n)
    elif nb == 1:
        C = _gemm(A.reshape(m, k), B.reshape(k, n))
    else:
        C = xp.matmul(A, B)
    labels = batch + left + right
    return labels, C.reshape(tuple(size[lab] for lab in labels))


# ----------------------------------------------------------------------------- kron, cross

def kron(input, other) -> Tensor:
    """The Kronecker product: ``out[i*s + j] = input[i] * other[j]`` per dim (shapes padded
    with leading 1s to one length); shape ``input.shape * other.shape`` elementwise."""
    a, b = _operands("kron", input, other, allow_bool=True)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    a2 = reshape(a, tuple(v for s in sa for v in (s, 1)))
    b2 = reshape(b, tuple(v for s in sb for v in (1, s)))
    return reshape(mul(a2, b2), tuple(x * y for x, y in zip(sa, sb)))


def cross(input, other, dim=None) -> Tensor:
    """The cross product of 3-vectors along ``dim`` (torch.linalg.cross on the broadcast
    inputs); without ``dim``, the first dim of ``input`` of size 3, as torch.cross."""
    a, b = _operands("cross", input, other)
    if a.ndim != b.ndim:
        raise ValueError(f"cross: inputs must have the same number of dimensions, got shapes "
                         f"{_shape_str(a.shape)} and {_shape_str(b.shape)}")
    if dim is None:
        d = next((i for i, s in enumerate(a.shape) if s == 3), None)
        if d is None:
            raise ValueError(f"cross: no dimension of size 3 in input of shape "
                             f"{_shape_str(a.shape)}")
    else:
        d = _dim("cross", dim, a.ndim)
    if a.ndim == 0 or a.shape[d] != 3 or b.shape[d] != 3:
        raise ValueError(f"cross: inputs dimension {d} must have length 3, got shapes "
                         f"{_shape_str(a.shape)} and {_shape_str(b.shape)}")
    shape = _broadcast_check("cross", a.shape, b.shape)
    a = broadcast_to(a, shape) if a.shape != shape else a
    b = broadcast_to(b, shape) if b.shape != shape else b
    # (a1 b2 - a2 b1, a2 b0 - a0 b2, a0 b1 - a1 b0): rolls by one along d
    return sub(mul(roll(a, -1, d), roll(b, 1, d)), mul(roll(a, 1, d), roll(b, -1, d)))


# ----------------------------------------------------------------------------- cdist

_CDIST_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                "donot_use_mm_for_euclid_dist")


class _SqrtClamped(Function):
    """y = sqrt(max(x, 0)); gx = gy / (2 y) where y > 0, else 0 (a squared distance that
    rounding took below zero, or a zero distance, gets no gradient instead of inf or NaN)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.sqrt(xp.maximum(x, 0))

    def backward(self, gy):
        y = self.output()
        pos = y.data > 0
        xp = backend.get_array_module(y.data)
        safe = Where(pos)(y, Tensor(xp.ones((), dtype=y.dtype)))
        return Where(pos)(gy / (safe * 2.0), Tensor(xp.zeros((), dtype=y.dtype)))


def cdist(x1, x2, p: float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """The p-norm distances between the rows of ``x1`` (..., P, M) and of ``x2`` (..., R, M):
    shape (..., P, R), batch dims broadcast. p >= 0 (0 counts the differing entries, inf
    is the largest difference). The gradient at a zero distance is 0, as torch's.

    For p = 2, as torch, the squared distances come from a GEMM (|x|^2 + |y|^2 - 2 x.y) when
    P or R exceeds 25 (``compute_mode`` chooses, with torch's values); otherwise, and for
    every other p, from the differences of all pairs (memory P * R * M per batch)."""
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer,
                                                               np.floating)):
        raise TypeError(f"cdist: p must be a real number, got {p!r}")
    p = float(p)
    if math.isnan(p) or p < 0:
        raise ValueError(f"cdist: only supports non-negative p values, got p={p}")
    if compute_mode not in _CDIST_MODES:
        raise ValueError(f"cdist: compute_mode must be one of {_CDIST_MODES}, got "
                         f"{compute_mode!r}")
    a, b = _operands("cdist", x1, x2)
    for name, t in (("x1", a), ("x2", b)):
        if t.ndim < 2:
            raise ValueError(f"cdist: only supports at least 2-D tensors, {name} has shape "
                             f"{_shape_str(t.shape)}")
    if a.dtype.kind != "f":
        raise TypeError(f"cdist: only supports floating-point dtypes, got {a.dtype}")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"cdist: x1 and x2 must have the same number of columns, got shapes "
                         f"{_shape_str(a.shape)} and {_shape_str(b.shape)}")
    _broadcast_check("cdist (batch dimensions)", a.shape[:-2], b.shape[:-2])
    big = a.shape[-2] > 25 or b.shape[-2] > 25
    if p == 2 and a.shape[-1] and (compute_mode == "use_mm_for_euclid_dist"
                                   or (compute_mode == _CDIST_MODES[0] and big)):
        na = _sum(mul(a, a), -1, keepdims=True)
        nb = _sum(mul(b, b), -1, keepdims=True)
        d2 = add(na, transpose(nb, -1, -2))
        d2 = sub(d2, mul(matmul(a, transpose(b, -1, -2)), 2.0))
        return _SqrtClamped()(d2)
    nd = max(a.ndim, b.ndim)
    diff = sub(reshape(a, a.shape[:-1] + (1, a.shape[-1])),
               reshape(b, b.shape[:-2] + (1,) + b.shape[-2:]))
    if a.shape[-1] == 0:  # no columns: every distance is 0 (inf's max has no identity)
        p = 1.0
    return _VectorNorm(p, (nd,), False)(diff)
