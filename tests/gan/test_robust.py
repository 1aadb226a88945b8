"""Bad input to a run and to the command line: torn logs, reused folders, resume flags, states
that do not fit, malformed configs and checkpoints, and settings a preset would ignore. Every
case ends in a clear error that names what was wrong, with nothing lost."""
import errno
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minigan import backend
from minigan.checkpoint import CheckpointError, CheckpointWarning, load_checkpoint, save_checkpoint
from minigan.cli import _given_train_flags, main
from minigan.gan import run as run_mod
from minigan.gan.images import read_metrics
from minigan.gan.run import Run, RunFolderError
from minigan.gan.trainer import TrainConfig, check_preset_settings

from .conftest import _cfg


def _ring(tmp_path, name="run", **kw):
    """A gan run on ring8 (512 points with tiny_data: 32 steps an epoch at batch 16)."""
    return _cfg(tmp_path, "gan", dataset="ring8", **{"out": str(tmp_path / name), **kw})


def _files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _steps(out: Path) -> list:
    return [r["step"] for r in read_metrics(Path(out) / "metrics.jsonl")]


# F1: metrics.jsonl

def test_read_metrics_drops_only_a_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "d_lo')
    with pytest.warns(RuntimeWarning, match=rf"{re.escape(str(path))}, line 3: dropped a torn "
                                            "last line"):
        assert read_metrics(path) == [{"step": 1}, {"step": 2}]
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}, line 3"):
        read_metrics(path, torn_last="error")
    # a complete last line that only lacks its newline is kept
    path.write_text('{"step": 1}\n{"step": 2}')
    assert read_metrics(path) == [{"step": 1}, {"step": 2}]


@pytest.mark.parametrize("bad", ['{"step": 2, "d_lo', "[1, 2]", "\xff\xfe"])
def test_read_metrics_names_the_file_and_line_of_a_bad_line_inside_the_log(tmp_path, bad):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1}\n' + bad.encode("latin-1") + b'\n{"step": 3}\n')
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}, line 2: not a valid "
                                         "metrics row"):
        read_metrics(path)


def test_resume_drops_a_torn_last_metrics_line(tmp_path, tiny_data, capsys):
    out = Run(_ring(tmp_path, steps=4, checkpoint_every=4), quiet=True).train()
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "d_lo')  # what a kill or a full disk mid-append leaves
    Run.resume(out, quiet=True, steps=6).train()
    assert _steps(out) == [1, 2, 3, 4, 5, 6]
    assert (out / "metrics.jsonl").read_text().endswith("}\n")
    err = capsys.readouterr().err
    assert f"warning: {out / 'metrics.jsonl'}, line 5: dropped a torn last line" in err


def test_resume_sets_aside_what_the_stopped_run_wrote_after_its_checkpoint(tmp_path, tiny_data,
                                                                           capsys):
    """A run killed after its step-6 checkpoint tore (a truncated file) and after its step-8
    grid: the resume from step 4 to a lower total of 5 drops the later grids (so
    progress.gif has only this trajectory's frames) and renames the checkpoint that did not
    load, which is then neither pruned as a kept one nor skipped by every later call."""
    out = Run(_ring(tmp_path, steps=8, checkpoint_every=2, sample_every=2),
              quiet=True).train()
    ck = out / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == [f"ckpt_0000000{i}.npz" for i in (4, 6, 8)]
    (ck / "ckpt_00000008.npz").unlink()
    torn = (ck / "ckpt_00000006.npz").read_bytes()
    (ck / "ckpt_00000006.npz").write_bytes(torn[:len(torn) // 2])
    with pytest.warns(CheckpointWarning, match="skipping unreadable checkpoint"):
        run = Run.resume(out, quiet=True, steps=5)
    assert run.step == 4
    assert sorted(p.name for p in ck.iterdir()) == ["ckpt_00000004.npz",
                                                    "ckpt_00000006.npz.unreadable"]
    assert (ck / "ckpt_00000006.npz.unreadable").read_bytes() == torn[:len(torn) // 2]
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == [
        f"step_0000000{i}.png" for i in (0, 2, 4)]
    err = capsys.readouterr().err
    assert "ckpt_00000006.npz did not load; renamed to ckpt_00000006.npz.unreadable" in err
    assert "removed 2 sample grid(s) of steps after 4" in err
    run.train()
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == [
        f"step_0000000{i}.png" for i in (0, 2, 4, 5)]
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 4
    assert sorted(p.name for p in ck.glob("*.npz")) == ["ckpt_00000004.npz", "ckpt_00000005.npz"]


def test_resume_refuses_a_bad_line_inside_the_log_and_changes_nothing(tmp_path, tiny_data):
    out = Run(_ring(tmp_path, steps=4, checkpoint_every=4), quiet=True).train()
    path = out / "metrics.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = '{"step": 2, "d_lo\n'
    path.write_text("".join(lines))
    before = _files(out)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}, line 2"):
        Run.resume(out, quiet=True, steps=6)
    assert _files(out) == before


class _SpyFile:
    """Records every write call to a real file; ``short`` makes the first write partial, and
    ``fail`` makes writes fail as on a full disk."""

    def __init__(self, f, writes, short=False, fail=False):
        self.f, self.writes, self.short, self.fail = f, writes, short, fail

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        data = bytes(data)
        self.writes.append(data)
        if self.fail:
            raise OSError(errno.ENOSPC, "No space left on device")
        if self.short and len(self.writes) == 1:
            data = data[:5]
        return self.f.write(data)


@pytest.mark.parametrize("short", [False, True])
def test_metrics_lines_are_appended_one_write_call_each(tmp_path, monkeypatch, short):
    writes = []
    monkeypatch.setattr(run_mod, "open", lambda *a, **k: _SpyFile(open(*a, **k), writes, short),
                        raising=False)
    path = tmp_path / "metrics.jsonl"
    run_mod._append_jsonl(path, {"step": 1, "d_loss": 0.5})
    run_mod._append_jsonl(path, {"step": 2, "d_loss": 0.25})
    monkeypatch.undo()
    line1, line2 = b'{"step": 1, "d_loss": 0.5}\n', b'{"step": 2, "d_loss": 0.25}\n'
    # each complete line, newline included, in one call (a short write goes on with the rest)
    assert writes == ([line1, line1[5:], line2] if short else [line1, line2])
    assert path.read_bytes() == line1 + line2


def test_a_full_disk_while_logging_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(run_mod, "open", lambda *a, **k: _SpyFile(open(*a, **k), [], fail=True),
                        raising=False)
    path = tmp_path / "metrics.jsonl"
    with pytest.raises(OSError, match=f"cannot write {re.escape(str(path))}: No space left"):
        run_mod._append_jsonl(path, {"step": 1})


# F2: a fresh run in a folder that holds a run

def test_a_fresh_run_refuses_a_folder_that_holds_a_run(tmp_path, tiny_data):
    out = Run(_ring(tmp_path, steps=4, checkpoint_every=2), quiet=True).train()
    before = _files(out)
    with pytest.raises(RunFolderError, match=rf"--out {re.escape(str(out))} already holds a run "
                                             r"\(config.json, .*2 checkpoint\(s\), the newest "
                                             r"ckpt_00000004.npz.*--resume .*--overwrite"):
        Run(_ring(tmp_path, steps=2, seed=7), quiet=True)
    assert _files(out) == before


@pytest.mark.parametrize("name", ["config.json", "metrics.jsonl", "losses.png", "progress.gif",
                                  "checkpoints/ckpt_00000001.npz", "samples/step_00000000.png"])
def test_any_output_of_a_run_marks_its_folder(tmp_path, tiny_data, name):
    path = tmp_path / "run" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(b"old")
    with pytest.raises(RunFolderError, match="already holds a run"):
        Run(_ring(tmp_path, steps=1), quiet=True)
    assert path.read_bytes() == b"old"


def test_an_empty_or_unrelated_folder_is_fine(tmp_path, tiny_data):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "notes.txt").write_text("mine")
    out = Run(_ring(tmp_path, steps=1), quiet=True).train()
    assert (out / "notes.txt").read_text() == "mine" and _steps(out) == [1]


def test_overwrite_deletes_the_old_runs_outputs_and_nothing_else(tmp_path, tiny_data, capsys):
    out = Run(_ring(tmp_path, steps=4, checkpoint_every=2), quiet=True).train()
    mine = [out / "notes.txt", out / "samples" / "mine" / "x.png", out / "checkpoints" / "a.npz"]
    for p in mine:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"mine")
    Run(_ring(tmp_path, steps=1, seed=7), quiet=True, overwrite=True).train()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["a.npz",
                                                                      "ckpt_00000001.npz"]
    assert sorted(p.name for p in (out / "samples").glob("step_*")) == ["step_00000000.png",
                                                                        "step_00000001.png"]
    assert _steps(out) == [1]
    assert json.loads((out / "config.json").read_text())["seed"] == 7
    assert all(p.read_bytes() == b"mine" for p in mine)
    assert "--overwrite: deleted config.json" in capsys.readouterr().err


def test_overwrite_deletes_nothing_when_the_new_run_cannot_start(tmp_path, tiny_data):
    out = Run(_ring(tmp_path, steps=2), quiet=True).train()
    before = _files(out)
    with pytest.raises(ValueError, match="dcgan64"):  # no networks for 20x20 images
        Run(_cfg(tmp_path, "dcgan64", image_size=20, out=str(out)), quiet=True, overwrite=True)
    assert _files(out) == before


def test_cli_train_into_a_run_is_refused_until_overwrite(tmp_path, tiny_data, capsys):
    out = tmp_path / "run"
    args = ["train", "gan", "--dataset", "ring8", "--steps", "2", "--batch-size", "16",
            "--device", "cpu", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert main(args + ["--seed", "7"]) == 2
    err = capsys.readouterr().err
    assert f"minigan train: --out {out} already holds a run" in err
    assert f"--resume {out}" in err and "--overwrite" in err
    assert json.loads((out / "config.json").read_text())["seed"] == 0
    assert main(args + ["--seed", "7", "--overwrite"]) == 0
    assert json.loads((out / "config.json").read_text())["seed"] == 7
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert main(args[:-3] + ["--out", str(blocker / "run")]) == 2
    assert f"--out {blocker / 'run'}: {blocker} is a file, not a folder" in capsys.readouterr().err


# F3: the run's length on resume, and flags that cannot go with --resume

def test_resume_epochs_replaces_a_steps_total_and_steps_an_epochs_total(tmp_path, tiny_data):
    out = Run(_ring(tmp_path, steps=4, checkpoint_every=4), quiet=True).train()
    run = Run.resume(out, quiet=True, epochs=0.25)  # 32 steps an epoch: 8 steps in all
    assert run.total_steps == 8
    run.train()
    stored = json.loads((out / "config.json").read_text())
    assert (stored["steps"], stored["epochs"]) == (None, 0.25)
    run = Run.resume(out, quiet=True, steps=10)
    assert run.total_steps == 10
    run.train()
    stored = json.loads((out / "config.json").read_text())
    assert (stored["steps"], stored["epochs"]) == (10, None)
    assert _steps(out) == list(range(1, 11))


def test_resume_refuses_a_total_below_the_step_reached(tmp_path, tiny_data):
    out = Run(_ring(tmp_path, steps=8, checkpoint_every=8), quiet=True).train()
    before = _files(out)
    with pytest.raises(ValueError, match=r"--steps 3 is below step 8, which the run has already "
                                         r"reached \(ckpt_00000008.npz\)"):
        Run.resume(out, quiet=True, steps=3)
    with pytest.raises(ValueError, match=r"--epochs 0.1 \(4 steps\) is below step 8"):
        Run.resume(out, quiet=True, epochs=0.1)
    assert _files(out) == before


def test_given_train_flags_are_told_from_defaults():
    assert _given_train_flags(["train", "--resume", "d", "--steps", "3", "--z-dim", "100",
                               "--joint-d-batch"]) == ["--steps", "--z-dim", "--joint-d-batch",
                                                       "--resume"]
    assert _given_train_flags(["train", "gan", "--resume=d"]) == ["--resume"]


def test_cli_resume_refuses_training_flags_and_another_preset(tmp_path, tiny_data, capsys):
    out = tmp_path / "run"
    assert main(["train", "gan", "--dataset", "ring8", "--steps", "2", "--batch-size", "16",
                 "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    before = _files(out)
    assert main(["train", "--resume", str(out), "--lr-g", "1e-3", "--batch-size", "32",
                 "--steps", "4"]) == 2
    err = capsys.readouterr().err
    assert "--batch-size, --lr-g cannot go with it" in err
    assert "only --steps, --epochs, --device, --quiet can" in err
    assert main(["train", "dcgan", "--resume", str(out), "--steps", "4"]) == 2
    assert f"--resume {out} is a gan run, not dcgan" in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--epochs", "nan"]) == 2
    assert "epochs (--epochs) must be a finite number > 0, got nan" in capsys.readouterr().err
    assert main(["train", "--resume", ""]) == 2
    assert "--resume must not be empty" in capsys.readouterr().err
    assert _files(out) == before
    assert main(["train", "gan", "--resume", str(out), "--steps", "3", "--device", "cpu",
                 "--quiet"]) == 0
    assert _steps(out) == [2, 3]  # a row every 50 steps, and at the end of each session


# F4: a state that does not fit, and config.json against the checkpoint's own config

def test_resume_names_a_checkpoint_that_does_not_fit_the_model(tmp_path, tiny_data, capsys):
    out = Run(_ring(tmp_path, steps=2), quiet=True).train()
    ckpt = out / "checkpoints" / "ckpt_00000002.npz"
    arrays, meta = load_checkpoint(ckpt)
    del arrays["G"]["net.0.weight"]
    save_checkpoint(ckpt, arrays, meta)
    with pytest.raises(CheckpointError, match=rf"checkpoint {re.escape(str(ckpt))} does not fit "
                                              r"the gan run .*\(G: .*net\.0\.weight"):
        Run.resume(out, quiet=True, steps=3)
    assert main(["train", "--resume", str(out), "--steps", "3"]) == 2  # no traceback
    assert f"minigan train: checkpoint {ckpt} does not fit" in capsys.readouterr().err


@pytest.mark.parametrize("key, value", [("preset", "dragan"), ("z_dim", 50),
                                        ("dataset", "grid25"), ("seed", 3), ("lr_d", 0.5)])
def test_resume_refuses_a_config_json_that_disagrees_with_the_checkpoint(tmp_path, tiny_data,
                                                                        key, value):
    out = Run(_ring(tmp_path, steps=2), quiet=True).train()
    path = out / "config.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps(dict(stored, **{key: value})))
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))} does not describe the "
                                              r"run that wrote .*ckpt_00000002.npz: "
                                              rf"{key} {value!r} there"):
        Run.resume(out, quiet=True, steps=3)


def test_resume_accepts_edits_that_do_not_change_the_run(tmp_path, tiny_data):
    out = Run(_ring(tmp_path, steps=2), quiet=True).train()
    path = out / "config.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps(dict(stored, log_every=2, checkpoint_every=3, data_dir="x")))
    Run.resume(out, quiet=True, steps=4).train()
    assert _steps(out) == [1, 2, 4]


def _grey_folder(root: Path, n=16):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def test_a_folder_run_keeps_its_channels_when_a_colour_image_appears(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("MINIGAN_QUIET", "1")
    folder = _grey_folder(tmp_path / "faces")
    out = Run(_cfg(tmp_path, "gan", dataset=str(folder), image_size=8, batch_size=8, steps=2,
                   out=str(tmp_path / "run")), quiet=True).train()
    stored = json.loads((out / "config.json").read_text())
    assert (stored["channels"], stored["image_size"]) == (1, 8)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "0.png")  # now in colour
    run = Run.resume(out, quiet=True, steps=3)
    assert run.dataset.sample_shape == (1, 8, 8)
    run.train()
    # a config.json from before channels were stored: the change is named, not a KeyError
    path = out / "config.json"
    stored = json.loads(path.read_text())
    del stored["channels"]
    path.write_text(json.dumps(stored))
    with pytest.raises(CheckpointError, match=r"trained on samples of shape \(1, 8, 8\), but "
                                              r".*faces now gives \(3, 8, 8\): has the data "
                                              "changed"):
        Run.resume(out, quiet=True, steps=4)


@pytest.mark.skipif(backend.cuda_available(), reason="needs a machine without a GPU")
def test_a_gpu_run_resumed_without_a_gpu_suggests_the_cpu(tmp_path, tiny_data):
    out = Run(_ring(tmp_path, steps=2), quiet=True).train()
    path = out / "config.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), device="cuda")))
    ckpt = out / "checkpoints" / "ckpt_00000002.npz"
    arrays, meta = load_checkpoint(ckpt)
    meta["config"]["device"] = "cuda"
    meta["global_rng"]["cuda"] = {"seed": 5, "offset": 7}  # the GPU's stream, unused here
    save_checkpoint(ckpt, arrays, meta)
    with pytest.raises(backend.DeviceError, match="trained with --device cuda; to continue it "
                                                  "on this machine's CPU, add --device cpu"):
        Run.resume(out, quiet=True, steps=3)
    Run.resume(out, quiet=True, steps=3, device="cpu").train()
    assert _steps(out) == [1, 2, 3]


@pytest.fixture(scope="module")
def point_ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust")
    out = Run(_ring(root, steps=2), quiet=True).train()
    return out / "checkpoints" / "ckpt_00000002.npz"


@pytest.mark.parametrize("edit, message", [
    (lambda a, m: a["G"].pop("net.0.weight"), "its G does not fit the gan generator"),
    (lambda a, m: m.pop("sample_shape"), "its sample_shape None is not a list"),
    (lambda a, m: m.update(sample_shape=[0, 2]), "its sample_shape \\[0, 2\\] is not a list"),
    (lambda a, m: m["config"].update(z_dim="abc"), "its config is malformed: z_dim"),
    (lambda a, m: m["config"].update(preset="foo"), "its config is malformed: unknown preset"),
    (lambda a, m: m.update(config=[1]), "not a minigan training checkpoint"),
    (lambda a, m: m.update(num_classes="x"), "its num_classes 'x' is not an integer"),
])
@pytest.mark.parametrize("command", ["sample", "interpolate", "eval"])
def test_sampling_commands_name_a_checkpoint_that_describes_no_generator(
        point_ckpt, tmp_path, capsys, command, edit, message):
    arrays, meta = load_checkpoint(point_ckpt)
    edit(arrays, meta)
    bad = save_checkpoint(tmp_path / "bad.npz", arrays, meta)
    argv = [command, str(bad)] + (["--out", str(tmp_path / "x.png")] if command != "eval"
                                  else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"minigan {command}: ") and str(bad) in err
    assert re.search(message, err), err
    assert main(["info", str(bad)]) == 0  # info shows what is there


# F5: malformed config.json, impossible sizes

@pytest.mark.parametrize("edit, message", [
    (lambda text: '{"preset": ', "is not valid JSON"),
    (lambda text: "[1, 2]", "must hold a JSON object of settings, not a list"),
    (lambda text: text.replace('"preset": "gan"', '"preset": "foo"'), "unknown preset 'foo'"),
    (lambda text: text.replace('"z_dim": 100', '"z_dim": "abc"'), "z_dim .* got 'abc'"),
    (lambda text: text.replace('"z_dim": 100', '"zz": 1'), "unknown config keys: zz"),
])
def test_a_malformed_config_json_is_named(tmp_path, tiny_data, edit, message):
    out = Run(_ring(tmp_path, steps=2), quiet=True).train()
    path = out / "config.json"
    path.write_text(edit(path.read_text()))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + message):
        Run.resume(out, quiet=True, steps=3)


def test_an_impossible_allocation_is_a_clear_error(point_ckpt, tmp_path, capsys):
    # 10^12 samples: numpy refuses the allocation at once, nothing is touched
    assert main(["sample", str(point_ckpt), "--n", str(10 ** 12), "--out",
                 str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minigan sample: out of memory: Unable to allocate")
    assert "ask for fewer samples than --n 1000000000000" in err
    assert not (tmp_path / "x.png").exists()


# F9: empty strings, and settings a preset would ignore

@pytest.mark.parametrize("argv, message", [
    (["train", "gan", "--out", ""], "--out must not be empty"),
    (["train", "gan", "--dataset", ""], "--dataset must not be empty"),
    (["train", "gan", "--data-dir", " "], "--data-dir must not be empty"),
    (["sample", "c.npz", "--npy", ""], "--npy must not be empty"),
    (["info", ""], "checkpoint must not be empty"),
    (["train", "dcgan", "--arch", "mlp"], "--arch mlp: the dcgan preset has conv networks only"),
    (["train", "cgan", "--g-upsample"],
     "--g-upsample is ignored by the cgan preset: its G is an MLP here"),
    (["train", "dcgan64", "--g-upsample"], "--g-upsample is ignored by the dcgan64 preset"),
    (["train", "gan", "--dataset", "ring8", "--arch", "conv"],
     "--arch conv: the gan preset uses MLPs on the 2-D points of ring8"),
    (["train", "dragan", "--dataset", "grid25", "--g-upsample"],
     "--g-upsample is ignored by the dragan preset: its G is an MLP on the 2-D points"),
    (["train", "gan", "--gp-lambda", "500", "--dragan-perturb", "gaussian"],
     ("--gp-lambda 500.0, --dragan-perturb gaussian: ignored by the gan preset, which has no "
      "gradient penalty (only dragan has one); drop them")),
    (["train", "dcgan", "--dragan-c", "0.1"],
     "--dragan-c 0.1: ignored by the dcgan preset, which has no gradient penalty"),
    (["train", "gan", "--dataset", "ring8", "--image-size", "64"],
     ("--image-size 64: ignored on the 2-D points of ring8, which are not images; drop "
      "--image-size")),
    (["train", "dragan", "--dataset", "ring8", "--data-dir", "d"],
     ("--data-dir d: ignored, since it says where mnist and fashion-mnist are read from, and "
      "the 2-D points of ring8 are drawn, not read from files; drop --data-dir")),
    (["train", "dcgan64", "--dataset", "faces", "--data-dir", "d"],
     ("--data-dir d: ignored, since it says where mnist and fashion-mnist are read from, and "
      "--dataset faces is a folder of images, read from that folder itself; drop --data-dir")),
])
def test_empty_and_ignored_settings_are_refused_before_starting(tmp_path, monkeypatch, capsys,
                                                                argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv + (["--steps", "1"] if argv[0] == "train" else [])) == 2
    assert f"minigan {argv[0]}: {message}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_preset_settings_that_build_networks_are_accepted():
    check_preset_settings(TrainConfig(preset="gan", arch="conv"))  # gan's conv networks
    check_preset_settings(TrainConfig(preset="dragan", gp_lambda=500.0, dragan_c=0.1,
                                      dragan_perturb="gaussian", dataset="ring8"))
    check_preset_settings(TrainConfig(preset="gan", data_dir="d", image_size=32))  # mnist
    check_preset_settings(TrainConfig(preset="gan", dataset="Fashion_MNIST", data_dir="d"))
    check_preset_settings(TrainConfig(preset="dcgan", arch="conv", g_upsample=True), (1, 28, 28))
    check_preset_settings(TrainConfig(preset="cgan", arch="conv", g_upsample=True), (1, 28, 28))
    with pytest.raises(ValueError, match="only the 28x28 conv G can upsample, and these images "
                                         "are 32x32"):
        check_preset_settings(TrainConfig(preset="dcgan", g_upsample=True), (1, 32, 32))


def test_config_refuses_empty_names_and_reads_an_old_empty_out():
    with pytest.raises(ValueError, match=r"dataset \(--dataset\) must be a non-empty name"):
        TrainConfig(preset="gan", dataset="").resolved()
    with pytest.raises(ValueError, match=r"out \(--out\) must be a non-empty path"):
        TrainConfig(preset="gan", out="").resolved()
    assert TrainConfig.from_dict({"preset": "gan", "out": ""}).out is None  # older config.json


def test_a_run_folder_that_lost_its_config_json_says_how_to_restore_it(tmp_path, tiny_data,
                                                                       capsys):
    """Checkpoints but no config.json: both the fresh run and --resume point to the restore
    (`minigan info --config CKPT > DIR/config.json`), and that restore makes --resume work."""
    from minigan.cli import main

    out = Run(_ring(tmp_path, steps=4, checkpoint_every=2), quiet=True).train()
    (out / "config.json").unlink()
    newest = out / "checkpoints" / "ckpt_00000004.npz"
    restore = rf"minigan info --config {re.escape(str(newest))} > " + re.escape(
        str(out / "config.json"))
    with pytest.raises(RunFolderError, match=r"but no config.json; to continue it, restore "
                                             r"that with " + restore):
        Run(_ring(tmp_path, steps=2, seed=7), quiet=True)
    with pytest.raises(FileNotFoundError, match=r"no config.json there, though it holds "
                                                r"checkpoints; restore it with " + restore):
        Run.resume(out)
    assert main(["info", str(newest), "--config"]) == 0
    (out / "config.json").write_text(capsys.readouterr().out)
    assert Run.resume(out, quiet=True, steps=6).train() == out
    assert _steps(out)[-1] == 6
