"""GAN trainers: one D step then one G step, in the style of Chainer's DCGAN updater.

A trainer owns ``d_loss``, ``g_loss``, ``d_step``, ``g_step`` and ``step``. ``DRAGANTrainer``
overrides ``d_loss`` to add the gradient penalty; the conditional GAN is the same trainer with
labels. Trainers hold no device logic: the device follows the models and the data.

Nothing in a step reads a number back from the GPU. The losses and D outputs stay on the device
as tensors; the run loop fetches them only when it logs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from .. import backend
from ..autograd import Tensor, no_grad
from ..functional import concat, getitem, mean, sigmoid
from ..kernels.random import Generator
from ..optim import Adam
from . import losses

# Paper defaults per preset: (lr_g, lr_d, beta1, beta2)
PRESET_OPTIM = {
    "gan": (2e-4, 2e-4, 0.5, 0.999),
    "dcgan": (2e-4, 2e-4, 0.5, 0.999),
    "dcgan64": (2e-4, 2e-4, 0.5, 0.999),
    "cgan": (2e-4, 2e-4, 0.5, 0.999),
    "dragan": (1e-4, 1e-4, 0.5, 0.9),
}


@dataclass
class TrainConfig:
    """Every hyperparameter of a run; ``None`` means the preset's default."""

    preset: str = "dcgan"
    dataset: str = "mnist"
    data_dir: str | None = None
    image_size: int | None = None
    epochs: float | None = None
    steps: int | None = None
    batch_size: int = 64
    lr_g: float | None = None
    lr_d: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    z_dim: int = 100
    device: str = "auto"
    seed: int = 0
    out: str | None = None
    sample_every: int = 200
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 50
    eval_every: int = 0
    eval_samples: int = 10000
    g_loss: str = "nonsaturating"
    n_critic: int = 1
    n_gen: int = 1
    label_smoothing: float = 0.0
    joint_d_batch: bool = False
    arch: str | None = None
    g_upsample: bool = False
    ngf: int = 64
    ndf: int = 64
    gp_lambda: float = 10.0
    dragan_perturb: str = "official"
    dragan_c: float = 0.5
    n_samples_grid: int = 64
    extra: dict = field(default_factory=dict)

    def resolved(self) -> "TrainConfig":
        """A copy with the preset defaults filled in."""
        lr_g, lr_d, b1, b2 = PRESET_OPTIM[self.preset]
        c = TrainConfig(**asdict(self))
        c.lr_g = lr_g if c.lr_g is None else c.lr_g
        c.lr_d = lr_d if c.lr_d is None else c.lr_d
        c.beta1 = b1 if c.beta1 is None else c.beta1
        c.beta2 = b2 if c.beta2 is None else c.beta2
        return c

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**d)


class GANTrainer:
    """Non-saturating (or minimax) GAN training with BCE on logits.

    ``step(x, labels)`` runs ``n_critic`` D updates then ``n_gen`` G updates and returns the
    step's statistics as device tensors (d_loss, g_loss, d_real = mean D(x),
    d_fake = mean D(G(z)), penalty).
    """

    def __init__(self, G, D, cfg: TrainConfig, num_classes: int = 0, opt_G=None, opt_D=None,
                 generator: Generator | None = None):
        self.G, self.D, self.cfg = G, D, cfg
        self.num_classes = num_classes if cfg.preset == "cgan" else 0
        self.device = G.device
        self.opt_G = opt_G or Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        self.opt_D = opt_D or Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
        self.rng = generator or Generator(cfg.seed * 1000003 + 17, self.device)
        if cfg.g_loss not in ("nonsaturating", "minimax"):
            raise ValueError(f"g_loss must be 'nonsaturating' or 'minimax', got {cfg.g_loss!r}")
        if cfg.n_critic < 1 or cfg.n_gen < 1:
            raise ValueError("n_critic and n_gen must be at least 1")

    # ----- sampling
    def sample_z(self, n: int) -> Tensor:
        return Tensor(self.rng.normal((n, self.cfg.z_dim), dtype=np.float32))

    def sample_labels(self, n: int):
        if not self.num_classes:
            return None
        return self.rng.integers(0, self.num_classes, (n,))

    def generate(self, z: Tensor, labels=None) -> Tensor:
        return self.G(z, labels) if self.num_classes else self.G(z)

    def discriminate(self, x, labels=None) -> Tensor:
        return self.D(x, labels) if self.num_classes else self.D(x)

    # ----- losses
    def d_loss(self, real, fake, labels, fake_labels):
        """D's loss on a real batch and a (detached) fake batch; returns (loss, stats)."""
        smooth = 1.0 - self.cfg.label_smoothing
        if self.cfg.joint_d_batch:
            n = real.shape[0]
            both_labels = None if fake_labels is None else _cat_labels(labels, fake_labels)
            logits = self.discriminate(concat([real, fake], 0), both_labels)
            real_logits = getitem(logits, slice(0, n))
            fake_logits = getitem(logits, slice(n, None))
        else:
            real_logits = self.discriminate(real, labels)
            fake_logits = self.discriminate(fake, fake_labels)
        loss = losses.d_loss_bce(real_logits, fake_logits, smooth)
        stats = {"d_real": mean(sigmoid(real_logits.detach())),
                 "d_fake": mean(sigmoid(fake_logits.detach()))}
        return loss, stats

    def g_loss(self, fake, fake_labels):
        logits = self.discriminate(fake, fake_labels)
        if self.cfg.g_loss == "minimax":
            return losses.g_loss_minimax(logits)
        return losses.g_loss_nonsaturating(logits)

    # ----- updates
    def d_step(self, real, labels, fake, fake_labels) -> dict:
        self.opt_D.zero_grad()
        loss, stats = self.d_loss(real, fake.detach(), labels, fake_labels)
        loss.backward()
        self.opt_D.step()
        stats["d_loss"] = loss.detach()
        return stats

    def g_step(self, fake, fake_labels) -> Tensor:
        self.opt_G.zero_grad()
        self.D.requires_grad_(False)  # G's step needs no D weight gradients
        try:
            loss = self.g_loss(fake, fake_labels)
            loss.backward()
        finally:
            self.D.requires_grad_(True)
        self.opt_G.step()
        return loss.detach()

    def step(self, real: Tensor, labels=None) -> dict:
        """One training iteration on a real batch: n_critic D updates, then n_gen G updates.

        With one of each, the fake batch drawn for D is reused for G (as in Chainer's updater
        and PyTorch's DCGAN example), which saves one G forward pass.
        """
        n = real.shape[0]
        stats = {}
        fake = fake_labels = None
        for _ in range(self.cfg.n_critic):
            fake_labels = self.sample_labels(n)
            fake = self.generate(self.sample_z(n), fake_labels)
            stats = self.d_step(real, labels, fake, fake_labels)
        for i in range(self.cfg.n_gen):
            if i > 0 or self.cfg.n_critic > 1:
                fake_labels = self.sample_labels(n)
                fake = self.generate(self.sample_z(n), fake_labels)
            stats["g_loss"] = self.g_step(fake, fake_labels)
        return stats

    # ----- state
    def rng_state(self) -> dict:
        return self.rng.state_dict()

    def load_rng_state(self, state: dict) -> None:
        self.rng.load_state_dict(state)


class DRAGANTrainer(GANTrainer):
    """DRAGAN (Kodali et al.): the GAN loss plus a gradient penalty around the data, all
    backpropagated into D together."""

    def d_loss(self, real, fake, labels, fake_labels):
        loss, stats = super().d_loss(real, fake, labels, fake_labels)
        x = real.data
        x_p = losses.dragan_perturb(x, self.rng, self.cfg.dragan_perturb, self.cfg.dragan_c)
        penalty = losses.gradient_penalty(self.D, x, x_p, self.rng, self.cfg.gp_lambda,
                                          labels if self.num_classes else None)
        stats["penalty"] = penalty.detach()
        return loss + penalty, stats


def _cat_labels(a, b):
    xp = backend.get_array_module(a)
    return xp.concatenate([a, b])


def make_trainer(G, D, cfg: TrainConfig, num_classes: int = 0) -> GANTrainer:
    cls = DRAGANTrainer if cfg.preset == "dragan" else GANTrainer
    return cls(G, D, cfg, num_classes)


@no_grad()
def generate_images(G, z: Tensor, labels=None, batch: int = 500) -> np.ndarray:
    """G's samples in evaluation mode, in chunks, as a NumPy array in [-1, 1]."""
    was_training = G.training
    G.eval()
    try:
        outs = []
        for i in range(0, z.shape[0], batch):
            zi = getitem(z, slice(i, i + batch))
            li = None if labels is None else labels[i:i + batch]
            y = G(zi, li) if labels is not None else G(zi)
            outs.append(backend.to_numpy(y.data))
        return np.concatenate(outs, 0)
    finally:
        G.train(was_training)
