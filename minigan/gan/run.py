"""The training run: data, models, trainer, logging, grids, GIF, plot, checkpoints, resume.

Everything a run writes goes to its output folder:

* ``config.json``  the resolved configuration;
* ``metrics.jsonl`` one JSON line per log interval: step, epoch, d_loss, g_loss, d_real (D(x)),
  d_fake (D(G(z))), penalty, img_per_s (and metrics when --eval-every is set);
* ``samples/step_XXXXXXXX.png`` fixed-noise grids, ``progress.gif`` made from them;
* ``losses.png`` the losses and D outputs against the step;
* ``checkpoints/ckpt_XXXXXXXX.npz`` atomic checkpoints, the last k kept.
"""
from __future__ import annotations

import json
import math
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import backend
from .. import random as mrandom
from ..atomic import atomic_write
from ..autograd import Tensor
from ..checkpoint import CheckpointError, CheckpointManager, load_checkpoint
from ..kernels.random import Generator
from ..nn import init
from . import images as imgs
from .plot import plot_losses
from .models import build_models
from .trainer import GANTrainer, TrainConfig, generate_images, lr_scale, make_trainer


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- state <-> arrays

def optimizer_to_arrays(opt) -> tuple[dict, dict]:
    """An optimizer's state as flat arrays plus JSON-able scalars, for a checkpoint."""
    sd = opt.state_dict()
    arrays, scalars = {}, {}
    for i, st in sd["state"].items():
        for k, v in st.items():
            if hasattr(v, "shape"):
                arrays[f"state.{i}.{k}"] = v
            else:
                scalars[f"{i}.{k}"] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in sd["param_groups"]]
    return arrays, {"scalars": scalars, "param_groups": groups}


def optimizer_from_arrays(opt, arrays: dict, meta: dict) -> None:
    state: dict = {}
    for key, v in arrays.items():
        _, i, k = key.split(".", 2)
        state.setdefault(int(i), {})[k] = v
    for key, v in meta["scalars"].items():
        i, k = key.split(".", 1)
        state.setdefault(int(i), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# ----------------------------------------------------------------------------- the run

class Run:
    """A training run bound to an output folder; ``Run(cfg).train()`` or ``Run.resume(dir)``."""

    def __init__(self, cfg: TrainConfig, quiet: bool = False):
        from ..data import DataLoader, load_dataset

        self.cfg = cfg = cfg.resolved()
        self.quiet = quiet
        self.device = backend.normalize_device(cfg.device)
        self.out = Path(cfg.out or f"runs/{cfg.preset}-{Path(str(cfg.dataset)).name}")
        mrandom.manual_seed(cfg.seed)
        self.dataset = load_dataset(cfg.dataset, split="train", image_size=cfg.image_size,
                                    root=cfg.data_dir)
        self.num_classes = self.dataset.num_classes or 0
        self.loader = DataLoader(self.dataset, batch_size=cfg.batch_size, shuffle=True,
                                 drop_last=True,
                                 seed=cfg.seed, device=self.device)
        self.G, self.D = build_models(cfg.preset, self.dataset.sample_shape, self.num_classes,
                                      cfg.z_dim, cfg.arch, cfg.ngf, cfg.ndf, cfg.g_upsample,
                                      point_hidden=cfg.point_hidden,
                                      point_g_batch_norm=cfg.point_g_batch_norm)
        if cfg.preset in ("dcgan", "dcgan64") or (cfg.arch == "conv"):
            self.G.apply(init.dcgan_init_)
            self.D.apply(init.dcgan_init_)
        self.G.to(self.device)
        self.D.to(self.device)
        self.trainer: GANTrainer = make_trainer(self.G, self.D, cfg, self.num_classes)
        spe = self.loader.steps_per_epoch
        if cfg.steps is None and cfg.epochs is None:
            cfg.epochs = 1
        self.total_steps = int(cfg.steps if cfg.steps is not None else math.ceil(cfg.epochs * spe))
        if self.total_steps < 1:
            raise ValueError("nothing to train: --steps/--epochs give zero steps")
        self.step = 0
        self._fixed_noise()
        self.ckpts = CheckpointManager(self.out / "checkpoints", keep_last=cfg.keep_checkpoints)
        self._interrupted = False

    def _fixed_noise(self):
        """The noise (and labels) behind every grid, drawn once from the seed."""
        gen = Generator(self.cfg.seed + 4242, self.device)
        if self.trainer.num_classes:  # a conditional G: one row per label
            k = self.trainer.num_classes
            per_row = 10
            self.fixed_labels = backend.to_device(np.repeat(np.arange(k), per_row), self.device)
            self.grid_nrow = per_row
            n = k * per_row
        else:
            self.fixed_labels = None
            n = self.cfg.n_samples_grid
            self.grid_nrow = int(math.ceil(math.sqrt(n)))
        self.fixed_z = Tensor(gen.normal((n, self.cfg.z_dim), dtype=np.float32))

    # ----- checkpoints
    def _checkpoint_arrays(self) -> tuple[dict, dict]:
        og, og_meta = optimizer_to_arrays(self.trainer.opt_G)
        od, od_meta = optimizer_to_arrays(self.trainer.opt_D)
        arrays = {"G": self.G.state_dict(), "D": self.D.state_dict(), "opt_G": og, "opt_D": od}
        meta = {"config": asdict(self.cfg), "step": self.step,
                "num_classes": self.num_classes, "sample_shape": list(self.dataset.sample_shape),
                "dataset_name": self.dataset.name,
                "opt_G": og_meta, "opt_D": od_meta,
                "trainer_rng": self.trainer.rng_state(),
                "global_rng": mrandom.get_rng_state(),
                "loader": self.loader.state_dict(),
                "total_steps": self.total_steps}
        return arrays, meta

    def save_checkpoint(self) -> Path:
        arrays, meta = self._checkpoint_arrays()
        for group in ("G", "D"):
            xp_ok = all(bool(np.isfinite(backend.to_numpy(v)).all())
                        for v in arrays[group].values() if v.dtype.kind == "f")
            if not xp_ok:
                raise TrainingDiverged(f"not saving step {self.step}: {group} has non-finite "
                                       "weights; the last good checkpoint is kept")
        return self.ckpts.save(arrays, meta, self.step)

    def _restore(self, arrays: dict, meta: dict) -> None:
        self.G.load_state_dict(arrays["G"])
        self.D.load_state_dict(arrays["D"])
        optimizer_from_arrays(self.trainer.opt_G, arrays.get("opt_G", {}), meta["opt_G"])
        optimizer_from_arrays(self.trainer.opt_D, arrays.get("opt_D", {}), meta["opt_D"])
        self.trainer.load_rng_state(meta["trainer_rng"])
        mrandom.set_rng_state(meta["global_rng"])
        self.loader.load_state_dict(meta["loader"])
        self.step = int(meta["step"])

    @classmethod
    def resume(cls, out_dir, quiet: bool = False, **overrides) -> "Run":
        """Reopen a run folder at its newest valid checkpoint. ``overrides`` may extend the run
        (steps/epochs) or change where it runs (device)."""
        out = Path(out_dir)
        cfg_path = out / "config.json"
        if not cfg_path.exists():
            raise FileNotFoundError(f"--resume {out}: no config.json there; is it a run folder?")
        cfg = TrainConfig.from_dict(json.loads(cfg_path.read_text()))
        for k, v in overrides.items():
            if v is not None:
                setattr(cfg, k, v)
        cfg.out = str(out)
        run = cls(cfg, quiet=quiet)
        found = run.ckpts.load_latest(device=run.device)
        if found is None:
            raise CheckpointError(f"--resume {out}: no valid checkpoint in {out / 'checkpoints'}")
        latest, arrays, meta = found
        run._restore(arrays, meta)
        run._truncate_metrics()
        _log(f"resumed {out} at step {run.step} from {latest.name}")
        return run

    def _truncate_metrics(self) -> None:
        """Drop metric lines written after the checkpoint, so a resumed log reads as one run."""
        path = self.out / "metrics.jsonl"
        rows = [r for r in imgs.read_metrics(path) if r.get("step", 0) <= self.step]
        atomic_write(path, "".join(json.dumps(r) + "\n" for r in rows))

    # ----- outputs
    def write_grid(self) -> Path:
        x = generate_images(self.G, self.fixed_z, self.fixed_labels)
        return imgs.save_grid(x, self.out / "samples" / f"step_{self.step:08d}.png",
                              nrow=self.grid_nrow, scale=2 if x.shape[-1] <= 32 else 1)

    def write_gif_and_plot(self) -> None:
        frames = sorted((self.out / "samples").glob("step_*.png"))
        imgs.save_gif(frames, self.out / "progress.gif")
        plot_losses(self.out / "metrics.jsonl", self.out / "losses.png")

    def write_points(self) -> Path:
        """For 2-D toys: a scatter of real (grey) and generated (red) points."""
        n = 2000
        z = Tensor(Generator(self.cfg.seed + 99, self.device).normal((n, self.cfg.z_dim),
                                                                     dtype=np.float32))
        labels = None
        if self.trainer.num_classes:  # a conditional G on points: every mode label in turn
            labels = backend.to_device(np.arange(n, dtype=np.int64) % self.num_classes,
                                       self.device)
        fake = generate_images(self.G, z, labels)
        real = self.dataset.data[:n]
        return imgs.save_scatter([(real, (160, 160, 160)), (fake, (200, 30, 30))],
                                 self.out / "samples" / f"step_{self.step:08d}.png",
                                 lim=float(np.abs(real).max() * 1.3))

    # ----- the loop
    def _write_config(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write(self.out / "config.json",
                     json.dumps(asdict(self.cfg), indent=2, sort_keys=True) + "\n")

    def train(self) -> Path:
        cfg = self.cfg
        self._write_config()
        metrics_path = self.out / "metrics.jsonl"
        if self.step == 0 and metrics_path.exists():
            metrics_path.unlink()  # a fresh run in an old folder starts a fresh log
        points = self.dataset.kind == "points"
        write_sample = self.write_points if points else self.write_grid
        if self.step == 0:
            write_sample()
        bar = _Progress(self.total_steps, self.step, quiet=self.quiet)
        first_bad = None
        old_handler = signal.getsignal(signal.SIGINT)

        def on_sigint(signum, frame):
            self._interrupted = True

        signal.signal(signal.SIGINT, on_sigint)
        last_good = None

        def stop_if_diverged():
            # a read of the device flag: done where the step syncs anyway (a log row, a grid)
            bad = _first_bad_step(first_bad)
            if bad is not None:
                d, g = (float(stats[k].item()) for k in ("d_loss", "g_loss"))
                raise TrainingDiverged(
                    f"non-finite loss at step {bad} (at step {self.step}: d_loss={d}, "
                    f"g_loss={g}); stopped. The last good checkpoint is "
                    f"{last_good or 'none (no checkpoint was written yet)'}. Try a lower "
                    "learning rate.")

        t0, step0 = time.perf_counter(), self.step
        batches = self.loader.batches()
        try:
            while self.step < self.total_steps and not self._interrupted:
                x, y = next(batches)
                if cfg.lr_decay != "none":
                    self.trainer.set_lr_scale(lr_scale(cfg.lr_decay, self.step,
                                                       self.total_steps))
                stats = self.trainer.step(Tensor(x), y if self.trainer.num_classes else None)
                self.step += 1
                first_bad = _track_nonfinite(first_bad, stats, self.step)
                # an evaluation step is always a log step too (its metrics ride on the row),
                # whether or not eval_every is a multiple of log_every
                eval_now = bool(cfg.eval_every) and self.step % cfg.eval_every == 0
                log_now = (eval_now or self.step % cfg.log_every == 0
                           or self.step == self.total_steps)
                if log_now:
                    now = time.perf_counter()
                    row = self._metrics_row(stats, (self.step - step0) * cfg.batch_size
                                            / max(now - t0, 1e-9))
                    t0, step0 = now, self.step
                    stop_if_diverged()
                    if eval_now:
                        scores = self.evaluate()
                        row.update(scores)
                        bar.note(_eval_summary(self.step, scores))
                    _append_jsonl(metrics_path, row)
                    bar.update(self.step, row)
                else:
                    bar.update(self.step)
                if self.step % cfg.sample_every == 0 or self.step == self.total_steps:
                    if not log_now:  # a log step has just checked
                        stop_if_diverged()  # no grid of a diverged G
                    write_sample()
                    self.write_gif_and_plot()
                if self.step % cfg.checkpoint_every == 0 or self.step == self.total_steps:
                    if _first_bad_step(first_bad) is None:
                        last_good = self.save_checkpoint()
        finally:
            signal.signal(signal.SIGINT, old_handler)
            bar.close()
        if self._interrupted:
            if _first_bad_step(first_bad) is None:
                path = self.save_checkpoint()
                self.write_gif_and_plot()
                _log(f"interrupted at step {self.step}: checkpoint saved to {path}; continue "
                     f"with: minigan train --resume {self.out}")
            raise KeyboardInterrupt
        self.write_gif_and_plot()
        return self.out

    def _metrics_row(self, stats: dict, img_per_s: float) -> dict:
        row = {"step": self.step,
               "epoch": round(self.step / self.loader.steps_per_epoch, 4)}
        for k in ("d_loss", "g_loss", "d_real", "d_fake", "penalty"):
            v = stats.get(k)
            row[k] = None if v is None else float(v.item())  # the one sync, at log time
        row["img_per_s"] = round(img_per_s, 1)
        return row

    def evaluate(self) -> dict:
        from ..metrics import evaluate_generator
        return evaluate_generator(self.G, self.cfg, self.num_classes, self.dataset,
                                  n=self.cfg.eval_samples)


def _eval_summary(step: int, m: dict) -> str | None:
    """The headline scores of one --eval-every evaluation, for the log (all of them, and the
    rest, go to metrics.jsonl)."""
    if not m:
        return None
    parts = []
    if "num_modes" in m:  # 2-D toys
        parts.append(f"modes {m['modes_covered']}/{m['num_modes']}")
        parts.append(f"high-quality {m['high_quality']:.3f}")
    else:
        parts.append(f"FID {m['fid']:.1f}")
        parts.append(f"IS {m['is']:.2f}")
        parts.append(f"classes {m['modes_covered']}/{m['num_classes']}")
        parts.append(f"confident {m['confident']:.3f}")
        parts.append(f"precision {m['precision']:.3f}")
        parts.append(f"recall {m['recall']:.3f}")
        if "label_accuracy" in m:
            parts.append(f"label acc. {m['label_accuracy']:.3f}")
    return f"eval at step {step} ({m.get('n', '?')} samples): " + "  ".join(parts)


def _track_nonfinite(first_bad, stats, step):
    """Remember (on the device, without a sync) the first step whose losses were not finite."""
    d, g = stats["d_loss"].data, stats["g_loss"].data
    xp = backend.get_array_module(d)
    bad = ~xp.isfinite(d + g)
    if first_bad is None:
        first_bad = xp.full((), -1, dtype=np.int64)
    return xp.where((first_bad < 0) & bad, step, first_bad)


def _first_bad_step(first_bad):
    if first_bad is None:
        return None
    v = int(first_bad.item()) if hasattr(first_bad, "item") else int(first_bad)
    return None if v < 0 else v


def _append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()


class _Progress:
    """A one-line progress bar with ETA and the latest losses; plain log lines when stderr is not
    a terminal."""

    def __init__(self, total: int, start: int, quiet: bool = False):
        self.total, self.start = total, start
        self.t0 = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.quiet = quiet
        self.last = ""

    def update(self, step: int, row: dict | None = None) -> None:
        if self.quiet:
            return
        if row is not None:
            parts = [f"d_loss {row['d_loss']:.4f}", f"g_loss {row['g_loss']:.4f}",
                     f"D(x) {row['d_real']:.3f}", f"D(G(z)) {row['d_fake']:.3f}"]
            if row.get("penalty") is not None:
                parts.append(f"gp {row['penalty']:.4f}")
            self.last = "  ".join(parts)
        if not self.tty and row is None:
            return
        done = step - self.start
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / done * (self.total - step) if done else 0.0
        frac = step / self.total
        if self.tty:
            bar = "#" * int(frac * 24)
            sys.stderr.write(f"\r[{bar:<24}] {step}/{self.total} ({frac:5.1%}) "
                             f"ETA {_hms(eta)}  {self.last}\x1b[K")
            sys.stderr.flush()
        else:
            _log(f"step {step}/{self.total} ({frac:.1%}) elapsed {_hms(elapsed)} "
                 f"ETA {_hms(eta)}  {self.last}")

    def note(self, line: str | None) -> None:
        """A line of its own above the bar (the bar is redrawn by the next update)."""
        if self.quiet or not line:
            return
        if self.tty:
            sys.stderr.write("\r\x1b[K")
        _log(line)

    def close(self) -> None:
        if self.tty and not self.quiet:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def load_generator(ckpt_path, device="cpu"):
    """(G, meta) from a checkpoint file, ready to sample, in eval mode."""
    arrays, meta = load_checkpoint(ckpt_path, device="cpu")
    if "G" not in arrays or "config" not in meta:
        raise CheckpointError(f"{ckpt_path}: not a minigan training checkpoint (no G or config)")
    cfg = TrainConfig.from_dict(meta["config"])
    G, _ = build_models(cfg.preset, tuple(meta["sample_shape"]), meta["num_classes"], cfg.z_dim,
                        cfg.arch, cfg.ngf, cfg.ndf, cfg.g_upsample,
                        point_hidden=cfg.point_hidden, point_g_batch_norm=cfg.point_g_batch_norm)
    G.load_state_dict(arrays["G"])
    G.to(backend.normalize_device(device)).eval()
    return G, meta
