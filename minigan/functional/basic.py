"""Arithmetic, reductions, shape ops and linear algebra as differentiable functions.

Every backward here is written with the functions of this module, so each one is differentiable
again (the Function contract in ``minigan.autograd``).
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import (ACCUMULATED, Function, Tensor, as_tensor, is_grad_enabled,
                        with_zero_derivative)
from ..kernels import elementwise as K
from ..kernels.gemm import matmul as _gemm
from ..kernels.gemm import try_gemm_into as _try_gemm_into
from ..kernels import gemm as _KG
from .promotion import DEFAULT_FLOAT, number_like, result_type


def _shape_str(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _broadcast_check(op: str, *shapes) -> tuple:
    if len(shapes) == 2:  # the common cases, without NumPy's general (and slower) rule
        a, b = shapes
        if a == b or not b:
            return tuple(a)
        if not a:
            return tuple(b)
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"{op}: shapes " + " and ".join(_shape_str(s) for s in shapes)
                         + " cannot be broadcast together") from None


def _binary(a, b):
    """Two operands as tensors of one dtype, promoted by torch's rules (``promotion``): numbers
    become constants on the tensor's device, and an operand of another dtype is cast (a
    recorded cast, so its gradient comes back in its own dtype)."""
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb and a.data.dtype == b.data.dtype:  # the common case
        return a, b
    for v in (a, b):
        if v is None or isinstance(v, (str, bytes, complex)):
            other = b if v is a else a
            raise TypeError(f"unsupported operand: a {type(v).__name__} ({v!r}) with a "
                            f"{type(other).__name__}; tensors combine with tensors, arrays and "
                            "real numbers")
    if not ta and not _is_number(a):
        a, ta = as_tensor(a), True
    if not tb and not _is_number(b):
        b, tb = as_tensor(b), True
    if not (ta or tb):
        raise TypeError(f"expected a tensor among the operands, got {a!r} and {b!r}")
    dt = result_type(a, b)
    like = a if ta else b
    a = _cast(a, dt) if ta else number_like(a, dt, like)
    b = _cast(b, dt) if tb else number_like(b, dt, like)
    return a, b


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.generic))


def _cast(t: Tensor, dtype) -> Tensor:
    return t if t.data.dtype == dtype else AsType(dtype)(t)


def _floating(x: Tensor) -> Tensor:
    """``x`` itself when floating, else cast to the default float dtype (as torch computes
    exp, sqrt, true division ... of integers)."""
    return x if x.data.dtype.kind == "f" else AsType(DEFAULT_FLOAT)(x)


def _float_input(fn: str, input) -> Tensor:
    """``input`` as a tensor, which must be floating (torch refuses integer and bool tensors
    for these ops)."""
    x = as_tensor(input)
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: expected a floating-point input, got dtype {x.dtype} (torch "
                        "refuses integer and bool tensors too)")
    return x


def _int(fn: str, name: str, v) -> int:
    """An int argument (a NumPy one too; not a bool or a float), refused by name otherwise."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be an int, got {v!r}")
    return int(v)


# ----------------------------------------------------------------------------- broadcasting

class BroadcastTo(Function):
    """y = broadcast of x to ``shape``; gx = sum_to(gy, x.shape)."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.inputs[0].shape)


class SumTo(Function):
    """y = x summed over broadcast axes down to ``shape``; gx = broadcast_to(gy, x.shape)."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return _sum_to_array(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.inputs[0].shape)


def _sum_to_array(x, shape):
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and x.shape[i + lead] != 1)
    y = x.sum(axis=axes, keepdims=True) if axes else x
    if lead:
        y = y.reshape(shape)
    return y


def broadcast_to(input, shape) -> Tensor:
    x = as_tensor(input)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    _broadcast_check("broadcast_to", x.shape, shape)
    if np.broadcast_shapes(x.shape, shape) != shape:
        raise ValueError(f"broadcast_to: shape {_shape_str(x.shape)} cannot be broadcast "
                         f"to {_shape_str(shape)}")
    return BroadcastTo(shape)(x)


def sum_to(x, shape) -> Tensor:
    """Sum ``x`` down to ``shape`` (the inverse of broadcasting; used by every backward)."""
    x = as_tensor(x)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    if shape and np.broadcast_shapes(x.shape, shape) != x.shape:  # () sums any shape
        raise ValueError(f"sum_to: shape {_shape_str(x.shape)} cannot be summed to "
                         f"{_shape_str(shape)}")
    return SumTo(shape)(x)


# ----------------------------------------------------------------------------- arithmetic

class Add(Function):
    """y = a + b; ga = sum_to(gy), gb = sum_to(gy)."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Sub(Function):
    """y = a - b; ga = sum_to(gy), gb = -sum_to(gy)."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        a, b = self.inputs
        gb = neg(sum_to(gy, b.shape)) if self.needs_input_grad[1] else None
        return (sum_to(gy, a.shape) if self.needs_input_grad[0] else None), gb


def _reads_of_product(f) -> list:
    """The inputs a product's backward reads: x for y's gradient, y for x's (torch saves only
    those, so only those are checked for in-place changes since the forward)."""
    a, b = f.inputs[0], f.inputs[1]
    need = f.needs_input_grad
    return ([b] if need[0] else []) + ([a] if need[1] else [])


class Mul(Function):
    """y = a * b; ga = gy * b, gb = gy * a."""

    def forward(self, a, b):
        return a * b

    reads_inputs = _reads_of_product

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy * b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b; ga = gy / b, gb = -gy * y / b."""

    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy / b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-(gy * a) / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """y = -x; gx = -gy."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def forward(self, x):
        return -x

    def backward(self, gy):
        return neg(gy)


class PowConst(Function):
    """y = x ** c for a constant c; gx = gy * c * x ** (c - 1)."""

    def __init__(self, c: float):
        self.c = c

    def forward(self, x):
        return x ** x.dtype.type(self.c) if x.dtype.kind == "f" else x ** self.c

    def backward(self, gy):
        x = self.inputs[0]
        c = self.c
        if c == 2:
            return gy * x * 2.0
        if c == 0:  # x ** 0 is 1 everywhere, 0 ** 0 included: no gradient (not 0 * inf)
            return gy * 0.0
        return gy * c * pow(x, c - 1)


def _may_hold(mask) -> bool:
    """Whether a mask may have a True: read on the CPU, assumed on the GPU (reading it there
    would be a device-to-host sync)."""
    return backend.is_cupy_array(mask) or bool(mask.any())


class Pow(Function):
    """y = a ** b; ga = gy * b * a ** (b - 1), gb = gy * y * log(a)."""

    def forward(self, a, b):
        return a ** b

    def backward(self, gy):
        # Where the base is 0 the formulas hold 0 * inf; the base is then swapped for 1 inside
        # them (a constant choice, so higher orders stay exact), which gives PyTorch's values:
        # d/da 0 ** 0 = 0 and d/db 0 ** b = 0 for b >= 0.
        a, b = self.inputs
        xp = backend.get_array_module(a.data)
        zero_base = a.data == 0
        ga = gb = None
        if self.needs_input_grad[0]:
            m = zero_base & (b.data == 0)
            base = where(m, 1.0, a) if _may_hold(m) else a
            ga = sum_to(gy * b * pow(base, b - 1.0), a.shape)
        if self.needs_input_grad[1]:
            m = xp.broadcast_to(zero_base, self.output().shape)
            base = where(m, 1.0, a) if _may_hold(m) else a
            gb = sum_to(gy * self.output() * log(base), b.shape)
        return ga, gb


class Exp(Function):
    """y = exp(x); gx = gy * y."""

    saves_inputs = False  # its backward reads its result (checked by output()), not x

    def forward(self, x):
        return backend.get_array_module(x).exp(x)

    def backward(self, gy):
        return gy * self.output()


class Log(Function):
    """y = log(x); gx = gy / x."""

    def forward(self, x):
        return backend.get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


class Sqrt(Function):
    """y = sqrt(x); gx = gy / (2 y)."""

    saves_inputs = False  # its backward reads its result (checked by output()), not x

    def forward(self, x):
        return backend.get_array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (self.output() * 2.0)


class Abs(Function):
    """y = |x|; gx = gy * sign(x) (sign is piecewise constant)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.saved = xp.asarray(xp.sign(x))  # (a 0-d NumPy x gives a NumPy scalar: an array)
        return xp.abs(x)

    def backward(self, gy):  # (a zero derivative in x: sign(x) is piecewise constant)
        return with_zero_derivative(gy * Tensor(self.saved), self.inputs[0])


# A tensor and a Python (or NumPy) number. The number is kept as a NumPy scalar of the tensor's
# dtype and handed to the kernel as an argument: the same values as the tensor-tensor op with
# the number as a 0-d array of that dtype (which is what it used to be), without making that
# array, which on the GPU is a host-to-device copy in the middle of the step.

class AddConst(Function):
    """y = x + c for a constant c; gx = gy. (x - c is x + (-c): the same IEEE result.)"""

    saves_inputs = False

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x + self.c

    def backward(self, gy):
        return gy


class RSubConst(Function):
    """y = c - x for a constant c; gx = -gy."""

    saves_inputs = False

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return self.c - x

    def backward(self, gy):
        return neg(gy)


class MulConst(Function):
    """y = x * c for a constant c; gx = gy * c."""

    saves_inputs = False

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x * self.c

    def backward(self, gy):
        return MulConst(self.c)(gy)


class DivConst(Function):
    """y = x / c for a constant c; gx = gy / c."""

    saves_inputs = False

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x / self.c

    def backward(self, gy):
        return DivConst(self.c)(gy)


def _const(t, c):
    """``c`` as a NumPy scalar of tensor ``t``'s floating dtype, or None when the pair is not a
    floating tensor and a real number (then the general op, with its promotion rules, applies)."""
    if (isinstance(t, Tensor) and t.dtype.kind == "f"
            and (c.__class__ in (int, float)
                 or (isinstance(c, np.generic) and c.dtype.kind in "iuf"))):
        return t.dtype.type(c)
    return None


def _with_const(a, b, const_right, const_left):
    """The op with a number as a kernel argument: ``const_right(c)(a)`` when b is the number c,
    ``const_left(c)(b)`` when a is (None: that side takes the general op); None otherwise."""
    c = _const(a, b)
    if c is not None:
        return const_right(c)(a)
    c = _const(b, a)
    if c is not None and const_left is not None:
        return const_left(c)(b)
    return None


def _scaled(fn: str, a, b, alpha):
    """``alpha * b`` for ``add``/``sub`` (torch's keyword; a float alpha needs a float result,
    a bool one a bool result). For a bool result it is ``b and alpha != 0``, as torch: the
    sum of bools stays a bool (their or)."""
    if not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: alpha must be a real number, got {alpha!r}")
    dt = result_type(a, b)  # b is scaled in the dtype of the result, as torch computes it
    if isinstance(alpha, (float, np.floating)) and dt.kind != "f":
        raise TypeError(f"{fn}: a float alpha ({alpha}) needs a floating operand; for integer "
                        "and bool tensors alpha must be an integer")
    if isinstance(alpha, bool) and dt.kind != "b":
        raise TypeError(f"{fn}: a bool alpha ({alpha}) needs a bool result (torch's rule); "
                        f"these operands give {dt}")
    if dt.kind == "b":
        alpha = bool(alpha)
        return bool(b) and alpha if _is_number(b) else mul(_cast(as_tensor(b), dt), alpha)
    return b * alpha if _is_number(b) else mul(_cast(as_tensor(b), dt), alpha)


def add(input, other, *, alpha=1) -> Tensor:
    """``input + alpha * other`` (torch.add)."""
    if alpha.__class__ is not int or alpha != 1:
        other = _scaled("add", input, other, alpha)
    y = _with_const(input, other, AddConst, AddConst)
    if y is not None:
        return y
    a, b = _binary(input, other)
    _broadcast_check("add", a.shape, b.shape)
    return Add()(a, b)


def sub(input, other, *, alpha=1) -> Tensor:
    """``input - alpha * other`` (torch.sub)."""
    if alpha.__class__ is not int or alpha != 1:
        _no_bool_sub(input, other)
        other = _scaled("sub", input, other, alpha)
    y = _with_const(input, other, lambda c: AddConst(-c), RSubConst)  # (never a bool operand)
    if y is not None:
        return y
    _no_bool_sub(input, other)
    a, b = _binary(input, other)
    _broadcast_check("sub", a.shape, b.shape)
    return Sub()(a, b)


def _no_bool_sub(input, other) -> None:
    if any((v.data.dtype == np.bool_) if isinstance(v, Tensor) else isinstance(v, (bool, np.bool_))
           for v in (input, other)):
        raise TypeError("sub: subtraction with a bool operand is not supported (torch refuses "
                        "it too); use ~ or logical_xor")


def mul(input, other) -> Tensor:
    y = _with_const(input, other, MulConst, MulConst)
    if y is not None:
        return y
    a, b = _binary(input, other)
    _broadcast_check("mul", a.shape, b.shape)
    return Mul()(a, b)


def div(input, other, *, rounding_mode=None) -> Tensor:
    """``input / other`` (torch.div): true division, in floating point even for integers; with
    ``rounding_mode`` "trunc" or "floor" the quotient is rounded (toward zero, or down as
    Python's //) and keeps the operands' promoted dtype, with a zero gradient as in torch."""
    if rounding_mode is not None:
        return _rounded_div(input, other, rounding_mode)
    if ((isinstance(input, Tensor) and input.data.dtype.kind != "f")
            or (isinstance(other, Tensor) and other.data.dtype.kind != "f")):
        # integer operands go to floating point each from its own dtype, before any promotion
        # (squeezed into the other's integer dtype first, 1000 would wrap in int8)
        if result_type(input, other).kind != "f":
            input = _floating(input) if isinstance(input, Tensor) else input
            other = _floating(other) if isinstance(other, Tensor) else other
    y = _with_const(input, other, DivConst, None)
    if y is not None:
        return y
    a, b = _binary(input, other)
    _broadcast_check("div", a.shape, b.shape)
    if a.data.dtype.kind != "f":
        a, b = _floating(a), _floating(b)
    return Div()(a, b)


true_divide = div


def floor_divide(input, other) -> Tensor:
    """``input // other`` rounded down (torch.floor_divide)."""
    return _rounded_div(input, other, "floor")


def _no_bool(fn: str, a: Tensor) -> None:
    if a.data.dtype == np.bool_:
        raise TypeError(f"{fn}: not implemented for bool tensors (torch refuses them too)")


def _integer_zero_divisor(fn: str, a: Tensor, b: Tensor) -> None:
    """Integer division by zero has no value; NumPy would give 0 with a warning. Checked on the
    CPU (torch raises there too); on the GPU the check would wait on the device, so the result
    there is whatever the hardware gives, as in torch."""
    if (b.data.dtype.kind in "iub" and backend.get_array_module(b.data) is np
            and a.data.size and not b.data.all()):
        raise ZeroDivisionError(f"{fn}: integer division by zero")


class _RoundedDiv(Function):
    """y = trunc(a / b) or floor(a / b); a step function, so ga = gb = 0 (torch's convention)."""

    saves_inputs = False

    def __init__(self, mode: str):
        self.mode = mode

    def forward(self, a, b):
        xp = backend.get_array_module(a, b)
        self.shapes = (a.shape, b.shape)
        if self.mode == "floor":
            return xp.floor_divide(a, b)
        if a.dtype.kind == "f":
            return xp.trunc(a / b)
        q = xp.floor_divide(a, b)  # rounded down; step up where the exact quotient was negative
        return q + ((xp.remainder(a, b) != 0) & ((a < 0) != (b < 0))).astype(q.dtype)

    def backward(self, gy):
        xp = backend.get_array_module(gy.data)
        return tuple(None if not want else Tensor(xp.zeros(shape, dtype=gy.dtype))
                     for want, shape in zip(self.needs_input_grad, self.shapes))


def _rounded_div(a, b, mode) -> Tensor:
    if mode not in ("trunc", "floor"):
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {mode!r}")
    a, b = _binary(a, b)
    _broadcast_check("div", a.shape, b.shape)
    _no_bool("div", a)
    _integer_zero_divisor("div", a, b)
    return _RoundedDiv(mode)(a, b)


class _Remainder(Function):
    """y = a - q * b with q = floor(a / b) (``remainder``, Python's %) or trunc(a / b)
    (``fmod``); ga = gy, gb = -gy * q."""

    def __init__(self, mode: str):
        self.mode = mode

    def forward(self, a, b):
        xp = backend.get_array_module(a, b)
        return xp.remainder(a, b) if self.mode == "floor" else xp.fmod(a, b)

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy, a.shape) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            q = _RoundedDiv(self.mode)(a.detach(), b.detach())
            gb = sum_to(neg(gy * q), b.shape)
        return ga, gb


def remainder(input, other) -> Tensor:
    """``input % other`` with the sign of ``other``, as Python's % (torch.remainder)."""
    a, b = _binary(input, other)
    _broadcast_check("remainder", a.shape, b.shape)
    _no_bool("remainder", a)
    _integer_zero_divisor("remainder", a, b)
    return _Remainder("floor")(a, b)


def fmod(input, other) -> Tensor:
    """The C remainder, with the sign of ``input`` (torch.fmod)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"fmod: input must be a tensor, got {type(input).__name__} (torch "
                        "takes a number as the divisor only)")
    a, b = _binary(input, other)
    _broadcast_check("fmod", a.shape, b.shape)
    _no_bool("fmod", a)
    _integer_zero_divisor("fmod", a, b)
    return _Remainder("trunc")(a, b)


def _bitwise(fn: str, ufunc: str, input, other) -> Tensor:
    a, b = _binary(input, other)
    if a.data.dtype.kind not in "biu":
        raise TypeError(f"{fn}: expects bool or integer tensors, got dtype {a.data.dtype}")
    _broadcast_check(fn, a.shape, b.shape)
    backend.check_same_device(a.data, b.data, what=fn)
    out = getattr(backend.get_array_module(a.data, b.data), ufunc)(a.data, b.data)
    return Tensor(np.asarray(out) if isinstance(out, np.generic) else out)


def bitwise_and(input, other) -> Tensor:
    """``input & other`` for bool or integer tensors (no gradient)."""
    return _bitwise("bitwise_and", "bitwise_and", input, other)


def bitwise_or(input, other) -> Tensor:
    """``input | other`` for bool or integer tensors (no gradient)."""
    return _bitwise("bitwise_or", "bitwise_or", input, other)


def bitwise_xor(input, other) -> Tensor:
    """``input ^ other`` for bool or integer tensors (no gradient)."""
    return _bitwise("bitwise_xor", "bitwise_xor", input, other)


def bitwise_not(input) -> Tensor:
    """``~input``: logical not of a bool tensor, bitwise not of an integer one."""
    x = as_tensor(input)
    if x.data.dtype.kind not in "biu":
        raise TypeError(f"bitwise_not: expects a bool or integer tensor, got dtype "
                        f"{x.data.dtype}")
    out = backend.get_array_module(x.data).invert(x.data)
    return Tensor(np.asarray(out) if isinstance(out, np.generic) else out)


def neg(input) -> Tensor:
    return Neg()(as_tensor(input))


def pow(input, exponent) -> Tensor:  # noqa: A001 - PyTorch's name
    """input ** exponent; a Python-number exponent is a constant, a tensor exponent is
    differentiable."""
    x = input
    if isinstance(exponent, (int, float)) and isinstance(x, Tensor):
        if x.data.dtype.kind != "f":  # torch: integer ** int stays integer, ** float is float32
            if isinstance(exponent, int):
                if exponent < 0 and not isinstance(exponent, bool):
                    raise ValueError("pow: integers to negative integer powers are not allowed "
                                     "(make the base floating point, e.g. x.double() ** -1)")
                dt = result_type(x, exponent)
                if dt.kind in "iu" and not np.iinfo(dt).min <= exponent <= np.iinfo(dt).max:
                    raise ValueError(f"pow: the exponent {exponent} does not fit the tensor's "
                                     f"dtype {dt} (torch refuses it too)")
                if dt == np.bool_:  # bool ** bool stays bool, as torch's
                    return clone(x) if exponent else Tensor(
                        backend.get_array_module(x.data).ones_like(x.data))
                return _integer_pow(_cast(x, dt), number_like(exponent, dt, x))
            x = _floating(x)
        if exponent == 1:
            return clone(x)  # a new tensor, as torch's (an alias would share in-place writes)
        return PowConst(float(exponent))(x)
    a, b = _binary(x, exponent)
    _broadcast_check("pow", a.shape, b.shape)
    if a.data.dtype.kind != "f":
        return _integer_pow(a, b)
    return Pow()(a, b)


def _integer_pow(a: Tensor, b: Tensor) -> Tensor:
    """Integer powers (no gradient: integer tensors never require one). A negative exponent
    in a tensor gives torch's integer answers: 1 for a base of 1, +-1 for -1, else 0."""
    _no_bool("pow", a)
    xp = backend.get_array_module(a.data, b.data)
    backend.check_same_device(a.data, b.data, what="pow")
    x, e = a.data, b.data
    if e.dtype.kind == "i":
        negative = e < 0
        out = xp.power(x, xp.where(negative, 0, e).astype(e.dtype, copy=False))
        odd = (e % 2) != 0
        special = xp.where(x == 1, 1, xp.where(x == -1, xp.where(odd, -1, 1), 0))
        out = xp.where(negative, special.astype(out.dtype, copy=False), out)
    else:
        out = xp.power(x, e)
    return Tensor(np.asarray(out) if isinstance(out, np.generic) else out)


def exp(input) -> Tensor:
    return Exp()(_floating(as_tensor(input)))


def log(input) -> Tensor:
    return Log()(_floating(as_tensor(input)))


def sqrt(input) -> Tensor:
    return Sqrt()(_floating(as_tensor(input)))


def abs(input) -> Tensor:  # noqa: A001 - PyTorch's name
    return Abs()(as_tensor(input))


def square(input) -> Tensor:
    x = as_tensor(input)
    if x.data.dtype == np.bool_:  # as torch: the square of a bool tensor is int64
        x = _cast(x, np.dtype(np.int64))
    return x * x


# ----------------------------------------------------------------------------- reductions

def _dim(fn: str, d, ndim: int) -> int:
    """One dimension index in [-ndim, ndim) as a non-negative int (a 0-d tensor takes -1 and 0,
    as in torch); anything else is an error naming it."""
    if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)):
        raise TypeError(f"{fn}: a dimension must be an int, got {d!r}")
    n = max(ndim, 1)
    if not -n <= d < n:
        raise IndexError(f"{fn}: dimension {d} is out of range for a tensor with {ndim} "
                         f"dimensions (expected one in [{-n}, {n - 1}])")
    return int(d) % n


def _norm_axis(axis, ndim, fn: str = "reduction", empty_is_all: bool = True):
    """The axes to reduce, sorted: None (and, as in torch, an empty tuple) for all of them, an
    int or a sequence of ints each in range and named once."""
    if axis is None or (empty_is_all and isinstance(axis, (tuple, list)) and not axis):
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer, bool, np.bool_)):
        axis = (axis,)
    out = [_dim(fn, a, ndim) for a in axis]
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}: dimension {next(a for a in out if out.count(a) > 1)} appears "
                         f"more than once in {tuple(axis)}")
    return tuple(a for a in sorted(out) if a < ndim)


class Sum(Function):
    """y = sum of x over ``axis``; gx = broadcast of gy back to x's shape."""

    saves_inputs = False  # its gradient does not read the inputs' values
    dtype = None  # the dtype summed in: x's own, unless ``sum`` sets one (integers, dtype=)

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        return x.sum(axis=self.axis, keepdims=self.keepdims, dtype=self.dtype)

    def backward(self, gy):
        x = self.inputs[0]
        shape = None
        if not self.keepdims:
            shape = list(x.shape)
            for a in self.axis:
                shape[a] = 1
            shape = tuple(shape)
        if not is_grad_enabled():  # the same broadcast view, without the two ops
            g = gy.data if shape is None else gy.data.reshape(shape)
            return Tensor(backend.get_array_module(g).broadcast_to(g, x.shape))
        if shape is not None:
            gy = reshape(gy, shape)
        return broadcast_to(gy, x.shape)


def _dims(fn: str, axis, keepdims, dim, keepdim):
    """NumPy's ``axis``/``keepdims`` or PyTorch's ``dim``/``keepdim``, not both."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{fn}: give axis or dim, not both")
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    return axis, bool(keepdims)


def sum(input, axis=None, keepdims: bool = False, *, dim=None,  # noqa: A001 - PyTorch's name
        keepdim=None, dtype=None) -> Tensor:
    """Sum over ``axis`` (all axes by default); ``dim``/``keepdim`` are PyTorch's names, and
    ``dtype`` casts the input first, as torch's does."""
    x = as_tensor(input)
    acc = None
    if dtype is not None:
        x = _cast(x, _dtype_arg("sum", dtype))
        acc = x.data.dtype  # summed in it, as torch (NumPy would widen an int32 to int64)
    elif x.data.dtype.kind in "biu":
        acc = _INT64  # torch sums integers and bools as int64 (NumPy: uint8 as uint64)
    axis, keepdims = _dims("sum", axis, keepdims, dim, keepdim)
    f = Sum(_norm_axis(axis, x.ndim, "sum"), keepdims)
    if acc is not None:
        f.dtype = acc
    return f(x)


_INT64 = np.dtype(np.int64)
_FLOAT32 = np.dtype(np.float32)


def _dtype_arg(fn: str, dtype) -> np.dtype:
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{fn}: dtype {dtype!r} is not a dtype") from None


def _count(x, axes) -> int:
    n = 1
    for a in axes:
        n *= x.shape[a]
    return n


class MeanAll(Sum):
    """y = the mean of all of x, as sum(x) * (1/n) (the scale a number of x's dtype); gx = the
    broadcast of gy * (1/n). On the GPU the forward is one kernel, not a sum and a multiply
    (a GAN step takes five such means: three losses and D's two mean outputs)."""

    def __init__(self, ndim, keepdims, scale):
        super().__init__(tuple(range(ndim)), keepdims)
        self.scale = scale

    def forward(self, x):
        y = K.sum_all_scaled(x, self.scale)
        return y.reshape((1,) * x.ndim) if self.keepdims else y

    def backward(self, gy):
        return super().backward(MulConst(self.scale)(gy))


def mean(input, axis=None, keepdims: bool = False, *, dim=None, keepdim=None,
         dtype=None) -> Tensor:
    """Mean over ``axis`` (all axes by default); ``dim``/``keepdim`` are PyTorch's names, and
    ``dtype`` casts the input first, as torch's does."""
    x = as_tensor(input)
    if dtype is not None:
        dt = _dtype_arg("mean", dtype)
        if dt.kind != "f":
            raise TypeError(f"mean: dtype must be a floating dtype, got {dt} (torch refuses an "
                            "integer or bool one too: their mean is not one of them)")
        x = _cast(x, dt)
    axis, keepdims = _dims("mean", axis, keepdims, dim, keepdim)
    axes = _norm_axis(axis, x.ndim, "mean")
    n = _count(x, axes)
    scale = 1.0 / n if n else math.nan  # NaN over nothing, as torch
    if len(axes) == x.ndim and x.dtype.kind == "f" and n:
        return MeanAll(x.ndim, keepdims, x.dtype.type(scale))(x)
    return Sum(axes, keepdims)(x) * scale


def _correction(fn: str, unbiased, correction) -> float:
    if unbiased is not None and correction is not None:
        raise TypeError(f"{fn}: give unbiased or correction, not both")
    if correction is None:
        return 1.0 if unbiased is None or unbiased else 0.0
    return float(correction)


def var(input, axis=None, unbiased=None, keepdims: bool = False, *, correction=None, dim=None,
        keepdim=None) -> Tensor:
    """Variance over ``axis`` with Bessel's correction by default, as ``torch.var``:
    sum((x - mean)^2) / (n - correction); ``unbiased=False`` is ``correction=0``, and torch's
    older form ``var(x, unbiased)`` (a bool second) means that too. With n <= correction the
    divisor is 0, as there: inf (NaN where every value is the mean). A float16 input is
    computed in float32 and the result cast back, as torch (its squares overflow float16)."""
    x = as_tensor(input)
    if x.data.dtype == np.float16:
        v = var(_cast(x, _FLOAT32), axis, unbiased, keepdims, correction=correction, dim=dim,
                keepdim=keepdim)
        return _half(v)
    axis, unbiased = _legacy_unbiased("var", axis, unbiased)
    axis, keepdims = _dims("var", axis, keepdims, dim, keepdim)
    c = _correction("var", unbiased, correction)
    axes = _norm_axis(axis, x.ndim, "var")
    dof = _count(x, axes) - c
    d = x - mean(x, axes, keepdims=True)
    if dof > 0:
        return sum(d * d, axes, keepdims) * (1.0 / dof)
    with np.errstate(invalid="ignore"):  # 0 * inf where every value is the mean: NaN, quietly
        return sum(d * d, axes, keepdims) * math.inf


def _legacy_unbiased(fn: str, axis, unbiased):
    """torch's ``var(x, unbiased)``/``std(x, unbiased)``: a bool where the dim goes."""
    if isinstance(axis, (bool, np.bool_)):
        if unbiased is not None:
            raise TypeError(f"{fn}: a bool dim {axis!r} and unbiased={unbiased!r}; give dim as "
                            "an int")
        return None, bool(axis)
    return axis, unbiased


class _StdSqrt(Function):
    """y = sqrt(v) for ``std``; gv = gy / (2y), and 0 where y is 0 (torch's std gradient: a
    constant row has no direction to move in), not gy * inf = NaN. The mask y > 0 is piecewise
    constant, so higher derivatives stay exact."""

    def forward(self, v):
        return backend.get_array_module(v).sqrt(v)

    def backward(self, gy):
        y = self.output(0)
        pos = y.data > 0
        return where(pos, gy / (where(pos, y, 1.0) * 2.0), 0.0)


def std(input, axis=None, unbiased=None, keepdims: bool = False, *, correction=None, dim=None,
        keepdim=None) -> Tensor:
    """Standard deviation, ``sqrt(var(...))`` with the same arguments (``torch.std``); where
    it is 0 its gradient is 0, as torch's. A float16 input is computed in float32 and the
    result cast back (its variance may overflow float16 where the deviation does not)."""
    axis, unbiased = _legacy_unbiased("std", axis, unbiased)
    x = as_tensor(input)
    half = x.data.dtype == np.float16
    if half:
        x = _cast(x, _FLOAT32)
    y = _StdSqrt()(var(x, axis, unbiased, keepdims, correction=correction, dim=dim,
                       keepdim=keepdim))
    return _half(y) if half else y


def _half(y: Tensor) -> Tensor:
    """A float32 result cast back to float16; beyond its range it is inf, quietly, as torch."""
    with np.errstate(over="ignore"):
        return _cast(y, np.dtype(np.float16))


class _Extreme(Function):
    """y = max (or min) of x over ``axis``; the gradient is split evenly among the entries that
    reach it (PyTorch's ``amax``/``amin``). It is linear in gy with a piecewise-constant
    weight, so its derivatives of every order are exact."""

    saves_inputs = False  # the weights are kept from the forward

    def __init__(self, axis, keepdims, largest):
        self.axis, self.keepdims, self.largest = axis, keepdims, largest

    def forward(self, x):
        xp = backend.get_array_module(x)
        m = (xp.amax if self.largest else xp.amin)(x, axis=self.axis, keepdims=True)
        hit = (x == m).astype(x.dtype)
        self.saved = xp.asarray(hit / hit.sum(axis=self.axis, keepdims=True))  # 0-d stays array
        return m if self.keepdims else m.reshape(
            tuple(s for i, s in enumerate(x.shape) if i not in self.axis))

    def backward(self, gy):
        shape = tuple(1 if i in self.axis else s for i, s in enumerate(self.saved.shape))
        return broadcast_to(reshape(gy, shape), self.saved.shape) * Tensor(self.saved)


def amax(input, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    x = as_tensor(input)
    axis, keepdims = _dims("amax", axis, keepdims, dim, keepdim)
    return _Extreme(_norm_axis(axis, x.ndim, "amax"), keepdims, True)(x)


def amin(input, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    x = as_tensor(input)
    axis, keepdims = _dims("amin", axis, keepdims, dim, keepdim)
    return _Extreme(_norm_axis(axis, x.ndim, "amin"), keepdims, False)(x)


def argmax(input, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """Index of the largest entry (the first one on ties) as an int64 tensor, no gradient."""
    return _arg(input, axis, keepdims, dim, keepdim, True)


def argmin(input, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    return _arg(input, axis, keepdims, dim, keepdim, False)


def _arg(x, axis, keepdims, dim, keepdim, largest):
    x = as_tensor(x)
    axis, keepdims = _dims("argmax" if largest else "argmin", axis, keepdims, dim, keepdim)
    xp = backend.get_array_module(x.data)
    if axis is not None:
        axis = _dim("argmax" if largest else "argmin", axis, x.ndim)
    i = (xp.argmax if largest else xp.argmin)(x.data, axis=axis, keepdims=keepdims)
    return Tensor(xp.asarray(i, dtype=np.int64))


class _MaxMin(tuple):
    """``(values, indices)``, as PyTorch's ``max(x, dim)`` returns."""

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _max_min(x, dim, keepdim, largest, axis=None, keepdims=None):
    x = as_tensor(x)
    dim, keepdim = _dims("max" if largest else "min", axis, keepdim, dim, keepdims)
    if dim is None:
        return (amax if largest else amin)(x)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{'max' if largest else 'min'}: dim must be one int, got {dim!r}")
    d = _dim("max" if largest else "min", dim, x.ndim)
    if x.ndim == 0:  # as torch: dim 0 or -1 of a 0-d tensor is the value itself, index 0
        return _MaxMin((x, Tensor(backend.get_array_module(x.data).zeros((), np.int64))))
    idx = _arg(x, d, True, None, None, largest)
    xp = backend.get_array_module(x.data)
    if x.dtype.kind != "f":  # integers and bools: read in their own dtype (no gradient)
        values = xp.take_along_axis(x.data, idx.data, axis=d)
        if not keepdim:
            values = values.reshape(values.shape[:d] + values.shape[d + 1:])
        return _MaxMin((Tensor(values), idx if keepdim else Tensor(idx.data.reshape(
            values.shape))))
    # the value at the chosen index, through a constant one-hot mask: its gradient goes to
    # that entry only, as in PyTorch
    pos = xp.arange(x.shape[d]).reshape((-1,) + (1,) * (x.ndim - 1 - d))
    onehot = pos == idx.data
    # where, not a product with the one-hot: inf * 0 would be NaN
    values = sum(where(onehot, x, 0.0), d, keepdims=bool(keepdim))
    return _MaxMin((values, idx if keepdim else Tensor(idx.data.reshape(values.shape))))


def max_(input, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
    """``torch.max``. Without ``dim``: the largest value (``amax``). With ``dim``: ``(values,
    indices)``. With a tensor in its place, ``max(input, other)``: the elementwise
    ``maximum``."""
    if isinstance(dim, Tensor):
        from .pointwise import maximum
        return maximum(input, dim)
    return _max_min(input, dim, keepdim, True, axis, keepdims)


def min_(input, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
    """``torch.min``. Without ``dim``: the smallest value (``amin``). With ``dim``: ``(values,
    indices)``. With a tensor in its place, ``min(input, other)``: the elementwise
    ``minimum``."""
    if isinstance(dim, Tensor):
        from .pointwise import minimum
        return minimum(input, dim)
    return _max_min(input, dim, keepdim, False, axis, keepdims)


class Clamp(Function):
    """y = min(max(x, lo), hi); gx = gy where lo <= x <= hi, else 0 (PyTorch's convention)."""

    saves_inputs = False  # the mask is kept from the forward

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        xp = backend.get_array_module(x)
        inside = xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            inside &= x >= self.lo
        if self.hi is not None:
            inside &= x <= self.hi
        self.saved = inside.astype(x.dtype)
        return xp.clip(x, self.lo, self.hi)

    def backward(self, gy):
        return gy * Tensor(self.saved)


def clamp(input, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
    """Clip to [min, max] (either may be None). Bounds are numbers or tensors that broadcast
    with the input; tensor bounds get the gradient where they bind (torch's convention: where
    the input equals a bound, the input gets it)."""
    x = as_tensor(input)
    if min is None and max is None:
        raise ValueError("clamp: give min, max or both")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return _clamp_tensor(x, min, max)
    for name, v in (("min", min), ("max", max)):
        if v is not None and not isinstance(v, (int, float, np.number)):
            raise TypeError(f"clamp: {name} must be a number, got {type(v).__name__}")
    if x.dtype.kind != "f" and any(isinstance(v, (float, np.floating)) for v in (min, max)):
        x = _floating(x)  # as torch: an integer tensor clamped to a float bound is float32
    if x.dtype.kind == "f":  # bounds in the tensor's dtype: np.float64 ones would promote it
        min = None if min is None else x.dtype.type(min)  # noqa: A001
        max = None if max is None else x.dtype.type(max)  # noqa: A001
    return Clamp(min, max)(x)


def _clamp_tensor(x: Tensor, lo, hi) -> Tensor:
    """``min(max(x, lo), hi)`` with tensor (or number) bounds, as selections, so the gradient
    goes to the operand each element came from, by torch's rule: x where lo <= x <= hi; lo
    where x < lo < hi (x < lo alone without hi); hi where x > hi or hi < lo (x > hi alone).
    Where none of these holds (a NaN among the three, or x below lo == hi) no operand gets
    it, as in torch; a NaN input or bound gives NaN."""
    ops = [x] + [v for v in (lo, hi) if v is not None]
    if not all(isinstance(v, Tensor) or _is_number(v) for v in ops):
        bad = next(v for v in ops if not (isinstance(v, Tensor) or _is_number(v)))
        raise TypeError(f"clamp: bounds must be numbers or tensors, got {type(bad).__name__}")
    dt = result_type(*ops)
    like = x
    x = _cast(x, dt)
    lo, hi = (None if v is None else _cast(v, dt) if isinstance(v, Tensor)
              else number_like(v, dt, like) for v in (lo, hi))
    for v in (lo, hi):
        if v is not None:
            backend.check_same_device(x.data, v.data, what="clamp")
    xp = backend.get_array_module(x.data)
    a = x.data
    value = a
    if lo is not None:
        value = xp.maximum(value, lo.data)  # (maximum and minimum carry a NaN through)
    if hi is not None:
        value = xp.minimum(value, hi.data)
    if hi is None:
        to_x, to_lo, to_hi = a >= lo.data, a < lo.data, None
    elif lo is None:
        to_x, to_lo, to_hi = a <= hi.data, None, a > hi.data
    else:
        to_x = (a >= lo.data) & (a <= hi.data)
        to_lo = (a < lo.data) & (lo.data < hi.data)
        to_hi = (a > hi.data) | (hi.data < lo.data)
    y = Tensor(value)  # where no mask holds the value is a constant: no gradient
    for mask, v in ((to_hi, hi), (to_lo, lo), (to_x, x)):
        if mask is not None:
            y = where(mask, v, y)
    return y


clip = clamp


class Clone(Function):
    """y = a copy of x; gx = gy."""

    saves_inputs = False

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


def clone(input) -> Tensor:
    return Clone()(as_tensor(input))


# ----------------------------------------------------------------------------- shape ops

class Reshape(Function):
    """y = x reshaped; gx = gy reshaped back."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return x.reshape(self.shape)

    def backward(self, gy):
        shape = self.inputs[0].data.shape
        if not is_grad_enabled():
            return Tensor(gy.data.reshape(shape))
        return reshape(gy, shape)


def reshape(input, *sizes, shape=None) -> Tensor:
    """``input`` with a new shape: the sizes one by one or as one tuple, or ``shape=`` (torch's
    keyword); one of them may be -1."""
    x = input if isinstance(input, Tensor) else as_tensor(input)
    if shape is None:
        shape = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) \
            else sizes
    elif sizes:
        raise TypeError("reshape: give the shape once, as sizes or as shape=, not both")
    xs = x.data.shape
    try:
        resolved = _resolve_shape(xs, shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {_shape_str(x.shape)} "
                         f"({x.size} elements) into {_shape_str(shape)}") from None
    if resolved == xs:
        return x
    return Reshape(resolved)(x)


_RESOLVED: dict = {}  # (old shape, asked shape) -> _resolve_shape's answer


def _resolve_shape(old, new) -> tuple:
    """``new`` (with at most one -1) resolved against ``old``'s size; remembered, since a
    model reshapes the same shapes at every step. What fails is checked, and raises, anew."""
    for s in new:  # sizes must be ints: 2.0 == 2 and True == 1 would hit the memo below
        if s.__class__ is not int:
            new = _int_sizes(new)
            break
    try:
        return _RESOLVED[(old, new)]
    except (KeyError, TypeError):  # new, or unhashable (a list)
        pass
    out = _resolve_shape_anew(old, new)
    if len(_RESOLVED) < 4096 and isinstance(new, tuple):
        _RESOLVED[(old, new)] = out
    return out


def _int_sizes(sizes) -> tuple:
    """The sizes as Python ints; a float, a bool or anything else is a TypeError naming it."""
    out = []
    for s in sizes:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"reshape: sizes must be ints, got {s!r} in {tuple(sizes)}")
        out.append(int(s))
    return tuple(out)


def _resolve_shape_anew(old, new) -> tuple:
    size = math.prod(old)  # math.prod: np.prod costs microseconds on a short tuple
    new = [int(s) for s in new]
    if new.count(-1) > 1:
        raise ValueError("more than one -1")
    if -1 in new:
        rest = math.prod(s for s in new if s != -1)
        if rest == 0 or size % rest:
            raise ValueError("does not divide")
        new[new.index(-1)] = size // rest
    if math.prod(new) != size:
        raise ValueError("size mismatch")
    return tuple(new)


def unsqueeze(input, dim: int) -> Tensor:
    """A new axis of size 1 at ``dim`` (``-input.ndim - 1 <= dim <= input.ndim``)."""
    x = as_tensor(input)
    nd = x.ndim + 1
    if dim.__class__ is not int and (isinstance(dim, (bool, np.bool_))
                                     or not isinstance(dim, np.integer)):
        raise TypeError(f"unsqueeze: a dimension must be an int, got {dim!r}")
    if not -nd <= dim < nd:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor of shape "
                         f"{_shape_str(x.shape)}")
    d = dim % nd
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def squeeze(input, dim=None) -> Tensor:
    """Drop axes of size 1 (all of them, or those in ``dim`` that have size 1)."""
    x = as_tensor(input)
    if dim is None:
        axes = [i for i, s in enumerate(x.shape) if s == 1]
    else:
        axes = [a for a in _norm_axis(dim, x.ndim, "squeeze", empty_is_all=False)
                if x.shape[a] == 1]
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in axes))


def expand(x, *sizes) -> Tensor:
    """Broadcast to ``sizes`` (PyTorch's ``expand``: -1 keeps an axis, new axes go first)."""
    x = as_tensor(x)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes for a tensor of shape "
                         f"{_shape_str(x.shape)}")
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s
                  for i, s in enumerate(sizes))
    if any(s < 0 for s in shape):
        raise ValueError(f"expand: -1 is not allowed for the new leading axes in {sizes}")
    return broadcast_to(x, shape)


def flatten(x, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    x = as_tensor(x)
    nd = x.ndim
    s, e = _dim("flatten", start_dim, nd), _dim("flatten", end_dim, nd)
    if nd == 0:
        return reshape(x, (1,))  # as torch: a 0-d tensor flattens to one value
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a "
                         f"tensor of shape {_shape_str(x.shape)}")
    # the product itself, not -1: with a 0 among the other sizes -1 would be ambiguous
    shape = x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]
    return reshape(x, shape)


class Transpose(Function):
    """y = x with axes permuted; gx = gy with the inverse permutation."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, axes):
        self.axes = tuple(axes)

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        inv = tuple(int(i) for i in np.argsort(self.axes))
        if not is_grad_enabled():
            return Tensor(gy.data.transpose(inv))
        return Transpose(inv)(gy)


def permute(input, *axes, dims=None) -> Tensor:
    """The axes reordered: given one by one or as one tuple, or as ``dims=`` (torch's
    keyword)."""
    x = as_tensor(input)
    if dims is not None:
        if axes:
            raise TypeError("permute: give the order once, as axes or as dims=, not both")
        axes = dims
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    dims = [_dim("permute", a, x.ndim) for a in axes]
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {axes} is not a permutation of the {x.ndim} axes of a "
                         f"tensor of shape {_shape_str(x.shape)}")
    return Transpose(tuple(dims))(x)


def transpose(input, dim0: int = -2, dim1: int = -1) -> Tensor:
    """Swap two axes (PyTorch's ``transpose(input, dim0, dim1)``; by default the last two)."""
    x = as_tensor(input)
    d0, d1 = _dim("transpose", dim0, x.ndim), _dim("transpose", dim1, x.ndim)
    if x.ndim == 0:
        return x
    axes = list(range(x.ndim))
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return Transpose(tuple(axes))(x)


class GetItem(Function):
    """y = x[index]; gx = zeros with gy scattered (added) at index."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        return take_index(x, self.index)

    def backward(self, gy):
        return GetItemGrad(self.index, self.inputs[0].shape)(gy)


class GetItemGrad(Function):
    """y = zeros(shape) with x added at index; gx = gy[index] (it is linear)."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, index, shape):
        self.index, self.shape = index, shape

    def forward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if _basic_index(self.index):
            # slices, integers, None and Ellipsis select each element at most once: a plain
            # assignment (one copy), where add.at is an unbuffered scatter (about 20x slower
            # on the CPU, an atomic add per element on the GPU)
            gx[self.index] = gy
        else:
            backend.scatter_add(gx, self.index, gy)
        return gx

    def backward(self, ggx):
        return GetItem(self.index)(ggx)


def take_index(a, index):
    """``a[index]`` for a NumPy or CuPy array, with NumPy's (and torch's) IndexError where the
    index arrays do not broadcast together: CuPy raises ValueError there."""
    try:
        return a[index]
    except ValueError as e:
        err = index_broadcast_error(e, a, index)
        if err is None:
            raise
        raise err from e


def index_broadcast_error(e: ValueError, a, index):
    """The IndexError for a ValueError ``e`` that CuPy raised for ``a[index]``, or for an
    assignment through it, when the index arrays do not broadcast together; None when ``e`` is
    about something else. CuPy words an assigned value of the wrong shape the same way
    ("could not be broadcast"), so the index is read once more to tell (errors only)."""
    if "broadcast" not in str(e):
        return None
    try:
        a[index]
    except ValueError as again:
        if "broadcast" in str(again):
            return IndexError(f"indexing: the index arrays do not broadcast together: {again}")
    except IndexError:
        pass
    return None


def _basic_index(index) -> bool:
    """Whether ``index`` is NumPy basic indexing only (no integer or boolean arrays, no lists),
    so that no element is selected twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, slice)
               or (isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_)))
               for i in parts)


def _device_index(index, x: Tensor):
    """Index arrays must live on the tensor's device; tensors used as indices are unwrapped."""
    def conv(i):
        if isinstance(i, Tensor):
            i = i.data
        if hasattr(i, "shape") and not isinstance(i, (int, np.integer)):
            backend.check_same_device(x.data, i, what="indexing")
        return i
    if isinstance(index, tuple):
        return tuple(conv(i) for i in index)
    return conv(index)


def getitem(x, index) -> Tensor:
    """``x[index]`` with PyTorch's meaning. Slices, integers, None and Ellipsis mean what they
    mean in NumPy. Beside an index array, torch differs (``_torch_steps``): an integer (a 0-d
    integer tensor too) is a plain index whose dimension goes, so ``x[0, :, [0, 2]]`` keeps
    the selection in place where NumPy would put it first; a bool is a new dimension indexed
    by [0] (True) or [] (False); an Ellipsis that covers no dimension does not separate two
    index arrays. And a short list holding a list, tensor, slice, None or Ellipsis is read as
    a tuple (``_list_is_tuple``)."""
    x = as_tensor(x)
    if index.__class__ is tuple:
        for i in index:
            if i.__class__ not in _PLAIN_INDEX:
                break
        else:  # the common case (slices and integers): NumPy's meaning is torch's
            return GetItem(index)(x)
    elif index.__class__ is list and _list_is_tuple(index):
        index = tuple(index)
    index = _device_index(index, x)
    steps = _torch_steps(index, x) if isinstance(index, tuple) else None
    if steps is None:
        return GetItem(index)(x)
    for step in steps:
        x = GetItem(step)(x)
    return x


_PLAIN_INDEX = frozenset((slice, int, type(None), type(Ellipsis)))


def _list_is_tuple(index: list) -> bool:
    """torch's reading of a list index (NumPy's former one): as a tuple when it has fewer than
    32 items and one of them is a sequence, a tensor, a slice, None or Ellipsis, so that
    ``x[[[0, 1], [1, 2]]]`` is ``x[[0, 1], [1, 2]]``; as an index array otherwise."""
    return len(index) < 32 and any(
        i is None or i is Ellipsis or isinstance(i, (slice, list, tuple, Tensor))
        or (hasattr(i, "shape") and not isinstance(i, np.generic)) for i in index)


def _is_int(i) -> bool:
    """An integer index: an int (not a bool), a NumPy integer or a 0-d integer array."""
    if isinstance(i, (bool, np.bool_)):
        return False
    return isinstance(i, (int, np.integer)) or (
        hasattr(i, "shape") and i.ndim == 0 and i.dtype.kind in "iu")


def _is_bool(i) -> bool:
    """A bool index: a bool, a NumPy bool or a 0-d bool array (not a mask)."""
    return isinstance(i, (bool, np.bool_)) or (
        hasattr(i, "shape") and i.ndim == 0 and i.dtype == np.bool_)


def _index_dims(i) -> int:
    """How many of the indexed tensor's dimensions an index array (or list) consumes: a
    boolean one as many as it has, any other one."""
    a = np.asarray(i) if isinstance(i, list) else i
    return a.ndim if a.dtype == np.bool_ else 1


def _torch_steps(index: tuple, x: Tensor):
    """torch's meaning of an index tuple with something beyond slices, integers, None and
    Ellipsis in it, as the NumPy indexes to apply one after the other; None where NumPy's
    meaning is torch's.

    torch applies the integers first (their dimensions go), turns each bool into a new
    dimension indexed by the index array [0] (True) or [] (False), then indexes with the
    arrays, which stay in place when adjacent. So the first step here applies the integers and
    the new dimensions; the second the arrays (NumPy's rule is torch's once no integer is
    left). An Ellipsis that covers no dimension is dropped first, as torch never sees it."""
    ints = [_is_int(i) for i in index]
    bools = [_is_bool(i) for i in index]
    arrays = [isinstance(i, list) or getattr(i, "ndim", 0) > 0 for i in index]
    if not any(arrays) and not any(bools):
        return None
    if any(i is Ellipsis for i in index):
        used = 0  # the dimensions the other entries consume
        for i, a, arr in zip(index, ints, arrays):
            used += _index_dims(i) if arr else int(a or isinstance(i, slice))
        if used == x.ndim:  # it covers no dimension
            keep = [k for k, i in enumerate(index) if i is not Ellipsis]
            index = tuple(index[k] for k in keep)
            ints, bools, arrays = ([v[k] for k in keep] for v in (ints, bools, arrays))
    if not any(ints) and not any(bools):
        return [index]
    xp = backend.get_array_module(x.data)
    first, rest = [], []
    for i, a, b, arr in zip(index, ints, bools, arrays):
        if a:
            first.append(i)
        elif b:
            first.append(None)
            rest.append(_bool_as_index(i, xp))
        elif i is None:
            first.append(None)
            rest.append(slice(None))  # the new axis is there now
        elif i is Ellipsis:
            first.append(i)
            rest.append(i)
        elif arr:
            first += [slice(None)] * _index_dims(i)
            rest.append(i)
        else:  # a slice (or something NumPy will refuse in the second step)
            first.append(slice(None))
            rest.append(i)
    return [tuple(first), tuple(rest)]


def _bool_as_index(b, xp):
    """torch's index array for a bool index on its new dimension: [0] for True, [] for
    False (from a 0-d bool array by nonzero, which reads it on the device)."""
    if isinstance(b, (bool, np.bool_)):
        return xp.zeros(1 if b else 0, dtype=np.int64)
    return xp.nonzero(b.reshape(1))[0]


class Concat(Function):
    """y = concatenation along ``axis``; each gx is the matching slice of gy."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        return backend.get_array_module(*xs).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        out, start = [], 0
        for x, want in zip(self.inputs, self.needs_input_grad):
            stop = start + x.shape[self.axis]
            if want:
                idx = (slice(None),) * self.axis + (slice(start, stop),)
                out.append(getitem(gy, idx))
            else:
                out.append(None)
            start = stop
        return tuple(out)


def _promoted(tensors: list) -> list:
    """Tensors of mixed dtypes cast to their torch result type (cat and stack promote)."""
    dt = tensors[0].data.dtype
    if all(t.data.dtype == dt for t in tensors):
        return tensors
    dt = result_type(*tensors)
    return [_cast(t, dt) for t in tensors]


def concat(tensors, dim: int = 0, *, axis=None) -> Tensor:
    """Join along ``dim`` (PyTorch's ``cat``; ``axis`` is NumPy's name for it)."""
    axis = dim if axis is None else axis
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    tensors = _promoted([as_tensor(t, like) for t in tensors])
    nd = tensors[0].ndim
    if nd == 0:
        raise ValueError("concat: a 0-d tensor cannot be concatenated (stack makes a 1-d one)")
    axis = _dim("concat", axis, nd)
    for t in tensors[1:]:
        if t.ndim != nd or any(a != b for i, (a, b) in enumerate(zip(t.shape, tensors[0].shape))
                               if i != axis):
            raise ValueError("concat: shapes " + ", ".join(_shape_str(t.shape) for t in tensors)
                             + f" differ outside axis {axis}")
    if len(tensors) == 1:
        return clone(tensors[0])  # a new tensor, as torch's (not an alias of the input)
    return Concat(axis)(*tensors)


cat = concat


def stack(tensors, dim: int = 0, *, axis=None) -> Tensor:
    """Join along a new axis ``dim`` (``axis``: NumPy's name for it)."""
    axis = dim if axis is None else axis
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    tensors = [as_tensor(t, like) for t in tensors]
    nd = tensors[0].ndim + 1
    axis = _dim("stack", axis, nd)
    return concat([reshape(t, t.shape[:axis] + (1,) + t.shape[axis:]) for t in tensors], axis)


class Where(Function):
    """y = where(mask, a, b) with a constant mask; ga = where(mask, gy, 0),
    gb = where(mask, 0, gy)."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, mask):
        self.mask = mask

    def forward(self, a, b):
        return backend.get_array_module(a, b).where(self.mask, a, b)

    def backward(self, gy):
        a, b = self.inputs
        zero = Tensor(backend.get_array_module(gy.data).zeros((), dtype=gy.dtype))
        ga = sum_to(where(self.mask, gy, zero), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(where(self.mask, zero, gy), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def where(condition, input, other) -> Tensor:
    """Elementwise choice; ``condition`` is a constant bool array (or a bool tensor, or a list
    of bools). Another dtype is refused, as torch does: NumPy would read any nonzero number as
    True."""
    if isinstance(condition, Tensor):
        condition = condition.data
    elif not hasattr(condition, "dtype"):
        condition = np.asarray(condition)
    if condition.dtype != np.bool_:
        raise TypeError(f"where: the condition must be a bool tensor, got dtype "
                        f"{condition.dtype} (compare it, e.g. mask > 0)")
    if not isinstance(input, Tensor) and _is_number(input) and _is_number(other):
        # two numbers: constants on the condition's device, of torch's type for the pair
        # (a float is the default float dtype, as in where(mask, 1.0, 0))
        dt, like = result_type(input, other), Tensor(condition)
        input, other = number_like(input, dt, like), number_like(other, dt, like)  # noqa: A001
    a, b = _binary(input, other)
    backend.check_same_device(condition, a.data, b.data, what="where")
    _broadcast_check("where", condition.shape, a.shape, b.shape)
    return Where(condition)(a, b)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """PyTorch's ``F.embedding``: rows of ``weight`` (num_embeddings, dim) at integer indices.

    Indices outside [0, num_embeddings) raise an IndexError naming the index on the CPU (a
    negative index would otherwise silently pick a row from the end). On the GPU the check
    would need a device-to-host read per call, so it is skipped there, and an index out of range
    reads a wrong row (it wraps around) without an error: validate labels once where they are
    loaded. The row at ``padding_idx`` gets no gradient.
    """
    w = as_tensor(weight)
    if max_norm is not None:
        raise NotImplementedError("embedding: max_norm is not supported by minigan")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse are not supported "
                                  "by minigan")
    if w.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, dim), got shape "
                         f"{w.shape}")
    n = w.shape[0]
    idx = input.data if isinstance(input, Tensor) else input
    if not hasattr(idx, "dtype"):
        idx = backend.xp_for(w.device).asarray(idx)
        if idx.dtype.kind == "f" and idx.size == 0:
            idx = idx.astype(np.int64)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype}")
    backend.check_same_device(w.data, idx, what="embedding")
    if not backend.is_cupy_array(idx) and idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise IndexError(f"embedding: index {bad} is out of range for {n} embeddings "
                             f"(valid indices are 0 to {n - 1})")
    out = getitem(w, idx)
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within "
                             f"num_embeddings ({n})")
        keep = (idx != padding_idx % n)[..., None]
        out = where(keep, out, Tensor(out.data))  # same values, no gradient to that row
    return out


# ----------------------------------------------------------------------------- linear algebra

def _swap_last(x: Tensor) -> Tensor:
    return transpose(x, -1, -2)


class MatMul(Function):
    """y = a @ b (2-D or batched); ga = gy @ b^T, gb = a^T @ gy (summed over broadcast batches)."""

    reads_inputs = _reads_of_product

    def forward(self, a, b):
        return _gemm(a, b)

    def backward(self, gy):
        a, b = self.inputs
        if not is_grad_enabled() and a.ndim == 2 and b.ndim == 2:
            g = gy.data
            return (Tensor(_gemm(g, b.data.T)) if self.needs_input_grad[0] else None,
                    Tensor(_gemm(a.data.T, g)) if self.needs_input_grad[1] else None)
        ga = sum_to(matmul(gy, _swap_last(b)), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(matmul(_swap_last(a), gy), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def matmul(input, other) -> Tensor:
    a, b = _binary(input, other)
    sa, sb = a.data.shape, b.data.shape  # (the arrays' shapes: no property calls)
    if not sa or not sb:
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes "
                         f"{_shape_str(a.shape)} and {_shape_str(b.shape)}")
    if len(sa) == 1 or len(sb) == 1:  # promote as NumPy/PyTorch do, then drop the added axis
        a2 = reshape(a, (1, -1)) if a.ndim == 1 else a
        b2 = reshape(b, (-1, 1)) if b.ndim == 1 else b
        y = matmul(a2, b2)
        shape = y.shape[:-2] + (() if a.ndim == 1 else (y.shape[-2],)) + \
            (() if b.ndim == 1 else (y.shape[-1],))
        return reshape(y, shape)
    if sa[-1] != sb[-2]:
        raise ValueError(f"matmul: shapes {_shape_str(a.shape)} and {_shape_str(b.shape)} do not "
                         f"match ({sa[-1]} != {sb[-2]})")
    if len(sa) > 2 or len(sb) > 2:
        _broadcast_check("matmul (batch dimensions)", sa[:-2], sb[:-2])
    return MatMul()(a, b)


class Linear(Function):
    """y = x W^T + b for 2-D x; gx = gy W, gW = gy^T x, gb = sum of gy over the batch."""

    reads_inputs = _reads_of_product  # (Linear: its bias is never read)

    def forward(self, x, w, b=None):
        if type(self) is Linear and _KG.one_output_applies(x, w, b):
            # one output (a discriminator's last layer): one GPU kernel, not a GEMM and an add
            self.one_output = True
            return _KG.linear_one_output(x, w, b)
        y = _gemm(x, w.T)
        if b is not None:
            y += b
        return y

    one_output = False

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        if not is_grad_enabled():
            # A plain backward (no create_graph): the same three array ops, without the four
            # differentiable ops (two matmuls, a transpose, a sum) that a graph would need.
            return self._array_grads(gy.data)
        gx = matmul(gy, w) if self.needs_input_grad[0] else None
        gw = matmul(_swap_last(gy), x) if self.needs_input_grad[1] else None
        if len(self.inputs) == 3:
            gb = sum(gy, 0) if self.needs_input_grad[2] else None
            return gx, gw, gb
        return gx, gw

    accumulates = True  # the weight's gradient: a GEMM with beta = 1 into its .grad

    def _array_grads(self, g, gb=None):
        """The first-order gradients from the output gradient array g; ``gb``, the bias
        gradient (g summed over the batch), when the caller already has it (ACCUMULATED when
        the caller added it into the bias's .grad). The weight's gradient is added into its
        .grad by the GEMM itself when the engine offers that array (``accumulate_into``)."""
        x, w = self.inputs[0], self.inputs[1]
        need = self.needs_input_grad
        if self.one_output and backend.is_cupy_array(g) and g.dtype == x.dtype:
            return self._one_output_grads(g)
        gx = Tensor(_gemm(g, w.data)) if need[0] else None
        gw = None
        if need[1]:
            into = self.accumulate_into[1] if self.accumulate_into is not None else None
            if into is not None and _try_gemm_into(g.T, x.data, into, accumulate=True):
                gw = ACCUMULATED
            else:
                gw = Tensor(_gemm(g.T, x.data))
        if len(self.inputs) == 3:
            if not need[2]:
                return gx, gw, None
            if gb is ACCUMULATED:
                return gx, gw, gb
            return gx, gw, Tensor(g.sum(axis=0) if gb is None else gb)
        return gx, gw

    def _one_output_grads(self, g):
        """``_array_grads`` of the one-output GPU path: gx = g * w (one product per element,
        as a GEMM with an inner size of 1 computes it), gw and gb, added into the .grad
        arrays the engine offers, all in one kernel (gx alone: one multiply)."""
        x, w = self.inputs[0].data, self.inputs[1].data
        need = self.needs_input_grad
        acc = self.accumulate_into or (None, None, None)
        if need[0] and (need[1] or need[2]):  # (one_output_applies: w is C-contiguous)
            gx, gw, gb = _KG.linear_one_output_grads(g, x, need[1], need[2], acc[1], acc[2], w=w)
            gx = Tensor(gx)
        else:
            gx = Tensor(g * w) if need[0] else None
            gw, gb = _KG.linear_one_output_grads(g, x, need[1], need[2], acc[1], acc[2])
        return (gx, None if gw is None else ACCUMULATED if gw is acc[1] else Tensor(gw),
                None if gb is None else ACCUMULATED if gb is acc[2] else Tensor(gb))

    def _bias_into(self):
        """The bias's .grad array that the engine offers to add into, or None."""
        acc = self.accumulate_into
        return acc[2] if acc is not None and len(acc) == 3 else None


def linear(input, weight, bias=None) -> Tensor:
    """PyTorch's ``F.linear``: ``input @ weight.T + bias`` with weight of shape (out, in)."""
    return _linear(input, weight, bias, Linear)


def _linear(x, weight, bias, make) -> Tensor:
    """``linear`` with the op ``make()`` (Linear, or a subclass that fuses what follows)."""
    # (tensors, as every layer passes, skip as_tensor's call: every Linear layer comes here)
    x = x if isinstance(x, Tensor) else as_tensor(x)
    weight = weight if isinstance(weight, Tensor) else as_tensor(weight, x)
    xs, ws = x.data.shape, weight.data.shape  # (the arrays' shapes: no property calls)
    if len(ws) != 2:
        raise ValueError(f"linear: weight must be 2-D (out, in), got shape "
                         f"{_shape_str(weight.shape)}")
    if not xs or xs[-1] != ws[1]:
        raise ValueError(f"linear: input of shape {_shape_str(x.shape)} does not match weight of "
                         f"shape {_shape_str(weight.shape)} (expected last dim {ws[1]})")
    if bias is not None:
        bias = bias if isinstance(bias, Tensor) else as_tensor(bias, x)
        if bias.data.shape != (ws[0],):
            raise ValueError(f"linear: bias of shape {_shape_str(bias.shape)} does not match "
                             f"weight of shape {_shape_str(weight.shape)}")
    if len(xs) == 2:
        return make()(x, weight) if bias is None else make()(x, weight, bias)
    x2 = reshape(x, (-1, xs[-1]))
    y = make()(x2, weight) if bias is None else make()(x2, weight, bias)
    return reshape(y, tuple(xs[:-1]) + (ws[0],))


# ----------------------------------------------------------------------------- devices, dtypes

class ToDevice(Function):
    """y = x copied to ``device``; gx = gy copied back."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.src = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, gy):
        return ToDevice(self.src)(gy)


def to_device(x, device) -> Tensor:
    x = as_tensor(x)
    device = backend.normalize_device(device)
    if x.device == device:
        return x
    return ToDevice(device)(x)


class AsType(Function):
    """y = x cast to ``dtype``; gx = gy cast back."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def forward(self, x):
        self.src = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return AsType(self.src)(gy)


def astype(x, dtype) -> Tensor:
    x = as_tensor(x)
    if x.dtype == np.dtype(dtype):
        return x
    return AsType(dtype)(x)
