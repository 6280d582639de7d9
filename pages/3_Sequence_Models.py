"""Sequence models & attention: RNN/LSTM/GRU, Transformers and the hybrid CNN+Transformer on DNA and
proteins; attention maps, attention computed step by step, positional encodings, run comparison."""
import hashlib

import numpy as np
import pandas as pd
import streamlit as st

from playground import TrainConfig, Trainer
from playground import metrics as M
from playground import plots
from playground.attention import (attention_maps, attention_steps, has_attention, motif_attention,
                                  positional_encoding, positional_kind)
from playground.bundle import InputSpec
from playground.compare import FAMILIES, Comparison, default_specs, make_spec, results_table
from playground.data import protein as P
from playground.data.parsing import SequenceFileError
from playground.encoding import ALPHABETS, decode
from playground.models import build_model, count_parameters, parameter_table
from playground.models.hybrid import HYBRID_COURSE, HYBRID_SMALL
from playground.models.rnn import CELLS, OUTPUTS
from playground.models.transformer import NORM, POSITIONAL
from playground.plots.attention import (attention_grid_figure, attention_heatmap_figure, comparison_figure,
                                        matrix_figure, per_residue_figure, positional_encoding_figure)
from playground.train import LEARNING_RATES, OPTIMIZERS
from playground.ui import LiveTraining, PageState, Param, setup_page, show_error, sidebar
from playground.ui.runs import model_panel, png_config, record_history

setup_page("Sequence models & attention", "🔁")

DATASETS = {**P.BUILTIN, "upload": "Upload CSV / TSV / FASTA"}
N_CHOICES = (200, 400, 600, 1000, 2000, 3000, 4000)
LENGTH_CHOICES = (30, 40, 50, 60, 80, 100, 150, 200)
BATCH_CHOICES = (16, 32, 64, 128)
MODEL_FAMILIES = {"transformer": "Transformer encoder", "hybrid": "Hybrid CNN + Transformer (course)",
                  "rnn": "RNN / LSTM / GRU", "cnn": "CNN (embedding + Conv1d)"}
D_MODELS = (8, 16, 32, 64, 128, 256)
HEADS = (1, 2, 4, 8)
FFS = (16, 32, 64, 128, 256, 512, 1024)
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.5)
HIDDEN = (8, 16, 32, 64, 128, 256)
CHANNELS = (8, 16, 32, 64, 128, 256)
POOL_POSITIONS = (8, 16, 32, 64)
COMPARE_CHOICES = ("cnn", "rnn", "lstm", "gru", "transformer", "hybrid")
WINDOW = 60            # attention positions shown at once for long sequences
HYBRID_KEYS = ("embed_dim", "conv1_channels", "conv1_kernel", "conv2_channels", "conv2_kernel", "pool_positions",
               "heads", "ff", "layers", "hidden", "positional", "norm", "pooling")

state = PageState("seq", [
    Param("dataset", "dna_grammar", choices=tuple(DATASETS)),
    Param("n", 2000, "int", choices=N_CHOICES),
    Param("length", 60, "int", choices=LENGTH_CHOICES),
    Param("split", "random", choices=tuple(P.SPLITS)),
    Param("train_pct", 80, "int", lo=50, hi=90),
    Param("up_alphabet", "protein", choices=("protein", "dna")),
    Param("up_per_residue", False, "bool"),
    Param("up_map_rare", False, "bool"),
    Param("up_truncate", False, "bool"),
    Param("up_max_len", 1000, "int", lo=10, hi=5000),
    Param("family", "hybrid", choices=tuple(MODEL_FAMILIES)),
    Param("t_d", 32, "int", choices=D_MODELS),
    Param("t_heads", 4, "int", choices=HEADS),
    Param("t_layers", 2, "int", lo=1, hi=4),
    Param("t_ff", 64, "int", choices=FFS),
    Param("t_dropout", 0.1, "float", choices=DROPOUTS),
    Param("t_norm", "pre", choices=tuple(NORM)),
    Param("t_pos", "sinusoidal", choices=tuple(POSITIONAL)),
    Param("t_pool", "mean", choices=("mean", "cls")),
    Param("r_cell", "lstm", choices=tuple(CELLS)),
    Param("r_embed", 16, "int", choices=(4, 8, 16, 32, 64)),
    Param("r_hidden", 32, "int", choices=HIDDEN),
    Param("r_layers", 1, "int", lo=1, hi=3),
    Param("r_bi", True, "bool"),
    Param("r_out", "pooled", choices=("pooled", "last")),
    Param("c_layers", 2, "int", lo=1, hi=4),
    Param("c_channels", 32, "int", choices=CHANNELS),
    Param("c_kernel", 7, "int", lo=1, hi=25),
    Param("c_pool", "max", choices=("max", "mean")),
    Param("h_embed_dim", HYBRID_SMALL.embed_dim, "int", choices=(8, 16, 32, 64)),
    Param("h_conv1_channels", HYBRID_SMALL.conv1_channels, "int", choices=CHANNELS),
    Param("h_conv1_kernel", HYBRID_SMALL.conv1_kernel, "int", lo=2, hi=16),
    Param("h_conv2_channels", HYBRID_SMALL.conv2_channels, "int", choices=CHANNELS),
    Param("h_conv2_kernel", HYBRID_SMALL.conv2_kernel, "int", lo=2, hi=16),
    Param("h_pool_positions", HYBRID_SMALL.pool_positions, "int", choices=POOL_POSITIONS),
    Param("h_heads", HYBRID_SMALL.heads, "int", choices=HEADS),
    Param("h_ff", HYBRID_SMALL.ff, "int", choices=FFS),
    Param("h_layers", HYBRID_SMALL.layers, "int", lo=1, hi=4),
    Param("h_hidden", HYBRID_SMALL.hidden, "int", choices=(16, 32, 64, 128)),
    Param("h_positional", HYBRID_SMALL.positional, choices=("none", "sinusoidal")),
    Param("h_norm", HYBRID_SMALL.norm, choices=("pre", "post")),
    Param("h_pooling", HYBRID_SMALL.pooling, choices=("mean", "max")),
    Param("optimizer", "adam", choices=tuple(OPTIMIZERS)),
    Param("lr", 0.001, "float", choices=tuple(LEARNING_RATES)),
    Param("batch", 32, "int", choices=BATCH_CHOICES),
    Param("seq_idx", 0, "int", lo=0, hi=100_000),
    Param("layer", 1, "int", lo=1, hi=8),
    Param("win_start", 1, "int", lo=1, hi=100_000),
    Param("wt_seq", ""),
    Param("wt_layer", 1, "int", lo=1, hi=8),
    Param("wt_head", 1, "int", lo=1, hi=8),
    Param("cmp_models", ["cnn", "lstm", "transformer", "hybrid"], "list", choices=COMPARE_CHOICES, max_len=6),
    Param("cmp_epochs", 5, "int", lo=1, hi=50),
])
state.load()
seed, device = sidebar(state)
K = state.key
ss = st.session_state


def _stop() -> None:
    state.sync()
    st.stop()


def _hybrid_preset(spec) -> None:
    for name in HYBRID_KEYS:
        ss[K(f"h_{name}")] = getattr(spec, name)


st.title("🔁 Sequence models & attention")
st.caption("RNNs read a sequence one letter at a time; a Transformer lets every position look at every other one; "
           "the hybrid finds motifs with convolutions and relates them with attention. Train them on DNA or "
           "proteins, see what attention looks at, and compare them on the same split. Every setting is in the "
           "page's link.")

# ---- data ------------------------------------------------------------------------------------------------
c_set, c_view = st.columns([1.25, 3], gap="medium")
with c_set:
    st.markdown("#### Data")
    st.selectbox("Data set", tuple(DATASETS), key=K("dataset"), format_func=DATASETS.get)
    dataset = state.get("dataset")
    if dataset == "upload":
        st.file_uploader("CSV / TSV / FASTA", type=["csv", "tsv", "txt", "fa", "fasta", "faa", "fna", "gz"],
                         key="seq._uploader",
                         help="CSV/TSV: a `sequence` column and a `label` column (classes or numbers), or for "
                              "per-residue labels an `ss` column with one letter per residue (e.g. HHHEEECCC; '-' "
                              "= ignore) and an optional `mask` column of 1/0. FASTA: `>name label=1` headers.")
        up = ss.get("seq._uploader")
        if up is not None:
            ss["seq._upload"] = (up.name, up.getvalue())
        elif ss.get("seq._upload") is not None:
            f1, f2 = st.columns([3, 1])
            f1.caption(f"Using **{ss['seq._upload'][0]}** (uploaded earlier in this session).")
            f2.button("Forget", key="seq._forget", on_click=lambda: ss.pop("seq._upload", None))
        u1, u2 = st.columns(2)
        u1.radio("Alphabet", ("protein", "dna"), key=K("up_alphabet"), horizontal=True,
                 format_func={"protein": "Protein", "dna": "DNA"}.get)
        u2.toggle("Per-residue labels", key=K("up_per_residue"))
        u1.toggle("Map B Z U O → X" if state.get("up_alphabet") == "protein" else "Map U → T", key=K("up_map_rare"),
                  help="Rare or ambiguous letters are refused unless this is on.")
        u2.toggle("Truncate long sequences", key=K("up_truncate"))
        st.number_input("Length limit", 10, 5000, step=10, key=K("up_max_len"),
                        help="Longer sequences are an error, or are cut to this length with 'Truncate' on.")
    else:
        d1, d2 = st.columns(2)
        d1.select_slider("Sequences", N_CHOICES, key=K("n"))
        d2.select_slider("Length" if dataset.startswith("dna") else "Longest protein", LENGTH_CHOICES,
                         key=K("length"))
    st.radio("Split", tuple(P.SPLITS), key=K("split"), format_func=P.SPLITS.get,
             help="Related sequences (homologs) in both training and test sets make test scores look better than "
                  "they will be on new sequences. 'No near-duplicates' clusters sequences by shared k-mers and "
                  "keeps each cluster on one side.")
    st.slider("Training share (%)", 50, 90, step=5, key=K("train_pct"),
              help="The rest is the validation set: all validation metrics are measured on it.")


@st.cache_data(max_entries=8, show_spinner="Making the data set …")
def make_data(name, n, length, split, train_pct, seed, upload_hash, _upload, up_opts):
    if name == "upload":
        fname, raw = _upload
        opts = dict(up_opts)
        ps = P.load_protein_file(raw, fname, per_residue=opts["per_residue"], map_rare=opts["map_rare"],
                                 max_length=opts["max_len"], truncate=opts["truncate"],
                                 alphabet=ALPHABETS[opts["alphabet"]])
    else:
        ps = P.builtin_set(name, n, length, seed)
    data = P.to_split(ps, split, train_pct / 100, seed)
    return data, ps.description, ps.alphabet.name, list(ps.warnings)


upload = ss.get("seq._upload")
if dataset == "upload" and upload is None:
    with c_view:
        st.info("⬆️ Upload a CSV, TSV or FASTA file of sequences with labels (left), or pick a built-in data set. "
                "Example CSV:\n\n```\nsequence,label\nMKTAYIAKQRQISFVKSHFSRQ,1\nMSDNELLKEVLEAG,0\n```")
    _stop()
up_hash = hashlib.sha1(upload[1]).hexdigest() if (dataset == "upload" and upload) else ""
up_opts = (("alphabet", state.get("up_alphabet")), ("per_residue", state.get("up_per_residue")),
           ("map_rare", state.get("up_map_rare")), ("truncate", state.get("up_truncate")),
           ("max_len", int(state.get("up_max_len"))))
try:
    data, description, alphabet, data_warnings = make_data(
        dataset, int(state.get("n")), int(state.get("length")), state.get("split"), int(state.get("train_pct")),
        seed, up_hash, upload if dataset == "upload" else None, up_opts if dataset == "upload" else ())
except SequenceFileError as e:
    with c_view:
        show_error(f"Could not read '{upload[0]}': {e.message}", e.hint or "Fix the file and upload it again.")
    _stop()
except ValueError as e:
    with c_view:
        show_error(f"Could not make this data set: {e}", "Change the setting named in the message; everything else "
                   "is kept.")
    _stop()
AB = ALPHABETS[alphabet]
task = data.task
metric = M.HEADLINE[task]
data_key = (f"{DATASETS[dataset]} · n={len(data.y_train) + len(data.y_test)} · {state.get('split')} split · "
            f"{state.get('train_pct')}% train · seed {seed}") + (f" · {upload[0]}" if dataset == "upload" else "")

with c_set:
    with st.expander("How this data is made", expanded=False):
        st.markdown(description)
    for w in data_warnings:
        st.caption(f"⚠️ {w}")
    leak = data.meta.get("leakage")
    st.caption(f"**{task.replace('_', '-')}** · {len(data.y_train)} training / {len(data.y_test)} validation "
               f"sequences · length {data.x_train.shape[1]}"
               + (f" · {leak:.0%} of validation sequences have a near-duplicate in training" if leak is not None
                  else ""))

# ---- model -----------------------------------------------------------------------------------------------
with c_set:
    st.markdown("#### Model")
    st.selectbox("Architecture", tuple(MODEL_FAMILIES), key=K("family"), format_func=MODEL_FAMILIES.get)
    family = state.get("family")
    with st.container(border=True):
        if family == "transformer":
            a, b = st.columns(2)
            a.select_slider("d_model", D_MODELS, key=K("t_d"), help="Width of every position's vector.")
            b.select_slider("Heads", HEADS, key=K("t_heads"), help="d_model is split into this many heads.")
            a.slider("Layers", 1, 4, key=K("t_layers"))
            b.select_slider("Feed-forward size", FFS, key=K("t_ff"))
            a.select_slider("Dropout", DROPOUTS, key=K("t_dropout"))
            b.selectbox("LayerNorm", tuple(NORM), key=K("t_norm"), format_func=NORM.get)
            a.selectbox("Positions", tuple(POSITIONAL), key=K("t_pos"), format_func=POSITIONAL.get,
                        help="Without a positional encoding, attention sees a bag of letters: order is lost.")
            b.selectbox("Pooling", ("mean", "cls"), key=K("t_pool"),
                        format_func={"mean": "Mean over positions", "cls": "CLS token"}.get,
                        disabled=task == "per_residue",
                        help="How one vector per sequence is made (per-residue tasks skip pooling).")
            hp = dict(d_model=state.get("t_d"), heads=state.get("t_heads"), layers=state.get("t_layers"),
                      ff=state.get("t_ff"), dropout=state.get("t_dropout"), norm=state.get("t_norm"),
                      positional=state.get("t_pos"), pooling=state.get("t_pool"))
        elif family == "rnn":
            a, b = st.columns(2)
            a.selectbox("Cell", tuple(CELLS), key=K("r_cell"), format_func=lambda c: CELLS[c][0])
            b.select_slider("Hidden size", HIDDEN, key=K("r_hidden"))
            a.slider("Layers", 1, 3, key=K("r_layers"))
            b.select_slider("Embedding size", (4, 8, 16, 32, 64), key=K("r_embed"))
            a.toggle("Bidirectional", key=K("r_bi"))
            b.selectbox("Output", ("pooled", "last"), key=K("r_out"), format_func=OUTPUTS.get,
                        disabled=task == "per_residue",
                        help="Per-residue tasks use every position's state (many-to-many).")
            hp = dict(cell=state.get("r_cell"), hidden=state.get("r_hidden"), layers=state.get("r_layers"),
                      embed_dim=state.get("r_embed"), bidirectional=state.get("r_bi"), output=state.get("r_out"))
        elif family == "cnn":
            a, b = st.columns(2)
            a.slider("Conv layers", 1, 4, key=K("c_layers"))
            b.select_slider("Channels", CHANNELS, key=K("c_channels"))
            a.slider("Kernel width", 1, 25, key=K("c_kernel"))
            b.selectbox("Pooling", ("max", "mean"), key=K("c_pool"), disabled=task == "per_residue",
                        format_func={"max": "Global max", "mean": "Masked mean"}.get)
            hp = dict(channels=(state.get("c_channels"),) * state.get("c_layers"), kernel=state.get("c_kernel"),
                      pooling=state.get("c_pool"))
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
            a.select_slider("Embedding", (8, 16, 32, 64), key=K("h_embed_dim"))
            b.select_slider("Conv 1 channels", CHANNELS, key=K("h_conv1_channels"))
            a.slider("Conv 1 kernel", 2, 16, key=K("h_conv1_kernel"))
            b.select_slider("Conv 2 channels = d_model", CHANNELS, key=K("h_conv2_channels"))
            a.slider("Conv 2 kernel", 2, 16, key=K("h_conv2_kernel"))
            b.select_slider("Pooled positions", POOL_POSITIONS, key=K("h_pool_positions"))
            a.select_slider("Heads", HEADS, key=K("h_heads"))
            b.select_slider("Feed-forward", FFS, key=K("h_ff"))
            a.slider("Attention layers", 1, 4, key=K("h_layers"))
            b.select_slider("Head hidden", (16, 32, 64, 128), key=K("h_hidden"))
            a.selectbox("Positions", ("none", "sinusoidal"), key=K("h_positional"), format_func=POSITIONAL.get,
                        help="The notes add none: attention then cannot tell how far apart two motifs are.")
            b.selectbox("LayerNorm", ("pre", "post"), key=K("h_norm"), format_func=NORM.get)
            a.selectbox("Pooling", ("mean", "max"), key=K("h_pooling"),
                        format_func={"mean": "Mean (notes)", "max": "Max"}.get,
                        help="Mean averages one informative position with all the others; max keeps it.")
            hp = {name: state.get(f"h_{name}") for name in HYBRID_KEYS}
    try:
        spec = make_spec(family, alphabet, data, hp)
        n_params = count_parameters(build_model(spec, seed))
    except ValueError as e:
        with c_view:
            show_error(f"This model cannot be built: {e}.", "Change the model settings (the data is kept).")
        _stop()
    st.caption(f"**{spec.describe()}** · **{n_params:,} parameters**")

    st.markdown("#### Training")
    t1, t2 = st.columns(2)
    t1.selectbox("Optimizer", tuple(OPTIMIZERS), key=K("optimizer"), format_func=OPTIMIZERS.get)
    t2.select_slider("Batch size", BATCH_CHOICES, key=K("batch"))
    st.select_slider("Learning rate", LEARNING_RATES, key=K("lr"), format_func=lambda v: f"{v:g}")

config = TrainConfig(optimizer=state.get("optimizer"), lr=float(state.get("lr")), batch_size=int(state.get("batch")),
                     seed=seed, device=device, track_metrics=True)
live = LiveTraining("seq")
signature = repr((data_key, up_hash, up_opts if dataset == "upload" else (), spec.to_dict(), config.optimizer,
                  config.batch_size, seed, device))
try:
    trainer = live.ensure(signature, lambda: Trainer(build_model(spec, seed), data, config),
                          run_info=dict(spec=spec, page="seq", dataset=data_key, label_names=data.class_names,
                                        input=InputSpec("tokens", alphabet), parameters={"family": family}))
except (ValueError, RuntimeError) as e:
    with c_view:
        show_error(f"Could not set up this run: {e}", "Change the settings back, or press Reset.")
    _stop()
trainer.set_lr(config.lr)

METRIC_NAMES = {"accuracy": "Accuracy", "auroc": "AUROC", "mcc": "MCC", "f1": "F1", "q3": "Q3", "pearson_r": "Pearson r",
                "r2": "R²"}
SHOWN = {"binary": ("accuracy", "mcc", "f1", "auroc"), "multiclass": ("accuracy", "mcc", "f1"),
         "per_residue": ("q3", "mcc"), "regression": ("pearson_r", "r2")}[task]


def draw(tr: Trainer) -> None:
    rec = tr.latest
    cols = st.columns(3 + len(SHOWN))
    cols[0].metric("Epoch", f"{tr.epoch:,}")
    cols[1].metric("Training loss", f"{rec['train_loss']:.4f}")
    cols[2].metric("Validation loss", f"{rec['test_loss']:.4f}")
    for c, k in zip(cols[3:], SHOWN):
        v = rec.get(f"test_{k}")
        c.metric(f"Val. {METRIC_NAMES[k]}", "–" if v is None or not np.isfinite(v) else f"{v:.3f}")
    if tr.diverged:
        st.error(f"⚠️ Training {tr.diverged}", icon="💥")
    g1, g2 = st.columns(2)
    g1.plotly_chart(plots.loss_figure(tr.history, title="Loss (cross-entropy)" if task != "regression" else
                                      "Loss (MSE)"), key="seq.loss", config=png_config("seq_loss"))
    g2.plotly_chart(plots.metric_figure(tr.history, [f"test_{k}" for k in SHOWN], title="Validation metrics"),
                    key="seq.metrics", config=png_config("seq_metrics"))
    st.caption(f"{tr.steps:,} mini-batches · {tr.seconds:.1f} s of training · metrics on the {len(tr.data.y_test)} "
               "validation sequences" + (" (Q3 = share of residues labelled right; padding and masked residues "
                                          "are left out)" if task == "per_residue" else ""))


with c_view:
    live.controls()
    live.run(draw)
    if live.playing:      # the panel is drawn outside the live fragment: its files would be the paused model's
        st.caption("💾 Pause training to save this model, its training history and its PyTorch code.")
    else:
        model_panel(trainer, spec, page="seq", dataset=data_key, label_names=data.class_names,
                    input=InputSpec("tokens", alphabet), settings={"family": family})

# ---- the views ---------------------------------------------------------------------------------------------
model = trainer.model
test_idx = data.meta["test_idx"]
n_test = len(test_idx)
if int(state.get("seq_idx")) >= n_test:
    state.set("seq_idx", 0)

tabs = c_view.tabs(["🔎 Attention maps", "🧮 How attention is computed", "📍 Positional encoding", "🏁 Run comparison",
                    "🔢 Model & parameters"])


def sequence_text(i: int) -> str:
    return decode(data.x_test[i].tolist(), AB)


def prediction_text(i: int) -> str:
    pred = trainer.predict(data.x_test[i: i + 1])
    y = data.y_test[i]
    names = data.class_names
    if task == "binary":
        p = float(pred[0])
        t = int(y.item())
        lab = names[t] if names else str(t)
        return f"label **{lab}** · model: P(class 1) = **{p:.2f}** ({'right' if (p >= 0.5) == bool(t) else 'wrong'})"
    if task == "multiclass":
        k = int(np.argmax(pred[0]))
        return f"label **{names[int(y)]}** · model: **{names[k]}** ({pred[0][k]:.2f})"
    if task == "regression":
        return f"value **{float(y):.3f}** · model: **{float(pred[0]):.3f}**"
    return ""


def motif_spans(i: int):
    sites = data.meta.get("sites")
    if not sites:
        return []
    return [(s.motif, s.start, s.end) for s in sites[int(test_idx[i])]]


with tabs[0]:
    c1, c2 = st.columns([1, 3])
    c1.number_input(f"Validation sequence (0–{n_test - 1})", 0, max(0, n_test - 1), step=1, key=K("seq_idx"))
    i = int(state.get("seq_idx"))
    text = sequence_text(i)
    spans = motif_spans(i)
    c2.markdown(f"`{text[:120]}{'…' if len(text) > 120 else ''}`  \n{prediction_text(i)}"
                + ("  \nPlanted: " + ", ".join(f"**{m}** at {s + 1}–{e}" for m, s, e in spans) if spans else ""))
    if task == "per_residue":
        probs = trainer.predict(data.x_test[i: i + 1])[0][: len(text)]
        pred = "".join(data.class_names[k] for k in probs.argmax(-1))
        true = "".join(data.class_names[t] if t >= 0 else "-" for t in data.y_test[i][: len(text)].tolist())
        start = 0 if len(text) <= 80 else int(st.slider("Residues from", 1, len(text) - 79, 1, key="seq._pr_from")) - 1
        st.plotly_chart(per_residue_figure(text, true, pred, data.class_names, window=(start, start + 80)),
                        key="seq.per_residue", config=png_config("seq_per_residue"))
    if not has_attention(model):
        st.info("This model has no attention layers. Choose the **Transformer** or the **hybrid CNN + Transformer** "
                "to see what each position looks at.")
    else:
        maps = attention_maps(model, data.x_test[i], AB)
        n_pos = len(maps.labels)
        shown = maps
        if n_pos > WINDOW:
            if int(state.get("win_start")) > n_pos - WINDOW + 1:
                state.set("win_start", 1)
            start = int(st.slider("Zoom: window of positions starting at", 1, n_pos - WINDOW + 1, key=K("win_start")))
            shown = maps.window(start - 1, start - 1 + WINDOW)
            st.caption(f"Showing positions {start}–{start + WINDOW - 1} of {n_pos}.")
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
        default_tiny = sequence_text(int(state.get("seq_idx")))[:8]
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
    st.markdown("Train several architectures on **this data set and split** with the same optimizer, learning "
                "rate, batch size and seed; compare their validation curves. Runs stay here while the session "
                "lives.")
    k1, k2 = st.columns([3, 1])
    cmp_opts = [f for f in COMPARE_CHOICES if not (task == "per_residue" and f == "hybrid")]
    current = [f for f in state.get("cmp_models") if f in cmp_opts]
    if current != state.get("cmp_models"):
        state.set("cmp_models", current)
    k1.multiselect("Models", cmp_opts, key=K("cmp_models"), format_func=FAMILIES.get)
    k2.number_input("Epochs each", 1, 50, step=1, key=K("cmp_epochs"))
    runs = ss.setdefault("seq._runs", [])

    def _start():
        fams = tuple(state.get("cmp_models"))
        specs = default_specs(alphabet, data, fams)
        ss["seq._cmp"] = Comparison(data, specs, int(state.get("cmp_epochs")), config, seed, data_key)

    def _record_cmp(done_runs) -> None:
        """Each finished comparison run goes to the session's run list (Run history page) too."""
        for r in done_runs:
            record_history(page="seq", dataset=data_key, model=f"{r.name} (comparison)", spec=r.spec,
                           history=r.history, seconds=r.seconds, n_params=r.params, task=task,
                           parameters={"epochs": r.epochs, "seed": r.seed},
                           note="" if r.status == "done" else ("stopped" if r.status == "running" else r.status))

    def _stop_cmp():
        cmp = ss.pop("seq._cmp", None)
        if cmp is not None:
            stopped = [r for r in cmp.runs if r.epochs > 0]
            runs.extend(stopped)
            _record_cmp(stopped)

    b1, b2, b3 = st.columns(3)
    running = ss.get("seq._cmp") is not None
    b1.button("🏁 Run comparison", on_click=_start, disabled=running or not state.get("cmp_models"), type="primary",
              width="stretch")
    b2.button("⏹ Stop", on_click=_stop_cmp, disabled=not running, width="stretch")
    b3.button("🗑 Clear runs", on_click=lambda: ss.__setitem__("seq._runs", []), disabled=running, width="stretch")
    st.caption("Small models (about 10–80 k parameters) so that a comparison takes about a minute on two CPU cores. "
               "The 'Model' settings above are not used here.")

    @st.fragment(run_every=0.3 if running else None)
    def comparison_view():
        cmp = ss.get("seq._cmp")
        if cmp is not None:
            done = cmp.run_for(0.25)
            st.progress(cmp.progress, text=f"Training {cmp.current or '…'} · {cmp.progress:.0%}")
            if done:
                ss.pop("seq._cmp", None)
                ss["seq._runs"].extend(cmp.runs)
                _record_cmp(cmp.runs)
                st.rerun()
        shown_runs = [r for r in ss.get("seq._runs", []) if r.data_key == data_key]
        if cmp is not None:
            shown_runs = shown_runs + cmp.runs
        if shown_runs:
            f1, f2 = st.columns(2)
            f1.plotly_chart(comparison_figure(shown_runs, metric), key="seq.cmp_metric",
                            config=png_config("seq_cmp_metric"))
            f2.plotly_chart(comparison_figure(shown_runs, metric, what="loss"), key="seq.cmp_loss",
                            config=png_config("seq_cmp_loss"))
        all_runs = ss.get("seq._runs", [])
        if all_runs:
            st.markdown("**All runs this session**")
            st.dataframe(pd.DataFrame(results_table(all_runs)), hide_index=True, width="stretch")
        elif cmp is None:
            st.caption("No runs yet.")

    comparison_view()

with tabs[4]:
    st.markdown(f"**{spec.describe()}** — **{n_params:,} trainable parameters**")
    st.dataframe(pd.DataFrame(parameter_table(model))[["layer", "type", "text", "total"]], hide_index=True,
                 width="stretch")
    st.code(str(model), language=None)
    st.caption("Token ids: 0 = padding; " + ("A=1 C=2 G=3 T=4 N=5." if alphabet == "dna" else
                                             "the 20 amino acids (alphabetical one-letter codes) = 1…20, X = 21."))

state.sync()
