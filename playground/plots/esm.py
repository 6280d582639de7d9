"""Figures of the protein-language-model page: masked-LM predictions, embeddings, attention,
contacts, head-vs-scratch curves. Pure functions: data in, plotly Figure out.

Every function takes ``untrained``: figures of a randomly initialised ESM-2 carry
"untrained weights" in the title and as a watermark, so no screenshot can pass them off as
what ESM-2 learned."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from playground.metrics import label as metric_label
from playground.plots.common import TEST_COLOR, TRAIN_COLOR, _layout

UNTRAINED = "untrained weights"
MODEL_COLORS = ["#0b6e4f", "#c0392b", "#1f77b4", "#8e44ad"]
LABEL_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                "#d62728"]
AA_COLUMNS = list("ACDEFGHIKLMNPQRSTVWY") + ["other"]


def titled(title: str, untrained: bool) -> str:
    return f"{title} · <b>{UNTRAINED}</b>" if untrained else title


def _mark_untrained(fig: go.Figure, untrained: bool) -> go.Figure:
    if untrained:
        fig.add_annotation(text=UNTRAINED.upper(), xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                           font=dict(size=34, color="rgba(192,57,43,0.18)"), textangle=-18)
    return fig


def topk_figure(top: dict[int, list[tuple[str, float]]], seq: str, untrained: bool = False,
                true_prob: dict[int, float] | None = None) -> go.Figure:
    """One small bar chart per masked position: the top-k amino acids and their probabilities;
    the residue that was really there is drawn in orange."""
    positions = list(top)[:8]
    n = max(1, len(positions))
    fig = make_subplots(rows=1, cols=n, subplot_titles=[f"position {p}: was <b>{seq[p - 1]}</b>" for p in positions],
                        horizontal_spacing=0.04 if n > 1 else 0.0)
    for c, p in enumerate(positions, start=1):
        aas = [a for a, _ in top[p]][::-1]
        ps = [v for _, v in top[p]][::-1]
        colors = [TEST_COLOR if a == seq[p - 1] else "#0b6e4f" for a in aas]
        fig.add_bar(x=ps, y=aas, orientation="h", marker_color=colors, showlegend=False,
                    text=[f"{v:.2f}" for v in ps], textposition="auto",
                    hovertemplate="%{y}: P = %{x:.3f}<extra>position " + str(p) + "</extra>", row=1, col=c)
        fig.update_xaxes(range=[0, 1], title="probability", row=1, col=c)
    fig = _layout(fig, titled("Top predictions at the masked positions", untrained), 300 if n <= 4 else 340)
    return _mark_untrained(fig, untrained)


def probability_heatmap(probs: np.ndarray, seq: str, masked: list[int] = (), untrained: bool = False,
                        title: str = "P(amino acid) at every position") -> go.Figure:
    """Position × amino acid heatmap (columns = positions, rows = 20 amino acids + 'other');
    a black dot marks the true residue, masked positions are labelled with [mask]."""
    probs = np.asarray(probs, dtype=float)
    L = len(seq)
    x = list(range(1, L + 1))
    fig = go.Figure(go.Heatmap(z=probs.T, x=x, y=AA_COLUMNS, colorscale="Viridis", zmin=0, zmax=1,
                               colorbar=dict(title="P", thickness=12),
                               customdata=np.array([[seq[i]] * len(AA_COLUMNS) for i in range(L)]).T,
                               hovertemplate="position %{x} (%{customdata})<br>%{y}: P = %{z:.3f}<extra></extra>"))
    true_rows = [c if c in AA_COLUMNS[:20] else "other" for c in seq]
    fig.add_scatter(x=x, y=true_rows, mode="markers", name="true residue",
                    marker=dict(color="white", size=5 if L > 120 else 7, line=dict(color="black", width=1)),
                    hovertemplate="position %{x}: true residue %{y}<extra></extra>")
    for p in masked:
        fig.add_vrect(x0=p - 0.5, x1=p + 0.5, line=dict(color=TEST_COLOR, width=2), fillcolor="rgba(0,0,0,0)")
    fig.update_xaxes(title="position in the sequence (orange boxes: masked)")
    fig.update_yaxes(title="amino acid", autorange="reversed", dtick=1)
    fig = _layout(fig, titled(title, untrained), 460)
    fig.update_layout(legend=dict(orientation="h", y=1.06, x=1, xanchor="right"))
    return _mark_untrained(fig, untrained)


def per_position_figure(log_probs: np.ndarray, seq: str, untrained: bool = False, ppl: float | None = None) -> go.Figure:
    """log P(true residue) with each position masked in turn (the terms of the pseudo-perplexity)."""
    lp = np.asarray(log_probs, dtype=float)
    fig = go.Figure(go.Bar(x=list(range(1, len(seq) + 1)), y=np.exp(lp), marker_color="#0b6e4f",
                           customdata=list(seq),
                           hovertemplate="position %{x} (%{customdata}): P = %{y:.3f}<extra></extra>"))
    fig.add_hline(y=1 / 20, line=dict(dash="dash", color="gray"), annotation_text="1/20 = uniform guess")
    fig.update_xaxes(title="position (masked one at a time)")
    fig.update_yaxes(title="P(true residue)", range=[0, 1])
    t = "How well the model predicts each residue from the others"
    if ppl is not None:
        t += f" (pseudo-perplexity {ppl:.2f})"
    return _mark_untrained(_layout(fig, titled(t, untrained), 300), untrained)


def projection_figure(xy: np.ndarray, labels, ids: list[str], caption: str, untrained: bool = False,
                      label_name: str = "label", continuous: bool = False) -> go.Figure:
    """2-D projection of the embeddings, coloured by label, hover = sequence id."""
    xy = np.asarray(xy, dtype=float)
    fig = go.Figure()
    if labels is None:
        fig.add_scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", text=ids, name="proteins",
                        marker=dict(size=8, color="#0b6e4f", opacity=0.8),
                        hovertemplate="%{text}<extra></extra>")
    elif continuous:
        vals = np.asarray(labels, dtype=float)
        fig.add_scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", text=ids, name=label_name,
                        marker=dict(size=8, color=vals, colorscale="Viridis", showscale=True,
                                    colorbar=dict(title=label_name, thickness=12)),
                        customdata=vals, hovertemplate="%{text}<br>" + label_name + " %{customdata:.3g}<extra></extra>")
    else:
        labels = [str(v) for v in labels]
        for k, lab in enumerate(sorted(set(labels))):
            idx = [i for i, v in enumerate(labels) if v == lab]
            name = f"{label_name} {lab}".strip()
            fig.add_scatter(x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=name,
                            text=[ids[i] for i in idx], marker=dict(size=8, opacity=0.8,
                                                                    color=LABEL_COLORS[k % len(LABEL_COLORS)]),
                            hovertemplate="%{text}<extra>" + name + "</extra>")
    fig.update_xaxes(title="component 1")
    fig.update_yaxes(title="component 2")
    fig = _layout(fig, titled(caption, untrained), 440)
    return _mark_untrained(fig, untrained)


def attention_figure(att: np.ndarray, tokens: list[str], layer: int, head: int | None, untrained: bool = False) -> go.Figure:
    """One attention map: row = the position that looks, column = the position it looks at."""
    att = np.asarray(att, dtype=float)
    T = len(tokens)
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    which = "average over heads" if head is None else f"head {head + 1}"
    fig = go.Figure(go.Heatmap(z=att, x=labels, y=labels, colorscale="Blues", zmin=0,
                               colorbar=dict(title="weight", thickness=12),
                               hovertemplate="%{y} attends to %{x}: %{z:.3f}<extra></extra>"))
    fig.update_xaxes(title="attended position (key)", showticklabels=T <= 60, tickangle=-90)
    fig.update_yaxes(title="attending position (query)", autorange="reversed", showticklabels=T <= 60)
    fig = _layout(fig, titled(f"Attention, layer {layer}, {which}", untrained), 520)
    fig.update_layout(yaxis_scaleanchor="x")
    return _mark_untrained(fig, untrained)


def contact_figure(contacts: np.ndarray, seq: str, untrained: bool = False, title: str = "Predicted contacts",
                   colorbar: str = "P(contact)") -> go.Figure:
    """Residue × residue contact probabilities (symmetric)."""
    c = np.asarray(contacts, dtype=float)
    pos = list(range(1, len(seq) + 1))
    fig = go.Figure(go.Heatmap(z=c, x=pos, y=pos, colorscale="Greys", zmin=0 if colorbar == "P(contact)" else None,
                               zmax=1 if colorbar == "P(contact)" else None,
                               colorbar=dict(title=colorbar, thickness=12),
                               customdata=np.array([[f"{seq[i]}{i + 1}–{seq[j]}{j + 1}" for j in range(len(seq))]
                                                    for i in range(len(seq))]),
                               hovertemplate="%{customdata}: %{z:.3f}<extra></extra>"))
    fig.update_xaxes(title="residue")
    fig.update_yaxes(title="residue", autorange="reversed")
    fig = _layout(fig, titled(title, untrained), 520)
    fig.update_layout(yaxis_scaleanchor="x")
    return _mark_untrained(fig, untrained)


def overlay_loss_figure(histories: dict[str, list[dict]], untrained: bool = False, log_y: bool = False) -> go.Figure:
    """Train (dotted) and validation (solid) loss of several models on one chart."""
    fig = go.Figure()
    for k, (name, hist) in enumerate(histories.items()):
        color = MODEL_COLORS[k % len(MODEL_COLORS)]
        ep = np.array([h["epoch"] for h in hist], dtype=float)
        fig.add_scatter(x=ep, y=np.array([h["train_loss"] for h in hist], dtype=float), mode="lines",
                        name=f"{name} · train", line=dict(color=color, dash="dot", width=2))
        fig.add_scatter(x=ep, y=np.array([h["val_loss"] for h in hist], dtype=float), mode="lines",
                        name=f"{name} · validation", line=dict(color=color, width=2.5))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="loss", type="log" if log_y else "linear")
    fig = _layout(fig, titled("Loss: ESM-2 head vs CNN from scratch", untrained), 360)
    return _mark_untrained(fig, untrained)


def overlay_metric_figure(histories: dict[str, list[dict]], metric: str, untrained: bool = False) -> go.Figure:
    fig = go.Figure()
    for k, (name, hist) in enumerate(histories.items()):
        ep = np.array([h["epoch"] for h in hist], dtype=float)
        fig.add_scatter(x=ep, y=np.array([h.get(f"val_{metric}", np.nan) for h in hist], dtype=float),
                        mode="lines", name=name, line=dict(color=MODEL_COLORS[k % len(MODEL_COLORS)], width=2.5))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title=f"validation {metric_label(metric)}")
    fig = _layout(fig, titled(f"Validation {metric_label(metric)} per epoch", untrained), 360)
    return _mark_untrained(fig, untrained)


def size_sweep_figure(rows: list[dict], untrained: bool = False) -> go.Figure:
    """Final validation metric against the number of training examples, one line per model."""
    fig = go.Figure()
    names = list(dict.fromkeys(r["model"] for r in rows))
    metric = rows[0]["metric"] if rows else "metric"
    for k, name in enumerate(names):
        rs = sorted((r for r in rows if r["model"] == name), key=lambda r: r["training examples"])
        fig.add_scatter(x=[r["training examples"] for r in rs], y=[r["value"] for r in rs], mode="lines+markers",
                        name=name, line=dict(color=MODEL_COLORS[k % len(MODEL_COLORS)], width=2.5),
                        marker=dict(size=9))
    fig.update_xaxes(title="training examples (log scale)", type="log")
    fig.update_yaxes(title=f"validation {metric_label(metric)}")
    fig = _layout(fig, titled(f"Fewer labels: validation {metric_label(metric)} vs training-set size", untrained), 360)
    return _mark_untrained(fig, untrained)
