"""The error function and its relatives: arrays in, arrays out.

NumPy has no erf. ``erf_numpy``/``erfc_numpy`` compute it in float64 (any input dtype is read
as float64; the caller casts the result back) to within 3 ulp of the exact value everywhere,
subnormals, infinities and NaN included; ``erf``/``erfc`` call them for NumPy arrays and
CuPy's ``cupyx.scipy.special`` (``backend.cupyx_special``) for GPU arrays. ``erfinv`` runs
on either device.

The pieces, with a = |x| (references: Abramowitz & Stegun, "Handbook of Mathematical
Functions" (A&S), chapter 7; the NIST DLMF (dlmf.nist.gov), chapters 7 and 18):

* a < 0.5: the Maclaurin series erf(x) = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))
  (A&S 7.1.5), as x + x q(x^2) with q's constant term 2/sqrt(pi) - 1, so that the leading
  coefficient's rounding costs 0.13 ulp, not 1. Its terms fall by x^2/n, and at a < 0.5 they
  cancel by at most a tenth. erfc = 1 - erf there.
* 0.5 <= a < 2.5: erfc by Taylor's series about the nearest node c = k/16 (|h| = |a - c| <=
  1/32), erfc(c + h) = sum_k t_k(c) h^k by Horner's rule. The derivatives of erfc are Hermite
  polynomials (DLMF 7.10.1): erfc^(n+1)(c) = -(-1)^n 2/sqrt(pi) H_n(c) exp(-c^2), with
  H_(n+1) = 2c H_n - 2n H_(n-1) (DLMF 18.9.1), so t_0 = erfc(c) and t_(n+1) =
  -(-1)^n 2/sqrt(pi) exp(-c^2) H_n(c) / (n+1)!. Eight terms reach 1e-17; ten are taken. The
  table of t_k at the 33 nodes is computed once, in 60-digit decimal arithmetic (erfc(c) from
  the positive series erf(c) = 2/sqrt(pi) exp(-c^2) sum_n 2^n c^(2n+1) / (1 3 5 ... (2n+1)),
  A&S 7.1.6), and each entry is rounded once to float64.
* a >= 2.5: Laplace's continued fraction (A&S 7.1.14, DLMF 7.9.2)
  erfc(a) = exp(-a^2) / sqrt(pi) / (a + (1/2) / (a + 1 / (a + (3/2) / (a + 2 / (a + ...))))),
  evaluated from the 40th level back (relative truncation error below 5e-17 at a = 2.5,
  falling fast with a). exp(-a^2) takes a^2 = hi + lo exactly (Dekker's product, with
  Veltkamp's split of a into two 26-bit halves) as exp(-hi) (1 - lo): the rounding of a^2
  would otherwise cost a^2/2 ulp (hundreds, near the underflow at a = 27).
* erf = sign(x) (1 - erfc(a)) for a >= 0.5 (no cancellation: erfc(0.5) < 0.48), and
  erfc(x) = 2 - erfc(-x) for x <= -0.5.
"""
from __future__ import annotations

import functools
import math
from decimal import Decimal, localcontext

import numpy as np

from .. import backend

__all__ = ["erf", "erfc", "erf_numpy", "erfc_numpy", "erfinv"]

_PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494")
_NODES_PER_UNIT = 16  # node spacing 1/16 in the Taylor range
_TAYLOR_LO, _TAYLOR_HI = 0.5, 2.5
_TAYLOR_TERMS = 10
_CF_LEVELS = 40


@functools.cache
def _constants() -> dict:
    """2/sqrt(pi), its excess over 1, 1/sqrt(pi), and the Maclaurin coefficients of q(t)
    = (erf(x) - x) / x as a polynomial in t = x^2, each rounded once to float64."""
    with localcontext() as ctx:
        ctx.prec = 60
        two_over_root_pi = 2 / _PI.sqrt()
        q = [float(two_over_root_pi - 1)]
        for n in range(1, 14):  # the 14th term is below 1e-19 of x at |x| < 0.5
            q.append(float(two_over_root_pi * (-1) ** n / (math.factorial(n) * (2 * n + 1))))
        return {"2/sqrt(pi)": float(two_over_root_pi), "1/sqrt(pi)": float(1 / _PI.sqrt()),
                "q": tuple(q)}


@functools.cache
def _taylor_table() -> np.ndarray:
    """t_k(c), the Taylor coefficients of erfc about the nodes c = k/16 of [0.5, 2.5], as an
    array (terms, nodes) (DLMF 7.10.1 and 18.9.1; erfc(c) by A&S 7.1.6; 60 digits)."""
    lo, hi = int(_TAYLOR_LO * _NODES_PER_UNIT), int(_TAYLOR_HI * _NODES_PER_UNIT)
    rows = []
    with localcontext() as ctx:
        ctx.prec = 60
        two_over_root_pi = 2 / _PI.sqrt()
        tiny = Decimal(10) ** -58
        for k in range(lo, hi + 1):
            c = Decimal(k) / _NODES_PER_UNIT
            term = total = c
            n = 0
            while term > tiny * total:  # positive terms: no cancellation
                n += 1
                term = term * 2 * c * c / (2 * n + 1)
                total += term
            g = two_over_root_pi * (-c * c).exp()
            row = [1 - g * total]
            h_prev, h = Decimal(0), Decimal(1)  # H_(n-1)(c), H_n(c)
            factorial = 1
            for n in range(_TAYLOR_TERMS - 1):
                factorial *= n + 1
                row.append(-(-1) ** n * g * h / factorial)
                h_prev, h = h, 2 * c * h - 2 * n * h_prev
            rows.append([float(v) for v in row])
    return np.array(rows).T.copy()


def _maclaurin(x):
    """erf(x) for |x| < 0.5 (A&S 7.1.5), as x + x q(x^2)."""
    q = _constants()["q"]
    t = x * x
    acc = np.full_like(x, q[-1])
    for c in q[-2::-1]:
        acc *= t
        acc += c
    return x + x * acc


def _erfc_taylor(a):
    """erfc(a) for 0.5 <= a < 2.5, by Taylor's series about the nearest node (DLMF 7.10.1)."""
    table = _taylor_table()
    k = np.rint(a * _NODES_PER_UNIT)
    h = a - k / _NODES_PER_UNIT  # exact: a and the node are within a factor 2 of each other
    i = k.astype(np.intp) - int(_TAYLOR_LO * _NODES_PER_UNIT)
    acc = np.take(table[-1], i)
    for row in table[-2::-1]:
        acc *= h
        acc += np.take(row, i)
    return acc


def _erfc_tail(a):
    """erfc(a) for a >= 2.5 (or NaN) by Laplace's continued fraction (A&S 7.1.14)."""
    a = np.minimum(a, 30.0)  # erfc(30) underflows to 0, and a's split below stays finite
    f = a.copy()
    for k in range(_CF_LEVELS, 0, -1):
        f = a + (0.5 * k) / f
    # a^2 = hi + lo exactly (Dekker), a = ah + al split into 26-bit halves (Veltkamp)
    p = a * 134217729.0  # 2^27 + 1
    ah = p - (p - a)
    al = a - ah
    hi = a * a
    lo = ((ah * ah - hi) + 2 * ah * al) + al * al
    r = _constants()["1/sqrt(pi)"] / f
    return np.exp(-hi) * (r - lo * r)  # exp(-hi - lo) / (sqrt(pi) f), lo being tiny


def _erfc_nonneg(a):
    """erfc(a) for a >= 0.5 or NaN (a 1-d float64 array)."""
    out = np.empty_like(a)
    taylor = a < _TAYLOR_HI
    out[taylor] = _erfc_taylor(a[taylor])
    tail = ~taylor  # NaN goes here, and stays NaN
    out[tail] = _erfc_tail(a[tail])
    return out


def _prepare(x):
    x = np.asarray(x)
    flat = x.astype(np.float64).ravel()
    return x.shape, flat, np.empty_like(flat)


def erf_numpy(x) -> np.ndarray:
    """erf(x) of a NumPy array, as float64, within 3 ulp (see the module's docstring)."""
    shape, x, out = _prepare(x)
    with np.errstate(all="ignore"):
        small = np.abs(x) < _TAYLOR_LO
        out[small] = _maclaurin(x[small])
        large = ~small
        xl = x[large]
        out[large] = np.copysign(1.0 - _erfc_nonneg(np.abs(xl)), xl)
    return out.reshape(shape)


def erfc_numpy(x) -> np.ndarray:
    """erfc(x) = 1 - erf(x) of a NumPy array, as float64, within 3 ulp of the exact value
    (relative to erfc itself, in the tail too)."""
    shape, x, out = _prepare(x)
    with np.errstate(all="ignore"):
        small = np.abs(x) < _TAYLOR_LO
        out[small] = 1.0 - _maclaurin(x[small])
        neg = x <= -_TAYLOR_LO
        out[neg] = 2.0 - _erfc_nonneg(-x[neg])
        rest = ~(small | neg)  # x >= 0.5 and NaN
        out[rest] = _erfc_nonneg(x[rest])
    return out.reshape(shape)


def erfinv(y):
    """The inverse of erf on either device, as float64: NaN outside [-1, 1], +-inf at +-1.

    Winitzki's closed form ("A handy approximation for the error function and its inverse",
    2008: relative error below 2e-3) starts three steps of Halley's method on
    f(x) = erf(x) - |y|, written c - erfc(x) with c = 1 - |y| (exact) for |y| > 0.5, where it
    keeps its relative accuracy. With f'' = -2x f', Halley's step is x -= u / (1 + x u), u =
    f / f' = f sqrt(pi)/2 exp(x^2); each triples the correct digits (2e-3, 1e-8, 1e-24).
    """
    xp = backend.get_array_module(y)
    y = y.astype(np.float64)
    a = xp.abs(y)
    tail = a > 0.5
    c = 1.0 - a
    with np.errstate(all="ignore"):
        # Winitzki: x^2 = sqrt(b^2 - l / k) - b, l = log(1 - y^2), b = 2 / (pi k) + l / 2
        k = 0.147
        lg = xp.log1p(-a * a)
        b = 2.0 / (math.pi * k) + 0.5 * lg
        x = xp.sqrt(xp.sqrt(b * b - lg / k) - b)
        half_root_pi = math.sqrt(math.pi) / 2
        for _ in range(3):
            f = xp.where(tail, c - erfc(x), erf(x) - a)
            u = f * half_root_pi * xp.exp(x * x)
            x = x - u / (1.0 + x * u)
        x = xp.where(a == 1.0, xp.inf, x)
        x = xp.where(a > 1.0, xp.nan, x)
        return xp.copysign(x, y)


def erf(x):
    """The error function of an array on its own device: ``cupyx.scipy.special``'s for a GPU
    array (in the dtype of its loop; callers cast back), ``erf_numpy`` (float64) otherwise."""
    if backend.is_cupy_array(x):
        return backend.cupyx_special().erf(x)
    return erf_numpy(x)


def erfc(x):
    """1 - erf(x), accurate in the tail too; dispatched as ``erf``."""
    if backend.is_cupy_array(x):
        return backend.cupyx_special().erfc(x)
    return erfc_numpy(x)
