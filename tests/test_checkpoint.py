"""The checkpoint file format: round trips, refusal of bad files, atomic writes and rotation."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minigan import backend
from minigan import checkpoint as ckpt
from minigan.checkpoint import (CheckpointError, CheckpointManager, check_state,
                                load_checkpoint, save_checkpoint)

REPO = Path(__file__).resolve().parents[1]


def _sample_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "G": {
            "main.0.weight": rng.standard_normal((4, 3, 2, 2)).astype(np.float32),
            "main.1.running_var": rng.random(4),  # float64
            "main.1.num_batches_tracked": np.array(7, dtype=np.int64),  # 0-d
        },
        "D": {
            "fc.weight": np.asfortranarray(rng.standard_normal((5, 3)).astype(np.float32)),
            "mask": rng.random((2, 3)) > 0.5,
            "pixels": rng.integers(0, 256, (2, 2, 3), dtype=np.uint8),
            "empty": np.zeros((0, 3), dtype=np.float32),
            "file": np.float64(2.5) * np.ones(()),  # a name np.savez's keywords would clash with
        },
        "opt_G": {"state.0.step": np.array(3, dtype=np.int64),
                  "state.0.exp_avg": rng.standard_normal(6)},
        "no_arrays": {},
        "flat": np.arange(5, dtype=np.int64),
    }


def _assert_same(expected, got):
    assert set(got) == set(expected)
    for key, value in expected.items():
        if isinstance(value, dict):
            _assert_same(value, got[key])
        else:
            got_np = backend.to_numpy(got[key])
            exp_np = backend.to_numpy(value)
            assert got_np.dtype == exp_np.dtype, key
            assert got_np.shape == exp_np.shape, key
            np.testing.assert_array_equal(got_np, exp_np, err_msg=key)


def _meta():
    gen = np.random.default_rng(123)
    gen.random(3)
    return {"config": {"lr": 2e-4, "betas": [0.5, 0.999], "name": "dcgan", "cond": None},
            "step": 1200, "rng": gen.bit_generator.state}


# Round trips


def test_round_trip_groups_dtypes_and_meta(tmp_path):
    arrays, meta = _sample_arrays(), _meta()
    path = save_checkpoint(tmp_path / "sub" / "dir" / "ckpt.npz", arrays, meta)
    assert path == tmp_path / "sub" / "dir" / "ckpt.npz"
    got, got_meta = load_checkpoint(path)
    _assert_same(arrays, got)
    assert got_meta == meta
    assert got["G"]["main.1.num_batches_tracked"].shape == ()
    # The RNG state round trips exactly (PCG64 state holds 128-bit ints).
    restored = np.random.default_rng()
    restored.bit_generator.state = got_meta["rng"]
    gen = np.random.default_rng(123)
    gen.random(3)
    np.testing.assert_array_equal(restored.random(4), gen.random(4))
    # Nothing but the checkpoint itself is left in the folder.
    assert os.listdir(path.parent) == ["ckpt.npz"]


def test_file_is_a_plain_npz_without_pickles(tmp_path):
    path = save_checkpoint(tmp_path / "c.npz", {"G": {"w": np.ones(3)}}, {"step": 1})
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["G/w", "__meta__"]
        info = json.loads(npz["__meta__"].tobytes().decode("utf-8"))
    assert info["format"] == ckpt.FORMAT_NAME and info["version"] == ckpt.FORMAT_VERSION
    assert info["meta"] == {"step": 1}
    assert info["arrays"]["G/w"]["shape"] == [3]


def test_compressed_round_trip(tmp_path):
    arrays = {"G": {"w": np.zeros((100, 100), dtype=np.float32)}}
    plain = save_checkpoint(tmp_path / "a.npz", arrays, {})
    packed = save_checkpoint(tmp_path / "b.npz", arrays, {}, compress=True)
    assert packed.stat().st_size < plain.stat().st_size / 10
    _assert_same(arrays, load_checkpoint(packed)[0])


def test_overwrite_replaces_previous(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"G": {"w": np.zeros(3)}}, {"step": 1})
    save_checkpoint(path, {"G": {"w": np.ones(3)}}, {"step": 2})
    arrays, meta = load_checkpoint(path)
    np.testing.assert_array_equal(arrays["G"]["w"], np.ones(3))
    assert meta == {"step": 2}
    assert os.listdir(tmp_path) == ["c.npz"]


# Refused on save


@pytest.mark.parametrize("arrays, message", [
    ({"G/x": {"w": np.ones(1)}}, "contains '/'"),
    ({"G": {"a/b": np.ones(1)}}, "contains '/'"),
    ({"__meta__": np.ones(1)}, "reserved"),
    ({"G": {"": np.ones(1)}}, "non-empty"),
    ({"G": {"w": np.array([{"a": 1}], dtype=object)}}, "object"),
    # an object field inside a structured dtype is a pickle too (dtype.kind is "V", not "O")
    ({"G": {"w": np.zeros(2, np.dtype([("a", "f4"), ("b", "O")]))}}, "holds Python objects"),
    ({"G": {"w": None}}, "'G/w' is None"),
    ({"G": {"h": {"w": np.ones(1)}}}, "'G/h' is a mapping: groups nest one level only"),
])
def test_save_refuses_bad_names_and_object_arrays(tmp_path, arrays, message):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"G": {"w": np.zeros(2)}}, {"step": 1})
    with pytest.raises(CheckpointError, match=message):
        save_checkpoint(path, {"ok": {"v": np.ones(4)}, **arrays}, {"step": 2})
    # A failed save leaves the old file intact and no temp file behind.
    assert os.listdir(tmp_path) == ["c.npz"]
    assert load_checkpoint(path)[1] == {"step": 1}


def test_save_refuses_non_json_meta(tmp_path):
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(tmp_path / "c.npz", {}, {"x": np.int64(3)})
    assert os.listdir(tmp_path) == []


# Refused on load, always naming the file


def _saved(tmp_path, name="c.npz"):
    rng = np.random.default_rng(1)
    arrays = {"G": {"w": rng.standard_normal(20000)}, "D": {"b": rng.standard_normal(10)}}
    return save_checkpoint(tmp_path / name, arrays, {"step": 5})


def _rewrite_zip(src, dst, replace=None, drop=(), add=None):
    """Copy an npz member by member, replacing or dropping some (zip CRCs stay consistent)."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            key = item.filename[:-len(".npy")]
            if key in drop:
                continue
            if key in replace:
                with zout.open(item.filename, "w") as f:
                    np.lib.format.write_array(f, replace[key], allow_pickle=True)
            else:
                zout.writestr(item, zin.read(item.filename))
        for key, value in (add or {}).items():
            with zout.open(key + ".npy", "w") as f:
                np.lib.format.write_array(f, value, allow_pickle=True)


def _meta_array(info):
    return np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)


def _info(path):
    with np.load(path) as npz:
        return json.loads(npz["__meta__"].tobytes())


def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(CheckpointError, match="nope.npz"):
        load_checkpoint(path)


def test_truncated_file(tmp_path):
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_corrupt_bytes_in_the_middle(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_checksum_catches_changed_data_with_a_valid_zip(tmp_path):
    path = _saved(tmp_path)
    arrays, _ = load_checkpoint(path)
    changed = arrays["G"]["w"].copy()
    changed[1234] += 1.0
    bad = tmp_path / "bad.npz"
    _rewrite_zip(path, bad, replace={"G/w": changed})
    with pytest.raises(CheckpointError, match="'G/w' fails its checksum") as err:
        load_checkpoint(bad)
    assert str(bad) in str(err.value)


def test_plain_text_file(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("these are not the weights you are looking for\n")
    with pytest.raises(CheckpointError, match="not a zip") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_bare_npy_file_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    with open(path, "wb") as f:
        np.save(f, np.ones(3))
    with pytest.raises(CheckpointError, match="w.npz"):
        load_checkpoint(path)


class _Tripwire:
    """Unpickling this creates a file, so a test can prove that nothing was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_object_array_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    bomb = np.array([_Tripwire(marker)], dtype=object)
    # A genuine checkpoint whose metadata lists an extra member that is an object array.
    path = _saved(tmp_path)
    info = _info(path)
    info["arrays"]["D/evil"] = {"shape": [1], "dtype": "|O", "crc32": 0}
    evil = tmp_path / "evil.npz"
    _rewrite_zip(path, evil, replace={"__meta__": _meta_array(info)}, add={"D/evil": bomb})
    with pytest.raises(CheckpointError, match="pickle") as err:
        load_checkpoint(evil)
    assert str(evil) in str(err.value)
    # An npz written by hand with np.savez, pickles allowed, no metadata.
    hand = tmp_path / "hand.npz"
    np.savez(hand, weights=bomb, __meta__=bomb)
    with pytest.raises(CheckpointError, match="hand.npz"):
        load_checkpoint(hand)
    assert not marker.exists()


def test_future_version(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "FORMAT_VERSION", 2)
    path = save_checkpoint(tmp_path / "future.npz", {"G": {"w": np.ones(2)}}, {})
    monkeypatch.setattr(ckpt, "FORMAT_VERSION", 1)
    with pytest.raises(CheckpointError, match="version 2, newer") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("edit, message", [
    (lambda info: info.update(format="someone-else"), "not a minigan checkpoint"),
    (lambda info: info.update(version="1"), "invalid format version"),
    (lambda info: info.pop("arrays"), "'arrays' is missing"),
    (lambda info: info["arrays"]["G/w"].update(shape=[3, 4]), "'G/w' has shape"),
    (lambda info: info["arrays"]["G/w"].update(dtype="<f4"), "'G/w' has shape"),
    (lambda info: info["arrays"].update({"G/gone": info["arrays"]["G/w"]}), "missing: \\['G/gone"),
    (lambda info: info["arrays"].pop("D/b"), "unexpected: \\['D/b"),
    # crafted metadata: still a CheckpointError, never an AttributeError or a TypeError
    (lambda info: info["arrays"].update({"G/w": [1, 2]}), "metadata for array 'G/w' is malformed"),
    (lambda info: info["arrays"]["G/w"].update(shape="abc"), "'G/w' is malformed"),
    (lambda info: info["arrays"]["G/w"].update(crc32=None), "'G/w' is malformed"),
    (lambda info: info["groups"].append(["G"]), "malformed group name \\['G'\\]"),
    (lambda info: info["groups"].append("a/b"), "malformed group name 'a/b'"),
])
def test_metadata_mismatches(tmp_path, edit, message):
    path = _saved(tmp_path)
    info = _info(path)
    edit(info)
    bad = tmp_path / "bad.npz"
    _rewrite_zip(path, bad, replace={"__meta__": _meta_array(info)})
    with pytest.raises(CheckpointError, match=message) as err:
        load_checkpoint(bad)
    assert str(bad) in str(err.value)


def test_missing_meta_and_bad_json(tmp_path):
    path = _saved(tmp_path)
    no_meta = tmp_path / "no_meta.npz"
    _rewrite_zip(path, no_meta, drop={"__meta__"})
    with pytest.raises(CheckpointError, match="no __meta__"):
        load_checkpoint(no_meta)
    bad_json = tmp_path / "bad_json.npz"
    _rewrite_zip(path, bad_json,
                 replace={"__meta__": np.frombuffer(b"{not json", dtype=np.uint8)})
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(bad_json)


# check_state


def test_check_state_names_every_problem():
    expected = {"w": np.zeros((3, 4), np.float32), "b": ((4,), np.float32), "n": (2,),
                "gone": (1,)}
    got = {"w": np.zeros((4, 3), np.float32), "b": np.zeros(4, np.float64), "n": np.zeros(2),
           "extra": np.zeros(1)}
    with pytest.raises(CheckpointError) as err:
        check_state(expected, got, "group 'G'")
    text = str(err.value)
    for part in ("group 'G'", "missing keys: 'gone'", "unexpected keys: 'extra'",
                 "'w': shape (4, 3) in the checkpoint, expected (3, 4)",
                 "'b': dtype float64 in the checkpoint, expected float32"):
        assert part in text
    # A bare shape does not constrain the dtype.
    check_state(expected, {"w": np.zeros((3, 4), np.float32), "b": np.zeros(4, np.float32),
                           "n": np.zeros(2, np.int8), "gone": np.zeros(1)}, "ok")


# CheckpointManager


def test_manager_rotation_keeps_last_and_ignores_other_files(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    foreign = ["other.npz", "ckpt_final.npz", "best_00000001.npz", "ckpt_00000001.npz.bak"]
    for name in foreign:
        (tmp_path / name).write_text("not ours")
    for step in (1, 2, 3, 4, 5):
        path = manager.save({"G": {"w": np.full(2, step)}}, {"loss": 0.5}, step)
        assert path.name == f"ckpt_{step:08d}.npz"
    assert [p.name for p in manager.list()] == ["ckpt_00000004.npz", "ckpt_00000005.npz"]
    assert sorted(os.listdir(tmp_path)) == sorted(foreign + [p.name for p in manager.list()])
    assert manager.latest() == tmp_path / "ckpt_00000005.npz"
    found_path, arrays, meta = manager.load_latest()
    assert meta == {"loss": 0.5, "step": 5}
    np.testing.assert_array_equal(arrays["G"]["w"], [5, 5])
    # Saving an older step (a restarted run) never deletes the file just written.
    assert manager.save({}, {}, 0).exists()


def test_manager_falls_back_when_newest_is_corrupt(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=3)
    for step in (10, 20, 30):
        manager.save({"G": {"w": np.full(3, step)}}, {}, step)
    newest = manager.path_for(30)
    newest.write_bytes(newest.read_bytes()[:100])
    # A stray temp file from a killed writer is never picked up.
    (tmp_path / ".ckpt_00000040.npz.abc123.tmp").write_bytes(b"PK\x03\x04partial")
    with pytest.warns(RuntimeWarning, match="ckpt_00000030.npz"):
        assert manager.latest() == manager.path_for(20)
    for path in manager.list():
        path.write_text("garbage")
    with pytest.warns(RuntimeWarning):
        assert manager.latest() is None
    assert CheckpointManager(tmp_path / "missing").latest() is None


def test_manager_removes_its_own_stale_temp_files_at_start_up(tmp_path):
    """A writer killed mid-save leaves a checkpoint-sized hidden temp file; the next manager
    deletes those, and nothing else."""
    manager = CheckpointManager(tmp_path)
    manager.save({"G": {"w": np.ones(3)}}, {}, 1)
    stale = [".ckpt_00000002.npz.fba18351b33e.tmp", ".ckpt_00000273.npz.0123456789ab.tmp"]
    kept = ["ckpt_00000001.npz", ".other.npz.fba18351b33e.tmp", ".ckpt_00000002.npz.tmp",
            "notes.tmp", ".ckpt_00000002.npz.fba18351b33e.tmp.bak"]
    for name in stale + kept[1:]:
        (tmp_path / name).write_bytes(b"PK\x03\x04partial")
    removed = CheckpointManager(tmp_path).remove_stale_temps()  # the constructor ran it first
    assert removed == []
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
    assert CheckpointManager(tmp_path, prefix="other").list() == []  # another prefix: untouched
    assert sorted(os.listdir(tmp_path)) == sorted(kept)


# A writer killed mid-save


_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from minigan.checkpoint import save_checkpoint

    path = sys.argv[1]
    save_checkpoint(path, {"G": {"w": np.arange(10.0)}}, {"step": 1})
    # One 4 MB block stored under many names: 320 MB to write, little memory to build.
    block = np.ones(1 << 20, dtype=np.float32)
    big = {"G": {f"w{i}": block for i in range(80)}}
    print("ready", flush=True)
    save_checkpoint(path, big, {"step": 2})
    print("saved", flush=True)
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_save_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt_00000001.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        killed_with = None
        deadline = time.monotonic() + 30
        while killed_with is None and time.monotonic() < deadline and child.poll() is None:
            for entry in os.scandir(tmp_path):
                # Kill once the new checkpoint is partly written into its temp file.
                if entry.name.endswith(".tmp") and entry.stat().st_size > (1 << 20):
                    child.send_signal(signal.SIGKILL)
                    killed_with = entry.name
                    break
            else:
                time.sleep(0.001)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert killed_with is not None, "the child finished before it could be killed mid-write"
    assert child.returncode == -signal.SIGKILL
    assert "saved" not in child.stdout.read()
    child.stdout.close()
    arrays, meta = load_checkpoint(path)
    np.testing.assert_array_equal(arrays["G"]["w"], np.arange(10.0))
    assert meta == {"step": 1}
    # At most the stray temp file is left, and the manager ignores it.
    leftovers = sorted(os.listdir(tmp_path))
    assert leftovers in (["ckpt_00000001.npz"], sorted(["ckpt_00000001.npz", killed_with]))
    manager = CheckpointManager(tmp_path)
    assert manager.list() == [path]
    assert manager.latest() == path


# Save on one device, load on the other


@pytest.mark.gpu
def test_save_on_gpu_load_on_cpu(tmp_path, cuda):
    host = _sample_arrays()
    on_gpu = {k: ({n: cuda.asarray(a) for n, a in v.items()} if isinstance(v, dict)
                  else cuda.asarray(v)) for k, v in host.items()}
    path = save_checkpoint(tmp_path / "gpu.npz", on_gpu, {"step": 1})
    arrays, _ = load_checkpoint(path, device="cpu")
    assert isinstance(arrays["G"]["main.0.weight"], np.ndarray)
    _assert_same(host, arrays)


@pytest.mark.gpu
def test_save_on_cpu_load_on_gpu(tmp_path, cuda):
    host = _sample_arrays()
    path = save_checkpoint(tmp_path / "cpu.npz", host, {"step": 1})
    arrays, _ = load_checkpoint(path, device="cuda")
    assert isinstance(arrays["G"]["main.0.weight"], cuda.ndarray)
    assert isinstance(arrays["flat"], cuda.ndarray)
    _assert_same(host, arrays)
