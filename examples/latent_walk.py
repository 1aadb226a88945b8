"""A walk through a trained generator's latent space (spherical interpolation).

    python examples/latent_walk.py runs/dcgan/checkpoints/ckpt_00000937.npz
"""
import argparse

import numpy as np

import minigan
from minigan.gan.images import save_grid
from minigan.gan.run import load_generator
from minigan.gan.trainer import generate_images

p = argparse.ArgumentParser()
p.add_argument("checkpoint")
p.add_argument("--points", type=int, default=5)
p.add_argument("--frames", type=int, default=8)
p.add_argument("--out", default="walk.png")
a = p.parse_args()

G, meta = load_generator(a.checkpoint)
if len(meta.get("sample_shape", ())) != 3:
    raise SystemExit(f"{a.checkpoint} makes 2-D points, not images: a latent walk draws image "
                     "frames (minigan sample --npy gives the points)")
if a.points < 2 or a.frames < 1:
    raise SystemExit(f"--points must be at least 2 and --frames at least 1, got {a.points} and "
                     f"{a.frames}")
rng = np.random.default_rng(0)
anchors = rng.standard_normal((a.points, meta["config"]["z_dim"])).astype(np.float32)


def slerp(z0, z1, t):
    omega = np.arccos(np.clip(z0 @ z1 / np.linalg.norm(z0) / np.linalg.norm(z1), -1, 1))
    if np.sin(omega) < 1e-6:  # (anti)parallel anchors: no unique great circle, so a line
        return (1 - t) * z0 + t * z1
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


t = np.linspace(0, 1, a.frames)[:, None]
rows = [slerp(anchors[i], anchors[i + 1], t) for i in range(a.points - 1)]
z = minigan.tensor(np.concatenate(rows).astype(np.float32))
labels = np.zeros(len(z), np.int64) if meta["config"]["preset"] == "cgan" else None
save_grid(generate_images(G, z, labels), a.out, nrow=a.frames, scale=2)
print("wrote", a.out, "- each row walks from one random point to the next")
