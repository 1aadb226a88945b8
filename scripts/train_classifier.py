#!/usr/bin/env python3
"""Train the LeNet classifier behind minigan's image metrics, with minigan itself.

    python scripts/train_classifier.py --dataset mnist --seed 0 --epochs 3 \\
        --out minigan/weights/mnist_classifier.npz

Adam with a cosine learning-rate decay, cross-entropy, optional random shifts (and horizontal
flips, for clothes) as light augmentation. The batch order, the augmentation and the dropout
masks all come from --seed, so the same command on the same device gives the same weights, and
the weight file is written so that its bytes (and so its SHA-256) depend only on the weights.
It prints the test accuracy after every epoch, then the file's SHA-256, which is what
WEIGHTS in minigan/metrics/classifier.py pins.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import minigan
from minigan import backend
from minigan import functional as F
from minigan.metrics.classifier import LeNet, accuracy, prepare_images, save_weights, sha256_file
from minigan.optim import Adam


def load_split(dataset: str, split: str, root=None):
    """(uint8 images N x 1 x 28 x 28, int64 labels) from minigan.data."""
    from minigan import data

    fn = {"mnist": data.mnist, "fashion-mnist": data.fashion_mnist}[dataset]
    images, labels = fn(split, root=root) if root else fn(split)
    return np.asarray(images), np.asarray(labels, dtype=np.int64)


def augment(x: np.ndarray, rng: np.random.Generator, shift: int, flip: bool) -> np.ndarray:
    """Random translations by up to ``shift`` pixels (zero fill: both datasets have a black
    background) and, with ``flip``, random horizontal flips."""
    if shift:
        n, c, h, w = x.shape
        padded = np.zeros((n, c, h + 2 * shift, w + 2 * shift), x.dtype)
        padded[:, :, shift:shift + h, shift:shift + w] = x
        dy, dx = rng.integers(0, 2 * shift + 1, size=(2, n))
        x = np.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if flip:
        mirror = rng.random(len(x)) < 0.5
        x = x.copy()
        x[mirror] = x[mirror, :, :, ::-1]
    return x


def train(x_train, y_train, x_test, y_test, *, seed=0, epochs=3.0, batch_size=128, lr=1e-3,
          shift=0, flip=False, device="cpu", log_every=100, log=print) -> tuple[LeNet, float]:
    """Train a LeNet; returns (model in eval mode, final test accuracy)."""
    device = backend.normalize_device(device)
    minigan.manual_seed(seed)  # weight init and dropout masks
    rng = np.random.default_rng(seed)  # batch order and augmentation
    model = LeNet().to(device)
    opt = Adam(model.parameters(), lr=lr)
    n = len(x_train)
    steps_per_epoch = n // batch_size
    total = max(1, round(epochs * steps_per_epoch))
    step, t0, acc = 0, time.perf_counter(), float("nan")
    while step < total:
        model.train()
        order = rng.permutation(n)
        t_epoch = time.perf_counter()
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[b * batch_size:(b + 1) * batch_size]
            x = prepare_images(augment(x_train[idx], rng, shift, flip))
            # Cosine decay to 0: the last epoch's small steps are what lifts MNIST past 99%.
            opt.param_groups[0]["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            logits = model(minigan.Tensor(backend.to_device(x, device)))
            loss = F.cross_entropy(logits, backend.to_device(y_train[idx], device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if log_every and step % log_every == 0:
                log(f"step {step}/{total}  loss {loss.item():.4f}  "
                    f"{time.perf_counter() - t0:.0f}s")
        acc = accuracy(model, x_test, y_test)
        log(f"epoch {step / steps_per_epoch:.2f}: test accuracy {acc:.4%}  "
            f"(epoch {time.perf_counter() - t_epoch:.0f}s, total {time.perf_counter() - t0:.0f}s)")
    return model.eval(), acc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--shift", type=int, default=0, help="max random shift in pixels")
    p.add_argument("--flip", action="store_true", help="random horizontal flips")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--data-dir", help="folder with the dataset's IDX files")
    p.add_argument("--limit", type=int, help="train on the first N images only (smoke tests)")
    p.add_argument("--min-accuracy", type=float, default=0.0,
                   help="exit with status 1 without writing when the test accuracy is lower")
    p.add_argument("--out", help="weight file (default minigan/weights/DATASET_classifier.npz)")
    a = p.parse_args(argv)

    x_train, y_train = load_split(a.dataset, "train", a.data_dir)
    x_test, y_test = load_split(a.dataset, "test", a.data_dir)
    if a.limit:
        x_train, y_train = x_train[:a.limit], y_train[:a.limit]
    device = backend.normalize_device(a.device)
    print(f"{a.dataset}: {len(x_train)} train, {len(x_test)} test images on {device}", flush=True)
    t0 = time.perf_counter()
    model, acc = train(x_train, y_train, x_test, y_test, seed=a.seed, epochs=a.epochs,
                       batch_size=a.batch_size, lr=a.lr, shift=a.shift, flip=a.flip,
                       device=device, log=lambda m: print(m, flush=True))
    seconds = time.perf_counter() - t0
    print(f"final test accuracy {acc:.4%} after {seconds:.0f}s", flush=True)
    if acc < a.min_accuracy:
        print(f"below --min-accuracy {a.min_accuracy:.4f}; nothing written", file=sys.stderr)
        return 1
    # Only what determines the weights goes into the file (no timings, no paths), so that the
    # same command on the same device reproduces the same bytes.
    meta = {"dataset": a.dataset, "seed": a.seed, "epochs": a.epochs,
            "batch_size": a.batch_size, "lr": a.lr, "shift": a.shift, "flip": a.flip,
            "device": device, "limit": a.limit, "num_classes": 10,
            "test_accuracy": round(acc, 6), "trained_with": f"minigan {minigan.__version__}"}
    out = Path(a.out or Path(__file__).resolve().parent.parent / "minigan" / "weights"
               / f"{a.dataset}_classifier.npz")
    save_weights(out, model.state_dict(), meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    print(f"sha256 {sha256_file(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
