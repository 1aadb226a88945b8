"""Preset shapes, losses and the DRAGAN penalty's exactness."""
import numpy as np
import pytest

import minigan
import minigan.nn as nn
from minigan import Tensor
from minigan.gan import losses
from minigan.gan.models import build_models
from minigan.kernels.random import Generator
from minigan.testing import check_backward


@pytest.mark.parametrize("preset,shape,k", [
    ("gan", (1, 28, 28), 0), ("dcgan", (1, 28, 28), 0), ("dcgan64", (3, 64, 64), 0),
    ("dcgan64", (3, 32, 32), 0), ("cgan", (1, 28, 28), 10), ("dragan", (1, 28, 28), 0),
    ("gan", (2,), 0), ("dragan", (2,), 0)])
def test_preset_shapes(preset, shape, k):
    minigan.manual_seed(0)
    G, D = build_models(preset, shape, k)
    n = 3
    z = minigan.randn(n, 100)
    labels = np.array([0, 1, 2]) if k else None
    x = G(z, labels) if k else G(z)
    assert x.shape == (n,) + shape
    logits = D(x, labels) if k else D(x)
    assert logits.shape == (n,)


@pytest.mark.parametrize("preset,shape,size_text", [
    ("dcgan", (1, 30, 30), "30x30"), ("dcgan", (1, 32, 28), "32x28"),
    ("dcgan64", (3, 48, 48), "48x48"), ("dcgan64", (3, 28, 28), "28x28")])
def test_conv_presets_name_the_preset_and_the_sizes_they_support(preset, shape, size_text):
    with pytest.raises(ValueError) as e:
        build_models(preset, shape)
    msg = str(e.value)
    assert msg.startswith(f"{preset} with conv networks") and size_text in msg
    assert "--image-size" in msg
    assert ("28 (the MNIST layout)" in msg) == (preset == "dcgan")


@pytest.mark.parametrize("arch,shape", [("mlp", (1, 28, 28)), ("conv", (1, 28, 28)),
                                        ("mlp", (2,)), ("conv", (3, 32, 32))])
def test_conditional_networks_called_without_labels_say_so(arch, shape):
    G, D = build_models("cgan", shape, 8, arch=arch)
    z = minigan.randn(2, 100)
    with pytest.raises(ValueError, match="conditional on 8 classes: call it with labels"):
        G(z)
    x = G(z, np.array([0, 7]))
    with pytest.raises(ValueError, match="conditional on 8 classes"):
        D(x)
    assert D(x, np.array([0, 7])).shape == (2,)


def test_dcgan_preset_is_exactly_the_specified_network():
    G, D = build_models("dcgan", (1, 28, 28))
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding) for m in convs] \
        == [(100, 256, (7, 7), (1, 1), (0, 0)), (256, 128, (4, 4), (2, 2), (1, 1)),
            (128, 1, (4, 4), (2, 2), (1, 1))]
    assert all(m.bias is None for m in convs)
    dconvs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size) for m in dconvs] == \
        [(1, 64, (4, 4)), (64, 128, (4, 4)), (128, 1, (7, 7))]
    assert len([m for m in D.modules() if isinstance(m, nn.BatchNorm2d)]) == 1
    Gm, Dm = build_models("gan", (1, 28, 28))
    assert [m.out_features for m in Gm.modules() if isinstance(m, nn.Linear)] == \
        [256, 512, 1024, 784]
    assert [m.out_features for m in Dm.modules() if isinstance(m, nn.Linear)] == \
        [1024, 512, 256, 1]


def test_dragan_discriminators_have_no_batchnorm():
    for arch in ("mlp", "conv"):
        _, D = build_models("dragan", (1, 28, 28), arch=arch)
        assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in D.modules())


def test_losses_match_formulas():
    r = np.array([2.0, -1.0, 0.5])
    f = np.array([-3.0, 0.2, 1.0])
    sp = lambda v: np.logaddexp(0, v)  # noqa: E731
    d = losses.d_loss_bce(Tensor(r), Tensor(f), 0.9).item()
    expected = np.mean(sp(r) - 0.9 * r) + np.mean(sp(f))
    assert d == pytest.approx(expected, rel=1e-12)
    assert losses.g_loss_nonsaturating(Tensor(f)).item() == pytest.approx(np.mean(sp(-f)))
    assert losses.g_loss_minimax(Tensor(f)).item() == pytest.approx(-np.mean(sp(f)))


def test_dragan_perturbation_uses_one_batch_std_and_uniform_noise():
    gen = Generator(0, "cpu")
    x = np.random.default_rng(0).standard_normal((64, 1, 4, 4))
    xp_ = losses.dragan_perturb(x, gen, "official", 0.5)
    delta = (xp_ - x) / (0.5 * x.std())
    assert delta.min() >= 0 and delta.max() < 1 and abs(delta.mean() - 0.5) < 0.05
    g = losses.dragan_perturb(x, Generator(1, "cpu"), "gaussian", 0.25)
    assert abs((g - x).std() - 0.5) < 0.05


class TinyD(nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        if conv:
            self.net = nn.Sequential(nn.Conv2d(1, 3, 3, 2, 1), nn.LeakyReLU(0.2),
                                     nn.Conv2d(3, 1, 3, 1, 0))
        else:
            self.net = nn.Sequential(nn.Linear(8, 6), nn.LeakyReLU(0.2), nn.Linear(6, 1))

    def forward(self, x):
        x = x if self.conv else x.reshape(x.shape[0], -1)
        return self.net(x).reshape(-1)


@pytest.mark.parametrize("conv", [False, True])
def test_dragan_penalty_gradient_matches_finite_differences(conv):
    """The penalty's gradient with respect to each weight of a tiny float64 D."""
    minigan.manual_seed(3)
    D = TinyD(conv).double()
    shape = (4, 1, 6, 6) if conv else (4, 8)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    x_p = losses.dragan_perturb(x, Generator(5, "cpu"), "official", 0.5)
    slots = [(m, pname) for m in D.modules() for pname, p in m._parameters.items()
             if p is not None]
    params = [m._parameters[pname].data.copy() for m, pname in slots]

    def penalty(*ws):
        for (m, pname), w in zip(slots, ws):
            m._parameters[pname] = w  # the checker's leaf tensors become D's weights
        # a fresh generator each call: the same alpha for every evaluation
        return losses.gradient_penalty(D, x, x_p, Generator(9, "cpu"), lam=10.0)

    check_backward(penalty, params, rtol=1e-6, atol=1e-8)
    check_backward(penalty, params, mode="jacobian", rtol=1e-5, atol=1e-7)
