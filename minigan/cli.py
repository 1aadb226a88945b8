"""The ``minigan`` command line: train, sample, interpolate, info, eval.

A thin layer over the Python API (``minigan.gan``); every flag maps to a ``TrainConfig`` field.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

PRESETS = ("gan", "dcgan", "dcgan64", "cgan", "dragan")


def _train_parser(sub):
    p = sub.add_parser("train", help="train a GAN preset",
                       description="Train a GAN. Outputs go to --out: config.json, metrics.jsonl, "
                                   "samples/, progress.gif, losses.png, checkpoints/.")
    p.add_argument("preset", nargs="?", choices=PRESETS,
                   help="model preset (omit with --resume)")
    p.add_argument("--dataset", default="mnist",
                   help="mnist, fashion-mnist, ring8, grid25, or a folder of images")
    p.add_argument("--data-dir", help="folder holding the mnist or fashion-mnist IDX files, "
                                      "checked against their published checksums (else "
                                      "MINIGAN_DATA, the cache, or a download)")
    p.add_argument("--image-size", type=int, help="resize images to this size")
    p.add_argument("--epochs", type=float,
                   help="epochs to train (default 1 for images; the 2-D toys ring8 and grid25 "
                        "train a fixed number of steps, see the README)")
    p.add_argument("--steps", type=int, help="iterations to train (overrides --epochs)")
    p.add_argument("--batch-size", type=int,
                   help="batch size (64 for images; the toy default for ring8/grid25)")
    p.add_argument("--lr-g", type=float, help="G learning rate (preset default)")
    p.add_argument("--lr-d", type=float, help="D learning rate (preset default)")
    p.add_argument("--beta1", type=float, help="Adam beta1 (preset default)")
    p.add_argument("--beta2", type=float, help="Adam beta2 (preset default)")
    p.add_argument("--lr-decay", choices=("none", "linear"),
                   help="learning-rate schedule: linear decays both rates to 0 by the last step "
                        "(default: none for images, linear for ring8/grid25)")
    p.add_argument("--z-dim", type=int, default=100)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample-every", type=int, default=200, help="steps between sample grids")
    p.add_argument("--checkpoint-every", type=int, default=1000,
                   help="steps between checkpoints")
    p.add_argument("--keep-checkpoints", type=int, default=3)
    p.add_argument("--log-every", type=int, default=50, help="steps between metric lines")
    p.add_argument("--eval-every", type=int, default=0,
                   help="steps between quality metrics appended to metrics.jsonl (0: off)")
    p.add_argument("--g-loss", choices=("nonsaturating", "minimax"), default="nonsaturating")
    p.add_argument("--n-critic", type=int, default=1, help="D steps per iteration")
    p.add_argument("--n-gen", type=int,
                   help="G steps per iteration (preset default: 3 for dcgan on images, 1 otherwise)")
    p.add_argument("--label-smoothing", type=float, default=0.0,
                   help="one-sided: real label = 1 - s")
    p.add_argument("--joint-d-batch", action="store_true",
                   help="one D pass over real+fake even with batch norm in D (a D that "
                        "scores each sample alone always gets one, with the same values)")
    p.add_argument("--arch", choices=("mlp", "conv"),
                   help="network family for gan/cgan/dragan on images (default mlp; dcgan and "
                        "dcgan64 are conv only)")
    p.add_argument("--g-upsample", action="store_true",
                   help="the 28x28 conv G with nearest upsampling + conv instead of transposed "
                        "convs (dcgan, or --arch conv)")
    p.add_argument("--gp-lambda", type=float, help="DRAGAN penalty weight (default 10)")
    p.add_argument("--dragan-perturb", choices=("official", "gaussian"),
                   help="DRAGAN perturbation: the authors' code (default) or the paper's N(0, cI)")
    p.add_argument("--dragan-c", type=float, help="DRAGAN perturbation scale (default 0.5)")
    p.add_argument("--cuda-graph", action="store_true",
                   help="GPU only: capture one training step as a CUDA graph and replay it "
                        "(the same training, far less host work per step)")
    p.add_argument("--out", help="output folder (default runs/PRESET-DATASET); a folder that "
                                 "already holds a run is refused (see --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="start again in an --out folder that holds a run: first delete that "
                        "run's outputs (config.json, metrics.jsonl, samples/, checkpoints/, "
                        "progress.gif, losses.png), and nothing else")
    p.add_argument("--resume", metavar="DIR",
                   help="continue the run in DIR exactly, with its own settings. Only "
                        f"{', '.join(RESUME_FLAGS)} may go with it: --steps or --epochs sets a "
                        "new total (either replaces the other; below the step reached is an "
                        "error), --device moves the run (--device cpu continues a GPU run on a "
                        "machine without one). Any other training flag is refused, and a "
                        "preset must be the run's own")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


# The flags that may go with --resume; any other training flag given with it is an error.
RESUME_FLAGS = ("--steps", "--epochs", "--device", "--quiet")


class UsageError(Exception):
    """A command-line value that cannot work (exit status 2, as argparse's own errors)."""


def _given_train_flags(argv) -> list[str]:
    """The train options written on the command line, as flags (defaults left out), in the
    parser's order."""
    probe = argparse.ArgumentParser(add_help=False)
    train = _train_parser(probe.add_subparsers(dest="command"))
    # argparse has no public list of a parser's actions; _actions is stable since Python 3.2
    options = [a for a in train._actions if a.option_strings and a.dest != "help"]
    for action in options:  # a second parse in which only what was written gets set
        action.default = argparse.SUPPRESS
    given = vars(probe.parse_args(argv))
    return [a.option_strings[0] for a in options if a.dest in given]


def cmd_train(a) -> int:
    if a.quiet:  # the data layer's progress lines too (decoding, fetching), for this command
        from .data.cache import ENV_QUIET
        import os

        before = os.environ.get(ENV_QUIET)
        os.environ[ENV_QUIET] = "1"
        try:
            return _train(a)
        finally:
            if before is None:
                os.environ.pop(ENV_QUIET, None)
            else:
                os.environ[ENV_QUIET] = before
    return _train(a)


def _train(a) -> int:
    from .gan.run import Run, TrainingDiverged
    from .gan.trainer import TrainConfig

    try:
        if a.resume is not None:
            others = [f for f in a.given_flags if f not in RESUME_FLAGS + ("--resume",)]
            if others:
                raise UsageError(
                    f"--resume {a.resume} continues the run with the settings in its "
                    f"config.json; {', '.join(others)} cannot go with it (only "
                    f"{', '.join(RESUME_FLAGS)} can). For other settings start a new run with "
                    "another --out")
            run = Run.resume(a.resume, quiet=a.quiet, steps=a.steps, epochs=a.epochs,
                             device=a.device if "--device" in a.given_flags else None,
                             preset=a.preset)
        else:
            if a.preset is None:
                print("minigan train: give a preset (gan, dcgan, dcgan64, cgan, dragan) or "
                      "--resume DIR", file=sys.stderr)
                return 2
            cfg = TrainConfig(
                preset=a.preset, dataset=a.dataset, data_dir=a.data_dir,
                image_size=a.image_size, epochs=a.epochs, steps=a.steps,
                batch_size=a.batch_size, lr_g=a.lr_g, lr_d=a.lr_d, beta1=a.beta1,
                beta2=a.beta2, lr_decay=a.lr_decay, z_dim=a.z_dim, device=a.device,
                seed=a.seed, out=a.out,
                sample_every=a.sample_every, checkpoint_every=a.checkpoint_every,
                keep_checkpoints=a.keep_checkpoints, log_every=a.log_every,
                eval_every=a.eval_every, g_loss=a.g_loss, n_critic=a.n_critic, n_gen=a.n_gen,
                label_smoothing=a.label_smoothing, joint_d_batch=a.joint_d_batch, arch=a.arch,
                g_upsample=a.g_upsample, gp_lambda=a.gp_lambda,
                dragan_perturb=a.dragan_perturb, dragan_c=a.dragan_c,
                cuda_graph=a.cuda_graph)
            run = Run(cfg, quiet=a.quiet, overwrite=a.overwrite)
        out = run.train()
    except KeyboardInterrupt:
        return 130
    except TrainingDiverged as e:
        print(f"minigan train: {e}", file=sys.stderr)
        return 3
    print(f"done: {run.step} steps; outputs in {out}")
    return 0


def _load_labels_arg(a, n, num_classes):
    if not num_classes:
        if a.label is not None:
            raise UsageError("--label needs a conditional (cgan) checkpoint")
        return None
    if a.label is not None:
        if not 0 <= a.label < num_classes:
            raise UsageError(f"--label must be in [0, {num_classes}), "
                             f"got {a.label}")
        return np.full(n, a.label, dtype=np.int64)
    return np.arange(n, dtype=np.int64) % num_classes


def cmd_sample(a) -> int:
    from . import backend
    from .autograd import Tensor
    from .gan.images import save_grid
    from .gan.run import load_generator
    from .gan.trainer import generate_images
    from .kernels.random import Generator

    if a.n < 1:
        raise UsageError(f"--n must be at least 1, got {a.n}")
    _check_outputs(a.checkpoint, [("--out", a.out, "image"), ("--npy", a.npy, ".npy"),
                                  ("--labels-npy", a.labels_npy, ".npy")])
    device = backend.normalize_device(a.device)
    G, meta = load_generator(a.checkpoint, device)
    k = meta["num_classes"] if meta["config"]["preset"] == "cgan" else 0
    labels = _load_labels_arg(a, a.n, k)
    if a.labels_npy and labels is None:
        raise UsageError("--labels-npy needs a conditional checkpoint")
    z = Tensor(Generator(a.seed, device).normal((a.n, meta["config"]["z_dim"]),
                                               dtype=np.float32))
    x = generate_images(G, z, None if labels is None else backend.to_device(labels, device))
    nrow = 10 if (k and a.label is None) else int(np.ceil(np.sqrt(a.n)))
    if len(x.shape) == 4:
        save_grid(x, a.out, nrow=nrow)
        print(f"wrote {a.out}")
    else:  # 2-D points: a scatter, over the toy's mode centres when the data set is known
        _save_points(x, a.out, meta)
        print(f"wrote {a.out} (a scatter of {x.shape[0]} points)")
    if a.npy:
        _save_npy(a.npy, x.astype(np.float32))
        print(f"wrote {a.npy} ({x.shape[0]} samples, shape {x.shape})")
    if a.labels_npy:
        _save_npy(a.labels_npy, labels)
        print(f"wrote {a.labels_npy}")
    return 0


# What a run folder holds besides its checkpoints and grids: an output of sample or
# interpolate must not land on any of them (nor on the checkpoint being read)
_RUN_FILES = ("config.json", "metrics.jsonl", "progress.gif", "losses.png", ".lock")


def _check_outputs(checkpoint, outputs) -> None:
    """UsageError, before anything is computed or written, for an output (``(flag, path,
    kind)``, kind "image" or the suffix it needs; path None when not asked for) with the wrong
    extension, that is a folder, that two flags share, or that would overwrite the checkpoint
    being read or a file of its run (config.json, metrics.jsonl, checkpoints/, samples/...)."""
    from .gan.images import image_format

    ckpt = Path(checkpoint).resolve()
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None
    seen = {}
    for flag, path, kind in outputs:
        if path is None:
            continue
        p = Path(path)
        full = p.resolve()
        if full == ckpt:
            raise UsageError(f"{flag} {path} would overwrite the checkpoint being read; write "
                             "it somewhere else")
        if run is not None and (full.parent in (run / "checkpoints", run / "samples")
                                or (full.parent == run and full.name in _RUN_FILES)):
            raise UsageError(f"{flag} {path} would overwrite a file of the run {run}, which "
                             f"wrote {checkpoint}; write it somewhere else")
        if p.is_dir():
            raise UsageError(f"{flag} {path} is a folder; give a file name")
        if full in seen:
            raise UsageError(f"{seen[full]} and {flag} name the same file {path}")
        seen[full] = flag
        if kind == "image":
            try:
                image_format(p)
            except ValueError as e:
                raise UsageError(f"{flag}: {e}") from None
        elif p.suffix.lower() != kind:
            raise UsageError(f"{flag} {path}: the file name must end in {kind}")


def _save_points(x, out, meta) -> None:
    from .data import TOY_STD, toy_centers
    from .gan.images import save_scatter

    name = str(meta.get("dataset_name") or meta["config"].get("dataset", "")).lower()
    layers = []
    if name in TOY_STD:
        centers = toy_centers(name)
        layers.append((centers, (160, 160, 160)))
        lim = float(np.abs(centers).max() * 1.3)
    else:
        finite = x[np.isfinite(x).all(axis=1)]
        lim = float(np.abs(finite).max() * 1.1) if finite.size else 1.0
    layers.append((x, (200, 30, 30)))
    save_scatter(layers, out, lim=lim if lim > 0 else 1.0)


def _save_npy(path, arr):
    from .atomic import atomic_writer
    with atomic_writer(path) as f:
        np.save(f, arr, allow_pickle=False)


def cmd_interpolate(a) -> int:
    from . import backend
    from .autograd import Tensor
    from .gan.images import save_gif, save_grid
    from .gan.run import load_generator
    from .gan.trainer import generate_images
    from .kernels.random import Generator

    if a.points < 2:
        raise UsageError(f"--points must be at least 2 (a walk between "
                         f"points), got {a.points}")
    if a.frames < 1:
        raise UsageError(f"--frames must be at least 1, got {a.frames}")
    _check_outputs(a.checkpoint, [("--out", a.out, "image"), ("--gif", a.gif, ".gif")])
    device = backend.normalize_device(a.device)
    G, meta = load_generator(a.checkpoint, device)
    if len(meta.get("sample_shape", ())) != 3:
        raise UsageError(f"{a.checkpoint} makes 2-D points, not images; a latent walk draws "
                         "image frames (use minigan sample --npy for the points)")
    zdim = meta["config"]["z_dim"]
    k = meta["num_classes"] if meta["config"]["preset"] == "cgan" else 0
    if not k and a.label is not None:
        raise UsageError("--label needs a conditional (cgan) checkpoint")
    if k and a.label is not None and not 0 <= a.label < k:
        raise UsageError(f"--label must be in [0, {k}), got {a.label}")
    pts = Generator(a.seed, "cpu").normal((a.points, zdim), dtype=np.float32)
    pts = backend.to_numpy(pts)
    t = np.linspace(0, 1, a.frames, endpoint=False)[:, None]
    walk = []
    for i in range(a.points - 1 if not a.loop else a.points):
        z0, z1 = pts[i], pts[(i + 1) % a.points]
        if a.slerp:
            walk.append(_slerp(z0, z1, t))
        else:
            walk.append(z0 * (1 - t) + z1 * t)
    walk.append(pts[-1:] if not a.loop else pts[:1])
    z = np.concatenate(walk).astype(np.float32)
    labels = None
    if k:
        labels = np.full(len(z), a.label if a.label is not None else 0, dtype=np.int64)
    x = generate_images(G, Tensor(backend.to_device(z, device)),
                        None if labels is None else backend.to_device(labels, device))
    out = Path(a.out)
    save_grid(x, out, nrow=a.frames)
    print(f"wrote {out} ({len(z)} frames along {a.points} points)")
    if a.gif:
        import tempfile
        # the frames (each image 4x) go through a temporary folder, removed afterwards
        with tempfile.TemporaryDirectory(prefix="minigan-frames-") as tmp:
            paths = [save_grid(x[i:i + 1], Path(tmp) / f"{i:04d}.png", nrow=1, scale=4)
                     for i in range(len(x))]
            save_gif(paths, a.gif, duration_ms=80)
        print(f"wrote {a.gif}")
    return 0


def _slerp(z0, z1, t):
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1))
    omega = np.arccos(np.clip(cos, -1, 1))
    if np.sin(omega) < 1e-6:  # (anti)parallel anchors: no unique great circle, so a line
        return z0 * (1 - t) + z1 * t
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


def cmd_info(a) -> int:
    from .checkpoint import load_checkpoint

    arrays, meta = load_checkpoint(a.checkpoint)
    cfg = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    if a.config:  # exactly a config.json: `minigan info --config CKPT > RUN/config.json`
        if not cfg:
            raise UsageError(f"{a.checkpoint} holds no training config (not a checkpoint "
                             "that minigan train wrote)")
        print(json.dumps(cfg, indent=2, sort_keys=True))  # byte for byte as train writes it
        return 0
    if a.json:  # JSON alone on stdout, for scripts
        print(json.dumps({"checkpoint": str(a.checkpoint), "step": meta.get("step"),
                          "total_steps": meta.get("total_steps"), "config": cfg,
                          "arrays": {g: {"count": len(v), "values": int(sum(
                              int(np.prod(x.shape)) for x in v.values()))}
                              for g, v in arrays.items() if isinstance(v, dict)}}, indent=2))
        return 0
    print(f"checkpoint: {a.checkpoint}")
    print(f"preset: {cfg.get('preset')}  dataset: {cfg.get('dataset')}  step: {meta.get('step')}"
          f" of {meta.get('total_steps')}  device: {cfg.get('device')}")
    for group, arrs in arrays.items():
        if isinstance(arrs, dict):
            n = int(sum(int(np.prod(v.shape)) for v in arrs.values()))
            print(f"  {group}: {len(arrs)} arrays, {n:,} values")
    return 0


def cmd_eval(a) -> int:
    from .metrics import eval_checkpoint

    return eval_checkpoint(a.checkpoint, n=a.n, device=a.device, seed=a.seed, as_json=a.json,
                           data_dir=a.data_dir)


_CHECKPOINT_HELP = ("a checkpoint file, or a run folder (minigan train --out) for its newest "
                    "checkpoint that loads")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minigan", description="A from-scratch GAN engine on "
                                                                 "NumPy and CuPy.")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)

    p = sub.add_parser("sample", help="draw samples from a checkpoint")
    p.add_argument("checkpoint", help=_CHECKPOINT_HELP)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--out", default="grid.png")
    p.add_argument("--npy", help="also write the raw samples: N x C x H x W in [-1, 1] (2-D "
                                 "toys: the N x 2 points)")
    p.add_argument("--label", type=int, help="class for a conditional GAN")
    p.add_argument("--labels-npy", help="write the labels used (conditional GAN)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))

    p = sub.add_parser("interpolate", help="a latent walk between random points")
    p.add_argument("checkpoint", help=_CHECKPOINT_HELP)
    p.add_argument("--points", type=int, default=4)
    p.add_argument("--frames", type=int, default=10,
                   help="frames per segment between two points, the segment's first point "
                        "included (the last point is added at the end)")
    p.add_argument("--slerp", action="store_true", help="spherical instead of linear paths")
    p.add_argument("--loop", action="store_true", help="return to the first point")
    p.add_argument("--label", type=int)
    p.add_argument("--out", default="interpolation.png")
    p.add_argument("--gif", help="also write the walk as an animated GIF")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))

    p = sub.add_parser("info", help="describe a checkpoint")
    p.add_argument("checkpoint", help=_CHECKPOINT_HELP)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--json", action="store_true",
                     help="print the description as one JSON object, and nothing else")
    how.add_argument("--config", action="store_true",
                     help="print the run's settings exactly as its config.json holds them "
                          "(to restore one: minigan info --config CKPT > RUN/config.json)")

    p = sub.add_parser("eval", help="sample-quality metrics of a checkpoint")
    p.add_argument("checkpoint", help=_CHECKPOINT_HELP)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--json", action="store_true", help="print only the JSON line")
    p.add_argument("--data-dir", help="folder holding the real data for the floor and FID "
                                      "(default: the run's own --data-dir, MINIGAN_DATA, the "
                                      "cache, or a download)")
    return parser


def main(argv=None) -> int:
    from .backend import DeviceError
    from .checkpoint import CheckpointError

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    handler = {"train": cmd_train, "sample": cmd_sample, "interpolate": cmd_interpolate,
               "info": cmd_info, "eval": cmd_eval}[args.command]
    try:
        empty = [name for name, v in vars(args).items() if isinstance(v, str) and not v.strip()]
        if empty:  # "" would quietly mean the current folder, or the default
            raise UsageError(", ".join(_flag(n) for n in empty) + " must not be empty")
        seed = getattr(args, "seed", 0) if args.command != "train" else 0  # (TrainConfig's)
        if not 0 <= seed < _SEED_LIMIT:  # the noise streams take 64 bits: no silent wrap
            raise UsageError(f"--seed must be an integer in [0, 2**63), got {seed}")
        if args.command == "train":
            args.given_flags = _given_train_flags(argv)
        else:  # a run folder stands for its newest checkpoint
            from .checkpoint import resolve_checkpoint
            resolved = resolve_checkpoint(args.checkpoint)
            if resolved != Path(args.checkpoint):
                print(f"minigan {args.command}: using {resolved}", file=sys.stderr)
                args.checkpoint = str(resolved)
        return handler(args)
    except (UsageError, CheckpointError, DeviceError, FileNotFoundError, ValueError) as e:
        print(f"minigan {args.command}: {e}", file=sys.stderr)
        return 2
    except MemoryError as e:  # numpy says what it could not allocate: the shape and the size
        print(f"minigan {args.command}: out of memory: {e or 'MemoryError'}; "
              f"{_MEMORY_HINT[args.command].format(**vars(args))}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # stdout piped into a reader that stopped (| head): quiet, as a
        # Unix tool that dies of SIGPIPE (status 141); what is left to flush goes nowhere
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # (stdout without a file descriptor)
            pass
        return 141
    except OSError as e:  # an output that cannot be written: a full disk, a file as a folder
        print(f"minigan {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # (train stops cleanly by itself; its outputs stay resumable)
        print(f"minigan {args.command}: interrupted", file=sys.stderr)
        return 130


_SEED_LIMIT = 2 ** 63


_MEMORY_HINT = {
    "train": "try a smaller --batch-size, --z-dim or --image-size",
    "sample": "ask for fewer samples than --n {n}",
    "interpolate": "ask for fewer than --points {points} or --frames {frames}",
    "eval": "score fewer samples than --n {n}",
    "info": "the checkpoint is larger than this machine's memory",
}


def _flag(dest: str) -> str:
    return dest if dest == "checkpoint" else f"--{dest.replace('_', '-')}"


if __name__ == "__main__":
    sys.exit(main())
