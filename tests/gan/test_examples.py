"""Every script in examples/ runs to the end on tiny in-memory data (nothing downloaded) and
writes what it says it writes."""
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

import minigan.data

from .conftest import _tiny_images

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script, argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / script)] + argv)
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(
        ["train_gan_mlp.py", "train_cgan.py", "train_dragan.py", "train_dcgan_mnist.py",
         "dcgan_image_folder.py", "latent_walk.py", "pytorch_style_dcgan.py"])


@pytest.mark.parametrize("script, argv, out", [
    ("train_gan_mlp.py", ["--epochs", "1", "--device", "cpu"], "runs/example-gan"),
    ("train_cgan.py", ["--epochs", "1", "--device", "cpu", "--arch", "conv"],
     "runs/example-cgan"),
    ("train_dragan.py", ["--dataset", "ring8", "--steps", "2", "--device", "cpu"],
     "runs/example-dragan-ring8"),
    ("dcgan_image_folder.py", ["some/folder", "--image-size", "32", "--epochs", "1",
                               "--batch-size", "32", "--device", "cpu"],
     "runs/example-folder"),
])
def test_run_examples_write_a_run_folder(tmp_path, monkeypatch, tiny_data, capsys, script,
                                         argv, out):
    monkeypatch.chdir(tmp_path)
    _run(script, argv, monkeypatch)
    run = tmp_path / out
    assert (run / "config.json").exists() and (run / "metrics.jsonl").exists()
    assert list((run / "checkpoints").glob("ckpt_*.npz"))
    assert list((run / "samples").glob("step_*.png"))
    assert str(run.name) in capsys.readouterr().out


def test_step_by_step_dcgan_example_and_latent_walk(tmp_path, monkeypatch, tiny_data, capsys):
    monkeypatch.chdir(tmp_path)
    tiny = _tiny_images((1, 28, 28), n=128)
    monkeypatch.setattr(minigan.data, "mnist", lambda *a, **k: (tiny.data, tiny.labels))
    _run("train_dcgan_mnist.py", ["--epochs", "1", "--device", "cpu"], monkeypatch)
    grid = tmp_path / "runs/example-dcgan/epoch_0.png"
    assert grid.exists()

    _run("train_gan_mlp.py", ["--epochs", "1", "--device", "cpu"], monkeypatch)
    ckpt = sorted((tmp_path / "runs/example-gan/checkpoints").glob("ckpt_*.npz"))[-1]
    _run("latent_walk.py", [str(ckpt), "--points", "3", "--frames", "4", "--out", "w.png"],
         monkeypatch)
    from PIL import Image
    w = np.asarray(Image.open(tmp_path / "w.png"))
    assert abs(w.shape[1] / w.shape[0] - 2) < 0.1  # 2 rows (3 points) of 4 frames
    assert "wrote w.png" in capsys.readouterr().out


def test_pytorch_style_example_trains_and_writes_its_grid(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tiny = _tiny_images((1, 28, 28), n=128)
    monkeypatch.setattr(minigan.data, "mnist", lambda *a, **k: (tiny.data, tiny.labels))
    _run("pytorch_style_dcgan.py", ["--epochs", "1", "--device", "cpu", "--batch-size", "32"],
         monkeypatch)
    out = capsys.readouterr().out
    assert "[0/1][0/4] Loss_D:" in out  # 128 images in batches of 32
    grid = tmp_path / "runs/example-pytorch-style/epoch_0.png"
    from PIL import Image
    with Image.open(grid) as img:
        assert img.size == (8 * 28 + 9 * 2, 8 * 28 + 9 * 2)  # the 64 fixed-noise samples
