"""Figures of the convolution by hand (``playground.convolution.ConvolutionByHand`` in, plotly out).

- ``track_figure``: the padded one-hot under its letters with the current window boxed, and
  under it each filter's feature map, filled in up to the current window (the growing track);
- ``window_figure``: the window's one-hot columns × the filter = the element-wise products;
- ``pipeline_figure``: feature map → ReLU → max-pool → flatten, with every number.

Cell colours are light so the numbers stay readable in black (projector mode draws all plot
text black). The figures are built from plain dicts with their own grid of axes
(``playground.plots.common.figure``): ``make_subplots`` and ``add_*`` calls took ~100 ms per
redraw of the tab, which redraws at every step of the window. Pure functions: no streamlit.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from playground.plots.common import figure, layout_dict
from playground.plots.dna import BASE_COLORS

BASES = "ACGT"
ONE_HOT_SCALE = [[0.0, "#ffffff"], [1.0, "#81c995"]]
VALUE_SCALE = [[0.0, "#ef8a8a"], [0.5, "#ffffff"], [1.0, "#74aee6"]]    # negative red, 0 white, positive blue
PAD_COLOR = "rgba(150, 150, 150, 0.25)"
WINDOW_COLOR = "#d32f2f"


def _fmt(v: float, decimals: int = 2) -> str:
    """A cell's number: whole numbers as such, others with up to ``decimals`` decimals."""
    if v is None or not np.isfinite(v):
        return ""
    r = round(float(v), decimals)
    return f"{r:g}" if abs(r - round(r)) > 1e-9 else f"{int(round(r))}"


def _text_size(columns: int, width_px: float = 1000.0) -> int:
    return int(max(8, min(15, width_px / max(columns, 1) / 2.6)))


def _texts(z, columns: int, width_px: float, shown=None) -> tuple[list[list[str]], int]:
    """Cell labels that fit their cells (``width_px`` / ``columns`` pixels wide): two decimals,
    else one, else whole numbers (for numbers of 5 or more), else none; and the font size.
    ``shown``: the cells to label."""
    z = np.atleast_2d(np.asarray(z, dtype=float))
    size = _text_size(columns, width_px)
    cell = width_px / max(columns, 1)
    ok = np.ones(z.shape, bool) if shown is None else np.broadcast_to(shown, z.shape)
    big = np.nanmax(np.abs(z), initial=0.0) >= 5      # whole numbers only where rounding loses little
    for d in (2, 1, 0) if big else (2, 1):
        text = [[_fmt(v, d) if o else "" for v, o in zip(row, okr)] for row, okr in zip(z, ok)]
        longest = max((len(t) for row in text for t in row), default=0)
        if longest * size * 0.62 <= cell - 3:
            return text, size
    return [["" for _ in row] for row in z], size


def _lim(*arrays) -> float:
    m = max((float(np.nanmax(np.abs(a))) for a in arrays if a is not None and np.size(a)), default=1.0)
    return m or 1.0


class _Grid:
    """A rows × cols grid of axes as layout dicts (what make_subplots does, without its cost).
    ``ref(r, c)`` -> ('x3', 'y3') for a trace or a shape; ``layout`` holds the axes and titles."""

    def __init__(self, rows: int, cols: int = 1, heights=None, vspace: float = 0.08, hspace: float = 0.05,
                 titles=None, share_x: bool = False):
        self.rows, self.cols = rows, cols
        heights = list(heights or [1] * rows)
        usable = 1.0 - vspace * (rows - 1)
        width = (1.0 - hspace * (cols - 1)) / cols
        self.layout: dict = {}
        annotations = []
        top = 1.0
        for r in range(rows):
            h = usable * heights[r] / sum(heights)
            y0, y1 = max(0.0, top - h), top
            for c in range(cols):
                a = self._n(r, c)
                x0 = c * (width + hspace)
                sfx = "" if a == 1 else str(a)
                self.layout[f"xaxis{sfx}"] = dict(domain=[x0, min(1.0, x0 + width)], anchor=f"y{sfx}",
                                                  showgrid=False, zeroline=False)
                self.layout[f"yaxis{sfx}"] = dict(domain=[y0, y1], anchor=f"x{sfx}", showgrid=False,
                                                  zeroline=False)
                if share_x and a != 1:
                    self.layout[f"xaxis{sfx}"]["matches"] = "x"
                title = titles[r * cols + c] if titles else ""
                if title:
                    annotations.append(dict(text=title, x=x0 + width / 2, y=y1, xref="paper", yref="paper",
                                            xanchor="center", yanchor="bottom", showarrow=False,
                                            font=dict(size=14)))
            top = y0 - vspace
        self.annotations = annotations

    def _n(self, r: int, c: int) -> int:
        return r * self.cols + c + 1

    def ref(self, r: int, c: int = 0) -> tuple[str, str]:
        a = self._n(r, c)
        return ("x", "y") if a == 1 else (f"x{a}", f"y{a}")

    def axis(self, kind: str, r: int, c: int = 0) -> dict:
        a = self._n(r, c)
        return self.layout[f"{kind}axis{'' if a == 1 else a}"]


def _heatmap(z, x, y, ref, *, scale, lim: float | None, size: int, name: str, text=None, hover: str = "") -> dict:
    z = np.asarray(z, dtype=float)
    text = text if text is not None else [[_fmt(v) for v in row] for row in z]
    lo, hi = (0.0, 1.0) if lim is None else (-lim, lim)
    return dict(type="heatmap", z=z, x=x, y=y, xaxis=ref[0], yaxis=ref[1], colorscale=scale, zmin=lo, zmax=hi,
                showscale=False, text=text, texttemplate="%{text}", textfont=dict(size=size, color="#000"),
                xgap=2, ygap=2, name=name, hovertemplate=hover or (name + " %{y}, %{x}: %{z:.3g}<extra></extra>"))


def _rect(ref, x0, x1, y0, y1, color=WINDOW_COLOR, width=3.0, fill="rgba(0,0,0,0)") -> dict:
    return dict(type="rect", xref=ref[0], yref=ref[1], x0=x0, x1=x1, y0=y0, y1=y1, line=dict(color=color, width=width),
                fillcolor=fill, layer="above")


def _finish(grid: _Grid, data: list[dict], height: int, margin: dict, shapes=()) -> go.Figure:
    layout = layout_dict("", height, uirevision=None, shapes=list(shapes), annotations=grid.annotations,
                         **grid.layout)
    layout.pop("title", None)
    layout["margin"] = margin
    return figure(data, layout)


def track_figure(r, window: int, height: int | None = None) -> go.Figure:
    """The padded one-hot (rows A C G T, one column per base under its letter) with window
    ``window`` (0-based) boxed, and each filter's feature map below it, filled up to that window.
    A feature value sits under the middle of its window."""
    Lp, k, F, n = r.padded.shape[1], r.kernel_size, r.n_filters, r.n_windows
    grid = _Grid(1 + F, 1, heights=[4] + [1.3] * F, vspace=0.04, share_x=True)
    cols = list(range(Lp))
    inside = [r.padding <= j < r.padding + r.length for j in cols]
    letters = [r.sequence[j - r.padding] if inside[j] else "·" for j in cols]
    size = _text_size(Lp)
    text = [["1" if v == 1 else ("0" if Lp <= 60 else "") for v in row] for row in r.padded]
    data = [_heatmap(r.padded, cols, list(BASES), grid.ref(0), scale=ONE_HOT_SCALE, lim=None, size=size,
                     name="one-hot", text=text, hover="column %{x}, %{y}: %{z}<extra></extra>")]
    i = int(np.clip(window, 0, n - 1))
    s = int(r.starts[i])
    shapes = [_rect(grid.ref(0), j - 0.5, j + 0.5, -0.5, 3.5, color="rgba(0,0,0,0)", width=0, fill=PAD_COLOR)
              for j in cols if not inside[j]]
    shapes.append(_rect(grid.ref(0), s - 0.5, s + k - 0.5, -0.5, 3.5, width=3.5))
    centers = r.starts + (k - 1) / 2
    lim = _lim(r.feature_maps)
    shown = np.arange(n) <= i
    for f in range(F):
        z = np.where(shown, r.feature_maps[f], np.nan)[None]
        txt, fsize = _texts(r.feature_maps[f], Lp / r.stride, 1000.0, shown)
        data.append(_heatmap(z, centers, [r.names[f]], grid.ref(1 + f), scale=VALUE_SCALE, lim=lim, size=fsize,
                             name="feature map", text=txt))
        shapes.append(_rect(grid.ref(1 + f), centers[i] - r.stride / 2, centers[i] + r.stride / 2, -0.5, 0.5))
    top = grid.axis("x", 0)
    top.update(range=[-0.5, Lp - 0.5], tickmode="array", tickvals=cols, side="top",
               ticktext=[f'<b><span style="color:{BASE_COLORS.get(c, "#777")}">{c}</span></b>' for c in letters],
               tickfont=dict(size=max(size, 10), family="monospace"))
    grid.axis("y", 0).update(autorange="reversed", tickfont=dict(size=13))
    seq_cols = [j for j in cols if inside[j]]
    for f in range(F):
        last = f == F - 1
        grid.axis("x", 1 + f).update(showticklabels=last, tickmode="array", tickvals=seq_cols,
                                     ticktext=[str(j - r.padding + 1) for j in seq_cols],
                                     title=dict(text="position in the sequence (· = padding)") if last else None)
    return _finish(grid, data, height or 170 + 55 * F, dict(l=70, r=10, t=40, b=45), shapes)


def window_figure(r, window: int) -> go.Figure:
    """For window ``window`` (0-based), one row per filter: its one-hot columns, × the filter,
    = the element-wise products (whose sum, plus the bias, is the feature-map value)."""
    w = r.window(window)
    F, k = r.n_filters, r.kernel_size
    cols = list(range(k))
    under = [f"{c}<br>{p if p else 'pad'}" for c, p in zip(w["letters"], w["positions"])]
    titles = []
    for f in range(F):
        titles += [f"window {window + 1}: one-hot" if f == 0 else "", f"× filter {r.names[f]}",
                   f"= products (sum {_fmt(w['sums'][f])})"]
    grid = _Grid(F, 3, vspace=0.2 if F > 1 else 0.1, hspace=0.05, titles=titles)
    panel = 250.0                      # a panel's width on a laptop (the figure has two thirds of the tab)
    data = []
    for f in range(F):
        lim = _lim(r.filters[f], w["products"][f])      # each filter on its own colour scale
        t1, s1 = _texts(w["one_hot"], k, panel)
        t2, s2 = _texts(r.filters[f], k, panel)
        t3, s3 = _texts(w["products"][f], k, panel)
        data.append(_heatmap(w["one_hot"], cols, list(BASES), grid.ref(f, 0), scale=ONE_HOT_SCALE, lim=None,
                             size=s1, name="one-hot", text=t1, hover="%{y}: %{z}<extra></extra>"))
        data.append(_heatmap(r.filters[f], cols, list(BASES), grid.ref(f, 1), scale=VALUE_SCALE, lim=lim, size=s2,
                             name="filter", text=t2))
        data.append(_heatmap(w["products"][f], cols, list(BASES), grid.ref(f, 2), scale=VALUE_SCALE, lim=lim,
                             size=s3, name="product", text=t3))
        for c, labels in ((0, under), (1, [str(j + 1) for j in cols]), (2, under)):
            grid.axis("x", f, c).update(tickmode="array", tickvals=cols if k <= 12 else cols[::2],
                                        ticktext=labels if k <= 12 else labels[::2], tickfont=dict(size=11))
            grid.axis("y", f, c).update(autorange="reversed", tickfont=dict(size=13))
    return _finish(grid, data, 80 + 200 * F, dict(l=30, r=10, t=40, b=40))


def pipeline_figure(r) -> go.Figure:
    """Feature maps → ReLU → max-pool → flatten, one heatmap each (filters as rows), with the numbers."""
    stages = [("feature map = sum + bias", r.feature_maps, r.names),
              ("ReLU = max(0, ·)", r.relu, r.names)]
    if r.pooled is not None:
        stages.append((f"max-pool (size {r.pool})", r.pooled, r.names))
    stages.append((f"flatten ({r.flattened.size} numbers for the dense layer)", r.flattened[None], ["flat"]))
    heights = [z.shape[0] + 0.9 for _, z, _ in stages]
    grid = _Grid(len(stages), 1, heights=heights, vspace=0.5 / len(stages), titles=[t for t, _, _ in stages])
    lim = _lim(r.feature_maps)
    widest = max(z.shape[1] for _, z, _ in stages)
    data = []
    for row, (title, z, y) in enumerate(stages):
        x = list(range(1, z.shape[1] + 1))
        text, size = _texts(z, widest, 620.0)
        data.append(_heatmap(z, x, y, grid.ref(row), scale=VALUE_SCALE, lim=lim, size=size, name=title.split(" ")[0],
                             text=text))
        grid.axis("x", row).update(range=[0.5, widest + 0.5], dtick=1 if widest <= 30 else None,
                                   tickfont=dict(size=11))
        grid.axis("y", row).update(autorange="reversed", tickfont=dict(size=13))
    return _finish(grid, data, int(60 + 62 * sum(heights)), dict(l=70, r=10, t=40, b=25))


__all__ = ["track_figure", "window_figure", "pipeline_figure"]
