"""A Transformer encoder for token sequences, written out like the course slides.

    TransformerSpec(vocab_size=6, d_model=32, heads=4, layers=2, ff=64, pooling="mean", n_outputs=1)

reads DNA tokens (0 = padding, A=1 C=2 G=3 T=4 N=5), embeds them, adds a positional encoding
and runs ``layers`` encoder layers. Each layer is

    attention:     A = softmax(Q Kᵀ / √d_k) V      for every head, with padded keys masked out
    residual:      x = x + Dropout(A W_o)
    feed-forward:  x = x + Dropout(W₂ GELU(W₁ x))

with LayerNorm before (pre-LN) or after (post-LN, the 2017 paper) each block. Every layer
returns its attention weights (batch, heads, queries, keys), so the attention maps are the
numbers the model really used. Pooling turns the per-position vectors into one vector per
sequence: the CLS token's vector or the mean over real (non-padded) positions; with
``pooling="per_position"`` the model labels every position (output (batch, length, classes)).
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F

from playground.encoding import padding_mask
from playground.models.base import ModelSpec, register

POSITIONAL = {"sinusoidal": "Sinusoidal (fixed)", "learned": "Learned", "none": "None"}
POOLING = {"mean": "Mean over positions", "cls": "CLS token", "per_position": "Per position (labelling)"}
NORM = {"pre": "Pre-LN (before each block)", "post": "Post-LN (after each block, 2017 paper)"}


def sinusoidal_encoding(length: int, d_model: int) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)),  PE[pos, 2i+1] = cos(pos / 10000^(2i/d)); (length, d_model)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    i = torch.arange(0, d_model, 2, dtype=torch.float32)
    angle = pos / torch.pow(10000.0, i / d_model)
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe


class PositionalEncoding(nn.Module):
    """Adds position information to token vectors: fixed sinusoids, a learned table, or nothing."""

    def __init__(self, kind: str, d_model: int, max_len: int):
        super().__init__()
        if kind not in POSITIONAL:
            raise ValueError(f"positional encoding must be one of {sorted(POSITIONAL)}")
        self.kind, self.d_model, self.max_len = kind, d_model, max_len
        self.table = nn.Embedding(max_len, d_model) if kind == "learned" else None
        if self.table is not None:
            nn.init.normal_(self.table.weight, std=0.02)
        # the fixed sinusoids, computed once (not a parameter, not saved)
        self.register_buffer("sinusoids", sinusoidal_encoding(max_len, d_model) if kind == "sinusoidal"
                             else torch.zeros(0), persistent=False)

    def matrix(self, length: int) -> torch.Tensor:
        """The (length, d_model) matrix that is added to the embeddings."""
        if self.kind == "sinusoidal":
            if length <= len(self.sinusoids):
                return self.sinusoids[:length]
            return sinusoidal_encoding(length, self.d_model).to(self.sinusoids.device)
        if self.kind == "learned":
            if length > self.max_len:
                raise ValueError(f"sequence of {length} positions is longer than the learned positional "
                                 f"table ({self.max_len}); raise max_len or use sinusoidal encoding")
            return self.table.weight[:length]
        return torch.zeros(length, self.d_model, device=self.sinusoids.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return x
        return x + self.matrix(x.shape[1])


class MultiHeadSelfAttention(nn.Module):
    """Scaled dot-product self-attention with several heads.

    Q = x W_q, K = x W_k, V = x W_v are split into ``heads`` pieces of d_k = d_model / heads;
    each head computes softmax(Q Kᵀ / √d_k) and mixes the V rows with those weights; the heads
    are concatenated and projected by W_o. Padded keys get weight exactly 0.
    """

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0):
        """``dropout`` here drops attention weights (0 = off: on a CPU it costs more than the rest)."""
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by the number of heads ({heads})")
        self.d_model, self.heads, self.d_k = d_model, heads, d_model // heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.d_k).transpose(1, 2)          # (B, heads, L, d_k)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None, need_weights: bool = True):
        """x (B, L, d_model), pad (B, L) True at padding -> (output (B, L, d_model), weights (B, heads, L, L)).

        With ``need_weights=False`` (training) the same computation runs as PyTorch's fused
        ``scaled_dot_product_attention`` (faster; no weights returned). The tests check both agree."""
        q, k, v = self.split_heads(self.q(x)), self.split_heads(self.k(x)), self.split_heads(self.v(x))
        if not need_weights and self.dropout.p == 0 and (pad is None or not bool(pad.all(1).any())):
            mask = None if pad is None or not bool(pad.any()) else ~pad[:, None, None, :]
            mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            b, _, n, _ = mixed.shape
            return self.out(mixed.transpose(1, 2).reshape(b, n, self.d_model)), None
        scores = (q / math.sqrt(self.d_k)) @ k.transpose(-2, -1)          # Q Kᵀ / √d_k: (B, heads, L, L)
        if pad is not None and bool(pad.any()):
            keys_pad = pad[:, None, None, :]
            scores = scores.masked_fill(keys_pad, torch.finfo(scores.dtype).min)
            weights = torch.softmax(scores, dim=-1).masked_fill(keys_pad, 0.0)   # exactly 0 for padded keys
        else:
            weights = torch.softmax(scores, dim=-1)
        mixed = (self.dropout(weights) if self.dropout.p > 0 else weights) @ v   # (B, heads, L, d_k)
        b, _, n, _ = mixed.shape
        mixed = mixed.transpose(1, 2).reshape(b, n, self.d_model)          # concatenate the heads
        return self.out(mixed), weights


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, ff: int, dropout: float, activation: str = "gelu"):
        act = nn.GELU() if activation == "gelu" else nn.ReLU()
        super().__init__(nn.Linear(d_model, ff), act, nn.Dropout(dropout), nn.Linear(ff, d_model))


class EncoderLayer(nn.Module):
    """One Transformer encoder layer: self-attention and a feed-forward block, each with a
    residual connection and LayerNorm (pre-LN or post-LN)."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float = 0.1, norm: str = "pre",
                 activation: str = "gelu", attention_dropout: float = 0.0):
        super().__init__()
        if norm not in NORM:
            raise ValueError(f"LayerNorm placement must be one of {sorted(NORM)}")
        self.norm = norm
        self.attention = MultiHeadSelfAttention(d_model, heads, attention_dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.feed_forward = FeedForward(d_model, ff, dropout, activation)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def attention_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the attention block sees (after LayerNorm for pre-LN)."""
        return self.norm1(x) if self.norm == "pre" else x

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None, need_weights: bool = True):
        if self.norm == "pre":
            a, weights = self.attention(self.norm1(x), pad, need_weights)
            x = x + self.dropout(a)
            x = x + self.dropout(self.feed_forward(self.norm2(x)))
        else:
            a, weights = self.attention(x, pad, need_weights)
            x = self.norm1(x + self.dropout(a))
            x = self.norm2(x + self.dropout(self.feed_forward(x)))
        return x, weights


class TransformerEncoder(nn.Module):
    """A stack of encoder layers; returns the final vectors and every layer's attention weights."""

    def __init__(self, d_model: int, heads: int, ff: int, layers: int, dropout: float = 0.1, norm: str = "pre",
                 activation: str = "gelu", attention_dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(d_model, heads, ff, dropout, norm, activation, attention_dropout)
                                    for _ in range(layers))
        self.final_norm = nn.LayerNorm(d_model) if norm == "pre" else nn.Identity()

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None, need_weights: bool = True):
        all_weights = []
        for layer in self.layers:
            x, w = layer(x, pad, need_weights)
            all_weights.append(w)
        return self.final_norm(x), all_weights


def masked_mean(x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
    """Mean over the positions that are not padding: x (B, L, d), pad (B, L) -> (B, d)."""
    if pad is None:
        return x.mean(1)
    keep = (~pad).unsqueeze(-1).to(x.dtype)
    return (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)


@register
@dataclasses.dataclass
class TransformerSpec(ModelSpec):
    kind = "transformer"
    vocab_size: int = 6          # token ids 0..vocab_size-1; 0 = padding (DNA 6, protein 22)
    d_model: int = 32
    heads: int = 4
    layers: int = 2
    ff: int = 64
    dropout: float = 0.1         # after attention, in and after the feed-forward block
    attention_dropout: float = 0.0   # on the attention weights themselves
    norm: str = "pre"            # 'pre' or 'post' LayerNorm
    positional: str = "sinusoidal"   # 'sinusoidal', 'learned', 'none'
    pooling: str = "mean"        # 'mean', 'cls', 'per_position'
    max_len: int = 1024          # longest sequence (learned positions need a table this long)
    n_outputs: int = 1

    def __post_init__(self):
        for name, lo in (("vocab_size", 2), ("d_model", 1), ("heads", 1), ("layers", 1), ("ff", 1),
                         ("max_len", 1), ("n_outputs", 1)):
            if int(getattr(self, name)) < lo:
                raise ValueError(f"{name} must be at least {lo}")
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by the number of heads ({self.heads})")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.attention_dropout < 1.0):
            raise ValueError("dropout must be in [0, 1)")
        for name, options in (("norm", NORM), ("positional", POSITIONAL), ("pooling", POOLING)):
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {sorted(options)}")

    def build(self) -> nn.Module:
        return TransformerClassifier(self)

    def describe(self) -> str:
        out = "one output per position" if self.pooling == "per_position" else f"{self.pooling} pooling"
        return (f"Transformer d={self.d_model}, {self.heads} heads, {self.layers} layers, ff {self.ff}, "
                f"{self.norm}-LN, {self.positional} positions, {out}")


class TransformerClassifier(nn.Module):
    """Embedding + positional encoding -> encoder layers -> pooling -> Linear."""

    def __init__(self, spec: TransformerSpec):
        super().__init__()
        self.spec = spec
        self.embed = nn.Embedding(spec.vocab_size, spec.d_model, padding_idx=0)
        self.cls = nn.Parameter(torch.randn(1, 1, spec.d_model) * 0.02) if spec.pooling == "cls" else None
        extra = 1 if spec.pooling == "cls" else 0
        self.positions = PositionalEncoding(spec.positional, spec.d_model, spec.max_len + extra)
        self.input_dropout = nn.Dropout(spec.dropout)
        self.encoder = TransformerEncoder(spec.d_model, spec.heads, spec.ff, spec.layers, spec.dropout, spec.norm,
                                          attention_dropout=spec.attention_dropout)
        self.head = nn.Linear(spec.d_model, spec.n_outputs)

    @property
    def has_cls(self) -> bool:
        return self.cls is not None

    def embed_tokens(self, tokens: torch.Tensor):
        """Token ids (B, L) -> (vectors (B, L', d) after positions, pad mask (B, L')); L' = L + 1 with CLS."""
        pad = padding_mask(tokens)
        x = self.embed(tokens) * math.sqrt(self.spec.d_model)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(len(x), -1, -1), x], 1)
            pad = torch.cat([torch.zeros_like(pad[:, :1]), pad], 1)
        return self.input_dropout(self.positions(x)), pad

    def encode(self, tokens: torch.Tensor, need_weights: bool = True):
        """(final vectors (B, L', d), pad mask (B, L'), attention weights per layer (B, heads, L', L'))."""
        x, pad = self.embed_tokens(tokens)
        x, weights = self.encoder(x, pad, need_weights)
        return x, pad, weights

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x, pad, _ = self.encode(tokens, need_weights=False)
        if self.spec.pooling == "per_position":
            return self.head(x)                          # (B, L, classes)
        pooled = x[:, 0] if self.spec.pooling == "cls" else masked_mean(x, pad)
        return self.head(pooled)

    @torch.no_grad()
    def attention(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Attention weights of every layer, (B, heads, L', L') each, in eval mode."""
        was = self.training
        self.eval()
        _, _, weights = self.encode(tokens)
        self.train(was)
        return weights
