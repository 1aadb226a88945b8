"""The training run: data, models, trainer, logging, grids, GIF, plot, checkpoints, resume.

Everything a run writes goes to its output folder:

* ``config.json``  the resolved configuration;
* ``metrics.jsonl`` one JSON line per log interval: step, epoch, d_loss, g_loss, d_real (D(x)),
  d_fake (D(G(z))), penalty, img_per_s (and metrics when --eval-every is set);
* ``samples/step_XXXXXXXX.png`` fixed-noise grids, ``progress.gif`` made from them;
* ``losses.png`` the losses and D outputs against the step;
* ``checkpoints/ckpt_XXXXXXXX.npz`` atomic checkpoints, the last k kept.

Every file but ``metrics.jsonl`` is written atomically; the log is appended one complete line
per write, and a resume drops a last line torn by a crash (it was written after the checkpoint
the run continues from anyway). A fresh run refuses a folder that already holds these outputs,
unless told to ``overwrite`` them.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import signal
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import backend
from .. import random as mrandom
from ..atomic import atomic_write, file_in_the_way
from ..autograd import Tensor
from ..checkpoint import CheckpointError, CheckpointManager, load_checkpoint
from ..kernels.random import Generator
from ..nn import init
from . import images as imgs
from .models import build_models
from .plot import plot_losses
from .trainer import (GANTrainer, TrainConfig, check_preset_settings, generate_images,
                      is_folder_dataset, lr_scale, make_trainer)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


class RunFolderError(ValueError):
    """An output folder that a fresh run must not write into (it holds another run's outputs,
    or it is a file)."""


# What a run writes into its folder (and all that ``overwrite`` deletes): files, and patterns
# inside sub-folders.
_OUTPUT_FILES = ("config.json", "metrics.jsonl", "progress.gif", "losses.png")
_OUTPUT_GLOBS = (("samples", "step_*.png"), ("checkpoints", "ckpt_*.npz"),
                 ("checkpoints", ".ckpt_*.npz.*.tmp"))

# The settings that make a run what it is: a resume refuses a config.json that disagrees with
# its checkpoint's own copy on any of them (the others, such as steps, epochs, device, out,
# data_dir and the logging intervals, may change between sessions).
_RESUME_MUST_MATCH = ("preset", "dataset", "image_size", "channels", "batch_size", "lr_g",
                      "lr_d", "beta1", "beta2", "z_dim", "seed", "g_loss", "n_critic", "n_gen",
                      "label_smoothing", "joint_d_batch", "arch", "g_upsample", "ngf", "ndf",
                      "gp_lambda", "dragan_perturb", "dragan_c", "lr_decay", "point_hidden",
                      "point_g_batch_norm")


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
    """A training run bound to an output folder; ``Run(cfg).train()`` or ``Run.resume(dir)``.

    A fresh run refuses a folder that already holds a run's outputs (``RunFolderError``);
    ``overwrite=True`` deletes those outputs (only the files a run writes) when ``train()``
    starts, once everything else has been set up.
    """

    def __init__(self, cfg: TrainConfig, quiet: bool = False, overwrite: bool = False, *,
                 _resuming: bool = False):
        self._given = cfg  # as given: which settings were set, before the defaults fill in
        self.cfg = cfg = cfg.resolved()
        self.quiet = quiet
        self._fresh = not _resuming
        self._overwrite = bool(overwrite)
        if self._fresh:  # checked before anything slow: a clash costs no data loading
            # the settings the run would ignore, in the config as given (the defaults give
            # every preset DRAGAN's penalty settings)
            check_preset_settings(self._given)
            # paths as absolute ones: a resume from another folder reads the same data
            cfg.dataset, cfg.data_dir = _absolute_data_paths(cfg.dataset, cfg.data_dir)
        self.out = Path(cfg.out or f"runs/{cfg.preset}-{Path(str(cfg.dataset)).name}")
        if self._fresh:
            _check_out_folder(self.out, self._overwrite)
        self.lock = RunLock(self.out)
        self.lock.acquire()
        try:
            self._setup(cfg)
        except BaseException:
            self.lock.release()  # nothing started: the folder is as it was
            raise

    def _setup(self, cfg: TrainConfig) -> None:
        from ..data import DataLoader, load_dataset

        self.device = backend.normalize_device(cfg.device)
        mrandom.manual_seed(cfg.seed)
        self.dataset = load_dataset(cfg.dataset, split="train", image_size=cfg.image_size,
                                    root=cfg.data_dir, channels=cfg.channels)
        shape = tuple(self.dataset.sample_shape)
        if self._fresh:
            check_preset_settings(self._given, shape)
            if cfg.cuda_graph and self.device != "cuda":
                raise ValueError(f"--cuda-graph needs the GPU, and this run is on the "
                                 f"{self.device} (--device {cfg.device}); drop --cuda-graph or "
                                 "use --device cuda")
        if cfg.eval_every:
            self._check_eval_data()
        if self.dataset.kind == "image" and len(shape) == 3 and shape[1] == shape[2]:
            # what was detected, kept in config.json: a resume then reads the data the same
            # way even if the folder has changed (one colour image added to a grey folder)
            cfg.channels, cfg.image_size = int(shape[0]), int(shape[1])
        self.num_classes = self.dataset.num_classes or 0
        self.loader = DataLoader(self.dataset, batch_size=cfg.batch_size, shuffle=True,
                                 drop_last=True,
                                 seed=cfg.seed, device=self.device)
        self.G, self.D = build_models(cfg.preset, self.dataset.sample_shape, self.num_classes,
                                      cfg.z_dim, cfg.arch, cfg.ngf, cfg.ndf, cfg.g_upsample,
                                      point_hidden=cfg.point_hidden,
                                      point_g_batch_norm=cfg.point_g_batch_norm)
        _check_batch_norm_batch(self.G, self.D, cfg)
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
            raise ValueError(f"nothing to train: --epochs {cfg.epochs} is less than one step "
                             f"(an epoch is {spe} steps)")
        self.step = 0
        self._fixed_noise()
        self.ckpts = CheckpointManager(self.out / "checkpoints", keep_last=cfg.keep_checkpoints)
        self._interrupted = False

    def _check_eval_data(self) -> None:
        """--eval-every scores an image run's samples against its data set's test split: read
        it now, so that a run that could not be scored stops before it starts (and before
        --overwrite deletes anything), not at its first evaluation."""
        from ..data import DatasetError, load_dataset
        from ..metrics.evaluate import metrics_kind

        name = self.dataset.name
        if metrics_kind(name) != "image":
            return  # the toys draw their test points; other data have no metrics (a note)
        try:
            load_dataset(name, split="test", root=self.cfg.data_dir)
        except DatasetError as exc:
            raise DatasetError(f"--eval-every {self.cfg.eval_every} scores the samples against "
                               f"the {name} test split, which cannot be read, so the run "
                               f"would stop at its first evaluation: {exc}") from exc

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
                "data_probe": _data_probe(self.dataset),
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

    def _restore(self, arrays: dict, meta: dict, path: Path) -> None:
        """Load a checkpoint's state into this run; anything in it that does not fit (another
        preset's weights, a hand-edited config, a damaged file) is a CheckpointError naming the
        file and what did not fit. After such an error the run is half loaded and must not be
        trained (``resume`` discards it)."""
        part = "the checkpoint"
        try:
            for part, module in (("G", self.G), ("D", self.D)):
                # load_state_dict raises KeyError (or RuntimeError) listing the mismatches
                module.load_state_dict(arrays[part])
            for part, opt in (("opt_G", self.trainer.opt_G), ("opt_D", self.trainer.opt_D)):
                optimizer_from_arrays(opt, arrays.get(part, {}), meta[part])
            part = "the random-number states"
            self.trainer.load_rng_state(meta["trainer_rng"])
            # a GPU run's CUDA stream is not needed (nor available) on a CPU-only machine
            mrandom.set_rng_state({dev: st for dev, st in meta["global_rng"].items()
                                   if dev == "cpu" or backend.cuda_available()})
            part = "the data loader's position"
            self.loader.load_state_dict(meta["loader"])
            part = "the step"
            step = meta["step"]
            if isinstance(step, bool) or not isinstance(step, int) or step < 0:
                raise ValueError(f"step {step!r} is not a non-negative integer")
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError,
                AttributeError) as exc:
            raise CheckpointError(
                f"checkpoint {path} does not fit the {self.cfg.preset} run that "
                f"{self.out / 'config.json'} describes ({part}: {_reason(exc)}); was the "
                "checkpoint or config.json copied from another run, or edited?") from exc
        self.step = step

    @classmethod
    def resume(cls, out_dir, quiet: bool = False, steps: int | None = None,
               epochs: float | None = None, device: str | None = None,
               preset: str | None = None) -> "Run":
        """Reopen a run folder at its newest valid checkpoint.

        ``steps`` or ``epochs`` sets a new total for the run (either one replaces the other;
        ``steps`` wins when both are given, as for a fresh run); a total below the step already
        reached is an error. ``device`` moves the run ("cpu" continues a GPU run on a machine
        without one). ``preset``, when given, must be the run's own. Everything else comes from
        the folder's config.json, which must agree with the checkpoint's own copy.
        """
        if not str(out_dir).strip():
            raise ValueError("--resume needs a run folder, got an empty string")
        out = Path(out_dir)
        if not out.is_dir():
            raise FileNotFoundError(f"--resume {out}: no such folder" if not out.exists() else
                                    f"--resume {out}: not a folder")
        cfg_path = out / "config.json"
        if not cfg_path.exists():
            ckpts = sorted((out / "checkpoints").glob("ckpt_*.npz"))
            if ckpts:
                raise FileNotFoundError(
                    f"--resume {out}: no config.json there, though it holds checkpoints; "
                    f"restore it with minigan info --config {ckpts[-1]} > {cfg_path}")
            raise FileNotFoundError(f"--resume {out}: no config.json there; is it a run folder?")
        stored = _read_config(cfg_path)
        try:
            cfg = TrainConfig.from_dict(stored)
            cfg.validate()
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{cfg_path}: {exc}") from exc
        if preset is not None and preset != cfg.preset:
            raise ValueError(f"--resume {out} is a {cfg.preset} run, not {preset}; leave the "
                             f"preset out to continue it, or start a {preset} run with a new "
                             "--out")
        if steps is not None or epochs is not None:
            cfg.steps, cfg.epochs = steps, epochs  # the new total, from whichever is given
        if device is not None:
            cfg.device = device
        cfg.out = str(out)
        cfg.validate()  # the new --steps/--epochs/--device, named as flags
        try:
            run_device = backend.normalize_device(cfg.device)
        except backend.DeviceError as exc:
            if device is None:
                raise backend.DeviceError(
                    f"{exc} This run was trained with --device {cfg.device}; to continue it "
                    f"on this machine's CPU, add --device cpu.") from exc
            raise
        lock = RunLock(out)
        lock.acquire()  # before the checkpoint manager, which clears stale temporary files
        try:
            manager = CheckpointManager(out / "checkpoints")
            found = manager.load_latest(device=run_device)
            if found is None:
                raise CheckpointError(_no_checkpoint_message(out, manager))
            latest, arrays, meta = found
            _check_same_run(stored, meta, cfg_path, latest)
            _resolve_relative_paths(cfg, stored, out, cfg_path)
            run = cls(cfg, quiet=quiet, _resuming=True)
            saved, now = meta.get("sample_shape"), list(run.dataset.sample_shape)
            if isinstance(saved, list) and saved != now:
                hint = ""
                if len(saved) == 3 and ("channels" not in stored
                                        or stored.get("image_size") is None):
                    hint = (f' ({cfg_path} is older than minigan\'s record of what it found: add '
                            f'"channels": {saved[0]} and "image_size": {saved[-1]} to it)')
                raise CheckpointError(
                    f"checkpoint {latest} was trained on samples of shape {tuple(saved)}, but "
                    f"{cfg.dataset} now gives {tuple(now)}: has the data changed?{hint}")
            _check_same_data(meta, run.dataset, cfg.dataset, latest)
            run._restore(arrays, meta, latest)
            if run.total_steps < run.step:
                if steps is not None:
                    given = f"--steps {steps}"
                elif epochs is not None:
                    given = f"--epochs {epochs} ({run.total_steps} steps)"
                else:
                    given = f"the total in {cfg_path} ({run.total_steps} steps)"
                raise ValueError(f"--resume {out}: {given} is below step {run.step}, which the run "
                                 f"has already reached ({latest.name}); give a larger total")
            run._truncate_metrics()
            run._set_aside_abandoned(manager)
            if not quiet:  # (progress: --quiet silences it; warnings and notes still print)
                _log(f"resumed {out} at step {run.step} from {latest.name}")
            _note_new_decay_total(cfg, run.step, meta.get("total_steps"), run.total_steps)
            if run.step == run.total_steps:
                _log(f"the run is already at its total of {run.total_steps} steps: nothing to "
                     "train; give a larger --steps or --epochs to continue it")
            return run
        except BaseException:
            lock.release()  # nothing resumed: the folder is free again
            raise

    def _truncate_metrics(self) -> None:
        """Drop metric lines written after the checkpoint (and a last line torn by a crash, with
        a warning), so a resumed log reads as one run; the file is rewritten atomically."""
        path = self.out / "metrics.jsonl"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rows = imgs.read_metrics(path, torn_last="warn")
        for w in caught:  # a line of the log like the others, not a warning's source line
            _log(f"warning: {w.message}")
        rows = [r for r in rows if _row_step(r, path) <= self.step]
        atomic_write(path, "".join(json.dumps(r) + "\n" for r in rows))

    def _set_aside_abandoned(self, manager: CheckpointManager) -> None:
        """What the run wrote after the checkpoint it resumes from, as _truncate_metrics does
        for the log: grids of later steps are removed (they show a trajectory the resumed run
        does not follow, and would stay in progress.gif if it stops earlier), and checkpoints
        numbered after it, which did not load, are renamed ``*.unreadable``: kept to look at,
        but no longer the newest files that every sample/info/eval call skips with a warning,
        nor counted among the checkpoints kept."""
        later = [p for p in manager.list() if _step_of(p) > self.step]
        for p in later:
            aside = p.with_name(p.name + ".unreadable")
            os.replace(p, aside)
            _log(f"note: {p.name} did not load; renamed to {aside.name}")
        grids = [p for p in (self.out / "samples").glob("step_*.png")
                 if _step_of(p) is not None and _step_of(p) > self.step]
        for p in grids:
            p.unlink()
        if grids:
            _log(f"note: removed {len(grids)} sample grid(s) of steps after {self.step}, "
                 f"written before the run stopped")

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

    def _clear_folder(self) -> None:
        """Before a fresh run's first write: refuse another run's outputs, or (overwrite)
        delete them, and only them."""
        _check_out_folder(self.out, self._overwrite)
        old = _delete_run_outputs(self.out)
        if old:
            _log(f"--overwrite: deleted {_describe(old, self.out)} of the previous run in "
                 f"{self.out}")

    def train(self) -> Path:
        """Train to the run's total (or until Ctrl-C, which saves a checkpoint); returns the
        output folder. The folder's lock is held meanwhile and released at the end."""
        self.lock.acquire()
        try:
            return self._train()
        finally:
            self.lock.release()

    def _train(self) -> Path:
        new_run = self._fresh
        if self._fresh:
            self._clear_folder()
            self._fresh = False
        try:
            return self._train_steps()
        except BaseException:
            if new_run and self.step == 0 and not self.ckpts.list():
                self._remove_untrained_outputs()
            raise

    def _remove_untrained_outputs(self) -> None:
        """After a new run failed before its first step ended (and saved no checkpoint): delete
        what it had written (config.json, the step-0 grid), which describe nothing trained, so
        that the folder is as it was and the same --out can be used again without --overwrite.
        Only this run's files are there: the folder held no run's outputs when it started (or
        --overwrite had deleted them)."""
        written = _delete_run_outputs(self.out)
        if written:
            _log(f"nothing was trained: removed what the run had written in {self.out} "
                 f"({_describe(written, self.out)})")

    def _train_steps(self) -> Path:
        cfg = self.cfg
        self._write_config()
        metrics_path = self.out / "metrics.jsonl"
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
        kept = self.ckpts.list()
        last_good = kept[-1] if kept else None  # a resumed run's checkpoint

        def stop_if_diverged():
            # a read of the device flag: done where the step syncs anyway (a log row, a grid)
            bad = _first_bad_step(first_bad)
            if bad is not None:
                d, g = (float(stats[k].item()) for k in ("d_loss", "g_loss"))
                good = (f"The last good checkpoint is {last_good}" if last_good else
                        f"No checkpoint was written yet, so {self.out} holds no run to "
                        "resume: start again there with --overwrite")
                raise TrainingDiverged(
                    f"non-finite loss at step {bad} (at step {self.step}: d_loss={d}, "
                    f"g_loss={g}); stopped. {good}. Try a lower learning rate.")

        # img_per_s: the training steps' rate alone; the time spent on evaluations, grids,
        # the GIF and checkpoints between two log rows (`aside`) is taken out of it
        t0, step0, aside = time.perf_counter(), self.step, 0.0
        batches = self.loader.batches()
        train_step = self._step_function()
        # NumPy's overflow and invalid-value warnings stay quiet in the steps: a loss that
        # goes non-finite stops the run with its own message (stop_if_diverged), which the
        # warnings' source lines in minigan's kernels would only bury
        quiet_fp = np.errstate(over="ignore", invalid="ignore", divide="ignore")
        try:
            with quiet_fp:
                while self.step < self.total_steps and not self._interrupted:
                    x, y = next(batches)
                    if cfg.lr_decay != "none":
                        self.trainer.set_lr_scale(lr_scale(cfg.lr_decay, self.step,
                                                           self.total_steps))
                    stats = train_step(Tensor(x), y if self.trainer.num_classes else None)
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
                                                / max(now - t0 - aside, 1e-9))
                        t0, step0, aside = now, self.step, 0.0
                        stop_if_diverged()
                        if eval_now:
                            t_aside = time.perf_counter()
                            scores = self.evaluate()
                            row.update(scores)
                            bar.note(_eval_summary(self.step, scores))
                            aside += time.perf_counter() - t_aside
                        _append_jsonl(metrics_path, row)
                        bar.update(self.step, row)
                    else:
                        bar.update(self.step)
                    if self.step % cfg.sample_every == 0 or self.step == self.total_steps:
                        if not log_now:  # a log step has just checked
                            stop_if_diverged()  # no grid of a diverged G
                        t_aside = time.perf_counter()
                        write_sample()
                        self.write_gif_and_plot()
                        aside += time.perf_counter() - t_aside
                    if self.step % cfg.checkpoint_every == 0 or self.step == self.total_steps:
                        if _first_bad_step(first_bad) is None:
                            t_aside = time.perf_counter()
                            last_good = self.save_checkpoint()
                            aside += time.perf_counter() - t_aside
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

    def _step_function(self):
        """The trainer's step, or with ``cuda_graph`` on the GPU the same step captured as a
        CUDA graph and replayed (its stats are read before the next step overwrites them)."""
        if not self.cfg.cuda_graph:
            return self.trainer.step
        if self.device != "cuda":
            _log("note: --cuda-graph needs the GPU; this run continues on the CPU without it")
            return self.trainer.step
        from .graph import GraphedStep

        def fallback(exc):
            _log(f"warning: --cuda-graph: capturing the step failed ({type(exc).__name__}: "
                 f"{exc}); training goes on without the graph, with the same numbers")
        return GraphedStep(self.trainer, fallback=fallback)

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
    """Append one line in one write call (an unbuffered file): a crash or a full disk can tear
    only the last line, which a resume drops (read_metrics). Not fsynced: the log is rewritten
    from the checkpoint's step on resume anyway."""
    data = memoryview((json.dumps(row) + "\n").encode("utf-8"))
    try:
        with open(path, "ab", buffering=0) as f:
            while data:  # a short write (a disk filling up) goes on with the rest
                data = data[f.write(data):]
    except OSError as exc:
        if exc.errno is None:
            raise
        raise type(exc)(exc.errno, f"cannot write {path}: {exc.strerror}") from exc


def _reason(exc: BaseException) -> str:
    """An exception's message without KeyError's quotes; a bare missing key says so."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        msg = exc.args[0]
        return msg if " " in msg else f"no {msg!r} entry"
    return str(exc) or type(exc).__name__


def _step_of(path: Path):
    """The step in an output's name (``step_00000300.png``, ``ckpt_00000300.npz``), or None."""
    digits = path.name.split(".")[0].rpartition("_")[2]
    return int(digits) if digits.isdigit() else None


def _row_step(row: dict, path: Path):
    step = row.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        raise ValueError(f"{path}: a row with step {step!r}, not a number: "
                         f"{json.dumps(row)[:80]}")
    return step


def _read_config(path: Path) -> dict:
    """config.json as a dict; anything else is a ValueError naming the file."""
    hint = f"each checkpoint keeps a copy of it: minigan info --config CKPT > {path} restores it"
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); {hint}") from exc
    if not isinstance(d, dict):
        raise ValueError(f"{path} must hold a JSON object of settings, not a "
                         f"{type(d).__name__}; {hint}")
    return d


def _same_dataset(a, b) -> bool:
    from ..data import DATASET_NAMES

    if a == b:
        return True
    names = {n.replace("-", "") for n in DATASET_NAMES}

    def known(x):
        return str(x).lower().replace("_", "").replace("-", "") in names

    # an image folder that was moved (and config.json edited to the new place) keeps its name
    return (isinstance(a, str) and isinstance(b, str) and not known(a) and not known(b)
            and Path(a).name == Path(b).name)


def _check_same_run(stored: dict, meta: dict, cfg_path: Path, ckpt: Path) -> None:
    """CheckpointError when config.json and the checkpoint's own copy of the config disagree
    on a setting that makes the run what it is (a hand edit, or files of two runs mixed)."""
    theirs = meta.get("config")
    if not isinstance(theirs, dict):
        raise CheckpointError(f"checkpoint {ckpt} is not a minigan training checkpoint (its "
                              "metadata has no config)")
    diffs = []
    for key in _RESUME_MUST_MATCH:
        if key not in stored or key not in theirs:
            continue  # a config from before the key existed
        a, b = stored[key], theirs[key]
        if (key in ("image_size", "channels") and (a is None or b is None)) or (
                key == "dataset" and _same_dataset(a, b)):
            continue
        if a != b:
            diffs.append(f"{key} {a!r} there, {b!r} in the checkpoint")
    if diffs:
        raise CheckpointError(
            f"{cfg_path} does not describe the run that wrote {ckpt}: {'; '.join(diffs)}. A "
            f"resume continues the run as it was: restore config.json (minigan info --config "
            f"{ckpt} > {cfg_path} writes the checkpoint's copy), or start a new run with another "
            "--out for new settings")


def _no_checkpoint_message(out: Path, manager: CheckpointManager) -> str:
    """Why ``--resume out`` has nothing to continue from, and what to do instead."""
    where = out / "checkpoints"
    files = manager.list()
    if files:
        return (f"--resume {out}: no valid checkpoint in {where} (none of its {len(files)} "
                "checkpoint file(s) loads; each was skipped with a warning saying why)")
    reached = ""
    with contextlib.suppress(OSError, ValueError, TypeError):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = imgs.read_metrics(out / "metrics.jsonl", torn_last="drop")
        if rows:
            reached = f" (its log ends at step {_row_step(rows[-1], out / 'metrics.jsonl')})"
    return (f"--resume {out}: the run there wrote no checkpoint{reached}, so there is nothing "
            f"to continue from; start it again with --overwrite and --out {out}, or with a new "
            "--out")


def _absolute_data_paths(dataset: str, data_dir: str | None, base: str | None = None):
    """``(dataset, data_dir)`` with the paths made absolute (relative ones taken from ``base``,
    else the current folder), so that a resume from another folder reads the same data.
    ``dataset`` changes only when it names an existing folder of images: a data set's name
    stays, and a path that does not exist is left as typed for the loader's error to name."""
    def absolute(path: str) -> str:
        return os.path.abspath(os.path.join(base or os.getcwd(), os.path.expanduser(path)))

    if is_folder_dataset(dataset) and os.path.isdir(absolute(dataset)):
        dataset = absolute(dataset)
    if data_dir is not None:
        data_dir = absolute(data_dir)
    return dataset, data_dir


def _started_in(stored: dict, cfg: TrainConfig, out: Path) -> str | None:
    """The folder that the session which wrote config.json ran in, when its relative --out
    tells (that folder / out is the run folder): relative paths in config.json were relative
    to it. None when --out was absolute or does not fit."""
    given = stored.get("out")
    if given is None:  # the default folder, relative to where the run was started
        given = f"runs/{cfg.preset}-{Path(str(stored.get('dataset', ''))).name}"
    if not isinstance(given, str) or os.path.isabs(os.path.expanduser(given)):
        return None
    parts = Path(os.path.normpath(given)).parts
    here = Path(os.path.abspath(out)).parts
    if not parts or ".." in parts or len(parts) >= len(here) or here[-len(parts):] != parts:
        return None
    return str(Path(*here[:-len(parts)]))


def _resolve_relative_paths(cfg: TrainConfig, stored: dict, out: Path, cfg_path: Path) -> None:
    """A config.json written before minigan stored absolute paths may hold a relative dataset
    folder or data_dir. They were relative to the folder its session ran in (see
    ``_started_in``), which need not be the one a resume runs in: read them from there when
    the folder exists there, else from the current folder (as before), and say which when the
    two differ. config.json records the absolute path from this session on. A path that
    exists in neither stays as it is, for the loader to name."""
    cwd = os.getcwd()
    started = _started_in(stored, cfg, out)
    elsewhere = started is not None and os.path.abspath(started) != cwd
    for name in ("dataset", "data_dir"):
        value = getattr(cfg, name)
        if value is None or os.path.isabs(os.path.expanduser(value)) or (
                name == "dataset" and not is_folder_dataset(value)):
            continue
        choices = [(os.path.abspath(os.path.join(base, os.path.expanduser(value))), why)
                   for base, why in ((started, "the folder the run was started in"),
                                     (cwd, "the current folder")) if base is not None]
        found = [(path, why) for path, why in choices if os.path.isdir(path)]
        if not found:
            continue
        path, why = found[0]
        setattr(cfg, name, path)
        if elsewhere:
            missed = "" if path == choices[0][0] else f" (there is no {choices[0][0]})"
            _log(f"warning: {cfg_path} gives {name} {value!r} as a relative path (an older "
                 f"minigan wrote it so), and the run was started in {started}, not here: "
                 f"reading {path}, relative to {why}{missed}. config.json records the "
                 "absolute path from now on")


# The data a checkpoint was trained on, checked on resume: a few samples spread over the set,
# each as the mean pixel value (0-255, over the channels) of the cells of a 4x4 grid, with
# their labels. Pixels that another decoder, resizer or BLAS rounds differently move a cell's
# mean by far less than the tolerance; another image moves some cell by far more.
_PROBES = 16
_PROBE_GRID = 4
_PROBE_TOLERANCE = 3.0


def _data_probe(dataset) -> dict | None:
    """A cheap fingerprint of image data (None for the 2-D toys, which are drawn from a
    seed: their count and shape say enough)."""
    if dataset.kind != "image" or not len(dataset):
        return None
    index = sorted({int(i) for i in np.linspace(0, len(dataset) - 1, _PROBES).round()})
    x = np.asarray(dataset.data[index], dtype=np.float64).mean(1)  # (k, H, W)
    rows = np.array_split(np.arange(x.shape[1]), min(_PROBE_GRID, x.shape[1]))
    cols = np.array_split(np.arange(x.shape[2]), min(_PROBE_GRID, x.shape[2]))
    cells = np.stack([x[:, r[0]:r[-1] + 1, c[0]:c[-1] + 1].mean((1, 2))
                      for r in rows for c in cols], 1)
    labels = None if dataset.labels is None else [int(v) for v in dataset.labels[index]]
    return {"index": index, "cells": [[round(float(v), 2) for v in row] for row in cells],
            "labels": labels}


def _probe_changed(saved: dict, now: dict) -> list[int] | None:
    """The data-set indices of the probed samples that have changed (None: the probes cannot
    be compared, as when a checkpoint has none)."""
    if not (isinstance(saved, dict) and now is not None and saved.get("index") == now["index"]):
        return None
    k = len(now["index"])
    saved_labels, cells = saved.get("labels") or [None] * k, saved.get("cells")
    try:
        if len(cells) != k or len(saved_labels) != k:
            return None
        changed = []
        for i, a, b, la, lb in zip(now["index"], cells, now["cells"], saved_labels,
                                   now["labels"] or [None] * k):
            if len(a) != len(b) or la != lb or max(abs(float(u) - v) for u, v in zip(a, b)) > \
                    _PROBE_TOLERANCE:
                changed.append(i)
        return changed
    except (TypeError, ValueError):
        return None  # a malformed probe proves nothing either way


def _check_same_data(meta: dict, dataset, name: str, ckpt: Path) -> None:
    """CheckpointError when the data set does not hold as many samples as the checkpoint was
    trained on, or when most of the samples its probe looked at have changed (other data);
    a warning when a few have (the run goes on with the data as they are now)."""
    loader = meta.get("loader")
    saved_n = loader.get("num_samples") if isinstance(loader, dict) else None
    if isinstance(saved_n, int) and saved_n != len(dataset):
        raise CheckpointError(
            f"checkpoint {ckpt} was trained on {saved_n} samples, but {name} now holds "
            f"{len(dataset)}: the data have changed, and a resume continues the run on the "
            "data it was trained on (the same batches, in the same order). Restore the data, "
            "or train on them in a new run with another --out")
    now = _data_probe(dataset)
    changed = _probe_changed(meta.get("data_probe"), now)
    if not changed:
        return
    which = ", ".join(map(str, changed[:6])) + (", ..." if len(changed) > 6 else "")
    numbers = "number" if len(changed) == 1 else "numbers"
    summary = (f"{len(changed)} of the {len(now['index'])} samples whose pixels "
               f"{ckpt.name} recorded ({numbers} {which}, counting from 0 in the order the "
               f"{len(dataset)} samples are read)")
    if 2 * len(changed) > len(now["index"]):
        raise CheckpointError(
            f"{name} holds other data than checkpoint {ckpt} was trained on: {summary} are "
            "not what they were. A resume continues the run on its own data: restore them "
            "(or point config.json's dataset back at them), or train on these in a new run "
            "with another --out")
    _log(f"warning: {name} has changed since {ckpt} was written: {summary} differ; the run "
         "goes on with the data as they are now")


def _check_batch_norm_batch(G, D, cfg: TrainConfig) -> None:
    """ValueError naming --batch-size when a batch of one would reach a batch-norm layer of G
    or D (the MLP generators of gan, cgan and dragan, and of the 2-D toys): batch norm needs
    more than one value per channel to train, and it would fail only at the first step."""
    from ..nn import BatchNorm1d

    if cfg.batch_size is None or cfg.batch_size >= 2:
        return
    for who, net in (("G", G), ("D", D)):
        for name, module in net.named_modules():
            if isinstance(module, BatchNorm1d):
                raise ValueError(
                    f"--batch-size {cfg.batch_size}: too small for the {cfg.preset} preset "
                    f"here, whose {who} has batch norm ({name}: {type(module).__name__}), "
                    "which needs at least 2 samples a batch to train; use --batch-size 2 or "
                    "more")


def _note_new_decay_total(cfg: TrainConfig, step: int, old_total, new_total: int) -> None:
    """Under --lr-decay linear the rates depend on the run's total: a resume that changes it
    says how the rates move (the run then differs from one trained to the new total from the
    start, whose earlier steps had other rates)."""
    if (cfg.lr_decay != "linear" or isinstance(old_total, bool)
            or not isinstance(old_total, int) or old_total == new_total or step >= new_total):
        return
    was, now = lr_scale("linear", step, old_total), lr_scale("linear", step, new_total)
    _log(f"note: --lr-decay linear: the learning rates now fall to 0 at step {new_total}, not "
         f"{old_total}, so at step {step} they go from {was:.3g} to {now:.3g} times the base "
         f"rates. Steps 1-{step} were trained on the old schedule: the run is not the one "
         f"a straight run of {new_total} steps would be")


def _delete_run_outputs(out: Path) -> list[Path]:
    """Delete a run's files in ``out`` (``_run_outputs``, nothing else) and its subfolders if
    that leaves them empty; returns what was deleted."""
    found = _run_outputs(out)
    for path in found:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for sub in {sub for sub, _ in _OUTPUT_GLOBS}:
        with contextlib.suppress(OSError):  # only if empty: other files stay
            (out / sub).rmdir()
    return found


def _run_outputs(out: Path) -> list[Path]:
    """The files of a run in ``out``: exactly what a run writes there."""
    if not out.is_dir():
        return []
    found = [out / name for name in _OUTPUT_FILES if (out / name).is_file()]
    for sub, pattern in _OUTPUT_GLOBS:
        if (out / sub).is_dir():
            found += sorted(p for p in (out / sub).glob(pattern) if p.is_file())
    return found


def _describe(paths: list[Path], out: Path) -> str:
    """``config.json, metrics.jsonl, 3 checkpoint(s), the newest ckpt_00000030.npz, ...``"""
    parts = [p.name for p in paths if p.parent == out]
    ckpts = sorted(p.name for p in paths if p.parent != out and p.name.startswith("ckpt_"))
    grids = [p for p in paths if p.parent.name == "samples"]
    temps = [p for p in paths if p.name.endswith(".tmp")]
    if ckpts:
        parts.append(f"{len(ckpts)} checkpoint(s), the newest {ckpts[-1]}")
    if grids:
        parts.append(f"{len(grids)} sample grid(s)")
    if temps:
        parts.append(f"{len(temps)} temporary file(s)")
    return ", ".join(parts)


def _check_out_folder(out: Path, overwrite: bool) -> None:
    """RunFolderError when a fresh run cannot use ``out``: a file stands in the way, or it
    holds another run's outputs and ``overwrite`` is off (an empty or unrelated folder is
    fine)."""
    blocker = file_in_the_way(out)
    if blocker is not None:
        raise RunFolderError(f"--out {out}: {blocker} is a file, not a folder")
    found = _run_outputs(out)
    if found and not overwrite:
        if not any(p.parent.name == "checkpoints" and p.name.startswith("ckpt_")
                   for p in found):
            raise RunFolderError(
                f"--out {out} already holds a run that wrote no checkpoint "
                f"({_describe(found, out)}), so --resume has nothing to continue from; add "
                "--overwrite to delete its outputs and start again, or choose a new --out")
        if not (out / "config.json").exists():
            newest = max((p for p in found if p.parent.name == "checkpoints"
                          and p.name.startswith("ckpt_")), key=lambda p: p.name)
            raise RunFolderError(
                f"--out {out} already holds a run ({_describe(found, out)}) but no config.json; "
                f"to continue it, restore that with minigan info --config {newest} > "
                f"{out / 'config.json'} and then --resume {out}; or choose a new --out, or add "
                "--overwrite to delete its outputs and start again")
        raise RunFolderError(
            f"--out {out} already holds a run ({_describe(found, out)}); continue it with "
            f"--resume {out}, choose a new --out, or add --overwrite to delete its outputs "
            "and start again")


class RunLock:
    """``DIR/.minigan.lock``: the id of the process training the run in DIR. Two processes on
    one run folder would interleave its metrics and prune each other's checkpoints, so a second
    one is refused while the first lives. A lock left by a process that has died (killed, a
    power loss) is taken over. Released when training ends, and at exit."""

    NAME = ".minigan.lock"

    def __init__(self, out: Path):
        self.path = Path(out) / self.NAME
        self.held = False
        self.made_folder = False  # the run folder did not exist before the lock

    def _owner(self):
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def acquire(self) -> None:
        if self.held:
            return
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.made_folder = True
        me = os.getpid()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner == me:  # another Run of this process: the same training job
                    self.held = True
                    return
                if owner is not None and _pid_alive(owner) or owner is None and _young(self.path):
                    who = f"process {owner}" if owner is not None else "another process"
                    raise RunFolderError(
                        f"{self.path.parent} is being trained by {who} (lock {self.path}); "
                        f"wait for it to end or stop it. If no run is going on there, delete "
                        f"{self.path}") from None
                with contextlib.suppress(FileNotFoundError):  # its process has gone: stale
                    self.path.unlink()
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{me}\n")
            self.held = True
            atexit.register(self.release)
            return
        raise RunFolderError(f"could not take the lock {self.path}")

    def release(self) -> None:
        if self.held and self._owner() == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            if self.made_folder:  # a run that never started leaves no empty folder behind
                with contextlib.suppress(OSError):
                    self.path.parent.rmdir()
        self.held = False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, under another user
        return True
    return True


def _young(path: Path, seconds: float = 10.0) -> bool:
    """A lock file without a readable id is being written right now if it is this young."""
    try:
        return time.time() - path.stat().st_mtime < seconds
    except OSError:
        return False


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
    """(G, meta) from a checkpoint file, ready to sample, in eval mode.

    ``meta``'s "config" (a dict), "sample_shape" (a list) and "num_classes" (an int) are
    checked; anything that does not describe a generator, or a G whose arrays do not fit it,
    is a CheckpointError naming the file."""
    arrays, meta = load_checkpoint(ckpt_path, device="cpu")
    where = f"checkpoint {ckpt_path}"
    if not isinstance(arrays.get("G"), dict) or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{ckpt_path}: not a minigan training checkpoint (no G or config)")
    try:
        cfg = TrainConfig.from_dict(meta["config"])
        cfg.validate()
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{where}: its config is malformed: {exc}") from exc
    shape, k = meta.get("sample_shape"), meta.get("num_classes", 0)
    if not (isinstance(shape, list) and len(shape) in (1, 3)
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        raise CheckpointError(f"{where}: its sample_shape {shape!r} is not a list of 1 (points) "
                              "or 3 (images: C, H, W) positive integers")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise CheckpointError(f"{where}: its num_classes {k!r} is not an integer >= 0")
    try:
        G, _ = build_models(cfg.preset, tuple(shape), k, cfg.z_dim, cfg.arch, cfg.ngf,
                            cfg.ndf, cfg.g_upsample, point_hidden=cfg.point_hidden,
                            point_g_batch_norm=cfg.point_g_batch_norm)
    except MemoryError as exc:
        raise CheckpointError(f"{where}: not enough memory for the generator it describes "
                              f"(z_dim {cfg.z_dim}, samples of shape {tuple(shape)}): "
                              f"{exc}") from exc
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{where}: its config describes no generator: "
                              f"{_reason(exc)}") from exc
    try:
        G.load_state_dict(arrays["G"])  # KeyError (or RuntimeError) listing the mismatches
    except (KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{where}: its G does not fit the {cfg.preset} generator its "
                              f"config describes: {_reason(exc)}") from exc
    G.to(backend.normalize_device(device)).eval()
    meta = dict(meta, num_classes=k, sample_shape=list(shape))
    return G, meta
