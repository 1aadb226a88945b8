"""Smoke test of benchmarks/: both scripts' main() for one or two tiny steps on the CPU, with
PyTorch made unimportable (the benchmarks must never need it)."""
import importlib.util
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
STEP_FIELDS = {"framework", "model", "device", "batch_size", "step_ms_median", "step_ms_p10",
               "step_ms_p90", "img_per_s", "peak_mem_mb"}
KERNEL_FIELDS = {"op", "preset", "layer", "batch_size", "direction", "framework", "device",
                 "ms_median", "gflop_per_s", "gemm_gflop_per_s", "gemm_share"}


@pytest.fixture
def bench(monkeypatch):
    """A loader for benchmark scripts, with `import torch` failing as if it were absent."""
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.syspath_prepend(str(BENCH))

    def load(name):
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, mod)  # dataclasses look their module up
        spec.loader.exec_module(mod)
        return mod

    return load


def _json_lines(text):
    return [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]


@pytest.mark.parametrize("model", ["gan", "dragan", "dcgan", "dcgan64"])
def test_train_step_main(bench, capsys, model):
    ts = bench("train_step")
    argv = ["--model", model, "--batch-size", "2", "--device", "cpu", "--steps", "2",
            "--warmup", "1", "--block", "1", "--torch", "--json"]
    if model in ("dragan", "dcgan64"):
        argv.append("--no-memory")  # one memory probe child per family is enough here
    records = ts.main(argv)
    out = capsys.readouterr()
    assert "PyTorch is not installed" in out.err  # --torch degrades to a clear message
    assert [r["framework"] for r in records] == ["minigan"]
    (line,) = _json_lines(out.out)
    assert STEP_FIELDS <= set(line)
    assert line["model"] == model and line["device"] == "cpu" and line["batch_size"] == 2
    assert line["step_ms_p10"] <= line["step_ms_median"] <= line["step_ms_p90"]
    assert line["img_per_s"] > 0
    if "--no-memory" in argv:
        assert line["peak_mem_mb"] is None
    else:
        assert line["peak_mem_mb"] > 0


def test_train_step_pipelined_blocks(bench, capsys):
    ts = bench("train_step")
    (rec,) = ts.main(["--model", "gan", "--batch-size", "2", "--device", "cpu", "--steps", "4",
                      "--warmup", "1", "--block", "2", "--pipelined", "--no-memory", "--json"])
    assert rec["pipelined_block"] == 2 and rec["pipelined_blocks"] == 3  # at least 3 blocks
    assert rec["pipelined_ms_p10"] <= rec["pipelined_ms_median"] <= rec["pipelined_ms_p90"]
    assert rec["pipelined_ms_median"] > 0 and "gpu_trace" not in rec
    with pytest.raises(SystemExit):  # a GPU kernel trace of a CPU run is refused
        ts.parse_args(["--device", "cpu", "--gpu-trace", "5"])
    assert "--gpu-trace needs --device cuda" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["gan", "dcgan", "dcgan64"])
def test_narrow_divides_hidden_widths_and_keeps_the_step(bench, model):
    """--narrow K: the preset's layers and step, every hidden width divided by K (at least 2),
    the image and z untouched, the batch norms following their layer."""
    from minigan import nn

    ts = bench("train_step")
    G, D = ts.minigan_models(model, 0)
    g, d = ts.minigan_models(model, 0, narrow=32)

    def widths(net):
        return [(m.in_features, m.out_features) if isinstance(m, nn.Linear)
                else (m.in_channels, m.out_channels) for m in net
                if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]

    for big, small in ((G.net, g.net), (D.net, d.net)):
        wb, ws = widths(big), widths(small)
        assert len(wb) == len(ws) > 1
        assert ws[0][0] == wb[0][0] and ws[-1][1] == wb[-1][1]  # z/image in, image/logit out
        for (bi, bo), (si, so) in list(zip(wb, ws))[:-1]:
            assert so == max(2, bo // 32) < bo
        for (_, so), (si, _) in itertools.pairwise(ws):
            assert si == so  # each layer takes what the one before gives
        assert [type(m) for m in big] == [type(m) for m in small]
        for i, m in enumerate(small):
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                assert m.num_features == widths(small[:i])[-1][1]
    rec, = ts.main(["--model", model, "--narrow", "32", "--batch-size", "2", "--steps", "2",
                    "--warmup", "1", "--block", "1", "--no-memory", "--json"])
    assert rec["narrow"] == 32 and rec["step_ms_median"] > 0
    with pytest.raises(SystemExit):
        ts.parse_args(["--narrow", "0"])


def test_kernel_trace_summary(bench):
    ts = bench("train_step")
    events = [("ampere_sgemm_64x64_nn", 30.0), ("cupy_add", 2.0), ("cupy_add", 2.0),
              ("ampere_sgemm_64x64_nn", 30.0), ("Memcpy HtoD (Pageable -> Device)", 6.0)]
    t = ts.summarize_kernels(events, steps=2, wall_s=0.001)  # 0.5 ms a step
    assert t["kernels_per_step"] == 2.5
    assert t["gpu_busy_ms_per_step"] == pytest.approx(0.035)
    assert t["gpu_busy_share"] == pytest.approx(0.07)
    assert t["gemm_share_of_busy"] == pytest.approx(60 / 70)
    top = t["top_kernels"]
    assert [k["kernel"] for k in top] == ["ampere_sgemm_64x64_nn",
                                           "Memcpy HtoD (Pageable -> Device)", "cupy_add"]
    assert top[0]["per_step"] == 1.0 and top[0]["us_per_step"] == 30.0
    assert sum(k["share_of_busy"] for k in top) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="steps >= 1"):
        ts.summarize_kernels(events, steps=0, wall_s=1.0)
    # PyTorch's annotations on the GPU timeline span kernels already counted: left out
    traced = events + [("Optimizer.step#Adam.step", 50.0)]
    assert ts.gpu_activities(traced) == events


def test_train_step_profile(bench, capsys):
    ts = bench("train_step")
    (prof,) = ts.main(["--model", "dcgan", "--batch-size", "2", "--steps", "1", "--warmup", "1",
                       "--profile", "--json"])
    (line,) = _json_lines(capsys.readouterr().out)
    assert line["model"] == "dcgan"
    assert sum(prof["shares_pct"].values()) == pytest.approx(100.0, abs=0.5)
    assert any(k.startswith("conv") for k in prof["shares_pct"])


def _profile_every_kernel_split(bench, capsys, monkeypatch, model: str) -> dict:
    """train_step --profile of a few steps with every kernel split across two threads: the
    GEMMs and copies run through the pool's shared hand-off."""
    from minigan.kernels import parallel
    ts = bench("train_step")
    before = parallel.get_num_threads()
    monkeypatch.setattr(parallel, "MIN_BYTES", 2)
    monkeypatch.setattr(parallel, "MIN_GEMM_FLOPS", 1)
    parallel.set_num_threads(2)
    try:
        (prof,) = ts.main(["--model", model, "--batch-size", "4", "--steps", "2", "--warmup",
                           "1", "--profile", "--profile-top", "400", "--json"])
    finally:
        parallel.set_num_threads(before)
    capsys.readouterr()
    return prof


def test_train_step_profile_charges_split_work_to_the_kernels(bench, capsys, monkeypatch):
    # the split work must still be charged to the conv kernels that asked for it
    prof = _profile_every_kernel_split(bench, capsys, monkeypatch, "dcgan")
    shares = prof["shares_pct"]
    assert sum(shares.values()) == pytest.approx(100.0, abs=0.5)
    gemm = [f for f in prof["top_functions"] if f["function"] == "numpy.matmul (BLAS GEMM)"]
    assert gemm and gemm[0]["category"] == "conv: GEMM (BLAS matmul)"
    assert shares["conv: GEMM (BLAS matmul)"] >= gemm[0]["pct"] - 0.5
    for f in prof["top_functions"]:
        if f["function"].startswith("kernels/parallel.py:"):
            assert f["category"].startswith("conv") or f["category"] in (
                "batch norm", "elementwise (activations, BCE)", "Adam"), f
    # the split GEMM's own time (its hand-offs; on the calling thread, the wait for the
    # worker's block) is GEMM time, not the calling kernel's layout copies
    (split,) = [f for f in prof["top_functions"] if f["function"] == "kernels/parallel.py:matmul"]
    assert split["category"] == "conv: GEMM (BLAS matmul)"


def test_train_step_profile_charges_winograd_waits_and_s2d_copies(bench, capsys, monkeypatch):
    # dcgan64's 4x4 stride-2 convs with even outputs run as space-to-depth + Winograd: the
    # s2d copies are layout copies (not dispatch), and the calling thread's wait for the
    # worker's block of the Winograd pipeline is its own category (not the transforms)
    prof = _profile_every_kernel_split(bench, capsys, monkeypatch, "dcgan64")
    funcs = {f["function"]: f for f in prof["top_functions"]}
    assert funcs["kernels/conv.py:_space_to_depth"]["category"] == \
        "conv: layout copies (NCHW <-> GEMM operands)"
    wait = "conv: Winograd, waiting for the worker's block (its transforms and GEMMs)"
    assert funcs["kernels/winograd.py:_blas_blocks"]["category"] == wait
    assert funcs["kernels/winograd.py:_input_transform"]["category"] == \
        "conv: Winograd transforms (input, weight, output)"
    assert prof["shares_pct"][wait] > 0
    assert sum(prof["shares_pct"].values()) == pytest.approx(100.0, abs=0.5)


def test_train_step_profile_charges_linear_gemms_to_the_linear_layers(bench, capsys, monkeypatch):
    prof = _profile_every_kernel_split(bench, capsys, monkeypatch, "gan")
    funcs = {f["function"]: f for f in prof["top_functions"]}
    assert funcs["numpy.matmul (BLAS GEMM)"]["category"] == "linear layers (GEMM)"
    assert funcs["kernels/parallel.py:matmul"]["category"] == "linear layers (GEMM)"
    assert prof["shares_pct"]["linear layers (GEMM)"] >= funcs["numpy.matmul (BLAS GEMM)"]["pct"]


def test_kernels_main(bench, capsys, tmp_path):
    kb = bench("kernels")
    out_file = tmp_path / "k.jsonl"
    records = kb.main(["--device", "cpu", "--presets", "dcgan", "--batch-sizes", "2",
                       "--repeats", "1", "--warmup", "0", "--torch", "--json",
                       "--out", str(out_file)])
    out = capsys.readouterr()
    assert "PyTorch is not installed" in out.err
    lines = _json_lines(out.out)
    assert lines[0]["kind"] == "roofline" and lines[0]["rooflines"]["numpy"]["gemm_gflop_per_s"] > 0
    assert lines[1:] == records
    assert _json_lines(out_file.read_text()) == lines
    assert {r["op"] for r in records} == {"conv2d", "conv_transpose2d", "batch_norm",
                                          "leaky_relu", "adam"}
    for r in records:
        assert KERNEL_FIELDS <= set(r)
        assert r["framework"] == "numpy" and r["ms_median"] > 0 and r["gflop_per_s"] > 0
    convs = [r for r in records if r["op"] == "conv2d"]
    assert {r["direction"] for r in convs} == {"fwd", "bwd"}
    assert len(convs) == 6  # three D layers, forward and backward


def test_paired_block_ratios_follow_the_blocks(bench):
    ts = bench("train_step")
    # a 1.25x slower runner under a load that changes from step to step (the last block
    # short): every pair is 1.25 while the spread of either runner's steps is 8x
    load = [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 2.0, 3.0]
    b = [0.01 * f for f in load]
    a = [1.25 * t for t in b]
    assert ts.paired_block_ratios(a, b, 3) == pytest.approx([1.25, 1.25, 1.25])
    # each pair is its own blocks' medians: a burst in one of a's blocks moves only that pair
    a[3:6] = [0.3, 0.3, 0.3]
    assert ts.paired_block_ratios(a, b, 3) == pytest.approx([1.25, 5.0, 1.25])
    with pytest.raises(ValueError, match="block must be >= 1"):
        ts.paired_block_ratios(a, b, 0)
    with pytest.raises(ValueError, match="timed 8 and 7 steps"):
        ts.paired_block_ratios(a, b[:7], 3)


def test_train_step_records_the_paired_ratio(bench, capsys, monkeypatch):
    """With a twin (here minigan itself under the twin's name: torch is unimportable in these
    tests), the minigan record carries the block-paired ratio next to the ratio of medians."""
    ts = bench("train_step")

    class FakeTorch:
        __version__ = "fake"

        @staticmethod
        def get_num_threads():
            return 1

    monkeypatch.setattr(ts.C, "load_torch", lambda device: (FakeTorch, None))
    real_make = ts.make_runner

    def make_runner(framework, model, device, torch=None, narrow=1):
        if framework != "torch":
            return real_make(framework, model, device, torch, narrow)
        twin = ts.MiniganRunner(model, device, narrow)
        twin.name = "torch"
        return twin

    monkeypatch.setattr(ts, "make_runner", make_runner)
    (rec, twin) = ts.main(["--model", "gan", "--batch-size", "2", "--steps", "5", "--warmup",
                           "0", "--block", "2", "--torch", "--no-memory", "--json"])
    capsys.readouterr()
    assert rec["framework"] == "minigan" and twin["framework"] == "torch"
    assert rec["ratio_paired_blocks"] == 3  # blocks of 2, 2 and 1 steps
    assert rec["ratio_paired_p25"] <= rec["ratio_paired_median"] <= rec["ratio_paired_p75"]
    assert 0 < rec["ratio_paired_median"] and twin["ratio_paired_median"] == \
        rec["ratio_paired_median"]


def test_report_tables(bench, capsys, tmp_path):
    out = tmp_path / "r.jsonl"
    bench("train_step").main(["--model", "gan", "--batch-size", "2", "--steps", "1", "--warmup",
                              "0", "--no-memory", "--json", "--out", str(out)])
    bench("kernels").main(["--presets", "dcgan", "--batch-sizes", "2", "--ops", "leaky_relu",
                           "--repeats", "1", "--warmup", "0", "--json", "--out", str(out)])
    capsys.readouterr()
    text = bench("report").main([str(out)])
    assert "| cpu | gan | 2 |" in text
    assert "| cpu | dcgan | 2 | leaky_relu | fwd |" in text
    assert "steps per sync" not in text and "GPU activities" not in text  # none recorded
    # pipelined timings and GPU traces get tables of their own (a trace written by hand here:
    # tracing needs a GPU)
    bench("train_step").main(["--model", "gan", "--batch-size", "2", "--steps", "2", "--warmup",
                              "0", "--block", "2", "--pipelined", "--no-memory", "--json",
                              "--out", str(out)])
    rec = json.loads(out.read_text().splitlines()[-1])
    rec["gpu_trace"] = bench("train_step").summarize_kernels([("gemm_a", 4.0), ("add", 1.0)],
                                                              steps=1, wall_s=1e-5)
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    capsys.readouterr()
    text = bench("report").main([str(out)])
    assert "| cpu | gan | 2 | 2 |" in text  # the pipelined row: 2 steps per sync
    assert "| gan | 2 | minigan | 2 | 0.01 | 0.01 | 50% | 80% |" in text


def test_report_names_a_missing_file_and_a_broken_record(bench, capsys, tmp_path):
    report = bench("report")
    missing = tmp_path / "none.jsonl"
    with pytest.raises(SystemExit, match=r"cannot read .*none\.jsonl"):
        report.main([str(missing)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("# a header line, skipped\n{\"model\": \"gan\"}\n{\"model\": \n")
    with pytest.raises(SystemExit, match=r"bad\.jsonl, line 3: not a JSON record"):
        report.main([str(bad)])
    with pytest.raises(SystemExit) as info:  # --help: usage, exit status 0
        report.main(["--help"])
    assert info.value.code == 0 and "JSON-lines files" in capsys.readouterr().out


def test_report_keeps_narrow_runs_apart_and_tables_launch_costs(bench, capsys, tmp_path):
    """A --narrow run is not the preset: it gets a row of its own, with no target verdict.
    launch_cost.py's records get their own table."""
    out = tmp_path / "r.jsonl"
    ts = bench("train_step")
    for narrow in ("1", "16"):
        ts.main(["--model", "gan", "--batch-size", "64", "--steps", "1", "--warmup", "0",
                 "--narrow", narrow, "--no-memory", "--json", "--out", str(out)])
    recs = [json.loads(ln) for ln in out.read_text().splitlines()]
    for rec in recs:  # the twin's side, written by hand: torch is unimportable here
        twin = dict(rec, framework="torch", step_ms_median=rec["step_ms_median"] * 2)
        with open(out, "a") as f:
            f.write(json.dumps(twin) + "\n")
    bench("launch_cost").main(["--device", "cpu", "--calls", "2", "--repeats", "1",
                               "--warmup", "0", "--json", "--out", str(out)])
    capsys.readouterr()
    text = bench("report").main([str(out)])
    assert "| cpu | gan | 64 |" in text and "0.50 ok | - | ≤ 1.0 |" in text  # (no pairs)
    narrow_rows = [ln for ln in text.splitlines() if ln.startswith("| cpu | gan (narrow 16) | 64 |")]
    assert len(narrow_rows) == 1 and "0.50 |" in narrow_rows[0]
    assert " ok " not in narrow_rows[0] and "≤" not in narrow_rows[0]
    assert "| cpu | Adam.step, one parameter |" in text


def test_launch_cost_times_each_call_and_degrades_without_torch(bench, capsys, monkeypatch):
    lc = bench("launch_cost")
    records = lc.main(["--device", "cpu", "--calls", "3", "--repeats", "2", "--warmup", "1"])
    out = capsys.readouterr()
    assert "no PyTorch comparison" in out.err
    cases = {r["case"] for r in records}
    assert {"matmul (64x128 @ 128x128)", "Adam.step, one parameter", "Adam.step, 22 parameters",
            "Adam.step, 22 parameters, foreach=False",
            "autograd: (x*w + b).sum().backward()"} <= cases
    assert not {"RawKernel launch, 4 arguments",  # GPU-only cases
                "RawKernel launch into a new array"} & cases
    for r in records:
        assert 0 < r["minigan_host_us"] <= r["minigan_total_us"] and "torch_host_us" not in r
    assert "| Adam.step, one parameter |" in out.out
    with pytest.raises(SystemExit):
        lc.parse_args(["--calls", "0"])

    calls = []  # time_run: host time excludes the final synchronisation, the total includes it
    clock = iter([0.0, 1.0, 3.0])
    monkeypatch.setattr(lc.time, "perf_counter", lambda: next(clock))
    host, total = lc.time_run(lambda: calls.append(1), 4, lambda: None)
    assert (host, total, len(calls)) == (0.25, 0.75, 4)


def test_twin_quality_without_torch_says_so(bench, capsys):
    tq = bench("twin_quality")
    assert tq.main(["--preset", "dcgan", "--epochs", "0.01"]) == 2
    assert "PyTorch is not installed" in capsys.readouterr().err


def test_host_time_clock_takes_out_only_the_emulators_time(bench):
    """The subtraction behind host_time.py: time inside a wrapped (emulator) function is taken
    out once, nested calls included, and time outside it is kept."""
    import time
    import types

    ht = bench("host_time")
    clock = ht._Clock()
    inner = clock.wrap(lambda: time.sleep(0.02))
    outer = clock.wrap(lambda: (inner(), time.sleep(0.02)))
    fake = types.SimpleNamespace(_defer=None)
    inside_only = ht._own_times(lambda: (outer(), inner()), fake, clock, 2, null=True)
    assert all(abs(t) < 0.01 for t in inside_only)  # 0.06 s, all of it the emulator's
    mixed = ht._own_times(lambda: (inner(), time.sleep(0.03)), fake, clock, 2, null=True)
    assert all(0.03 <= t < 0.045 for t in mixed)
    assert fake._defer is None  # the null mode's patch is undone after each step


def test_host_time_main(bench, capsys):
    """host_time.py on the emulated GPU: the eager step's launch count, no sync, minigan's own
    time > 0, and the emulator unpatched afterwards."""
    from tests.kernels import emulated_cupy
    if not emulated_cupy.have_cxx():
        pytest.skip("no g++ to run the emulated kernels with")
    from minigan import backend

    ht = bench("host_time")
    (rec,) = ht.main(["--models", "gan", "--steps", "2", "--batch-size", "2", "--profile", "3",
                      "--json"])
    (line,) = _json_lines(capsys.readouterr().out)
    assert line["model"] == "gan" and line["launches"] == rec["launches"]
    from tests.kernels.test_emulated_cupy import STEP_LAUNCHES
    assert rec["launches"] == STEP_LAUNCHES["gan"]  # the eager step's count: nothing is skipped
    assert rec["host_syncs"] == 0
    assert 0 < rec["own_ms_p10"] <= rec["own_ms_median"] <= rec["own_ms_p90"]
    assert len(rec["profile"]) == 3 and all(p["bytecodes"] > 0 for p in rec["profile"])
    # the step's Python, counted: thousands of instructions, the most-run functions first
    assert rec["bytecodes"] > 10000 and rec["python_calls"] > 500
    counts = [p["bytecodes"] for p in rec["profile"]]
    assert counts == sorted(counts, reverse=True) and counts[0] < rec["bytecodes"]
    E = ht.emulator()
    assert backend.cupy is not E._module and not backend.is_cupy_array(np.zeros(1))
    assert not hasattr(E.RawKernel.__call__, "__wrapped__")  # the timing wrappers are gone
    assert E.cublas.sgemm.__name__ == "sgemm" and not hasattr(E.cublas.sgemm, "__wrapped__")
    for bad in (["--models", "resnet"], ["--steps", "1"], ["--compare", "/nonexistent"]):
        with pytest.raises(SystemExit):
            ht.main(bad)
    err = capsys.readouterr().err
    assert "resnet" in err and "got 1, 8 and 2" in err and "/nonexistent: no minigan" in err


def test_op_count_main(bench, capsys):
    import minigan.autograd as ag

    oc = bench("op_count")
    call_before = ag.Function.__call__
    one = oc.main(["--models", "gan,dcgan", "--batch-size", "2", "--steps", "1", "--json"])
    two = oc.main(["--models", "gan,dcgan", "--batch-size", "2", "--steps", "2", "--json"])
    out = capsys.readouterr()
    assert "PyTorch is not installed" in out.err
    assert ag.Function.__call__ is call_before  # the counting hooks are removed again
    assert [(r["framework"], r["model"]) for r in one] == [("minigan", "gan"), ("minigan", "dcgan")]
    assert len(_json_lines(out.out)) == 4
    for a, b in zip(one, two):  # per-step counts do not depend on how many steps were counted
        assert a["forward_functions"] == b["forward_functions"] > 0
        assert a["backward_calls"] == b["backward_calls"] > 0
    gan, dcgan = one
    assert gan["optimizer_param_updates"] == 22 and dcgan["optimizer_param_updates"] == 12
    # foreach at its default: one multi-tensor launch per optimizer (D and G)
    assert gan["optimizer_gpu_launches"] == dcgan["optimizer_gpu_launches"] == 2
    import minigan.kernels.optim as KO
    assert KO.adam_step_multi.__name__ == "adam_step_multi"  # the hook is removed again
    assert "Linear" in gan["top_forward"] and "Conv2d" in dcgan["top_forward"]
    from minigan import backend
    from tests.kernels import emulated_cupy
    if emulated_cupy.have_cxx():  # GPU launches, counted through the emulated CuPy
        for a, b in zip(one, two):
            assert a["gpu_launches"] == b["gpu_launches"] > 50
            assert a["gpu_host_syncs"] == a["gpu_uploads"] == 0
        assert gan["gpu_top"]["gemm:sgemm"] > 10  # every GEMM a direct cuBLAS call
        assert dcgan["gpu_top"]["raw:minigan_im2col_f32_i32"] > 0
        assert gan["gpu_launches_by_kind"]["raw"] >= 2  # the multi-tensor Adam at least
        assert backend.cupy is not emulated_cupy._module  # the emulation is undone
    else:
        assert gan["gpu_launches"] is None and "g++" in gan["gpu_note"]
    for bad in (["--models", "resnet"], ["--models", ""], ["--steps", "0"],
                ["--batch-size", "0"]):
        with pytest.raises(SystemExit):
            oc.main(bad)
    err = capsys.readouterr().err
    assert "resnet" in err and "(none given)" in err and "got 0 and 64" in err


@pytest.mark.parametrize("n_gen", [1, 2])
def test_torch_twin_trainer_takes_n_gen_g_steps(monkeypatch, n_gen):
    """The PyTorch twin's step makes one D update and n_gen G updates, like GANTrainer.step."""
    torch = pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(BENCH))
    import torch_twins

    from minigan.gan.models import build_models
    from minigan.gan.trainer import TrainConfig

    G, D = build_models("gan", (1, 28, 28), 0, 100)
    tG, tD = torch_twins.twin_of(G, D, "cpu")
    cfg = TrainConfig(preset="gan", device="cpu", n_gen=n_gen).resolved()
    tr = torch_twins.TorchTrainer(tG, tD, cfg)
    tr.step(torch.rand(4, 1, 28, 28) * 2 - 1)
    steps = lambda opt: {int(st["step"]) for st in opt.state.values()}  # noqa: E731
    assert steps(tr.opt_D) == {1}
    assert steps(tr.opt_G) == {n_gen}
    with pytest.raises(NotImplementedError, match="n-gen"):
        torch_twins.TorchTrainer(tG, tD, TrainConfig(preset="gan", device="cpu",
                                                     n_critic=2).resolved())


@pytest.mark.parametrize("preset", ["gan", "dcgan"])
def test_torch_twin_step_gives_minigans_gradients(monkeypatch, preset):
    """The twin takes minigan's step: from the same weights, noise and real batch, one step
    leaves the same losses, D outputs and gradients (D's from its update, G's from its own)
    in both frameworks. gan's D scores each sample alone, so both make one D call on real +
    fake; dcgan's has batch norm, so both make two."""
    torch = pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(BENCH))
    import torch_twins

    import minigan
    from minigan import Tensor
    from minigan.gan.models import build_models
    from minigan.gan.trainer import TrainConfig, make_trainer

    minigan.manual_seed(3)
    G, D = build_models(preset, (1, 28, 28), 0, 100)
    tG, tD = torch_twins.twin_of(G, D, "cpu")
    cfg = TrainConfig(preset=preset, device="cpu", n_gen=1).resolved()
    assert torch_twins.twin_joint(cfg, D) == (preset == "gan")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 100)).astype(np.float32)
    real = rng.uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32)
    trainer = make_trainer(G, D, cfg)
    monkeypatch.setattr(trainer, "sample_z", lambda n: Tensor(z.copy()))
    stats = trainer.step(Tensor(real))
    twin = torch_twins.TorchTrainer(tG, tD, cfg, joint=torch_twins.twin_joint(cfg, D))
    assert twin.joint == (preset == "gan")
    monkeypatch.setattr(torch, "randn", lambda *a, **k: torch.from_numpy(z.copy()))
    tstats = twin.step(torch.from_numpy(real))
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):
        np.testing.assert_allclose(float(stats[key].numpy()), float(tstats[key]), rtol=1e-5,
                                   err_msg=key)
    for net, tnet in ((G, tG), (D, tD)):
        mine = {k: p.grad.numpy() for k, p in net.named_parameters()}
        # in norm: a unit whose input sits at a LeakyReLU's kink in one sample may take the
        # other slope in one framework (float32 rounding), which moves a few elements by a
        # percent; the network's largest gradient sets the floor (a bias before batch norm has
        # a zero gradient, rounding noise in both)
        scale = max(float(np.abs(g).max()) for g in mine.values())
        for name, p in tnet.named_parameters():
            want = p.grad.numpy()
            err = float(np.linalg.norm(mine[name] - want))
            assert err <= 1e-3 * float(np.linalg.norm(want)) + 1e-6 * scale, (name, err)


def test_cpu_isa_reads_family_model_and_vector_flags(bench):
    common = bench("_common")
    zen4 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
            "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512_bf16\n\n"
            "processor\t: 1\ncpu family\t: 99\nmodel\t\t: 99\nflags\t\t: avx2\n")
    assert common.cpu_isa(zen4) == "family 25 model 17, avx2 fma avx512f avx512_bf16"
    old = "cpu family\t: 6\nmodel\t\t: 45\nflags\t\t: fpu sse2 avx\n"
    assert common.cpu_isa(old) == "family 6 model 45, no AVX2"
    assert common.cpu_isa("") is None
    env = common.environment("cpu")
    assert "cpu_isa" in env and "numpy_blas_core" in env and "openblas_coretype" in env
    assert "minigan_commit" in env


def test_source_revision_names_the_commit_or_nothing(bench, tmp_path):
    import re
    import shutil
    import subprocess
    common = bench("_common")
    assert common.source_revision(tmp_path) is None  # not a checkout
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "f.txt").write_text("a\n")

    def git(*args):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                        *args], check=True, capture_output=True)
    git("init", "-q")
    git("add", "f.txt")
    git("commit", "-q", "-m", "one")
    rev = common.source_revision(repo)
    assert re.fullmatch(r"[0-9a-f]{12}", rev)
    results = repo / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "r.jsonl").write_text("{}\n")
    (repo / "README.md").write_text("x\n")
    git("add", ".")
    git("commit", "-q", "-m", "two")
    rev = common.source_revision(repo)
    (results / "r.jsonl").write_text("{}\n{}\n")  # a benchmark appending its records
    (repo / "README.md").write_text("y\n")
    assert common.source_revision(repo) == rev  # neither is code
    (repo / "f.txt").write_text("b\n")
    assert common.source_revision(repo) == rev + "+dirty"
    (repo / "sub").mkdir()  # a folder inside someone else's checkout is not a checkout
    assert common.source_revision(repo / "sub") is None
    core = common.numpy_blas_core()
    assert core is None or (isinstance(core, str) and core)


# ----------------------------------------------------------------------------- graph probe

def _colmajor(buf, offset, rows, cols, ld):
    """The column-major (rows, cols) matrix with leading dimension ld at element ``offset`` of
    the flat float64 buffer ``buf``: what cuBLAS reads for that pointer."""
    from numpy.lib.stride_tricks import as_strided
    return as_strided(buf[offset:], (rows, cols), (buf.itemsize, ld * buf.itemsize),
                      writeable=False)


def _emulated_cublas(probe, base, a, b):
    """Row-major a @ b as ``kernels.gemm`` hands it to cuBLAS (``probe`` is that module), with
    cuBLAS's column-major GEMM done by NumPy on the operands' raw memory (``base``, which holds
    both)."""
    import numpy as np

    def layout(x):
        st = tuple(s // x.itemsize for s in x.strides)
        lay = probe.gemm_operand(x.shape, st)
        assert lay is not None, (x.shape, st)
        return lay, (x.__array_interface__["data"][0] - base.__array_interface__["data"][0]) \
            // base.itemsize

    (m, k), n = a.shape, b.shape[1]
    (la, off_a), (lb, off_b) = layout(a), layout(b)
    ta, tb, mm, nn, kk, lda, ldb, ldc = probe.gemm_call(la, lb, m, n, k)
    assert (mm, nn, kk, ldc) == (n, m, k, n)
    # cuBLAS's A is our b: (M, K) as stored, or (K, M) transposed; its B is our a
    A = _colmajor(base, off_b, *((mm, kk) if ta == probe.OP_N else (kk, mm)), lda)
    B = _colmajor(base, off_a, *((kk, nn) if tb == probe.OP_N else (nn, kk)), ldb)
    A = A if ta == probe.OP_N else A.T
    B = B if tb == probe.OP_N else B.T
    c_colmajor = A @ B  # (n, m), column-major with ldc = n: row-major c is its transpose
    return np.ascontiguousarray(c_colmajor.T)


def test_gemm_layouts_match_matmul():
    """The stride bookkeeping for cuBLAS (row-major operands read as column-major matrices),
    checked without a GPU: for contiguous, transposed, sliced, single-row and single-column
    operands, the column-major GEMM it describes gives a @ b."""
    import numpy as np

    from minigan.kernels import gemm as probe
    rng = np.random.default_rng(0)
    base = rng.standard_normal(20000)  # both operands are views of it, so reads stay inside
    m, k, n = 7, 5, 6

    def view(off, shape, strides):
        from numpy.lib.stride_tricks import as_strided
        return as_strided(base[off:], shape, tuple(s * base.itemsize for s in strides))

    a_forms = {"contiguous": view(0, (m, k), (k, 1)), "transposed": view(0, (m, k), (1, m)),
               "row slice": view(0, (m, k), (k + 3, 1)), "col-major ld": view(0, (m, k), (1, m + 4)),
               "one row": view(0, (1, k), (999, 1)), "one column": view(0, (m, 1), (1, 999))}
    b_forms = {"contiguous": view(5000, (k, n), (n, 1)), "transposed": view(5000, (k, n), (1, k)),
               "row slice": view(5000, (k, n), (n + 2, 1)), "one row": view(5000, (1, n), (7, 1))}
    checked = 0
    for an, a in a_forms.items():
        for bn, b in b_forms.items():
            if a.shape[1] != b.shape[0]:
                continue
            got = _emulated_cublas(probe, base, a, b)
            np.testing.assert_allclose(got, a @ b, rtol=1e-12, atol=1e-12, err_msg=f"{an} @ {bn}")
            checked += 1
    assert checked >= 16
    # neither layout (both strides above 1): such an operand is copied first
    assert probe.gemm_operand((4, 4), (8, 2)) is None
    assert probe.gemm_operand((4, 4), (-4, 1)) is None


def test_graph_probe_runs_on_the_emulated_gpu(bench, capsys, monkeypatch):
    """The probe end to end on the emulated GPU (tests/kernels/emulated_cupy.py), which records
    a capture and replays it as CUDA does: the captured GEMMs equal cupy.matmul, replays equal
    the eager twin's steps exactly, and every timing field is there."""
    import json

    from tests.kernels import emulated_cupy
    if not emulated_cupy.have_cxx():
        pytest.skip("no g++ to emulate the GPU with")
    probe = bench("graph_probe")
    emulated_cupy.install(monkeypatch)
    try:
        (rec,) = probe.main(["--models", "gan", "--batch-size", "4", "--steps", "2",
                             "--block", "1", "--warmup", "1", "--back-to-back", "1",
                             "--json"])
    finally:
        emulated_cupy.clear_kernel_caches()
    assert rec["ok"], rec.get("traceback")
    assert set(rec["gemm_check"]) == {"nn", "nt", "tn", "tt"}
    assert max(rec["gemm_check"].values()) < 1e-5
    for k in (3, 4, 12):
        assert rec[f"step{k}_max_abs_diff"] == 0.0
    assert rec["host_counters_match"] is True
    for key in ("graph_ms_median", "minigan_ms_median", "graph_step_host_us"):
        assert rec[key] > 0
    assert json.loads(capsys.readouterr().out.strip())["model"] == "gan"


def test_graph_probe_without_a_gpu_says_so(bench, monkeypatch):
    probe = bench("graph_probe")
    monkeypatch.setattr(probe.backend, "cuda_available", lambda: False)
    with pytest.raises(SystemExit, match="needs CuPy and a CUDA GPU"):
        probe.main(["--models", "gan"])


def test_train_step_times_the_cuda_graph_step_on_the_emulated_gpu(bench, capsys, emulated_gpu):
    """--cuda-graph adds minigan's replayed step as a third framework, timed in the same blocks;
    refused off the GPU."""
    import json
    ts = bench("train_step")
    recs = ts.main(["--model", "gan", "--batch-size", "4", "--device", "cuda", "--cuda-graph",
                    "--steps", "1", "--warmup", "1", "--block", "1", "--json"])
    assert [r["framework"] for r in recs] == ["minigan", "minigan_graph"]
    assert all(r["step_ms_median"] > 0 and r["device"] == "cuda" for r in recs)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [r["framework"] for r in lines] == ["minigan", "minigan_graph"]
    with pytest.raises(SystemExit):
        ts.main(["--model", "gan", "--device", "cpu", "--cuda-graph"])
    assert "--cuda-graph needs --device cuda" in capsys.readouterr().err


def test_report_gives_the_cuda_graph_step_a_row_of_its_own(bench, capsys, tmp_path):
    import json
    out = tmp_path / "g.jsonl"

    def rec(fw, ms):
        return {"framework": fw, "model": "gan", "device": "cuda", "batch_size": 64,
                "step_ms_median": ms, "step_ms_p10": ms, "step_ms_p90": ms,
                "img_per_s": 64e3 / ms, "peak_mem_mb": 10.0}
    recs = [rec(fw, ms) for fw, ms in (("minigan", 6.0), ("minigan_graph", 1.0), ("torch", 5.0))]
    recs[0].update(ratio_paired_median=1.18, ratio_paired_p25=1.1, ratio_paired_p75=1.25)
    out.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    text = bench("report").main([str(out)])
    assert ("| cuda | gan | 64 | 6.00 (6.0-6.0) | 5.00 (5.0-5.0) | 1.20 MISS | 1.18 (1.10-1.25) | "
            "≤ 1.0 |") in text
    assert ("| cuda | gan (CUDA graph) | 64 | 1.00 (1.0-1.0) | 5.00 (5.0-5.0) | 0.20 ok | - | "
            "≤ 1.0 |") in text


def test_a_graph_step_that_fails_to_build_is_reported_and_the_rest_still_timed(
        bench, capsys, emulated_gpu, monkeypatch, tmp_path):
    from minigan.gan import graph
    ts = bench("train_step")

    def refuse(self, trainer, warmup=2):
        raise RuntimeError("no capture here")
    monkeypatch.setattr(graph.GraphedStep, "__init__", refuse)
    out = tmp_path / "t.jsonl"
    recs = ts.main(["--model", "gan", "--batch-size", "4", "--device", "cuda", "--cuda-graph",
                    "--steps", "1", "--warmup", "0", "--block", "1", "--json", "--out",
                    str(out)])
    assert [r["framework"] for r in recs] == ["minigan"]
    assert "minigan_graph failed to build (RuntimeError: no capture here)" in (
        capsys.readouterr().err)
    text = bench("report").main([str(out)])
    assert "- FAILED: minigan_graph gan cuda batch 4: RuntimeError: no capture here" in text
