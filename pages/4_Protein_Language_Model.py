"""Protein language model (ESM-2): masked amino acids, embeddings, fine-tuning vs training from
scratch, attention and contacts. Settings and the run: playground/setups/protein.py; loading the
model: playground/ui/esm_loading.py."""
import numpy as np
import pandas as pd
import streamlit as st

from playground import esm
from playground import metrics as M
from playground.bundle import InputSpec
from playground.codegen import script_for_trainer
from playground.data import protein
from playground.data.parsing import SequenceFileError
from playground.embedding_files import EmbeddingFileError, read_embeddings
from playground.plots import esm as P
from playground.setups import protein as setup
from playground.ui import LiveTraining, PageState, setup_page, show_error, sidebar, stop_page
from playground.ui.esm_loading import ModelLoader, model_label, progress_bar
from playground.ui.evaluation import test_panel
from playground.ui.runs import model_panel, png_config, track

setup_page("Protein language model (ESM-2)", "🧪")

state = PageState(setup.SCHEMA, private=setup.PRIVATE)
state.load()
seed, device = sidebar(state)
K, slot = state.key, state.slot
ss = st.session_state

st.title("🧪 Protein language model (ESM-2)")
st.caption("ESM-2 is a Transformer pre-trained on millions of natural proteins by **predicting masked amino acids**. "
           "What it learned shows in its predictions, in its **embeddings** (a small head on them learns from a few "
           "hundred labelled proteins) and in its **attention maps** (they trace residue contacts).")

# =====================================================================================================
# 1 · Loading
# =====================================================================================================
st.subheader("1 · Load ESM-2")
loader = ModelLoader(state, seed, device)
c_model, c_opts = st.columns([3, 1])
c_model.selectbox("Model", tuple(esm.CATALOGUE), key=K("model"), format_func=model_label,
                  on_change=loader.choose("pretrained"),
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

H = loader.handle()
loader.sources(H)
if H is None:
    stop_page(state)
UNTR = H.untrained


def fit(*names):
    """Put the settings ``names`` back in range for the loaded model."""
    for name, value in setup.fit_to_model(state.values(), H.layers, H.heads, names).items():
        state.set(name, value)


def _error(e: Exception):
    if isinstance(e, (esm.ESMError, SequenceFileError, EmbeddingFileError)):
        show_error(e.message, e.hint)
    else:
        show_error(str(e))


def layer_label(v):
    return setup.layer_label(v, H.layers)


def data_picker():
    """The proteins of the embeddings and fine-tuning tabs (a ``setup.Proteins``), or None."""
    st.radio("Proteins", tuple(setup.DATA), key=K("data"), format_func=setup.DATA.get, horizontal=True)
    upload = None
    if state.get("data") == "upload":
        st.file_uploader("FASTA or CSV/TSV with a sequence column (labels optional: a 'label' column or "
                         "`label=` in the FASTA header)", type=["fasta", "fa", "faa", "fas", "csv", "tsv", "txt"],
                         key="esm.seq_upload")
        f = ss.get("esm.seq_upload")
        if f is not None:
            ss[slot("seqfile")] = (f.name, f.getvalue())
        upload = ss.get(slot("seqfile"))
    try:
        d = setup.proteins(state.values(), upload)
    except (SequenceFileError, esm.ESMError, ValueError) as e:
        _error(e)
        return None
    if d is None:
        st.info("Upload a file of proteins (FASTA or CSV) to embed them.")
        return None
    for note in d.notes:
        st.caption("ℹ️ " + note)
    if d.ps is not None and d.ps.description:
        with st.expander("About these proteins"):
            st.markdown(d.ps.description)
    return d


fit("layer")


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
        pred = setup.masked(state.values(), H)
    except esm.ESMError as e:
        _error(e)
        return
    for w in pred.warnings:
        st.warning("✂️ " + w)
    if pred.masked:
        st.plotly_chart(P.topk_figure(pred.top, pred.seq, UNTR, pred.true_prob), key="esm.fig.topk",
                        config=png_config("esm_topk"))
        st.dataframe(pd.DataFrame(setup.masked_rows(pred)), hide_index=True)
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
        bar, cb = progress_bar("Masking each position in turn …")
        ss[slot("ppl")] = (ppl_key, esm.pseudo_perplexity(H, pred.seq, progress=cb))
        bar.empty()
    got = ss.get(slot("ppl"))
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
def embeddings_file_panel():
    """Embeddings computed elsewhere (``python -m playground embed`` on a GPU box): the .npy with its
    .ids.txt, an .npz or a .parquet, drawn as the tab draws its own."""
    with st.expander("📂 Open an embeddings file (from `python -m playground embed`)"):
        st.file_uploader("The .npy with its .ids.txt, an .npz, or a .parquet", type=["npy", "txt", "npz", "parquet"],
                         accept_multiple_files=True, key="esm.emb_files",
                         help="Written by `python -m playground embed proteins.fasta --out emb.npy` (or .parquet): "
                              "any model, layer and size, e.g. 50,000 proteins embedded with ESM-2 650M on a GPU.")
        ups = ss.get("esm.emb_files") or []
        if not ups:
            return
        try:
            emb = read_embeddings([(u.name, u.getvalue()) for u in ups])
            xy, caption = esm.project_2d(emb.mean(), "pca", seed)
        except (EmbeddingFileError, esm.ESMError) as e:
            _error(e)
            return
        meta = emb.meta
        what = " · ".join(str(x) for x in (meta.get("model"), f"layer {meta['layer']}" if "layer" in meta else None,
                                            meta.get("pooling")) if x)
        st.caption(f"**{len(emb):,} proteins** × {emb.dim} numbers" + (f" · {what}" if what else "")
                   + (" · per-residue vectors averaged per protein for the map" if emb.pooling != "mean" else ""))
        st.plotly_chart(P.projection_figure(xy, None, emb.ids, f"Embeddings from the file — {caption}",
                                            bool(meta.get("untrained"))), key="esm.fig.file_proj",
                        config=png_config("esm_file_proj"))


def tab_embeddings():
    st.markdown("An **embedding** is the list of numbers a layer computes for each residue. Averaging them over the "
                "residues (leaving out the start/end tokens and the padding) gives one vector per protein: "
                f"{H.dim} numbers that a small model can learn from.")
    embeddings_file_panel()
    d = data_picker()
    if d is None:
        return
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Layer", setup.layer_options(H.layers), key=K("layer"), format_func=layer_label,
                 help="0 = the token embeddings (no context); the last layer is what the masked-LM head reads.")
    c2.radio("Pooling", tuple(setup.POOLINGS), key=K("pooling"), horizontal=True, format_func=setup.POOLINGS.get)
    c3.radio("Longer than 1022 residues", tuple(esm.LONG_POLICIES), key=K("long"), horizontal=True,
             format_func=esm.LONG_POLICIES.get)
    values = state.values()
    pooling = values["pooling"]
    sig = setup.embedding_key(values, H, d)
    got = ss.get(slot("emb"))
    fresh = got is not None and got["sig"] == sig
    if st.button(f"🧭 Embed {len(d.seqs)} proteins", type="primary", key="esm.embed_btn", disabled=fresh):
        bar, cb = progress_bar("Embedding …")
        try:
            res = setup.embed(values, H, d, cb)
        except esm.ESMError as e:
            bar.empty()
            _error(e)
            return
        bar.empty()
        ss[slot("emb")] = got = {"sig": sig, "res": res, "data": d}
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
    csv = esm.embeddings_csv(res, d.labels if pooling == "mean" else None)
    npy, npy_name = esm.embeddings_npy(res)
    b1, b2 = st.columns(2)
    b1.download_button("⬇️ Embeddings as CSV", csv, f"esm_layer{res.layer}_{pooling}.csv", "text/csv", key="esm.dl_csv")
    b2.download_button(f"⬇️ Embeddings as {npy_name.split('.')[-1].upper()}", npy, npy_name,
                       "application/octet-stream", key="esm.dl_npy")
    st.radio("2-D projection", tuple(setup.PROJECTIONS), key=K("proj"), horizontal=True,
             format_func=setup.PROJECTIONS.get)
    X, labels, ids, label_name, cont = setup.projection_points(state.values(), res, d)
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
    try:     # the same comparison with a language model the student trains (plain text where AppTest has no pages)
        st.page_link("pages/7_Language_Models.py", label="Pretrain your own masked LM and fine-tune it the same way",
                     icon="🗣️")
    except Exception:  # noqa: BLE001 - StreamlitAPIException / KeyError outside a multipage app
        st.caption("🗣️ Pretrain your own masked LM on the Language models page and fine-tune it the same way.")
    d = data_picker()
    if d is None:
        return
    if d.ps is None:
        show_error("The uploaded proteins have no labels, so there is nothing to train on.",
                   "Add a 'label' column (CSV) or 'label=' in the FASTA headers.")
        return
    c = st.columns(5)
    c[0].radio("Split", tuple(protein.SPLITS), key=K("split"), format_func=protein.SPLITS.get)
    c[1].selectbox("Head", tuple(setup.HEADS), key=K("head"), format_func=setup.HEADS.get)
    c[2].selectbox("Hidden units", setup.HIDDEN, key=K("hidden"), disabled=state.get("head") != "mlp")
    fit("unfreeze")
    c[3].slider("Fine-tune the last N layers", 0, min(setup.MAX_UNFREEZE, H.layers), key=K("unfreeze"),
                help="0 = frozen embeddings (only the head learns). N > 0 trains a copy of the last N ESM-2 layers "
                     "too; the shared model is never changed.")
    c[4].select_slider("Training set used (%)", setup.SIZES, key=K("size"))
    values = state.values()
    try:
        base = setup.base_split(values, d)
    except ValueError as e:
        _error(e)
        return
    key = setup.inputs_signature(values, H.key, d.key)
    prep = ss.get(slot("ft"))
    ready = prep is not None and prep["sig"] == key
    unfreeze = values["unfreeze"]
    what = (f"the frozen layers 1–{H.layers - unfreeze}" if unfreeze
            else f"layer-{layer_label(setup.used_layer(values))} embeddings")
    if not ready:
        note = st.empty()
        note.info(f"First compute {what} of the {len(d.ps)} proteins (once; cached).")
        if st.button("🧭 Compute the ESM-2 inputs", type="primary", key="esm.prep_btn"):
            note.empty()
            bar, cb = progress_bar("Embedding …")
            try:
                inputs = setup.finetune_inputs(values, H, d, cb, base)
            except (esm.ESMError, ValueError) as e:
                bar.empty()
                _error(e)
                return
            bar.empty()
            ss[slot("ft")] = prep = {"sig": key, "esm": inputs.esm, "cnn": inputs.cnn, "inputs": inputs}
            ready = True
    if not ready:
        return
    run = setup.build(values, H, prep["inputs"])
    cnn_full, n_train, n_use = run.extras["cnn_data"], run.extras["n_train"], run.extras["n_use"]
    st.caption(f"Split: {len(cnn_full.y_train)} training / {len(cnn_full.y_val)} validation / "
               f"{len(cnn_full.y_test)} test proteins ({protein.SPLITS[values['split']].lower()}); training on "
               f"**{min(n_use, n_train)}** of them." +
               (f" Test proteins with a near-duplicate in training: {100 * cnn_full.meta['leakage']:.0f}%."
                if cnn_full.meta.get("leakage") is not None else ""))
    st.select_slider("Learning rate (both models)", setup.LRS, key=K("lr"), format_func=lambda v: f"{v:g}")
    try:
        pair = live.ensure(run.signature, run.make_trainer)
    except (ValueError, RuntimeError) as e:
        _error(e)
        return
    pair.set_lr(state.get("lr"))
    # both models are runs of this session (Run history, Predict) and can be saved below
    names, cnn_spec = run.extras["names"], run.extras["cnn_spec"]
    head_tr, cnn_tr = pair.trainers[names[0]], pair.trainers[names[1]]
    ds_name = setup.DATA[values["data"]]
    track("esm.head", head_tr, run.spec, page="esm", dataset=ds_name, input=run.extras["input"],
          label_names=run.data.class_names, parameters=run.extras["parameters"])
    track("esm.cnn", cnn_tr, cnn_spec, page="esm", dataset=ds_name, input=InputSpec("tokens", "protein"),
          label_names=cnn_full.class_names, parameters={"train %": values["size"]})
    st.caption(f"**{names[0]}**: {run.spec.describe()}. **{names[1]}**: {cnn_spec.describe()}.")
    live.controls()
    metric = M.HEADLINE[run.data.task]

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

    if live.playing:      # the panels are drawn outside the live fragment: their files would be the paused models'
        st.caption("💾 Pause training to save the two models, their training histories and their PyTorch code.")
    else:
        t1, t2 = st.columns(2)
        for col, (nm, t) in zip((t1, t2), ((names[0], head_tr), (names[1], cnn_tr))):
            with col:
                st.caption(f"**{nm}**")
                test_panel(t, (metric,), key=f"esm.test.{nm}")
        model_panel(head_tr, run.spec, page="esm", dataset=ds_name, input=run.extras["input"], key="esm.head",
                    title="💾 Save & export: ESM-2 head",
                    code=lambda: script_for_trainer(head_tr, run.spec,
                                                    sequences=setup.script_proteins(run, head_tr, d.ps)))
        model_panel(cnn_tr, cnn_spec, page="esm", dataset=ds_name, input=InputSpec("tokens", "protein"),
                    key="esm.cnn", title="💾 Save & export: CNN from scratch")

    st.markdown("##### How each degrades with fewer labels")
    st.number_input("Epochs per run", 1, 200, key=K("sweep_epochs"))
    sizes = setup.sweep_sizes(n_train)
    sweep_key = setup.sweep_key(state.values(), run)
    if st.button(f"Train both at {', '.join(map(str, sizes))} training proteins", key="esm.sweep_btn"):
        bar, cb = progress_bar("Training …")
        rows = setup.run_sweep(state.values(), run, cb)
        bar.empty()
        ss[slot("sweep")] = (sweep_key, rows)
    got = ss.get(slot("sweep"))
    if got and got[0] == sweep_key:
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
    fit("att_layer", "att_head")
    c1, c2 = st.columns(2)
    c1.select_slider("Layer", (-1, *range(1, H.layers + 1)), key=K("att_layer"),
                     format_func=lambda v: f"last ({H.layers})" if v == -1 else str(v))
    c2.selectbox("Head", tuple(range(-1, H.heads)), key=K("att_head"),
                 format_func=lambda v: "average of all heads" if v == -1 else f"head {v + 1}")
    akey = setup.attention_key(state.values(), H)
    got = ss.get(slot("att"))
    if not got or got[0] != akey:
        try:
            with st.spinner("Computing the attention maps …"):
                got = (akey, esm.attention_and_contacts(H, state.get("seq")))
        except esm.ESMError as e:
            _error(e)
            return
        ss[slot("att")] = got
    res = got[1]
    for w in res.warnings:
        st.warning("✂️ " + w)
    layer, head = setup.attention_view(state.values(), H.layers)
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


# =====================================================================================================
# 6 · Mutation scan (ESM-1v masked marginals)
# =====================================================================================================
def tab_scan():
    from playground.plots.mutation import protein_scan_figure

    st.markdown("What does each **single substitution** do? ESM-1v's *masked marginal* (Meier et al. 2021), the field's "
                "standard zero-shot variant-effect score: mask position *i*, and compare the model's "
                "log-probability of the mutant with that of the wild type there, "
                "**log P(mutant) − log P(wild type)**. Below 0: the model finds the mutant less likely than the wild "
                "type (often a sign of a damaging change). The sequence is the one of the *Masked amino acids* tab.")
    st.text_area("Protein sequence", key=K("seq"), height=70)
    try:
        seq = esm.clean_sequence(state.get("seq"), "The sequence")
        skey = setup.scan_key(state.values(), H)
    except esm.ESMError as e:
        _error(e)
        return
    L = len(seq)
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    c2.select_slider("Masked copies per forward pass", setup.SCAN_COPIES, key=K("scan_copies"),
                     format_func=lambda v: "auto" if v == 0 else str(v),
                     help="Several masked copies of the sequence go through the model together (auto: as many as "
                          "fit the token budget). Only the masked position runs through the last layer.")
    got = ss.get(slot("scan"))
    fresh = got is not None and got[0] == skey
    if L > esm.MAX_RESIDUES:
        st.caption(f"ℹ️ {L} residues: ESM-2 reads at most {esm.MAX_RESIDUES}, so each position is scored in the "
                   f"window of {esm.MAX_RESIDUES} residues where it is most central.")
    if c1.button(f"🧬 Scan all {19 * L:,} substitutions ({L} masked copies)", type="primary", key="esm.scan_btn",
                 disabled=fresh):
        bar, cb = progress_bar("Masking each position in turn …")
        try:
            scores = setup.mutation_scan(state.values(), H, cb)
        except esm.ESMError as e:
            bar.empty()
            _error(e)
            return
        bar.empty()
        ss[slot("scan")] = got = (skey, scores)
        fresh = True
    scan = got[1] if fresh else None
    if scan is not None:
        st.plotly_chart(protein_scan_figure(scan, seq, UNTR), key="esm.fig.scan", config=png_config("esm_mutation_scan"))
        st.download_button("⬇️ Scan as CSV (position, wild type, 20 log-ratios)", esm.mutation_scan_csv(seq, scan),
                           file_name="esm_mutation_scan.csv", mime="text/csv", key="esm.dl_scan", on_click="ignore")
    else:
        st.info(f"Press **Scan** to score all 19 substitutions at each of the {L} positions ({L} masked copies of the "
                "sequence, run in batches with a progress bar). Typed mutations below are scored without it.")
    st.markdown("##### Score your mutations")
    st.text_input("Mutations (wild type, 1-based position, mutant; e.g. A23G, K45E)", key=K("mutations"))
    try:
        rows = setup.scored_mutations(state.values(), H, scan)
    except esm.ESMError as e:
        _error(e)
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption("Ranked from the most to the least favoured by the model. Each mutation is scored alone (its position "
               "masked, the rest of the wild type visible)" + (" — **untrained weights: the ranking means nothing**."
                                                             if UNTR else "."))


TAB_FUNCS = (tab_mlm, tab_embeddings, tab_finetune, tab_attention, tab_scan)
st.subheader("2 · Explore")
tabs = st.tabs(setup.TABS, key=K("tab"), on_change="rerun")
for t, fn in zip(tabs, TAB_FUNCS):
    if t.open:
        with t:
            fn()

state.sync()
