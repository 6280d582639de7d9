"""Looking inside a trained DNA model: filters as PWMs, motif matching, saliency, mutagenesis.

    pwms = activation_pwms(model, x)            # one PWM per first-layer filter (Basset rule)
    best = motif_recovery(pwms, [ctcf])          # did a filter learn the planted motif?
    hits = jaspar_hits(pwms.pwms[3])             # the closest JASPAR motifs, by name
    sal = saliency(model, x[0])                  # gradient x input, (4, L)
    ism = in_silico_mutagenesis(model, x[0])     # effect of every single-base change, (4, L)
    meme_text = to_meme(pwms), jaspar_text = to_jaspar(pwms)

Filters -> PWMs (Basset, Kelley et al. 2016; Koo & Eddy 2019): for every filter, find all
windows of the data whose activation exceeds 0.5 x that filter's maximum activation over the
data, stack those windows (one-hot, aligned) and count the bases per column. Matching uses
the column-wise Pearson correlation averaged over the aligned columns, trying every offset
and both strands (the PCC idea of Tomtom), after trimming uninformative filter edges.

Models provide ``filter_weights()``, ``filter_activations(x)`` and ``filter_padding()``
(``playground.models.cnn.CNN`` does); models without filters raise ValueError.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from playground.data.motifs import (BASES, JasparCollection, Motif, information_content, jaspar_collection,
                                    normalize_pwm, reverse_complement_pwm)

THRESHOLD = 0.5        # Basset: windows above 0.5 x the filter's max activation
PSEUDOCOUNT = 0.5      # per base, when turning counts into probabilities
TRIM_IC = 0.3          # bits: filter edges below this are trimmed before matching
MIN_MATCH_COLUMNS = 6  # ... but at least this many columns (or the filter's width) are kept


def has_filters(model: nn.Module) -> bool:
    return all(hasattr(model, a) for a in ("filter_weights", "filter_activations", "filter_padding"))


def _need_filters(model):
    if not has_filters(model):
        raise ValueError("This model has no convolution filters to show; choose a CNN.")


# ------------------------------------------------------------------------------------------------
# filters -> PWMs
@dataclass
class FilterPWMs:
    counts: np.ndarray        # (F, 4, w) aligned base counts of the strongly activating windows
    n_sites: np.ndarray       # (F,) windows used per filter
    max_activation: np.ndarray  # (F,) the filter's maximum activation over the data
    weights: np.ndarray       # (F, 4, w) raw first-layer weights

    @property
    def n_filters(self) -> int:
        return len(self.n_sites)

    @property
    def width(self) -> int:
        return int(self.counts.shape[2])

    @property
    def pwms(self) -> np.ndarray:
        """(F, 4, w) probabilities (a pseudocount keeps unseen bases above zero)."""
        return np.stack([normalize_pwm(c, PSEUDOCOUNT if c.sum() > 0 else 0.0) for c in self.counts])

    def information(self) -> np.ndarray:
        """(F,) total information content (bits) of each filter's PWM."""
        return np.array([information_content(p).sum() if n > 0 else 0.0 for p, n in zip(self.pwms, self.n_sites)])

    def motif(self, i: int) -> Motif:
        return Motif(f"filter {i + 1}", self.pwms[i], None, "learned")


def activation_pwms(model: nn.Module, x: torch.Tensor, threshold: float = THRESHOLD, max_sequences: int = 4000,
                    batch_size: int = 512) -> FilterPWMs:
    """The Basset rule: for each first-layer filter, count the bases of every window whose
    activation exceeds ``threshold`` x the filter's maximum over ``x`` (one-hot (n, 4, L))."""
    _need_filters(model)
    x = x[:max_sequences]
    w = model.filter_weights()
    F_, _, k = w.shape
    pad = model.filter_padding()
    dev = next(model.parameters()).device
    acts = []
    for i in range(0, len(x), batch_size):
        acts.append(model.filter_activations(x[i:i + batch_size].to(dev)).float().cpu())
    act = torch.cat(acts)                                        # (n, F, P)
    fmax = act.amax(dim=(0, 2))                                  # (F,)
    thr = (threshold * fmax).clamp_min(1e-12)[None, :, None]
    mask = (act > thr) & (fmax[None, :, None] > 0)
    # windows of the input aligned with each output position (zero padding = no base)
    xp = torch.nn.functional.pad(x.float().cpu(), (pad, pad + k))
    P = act.shape[2]
    win = xp.unfold(2, k, 1)[:, :, :P, :]                        # (n, 4, P, k)
    counts = torch.einsum("nfp,ncpk->fck", mask.float(), win)   # (F, 4, k)
    return FilterPWMs(counts.numpy().astype(np.float64), mask.sum(dim=(0, 2)).numpy(), fmax.numpy(),
                      w.numpy().astype(np.float64))


def weight_logo_matrix(weights: np.ndarray) -> np.ndarray:
    """Raw filter weights (4, w) centred per column (what a weight logo shows)."""
    w = np.asarray(weights, dtype=np.float64)
    return w - w.mean(0, keepdims=True)


def information_matrix(pwm: np.ndarray) -> np.ndarray:
    """(4, w) letter heights of an information-content logo: p x IC(column)."""
    pwm = np.asarray(pwm, dtype=np.float64)
    return pwm * information_content(pwm)[None, :]


def trim_pwm(pwm: np.ndarray, min_ic: float = TRIM_IC, min_columns: int = MIN_MATCH_COLUMNS) -> tuple[np.ndarray, int]:
    """Drop uninformative columns at both ends, keeping at least ``min_columns`` (or the
    whole width) around the informative core, so one lucky column cannot make a match.
    Returns (trimmed PWM, first kept column)."""
    w = pwm.shape[1]
    ic = information_content(pwm)
    keep = np.flatnonzero(ic >= min_ic)
    if len(keep) == 0:
        return pwm[:, :0], 0
    lo, hi = int(keep[0]), int(keep[-1]) + 1
    need = min(min_columns, w)
    while hi - lo < need:  # widen around the core, towards the more informative side first
        left = ic[lo - 1] if lo > 0 else -1.0
        right = ic[hi] if hi < w else -1.0
        if left >= right:
            lo -= 1
        else:
            hi += 1
    return pwm[:, lo:hi], lo


# ------------------------------------------------------------------------------------------------
# matching: column-wise Pearson over all offsets and both strands
def _standardize_columns(m: np.ndarray) -> np.ndarray:
    """(..., 4, w) -> columns centred and scaled so the dot product of two columns / 4 is
    their Pearson correlation (a flat column becomes zeros: correlation 0)."""
    c = m - m.mean(-2, keepdims=True)
    sd = np.sqrt((c * c).mean(-2, keepdims=True))
    return np.where(sd > 1e-9, c / np.where(sd > 1e-9, sd, 1.0), 0.0)


@dataclass(frozen=True)
class Match:
    score: float     # mean column-wise Pearson over the aligned columns
    offset: int      # target column aligned with the query's first (trimmed) column (may be negative)
    strand: str      # '+' or '-' (the query's reverse complement matched)
    overlap: int     # aligned columns
    target: int = 0  # index of the target in the list / collection
    name: str = ""
    matrix_id: str | None = None


class _Targets:
    """Target PWMs stacked into one zero-padded array for vectorised matching."""

    def __init__(self, pwms: list[np.ndarray]):
        self.lengths = np.array([p.shape[1] for p in pwms])
        self.Lmax = int(self.lengths.max()) if len(pwms) else 0
        z = np.zeros((len(pwms), 4, self.Lmax))
        for i, p in enumerate(pwms):
            z[i, :, :p.shape[1]] = _standardize_columns(np.asarray(p, dtype=np.float64))
        self.z = z                                                  # (M, 4, Lmax)
        self.valid = np.arange(self.Lmax)[None, :] < self.lengths[:, None]


_TARGET_CACHE: dict = {}


def _collection_targets(coll: JasparCollection) -> _Targets:
    key = (coll.release, len(coll), coll.ids[:3])
    if key not in _TARGET_CACHE:
        _TARGET_CACHE[key] = _Targets(list(coll.pwms))
    return _TARGET_CACHE[key]


def _scan(query: np.ndarray, t: _Targets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best mean column Pearson of ``query`` (4, q) against every target, over offsets where
    the shorter of the two is fully covered. Returns (score (M,), offset (M,), overlap (M,))."""
    q = query.shape[1]
    zq = _standardize_columns(query)                                 # (4, q)
    C = np.einsum("cq,mcl->qml", zq, t.z) / 4.0                     # (q, M, Lmax) column correlations
    M, L = t.z.shape[0], t.Lmax
    offsets = np.arange(-(q - 1), L)                                 # target col aligned with query col 0
    D = len(offsets)
    S = np.zeros((M, D))
    N = np.zeros((M, D))
    Cp = np.zeros((q, M, L + 2 * q))
    Cp[:, :, q:q + L] = C
    Vp = np.zeros((M, L + 2 * q))
    Vp[:, q:q + L] = t.valid
    for i in range(q):
        # query column i meets target column offset + i, i.e. padded index offset + i + q
        start = offsets[0] + i + q
        S += Cp[i, :, start:start + D]
        N += Vp[:, start:start + D]
    need = np.minimum(q, t.lengths)[:, None]
    score = np.where(N >= need, S / np.maximum(N, 1), -np.inf)
    best = score.argmax(1)
    idx = np.arange(M)
    return score[idx, best], offsets[best], N[idx, best].astype(int)


def match_pwm(query: np.ndarray, targets: list[np.ndarray] | _Targets, trim: bool = True) -> list[Match]:
    """Match one PWM (4, w) against target PWMs on both strands. One Match per target,
    in the targets' order. With ``trim``, uninformative query edges are dropped first."""
    q = np.asarray(query, dtype=np.float64)
    shift = 0
    if trim:
        q, shift = trim_pwm(q)
    t = targets if isinstance(targets, _Targets) else _Targets([np.asarray(p, dtype=np.float64) for p in targets])
    M = len(t.lengths)
    if q.shape[1] == 0:
        return [Match(0.0, 0, "+", 0, i) for i in range(M)]
    s_f, o_f, n_f = _scan(q, t)
    s_r, o_r, n_r = _scan(reverse_complement_pwm(q), t)
    out = []
    for i in range(M):
        if s_r[i] > s_f[i]:
            out.append(Match(float(s_r[i]), int(o_r[i]), "-", int(n_r[i]), i))
        else:
            out.append(Match(float(s_f[i]), int(o_f[i]) - shift, "+", int(n_f[i]), i))
    return out


def motif_recovery(pwms: FilterPWMs, motifs: list[Motif], min_sites: int = 5) -> list[dict]:
    """For each planted motif: the filter whose PWM matches it best, and the score (mean
    column-wise Pearson, 1 = identical). Filters with fewer than ``min_sites`` windows are skipped."""
    if not motifs:
        return []
    t = _Targets([m.pwm for m in motifs])
    best = [None] * len(motifs)
    P = pwms.pwms
    for f in range(pwms.n_filters):
        if pwms.n_sites[f] < min_sites:
            continue
        for j, mt in enumerate(match_pwm(P[f], t)):
            if best[j] is None or mt.score > best[j][1].score:
                best[j] = (f, mt)
    out = []
    for m, b in zip(motifs, best):
        if b is None:
            out.append({"motif": m.label, "filter": None, "score": 0.0, "strand": "+", "offset": 0, "overlap": 0})
        else:
            f, mt = b
            out.append({"motif": m.label, "filter": f, "score": mt.score, "strand": mt.strand, "offset": mt.offset,
                        "overlap": mt.overlap})
    return out


def rank_filters(pwms: FilterPWMs, motifs: list[Motif] | None = None, min_sites: int = 5) -> list[int]:
    """Filter indices, most interesting first: by the best match to any planted motif, else
    by information content. Filters with fewer than ``min_sites`` windows go last."""
    ic = pwms.information()
    key = ic.copy()
    if motifs:
        t = _Targets([m.pwm for m in motifs])
        P = pwms.pwms
        key = np.array([max(mt.score for mt in match_pwm(P[f], t)) if pwms.n_sites[f] >= min_sites else -1.0
                        for f in range(pwms.n_filters)]) + 1e-3 * ic
    key = np.where(pwms.n_sites >= min_sites, key, key - 1e3)
    return [int(i) for i in np.argsort(-key, kind="stable")]


def jaspar_hits(pwm: np.ndarray, top: int = 5, collection: JasparCollection | None = None) -> list[Match]:
    """The ``top`` JASPAR CORE vertebrate motifs closest to a PWM (mean column Pearson)."""
    coll = collection or jaspar_collection()
    matches = match_pwm(pwm, _collection_targets(coll))
    order = sorted(range(len(matches)), key=lambda i: -matches[i].score)[:top]
    return [Match(matches[i].score, matches[i].offset, matches[i].strand, matches[i].overlap, i, coll.names[i],
                  coll.ids[i]) for i in order]


def jaspar_table(pwms: FilterPWMs, top: int = 3, min_sites: int = 5, collection: JasparCollection | None = None,
                 filters: list[int] | None = None) -> list[dict]:
    """One row per filter: windows used, information content and its best JASPAR hits."""
    coll = collection or jaspar_collection()
    targets = _collection_targets(coll)
    P = pwms.pwms
    ic = pwms.information()
    rows = []
    for f in (filters if filters is not None else range(pwms.n_filters)):
        row = {"filter": f + 1, "sites": int(pwms.n_sites[f]), "information (bits)": round(float(ic[f]), 2),
               "consensus": "".join(BASES[i] for i in P[f].argmax(0))}
        if pwms.n_sites[f] >= min_sites:
            ms = match_pwm(P[f], targets)
            order = sorted(range(len(ms)), key=lambda i: -ms[i].score)[:top]
            for r, i in enumerate(order, start=1):
                row[f"hit {r}"] = f"{coll.names[i]} ({coll.ids[i]})"
                row[f"r {r}"] = round(ms[i].score, 3)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------
# one sequence: saliency and in-silico mutagenesis
def _output_of(model, x, target: int | None):
    out = model(x)
    if out.dim() == 2 and out.shape[1] > 1:
        if target is None:
            raise ValueError("choose which class to explain")
        return out[:, target]
    return out.reshape(len(out), -1)[:, 0]


def saliency(model: nn.Module, x: torch.Tensor, target: int | None = None) -> np.ndarray:
    """Gradient x input of the model's output (logit of class ``target`` for several classes)
    with respect to one one-hot sequence (4, L). Returns (4, L); only the present base of each
    column is non-zero, its height how much that base pushes the output up (or down)."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    xi = x.detach().clone().float().to(dev)[None].requires_grad_(True)
    out = _output_of(model, xi, target)
    grad, = torch.autograd.grad(out.sum(), xi)
    model.train(was)
    return (grad * xi).detach().cpu().numpy()[0]


def in_silico_mutagenesis(model: nn.Module, x: torch.Tensor, target: int | None = None) -> np.ndarray:
    """Change every position to every other base and record the change of the model's output
    (logit for classes): (4, L) with 0 at the sequence's own base. The 3·L variants run in a few
    batched forward passes (:func:`playground.mutation.ism`, which gives (L, 4) and probabilities)."""
    from playground.mutation import ism

    return ism(model, x, target).T.copy()


# ------------------------------------------------------------------------------------------------
# export (Bio.motifs)
def _bio_motifs(pwms: FilterPWMs, min_sites: int = 1, filters: list[int] | None = None):
    from Bio import motifs as bm

    out = []
    for f in (filters if filters is not None else range(pwms.n_filters)):
        if pwms.n_sites[f] < min_sites:
            continue
        c = pwms.counts[f]
        m = bm.Motif(alphabet="ACGT", counts={b: [float(v) for v in c[i]] for i, b in enumerate(BASES)})
        m.name = f"filter{f + 1}"
        m.matrix_id = f"filter{f + 1}"
        out.append(m)
    return out


def to_jaspar(pwms: FilterPWMs, min_sites: int = 1, filters: list[int] | None = None) -> str:
    """The filters' count matrices in JASPAR format (written by Bio.motifs)."""
    from Bio import motifs as bm

    ms = _bio_motifs(pwms, min_sites, filters)
    return bm.write(ms, "jaspar") if ms else ""


def to_meme(pwms: FilterPWMs, min_sites: int = 1, filters: list[int] | None = None) -> str:
    """The filters as a MEME (minimal format) motif file, e.g. for Tomtom. Bio.motifs reads
    this format ('minimal') but does not write it, so it is written here from Bio motifs."""
    ms = _bio_motifs(pwms, min_sites, filters)
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for m in ms:
        n = max(1, int(round(sum(m.counts[b][0] for b in BASES))))
        pwm = m.counts.normalize(pseudocounts=PSEUDOCOUNT)
        lines.append(f"MOTIF {m.name}")
        lines.append(f"letter-probability matrix: alength= 4 w= {m.length} nsites= {n} E= 0")
        for j in range(m.length):
            lines.append(" ".join(f"{pwm[b][j]:.6f}" for b in BASES))
        lines.append("")
    return "\n".join(lines)


__all__ = ["FilterPWMs", "Match", "activation_pwms", "has_filters", "in_silico_mutagenesis", "information_matrix",
           "jaspar_hits", "jaspar_table", "match_pwm", "motif_recovery", "rank_filters", "saliency", "to_jaspar", "to_meme",
           "trim_pwm", "weight_logo_matrix"]

from playground.convolution import convolve_by_hand  # noqa: E402,F401
