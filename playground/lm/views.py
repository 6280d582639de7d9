"""What a trained language model has learned, as plain data (numpy, lists, dicts) for the page.

    fill_blank(model, tok, "ACGT...", positions=[3, 7])   # {3: [('A', 0.91), ('C', 0.05), ...], 7: [...]}
    continue_sequence(model, tok, "ACGT", n_new=20, temperature=1.0, top_k=0, seed=0)   # 'ACGT' + 20 letters
    surprise(model, tok, seq)            # {'bits': (n_tokens,), 'tokens', 'spans', 'letter_bits': (n_letters,)}
    ngram_surprise(ngram_model, tok, seq)                 # the same for an n-gram model
    token_embedding_pca(model, tok)      # {'xy': (V, 2), 'labels', 'explained': (2,)}
    attention_maps(model, tok, seq)      # playground.attention.AttentionMaps (the sequence page's views)
    motif_accuracy(model, tok, corpus)   # masked accuracy at planted-motif vs background positions

Positions are **token** positions (0-based, [CLS] not counted); for single letters they are
letter positions. ``tok.token_spans(seq)`` gives the letters each token covers.
A masked model fills blanks from both sides; a causal model predicts a position from its prefix
only (``fill_blank`` then gives the next-token distribution there, the blanks after it unused).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from playground.attention import AttentionMaps
from playground.lm.tokens import CLS_ID, MASK_ID, N_SPECIAL, Tokenizer


def _device(model) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _is_causal(model) -> bool:
    return getattr(getattr(model, "spec", None), "objective", "masked") == "causal"


def _row(tok: Tokenizer, seq) -> torch.Tensor:
    """(1, 1 + n) ids: [CLS] + the tokens of ``seq`` (a string, or a list of ids without [CLS])."""
    ids = tok.encode(seq) if isinstance(seq, str) else [int(i) for i in seq]
    if not ids:
        raise ValueError("the sequence is empty (or shorter than one token)")
    return torch.tensor([[CLS_ID, *ids]], dtype=torch.long)


@torch.no_grad()
def _logits(model, x: torch.Tensor) -> torch.Tensor:
    was = model.training
    model.eval()
    out = model(x.to(_device(model))).float().cpu()
    model.train(was)
    return out


def _ranked(tok: Tokenizer, probs: np.ndarray, top: int | None) -> list[tuple[str, float]]:
    order = np.argsort(-probs[N_SPECIAL:], kind="stable")[: top or None] + N_SPECIAL
    return [(tok.vocab[i], float(probs[i])) for i in order]


def fill_blank(model, tok: Tokenizer, seq, positions, top: int | None = None) -> dict[int, list[tuple[str, float]]]:
    """Mask the token ``positions`` of ``seq`` and read the model's distribution at each: {position:
    [(token, probability) ...]} over the ordinary tokens, most likely first (``top``: only those).
    Masked model: all given positions are masked at once (one forward pass). Causal model: the
    next-token distribution at each position given the tokens before it."""
    x = _row(tok, seq)
    n = x.shape[1] - 1
    positions = sorted({int(p) for p in positions})
    if not positions:
        return {}
    bad = [p for p in positions if not 0 <= p < n]
    if bad:
        raise ValueError(f"position {bad[0]} is outside the sequence's {n} tokens (0..{n - 1})")
    if _is_causal(model):
        probs = torch.softmax(_logits(model, x)[0], -1).numpy()          # row t predicts token t+1
        return {p: _ranked(tok, probs[p], top) for p in positions}      # token p sits at row p+1: read row p
    xm = x.clone()
    xm[0, [p + 1 for p in positions]] = MASK_ID
    probs = torch.softmax(_logits(model, xm)[0], -1).numpy()
    return {p: _ranked(tok, probs[p + 1], top) for p in positions}


def continue_sequence(model, tok: Tokenizer, prompt: str, n_new: int = 20, temperature: float = 1.0,
                      top_k: int = 0, seed: int = 0) -> str:
    """``prompt`` followed by ``n_new`` sampled tokens (as letters). Temperature < 1 sharpens, > 1 flattens;
    ``top_k`` > 0 samples among the k most likely only; temperature 0 takes the most likely. A causal
    model samples left to right from its next-token distribution; a masked model appends a [MASK] and
    fills it, one token at a time. Special tokens are never sampled."""
    g = torch.Generator().manual_seed(int(seed))
    ids = [CLS_ID, *tok.encode(prompt)] if prompt else [CLS_ID]
    causal = _is_causal(model)
    max_len = int(getattr(getattr(model, "spec", None), "max_len", 10 ** 6))
    for _ in range(int(n_new)):
        ctx = ids[-(max_len - 1):] if not causal else ids[-max_len:]
        x = torch.tensor([ctx + ([] if causal else [MASK_ID])], dtype=torch.long)
        logits = _logits(model, x)[0, -1].clone()
        logits[:N_SPECIAL] = -math.inf
        if temperature <= 0:
            nxt = int(logits.argmax())
        else:
            logits = logits / float(temperature)
            if top_k and top_k < len(logits) - N_SPECIAL:
                cut = torch.topk(logits, int(top_k)).values[-1]
                logits[logits < cut] = -math.inf
            nxt = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=g))
        ids.append(nxt)
    return tok.decode(ids)


def _letter_bits(tok: Tokenizer, n_letters: int, bits: np.ndarray) -> np.ndarray:
    """Per letter: the mean surprise of the tokens that cover it (NaN where none does)."""
    total, count = np.zeros(n_letters), np.zeros(n_letters)
    for (a, b), v in zip(tok.token_spans(n_letters), bits):
        total[a:b] += v
        count[a:b] += 1
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@torch.no_grad()
def surprise(model, tok: Tokenizer, seq: str, batch: int = 256) -> dict:
    """Surprise −log₂ p(token) at every token of ``seq``: a masked model masks each position in turn
    (all copies in batches: the pseudo-log-likelihood); a causal model reads p(token t | tokens < t).
    Returns {'bits': (n,), 'tokens': [...], 'spans': [(start, end)], 'letter_bits': (letters,),
    'mean_bits'}; low bits = predictable (a motif), ~2 bits = a random base."""
    x = _row(tok, seq)
    ids = x[0, 1:]
    n = len(ids)
    if _is_causal(model):
        logp = torch.log_softmax(_logits(model, x)[0, :-1], -1)
        bits = (-logp[torch.arange(n), ids] / math.log(2)).numpy()
    else:
        out = np.empty(n)
        for s in range(0, n, batch):
            pos = torch.arange(s, min(n, s + batch))
            xm = x.repeat(len(pos), 1)
            xm[torch.arange(len(pos)), pos + 1] = MASK_ID
            logp = torch.log_softmax(_logits(model, xm)[torch.arange(len(pos)), pos + 1], -1)
            out[s: s + len(pos)] = (-logp[torch.arange(len(pos)), ids[pos]] / math.log(2)).numpy()
        bits = out
    return {"bits": bits, "tokens": [tok.vocab[i] for i in ids.tolist()], "spans": tok.token_spans(seq),
            "letter_bits": _letter_bits(tok, len(seq), bits), "mean_bits": float(np.mean(bits))}


def ngram_surprise(ngram_model, tok: Tokenizer, seq: str) -> dict:
    """The n-gram model's surprise along ``seq`` (same keys as ``surprise``)."""
    toks = tok.tokens(seq)
    bits = ngram_model.surprise(toks)
    return {"bits": bits, "tokens": toks, "spans": tok.token_spans(seq),
            "letter_bits": _letter_bits(tok, len(seq), bits), "mean_bits": float(np.mean(bits)) if len(bits) else math.nan}


def token_embedding_pca(model, tok: Tokenizer, include_special: bool = False) -> dict:
    """The token embedding table projected on its first two principal components:
    {'xy': (V, 2), 'labels': [...], 'explained': (2,) share of variance, 'ids'}."""
    w = model.body.embed.weight.detach().float().cpu().numpy()
    ids = np.arange(1 if include_special else N_SPECIAL, w.shape[0])
    e = w[ids] - w[ids].mean(0)
    _, s, vt = np.linalg.svd(e, full_matrices=False)
    xy = e @ vt[:2].T
    if xy.shape[1] < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    var = s ** 2
    explained = (var[:2] / var.sum()) if var.sum() > 0 else np.zeros(2)
    return {"xy": xy, "labels": [tok.vocab[i] for i in ids], "explained": np.pad(explained, (0, 2 - len(explained))),
            "ids": ids.tolist()}


def attention_maps(model, tok: Tokenizer, seq: str) -> AttentionMaps:
    """Every layer's and head's attention for ``seq`` ([CLS] first, then one position per token), as
    the sequence page's ``AttentionMaps`` (plots.attention.attention_grid_figure reads it)."""
    x = _row(tok, seq).to(_device(model))
    weights = torch.stack([w[0] for w in model.attention(x)]).float().cpu().numpy()
    toks = tok.tokens(seq)
    spans = [(0, 0)] + tok.token_spans(seq)
    labels = ["CLS"] + [f"{t}{i + 1}" for i, t in enumerate(toks)]
    return AttentionMaps(weights, labels, spans, seq, "tokens")


@torch.no_grad()
def motif_accuracy(model, tok: Tokenizer, corpus, part: str = "val", seed: int = 0, rate: float = 0.15,
                   batch: int = 128) -> dict:
    """A masked model's accuracy on masked tokens inside planted motifs vs in the background of
    ``part`` ([MASK] at a seeded 15 % of the tokens). A token counts as motif when all its letters
    are motif bases. Returns {'motif', 'background', 'n_motif', 'n_background', 'chance'} (chance:
    the most frequent token's share of the background targets)."""
    from playground.lm.masking import mask_tokens

    seqs, _ = corpus.part(part)
    masks = corpus.motif_mask(part)
    x = tok.encode_batch(seqs)
    inside = torch.zeros_like(x, dtype=torch.bool)
    for i, (s, m) in enumerate(zip(seqs, masks)):
        for j, (a, b) in enumerate(tok.token_spans(s)):
            inside[i, j + 1] = bool(m[a:b].all())
    g = torch.Generator().manual_seed(int(seed) + 7)
    xin, y = mask_tokens(x, g, rate, 1.0, 0.0, tok.vocab_size)
    preds = torch.cat([_logits(model, xin[i: i + batch]).argmax(-1) for i in range(0, len(x), batch)])
    target = y != -100
    hit = (preds == y) & target
    mot, bg = target & inside, target & ~inside
    counts = torch.bincount(y[bg], minlength=tok.vocab_size) if bg.any() else torch.zeros(1)
    return {"motif": float(hit[mot].sum() / mot.sum()) if mot.any() else math.nan,
            "background": float(hit[bg].sum() / bg.sum()) if bg.any() else math.nan,
            "n_motif": int(mot.sum()), "n_background": int(bg.sum()),
            "chance": float(counts.max() / counts.sum()) if bg.any() else math.nan}
