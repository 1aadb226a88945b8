"""DRAGAN on MNIST or on the 8-Gaussian ring (the mode-collapse test).

    python examples/train_dragan.py --dataset ring8 --steps 3000
    python examples/train_dragan.py --dataset mnist --epochs 5 --device auto
"""
import argparse

from minigan.gan.run import Run
from minigan.gan.trainer import TrainConfig

p = argparse.ArgumentParser()
p.add_argument("--dataset", default="ring8")
p.add_argument("--steps", type=int)
p.add_argument("--epochs", type=float)
p.add_argument("--device", default="auto")
a = p.parse_args()
out = Run(TrainConfig(preset="dragan", dataset=a.dataset, steps=a.steps, epochs=a.epochs,
                      device=a.device, out=f"runs/example-dragan-{a.dataset}"),
          overwrite=True).train()  # a rerun replaces the last run
print("outputs in", out)
