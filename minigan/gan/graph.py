"""A trainer's whole step captured once as a CUDA graph and replayed (``--cuda-graph``).

A small GAN step is bound by the host: a few hundred kernel launches of about 10 µs of Python
and CuPy each, for a GPU that finishes the work of most of them in less. A CUDA graph records
the launches of one step once; each later step is one ``graph.launch``, and the host's cost
per step no longer grows with the kernel count.

A graph replays its kernels with the arguments they were captured with, and replays nothing
that is not a kernel. ``GraphedStep`` arranges for both:

* **Numbers that change from step to step** are read on the device. Adam runs with
  ``capturable=True`` (its step count and learning rate live in a device array its kernels
  advance), and the trainer's random generator with ``capturable=True`` (its Philox offset
  likewise). Learning-rate changes made on the host between steps (``--lr-decay``) are written
  to the device before the next replay (``Adam.sync_device_state``).
* **Host bookkeeping** (Adam's step counts, the generator's offset) is advanced after each
  replay by what the captured step advanced it, so checkpoints and a resume see the same state
  as after eager steps.
* **Inputs** are copied into fixed buffers (the batch, and the labels of a conditional GAN)
  before each replay, and every array the step allocates during the capture comes from a memory
  pool of the graph's own, which no other code allocates from while the graph lives.
* **GEMMs** go through cuBLAS called directly (``kernels.gemm.capturable``), since CuPy's
  cuBLAS bindings refuse to run during a capture.

The first ``warmup`` calls run eagerly on the graph's stream (they build the Adam state, the
kernel caches and the device counters, which a capture must find in place); the next call
captures the step and replays it, so every call is exactly one training step, and the numbers
are those of eager steps with the same settings (to rounding: the bias corrections are
computed on the device). The stats a replay returns are the graph's output buffers: the next
call overwrites them, so copy what must be kept (``minigan train`` reads them at once).

A graph reads and writes the arrays it was captured with. If one of the step's long-lived arrays
is replaced between calls (a model's or an optimizer's ``load_state_dict``, a new generator
counter), the next call notices it, drops the graph, and captures the step again after
``warmup`` eager steps, instead of training arrays that nothing reads any more.
"""
from __future__ import annotations

import contextlib
import functools

from .. import backend
from ..autograd import Tensor, mark_modified
from ..kernels import gemm
from ..optim import Adam

DEFAULT_WARMUP = 2


def make_capturable(trainer) -> None:
    """Keep the numbers that change from step to step on the device: ``capturable`` Adam
    groups (step count, learning rate) and generator (Philox offset)."""
    for name in ("opt_G", "opt_D"):
        opt = getattr(trainer, name)
        if not isinstance(opt, Adam):
            raise TypeError(f"a CUDA-graph step needs Adam optimizers (capturable), but "
                            f"trainer.{name} is a {type(opt).__name__}")
        for group in opt.param_groups:
            group["capturable"] = True
    trainer.rng.capturable = True


def capturable_step(trainer, real: Tensor, labels=None) -> dict:
    """One eager step of a ``make_capturable`` trainer, its GEMMs through the path a capture
    takes: what a replayed step computes, run without a graph."""
    with gemm.capturable():
        return trainer.step(real, labels)


class GraphedStep:
    """``step(real, labels)`` of ``trainer``, captured once and then replayed (module doc)."""

    def __init__(self, trainer, warmup: int = DEFAULT_WARMUP, fallback=None):
        if trainer.device != "cuda":
            raise backend.DeviceError(f"a CUDA-graph step needs the GPU, but the trainer's "
                                      f"models are on {trainer.device}; drop --cuda-graph or "
                                      "use --device cuda")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
            raise ValueError(f"warmup must be an integer >= 1 (the eager steps before the "
                             f"capture), got {warmup!r}")
        make_capturable(trainer)
        self.trainer = trainer
        self.warmup = warmup
        # fallback(exc): called when a capture fails; the steps then stay eager (the same
        # training, without the graph). None: the capture's error is raised.
        self.fallback = fallback
        self.failed = None
        self.calls = 0  # steps taken through this object, eager ones included
        self.graph = None
        self.stream = backend.new_stream()
        self.pool = None
        self._real = self._labels = None
        self._stats = None
        self._deltas = None
        self._bound = []  # (get, key, array): every long-lived array the graph uses
        self._eager_left = warmup

    def _optimizers(self):
        return (self.trainer.opt_G, self.trainer.opt_D)

    def _counted(self) -> list:
        """The objects whose host counters a step advances."""
        return [*self._optimizers(), self.trainer.rng]

    def _params(self) -> list:
        """The parameters the step updates (those of the optimizers' groups)."""
        return [p for opt in self._optimizers() for g in opt.param_groups for p in g["params"]]

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def __call__(self, real: Tensor, labels=None) -> dict:
        x = real.data if isinstance(real, Tensor) else real
        if not backend.is_cupy_array(x):
            raise backend.DeviceError(f"a CUDA-graph step takes a batch on the GPU, got one on "
                                      f"{backend.device_of(x)}")
        if (labels is None) != (self.trainer.num_classes == 0):
            raise ValueError("labels are needed for a conditional GAN's step, and only there")
        caller = backend.current_stream()
        backend.stream_wait(self.stream, caller)  # the batch, and eager work queued before
        with self.stream:
            self._load_inputs(x, labels)
            if self.graph is not None and not self._still_bound():
                self._drop()  # an array was replaced since the capture: capture again
            if self.graph is None and self._eager_left <= 0 and self.failed is None:
                try:
                    self._capture()
                except Exception as exc:
                    if self.fallback is None:
                        raise
                    self.failed = exc
                    self.fallback(exc)
            if self.graph is None:
                stats = capturable_step(self.trainer, Tensor(self._real), self._labels)
                self._eager_left -= 1
            else:
                stats = self._replay()
        backend.stream_wait(caller, self.stream)  # later eager work sees this step's results
        self.calls += 1
        return stats

    def _load_inputs(self, x, labels) -> None:
        if self._real is None:
            xp = backend.cupy
            self._real = xp.empty(x.shape, dtype=x.dtype)
            if labels is not None:
                self._labels = xp.empty(labels.shape, dtype=labels.dtype)
        for what, buf, new in (("batch", self._real, x), ("labels", self._labels, labels)):
            if new is None:
                continue
            if not backend.is_cupy_array(new):
                raise backend.DeviceError(f"a CUDA-graph step takes its {what} on the GPU, got "
                                          f"it on {backend.device_of(new)}")
            if new.shape != buf.shape or new.dtype != buf.dtype:
                raise ValueError(f"a CUDA-graph step replays fixed shapes: its {what} was "
                                 f"{buf.dtype}{tuple(buf.shape)} when first called, now "
                                 f"{new.dtype}{tuple(new.shape)} (use full batches: drop_last)")
            buf[...] = new

    def _capture(self) -> None:
        counted = self._counted()
        before = [o.graph_counters() for o in counted]
        self.pool = backend.memory_pool()
        with backend.allocating_from(self.pool), gemm.capturable():
            self.stream.begin_capture()
            try:
                stats = self.trainer.step(Tensor(self._real), self._labels)
            except BaseException:
                with contextlib.suppress(Exception):  # ends the capture; the step's own error
                    self.stream.end_capture()         # is the one to report
                self._restore(counted, before)
                self.pool = None
                raise
            graph = self.stream.end_capture()
        after = [o.graph_counters() for o in counted]
        self._restore(counted, before)  # a capture runs nothing: the replay will
        deltas = []
        for o, b, a in zip(counted, before, after):
            if set(a) != set(b):
                self.pool = None
                raise RuntimeError(f"{type(o).__name__}: the captured step made new state "
                                   f"({sorted(map(str, set(a) ^ set(b)))}); run it eagerly "
                                   "first (warmup >= 1)")
            deltas.append({k: a[k] - b[k] for k in a})
        self.graph, self._stats, self._deltas = graph, stats, deltas
        self._updated = self._params()  # walked once: a replay's host work is a few calls
        self._bound = [(_getter(owner), key, arr) for owner, key, arr in self._bindings()]

    def _bindings(self) -> list:
        """(owner, key, array) for each long-lived array the captured step uses: parameters,
        buffers, the optimizers' states and device counters, the generator's counter."""
        t = self.trainer
        out = [(p, "data", p.data) for p in self._updated]
        for net in (t.G, t.D):
            for m in net.modules():
                out += [(m._buffers, k, b) for k, b in m._buffers.items() if b is not None]
        for opt in self._optimizers():
            out.append((opt, "state", opt.state))
            out += [(st, k, v) for st in opt.state.values() for k, v in st.items()
                    if hasattr(v, "shape")]
            out += [(opt._hyper, gi, rec) for gi, rec in opt._hyper.items()]
            out += [(rec, 0, rec[0]) for rec in opt._hyper.values()]
        out.append((t.rng, "_device_offset", t.rng._device_offset))
        return out

    def _still_bound(self) -> bool:
        return all(get(key) is arr for get, key, arr in self._bound)

    def _drop(self) -> None:
        """Forget the graph (and its pool); the step is captured again after warm-up steps."""
        self.graph = self.pool = self._stats = self._deltas = None
        self._bound = []
        self._eager_left = self.warmup

    @staticmethod
    def _restore(counted, values) -> None:
        for o, v in zip(counted, values):
            o.set_graph_counters(v)

    def _replay(self) -> dict:
        for opt in self._optimizers():
            opt.sync_device_state()  # learning rates changed on the host since the last step
        self.graph.launch(stream=self.stream)
        for o, d in zip(self._counted(), self._deltas):
            now = o.graph_counters()
            o.set_graph_counters({k: now[k] + d[k] for k in now})
        mark_modified(*self._updated)
        return dict(self._stats)


def _getter(owner):
    """``get(key)``: a dict's entry (None when gone), a list's item or an attribute."""
    if isinstance(owner, dict):
        return owner.get
    if isinstance(owner, list):
        return owner.__getitem__
    return functools.partial(getattr, owner)
