"""Generator and discriminator presets.

Names and shapes are fixed, because the benchmarks compare them with PyTorch twins:

* ``gan``: MLPs. G: z -> 256 -> 512 -> 1024 -> C*H*W (BatchNorm1d + LeakyReLU 0.2, tanh);
  D: C*H*W -> 1024 -> 512 -> 256 -> 1 (LeakyReLU 0.2, no batch norm).
* ``dcgan`` (28x28): G: ConvT(z,256,7,1,0)-BN-ReLU-ConvT(256,128,4,2,1)-BN-ReLU-ConvT(128,C,4,2,1)
  -tanh; D: Conv(C,64,4,2,1)-LReLU-Conv(64,128,4,2,1)-BN-LReLU-Conv(128,1,7,1,0). No conv bias.
* ``dcgan64``: Radford et al.'s 64x64 networks (ngf = ndf = 64), with one stage fewer or more
  for 32x32 and 128x128.
* ``cgan``: the MLPs with one-hot labels concatenated to z and to D's input; the conv variant
  concatenates labels to z and as constant channels to D's input.
* ``dragan``: the MLP D without batch norm, or a DCGAN-style D without batch norm.

Points (the 2-D toys) use small MLPs for every preset: G: z -> 128 -> 128 -> 128 -> 2
(BatchNorm1d + ReLU, linear output); D: 2 -> 128 -> 128 -> 128 -> 1 (LeakyReLU 0.2, no batch
norm, so DRAGAN's penalty stays per sample). Batch norm in G is what lets it split its noise
into tight clusters: without it the ring8 GAN covered 3 of 8 modes in 3000 steps, with it 8 of
8 in 2000 (seed 0). The widths and G's batch norm are ``point_hidden`` and
``point_g_batch_norm``; the training defaults for points are ``trainer.POINT_DEFAULTS``.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd import Tensor
from ..functional import concat, one_hot, reshape


def _lrelu():
    return nn.LeakyReLU(0.2)


class MLPGenerator(nn.Module):
    """z -> hidden... -> prod(out_shape), LeakyReLU 0.2 (or ReLU) between, tanh (or identity) at
    the end."""

    def __init__(self, z_dim: int, out_shape, hidden=(256, 512, 1024), num_classes: int = 0,
                 batch_norm: bool = False, out_activation: str = "tanh",
                 activation: str = "lrelu"):
        super().__init__()
        self.z_dim, self.out_shape, self.num_classes = z_dim, tuple(out_shape), num_classes
        if activation not in ("lrelu", "relu"):
            raise ValueError(f"activation must be 'lrelu' or 'relu', got {activation!r}")
        layers, width = [], z_dim + num_classes
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h, momentum=0.1))
            layers.append(_lrelu() if activation == "lrelu" else nn.ReLU())
            width = h
        layers.append(nn.Linear(width, int(np.prod(self.out_shape))))
        if out_activation == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z, labels=None):
        if self.num_classes:
            z = concat([z, _one_hot(self, labels, z)], 1)
        return reshape(self.net(z), (-1,) + self.out_shape)


class MLPDiscriminator(nn.Module):
    """flatten(x) -> hidden... -> 1 logit, LeakyReLU 0.2, no batch norm."""

    def __init__(self, in_shape, hidden=(1024, 512, 256), num_classes: int = 0,
                 dropout: float = 0.0):
        super().__init__()
        self.in_shape, self.num_classes = tuple(in_shape), num_classes
        layers, width = [], int(np.prod(self.in_shape)) + num_classes
        for h in hidden:
            layers.append(nn.Linear(width, h))
            layers.append(_lrelu())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x, labels=None):
        x = reshape(x, (x.shape[0], -1))
        if self.num_classes:
            x = concat([x, _one_hot(self, labels, x)], 1)
        return reshape(self.net(x), (-1,))


class DCGANGenerator28(nn.Module):
    """The 28x28 DCGAN generator (z -> 7x7x256 -> 14x14x128 -> 28x28xC)."""

    def __init__(self, z_dim: int = 100, channels: int = 1, num_classes: int = 0,
                 upsample: bool = False):
        super().__init__()
        self.z_dim, self.num_classes, self.out_shape = z_dim, num_classes, (channels, 28, 28)
        zin = z_dim + num_classes
        if upsample:  # the Keras-style variant: nearest upsampling followed by a 3x3 conv
            up = [nn.Upsample(scale_factor=2), nn.Conv2d(256, 128, 3, 1, 1, bias=False),
                  nn.BatchNorm2d(128), nn.ReLU(),
                  nn.Upsample(scale_factor=2), nn.Conv2d(128, channels, 3, 1, 1, bias=False)]
        else:
            up = [nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128),
                  nn.ReLU(), nn.ConvTranspose2d(128, channels, 4, 2, 1, bias=False)]
        self.net = nn.Sequential(
            nn.ConvTranspose2d(zin, 256, 7, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
            *up, nn.Tanh())

    def forward(self, z, labels=None):
        if self.num_classes:
            z = concat([z, _one_hot(self, labels, z)], 1)
        return self.net(reshape(z, (z.shape[0], -1, 1, 1)))


class DCGANDiscriminator28(nn.Module):
    """The 28x28 DCGAN discriminator; ``batch_norm=False`` gives DRAGAN's variant."""

    def __init__(self, channels: int = 1, num_classes: int = 0, batch_norm: bool = True):
        super().__init__()
        self.num_classes = num_classes
        cin = channels + num_classes
        mid = [nn.BatchNorm2d(128)] if batch_norm else []
        self.net = nn.Sequential(
            nn.Conv2d(cin, 64, 4, 2, 1, bias=False), _lrelu(),
            nn.Conv2d(64, 128, 4, 2, 1, bias=False), *mid, _lrelu(),
            nn.Conv2d(128, 1, 7, 1, 0, bias=False))

    def forward(self, x, labels=None):
        if self.num_classes:
            x = concat([x, _label_maps(self, labels, x)], 1)
        return reshape(self.net(x), (-1,))


def _one_hot(net, labels, like: Tensor) -> Tensor:
    """``net``'s labels one-hot, as ``like``'s dtype; a clear error when a conditional network
    is called without them."""
    if labels is None:
        raise ValueError(f"{type(net).__name__} is conditional on {net.num_classes} classes: "
                         "call it with labels, net(x, labels)")
    return one_hot(labels, net.num_classes, like.dtype)


def _label_maps(net, labels, like: Tensor) -> Tensor:
    """One-hot labels as constant image channels (N, K, H, W)."""
    num_classes = net.num_classes
    oh = _one_hot(net, labels, like).data
    n, _, h, w = like.shape
    from ..backend import get_array_module
    xp = get_array_module(oh)
    return Tensor(xp.ascontiguousarray(xp.broadcast_to(oh[:, :, None, None],
                                                       (n, num_classes, h, w))))


_RADFORD_SIZES = {32: 3, 64: 4, 128: 5}  # image size -> stride-2 stages


def _stages(image_size: int) -> int:
    if image_size not in _RADFORD_SIZES:
        raise ValueError(f"the Radford DCGAN layout supports image sizes 32, 64 and 128, got "
                         f"{image_size}")
    return _RADFORD_SIZES[image_size]


class DCGANGenerator(nn.Module):
    """Radford et al.'s generator: z -> 4x4x(ngf*2^(k-1)) -> ... -> image_size^2 x C."""

    def __init__(self, z_dim: int = 100, channels: int = 3, image_size: int = 64, ngf: int = 64,
                 num_classes: int = 0):
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.out_shape = (channels, image_size, image_size)
        k = _stages(image_size)
        width = ngf * 2 ** (k - 1)
        layers = [nn.ConvTranspose2d(z_dim + num_classes, width, 4, 1, 0, bias=False),
                  nn.BatchNorm2d(width), nn.ReLU()]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU()]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z, labels=None):
        if self.num_classes:
            z = concat([z, _one_hot(self, labels, z)], 1)
        return self.net(reshape(z, (z.shape[0], -1, 1, 1)))


class DCGANDiscriminator(nn.Module):
    """Radford et al.'s discriminator: no batch norm on the input layer, a 4x4 conv to one logit."""

    def __init__(self, channels: int = 3, image_size: int = 64, ndf: int = 64,
                 num_classes: int = 0, batch_norm: bool = True):
        super().__init__()
        self.num_classes = num_classes
        k = _stages(image_size)
        layers = [nn.Conv2d(channels + num_classes, ndf, 4, 2, 1, bias=False), _lrelu()]
        width = ndf
        for _ in range(k - 1):
            layers.append(nn.Conv2d(width, width * 2, 4, 2, 1, bias=False))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width * 2))
            layers.append(_lrelu())
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)

    def forward(self, x, labels=None):
        if self.num_classes:
            x = concat([x, _label_maps(self, labels, x)], 1)
        return reshape(self.net(x), (-1,))


PRESETS = ("gan", "dcgan", "dcgan64", "cgan", "dragan")
POINT_HIDDEN = (128, 128, 128)   # hidden widths of G and D for points
POINT_G_BATCH_NORM = True        # batch norm (and ReLU) in G's hidden layers for points


def build_models(preset: str, data_shape, num_classes: int = 0, z_dim: int = 100,
                 arch: str | None = None, ngf: int = 64, ndf: int = 64,
                 g_upsample: bool = False, d_dropout: float = 0.0, point_hidden=None,
                 point_g_batch_norm: bool | None = None):
    """(G, D) for a preset and a data shape ((C, H, W) for images, (2,) for points).

    ``arch`` picks the network family for presets that have two: "mlp" or "conv" (cgan,
    dragan). Points always use MLPs, with hidden widths ``point_hidden`` (default
    ``POINT_HIDDEN``) and, when ``point_g_batch_norm`` (default ``POINT_G_BATCH_NORM``),
    BatchNorm1d + ReLU in G (else LeakyReLU 0.2 without batch norm).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    data_shape = tuple(data_shape)
    points = len(data_shape) == 1
    k = num_classes if preset == "cgan" else 0
    if preset == "cgan" and not num_classes:
        raise ValueError("cgan needs a labelled dataset (mnist, fashion-mnist, or a folder of "
                         "class subfolders)")
    if points:
        hidden = tuple(POINT_HIDDEN if point_hidden is None else point_hidden)
        bn = POINT_G_BATCH_NORM if point_g_batch_norm is None else bool(point_g_batch_norm)
        G = MLPGenerator(z_dim, data_shape, hidden, k, batch_norm=bn, out_activation="linear",
                         activation="relu" if bn else "lrelu")
        D = MLPDiscriminator(data_shape, hidden, k)
        return G, D
    c, h, w = data_shape
    if arch is None:
        arch = {"gan": "mlp", "cgan": "mlp", "dragan": "mlp"}.get(preset, "conv")
    if preset in ("gan", "cgan", "dragan") and arch == "mlp":
        # batch norm in the MLP generator, as in the usual Keras/PyTorch recipe (momentum 0.1,
        # eps 1e-5; not the eps=0.8 slip of a well-known collection): without it the MLP G
        # collapses to a few modes within the first epochs
        return (MLPGenerator(z_dim, data_shape, (256, 512, 1024), k, batch_norm=True),
                MLPDiscriminator(data_shape, (1024, 512, 256), k, dropout=d_dropout))
    if arch != "conv":
        raise ValueError(f"arch must be 'mlp' or 'conv', got {arch!r}")
    bn_d = preset != "dragan"
    if preset == "dcgan64" or (h, w) != (28, 28):
        if h != w or h not in _RADFORD_SIZES:
            sizes = ("32, 64 or 128" if preset == "dcgan64"
                     else "28 (the MNIST layout), 32, 64 or 128")
            raise ValueError(f"{preset} with {arch} networks needs square images of size "
                             f"{sizes}, got {h}x{w}; pick one with --image-size")
        return (DCGANGenerator(z_dim, c, h, ngf, k),
                DCGANDiscriminator(c, h, ndf, k, batch_norm=bn_d))
    return (DCGANGenerator28(z_dim, c, k, upsample=g_upsample),
            DCGANDiscriminator28(c, k, batch_norm=bn_d))
