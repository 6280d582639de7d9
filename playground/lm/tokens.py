"""Tokens for language models: single letters, or DNABERT-style k-mers.

    tok = Tokenizer("dna", "char")                 # A C G T, plus the special tokens
    tok = Tokenizer("dna", "kmer_overlap", k=3)    # ACGTA -> ACG CGT GTA (DNABERT: every position)
    tok = Tokenizer("dna", "kmer_disjoint", k=3)   # ACGTAC -> ACG TAC (non-overlapping)
    tok.vocab[:6], tok.vocab_size                  # ['[PAD]', '[MASK]', '[UNK]', '[CLS]', 'A', 'C'], 8
    ids = tok.encode("ACGT")                       # [4, 5, 6, 7]   (no [CLS]; encode_batch adds it)
    tok.decode(ids), tok.tokens("ACGT")            # 'ACGT', ['A', 'C', 'G', 'T']
    tok.token_count(["ACGT", "ACG"])               # 7 tokens in the corpus
    x = tok.encode_batch(["ACGT", "AC"])           # LongTensor (2, 5): [CLS] + tokens, 0-padded

Ids 0-3 are the specials, always: [PAD] = 0 (the playground's padding id everywhere), [MASK] = 1,
[UNK] = 2 (a letter outside the alphabet, N or X, or a k-mer containing one), [CLS] = 3 (the
start of every sequence: a causal model predicts the first letter from it; a classifier can pool
it). The alphabet's tokens follow in a fixed order (letters in the alphabet's order; k-mers in
lexicographic order of that alphabet), so a tokenizer is fully described by ``to_dict()``.

Non-overlapping k-mers cover ``len(seq) // k * k`` letters: a tail shorter than k is left out
(``tokens`` and ``decode`` say so by what they return). Overlapping k-mers give ``len - k + 1``
tokens; ``decode`` reads the first k-mer whole and one new letter from each next one.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch

from playground.encoding import ALPHABETS
from playground.errors import PlaygroundError

SPECIALS = ("[PAD]", "[MASK]", "[UNK]", "[CLS]")
PAD_ID = 0          # the playground's padding id everywhere
MASK_ID = 1
UNK_ID = 2
CLS_ID = 3
N_SPECIAL = len(SPECIALS)
KINDS = {"char": "Single letters", "kmer_overlap": "Overlapping k-mers (DNABERT)",
         "kmer_disjoint": "Non-overlapping k-mers"}
KIND_ALIASES = {"kmer": "kmer_disjoint", "overlap": "kmer_overlap", "disjoint": "kmer_disjoint",
                "letters": "char", "single": "char"}
MAX_VOCAB = 10_000          # DNA k <= 6 (4,096 k-mers), protein k <= 3 (8,000)


class TokenizerError(PlaygroundError):
    """A tokenizer setting that cannot work (unknown kind, k too large for the alphabet ...)."""


@dataclass
class Tokenizer:
    alphabet: str = "dna"          # 'dna' or 'protein'
    kind: str = "char"             # 'char', 'kmer_overlap', 'kmer_disjoint' (alias 'kmer')
    k: int = 1                     # k-mer length (1 for 'char')
    vocab: list[str] = field(init=False, repr=False)

    def __post_init__(self):
        self.kind = KIND_ALIASES.get(self.kind, self.kind)
        if self.alphabet not in ALPHABETS:
            raise TokenizerError(f"unknown alphabet {self.alphabet!r}", "Use 'dna' or 'protein'.")
        if self.kind not in KINDS:
            raise TokenizerError(f"unknown token kind {self.kind!r}",
                                 f"Use one of {', '.join(KINDS)}.")
        self.k = 1 if self.kind == "char" else int(self.k)
        letters = ALPHABETS[self.alphabet].letters
        if self.k < 1 or len(letters) ** self.k > MAX_VOCAB:
            most = max(j for j in range(1, 9) if len(letters) ** j <= MAX_VOCAB)
            raise TokenizerError(f"{self.k}-mers of {self.alphabet.upper()} make {len(letters) ** self.k:,} tokens, "
                                 f"more than {MAX_VOCAB:,}", f"Choose k from 1 to {most}.")
        self.letters = letters
        kmers = ["".join(p) for p in itertools.product(letters, repeat=self.k)]
        self.vocab = list(SPECIALS) + kmers
        self._index = {t: i for i, t in enumerate(self.vocab)}
        # letter -> 0..n-1 (others -1), for fast k-mer ids: id = N_SPECIAL + base-n number of the k letters
        self._table = np.full(256, -1, dtype=np.int64)
        for i, ch in enumerate(letters):
            self._table[ord(ch)] = i
            self._table[ord(ch.lower())] = i

    # -- the vocabulary -------------------------------------------------------------------
    pad_id, mask_id, unk_id, cls_id, n_special = PAD_ID, MASK_ID, UNK_ID, CLS_ID, N_SPECIAL

    @property
    def vocab_size(self) -> int:
        """Tokens including the 4 specials (the LM's output width)."""
        return len(self.vocab)

    @property
    def stride(self) -> int:
        """Letters from one token's start to the next one's (1 for letters and overlapping k-mers)."""
        return self.k if self.kind == "kmer_disjoint" else 1

    def describe(self) -> str:
        what = "letters" if self.kind == "char" else f"{KINDS[self.kind].lower().replace(' (dnabert)', '')} (k={self.k})"
        return f"{self.alphabet.upper()} {what}: {self.vocab_size:,} tokens ({self.vocab_size - N_SPECIAL:,} + 4 special)"

    def id_of(self, token: str) -> int:
        return self._index.get(token, UNK_ID)

    # -- encoding ------------------------------------------------------------------------
    def encode(self, seq: str) -> list[int]:
        """Token ids of one sequence (no [CLS], no padding)."""
        codes = self._table[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
        n = len(self.letters)
        if self.kind == "char":
            return np.where(codes >= 0, codes + N_SPECIAL, UNK_ID).tolist()
        k = self.k
        if len(codes) < k:
            return []
        win = np.lib.stride_tricks.sliding_window_view(codes, k)
        if self.kind == "kmer_disjoint":
            win = win[::k]
        bad = (win < 0).any(1)
        ids = (np.where(win < 0, 0, win) * (n ** np.arange(k - 1, -1, -1))).sum(1) + N_SPECIAL
        return np.where(bad, UNK_ID, ids).tolist()

    def tokens(self, seq: str) -> list[str]:
        """The tokens of one sequence as strings."""
        return [self.vocab[i] for i in self.encode(seq)]

    def token_spans(self, seq_or_n) -> list[tuple[int, int]]:
        """Letters [start, end) each token of a sequence stands for (a sequence, or its length)."""
        n = len(seq_or_n) if isinstance(seq_or_n, str) else int(seq_or_n)
        count = self.n_tokens(n)
        return [(i * self.stride, i * self.stride + self.k) for i in range(count)]

    def n_tokens(self, length: int) -> int:
        """How many tokens a sequence of ``length`` letters gives."""
        if self.kind == "char":
            return length
        if self.kind == "kmer_overlap":
            return max(0, length - self.k + 1)
        return length // self.k

    def decode(self, ids, skip_special: bool = True) -> str:
        """Letters back from ids. Specials are skipped ([MASK] shows as '?' and [UNK] as N/X per letter
        when ``skip_special`` is False). Overlapping k-mers: the first whole, then each next one's last letter."""
        unknown = ALPHABETS[self.alphabet].unknown
        out: list[str] = []
        first = True
        for i in (int(t) for t in ids):
            if i < N_SPECIAL:
                if skip_special or i in (PAD_ID, CLS_ID):
                    continue
                t = ("?" if i == MASK_ID else unknown) * self.k
            else:
                t = self.vocab[i] if i < len(self.vocab) else unknown * self.k
            if self.kind == "kmer_overlap" and not first:
                t = t[-1]
            out.append(t)
            first = False
        return "".join(out)

    def token_count(self, seqs) -> int:
        """Tokens in a corpus (a list of sequences)."""
        return int(sum(self.n_tokens(len(s)) for s in seqs))

    def encode_batch(self, seqs, length: int | None = None, cls: bool = True) -> torch.Tensor:
        """(n, 1 + tokens) LongTensor: [CLS] then each sequence's tokens, 0-padded on the right to the
        longest (or to ``length`` tokens, cutting longer ones). ``cls=False``: no [CLS]."""
        rows = [self.encode(s) for s in seqs]
        width = length if length is not None else max((len(r) for r in rows), default=0)
        off = 1 if cls else 0
        x = torch.zeros(len(rows), width + off, dtype=torch.long)
        if cls:
            x[:, 0] = CLS_ID
        for i, r in enumerate(rows):
            r = r[:width]
            if r:
                x[i, off:off + len(r)] = torch.tensor(r, dtype=torch.long)
        return x

    # -- plain data ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"alphabet": self.alphabet, "kind": self.kind, "k": int(self.k)}

    @classmethod
    def from_dict(cls, d: dict) -> "Tokenizer":
        return cls(str(d.get("alphabet", "dna")), str(d.get("kind", "char")), int(d.get("k", 1)))


def make_tokenizer(kind: str = "char", k: int = 3, alphabet: str = "dna") -> Tokenizer:
    """The page's spelling: ``make_tokenizer("kmer_overlap", 3, "dna")``; k is ignored for 'char'."""
    return Tokenizer(alphabet, kind, 1 if KIND_ALIASES.get(kind, kind) == "char" else k)


def encode_batch(tok_dict: dict, seqs, length: int | None = None) -> torch.Tensor:
    """A tokenizer from its plain dict, then ``encode_batch`` (what Predict needs for an LM classifier)."""
    return Tokenizer.from_dict(tok_dict).encode_batch(seqs, length)
