"""Adam and SGD kernels: 100 steps against plain-formula references, plus GPU-vs-NumPy parity."""
import math
import re
import shutil

import numpy as np
import pytest

from minigan import backend
from minigan.kernels import optim as KO

to_np = backend.to_numpy
STEPS = 100


def _grad(p, t, seed):
    """A gradient that depends on the parameter (a noisy quadratic), so errors would compound."""
    noise = np.random.default_rng(seed).standard_normal(p.shape)
    return (p - 1.0) * 0.5 + 0.1 * noise


def _adam_reference(p0, lr, b1, b2, eps, wd, steps=STEPS):
    """Adam as written in torch.optim.Adam's documentation, one Python float at a time."""
    p = [float(v) for v in p0.ravel()]
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    for t in range(1, steps + 1):
        grads = _grad(np.array(p).reshape(p0.shape), t, t).ravel()
        for i in range(len(p)):
            g = grads[i] + wd * p[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1 ** t)
            v_hat = v[i] / (1 - b2 ** t)
            p[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return np.array(p).reshape(p0.shape), np.array(m).reshape(p0.shape), \
        np.array(v).reshape(p0.shape)


def _sgd_reference(p0, lr, momentum, wd, dampening, nesterov, steps=STEPS):
    p = p0.astype(np.float64).copy()
    buf = None
    for t in range(1, steps + 1):
        g = _grad(p, t, t) + wd * p
        if momentum != 0:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p, buf


ADAM_CASES = [  # lr, beta1, beta2, eps, weight_decay
    (1e-3, 0.9, 0.999, 1e-8, 0.0),
    (2e-4, 0.5, 0.999, 1e-8, 0.0),  # DCGAN
    (1e-2, 0.5, 0.9, 1e-6, 1e-2),
    (5e-3, 0.9, 0.99, 1e-8, 0.1),
]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("lr,b1,b2,eps,wd", ADAM_CASES)
def test_adam_100_steps(xp, dtype, tol, lr, b1, b2, eps, wd):
    p0 = np.random.default_rng(0).standard_normal((5, 4))
    p = xp.asarray(p0.astype(dtype))
    m, v = xp.zeros_like(p), xp.zeros_like(p)
    ids = (id(p), id(m), id(v))
    for t in range(1, STEPS + 1):
        g = xp.asarray(_grad(to_np(p).astype(np.float64), t, t).astype(dtype))
        assert KO.adam_step(p, g, m, v, t, lr, b1, b2, eps, wd) is None
    assert (id(p), id(m), id(v)) == ids and p.dtype == dtype
    p_ref, m_ref, v_ref = _adam_reference(p0.astype(dtype), lr, b1, b2, eps, wd)
    np.testing.assert_allclose(to_np(p), p_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(to_np(m), m_ref, rtol=tol * 10, atol=tol)
    np.testing.assert_allclose(to_np(v), v_ref, rtol=tol * 10, atol=tol)


def test_adam_first_step_moves_by_lr(xp):
    # After bias correction the first step is lr * g / (|g| + eps): lr * sign(g).
    p = xp.asarray(np.array([1.0, -2.0, 3.0]))
    g = xp.asarray(np.array([0.3, -5.0, 1e-3]))
    KO.adam_step(p, g, xp.zeros_like(p), xp.zeros_like(p), 1, 0.1, 0.9, 0.999, 1e-12, 0.0)
    np.testing.assert_allclose(to_np(p), [0.9, -1.9, 2.9], rtol=1e-8)
    with pytest.raises(ValueError):
        KO.adam_step(p, g, xp.zeros_like(p), xp.zeros_like(p), 0, 0.1, 0.9, 0.999, 1e-8, 0.0)


@pytest.mark.parametrize("foreach", [True, False])
def test_adam_multi_matches_single(xp, foreach):
    rng = np.random.default_rng(1)
    shapes = [(3, 2), (5,), (2, 2, 2)]
    ps = [xp.asarray(rng.standard_normal(s)) for s in shapes]
    qs = [p.copy() for p in ps]
    ms, vs = [xp.zeros_like(p) for p in ps], [xp.zeros_like(p) for p in ps]
    mq, vq = [xp.zeros_like(p) for p in ps], [xp.zeros_like(p) for p in ps]
    for t in range(1, 6):
        gs = [xp.asarray(rng.standard_normal(s)) for s in shapes]
        KO.adam_step_multi(ps, gs, ms, vs, t, 1e-2, 0.9, 0.999, 1e-8, 0.01, foreach=foreach)
        for q, g, m, v in zip(qs, gs, mq, vq):
            KO.adam_step(q, g, m, v, t, 1e-2, 0.9, 0.999, 1e-8, 0.01)
    for p, q in zip(ps, qs):
        if foreach and xp is not np:  # another kernel: the compiler may contract differently
            np.testing.assert_allclose(to_np(p), to_np(q), rtol=1e-13, atol=1e-15)
        else:
            np.testing.assert_array_equal(to_np(p), to_np(q))
    with pytest.raises(ValueError, match="differ in length"):
        KO.adam_step_multi(ps, gs[:1], ms, vs, 1, 1e-2, 0.9, 0.999, 1e-8)
    with pytest.raises(ValueError, match="2 step counts for 3 parameters"):
        KO.adam_step_multi(ps, gs, ms, vs, [1, 2], 1e-2, 0.9, 0.999, 1e-8)
    before = [to_np(p).copy() for p in ps]
    with pytest.raises(ValueError, match=re.escape(
            "adam_step_multi: parameter 1 has shape (5,), its gradient (1,) and its state (5,) "
            "and (5,); they must all match")):
        KO.adam_step_multi(ps, [gs[0], gs[1][:1], gs[2]], ms, vs, 6, 1e-2, 0.9, 0.999, 1e-8,
                           foreach=foreach)
    for p, b in zip(ps, before):  # checked before anything was updated
        np.testing.assert_array_equal(to_np(p), b)


@pytest.mark.parametrize("decoupled,maximize", [(True, False), (False, True), (True, True)])
def test_adam_multi_decoupled_and_maximize(xp, decoupled, maximize):
    """AdamW's shrink and maximize's ascent, against the formulas written out."""
    rng = np.random.default_rng(3)
    p0, lr, wd = rng.standard_normal((4, 3)), 0.05, 0.1
    p, m, v = xp.asarray(p0), xp.zeros((4, 3)), xp.zeros((4, 3))
    pr, mr, vr = p0.copy(), np.zeros((4, 3)), np.zeros((4, 3))
    for t in range(1, 4):
        g0 = rng.standard_normal((4, 3))
        KO.adam_step_multi([p], [xp.asarray(g0)], [m], [v], t, lr, 0.9, 0.99, 1e-8, wd,
                           decoupled=decoupled, maximize=maximize)
        g = -g0 if maximize else g0.copy()
        if decoupled:
            pr *= 1 - lr * wd
        else:
            g += wd * pr
        mr = 0.9 * mr + 0.1 * g
        vr = 0.99 * vr + 0.01 * g * g
        pr -= lr * (mr / (1 - 0.9 ** t)) / (np.sqrt(vr / (1 - 0.99 ** t)) + 1e-8)
    np.testing.assert_allclose(to_np(p), pr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_np(m), mr, rtol=1e-12, atol=1e-14)


# The multi-tensor kernel's source without a GPU: run on the CPU by the emulated CuPy (each
# (block, thread) in turn), and compiled by nvcc where it is installed.

def _emulated_multi(monkeypatch, max_blocks, max_tensors):
    """Point the GPU path's kernel lookup at emulated kernels; returns the launches made."""
    from tests.kernels import cuda_emulation as emu
    if not emu.have_cxx():
        pytest.skip("no C++ compiler (g++) to emulate the kernel with")
    built, launches = {}, []

    def kernel_for(dtype_name, sizes, capturable=False):
        assert not capturable  # this stand-in builds the plain kernel (adam_step_multi's)
        ctype = KO._MULTI_DTYPES[dtype_name]
        code, name, grid = KO.adam_multi_source(ctype, sizes, max_blocks=max_blocks)
        if code not in built:
            sig = [("ptr", ctype)] * (4 * len(sizes)) + [("scalar", ctype)] * 10
            built[code] = emu.EmulatedKernel(code, name, sig)

        def launch(grid_, block, args):
            launches.append((dtype_name, sizes, grid_, block))
            built[code](grid_, block, args)
        return launch, grid

    monkeypatch.setattr(KO, "_adam_multi_kernel", kernel_for)
    monkeypatch.setattr(KO, "_MULTI_MAX_TENSORS", max_tensors)
    return launches


@pytest.mark.parametrize("decoupled,maximize,wd", [(False, False, 0.0), (False, True, 0.01),
                                                   (True, False, 0.1)])
def test_adam_multi_kernel_emulated_matches_per_parameter_path(monkeypatch,
                                                               decoupled, maximize, wd):
    """The GPU path's host side (buckets by dtype and step, chunks, argument order, fallbacks)
    and the generated kernel, run on the CPU: every element of every tensor must get the
    per-parameter update. Few blocks per tensor (3) and few tensors per launch (4) make the
    grid-stride loop and the chunking run with small arrays."""
    launches = _emulated_multi(monkeypatch, max_blocks=3, max_tensors=4)
    rng = np.random.default_rng(5)
    specs = [((1,), np.float32), ((3, 5), np.float32), ((1000,), np.float32),
             ((64, 37), np.float32), ((7,), np.float64), ((2000, 3), np.float32),
             ((0, 4), np.float32), ((4, 6), np.float32), ((5, 5), np.float64),
             ((9,), np.float32), ((2, 3, 4), np.float32), ((11,), np.float16)]
    params = [rng.standard_normal(s).astype(d) for s, d in specs]
    params.append(rng.standard_normal((6, 5)).astype(np.float32).T)  # not C-contiguous
    steps = [3] * len(params)
    steps[3] = steps[9] = 7  # loaded state, say: a second bucket
    ref = [p.copy() for p in params]
    states = [[rng.random(p.shape).astype(p.dtype) * 0.1 for p in params] for _ in range(2)]
    ref_states = [[a.copy() for a in st] for st in states]
    for t in range(2):
        grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
        step_t = [s + t for s in steps]
        rest = KO._adam_multi_cupy(params, grads, *states, step_t, 2e-3, 0.5, 0.999, 1e-8,
                                   0.0 if decoupled else wd, 1.0 - 2e-3 * wd if decoupled
                                   else 1.0, maximize)
        assert rest == [11, 12]  # float16 and the transposed view take the per-parameter path
        KO.adam_step_multi([params[i] for i in rest], [grads[i] for i in rest],
                           [states[0][i] for i in rest], [states[1][i] for i in rest],
                           [step_t[i] for i in rest], 2e-3, 0.5, 0.999, 1e-8, wd,
                           decoupled=decoupled, maximize=maximize)
        KO.adam_step_multi(ref, grads, *ref_states, step_t, 2e-3, 0.5, 0.999, 1e-8, wd,
                           decoupled=decoupled, maximize=maximize, foreach=False)
    for i, (p, r) in enumerate(zip(params, ref)):
        tol = 1e-12 if p.dtype == np.float64 else 2e-6
        np.testing.assert_allclose(p, r, rtol=tol, atol=tol, err_msg=f"parameter {i}")
        for st, rst in zip(states, ref_states):
            np.testing.assert_allclose(st[i], rst[i], rtol=tol, atol=tol, err_msg=f"state {i}")
    # per step: float32 at step 3+t (6 tensors, the empty one left out: launches of 4 and 2),
    # float32 at 7+t (2 tensors), float64 at 3+t (2 tensors)
    assert len(launches) == 2 * 4
    assert sorted(len(sizes) for _, sizes, _, _ in launches[:4]) == [2, 2, 2, 4]
    assert all(block == (KO._MULTI_THREADS,) and 0 not in sizes
               for _, sizes, _, block in launches)


def test_adam_multi_source_block_layout():
    code, name, grid = KO.adam_multi_source("float", [1, 256, 257, 10 ** 6], max_blocks=512)
    assert name == "minigan_adam_multi" and grid == 1 + 1 + 2 + 512
    assert "n = 1000000LL; first = 4u; nblocks = 512u;" in code
    assert "n = 257LL; first = 2u; nblocks = 2u;" in code
    with pytest.raises(ValueError, match=re.escape("sizes [3, 0]")):
        KO.adam_multi_source("float", [3, 0])


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_adam_multi_source_compiles_for_hopper_without_spills(tmp_path):
    """The largest launch (48 tensors, float32) and a float64 one, compiled for sm_90 by nvcc:
    no errors, and no register spills."""
    from tests.kernels.cuda_emulation import compile_with_nvcc
    rng = np.random.default_rng(0)
    for ctype, n in (("float", KO._MULTI_MAX_TENSORS), ("double", 3)):
        sizes = [int(s) for s in rng.integers(1, 10 ** 6, n)]
        code, _, _ = KO.adam_multi_source(ctype, sizes)
        report = compile_with_nvcc(code, tmp_path)
        assert "Used" in report and "registers" in report, report
        assert "0 bytes spill stores, 0 bytes spill loads" in report, report


SGD_CASES = [  # lr, momentum, weight_decay, dampening, nesterov
    (0.1, 0.0, 0.0, 0.0, False),
    (0.1, 0.0, 0.01, 0.0, False),
    (0.05, 0.9, 0.0, 0.0, False),
    (0.05, 0.9, 0.01, 0.0, False),
    (0.05, 0.9, 0.0, 0.0, True),
    (0.05, 0.9, 0.01, 0.0, True),
    (0.05, 0.5, 0.01, 0.1, False),
]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("lr,momentum,wd,dampening,nesterov", SGD_CASES)
def test_sgd_100_steps(xp, dtype, tol, lr, momentum, wd, dampening, nesterov):
    p0 = np.random.default_rng(0).standard_normal((5, 4))
    p = xp.asarray(p0.astype(dtype))
    buf = xp.full(p.shape, np.nan, dtype=dtype) if momentum else None  # first step overwrites
    for t in range(1, STEPS + 1):
        g = xp.asarray(_grad(to_np(p).astype(np.float64), t, t).astype(dtype))
        KO.sgd_step(p, g, buf, lr, momentum, wd, dampening, nesterov, t == 1)
    p_ref, buf_ref = _sgd_reference(p0.astype(dtype), lr, momentum, wd, dampening, nesterov)
    np.testing.assert_allclose(to_np(p), p_ref, rtol=tol, atol=tol)
    if momentum:
        np.testing.assert_allclose(to_np(buf), buf_ref, rtol=tol * 10, atol=tol * 10)


def test_sgd_momentum_needs_buffer(xp):
    p = xp.zeros(3)
    with pytest.raises(ValueError):
        KO.sgd_step(p, p, None, 0.1, 0.9)


def test_matches_torch_if_available():
    torch = pytest.importorskip("torch")
    p0 = np.random.default_rng(0).standard_normal((4, 3))
    for make, ours in (
        (lambda q: torch.optim.Adam([q], lr=1e-2, betas=(0.5, 0.9), eps=1e-8, weight_decay=0.1),
         "adam"),
        (lambda q: torch.optim.SGD([q], lr=0.05, momentum=0.9, weight_decay=0.01,
                                   nesterov=True), "sgd"),
    ):
        q = torch.tensor(p0.copy(), requires_grad=True)
        opt = make(q)
        p, m, v, buf = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)
        for t in range(1, 31):
            g = _grad(p, t, t)
            q.grad = torch.tensor(g)
            opt.step()
            if ours == "adam":
                KO.adam_step(p, g, m, v, t, 1e-2, 0.5, 0.9, 1e-8, 0.1)
            else:
                KO.sgd_step(p, g, buf, 0.05, 0.9, 0.01, 0.0, True, t == 1)
        np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-12, atol=1e-12)


# GPU vs NumPy parity, float32.

@pytest.mark.gpu
@pytest.mark.parametrize("lr,b1,b2,eps,wd", ADAM_CASES)
def test_adam_parity_cuda(cuda, lr, b1, b2, eps, wd):
    p0 = np.random.default_rng(2).standard_normal((37, 11)).astype(np.float32)
    pc, mc, vc = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    pg, mg, vg = cuda.asarray(p0), cuda.zeros_like(cuda.asarray(p0)), cuda.zeros(p0.shape,
                                                                                 np.float32)
    for t in range(1, STEPS + 1):
        g = _grad(pc.astype(np.float64), t, t).astype(np.float32)
        KO.adam_step(pc, g, mc, vc, t, lr, b1, b2, eps, wd)
        KO.adam_step(pg, cuda.asarray(g), mg, vg, t, lr, b1, b2, eps, wd)
    np.testing.assert_allclose(pg.get(), pc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mg.get(), mc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vg.get(), vc, rtol=1e-5, atol=1e-7)


@pytest.mark.gpu
def test_adam_multi_kernel_parity_cuda(cuda, monkeypatch):
    """60 float32 tensors (two launches: 48 and 12) of sizes from 1 to 300,000 elements (more
    than 512 blocks of 256: the grid-stride loop), plus a transposed view and a float64 tensor
    on their own paths, against the CPU over 5 steps; and ONE launch per bucket per step."""
    rng = np.random.default_rng(4)
    sizes = [1, 3, 255, 256, 257, 300_000] + [int(s) for s in rng.integers(1, 5000, 54)]
    host = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    host += [rng.standard_normal((9, 7)).astype(np.float32).T,
             rng.standard_normal(33)]  # float64
    dev = [cuda.asarray(p) for p in host[:-2]] + [cuda.asarray(host[-2].T).T,
                                                  cuda.asarray(host[-1])]
    assert not dev[-2].flags.c_contiguous
    hs = [[np.zeros_like(p) for p in host] for _ in range(2)]
    ds = [[cuda.zeros_like(p) for p in dev] for _ in range(2)]
    launches = []
    real = KO._adam_multi_kernel

    def counted(dtype_name, sizes_, *rest):
        kernel, grid = real(dtype_name, sizes_, *rest)

        def launch(*args):
            launches.append((dtype_name, len(sizes_)))
            return kernel(*args)
        return launch, grid

    monkeypatch.setattr(KO, "_adam_multi_kernel", counted)
    for t in range(1, 6):
        gh = [rng.standard_normal(p.shape).astype(p.dtype) for p in host]
        KO.adam_step_multi(host, gh, *hs, t, 2e-3, 0.5, 0.999, 1e-8, 0.01)
        KO.adam_step_multi(dev, [cuda.asarray(g) for g in gh], *ds, t, 2e-3, 0.5, 0.999, 1e-8,
                           0.01)
    assert launches == [("float32", 48), ("float32", 12), ("float64", 1)] * 5
    for i, (p, q) in enumerate(zip(host, dev)):
        np.testing.assert_allclose(q.get(), p, rtol=1e-5, atol=1e-6, err_msg=f"param {i}")
        np.testing.assert_allclose(ds[1][i].get(), hs[1][i], rtol=1e-5, atol=1e-7)


@pytest.mark.gpu
@pytest.mark.parametrize("lr,momentum,wd,dampening,nesterov", SGD_CASES)
def test_sgd_parity_cuda(cuda, lr, momentum, wd, dampening, nesterov):
    p0 = np.random.default_rng(2).standard_normal((37, 11)).astype(np.float32)
    pc, pg = p0.copy(), cuda.asarray(p0)
    bc = np.zeros_like(p0) if momentum else None
    bg = cuda.zeros_like(pg) if momentum else None
    for t in range(1, STEPS + 1):
        g = _grad(pc.astype(np.float64), t, t).astype(np.float32)
        KO.sgd_step(pc, g, bc, lr, momentum, wd, dampening, nesterov, t == 1)
        KO.sgd_step(pg, cuda.asarray(g), bg, lr, momentum, wd, dampening, nesterov, t == 1)
    np.testing.assert_allclose(pg.get(), pc, rtol=1e-5, atol=1e-6)
    if momentum:
        np.testing.assert_allclose(bg.get(), bc, rtol=1e-5, atol=1e-6)
