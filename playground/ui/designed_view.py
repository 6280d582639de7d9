"""The DNA page's "🧪 Designed filters" tab: a filter you design (a JASPAR motif as log-odds, a
consensus, or typed numbers) beside the filters the CNN learns.

- **Design** one at the first layer's width (cropped or padded, and the tab says which).
- **Compare**: three short seeded trainings on the page's data and split, each with early stopping
  on validation: designed only (the first layer is just the designed filter, frozen; the layers
  after it train), learned only (the page's network), both (the designed filter frozen in slot 1,
  the other filters learned). Validation scores only, beside the majority-class level. Cached per
  run and design.
- **Put it into the current model**: replace filter i of the page's live model (optionally frozen)
  and see the validation score before and after, without training.

The work is ``playground.designed``; settings are the page's ``design_*`` Params (view only).
"""
from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from playground import designed as DF
from playground.data.motifs import KNOWN_MOTIFS
from playground.interpret import has_filters
from playground.plots.dna import filter_matrix_figure
from playground.setups import dna as setup
from playground.ui.layout import show_error
from playground.ui.live import LiveTraining
from playground.ui.runs import png_config

MAX_CACHED = 8      # comparisons kept per session


def _store(state) -> dict:
    ss = st.session_state
    slot = state.slot("designed")
    if not isinstance(ss.get(slot), dict):
        ss[slot] = {"runs": {}, "put": None}
    return ss[slot]


def _design(state, width: int) -> DF.DesignedFilter:
    src = state.get("design_source")
    value = {"jaspar": lambda: KNOWN_MOTIFS[state.get("design_motif")],
             "consensus": lambda: state.get("design_consensus"), "grid": lambda: state.get("design_grid")}[src]()
    return DF.design(src, value, width, float(state.get("design_bias")))


def _signature(run, f: DF.DesignedFilter, epochs: int, patience: int) -> str:
    h = hashlib.sha1(np.ascontiguousarray(f.weights).tobytes()).hexdigest()[:12]
    return f"{run.signature} | {f.label} {h} b={f.bias:g} | epochs={epochs} patience={patience}"


def _controls(state) -> None:
    K = state.key
    st.radio("Designed filter from", tuple(DF.SOURCES), key=K("design_source"), horizontal=True,
             format_func=DF.SOURCES.get)
    src = state.get("design_source")
    if src == "jaspar":
        st.selectbox("Motif (JASPAR)", setup.MOTIF_NAMES, key=K("design_motif"),
                     format_func=lambda m: f"{m} · {KNOWN_MOTIFS[m]}",
                     help="Its PWM as log-odds: log2(p / 0.25) per base, so a window's score says how much more "
                          "likely the motif makes it than background DNA (in bits).")
    elif src == "consensus":
        st.text_input("Consensus (IUPAC letters allowed)", key=K("design_consensus"),
                      help="+1 for each base a letter allows, 0 elsewhere: a window's score counts its matches.")
    else:
        st.text_input("Numbers: rows A;C;G;T, split by commas", key=K("design_grid"),
                      help="e.g. 1,0,0;0,1,0;0,0,1;0,0,0 is the consensus ACG. 'A: 1 0 0; C: ...' works too.")
    a, b = st.columns(2)
    a.number_input("Bias", -100.0, 100.0, step=0.5, key=K("design_bias"),
                   help="Added to every window's score before the activation (ReLU keeps only what is above 0).")
    b.toggle("Freeze it", key=K("design_freeze"),
             help="Held exactly fixed while the rest of the network trains (its gradient is zeroed and its "
                  "values are written back after every optimizer step).")


def _comparison(tr, state, run, f: DF.DesignedFilter) -> None:
    K = state.key
    task = tr.task
    metric = "Pearson r" if task == "regression" else "accuracy"
    n_first = int(run.spec.channels[0])
    st.markdown("#### Designed only · learned only · both")
    st.caption(f"Three short trainings on this page's data and split (seed {run.config.seed}), each stopped early "
               "on the validation loss (best weights restored): **designed only** — the first layer is just the "
               "designed filter, frozen, and only the layers after it train; **learned only** — this page's network, "
               f"{n_first} learned filters; **both** — the designed filter frozen in slot 1 beside {n_first - 1} learned "
               f"ones. Validation {metric} only: the test set is never looked at.")
    c1, c2 = st.columns([1.3, 2], vertical_alignment="bottom")
    c1.slider("At most epochs per training", 1, 100, key=K("design_epochs"))
    epochs = int(state.get("design_epochs"))
    patience = int(run.config.early_stopping) or 3
    store = _store(state)
    sig = _signature(run, f, epochs, patience)
    if c2.button("▶ Train the three and compare", key="dna.design_run", type="primary"):
        bar = st.progress(0.0, text="Training …")
        arms = list(DF.MODES) if n_first >= 2 else ["designed", "learned"]

        def progress(mode: str, epoch: int, total: int) -> None:
            i = arms.index(mode)
            bar.progress(min(1.0, (i + epoch / total) / len(arms)),
                         text=f"{DF.MODES[mode]}: epoch {epoch} of at most {total}")

        try:
            rows = DF.compare(run.spec, tr.data, run.config, [f], modes=arms, max_epochs=epochs, patience=patience,
                              progress=progress)
        except DF.DesignError as e:
            bar.empty()
            show_error(e.message, e.hint)
            return
        bar.empty()
        store["runs"][sig] = rows
        while len(store["runs"]) > MAX_CACHED:
            store["runs"].pop(next(iter(store["runs"])))
    rows = store["runs"].get(sig)
    if not rows:
        st.caption("Press the button to train (a few seconds). The result is kept for these settings.")
        return
    chance = DF.majority_level(tr.data.y_train.cpu().numpy(), tr.data.y_val.cpu().numpy(), task)
    chance_label = "majority class" if task != "regression" else "no relation"
    st.caption(f"Validation {metric} of each arm at its best epoch (lowest validation loss), beside chance:")
    cols = st.columns(len(rows) + 1)
    for col, r in zip(cols, rows):
        col.metric(r["label"], f"{r['val']:.3f}", delta=f"{r['val'] - chance:+.3f} vs chance",
                   help=f"Validation {metric}. {r['designed']} designed + {r['learned']} learned filters; "
                        f"{r['trainable']:,} trainable parameters; best epoch {r['best_epoch']} of {r['epochs']}.")
    cols[-1].metric(f"Chance ({chance_label})", f"{chance:.3f}",
                    help="What always answering the training set's most common class scores on validation."
                    if task != "regression" else "A prediction unrelated to the labels has Pearson r 0.")
    table = [{"arm": r["label"], "designed filters": r["designed"], "learned filters": r["learned"],
              f"validation {metric}": round(r["val"], 4), "before training": round(r["untrained"], 4),
              "best epoch": r["best_epoch"], "epochs": r["epochs"], "trainable parameters": r["trainable"],
              "seconds": round(r["seconds"], 1)} for r in rows]
    st.dataframe(table, hide_index=True, width="stretch")
    if n_first < 2:
        st.caption("The first layer has one filter: no room for 'both'. Give it more filters to compare all three.")


def _put_into_model(tr, state, f: DF.DesignedFilter) -> None:
    K = state.key
    n = int(tr.model.first_conv.weight.shape[0])
    st.markdown("#### Put it into the current model")
    store = _store(state)
    playing = LiveTraining(state.page).playing
    if not 1 <= int(state.get("design_filter")) <= n:
        state.set("design_filter", 1)
    c1, c2, c3 = st.columns([1, 1.2, 1.4], vertical_alignment="bottom")
    c1.number_input(f"Replace filter (1-{n})", 1, n, step=1, key=K("design_filter"))
    i = int(state.get("design_filter")) - 1
    freeze = bool(state.get("design_freeze"))
    if c2.button(f"⬇️ Put it in as filter {i + 1}" + (" (frozen)" if freeze else ""), key="dna.design_put",
                 disabled=playing, help="Pause training first." if playing else None):
        store["put"] = DF.put_into_trainer(tr, i, f, freeze=freeze)
        for slot in ("interp", "logos"):       # the filter tab's pictures show the old weights
            st.session_state.pop(state.slot(slot), None)
    frozen = DF.frozen_filters(tr.model)
    if frozen and c3.button("Unfreeze " + ", ".join(str(j + 1) for j in frozen), key="dna.design_unfreeze",
                            disabled=playing):
        DF.unfreeze_filters(tr.model)
        frozen = []
    put = store.get("put")
    if put and put["epoch"] == tr.epoch and put["label"] == f.label:
        name = "Pearson r" if put["metric"] == "pearson_r" else put["metric"]
        st.success(f"Filter {put['filter'] + 1} is now **{put['label']}**{' (frozen)' if put['frozen'] else ''}. "
                   f"Validation {name}, just evaluated (no training): {put['before']:.3f} → {put['after']:.3f}. "
                   "Press ▶ Play to train the rest of the network around it.", icon="🧪")
    st.caption(("Frozen now: filter(s) " + ", ".join(str(j + 1) for j in frozen) + ". " if frozen else "")
               + "A designed filter is a hypothesis: frozen, it shows what the motif alone is worth to the network; "
               "unfrozen, training may reshape it (see its logo in 🧩 Filters → logos).")


def render_designed_filters(tr, dataset, state, run) -> None:
    """The whole tab for the page's live trainer ``tr``, its data set, PageState and Run."""
    st.markdown("A first-layer filter is a 4 × k grid of weights slid along the one-hot DNA: a position weight "
                "matrix. Write one yourself, and see what it is worth beside the filters the network learns.")
    if not has_filters(tr.model) or not hasattr(run.spec, "channels"):
        st.info("This model has no convolution filters. Choose one of the CNNs in the sidebar to design one.",
                icon="🧩")
        return
    width = int(run.spec.kernel_sizes[0])
    left, right = st.columns([1.2, 2])
    with left:
        _controls(state)
    try:
        f = _design(state, width)
    except DF.DesignError as e:
        show_error(e.message, e.hint)
        return
    with right:
        st.plotly_chart(filter_matrix_figure(f.weights, f"{f.label} · 4 × {width} (the layer's kernel size)"),
                        key="dna.design_matrix", config=png_config("dna_designed_filter"))
        st.caption((f"✂️ {f.note} " if f.note else "")
                   + f"The best window scores {f.max_score():.2f} (the best base of every column"
                   + (", plus the bias" if f.bias else "") + ").")
    _comparison(tr, state, run, f)
    _put_into_model(tr, state, f)
