"""DNA & CNNs: one-hot DNA, 1-D convolutions, and filters that turn into sequence logos."""
import hashlib
import time

import numpy as np
import streamlit as st

from playground import TrainConfig, Trainer
from playground import metrics as M
from playground import plots
from playground.bundle import InputSpec
from playground.data import dna
from playground.data.motifs import KNOWN_MOTIFS, PRIMER_CONSENSUS, resolve_motif, search_jaspar
from playground.data.parsing import LENGTH_POLICIES, SequenceFileError, parse_sequence_file
from playground.interpret import (activation_pwms, has_filters, in_silico_mutagenesis, information_matrix,
                                  jaspar_table, motif_recovery, rank_filters, saliency, to_jaspar, to_meme)
from playground.models import ACTIVATION_LABELS, build_model, count_parameters
from playground.plots.dna import (figure_png, filter_logos_figure, ism_figure, logo_figure, one_hot_figure,
                                  recovery_figure, saliency_figure, sequence_strip_figure)
from playground.train import LEARNING_RATES, OPTIMIZERS
from playground.ui import LiveTraining, PageState, Param, setup_page, show_error, sidebar
from playground.lessons import dna_spec
from playground.ui.runs import model_panel, png_config

setup_page("DNA & CNNs", "🧬")

MOTIF_NAMES = tuple(KNOWN_MOTIFS)
N_CHOICES = (200, 500, 1000, 2000, 4000, 8000)
LENGTH_CHOICES = (20, 30, 40, 50, 60, 80, 100, 150, 200)
BATCH_CHOICES = (16, 32, 64, 128, 256)
MODELS = {"primer": "Genomics-primer CNN (32 × w12, max-pool 4, dense 16)",
          "course": "Course DNA CNN (32 × w3 → linear)",
          "custom": "Custom CNN",
          "mlp": "MLP on the flat one-hot",
          "logreg": "Logistic regression on the flat one-hot"}
TABS = ("📄 Data & one-hot", "📈 Training", "🧩 Filters → logos", "🔬 Explain a sequence", "💾 Save & export")
INTERP_REFRESH_S = 1.0    # while playing, filter PWMs + "motif recovered" are recomputed at most this often
LOGO_REFRESH_S = 1.0      # ... and logos redrawn at most this often, and never more than a third of the time

state = PageState("dna", [
    Param("dataset", "planted", choices=tuple(dna.DATASETS)),
    Param("motif_source", "list", choices=("list", "jaspar", "consensus")),
    Param("motif", "CTCF", choices=MOTIF_NAMES),
    Param("jaspar_id", "MA0139.1"),
    Param("consensus", PRIMER_CONSENSUS),
    Param("motifs", ["CTCF", "GATA1", "SP1 (GC box)"], "list", choices=MOTIF_NAMES, max_len=5),
    Param("motif_a", "GATA1", choices=MOTIF_NAMES),
    Param("motif_b", "AP-1 (FOS::JUN)", choices=MOTIF_NAMES),
    Param("spacing", 4, "int", lo=0, hi=30),
    Param("n", 2000, "int", choices=N_CHOICES),
    Param("length", 50, "int", choices=LENGTH_CHOICES),
    Param("gc", 0.5, "float", lo=0.2, hi=0.8),
    Param("both_strands", False, "bool"),
    Param("from_consensus", False, "bool"),
    Param("motif_noise", 0.0, "float", lo=0.0, hi=0.5),
    Param("label_noise", 0.0, "float", lo=0.0, hi=0.3),
    Param("length_policy", "pad", choices=LENGTH_POLICIES),
    Param("map_u", False, "bool"),
    Param("label_kind", "auto", choices=("auto", "classification", "regression")),
    Param("seq_col", ""),
    Param("label_col", ""),
    Param("gb_name", "human_nontata_promoters", choices=tuple(dna.GENOMIC_BENCHMARKS)),
    Param("gb_n", 2000, "int", choices=N_CHOICES),
    Param("train_pct", 75, "int", lo=50, hi=90),
    Param("model", "primer", choices=tuple(MODELS)),
    Param("conv_layers", 1, "int", lo=1, hi=4),
    *[Param(f"c{i + 1}", 32, "int", lo=1, hi=128) for i in range(4)],
    *[Param(f"k{i + 1}", 12 if i == 0 else 5, "int", lo=3, hi=25) for i in range(4)],
    Param("padding", "valid", choices=("valid", "same")),
    Param("batch_norm", False, "bool"),
    Param("activation", "relu", choices=tuple(ACTIVATION_LABELS)),
    Param("pool", "max", choices=("max", "adaptive", "none")),
    Param("pool_size", 4, "int", lo=2, hi=10),
    Param("pool_output", 1, "int", lo=1, hi=10),
    Param("dropout", 0.0, "float", lo=0.0, hi=0.8),
    Param("dense", 16, "int", lo=0, hi=128),
    Param("mlp_layers", 1, "int", lo=1, hi=3),
    Param("mlp_neurons", 32, "int", lo=1, hi=32),
    Param("optimizer", "adam", choices=tuple(OPTIMIZERS)),
    Param("lr", 0.003, "float", choices=tuple(LEARNING_RATES)),
    Param("batch", 32, "int", choices=BATCH_CHOICES),
    Param("early_stop", 0, "int", lo=0, hi=50),
    Param("tab", TABS[0], choices=TABS),
    Param("seq", 0, "int", lo=0, hi=100000),   # 0 = the first test sequence with a planted motif
    Param("n_logos", 8, "int", choices=(4, 8, 16, 32)),
    Param("logo_kind", "activation", choices=("activation", "weights")),
    Param("explain_class", 0, "int", lo=0, hi=10),
    Param("sal_logo", True, "bool"),
])
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
    st.selectbox(title, MOTIF_NAMES, key=K(label_key),
                 format_func=lambda m: f"{m} · {KNOWN_MOTIFS[m]}")


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
            query = st.text_input("Search JASPAR by ID or name", key="dna._jaspar_query", placeholder="e.g. FOXA2, MA0139")
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
        st.multiselect("Motifs (one class each, 2-5)", MOTIF_NAMES, key=K("motifs"), max_selections=5)
    elif kind == "grammar":
        motif_picker("motif_a", "Motif A (first)")
        motif_picker("motif_b", "Motif B (second)")
        st.slider("Spacing from A's end to B (bp)", 0, 30, key=K("spacing"))
    if kind in ("planted", "multiclass", "grammar"):
        st.select_slider("Sequences", N_CHOICES, key=K("n"))
        st.select_slider("Length (bp)", LENGTH_CHOICES, key=K("length"))
        with st.expander("Motif strength, noise, GC"):
            st.slider("GC content of the background", 0.2, 0.8, step=0.05, key=K("gc"))
            st.toggle("Plant the consensus only (no PWM sampling)", key=K("from_consensus"))
            if kind != "grammar":
                st.toggle("Either strand (reverse complement half the time)", key=K("both_strands"))
                st.slider("Label noise (fraction flipped)", 0.0, 0.3, step=0.05, key=K("label_noise"))
            st.slider("Motif noise (chance a motif base is random)", 0.0, 0.5, step=0.05, key=K("motif_noise"))
    elif kind == "upload":
        st.file_uploader("CSV / TSV / FASTA", type=["csv", "tsv", "txt", "fa", "fasta", "fna", "gz"], key="dna._upload",
                         help="CSV/TSV: a sequence column and a label column. FASTA: the label in the header, "
                              "e.g. '>seq1 label=1'.")
        st.radio("Mixed lengths", LENGTH_POLICIES, key=K("length_policy"), horizontal=True,
                 format_func={"pad": "Pad with N", "truncate": "Cut to shortest", "reject": "Reject"}.get)
        st.toggle("Map U → T (RNA)", key=K("map_u"))
        st.radio("Labels are", ("auto", "classification", "regression"), key=K("label_kind"), horizontal=True,
                 format_func={"auto": "Auto", "classification": "Classes", "regression": "Numbers"}.get)
    elif kind == "genomic":
        st.selectbox("Benchmark", tuple(dna.GENOMIC_BENCHMARKS), key=K("gb_name"),
                     format_func=lambda k: dna.GENOMIC_BENCHMARKS[k])
        st.select_slider("Sequences (random subset)", N_CHOICES, key=K("gb_n"))
    st.slider("Training share (%)", 50, 90, step=5, key=K("train_pct"))

    st.markdown("### 🏗️ Model")
    st.selectbox("Model", tuple(MODELS), key=K("model"), format_func=MODELS.get)
    if state.get("model") == "custom":
        st.slider("Conv layers", 1, 4, key=K("conv_layers"))
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
        st.slider("Dropout", 0.0, 0.8, step=0.1, key=K("dropout"))
        st.number_input("Dense layer (0 = straight to the output)", 0, 128, step=4, key=K("dense"))
    elif state.get("model") == "mlp":
        st.slider("Hidden layers", 1, 3, key=K("mlp_layers"))
        st.slider("Neurons per layer", 1, 32, key=K("mlp_neurons"))

    st.markdown("### 🏃 Training")
    a, b = st.columns(2)
    a.selectbox("Optimizer", tuple(OPTIMIZERS), key=K("optimizer"), format_func=OPTIMIZERS.get)
    b.selectbox("Batch size", BATCH_CHOICES, key=K("batch"))
    st.select_slider("Learning rate", LEARNING_RATES, key=K("lr"), format_func=lambda v: f"{v:g}")
    st.number_input("Early stopping: patience in epochs (0 = off)", 0, 50, step=1, key=K("early_stop"),
                    help="Stop when the test loss has not improved for this many epochs; the best weights are restored.")


def stop_page() -> None:
    """Keep the settings (URL) and stop drawing."""
    state.sync()
    st.stop()


# ---- the data set ------------------------------------------------------------------------------
def current_motif():
    src = state.get("motif_source")
    if src == "list":
        return resolve_motif(state.get("motif"))
    if src == "jaspar":
        return resolve_motif(state.get("jaspar_id"))
    return resolve_motif("consensus:" + state.get("consensus"))


def data_signature() -> tuple:
    v = state.values()
    common = (v["n"], v["length"], v["gc"], v["from_consensus"], v["motif_noise"], seed)
    if kind == "planted":
        src = v["motif_source"]
        which = {"list": v["motif"], "jaspar": v["jaspar_id"], "consensus": v["consensus"]}[src]
        return (kind, src, which, v["both_strands"], v["label_noise"], *common)
    if kind == "multiclass":
        return (kind, tuple(v["motifs"]), v["both_strands"], v["label_noise"], *common)
    if kind == "grammar":
        return (kind, v["motif_a"], v["motif_b"], v["spacing"], *common)
    if kind == "kmer8":
        return (kind,)
    if kind == "upload":
        f = ss.get("dna._upload")
        digest = hashlib.sha1(f.getvalue()).hexdigest() if f is not None else None
        return (kind, digest, v["length_policy"], v["map_u"], v["label_kind"], v["seq_col"], v["label_col"])
    return (kind, v["gb_name"], v["gb_n"], seed)


def build_dataset() -> dna.DNADataset:
    v = state.values()
    common = dict(n=v["n"], length=v["length"], gc=v["gc"], from_consensus=v["from_consensus"],
                  motif_noise=v["motif_noise"], seed=seed)
    if kind == "planted":
        return dna.planted_motif(current_motif(), both_strands=v["both_strands"], label_noise=v["label_noise"],
                                 **common)
    if kind == "multiclass":
        return dna.planted_multiclass(v["motifs"], both_strands=v["both_strands"], label_noise=v["label_noise"],
                                      **common)
    if kind == "grammar":
        return dna.motif_grammar(v["motif_a"], v["motif_b"], v["spacing"], **common)
    if kind == "kmer8":
        return dna.eight_mer_regression(seed=seed)
    if kind == "upload":
        f = ss.get("dna._upload")
        parsed = parse_sequence_file(f.getvalue(), f.name, seq_col=v["seq_col"] or None,
                                     label_col=v["label_col"] or None, length_policy=v["length_policy"],
                                     map_aliases=v["map_u"], label_kind=v["label_kind"], max_length=2000)
        ss["dna._upload_columns"] = parsed.columns
        return dna.from_parsed(parsed, name=f.name)
    return dna.load_genomic_benchmark(v["gb_name"], max_sequences=v["gb_n"], seed=seed)


if kind == "upload" and ss.get("dna._upload") is None:
    st.info("⬆️ Upload a CSV/TSV (a sequence column and a label column) or a FASTA file (labels in the headers, "
            "e.g. `>seq1 label=1`) in the sidebar. Lowercase is fine; N means an unknown base.", icon="📄")
    example = dna.planted_motif("CTCF", n=400, length=50, seed=0).to_frame()[["id", "sequence", "label"]]
    st.download_button("⬇️ Example CSV (400 sequences, planted CTCF)", example.to_csv(index=False),
                       file_name="planted_ctcf.csv", mime="text/csv")
    stop_page()

if kind == "genomic" and not dna.genomic_benchmark_available(state.get("gb_name")):
    name = state.get("gb_name")
    st.info(f"**{dna.GENOMIC_BENCHMARKS[name]}** is not on this machine yet. It comes from the Genomic Benchmarks "
            "collection (real human sequences) and needs the internet once.", icon="🌐")
    if st.button("⬇️ Download it now", key="dna._gb_download"):
        with st.spinner("Downloading …"):
            try:
                dna.download_genomic_benchmark(name)
                st.rerun()
            except ValueError as e:
                ss["dna._gb_error"] = str(e)
    if ss.get("dna._gb_error"):
        show_error(ss["dna._gb_error"], "Pick a planted-motif data set to keep working offline.")
    stop_page()

sig = data_signature()
cached = ss.get("dna._data")
if cached is None or cached[0] != sig:
    try:
        dataset = build_dataset()
    except SequenceFileError as e:
        show_error(f"Could not read the uploaded file: {e.message}", e.hint)
        stop_page()
    except ValueError as e:
        show_error(f"Could not make this data set: {e}", "Change the setting named in the message; everything "
                   "else is kept.")
        stop_page()
    ss["dna._data"] = (sig, dataset)
else:
    dataset = cached[1]

if kind == "upload":
    cols = ss.get("dna._upload_columns") or []
    if cols:
        with st.sidebar:
            a, b = st.columns(2)
            opts = ["", *cols]
            for name, col in (("seq_col", a), ("label_col", b)):
                if state.get(name) not in opts:
                    state.set(name, "")
            a.selectbox("Sequence column", opts, key=K("seq_col"), format_func=lambda c: c or "auto")
            b.selectbox("Label column", opts, key=K("label_col"), format_func=lambda c: c or "auto")


# ---- the model ---------------------------------------------------------------------------------
def model_spec(length: int, n_out: int):
    """The spec for the page's settings: the same function lessons use to rebuild this page's run."""
    return dna_spec(state.values(), length, n_out)


train_frac = state.get("train_pct") / 100
n_out = 1 if dataset.task in ("binary", "regression") else dataset.n_classes
try:
    spec = model_spec(dataset.length, n_out)
except ValueError as e:
    show_error(f"This model cannot be built: {e}.", "Change the model settings in the sidebar (the data is kept).")
    stop_page()
config = TrainConfig(optimizer=state.get("optimizer"), lr=float(state.get("lr")), batch_size=int(state.get("batch")),
                     seed=seed, device=device, early_stopping=int(state.get("early_stop")), track_metrics=True)


def make_trainer() -> Trainer:
    data = dataset.split(train_frac, seed)
    ss["dna._recovery"] = []
    ss.pop("dna._interp", None)
    return Trainer(build_model(spec, seed), data, TrainConfig(**vars(config)))


signature = repr((sig, spec.to_dict(), train_frac, config.optimizer, config.batch_size, seed, device))
model_input = InputSpec("one_hot", "dna", length=dataset.length)
run_settings = {"model": MODELS[state.get("model")], "lr": config.lr, "batch": config.batch_size}
try:
    trainer = live.ensure(signature, make_trainer,
                          run_info=dict(spec=spec, page="dna", dataset=dataset.name, parameters=run_settings,
                                        label_names=list(dataset.class_names) or None, input=model_input))
except (ValueError, RuntimeError) as e:
    show_error(f"Could not set up this run: {e}", "Change the settings back, or press Reset.")
    stop_page()
trainer.set_lr(config.lr)
trainer.config.early_stopping = config.early_stopping

top = st.columns([2.2, 3])
with top[0]:
    live.controls()
with top[1]:
    st.markdown(f"**{dataset.name}** · {dataset.summary()}  \n{spec.describe()} · "
                f"{count_parameters(trainer.model):,} parameters")
for w in dataset.warnings:
    st.warning(w, icon="ℹ️")

HEADLINE = {"binary": ("accuracy", "auroc"), "multiclass": ("accuracy", "f1"), "regression": ("pearson_r", "r2")}


# ---- interpretation (cached per epoch, throttled while playing) ----------------------------------
def interp_x(tr: Trainer):
    x = tr.data.x_test if len(tr.data.x_test) >= 1000 else dataset.one_hot()
    return x[:4000]


def interpretation(tr: Trainer):
    """Filter PWMs + motif recovery for the trainer's current weights: recomputed when the
    weights changed, but while playing at most every INTERP_REFRESH_S seconds."""
    key = (id(tr), tr.steps)
    got = ss.get("dna._interp")
    if got is not None and (got["key"] == key or (got["id"] == id(tr) and live.playing
                                                  and time.perf_counter() - got["t"] < INTERP_REFRESH_S)):
        return got
    pwms = activation_pwms(tr.model, interp_x(tr))
    rec = motif_recovery(pwms, dataset.motifs)
    got = {"key": key, "id": id(tr), "epoch": tr.epoch, "pwms": pwms, "recovery": rec, "t": time.perf_counter(),
           "table": {}}
    hist = ss.setdefault("dna._recovery", [])
    if rec and (not hist or hist[-1]["epoch"] != tr.epoch):
        hist.append({"epoch": tr.epoch, **{r["motif"]: r["score"] for r in rec}})
    ss["dna._interp"] = got
    return got


def filter_logos(got: dict, order: list[int], kind: str) -> tuple[bytes, int]:
    """PNG of the chosen filters' logos and the epoch it shows. logomaker is slow (about
    0.15 s a logo), so while playing the picture is redrawn only after a new epoch, at most
    every LOGO_REFRESH_S seconds and at most a third of the time; the last one is shown meanwhile."""
    cache = ss.get("dna._logos")
    want = (got["key"], kind, tuple(order))
    if cache is not None and cache["want"] == want:
        return cache["png"], cache["epoch"]
    if cache is not None and live.playing and cache["id"] == got["id"] and cache["kind"] == kind and (
            cache["epoch"] == got["epoch"]
            or time.perf_counter() - cache["done"] < max(LOGO_REFRESH_S, min(2.0 * cache["cost"], 3.0))):
        return cache["png"], cache["epoch"]
    t0 = time.perf_counter()
    with st.spinner(f"Drawing {len(order)} logos …"):
        png = figure_png(filter_logos_figure(got["pwms"], order, kind))
    done = time.perf_counter()
    ss["dna._logos"] = {"want": want, "png": png, "epoch": got["epoch"], "id": got["id"], "kind": kind,
                        "done": done, "cost": done - t0}
    return png, got["epoch"]


def status_row(tr: Trainer) -> None:
    rec = tr.latest
    names = HEADLINE[tr.task]
    cols = st.columns(6)
    cols[0].metric("Epoch", f"{tr.epoch:,}")
    cols[1].metric("Train loss", f"{rec['train_loss']:.4f}")
    cols[2].metric("Test loss", f"{rec['test_loss']:.4f}")
    for c, nm in zip(cols[3:5], names):
        val = rec.get(f"test_{nm}")
        c.metric(f"Test {M.label(nm, task=tr.task)}", "–" if val is None or not np.isfinite(val) else f"{val:.3f}")
    if has_filters(tr.model) and dataset.motifs:
        got = interpretation(tr)
        best = got["recovery"][0]
        cols[5].metric("Motif recovered", f"{best['score']:.2f}",
                       help="Column-wise Pearson correlation between the best filter's PWM and the planted motif "
                            "(1 = identical), over all offsets and both strands.")
    if tr.diverged:
        st.error(f"⚠️ Training {tr.diverged}", icon="💥")
    if tr.stopped:
        st.success(f"⏹ {tr.stopped}")


# ---- tabs ----------------------------------------------------------------------------------------
def test_index(tr: Trainer) -> tuple[int, int]:
    """(position in the test set, index in the data set) of the chosen sequence."""
    test_idx = tr.data.meta["test_idx"]
    i = min(max(int(state.get("seq")), 1), len(test_idx)) - 1
    return i, int(test_idx[i])


def label_text(y) -> str:
    if dataset.task == "regression":
        return f"{float(y):.3f}"
    return dataset.class_names[int(y)]


def next_with_motif(tr: Trainer, after: int = 0) -> int:
    """1-based position of the next test sequence (after ``after``) that carries a planted site."""
    test_idx = tr.data.meta["test_idx"]
    if dataset.sites:
        for k in list(range(after, len(test_idx))) + list(range(0, after)):
            if dataset.sites[int(test_idx[k])]:
                return k + 1
    return 1


def sequence_picker(tr: Trainer, where: str) -> tuple[int, int]:
    n_test = len(tr.data.meta["test_idx"])
    if not 1 <= state.get("seq") <= n_test:
        state.set("seq", next_with_motif(tr))
    c1, c2, c3 = st.columns([1, 1, 2.2], vertical_alignment="bottom")
    c1.number_input(f"Test sequence (1-{n_test})", 1, n_test, step=1, key=K("seq"))
    if dataset.sites:
        c2.button("Next with a motif ⏭", key=f"dna.next_motif.{where}",
                  on_click=lambda: state.set("seq", next_with_motif(tr, int(state.get("seq")))))
    i, j = test_index(tr)
    sites = dataset.sites[j] if dataset.sites else []
    where_txt = ", ".join(f"**{s.motif}** at {s.start + 1}-{s.end} ({s.strand} strand)" for s in sites)
    c3.markdown(f"Label: **{label_text(dataset.y[j])}**" + (f" · planted {where_txt}" if sites else
                                                             (" · no planted motif" if dataset.motifs else "")))
    return i, j


@st.cache_data(max_entries=64, show_spinner=False)
def motif_logo_png(label: str, consensus: str, pwm: list) -> bytes:
    fig = logo_figure(information_matrix(np.array(pwm)), f"Planted motif: {label} · consensus {consensus}",
                      ylim=(0, 2), width=7, height=1.8)
    return figure_png(fig)


def tab_data(tr: Trainer) -> None:
    i, j = sequence_picker(tr, "data")
    seq = dataset.seqs[j]
    sites = dataset.sites[j] if dataset.sites else []
    left, right = st.columns([1, 1.6])
    with left:
        st.plotly_chart(one_hot_figure(seq, title=f"One-hot matrix of test sequence {i + 1}", sites=sites),
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
            st.image(motif_logo_png(m.label, m.consensus, m.pwm.round(6).tolist()))
        csv = dataset.to_frame().to_csv(index=False)
        st.download_button("⬇️ This data set as CSV", csv, file_name="dna_dataset.csv", mime="text/csv",
                           key="dna.dl_csv", help="Upload it again with 'Upload CSV / FASTA'.")


def tab_training(tr: Trainer) -> None:
    names = HEADLINE[tr.task]
    c1, c2 = st.columns(2)
    c1.plotly_chart(plots.loss_figure(tr.history), key="dna.loss", config=png_config("dna_loss"))
    c2.plotly_chart(plots.metric_figure(tr.history, [f"test_{n}" for n in names], title="Test metrics"),
                    key="dna.metrics", config=png_config("dna_metrics"))
    y = tr.data.y_test.cpu().numpy()
    out = tr.outputs(tr.data.x_test).float().cpu().numpy()
    c3, c4 = st.columns(2)
    if tr.task == "regression":
        pred = out.reshape(-1)
        c3.plotly_chart(plots.parity_figure(y, pred, M.r2(y, pred), title="Predicted vs true (test)"),
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
    png, shown_epoch = filter_logos(got, order, state.get("logo_kind"))
    hist = ss.get("dna._recovery") or []
    if rec:
        cols = st.columns([1] * len(rec[:3]) + [2.2])
        for col, r in zip(cols, rec[:3]):
            with col:
                if r["filter"] is None:
                    st.metric(f"Motif recovered: {r['motif']}", "–")
                    continue
                st.metric(f"Motif recovered: {r['motif']}", f"{r['score']:.2f}",
                          help="Best column-wise Pearson between a filter's PWM and the planted motif (1 = identical).")
                st.caption(f"best: filter {r['filter'] + 1}, {r['strand']} strand, {r['overlap']} columns aligned")
        if tr.model.filter_weights().shape[2] < 6:
            cols[0].caption("⚠️ Filters narrower than 6 bases cannot hold a whole motif; their match scores are "
                            "weak evidence.")
        if len(hist) > 1:
            with cols[-1]:
                st.plotly_chart(recovery_figure(hist, "Motif recovered per epoch", height=220), key="dna.recovery",
                                config=png_config("dna_recovery"))
    st.image(png, width="stretch", caption=f"First-layer filters after epoch {shown_epoch}"
             + (" (redrawn every second or two while training: logos are slow to draw)" if live.playing else ""))
    if live.playing:
        st.caption("JASPAR matches and downloads appear when training is paused.")
        return
    st.markdown("##### Best JASPAR matches (CORE vertebrates, column-wise Pearson, both strands)")
    table_key = tuple(order)
    if table_key not in got["table"]:
        with st.spinner("Matching the filters against JASPAR …"):
            got["table"][table_key] = jaspar_table(pwms, top=3, filters=order)
    st.dataframe(got["table"][table_key], hide_index=True, width="stretch")
    d1, d2, _ = st.columns([1, 1, 2])
    d1.download_button("⬇️ Filters as MEME", to_meme(pwms, min_sites=1), file_name="dna_filters.meme",
                       mime="text/plain", key="dna.dl_meme", help="MEME minimal format, e.g. for Tomtom.")
    d2.download_button("⬇️ Filters as JASPAR", to_jaspar(pwms, min_sites=1), file_name="dna_filters.jaspar",
                       mime="text/plain", key="dna.dl_jaspar")


def tab_explain(tr: Trainer) -> None:
    i, j = sequence_picker(tr, "explain")
    seq = dataset.seqs[j]
    sites = dataset.sites[j] if dataset.sites else []
    x = tr.data.x_test[i]
    target = None
    if tr.task == "multiclass":
        if state.get("explain_class") >= dataset.n_classes:
            state.set("explain_class", 0)
        st.selectbox("Explain the score of class", list(range(dataset.n_classes)), key=K("explain_class"),
                     format_func=lambda k: dataset.class_names[k])
        target = int(state.get("explain_class"))
    pred = tr.predict(x[None])[0]
    if tr.task == "binary":
        ptxt = f"P({dataset.class_names[1]}) = **{float(pred):.3f}**"
    elif tr.task == "multiclass":
        ptxt = "predicted **" + dataset.class_names[int(np.argmax(pred))] + f"** ({float(np.max(pred)):.2f})"
    else:
        ptxt = f"predicted **{float(pred):.3f}**"
    st.markdown(f"Model says: {ptxt} · true label **{label_text(dataset.y[j])}**")
    sal = saliency(tr.model, x, target)
    ism = in_silico_mutagenesis(tr.model, x, target)
    st.plotly_chart(saliency_figure(sal, seq, sites), key="dna.saliency", config=png_config("dna_saliency"))
    st.plotly_chart(ism_figure(ism, seq, sites), key="dna.ism", config=png_config("dna_ism"))
    st.toggle("Saliency as a logo (slower to draw)", key=K("sal_logo"))
    lkey = ("saliency_logo", id(tr), tr.steps, i, target)
    cache = ss.setdefault("dna._sal_logo", {})
    if not state.get("sal_logo"):
        cache.clear()
    elif lkey not in cache and not live.playing:
        cache.clear()
        cache[lkey] = figure_png(logo_figure(sal, "Saliency as a logo: letter height = gradient × input", "grad × input",
                                             sites=sites, width=13, height=2.6))
    if lkey in cache:
        st.image(cache[lkey])
    st.caption("**Saliency**: the gradient of the output with respect to each input number, times the input "
               "(only the base that is there counts). **In-silico mutagenesis**: change each base to each other base "
               "and measure how much the output (logit) moves. The planted motif's true position is boxed.")


def tab_save(tr: Trainer) -> None:
    extras = []
    if has_filters(tr.model) and tr.steps > 0:
        pwms = interpretation(tr)["pwms"]
        extras = [("Filters (MEME)", to_meme(pwms), "dna_filters.meme", "text/plain"),
                  ("Filters (JASPAR)", to_jaspar(pwms), "dna_filters.jaspar", "text/plain")]
    model_panel(tr, spec, page="dna", dataset=dataset.name, label_names=list(dataset.class_names) or None,
                input=model_input, settings=run_settings, extra_downloads=extras)


def draw(tr: Trainer) -> None:
    status_row(tr)
    tabs = st.tabs(TABS, key=K("tab"), on_change="rerun")
    for t, fn in zip(tabs, (tab_data, tab_training, tab_filters, tab_explain, tab_save)):
        if t.open:
            with t:
                fn(tr)


live.run(draw)
state.sync()
