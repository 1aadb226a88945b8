"""The D step's one pass over real + fake: taken only where it gives the values of two passes
(a D that scores each sample alone), and then with those values."""
import numpy as np
import pytest

import minigan
import minigan.nn as nn
from minigan import Tensor, backend
from minigan.gan import models
from minigan.gan import trainer as T
from minigan.gan.models import build_models
from minigan.gan.trainer import TrainConfig, make_trainer


def _preset_d(preset, **kw):
    shape = (1, 28, 28)
    arch = kw.pop("arch", None)
    return build_models(preset, shape, 10 if preset == "cgan" else 0, 16, arch=arch, **kw)[1]


@pytest.mark.parametrize("preset, arch, alone", [
    ("gan", None, True), ("cgan", None, True), ("dragan", None, True),
    ("dragan", "conv", True),   # DRAGAN's conv D has no batch norm
    ("cgan", "conv", False), ("dcgan", None, False), ("dcgan64", None, False),
])
def test_which_preset_discriminators_score_each_sample_alone(preset, arch, alone):
    if preset == "dcgan64":
        D = build_models(preset, (3, 32, 32), 0, 16, ngf=8, ndf=8)[1]
    else:
        D = _preset_d(preset, arch=arch)
    assert T.scores_each_sample_alone(D) is alone


def test_what_keeps_a_discriminator_from_one_pass():
    D = _preset_d("gan")
    assert T.scores_each_sample_alone(D)
    # a forward hook on any module would see one call instead of two
    handle = D.net[2].register_forward_hook(lambda m, a, out: None)
    assert not T.scores_each_sample_alone(D)
    handle.remove()
    handle = D.register_forward_pre_hook(lambda m, a: None)
    assert not T.scores_each_sample_alone(D)
    handle.remove()
    assert T.scores_each_sample_alone(D)
    # dropout draws per call while training; without a draw it is per sample
    Dd = _preset_d("gan", d_dropout=0.3)
    assert not T.scores_each_sample_alone(Dd)
    Dd.eval()
    assert T.scores_each_sample_alone(Dd)
    assert T.scores_each_sample_alone(nn.Sequential(nn.Flatten(), nn.Linear(4, 1),
                                                    nn.Dropout(0.0)))
    # a flatten over the batch axis mixes the samples
    assert not T.scores_each_sample_alone(nn.Sequential(nn.Flatten(0), nn.Linear(8, 1)))
    # batch norm, and classes the trainer does not know (a subclass may override forward)
    assert not T.scores_each_sample_alone(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))

    class MyD(models.MLPDiscriminator):
        pass

    assert not T.scores_each_sample_alone(MyD((1, 2, 2), (4,)))


def test_joint_d_batch_needs_matching_batches_or_the_flag():
    D = _preset_d("gan")
    Dbn = _preset_d("dcgan")
    cfg = TrainConfig(preset="gan", device="cpu").resolved()
    a = Tensor(np.zeros((2, 1, 28, 28), np.float32))
    assert T.joint_d_batch(cfg, D, a, Tensor(np.zeros((3, 1, 28, 28), np.float32)))
    assert not T.joint_d_batch(cfg, D, a, Tensor(np.zeros((2, 1, 28, 28), np.float64)))
    assert not T.joint_d_batch(cfg, Dbn, a, a)
    flag = TrainConfig(preset="dcgan", device="cpu", joint_d_batch=True).resolved()
    assert T.joint_d_batch(flag, Dbn, a, a)


@pytest.mark.parametrize("preset", ["gan", "cgan", "dragan"])
def test_one_pass_gives_the_two_passes_loss_statistics_and_gradients(device, preset,
                                                                     monkeypatch):
    """The D step's loss, D(x), D(G(z)) and D's gradients, one pass against two (forced by
    making the check say no), from the same weights and batches."""
    labels = np.arange(6) % 10 if preset == "cgan" else None
    rng = np.random.default_rng(1)
    real = rng.uniform(-1, 1, (6, 1, 28, 28)).astype(np.float32)
    fake = rng.uniform(-1, 1, (6, 1, 28, 28)).astype(np.float32)
    fake_labels = (np.arange(6) + 3) % 10 if preset == "cgan" else None
    results = []
    for one_pass in (True, False):
        minigan.manual_seed(0)
        G, D = build_models(preset, (1, 28, 28), 10 if preset == "cgan" else 0, 16)
        G.to(device)
        D.to(device)
        cfg = TrainConfig(preset=preset, device=device, seed=0, z_dim=16,
                          label_smoothing=0.1).resolved()
        tr = make_trainer(G, D, cfg, 10 if preset == "cgan" else 0)
        with monkeypatch.context() as m:
            if not one_pass:
                m.setattr(T, "scores_each_sample_alone", lambda D: False)
            calls = []
            m.setattr(D, "forward", lambda x, lab=None, f=D.forward: calls.append(
                x.shape[0]) or f(x, lab))
            lab = lambda a: None if a is None else backend.to_device(a, device)  # noqa: E731
            loss, stats = tr.d_loss(Tensor(backend.to_device(real, device)),
                                    Tensor(backend.to_device(fake, device)), lab(labels),
                                    lab(fake_labels))
        penalty = [6] if preset == "dragan" else []  # DRAGAN's penalty: a call of its own
        assert calls == ([12] if one_pass else [6, 6]) + penalty, calls
        loss.backward()
        results.append((float(backend.to_numpy(loss.data)),
                        {k: float(backend.to_numpy(v.data)) for k, v in stats.items()},
                        [backend.to_numpy(p.grad.data) for p in D.parameters()]))
    (l1, s1, g1), (l2, s2, g2) = results
    np.testing.assert_allclose(l1, l2, rtol=1e-6)
    assert s1.keys() == s2.keys()
    for k in s1:
        np.testing.assert_allclose(s1[k], s2[k], rtol=1e-6, err_msg=k)
    for a, b in zip(g1, g2):
        # the real and fake terms partly cancel: the floor is float32 rounding of the largest
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * float(np.abs(b).max()))
