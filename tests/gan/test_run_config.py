"""What a run records and checks about its own set-up: absolute data paths, the data a resume
continues on, batch size against batch norm before --overwrite deletes anything, folders whose
run wrote no checkpoint, the learning-rate schedule of a resume with a new total, and how
checkpoint warnings print."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minigan.checkpoint import CheckpointError, CheckpointWarning, load_checkpoint, save_checkpoint
from minigan.cli import main
from minigan.gan import run as run_mod
from minigan.gan.run import Run, RunFolderError, TrainingDiverged
from minigan.gan.trainer import GANTrainer

from .conftest import _cfg


def _files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _image_folder(root: Path, seed: int, n: int = 8) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(root / f"{i}.png")
    return root


@pytest.fixture
def two_experiments(tmp_path, monkeypatch):
    """expA/data and expB/data: two image folders of as many images, under the same name."""
    monkeypatch.setenv("MINIGAN_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("MINIGAN_QUIET", "1")
    return (_image_folder(tmp_path / "expA" / "data", seed=0),
            _image_folder(tmp_path / "expB" / "data", seed=1))


def _folder_run(out="run", **kw):
    return _cfg(Path("."), "gan", **{"dataset": "data", "image_size": 8, "batch_size": 2,
                                     "steps": 2, "out": out, **kw})


def _expected(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(folder / f"{i}.png")) for i in range(8)])


# 1: paths in config.json, and the data a resume continues on

def test_paths_are_stored_absolute_so_a_resume_elsewhere_reads_the_same_data(
        two_experiments, monkeypatch):
    a, b = two_experiments
    monkeypatch.chdir(a.parent)
    Run(_folder_run(), quiet=True).train()
    run_dir = a.parent / "run"
    assert json.loads((run_dir / "config.json").read_text())["dataset"] == str(a)
    monkeypatch.chdir(b.parent)  # another folder, with another data/ of its own
    run = Run.resume(Path("..") / "expA" / "run", quiet=True, steps=4)
    np.testing.assert_array_equal(run.dataset.data[:, 0], _expected(a))
    run.train()
    assert json.loads((run_dir / "config.json").read_text())["dataset"] == str(a)


def test_a_relative_data_dir_is_stored_absolute(tmp_path, tiny_data, monkeypatch):
    (tmp_path / "mnist_files").mkdir()
    monkeypatch.chdir(tmp_path)
    out = Run(_cfg(tmp_path, "gan", dataset="mnist", data_dir="mnist_files"), quiet=True).train()
    stored = json.loads((out / "config.json").read_text())
    assert stored["data_dir"] == str(tmp_path / "mnist_files")
    assert stored["dataset"] == "mnist"  # a data set's name stays a name


def _make_old(run_dir: Path, dataset: str, out: str) -> None:
    """Turn a run's config.json and checkpoints into what an older minigan wrote: the dataset
    as typed, relative, and no record of the data's pixels."""
    path = run_dir / "config.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), dataset=dataset, out=out)))
    for ckpt in (run_dir / "checkpoints").glob("ckpt_*.npz"):
        arrays, meta = load_checkpoint(ckpt)
        meta["config"].update(dataset=dataset, out=out)
        meta.pop("data_probe", None)
        save_checkpoint(ckpt, arrays, meta)


def test_an_older_relative_dataset_is_read_from_the_folder_the_run_started_in(
        two_experiments, monkeypatch, capsys):
    a, b = two_experiments
    monkeypatch.chdir(a.parent)
    Run(_folder_run(), quiet=True).train()
    _make_old(a.parent / "run", "data", "run")
    monkeypatch.chdir(b.parent)
    capsys.readouterr()
    run = Run.resume(Path("..") / "expA" / "run", quiet=True, steps=4)
    np.testing.assert_array_equal(run.dataset.data[:, 0], _expected(a))
    err = capsys.readouterr().err
    assert (f"gives dataset 'data' as a relative path (an older minigan wrote it so), and the "
            f"run was started in {a.parent}, not here: reading {a}, relative to the folder the "
            "run was started in") in err
    run.train()
    assert json.loads((a.parent / "run" / "config.json").read_text())["dataset"] == str(a)
    # resumed where it was started: read as before, without a warning
    _make_old(a.parent / "run", "data", "run")
    monkeypatch.chdir(a.parent)
    capsys.readouterr()
    Run.resume("run", quiet=True, steps=5).train()
    assert "relative path" not in capsys.readouterr().err
    assert json.loads((a.parent / "run" / "config.json").read_text())["dataset"] == str(a)


def test_a_resume_on_other_data_is_refused_and_a_changed_image_is_named(
        two_experiments, monkeypatch, capsys):
    a, b = two_experiments
    monkeypatch.chdir(a.parent)
    out = Run(_folder_run(), quiet=True).train()
    before = _files(out)
    originals = {p.name: p.read_bytes() for p in a.iterdir()}
    # every image replaced by another (the same count, size and names)
    for p in b.iterdir():
        (a / p.name).write_bytes(p.read_bytes())
    ckpt = out / "checkpoints" / "ckpt_00000002.npz"
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(a))} holds other data than "
                                              rf"checkpoint {re.escape(str(ckpt))} was trained "
                                              r"on: \d of the 8 samples whose pixels"):
        Run.resume(out, quiet=True, steps=4)
    assert _files(out) == before
    # one image more: the number of samples changed
    for name, data in originals.items():
        (a / name).write_bytes(data)
    (a / "8.png").write_bytes(originals["0.png"])
    with pytest.raises(CheckpointError, match=rf"checkpoint {re.escape(str(ckpt))} was trained "
                                              rf"on 8 samples, but {re.escape(str(a))} now "
                                              "holds 9: the data have changed"):
        Run.resume(out, quiet=True, steps=4)
    assert _files(out) == before
    assert main(["train", "--resume", str(out), "--steps", "4", "--quiet"]) == 2
    assert "now holds 9: the data have changed" in capsys.readouterr().err
    # one image edited: named in a warning, and the run goes on
    (a / "8.png").unlink()
    (a / "3.png").write_bytes((b / "3.png").read_bytes())
    capsys.readouterr()
    Run.resume(out, quiet=True, steps=4).train()
    assert (f"warning: {a} has changed since {ckpt} was written: 1 of the 8 samples whose "
            "pixels ckpt_00000002.npz recorded (number 3,") in capsys.readouterr().err


def test_the_probe_ignores_rounding_but_not_other_images():
    from minigan.data import Dataset
    rng = np.random.default_rng(0)
    images = rng.integers(1, 254, (40, 1, 28, 28)).astype(np.uint8)
    saved = run_mod._data_probe(Dataset(images, np.arange(40) % 10))
    assert len(saved["index"]) == 16 and saved["index"][0] == 0 and saved["index"][-1] == 39
    off_by_one = (images + rng.integers(-1, 2, images.shape)).astype(np.uint8)
    assert run_mod._probe_changed(saved, run_mod._data_probe(
        Dataset(off_by_one, np.arange(40) % 10))) == []
    other = images.copy()
    other[39] = rng.integers(1, 254, (1, 28, 28))  # the same mean, other pixels
    assert run_mod._probe_changed(saved, run_mod._data_probe(
        Dataset(other, np.arange(40) % 10))) == [39]
    relabelled = np.arange(40) % 10
    relabelled[0] = 5
    assert run_mod._probe_changed(saved, run_mod._data_probe(Dataset(images, relabelled))) == [0]
    assert run_mod._probe_changed(None, saved) is None  # an older checkpoint: nothing to compare


# 2: batch size against batch norm, before --overwrite deletes; folders without a checkpoint

@pytest.mark.parametrize("preset,kw,who", [
    ("gan", {}, "G"), ("cgan", {}, "G"), ("dragan", {}, "G"),
    ("gan", {"dataset": "ring8"}, "G"), ("dragan", {"dataset": "grid25"}, "G")])
def test_batch_size_one_with_batch_norm_is_refused_before_overwrite_deletes(
        tmp_path, tiny_data, capsys, preset, kw, who):
    old = Run(_cfg(tmp_path, "gan", dataset="ring8", out=str(tmp_path / "run")),
              quiet=True).train()
    before = _files(old)
    run = None
    with pytest.raises(ValueError, match=rf"--batch-size 1: too small for the {preset} preset "
                                         rf"here, whose {who} has batch norm \(.*BatchNorm1d\), "
                                         r"which needs at least 2 samples a batch to train; use "
                                         r"--batch-size 2 or more"):
        run = Run(_cfg(tmp_path, preset, batch_size=1, out=str(old), **kw), quiet=True,
                  overwrite=True)
        run.train()
    assert run is None  # refused while setting up, before train() could delete anything
    assert _files(old) == before


def test_batch_size_one_is_fine_without_batch_norm_layers_that_need_two(tmp_path, tiny_data):
    # dcgan's batch norm sees 7x7 and 14x14 maps: one image gives many values per channel
    out = Run(_cfg(tmp_path, "dcgan", batch_size=1, steps=1), quiet=True).train()
    assert (out / "checkpoints" / "ckpt_00000001.npz").exists()


def test_cli_batch_size_one_names_the_flag_and_keeps_the_old_run(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "gan", "--dataset", "ring8", "--steps", "2", "--batch-size", "16",
            "--device", "cpu", "--out", str(out), "--quiet"]
    assert main(args) == 0
    before = _files(out)
    assert main(args + ["--batch-size", "1", "--overwrite"]) == 2
    assert "minigan train: --batch-size 1: too small for the gan preset" in \
        capsys.readouterr().err
    assert _files(out) == before


def test_eval_every_without_a_readable_test_split_is_refused_before_overwrite_deletes(
        tmp_path, tiny_data, monkeypatch):
    import minigan.data
    from minigan.data import DatasetError

    from .conftest import _tiny_images
    old = Run(_cfg(tmp_path, "gan", dataset="ring8", out=str(tmp_path / "run")),
              quiet=True).train()
    before = _files(old)

    def no_test_split(name, split="train", image_size=None, root=None, **kw):
        if split == "test":
            raise DatasetError("MNIST test split not found. Tried: ...")
        data = _tiny_images((1, 28, 28))
        data.name = "mnist"
        return data
    monkeypatch.setattr(minigan.data, "load_dataset", no_test_split)
    with pytest.raises(DatasetError, match=r"--eval-every 2 scores the samples against the "
                                           r"mnist test split, which cannot be read, so the run "
                                           r"would stop at its first evaluation: MNIST test "
                                           "split not found"):
        Run(_cfg(tmp_path, "gan", dataset="mnist", eval_every=2, out=str(old)), quiet=True,
            overwrite=True)
    assert _files(old) == before


def test_a_folder_whose_run_wrote_no_checkpoint_is_not_sent_to_resume(tmp_path, tiny_data):
    cfg = _cfg(tmp_path, "gan", dataset="ring8", steps=3, log_every=1, checkpoint_every=100,
               lr_g=1e300, lr_d=1e300, out=str(tmp_path / "run"))
    with pytest.raises(TrainingDiverged, match=rf"No checkpoint was written yet, so "
                                               rf"{re.escape(str(tmp_path / 'run'))} holds no "
                                               "run to resume: start again there with "
                                               "--overwrite"):
        Run(cfg, quiet=True).train()
    out = tmp_path / "run"
    assert (out / "config.json").exists() and not list(out.glob("checkpoints/ckpt_*"))
    before = _files(out)
    with pytest.raises(RunFolderError, match=rf"--out {re.escape(str(out))} already holds a run "
                                             r"that wrote no checkpoint \(config.json, .*\), so "
                                             r"--resume has nothing to continue from; add "
                                             r"--overwrite") as info:
        Run(_cfg(tmp_path, "gan", dataset="ring8", out=str(out)), quiet=True)
    assert "--resume " + str(out) not in str(info.value)
    with pytest.raises(CheckpointError, match=rf"--resume {re.escape(str(out))}: the run there "
                                              r"wrote no checkpoint( \(its log ends at step "
                                              r"\d\))?, so there is nothing to continue from; "
                                              r"start it again with --overwrite"):
        Run.resume(out, quiet=True)
    assert _files(out) == before
    Run(_cfg(tmp_path, "gan", dataset="ring8", out=str(out)), quiet=True, overwrite=True).train()
    assert (out / "checkpoints" / "ckpt_00000002.npz").exists()


def test_a_new_run_that_fails_in_its_first_step_leaves_the_folder_as_it_was(
        tmp_path, tiny_data, monkeypatch, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    def fail(self, real, labels=None):
        raise MemoryError("Unable to allocate 1 PiB")
    monkeypatch.setattr(GANTrainer, "step", fail)
    with pytest.raises(MemoryError):
        Run(_cfg(tmp_path, "gan", dataset="ring8", out=str(out)), quiet=True).train()
    assert _files(out) == {"notes.txt": b"mine"}
    assert "nothing was trained: removed what the run had written" in capsys.readouterr().err
    with pytest.raises(MemoryError):  # a folder the run made itself goes too
        Run(_cfg(tmp_path, "gan", dataset="ring8", out=str(tmp_path / "new")),
            quiet=True).train()
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    Run(_cfg(tmp_path, "gan", dataset="ring8", out=str(out)), quiet=True).train()  # no --overwrite
    assert (out / "checkpoints" / "ckpt_00000002.npz").exists()


# 4: a resume that changes the total under linear decay

def test_a_new_total_under_linear_decay_follows_it_from_the_resumed_step(tmp_path, tiny_data,
                                                                        capsys):
    cfg = _cfg(tmp_path, "gan", dataset="ring8", steps=4, checkpoint_every=4, lr_g=1e-3,
               lr_d=5e-4, lr_decay="linear", out=str(tmp_path / "run"))
    out = Run(cfg, quiet=True).train()
    capsys.readouterr()
    run = Run.resume(out, quiet=True, steps=8)
    assert ("note: --lr-decay linear: the learning rates now fall to 0 at step 8, not 4, so at "
            "step 4 they go from 0 to 0.5 times the base rates") in capsys.readouterr().err
    run.train()
    assert run.trainer.opt_G.param_groups[0]["lr"] == pytest.approx(1e-3 / 8)  # 1 - 7/8
    Run.resume(out, quiet=True, steps=8)  # the same total: no note
    assert "note:" not in capsys.readouterr().err


# 5: checkpoint warnings print as one line

def test_checkpoint_warnings_print_as_one_plain_line(tmp_path):
    import warnings
    assert warnings.formatwarning("skipping x", CheckpointWarning, "/a/run.py", 295,
                                  "code") == "warning: skipping x\n"
    assert "UserWarning" in warnings.formatwarning("other", UserWarning, "/a/b.py", 1, "code")
    assert issubclass(CheckpointWarning, RuntimeWarning)  # pytest.warns(RuntimeWarning) holds
    out = tmp_path / "run"
    assert main(["train", "gan", "--dataset", "ring8", "--steps", "2", "--batch-size", "16",
                 "--device", "cpu", "--out", str(out), "--quiet"]) == 0
    (out / "checkpoints" / "ckpt_00000009.npz").write_bytes(b"PK\x03\x04 cut short")
    env = dict(os.environ, MINIGAN_QUIET="1")
    proc = subprocess.run([sys.executable, "-m", "minigan", "train", "--resume", str(out),
                           "--steps", "3", "--quiet"], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith(f"warning: skipping unreadable checkpoint: checkpoint "
                               f"{out / 'checkpoints' / 'ckpt_00000009.npz'} is truncated or "
                               "corrupt")
    assert "RuntimeWarning" not in proc.stderr and "run.py" not in proc.stderr
