"""Attention and transformer layers: ``scaled_dot_product_attention`` and
``multi_head_attention_forward`` against NumPy references written here (no torch needed),
masks, shapes, first- and second-order gradient checks in float64, torch's state-dict keys
(hard-coded), initialisation, train/eval behaviour, error messages, the GPU path (the
``device`` fixture), and, where torch is installed, outputs and gradients against torch."""
import math

import numpy as np
import pytest

import minigan
from minigan import backend
from minigan.functional.attention import (multi_head_attention_forward,
                                          scaled_dot_product_attention)
from minigan.nn.transformer import (MultiheadAttention, Transformer, TransformerDecoder,
                                    TransformerDecoderLayer, TransformerEncoder,
                                    TransformerEncoderLayer)
from minigan.testing import GradientCheckError, check_backward, check_double_backward

sdpa = scaled_dot_product_attention
NEG = -np.inf


def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _t(a, device="cpu", grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a), device), requires_grad=grad)


def _np(x):
    return backend.to_numpy(x.data if isinstance(x, minigan.Tensor) else x)


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(_np(a), _np(b), rtol=tol, atol=tol)


# ----- NumPy references

def np_softmax_or_zero(s):
    """Softmax over the last axis; rows that are all -inf give zeros (torch's sdpa)."""
    dead = np.all(s == NEG, axis=-1, keepdims=True)
    s = np.where(dead, 0.0, s)
    e = np.exp(s - s.max(-1, keepdims=True))
    return np.where(dead, 0.0, e / e.sum(-1, keepdims=True))


def np_sdpa(q, k, v, mask=None, causal=False, scale=None, drop=None):
    """mask: bool (True: attend) or float (added); drop: a multiplicative mask."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ np.swapaxes(k, -1, -2)) * scale
    if causal:
        s = np.where(np.tri(q.shape[-2], k.shape[-2], dtype=bool), s, NEG)
    if mask is not None:
        s = np.where(mask, s, NEG) if mask.dtype == bool else s + mask
    w = np_softmax_or_zero(s)
    if drop is not None:
        w = w * drop
    return w @ v


def np_mha(q_in, k_in, v_in, p, heads, kpm=None, attn_mask=None, bias_kv=None, zero_attn=False):
    """Seq-first (L, N, E) multi-head attention; ``p`` maps wq, wk, wv, bq, bk, bv, wo, bo.
    Bool masks are True where attention is not allowed. Returns (out, weights (N, H, L, S))."""
    L, N, E = q_in.shape
    hd = E // heads
    q = q_in @ p["wq"].T + p["bq"]
    k = k_in @ p["wk"].T + p["bk"]
    v = v_in @ p["wv"].T + p["bv"]
    add = np.zeros((N, heads, L, k.shape[0]))
    if attn_mask is not None:
        am = np.where(attn_mask, NEG, 0.0) if attn_mask.dtype == bool else attn_mask
        add = add + (am.reshape(N, heads, L, -1) if am.ndim == 3 else am)
    if kpm is not None:
        km = np.where(kpm, NEG, 0.0) if kpm.dtype == bool else kpm
        add = add + km[:, None, None, :]
    if bias_kv is not None:
        k = np.concatenate([k, np.broadcast_to(bias_kv[0], (1, N, E))])
        v = np.concatenate([v, np.broadcast_to(bias_kv[1], (1, N, E))])
        add = np.concatenate([add, np.zeros(add.shape[:-1] + (1,))], -1)

    def split(x):  # (S, N, E) -> (N, H, S, hd)
        return x.reshape(x.shape[0], N, heads, hd).transpose(1, 2, 0, 3)

    q, k, v = split(q), split(k), split(v)
    if zero_attn:
        k = np.concatenate([k, np.zeros((N, heads, 1, hd))], 2)
        v = np.concatenate([v, np.zeros((N, heads, 1, hd))], 2)
        add = np.concatenate([add, np.zeros(add.shape[:-1] + (1,))], -1)
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(hd) + add
    e = np.exp(s - s.max(-1, keepdims=True))
    w = e / e.sum(-1, keepdims=True)
    o = (w @ v).transpose(2, 0, 1, 3).reshape(L, N, E)
    return o @ p["wo"].T + p["bo"], w


def mha_params(m):
    """A MultiheadAttention's weights as NumPy arrays, in np_mha's names."""
    E = m.embed_dim
    b = _np(m.in_proj_bias) if m.in_proj_bias is not None else np.zeros(3 * E)
    if m._qkv_same_embed_dim:
        w = _np(m.in_proj_weight)
        wq, wk, wv = w[:E], w[E:2 * E], w[2 * E:]
    else:
        wq, wk, wv = _np(m.q_proj_weight), _np(m.k_proj_weight), _np(m.v_proj_weight)
    bo = _np(m.out_proj.bias) if m.out_proj.bias is not None else np.zeros(E)
    return dict(wq=wq, wk=wk, wv=wv, bq=b[:E], bk=b[E:2 * E], bv=b[2 * E:],
                wo=_np(m.out_proj.weight), bo=bo)


def randomise(module, seed=1, scale=0.5):
    """Fill every parameter with N(0, scale^2) (zero biases would hide bias bugs)."""
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        p.data[...] = backend.to_device(scale * rng.standard_normal(p.shape), p.device)
    return module


# ----- scaled_dot_product_attention: values

_Q, _K, _V = normal(2, 3, 4, 5), normal(2, 3, 6, 5, seed=1), normal(2, 3, 6, 7, seed=2)
_BOOL = np.random.default_rng(3).random((4, 6)) > 0.4
_BOOL[:, 0] = True
SDPA_CASES = {
    "plain": (dict(), {}),
    "scale": (dict(scale=0.3), dict(scale=0.3)),
    "bool_mask": (dict(attn_mask=_BOOL), dict(mask=_BOOL)),
    "bool_mask_per_batch": (dict(attn_mask=_BOOL[None, None] & (normal(2, 1, 4, 6) > -1)),
                            dict(mask=_BOOL[None, None] & (normal(2, 1, 4, 6) > -1))),
    "float_mask": (dict(attn_mask=normal(3, 4, 6, seed=4)), dict(mask=normal(3, 4, 6, seed=4))),
    "causal": (dict(is_causal=True), dict(causal=True)),
}


@pytest.mark.parametrize("case", sorted(SDPA_CASES))
def test_sdpa_matches_numpy(case, device):
    kw, ref = SDPA_CASES[case]
    kw = {k: (_t(v, device) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    y = sdpa(_t(_Q, device), _t(_K, device), _t(_V, device), **kw)
    assert y.shape == (2, 3, 4, 7) and y.device == device
    close(y, np_sdpa(_Q, _K, _V, **ref))


def test_sdpa_shapes_broadcast_and_causal_rectangles():
    q, k, v = normal(4, 5), normal(6, 5, seed=1), normal(6, 3, seed=2)
    close(sdpa(_t(q), _t(k), _t(v)), np_sdpa(q, k, v))  # 2-D inputs
    kb = normal(1, 3, 6, 5, seed=5)  # key and value batch 1, broadcast over the query's 2
    vb = normal(1, 3, 6, 7, seed=6)
    close(sdpa(_t(_Q), _t(kb), _t(vb)), np_sdpa(_Q, kb, vb))
    for L, S in ((3, 6), (6, 3)):  # the causal mask is ones(L, S).tril(), top-left aligned
        q, k = normal(2, L, 4, seed=7), normal(2, S, 4, seed=8)
        keep = np.tril(np.ones((L, S), bool))
        close(sdpa(_t(q), _t(k), _t(k), is_causal=True), np_sdpa(q, k, k, mask=keep))


def test_sdpa_grouped_query_attention(device):
    q, k, v = normal(2, 6, 4, 5), normal(2, 2, 3, 5, seed=1), normal(2, 2, 3, 4, seed=2)
    y = sdpa(_t(q, device), _t(k, device), _t(v, device), enable_gqa=True)
    # each kv head serves 3 consecutive query heads (torch's repeat_interleave)
    close(y, np_sdpa(q, np.repeat(k, 3, axis=1), np.repeat(v, 3, axis=1)))
    with pytest.raises(ValueError, match=r"must divide the query's \(6"):
        sdpa(_t(q), _t(normal(2, 4, 3, 5)), _t(normal(2, 4, 3, 4)), enable_gqa=True)


def test_sdpa_fully_masked_rows_give_zeros_with_finite_gradients(device):
    mask = np.ones((4, 6), bool)
    mask[2] = False  # query 2 may attend to nothing
    q, k, v = (_t(a, device, grad=True) for a in (_Q, _K, _V))
    y = sdpa(q, k, v, attn_mask=_t(mask, device))
    assert np.all(_np(y)[:, :, 2] == 0) and np.isfinite(_np(y)).all()
    close(y, np_sdpa(_Q, _K, _V, mask=mask))
    y.sum().backward()
    assert all(np.isfinite(_np(t.grad)).all() for t in (q, k, v))
    fmask = np.zeros((4, 6))
    fmask[1] = NEG  # the same through a float mask
    y = sdpa(_t(_Q), _t(_K), _t(_V), attn_mask=_t(fmask))
    assert np.all(_np(y)[:, :, 1] == 0) and np.isfinite(_np(y)).all()


def test_sdpa_dropout_uses_the_generator():
    p = 0.4
    y = sdpa(_t(_Q), _t(_K), _t(_V), dropout_p=p, generator=minigan.Generator(7))
    drop = minigan.Generator(7).dropout_mask((2, 3, 4, 6), p, np.float64)
    close(y, np_sdpa(_Q, _K, _V, drop=_np(drop)))
    assert not np.allclose(_np(y), np_sdpa(_Q, _K, _V))
    y2 = sdpa(_t(_Q), _t(_K), _t(_V), dropout_p=p, generator=minigan.Generator(7))
    close(y, y2, tol=0)
    assert np.all(_np(sdpa(_t(_Q), _t(_K), _t(_V), dropout_p=1.0)) == 0)


def test_sdpa_errors_name_the_problem():
    q, k, v = _t(_Q), _t(_K), _t(_V)
    with pytest.raises(ValueError, match="should not be set when is_causal"):
        sdpa(q, k, v, attn_mask=_t(_BOOL), is_causal=True)
    with pytest.raises(TypeError, match="bool or to match the query's dtype float64.*int64"):
        sdpa(q, k, v, attn_mask=_t(np.ones((4, 6), np.int64)))
    with pytest.raises(TypeError, match="bool or to match the query's dtype float64.*float32"):
        sdpa(q, k, v, attn_mask=_t(np.zeros((4, 6), np.float32)))
    with pytest.raises(ValueError, match=r"attn_mask of shape \(4, 4\) does not broadcast.*"
                                         r"\(2, 3, 4, 6\)"):
        sdpa(q, k, v, attn_mask=_t(np.ones((4, 4), bool)))
    with pytest.raises(ValueError, match=r"query \(2, 3, 4, 5\) and key \(2, 3, 6, 4\)"):
        sdpa(q, _t(normal(2, 3, 6, 4)), v)
    with pytest.raises(ValueError, match=r"key \(2, 3, 6, 5\) and value \(2, 3, 5, 7\)"):
        sdpa(q, k, _t(normal(2, 3, 5, 7)))
    with pytest.raises(ValueError, match="at least 2-D"):
        sdpa(_t(normal(5)), _t(normal(5)), _t(normal(5)))
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        sdpa(q, k, v, dropout_p=1.5)
    with pytest.raises(TypeError, match="same dtype.*key.dtype: float32"):
        sdpa(q, _t(_K.astype(np.float32)), v)


# ----- scaled_dot_product_attention: gradients (float64, small)

_q, _k, _v = normal(2, 3, 2), normal(2, 4, 2, seed=1), normal(2, 4, 3, seed=2)
_m = np.array([[True, True, False, True], [False, True, True, True], [True, False, False, False]])
GRAD_CASES = {
    "plain": (lambda q, k, v: sdpa(q, k, v), [_q, _k, _v]),
    "bool_mask": (lambda q, k, v: sdpa(q, k, v, attn_mask=_m, scale=0.7), [_q, _k, _v]),
    "float_mask_with_grad": (lambda q, k, v, m: sdpa(q, k, v, attn_mask=m),
                             [_q, _k, _v, normal(3, 4, seed=3)]),
    "causal": (lambda q, k, v: sdpa(q, k, v, is_causal=True), [_q, _k, _v]),
    "gqa": (lambda q, k, v: sdpa(q, k, v, enable_gqa=True),
            [normal(1, 4, 3, 2), normal(1, 2, 4, 2, seed=1), normal(1, 2, 4, 3, seed=2)]),
    "dropout": (lambda q, k, v: sdpa(q, k, v, dropout_p=0.3, generator=minigan.Generator(3)),
                [_q, _k, _v]),
}


@pytest.mark.parametrize("case", sorted(GRAD_CASES))
def test_sdpa_first_and_second_order_gradients(case):
    fn, inputs = GRAD_CASES[case]
    check_backward(fn, inputs, mode="jacobian")
    check_double_backward(fn, inputs, atol=1e-6, rtol=1e-5)


def test_sdpa_gradients_with_a_fully_masked_row():
    mask = _m.copy()
    mask[1] = False
    fn = lambda q, k, v: sdpa(q, k, v, attn_mask=mask)  # noqa: E731
    check_backward(fn, [_q, _k, _v], mode="jacobian")
    check_double_backward(fn, [_q, _k, _v], atol=1e-6, rtol=1e-5)


def test_gradient_checker_catches_a_wrong_attention_gradient():
    """The checker used above fails on an attention whose backward misses a path (the
    softmax's normalisation treated as a constant)."""
    def wrong(q, k, v):
        s = minigan.functional.matmul(q, k.transpose(-2, -1))
        e = minigan.functional.exp(s)
        z = minigan.Tensor(e.data.sum(-1, keepdims=True))  # a constant: wrong gradient
        return minigan.functional.matmul(e / z, v)
    with pytest.raises(GradientCheckError):
        check_backward(wrong, [_q, _k, _v])


# ----- multi_head_attention_forward / MultiheadAttention: values

@pytest.mark.filterwarnings("ignore:Support for mismatched")
def test_mha_matches_numpy_with_masks_and_weights(device):
    E, H, L, S, N = 6, 3, 4, 5, 2
    m = randomise(MultiheadAttention(E, H).double()).to(device)
    q, kv = normal(L, N, E, seed=3), normal(S, N, E, seed=4)
    kpm = np.zeros((N, S), bool)
    kpm[0, 3:] = True
    am = normal(L, S, seed=5)
    out, w = m(_t(q, device), _t(kv, device), _t(kv, device), key_padding_mask=_t(kpm, device),
               attn_mask=_t(am, device), average_attn_weights=False)
    want, want_w = np_mha(q, kv, kv, mha_params(m), H, kpm=kpm, attn_mask=am)
    assert out.shape == (L, N, E) and w.shape == (N, H, L, S)
    close(out, want)
    close(w, want_w)
    assert np.all(_np(w)[0, :, :, 3:] == 0)  # padded keys get no weight
    out2, w2 = m(_t(q, device), _t(kv, device), _t(kv, device), key_padding_mask=_t(kpm, device),
                 attn_mask=_t(am, device))
    close(out2, want)
    close(w2, want_w.mean(1))  # averaged over heads: (N, L, S)
    out3, w3 = m(_t(q, device), _t(kv, device), _t(kv, device), key_padding_mask=_t(kpm, device),
                 attn_mask=_t(am, device), need_weights=False)
    assert w3 is None
    close(out3, want)


def test_mha_self_attention_bool_and_3d_masks():
    E, H, L, N = 4, 2, 3, 2
    m = randomise(MultiheadAttention(E, H).double())
    x = normal(L, N, E)
    am = np.zeros((N * H, L, L), bool)
    am[:, :, -1] = True  # nobody attends to the last position
    am[1, 0, 0] = True
    out, w = m(_t(x), _t(x), _t(x), attn_mask=am, average_attn_weights=False)
    want, want_w = np_mha(x, x, x, mha_params(m), H, attn_mask=am)
    close(out, want)
    close(w, want_w)
    fkpm = np.where(np.array([[False, True, False], [False, False, False]]), NEG, 0.0)
    out, _ = m(_t(x), _t(x), _t(x), key_padding_mask=fkpm, need_weights=False)  # float kpm
    close(out, np_mha(x, x, x, mha_params(m), H, kpm=fkpm)[0])


def test_mha_batch_first_unbatched_and_kdim_vdim(device):
    E, H = 6, 2
    m = randomise(MultiheadAttention(E, H, kdim=3, vdim=5, batch_first=True).double())
    m = m.to(device)
    q, k, v = normal(2, 4, E), normal(2, 7, 3, seed=1), normal(2, 7, 5, seed=2)
    out, w = m(_t(q, device), _t(k, device), _t(v, device))
    assert out.shape == (2, 4, E) and w.shape == (2, 4, 7)
    want, want_w = np_mha(q.transpose(1, 0, 2), k.transpose(1, 0, 2), v.transpose(1, 0, 2),
                          mha_params(m), H)
    close(out, want.transpose(1, 0, 2))
    close(w, want_w.mean(1))
    out1, w1 = m(_t(q[1], device), _t(k[1], device), _t(v[1], device))  # unbatched (L, E)
    assert out1.shape == (4, E) and w1.shape == (4, 7)
    close(out1, _np(out)[1])
    close(w1, _np(w)[1])
    out1, w1 = m(_t(q[1], device), _t(k[1], device), _t(v[1], device), average_attn_weights=False)
    assert w1.shape == (H, 4, 7)


@pytest.mark.filterwarnings("ignore:Support for mismatched")
def test_mha_bias_kv_and_zero_attn():
    E, H, L, S, N = 4, 2, 3, 5, 2
    m = randomise(MultiheadAttention(E, H, add_bias_kv=True, add_zero_attn=True).double())
    q, kv = normal(L, N, E), normal(S, N, E, seed=1)
    kpm = np.zeros((N, S), bool)
    kpm[1, :2] = True
    am = normal(L, S, seed=2)
    out, w = m(_t(q), _t(kv), _t(kv), key_padding_mask=kpm, attn_mask=am,
               average_attn_weights=False)
    bias_kv = (_np(m.bias_k)[0], _np(m.bias_v)[0])
    want, want_w = np_mha(q, kv, kv, mha_params(m), H, kpm=kpm, attn_mask=am, bias_kv=bias_kv,
                          zero_attn=True)
    assert w.shape == (N, H, L, S + 2)
    close(out, want)
    close(w, want_w)


def test_mha_without_bias_and_is_causal_hint():
    E, H, L, N = 4, 2, 5, 2
    m = randomise(MultiheadAttention(E, H, bias=False).double())
    assert m.in_proj_bias is None and m.out_proj.bias is None
    x = normal(L, N, E)
    causal = Transformer.generate_square_subsequent_mask(L, dtype=np.float64)
    want = np_mha(x, x, x, mha_params(m), H, attn_mask=_np(causal))[0]
    for need in (True, False):  # with need_weights=False the hint goes to sdpa's is_causal
        out, _ = m(_t(x), _t(x), _t(x), attn_mask=causal, is_causal=True, need_weights=need)
        close(out, want)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        m(_t(x), _t(x), _t(x), is_causal=True)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_mha_fully_masked_rows_nan_with_weights_zero_without():
    """As torch: the explicit-weights path gives NaN for a query that attends to nothing,
    the sdpa path zeros (then the output projection's bias)."""
    m = randomise(MultiheadAttention(4, 2).double())
    x = normal(3, 2, 4)
    kpm = np.array([[False, False, False], [True, True, True]])
    out, w = m(_t(x), _t(x), _t(x), key_padding_mask=kpm)
    assert np.isnan(_np(out)[:, 1]).all() and np.isnan(_np(w)[1]).all()
    assert np.isfinite(_np(out)[:, 0]).all()
    out, _ = m(_t(x), _t(x), _t(x), key_padding_mask=kpm, need_weights=False)
    close(out[:, 1], np.broadcast_to(_np(m.out_proj.bias), (3, 4)))


def test_mha_warns_on_mismatched_mask_types():
    m = MultiheadAttention(4, 2).double()
    x = _t(normal(3, 2, 4))
    with pytest.warns(UserWarning, match="mismatched key_padding_mask and attn_mask"):
        m(x, x, x, key_padding_mask=np.zeros((2, 3), bool), attn_mask=np.zeros((3, 3)))


def test_mha_errors_name_the_problem():
    with pytest.raises(ValueError, match="num_heads=4 does not split embed_dim=6"):
        MultiheadAttention(6, 4)
    with pytest.raises(ValueError, match="needs a positive embed_dim and num_heads"):
        MultiheadAttention(0, 1)
    m = MultiheadAttention(4, 2).double()
    x = _t(normal(3, 2, 4))
    with pytest.raises(ValueError, match=r"unbatched 2-D \(L, E\) or batched 3-D"):
        m(_t(normal(1, 3, 2, 4)), x, x)
    with pytest.raises(ValueError, match="expected key and value to be 3-D"):
        m(x, _t(normal(3, 4)), _t(normal(3, 4)))
    with pytest.raises(ValueError, match=r"2D attn_mask is \(3, 2\), but should be \(3, 3\)"):
        m(x, x, x, attn_mask=np.zeros((3, 2), bool))
    with pytest.raises(ValueError, match=r"3D attn_mask is \(2, 3, 3\), but should be "
                                         r"\(4, 3, 3\)"):
        m(x, x, x, attn_mask=np.zeros((2, 3, 3), bool))
    with pytest.raises(ValueError, match=r"key_padding_mask of shape \(2, 3\) \(N, S\), got "
                                         r"\(2, 4\)"):
        m(x, x, x, key_padding_mask=np.zeros((2, 4), bool))
    with pytest.raises(TypeError, match="only bool and floating types of key_padding_mask"):
        m(x, x, x, key_padding_mask=np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"expecting embedding dimension of 4, but got 5"):
        m(_t(normal(3, 2, 5)), x, x)
    with pytest.raises(ValueError, match=r"key shape \(3, 2, 4\) does not match value shape"):
        m(x, x, _t(normal(4, 2, 4)))


# ----- gradients through multi-head attention (float64, small)

def _functional_mha(**kw):
    def fn(q, k, v, w_in, b_in, w_out, b_out):
        return multi_head_attention_forward(q, k, v, 4, 2, w_in, b_in, None, None, False, 0.0,
                                            w_out, b_out, **kw)[0]
    return fn


_MHA_INPUTS = [normal(3, 2, 4), normal(2, 2, 4, seed=1), normal(2, 2, 4, seed=2),
               0.5 * normal(12, 4, seed=3), 0.1 * normal(12, seed=4), 0.5 * normal(4, 4, seed=5),
               0.1 * normal(4, seed=6)]


@pytest.mark.parametrize("kw", [{}, {"need_weights": False},
                                {"key_padding_mask": np.array([[False, True], [False, False]])},
                                {"attn_mask": normal(3, 2, seed=7)}],
                         ids=["weights", "sdpa", "key_padding", "float_mask"])
def test_mha_first_and_second_order_gradients(kw):
    fn = _functional_mha(**kw)
    check_backward(fn, _MHA_INPUTS, n_directions=6)
    check_double_backward(fn, _MHA_INPUTS, atol=1e-6, rtol=1e-5)


def test_mha_module_gradients_reach_every_parameter():
    m = randomise(MultiheadAttention(4, 2, kdim=3, vdim=2, add_bias_kv=True).double())
    q, k, v = _t(normal(3, 2, 4), grad=True), _t(normal(5, 2, 3)), _t(normal(5, 2, 2))
    out, w = m(q, k, v)
    (out * _t(normal(3, 2, 4, seed=9))).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and np.abs(_np(p.grad)).sum() > 0, name
    # the module's gradient w.r.t. the query, checked by finite differences
    check_backward(lambda x: m(x, k, v)[0], [normal(3, 2, 4)])
    check_double_backward(lambda x: m(x, k, v, need_weights=False)[0], [normal(3, 2, 4)],
                          atol=1e-6, rtol=1e-5)


# ----- state dicts, parameters, init (torch's keys and shapes, hard-coded)

_ENC_LAYER = [("self_attn.in_proj_weight", (24, 8)), ("self_attn.in_proj_bias", (24,)),
              ("self_attn.out_proj.weight", (8, 8)), ("self_attn.out_proj.bias", (8,)),
              ("linear1.weight", (16, 8)), ("linear1.bias", (16,)),
              ("linear2.weight", (8, 16)), ("linear2.bias", (8,)), ("norm1.weight", (8,)),
              ("norm1.bias", (8,)), ("norm2.weight", (8,)), ("norm2.bias", (8,))]
_DEC_LAYER = [("self_attn.in_proj_weight", (24, 8)), ("self_attn.in_proj_bias", (24,)),
              ("self_attn.out_proj.weight", (8, 8)), ("self_attn.out_proj.bias", (8,)),
              ("multihead_attn.in_proj_weight", (24, 8)), ("multihead_attn.in_proj_bias", (24,)),
              ("multihead_attn.out_proj.weight", (8, 8)), ("multihead_attn.out_proj.bias", (8,)),
              ("linear1.weight", (16, 8)), ("linear1.bias", (16,)),
              ("linear2.weight", (8, 16)), ("linear2.bias", (8,)), ("norm1.weight", (8,)),
              ("norm1.bias", (8,)), ("norm2.weight", (8,)), ("norm2.bias", (8,)),
              ("norm3.weight", (8,)), ("norm3.bias", (8,))]
TORCH_KEYS = {
    "mha": (lambda: MultiheadAttention(8, 2),
            [("in_proj_weight", (24, 8)), ("in_proj_bias", (24,)), ("out_proj.weight", (8, 8)),
             ("out_proj.bias", (8,))]),
    "mha_kdim_vdim_bias_kv": (
        lambda: MultiheadAttention(8, 2, kdim=3, vdim=5, add_bias_kv=True),
        [("q_proj_weight", (8, 8)), ("k_proj_weight", (8, 3)), ("v_proj_weight", (8, 5)),
         ("in_proj_bias", (24,)), ("bias_k", (1, 1, 8)), ("bias_v", (1, 1, 8)),
         ("out_proj.weight", (8, 8)), ("out_proj.bias", (8,))]),
    "mha_no_bias": (lambda: MultiheadAttention(8, 2, bias=False),
                    [("in_proj_weight", (24, 8)), ("out_proj.weight", (8, 8))]),
    "encoder_layer": (lambda: TransformerEncoderLayer(8, 2, 16), _ENC_LAYER),
    "decoder_layer_no_bias": (
        lambda: TransformerDecoderLayer(8, 2, 16, bias=False),
        [(k, s) for k, s in _DEC_LAYER if not k.endswith("bias")]),
    "encoder_with_norm": (
        lambda: TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 2,
                                   minigan.nn.LayerNorm(8)),
        [(f"layers.{i}.{k}", s) for i in range(2) for k, s in _ENC_LAYER]
        + [("norm.weight", (8,)), ("norm.bias", (8,))]),
    "decoder_without_norm": (
        lambda: TransformerDecoder(TransformerDecoderLayer(8, 2, 16), 2),
        [(f"layers.{i}.{k}", s) for i in range(2) for k, s in _DEC_LAYER]),
    "transformer": (
        lambda: Transformer(8, 2, 1, 1, 16),
        [("encoder.layers.0." + k, s) for k, s in _ENC_LAYER]
        + [("encoder.norm.weight", (8,)), ("encoder.norm.bias", (8,))]
        + [("decoder.layers.0." + k, s) for k, s in _DEC_LAYER]
        + [("decoder.norm.weight", (8,)), ("decoder.norm.bias", (8,))]),
}


@pytest.mark.parametrize("case", sorted(TORCH_KEYS))
def test_state_dict_keys_and_shapes_are_torchs(case):
    make, want = TORCH_KEYS[case]
    sd = make().state_dict()
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == want
    fresh = make()
    fresh.load_state_dict(sd)
    for k, v in fresh.state_dict().items():
        assert np.array_equal(_np(v), _np(sd[k]))


def test_initialisation_follows_torch():
    m = MultiheadAttention(8, 2, add_bias_kv=True)
    assert m.in_proj_weight.dtype == np.float32
    bound = math.sqrt(6 / (8 + 24))  # xavier_uniform_ on the (24, 8) packed weight
    w = _np(m.in_proj_weight)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.all(_np(m.in_proj_bias) == 0) and np.all(_np(m.out_proj.bias) == 0)
    assert np.abs(_np(m.bias_k)).sum() > 0 and np.abs(_np(m.bias_v)).sum() > 0
    assert m.bias_k.shape == (1, 1, 8)
    sep = MultiheadAttention(8, 2, kdim=4)
    assert np.abs(_np(sep.k_proj_weight)).max() <= math.sqrt(6 / (4 + 8))
    t = Transformer(8, 2, 1, 1, 24)
    for lin in (t.encoder.layers[0].linear2, t.decoder.layers[0].linear2):
        # re-initialised Xavier-uniform, bound sqrt(6 / 32) (Linear's own: 1 / sqrt(24))
        w = _np(lin.weight)
        assert math.sqrt(6 / 32) >= np.abs(w).max() > 0.8 * math.sqrt(6 / 32)
    assert np.all(_np(t.decoder.norm.weight) == 1)
    layer = TransformerEncoderLayer(8, 2)
    assert layer.linear1.weight.shape == (2048, 8) and layer.dropout.p == 0.1
    assert layer.norm1.eps == 1e-5 and not layer.norm_first and not layer.self_attn.batch_first
    assert layer.activation is minigan.functional.relu and layer.activation_relu_or_gelu == 1
    assert TransformerEncoderLayer(8, 2, activation="gelu").activation_relu_or_gelu == 2
    enc = TransformerEncoder(layer, 2, enable_nested_tensor=False)
    assert enc.layers[0] is not enc.layers[1] and enc.norm is None
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight


def test_generate_square_subsequent_mask():
    m = Transformer.generate_square_subsequent_mask(3)
    assert m.dtype == np.float32 and m.shape == (3, 3)
    assert np.array_equal(_np(m), np.array([[0, NEG, NEG], [0, 0, NEG], [0, 0, 0]]))
    assert Transformer.generate_square_subsequent_mask(2, dtype=np.float64).dtype == np.float64


# ----- transformer layers

def test_encoder_layer_matches_its_definition_post_and_pre_norm():
    F = minigan.functional
    x = _t(normal(3, 2, 8))
    for norm_first in (False, True):
        lay = randomise(TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu",
                                                norm_first=norm_first).double())

        def sa(h):
            return lay.self_attn(h, h, h, need_weights=False)[0]

        def ff(h):
            return lay.linear2(F.gelu(lay.linear1(h)))
        if norm_first:
            h = x + sa(lay.norm1(x))
            want = h + ff(lay.norm2(h))
        else:
            h = lay.norm1(x + sa(x))
            want = lay.norm2(h + ff(h))
        close(lay(x), want)


def test_encoder_key_padding_leaves_other_positions_alone():
    enc = TransformerEncoder(TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                             2, minigan.nn.LayerNorm(8)).double().eval()
    x = normal(2, 5, 8)
    kpm = np.zeros((2, 5), bool)
    kpm[0, 3:] = True
    y = enc(_t(x), src_key_padding_mask=kpm)
    x2 = x.copy()
    x2[0, 3:] += 10 * normal(2, 8, seed=3)  # change the padded positions only
    y2 = enc(_t(x2), src_key_padding_mask=kpm)
    close(y2[0, :3], y[0, :3])
    close(y2[1], y[1])
    assert not np.allclose(_np(y2[0, 3:]), _np(y[0, 3:]))


def test_causal_mask_detection_looks_at_values_only_where_it_is_observable():
    """torch compares a mask with the causal one (a host sync); minigan does only for a CPU
    mask that requires grad, the one case where the answer shows (torch drops a causal mask
    from the graph)."""
    from minigan.nn.transformer import _detect_is_causal_mask
    causal = Transformer.generate_square_subsequent_mask(4, dtype=np.float64)
    assert not _detect_is_causal_mask(causal, None, 4)  # same numbers either way: not compared
    assert not _detect_is_causal_mask(causal, False, 4)  # an explicit hint wins
    assert _detect_is_causal_mask(causal, True, 4)
    assert _detect_is_causal_mask(None, True, 4)
    assert not _detect_is_causal_mask(None, None, 4)
    learned = _t(_np(causal), grad=True)
    assert _detect_is_causal_mask(learned, None, 4)
    assert not _detect_is_causal_mask(learned, None, 3)  # the size must match the sequence
    with minigan.no_grad():
        assert not _detect_is_causal_mask(learned, None, 4)
    other = _np(causal).copy()
    other[3, 0] = NEG
    assert not _detect_is_causal_mask(_t(other, grad=True), None, 4)


def test_a_causal_mask_that_requires_grad_gets_none_as_in_torch():
    enc = randomise(TransformerEncoder(TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2)
                    .double())
    x = _t(normal(4, 2, 8))
    causal = _np(Transformer.generate_square_subsequent_mask(4, dtype=np.float64))
    mask = _t(causal, grad=True)
    y = enc(x, mask=mask)
    close(y, enc(x, mask=_t(causal)))
    g, = minigan.grad(y.sum(), [mask], allow_unused=True)
    assert g is None  # detected as causal: dropped from the graph, as torch does
    other = causal.copy()
    other[3, 0] = -1.0
    mask = _t(other, grad=True)
    g, = minigan.grad(enc(x, mask=mask).sum(), [mask], allow_unused=True)
    assert g is not None and np.abs(_np(g)[np.tril_indices(4)]).max() > 0


def test_encoder_and_decoder_with_a_causal_float_mask_do_not_wait_for_the_gpu(emulated_gpu):
    from tests.kernels import emulated_cupy as E
    enc = TransformerEncoder(TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2).to("cuda")
    dec = TransformerDecoder(TransformerDecoderLayer(8, 2, 16, dropout=0.0), 2).to("cuda")
    causal = Transformer.generate_square_subsequent_mask(4, device="cuda")
    assert isinstance(causal.data, emulated_gpu.ndarray)
    x = _t(normal(4, 2, 8).astype(np.float32), "cuda")
    E.LOG.clear()
    y = enc(x, mask=causal)
    z = dec(x, y, tgt_mask=causal)
    y2 = enc(x, mask=_t(causal.data, "cuda", grad=True))  # a learned mask: not compared either
    assert dict(E.LOG.syncs) == {}
    close(y, enc(x, mask=causal, is_causal=True), tol=1e-6)
    close(y2, y, tol=1e-6)
    close(z, dec(x, y, tgt_mask=causal, tgt_is_causal=True), tol=1e-6)


def test_causal_mask_detection_and_batch_first_equivalence():
    enc = randomise(TransformerEncoder(TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2)
                    .double())
    x = normal(4, 2, 8)
    causal = Transformer.generate_square_subsequent_mask(4, dtype=np.float64)
    y = enc(_t(x), mask=causal)  # detected as causal
    close(y, enc(_t(x), mask=causal, is_causal=True))
    x3 = x.copy()
    x3[3] += 1.0  # a causal encoder's earlier outputs ignore later inputs
    close(enc(_t(x3), mask=causal)[:3], y[:3])
    bf = TransformerEncoder(TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
                            2).double()
    bf.load_state_dict(enc.state_dict())
    close(bf(_t(x.transpose(1, 0, 2)), mask=causal), _np(y).transpose(1, 0, 2))
    close(enc(_t(x[:, 1]), mask=causal), _np(y)[:, 1])  # unbatched


def test_transformer_forward_shapes_eval_determinism_and_dropout(device):
    t = Transformer(8, 2, 2, 1, 16, dropout=0.5, batch_first=True).double().to(device)
    src, tgt = _t(normal(2, 5, 8), device), _t(normal(2, 3, 8, seed=1), device)
    mask = Transformer.generate_square_subsequent_mask(3, device=device, dtype=np.float64)
    t.eval()
    y = t(src, tgt, tgt_mask=mask)
    assert y.shape == (2, 3, 8) and y.device == device
    close(t(src, tgt, tgt_mask=mask), y, tol=0)  # eval: no dropout, the same every time
    t.train()
    y1, y2 = t(src, tgt, tgt_mask=mask), t(src, tgt, tgt_mask=mask)
    assert not np.allclose(_np(y1), _np(y2)) and not np.allclose(_np(y1), _np(y))
    y1.sum().backward()
    assert all(p.grad is not None for p in t.parameters())


def test_attention_gradients_on_the_device_match_the_cpu(device):
    m = randomise(MultiheadAttention(4, 2).double())
    grads = {}
    for dev in ("cpu", device):
        mm = MultiheadAttention(4, 2).double()
        mm.load_state_dict(m.state_dict())
        mm.to(dev)
        x = _t(normal(3, 2, 4), dev, grad=True)
        kpm = _t(np.array([[False, False, True], [False, False, False]]), dev)
        out = mm(x, x, x, key_padding_mask=kpm, need_weights=False)[0]
        (out * _t(normal(3, 2, 4, seed=1), dev)).sum().backward()
        assert x.grad.device == dev
        grads[dev] = [_np(x.grad)] + [_np(p.grad) for p in mm.parameters()]
    for a, b in zip(grads["cpu"], grads[device]):
        close(a, b)


def test_decoder_layer_gradients_first_and_second_order():
    lay = randomise(TransformerDecoderLayer(4, 2, 6, dropout=0.0, norm_first=True).double())
    mem = _t(normal(3, 2, 4, seed=5))
    causal = Transformer.generate_square_subsequent_mask(2, dtype=np.float64)
    fn = lambda x: lay(x, mem, tgt_mask=causal, tgt_is_causal=True)  # noqa: E731
    check_backward(fn, [normal(2, 2, 4)])
    check_double_backward(fn, [normal(2, 2, 4)], atol=1e-6, rtol=1e-5)


def test_transformer_errors():
    t = Transformer(8, 2, 1, 1, 16).double()
    with pytest.raises(RuntimeError, match="src and tgt disagree on the batch size"):
        t(_t(normal(5, 2, 8)), _t(normal(3, 3, 8)))
    with pytest.raises(RuntimeError, match="must both have d_model=8 features"):
        t(_t(normal(5, 2, 8)), _t(normal(3, 2, 6)))
    with pytest.raises(RuntimeError, match="unknown activation 'tanh'"):
        TransformerEncoderLayer(8, 2, activation="tanh")
    lay = TransformerDecoderLayer(8, 2, 16).double()
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        lay(_t(normal(3, 2, 8)), _t(normal(4, 2, 8)), tgt_is_causal=True)


# ----- against torch (skipped where torch is missing)

def _torch():
    return pytest.importorskip("torch")


def _to_torch(torch, a, grad=False):
    return torch.tensor(_np(a), dtype=torch.float64, requires_grad=grad)


def test_sdpa_matches_torch_values_and_gradients():
    torch = _torch()
    TF = torch.nn.functional
    fmask = normal(4, 6, seed=9)
    cases = [dict(), dict(attn_mask=_BOOL), dict(attn_mask=fmask), dict(is_causal=True),
             dict(scale=0.25)]
    full = np.ones((4, 6), bool)
    full[2] = False
    cases.append(dict(attn_mask=full))
    gy = normal(2, 3, 4, 7, seed=11)
    for kw in cases:
        mq, mk, mv = (_t(a, grad=True) for a in (_Q, _K, _V))
        tq, tk, tv = (_to_torch(torch, a, True) for a in (_Q, _K, _V))
        tkw = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
        y = sdpa(mq, mk, mv, **kw)
        ty = TF.scaled_dot_product_attention(tq, tk, tv, **tkw)
        close(y, ty.detach().numpy())
        (y * _t(gy)).sum().backward()
        (ty * torch.tensor(gy)).sum().backward()
        for a, b in ((mq, tq), (mk, tk), (mv, tv)):
            close(a.grad, b.grad.numpy())
    q, k, v = normal(2, 6, 4, 5), normal(2, 2, 3, 5, seed=1), normal(2, 2, 3, 4, seed=2)
    close(sdpa(_t(q), _t(k), _t(v), enable_gqa=True),
          TF.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                                          enable_gqa=True).numpy())


def _copy_to_torch(torch, ours, theirs):
    theirs.load_state_dict({k: torch.tensor(_np(v)) for k, v in ours.state_dict().items()})


def _compare_grads(torch, ours, theirs):
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p.grad, tp[name].grad.numpy())


MHA_TORCH = {
    "self_weights": (dict(), dict(self_attn=True)),
    "self_sdpa_kpm": (dict(), dict(self_attn=True, need_weights=False, kpm=True)),
    "cross_mask_heads": (dict(), dict(attn_mask=True, average_attn_weights=False, kpm=True)),
    "kdim_vdim_batch_first": (dict(kdim=3, vdim=5, batch_first=True), dict()),
    "bias_kv_zero_attn": (dict(add_bias_kv=True, add_zero_attn=True), dict(kpm=True)),
    "no_bias_causal": (dict(bias=False), dict(self_attn=True, causal=True, need_weights=False)),
}


@pytest.mark.filterwarnings("ignore:Support for mismatched")
@pytest.mark.parametrize("case", sorted(MHA_TORCH))
def test_mha_matches_torch_outputs_weights_and_gradients(case):
    torch = _torch()
    ctor, opt = MHA_TORCH[case]
    E, H, L, S, N = 6, 2, 4, 5, 3
    ours = randomise(MultiheadAttention(E, H, **ctor).double())
    theirs = torch.nn.MultiheadAttention(E, H, **ctor).double()
    _copy_to_torch(torch, ours, theirs)
    bf = ctor.get("batch_first", False)
    shape = (lambda n, s, e: (n, s, e)) if bf else (lambda n, s, e: (s, n, e))
    q = normal(*shape(N, L, E), seed=3)
    if opt.get("self_attn"):
        k = v = q
        S = L
    else:
        k = normal(*shape(N, S, ctor.get("kdim", E)), seed=4)
        v = normal(*shape(N, S, ctor.get("vdim", E)), seed=5)
    kw = dict(need_weights=opt.get("need_weights", True),
              average_attn_weights=opt.get("average_attn_weights", True))
    tkw = dict(kw)
    if opt.get("kpm"):
        kpm = np.zeros((N, S), bool)
        kpm[0, -2:] = True
        kw["key_padding_mask"], tkw["key_padding_mask"] = kpm, torch.tensor(kpm)
    if opt.get("attn_mask"):
        am = normal(N * H, L, S, seed=6)
        kw["attn_mask"], tkw["attn_mask"] = am, torch.tensor(am)
    if opt.get("causal"):
        cm = Transformer.generate_square_subsequent_mask(L, dtype=np.float64)
        kw.update(attn_mask=cm, is_causal=True)
        tkw.update(attn_mask=torch.tensor(_np(cm)), is_causal=True)
    mq = _t(q, grad=True)
    tq = _to_torch(torch, q, True)
    if opt.get("self_attn"):
        mk = mv = mq
        tk = tv = tq
    else:
        mk, mv = _t(k, grad=True), _t(v, grad=True)
        tk, tv = _to_torch(torch, k, True), _to_torch(torch, v, True)
    out, w = ours(mq, mk, mv, **kw)
    tout, tw = theirs(tq, tk, tv, **tkw)
    close(out, tout.detach().numpy())
    if tw is None:
        assert w is None
    else:
        close(w, tw.detach().numpy())
    gy = normal(*out.shape, seed=8)
    loss = (out * _t(gy)).sum() + ((w * w).sum() if w is not None else 0)
    tloss = (tout * torch.tensor(gy)).sum() + ((tw * tw).sum() if tw is not None else 0)
    loss.backward()
    tloss.backward()
    _compare_grads(torch, ours, theirs)
    close(mq.grad, tq.grad.numpy())
    if not opt.get("self_attn"):
        close(mk.grad, tk.grad.numpy())
        close(mv.grad, tv.grad.numpy())


@pytest.mark.filterwarnings("ignore:Support for mismatched", "ignore:enable_nested_tensor")
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_matches_torch(norm_first, activation):
    torch = _torch()
    kw = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2,
              dim_feedforward=12, dropout=0.1, activation=activation, norm_first=norm_first,
              batch_first=True)
    ours = randomise(Transformer(**kw).double()).eval()
    theirs = torch.nn.Transformer(**kw).double().eval()
    _copy_to_torch(torch, ours, theirs)
    src, tgt = normal(2, 5, 8), normal(2, 4, 8, seed=1)
    skpm = np.zeros((2, 5), bool)
    skpm[1, 3:] = True
    tkpm = np.zeros((2, 4), bool)
    tkpm[0, 3] = True
    tmask = Transformer.generate_square_subsequent_mask(4, dtype=np.float64)
    ms, mt = _t(src, grad=True), _t(tgt, grad=True)
    ts, tt = _to_torch(torch, src, True), _to_torch(torch, tgt, True)
    y = ours(ms, mt, tgt_mask=tmask, src_key_padding_mask=skpm, tgt_key_padding_mask=tkpm,
             memory_key_padding_mask=skpm)
    ty = theirs(ts, tt, tgt_mask=torch.tensor(_np(tmask)),
                src_key_padding_mask=torch.tensor(skpm), tgt_key_padding_mask=torch.tensor(tkpm),
                memory_key_padding_mask=torch.tensor(skpm))
    close(y, ty.detach().numpy())
    gy = normal(2, 4, 8, seed=2)
    (y * _t(gy)).sum().backward()
    (ty * torch.tensor(gy)).sum().backward()
    _compare_grads(torch, ours, theirs)
    close(ms.grad, ts.grad.numpy())
    close(mt.grad, tt.grad.numpy())


def test_encoder_layer_bias_false_and_callable_activation_match_torch():
    torch = _torch()
    ours = randomise(TransformerEncoderLayer(8, 2, 12, dropout=0.0, bias=False,
                                             activation=minigan.functional.tanh).double())
    theirs = torch.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.0, bias=False,
                                              activation=torch.tanh).double()
    _copy_to_torch(torch, ours, theirs)
    x = normal(3, 8)  # unbatched
    close(ours(_t(x)), theirs(torch.tensor(x)).detach().numpy())
    theirs2 = torch.nn.TransformerEncoderLayer(8, 2, 12, bias=False).double()  # and back
    ours.load_state_dict(theirs2.state_dict())
    close(ours.linear1.weight, theirs2.linear1.weight.detach().numpy())
