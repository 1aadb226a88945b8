"""The sampling side of the command line: sample, interpolate, info, and their bad input."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minigan.cli import main
from minigan.gan.run import Run
from minigan.gan.trainer import TrainConfig

from .conftest import _cfg


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A 2-step gan checkpoint and a 2-step cgan checkpoint, trained on tiny data."""
    from .conftest import _tiny_images
    import minigan.data

    mp = pytest.MonkeyPatch()
    mp.setattr(minigan.data, "load_dataset", lambda *a, **k: _tiny_images((1, 28, 28)))
    root = tmp_path_factory.mktemp("cli")
    try:
        out = {p: Run(_cfg(root, p), quiet=True).train() for p in ("gan", "cgan")}
    finally:
        mp.undo()
    return {p: str(d / "checkpoints" / "ckpt_00000002.npz") for p, d in out.items()}


def test_sample_writes_grid_and_raw_samples(checkpoints, tmp_path, capsys):
    npy = tmp_path / "s.npy"
    assert main(["sample", checkpoints["gan"], "--n", "7", "--out", str(tmp_path / "g.png"),
                 "--npy", str(npy)]) == 0
    x = np.load(npy, allow_pickle=False)
    assert x.shape == (7, 1, 28, 28) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1
    # 7 samples on a ceil(sqrt(7)) = 3-wide grid: 3 rows of 3 cells
    w, h = Image.open(tmp_path / "g.png").size
    assert w == h and w > 3 * 28
    # the same seed gives the same samples; another seed does not
    main(["sample", checkpoints["gan"], "--n", "7", "--out", str(tmp_path / "g2.png"),
          "--npy", str(tmp_path / "s2.npy")])
    np.testing.assert_array_equal(np.load(tmp_path / "s2.npy"), x)
    main(["sample", checkpoints["gan"], "--n", "7", "--seed", "1", "--out",
          str(tmp_path / "g3.png"), "--npy", str(tmp_path / "s3.npy")])
    assert not np.array_equal(np.load(tmp_path / "s3.npy"), x)


@pytest.mark.parametrize("name, fmt", [("g.jpg", "JPEG"), ("g.JPEG", "JPEG"), ("g.tif", "TIFF"),
                                       ("g.webp", "WEBP"), ("g.bmp", "BMP")])
def test_sample_writes_the_format_its_extension_names(checkpoints, tmp_path, name, fmt):
    assert main(["sample", checkpoints["gan"], "--n", "4", "--out", str(tmp_path / name)]) == 0
    assert Image.open(tmp_path / name).format == fmt


@pytest.mark.parametrize("name", ["g.xyz", "grid"])
def test_sample_to_an_unknown_image_extension_is_a_usage_error(checkpoints, tmp_path, capsys,
                                                               name):
    assert main(["sample", checkpoints["gan"], "--n", "4", "--out", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert "cannot save an image as" in err and str(tmp_path / name) in err and ".png" in err
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left


def test_conditional_sample_cycles_labels_or_uses_the_given_one(checkpoints, tmp_path):
    lab = tmp_path / "labels.npy"
    assert main(["sample", checkpoints["cgan"], "--n", "23", "--out", str(tmp_path / "g.png"),
                 "--npy", str(tmp_path / "x.npy"), "--labels-npy", str(lab)]) == 0
    np.testing.assert_array_equal(np.load(lab), np.arange(23) % 10)
    assert np.load(tmp_path / "x.npy").shape == (23, 1, 28, 28)
    main(["sample", checkpoints["cgan"], "--n", "5", "--label", "7", "--out",
          str(tmp_path / "g7.png"), "--labels-npy", str(lab)])
    np.testing.assert_array_equal(np.load(lab), np.full(5, 7))


def test_interpolate_frame_counts_and_gif(checkpoints, tmp_path):
    out = tmp_path / "walk.png"
    gif = tmp_path / "walk.gif"
    assert main(["interpolate", checkpoints["gan"], "--points", "3", "--frames", "4",
                 "--out", str(out), "--gif", str(gif)]) == 0
    frames = Image.open(gif)
    assert frames.n_frames == (3 - 1) * 4 + 1  # 4 frames per leg, then the last point
    assert main(["interpolate", checkpoints["gan"], "--points", "3", "--frames", "4", "--loop",
                 "--slerp", "--out", str(out), "--gif", str(gif)]) == 0
    assert Image.open(gif).n_frames == 3 * 4 + 1  # back to the first point
    assert main(["interpolate", checkpoints["cgan"], "--label", "3", "--out", str(out)]) == 0


def test_info_names_preset_and_step(checkpoints, capsys):
    assert main(["info", checkpoints["cgan"]]) == 0
    text = capsys.readouterr().out
    assert "preset: cgan" in text and "step: 2 of 2" in text


def test_info_json_is_json_alone_and_info_config_is_the_runs_config_json(checkpoints, capsys):
    """--json prints one JSON object and nothing else (for scripts); --config prints the
    settings as config.json holds them, so that a lost or edited config.json can be restored
    with `minigan info --config CKPT > RUN/config.json`."""
    import json

    assert main(["info", checkpoints["cgan"], "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["step"] == 2 and d["total_steps"] == 2 and d["config"]["preset"] == "cgan"
    assert d["arrays"]["G"]["count"] > 0 and d["arrays"]["G"]["values"] > 0
    assert main(["info", checkpoints["cgan"], "--config"]) == 0
    text = capsys.readouterr().out
    run_dir = Path(checkpoints["cgan"]).parent.parent
    assert text == (run_dir / "config.json").read_text()  # byte for byte
    assert json.loads(text) == d["config"]


def test_output_piped_into_a_reader_that_stops_ends_quietly(checkpoints, capsys, monkeypatch):
    """`minigan info --json CKPT | head -1`: the reader closes the pipe; minigan stops
    without an error message, with the status of a Unix tool that dies of SIGPIPE."""
    import io
    import sys

    class ClosedPipe(io.TextIOBase):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise io.UnsupportedOperation("no descriptor")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["info", checkpoints["cgan"], "--json"]) == 141
    assert "Broken pipe" not in capsys.readouterr().err


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("argv, message", [
    (["sample", "CKPT", "--npy", "CKPT"], "--npy CKPT would overwrite the checkpoint being read"),
    (["sample", "CKPT", "--out", "x.png", "--npy", "RUN/checkpoints/x.npy"],
     "--npy RUN/checkpoints/x.npy would overwrite a file of the run RUN"),
    (["sample", "CKPT", "--out", "RUN/samples/step_00000002.png"],
     "--out RUN/samples/step_00000002.png would overwrite a file of the run RUN"),
    (["interpolate", "CKPT", "--out", "x.png", "--gif", "RUN/progress.gif"],
     "--gif RUN/progress.gif would overwrite a file of the run RUN"),
    (["interpolate", "CKPT", "--out", "x.png", "--gif", "RUN/config.json"],
     "--gif RUN/config.json would overwrite a file of the run RUN"),
    (["interpolate", "CKPT", "--out", "x.png", "--gif", "walk.png"],
     "--gif walk.png: the file name must end in .gif"),
    (["sample", "CKPT", "--out", "x.png", "--npy", "x.txt"],
     "--npy x.txt: the file name must end in .npy"),
    (["sample", "CKPT", "--out", "x.png", "--npy", "OUT"], "--npy OUT is a folder"),
    (["sample", "CKPT", "--out", "OUT"], "--out OUT is a folder"),
    (["sample", "CKPT", "--out", "grid.npy"], "--out: cannot save an image as '.npy' files"),
    (["sample", "CKPT", "--out", "x.png", "--npy", "a.npy", "--labels-npy", "a.npy"],
     "--npy and --labels-npy name the same file a.npy"),
])
def test_outputs_that_would_overwrite_the_run_or_are_malformed_are_refused_first(
        checkpoints, tmp_path, monkeypatch, capsys, argv, message):
    """Every output is checked before anything is generated or written: the checkpoint read,
    its run's files, a wrong extension, a folder, one file named twice."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(Path(checkpoints["gan"]).parent.parent, run)
    ckpt = run / "checkpoints" / "ckpt_00000002.npz"
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    subst = {"CKPT": str(ckpt), "RUN": str(run), "OUT": "out"}

    def fill(a):
        for k, v in subst.items():
            a = a.replace(k, v)
        return a

    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    listing = _files(tmp_path)
    assert main([fill(a) for a in argv]) == 2
    assert fill(message) in capsys.readouterr().err
    assert _files(tmp_path) == listing  # nothing written anywhere
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_interpolate_gif_leaves_no_frames_folder(checkpoints, tmp_path):
    assert main(["interpolate", checkpoints["gan"], "--points", "2", "--frames", "2",
                 "--out", str(tmp_path / "walk.png"), "--gif", str(tmp_path / "walk.gif")]) == 0
    assert _files(tmp_path) == ["walk.gif", "walk.png"]
    assert Image.open(tmp_path / "walk.gif").n_frames == 3


@pytest.mark.parametrize("command", ["sample", "interpolate", "eval"])
@pytest.mark.parametrize("seed", ["-1", str(2 ** 63)])
def test_sampling_seeds_outside_64_bits_are_refused_not_wrapped(checkpoints, tmp_path, capsys,
                                                                monkeypatch, command, seed):
    # (-1 and 2**64 - 1 would otherwise draw the very same noise)
    monkeypatch.chdir(tmp_path)  # (where the default --out would land)
    assert main([command, checkpoints["gan"], "--seed", seed]) == 2
    assert f"minigan {command}: --seed must be an integer in [0, 2**63), got {seed}" in \
        capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_in_sample_is_one_line_and_exit_130(checkpoints, monkeypatch, capsys):
    import minigan.cli as cli

    def interrupted(a):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_sample", interrupted)
    assert main(["sample", checkpoints["gan"]]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "minigan sample: interrupted"


@pytest.mark.parametrize("argv, message", [
    (["sample", "GAN", "--n", "0"], "--n must be at least 1, got 0"),
    (["sample", "GAN", "--label", "3"], "--label needs a conditional (cgan) checkpoint"),
    (["sample", "CGAN", "--label", "10"], "--label must be in [0, 10), got 10"),
    (["sample", "GAN", "--labels-npy", "l.npy"], "--labels-npy needs a conditional checkpoint"),
    (["interpolate", "GAN", "--points", "1"], "--points must be at least 2"),
    (["interpolate", "GAN", "--frames", "0"], "--frames must be at least 1, got 0"),
    (["interpolate", "GAN", "--label", "2"], "--label needs a conditional (cgan) checkpoint"),
    (["interpolate", "CGAN", "--label", "-1"], "--label must be in [0, 10), got -1"),
])
def test_bad_sampling_arguments_are_named(checkpoints, tmp_path, monkeypatch, capsys, argv,
                                          message):
    monkeypatch.chdir(tmp_path)
    argv = [checkpoints["gan"] if a == "GAN" else checkpoints["cgan"] if a == "CGAN" else a
            for a in argv]
    # exit status 2, as for argparse's own usage errors, with the command and the flag named
    assert main(argv + ["--out", str(tmp_path / "never.png")]) == 2
    assert f"minigan {argv[0]}: {message}" in capsys.readouterr().err
    assert not (tmp_path / "never.png").exists()


@pytest.mark.parametrize("flag, value, message", [
    ("--sample-every", "0", "sample_every (--sample-every) must be an integer >= 1, got 0"),
    ("--checkpoint-every", "0", "checkpoint_every (--checkpoint-every) must be an integer >= 1"),
    ("--log-every", "0", "log_every (--log-every) must be an integer >= 1"),
    ("--eval-every", "-5", "eval_every (--eval-every) must be an integer >= 0, got -5"),
    ("--z-dim", "0", "z_dim (--z-dim) must be an integer >= 1"),
    ("--image-size", "0", "image_size (--image-size) must be an integer >= 1"),
    ("--label-smoothing", "1.5", "label_smoothing (--label-smoothing) must lie in [0, 1)"),
    ("--gp-lambda", "-1", "gp_lambda (--gp-lambda) must be a finite number >= 0"),
    ("--gp-lambda", "nan", "gp_lambda (--gp-lambda) must be a finite number >= 0, got nan"),
    ("--lr-d", "nan", "lr_d (--lr-d) must be a finite number >= 0, got nan"),
    ("--lr-g", "inf", "lr_g (--lr-g) must be a finite number >= 0, got inf"),
    ("--beta1", "1.0", "beta1 (--beta1) must lie in [0, 1), got 1.0"),
    ("--beta2", "nan", "beta2 (--beta2) must lie in [0, 1), got nan"),
    ("--epochs", "inf", "epochs (--epochs) must be a finite number > 0, got inf"),
    ("--epochs", "nan", "epochs (--epochs) must be a finite number > 0, got nan"),
    ("--epochs", "0", "epochs (--epochs) must be a finite number > 0, got 0.0"),
    ("--steps", "0", "steps (--steps) must be an integer >= 1, got 0"),
    ("--keep-checkpoints", "0", "keep_checkpoints (--keep-checkpoints) must be an integer >= 1"),
    ("--seed", "-1", "seed (--seed) must be an integer >= 0, got -1"),
])
def test_train_rejects_out_of_range_settings_before_starting(tmp_path, capsys, flag, value,
                                                              message):
    out = tmp_path / "run"
    code = main(["train", "gan", "--dataset", "ring8", "--steps", "2", "--out", str(out),
                 flag, value])
    assert code != 0
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing was started or written


def test_config_range_check_also_guards_the_python_api():
    with pytest.raises(ValueError, match="eval_samples must be an integer >= 6, got 3"):
        TrainConfig(preset="gan", eval_samples=3).resolved()
    with pytest.raises(ValueError, match=r"batch_size \(--batch-size\) must be an integer"):
        TrainConfig(preset="gan", batch_size=0).resolved()
    with pytest.raises(ValueError, match=r"lr_g \(--lr-g\) must be a finite number >= 0, got "
                                         r"-0.0001"):
        TrainConfig(preset="gan", lr_g=-1e-4).resolved()
    assert TrainConfig(preset="gan", eval_every=0, image_size=None).resolved().batch_size == 64


@pytest.fixture(scope="module")
def point_checkpoint(tmp_path_factory):
    """A 2-step gan checkpoint on ring8 (the toy is generated, nothing to download)."""
    root = tmp_path_factory.mktemp("points")
    out = Run(_cfg(root, "gan", dataset="ring8"), quiet=True).train()
    return str(out / "checkpoints" / "ckpt_00000002.npz")


def test_sample_of_a_point_checkpoint_writes_a_scatter_and_the_points(point_checkpoint,
                                                                      tmp_path):
    png, npy = tmp_path / "pts.png", tmp_path / "pts.npy"
    assert main(["sample", point_checkpoint, "--n", "300", "--out", str(png),
                 "--npy", str(npy)]) == 0
    pts = np.load(npy, allow_pickle=False)
    assert pts.shape == (300, 2)
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape == (400, 400, 3)
    red = (img == (200, 30, 30)).all(-1).sum()
    grey = (img == (160, 160, 160)).all(-1).sum()
    assert 0 < red <= 300 and 0 < grey <= 8  # the samples, over ring8's 8 mode centres


def test_interpolate_refuses_a_point_checkpoint(point_checkpoint, tmp_path, capsys):
    assert main(["interpolate", point_checkpoint, "--out", str(tmp_path / "w.png")]) == 2
    assert "makes 2-D points, not images" in capsys.readouterr().err
    assert not (tmp_path / "w.png").exists()


def test_save_scatter_places_points_with_y_up_and_drops_the_rest(tmp_path):
    from minigan.gan.images import save_scatter

    path = save_scatter([(np.array([[0.0, 0.0], [-0.99, 0.99], [5.0, 0.0], [np.nan, 0.0]]),
                          (1, 2, 3))], tmp_path / "s.png", lim=1.0, size=10)
    img = np.asarray(Image.open(path).convert("RGB"))
    hits = np.argwhere((img == (1, 2, 3)).all(-1))
    assert sorted(map(tuple, hits)) == [(0, 0), (4, 5)]  # (row, col): top left, centre
    with pytest.raises(ValueError, match="lim must be positive"):
        save_scatter([], tmp_path / "t.png", lim=0.0)
    assert not (tmp_path / "t.png").exists()


def test_slerp_stays_on_the_sphere_and_falls_back_to_a_line_for_parallel_anchors():
    from minigan.cli import _slerp
    rng = np.random.default_rng(0)
    z0, z1 = rng.standard_normal(8), rng.standard_normal(8)
    z1 *= np.linalg.norm(z0) / np.linalg.norm(z1)  # equal norms: the path keeps that norm
    np.testing.assert_allclose(_slerp(z0, z1, 0.0), z0, atol=1e-12)
    np.testing.assert_allclose(_slerp(z0, z1, 1.0), z1, atol=1e-12)
    for t in (0.25, 0.5, 0.8):
        assert np.isclose(np.linalg.norm(_slerp(z0, z1, t)), np.linalg.norm(z0))
    for other in (2 * z0, -z0):  # parallel and antiparallel: no great circle, no 0/0
        mid = _slerp(z0, other, 0.3)
        assert np.all(np.isfinite(mid))
        np.testing.assert_allclose(mid, 0.7 * z0 + 0.3 * other, atol=1e-12)


def test_a_run_folder_stands_for_its_newest_checkpoint_that_loads(checkpoints, tmp_path,
                                                                   capsys):
    """sample, interpolate, info and eval take a run folder: its newest checkpoint that loads
    (a corrupt newer one is skipped with a warning; the folder is only read: a half-written
    temporary file of a running save stays). A folder without one is named."""
    import shutil
    from pathlib import Path

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    good = run / "checkpoints" / "ckpt_00000002.npz"
    shutil.copy(checkpoints["gan"], good)
    (run / "checkpoints" / "ckpt_00000009.npz").write_bytes(b"PK\x03\x04 cut short")
    temp = run / "checkpoints" / ".ckpt_00000010.npz.1a2b.tmp"
    temp.write_bytes(b"being written")
    capsys.readouterr()
    with pytest.warns(RuntimeWarning, match="skipping unreadable checkpoint.*ckpt_00000009"):
        assert main(["info", str(run)]) == 0
    out, err = capsys.readouterr()
    assert f"checkpoint: {good}" in out and f"minigan info: using {good}" in err
    assert temp.exists()
    # the run's checkpoint gives the same samples as the file named outright
    with pytest.warns(RuntimeWarning):
        assert main(["sample", str(run), "--n", "5", "--out", str(tmp_path / "a.png"),
                     "--npy", str(tmp_path / "a.npy")]) == 0
    assert main(["sample", str(good), "--n", "5", "--out", str(tmp_path / "b.png"),
                 "--npy", str(tmp_path / "b.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    # checkpoints straight in the folder count too
    flat = tmp_path / "flat"
    flat.mkdir()
    shutil.copy(good, flat / "ckpt_00000004.npz")
    capsys.readouterr()
    assert main(["info", str(flat)]) == 0
    assert f"using {flat / 'ckpt_00000004.npz'}" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    for cmd in ("sample", "interpolate", "info", "eval"):
        assert main([cmd, str(empty)]) == 2
        err = capsys.readouterr().err
        assert (f"minigan {cmd}: {empty} is a folder without a checkpoint that loads (looked "
                f"for ckpt_*.npz in {Path(empty) / 'checkpoints'} and in {empty})") in err


def test_quiet_silences_the_data_layers_progress_and_the_resume_line(tmp_path, monkeypatch,
                                                                     capsys):
    """--quiet means no progress output: the image folder's 'decoding' line and the resume's
    'resumed ... at step' go too (warnings would still print), and the setting is undone after
    the command."""
    import os

    from minigan.data.cache import ENV_QUIET

    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv(ENV_QUIET, raising=False)
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / f"{i}.png")
    argv = ["train", "gan", "--dataset", str(folder), "--image-size", "8", "--batch-size", "2",
            "--steps", "2"]
    assert main(argv + ["--out", str(tmp_path / "loud")]) == 0  # not quiet: the folder decodes
    assert "minigan.data: decoding" in capsys.readouterr().err
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "cache2"))  # so that it decodes again
    out = str(tmp_path / "run")
    assert main(argv + ["--out", out, "--quiet"]) == 0
    assert "minigan.data" not in capsys.readouterr().err
    assert ENV_QUIET not in os.environ
    assert main(["train", "--resume", out, "--steps", "3", "--quiet"]) == 0
    assert "resumed" not in capsys.readouterr().err
    assert main(["train", "--resume", out, "--steps", "4"]) == 0
    assert "resumed" in capsys.readouterr().err
