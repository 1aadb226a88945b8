"""One process trains a run folder at a time: a live lock refuses a second trainer, a dead
one is taken over, and a finished (or failed) run leaves no lock behind."""
import os
import subprocess
import sys

import pytest

from minigan.gan import run as run_mod
from minigan.gan.run import Run, RunFolderError, RunLock

from .conftest import _cfg


def _ring(tmp_path, **kw):
    return _cfg(tmp_path, "gan", dataset="ring8", **{"out": str(tmp_path / "run"), **kw})


@pytest.fixture
def other_process():
    """A live process that is not this one."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield p.pid
    p.kill()
    p.wait()


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_finished_run_leaves_no_lock(tmp_path, tiny_data):
    out = Run(_ring(tmp_path, steps=2)).train()
    assert not (out / RunLock.NAME).exists()
    run = Run.resume(out, steps=3)
    assert (out / RunLock.NAME).read_text().strip() == str(os.getpid())  # held while open
    run.train()
    assert not (out / RunLock.NAME).exists()


def test_a_live_trainer_refuses_a_second_one(tmp_path, tiny_data, other_process):
    out = Run(_ring(tmp_path, steps=2)).train()
    ckpts = sorted((out / "checkpoints").iterdir())
    (out / RunLock.NAME).write_text(f"{other_process}\n")
    with pytest.raises(RunFolderError, match=rf"being trained by process {other_process}"):
        Run.resume(out, steps=4)
    with pytest.raises(RunFolderError, match="being trained"):
        Run(_ring(tmp_path, steps=2), overwrite=True)
    assert sorted((out / "checkpoints").iterdir()) == ckpts  # nothing touched
    assert (out / RunLock.NAME).read_text().strip() == str(other_process)


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, tiny_data):
    out = Run(_ring(tmp_path, steps=2)).train()
    (out / RunLock.NAME).write_text(f"{_dead_pid()}\n")
    Run.resume(out, steps=3).train()
    assert not (out / RunLock.NAME).exists()


def test_a_run_that_cannot_start_leaves_neither_lock_nor_folder(tmp_path, tiny_data,
                                                                monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("no networks for this")

    monkeypatch.setattr(run_mod, "build_models", broken)  # fails after the lock is taken
    with pytest.raises(ValueError, match="no networks"):
        Run(_ring(tmp_path, steps=2))
    assert not (tmp_path / "run").exists()
