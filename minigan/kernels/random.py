"""Counter-based random numbers (Philox4x32-10) that are bit-identical on the CPU and the GPU.

Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) is a
keyed bijection of a 128-bit counter: ``bits = philox(counter, key)``. There is no hidden state
to carry from one number to the next, so

* the generator's whole state is two integers, ``seed`` (the 64-bit key) and ``offset`` (the
  next unused 128-bit counter), which fit in a JSON checkpoint and resume a stream exactly;
* every element can be computed independently, by a vectorised NumPy expression on the CPU or
  by one GPU thread, and both give the same bits for the same ``(seed, offset, index)``;
* the GPU path is a plain CUDA kernel (no cuRAND), so it can be captured in a CUDA graph.
  A graph replays its kernels with the arguments they were captured with, so for a captured
  step the offset lives on the device as well (``Generator(capturable=True)``): the kernels
  read it there, and one more launch advances it after each draw.

One Philox *block* is counter ``(b mod 2**32, b >> 32, 0, 0)`` with ``b = offset + j``; it yields
four 32-bit words. A draw of ``n`` numbers that needs ``w`` words per number consumes
``ceil(n * w / 4)`` blocks and advances the offset by that much. The words are turned into
numbers with exact integer arithmetic (uniform, bernoulli, dropout, integers), or, for normals,
with double-precision Box-Muller, which agrees across devices to the last bit or so.

Each public function has its NumPy path (``_*_numpy``) and its CuPy path (``_*_cupy``) next to it.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend

__all__ = [
    "Generator",
    "bernoulli_mask",
    "blocks_needed",
    "dropout_mask",
    "integers",
    "normal",
    "philox4x32_10",
    "random_bits",
    "random_uint64",
    "threshold_mask",
    "uniform",
]

# Philox4x32 constants (Random123): multipliers and the Weyl key increments (golden ratio, sqrt 3).
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
_TWO_PI = 6.283185307179586  # the double nearest 2*pi; the CUDA code uses the same literal


def _split_seed(seed: int) -> tuple[int, int]:
    """The 64-bit seed as Philox's two 32-bit key words (low, high)."""
    seed = int(seed) & _MASK64
    return seed & _MASK32, seed >> 32


def blocks_needed(n: int, words_per_number: int) -> int:
    """Philox blocks (four 32-bit words each) consumed by ``n`` numbers of ``words_per_number``."""
    return -(-int(n) * words_per_number // 4)


# The Philox bijection.

def _philox_numpy(c0, c1, c2, c3, k0: int, k1: int):
    """Ten Philox rounds on uint32 counter arrays; returns the four output words.

    Each round: (hi0, lo0) = M0 * c0, (hi1, lo1) = M1 * c2 as 64-bit products, then
    c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0), and the key moves by the Weyl constants.
    NumPy has no 32x32->64 multiply-high, so the products are taken in uint64 and split.
    """
    m0, m1 = np.uint64(PHILOX_M0), np.uint64(PHILOX_M1)
    shift = np.uint64(32)
    for r in range(PHILOX_ROUNDS):
        if r:
            k0 = (k0 + PHILOX_W0) & _MASK32
            k1 = (k1 + PHILOX_W1) & _MASK32
        p0 = c0.astype(np.uint64) * m0
        p1 = c2.astype(np.uint64) * m1
        c0, c1, c2, c3 = (
            (p1 >> shift).astype(np.uint32) ^ c1 ^ np.uint32(k0),
            p1.astype(np.uint32),  # unsigned casts wrap: the low 32 bits
            (p0 >> shift).astype(np.uint32) ^ c3 ^ np.uint32(k1),
            p0.astype(np.uint32),
        )
    return c0, c1, c2, c3


# The same rounds in CUDA C++. __umulhi is the 32x32 multiply-high; the key bump after the last
# round is dead code that the compiler drops.
_PHILOX_CUDA = r"""
__device__ __forceinline__ void minigan_philox4x32_10(unsigned int c[4], unsigned int k0,
                                                      unsigned int k1) {
    #pragma unroll
    for (int r = 0; r < 10; ++r) {
        const unsigned int hi0 = __umulhi(0xD2511F53u, c[0]);
        const unsigned int lo0 = 0xD2511F53u * c[0];
        const unsigned int hi1 = __umulhi(0xCD9E8D57u, c[2]);
        const unsigned int lo1 = 0xCD9E8D57u * c[2];
        c[0] = hi1 ^ c[1] ^ k0;
        c[1] = lo1;
        c[2] = hi0 ^ c[3] ^ k1;
        c[3] = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

// The four words of stream block `blk`: counter (blk low, blk high, 0, 0).
__device__ __forceinline__ void minigan_philox_block(unsigned long long blk, unsigned int k0,
                                                     unsigned int k1, unsigned int w[4]) {
    w[0] = (unsigned int)blk;
    w[1] = (unsigned int)(blk >> 32);
    w[2] = 0u;
    w[3] = 0u;
    minigan_philox4x32_10(w, k0, k1);
}
"""

# Every stream kernel runs one thread per Philox block (launched with size=nblocks) and writes
# its numbers into a flat raw output, guarding the tail with `j < n`. The shared inputs:
_STREAM_IN = "uint64 base, uint32 k0, uint32 k1, int64 n"
_BLOCK_PROLOGUE = """
    unsigned int w[4];
    minigan_philox_block(base + (unsigned long long)i, k0, k1, w);
    const long long j0 = (long long)i * {per_block};
"""


def _stream_kernel(out_params: str, extra_in: str, body: str, per_block: int, name: str):
    """A stream kernel's definition; ``_launch`` compiles the variant it needs (the offset as
    a number, or read from a device array)."""
    return out_params, extra_in, body, per_block, name


def _compiled(spec, device_offset: bool):
    out_params, extra_in, body, per_block, name = spec
    stream_in = _STREAM_IN
    prologue = _BLOCK_PROLOGUE.format(per_block=per_block)
    if device_offset:
        stream_in = stream_in.replace("uint64 base", "raw uint64 basep")
        prologue = "const unsigned long long base = basep[0];" + prologue
        name += "_devoffset"
    in_params = stream_in + (", " + extra_in if extra_in else "")
    return backend.elementwise_kernel(in_params, out_params, prologue + body, name,
                                      _PHILOX_CUDA)


def _launch(spec, seed: int, offset, n: int, per_block: int, out, *extra):
    """Run a stream kernel over ``n`` numbers from ``offset``: a number, or a (1,) uint64
    device array that the kernel reads and that one more launch then advances past the
    blocks used (for a captured step, see ``Generator``)."""
    k0, k1 = _split_seed(seed)
    nblocks = -(-n // per_block)
    on_device = backend.is_cupy_array(offset)
    if nblocks:
        base = offset if on_device else np.uint64(int(offset) & _MASK64)
        _compiled(spec, on_device)(base, np.uint32(k0), np.uint32(k1), np.int64(n), *extra, out,
                                   size=nblocks)
        if on_device:
            offset += np.uint64(nblocks)  # wraps modulo 2**64, as the host's count does
    return out


def philox4x32_10(counter, key, xp=np):
    """The raw Philox4x32-10 bijection, for known-answer tests.

    ``counter``: uint32 array of shape (..., 4); ``key``: two 32-bit ints. Returns uint32 (..., 4).
    """
    k0, k1 = int(key[0]) & _MASK32, int(key[1]) & _MASK32
    if xp is np:
        c = np.asarray(counter, dtype=np.uint32)
        out = _philox_numpy(c[..., 0], c[..., 1], c[..., 2], c[..., 3], k0, k1)
        return np.stack(out, axis=-1)
    c = xp.ascontiguousarray(xp.asarray(counter, dtype=np.uint32))
    out = xp.empty_like(c)
    kernel = backend.elementwise_kernel(
        "raw uint32 c, uint32 k0, uint32 k1", "raw uint32 r",
        """
        unsigned int w[4] = {c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]};
        minigan_philox4x32_10(w, k0, k1);
        for (int k = 0; k < 4; ++k) r[4 * i + k] = w[k];
        """,
        "minigan_philox_kat", _PHILOX_CUDA)
    if c.size:
        kernel(c, np.uint32(k0), np.uint32(k1), out, size=c.size // 4)
    return out


def _words_numpy(seed: int, offset: int, nwords: int) -> np.ndarray:
    """The first ``nwords`` 32-bit words of the stream at ``offset`` (flat uint32)."""
    nblocks = -(-nwords // 4)
    blk = np.arange(nblocks, dtype=np.uint64) + np.uint64(int(offset) & _MASK64)
    lo = blk.astype(np.uint32)
    hi = (blk >> np.uint64(32)).astype(np.uint32)
    zero = np.zeros(nblocks, dtype=np.uint32)
    words = np.stack(_philox_numpy(lo, hi, zero, zero, *_split_seed(seed)), axis=-1)
    return words.reshape(-1)[:nwords]


def _size(shape) -> tuple[tuple, int]:
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    return shape, math.prod(shape)


# Raw 32-bit words.

def random_bits(shape, seed: int, offset: int, xp=np):
    """uint32 words of the stream; one word per element (``ceil(n/4)`` blocks)."""
    shape, n = _size(shape)
    if xp is np:
        return _words_numpy(seed, offset, n).reshape(shape)
    kernel = _stream_kernel("raw uint32 out", "", """
        for (int k = 0; k < 4; ++k) if (j0 + k < n) out[j0 + k] = w[k];
        """, 4, "minigan_philox_bits")
    return _launch(kernel, seed, offset, n, 4, xp.empty(n, dtype=np.uint32)).reshape(shape)


# Uniform floats in [0, 1): exact on both devices.
#   float32: (w >> 8) * 2**-24, 24 random bits, one word per number.
#   float64: ((a >> 5) * 2**26 + (b >> 6)) * 2**-53, 53 bits from two words (NumPy's recipe).

_TWO_M24 = 2.0 ** -24
_TWO_M53 = 2.0 ** -53
_TWO_M32 = 2.0 ** -32


def _uniform_words(dtype) -> int:
    return 2 if np.dtype(dtype) == np.float64 else 1


def _uniform_numpy(n, seed, offset, dtype):
    if np.dtype(dtype) == np.float64:
        w = _words_numpy(seed, offset, 2 * n)
        k = ((w[0::2] >> np.uint32(5)).astype(np.uint64) << np.uint64(26)) | (w[1::2] >> 6)
        return k.astype(np.float64) * _TWO_M53
    w = _words_numpy(seed, offset, n)
    return ((w >> np.uint32(8)).astype(np.float32) * np.float32(_TWO_M24)).astype(dtype,
                                                                                 copy=False)


_UNIFORM_F32_CUDA = """
    for (int k = 0; k < 4; ++k)
        if (j0 + k < n) out[j0 + k] = (float)(w[k] >> 8) * 5.9604644775390625e-08f;
"""
_UNIFORM_F64_CUDA = """
    for (int k = 0; k < 2; ++k) {
        if (j0 + k < n) {
            const unsigned long long a = w[2 * k] >> 5, b = w[2 * k + 1] >> 6;
            out[j0 + k] = (double)((a << 26) | b) * 1.1102230246251565e-16;
        }
    }
"""


def uniform(shape, seed: int, offset: int, xp=np, dtype=np.float32):
    """U[0, 1) samples; float64 uses two words per number, other dtypes one (via float32)."""
    shape, n = _size(shape)
    dtype = np.dtype(dtype)
    if xp is np:
        return _uniform_numpy(n, seed, offset, dtype).reshape(shape)
    if dtype == np.float64:
        kernel = _stream_kernel("raw float64 out", "", _UNIFORM_F64_CUDA, 2, "minigan_uniform_f64")
        out = _launch(kernel, seed, offset, n, 2, xp.empty(n, dtype=np.float64))
    else:
        kernel = _stream_kernel("raw float32 out", "", _UNIFORM_F32_CUDA, 4, "minigan_uniform_f32")
        out = _launch(kernel, seed, offset, n, 4, xp.empty(n, dtype=np.float32))
    return out.astype(dtype, copy=False).reshape(shape)


# Normal samples by Box-Muller, computed in double on both devices and then rounded:
#   r = sqrt(-2 ln u1), u1 in (0, 1];  (z0, z1) = (r cos(2 pi u2), r sin(2 pi u2)).
# float32 (and narrower): u1 = (w0 + 1) 2**-32, u2 = w1 2**-32, two words per pair of numbers.
# float64: u1, u2 from 53-bit words pairs, four words per pair of numbers.
# The tail is cut at r = sqrt(2 * 32 ln 2) = 6.66 (float32) or 8.57 (float64) standard deviations.

def _normal_words(dtype) -> int:
    return 2 if np.dtype(dtype) == np.float64 else 1


def _normal_numpy(n, seed, offset, dtype, mean, std):
    npairs = -(-n // 2)
    if np.dtype(dtype) == np.float64:
        w = _words_numpy(seed, offset, 4 * npairs).reshape(npairs, 4).astype(np.uint64)
        k1 = ((w[:, 0] >> np.uint64(5)) << np.uint64(26)) | (w[:, 1] >> np.uint64(6))
        k2 = ((w[:, 2] >> np.uint64(5)) << np.uint64(26)) | (w[:, 3] >> np.uint64(6))
        u1 = (k1.astype(np.float64) + 1.0) * _TWO_M53
        u2 = k2.astype(np.float64) * _TWO_M53
    else:
        w = _words_numpy(seed, offset, 2 * npairs).reshape(npairs, 2)
        u1 = (w[:, 0].astype(np.float64) + 1.0) * _TWO_M32
        u2 = w[:, 1].astype(np.float64) * _TWO_M32
    r = np.sqrt(-2.0 * np.log(u1))
    theta = _TWO_PI * u2
    z = np.empty((npairs, 2), dtype=np.float64)
    np.multiply(r, np.cos(theta), out=z[:, 0])
    np.multiply(r, np.sin(theta), out=z[:, 1])
    z = z.reshape(-1)[:n]
    if std != 1.0:
        z *= std
    if mean != 0.0:
        z += mean
    return z.astype(dtype, copy=False)


_NORMAL_F32_CUDA = """
    for (int k = 0; k < 2; ++k) {
        const double u1 = ((double)w[2 * k] + 1.0) * 2.3283064365386963e-10;
        const double u2 = (double)w[2 * k + 1] * 2.3283064365386963e-10;
        const double r = sqrt(-2.0 * log(u1));
        double s, c;
        sincos(6.283185307179586 * u2, &s, &c);
        if (j0 + 2 * k < n) out[j0 + 2 * k] = (float)(mean + std * (r * c));
        if (j0 + 2 * k + 1 < n) out[j0 + 2 * k + 1] = (float)(mean + std * (r * s));
    }
"""
_NORMAL_F64_CUDA = """
    const unsigned long long a0 = w[0] >> 5, b0 = w[1] >> 6, a1 = w[2] >> 5, b1 = w[3] >> 6;
    const double u1 = ((double)((a0 << 26) | b0) + 1.0) * 1.1102230246251565e-16;
    const double u2 = (double)((a1 << 26) | b1) * 1.1102230246251565e-16;
    const double r = sqrt(-2.0 * log(u1));
    double s, c;
    sincos(6.283185307179586 * u2, &s, &c);
    if (j0 < n) out[j0] = mean + std * (r * c);
    if (j0 + 1 < n) out[j0 + 1] = mean + std * (r * s);
"""


def normal(shape, seed: int, offset: int, xp=np, dtype=np.float32, mean: float = 0.0,
           std: float = 1.0):
    """N(mean, std**2) samples by Box-Muller (see the comment above for the word layout)."""
    shape, n = _size(shape)
    dtype = np.dtype(dtype)
    mean, std = float(mean), float(std)
    if xp is np:
        return _normal_numpy(n, seed, offset, dtype, mean, std).reshape(shape)
    if dtype == np.float64:
        kernel = _stream_kernel("raw float64 out", "float64 mean, float64 std", _NORMAL_F64_CUDA,
                                2, "minigan_normal_f64")
        out = _launch(kernel, seed, offset, n, 2, xp.empty(n, dtype=np.float64), mean, std)
    else:
        kernel = _stream_kernel("raw float32 out", "float64 mean, float64 std", _NORMAL_F32_CUDA,
                                4, "minigan_normal_f32")
        out = _launch(kernel, seed, offset, n, 4, xp.empty(n, dtype=np.float32), mean, std)
    return out.astype(dtype, copy=False).reshape(shape)


# 64-bit words (two 32-bit words, the first one high): keys for permutations and integers.

def random_uint64(shape, seed: int, offset: int, xp=np):
    """uint64 words, two stream words per element (``ceil(n/2)`` blocks)."""
    shape, n = _size(shape)
    if xp is np:
        w = _words_numpy(seed, offset, 2 * n).astype(np.uint64)
        return ((w[0::2] << np.uint64(32)) | w[1::2]).reshape(shape)
    kernel = _stream_kernel("raw uint64 out", "", """
        for (int k = 0; k < 2; ++k)
            if (j0 + k < n) out[j0 + k] = ((unsigned long long)w[2 * k] << 32) | w[2 * k + 1];
        """, 2, "minigan_philox_u64")
    return _launch(kernel, seed, offset, n, 2, xp.empty(n, dtype=np.uint64)).reshape(shape)


def integers(low: int, high: int, shape, seed: int, offset: int, xp=np):
    """int64 uniform on [low, high): ``low + v mod (high - low)`` with v a 64-bit word.

    The modulo bias is at most (high - low) / 2**64, far below anything measurable, and it keeps
    the map a fixed number of words per element (no rejection loop), as a counter-based
    generator needs.
    """
    span = int(high) - int(low)
    if span <= 0 or span > 2 ** 63:
        raise ValueError(f"integers: need low < high with high - low <= 2**63, got [{low}, {high})")
    v = random_uint64(shape, seed, offset, xp)
    out = (v % np.uint64(span)).astype(np.int64)
    out += np.int64(low)
    return out


# Threshold masks: the number k = w >> 8 in [0, 2**24) is compared with an integer threshold,
# so the decision is exact and identical on both devices:
#   u = k 2**-24 < p  <=>  k < ceil(p 2**24).

def _threshold(p: float) -> int:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {p}")
    return math.ceil(p * 2.0 ** 24)  # p * 2**24 is exact in double


def threshold_mask(shape, p: float, below, at_or_above, seed: int, offset: int, xp=np,
                   dtype=np.float32):
    """``below`` where u < p, else ``at_or_above`` (u uniform on the 24-bit grid); one word each."""
    shape, n = _size(shape)
    dtype = np.dtype(dtype)
    thresh = _threshold(p)
    lo, hi = dtype.type(below), dtype.type(at_or_above)
    if xp is np:
        keep = (_words_numpy(seed, offset, n) >> np.uint32(8)) >= np.uint32(thresh)
        return np.where(keep, hi, lo).astype(dtype, copy=False).reshape(shape)
    kernel = _stream_kernel("raw T out", "uint32 thresh, T lo, T hi", """
        for (int k = 0; k < 4; ++k)
            if (j0 + k < n) out[j0 + k] = (w[k] >> 8) >= thresh ? hi : lo;
        """, 4, "minigan_philox_threshold")
    out = xp.empty(n, dtype=dtype)
    return _launch(kernel, seed, offset, n, 4, out, np.uint32(thresh), lo, hi).reshape(shape)


def bernoulli_mask(shape, p: float, seed: int, offset: int, xp=np, dtype=np.bool_):
    """1 (True) with probability p, else 0; one word per element."""
    return threshold_mask(shape, p, 1, 0, seed, offset, xp, dtype)


def dropout_mask(shape, p: float, seed: int, offset: int, xp=np, dtype=np.float32):
    """The inverted-dropout multiplier: 0 with probability p, else 1 / (1 - p)."""
    scale = 0.0 if p >= 1.0 else 1.0 / (1.0 - p)
    return threshold_mask(shape, p, 0.0, scale, seed, offset, xp, dtype)


class Generator:
    """A Philox stream on one device whose whole state is ``{"seed", "offset"}``.

    Every draw reads the blocks from ``offset`` on and then advances ``offset`` past them, so a
    generator restored with ``load_state_dict`` continues the exact same numbers, and two
    generators with equal states on "cpu" and "cuda" give the same uint32 words and uniforms.
    """

    def __init__(self, seed: int = 0, device: str = "cpu", capturable: bool = False):
        if isinstance(seed, str):  # torch's Generator(device): a device alone (seed 0 here;
            # torch starts at 67280421310721: seed it, as torch code does, for a stream)
            seed, device = 0, seed
        elif isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"Generator: the seed must be an int, got {seed!r}")
        self.device = backend.normalize_device(device)
        self.xp = backend.xp_for(self.device)
        self.seed = int(seed) & _MASK64
        self.offset = 0
        self._device_offset = None
        self.capturable = capturable

    def __repr__(self) -> str:
        return f"Generator(seed={self.seed}, offset={self.offset}, device={self.device!r})"

    @property
    def capturable(self) -> bool:
        """True: on the GPU the offset is also kept in a (1,) uint64 device array that the
        kernels read and advance, so that a draw captured into a CUDA graph draws new numbers
        at each replay. The host's ``offset`` still moves with every draw (a replay's draws are
        added by ``minigan.gan.graph``), and the numbers are the same either way."""
        return self._capturable

    @capturable.setter
    def capturable(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"Generator: capturable must be True or False, got {value!r}")
        self._capturable = value
        self._device_offset = None
        if value and self.device == "cuda":
            self._write_device_offset()

    def _write_device_offset(self) -> None:
        if backend.is_capturing():
            raise RuntimeError("Generator: its state changed during a CUDA-graph capture (a "
                               "graph would replay the change every step)")
        if self._device_offset is None:
            self._device_offset = self.xp.zeros(1, dtype=np.uint64)
        self._device_offset.fill(np.uint64(self.offset))  # a fill kernel: no upload

    def manual_seed(self, seed: int) -> Generator:
        self.seed, self.offset = int(seed) & _MASK64, 0
        if self._device_offset is not None:
            self._write_device_offset()
        return self

    def state_dict(self) -> dict:
        return {"seed": int(self.seed), "offset": int(self.offset)}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"]) & _MASK64
        self.offset = int(state["offset"]) & _MASK64
        if self._device_offset is not None:
            self._write_device_offset()

    def initial_seed(self) -> int:
        """The seed the stream was started with (torch's ``Generator.initial_seed``)."""
        return int(self.seed)

    def state_bytes(self) -> np.ndarray:
        """The state as 16 bytes (uint8): the seed and the offset, little-endian
        (``minigan.Generator.get_state`` gives them as a tensor, as torch's does)."""
        return np.array([self.seed, self.offset], dtype="<u8").view(np.uint8).copy()

    def set_state(self, state) -> Generator:
        """Restore a state from ``get_state`` (a tensor) or `state_bytes` (an array)."""
        data = state if isinstance(state, np.ndarray) else getattr(state, "data", state)
        if backend.is_cupy_array(data) or not isinstance(data, np.ndarray) \
                or data.dtype != np.uint8 or data.shape != (16,):
            raise ValueError("Generator.set_state: expected the uint8 CPU tensor of shape (16,) "
                             f"that get_state gives, got {type(state).__name__} of shape "
                             f"{tuple(getattr(data, 'shape', ()))} and dtype "
                             f"{getattr(data, 'dtype', None)}")
        seed, offset = (int(w) for w in np.ascontiguousarray(data).view("<u8"))
        self.load_state_dict({"seed": seed, "offset": offset})
        return self

    def graph_counters(self) -> dict:
        """The host count a draw advances (for ``minigan.gan.graph``, whose replays the host
        does not run)."""
        return {"offset": self.offset}

    def set_graph_counters(self, counters: dict) -> None:
        self.offset = int(counters["offset"]) & _MASK64

    def _take(self, n: int, words_per_number: int):
        """Reserve the blocks for ``n`` numbers; returns the offset they start at (for a
        capturable generator on the GPU, the device array that holds it)."""
        start = self.offset
        self.offset = (start + blocks_needed(n, words_per_number)) & _MASK64
        return start if self._device_offset is None else self._device_offset

    def random_bits(self, shape):
        shape, n = _size(shape)
        return random_bits(shape, self.seed, self._take(n, 1), self.xp)

    def uniform(self, shape, dtype=np.float32, low: float = 0.0, high: float = 1.0):
        shape, n = _size(shape)
        u = uniform(shape, self.seed, self._take(n, _uniform_words(dtype)), self.xp, dtype)
        if low != 0.0 or high != 1.0:
            u *= high - low
            u += low
        return u

    def normal(self, shape, dtype=np.float32, mean: float = 0.0, std: float = 1.0):
        shape, n = _size(shape)
        start = self._take(n, _normal_words(dtype))
        return normal(shape, self.seed, start, self.xp, dtype, mean, std)

    def integers(self, low: int, high: int | None = None, shape=()):
        """int64 uniform on [low, high) (or [0, low) when high is None), as NumPy's."""
        if high is None:
            low, high = 0, low
        shape, n = _size(shape)
        return integers(low, high, shape, self.seed, self._take(n, 2), self.xp)

    def permutation(self, n: int):
        """A uniformly random permutation of range(n): the argsort of distinct 64-bit keys.

        Keys collide with probability about n**2 / 2**65 (1e-10 for n = 60000); even then both
        devices order ties by index, so the result matches across devices.
        """
        keys = random_uint64((int(n),), self.seed, self._take(n, 2), self.xp)
        if self.xp is np:
            return np.argsort(keys, kind="stable")
        return self.xp.argsort(keys)  # CuPy's argsort is a stable radix sort

    def bernoulli_mask(self, shape, p: float, dtype=np.bool_):
        shape, n = _size(shape)
        return bernoulli_mask(shape, p, self.seed, self._take(n, 1), self.xp, dtype)

    def dropout_mask(self, shape, p: float, dtype=np.float32):
        shape, n = _size(shape)
        return dropout_mask(shape, p, self.seed, self._take(n, 1), self.xp, dtype)
