"""GAN trainers: one D step then ``n_gen`` G steps (one for every preset but dcgan on images,
which takes three), in the style of Chainer's DCGAN updater.

A trainer owns ``d_loss``, ``g_loss``, ``d_step``, ``g_step`` and ``step``. ``DRAGANTrainer``
overrides ``d_loss`` to add the gradient penalty; the conditional GAN is the same trainer with
labels. Trainers hold no device logic: the device follows the models and the data.

Nothing in a step reads a number back from the GPU. The losses and D outputs stay on the device
as tensors; the run loop fetches them only when it logs.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from .. import backend
from .. import nn
from ..autograd import Tensor, no_grad
from ..functional import concat, getitem
from ..kernels.elementwise import sigmoid_mean_pair
from ..kernels.random import Generator
from ..optim import Adam
from . import losses
from . import models
from .models import POINT_G_BATCH_NORM, POINT_HIDDEN

# Paper defaults per preset: (lr_g, lr_d, beta1, beta2)
PRESET_OPTIM = {
    "gan": (2e-4, 2e-4, 0.5, 0.999),
    "dcgan": (2e-4, 2e-4, 0.5, 0.999),
    "dcgan64": (2e-4, 2e-4, 0.5, 0.999),
    "cgan": (2e-4, 2e-4, 0.5, 0.999),
    "dragan": (1e-4, 1e-4, 0.5, 0.9),
}
IMAGE_BATCH_SIZE = 64
# Where a preset's image recipe departs from PRESET_OPTIM's paper settings, tuned on MNIST.
# dcgan takes three G updates per D update (a seed-article variant, GUIDE.md) with G at twice
# the paper's learning rate. Measured on MNIST (CPU, seed 0, 10k samples; README.md):
# * the paper's recipe (one G update, 2e-4): 20 epochs ended at IS 7.40 (CPU, seed 0) and 7.32
#   (GPU, seed 1), under the 7.5 target, with KL to uniform 0.021 and 0.029;
# * two G updates (the default until 2026-12-01): 20 epochs IS 7.68, KL 0.013 (CPU, seed 0;
#   GPU seeds 0 and 1: 7.73 and 7.71, KL 0.011 and 0.014), but at epoch 5 the 4s and 8s were
#   rare and mostly malformed (confident share 0.648, class 8 at 0.32 of its fair share);
# * three G updates and lr_g 4e-4: epoch 5 FID 63.3 against 101.8, IS 7.36, KL 0.017, confident
#   share 0.690, weakest class 0.49, clear digits of every class on the fixed-noise grid;
#   epoch 20 FID 30.6, IS 7.87, KL 0.007 (two updates: 43.4, 7.68, 0.013). The GPU check of
#   this recipe waits for a device (scripts/device_check.sh dcgan20).
# Either change alone did less at epoch 5 (n_gen 3: FID 78.2, weakest class 0.44; lr_g 4e-4:
# 82.2, 0.47). --label-smoothing 0.1 did not help (IS 7.12 at epoch 15, n_gen 2), nor did
# --joint-d-batch (BatchNorm in D then lets the fake-only G batch fool D). Every other preset
# keeps PRESET_OPTIM and one G update; on the 2-D toys every preset, dcgan included, takes
# POINT_DEFAULTS and one G update instead.
PRESET_TUNED = {"dcgan": {"n_gen": 3, "lr_g": 4e-4}}
# DRAGAN's penalty as in the authors' code: lambda 10, x_p = x + 0.5 * std(x) * U[0, 1)
DRAGAN_DEFAULTS = {"gp_lambda": 10.0, "dragan_c": 0.5, "dragan_perturb": "official"}

# Defaults for the 2-D toys (ring8, grid25), where the image recipes above fail: with them the
# ring8 GAN covered 3 of 8 modes and DRAGAN none in 3000 steps. TrainConfig.resolved() applies
# them only to the fields a user left as None; presets without an entry use "gan"'s (on points
# every non-DRAGAN preset is the same MLP GAN). The networks for points (G with batch norm and
# ReLU) are in models.py. Measured on ring8 (10k samples; CPU, one thread), modes covered for
# seeds 0/1/2: gan 8/8/8 (high-quality share 0.59/0.56/0.59; 75-80 s a run on a free CPU),
# dragan 8/8/8 (0.66/0.50/0.71; 150-165 s a run on a shared CPU; seed 3 also 8, 0.75), up from
# 3 and 0. Why:
# * gan and dragan: the learning rates decay linearly to 0 over the run (gan without it: 7/7/8
#   modes, and the count swung by one or two between checkpoints as G drifted from mode to mode;
#   dragan without it still swung between 3 and 8 modes at 9000-12000 steps);
# * a large batch (512 for gan) gives D a view of every mode in each step and steadies the mode
#   weights; at batch 64-256 runs kept dropping one or two modes;
# * gan: D at half G's learning rate. A faster D (1e-3) chased G from mode to mode (2-4 modes);
#   an equal one left two modes under-filled on some seeds;
# * dragan: the penalty (lambda 10, the official perturbation: a region ~0.7 wide around modes
#   of std 0.02) caps D's slope near the data, so G finds the 8 modes early (mass evenly split)
#   but sharpens slowly; the count needs >= 1.25% of samples within 3 std of each centre. D
#   needs a larger learning rate than G (5:1; equal rates 1e-4-1e-3 gave 0-2 modes in 3000
#   steps), and the run needs 14000 steps with the decay: at 6000 steps (rates 2e-4/1e-3) it
#   froze G blurry (seeds 0/1: 3/6 modes); with the rates below, at 10000
#   seeds 0/1/2 gave 8/6/8, at 12000 8/8/8 but seed 3 6. Rates 2e-4/1e-3 without decay: 7/7/3
#   at 6000 steps; 6e-4/3e-3 collapsed to one mode. Batch 512 or beta2 0.999 did not help.
POINT_DEFAULTS = {
    "gan": {"steps": 4000, "batch_size": 512, "lr_g": 2e-4, "lr_d": 1e-4,
            "beta1": 0.5, "beta2": 0.999, "lr_decay": "linear"},
    "dragan": {"steps": 14000, "batch_size": 256, "lr_g": 4e-4, "lr_d": 2e-3,
               "beta1": 0.5, "beta2": 0.9, "lr_decay": "linear"},
}


# Learning-rate schedules over a run: "none" keeps lr_g/lr_d; "linear" scales both by
# 1 - step/total_steps (step = updates done so far), reaching 0 at the end of the run.
LR_DECAYS = ("none", "linear")


def lr_scale(schedule: str, step: int, total_steps: int) -> float:
    """The factor a schedule applies to the base learning rates before update ``step + 1``."""
    if schedule == "none":
        return 1.0
    if schedule == "linear":
        return max(0.0, 1.0 - step / max(total_steps, 1))
    raise ValueError(f"lr_decay must be one of {', '.join(LR_DECAYS)}, got {schedule!r}")


def is_toy_dataset(name) -> bool:
    """True for the 2-D point data sets (ring8, grid25), whose defaults are POINT_DEFAULTS."""
    from ..data import TOY_STD
    return str(name).lower() in TOY_STD


# The names load_dataset reads from files under --data-dir (or the cache, or a download).
_FILE_DATASETS = ("mnist", "fashion-mnist", "fashionmnist")


def is_file_dataset(name) -> bool:
    """True for mnist and fashion-mnist, the data sets read from ``data_dir`` (as
    ``load_dataset`` tells its names apart)."""
    return str(name).lower().replace("_", "-") in _FILE_DATASETS


def is_folder_dataset(name) -> bool:
    """True when ``dataset`` is a path to a folder of images, not a data set's name."""
    return not (is_file_dataset(name) or is_toy_dataset(name))


@dataclass
class TrainConfig:
    """Every hyperparameter of a run; ``None`` means the preset's default.

    ``resolved()`` fills the defaults in: the paper's optimiser settings per preset
    (``PRESET_OPTIM``), batch size 64 and one G update per D update, with ``PRESET_TUNED``'s
    exceptions, for
    images; ``POINT_DEFAULTS`` (steps, batch size, learning rates, betas) and the point
    networks (``point_hidden``, ``point_g_batch_norm``, see models.py) for the 2-D toys ring8
    and grid25. Any field given explicitly wins; for a toy, ``epochs`` alone replaces the
    default step count. Without ``steps`` or ``epochs`` an image run trains for one epoch.

    ``image_size`` and ``channels`` (1 grey, 3 RGB) of image data are detected when None; a
    run stores what it found in its config.json, so a resume reads the data the same way.

    ``cuda_graph`` runs each step on the GPU as one replayed CUDA graph (``gan/graph.py``):
    the same training, with the host's cost per step cut to a few calls.
    """

    preset: str = "dcgan"
    dataset: str = "mnist"
    data_dir: str | None = None
    image_size: int | None = None
    channels: int | None = None
    epochs: float | None = None
    steps: int | None = None
    batch_size: int | None = None
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
    n_gen: int | None = None
    label_smoothing: float = 0.0
    joint_d_batch: bool = False
    arch: str | None = None
    g_upsample: bool = False
    ngf: int = 64
    ndf: int = 64
    gp_lambda: float | None = None
    dragan_perturb: str | None = None
    dragan_c: float | None = None
    lr_decay: str | None = None
    point_hidden: tuple | None = None
    point_g_batch_norm: bool | None = None
    cuda_graph: bool = False
    n_samples_grid: int = 64
    extra: dict = field(default_factory=dict)

    def defaults(self) -> dict:
        """The values ``resolved()`` gives the fields left as None, for this preset and data."""
        lr_g, lr_d, b1, b2 = PRESET_OPTIM[self.preset]
        if is_toy_dataset(self.dataset):
            return dict(DRAGAN_DEFAULTS, point_hidden=POINT_HIDDEN,
                        point_g_batch_norm=POINT_G_BATCH_NORM, n_gen=1,
                        **POINT_DEFAULTS.get(self.preset, POINT_DEFAULTS["gan"]))
        return (dict(DRAGAN_DEFAULTS, batch_size=IMAGE_BATCH_SIZE, lr_g=lr_g, lr_d=lr_d,
                     beta1=b1, beta2=b2, lr_decay="none", n_gen=1)
                | PRESET_TUNED.get(self.preset, {}))

    def resolved(self) -> "TrainConfig":
        """A copy with the preset (and, for the 2-D toys, point-data) defaults filled in."""
        self.validate()
        c = TrainConfig(**asdict(self))
        for name, value in self.defaults().items():
            if name == "steps" and c.epochs is not None:
                continue  # --epochs alone picks the run length
            if getattr(c, name) is None:
                setattr(c, name, value)
        return c

    # (field, smallest allowed value, whether None is allowed): intervals and sizes that would
    # otherwise fail deep inside a run (a modulo by zero) or silently do nothing
    _AT_LEAST = (("steps", 1, True), ("sample_every", 1, False), ("checkpoint_every", 1, False),
                 ("keep_checkpoints", 1, True), ("log_every", 1, False),
                 ("eval_every", 0, False), ("z_dim", 1, False), ("seed", 0, False),
                 ("image_size", 1, True), ("batch_size", 1, True), ("n_samples_grid", 1, False),
                 ("eval_samples", 6, False), ("ngf", 1, False), ("ndf", 1, False),
                 ("n_critic", 1, False), ("n_gen", 1, True))
    # (field, allowed values, whether None is allowed)
    _ONE_OF = (("preset", tuple(PRESET_OPTIM), False),
               ("g_loss", ("nonsaturating", "minimax"), False),
               ("arch", ("mlp", "conv"), True),
               ("dragan_perturb", ("official", "gaussian"), True),
               ("lr_decay", LR_DECAYS, True),
               ("channels", (1, 3), True))
    _NO_FLAG = ("n_samples_grid", "eval_samples", "ngf", "ndf", "channels", "point_hidden",
                "point_g_batch_norm", "extra")  # Python API (and config.json) only

    def validate(self) -> None:
        """ValueError naming the field (and its command-line flag) that is out of range or of
        the wrong type; a hand-edited config.json is checked the same way."""
        self._check_ranges()

    def _check_ranges(self) -> None:
        def flag(name):
            return "" if name in self._NO_FLAG else f" (--{name.replace('_', '-')})"

        def real(v):
            return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)

        for name, choices, none_ok in self._ONE_OF:
            v = getattr(self, name)
            if v is None and none_ok:
                continue
            if isinstance(v, bool) or not isinstance(v, (str, int)) or v not in choices:
                expected = ", ".join(map(str, choices))
                if name == "preset":
                    raise ValueError(f"unknown preset {v!r}: expected one of {expected}")
                raise ValueError(f"{name}{flag(name)} must be one of {expected}, got {v!r}")
        for name, none_ok in (("dataset", False), ("data_dir", True), ("out", True),
                              ("device", False)):
            v = getattr(self, name)
            if v is None and none_ok:
                continue
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"{name}{flag(name)} must be a non-empty "
                                 f"{'path' if name in ('data_dir', 'out') else 'name'}, got "
                                 f"{v!r}")
        for name, lo, none_ok in self._AT_LEAST:
            v = getattr(self, name)
            if v is None and none_ok:
                continue
            if not real(v) or int(v) != v or v < lo:
                raise ValueError(f"{name}{flag(name)} must be an integer >= {lo}, got {v!r}")
        if self.epochs is not None and not (real(self.epochs) and self.epochs > 0):
            raise ValueError(f"epochs (--epochs) must be a finite number > 0, got "
                             f"{self.epochs!r}")
        if not (real(self.label_smoothing) and 0.0 <= self.label_smoothing < 1.0):
            raise ValueError(f"label_smoothing (--label-smoothing) must lie in [0, 1), got "
                             f"{self.label_smoothing!r}")
        for name in ("lr_g", "lr_d", "gp_lambda", "dragan_c"):
            v = getattr(self, name)
            if v is not None and not (real(v) and v >= 0):  # NaN and inf too
                raise ValueError(f"{name}{flag(name)} must be a finite number >= 0, got {v!r}")
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            if v is not None and not (real(v) and 0.0 <= v < 1.0):
                raise ValueError(f"{name}{flag(name)} must lie in [0, 1), got {v!r}")
        for name, none_ok in (("joint_d_batch", False), ("g_upsample", False),
                              ("point_g_batch_norm", True), ("cuda_graph", False)):
            v = getattr(self, name)
            if not (isinstance(v, bool) or (v is None and none_ok)):
                raise ValueError(f"{name}{flag(name)} must be true or false, got {v!r}")
        hidden = self.point_hidden
        if hidden is not None and not (
                isinstance(hidden, (tuple, list)) and hidden
                and all(isinstance(h, numbers.Integral) and not isinstance(h, bool) and h > 0
                        for h in hidden)):
            raise ValueError(f"point_hidden must be a list of positive integers, got "
                             f"{hidden!r}")
        if not isinstance(self.extra, dict):
            raise ValueError(f"extra must be a dict, got {self.extra!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """A config from a dict such as config.json's (not validated: see ``validate``)."""
        if not isinstance(d, dict):
            raise ValueError(f"a config must be a JSON object (a dict), got "
                             f"{type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(map(str, set(d) - known))
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        d = dict(d)
        if d.get("out") == "":
            d["out"] = None  # older versions stored --out "" (which meant the default folder)
        return cls(**d)


# DRAGAN's penalty settings: no other preset has a penalty for them to set.
_DRAGAN_FLAGS = ("gp_lambda", "dragan_perturb", "dragan_c")


def check_preset_settings(cfg: TrainConfig, sample_shape=None) -> None:
    """ValueError for a setting that the run would silently ignore, naming its flag and why:
    ``--arch`` on the 2-D toys or ``--arch mlp`` for dcgan/dcgan64; ``--g-upsample`` wherever
    G is not the 28x28 conv generator; ``--gp-lambda``, ``--dragan-perturb`` and
    ``--dragan-c`` for any preset but dragan; ``--image-size`` (and ``channels``) on the 2-D
    toys; ``--data-dir`` for any data set not read from it (the toys, an image folder).
    ``sample_shape``, once the data is loaded, adds the image-size case.

    ``cfg`` is the config as given, before ``resolved()`` fills in the defaults (which set
    DRAGAN's penalty settings for every preset)."""
    points = is_toy_dataset(cfg.dataset) or (sample_shape is not None
                                             and len(sample_shape) == 1)
    if cfg.preset != "dragan":
        given = [(name, getattr(cfg, name)) for name in _DRAGAN_FLAGS
                 if getattr(cfg, name) is not None]
        if given:
            flags = ", ".join(f"--{name.replace('_', '-')} {value}" for name, value in given)
            raise ValueError(
                f"{flags}: ignored by the {cfg.preset} preset, which has no gradient penalty "
                f"(only dragan has one); drop {'it' if len(given) == 1 else 'them'}, or train "
                "dragan")
    if points:
        for name, flag in (("image_size", "--image-size"), ("channels", "channels")):
            value = getattr(cfg, name)
            if value is not None:
                raise ValueError(f"{flag} {value}: ignored on the 2-D points of {cfg.dataset}, "
                                 f"which are not images; drop {flag}")
    if cfg.data_dir is not None and not is_file_dataset(cfg.dataset):
        what = (f"the 2-D points of {cfg.dataset} are drawn, not read from files"
                if is_toy_dataset(cfg.dataset) else
                f"--dataset {cfg.dataset} is a folder of images, read from that folder itself")
        raise ValueError(f"--data-dir {cfg.data_dir}: ignored, since it says where mnist and "
                         f"fashion-mnist are read from, and {what}; drop --data-dir")
    if cfg.arch is not None:
        if points:
            raise ValueError(f"--arch {cfg.arch}: the {cfg.preset} preset uses MLPs on the 2-D "
                             f"points of {cfg.dataset}, whatever --arch says; drop --arch")
        if cfg.preset in ("dcgan", "dcgan64") and cfg.arch != "conv":
            raise ValueError(f"--arch {cfg.arch}: the {cfg.preset} preset has conv networks "
                             "only; drop --arch (gan, cgan and dragan have MLPs)")
    if cfg.g_upsample:
        arch = cfg.arch or ("mlp" if cfg.preset in ("gan", "cgan", "dragan") else "conv")
        why = None
        if points:
            why = f"its G is an MLP on the 2-D points of {cfg.dataset}"
        elif arch == "mlp":
            why = "its G is an MLP here (add --arch conv for the conv G that can upsample)"
        elif cfg.preset == "dcgan64":
            why = "its G (Radford et al.'s) has transposed convolutions only"
        elif sample_shape is not None and tuple(sample_shape[1:]) != (28, 28):
            h, w = sample_shape[1:]
            why = (f"only the 28x28 conv G can upsample, and these images are {h}x{w} "
                   "(Radford et al.'s G is used)")
        if why:
            raise ValueError(f"--g-upsample is ignored by the {cfg.preset} preset: {why}; "
                             "drop --g-upsample")


# Layers whose output for a sample depends on that sample alone (and on the weights), with
# the forward of exactly these classes: a subclass may override forward, so it is not one.
# BatchNorm (batch statistics) and Dropout (its random draws) are not; Flatten is while it
# keeps the batch axis, Dropout while it draws nothing.
_PER_SAMPLE_LAYERS = frozenset({
    nn.Sequential, nn.Identity, nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.LeakyReLU,
    nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Upsample, nn.MaxPool2d, nn.AvgPool2d,
    nn.Embedding, models.MLPDiscriminator, models.DCGANDiscriminator,
    models.DCGANDiscriminator28})


def scores_each_sample_alone(D) -> bool:
    """Whether D's output for a sample depends on that sample (and its label) alone, so that
    one pass over the real and the fake batch gives the values of two passes: D is built of
    ``_PER_SAMPLE_LAYERS`` only (no batch norm in training mode, no random dropout, no
    module of an unknown class) and has no forward hooks, which would see one call instead
    of two."""
    for m in D.modules():
        kind = type(m)
        if m._forward_pre_hooks or m._forward_hooks:
            return False
        if kind is nn.Dropout:
            if m.p and m.training:
                return False
        elif kind is nn.Flatten:
            if not (isinstance(m.start_dim, int) and m.start_dim >= 1):
                return False
        elif kind not in _PER_SAMPLE_LAYERS:
            return False
    return True


def joint_d_batch(cfg, D, real, fake) -> bool:
    """Whether the D step scores the real and the fake batch in one pass: when the config
    asks for it (``--joint-d-batch``: with batch norm in D that changes the results), or when
    D scores each sample alone and the two batches have one shape and dtype (the same values,
    in fewer and larger ops: on the GPU about a fifth fewer launches per gan step)."""
    if cfg.joint_d_batch:
        return True
    return (real.shape[1:] == fake.shape[1:] and real.dtype == fake.dtype
            and scores_each_sample_alone(D))


class GANTrainer:
    """Non-saturating (or minimax) GAN training with BCE on logits.

    ``step(x, labels)`` runs ``n_critic`` D updates then ``n_gen`` G updates and returns the
    step's statistics as device tensors (d_loss, g_loss, d_real = mean D(x),
    d_fake = mean D(G(z)), penalty).
    """

    def __init__(self, G, D, cfg: TrainConfig, num_classes: int = 0, opt_G=None, opt_D=None,
                 generator: Generator | None = None):
        if cfg.n_gen is None or cfg.lr_g is None:
            raise ValueError("the trainer needs a resolved config: pass cfg.resolved(), which "
                             "fills in the preset's defaults")
        self.G, self.D, self.cfg = G, D, cfg
        self.num_classes = num_classes if cfg.preset == "cgan" else 0
        self.device = G.device
        self.opt_G = opt_G or Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        self.opt_D = opt_D or Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
        self.rng = generator or Generator(cfg.seed * 1000003 + 17, self.device)
        if cfg.g_loss not in ("nonsaturating", "minimax"):
            raise ValueError(f"g_loss must be 'nonsaturating' or 'minimax', got {cfg.g_loss!r}")
        if cfg.n_critic < 1 or cfg.n_gen < 1:
            raise ValueError(f"n_critic and n_gen must be at least 1, got n_critic="
                             f"{cfg.n_critic!r}, n_gen={cfg.n_gen!r}")

    # ----- sampling
    def set_lr_scale(self, scale: float) -> None:
        """Set both optimizers' learning rates to ``scale`` times the configured ones (a
        host-side float: no device work, no sync)."""
        for opt, base in ((self.opt_G, self.cfg.lr_g), (self.opt_D, self.cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * scale

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
        if joint_d_batch(self.cfg, self.D, real, fake):
            n = real.shape[0]
            both_labels = None if fake_labels is None else _cat_labels(labels, fake_labels)
            logits = self.discriminate(concat([real, fake], 0), both_labels)
            loss = losses.d_loss_bce_joint(logits, n, smooth)
            real_data, fake_data = logits.data[:n], logits.data[n:]
        else:
            real_logits = self.discriminate(real, labels)
            fake_logits = self.discriminate(fake, fake_labels)
            loss = losses.d_loss_bce(real_logits, fake_logits, smooth)
            real_data, fake_data = real_logits.data, fake_logits.data
        # mean(sigmoid(.)) of the detached logits: one kernel for both on the GPU
        d_real, d_fake = sigmoid_mean_pair(real_data, fake_data)
        stats = {"d_real": Tensor(d_real), "d_fake": Tensor(d_fake)}
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
