"""The recurrent layers of minigan/nn/rnn.py: values against a NumPy recurrence written here,
shapes (batch_first, bidirectional, stacked, unbatched, proj_size), first- and second-order
float64 gradient checks, dropout between layers, torch's parameter names and reprs, errors;
on the GPU through the `device` fixture; against torch where it is installed."""
import warnings
from collections import namedtuple

import numpy as np
import pytest

import minigan
from minigan import backend
from minigan import functional as F
from minigan.nn import rnn as R
from minigan.testing import GradientCheckError, check_backward, check_double_backward

RNG = np.random.default_rng(7)


def normal(*shape):
    return RNG.standard_normal(shape)


def _np(a):
    return backend.to_numpy(a.data if isinstance(a, minigan.Tensor) else a)


def _t(a, device="cpu", grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a), device), requires_grad=grad)


def close(a, b, tol=1e-12):
    a = _np(a)
    assert a.shape == np.shape(b), (a.shape, np.shape(b))
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- the reference

def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def ref_cell(mode, x, h, c, p):
    """One step of torch's documented cell equations (the GRU in its textbook form)."""
    gi = x @ p["w_ih"].T + (p["b_ih"] if p.get("b_ih") is not None else 0.0)
    gh = h @ p["w_hh"].T + (p["b_hh"] if p.get("b_hh") is not None else 0.0)
    if mode == "RNN_TANH":
        return np.tanh(gi + gh), None
    if mode == "RNN_RELU":
        return np.maximum(gi + gh, 0.0), None
    if mode == "LSTM":
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        if p.get("w_hr") is not None:
            h = h @ p["w_hr"].T
        return h, c
    ir, iz, in_ = np.split(gi, 3, axis=-1)
    hr, hz, hn = np.split(gh, 3, axis=-1)
    r, z = sigmoid(ir + hr), sigmoid(iz + hz)
    n = np.tanh(in_ + r * hn)
    return (1.0 - z) * n + z * h, None


def ref_params(state, layer, suffix):
    get = {k: state.get(f"{name}_l{layer}{suffix}") for k, name in
           (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"),
            ("b_hh", "bias_hh"), ("w_hr", "weight_hr"))}
    return get


def ref_rnn(mode, state, x, h0, c0, num_layers, bidirectional):
    """The stacked recurrence on time-major x (T, N, I), loops everywhere."""
    D = 2 if bidirectional else 1
    T = x.shape[0]
    h_n, c_n = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            k = layer * D + d
            p = ref_params(state, layer, "_reverse" if d else "")
            h, c = h0[k], (c0[k] if c0 is not None else None)
            ys = np.zeros((T,) + h.shape)
            for t in (range(T) if d == 0 else reversed(range(T))):
                h, c = ref_cell(mode, x[t], h, c, p)
                ys[t] = h
            outs.append(ys)
            h_n.append(h)
            c_n.append(c)
        x = np.concatenate(outs, axis=-1)
    return x, np.stack(h_n), (np.stack(c_n) if mode == "LSTM" else None)


def np_state(m):
    return {k: _np(v) for k, v in m.state_dict().items()}


def make(name, *args, **kwargs):
    kwargs.setdefault("dtype", np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (dropout with one layer)
        return getattr(R, name)(*args, **kwargs)


def run_reference(m, x, hx):
    """The reference for module m on input x (as given to m) and hx (arrays or None)."""
    mode = m.mode
    batched = x.ndim == 3
    xt = x if not batched else (x.transpose(1, 0, 2) if m.batch_first else x)
    if not batched:
        xt = xt[:, None]
    D = 2 if m.bidirectional else 1
    N = xt.shape[1]
    h_size = (m.num_layers * D, N, m.proj_size or m.hidden_size)
    c_size = (m.num_layers * D, N, m.hidden_size)
    if hx is None:
        h0, c0 = np.zeros(h_size), (np.zeros(c_size) if mode == "LSTM" else None)
    else:
        h0, c0 = (hx if mode == "LSTM" else (hx, None))
        if not batched:
            h0 = h0[:, None]
            c0 = None if c0 is None else c0[:, None]
    out, h_n, c_n = ref_rnn(mode, np_state(m), xt, h0, c0, m.num_layers, m.bidirectional)
    if not batched:
        return out[:, 0], h_n[:, 0], (None if c_n is None else c_n[:, 0])
    if m.batch_first:
        out = out.transpose(1, 0, 2)
    return out, h_n, c_n


# (class, args, kwargs, input shape, whether to pass an initial state)
CONFIGS = [
    ("RNN", (3, 4), {}, (5, 2, 3), False),
    ("RNN", (3, 4), dict(nonlinearity="relu", num_layers=2), (5, 2, 3), True),
    ("RNN", (3, 4, 2, "relu"), dict(bidirectional=True, batch_first=True), (2, 5, 3), True),
    ("LSTM", (3, 4), {}, (5, 2, 3), True),
    ("LSTM", (3, 4), dict(num_layers=2, bidirectional=True), (4, 3, 3), False),
    ("LSTM", (3, 5), dict(proj_size=2, num_layers=2, bidirectional=True, batch_first=True),
     (2, 4, 3), True),
    ("LSTM", (3, 4), dict(bias=False, proj_size=3), (4, 3), True),
    ("GRU", (3, 4), {}, (5, 2, 3), True),
    ("GRU", (3, 4), dict(num_layers=3, bidirectional=True, bias=False), (4, 2, 3), False),
    ("GRU", (3, 4), dict(batch_first=True, bidirectional=True), (4, 3), True),
    ("RNN", (3, 4), dict(num_layers=2), (4, 3), True),
]
IDS = [f"{c[0]}-{i}" for i, c in enumerate(CONFIGS)]


def initial_state(m, x_shape):
    batched = len(x_shape) == 3
    N = (x_shape[0] if m.batch_first else x_shape[1]) if batched else None
    D = 2 if m.bidirectional else 1
    lead = (m.num_layers * D,) + ((N,) if batched else ())
    h = normal(*lead, m.proj_size or m.hidden_size)
    if m.mode == "LSTM":
        return h, normal(*lead, m.hidden_size)
    return h


def on_device(hx, device):
    if hx is None:
        return None
    if isinstance(hx, tuple):
        return tuple(_t(a, device) for a in hx)
    return _t(hx, device)


@pytest.mark.parametrize("name,args,kwargs,shape,with_hx", CONFIGS, ids=IDS)
def test_forward_matches_the_numpy_recurrence(device, name, args, kwargs, shape, with_hx):
    m = make(name, *args, **kwargs).to(device)
    x = normal(*shape)
    hx = initial_state(m, shape) if with_hx else None
    out, hidden = m(_t(x, device), on_device(hx, device))
    want_out, want_h, want_c = run_reference(m, x, hx)
    close(out, want_out)
    if name == "LSTM":
        close(hidden[0], want_h)
        close(hidden[1], want_c)
    else:
        close(hidden, want_h)


def test_float32_forward_is_close_to_the_reference(device):
    m = R.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=4).to(device)
    x = normal(5, 2, 3).astype(np.float32)
    out, (h, c) = m(_t(x, device))
    assert out.dtype == np.float32 and h.dtype == np.float32
    want_out, want_h, want_c = run_reference(m, x.astype(np.float64), None)
    close(out, want_out, 1e-5)
    close(c, want_c, 1e-5)


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_output_and_state_shapes(name, batch_first, bidirectional):
    L, N, H_in, H, layers = 6, 3, 4, 5, 3
    kw = dict(num_layers=layers, batch_first=batch_first, bidirectional=bidirectional)
    m = make(name, H_in, H, **kw)
    D = 2 if bidirectional else 1
    x = normal(N, L, H_in) if batch_first else normal(L, N, H_in)
    out, hidden = m(_t(x))
    assert out.shape == ((N, L, D * H) if batch_first else (L, N, D * H))
    states = hidden if name == "LSTM" else (hidden,)
    for s in states:
        assert s.shape == (D * layers, N, H)  # never batch first
    out1, hidden1 = m(_t(normal(L, H_in)))  # unbatched
    assert out1.shape == (L, D * H)
    for s in (hidden1 if name == "LSTM" else (hidden1,)):
        assert s.shape == (D * layers, H)


def test_proj_size_shapes_and_parameters():
    m = make("LSTM", 4, 6, num_layers=2, proj_size=3, bidirectional=True)
    out, (h, c) = m(_t(normal(5, 2, 4)))
    assert out.shape == (5, 2, 6)
    assert h.shape == (4, 2, 3) and c.shape == (4, 2, 6)
    assert m.weight_ih_l0.shape == (24, 4) and m.weight_hh_l0.shape == (24, 3)
    assert m.weight_hr_l0.shape == (3, 6) and m.weight_ih_l1.shape == (24, 6)
    out, (h, c) = m(_t(normal(5, 4)))
    assert out.shape == (5, 6) and h.shape == (4, 3) and c.shape == (4, 6)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_unbatched_equals_a_batch_of_one(name):
    m = make(name, 3, 4, num_layers=2, bidirectional=True, batch_first=True)
    x = normal(5, 3)
    hx = initial_state(m, (5, 3))
    out, hidden = m(_t(x), on_device(hx, "cpu"))
    hx1 = tuple(a[:, None] for a in hx) if name == "LSTM" else hx[:, None]
    out1, hidden1 = m(_t(x[None]), on_device(hx1, "cpu"))
    close(out, _np(out1)[0], 0)
    for a, b in zip(hidden if name == "LSTM" else (hidden,),
                    hidden1 if name == "LSTM" else (hidden1,)):
        close(a, _np(b)[:, 0], 0)


def test_the_last_output_of_each_direction_is_in_h_n():
    m = make("GRU", 3, 4, num_layers=2, bidirectional=True)
    out, h = m(_t(normal(5, 2, 3)))
    close(h[2], _np(out)[-1, :, :4], 0)  # top layer, forward: after the last step
    close(h[3], _np(out)[0, :, 4:], 0)  # top layer, reverse: after the first step


def test_the_input_projection_is_one_matmul_per_layer_and_direction(monkeypatch):
    calls = []
    linear = F.linear

    def counting(x, w, b=None):
        calls.append(x.ndim)
        return linear(x, w, b)

    monkeypatch.setattr(F, "linear", counting)
    m = make("LSTM", 3, 4, num_layers=3, bidirectional=True)
    m(_t(normal(7, 2, 3)))
    assert calls.count(3) == 6  # 3 layers x 2 directions, each over all 7 steps at once
    assert calls.count(2) == 6 * 7  # the recurrence: one per step


# ----------------------------------------------------------------------------- cells

CELLS = [("RNNCell", {}, "RNN_TANH"), ("RNNCell", dict(nonlinearity="relu"), "RNN_RELU"),
         ("LSTMCell", {}, "LSTM"), ("GRUCell", {}, "GRU"), ("GRUCell", dict(bias=False), "GRU"),
         ("LSTMCell", dict(bias=False), "LSTM")]


@pytest.mark.parametrize("name,kwargs,mode", CELLS)
def test_cells_match_the_reference(device, name, kwargs, mode):
    m = make(name, 3, 4, **kwargs).to(device)
    p = {"w_ih": _np(m.weight_ih), "w_hh": _np(m.weight_hh),
         "b_ih": None if m.bias_ih is None else _np(m.bias_ih),
         "b_hh": None if m.bias_hh is None else _np(m.bias_hh)}
    x, h, c = normal(2, 3), normal(2, 4), normal(2, 4)
    want_h, want_c = ref_cell(mode, x, h, c, p)
    if mode == "LSTM":
        got_h, got_c = m(_t(x, device), (_t(h, device), _t(c, device)))
        close(got_c, want_c)
        u_h, u_c = m(_t(x[0], device), (_t(h[0], device), _t(c[0], device)))  # unbatched
        close(u_h, want_h[0])
        close(u_c, want_c[0])
        z_h, z_c = m(_t(x, device))
        close(z_h, ref_cell(mode, x, 0 * h, 0 * c, p)[0])
    else:
        got_h = m(_t(x, device), _t(h, device))
        close(m(_t(x[0], device), _t(h[0], device)), want_h[0])
        close(m(_t(x, device)), ref_cell(mode, x, 0 * h, None, p)[0])
    close(got_h, want_h)


@pytest.mark.parametrize("layer,cell", [("LSTM", "LSTMCell"), ("GRU", "GRUCell"),
                                        ("RNN", "RNNCell")])
def test_a_cell_loop_equals_the_layer(layer, cell):
    full = make(layer, 3, 4)
    one = make(cell, 3, 4)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(one, name).data[...] = getattr(full, name + "_l0").data
    x = normal(5, 2, 3)
    out, _ = full(_t(x))
    state = None
    for t in range(5):
        state = one(_t(x[t]), state)
        close(out[t], _np(state[0] if layer == "LSTM" else state))


# ----------------------------------------------------------------------------- gradients

def _functional(m, names):
    """m's forward as fn(x, *states, *params), the parameters swapped in as plain tensors."""
    lstm = m.mode == "LSTM"

    def fn(x, *rest):
        n_states = 2 if lstm else 1
        states, ws = rest[:n_states], rest[n_states:]
        saved = dict(m._parameters)
        try:
            for name, w in zip(names, ws):
                m._parameters[name] = w
            out, hidden = m(x, tuple(states) if lstm else states[0])
        finally:
            m._parameters.update(saved)
        return (out,) + (tuple(hidden) if lstm else (hidden,))
    return fn


GRAD_CONFIGS = [
    ("RNN", (2, 3), dict(num_layers=2, bidirectional=True)),
    ("RNN", (2, 3), dict(nonlinearity="relu", batch_first=True)),
    ("LSTM", (2, 4), dict(num_layers=2, bidirectional=True, proj_size=2)),
    ("LSTM", (2, 3), dict(bias=False)),
    ("GRU", (2, 3), dict(num_layers=2, bidirectional=True)),
]


def _grad_case(name, args, kwargs, device):
    m = make(name, *args, **kwargs).to(device)
    names = list(m._parameters)
    T, N = 3, 2
    x = normal(N, T, args[0]) if m.batch_first else normal(T, N, args[0])
    hx = initial_state(m, x.shape)
    states = list(hx) if m.mode == "LSTM" else [hx]
    inputs = [backend.to_device(a, device) for a in [x] + states]
    inputs += [p.data.copy() for p in m._parameters.values()]
    return _functional(m, names), inputs


@pytest.mark.parametrize("name,args,kwargs", GRAD_CONFIGS, ids=[c[0] for c in GRAD_CONFIGS])
def test_first_order_gradients(device, name, args, kwargs):
    fn, inputs = _grad_case(name, args, kwargs, device)
    check_backward(fn, inputs, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("name,args,kwargs", GRAD_CONFIGS, ids=[c[0] for c in GRAD_CONFIGS])
def test_second_order_gradients(device, name, args, kwargs):
    fn, inputs = _grad_case(name, args, kwargs, device)
    check_double_backward(fn, inputs, atol=1e-7, rtol=1e-5, n_directions=2)


@pytest.mark.parametrize("name,kwargs", [("LSTMCell", {}), ("GRUCell", {}),
                                         ("RNNCell", dict(nonlinearity="tanh"))])
def test_cell_gradients_first_and_second_order(device, name, kwargs):
    m = make(name, 2, 3, **kwargs).to(device)
    names = list(m._parameters)
    lstm = name == "LSTMCell"

    def fn(x, h, c, *ws):
        saved = dict(m._parameters)
        try:
            m._parameters.update(zip(names, ws))
            out = m(x, (h, c) if lstm else h)
        finally:
            m._parameters.update(saved)
        return out if lstm else (out, c * 0)

    inputs = [backend.to_device(normal(*s), device) for s in ((2, 2), (2, 3), (2, 3))]
    inputs += [p.data.copy() for p in m._parameters.values()]
    check_backward(fn, inputs, atol=1e-8, rtol=1e-6)
    check_double_backward(fn, inputs, atol=1e-7, rtol=1e-5, n_directions=2)


def test_the_gradient_check_catches_a_wrong_time_step_gradient(monkeypatch):
    """The slices of all time steps are one op whose backward stacks the step gradients; a
    backward that puts them in the wrong order must fail the checker."""
    monkeypatch.setattr(R._Unstack, "backward",
                        lambda self, *gys: F.stack(gys[::-1], self.axis))
    fn, inputs = _grad_case("GRU", (2, 3), {}, "cpu")
    with pytest.raises(GradientCheckError):
        check_backward(fn, inputs, atol=1e-8, rtol=1e-6)


def test_backward_fills_every_parameter_gradient():
    m = make("LSTM", 3, 4, num_layers=2, bidirectional=True, proj_size=2)
    out, (h, c) = m(_t(normal(4, 2, 3)))
    ((out * out).sum() + h.sum() + c.sum()).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert np.abs(_np(p.grad)).sum() > 0, name


# ----------------------------------------------------------------------------- dropout

def test_dropout_goes_between_layers_in_training_only():
    m = make("GRU", 3, 4, num_layers=2, dropout=1.0, bidirectional=True)
    x, h0 = normal(5, 2, 3), normal(4, 2, 4)
    m.eval()
    out_eval, h_eval = m(_t(x), _t(h0))
    want_out, want_h, _ = run_reference(m, x, h0)
    close(out_eval, want_out)  # eval: no dropout at all
    m.train()
    out, h = m(_t(x), _t(h0))
    # layer 0 is untouched (its state h_n[0:2] too); layer 1 sees an all-zero input
    close(h[:2], want_h[:2])
    state = np_state(m)
    layer1 = {k.replace("_l1", "_l0"): v for k, v in state.items() if "_l1" in k}
    want1, want_h1, _ = ref_rnn("GRU", layer1, np.zeros((5, 2, 8)), h0[2:], None, 1, True)
    close(out, want1)
    close(h[2:], want_h1)


def test_dropout_is_not_applied_after_the_last_layer():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        m = R.LSTM(3, 4, dropout=0.9, dtype=np.float64)
    x = normal(4, 2, 3)
    out, _ = m.train()(_t(x))
    close(out, run_reference(m, x, None)[0])


def test_dropout_in_training_scales_the_kept_inputs():
    m = make("RNN", 3, 4, num_layers=2, dropout=0.5)
    x = normal(6, 5, 3)
    outs = [_np(m(_t(x))[0]) for _ in range(3)]
    assert not np.allclose(outs[0], outs[1])  # a fresh mask each call
    m.eval()
    close(m(_t(x))[0], run_reference(m, x, None)[0])


# ----------------------------------------------------------------------------- parameters

def test_state_dict_keys_are_torchs():
    lstm = R.LSTM(3, 6, num_layers=2, bidirectional=True, proj_size=2)
    assert list(lstm.state_dict()) == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0",
        "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
        "bias_hh_l0_reverse", "weight_hr_l0_reverse",
        "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1", "weight_hr_l1",
        "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse",
        "bias_hh_l1_reverse", "weight_hr_l1_reverse"]
    shapes = {k: tuple(v.shape) for k, v in lstm.state_dict().items()}
    assert shapes["weight_ih_l0"] == (24, 3) and shapes["weight_hh_l0"] == (24, 2)
    assert shapes["weight_ih_l1_reverse"] == (24, 4) and shapes["weight_hr_l1"] == (2, 6)
    assert shapes["bias_hh_l1"] == (24,)
    gru = R.GRU(3, 5, num_layers=2, bias=False)
    assert list(gru.state_dict()) == ["weight_ih_l0", "weight_hh_l0", "weight_ih_l1",
                                      "weight_hh_l1"]
    assert gru.weight_ih_l1.shape == (15, 5)
    rnn = R.RNN(3, 5, bidirectional=True)
    assert list(rnn.state_dict()) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                      "bias_hh_l0", "weight_ih_l0_reverse",
                                      "weight_hh_l0_reverse", "bias_ih_l0_reverse",
                                      "bias_hh_l0_reverse"]
    assert list(R.LSTMCell(3, 4).state_dict()) == ["weight_ih", "weight_hh", "bias_ih",
                                                   "bias_hh"]
    assert R.LSTMCell(3, 4).weight_hh.shape == (16, 4)
    cell = R.GRUCell(3, 4, bias=False)
    assert list(cell.state_dict()) == ["weight_ih", "weight_hh"]
    assert cell.bias_ih is None and cell.bias_hh is None
    assert list(R.LSTM(3, 6, bias=False, proj_size=2).state_dict()) == [
        "weight_ih_l0", "weight_hh_l0", "weight_hr_l0"]


def test_all_weights_and_flatten_parameters():
    m = R.LSTM(3, 4, num_layers=2, bidirectional=True)
    assert m.flatten_parameters() is None
    groups = m.all_weights
    assert len(groups) == 4 and all(len(g) == 4 for g in groups)
    assert groups[1][0] is m.weight_ih_l0_reverse and groups[2][3] is m.bias_hh_l1
    assert [p for g in groups for p in g] == list(m.parameters())
    m.double()  # the groups follow the parameters that .to() put in place
    assert m.all_weights[0][0] is m.weight_ih_l0 and m.all_weights[0][0].dtype == np.float64


def test_initialisation_is_uniform_in_one_over_root_hidden():
    minigan.manual_seed(3)
    m = R.GRU(5, 16, num_layers=2, bidirectional=True)
    minigan.manual_seed(3)
    again = R.GRU(5, 16, num_layers=2, bidirectional=True)
    for (name, p), q in zip(m.named_parameters(), again.parameters()):
        a = _np(p)
        assert a.dtype == np.float32
        assert np.abs(a).max() <= 0.25 and np.abs(a).max() > 0.2, name  # 1/sqrt(16)
        assert a.std() > 0.1, name
        close(a, _np(q), 0)
    cell = R.LSTMCell(3, 100)
    assert 0.09 < np.abs(_np(cell.bias_hh)).max() <= 0.1


@pytest.mark.parametrize("module,want", [
    (lambda: R.LSTM(10, 20), "LSTM(10, 20)"),
    (lambda: R.LSTM(10, 20, num_layers=2, batch_first=True, dropout=0.5, bidirectional=True,
                    proj_size=5),
     "LSTM(10, 20, proj_size=5, num_layers=2, batch_first=True, dropout=0.5, "
     "bidirectional=True)"),
    (lambda: R.GRU(3, 4, bias=False), "GRU(3, 4, bias=False)"),
    (lambda: R.RNN(3, 4, 2, "relu"), "RNN(3, 4, num_layers=2)"),
    (lambda: R.RNNCell(3, 4, nonlinearity="relu"), "RNNCell(3, 4, nonlinearity=relu)"),
    (lambda: R.LSTMCell(3, 4, bias=False), "LSTMCell(3, 4, bias=False)"),
    (lambda: R.GRUCell(3, 4), "GRUCell(3, 4)"),
])
def test_reprs_are_torchs(module, want):
    assert repr(module()) == want


def test_constructor_defaults_and_attributes():
    m = R.RNN(3, 4)
    assert (m.mode, m.nonlinearity, m.num_layers, m.bias, m.batch_first, m.dropout,
            m.bidirectional, m.proj_size) == ("RNN_TANH", "tanh", 1, True, False, 0.0, False, 0)
    assert R.RNN(3, 4, nonlinearity="relu").mode == "RNN_RELU"
    assert R.LSTM(3, 4, 2, False, True, 0.25, True, 1).proj_size == 1  # torch's positions
    assert R.RNNCell(3, 4).nonlinearity == "tanh"
    base = R.RNNBase("GRU", 3, 4)
    out, h = base(_t(normal(2, 1, 3).astype(np.float32)))
    assert out.shape == (2, 1, 4)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("build,exc,match", [
    (lambda: R.RNN(3, 4, nonlinearity="sigmoid"), ValueError, "Unknown nonlinearity 'sigmoid'"),
    (lambda: R.RNNCell(3, 4, nonlinearity="gelu"), ValueError, "Unknown nonlinearity 'gelu'"),
    (lambda: R.GRU(3, 4, proj_size=2), ValueError, "only supported for LSTM"),
    (lambda: R.RNN(3, 4, proj_size=2), ValueError, "only supported for LSTM"),
    (lambda: R.LSTM(3, 4, proj_size=4), ValueError, "proj_size has to be smaller than "
                                                    "hidden_size"),
    (lambda: R.LSTM(3, 4, proj_size=-1), ValueError, "positive integer or zero"),
    (lambda: R.LSTM(3, 4, dropout=1.5), ValueError, r"dropout should be a number in range"),
    (lambda: R.LSTM(3, 4, dropout=True), ValueError, r"dropout should be a number in range"),
    (lambda: R.LSTM(3, 0), ValueError, "hidden_size must be greater than zero"),
    (lambda: R.LSTM(0, 3), ValueError, "input_size must be greater than zero"),
    (lambda: R.LSTM(3, 4, num_layers=0), ValueError, "num_layers must be greater than zero"),
    (lambda: R.LSTM(3, 4.0), TypeError, "hidden_size should be of type int"),
    (lambda: R.LSTM(3, 4, bias=1), TypeError, "bias should be of type bool"),
    (lambda: R.LSTM(3, 4, batch_first="yes"), TypeError, "batch_first should be of type bool"),
    (lambda: R.RNNBase("LSTMX", 3, 4), ValueError, "Unrecognized RNN mode"),
    (lambda: R.GRUCell(3, -1), ValueError, "hidden_size must be greater than zero"),
])
def test_constructor_errors(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def test_forward_errors_name_the_shapes():
    lstm = make("LSTM", 3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"Expected input to be 2D or 3D, got 4D.*\(1, 2, 3, 3\)"):
        lstm(_t(normal(1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"input_size. Expected 3, got 5 \(input shape "
                                         r"\(4, 2, 5\)\)"):
        lstm(_t(normal(4, 2, 5)))
    with pytest.raises(ValueError, match=r"hidden\[0\] size \(2, 2, 4\), got \(2, 3, 4\)"):
        lstm(_t(normal(4, 2, 3)), (_t(normal(2, 3, 4)), _t(normal(2, 2, 4))))
    with pytest.raises(ValueError, match=r"hidden\[1\] size \(2, 2, 4\), got \(1, 2, 4\)"):
        lstm(_t(normal(4, 2, 3)), (_t(normal(2, 2, 4)), _t(normal(1, 2, 4))))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        lstm(_t(normal(4, 2, 3)), _t(normal(2, 2, 4)))
    with pytest.raises(ValueError, match=r"unbatched 2-D input, hidden\[0\] should also be 2-D"):
        lstm(_t(normal(4, 3)), (_t(normal(2, 1, 4)), _t(normal(2, 1, 4))))
    gru = make("GRU", 3, 4, bidirectional=True)
    with pytest.raises(ValueError, match=r"GRU: Expected hidden size \(2, 2, 4\), got "
                                         r"\(1, 2, 4\)"):
        gru(_t(normal(4, 2, 3)), _t(normal(1, 2, 4)))
    with pytest.raises(ValueError, match=r"batched 3-D input, hidden should also be 3-D"):
        gru(_t(normal(4, 2, 3)), _t(normal(2, 4)))
    with pytest.raises(TypeError, match="hidden must be a tensor"):
        gru(_t(normal(4, 2, 3)), (_t(normal(2, 2, 4)),))
    with pytest.raises(ValueError, match=r"RNN input dtype \(float32\) does not match weight "
                                         r"dtype \(float64\)"):
        make("RNN", 3, 4)(_t(normal(4, 2, 3).astype(np.float32)))
    with pytest.raises(ValueError, match="sequence length to be larger than 0"):
        gru(_t(np.zeros((0, 2, 3))))


def test_packed_sequences_are_refused():
    PackedSequence = namedtuple("PackedSequence", "data batch_sizes sorted_indices "
                                                  "unsorted_indices")
    packed = PackedSequence(normal(5, 3), np.array([2, 2, 1]), None, None)
    for m in (make("LSTM", 3, 4), make("GRU", 3, 4), make("RNN", 3, 4)):
        with pytest.raises(TypeError, match="PackedSequence input is not supported"):
            m(packed)
    with pytest.raises(TypeError, match="PackedSequence"):
        make("GRUCell", 3, 4)(packed)


def test_cell_errors_name_the_shapes():
    cell = make("LSTMCell", 3, 4)
    with pytest.raises(ValueError, match=r"LSTMCell: Expected input to be 1D or 2D, got 3D"):
        cell(_t(normal(1, 2, 3)))
    with pytest.raises(ValueError, match=r"inconsistent input_size: got 5, expected 3"):
        cell(_t(normal(2, 5)))
    with pytest.raises(ValueError, match=r"Expected hx\[1\] of shape \(2, 4\), got \(3, 4\)"):
        cell(_t(normal(2, 3)), (_t(normal(2, 4)), _t(normal(3, 4))))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h, c\)"):
        cell(_t(normal(2, 3)), _t(normal(2, 4)))
    gru = make("GRUCell", 3, 4)
    with pytest.raises(ValueError, match=r"GRUCell: Expected hidden to be 1D or 2D, got 3D"):
        gru(_t(normal(2, 3)), _t(normal(1, 2, 4)))
    with pytest.raises(ValueError, match=r"hidden of shape \(4,\) does not go with a batched"):
        gru(_t(normal(2, 3)), _t(normal(4)))
    with pytest.raises(ValueError, match=r"Expected hidden of shape \(2, 4\), got \(2, 5\)"):
        gru(_t(normal(2, 3)), _t(normal(2, 5)))


# ----------------------------------------------------------------------------- the GPU

def test_a_gpu_run_matches_the_cpu(device):
    m = make("LSTM", 3, 5, num_layers=2, bidirectional=True, proj_size=2, batch_first=True)
    x = normal(2, 4, 3)
    want, (wh, wc) = m(_t(x))
    m.to(device)
    xd = _t(x, device, grad=True)
    out, (h, c) = m(xd)
    assert out.device == device and h.device == device
    close(out, _np(want))
    close(c, _np(wc))
    (out.sum() + h.sum()).backward()
    assert xd.grad.device == device and m.weight_hr_l1.grad.device == device


def test_a_module_on_another_device_is_refused(device):
    if device == "cpu":
        pytest.skip("needs the cuda case")
    m = make("GRU", 3, 4)
    with pytest.raises(backend.DeviceError, match=r"input on cuda\S* but the weights on cpu"):
        m(_t(normal(4, 2, 3), device))


# ----------------------------------------------------------------------------- torch

def _torch():
    return pytest.importorskip("torch")


TORCH_CONFIGS = [
    ("RNN", (3, 4), dict(num_layers=2, bidirectional=True), (5, 2, 3)),
    ("RNN", (3, 4), dict(nonlinearity="relu", batch_first=True), (2, 5, 3)),
    ("LSTM", (3, 5), dict(num_layers=2, bidirectional=True, proj_size=2), (4, 2, 3)),
    ("LSTM", (3, 4), dict(batch_first=True, bias=False), (2, 4, 3)),
    ("LSTM", (3, 4), dict(num_layers=2), (4, 3)),
    ("GRU", (3, 4), dict(num_layers=2, bidirectional=True, batch_first=True), (2, 5, 3)),
    ("GRU", (3, 4), {}, (4, 3)),
]


def _copy_from_torch(m, t):
    assert list(m.state_dict()) == list(t.state_dict())
    for k, v in t.state_dict().items():
        assert tuple(m.state_dict()[k].shape) == tuple(v.shape), k
    m.load_state_dict(t.state_dict())


@pytest.mark.parametrize("name,args,kwargs,shape", TORCH_CONFIGS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TORCH_CONFIGS)])
@pytest.mark.parametrize("with_hx", [False, True])
def test_layers_against_torch(name, args, kwargs, shape, with_hx):
    torch = _torch()
    t = getattr(torch.nn, name)(*args, **kwargs).double()
    m = make(name, *args, **kwargs)
    assert repr(m) == repr(t)
    _copy_from_torch(m, t)
    x = normal(*shape)
    hx = initial_state(m, shape) if with_hx else None
    tx = torch.tensor(x, requires_grad=True)
    mx = _t(x, grad=True)
    if hx is None:
        t_hx = m_hx = None
    elif name == "LSTM":
        t_hx = tuple(torch.tensor(a, requires_grad=True) for a in hx)
        m_hx = tuple(_t(a, grad=True) for a in hx)
    else:
        t_hx, m_hx = torch.tensor(hx, requires_grad=True), _t(hx, grad=True)
    t_out, t_hidden = t(tx, t_hx)
    m_out, m_hidden = m(mx, m_hx)
    t_states = list(t_hidden) if name == "LSTM" else [t_hidden]
    m_states = list(m_hidden) if name == "LSTM" else [m_hidden]
    close(m_out, t_out.detach().numpy())
    for a, b in zip(m_states, t_states):
        close(a, b.detach().numpy())
    w_out = normal(*m_out.shape)
    w_states = [normal(*s.shape) for s in m_states]
    ((t_out * torch.tensor(w_out)).sum()
     + sum((s ** 2 * torch.tensor(w)).sum() for s, w in zip(t_states, w_states))).backward()
    ((m_out * _t(w_out)).sum()
     + sum((s ** 2 * _t(w)).sum() for s, w in zip(m_states, w_states))).backward()
    close(mx.grad, tx.grad.numpy())
    if hx is not None:
        for a, b in zip(m_hx if name == "LSTM" else [m_hx], t_hx if name == "LSTM" else [t_hx]):
            close(a.grad, b.grad.numpy())
    for (k, p), (k2, q) in zip(m.named_parameters(), t.named_parameters()):
        assert k == k2
        close(p.grad, q.grad.numpy())


@pytest.mark.parametrize("name,kwargs", [("RNNCell", dict(nonlinearity="relu")),
                                         ("RNNCell", {}), ("LSTMCell", {}), ("GRUCell", {}),
                                         ("GRUCell", dict(bias=False))])
def test_cells_against_torch(name, kwargs):
    torch = _torch()
    t = getattr(torch.nn, name)(3, 4, **kwargs).double()
    m = make(name, 3, 4, **kwargs)
    assert repr(m) == repr(t)
    _copy_from_torch(m, t)
    x, h, c = normal(2, 3), normal(2, 4), normal(2, 4)
    lstm = name == "LSTMCell"
    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    mx, mh, mc = (_t(a, grad=True) for a in (x, h, c))
    t_out = t(tx, (th, tc)) if lstm else (t(tx, th),)
    m_out = m(mx, (mh, mc)) if lstm else (m(mx, mh),)
    for a, b in zip(m_out, t_out):
        close(a, b.detach().numpy())
    sum((o ** 2).sum() for o in t_out).backward()
    sum((o ** 2).sum() for o in m_out).backward()
    close(mx.grad, tx.grad.numpy())
    close(mh.grad, th.grad.numpy())
    if lstm:
        close(mc.grad, tc.grad.numpy())
    for p, q in zip(m.parameters(), t.parameters()):
        close(p.grad, q.grad.numpy())


def test_double_backward_against_torch():
    torch = _torch()
    t = torch.nn.LSTM(2, 4, num_layers=2, bidirectional=True, proj_size=3).double()
    m = make("LSTM", 2, 4, num_layers=2, bidirectional=True, proj_size=3)
    _copy_from_torch(m, t)
    x = normal(3, 2, 2)
    tx, mx = torch.tensor(x, requires_grad=True), _t(x, grad=True)
    t_out, _ = t(tx)
    m_out, _ = m(mx)
    (tg,) = torch.autograd.grad((t_out ** 2).sum(), tx, create_graph=True)
    (mg,) = minigan.grad((m_out ** 2).sum(), mx, create_graph=True)
    close(mg, tg.detach().numpy())
    (tg ** 2).sum().backward()
    (mg ** 2).sum().backward()
    close(mx.grad, tx.grad.numpy(), 1e-10)
    for p, q in zip(m.parameters(), t.parameters()):
        close(p.grad, q.grad.numpy(), 1e-10)
