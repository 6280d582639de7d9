"""DNA & CNNs: one-hot DNA, 1-D convolutions, and filters that turn into sequence logos.
Settings and the run: playground/setups/dna.py; the session caches: playground/ui/dna_view.py."""
import numpy as np
import streamlit as st

from playground import Trainer
from playground import metrics as M
from playground import plots
from playground.codegen import script_for
from playground.data import dna
from playground.data.motifs import KNOWN_MOTIFS, PRIMER_CONSENSUS, search_jaspar
from playground.data.parsing import SequenceFileError
from playground.interpret import has_filters, rank_filters, to_jaspar, to_meme
from playground.models import ACTIVATION_LABELS, count_parameters
from playground.plots.dna import one_hot_figure, recovery_figure, sequence_strip_figure
from playground.runs import PAGE_LABELS
from playground.setups import dna as D
from playground.train import LEARNING_RATES, OPTIMIZERS
from playground.ui import LiveTraining, PageState, setup_page, show_error, sidebar
from playground.ui.sweep_view import sweep_panel
from playground.ui import dna_view as V
from playground.ui.evaluation import metric_row, progress_line, schedule_controls, split_controls, test_panel
from playground.ui.doctor_view import render_doctor
from playground.ui.layout import stop_page
from playground.ui.runs import model_panel, png_config

setup_page("DNA & CNNs", "🧬")

state = PageState(D.SCHEMA, private=D.PRIVATE)
state.load()
seed, device = sidebar(state)
K = state.key
live = LiveTraining("dna")
ss = st.session_state

st.title("🧬 DNA & convolutional networks")
st.caption("DNA → one-hot matrix → CNN → prediction. A 1-D convolution filter sliding over one-hot DNA is a "
           "position weight matrix learned from data: plant a real JASPAR motif, press ▶ Play, and watch a filter "
           "turn into that motif's logo. Every setting is in the page's link.")


# ---- sidebar: data ------------------------------------------------------------------------------
def motif_picker(label_key: str, title: str) -> None:
    st.selectbox(title, D.MOTIF_NAMES, key=K(label_key), format_func=lambda m: f"{m} · {KNOWN_MOTIFS[m]}")


with st.sidebar:
    st.markdown("### 🧬 Data")
    st.selectbox("Data set", tuple(dna.DATASETS), key=K("dataset"), format_func=dna.DATASETS.get)
    kind = state.get("dataset")
    if kind == "planted":
        st.radio("Motif from", ("list", "jaspar", "consensus"), key=K("motif_source"), horizontal=True,
                 format_func={"list": "List", "jaspar": "JASPAR search", "consensus": "Consensus"}.get)
        src = state.get("motif_source")
        if src == "list":
            motif_picker("motif", "Motif (JASPAR)")
        elif src == "jaspar":
            query = st.text_input("Search JASPAR by ID or name", key=state.slot("jaspar_query"),
                                  placeholder="e.g. FOXA2, MA0139")
            hits = search_jaspar(query, 30) if query else []
            options = [i for i, _ in hits]
            if state.get("jaspar_id") not in options:
                options = [state.get("jaspar_id"), *options]
            names = dict(hits)
            st.selectbox("JASPAR matrix", options, key=K("jaspar_id"),
                         format_func=lambda i: f"{i} · {names[i]}" if i in names else i)
        else:
            st.text_input("Consensus (A C G T, IUPAC letters allowed)", key=K("consensus"),
                          help=f"The genomics-primer exercise plants {PRIMER_CONSENSUS} into 2000 × 50 bp.")
    elif kind == "multiclass":
        st.multiselect("Motifs (one class each, 2-5)", D.MOTIF_NAMES, key=K("motifs"), max_selections=5)
    elif kind == "grammar":
        motif_picker("motif_a", "Motif A (first)")
        motif_picker("motif_b", "Motif B (second)")
        st.slider("Spacing from A's end to B (bp)", 0, 30, key=K("spacing"))
    if kind in ("planted", "multiclass", "grammar"):
        st.select_slider("Sequences", D.N_CHOICES, key=K("n"))
        st.select_slider("Length (bp)", D.LENGTH_CHOICES, key=K("length"))
        with st.expander("Motif strength, noise, GC"):
            st.slider("GC content of the background", 0.2, 0.8, step=0.05, key=K("gc"))
            st.toggle("Plant the consensus only (no PWM sampling)", key=K("from_consensus"))
            if kind != "grammar":
                st.toggle("Either strand (reverse complement half the time)", key=K("both_strands"))
                st.slider("Label noise (fraction flipped)", 0.0, 0.3, step=0.05, key=K("label_noise"))
            st.slider("Motif noise (chance a motif base is random)", 0.0, 0.5, step=0.05, key=K("motif_noise"))
    elif kind == "upload":
        V.upload_controls(state)
    elif kind == "genomic":
        st.selectbox("Benchmark", tuple(dna.GENOMIC_BENCHMARKS), key=K("gb_name"),
                     format_func=lambda k: dna.GENOMIC_BENCHMARKS[k])
        V.gb_size_control(state)
    split_controls(state, predefined="Genomic Benchmarks keeps its published test split; validation is carved "
                   "from its training part (the sliders set the validation share)." if kind == "genomic" else None)

    st.markdown("### 🏗️ Model")
    st.selectbox("Model", tuple(D.MODELS), key=K("model"), format_func=D.MODELS.get)
    if state.get("model") == "custom":
        st.slider("Conv layers", 1, D.MAX_CONV_LAYERS, key=K("conv_layers"))
        for i in range(int(state.get("conv_layers"))):
            a, b = st.columns(2)
            a.number_input(f"Filters, layer {i + 1}", 1, 128, step=1, key=K(f"c{i + 1}"))
            b.number_input(f"Width, layer {i + 1}", 3, 25, step=1, key=K(f"k{i + 1}"))
        a, b = st.columns(2)
        a.selectbox("Padding", ("valid", "same"), key=K("padding"))
        b.selectbox("Activation", tuple(ACTIVATION_LABELS), key=K("activation"), format_func=ACTIVATION_LABELS.get)
        st.toggle("BatchNorm1d", key=K("batch_norm"))
        st.radio("Pooling", ("max", "adaptive", "none"), key=K("pool"), horizontal=True,
                 format_func={"max": "Max-pool", "adaptive": "Adaptive max", "none": "None"}.get)
        if state.get("pool") == "max":
            st.slider("Max-pool size", 2, 10, key=K("pool_size"))
        elif state.get("pool") == "adaptive":
            st.slider("AdaptiveMaxPool1d output size", 1, 10, key=K("pool_output"))
        a, b = st.columns(2)
        a.slider("Dropout (head)", 0.0, 0.8, step=0.1, key=K("dropout"), help="After the dense layer, as Keras DNA CNNs do.")
        b.slider("Dropout (conv)", 0.0, 0.8, step=0.1, key=K("conv_dropout"), help="After every conv block too (~25 % slower).")
        st.number_input("Dense layer (0 = straight to the output)", 0, 128, step=4, key=K("dense"))
    elif state.get("model") == "logreg":
        st.radio("Bases as", ("one_hot", "integer"), key=K("encoding"), horizontal=True,
                 format_func={"one_hot": "One-hot", "integer": "Numbers A=1 C=2 G=3 T=4"}.get,
                 help="Numericalised: one number per position, so the model reads T as 4 × A.")
    elif state.get("model") == "mlp":
        st.slider("Hidden layers", 1, 3, key=K("mlp_layers"))
        st.slider("Neurons per layer", 1, 32, key=K("mlp_neurons"))

    st.markdown("### 🏃 Training")
    a, b = st.columns(2)
    a.selectbox("Optimizer", tuple(OPTIMIZERS), key=K("optimizer"), format_func=OPTIMIZERS.get)
    b.selectbox("Batch size", D.BATCH_CHOICES, key=K("batch"))
    st.select_slider("Learning rate", LEARNING_RATES, key=K("lr"), format_func=lambda v: f"{v:g}")
    st.select_slider("Gradient clipping (max norm)", D.GRAD_CLIPS, key=K("grad_clip"),
                     format_func=lambda v: f"{v:g}" if v else "off",
                     help="Before each step, scale the gradient down when its norm is above this: a step can "
                          "never be huge, which tames a too-high learning rate. Changing it restarts the run.")
    schedule_controls(state)

# ---- the data set ------------------------------------------------------------------------------
file = ss.get(state.slot("upload"))
upload = (file.name, file.getvalue()) if file is not None else None
if V.data_missing(state, kind, upload):      # an upload prompt, or a Genomic Benchmarks set to download
    stop_page(state)

try:
    dataset = V.dataset(state, state.values(), upload)
except SequenceFileError as e:
    show_error(f"Could not read the uploaded file: {e.message}", e.hint)
    stop_page(state)
except ValueError as e:
    show_error(f"Could not make this data set: {e}", "Change the setting named in the message; everything "
               "else is kept.")
    stop_page(state)

if kind == "upload" and dataset.settings.get("columns"):
    with st.sidebar:
        a, b = st.columns(2)
        opts = ["", *dataset.settings["columns"]]
        for name in ("seq_col", "label_col"):
            if state.get(name) not in opts:
                state.set(name, "")
        a.selectbox("Sequence column", opts, key=K("seq_col"), format_func=lambda c: c or "auto")
        b.selectbox("Label column", opts, key=K("label_col"), format_func=lambda c: c or "auto")

# ---- the run -----------------------------------------------------------------------------------
try:
    run = D.build(state.values(), upload=upload, dataset=dataset)
except ValueError as e:
    show_error(f"This model cannot be built: {e}.", "Change the model settings in the sidebar (the data is kept).")
    stop_page(state)
spec, model_input, run_settings = run.spec, run.extras["input"], run.extras["parameters"]


def make_trainer() -> Trainer:
    ss[state.slot("recovery")] = []
    ss.pop(state.slot("interp"), None)
    return run.make_trainer()


try:
    trainer = live.ensure(run.signature, make_trainer,
                          run_info=dict(spec=spec, page="dna", dataset=dataset.name, parameters=run_settings,
                                        label_names=list(dataset.class_names) or None, input=model_input))
except (ValueError, RuntimeError) as e:
    show_error(f"Could not set up this run: {e}", "Change the settings back, or press Reset.")
    stop_page(state)
D.apply_live(trainer, state.values())

top = st.columns([2.2, 3])
with top[0]:
    live.controls()
with top[1]:
    est = V.epoch_estimate(state, run, trainer) if kind in ("upload", "genomic") else ""
    st.markdown(f"**{dataset.name}** · {dataset.summary()}  \n{spec.describe()} · "
                f"{count_parameters(trainer.model):,} parameters" + (f" · {est}" if est else ""))
for w in dataset.warnings:
    st.warning(w, icon="ℹ️")

HEADLINE = {"binary": ("accuracy", "auroc"), "multiclass": ("accuracy", "f1"), "regression": ("pearson_r", "r2")}


def interpretation(tr: Trainer) -> dict:
    return V.interpretation(state, tr, dataset, live.playing)


def status_row(tr: Trainer) -> None:
    rec = tr.latest
    if has_filters(tr.model) and dataset.motifs:
        c_main, c_motif = st.columns([5, 1])
        got = interpretation(tr)
        V.recovery_metric("Motif recovered", got["recovery"][0], (got["chance"] or [None])[0], c_motif)
    else:
        c_main = st.container()
    with c_main:
        metric_row(tr, rec, HEADLINE[tr.task])
    st.caption(progress_line(tr))
    render_doctor(tr, page="dna", key="doctor.dna", checks=False)
    if tr.diverged:
        st.error(f"⚠️ Training {tr.diverged}", icon="💥")
    if tr.stopped:
        st.success(f"⏹ {tr.stopped}")


# ---- tabs ----------------------------------------------------------------------------------------
def sequence_picker(tr: Trainer, where: str) -> tuple[int, int]:
    """(position in the validation set, index in the data set) of the chosen validation sequence
    (the views never show the held-out test set)."""
    val_idx = tr.data.meta["val_idx"]
    n_val = len(val_idx)
    if not 1 <= state.get("seq") <= n_val:
        state.set("seq", V.next_with_motif(val_idx, dataset))
    c1, c2, c3 = st.columns([1, 1, 2.2], vertical_alignment="bottom")
    c1.number_input(f"Validation sequence (1-{n_val})", 1, n_val, step=1, key=K("seq"))
    if dataset.sites:
        c2.button("Next with a motif ⏭", key=f"dna.next_motif.{where}",
                  on_click=lambda: state.set("seq", V.next_with_motif(val_idx, dataset, int(state.get("seq")))))
    i = min(max(int(state.get("seq")), 1), n_val) - 1
    j = int(val_idx[i])
    sites = dataset.sites[j] if dataset.sites else []
    where_txt = ", ".join(f"**{s.motif}** at {s.start + 1}-{s.end} ({s.strand} strand)" for s in sites)
    c3.markdown(f"Label: **{V.label_text(dataset, dataset.y[j])}**" + (
        f" · planted {where_txt}" if sites else (" · no planted motif" if dataset.motifs else "")))
    return i, j


def tab_data(tr: Trainer) -> None:
    i, j = sequence_picker(tr, "data")
    seq = dataset.seqs[j]
    sites = dataset.sites[j] if dataset.sites else []
    left, right = st.columns([1, 1.6])
    with left:
        st.plotly_chart(one_hot_figure(seq, title=f"One-hot matrix of validation sequence {i + 1}", sites=sites),
                        key="dna.onehot", config=png_config("dna_onehot"))
    with right:
        st.plotly_chart(sequence_strip_figure(seq[:100], sites), key="dna.strip", config=png_config("dna_strip"))
        st.markdown(
            "Each position becomes a row of four numbers, one per base **A C G T**: a single 1 where the base is. "
            f"The whole sequence is a **{dataset.length} × 4** matrix (PyTorch stores it as 4 channels × "
            f"{dataset.length} positions for `Conv1d`). An unknown base **N** is a row of zeros: the network sees "
            "\"no base here\" (some tools put 0.25 in every column instead). Padding is also zeros.")
        st.code(f"one_hot('{seq[:8]}…')  # -> tensor of shape (1, 4, {dataset.length})", language="python")
        for m in dataset.motifs[:5]:
            st.image(V.motif_logo_png(m.label, m.consensus, m.pwm.round(6).tolist()))
        csv = dataset.to_frame().to_csv(index=False)
        st.download_button("⬇️ This data set as CSV", csv, file_name="dna_dataset.csv", mime="text/csv",
                           key="dna.dl_csv", help="Upload it again with 'Upload CSV / FASTA'.")


def tab_training(tr: Trainer) -> None:
    c1, c2 = st.columns(2)
    c1.plotly_chart(plots.loss_figure(tr.history, trace=tr.trace), key="dna.loss", config=png_config("dna_loss"))
    c2.plotly_chart(plots.metric_figure(tr.history, [f"val_{n}" for n in HEADLINE[tr.task]],
                                        title="Validation metrics"),
                    key="dna.metrics", config=png_config("dna_metrics"))
    y = tr.data.y_val.cpu().numpy()
    # the validation outputs of the last epoch: the same moment as every number above
    out = tr.val_outputs if tr.val_outputs is not None else np.zeros((0, 1))
    st.caption(f"Below: the {len(y):,} validation sequences at epoch {tr.epoch} (the moment of the numbers above).")
    c3, c4 = st.columns(2)
    if len(y) == 0:
        pass
    elif tr.task == "regression":
        pred = out.reshape(-1)
        c3.plotly_chart(plots.parity_figure(y, pred, M.r2(y, pred), title="Predicted vs true (validation)"),
                        key="dna.parity", config=png_config("dna_parity"))
    else:
        pred = (out.reshape(-1) > 0).astype(int) if tr.task == "binary" else out.argmax(1)
        cm = M.confusion(y.astype(int), pred, max(2, dataset.n_classes))
        c3.plotly_chart(plots.confusion_figure(cm, dataset.class_names), key="dna.confusion",
                        config=png_config("dna_confusion"))
        if tr.task == "binary":
            p = M.sigmoid(out.reshape(-1))
            fpr, tpr = M.roc_curve(y, p)
            c4.plotly_chart(plots.roc_figure(fpr, tpr, M.auroc(y, p)), key="dna.roc", config=png_config("dna_roc"))
    if tr.task != "binary":
        c4.markdown("")
    test_panel(tr, HEADLINE[tr.task], key="dna.score_test", reference=V.baseline_text(state, dataset))


def tab_filters(tr: Trainer) -> None:
    if not has_filters(tr.model):
        st.info("This model has no convolution filters. Choose one of the CNNs to see filters turn into logos; "
                "the **Explain a sequence** tab works for every model.", icon="🧩")
        return
    got = interpretation(tr)
    pwms, rec = got["pwms"], got["recovery"]
    c1, c2, c3 = st.columns([1.2, 1.2, 2])
    c1.radio("Logo of", ("activation", "weights"), key=K("logo_kind"), horizontal=True,
             format_func={"activation": "Activation PWM (bits)", "weights": "Raw weights"}.get)
    c2.select_slider("Filters shown", (4, 8, 16, 32), key=K("n_logos"))
    c3.caption("**Activation PWM**: every window of the data where the filter fires above half its maximum, "
               "stacked and counted, drawn as information content. **Raw weights**: the filter's 4 × width "
               "numbers, centred per column. Filters are sorted by how well they match the planted motif"
               + ("" if dataset.motifs else " (by information content: no motif was planted)") + ".")
    order = rank_filters(pwms, dataset.motifs)[: int(state.get("n_logos"))]
    png, shown_epoch = V.filter_logos(state, got, order, state.get("logo_kind"), live.playing)
    hist = ss.get(state.slot("recovery")) or []
    if rec:
        cols = st.columns([1] * len(rec[:3]) + [2.2])
        for col, r, ch in zip(cols, rec[:3], got["chance"]):
            with col:
                V.recovery_metric(f"Motif recovered: {r['motif']}", r, ch)
                if r["filter"] is not None:
                    st.caption(f"best: filter {r['filter'] + 1}, {r['strand']} strand, {r['overlap']} columns "
                               f"aligned · untrained networks: median {ch.median:.2f}, 95 % ≤ {ch.band:.2f}")
        if tr.model.filter_weights().shape[2] < 6:
            cols[0].caption("⚠️ Filters narrower than 6 bases cannot hold a whole motif; their match scores are "
                            "weak evidence.")
        if len(hist) > 1:
            with cols[-1]:
                st.plotly_chart(recovery_figure(hist, "Motif recovered per epoch", height=220,
                                                chance=V.chance_bands(got)), key="dna.recovery",
                                config=png_config("dna_recovery"))
    st.image(png, width="stretch", caption=f"First-layer filters after epoch {shown_epoch}"
             + (" (redrawn every second or two while training: logos are slow to draw)" if live.playing else ""))
    if live.playing:
        st.caption("JASPAR matches and downloads appear when training is paused.")
        return
    st.markdown("##### Best JASPAR matches (CORE vertebrates, column-wise Pearson, both strands)")
    table_key = tuple(order)
    if table_key not in got["table"]:
        with st.spinner("Matching the filters against JASPAR (and random filters, for the chance level) …"):
            got["table"][table_key] = V.jaspar_rows(tr, got, order)
    st.dataframe(got["table"][table_key], hide_index=True, width="stretch")
    st.caption("**chance r (95 %)**: a random filter of this shape on these data finds a JASPAR motif this close "
               "(its best hit among ~900) 5 % of the time; **p (hit 1)**: the share of random filters whose best hit "
               "is at least as good as this filter's.")
    d1, d2, _ = st.columns([1, 1, 2])
    d1.download_button("⬇️ Filters as MEME", to_meme(pwms, min_sites=1), file_name="dna_filters.meme",
                       mime="text/plain", key="dna.dl_meme", help="MEME minimal format, e.g. for Tomtom.")
    d2.download_button("⬇️ Filters as JASPAR", to_jaspar(pwms, min_sites=1), file_name="dna_filters.jaspar",
                       mime="text/plain", key="dna.dl_jaspar")


def tab_explain(tr: Trainer) -> None:
    from playground.ui.mutation_view import render_explain  # a validation or a typed sequence: saliency, scan
    render_explain(tr, dataset, state, sequence_picker, model_input, live.playing)


def tab_convolution(tr: Trainer) -> None:
    from playground.ui.conv_view import render_convolution  # the convolution-by-hand walk-through
    render_convolution(tr, dataset, state)


def tab_designed(tr: Trainer) -> None:
    from playground.ui.designed_view import render_designed_filters  # designed vs learned first-layer filters
    render_designed_filters(tr, dataset, state, run)


def tab_save(tr: Trainer) -> None:
    extras = []
    if has_filters(tr.model) and tr.steps > 0:
        pwms = interpretation(tr)["pwms"]
        extras = [("Filters (MEME)", to_meme(pwms), "dna_filters.meme", "text/plain"),
                  ("Filters (JASPAR)", to_jaspar(pwms), "dna_filters.jaspar", "text/plain")]
    model_panel(tr, spec, page="dna", dataset=dataset.name, label_names=list(dataset.class_names) or None,
                input=model_input, settings=run_settings, extra_downloads=extras,
                code=lambda: script_for(run, tr, title=f"{PAGE_LABELS['dna']} · {dataset.name}"))


def draw(tr: Trainer) -> None:
    status_row(tr)
    tabs = st.tabs(D.TABS, key=K("tab"), on_change="rerun")
    for t, fn in zip(tabs, (tab_data, tab_convolution, tab_training, tab_filters, tab_designed, tab_explain, tab_save)):
        if t.open:
            with t:
                fn(tr)


live.run(draw)
sweep_panel(state, "dna", trainer.task)        # 🔎 Sweep: trials in the background (playground/ui/sweep_view.py)
state.sync()
