"""The 2-D toys get their own defaults (POINT_DEFAULTS and the point networks); images keep the
paper recipes; every default yields to an explicit value."""
import json

import pytest

import minigan.data
import minigan.nn as nn
from minigan.gan.models import POINT_G_BATCH_NORM, POINT_HIDDEN, build_models
from minigan.gan.run import Run, load_generator
from minigan.gan.trainer import (IMAGE_BATCH_SIZE, POINT_DEFAULTS, PRESET_OPTIM, PRESET_TUNED,
                                 GANTrainer, TrainConfig)


@pytest.mark.parametrize("preset", ["gan", "dragan"])
@pytest.mark.parametrize("dataset", ["ring8", "grid25"])
def test_toys_get_the_point_defaults(preset, dataset):
    c = TrainConfig(preset=preset, dataset=dataset).resolved()
    for name, value in POINT_DEFAULTS[preset].items():
        assert getattr(c, name) == value, name
    assert c.point_hidden == POINT_HIDDEN and c.point_g_batch_norm == POINT_G_BATCH_NORM


def test_presets_without_point_entry_use_the_gan_point_defaults():
    c = TrainConfig(preset="cgan", dataset="ring8").resolved()
    assert (c.steps, c.batch_size, c.lr_g, c.lr_d) == tuple(
        POINT_DEFAULTS["gan"][k] for k in ("steps", "batch_size", "lr_g", "lr_d"))


@pytest.mark.parametrize("preset", ["gan", "dcgan", "dcgan64", "cgan", "dragan"])
def test_images_keep_the_paper_recipes(preset):
    c = TrainConfig(preset=preset, dataset="mnist").resolved()
    paper = PRESET_OPTIM[preset]
    if preset == "dcgan":  # the tuned exception (PRESET_TUNED): G at twice the paper's rate
        paper = (4e-4,) + paper[1:]
    assert (c.lr_g, c.lr_d, c.beta1, c.beta2) == paper
    assert c.batch_size == IMAGE_BATCH_SIZE == 64
    assert c.steps is None and c.epochs is None  # one epoch, decided by the run
    assert c.point_hidden is None and c.point_g_batch_norm is None
    assert c.lr_decay == "none"
    assert (c.gp_lambda, c.dragan_c, c.dragan_perturb) == (10.0, 0.5, "official")


def test_explicit_values_override_the_point_defaults():
    c = TrainConfig(preset="dragan", dataset="ring8", steps=7, batch_size=32, lr_g=1e-3,
                    lr_d=3e-3, beta1=0.0, beta2=0.99, point_hidden=(16, 8),
                    point_g_batch_norm=False, lr_decay="none").resolved()
    assert (c.steps, c.batch_size, c.lr_g, c.lr_d, c.beta1, c.beta2) == \
        (7, 32, 1e-3, 3e-3, 0.0, 0.99)
    assert c.point_hidden == (16, 8) and c.point_g_batch_norm is False
    assert c.lr_decay == "none"
    by_epochs = TrainConfig(preset="gan", dataset="ring8", epochs=0.5).resolved()
    assert by_epochs.steps is None and by_epochs.epochs == 0.5  # --epochs alone sets the length


def test_point_networks_follow_the_config():
    G, D = build_models("gan", (2,))
    widths = [m.out_features for m in G.modules() if isinstance(m, nn.Linear)]
    assert widths == list(POINT_HIDDEN) + [2]
    assert any(isinstance(m, nn.BatchNorm1d) for m in G.modules()) == POINT_G_BATCH_NORM
    assert any(isinstance(m, nn.ReLU) for m in G.modules()) == POINT_G_BATCH_NORM
    assert not any(isinstance(m, nn.BatchNorm1d) for m in D.modules())
    G, D = build_models("dragan", (2,), point_hidden=(16, 8), point_g_batch_norm=False)
    assert [m.out_features for m in G.modules() if isinstance(m, nn.Linear)] == [16, 8, 2]
    assert [m.out_features for m in D.modules() if isinstance(m, nn.Linear)] == [16, 8, 1]
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.ReLU)) for m in G.modules())


def test_a_toy_run_uses_and_records_the_overrides(tmp_path, monkeypatch):
    real = minigan.data.load_dataset
    monkeypatch.setattr(minigan.data, "load_dataset",
                        lambda name, split="train", image_size=None, root=None, **kw:
                        real(name, split, image_size, root, n=256))
    cfg = TrainConfig(preset="gan", dataset="ring8", steps=2, batch_size=32,
                      point_hidden=(16, 16), device="cpu", out=str(tmp_path / "run"),
                      sample_every=100, checkpoint_every=2, log_every=1)
    run = Run(cfg, quiet=True)
    assert run.loader.batch_size == 32 and run.total_steps == 2
    assert run.trainer.opt_G.param_groups[0]["lr"] == POINT_DEFAULTS["gan"]["lr_g"]
    out = run.train()
    saved = json.loads((out / "config.json").read_text())
    assert saved["point_hidden"] == [16, 16] and saved["point_g_batch_norm"] is True
    G, _ = load_generator(out / "checkpoints" / "ckpt_00000002.npz")
    assert [m.out_features for m in G.modules() if isinstance(m, nn.Linear)] == [16, 16, 2]


def test_cli_leaves_preset_defaults_to_the_config():
    from minigan.cli import build_parser
    a = build_parser().parse_args(["train", "dragan", "--dataset", "ring8"])
    assert (a.batch_size, a.lr_decay, a.gp_lambda, a.dragan_c, a.dragan_perturb) == \
        (None, None, None, None, None)
    a = build_parser().parse_args(["train", "gan", "--batch-size", "32", "--lr-decay", "linear",
                                   "--gp-lambda", "1", "--dragan-c", "0.1"])
    assert (a.batch_size, a.lr_decay, a.gp_lambda, a.dragan_c) == (32, "linear", 1.0, 0.1)


@pytest.mark.parametrize("preset,dataset,n_gen", [
    ("dcgan", "mnist", 3), ("dcgan", "fashion-mnist", 3), ("gan", "mnist", 1),
    ("cgan", "mnist", 1), ("dragan", "mnist", 1), ("dcgan64", "mnist", 1),
    ("dcgan", "ring8", 1), ("gan", "grid25", 1)])
def test_g_updates_per_step_default_per_preset(preset, dataset, n_gen):
    assert TrainConfig(preset=preset, dataset=dataset).resolved().n_gen == n_gen
    assert TrainConfig(preset=preset, dataset=dataset, n_gen=3).resolved().n_gen == 3


def test_the_tuned_dcgan_recipe_yields_to_explicit_values():
    assert PRESET_TUNED == {"dcgan": {"n_gen": 3, "lr_g": 4e-4}}
    c = TrainConfig(preset="dcgan", lr_g=2e-4, n_gen=1).resolved()
    assert (c.lr_g, c.n_gen) == (2e-4, 1)
    c = TrainConfig(preset="dcgan", dataset="ring8").resolved()  # points keep their own recipe
    assert (c.lr_g, c.n_gen) == (POINT_DEFAULTS["gan"]["lr_g"], 1)


def test_bad_update_counts_and_unresolved_configs_are_refused():
    with pytest.raises(ValueError, match=r"n_gen \(--n-gen\) must be an integer >= 1, got 0"):
        TrainConfig(preset="dcgan", n_gen=0).resolved()
    with pytest.raises(ValueError, match=r"n_critic \(--n-critic\) must be an integer >= 1"):
        TrainConfig(preset="gan", n_critic=-1).resolved()
    G, D = build_models("gan", (1, 28, 28))
    with pytest.raises(ValueError, match="resolved config"):
        GANTrainer(G, D, TrainConfig(preset="gan"))
