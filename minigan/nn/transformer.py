"""Attention and transformer layers that mirror torch's public interface: class names,
constructor arguments and defaults, parameter names and shapes, so a state dict saved by one
library loads into the other. Provided: ``MultiheadAttention``, ``TransformerEncoderLayer``,
``TransformerEncoder``, ``TransformerDecoderLayer``, ``TransformerDecoder``, ``Transformer``.

Everything here is built from differentiable minigan ops (the heavy lifting lives in
``functional.attention``), so these modules work on CPU and GPU alike and can be
differentiated to any order. There is no separate inference fast path (torch's nested
tensors and fused kernels): every call computes what torch computes while recording grads.
"""
from __future__ import annotations

import copy

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor, as_tensor, is_grad_enabled
from ..functional.attention import _canonical_mask, multi_head_attention_forward
from . import init
from .container import ModuleList
from .layers import GELU, Dropout, Linear, ReLU, _param
from .module import Module
from .normalization import LayerNorm

__all__ = ["MultiheadAttention", "Transformer", "TransformerDecoder", "TransformerDecoderLayer",
           "TransformerEncoder", "TransformerEncoderLayer"]


class NonDynamicallyQuantizableLinear(Linear):
    """The class torch uses for the attention output projection; here just a ``Linear``
    (kept under that name so printed modules and pickles line up)."""


# --------------------------------------------------------------------------- helpers

_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def _activation(name_or_callable):
    """Turn an activation spec into a function: 'relu' or 'gelu' by name, anything else is
    taken to be callable already and returned untouched."""
    if not isinstance(name_or_callable, str):
        return name_or_callable
    fn = _ACTIVATIONS.get(name_or_callable)
    if fn is None:
        known = " or ".join(repr(k) for k in _ACTIVATIONS)
        raise RuntimeError(f"unknown activation {name_or_callable!r}; pass {known} "
                           f"or a callable")
    return fn


def _activation_kind(fn) -> int:
    """torch's integer tag for an encoder layer's activation: 1 relu, 2 gelu, 0 other."""
    for tag, (func, cls) in ((1, (F.relu, ReLU)), (2, (F.gelu, GELU))):
        if fn is func or isinstance(fn, cls):
            return tag
    return 0


def _stack_copies(layer: Module, n: int) -> ModuleList:
    """A ModuleList of ``n`` independent deep copies of ``layer`` (no shared parameters)."""
    return ModuleList(copy.deepcopy(layer) for _ in range(n))


def _seq_first(query, key, value):
    """Swap dims 0 and 1 of the three inputs, transposing each distinct tensor only once.

    The attention function picks its packed projection paths by identity (``query is key``,
    ``key is value``), so inputs that were one object must stay one object afterwards."""
    done = {}

    def swap(t):
        if id(t) not in done:
            done[id(t)] = F.transpose(t, 0, 1)
        return done[id(t)]

    return swap(query), swap(key), swap(value)


def _upper_neg_inf(size: int, device=None, dtype=None) -> Tensor:
    """Square causal mask: -inf strictly above the main diagonal, 0 on and below it."""
    xp = backend.xp_for(device or "cpu")
    full = xp.full((size, size), -np.inf, dtype=np.dtype(dtype or np.float32))
    return Tensor(xp.triu(full, 1))


def _sequence_length(x: Tensor, batch_first: bool) -> int:
    """Length of the sequence axis of an (L, E), (L, N, E) or (N, L, E) input."""
    if x.ndim == 2 or not batch_first:
        return x.shape[0]
    return x.shape[1]


def _detect_is_causal_mask(mask, is_causal=None, size=None) -> bool:
    """Decide the causal hint an encoder/decoder hands to its layers.

    An explicit ``is_causal`` always wins; with no mask the answer is False. Otherwise torch
    compares the mask against the causal pattern, which on a GPU means waiting for the device
    on every masked forward. minigan avoids that: its causal path and its float-mask path
    produce the same values and the same input gradients, so the only visible difference is
    whether the mask itself stays in the graph (torch drops a detected causal mask, leaving a
    trainable mask without a gradient). The comparison is therefore made only in that case,
    a CPU mask that requires grad while grad mode is on; a GPU mask is never inspected and
    keeps its gradient (zeros above the diagonal)."""
    if is_causal is not None or mask is None:
        return is_causal is True  # None (no mask, no hint) counts as not causal
    wants_grad = mask.requires_grad and is_grad_enabled()
    if not wants_grad or backend.is_cupy_array(mask.data):
        return False
    n = mask.shape[-2] if size is None else size
    if tuple(mask.shape) != (n, n):
        return False
    # mask.data is a NumPy array here, so this costs no device sync
    return bool(np.array_equal(mask.data, np.triu(np.full((n, n), -np.inf), 1)))


def _layer_masks(owner: str, x: Tensor, mask, padding, mask_name: str, padding_name: str):
    """Bring a (mask, key padding mask) pair to torch's canonical float/bool form."""
    padding = _canonical_mask(padding, padding_name, x, owner, mask, mask_name)
    return _canonical_mask(mask, mask_name, x, owner), padding


def _residual_steps(x, steps, pre_norm: bool):
    """Run ``(norm, sublayer)`` pairs in order, each wrapped in a residual connection.

    pre_norm: ``x + sublayer(norm(x))``; post-norm (the original Transformer):
    ``norm(x + sublayer(x))``."""
    for norm, sublayer in steps:
        x = x + sublayer(norm(x)) if pre_norm else norm(x + sublayer(x))
    return x


def _self_attention(attn: "MultiheadAttention", drop: Dropout, x, mask, padding, causal):
    """Query, key and value all ``x``; only the output (no weights), after ``drop``."""
    out, _ = attn(x, x, x, key_padding_mask=padding, need_weights=False, attn_mask=mask,
                  is_causal=causal)
    return drop(out)


def _position_wise(layer: Module, x, out_drop: Dropout):
    """The per-position MLP: widen (linear1), activate, drop, narrow (linear2), drop."""
    hidden = layer.dropout(layer.activation(layer.linear1(x)))
    return out_drop(layer.linear2(hidden))


# --------------------------------------------------------------------------- attention

class MultiheadAttention(Module):
    """Attention with ``num_heads`` parallel heads, each of width embed_dim // num_heads
    (torch's ``nn.MultiheadAttention``).

    Learnable tensors: when key and value share the query's width, one packed input
    projection ``in_proj_weight`` of shape (3E, E); otherwise three, ``q_proj_weight`` (E, E),
    ``k_proj_weight`` (E, kdim) and ``v_proj_weight`` (E, vdim). With ``bias`` there is also a
    packed ``in_proj_bias`` (3E,) and the output ``Linear`` ``out_proj`` carries a bias;
    ``add_bias_kv`` appends a learned key/value row each (``bias_k``, ``bias_v``: (1, 1, E)).
    Start values follow torch: Xavier-uniform projections, zeroed biases, Xavier-normal
    ``bias_k``/``bias_v``.

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)``: inputs are (L, N, E), or (N, L, E) when
    ``batch_first``, or a single unbatched (L, E) sequence. Returns the pair
    (output, attention weights or None); the details are those of
    ``functional.attention.multi_head_attention_forward``.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim=None, vdim=None,
                 batch_first: bool = False, device=None, dtype=None):
        if min(embed_dim, num_heads) < 1:
            raise ValueError(f"MultiheadAttention needs a positive embed_dim and num_heads "
                             f"(got {embed_dim} and {num_heads})")
        head_dim, leftover = divmod(embed_dim, num_heads)
        if leftover:
            raise ValueError(f"num_heads={num_heads} does not split embed_dim={embed_dim} "
                             f"into equal heads")
        super().__init__()
        E = embed_dim
        self.embed_dim, self.num_heads, self.head_dim = E, num_heads, head_dim
        self.kdim = E if kdim is None else kdim
        self.vdim = E if vdim is None else vdim
        packed = (self.kdim, self.vdim) == (E, E)
        self._qkv_same_embed_dim = packed
        self.dropout, self.batch_first = dropout, batch_first
        self.add_zero_attn = add_zero_attn

        # parameters are created in torch's order so that state-dict keys line up
        kw = {"device": device, "dtype": dtype}
        unused = ["in_proj_weight"] if not packed else [f"{c}_proj_weight" for c in "qkv"]
        if packed:
            self.in_proj_weight = _param((3 * E, E), **kw)
        else:
            for c, width in zip("qkv", (E, self.kdim, self.vdim)):
                setattr(self, f"{c}_proj_weight", _param((E, width), **kw))
        if not bias:
            unused.append("in_proj_bias")
        for name in unused:
            self.register_parameter(name, None)
        if bias:
            self.in_proj_bias = _param((3 * E,), **kw)
        self.out_proj = NonDynamicallyQuantizableLinear(E, E, bias=bias, **kw)
        extra = [_param((1, 1, E), **kw) for _ in range(2)] if add_bias_kv else [None, None]
        self.bias_k, self.bias_v = extra
        self._initialise()

    def _initialise(self) -> None:
        """torch's starting values (see the class docstring)."""
        names = ("in_proj_weight",) if self._qkv_same_embed_dim else \
            ("q_proj_weight", "k_proj_weight", "v_proj_weight")
        for name in names:
            init.xavier_uniform_(getattr(self, name))
        if self.in_proj_bias is not None:
            for b in (self.in_proj_bias, self.out_proj.bias):
                init.constant_(b, 0.0)
        for extra in (self.bias_k, self.bias_v):
            if extra is not None:
                init.xavier_normal_(extra)

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        query, key, value = as_tensor(query), as_tensor(key), as_tensor(value)
        swap = self.batch_first and query.ndim == 3
        if swap:
            query, key, value = _seq_first(query, key, value)
        weights_in = (self.in_proj_weight, self.in_proj_bias, self.bias_k, self.bias_v)
        out, weights = multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, *weights_in,
            self.add_zero_attn, self.dropout, self.out_proj.weight, self.out_proj.bias,
            training=self.training, key_padding_mask=key_padding_mask,
            need_weights=need_weights, attn_mask=attn_mask,
            use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight, k_proj_weight=self.k_proj_weight,
            v_proj_weight=self.v_proj_weight, average_attn_weights=average_attn_weights,
            is_causal=is_causal)
        return (F.transpose(out, 0, 1) if swap else out), weights


# --------------------------------------------------------------------------- layers

class TransformerEncoderLayer(Module):
    """One encoder block: self-attention, then a position-wise MLP (linear1, activation,
    dropout, linear2). Each sub-block's output goes through dropout and is added back to its
    input; LayerNorm comes after each sum by default (the original Transformer) or before
    each sub-block with ``norm_first=True``. Defaults as torch: dim_feedforward=2048,
    dropout=0.1, relu activation (or 'gelu', or any callable), layer_norm_eps=1e-5,
    sequence-first inputs."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation=F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        for i in (1, 2):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        for i in (1, 2):
            setattr(self, f"dropout{i}", Dropout(dropout))
        self.activation = _activation(activation)
        self.activation_relu_or_gelu = _activation_kind(self.activation)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        x = as_tensor(src)
        mask, padding = _layer_masks("TransformerEncoderLayer", x, src_mask,
                                     src_key_padding_mask, "src_mask", "src_key_padding_mask")
        steps = ((self.norm1, lambda h: self._attend_self(h, mask, padding, is_causal)),
                 (self.norm2, self._feed_forward))
        return _residual_steps(x, steps, self.norm_first)

    def _attend_self(self, x, mask, padding, causal: bool = False):
        return _self_attention(self.self_attn, self.dropout1, x, mask, padding, causal)

    def _feed_forward(self, x):
        return _position_wise(self, x, self.dropout2)


class TransformerDecoderLayer(Module):
    """One decoder block: self-attention over the target, attention from the target to the
    encoder output (``memory``), then the position-wise MLP; each with dropout, a residual
    sum and a LayerNorm (after the sum, or before the sub-block with ``norm_first``).
    Same defaults as ``TransformerEncoderLayer``."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation=F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        for name in ("self_attn", "multihead_attn"):
            setattr(self, name, MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                   batch_first=batch_first, **kw))
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        for i in (1, 2, 3):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        for i in (1, 2, 3):
            setattr(self, f"dropout{i}", Dropout(dropout))
        self.activation = _activation(activation)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False):
        def attend_self(h):
            return self._attend_self(h, tgt_mask, tgt_key_padding_mask, tgt_is_causal)

        def attend_memory(h):
            return self._attend_memory(h, memory, memory_mask, memory_key_padding_mask,
                                       memory_is_causal)

        steps = ((self.norm1, attend_self), (self.norm2, attend_memory),
                 (self.norm3, self._feed_forward))
        return _residual_steps(as_tensor(tgt), steps, self.norm_first)

    def _attend_self(self, x, mask, padding, causal: bool = False):
        return _self_attention(self.self_attn, self.dropout1, x, mask, padding, causal)

    def _attend_memory(self, x, memory, mask, padding, causal: bool = False):
        out, _ = self.multihead_attn(x, memory, memory, key_padding_mask=padding,
                                     need_weights=False, attn_mask=mask, is_causal=causal)
        return self.dropout2(out)

    def _feed_forward(self, x):
        return _position_wise(self, x, self.dropout3)


# --------------------------------------------------------------------------- stacks

class TransformerEncoder(Module):
    """A stack of ``num_layers`` independent copies of ``encoder_layer`` (submodules
    ``layers.0``, ``layers.1``, ...), optionally followed by ``norm``.

    ``enable_nested_tensor`` and ``mask_check`` are stored for compatibility with torch code
    but change nothing: without nested tensors ``use_nested_tensor`` stays False, and padded
    positions are computed like any other (torch's inference fast path would zero them)."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm=None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):
        super().__init__()
        self.layers = _stack_copies(encoder_layer, num_layers)
        self.num_layers, self.norm = num_layers, norm
        self.enable_nested_tensor, self.mask_check = enable_nested_tensor, mask_check
        self.use_nested_tensor = False

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        x = as_tensor(src)
        mask, padding = _layer_masks("TransformerEncoder", x, mask, src_key_padding_mask,
                                     "mask", "src_key_padding_mask")
        length = _sequence_length(x, self.layers[0].self_attn.batch_first)
        causal = _detect_is_causal_mask(mask, is_causal, length)
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=padding, is_causal=causal)
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(Module):
    """A stack of ``num_layers`` independent copies of ``decoder_layer``, optionally
    followed by ``norm``."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm=None):
        super().__init__()
        self.layers = _stack_copies(decoder_layer, num_layers)
        self.num_layers, self.norm = num_layers, norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None,
                memory_is_causal: bool = False):
        x = as_tensor(tgt)
        length = _sequence_length(x, self.layers[0].self_attn.batch_first)
        mask_t = as_tensor(tgt_mask) if tgt_mask is not None else None
        causal = _detect_is_causal_mask(mask_t, tgt_is_causal, length)
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, tgt_key_padding_mask=tgt_key_padding_mask,
                      tgt_is_causal=causal, memory_is_causal=memory_is_causal,
                      memory_mask=memory_mask, memory_key_padding_mask=memory_key_padding_mask)
        return x if self.norm is None else self.norm(x)


class Transformer(Module):
    """The full encoder-decoder model (torch's ``nn.Transformer``). The encoder is
    ``num_encoder_layers`` encoder layers plus a final LayerNorm, the decoder likewise with
    ``num_decoder_layers``; either can be replaced via ``custom_encoder``/``custom_decoder``.
    After construction every parameter of rank two or more is redrawn Xavier-uniform, as
    torch does. ``forward(src, tgt, ...)`` encodes ``src`` and returns the decoder output."""

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation=F.relu, custom_encoder=None, custom_decoder=None,
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                      batch_first, norm_first, bias)

        def final_norm():
            return LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)

        self.encoder = custom_encoder if custom_encoder is not None else TransformerEncoder(
            TransformerEncoderLayer(*layer_args, **kw), num_encoder_layers, final_norm())
        self.decoder = custom_decoder if custom_decoder is not None else TransformerDecoder(
            TransformerDecoderLayer(*layer_args, **kw), num_decoder_layers, final_norm())
        self._xavier_matrices()
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first

    def _xavier_matrices(self) -> None:
        for p in self.parameters():
            if p.ndim >= 2:
                init.xavier_uniform_(p)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal: bool = False):
        src, tgt = as_tensor(src), as_tensor(tgt)
        shapes = f"src {tuple(src.shape)}, tgt {tuple(tgt.shape)}"
        batch_axis = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[batch_axis] != tgt.shape[batch_axis]:
            raise RuntimeError(f"src and tgt disagree on the batch size ({shapes}, "
                               f"batch_first={self.batch_first})")
        if {src.shape[-1], tgt.shape[-1]} != {self.d_model}:
            raise RuntimeError(f"src and tgt must both have d_model={self.d_model} features "
                               f"in their last dim ({shapes})")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(
            tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask, tgt_is_causal=tgt_is_causal,
            memory_key_padding_mask=memory_key_padding_mask, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        """Causal float mask of shape (sz, sz): -inf above the diagonal, 0 on and below it;
        float32 unless ``dtype`` is given, on ``device`` (default "cpu")."""
        return _upper_neg_inf(sz, device=device, dtype=dtype)
