"""LayerNorm, GroupNorm, InstanceNorm1d/2d, the 2-D pads, PixelShuffle/Unshuffle,
CosineSimilarity and PairwiseDistance (minigan/nn/normalization.py): torch's parameters,
buffers, state-dict keys, defaults and reprs; InstanceNorm's train/eval rules for its running
statistics; device moves; state dicts from torch and back; a CycleGAN-style block and a
WGAN-GP critic (its gradient penalty: second order through LayerNorm) against torch."""
import warnings

import numpy as np
import pytest

import minigan
from minigan import backend, nn
from minigan.testing import check_backward, check_double_backward
from tests.functional.test_normalization import (
    np_channel,
    np_cosine,
    np_group_norm,
    np_instance_norm,
    np_layer_norm,
    np_pad,
    np_pairwise,
    np_pixel_shuffle,
    np_pixel_unshuffle,
)

R = np.random.default_rng(9)


def normal(*shape):
    return R.standard_normal(shape)


def _t(a, device="cpu", grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a), device), requires_grad=grad)


def _np(a):
    return backend.to_numpy(a.data if isinstance(a, minigan.Tensor) else a)


def close(a, b, tol=1e-10):
    a = _np(a)
    assert a.shape == np.shape(b), (a.shape, np.shape(b))
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def layout(m):
    """(name, shape, dtype) of every state-dict entry, in order."""
    return [(k, tuple(v.shape), str(v.dtype)) for k, v in m.state_dict().items()]


# Constructor calls valid in both libraries, with torch's repr of each.
REPRS = [
    ("LayerNorm", (4,), {}, "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)"),
    ("LayerNorm", ([3, 4],), {"elementwise_affine": False, "eps": 1e-3},
     "LayerNorm((3, 4), eps=0.001, elementwise_affine=False, bias=False)"),
    ("LayerNorm", (5,), {"bias": False},
     "LayerNorm((5,), eps=1e-05, elementwise_affine=True, bias=False)"),
    ("GroupNorm", (2, 4), {}, "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"),
    ("GroupNorm", (2, 4), {"affine": False, "eps": 1e-3},
     "GroupNorm(2, 4, eps=0.001, affine=False, bias=False)"),
    ("GroupNorm", (1, 3), {"bias": False}, "GroupNorm(1, 3, eps=1e-05, affine=True, bias=False)"),
    ("InstanceNorm2d", (3,), {}, ("InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, "
                                  "bias=False, track_running_stats=False)")),
    ("InstanceNorm1d", (3,), {"affine": True, "track_running_stats": True, "momentum": None},
     ("InstanceNorm1d(3, eps=1e-05, momentum=None, affine=True, bias=True, "
      "track_running_stats=True)")),
    ("InstanceNorm2d", (2,), {"affine": True, "bias": False},
     ("InstanceNorm2d(2, eps=1e-05, momentum=0.1, affine=True, bias=False, "
      "track_running_stats=False)")),
    ("ZeroPad2d", (1,), {}, "ZeroPad2d((1, 1, 1, 1))"),
    ("ZeroPad2d", ((1, 2, 3, 4),), {}, "ZeroPad2d((1, 2, 3, 4))"),
    ("ConstantPad2d", (2, 3.5), {}, "ConstantPad2d(padding=(2, 2, 2, 2), value=3.5)"),
    ("ConstantPad2d", ((1, 2, 3, 4), 1), {}, "ConstantPad2d(padding=(1, 2, 3, 4), value=1)"),
    ("ReflectionPad2d", (1,), {}, "ReflectionPad2d((1, 1, 1, 1))"),
    ("ReplicationPad2d", ((1, 0, 1, 0),), {}, "ReplicationPad2d((1, 0, 1, 0))"),
    ("PixelShuffle", (2,), {}, "PixelShuffle(upscale_factor=2)"),
    ("PixelUnshuffle", (3,), {}, "PixelUnshuffle(downscale_factor=3)"),
    ("CosineSimilarity", (0, 1e-3), {}, "CosineSimilarity()"),
    ("PairwiseDistance", (1, 1e-3, True), {}, "PairwiseDistance()"),
]


@pytest.mark.parametrize("name,args,kwargs,text", REPRS)
def test_reprs_are_torchs(name, args, kwargs, text):
    assert repr(getattr(nn, name)(*args, **kwargs)) == text


def test_parameters_buffers_and_initial_values():
    ln = nn.LayerNorm([2, 3])
    assert layout(ln) == [("weight", (2, 3), "float32"), ("bias", (2, 3), "float32")]
    assert (_np(ln.weight) == 1).all() and (_np(ln.bias) == 0).all()
    assert ln.normalized_shape == (2, 3) and ln.eps == 1e-5 and ln.elementwise_affine
    assert layout(nn.LayerNorm(4, bias=False)) == [("weight", (4,), "float32")]
    assert layout(nn.LayerNorm(4, elementwise_affine=False)) == []
    gn = nn.GroupNorm(2, 6, dtype=np.float64)
    assert layout(gn) == [("weight", (6,), "float64"), ("bias", (6,), "float64")]
    assert (gn.num_groups, gn.num_channels, gn.affine) == (2, 6, True)
    assert layout(nn.InstanceNorm2d(3)) == []
    assert nn.InstanceNorm2d(3).weight is None and nn.InstanceNorm2d(3).running_mean is None
    inn = nn.InstanceNorm1d(3, affine=True, track_running_stats=True)
    assert layout(inn) == [("weight", (3,), "float32"), ("bias", (3,), "float32"),
                           ("running_mean", (3,), "float32"), ("running_var", (3,), "float32"),
                           ("num_batches_tracked", (), "int64")]
    assert [n for n, _ in inn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in inn.named_buffers()] == ["running_mean", "running_var",
                                                   "num_batches_tracked"]
    assert (_np(inn.running_var) == 1).all() and (_np(inn.running_mean) == 0).all()
    pad = nn.ConstantPad2d([1, 2, 3, 4], 0.5)
    assert pad.padding == (1, 2, 3, 4) and pad.value == 0.5
    assert nn.ZeroPad2d(2).value == 0.0 and isinstance(nn.ZeroPad2d(2), nn.ConstantPad2d)
    pd = nn.PairwiseDistance(3.0, 1e-4, True)
    assert (pd.norm, pd.eps, pd.keepdim) == (3.0, 1e-4, True)
    cs = nn.CosineSimilarity(2)
    assert (cs.dim, cs.eps) == (2, 1e-8)


def test_reset_parameters_and_running_stats():
    inn = nn.InstanceNorm2d(2, affine=True, track_running_stats=True)
    inn.weight.data[...] = 3
    inn.running_mean[...] = 5
    inn.running_var[...] = 7
    inn.num_batches_tracked[...] = 4
    inn.reset_running_stats()
    assert (inn.running_mean == 0).all() and (inn.running_var == 1).all()
    assert inn.num_batches_tracked == 0 and (_np(inn.weight) == 3).all()
    inn.reset_parameters()
    assert (_np(inn.weight) == 1).all()
    ln = nn.LayerNorm(3)
    ln.bias.data[...] = 2
    ln.reset_parameters()
    assert (_np(ln.bias) == 0).all()


# ----------------------------------------------------------------------------- forward

def test_layer_and_group_norm_modules_on_the_device(device):
    x = normal(2, 4, 3, 5)
    ln = nn.LayerNorm((3, 5), eps=1e-3).double().to(device)
    ln.weight.data[...] = backend.to_device(normal(3, 5), device)
    ln.bias.data[...] = backend.to_device(normal(3, 5), device)
    y = ln(_t(x, device))
    assert y.device == device
    close(y, np_layer_norm(x, (3, 5), _np(ln.weight), _np(ln.bias), 1e-3))
    gn = nn.GroupNorm(2, 4).double().to(device)
    gn.weight.data[...] = backend.to_device(normal(4), device)
    close(gn(_t(x, device)), np_group_norm(x, 2, _np(gn.weight), _np(gn.bias)))
    close(nn.GroupNorm(2, 4, affine=False).double().to(device)(_t(x, device)),
          np_group_norm(x, 2))


def test_instance_norm_without_running_stats_uses_instance_stats_in_train_and_eval(device):
    inn = nn.InstanceNorm2d(3, affine=True).double().to(device)
    inn.weight.data[...] = backend.to_device(normal(3), device)
    x = normal(2, 3, 4, 4)
    want = np_instance_norm(x, _np(inn.weight), _np(inn.bias))
    close(inn(_t(x, device)), want)
    close(inn.eval()(_t(x, device)), want)


def test_instance_norm_running_stats_move_in_training_and_normalise_in_eval(device):
    inn = nn.InstanceNorm1d(3, momentum=0.25, track_running_stats=True).double().to(device)
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = normal(4, 3, 6) * (step + 1) - step
        close(inn(_t(x, device)), np_instance_norm(x))
        rm = 0.75 * rm + 0.25 * x.mean(axis=2).mean(axis=0)
        rv = 0.75 * rv + 0.25 * x.var(axis=2, ddof=1).mean(axis=0)
        close(inn.running_mean, rm)
        close(inn.running_var, rv)
    assert int(_np(inn.num_batches_tracked)) == 0  # torch's instance norm does not count
    inn.eval()
    x = normal(2, 3, 6)
    close(inn(_t(x, device)), (x - np_channel(rm, 3)) / np.sqrt(np_channel(rv, 3) + 1e-5))
    close(inn.running_mean, rm)  # evaluation leaves them
    # momentum=None: torch passes 0, so the running statistics stay where they are
    frozen = nn.InstanceNorm1d(3, momentum=None, track_running_stats=True).double().to(device)
    frozen(_t(normal(2, 3, 5), device))
    close(frozen.running_mean, np.zeros(3))
    close(frozen.running_var, np.ones(3))


def test_instance_norm_unbatched_input_is_a_batch_of_one(device):
    inn = nn.InstanceNorm2d(2, track_running_stats=True).double().to(device)
    x = normal(2, 3, 4)
    y = inn(_t(x, device))
    assert y.shape == (2, 3, 4)
    close(y, np_instance_norm(x[None])[0])
    close(inn.running_mean, 0.1 * x.mean(axis=(1, 2)))
    x1 = normal(3, 5)
    close(nn.InstanceNorm1d(3).double().to(device)(_t(x1, device)),
          np_instance_norm(x1[None])[0])


def test_pad_shuffle_and_distance_modules(device):
    x = normal(2, 4, 3, 4)
    t = _t(x, device)
    close(nn.ZeroPad2d((1, 0, 2, 1))(t), np_pad(x, (1, 0, 2, 1), "constant"), tol=0)
    close(nn.ConstantPad2d(1, -1.5)(t), np_pad(x, (1, 1, 1, 1), "constant", -1.5), tol=0)
    close(nn.ConstantPad2d((-1, 1, 0, -2), 2.0)(t), np_pad(x, (-1, 1, 0, -2), "constant", 2),
          tol=0)
    close(nn.ReflectionPad2d((2, 1, 2, 0))(t), np_pad(x, (2, 1, 2, 0), "reflect"), tol=0)
    close(nn.ReflectionPad2d(1)(_t(x[0], device)), np_pad(x[0], (1,) * 4, "reflect"), tol=0)
    close(nn.ReplicationPad2d(3)(t), np_pad(x, (3,) * 4, "replicate"), tol=0)
    close(nn.PixelShuffle(2)(t), np_pixel_shuffle(x, 2), tol=0)
    close(nn.PixelUnshuffle(2)(_t(x[..., :2, :], device)), np_pixel_unshuffle(x[..., :2, :], 2),
          tol=0)
    y = normal(4, 3, 4)
    close(nn.CosineSimilarity()(t, _t(y, device)), np_cosine(x, y, 1))
    close(nn.CosineSimilarity(-1, 0.1)(t, _t(y, device)), np_cosine(x, y, -1, 0.1))
    close(nn.PairwiseDistance()(t, _t(y, device)), np_pairwise(x, y))
    close(nn.PairwiseDistance(1.0, 0.5, True)(t, _t(y, device)), np_pairwise(x, y, 1, 0.5, True))


def test_module_gradients_first_and_second_order(device):
    x = backend.to_device(normal(2, 4, 3, 3), device)
    for m in (nn.LayerNorm((4, 3, 3)), nn.GroupNorm(2, 4), nn.InstanceNorm2d(4, affine=True),
              nn.ReflectionPad2d((2, 1, 0, 2)), nn.ReplicationPad2d(1), nn.ZeroPad2d(1),
              nn.PixelUnshuffle(3)):
        m = m.double().to(device)
        for p in m.parameters():
            p.data[...] = backend.to_device(normal(*p.shape), device)
        check_backward(lambda a, m=m: m(a * a), [x])
        check_double_backward(lambda a, m=m: m(a * a), [x])


# ----------------------------------------------------------------------------- errors

def test_layer_errors():
    with pytest.raises(ValueError, match=r"num_channels \(4\) must be divisible by "
                                         r"num_groups \(3\)"):
        nn.GroupNorm(3, 4)
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[5\]"):
        nn.LayerNorm(5)(_t(normal(2, 4)))
    with pytest.raises(ValueError, match=r"InstanceNorm1d: expected 2D or 3D input \(got 4D"):
        nn.InstanceNorm1d(3)(_t(normal(1, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"InstanceNorm2d: expected 3D or 4D input \(got 2D"):
        nn.InstanceNorm2d(3)(_t(normal(3, 4)))
    with pytest.raises(ValueError, match=r"size at dim=1 to match num_features \(4\), but "
                                         r"got: 3"):
        nn.InstanceNorm1d(4, affine=True)(_t(normal(2, 3, 5)))
    with pytest.warns(UserWarning, match="size at dim=1 does not match num_features"):
        y = nn.InstanceNorm1d(4)(_t(normal(2, 3, 5)))
    assert y.shape == (2, 3, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match=r"running_mean of shape \(4,\)"):
            nn.InstanceNorm1d(4, track_running_stats=True)(_t(normal(2, 3, 5)))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        nn.InstanceNorm1d(3)(_t(normal(2, 3, 1)))
    with pytest.raises(ValueError, match="tuple of 4 ints, got \\(1, 2, 3\\)"):
        nn.ZeroPad2d((1, 2, 3))
    with pytest.raises(TypeError, match="padding must be an int or a"):
        nn.ReflectionPad2d(1.5)
    with pytest.raises(RuntimeError, match="less than the corresponding input dimension"):
        nn.ReflectionPad2d(3)(_t(normal(1, 1, 3, 3)))
    with pytest.raises(NotImplementedError, match="padding size 4 is not supported for 2D"):
        nn.ReplicationPad2d(1)(_t(normal(3, 3)))
    with pytest.raises(RuntimeError, match="upscale_factor"):
        nn.PixelShuffle(3)(_t(normal(1, 8, 2, 2)))


# ----------------------------------------------------------------------------- the GPU

def test_modules_move_to_the_gpu_and_do_not_wait_for_it(emulated_gpu):
    from tests.kernels import emulated_cupy as E
    inn = nn.InstanceNorm2d(4, affine=True, track_running_stats=True).to("cuda")
    ln = nn.LayerNorm([4, 5, 5]).to("cuda")
    assert isinstance(inn.running_mean, emulated_gpu.ndarray) and inn.weight.device == "cuda"
    assert isinstance(inn.num_batches_tracked, emulated_gpu.ndarray)
    assert inn.num_batches_tracked.dtype == np.int64
    x = _t(normal(2, 4, 5, 5).astype(np.float32), "cuda", grad=True)
    E.LOG.clear()
    y = nn.Sequential(nn.ReflectionPad2d(1), nn.PixelUnshuffle(1), nn.ZeroPad2d(-1), inn,
                      nn.GroupNorm(2, 4).to("cuda"), ln)(x)
    (g,) = minigan.grad(y.square().sum(), [x], create_graph=True)
    penalty = (g.flatten(1).norm(dim=1) - 1).square().mean()
    grads = minigan.grad(penalty, [x, ln.weight, inn.weight])
    assert all(t.device == "cuda" for t in grads)
    inn.eval()
    inn(x).sum()
    assert dict(E.LOG.syncs) == {}
    with pytest.raises(backend.DeviceError, match="cuda and cpu|cpu and cuda"):
        ln(_t(normal(2, 4, 5, 5)))  # the input left on the CPU


def test_state_dict_loads_onto_a_gpu_module(emulated_gpu):
    src = nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    src.running_mean[...] = [1.0, 2.0, 3.0]
    src.num_batches_tracked[...] = 7
    dst = nn.InstanceNorm2d(3, affine=True, track_running_stats=True).to("cuda")
    dst.load_state_dict(src.state_dict())
    assert isinstance(dst.running_mean, emulated_gpu.ndarray)
    assert _np(dst.running_mean).tolist() == [1.0, 2.0, 3.0]
    assert int(_np(dst.num_batches_tracked)) == 7


# ----------------------------------------------------------------------------- torch

def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("name,args,kwargs,text", REPRS)
def test_reprs_and_state_dicts_match_torch(name, args, kwargs, text):
    torch = _torch()
    mine, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(mine) == repr(theirs) == text
    assert [(k, tuple(v.shape)) for k, v in mine.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    assert [n for n, _ in mine.named_buffers()] == [n for n, _ in theirs.named_buffers()]


def _randomise_torch(torch, m):
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, dtype=p.dtype))


def test_torch_state_dicts_load_and_come_back():
    torch = _torch()
    specs = [("LayerNorm", ((3, 4),), {}, (2, 5, 3, 4)),
             ("LayerNorm", (4,), {"bias": False}, (2, 4)),
             ("GroupNorm", (3, 6), {}, (2, 6, 2, 3)),
             ("InstanceNorm1d", (3,), {"affine": True, "track_running_stats": True}, (2, 3, 5)),
             ("InstanceNorm2d", (3,), {"track_running_stats": True}, (2, 3, 4, 4)),
             ("InstanceNorm2d", (3,), {"affine": True}, (2, 3, 4, 4))]
    for name, args, kwargs, shape in specs:
        theirs = getattr(torch.nn, name)(*args, **kwargs).double()
        _randomise_torch(torch, theirs)
        for _ in range(2):  # moves the running statistics, where there are some
            theirs(torch.randn(shape, dtype=torch.float64) * 3)
        mine = getattr(nn, name)(*args, **kwargs).double()
        mine.load_state_dict(theirs.state_dict())
        x = normal(*shape) * 2
        for train in (True, False):
            theirs.train(train)
            mine.train(train)
            want = theirs(torch.tensor(x)).detach().numpy()
            close(mine(_t(x)), want)
            for k, v in theirs.state_dict().items():
                np.testing.assert_allclose(_np(mine.state_dict()[k]), v.numpy(), rtol=1e-12)
        back = getattr(torch.nn, name)(*args, **kwargs).double()
        back.load_state_dict({k: torch.tensor(np.array(_np(v))) for k, v in
                              mine.state_dict().items()})
        assert list(back.state_dict()) == list(mine.state_dict())
        for k, v in back.state_dict().items():
            np.testing.assert_array_equal(v.numpy(), _np(mine.state_dict()[k]))


def _cyclegan_block(lib):
    nn_ = lib.nn if hasattr(lib, "nn") else lib
    return nn_.Sequential(nn_.ReflectionPad2d(1), nn_.Conv2d(3, 4, 3),
                          nn_.InstanceNorm2d(4, affine=True, track_running_stats=True),
                          nn_.ReLU(), nn_.ReplicationPad2d((0, 1, 1, 0)), nn_.Conv2d(4, 8, 2),
                          nn_.PixelShuffle(2), nn_.ZeroPad2d((1, 0, 0, 1)),
                          nn_.GroupNorm(1, 2))


def _critic(lib):
    nn_ = lib.nn if hasattr(lib, "nn") else lib
    return nn_.Sequential(nn_.Conv2d(2, 4, 3, padding=1), nn_.LayerNorm([4, 6, 6]),
                          nn_.LeakyReLU(0.2), nn_.PixelUnshuffle(2), nn_.Flatten(),
                          nn_.Linear(144, 1))


@pytest.mark.parametrize("build", [_cyclegan_block, _critic])
def test_gan_blocks_and_a_gradient_penalty_match_torch(build):
    """The same weights in torch and minigan: outputs in training and eval, the running
    statistics, and a WGAN-GP penalty's gradients with respect to every parameter (second
    order through the normalisation, padding and shuffle layers)."""
    torch = _torch()
    theirs = build(torch).double()
    _randomise_torch(torch, theirs)
    mine = build(nn).double()
    mine.load_state_dict(theirs.state_dict())
    in_ch = 3 if build is _cyclegan_block else 2
    for train in (True, False):
        theirs.train(train)
        mine.train(train)
        x = normal(2, in_ch, 6, 6)
        tx = torch.tensor(x, requires_grad=True)
        tout = theirs(tx)
        (tg,) = torch.autograd.grad(tout.square().sum(), [tx], create_graph=True)
        tpen = (tg.flatten(1).norm(dim=1) - 1).square().mean()
        tgrads = torch.autograd.grad(tpen, list(theirs.parameters()))
        mx = _t(x, grad=True)
        mout = mine(mx)
        close(mout, tout.detach().numpy(), tol=1e-9)
        (mg,) = minigan.grad(mout.square().sum(), [mx], create_graph=True)
        mpen = (mg.flatten(1).norm(dim=1) - 1).square().mean()
        close(mpen, tpen.detach().numpy(), tol=1e-9)
        mgrads = minigan.grad(mpen, list(mine.parameters()))
        for m, t in zip(mgrads, tgrads):
            close(m, t.numpy(), tol=1e-8)
        for k, v in theirs.state_dict().items():
            np.testing.assert_allclose(_np(mine.state_dict()[k]), v.numpy(), rtol=1e-12)


def test_functional_names_match_torch_signatures():
    torch = _torch()
    import inspect
    # (the functional names are compared in tests/functional/test_signatures.py, out= aside)
    for name in ("LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "ZeroPad2d",
                 "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d", "PixelShuffle",
                 "PixelUnshuffle", "CosineSimilarity", "PairwiseDistance"):
        ours = inspect.signature(getattr(nn, name).__init__)
        want = inspect.signature(getattr(torch.nn, name).__init__)
        assert [(p.name, p.default, p.kind) for p in ours.parameters.values()] == \
            [(p.name, p.default, p.kind) for p in want.parameters.values()], name
