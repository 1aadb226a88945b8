"""Per-thread CPU scratch buffers shared by the NumPy kernel paths (conv, batch norm).

The im2col matrix of a DCGAN layer is 1-70 MB, and batch norm needs activation-sized
temporaries. Allocating such arrays afresh each call makes the allocator map new pages, and the
first write to each page faults; on the benchmark VM that measured slower than the copy itself
(a 3 MB temporary: 0.07 ms to fill, 3.5 ms when its pages are new). Reusing one buffer per role
avoids both. Results handed back to callers are never workspace.

The buffers are anonymous memory maps of their own, outside the malloc heap: long-lived
multi-MB blocks inside the heap fragmented it, so that the activations freed and re-allocated
every step no longer fit the free space and came back as fresh (faulting) pages; in a dcgan
training step that measured 4300 page faults per step against 390 with the maps.
"""
from __future__ import annotations

import math
import mmap
import threading

import numpy as np

__all__ = ["is_channels_last", "release_workspace"]

# Buffers never outlive the kernel call that takes them, and no kernel runs inside another's call,
# so kernels outside conv (batch norm, leaky_relu, Adam) borrow conv's largest buffer, the
# im2col matrix, for their one temporary instead of holding buffers of their own.
SCRATCH = "cols"


class _Workspace(threading.local):
    """Scratch buffers reused across calls, one set per thread, keyed by a role name."""

    def __init__(self):
        self.buffers = {}

    def take(self, role: str, shape, dtype):
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize  # shape: a tuple of ints
        buf = self.buffers.get(role)
        if buf is None or buf.nbytes < nbytes:
            self.buffers.pop(role, None)
            buf = np.frombuffer(mmap.mmap(-1, max(nbytes, 64)), np.uint8)
            self.buffers[role] = buf
        return buf[:nbytes].view(dtype).reshape(shape)


_workspace = _Workspace()


def release_workspace() -> None:
    """Free this thread's CPU scratch buffers (they are re-created on demand)."""
    _workspace.buffers.clear()


def is_channels_last(a) -> bool:
    """True for a 4-D (N, C, H, W) array stored channels-last, i.e. not C-contiguous but with a
    C-contiguous (N, H, W, C) transpose: the layout the CPU conv kernels give outputs with many
    channels, which the other CPU kernels keep (a plain NCHW array is False)."""
    return (a.ndim == 4 and not a.flags.c_contiguous
            and a.transpose(0, 2, 3, 1).flags.c_contiguous)


def take_like(role: str, a, dtype):
    """A workspace buffer shaped as ``a``, stored channels-last when ``a`` is."""
    if is_channels_last(a):
        n, c, h, w = a.shape
        return _workspace.take(role, (n, h, w, c), dtype).transpose(0, 3, 1, 2)
    return _workspace.take(role, a.shape, dtype)
