"""Train the MLP GAN on MNIST with the Python API (`Run`), which writes the sample grids, GIF,
metrics and checkpoints to runs/example-gan (a rerun replaces them).

    python examples/train_gan_mlp.py --epochs 5 --device auto
"""
import argparse

from minigan.gan.run import Run
from minigan.gan.trainer import TrainConfig

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=float, default=5)
p.add_argument("--device", default="auto")
a = p.parse_args()

out = Run(TrainConfig(preset="gan", dataset="mnist", epochs=a.epochs, device=a.device,
                      out="runs/example-gan"),
          overwrite=True).train()  # a rerun replaces the last run
print("grids, GIF, metrics and checkpoints are in", out)
