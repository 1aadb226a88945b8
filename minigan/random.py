"""Seeded random numbers for both devices, with a state that fits in a checkpoint.

Each device has a default counter-based generator (``minigan.kernels.random.Generator``): its
whole state is ``{"seed", "offset"}``, so saving and restoring it resumes a stream exactly, on
the CPU and on the GPU alike.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd import Function, Tensor
from .kernels.random import Generator

__all__ = ["Generator", "manual_seed", "seed", "initial_seed", "default_generator",
           "get_rng_state", "set_rng_state", "randn", "rand", "randperm", "normal", "bernoulli",
           "multinomial"]

_defaults: dict[str, Generator] = {}
_base_seed: list = [None]


def _get_state(self) -> Tensor:
    """The state as torch's ``Generator.get_state`` gives it: a uint8 CPU tensor (here the 16
    bytes of the seed and the offset, little-endian); ``set_state`` restores it."""
    return Tensor(self.state_bytes())


Generator.get_state = _get_state  # (the kernels layer knows no tensors)


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().entropy % (2 ** 63))


def _seed_int(fn: str, seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{fn}: the seed must be an int, got {seed!r}")
    return int(seed)


def manual_seed(seed: int) -> Generator:
    """Seed the default generator of every device (devices get distinct streams); returns the
    CPU's, as ``torch.manual_seed`` does."""
    _base_seed[0] = _seed_int("manual_seed", seed)
    _defaults.clear()
    _device_seeds.clear()
    return default_generator("cpu")


# seeds given for one device alone (minigan.cuda.manual_seed), used when its generator is made
_device_seeds: dict[str, int] = {}


def seed_device(device: str, seed: int | None) -> None:
    """Seed one device's default generator (fresh entropy for None). The generator is made, or
    reseeded, when first used: this needs no GPU."""
    device = "cuda" if str(device).startswith("cuda") else "cpu"
    _device_seeds[device] = _fresh_seed() if seed is None else _seed_int("manual_seed", seed)
    _defaults.pop(device, None)


def seed() -> int:
    """Seed every device's default generator from fresh entropy and return that seed."""
    s = _fresh_seed()
    manual_seed(s)
    return s


def initial_seed() -> int:
    """The seed the CPU's default generator was made with."""
    return default_generator("cpu").seed


def default_generator(device: str = "cpu") -> Generator:
    device = backend.normalize_device(device)
    gen = _defaults.get(device)
    if gen is None:
        seed = _device_seeds.get(device)
        if seed is None:
            seed = _base_seed[0] if _base_seed[0] is not None else _fresh_seed()
            # a distinct stream per device from one user seed
            seed += 1 if device == "cuda" else 0
        gen = _defaults[device] = Generator(seed, device)
    return gen


def get_rng_state() -> dict:
    """The default generators' states, JSON-serialisable."""
    return {dev: gen.state_dict() for dev, gen in _defaults.items()}


def set_rng_state(new_state: dict) -> None:
    """Restore the default generators' states from `get_rng_state`."""
    for dev, st in new_state.items():
        default_generator(dev).load_state_dict(st)


def _checked(fn: str, shape, dtype) -> tuple:
    """The size as a tuple of ints >= 0 and a float dtype, or an error naming what is wrong
    (NumPy would read -1 as 'infer this size', and 2.7 as 2)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{fn}: the size must be ints, got {shape!r}")
        if s < 0:
            raise ValueError(f"{fn}: negative dimension in size {shape!r}")
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"{fn}: samples are floats; dtype {np.dtype(dtype)} is not a floating "
                        "point dtype")
    return tuple(int(s) for s in shape)


def randn(*shape, device="cpu", dtype=np.float32, generator: Generator | None = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples (PyTorch's ``torch.randn``)."""
    shape = _checked("randn", shape, dtype)
    gen = generator or default_generator(device)
    return Tensor(gen.normal(shape, dtype=dtype), requires_grad=requires_grad)


def rand(*shape, device="cpu", dtype=np.float32, generator: Generator | None = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) (PyTorch's ``torch.rand``)."""
    shape = _checked("rand", shape, dtype)
    gen = generator or default_generator(device)
    return Tensor(gen.uniform(shape, dtype=dtype), requires_grad=requires_grad)


# ----------------------------------------------------------------------------- sampling
# torch.randperm, normal, bernoulli, multinomial and the Tensor's in-place random fills. Every
# draw comes from a minigan Generator (the device's default one unless ``generator=`` names
# another, which must live on the same device), so manual_seed makes all of them repeatable.

def _generator_for(fn: str, device, generator):
    device = backend.normalize_device(device)
    gen = generator if generator is not None else default_generator(device)
    if not isinstance(gen, Generator):
        raise TypeError(f"{fn}: generator must be a minigan Generator, got "
                        f"{type(gen).__name__}")
    if gen.device != device:
        raise backend.DeviceError(f"{fn}: generator on {gen.device} but the result on {device}")
    return gen


def randperm(n: int, *, generator: Generator | None = None, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of ``0 .. n-1`` (``torch.randperm``), int64 unless ``dtype``
    says otherwise."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"randperm: n must be an int >= 0, got {n!r}")
    dtype = np.dtype(np.int64 if dtype is None else dtype)
    gen = _generator_for("randperm", device, generator)
    if dtype.kind in "iu" and int(n) - 1 > np.iinfo(dtype).max:
        raise ValueError(f"randperm: n = {n} does not fit in {dtype}")
    perm = gen.permutation(int(n)).astype(dtype, copy=False)
    return Tensor(perm, requires_grad=requires_grad)


class _Sampled(Function):
    """A sample drawn with parameters that are tensors (normal's mean and std, bernoulli's
    probabilities): as in PyTorch the draw is recorded, with a zero gradient for each
    parameter (a sample is not a differentiable function of them)."""

    def __init__(self, draw):
        self.draw = draw

    def forward(self, *arrays):
        return self.draw(*arrays)

    def backward(self, gy):
        return tuple(Tensor(backend.get_array_module(x.data).zeros_like(x.data))
                     for x in self.inputs)


def _is_tensor(x) -> bool:
    return isinstance(x, Tensor)


def normal(mean=0.0, std=1.0, size=None, *, generator: Generator | None = None, dtype=None,
           device=None, requires_grad: bool = False) -> Tensor:
    """Normal samples, as ``torch.normal``: ``normal(mean, std)`` with a tensor for either or
    both (their shapes broadcast; the result has the floating dtype they promote to), or
    ``normal(mean, std, size)`` with numbers. Standard deviations must be >= 0."""
    if _is_tensor(mean) or _is_tensor(std):
        if size is not None:
            raise TypeError("normal: size goes with a number mean and std only; with a tensor "
                            "the result takes its shape")
        if dtype is not None or device is not None or requires_grad:
            raise TypeError("normal: dtype, device and requires_grad go with a number mean "
                            "and std only; with a tensor the result follows it")
        like = mean if _is_tensor(mean) else std
        if like.dtype.kind != "f":
            raise TypeError(f"normal: expected a floating point tensor, got {like.dtype}")
        tensors = [t for t in (mean, std) if _is_tensor(t)]
        if len(tensors) == 2:
            backend.check_same_device(mean.data, std.data, what="normal")
            out_dtype = np.result_type(mean.dtype, std.dtype)
            try:
                shape = np.broadcast_shapes(mean.shape, std.shape)
            except ValueError:
                raise ValueError(f"normal: mean of shape {mean.shape} and std of shape "
                                 f"{std.shape} do not broadcast") from None
        else:
            out_dtype, shape = like.dtype, like.shape
        if not _is_tensor(std) and std < 0:
            raise ValueError(f"normal: std must be >= 0, got {std}")
        if _is_tensor(std):
            bad = backend.get_array_module(std.data).any(std.data < 0)
            if bool(bad):  # (the one host read: the user asked for the values checked)
                raise ValueError("normal: std holds negative values")
        gen = _generator_for("normal", like.device, generator)

        def draw(*arrays):
            it = iter(arrays)
            m = next(it) if _is_tensor(mean) else mean
            s = next(it) if _is_tensor(std) else std
            z = gen.normal(shape, dtype=out_dtype)
            return (z * s + m).astype(out_dtype, copy=False)
        return _Sampled(draw)(*tensors)
    if std < 0:
        raise ValueError(f"normal: std must be >= 0, got {std}")
    if size is None:
        raise TypeError("normal: with a number mean and std, give the size")
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    dtype = np.float32 if dtype is None else dtype
    shape = _checked("normal", size, dtype)
    gen = _generator_for("normal", device, generator)
    return Tensor(gen.normal(shape, dtype=dtype, mean=float(mean), std=float(std)),
                  requires_grad=requires_grad)


def _check_probabilities(fn: str, p_arr) -> None:
    """Probabilities outside [0, 1] (or NaN) raise, on the CPU. On the GPU they are not
    checked: reading the check back would make every draw wait for the GPU (a draw of label
    noise in each training step, say); such a probability gives 0 below 0 and 1 above 1."""
    if not backend.is_cupy_array(p_arr) and bool(np.any(~((p_arr >= 0) & (p_arr <= 1)))):
        raise ValueError(f"{fn}: probabilities must lie in [0, 1]")


def bernoulli(input, p=None, *, generator: Generator | None = None) -> Tensor:
    """0/1 samples with the probabilities in ``input`` (or the number ``p`` for every
    element), of input's floating dtype, as ``torch.bernoulli``."""
    if not _is_tensor(input):
        raise TypeError(f"bernoulli: expected a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"bernoulli: expected a floating point tensor, got {input.dtype}")
    gen = _generator_for("bernoulli", input.device, generator)
    dtype = input.dtype
    if p is not None:
        if not 0 <= p <= 1:
            raise ValueError(f"bernoulli: p must lie in [0, 1], got {p}")
        return Tensor(gen.uniform(input.shape, dtype=np.float64) < p).to(dtype=dtype)
    _check_probabilities("bernoulli", input.data)

    def draw(probs):
        u = gen.uniform(probs.shape, dtype=np.float64)
        return (u < probs).astype(dtype)
    return _Sampled(draw)(input)


def multinomial(input, num_samples: int, replacement: bool = False, *,
                generator: Generator | None = None) -> Tensor:
    """Indices drawn from the categories of each row of ``input`` (weights >= 0, not
    necessarily summing to 1), as ``torch.multinomial``: int64, of shape (num_samples,) for a
    vector or (rows, num_samples). Without replacement each row gives distinct categories of
    nonzero weight (drawn by ordering exponential keys divided by the weights); with it, by
    inverting each row's cumulative distribution."""
    if not _is_tensor(input):
        raise TypeError(f"multinomial: expected a Tensor, got {type(input).__name__}")
    if input.ndim not in (1, 2) or input.dtype.kind != "f":
        raise ValueError(f"multinomial: expected a 1-D or 2-D floating point tensor of "
                         f"weights, got shape {input.shape} and dtype {input.dtype}")
    if isinstance(num_samples, (bool, np.bool_)) or not isinstance(num_samples, (int, np.integer)) \
            or num_samples < 1:
        raise ValueError(f"multinomial: num_samples must be an int >= 1, got {num_samples!r}")
    w = input.data if input.ndim == 2 else input.data[None]
    rows, k = w.shape
    if k == 0:
        raise ValueError("multinomial: no categories to draw from (a row of 0 weights)")
    if not replacement and num_samples > k:
        raise ValueError(f"multinomial: {num_samples} samples without replacement from {k} "
                         "categories")
    xp = backend.get_array_module(w)
    w = w.astype(np.float64)
    # checks of the weights (values the user asked to be sampled from: one host read)
    bad = xp.any(~xp.isfinite(w) | (w < 0))
    nonzero = (w > 0).sum(axis=1)
    too_few = xp.any(nonzero < (num_samples if not replacement else 1))
    bad, too_few = bool(bad), bool(too_few)
    if bad:
        raise ValueError("multinomial: the weights must be finite and >= 0")
    if too_few:
        raise ValueError("multinomial: a row has fewer categories of nonzero weight than "
                         + (f"the {num_samples} samples drawn without replacement"
                            if not replacement else "one"))
    gen = _generator_for("multinomial", input.device, generator)
    u = gen.uniform((rows, num_samples if replacement else k), dtype=np.float64)
    if replacement:
        cdf = xp.cumsum(w, axis=1)
        cdf /= cdf[:, -1:]
        # one search over all rows: row r's values shifted by 2r stay apart from the others
        shift = 2.0 * xp.arange(rows, dtype=np.float64)[:, None]
        flat = (cdf + shift).ravel()
        idx = xp.searchsorted(flat, (u + shift).ravel(), side="right").reshape(rows, -1)
        idx -= xp.arange(rows)[:, None] * k
        out = xp.minimum(idx, k - 1)  # (u just below 1 and rounding at the last edge)
        # a category of weight 0 has cdf equal to its left neighbour: searchsorted("right")
        # never lands on it
    else:
        with np.errstate(divide="ignore"):
            keys = -xp.log1p(-u) / w  # Exp(1) / weight; zero weights give +inf
        out = xp.argsort(keys, axis=1)[:, :num_samples]
    out = out.astype(np.int64, copy=False)
    return Tensor(out if input.ndim == 2 else out[0])


def _target(fn: str, t, floating: bool = True):
    if not _is_tensor(t):
        raise TypeError(f"{fn}: expected a Tensor, got {type(t).__name__}")
    if floating and t.dtype.kind != "f":
        raise TypeError(f"{fn}: fills floating point tensors, got {t.dtype}")
    return _generator_for(fn, t.device, None)


def _written(t, values):
    from .autograd import mark_modified
    t.data[...] = values.astype(t.dtype, copy=False)
    mark_modified(t)
    return t


def fill_bernoulli(t, p=0.5, generator: Generator | None = None):
    """``t.bernoulli_(p)``: 0/1 with probability ``p`` (a number, or a tensor of probabilities
    broadcast to t's shape)."""
    _target("bernoulli_", t, floating=False)
    gen = _generator_for("bernoulli_", t.device, generator)
    if _is_tensor(p):
        backend.check_same_device(t.data, p.data, what="bernoulli_")
        _check_probabilities("bernoulli_", p.data)
        probs = p.data
    else:
        if not 0 <= p <= 1:
            raise ValueError(f"bernoulli_: p must lie in [0, 1], got {p}")
        probs = p
    return _written(t, gen.uniform(t.shape, dtype=np.float64) < probs)


def fill_random(t, from_=0, to=None, generator: Generator | None = None):
    """``t.random_()``, ``t.random_(to)`` or ``t.random_(from, to)``: integers uniform on
    [from, to); without ``to``, up to the largest integer the dtype holds exactly (2**24 for
    float32, 2**53 for float64, the maximum for an integer dtype), as torch."""
    if to is None and from_ != 0:  # random_(to)
        from_, to = 0, from_
    if not _is_tensor(t):
        raise TypeError(f"random_: expected a Tensor, got {type(t).__name__}")
    dt = t.dtype
    if to is None:
        if dt.kind == "f":
            to = 2 ** (np.finfo(dt).nmant + 1) + 1
        elif dt.kind == "b":
            to = 2
        else:
            to = int(np.iinfo(dt).max) + 1 if dt != np.uint64 else 2 ** 63
    if not int(to) > int(from_):
        raise ValueError(f"random_: need from < to, got from={from_}, to={to}")
    if dt.kind in "iu" and (from_ < np.iinfo(dt).min or to - 1 > np.iinfo(dt).max):
        raise ValueError(f"random_: [{from_}, {to}) does not fit in {dt}")
    gen = _generator_for("random_", t.device, generator)
    return _written(t, gen.integers(int(from_), int(to), t.shape))


def fill_exponential(t, lambd: float = 1.0, generator: Generator | None = None):
    """``t.exponential_(lambd)``: Exp(rate ``lambd``) samples."""
    _target("exponential_", t)
    if not lambd > 0:
        raise ValueError(f"exponential_: lambd must be > 0, got {lambd}")
    gen = _generator_for("exponential_", t.device, generator)
    xp = backend.get_array_module(t.data)
    u = gen.uniform(t.shape, dtype=np.float64)
    return _written(t, -xp.log1p(-u) / lambd)


def fill_log_normal(t, mean: float = 1.0, std: float = 2.0, generator: Generator | None = None):
    """``t.log_normal_(mean, std)``: exp of N(mean, std^2) samples."""
    _target("log_normal_", t)
    if not std > 0:
        raise ValueError(f"log_normal_: std must be > 0, got {std}")
    gen = _generator_for("log_normal_", t.device, generator)
    xp = backend.get_array_module(t.data)
    return _written(t, xp.exp(gen.normal(t.shape, dtype=np.float64, mean=mean, std=std)))


def fill_cauchy(t, median: float = 0.0, sigma: float = 1.0, generator: Generator | None = None):
    """``t.cauchy_(median, sigma)``: Cauchy samples."""
    _target("cauchy_", t)
    if not sigma > 0:
        raise ValueError(f"cauchy_: sigma must be > 0, got {sigma}")
    gen = _generator_for("cauchy_", t.device, generator)
    xp = backend.get_array_module(t.data)
    u = gen.uniform(t.shape, dtype=np.float64)
    return _written(t, median + sigma * xp.tan(np.pi * (u - 0.5)))


def fill_geometric(t, p: float, generator: Generator | None = None):
    """``t.geometric_(p)``: the number of Bernoulli(p) trials up to the first success (>= 1)."""
    _target("geometric_", t, floating=False)
    if not 0 < p <= 1:
        raise ValueError(f"geometric_: p must lie in (0, 1], got {p}")
    gen = _generator_for("geometric_", t.device, generator)
    xp = backend.get_array_module(t.data)
    u = gen.uniform(t.shape, dtype=np.float64)
    if p == 1:
        return _written(t, xp.ones(t.shape))
    return _written(t, xp.floor(xp.log1p(-u) / np.log1p(-p)) + 1)
