"""What self-attention looks at, with the numbers the trained model really uses.

    maps = attention_maps(model, "ACGT...", DNA)       # every layer and head for one sequence
    maps.weights.shape                                 # (layers, heads, positions, positions)
    maps.head_average()                                # (layers, positions, positions)
    steps = attention_steps(model, "ACGTACGT", DNA, layer=0, head=0)
    steps.q, steps.k, steps.v, steps.scores, steps.weights, steps.output
    positional_encoding(model, 64)                     # (64, d_model): what is added to the embeddings

Works for the Transformer (one attention position per token, plus CLS) and the hybrid CNN +
Transformer (one attention position per max-pooled window of bases; ``maps.spans`` says which
bases each position stands for). Padding is cut off: only real positions are returned.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from playground.encoding import DNA, Alphabet, decode, tokenize
from playground.models.hybrid import HybridCNNTransformer
from playground.models.transformer import PositionalEncoding, TransformerClassifier, TransformerSpec


def has_attention(model: nn.Module) -> bool:
    return isinstance(model, (TransformerClassifier, HybridCNNTransformer))


def _require(model: nn.Module) -> None:
    if not has_attention(model):
        raise ValueError(f"a {type(model).__name__} has no attention layers: choose the Transformer or the "
                         "hybrid CNN+Transformer to see attention maps")


def _tokens(seq, alphabet: Alphabet) -> torch.Tensor:
    if isinstance(seq, str):
        if not seq:
            raise ValueError("the sequence is empty")
        return tokenize([seq], alphabet)
    t = torch.as_tensor(seq, dtype=torch.long)
    return t[None] if t.dim() == 1 else t


@dataclass
class AttentionMaps:
    weights: np.ndarray            # (layers, heads, n, n): row = query position, column = key position
    labels: list[str]              # one axis label per attention position
    spans: list[tuple[int, int]]   # bases (0-based start, end exclusive) each position stands for; CLS: (0, 0)
    sequence: str
    kind: str                      # 'tokens' (Transformer) or 'pooled' (hybrid)

    @property
    def n_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def n_heads(self) -> int:
        return self.weights.shape[1]

    def head_average(self) -> np.ndarray:
        """(layers, n, n): the mean over heads."""
        return self.weights.mean(1)

    def positions_of(self, start: int, end: int) -> list[int]:
        """Attention positions that cover any base in [start, end) (0-based)."""
        return [i for i, (s, e) in enumerate(self.spans) if e > s and s < end and e > start]

    def window(self, start: int, end: int) -> "AttentionMaps":
        """Only the positions ``start..end-1`` (queries and keys): a zoom for long sequences."""
        start, end = max(0, int(start)), min(len(self.labels), int(end))
        if end <= start:
            raise ValueError("the window is empty")
        return AttentionMaps(self.weights[:, :, start:end, start:end], self.labels[start:end],
                             self.spans[start:end], self.sequence, self.kind)


@torch.no_grad()
def attention_maps(model: nn.Module, seq, alphabet: Alphabet = DNA) -> AttentionMaps:
    """Attention weights of every layer and head for one sequence (a string or token ids)."""
    _require(model)
    tok = _tokens(seq, alphabet)[:1].to(next(model.parameters()).device)
    text = decode(tok[0].tolist(), alphabet)
    n_real = int((tok[0] != 0).sum())
    weights = torch.stack([w[0] for w in model.attention(tok)]).float().cpu().numpy()   # (layers, heads, n, n)
    if isinstance(model, TransformerClassifier):
        offset = 1 if model.has_cls else 0
        keep = offset + n_real
        labels = (["CLS"] if offset else []) + [f"{ch}{i + 1}" for i, ch in enumerate(text)]
        spans = ([(0, 0)] if offset else []) + [(i, i + 1) for i in range(n_real)]
        return AttentionMaps(weights[:, :, :keep, :keep], labels, spans, text, "tokens")
    spans_all = model.position_windows(n_real)
    _, pad = model.pooled_features(tok)
    keep_idx = np.flatnonzero(~pad[0].cpu().numpy())
    spans = [spans_all[i] for i in keep_idx]
    labels = [f"{s + 1}" if e == s + 1 else f"{s + 1}–{e}" for s, e in spans]
    w = weights[:, :, keep_idx][:, :, :, keep_idx]
    return AttentionMaps(w, labels, spans, text, "pooled")


def motif_attention(maps: AttentionMaps, span_a: tuple[int, int], span_b: tuple[int, int]) -> dict:
    """How much the positions of motif A attend to motif B (and back), per layer and head,
    compared with the attention a query would give any key if it spread it evenly (1 / n).

    Returns {'a_to_b': (layers, heads), 'b_to_a': (layers, heads), 'uniform': 1/n,
    'a_positions': [...], 'b_positions': [...]}: a_to_b is the summed weight that queries in A
    put on keys in B, averaged over the queries in A.
    """
    a = maps.positions_of(*span_a)
    b = maps.positions_of(*span_b)
    if not a or not b:
        raise ValueError("a motif lies outside the sequence shown")
    w = maps.weights
    a_to_b = w[:, :, a][:, :, :, b].sum(-1).mean(-1)
    b_to_a = w[:, :, b][:, :, :, a].sum(-1).mean(-1)
    n = w.shape[-1]
    return {"a_to_b": a_to_b, "b_to_a": b_to_a, "uniform_a_to_b": len(b) / n, "uniform_b_to_a": len(a) / n,
            "a_positions": a, "b_positions": b}


# --------------------------------------------------------------------------------------------
# step by step
@dataclass
class AttentionSteps:
    """One head of one layer, computed by hand from the model's weights (float64)."""

    labels: list[str]
    x: np.ndarray          # (n, d_model) what the attention block reads (after LayerNorm for pre-LN)
    w_q: np.ndarray        # (d_model, d_k) this head's slice of W_q (and b_q below)
    w_k: np.ndarray
    w_v: np.ndarray
    b_q: np.ndarray
    b_k: np.ndarray
    b_v: np.ndarray
    q: np.ndarray          # (n, d_k)  Q = x W_q + b_q
    k: np.ndarray          # (n, d_k)
    v: np.ndarray          # (n, d_k)
    scores: np.ndarray     # (n, n)    Q Kᵀ / √d_k
    weights: np.ndarray    # (n, n)    softmax over each row (padded keys: 0)
    output: np.ndarray     # (n, d_k)  weights @ V: this head's output before W_o mixes the heads
    model_weights: np.ndarray   # (n, n) the weights the model itself returned (equal to ``weights``)
    d_k: int
    layer: int
    head: int
    n_heads: int
    norm: str

    @property
    def max_difference(self) -> float:
        """Largest difference between the hand computation and the model's own weights."""
        return float(np.abs(self.weights - self.model_weights).max()) if self.weights.size else 0.0


def _encoder_input(model: nn.Module, tok: torch.Tensor):
    """The vectors that enter the first encoder layer and the padding mask (eval mode)."""
    if isinstance(model, TransformerClassifier):
        return model.embed_tokens(tok)
    x, pad = model.pooled_features(tok)
    return model.positions(x), pad


@torch.no_grad()
def attention_steps(model: nn.Module, seq, alphabet: Alphabet = DNA, layer: int = 0, head: int = 0) -> AttentionSteps:
    """Q, K, V, QKᵀ/√d_k, softmax and output of one head for a (short) sequence."""
    _require(model)
    layers = model.encoder.layers
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer must be 0..{len(layers) - 1}")
    attn = layers[layer].attention
    if not 0 <= head < attn.heads:
        raise ValueError(f"head must be 0..{attn.heads - 1}")
    was = model.training
    model.eval()
    try:
        tok = _tokens(seq, alphabet)[:1].to(next(model.parameters()).device)
        maps = attention_maps(model, tok, alphabet)
        x, pad = _encoder_input(model, tok)
        for lyr in layers[:layer]:
            x, _ = lyr(x, pad)
        xa = layers[layer].attention_input(x)
        _, model_w = attn(xa, pad)
    finally:
        model.train(was)
    n = len(maps.labels)
    keep = np.flatnonzero(~pad[0].cpu().numpy())
    X = xa[0].double().cpu().numpy()
    dk = attn.d_k
    cols = slice(head * dk, (head + 1) * dk)

    def part(lin):
        return lin.weight.double().cpu().numpy()[cols].T, lin.bias.double().cpu().numpy()[cols]

    (wq, bq), (wk, bk), (wv, bv) = part(attn.q), part(attn.k), part(attn.v)
    Q, K, V = X @ wq + bq, X @ wk + bk, X @ wv + bv
    scores = Q @ K.T / math.sqrt(dk)
    masked = np.where(pad[0].cpu().numpy()[None, :], -np.inf, scores)
    e = np.exp(masked - masked.max(1, keepdims=True))
    weights = e / e.sum(1, keepdims=True)
    out = weights @ V
    sel = np.ix_(keep, keep)
    return AttentionSteps(
        labels=maps.labels[:n], x=X[keep], w_q=wq, w_k=wk, w_v=wv, b_q=bq, b_k=bk, b_v=bv,
        q=Q[keep], k=K[keep], v=V[keep], scores=scores[sel], weights=weights[sel], output=out[keep],
        model_weights=model_w[0, head].double().cpu().numpy()[sel], d_k=dk, layer=layer, head=head,
        n_heads=attn.heads, norm=layers[layer].norm)


# --------------------------------------------------------------------------------------------
# positions
@torch.no_grad()
def positional_encoding(model_or_spec, length: int) -> np.ndarray:
    """(length, d_model): the matrix added to the embeddings at each position (zeros for 'none').
    A TransformerSpec gives the sinusoids (or the untrained learned table); a model gives
    what it uses now (a learned table after training)."""
    if length < 1:
        raise ValueError("length must be at least 1")
    if isinstance(model_or_spec, TransformerSpec):
        spec = model_or_spec
        pe = PositionalEncoding(spec.positional, spec.d_model, max(length, spec.max_len))
        return pe.matrix(length).float().cpu().numpy()
    if isinstance(model_or_spec, (TransformerClassifier, HybridCNNTransformer)):
        return model_or_spec.positions.matrix(length).float().cpu().numpy()
    raise ValueError("positional encodings belong to the Transformer and the hybrid CNN+Transformer")


def positional_kind(model_or_spec) -> str:
    if isinstance(model_or_spec, TransformerSpec):
        return model_or_spec.positional
    return model_or_spec.positions.kind
