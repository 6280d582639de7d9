"""Language models: n-grams by counting, causal (GPT) and masked (BERT) Transformers trained live on
DNA and proteins, what they learned (fill the blank, continue, surprise, attention, embeddings), and
pretrain -> fine-tune against the same architecture from scratch.
Settings and the run: playground/setups/lm.py; widgets: playground/ui/lm_view.py."""
import streamlit as st

from playground.errors import PlaygroundError
from playground.lm.tokens import TokenizerError
from playground.plots import lm as PL
from playground.setups import lm as L
from playground.train import LEARNING_RATES, OPTIMIZERS
from playground.ui import LiveTraining, PageState, setup_page, show_error, sidebar
from playground.ui import lm_view as LV
from playground.ui.evaluation import progress_line, schedule_controls
from playground.ui.layout import stop_page
from playground.ui.runs import model_panel, png_config

setup_page("Language models", "🗣️")

state = PageState(L.SCHEMA, private=L.PRIVATE)
state.load()
seed, device = sidebar(state)
K = state.key
ss = st.session_state

st.title("🗣️ Language models")
st.caption("A language model learns the structure of sequences with no labels at all: by counting which token "
           "follows which (n-grams), by predicting the next token (GPT), or by filling in hidden ones (BERT). "
           "Train one on DNA or proteins, look at what it learned, then fine-tune it on a task with few labels. "
           "Every setting is in the page's link.")

c_set, c_view = st.columns([1.25, 3], gap="medium")

# ---- corpus ------------------------------------------------------------------------------------
with c_set:
    st.markdown("#### Corpus")
    st.selectbox("Sequences", tuple(L.CORPORA), key=K("corpus"), format_func=L.CORPORA.get)
    kind = state.get("corpus")
    upload = None
    if kind == "upload":
        st.radio("Alphabet", ("dna", "protein"), key=K("up_alphabet"), horizontal=True,
                 format_func={"dna": "DNA", "protein": "Protein"}.get)
        upload = LV.kept_upload(state, "uploader", "upload", "forget", "FASTA file of sequences",
                                "No labels needed. Letters outside the alphabet become [UNK].")
    else:
        d1, d2 = st.columns(2)
        d1.select_slider("Sequences", L.N_CHOICES, key=K("n"))
        d2.select_slider("Length" if kind == "dna" else "Longest protein", L.LENGTH_CHOICES, key=K("length"))
    if kind == "dna":
        with st.expander("Structure to discover", expanded=False):
            st.selectbox("Planted motif (JASPAR)", L.MOTIF_NAMES, key=K("motif"))
            st.toggle("Motif grammar: A, a gap, then B", key=K("grammar"))
            if state.get("grammar"):
                g1, g2 = st.columns([2, 1])
                g1.selectbox("Motif B", L.MOTIF_NAMES, key=K("motif_b"))
                g2.number_input("Gap (bp)", 0, 20, key=K("spacing"))
            st.select_slider("Share of sequences with a site", L.MOTIF_RATES, key=K("motif_rate"),
                             format_func=lambda v: f"{v:.0%}")
            st.toggle("Exact consensus (else sampled from the PWM)", key=K("consensus"))
            st.radio("Background", tuple(L.BACKGROUNDS), key=K("background"), format_func=L.BACKGROUNDS.get)
            if state.get("background") == "markov":
                m1, m2 = st.columns(2)
                m1.number_input("Markov order", 1, 5, key=K("markov_order"))
                m2.select_slider("Bias (small = predictable)", L.MARKOV_BIASES, key=K("markov_bias"))
            else:
                st.slider("GC content", 0.2, 0.8, step=0.05, key=K("gc"))
    st.slider("Validation (%)", 10, 40, step=5, key=K("val_pct"),
              help="Held-out sequences: the curves, early stopping and every view read them. A corpus has no test "
                   "set; the fine-tune tab's labelled task has its own.")

if kind == "upload" and upload is None:
    with c_view:
        st.info(LV.UPLOAD_EXAMPLE)
    stop_page(state)
try:
    corpus = LV.cached(state, "corpus", LV.corpus_key(state, upload), lambda: L.make_corpus(state.values(), upload))
except (PlaygroundError, ValueError) as e:
    with c_view:
        show_error(f"Could not make this corpus: {getattr(e, 'message', e)}",
                   getattr(e, "hint", None) or "Change the corpus settings named in the message.")
    stop_page(state)

with c_set:
    st.caption(f"**{corpus.summary()}**")
    with st.expander("How this corpus is made", expanded=False):
        st.markdown(corpus.description)
    for w in corpus.warnings[:3]:
        st.caption(f"⚠️ {w}")

# ---- tokens ------------------------------------------------------------------------------------
with c_set:
    st.markdown("#### Tokens")
    t1, t2 = st.columns([2, 1])
    t1.selectbox("Tokens", tuple(L.TOKENIZERS), key=K("tokens"), format_func=L.TOKENIZERS.get,
                 help="DNABERT reads overlapping k-mers: ACGTA → ACG CGT GTA.")
    t2.number_input("k", 2, 6, key=K("k"), disabled=state.get("tokens") == "char")
    try:
        tok = L.make_tokenizer(state.values(), corpus.alphabet)
    except TokenizerError as e:
        show_error(e.message, e.hint)
        stop_page(state)
    n_tr, n_va = tok.token_count(corpus.train), tok.token_count(corpus.val)
    st.caption(f"**Vocabulary: {tok.vocab_size - tok.n_special:,} tokens** (+ 4 special: [PAD] [MASK] [UNK] [CLS]) · "
               f"**{n_tr:,}** training and **{n_va:,}** validation tokens · uniform guess: "
               f"**{L.uniform_bits(tok):.2f} bits** per token")

with st.spinner("Counting the n-grams of orders 1–6 (the reference line) …"):
    reference = LV.cached(state, "reference", LV.token_key(state, upload), lambda: L.reference_ngram(tok, corpus))
ref_bits = reference["val_bits"][reference["order"]]

# ---- model -------------------------------------------------------------------------------------
with c_set:
    st.markdown("#### Model")
    st.selectbox("Language model", tuple(L.MODELS), key=K("model"), format_func=L.MODELS.get)
    model_kind = state.get("model")
    with st.container(border=True):
        if model_kind == "ngram":
            st.slider("Order n (reads the n − 1 tokens before)", 1, 6, key=K("order"))
            a, b = st.columns(2)
            a.selectbox("Smoothing", tuple(L.SMOOTHING), key=K("smoothing"), format_func=L.SMOOTHING.get)
            b.select_slider("k (add-k)", L.ADD_K, key=K("add_k"), disabled=state.get("smoothing") != "add_k",
                            help="A pseudo-count added to every next token. k = 0 is plain counting (the lecture's "
                                 "formula): an unseen n-gram then has probability 0.")
        else:
            a, b = st.columns(2)
            a.select_slider("d_model", L.D_MODELS, key=K("d_model"))
            b.select_slider("Heads", L.HEADS, key=K("heads"))
            a.slider("Layers", 1, 4, key=K("layers"))
            b.select_slider("Feed-forward", L.FFS, key=K("ff"))
            a.select_slider("Dropout", L.DROPOUTS, key=K("dropout"))
            b.selectbox("Positions", ("sinusoidal", "learned"), key=K("positional"),
                        format_func={"sinusoidal": "Sinusoidal", "learned": "Learned table"}.get)
            if model_kind == "masked":
                st.select_slider("Masking rate (tokens to predict)", L.MASK_RATES, key=K("mask_rate"),
                                 format_func=lambda v: f"{v:.0%}", help="BERT: 15 %. The loss counts these only.")
                m1, m2 = st.columns(2)
                m1.slider("[MASK] %", 0, 100, step=5, key=K("mask_pct"),
                          help="Of the chosen tokens, the share replaced by [MASK] (BERT: 80 %).")
                m2.slider("Random %", 0, 100, step=5, key=K("random_pct"),
                          help="The share replaced by a random token (BERT: 10 %); the rest stay unchanged.")
                keep = 100 - int(state.get("mask_pct")) - int(state.get("random_pct"))
                st.caption(f"Of the chosen tokens: {state.get('mask_pct')} % [MASK], {state.get('random_pct')} % a "
                           f"random token, {max(keep, 0)} % unchanged (BERT: 80 / 10 / 10).")
    try:
        fit = None
        if model_kind == "ngram":      # counted once per corpus, tokens and n-gram settings
            v = L.relevant(state.values())
            fit = LV.cached(state, "ngram", LV.token_key(state, upload) + (v["order"], v["smoothing"], v["add_k"]),
                            lambda: L.fit_ngram(state.values(), tok, corpus))
        run = L.build(state.values(), upload, corpus=corpus, ngram=fit)
    except (PlaygroundError, ValueError) as e:
        with c_view:
            show_error(f"This model cannot be built: {getattr(e, 'message', e)}",
                       getattr(e, "hint", None) or "Change the model settings (the corpus is kept).")
        stop_page(state)
    if run.spec is not None:
        from playground.models import build_model, count_parameters

        st.caption(f"**{run.spec.describe()}** · **{count_parameters(build_model(run.spec, seed)):,} parameters**")
        st.markdown("#### Training")
        t1, t2 = st.columns(2)
        t1.selectbox("Optimizer", tuple(OPTIMIZERS), key=K("optimizer"), format_func=OPTIMIZERS.get)
        t2.select_slider("Batch size", L.BATCH_CHOICES, key=K("batch"))
        st.select_slider("Learning rate", LEARNING_RATES, key=K("lr"), format_func=lambda v: f"{v:g}")
        schedule_controls(state)

# ---- training (or counting) ---------------------------------------------------------------------
live = LiveTraining("lm")
trainer = None
model = None
ngram = None
label = run.extras["label"]
uniform = L.uniform_bits(tok)
with c_view:
    if run.spec is None:
        st.markdown("#### n-gram: counted, not trained")
        ngram = run.extras["ngram"]["model"]
        LV.ngram_panel(state, run.extras["ngram"], tok, corpus, reference)
    else:
        try:
            trainer = live.ensure(run.signature, run.make_trainer,
                                  run_info=dict(spec=run.spec, page="lm", dataset=label, input=L.input_spec(run),
                                                parameters=run.extras["parameters"]))
        except (ValueError, RuntimeError) as e:
            show_error(f"Could not set up this run: {e}", "Change the settings back, or press Reset.")
            stop_page(state)
        L.apply_live(trainer, state.values())
        model = trainer.model
        objective = run.spec.objective
        ref_label = f"best n-gram (n={reference['order']})"

        def draw(tr) -> None:
            LV.lm_tiles(tr, uniform, ref_bits, objective)
            st.caption(progress_line(tr))
            if tr.diverged:
                st.error(f"⚠️ Training {tr.diverged}", icon="💥")
            if tr.stopped:
                st.success(f"⏹ {tr.stopped}")
            g1, g2 = st.columns(2)
            g1.plotly_chart(PL.bits_figure(tr.history, uniform, ref_bits, ref_label), key="lm.bits",
                            config=png_config("lm_bits"))
            g2.plotly_chart(PL.perplexity_figure(tr.history, tok.vocab_size - tok.n_special, ref_bits, ref_label),
                            key="lm.ppl", config=png_config("lm_perplexity"))
            what = ("masked tokens (a fixed masking of the validation set, the same every epoch)" if objective ==
                    "masked" else "next tokens")
            st.caption(f"{tr.steps:,} mini-batches · {tr.seconds:.1f} s of training · validation: the "
                       f"{tr.data.meta.get('n_val_tokens', 0):,} tokens of {len(corpus.val):,} sequences, scored on "
                       f"their {what}."
                       + (" A masked model sees both sides of a blank; the n-gram only the left: its line is a "
                          "reference, not a like-for-like race." if objective == "masked" else ""))

        live.controls()
        live.run(draw)
        if live.playing:
            st.caption("💾 Pause training to save this language model, its history and its PyTorch code.")
        else:
            model_panel(trainer, run.spec, page="lm", dataset=label, label_names=list(tok.vocab),
                        input=L.input_spec(run), settings=run.extras["parameters"], key="lm",
                        code=lambda: L.script(run, trainer, state.values()))

# ---- the views ----------------------------------------------------------------------------------
with c_view:
    picked = LV.pick_sequence(state, corpus)
tabs = c_view.tabs(["🕳️ Fill the blank", "✍️ Continue the sequence", "😮 Surprise", "🔎 Attention",
                    "🗺️ Embeddings", "🎯 Pretrain → fine-tune"])
with tabs[0]:
    LV.fill_blank_view(state, model, tok, corpus, picked, run.spec.objective if run.spec else "ngram", ngram)
with tabs[1]:
    LV.continue_view(state, model, tok, corpus, picked, ngram)
with tabs[2]:
    LV.surprise_view(state, model, tok, corpus, picked, reference, ngram)
with tabs[3]:
    LV.attention_view(state, model, tok, corpus, picked)
with tabs[4]:
    LV.embedding_view(model, tok)
with tabs[5]:
    LV.finetune_tab(state, run, trainer, tok, corpus, live_playing=live.playing)

state.sync()
