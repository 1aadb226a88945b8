"""Signatures against torch 2.13's, and the torch-style calls they allow.

Every name of ``minigan.nn.functional.__all__`` that ``torch.nn.functional`` has, and every name
of ``minigan.__all__`` that ``torch`` has, is compared with torch's: parameter names, order,
kinds and defaults (``inspect.signature`` on torch's side where it works, else the signature
lines of torch's docstring, one per overload). Each deliberate difference is listed below with
its reason; a difference not listed, or a listed one that is gone, fails the test.

The behaviour tests (torch's keywords doing what torch's do, refused values naming themselves)
run without torch; where torch is importable their values are also compared with its.
"""
import ast
import inspect
import pickle
import re
import warnings

import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import backend
from minigan.testing import check_backward, check_double_backward

P = inspect.Parameter
R = np.random.default_rng(11)

# ----------------------------------------------------------------------------- signatures

# torch parameters that no minigan function takes
NOWHERE = {
    "out": "results are new tensors: a recorded graph cannot write into a given one",
    "layout": "dense strided arrays only (no sparse layouts)",
    "pin_memory": "NumPy and CuPy allocate: there is no pinned host memory to ask for",
    "memory_format": "arrays keep NumPy's/CuPy's own layout (no channels_last request)",
}

# names of minigan.__all__ that torch has but that are no functions to compare
NOT_FUNCTIONS = {
    "Tensor": "a class: minigan.Tensor(data, requires_grad) is minigan's own constructor",
    "__version__": "a version string",
    "device": "a class (a str subclass, as minigan's device names are strings)",
    "Generator": "a class: Generator(seed, device), or Generator(device) as torch's",
    "set_grad_enabled": "a class, as torch's: a call that is also a context manager",
}

# torch functions without a signature or a signature line in their docstring (torch 2.13)
TORCH_LINES = {
    "masked_fill": "masked_fill(input, mask, value)",  # (torch.Tensor.masked_fill's, + input)
    # (no docstrings in torch 2.13: the schema of aten::log_softmax.int and aten::relu)
    "log_softmax": "log_softmax(input, dim, *, dtype=None)",
    "relu": "relu(input)",
    # (its docstring names the one positional parameter by its type: "set_num_threads(int)")
    "set_num_threads": "set_num_threads(n)",
    "clamp_min": "clamp_min(input, min)",
    "clamp_max": "clamp_max(input, max)",
    "unique_consecutive": "unique_consecutive(input, return_inverse=False, return_counts=False, "
                          "dim=None)",
    "index_fill": "index_fill(input, dim, index, value)",
    "index_put": "index_put(input, indices, values, accumulate=False)",
    # (its docstring's line runs over two)
    "scaled_dot_product_attention": "scaled_dot_product_attention(query, key, value, "
                                    "attn_mask=None, dropout_p=0.0, is_causal=False, "
                                    "scale=None, enable_gqa=False)",
}

_AXIS = ("the reductions keep NumPy's positional names axis/keepdims (torch's dim/keepdim are "
         "keyword aliases): functional/__init__.py's Tensor methods pass them positionally "
         "beside dim=/keepdim= keywords")
_NUMPY_ALIAS = "NumPy's name, a keyword-only alias of torch's"
_OVERLOAD = ("torch's overloads with other positional meanings, which one Python signature "
             "cannot spell; minigan tells them apart by the argument's type")
_STD = ("torch's legacy overload var/std(input, dim, unbiased, keepdim) is the positional "
        "form; correction=None means 1 (unless unbiased says otherwise), keepdim=None False")

_OUT_DTYPE = ("torch's out_dtype overload is CUDA's reduced-precision GEMM with a wider "
              "result (the CPU has no kernel for it); minigan's products give the promoted dtype")
_SAMPLING = ("one Python signature for torch's overloads (tensor mean and/or std; numbers "
             "with a size and the factory keywords, which torch's docstring lines leave out)")

# (namespace, name) -> {difference, as _differences words it: why it is kept}
TOLERATED = {
    ("torch", "normal"): {"'mean': default 0.0 (torch: required)": _SAMPLING,
                          "'std': default 1.0 (torch: required)": _SAMPLING,
                          "extra parameter 'device'": _SAMPLING,
                          "extra parameter 'dtype'": _SAMPLING,
                          "extra parameter 'requires_grad'": _SAMPLING},
    **{("torch", name): {f"no positional {n} 'out_dtype'": _OUT_DTYPE}
       for name, n in (("mm", 2), ("bmm", 2), ("addmm", 3), ("baddbmm", 3))},
    ("torch", "einsum"): {"extra parameter 'equation'": "torch's einsum(*args) takes the "
                          "equation first, as its docstring line spells it"},
    ("F", "gumbel_softmax"): {"extra parameter 'generator'": "a keyword-only minigan "
                              "Generator for the noise, as minigan's other samplers take"},
    **{("F", name): {"extra parameter 'generator'": "minigan's seeded counter-based generator "
                                                    "for the mask"}
       for name in ("alpha_dropout", "dropout1d", "dropout2d", "dropout3d",
                    "feature_alpha_dropout", "scaled_dot_product_attention",
                    "multi_head_attention_forward")},
    **{("torch", name): {"extra parameter 'unbiased'": _STD,
                         "'keepdim': positional in minigan, keyword-only in torch": _STD,
                         "'correction': default None (torch: 1)": _STD}
       for name in ("var_mean", "std_mean")},
    ("torch", "randperm"): {"'dtype': default None (torch: 'torch.int64')": "None means int64, "
                            "torch's default (torch's text names a torch dtype object)"},
    ("torch", "bernoulli"): {"extra parameter 'p'": "torch's overload bernoulli(input, p), "
                                                    "which its docstring leaves out"},
    ("F", "dropout"): {
        "extra parameter 'generator'": "minigan's seeded counter-based generator for the mask",
    },
    ("F", "rrelu"): {
        "extra parameter 'generator'": "minigan's seeded counter-based generator for the slopes",
    },
    ("F", "one_hot"): {
        "extra parameter 'dtype'": "the one-hot's dtype (torch's is int64, minigan's default)",
    },
    ("torch", "amax"): {"positional 1 is 'axis' (torch: 'dim')": _AXIS,
                        "positional 2 is 'keepdims' (torch: 'keepdim')": _AXIS},
    ("torch", "amin"): {"positional 1 is 'axis' (torch: 'dim')": _AXIS,
                        "positional 2 is 'keepdims' (torch: 'keepdim')": _AXIS},
    ("torch", "argmax"): {"positional 1 is 'axis' (torch: 'dim')": _AXIS,
                          "positional 2 is 'keepdims' (torch: 'keepdim')": _AXIS},
    ("torch", "argmin"): {"positional 1 is 'axis' (torch: 'dim')": _AXIS,
                          "positional 2 is 'keepdims' (torch: 'keepdim')": _AXIS},
    ("torch", "sum"): {"positional 1 is 'axis' (torch: 'dim')": _AXIS,
                       "positional 2 is 'keepdims' (torch: 'keepdim')": _AXIS},
    ("torch", "mean"): {"positional 1 is 'axis' (torch: 'dim')": _AXIS,
                        "positional 2 is 'keepdims' (torch: 'keepdim')": _AXIS},
    ("torch", "var"): {"positional 1 is 'axis' (torch: 'dim')": _AXIS,
                       "extra parameter 'unbiased'": _STD,
                       "extra parameter 'keepdims'": _AXIS,
                       "'correction': default None (torch: 1)": _STD,
                       "'keepdim': default None (torch: False)": _STD},
    ("torch", "std"): {"positional 1 is 'axis' (torch: 'dim')": _AXIS,
                       "extra parameter 'unbiased'": _STD,
                       "extra parameter 'keepdims'": _AXIS,
                       "'correction': default None (torch: 1)": _STD,
                       "'keepdim': default None (torch: False)": _STD},
    ("torch", "max"): {"extra parameter 'axis'": _NUMPY_ALIAS,
                       "extra parameter 'keepdims'": _NUMPY_ALIAS,
                       "positional 1 is 'dim' (torch: 'other')": _OVERLOAD},
    ("torch", "min"): {"extra parameter 'axis'": _NUMPY_ALIAS,
                       "extra parameter 'keepdims'": _NUMPY_ALIAS,
                       "positional 1 is 'dim' (torch: 'other')": _OVERLOAD},
    ("torch", "cat"): {"extra parameter 'axis'": _NUMPY_ALIAS},
    ("torch", "concat"): {"extra parameter 'axis'": _NUMPY_ALIAS},
    ("torch", "stack"): {"extra parameter 'axis'": _NUMPY_ALIAS},
    ("torch", "median"): {
        "'dim': default None (torch: -1)": "torch's median(input) (over all) and median(input, "
                                           "dim) overloads; None is the first, as there",
    },
    ("torch", "kthvalue"): {
        "'dim': default -1 (torch: None)": "torch's docstring says None; torch 2.13 runs -1 "
                                           "(its schema), as minigan",
    },
    ("torch", "topk"): {
        "'dim': default -1 (torch: None)": "torch's docstring says None; torch 2.13 runs -1 "
                                           "(its schema), as minigan",
    },
    ("torch", "transpose"): {
        "'dim0': default -2 (torch: required)": "minigan's default swaps the last two dims "
                                                "(Tensor.transpose() relies on it)",
        "'dim1': default -1 (torch: required)": "see dim0",
    },
    ("torch", "true_divide"): {
        "positional 0 is 'input' (torch: 'dividend')": "torch's docstring names; torch 2.13 "
                                                       "binds (input, other) and refuses "
                                                       "dividend=",
        "positional 1 is 'other' (torch: 'divisor')": "see input",
        "extra parameter 'rounding_mode'": "true_divide is minigan's div",
    },
    ("torch", "pow"): {
        "positional 0 is 'input' (torch: 'self')": "torch's pow(self: Number, exponent) "
                                                   "overload; a number base is taken "
                                                   "positionally",
    },
    ("torch", "permute"): {
        "no positional 1 'dims'": "the order is taken as varargs or one tuple (the Tensor "
                                  "method's form), and as dims= (keyword-only)",
        "extra *args": "see no positional 'dims'",
    },
    ("torch", "reshape"): {
        "no positional 1 'shape'": "the sizes are taken as varargs or one tuple (the Tensor "
                                   "method's form), and as shape= (keyword-only)",
        "extra *args": "see no positional 'shape'",
    },
    ("torch", "result_type"): {
        "no positional 0 'tensor1'": "any number of operands (NumPy's form); two positional "
                                     "ones work as in torch",
        "no positional 1 'tensor2'": "see tensor1",
        "extra *args": "see tensor1",
    },
    ("torch", "scatter"): {
        "extra parameter 'value'": "torch's scatter(input, dim, index, value) overload, also "
                                   "by keyword",
        "extra parameter 'reduce'": "torch's scatter(..., reduce=) overloads",
        "'src': default None (torch: required)": "None when value= is given instead",
    },
    ("torch", "repeat_interleave"): {
        "'repeats': default None (torch: required)": "torch's repeat_interleave(repeats) "
                                                     "overload: then input holds the repeats",
        "positional 0 is 'input' (torch: 'repeats')": "see repeats",
    },
    ("torch", "tensor_split"): {
        "positional 1 is 'indices_or_sections' (torch: 'sections')": "torch's overloads by "
                                                                     "type; the tensor form's "
                                                                     "name",
        "positional 1 is 'indices_or_sections' (torch: 'indices')": "as sections",
    },
    ("torch", "arange"): {
        "'start': required (torch: default 0)": "arange(end) is read as torch reads it: one "
                                                "number is the end",
        "'end': default None (torch: required)": "see start",
    },
    ("torch", "randint"): {
        "'high': default None (torch: required)": "randint(high, size) is read as torch reads "
                                                  "it: two arguments are high and size",
        "'size': default None (torch: required)": "see high",
    },
    ("torch", "rand"): {
        "'dtype': default <class 'numpy.float32'> (torch: None)": "minigan/random.py spells "
                                                                  "torch's default out (None "
                                                                  "is taken too)",
        "'device': default 'cpu' (torch: None)": "as dtype",
    },
    ("torch", "tensor"): {
        "'dtype': positional in minigan, keyword-only in torch": "autograd.py's signature (data, "
                                                                 "requires_grad, device, "
                                                                 "dtype): a superset of "
                                                                 "torch's calls",
        "'device': positional in minigan, keyword-only in torch": "as dtype",
        "'requires_grad': positional in minigan, keyword-only in torch": "as dtype",
    },
    ("torch", "as_tensor"): {
        "positional 0 is 'x' (torch: 'data')": "autograd.py's internal as_tensor(x, like) is "
                                               "what is exported (not in this file's reach)",
        "no keyword 'dtype'": "as x",
        "no keyword 'device'": "as x",
        "extra parameter 'like'": "as x",
    },
    ("torch", "enable_grad"): {
        "no positional 0 'orig_func'": "torch's class also decorates a function directly; "
                                       "minigan's enable_grad() is a context manager and, "
                                       "called, a decorator",
    },
}
TOLERATED[("torch", "randn")] = TOLERATED[("torch", "rand")]
_NO_PICKLE = "minigan never pickles: None is the only value it accepts"
TOLERATED[("torch", "save")] = {
    f"'pickle_module': default None (torch: {pickle!r})": _NO_PICKLE,
    "'pickle_protocol': default None (torch: 2)": _NO_PICKLE,
}


def _split_top(text: str) -> list:
    """``text`` split at the commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur] if cur.strip() else parts


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # (torch.strided and the like: only the NOWHERE parameters have them)


def parse_line(line: str) -> list:
    """A docstring signature line, e.g. ``sum(input, dim, keepdim=False, *, dtype=None)``, as
    ``[(name, kind, default)]``. A parameter annotated ``Optional[...]`` without a default
    defaults to None (torch's docstrings write ``out: Optional[Tensor]`` for ``out=None``)."""
    line = re.sub(r"^\.\. function:: ", "", line.replace("\\*", "*"))
    start, depth = line.index("("), 0
    for end in range(start, len(line)):
        depth += line[end] == "("
        depth -= line[end] == ")"
        if depth == 0:
            break
    params, kind = [], P.POSITIONAL_OR_KEYWORD
    for part in _split_top(line[start + 1:end]):
        part = part.strip()
        if part == "*":
            kind = P.KEYWORD_ONLY
        elif part.startswith("*"):
            params.append((part[1:], P.VAR_POSITIONAL, P.empty))
            kind = P.KEYWORD_ONLY
        else:
            head, eq, default = part.partition("=")
            name, _, annotation = head.partition(":")
            if eq:
                value = _literal(default.strip())
            else:
                value = None if annotation.strip().startswith("Optional[") else P.empty
            params.append((name.strip(), kind, value))
    return params


def torch_overloads(name: str, fn) -> list:
    """torch's signature(s) of ``fn``: inspect's where it gives one, else the docstring's
    first line and its ``.. function::`` lines (one per overload)."""
    try:
        sig = inspect.signature(fn)
        if list(sig.parameters) != ["args", "kwargs"]:
            return [[(p.name, p.kind, p.default) for p in sig.parameters.values()]]
    except (ValueError, TypeError):
        pass
    if name in TORCH_LINES:
        return [parse_line(TORCH_LINES[name])]
    lines = [ln.strip() for ln in (fn.__doc__ or "").strip().splitlines()]
    pattern = rf"^(\.\. function:: )?{re.escape(name)}\(.*\)(\s*->.*)?$"
    found = [ln for i, ln in enumerate(lines) if re.match(pattern, ln)
             and (i == 0 or ln.startswith(".. function::"))]
    assert found, f"torch.{name}: no signature found; add it to TORCH_LINES"
    return [parse_line(ln) for ln in found]


def _positional(params):
    return [p for p in params if p[1] in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]


def _default_words(name, mine, theirs, optional):
    """The words for a default that differs, or None where they agree (``optional``: torch has
    an overload without the parameter, which minigan spells as a None default)."""
    if mine is P.empty and theirs is P.empty:
        return None
    if theirs is P.empty:
        return None if (mine is None and optional) else \
            f"{name!r}: default {mine!r} (torch: required)"
    if mine is P.empty:
        return f"{name!r}: required (torch: default {theirs!r})"
    same = mine == theirs if type(mine) is not bool and type(theirs) is not bool \
        else mine is theirs
    return None if same else f"{name!r}: default {mine!r} (torch: {theirs!r})"


def _differences(name: str, torch_sigs: list, mine: list) -> set:
    """How ``mine`` ([(name, kind, default)]) differs from torch's overloads of ``name``, in
    words."""
    torch_sigs = [[t for t in sig if t[0] not in NOWHERE] for sig in torch_sigs]
    by_name = {m[0]: m for m in mine}
    everywhere = set.intersection(*({t[0] for t in sig} for sig in torch_sigs))
    out = set()
    for sig in torch_sigs:
        names = {t[0] for t in sig}
        mpos, tpos = _positional(mine), _positional(sig)
        for i, t in enumerate(tpos):
            if i >= len(mpos):
                out.add(f"no positional {i} {t[0]!r}")
                continue
            if mpos[i][0] != t[0]:
                out.add(f"positional {i} is {mpos[i][0]!r} (torch: {t[0]!r})")
            words = _default_words(t[0], mpos[i][2], t[2], t[0] not in everywhere)
            if words:
                out.add(words)
        if any(t[1] == P.VAR_POSITIONAL for t in sig) and not any(
                m[1] == P.VAR_POSITIONAL for m in mine):
            out.add("no *args")
        for t in sig:
            if t[1] != P.KEYWORD_ONLY:
                continue
            m = by_name.get(t[0])
            if m is None:
                out.add(f"no keyword {t[0]!r}")
                continue
            if m[1] != P.KEYWORD_ONLY:
                out.add(f"{t[0]!r}: positional in minigan, keyword-only in torch")
            words = _default_words(t[0], m[2], t[2], t[0] not in everywhere)
            if words:
                out.add(words)
        for m in mine:  # (with one overload, such a one is "extra" below)
            if m[2] is P.empty and m[1] != P.VAR_POSITIONAL and m[0] not in names \
                    and len(torch_sigs) > 1 and not (m in mpos and mpos.index(m) < len(tpos)):
                out.add(f"required {m[0]!r} is not in torch's "
                        f"{name}({', '.join(t[0] for t in sig)})")
    known = set().union(*({t[0] for t in sig} for sig in torch_sigs))
    covered = max(len(_positional(sig)) for sig in torch_sigs)  # (named above if renamed)
    mpos = _positional(mine)
    for m in mine:
        if m[1] == P.VAR_POSITIONAL:
            if not any(t[1] == P.VAR_POSITIONAL for sig in torch_sigs for t in sig):
                out.add("extra *args")
        elif m[0] not in known and not (m in mpos and mpos.index(m) < covered):
            out.add(f"extra parameter {m[0]!r}")
    return out


def _pairs():
    """(namespace, name, minigan's function, torch's) for every name both sides have."""
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    out = [("F", n, getattr(F, n), getattr(tf, n)) for n in sorted(set(F.__all__))
           if hasattr(tf, n)]
    out += [("torch", n, getattr(minigan, n), getattr(torch, n))
            for n in sorted(set(minigan.__all__)) if hasattr(torch, n) and n not in NOT_FUNCTIONS]
    return out


def signature_report() -> dict:
    """{(namespace, name): the set of differences} for the names that differ."""
    report = {}
    for ns, name, mine, theirs in _pairs():
        params = [(p.name, p.kind, p.default) for p in inspect.signature(mine).parameters.values()]
        diff = _differences(name, torch_overloads(name, theirs), params)
        if diff:
            report[(ns, name)] = diff
    return report


def test_signatures_match_torch():
    report = signature_report()
    unexpected = {key: sorted(d - set(TOLERATED.get(key, {}))) for key, d in report.items()}
    unexpected = {key: d for key, d in unexpected.items() if d}
    stale = {key: sorted(set(t) - report.get(key, set())) for key, t in TOLERATED.items()}
    stale = {key: d for key, d in stale.items() if d}
    assert not unexpected, f"signatures that differ from torch's: {unexpected}"
    assert not stale, f"tolerated differences that are gone (drop them): {stale}"


def test_not_functions_are_the_classes_and_values():
    torch = pytest.importorskip("torch")
    shared = {n for n in minigan.__all__ if hasattr(torch, n)}
    odd = {n for n in shared if isinstance(getattr(minigan, n), type)
           or not callable(getattr(minigan, n))}
    assert odd == set(NOT_FUNCTIONS)


def test_the_comparison_sees_a_drift():
    """The checker itself: a renamed, reordered, re-defaulted or dropped parameter shows."""
    torch_sig = parse_line("f(input, dim=None, *, dtype=None, out=None) -> Tensor")
    same = [("input", P.POSITIONAL_OR_KEYWORD, P.empty), ("dim", P.POSITIONAL_OR_KEYWORD, None),
            ("dtype", P.KEYWORD_ONLY, None)]
    assert _differences("f", [torch_sig], same) == set()
    renamed = [("x",) + same[0][1:]] + same[1:]
    assert _differences("f", [torch_sig], renamed) == {"positional 0 is 'x' (torch: 'input')"}
    redefaulted = same[:1] + [("dim", P.POSITIONAL_OR_KEYWORD, 0)] + same[2:]
    assert _differences("f", [torch_sig], redefaulted) == {"'dim': default 0 (torch: None)"}
    assert _differences("f", [torch_sig], same[:2]) == {"no keyword 'dtype'"}
    positional = same[:2] + [("dtype", P.POSITIONAL_OR_KEYWORD, None)]
    assert _differences("f", [torch_sig], positional) == {
        "'dtype': positional in minigan, keyword-only in torch"}
    assert _differences("f", [torch_sig], same + [("extra", P.KEYWORD_ONLY, 1)]) == {
        "extra parameter 'extra'"}


# ----------------------------------------------------------------------------- behaviour

def _t(a, device, grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a), device), requires_grad=grad)


def _np(t):
    return backend.to_numpy(t.data)


def away_from_zero(*shape):
    x = R.standard_normal(shape)
    return np.where(np.abs(x) < 0.05, 0.5, x)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_softmax(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def test_activations_take_torch_keywords(device):
    x = away_from_zero(3, 4).astype(np.float32)
    t = _t(x, device)
    np.testing.assert_allclose(_np(F.relu(input=t, inplace=False)), np.maximum(x, 0))
    np.testing.assert_allclose(_np(F.leaky_relu(input=t, negative_slope=0.2, inplace=False)),
                               np.where(x > 0, x, 0.2 * x), rtol=1e-6)
    np.testing.assert_allclose(_np(F.sigmoid(input=t)), np_sigmoid(x), rtol=1e-5)
    np.testing.assert_allclose(_np(F.tanh(input=t)), np.tanh(x), rtol=1e-5)
    np.testing.assert_allclose(_np(F.softplus(input=t, beta=2, threshold=1.0)),
                               np.where(2 * x > 1.0, x, np.log1p(np.exp(2 * x)) / 2), rtol=1e-5)
    np.testing.assert_array_equal(_np(F.dropout(input=t, p=0.5, training=False)), x)
    w, b = R.standard_normal((2, 4)), R.standard_normal(2)
    np.testing.assert_allclose(_np(F.linear(input=t, weight=_t(w.astype(np.float32), device),
                                            bias=_t(b.astype(np.float32), device))),
                               x @ w.T + b, rtol=1e-5, atol=1e-6)
    labels = np.array([2, 0, 1])
    np.testing.assert_array_equal(_np(F.one_hot(tensor=_t(labels, device), num_classes=4)),
                                  np.eye(4, dtype=np.int64)[labels])


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_dtype_casts_the_input_first(device, fn):
    x = R.standard_normal((3, 5)).astype(np.float32)
    t = _t(x, device, grad=True)
    y = getattr(F, fn)(input=t, dim=1, dtype=np.float64)
    assert y.dtype == np.float64
    want = np_softmax(x.astype(np.float64), 1)
    np.testing.assert_allclose(_np(y), want if fn == "softmax" else np.log(want), rtol=1e-12)
    (g,) = minigan.grad(minigan.sum(y * _t(R.standard_normal((3, 5)), device)), [t])
    assert g.dtype == np.float32  # the gradient comes back through the cast, in x's dtype
    assert getattr(F, fn)(t, 1, 3, None).dtype == np.float32  # torch's positional order
    with pytest.raises(TypeError, match=f"{fn}: dtype 'no-such' is not a dtype"):
        getattr(F, fn)(t, dim=1, dtype="no-such")


def test_softmax_stacklevel_points_the_warning_at_the_caller():
    x = minigan.tensor(np.ones((2, 3)))
    with pytest.warns(UserWarning, match="Implicit dimension") as got:
        F.softmax(x)
    assert got[0].filename == __file__
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        F.log_softmax(x, _stacklevel=1)  # one frame up from the warning: minigan's own code
    assert got[0].filename != __file__


def np_max_pool(x, k, s, p):
    """(y, indices) by plain loops over the output positions (int k, s, p)."""
    n, c, h, w = x.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    y, idx = np.empty((n, c, ho, wo)), np.empty((n, c, ho, wo), np.int64)
    for a in range(ho):
        for b in range(wo):
            h0, h1 = max(a * s - p, 0), min(a * s - p + k, h)
            w0, w1 = max(b * s - p, 0), min(b * s - p + k, w)
            win = x[:, :, h0:h1, w0:w1].reshape(n, c, -1)
            j = win.argmax(-1)
            y[:, :, a, b] = win.max(-1)
            idx[:, :, a, b] = (h0 + j // (w1 - w0)) * w + w0 + j % (w1 - w0)
    return y, idx


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_max_pool2d_return_indices(device, k, s, p):
    x = R.permutation(2 * 3 * 6 * 7).reshape(2, 3, 6, 7).astype(np.float32)  # no ties
    y, idx = F.max_pool2d(_t(x, device), k, s, p, 1, False, True)  # torch's positional order
    want_y, want_idx = np_max_pool(x, k, s, p)
    np.testing.assert_array_equal(_np(y), want_y)
    assert idx.dtype == np.int64 and not idx.requires_grad
    np.testing.assert_array_equal(_np(idx), want_idx)
    plain = F.max_pool2d(_t(x, device), kernel_size=k, stride=s, padding=p, dilation=1,
                         ceil_mode=False, return_indices=False)
    np.testing.assert_array_equal(_np(plain), want_y)
    np.testing.assert_array_equal(_np(F.max_pool2d(_t(x, device), k, s, p, dilation=(1, 1))),
                                  want_y)


def test_max_pool2d_indices_keep_the_gradient(device):
    x = R.standard_normal((1, 2, 5, 5))
    t = _t(x, device, grad=True)
    y, idx = F.max_pool2d(t, 3, 2, 1, return_indices=True)
    (g,) = minigan.grad(minigan.sum(y), [t])
    counts = np.zeros(2 * 25)
    np.add.at(counts, (_np(idx) + 25 * np.arange(2)[None, :, None, None]).ravel(), 1)
    np.testing.assert_array_equal(_np(g).ravel(), counts)


def np_avg_pool(x, k, s, p, count_include_pad=True, divisor=None):
    """Average pooling by plain loops (pairs k, s, p), with torch's three divisors."""
    n, c, h, w = x.shape
    ho, wo = [(hw + 2 * p[i] - k[i]) // s[i] + 1 for i, hw in enumerate((h, w))]
    pad = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    y = np.empty((n, c, ho, wo))
    for a in range(ho):
        for b in range(wo):
            total = pad[:, :, a * s[0]:a * s[0] + k[0], b * s[1]:b * s[1] + k[1]].sum((2, 3))
            real = ((min(a * s[0] - p[0] + k[0], h) - max(a * s[0] - p[0], 0))
                    * (min(b * s[1] - p[1] + k[1], w) - max(b * s[1] - p[1], 0)))
            y[:, :, a, b] = total / (divisor or (k[0] * k[1] if count_include_pad else real))
    return y


AVG_CASES = [  # kernel, stride, padding, count_include_pad, divisor_override
    ((3, 3), (2, 2), (1, 1), False, None),
    ((3, 2), (2, 1), (1, 1), False, None),
    ((2, 2), (2, 2), (0, 0), False, None),
    ((3, 3), (2, 2), (1, 1), True, 5),
    ((3, 2), (1, 2), (1, 0), False, -4),
]


@pytest.mark.parametrize("k,s,p,cip,div", AVG_CASES)
def test_avg_pool2d_divisors(xp, k, s, p, cip, div):
    x = R.standard_normal((2, 3, 6, 5))
    y = F.avg_pool2d(_t(x, backend.device_of(xp.zeros(1))), k, s, p, False, cip, div)
    np.testing.assert_allclose(_np(y), np_avg_pool(x, k, s, p, cip, div), rtol=1e-12)

    def f(x):
        return F.avg_pool2d(x, kernel_size=k, stride=s, padding=p, count_include_pad=cip,
                            divisor_override=div)

    check_backward(f, [xp.asarray(x)])
    check_double_backward(f, [xp.asarray(x)])


def test_avg_pool2d_keeps_float32(device):
    x = R.standard_normal((1, 2, 5, 5)).astype(np.float32)
    y = F.avg_pool2d(_t(x, device), 3, 2, 1, count_include_pad=False)
    assert y.dtype == np.float32
    np.testing.assert_allclose(_np(y), np_avg_pool(x, (3, 3), (2, 2), (1, 1), False),
                               rtol=1e-6)


@pytest.mark.parametrize("call,error,message", [
    (lambda x: F.max_pool2d(x, 2, ceil_mode=True), NotImplementedError,
     "max_pool2d: ceil_mode=True is not supported"),
    (lambda x: F.max_pool2d(x, 2, 2, 0, 2), NotImplementedError,
     "max_pool2d: dilation=2 is not supported"),
    (lambda x: F.max_pool2d(x, 2, dilation=(1, 2)), NotImplementedError,
     r"max_pool2d: dilation=\(1, 2\) is not supported"),
    (lambda x: F.avg_pool2d(x, 2, ceil_mode=True), NotImplementedError,
     "avg_pool2d: ceil_mode=True is not supported"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), ValueError,
     "avg_pool2d: divisor_override must not be zero"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=1.5), TypeError,
     "avg_pool2d: divisor_override must be an int, got 1.5"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=True), TypeError,
     "avg_pool2d: divisor_override must be an int, got True"),
    (lambda x: minigan.gather(x, 0, minigan.zeros(1, 1, 4, 4, dtype=np.int64),
                              sparse_grad=True), NotImplementedError,
     "gather: sparse_grad=True is not supported"),
])
def test_unsupported_values_are_refused_by_name(device, call, error, message):
    x = _t(R.standard_normal((1, 1, 4, 4)), device)
    with pytest.raises(error, match=message):
        call(x)


def test_torch_defaults_of_unsupported_keywords_are_accepted(device):
    x = _t(R.standard_normal((1, 1, 4, 4)), device)
    want = _np(F.max_pool2d(x, 2))
    np.testing.assert_array_equal(_np(F.max_pool2d(x, 2, ceil_mode=False, dilation=1)), want)
    np.testing.assert_array_equal(
        _np(F.avg_pool2d(x, 2, ceil_mode=False, count_include_pad=True,
                         divisor_override=None)), _np(F.avg_pool2d(x, 2)))
    idx = minigan.zeros(1, 1, 4, 4, dtype=np.int64, device=device)
    np.testing.assert_array_equal(_np(minigan.gather(x, 0, idx, sparse_grad=False)),
                                  _np(minigan.gather(x, 0, idx)))


def test_top_level_ops_take_torch_keywords(device):
    a, b = R.standard_normal((2, 3)), R.standard_normal((2, 3)) + 3
    ta, tb = _t(a, device), _t(b, device)
    np.testing.assert_allclose(_np(minigan.add(input=ta, other=tb, alpha=2)), a + 2 * b)
    np.testing.assert_allclose(_np(minigan.sub(input=ta, other=tb)), a - b)
    np.testing.assert_allclose(_np(minigan.mul(input=ta, other=tb)), a * b)
    np.testing.assert_allclose(_np(minigan.div(input=ta, other=tb, rounding_mode="floor")),
                               np.floor(a / b))
    np.testing.assert_allclose(_np(minigan.remainder(input=ta, other=tb)), np.remainder(a, b))
    np.testing.assert_allclose(_np(minigan.matmul(input=ta, other=tb.T)), a @ b.T)
    np.testing.assert_allclose(_np(minigan.where(ta > 0, input=ta, other=tb)),
                               np.where(a > 0, a, b))
    np.testing.assert_allclose(_np(minigan.pow(input=tb, exponent=2)), b ** 2)
    np.testing.assert_allclose(_np(minigan.clamp(input=ta, min=-0.5, max=0.5)),
                               np.clip(a, -0.5, 0.5))
    np.testing.assert_allclose(_np(minigan.exp(input=ta)), np.exp(a))
    np.testing.assert_allclose(_np(minigan.transpose(input=ta, dim0=0, dim1=1)), a.T)
    np.testing.assert_allclose(_np(minigan.unsqueeze(input=ta, dim=0)), a[None])
    np.testing.assert_allclose(_np(minigan.amax(input=ta, dim=1, keepdim=True)),
                               a.max(1, keepdims=True))
    np.testing.assert_allclose(_np(minigan.cat([ta, tb], dim=1)), np.concatenate([a, b], 1))
    np.testing.assert_allclose(_np(minigan.cat([ta, tb], 1)), np.concatenate([a, b], 1))
    np.testing.assert_allclose(_np(minigan.concat([ta, tb], axis=1)), np.concatenate([a, b], 1))
    np.testing.assert_allclose(_np(minigan.stack([ta, tb], dim=2)), np.stack([a, b], 2))
    np.testing.assert_allclose(_np(minigan.stack([ta, tb], axis=-1)), np.stack([a, b], -1))
    np.testing.assert_allclose(_np(minigan.permute(ta, dims=(1, 0))), a.T)
    np.testing.assert_allclose(_np(minigan.reshape(ta, shape=(3, 2))), a.reshape(3, 2))
    np.testing.assert_allclose(_np(minigan.reshape(ta, shape=[-1])), a.ravel())
    with pytest.raises(TypeError, match="reshape: give the shape once"):
        minigan.reshape(ta, 6, shape=(6,))
    with pytest.raises(TypeError, match="permute: give the order once"):
        minigan.permute(ta, 1, 0, dims=(1, 0))
    gi, _ = minigan.meshgrid(ta[0], tb[0], indexing=None)
    np.testing.assert_array_equal(_np(gi), np.meshgrid(a[0], b[0], indexing="ij")[0])


@pytest.mark.parametrize("fn", ["sum", "mean"])
def test_reduction_dtype_casts_the_input_first(device, fn):
    x = R.integers(-5, 5, (3, 4)).astype(np.int32)
    y = getattr(minigan, fn)(input=_t(x, device), dim=1, keepdim=True, dtype=np.float64)
    assert y.dtype == np.float64
    np.testing.assert_allclose(_np(y), getattr(x.astype(np.float64), fn)(1, keepdims=True))
    f32 = R.standard_normal((3, 4)).astype(np.float32)
    t = _t(f32, device, grad=True)
    y = getattr(minigan, fn)(t, dtype=np.float64)
    assert y.dtype == np.float64
    np.testing.assert_allclose(_np(y), getattr(f32.astype(np.float64), fn)(), rtol=1e-12)
    (g,) = minigan.grad(y, [t])
    assert g.dtype == np.float32
    with pytest.raises(TypeError, match=f"{fn}: dtype 'no-such' is not a dtype"):
        getattr(minigan, fn)(t, dtype="no-such")


# ----------------------------------------------------------------------------- against torch

def _torch(a):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("k,s,p,cip,div", AVG_CASES)
def test_avg_pool2d_matches_torch(device, k, s, p, cip, div):
    tf = pytest.importorskip("torch").nn.functional
    x = R.standard_normal((2, 3, 6, 5)).astype(np.float32)
    want = tf.avg_pool2d(_torch(x), k, s, p, False, cip, div).numpy()
    got = F.avg_pool2d(_t(x, device), k, s, p, False, cip, div)
    np.testing.assert_allclose(_np(got), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_max_pool2d_indices_match_torch(device, k, s, p):
    tf = pytest.importorskip("torch").nn.functional
    x = R.standard_normal((2, 3, 6, 7)).astype(np.float32)
    want_y, want_idx = tf.max_pool2d(_torch(x), k, s, p, 1, False, True)
    y, idx = F.max_pool2d(_t(x, device), k, s, p, 1, False, True)
    np.testing.assert_array_equal(_np(y), want_y.numpy())
    np.testing.assert_array_equal(_np(idx), want_idx.numpy())


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_dtype_matches_torch(device, fn):
    torch = pytest.importorskip("torch")
    x = R.standard_normal((3, 5)).astype(np.float32)
    want = getattr(torch.nn.functional, fn)(_torch(x), dim=0, dtype=torch.float64).numpy()
    got = getattr(F, fn)(_t(x, device), dim=0, dtype=np.float64)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(_np(got), want, rtol=1e-12)


def test_activation_keywords_match_torch(device):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = away_from_zero(3, 4).astype(np.float32)
    t, tt = _t(x, device), _torch(x)
    for name, kw in [("relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("sigmoid", {}),
                     ("tanh", {}), ("softplus", {"beta": 2, "threshold": 1})]:
        np.testing.assert_allclose(_np(getattr(F, name)(input=t, **kw)),
                                   getattr(tf, name)(input=tt, **kw).numpy(), rtol=1e-5,
                                   err_msg=name)


@pytest.mark.parametrize("fn", ["sum", "mean"])
def test_reduction_dtype_matches_torch(device, fn):
    torch = pytest.importorskip("torch")
    x = R.integers(-5, 5, (3, 4)).astype(np.int32)
    want = getattr(torch, fn)(input=_torch(x), dim=0, dtype=torch.float64).numpy()
    got = getattr(minigan, fn)(input=_t(x, device), dim=0, dtype=np.float64)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(_np(got), want)
