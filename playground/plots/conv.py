"""Figures of the convolution by hand (``playground.convolution.ConvolutionByHand`` in, plotly out).

- ``track_figure``: the padded one-hot under its letters with the current window boxed, and
  under it each filter's feature map, filled in up to the current window (the growing track);
- ``window_figure``: the window's one-hot columns × the filter = the element-wise products;
- ``pipeline_figure``: feature map → ReLU → max-pool → flatten, with every number.

Cell colours are light so the numbers stay readable in black (projector mode draws all plot
text black). Pure functions: no streamlit.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from playground.plots.common import _layout
from playground.plots.dna import BASE_COLORS

BASES = "ACGT"
ONE_HOT_SCALE = [[0.0, "#ffffff"], [1.0, "#81c995"]]
VALUE_SCALE = [[0.0, "#ef8a8a"], [0.5, "#ffffff"], [1.0, "#74aee6"]]    # negative red, 0 white, positive blue
PAD_COLOR = "rgba(150, 150, 150, 0.25)"
WINDOW_COLOR = "#d32f2f"


def _fmt(v: float) -> str:
    """A cell's number: whole numbers as such, others with up to two decimals."""
    if v is None or not np.isfinite(v):
        return ""
    r = round(float(v), 2)
    return f"{r:g}" if abs(r - round(r)) > 1e-9 else f"{int(round(r))}"


def _text_size(columns: int, width_px: float = 1000.0) -> int:
    return int(max(8, min(15, width_px / max(columns, 1) / 2.6)))


def _lim(*arrays) -> float:
    m = max((float(np.nanmax(np.abs(a))) for a in arrays if a is not None and np.size(a)), default=1.0)
    return m or 1.0


def _value_heatmap(z, x, y, lim: float, size: int, name: str, text=None) -> go.Heatmap:
    z = np.asarray(z, dtype=float)
    text = text if text is not None else [[_fmt(v) for v in row] for row in z]
    return go.Heatmap(z=z, x=x, y=y, colorscale=VALUE_SCALE, zmin=-lim, zmax=lim, showscale=False, text=text,
                      texttemplate="%{text}", textfont=dict(size=size, color="#000"), xgap=2, ygap=2, name=name,
                      hovertemplate=name + " %{y}, %{x}: %{z:.3g}<extra></extra>")


def track_figure(r, window: int, height: int | None = None) -> go.Figure:
    """The padded one-hot (rows A C G T, one column per base under its letter) with window
    ``window`` (0-based) boxed, and each filter's feature map below it, filled up to that window.
    A feature value sits under the middle of its window."""
    Lp, k, F, n = r.padded.shape[1], r.kernel_size, r.n_filters, r.n_windows
    fig = make_subplots(rows=1 + F, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        row_heights=[4] + [1.3] * F)
    cols = list(range(Lp))
    letters = ["·" if not (r.padding <= j < r.padding + r.length) else r.sequence[j - r.padding] for j in cols]
    size = _text_size(Lp)
    text = [["1" if v == 1 else ("0" if Lp <= 60 else "") for v in row] for row in r.padded]
    fig.add_trace(go.Heatmap(z=r.padded, x=cols, y=list(BASES), colorscale=ONE_HOT_SCALE, zmin=0, zmax=1,
                             showscale=False, text=text, texttemplate="%{text}", textfont=dict(size=size),
                             xgap=1, ygap=1, hovertemplate="column %{x}, %{y}: %{z}<extra></extra>"), row=1, col=1)
    for j in cols:
        if letters[j] == "·":
            fig.add_vrect(x0=j - 0.5, x1=j + 0.5, fillcolor=PAD_COLOR, line_width=0, row=1, col=1)
    centers = r.starts + (k - 1) / 2
    lim = _lim(r.feature_maps)
    i = int(np.clip(window, 0, n - 1))
    for f in range(F):
        z = np.where(np.arange(n) <= i, r.feature_maps[f], np.nan)[None]
        txt = [[_fmt(v) if j <= i else "" for j, v in enumerate(r.feature_maps[f])]]
        fig.add_trace(_value_heatmap(z, centers, [r.names[f]], lim, size, "feature map", txt), row=2 + f, col=1)
        fig.add_shape(type="rect", x0=centers[i] - r.stride / 2, x1=centers[i] + r.stride / 2, y0=-0.5, y1=0.5,
                      line=dict(color=WINDOW_COLOR, width=3), row=2 + f, col=1)
    s = int(r.starts[i])
    fig.add_shape(type="rect", x0=s - 0.5, x1=s + k - 0.5, y0=-0.5, y1=3.5, line=dict(color=WINDOW_COLOR, width=3.5),
                  row=1, col=1)
    ticktext = [f'<b><span style="color:{BASE_COLORS.get(c, "#777")}">{c}</span></b>' for c in letters]
    fig.update_xaxes(range=[-0.5, Lp - 0.5], showgrid=False, zeroline=False)
    fig.update_xaxes(tickmode="array", tickvals=cols, ticktext=ticktext, side="top", row=1, col=1,
                     tickfont=dict(size=max(size, 10), family="monospace"), showticklabels=True)
    for f in range(F):
        fig.update_xaxes(showticklabels=f == F - 1, row=2 + f, col=1,
                         title=dict(text="position in the sequence (· = padding)") if f == F - 1 else None,
                         tickmode="array", tickvals=[j for j in cols if letters[j] != "·"],
                         ticktext=[str(j - r.padding + 1) for j in cols if letters[j] != "·"])
    fig.update_yaxes(autorange="reversed", row=1, col=1, tickfont=dict(size=13))
    fig.update_yaxes(showgrid=False)
    fig = _layout(fig, "", height or 170 + 55 * F, uirevision=None)
    fig.update_layout(margin=dict(l=70, r=10, t=40, b=45))
    return fig


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
    fig = make_subplots(rows=F, cols=3, horizontal_spacing=0.05, vertical_spacing=0.2 if F > 1 else 0.1,
                        subplot_titles=titles)
    size = _text_size(3 * k, 900)
    lim = _lim(r.filters, w["products"])
    for f in range(F):
        row = f + 1
        fig.add_trace(go.Heatmap(z=w["one_hot"], x=cols, y=list(BASES), colorscale=ONE_HOT_SCALE, zmin=0, zmax=1,
                                 showscale=False, text=[[_fmt(v) for v in rr] for rr in w["one_hot"]],
                                 texttemplate="%{text}", textfont=dict(size=size), xgap=2, ygap=2,
                                 hovertemplate="%{y}: %{z}<extra></extra>"), row=row, col=1)
        fig.add_trace(_value_heatmap(r.filters[f], cols, list(BASES), lim, size, "filter"), row=row, col=2)
        fig.add_trace(_value_heatmap(w["products"][f], cols, list(BASES), lim, size, "product"), row=row, col=3)
        for c, labels in ((1, under), (2, [str(j + 1) for j in cols]), (3, under)):
            fig.update_xaxes(tickmode="array", tickvals=cols, ticktext=labels if k <= 30 else None, row=row, col=c)
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=13))
    fig.update_xaxes(tickfont=dict(size=11), showgrid=False, zeroline=False)
    fig = _layout(fig, "", 80 + 200 * F, uirevision=None)
    fig.update_layout(margin=dict(l=30, r=10, t=40, b=40))
    return fig


def pipeline_figure(r) -> go.Figure:
    """Feature maps → ReLU → max-pool → flatten, one heatmap each (filters as rows), with the numbers."""
    F, n = r.n_filters, r.n_windows
    stages = [("feature map = sum + bias", r.feature_maps, list(range(1, n + 1))),
              ("ReLU = max(0, ·)", r.relu, list(range(1, n + 1)))]
    if r.pooled is not None:
        stages.append((f"max-pool (size {r.pool})", r.pooled, list(range(1, r.pooled.shape[1] + 1))))
    stages.append((f"flatten ({r.flattened.size} numbers for the dense layer)", r.flattened[None],
                   list(range(1, r.flattened.size + 1))))
    heights = [z.shape[0] + 0.9 for _, z, _ in stages]
    fig = make_subplots(rows=len(stages), cols=1, vertical_spacing=0.5 / len(stages), row_heights=heights,
                        subplot_titles=[t for t, _, _ in stages])
    lim = _lim(r.feature_maps)
    widest = max(len(x) for _, _, x in stages)
    size = _text_size(widest)
    for row, (title, z, x) in enumerate(stages, start=1):
        y = ["flat"] if z.shape[0] == 1 and title.startswith("flatten") else r.names
        fig.add_trace(_value_heatmap(z, x, y, lim, size, title.split(" ")[0]), row=row, col=1)
        fig.update_xaxes(range=[0.5, widest + 0.5], dtick=1 if widest <= 30 else None, row=row, col=1)
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=13))
    fig.update_xaxes(showgrid=False, zeroline=False, tickfont=dict(size=11))
    fig = _layout(fig, "", int(60 + 62 * sum(heights)), uirevision=None)
    fig.update_layout(margin=dict(l=70, r=10, t=40, b=25))
    return fig


__all__ = ["track_figure", "window_figure", "pipeline_figure"]
