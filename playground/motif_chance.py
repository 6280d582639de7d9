"""Chance levels for motif scores: how well would filters that learned nothing match?

"Motif recovered" is the best of many matches: every first-layer filter's activation PWM is
compared with the planted motif at every offset on both strands, and the best score wins. The
best of 32 *random* filters already matches CTCF with a Pearson of about 0.76 (the DNA page's
primer CNN before training, seed 0). Tomtom reports p-values for this reason; so does this module::

    from playground import motif_chance as MC
    null = MC.filter_null(model, x_train)               # 200 untrained networks of the same shape
    ch = MC.recovery_chance(model, x_train, rec, motifs)[0]   # rec = interpret.motif_recovery(...)
    ch.p_value, ch.band, ch.verdict                      # 0.41, 0.88, 'at chance'

The null (``filter_null``) is the same statistic for ``n_draws`` networks that learned nothing:
each draw is ``n_filters`` filters of the same width, initialised as PyTorch initialises a
``Conv1d`` (uniform in ±1/sqrt(4·width), bias too), turned into activation PWMs by the same
Basset rule on the same data (a subsample of it: the null barely moves between 200 and 1600
sequences, see the README), matched to the motif with the same trimming, offsets and strands,
and the best filter of each draw kept. Random DNA would be the wrong background: the planted
sites pull even a random filter's PWM towards the motif (the best-of-32 null on motif-free DNA
is ~0.12 lower than on the planted data, which would call an untrained network "recovered").

From the null: the chance **band** (its 95th percentile) and the empirical **p-value**
(1 + draws at least as good) / (1 + draws). A score reads "recovered" only when p < 0.01 and
it is above the band. JASPAR hits get the same treatment (``jaspar_null``: the best JASPAR hit
of a random filter of this shape on these data), and ``shuffled_motif_null`` offers Tomtom's
other null: the observed filters against column-shuffled copies of the motif.

Everything is vectorised numpy/torch: 200 draws × 32 filters cost about 0.4 s of CPU, once
per shape and data (cached).
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from playground.interpret import MIN_MATCH_COLUMNS, PSEUDOCOUNT, THRESHOLD, TRIM_IC, FilterPWMs, has_filters

N_DRAWS = 200            # untrained networks in the null
NULL_WINDOWS = 8_000     # windows of the data the null's filters are scored on (the cost grows with it)
MIN_NULL_SEQUENCES = 64
ALPHA = 0.01             # "recovered" needs p below this ...
BAND_QUANTILE = 0.95     # ... and a score above this quantile of the null (the chance band)
NULL_SEED = 0
JASPAR_DRAWS = 120       # random filters whose best JASPAR hit makes the JASPAR null
MIN_SITES = 5            # as interpret.motif_recovery: filters with fewer windows are skipped
_CHUNK = 1024            # random filters scored at once (bounds the memory of the activations)


# ------------------------------------------------------------------------------------------------
# vectorised matching (the same numbers as interpret.match_pwm(trim=True), for many PWMs at once)
def _standardize(m: np.ndarray) -> np.ndarray:
    c = m - m.mean(-2, keepdims=True)
    sd = np.sqrt((c * c).mean(-2, keepdims=True))
    return np.where(sd > 1e-9, c / np.where(sd > 1e-9, sd, 1.0), 0.0)


def _information(pwms: np.ndarray) -> np.ndarray:
    """(Q, 4, w) probabilities -> (Q, w) bits per column (interpret's information_content)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(pwms > 0, pwms * np.log2(pwms / 0.25), 0.0)
    return t.sum(1)


def trim_bounds(pwms: np.ndarray, min_ic: float = TRIM_IC, min_columns: int = MIN_MATCH_COLUMNS):
    """(lo, hi) per PWM of (Q, 4, w): the columns ``interpret.trim_pwm`` keeps (hi - lo = 0 when
    no column is informative), widening around the core towards the more informative side."""
    ic = _information(pwms)
    Q, w = ic.shape
    keep = ic >= min_ic
    some = keep.any(1)
    lo = np.where(some, keep.argmax(1), 0)
    hi = np.where(some, w - keep[:, ::-1].argmax(1), 0)
    need = min(min_columns, w)
    padded = np.concatenate([np.full((Q, 1), -1.0), ic, np.full((Q, 1), -1.0)], 1)   # ic[j] at j + 1
    rows = np.arange(Q)
    for _ in range(need):
        grow = some & (hi - lo < need)
        if not grow.any():
            break
        left, right = padded[rows, lo], padded[rows, hi + 1]     # ic[lo - 1], ic[hi] (-1 past the ends)
        lo = lo - (grow & (left >= right))
        hi = hi + (grow & (left < right))
    return lo, hi


def _stack_targets(targets) -> tuple[np.ndarray, np.ndarray]:
    ts = [np.asarray(t, dtype=np.float64) for t in targets]
    lengths = np.array([t.shape[1] for t in ts])
    z = np.zeros((len(ts), 4, int(lengths.max())))
    for i, t in enumerate(ts):
        z[i, :, :t.shape[1]] = _standardize(t)
    return z, lengths


def best_match_scores(pwms: np.ndarray, targets, chunk: int = 64) -> np.ndarray:
    """(Q, M): the match score of each PWM of ``pwms`` (Q, 4, w) against each target PWM (4, L_m),
    exactly ``interpret.match_pwm(pwm, targets)[m].score`` (trimmed, every offset, both strands)."""
    P = np.asarray(pwms, dtype=np.float64)
    if P.ndim == 2:
        P = P[None]
    Q, _, w = P.shape
    zt, lengths = _stack_targets(targets)
    M, _, L = zt.shape
    lo, hi = trim_bounds(P)
    qlen = hi - lo
    cols = np.arange(w)
    mask = ((cols[None] >= lo[:, None]) & (cols[None] < hi[:, None])).astype(np.float64)   # (Q, w)
    zq = _standardize(P)
    D = L + w - 1                                   # offsets -(w - 1) .. L - 1 of query column 0
    valid = np.zeros((M, L + 2 * w))
    valid[:, w:w + L] = np.arange(L)[None] < lengths[:, None]
    out = np.empty((Q, M))
    for s in range(0, Q, chunk):
        z, m = zq[s:s + chunk], mask[s:s + chunk]
        need = np.minimum(qlen[s:s + chunk, None], lengths[None])[:, :, None]     # (q, M, 1)
        best = np.full((len(z), M), -np.inf)
        for strand in (0, 1):
            zz, mm = (z, m) if strand == 0 else (z[:, ::-1, ::-1], m[:, ::-1])  # reverse complement
            C = np.zeros((len(z), w, M, L + 2 * w))
            C[:, :, :, w:w + L] = np.einsum("qcw,mcl->qwml", zz, zt) / 4.0
            S = np.zeros((len(z), M, D))
            N = np.zeros((len(z), M, D))
            for i in range(w):       # query column i meets target column t + i: padded index t + i + w
                S += mm[:, i, None, None] * C[:, i, :, i + 1:i + 1 + D]
                N += mm[:, i, None, None] * valid[None, :, i + 1:i + 1 + D]
            sc = np.where(N >= need, S / np.maximum(N, 1), -np.inf)
            best = np.maximum(best, sc.max(2))
        out[s:s + chunk] = np.where(qlen[s:s + chunk, None] > 0, best, 0.0)
    return out


def pwms_from_counts(counts: np.ndarray) -> np.ndarray:
    """(Q, 4, w) counts -> probabilities with interpret's pseudocount (a filter with no windows: flat)."""
    c = np.asarray(counts, dtype=np.float64)
    c = c + np.where(c.sum((1, 2), keepdims=True) > 0, PSEUDOCOUNT, 0.0)
    s = c.sum(1, keepdims=True)
    return np.where(s > 0, c / np.where(s > 0, s, 1.0), 0.25)


# ------------------------------------------------------------------------------------------------
# the null: untrained filters of the same shape on the same data
@dataclass(frozen=True)
class FilterNull:
    """Activation PWMs of ``n_draws`` × ``n_filters`` untrained filters (draw-major)."""
    n_filters: int
    width: int
    n_draws: int
    pwms: np.ndarray        # (n_draws * n_filters, 4, width)
    n_sites: np.ndarray     # (n_draws * n_filters,)
    n_sequences: int        # sequences of the data the windows came from
    key: tuple


_CACHE: OrderedDict = OrderedDict()
_LOCK = threading.Lock()
_CACHE_SIZE = 16


def _cached(key, build: Callable[[], object]):
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = build()
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return value


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def null_sequences(x: torch.Tensor, width: int, padding: int = 0, windows: int = NULL_WINDOWS) -> torch.Tensor:
    """The first sequences of ``x`` (n, 4, L) holding about ``windows`` filter windows."""
    P = max(1, x.shape[-1] + 2 * padding - width + 1)
    n = min(len(x), max(MIN_NULL_SEQUENCES, windows // P))
    return x[:n]


def _fingerprint(x: torch.Tensor) -> str:
    return hashlib.sha1(x.detach().cpu().float().numpy().tobytes()).hexdigest()[:16]


def _activation_fn(name: str):
    if name == "relu":
        return torch.relu
    from playground.models.base import make_activation

    return make_activation(name)


def random_filters(n: int, width: int, seed: int = NULL_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights (n, 4, width), biases (n,)) drawn as PyTorch initialises a Conv1d(4, n, width):
    uniform in ±1/sqrt(fan_in), fan_in = 4 · width (kaiming_uniform with a = sqrt(5)), seeded."""
    g = torch.Generator().manual_seed(int(seed))
    bound = 1.0 / np.sqrt(4 * width)
    W = (torch.rand(n, 4, width, generator=g, dtype=torch.float32) * 2 - 1) * bound
    b = (torch.rand(n, generator=g, dtype=torch.float32) * 2 - 1) * bound
    return W, b


def random_filter_pwms(n: int, width: int, x: torch.Tensor, *, padding: int = 0, activation: str = "relu",
                       seed: int = NULL_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(pwms (n, 4, width), n_sites (n,)): ``n`` filters initialised as PyTorch initialises a Conv1d
    (weights and bias uniform in ±1/sqrt(4·width)), each turned into its activation PWM on ``x``
    (n_seq, 4, L) by the Basset rule of ``interpret.activation_pwms``: the windows above 0.5 × the
    filter's maximum activation, their bases counted."""
    W, b = random_filters(n, width, seed)
    W = W.reshape(n, 4 * width)
    xp = torch.nn.functional.pad(x.detach().float().cpu(), (padding, padding))
    win = xp.unfold(2, width, 1)                                      # (N, 4, P, k)
    N_, _, P, _ = win.shape
    X = win.permute(0, 2, 1, 3).reshape(N_ * P, 4 * width).contiguous()   # one window a row
    act = _activation_fn(activation)
    counts = torch.empty(n, 4 * width)
    sites = torch.empty(n)
    with torch.no_grad():
        for s in range(0, n, _CHUNK):
            A = act(torch.addmm(b[s:s + _CHUNK], X, W[s:s + _CHUNK].T))   # (windows, filters)
            fmax = A.amax(0)
            hit = ((A > (THRESHOLD * fmax).clamp_min(1e-12)) & (fmax > 0)).float()
            counts[s:s + _CHUNK] = hit.T @ X
            sites[s:s + _CHUNK] = hit.sum(0)
    return pwms_from_counts(counts.reshape(n, 4, width).double().numpy()), sites.numpy()


def model_shape(model) -> dict:
    """What the null copies from a model: n_filters, width, padding, activation."""
    if not has_filters(model):
        raise ValueError("This model has no convolution filters; a chance level needs a CNN.")
    F, _, k = model.filter_weights().shape
    spec = getattr(model, "spec", None)
    return {"n_filters": int(F), "width": int(k), "padding": int(model.filter_padding()),
            "activation": getattr(spec, "activation", "relu")}


def filter_null(model_or_shape, x: torch.Tensor, n_draws: int = N_DRAWS, seed: int = NULL_SEED) -> FilterNull:
    """The null of untrained networks: ``n_draws`` sets of filters shaped like ``model_or_shape``'s
    first layer (a CNN, or a dict from ``model_shape``), scored on a subsample of ``x`` (the data
    the observed PWMs were read from). Cached by shape, data, draws and seed."""
    shape = model_or_shape if isinstance(model_or_shape, dict) else model_shape(model_or_shape)
    F, k, pad, act = shape["n_filters"], shape["width"], shape.get("padding", 0), shape.get("activation", "relu")
    xs = null_sequences(x, k, pad)
    key = ("filters", F, k, pad, act, _fingerprint(xs), int(n_draws), int(seed))

    def build():
        pwms, sites = random_filter_pwms(F * int(n_draws), k, xs, padding=pad, activation=act, seed=seed)
        return FilterNull(F, k, int(n_draws), pwms, sites, len(xs), key)

    return _cached(key, build)


def recovery_null(null: FilterNull, motif_pwm: np.ndarray, min_sites: int = MIN_SITES) -> np.ndarray:
    """(n_draws,) the motif-recovery score of each untrained draw: its best filter's match
    (filters with fewer than ``min_sites`` windows skipped; 0 when none is left, as
    ``interpret.motif_recovery`` reports it). Cached."""
    pwm = np.asarray(motif_pwm, dtype=np.float64)
    key = ("recovery", null.key, hashlib.sha1(pwm.round(8).tobytes()).hexdigest()[:16], int(min_sites))

    def build():
        s = best_match_scores(null.pwms, [pwm])[:, 0]
        s = np.where(null.n_sites >= min_sites, s, -np.inf).reshape(null.n_draws, null.n_filters).max(1)
        return np.where(np.isfinite(s), s, 0.0)

    return _cached(key, build)


def jaspar_null(null: FilterNull, collection=None, min_sites: int = MIN_SITES,
                n: int = JASPAR_DRAWS) -> np.ndarray:
    """(≤ n,) the best JASPAR hit (over the whole collection) of each of ``n`` untrained filters of
    this shape on these data: what a filter's top hit scores by chance. Cached."""
    from playground.data.motifs import jaspar_collection

    coll = collection or jaspar_collection()
    key = ("jaspar", null.key, coll.release, len(coll), int(min_sites), int(n))

    def build():
        ok = np.flatnonzero(null.n_sites >= min_sites)[:n]
        if len(ok) == 0:
            return np.zeros(0)
        return best_match_scores(null.pwms[ok], list(coll.pwms), chunk=8).max(1)

    return _cached(key, build)


def shuffled_motif_null(pwms: FilterPWMs | np.ndarray, motif_pwm: np.ndarray, n_draws: int = N_DRAWS,
                        seed: int = NULL_SEED, n_sites: np.ndarray | None = None,
                        min_sites: int = MIN_SITES) -> np.ndarray:
    """(n_draws,) Tomtom's other null: the observed filters' best match to column-shuffled copies
    of the motif (same columns, random order). Strict for motifs whose columns are distinct;
    lenient for repetitive ones (a shuffled GC box is still a GC box)."""
    if isinstance(pwms, FilterPWMs):
        n_sites, pwms = pwms.n_sites, pwms.pwms
    P = np.asarray(pwms, dtype=np.float64)
    keep = np.ones(len(P), bool) if n_sites is None else np.asarray(n_sites) >= min_sites
    if not keep.any():
        return np.zeros(n_draws)
    pwm = np.asarray(motif_pwm, dtype=np.float64)
    rng = np.random.default_rng(int(seed))
    shuffled = [pwm[:, rng.permutation(pwm.shape[1])] for _ in range(int(n_draws))]
    return best_match_scores(P[keep], shuffled).max(0)


# ------------------------------------------------------------------------------------------------
# observed score + null -> a chance level
@dataclass(frozen=True)
class Chance:
    """An observed score beside its null: the band (95th percentile), median and p-value."""
    score: float
    p_value: float
    band: float
    median: float
    n_draws: int
    method: str = "untrained networks"

    @property
    def above_chance(self) -> bool:
        return bool(self.p_value < ALPHA and self.score > self.band)

    @property
    def verdict(self) -> str:
        return "recovered" if self.above_chance else "at chance"

    @property
    def p_text(self) -> str:
        floor = 1.0 / (1 + self.n_draws)
        return f"p < {floor * 1.0001:.3f}" if self.p_value <= floor * 1.0001 else f"p = {self.p_value:.2f}"

    def describe(self) -> str:
        return (f"{self.verdict}: {self.score:.2f} vs chance {self.median:.2f} (95 % of {self.n_draws} "
                f"{self.method} ≤ {self.band:.2f}), {self.p_text}")


def chance_of(score: float, null: np.ndarray, method: str = "untrained networks") -> Chance:
    """The chance level of ``score`` given null scores of the same statistic."""
    null = np.asarray(null, dtype=np.float64)
    n = len(null)
    if n == 0:
        return Chance(float(score), 1.0, float("nan"), float("nan"), 0, method)
    p = (1 + int((null >= score - 1e-12).sum())) / (1 + n)
    return Chance(float(score), float(p), float(np.quantile(null, BAND_QUANTILE)), float(np.median(null)), n, method)


def recovery_chance(model, x: torch.Tensor, recovery: list[dict], motifs: list, n_draws: int = N_DRAWS,
                    seed: int = NULL_SEED, min_sites: int = MIN_SITES) -> list[Chance]:
    """One Chance per row of ``interpret.motif_recovery(pwms, motifs)``: the row's score against the
    best-of-n scores of untrained networks shaped like ``model`` on ``x`` (the data the PWMs read)."""
    if not recovery:
        return []
    null = filter_null(model, x, n_draws, seed)
    return [chance_of(r["score"] if r["filter"] is not None else 0.0, recovery_null(null, m.pwm, min_sites))
            for r, m in zip(recovery, motifs)]


def jaspar_chance(score: float, null_scores: np.ndarray) -> Chance:
    return chance_of(score, null_scores, "untrained filters' best JASPAR hits")


def with_jaspar_chance(rows: list[dict], null_scores: np.ndarray) -> list[dict]:
    """``interpret.jaspar_table`` rows with the chance level of each filter's top hit beside it:
    'chance r (95 %)' (the band of ``jaspar_null``), 'p (hit 1)' and 'hit 1 is' ('above chance' or
    'at chance'). Rows without hits (too few windows) are left as they are."""
    out = []
    for row in rows:
        row = dict(row)
        if "r 1" in row:
            ch = jaspar_chance(float(row["r 1"]), null_scores)
            row["chance r (95 %)"] = round(ch.band, 3)
            row["p (hit 1)"] = round(ch.p_value, 3)
            row["hit 1 is"] = "above chance" if ch.above_chance else "at chance"
        out.append(row)
    return out


# ------------------------------------------------------------------------------------------------
# lesson metrics (playground.lessons): the corrected motif score
def trainer_chance(tr, motifs: list) -> list[Chance]:
    """The chance levels of the trainer's motif recovery, as the DNA page computes them (PWMs read
    from the training set, at most 4000 sequences). Memoised on the trainer's step."""
    from playground.interpret import activation_pwms, motif_recovery

    if not motifs or not has_filters(tr.model):
        return []
    want = (tr.steps, tuple(m.label for m in motifs))
    memo = getattr(tr, "_motif_chance_memo", None)
    if memo is not None and memo[0] == want:
        return memo[1]
    x = tr.data.x_train[:4000]
    rec = motif_recovery(activation_pwms(tr.model, x), motifs)
    out = recovery_chance(tr.model, x, rec, motifs)
    tr._motif_chance_memo = (want, out)
    return out


def chance_metrics(motifs: list) -> dict[str, Callable]:
    """motif_p: the largest p-value over the planted motifs (every motif must beat chance);
    motif_above_chance: 1 when every planted motif is recovered above chance, else 0."""
    def p(tr) -> float:
        ch = trainer_chance(tr, motifs)
        return max(c.p_value for c in ch) if ch else float("nan")

    def above(tr) -> float:
        ch = trainer_chance(tr, motifs)
        return float(all(c.above_chance for c in ch)) if ch else float("nan")

    return {"motif_p": p, "motif_above_chance": above}


__all__ = ["ALPHA", "BAND_QUANTILE", "Chance", "FilterNull", "N_DRAWS", "best_match_scores", "chance_metrics",
           "chance_of", "clear_cache", "with_jaspar_chance", "filter_null", "jaspar_chance", "jaspar_null", "model_shape",
           "random_filter_pwms", "random_filters", "recovery_chance", "recovery_null", "shuffled_motif_null", "trainer_chance",
           "trim_bounds"]
