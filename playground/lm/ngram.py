"""n-gram language models, built by counting.

The lecture's worked example: "students opened their" appears 1,000 times, followed by "books"
400 times, so

    P(books | students opened their) = count(students opened their books) / count(students opened their)
                                     = 400 / 1000 = 0.4

    m = NGramModel(order=4, smoothing="add_k", k=0).fit(sentences)     # lists of tokens (any strings)
    m.prob(["students", "opened", "their"], "books")                   # 0.4
    m.count_table(["students", "opened", "their"])["text"]             # 'P(books | students opened their) = 400 / 1000 = 0.4'
    m.bits_per_token(val_sentences)                                     # cross-entropy on validation, bits
    best = best_order(train, val, orders=range(1, 7))                   # chosen on validation

An n-gram model of order n predicts a token from the n-1 tokens before it. Every sequence starts
with n-1 start symbols ``<s>``, so its first tokens have a context too.

Smoothing (an unseen n-gram must not get probability 0, or the validation bits are infinite):
- ``"add_k"``: P(w | h) = (count(h w) + k) / (count(h) + k·V), V = vocabulary size (k = 1: Laplace;
  k = 0: plain counting, the lecture's formula).
- ``"backoff"``: interpolated absolute discounting (Ney, Essen & Kneser 1994): subtract a discount D
  from every seen count and give the freed mass to the next shorter context,
  P(w | h) = max(count(h w) − D, 0) / count(h) + D · N₁₊(h ·) / count(h) · P(w | h′),
  down to a uniform distribution over the vocabulary. Unlike "stupid backoff" this is a real
  probability distribution (it sums to 1 over the vocabulary), so its bits per token are honest.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

BOS = "<s>"
SMOOTHING = {"add_k": "Add-k (Laplace for k = 1)", "backoff": "Backoff (interpolated absolute discounting)"}


def _fmt(p: float) -> str:
    return f"{p:.4g}"


@dataclass
class NGramModel:
    order: int = 3                 # n: the prediction reads the n-1 tokens before
    smoothing: str = "add_k"       # 'add_k' or 'backoff'
    k: float = 1.0                 # add-k's pseudo-count
    discount: float = 0.75         # backoff's absolute discount D (0 < D < 1)
    vocab: list = field(default_factory=list)   # the tokens it predicts (from the data when not given)
    counts: dict = field(default_factory=dict, repr=False)   # context tuple -> Counter of next tokens

    def __post_init__(self):
        if not 1 <= int(self.order) <= 6:
            raise ValueError("the n-gram order must be between 1 and 6")
        self.order = int(self.order)
        if self.smoothing not in SMOOTHING:
            raise ValueError(f"smoothing must be one of {sorted(SMOOTHING)}")
        if self.k < 0:
            raise ValueError("k must be 0 or more")
        if not 0.0 < self.discount < 1.0:
            raise ValueError("the backoff discount must be between 0 and 1")

    # -- counting -----------------------------------------------------------------------
    def fit(self, sequences) -> "NGramModel":
        """Count every n-gram (and, for backoff, every shorter one) in ``sequences``: lists of tokens
        (strings or ints; a string is read as its letters)."""
        n = self.order
        counts: dict = defaultdict(Counter)
        seen = set(self.vocab)
        for seq in sequences:
            seq = list(seq)
            seen.update(seq)
            padded = [BOS] * (n - 1) + seq
            for i in range(n - 1, len(padded)):
                w = padded[i]
                lo = 0 if self.smoothing == "backoff" else n - 1
                for j in range(lo, n):          # context lengths j .. n-1 (backoff keeps all)
                    counts[tuple(padded[i - j:i])][w] += 1
        self.counts = dict(counts)
        self.vocab = list(self.vocab) or sorted(seen, key=str)
        if not self.vocab:
            raise ValueError("the training corpus is empty")
        self._index = {w: i for i, w in enumerate(self.vocab)}
        self._totals = {h: sum(c.values()) for h, c in self.counts.items()}
        self._cache: dict = {}
        return self

    @property
    def V(self) -> int:
        return len(self.vocab)

    def _context(self, context) -> tuple:
        """The last n-1 tokens of ``context`` (start symbols in front when it is shorter)."""
        context = list(context)
        need = self.order - 1
        if need == 0:
            return ()
        context = [BOS] * max(0, need - len(context)) + context
        return tuple(context[len(context) - need:])

    def count(self, context, token=None) -> int:
        """count(context) — how often the context was followed by anything — or count(context token)."""
        h = self._context(context)
        c = self.counts.get(h)
        if c is None:
            return 0
        return int(self._totals[h]) if token is None else int(c.get(token, 0))

    # -- probabilities ------------------------------------------------------------------
    def distribution(self, context) -> np.ndarray:
        """P(w | context) for every w in ``vocab`` (sums to 1, except add-k with k = 0 and an unseen
        context: then all zeros)."""
        h = self._context(context)
        if h in self._cache:
            return self._cache[h]
        if self.smoothing == "add_k":
            p = np.zeros(self.V)
            c = self.counts.get(h)
            total = self._totals.get(h, 0)
            if c:
                for w, m in c.items():
                    p[self._index[w]] = m
            denom = total + self.k * self.V
            p = (p + self.k) / denom if denom > 0 else p
        else:
            p = self._backoff(h)
        if len(self._cache) < 200_000:
            self._cache[h] = p
        return p

    def _backoff(self, h: tuple) -> np.ndarray:
        lower = np.full(self.V, 1.0 / self.V) if not h else self._backoff(h[1:])
        c = self.counts.get(h)
        if not c:
            return lower
        total = self._totals[h]
        p = np.zeros(self.V)
        for w, m in c.items():
            p[self._index[w]] = max(m - self.discount, 0.0)
        return p / total + (self.discount * len(c) / total) * lower

    def prob(self, context, token) -> float:
        """P(token | context)."""
        i = self._index.get(token)
        return 0.0 if i is None else float(self.distribution(context)[i])

    def formula(self, context, token) -> str:
        """The lecture's sentence: 'P(books | students opened their) = 400 / 1000 = 0.4' (add-k: the
        pseudo-counts written in; backoff: the counts and the smoothed probability)."""
        h = [t for t in self._context(context) if t != BOS] if self.order > 1 else []
        given = " ".join(map(str, h))
        lhs = f"P({token} | {given})" if given else f"P({token})"
        num, den = self.count(context, token), self.count(context)
        p = self.prob(context, token)
        if self.smoothing == "add_k":
            if self.k == 0:
                return f"{lhs} = {num:,} / {den:,} = {_fmt(p)}" if den else f"{lhs}: the context was never seen"
            return f"{lhs} = ({num:,} + {self.k:g}) / ({den:,} + {self.k:g} × {self.V}) = {_fmt(p)}"
        return f"{lhs} ≈ {_fmt(p)} (counted {num:,} / {den:,}, discounted, backing off to shorter contexts)"

    def count_table(self, context, top: int | None = None) -> dict:
        """What followed ``context`` in the training corpus: {'context': the n-1 tokens used,
        'context_count', 'rows': [(token, count, probability)] by count then probability (every
        vocabulary token, or the ``top``), 'text': the formula for the most frequent next token}."""
        h = self._context(context)
        dist = self.distribution(context)
        rows = sorted(((w, self.count(context, w), float(dist[i])) for i, w in enumerate(self.vocab)),
                      key=lambda r: (-r[1], -r[2], str(r[0])))
        if top:
            rows = rows[:top]
        best = rows[0][0] if rows else None
        return {"context": [t for t in h if t != BOS], "context_count": self.count(context), "rows": rows,
                "text": self.formula(context, best) if best is not None else ""}

    # -- on held-out data ---------------------------------------------------------------
    def surprise(self, seq) -> np.ndarray:
        """−log₂ P(token | the n-1 before) at every position of one sequence (bits; inf where add-k with
        k = 0 gives probability 0)."""
        seq = list(seq)
        out = np.empty(len(seq))
        for i, w in enumerate(seq):
            j = self._index.get(w)
            p = 0.0 if j is None else self.distribution(seq[max(0, i - self.order + 1):i])[j]
            out[i] = -math.log2(p) if p > 0 else math.inf
        return out

    def bits_per_token(self, sequences) -> float:
        """Mean −log₂ P over every token of ``sequences`` (the cross-entropy in bits; perplexity = 2^bits)."""
        total, n = 0.0, 0
        for s in sequences:
            b = self.surprise(s)
            total += float(b.sum())
            n += len(b)
        return total / n if n else float("nan")

    def perplexity(self, sequences) -> float:
        return float(2.0 ** self.bits_per_token(sequences))

    def generate(self, n: int, prompt=(), seed: int = 0, temperature: float = 1.0) -> list:
        """``n`` tokens sampled after ``prompt``."""
        rng = np.random.default_rng(int(seed))
        out = list(prompt)
        for _ in range(int(n)):
            p = self.distribution(out[max(0, len(out) - self.order + 1):] if self.order > 1 else [])
            if temperature != 1.0:
                p = np.where(p > 0, p ** (1.0 / max(1e-6, temperature)), 0.0)
            s = p.sum()
            p = p / s if s > 0 else np.full(self.V, 1.0 / self.V)
            out.append(self.vocab[int(rng.choice(self.V, p=p))])
        return out


def best_order(train, val, orders=range(1, 7), smoothing: str = "backoff", k: float = 1.0,
               discount: float = 0.75, vocab=None) -> dict:
    """Fit one model per order on ``train``, score each on ``val``, keep the lowest bits per token
    (validation chooses; nothing here looks at a test set). Returns {'order', 'model', 'val_bits':
    {order: bits}, 'train_bits': {order: bits}}."""
    res, models, train_bits = {}, {}, {}
    for n in orders:
        m = NGramModel(int(n), smoothing, k, discount, list(vocab or [])).fit(train)
        models[n] = m
        res[n] = m.bits_per_token(val)
        train_bits[n] = m.bits_per_token(train)
    best = min(res, key=lambda n: (res[n], n))
    return {"order": best, "model": models[best], "val_bits": res, "train_bits": train_bits}


def token_lists(tok, seqs) -> list[list[str]]:
    """A corpus as lists of token strings (what ``NGramModel.fit`` reads), through a Tokenizer."""
    return [tok.tokens(s) for s in seqs]


def fit_corpus(tok, corpus, order: int | None = None, smoothing: str = "backoff", k: float = 1.0,
               discount: float = 0.75) -> dict:
    """An n-gram model on a Corpus' training sequences, in the tokenizer's tokens (vocabulary: every
    ordinary token). ``order=None``: the best order 1–6 on validation. Returns best_order's dict."""
    vocab = tok.vocab[tok.n_special:]
    tr, va = token_lists(tok, corpus.train), token_lists(tok, corpus.val)
    orders = range(1, 7) if order is None else [int(order)]
    return best_order(tr, va, orders, smoothing, k, discount, vocab)
