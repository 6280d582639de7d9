"""Figures of the sequence-models page: attention maps, the attention walkthrough, positional
encodings, per-residue predictions and the run comparison. Data in, plotly Figure out."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from playground.metrics import label as metric_label
from playground.plots.common import _layout

ATTN_SCALE = "Blues"
MOTIF_COLORS = ("#d62728", "#2ca02c")
RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
              "#bcbd22", "#17becf")
CLASS_COLORS = ("#d62728", "#1f77b4", "#bbbbbb", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
                "#17becf", "#bcbd22")


def _ticks(labels: list[str], max_ticks: int = 40) -> tuple[list[int], list[str]]:
    step = max(1, int(np.ceil(len(labels) / max_ticks)))
    idx = list(range(0, len(labels), step))
    return idx, [labels[i] for i in idx]


def _span_box(idx: list[int]) -> tuple[float, float] | None:
    return (min(idx) - 0.5, max(idx) + 0.5) if idx else None


def attention_grid_figure(weights: np.ndarray, labels: list[str], motifs: list[list[int]] | None = None,
                          title: str = "Attention: every layer and head", cell: int = 230) -> go.Figure:
    """weights (layers, heads, n, n) -> a grid of heatmaps: one row per layer, one column per
    head plus the head average. Rows of each map are queries ("who looks"), columns keys
    ("at whom"). ``motifs``: position lists of up to two motifs, outlined in every map."""
    weights = np.asarray(weights, dtype=float)
    n_layers, n_heads, n, _ = weights.shape
    cols = n_heads + 1
    names = [f"layer {l + 1} · {'head ' + str(h + 1) if h < n_heads else 'average'}"
             for l in range(n_layers) for h in range(cols)]
    height = max(320, int((cell + 50) * n_layers + 60))
    fig = make_subplots(rows=n_layers, cols=cols, subplot_titles=names, horizontal_spacing=0.025,
                        vertical_spacing=min(0.3, 70 / height) if n_layers > 1 else 0.1)
    tickvals, ticktext = _ticks(labels, 12)
    zmax = float(np.quantile(weights, 0.995)) if weights.size else 1.0
    for l in range(n_layers):
        for h in range(cols):
            z = weights[l, h] if h < n_heads else weights[l].mean(0)
            fig.add_trace(go.Heatmap(z=z, coloraxis="coloraxis", hovertemplate="query %{y}<br>key %{x}<br>"
                                     "weight %{z:.3f}<extra></extra>",
                                     x=list(range(n)), y=list(range(n)), customdata=None), row=l + 1, col=h + 1)
            fig.update_xaxes(tickvals=tickvals, ticktext=ticktext, tickfont=dict(size=8), row=l + 1, col=h + 1,
                             showgrid=False)
            fig.update_yaxes(tickvals=tickvals, ticktext=ticktext if h == 0 else [""] * len(tickvals),
                             tickfont=dict(size=8), autorange="reversed", row=l + 1, col=h + 1, showgrid=False)
            _add_motif_boxes(fig, motifs, row=l + 1, col=h + 1)
    fig.update_layout(coloraxis=dict(colorscale=ATTN_SCALE, cmin=0, cmax=max(zmax, 1e-6),
                                     colorbar=dict(title="weight", thickness=12)))
    fig.update_annotations(font_size=11)
    return _layout(fig, title, height, uirevision=None)


def _add_motif_boxes(fig: go.Figure, motifs, row=None, col=None) -> None:
    if not motifs:
        return
    boxes = [_span_box(m) for m in motifs]
    for i, a in enumerate(boxes):
        if a is None:
            continue
        for j, b in enumerate(boxes):
            if b is None or i == j:
                continue
            # queries of motif i looking at keys of motif j
            fig.add_shape(type="rect", x0=b[0], x1=b[1], y0=a[0], y1=a[1], line=dict(color=MOTIF_COLORS[i % 2],
                          width=2), row=row, col=col)


def attention_heatmap_figure(matrix: np.ndarray, labels: list[str], title: str = "Attention",
                             motifs: list[list[int]] | None = None, height: int = 600,
                             motif_names: tuple[str, str] = ("motif A", "motif B")) -> go.Figure:
    """One map, large, with the residues/bases on both axes."""
    matrix = np.asarray(matrix, dtype=float)
    n = len(labels)
    fig = go.Figure(go.Heatmap(z=matrix, x=list(range(n)), y=list(range(n)), colorscale=ATTN_SCALE, zmin=0,
                               colorbar=dict(title="weight", thickness=12),
                               text=[[f"{labels[i]} → {labels[j]}" for j in range(n)] for i in range(n)],
                               hovertemplate="%{text}<br>weight %{z:.3f}<extra></extra>"))
    tv, tt = _ticks(labels, 30)
    fig.update_xaxes(tickvals=tv, ticktext=tt, title="key (attended to)", tickfont=dict(size=9), showgrid=False)
    fig.update_yaxes(tickvals=tv, ticktext=tt, title="query (attending)", autorange="reversed",
                     tickfont=dict(size=9), showgrid=False, scaleanchor="x")
    _add_motif_boxes(fig, motifs)
    fig = _layout(fig, title, height, uirevision=None)
    fig.update_layout(legend=dict(orientation="h", y=-0.2, x=0, xanchor="left", yanchor="top"),
                      margin=dict(l=50, r=10, t=40, b=120))
    if motifs:
        for i, m in enumerate(motifs[:2]):
            if m:
                fig.add_scatter(x=[None], y=[None], mode="lines", line=dict(color=MOTIF_COLORS[i], width=3),
                                name=f"queries in {motif_names[i]} → keys in {motif_names[1 - i]}")
    return fig


def matrix_figure(mat: np.ndarray, row_labels: list[str], col_labels: list[str], title: str, fmt: str = ".2f",
                  colorscale: str = "RdBu", zmid: float | None = 0.0, height: int | None = None,
                  zmin: float | None = None) -> go.Figure:
    """A small matrix with its numbers written in the cells (for Q, K, V, QKᵀ/√d_k ...)."""
    mat = np.asarray(mat, dtype=float)
    r, c = mat.shape
    text = [[format(v, fmt) if np.isfinite(v) else "−∞" for v in row] for row in mat]
    kw = dict(zmid=zmid) if zmid is not None else dict(zmin=zmin if zmin is not None else float(np.nanmin(mat)))
    fig = go.Figure(go.Heatmap(z=mat, x=col_labels, y=row_labels, colorscale=colorscale, text=text,
                               texttemplate="%{text}" if r * c <= 400 else None, textfont=dict(size=10),
                               showscale=False, hovertemplate="%{y}, %{x}: %{z:.4f}<extra></extra>", **kw))
    fig.update_xaxes(type="category", tickfont=dict(size=10), side="top")
    fig.update_yaxes(type="category", autorange="reversed", tickfont=dict(size=10))
    h = height or max(180, min(520, 28 * r + 90))
    fig = _layout(fig, title, h, uirevision=None)
    fig.update_layout(margin=dict(l=50, r=10, t=70, b=10))
    return fig


def positional_encoding_figure(pe: np.ndarray, title: str = "Positional encoding (position × dimension)",
                               height: int = 380) -> go.Figure:
    pe = np.asarray(pe, dtype=float)
    fig = go.Figure(go.Heatmap(z=pe, colorscale="RdBu", zmid=0, colorbar=dict(title="value", thickness=12),
                               hovertemplate="position %{y}<br>dimension %{x}<br>%{z:.3f}<extra></extra>"))
    fig.update_xaxes(title="dimension")
    fig.update_yaxes(title="position", autorange="reversed")
    return _layout(fig, title, height, uirevision=None)


def per_residue_figure(sequence: str, true_labels: str, predicted: str, class_names: list[str],
                       title: str = "Per-residue labels: true vs predicted", window: tuple[int, int] | None = None,
                       ) -> go.Figure:
    """Two coloured tracks (true, predicted) under the residues; '-' = ignored."""
    s0, s1 = window or (0, len(sequence))
    seq, t, p = sequence[s0:s1], true_labels[s0:s1], predicted[s0:s1]
    index = {c: i for i, c in enumerate(class_names)}
    z = [[index.get(ch, np.nan) for ch in t], [index.get(ch, np.nan) for ch in p]]
    k = max(1, len(class_names))
    scale = []
    for i in range(k):
        color = CLASS_COLORS[i % len(CLASS_COLORS)]
        scale += [(i / k, color), ((i + 1) / k, color)]
    text = [list(t), list(p)]
    fig = go.Figure(go.Heatmap(z=z, x=list(range(len(seq))), y=["true", "predicted"], colorscale=scale, zmin=-0.5,
                               zmax=k - 0.5, text=text, texttemplate="%{text}", textfont=dict(size=10),
                               showscale=False, hovertemplate="%{y} %{text}<extra></extra>"))
    tv = list(range(len(seq)))
    fig.update_xaxes(tickvals=tv, ticktext=[f"{ch}" for ch in seq], tickfont=dict(size=9), showgrid=False,
                     title=f"residues {s0 + 1}–{s0 + len(seq)}")
    fig.update_yaxes(autorange="reversed")
    wrong = sum(a != b for a, b in zip(t, p) if a in index)
    known = sum(a in index for a in t)
    return _layout(fig, f"{title} ({known - wrong}/{known} right)", 200, uirevision=None)


def comparison_figure(runs, metric: str, what: str = "metric", title: str | None = None,
                      height: int = 340) -> go.Figure:
    """Overlay of every run's validation curve (``what``: 'metric' or 'loss')."""
    fig = go.Figure()
    key = f"val_{metric}" if what == "metric" else "val_loss"
    for i, r in enumerate(runs):
        ep = np.array([h["epoch"] for h in r.history], dtype=float)
        y = np.array([h.get(key, np.nan) for h in r.history], dtype=float)
        color = RUN_COLORS[i % len(RUN_COLORS)]
        fig.add_scatter(x=ep, y=y, mode="lines+markers", name=r.name, line=dict(color=color, width=2.5),
                        marker=dict(size=5))
    label = metric_label(metric)
    fig.update_xaxes(title="epoch", dtick=1 if max((r.epochs for r in runs), default=0) <= 10 else None)
    fig.update_yaxes(title=("validation " + label) if what == "metric" else "validation loss")
    default = f"Validation {label} per epoch" if what == "metric" else "Validation loss per epoch"
    fig = _layout(fig, title or default, height, uirevision="compare")
    fig.update_layout(legend=dict(orientation="h", y=-0.25, x=0, xanchor="left", yanchor="top"),
                      margin=dict(l=50, r=10, t=40, b=100))
    return fig
