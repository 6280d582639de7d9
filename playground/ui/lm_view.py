"""The Language models page's widgets (pages/7_Language_Models.py): the corpus upload, the cached
corpus and reference n-gram, the n-gram's count table, the live tiles, and one function per view
tab. The library decides (``playground.lm``, ``playground.setups.lm``); this module only draws.

Every view reads the model as it was when training last paused (the views are drawn outside the
live fragment), and the validation sequences only: a language model's corpus has no test set.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import streamlit as st

from playground.errors import PlaygroundError as PlaygroundError_
from playground.plots import lm as PL
from playground.setups import lm as L
from playground.ui.layout import show_error
from playground.ui.runs import png_config
from playground.ui.seq_data import kept_upload
from playground.ui.state import PageState

UPLOAD_EXAMPLE = ("⬆️ Upload a FASTA file of sequences (no labels needed: a language model learns from the "
                  "sequences alone), e.g.\n\n```\n>seq1\nACGTTGCAAGGCTTAACG\n>seq2\nTTGACGCAAGGCTAACGT\n```\n\n"
                  f"Sequences longer than {L.MAX_UPLOAD_LENGTH} letters are cut. Hundreds of sequences are better "
                  "than ten.")
LABELLED_EXAMPLE = ("⬆️ Upload a labelled file: CSV with a `sequence` and a `label` column (classes, e.g. 0/1), or "
                    "FASTA with `label=...` in the headers. Its alphabet must be the corpus'.")
PROTEIN_GROUPS = {**{a: "charged" for a in "DEKR"}, **{a: "hydrophobic" for a in "AILMFVW"},
                  **{a: "polar" for a in "STNQHCY"}, **{a: "special (G, P)" for a in "GP"}}


# ---- uploads and caches ---------------------------------------------------------------------------
def cached(state: PageState, slot: str, key, build):
    """``build()`` once per ``key`` in the page's private ``slot``."""
    ss = st.session_state
    got = ss.get(state.slot(slot))
    if got is not None and got[0] == key:
        return got[1]
    value = build()
    ss[state.slot(slot)] = (key, value)
    return value


def corpus_key(state: PageState, upload) -> tuple:
    return L.corpus_inputs(state.values(), upload)


def token_key(state: PageState, upload) -> tuple:
    v = L.relevant(state.values())
    return corpus_key(state, upload) + (v["tokens"], v["k"])


# ---- the n-gram -----------------------------------------------------------------------------------
def _context_tokens(tok, text: str) -> list[str]:
    """A typed context as tokens: letters for single-letter tokens, else space-separated k-mers
    (or letters cut into k-mers)."""
    text = text.strip().upper()
    if not text:
        return []
    if tok.kind == "char":
        return [c for c in text if not c.isspace()]
    parts = text.split()
    if len(parts) > 1 or len(parts[0]) == tok.k:
        return parts
    return tok.tokens(parts[0])


def ngram_panel(state: PageState, fit: dict, tok, corpus, reference: dict) -> None:
    """The n-gram's numbers (it is counted, not trained: nothing to play) and its count table for a
    chosen context, written out as the lecture writes it."""
    model = fit["model"]
    n = model.order
    bits = fit["val_bits"][n]
    uni = L.uniform_bits(tok)
    c = st.columns(4)
    c[0].metric("Order n", f"{n}", help="The prediction reads the n − 1 tokens before.")
    c[1].metric("Val. bits / token", f"{bits:.3f}" if math.isfinite(bits) else "∞",
                help=f"Cross-entropy on the validation sequences, in bits. Uniform: {uni:.2f}.")
    c[2].metric("Val. perplexity", f"{2 ** bits:.2f}" if math.isfinite(bits) else "∞",
                help=f"2^bits: as unsure as a choice among this many tokens. Uniform: {2 ** uni:.0f}.")
    c[3].metric("Contexts counted", f"{sum(1 for h in model.counts if len(h) == n - 1):,}")
    if not math.isfinite(bits):
        st.warning("Some validation n-grams were never counted in training and add-k with k = 0 gives them "
                   "probability 0: their surprise is infinite. That is why n-grams are smoothed: raise k or use "
                   "backoff.", icon="♾️")
    st.caption("Nothing to train: an n-gram model is a table of counts, made in one pass over the training "
               f"tokens. Training bits {fit['train_bits'][n]:.3f} vs validation {bits:.3f}"
               + (" — a large gap means the counts memorised the training sequences." if
                  fit['train_bits'][n] < bits - 0.2 else "."))
    st.markdown("##### Count table")
    default = " ".join(tok.tokens(corpus.val[0])[max(0, 3 - (n - 1)):3]) if n > 1 and corpus.val else ""
    a, b = st.columns([2, 3])
    a.text_input(f"Context: the {n - 1} token(s) before" if n > 1 else "Context (order 1 reads none)",
                 key=state.key("context"), placeholder=default or "(none)", disabled=n == 1,
                 help="Letters (ACG) or k-mers separated by spaces. Only the last n − 1 tokens are used.")
    ctx = _context_tokens(tok, state.get("context") or default)
    table = model.count_table(ctx, top=None)
    rows = table["rows"]
    shown = [(t, cnt, p) for t, cnt, p in rows if cnt > 0][:20] or rows[:10]
    given = " ".join(map(str, table["context"]))
    with a:
        st.markdown(f"`{given or '∅'}` was seen **{table['context_count']:,}** times in training. What followed:")
        st.dataframe(pd.DataFrame([{"next token": t, "count": cnt, "P(next | context)": round(p, 4)}
                                   for t, cnt, p in shown]), hide_index=True, width="stretch")
    best = shown[0][0] if shown else None
    b.markdown(f"**{table['text']}**" if table["text"] else "")
    if best is not None and table["context_count"] and model.smoothing == "add_k" and model.k == 0:
        b.caption("Plain counting, as in the lecture: 'students opened their' seen 1,000 times, followed by 'books' "
                  "400 times, so P(books | students opened their) = 400 / 1000 = 0.4.")
    b.plotly_chart(PL.next_token_figure([(t, p) for t, _, p in rows], f"P(next token | {given or '∅'})",
                                        1 / max(1, model.V)), key="lm.ngram_bars", config=png_config("lm_ngram"))
    with st.expander("🎓 The lecture's worked example, counted the same way", expanded=False):
        lec = L.lecture_model(state.values())
        t = lec.count_table(list(L.LECTURE_CONTEXT))
        st.markdown("A corpus of words: *students opened their* appears **1,000** times, followed by *books* 400 "
                    "times, *laptops* 250, *exams* 200, *minds* 150. An order-4 model with this page's smoothing:")
        st.markdown(f"**{lec.formula(list(L.LECTURE_CONTEXT), 'books')}**")
        st.dataframe(pd.DataFrame([{"next word": w, "count": c, "P(next | students opened their)": round(p, 4)}
                                   for w, c, p in t["rows"]]), hide_index=True)
        st.caption("Plain counting (add-k with k = 0) gives exactly 400 / 1000 = 0.4; add-one smoothing moves a little "
                   "probability to words never seen after this context (here the context's own words).")
    ref = reference["val_bits"]
    st.caption("Validation bits per token of every order (backoff): " +
               " · ".join(f"n={o}: **{v:.3f}**" for o, v in ref.items()) +
               f". The best, n = {reference['order']}, is the reference line on the Transformers' curves. "
               "Higher orders see more context but their counts get sparse: validation chooses.")


# ---- live tiles -----------------------------------------------------------------------------------
def lm_tiles(tr, uniform: float, reference_bits: float, objective: str) -> None:
    """Epoch, losses and the validation bits / perplexity / accuracy (each with its baseline)."""
    rec = tr.latest
    cols = st.columns(6)
    cols[0].metric("Epoch", f"{tr.epoch:,}")
    cols[1].metric("Training loss", f"{rec['train_loss']:.4f}")
    vl = rec.get("val_loss", math.nan)
    cols[2].metric("Val. loss", f"{vl:.4f}" if math.isfinite(vl) else "–",
                   help="Cross-entropy (nats) on the validation targets: what early stopping reads.")
    vb = rec.get("val_bits", math.nan)
    cols[3].metric("Bits / token", f"{vb:.3f}" if math.isfinite(vb) else "–",
                   help=f"Validation loss / ln 2. Uniform {uniform:.2f} bits; best n-gram {reference_bits:.2f}.")
    vp = rec.get("val_ppl", math.nan)
    cols[4].metric("Perplexity", f"{vp:.2f}" if math.isfinite(vp) else "–",
                   help=f"2^bits. Uniform: {2 ** uniform:.0f} (the number of tokens).")
    va = rec.get("val_acc", math.nan)
    what = "masked tokens" if objective == "masked" else "next tokens"
    cols[5].metric("Accuracy", f"{va:.3f}" if math.isfinite(va) else "–",
                   help=f"Share of the validation {what} predicted right (top guess). Chance: 1/{2 ** uniform:.0f}.")


# ---- the views --------------------------------------------------------------------------------
def token_sites(tok, seq: str, sites) -> list[tuple[str, int, int]]:
    """Planted sites (letters) as token spans (0-based, end exclusive): tokens that lie inside."""
    spans = tok.token_spans(seq)
    out = []
    for name, a, b in sites:
        inside = [t for t, (s, e) in enumerate(spans) if s >= a and e <= b]
        if inside:
            out.append((name, inside[0], inside[-1] + 1))
    return out


def pick_sequence(state: PageState, corpus) -> tuple[int, str, list]:
    """The validation sequence the views show (a number input), its text and its planted sites."""
    n = len(corpus.val)
    if int(state.get("seq_idx")) >= n:
        state.set("seq_idx", 0)
    st.markdown("#### What the model learned")
    c1, c2 = st.columns([1, 3])
    c1.number_input(f"Validation sequence (0–{n - 1})", 0, max(0, n - 1), step=1, key=state.key("seq_idx"),
                    help="Every view below reads this held-out sequence.")
    i = int(state.get("seq_idx"))
    sites = corpus.val_sites[i] if corpus.val_sites else []
    seq = corpus.val[i]
    c2.markdown(f"`{seq[:120]}{'…' if len(seq) > 120 else ''}`" + (
        "  \nPlanted: " + ", ".join(f"**{m}** at {a + 1}–{b}" for m, a, b in sites) if sites else ""))
    return i, seq, sites


def suggested_blanks(tok, seq: str, sites) -> list[int]:
    """Three tokens inside the first planted site and two outside (1-based), or five spread out."""
    n = tok.n_tokens(len(seq))
    ts = token_sites(tok, seq, sites)
    if ts:
        _, a, b = ts[0]
        inside = sorted({a + (b - a) // 4, a + (b - a) // 2, a + 3 * (b - a) // 4})
        outside = [t for t in (max(0, a - 4), min(n - 1, b + 3)) if not a <= t < b]
        return [t + 1 for t in sorted(set(inside + outside))]
    return sorted({1 + int(round(x)) for x in np.linspace(0, n - 1, 7)[1:-1]})


def fill_blank_view(state: PageState, model, tok, corpus, picked, objective: str, ngram=None) -> None:
    from playground.lm import views as V

    _, seq, sites = picked
    toks = tok.tokens(seq)
    n = len(toks)
    blanks = [b for b in (state.get("blanks") or []) if 1 <= b <= n]
    if blanks != list(state.get("blanks") or []):
        state.set("blanks", blanks)
    st.pills("Blanks: click tokens to hide them", list(range(1, n + 1)), selection_mode="multi",
             key=state.key("blanks"), format_func=lambda t: f"{toks[t - 1]}{t}",
             help="Each chosen token is replaced by [MASK]; the model predicts what was there.")
    chosen = sorted(int(b) for b in (state.get("blanks") or []) if 1 <= int(b) <= n)
    if not chosen:
        chosen = suggested_blanks(tok, seq, sites)
        st.caption("No blanks chosen: showing suggested ones (" + ", ".join(f"{toks[t - 1]}{t}" for t in chosen)
                   + "), inside and outside the planted motif. Click tokens above to pick your own.")
    pos = [t - 1 for t in chosen]
    if model is None:
        dists = {p: sorted(zip(ngram.vocab, ngram.distribution(toks[max(0, p - ngram.order + 1):p])),
                           key=lambda r: -r[1]) for p in pos}
        how = f"the n-gram reads only the {ngram.order - 1} token(s) to the left of each blank"
    else:
        dists = V.fill_blank(model, tok, seq, pos)
        how = ("all blanks are masked at once and the model reads both sides" if objective == "masked" else
               "a causal model reads only what comes before each blank (its next-token guess there)")
    masked = list(toks)
    for p in pos:
        masked[p] = "▢"
    sep = "" if tok.kind == "char" else " "
    st.markdown(f"`{sep.join(masked)}`")
    ts = token_sites(tok, seq, sites)
    if ts:
        st.caption("Planted: " + ", ".join(f"**{m}** at tokens {a + 1}–{b}" for m, a, b in ts) + f" · {how}.")
    else:
        st.caption(how[:1].upper() + how[1:] + ".")
    if tok.kind == "kmer_overlap" and model is not None and objective == "masked":
        st.caption(f"⚠️ Overlapping {tok.k}-mers: each neighbour of a blank shares {tok.k - 1} of its letters, so "
                   f"one hidden token can be read off its neighbours. DNABERT hides {tok.k} neighbouring tokens at once "
                   "for this reason; hide a run of neighbours here to see the difference.")
    hits = sum(1 for p in pos if dists[p] and dists[p][0][0] == toks[p])
    st.markdown(f"Top guess right at **{hits} of {len(pos)}** blanks (chance about {1 / (tok.vocab_size - 4):.2f} "
                "each). The outlined bar is the hidden token.")
    letters = tok.vocab[tok.n_special:]
    if tok.kind == "char":
        from playground.plots.dna import figure_png

        probs = np.array([[dict(dists[p]).get(a, 0.0) for a in letters] for p in pos])
        fig = PL.fill_blank_logo(probs, letters, [f"{toks[p]}{p + 1}" for p in pos],
                                 "Predicted letter at each blank (height = probability)")
        st.image(figure_png(fig, dpi=110), width="content")
    st.plotly_chart(PL.fill_blank_figure([(f"blank {toks[p]}{p + 1}", dists[p]) for p in pos],
                                         [toks[p] for p in pos]), key="lm.fill_bars", config=png_config("lm_fill"))


def continue_view(state: PageState, model, tok, corpus, picked, ngram=None) -> None:
    from playground.lm import views as V

    ss = st.session_state
    _, seq, sites = picked
    default = seq[: max(tok.k, len(seq) // 4)]
    a, b = st.columns([3, 2])
    a.text_input("Prompt (empty: the start of the validation sequence)", key=state.key("prompt"), max_chars=200,
                 placeholder=default)
    b.number_input("Tokens to generate", 1, 400, key=state.key("n_new"))
    c1, c2, c3 = st.columns([2, 2, 1])
    c1.slider("Temperature", 0.1, 3.0, step=0.1, key=state.key("temperature"),
              help="Divides the logits: below 1 the likely tokens get likelier (repetitive), above 1 the "
                   "distribution flattens (random).")
    c2.number_input("Top-k (0 = all tokens)", 0, 100, key=state.key("top_k"),
                    help="Sample only among the k most likely tokens.")
    slot = state.slot("sample")
    c3.button("🎲 Again", on_click=lambda: ss.__setitem__(slot, int(ss.get(slot, 0)) + 1),
              help="Another sample (the same settings, the next seed).")
    prompt = (state.get("prompt") or default).strip().upper()
    alphabet = set(tok.letters)
    bad = sorted({c for c in prompt if c not in alphabet})
    if bad:
        show_error(f"The prompt has letters the model does not know: {' '.join(bad)}.",
                   f"Use only {' '.join(tok.letters)}.")
        return
    sample_seed = int(state.get("seed")) + int(ss.get(slot, 0))
    if model is None:
        toks = ngram.generate(int(state.get("n_new")), tok.tokens(prompt), seed=sample_seed,
                              temperature=float(state.get("temperature")))
        text = prompt + "".join(t if tok.kind == "kmer_disjoint" else t[-1] for t in toks[len(tok.tokens(prompt)):])
    else:
        text = V.continue_sequence(model, tok, prompt, int(state.get("n_new")), float(state.get("temperature")),
                                   int(state.get("top_k")), sample_seed)
    new = text[len(prompt):]
    st.markdown(f"**Prompt** `{prompt}` → **continued** (sample {int(ss.get(slot, 0)) + 1}):")
    st.code(prompt + new, language=None, wrap_lines=True)
    motifs = getattr(corpus, "motifs", []) or []
    for m in motifs[:2]:
        cons = m.consensus
        st.caption(f"The planted **{m.label}** consensus `{cons}` "
                   + ("appears in the generated part ✅" if cons in new else "does not appear in the generated part")
                   + " (a random sequence of this length would almost never contain it).")
    if model is not None and getattr(model.spec, "objective", "") == "masked":
        st.caption("A masked model is not made to generate: the page appends a [MASK] and fills it, one token at a "
                   "time. A causal (GPT) model is trained for exactly this.")


def surprise_view(state: PageState, model, tok, corpus, picked, reference: dict, ngram=None) -> None:
    from playground.lm import views as V

    _, seq, sites = picked
    ref = V.ngram_surprise(reference["model"], tok, seq)
    if model is None:
        res = V.ngram_surprise(ngram, tok, seq)
        other = {f"best n-gram (n={reference['order']})": ref["bits"]} if ngram is not reference["model"] else {}
    else:
        res = V.surprise(model, tok, seq)
        other = {f"best n-gram (n={reference['order']})": ref["bits"]}
    labels = [f"{t}{i + 1}" for i, t in enumerate(res["tokens"])]
    ts = token_sites(tok, seq, sites)
    bits = np.asarray(res["bits"], dtype=float)
    shown = np.where(np.isfinite(bits), bits, np.nan)
    st.plotly_chart(PL.surprise_figure(labels, shown, ts, L.uniform_bits(tok), other), key="lm.surprise",
                    config=png_config("lm_surprise"))
    inside = np.zeros(len(bits), bool)
    for _, a, b in ts:
        inside[a:b] = True
    parts = [f"mean **{np.nanmean(shown):.2f} bits** per token"]
    if inside.any() and (~inside).any():
        parts.append(f"inside the motif **{np.nanmean(shown[inside]):.2f}**, "
                     f"background **{np.nanmean(shown[~inside]):.2f}**")
    st.markdown(" · ".join(parts) + f" (uniform {L.uniform_bits(tok):.2f}).")
    st.caption("Surprise = −log₂ P(the true token). " + (
        "A masked model hides each token in turn and predicts it from both sides (pseudo-likelihood). "
        if model is not None and model.spec.objective == "masked" else
        "Each token is predicted from the tokens before it. ") +
        "Once the model knows the motif, its positions become predictable (low bars); random background stays "
        "near the uniform line.")


def attention_view(state: PageState, model, tok, corpus, picked) -> None:
    from playground.lm import views as V
    from playground.plots.attention import attention_grid_figure, attention_heatmap_figure

    if model is None:
        st.info("An n-gram model has no attention: it reads a fixed window of n − 1 tokens. Choose a Transformer.")
        return
    _, seq, sites = picked
    maps = V.attention_maps(model, tok, seq)
    n_pos = len(maps.labels)
    shown = maps
    if n_pos > L.WINDOW:
        if int(state.get("win_start")) > n_pos - L.WINDOW + 1:
            state.set("win_start", 1)
        start = int(st.slider("Zoom: window of positions starting at", 1, n_pos - L.WINDOW + 1,
                              key=state.key("win_start")))
        shown = maps.window(start - 1, start - 1 + L.WINDOW)
        st.caption(f"Showing positions {start}–{start + L.WINDOW - 1} of {n_pos} ([CLS] is position 1).")
    marks = [shown.positions_of(a, b) for _, a, b in sites[:2]] or None
    st.plotly_chart(attention_grid_figure(shown.weights, shown.labels, marks), key="lm.attn_grid",
                    config=png_config("lm_attn_grid"))
    causal = model.spec.objective == "causal"
    st.caption("Row = query (the position that looks), column = key (what it looks at); every row sums to 1. "
               + ("The causal mask makes the upper triangle exactly 0: no position sees the future."
                  if causal else "A masked model looks both ways."))
    l1, l2 = st.columns([1, 3])
    if int(state.get("layer")) > maps.n_layers:
        state.set("layer", 1)
    l1.number_input("Layer (large map)", 1, maps.n_layers, step=1, key=state.key("layer"))
    layer = int(state.get("layer"))
    names = tuple(m for m, _, _ in sites[:2])
    l2.plotly_chart(attention_heatmap_figure(shown.head_average()[layer - 1], shown.labels,
                                             f"Layer {layer}, average of the {maps.n_heads} heads", marks,
                                             motif_names=names if len(names) == 2 else ("motif", "motif B")),
                    key="lm.attn_big", config=png_config("lm_attn_big"))


def embedding_view(model, tok) -> None:
    from playground.lm import views as V

    if model is None:
        st.info("An n-gram model has no embeddings: each token is just a row of its count table. Choose a "
                "Transformer.")
        return
    res = V.token_embedding_pca(model, tok)
    labels = res["labels"]
    if tok.alphabet == "protein" and tok.kind == "char":
        groups = [PROTEIN_GROUPS.get(t, "other") for t in labels]
    elif tok.alphabet == "dna" and tok.kind != "char":
        groups = [f"GC {sum(c in 'GC' for c in t)}/{tok.k}" for t in labels]
    else:
        groups = None
    st.plotly_chart(PL.embedding_figure(res["xy"], labels, res["explained"], groups), key="lm.pca",
                    config=png_config("lm_embeddings"))
    st.caption(f"Each point is one token's {model.spec.d_model}-number embedding vector, projected on the two "
               "directions along which the embeddings vary most (PCA). Tokens the model uses alike end up close "
               "together; at epoch 0 the positions are random." +
               (" Colours: amino-acid classes (the model never saw them)." if tok.alphabet == "protein" and
                tok.kind == "char" else " Colours: GC content of the k-mer." if groups else ""))


def page_link(path: str, label: str, icon: str) -> None:
    """A link to another page (plain text where the page runs on its own, as in AppTest)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(path, label=label, icon=icon)
    except (StreamlitAPIException, KeyError):
        st.markdown(f"{icon} {label}")


def _snapshot(state: PageState, run, trainer) -> None:
    """Keep the language model as it is now as the fine-tune tab's pretrained encoder."""
    sd = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}
    st.session_state[state.slot("ft_snap")] = {"signature": run.signature, "steps": trainer.steps,
                                               "epoch": trainer.epoch, "spec": run.spec, "state_dict": sd}


def _pretrained(snap: dict):
    from playground.models.base import build_model

    model = build_model(snap["spec"], 0)
    model.load_state_dict(snap["state_dict"])
    return model.eval()


def _finetune_script(pair, tok) -> str:
    """The fine-tune run as a standalone PyTorch script (``--pretrained trained_lm.pt`` loads the LM's body,
    without it the same network trains from scratch)."""
    from playground.codegen import finetune_script_for

    return finetune_script_for(pair, tok, title="Language models · pretrain → fine-tune")


def finetune_tab(state: PageState, run, trainer, tok, corpus, live_playing: bool = False) -> None:
    """Pretrain -> fine-tune: the student's LM body with a new head vs the same architecture from
    scratch, on the same labelled split; the labelled-set size; both curves; a size sweep."""
    from playground.ui import LiveTraining
    from playground.ui.evaluation import test_panel
    from playground.ui.runs import model_panel, track

    ss = st.session_state
    K = state.key
    st.markdown("Reuse what your language model learned **without labels**: its embedding and Transformer layers, "
                "with a **new classification head**, fine-tuned on a small labelled task, against **the same "
                "architecture trained from scratch** on the same split. With few labels, pretraining should pay off.")
    page_link("pages/4_Protein_Language_Model.py", "The same comparison with ESM-2, a masked LM pretrained on "
              "millions of proteins", "🧪")
    if trainer is None:
        st.info("An n-gram model has no encoder to reuse. Choose the **masked** (or causal) Transformer above and "
                "pretrain it (▶ Play), then come back here.")
        return
    c = st.columns([1.2, 1.4, 1, 1])
    c[0].radio("Labelled task", ("motif", "upload"), key=K("ft_task"),
               format_func={"motif": "Planted motif: yes / no", "upload": "Upload a labelled file"}.get)
    c[1].select_slider("Labelled training sequences", L.FT_SIZES, key=K("ft_n"),
                       format_func=lambda n: "all" if n == 0 else str(n),
                       help="How many labelled sequences both models may learn from. Validation and test stay whole.")
    c[2].select_slider("Learning rate", L.FT_LRS, key=K("ft_lr"), format_func=lambda v: f"{v:g}")
    c[3].number_input("Epochs", 1, 100, key=K("ft_epochs"), help="Each run trains at most this many epochs "
                      "(early stopping on the validation loss may end it sooner).")
    values = state.values()
    up = None
    if values["ft_task"] == "upload":
        up = kept_upload(state, "ft_uploader", "ft_upload", "ft_forget", "Labelled file (CSV or FASTA)")
        if up is None:
            st.info(LABELLED_EXAMPLE)
            return
    try:
        labelled = cached(state, "labelled", (L.corpus_inputs(values, ss.get(state.slot("upload"))),
                                              values["ft_task"], up[0] if up else "", digest(up[1]) if up else ""),
                          lambda: L.labelled_set(values, corpus, up))
    except (PlaygroundError_, ValueError) as e:
        show_error(f"Could not make the labelled task: {getattr(e, 'message', e)}",
                   getattr(e, "hint", None) or "Upload another file, or use the planted-motif task.")
        return
    st.caption(labelled.description + " " + " ".join(f"⚠️ {w}" for w in labelled.warnings[:2]))
    snap = ss.get(state.slot("ft_snap"))
    if snap is not None and snap["signature"] != run.signature:
        snap = None
    now = f"epoch {trainer.epoch}"
    st.button(f"🎯 Fine-tune from the language model as it is now ({now})", key="lm.ft_take", type="primary",
              on_click=_snapshot, args=(state, run, trainer), disabled=live_playing,
              help="Copies the language model's current weights as the pretrained encoder (the language model "
                   "itself can go on training). Pause it first.")
    if snap is None:
        st.info("Pretrain the language model first (▶ Play above, a few epochs), pause, then press the button: "
                "both fine-tune runs start from there." if trainer.epoch == 0 else
                "Press the button to start both fine-tune runs from the language model as it is now.")
        return
    if snap["epoch"] == 0:
        st.warning("The encoder was taken at epoch 0: it is random, so 'pretrained' and 'from scratch' differ only by "
                   "their random initial weights. Pretrain the language model first to see what pretraining buys.",
                   icon="🎲")
    live = LiveTraining("lm_ft")
    sig = L.finetune_signature(values, run.signature, snap["steps"], up)
    try:
        pair = live.ensure(sig, lambda: L.finetune_pair(values, _pretrained(snap), tok, labelled))
    except (PlaygroundError_, ValueError, RuntimeError) as e:
        show_error(f"Could not set up the fine-tune runs: {getattr(e, 'message', e)}",
                   getattr(e, "hint", None) or "Change the fine-tune settings.")
        return
    data = pair.data
    inp = L.input_spec(tok, pair.spec.max_len)
    ds_name = f"{labelled.description.split(':')[0][:40]} · {data.meta['n_labels']} labels"
    for key, name in (("lm_ft.pretrained", "pretrained"), ("lm_ft.scratch", "scratch")):
        track(key, pair.pretrained if name == "pretrained" else pair.scratch, pair.spec, page="lm", dataset=ds_name,
              input=inp, label_names=list(labelled.class_names),
              model=f"LM classifier ({'pretrained + new head' if name == 'pretrained' else 'from scratch'})",
              parameters={"encoder": f"pretrained ({snap['epoch']} epochs)" if name == "pretrained" else "from scratch",
                          "labels": data.meta["n_labels"]})
    st.caption(f"Split of the {len(labelled):,} labelled sequences: **{data.meta['n_labels']}** of the "
               f"{data.meta['pool']} in the training pool used, {len(data.y_val)} validation, {len(data.y_test)} test "
               f"(held out) · the encoder was pretrained for **{snap['epoch']} epochs** · "
               f"{pair.spec.describe()}.")
    live.controls()

    def draw(p) -> None:
        st.markdown(f"**Epoch {p.epoch} of {p.max_epochs}** · both runs see the same labelled sequences in the same "
                    "order.")
        if p.diverged:
            st.error(p.diverged)
        hist = {n: t.history for n, t in p.trainers.items()}
        a, b = st.columns(2)
        a.plotly_chart(PL.finetune_figure(hist, "val_accuracy", "validation accuracy", 0.5 if data.task == "binary"
                                          else None), key="lm.ft_acc", config=png_config("lm_ft_accuracy"))
        b.plotly_chart(PL.finetune_figure(hist, "val_loss", "validation loss", title="Fine-tuning: validation loss "
                                          "per epoch"), key="lm.ft_loss", config=png_config("lm_ft_loss"))
        best = p.best_val()
        gap = best[L.FinetunePair.NAMES[0]] - best[L.FinetunePair.NAMES[1]]
        if p.epoch > 0 and math.isfinite(gap):
            st.markdown(f"Best validation accuracy: pretrained **{best[L.FinetunePair.NAMES[0]]:.3f}**, from scratch "
                        f"**{best[L.FinetunePair.NAMES[1]]:.3f}** → pretraining {'gains' if gap >= 0 else 'loses'} "
                        f"**{abs(gap):.3f}** with {data.meta['n_labels']} labels.")
        st.dataframe(pd.DataFrame(p.table()), hide_index=True)

    live.run(draw)
    if pair.done and not live.playing:      # both runs are over: the one look the test sets are for
        for t in pair.trainers.values():
            if t.test_scores is None:
                t.score_test()
    if live.playing:
        st.caption("💾 Pause to save the fine-tuned classifier or to score the held-out test set.")
    else:
        t1, t2 = st.columns(2)
        for col, (name, t) in zip((t1, t2), pair.trainers.items()):
            with col:
                st.caption(f"**{name}**")
                test_panel(t, ("accuracy",), key=f"lm.ft_test.{name}")
        model_panel(pair.pretrained, pair.spec, page="lm", dataset=ds_name, label_names=list(labelled.class_names),
                    input=inp, settings={"encoder": f"pretrained ({snap['epoch']} epochs)"}, key="lm_ft",
                    title="💾 Save & export: the fine-tuned classifier", code=lambda: _finetune_script(pair, tok))
    st.markdown("##### How each does with fewer labels")
    sizes = [n for n in L.FT_SIZES if n == 0 or n < data.meta["pool"]]
    sweep_key = (sig, tuple(sizes))
    if st.button(f"Train both at {', '.join('all' if n == 0 else str(n) for n in sizes)} labels "
                 f"({values['ft_epochs']} epochs each)", key="lm.ft_sweep"):
        bar = st.progress(0.0, text="Fine-tuning …")
        rows = L.size_sweep(values, _pretrained(snap), tok, labelled, sizes,
                            progress=lambda i, n, msg: bar.progress(i / n, text=msg))
        bar.empty()
        ss[state.slot("sweep")] = (sweep_key, rows)
    got = ss.get(state.slot("sweep"))
    if got is not None and got[0] == sweep_key:
        st.plotly_chart(PL.size_curve_figure(got[1]), key="lm.ft_sweep_fig", config=png_config("lm_ft_sizes"))
        st.caption("Best validation accuracy of each run (validation chooses; the test set is not looked at here).")


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


__all__ = ["kept_upload", "cached", "ngram_panel", "lm_tiles", "fill_blank_view", "continue_view", "surprise_view",
           "attention_view", "embedding_view", "finetune_tab", "token_sites", "suggested_blanks", "UPLOAD_EXAMPLE"]
