"""Figures for the DNA page: the one-hot matrix, sequence logos (logomaker -> matplotlib),
saliency and in-silico-mutagenesis maps with the planted motif marked.

All functions are pure: arrays in, a plotly Figure or a matplotlib Figure out.
``figure_png(fig)`` turns a matplotlib figure into PNG bytes (and closes it).
"""
from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go

from playground.plots.common import _layout

BASES = "ACGT"
# The classic nucleotide colours (logomaker's 'classic' scheme).
BASE_COLORS = {"A": "#0f9d58", "C": "#1565c0", "G": "#f9a825", "T": "#d32f2f", "N": "#9e9e9e"}
SITE_COLOR = "rgba(120, 120, 120, 0.18)"


def _style(fig: go.Figure, title: str, height: int, uirevision=None, margin: dict | None = None) -> go.Figure:
    _layout(fig, title, height, uirevision=uirevision)
    if margin:
        fig.update_layout(margin=margin)
    return fig


# --------------------------------------------------------------------------------------------
# the one-hot matrix
def one_hot_figure(seq: str, n_value: float = 0.0, title: str = "One-hot matrix", max_positions: int = 60,
                   sites=()) -> go.Figure:
    """The sequence as the course draws it: one row per position, columns A C G T, a 1 where
    the base is. N is all zeros (or ``n_value`` in every column). Planted sites are boxed."""
    s = seq.upper()[:max_positions]
    z = np.zeros((len(s), 4))
    for i, ch in enumerate(s):
        if ch in BASES:
            z[i, BASES.index(ch)] = 1.0
        else:
            z[i, :] = n_value
    rows = [f"{i + 1} {ch}" for i, ch in enumerate(s)]
    text = [[("1" if v == 1 else "0" if v == 0 else f"{v:g}") for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=list(BASES), y=rows, colorscale=[[0, "#ffffff"], [1, "#0b6e4f"]], zmin=0, zmax=1,
                               text=text, texttemplate="%{text}", textfont=dict(size=12), showscale=False,
                               xgap=1, ygap=1, hovertemplate="position %{y}, column %{x}: %{z}<extra></extra>"))
    for st in sites:
        if st.start < len(s):
            fig.add_shape(type="rect", x0=-0.5, x1=3.5, y0=st.start - 0.5, y1=min(st.end, len(s)) - 0.5,
                          line=dict(color="#d32f2f", width=2.5), fillcolor="rgba(0,0,0,0)")
    fig.update_xaxes(side="top", title="", tickfont=dict(size=15))
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=11), title="position & base")
    height = max(260, 17 * len(s) + 90)
    return _style(fig, title, height, margin=dict(l=80, r=10, t=60, b=10))


def sequence_strip_figure(seq: str, sites=(), title: str = "") -> go.Figure:
    """The sequence as a row of coloured letters with the planted sites shaded."""
    s = seq.upper()
    fig = go.Figure()
    colors = [BASE_COLORS.get(c, "#9e9e9e") for c in s]
    fig.add_scatter(x=list(range(1, len(s) + 1)), y=[0] * len(s), mode="text", text=list(s),
                    textfont=dict(size=16, color=colors, family="monospace"), hoverinfo="skip", showlegend=False)
    _mark_sites(fig, sites, y0=-0.5, y1=0.5)
    fig.update_yaxes(visible=False, range=[-0.6, 0.6])
    fig.update_xaxes(title="position", range=[0.5, len(s) + 0.5])
    return _style(fig, title, 130, margin=dict(l=20, r=10, t=30 if title else 10, b=40))


def _mark_sites(fig: go.Figure, sites, y0=None, y1=None, yref="paper"):
    for st in sites:
        fig.add_vrect(x0=st.start + 0.5, x1=st.end + 0.5, fillcolor=SITE_COLOR, line_width=0, layer="below",
                      annotation_text=f"{st.motif} ({st.strand})", annotation_position="top left",
                      annotation_font=dict(size=12, color="#555"))


# --------------------------------------------------------------------------------------------
# saliency and in-silico mutagenesis
def saliency_figure(sal: np.ndarray, seq: str, sites=(), title: str = "Saliency (gradient × input)") -> go.Figure:
    """Per position: how much the base that is there pushes the output up (bar above 0) or
    down. Bars are coloured by base; planted motif sites are shaded."""
    s = seq.upper()
    L = sal.shape[1]
    val = sal.sum(0)
    colors = [BASE_COLORS.get(c, "#9e9e9e") for c in s[:L]]
    fig = go.Figure(go.Bar(x=list(range(1, L + 1)), y=val, marker_color=colors, text=list(s[:L]),
                           textposition="outside", textfont=dict(size=11),
                           hovertemplate="position %{x} (%{text}): %{y:.3f}<extra></extra>", showlegend=False))
    _mark_sites(fig, sites)
    fig.update_xaxes(title="position")
    fig.update_yaxes(title="gradient × input", zeroline=True, zerolinecolor="#888")
    return _style(fig, title, 300)


def ism_figure(delta: np.ndarray, seq: str, sites=(), title: str = "In-silico mutagenesis") -> go.Figure:
    """(4, L) change of the output when each position is mutated to each base (0 = the
    sequence's own base). Red: the mutation raises the output; blue: lowers it."""
    s = seq.upper()
    L = delta.shape[1]
    lim = float(np.abs(delta).max()) or 1.0
    text = [["•" if s[j] == b else "" for j in range(L)] for b in BASES]
    fig = go.Figure(go.Heatmap(z=delta, x=list(range(1, L + 1)), y=[f"→{b}" for b in BASES], colorscale="RdBu_r",
                               zmid=0, zmin=-lim, zmax=lim, text=text, texttemplate="%{text}",
                               colorbar=dict(title="Δ output", thickness=12),
                               hovertemplate="position %{x}, mutate %{y}: %{z:.3f}<extra></extra>"))
    for st in sites:
        fig.add_shape(type="rect", x0=st.start + 0.5, x1=st.end + 0.5, y0=-0.5, y1=3.5,
                      line=dict(color="black", width=2.5, dash="dot"))
        fig.add_annotation(x=(st.start + st.end) / 2 + 0.5, y=1.0, yref="paper", text=f"planted {st.motif}",
                           showarrow=False, yanchor="bottom", font=dict(size=12))
    fig.update_xaxes(title="position (• = the sequence's base)")
    return _style(fig, title, 260)


def recovery_figure(history: list[dict], title: str = "Motif recovered (best filter vs planted motif)",
                    height: int = 280, chance: dict | None = None) -> go.Figure:
    """Pearson of the best-matching filter per epoch, one line per planted motif. ``chance``
    ({motif: band}, ``playground.motif_chance``) shades what untrained networks reach (95 %)."""
    fig = go.Figure()
    names = sorted({k for h in history for k in h if k != "epoch"})
    for n in names:
        pts = [(h["epoch"], h[n]) for h in history if n in h]
        fig.add_scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=n)
    bands = [float(b) for b in (chance or {}).values() if np.isfinite(b)]
    if bands:
        fig.add_hrect(y0=0, y1=max(bands), fillcolor="rgba(150, 150, 150, 0.22)", line_width=0, layer="below",
                      annotation_text="chance (95 % of untrained networks)", annotation_position="bottom left",
                      annotation_font=dict(size=11, color="#555"))
    else:
        fig.add_hline(y=0.8, line_dash="dash", line_color="gray")
    last = max((h["epoch"] for h in history), default=1)
    fig.update_xaxes(title="epoch", dtick=max(1, int(np.ceil(last / 8))))
    fig.update_yaxes(title="Pearson", range=[0, 1.05], tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0])
    fig.update_layout(showlegend=len(names) > 1)
    return _style(fig, title, height, uirevision="keep", margin=dict(l=50, r=10, t=40, b=40))


# --------------------------------------------------------------------------------------------
# logos (logomaker, matplotlib)
def _logomaker_frame(mat: np.ndarray):
    import pandas as pd

    return pd.DataFrame(np.asarray(mat, dtype=float).T, columns=list(BASES))


def draw_logo(ax, mat: np.ndarray, title: str = "", ylabel: str = "bits", ylim=None, sites=(),
              start: int = 1, fontsize: int = 11) -> None:
    """One logo into a matplotlib Axes: ``mat`` is (4, w) letter heights (bits, weights ...)."""
    import logomaker

    df = _logomaker_frame(mat)
    df.index = np.arange(start, start + len(df))
    logomaker.Logo(df, ax=ax, color_scheme="classic", font_name="DejaVu Sans Mono", vpad=0.02)
    for st in sites:
        ax.axvspan(st.start + start - 0.5, st.end + start - 0.5, color="#bbbbbb", alpha=0.35, zorder=-1, lw=0)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title, fontsize=fontsize, loc="left")
    ax.set_ylabel(ylabel, fontsize=fontsize - 2)
    ax.tick_params(labelsize=fontsize - 3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def logo_grid_figure(mats: list[np.ndarray], titles: list[str], ylabel: str = "bits", ncols: int = 4,
                     ylim=(0, 2.0), panel_height: float = 1.7, width: float = 13.0, fontsize: int = 12):
    """Several logos in one matplotlib figure (e.g. one per filter)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    n = max(1, len(mats))
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(width, panel_height * nrows + 0.2))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(mats):
            ax.axis("off")
            continue
        lim = ylim
        if ylim is None:
            m = np.asarray(mats[i])
            top = float(np.clip(m, 0, None).sum(0).max()) or 1.0
            bottom = float(np.clip(m, None, 0).sum(0).min())
            lim = (min(bottom * 1.05, 0), top * 1.05)
        draw_logo(ax, mats[i], titles[i], ylabel, lim, fontsize=fontsize)
    fig.tight_layout(pad=0.4, h_pad=0.6, w_pad=0.8)
    return fig


def filter_logos_figure(pwms, filters=None, kind: str = "activation", ncols: int = 4):
    """The first-layer filters of ``interpret.activation_pwms`` as logos: ``kind`` 'activation'
    (information content of the activation PWM, bits) or 'weights' (raw weights, centred per
    column). ``filters``: indices to draw (default: all)."""
    from playground.interpret import information_matrix, weight_logo_matrix

    order = list(range(pwms.n_filters)) if filters is None else [int(f) for f in filters]
    if kind == "activation":
        mats = [information_matrix(pwms.pwms[f]) for f in order]
        ylabel, ylim = "bits", (0, 2)
    elif kind == "weights":
        mats = [weight_logo_matrix(pwms.weights[f]) for f in order]
        ylabel, ylim = "weight", None
    else:
        raise ValueError("kind is 'activation' or 'weights'")
    titles = [f"filter {f + 1} · {int(pwms.n_sites[f])} sites" for f in order]
    return logo_grid_figure(mats, titles, ylabel, ncols=ncols, ylim=ylim)


def logo_figure(mat: np.ndarray, title: str = "", ylabel: str = "bits", ylim=None, sites=(), width: float = 13.0,
                height: float = 2.2):
    """One wide logo (e.g. a saliency logo over a whole sequence)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    ax = fig.subplots()
    draw_logo(ax, mat, title, ylabel, ylim, sites)
    fig.tight_layout(pad=0.4)
    return fig


def figure_png(fig, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def filter_matrix_figure(weights: np.ndarray, title: str = "", height: int = 230) -> go.Figure:
    """A first-layer filter as its 4 × k numbers (rows A C G T), coloured around 0."""
    w = np.asarray(weights, dtype=float)
    lim = float(np.abs(w).max()) or 1.0
    fig = go.Figure(go.Heatmap(z=w, x=list(range(1, w.shape[1] + 1)), y=list(BASES), colorscale="RdBu_r", zmid=0,
                               zmin=-lim, zmax=lim, text=[[f"{v:.2g}" for v in row] for row in w],
                               texttemplate="%{text}", colorbar=dict(thickness=10),
                               hovertemplate="column %{x}, base %{y}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="column", dtick=1)
    return _style(fig, title, height, margin=dict(l=40, r=10, t=40, b=40))


__all__ = ["one_hot_figure", "sequence_strip_figure", "saliency_figure", "ism_figure", "recovery_figure",
           "filter_matrix_figure",
           "draw_logo", "logo_grid_figure", "filter_logos_figure", "logo_figure", "figure_png", "BASE_COLORS"]
