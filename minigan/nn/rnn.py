"""Recurrent layers with torch 2.13's names, arguments, parameter layouts and initialisation:
``RNN`` (tanh or relu), ``LSTM`` (with ``proj_size``), ``GRU`` and their one-step cells.

Everything is built from differentiable minigan ops, so gradients are exact to any order. The
input projections ``W_ih x_t + b_ih`` of all time steps are one matmul per layer and direction;
only the hidden-state recurrence loops over time (one step needs the previous one).

Gate orders are torch's: i, f, g, o for the LSTM and r, z, n for the GRU, with torch's GRU
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` and ``h' = (h - n) * z + n``.
PackedSequence input is not supported: pass a padded tensor.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Function, Tensor, as_tensor
from . import init
from .layers import _param
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_NAMES = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "LSTM": "LSTM", "GRU": "GRU"}
# parameter name prefix -> the step functions' argument
_KEYS = {"weight_ih": "w_ih", "weight_hh": "w_hh", "bias_ih": "b_ih", "bias_hh": "b_hh",
         "weight_hr": "w_hr"}


class _Unstack(Function):
    """ys = the slices x[..., i, ...] along ``axis``, one output each (views); gx = stack(gys)
    along ``axis``, zeros standing in for the slices that got no gradient. One op for all
    slices: taking them one by one (getitem) would scatter each slice's gradient into a zero
    array of x's full shape, a cost quadratic in the sequence length."""

    saves_inputs = False  # its gradient does not read the inputs' values
    # the engine passes None for an output without a gradient (which may have been freed: in
    # a double backward, the last step's consumers are gone); backward fills in the zeros
    materializes_grads = False

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        lead = (slice(None),) * self.axis
        self.piece = (x.shape[:self.axis] + x.shape[self.axis + 1:], x.dtype)
        return tuple(x[lead + (i,)] for i in range(x.shape[self.axis]))

    def backward(self, *gys):
        if any(g is None for g in gys):
            xp = backend.get_array_module(self.inputs[0].data)
            zero = Tensor(xp.zeros(*self.piece))
            gys = [zero if g is None else g for g in gys]
        return F.stack(gys, self.axis)


def _unstack(x: Tensor, axis: int = 0) -> tuple:
    if "materializes_grads" not in vars(Function):
        # an engine that fills in zeros from the outputs themselves, which a double backward
        # may have freed: slice one by one instead (the same values and gradients)
        return tuple(F.getitem(x, (slice(None),) * axis + (i,)) for i in range(x.shape[axis]))
    return _Unstack(axis)(x)


def _gates(g: Tensor, k: int) -> tuple:
    """The k gate blocks of g (N, k*H), each (N, H), in the order of W's rows."""
    n, width = g.shape
    return _unstack(F.reshape(g, (n, k, width // k)), 1)


def _rnn_step(xw, h, w_hh, b_hh, relu: bool):
    """h' = act(W_ih x + b_ih + W_hh h + b_hh), with xw = W_ih x + b_ih given."""
    pre = xw + F.linear(h, w_hh, b_hh)
    return F.relu(pre) if relu else F.tanh(pre)


def _lstm_step(xw, h, c, w_hh, b_hh, w_hr):
    """(h', c') of torch's LSTM cell: c' = f c + i g, h' = o tanh(c'), then h' = W_hr h' when
    projecting; xw = W_ih x + b_ih given."""
    i, f, g, o = _gates(xw + F.linear(h, w_hh, b_hh), 4)
    c = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(g)
    h = F.sigmoid(o) * F.tanh(c)
    if w_hr is not None:
        h = F.linear(h, w_hr)
    return h, c


def _gru_step(xw, h, w_hh, b_hh):
    """torch's GRU cell, h' = (h - n) z + n; xw = W_ih x + b_ih given."""
    xr, xz, xn = _gates(xw, 3)
    hr, hz, hn = _gates(F.linear(h, w_hh, b_hh), 3)
    r = F.sigmoid(xr + hr)
    z = F.sigmoid(xz + hz)
    n = F.tanh(xn + r * hn)
    return (h - n) * z + n


def _refuse_packed(cls: str, input) -> None:
    if type(input).__name__ == "PackedSequence" or hasattr(input, "batch_sizes"):
        raise TypeError(f"{cls}: PackedSequence input is not supported by minigan; pass a "
                        "padded tensor of shape (L, N, H_in) (or (N, L, H_in) with "
                        "batch_first=True) and take each sequence's outputs up to its length")


def _check_input_dtype_device(cls: str, x: Tensor, weight: Tensor) -> None:
    if x.dtype != weight.dtype:
        raise ValueError(f"{cls} input dtype ({x.dtype}) does not match weight dtype "
                         f"({weight.dtype}). Convert input: input.to({weight.dtype}), or "
                         f"convert model: model.to({x.dtype})")
    if x.device != weight.device:
        raise backend.DeviceError(f"{cls}: input on {x.device} but the weights on "
                                  f"{weight.device}; move one with .to()")


def _as_input(cls: str, input) -> Tensor:
    _refuse_packed(cls, input)
    if isinstance(input, (tuple, list)):
        raise TypeError(f"{cls}: input must be a tensor, got a {type(input).__name__}")
    return as_tensor(input)


class RNNBase(Module):
    """What RNN, LSTM and GRU share (torch's ``RNNBase``): the per-layer, per-direction
    parameters ``weight_ih_l{k}[_reverse]``, ``weight_hh_l{k}``, ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (and ``weight_hr_l{k}`` when ``proj_size > 0``), all U(-1/sqrt(hidden),
    1/sqrt(hidden)); and the forward pass for ``mode`` "RNN_TANH", "RNN_RELU", "LSTM" or "GRU".
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None):
        super().__init__()
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             f"probability of an element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=2)
        for name, value in (("bias", bias), ("batch_first", batch_first),
                            ("bidirectional", bidirectional)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers), ("proj_size", proj_size)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size has to be smaller than hidden_size, got "
                             f"proj_size={proj_size} and hidden_size={hidden_size}")
        if mode not in _GATES:
            raise ValueError(f"Unrecognized RNN mode: {mode!r} (expected one of "
                             f"{list(_GATES)})")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode = mode
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers, self.proj_size = int(num_layers), int(proj_size)
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        gate_size = _GATES[mode] * self.hidden_size
        real_hidden = self.proj_size or self.hidden_size
        directions = 2 if self.bidirectional else 1
        self._flat_weights_names, self._all_weights = [], []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else real_hidden * directions
            for direction in range(directions):
                shapes = [("weight_ih_l{}{}", (gate_size, layer_input)),
                          ("weight_hh_l{}{}", (gate_size, real_hidden))]
                if self.bias:
                    shapes += [("bias_ih_l{}{}", (gate_size,)), ("bias_hh_l{}{}", (gate_size,))]
                if self.proj_size:
                    shapes += [("weight_hr_l{}{}", (self.proj_size, self.hidden_size))]
                suffix = "_reverse" if direction == 1 else ""
                names = []
                for pattern, shape in shapes:
                    name = pattern.format(layer, suffix)
                    setattr(self, name, _param(shape, device, dtype))
                    names.append(name)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """A no-op: torch packs the weights into one buffer for cuDNN; minigan has no cuDNN."""

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list:
        """The parameters, one list per layer and direction, in torch's order."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def _check_state(self, what: str, state, expected: tuple, batched: bool) -> Tensor:
        """One initial state as a (layers * directions, N, size) tensor."""
        cls = _NAMES[self.mode]
        if isinstance(state, (tuple, list)):
            raise TypeError(f"{cls}: {what} must be a tensor, got a {type(state).__name__}")
        state = as_tensor(state)
        want = 3 if batched else 2
        if state.ndim != want:
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise ValueError(f"{cls}: for {kind} input, {what} should also be {want}-D but got "
                             f"a {state.ndim}-D tensor of shape {tuple(state.shape)}")
        if not batched:
            state = F.unsqueeze(state, 1)
        if tuple(state.shape) != expected:
            raise ValueError(f"{cls}: Expected {what} size {expected}, got "
                             f"{tuple(state.shape)}")
        _check_input_dtype_device(f"{cls} {what}", state, self._flat_weights[0])
        return state

    def forward(self, input, hx=None):
        """(output, h_n) for RNN and GRU, (output, (h_n, c_n)) for the LSTM.

        input: (L, N, H_in), (N, L, H_in) with ``batch_first``, or unbatched (L, H_in).
        output: (L, N, D * H_out) (batch first if the input was), or (L, D * H_out);
        h_n: (D * num_layers, N, H_out), c_n: (D * num_layers, N, hidden_size), without N
        when unbatched; H_out is proj_size when projecting, else hidden_size."""
        cls = _NAMES[self.mode]
        x = _as_input(cls, input)
        if x.ndim not in (2, 3):
            raise ValueError(f"{cls}: Expected input to be 2D or 3D, got {x.ndim}D instead "
                             f"(shape {tuple(x.shape)})")
        batched = x.ndim == 3
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{cls}: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {x.shape[-1]} (input shape "
                             f"{tuple(x.shape)})")
        _check_input_dtype_device(cls, x, self._flat_weights[0])
        if not batched:
            x = F.unsqueeze(x, 1)
        elif self.batch_first:
            x = F.transpose(x, 0, 1)
        steps, batch = x.shape[0], x.shape[1]
        if steps == 0:
            raise ValueError(f"{cls}: Expected sequence length to be larger than 0, got input "
                             f"of shape {tuple(x.shape)} (time-major)")
        directions = 2 if self.bidirectional else 1
        layers = self.num_layers * directions
        h_size = (layers, batch, self.proj_size or self.hidden_size)
        c_size = (layers, batch, self.hidden_size)
        lstm = self.mode == "LSTM"
        if lstm:
            if hx is None:
                h0 = c0 = None
            else:
                if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                    raise TypeError(f"LSTM: hx must be a tuple (h_0, c_0), got "
                                    f"{type(hx).__name__}")
                h0 = self._check_state("hidden[0]", hx[0], h_size, batched)
                c0 = self._check_state("hidden[1]", hx[1], c_size, batched)
        else:
            h0 = None if hx is None else self._check_state("hidden", hx, h_size, batched)
            c0 = None
        output, h_n, c_n = self._layers(x, h0, c0, h_size, c_size)
        if not batched:
            output = F.squeeze(output, 1)
            h_n = F.squeeze(h_n, 1)
            c_n = None if c_n is None else F.squeeze(c_n, 1)
        elif self.batch_first:
            output = F.transpose(output, 0, 1)
        return (output, (h_n, c_n)) if lstm else (output, h_n)

    def _layers(self, x, h0, c0, h_size, c_size):
        """Run the stacked (bi)directional recurrence on time-major x (L, N, H_in)."""
        xp = backend.get_array_module(x.data)
        lstm = self.mode == "LSTM"
        if h0 is None:
            h0 = Tensor(xp.zeros(h_size, dtype=x.dtype))
        if lstm and c0 is None:
            c0 = Tensor(xp.zeros(c_size, dtype=x.dtype))
        h0s = _unstack(h0)
        c0s = _unstack(c0) if lstm else None
        directions = 2 if self.bidirectional else 1
        steps = x.shape[0]
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(directions):
                k = layer * directions + direction
                p = dict.fromkeys(_KEYS.values())  # (None: no bias, no projection)
                for name in self._all_weights[k]:
                    p[_KEYS[name.split("_l")[0]]] = getattr(self, name)
                xws = _unstack(F.linear(x, p["w_ih"], p["b_ih"]))  # one matmul, all steps
                h, c = h0s[k], (c0s[k] if lstm else None)
                ys = [None] * steps
                for t in (range(steps) if direction == 0 else range(steps - 1, -1, -1)):
                    if lstm:
                        h, c = _lstm_step(xws[t], h, c, p["w_hh"], p["b_hh"], p["w_hr"])
                    elif self.mode == "GRU":
                        h = _gru_step(xws[t], h, p["w_hh"], p["b_hh"])
                    else:
                        h = _rnn_step(xws[t], h, p["w_hh"], p["b_hh"],
                                      self.mode == "RNN_RELU")
                    ys[t] = h
                outs.append(F.stack(ys, 0))
                h_n.append(h)
                c_n.append(c)
            x = outs[0] if directions == 1 else F.cat(outs, 2)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, F.stack(h_n, 0), (F.stack(c_n, 0) if lstm else None)


class RNN(RNNBase):
    """Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh), act tanh or relu.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None)``; forward
    gives (output, h_n)."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(mode, *args, **kwargs)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory, gates i, f, g, o; with ``proj_size > 0`` the hidden state is
    projected, h_t = W_hr (o_t * tanh(c_t)).

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0, device=None, dtype=None)``; forward(input, (h_0, c_0))
    gives (output, (h_n, c_n))."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """Gated recurrent unit, gates r, z, n: n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
    h' = (1 - z) n + z h.

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None)``; forward gives (output, h_n)."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    """What the cells share: ``weight_ih`` (chunks * hidden, input), ``weight_hh`` (chunks *
    hidden, hidden), ``bias_ih`` and ``bias_hh`` (or None), all U(-1/sqrt(hidden),
    1/sqrt(hidden))."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be greater than zero, got {value}")
        self.input_size, self.hidden_size, self.bias = int(input_size), int(hidden_size), bias
        self.weight_ih = _param((num_chunks * hidden_size, input_size), device, dtype)
        self.weight_hh = _param((num_chunks * hidden_size, hidden_size), device, dtype)
        if bias:
            self.bias_ih = _param((num_chunks * hidden_size,), device, dtype)
            self.bias_hh = _param((num_chunks * hidden_size,), device, dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _input(self, input) -> tuple:
        """(input as (N, H_in), whether it was batched)."""
        cls = type(self).__name__
        x = _as_input(cls, input)
        if x.ndim not in (1, 2):
            raise ValueError(f"{cls}: Expected input to be 1D or 2D, got {x.ndim}D instead "
                             f"(shape {tuple(x.shape)})")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{cls}: input has inconsistent input_size: got {x.shape[-1]}, "
                             f"expected {self.input_size} (input shape {tuple(x.shape)})")
        _check_input_dtype_device(cls, x, self.weight_ih)
        return (x if x.ndim == 2 else F.unsqueeze(x, 0)), x.ndim == 2

    def _state(self, what: str, state, x: Tensor, batched: bool) -> Tensor:
        """An initial state as (N, hidden_size): zeros when None."""
        cls = type(self).__name__
        expected = (x.shape[0], self.hidden_size)
        if state is None:
            return Tensor(backend.get_array_module(x.data).zeros(expected, dtype=x.dtype))
        state = as_tensor(state)
        if state.ndim not in (1, 2):
            raise ValueError(f"{cls}: Expected {what} to be 1D or 2D, got {state.ndim}D "
                             f"instead (shape {tuple(state.shape)})")
        if (state.ndim == 2) != batched:
            raise ValueError(f"{cls}: {what} of shape {tuple(state.shape)} does not go with "
                             f"{'a batched' if batched else 'an unbatched'} input")
        if not batched:
            state = F.unsqueeze(state, 0)
        if tuple(state.shape) != expected:
            raise ValueError(f"{cls}: Expected {what} of shape {expected}, got "
                             f"{tuple(state.shape)} (input batch size {x.shape[0]}, "
                             f"hidden_size {self.hidden_size})")
        _check_input_dtype_device(f"{cls} {what}", state, self.weight_ih)
        return state

    def _input_projection(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)


class RNNCell(RNNCellBase):
    """One Elman step, h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device,
                         dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, batched = self._input(input)
        h = self._state("hidden", hx, x, batched)
        h = _rnn_step(self._input_projection(x), h, self.weight_hh, self.bias_hh,
                      self.nonlinearity == "relu")
        return h if batched else F.squeeze(h, 0)


class LSTMCell(RNNCellBase):
    """One LSTM step: forward(input, (h, c)) gives (h', c')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device,
                         dtype=dtype)

    def forward(self, input, hx=None):
        x, batched = self._input(input)
        if hx is None:
            hx = (None, None)
        elif not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c), got {type(hx).__name__}")
        h = self._state("hx[0]", hx[0], x, batched)
        c = self._state("hx[1]", hx[1], x, batched)
        h, c = _lstm_step(self._input_projection(x), h, c, self.weight_hh, self.bias_hh, None)
        return (h, c) if batched else (F.squeeze(h, 0), F.squeeze(c, 0))


class GRUCell(RNNCellBase):
    """One GRU step, torch's formula (see ``GRU``)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device,
                         dtype=dtype)

    def forward(self, input, hx=None):
        x, batched = self._input(input)
        h = self._state("hidden", hx, x, batched)
        h = _gru_step(self._input_projection(x), h, self.weight_hh, self.bias_hh)
        return h if batched else F.squeeze(h, 0)
