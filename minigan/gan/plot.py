"""The loss plot, drawn with Pillow alone (a dependency already), so every run gets one.

Two panels side by side: the losses (D, G and, for DRAGAN, the gradient penalty) and the
discriminator's mean outputs D(x) and D(G(z)) on [0, 1]. Long logs are noisy, so past
``SMOOTH_FROM`` points each series is drawn faintly as logged with its moving average on top.
The picture is drawn at twice its size and scaled down, which smooths the lines' edges.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .images import _atomic_save, read_metrics

PANEL_W, PANEL_H = 560, 400          # one panel, in output pixels
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 64, 16, 36, 46
SUPERSAMPLE = 2
SMOOTH_FROM = 60                     # points per series before a moving average is drawn

BLUE, ORANGE, GREEN = (31, 119, 180), (255, 127, 14), (44, 160, 44)
INK, GRID, REF = (40, 40, 40), (225, 225, 225), (150, 150, 150)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2, 2.5 or 5 times a power of ten,
    about ``target`` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        raise ValueError(f"nice_ticks: need finite lo < hi, got {lo}, {hi}")
    raw = (hi - lo) / max(target, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [k * step for k in range(first, last + 1)]


def tick_label(v: float, step: float) -> str:
    """``v`` with the fewest decimals that show the tick ``step`` exactly (0.25 -> 2)."""
    decimals = next((d for d in range(10)
                     if abs(round(step * 10 ** d) - step * 10 ** d) < 1e-6), 10)
    if abs(v) < step * 1e-6:
        v = 0.0
    return f"{v:.{decimals}f}"


def moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Centred mean over ``window`` points (odd), shrinking at the ends; the same length."""
    n = len(y)
    half = window // 2
    c = np.concatenate([[0.0], np.cumsum(y, dtype=np.float64)])
    idx = np.arange(n)
    lo = np.maximum(idx - half, 0)
    hi = np.minimum(idx + half + 1, n)
    return (c[hi] - c[lo]) / (hi - lo)


@dataclass
class Panel:
    """Where one panel's axes box lies (output pixels) and the data range it shows."""
    left: float
    top: float
    width: float
    height: float
    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float

    def to_px(self, x, y):
        """Data coordinates to output pixels (y grows downwards)."""
        px = self.left + (np.asarray(x, float) - self.x_lo) / (self.x_hi - self.x_lo) * self.width
        py = self.top + (self.y_hi - np.asarray(y, float)) / (self.y_hi - self.y_lo) * self.height
        return px, py


def _series(rows, key):
    """(steps, values) of the rows where ``key`` holds a finite number."""
    pts = [(r["step"], r[key]) for r in rows
           if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    if not pts:
        return None
    a = np.asarray(pts, dtype=np.float64)
    return a[:, 0], a[:, 1]


def _range(values, pad: float = 0.05):
    lo, hi = float(min(v.min() for v in values)), float(max(v.max() for v in values))
    if hi - lo < 1e-12:
        d = max(abs(lo) * 0.1, 0.5)
        return lo - d, hi + d
    d = (hi - lo) * pad
    return lo - d, hi + d


def _font(size: int):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def _tint(color, amount: float):
    return tuple(int(round(c + (255 - c) * amount)) for c in color)


class _Canvas:
    """A Pillow drawing in supersampled pixels, addressed in output pixels."""

    def __init__(self, width: int, height: int):
        from PIL import Image, ImageDraw
        s = SUPERSAMPLE
        self.img = Image.new("RGB", (width * s, height * s), (255, 255, 255))
        self.draw = ImageDraw.Draw(self.img)
        self.font = _font(12 * s)
        self.title_font = _font(14 * s)

    def line(self, xs, ys, color, width: float = 1.0):
        s = SUPERSAMPLE
        pts = [(float(x) * s, float(y) * s) for x, y in zip(xs, ys)]
        if len(pts) == 1:
            x, y = pts[0]
            r = width * s
            self.draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
        elif pts:
            self.draw.line(pts, fill=color, width=max(1, int(round(width * s))), joint="curve")

    def text(self, x, y, s_text, anchor: str, font=None, color=INK):
        s = SUPERSAMPLE
        self.draw.text((x * s, y * s), s_text, fill=color, font=font or self.font, anchor=anchor)

    def text_width(self, s_text) -> float:
        box = self.draw.textbbox((0, 0), s_text, font=self.font)
        return (box[2] - box[0]) / SUPERSAMPLE

    def rect(self, box, outline=None, fill=None):
        s = SUPERSAMPLE
        self.draw.rectangle([v * s for v in box], outline=outline, fill=fill,
                            width=SUPERSAMPLE)

    def result(self):
        return self.img.reduce(SUPERSAMPLE)  # box filter: each output pixel averages s*s


def _draw_panel(cv: _Canvas, panel: Panel, title: str, series, refs=()) -> None:
    """Axes, grid, ticks, the series ``[(label, color, steps, values)]`` and a legend."""
    left, top, right, bottom = panel.left, panel.top, panel.left + panel.width, \
        panel.top + panel.height
    x_ticks = [t for t in nice_ticks(panel.x_lo, panel.x_hi, 6) if panel.x_lo <= t <= panel.x_hi]
    y_ticks = [t for t in nice_ticks(panel.y_lo, panel.y_hi, 5) if panel.y_lo <= t <= panel.y_hi]
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
    for t in x_ticks:
        px, _ = panel.to_px(t, panel.y_lo)
        cv.line([px, px], [top, bottom], GRID)
        cv.line([px, px], [bottom, bottom + 4], INK)
        cv.text(px, bottom + 6, tick_label(t, x_step), "mt")
    for t in y_ticks:
        _, py = panel.to_px(panel.x_lo, t)
        cv.line([left, right], [py, py], GRID)
        cv.line([left - 4, left], [py, py], INK)
        cv.text(left - 6, py, tick_label(t, y_step), "rm")
    for y in refs:
        _, py = panel.to_px(panel.x_lo, y)
        dash = np.arange(left, right, 8.0)
        for x0 in dash:
            cv.line([x0, min(x0 + 4, right)], [py, py], REF)
    for label, color, xs, ys in series:
        px, py = panel.to_px(xs, np.clip(ys, panel.y_lo, panel.y_hi))
        if len(xs) >= SMOOTH_FROM:
            cv.line(px, py, _tint(color, 0.7), 1.0)
            window = max(5, (len(xs) // 25) | 1)
            _, sy = panel.to_px(xs, np.clip(moving_average(ys, window), panel.y_lo, panel.y_hi))
            cv.line(px, sy, color, 1.6)
        else:
            cv.line(px, py, color, 1.4)
    cv.rect([left, top, right, bottom], outline=INK)
    cv.text(left, top - 8, title, "lb", font=cv.title_font)
    cv.text((left + right) / 2, bottom + 26, "step", "mt")
    # the legend: one row above the box, right-aligned, so it never hides a line
    x = right
    for label, color, _, _ in reversed(series):
        x -= cv.text_width(label)
        cv.text(x, top - 9, label, "lm")
        cv.line([x - 24, x - 6], [top - 9, top - 9], color, 2.0)
        x -= 40


def render_losses(rows: list[dict]):
    """The loss plot of metrics rows as a Pillow RGB image, with its two ``Panel``s (losses,
    D outputs); ``(None, [])`` when no row has a loss."""
    rows = sorted((r for r in rows if isinstance(r.get("step"), (int, float))),
                  key=lambda r: r["step"])
    losses = [(label, color, *s) for label, color, key in
              (("D loss", BLUE, "d_loss"), ("G loss", ORANGE, "g_loss"),
               ("gradient penalty", GREEN, "penalty"))
              if (s := _series(rows, key)) is not None]
    outputs = [(label, color, *s) for label, color, key in
               (("D(x)", BLUE, "d_real"), ("D(G(z))", ORANGE, "d_fake"))
               if (s := _series(rows, key)) is not None]
    if not losses:
        return None, []
    steps = np.concatenate([s[2] for s in losses + outputs])
    x_lo, x_hi = min(0.0, float(steps.min())), float(steps.max())
    if x_hi <= x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    y_lo, y_hi = _range([s[3] for s in losses])
    cv = _Canvas(2 * PANEL_W, PANEL_H)
    box = dict(top=MARGIN_T, width=PANEL_W - MARGIN_L - MARGIN_R,
               height=PANEL_H - MARGIN_T - MARGIN_B, x_lo=x_lo, x_hi=x_hi)
    p_loss = Panel(left=MARGIN_L, y_lo=y_lo, y_hi=y_hi, **box)
    p_out = Panel(left=PANEL_W + MARGIN_L, y_lo=0.0, y_hi=1.0, **box)
    _draw_panel(cv, p_loss, "losses", losses)
    _draw_panel(cv, p_out, "discriminator outputs", outputs, refs=(0.5,))
    return cv.result(), [p_loss, p_out]


def plot_losses(metrics_path, out_path) -> Path | None:
    """Draw ``metrics.jsonl`` as a PNG at ``out_path`` (written atomically); None when the
    log has no loss rows yet."""
    img, _ = render_losses(read_metrics(metrics_path))
    if img is None:
        return None
    out = Path(out_path)
    _atomic_save(img, out)
    return out
