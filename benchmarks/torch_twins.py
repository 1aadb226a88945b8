"""PyTorch twins of minigan's presets, for the benchmarks only (never imported by minigan).

A twin is built from the minigan model itself (``twin_of``): every layer of G's and D's
``net`` becomes the ``torch.nn`` layer of the same class and hyperparameters, and its
parameters and buffers are copied, so the twin has the preset's architecture and starting
weights exactly, whatever ``build_models`` and the run's initialisation (N(0, 0.02) for the
DCGANs, PyTorch's defaults otherwise) currently produce. ``check_twin`` compares outputs.

The presets, as of this writing (minigan/gan/models.py is the reference):

* gan: G z100 -> 256 -> 512 -> 1024 -> 784 (Linear, BatchNorm1d, LeakyReLU 0.2; tanh);
  D 784 -> 1024 -> 512 -> 256 -> 1 (LeakyReLU 0.2, no batch norm).
* dragan: the same MLPs; D's loss adds the gradient penalty.
* dcgan (28x28): G ConvT(100,256,7,1,0)-BN-ReLU-ConvT(256,128,4,2,1)-BN-ReLU-ConvT(128,1,4,2,1)
  -tanh; D Conv(1,64,4,2,1)-LReLU-Conv(64,128,4,2,1)-BN-LReLU-Conv(128,1,7,1,0), no bias.
* dcgan64: Radford et al.'s 64x64 G and D, ngf = ndf = 64, 3 channels.

``TorchTrainer.step`` is ``GANTrainer.step``: one fake batch; a D update on the real batch
and the detached fake batch (one D call on both when minigan's trainer makes one, as it does
for a D that scores each sample alone: gan, dragan; two separate calls otherwise, as for
dcgan's batch-norm D); then a G update that reuses the fake batch with the non-saturating
BCE-with-logits loss, D's weights frozen. Adam's
hyperparameters are ``PRESET_OPTIM``'s. DRAGAN adds the penalty of minigan/gan/losses.py to
D's loss, backpropagated together with it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from minigan import backend
from minigan import nn as mnn
from minigan.gan import models as mmodels


def _tensor(a):
    return torch.from_numpy(np.array(backend.to_numpy(a), copy=True))  # keeps 0-d shapes


def _copy_state(dst: nn.Module, src) -> None:
    """Copy a minigan layer's parameters and buffers into its torch twin."""
    for name, t in dst.named_parameters(recurse=False):
        t.data.copy_(_tensor(getattr(src, name).data))
    for name, t in dst.named_buffers(recurse=False):
        value = getattr(src, name, None)
        if value is not None:
            t.copy_(_tensor(value))


def _layer(m) -> nn.Module:
    """The torch.nn layer of a minigan layer, with the same hyperparameters and state."""
    if isinstance(m, mnn.Linear):
        t = nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    elif isinstance(m, mnn.Conv2d):
        t = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                      m.dilation, bias=m.bias is not None)
    elif isinstance(m, mnn.ConvTranspose2d):
        t = nn.ConvTranspose2d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                               m.padding, m.output_padding, bias=m.bias is not None,
                               dilation=m.dilation)
    elif isinstance(m, (mnn.BatchNorm1d, mnn.BatchNorm2d)):
        cls = nn.BatchNorm1d if isinstance(m, mnn.BatchNorm1d) else nn.BatchNorm2d
        t = cls(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
    elif isinstance(m, mnn.LeakyReLU):
        t = nn.LeakyReLU(m.negative_slope)
    elif isinstance(m, mnn.ReLU):
        t = nn.ReLU()
    elif isinstance(m, mnn.Tanh):
        t = nn.Tanh()
    elif isinstance(m, mnn.Sigmoid):
        t = nn.Sigmoid()
    elif isinstance(m, mnn.Dropout):
        t = nn.Dropout(m.p)
    elif isinstance(m, mnn.Upsample):
        t = nn.Upsample(scale_factor=m.scale_factor, mode="nearest")
    else:
        raise NotImplementedError(f"no PyTorch twin for layer {type(m).__name__}")
    _copy_state(t, m)
    return t


class TwinGenerator(nn.Module):
    """G's layers; z enters as (N, z) for the MLP and as (N, z, 1, 1) for the DCGANs."""

    def __init__(self, G):
        super().__init__()
        self.net = nn.Sequential(*(_layer(m) for m in G.net))
        self.mlp = isinstance(G, mmodels.MLPGenerator)
        self.out_shape = tuple(G.out_shape)

    def forward(self, z):
        if self.mlp:
            return self.net(z).reshape((-1,) + self.out_shape)
        return self.net(z.reshape(z.shape[0], -1, 1, 1))


class TwinDiscriminator(nn.Module):
    """D's layers; images are flattened for the MLP; one logit per sample."""

    def __init__(self, D):
        super().__init__()
        self.net = nn.Sequential(*(_layer(m) for m in D.net))
        self.mlp = isinstance(D, mmodels.MLPDiscriminator)

    def forward(self, x):
        if self.mlp:
            x = x.reshape(x.shape[0], -1)
        return self.net(x).reshape(-1)


def twin_of(G, D, device: str = "cpu"):
    """Torch twins (G, D) of minigan's unconditional G and D, with their current weights."""
    for m in (G, D):
        if getattr(m, "num_classes", 0):
            raise NotImplementedError("the twins cover the unconditional presets only")
    return TwinGenerator(G).to(device), TwinDiscriminator(D).to(device)


@torch.no_grad()
def check_twin(G, D, tG, tD, z, x) -> float:
    """Largest |difference| between minigan's and the twin's G(z) and D(x), in eval mode (so
    that no running statistics move); z and x are NumPy arrays."""
    from minigan.autograd import Tensor, no_grad

    dev = G.device
    modes = [m.training for m in (G, D, tG, tD)]
    for m in (G, D, tG, tD):
        m.eval()
    try:
        with no_grad():
            g = backend.to_numpy(G(Tensor(backend.to_device(z, dev))).data)
            d = backend.to_numpy(D(Tensor(backend.to_device(x, dev))).data)
        tdev = next(tG.parameters()).device
        tg = tG(torch.from_numpy(z).to(tdev)).cpu().numpy()
        td = tD(torch.from_numpy(x).to(tdev)).cpu().numpy()
    finally:
        for m, mode in zip((G, D, tG, tD), modes):
            m.train(mode)
    return float(max(np.abs(g - tg).max(), np.abs(d - td).max()))


def _bce_const(logits, target: float):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def gradient_penalty(D, x, lam=10.0, c=0.5):
    """DRAGAN as minigan/gan/losses.py: x_p = x + c * std(x) * U[0,1) (one population std over
    the batch), alpha ~ U[0,1] per sample, penalty = lam * mean((||grad x_hat D||_2 - 1)^2)."""
    x_p = x + c * x.std(correction=0) * torch.rand_like(x)
    alpha = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype)
    x_hat = (x + alpha * (x_p - x)).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    g = g.reshape(g.shape[0], -1)
    norm = torch.sqrt((g * g).sum(1) + 1e-12)
    return ((norm - 1.0) ** 2).mean() * lam


def twin_joint(cfg, D) -> bool:
    """Whether minigan's trainer scores the real and the fake batch of a step in one pass of
    ``D`` (a minigan model; real and fake batches of one shape, as in every step)."""
    from minigan.gan.trainer import scores_each_sample_alone

    return bool(cfg.joint_d_batch or scores_each_sample_alone(D))


class TorchTrainer:
    """``GANTrainer.step`` in PyTorch, configured by minigan's resolved ``TrainConfig``."""

    def __init__(self, G, D, cfg, joint: bool = False):
        """``joint``: score the real and the fake batch in one D call, as minigan's trainer
        does where ``minigan.gan.trainer.joint_d_batch`` holds (``twin_joint`` says so for
        the minigan D the twin was made of)."""
        if cfg.g_loss != "nonsaturating" or cfg.n_critic != 1 or cfg.n_gen < 1 \
                or cfg.label_smoothing or cfg.dragan_perturb != "official":
            raise NotImplementedError("the twin trainer covers the presets' default steps and "
                                      "--n-gen only")
        self.joint = bool(joint or cfg.joint_d_batch)
        self.G, self.D, self.z_dim, self.n_gen = G, D, cfg.z_dim, cfg.n_gen
        self.dragan = cfg.preset == "dragan"
        self.gp_lambda, self.dragan_c = cfg.gp_lambda, cfg.dragan_c
        betas = (cfg.beta1, cfg.beta2)
        self.opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=betas)
        self.opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=betas)

    def step(self, real):
        n = real.shape[0]
        z = torch.randn(n, self.z_dim, device=real.device, dtype=real.dtype)
        fake = self.G(z)
        # D update: real and detached fake in one call where minigan makes one, else in two
        # (which matters with batch norm in D)
        self.opt_D.zero_grad()
        if self.joint:
            logits = self.D(torch.cat([real, fake.detach()]))
            real_logits, fake_logits = logits[:n], logits[n:]
        else:
            real_logits = self.D(real)
            fake_logits = self.D(fake.detach())
        d_loss = _bce_const(real_logits, 1.0) + _bce_const(fake_logits, 0.0)
        stats = {"d_real": torch.sigmoid(real_logits.detach()).mean(),
                 "d_fake": torch.sigmoid(fake_logits.detach()).mean()}
        if self.dragan:
            penalty = gradient_penalty(self.D, real, self.gp_lambda, self.dragan_c)
            stats["penalty"] = penalty.detach()
            d_loss = d_loss + penalty
        d_loss.backward()
        self.opt_D.step()
        stats["d_loss"] = d_loss.detach()
        # G updates: the first on the same fake batch, each further one (--n-gen) on new noise,
        # as GANTrainer.step does; D's weights need no gradients here
        for i in range(self.n_gen):
            if i > 0:
                fake = self.G(torch.randn(n, self.z_dim, device=real.device, dtype=real.dtype))
            self.opt_G.zero_grad()
            self.D.requires_grad_(False)
            try:
                g_loss = _bce_const(self.D(fake), 1.0)
                g_loss.backward()
            finally:
                self.D.requires_grad_(True)
            self.opt_G.step()
        stats["g_loss"] = g_loss.detach()
        return stats
