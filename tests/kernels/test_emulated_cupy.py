"""The CPU stand-in for CuPy (``emulated_cupy``): first that it behaves as a GPU would (so that
what passes through it means something), then whole training steps through minigan's GPU code
paths, compared with the CPU, with the kernel launches and host synchronisations counted."""
import numpy as np
import pytest

from minigan import backend
from minigan import random as mrandom
from minigan.autograd import Tensor
from minigan.gan.models import build_models
from minigan.gan.trainer import TrainConfig, make_trainer
from tests.kernels import emulated_cupy as E

pytestmark = pytest.mark.skipif(not E.have_cxx(), reason="no C++ compiler (g++) to emulate with")


@pytest.fixture
def cp(emulated_gpu):
    return emulated_gpu


# ----------------------------------------------------------------------------- the emulator

def test_elementwise_kernel_binds_types_broadcasts_and_indexes_raw_arguments(cp):
    k = cp.ElementwiseKernel("T x, raw T w, int64 n, T s", "T y",
                             "y = x * s + w[i % n]", "emu_test_ew")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 1)).astype(np.float32)
    w = rng.standard_normal((2, 5)).astype(np.float32)  # raw: indexed by C-order position
    out = cp.empty((3, 4), dtype=np.float32)
    y = k(cp.asarray(x), cp.asarray(w), np.int64(7), np.float32(2.5), out)
    assert y is out
    i = np.arange(12).reshape(3, 4)
    np.testing.assert_allclose(y.get(), x * np.float32(2.5) + w.reshape(-1)[i % 7], rtol=1e-6)
    # the output allocated from the broadcast shape and the bound type
    y2 = k(cp.asarray(x.astype(np.float64)), cp.asarray(w.astype(np.float64)), 7, 1.0)
    assert y2.shape == (3, 1) and y2.dtype == np.float64
    # a non-contiguous output is written back through its strides
    big = cp.zeros((3, 8), dtype=np.float32)
    k(cp.asarray(x), cp.asarray(w), np.int64(7), np.float32(2.5), big[:, ::2])
    np.testing.assert_allclose(big.get()[:, ::2], y.get(), rtol=1e-6)
    assert not big.get()[:, 1::2].any()
    with pytest.raises(TypeError, match="type is mismatched"):
        k(cp.asarray(x), cp.asarray(w.astype(np.float64)), np.int64(7), np.float32(1))


# a grid-stride sum per block through minigan's own block reduction (shuffles, shared memory,
# barriers), and a warp-level sum by __shfl_down_sync on top
_BLOCK_SUM = r"""
extern "C" __global__ void emu_block_sum(const double* __restrict__ x, double* out,
                                         double* warp0, const long long n) {
    __shared__ double sh[33];
    double v = 0.0;
    for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < n;
         k += (long long)gridDim.x * blockDim.x) v += x[k];
    double w = v;
    for (int o = 16; o > 0; o >>= 1) w += __shfl_down_sync(0xffffffffu, w, o);
    if (threadIdx.x == 0) warp0[blockIdx.x] = w;  // lane 0: the sum of the first warp
    v = minigan_block_sum(v, sh);
    if (threadIdx.x == 0) out[blockIdx.x] = v;
}
"""


@pytest.mark.parametrize("ucontext", [False, True], ids=["asm-switch", "ucontext"])
@pytest.mark.parametrize("threads", [32, 96, 256])
def test_raw_kernel_with_shuffles_and_barriers_sums_like_a_gpu(cp, monkeypatch, threads,
                                                               ucontext):
    monkeypatch.setattr(E, "USE_UCONTEXT", ucontext)
    from minigan.kernels.elementwise import BLOCK_SUM_CUDA
    x = np.random.default_rng(1).standard_normal(5000)
    out, warp0 = cp.zeros(3, dtype=np.float64), cp.zeros(3, dtype=np.float64)
    cp.RawKernel(BLOCK_SUM_CUDA + _BLOCK_SUM, "emu_block_sum")(
        (3,), (threads,), (cp.asarray(x), out, warp0, 5000))
    want, want0 = np.zeros(3), np.zeros(3)
    for k in range(5000):  # the grid-stride assignment of elements to blocks
        b, t = (k // threads) % 3, k % threads
        want[b] += x[k]
        want0[b] += x[k] if t < 32 else 0.0
    np.testing.assert_allclose(out.get(), want, rtol=1e-12)
    np.testing.assert_allclose(warp0.get(), want0, rtol=1e-12)
    assert E.LOG.launches[("raw", "emu_block_sum")] == 1


def test_raw_kernel_refusals_name_the_problem(cp):
    src = r"""extern "C" __global__ void emu_scale(float* y, const float a, const int n) {
        const int i = blockIdx.x * blockDim.x + threadIdx.x;
        if (i < n) y[i] *= a;
    }"""
    k = cp.RawKernel(src, "emu_scale")
    y = cp.ones(8, dtype=np.float32)
    k((1,), (8,), (y, np.float32(3), np.int32(8)))
    np.testing.assert_array_equal(y.get(), 3.0)
    with pytest.raises(TypeError, match="parameter float .* given a float64"):
        k((1,), (8,), (y, 3.0, np.int32(8)))  # a Python float is a double, as in CuPy
    with pytest.raises(TypeError, match="host NumPy array"):
        k((1,), (8,), (np.ones(8, np.float32), np.float32(3), np.int32(8)))
    with pytest.raises(TypeError, match="takes 3 arguments, 2 given"):
        k((1,), (8,), (y, np.float32(3)))
    stuck = r"""extern "C" __global__ void emu_stuck(float* y) {
        if (threadIdx.x == 0) __syncthreads();
        y[threadIdx.x] = 1.0f;
    }"""
    with pytest.raises(RuntimeError, match="deadlock at a barrier"):
        cp.RawKernel(stuck, "emu_stuck")((1,), (64,), (cp.zeros(64, dtype=np.float32),))


def test_host_arrays_are_refused_and_host_reads_are_counted(cp):
    d = cp.ones(4, dtype=np.float32)
    with pytest.raises(TypeError, match="host"):
        d + np.ones(4, dtype=np.float32)
    with pytest.raises(TypeError, match="host"):
        cp.concatenate([d, np.ones(4, dtype=np.float32)])
    k = cp.ElementwiseKernel("T x", "T y", "y = x", "emu_copy")
    with pytest.raises(TypeError, match="host NumPy array"):
        k(np.ones(4, dtype=np.float32))
    E.LOG.clear()
    s = (d * 2).sum()
    assert E.LOG.syncs == {} and E.LOG.n_launches == 2
    assert float(s) == 8.0 and backend.to_numpy(d).sum() == 4.0
    assert E.LOG.syncs == {"float": 1, "asnumpy": 1}


def test_an_integer_index_is_a_view_and_launches_nothing(cp):
    """As in CuPy, a[2] of a device array is a 0-d view of its memory (NumPy gives a scalar
    copy), and a[[0, 2]] a gather: one launch."""
    a = cp.arange(6, dtype=np.float32).reshape(2, 3)
    E.LOG.clear()
    v, w = a[1, 2], a[0][1]
    assert E.LOG.n_launches == 0
    assert isinstance(v, cp.ndarray) and v.shape == () and w.shape == ()
    a[...] = 7.0  # a view sees later writes to its array
    assert float(v) == 7.0 and float(w) == 7.0
    E.LOG.clear()
    a[0, [0, 2]]
    assert E.LOG.launches == {("gather", "getitem"): 1}


def test_the_backend_sees_one_gpu_and_forgets_it_afterwards(monkeypatch):
    with monkeypatch.context() as m:
        mod = E.install(m)
        assert backend.cuda_available() and backend.normalize_device("cuda") == "cuda"
        x = backend.to_device(np.arange(3.0), "cuda")
        assert backend.get_array_module(x) is mod and backend.device_of(x) == "cuda"
    E.clear_kernel_caches()
    assert backend.cupy is not mod
    assert backend.device_of(np.zeros(2)) == "cpu"


# ----------------------------------------------------------------------------- training steps

# Launches per training step at batch 4 on the GPU paths (kernels, GEMMs, copies and fills;
# every CuPy call that launches). Measured with this emulator; a change that adds launches
# to a step fails here, and the number is lowered when a change removes some.
STEP_LAUNCHES = {"gan": 58, "dragan": 91, "dcgan": 71, "cgan": 72}


def _trainer(preset, device, batch, labels):
    num_classes = 10 if preset == "cgan" else 0
    arch = "conv" if preset == "dcgan" else "mlp"
    mrandom.manual_seed(0)
    G, D = build_models(preset, batch.shape[1:], num_classes, 16, arch=arch if preset in
                        ("cgan", "dragan") else None, ngf=8, ndf=8)
    G.to(device)
    D.to(device)
    cfg = TrainConfig(preset=preset, batch_size=batch.shape[0], device=device, seed=0,
                      z_dim=16, n_gen=1).resolved()
    trainer = make_trainer(G, D, cfg, num_classes)
    real = Tensor(backend.to_device(batch, device))
    lab = None if labels is None else backend.to_device(labels, device)
    return trainer, G, D, (real, lab)


def _results(trainer, G, D, stats):
    grads = {f"{n}.{k}": backend.to_numpy(p.grad.data)
             for n, net in (("G", G), ("D", D)) for k, p in net.named_parameters()}
    buffers = {f"{n}.{k}": backend.to_numpy(b.data if isinstance(b, Tensor) else b)
               for n, net in (("G", G), ("D", D)) for k, b in net.named_buffers()}
    moments = [[backend.to_numpy(st["exp_avg"]) for st in opt.state.values()]
               for opt in (trainer.opt_G, trainer.opt_D)]
    return stats, grads, buffers, moments


def _assert_same_step(preset, cpu, gpu):
    stats_c, grads_c, buf_c, mom_c = cpu
    stats_g, grads_g, buf_g, mom_g = gpu
    # the same step as on the CPU, to float32 rounding (summation orders differ)
    for key in ("d_loss", "g_loss"):
        np.testing.assert_allclose(float(backend.to_numpy(getattr(stats_g[key], "data",
                                                                 stats_g[key]))),
                                   float(backend.to_numpy(getattr(stats_c[key], "data",
                                                                  stats_c[key]))),
                                   rtol=1e-4, err_msg=key)
    # Gradients by relative (Frobenius) error per tensor: float32 rounding can move a
    # pre-activation across an activation's kink, which changes a handful of elements (2 in
    # 200704 were seen), while a wrong kernel is off everywhere.
    for net in ("G.", "D."):
        scale = max(np.linalg.norm(g) for k, g in grads_c.items() if k.startswith(net))
        for k in (k for k in grads_c if k.startswith(net)):
            err = np.linalg.norm(grads_g[k] - grads_c[k])
            assert err <= 2e-3 * np.linalg.norm(grads_c[k]) + 1e-5 * scale, (
                f"{preset}: gradient of {k} off by {err:.3g} (norm {np.linalg.norm(grads_c[k]):.3g})")
    for k in buf_c:
        np.testing.assert_allclose(buf_g[k], buf_c[k], rtol=1e-3,
                                   atol=1e-4 * max(np.abs(buf_c[k]).max(), 1e-12), err_msg=k)
    for opt_g, opt_c in zip(mom_g, mom_c):  # Adam's first moments, per optimiser
        scale = max(np.linalg.norm(m) for m in opt_c)
        for a, b in zip(opt_g, opt_c):
            assert np.linalg.norm(a - b) <= 2e-3 * np.linalg.norm(b) + 1e-5 * scale


@pytest.mark.parametrize("preset", ["gan", "dragan", "dcgan", "cgan"])
def test_a_training_step_on_the_gpu_paths_matches_the_cpu_and_never_syncs(preset, cp):
    rng = np.random.default_rng(0)
    batch = rng.uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 4) if preset == "cgan" else None
    cpu = _trainer(preset, "cpu", batch, labels)
    gpu = _trainer(preset, "cuda", batch, labels)
    # the first step builds the kernels and the optimiser state
    first = [_results(t, G, D, t.step(*data)) for t, G, D, data in (cpu, gpu)]
    _assert_same_step(preset, *first)
    # The second step starts from the CPU's state on both devices. (Run on, the two would
    # drift apart: Adam's first update is about +-lr whatever a gradient's size, so an element
    # whose gradient is rounding noise, 2e-9 of a tensor of norm 18 was seen, takes opposite
    # steps on the two devices, and batch norm over 4 samples carries that into every
    # gradient of the second step: 0.8% apart, with nothing wrong in either.)
    (t_c, G_c, D_c, _), (t_g, G_g, D_g, data_g) = cpu, gpu
    for dst, src in ((G_g, G_c), (D_g, D_c), (t_g.opt_G, t_c.opt_G), (t_g.opt_D, t_c.opt_D)):
        dst.load_state_dict(src.state_dict())
    second_c = _results(t_c, G_c, D_c, t_c.step(*cpu[3]))
    E.LOG.clear()
    stats_g = t_g.step(*data_g)
    launches, syncs, uploads, kinds = (E.LOG.n_launches, dict(E.LOG.syncs), E.LOG.uploads,
                                       E.LOG.by_kind())
    # nothing in a training step waits for the GPU or copies from the host
    assert syncs == {}, f"host synchronisations inside a {preset} step: {syncs}"
    assert uploads == 0, f"{uploads} host-to-device copies inside a {preset} step"
    assert launches <= STEP_LAUNCHES[preset], (
        f"{preset}: {launches} launches per step, more than {STEP_LAUNCHES[preset]}: {kinds}")
    assert kinds.get("raw", 0) >= 2  # the multi-tensor Adam, one launch per optimiser
    _assert_same_step(preset, second_c, _results(t_g, G_g, D_g, stats_g))


def test_a_gpu_conv_output_stays_channel_major_through_batch_norm_and_back(cp):
    """conv2d's GPU output is its GEMM product, stored (C, N, H, W), seen as (N, C, H, W) with
    no copy; batch norm reads it through its strides (the same values as from a contiguous
    copy, bit for bit) and writes gx in that layout, which conv backward then reads as its
    (C, N*H*W) matrix without a copy either."""
    from minigan.kernels import batchnorm as KB
    from minigan.kernels import conv as KC
    from minigan.kernels import elementwise as KE
    rng = np.random.default_rng(3)
    x = cp.asarray(rng.standard_normal((3, 4, 9, 9)).astype(np.float32))
    w = cp.asarray(rng.standard_normal((6, 4, 3, 3)).astype(np.float32))
    E.LOG.clear()
    y = KC.conv2d_forward(x, w, None, 2, 1)
    assert E.LOG.by_kind().get("copy", 0) == 0
    n, c, h, wd = y.shape
    assert y.strides == (h * wd * 4, n * h * wd * 4, wd * 4, 4)  # channel-major
    np.testing.assert_allclose(y.get(), KC.conv2d_forward(x.get(), w.get(), None, 2, 1),
                               rtol=1e-5, atol=1e-5)
    yc = cp.ascontiguousarray(y)
    args = (cp.ones(c, dtype=np.float32), cp.zeros(c, dtype=np.float32), None, None, 0.1, 1e-5)
    out, mean, invstd = KB.batch_norm_forward_train(y, *args)
    out_c, mean_c, invstd_c = KB.batch_norm_forward_train(yc, *args)
    for a, b in ((out, out_c), (mean, mean_c), (invstd, invstd_c)):
        np.testing.assert_array_equal(a.get(), b.get())
    gy = cp.asarray(rng.standard_normal(y.shape).astype(np.float32))
    gx, gw, gb = KB.batch_norm_backward_train(gy, y, args[0], mean, invstd)
    gx_c, gw_c, gb_c = KB.batch_norm_backward_train(gy, yc, args[0], mean, invstd)
    assert gx.strides == y.strides and gx_c.flags.c_contiguous
    for a, b in ((gx, gx_c), (gw, gw_c), (gb, gb_c)):
        np.testing.assert_array_equal(a.get(), b.get())
    g_leaky = KE.leaky_relu_backward(gy, y, 0.2)  # an activation's backward keeps it too
    assert g_leaky.strides == y.strides
    np.testing.assert_array_equal(g_leaky.get(), KE.leaky_relu_backward(gy, yc, 0.2).get())
    E.LOG.clear()
    gx_conv, gw_conv = KC.conv2d_input_and_weight_grads(x, w, gx, 2, 1)
    assert E.LOG.by_kind().get("copy", 0) == 0, E.LOG.launches
    gx_ref, gw_ref = KC.conv2d_input_and_weight_grads(x.get(), w.get(), gx.get(), 2, 1)
    np.testing.assert_allclose(gx_conv.get(), gx_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gw_conv.get(), gw_ref, rtol=1e-4, atol=1e-4)


def test_a_gan_loss_is_one_launch_forward_and_one_backward(cp):
    """bce_with_logits_const(x, t) with the mean: the loss and the mean in one kernel, and
    its backward (the mean's scaling of gy included) in one more."""
    from minigan.functional.loss import bce_with_logits_const
    x0 = np.random.default_rng(0).standard_normal((8, 1)).astype(np.float32)
    x = Tensor(cp.asarray(x0), requires_grad=True)
    E.LOG.clear()
    loss = bce_with_logits_const(x, 1.0)
    assert E.LOG.n_launches == 1, E.LOG.launches
    gy = Tensor(cp.asarray(np.float32(2.0)))
    E.LOG.clear()
    loss.backward(gy)
    assert E.LOG.n_launches == 1, E.LOG.launches
    assert sum(E.LOG.syncs.values()) == 0 and E.LOG.uploads == 0
    want = np.logaddexp(0, x0.astype(np.float64)) - x0
    np.testing.assert_allclose(float(loss.data.get()), want.mean(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.data.get(), 2.0 / 8 * (1 / (1 + np.exp(-x0)) - 1),
                               rtol=1e-5, atol=1e-7)


def test_d_statistics_are_one_launch_each_and_the_two_ops_values(cp):
    """D(x) and D(G(z)) in a step's stats: sigmoid_mean is mean(sigmoid(x)) in one kernel."""
    from minigan import functional as F
    from minigan.kernels.elementwise import sigmoid_mean
    x0 = np.random.default_rng(1).standard_normal((37, 1)).astype(np.float32) * 4
    cpu = sigmoid_mean(x0)
    np.testing.assert_array_equal(cpu, F.mean(F.sigmoid(Tensor(x0))).data)  # the same ops
    x = cp.asarray(x0)
    E.LOG.clear()
    got = sigmoid_mean(x)
    assert E.LOG.n_launches == 1 and got.shape == () and got.dtype == np.float32
    two = F.mean(F.sigmoid(Tensor(x))).data
    assert float(got.get()) == float(two.get())  # each sigmoid as its kernel rounds it
    np.testing.assert_allclose(float(got.get()), float(cpu), rtol=1e-6)
    assert np.isnan(sigmoid_mean(np.zeros((0, 1), np.float32)))  # mean over nothing


def test_d_loss_and_statistics_on_real_and_fake_logits_are_one_launch_each(cp):
    """D's loss on both batches (the two GAN losses and their sum) is one kernel, its backward
    one more, and D(x), D(G(z)) one kernel for both: the values of the ops one at a time."""
    from minigan.functional.loss import bce_with_logits_const, bce_with_logits_const_pair
    from minigan.kernels.elementwise import sigmoid_mean, sigmoid_mean_pair
    rng = np.random.default_rng(2)
    r0, f0 = (rng.standard_normal((9, 1)).astype(np.float32) * 3 for _ in range(2))
    r, f = Tensor(cp.asarray(r0), requires_grad=True), Tensor(cp.asarray(f0), requires_grad=True)
    gy = Tensor(cp.asarray(np.float32(1.5)))
    E.LOG.clear()
    loss = bce_with_logits_const_pair(r, 0.9, f, 0.0)
    assert E.LOG.n_launches == 1, E.LOG.launches
    E.LOG.clear()
    loss.backward(gy)
    assert E.LOG.n_launches == 1, E.LOG.launches
    E.LOG.clear()
    d_real, d_fake = sigmoid_mean_pair(r.data, f.data)
    assert E.LOG.n_launches == 1, E.LOG.launches
    assert sum(E.LOG.syncs.values()) == 0 and E.LOG.uploads == 0
    rr, fr = Tensor(cp.asarray(r0), requires_grad=True), Tensor(cp.asarray(f0), requires_grad=True)
    ref = bce_with_logits_const(rr, 0.9) + bce_with_logits_const(fr, 0.0)
    ref.backward(gy)
    # one compiler builds both paths here, so the same bits
    for got, want in ((loss.data, ref.data), (r.grad.data, rr.grad.data),
                      (f.grad.data, fr.grad.data), (d_real, sigmoid_mean(r.data)),
                      (d_fake, sigmoid_mean(f.data))):
        np.testing.assert_array_equal(got.get(), want.get())


@pytest.mark.parametrize("rows,cols", [(70, 300), (3, 5), (1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_gradient_norm_penalty_is_one_launch_forward_and_one_backward(cp, rows, cols,
                                                                          dtype):
    """DRAGAN's penalty weight * mean((||g_i|| - 1)^2) as one kernel (more rows than the
    block has warps, rows longer than a warp, and a single value), and its backward, which
    reads gy on the device, as one more: against float64 NumPy."""
    from minigan.functional.loss import unit_norm_penalty
    rng = np.random.default_rng(rows)
    g0 = (rng.standard_normal((rows, cols)) * 1.5 / np.sqrt(cols)).astype(dtype)
    g0[0] = 0.0  # the norm of a zero row is sqrt(eps)
    g = Tensor(cp.asarray(g0), requires_grad=True)
    E.LOG.clear()
    y = unit_norm_penalty(g, 10.0)
    assert E.LOG.n_launches == 1, E.LOG.launches
    gy = Tensor(cp.asarray(dtype(0.5)))
    E.LOG.clear()
    y.backward(gy)
    assert E.LOG.n_launches == 1, E.LOG.launches
    assert sum(E.LOG.syncs.values()) == 0 and E.LOG.uploads == 0
    g64 = g0.astype(np.float64)
    n = np.sqrt((g64 * g64).sum(1) + 1e-12)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert y.dtype == dtype and g.grad.dtype == dtype
    np.testing.assert_allclose(float(y.data.get()), 10.0 * np.mean((n - 1) ** 2), rtol=tol)
    want = 0.5 * 10.0 * 2 / rows * ((n - 1) / n)[:, None] * g64
    np.testing.assert_allclose(g.grad.data.get(), want, rtol=tol, atol=tol * 1e-2)


def test_the_kernels_fallbacks_keep_gpu_arrays_on_the_gpu(cp):
    """Where a fused GPU kernel does not apply (float16, or an empty array), the fallback runs
    the array library's ops, and its result stays a device array: turning it into a NumPy array
    (as the CPU's 0-d scalars are) would fail on a real GPU, whose arrays refuse that."""
    from minigan.kernels import elementwise as KE
    x = cp.asarray(np.arange(6.0, dtype=np.float16).reshape(2, 3))
    with pytest.warns(RuntimeWarning):  # NumPy's std of nothing: NaN, with its warnings
        empty = KE.std_all(cp.asarray(np.zeros(0)))
    for out in (KE.std_all(x), KE.add_scaled(x, x, KE.std_all(x), 0.5), KE.lerp(x, x, x),
                KE.sum_all_scaled(x, np.float16(0.5)), empty):
        assert isinstance(out, cp.ndarray), type(out)


def test_drawing_the_dragan_points_takes_one_launch_per_formula(cp, monkeypatch):
    """std(x), x + c * std(x) * u and x + alpha * (x_p - x) are one kernel each, the
    products rounded alone: the last two give the bits of NumPy's ops."""
    from minigan.gan import losses
    from minigan.kernels import elementwise as KE
    from minigan.random import Generator
    x0 = np.random.default_rng(1).standard_normal((6, 1, 4, 4)).astype(np.float32) * 3 + 1
    x = cp.asarray(x0)
    gen = Generator(3, "cuda")
    u = gen.uniform(x.shape, dtype=np.float32)
    alpha = gen.uniform((6, 1, 1, 1), dtype=np.float32)
    E.LOG.clear()
    sd = KE.std_all(x)
    assert E.LOG.n_launches == 1 and sd.shape == () and sd.dtype == np.float32
    np.testing.assert_allclose(float(sd.get()), x0.astype(np.float64).std(), rtol=1e-6)
    E.LOG.clear()
    xp_ = KE.add_scaled(x, u, sd, 0.5)
    x_hat = KE.lerp(x, xp_, alpha)
    assert E.LOG.n_launches == 2, E.LOG.launches
    want_p = x0 + (np.float32(0.5) * sd.get()) * u.get()
    np.testing.assert_array_equal(xp_.get(), want_p)
    np.testing.assert_array_equal(x_hat.get(), x0 + alpha.get() * (want_p - x0))
    # the perturbation as the trainer draws it: the random numbers, the std, one kernel
    for mode in ("official", "gaussian"):
        E.LOG.clear()
        losses.dragan_perturb(x, gen, mode)
        assert E.LOG.n_launches == 3 - (mode == "gaussian"), (mode, E.LOG.launches)
    # float64, one value, and past the one-block limit (the array library's std)
    one = cp.asarray(np.array([2.5]))
    assert float(KE.std_all(one).get()) == 0.0
    monkeypatch.setattr(KE, "_STD_ALL_MAX", 10)
    E.LOG.clear()
    big = KE.std_all(x)
    assert E.LOG.launches[("function", "std")] == 1
    np.testing.assert_allclose(float(big.get()), float(sd.get()), rtol=1e-6)


# ----------------------------------------------------------------------------- accumulation

def _owned_or_skip():
    from minigan import autograd
    if autograd._OWNED[0] is None:
        pytest.skip("this interpreter's reference counts cannot prove ownership")
    return autograd


def _d_like_backward(cp, seed=0):
    """A D step's shape: one Linear + LeakyReLU, a batch-norm layer and a conv, each used on
    two batches (real, fake) whose losses are added: every parameter gets two gradients."""
    from minigan import nn
    mrandom.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1, bias=False), nn.BatchNorm2d(4),
                        nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 4 * 4, 5),
                        nn.LeakyReLU(0.2), nn.Linear(5, 1)).to("cuda")
    rng = np.random.default_rng(seed)
    a, b = (Tensor(cp.asarray(rng.standard_normal((3, 1, 8, 8)).astype(np.float32)))
            for _ in range(2))
    return net, lambda: (net(a) * 1.5).sum() + (net(b) * b.mean()).sum()


def test_a_second_gradient_is_added_into_the_owned_grad_by_the_kernel_itself(cp, monkeypatch):
    """Linear and conv weights (a GEMM with beta = 1), a fused Linear's bias (its column-sum
    kernel), a one-output Linear's weight and bias (its backward kernel) and batch norm's
    weight and bias (its gradient kernel) take their second gradient
    straight into .grad: no add launch, the same .grad arrays, and the values of the separate
    adds (bit for bit here, where both are NumPy's float32 arithmetic)."""
    autograd = _owned_or_skip()
    runs = []
    for owned in (autograd._OWNED[0], None):
        monkeypatch.setattr(autograd, "_OWNED", [owned])
        net, loss = _d_like_backward(cp)
        loss().backward()  # the first backward allocates every .grad
        ids = {n: id(p.grad.data) for n, p in net.named_parameters()}
        l2 = loss()
        E.LOG.clear()
        l2.backward()  # every parameter: two more gradients, both into .grad
        adds = E.LOG.launches.get(("ufunc", "add"), 0)
        same = all(id(p.grad.data) == ids[n] for n, p in net.named_parameters())
        runs.append((adds, same, {n: p.grad.data.get() for n, p in net.named_parameters()}))
    (adds, same, grads), (adds_off, _, grads_off) = runs
    # both gradients of each of the 7 parameters go into an existing .grad, all by their
    # kernels (the last Linear, with one output, by its own backward kernel); unproven
    # ownership: adds
    assert adds == 0, E.LOG.launches
    assert adds_off == 2 * 7
    assert same
    for n in grads:
        np.testing.assert_array_equal(grads[n], grads_off[n], err_msg=n)


def test_a_held_gradient_is_never_written_by_an_accumulating_kernel(cp):
    """The caller holds a weight's .grad (tensor or array): the next backward gives the weight
    a new .grad and leaves the held one as it was."""
    _owned_or_skip()
    for held in ("tensor", "array"):
        net, loss = _d_like_backward(cp, seed=1)
        loss().backward()
        lin = net[4]
        keep = lin.weight.grad if held == "tensor" else lin.weight.grad.data
        before = np.array((keep.data if held == "tensor" else keep).get())
        loss().backward()
        np.testing.assert_array_equal((keep.data if held == "tensor" else keep).get(), before)
        np.testing.assert_allclose(lin.weight.grad.data.get(), 2 * before, rtol=1e-5,
                                   atol=1e-6)  # two identical backwards: twice the first


def test_no_function_keeps_the_arrays_it_was_offered(cp, monkeypatch):
    """The .grad arrays offered to a backward are dropped when it returns (a retained graph
    would otherwise keep them)."""
    autograd = _owned_or_skip()
    _, loss = _d_like_backward(cp, seed=2)
    loss().backward()
    l2 = loss()
    seen, offered = [], []
    real = autograd._accumulation_targets

    def spy(f):
        seen.append(f)
        offered.append(real(f))
        return offered[-1]
    monkeypatch.setattr(autograd, "_accumulation_targets", spy)
    l2.backward(retain_graph=True)
    assert any(o is not None for o in offered)  # something was offered
    assert seen and all(f.accumulate_into is None for f in seen)


def test_a_plain_backward_on_the_gpu_launches_no_seed_fill_and_keeps_the_seed(cp):
    """The shared seed of a plain backward: no fill launch after the first, and after training
    steps it still holds ones (nothing wrote into it). A seed needed during a capture is not
    cached (its values would exist only in replays)."""
    from minigan import autograd
    rng = np.random.default_rng(0)
    batch = rng.uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32)
    trainer, _, _, data = _trainer("gan", "cuda", batch, None)
    trainer.step(*data)
    E.LOG.clear()
    trainer.step(*data)  # a second training step
    assert not E.LOG.launches.get(("fill", "ones_like"), 0)
    seeds = [v for v in autograd._SEEDS.values() if isinstance(v, cp.ndarray)]
    assert seeds and all((s.get() == 1).all() for s in seeds)
    autograd._SEEDS.clear()
    x = Tensor(cp.ones(3, dtype=np.float32), requires_grad=True)
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        s.begin_capture()
        (x * 2.0).sum().backward()
        s.end_capture()
    assert autograd._SEEDS == {}
