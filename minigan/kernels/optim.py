"""Optimizer update kernels with PyTorch's semantics, updating every array in place.

On the GPU each update is ONE fused ``ElementwiseKernel`` per parameter: it reads param, grad and
the state once and writes them once. The step-dependent scalars (bias corrections, step size) are
computed on the host from Python numbers and passed as kernel arguments, so nothing is ever read
back from the device. On the CPU the same arithmetic runs in place with one reused scratch buffer.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .workspace import SCRATCH, _workspace

__all__ = ["adam_step", "adam_step_multi", "sgd_step"]


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


def adam_step_multi(params, grads, exp_avgs, exp_avg_sqs, step, lr: float, beta1: float,
                    beta2: float, eps: float, weight_decay: float = 0.0) -> None:
    """``adam_step`` over lists of parameters; ``step`` is one int or one per parameter."""
    n = len(params)
    if not len(grads) == len(exp_avgs) == len(exp_avg_sqs) == n:
        raise ValueError("adam_step_multi: params, grads and states differ in length")
    steps = [step] * n if np.isscalar(step) else list(step)
    for p, g, m, v, s in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
        adam_step(p, g, m, v, s, lr, beta1, beta2, eps, weight_decay)


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
