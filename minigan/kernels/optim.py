"""Optimizer update kernels with PyTorch's semantics, updating every array in place.

On the GPU an update reads param, grad and the state once and writes them once. ``adam_step``
is ONE fused ``ElementwiseKernel`` per parameter; ``adam_step_multi`` (what ``optim.Adam`` calls)
puts all of an optimizer's parameters through ONE multi-tensor ``RawKernel`` launch, as
PyTorch's foreach Adam does on CUDA, since a small training step is bound by the host's cost per
launch. The step-dependent scalars (bias corrections, step size) are computed on the host from
Python numbers and passed as kernel arguments, so nothing is ever read back from the device. On
the CPU the same arithmetic runs in place with one reused scratch buffer.

``adam_step_capturable`` is the same update for a step that a CUDA graph captures: a graph
replays its kernels with the arguments they were captured with, so the step count and the
learning rate live in a small device array that the kernels read and advance themselves.

``rmsprop_step``/``rmsprop_step_multi`` and ``adagrad_step``/``adagrad_step_multi`` follow the
same plan: one fused elementwise kernel per parameter, or one multi-tensor launch per dtype
(``multi_tensor_source``) for a list; in place on the CPU with reused scratch buffers.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import backend
from .elementwise import split_rows
from .workspace import SCRATCH, _workspace

__all__ = ["adagrad_step", "adagrad_step_multi", "adam_step", "adam_step_capturable",
           "adam_step_multi", "rmsprop_step", "rmsprop_step_multi", "sgd_step"]


# Adam

_ADAM_OP = """
    const T g = grad + wd * param;
    exp_avg = b1 * exp_avg + one_minus_b1 * g;
    exp_avg_sq = b2 * exp_avg_sq + one_minus_b2 * g * g;
    param -= step_size * (exp_avg / (sqrt(exp_avg_sq) / bc2_sqrt + eps));
"""


def adam_step(param, grad, exp_avg, exp_avg_sq, step: int, lr: float, beta1: float,
              beta2: float, eps: float, weight_decay: float = 0.0) -> None:
    """One Adam step (``torch.optim.Adam``, L2 weight decay added to the gradient), in place.

    ``step`` is the 1-based count after this step's increment. With g = grad + wd * param:

        m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
        param -= (lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
    """
    step = int(step)
    if step < 1:
        raise ValueError(f"adam_step: step counts from 1, got {step}")
    bc1 = 1.0 - beta1 ** step
    bc2_sqrt = (1.0 - beta2 ** step) ** 0.5
    step_size = lr / bc1
    if backend.is_cupy_array(param):
        t = param.dtype.type
        k = backend.elementwise_kernel(
            "T grad, T wd, T b1, T one_minus_b1, T b2, T one_minus_b2, T step_size, T bc2_sqrt, "
            "T eps", "T param, T exp_avg, T exp_avg_sq", _ADAM_OP, "minigan_adam")
        k(grad, t(weight_decay), t(beta1), t(1.0 - beta1), t(beta2), t(1.0 - beta2),
          t(step_size), t(bc2_sqrt), t(eps), param, exp_avg, exp_avg_sq)
        return
    _adam_step_numpy(param, grad, exp_avg, exp_avg_sq, beta1, beta2, eps, weight_decay,
                     step_size, bc2_sqrt)


def _adam_step_numpy(param, grad, exp_avg, exp_avg_sq, beta1, beta2, eps, weight_decay,
                     step_size, bc2_sqrt):
    # Memory-bound: every NumPy call is one pass over the arrays, so the calls are few and the
    # one temporary is a reused scratch buffer (a fresh one faults in new pages every step).
    # Large parameters are updated on blocks of rows across the CPU threads.
    tmp = _workspace.take(SCRATCH, param.shape, param.dtype)
    extra = () if weight_decay == 0 else (_workspace.take("adam_g", param.shape, param.dtype),)
    update = functools.partial(_adam_block, beta1=beta1, beta2=beta2, eps=eps,
                               weight_decay=weight_decay, step_size=step_size,
                               bc2_sqrt=bc2_sqrt)
    split_rows(update, param, grad, exp_avg, exp_avg_sq, tmp, *extra)


def _adam_block(param, grad, exp_avg, exp_avg_sq, tmp, decay_buf=None, *, beta1, beta2, eps,
                weight_decay, step_size, bc2_sqrt):
    g = grad
    if weight_decay != 0:
        g = np.multiply(param, weight_decay, out=decay_buf)
        g += grad
    np.multiply(g, 1.0 - beta1, out=tmp)
    exp_avg *= beta1
    exp_avg += tmp
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - beta2
    exp_avg_sq *= beta2
    exp_avg_sq += tmp
    # step_size * m / (sqrt(v) / bc2 + eps) = (step_size * bc2) * m / (sqrt(v) + eps * bc2):
    # one pass fewer than dividing sqrt(v) by bc2
    np.sqrt(exp_avg_sq, out=tmp)
    tmp += eps * bc2_sqrt
    np.divide(exp_avg, tmp, out=tmp)
    tmp *= step_size * bc2_sqrt
    param -= tmp


def _check_arrays(who: str, params, grads, exp_avgs, exp_avg_sqs, shapes: bool = True) -> int:
    """The number of parameters, once the four lists match in length and (unless ``shapes``
    is False: the caller's own loop checks them) in shapes."""
    n = len(params)
    if not len(grads) == len(exp_avgs) == len(exp_avg_sqs) == n:
        raise ValueError(f"{who}: params, grads and states differ in length")
    if shapes:
        for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
            if not p.shape == g.shape == m.shape == v.shape:
                _raise_shapes(who, i, p, g, m, v)
    return n


def _raise_shapes(who: str, i: int, p, g, *states):
    raise ValueError(f"{who}: parameter {i} has shape {tuple(p.shape)}, its gradient "
                     f"{tuple(g.shape)} and its state "
                     f"{' and '.join(str(tuple(a.shape)) for a in states)}; they must all match")


def adam_step_multi(params, grads, exp_avgs, exp_avg_sqs, step, lr: float, beta1: float,
                    beta2: float, eps: float, weight_decay: float = 0.0, *,
                    decoupled: bool = False, maximize: bool = False,
                    foreach: bool = True) -> None:
    """Adam over lists of parameters, in place; ``step`` is one int or one per parameter.

    ``decoupled`` makes ``weight_decay`` AdamW's: the parameter is first scaled by
    ``1 - lr * weight_decay`` and no L2 term is added; ``maximize`` ascends (the step for
    -grad). On the GPU, with ``foreach``, the parameters go through ONE multi-tensor kernel per
    dtype and step count (``adam_multi_source``) instead of one launch per parameter; a
    parameter whose arrays are not all C-contiguous takes the per-parameter kernel. On the CPU
    the update is per parameter either way (NumPy has no launch cost to save)."""
    multi = bool(foreach and params and backend.is_cupy_array(params[0]))
    # (the multi-tensor plan checks the shapes in its own loop over the parameters)
    n = _check_arrays("adam_step_multi", params, grads, exp_avgs, exp_avg_sqs, not multi)
    steps = [step] * n if np.isscalar(step) else list(step)
    if len(steps) != n:
        raise ValueError(f"adam_step_multi: {len(steps)} step counts for {n} parameters")
    if n and min(steps) < 1:
        raise ValueError(f"adam_step_multi: step counts from 1, got {min(steps)}")
    decay = 1.0 - lr * weight_decay if decoupled else 1.0
    l2 = 0.0 if decoupled else weight_decay
    rest = range(n)
    if multi:
        rest = _adam_multi_cupy(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2,
                                eps, l2, decay, maximize)
    for i in rest:
        p, g = params[i], grads[i]
        if decay != 1.0:
            p *= decay
        adam_step(p, -g if maximize else g, exp_avgs[i], exp_avg_sqs[i], steps[i], lr, beta1,
                  beta2, eps, l2)


# The multi-tensor kernel's launch shape. Each tensor owns a run of blocks (at most
# _MULTI_MAX_BLOCKS; a longer tensor is walked by a grid-stride loop) and each launch at most
# _MULTI_MAX_TENSORS tensors: three to five pointers each (Adagrad's three, Adam's four,
# centered RMSprop with momentum's five), at most 1.9 KiB of kernel arguments in all, well
# inside the 4 KiB that every CUDA version accepts.
_MULTI_THREADS = 256
_MULTI_MAX_BLOCKS = 512
_MULTI_MAX_TENSORS = 48
_MULTI_DTYPES = {"float32": "float", "float64": "double"}
# dtype -> its name, for the dtypes the kernel takes (a dict lookup: NumPy's dtype.name is
# Python code, and the plan asks once per parameter and step)
_MULTI_NAMES = {np.dtype(n): n for n in _MULTI_DTYPES}


def adam_step_capturable(params, grads, exp_avgs, exp_avg_sqs, hyper, beta1: float,
                         beta2: float, eps: float, weight_decay: float = 0.0, *,
                         decoupled: bool = False, maximize: bool = False,
                         foreach: bool = True) -> None:
    """``adam_step_multi`` with the step count and learning rate read from ``hyper``, a
    float64 array ``[steps taken, lr]`` on the parameters' device, so that the update can be
    captured into a CUDA graph and replayed: the call first advances ``hyper[0]`` by one (a
    kernel), and the update kernels then compute the bias corrections and the step size from
    it. Every parameter takes the same step count.

    On the GPU: one launch to advance the count, then the multi-tensor kernel (one launch per
    dtype and 48 tensors) or, for a parameter it cannot take, a per-parameter kernel. The bias
    corrections are computed in double on the device (``pow``), so a step may differ from
    ``adam_step_multi``'s by a rounding of the float32 step size. On the CPU, ``hyper`` is a
    NumPy array and the update is ``adam_step_multi``'s.
    """
    n = _check_arrays("adam_step_capturable", params, grads, exp_avgs, exp_avg_sqs)
    if getattr(hyper, "shape", None) != (2,) or hyper.dtype != np.float64:
        raise ValueError(f"adam_step_capturable: hyper must be a float64 array [step, lr], got "
                         f"{getattr(hyper, 'dtype', type(hyper).__name__)} of shape "
                         f"{getattr(hyper, 'shape', None)}")
    on_gpu = backend.is_cupy_array(hyper)
    for i, arrays in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
        if any(backend.is_cupy_array(a) != on_gpu for a in arrays):
            raise backend.DeviceError(f"adam_step_capturable: parameter {i} and its gradient "
                                      f"and state must be on hyper's device "
                                      f"({backend.device_of(hyper)})")
    if not on_gpu:
        hyper[0] += 1.0
        adam_step_multi(params, grads, exp_avgs, exp_avg_sqs, int(hyper[0]), float(hyper[1]),
                        beta1, beta2, eps, weight_decay, decoupled=decoupled, maximize=maximize,
                        foreach=foreach)
        return
    step = hyper[0:1]
    step += 1.0
    wd_decoupled = float(weight_decay) if decoupled else 0.0
    l2 = 0.0 if decoupled else float(weight_decay)
    sign = -1.0 if maximize else 1.0
    rest = range(n)
    if foreach and n:
        buckets, rest = multi_tensor_plan(params, grads, exp_avgs, exp_avg_sqs, [1] * n)
        for (dtype_name, _), idx in buckets.items():
            t = np.dtype(dtype_name).type
            scalars = (hyper, float(wd_decoupled), t(sign), t(l2), float(beta1), float(beta2),
                       t(eps))
            _launch_multi(dtype_name, idx, params, grads, exp_avgs, exp_avg_sqs, scalars, True)
    if rest:
        k = backend.elementwise_kernel(
            "T grad, raw float64 hyper, float64 wd_decoupled, T sign, T wd, float64 b1_d, "
            "float64 b2_d, T eps", "T param, T exp_avg, T exp_avg_sq",
            _CAPTURABLE_PROLOGUE + _CAPTURABLE_ELEMENT, "minigan_adam_capturable")
        for i in rest:
            t = params[i].dtype.type
            k(grads[i], hyper, float(wd_decoupled), t(sign), t(l2), float(beta1), float(beta2),
              t(eps), params[i], exp_avgs[i], exp_avg_sqs[i])


def multi_tensor_plan(params, grads, exp_avgs, exp_avg_sqs, steps,
                      who: str = "adam_step_multi") -> tuple:
    """How ``adam_step_multi`` splits parameters on the GPU: ``({(dtype name, step): [index,
    ...]}, [index, ...])``, the buckets that share a multi-tensor launch (each launch takes at
    most ``_MULTI_MAX_TENSORS`` of a bucket; empty tensors are in none) and the parameters left
    for the per-parameter kernel. A parameter whose gradient or state differs from it in shape
    is refused (``who`` starts the message), before anything is launched."""
    buckets, rest = {}, []
    for i, (p, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
        if not p.shape == g.shape == m.shape == v.shape:
            _raise_shapes(who, i, p, g, m, v)
        dt = p.dtype
        name = _MULTI_NAMES.get(dt)
        # (plain conditions, no generator: this runs for every parameter of every step)
        if (name is not None and g.dtype == dt and m.dtype == dt and v.dtype == dt
                and p.flags.c_contiguous and g.flags.c_contiguous and m.flags.c_contiguous
                and v.flags.c_contiguous):
            if p.size:
                buckets.setdefault((name, int(steps[i])), []).append(i)
        else:
            rest.append(i)
    return buckets, rest


def _adam_multi_cupy(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, l2,
                     decay, maximize) -> list:
    """Launch the multi-tensor kernel over every parameter it can take; returns the indices
    left for the per-parameter kernel."""
    buckets, rest = multi_tensor_plan(params, grads, exp_avgs, exp_avg_sqs, steps)
    for (dtype_name, step), idx in buckets.items():
        t = np.dtype(dtype_name).type
        bc2_sqrt = (1.0 - beta2 ** step) ** 0.5
        scalars = (t(decay), t(-1.0 if maximize else 1.0), t(l2), t(beta1), t(1.0 - beta1),
                   t(beta2), t(1.0 - beta2), t(lr / (1.0 - beta1 ** step)), t(bc2_sqrt), t(eps))
        _launch_multi(dtype_name, idx, params, grads, exp_avgs, exp_avg_sqs, scalars, False)
    return rest


def _launch_multi(dtype_name, idx, params, grads, exp_avgs, exp_avg_sqs, scalars,
                  capturable: bool) -> None:
    """The multi-tensor kernel over parameters ``idx`` of one dtype, ``_MULTI_MAX_TENSORS`` to
    a launch, with the kernel's scalars after the pointers."""
    for start in range(0, len(idx), _MULTI_MAX_TENSORS):
        chunk = idx[start:start + _MULTI_MAX_TENSORS]
        sizes, args = [], []  # (one loop, no generator: this runs at every optimizer step)
        for i in chunk:
            p = params[i]
            sizes.append(p.size)
            args += (p, grads[i], exp_avgs[i], exp_avg_sqs[i])
        kernel, grid = _adam_multi_kernel(dtype_name, tuple(sizes), capturable)
        kernel((grid,), (_MULTI_THREADS,), (*args, *scalars))


@functools.lru_cache(maxsize=128)
def _adam_multi_kernel(dtype_name: str, sizes: tuple, capturable: bool = False):
    code, name, grid = adam_multi_source(_MULTI_DTYPES[dtype_name], sizes,
                                         capturable=capturable)
    return backend.raw_kernel(code, name), grid


# The capturable kernel's scalars, and what it computes from them before the loop
_CAPTURABLE_SCALARS = """const double* __restrict__ hyper, const double wd_decoupled, const T sign,
    const T wd, const double b1_d, const double b2_d, const T eps"""
_CAPTURABLE_PROLOGUE = """    const double t = hyper[0], lr = hyper[1];
    const T decay = (T)(1.0 - lr * wd_decoupled);
    const T step_size = (T)(lr / (1.0 - pow(b1_d, t)));
    const T bc2_sqrt = (T)sqrt(1.0 - pow(b2_d, t));
    const T b1 = (T)b1_d, one_minus_b1 = (T)(1.0 - b1_d);
    const T b2 = (T)b2_d, one_minus_b2 = (T)(1.0 - b2_d);
"""


# The per-parameter capturable kernel's update, after _CAPTURABLE_PROLOGUE
_CAPTURABLE_ELEMENT = """
    const T pi = param * decay;
    const T g = sign * grad + wd * pi;
    exp_avg = b1 * exp_avg + one_minus_b1 * g;
    exp_avg_sq = b2 * exp_avg_sq + one_minus_b2 * g * g;
    param = pi - step_size * (exp_avg / (sqrt(exp_avg_sq) / bc2_sqrt + eps));
"""


def adam_multi_source(ctype: str, sizes, max_blocks: int = _MULTI_MAX_BLOCKS,
                      threads: int = _MULTI_THREADS, capturable: bool = False) -> tuple:
    """CUDA source of the multi-tensor Adam kernel for tensors of these element counts:
    ``(code, kernel name, blocks in the grid)``.

    Arguments: for each tensor ``p, g, m, v`` (pointers), then the scalars ``decay, sign, wd,
    b1, one_minus_b1, b2, one_minus_b2, step_size, bc2_sqrt, eps``. The block layout is
    ``multi_tensor_source``'s. Per element, with the parameter's AdamW shrink applied first
    (``decay`` is 1 for plain Adam), it is ``adam_step``'s update:

        p = decay p;  g = sign grad + wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= step_size m / (sqrt(v) / bc2_sqrt + eps)

    ``capturable``: the scalars are instead ``hyper, wd_decoupled, sign, wd, b1, b2, eps``
    (hyper a float64 device array ``[step count, lr]``, b1 and b2 doubles), and decay,
    step_size and bc2_sqrt are computed in the kernel, as in ``adam_step_capturable``.
    """
    scalars = _CAPTURABLE_SCALARS if capturable else (
        "const T decay, const T sign, const T wd, const T b1, const T one_minus_b1, const T b2,"
        "\n    const T one_minus_b2, const T step_size, const T bc2_sqrt, const T eps")
    return multi_tensor_source(
        "adam_multi_source", "minigan_adam_multi_capturable" if capturable
        else "minigan_adam_multi", ctype, sizes, _ADAM_POINTERS, scalars, _ADAM_MULTI_BODY,
        prologue=_CAPTURABLE_PROLOGUE if capturable else "", max_blocks=max_blocks,
        threads=threads)


_ADAM_POINTERS = (("T*", "p"), ("const T*", "g"), ("T*", "m"), ("T*", "v"))
_ADAM_MULTI_BODY = """        const T pi = p[i] * decay;
        const T gi = sign * g[i] + wd * pi;
        const T mi = b1 * m[i] + one_minus_b1 * gi;
        const T vi = b2 * v[i] + one_minus_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * (mi / (sqrt(vi) / bc2_sqrt + eps));
"""


def multi_tensor_source(who: str, name: str, ctype: str, sizes, pointers, scalars: str,
                        body: str, prologue: str = "", max_blocks: int = _MULTI_MAX_BLOCKS,
                        threads: int = _MULTI_THREADS) -> tuple:
    """CUDA source of a multi-tensor kernel ``name`` that runs ``body`` on every element ``i``
    of every tensor: ``(code, kernel name, blocks in the grid)``.

    ``pointers`` lists a tensor's arrays as ``(C type, name)`` pairs (``("T*", "p")``); the
    kernel takes them for tensor 0, then tensor 1, ..., then ``scalars`` (a C parameter list),
    and ``body`` sees each array under its name. Tensor k owns the blocks ``[first_k, first_k
    + blocks_k)`` (at most ``max_blocks``; a longer tensor is walked by a grid-stride loop); a
    block finds its tensor by a binary search compiled into the code (the sizes are constants
    of the source, which is cached per size list), so nothing but the kernel arguments crosses
    to the device. ``prologue`` runs once per thread before the search. ``who`` starts the
    error message."""
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"{who}: needs tensors of at least one element, got sizes {sizes}")
    blocks = [min(-(-s // threads), max_blocks) for s in sizes]
    firsts = [sum(blocks[:k]) for k in range(len(sizes))]

    def pick(lo, hi, indent):
        pad = " " * indent
        if hi - lo == 1:
            k = lo
            return (f"{pad}" + "".join(f"{n} = {n}{k}; " for _, n in pointers)
                    + f"n = {sizes[k]}LL; first = {firsts[k]}u; nblocks = {blocks[k]}u;\n")
        mid = (lo + hi) // 2
        return (f"{pad}if (blockIdx.x < {firsts[mid]}u) {{\n" + pick(lo, mid, indent + 4)
                + f"{pad}}} else {{\n" + pick(mid, hi, indent + 4) + f"{pad}}}\n")

    params = ",\n".join("    " + ", ".join(f"{t} __restrict__ {n}{k}" for t, n in pointers)
                        for k in range(len(sizes)))
    locals_ = " ".join(f"{t} {n};" for t, n in pointers)
    code = f"""typedef {ctype} T;
extern "C" __global__ void {name}(
{params},
    {scalars})
{{
{prologue}    {locals_} long long n; unsigned int first, nblocks;
{pick(0, len(sizes), 4)}    const long long stride = (long long)nblocks * blockDim.x;
    for (long long i = (long long)(blockIdx.x - first) * blockDim.x + threadIdx.x; i < n;
         i += stride) {{
{body}    }}
}}
"""
    return code, name, sum(blocks)


# SGD

_SGD_MOMENTUM_OP = """
    const T g = grad + wd * param;
    buf = first ? g : momentum * buf + one_minus_dampening * g;
    param -= lr * (nesterov ? g + momentum * buf : buf);
"""


def sgd_step(param, grad, momentum_buf, lr: float, momentum: float = 0.0,
             weight_decay: float = 0.0, dampening: float = 0.0, nesterov: bool = False,
             first_step: bool = False) -> None:
    """One SGD step (``torch.optim.SGD``), in place. With g = grad + wd * param:

        momentum == 0:  param -= lr * g                      (momentum_buf may be None)
        first step:     buf = g
        later steps:    buf = momentum * buf + (1 - dampening) * g
        then            param -= lr * (g + momentum * buf if nesterov else buf)
    """
    if momentum != 0 and momentum_buf is None:
        raise ValueError("sgd_step: momentum needs a momentum buffer")
    if backend.is_cupy_array(param):
        t = param.dtype.type
        if momentum == 0:
            k = backend.elementwise_kernel("T grad, T wd, T lr", "T param",
                                           "param -= lr * (grad + wd * param)", "minigan_sgd")
            k(grad, t(weight_decay), t(lr), param)
            return
        k = backend.elementwise_kernel(
            "T grad, T wd, T momentum, T one_minus_dampening, T lr, bool first, bool nesterov",
            "T param, T buf", _SGD_MOMENTUM_OP, "minigan_sgd_momentum")
        k(grad, t(weight_decay), t(momentum), t(1.0 - dampening), t(lr), np.bool_(first_step),
          np.bool_(nesterov), param, momentum_buf)
        return
    g = grad if weight_decay == 0 else grad + weight_decay * param
    if momentum != 0:
        if first_step:
            momentum_buf[...] = g
        else:
            momentum_buf *= momentum
            momentum_buf += (1.0 - dampening) * g
        g = g + momentum * momentum_buf if nesterov else momentum_buf
    param -= lr * g


# Shared by the RMSprop and Adagrad list updates

def _effective_grad(param, grad, weight_decay: float, maximize: bool):
    """torch's ``-grad if maximize`` then ``+ weight_decay * param``, on the CPU: ``grad``
    itself when neither applies, else a reused scratch buffer (the gradient is kept)."""
    if not maximize and weight_decay == 0:
        return grad
    g = _workspace.take("optim_grad", param.shape, param.dtype)
    if weight_decay == 0:
        return np.negative(grad, out=g)
    np.multiply(param, weight_decay, out=g)
    # (-grad) + wd * param and wd * param - grad are the same number
    return np.subtract(g, grad, out=g) if maximize else np.add(g, grad, out=g)


def _check_lists(who: str, params, grads, *states) -> int:
    """The number of parameters, once the lists (``None`` for a state the update keeps not)
    match in length."""
    n = len(params)
    if len(grads) != n or any(st is not None and len(st) != n for st in states):
        raise ValueError(f"{who}: params, grads and states differ in length")
    return n


def _check_shapes(who: str, i: int, p, g, *states) -> None:
    shape = p.shape
    if g.shape != shape or any(a.shape != shape for a in states):
        _raise_shapes(who, i, p, g, *states)


def _tensor_plan(who: str, params, grads, states, keys) -> tuple:
    """``multi_tensor_plan`` for any number of state lists: ``({(dtype name, key): [index,
    ...]}, [index, ...])``, the launches' buckets (a key per parameter: what its scalars
    depend on) and the parameters left for the per-parameter kernel. Refuses a parameter whose
    gradient or state differs from it in shape, before anything is launched."""
    buckets, rest = {}, []
    for i, (p, g) in enumerate(zip(params, grads)):
        arrays = [st[i] for st in states]
        _check_shapes(who, i, p, g, *arrays)
        dt = p.dtype
        name = _MULTI_NAMES.get(dt)
        fits = (name is not None and g.dtype == dt and p.flags.c_contiguous
                and g.flags.c_contiguous)
        for a in arrays:  # (a loop, no generator: this runs for every parameter of every step)
            fits = fits and a.dtype == dt and a.flags.c_contiguous
        if not fits:
            rest.append(i)
        elif p.size:
            buckets.setdefault((name, keys[i]), []).append(i)
    return buckets, rest


def _launch_lists(kernel_for, idx, lists, scalars) -> None:
    """``kernel_for(sizes) -> (kernel, grid)`` over the parameters ``idx`` of one bucket,
    ``_MULTI_MAX_TENSORS`` to a launch: each tensor's arrays from ``lists`` (params, grads,
    states, in the kernel's pointer order), then ``scalars``."""
    for start in range(0, len(idx), _MULTI_MAX_TENSORS):
        chunk = idx[start:start + _MULTI_MAX_TENSORS]
        sizes, args = [], []
        for i in chunk:
            sizes.append(lists[0][i].size)
            for arrays in lists:
                args.append(arrays[i])
        kernel, grid = kernel_for(tuple(sizes))
        kernel((grid,), (_MULTI_THREADS,), (*args, *scalars))


def _bind_elements(pointers, names) -> str:
    """The multi-tensor kernel's loop header that gives element i of each array the name the
    per-parameter kernel's operation uses (a reference to write it, a copy to read it)."""
    return "".join(f"        {'const T' if t.startswith('const') else 'T&'} {name} = {n}[i];\n"
                   for (t, n), name in zip(pointers, names))


# RMSprop

def _rmsprop_op(centered: bool, momentum: bool) -> str:
    """One element of torch's RMSprop, for the per-parameter and the multi-tensor kernels.

    The running mean of the gradient is torch's ``lerp`` (whose two forms round differently),
    with weight ``1 - alpha``."""
    op = """
    const T g_eff = sign * grad + wd * param;
    square_avg = alpha * square_avg + one_minus_alpha * g_eff * g_eff;
"""
    if centered:
        op += """    grad_avg = (one_minus_alpha < (T)0.5 && -one_minus_alpha < (T)0.5)
        ? grad_avg + one_minus_alpha * (g_eff - grad_avg)
        : g_eff - (g_eff - grad_avg) * ((T)1 - one_minus_alpha);
    const T avg = sqrt(square_avg - grad_avg * grad_avg) + eps;
"""
    else:
        op += "    const T avg = sqrt(square_avg) + eps;\n"
    if momentum:
        op += """    momentum_buffer = momentum * momentum_buffer + g_eff / avg;
    param -= lr * momentum_buffer;
"""
    else:
        op += "    param -= lr * (g_eff / avg);\n"
    return op


_RMSPROP_SCALARS = ("T sign", "T wd", "T alpha", "T one_minus_alpha", "T eps", "T lr",
                    "T momentum")


def _rmsprop_arrays(centered: bool, momentum: bool) -> tuple:
    """The state arrays of an RMSprop update, in the kernels' order."""
    return ("square_avg",) + (("grad_avg",) if centered else ()) \
        + (("momentum_buffer",) if momentum else ())


def rmsprop_step(param, grad, square_avg, lr: float, alpha: float, eps: float,
                 weight_decay: float = 0.0, momentum: float = 0.0, *, grad_avg=None,
                 momentum_buffer=None, maximize: bool = False) -> None:
    """One RMSprop step (``torch.optim.RMSprop``), in place. With g = grad (-grad when
    ``maximize``) + wd * param:

        square_avg = alpha square_avg + (1 - alpha) g^2
        centered (``grad_avg`` given):  grad_avg = lerp(grad_avg, g, 1 - alpha),
                                        avg = sqrt(square_avg - grad_avg^2) + eps
        else:                           avg = sqrt(square_avg) + eps
        momentum > 0:  buf = momentum buf + g / avg;  param -= lr buf
        else:          param -= lr g / avg

    ``momentum > 0`` needs ``momentum_buffer``. On the GPU this is ONE elementwise kernel."""
    if momentum > 0 and momentum_buffer is None:
        raise ValueError("rmsprop_step: momentum > 0 needs a momentum buffer")
    centered, use_momentum = grad_avg is not None, momentum > 0
    states = [square_avg] + ([grad_avg] if centered else []) \
        + ([momentum_buffer] if use_momentum else [])
    _check_shapes("rmsprop_step", 0, param, grad, *states)
    if backend.is_cupy_array(param):
        t = param.dtype.type
        k = backend.elementwise_kernel(
            "T grad, " + ", ".join(_RMSPROP_SCALARS),
            "T param, " + ", ".join(f"T {a}" for a in _rmsprop_arrays(centered, use_momentum)),
            _rmsprop_op(centered, use_momentum),
            "minigan_rmsprop" + "_centered" * centered + "_momentum" * use_momentum)
        k(grad, t(-1.0 if maximize else 1.0), t(weight_decay), t(alpha), t(1.0 - alpha),
          t(eps), t(lr), t(momentum), param, *states)
        return
    _rmsprop_step_numpy(param, grad, square_avg, grad_avg, momentum_buffer if use_momentum
                        else None, lr, alpha, eps, weight_decay, momentum, maximize)


def _rmsprop_step_numpy(param, grad, square_avg, grad_avg, momentum_buffer, lr, alpha, eps,
                        weight_decay, momentum, maximize):
    # The kernel's arithmetic in the same order, one in-place pass per call, with the scratch
    # buffer of Adam (and one more for the gradient when it has to be changed)
    g = _effective_grad(param, grad, weight_decay, maximize)
    tmp = _workspace.take(SCRATCH, param.shape, param.dtype)
    np.multiply(g, 1.0 - alpha, out=tmp)
    tmp *= g
    square_avg *= alpha
    square_avg += tmp
    if grad_avg is not None:
        w = param.dtype.type(1.0 - alpha)  # lerp's weight, and its test, in the param's dtype
        np.subtract(g, grad_avg, out=tmp)
        if -0.5 < w < 0.5:
            tmp *= w
            grad_avg += tmp
        else:
            tmp *= param.dtype.type(1) - w
            np.subtract(g, tmp, out=grad_avg)
        np.multiply(grad_avg, grad_avg, out=tmp)
        np.subtract(square_avg, tmp, out=tmp)
        np.sqrt(tmp, out=tmp)
    else:
        np.sqrt(square_avg, out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)
    if momentum_buffer is not None:
        momentum_buffer *= momentum
        momentum_buffer += tmp
        np.multiply(momentum_buffer, lr, out=tmp)
    else:
        tmp *= lr
    param -= tmp


def rmsprop_step_multi(params, grads, square_avgs, grad_avgs, momentum_buffers, lr: float,
                       alpha: float, eps: float, weight_decay: float = 0.0,
                       momentum: float = 0.0, *, maximize: bool = False,
                       foreach: bool = True) -> None:
    """``rmsprop_step`` over lists of parameters, in place. ``grad_avgs`` is None unless
    centered, ``momentum_buffers`` None unless ``momentum > 0``.

    On the GPU, with ``foreach``, the parameters go through ONE multi-tensor kernel per dtype
    (``rmsprop_multi_source``, 48 tensors a launch); a parameter whose arrays are not all
    C-contiguous float32/float64 of its dtype takes the per-parameter kernel. Every shape is
    checked before anything is updated."""
    if momentum > 0 and momentum_buffers is None:
        raise ValueError("rmsprop_step_multi: momentum > 0 needs momentum buffers")
    use_momentum = momentum > 0
    states = [square_avgs] + ([grad_avgs] if grad_avgs is not None else []) \
        + ([momentum_buffers] if use_momentum else [])
    n = _check_lists("rmsprop_step_multi", params, grads, *states)
    multi = bool(foreach and n and backend.is_cupy_array(params[0]))
    if multi:
        buckets, rest = _tensor_plan("rmsprop_step_multi", params, grads, states, [None] * n)
    else:
        for i in range(n):
            _check_shapes("rmsprop_step_multi", i, params[i], grads[i], *[s[i] for s in states])
        buckets, rest = {}, range(n)
    centered = grad_avgs is not None
    for (dtype_name, _), idx in buckets.items():
        t = np.dtype(dtype_name).type
        scalars = (t(-1.0 if maximize else 1.0), t(weight_decay), t(alpha), t(1.0 - alpha),
                   t(eps), t(lr), t(momentum))
        _launch_lists(functools.partial(_rmsprop_multi_kernel, dtype_name,
                                        centered=centered, momentum=use_momentum),
                      idx, [params, grads, *states], scalars)
    for i in rest:
        rmsprop_step(params[i], grads[i], square_avgs[i], lr, alpha, eps, weight_decay,
                     momentum, grad_avg=grad_avgs[i] if centered else None,
                     momentum_buffer=momentum_buffers[i] if use_momentum else None,
                     maximize=maximize)


def rmsprop_multi_source(ctype: str, sizes, centered: bool = False, momentum: bool = False,
                         max_blocks: int = _MULTI_MAX_BLOCKS,
                         threads: int = _MULTI_THREADS) -> tuple:
    """CUDA source of the multi-tensor RMSprop kernel (``multi_tensor_source``): ``(code,
    kernel name, blocks in the grid)``. Per tensor the pointers ``p, g, s`` (param, grad,
    square_avg), then ``a`` (grad_avg) if ``centered`` and ``b`` (momentum_buffer) if
    ``momentum``; then the scalars ``sign, wd, alpha, one_minus_alpha, eps, lr, momentum``.
    Each element gets ``rmsprop_step``'s update, from the same operation text."""
    arrays = _rmsprop_arrays(centered, momentum)
    letters = {"square_avg": "s", "grad_avg": "a", "momentum_buffer": "b"}
    pointers = (("T*", "p"), ("const T*", "g")) + tuple(("T*", letters[a]) for a in arrays)
    body = _bind_elements(pointers, ("param", "grad") + arrays) + "".join(
        f"    {line}\n" for line in _rmsprop_op(centered, momentum).strip("\n").split("\n"))
    return multi_tensor_source(
        "rmsprop_multi_source", "minigan_rmsprop_multi" + "_centered" * centered
        + "_momentum" * momentum, ctype, sizes, pointers,
        ", ".join(f"const {s}" for s in _RMSPROP_SCALARS), body, max_blocks=max_blocks,
        threads=threads)


@functools.lru_cache(maxsize=128)
def _rmsprop_multi_kernel(dtype_name: str, sizes: tuple, centered: bool = False,
                          momentum: bool = False):
    code, name, grid = rmsprop_multi_source(_MULTI_DTYPES[dtype_name], sizes, centered,
                                            momentum)
    return backend.raw_kernel(code, name), grid


# Adagrad

_ADAGRAD_OP = """
    const T g_eff = sign * grad + wd * param;
    state_sum += g_eff * g_eff;
    param -= clr * (g_eff / (sqrt(state_sum) + eps));
"""
_ADAGRAD_SCALARS = ("T sign", "T wd", "T clr", "T eps")


def _adagrad_clr(step: int, lr: float, lr_decay: float) -> float:
    return lr / (1.0 + (step - 1) * lr_decay)


def adagrad_step(param, grad, state_sum, step: int, lr: float, lr_decay: float = 0.0,
                 eps: float = 1e-10, weight_decay: float = 0.0, *,
                 maximize: bool = False) -> None:
    """One Adagrad step (``torch.optim.Adagrad``), in place; ``step`` is the 1-based count
    after this step's increment. With g = grad (-grad when ``maximize``) + wd * param:

        state_sum += g^2
        param -= lr / (1 + (step - 1) lr_decay) * g / (sqrt(state_sum) + eps)

    On the GPU this is ONE elementwise kernel."""
    step = int(step)
    if step < 1:
        raise ValueError(f"adagrad_step: step counts from 1, got {step}")
    _check_shapes("adagrad_step", 0, param, grad, state_sum)
    clr = _adagrad_clr(step, lr, lr_decay)
    if backend.is_cupy_array(param):
        t = param.dtype.type
        k = backend.elementwise_kernel("T grad, " + ", ".join(_ADAGRAD_SCALARS),
                                       "T param, T state_sum", _ADAGRAD_OP, "minigan_adagrad")
        k(grad, t(-1.0 if maximize else 1.0), t(weight_decay), t(clr), t(eps), param,
          state_sum)
        return
    g = _effective_grad(param, grad, weight_decay, maximize)
    tmp = _workspace.take(SCRATCH, param.shape, param.dtype)
    np.multiply(g, g, out=tmp)
    state_sum += tmp
    np.sqrt(state_sum, out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)
    tmp *= clr
    param -= tmp


def adagrad_step_multi(params, grads, state_sums, step, lr: float, lr_decay: float = 0.0,
                       eps: float = 1e-10, weight_decay: float = 0.0, *,
                       maximize: bool = False, foreach: bool = True) -> None:
    """``adagrad_step`` over lists of parameters, in place; ``step`` is one int or one per
    parameter. On the GPU, with ``foreach``, ONE multi-tensor kernel per dtype and learning
    rate (``adagrad_multi_source``; the rate depends on the step count only with
    ``lr_decay``), else one kernel per parameter. Every shape is checked before anything is
    updated."""
    n = _check_lists("adagrad_step_multi", params, grads, state_sums)
    steps = [step] * n if np.isscalar(step) else [int(s) for s in step]
    if len(steps) != n:
        raise ValueError(f"adagrad_step_multi: {len(steps)} step counts for {n} parameters")
    if n and min(steps) < 1:
        raise ValueError(f"adagrad_step_multi: step counts from 1, got {min(steps)}")
    if foreach and n and backend.is_cupy_array(params[0]):
        clrs = [_adagrad_clr(s, lr, lr_decay) for s in steps]
        buckets, rest = _tensor_plan("adagrad_step_multi", params, grads, [state_sums], clrs)
    else:
        for i in range(n):
            _check_shapes("adagrad_step_multi", i, params[i], grads[i], state_sums[i])
        buckets, rest = {}, range(n)
    for (dtype_name, clr), idx in buckets.items():
        t = np.dtype(dtype_name).type
        _launch_lists(functools.partial(_adagrad_multi_kernel, dtype_name), idx,
                      [params, grads, state_sums],
                      (t(-1.0 if maximize else 1.0), t(weight_decay), t(clr), t(eps)))
    for i in rest:
        adagrad_step(params[i], grads[i], state_sums[i], steps[i], lr, lr_decay, eps,
                     weight_decay, maximize=maximize)


def adagrad_multi_source(ctype: str, sizes, max_blocks: int = _MULTI_MAX_BLOCKS,
                         threads: int = _MULTI_THREADS) -> tuple:
    """CUDA source of the multi-tensor Adagrad kernel (``multi_tensor_source``): per tensor
    the pointers ``p, g, s`` (param, grad, state_sum), then the scalars ``sign, wd, clr,
    eps``; each element gets ``adagrad_step``'s update, from the same operation text."""
    pointers = (("T*", "p"), ("const T*", "g"), ("T*", "s"))
    body = _bind_elements(pointers, ("param", "grad", "state_sum")) + "".join(
        f"    {line}\n" for line in _ADAGRAD_OP.strip("\n").split("\n"))
    return multi_tensor_source("adagrad_multi_source", "minigan_adagrad_multi", ctype, sizes,
                               pointers, ", ".join(f"const {s}" for s in _ADAGRAD_SCALARS),
                               body, max_blocks=max_blocks, threads=threads)


@functools.lru_cache(maxsize=128)
def _adagrad_multi_kernel(dtype_name: str, sizes: tuple):
    code, name, grid = adagrad_multi_source(_MULTI_DTYPES[dtype_name], sizes)
    return backend.raw_kernel(code, name), grid
