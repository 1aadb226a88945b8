"""Philox4x32-10 stream: known answers, distributions, state round trips and CPU/GPU parity."""
import numpy as np
import pytest

from minigan import backend
from minigan.kernels import random as R
from minigan.kernels.random import Generator

# Random123's published known-answer vectors for philox4x32_10: (counter, key, output).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]

SEEDS = [0, 1234, 2 ** 40 + 17, 2 ** 64 - 1]


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_philox_known_answers(counter, key, expected):
    out = R.philox4x32_10(np.array(counter, dtype=np.uint32), key)
    assert out.dtype == np.uint32
    assert [int(v) for v in out] == list(expected)


def test_philox_vectorised_matches_rows():
    counters = np.array([c for c, _, _ in KAT], dtype=np.uint32)
    out = R.philox4x32_10(counters, (0, 0))
    for row, c in zip(out, counters):
        np.testing.assert_array_equal(row, R.philox4x32_10(c, (0, 0)))


def test_stream_is_philox_of_block_counters():
    seed, offset = 2 ** 40 + 17, 2 ** 32 - 1  # the block counter carries into its high word
    bits = R.random_bits(12, seed, offset)
    key = (seed & 0xFFFFFFFF, seed >> 32)
    for j in range(3):
        b = offset + j
        ctr = np.array([b & 0xFFFFFFFF, b >> 32, 0, 0], dtype=np.uint32)
        np.testing.assert_array_equal(bits[4 * j:4 * j + 4], R.philox4x32_10(ctr, key))


def test_stream_offsets_compose():
    whole = R.random_bits(20, 7, 3)
    np.testing.assert_array_equal(whole[8:], R.random_bits(12, 7, 5))
    np.testing.assert_array_equal(whole[:5], R.random_bits(5, 7, 3))
    assert not np.array_equal(R.random_bits(20, 8, 3), whole)


def test_uniform_is_exact_function_of_bits():
    bits = R.random_bits(1000, 5, 11)
    u = R.uniform(1000, 5, 11, dtype=np.float32)
    np.testing.assert_array_equal(u, (bits >> 8).astype(np.float64) * 2.0 ** -24)
    w = R.random_bits(2000, 5, 11).astype(np.uint64)
    u64 = R.uniform(1000, 5, 11, dtype=np.float64)
    k = (w[0::2] >> np.uint64(5)) * np.uint64(2 ** 26) + (w[1::2] >> np.uint64(6))
    np.testing.assert_array_equal(u64, k.astype(np.float64) / 2.0 ** 53)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_moments(dtype):
    u = R.uniform((400, 500), 42, 0, dtype=dtype)
    assert u.dtype == dtype and u.shape == (400, 500)
    assert u.min() >= 0.0 and u.max() < 1.0
    n = u.size
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 2e-3
    hist = np.bincount((u.ravel() * 10).astype(int), minlength=10)
    assert np.all(np.abs(hist - n / 10) < 6 * np.sqrt(n / 10))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_moments(dtype):
    z = R.normal((200_001,), 3, 9, dtype=dtype).astype(np.float64)
    assert np.isfinite(z).all()
    n = z.size
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.std() - 1.0) < 5e-3
    assert abs(np.mean(z ** 3)) < 0.03
    assert abs(np.mean(z ** 4) - 3.0) < 0.06
    # the Box-Muller pairs are uncorrelated
    assert abs(np.corrcoef(z[0:-1:2], z[1::2])[0, 1]) < 0.02
    assert abs(np.mean(np.abs(z) < 1.0) - 0.6826894921) < 0.005


def test_normal_mean_std_and_odd_sizes():
    z = R.normal(7, 1, 2, dtype=np.float64)
    np.testing.assert_allclose(R.normal(7, 1, 2, dtype=np.float64, mean=3.0, std=0.5),
                               3.0 + 0.5 * z, rtol=1e-15)
    np.testing.assert_array_equal(R.normal(8, 1, 2, dtype=np.float64)[:7], z)
    z32 = R.normal(5, 1, 2)
    np.testing.assert_array_equal(R.normal(6, 1, 2)[:5], z32)


def test_integers_range_and_uniformity():
    v = R.integers(-3, 7, (100_000,), 11, 0)
    assert v.dtype == np.int64 and v.min() == -3 and v.max() == 6
    counts = np.bincount(v + 3, minlength=10)
    assert np.all(np.abs(counts - 10_000) < 500)
    with pytest.raises(ValueError):
        R.integers(5, 5, 3, 0, 0)


def test_masks():
    b = R.bernoulli_mask((100_000,), 0.3, 1, 0)
    assert b.dtype == np.bool_ and abs(b.mean() - 0.3) < 0.01
    d = R.dropout_mask((100_000,), 0.25, 1, 0, dtype=np.float32)
    assert d.dtype == np.float32
    assert set(np.unique(d).tolist()) == {0.0, np.float32(1 / 0.75)}
    # the same words: dropped exactly where the bernoulli(p) mask is set
    np.testing.assert_array_equal(R.bernoulli_mask((100_000,), 0.25, 1, 0), d == 0)
    assert abs(d.mean() - 1.0) < 0.02
    assert (R.dropout_mask(100, 0.0, 1, 0) == 1.0).all()
    assert (R.dropout_mask(100, 1.0, 1, 0) == 0.0).all()
    assert not R.bernoulli_mask(100, 0.0, 1, 0).any()
    assert R.bernoulli_mask(100, 1.0, 1, 0).all()
    with pytest.raises(ValueError):
        R.bernoulli_mask(3, 1.5, 0, 0)


def test_generator_advances_offset_by_blocks():
    g = R.Generator(5)
    g.uniform((3, 3))
    assert g.offset == 3  # 9 words
    g.uniform(3, dtype=np.float64)
    assert g.offset == 5  # 6 words
    g.normal(5)
    assert g.offset == 7
    g.normal(3, dtype=np.float64)
    assert g.offset == 9
    g.integers(0, 10, (4,))
    assert g.offset == 11
    g.permutation(6)
    assert g.offset == 14
    g.bernoulli_mask(5, 0.5)
    g.dropout_mask((2, 2), 0.5)
    assert g.offset == 17
    g.random_bits(0)
    assert g.offset == 17


def test_generator_draws_are_the_functional_stream():
    g = R.Generator(99)
    g.offset = 4
    np.testing.assert_array_equal(g.uniform(10), R.uniform(10, 99, 4))
    np.testing.assert_array_equal(g.normal(4), R.normal(4, 99, 7))
    assert not np.array_equal(g.uniform(10), R.uniform(10, 99, 4))


def test_generator_state_roundtrip_resumes_exactly():
    g = R.Generator(2024)
    g.normal((5, 5))
    state = g.state_dict()
    assert state == {"seed": 2024, "offset": 7}
    assert all(type(v) is int for v in state.values())
    a = [g.uniform(17), g.normal(9), g.integers(0, 100, 5), g.permutation(10),
         g.dropout_mask(8, 0.5)]
    h = R.Generator(0)
    h.load_state_dict(state)
    b = [h.uniform(17), h.normal(9), h.integers(0, 100, 5), h.permutation(10),
         h.dropout_mask(8, 0.5)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert h.state_dict() == g.state_dict()


def test_generator_api_details():
    g = R.Generator(1)
    p = g.permutation(50)
    assert sorted(p.tolist()) == list(range(50))
    assert not np.array_equal(p, np.arange(50))
    v = g.integers(6, shape=(1000,))
    assert v.min() >= 0 and v.max() <= 5
    u = g.uniform(1000, low=-2.0, high=3.0)
    assert u.min() >= -2.0 and u.max() < 3.0
    n = g.normal(10_000, mean=5.0, std=0.1)
    assert abs(n.mean() - 5.0) < 0.01 and abs(n.std() - 0.1) < 0.005
    g.manual_seed(3)
    assert g.state_dict() == {"seed": 3, "offset": 0}
    assert "seed=3" in repr(g)
    assert not np.array_equal(R.Generator(1).uniform(8), R.Generator(2).uniform(8))


# GPU parity: the uint32 stream and everything derived exactly from it is bit-identical.

@pytest.mark.gpu
@pytest.mark.parametrize("counter,key,expected", KAT)
def test_philox_known_answers_cuda(cuda, counter, key, expected):
    out = R.philox4x32_10(cuda.asarray(np.array(counter, dtype=np.uint32)), key, xp=cuda)
    assert [int(v) for v in out.get()] == list(expected)


@pytest.mark.gpu
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("offset", [0, 5, 2 ** 32 - 2, 2 ** 64 - 3])
def test_bits_parity_cuda(cuda, seed, offset):
    for n in (0, 1, 3, 4, 5, 1001):
        cpu = R.random_bits((n,), seed, offset, np)
        gpu = R.random_bits((n,), seed, offset, cuda)
        assert gpu.dtype == np.uint32
        np.testing.assert_array_equal(gpu.get(), cpu)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 6, 1003])
def test_uniform_parity_cuda(cuda, dtype, n):
    cpu = R.uniform((n,), 77, 2 ** 33 + 1, np, dtype)
    gpu = R.uniform((n,), 77, 2 ** 33 + 1, cuda, dtype)
    assert gpu.dtype == dtype
    np.testing.assert_array_equal(gpu.get(), cpu)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-6), (np.float64, 1e-12)])
@pytest.mark.parametrize("n", [1, 7, 4001])
def test_normal_parity_cuda(cuda, dtype, rtol, n):
    cpu = R.normal((n,), 5, 3, np, dtype, mean=0.5, std=2.0)
    gpu = R.normal((n,), 5, 3, cuda, dtype, mean=0.5, std=2.0)
    assert gpu.dtype == dtype
    np.testing.assert_allclose(gpu.get(), cpu, rtol=rtol, atol=rtol)


@pytest.mark.gpu
def test_integer_and_mask_parity_cuda(cuda):
    np.testing.assert_array_equal(R.random_uint64(1001, 3, 9, cuda).get(),
                                  R.random_uint64(1001, 3, 9, np))
    np.testing.assert_array_equal(R.integers(-5, 1000, (37, 3), 3, 9, cuda).get(),
                                  R.integers(-5, 1000, (37, 3), 3, 9, np))
    for dtype in (np.float32, np.float64):
        np.testing.assert_array_equal(R.dropout_mask((33, 5), 0.3, 8, 1, cuda, dtype).get(),
                                      R.dropout_mask((33, 5), 0.3, 8, 1, np, dtype))
    gb = R.bernoulli_mask((33, 5), 0.7, 8, 1, cuda)
    assert gb.dtype == np.bool_
    np.testing.assert_array_equal(gb.get(), R.bernoulli_mask((33, 5), 0.7, 8, 1, np))


@pytest.mark.gpu
def test_generator_parity_cuda(cuda):
    gc, gg = R.Generator(31, "cpu"), R.Generator(31, "cuda")
    assert gg.device == "cuda"
    np.testing.assert_array_equal(gg.uniform((4, 5)).get(), gc.uniform((4, 5)))
    np.testing.assert_allclose(gg.normal(99).get(), gc.normal(99), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(gg.integers(0, 10, 50).get(), gc.integers(0, 10, 50))
    np.testing.assert_array_equal(gg.permutation(1000).get(), gc.permutation(1000))
    np.testing.assert_array_equal(gg.dropout_mask(17, 0.5).get(), gc.dropout_mask(17, 0.5))
    np.testing.assert_array_equal(gg.bernoulli_mask(17, 0.5).get(), gc.bernoulli_mask(17, 0.5))
    assert gg.state_dict() == gc.state_dict()
    gc2 = R.Generator(0, "cpu")
    gc2.load_state_dict(gg.state_dict())
    np.testing.assert_array_equal(gg.random_bits(9).get(), gc2.random_bits(9))
    assert isinstance(gg.uniform(3), cuda.ndarray) and backend.device_of(gc.uniform(3)) == "cpu"


def test_a_capturable_generator_draws_the_same_numbers(device):
    """With the offset also kept on the device (for a CUDA graph), every kind of draw gives the
    numbers of a plain generator, and the device offset follows the host's."""
    plain, dev = Generator(7, device), Generator(7, device, capturable=True)
    draws = [lambda g: g.random_bits((5,)), lambda g: g.uniform((3, 3)),
             lambda g: g.uniform((7,), dtype=np.float64), lambda g: g.normal((9,)),
             lambda g: g.normal((5,), dtype=np.float64, mean=1.0, std=2.0),
             lambda g: g.integers(0, 10, (11,)), lambda g: g.bernoulli_mask((13,), 0.3),
             lambda g: g.dropout_mask((6,), 0.5), lambda g: g.permutation(10)]
    for k, draw in enumerate(draws):
        if k == 4:
            for g in (plain, dev):
                g.load_state_dict({"seed": 3, "offset": 2 ** 64 - 2})  # wraps on both
        if k == 7:
            for g in (plain, dev):
                g.manual_seed(11)
        np.testing.assert_array_equal(backend.to_numpy(draw(dev)), backend.to_numpy(draw(plain)))
        assert dev.offset == plain.offset
        if device == "cuda":
            assert int(backend.to_numpy(dev._device_offset)[0]) == dev.offset, k
        else:
            assert dev._device_offset is None
    with pytest.raises(ValueError, match="capturable must be True or False, got 1"):
        Generator(0, device, capturable=1)
