"""Attention with torch's semantics: ``scaled_dot_product_attention`` and
``multi_head_attention_forward`` (the functional core of ``nn.MultiheadAttention``).

Both are compositions of minigan's differentiable ops (batched ``matmul``, ``softmax``, ``where``,
reshapes), so first and higher derivatives come from those ops' own backwards. Heads and batch
dimensions are batch dimensions of the matmuls: nothing loops over them.

Masks follow torch. For ``scaled_dot_product_attention`` a bool mask is True where a query may
attend and a float mask is added to the scores. For ``multi_head_attention_forward`` (as in
``nn.MultiheadAttention``) a bool ``attn_mask`` or ``key_padding_mask`` is True where attention
is *not* allowed; both become additive float masks (0 or -inf) and are summed.

Rows whose every score is -inf (a query that may attend to nothing) give zeros from
``scaled_dot_product_attention``, as torch's CPU kernels and its math backend
(``_safe_softmax``) do, with finite gradients. ``multi_head_attention_forward`` with
``need_weights=True`` uses a plain softmax, as torch does there, so such rows give NaN.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import backend
from ..autograd import Tensor, as_tensor
from .activation import dropout as _dropout
from .basic import (broadcast_to, concat, linear, matmul, mean, mul, reshape, transpose,
                    unsqueeze, where)
from .loss import softmax

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]


def _shape(x) -> str:
    return "(" + ", ".join(str(int(s)) for s in x.shape) + ")"


def _float_operands(fn: str, names, tensors) -> list:
    """The operands as tensors, checked to be floating and of one dtype and device."""
    ts = [as_tensor(t) for t in tensors]
    for name, t in zip(names, ts):
        if t.dtype.kind != "f":
            raise TypeError(f"{fn}: {name} must be a floating tensor, got dtype {t.dtype}")
    if len({t.dtype for t in ts}) > 1:
        got = ", ".join(f"{n}.dtype: {t.dtype}" for n, t in zip(names, ts))
        raise TypeError(f"{fn}: expected {', '.join(names)} to have the same dtype, but got "
                        f"{got}")
    backend.check_same_device(*[t.data for t in ts], what=fn)
    return ts


def _mask_tensor(fn: str, name: str, mask, like: Tensor) -> Tensor:
    """A mask (tensor, array or nested list of bools/floats) as a tensor on like's device."""
    if isinstance(mask, Tensor):
        m = mask
    elif isinstance(mask, np.ndarray) or backend.is_cupy_array(mask):
        m = Tensor(mask)
    else:
        m = Tensor(backend.get_array_module(like.data).asarray(mask))
    backend.check_same_device(like.data, m.data, what=f"{fn} ({name})")
    return m


def _softmax_or_zero(scores: Tensor) -> Tensor:
    """Softmax over the last dim; rows that are all -inf give zeros (torch's _safe_softmax).
    The dead rows' scores are replaced by zeros first, so no NaN reaches a backward."""
    xp = backend.get_array_module(scores.data)
    dead = xp.all(scores.data == -np.inf, axis=-1, keepdims=True)  # a constant mask
    return where(dead, 0.0, softmax(where(dead, 0.0, scores), -1))


def _attend(q: Tensor, k: Tensor, v: Tensor, scale: float, bool_keep=None, bias=None,
            dropout_p: float = 0.0, generator=None, safe: bool = True):
    """softmax(q k^T * scale [masked]) [dropout] @ v over the last two dims, batch dims
    broadcast; ``bool_keep`` is a constant bool array (True: attend), ``bias`` a float tensor
    added to the scores. Returns (output, weights)."""
    scores = mul(matmul(q, transpose(k, -2, -1)), scale)
    if bool_keep is not None:
        scores = where(bool_keep, scores, -np.inf)
    if bias is not None:
        scores = scores + bias
    masked = bool_keep is not None or bias is not None
    weights = _softmax_or_zero(scores) if safe and masked else softmax(scores, -1)
    if dropout_p > 0.0:
        weights = _dropout(weights, dropout_p, training=True, generator=generator)
    return matmul(weights, v), weights


def _check_fits(fn: str, name: str, mask: Tensor, shape: tuple) -> None:
    """A mask must broadcast to the scores' shape without enlarging it (torch adds it in
    place)."""
    try:
        out = np.broadcast_shapes(tuple(mask.shape), shape)
    except ValueError:
        out = None
    if out != shape:
        raise ValueError(f"{fn}: {name} of shape {_shape(mask)} does not broadcast to the "
                         f"attention scores' shape {tuple(shape)} (..., L, S)")


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale=None, enable_gqa: bool = False,
                                 *, generator=None) -> Tensor:
    """torch's ``F.scaled_dot_product_attention``: softmax(Q K^T * scale + mask) V.

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev); batch dims
    broadcast. ``scale`` defaults to 1/sqrt(E). ``attn_mask`` broadcasts to (..., L, S): bool
    (True: attend) or float of the query's dtype (added to the scores). ``is_causal`` masks
    the upper triangle (query i attends to keys j <= i) and excludes ``attn_mask``.
    ``enable_gqa`` lets key and value have fewer heads (dim -3) than the query, each serving
    query_heads // kv_heads consecutive query heads. ``dropout_p`` is always applied (pass 0.0
    in evaluation, as torch asks), with masks from ``generator`` or the device's default one.
    A query row that may attend to nothing gives zeros, as in torch.
    """
    fn = "scaled_dot_product_attention"
    q, k, v = _float_operands(fn, ("query", "key", "value"), (query, key, value))
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"{fn}: expected query, key and value to be at least 2-D, got shapes "
                         f"{_shape(q)}, {_shape(k)} and {_shape(v)}")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {dropout_p}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{fn}: query {_shape(q)} and key {_shape(k)} must share the last "
                         f"dim (the embedding size E)")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{fn}: key {_shape(k)} and value {_shape(v)} must have the same "
                         f"sequence length (dim -2)")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{fn}: an explicit attn_mask should not be set when is_causal=True")
    if enable_gqa and q.ndim >= 3:
        k, v = _repeat_kv_heads(fn, q, k), _repeat_kv_heads(fn, q, v)
    L, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    xp = backend.get_array_module(q.data)
    keep = bias = None
    if is_causal:
        keep = xp.tri(L, S, dtype=bool)  # lower triangle, as torch's ones(L, S).tril()
    elif attn_mask is not None:
        m = _mask_tensor(fn, "attn_mask", attn_mask, q)
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
        _check_fits(fn, "attn_mask", m, tuple(batch) + (L, S))
        if m.dtype == np.bool_:
            keep = m.data
        elif m.dtype == q.dtype:
            bias = m
        else:
            raise TypeError(f"{fn}: expected attn_mask dtype to be bool or to match the "
                            f"query's dtype {q.dtype}, but got {m.dtype}")
    out, _ = _attend(q, k, v, scale, keep, bias, dropout_p, generator, safe=True)
    return out


def _repeat_kv_heads(fn: str, q: Tensor, kv: Tensor) -> Tensor:
    """Key or value (..., Hk, S, E) with each head repeated Hq // Hk times in place (torch's
    repeat_interleave over dim -3), for grouped-query attention."""
    hq, hk = q.shape[-3], kv.shape[-3] if kv.ndim >= 3 else 1
    if kv.ndim < 3 or hq % hk:
        raise ValueError(f"{fn}: with enable_gqa the number of heads in key and value (dim -3 "
                         f"of {_shape(kv)}) must divide the query's ({hq}, query "
                         f"{_shape(q)})")
    if hk == hq:
        return kv
    lead, (s, e) = kv.shape[:-3], kv.shape[-2:]
    grouped = broadcast_to(unsqueeze(kv, -3), lead + (hk, hq // hk, s, e))
    return reshape(grouped, lead + (hq, s, e))


def _canonical_mask(mask, name: str, like: Tensor, fn: str, other=None,
                    other_name: str = "") -> Tensor | None:
    """torch's ``_canonical_mask``: a bool mask (True: masked out) as an additive float mask of
    like's dtype (0 or -inf); a float mask as it is. Warns, as torch, when ``other`` (another
    mask) is of a different dtype."""
    if mask is None:
        return None
    m = _mask_tensor(fn, name, mask, like)
    if m.dtype != np.bool_ and m.dtype.kind != "f":
        raise TypeError(f"{fn}: only bool and floating types of {name} are supported, got "
                        f"{m.dtype}")
    if other is not None:
        other_dtype = other.dtype if hasattr(other, "dtype") else np.asarray(other).dtype
        if other_dtype != m.dtype:
            warnings.warn(f"Support for mismatched {name} and {other_name} is deprecated. Use "
                          "same type for both instead.", UserWarning, stacklevel=3)
    if m.dtype == np.bool_:
        xp = backend.get_array_module(m.data)
        return Tensor(xp.where(m.data, -np.inf, 0.0).astype(like.dtype))
    return m


def _pad_last(mask: Tensor | None) -> Tensor | None:
    """A zero column appended to an additive mask (for bias_k/bias_v and add_zero_attn)."""
    if mask is None:
        return None
    xp = backend.get_array_module(mask.data)
    return concat([mask, Tensor(xp.zeros(mask.shape[:-1] + (1,), dtype=mask.dtype))], -1)


def _in_projection(fn, query, key, value, w, b, e, use_separate, wq, wk, wv):
    """q, k, v projections, (L, N, E) each (seq-first); torch's packed self-attention and
    encoder-decoder cases use one GEMM for what they share."""
    if not use_separate:
        if w is None:
            raise ValueError(f"{fn}: use_separate_proj_weight is False but in_proj_weight is "
                             "None")
        if tuple(w.shape) != (3 * e, e):
            raise ValueError(f"{fn}: in_proj_weight must have shape {(3 * e, e)}, got "
                             f"{_shape(w)}")
        if key is value:
            if query is key:  # self-attention: one projection, split in three
                proj = linear(query, w, b)
                return proj[..., :e], proj[..., e:2 * e], proj[..., 2 * e:]
            kv = linear(key, w[e:], None if b is None else b[e:])
            return linear(query, w[:e], None if b is None else b[:e]), kv[..., :e], kv[..., e:]
        wq, wk, wv = w[:e], w[e:2 * e], w[2 * e:]
    else:
        for name, weight, dim in (("q_proj_weight", wq, query.shape[-1]),
                                  ("k_proj_weight", wk, key.shape[-1]),
                                  ("v_proj_weight", wv, value.shape[-1])):
            if weight is None:
                raise ValueError(f"{fn}: use_separate_proj_weight is True but {name} is None")
            if tuple(weight.shape) != (e, dim):
                raise ValueError(f"{fn}: expected {name} of shape {(e, dim)}, got "
                                 f"{_shape(weight)}")
    bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
    return linear(query, wq, bq), linear(key, wk, bk), linear(value, wv, bv)


def _check_mha_shapes(fn, query, key, value, key_padding_mask, attn_mask, num_heads) -> bool:
    """torch's ``_mha_shape_check``: returns whether the input is batched."""
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise ValueError(f"{fn}: for batched (3-D) query, expected key and value to be 3-D "
                             f"but got shapes {_shape(key)} and {_shape(value)}")
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise ValueError(f"{fn}: for batched (3-D) query, expected key_padding_mask to be "
                             f"None or 2-D (N, S), got shape {_shape(key_padding_mask)}")
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise ValueError(f"{fn}: for batched (3-D) query, expected attn_mask to be None, "
                             f"2-D or 3-D, got shape {_shape(attn_mask)}")
        return True
    if query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise ValueError(f"{fn}: for unbatched (2-D) query, expected key and value to be "
                             f"2-D but got shapes {_shape(key)} and {_shape(value)}")
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise ValueError(f"{fn}: for unbatched (2-D) query, expected key_padding_mask to "
                             f"be None or 1-D (S,), got shape {_shape(key_padding_mask)}")
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise ValueError(f"{fn}: for unbatched (2-D) query, expected attn_mask to be "
                                 f"None, 2-D or 3-D, got shape {_shape(attn_mask)}")
            want = (num_heads, query.shape[0], key.shape[0])
            if attn_mask.ndim == 3 and tuple(attn_mask.shape) != want:
                raise ValueError(f"{fn}: expected attn_mask shape to be {want}, got "
                                 f"{_shape(attn_mask)}")
        return False
    raise ValueError(f"{fn}: query should be unbatched 2-D (L, E) or batched 3-D (L, N, E), "
                     f"got shape {_shape(query)}")


def _heads_first(x: Tensor, n_batch_heads: int, head_dim: int) -> Tensor:
    """(S, N, E) -> (N * H, S, head_dim), torch's view then transpose(0, 1)."""
    return transpose(reshape(x, (x.shape[0], n_batch_heads, head_dim)), 0, 1)


def multi_head_attention_forward(query, key, value, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v,
                                 add_zero_attn: bool, dropout_p: float, out_proj_weight,
                                 out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None,
                                 use_separate_proj_weight: bool = False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True,
                                 is_causal: bool = False, *, generator=None):
    """torch's ``F.multi_head_attention_forward``, seq-first: query (L, N, E) or (L, E),
    key (S, N, Ek), value (S, N, Ev). Returns (attn_output (L, N, E), attn_weights) where the
    weights are (N, L, S) averaged over heads, (N, H, L, S) with
    ``average_attn_weights=False``, or None when ``need_weights`` is False (unbatched: no N).

    ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or (N * H, L, S) are bool (True: not
    attended) or additive floats. ``is_causal`` is a hint, as in torch: ``attn_mask`` must be
    given as well, and it is what is used, unless neither weights nor a padding mask are asked
    for. ``need_weights=True`` computes the weights explicitly (a fully masked row is NaN, as in
    torch); otherwise ``scaled_dot_product_attention`` runs (such a row gives zeros).
    """
    fn = "multi_head_attention_forward"
    query, key, value = _float_operands(fn, ("query", "key", "value"), (query, key, value))
    kpm = None if key_padding_mask is None else _mask_tensor(fn, "key_padding_mask",
                                                             key_padding_mask, query)
    am = None if attn_mask is None else _mask_tensor(fn, "attn_mask", attn_mask, query)
    batched = _check_mha_shapes(fn, query, key, value, kpm, am, num_heads)
    if not batched:
        query, key, value = unsqueeze(query, 1), unsqueeze(key, 1), unsqueeze(value, 1)
        if kpm is not None:
            kpm = unsqueeze(kpm, 0)
    tgt_len, bsz, embed_dim = query.shape
    kpm = _canonical_mask(kpm, "key_padding_mask", query, fn, am, "attn_mask")
    if is_causal and am is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the "
                           "Transformer module method `generate_square_subsequent_mask` to "
                           "create this mask.")
    if is_causal and kpm is None and not need_weights:
        am = None  # the hint stands: scaled_dot_product_attention masks causally itself
    else:
        am = _canonical_mask(am, "attn_mask", query, fn)
        if kpm is not None:
            is_causal = False  # the merged mask is no longer causal
    if embed_dim != embed_dim_to_check:
        raise ValueError(f"{fn}: was expecting embedding dimension of {embed_dim_to_check}, "
                         f"but got {embed_dim} (query {_shape(query)})")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise ValueError(f"{fn}: embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise ValueError(f"{fn}: key's sequence and batch dims {tuple(key.shape[:2])} do "
                             f"not match value's {tuple(value.shape[:2])}")
    elif tuple(key.shape) != tuple(value.shape):
        raise ValueError(f"{fn}: key shape {_shape(key)} does not match value shape "
                         f"{_shape(value)}")
    q, k, v = _in_projection(fn, query, key, value, in_proj_weight, in_proj_bias, embed_dim,
                             use_separate_proj_weight, q_proj_weight, k_proj_weight,
                             v_proj_weight)
    src_len = key.shape[0]
    if am is not None:
        if am.ndim == 2:
            if tuple(am.shape) != (tgt_len, src_len):
                raise ValueError(f"{fn}: the shape of the 2D attn_mask is {_shape(am)}, but "
                                 f"should be {(tgt_len, src_len)}")
            am = unsqueeze(am, 0)
        elif tuple(am.shape) != (bsz * num_heads, tgt_len, src_len):
            raise ValueError(f"{fn}: the shape of the 3D attn_mask is {_shape(am)}, but should "
                             f"be {(bsz * num_heads, tgt_len, src_len)}")
    if (bias_k is None) != (bias_v is None):
        raise ValueError(f"{fn}: bias_k and bias_v must be given together")
    if bias_k is not None:
        if static_k is not None or static_v is not None:
            raise ValueError(f"{fn}: bias cannot be added to a static key or value")
        k = concat([k, broadcast_to(bias_k, (1, bsz, embed_dim))], 0)
        v = concat([v, broadcast_to(bias_v, (1, bsz, embed_dim))], 0)
        am, kpm = _pad_last(am), _pad_last(kpm)
    nh = bsz * num_heads
    q = _heads_first(q, nh, head_dim)
    k = _static(fn, "static_k", static_k, nh, head_dim) if static_k is not None \
        else _heads_first(k, nh, head_dim)
    v = _static(fn, "static_v", static_v, nh, head_dim) if static_v is not None \
        else _heads_first(v, nh, head_dim)
    if add_zero_attn:
        xp = backend.get_array_module(k.data)
        k = concat([k, Tensor(xp.zeros((nh, 1, head_dim), dtype=k.dtype))], 1)
        v = concat([v, Tensor(xp.zeros((nh, 1, head_dim), dtype=v.dtype))], 1)
        am, kpm = _pad_last(am), _pad_last(kpm)
    src_len = k.shape[1]
    if kpm is not None:
        if tuple(kpm.shape) != (bsz, src_len):
            raise ValueError(f"{fn}: expected key_padding_mask of shape {(bsz, src_len)} "
                             f"(N, S), got {_shape(kpm)}")
        kpm = reshape(broadcast_to(reshape(kpm, (bsz, 1, 1, src_len)),
                                   (bsz, num_heads, 1, src_len)), (nh, 1, src_len))
        am = kpm if am is None else am + kpm
    if not training:
        dropout_p = 0.0
    scale = 1.0 / math.sqrt(head_dim)
    if need_weights:
        out, weights = _attend(q, k, v, scale, bias=am, dropout_p=dropout_p,
                               generator=generator, safe=False)
        out = reshape(transpose(out, 0, 1), (tgt_len * bsz, embed_dim))
        out = reshape(linear(out, out_proj_weight, out_proj_bias), (tgt_len, bsz, embed_dim))
        weights = reshape(weights, (bsz, num_heads, tgt_len, src_len))
        if average_attn_weights:
            weights = mean(weights, 1)
        if not batched:
            out, weights = reshape(out, (tgt_len, embed_dim)), reshape(weights, weights.shape[1:])
        return out, weights
    if am is not None:
        am = unsqueeze(am, 0) if am.shape[0] == 1 else reshape(am, (bsz, num_heads, -1, src_len))
    shape4 = (bsz, num_heads, -1, head_dim)
    out = scaled_dot_product_attention(reshape(q, shape4), reshape(k, shape4),
                                       reshape(v, shape4), am, dropout_p, is_causal,
                                       generator=generator)
    # (N, H, L, hd) -> (L, N, H, hd) -> (L * N, E)
    out = reshape(out.permute(2, 0, 1, 3), (tgt_len * bsz, embed_dim))
    out = reshape(linear(out, out_proj_weight, out_proj_bias), (tgt_len, bsz, embed_dim))
    if not batched:
        out = reshape(out, (tgt_len, embed_dim))
    return out, None


def _static(fn: str, name: str, x, nh: int, head_dim: int) -> Tensor:
    x = as_tensor(x)
    if x.ndim != 3 or x.shape[0] != nh or x.shape[2] != head_dim:
        raise ValueError(f"{fn}: expected {name} of shape ({nh}, S, {head_dim}) (N * H, S, "
                         f"head_dim), got {_shape(x)}")
    return x
