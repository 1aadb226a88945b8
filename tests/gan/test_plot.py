"""The loss plot, drawn with Pillow: tick choice, smoothing, where the lines land, bad rows."""
import json
import math

import numpy as np
import pytest
from PIL import Image

from minigan.gan import plot
from minigan.gan.plot import BLUE, GREEN, ORANGE


@pytest.mark.parametrize("lo, hi, want", [
    (0, 9370, [0, 2000, 4000, 6000, 8000]),
    (0.35, 3.1, [1, 2, 3]),
    (0.0, 1.0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (-0.3, 0.9, [-0.25, 0, 0.25, 0.5, 0.75]),
    (12, 13, [12, 12.2, 12.4, 12.6, 12.8, 13]),
])
def test_nice_ticks(lo, hi, want):
    assert plot.nice_ticks(lo, hi) == pytest.approx(want)


@pytest.mark.parametrize("lo, hi", [(1, 1), (2, 1), (0, math.nan), (-math.inf, 0)])
def test_nice_ticks_refuses_an_empty_or_nonfinite_range(lo, hi):
    with pytest.raises(ValueError, match="finite lo < hi"):
        plot.nice_ticks(lo, hi)


@pytest.mark.parametrize("v, step, want", [
    (2000, 2000, "2000"), (0.25, 0.25, "0.25"), (0.4, 0.2, "0.4"), (1.5e-17, 0.2, "0.0"),
    (-0.5, 2.5, "-0.5"), (3, 1, "3"), (0.004, 0.002, "0.004"),
])
def test_tick_label(v, step, want):
    assert plot.tick_label(v, step) == want


def test_moving_average_is_a_centred_mean_that_shrinks_at_the_ends():
    y = np.random.default_rng(0).normal(size=23)
    want = [y[max(i - 3, 0):i + 4].mean() for i in range(23)]
    np.testing.assert_allclose(plot.moving_average(y, 7), want, rtol=1e-12)


def _rows(n, **series):
    return [{"step": 10 * i, **{k: f(i) for k, f in series.items()}} for i in range(n)]


def _near(img, x, y, color, tol=40, r=1):
    """Whether a pixel within ``r`` of (x, y) is within ``tol`` of ``color`` in every channel."""
    a = np.asarray(img).astype(int)
    xi, yi = int(round(float(x))), int(round(float(y)))
    patch = a[yi - r:yi + r + 1, xi - r:xi + r + 1]
    return bool((np.abs(patch - np.array(color)).max(axis=-1) <= tol).any())


def test_lines_land_where_the_data_say():
    rows = _rows(11, d_loss=lambda i: 1.0 + 0.1 * i, g_loss=lambda i: 3.0 - 0.1 * i,
                 d_real=lambda i: 0.75, d_fake=lambda i: 0.25)
    img, (p_loss, p_out) = plot.render_losses(rows)
    assert img.size == (2 * plot.PANEL_W, plot.PANEL_H) and img.mode == "RGB"
    assert p_loss.y_lo < 1.0 and p_loss.y_hi > 3.0 and (p_out.y_lo, p_out.y_hi) == (0, 1)
    # the box's corners: step 0 at its left edge, the last step at its right, y pointing up
    for p in (p_loss, p_out):
        px, py = p.to_px([p.x_lo, p.x_hi], [p.y_lo, p.y_hi])
        np.testing.assert_allclose(px, [p.left, p.left + p.width])
        np.testing.assert_allclose(py, [p.top + p.height, p.top])
    assert p_loss.x_lo == 0 and p_loss.x_hi == 100 and p_out.left > p_loss.left + p_loss.width
    for step in (25, 55, 85):  # between logged points, away from the legend's corner
        assert _near(img, *p_loss.to_px(step, 1.0 + 0.01 * step), BLUE)
        assert _near(img, *p_loss.to_px(step, 3.0 - 0.01 * step), ORANGE)
        assert _near(img, *p_out.to_px(step, 0.75), BLUE)
        assert _near(img, *p_out.to_px(step, 0.25), ORANGE)
        # and not somewhere else: the D(x) line is not drawn at 0.6
        assert not _near(img, *p_out.to_px(step, 0.6), BLUE, r=2)
    assert not _near(img, *p_loss.to_px(55, 2.0), GREEN, r=3)  # no penalty without one


def test_the_penalty_is_drawn_when_logged():
    rows = _rows(11, d_loss=lambda i: 1.0, g_loss=lambda i: 1.0, penalty=lambda i: 0.1 * i,
                 d_real=lambda i: 0.5, d_fake=lambda i: 0.5)
    img, (p_loss, _) = plot.render_losses(rows)
    assert _near(img, *p_loss.to_px(50, 0.5), GREEN)
    # its legend entry sits above the box, where no line is drawn
    above = np.asarray(img)[:int(p_loss.top) - 1, :plot.PANEL_W].astype(int)
    assert (np.abs(above - np.array(GREEN)).max(axis=-1) <= 40).any()


def test_long_series_get_a_moving_average_on_top():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.3, size=300)
    rows = _rows(300, d_loss=lambda i: 1.0 + noise[i], g_loss=lambda i: 2.0,
                 d_real=lambda i: 0.5, d_fake=lambda i: 0.5)
    img, (p_loss, _) = plot.render_losses(rows)
    window = max(5, (300 // 25) | 1)
    ma = plot.moving_average(1.0 + noise, window)
    hits = [_near(img, *p_loss.to_px(10 * i, ma[i]), BLUE, tol=30) for i in range(40, 260, 20)]
    assert all(hits), hits
    # the logged values are drawn faintly: no full-strength blue far from the average
    far = [i for i in range(40, 260) if abs(noise[i] - (ma[i] - 1.0)) > 0.5]
    assert far and not any(_near(img, *p_loss.to_px(10 * i, 1.0 + noise[i]), BLUE, tol=30, r=0)
                           for i in far)


def test_nonfinite_and_missing_values_are_skipped(tmp_path):
    rows = _rows(20, d_loss=lambda i: math.nan if i == 7 else 1.0 + i % 3,
                 g_loss=lambda i: None if i % 2 else 0.5,
                 d_real=lambda i: math.inf if i == 3 else 0.6, d_fake=lambda i: 0.4)
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = plot.plot_losses(metrics, tmp_path / "losses.png")
    assert out == tmp_path / "losses.png"
    with Image.open(out) as im:
        assert im.size == (2 * plot.PANEL_W, plot.PANEL_H)
    _, (p_loss, _) = plot.render_losses(rows)
    assert math.isfinite(p_loss.y_lo) and p_loss.y_lo < 1.0 and p_loss.y_hi > 3.0


def test_a_log_without_losses_writes_nothing(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(json.dumps({"step": 5, "fid": 40.0}) + "\n")
    assert plot.plot_losses(metrics, tmp_path / "losses.png") is None
    assert plot.plot_losses(tmp_path / "absent.jsonl", tmp_path / "losses.png") is None
    assert not (tmp_path / "losses.png").exists()


def test_one_point_and_a_constant_series_still_plot():
    img, (p_loss, p_out) = plot.render_losses([{"step": 0, "d_loss": 1.3, "g_loss": 1.3,
                                                "d_real": 0.5, "d_fake": 0.5}])
    assert img is not None and p_loss.y_lo < 1.3 < p_loss.y_hi and p_loss.x_hi > p_loss.x_lo
    assert _near(img, *p_loss.to_px(0, 1.3), ORANGE, r=2)
