"""Writing what a person looks at: sample grids, scatters and the progress GIF (the loss plot
is in ``plot.py``)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from ..atomic import atomic_writer


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] floats (N, C, H, W) to uint8 (N, H, W, C)."""
    x = np.clip((np.asarray(images, dtype=np.float32) + 1.0) * 127.5 + 0.5, 0, 255)
    return x.astype(np.uint8).transpose(0, 2, 3, 1)


def make_grid(images: np.ndarray, nrow: int, padding: int = 2) -> np.ndarray:
    """Tile (N, C, H, W) images in [-1, 1] into one uint8 (H', W', C) picture, ``nrow`` per row."""
    imgs = to_uint8(images)
    n, h, w, c = imgs.shape
    ncol = nrow
    nrows = -(-n // ncol)
    grid = np.zeros((nrows * (h + padding) + padding, ncol * (w + padding) + padding, c),
                    dtype=np.uint8)
    # place every tile with one strided assignment, no loop over images
    tiles = np.zeros((nrows * ncol, h, w, c), dtype=np.uint8)
    tiles[:n] = imgs
    tiles = tiles.reshape(nrows, ncol, h, w, c)
    view = grid[padding:, padding:].reshape(nrows, h + padding, ncol, w + padding, c)
    view[:, :h, :, :w] = tiles.transpose(0, 2, 1, 3, 4)
    return grid


def image_format(path) -> str:
    """Pillow's format name for ``path``'s extension (.jpg -> JPEG), or a ValueError that says
    which extensions work."""
    from PIL import Image

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        what = f"{path.suffix!r} files" if path.suffix else "a name without an extension"
        raise ValueError(f"cannot save an image as {what} ({path}): use .png, .jpg, .gif, "
                         ".bmp, .tif or .webp")
    return fmt


def _atomic_save(img, path: Path, **kwargs) -> None:
    fmt = kwargs.pop("format", None) or image_format(path)
    with atomic_writer(path) as f:
        img.save(f, format=fmt, **kwargs)


def save_grid(images: np.ndarray, path, nrow: int = 8, scale: int = 1) -> Path:
    """Write a grid of [-1, 1] images as a PNG; grayscale stays grayscale."""
    from PIL import Image

    grid = make_grid(images, nrow)
    if grid.shape[2] == 1:
        img = Image.fromarray(grid[:, :, 0], mode="L")
    else:
        img = Image.fromarray(grid, mode="RGB")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    _atomic_save(img, path)
    return path


def save_scatter(layers, path, lim: float, size: int = 400) -> Path:
    """A white square PNG of 2-D point sets, each ``(points (n, 2), (r, g, b))``, drawn in
    order (later sets on top), the axes spanning [-lim, lim] with y pointing up. Points
    outside the square are left out."""
    if not lim > 0:
        raise ValueError(f"save_scatter: lim must be positive, got {lim}")
    from PIL import Image

    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    for pts, color in layers:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        pts = pts[np.isfinite(pts).all(axis=1)]
        col = ((pts[:, 0] / lim + 1) * size / 2).astype(np.int64)
        row = size - 1 - ((pts[:, 1] / lim + 1) * size / 2).astype(np.int64)
        inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
        canvas[row[inside], col[inside]] = color
    path = Path(path)
    _atomic_save(Image.fromarray(canvas), path)
    return path


def save_gif(frames, path, duration_ms: int = 200) -> Path | None:
    """Assemble PNG frames (paths) into an animated GIF that loops forever."""
    from PIL import Image

    frames = [Path(f) for f in frames]
    if not frames:
        return None
    images = []
    for f in frames:
        with Image.open(f) as im:
            images.append(im.convert("P", palette=Image.ADAPTIVE) if im.mode == "RGB"
                          else im.copy())
    path = Path(path)
    _atomic_save(images[0], path, format="GIF", save_all=True, append_images=images[1:],
                 duration=duration_ms, loop=0)
    return path


def read_metrics(path, torn_last: str = "warn") -> list[dict]:
    """The rows of a ``metrics.jsonl`` (one JSON object a line), [] when there is no file.

    The log is appended line by line, so a crash or a full disk can leave its last line torn
    (cut short, without its newline). ``torn_last`` says what to do with a last line that is
    not valid JSON: "warn" (drop it with a RuntimeWarning naming the file), "drop" (drop it
    silently) or "error". A bad line anywhere else is never a torn write: it raises a
    ValueError naming the file and the line number, and nothing is dropped.
    """
    if torn_last not in ("warn", "drop", "error"):
        raise ValueError(f"torn_last must be 'warn', 'drop' or 'error', got {torn_last!r}")
    p = Path(path)
    if not p.exists():
        return []
    with open(p, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    rows = []
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text:
            continue
        last = number == len(lines)  # no newline after it: where a torn write ends
        try:
            row = json.loads(text.decode("utf-8"))
            if not isinstance(row, dict):
                raise ValueError(f"expected a JSON object, got {type(row).__name__}")
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if last and torn_last != "error":
                if torn_last == "warn":
                    shown = raw[:60].decode("utf-8", "replace")
                    warnings.warn(f"{p}, line {number}: dropped a torn last line (a write cut "
                                  f"short by a crash or a full disk): {shown!r}",
                                  RuntimeWarning, stacklevel=2)
                break
            raise ValueError(f"{p}, line {number}: not a valid metrics row ({exc}); fix or "
                             "delete that line") from exc
        rows.append(row)
    return rows
