"""Sequential, ModuleList and ModuleDict: PyTorch's names, so that state-dict keys match."""
from collections import OrderedDict

import numpy as np
import pytest

import minigan
import minigan.nn as nn


def _keys(m):
    return list(m.state_dict())


def test_sequential_slice_keeps_the_original_names():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    tail = s[1:]
    assert isinstance(tail, nn.Sequential) and list(tail._modules) == ["1", "2"]
    assert _keys(tail) == ["2.weight", "2.bias"]
    assert tail[1] is s[2] and tail[-1] is s[2]
    named = nn.Sequential(OrderedDict(a=nn.Linear(2, 2), b=nn.ReLU(), c=nn.Linear(2, 1)))
    assert list(named[0:2]._modules) == ["a", "b"]
    assert _keys(named[::2]) == ["a.weight", "a.bias", "c.weight", "c.bias"]
    x = minigan.tensor(np.ones((1, 2)))
    np.testing.assert_array_equal(named[:2](x).numpy(), named.b(named.a(x)).numpy())


def test_sequential_editing_as_in_torch():
    a, b, c, d = nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 2), nn.Tanh()
    s = nn.Sequential(a, b)
    s.append(c)
    assert list(s._modules) == ["0", "1", "2"] and s[-1] is c
    s.insert(1, d)
    assert [m for m in s] == [a, d, b, c]
    del s[1]
    assert list(s._modules) == ["0", "1", "2"] and [m for m in s] == [a, b, c]
    s[1] = d
    assert s[1] is d and len(s) == 3
    assert s.pop(0) is a and _keys(s) == ["1.weight", "1.bias"]
    s.extend([nn.Identity()])
    assert len(s) == 3
    with pytest.raises(IndexError, match="index 3 is out of range for length 3"):
        s[3]
    with pytest.raises(IndexError, match="index -4 is out of range"):
        s[-4]


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and _keys(layers)[:2] == ["0.weight", "0.bias"]
    layers.append(nn.ReLU())
    layers.extend([nn.Tanh(), nn.Identity()])
    assert [type(m).__name__ for m in layers] == ["Linear"] * 3 + ["ReLU", "Tanh", "Identity"]
    sub = layers[1:3]
    assert isinstance(sub, nn.ModuleList) and list(sub._modules) == ["0", "1"]  # renumbered
    assert sub[0] is layers[1]
    relu = layers[3]
    layers.insert(0, nn.Sigmoid())
    assert isinstance(layers[0], nn.Sigmoid) and layers[4] is relu and len(layers) == 7
    del layers[0]
    assert layers[3] is relu and list(layers._modules) == [str(i) for i in range(6)]
    layers[3] = nn.Softplus()
    assert isinstance(layers[3], nn.Softplus)
    assert isinstance(layers.pop(), nn.Identity) and len(layers) == 5
    layers += nn.ModuleList([nn.ReLU()])
    assert len(layers) == 6
    with pytest.raises(IndexError, match="index 6 is out of range for length 6"):
        layers[6]
    with pytest.raises(TypeError, match="iterable of modules"):
        layers.extend(nn.Linear(1, 1))
    with pytest.raises(NotImplementedError, match="no forward"):
        layers(minigan.tensor(np.ones(2)))


def test_module_list_in_a_model_registers_parameters():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 2)])

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return x

    net = Net()
    assert _keys(net) == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias"]
    assert len(list(net.parameters())) == 4
    assert net(minigan.tensor(np.ones((1, 3), np.float32))).shape == (1, 2)


def test_module_dict():
    d = nn.ModuleDict({"enc": nn.Linear(2, 3), "act": nn.ReLU()})
    d["dec"] = nn.Linear(3, 2)
    assert list(d) == ["enc", "act", "dec"] and list(d.keys()) == ["enc", "act", "dec"]
    assert "act" in d and len(d) == 3
    assert [k for k, _ in d.items()] == list(d.keys()) and d["dec"] is list(d.values())[2]
    assert _keys(d) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    d.update([("act", nn.Tanh()), ("extra", nn.Identity())])
    assert isinstance(d["act"], nn.Tanh) and list(d) == ["enc", "act", "dec", "extra"]
    d.update(OrderedDict(z=nn.Sigmoid()))
    assert isinstance(d.pop("z"), nn.Sigmoid) and "z" not in d
    del d["extra"]
    assert list(d) == ["enc", "act", "dec"]
    with pytest.raises(ValueError, match="element #0 should be a \\(key, module\\) pair"):
        d.update([nn.ReLU()])
    with pytest.raises(KeyError, match="module name can.*contain"):
        d["a.b"] = nn.ReLU()
    with pytest.raises(TypeError, match="is not a Module subclass"):
        d["bad"] = 3
    d.clear()
    assert len(d) == 0


def test_structures_give_torchs_state_dict_keys():
    torch = pytest.importorskip("torch")
    tn = torch.nn

    def build(lib):
        return lib.Sequential(OrderedDict(
            stem=lib.Conv2d(1, 2, 3),
            blocks=lib.ModuleList([lib.Sequential(lib.Linear(2, 2), lib.ReLU()),
                                   lib.BatchNorm1d(2)]),
            heads=lib.ModuleDict({"a": lib.Linear(2, 1), "b": lib.Linear(2, 3)}),
        ))

    ours, theirs = build(nn), build(tn)
    assert _keys(ours) == list(theirs.state_dict())
    assert _keys(ours[1:]) == list(theirs[1:].state_dict())
    assert _keys(ours.blocks[1:]) == list(theirs.blocks[1:].state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    del ours.blocks[0], theirs.blocks[0]
    ours.blocks.insert(0, nn.Identity()), theirs.blocks.insert(0, tn.Identity())
    assert _keys(ours) == list(theirs.state_dict())
    # a slice of a plain Sequential keeps the names too
    ts = tn.Sequential(tn.Linear(2, 3), tn.ReLU(), tn.Linear(3, 1))
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert _keys(s[1:]) == list(ts[1:].state_dict())
    del s[0], ts[0]
    assert _keys(s) == list(ts.state_dict())


# ----- batch norm + activation fused by Sequential

def _bn_act_nets(act):
    minigan.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 20, 3, 1, 1, bias=False), nn.BatchNorm2d(20), act,
                        nn.Conv2d(20, 2, 3, 2, 1))
    twin = nn.Sequential(nn.Conv2d(3, 20, 3, 1, 1, bias=False), nn.BatchNorm2d(20), act,
                         nn.Conv2d(20, 2, 3, 2, 1))
    twin.load_state_dict(net.state_dict())
    return net, twin


@pytest.mark.parametrize("act", ["relu", "leaky"])
def test_sequential_fuses_batch_norm_and_activation_with_the_same_results(device, act):
    """Sequential runs BatchNorm -> (Leaky)ReLU as one op in training; its outputs, gradients
    and running statistics are those of the layers called one by one."""
    from minigan.functional import norm as N
    net, twin = _bn_act_nets(nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2))
    net, twin = net.to(device), twin.to(device)
    x = minigan.randn(4, 3, 6, 6, device=device)
    made = []
    real_init = N.BatchNormLeakyReLUTrain.__init__

    def spy(self, *a):
        made.append(self)
        real_init(self, *a)

    for step in range(2):
        N.BatchNormLeakyReLUTrain.__init__ = spy
        try:
            y = net(x)
        finally:
            N.BatchNormLeakyReLUTrain.__init__ = real_init
        h = x
        for m in twin:  # one by one: no fusion
            h = m(h)
        np.testing.assert_allclose(y.numpy(), h.numpy(), rtol=1e-6, atol=1e-6)
        (y * y).sum().backward()
        (h * h).sum().backward()
    assert len(made) == 2  # one fused op per forward
    for (name, p), q in zip(net.named_parameters(), twin.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=name)
    for a, b in zip(net.buffers(), twin.buffers()):
        np.testing.assert_allclose(minigan.backend.to_numpy(a), minigan.backend.to_numpy(b),
                                   rtol=1e-6, atol=1e-6)


def test_sequential_does_not_fuse_with_hooks_in_eval_or_for_other_layers():
    from minigan.nn.container import _fusable_activation
    net, _ = _bn_act_nets(nn.LeakyReLU(0.2))
    bn, act = net[1], net[2]
    assert _fusable_activation(bn, act) == 0.2
    assert _fusable_activation(bn, nn.ReLU()) == 0.0
    assert _fusable_activation(bn, nn.Tanh()) is None  # batch norm fuses LeakyReLU/ReLU only
    assert _fusable_activation(nn.Linear(3, 2), nn.Tanh()) == "tanh"
    assert _fusable_activation(bn, nn.LeakyReLU(-0.1)) is None  # the mask from y needs s >= 0
    assert _fusable_activation(act, bn) is None
    seen = []
    handle = act.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape))
    assert _fusable_activation(bn, act) is None
    net(minigan.randn(2, 3, 5, 5))
    assert seen == [(2, 20, 5, 5)]  # the hook saw the batch norm's output
    handle.remove()
    assert _fusable_activation(bn, act) == 0.2
    net.eval()
    assert _fusable_activation(bn, act) is None

    class MyBN(nn.BatchNorm2d):
        def forward(self, input):
            return super().forward(input) * 2.0

    assert _fusable_activation(MyBN(20), act) is None


def test_sequential_fuses_linear_and_activation_with_the_same_results(device):
    """An MLP (gan's D shape, small): Linear -> LeakyReLU pairs run fused; outputs and
    gradients equal those of the layers called one by one, and the pairs were fused."""
    from minigan.functional import activation as A
    minigan.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 8), nn.LeakyReLU(0.2), nn.Linear(8, 6), nn.ReLU(),
                        nn.Linear(6, 1)).to(device)
    twin = nn.Sequential(nn.Linear(12, 8), nn.LeakyReLU(0.2), nn.Linear(8, 6), nn.ReLU(),
                         nn.Linear(6, 1)).to(device)
    twin.load_state_dict(net.state_dict())
    x = minigan.randn(5, 12, device=device)
    made = []
    real_init = A.LinearLeakyReLU.__init__

    def spy(self, slope):
        made.append(slope)
        real_init(self, slope)

    A.LinearLeakyReLU.__init__ = spy
    try:
        y = net(x)
    finally:
        A.LinearLeakyReLU.__init__ = real_init
    assert made == [0.2, 0.0]
    h = x
    for m in twin:
        h = m(h)
    np.testing.assert_allclose(y.numpy(), h.numpy(), rtol=1e-6, atol=1e-6)
    y.sum().backward()
    h.sum().backward()
    for p, q in zip(net.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-6)


def _check_fused_tanh(net, x, op, second):
    """Runs ``net`` (its last two layers: a layer and a Tanh) with the fused ``op`` counted,
    then with a forward hook on the Tanh, then with a pre-hook on ``second`` (the layer before
    the Tanh): the op runs in the first run only, the hook sees the layer's output, and the
    outputs and gradients of the fused and unfused runs agree. Returns the shape the hook saw."""
    made = []
    real_forward = op.forward

    def spy(self, *a):
        made.append(1)
        return real_forward(self, *a)

    op.forward = spy
    try:
        y = net(x)
        seen = []
        handle = net[len(net) - 1].register_forward_hook(
            lambda m, inp, out: seen.append(inp[0].shape))
        h = net(x)  # not fused: the hook sees the layer's output
        handle.remove()
        handle = second.register_forward_pre_hook(lambda m, inp: None)
        net(x)
        handle.remove()
    finally:
        op.forward = real_forward
    assert made == [1] and len(seen) == 1
    np.testing.assert_allclose(y.numpy(), h.numpy(), rtol=1e-6, atol=1e-7)
    grads = []
    for out in (y, h):
        net.zero_grad()
        (out * out).sum().backward()
        grads.append([p.grad.numpy() for p in net.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    return seen[0]


def test_sequential_fuses_linear_and_tanh_with_the_same_results(device):
    """G's output layer: Linear -> Tanh runs as one op; outputs and gradients equal those of
    the layers one by one, and a hook on either turns the fusion off."""
    from minigan.functional import activation as A
    minigan.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 8), nn.LeakyReLU(0.2), nn.Linear(8, 6), nn.Tanh())
    net = net.to(device)
    assert _check_fused_tanh(net, minigan.randn(5, 12, device=device), A.LinearTanh,
                             net[2]) == (5, 6)


def test_sequential_hands_a_linear_bias_to_the_batch_norm_after_it(device):
    """gan's G shape: on the GPU each Linear -> BatchNorm1d (-> activation) runs as a
    bias-free Linear and a batch-norm op that adds the bias itself (on the CPU, where no
    launch is saved, the layers run as they are). Outputs, gradients (two backward passes,
    summed into .grad), running statistics and counters equal those of the layers called one
    by one; hooks, evaluation and the cumulative average leave the layers as they are."""
    from minigan.functional import norm as N
    minigan.manual_seed(0)

    def make():
        return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.2),
                             nn.Linear(8, 5), nn.BatchNorm1d(5), nn.ReLU(),
                             nn.Linear(5, 3), nn.BatchNorm1d(3), nn.Linear(3, 2),
                             nn.Tanh()).to(device)

    net, twin = make(), make()
    twin.load_state_dict(net.state_dict())
    x = minigan.randn(7, 6, device=device)
    shifted = []
    real_forward = N.BatchNormTrain.forward

    def spy(self, x, w, b, shift=None):
        shifted.append(shift is not None)
        return real_forward(self, x, w, b, shift)

    N.BatchNormTrain.forward = spy
    try:
        outs = []
        for _ in range(2):
            y = net(x)
            (y * y).sum().backward()
            outs.append(y)
        gpu = device == "cuda"
        assert shifted == [gpu] * 6
        del shifted[:]
        hs = []
        for _ in range(2):
            h = x
            for m in twin:
                h = m(h)
            (h * h).sum().backward()
            hs.append(h)
        assert shifted == [False] * 6
        for y, h in zip(outs, hs):
            np.testing.assert_allclose(y.numpy(), h.numpy(), rtol=1e-6, atol=1e-6)
        for (name, p), q in zip(net.named_parameters(), twin.parameters()):
            # the biases before a batch norm get rounding-level gradients (they sum to 0)
            atol = 1e-5 * max(1.0, float(np.abs(q.grad.numpy()).max()))
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=atol,
                                       err_msg=name)
        for (name, a), b in zip(net.named_buffers(), twin.buffers()):
            np.testing.assert_allclose(minigan.backend.to_numpy(a), minigan.backend.to_numpy(b),
                                       rtol=1e-6, atol=1e-6, err_msg=name)
        # a hook on the Linear or the batch norm, evaluation, the cumulative average: no shift
        del shifted[:]
        handle = net[0].register_forward_hook(lambda m, inp, out: None)
        net(x)
        handle.remove()
        handle = net[4].register_forward_pre_hook(lambda m, inp: None)
        net(x)
        handle.remove()
        assert shifted == [False, gpu, gpu, gpu, False, gpu]
        del shifted[:]
        net[1].momentum = None
        net(x)
        assert shifted == [False, gpu, gpu]  # (the cumulative path runs F.batch_norm)
        net.eval()
        del shifted[:]
        y_eval = net(x)
        h = x
        for m in net:
            h = m(h)
        assert shifted == []
        # (on a GPU the fused Linear -> Tanh's tanh may round apart from the tanh ufunc's)
        np.testing.assert_allclose(y_eval.numpy(), h.numpy(), rtol=1e-6, atol=1e-7)
    finally:
        N.BatchNormTrain.forward = real_forward


def test_sequential_fuses_a_transposed_conv_and_tanh_with_the_same_results(device):
    """A DCGAN generator's output layer: ConvTranspose2d -> Tanh runs as one op; outputs and
    gradients equal those of the layers one by one, and a hook on either turns it off."""
    from minigan.functional import conv as FC
    minigan.manual_seed(0)
    net = nn.Sequential(nn.ConvTranspose2d(4, 3, 4, 2, 1), nn.ReLU(),
                        nn.ConvTranspose2d(3, 2, 4, 2, 1, bias=False), nn.Tanh()).to(device)
    assert _check_fused_tanh(net, minigan.randn(2, 4, 3, 3, device=device),
                             FC.ConvTranspose2dTanh, net[2]) == (2, 2, 12, 12)

    class MyConvT(nn.ConvTranspose2d):
        def forward(self, input, output_size=None):
            return super().forward(input, output_size) * 2.0

    from minigan.nn.container import _fusable_activation
    assert _fusable_activation(MyConvT(2, 2, 3), nn.Tanh()) is None
    assert _fusable_activation(nn.ConvTranspose2d(2, 2, 3), nn.LeakyReLU(0.2)) is None
    assert _fusable_activation(nn.ConvTranspose2d(2, 2, 3), nn.Tanh()) == "tanh"


def test_a_batch_norm_before_a_transposed_conv_writes_channel_major_on_the_gpu(device):
    """A DCGAN generator's first layers: ConvTranspose2d on 1x1 input (an NCHW output) ->
    BatchNorm2d -> ReLU -> ConvTranspose2d. On the GPU the batch norm's output is stored
    channel-major, the (C, N*H*W) matrix the next conv multiplies; on the CPU it keeps its
    layout. Outputs and gradients are those of the layers one by one, bit for bit."""
    from minigan import backend
    minigan.manual_seed(0)

    def make():
        return nn.Sequential(nn.ConvTranspose2d(6, 8, 4, 1, 0, bias=False), nn.BatchNorm2d(8),
                             nn.ReLU(), nn.ConvTranspose2d(8, 3, 4, 2, 1, bias=False),
                             nn.Tanh()).to(device)

    net, twin = make(), make()
    twin.load_state_dict(net.state_dict())
    z = minigan.randn(5, 6, 1, 1, device=device)
    seen = []
    net[3].register_forward_pre_hook(lambda m, inp: seen.append(inp[0].data))
    y = net(z)
    (y * y).sum().backward()
    h = z
    for m in twin:
        h = m(h)
    (h * h).sum().backward()
    x = seen[0]
    n, c, hh, ww = x.shape
    item = x.dtype.itemsize
    channel_major = (hh * ww * item, n * hh * ww * item, ww * item, item)
    assert (x.strides == channel_major) == (device == "cuda")
    np.testing.assert_array_equal(y.numpy(), h.numpy())
    for (name, p), q in zip(net.named_parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy(), err_msg=name)
    for (name, a), b in zip(net.named_buffers(), twin.buffers()):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b), err_msg=name)
    from minigan.nn.container import _batch_norm_into_transposed_conv as into
    gpu_x = z if device == "cuda" else None
    assert not into(net[1], nn.Conv2d(8, 3, 3), z)
    assert not into(net[0], net[3], z)
    if gpu_x is not None:
        assert into(net[1], net[3], gpu_x)
        assert not into(net[1], net[3], minigan.randn(5, 6, device=device))  # not 4-D
    assert not into(net[1], net[3], minigan.randn(5, 6, 1, 1))  # the CPU
