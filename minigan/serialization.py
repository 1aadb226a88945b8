"""``minigan.save`` / ``minigan.load``: torch.save and torch.load for what a training script
keeps (state dicts of modules and optimizers, tensors, arrays, numbers, strings, and the lists,
tuples and dicts that hold them), without pickle.

The file is a minigan checkpoint (``minigan.checkpoint``): an ``.npz`` that ``numpy.load`` reads
with ``allow_pickle=False``. Every tensor or array becomes one member; the structure around
them (containers, dict keys of any of the plain types, numbers, strings, which entry is a
tensor, its device and ``requires_grad``) is JSON in the metadata, so loading a file made by
anyone builds nothing but those plain types. Anything else (a module, a function, an arbitrary
object) is refused when saving, naming where it sits: save ``model.state_dict()`` and load it
with ``model.load_state_dict(minigan.load(path))``, as torch recommends anyway.

Saving to a path is atomic (a temporary file, fsynced, renamed over the target); saving to an
open binary file writes into it.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from . import backend
from .autograd import Tensor
from .checkpoint import (CheckpointError, _check_meta, _write_npz, atomic_writer,
                         load_checkpoint)

__all__ = ["save", "load"]

_KIND = "minigan.save"
_VERSION = 1


def _where(path: str) -> str:
    return "obj" + path


class _Encoder:
    def __init__(self):
        self.arrays: dict = {}

    def array(self, a) -> int:
        i = len(self.arrays)
        self.arrays[f"a{i}"] = a
        return i

    def encode(self, v, path: str):
        if isinstance(v, np.generic):  # first: np.float64 is also a float
            if isinstance(v, np.object_):
                raise CheckpointError(f"{_where(path)}: a NumPy object scalar cannot be saved")
            return {"$s": self.array(np.asarray(v))}
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            return v
        if isinstance(v, float):
            return {"$f": repr(v)} if v != v or v in (float("inf"), float("-inf")) else v
        if isinstance(v, Tensor):
            return {"$t": self.array(v.data), "device": v.device,
                    "requires_grad": bool(v.requires_grad)}
        if isinstance(v, np.ndarray) or backend.is_cupy_array(v):
            if np.dtype(v.dtype).hasobject:
                raise CheckpointError(f"{_where(path)}: an array of Python objects cannot be "
                                      "saved (never pickled)")
            return {"$a": self.array(v), "device": backend.device_of(v)}
        if isinstance(v, (dict, OrderedDict)):
            kind = "$od" if isinstance(v, OrderedDict) else "$d"
            items = []
            for k, x in v.items():
                if not (k is None or isinstance(k, (bool, int, float, str, tuple))):
                    raise CheckpointError(f"{_where(path)}: a dict key of type "
                                          f"{type(k).__name__} ({k!r}) cannot be saved; keys "
                                          "must be str, int, float, bool, None or tuples")
                items.append([self.encode(k, f"{path}.keys()"), self.encode(x, f"{path}[{k!r}]")])
            return {kind: items}
        if isinstance(v, tuple):
            return {"$tu": [self.encode(x, f"{path}[{i}]") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return {"$l": [self.encode(x, f"{path}[{i}]") for i, x in enumerate(v)]}
        hint = ("; save its state_dict() instead" if hasattr(v, "state_dict") else
                "; only tensors, arrays, numbers, strings, None and lists, tuples and dicts of "
                "them are saved (never pickled)")
        raise CheckpointError(f"{_where(path)}: a {type(v).__name__} cannot be saved{hint}")


def save(obj, f, pickle_module=None, pickle_protocol=None,
         _use_new_zipfile_serialization=True, _disable_byteorder_record=False) -> None:
    """``torch.save``: write ``obj`` to ``f`` (a path, or a binary file open for writing).
    ``pickle_module`` and ``pickle_protocol`` are refused (nothing is pickled); the two
    underscored flags are accepted and change nothing (the format is always a zip)."""
    for name, v in (("pickle_module", pickle_module), ("pickle_protocol", pickle_protocol)):
        if v is not None:
            raise TypeError(f"save: {name} is not supported: minigan never pickles")
    enc = _Encoder()
    tree = enc.encode(obj, "")
    meta = _check_meta({"kind": _KIND, "version": _VERSION, "tree": tree})
    if isinstance(f, (str, os.PathLike)):
        path = Path(f)
        with atomic_writer(path) as out:
            _write_npz(out, enc.arrays, [], meta, compress=False)
        return
    if not hasattr(f, "write"):
        raise TypeError(f"save: f must be a path or a binary file, got {type(f).__name__}")
    _write_npz(f, enc.arrays, [], meta, compress=False)


class _Decoder:
    def __init__(self, arrays: dict, map_location, where: str):
        self.arrays, self.map_location, self.where = arrays, map_location, where

    def bad(self, what: str):
        return CheckpointError(f"{self.where}: {what} (not a file minigan.save wrote, or "
                               "damaged)")

    def member(self, i):
        if isinstance(i, bool) or not isinstance(i, int) or f"a{i}" not in self.arrays:
            raise self.bad(f"no array member {i!r}")
        return self.arrays[f"a{i}"]

    def device(self, saved) -> str:
        want = self.map_location if self.map_location is not None else saved
        if want not in ("cpu", "cuda"):
            raise self.bad(f"unknown device {want!r}")
        if want == "cuda" and not backend.cuda_available():
            raise backend.DeviceError(
                f"{self.where} holds tensors saved on the GPU, and CuPy or a GPU is missing "
                "here; load it with map_location='cpu'")
        return want

    def decode(self, v):
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, list) or not isinstance(v, dict) or len(v) == 0:
            raise self.bad(f"an unexpected entry {str(v)[:60]}")
        if "$f" in v:
            try:
                return float(v["$f"])
            except (TypeError, ValueError):
                raise self.bad(f"a bad float {v['$f']!r}") from None
        if "$t" in v:
            data = backend.to_device(self.member(v["$t"]), self.device(v.get("device", "cpu")))
            rg = bool(v.get("requires_grad", False)) and data.dtype.kind == "f"
            return Tensor(data, requires_grad=rg)
        if "$a" in v:
            return backend.to_device(self.member(v["$a"]), self.device(v.get("device", "cpu")))
        if "$s" in v:
            return self.member(v["$s"])[()]
        for kind, make in (("$d", dict), ("$od", OrderedDict)):
            if kind in v:
                pairs = v[kind]
                if not isinstance(pairs, list) or not all(
                        isinstance(p, list) and len(p) == 2 for p in pairs):
                    raise self.bad("a malformed dict")
                out = make()
                for k, x in pairs:
                    key = self.decode(k)
                    if isinstance(key, (list, dict, Tensor, np.ndarray)):
                        raise self.bad("an unhashable dict key")
                    value = self.decode(x)
                    try:
                        out[key] = value
                    except TypeError:  # a tuple key holding a list: unhashable
                        raise self.bad("an unhashable dict key") from None
                return out
        if "$tu" in v and isinstance(v["$tu"], list):
            return tuple(self.decode(x) for x in v["$tu"])
        if "$l" in v and isinstance(v["$l"], list):
            return [self.decode(x) for x in v["$l"]]
        raise self.bad(f"an unknown entry {sorted(v)[:3]}")


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None,
         **pickle_load_args):
    """``torch.load`` for files ``minigan.save`` wrote: the object, with tensors on the device
    each was saved from, or on ``map_location`` ("cpu", "cuda"). Nothing is unpickled, so
    loading is always weights-only: ``weights_only=False``, a ``pickle_module``, pickle
    arguments and ``mmap=True`` are refused rather than ignored."""
    if weights_only is False:
        raise ValueError("load: weights_only=False would mean unpickling; minigan files hold "
                         "no pickles, so only weights_only=True (or None) is supported")
    if pickle_module is not None or pickle_load_args:
        raise TypeError("load: pickle_module and pickle arguments are not supported: minigan "
                        "never unpickles")
    if mmap:
        raise NotImplementedError("load: mmap=True is not supported")
    if map_location is not None:
        map_location = backend.normalize_device(str(map_location))
    if isinstance(f, (str, os.PathLike)):
        where = f"file {f}"
        arrays, meta = load_checkpoint(f, device="cpu")
    else:
        if not hasattr(f, "read"):
            raise TypeError(f"load: f must be a path or a binary file, got {type(f).__name__}")
        where = f"file object {getattr(f, 'name', type(f).__name__)}"
        arrays, meta = load_checkpoint(f, device="cpu")
    if not isinstance(meta, dict) or meta.get("kind") != _KIND or "tree" not in meta:
        raise CheckpointError(f"{where} is a minigan checkpoint but not one minigan.save wrote "
                              "(use minigan.checkpoint.load_checkpoint for it)")
    if meta.get("version") != _VERSION:
        raise CheckpointError(f"{where}: format version {meta.get('version')!r}; this minigan "
                              f"reads version {_VERSION}")
    return _Decoder(arrays, map_location, where).decode(meta["tree"])
