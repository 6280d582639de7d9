"""Protein language model (ESM-2): masked amino acids, embeddings, fine-tuning vs training from
scratch, attention and contacts."""
import dataclasses

import numpy as np
import pandas as pd
import streamlit as st

from playground import TrainConfig, Trainer
from playground import esm
from playground.compare import SideBySide, size_sweep, subsample_train
from playground import metrics as M
from playground.bundle import InputSpec
from playground.codegen import script_for_trainer
from playground.data import protein
from playground.data.parsing import SequenceFileError, parse_sequence_file
from playground.encoding import PROTEIN
from playground.models import build_model
from playground.plots import esm as P
from playground.train import LEARNING_RATES
from playground.ui import LiveTraining, PageState, Param, setup_page, show_error, sidebar
from playground.ui.runs import model_panel, png_config, track

setup_page("Protein language model (ESM-2)", "🧪")

UBIQUITIN = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"
TABS = ("🎭 Masked amino acids", "🧭 Embeddings", "🏋️ Fine-tuning vs from scratch", "🔍 Attention & contacts")
DATA = {"solubility": "Solubility (generated, one label per protein)",
        "ss": "Secondary structure H/E/C (generated, one label per residue)",
        "upload": "Upload a FASTA / CSV file"}
SIZES = (5, 10, 25, 50, 100)
LRS = tuple(lr for lr in LEARNING_RATES if 1e-4 <= lr <= 0.1)
N_BUILTIN = {"solubility": 300, "ss": 160}

state = PageState("esm", [
    Param("model", esm.DEFAULT_MODEL, choices=tuple(esm.CATALOGUE)),
    Param("bf16", False, "bool"),
    Param("cpu_bf16", True, "bool"),
    Param("tab", TABS[0], choices=TABS),
    Param("seq", UBIQUITIN),
    Param("mask", "5, 27, 48"),
    Param("topk", 5, "int", lo=1, hi=10),
    Param("data", "solubility", choices=tuple(DATA)),
    Param("layer", -1, "int", lo=-1, hi=64),
    Param("pooling", "mean", choices=("mean", "per_residue")),
    Param("long", "truncate", choices=tuple(esm.LONG_POLICIES)),
    Param("proj", "pca", choices=("pca", "tsne")),
    Param("split", "random", choices=tuple(protein.SPLITS)),
    Param("head", "logistic", choices=("logistic", "mlp")),
    Param("hidden", 64, "int", choices=(16, 32, 64, 128)),
    Param("unfreeze", 0, "int", lo=0, hi=3),
    Param("lr", 0.003, "float", choices=LRS),
    Param("size", 100, "int", choices=SIZES),
    Param("sweep_epochs", 15, "int", lo=1, hi=200),
    Param("att_layer", -1, "int", lo=-1, hi=64),
    Param("att_head", -1, "int", lo=-1, hi=63),
])
state.load()
seed, device = sidebar(state)
K = state.key
ss = st.session_state

st.title("🧪 Protein language model (ESM-2)")
st.caption("ESM-2 is a Transformer pre-trained on millions of natural proteins by **predicting masked amino acids**. "
           "What it learned shows in its predictions, in its **embeddings** (a small head on them learns from a few "
           "hundred labelled proteins) and in its **attention maps** (they trace residue contacts).")


# =====================================================================================================
# 1 · Loading
# =====================================================================================================
def _set_mode(mode: str, **extra):
    def cb():
        ss["esm._mode"], ss["esm._key"], ss["esm._failed"] = mode, None, None
        ss.update(extra)
        if mode == "file":
            ss["esm._path"] = ss.get("esm.path", "")
    return cb


def _progress_bar(text: str):
    bar = st.progress(0.0, text=text)

    def cb(done, total, message):
        bar.progress(min(1.0, done / total) if total else 0.0, text=message)
    return bar, cb


def _load(mode: str, source: str, **kw):
    """Load a model for this session; a failure is remembered (per source) and shown as a
    friendly message, never a traceback, and not retried on every rerun."""
    failed = ss.get("esm._failed")
    if failed and failed[0] == (mode, source):
        return None
    bf16 = bool(state.get("bf16")) and device == "cuda"
    name = state.get("model")
    try:
        if mode == "pretrained":
            bar, cb = _progress_bar(f"Loading {name} …")
            with st.spinner(f"Loading {name} ({esm.CATALOGUE[name].file_mb:.0f} MB) …"):
                try:
                    h = esm.load_pretrained(name, device, bf16, allow_download=kw.get("download", False), progress=cb)
                finally:
                    bar.empty()
        elif mode == "untrained":
            h = esm.random_model(name, seed, device, bf16)
        elif mode == "file":
            with st.spinner("Reading the checkpoint …"):
                h = esm.load_checkpoint_file(kw["path"], device, bf16)
        else:
            with st.spinner("Checking and reading the uploaded checkpoint …"):
                h = esm.load_checkpoint_bytes(kw["data"], kw["filename"], device, bf16, kw.get("regression"))
    except esm.ESMError as e:
        ss["esm._failed"] = ((mode, source), e.message, e.hint, isinstance(e, esm.WeightsUnavailable))
        return None
    ss["esm._key"], ss["esm._failed"] = h.key, None
    return h


st.subheader("1 · Load ESM-2")
c_model, c_opts = st.columns([3, 1])
with c_model:
    def _model_label(n):
        i = esm.CATALOGUE[n]
        cached = "✓ downloaded" if esm.is_cached(n) else f"{i.file_mb:,.0f} MB download"
        return f"{i.label} · {cached} · needs ~{i.load_mb():,.0f} MB memory · {i.note}"
    st.selectbox("Model", tuple(esm.CATALOGUE), key=K("model"), format_func=_model_label,
                 on_change=_set_mode("pretrained"),
                 help="fair-esm's pretrained ESM-2 models. Larger models know more but are slower; only t6 and t12 "
                      "fit a small (2.7 GB) hosted app.")
with c_opts:
    st.checkbox("bfloat16 (GPU)", key=K("bf16"), disabled=device != "cuda",
                help="Half-size weights and faster matrix products on a CUDA GPU.")
    native_bf16 = esm.cpu_has_native_bf16()
    st.checkbox("bf16 matmuls (CPU)", key=K("cpu_bf16"),
                disabled=device != "cpu" or not native_bf16,
                help=("This CPU multiplies bfloat16 matrices in hardware: embedding runs about 1.5× faster; the "
                      "weights, layer norms, attention softmax and sums stay float32, and mean embeddings stay "
                      "within 1e-4 (cosine) of pure float32. Untick for exact float32."
                      if native_bf16 else "This CPU has no native bfloat16 units, so embeddings use float32."))

name = state.get("model")
info = esm.CATALOGUE[name]
mode = ss.get("esm._mode", "pretrained")
handle = esm.get_loaded(ss["esm._key"]) if ss.get("esm._key") else None
want_dtype = "bfloat16" if (state.get("bf16") and device == "cuda") else "float32"
if handle is not None and (handle.device != device or not handle.key.endswith(want_dtype)):
    handle = None                                           # device or precision changed: load again
if handle is None:
    if mode == "pretrained" and (esm.is_cached(name) or ss.pop("esm._download", False)):
        handle = _load("pretrained", f"{name}|{device}|{want_dtype}", download=not esm.is_cached(name))
    elif mode == "untrained":
        handle = _load("untrained", f"{name}|{seed}")
    elif mode == "file":
        handle = _load("file", ss.get("esm._path", ""), path=ss.get("esm._path", ""))
    elif mode == "upload":
        up, reg = ss.get("esm.ckpt_upload"), ss.get("esm.reg_upload")
        if up is not None:
            handle = _load("upload", f"{up.file_id}|{reg.file_id if reg else ''}", data=up.getvalue(),
                           filename=up.name, regression=reg.getvalue() if reg is not None else None)

failed = ss.get("esm._failed")
if failed and not failed[3]:
    show_error(failed[1], failed[2])
if handle is None:
    offline = (failed[1] if failed and failed[3] and failed[0][0] == "pretrained" else None) or \
        (None if esm.download_allowed() else f"The weights of {name} are not in the local cache "
                                               f"(`{esm.hub_dir()}`) and downloads are switched off here.")
    if offline:
        st.warning(f"📴 **No pretrained ESM-2 weights available.** {offline}\n\n"
                   f"You can continue with a **randomly initialised model** of the same architecture "
                   f"({info.layers} layers × {info.dim}): every part of the page works, but the model has learned "
                   f"nothing, and every figure is labelled **untrained weights**.")
    elif mode == "pretrained":
        st.info(f"**{name}** is not downloaded yet. Downloading fetches **{info.file_mb:,.0f} MB** (plus the small "
                f"contact-regression file) from `{esm.HUB_HOST}` into `{esm.hub_dir()}`, once; later runs load it "
                f"from there without the network.")
    b1, b2 = st.columns(2)
    if not offline:
        b1.button(f"⬇️ Download and load {name} ({info.file_mb:,.0f} MB)", type="primary", key="esm.download",
                  on_click=_set_mode("pretrained", **{"esm._download": True}))
    b2.button("🎲 Continue with a randomly initialised model (untrained weights)", key="esm.untrained",
              type="primary" if offline else "secondary", on_click=_set_mode("untrained"))

with st.expander("Other sources: a checkpoint file on this machine, an upload, or untrained weights",
                 expanded=handle is None and mode in ("file", "upload")):
    st.markdown("Uploaded files are **not trusted**: they are read with `torch.load(weights_only=True)` (tensors and "
                "plain containers only, plus `argparse.Namespace`, which ESM-2 checkpoints use for their "
                "configuration) and accepted only if they have the ESM-2 checkpoint layout "
                "(`{'model': state_dict, 'cfg': {'model': …}}`).")
    s1, s2, s3 = st.columns(3)
    with s1:
        st.text_input("Path of an ESM-2 .pt file", key="esm.path", placeholder="/data/esm2_t12_35M_UR50D.pt",
                      help="A path on the machine running the app. The '-contact-regression.pt' file next to it "
                           "is used when present (for contact maps).")
        st.button("Load file", key="esm.load_path", on_click=_set_mode("file"))
    with s2:
        st.file_uploader("Upload an ESM-2 checkpoint (.pt)", type=["pt"], key="esm.ckpt_upload",
                         on_change=_set_mode("upload"))
        st.file_uploader("optional: its contact-regression file", type=["pt"], key="esm.reg_upload",
                         on_change=_set_mode("upload"))
    with s3:
        st.caption(f"A random model with the architecture of {name}, initialised from the seed ({seed}).")
        st.button("Use untrained weights", key="esm.untrained2", on_click=_set_mode("untrained"))

if handle is not None:
    if handle.untrained:
        st.warning(f"🎲 **Untrained weights** — {handle.describe()}. The model has learned nothing: compare what "
                   f"you see here with a pretrained model. Every figure is labelled *untrained weights*.")
    else:
        st.success(f"✅ {handle.describe()}")
        for note in handle.warnings:
            st.caption("ℹ️ " + note)
else:
    st.info("Load a model above to use the rest of the page.")
    state.sync()
    st.stop()

H = handle
UNTR = H.untrained


def _error(e: Exception):
    if isinstance(e, esm.ESMError):
        show_error(e.message, e.hint)
    elif isinstance(e, SequenceFileError):
        show_error(e.message, e.hint)
    else:
        show_error(str(e))


# =====================================================================================================
# data shared by the Embeddings and Fine-tuning tabs
# =====================================================================================================
def current_data():
    """(ProteinSet or None, ids, seqs, labels or None, label_name, continuous, per_residue_labels or None)."""
    src = state.get("data")
    if src == "upload":
        f = ss.get("esm.seq_upload")
        if f is not None:
            ss["esm._seqfile"] = (f.name, f.getvalue())
        if not ss.get("esm._seqfile"):
            return None
        fname, raw = ss["esm._seqfile"]
        parsed = parse_sequence_file(raw, fname, alphabet=PROTEIN, label_required=False, map_aliases=True,
                                     length_policy="pad", max_length=None, duplicates="drop")
        for w in parsed.warnings:
            if not w.startswith("Lengths vary"):
                st.caption("ℹ️ " + w)
        ps = None
        labels = None
        if parsed.labels is not None:
            task = parsed.task
            y = parsed.labels.astype(np.float32) if task in ("binary", "regression") else parsed.labels
            ps = protein.ProteinSet(parsed.seqs, y, task, list(parsed.class_names), ids=list(parsed.ids),
                                    description=f"Uploaded '{fname}': {parsed.summary()}.")
            labels = ([parsed.class_names[int(i)] if i >= 0 else "?" for i in parsed.labels]
                      if task != "regression" else parsed.labels)
        return dict(ps=ps, ids=list(parsed.ids), seqs=list(parsed.seqs), labels=labels, label_name="label",
                    continuous=parsed.label_kind == "regression", residue_labels=None)
    if src == "solubility":
        ps = protein.solubility_set(N_BUILTIN["solubility"], 40, 100, seed=seed)
        labels = [ps.class_names[int(v)] for v in ps.y]
        return dict(ps=ps, ids=[f"sol{i + 1}" for i in range(len(ps))], seqs=ps.seqs, labels=labels,
                    label_name="", continuous=False, residue_labels=None)
    ps = protein.secondary_structure_set(N_BUILTIN["ss"], 40, 80, seed=seed)
    return dict(ps=ps, ids=[f"ss{i + 1}" for i in range(len(ps))], seqs=ps.seqs, labels=None, label_name="",
                continuous=False, residue_labels=ps.y)


def data_picker(where: str):
    st.radio("Proteins", tuple(DATA), key=K("data"), format_func=DATA.get, horizontal=True)
    if state.get("data") == "upload":
        st.file_uploader("FASTA or CSV/TSV with a sequence column (labels optional: a 'label' column or "
                         "`label=` in the FASTA header)", type=["fasta", "fa", "faa", "fas", "csv", "tsv", "txt"],
                         key="esm.seq_upload")
    try:
        d = current_data()
    except (SequenceFileError, esm.ESMError, ValueError) as e:
        _error(e)
        return None
    if d is None:
        st.info("Upload a file of proteins (FASTA or CSV) to embed them.")
        return None
    if d["ps"] is not None and d["ps"].description:
        with st.expander("About these proteins"):
            st.markdown(d["ps"].description)
    return d


def layer_options():
    return tuple(range(-1, H.layers + 1))


def layer_label(v):
    if v == -1:
        return f"last ({H.layers})"
    return "0 (token embeddings)" if v == 0 else str(v)


if state.get("layer") not in layer_options():
    state.set("layer", -1)


# =====================================================================================================
# 2 · Masked amino acids
# =====================================================================================================
def tab_mlm():
    st.markdown("ESM-2 was trained to **fill in hidden amino acids**. Mask some positions (they become "
                "`<mask>` tokens) and read what the model predicts there from the rest of the protein.")
    st.text_area("Protein sequence (one-letter amino-acid codes)", key=K("seq"), height=90)
    c1, c2 = st.columns([3, 1])
    c1.text_input("Positions to mask (1-based; e.g. 5, 27, 40-42)", key=K("mask"))
    c2.slider("Top-k", 1, 10, key=K("topk"))
    try:
        pred = esm.mask_predictions(H, state.get("seq"), state.get("mask"), state.get("topk"))
    except esm.ESMError as e:
        _error(e)
        return
    for w in pred.warnings:
        st.warning("✂️ " + w)
    if pred.masked:
        st.plotly_chart(P.topk_figure(pred.top, pred.seq, UNTR, pred.true_prob), key="esm.fig.topk",
                        config=png_config("esm_topk"))
        rows = [{"position": p, "true residue": pred.seq[p - 1], "P(true residue)": f"{pred.true_prob[p]:.3g}",
                 "rank of the true residue": int((pred.probs[p - 1, :20] > pred.true_prob[p]).sum() + 1),
                 f"top {len(pred.top[p])}": "  ".join(f"{a} {v:.2f}" for a, v in pred.top[p])}
                for p in pred.masked]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    else:
        st.info("No position is masked: the heatmap shows what the model predicts while it can see every residue.")
    st.plotly_chart(P.probability_heatmap(pred.probs, pred.seq, pred.masked, UNTR,
                                          "P(amino acid) at every position, one pass with the masks above"),
                    key="esm.fig.heat", config=png_config("esm_heat"))
    st.caption("At unmasked positions a trained model sees the residue and mostly copies it; the masked columns are "
               "the real predictions. **Pseudo-perplexity** masks every position in turn and asks how surprised "
               "the model is by the true residue: 1 = always certain and right, 20 = a uniform guess.")
    ppl_key = (H.key, pred.seq)
    if st.button(f"Compute the pseudo-perplexity ({len(pred.seq)} masked copies of the sequence)", key="esm.ppl_btn"):
        bar, cb = _progress_bar("Masking each position in turn …")
        ss["esm._ppl"] = (ppl_key, esm.pseudo_perplexity(H, pred.seq, progress=cb))
        bar.empty()
    got = ss.get("esm._ppl")
    if got and got[0] == ppl_key:
        ppl = got[1]
        m1, m2 = st.columns(2)
        m1.metric("Pseudo-perplexity" + (" (untrained weights)" if UNTR else ""), f"{ppl.ppl:,.2f}")
        m2.metric("Mean P(true residue)", f"{np.exp(ppl.log_probs).mean():.3f}")
        st.plotly_chart(P.per_position_figure(ppl.log_probs, ppl.seq, UNTR, ppl.ppl), key="esm.fig.pll",
                        config=png_config("esm_pll"))
        st.plotly_chart(P.probability_heatmap(ppl.probs, ppl.seq, [], UNTR,
                                              "P(amino acid) with each position masked in turn"), key="esm.fig.heat2",
                        config=png_config("esm_heat2"))


# =====================================================================================================
# 3 · Embeddings
# =====================================================================================================
def tab_embeddings():
    st.markdown("An **embedding** is the list of numbers a layer computes for each residue. Averaging them over the "
                "residues (leaving out the start/end tokens and the padding) gives one vector per protein: "
                f"{H.dim} numbers that a small model can learn from.")
    d = data_picker("emb")
    if d is None:
        return
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Layer", layer_options(), key=K("layer"), format_func=layer_label,
                 help="0 = the token embeddings (no context); the last layer is what the masked-LM head reads.")
    c2.radio("Pooling", ("mean", "per_residue"), key=K("pooling"), horizontal=True,
             format_func={"mean": "mean per protein", "per_residue": "per residue"}.get)
    c3.radio("Longer than 1022 residues", tuple(esm.LONG_POLICIES), key=K("long"), horizontal=True,
             format_func=esm.LONG_POLICIES.get)
    pooling, layer = state.get("pooling"), state.get("layer")
    precision = esm.resolve_precision(H, "auto" if state.get("cpu_bf16") else "float32")
    sig = (H.key, tuple(d["ids"]), tuple(d["seqs"]), layer, pooling, state.get("long"), precision)
    got = ss.get("esm._emb")
    fresh = got is not None and got["sig"] == sig
    if st.button(f"🧭 Embed {len(d['seqs'])} proteins", type="primary", key="esm.embed_btn", disabled=fresh):
        bar, cb = _progress_bar("Embedding …")
        try:
            res = esm.embed(H, d["seqs"], layer, pooling, d["ids"], state.get("long"), progress=cb,
                            precision=precision)
        except esm.ESMError as e:
            bar.empty()
            _error(e)
            return
        bar.empty()
        ss["esm._emb"] = got = {"sig": sig, "res": res, "data": d}
        fresh = True
    if not fresh:
        st.info("Press **Embed** to compute the embeddings (a progress bar shows how far it is; results are cached "
                "per model, layer and sequence, so embedding again is instant).")
        return
    res, d = got["res"], got["data"]
    for w in res.warnings[:5]:
        st.warning("✂️ " + w)
    if len(res.warnings) > 5:
        st.warning(f"… and {len(res.warnings) - 5} more long sequences.")
    m = st.columns(4)
    m[0].metric("Proteins", len(res.ids))
    m[1].metric("Numbers per " + ("protein" if pooling == "mean" else "residue"), res.dim)
    m[2].metric("Residues per second", f"{res.residues / max(res.seconds, 1e-6):,.0f}",
                help="float32" if res.precision == "float32" else "bf16 matrix products, float32 sums")
    m[3].metric("From the cache", res.from_cache)
    csv = esm.embeddings_csv(res, d["labels"] if pooling == "mean" else None)
    npy, npy_name = esm.embeddings_npy(res)
    b1, b2 = st.columns(2)
    b1.download_button("⬇️ Embeddings as CSV", csv, f"esm_layer{res.layer}_{pooling}.csv", "text/csv", key="esm.dl_csv")
    b2.download_button(f"⬇️ Embeddings as {npy_name.split('.')[-1].upper()}", npy, npy_name,
                       "application/octet-stream", key="esm.dl_npy")
    st.radio("2-D projection", ("pca", "tsne"), key=K("proj"), horizontal=True,
             format_func={"pca": "PCA", "tsne": "t-SNE (scikit-learn)"}.get)
    if pooling == "mean":
        X, labels, ids = res.vectors, d["labels"], res.ids
        label_name, cont = d["label_name"], d["continuous"]
    else:                                   # one point per residue, coloured by its label or its amino acid
        rng = np.random.default_rng(seed)
        pairs = [(i, j) for i, a in enumerate(res.per_residue) for j in range(len(a))]
        pick = rng.choice(len(pairs), size=min(2000, len(pairs)), replace=False)
        sel = [pairs[k] for k in sorted(pick)]
        X = np.stack([res.per_residue[i][j] for i, j in sel])
        ids = [f"{res.ids[i]} residue {j + 1} ({res.seqs[i][j]})" for i, j in sel]
        if d["residue_labels"] is not None:
            labels, label_name = [d["residue_labels"][i][j] for i, j in sel], "structure"
        else:
            labels, label_name = [res.seqs[i][j] for i, j in sel], "amino acid"
        cont = False
    try:
        xy, caption = esm.project_2d(X, state.get("proj"), seed)
    except esm.ESMError as e:
        _error(e)
        return
    st.plotly_chart(P.projection_figure(xy, labels, ids, f"Layer {res.layer} embeddings — {caption}", UNTR,
                                        label_name, cont), key="esm.fig.proj", config=png_config("esm_proj"))
    st.caption("Each point is a protein" + (" (a residue here)" if pooling != "mean" else "") +
               "; hover to see which. Points close together have similar embeddings. Colours are the labels — the "
               "model never saw them.")


# =====================================================================================================
# 4 · Fine-tuning vs from scratch
# =====================================================================================================
live = LiveTraining("esm")


def tab_finetune():
    st.markdown("Train a small **head on ESM-2 embeddings** and, on the same split, a **CNN from scratch** on the "
                "amino acids (the course's protein CNN: a learned amino-acid embedding — a linear map of the one-hot "
                "letters — two Conv1d layers, masked mean). Make the training set smaller and watch which one "
                "suffers.")
    d = data_picker("ft")
    if d is None:
        return
    if d["ps"] is None:
        show_error("The uploaded proteins have no labels, so there is nothing to train on.",
                   "Add a 'label' column (CSV) or 'label=' in the FASTA headers.")
        return
    ps = d["ps"]
    c = st.columns(5)
    c[0].radio("Split", tuple(protein.SPLITS), key=K("split"), format_func=protein.SPLITS.get)
    c[1].selectbox("Head", ("logistic", "mlp"), key=K("head"),
                   format_func={"logistic": "Logistic regression", "mlp": "MLP (1 hidden layer)"}.get)
    c[2].selectbox("Hidden units", (16, 32, 64, 128), key=K("hidden"), disabled=state.get("head") != "mlp")
    max_unfreeze = min(3, H.layers)
    if state.get("unfreeze") > max_unfreeze:
        state.set("unfreeze", max_unfreeze)
    c[3].slider("Fine-tune the last N layers", 0, max_unfreeze, key=K("unfreeze"),
                help="0 = frozen embeddings (only the head learns). N > 0 trains a copy of the last N ESM-2 layers "
                     "too; the shared model is never changed.")
    c[4].select_slider("Training set used (%)", SIZES, key=K("size"))
    layer = state.get("layer") if not state.get("unfreeze") else -1
    try:
        base = protein.to_split(ps, state.get("split"), 0.8, seed)
    except ValueError as e:
        _error(e)
        return
    prep_sig = (H.key, tuple(ps.seqs), state.get("split"), seed, layer, state.get("unfreeze"))
    prep = ss.get("esm._ft")
    ready = prep is not None and prep["sig"] == prep_sig
    what = (f"the frozen layers 1–{H.layers - state.get('unfreeze')}" if state.get("unfreeze")
            else f"layer-{layer_label(layer)} embeddings")
    if not ready:
        note = st.empty()
        note.info(f"First compute {what} of the {len(ps)} proteins (once; cached).")
        if st.button("🧭 Compute the ESM-2 inputs", type="primary", key="esm.prep_btn"):
            note.empty()
            bar, cb = _progress_bar("Embedding …")
            try:
                esm_data = esm.head_split(H, ps.seqs, base, layer, state.get("unfreeze"), cb,
                                          ids=d["ids"])
            except (esm.ESMError, ValueError) as e:
                bar.empty()
                _error(e)
                return
            bar.empty()
            ss["esm._ft"] = prep = {"sig": prep_sig, "esm": esm_data, "cnn": base}
            ready = True
    if not ready:
        return
    esm_full, cnn_full = prep["esm"], prep["cnn"]
    n_train = len(cnn_full.y_train)
    n_use = max(4, int(round(n_train * state.get("size") / 100)))
    st.caption(f"Split: {len(cnn_full.y_train)} training / "
               f"{len(cnn_full.y_test)} test proteins ({protein.SPLITS[state.get('split')].lower()}); training on "
               f"**{min(n_use, n_train)}** of them." +
               (f" Test proteins with a near-duplicate in training: {100 * cnn_full.meta['leakage']:.0f}%."
                if cnn_full.meta.get("leakage") is not None else ""))
    st.select_slider("Learning rate (both models)", LRS, key=K("lr"), format_func=lambda v: f"{v:g}")
    sig = f"{prep_sig}|{state.get('head')}|{state.get('hidden')}|{state.get('size')}"
    head_spec = esm.make_head_spec(H, esm_full, state.get("head"), state.get("hidden"), state.get("unfreeze"))
    cnn_spec = esm.scratch_cnn_spec(cnn_full)
    names = (f"ESM-2 head ({'fine-tuned' if state.get('unfreeze') else 'frozen'})", "CNN from scratch")

    def make():
        cfg = TrainConfig(optimizer="adam", lr=state.get("lr"), batch_size=16, seed=seed, track_metrics=True,
                          device=device)
        return SideBySide({
            names[0]: Trainer(build_model(head_spec, seed), subsample_train(esm_full, n_use, seed), cfg),
            names[1]: Trainer(build_model(cnn_spec, seed), subsample_train(cnn_full, n_use, seed),
                              dataclasses.replace(cfg)),
        })

    try:
        pair = live.ensure(sig, make)
    except (ValueError, RuntimeError) as e:
        _error(e)
        return
    pair.set_lr(state.get("lr"))
    # both models are runs of this session (Run history, Predict) and can be saved below
    head_tr, cnn_tr = pair.trainers[names[0]], pair.trainers[names[1]]
    ds_name = DATA[state.get("data")]
    esm_input = InputSpec("esm_finetune" if state.get("unfreeze") else "esm_embedding", "protein",
                          esm_model=H.name, esm_key=H.key, esm_layer=int(esm_full.meta["layer"]))
    track("esm.head", head_tr, head_spec, page="esm", dataset=ds_name, input=esm_input,
          label_names=esm_full.class_names,
          parameters={"head": state.get("head"), "unfreeze": state.get("unfreeze"), "train %": state.get("size")})
    track("esm.cnn", cnn_tr, cnn_spec, page="esm", dataset=ds_name, input=InputSpec("tokens", "protein"),
          label_names=cnn_full.class_names, parameters={"train %": state.get("size")})
    st.caption(f"**{names[0]}**: {head_spec.describe()}. **{names[1]}**: {cnn_spec.describe()}.")
    live.controls()
    metric = M.HEADLINE[esm_full.task]

    def draw(tr):
        st.markdown(f"**Epoch {tr.epoch}** · both models see the same training proteins, in the same order "
                    f"(seed {seed}).")
        if tr.diverged:
            st.error(tr.diverged)
        hist = {n: t.history for n, t in tr.trainers.items()}
        a, b = st.columns(2)
        a.plotly_chart(P.overlay_loss_figure(hist, UNTR), key="esm.fig.ft_loss", config=png_config("esm_ft_loss"))
        b.plotly_chart(P.overlay_metric_figure(hist, metric, UNTR), key="esm.fig.ft_metric",
                       config=png_config("esm_ft_metric"))
        st.dataframe(pd.DataFrame(tr.table()), hide_index=True)

    live.run(draw)

    def page_proteins():
        """(train sequences, train labels, test sequences, test labels) of this run, for the script."""
        sub = head_tr.data.meta.get("train_subset")
        tr_idx = [cnn_full.meta["train_idx"][i]
                  for i in (sub if sub is not None else range(len(cnn_full.meta["train_idx"])))]
        te_idx = list(cnn_full.meta["test_idx"])
        if ps.task == "per_residue":
            lab = lambda i: ps.y[i]              # noqa: E731
        elif ps.task == "regression":
            lab = lambda i: float(ps.y[i])       # noqa: E731
        else:
            lab = lambda i: int(ps.y[i])         # noqa: E731
        return ([ps.seqs[i] for i in tr_idx], [lab(i) for i in tr_idx],
                [ps.seqs[i] for i in te_idx], [lab(i) for i in te_idx])

    if live.playing:      # the panels are drawn outside the live fragment: their files would be the paused models'
        st.caption("💾 Pause training to save the two models, their training histories and their PyTorch code.")
    else:
        model_panel(head_tr, head_spec, page="esm", dataset=ds_name, input=esm_input, key="esm.head",
                    title="💾 Save & export: ESM-2 head",
                    code=lambda: script_for_trainer(head_tr, head_spec, sequences=page_proteins()))
        model_panel(cnn_tr, cnn_spec, page="esm", dataset=ds_name, input=InputSpec("tokens", "protein"),
                    key="esm.cnn", title="💾 Save & export: CNN from scratch")

    st.markdown("##### How each degrades with fewer labels")
    st.number_input("Epochs per run", 1, 200, key=K("sweep_epochs"))
    sizes = sorted({max(4, int(round(n_train * s / 100))) for s in SIZES})
    sweep_sig = (sig.rsplit("|", 1)[0], state.get("sweep_epochs"), state.get("lr"))
    if st.button(f"Train both at {', '.join(map(str, sizes))} training proteins", key="esm.sweep_btn"):
        bar, cb = _progress_bar("Training …")
        cfg = TrainConfig(optimizer="adam", lr=state.get("lr"), batch_size=16, device=device)
        rows = size_sweep({names[0]: esm_full, names[1]: cnn_full}, {names[0]: head_spec, names[1]: cnn_spec},
                              sizes, state.get("sweep_epochs"), cfg, seed, cb)
        bar.empty()
        ss["esm._sweep"] = (sweep_sig, rows)
    got = ss.get("esm._sweep")
    if got and got[0] == sweep_sig:
        st.plotly_chart(P.size_sweep_figure(got[1], UNTR), key="esm.fig.sweep", config=png_config("esm_sweep"))
        st.dataframe(pd.DataFrame(got[1]), hide_index=True)


# =====================================================================================================
# 5 · Attention and contacts
# =====================================================================================================
def tab_attention():
    st.markdown("Every layer has several attention **heads**; each row of a map says where one position looks. "
                "ESM-2's authors found that some heads look at residues that touch in the folded protein; a "
                "logistic regression on all the maps (fair-esm's `return_contacts`) predicts the **contact map**. "
                "The sequence is the one typed in the *Masked amino acids* tab.")
    st.text_area("Protein sequence", key=K("seq"), height=70)
    opts = tuple([-1] + list(range(1, H.layers + 1)))
    if state.get("att_layer") not in opts:
        state.set("att_layer", -1)
    heads = tuple(range(-1, H.heads))
    if state.get("att_head") not in heads:
        state.set("att_head", -1)
    c1, c2 = st.columns(2)
    c1.select_slider("Layer", opts, key=K("att_layer"), format_func=lambda v: f"last ({H.layers})" if v == -1 else str(v))
    c2.selectbox("Head", heads, key=K("att_head"), format_func=lambda v: "average of all heads" if v == -1 else f"head {v + 1}")
    akey = (H.key, state.get("seq"))
    got = ss.get("esm._att")
    if not got or got[0] != akey:
        try:
            with st.spinner("Computing the attention maps …"):
                got = (akey, esm.attention_and_contacts(H, state.get("seq")))
        except esm.ESMError as e:
            _error(e)
            return
        ss["esm._att"] = got
    res = got[1]
    for w in res.warnings:
        st.warning("✂️ " + w)
    layer = H.layers if state.get("att_layer") == -1 else state.get("att_layer")
    head = None if state.get("att_head") == -1 else state.get("att_head")
    a, b = st.columns(2)
    a.plotly_chart(P.attention_figure(res.head(layer, head), res.tokens, layer, head, UNTR), key="esm.fig.att",
                   config=png_config("esm_att"))
    if res.contacts is not None:
        b.plotly_chart(P.contact_figure(res.contacts, res.seq, UNTR), key="esm.fig.contacts",
                       config=png_config("esm_contacts"))
        if res.contact_note:
            b.caption(res.contact_note)
        else:
            b.caption("Contact = the two residues' Cβ atoms are within 8 Å in the folded structure. Lines parallel "
                      "to the diagonal are helices; lines across it are paired β-strands.")
    else:
        b.plotly_chart(P.contact_figure(res.proxy, res.seq, UNTR, "Attention-based contact signal (no regression "
                                        "weights)", "APC score"), key="esm.fig.contacts",
                       config=png_config("esm_contacts"))
        b.info(res.contact_note)


TAB_FUNCS = (tab_mlm, tab_embeddings, tab_finetune, tab_attention)
st.subheader("2 · Explore")
tabs = st.tabs(TABS, key=K("tab"), on_change="rerun")
for t, fn in zip(tabs, TAB_FUNCS):
    if t.open:
        with t:
            fn()

state.sync()
