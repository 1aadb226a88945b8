"""Pointwise math, cumulative ops, norms, products and predicates, with PyTorch's names.

Everything in ``__all__`` is exported as ``minigan.<name>`` and ``minigan.nn.functional.<name>``;
``TENSOR_METHODS`` become ``Tensor`` methods (``x.sin()``, ``x.norm(p, dim)``, ``x.any()``).

Dtypes follow torch: the float-valued math (sin, log2, rsqrt, ...) turns integer and bool
tensors into float32, rounding keeps integers as they are, predicates give bool tensors, and
two operands of different dtypes are promoted as torch promotes them (a float32 tensor with an
int64 or a 0-d float64 tensor stays float32). Gradients follow torch's conventions: zero
through sign and the rounding functions, half to each side at a tie of ``maximum``, zero at
the origin of a norm. Every backward is built from differentiable ops, so ``create_graph=True``
gives exact higher derivatives (products and cumulative products included, zeros and all).
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from .. import backend
from ..kernels import special as _special
from ..autograd import Function, Tensor, as_tensor, is_grad_enabled
from .basic import (
    GetItem,
    _binary,
    _broadcast_check,
    _dim,
    _legacy_unbiased,
    _norm_axis,
    abs,
    astype,
    clone,
    concat,
    exp,
    log,
    pow,
    reshape,
    square,
    sum_to,
    where,
)
from .basic import amax as _amax, amin as _amin, clamp as _clamp, mean as _mean
from .basic import std as _std, sum as _sum, var as _var
from .basic import _floating as _to_float
from .promotion import number_like, result_type

__all__ = [
    "erf", "erfc", "erfinv",
    "acos", "all", "allclose", "any", "arccos", "arcsin", "arctan", "arctan2", "asin", "atan",
    "atan2", "ceil", "cos", "cosh", "count_nonzero", "cumprod", "cumsum", "equal", "exp2", "expm1",
    "fix", "floor", "fmax", "fmin", "frac", "isclose", "isfinite", "isinf", "isnan", "isneginf",
    "isposinf", "lerp", "log1p", "log2", "log10", "logcumsumexp", "logical_and", "logical_not",
    "logical_or", "logical_xor", "maximum", "minimum", "nan_to_num", "norm", "prod", "reciprocal",
    "round", "rsqrt", "sgn", "sign", "signbit", "sin", "sinh", "tan", "trunc",
    "addcdiv", "addcmul", "aminmax", "clamp_max", "clamp_min", "copysign", "deg2rad", "diff",
    "float_power", "heaviside", "hypot", "logaddexp", "logaddexp2", "logit", "nanmean",
    "nansum", "rad2deg", "sinc", "std_mean", "var_mean", "xlogy",
]


def _xp(t: Tensor):
    return backend.get_array_module(t.data)


def _arr(a):
    """``a`` as an array: NumPy gives scalars, not 0-d arrays, for most expressions on 0-d
    operands (CuPy arrays pass unchanged)."""
    return np.asarray(a) if isinstance(a, np.generic) else a


def _wrap(a) -> Tensor:
    """An array result as a constant tensor (NumPy gives scalars for 0-d results)."""
    return Tensor(_arr(a))


def _is_float(t: Tensor) -> bool:
    return t.dtype.kind == "f"


def _floating(fn: str, x) -> Tensor:
    """``x`` as a tensor; integers and bools become float32, as torch's float-valued math
    reads them (they carry no gradient, so the cast needs no graph)."""
    x = as_tensor(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: expected a tensor of numbers, got dtype {x.dtype}")
    return _to_float(x)


# ----------------------------------------------------------------------------- unary math

class _Unary(Function):
    """A pointwise function applied with the array module's ufunc ``op``; ``grad`` gives gx
    from gy, the input x and the output y, with differentiable ops. Outside the domain the
    result is NaN or inf without a warning, as in torch."""

    op = ""

    def forward(self, x):
        with np.errstate(all="ignore"):
            return self.compute(x)

    def compute(self, x):
        return getattr(backend.get_array_module(x), self.op)(x)

    def backward(self, gy):
        return self.grad(gy, self.inputs[0], self.output())


class Sin(_Unary):
    """y = sin(x); gx = gy * cos(x)."""
    op = "sin"

    def grad(self, gy, x, y):
        return gy * cos(x)


class Cos(_Unary):
    """y = cos(x); gx = -gy * sin(x)."""
    op = "cos"

    def grad(self, gy, x, y):
        return gy * -sin(x)


class Tan(_Unary):
    """y = tan(x); gx = gy * (1 + y^2)."""
    op = "tan"

    def grad(self, gy, x, y):
        return gy * (y * y + 1.0)


class Sinh(_Unary):
    """y = sinh(x); gx = gy * cosh(x)."""
    op = "sinh"

    def grad(self, gy, x, y):
        return gy * cosh(x)


class Cosh(_Unary):
    """y = cosh(x); gx = gy * sinh(x)."""
    op = "cosh"

    def grad(self, gy, x, y):
        return gy * sinh(x)


class Asin(_Unary):
    """y = asin(x); gx = gy * rsqrt(1 - x^2)."""
    op = "arcsin"

    def grad(self, gy, x, y):
        return gy * rsqrt(1.0 - x * x)


class Acos(_Unary):
    """y = acos(x); gx = -gy * rsqrt(1 - x^2)."""
    op = "arccos"

    def grad(self, gy, x, y):
        return gy * -rsqrt(1.0 - x * x)


class Atan(_Unary):
    """y = atan(x); gx = gy / (1 + x^2)."""
    op = "arctan"

    def grad(self, gy, x, y):
        return gy / (x * x + 1.0)


class Log1p(_Unary):
    """y = log(1 + x); gx = gy / (1 + x)."""
    op = "log1p"

    def grad(self, gy, x, y):
        return gy / (x + 1.0)


class Expm1(_Unary):
    """y = exp(x) - 1; gx = gy * (y + 1)."""
    op = "expm1"

    def grad(self, gy, x, y):
        return gy * (y + 1.0)


class Log2(_Unary):
    """y = log2(x); gx = gy / (x ln 2)."""
    op = "log2"

    def grad(self, gy, x, y):
        return gy / (x * math.log(2.0))


class Log10(_Unary):
    """y = log10(x); gx = gy / (x ln 10)."""
    op = "log10"

    def grad(self, gy, x, y):
        return gy / (x * math.log(10.0))


class Exp2(_Unary):
    """y = 2^x; gx = gy * y * ln 2."""
    op = "exp2"

    def grad(self, gy, x, y):
        return gy * y * math.log(2.0)


class Rsqrt(_Unary):
    """y = 1 / sqrt(x); gx = -gy * y^3 / 2."""

    def compute(self, x):
        return 1 / backend.get_array_module(x).sqrt(x)

    def grad(self, gy, x, y):
        return gy * (y * y * y) * -0.5


class Reciprocal(_Unary):
    """y = 1 / x; gx = -gy * y^2."""

    def compute(self, x):
        return 1 / x

    def grad(self, gy, x, y):
        return gy * -(y * y)


class Frac(_Unary):
    """y = x - trunc(x); gx = gy (torch's convention: the jumps are ignored)."""

    saves_inputs = False

    def compute(self, x):
        return x - backend.get_array_module(x).trunc(x)

    def grad(self, gy, x, y):
        return gy


class _Flat(Function):
    """A piecewise-constant function (sign, floor, ceil, trunc, round): gx = 0, as in torch
    (zeros, not gy * 0, so an infinite gy gives 0 too)."""

    saves_inputs = False

    def __init__(self, fn):
        self.fn = fn

    def forward(self, x):
        return self.fn(x)

    def backward(self, gy):
        return Tensor(backend.get_array_module(gy.data).zeros_like(gy.data))


def _float_unary(cls, fn: str):
    def apply(input) -> Tensor:
        return cls()(_floating(fn, input))
    apply.__name__ = apply.__qualname__ = fn
    apply.__doc__ = (f"``torch.{fn}``, elementwise; integer and bool tensors give float32. "
                     f"{cls.__doc__}")
    return apply


sin = _float_unary(Sin, "sin")
cos = _float_unary(Cos, "cos")
tan = _float_unary(Tan, "tan")
sinh = _float_unary(Sinh, "sinh")
cosh = _float_unary(Cosh, "cosh")
asin = arcsin = _float_unary(Asin, "asin")
acos = arccos = _float_unary(Acos, "acos")
atan = arctan = _float_unary(Atan, "atan")
log1p = _float_unary(Log1p, "log1p")
expm1 = _float_unary(Expm1, "expm1")
log2 = _float_unary(Log2, "log2")
log10 = _float_unary(Log10, "log10")
exp2 = _float_unary(Exp2, "exp2")
rsqrt = _float_unary(Rsqrt, "rsqrt")
reciprocal = _float_unary(Reciprocal, "reciprocal")


_TWO_OVER_ROOT_PI = 1.12837916709551257390  # C's M_2_SQRTPI, as torch's kernels take it
_ROOT_PI_OVER_2 = 0.88622692545275801365


class Erf(_Unary):
    """y = erf(x); gx = gy 2/sqrt(pi) exp(-x^2)."""

    def compute(self, x):
        return _special.erf(x).astype(x.dtype, copy=False)

    def grad(self, gy, x, y):
        return gy * (exp(-(x * x)) * _TWO_OVER_ROOT_PI)


class Erfc(_Unary):
    """y = erfc(x) = 1 - erf(x), accurate in the tail; gx = -gy 2/sqrt(pi) exp(-x^2)."""

    def compute(self, x):
        return _special.erfc(x).astype(x.dtype, copy=False)

    def grad(self, gy, x, y):
        return gy * (exp(-(x * x)) * -_TWO_OVER_ROOT_PI)


class Erfinv(_Unary):
    """y = erf^-1(x) (NaN outside [-1, 1], +-inf at +-1); gx = gy sqrt(pi)/2 exp(y^2)."""

    def compute(self, x):
        return _special.erfinv(x).astype(x.dtype, copy=False)

    def grad(self, gy, x, y):
        return gy * (exp(y * y) * _ROOT_PI_OVER_2)


erf = _float_unary(Erf, "erf")
erfc = _float_unary(Erfc, "erfc")
erfinv = _float_unary(Erfinv, "erfinv")


def _sign_array(x):
    if x.dtype == np.bool_:
        return x.copy()
    if x.dtype.kind == "u":
        return _arr((x > 0).astype(x.dtype))
    # comparisons, not xp.sign: torch's sign is 0 at NaN and +0.0 at -0.0
    return _arr((x > 0).astype(x.dtype) - (x < 0).astype(x.dtype))


def sign(input) -> Tensor:
    """-1, 0 or 1 by the sign of each entry (0 at NaN, as torch), in the input's dtype; the
    gradient is zero."""
    x = as_tensor(input)
    return _Flat(_sign_array)(x) if _is_float(x) else _wrap(_sign_array(x.data))


sgn = sign  # (torch's sgn differs from sign only for complex numbers)


def _rounding(name: str, ufunc: str):
    def apply(input) -> Tensor:
        x = as_tensor(input)
        if x.dtype == np.bool_:
            raise TypeError(f"{name}: not defined for bool tensors (torch refuses them too)")
        if not _is_float(x):
            return _wrap(x.data.copy())  # integers are whole already; torch keeps the dtype
        return _Flat(lambda a: getattr(backend.get_array_module(a), ufunc)(a))(x)
    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = (f"``torch.{name}``: integer tensors are returned as they are; the "
                     "gradient is zero.")
    return apply


floor = _rounding("floor", "floor")
ceil = _rounding("ceil", "ceil")
trunc = fix = _rounding("trunc", "trunc")


def _round_array(x, decimals: int):
    xp = backend.get_array_module(x)
    if decimals == 0:
        return xp.rint(x)  # half to even, as torch
    # scaled in float32 for float16, as torch's kernels do (its opmath type)
    a = x.astype(np.float32) if x.dtype == np.float16 else x
    scale = a.dtype.type(10.0 ** builtins.abs(decimals))
    out = xp.rint(a * scale) / scale if decimals > 0 else xp.rint(a / scale) * scale
    return out.astype(x.dtype, copy=False)


def round(input, *, decimals: int = 0) -> Tensor:
    """Round half to even, to ``decimals`` places (negative: to tens, hundreds, ...), as
    ``torch.round``; integer tensors are returned as they are (with decimals 0). The gradient is
    zero."""
    x = as_tensor(input)
    if isinstance(decimals, (bool, np.bool_)) or not isinstance(decimals, (int, np.integer)):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    if x.dtype == np.bool_:
        raise TypeError("round: not defined for bool tensors (torch refuses them too)")
    if not _is_float(x):
        if decimals != 0:
            raise TypeError(f"round: decimals={decimals} needs a floating-point tensor, got "
                            f"{x.dtype} (torch refuses it too)")
        return _wrap(x.data.copy())
    d = int(decimals)
    return _Flat(lambda a: _round_array(a, d))(x)


def frac(input) -> Tensor:
    """``x - trunc(x)``, with the sign of x; floating-point tensors only (as torch). The
    gradient is 1."""
    x = as_tensor(input)
    if not _is_float(x):
        raise TypeError(f"frac: needs a floating-point tensor, got {x.dtype} (torch refuses "
                        "integers too)")
    return Frac()(x)


# ----------------------------------------------------------------------------- two operands

def _check_operand(fn: str, v) -> None:
    if isinstance(v, Tensor):
        return
    if isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating)):
        return
    if isinstance(v, np.ndarray) or backend.is_cupy_array(v):
        return
    raise TypeError(f"{fn}: expected tensors or real numbers, got {type(v).__name__} ({v!r})")


def _operands(fn: str, a, b, floating: bool = False):
    """Two operands as tensors of one dtype (torch's promotion; ``floating``: at least
    float32), on one device, with shapes that broadcast. Numbers become constants on the
    tensor's device. Casting a tensor that needs a gradient is recorded (``astype``)."""
    _check_operand(fn, a)
    _check_operand(fn, b)
    if floating and result_type(a, b).kind != "f":
        # integer and bool tensors go to float32 each from its own dtype, as torch computes
        # them, not through their common integer dtype first (where a 0-d int64 300 would
        # wrap to 44 beside a uint8 tensor)
        a = _to_float(a) if isinstance(a, Tensor) else a
        b = _to_float(b) if isinstance(b, Tensor) else b
    a, b = _binary(a, b)
    if floating and a.dtype.kind != "f":
        a, b = _to_float(a), _to_float(b)
    backend.check_same_device(a.data, b.data, what=fn)
    _broadcast_check(fn, a.shape, b.shape)
    return a, b


class _Extremum(Function):
    """y = maximum(a, b) (``largest``) or minimum(a, b), NaN if either is; the gradient goes to
    the larger (smaller) side, half to each at a tie, and all of it to both where NaN was
    met (torch's masks). Linear in gy with constant masks, so exact at every order."""

    def __init__(self, largest: bool):
        self.largest = largest

    def forward(self, a, b):
        xp = backend.get_array_module(a, b)
        return (xp.maximum if self.largest else xp.minimum)(a, b)

    def backward(self, gy):
        a, b = self.inputs
        av, bv = a.data, b.data
        tie = av == bv
        half = where(tie, gy * 0.5, gy)
        a_loses, b_loses = (av < bv, av > bv) if self.largest else (av > bv, av < bv)
        ga = sum_to(where(a_loses, 0.0, half), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(where(b_loses, 0.0, half), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class _FExtremum(Function):
    """y = fmax(a, b) (``largest``) or fmin(a, b): NaN only where both are; the gradient goes
    to a where a wins or ties or b is NaN, else to b (torch's convention)."""

    def __init__(self, largest: bool):
        self.largest = largest

    def forward(self, a, b):
        xp = backend.get_array_module(a, b)
        return (xp.fmax if self.largest else xp.fmin)(a, b)

    def backward(self, gy):
        a, b = self.inputs
        xp = _xp(a)
        av, bv = a.data, b.data
        to_a = ((av >= bv) if self.largest else (av <= bv)) | xp.isnan(bv)
        ga = sum_to(where(to_a, gy, 0.0), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(where(to_a, 0.0, gy), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def _extremum(fn: str, cls, largest: bool, a, b) -> Tensor:
    a, b = _operands(fn, a, b)
    if not _is_float(a):  # no gradient: the plain array op, in the integer or bool dtype
        xp = _xp(a)
        op = {("maximum", True): xp.maximum, ("minimum", False): xp.minimum,
              ("fmax", True): xp.fmax, ("fmin", False): xp.fmin}[fn, largest]
        return _wrap(op(a.data, b.data))
    return cls(largest)(a, b)


def maximum(input, other) -> Tensor:
    """Elementwise larger value (NaN wins); at a tie each side gets half the gradient, as in
    torch. Python numbers are accepted as either operand (torch wants tensors)."""
    return _extremum("maximum", _Extremum, True, input, other)


def minimum(input, other) -> Tensor:
    """Elementwise smaller value; see ``maximum``."""
    return _extremum("minimum", _Extremum, False, input, other)


def fmax(input, other) -> Tensor:
    """Elementwise larger value, ignoring a NaN on one side (``torch.fmax``)."""
    return _extremum("fmax", _FExtremum, True, input, other)


def fmin(input, other) -> Tensor:
    """Elementwise smaller value, ignoring a NaN on one side (``torch.fmin``)."""
    return _extremum("fmin", _FExtremum, False, input, other)


class Atan2(Function):
    """y = atan2(a, b), the angle of the point (b, a); ga = gy b / (a^2 + b^2),
    gb = -gy a / (a^2 + b^2), both 0 where a^2 + b^2 is 0 (at the origin, or where it
    underflows), as in torch. (There the second order is 0 too, where torch's is NaN.)"""

    def forward(self, a, b):
        return backend.get_array_module(a, b).arctan2(a, b)

    def backward(self, gy):
        a, b = self.inputs
        r2 = a * a + b * b
        zero = r2.data == 0
        # 1 swapped in before the reciprocal, so that no infinity meets the zero weight
        r = where(zero, 0.0, reciprocal(where(zero, 1.0, r2)))
        ga = sum_to(gy * b * r, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy * -a * r, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def atan2(input, other) -> Tensor:
    """``torch.atan2(input, other)``: the angle of (other, input) in [-pi, pi]; integer
    tensors give float32."""
    a, b = _operands("atan2", input, other, floating=True)
    return Atan2()(a, b)


arctan2 = atan2


class Lerp(Function):
    """y = a + w (b - a), computed as torch does (from the nearer end: exact at w = 0 and 1);
    ga = gy (1 - w), gb = gy w, gw = gy (b - a)."""

    def forward(self, a, b, w):
        xp = backend.get_array_module(a, b, w)
        d = b - a
        return xp.where(xp.abs(w) < 0.5, a + w * d, b - d * (1 - w))

    def backward(self, gy):
        a, b, w = self.inputs
        need = self.needs_input_grad
        ga = sum_to(gy * (1.0 - w), a.shape) if need[0] else None
        gb = sum_to(gy * w, b.shape) if need[1] else None
        gw = sum_to(gy * (b - a), w.shape) if need[2] else None
        return ga, gb, gw


def lerp(input, end, weight) -> Tensor:
    """``input + weight * (end - input)``, as ``torch.lerp``: ``input`` and ``end`` are
    floating-point tensors of one dtype; ``weight`` is a number or a tensor of that dtype (a
    0-d one is cast). All three broadcast together and all are differentiable."""
    a, b = as_tensor(input), as_tensor(end, input if isinstance(input, Tensor) else None)
    if not _is_float(a) or not _is_float(b):
        raise TypeError(f"lerp: input and end must be floating-point tensors, got {a.dtype} "
                        f"and {b.dtype}")
    if a.dtype != b.dtype:
        raise TypeError(f"lerp: input and end must have one dtype, got {a.dtype} and "
                        f"{b.dtype}")
    backend.check_same_device(a.data, b.data, what="lerp")
    if isinstance(weight, Tensor):
        backend.check_same_device(a.data, weight.data, what="lerp")
        if weight.dtype != a.dtype:
            if weight.ndim or not _is_float(weight):
                raise TypeError(f"lerp: weight must have the dtype of input ({a.dtype}), got "
                                f"{weight.dtype}")
            weight = astype(weight, a.dtype)
        w = weight
    else:
        _check_operand("lerp", weight)
        w = Tensor(_xp(a).full((), weight, dtype=a.dtype))
    _broadcast_check("lerp", a.shape, b.shape, w.shape)
    return Lerp()(a, b, w)


# ----------------------------------------------------------------------------- along one axis

def _shift_array(x, axis: int, s: int, fill):
    """y[..., i, ...] = x[..., i + s, ...] along ``axis``, ``fill`` where i + s is outside."""
    xp = backend.get_array_module(x)
    y = xp.full(x.shape, fill, dtype=x.dtype)
    n = x.shape[axis]
    if builtins.abs(s) < n:
        lead = (slice(None),) * axis
        if s >= 0:
            y[lead + (slice(0, n - s),)] = x[lead + (slice(s, n),)]
        else:
            y[lead + (slice(-s, n),)] = x[lead + (slice(0, n + s),)]
    return y


class _Shift(Function):
    """y_i = x_{i+s} along ``axis`` (the constant ``fill`` past the ends); gx = gy shifted by
    -s with zeros past the ends."""

    saves_inputs = False

    def __init__(self, axis: int, s: int, fill=0):
        self.axis, self.s, self.fill = axis, s, fill

    def forward(self, x):
        return _shift_array(x, self.axis, self.s, self.fill)

    def backward(self, gy):
        return _Shift(self.axis, -self.s)(gy)


class _Flip(Function):
    """y = x reversed along ``axis``; gx = gy reversed."""

    saves_inputs = False

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        return backend.get_array_module(x).flip(x, axis=self.axis)

    def backward(self, gy):
        return _Flip(self.axis)(gy)


def _span(axis: int, start: int, stop: int) -> tuple:
    return (slice(None),) * axis + (slice(start, stop),)


def _suffix_scan(m: Tensor, g: Tensor, axis: int) -> Tensor:
    """a with a_i = g_i + m_i a_{i+1} along ``axis`` (a = g at the last index): the linear
    recurrence that runs a cumulative product's gradient backwards, by log2(n) doubling steps
    of differentiable ops. No division, so exact where the products hold zeros, at every
    order of differentiation. Each step updates only the entries whose partner i + s exists
    (slices, not a zero-filled shift, which would give inf * 0 = NaN beside an inf)."""
    n = g.shape[axis]
    a, s = g, 1
    while s < n:  # a_i, m_i cover the indices i .. i + 2s - 1 after this step
        head, tail, rest = _span(axis, 0, n - s), _span(axis, s, n), _span(axis, n - s, n)
        mh = GetItem(head)(m)
        a = concat([GetItem(head)(a) + mh * GetItem(tail)(a), GetItem(rest)(a)], axis)
        if 2 * s < n:
            m = concat([mh * GetItem(tail)(m), GetItem(rest)(m)], axis)
        s *= 2
    return a


def _cumprod_grad_array(x, y, gy, axis: int):
    """Cumprod's first-order gradient on arrays, with torch's convention that a zero factor
    wins over inf and NaN ones (a term that holds a zero input is 0): the same recurrence as
    ``_suffix_scan``, with every product that meets a zero of x set to 0."""
    xp = backend.get_array_module(x)
    n = x.shape[axis]
    zero = xp.zeros((), dtype=x.dtype)
    with np.errstate(all="ignore"):
        # x_0 ... x_{i-1}, 0 where one of them is 0
        zero_before = _shift_array(xp.cumsum(x == 0, axis=axis), axis, -1, 0) > 0
        before = _shift_array(y, axis, -1, 1)
        m = _shift_array(x, axis, 1, 0)  # m_i = x_{i+1}: the product of the covered inputs
        a = gy.astype(x.dtype, copy=True)
        s = 1
        while s < n:
            head, tail = _span(axis, 0, n - s), _span(axis, s, n)
            mh = m[head]
            a[head] = a[head] + xp.where(mh == 0, zero, mh * a[tail])
            if 2 * s < n:
                mt = m[tail]
                m[head] = xp.where((mh == 0) | (mt == 0), zero, mh * mt)
            s *= 2
        return xp.where(zero_before, zero, before * a)


def _accumulate(scan, x, axis: int):
    """A running sum or product in x's own dtype, as torch's: float16 accumulates in float32
    (torch's CPU kernels carry a float32 running value, rounded once per output; float16 steps
    would drift: 2000 times 0.1 gives 230, not 200), and integers in their dtype (NumPy would
    widen int8 to int64), wrapping as torch's do when ``dtype=`` asks for a small type."""
    acc = np.float32 if x.dtype == np.float16 else x.dtype
    with np.errstate(over="ignore"):  # (beyond float16's range is inf, quietly, as in torch)
        return scan(x, axis=axis, dtype=acc).astype(x.dtype, copy=False)


class Cumsum(Function):
    """y_i = x_0 + ... + x_i along ``axis``; gx_i = gy_i + ... + gy_{n-1} (a reversed
    cumsum)."""

    saves_inputs = False

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        return _accumulate(backend.get_array_module(x).cumsum, x, self.axis)

    def backward(self, gy):
        a = self.axis
        return _Flip(a)(Cumsum(a)(_Flip(a)(gy)))


class Cumprod(Function):
    """y_i = x_0 ... x_i along ``axis``; gx_i = (x_0 ... x_{i-1}) sum_{k>=i} gy_k
    x_{i+1} ... x_k: the exclusive product is y shifted by one, the sum a ``_suffix_scan``.
    Exact with zeros in x. A plain backward (no ``create_graph``) follows torch's first-order
    convention where a zero and an inf or NaN meet in one product: the zero wins (0, not
    NaN); with ``create_graph`` the products are plain IEEE ones, as torch's are then."""

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        return _accumulate(backend.get_array_module(x).cumprod, x, self.axis)

    def backward(self, gy):
        a = self.axis
        if not is_grad_enabled():  # a plain backward: torch's first-order convention
            return Tensor(_cumprod_grad_array(self.inputs[0].data, self.output().data,
                                              gy.data, a))
        before = _Shift(a, -1, 1)(self.output())
        return before * _suffix_scan(_Shift(a, 1)(self.inputs[0]), gy, a)


def _logcumsumexp_array(x, axis: int):
    """log(cumsum(exp(x))) by log2(n) doubling steps of logaddexp, which stay exact where the
    terms differ by more than the dtype's range (-1000 then 0 gives -1000, 0)."""
    xp = backend.get_array_module(x)
    n = x.shape[axis]
    y, s = x, 1
    while s < n:
        y = xp.logaddexp(y, _shift_array(y, axis, -s, -np.inf))
        s *= 2
    return y.copy() if y is x else y


class LogCumSumExp(Function):
    """y_i = log(exp(x_0) + ... + exp(x_i)) along ``axis``; gx_i = sum_{k>=i} gy_k
    exp(x_i - y_k), summed in log space separately for the positive and the negative gy (as
    torch), so that nothing overflows."""

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        if x.dtype == np.float16:  # a float32 running value, as torch's kernel
            with np.errstate(over="ignore"):
                return _logcumsumexp_array(x.astype(np.float32), self.axis).astype(np.float16)
        return _logcumsumexp_array(x, self.axis)

    def backward(self, gy):
        a = self.axis
        x, y = self.inputs[0], self.output()
        lowest = float(np.finfo(x.dtype).min)

        def part(mask):
            # log|gy| where the mask holds; |gy| is swapped for 1 elsewhere before the log, so
            # that no 0 reaches it (its derivative there would be inf * 0)
            lg = where(mask, log(where(mask, abs(gy), 1.0)), lowest)
            return exp(_Flip(a)(LogCumSumExp(a)(_Flip(a)(lg - y))) + x)
        return part(gy.data > 0) - part(gy.data < 0)


def _cast(fn: str, x: Tensor, dtype) -> Tensor:
    if dtype is None:
        return x
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{fn}: dtype {dtype!r} is not a dtype") from None
    return astype(x, dt)


def _integers_as(fn: str, x: Tensor, dtype, bool_ok: bool) -> Tensor:
    """An integer or bool ``x`` in the dtype it accumulates in, as torch's: int64 when no
    ``dtype`` was given, else the dtype asked for (torch keeps it: int8 wraps), which must not
    be bool for a sum (torch has no bool kernel for cumsum and cumprod)."""
    if _is_float(x):
        return x
    if dtype is None:
        return Tensor(x.data.astype(np.int64))
    if x.dtype == np.bool_ and not bool_ok and x.ndim and x.size:
        # (a 0-d or empty tensor comes back as it is, as torch's, which runs no kernel there)
        raise TypeError(f"{fn}: dtype=bool is not supported (torch refuses it too)")
    return x


def _along(fn: str, input, dim, dtype, make) -> Tensor:
    """A cumulative op along ``dim``; integer and bool tensors are summed or multiplied in int64
    (or in ``dtype``), as torch does. A 0-d tensor is its own cumulative result (dim 0 or
    -1)."""
    x = _cast(fn, as_tensor(input), dtype)
    if dim is None:
        raise TypeError(f"{fn}: dim is required (the dimension to accumulate along)")
    d = _dim(fn, dim, x.ndim)
    x = _integers_as(fn, x, dtype, bool_ok=False)
    if x.ndim == 0:
        return reshape(make(0)(reshape(x, (1,))), ())
    return make(d)(x)


def cumsum(input, dim, *, dtype=None) -> Tensor:
    """Running sum along ``dim`` (``torch.cumsum``); integers and bools accumulate in int64,
    ``dtype`` casts the input first."""
    return _along("cumsum", input, dim, dtype, Cumsum)


def cumprod(input, dim, *, dtype=None) -> Tensor:
    """Running product along ``dim`` (``torch.cumprod``); the gradient is exact where the input
    has zeros (no division), at every order."""
    return _along("cumprod", input, dim, dtype, Cumprod)


def logcumsumexp(input, dim) -> Tensor:
    """``log(cumsum(exp(input), dim))`` without overflow (``torch.logcumsumexp``);
    floating-point tensors only, as torch."""
    x = as_tensor(input)
    if not _is_float(x):
        raise TypeError(f"logcumsumexp: needs a floating-point tensor, got {x.dtype}")
    if x.ndim == 0 and dim is not None:
        _dim("logcumsumexp", dim, 0)
        return clone(x)  # the value itself, with gradient 1 even at NaN and inf, as torch's
    return _along("logcumsumexp", x, dim, None, LogCumSumExp)


# ----------------------------------------------------------------------------- reductions

class Prod(Function):
    """y = the product of x along ``axis``; gx_i = gy * (product of the entries before i) *
    (product of those after), two exclusive cumulative products: exact where x has one zero or
    several (no division, no test of the values), and differentiable again through
    ``cumprod``. For the product of all entries (``whole``) a plain backward (no
    ``create_graph``) gives 0 everywhere when x holds two zeros or more, as torch's does: the
    exact value for finite x, and 0 rather than NaN where an inf or NaN meets the zeros."""

    def __init__(self, axis: int, keepdims: bool, whole: bool = False):
        self.axis, self.keepdims, self.whole = axis, keepdims, whole

    def forward(self, x):
        # integers (and bools) in their own dtype, as torch's: NumPy would widen int8 to int64
        dt = None if x.dtype.kind == "f" else x.dtype
        return backend.get_array_module(x).prod(x, axis=self.axis, keepdims=self.keepdims,
                                                dtype=dt)

    def backward(self, gy):
        a, x = self.axis, self.inputs[0]
        before = _Shift(a, -1, 1)(cumprod(x, a))
        after = _Flip(a)(_Shift(a, -1, 1)(cumprod(_Flip(a)(x), a)))
        if not self.keepdims:
            gy = reshape(gy, x.shape[:a] + (1,) + x.shape[a + 1:])
        gx = gy * (before * after)
        if self.whole and not is_grad_enabled():
            # a device-side test (no host read): each product of the others holds a zero
            xp = _xp(x)
            two = (x.data == 0).sum() >= 2
            gx = Tensor(xp.where(two, xp.zeros((), dtype=gx.dtype), gx.data))
        return gx


def prod(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Product of all entries, or along the one int ``dim`` (``torch.prod``); integers and
    bools multiply in int64, ``dtype`` casts the input first (and is the result's dtype, an
    integer or bool one too). The gradient is exact where the input holds zeros (see
    ``Prod``)."""
    x = _cast("prod", as_tensor(input), dtype)
    x = _integers_as("prod", x, dtype, bool_ok=True)
    if dim is None:
        out = Prod(0, False, whole=True)(reshape(x, (-1,)))
        return reshape(out, (1,) * x.ndim) if keepdim else out
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, (bool, np.bool_)):
        raise TypeError(f"prod: dim must be one int, got {dim!r} (torch.prod reduces one "
                        "dimension or all of them)")
    d = _dim("prod", dim, x.ndim)
    if x.ndim == 0:  # dim 0 or -1 of a 0-d tensor: the value itself
        return reshape(Prod(0, False)(reshape(x, (1,))), ())
    return Prod(d, bool(keepdim))(x)


_INF = math.inf


class _VectorNorm(Function):
    """y = (sum |x|^p)^(1/p) over ``axis`` (p = inf: max |x|, -inf: min |x|, 0: the number of
    nonzero entries); the gradient is torch's ``vector_norm`` one: x / y for p = 2 and sign(x)
    for p = 1, split evenly among the entries that reach the max or min for p = +-inf, zero for
    p = 0, and zero where y = 0 for p >= 1 (NaN where y is NaN, as in torch). Built from
    differentiable ops on x and y, so exact at higher orders (away from zero entries, where
    |x|^(p-1) has no derivative)."""

    def __init__(self, p: float, axis: tuple, keepdims: bool):
        self.p, self.axis, self.keepdims = p, axis, keepdims

    def forward(self, x):
        with np.errstate(all="ignore"):  # |0|^p for p < 0 is inf, quietly, as in torch
            return self._norm(x)

    def _norm(self, x):
        xp = backend.get_array_module(x)
        p, ax = self.p, self.axis
        # float16 is summed in float32, as torch accumulates it
        xf = x.astype(np.float32) if x.dtype == np.float16 else x
        if p == 2:
            y = xp.sqrt((xf * xf).sum(axis=ax, keepdims=True))
        elif p == 1:
            y = xp.abs(xf).sum(axis=ax, keepdims=True)
        elif p == _INF:
            y = xp.abs(xf).max(axis=ax, keepdims=True)
        elif p == -_INF:
            y = xp.abs(xf).min(axis=ax, keepdims=True)
        elif p == 0:
            y = (xf != 0).sum(axis=ax, keepdims=True).astype(xf.dtype)
        else:
            y = (xp.abs(xf) ** xf.dtype.type(p)).sum(axis=ax, keepdims=True) \
                ** xf.dtype.type(1.0 / p)
        y = xp.asarray(y).astype(x.dtype, copy=False)
        if not self.keepdims:
            y = y.reshape(tuple(s for i, s in enumerate(x.shape) if i not in ax))
        return y

    def backward(self, gy):
        x, p = self.inputs[0], self.p
        xp = _xp(x)
        kshape = tuple(1 if i in self.axis else s for i, s in enumerate(x.shape))
        y = reshape(self.output(), kshape)
        gy = reshape(gy, kshape)
        if p == 0:
            return Tensor(xp.zeros_like(x.data))
        sgn = Tensor(_sign_array(x.data))
        if p == 1:
            return gy * sgn
        if p in (_INF, -_INF):
            ax = xp.abs(x.data)
            hit = ((ax == y.data) | xp.isnan(ax)).astype(x.dtype)
            return gy * Tensor(xp.asarray(sgn.data * hit / hit.sum(axis=self.axis,
                                                                     keepdims=True)))
        if p < 1:
            # sign(x) |x|^(p-1), 0 at x = 0 (|x| swapped for 1 there before the power, so
            # that no infinity meets a zero weight), times gy * y^(1-p)
            nz = x.data != 0
            s = sgn * where(nz, pow(where(nz, abs(x), 1.0), p - 1.0), 0.0)
            return s * gy * pow(y, 1.0 - p)
        # zero gradient at y = 0, where x / y would be 0 / 0; a NaN y spreads, as in torch
        pos = y.data != 0
        scale = where(pos, gy / pow(where(pos, y, 1.0), p - 1.0), 0.0)
        if p == 2:
            return x * scale
        s = x * pow(abs(x), p - 2.0) if p >= 2 else sgn * pow(abs(x), p - 1.0)
        return s * scale


def norm(input, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """``torch.norm``: the vector p-norm of ``input`` over ``dim`` (all entries by default).

    ``p`` is 'fro' (the 2-norm over one or two dims, or all) or a number: 2, 1, inf, -inf, 0
    (the count of nonzero entries) or any other real p, ``(sum |x|^p)^(1/p)``. The nuclear
    norm ('nuc') is not supported. ``dtype`` casts the input first. Floating-point tensors
    only, as torch. The gradient at a zero norm is 0 for p >= 1, as in torch.
    """
    x = _cast("norm", as_tensor(input), dtype)
    if not _is_float(x):
        raise TypeError(f"norm: expected a floating-point tensor, got {x.dtype}; cast it "
                        "(x.float()) or pass dtype=")
    if p is None:
        p = "fro"
    if isinstance(p, str):
        if p == "nuc":
            raise NotImplementedError("norm: p='nuc' (the nuclear norm) is not supported by "
                                      "minigan")
        if p != "fro":
            raise ValueError(f"norm: p must be 'fro', 'nuc' or a number, got {p!r}")
        if isinstance(dim, (tuple, list)) and len(dim) > 2:
            raise ValueError(f"norm: p='fro' takes at most 2 dims, got dim={tuple(dim)}")
        p = 2.0
    elif isinstance(p, (int, float, np.integer, np.floating)) and not math.isnan(p):
        p = float(p)
    else:
        raise TypeError(f"norm: p must be 'fro' or a real number, got {p!r}")
    axes = _norm_axis(dim, x.ndim, "norm")
    if (p < 0 or p == _INF) and builtins.any(x.shape[a] == 0 for a in axes):
        raise RuntimeError(f"norm: the {p:g} norm over an empty dimension is undefined (shape "
                           f"{tuple(x.shape)}, dims {axes}): for p = inf and p < 0 the "
                           "reduction has no identity (torch refuses it too)")
    return _VectorNorm(p, axes, bool(keepdim))(x)


def _bool_reduce(fn: str, input, dim, keepdim):
    """``torch.any``/``torch.all``: bool results (uint8 for uint8 input, as torch), no
    gradient. ``dim`` is an int or a tuple; an empty tuple reduces nothing, as in torch."""
    x = as_tensor(input)
    xp = _xp(x)
    axes = None if dim is None else _norm_axis(dim, x.ndim, fn, empty_is_all=False)
    out = xp.asarray(getattr(xp, fn)(x.data, axis=axes, keepdims=bool(keepdim)))
    return _wrap(out.astype(np.uint8) if x.dtype == np.uint8 else out)


def any(input, dim=None, keepdim: bool = False) -> Tensor:
    """Whether any entry is nonzero (NaN counts as nonzero), over ``dim`` or everything."""
    return _bool_reduce("any", input, dim, keepdim)


def all(input, dim=None, keepdim: bool = False) -> Tensor:
    """Whether every entry is nonzero, over ``dim`` or everything."""
    return _bool_reduce("all", input, dim, keepdim)


def count_nonzero(input, dim=None) -> Tensor:
    """The number of nonzero entries over ``dim`` (an int, a tuple, or everything) as int64."""
    x = as_tensor(input)
    axes = _norm_axis(dim, x.ndim, "count_nonzero")
    xp = _xp(x)
    return _wrap(xp.asarray((x.data != 0).sum(axis=axes), dtype=np.int64))


# ----------------------------------------------------------------------------- predicates

def isnan(input) -> Tensor:
    x = as_tensor(input)
    xp = _xp(x)
    return _wrap(xp.isnan(x.data) if _is_float(x) else xp.zeros(x.shape, dtype=bool))


def isinf(input) -> Tensor:
    x = as_tensor(input)
    xp = _xp(x)
    return _wrap(xp.isinf(x.data) if _is_float(x) else xp.zeros(x.shape, dtype=bool))


def isposinf(input) -> Tensor:
    x = as_tensor(input)
    return _wrap(x.data == np.inf if _is_float(x) else _xp(x).zeros(x.shape, dtype=bool))


def isneginf(input) -> Tensor:
    x = as_tensor(input)
    return _wrap(x.data == -np.inf if _is_float(x) else _xp(x).zeros(x.shape, dtype=bool))


def isfinite(input) -> Tensor:
    x = as_tensor(input)
    xp = _xp(x)
    return _wrap(xp.isfinite(x.data) if _is_float(x) else xp.ones(x.shape, dtype=bool))


def signbit(input) -> Tensor:
    """Whether the sign bit is set: True for -0.0 and negative NaNs too (``torch.signbit``)."""
    x = as_tensor(input)
    xp = _xp(x)
    if _is_float(x):
        return _wrap(xp.signbit(x.data))
    if x.dtype.kind == "i":
        return _wrap(x.data < 0)
    return _wrap(xp.zeros(x.shape, dtype=bool))


def _same_dtype_operands(fn: str, input, other):
    """``isclose``/``allclose`` operands: tensors of one dtype, as torch demands (a number
    takes the tensor's dtype)."""
    a = as_tensor(input)
    if isinstance(other, Tensor):
        b = other
        if a.dtype != b.dtype:
            raise TypeError(f"{fn}: input and other must have one dtype, got {a.dtype} and "
                            f"{b.dtype}")
        backend.check_same_device(a.data, b.data, what=fn)
    else:
        _check_operand(fn, other)
        b = Tensor(_xp(a).asarray(other, dtype=a.dtype)) if hasattr(other, "shape") \
            else Tensor(_xp(a).full((), other, dtype=a.dtype))
        backend.check_same_device(a.data, b.data, what=fn)
    _broadcast_check(fn, a.shape, b.shape)
    return a, b


def _close_array(fn, a, b, rtol, atol, equal_nan):
    for name, v in (("rtol", rtol), ("atol", atol)):
        if not v >= 0:
            raise ValueError(f"{fn}: {name} must be >= 0, got {v}")
    xp = _xp(a)
    av, bv = a.data, b.data
    close = av == bv
    if equal_nan and _is_float(a):
        close = close | (xp.isnan(av) & xp.isnan(bv))
    if rtol == 0 and atol == 0:
        return close
    if not _is_float(a):  # torch measures integer and bool errors in float32
        av, bv = av.astype(np.float32), bv.astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, and not close
        allowed = atol + xp.abs(rtol * bv)
        err = xp.abs(av - bv)
        return close | (xp.isfinite(err) & (err <= allowed))


def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """``|input - other| <= atol + rtol * |other|`` elementwise, or equal (infinities match
    themselves; NaNs match only with ``equal_nan``), as ``torch.isclose``: one dtype for both."""
    a, b = _same_dtype_operands("isclose", input, other)
    return _wrap(_close_array("isclose", a, b, rtol, atol, equal_nan))


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """Whether ``isclose`` holds everywhere, as a Python bool (a host read: on the GPU it waits
    for the device)."""
    a, b = _same_dtype_operands("allclose", input, other)
    return bool(_close_array("allclose", a, b, rtol, atol, equal_nan).all())


def equal(input, other) -> bool:
    """Whether the two tensors have one shape and equal values (NaN equals nothing), as a
    Python bool like ``torch.equal`` (a host read on the GPU). Dtypes may differ."""
    a, b = as_tensor(input), as_tensor(other)
    backend.check_same_device(a.data, b.data, what="equal")
    if a.shape != b.shape:
        return False
    return bool((a.data == b.data).all())


class _NanToNum(Function):
    """y = x with NaN, +inf and -inf replaced by numbers; gx = gy * isfinite(x), as torch."""

    saves_inputs = False

    def __init__(self, nan, posinf, neginf):
        self.values = (nan, posinf, neginf)

    def forward(self, x):
        xp = backend.get_array_module(x)
        nan, posinf, neginf = self.values
        self.saved = xp.isfinite(x)
        y = xp.where(xp.isnan(x), nan, x)
        y = xp.where(x == np.inf, posinf, y)
        return xp.where(x == -np.inf, neginf, y)

    def backward(self, gy):
        return gy * _wrap(self.saved.astype(gy.dtype))


def nan_to_num(input, nan: float = 0.0, posinf=None, neginf=None) -> Tensor:
    """NaN -> ``nan``, +inf -> ``posinf`` and -inf -> ``neginf`` (the dtype's largest and
    lowest finite values by default), as ``torch.nan_to_num``; integer tensors come back as
    they are. The gradient passes where the input was finite and is 0 elsewhere."""
    x = as_tensor(input)
    if not _is_float(x):
        return _wrap(x.data.copy())
    info = np.finfo(x.dtype)
    t = x.dtype.type
    with np.errstate(over="ignore"):  # a replacement beyond the dtype's range becomes inf
        values = (t(nan), t(info.max if posinf is None else posinf),
                  t(info.min if neginf is None else neginf))
    return _NanToNum(*values)(x)


def _logical(fn: str):
    def apply(input, other) -> Tensor:
        _check_operand(fn, input)
        _check_operand(fn, other)
        a, b = as_tensor(input), as_tensor(other, input if isinstance(input, Tensor) else None)
        backend.check_same_device(a.data, b.data, what=fn)
        _broadcast_check(fn, a.shape, b.shape)
        return _wrap(getattr(_xp(a), fn)(a.data, b.data))
    apply.__name__ = apply.__qualname__ = fn
    apply.__doc__ = f"``torch.{fn}``: nonzero entries (NaN too) count as True; a bool tensor."
    return apply


logical_and = _logical("logical_and")
logical_or = _logical("logical_or")
logical_xor = _logical("logical_xor")


def logical_not(input) -> Tensor:
    x = as_tensor(input)
    return _wrap(_xp(x).logical_not(x.data))


# ----------------------------------------------------------------------------- more of torch's math

def clamp_min(input, min) -> Tensor:  # noqa: A002 - PyTorch's name
    """``torch.clamp_min``: ``clamp(input, min=min)``, a number or a tensor bound."""
    return _clamp(input, min=min)


def clamp_max(input, max) -> Tensor:  # noqa: A002 - PyTorch's name
    """``torch.clamp_max``: ``clamp(input, max=max)``, a number or a tensor bound."""
    return _clamp(input, max=max)


def _as_operand(v, dt, like: Tensor) -> Tensor:
    """A tensor cast to ``dt`` (a recorded cast) or a number as a 0-d constant of ``dt``."""
    if isinstance(v, Tensor):
        return v if v.dtype == dt else astype(v, dt)
    if isinstance(v, np.ndarray) or backend.is_cupy_array(v):
        return _as_operand(as_tensor(v), dt, like)
    return number_like(v, dt, like)


def _addc(fn: str, input, tensor1, tensor2, value, divide: bool) -> Tensor:
    ops = (input, tensor1, tensor2)
    for v in ops:
        _check_operand(fn, v)
    if isinstance(value, Tensor) or not isinstance(
            value, (bool, int, float, np.bool_, np.integer, np.floating)):
        raise TypeError(f"{fn}: value must be a real number, got {type(value).__name__}")
    if divide:
        kinds = [(v.dtype if isinstance(v, Tensor) else result_type(v)).kind
                 for v in (tensor1, tensor2)]
        if kinds[0] in "biu" and kinds[1] in "biu":
            raise TypeError(f"{fn}: integer division of tensor1 by tensor2 is not supported "
                            "(torch refuses it too); make one of them floating point")
    dt = result_type(*ops)
    if dt.kind in "biu" and isinstance(value, (float, np.floating)):
        raise TypeError(f"{fn}: value must be an integer for {dt} tensors, got {value!r} "
                        "(torch's rule)")
    if dt == np.bool_:
        raise TypeError(f"{fn}: not defined for bool tensors (torch refuses them too)")
    like = next(v for v in ops if isinstance(v, Tensor) or hasattr(v, "shape"))
    like = like if isinstance(like, Tensor) else as_tensor(like)
    a, b, c = (_as_operand(v, dt, like) for v in ops)
    backend.check_same_device(a.data, b.data, c.data, what=fn)
    _broadcast_check(fn, a.shape, b.shape, c.shape)
    if divide:  # torch's order of operations: input + value * (tensor1 / tensor2)
        term = b / c
        return a + (term if value == 1 else term * value)
    # ... and input + value * tensor1 * tensor2
    return a + ((b if value == 1 else b * value) * c)


def addcmul(input, tensor1, tensor2, *, value=1) -> Tensor:
    """``input + value * tensor1 * tensor2``, all three broadcast and promoted together, as
    ``torch.addcmul``; ``value`` is a number (an integer for integer tensors). Differentiable
    in all three tensors, to any order."""
    return _addc("addcmul", input, tensor1, tensor2, value, divide=False)


def addcdiv(input, tensor1, tensor2, *, value=1) -> Tensor:
    """``input + value * tensor1 / tensor2``, as ``torch.addcdiv``: integer ``tensor1`` and
    ``tensor2`` together are refused (torch's rule), otherwise as ``addcmul``."""
    return _addc("addcdiv", input, tensor1, tensor2, value, divide=True)


def _float_operands(fn: str, a, b):
    """Two operands of a function torch has only floating-point kernels for: integer and bool
    tensors are refused unless the other operand makes the pair floating point."""
    _check_operand(fn, a)
    _check_operand(fn, b)
    dt = result_type(a, b)
    if dt.kind != "f":
        raise TypeError(f"{fn}: expected floating-point operands, got {dt} (torch has no "
                        "integer kernel for it either); cast them, e.g. x.float()")
    return _operands(fn, a, b)


class Hypot(Function):
    """y = sqrt(a^2 + b^2) without overflow; ga = gy a / y, gb = gy b / y (NaN at the origin,
    as torch's)."""

    def forward(self, a, b):
        with np.errstate(all="ignore"):
            return backend.get_array_module(a, b).hypot(a, b)

    def backward(self, gy):
        a, b = self.inputs
        y = self.output()
        with np.errstate(all="ignore"):  # (0/0 at the origin, inf/inf: NaN, quietly)
            ga = sum_to(gy * a / y, a.shape) if self.needs_input_grad[0] else None
            gb = sum_to(gy * b / y, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def hypot(input, other) -> Tensor:
    """``torch.hypot``: ``sqrt(input^2 + other^2)`` elementwise, with no overflow in the
    squares; inf wherever either is infinite (a NaN beside it too). Floating point only."""
    a, b = _float_operands("hypot", input, other)
    return Hypot()(a, b)


class _Share(Function):
    """s = 1 / (1 + base^-d), the share of exp(a) in exp(a) + exp(b) for d = a - b (base e or
    2); gd = gy s (1 - s) ln(base). 0 and 1 at d = -inf and inf, NaN at NaN."""

    def __init__(self, base2: bool):
        self.base2 = base2

    def forward(self, d):
        xp = backend.get_array_module(d)
        with np.errstate(over="ignore"):  # base^-d beyond the range is inf: a share of 0
            return 1 / (1 + (xp.exp2 if self.base2 else xp.exp)(-d))

    def backward(self, gy):
        s = self.output()
        return gy * (s * (1.0 - s)) * (math.log(2.0) if self.base2 else 1.0)


class LogAddExp(Function):
    """y = log(exp(a) + exp(b)) (``base2``: log2(2^a + 2^b)); ga = gy / (1 + exp(b - a)),
    gb = gy / (1 + exp(a - b)) (2^ for base 2), torch's formulas: NaN where both are the same
    infinity, 0 and 1 where one of them is infinite."""

    def __init__(self, base2: bool):
        self.base2 = base2

    def forward(self, a, b):
        xp = backend.get_array_module(a, b)
        with np.errstate(all="ignore"):
            return (xp.logaddexp2 if self.base2 else xp.logaddexp)(a, b)

    def backward(self, gy):
        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = sum_to(gy * _Share(self.base2)(a - b), a.shape)
        if self.needs_input_grad[1]:
            gb = sum_to(gy * _Share(self.base2)(b - a), b.shape)
        return ga, gb


def logaddexp(input, other) -> Tensor:
    """``log(exp(input) + exp(other))`` without overflow (``torch.logaddexp``); floating
    point only."""
    a, b = _float_operands("logaddexp", input, other)
    return LogAddExp(False)(a, b)


def logaddexp2(input, other) -> Tensor:
    """``log2(2**input + 2**other)`` without overflow (``torch.logaddexp2``); floating point
    only."""
    a, b = _float_operands("logaddexp2", input, other)
    return LogAddExp(True)(a, b)


class Xlogy(Function):
    """y = x log(z), and 0 where x == 0 unless z is NaN (torch's xlogy); gx = xlogy(gy, z),
    but 0 where x == 0 and z <= 0, and gz = gy x / z (torch's formulas; the mask is constant,
    so exact again)."""

    def forward(self, x, z):
        xp = backend.get_array_module(x, z)
        with np.errstate(all="ignore"):
            y = x * xp.log(z)
        return xp.where((x == 0) & ~xp.isnan(z), y.dtype.type(0), y)

    def backward(self, gy):
        x, z = self.inputs
        gx = gz = None
        if self.needs_input_grad[0]:
            off = (x.data == 0) & (z.data <= 0)
            gx = sum_to(where(off, 0.0, Xlogy()(gy, z)), x.shape)
        if self.needs_input_grad[1]:
            with np.errstate(all="ignore"):  # (x / 0 is inf or NaN, quietly, as torch's)
                gz = sum_to(gy * x / z, z.shape)
        return gx, gz


def xlogy(input, other) -> Tensor:
    """``input * log(other)``, 0 where input is 0 (even where other is 0 or inf; NaN where
    other is NaN), as ``torch.xlogy``; either may be a number, and integers give float32."""
    a, b = _operands("xlogy", input, other, floating=True)
    return Xlogy()(a, b)


class Copysign(Function):
    """y = |a| with the sign (bit) of b; ga = gy * y / a (+-1, 0 where a is 0, NaN where a is
    inf or NaN: torch's formula), gb = 0. Both are piecewise constant, so exact again."""

    def forward(self, a, b):
        return backend.get_array_module(a, b).copysign(a, b)

    def backward(self, gy):
        a, b = self.inputs
        xp = _xp(a)
        ga = gb = None
        if self.needs_input_grad[0]:
            av = a.data
            with np.errstate(all="ignore"):
                ratio = xp.where(av == 0, av.dtype.type(0), self.output().data / av)
            ga = sum_to(gy * _wrap(ratio), a.shape)
        if self.needs_input_grad[1]:
            gb = Tensor(xp.zeros(b.shape, dtype=b.dtype))
        return ga, gb


def copysign(input, other) -> Tensor:
    """``torch.copysign``: the magnitude of ``input`` with the sign of ``other`` (-0.0 and
    negative NaNs count as negative); integers give float32, ``other`` may be a number."""
    a, b = _operands("copysign", input, other, floating=True)
    return Copysign()(a, b)


class Heaviside(Function):
    """y = 0 where x < 0 (and where x is NaN, as torch's kernel), ``values`` where x == 0, 1
    where x > 0; gx = 0 (piecewise constant), gvalues = gy where x == 0. (torch has no
    derivative for it and raises.)"""

    def forward(self, x, v):
        return _heaviside_array(x, v)

    def backward(self, gy):
        x, v = self.inputs
        gx = gv = None
        if self.needs_input_grad[0]:
            gx = Tensor(_xp(x).zeros(x.shape, dtype=x.dtype))
        if self.needs_input_grad[1]:
            gv = sum_to(where(x.data == 0, gy, 0.0), v.shape)
        return gx, gv


def _heaviside_array(x, v):
    xp = backend.get_array_module(x, v)
    return xp.where(x == 0, v, (x > 0).astype(x.dtype))


def heaviside(input, values) -> Tensor:
    """``torch.heaviside``: 0 for input < 0, ``values`` at input == 0, 1 for input > 0; both
    of one dtype, as torch demands (a number takes input's). ``values`` gets the gradient
    where input is 0; input gets none (a step function)."""
    x = as_tensor(input)
    if isinstance(values, Tensor):
        v = values
        if v.dtype != x.dtype:
            raise TypeError(f"heaviside: input and values must have one dtype, got {x.dtype} "
                            f"and {v.dtype} (torch refuses mixed dtypes too)")
    else:
        _check_operand("heaviside", values)
        v = _as_operand(values, x.dtype, x)
    backend.check_same_device(x.data, v.data, what="heaviside")
    _broadcast_check("heaviside", x.shape, v.shape)
    if not _is_float(x):
        return _wrap(_heaviside_array(x.data, v.data))
    return Heaviside()(x, v)


_FLOAT64 = np.dtype(np.float64)


class FloatPower(Function):
    """y = a ** b (float64); ga = gy b a^(b - 1), 0 where b == 0; gb = gy y log(a), 0 where
    a == 0 and b >= 0: torch's ``pow_backward`` (so -inf, not NaN, for 0 to a negative power).
    A base of 1 is swapped in where a mask holds, so no infinity meets it at higher orders."""

    def forward(self, a, b):
        with np.errstate(all="ignore"):  # a negative base to a fractional power is NaN
            return backend.get_array_module(a, b).power(a, b)

    def backward(self, gy):
        with np.errstate(all="ignore"):  # (inf and NaN at the edges, quietly, as torch's)
            return self._grads(gy)

    def _grads(self, gy):
        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:
            off = _xp(a).broadcast_to(b.data == 0, gy.shape)
            base = where(off, 1.0, a)
            ga = sum_to(where(off, 0.0, gy * b * pow(base, b - 1.0)), a.shape)
        if self.needs_input_grad[1]:
            off = (a.data == 0) & (b.data >= 0)
            base = where(off, 1.0, a)
            gb = sum_to(where(off, 0.0, gy * self.output() * log(base)), b.shape)
        return ga, gb


def float_power(input, exponent) -> Tensor:
    """``input ** exponent`` computed in float64, whatever the dtypes (``torch.float_power``);
    either may be a number, not both. The gradient is torch's (see ``FloatPower``) and comes
    back in each tensor's own dtype."""
    _check_operand("float_power", input)
    _check_operand("float_power", exponent)
    if not isinstance(input, Tensor) and not isinstance(exponent, Tensor):
        raise TypeError("float_power: expected a tensor among input and exponent, got "
                        f"{type(input).__name__} and {type(exponent).__name__}")

    def f64(v):
        if isinstance(v, Tensor) or hasattr(v, "shape"):
            return astype(as_tensor(v), _FLOAT64)
        return float(v)
    a, b = _operands("float_power", f64(input), f64(exponent))
    return FloatPower()(a, b)


class Sinc(_Unary):
    """y = sin(pi x) / (pi x), 1 at 0; gx = gy (cos(pi x) - y) / x. Below |x| = 0.01, where
    that difference cancels, its Taylor series -pi^2 x/3 + pi^4 x^3/30 - pi^6 x^5/840 +
    pi^8 x^7/45360 is used instead (0 at 0, with the exact derivatives there too)."""

    def compute(self, x):
        xp = backend.get_array_module(x)
        a = x.astype(np.float32) if x.dtype == np.float16 else x  # torch's float32 opmath
        px = a * a.dtype.type(math.pi)
        with np.errstate(all="ignore"):
            y = xp.where(a == 0, a.dtype.type(1), xp.sin(px) / px)
        return y.astype(x.dtype, copy=False)

    def grad(self, gy, x, y):
        small = abs(x.data) < 0.01
        xs = where(small, 1.0, x)  # 1 swapped in, so no 0/0 reaches a derivative
        direct = (cos(xs * math.pi) - y) / xs
        x2 = square(x)
        p2 = math.pi ** 2
        series = x * (x2 * (x2 * (x2 * (p2 ** 4 / 45360) - p2 ** 3 / 840) + p2 ** 2 / 30)
                      - p2 / 3)
        return gy * where(small, series, direct)


sinc = _float_unary(Sinc, "sinc")


def _scaled_float(fn: str, input, c: float) -> Tensor:
    x = _floating(fn, input)
    if x.dtype == np.float16:  # scaled in float32, as torch's opmath
        return astype(astype(x, np.float32) * c, np.float16)
    return x * c


def deg2rad(input) -> Tensor:
    """Degrees to radians, ``input * pi / 180``; integers and bools give float32."""
    return _scaled_float("deg2rad", input, math.pi / 180.0)


def rad2deg(input) -> Tensor:
    """Radians to degrees, ``input * 180 / pi``; integers and bools give float32."""
    return _scaled_float("rad2deg", input, 180.0 / math.pi)


class Logit(Function):
    """y = log(z / (1 - z)) with z = x clamped to [eps, 1 - eps] (x itself for ``eps`` None);
    gx = gy / (x (1 - x)) inside, 0 outside [eps, 1 - eps], and without eps NaN outside
    [0, 1] (torch's ``logit_backward``); at x = -0.0 as at +0.0. The masks are constant, so
    exact again."""

    def __init__(self, eps):
        self.eps = eps

    def forward(self, x):
        xp = backend.get_array_module(x)
        a = x.astype(np.float32) if x.dtype == np.float16 else x  # torch's float32 opmath
        if self.eps is not None:
            lo, hi = a.dtype.type(self.eps), a.dtype.type(1.0 - self.eps)
            # torch's order: below lo is lo, else above hi is hi (lo wins if lo > hi)
            a = xp.where(a < lo, lo, xp.where(a > hi, hi, a))
        with np.errstate(all="ignore"):
            return xp.log(a / (1 - a)).astype(x.dtype, copy=False)

    def backward(self, gy):
        x = self.inputs[0]
        xd = x.data
        if self.eps is None:
            outside, fill = (xd < 0) | (xd > 1), math.nan
        else:
            outside, fill = (xd < self.eps) | (xd > 1.0 - self.eps), 0.0
        safe = where(outside, 0.5, x)  # a harmless point outside, so no inf meets the mask
        # (+ 0.0 makes the product's -0.0 at x = -0.0 a +0.0: the derivative at 0 is +inf
        # from either zero, as torch's scalar loop gives; its vectorised one is not consistent)
        return where(outside, fill, gy / (safe * (1.0 - safe) + 0.0))


def logit(input, eps=None) -> Tensor:
    """``log(x / (1 - x))`` (``torch.logit``), with x clamped to [eps, 1 - eps] first when
    ``eps`` is given (a negative eps clamps nothing, as torch's); integers give float32."""
    x = _floating("logit", input)
    if eps is not None:
        if isinstance(eps, (bool, np.bool_)) or not isinstance(
                eps, (int, float, np.integer, np.floating)):
            raise TypeError(f"logit: eps must be a number or None, got {eps!r}")
        eps = float(eps)
        if eps < 0:
            eps = None
    return Logit(eps)(x)


def nansum(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum with NaN read as 0 (``torch.nansum``), over ``dim`` (an int, a tuple, or all);
    integers and bools sum in int64, ``dtype`` casts first. The gradient is 0 at the NaNs."""
    x = as_tensor(input)
    if _is_float(x):
        x = where(isnan(x), 0.0, x)
    return _sum(x, dim, bool(keepdim), dtype=dtype)


def nanmean(input, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean of the entries that are not NaN (``torch.nanmean``): NaN where all are; floating
    point only (``dtype``, a floating dtype, casts first). The gradient is 0 at the NaNs."""
    x = as_tensor(input)
    if not _is_float(x):
        raise TypeError(f"nanmean: expected a floating-point tensor, got {x.dtype} (torch "
                        "refuses integer and bool tensors too)")
    if dtype is not None:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"nanmean: dtype {dtype!r} is not a dtype") from None
        if dt.kind != "f":
            raise TypeError(f"nanmean: dtype must be a floating dtype, got {dt} (torch "
                            "refuses an integer or bool one too)")
        x = astype(x, dt)
    keep = ~_xp(x).isnan(x.data)
    total = _sum(where(keep, x, 0.0), dim, bool(keepdim))
    count = _arr(keep.sum(axis=_norm_axis(dim, x.ndim, "nanmean"), keepdims=bool(keepdim)))
    with np.errstate(invalid="ignore"):  # 0 / 0 where every entry is NaN: NaN, quietly
        return total / Tensor(count.astype(x.dtype))


class _AMinMax(tuple):
    """``(min, max)``, as torch's ``aminmax`` returns (``torch.return_types.aminmax``)."""

    __slots__ = ()
    min = property(lambda self: self[0])
    max = property(lambda self: self[1])

    def __repr__(self):
        return f"aminmax(min={self[0]!r}, max={self[1]!r})"


def aminmax(input, *, dim=None, keepdim: bool = False):
    """``(min, max)`` over one int ``dim`` or all entries, NaN if any is (``torch.aminmax``);
    each value's gradient is split evenly among the entries that reach it, as amin/amax."""
    x = as_tensor(input)
    if dim is None:
        axes = tuple(range(x.ndim))
    else:
        if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"aminmax: dim must be one int, got {dim!r}")
        axes = (_dim("aminmax", dim, x.ndim),) if x.ndim else ()
    if builtins.any(x.shape[a] == 0 for a in axes) or (dim is None and x.size == 0):
        raise RuntimeError(f"aminmax: cannot reduce over an empty dimension (shape "
                           f"{tuple(x.shape)}): min and max have no identity (torch refuses "
                           "it too)")
    if dim is not None and x.ndim == 0:
        return _AMinMax((clone(x), clone(x)))
    axis = None if dim is None else axes[0]
    keep = bool(keepdim)
    return _AMinMax((_amin(x, axis, keep), _amax(x, axis, keep)))


def diff(input, n=1, dim=-1, prepend=None, append=None) -> Tensor:
    """The n-th forward difference along ``dim`` (``torch.diff``), after ``prepend`` and
    ``append`` (tensors with input's shape but along dim) are joined on; bools give
    ``!=`` of neighbours. Built from slices and subtraction, so differentiable to any order."""
    x = as_tensor(input)
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"diff: n must be an int, got {n!r}")
    if n < 0:
        raise ValueError(f"diff: the order n must be non-negative, got {n}")
    if x.ndim == 0:
        raise ValueError("diff: expects input to be at least one-dimensional, got a 0-d "
                         "tensor")
    d = _dim("diff", dim, x.ndim)
    parts = [x]
    for name, v in (("prepend", prepend), ("append", append)):
        if v is None:
            continue
        if not (isinstance(v, Tensor) or isinstance(v, np.ndarray) or backend.is_cupy_array(v)):
            raise TypeError(f"diff: {name} must be a tensor, got {type(v).__name__}")
        v = as_tensor(v)
        if v.ndim != x.ndim or builtins.any(
                s != t for i, (s, t) in enumerate(zip(v.shape, x.shape)) if i != d):
            raise ValueError(f"diff: {name} must have input's shape {tuple(x.shape)} except "
                             f"along dim {d}, got {tuple(v.shape)}")
        backend.check_same_device(x.data, v.data, what="diff")
        parts.insert(0 if name == "prepend" else len(parts), v)
    y = concat(parts, d) if len(parts) > 1 else x
    for _ in range(builtins.min(n, y.shape[d])):
        m = y.shape[d]
        hi, lo = GetItem(_span(d, 1, m))(y), GetItem(_span(d, 0, m - 1))(y)
        y = logical_xor(hi, lo) if y.dtype == np.bool_ else hi - lo
    return clone(y) if y is x else y


def _moments(fn: str, stat, input, dim, unbiased, keepdim, correction):
    x = as_tensor(input)
    if not _is_float(x):
        raise TypeError(f"{fn}: expected a floating-point tensor, got {x.dtype} (torch "
                        "supports floating dtypes only)")
    dim, unbiased = _legacy_unbiased(fn, dim, unbiased)
    if unbiased is not None and correction is not None:
        raise TypeError(f"{fn}: give unbiased or correction, not both")
    keep = bool(keepdim)
    return (stat(x, dim, unbiased, keep, correction=correction), _mean(x, dim, keep))


def var_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """``(var, mean)`` over ``dim`` (``torch.var_mean``), with ``var``'s arguments: Bessel's
    correction by default, ``correction=`` or the legacy ``unbiased`` (positionally as in
    torch's ``var_mean(x, dim, unbiased, keepdim)``, or a bool where dim goes)."""
    return _moments("var_mean", _var, input, dim, unbiased, keepdim, correction)


def std_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """``(std, mean)`` over ``dim`` (``torch.std_mean``), with ``std``'s arguments (see
    ``var_mean``); where std is 0 its gradient is 0, as torch's."""
    return _moments("std_mean", _std, input, dim, unbiased, keepdim, correction)


# every function above is a Tensor method too (x.sin(), x.norm(1, dim=0), x.any(); also
# x.var_mean() and x.std_mean(), which torch's Tensor lacks), and so is square, which
# minigan.nn.functional already has
TENSOR_METHODS = {name: globals()[name] for name in __all__}
TENSOR_METHODS["square"] = square
