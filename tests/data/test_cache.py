"""Cache location and environment flags (atomic writes: tests/test_atomic.py)."""
from pathlib import Path

import pytest

from minigan.data import cache_dir
from minigan.data.cache import env_flag


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


@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("0", False),
                                             ("", False), ("false", False)])
def test_env_flag(monkeypatch, value, expected):
    monkeypatch.setenv("MINIGAN_SOMETHING", value)
    assert env_flag("MINIGAN_SOMETHING") is expected
