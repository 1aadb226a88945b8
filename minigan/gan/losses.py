"""GAN losses on discriminator logits, and DRAGAN's gradient penalty."""
from __future__ import annotations

from .. import backend
from ..autograd import Tensor, _seed, grad
from ..functional import mean, softplus
from ..functional.loss import (
    bce_with_logits_const,
    bce_with_logits_const_pair,
    bce_with_logits_const_split,
    unit_norm_penalty,
)
from ..kernels import elementwise as K


def d_loss_bce(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """-log D(x) - log(1 - D(G(z))), with one-sided label smoothing through ``real_label``."""
    return bce_with_logits_const_pair(real_logits, real_label, fake_logits, 0.0)


def d_loss_bce_joint(logits: Tensor, n: int, real_label: float = 1.0) -> Tensor:
    """``d_loss_bce(logits[:n], logits[n:], real_label)`` for D's logits of one pass over the
    real batch (the first n) and the fake batch, as one op on them."""
    return bce_with_logits_const_split(logits, n, real_label, 0.0)


def g_loss_nonsaturating(fake_logits: Tensor) -> Tensor:
    """-log D(G(z)): the generator loss of Goodfellow et al.'s practical recipe."""
    return bce_with_logits_const(fake_logits, 1.0)


def g_loss_minimax(fake_logits: Tensor) -> Tensor:
    """log(1 - D(G(z))) = -softplus(logit): the original minimax objective (saturates early)."""
    return mean(-softplus(fake_logits))


def dragan_perturb(x, generator, mode: str = "official", c: float = 0.5):
    """DRAGAN's perturbed samples around the data, as arrays on x's device.

    official (the authors' code): x_p = x + c * std(x) * U[0, 1), with one std over the whole
    batch; gaussian (the paper): x_p = x + N(0, c I).
    """
    if mode == "official":
        u = generator.uniform(x.shape, dtype=x.dtype)
        return K.add_scaled(x, u, K.std_all(x), c)
    if mode == "gaussian":
        return K.add_scaled(x, generator.normal(x.shape, dtype=x.dtype), x.dtype.type(c ** 0.5))
    raise ValueError(f"DRAGAN perturbation must be 'official' or 'gaussian', got {mode!r}")


def gradient_penalty(D, x, x_perturbed, generator, lam: float = 10.0, labels=None):
    """lam * mean_i (||grad_x D(x_hat_i)||_2 - 1)^2 with x_hat = x + alpha (x_p - x), one alpha
    per sample, and the norm over all of a sample's values. Differentiable in D's weights."""
    xp = backend.get_array_module(x)
    alpha = generator.uniform((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype)
    x_hat = Tensor(xp.ascontiguousarray(K.lerp(x, x_perturbed, alpha)), requires_grad=True)
    logits = D(x_hat, labels) if labels is not None else D(x_hat)
    # the gradient of sum(logits), seeded with ones of the logits' shape: the engine's shared
    # array (no reduction, no fill, and a contiguous operand for the GEMMs of the graph that
    # the double backward runs through; nothing writes into it)
    (g,) = grad(logits, x_hat, _seed(logits.data), create_graph=True)
    # x_hat is this function's own: no .grad of it is ever read. The backward of the penalty
    # reaches it only with the zero derivative of D's activation masks (autograd's
    # ZERO_GRAD), which would give it a .grad of zeros, an allocation (a GPU launch) a step
    x_hat.requires_grad_(False)
    return unit_norm_penalty(g, lam, 1e-12)
