"""Recurrent networks (vanilla RNN, LSTM, GRU) over token sequences.

    RNNSpec(cell="lstm", vocab_size=6, embed_dim=16, hidden=32, layers=1, bidirectional=True,
            output="pooled", n_outputs=1)

reads tokens (0 = padding), embeds them and runs the recurrent layers left to right (and right
to left when bidirectional). Padding is honoured: sequences are packed, so the recurrence stops
at each sequence's real end and the backward direction starts there.

Outputs
- many-to-one ``pooled``: the mean of the hidden states over real positions -> Linear;
- many-to-one ``last``: the final hidden state (forward direction at the last real base, and
  the backward direction at the first one) -> Linear;
- many-to-many ``per_position``: every position's hidden state -> Linear (labelling,
  output (batch, length, classes)).
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from playground.encoding import padding_mask
from playground.models.base import ModelSpec, register

CELLS = {"rnn": ("Vanilla RNN", nn.RNN), "lstm": ("LSTM", nn.LSTM), "gru": ("GRU", nn.GRU)}
OUTPUTS = {"pooled": "Many-to-one: mean of the states", "last": "Many-to-one: last state",
           "per_position": "Many-to-many: one output per position"}


@register
@dataclasses.dataclass
class RNNSpec(ModelSpec):
    kind = "rnn"
    cell: str = "lstm"           # 'rnn', 'lstm', 'gru'
    vocab_size: int = 6          # token ids 0..vocab_size-1; 0 = padding (DNA 6, protein 22)
    embed_dim: int = 16
    hidden: int = 32
    layers: int = 1
    bidirectional: bool = True
    output: str = "pooled"       # 'pooled', 'last', 'per_position'
    dropout: float = 0.0         # between recurrent layers and before the output layer
    n_outputs: int = 1

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {sorted(OUTPUTS)}")
        for name, lo in (("vocab_size", 2), ("embed_dim", 1), ("hidden", 1), ("layers", 1), ("n_outputs", 1)):
            if int(getattr(self, name)) < lo:
                raise ValueError(f"{name} must be at least {lo}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    def build(self) -> nn.Module:
        return RecurrentNet(self)

    def describe(self) -> str:
        bi = "bidirectional " if self.bidirectional else ""
        return f"{bi}{CELLS[self.cell][0]} {self.layers}×{self.hidden} ({OUTPUTS[self.output]})"


class RecurrentNet(nn.Module):
    """Embedding -> RNN/LSTM/GRU layers (packed, so padding is skipped) -> Linear."""

    def __init__(self, spec: RNNSpec):
        super().__init__()
        self.spec = spec
        self.embed = nn.Embedding(spec.vocab_size, spec.embed_dim, padding_idx=0)
        rnn_cls = CELLS[spec.cell][1]
        self.rnn = rnn_cls(spec.embed_dim, spec.hidden, num_layers=spec.layers, batch_first=True,
                           bidirectional=spec.bidirectional, dropout=spec.dropout if spec.layers > 1 else 0.0)
        directions = 2 if spec.bidirectional else 1
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(spec.hidden * directions, spec.n_outputs)

    def states(self, tokens: torch.Tensor):
        """Hidden states of the last layer (B, L, hidden*directions), zeros at padding; the
        final states (B, hidden*directions); the padding mask (B, L)."""
        pad = padding_mask(tokens)
        x = self.embed(tokens)
        B, L = tokens.shape
        lengths = (~pad).sum(1)
        if bool(pad.any()):
            packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
            out, h = self.rnn(packed)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=L)
        else:
            out, h = self.rnn(x)
        if isinstance(h, tuple):            # LSTM: (h_n, c_n)
            h = h[0]
        # h: (layers*directions, B, hidden); the last layer's directions are the last rows
        if self.spec.bidirectional:
            last = torch.cat([h[-2], h[-1]], dim=-1)
        else:
            last = h[-1]
        empty = lengths == 0
        if bool(empty.any()):                # an all-padding sequence has no state
            last = last.masked_fill(empty[:, None], 0.0)
            out = out.masked_fill(pad[..., None], 0.0)
        return out, last, pad

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, last, pad = self.states(tokens)
        if self.spec.output == "per_position":
            return self.head(self.dropout(out))
        if self.spec.output == "last":
            return self.head(self.dropout(last))
        keep = (~pad).unsqueeze(-1).to(out.dtype)
        pooled = (out * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))
