"""The DNA page's "✋ Convolution by hand" tab: the workshop's walk-through, window by window.

Pick a sequence (typed, or a validation sequence of the current data) and one or two filters
(a typed consensus, a JASPAR motif as log-odds, a learned first-layer filter of the current
model, or numbers typed into a 4 × k grid). Step the window with ◀ ▶ or let it play; see the
window's one-hot columns, the filter, their products, the sum plus bias and the feature map
growing under the sequence; then ReLU, max-pool, flatten, the output-length formula, and the
same numbers from ``torch.nn.functional.conv1d``.

Every control is a ``conv_*`` view setting of ``playground.setups.dna`` (so it is in the link);
the numbers come from ``playground.convolution.convolve_by_hand``; the figures from
``playground.plots.conv``. The defaults are the workshop's example (ACCGTCACCTA, CCG and TTA,
max-pool 2).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import streamlit as st

from playground.convolution import (ConvolutionError, consensus_filter, convolve_by_hand, grid_filter, grid_text,
                                    learned_filters, motif_filter, output_length, pad_filters)
from playground.data.motifs import KNOWN_MOTIFS
from playground.plots.conv import pipeline_figure, track_figure, window_figure
from playground.setups import dna as D
from playground.ui.layout import show_error
from playground.ui.runs import png_config

MAX_SHOWN = 120          # bases drawn (a longer sequence is cut, with a note)
PLAY_SECONDS = 0.9       # one window per tick while playing
KIND_LABELS = {"consensus": "Consensus", "jaspar": "JASPAR motif", "learned": "Learned filter", "grid": "Grid 4 × k"}
INTRO = ("The workshop's convolution by hand. A filter (4 rows A C G T × kernel_size columns) slides along the "
         "one-hot sequence. At each window the one-hot columns and the filter are multiplied **element by element** "
         "and summed, plus a bias: that is one value of the **feature map**. A consensus filter counts the matching "
         "letters (an IUPAC letter spreads its weight of 1 over its bases: N = 0.25 each). Then ReLU, max-pool and "
         "flatten give what the dense layer reads. A CNN does exactly this, except that its filters **learn their "
         "weights** from data: pick *Learned filter* to slide one of the model's own.")


def render_convolution(tr, dataset, state) -> None:
    """Draw the tab for the page's trainer ``tr``, data set and ``PageState``."""
    K = state.key
    st.caption(INTRO)
    top = st.columns([1.25, 1, 1], gap="medium")
    with top[0]:
        seq, seq_note = _sequence_controls(tr, dataset, state)
    a, b, c, d = st.columns(4)
    a.radio("out_channels (filters)", (1, 2), key=K("conv_filters"), horizontal=True,
            help="How many filters the layer has: each gives its own feature map.")
    b.number_input("padding", 0, 12, step=1, key=K("conv_padding"), help="Zero columns added on each side.")
    c.number_input("stride", 1, 5, step=1, key=K("conv_stride"), help="How far the window moves each step.")
    d.number_input("max-pool size (0 = none)", 0, 10, step=1, key=K("conv_pool"),
                   help="After ReLU: the largest value of each block of this many (MaxPool1d, remainder dropped).")
    n_f = int(state.get("conv_filters"))
    filters = []
    for i in range(1, n_f + 1):
        with top[i]:
            filters.append(_filter_controls(tr, state, i))
    if n_f == 1:
        with top[2]:
            st.caption("Pick **out_channels = 2** below for a second filter and a second feature map.")
    if seq is None or any(f is None for f in filters):
        return
    if seq_note:
        st.caption(seq_note)

    arrays = [f[0] for f in filters]
    names = [f[1] for f in filters]
    biases = [f[2] for f in filters]
    widths = [a.shape[1] for a in arrays]
    if len(set(widths)) > 1:
        arrays, added = pad_filters(arrays)
        st.caption("ℹ️ The filters of one layer share one kernel_size: "
                   + ", ".join(f"filter {i + 1} ({names[i]}) got {n} zero column{'s' if n != 1 else ''} on the right"
                               for i, n in enumerate(added) if n) + " (a zero column adds nothing to a window's sum).")
    pool = int(state.get("conv_pool")) or None
    try:
        r = convolve_by_hand(seq, np.stack(arrays), bias=biases, pool=pool, padding=int(state.get("conv_padding")),
                             stride=int(state.get("conv_stride")))
    except ConvolutionError as e:
        show_error(e.message, e.hint)
        return
    r.names = names
    _stepper(r, state)
    _after(r, tr, dataset)
    state.sync()    # this tab's clicks rerun only the page's fragment: keep the link current here too


# ---- controls ------------------------------------------------------------------------------------
def _sequence_controls(tr, dataset, state) -> tuple[str | None, str]:
    K = state.key
    st.radio("Sequence", ("typed", "validation"), key=K("conv_source"), horizontal=True,
             format_func={"typed": "Type one", "validation": "Validation sequence"}.get)
    if state.get("conv_source") == "typed":
        st.text_input("DNA sequence (A C G T, N = unknown)", key=K("conv_sequence"), max_chars=2000,
                      help="The workshop's example is ACCGTCACCTA. Spaces are ignored; N is a column of zeros.")
        seq, note = state.get("conv_sequence"), ""
    else:
        val_idx = tr.data.meta["val_idx"]
        n_val = len(val_idx)
        if n_val == 0:
            show_error("This data set has no validation sequences.", "Type a sequence instead.")
            return None, ""
        if not 1 <= int(state.get("conv_val")) <= n_val:
            state.set("conv_val", 1)
        st.number_input(f"Validation sequence (1-{n_val})", 1, n_val, step=1, key=K("conv_val"))
        j = int(val_idx[int(state.get("conv_val")) - 1])
        seq = dataset.seqs[j]
        sites = dataset.sites[j] if dataset.sites else []
        where = ", ".join(f"{s.motif} at {s.start + 1}-{s.end} ({s.strand})" for s in sites)
        note = f"Validation sequence {state.get('conv_val')} ({len(seq)} bp)" + (f": planted {where}" if where else "")
    if len(seq) > MAX_SHOWN:
        note = (note + " · " if note else "") + f"showing its first {MAX_SHOWN} of {len(seq)} bases"
        seq = seq[:MAX_SHOWN]
    return seq, note


def _filter_controls(tr, state, i: int):
    """One filter's controls -> (weights (4, k), name, bias), or None after showing an error."""
    K = state.key
    kind = st.selectbox(f"Filter {i}", D.CONV_FILTER_KINDS, key=K(f"conv_kind{i}"), format_func=KIND_LABELS.get)
    model_bias = None
    try:
        if kind == "consensus":
            st.text_input("Consensus (IUPAC letters allowed)", key=K(f"conv_cons{i}"), max_chars=30,
                          help="Its length is the kernel_size. A C G T put a weight of 1 on their base; "
                               "R Y S W K M B D H V N spread it over theirs (N = 0.25 on each).")
            text = state.get(f"conv_cons{i}")
            w, name = consensus_filter(text, f"Filter {i}"), "".join(text.split()).upper()
        elif kind == "jaspar":
            st.selectbox("JASPAR motif (as log-odds)", D.MOTIF_NAMES, key=K(f"conv_motif{i}"),
                         format_func=lambda m: f"{m} · {KNOWN_MOTIFS[m]}",
                         help="Weights log2(p / 0.25) of the motif's probabilities (a pseudocount of 0.05 keeps "
                              "unseen bases finite): a window scores its log-odds against a uniform background.")
            w, label = motif_filter(state.get(f"conv_motif{i}"))
            name = label.split(" (")[0]
        elif kind == "learned":
            if not hasattr(tr.model, "filter_weights"):
                st.info("This model has no convolution filters: choose one of the CNNs in the sidebar.", icon="🧩")
                return None
            weights, bias = learned_filters(tr.model)
            n = len(weights)
            if not 1 <= int(state.get(f"conv_learned{i}")) <= n:
                state.set(f"conv_learned{i}", min(i, n))
            st.number_input(f"First-layer filter (1-{n})", 1, n, step=1, key=K(f"conv_learned{i}"),
                            help="The model's weights as trained so far: press ▶ Play above and watch them change.")
            f = int(state.get(f"conv_learned{i}")) - 1
            w, name, model_bias = weights[f], f"learned {f + 1}", float(bias[f])
            st.caption(f"after epoch {tr.epoch} ({tr.steps:,} steps)")
        else:
            w = _grid_editor(state, i)
            name = f"grid {i}"
    except ConvolutionError as e:
        show_error(e.message, e.hint)
        return None
    if model_bias is not None:
        st.caption(f"bias = **{model_bias:.3g}** (the model's own) · kernel_size {w.shape[1]}")
        return w, name, model_bias
    st.number_input("bias", -100.0, 100.0, step=0.5, key=K(f"conv_bias{i}"), format="%g",
                    help="Added to every window's sum. A negative bias lets ReLU zero the weak matches.")
    return w, name, float(state.get(f"conv_bias{i}"))


def _grid_editor(state, i: int) -> np.ndarray:
    """The 4 × k grid of filter ``i``: a data editor on the ``conv_grid{i}`` setting (its text
    form, which a link carries, is editable too); k = ``conv_grid_k``, shared by both grids."""
    K = state.key
    editor = state.slot(f"conv_grid_edit{i}")
    if i == 1 or state.get("conv_kind1") != "grid":     # one control for both grids: a layer has one width
        st.number_input("kernel_size (grid columns)", 1, 25, step=1, key=K("conv_grid_k"),
                        on_change=_forget_editors, args=(state,))
    k = int(state.get("conv_grid_k"))
    if i == 2 and state.get("conv_kind1") == "grid":
        st.caption(f"kernel_size {k}: set under filter 1 (both grids share it)")
    w = _fit_width(grid_filter(state.get(f"conv_grid{i}"), f"Grid {i}"), k)
    if grid_text(w) != state.get(f"conv_grid{i}"):
        state.set(f"conv_grid{i}", grid_text(w))
    frame = pd.DataFrame(w, index=list("ACGT"), columns=[str(j + 1) for j in range(k)])
    st.data_editor(frame, key=editor, width="stretch", on_change=_apply_edits, args=(state, i),
                   column_config={c: st.column_config.NumberColumn(c, format="%g", step=0.1) for c in frame.columns})
    with st.expander("Grid as text"):
        st.text_input("Rows A;C;G;T, numbers split by commas", key=K(f"conv_grid{i}"),
                      on_change=_forget_editors, args=(state,))
    return w


def _apply_edits(state, i: int) -> None:
    """The data editor's edits -> the grid setting; then the editor starts afresh on the new numbers
    (its stored edits would otherwise be applied again to whatever the grid becomes)."""
    ss = st.session_state
    editor = state.slot(f"conv_grid_edit{i}")
    edits = ss.get(editor) or {}
    try:
        w = _fit_width(grid_filter(state.get(f"conv_grid{i}"), f"Grid {i}"), int(state.get("conv_grid_k")))
    except ConvolutionError:
        w = np.zeros((4, int(state.get("conv_grid_k"))))
    for row, cells in (edits.get("edited_rows") or {}).items():
        for col, value in cells.items():
            j = int(col) - 1 if str(col).isdigit() else None
            if j is not None and 0 <= int(row) < 4 and 0 <= j < w.shape[1]:
                w[int(row), j] = _cell(value)
    state.set(f"conv_grid{i}", grid_text(w))
    ss.pop(editor, None)


def _cell(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return v if np.isfinite(v) else 0.0


def _forget_editors(state) -> None:
    for i in (1, 2):
        st.session_state.pop(state.slot(f"conv_grid_edit{i}"), None)


def _fit_width(w: np.ndarray, k: int) -> np.ndarray:
    """Zero columns added on the right, or columns cut, to make a grid k wide."""
    return np.pad(w, ((0, 0), (0, max(0, k - w.shape[1]))))[:, :k]


# ---- the stepping window -------------------------------------------------------------------------
def _stepper(r, state) -> None:
    slot = state.slot("conv_play")
    ss = st.session_state
    n = r.n_windows

    def go_to(i: int) -> None:
        state.set("conv_window", int(min(max(i, 1), n)))

    if not 1 <= int(state.get("conv_window")) <= n:
        go_to(int(state.get("conv_window")))
    playing = ss.get(slot) is not None

    @st.fragment(run_every=PLAY_SECONDS if playing else None)
    def steps():
        last = ss.get(slot)
        if last is not None and time.monotonic() - last >= 0.8 * PLAY_SECONDS:
            if int(state.get("conv_window")) >= n:       # the end: stop (a full run turns the timer off)
                ss[slot] = None
                st.rerun()
            go_to(int(state.get("conv_window")) + 1)
            ss[slot] = time.monotonic()
        i = int(state.get("conv_window"))
        c1, c2, c3, c4 = st.columns([0.8, 0.8, 0.9, 3.5], vertical_alignment="bottom")
        c1.button("◀ back", key="dna.conv_back", disabled=i <= 1, on_click=go_to, args=(i - 1,),
                  width="stretch")
        c2.button("▶ step", key="dna.conv_next", disabled=i >= n, on_click=go_to, args=(i + 1,),
                  width="stretch", type="primary")
        if c3.button("⏸ Pause" if ss.get(slot) is not None else "⏯ Play", key="dna.conv_playbtn", width="stretch",
                     help=f"Move one window every {PLAY_SECONDS:g} s to the end."):
            if ss.get(slot) is not None:
                ss[slot] = None
            else:
                if i >= n:
                    go_to(1)
                ss[slot] = time.monotonic()
            st.rerun()          # a full run: the fragment's timer starts or stops
        if n > 1:
            c4.slider("Window", 1, n, key=state.key("conv_window"))
        i = int(state.get("conv_window"))
        _window_numbers(r, i - 1)
        if st.session_state.get(slot) is None:
            state.sync()    # a click reran only this fragment: the link shows the window (not while playing)

    steps()


def _window_numbers(r, i: int) -> None:
    w = r.window(i)
    covered = [p for p in w["positions"] if p]
    span = f"bases {covered[0]}-{covered[-1]}" if covered else "padding only"
    st.markdown(f"#### Window {i + 1} of {r.n_windows} · {span} · `{' '.join(w['letters'])}`")
    st.plotly_chart(track_figure(r, i), key="dna.conv_track", config=png_config("conv_track"))
    left, right = st.columns([2.6, 1], vertical_alignment="center")
    with left:
        st.plotly_chart(window_figure(r, i), key="dna.conv_window_fig", config=png_config("conv_window"))
    with right:
        for f in range(r.n_filters):
            s, b, v = float(w["sums"][f]), float(r.bias[f]), float(w["values"][f])
            st.metric(f"{r.names[f]}: sum + bias", _num(v), help="The feature map's value for this window.")
            nonzero = [_num(x) for x in w["products"][f].ravel() if abs(x) > 1e-12]
            more = " + …" if len(nonzero) > 8 else ""
            terms = (" + ".join(nonzero[:8]) + more + " = ") if len(nonzero) > 1 else ""
            st.caption(f"sum of the products: {terms}{_num(s)}, + bias {_num(b)} = **{_num(v)}**")


def _num(v: float) -> str:
    r = round(float(v), 3)
    return f"{int(round(r))}" if abs(r - round(r)) < 1e-9 else f"{r:g}"


# ---- ReLU, pool, flatten, the formula, PyTorch ----------------------------------------------------
def _after(r, tr, dataset) -> None:
    st.markdown("#### Then ReLU, max-pool and flatten")
    left, right = st.columns([1.6, 1], gap="medium")
    with left:
        st.plotly_chart(pipeline_figure(r), key="dna.conv_pipeline", config=png_config("conv_pipeline"))
    with right:
        rows = []
        for f in range(r.n_filters):
            rows.append(f"**{r.names[f]}** feature map: `{_list(r.feature_maps[f])}`  \n"
                        f"ReLU: `{_list(r.relu[f])}`" + (f"  \nmax-pool {r.pool}: `{_list(r.pooled[f])}`"
                                                         if r.pooled is not None else ""))
        rows.append(f"flatten: `{_list(r.flattened)}`")
        st.markdown("\n\n".join(rows))
    diff = r.torch_difference()
    ok = diff < 1e-9
    msg = (f"`torch.nn.functional.conv1d(x, w, b, stride={r.stride}, padding={r.padding})` gives the same feature "
           "maps" + (f", and `F.max_pool1d(F.relu(·), {r.pool})` the same pooled numbers" if r.pool else "")
           + f" (largest difference {diff:.1g}).")
    (st.success if ok else st.error)(("✓ " if ok else "✗ ") + msg, icon="🔥" if ok else "⚠️")
    st.markdown("#### Output length")
    left, right = st.columns([1.5, 1], gap="medium")
    with left:
        st.code("\n".join(r.formula_lines()), language=None)
    with right:
        st.caption("Change **padding**, **stride**, **max-pool size** and **out_channels** above, or the filter's "
                   "width (**kernel_size**: type a longer consensus, or the grid's columns), and watch the numbers.")
        if hasattr(tr.model, "filter_weights"):
            wts = tr.model.filter_weights()
            pad = tr.model.filter_padding()
            n_out = output_length(dataset.length, int(wts.shape[2]), pad, 1)
            st.caption(f"The same formula for this model's first layer, Conv1d(4, out_channels={wts.shape[0]}, "
                       f"kernel_size={wts.shape[2]}, padding={pad}), on {dataset.length} bp: "
                       f"floor(({dataset.length} + 2·{pad} − {wts.shape[2]}) / 1) + 1 = **{n_out}** positions.")
    with st.expander("The same in code"):
        typed = all(_is_consensus(n, w) for n, w in zip(r.names, r.filters))
        filt = "[" + ", ".join(repr(n) for n in r.names) + "]" if typed else "weights  # an array (n_filters, 4, k)"
        st.code(f"""from playground.interpret import convolve_by_hand
r = convolve_by_hand("{r.sequence}", {filt},
                     bias={_list(r.bias)}, pool={r.pool}, padding={r.padding}, stride={r.stride})
r.feature_maps                      # {_list(r.feature_maps[0])[:70]} ...
r.products, r.pooled, r.flattened   # products: (n_filters, n_windows, 4, k)

import torch, torch.nn.functional as F              # the same numbers from PyTorch:
from playground.encoding import one_hot
F.conv1d(one_hot(r.sequence).double(), torch.tensor(r.filters), torch.tensor(r.bias),
         stride={r.stride}, padding={r.padding})""", language="python")


def _is_consensus(name: str, w: np.ndarray) -> bool:
    try:
        c = consensus_filter(name)
    except ConvolutionError:
        return False
    return c.shape == w.shape and np.array_equal(c, w)


def _list(a) -> str:
    return "[" + ", ".join(_num(v) for v in np.asarray(a).ravel()) + "]"
