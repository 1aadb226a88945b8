"""One checkpoint file format for models, optimizer states and training metadata.

A checkpoint is an ordinary ``.npz`` (a zip of ``.npy`` members) that ``numpy.load`` reads with
``allow_pickle=False``:

* every array lives under ``"group/name"`` (``"G/main.0.weight"``, ``"opt_G/state.3.exp_avg"``),
  or under ``"name"`` for a flat mapping;
* the reserved member ``__meta__`` holds UTF-8 JSON as a 1-d ``uint8`` array: the format name and
  version, the caller's metadata (config, step, RNG states, ...) and, for every array, its shape,
  dtype and CRC-32, so loading checks keys, shapes and contents, not just the zip structure.

Writes are atomic: the file is written to a temporary file in the same folder, fsynced, moved over
the target with ``os.replace`` and the folder is fsynced, so a crash or a SIGKILL at any moment
leaves either the old checkpoint or the new one, never a half-written file under the real name.
Nothing is ever unpickled: object arrays are refused on save and on load.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from . import backend
from .atomic import atomic_writer
from .notices import Notice

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "META_KEY", "CheckpointError", "CheckpointWarning",
           "save_checkpoint", "load_checkpoint", "check_state", "CheckpointManager",
           "resolve_checkpoint"]

FORMAT_NAME = "minigan-checkpoint"
FORMAT_VERSION = 1
META_KEY = "__meta__"
_SEP = "/"
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read: corrupt, truncated, foreign, too new, mismatched."""


class CheckpointWarning(Notice, RuntimeWarning):
    """A message for the person running minigan about a checkpoint file (one skipped because it
    does not load), printed as one line, ``warning: <message>`` (see ``minigan.notices``)."""


def _check_name(name, what: str) -> str:
    # '/' separates group from name in the file, and '__' names are ours (e.g. __meta__); either
    # would make loading ambiguous, so refuse them at save time instead of guessing later.
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{what} names must be non-empty strings, got {name!r}")
    if _SEP in name:
        raise CheckpointError(f"{what} name {name!r} contains '{_SEP}', which separates groups "
                              "from array names in a checkpoint")
    if name.startswith("__"):
        raise CheckpointError(f"{what} name {name!r}: names starting with '__' are reserved")
    return name


def _flatten(arrays: Mapping) -> tuple[dict, list[str]]:
    """``{"G": {"w": a}, "step_arr": b}`` -> ``({"G/w": a, "step_arr": b}, ["G"])``.

    Only names are checked here; arrays are converted one by one while writing, so a large GPU
    model is never copied to the host all at once.
    """
    if not isinstance(arrays, Mapping):
        raise CheckpointError(f"arrays must be a mapping, got {type(arrays).__name__}")
    flat, groups = {}, []
    for top, value in arrays.items():
        _check_name(top, "group" if isinstance(value, Mapping) else "array")
        if isinstance(value, Mapping):
            groups.append(top)  # kept so that empty groups survive the round trip
            for name, arr in value.items():
                key = top + _SEP + _check_name(name, "array")
                if isinstance(arr, Mapping):
                    raise CheckpointError(f"{key!r} is a mapping: groups nest one level only "
                                          "(a group holds arrays, not other groups)")
                flat[key] = arr
        else:
            flat[top] = value
    for key, arr in flat.items():
        # refused before the disk is touched; numpy and cupy arrays say their dtype without a
        # copy (lists and scalars are checked again once converted, in _to_host)
        dtype = getattr(arr, "dtype", None)
        if arr is None or (dtype is not None and np.dtype(dtype).hasobject):
            raise CheckpointError(_object_message(key, arr))
    return flat, groups


def _object_message(key: str, value) -> str:
    if value is None:
        what = "is None"
    else:
        what = f"has dtype {np.dtype(value.dtype)}, which holds Python objects"
    return f"array {key!r} {what}; checkpoints store plain arrays only, never pickles"


def _crc32(a: np.ndarray) -> int:
    # A byte view of the C-ordered data; reshape(-1) also handles 0-d arrays.
    return zlib.crc32(a.reshape(-1).view(np.uint8)) if a.size else 0


def _to_host(key: str, value) -> np.ndarray:
    a = backend.to_numpy(value)
    if a.dtype.hasobject:  # an object array, or a structured dtype with an object field
        raise CheckpointError(_object_message(key, a))
    # Store C order so the checksum covers the same bytes that load_checkpoint sees.
    return a if a.flags.c_contiguous else a.copy(order="C")


def _check_meta(meta) -> dict:
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"meta must be a dict, got {type(meta).__name__}")
    meta = dict(meta)
    try:
        json.dumps(meta)
        return meta
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"meta must be plain JSON (dict, list, str, int, float, bool, None): "
                              f"{exc}") from exc


def _write_npz(fileobj, flat: dict, groups: list[str], meta: dict, compress: bool) -> None:
    # Written with zipfile + numpy's own .npy writer (what np.savez does inside) rather than
    # np.savez(**arrays): savez's keyword API clashes with array names such as "file", and this
    # way allow_pickle=False is enforced on every member.
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    header = {}
    with zipfile.ZipFile(fileobj, mode="w", compression=compression, allowZip64=True) as zf:
        for key, value in flat.items():
            a = _to_host(key, value)
            header[key] = {"shape": list(a.shape), "dtype": a.dtype.str, "crc32": _crc32(a)}
            with zf.open(key + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, a, allow_pickle=False)
            del a  # drop the host copy of a GPU array before converting the next one
        # The metadata goes last because it carries the checksums of everything before it.
        text = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION, "groups": groups,
                           "arrays": header, "meta": meta})
        meta_arr = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        with zf.open(META_KEY + ".npy", mode="w", force_zip64=True) as member:
            np.lib.format.write_array(member, meta_arr, allow_pickle=False)


def save_checkpoint(path, arrays: Mapping, meta: dict | None = None, *,
                    compress: bool = False) -> Path:
    """Write ``arrays`` (a mapping of groups of arrays, or of arrays) and ``meta`` atomically.

    ``arrays`` may hold NumPy or CuPy arrays; ``meta`` must be plain JSON. ``compress`` deflates
    the members (smaller, several times slower). Parent folders are created. Returns the path.
    """
    path = Path(path)
    flat, groups = _flatten(arrays)
    meta = _check_meta({} if meta is None else meta)  # fail before touching the disk
    # a temporary file beside the target, fsynced, renamed over it (see minigan.atomic); its
    # hidden ".ckpt_....tmp" name never matches CheckpointManager's pattern
    with atomic_writer(path) as f:
        _write_npz(f, flat, groups, meta, compress)
    return path


def _read_meta(npz, where: str) -> dict:
    if META_KEY not in npz.files:
        raise CheckpointError(f"{where} is not a minigan checkpoint (no {META_KEY} entry)")
    raw = npz[META_KEY]
    if raw.dtype != np.uint8 or raw.ndim > 1:
        raise CheckpointError(f"{where}: {META_KEY} must be a uint8 vector, got "
                              f"{raw.dtype} with shape {raw.shape}")
    try:
        info = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{where}: metadata is not valid JSON ({exc})") from exc
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        got = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise CheckpointError(f"{where} is not a minigan checkpoint (format {got!r}, "
                              f"expected {FORMAT_NAME!r})")
    version = info.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{where}: invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{where} has format version {version}, newer than this minigan "
                              f"reads (up to {FORMAT_VERSION}); upgrade minigan to load it")
    for field, kind in (("arrays", dict), ("groups", list), ("meta", dict)):
        if not isinstance(info.get(field), kind):
            raise CheckpointError(f"{where}: metadata field {field!r} is missing or malformed")
    for key, spec in info["arrays"].items():
        if not _valid_spec(spec):
            raise CheckpointError(f"{where}: metadata for array {key!r} is malformed (expected "
                                  f"{{'shape': [ints], 'dtype': str, 'crc32': int}}, got "
                                  f"{_short(spec)})")
    for group in info["groups"]:
        if not isinstance(group, str) or not group or _SEP in group:
            raise CheckpointError(f"{where}: metadata lists a malformed group name "
                                  f"{_short(group)}")
    return info


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _valid_spec(spec) -> bool:
    return (isinstance(spec, dict) and isinstance(spec.get("shape"), list)
            and all(_is_int(n) and n >= 0 for n in spec["shape"])
            and isinstance(spec.get("dtype"), str) and _is_int(spec.get("crc32")))


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _read_arrays(npz, info: dict, where: str) -> dict:
    header = info["arrays"]
    stored = [f for f in npz.files if f != META_KEY]
    missing = sorted(set(header) - set(stored))
    unexpected = sorted(set(stored) - set(header))
    if missing or unexpected:
        raise CheckpointError(f"{where}: arrays do not match its metadata "
                              f"(missing: {missing}, unexpected: {unexpected})")
    out = {}
    for key in stored:
        # allow_pickle=False makes numpy raise ValueError on an object member before it reads
        # a single pickled byte.
        a = npz[key]
        spec = header[key]
        if list(a.shape) != spec.get("shape") or a.dtype.str != spec.get("dtype"):
            raise CheckpointError(f"{where}: array {key!r} has shape {a.shape} and dtype "
                                  f"{a.dtype.str}, metadata says {spec.get('shape')} and "
                                  f"{spec.get('dtype')}")
        if _crc32(a if a.flags.c_contiguous else a.copy(order="C")) != spec.get("crc32"):
            raise CheckpointError(f"{where}: array {key!r} fails its checksum (corrupt data)")
        out[key] = a
    return out


def load_checkpoint(path, device: str = "cpu") -> tuple[dict, dict]:
    """Read a checkpoint (a path, or a binary file open for reading); returns ``(arrays,
    meta)`` with arrays nested as they were saved.

    Arrays are moved to ``device`` ("cpu" or "cuda"), whichever device saved them. Every problem
    with the file raises :class:`CheckpointError` naming the file and what is wrong.
    """
    device = backend.normalize_device(device)  # a missing GPU is a DeviceError, not a bad file
    if hasattr(path, "read"):  # an open binary file: read whole, then checked the same way
        where = f"checkpoint {getattr(path, 'name', type(path).__name__)}"
        data = path.read()
        if not isinstance(data, bytes):
            raise TypeError(f"{where}: the file must be opened in binary mode ('rb')")
        magic, path = data[:len(_ZIP_MAGIC)], io.BytesIO(data)
    else:
        path = Path(path)
        where = f"checkpoint {path}"
        try:
            with open(path, "rb") as f:
                magic = f.read(len(_ZIP_MAGIC))
        except OSError as exc:
            raise CheckpointError(f"cannot read {where}: {exc}") from exc
    if magic != _ZIP_MAGIC:
        # Checked here so that np.load never treats the file as a bare .npy or a pickle.
        raise CheckpointError(f"{where} is truncated or corrupt (not a zip/npz file)")
    try:
        # the file opened here, not by np.load: given a path, np.load leaves its file open when
        # the zip is bad (a ResourceWarning for every torn checkpoint skipped)
        with (open(path, "rb") if isinstance(path, Path) else contextlib.nullcontext(path)) as f, \
                np.load(f, allow_pickle=False) as npz:
            info = _read_meta(npz, where)
            flat = _read_arrays(npz, info, where)
    except CheckpointError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc):
            raise CheckpointError(f"{where} contains an object (pickled) array; refused, "
                                  f"checkpoints never unpickle: {exc}") from exc
        raise CheckpointError(f"{where} is truncated or corrupt: {exc}") from exc
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, KeyError, MemoryError,
            NotImplementedError, RuntimeError) as exc:
        # RuntimeError/NotImplementedError: encrypted or oddly compressed members; MemoryError:
        # a corrupt .npy header that claims an enormous shape.
        raise CheckpointError(f"{where} is truncated or corrupt (not a valid zip/npz: "
                              f"{type(exc).__name__}: {exc})") from exc
    arrays = {g: {} for g in info["groups"]}
    for key, a in flat.items():
        a = backend.to_device(a, device)
        if _SEP in key:
            group, name = key.split(_SEP, 1)
            arrays.setdefault(group, {})[name] = a
        else:
            arrays[key] = a
    return arrays, info["meta"]


def _shape_dtype(spec):
    """``spec`` is an array-like, a ``(shape, dtype)`` pair or a bare shape."""
    if hasattr(spec, "shape"):
        return tuple(spec.shape), getattr(spec, "dtype", None)
    spec = tuple(spec)
    if len(spec) == 2 and isinstance(spec[0], (tuple, list)):
        return tuple(spec[0]), spec[1]
    return spec, None


def check_state(expected: Mapping, got: Mapping, where: str) -> None:
    """Raise :class:`CheckpointError` listing every missing key, unexpected key and shape or dtype
    mismatch between ``expected`` (key -> array, ``(shape, dtype)`` or shape) and ``got``.

    ``where`` names what is being checked, e.g. ``"checkpoint run/ckpt.npz, group 'G'"``.
    """
    problems = []
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    if missing:
        problems.append("missing keys: " + ", ".join(map(repr, missing)))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(map(repr, unexpected)))
    for key, spec in expected.items():
        if key not in got:
            continue
        shape, dtype = _shape_dtype(spec)
        arr = got[key]
        if tuple(arr.shape) != shape:
            problems.append(f"{key!r}: shape {tuple(arr.shape)} in the checkpoint, "
                            f"expected {shape}")
        elif dtype is not None and np.dtype(arr.dtype) != np.dtype(dtype):
            problems.append(f"{key!r}: dtype {np.dtype(arr.dtype)} in the checkpoint, "
                            f"expected {np.dtype(dtype)}")
    if problems:
        raise CheckpointError(f"{where}: " + "; ".join(problems))


def _numbered(folder: Path, pattern) -> list[tuple[int, Path]]:
    """(step, path) of the files in ``folder`` whose names match ``pattern`` (one group, the
    step), oldest step first; none for a missing folder."""
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        m = pattern.fullmatch(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1)), entry))
    return sorted(found)


def resolve_checkpoint(path, prefix: str = "ckpt") -> Path:
    """The checkpoint file that a command reading one should use for ``path``: the path itself
    unless it is a folder; for a run folder (``minigan train --out``), the newest checkpoint
    that loads in its ``checkpoints/``, or among the folder's own ``{prefix}_*.npz``.
    Unreadable ones are skipped with a warning, as a resume skips them. Nothing is written or
    deleted: a run may be saving into that folder at the time. A folder without a checkpoint
    that loads is a ``CheckpointError`` saying where it looked."""
    path = Path(path)
    if not path.is_dir():
        return path
    pattern = re.compile(re.escape(prefix) + r"_(\d{8,})\.npz")
    folders = [path / "checkpoints", path]
    for folder in folders:
        for _, candidate in reversed(_numbered(folder, pattern)):
            try:
                load_checkpoint(candidate)
            except CheckpointError as exc:
                warnings.warn(f"skipping unreadable checkpoint: {exc}", CheckpointWarning,
                              stacklevel=2)
                continue
            return candidate
    raise CheckpointError(f"{path} is a folder without a checkpoint that loads (looked for "
                          f"{prefix}_*.npz in {folders[0]} and in {path})")


class CheckpointManager:
    """Numbered checkpoints ``{prefix}_{step:08d}.npz`` in one folder, keeping the newest few.

    ``latest()`` returns the newest checkpoint that loads, skipping (with a warning) any that are
    corrupt, so a bad final file costs one interval of training, not the run.
    """

    def __init__(self, folder, keep_last: int | None = 3, prefix: str = "ckpt"):
        if keep_last is not None and keep_last < 1:
            raise ValueError(f"keep_last must be at least 1 (or None to keep all), got {keep_last}")
        self.folder = Path(folder)
        self.keep_last = keep_last
        self.prefix = prefix
        # Only our own names: other files and stray ".name.XXXX.tmp" temp files never match.
        self._pattern = re.compile(re.escape(prefix) + r"_(\d{8,})\.npz")
        self.remove_stale_temps()

    def remove_stale_temps(self) -> list[Path]:
        """Delete the temporary files (``.ckpt_XXXXXXXX.npz.<hex>.tmp``, see minigan.atomic)
        that a writer killed mid-save leaves behind; each is a checkpoint's size. Only this
        manager's own pattern is touched. Called once at start-up: a second process saving
        into the same folder at the same time is not supported. Returns what was removed."""
        stale = re.compile(r"\." + self._pattern.pattern + r"\.[0-9a-f]+\.tmp")
        removed = []
        if self.folder.is_dir():
            for entry in self.folder.iterdir():
                if stale.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
                    with contextlib.suppress(FileNotFoundError):
                        entry.unlink()
                        removed.append(entry)
        return removed

    def path_for(self, step: int) -> Path:
        return self.folder / f"{self.prefix}_{step:08d}.npz"

    def _steps(self) -> list[tuple[int, Path]]:
        return _numbered(self.folder, self._pattern)

    def list(self) -> list[Path]:
        """This manager's checkpoint files, oldest step first (not checked for validity)."""
        return [p for _, p in self._steps()]

    def save(self, arrays: Mapping, meta: dict | None, step: int, *,
             compress: bool = False) -> Path:
        """Save atomically as ``{prefix}_{step:08d}.npz``, then delete all but the newest
        ``keep_last`` of this manager's files. ``step`` is added to ``meta`` when absent."""
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step must be a non-negative int, got {step!r}")
        step = int(step)
        meta = dict(meta or {})
        if meta.setdefault("step", step) != step:
            raise CheckpointError(f"meta['step'] is {meta['step']!r} but step is {step}")
        path = save_checkpoint(self.path_for(step), arrays, meta, compress=compress)
        if self.keep_last is not None:
            # Never delete the file just written, even if older-numbered ones exist (a run
            # restarted from an earlier step).
            old = [p for p in self.list() if p != path]
            for p in old[:max(0, len(old) - (self.keep_last - 1))]:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        return path

    def load_latest(self, device: str = "cpu"):
        """``(path, arrays, meta)`` of the newest checkpoint that loads, or ``None``."""
        for path in reversed(self.list()):
            try:
                arrays, meta = load_checkpoint(path, device)
            except CheckpointError as exc:
                warnings.warn(f"skipping unreadable checkpoint: {exc}", CheckpointWarning,
                              stacklevel=2)
                continue
            return path, arrays, meta
        return None

    def latest(self) -> Path | None:
        """Path of the newest checkpoint that loads (fully verified), or ``None``."""
        found = self.load_latest("cpu")
        return None if found is None else found[0]
