"""DRAGAN on MNIST or on the 8-Gaussian ring (the mode-collapse test).

On ring8 leave --steps out: the toy defaults (14000 steps, batch 256, lr 4e-4/2e-3 with linear
decay) are the ones measured to cover all 8 modes; with the same rates, 10000 and 12000 steps
each left one seed short of 8 (POINT_DEFAULTS in minigan/gan/trainer.py).

    python examples/train_dragan.py --dataset ring8
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
