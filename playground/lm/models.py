"""Transformer language models built from the sequence page's Transformer blocks.

    spec = LMSpec(vocab_size=tok.vocab_size, objective="masked", d_model=64, heads=4, layers=2, ff=128)
    lm = build_model(spec, seed=0)            # LanguageModel: tokens (B, L) -> logits (B, L, vocab)
    lm.attention(tokens)                      # every layer's attention weights (B, heads, L, L)
    clf = classifier_from_lm(lm, n_outputs=1, seed=0)   # the same body, a new classification head

``objective="causal"`` (GPT style): a causal mask lets position t attend to positions <= t only,
and the model is trained to predict token t+1 at position t (``masking.causal_pairs``).
``objective="masked"`` (BERT style): every position attends to every other one, and the model is
trained to fill in masked tokens (``masking.mask_tokens``).

The layers are the playground's own (``playground.models.transformer``: MultiHeadSelfAttention,
FeedForward, EncoderLayer, PositionalEncoding); ``SelfAttention`` adds the causal mask.
The body (embedding, positions, layers) is ``LMBody``; the language model puts a Linear to the
vocabulary on top (``lm_head``), the classifier a pooled Linear to the classes (``head``), so a
pretrained body moves into a classifier with ``load_state_dict``.
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F

from playground.models.base import ModelSpec, build_model, register
from playground.models.transformer import (NORM, POSITIONAL, EncoderLayer, FeedForward, MultiHeadSelfAttention,
                                           PositionalEncoding, TransformerEncoder, masked_mean)

OBJECTIVES = {"masked": "Masked (BERT: fill in the blanks)", "causal": "Causal (GPT: predict the next token)"}
LM_POOLING = {"mean": "Mean over positions", "cls": "The [CLS] position"}


class SelfAttention(MultiHeadSelfAttention):
    """The playground's multi-head self-attention, with an optional causal mask: query t sees keys <= t."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0, causal: bool = False):
        super().__init__(d_model, heads, dropout)
        self.causal = bool(causal)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None, need_weights: bool = True):
        if not self.causal:
            return super().forward(x, pad, need_weights)
        # causal: padding sits after the real tokens, so the causal mask already keeps every real
        # query away from it (a padded query's output is never a target)
        q, k, v = self.split_heads(self.q(x)), self.split_heads(self.k(x)), self.split_heads(self.v(x))
        b, _, n, _ = q.shape
        if not need_weights and self.dropout.p == 0:
            mixed = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.out(mixed.transpose(1, 2).reshape(b, n, self.d_model)), None
        scores = (q / math.sqrt(self.d_k)) @ k.transpose(-2, -1)          # Q Kᵀ / √d_k: (B, heads, L, L)
        future = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(future, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1).masked_fill(future, 0.0)  # exactly 0 on the future
        mixed = (self.dropout(weights) if self.dropout.p > 0 else weights) @ v
        return self.out(mixed.transpose(1, 2).reshape(b, n, self.d_model)), weights


class LMLayer(EncoderLayer):
    """The playground's encoder layer (attention + feed-forward, residuals, LayerNorm) with ``SelfAttention``."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float = 0.1, norm: str = "pre",
                 causal: bool = False):
        nn.Module.__init__(self)
        if norm not in NORM:
            raise ValueError(f"LayerNorm placement must be one of {sorted(NORM)}")
        self.norm = norm
        self.attention = SelfAttention(d_model, heads, 0.0, causal)
        self.norm1 = nn.LayerNorm(d_model)
        self.feed_forward = FeedForward(d_model, ff, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)


class LMEncoder(TransformerEncoder):
    """A stack of ``LMLayer``s (forward: the playground's TransformerEncoder's)."""

    def __init__(self, d_model: int, heads: int, ff: int, layers: int, dropout: float = 0.1, norm: str = "pre",
                 causal: bool = False):
        nn.Module.__init__(self)
        self.layers = nn.ModuleList(LMLayer(d_model, heads, ff, dropout, norm, causal) for _ in range(layers))
        self.final_norm = nn.LayerNorm(d_model) if norm == "pre" else nn.Identity()


class LMBody(nn.Module):
    """Token embedding + positional encoding + encoder layers: (B, L) ids -> (B, L, d_model) vectors."""

    def __init__(self, vocab_size: int, d_model: int, heads: int, layers: int, ff: int, dropout: float,
                 positional: str, norm: str, max_len: int, causal: bool):
        super().__init__()
        self.d_model, self.causal = d_model, causal
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=0)
        # token vectors of unit scale after the √d_model factor (as in Vaswani et al.), so that the
        # positions (sinusoids of amplitude 1, or a learned table of the same scale) are not drowned out:
        # a masked LM has to find its neighbours by position
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)
        with torch.no_grad():
            self.embed.weight[0].zero_()
        self.positions = PositionalEncoding(positional, d_model, max_len)
        if self.positions.table is not None:
            nn.init.normal_(self.positions.table.weight, std=1.0)
        self.input_dropout = nn.Dropout(dropout)
        self.encoder = LMEncoder(d_model, heads, ff, layers, dropout, norm, causal)

    def forward(self, tokens: torch.Tensor, need_weights: bool = False):
        """(vectors (B, L, d), pad mask (B, L) True at padding, attention weights per layer)."""
        pad = tokens == 0
        x = self.input_dropout(self.positions(self.embed(tokens) * math.sqrt(self.d_model)))
        x, weights = self.encoder(x, None if self.causal else pad, need_weights)
        return x, pad, weights


def _check(spec) -> None:
    for name, lo in (("vocab_size", 5), ("d_model", 1), ("heads", 1), ("layers", 1), ("ff", 1), ("max_len", 2)):
        if int(getattr(spec, name)) < lo:
            raise ValueError(f"{name} must be at least {lo}")
    if spec.d_model % spec.heads:
        raise ValueError(f"d_model ({spec.d_model}) must be divisible by the number of heads ({spec.heads})")
    if not 0.0 <= spec.dropout < 1.0:
        raise ValueError("dropout must be in [0, 1)")
    if spec.objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}")
    for name, options in (("norm", NORM), ("positional", POSITIONAL)):
        if getattr(spec, name) not in options:
            raise ValueError(f"{name} must be one of {sorted(options)}")


@register
@dataclasses.dataclass
class LMSpec(ModelSpec):
    kind = "lm"
    vocab_size: int = 8          # the tokenizer's vocab_size (4 specials + tokens)
    objective: str = "masked"    # 'masked' (BERT) or 'causal' (GPT)
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    ff: int = 128
    dropout: float = 0.0
    positional: str = "sinusoidal"   # 'sinusoidal', 'learned', 'none'
    norm: str = "pre"
    max_len: int = 512           # positions, [CLS] included

    def __post_init__(self):
        _check(self)

    def build(self) -> nn.Module:
        return LanguageModel(self)

    def describe(self) -> str:
        what = "masked (BERT)" if self.objective == "masked" else "causal (GPT)"
        return (f"{what} Transformer LM d={self.d_model}, {self.heads} heads, {self.layers} layers, ff {self.ff}, "
                f"{self.positional} positions, {self.vocab_size} tokens")


def body_of(spec) -> "LMBody":
    """The shared Transformer body of an LM or an LM classifier spec (a causal objective keeps its mask)."""
    return LMBody(spec.vocab_size, spec.d_model, spec.heads, spec.layers, spec.ff, spec.dropout,
                  spec.positional, spec.norm, spec.max_len, spec.objective == "causal")


class LanguageModel(nn.Module):
    """``LMBody`` -> Linear to the vocabulary: logits for every position."""

    def __init__(self, spec: LMSpec):
        super().__init__()
        self.spec = spec
        self.body = body_of(spec)
        self.lm_head = nn.Linear(spec.d_model, spec.vocab_size)

    @property
    def causal(self) -> bool:
        return self.spec.objective == "causal"

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x, _, _ = self.body(tokens)
        return self.lm_head(x)

    @torch.no_grad()
    def attention(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Attention weights of every layer, (B, heads, L, L) each, in eval mode."""
        was = self.training
        self.eval()
        _, _, weights = self.body(tokens, need_weights=True)
        self.train(was)
        return weights


@register
@dataclasses.dataclass
class LMClassifierSpec(ModelSpec):
    kind = "lm_classifier"
    vocab_size: int = 8
    objective: str = "masked"    # the pretraining objective (causal bodies keep their causal mask)
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    ff: int = 128
    dropout: float = 0.0
    positional: str = "sinusoidal"
    norm: str = "pre"
    max_len: int = 512
    pooling: str = "mean"        # 'mean' over real positions or 'cls' (position 0)
    n_outputs: int = 1

    def __post_init__(self):
        _check(self)
        if self.pooling not in LM_POOLING:
            raise ValueError(f"pooling must be one of {sorted(LM_POOLING)}")
        if int(self.n_outputs) < 1:
            raise ValueError("n_outputs must be at least 1")

    def build(self) -> nn.Module:
        return LMClassifier(self)

    def describe(self) -> str:
        return (f"Transformer classifier d={self.d_model}, {self.heads} heads, {self.layers} layers, ff {self.ff} "
                f"({self.pooling} pooling, {self.n_outputs} output{'s' if self.n_outputs > 1 else ''}) "
                f"on {self.vocab_size} tokens")


class LMClassifier(nn.Module):
    """``LMBody`` -> pooling (mean over real positions, or [CLS]) -> Linear: one output row per sequence."""

    def __init__(self, spec: LMClassifierSpec):
        super().__init__()
        self.spec = spec
        self.body = body_of(spec)
        self.head = nn.Linear(spec.d_model, spec.n_outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x, pad, _ = self.body(tokens)
        pooled = x[:, 0] if self.spec.pooling == "cls" else masked_mean(x, pad)
        return self.head(pooled)

    @torch.no_grad()
    def attention(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        was = self.training
        self.eval()
        _, _, weights = self.body(tokens, need_weights=True)
        self.train(was)
        return weights


ARCH_FIELDS = ("vocab_size", "objective", "d_model", "heads", "layers", "ff", "dropout", "positional", "norm",
               "max_len")


def classifier_spec(lm_spec: LMSpec, n_outputs: int = 1, pooling: str = "mean") -> LMClassifierSpec:
    """The classifier spec with the LM's architecture."""
    return LMClassifierSpec(**{f: getattr(lm_spec, f) for f in ARCH_FIELDS}, pooling=pooling, n_outputs=n_outputs)


def classifier_from_lm(lm: LanguageModel | None, spec: LMClassifierSpec | None = None, *, n_outputs: int = 1,
                       pooling: str = "mean", seed: int = 0, lm_spec: LMSpec | None = None) -> LMClassifier:
    """A classifier whose body is a copy of ``lm``'s pretrained body and whose head is new (seeded).
    ``lm=None``: the same architecture from scratch (``lm_spec`` gives it)."""
    base = lm.spec if lm is not None else lm_spec
    if spec is None:
        if base is None:
            raise ValueError("give a language model or its spec")
        spec = classifier_spec(base, n_outputs, pooling)
    clf = build_model(spec, seed)
    if lm is not None:
        clf.body.load_state_dict(lm.body.state_dict())
    return clf
