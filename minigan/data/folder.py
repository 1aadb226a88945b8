"""Image folders: any tree of png/jpg/jpeg/bmp/webp files becomes a uint8 NCHW `Dataset`.

Each image is converted to grey or RGB (transparent pixels are composited over white), its
shorter side is resized to ``image_size`` (Lanczos) and the centre square is cropped. Files that
Pillow cannot read are skipped and counted in one warning. When every image sits in a first-level
sub-folder and there are at least two of them, the sub-folder names become class labels (as in
torchvision's ImageFolder), for the conditional GAN.

Decoding a few thousand images takes seconds, so the decoded array is cached as ``.npz`` under
``<cache>/folders/``, keyed by the folder, the relative file names, their sizes and mtimes,
``image_size`` and ``channels``: a second run with unchanged files starts at once. The entry
holds that key's full digest too, and is used only if the digest is the current one, its file
list is drawn from the folder's files and it has at least one image; anything else (a damaged,
copied or hand-made entry) is deleted and the folder decoded again.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_writer
from .cache import cache_dir, say
from .dataset import Dataset
from .errors import DatasetError, DataWarning

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_CACHE_VERSION = 2  # 2: the entry records the digest of its key


def list_images(root) -> list[Path]:
    """Image files under ``root``, recursively, sorted by relative path; hidden entries skipped."""
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath, f) for f in filenames
                     if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def image_folder(path, image_size: int = 64, channels: int | None = None,
                 cache: bool = True, workers: int | None = None) -> Dataset:
    """Load every image under ``path`` as a `Dataset` of uint8 (N, C, image_size, image_size).

    ``channels``: 1 (grey), 3 (RGB) or None (3 if any image is in colour, else 1).
    Raises `DatasetError` if the folder is missing, holds no images, or none is readable.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    if not (isinstance(image_size, (int, np.integer)) and image_size > 0):
        raise DatasetError(f"image_size must be a positive integer, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise DatasetError(f"channels must be 1, 3 or None (auto), got {channels!r}")
    files = list_images(root)
    if not files:
        raise DatasetError(f"{root}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found in "
                           "this folder or below it")
    rel = [f.relative_to(root).as_posix() for f in files]

    cache_path, digest = (_cache_path(root, files, rel, image_size, channels) if cache
                          else (None, None))
    cached = (_read_cache(cache_path, digest, rel, image_size, channels)
              if cache_path is not None else None)
    if cached is not None:
        images, kept = cached
    else:
        images, kept = _decode_all(root, files, rel, image_size, channels, workers)
        if cache_path is not None:
            _write_cache(cache_path, digest, images, kept)

    skipped = sorted(set(rel) - set(kept))
    if skipped:
        shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        warnings.warn(f"{root}: skipped {len(skipped)} unreadable image file(s): {shown}",
                      DataWarning, stacklevel=2)
    labels, classes = _class_labels(kept)
    return Dataset(images, labels, name=root.name or str(root), kind="image", classes=classes)


def _class_labels(rel_paths):
    """Labels from first-level sub-folders, when every image has one and there are >= 2."""
    tops = [p.split("/", 1)[0] if "/" in p else None for p in rel_paths]
    classes = sorted(set(tops)) if None not in tops else []
    if len(classes) < 2:
        return None, ()
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[t] for t in tops], dtype=np.int64), tuple(classes)


# Decoding.

def _decode_all(root, files, rel, image_size, channels, workers):
    """Decode all files (threads: Pillow releases the GIL while decoding and resizing)."""
    if channels is None:
        modes = [_peek_mode(f) for f in files]
        readable = [m for m in modes if m is not None]
        if not readable:
            raise DatasetError(f"{root}: none of the {len(files)} image files could be read")
        channels = 1 if all(m in _GREY_MODES for m in readable) else 3
    say(f"decoding {len(files)} images under {root} ({image_size}x{image_size}, "
        f"{channels} channel(s)); the result is cached")
    images = np.empty((len(files), channels, image_size, image_size), dtype=np.uint8)
    ok = np.zeros(len(files), dtype=bool)

    def work(i):
        try:
            array = _decode_image(files[i], image_size, channels)
        except Exception:  # noqa: BLE001 - any decoder failure means "unreadable": skip, count
            return
        images[i] = array.reshape(image_size, image_size, channels).transpose(2, 0, 1)
        ok[i] = True

    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(work, range(len(files))))
    if not ok.any():
        raise DatasetError(f"{root}: none of the {len(files)} image files could be read")
    kept = [r for r, good in zip(rel, ok) if good]
    return np.ascontiguousarray(images[ok]), kept


def _peek_mode(path):
    try:
        with Image.open(path) as im:
            return im.mode
    except Exception:  # noqa: BLE001 - Pillow raises many types for a file it cannot read
        return None


def _decode_image(path, image_size: int, channels: int) -> np.ndarray:
    """One image as uint8 (image_size, image_size[, 3]): shorter side resized, centre-cropped."""
    with Image.open(path) as im:
        w, h = im.size
        scale = image_size / min(w, h)
        size = (max(image_size, round(w * scale)), max(image_size, round(h * scale)))
        im.draft("RGB" if channels == 3 else "L", size)  # JPEG: decode at reduced scale
        im = _convert(im, "RGB" if channels == 3 else "L")
        if im.size != size:
            im = im.resize(size, Image.Resampling.LANCZOS)
        left, top = (size[0] - image_size) // 2, (size[1] - image_size) // 2
        im = im.crop((left, top, left + image_size, top + image_size))
        return np.asarray(im, dtype=np.uint8)


def _convert(im, mode: str):
    """Convert to L or RGB, compositing transparency over white and scaling 16-bit grey."""
    if im.mode.startswith("I;16") or im.mode == "I":
        # Pillow's I -> L conversion clips at 255, but these are 16-bit grey values (older
        # Pillows open 16-bit PNGs as mode I): scale them down instead.
        grey = np.asarray(im, dtype=np.int64)
        if im.mode != "I" or grey.max(initial=0) > 255:
            grey = grey >> 8
        im = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return im.convert(mode) if im.mode != mode else im


# The decoded-array cache.

def _cache_path(root: Path, files, rel, image_size, channels) -> tuple[Path, str]:
    """The cache entry's path and the full digest of its key."""
    entries = []
    for f, r in zip(files, rel):
        st = f.stat()
        entries.append([r, st.st_size, st.st_mtime_ns])
    key = json.dumps({"version": _CACHE_VERSION, "root": str(root.resolve()), "files": entries,
                      "image_size": int(image_size), "channels": channels}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()
    folder = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name)[:40] or "root"
    return cache_dir("folders") / f"{slug}-{folder}-{digest[:20]}.npz", digest


def _read_cache(path: Path, digest: str, rel, image_size: int, channels: int | None):
    """``(images, kept relative paths)`` from a cache file, or None: missing, corrupt, made for
    other files (its recorded key digest is not ``digest``), keeping names that are not among
    the folder's files ``rel``, holding no image, or not of the requested (channels,
    image_size, image_size). The file name should rule all of that out, so a mismatch means a
    damaged, copied or hand-made file, which is deleted and never trained on."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            images, kept = z["images"], [str(k) for k in z["kept"]]
            recorded = str(z["key_sha256"]) if "key_sha256" in z.files else None
        if recorded is None:
            raise ValueError("it records no key digest (an entry of an older minigan, or "
                             "damaged)")
        if recorded != digest:
            raise ValueError(f"it was made for other files or settings (key digest "
                             f"{recorded[:20]}, not the folder's {digest[:20]})")
        if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(kept):
            raise ValueError("unexpected arrays")
        if not kept:
            raise ValueError("no images, but the folder has readable ones")
        position = {r: i for i, r in enumerate(rel)}
        order = [position.get(k, -1) for k in kept]
        if min(order) < 0 or order != sorted(set(order)):  # a subsequence of rel, or damaged
            missing = [k for k, i in zip(kept, order) if i < 0][:3]
            raise ValueError(f"its file list does not match the folder's files "
                             f"({', '.join(missing) or 'out of order or repeated'})")
        c, h, w = images.shape[1:]
        if (h, w) != (image_size, image_size) or c not in ((1, 3) if channels is None
                                                          else (channels,)):
            want = "1 or 3" if channels is None else channels
            raise ValueError(f"images of shape {(c, h, w)}, expected {want} channel(s) of "
                             f"{image_size}x{image_size}")
        return images, kept
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        say(f"ignoring the cache file {path}: {exc}; decoding the images again")
        path.unlink(missing_ok=True)
        return None


def _write_cache(path: Path, digest: str, images, kept) -> None:
    with contextlib.suppress(OSError):  # a read-only cache must not stop training
        with atomic_writer(path) as f:
            np.savez(f, images=images, kept=np.array(kept, dtype=str),
                     key_sha256=np.array(digest))
        # Entries for older states of the same folder are dead weight now.
        prefix = path.name.rsplit("-", 1)[0] + "-"
        for old in path.parent.glob(prefix + "*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
