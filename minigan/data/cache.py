"""Where data sets are cached, and how files get there safely.

The cache directory is, in order: ``$MINIGAN_DATA``, ``$XDG_CACHE_HOME/minigan``, or
``~/.cache/minigan``. Every write goes to a temporary file in the destination's own directory,
is fsynced and then renamed over the destination, so an interrupted download or a crash never
leaves a half-written file under the final name (a rename within one file system is atomic).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from pathlib import Path

ENV_DATA = "MINIGAN_DATA"
ENV_OFFLINE = "MINIGAN_OFFLINE"            # no network at all: neither mirrors nor pip
ENV_SKIP_MIRRORS = "MINIGAN_SKIP_MIRRORS"  # skip the dataset mirrors, still try the pip fallback
ENV_QUIET = "MINIGAN_QUIET"                # silence the progress messages on stderr


def env_flag(name: str) -> bool:
    """True when the environment variable is set to something other than '', '0' or 'false'."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def cache_dir(subdir: str | None = None, create: bool = False) -> Path:
    """The minigan data cache (see the module docstring), or a sub-folder of it."""
    if os.environ.get(ENV_DATA):
        base = Path(os.environ[ENV_DATA]).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "minigan"
    path = base / subdir if subdir else base
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def say(message: str) -> None:
    """A progress line on stderr: fetching data takes long enough that users want to know why."""
    if not env_flag(ENV_QUIET):
        print(f"minigan.data: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def atomic_writer(path):
    """Open a temporary file next to ``path``; on clean exit fsync it and rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; cached data is not secret
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write(path, data: bytes) -> Path:
    """Write bytes to ``path`` atomically (see `atomic_writer`)."""
    with atomic_writer(path) as f:
        f.write(data)
    return Path(path)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; directories cannot be opened on Windows.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
