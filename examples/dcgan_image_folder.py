"""DCGAN (Radford 64x64) on any folder of images, e.g. a few hundred anime icons.

    python examples/dcgan_image_folder.py path/to/images --image-size 64 --epochs 50
"""
import argparse

from minigan.gan.run import Run
from minigan.gan.trainer import TrainConfig

p = argparse.ArgumentParser()
p.add_argument("folder")
p.add_argument("--image-size", type=int, default=64, choices=(32, 64, 128))
p.add_argument("--epochs", type=float, default=50)
p.add_argument("--batch-size", type=int, default=64)
p.add_argument("--device", default="auto")
a = p.parse_args()
out = Run(TrainConfig(preset="dcgan64", dataset=a.folder, image_size=a.image_size,
                      epochs=a.epochs, batch_size=a.batch_size, device=a.device,
                      out="runs/example-folder", sample_every=100),
          overwrite=True).train()  # a rerun replaces the last run
print("outputs in", out)
