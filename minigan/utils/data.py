"""PyTorch's ``torch.utils.data`` for minigan: code ports by writing ``minigan`` for ``torch``.

``Dataset``, ``IterableDataset``, ``TensorDataset``, ``Subset``, ``ConcatDataset``,
``ChainDataset``, ``random_split``, the samplers, ``DataLoader``, ``default_collate`` and
``default_convert`` follow PyTorch's signatures, argument checks and batch structure (a batch of
tuples collates to a *list* of tensors, Python floats to float64, ints to int64, bools to bool).

What differs, on purpose:

* Everything runs in the main process. ``num_workers`` must be 0; a larger value raises
  ``NotImplementedError`` naming the argument. ``pin_memory``/``pin_memory_device`` are accepted
  and ignored (minigan has no pinned host buffers: a batch is made where its data lives, so a
  ``TensorDataset`` of CUDA tensors gives CUDA batches with no host copy to pin).
* Randomness comes from minigan's Philox generators: ``generator=`` takes a
  ``minigan.random.Generator`` and ``minigan.manual_seed`` makes shuffles reproducible. The
  orders differ from torch's (another RNG); how many numbers are drawn and when does not matter
  to anything but minigan's own streams.
* A ``DataLoader`` over a ``TensorDataset`` (or a ``Subset`` of one) with the default collate
  builds each batch with one fancy-index per tensor instead of fetching and stacking samples in
  Python. The result is the same (that is tested); other datasets go sample by sample, as torch.
* The ``RandomSampler`` draws a whole epoch's order when its iteration starts, where torch draws
  in pieces as it goes.

Also provided: ``SubsetRandomSampler``, ``WeightedRandomSampler`` and ``get_worker_info`` (always
None: there are no workers). Not provided: ``DistributedSampler``, ``StackDataset``, DataPipes.
"""
from __future__ import annotations

import bisect
import collections.abc
import copy
import itertools
import math
import re
import warnings
from typing import Generic, TypeVar

import numpy as np

from .. import backend
from ..autograd import Tensor, tensor
from ..functional import getitem, stack
from ..random import Generator, default_generator

__all__ = [
    "BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "IterableDataset",
    "RandomSampler", "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler",
    "TensorDataset", "WeightedRandomSampler", "default_collate", "default_convert",
    "get_worker_info", "random_split",
]

T_co = TypeVar("T_co", covariant=True)


def _type_name(x) -> str:
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"


def _check_generator(generator, who: str):
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"{who}: generator must be a minigan Generator "
                        f"(minigan.random.Generator), got {_type_name(generator)}")
    return generator


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


# ----------------------------------------------------------------------------- data sets

class Dataset(Generic[T_co]):
    """A map-style data set: ``dataset[i]`` is sample ``i``. Subclasses define ``__getitem__``
    and usually ``__len__`` (the default samplers need it). ``a + b`` concatenates."""

    def __getitem__(self, index) -> T_co:
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """A data set read as a stream: subclasses define ``__iter__``. ``a + b`` chains them."""

    def __iter__(self):
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other: Dataset) -> ChainDataset:
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples ``tuple(t[i] for t in tensors)`` of tensors that share their first dimension
    (and their device: the batches are made there)."""

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        for k, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {k} is a {_type_name(t)}, not a "
                                "minigan Tensor; convert it with minigan.tensor(...)")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {k} is 0-d; each tensor needs a first "
                                 "dimension that counts the samples")
        sizes = [t.shape[0] for t in tensors]
        if any(s != sizes[0] for s in sizes):
            raise ValueError("TensorDataset: size mismatch between tensors: first dimensions "
                             f"{sizes} must all be equal")
        devices = [backend.device_of(t.data) for t in tensors]
        if any(d != devices[0] for d in devices):
            listed = ", ".join(f"tensor {k} on {d}" for k, d in enumerate(devices))
            raise backend.DeviceError(f"TensorDataset: tensors on different devices ({listed}); "
                                      "move them to one device with .to(device)")
        self.tensors = tuple(tensors)

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list) -> list:
        # the inner data set's own batch fetch, when it has one (as torch's Subset)
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Map-style data sets one after the other; ``cumulative_sizes[k]`` is the length of the
    first ``k + 1`` of them."""

    @staticmethod
    def cumsum(sequence) -> list:
        out, total = [], 0
        for d in sequence:
            total += len(d)
            out.append(total)
        return out

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for k, d in enumerate(self.datasets):
            if isinstance(d, IterableDataset):
                raise TypeError(f"ConcatDataset does not support IterableDataset (data set {k} "
                                f"is a {_type_name(d)}); use ChainDataset")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError(f"ConcatDataset: index {idx} is out of range for "
                                 f"{len(self)} samples")
            idx = len(self) + idx
        k = bisect.bisect_right(self.cumulative_sizes, idx)
        if k == len(self.datasets):
            raise IndexError(f"ConcatDataset: index {idx} is out of range for {len(self)} "
                             "samples")
        return self.datasets[k][idx if k == 0 else idx - self.cumulative_sizes[k - 1]]


class ChainDataset(IterableDataset):
    """Iterable data sets one after the other."""

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got "
                                f"{_type_name(d)}")
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


def random_split(dataset: Dataset, lengths, generator: Generator | None = None) -> list:
    """Disjoint random ``Subset``s of the given lengths: ints that sum to ``len(dataset)``, or
    fractions that sum to 1 (each ``floor(n * f)``, the remainder then added one by one from
    the first split on, round robin, as torch does)."""
    _check_generator(generator, "random_split")
    lengths = list(lengths)
    n = len(dataset)
    total = sum(lengths)
    if math.isclose(total, 1) and total <= 1:
        sizes = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"random_split: fraction at index {i} ({frac}) is not between "
                                 "0 and 1")
            sizes.append(int(math.floor(n * frac)))
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        for i, size in enumerate(sizes):
            if size == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an "
                              "empty dataset.", stacklevel=2)
        lengths = sizes
    if any(not _is_int(k) or k < 0 for k in lengths):
        raise ValueError(f"random_split: lengths must be ints >= 0 or fractions summing to 1, "
                         f"got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"Sum of input lengths does not equal the length of the input "
                         f"dataset! ({lengths} sum to {sum(lengths)}, the data set has {n})")
    gen = generator if generator is not None else default_generator("cpu")
    order = backend.to_numpy(gen.permutation(n)).tolist()
    return [Subset(dataset, order[stop - k:stop])
            for stop, k in zip(itertools.accumulate(lengths), lengths)]


def get_worker_info():
    """None: minigan loads in the main process, so code never runs in a worker."""
    return None


# ----------------------------------------------------------------------------- samplers

class Sampler(Generic[T_co]):
    """Yields the indices (or, for a batch sampler, lists of indices) a loader fetches."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError("Subclasses of Sampler should implement __iter__.")


class SequentialSampler(Sampler[int]):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def _epoch(self) -> np.ndarray:
        return np.arange(len(self.data_source), dtype=np.int64)

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """A fresh random order of the indices each epoch, or ``num_samples`` indices drawn with
    replacement. Without ``generator`` each epoch seeds its own from minigan's default one, so
    ``minigan.manual_seed`` fixes the orders."""

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator: Generator | None = None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = _check_generator(generator, "RandomSampler")
        if not isinstance(replacement, bool):
            raise TypeError("replacement should be a boolean value, but got "
                            f"replacement={replacement!r}")
        if not _is_int(self.num_samples) or self.num_samples <= 0:
            raise ValueError("num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples!r}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _generator(self) -> Generator:
        if self.generator is not None:
            return self.generator
        # as torch: a new seed from the default generator per epoch
        return Generator(int(default_generator("cpu").integers(0, 2 ** 63)))

    def _epoch(self) -> np.ndarray:
        n, m = len(self.data_source), self.num_samples
        if n == 0:
            raise ValueError("RandomSampler: cannot draw samples from an empty data set")
        gen = self._generator()
        if self.replacement:
            return backend.to_numpy(gen.integers(0, n, (m,)))
        parts = [backend.to_numpy(gen.permutation(n)) for _ in range(-(-m // n))]
        return np.concatenate(parts)[:m].astype(np.int64, copy=False)

    def __iter__(self):
        yield from self._epoch().tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices in a fresh random order each epoch."""

    def __init__(self, indices, generator: Generator | None = None):
        self.indices = indices
        self.generator = _check_generator(generator, "SubsetRandomSampler")

    def __iter__(self):
        gen = self.generator if self.generator is not None else default_generator("cpu")
        for i in backend.to_numpy(gen.permutation(len(self.indices))).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """``num_samples`` indices in [0, len(weights)) with probabilities proportional to
    ``weights``; without replacement each index appears at most once (drawn as the smallest
    keys ``-log(u) / w``, Efraimidis and Spirakis 2006, which is sequential weighted sampling)."""

    def __init__(self, weights, num_samples: int, replacement: bool = True,
                 generator: Generator | None = None):
        if not _is_int(num_samples) or num_samples <= 0:
            raise ValueError("num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples!r}")
        if not isinstance(replacement, bool):
            raise ValueError("replacement should be a boolean value, but got "
                             f"replacement={replacement!r}")
        w = backend.to_numpy(weights.data if isinstance(weights, Tensor) else weights)
        w = np.asarray(w, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape "
                             f"{tuple(w.shape)}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
            raise ValueError("WeightedRandomSampler: weights must be finite, >= 0 and not all 0")
        if not replacement and num_samples > np.count_nonzero(w):
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples without "
                             f"replacement from {np.count_nonzero(w)} nonzero weights")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = _check_generator(generator, "WeightedRandomSampler")

    def _epoch(self) -> np.ndarray:
        gen = self.generator if self.generator is not None else default_generator("cpu")
        w = self.weights
        if self.replacement:
            u = backend.to_numpy(gen.uniform((self.num_samples,), dtype=np.float64))
            cdf = np.cumsum(w)
            idx = np.searchsorted(cdf, u * cdf[-1], side="right")
            return np.minimum(idx, len(w) - 1).astype(np.int64)
        u = backend.to_numpy(gen.uniform((len(w),), dtype=np.float64))
        with np.errstate(divide="ignore"):
            keys = np.where(w > 0, -np.log1p(-u) / w, np.inf)  # 1 - u > 0: finite logs
        return np.argsort(keys, kind="stable")[:self.num_samples].astype(np.int64)

    def __iter__(self):
        yield from self._epoch().tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list]):
    """Lists of ``batch_size`` indices from ``sampler``; the last one is shorter unless
    ``drop_last``."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if not _is_int(batch_size) or batch_size <= 0:
            raise ValueError("batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size!r}")
        if not isinstance(drop_last, bool):
            raise ValueError("drop_last should be a boolean value, but got "
                             f"drop_last={drop_last!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size


class _RepeatNone(Sampler):
    """None forever: the 'indices' of an IterableDataset."""

    def __iter__(self):
        while True:
            yield None


# The samplers whose whole epoch is one array (their __iter__ is that array, element by
# element), so a TensorDataset batch can be sliced from it without a Python loop.
_ARRAY_SAMPLERS = (SequentialSampler, RandomSampler, WeightedRandomSampler)


# ----------------------------------------------------------------------------- collation

_STR_OR_OBJECT = re.compile(r"[SaUO]")
_COLLATE_ERROR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
                  "lists; found {}")


def _is_array(x) -> bool:
    return isinstance(x, np.ndarray) or backend.is_cupy_array(x)


def _stack_tensors(batch: list) -> Tensor:
    first = batch[0]
    shapes = {t.shape for t in batch}
    if len(shapes) > 1:
        k = next(k for k, t in enumerate(batch) if t.shape != first.shape)
        raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, but "
                           f"got {tuple(first.shape)} at entry 0 and {tuple(batch[k].shape)} at "
                           f"entry {k}; pass a collate_fn that pads or keeps them apart")
    backend.check_same_device(*(t.data for t in batch), what="default_collate")
    if any(t.requires_grad for t in batch) or any(t.dtype != first.dtype for t in batch):
        return stack(batch, 0)  # keeps the graph, and promotes dtypes as torch.stack
    xp = backend.get_array_module(first.data)
    return Tensor(xp.stack([t.data for t in batch]))


def _collate(batch):
    if not batch:
        raise ValueError("default_collate: the batch is empty")
    elem = batch[0]
    elem_type = type(elem)
    if isinstance(elem, Tensor):
        return _stack_tensors(batch)
    if _is_array(elem):
        if _STR_OR_OBJECT.search(elem.dtype.str):
            raise TypeError(_COLLATE_ERROR.format(elem.dtype))
        return _stack_tensors([b if isinstance(b, Tensor) else Tensor(_plain(b)) for b in batch])
    if isinstance(elem, (np.bool_, np.number, np.object_)):
        same = all(type(b) is elem_type for b in batch)
        values = np.asarray(batch, dtype=elem.dtype if same else None)
        if _STR_OR_OBJECT.search(values.dtype.str):
            raise TypeError(_COLLATE_ERROR.format(values.dtype))
        return Tensor(values)
    if isinstance(elem, float):
        return tensor(batch, dtype=np.float64)  # torch's rule for Python floats
    if isinstance(elem, int):  # bools too: a batch of them becomes a bool tensor
        return tensor(batch)
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: _collate([d[key] for d in batch]) for key in elem}
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update(collated)
                return clone
            return elem_type(collated)
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple
        return elem_type(*(_collate(list(samples)) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(b) != size for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size (got "
                               f"lengths {sorted({len(b) for b in batch})})")
        fields = [_collate(list(samples)) for samples in zip(*batch)]
        if isinstance(elem, tuple):
            return fields  # a list, as torch's (kept for backward compatibility there)
        return _same_sequence(elem, fields)
    raise TypeError(_COLLATE_ERROR.format(elem_type))


def _same_sequence(like, items: list):
    """``items`` in a sequence of ``like``'s type, as torch rebuilds one: a mutable one as a
    copy of ``like`` with its items replaced, another by its constructor; the plain list
    where the type cannot be made from a list."""
    try:
        if isinstance(like, collections.abc.MutableSequence):
            clone = copy.copy(like)
            for i, item in enumerate(items):
                clone[i] = item
            return clone
        return type(like)(items)
    except TypeError:
        return items


def _plain(a):
    """A NumPy subclass (memmap, matrix...) as a plain ndarray; CuPy arrays as they are."""
    return a if backend.is_cupy_array(a) else np.asarray(a)


def default_collate(batch):
    """A list of samples as one batch: tensors, NumPy arrays and NumPy scalars are stacked into
    a Tensor of a new first dimension (their dtype kept), Python floats become float64, ints
    int64 and bools bool; strings stay a list; dicts, namedtuples, lists and tuples are collated
    field by field (a tuple of fields comes back as a list, as in torch)."""
    return _collate(list(batch) if not isinstance(batch, list) else batch)


def default_convert(data):
    """NumPy (and CuPy) arrays and scalars as Tensors, inside dicts, namedtuples, lists and
    tuples too (a tuple comes back as a list); everything else unchanged. Used in place of
    ``default_collate`` when ``batch_size=None``."""
    elem_type = type(data)
    if isinstance(data, Tensor):
        return data
    if _is_array(data):
        return data if _STR_OR_OBJECT.search(data.dtype.str) else Tensor(_plain(data))
    if isinstance(data, np.generic) and not isinstance(data, (np.str_, np.bytes_)):
        return data if isinstance(data, np.object_) else Tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        converted = {key: default_convert(data[key]) for key in data}
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update(converted)
                return clone
            return elem_type(converted)
        except TypeError:
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return elem_type(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        return _same_sequence(data, [default_convert(d) for d in data])
    return data


# ----------------------------------------------------------------------------- the loader

def _index_array(indices) -> np.ndarray:
    """Sample indices (ints, NumPy ints or 0-d integer tensors) as an int64 array."""
    arr = np.asarray(indices)
    if arr.dtype.kind not in "iu":
        try:
            arr = np.array([int(i) for i in indices], dtype=np.int64)
        except (TypeError, ValueError):
            raise TypeError(f"DataLoader: sample indices must be integers, got "
                            f"{_type_name(next(iter(indices)))}") from None
    return arr.astype(np.int64, copy=False).reshape(-1)


def _checked_rows(idx: np.ndarray, n: int, what: str) -> np.ndarray:
    """``idx``, checked on the host to lie in [-n, n) (negatives count from the end, as in
    tensor indexing): an IndexError names the index, where a GPU gather would not check."""
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < -n or hi >= n:
            raise IndexError(f"{what}: index {lo if lo < -n else hi} is out of range for {n} "
                             "samples")
    return idx


class _SingleProcessIter:
    """The iterator of one pass over a DataLoader (``len`` works, as on torch's)."""

    def __init__(self, loader: DataLoader):
        self._loader = loader
        self._batches = loader._batches()

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._batches)

    def __len__(self) -> int:
        return len(self._loader)


class DataLoader(Generic[T_co]):
    """Batches of a data set, with torch's arguments (in torch's order) and checks.

    ``batch_size=None`` turns batching off (each sample goes through ``default_convert``).
    ``shuffle=True`` uses a ``RandomSampler`` with ``generator``; ``sampler`` and
    ``batch_sampler`` replace the default ones and exclude the arguments they decide.
    ``num_workers`` must be 0; ``pin_memory``, ``pin_memory_device``, ``timeout``,
    ``worker_init_fn`` and ``in_order`` are accepted for compatibility and have no effect.
    """

    _FROZEN = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
               "persistent_workers")
    _initialized = False

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, multiprocessing_context=None,
                 generator: Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True):
        if not _is_int(num_workers) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             f"disable multiprocessing (got num_workers={num_workers!r})")
        if num_workers > 0:
            raise NotImplementedError(
                f"DataLoader: num_workers={num_workers} is not supported; minigan loads "
                "batches in the main process, so use num_workers=0 (a TensorDataset is "
                "gathered with one fancy-index per tensor and batch, which needs no workers)")
        if timeout < 0:
            raise ValueError(f"timeout option should be non-negative (got timeout={timeout!r})")
        if prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in "
                             "multiprocessing. let num_workers > 0 to enable multiprocessing, "
                             "otherwise set prefetch_factor to None.")
        if persistent_workers:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if multiprocessing_context is not None:
            raise ValueError("multiprocessing_context can only be used with multi-process "
                             "loading (num_workers > 0), but got num_workers=0")
        _check_generator(generator, "DataLoader")

        if isinstance(dataset, IterableDataset):
            if shuffle not in (False, None):
                raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
            iterable = True
        else:
            shuffle = bool(shuffle)
            iterable = False

        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")

        if sampler is None:
            if iterable:
                sampler = _RepeatNone()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if batch_sampler is not None else default_convert)
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        self._iterable = iterable
        self._initialized = True

    def __setattr__(self, name, value):
        if self._initialized and name in self._FROZEN:
            raise ValueError(f"{name} attribute should not be set after "
                             f"{type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)

    def __iter__(self) -> _SingleProcessIter:
        return _SingleProcessIter(self)

    # batches

    def _batches(self):
        if self._iterable:
            yield from self._stream_batches()
            return
        source = self._tensor_source()
        if source is not None:
            yield from self._gathered_batches(*source)
            return
        dataset, collate = self.dataset, self.collate_fn
        if not self._auto_collation:
            for i in self.sampler:
                yield collate(dataset[i])
            return
        getitems = getattr(dataset, "__getitems__", None)
        for indices in self.batch_sampler:
            if callable(getitems):
                data = getitems(indices)
            else:
                data = [dataset[i] for i in indices]
            yield collate(data)

    def _stream_batches(self):
        it = iter(self.dataset)
        if not self._auto_collation:
            for item in it:
                yield self.collate_fn(item)
            return
        for indices in self.batch_sampler:
            data = list(itertools.islice(it, len(indices)))
            if not data or (self.drop_last and len(data) < len(indices)):
                return
            yield self.collate_fn(data)

    def _tensor_source(self):
        """``(tensors, rows)`` when batches can be gathered straight from a TensorDataset: the
        default collate on a TensorDataset, or Subsets of one, whose fetch methods are the
        stock ones. ``rows`` maps the loader's indices to tensor rows (None: the identity)."""
        if not self._auto_collation or self.collate_fn is not default_collate:
            return None
        ds, levels = self.dataset, []
        while (type(ds).__getitem__ is Subset.__getitem__
               and getattr(type(ds), "__getitems__", None) is Subset.__getitems__):
            levels.append(ds.indices)
            ds = ds.dataset
        if not (isinstance(ds, TensorDataset)
                and type(ds).__getitem__ is TensorDataset.__getitem__
                and getattr(type(ds), "__getitems__", None) is None):
            return None
        rows = None
        for indices in reversed(levels):  # innermost Subset first
            if isinstance(indices, Tensor):
                indices = backend.to_numpy(indices.data)
            idx = _index_array(backend.to_numpy(indices) if _is_array(indices) else
                               list(indices))
            n = len(ds) if rows is None else len(rows)
            idx = _checked_rows(idx, n, "Subset")
            rows = idx if rows is None else rows[idx]
        return ds.tensors, rows

    def _gathered_batches(self, tensors, rows):
        n = len(tensors[0]) if rows is None else len(rows)
        device = backend.device_of(tensors[0].data)
        bs = self.batch_sampler
        if type(bs) is BatchSampler and type(bs.sampler) in _ARRAY_SAMPLERS:
            # the whole epoch's order in one array, on the data's device once per epoch
            order = _checked_rows(bs.sampler._epoch(), n, "DataLoader")
            if rows is not None:
                order = rows[order]
            order = backend.to_device(order, device)
            size = bs.batch_size
            stop = len(order) - len(order) % size if bs.drop_last else len(order)
            for start in range(0, stop, size):
                yield _gather(tensors, order[start:start + size])
            return
        for indices in bs:
            flat = _flat_indices(indices)
            if flat is None:  # nested or not integers: sample by sample, as torch fetches
                yield default_collate([self.dataset[i] for i in indices])
                continue
            idx = _checked_rows(flat, n, "DataLoader")
            if rows is not None:
                idx = rows[idx]
            yield _gather(tensors, backend.to_device(idx, device))


def _flat_indices(indices):
    """A batch's indices as an int64 array when they are a flat sequence of integers (ints,
    NumPy integers, 0-d integer tensors; not bools), else None."""
    try:
        arr = np.asarray(backend.to_numpy(indices.data) if isinstance(indices, Tensor)
                         else indices)
    except ValueError:  # a ragged nesting
        return None
    if arr.ndim != 1:
        return None
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype != object:
        return None
    out = []
    for i in arr:
        if isinstance(i, Tensor) and i.ndim == 0 and i.dtype.kind in "iu":
            i = int(i.item())
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            return None
        out.append(int(i))
    return np.array(out, dtype=np.int64)


def _gather(tensors, rows) -> list:
    """One batch: each tensor's ``rows``, as a list (as default_collate makes of tuples)."""
    # a tensor that requires grad is indexed through the graph, as its stacked samples would be
    return [getitem(t, Tensor(rows)) if t.requires_grad else Tensor(t.data[rows])
            for t in tensors]
