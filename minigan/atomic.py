"""Atomic file writes, shared by everything minigan saves: checkpoints, grids, GIFs, plots,
config.json, metrics.jsonl rewrites, .npy samples, classifier weights and the data cache.

The data goes to a new temporary file in the target's own folder (a rename is atomic only
within one file system), is flushed and fsynced, and only then renamed over the target; the
folder is fsynced last so that the rename survives a crash too. On any error, Ctrl-C included,
the temporary file is removed and the target is left as it was.

Temporary names are ``.NAME.XXXXXXXXXXXX.tmp``: hidden, and never matching the checkpoint
manager's ``ckpt_*.npz`` pattern. The file is created with mode 0666 less the umask, as
``open()`` would create it; ``tempfile.mkstemp`` would make every output private (0600).
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

__all__ = ["atomic_write", "atomic_writer", "fsync_dir"]


def fsync_dir(folder) -> None:
    """Make a rename inside ``folder`` durable (POSIX; a no-op where folders cannot be opened,
    as on Windows)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create_temp(path: Path) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path}")


@contextlib.contextmanager
def _naming(path: Path, only_unnamed: bool = False):
    """Re-raise an OSError of our own file operations with the target in the message (the
    temporary file's name would only confuse), keeping its type (PermissionError, ...).

    ``only_unnamed``: for errors raised by the caller's code inside the ``with``, rename only
    those that name no file of their own (a write to our file that hits a full disk names none;
    a failed ``open`` of some other file names that file, and is left as it is)."""
    try:
        yield
    except OSError as e:
        if e.errno is None or (only_unnamed and e.filename is not None):
            raise
        raise type(e)(e.errno, f"cannot write {path}: {e.strerror}") from e


def file_in_the_way(folder: Path) -> Path | None:
    """The nearest existing entry of ``folder`` or its parents when it is not a folder (a file
    where a folder must be), else None."""
    for p in (folder, *folder.parents):
        if p.exists() or p.is_symlink():
            return None if p.is_dir() else p
    return None


def _make_parents(path: Path) -> None:
    """Create ``path``'s missing parent folders; a file in the way is named as such (mkdir
    would only say "File exists"). Called under ``_naming``, which adds the target."""
    blocker = file_in_the_way(path.parent)
    if blocker is not None:
        raise NotADirectoryError(errno.ENOTDIR, f"{blocker} is not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def atomic_writer(path, text: bool = False):
    """``with atomic_writer(path) as f: ...`` writes ``path`` atomically through ``f``, a binary
    file (a UTF-8 text file with ``text=True``). Parent folders are created. Failing to create,
    write, sync or rename the file raises an OSError that names ``path``."""
    path = Path(path)
    with _naming(path):
        _make_parents(path)
        fd, tmp = _create_temp(path)
    f = None
    try:
        f = os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb")
        with _naming(path, only_unnamed=True):  # e.g. a full disk during f.write
            yield f
        with _naming(path):
            f.flush()
            os.fsync(f.fileno())
            f.close()
            os.replace(tmp, path)
    except BaseException:
        # close() flushes what is buffered, which fails again on a full disk; that second
        # error would hide the first (and the temporary file is deleted anyway)
        with contextlib.suppress(OSError):
            if f is not None:
                f.close()
            else:
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write(path, data) -> Path:
    """Write ``data`` (bytes, or str as UTF-8) to ``path`` atomically."""
    with atomic_writer(path, text=isinstance(data, str)) as f:
        f.write(data)
    return Path(path)
