"""Figures of the Language models page (pages/7_Language_Models.py): plain data in, a plotly
Figure out (the fill-the-blank logo is matplotlib via logomaker, like the DNA page's logos).

- ``bits_figure`` / ``perplexity_figure``: the training curves as bits per token and perplexity,
  with the uniform baseline (log2 of the vocabulary: 2 bits for single DNA bases) and the best
  n-gram as reference lines;
- ``next_token_figure``: an n-gram's (or a model's) distribution after one context, as bars;
- ``fill_blank_figure`` / ``fill_blank_logo``: the predicted distribution at each blank;
- ``surprise_figure``: -log2 P(token) along a sequence, planted motifs shaded;
- ``embedding_figure``: the PCA of the token embeddings;
- ``finetune_figure``: pretrained encoder + new head vs the same architecture from scratch.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from playground.plots.common import TEST_COLOR, TRAIN_COLOR, _epoch_dtick, column, figure, layout_dict

LN2 = math.log(2.0)
UNIFORM_COLOR = "#7f7f7f"
NGRAM_COLOR = "#2ca02c"
MOTIF_FILL = "rgba(255, 127, 14, 0.18)"
PAIR_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")
LEGEND_BELOW = dict(orientation="h", y=-0.3, x=0, xanchor="left", yanchor="top")   # long titles keep the top
BASE_COLORS = {"A": "#2ca02c", "C": "#1f77b4", "G": "#ff7f0e", "T": "#d62728", "U": "#d62728", "N": "#7f7f7f"}


def to_bits(nats) -> np.ndarray:
    """A cross-entropy in nats (what PyTorch's losses give) as bits."""
    return np.asarray(nats, dtype=float) / LN2


def uniform_bits(vocab_size: int) -> float:
    """What a model that knows nothing pays per token: log2 of the number of tokens it can predict."""
    return math.log2(max(1, int(vocab_size)))


def _hline(y: float, text: str, color: str, dash: str = "dash") -> tuple[dict, dict]:
    shape = dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y,
                 line=dict(color=color, width=1.5, dash=dash))
    note = dict(xref="paper", x=0.995, xanchor="right", yref="y", y=y, yanchor="bottom", text=text,
                showarrow=False, font=dict(size=12, color=color))
    return shape, note


def _references(refs: list[tuple[str, float, str]]) -> tuple[list, list]:
    shapes, notes = [], []
    for text, y, color in refs:
        if y is None or not math.isfinite(y):
            continue
        s, n = _hline(y, text, color)
        shapes.append(s)
        notes.append(n)
    return shapes, notes


def bits_figure(history: list[dict], uniform: float, ngram: float | None = None, ngram_label: str = "best n-gram",
                title: str = "Bits per token (cross-entropy / ln 2)", height: int = 370) -> go.Figure:
    """Training and validation loss per epoch in bits per token, with the uniform baseline and
    the best n-gram's validation bits as dashed lines. The history's losses are in nats."""
    ep = column(history, "epoch")
    data = [dict(type="scatter", x=ep, y=to_bits(column(history, "train_loss")), mode="lines", name="train",
                 line=dict(color=TRAIN_COLOR, width=2.5)),
            dict(type="scatter", x=ep, y=to_bits(column(history, "val_loss")), mode="lines+markers",
                 name="validation", line=dict(color=TEST_COLOR, width=2.5), marker=dict(size=5))]
    shapes, notes = _references([(f"uniform: {uniform:.2f} bits", uniform, UNIFORM_COLOR),
                                 (f"{ngram_label}: {ngram:.2f} bits" if ngram is not None else "", ngram,
                                  NGRAM_COLOR)])
    lay = layout_dict(title, height, fixed_margins=True, shapes=shapes, annotations=notes,
                      xaxis=dict(title=dict(text="epoch"), dtick=_epoch_dtick(ep)),
                      yaxis=dict(title=dict(text="bits per token"), rangemode="tozero"))
    lay.update(legend=LEGEND_BELOW, margin=dict(l=50, r=10, t=40, b=80))
    return figure(data, lay)


def perplexity_figure(history: list[dict], vocab_size: int, ngram_bits: float | None = None,
                      ngram_label: str = "best n-gram", title: str = "Validation perplexity (2^bits)",
                      height: int = 370) -> go.Figure:
    """Validation perplexity per epoch: the number of equally likely tokens the model is as unsure
    as. Uniform = the vocabulary size; the best n-gram as a reference."""
    ep = column(history, "epoch")
    ppl = np.exp(column(history, "val_loss"))
    data = [dict(type="scatter", x=ep, y=ppl, mode="lines+markers", name="validation",
                 line=dict(color=TEST_COLOR, width=2.5), marker=dict(size=5))]
    refs = [(f"uniform: {vocab_size}", float(vocab_size), UNIFORM_COLOR)]
    if ngram_bits is not None:
        refs.append((f"{ngram_label}: {2 ** ngram_bits:.2f}", 2 ** ngram_bits, NGRAM_COLOR))
    shapes, notes = _references(refs)
    lay = layout_dict(title, height, fixed_margins=True, shapes=shapes, annotations=notes, showlegend=False,
                      xaxis=dict(title=dict(text="epoch"), dtick=_epoch_dtick(ep)),
                      yaxis=dict(title=dict(text="perplexity"), rangemode="tozero"))
    return figure(data, lay)


def next_token_figure(rows: list[tuple[str, float]], title: str, uniform: float | None = None,
                      height: int = 300, top: int = 20) -> go.Figure:
    """Bars: P(token | context) for the ``top`` most likely tokens. ``uniform``: 1/V as a line."""
    rows = sorted(rows, key=lambda r: -r[1])[:top]
    toks = [str(t) for t, _ in rows]
    probs = [float(p) for _, p in rows]
    colors = [BASE_COLORS.get(t, "#4c78a8") if len(t) == 1 else "#4c78a8" for t in toks]
    data = [dict(type="bar", x=toks, y=probs, marker=dict(color=colors), text=[f"{p:.2f}" for p in probs],
                 textposition="outside", hovertemplate="%{x}: %{y:.3f}<extra></extra>")]
    shapes, notes = _references([(f"uniform 1/V = {uniform:.2f}", uniform, UNIFORM_COLOR)] if uniform else [])
    return figure(data, layout_dict(title, height, shapes=shapes, annotations=notes, showlegend=False,
                                    xaxis=dict(title=dict(text="next token"), type="category"),
                                    yaxis=dict(title=dict(text="probability"), range=[0, 1.12])))


def fill_blank_figure(blanks: list[tuple[str, list[tuple[str, float]]]], truth: list[str] | None = None,
                      top: int = 6, height: int | None = None) -> go.Figure:
    """One row of horizontal bars per blank: the ``top`` most likely tokens and their
    probabilities; the true token's bar is outlined (it is what was hidden)."""
    from plotly.subplots import make_subplots

    n = max(1, len(blanks))
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[b[0] for b in blanks] or [""],
                        horizontal_spacing=0.08, vertical_spacing=0.18 if rows > 1 else 0.1)
    for i, (_, dist) in enumerate(blanks):
        dist = sorted(dist, key=lambda r: -r[1])[:top][::-1]
        toks = [str(t) for t, _ in dist]
        probs = [float(p) for _, p in dist]
        true = truth[i] if truth and i < len(truth) else None
        fig.add_bar(x=probs, y=toks, orientation="h", row=i // cols + 1, col=i % cols + 1, showlegend=False,
                    marker=dict(color=[BASE_COLORS.get(t, "#4c78a8") if len(t) == 1 else "#4c78a8" for t in toks],
                                line=dict(color=["black" if t == true else "rgba(0,0,0,0)" for t in toks],
                                          width=2.5)),
                    text=[f"{p:.2f}" for p in probs], textposition="outside",
                    hovertemplate="%{y}: %{x:.3f}<extra></extra>")
    fig.update_xaxes(range=[0, 1.25], showticklabels=False)
    fig.update_yaxes(type="category")
    fig.update_layout(**layout_dict("", height or 60 + 190 * rows, uirevision=None))
    fig.update_layout(margin=dict(l=60, r=10, t=40, b=10))
    return fig


def fill_blank_logo(probs: np.ndarray, letters: list[str], labels: list[str], title: str = ""):
    """A logo of the predicted distribution at each blank (columns = blanks, letter height =
    probability), for single-letter tokens. ``probs``: (blanks, letters)."""
    import logomaker
    import pandas as pd
    from matplotlib.figure import Figure

    probs = np.asarray(probs, dtype=float)
    fig = Figure(figsize=(max(5.0, 0.9 * len(labels) + 1.2), 2.4))
    ax = fig.subplots()
    df = pd.DataFrame(probs, columns=list(letters))
    scheme = "classic" if set(letters) <= set("ACGTUN") else "chemistry"
    logomaker.Logo(df, ax=ax, color_scheme=scheme, font_name="DejaVu Sans Mono", vpad=0.03)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=9)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability", fontsize=9)
    ax.set_title(title, fontsize=10, loc="left")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout(pad=0.4)
    return fig


def surprise_figure(labels: list[str], bits, spans: list[tuple[str, int, int]] = (), uniform: float | None = None,
                    other: dict[str, np.ndarray] | None = None,
                    title: str = "Surprise: −log₂ P(token) along the sequence", height: int = 320) -> go.Figure:
    """Bars of the model's surprise at each token (bits); the planted motifs (token spans,
    0-based, end exclusive) shaded; ``other``: more models' surprise as lines (the n-gram)."""
    bits = np.asarray(bits, dtype=float)
    x = np.arange(1, len(bits) + 1)
    data = [dict(type="bar", x=x, y=bits, name="model", marker=dict(color=TEST_COLOR),
                 customdata=labels, hovertemplate="%{customdata} (token %{x}): %{y:.2f} bits<extra></extra>")]
    for k, (name, vals) in enumerate((other or {}).items()):
        data.append(dict(type="scatter", x=x, y=np.asarray(vals, dtype=float), mode="lines", name=name,
                         line=dict(color=NGRAM_COLOR if k == 0 else PAIR_COLORS[k % 4], width=2)))
    shapes, notes = _references([(f"uniform: {uniform:.2f} bits", uniform, UNIFORM_COLOR)] if uniform else [])
    for name, s, e in spans:
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=s + 0.5, x1=e + 0.5, y0=0, y1=1,
                           fillcolor=MOTIF_FILL, line=dict(width=0), layer="below"))
        notes.append(dict(xref="x", x=(s + e + 1) / 2, yref="paper", y=1.0, yanchor="bottom", text=name,
                          showarrow=False, font=dict(size=11, color="#b35806")))
    tick = dict(tickmode="array", tickvals=list(x), ticktext=labels) if len(labels) <= 60 else {}
    return figure(data, layout_dict(title, height, uirevision=None, shapes=shapes, annotations=notes, bargap=0.1,
                                    xaxis=dict(title=dict(text="token"), **tick),
                                    yaxis=dict(title=dict(text="bits"), rangemode="tozero")))


def embedding_figure(xy: np.ndarray, labels: list[str], explained=(), groups: list[str] | None = None,
                     title: str = "Token embeddings (PCA)", height: int = 440) -> go.Figure:
    """Each token's embedding vector projected on its first two principal components."""
    xy = np.asarray(xy, dtype=float)
    ev = list(explained) + [float("nan")] * 2
    groups = groups or ["token"] * len(labels)
    data = []
    for k, g in enumerate(dict.fromkeys(groups)):
        idx = [i for i, gg in enumerate(groups) if gg == g]
        data.append(dict(type="scatter", x=xy[idx, 0], y=xy[idx, 1], mode="markers+text", name=g,
                         text=[labels[i] for i in idx], textposition="top center",
                         marker=dict(size=10, color=PAIR_COLORS[k % len(PAIR_COLORS)]),
                         hovertemplate="%{text}<extra></extra>"))
    def axis(i):
        return dict(title=dict(text=f"PC{i + 1}" + (f" ({ev[i]:.0%} of the variance)" if math.isfinite(ev[i])
                                                   else "")), zeroline=True)
    return figure(data, layout_dict(title, height, uirevision=None, xaxis=axis(0), yaxis=axis(1),
                                    showlegend=len(set(groups)) > 1))


def finetune_figure(histories: dict[str, list[dict]], metric: str = "val_accuracy", label: str = "validation accuracy",
                    chance: float | None = None, title: str | None = None, height: int = 380) -> go.Figure:
    """The validation curve of each run (pretrained + new head, from scratch) on one chart."""
    data = []
    for k, (name, hist) in enumerate(histories.items()):
        data.append(dict(type="scatter", x=column(hist, "epoch"), y=column(hist, metric), mode="lines+markers",
                         name=name, line=dict(color=PAIR_COLORS[k % len(PAIR_COLORS)], width=2.5),
                         marker=dict(size=5)))
    shapes, notes = _references([(f"chance: {chance:.2f}", chance, UNIFORM_COLOR)] if chance is not None else [])
    ep = np.concatenate([column(h, "epoch") for h in histories.values()]) if histories else np.zeros(0)
    lay = layout_dict(title or f"Fine-tuning: {label} per epoch", height, fixed_margins=True,
                      shapes=shapes, annotations=notes,
                      xaxis=dict(title=dict(text="epoch"), dtick=_epoch_dtick(ep)),
                      yaxis=dict(title=dict(text=label)))
    lay.update(legend=LEGEND_BELOW, margin=dict(l=50, r=10, t=40, b=80))
    return figure(data, lay)


def size_curve_figure(rows: list[dict], label: str = "validation accuracy", height: int = 340) -> go.Figure:
    """Final validation metric against the number of labelled sequences, one line per run kind
    (rows: {'labels', 'model', 'value'})."""
    data = []
    for k, name in enumerate(dict.fromkeys(r["model"] for r in rows)):
        rs = sorted((r for r in rows if r["model"] == name), key=lambda r: r["labels"])
        data.append(dict(type="scatter", x=[r["labels"] for r in rs], y=[r["value"] for r in rs],
                         mode="lines+markers", name=name, marker=dict(size=9),
                         line=dict(color=PAIR_COLORS[k % len(PAIR_COLORS)], width=2.5)))
    return figure(data, layout_dict(f"Fewer labels: {label} vs labelled sequences", height, uirevision=None,
                                    xaxis=dict(title=dict(text="labelled training sequences (log scale)"),
                                               type="log"),
                                    yaxis=dict(title=dict(text=label))))


__all__ = ["to_bits", "uniform_bits", "bits_figure", "perplexity_figure", "next_token_figure", "fill_blank_figure",
           "fill_blank_logo", "surprise_figure", "embedding_figure", "finetune_figure", "size_curve_figure"]
