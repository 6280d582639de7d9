"""Sequence models & attention: RNN/LSTM/GRU, Transformers and the hybrid CNN+Transformer on DNA and
proteins; attention maps, attention computed step by step, positional encodings, run comparison.
Settings and the run: playground/setups/sequence.py."""
import numpy as np
import pandas as pd
import streamlit as st

from playground import plots
from playground.attention import (attention_maps, attention_steps, has_attention, motif_attention,
                                  positional_encoding, positional_kind)
from playground.data import protein as P
from playground.data.parsing import SequenceFileError
from playground.encoding import ALPHABETS
from playground.models import build_model, count_parameters, parameter_table
from playground.models.hybrid import HYBRID_COURSE, HYBRID_SMALL
from playground.models.rnn import CELLS, OUTPUTS
from playground.models.transformer import NORM, POSITIONAL
from playground.plots.attention import (attention_grid_figure, attention_heatmap_figure, matrix_figure,
                                        per_residue_figure, positional_encoding_figure)
from playground.setups import sequence as S
from playground.train import LEARNING_RATES, OPTIMIZERS, Trainer
from playground.ui import LiveTraining, PageState, setup_page, show_error, sidebar
from playground.ui.sweep_view import sweep_panel
from playground.ui.evaluation import metric_row, progress_line, schedule_controls, split_controls, test_panel
from playground.ui.doctor_view import render_doctor
from playground.ui.layout import stop_page
from playground.ui.runs import model_panel, png_config
from playground.ui.seq_compare import comparison_tab
from playground.ui.seq_data import UPLOAD_EXAMPLE, current_upload, load_data, upload_controls, upload_reading

setup_page("Sequence models & attention", "🔁")

state = PageState(S.SCHEMA, private=S.PRIVATE)
state.load()
seed, device = sidebar(state)
K = state.key
ss = st.session_state


def _hybrid_preset(spec) -> None:
    for name, value in S.hybrid_preset(spec).items():
        state.set(name, value)


st.title("🔁 Sequence models & attention")
st.caption("RNNs read a sequence one letter at a time; a Transformer lets every position look at every other one; "
           "the hybrid finds motifs with convolutions and relates them with attention. Train them on DNA or "
           "proteins, see what attention looks at, and compare them on the same split. Every setting is in the "
           "page's link.")

# ---- data ------------------------------------------------------------------------------------------------
c_set, c_view = st.columns([1.25, 3], gap="medium")
with c_set:
    st.markdown("#### Data")
    st.selectbox("Data set", tuple(S.DATASETS), key=K("dataset"), format_func=S.DATASETS.get)
    dataset = state.get("dataset")
    if dataset == "upload":
        upload_controls(state)
    else:
        d1, d2 = st.columns(2)
        d1.select_slider("Sequences", S.N_CHOICES, key=K("n"))
        d2.select_slider("Length" if dataset.startswith("dna") else "Longest protein", S.LENGTH_CHOICES,
                         key=K("length"))
    st.radio("Split", tuple(P.SPLITS), key=K("split"), format_func=P.SPLITS.get,
             help="Related sequences (homologs) in both training and test sets make test scores look better than "
                  "they will be on new sequences. 'No near-duplicates' clusters sequences by shared k-mers and "
                  "keeps each cluster on one side.")
    split_controls(state)

upload = current_upload(state)
if dataset == "upload" and upload is None:
    with c_view:
        st.info(UPLOAD_EXAMPLE)
    stop_page(state)
try:
    made = load_data(state)
except SequenceFileError as e:
    with c_view:
        show_error(f"Could not read '{upload[0]}': {e.message}", e.hint or "Fix the file and upload it again.")
    stop_page(state)
except ValueError as e:
    with c_view:
        show_error(f"Could not make this data set: {e}", "Change the setting named in the message; everything else "
                   "is kept.")
    stop_page(state)
data, alphabet = made.data, made.alphabet
AB = ALPHABETS[alphabet]
task = data.task

with c_set:
    with st.expander("How this data is made", expanded=False):
        st.markdown(made.description)
    for w in made.warnings:
        st.caption(f"⚠️ {w}")
    leak = data.meta.get("leakage")
    st.caption(f"**{task.replace('_', '-')}** · {len(data.y_train)} training / {len(data.y_val)} validation / "
               f"{len(data.y_test)} test sequences · length {data.x_train.shape[1]}"
               + (f" · {leak:.0%} of test sequences have a near-duplicate in training" if leak is not None
                  else ""))

# ---- model -----------------------------------------------------------------------------------------------
with c_set:
    st.markdown("#### Model")
    st.selectbox("Architecture", tuple(S.MODEL_FAMILIES), key=K("family"), format_func=S.MODEL_FAMILIES.get)
    family = state.get("family")
    with st.container(border=True):
        if family == "transformer":
            a, b = st.columns(2)
            a.select_slider("d_model", S.D_MODELS, key=K("t_d"), help="Width of every position's vector.")
            b.select_slider("Heads", S.HEADS, key=K("t_heads"), help="d_model is split into this many heads.")
            a.slider("Layers", 1, 4, key=K("t_layers"))
            b.select_slider("Feed-forward size", S.FFS, key=K("t_ff"))
            a.select_slider("Dropout", S.DROPOUTS, key=K("t_dropout"))
            b.selectbox("LayerNorm", tuple(NORM), key=K("t_norm"), format_func=NORM.get)
            a.selectbox("Positions", tuple(POSITIONAL), key=K("t_pos"), format_func=POSITIONAL.get,
                        help="Without a positional encoding, attention sees a bag of letters: order is lost.")
            b.selectbox("Pooling", ("mean", "cls"), key=K("t_pool"),
                        format_func={"mean": "Mean over positions", "cls": "CLS token"}.get,
                        disabled=task == "per_residue",
                        help="How one vector per sequence is made (per-residue tasks skip pooling).")
        elif family == "rnn":
            a, b = st.columns(2)
            a.selectbox("Cell", tuple(CELLS), key=K("r_cell"), format_func=lambda c: CELLS[c][0])
            b.select_slider("Hidden size", S.HIDDEN, key=K("r_hidden"))
            a.slider("Layers", 1, 3, key=K("r_layers"))
            b.select_slider("Embedding size", S.RNN_EMBEDS, key=K("r_embed"))
            a.toggle("Bidirectional", key=K("r_bi"))
            b.selectbox("Output", ("pooled", "last"), key=K("r_out"), format_func=OUTPUTS.get,
                        disabled=task == "per_residue",
                        help="Per-residue tasks use every position's state (many-to-many).")
        elif family == "cnn":
            a, b = st.columns(2)
            a.slider("Conv layers", 1, 4, key=K("c_layers"))
            b.select_slider("Channels", S.CHANNELS, key=K("c_channels"))
            a.slider("Kernel width", 1, 25, key=K("c_kernel"))
            b.selectbox("Pooling", ("max", "mean"), key=K("c_pool"), disabled=task == "per_residue",
                        format_func={"max": "Global max", "mean": "Masked mean"}.get)
        else:
            p1, p2 = st.columns(2)
            p1.button("Course sizes", on_click=_hybrid_preset, args=(HYBRID_COURSE,), width="stretch",
                      help="Exactly the notes: Embedding(5,64) → Conv(64→128,k8) → Conv(128→256,k4) → pool 64 → "
                           "2 × attention(256, 8 heads, ff 512) → mean → 128 → classes. 1.3 M parameters: slow "
                           "on a CPU.")
            p2.button("Small (CPU)", on_click=_hybrid_preset, args=(HYBRID_SMALL,), width="stretch",
                      help="16× fewer parameters, sinusoidal positions, pre-LN and max pooling: learns the motif "
                           "grammar in a few epochs on a laptop.")
            a, b = st.columns(2)
            a.select_slider("Embedding", S.HYBRID_EMBEDS, key=K("h_embed_dim"))
            b.select_slider("Conv 1 channels", S.CHANNELS, key=K("h_conv1_channels"))
            a.slider("Conv 1 kernel", 2, 16, key=K("h_conv1_kernel"))
            b.select_slider("Conv 2 channels = d_model", S.CHANNELS, key=K("h_conv2_channels"))
            a.slider("Conv 2 kernel", 2, 16, key=K("h_conv2_kernel"))
            b.select_slider("Pooled positions", S.POOL_POSITIONS, key=K("h_pool_positions"))
            a.select_slider("Heads", S.HEADS, key=K("h_heads"))
            b.select_slider("Feed-forward", S.FFS, key=K("h_ff"))
            a.slider("Attention layers", 1, 4, key=K("h_layers"))
            b.select_slider("Head hidden", S.HYBRID_HIDDEN, key=K("h_hidden"))
            a.selectbox("Positions", ("none", "sinusoidal"), key=K("h_positional"), format_func=POSITIONAL.get,
                        help="The notes add none: attention then cannot tell how far apart two motifs are.")
            b.selectbox("LayerNorm", ("pre", "post"), key=K("h_norm"), format_func=NORM.get)
            a.selectbox("Pooling", ("mean", "max"), key=K("h_pooling"),
                        format_func={"mean": "Mean (notes)", "max": "Max"}.get,
                        help="Mean averages one informative position with all the others; max keeps it.")
    try:
        run = S.build(state.values(), upload, data=made, reading=upload_reading(state))
        spec = run.spec
        n_params = count_parameters(build_model(spec, seed))
    except ValueError as e:
        with c_view:
            show_error(f"This model cannot be built: {e}.", "Change the model settings (the data is kept).")
        stop_page(state)
    st.caption(f"**{spec.describe()}** · **{n_params:,} parameters**")

    st.markdown("#### Training")
    t1, t2 = st.columns(2)
    t1.selectbox("Optimizer", tuple(OPTIMIZERS), key=K("optimizer"), format_func=OPTIMIZERS.get)
    t2.select_slider("Batch size", S.BATCH_CHOICES, key=K("batch"))
    st.select_slider("Learning rate", LEARNING_RATES, key=K("lr"), format_func=lambda v: f"{v:g}")
    schedule_controls(state)

data_key = run.extras["label"]
live = LiveTraining("seq")
try:
    trainer = live.ensure(run.signature, run.make_trainer,
                          run_info=dict(spec=spec, page="seq", dataset=data_key, label_names=data.class_names,
                                        input=run.extras["input"], parameters={"family": family}))
except (ValueError, RuntimeError) as e:
    with c_view:
        show_error(f"Could not set up this run: {e}", "Change the settings back, or press Reset.")
    stop_page(state)
trainer.set_lr(run.config.lr)
trainer.config.early_stopping = int(state.get("early_stop"))
SHOWN = S.SHOWN_METRICS[task]


def draw(tr: Trainer) -> None:
    rec = tr.latest
    metric_row(tr, rec, SHOWN)
    st.caption(progress_line(tr))
    render_doctor(tr, page="sequence", key="doctor.sequence", checks=False)
    if tr.diverged:
        st.error(f"⚠️ Training {tr.diverged}", icon="💥")
    if tr.stopped:
        st.success(f"⏹ {tr.stopped}")
    g1, g2 = st.columns(2)
    g1.plotly_chart(plots.loss_figure(tr.history, title="Loss (cross-entropy)" if task != "regression" else
                                      "Loss (MSE)", trace=tr.trace), key="seq.loss", config=png_config("seq_loss"))
    g2.plotly_chart(plots.metric_figure(tr.history, [f"val_{k}" for k in SHOWN], title="Validation metrics"),
                    key="seq.metrics", config=png_config("seq_metrics"))
    waste = live.throttle("waste", lambda: tr.padding_waste, seconds=60.0)
    st.caption(f"{tr.steps:,} mini-batches · {tr.seconds:.1f} s of training · metrics on the {len(tr.data.y_val)} "
               "validation sequences"
               + (f" · batches of similar length: {waste:.2f} positions computed per real residue"
                  if waste and tr.bucketed else "") + (" (Q3 = share of residues labelled right; padding and masked residues "
                                          "are left out)" if task == "per_residue" else ""))


with c_view:
    live.controls()
    live.run(draw)
    if live.playing:      # the panel is drawn outside the live fragment: its files would be the paused model's
        st.caption("💾 Pause training to save this model, its training history and its PyTorch code, or to "
                   "score the held-out test set.")
    else:
        test_panel(trainer, SHOWN, key="seq.score_test")
        model_panel(trainer, spec, page="seq", dataset=data_key, label_names=data.class_names,
                    input=run.extras["input"], settings={"family": family})


# ---- the views ---------------------------------------------------------------------------------------------
model = trainer.model
n_test = len(data.meta["val_idx"])      # the views show validation sequences (never the test set)
if int(state.get("seq_idx")) >= n_test:
    state.set("seq_idx", 0)

tabs = c_view.tabs(["🔎 Attention maps", "🧮 How attention is computed", "📍 Positional encoding", "🏁 Run comparison",
                    "🔢 Model & parameters"])

with tabs[0]:
    c1, c2 = st.columns([1, 3])
    c1.number_input(f"Validation sequence (0–{n_test - 1})", 0, max(0, n_test - 1), step=1, key=K("seq_idx"))
    i = int(state.get("seq_idx"))
    text = S.sequence_text(data, alphabet, i)
    spans = S.planted_spans(data, i)
    c2.markdown(f"`{text[:120]}{'…' if len(text) > 120 else ''}`  \n{S.prediction_text(trainer, i)}"
                + ("  \nPlanted: " + ", ".join(f"**{m}** at {s + 1}–{e}" for m, s, e in spans) if spans else ""))
    if task == "per_residue":
        true, pred = S.per_residue_labels(trainer, i, len(text))
        start = 0 if len(text) <= 80 else int(st.slider("Residues from", 1, len(text) - 79, 1,
                                                        key=state.slot("pr_from"))) - 1
        st.plotly_chart(per_residue_figure(text, true, pred, data.class_names, window=(start, start + 80)),
                        key="seq.per_residue", config=png_config("seq_per_residue"))
    if not has_attention(model):
        st.info("This model has no attention layers. Choose the **Transformer** or the **hybrid CNN + Transformer** "
                "to see what each position looks at.")
    else:
        maps = attention_maps(model, data.x_val[i], AB)
        n_pos = len(maps.labels)
        shown = maps
        if n_pos > S.WINDOW:
            if int(state.get("win_start")) > n_pos - S.WINDOW + 1:
                state.set("win_start", 1)
            start = int(st.slider("Zoom: window of positions starting at", 1, n_pos - S.WINDOW + 1, key=K("win_start")))
            shown = maps.window(start - 1, start - 1 + S.WINDOW)
            st.caption(f"Showing positions {start}–{start + S.WINDOW - 1} of {n_pos}.")
        marks = [shown.positions_of(s, e) for _, s, e in spans[:2]] if len(spans) >= 2 else None
        if maps.kind == "pooled":
            st.caption(f"The hybrid attends over {n_pos} max-pooled positions, not single bases: each axis label "
                       "gives the bases (1-based) a position stands for.")
        st.plotly_chart(attention_grid_figure(shown.weights, shown.labels, marks), key="seq.attn_grid",
                        config=png_config("seq_attn_grid"))
        st.caption("Row = query (the position that looks), column = key (what it looks at); every row sums to 1. "
                   "Padding is never looked at (weight exactly 0). "
                   "The maps show the model as it was when training last paused.")
        l1, l2 = st.columns([1, 3])
        if int(state.get("layer")) > maps.n_layers:
            state.set("layer", 1)
        l1.number_input("Layer (large map)", 1, maps.n_layers, step=1, key=K("layer"))
        layer = int(state.get("layer"))
        names = tuple(m for m, _, _ in spans[:2])
        l2.plotly_chart(attention_heatmap_figure(shown.head_average()[layer - 1], shown.labels,
                                                 f"Layer {layer}, average of the {maps.n_heads} heads", marks,
                                                 motif_names=names if len(names) == 2 else ("motif A", "motif B")),
                        key="seq.attn_big", config=png_config("seq_attn_big"))
        if len(spans) >= 2:
            (ma, sa, ea), (mb, sb, eb) = spans[:2]
            ma_att = motif_attention(maps, (sa, ea), (sb, eb))
            avg_ab = ma_att["a_to_b"].mean(1)
            best = np.unravel_index(np.argmax(ma_att["a_to_b"]), ma_att["a_to_b"].shape)
            with l1:
                st.markdown(f"**{ma} → {mb}**")
                for li, v in enumerate(avg_ab):
                    st.caption(f"layer {li + 1}: {v:.0%} of {ma}'s attention lands on {mb} "
                               f"(even spread: {ma_att['uniform_a_to_b']:.0%})")
                st.caption(f"Strongest: layer {best[0] + 1}, head {best[1] + 1}: "
                           f"{ma_att['a_to_b'][best]:.0%}. The boxes outline {ma} looking at {mb} (red) and back "
                           "(green).")

with tabs[1]:
    if not has_attention(model):
        st.info("Choose the Transformer or the hybrid to see attention computed step by step.")
    else:
        default_tiny = S.sequence_text(data, alphabet, int(state.get("seq_idx")))[:8]
        w1, w2, w3 = st.columns([2, 1, 1])
        w1.text_input("Tiny example (empty = the first 8 letters of the chosen sequence)", key=K("wt_seq"),
                      max_chars=24, placeholder=default_tiny)
        n_layers = len(model.encoder.layers)
        n_heads = model.encoder.layers[0].attention.heads
        if int(state.get("wt_layer")) > n_layers:
            state.set("wt_layer", 1)
        if int(state.get("wt_head")) > n_heads:
            state.set("wt_head", 1)
        w2.number_input("Layer", 1, n_layers, step=1, key=K("wt_layer"))
        w3.number_input("Head", 1, n_heads, step=1, key=K("wt_head"))
        tiny = (state.get("wt_seq") or default_tiny).strip().upper()
        try:
            steps = attention_steps(model, tiny, AB, int(state.get("wt_layer")) - 1, int(state.get("wt_head")) - 1)
        except ValueError as e:
            show_error(f"Cannot use '{tiny}': {e}.", f"Type only {AB.name} letters ({' '.join(AB.valid)}).")
            steps = None
        if steps is not None:
            n = len(steps.labels)
            show = min(n, 12)
            rows = steps.labels[:show]
            dims = [f"d{j + 1}" for j in range(steps.d_k)]
            st.markdown(f"Layer {steps.layer + 1}, head {steps.head + 1} of {steps.n_heads}: d_k = d_model / heads = "
                        f"**{steps.d_k}**. All numbers come from the trained model's own weights.")
            if n > show:
                st.caption(f"The hybrid turns any sequence into {n} pooled positions; the first {show} are shown "
                           f"(each softmax row still runs over all {n}).")
            st.markdown("**1 · Queries, keys, values**: Q = X·W_Q, K = X·W_K, V = X·W_V, where X is what enters "
                        "the attention block" + (" (after LayerNorm)." if steps.norm == "pre" else "."))
            fmt = ".2f" if steps.d_k <= 8 else ".1f"
            q1, q2 = st.columns(2)
            for col, mat, name in ((q1, steps.q, "Q"), (q2, steps.k, "K")):
                col.plotly_chart(matrix_figure(mat[:show], rows, dims, name, fmt), key=f"seq.wt_{name}",
                                 config=png_config(f"seq_wt_{name}"))
            st.markdown("**2 · Scores** QKᵀ/√d_k: how well each query (row) matches each key (column).  "
                        "**3 · Softmax** over each row: the attention weights (each row sums to 1).")
            s1, s2 = st.columns(2)
            s1.plotly_chart(matrix_figure(steps.scores[:show, :show], rows, steps.labels[:show],
                                          f"QKᵀ / √{steps.d_k}"), key="seq.wt_scores",
                            config=png_config("seq_wt_scores"))
            s2.plotly_chart(matrix_figure(steps.weights[:show, :show], rows, steps.labels[:show], "softmax",
                                          colorscale="Blues", zmid=None, zmin=0.0), key="seq.wt_softmax",
                            config=png_config("seq_wt_softmax"))
            st.markdown("**4 · Output** = weights · V: each position's new vector is a weighted average of the "
                        "value rows (then W_O mixes the heads).")
            o1, o2 = st.columns(2)
            o1.plotly_chart(matrix_figure(steps.v[:show], rows, dims, "V", fmt), key="seq.wt_V",
                            config=png_config("seq_wt_V"))
            o2.plotly_chart(matrix_figure(steps.output[:show], rows, dims, "softmax(QKᵀ/√d_k) · V", fmt),
                            key="seq.wt_output", config=png_config("seq_wt_output"))
            st.caption(f"Check: recomputed by hand (NumPy, float64), the weights match the ones the model used "
                       f"to within {steps.max_difference:.1e}.")

with tabs[2]:
    if not has_attention(model):
        st.info("Positional encodings belong to the Transformer and the hybrid.")
    else:
        kind = positional_kind(model)
        L = int(data.x_train.shape[1]) + (1 if getattr(model, "has_cls", False) else 0)
        if family == "hybrid":
            L = int(spec.pool_positions)
        if kind == "none":
            st.info("This model adds **no** positional encoding: attention then treats the sequence as a bag of "
                    "positions and cannot tell which came first or how far apart two motifs are. Switch "
                    "'Positions' to sinusoidal to see one.")
        else:
            pe = positional_encoding(model, L)
            st.plotly_chart(positional_encoding_figure(pe), key="seq.pe", config=png_config("seq_pe"))
            if kind == "sinusoidal":
                st.markdown("PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d)): "
                            "fast waves in the first dimensions, slow ones in the last, so every position gets a "
                            "unique pattern and nearby positions similar ones. Fixed, not learned.")
            else:
                st.markdown("A learned table: one vector per position, trained with the rest of the model "
                            "(random at epoch 0; watch it change as the model trains).")

with tabs[3]:
    comparison_tab(state, run)

with tabs[4]:
    st.markdown(f"**{spec.describe()}** — **{n_params:,} trainable parameters**")
    st.dataframe(pd.DataFrame(parameter_table(model))[["layer", "type", "text", "total"]], hide_index=True,
                 width="stretch")
    st.code(str(model), language=None)
    st.caption("Token ids: 0 = padding; " + ("A=1 C=2 G=3 T=4 N=5." if alphabet == "dna" else
                                             "the 20 amino acids (alphabetical one-letter codes) = 1…20, X = 21."))

sweep_panel(state, "sequence", trainer.task)   # 🔎 Sweep: trials in the background (playground/ui/sweep_view.py)
state.sync()
