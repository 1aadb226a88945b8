"""minigan.atomic: whole-file replacement, clean-up on errors, and ordinary permissions."""
import os
from contextlib import contextmanager

import numpy as np
import pytest

from minigan.atomic import atomic_write, atomic_writer


@contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    atomic_write(path, b"first")
    atomic_write(path, b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.bin"]


def test_text_is_written_as_utf8(tmp_path):
    path = atomic_write(tmp_path / "t.json", '{"name": "Fréchet"}\n')
    assert path.read_bytes() == '{"name": "Fréchet"}\n'.encode("utf-8")


@pytest.mark.parametrize("error", [RuntimeError("connection dropped"), KeyboardInterrupt()])
def test_interrupted_write_keeps_old_file_and_leaves_no_temporary(tmp_path, error):
    path = tmp_path / "f.bin"
    atomic_write(path, b"good")
    seen = []
    with pytest.raises(type(error)), atomic_writer(path) as f:
        seen += [p.name for p in tmp_path.iterdir() if p.name != "f.bin"]
        f.write(b"half of the new con")
        raise error
    assert path.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    # while writing, the temporary was hidden, beside the target, and named after it
    assert len(seen) == 1 and seen[0].startswith(".f.bin.") and seen[0].endswith(".tmp")


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_new_files_get_the_umask_like_open_does(tmp_path, mask, mode):
    """mkstemp would make every output 0600; an atomic file must look like any other."""
    with umask(mask):
        path = atomic_write(tmp_path / "f.bin", b"x")
        with open(tmp_path / "plain.bin", "wb"):
            pass
    assert path.stat().st_mode & 0o777 == mode == (tmp_path / "plain.bin").stat().st_mode & 0o777


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_training_outputs_are_not_private(tmp_path, monkeypatch):
    """Grids, the GIF, config.json, metrics rewrites, checkpoints and .npy samples all go
    through the atomic writer, so a run folder can be shared like any other."""
    from minigan.checkpoint import save_checkpoint
    from minigan.cli import _save_npy
    from minigan.gan import images

    with umask(0o022):
        imgs = np.zeros((4, 1, 8, 8), np.float32)
        grid = images.save_grid(imgs, tmp_path / "samples" / "step_1.png", nrow=2)
        gif = images.save_gif([grid], tmp_path / "progress.gif")
        ckpt = save_checkpoint(tmp_path / "ckpt.npz", {"w": np.ones(3, np.float32)}, {"step": 1})
        _save_npy(tmp_path / "x.npy", imgs)
    for p in (grid, gif, ckpt, tmp_path / "x.npy"):
        assert p.stat().st_mode & 0o777 == 0o644, p
    assert np.load(tmp_path / "x.npy", allow_pickle=False).shape == (4, 1, 8, 8)


def test_unwritable_targets_are_named_in_the_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"x")
    target = blocker / "sub" / "out.png"  # a folder would have to be made inside a file
    with pytest.raises(OSError, match=f"cannot write {target}"):
        atomic_write(target, b"data")
    assert blocker.read_bytes() == b"x"


def test_cli_reports_an_unwritable_output_without_a_traceback(tmp_path, capsys):
    from minigan.checkpoint import save_checkpoint
    from minigan.cli import main
    from minigan.gan.models import build_models

    G, _ = build_models("gan", (2,), 0, 3)
    meta = {"config": {"preset": "gan", "z_dim": 3, "dataset": "ring8"}, "num_classes": 0,
            "sample_shape": [2], "dataset_name": "ring8", "step": 1}
    ckpt = save_checkpoint(tmp_path / "ckpt.npz", {"G": G.state_dict()}, meta)
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"x")
    assert main(["sample", str(ckpt), "--n", "4", "--out", str(blocker / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minigan sample: ") and f"cannot write {blocker / 'x.png'}" in err


def test_a_file_in_the_way_is_named_as_such(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match=f"cannot write {blocker / 'x.png'}: "
                                                 f"{blocker} is not a folder"):
        atomic_write(blocker / "x.png", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_full_disk_while_writing_names_the_file(tmp_path):
    """An OSError raised by a write inside the ``with`` (it names no file of its own) gets the
    target's name, as errors of the writer's own sync and rename do."""
    import errno
    path = tmp_path / "f.bin"
    with pytest.raises(OSError, match=f"cannot write {path}: No space left") as err, \
            atomic_writer(path) as f:
        f.write(b"some")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert err.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
    # an error about some other file already names that file: left as it is
    with pytest.raises(FileNotFoundError) as err, atomic_writer(path):
        open(tmp_path / "missing.txt")
    assert "cannot write" not in str(err.value) and "missing.txt" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_close_does_not_hide_the_first_error(tmp_path, monkeypatch):
    """On a full disk, closing the temporary file flushes its buffer and fails again; the error
    the caller sees is still the first one, with the target named."""
    import errno
    real_fdopen = os.fdopen

    class Failing:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self):
            self.f.close()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Failing(real_fdopen(*a, **k)))
    path = tmp_path / "f.bin"
    with pytest.raises(OSError, match=f"cannot write {path}: No space left"):
        atomic_write(path, b"data")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
