"""Predict: a saved model + your sequences -> a table of predictions to download."""
import hashlib

import numpy as np
import streamlit as st

from playground.bundle import MAX_BUNDLE_BYTES, BundleError, load_bundle
from playground.data.parsing import MAX_BYTES, SequenceFileError
from playground.predict import (LONG_POLICIES, MAX_SEQUENCES, aligned_text, can_explain, explain, input_rules,
                                length_limit, load_model, predict, read_input, require_predictor, residue_symbols)
from playground.ui import PageState, Param, setup_page, show_error, sidebar, stop_page
from playground.ui.runs import get_model, model_stamp, png_config, session_models, training_page_links
from playground.ui.mutation_view import class_picker, scan_target_controls

setup_page("Predict", "🔮")

state = PageState("predict", [
    Param("source", "session", choices=("session", "upload")),
    Param("input", "paste", choices=("paste", "file")),
    Param("long", "reject", choices=tuple(LONG_POLICIES)),
    Param("map_aliases", False, "bool"),
    Param("explain_class", 0, "int", lo=0, hi=50),
    Param("scan_units", "output", choices=("output", "probability")),
], private=("model", "session_bundle", "bundle_file", "uploaded_bundle", "result_for", "result", "model_obj",
            "text", "seq_file", "table", "pick", "scan_text", "scan"))
state.load()
seed, device = sidebar(state)
K, S = state.key, state.slot     # settings' widget keys; the page's declared private session slots
ss = st.session_state
TABLE_ROWS_SHOWN = 100_000


st.title("🔮 Predict")
st.caption("Pick a model you trained in this session (or upload a saved bundle), give it sequences, and get a "
           "table of predictions to sort and download. Nothing you paste leaves this session.")

# ---- 1. the model ------------------------------------------------------------------------------
st.markdown("#### 1 · Model")
st.radio("Model from", ("session", "upload"), key=K("source"), horizontal=True,
         format_func={"session": "This session's models", "upload": "Upload a bundle (.pt)"}.get)
bundle, bundle_key = None, None
if state.get("source") == "session":
    options = dict(session_models())
    if not options:
        st.info("No trained models in this session yet. Train one on a page (▶ Play or Step): it appears here "
                "automatically. Or upload a bundle saved earlier.", icon="🧠")
        training_page_links()
        stop_page(state)
    if ss.get(S("model")) not in options:
        ss[S("model")] = next(iter(options))
    st.selectbox("Model", list(options), key=S("model"), format_func=options.get)
    mid = ss[S("model")]
    cached = ss.get(S("session_bundle"))
    stamp = model_stamp(mid)
    if cached is not None and cached[0] == stamp:
        bundle = cached[1]
    else:
        try:
            bundle = get_model(mid)
        except BundleError as e:
            show_error(e.message, e.hint)
            stop_page(state)
        ss[S("session_bundle")] = (stamp, bundle)
    if bundle is None:
        show_error("That model is no longer available.", "Pick another one from the list.")
        stop_page(state)
    bundle_key = ("session",) + stamp
else:
    up = st.file_uploader(f"Model bundle (.pt, up to {MAX_BUNDLE_BYTES // 1_000_000} MB)", type=["pt"],
                          key=S("bundle_file"),
                          help="The file from a page's '⬇️ Model (.pt)' button. Files are checked before use: "
                               "anything that could run code is refused.")
    if up is None:
        st.info("Upload a model bundle saved from a playground page (**⬇️ Model (.pt)** in its Save & export "
                "panel).", icon="⬆️")
        stop_page(state)
    raw = up.getvalue()
    digest = hashlib.sha1(raw).hexdigest()
    cached = ss.get(S("uploaded_bundle"))
    if cached is not None and cached[0] == digest:
        bundle = cached[1]
    else:
        try:
            bundle = load_bundle(raw, filename=up.name)
        except BundleError as e:
            show_error(e.message, e.hint)
            stop_page(state)
        ss[S("uploaded_bundle")] = (digest, bundle)
    bundle_key = ("upload", digest)
try:
    require_predictor(bundle)            # a language model predicts tokens, not labels
except BundleError as e:
    show_error(e.message, e.hint)
    stop_page(state)

left, right = st.columns([1.25, 1])
with left:
    rows = bundle.summary()
    st.markdown("\n".join(f"- **{k}:** {v}" for k, v in rows))
with right:
    st.markdown("**What this model reads**")
    st.write(input_rules(bundle))
    limit = length_limit(bundle)
    st.caption(f"Limits: up to **{MAX_SEQUENCES:,} sequences** and **{MAX_BYTES // 1_000_000} MB** per run"
               + (f"; sequences up to **{limit:,} letters**" if limit else "")
               + ". Large inputs run in batches with a progress bar.")

if ss.get(S("result_for")) != bundle_key:
    ss.pop(S("result"), None)

# ---- 2. the sequences --------------------------------------------------------------------------
st.markdown("#### 2 · " + ("Points" if bundle.input.kind == "features" else "Sequences"))
features = bundle.input.kind == "features"


def example_text() -> str:
    rng = np.random.default_rng(seed)
    if features:
        dims = 2 if any("2" in f for f in bundle.input.features) else 1
        pts = rng.uniform(-5, 5, size=(12, dims))
        return "\n".join(",".join(f"{v:.2f}" for v in p) for p in pts)
    a = "ACGT" if bundle.input.alphabet == "dna" else "ACDEFGHIKLMNPQRSTVWY"
    L = bundle.input.length or min(60 if bundle.input.alphabet == "dna" else 80, length_limit(bundle) or 10 ** 6)
    out = []
    for i in range(12):
        n = L if bundle.input.length else int(rng.integers(L // 2, L + 1))
        out.append(f">example{i + 1}\n" + "".join(rng.choice(list(a), n)))
    return "\n".join(out)


def fill_example():
    ss[S("text")] = example_text()
    state.set("input", "paste")


c1, c2 = st.columns([3, 1])
with c1:
    st.radio("Input", ("paste", "file"), key=K("input"), horizontal=True,
             format_func={"paste": "Paste", "file": "Upload FASTA / CSV"}.get)
with c2:
    st.button("🎲 Example input", on_click=fill_example, help="Random sequences of the right kind, to try the page.")
upload = None
if state.get("input") == "paste":
    placeholder = ("1.5, -2\n-3, 0.5" if features else
                   ">seq1\nACGTACGTTGCA…\n>seq2\n…\n\nor one sequence per line")
    st.text_area("Sequences (FASTA or one per line)" if not features else "Points (x1, x2 per line)",
                 key=S("text"), height=180, placeholder=placeholder)
else:
    upload = st.file_uploader("FASTA, CSV or TSV (a 'sequence' column), plain or .gz",
                              type=["fa", "fasta", "fna", "faa", "fas", "csv", "tsv", "txt", "gz"],
                              key=S("seq_file"))
o1, o2 = st.columns(2)
if bundle.input.kind == "one_hot" and bundle.input.length:
    o1.radio(f"Sequences longer than {bundle.input.length}", tuple(LONG_POLICIES), key=K("long"),
             format_func=LONG_POLICIES.get, horizontal=True)
if not features:
    alias = "Map U → T (RNA)" if bundle.input.alphabet == "dna" else "Map rare letters (B Z U O J) → X"
    o2.toggle(alias, key=K("map_aliases"))

go_clicked = st.button("🔮 Predict", type="primary", key="predict.go")
if go_clicked:
    text = ss.get(S("text"), "") if state.get("input") == "paste" else None
    if state.get("input") == "file" and upload is None:
        show_error("No file was uploaded.", "Choose a FASTA or CSV file above, or paste sequences.")
        stop_page(state)
    try:
        parsed = read_input(bundle, text=text, data=upload.getvalue() if upload is not None else None,
                            filename=upload.name if upload is not None else "pasted text",
                            long_policy=state.get("long"), map_aliases=state.get("map_aliases"))
    except SequenceFileError as e:
        show_error(f"Could not read the {'file' if upload is not None else 'pasted text'}: {e.message}", e.hint)
        stop_page(state)
    bar = st.progress(0.0, text="Starting …")

    def progress(done, total, msg):
        bar.progress(min(1.0, done / max(1, total)), text=msg)

    try:
        model = load_model(bundle, device)
        result = predict(bundle, parsed, model=model, progress=progress)
    except (BundleError, SequenceFileError) as e:
        bar.empty()
        show_error(e.message, e.hint)
        stop_page(state)
    except (ValueError, RuntimeError) as e:
        bar.empty()
        show_error(f"The model could not predict these inputs: {e}", "Check that they are the kind this model "
                   "was trained on (see 'What this model reads').")
        stop_page(state)
    bar.empty()
    ss[S("result")] = result
    ss[S("model_obj")] = (bundle_key, model)
    ss[S("result_for")] = bundle_key
    ss.pop(S("pick"), None)



def the_model():
    """The bundle's network (loaded once per bundle and kept in the session)."""
    got = ss.get(S("model_obj"))
    if got is not None and got[0] == bundle_key:
        return got[1]
    model = load_model(bundle, device)
    ss[S("model_obj")] = (bundle_key, model)
    return model


def mutation_scan_section() -> None:
    """Type a DNA sequence, scan every single-base change (one-hot DNA models)."""
    if not can_explain(bundle):
        return
    from playground.data.parsing import SequenceFileError as _SeqError
    from playground.encoding import DNA, one_hot
    from playground.interpret import saliency
    from playground.mutation import ism, read_dna, scan_csv, units_label
    from playground.plots.dna import figure_png, logo_figure
    from playground.plots.mutation import dna_scan_figure

    st.markdown("#### 🔬 Mutation scan of a sequence you type")
    L = bundle.input.length
    st.text_area("DNA sequence (A C G T, N = unknown" + (f"; this model reads {L} bases, shorter ones are padded)"
                                                         if L else ")"),
                 key=S("scan_text"), height=90, placeholder="ACGT… (a FASTA header line is fine)")
    target, class_name, units = scan_target_controls(state, bundle.task, list(bundle.classes or []),
                                                     "Scan the score of class")
    text = ss.get(S("scan_text"), "") or ""
    go = st.button("🔬 Scan every single-base change", key="predict.scan_go", disabled=not text.strip())
    if not text.strip():
        st.caption("Paste one DNA sequence: every position is changed to each other base and the model predicts all "
                   "the variants (in a few batches).")
        return
    try:
        seq, notes = read_dna(text, length=L or None)
        limit = length_limit(bundle)
        if limit and len(seq) > limit:
            raise _SeqError(f"The sequence has {len(seq)} bases; this model reads at most {limit}.",
                            hint=f"Paste at most {limit} bases.")
    except _SeqError as e:
        show_error(e.message, e.hint)
        return
    key = (bundle_key, seq, target, units)
    got = ss.get(S("scan"))
    if go and (got is None or got["key"] != key):
        model = the_model()
        x = one_hot([seq], DNA, L or len(seq), n_value=float(bundle.input.n_value or 0.0))[0]
        bar = st.progress(0.0, text="Scanning …")
        delta = ism(model, x, target, units, positions=len(seq),
                    progress=lambda d, t, m: bar.progress(min(1.0, d / max(1, t)), text=m))
        bar.empty()
        sal = saliency(model, x, target)[:, :len(seq)]
        ss[S("scan")] = got = {"key": key, "delta": delta[:len(seq)], "sal": sal, "logo": figure_png(logo_figure(
            sal, "Saliency as a logo: letter height = gradient × input", "grad × input", width=13, height=2.6))}
    if got is None or got["key"] != key:
        st.caption("Press **Scan** to mutate every position of this sequence.")
        return
    for n in notes:
        st.caption("ℹ️ " + n)
    label = units_label(bundle.task, units, class_name)
    st.plotly_chart(dna_scan_figure(got["delta"], seq, label, title=f"In-silico mutagenesis of your sequence ({label})"),
                    key="predict.scan_fig", config=png_config("mutation_scan"))
    st.image(got["logo"])
    st.download_button("⬇️ Mutation scan (CSV)", scan_csv(seq, got["delta"], label.replace(",", " ")),
                       file_name="mutation_scan.csv", mime="text/csv", key="predict.scan_csv", on_click="ignore")
    st.caption(f"{3 * len(seq) + seq.count('N')} variants (each position changed to each other base), change of the "
               "output in "
               f"**{label}**: red raises it, blue lowers it. The logo: how much each base that is there pushes the "
               "output up (above the line) or down.")


result = ss.get(S("result"))
if result is None:
    mutation_scan_section()
    stop_page(state)

# ---- 3. the predictions ------------------------------------------------------------------------
st.markdown("#### 3 · Predictions")
for w in result.warnings:
    st.warning(w, icon="ℹ️")
m = st.columns(4)
m[0].metric("Sequences" if not features else "Points", f"{len(result):,}")
m[1].metric("Time", f"{result.seconds * 1000:.0f} ms" if result.seconds < 1 else f"{result.seconds:.1f} s")
m[2].metric("Per second", f"{result.sequences_per_second:,.0f}" if result.seconds > 0 else "–")
if result.task in ("binary", "multiclass"):
    counts = {c: 0 for c in result.classes}
    for p in result.predicted:
        counts[p] += 1
    if result.task == "binary":
        pos = result.classes[1]
        m[3].metric(f"Predicted {pos}", f"{counts[pos]:,} of {len(result):,}")
    else:
        top = max(counts, key=counts.get)
        m[3].metric("Most often predicted", f"{top} ({counts[top]:,})",
                    help=" · ".join(f"{c}: {n}" for c, n in counts.items()))
elif result.task == "regression":
    m[3].metric("Mean prediction", f"{float(np.mean(result.values)):.4g}")

frame = result.frame(max_sequence_chars=80)
if "sequence" in frame.columns:     # on screen the long sequences go last (the CSV keeps id, sequence first)
    frame = frame[[c for c in frame.columns if c not in ("sequence", "length")] + ["length", "sequence"]]
config = {}
for col in frame.columns:
    if col.startswith("P(") or col in ("confidence", "mean confidence"):
        config[col] = st.column_config.ProgressColumn(col, min_value=0.0, max_value=1.0, format="%.3f")
if "sequence" in frame.columns:
    config["sequence"] = st.column_config.TextColumn("sequence", width="large")


def on_pick():
    sel = ss.get(S("table"))
    rows = getattr(getattr(sel, "selection", None), "rows", None) or (sel or {}).get("selection", {}).get("rows", [])
    if rows:
        ss[S("pick")] = int(rows[0]) + 1


st.caption("Click a column header to sort. " + ("Click a row to explain that sequence below." if can_explain(bundle)
                                               or result.task == "per_residue" else ""))
st.dataframe(frame.iloc[:TABLE_ROWS_SHOWN], hide_index=True, width="stretch", height=min(420, 38 + 35 * len(frame)),
             column_config=config, key=S("table"), on_select=on_pick, selection_mode="single-row")
st.download_button("⬇️ Predictions (CSV)", result.to_csv(), file_name="predictions.csv", mime="text/csv",
                   key="predict.dl_csv", on_click="ignore", type="primary",
                   help="Every row with the full sequences and all probabilities.")

# ---- 4. one sequence: per-residue labels, saliency / mutagenesis -------------------------------
explainable = can_explain(bundle)
if result.task == "per_residue" or explainable:
    st.markdown("#### 4 · " + ("Per-residue labels" if result.task == "per_residue" else "Why? Saliency and mutagenesis"))
    if ss.get(S("pick"), 1) > len(result):
        ss[S("pick")] = 1
    if S("pick") not in ss:
        ss[S("pick")] = 1
    c1, c2 = st.columns([1, 3])
    c1.number_input(f"Sequence (1–{len(result)})", 1, len(result), step=1, key=S("pick"))
    i = int(ss[S("pick")]) - 1
    c2.markdown(f"**{result.ids[i]}** · predicted **{result.predicted[i]}**")
    if result.task == "per_residue":
        sym = residue_symbols(result.classes)
        legend = " · ".join(f"{s} = {c}" for s, c in zip(sym, result.classes))
        st.code(aligned_text(result.seqs[i], result.per_residue[i]), language=None)
        st.caption(f"Each residue's predicted label under it ({legend}); positions every 60.")
    else:
        target = None
        if bundle.task == "multiclass":
            target = class_picker(state, bundle.classes)
        from playground.plots.dna import ism_figure, saliency_figure

        got = ss.get(S("model_obj"))
        model = got[1] if got is not None and got[0] == bundle_key else load_model(bundle, device)
        try:
            why = explain(bundle, model, result.seqs[i], target)
        except (BundleError, ValueError) as e:
            show_error(f"Cannot explain this sequence: {e}", "Pick another sequence.")
            stop_page(state)
        st.plotly_chart(saliency_figure(why["saliency"], why["seq"], title=f"Saliency of {result.ids[i]}"),
                        key="predict.saliency", config=png_config(f"saliency_{result.ids[i]}"))
        st.plotly_chart(ism_figure(why["ism"], why["seq"], title=f"In-silico mutagenesis of {result.ids[i]}"),
                        key="predict.ism", config=png_config(f"ism_{result.ids[i]}"))
        st.caption("**Saliency**: gradient × input, how much the base at each position pushes the output up or down. "
                   "**In-silico mutagenesis**: every base changed to every other base; red raises the output "
                   "(logit), blue lowers it.")

mutation_scan_section()
state.sync()
