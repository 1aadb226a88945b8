"""CPU intra-op parallelism: one NumPy kernel's work split across a few threads.

NumPy runs a copy, a ufunc or a reduction on one core. On the benchmark VM (2 cores) the
non-GEMM part of a DCGAN training step (im2col copies, batch norm, activations, Adam) was
about 40% of the step, all of it on one core while the other waited. NumPy releases the GIL
inside those loops, so the same call on two halves of its arrays, one half in a worker thread,
runs on both cores: measured 1.5-1.8x faster for dcgan64's im2col copy and leaky_relu backward.

**Why the GEMMs are split too.** OpenBLAS's worker threads spin (busy-wait) for about 0.1 s
after every multi-threaded GEMM before they sleep. In a training step GEMMs come every few
milliseconds, so one of those spinning threads holds the second core for the whole step, and
a worker thread of ours running next to it gained nothing (measured: GEMM + two parallel
copies took as long as GEMM + two serial ones). So where minigan can set the BLAS library's
thread count (OpenBLAS, found among the loaded libraries), its GEMMs run as one
single-threaded BLAS call per thread of this pool, each on a block of the product's rows (or
columns), with OpenBLAS set to one thread for the call and set back after. OpenBLAS's own
threads then get no work from minigan and sleep. The split products measured within noise of
one two-threaded GEMM on dcgan64's shapes, and faster on the tallest ones. With another BLAS
(MKL, Accelerate), GEMMs are left to that library's threads, unsplit.

**Determinism.** The work is cut into the same blocks for the same shapes and thread count,
so results repeat run to run. Elementwise passes, copies and batch norm's sums (split along
the axes they do not reduce) give the same bits for any thread count. A GEMM's blocks may
round differently from one unsplit product, in the last bits.

**Waiting between blocks.** Where libc has spin locks (Linux) and each thread has a CPU of its
own, the workers spin-wait for their next block without the GIL, and the caller spin-waits for
theirs, instead of sleeping: a hand-off then takes microseconds instead of a thread wake-up
(tens of microseconds each way, about 125 times per dcgan step). An idle worker spins for
``MINIGAN_SPIN_MS`` milliseconds (default 5; 0 turns spinning off) to twice that after the
pool's last call, then sleeps until the next one (see "spin-waiting workers" below).

**Thread count.** ``get_num_threads()`` / ``set_num_threads(n)`` (also ``minigan.`` names, as
in PyTorch). The default is the ``MINIGAN_NUM_THREADS`` environment variable, else the number
of CPUs this process may run on, at most 8, and at most ``OMP_NUM_THREADS`` or
``OPENBLAS_NUM_THREADS`` where those are set (so a job limited to one thread stays so). With
one thread nothing is split and no worker exists. One parallel call runs at a time: a call
made while another thread holds the pool runs its blocks serially (it never waits, and calls
never nest).
"""
from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import os
import queue
import threading
import time

import numpy as np

__all__ = ["get_num_threads", "set_num_threads"]

_MAX_DEFAULT_THREADS = 8
# Below these sizes a split costs more (about 20-40 us to hand a block to a worker and
# collect it) than it saves.
MIN_BYTES = 1 << 19  # bytes moved by a copy or an elementwise kernel
MIN_GEMM_FLOPS = 1 << 23  # 2*M*N*K of a GEMM


def _default_threads() -> int:
    env = os.environ.get("MINIGAN_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"MINIGAN_NUM_THREADS must be a positive integer, got {env!r}")
        if n < 1:
            raise ValueError(f"MINIGAN_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    n = min(_cpus(), _MAX_DEFAULT_THREADS)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # as the BLAS and PyTorch take them
        head = os.environ.get(name, "").split(",")[0].strip()
        if head.isdigit() and int(head) > 0:
            n = min(n, int(head))
    return max(1, n)


class _Pool:
    """``threads - 1`` daemon workers, asleep in a queue between blocks; the calling thread
    runs the first block itself."""

    spinning = False

    def __init__(self, threads: int):
        self.threads = threads
        self.busy = threading.Lock()
        self.closed = False
        self.inboxes = []
        for i in range(threads - 1):
            inbox: queue.SimpleQueue = queue.SimpleQueue()
            t = threading.Thread(target=self._work, args=(inbox,), daemon=True,
                                 name=f"minigan-cpu-{i + 1}")
            t.start()
            self.inboxes.append(inbox)

    @staticmethod
    def _work(inbox):
        while True:
            item = inbox.get()
            if item is None:
                return
            task, done = item
            try:
                task()
            except BaseException as e:  # handed to the caller, which re-raises it
                done.put(e)
            else:
                done.put(None)

    def close(self):
        # (under the busy lock: a call that still holds this pool either finishes first or
        # then finds it closed and runs serially, never waiting on a worker that has quit)
        with self.busy:
            self.closed = True
            for inbox in self.inboxes:
                inbox.put(None)

    def run(self, tasks) -> None:
        """Run every task (a callable of no arguments); return when all are done. The first
        error raised by any of them is re-raised after the others finish. With one task, on a
        closed pool, or while another call holds the pool (a nested call), the caller runs
        them in turn."""
        if len(tasks) == 1 or not self._take():
            for t in tasks:
                t()
            return
        try:
            if self.closed:
                for t in tasks:
                    t()
                return
            self._split(tasks)
        finally:
            self.busy.release()

    def _take(self) -> bool:
        """Hold the pool for a call, if no other call holds it."""
        return self.busy.acquire(blocking=False)

    def _split(self, tasks) -> None:
        """``run``'s tasks on the caller and the workers (the pool held)."""
        # a queue of this call's own: should the caller be interrupted while waiting, a
        # late answer from a worker cannot be taken for a later call's
        done: queue.SimpleQueue = queue.SimpleQueue()
        for inbox, t in zip(self.inboxes, tasks[1:]):
            # in a copy of the caller's context: NumPy keeps np.errstate in a context
            # variable, so a worker's block warns (or raises, or stays quiet) as the
            # caller asked
            inbox.put((functools.partial(contextvars.copy_context().run, t), done))
        error = None
        try:
            for t in (tasks[0], *tasks[len(self.inboxes) + 1:]):  # (more blocks than
                t()                                                # workers: the caller's)
        except BaseException as e:
            error = e
        for _ in tasks[1:len(self.inboxes) + 1]:
            e = done.get()
            if e is not None and error is None:
                error = e
        if error is not None:
            raise error


# ---- spin-waiting workers --------------------------------------------------------------------
#
# A block handed to a worker that sleeps in a queue's futex starts late: the measured median
# in a dcgan step was 50 us from the hand-off to the worker's first instruction (a wake-up of
# the sleeping thread, on a VM of its virtual CPU), and the caller, asleep in its own wait,
# resumes 33 us after the worker's last. With about 125 calls per dcgan step that was 14 ms of
# waiting per step. Workers that spin between blocks, as OpenMP's and OpenBLAS's do, start
# within microseconds. They must spin without the GIL (a Python loop would hold it, and take
# it from the caller at every pass), so they wait inside one C call: libc's
# pthread_spin_lock, through ctypes, which releases the GIL around foreign calls. glibc's and
# musl's spin locks are a word with no owner (unlock is a plain release store), so one thread
# may release what another took: here each worker's "go" word is released by the caller to
# hand it a block, and its "done" word by the worker when the block is finished. The caller
# waits for "done" the same way, which is bounded by the worker's block.
#
# A worker left spinning would hold a core for as long as the process lives, so a watchdog
# thread checks every ``spin_s`` seconds whether the pool made a call since it last looked;
# after a period without one it hands each worker a "sleep" word instead of a block, and the
# worker then waits in a queue (no CPU) until the next call wakes it. A worker thus spins for
# ``spin_s`` to ``2 * spin_s`` after the pool's last call (MINIGAN_SPIN_MS, default 5 ms).
# Spinning is used only where every thread has a CPU of its own (a spinning thread sharing a
# CPU with the thread it waits for would take that thread's time), with 0 ms to turn it off.

DEFAULT_SPIN_MS = 5.0
_SLEEP, _QUIT = object(), object()
_libc_spin: dict = {"checked": False, "lock": None, "unlock": None, "init": None,
                    "trylock": None}


_spin_lookup = threading.Lock()


def _spin_functions():
    """libc's (pthread_spin_init, pthread_spin_lock, pthread_spin_unlock,
    pthread_spin_trylock) through ctypes, or None where they are missing (macOS, Windows)."""
    if not _libc_spin["checked"]:
        with _spin_lookup:
            if not _libc_spin["checked"]:
                try:
                    libc = ctypes.CDLL(None)  # the process's own symbols: libc's among them
                    fns = [getattr(libc, name) for name in
                           ("pthread_spin_init", "pthread_spin_lock", "pthread_spin_unlock",
                            "pthread_spin_trylock")]
                except (OSError, AttributeError, TypeError):
                    fns = None
                if fns is not None:
                    for f in fns:
                        f.restype, f.argtypes = ctypes.c_int, [ctypes.c_void_p]
                    fns[0].argtypes = [ctypes.c_void_p, ctypes.c_int]
                    _libc_spin.update(init=fns[0], lock=fns[1], unlock=fns[2], trylock=fns[3])
                _libc_spin["checked"] = True
    if _libc_spin["lock"] is None:
        return None
    return _libc_spin["init"], _libc_spin["lock"], _libc_spin["unlock"], _libc_spin["trylock"]


def spin_seconds() -> float:
    """How long (s) an idle worker spin-waits for the next block before it sleeps: the
    ``MINIGAN_SPIN_MS`` environment variable (milliseconds, 0 for never) or 5 ms."""
    env = os.environ.get("MINIGAN_SPIN_MS", "").strip()
    if not env:
        return DEFAULT_SPIN_MS / 1000.0
    try:
        ms = float(env)
    except ValueError:
        ms = -1.0
    if not ms >= 0 or ms == float("inf"):
        raise ValueError(f"MINIGAN_SPIN_MS must be a number of milliseconds >= 0, got {env!r}")
    return ms / 1000.0


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _spins(threads: int, spin_s: float) -> bool:
    """Whether a pool of ``threads`` spins: allowed, possible here, and a CPU per thread."""
    return spin_s > 0 and threads <= _cpus() and _spin_functions() is not None


class _SpinWorker:
    """One worker thread: its block slot, its error, and its two spin words (held in ctypes
    ints that live as long as the worker)."""

    def __init__(self, name: str):
        init, lock, _, _ = _spin_functions()
        self.words = (ctypes.c_int(0), ctypes.c_int(0))
        self.go, self.done = (ctypes.addressof(w) for w in self.words)
        for word in (self.go, self.done):
            if init(word, 0) != 0:  # (PTHREAD_PROCESS_PRIVATE)
                raise OSError("pthread_spin_init failed")
            lock(word)  # taken: "no block yet", "not finished"
        self.slot = None
        self.call = self.finished = 0  # the pool call of its latest block, and of its last done
        self.error = None
        self.asleep = False
        self.wake: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._work, daemon=True, name=name)
        self.thread.start()

    def _work(self):
        _, lock, unlock, _ = _spin_functions()
        go, done = self.go, self.done
        while True:
            lock(go)  # spins in C, without the GIL, until the caller releases "go"
            item, self.slot, call = self.slot, None, self.call
            if item is _SLEEP:
                unlock(done)  # (the watchdog waits for this)
                self.wake.get()  # asleep until a call (or close) wakes it
                continue
            if item is _QUIT:
                return
            try:
                item()
            except BaseException as e:  # handed to the caller, which re-raises it
                self.error = e
            unlock(done)
            self.finished = call  # (after the unlock: see _SpinPool._split's interrupted wait)


class _SpinPool:
    """``threads - 1`` spin-waiting workers (see above) and their watchdog; ``run`` as
    ``_Pool.run``."""

    spinning = True

    def __init__(self, threads: int, spin_s: float):
        self.threads = threads
        self.spin_s = spin_s
        self.busy = threading.Lock()
        self.closed = False
        self.calls = 0  # calls that used the workers (the watchdog's sign of activity)
        self.parking = False  # the watchdog holds busy to put the workers to sleep
        self.awake = threading.Event()  # set while a worker spins
        self.workers = [_SpinWorker(f"minigan-cpu-{i + 1}") for i in range(threads - 1)]
        self.awake.set()
        self.watchdog = threading.Thread(target=self._watch, daemon=True,
                                         name="minigan-cpu-watchdog")
        self.watchdog.start()

    def _watch(self):
        _, lock, unlock, _ = _spin_functions()
        seen = -1
        while not self.closed:
            self.awake.wait()
            time.sleep(self.spin_s)
            if self.calls != seen:  # a call since the last look: keep spinning
                seen = self.calls
                continue
            if not self.busy.acquire(blocking=False):  # a call in flight
                continue
            self.parking = True
            try:
                if self.closed:
                    return
                for w in self.workers:
                    if not w.asleep:
                        w.slot = _SLEEP
                        unlock(w.go)
                        lock(w.done)  # it took the word: it now sleeps in its queue
                        w.asleep = True
                self.awake.clear()  # (under busy: a call's set() comes after this)
            finally:
                self.parking = False
                self.busy.release()

    def close(self):
        with self.busy:
            self.closed = True
            unlock = _spin_functions()[2]
            for w in self.workers:
                w.slot = _QUIT
                unlock(w.go)
                if w.asleep:
                    w.wake.put(None)
            self.awake.set()  # (the watchdog sees closed and returns)

    run = _Pool.run

    def _take(self) -> bool:
        # the watchdog holds the pool only while it puts the workers to sleep (microseconds):
        # a call then waits for it, instead of running its blocks alone as it would for a call
        # in flight
        if self.busy.acquire(blocking=False):
            return True
        return self.parking and self.busy.acquire()

    def _split(self, tasks) -> None:
        """``_Pool._split``, handing blocks over and waiting for them by the spin words."""
        _, lock, unlock, trylock = _spin_functions()
        self.calls += 1
        used = self.workers[:len(tasks) - 1]
        for w, t in zip(used, tasks[1:]):
            w.error = None
            # (a copy of the caller's context: see _Pool._split)
            w.slot = functools.partial(contextvars.copy_context().run, t)
            w.call = self.calls
            unlock(w.go)
            if w.asleep:
                w.asleep = False
                w.wake.put(None)
                self.awake.set()
        error = None
        try:
            for t in (tasks[0], *tasks[len(used) + 1:]):  # (more blocks than workers: the
                t()                                      # caller runs the rest)
        except BaseException as e:
            error = e
        pending = list(used)
        try:
            while pending:
                lock(pending[0].done)  # spins in C, without the GIL, until it is done
                w = pending.pop(0)
                if w.error is not None and error is None:
                    error = w.error
                w.error = None
        finally:
            # an interrupt between two waits (or right after one, before its pop): the
            # other workers' blocks still finish before this call returns, and no "done"
            # is left over for the next call (trylock takes it unless that wait had)
            for w in pending:
                while w.finished != self.calls:
                    time.sleep(1e-4)
                trylock(w.done)
                w.error = None
        if error is not None:
            raise error


_state = {"threads": None, "pool": None}
_lock = threading.Lock()


def get_num_threads() -> int:
    """The number of threads minigan's CPU kernels split their work across."""
    n = _state["threads"]
    if n is None:
        n = _state["threads"] = _default_threads()
    return n


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (n >= 1) for minigan's CPU kernels, GEMMs included (see the module)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads: expected a positive integer, got {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    with _lock:
        old = _state["pool"]
        _state["threads"], _state["pool"] = int(n), None
    if old is not None:
        old.close()


def _pool():
    pool = _state["pool"]
    if pool is None:
        with _lock:
            pool = _state["pool"]
            if pool is None:
                n, spin_s = get_num_threads(), spin_seconds()
                pool = _state["pool"] = (_SpinPool(n, spin_s) if n > 1 and _spins(n, spin_s)
                                         else _Pool(n))
    return pool


def _after_fork_in_child():
    # the workers do not exist in a forked child: start new ones on first use
    _state["pool"] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def blocks(total: int, parts: int):
    """``range(total)`` cut into ``parts`` (or fewer, never empty) contiguous (lo, hi) blocks of
    near-equal size."""
    if total <= 0:
        return []
    parts = max(1, min(parts, total))
    step, extra = divmod(total, parts)
    out, lo = [], 0
    for i in range(parts):
        hi = lo + step + (i < extra)
        out.append((lo, hi))
        lo = hi
    return out


def parts_for(nbytes: int, total: int) -> int:
    """How many blocks a kernel moving ``nbytes`` over ``total`` splittable rows is cut into."""
    n = get_num_threads()
    if n < 2 or total < 2 or nbytes < MIN_BYTES:
        return 1
    return min(n, total, max(1, nbytes // (MIN_BYTES // 2)))


def run(fn, total: int, nbytes: int) -> None:
    """``fn(lo, hi)`` over blocks of ``range(total)``, in parallel when the work (``nbytes``
    moved) is worth it. ``fn`` must touch only its own block's part of any output."""
    parts = parts_for(nbytes, total)
    if parts == 1:
        if total:
            fn(0, total)
        return
    _pool().run([(lambda lo=lo, hi=hi: fn(lo, hi)) for lo, hi in blocks(total, parts)])


def copyto(dst, src) -> None:
    """``np.copyto(dst, src)``, split along the first axis long enough to give every thread a
    block (else the longest), for arrays of one shape that do not overlap in memory (others
    take NumPy's copyto as it is)."""
    if dst.ndim == 0 or src.shape != dst.shape or np.may_share_memory(dst, src):
        np.copyto(dst, src)  # (NumPy buffers an overlapping source)
        return
    threads = get_num_threads()
    axis = next((i for i, n in enumerate(dst.shape) if n >= threads),
                max(range(dst.ndim), key=dst.shape.__getitem__))
    lead = (slice(None),) * axis

    def block(lo, hi):
        np.copyto(dst[lead + (slice(lo, hi),)], src[lead + (slice(lo, hi),)])

    run(block, dst.shape[axis], 2 * dst.nbytes)


# -- BLAS thread control ---------------------------------------------------------------------

_blas = {"checked": False, "get": None, "set": None}
_BLAS_SYMBOLS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)


def _loaded_openblas():
    """Paths of the OpenBLAS libraries loaded in this process (Linux: from /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/") and "openblas" in
                  os.path.basename(p).lower())


def _find_blas():
    _blas["checked"] = True
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _BLAS_SYMBOLS:
            get_fn, set_fn = getattr(lib, get_name, None), getattr(lib, set_name, None)
            if get_fn is not None and set_fn is not None:
                get_fn.restype, get_fn.argtypes = ctypes.c_int, []
                set_fn.restype, set_fn.argtypes = None, [ctypes.c_int]
                _blas["get"], _blas["set"] = get_fn, set_fn
                return


def blas_controllable() -> bool:
    """Whether minigan can set the BLAS library's thread count (so it splits GEMMs itself)."""
    if not _blas["checked"]:
        with _lock:
            if not _blas["checked"]:
                _find_blas()
    return _blas["set"] is not None


def _is_blasable(a) -> bool:
    # what NumPy hands to BLAS as it is: a 2-D float32/float64 matrix with a unit stride
    if a.ndim != 2 or a.dtype not in (np.float32, np.float64):
        return False
    s0, s1 = a.strides
    item = a.itemsize
    return (s1 == item and s0 % item == 0 and s0 >= a.shape[1] * item) or \
        (s0 == item and s1 % item == 0 and s1 >= a.shape[0] * item)


@contextlib.contextmanager
def single_threaded_blas():
    """Inside the block the BLAS library runs one thread per call (each pool thread then makes
    its own single-threaded GEMMs, and OpenBLAS's workers stay asleep); its count is restored
    after. Only where ``blas_controllable()``."""
    get_fn, set_fn = _blas["get"], _blas["set"]
    before = get_fn()
    if before != 1:
        set_fn(1)
    try:
        yield
    finally:
        if before != 1:
            set_fn(before)


def matmul(a, b, out=None):
    """``np.matmul(a, b, out=out)`` for 2-D float NumPy arrays, computed as one single-threaded
    BLAS GEMM per pool thread on a block of the product's rows (or of its columns when it has
    fewer rows than columns). Anything else is plain ``np.matmul``."""
    m = a.shape[0] if a.ndim == 2 else 0
    n = b.shape[1] if b.ndim == 2 else 0
    k = a.shape[1] if a.ndim == 2 else 0
    threads = get_num_threads()
    if (a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or not _is_blasable(a)
            or not _is_blasable(b) or (out is not None and (
                out.dtype != a.dtype or out.shape != (m, n)
                # (NumPy buffers an out that overlaps an operand; blocks written in place
                # would overwrite what other blocks still read)
                or np.may_share_memory(out, a) or np.may_share_memory(out, b)))
            or not blas_controllable()):
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((m, n), a.dtype)
    parts = 1 if threads < 2 or 2 * m * n * k < MIN_GEMM_FLOPS else threads
    with single_threaded_blas():
        if parts == 1:
            np.matmul(a, b, out=out)
        elif m >= n:
            _pool().run([(lambda lo=lo, hi=hi: np.matmul(a[lo:hi], b, out=out[lo:hi]))
                         for lo, hi in blocks(m, parts)])
        else:
            _pool().run([(lambda lo=lo, hi=hi: np.matmul(a, b[:, lo:hi], out=out[:, lo:hi]))
                         for lo, hi in blocks(n, parts)])
    return out


def matmul_pair(first, second) -> None:
    """Two independent products, each ``(a, b, out)`` with ``out`` given: ``np.matmul(a, b,
    out=out)`` for both. With exactly two threads and two GEMMs of equal work, each runs whole,
    as one single-threaded BLAS call, on a thread of its own: no split, no second hand-off, and
    each thread's GEMM keeps its operands to itself (a transposed conv's backward, whose two
    GEMMs both read one im2col matrix: 2-6% faster than the two split GEMMs one after the
    other on dcgan's 3136 x 2048 x 256 pair). Otherwise ``matmul`` on each in turn."""
    (a1, b1, o1), (a2, b2, o2) = first, second
    whole = (get_num_threads() == 2 and _plain_gemm(a1, b1, o1) and _plain_gemm(a2, b2, o2)
             and a1.shape[0] * a1.shape[1] * b1.shape[1] == a2.shape[0] * a2.shape[1] * b2.shape[1]
             and 2 * a1.shape[0] * a1.shape[1] * b1.shape[1] >= MIN_GEMM_FLOPS
             and not any(np.may_share_memory(o, q) for o, q in ((o1, o2), (o1, a2), (o1, b2),
                                                                (o2, a1), (o2, b1)))
             and blas_controllable())
    if not whole:
        matmul(a1, b1, out=o1)
        matmul(a2, b2, out=o2)
        return
    with single_threaded_blas():
        _pool().run([lambda: np.matmul(a1, b1, out=o1), lambda: np.matmul(a2, b2, out=o2)])


def _plain_gemm(a, b, out) -> bool:
    """What ``matmul`` would hand to BLAS in blocks: 2-D float operands of one dtype with a
    unit stride, and an ``out`` of the product's shape and dtype that overlaps neither."""
    return (a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[0] and a.dtype == b.dtype
            and _is_blasable(a) and _is_blasable(b) and out is not None
            and out.dtype == a.dtype and out.shape == (a.shape[0], b.shape[1])
            and not np.may_share_memory(out, a) and not np.may_share_memory(out, b))
