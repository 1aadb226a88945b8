"""DCGAN on MNIST, written out step by step with the building blocks instead of `Run`.

    python examples/train_dcgan_mnist.py --epochs 1 --device auto
"""
import argparse
import time

import numpy as np

import minigan
from minigan import backend, nn
from minigan.data import DataLoader, mnist
from minigan.gan.images import save_grid
from minigan.gan.models import build_models
from minigan.gan.trainer import GANTrainer, TrainConfig, generate_images

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--device", default="auto")
a = p.parse_args()
device = backend.normalize_device(a.device)

minigan.manual_seed(0)
images, labels = mnist("train")
loader = DataLoader(images, labels, batch_size=64, seed=0, device=device)
G, D = build_models("dcgan", (1, 28, 28))
G.apply(nn.init.dcgan_init_).to(device)
D.apply(nn.init.dcgan_init_).to(device)
trainer = GANTrainer(G, D, TrainConfig(preset="dcgan").resolved())
fixed_z = trainer.sample_z(64)

t0 = time.time()
for epoch in range(a.epochs):
    for i, (x, _) in enumerate(loader):
        stats = trainer.step(minigan.Tensor(x))
        if i % 100 == 0:  # reading numbers back is the only host sync
            print(f"epoch {epoch} step {i}: d_loss {stats['d_loss'].item():.3f} "
                  f"g_loss {stats['g_loss'].item():.3f} D(x) {stats['d_real'].item():.3f} "
                  f"D(G(z)) {stats['d_fake'].item():.3f}  {time.time() - t0:.0f}s")
    save_grid(generate_images(G, fixed_z), f"runs/example-dcgan/epoch_{epoch}.png")
print("samples in runs/example-dcgan/", np.round(time.time() - t0), "s")
