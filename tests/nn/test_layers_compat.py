"""Layer arguments as in PyTorch: padding strings, Upsample factors and sizes, BatchNorm's
cumulative average and resets, Embedding's range check and padding_idx, ``inplace`` flags."""
import inspect
import warnings

import numpy as np
import pytest

import minigan
import minigan.nn as nn
import minigan.nn.functional as F
from minigan import backend
from minigan.functional.conv import pad_end
from minigan.testing import check_backward, check_double_backward

R = np.random.default_rng(11)


def _np(a):
    return backend.to_numpy(a)


# ----------------------------------------------------------------------------- Conv2d padding

@pytest.mark.parametrize("k,d", [(3, 1), (4, 1), (4, 2), ((2, 3), 1), ((5, 4), (2, 1))])
def test_conv_same_padding_keeps_the_size_and_pads_the_odd_pixel_bottom_right(k, d, device):
    conv = nn.Conv2d(2, 3, k, padding="same", dilation=d).double().to(device)
    x = R.standard_normal((2, 2, 7, 6))
    y = conv(minigan.tensor(x, device=device))
    assert y.shape == (2, 3, 7, 6)
    # the reference: pad explicitly (left = total // 2, the rest on the right), then 'valid'
    kh, kw = conv.kernel_size
    dh, dw = conv.dilation
    th, tw = dh * (kh - 1), dw * (kw - 1)
    xp = np.pad(x, ((0, 0), (0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2)))
    ref = F.conv2d(minigan.tensor(xp, device=device), conv.weight, conv.bias, dilation=d)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-13, atol=1e-13)
    # F.conv2d takes the strings too, as torch's does
    y_f = F.conv2d(minigan.tensor(x, device=device), conv.weight, conv.bias, padding="same",
                   dilation=d)
    np.testing.assert_array_equal(y_f.numpy(), y.numpy())


def test_conv_same_with_an_even_kernel_is_differentiable_twice():
    conv = nn.Conv2d(2, 2, 4, padding="same").double()

    def padded_conv(x, w):  # what the layer computes, with the weight as an input
        return F.conv2d(pad_end(x, 1, 1), w, None, padding=1)

    x, w = R.standard_normal((1, 2, 5, 4)), R.standard_normal((2, 2, 4, 4))
    for fn, inputs in ((padded_conv, [x, w]), (conv, [x])):
        check_backward(fn, inputs)
        check_double_backward(fn, inputs)


def test_conv_valid_padding_and_errors():
    x = minigan.tensor(np.ones((1, 2, 5, 5), np.float32))
    assert nn.Conv2d(2, 3, 3, padding="valid")(x).shape == (1, 3, 3, 3)
    assert "padding='same'" in repr(nn.Conv2d(2, 3, 3, padding="same"))
    with pytest.raises(ValueError, match="Invalid padding string 'full'"):
        nn.Conv2d(2, 3, 3, padding="full")
    with pytest.raises(ValueError, match=r"'same' is not supported for strided.*\(2, 2\)"):
        nn.Conv2d(2, 3, 3, stride=2, padding="same")
    w = minigan.tensor(np.ones((3, 2, 3, 3), np.float32))
    assert F.conv2d(x, w, padding="valid").shape == (1, 3, 3, 3)
    with pytest.raises(ValueError, match="conv2d: invalid padding string 'full'"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match=r"conv2d: padding='same' is not supported for strided"
                                         r".*\(1, 2\)"):
        F.conv2d(x, w, stride=(1, 2), padding="same")
    with pytest.raises(NotImplementedError, match="padding_mode='reflect'"):
        nn.Conv2d(2, 3, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding_mode='foo'"):
        nn.Conv2d(2, 3, 3, padding_mode="foo")
    with pytest.raises(ValueError, match="Only \"zeros\" padding mode.*'circular'"):
        nn.ConvTranspose2d(2, 3, 3, padding_mode="circular")


def test_conv_same_matches_torch():
    torch = pytest.importorskip("torch")
    for k, d in [(4, 1), (3, 2), ((2, 5), (3, 1))]:
        ours = nn.Conv2d(2, 3, k, padding="same", dilation=d).double()
        theirs = torch.nn.Conv2d(2, 3, k, padding="same", dilation=d).double()
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(ours.weight.numpy()))
            theirs.bias.copy_(torch.tensor(ours.bias.numpy()))
        x = R.standard_normal((2, 2, 6, 7))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns that it copies the input to pad it
            ref = theirs(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(ours(minigan.tensor(x)).numpy(), ref, rtol=1e-12, atol=1e-13)


def test_conv_transpose_output_size():
    ct = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = minigan.tensor(np.ones((1, 2, 4, 4), np.float32))
    assert ct(x).shape == (1, 3, 7, 7)
    assert ct(x, output_size=(8, 8)).shape == (1, 3, 8, 8)
    assert ct(x, output_size=[1, 3, 8, 7]).shape == (1, 3, 8, 7)
    with pytest.raises(ValueError, match=r"output size of \(9, 9\).*from \(7..\) to \(8..\)"):
        ct(x, output_size=(9, 9))


# ----------------------------------------------------------------------------- Upsample

def nearest_np(x, out_hw, scales=(None, None)):
    """PyTorch's nearest rule, in float32: src = min(floor(dst * s), in - 1)."""
    idx = []
    for n_in, n_out, sc in zip(x.shape[2:], out_hw, scales):
        s = np.float32(1.0 / sc) if sc else np.float32(n_in) / np.float32(n_out)
        src = np.floor(np.arange(n_out, dtype=np.float32) * s).astype(int)
        idx.append(np.minimum(src, n_in - 1))
    return x[:, :, idx[0][:, None], idx[1][None, :]]


@pytest.mark.parametrize("kw,out_hw,scales", [
    ({"scale_factor": 1.5}, (6, 7), (1.5, 1.5)),
    ({"scale_factor": 2.5}, (10, 12), (2.5, 2.5)),
    ({"scale_factor": 0.5}, (2, 2), (0.5, 0.5)),
    ({"scale_factor": (2, 3)}, (8, 15), (2, 3)),
    ({"scale_factor": 1.7, "recompute_scale_factor": True}, (6, 8), (None, None)),
    ({"size": (7, 9)}, (7, 9), (None, None)),
    ({"size": 3}, (3, 3), (None, None)),
])
def test_upsample_any_factor_or_size(kw, out_hw, scales, device):
    x = R.standard_normal((2, 3, 4, 5))
    y = nn.Upsample(**kw)(minigan.tensor(x, device=device))
    assert y.shape == (2, 3) + out_hw
    np.testing.assert_array_equal(y.numpy(), nearest_np(x, out_hw, scales))
    z = F.interpolate(minigan.tensor(x, device=device), mode="nearest", **kw)
    np.testing.assert_array_equal(z.numpy(), y.numpy())


def test_upsample_integer_factor_is_plain_repetition():
    x = R.standard_normal((1, 2, 3, 4))
    for sf in (2, 2.0, (3, 3)):
        y = nn.Upsample(scale_factor=sf)(minigan.tensor(x)).numpy()
        k = 2 if sf in (2, 2.0) else 3
        np.testing.assert_array_equal(y, x.repeat(k, 2).repeat(k, 3))


@pytest.mark.parametrize("kw", [{"scale_factor": 1.5}, {"size": (5, 3)}, {"scale_factor": 2}])
def test_upsample_gradients_first_and_second_order(kw):
    up = nn.Upsample(**kw)
    x = R.standard_normal((1, 2, 3, 4))
    check_backward(up, [x], mode="jacobian")
    check_double_backward(up, [x])


def test_upsample_bilinear_is_interpolate_bilinear():
    x = minigan.tensor(R.standard_normal((1, 2, 3, 4)))
    for corners in (None, True, False):
        up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=corners)
        want = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=corners)
        assert np.array_equal(up(x).numpy(), want.numpy())
    # align_corners=True keeps the corner pixels; False (the default) does not, in general
    y = F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=True).numpy()
    assert np.allclose(y[..., 0, 0], x.numpy()[..., 0, 0])
    assert np.allclose(y[..., -1, -1], x.numpy()[..., -1, -1])
    check_double_backward(nn.Upsample(size=(5, 7), mode="bilinear"),
                          [R.standard_normal((1, 1, 3, 4))])


def test_upsample_refuses_what_it_does_not_implement():
    with pytest.raises(NotImplementedError, match="mode='bicubic'"):
        nn.Upsample(scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        nn.Upsample()
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        nn.Upsample(size=4, scale_factor=2)
    with pytest.raises(ValueError, match="scale_factor must be positive.*-2"):
        nn.Upsample(scale_factor=-2)
    with pytest.raises(ValueError, match="align_corners"):
        nn.Upsample(scale_factor=2, align_corners=True)
    with pytest.raises(NotImplementedError, match=r"4-D inputs.*\(2, 3, 4\)"):
        nn.Upsample(scale_factor=2)(minigan.tensor(np.ones((2, 3, 4))))


def test_upsample_matches_torch():
    torch = pytest.importorskip("torch")
    x = R.standard_normal((2, 3, 5, 7))
    for kw in ({"scale_factor": 1.5}, {"scale_factor": (0.6, 2.2)}, {"size": (11, 4)},
               {"scale_factor": 3}, {"scale_factor": 1.3, "recompute_scale_factor": True}):
        ref = torch.nn.Upsample(**kw)(torch.tensor(x)).numpy()
        np.testing.assert_array_equal(nn.Upsample(**kw)(minigan.tensor(x)).numpy(), ref)


# ----------------------------------------------------------------------------- BatchNorm

def test_batchnorm_cumulative_average_follows_in_place_resets(device):
    """momentum=None reads the batch count from the buffer: zeroing it in place (or through
    reset_running_stats) restarts the average, as in PyTorch."""
    bn = nn.BatchNorm1d(1, momentum=None).double().to(device)
    bn(minigan.tensor(np.array([[0.0], [2.0]]), device=device))
    bn.num_batches_tracked[...] = 0
    bn.running_mean[...] = 0
    bn.running_var[...] = 1
    bn(minigan.tensor(np.array([[10.0], [12.0]]), device=device))
    np.testing.assert_allclose(_np(bn.running_mean), [11.0])
    np.testing.assert_allclose(_np(bn.running_var), [2.0])
    bn.reset_running_stats()
    assert int(bn.num_batches_tracked) == 0 and float(bn.running_var[0]) == 1.0
    for batch in ([[1.0], [3.0]], [[5.0], [9.0]]):
        bn(minigan.tensor(np.array(batch), device=device))
    np.testing.assert_allclose(_np(bn.running_mean), [(2.0 + 7.0) / 2])
    np.testing.assert_allclose(_np(bn.running_var), [(2.0 + 8.0) / 2])
    assert int(bn.num_batches_tracked) == 2


def test_batchnorm_cumulative_average_second_order():
    bn = nn.BatchNorm1d(3, momentum=None).double()
    x = R.standard_normal((5, 3))
    check_backward(bn, [x])
    check_double_backward(bn, [x])


def test_batchnorm_reset_parameters_and_bias_keyword():
    bn = nn.BatchNorm2d(3)
    bn.weight.data[...] = 5
    bn.running_mean[...] = 2
    bn.reset_parameters()
    assert np.all(bn.weight.numpy() == 1) and np.all(bn.running_mean == 0)
    nb = nn.BatchNorm2d(3, bias=False)
    assert nb.bias is None and list(nb.state_dict())[:2] == ["weight", "running_mean"]
    x = R.standard_normal((4, 3, 2, 2))
    y = nb.double()(minigan.tensor(x)).numpy()
    mean, var = x.mean((0, 2, 3), keepdims=True), x.var((0, 2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-10)
    plain = nn.BatchNorm1d(2, momentum=None, track_running_stats=False)
    assert plain(minigan.tensor(np.ones((3, 2), np.float32))).shape == (3, 2)


def test_batchnorm_momentum_none_matches_torch_after_reset():
    torch = pytest.importorskip("torch")
    ours = nn.BatchNorm2d(2, momentum=None).double()
    theirs = torch.nn.BatchNorm2d(2, momentum=None).double()
    batches = [R.standard_normal((3, 2, 2, 2)) * (k + 1) for k in range(4)]
    for k, b in enumerate(batches):
        if k == 2:
            ours.reset_running_stats()
            theirs.reset_running_stats()
        ours(minigan.tensor(b))
        theirs(torch.tensor(b))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name).numpy(),
                                   rtol=1e-13)


# ----------------------------------------------------------------------------- Embedding

def test_embedding_refuses_out_of_range_indices():
    emb = nn.Embedding(4, 2)
    for bad in (-1, 4):
        with pytest.raises(IndexError, match=f"index {bad} is out of range for 4 embeddings"):
            emb(np.array([0, bad]))
    assert emb(np.array([[0, 3]])).shape == (1, 2, 2)
    assert emb(minigan.tensor([1, 2])).shape == (2, 2)


def test_embedding_padding_idx_row_is_zero_and_gets_no_gradient():
    emb = nn.Embedding(4, 3, padding_idx=-1).double()
    assert emb.padding_idx == 3 and np.all(emb.weight.numpy()[3] == 0)
    out = emb(np.array([3, 1, 3]))
    (out * minigan.tensor(R.standard_normal((3, 3)))).sum().backward()
    g = emb.weight.grad.numpy()
    assert np.all(g[3] == 0) and np.any(g[1] != 0)
    with pytest.raises(AssertionError, match="Padding_idx 4 must be within num_embeddings"):
        nn.Embedding(4, 3, padding_idx=4)
    with pytest.raises(NotImplementedError, match="max_norm=1.0"):
        nn.Embedding(4, 3, max_norm=1.0)
    w = minigan.tensor(np.ones((4, 3), np.float32))
    frozen = nn.Embedding(4, 3, _weight=w, _freeze=True)
    assert not frozen.weight.requires_grad and np.all(frozen.weight.numpy() == 1)


def test_embedding_matches_torch_with_padding_idx():
    torch = pytest.importorskip("torch")
    ours = nn.Embedding(5, 3, padding_idx=2).double()
    theirs = torch.nn.Embedding(5, 3, padding_idx=2).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.numpy()))
    idx = np.array([[2, 0], [4, 2]])
    g = R.standard_normal((2, 2, 3))
    y = ours(idx)
    ty = theirs(torch.tensor(idx))
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    y.backward(minigan.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(ours.weight.grad.numpy(), theirs.weight.grad.numpy())


# ----------------------------------------------------------------------------- activations

def test_inplace_flags_are_accepted_and_results_identical():
    x = minigan.tensor(R.standard_normal((3, 4)))
    before = x.numpy().copy()
    np.testing.assert_array_equal(nn.ReLU(True)(x).numpy(), np.maximum(before, 0))
    np.testing.assert_array_equal(nn.LeakyReLU(0.2, inplace=True)(x).numpy(),
                                  np.where(before > 0, before, 0.2 * before))
    d = nn.Dropout(0.5, True).eval()
    assert d(x) is x or np.array_equal(d(x).numpy(), before)
    np.testing.assert_array_equal(x.numpy(), before)  # the input is never overwritten
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)" and repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.LeakyReLU(0.2, True)) == "LeakyReLU(negative_slope=0.2, inplace=True)"
    assert repr(nn.Dropout(0.3)) == "Dropout(p=0.3, inplace=False)"
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)


def test_pooling_arguments_in_torch_positions():
    x = minigan.tensor(np.ones((1, 1, 4, 4), np.float32))
    assert nn.MaxPool2d(2, 2, 0, 1, False, False)(x).shape == (1, 1, 2, 2)
    assert nn.AvgPool2d(2, None, 0, False, True, None)(x).shape == (1, 1, 2, 2)
    with pytest.raises(NotImplementedError, match="ceil_mode=True"):
        nn.MaxPool2d(2, ceil_mode=True)
    with pytest.raises(NotImplementedError, match="ceil_mode=True"):
        nn.AvgPool2d(2, ceil_mode=True)
    with pytest.raises(ValueError, match="divisor_override must not be zero"):
        nn.AvgPool2d(2, divisor_override=0)


def test_pooling_modules_pass_torch_options_through():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 3, 5, 5)).astype(np.float32)
    x = minigan.tensor(a)
    y, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert idx.dtype == np.int64 and y.shape == idx.shape == (2, 3, 2, 2)
    # each index is h * W + w in its input plane, so it reads the maximum back
    flat = a.reshape(2, 3, 25)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.numpy().reshape(2, 3, 4), 2),
                                  y.numpy().reshape(2, 3, 4))
    ones = minigan.tensor(np.ones((1, 1, 4, 4), np.float32))
    out = nn.AvgPool2d(3, 1, 1, count_include_pad=False)(ones).numpy()
    np.testing.assert_allclose(out, np.ones((1, 1, 4, 4)), rtol=1e-6)  # padding not counted
    out = nn.AvgPool2d(2, divisor_override=2)(ones).numpy()
    np.testing.assert_allclose(out, np.full((1, 1, 2, 2), 2.0), rtol=1e-6)
    torch = pytest.importorskip("torch")
    tx = torch.from_numpy(a)
    ty, tidx = torch.nn.MaxPool2d(2, return_indices=True)(tx)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    for kw in ({"count_include_pad": False}, {"divisor_override": 3}):
        np.testing.assert_allclose(nn.AvgPool2d(3, 2, 1, **kw)(x).numpy(),
                                   torch.nn.AvgPool2d(3, 2, 1, **kw)(tx).numpy(), rtol=1e-5)


def test_constructor_signatures_match_torch():
    torch = pytest.importorskip("torch")
    for name in ("Linear", "Conv2d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d", "ReLU",
                 "LeakyReLU", "Dropout", "Softplus", "Embedding", "MaxPool2d", "AvgPool2d",
                 "Upsample", "Flatten", "Unflatten", "ModuleList", "ModuleDict"):
        ours = inspect.signature(getattr(nn, name).__init__).parameters
        theirs = inspect.signature(getattr(torch.nn, name).__init__).parameters
        assert list(ours) == list(theirs), name
        assert [p.default for p in ours.values()] == [p.default for p in theirs.values()], name


def test_pool_stride_defaults_to_the_window_and_reprs_read_as_torchs():
    assert nn.MaxPool2d(3).stride == 3 and nn.AvgPool2d((2, 3)).stride == (2, 3)
    assert nn.MaxPool2d(3, stride=1).stride == 1
    assert repr(nn.MaxPool2d(3)) == ("MaxPool2d(kernel_size=3, stride=3, padding=0, dilation=1, "
                                     "ceil_mode=False)")
    assert repr(nn.AvgPool2d(2)) == "AvgPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    x = minigan.tensor(np.arange(36.0).reshape(1, 1, 6, 6))
    assert nn.MaxPool2d(3)(x).shape == (1, 1, 2, 2)


def test_layers_take_their_input_by_torchs_keyword():
    x = minigan.ones(2, 3, 4)
    assert nn.Linear(4, 5)(input=x).shape == (2, 3, 5)
    assert nn.Flatten()(input=x).shape == (2, 12)
    assert nn.Unflatten(2, (2, 2))(input=x).shape == (2, 3, 2, 2)


def test_batch_norm_names_an_integer_input():
    with pytest.raises(TypeError, match="batch_norm: input must be float32 or float64, got "
                                        "int64"):
        nn.BatchNorm1d(3)(minigan.tensor(np.ones((4, 3), dtype=np.int64)))


@pytest.mark.parametrize("kw, message", [
    (dict(running_mean=np.zeros(3), running_var=None), "running_mean and running_var must both"),
    (dict(running_mean=None, running_var=np.ones(3)), "running_mean and running_var must both"),
    (dict(running_mean=None, running_var=None, eps=0.0),
     "eps must be positive in training, got 0.0"),
])
def test_batch_norm_refuses_half_a_pair_of_buffers_and_a_training_eps_of_zero(kw, message):
    x = minigan.tensor(np.random.default_rng(0).standard_normal((4, 3)))
    with pytest.raises(ValueError, match=message):
        F.batch_norm(x, training=True, **kw)


@pytest.mark.parametrize("size", [3.5, (4, 2.0), True])
def test_interpolate_refuses_a_size_that_is_not_ints(size):
    """torch refuses a float size; 3.5 used to be truncated to 3 without a word."""
    with pytest.raises(TypeError, match="interpolate: size must hold ints, got"):
        F.interpolate(minigan.ones(1, 1, 4, 4), size=size)
    assert F.interpolate(minigan.ones(1, 1, 4, 4), size=np.int64(3)).shape == (1, 1, 3, 3)


@pytest.mark.parametrize("hw, k", [(1, 1), (3, 3), (5, 3)])  # the first two: one dense window
def test_conv_layers_take_an_empty_batch_as_torch(device, hw, k):
    x = minigan.Tensor(backend.to_device(np.zeros((0, 2, hw, hw)), device), requires_grad=True)
    conv, convt = nn.Conv2d(2, 3, k).double().to(device), nn.ConvTranspose2d(2, 3, k).double()
    y = conv(x)
    assert y.shape == (0, 3, hw - k + 1, hw - k + 1)
    y.sum().backward()
    assert x.grad.shape == x.shape and float(np.abs(conv.weight.grad.numpy()).sum()) == 0.0
    assert convt.to(device)(x).shape == (0, 3, hw + k - 1, hw + k - 1)


def test_embedding_from_pretrained_as_torch():
    w = np.arange(6.0).reshape(3, 2)
    e = nn.Embedding.from_pretrained(minigan.tensor(w))
    assert not e.weight.requires_grad and repr(e) == "Embedding(3, 2)"
    np.testing.assert_array_equal(e(minigan.tensor(np.array([2, 0]))).numpy(), w[[2, 0]])
    e = nn.Embedding.from_pretrained(w, freeze=False, padding_idx=1)
    np.testing.assert_array_equal(e.weight.numpy()[1], w[1])  # the padding row kept as given
    e(minigan.tensor(np.array([1, 2]))).sum().backward()
    np.testing.assert_array_equal(e.weight.grad.numpy(), [[0, 0], [0, 0], [1, 1]])
    with pytest.raises(ValueError, match="embeddings must be 2-D"):
        nn.Embedding.from_pretrained(np.zeros(3))
