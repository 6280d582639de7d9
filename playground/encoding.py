"""Alphabets, one-hot encoding, integer tokens and padding masks.

Conventions used across the playground:
- one-hot DNA is (batch, 4, length) with channels A, C, G, T (Conv1d layout); N is all
  zeros, or 0.25 in every channel with ``n_value=0.25``.
- tokens reserve 0 for padding: DNA A=1 C=2 G=3 T=4 N=5; proteins use the 20 standard
  amino acids (alphabetical one-letter codes) as 1..20 and X as 21.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

PAD = 0


@dataclass(frozen=True)
class Alphabet:
    name: str
    letters: str  # the symbols models see as channels (one-hot) - order matters
    unknown: str  # the symbol for "any"/unknown (N or X): all-zero one-hot
    aliases: tuple[tuple[str, str], ...] = ()  # mappings offered to the user (e.g. U->T)

    @property
    def valid(self) -> str:
        return self.letters + self.unknown

    @property
    def vocab_size(self) -> int:
        """Number of token ids including padding (0) and unknown."""
        return len(self.letters) + 2

    def token_of(self, ch: str) -> int:
        if ch == self.unknown:
            return len(self.letters) + 1
        return self.letters.index(ch) + 1


DNA = Alphabet("dna", "ACGT", "N", (("U", "T"),))
PROTEIN = Alphabet(
    "protein",
    "ACDEFGHIKLMNPQRSTVWY",
    "X",
    (("B", "X"), ("Z", "X"), ("U", "X"), ("O", "X"), ("J", "X")),
)
ALPHABETS = {"dna": DNA, "protein": PROTEIN}


def _lookup(alphabet: Alphabet) -> np.ndarray:
    table = np.full(256, -1, dtype=np.int64)
    for i, ch in enumerate(alphabet.letters):
        table[ord(ch)] = i + 1
        table[ord(ch.lower())] = i + 1
    u = alphabet.token_of(alphabet.unknown)
    table[ord(alphabet.unknown)] = u
    table[ord(alphabet.unknown.lower())] = u
    return table


_TABLES = {a.name: _lookup(a) for a in ALPHABETS.values()}


def tokenize(seqs: Sequence[str], alphabet: Alphabet = DNA, length: int | None = None) -> torch.Tensor:
    """Sequences -> LongTensor (batch, length) of token ids, 0-padded on the right
    (sequences longer than ``length`` are cut). Raises ValueError on a foreign letter."""
    table = _TABLES[alphabet.name]
    L = length if length is not None else max((len(s) for s in seqs), default=0)
    out = np.zeros((len(seqs), L), dtype=np.int64)
    for i, s in enumerate(seqs):
        b = np.frombuffer(s[:L].encode("ascii", "replace"), dtype=np.uint8)
        ids = table[b]
        if (ids < 0).any():
            j = int(np.argmax(ids < 0))
            raise ValueError(f"sequence {i + 1}, position {j + 1}: '{s[j]}' is not in the {alphabet.name} alphabet")
        out[i, : len(ids)] = ids
    return torch.from_numpy(out)


def one_hot(seqs: Sequence[str] | str, alphabet: Alphabet = DNA, length: int | None = None,
            n_value: float = 0.0) -> torch.Tensor:
    """Sequences -> FloatTensor (batch, channels, length). Unknown (N/X) gets ``n_value``
    in every channel; padding is all zeros."""
    if isinstance(seqs, str):
        seqs = [seqs]
    tok = tokenize(seqs, alphabet, length)
    return tokens_to_one_hot(tok, alphabet, n_value)


def tokens_to_one_hot(tok: torch.Tensor, alphabet: Alphabet = DNA, n_value: float = 0.0) -> torch.Tensor:
    k = len(alphabet.letters)
    eye = torch.zeros(alphabet.vocab_size, k)
    eye[1 : k + 1] = torch.eye(k)
    eye[k + 1] = n_value
    return eye[tok].permute(0, 2, 1).contiguous()


def padding_mask(tok: torch.Tensor) -> torch.Tensor:
    """True where a position is padding (the convention of nn.MultiheadAttention)."""
    return tok == PAD


def decode(tok: Sequence[int], alphabet: Alphabet = DNA) -> str:
    letters = "-" + alphabet.letters + alphabet.unknown
    return "".join(letters[int(t)] for t in tok if int(t) != PAD)
