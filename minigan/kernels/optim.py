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
"""
from __future__ import annotations

import functools

import numpy as np

from .. import backend
from .workspace import SCRATCH, _workspace

__all__ = ["adam_step", "adam_step_capturable", "adam_step_multi", "sgd_step"]


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
    tmp = _workspace.take(SCRATCH, param.shape, param.dtype)
    g = grad
    if weight_decay != 0:
        g = np.multiply(param, weight_decay, out=_workspace.take("adam_g", param.shape,
                                                                 param.dtype))
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


def _raise_shapes(who: str, i: int, p, g, m, v):
    raise ValueError(f"{who}: parameter {i} has shape {tuple(p.shape)}, its gradient "
                     f"{tuple(g.shape)} and its state {tuple(m.shape)} and {tuple(v.shape)}; "
                     "they must all match")


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
# _MULTI_MAX_TENSORS tensors: four pointers each, 1.5 KiB of kernel arguments in all, well
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
    b1, one_minus_b1, b2, one_minus_b2, step_size, bc2_sqrt, eps``. Tensor k owns the blocks
    ``[first_k, first_k + blocks_k)``; a block finds its tensor by a binary search compiled
    into the code (the sizes are constants of the source, which is cached per size list), so
    nothing but the kernel arguments crosses to the device. Per element, with the parameter's
    AdamW shrink applied first (``decay`` is 1 for plain Adam), it is ``adam_step``'s update:

        p = decay p;  g = sign grad + wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= step_size m / (sqrt(v) / bc2_sqrt + eps)

    ``capturable``: the scalars are instead ``hyper, wd_decoupled, sign, wd, b1, b2, eps``
    (hyper a float64 device array ``[step count, lr]``, b1 and b2 doubles), and decay,
    step_size and bc2_sqrt are computed in the kernel, as in ``adam_step_capturable``.
    """
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"adam_multi_source: needs tensors of at least one element, got "
                         f"sizes {sizes}")
    blocks = [min(-(-s // threads), max_blocks) for s in sizes]
    firsts = [sum(blocks[:k]) for k in range(len(sizes))]
    name = "minigan_adam_multi_capturable" if capturable else "minigan_adam_multi"

    def pick(lo, hi, indent):
        pad = " " * indent
        if hi - lo == 1:
            k = lo
            return (f"{pad}p = p{k}; g = g{k}; m = m{k}; v = v{k}; n = {sizes[k]}LL; "
                    f"first = {firsts[k]}u; nblocks = {blocks[k]}u;\n")
        mid = (lo + hi) // 2
        return (f"{pad}if (blockIdx.x < {firsts[mid]}u) {{\n" + pick(lo, mid, indent + 4)
                + f"{pad}}} else {{\n" + pick(mid, hi, indent + 4) + f"{pad}}}\n")

    scalars = _CAPTURABLE_SCALARS if capturable else (
        "const T decay, const T sign, const T wd, const T b1, const T one_minus_b1, const T b2,"
        "\n    const T one_minus_b2, const T step_size, const T bc2_sqrt, const T eps")
    prologue = _CAPTURABLE_PROLOGUE if capturable else ""
    params = ",\n".join(f"    T* __restrict__ p{k}, const T* __restrict__ g{k}, "
                        f"T* __restrict__ m{k}, T* __restrict__ v{k}" for k in range(len(sizes)))
    code = f"""typedef {ctype} T;
extern "C" __global__ void {name}(
{params},
    {scalars})
{{
{prologue}    T* p; const T* g; T* m; T* v; long long n; unsigned int first, nblocks;
{pick(0, len(sizes), 4)}    const long long stride = (long long)nblocks * blockDim.x;
    for (long long i = (long long)(blockIdx.x - first) * blockDim.x + threadIdx.x; i < n;
         i += stride) {{
        const T pi = p[i] * decay;
        const T gi = sign * g[i] + wd * pi;
        const T mi = b1 * m[i] + one_minus_b1 * gi;
        const T vi = b2 * v[i] + one_minus_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * (mi / (sqrt(vi) / bc2_sqrt + eps));
    }}
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
