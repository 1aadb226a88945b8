"""CUDA-graph training steps (``minigan.gan.graph``), on the emulated GPU: the emulation records
a capture without running it and replays it with the captured arguments, as CUDA does, so a
number frozen into the graph, a host sync or an upload inside the step shows up here."""
import numpy as np
import pytest

from minigan import backend
from minigan import random as mrandom
from minigan.autograd import Tensor
from minigan.gan.graph import GraphedStep, capturable_step, make_capturable
from minigan.gan.models import build_models
from minigan.gan.trainer import TrainConfig, make_trainer
from minigan.kernels import gemm
from minigan.optim import SGD
from tests.kernels import emulated_cupy as E


@pytest.fixture
def cp(emulated_gpu):
    return emulated_gpu


def _trainer(preset, device="cuda", lr_decay="none", **options):
    num_classes = 10 if preset == "cgan" else 0
    mrandom.manual_seed(0)
    G, D = build_models(preset, (1, 28, 28), num_classes, 16,
                        arch="mlp" if preset in ("cgan", "dragan") else None, ngf=8, ndf=8)
    G.to(device)
    D.to(device)
    cfg = TrainConfig(preset=preset, batch_size=4, device=device, seed=0, z_dim=16,
                      lr_decay=lr_decay, **options).resolved()
    return make_trainer(G, D, cfg, num_classes)


def _batches(preset, n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, 4) if preset == "cgan" else None
        out.append((x, y))
    return out


def _state(trainer):
    arrays = [backend.to_numpy(p.data) for net in (trainer.G, trainer.D)
              for p in net.parameters()]
    arrays += [backend.to_numpy(b.data if isinstance(b, Tensor) else b)
               for net in (trainer.G, trainer.D) for b in net.buffers()]
    for opt in (trainer.opt_G, trainer.opt_D):
        for st in opt.state.values():
            arrays += [backend.to_numpy(st["exp_avg"]), backend.to_numpy(st["exp_avg_sq"])]
    steps = [[st["step"] for st in opt.state.values()] for opt in (trainer.opt_G, trainer.opt_D)]
    return arrays, steps, trainer.rng.state_dict()


def _eager_capturable(trainer):
    """The same settings as a graphed step, run eagerly: the reference a replay must equal."""
    make_capturable(trainer)
    return lambda real, labels: capturable_step(trainer, real, labels)


@pytest.mark.parametrize("preset", ["gan", "dragan", "dcgan", "cgan"])
def test_replayed_steps_equal_eager_steps_bit_for_bit(preset, cp):
    batches = _batches(preset, 5)
    eager_t, graph_t = _trainer(preset), _trainer(preset)
    eager = _eager_capturable(eager_t)
    graphed = GraphedStep(graph_t, warmup=2)
    for k, (x, y) in enumerate(batches):
        if k == 4:  # a learning-rate change between replays reaches the device
            eager_t.set_lr_scale(0.5)
            graph_t.set_lr_scale(0.5)
        xd, yd = backend.to_device(x, "cuda"), None if y is None else backend.to_device(y, "cuda")
        E.LOG.clear()
        s_graph = graphed(Tensor(xd), yd)
        log = (E.LOG.by_kind(), dict(E.LOG.syncs), E.LOG.uploads)
        s_eager = eager(Tensor(xd), yd)
        assert graphed.captured == (k >= 2)
        if k >= 3:  # a replay: one graph launch and the input copy, nothing synced
            kinds, syncs, uploads = log
            assert kinds.get("graph") == 1 and sum(kinds.values()) <= 2 + (y is not None) + (
                2 * (k == 4)), kinds
            assert syncs == {} and uploads == 0
        for key in s_eager:
            np.testing.assert_array_equal(backend.to_numpy(s_graph[key].data),
                                          backend.to_numpy(s_eager[key].data),
                                          err_msg=f"{preset} step {k}: {key}")
        a_g, steps_g, rng_g = _state(graph_t)
        a_e, steps_e, rng_e = _state(eager_t)
        assert steps_g == steps_e and rng_g == rng_e, f"{preset} step {k}: host counters"
        for i, (a, b) in enumerate(zip(a_g, a_e)):
            np.testing.assert_array_equal(a, b, err_msg=f"{preset} step {k}: array {i}")
    assert graphed.calls == 5
    # the device counters match the host's (a checkpoint saves the host's)
    assert int(graph_t.rng._device_offset.get()[0]) == graph_t.rng.offset
    for opt in (graph_t.opt_G, graph_t.opt_D):
        hyper = opt._hyper[0][0].get()
        assert hyper[0] == next(iter(opt.state.values()))["step"]
        assert hyper[1] == opt.param_groups[0]["lr"]


@pytest.mark.parametrize("options", [
    {"joint_d_batch": True, "n_critic": 2, "label_smoothing": 0.1},
    {"g_loss": "minimax", "n_gen": 2}])
def test_trainer_options_replay_bit_for_bit(options, cp):
    """The step's other control flows (a joint real+fake D batch, two D updates per step, G
    updates that draw fresh noise) replay as they ran eagerly."""
    preset = "cgan"
    eager_t, graph_t = _trainer(preset, **options), _trainer(preset, **options)
    eager = _eager_capturable(eager_t)
    graphed = GraphedStep(graph_t, warmup=1)
    for x, y in _batches(preset, 4):
        xd, yd = backend.to_device(x, "cuda"), backend.to_device(y, "cuda")
        graphed(Tensor(xd), yd)
        eager(Tensor(xd), yd)
    assert graphed.captured
    (a_g, *counters_g), (a_e, *counters_e) = _state(graph_t), _state(eager_t)
    assert counters_g == counters_e
    for i, (a, b) in enumerate(zip(a_g, a_e)):
        np.testing.assert_array_equal(a, b, err_msg=f"{options}: array {i}")


def test_the_comparison_catches_a_number_frozen_into_the_graph(cp):
    """Negative control: with the generator's offset left on the host, every replay draws the
    captured step's noise again, and the check above sees the difference."""
    batches = _batches("gan", 4)
    eager_t, graph_t = _trainer("gan"), _trainer("gan")
    eager = _eager_capturable(eager_t)
    graphed = GraphedStep(graph_t, warmup=1)
    graph_t.rng.capturable = False  # the mistake
    eager_t.rng.capturable = False
    diffs = []
    for x, _ in batches:
        xd = backend.to_device(x, "cuda")
        graphed(Tensor(xd))
        eager(Tensor(xd), None)
        diffs.append(max(np.abs(a - b).max() for a, b in zip(_state(graph_t)[0],
                                                             _state(eager_t)[0])))
    assert diffs[0] == 0 and diffs[-1] > 0, diffs


def test_graphed_steps_match_plain_eager_steps_to_rounding(cp):
    """Against the default (non-capturable) optimizer and GEMMs: the bias corrections come from
    the device's pow instead of Python's, so agreement is to float32 rounding."""
    batches = _batches("dragan", 4)
    plain_t, graph_t = _trainer("dragan"), _trainer("dragan")
    graphed = GraphedStep(graph_t, warmup=1)
    for x, _ in batches:
        xd = backend.to_device(x, "cuda")
        graphed(Tensor(xd))
        plain_t.step(Tensor(xd))
    for a, b in zip(_state(graph_t)[0], _state(plain_t)[0]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_bad_uses_are_refused_with_the_reason(cp):
    with pytest.raises(backend.DeviceError, match="needs the GPU, but the trainer's models are "
                       "on cpu"):
        GraphedStep(_trainer("gan", device="cpu"))
    t = _trainer("gan")
    with pytest.raises(ValueError, match="warmup must be an integer >= 1"):
        GraphedStep(t, warmup=0)
    t.opt_D = SGD(t.D.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="needs Adam optimizers .* trainer.opt_D is a SGD"):
        GraphedStep(t)
    t = _trainer("gan")
    g = GraphedStep(t, warmup=1)
    x = backend.to_device(_batches("gan", 1)[0][0], "cuda")
    with pytest.raises(backend.DeviceError, match="batch on the GPU, got one on cpu"):
        g(Tensor(backend.to_numpy(x)))
    g(Tensor(x))
    g(Tensor(x))
    with pytest.raises(ValueError, match=r"replays fixed shapes: its batch was "
                       r"float32\(4, 1, 28, 28\) when first called, now float32\(2, 1, 28, 28\)"):
        g(Tensor(x[:2]))
    with pytest.raises(ValueError, match="labels are needed for a conditional GAN"):
        g(Tensor(x), backend.to_device(np.zeros(4, dtype=np.int64), "cuda"))
    c = GraphedStep(_trainer("cgan"))
    with pytest.raises(ValueError, match="labels are needed for a conditional GAN"):
        c(Tensor(x))


def test_a_capture_that_fails_restores_the_host_state_and_reports_the_step_error(cp,
                                                                                  monkeypatch):
    t = _trainer("gan")
    g = GraphedStep(t, warmup=1)
    x = backend.to_device(_batches("gan", 1)[0][0], "cuda")
    g(Tensor(x))
    before = _state(t)[1:]
    real_step = t.step

    def step_that_reads_a_loss(real, labels=None):
        stats = real_step(real, labels)
        float(stats["d_loss"].data)  # a host read: refused while capturing
        return stats
    monkeypatch.setattr(t, "step", step_that_reads_a_loss)
    with pytest.raises(RuntimeError, match="while a stream is capturing"):
        g(Tensor(x))
    assert not g.captured and _state(t)[1:] == before
    assert not g.stream.is_capturing()


def test_the_emulated_capture_records_instead_of_running(cp):
    """What the tests above rely on: during a capture the emulation runs nothing, returns
    garbage for new arrays, refuses host reads, uploads and CuPy's cuBLAS, and a replay reruns
    every op with its captured arguments."""
    s = cp.cuda.Stream(non_blocking=True)
    a = cp.ones(4, dtype=np.float32)
    scale = 2.0
    with s:
        s.begin_capture()
        b = a * scale  # a new array: garbage until a replay
        a += 1  # in place: not run now
        k = cp.ElementwiseKernel("T x", "T y", "y = x + 10", "emu_capture_add")
        c = k(b)
        with pytest.raises(RuntimeError, match="while a stream is capturing"):
            b.get()
        with pytest.raises(RuntimeError, match="copy from host memory"):
            cp.asarray(np.ones(2))
        with pytest.raises(NotImplementedError, match="during stream capture"):
            E.cublas.sgemm(1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1)
        two = cp.concatenate([a, a])  # up to 8 arrays: one copy kernel each, as in CuPy
        with pytest.raises(RuntimeError, match="concatenate of 9 arrays.*copy from host"):
            cp.concatenate([a] * 9)  # more: CuPy uploads a table of their pointers
        graph = s.end_capture()
    scale = 5.0  # the graph keeps the value it captured
    assert np.isnan(b.get()).all() and (a.get() == 1).all()
    graph.launch(stream=s)
    np.testing.assert_array_equal(b.get(), 2.0)
    np.testing.assert_array_equal(a.get(), 2.0)
    np.testing.assert_array_equal(c.get(), 12.0)
    np.testing.assert_array_equal(two.get(), 2.0)
    graph.launch(stream=s)  # the in-place op runs again, the product reads the new a
    np.testing.assert_array_equal(b.get(), 4.0)
    np.testing.assert_array_equal(c.get(), 14.0)
    assert scale == 5.0


def test_a_captured_gemm_goes_through_the_direct_cublas_path(cp):
    rng = np.random.default_rng(0)
    a = cp.asarray(rng.standard_normal((5, 3)).astype(np.float32))
    b = cp.asarray(rng.standard_normal((4, 3)).astype(np.float32))
    s = cp.cuda.Stream(non_blocking=True)
    with s, gemm.capturable():
        gemm.matmul(a, b.T)  # binds the handle to this stream, outside the capture
        s.begin_capture()
        c = gemm.matmul(a, b.T)
        graph = s.end_capture()
        with pytest.raises(TypeError, match="needs 2-D float32 or float64 GPU arrays"):
            gemm.matmul(a.astype(np.float16), b.T.astype(np.float16))
    graph.launch(stream=s)
    np.testing.assert_allclose(c.get(), a.get() @ b.get().T, rtol=1e-5, atol=1e-6)
    with s:  # outside capturable(): CuPy's bindings, which a capture refuses
        s.begin_capture()
        with pytest.raises(NotImplementedError, match="during stream capture"):
            gemm.matmul(a, b.T)
        s.end_capture()


@pytest.mark.gpu
@pytest.mark.parametrize("preset", ["gan", "dragan", "dcgan", "cgan"])
def test_on_a_real_gpu_replayed_steps_equal_eager_steps(preset, cuda):
    """The same comparison on a GPU: there the capture, the direct cuBLAS handle and the
    private memory pool are CUDA's own. (Summation orders of atomics may differ between two
    runs of a kernel, hence a tolerance; the emulated tests above are exact.)"""
    if cuda is E._module:
        pytest.skip("emulated: test_replayed_steps_equal_eager_steps_bit_for_bit covers it")
    batches = _batches(preset, 6)
    eager_t, graph_t = _trainer(preset), _trainer(preset)
    eager = _eager_capturable(eager_t)
    graphed = GraphedStep(graph_t, warmup=2)
    for k, (x, y) in enumerate(batches):
        if k == 4:
            eager_t.set_lr_scale(0.5)
            graph_t.set_lr_scale(0.5)
        xd, yd = backend.to_device(x, "cuda"), None if y is None else backend.to_device(y, "cuda")
        s_graph = graphed(Tensor(xd), yd)
        s_eager = eager(Tensor(xd), yd)
        for key in s_eager:
            np.testing.assert_allclose(backend.to_numpy(s_graph[key].data),
                                       backend.to_numpy(s_eager[key].data), rtol=1e-4,
                                       atol=1e-6, err_msg=f"{preset} step {k}: {key}")
    a_g, steps_g, rng_g = _state(graph_t)
    a_e, steps_e, rng_e = _state(eager_t)
    assert graphed.captured and steps_g == steps_e and rng_g == rng_e
    for i, (a, b) in enumerate(zip(a_g, a_e)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5, err_msg=f"{preset}: array {i}")
    assert int(graph_t.rng._device_offset.get()[0]) == graph_t.rng.offset


def _metrics(out):
    import json
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_cuda_graph_run_trains_checkpoints_and_resumes_exactly(tmp_path, tiny_data, cp):
    """``minigan train --cuda-graph`` end to end on the emulated GPU: the run with a resume in
    the middle (eager warm-up again, then a new capture) ends where the straight run ends."""
    from minigan.checkpoint import load_checkpoint
    from minigan.gan.run import Run
    from tests.gan.conftest import _cfg
    kw = {"device": "cuda", "cuda_graph": True, "steps": 6, "batch_size": 8,
          "sample_every": 3, "checkpoint_every": 3, "log_every": 1}
    straight = Run(_cfg(tmp_path / "a", "gan", **kw), quiet=True).train()
    half = Run(_cfg(tmp_path / "b", "gan", **dict(kw, steps=3)), quiet=True).train()
    resumed = Run.resume(half, quiet=True, steps=6).train()
    rows_a, rows_b = _metrics(straight), _metrics(resumed)
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b] == [1, 2, 3, 4, 5, 6]
    for ra, rb in zip(rows_a, rows_b):
        for k in ("d_loss", "g_loss", "d_real", "d_fake"):
            assert ra[k] == rb[k], (ra["step"], k)
    (a_arrays, a_meta), (b_arrays, b_meta) = (
        load_checkpoint(max((o / "checkpoints").glob("ckpt_*.npz")))
        for o in (straight, resumed))
    assert a_meta["step"] == b_meta["step"] == 6
    assert a_meta["trainer_rng"] == b_meta["trainer_rng"]
    for net in ("G", "D"):
        for k in a_arrays[net]:
            np.testing.assert_array_equal(a_arrays[net][k], b_arrays[net][k], err_msg=k)
    # and against the same run without a graph: the same training, to rounding
    eager = Run(_cfg(tmp_path / "c", "gan", **dict(kw, cuda_graph=False)), quiet=True).train()
    for ra, rc in zip(rows_a, _metrics(eager)):
        np.testing.assert_allclose(ra["d_loss"], rc["d_loss"], rtol=1e-4)


def test_cuda_graph_on_the_cpu_is_refused_for_a_new_run(tmp_path, tiny_data):
    from minigan.gan.run import Run
    from tests.gan.conftest import _cfg
    with pytest.raises(ValueError, match=r"--cuda-graph needs the GPU, and this run is on the "
                       r"cpu \(--device cpu\)"):
        Run(_cfg(tmp_path, "gan", cuda_graph=True), quiet=True)
    with pytest.raises(ValueError, match="cuda_graph .*must be true or false, got 1"):
        TrainConfig(cuda_graph=1).validate()


def test_a_cuda_graph_run_resumed_on_the_cpu_goes_on_without_the_graph(tmp_path, tiny_data,
                                                                       monkeypatch, capsys):
    from minigan.gan.run import Run
    from tests.gan.conftest import _cfg
    if not E.have_cxx():
        pytest.skip("no C++ compiler (g++) to emulate the GPU with")
    with monkeypatch.context() as m:
        E.install(m)
        out = Run(_cfg(tmp_path, "gan", device="cuda", cuda_graph=True, steps=3, batch_size=8),
                  quiet=True).train()
    E.clear_kernel_caches()
    run = Run.resume(out, quiet=True, steps=5, device="cpu")
    run.train()
    assert run.step == 5 and run.cfg.cuda_graph  # kept for a later resume on a GPU
    assert "--cuda-graph needs the GPU; this run continues on the CPU without it" in (
        capsys.readouterr().err)
    assert [r["step"] for r in _metrics(out)][-2:] == [4, 5]


@pytest.mark.parametrize("replace", ["model", "optimizer", "generator"])
def test_a_state_replaced_after_the_capture_is_captured_again(replace, cp):
    """An optimizer's load_state_dict (or a new generator counter) after the capture gives the
    step new arrays; the graph (which holds the old ones) is dropped and the step captured
    again after eager steps. A module's load_state_dict copies into the arrays the graph
    holds, as torch's copy_, so that graph stays. Either way the training goes on exactly as
    an eager twin's that loaded the same state."""
    batches = _batches("gan", 7)
    eager_t, graph_t = _trainer("gan"), _trainer("gan")
    eager = _eager_capturable(eager_t)
    graphed = GraphedStep(graph_t, warmup=1)
    for k, (x, _) in enumerate(batches):
        if k == 3:
            for t in (eager_t, graph_t):
                if replace == "model":
                    t.D.load_state_dict(t.D.state_dict())
                elif replace == "optimizer":
                    t.opt_G.load_state_dict(t.opt_G.state_dict())
                else:
                    t.rng.capturable = True  # a new device counter, same offset
        xd = backend.to_device(x, "cuda")
        graphed(Tensor(xd))
        eager(Tensor(xd), None)
        assert graphed.captured == (k not in ((0,) if replace == "model" else (0, 3))), k
        a_g, steps_g, rng_g = _state(graph_t)
        a_e, steps_e, rng_e = _state(eager_t)
        assert steps_g == steps_e and rng_g == rng_e
        for i, (a, b) in enumerate(zip(a_g, a_e)):
            np.testing.assert_array_equal(a, b, err_msg=f"step {k}: array {i}")


def _failing_capture(graphed):
    """Make ``graphed``'s capture fail inside the trainer's step, as a refused CUDA call would."""
    trainer, real_capture = graphed.trainer, graphed._capture

    def refuse(*args, **kwargs):
        raise RuntimeError("cudaErrorStreamCaptureUnsupported (planted)")

    def failing_capture():
        trainer.step = refuse
        try:
            real_capture()
        finally:
            del trainer.step
    graphed._capture = failing_capture


def test_a_failed_capture_can_fall_back_to_eager_steps(cp):
    """With ``fallback`` (as ``minigan train`` passes), a capture that fails is reported once
    and the steps go on eagerly, the same training as an eager twin's; without it, the
    capture's error is raised."""
    eager_t, graph_t = _trainer("gan"), _trainer("gan")
    eager = _eager_capturable(eager_t)
    seen = []
    graphed = GraphedStep(graph_t, warmup=1, fallback=seen.append)
    _failing_capture(graphed)
    for x, _ in _batches("gan", 4):
        xd = backend.to_device(x, "cuda")
        graphed(Tensor(xd))
        eager(Tensor(xd), None)
    assert not graphed.captured and len(seen) == 1 and "planted" in str(seen[0])
    assert graphed.calls == 4 and graphed.failed is seen[0]
    (a_g, *counters_g), (a_e, *counters_e) = _state(graph_t), _state(eager_t)
    assert counters_g == counters_e
    for a, b in zip(a_g, a_e):
        np.testing.assert_array_equal(a, b)
    strict = GraphedStep(_trainer("gan"), warmup=1)
    _failing_capture(strict)
    strict(Tensor(xd))
    with pytest.raises(RuntimeError, match="planted"):
        strict(Tensor(xd))
