"""minigan.save / minigan.load: torch.save and torch.load for state dicts and plain data,
without pickle."""
import io
import math
from collections import OrderedDict

import numpy as np
import pytest

import minigan
import minigan.nn as nn
from minigan import backend
from minigan.checkpoint import CheckpointError


def _same(a, b):
    """Equal in value and in type, all the way down."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, minigan.Tensor):
        assert a.device == b.device and a.requires_grad == b.requires_grad
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    elif isinstance(a, np.ndarray) or backend.is_cupy_array(a):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert type(k) is type(next(x for x in b if x == k))
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def test_round_trip_keeps_values_and_types(tmp_path, xp):
    device = "cpu" if xp is np else "cuda"
    obj = OrderedDict([
        ("tensor", minigan.Tensor(xp.asarray([1.5, -2.0], dtype=np.float32), requires_grad=True)),
        ("ints", minigan.Tensor(xp.asarray([[1, 2]], dtype=np.int64))),
        ("array", xp.asarray(np.arange(6, dtype=np.float64).reshape(2, 3))),
        ("zero_d", xp.asarray(np.array(True))),
        ("scalar", np.float32(2.5)),
        ("float64 scalar", np.float64(0.1)),
        ("int scalar", np.int64(-3)),
        ("numbers", [1, 2.0, True, None, float("inf"), float("-inf"), float("nan"), 2 ** 70]),
        ("tuple", (1, ("nested", [3]))),
        (7, "an int key"),
        ((1, 2), {"tuple key": {False: 0.1}}),
        (None, {}),
        ("empty", ([], (), "")),
    ])
    path = tmp_path / "obj.pt"
    minigan.save(obj, path)
    back = minigan.load(path)
    _same(obj, back)
    assert back["tensor"].device == device
    assert minigan.load(path, map_location="cpu")["array"].__class__ is np.ndarray


def test_a_training_state_saved_and_loaded_resumes_exactly(tmp_path):
    def model():
        minigan.manual_seed(0)
        return nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.2),
                             nn.Linear(8, 1))

    rng = np.random.default_rng(0)
    batches = [minigan.tensor(rng.normal(size=(6, 3)).astype(np.float32)) for _ in range(6)]

    def steps(net, opt, xs):
        for x in xs:
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()

    net, = [model()]
    opt = minigan.optim.Adam(net.parameters(), lr=1e-2)
    steps(net, opt, batches[:3])
    minigan.save({"model": net.state_dict(), "opt": opt.state_dict(), "step": 3},
                 tmp_path / "ckpt.pt")
    steps(net, opt, batches[3:])

    state = minigan.load(tmp_path / "ckpt.pt")
    net2 = model()
    net2.load_state_dict(state["model"])
    opt2 = minigan.optim.Adam(net2.parameters(), lr=1e-2)
    opt2.load_state_dict(state["opt"])
    assert state["step"] == 3
    steps(net2, opt2, batches[3:])
    for (k, a), (_, b) in zip(net.state_dict().items(), net2.state_dict().items()):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b), err_msg=k)


def test_open_files_work_too():
    buf = io.BytesIO()
    minigan.save({"w": minigan.ones(2, 2)}, buf)
    buf.seek(0)
    np.testing.assert_array_equal(minigan.load(buf)["w"].numpy(), np.ones((2, 2)))
    with pytest.raises(TypeError, match="f must be a path or a binary file, got int"):
        minigan.save({}, 3)


@pytest.mark.parametrize("obj, message", [
    ({"net": nn.Linear(2, 2)}, r"obj\['net'\]: a Linear cannot be saved; save its state_dict"),
    ([1, lambda: 0], r"obj\[1\]: a function cannot be saved"),
    ({"a": np.array([object()])}, r"obj\['a'\]: an array of Python objects cannot be saved"),
    ({object(): 1}, "a dict key of type object"),
    ({"s": {1, 2}}, r"obj\['s'\]: a set cannot be saved"),
])
def test_what_would_need_pickle_is_refused_and_nothing_is_written(tmp_path, obj, message):
    path = tmp_path / "old.pt"
    minigan.save({"kept": 1}, path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=message):
        minigan.save(obj, path)
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.pt"]


def test_loading_refuses_what_it_cannot_trust(tmp_path):
    with pytest.raises(ValueError, match="weights_only=False would mean unpickling"):
        minigan.load(tmp_path / "x.pt", weights_only=False)
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(CheckpointError, match="not a zip"):
        minigan.load(bad)
    other = tmp_path / "ckpt.npz"  # a checkpoint, but not one minigan.save wrote
    minigan.checkpoint.save_checkpoint(other, {"G": {"w": np.zeros(2)}}, {"step": 1})
    with pytest.raises(CheckpointError, match="not one minigan.save wrote"):
        minigan.load(other)
    forged = tmp_path / "forged.pt"  # a well-formed file whose tree asks for a missing member
    minigan.checkpoint.save_checkpoint(forged, {}, {"kind": "minigan.save", "version": 1,
                                                    "tree": {"$t": 5}})
    with pytest.raises(CheckpointError, match="no array member 5"):
        minigan.load(forged)
    minigan.checkpoint.save_checkpoint(forged, {}, {"kind": "minigan.save", "version": 1,
                                                    "tree": {"$eval": "1"}})
    with pytest.raises(CheckpointError, match="an unknown entry"):
        minigan.load(forged)
    minigan.checkpoint.save_checkpoint(forged, {}, {"kind": "minigan.save", "version": 1,
                                                    "tree": {"$d": [[{"$tu": [{"$l": []}]},
                                                                     1]]}})
    with pytest.raises(CheckpointError, match="an unhashable dict key"):
        minigan.load(forged)


def test_a_torch_file_is_refused_not_unpickled(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "t.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(CheckpointError, match="not a minigan checkpoint"):
        minigan.load(path)


def test_gpu_tensors_need_a_gpu_or_map_location(tmp_path, monkeypatch):
    path = tmp_path / "g.pt"
    minigan.checkpoint.save_checkpoint(path, {"a0": np.ones(2, np.float32)},
                                       {"kind": "minigan.save", "version": 1,
                                        "tree": {"$t": 0, "device": "cuda",
                                                 "requires_grad": False}})
    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    with pytest.raises(backend.DeviceError, match="load it with map_location='cpu'"):
        minigan.load(path)
    assert minigan.load(path, map_location="cpu").device == "cpu"


def test_a_failure_while_writing_leaves_the_old_file(tmp_path, monkeypatch):
    from minigan import checkpoint
    path = tmp_path / "state.pt"
    minigan.save({"kept": minigan.ones(2)}, path)
    before = path.read_bytes()
    real, seen = checkpoint._to_host, []

    def failing(key, value):  # the disk fills up at the second array
        seen.append(key)
        if len(seen) == 2:
            raise OSError(28, "No space left on device")
        return real(key, value)
    monkeypatch.setattr(checkpoint, "_to_host", failing)
    with pytest.raises(OSError, match="No space left"):
        minigan.save({"a": minigan.zeros(3), "b": minigan.zeros(3)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]


def test_torch_arguments_that_would_pickle_are_refused(tmp_path):
    import pickle
    with pytest.raises(TypeError, match="pickle_module is not supported"):
        minigan.save({}, tmp_path / "a.pt", pickle)
    minigan.save({}, tmp_path / "a.pt", _use_new_zipfile_serialization=True)
    with pytest.raises(TypeError, match="pickle_module and pickle arguments"):
        minigan.load(tmp_path / "a.pt", encoding="latin1")
    with pytest.raises(NotImplementedError, match="mmap=True"):
        minigan.load(tmp_path / "a.pt", mmap=True)
    assert minigan.load(tmp_path / "a.pt", weights_only=True) == {}
