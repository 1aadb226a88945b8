"""Cache location and atomic writes."""
from pathlib import Path

import pytest

from minigan.data import cache_dir
from minigan.data.cache import atomic_write, atomic_writer, env_flag


def test_cache_dir_resolution(tmp_path, monkeypatch):
    assert cache_dir() == tmp_path / "cache"  # MINIGAN_DATA, from the autouse fixture
    assert cache_dir("mnist") == tmp_path / "cache" / "mnist"
    monkeypatch.delenv("MINIGAN_DATA")
    assert cache_dir() == tmp_path / "xdg" / "minigan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == Path(tmp_path / "home" / ".cache" / "minigan")
    assert not cache_dir().exists()
    assert cache_dir("x", create=True).is_dir()


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    atomic_write(path, b"first")
    atomic_write(path, b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.bin"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_interrupted_write_keeps_old_file(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write(path, b"good")
    with pytest.raises(RuntimeError), atomic_writer(path) as f:
        f.write(b"half of the new con")
        raise RuntimeError("connection dropped")
    assert path.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("0", False),
                                             ("", False), ("false", False)])
def test_env_flag(monkeypatch, value, expected):
    monkeypatch.setenv("MINIGAN_SOMETHING", value)
    assert env_flag("MINIGAN_SOMETHING") is expected
