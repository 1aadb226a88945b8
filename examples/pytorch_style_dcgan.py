"""A DCGAN written the way PyTorch's DCGAN tutorial writes it, with `minigan` in place of
`torch`: the same modules, `weights_init`, `DataLoader`, `BCELoss`, optimizer steps and
`.detach()`. Only the imports differ (and the image grid, which torchvision would save).

    python examples/pytorch_style_dcgan.py --epochs 1 --device auto
"""
import argparse
import time

import minigan as torch
import minigan.nn as nn
import minigan.optim as optim
from minigan.data import mnist
from minigan.gan.images import save_grid
from minigan.utils.data import DataLoader, TensorDataset

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--device", default="auto")
p.add_argument("--batch-size", type=int, default=128)
a = p.parse_args()

torch.manual_seed(999)
cuda = a.device in ("auto", "cuda") and torch.cuda.is_available()
device = torch.device("cuda:0" if cuda else "cpu")
nz, ngf, ndf, nc = 100, 64, 64, 1

images, _ = mnist("train")  # uint8 (N, 1, 28, 28), fetched once and cached
x = torch.from_numpy(images).to(device).float().div(127.5).sub(1.0)  # to [-1, 1]
loader = DataLoader(TensorDataset(x), batch_size=a.batch_size, shuffle=True, drop_last=True)


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 2, 7, 1, 0, bias=False),  # 7x7
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),  # 14x14
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),  # 28x28
            nn.Tanh(),
        )

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),  # 14x14
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),  # 7x7
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 7, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, input):
        return self.main(input)


netG = Generator().to(device)
netG.apply(weights_init)
netD = Discriminator().to(device)
netD.apply(weights_init)

criterion = nn.BCELoss()
fixed_noise = torch.randn(64, nz, 1, 1, device=device)
real_label, fake_label = 1.0, 0.0
optimizerD = optim.Adam(netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
optimizerG = optim.Adam(netG.parameters(), lr=0.0002, betas=(0.5, 0.999))

t0 = time.time()
for epoch in range(a.epochs):
    for i, (real,) in enumerate(loader):
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        b_size = real.size(0)
        label = torch.full((b_size,), real_label, dtype=torch.float, device=device)
        output = netD(real).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean()
        noise = torch.randn(b_size, nz, 1, 1, device=device)
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean()
        errD = errD_real + errD_fake
        optimizerD.step()

        # (2) Update G: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)
        output = netD(fake).view(-1)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean()
        optimizerG.step()

        if i % 50 == 0:  # .item() reads the numbers back: the step's one host sync
            print(f"[{epoch}/{a.epochs}][{i}/{len(loader)}] Loss_D: {errD.item():.4f} "
                  f"Loss_G: {errG.item():.4f} D(x): {D_x.item():.4f} "
                  f"D(G(z)): {D_G_z1.item():.4f} / {D_G_z2.item():.4f} "
                  f"{time.time() - t0:.0f}s")

    with torch.no_grad():
        samples = netG(fixed_noise).detach().cpu()
    save_grid(samples.numpy(), f"runs/example-pytorch-style/epoch_{epoch}.png")
print("samples in runs/example-pytorch-style/")
