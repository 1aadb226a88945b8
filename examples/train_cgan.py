"""Conditional GAN on MNIST: one row per digit in every grid.

    python examples/train_cgan.py --epochs 5 --device auto
"""
import argparse

from minigan.gan.run import Run
from minigan.gan.trainer import TrainConfig

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=float, default=5)
p.add_argument("--device", default="auto")
p.add_argument("--arch", default="mlp", choices=("mlp", "conv"))
a = p.parse_args()
out = Run(TrainConfig(preset="cgan", dataset="mnist", epochs=a.epochs, device=a.device,
                      arch=a.arch, out="runs/example-cgan"),
          overwrite=True).train()  # a rerun replaces the last run
print("rows of the grids in", out / "samples", "are the digits 0..9")
