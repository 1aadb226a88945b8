"""Where data sets are cached, and how files get there safely.

The cache directory is, in order: ``$MINIGAN_DATA``, ``$XDG_CACHE_HOME/minigan``, or
``~/.cache/minigan``. Every write goes through ``minigan.atomic``: a temporary file in the
destination's own directory, fsynced and then renamed over the destination, so an interrupted
download or a crash never leaves a half-written file under the final name.
"""
from __future__ import annotations

import hashlib
import os
import sys
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


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
