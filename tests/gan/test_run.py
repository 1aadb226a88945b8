"""Training runs end to end on tiny data: every preset, outputs, exact resume, NaN stop, Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minigan.checkpoint import load_checkpoint
from minigan.gan.run import Run, TrainingDiverged
from minigan.gan.trainer import TrainConfig

from .conftest import _cfg


@pytest.mark.parametrize("preset,kw", [
    ("gan", {}), ("dcgan", {}), ("dcgan64", {"image_size": 32, "ngf": 8, "ndf": 8}),
    ("cgan", {}), ("cgan", {"arch": "conv"}), ("dragan", {}), ("dragan", {"arch": "conv"}),
    ("gan", {"dataset": "ring8"}), ("dragan", {"dataset": "grid25"}),
    ("cgan", {"dataset": "ring8"}),  # conditional on the mode: the scatter passes labels
    ("dcgan", {"n_critic": 2, "g_loss": "minimax", "label_smoothing": 0.1,
               "joint_d_batch": True, "g_upsample": True}),
])
def test_two_step_smoke_per_preset(tmp_path, tiny_data, preset, kw):
    out = Run(_cfg(tmp_path, preset, **kw), quiet=True).train()
    assert json.loads((out / "config.json").read_text())["preset"] == preset
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"])
        assert 0 < r["d_real"] < 1 and 0 < r["d_fake"] < 1
        assert (r["penalty"] is not None) == (preset == "dragan")
    assert len(list((out / "samples").glob("step_*.png"))) == 3  # step 0, 1, 2
    assert (out / "progress.gif").stat().st_size > 0
    with Image.open(out / "losses.png") as im:
        assert im.size == (1120, 400)
    ckpts = list((out / "checkpoints").glob("ckpt_*.npz"))
    assert [c.name for c in ckpts] == ["ckpt_00000002.npz"]
    arrays, meta = load_checkpoint(ckpts[0])
    assert meta["step"] == 2 and "G" in arrays and "opt_D" in arrays


@pytest.mark.parametrize("preset,cells", [("dcgan", (3, 3)), ("cgan", (10, 10))])
def test_grid_size_follows_the_config_unless_conditional(tmp_path, tiny_data, preset, cells):
    """An unconditional G on a labelled data set draws n_samples_grid samples (the labels
    mean nothing to it); a conditional one draws one row of 10 per label."""
    out = Run(_cfg(tmp_path, preset, steps=1, n_samples_grid=7), quiet=True).train()
    img = Image.open(out / "samples" / "step_00000001.png")
    cell = (28 + 2) * 2  # 28x28 tiles, 2 px padding, drawn at twice the size
    assert img.size == (cells[1] * cell + 4, cells[0] * cell + 4)


def _rows(out):
    rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("img_per_s")
    return rows


@pytest.mark.parametrize("preset", ["dcgan", "dragan", "cgan"])
def test_resume_matches_uninterrupted_run_exactly(tmp_path, tiny_data, preset):
    straight = Run(_cfg(tmp_path / "a", preset, steps=8, checkpoint_every=4), quiet=True).train()
    Run(_cfg(tmp_path / "b", preset, steps=4, checkpoint_every=4), quiet=True).train()
    resumed = Run.resume(tmp_path / "b" / preset, quiet=True, steps=8).train()
    a, b = _rows(straight), _rows(resumed)
    assert [r["step"] for r in b] == list(range(1, 9))
    assert a == b  # bit-identical losses and D outputs at every step
    wa, _ = load_checkpoint(straight / "checkpoints" / "ckpt_00000008.npz")
    wb, _ = load_checkpoint(resumed / "checkpoints" / "ckpt_00000008.npz")
    for group in ("G", "D", "opt_G", "opt_D"):
        for k in wa[group]:
            np.testing.assert_array_equal(wa[group][k], wb[group][k], err_msg=f"{group}/{k}")


@pytest.mark.filterwarnings("error::RuntimeWarning")  # NumPy's overflow warnings stay quiet
def test_nonfinite_loss_stops_with_the_step_and_keeps_last_checkpoint(tmp_path, tiny_data):
    cfg = _cfg(tmp_path, "gan", steps=40, checkpoint_every=2, log_every=4, lr_d=1e35,
               lr_g=1e35)
    with pytest.raises(TrainingDiverged, match=r"non-finite loss at step \d+") as info:
        Run(cfg, quiet=True).train()
    bad_step = int(str(info.value).split("at step ")[1].split()[0])
    ckpts = sorted((tmp_path / "gan" / "checkpoints").glob("ckpt_*.npz"))
    for c in ckpts:  # whatever was kept is loadable and finite
        arrays, meta = load_checkpoint(c)
        assert meta["step"] < bad_step
        assert all(np.isfinite(v).all() for v in arrays["G"].values())
    # a grid every step, the loss read every 4: no grid is drawn by the diverged G
    grids = sorted((tmp_path / "gan" / "samples").glob("step_*.png"))
    assert grids and max(int(g.stem[5:]) for g in grids) < bad_step


def test_resume_of_a_folder_without_checkpoints_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        Run.resume(tmp_path)


def test_ctrl_c_saves_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "minigan", "train", "gan", "--dataset", "ring8", "--steps",
         "1000000", "--batch-size", "32", "--device", "cpu", "--out", str(out),
         "--log-every", "5", "--checkpoint-every", "1000000", "--sample-every", "1000000"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        metrics = out / "metrics.jsonl"
        while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size):
            time.sleep(0.2)
        assert metrics.exists(), proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"checkpoint saved" in err
    ckpts = list((out / "checkpoints").glob("ckpt_*.npz"))
    assert len(ckpts) == 1
    arrays, meta = load_checkpoint(ckpts[0])
    assert meta["step"] >= 5 and "G" in arrays


def test_eval_every_need_not_be_a_multiple_of_log_every(tmp_path, tiny_data):
    cfg = _cfg(tmp_path, "gan", dataset="ring8", steps=7, log_every=4, eval_every=3,
               eval_samples=64, sample_every=100, checkpoint_every=100)
    out = Run(cfg, quiet=True).train()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 4, 6, 7]  # evals at 3 and 6, logs at 4 and the end
    evaluated = [r["step"] for r in rows if "modes_covered" in r]
    assert evaluated == [3, 6]
    for r in rows:
        if "modes_covered" in r:
            assert 0 <= r["modes_covered"] <= 8 and 0.0 <= r["high_quality"] <= 1.0


def test_img_per_s_leaves_out_evaluations_grids_and_checkpoints(tmp_path, tiny_data,
                                                                monkeypatch):
    """On a clock where a training step takes 1 s and every evaluation, grid, GIF and
    checkpoint 1000 s, every row's rate is exactly batch_size images a second: the time
    spent beside the steps is not charged to the next row (it used to be)."""
    import minigan.gan.run as run_module
    clock = [0.0]
    monkeypatch.setattr(run_module.time, "perf_counter", lambda: clock[0])

    def slow(fn):
        def call(*a, **k):
            clock[0] += 1000.0
            return fn(*a, **k)
        return call

    cfg = _cfg(tmp_path, "gan", dataset="ring8", steps=7, log_every=2, eval_every=3,
               eval_samples=64, sample_every=2, checkpoint_every=3)
    run = Run(cfg, quiet=True)
    step = run.trainer.step

    def timed_step(*a, **k):
        clock[0] += 1.0
        return step(*a, **k)
    run.trainer.step = timed_step
    for name in ("evaluate", "write_points", "write_gif_and_plot", "save_checkpoint"):
        monkeypatch.setattr(run, name, slow(getattr(run, name)))
    out = run.train()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 3, 4, 6, 7]
    assert [r["img_per_s"] for r in rows] == [16.0] * 5


def test_evaluations_are_logged_in_one_line_each(tmp_path, tiny_data, capsys):
    cfg = _cfg(tmp_path, "gan", dataset="ring8", steps=4, log_every=4, eval_every=2,
               eval_samples=64, sample_every=100, checkpoint_every=100)
    out = Run(cfg).train()
    err = capsys.readouterr().err
    rows = {r["step"]: r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}
    for step in (2, 4):
        m = rows[step]
        line = (f"eval at step {step} (64 samples): modes {m['modes_covered']}/8  "
                f"high-quality {m['high_quality']:.3f}")
        assert line in err.splitlines()


def test_eval_summary_of_image_scores():
    from minigan.gan.run import _eval_summary
    m = {"n": 10000, "fid": 45.14, "is": 7.634, "modes_covered": 10, "num_classes": 10,
         "confident": 0.7251, "precision": 0.573, "recall": 0.8312, "class_kl": 0.013}
    assert _eval_summary(9, m) == ("eval at step 9 (10000 samples): FID 45.1  IS 7.63  "
                                   "classes 10/10  confident 0.725  precision 0.573  "
                                   "recall 0.831")
    assert _eval_summary(9, dict(m, label_accuracy=0.9861)).endswith("label acc. 0.986")
    assert _eval_summary(9, {}) is None  # a data set without metrics logs nothing


def test_lr_scale_schedules():
    from minigan.gan.trainer import lr_scale
    assert [lr_scale("none", s, 4) for s in range(4)] == [1.0] * 4
    assert [lr_scale("linear", s, 4) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]
    assert lr_scale("linear", 10, 4) == 0.0  # never negative past the end
    with pytest.raises(ValueError, match="lr_decay must be one of none, linear, got 'cosine'"):
        lr_scale("cosine", 0, 4)
    with pytest.raises(ValueError, match=r"lr_decay \(--lr-decay\) must be one of none, "
                                         r"linear, got 'cosine'"):
        TrainConfig(preset="gan", lr_decay="cosine").resolved()


def test_linear_lr_decay_runs_and_resumes_exactly(tmp_path, tiny_data):
    import shutil
    cfg = _cfg(tmp_path / "a", "gan", steps=8, checkpoint_every=4, lr_decay="linear",
               lr_g=1e-3, lr_d=5e-4)
    run = Run(cfg, quiet=True)
    straight = run.train()
    # the last update (the 8th) ran at 1/8 of the base rates
    assert run.trainer.opt_G.param_groups[0]["lr"] == pytest.approx(1e-3 / 8)
    assert run.trainer.opt_D.param_groups[0]["lr"] == pytest.approx(5e-4 / 8)
    # a copy of the run cut back to its step-4 checkpoint continues on the same schedule
    cut = tmp_path / "b"
    shutil.copytree(straight, cut)
    (cut / "checkpoints" / "ckpt_00000008.npz").unlink()
    resumed = Run.resume(cut, quiet=True).train()
    wa, _ = load_checkpoint(straight / "checkpoints" / "ckpt_00000008.npz")
    wb, _ = load_checkpoint(resumed / "checkpoints" / "ckpt_00000008.npz")
    for group in ("G", "D"):
        for k in wa[group]:
            np.testing.assert_array_equal(wa[group][k], wb[group][k], err_msg=f"{group}/{k}")
    # and the decay changed the outcome: without it the weights differ
    plain = Run(_cfg(tmp_path / "c", "gan", steps=8, checkpoint_every=4, lr_g=1e-3, lr_d=5e-4),
                quiet=True).train()
    wc, _ = load_checkpoint(plain / "checkpoints" / "ckpt_00000008.npz")
    assert any(not np.array_equal(wa["G"][k], wc["G"][k]) for k in wa["G"])
