"""The IDX reader and writer: round trips and every way a file can be broken."""
import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigan.data import DatasetError, parse_idx, read_idx, write_idx
from minigan.data.idx import idx_bytes


def _images(n=5):
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("array", [_images(), np.arange(7, dtype=np.uint8),
                                   np.arange(-6, 6, dtype=np.int32).reshape(3, 4),
                                   np.linspace(-1, 1, 10, dtype=np.float32),
                                   np.array([[1.5, -2.25]], dtype=np.float64)],
                         ids=["uint8-3d", "uint8-1d", "int32-2d", "float32-1d", "float64-2d"])
def test_round_trip(tmp_path, array, compress):
    path = write_idx(tmp_path / ("a.idx.gz" if compress else "a.idx"), array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    back = read_idx(path, expect_ndim=array.ndim)
    assert back.dtype == array.dtype.newbyteorder("=") and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


def test_header_layout_is_canonical():
    data = idx_bytes(_images(2))
    assert data[:4] == b"\x00\x00\x08\x03"
    assert struct.unpack(">3I", data[4:16]) == (2, 28, 28)
    assert idx_bytes(np.zeros(3, np.uint8))[:8] == b"\x00\x00\x08\x01\x00\x00\x00\x03"


def test_gzip_is_detected_from_content_not_name(tmp_path):
    path = tmp_path / "labels.idx"  # no .gz, but gzipped
    path.write_bytes(gzip.compress(idx_bytes(np.arange(4, dtype=np.uint8))))
    np.testing.assert_array_equal(read_idx(path), np.arange(4))


@given(st.lists(st.integers(0, 5), min_size=1, max_size=4), st.booleans())
@settings(max_examples=30, deadline=None)
def test_round_trip_any_shape(shape, compress):
    array = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    data = idx_bytes(array)
    if compress:
        data = gzip.compress(data)
    from minigan.data.idx import gunzip_if_gzipped

    np.testing.assert_array_equal(parse_idx(gunzip_if_gzipped(data)), array)


def _write(tmp_path, data, name="broken-idx3-ubyte", gz=False):
    path = tmp_path / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _error(path, **kwargs):
    with pytest.raises(DatasetError) as info:
        read_idx(path, **kwargs)
    assert str(path) in str(info.value)  # every message names the file
    return str(info.value)


@pytest.mark.parametrize("gz", [False, True])
def test_bad_magic(tmp_path, gz):
    good = idx_bytes(_images(1))
    assert "bad IDX magic" in _error(_write(tmp_path, b"\x00\x01" + good[2:], gz=gz))
    assert "bad IDX magic" in _error(_write(tmp_path, b"\x00\x00\x07\x03" + good[4:], gz=gz))
    assert "bad IDX magic" in _error(_write(tmp_path, b"<html>not found</html>", gz=gz))


def test_zero_dimensions(tmp_path):
    assert "0 dimensions" in _error(_write(tmp_path, b"\x00\x00\x08\x00"))


def test_wrong_number_of_dimensions(tmp_path):
    path = _write(tmp_path, idx_bytes(np.arange(5, dtype=np.uint8)))
    assert "expected a 3-D IDX array, found 1-D" in _error(path, expect_ndim=3)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_header(tmp_path, gz):
    good = idx_bytes(_images(1))
    assert "truncated IDX header" in _error(_write(tmp_path, good[:3], gz=gz))
    message = _error(_write(tmp_path, good[:10], gz=gz))
    assert "truncated IDX header" in message and "3 dimensions" in message


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_payload(tmp_path, gz):
    good = idx_bytes(_images(2))
    message = _error(_write(tmp_path, good[:-100], gz=gz))
    assert "truncated IDX data" in message and "1568 bytes" in message and "1468" in message


@pytest.mark.parametrize("gz", [False, True])
def test_trailing_garbage(tmp_path, gz):
    good = idx_bytes(np.arange(4, dtype=np.uint8))
    assert "3 unexpected bytes after the IDX data" in _error(_write(tmp_path, good + b"abc",
                                                                    gz=gz))


def test_corrupt_gzip(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(_images(3))))
    packed[len(packed) // 2] ^= 0xFF  # damage the deflate stream
    assert "corrupt gzip" in _error(_write(tmp_path, bytes(packed)))


def test_truncated_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(_images(3)))
    assert "corrupt gzip" in _error(_write(tmp_path, packed[: len(packed) // 2]))


def test_gzip_with_bad_crc(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(_images(1))))
    packed[-8] ^= 0xFF  # the CRC32 in the trailer
    assert "corrupt gzip" in _error(_write(tmp_path, bytes(packed)))


def test_missing_file(tmp_path):
    assert "cannot read" in _error(tmp_path / "nope-idx1-ubyte.gz")


def test_unsupported_dtype():
    with pytest.raises(DatasetError, match="cannot store dtype int64"):
        idx_bytes(np.arange(3, dtype=np.int64))


def test_write_leaves_no_temporary_files(tmp_path):
    write_idx(tmp_path / "x.gz", np.arange(3, dtype=np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["x.gz"]
