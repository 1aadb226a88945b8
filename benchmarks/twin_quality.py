"""Train the PyTorch twin of a preset on MNIST and score it with minigan's metrics.

It answers "is a preset's sample quality the engine's doing or the recipe's?": the twin starts
from minigan's own initial weights (``twin_of``), sees the same batches in the same order
(minigan's ``DataLoader`` with the same seed) and takes the same step (``TorchTrainer``), so
its scores can be set beside ``minigan train PRESET --eval-every ...`` for the same epochs.

    python benchmarks/twin_quality.py --preset dcgan --epochs 5 --data-dir DIR [--threads 1]

PyTorch is needed here only; it is never a dependency of minigan.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="dcgan", choices=("gan", "dcgan", "dragan"))
    ap.add_argument("--epochs", type=float, default=5.0)
    ap.add_argument("--data-dir", help="folder with the MNIST IDX files (else the cache)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--n-gen", type=int, help="G updates per D update (the preset's default)")
    ap.add_argument("--lr-g", type=float, help="G's learning rate (the preset's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=10000, help="samples to score")
    ap.add_argument("--grid", help="also write a 10x10 grid of samples here")
    a = ap.parse_args(argv)

    try:
        import torch
    except ImportError:
        print("twin_quality: PyTorch is not installed", file=sys.stderr)
        return 2
    import minigan
    from minigan.data import DataLoader, load_dataset
    from minigan.gan.images import save_grid
    from minigan.gan.models import build_models
    from minigan.gan.trainer import TrainConfig
    from minigan.metrics.evaluate import evaluate_samples
    from minigan.nn.init import dcgan_init_
    from torch_twins import TorchTrainer, twin_joint, twin_of

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    minigan.manual_seed(a.seed)
    G, D = build_models(a.preset, (1, 28, 28), 0, 100)
    if a.preset == "dcgan":  # as minigan train initialises it
        G.apply(dcgan_init_)
        D.apply(dcgan_init_)
    tG, tD = twin_of(G, D)
    cfg = TrainConfig(preset=a.preset, dataset="mnist", seed=a.seed, n_gen=a.n_gen,
                      lr_g=a.lr_g).resolved()
    trainer = TorchTrainer(tG, tD, cfg, joint=twin_joint(cfg, D))
    ds = load_dataset("mnist", "train", root=a.data_dir)
    loader = DataLoader(ds.data, ds.labels, batch_size=cfg.batch_size, shuffle=True,
                        drop_last=True, seed=a.seed, device="cpu")
    batches = loader.batches()
    steps = int(round(a.epochs * loader.steps_per_epoch))
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        x, _ = next(batches)
        stats = trainer.step(torch.from_numpy(np.asarray(x)))
        if step % 500 == 0 or step == steps:
            print(json.dumps({"step": step, **{k: round(float(v), 4) for k, v in stats.items()},
                              "s": round(time.perf_counter() - t0, 1)}), flush=True)
    tG.eval()
    with torch.no_grad():
        z = torch.randn(a.n, cfg.z_dim, generator=torch.Generator().manual_seed(a.seed))
        xs = torch.cat([tG(z[i:i + 500]) for i in range(0, a.n, 500)]).numpy()
    if a.grid:
        save_grid(xs[:100], a.grid, nrow=10)
    metrics = evaluate_samples(xs, "mnist", None, "cpu", a.data_dir)
    print(json.dumps({"framework": "torch", "preset": a.preset, "epochs": a.epochs,
                      "steps": steps, "train_s": round(time.perf_counter() - t0, 1),
                      "metrics": metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
