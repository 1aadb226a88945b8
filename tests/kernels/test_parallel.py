"""kernels.parallel: CPU kernels split across threads give the serial results, errors reach the
caller, and the thread count is the user's to set."""
import os
import threading
import time
import warnings

import numpy as np
import pytest

import minigan
from minigan.kernels import batchnorm as BN
from minigan.kernels import conv as C
from minigan.kernels import elementwise as E
from minigan.kernels import optim as O
from minigan.kernels import parallel as P


@pytest.fixture(params=["spin", "queue"])
def threads(monkeypatch, request):
    """Set the thread count for one test (restored after) with the size thresholds at their
    minimum, so that even small test arrays are split. Each test runs twice: with workers that
    spin-wait between blocks (forced even where threads outnumber the CPUs, with a short spin)
    and with workers that sleep in a queue."""
    if request.param == "spin" and P._spin_functions() is None:
        pytest.skip("no pthread spin locks here: every pool's workers sleep in a queue")
    before = P.get_num_threads()
    monkeypatch.setattr(P, "MIN_BYTES", 2)
    monkeypatch.setattr(P, "MIN_GEMM_FLOPS", 1)
    if request.param == "spin":
        monkeypatch.setenv("MINIGAN_SPIN_MS", "1")
        monkeypatch.setattr(P, "_cpus", lambda: 64)
    else:
        monkeypatch.setenv("MINIGAN_SPIN_MS", "0")

    def set_threads(n):
        P.set_num_threads(n)
        assert P._pool().spinning == (request.param == "spin" and n > 1)

    yield set_threads
    monkeypatch.undo()
    P.set_num_threads(before)


def test_blocks_cover_the_range_once_in_near_equal_parts():
    for total in range(0, 12):
        for parts in range(1, 6):
            bl = P.blocks(total, parts)
            assert [i for lo, hi in bl for i in range(lo, hi)] == list(range(total))
            assert all(hi > lo for lo, hi in bl)
            sizes = [hi - lo for lo, hi in bl]
            if sizes:
                assert max(sizes) - min(sizes) <= 1
                assert len(bl) == min(parts, total)


def test_run_splits_across_worker_threads(threads):
    threads(3)
    seen, lock = [], threading.Lock()

    def fn(lo, hi):
        with lock:
            seen.append((lo, hi, threading.current_thread().name))

    P.run(fn, 10, 10**6)
    assert sorted((lo, hi) for lo, hi, _ in seen) == [(0, 4), (4, 7), (7, 10)]
    names = {name for _, _, name in seen}
    assert threading.current_thread().name in names
    assert {"minigan-cpu-1", "minigan-cpu-2"} <= names


def test_run_stays_serial_for_small_work_and_one_thread(threads, monkeypatch):
    threads(2)
    calls = []
    monkeypatch.setattr(P, "MIN_BYTES", 1 << 20)
    P.run(lambda lo, hi: calls.append((lo, hi)), 8, 1000)
    assert calls == [(0, 8)]
    threads(1)
    calls.clear()
    P.run(lambda lo, hi: calls.append((lo, hi)), 8, 1 << 30)
    assert calls == [(0, 8)]
    calls.clear()
    P.run(lambda lo, hi: calls.append((lo, hi)), 0, 1 << 30)
    assert calls == []


@pytest.mark.parametrize("failing_block", [0, 1])
def test_an_error_in_any_block_reaches_the_caller_after_all_blocks_ran(threads, failing_block):
    threads(2)
    finished = []

    def fn(lo, hi):
        if lo == failing_block * 5:
            raise ValueError(f"block {lo}:{hi} failed")
        finished.append(lo)

    with pytest.raises(ValueError, match=f"block {failing_block * 5}:"):
        P.run(fn, 10, 10**6)
    assert finished == [(1 - failing_block) * 5]
    # the pool is free again, and no stale answer is taken for the next call's
    out = []
    P.run(lambda lo, hi: out.append(lo), 10, 10**6)
    assert sorted(out) == [0, 5]


def test_a_nested_call_runs_serially_instead_of_waiting_on_itself(threads):
    threads(2)
    inner = []

    def outer(lo, hi):
        me = threading.current_thread().name
        P.run(lambda a, b: inner.append((lo, a, b, threading.current_thread().name == me)),
              4, 10**6)

    t = threading.Thread(target=P.run, args=(outer, 2, 10**6), daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "a nested parallel call deadlocked"
    # each outer block ran the inner blocks itself, one after the other
    assert sorted(inner) == [(0, 0, 2, True), (0, 2, 4, True), (1, 0, 2, True),
                             (1, 2, 4, True)]


def test_a_call_holding_a_pool_that_was_replaced_still_finishes(threads):
    threads(2)
    old = P._pool()
    threads(3)  # closes the old pool: its worker quits
    out = []
    t = threading.Thread(target=old.run, args=([lambda: out.append(1), lambda: out.append(2)],),
                         daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), "a call on a closed pool waited for a worker that had quit"
    assert out == [1, 2]  # run serially by the caller


def test_set_num_threads_checks_its_argument(threads):
    for bad in (0, -2):
        with pytest.raises(ValueError, match="positive integer"):
            minigan.set_num_threads(bad)
    for bad in (1.5, True, "2", None):
        with pytest.raises(TypeError, match="positive integer"):
            minigan.set_num_threads(bad)
    minigan.set_num_threads(np.int64(3))
    assert minigan.get_num_threads() == 3 and minigan.get_num_threads is P.get_num_threads


def test_the_default_thread_count_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MINIGAN_NUM_THREADS", "5")
    assert P._default_threads() == 5
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv("MINIGAN_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="MINIGAN_NUM_THREADS"):
            P._default_threads()
    monkeypatch.delenv("MINIGAN_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    n = P._default_threads()
    assert 1 <= n <= P._MAX_DEFAULT_THREADS
    if hasattr(os, "sched_getaffinity"):
        assert n == min(len(os.sched_getaffinity(0)), P._MAX_DEFAULT_THREADS)
    # a job limited to fewer threads through the usual variables is not given more
    monkeypatch.setattr(P, "_MAX_DEFAULT_THREADS", 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert P._default_threads() == 16
    monkeypatch.setenv("OMP_NUM_THREADS", "3,2")
    assert P._default_threads() == 3
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert P._default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "0")
    assert P._default_threads() == 16  # (values that are no thread counts are not ours to judge)
    monkeypatch.setenv("MINIGAN_NUM_THREADS", "20")
    assert P._default_threads() == 20  # minigan's own variable wins


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(37, 19, 5), (5, 19, 37), (64, 1, 64), (1, 7, 1)])
def test_matmul_matches_numpy_and_repeats_exactly(threads, dtype, m, k, n):
    threads(3)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    wide = np.zeros((m, k + 3), dtype)
    wide[:, 1:k + 1] = a  # a row-strided view
    for x, y in ((a, b), (np.asfortranarray(a), b), (a, np.asfortranarray(b)),
                 (wide[:, 1:k + 1], b)):
        got = P.matmul(x, y)
        np.testing.assert_allclose(got, x @ y, rtol=tol, atol=tol)
        assert np.array_equal(got, P.matmul(x, y))
    out = np.full((m, n), np.nan, dtype)
    assert P.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=tol, atol=tol)


def test_matmul_leaves_the_blas_thread_count_as_it_found_it(threads):
    threads(2)
    if not P.blas_controllable():
        pytest.skip("the loaded BLAS has no thread control minigan knows (not OpenBLAS)")
    before = P._blas["get"]()
    try:
        for count in (2, 3):
            P._blas["set"](count)
            P.matmul(np.ones((40, 30)), np.ones((30, 20)))
            assert P._blas["get"]() == count
    finally:
        P._blas["set"](before)


def test_matmul_into_an_operand_gives_numpys_product(threads):
    threads(3)
    rng = np.random.default_rng(7)
    a = rng.standard_normal((30, 30))
    b = rng.standard_normal((30, 30))
    want = a @ b
    assert P.matmul(a, b, out=b) is b  # (each row block reads all of b)
    np.testing.assert_allclose(b, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_pair_runs_equal_gemms_whole_side_by_side(threads, monkeypatch, dtype):
    rng = np.random.default_rng(3)
    a1, b1 = (rng.standard_normal(shape).astype(dtype) for shape in ((40, 30), (30, 20)))
    a2, b2 = (rng.standard_normal(shape).astype(dtype) for shape in ((20, 40), (40, 30)))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    split = []
    real = P.matmul
    monkeypatch.setattr(P, "matmul", lambda *a, **kw: split.append(1) or real(*a, **kw))
    for count, whole in ((2, P.blas_controllable()), (1, False), (3, False)):
        threads(count)
        split.clear()
        o1, o2 = np.full((40, 20), np.nan, dtype), np.full((20, 30), np.nan, dtype)
        before = P._blas["get"]() if P.blas_controllable() else None
        P.matmul_pair((a1, b1, o1), (a2.T.T, b2, o2))
        np.testing.assert_allclose(o1, a1 @ b1, rtol=tol, atol=tol)
        np.testing.assert_allclose(o2, a2 @ b2, rtol=tol, atol=tol)
        assert len(split) == (0 if whole else 2)
        if before is not None:
            assert P._blas["get"]() == before
    threads(2)
    # unequal work, an output overlapping the other product's operand, a non-float operand:
    # each product through matmul, in turn
    for pair in (((a1, b1, np.empty((40, 20), dtype)), (a1[:20], b1, np.empty((20, 20), dtype))),
                 ((a1, b1, o1), (o1[:20], b1[:20], np.empty((20, 20), dtype)))):
        split.clear()
        want = [x @ y for x, y, _ in pair]
        P.matmul_pair(*pair)
        assert len(split) == 2
        for (_, _, out), ref in zip(pair, want):
            np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    ints = (np.arange(6).reshape(2, 3), np.arange(12).reshape(3, 4), np.empty((2, 4), int))
    split.clear()
    P.matmul_pair(ints, (np.ones((2, 3)), np.ones((3, 4)), np.empty((2, 4))))
    assert len(split) == 2 and np.array_equal(ints[2], ints[0] @ ints[1])


def test_matmul_passes_what_it_cannot_split_to_numpy(threads):
    threads(2)
    a, b = np.arange(6).reshape(2, 3), np.arange(12).reshape(3, 4)  # integers: no BLAS
    assert np.array_equal(P.matmul(a, b), a @ b)
    with pytest.raises(ValueError):
        P.matmul(np.ones((2, 3)), np.ones((4, 5)))
    with pytest.raises(ValueError):
        P.matmul(np.ones((2, 3)), np.ones((3, 5)), out=np.empty((2, 4)))


def test_copyto_splits_along_an_axis_every_thread_can_share(threads):
    threads(3)
    rng = np.random.default_rng(1)
    for shape in [(1, 2, 9, 4), (7, 1, 3), (2, 2), (5,)]:
        src = rng.standard_normal(shape)
        dst = np.zeros(shape[::-1]).T  # a transposed destination
        P.copyto(dst, src)
        assert np.array_equal(dst, src)
    a = np.arange(40.0).reshape(8, 5)
    want = a[::-1].copy()
    P.copyto(a, a[::-1])  # overlapping: NumPy's buffered copy, not blocks in place
    assert np.array_equal(a, want)
    dst = np.zeros((4, 3))
    P.copyto(dst, np.arange(3.0))  # a broadcast source: copied unsplit
    assert np.array_equal(dst, np.broadcast_to(np.arange(3.0), (4, 3)))


def test_sum_outer_is_numpys_sum_bit_for_bit(threads):
    threads(3)
    rng = np.random.default_rng(6)
    for shape in [(64, 33, 5), (7, 40)]:
        a = (rng.standard_normal(shape) * 1e3).astype(np.float32)
        assert np.array_equal(BN._sum_outer(a), a.sum(axis=0))


def _serial_and_split(threads, fn):
    """fn() with one thread and with three (thresholds at their minimum)."""
    threads(1)
    one = fn()
    threads(3)
    return one, fn()


def _same(a, b):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a, b, equal_nan=True)


def _channels_last(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def test_split_rows_leaves_overlapping_arrays_to_one_call(threads):
    threads(3)
    a = np.arange(12.0).reshape(6, 2)
    want = a + a[::-1]
    E.split_rows(lambda o, x: np.add(o, x, out=o), a, a[::-1])
    assert np.array_equal(a, want)
    b = np.arange(12.0).reshape(6, 2)
    E.split_rows(lambda o, x: np.add(x, 1.0, out=o), b, b)  # out itself as an input: split
    assert np.array_equal(b, np.arange(12.0).reshape(6, 2) + 1)


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.5])
def test_leaky_relu_kernels_give_the_serial_bits(threads, slope, monkeypatch):
    monkeypatch.setattr(E, "_ZEROS_LEN", 64)  # ReLU's rows of zeros: 15 rows and a tail
    rng = np.random.default_rng(2)
    x = _channels_last(rng.standard_normal((5, 17, 3, 4)).astype(np.float32))
    x[0, 0, 0, :2] = [np.nan, -np.inf]
    gy = rng.standard_normal(x.shape).astype(np.float32)
    gy[1, 1, 1, 1] = np.inf

    def run():
        y_in = x.copy(order="K")
        return (E.leaky_relu_forward(x, slope), E.leaky_relu_inplace(y_in, slope),
                E.leaky_relu_backward(gy, x, slope),
                E.leaky_relu_backward(gy.astype(np.float64), x, slope))

    one, split = _serial_and_split(threads, run)
    _same(one, split)
    assert E.leaky_relu_forward(x, slope).strides == x.strides  # x's layout kept


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_kernels_give_the_serial_bits_in_the_input_layout(threads, dtype):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((6, 3, 5, 4)) * 3).astype(dtype)
    x[0, 0, 0, :3] = [np.nan, -np.inf, 40.0]
    gy = rng.standard_normal(x.shape).astype(dtype)
    for a, g in ((x, gy), (_channels_last(x), gy), (x[:, :, ::2], gy[:, :, ::2])):
        def run():
            y_in = a.copy(order="K")
            y = E.tanh_forward(a)
            return y, E.tanh_inplace(y_in), E.tanh_forward(a, out=np.empty_like(a)), \
                E.tanh_backward(g, y), E.tanh_backward(g.astype(np.float32), y)

        one, split = _serial_and_split(threads, run)
        _same(one, split)
        _same(one[0], np.tanh(a))
        _same(one[1], np.tanh(a))
        with np.errstate(invalid="ignore"):
            _same(one[3], g * (1 - np.tanh(a) * np.tanh(a)))
        assert one[0].strides == np.empty_like(a).strides and one[0].dtype == dtype


@pytest.mark.parametrize("last", [False, True])
def test_batch_norm_gives_the_serial_bits(threads, last):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((70, 6, 5, 3)) * 3 + 1).astype(np.float32)  # > 64 rows: slabs
    gy = rng.standard_normal(x.shape).astype(np.float32)
    if last:
        x, gy = _channels_last(x), _channels_last(gy)
    w = rng.standard_normal(6).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)

    def run():
        rm, rv = np.zeros(6, np.float32), np.ones(6, np.float32)
        y, mean, invstd = BN.batch_norm_forward_train(x, w, b, rm, rv, 0.1, 1e-5)
        return (y, mean, invstd, rm, rv) + tuple(BN.batch_norm_backward_train(gy, x, w, mean, invstd))

    one, split = _serial_and_split(threads, run)
    _same(one, split)


def test_adam_gives_the_serial_bits(threads):
    rng = np.random.default_rng(4)
    p0 = rng.standard_normal((9, 4, 3)).astype(np.float32)
    g = rng.standard_normal(p0.shape).astype(np.float32)

    def run():
        out = []
        for wd in (0.0, 0.01):
            p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
            for step in (1, 2):
                O.adam_step(p, g, m, v, step, 1e-3, 0.5, 0.999, 1e-8, wd)
            out += [p, m, v]
        return tuple(out)

    one, split = _serial_and_split(threads, run)
    _same(one, split)


@pytest.mark.parametrize("cin,cout", [(1, 3), (3, 20), (20, 3), (20, 24)])
def test_conv_kernels_split_match_serial(threads, cin, cout):
    # the copies are exact; the GEMMs split into row or column blocks agree to rounding
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, cin, 9, 8)).astype(np.float32)
    if cin >= 16:
        x = _channels_last(x)
    w = rng.standard_normal((cout, cin, 4, 4)).astype(np.float32)
    wt = rng.standard_normal((cin, cout, 4, 4)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    gy = rng.standard_normal((6, cout, 4, 4)).astype(np.float32)

    def run():
        return (C.conv2d_forward(x, w, b, 2, 1), C.conv2d_grad_weight(x, gy, 4, 2, 1),
                C.conv_transpose2d_forward(x, wt, b, 2, 1),
                C.conv_transpose2d_forward(x, wt, None, 3, 2),  # col2im (k not a multiple of s)
                C.im2col(x, 3, 2, 1), C.col2im(C.im2col(x, 3, 2, 1), x.shape, 3, 2, 1))

    one, split = _serial_and_split(threads, run)
    for a, b_ in zip(one, split):
        assert a.shape == b_.shape and a.dtype == b_.dtype
        # (float32 sums of up to 320 products, blocked differently: the rounding differs by
        # up to about 1e-6 of the largest result, more with some CPUs' kernels; a misplaced
        # block would be off by whole values)
        np.testing.assert_allclose(b_, a, rtol=1e-5, atol=1e-5 * float(np.abs(a).max()))
    _same(one[4:], split[4:])  # im2col / col2im: copies and adds, exact


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork")
def test_a_forked_child_starts_its_own_workers(threads):
    threads(2)
    P.run(lambda lo, hi: None, 4, 10**6)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # child: the parent's workers are not here; new ones must start
        code = 1
        try:
            names = []
            P.run(lambda lo, hi: names.append(threading.current_thread().name), 4, 10**6)
            code = 0 if "minigan-cpu-1" in names else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child's parallel call never finished (waiting on the "
                        "parent's workers?)")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0


def test_workers_run_in_the_callers_numpy_error_state(threads):
    """np.errstate lives in a context variable: each worker's block runs in a copy of the
    caller's context, so an overflow in any block raises, warns or stays quiet as the caller
    asked (a training run quiets them; its own check reports the non-finite loss)."""
    threads(3)
    a = np.full((6, 50), 1e30, np.float32)
    out = np.empty_like(a)

    def square(lo, hi):
        if lo:  # only the workers' blocks overflow
            np.multiply(a[lo:hi], a[lo:hi], out=out[lo:hi])

    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError, match="overflow"):
            P.run(square, 6, 10 * a.nbytes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="ignore"):
            P.run(square, 6, 10 * a.nbytes)
    assert np.isinf(out[2:]).all()


def test_spin_seconds_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("MINIGAN_SPIN_MS", raising=False)
    assert P.spin_seconds() == P.DEFAULT_SPIN_MS / 1000
    for value, seconds in (("2.5", 0.0025), ("0", 0.0), (" 40 ", 0.04)):
        monkeypatch.setenv("MINIGAN_SPIN_MS", value)
        assert P.spin_seconds() == pytest.approx(seconds)
    for bad in ("-1", "five", "inf", "nan"):
        monkeypatch.setenv("MINIGAN_SPIN_MS", bad)
        with pytest.raises(ValueError, match=f"MINIGAN_SPIN_MS.*{bad!r}"):
            P.spin_seconds()


def test_the_pool_spins_only_where_it_may_and_can(monkeypatch):
    monkeypatch.setattr(P, "_cpus", lambda: 4)
    if P._spin_functions() is not None:
        assert P._spins(4, 0.005) and P._spins(2, 0.005)
    assert not P._spins(5, 0.005)  # more threads than CPUs: a spinner would take a CPU's time
    assert not P._spins(2, 0.0)  # turned off
    monkeypatch.setattr(P, "_libc_spin", {"checked": True, "lock": None, "unlock": None,
                                          "init": None})
    assert P._spin_functions() is None and not P._spins(2, 0.005)  # no libc spin locks here
    before = P.get_num_threads()
    try:
        P.set_num_threads(2)
        assert type(P._pool()) is P._Pool  # the sleeping workers instead, and they work
        out = []
        P._pool().run([lambda: out.append(threading.current_thread().name),
                       lambda: out.append(threading.current_thread().name)])
        assert sorted(out) == sorted([threading.current_thread().name, "minigan-cpu-1"])
    finally:
        monkeypatch.undo()
        P.set_num_threads(before)


def _cpu_seconds(thread) -> float:
    """CPU time a thread of this process has run, from /proc (Linux)."""
    with open(f"/proc/self/task/{thread.native_id}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


@pytest.mark.skipif(P._spin_functions() is None or not os.path.exists("/proc/self/task"),
                    reason="needs pthread spin locks and /proc")
def test_idle_workers_spin_a_while_then_sleep_then_wake_for_the_next_call():
    pool = P._SpinPool(2, 0.2)
    try:
        worker = pool.workers[0].thread
        names = []
        pool.run([lambda: None, lambda: names.append(threading.current_thread().name)])
        assert names == ["minigan-cpu-1"]
        # spinning: the worker runs on its CPU while nothing is asked of it
        a = _cpu_seconds(worker)
        time.sleep(0.1)
        assert _cpu_seconds(worker) - a > 0.03, "the worker did not spin after the call"
        # after 0.2-0.4 s without a call the watchdog puts it to sleep: it no longer runs
        deadline = time.monotonic() + 10
        while not pool.workers[0].asleep:
            assert time.monotonic() < deadline, "the watchdog never put the idle worker to sleep"
            time.sleep(0.05)
        a = _cpu_seconds(worker)
        time.sleep(0.3)
        assert _cpu_seconds(worker) - a < 0.02, "an idle worker kept running"
        # the next call wakes it; its block runs there, and it spins again
        pool.run([lambda: None, lambda: names.append(threading.current_thread().name)])
        assert names == ["minigan-cpu-1"] * 2 and not pool.workers[0].asleep
        a = _cpu_seconds(worker)
        time.sleep(0.1)
        assert _cpu_seconds(worker) - a > 0.03, "the woken worker did not spin again"
    finally:
        pool.close()
    for t in [w.thread for w in pool.workers] + [pool.watchdog]:
        t.join(10)
        assert not t.is_alive(), f"{t.name} still runs after close()"


@pytest.mark.skipif(P._spin_functions() is None, reason="needs pthread spin locks")
@pytest.mark.parametrize("asleep", [False, True])
def test_closing_a_spinning_pool_ends_its_threads_awake_or_asleep(asleep):
    pool = P._SpinPool(3, 0.01)
    pool.run([lambda: None] * 3)
    if asleep:
        deadline = time.monotonic() + 10
        while not all(w.asleep for w in pool.workers):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    pool.close()
    for t in [w.thread for w in pool.workers] + [pool.watchdog]:
        t.join(10)
        assert not t.is_alive(), f"{t.name} still runs after close()"
    out = []
    pool.run([lambda: out.append(1), lambda: out.append(2)])  # closed: the caller runs both
    assert out == [1, 2]


@pytest.mark.parametrize("kind", ["spin", "queue"])
def test_a_call_with_more_blocks_than_workers_runs_them_all(kind):
    if kind == "spin" and P._spin_functions() is None:
        pytest.skip("no pthread spin locks here")
    pool = P._SpinPool(2, 0.01) if kind == "spin" else P._Pool(2)
    try:
        out = []
        pool.run([lambda i=i: out.append(i) for i in range(5)])
        assert sorted(out) == [0, 1, 2, 3, 4]
    finally:
        pool.close()


@pytest.mark.skipif(P._spin_functions() is None, reason="needs pthread spin locks")
@pytest.mark.parametrize("when", ["before", "after"])
def test_an_interrupt_between_waits_still_waits_for_every_block(monkeypatch, when):
    """A KeyboardInterrupt that lands on the caller while it waits for its workers (before a
    wait's C call, or after it returned) still lets every worker's block finish before the call
    returns, and leaves no "done" behind that would let a later call return early."""
    pool = P._SpinPool(3, 0.05)
    try:
        real = P._spin_functions()
        interrupted = []

        def lock(word):
            if not interrupted and word == pool.workers[0].done:
                interrupted.append(word)
                if when == "before":
                    raise KeyboardInterrupt
                real[1](word)
                raise KeyboardInterrupt
            return real[1](word)

        finished = []

        def slow(tag):
            def block():
                time.sleep(0.2)
                finished.append(tag)
            return block

        monkeypatch.setitem(P._libc_spin, "lock", lock)
        with pytest.raises(KeyboardInterrupt):
            pool.run([lambda: None, lambda: finished.append("fast"), slow("slow")])
        assert interrupted and sorted(finished) == ["fast", "slow"]
        monkeypatch.setitem(P._libc_spin, "lock", real[1])
        finished.clear()
        pool.run([lambda: None, slow("a"), slow("b")])
        assert sorted(finished) == ["a", "b"], "a later call returned before its blocks ended"
    finally:
        pool.close()


@pytest.mark.skipif(P._spin_functions() is None, reason="needs pthread spin locks")
def test_a_call_that_meets_the_watchdog_putting_workers_to_sleep_waits_and_splits():
    """The watchdog holds the pool for a moment to put idle workers to sleep; a call arriving
    then waits for it and still splits (any other holder means a call in flight: serial)."""
    pool = P._SpinPool(2, 60.0)  # (its own watchdog stays out of the way)
    try:
        for parking, expected in ((True, "minigan-cpu-1"), (False, "MainThread")):
            assert pool.busy.acquire(blocking=False)
            pool.parking = parking

            def release():
                time.sleep(0.05)
                pool.parking = False
                pool.busy.release()

            t = threading.Thread(target=release)
            t.start()
            names = []
            pool.run([lambda: None, lambda: names.append(threading.current_thread().name)])
            t.join()
            assert names == [expected]
    finally:
        pool.close()
