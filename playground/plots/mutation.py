"""Figures of mutation scans (:mod:`playground.mutation`, :func:`playground.esm.mutation_scan`).

    dna_scan_figure(delta, seq, "Δ logit")          # (L, 4) -> bases × positions, diverging colours
    protein_scan_figure(scores, seq)               # (L, 20) -> 20 amino acids × positions, wild type marked

Pure functions: arrays in, a plotly Figure out.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from playground.plots.common import _layout
from playground.plots.dna import ism_figure
from playground.plots.esm import _mark_untrained, titled

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


def dna_scan_figure(delta: np.ndarray, seq: str, units: str = "Δ logit", sites=(),
                    title: str = "Mutation scan (in-silico mutagenesis)") -> go.Figure:
    """(L, 4) change of the model's output per position and mutant base, drawn bases × positions;
    the colour bar names the unit (``units``: 'Δ logit', 'Δ P(bound)', 'Δ predicted value' ...)."""
    d = np.asarray(delta, dtype=float)
    fig = ism_figure(d.T, seq, sites, title)
    fig.update_traces(selector=dict(type="heatmap"), colorbar=dict(title=dict(text=units), thickness=12),
                      hovertemplate="position %{x}, mutate %{y}: " + units + " %{z:.4g}<extra></extra>")
    return fig


def protein_scan_figure(scores: np.ndarray, seq: str, untrained: bool = False,
                        title: str = "Mutation scan: ESM-1v masked marginals") -> go.Figure:
    """(L, 20) log P(mutant) − log P(wild type), each position masked in turn, drawn as 20 amino
    acids × positions: red = the model prefers the mutant, blue = the wild type; a dot marks the
    wild type of every column."""
    z = np.asarray(scores, dtype=float).T                                 # (20, L)
    L = z.shape[1]
    x = list(range(1, L + 1))
    lim = float(np.nanmax(np.abs(z))) if z.size else 1.0
    lim = lim or 1.0
    wt = np.array([[seq[i]] * 20 for i in range(L)]).T
    fig = go.Figure(go.Heatmap(z=z, x=x, y=list(AMINO_ACIDS), colorscale="RdBu_r", zmid=0, zmin=-lim, zmax=lim,
                               colorbar=dict(title=dict(text="log P(mut) − log P(wt)"), thickness=12),
                               customdata=wt,
                               hovertemplate="%{customdata}%{x}%{y}: log-ratio %{z:.3f}<extra></extra>"))
    rows = [c if c in AMINO_ACIDS else None for c in seq[:L]]
    keep = [i for i, r in enumerate(rows) if r is not None]
    fig.add_scatter(x=[x[i] for i in keep], y=[rows[i] for i in keep], mode="markers", name="wild type",
                    marker=dict(color="white", size=5 if L > 120 else 7, line=dict(color="black", width=1)),
                    hovertemplate="position %{x}: wild type %{y}<extra></extra>")
    fig.update_xaxes(title="position (● = the wild-type residue)")
    fig.update_yaxes(title="mutant amino acid", autorange="reversed", dtick=1)
    fig = _layout(fig, titled(title, untrained), 480)
    fig.update_layout(legend=dict(orientation="h", y=1.06, x=1, xanchor="right"))
    return _mark_untrained(fig, untrained)


__all__ = ["dna_scan_figure", "protein_scan_figure"]
