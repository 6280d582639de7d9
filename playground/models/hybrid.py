"""Two presets from the course notes: the hybrid CNN + Transformer DNA classifier and the
protein solubility CNN (a token CNN that also serves as the "CNN" of the run comparison).

The hybrid, layer for layer (``HYBRID_COURSE``):

    Embedding(5, 64)                                   A C G T and N/padding -> 64 numbers
    Conv1d(64 -> 128, kernel 8, padding 4)   GELU      local motifs
    Conv1d(128 -> 256, kernel 4, padding 2)  GELU      motif combinations
    AdaptiveMaxPool1d(64)                              any length -> 64 positions
    TransformerEncoder(d=256, 8 heads, ff 512, dropout 0.1, 2 layers)   long-range interactions
    mean over positions
    Linear(256 -> 128) GELU Dropout(0.3)
    Linear(128 -> classes)

Token ids follow ``playground.encoding`` (0 = padding, A=1 C=2 G=3 T=4, N=5). ``Embedding(5, 64)``
has rows 0..4: N shares row 0 with padding (``padding_idx=0``: a zero vector, no base known).
The Transformer part is the course's ``nn.TransformerEncoder`` (post-LayerNorm, ReLU
feed-forward), written out in transformer.py so its attention maps can be shown.
The notes add no positional encoding: then attention cannot tell how far apart two pooled
positions are; ``positional="sinusoidal"`` adds the fixed sinusoids (no extra parameters).

The protein solubility CNN (``PROTEIN_CNN_COURSE``):

    Embedding(21, 64, padding_idx=0)     20 amino acids + padding (X shares the padding row)
    Conv1d(64 -> 128, kernel 5) ReLU
    Conv1d(128 -> 128, kernel 5) ReLU
    masked mean over the real residues
    Linear(128 -> outputs)
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from playground.encoding import padding_mask
from playground.models.base import ModelSpec, register
from playground.models.transformer import (POSITIONAL, PositionalEncoding, TransformerEncoder,
                                           masked_mean)

CNN_POOLING = {"mean": "Masked mean", "max": "Masked max", "per_position": "Per position (labelling)"}
CNN_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


def _check_tokens(tokens: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Map the 'unknown' token (id == vocab_size, i.e. N for DNA or X for proteins when the table
    has no row for it) to row 0; refuse ids that do not fit the table."""
    if tokens.numel() and int(tokens.max()) > vocab_size:
        raise ValueError(f"token id {int(tokens.max())} does not fit an embedding table of {vocab_size} rows "
                         f"(is this a protein fed to a DNA model?)")
    return tokens.masked_fill(tokens == vocab_size, 0)


def adaptive_max_pool_lengths(x: torch.Tensor, length: torch.Tensor, positions: int,
                              pool: nn.Module | None = None) -> torch.Tensor:
    """AdaptiveMaxPool1d(positions) of each sequence's first ``length[i]`` columns on its own:
    x (B, C, L), length (B,) -> (B, C, positions). Bin j of a sequence of length l covers columns
    floor(j*l/P) .. ceil((j+1)*l/P) - 1, as in torch's adaptive pooling, so a batch without padding
    gets exactly AdaptiveMaxPool1d's result (and its faster kernel, ``pool``). Length 0 reads as 1."""
    B, C, L = x.shape
    P = positions
    if B == 0 or x.is_meta or bool((length == L).all()):     # meta (size checks): no lengths to read
        return (pool or nn.AdaptiveMaxPool1d(P))(x)
    l = length.to(x.device).clamp(min=1, max=L)[:, None]                # (B, 1)
    j = torch.arange(P, device=x.device)[None, :]                       # (1, P)
    start = torch.div(j * l, P, rounding_mode="floor")                  # (B, P)
    end = -torch.div(-(j + 1) * l, P, rounding_mode="floor")            # ceil((j+1) l / P)
    width = int((end - start).max())
    # each bin's columns; a narrower bin repeats its last column (a repeat does not change a max)
    idx = torch.minimum(start[..., None] + torch.arange(width, device=x.device), end[..., None] - 1)
    return torch.gather(x, 2, idx.reshape(B, 1, -1).expand(B, C, -1)).reshape(B, C, P, width).amax(-1)


# --------------------------------------------------------------------------------------------
# Hybrid CNN + Transformer
# --------------------------------------------------------------------------------------------
@register
@dataclasses.dataclass
class HybridSpec(ModelSpec):
    kind = "hybrid"
    vocab_size: int = 5
    embed_dim: int = 64
    conv1_channels: int = 128
    conv1_kernel: int = 8
    conv2_channels: int = 256     # = the Transformer's d_model
    conv2_kernel: int = 4
    pool_positions: int = 64
    heads: int = 8
    ff: int = 512
    layers: int = 2
    dropout: float = 0.1
    hidden: int = 128
    head_dropout: float = 0.3
    positional: str = "none"      # the notes have none; 'sinusoidal' lets attention see distances
    norm: str = "post"            # nn.TransformerEncoderLayer's default (post-LN); 'pre' trains more easily
    pooling: str = "mean"         # the notes' mean over positions; 'max' keeps a single strong position
    n_outputs: int = 2

    def __post_init__(self):
        for name in ("vocab_size", "embed_dim", "conv1_channels", "conv1_kernel", "conv2_channels", "conv2_kernel",
                     "pool_positions", "heads", "ff", "layers", "hidden", "n_outputs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.conv2_channels % self.heads:
            raise ValueError(f"the Transformer width ({self.conv2_channels} conv channels) must be divisible by "
                             f"the number of heads ({self.heads})")
        if self.positional not in POSITIONAL or self.positional == "learned":
            raise ValueError("positional must be 'none' or 'sinusoidal' for the hybrid")
        if self.pooling not in ("mean", "max"):
            raise ValueError("pooling must be 'mean' or 'max'")
        if self.norm not in ("pre", "post"):
            raise ValueError("norm must be 'pre' or 'post'")
        if not (0 <= self.dropout < 1 and 0 <= self.head_dropout < 1):
            raise ValueError("dropout must be in [0, 1)")

    def build(self) -> nn.Module:
        return HybridCNNTransformer(self)

    def describe(self) -> str:
        return (f"Hybrid CNN+Transformer: conv {self.conv1_channels}(k{self.conv1_kernel})→{self.conv2_channels}"
                f"(k{self.conv2_kernel}), pool {self.pool_positions}, {self.layers}×attention({self.heads} heads)")


HYBRID_COURSE = HybridSpec()
# A CPU-sized variant: 16x fewer parameters; sinusoidal positions (so attention can see how far apart two
# motifs are), pre-LN (trains without warm-up) and max pooling (one informative position is not averaged away).
HYBRID_SMALL = HybridSpec(embed_dim=16, conv1_channels=32, conv2_channels=64, pool_positions=32, heads=4, ff=128,
                          layers=2, hidden=32, positional="sinusoidal", norm="pre", pooling="max")


class HybridCNNTransformer(nn.Module):
    def __init__(self, spec: HybridSpec):
        super().__init__()
        self.spec = spec
        d = spec.conv2_channels
        self.embed = nn.Embedding(spec.vocab_size, spec.embed_dim, padding_idx=0)
        self.conv1 = nn.Conv1d(spec.embed_dim, spec.conv1_channels, spec.conv1_kernel, padding=spec.conv1_kernel // 2)
        self.conv2 = nn.Conv1d(spec.conv1_channels, d, spec.conv2_kernel, padding=spec.conv2_kernel // 2)
        self.act = nn.GELU()
        self.pool = nn.AdaptiveMaxPool1d(spec.pool_positions)
        self.positions = PositionalEncoding(spec.positional, d, spec.pool_positions)
        self.encoder = TransformerEncoder(d, spec.heads, spec.ff, spec.layers, spec.dropout, norm=spec.norm,
                                          activation="relu")
        self.head = nn.Sequential(nn.Linear(d, spec.hidden), nn.GELU(), nn.Dropout(spec.head_dropout),
                                  nn.Linear(spec.hidden, spec.n_outputs))

    @staticmethod
    def _length_after_conv(length: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
        """Positions a conv layer outputs for a sequence of ``length`` positions (zero padding at both ends)."""
        k, p = conv.kernel_size[0], conv.padding[0]
        return (length + 2 * p - k + 1).clamp(min=0)

    def pooled_features(self, tokens: torch.Tensor):
        """Conv features max-pooled to ``pool_positions`` positions (B, P, d) and their padding mask (B, P).

        Each sequence is computed as if it were alone (at its own length): conv outputs past its end
        are zero for the next conv (as that conv's own zero padding would be), and the adaptive
        max-pool bins its own length, not the batch's. So padding never changes a sequence's output."""
        pad = padding_mask(tokens)
        length = (~pad).sum(1)                                                           # real bases
        x = self.embed(_check_tokens(tokens, self.spec.vocab_size)).transpose(1, 2)     # (B, emb, L)
        l1 = self._length_after_conv(length, self.conv1)
        x = self.act(self.conv1(x))
        x = x * (torch.arange(x.shape[-1], device=x.device) < l1[:, None])[:, None].to(x.dtype)
        l2 = self._length_after_conv(l1, self.conv2)
        x = self.act(self.conv2(x))
        x = adaptive_max_pool_lengths(x, l2, self.spec.pool_positions, self.pool)
        empty = (length == 0)[:, None].expand(-1, self.spec.pool_positions)           # all-padding rows
        x = x.masked_fill(empty[:, None], 0.0).transpose(1, 2)                           # (B, P, d)
        return x, empty

    def encode(self, tokens: torch.Tensor, need_weights: bool = True):
        x, pad = self.pooled_features(tokens)
        x, weights = self.encoder(self.positions(x), pad, need_weights)
        return x, pad, weights

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x, pad, _ = self.encode(tokens, need_weights=False)
        if self.spec.pooling == "max":
            pooled = torch.nan_to_num(x.masked_fill(pad[..., None], float("-inf")).amax(1), neginf=0.0)
        else:
            pooled = masked_mean(x, pad)
        return self.head(pooled)

    @torch.no_grad()
    def attention(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        was = self.training
        self.eval()
        _, _, weights = self.encode(tokens)
        self.train(was)
        return weights

    def position_windows(self, length: int) -> list[tuple[int, int]]:
        """For a sequence of ``length`` bases: the bases (0-based start, end exclusive) each pooled
        position stands for (the centres of the conv windows it max-pools over)."""
        L2 = length + 2 * (self.spec.conv1_kernel // 2) - self.spec.conv1_kernel + 1
        L2 = L2 + 2 * (self.spec.conv2_kernel // 2) - self.spec.conv2_kernel + 1
        k1, k2 = self.spec.conv1_kernel, self.spec.conv2_kernel
        # conv output j is centred on input j - padding + (kernel - 1) / 2
        shift = int(math.floor(k1 // 2 + k2 // 2 - (k1 - 1) / 2 - (k2 - 1) / 2))
        P = self.spec.pool_positions
        out = []
        for i in range(P):
            s, e = (i * L2) // P, -((-(i + 1) * L2) // P)
            s, e = min(max(s - shift, 0), length - 1), min(max(e - shift, 1), length)
            out.append((s, max(e, s + 1)))
        return out


# --------------------------------------------------------------------------------------------
# Token CNN (the protein solubility CNN preset; also the CNN of the run comparison)
# --------------------------------------------------------------------------------------------
@register
@dataclasses.dataclass
class TokenCNNSpec(ModelSpec):
    kind = "token_cnn"
    vocab_size: int = 21
    embed_dim: int = 64
    channels: tuple = (128, 128)
    kernel: int = 5
    activation: str = "relu"
    pooling: str = "mean"        # 'mean', 'max' (masked) or 'per_position'
    dropout: float = 0.0
    n_outputs: int = 1

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        if not self.channels or any(c < 1 for c in self.channels):
            raise ValueError("give at least one conv layer with at least 1 channel")
        if self.kernel < 1 or self.embed_dim < 1 or self.vocab_size < 2 or self.n_outputs < 1:
            raise ValueError("kernel, embed_dim, n_outputs must be >= 1 and vocab_size >= 2")
        if self.activation not in CNN_ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(CNN_ACTIVATIONS)}")
        if self.pooling not in CNN_POOLING:
            raise ValueError(f"pooling must be one of {sorted(CNN_POOLING)}")

    def build(self) -> nn.Module:
        return TokenCNN(self)

    def describe(self) -> str:
        convs = "→".join(str(c) for c in self.channels)
        out = "one output per position" if self.pooling == "per_position" else f"{self.pooling} pooling"
        return f"CNN {len(self.channels)}×Conv1d(k={self.kernel}) {convs}, {out}"

    @property
    def receptive_field(self) -> int:
        """How many consecutive residues one output position can see."""
        return 1 + len(self.channels) * (self.kernel - 1)


PROTEIN_CNN_COURSE = TokenCNNSpec()


class TokenCNN(nn.Module):
    """Embedding -> Conv1d layers ('same' padding) -> masked pooling -> Linear."""

    def __init__(self, spec: TokenCNNSpec):
        super().__init__()
        self.spec = spec
        self.embed = nn.Embedding(spec.vocab_size, spec.embed_dim, padding_idx=0)
        sizes = [spec.embed_dim, *spec.channels]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, spec.kernel, padding=spec.kernel // 2)
                                   for a, b in zip(sizes[:-1], sizes[1:]))
        self.act = CNN_ACTIVATIONS[spec.activation]()
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(sizes[-1], spec.n_outputs)

    def features(self, tokens: torch.Tensor):
        pad = padding_mask(tokens)
        L = tokens.shape[1]
        x = self.embed(_check_tokens(tokens, self.spec.vocab_size)).transpose(1, 2)
        keep = (~pad)[:, None].to(x.dtype)
        for conv in self.convs:
            x = self.act(conv(x))[..., :L] * keep          # padding stays zero between layers
        return x.transpose(1, 2), pad                      # (B, L, channels)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x, pad = self.features(tokens)
        x = self.dropout(x)
        if self.spec.pooling == "per_position":
            return self.head(x)
        if self.spec.pooling == "max":
            pooled = x.masked_fill(pad[..., None], float("-inf")).amax(1)
            pooled = torch.nan_to_num(pooled, neginf=0.0)
        else:
            pooled = masked_mean(x, pad)
        return self.head(pooled)
