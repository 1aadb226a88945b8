"""PyTorch-style DCGAN model code (the layout of PyTorch's DCGAN tutorial: Sequential stacks
built with positional arguments, ``nn.ReLU(True)``, a ``weights_init`` applied through
``.apply`` that fills ``m.weight.data``) runs unchanged with ``minigan`` for ``torch``, and one
training step agrees with PyTorch's when PyTorch is installed."""
import numpy as np
import pytest

import minigan
import minigan.nn as nn
import minigan.optim as optim

NZ, NGF, NDF, NC = 8, 4, 4, 3


def make_models(nn):
    class Generator(nn.Module):
        def __init__(self, ngpu):
            super(Generator, self).__init__()
            self.ngpu = ngpu
            self.main = nn.Sequential(
                nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False),
                nn.BatchNorm2d(NGF * 8), nn.ReLU(True),
                nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NGF * 4), nn.ReLU(True),
                nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NGF * 2), nn.ReLU(True),
                nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NGF), nn.ReLU(True),
                nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False),
                nn.Tanh())

        def forward(self, input):
            return self.main(input)

    class Discriminator(nn.Module):
        def __init__(self, ngpu):
            super(Discriminator, self).__init__()
            self.ngpu = ngpu
            self.main = nn.Sequential(
                nn.Conv2d(NC, NDF, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 2),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 4),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(NDF * 8),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())

        def forward(self, input):
            return self.main(input)

    def weights_init(m):
        classname = m.__class__.__name__
        if classname.find("Conv") != -1:
            nn.init.normal_(m.weight.data, 0.0, 0.02)
        elif classname.find("BatchNorm") != -1:
            nn.init.normal_(m.weight.data, 1.0, 0.02)
            nn.init.constant_(m.bias.data, 0)

    netG, netD = Generator(0), Discriminator(0)
    netG.apply(weights_init)
    netD.apply(weights_init)
    return netG, netD


def train_step(lib, nn, optim, netG, netD, real, noise, dtype):
    """One D update and one G update, written as PyTorch code is (labels built with full)."""
    criterion = nn.BCELoss()
    optD = optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    netD.zero_grad()
    b_size = real.size(0)
    label = lib.full((b_size,), 1.0, dtype=dtype)
    output = netD(real).view(-1)
    errD_real = criterion(output, label)
    errD_real.backward()
    fake = netG(noise)
    label = lib.full((b_size,), 0.0, dtype=dtype)
    output = netD(fake.detach()).view(-1)
    errD_fake = criterion(output, label)
    errD_fake.backward()
    optD.step()
    netG.zero_grad()
    label = lib.full((b_size,), 1.0, dtype=dtype)
    output = netD(fake).view(-1)
    errG = criterion(output, label)
    errG.backward()
    optG.step()
    return (errD_real + errD_fake).item(), errG.item()


def test_tutorial_style_models_build_initialise_and_train():
    minigan.manual_seed(0)
    netG, netD = make_models(nn)
    w = netD.main[0].weight.numpy()
    assert abs(w.std() - 0.02) < 0.01 and abs(w.mean()) < 0.01  # weights_init reached .data
    bn = netG.main[1]
    assert abs(bn.weight.numpy().mean() - 1.0) < 0.02 and not bn.bias.numpy().any()
    noise = minigan.randn(2, NZ, 1, 1)
    fake = netG(noise)
    assert fake.shape == (2, NC, 64, 64)
    assert netD(fake).view(-1).shape == (2,)
    before = [p.numpy().copy() for p in netG.parameters()]
    d_loss, g_loss = train_step(minigan, nn, optim, netG, netD, minigan.randn(2, NC, 64, 64),
                                noise, np.float32)
    assert np.isfinite(d_loss) and np.isfinite(g_loss) and d_loss > 0 and g_loss > 0
    assert all(not np.array_equal(b, p.numpy()) for b, p in zip(before, netG.parameters()))


def test_the_same_step_as_pytorch():
    torch = pytest.importorskip("torch")
    minigan.manual_seed(1)
    netG, netD = make_models(nn)
    netG.double()
    netD.double()
    tG, tD = make_models(torch.nn)
    tG.double()
    tD.double()
    # PyTorch's modules take minigan's weights: the state dicts have the same keys and layouts
    for mine, theirs in ((netG, tG), (netD, tD)):
        theirs.load_state_dict({k: torch.from_numpy(np.array(v))
                                for k, v in mine.state_dict().items()})
    rng = np.random.default_rng(0)
    real, noise = rng.standard_normal((2, NC, 64, 64)), rng.standard_normal((2, NZ, 1, 1))
    ours = train_step(minigan, nn, optim, netG, netD, minigan.tensor(real),
                      minigan.tensor(noise), np.float64)
    theirs = train_step(torch, torch.nn, torch.optim, tG, tD, torch.from_numpy(real),
                        torch.from_numpy(noise), torch.float64)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    for mine, t in ((netG, tG), (netD, tD)):
        for (k, v), (k2, v2) in zip(mine.state_dict().items(), t.state_dict().items()):
            assert k == k2
            np.testing.assert_allclose(np.asarray(v), v2.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=k)
