"""`DataLoader`: seeded, resumable mini-batches on the training device.

Images are stored as uint8 and scaled per batch to float32 in [-1, 1] with ``x / 127.5 - 1``
(0 -> -1 and 255 -> 1 exactly); points are passed through as float32. Labels come out as int64,
or None for unlabelled data.

On ``device="cuda"`` the whole data set is copied to the GPU once, as uint8 (MNIST: 47 MB), and
each batch (images and labels) is gathered and scaled by one fused elementwise kernel launch that
reads the shuffled indices from a device array. The permutation is drawn on the host and uploaded
once per epoch, so a training step makes no host-to-device copy at all.

The permutation of epoch ``e`` is a pure function of ``(seed, e)``, so the loader's whole state is
``(seed, epoch, position)``: `state_dict` returns it as plain JSON-able ints, and a loader given
that state yields exactly the batches the original would have yielded next, mid-epoch included.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .dataset import Dataset
from .errors import DatasetError

_STATE_VERSION = 1


def _gather_kernel_source(scaled: bool, labelled: bool) -> dict:
    """A CuPy ElementwiseKernel that builds a whole batch in one launch.

    Element ``i`` of the batch belongs to sample ``k = i / per_sample``, which is sample
    ``order[start + k]`` of the resident data. uint8 images are scaled with ``v / 127.5 - 1``:
    a division (not a multiplication by 1/127.5) keeps the result bit-identical to NumPy's and
    maps 255 to 1.0 exactly (NVRTC's default division is IEEE-rounded). The labels of the batch
    are gathered by the first thread of each sample, so a step costs a single launch.
    """
    value = ("(float)src[j * per_sample + r] / 127.5f - 1.0f" if scaled
             else "src[j * per_sample + r]")
    operation = ("long long k = i / per_sample; long long r = i - k * per_sample;"
                 f"long long j = order[start + k]; x = {value};")
    in_params = (f"raw {'uint8' if scaled else 'float32'} src, raw int64 order, int64 start, "
                 "int64 per_sample")
    out_params = "float32 x"
    if labelled:
        in_params += ", raw int64 labels"
        out_params += ", raw int64 y"
        operation += "if (r == 0) y[k] = labels[j];"
    name = f"minigan_gather_{'scaled' if scaled else 'float'}{'_labelled' if labelled else ''}"
    return {"in_params": in_params, "out_params": out_params, "operation": operation,
            "name": name}


def _array(a):
    """Arrays stay where they are (a CuPy array is not copied back); lists become NumPy."""
    return a if backend.is_cupy_array(a) else np.asarray(a)


class DataLoader:
    """Mini-batches ``(x, y)`` of a data set on ``device``, reshuffled every epoch.

    ``data`` is a `Dataset`, an ``(x, y)`` pair, or an array ``x`` (with ``labels``): uint8
    images (N, C, H, W) or float points (N, D). ``drop_last`` drops the final short batch.

    Use it per epoch (``for x, y in loader``: the rest of the current epoch, then the epoch
    counter advances) or per step (`next_batch`, `batches`), which crosses epochs by itself.
    Breaking out of a ``for`` loop keeps the position: the next iteration continues there.
    """

    def __init__(self, data, labels=None, batch_size: int = 64, shuffle: bool = True,
                 drop_last: bool = True, seed: int = 0, device="cpu"):
        if isinstance(data, Dataset):
            if labels is not None:
                raise DatasetError("pass labels either in the Dataset or as labels=, not both")
            x, labels = data.data, data.labels
        elif isinstance(data, tuple):
            if len(data) != 2 or labels is not None:
                raise DatasetError("data as a tuple must be (x, y), with labels=None")
            x, labels = data
        else:
            x = data
        self.device = backend.normalize_device(device)
        x = backend.to_numpy(x) if self.device == "cpu" else _array(x)
        labels = None if labels is None else _array(labels)
        if x.ndim < 2 or len(x) == 0:
            raise DatasetError(f"data must hold at least one sample of shape (N, ...), got "
                               f"shape {tuple(x.shape)}")
        if x.dtype == np.uint8:
            self.scaled = True
        elif x.dtype.kind == "f":
            self.scaled = False
            x = x.astype(np.float32, copy=False)
        else:
            raise DatasetError(f"data must be uint8 images or float points, got {x.dtype}")
        if labels is not None:
            if labels.shape != (len(x),):
                raise DatasetError(f"{len(x)} samples but labels of shape {tuple(labels.shape)}")
            labels = labels.astype(np.int64, copy=False)
        if int(batch_size) < 1:
            raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
        if drop_last and len(x) < batch_size:
            raise DatasetError(f"{len(x)} samples make no full batch of {batch_size} with "
                               "drop_last=True")
        if int(seed) < 0:
            raise DatasetError(f"seed must be >= 0, got {seed}")

        self.num_samples = len(x)
        self.sample_shape = tuple(x.shape[1:])
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.epoch = 0
        self.position = 0  # batches of the current epoch already handed out
        # The resident copies: moved once, here, and never again.
        self._x = backend.to_device(x, self.device)
        self._y = None if labels is None else backend.to_device(labels, self.device)
        self._order_epoch = None
        self._order = None
        self._per_sample = np.int64(np.prod(self.sample_shape))
        self._kernel = None
        if self.device == "cuda":
            self._kernel = backend.elementwise_kernel(
                **_gather_kernel_source(self.scaled, self._y is not None))

    # Sizes.

    @property
    def steps_per_epoch(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __len__(self) -> int:
        return self.steps_per_epoch

    # Iteration.

    def __iter__(self):
        """The remaining batches of the current epoch; afterwards the epoch counter advances."""
        self._roll_over()
        while self.position < self.steps_per_epoch:
            batch = self._batch(self.epoch, self.position)
            self.position += 1  # counted before the yield: a checkpoint here resumes after it
            yield batch
        self._roll_over()

    def next_batch(self):
        """The next batch, moving to the next epoch when this one is used up."""
        self._roll_over()
        batch = self._batch(self.epoch, self.position)
        self.position += 1
        return batch

    def batches(self):
        """An endless stream of batches, for step-based training loops."""
        while True:
            yield self.next_batch()

    def _roll_over(self):
        if self.position >= self.steps_per_epoch:
            self.epoch += 1
            self.position = 0

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The sample order of an epoch, on the host: a pure function of (seed, epoch)."""
        if not self.shuffle:
            return np.arange(self.num_samples, dtype=np.int64)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)

    def _batch(self, epoch: int, position: int):
        if self._order_epoch != epoch:
            # Once per epoch: the only host-to-device copy after construction.
            self._order = backend.to_device(self.epoch_order(epoch).astype(np.int64),
                                            self.device)
            self._order_epoch = epoch
        start = position * self.batch_size
        count = min(self.batch_size, self.num_samples - start)
        if self.device == "cuda":
            return self._batch_cuda(start, count)
        idx = self._order[start:start + count]
        y = None if self._y is None else self._y[idx]
        if not self.scaled:
            return self._x[idx], y
        x = np.divide(self._x[idx], np.float32(127.5), dtype=np.float32)
        x -= np.float32(1)
        return x, y

    def _batch_cuda(self, start: int, count: int):
        # Kept lean on purpose: a small GAN step is launch-bound, so the batch is one kernel
        # launch reading the device-resident order at an offset (no slicing, no copies).
        xp = backend.cupy
        x = xp.empty((count, *self.sample_shape), dtype=xp.float32)
        args = (self._x, self._order, np.int64(start), self._per_sample)
        if self._y is None:
            self._kernel(*args, x)
            return x, None
        y = xp.empty(count, dtype=xp.int64)
        self._kernel(*args, self._y, x, y)
        return x, y

    # Checkpointing.

    def state_dict(self) -> dict:
        """The loader's position, as JSON-serialisable ints and bools.

        The per-epoch permutation is derived from ``(seed, epoch)``, so the seed is the whole
        RNG state.
        """
        return {"version": _STATE_VERSION, "seed": self.seed, "epoch": self.epoch,
                "position": self.position, "batch_size": self.batch_size,
                "num_samples": self.num_samples, "shuffle": self.shuffle,
                "drop_last": self.drop_last}

    def load_state_dict(self, state: dict) -> None:
        """Continue where the loader that wrote ``state`` stopped (same data, same batching)."""
        if state.get("version") != _STATE_VERSION:
            raise DatasetError(f"loader state version {state.get('version')!r} is not "
                               f"{_STATE_VERSION}")
        if state["num_samples"] != self.num_samples:
            # The likeliest cause by far is the data, not the checkpoint: an image folder is
            # read afresh at every start.
            raise DatasetError(
                f"loader state has num_samples={state['num_samples']!r} but this loader has "
                f"{self.num_samples!r}: the data itself has probably changed since the state "
                "was saved (an image added to or removed from the folder, or made unreadable; "
                "or the run's --out folder lying inside the data folder, so that its sample "
                "grids are read as training images); resuming would not repeat the same "
                "batches")
        for key in ("batch_size", "shuffle", "drop_last"):
            if state[key] != getattr(self, key):
                raise DatasetError(f"loader state has {key}={state[key]!r} but this loader has "
                                   f"{getattr(self, key)!r}; resuming would not repeat the "
                                   "same batches")
        position = int(state["position"])
        if not 0 <= position <= self.steps_per_epoch or int(state["epoch"]) < 0:
            raise DatasetError(f"loader state epoch {state['epoch']}, position {position} is "
                               f"out of range (epochs have {self.steps_per_epoch} batches)")
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.position = position
        self._order_epoch = None

    def __repr__(self) -> str:
        return (f"DataLoader({self.num_samples} samples of {self.sample_shape}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed}, device={self.device!r}, "
                f"epoch={self.epoch}, position={self.position})")
