"""Protein data: two generated tasks, uploads, and splits that keep near-duplicates together.

Generated tasks (pure functions of their arguments and a seed; the rules are stated exactly
so a student can check what a model learned):

``solubility_set`` - one label per protein. Each family starts from a random parent:
  length uniform in [min_len, max_len]; every residue is charged (D E K R) with a per-family
  probability drawn uniformly from 0.15 to 0.45, otherwise one of the 16 other amino acids
  (uniform); in 30% of families a hydrophobic stretch of 6-9 residues from A I L M F V W
  replaces part of the parent. Family members are copies of the parent with each residue
  mutated (redrawn the same way) with probability ``mutation_rate``. The label is computed
  from each sequence itself:
      soluble (1)  <=>  fraction of D E K R >= 0.25  AND  no run of >= 6 consecutive residues from A I L M F V W
  and the regression score is
      10 × (fraction of D E K R − 0.25) − max(0, longest hydrophobic run − 5).

``secondary_structure_set`` - one label per residue (H helix, E strand, C coil). Sequences are
  built from segments of 4-12 residues, each helix-rich (70% from A E L M Q K R), strand-rich
  (70% from V I Y F W T) or coil-rich (70% from G P N D S H C); the labels follow a local rule:
      H  if at least 4 of the 7 residues i-3..i+3 are in A E L M Q K R,
      else E  if at least 3 of the 5 residues i-2..i+2 are in V I Y F W T,
      else C.
  A model that sees 7 residues around each position can reach 100% (Q3 = 1).

Splits: ``random`` or ``cluster`` ("no near-duplicates across splits"): two sequences are
near-duplicates when at least ``threshold`` of the shorter one's distinct k-mers also occur
in the other; near-duplicates are linked into clusters (single linkage) and every cluster
goes wholly to train or to test. Homologous proteins in both splits make test scores look
better than they will be on new proteins.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from playground.data.split import (DEFAULT_VAL_FRACTION, SplitData, split_indices, split_predefined, split_seed,
                                   split_three)
from playground.encoding import DNA, PROTEIN, Alphabet, tokenize

AMINO = PROTEIN.letters
CHARGED = "DEKR"
HYDROPHOBIC = "AILMFVW"
HELIX = "AELMQKR"
STRAND = "VIYFWT"
COIL = "GPNDSHC"
SS_CLASSES = ["H", "E", "C"]
IGNORE = -100
MAX_PROTEIN_LENGTH = 1000
SPLITS = {"random": "Random", "cluster": "No near-duplicates across splits (k-mer clusters)"}
# Human ubiquitin (UniProt P0CG48, first chain, 76 residues): the example protein of the ESM-2 page and lessons.
UBIQUITIN = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"

SOLUBILITY_RULE = ("soluble (1) if the fraction of charged residues D E K R is at least 0.25 **and** there is no "
                   "run of 6 or more consecutive hydrophobic residues (A I L M F V W); otherwise insoluble (0). "
                   "Score (regression) = 10 × (fraction of D E K R − 0.25) − max(0, longest hydrophobic run − 5).")
SOLUBILITY_HOW = ("Families of related proteins: a random parent (length {min_len}–{max_len}; each residue charged "
                  "(D E K R) with a per-family probability from 0.15 to 0.45, otherwise one of the other 16 amino "
                  "acids; in 30% of families a hydrophobic stretch of 6–9 residues from A I L M F V W is written in), "
                  "then {family_size} members per family, each residue mutated with probability {mutation_rate:g}. "
                  "The label is computed from each sequence: ")
SS_RULE = ("label of residue i: **H** if at least 4 of the 7 residues i−3…i+3 are helix formers (A E L M Q K R), "
           "else **E** if at least 3 of the 5 residues i−2…i+2 are strand formers (V I Y F W T), else **C**.")
SS_HOW = ("Families of related proteins built from segments of 4–12 residues, each helix-rich (70% from A E L M Q K "
          "R), strand-rich (70% from V I Y F W T) or coil-rich (70% from G P N D S H C); length {min_len}–{max_len}, "
          "{family_size} members per family, each residue mutated with probability {mutation_rate:g}. The labels "
          "follow a local rule: ")


@dataclass
class ProteinSet:
    """Sequences and labels before splitting.

    task: 'binary', 'multiclass', 'regression' or 'per_residue'. ``y``: one label per sequence
    (class ids or values), or for per-residue tasks a list of label strings (one letter per
    residue, see ``class_names``); ``mask``: optional per-residue 0/1 strings (0 = ignore).
    """

    seqs: list[str]
    y: object
    task: str
    class_names: list[str] = field(default_factory=list)
    mask: list[str] | None = None
    description: str = ""
    families: np.ndarray | None = None     # family id of every sequence (generated sets)
    alphabet: Alphabet = PROTEIN
    warnings: list[str] = field(default_factory=list)
    ids: list[str] | None = None
    sites: list | None = None              # planted motif sites per sequence (generated DNA sets)
    motif_names: list[str] | None = None
    split_labels: np.ndarray | None = None  # 'train' / 'valid' / 'test' per sequence (an upload's split column)

    def __len__(self) -> int:
        return len(self.seqs)

    @property
    def n_classes(self) -> int:
        return len(self.class_names) if self.task != "regression" else 1


# --------------------------------------------------------------------------------------------
# the rules
def longest_run(seq: str, letters: str = HYDROPHOBIC) -> int:
    """Length of the longest run of consecutive residues from ``letters``."""
    best = run = 0
    for ch in seq:
        run = run + 1 if ch in letters else 0
        best = max(best, run)
    return best


def charged_fraction(seq: str) -> float:
    return sum(ch in CHARGED for ch in seq) / max(1, len(seq))


def solubility_label(seq: str) -> int:
    return int(charged_fraction(seq) >= 0.25 and longest_run(seq) < 6)


def solubility_score(seq: str) -> float:
    return 10.0 * (charged_fraction(seq) - 0.25) - max(0, longest_run(seq) - 5)


def secondary_structure_labels(seq: str) -> str:
    """The local rule of the generated per-residue task (H / E / C for every residue)."""
    n = len(seq)
    helix = np.array([ch in HELIX for ch in seq], dtype=int)
    strand = np.array([ch in STRAND for ch in seq], dtype=int)
    out = []
    for i in range(n):
        if helix[max(0, i - 3): i + 4].sum() >= 4:
            out.append("H")
        elif strand[max(0, i - 2): i + 3].sum() >= 3:
            out.append("E")
        else:
            out.append("C")
    return "".join(out)


# --------------------------------------------------------------------------------------------
# generators
def _check_sizes(n, min_len, max_len, family_size, mutation_rate):
    if n < 4:
        raise ValueError("make at least 4 sequences")
    if not 5 <= min_len <= max_len <= MAX_PROTEIN_LENGTH:
        raise ValueError(f"lengths must satisfy 5 <= min_len <= max_len <= {MAX_PROTEIN_LENGTH}")
    if family_size < 1:
        raise ValueError("family_size must be at least 1")
    if not 0.0 <= mutation_rate <= 1.0:
        raise ValueError("mutation_rate must be between 0 and 1")


def _draw(rng, n: int, charged_p: float) -> np.ndarray:
    others = np.array([a for a in AMINO if a not in CHARGED])
    charged = np.array(list(CHARGED))
    pick = rng.random(n) < charged_p
    return np.where(pick, rng.choice(charged, n), rng.choice(others, n))


def solubility_set(n: int = 600, min_len: int = 40, max_len: int = 100, family_size: int = 3,
                   mutation_rate: float = 0.1, seed: int = 0, task: str = "binary") -> ProteinSet:
    """Generated sequence-level task: 'binary' (soluble or not) or 'regression' (the score)."""
    _check_sizes(n, min_len, max_len, family_size, mutation_rate)
    if task not in ("binary", "regression"):
        raise ValueError("task must be 'binary' or 'regression'")
    rng = np.random.default_rng(int(seed) + 101)
    seqs, fams = [], []
    fam = 0
    while len(seqs) < n:
        length = int(rng.integers(min_len, max_len + 1))
        cp = float(rng.uniform(0.15, 0.45))
        parent = _draw(rng, length, cp)
        if rng.random() < 0.3:
            run = int(rng.integers(6, 10))
            start = int(rng.integers(0, max(1, length - run + 1)))
            parent[start: start + run] = rng.choice(list(HYDROPHOBIC), min(run, length - start))
        for j in range(family_size):
            if len(seqs) >= n:
                break
            child = parent.copy()
            if j > 0:                                   # the first member is the parent itself
                hit = rng.random(length) < mutation_rate
                child[hit] = _draw(rng, int(hit.sum()), cp)
            seqs.append("".join(child))
            fams.append(fam)
        fam += 1
    if task == "binary":
        y = np.array([solubility_label(s) for s in seqs], dtype=np.float32)
        names = ["insoluble", "soluble"]
    else:
        y = np.array([solubility_score(s) for s in seqs], dtype=np.float32)
        names = []
    how = SOLUBILITY_HOW.format(min_len=min_len, max_len=max_len, family_size=family_size,
                                mutation_rate=mutation_rate)
    return ProteinSet(seqs, y, task, names, description=how + SOLUBILITY_RULE, families=np.array(fams))


def secondary_structure_set(n: int = 400, min_len: int = 40, max_len: int = 80, family_size: int = 2,
                            mutation_rate: float = 0.1, seed: int = 0) -> ProteinSet:
    """Generated per-residue task (H / E / C by a local rule)."""
    _check_sizes(n, min_len, max_len, family_size, mutation_rate)
    rng = np.random.default_rng(int(seed) + 202)
    pools = [np.array(list(HELIX)), np.array(list(STRAND)), np.array(list(COIL))]
    allaa = np.array(list(AMINO))

    def residues(kind: int, k: int) -> np.ndarray:
        return np.where(rng.random(k) < 0.7, rng.choice(pools[kind], k), rng.choice(allaa, k))

    seqs, fams = [], []
    fam = 0
    while len(seqs) < n:
        length = int(rng.integers(min_len, max_len + 1))
        parts = []
        total = 0
        while total < length:
            k = int(rng.integers(4, 13))
            parts.append(residues(int(rng.integers(0, 3)), k))
            total += k
        parent = np.concatenate(parts)[:length]
        for j in range(family_size):
            if len(seqs) >= n:
                break
            child = parent.copy()
            if j > 0:
                hit = rng.random(length) < mutation_rate
                child[hit] = rng.choice(allaa, int(hit.sum()))
            seqs.append("".join(child))
            fams.append(fam)
        fam += 1
    labels = [secondary_structure_labels(s) for s in seqs]
    how = SS_HOW.format(min_len=min_len, max_len=max_len, family_size=family_size, mutation_rate=mutation_rate)
    return ProteinSet(seqs, labels, "per_residue", list(SS_CLASSES), description=how + SS_RULE,
                      families=np.array(fams))


# --------------------------------------------------------------------------------------------
# near-duplicate clusters
def kmer_matrix(seqs: list[str], k: int = 3):
    """Sparse (n_seqs, n_kmers) 0/1 matrix of which distinct k-mers each sequence contains."""
    from scipy import sparse

    if k < 1:
        raise ValueError("k must be at least 1")
    rows, cols = [], []
    vocab: dict[str, int] = {}
    for i, s in enumerate(seqs):
        kmers = {s[j: j + k] for j in range(len(s) - k + 1)}
        for km in kmers:
            rows.append(i)
            cols.append(vocab.setdefault(km, len(vocab)))
    data = np.ones(len(rows), dtype=np.float32)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(seqs), max(1, len(vocab))))


def shared_kmer_fraction(seqs_a: list[str], seqs_b: list[str] | None = None, k: int = 3) -> np.ndarray:
    """(len(a), len(b)) matrix: shared distinct k-mers / distinct k-mers of the shorter sequence."""
    both = list(seqs_a) + list(seqs_b if seqs_b is not None else [])
    X = kmer_matrix(both, k)
    A = X[: len(seqs_a)]
    B = X[len(seqs_a):] if seqs_b is not None else A
    shared = (A @ B.T).toarray()
    na = np.asarray(A.sum(1)).ravel()
    nb = np.asarray(B.sum(1)).ravel()
    smaller = np.minimum(na[:, None], nb[None, :])
    return np.where(smaller > 0, shared / np.maximum(smaller, 1), 0.0)


def kmer_clusters(seqs: list[str], k: int = 3, threshold: float = 0.5) -> np.ndarray:
    """Cluster id for every sequence: near-duplicates (shared k-mer fraction >= threshold)
    are linked, and linked sequences share a cluster (single linkage)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    sim = shared_kmer_fraction(seqs, None, k)
    _, labels = connected_components(csr_matrix(sim >= threshold), directed=False)
    return labels


def cluster_split_indices(seqs: list[str], train_fraction: float, seed: int, k: int = 3,
                          threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train indices, test indices, cluster ids): whole clusters go to one side, in a seeded
    random order, until the test side holds about 1 - train_fraction of the sequences."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError("train fraction must be between 0 and 1")
    clusters = kmer_clusters(seqs, k, threshold)
    n = len(seqs)
    ids = np.unique(clusters)
    order = np.random.default_rng(split_seed(seed)).permutation(ids)
    want_test = max(1, int(round(n * (1 - train_fraction))))
    test_mask = np.zeros(n, bool)
    for c in order:
        if test_mask.sum() >= want_test:
            break
        members = clusters == c
        if test_mask.sum() + members.sum() > n - 1:     # keep at least one training sequence
            continue
        test_mask |= members
    if len(ids) < 2:
        raise ValueError("all sequences are near-duplicates of each other (one cluster): a split without "
                         "near-duplicates is impossible. Lower the identity threshold or use a random split.")
    return np.flatnonzero(~test_mask), np.flatnonzero(test_mask), clusters


def cluster_split_three(seqs: list[str], train_fraction: float, val_fraction: float, seed: int, k: int = 3,
                        threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test indices, cluster ids): whole clusters of near-duplicates go to one
    part, in a seeded random order: first the test part fills up to about 1 - train - val of the
    sequences, then validation up to about ``val_fraction``; the rest is for training."""
    if not (0.0 < train_fraction < 1.0 and 0.0 < val_fraction < 1.0 and train_fraction + val_fraction < 1.0):
        raise ValueError("train and validation fractions must be between 0 and 1 and leave room for a test set")
    clusters = kmer_clusters(seqs, k, threshold)
    n = len(seqs)
    ids = np.unique(clusters)
    if len(ids) < 3:
        raise ValueError("the sequences form fewer than 3 clusters of near-duplicates: a train / validation / test "
                         "split without near-duplicates is impossible. Lower the identity threshold or use a "
                         "random split.")
    order = np.random.default_rng(split_seed(seed)).permutation(ids)
    want = {2: max(1, int(round(n * (1 - train_fraction - val_fraction)))), 1: max(1, int(round(n * val_fraction)))}
    part = np.zeros(n, np.int8)        # 0 train, 1 validation, 2 test
    sizes = {1: 0, 2: 0}
    for c in order:
        members = clusters == c
        m = int(members.sum())
        for p in (2, 1):
            if sizes[p] < want[p] and (sizes[1] + sizes[2] + m <= n - 1 or sizes[p] == 0):
                part[members] = p
                sizes[p] += m
                break
    for p in (1, 2):               # a part still empty: the smallest cluster of training goes there
        if not (part == p).any():
            train_ids = np.unique(clusters[part == 0])
            smallest = min(train_ids, key=lambda c: int((clusters == c).sum()))
            part[clusters == smallest] = p
    return np.flatnonzero(part == 0), np.flatnonzero(part == 1), np.flatnonzero(part == 2), clusters


def leakage(seqs: list[str], train_idx, test_idx, k: int = 3, threshold: float = 0.5) -> float:
    """Fraction of test sequences that have a near-duplicate in the training set."""
    if len(test_idx) == 0 or len(train_idx) == 0:
        return 0.0
    sim = shared_kmer_fraction([seqs[i] for i in test_idx], [seqs[i] for i in train_idx], k)
    return float((sim.max(1) >= threshold).mean())


# --------------------------------------------------------------------------------------------
# ProteinSet -> SplitData
def per_residue_targets(labels: list[str], class_names: list[str], length: int,
                        masks: list[str] | None = None) -> np.ndarray:
    """(n, length) class ids; padding, masked residues and unknown letters are -100 (ignored)."""
    index = {c: i for i, c in enumerate(class_names)}
    out = np.full((len(labels), length), IGNORE, dtype=np.int64)
    for r, lab in enumerate(labels):
        for j, ch in enumerate(lab[:length]):
            if ch in index and (masks is None or j >= len(masks[r]) or masks[r][j] == "1"):
                out[r, j] = index[ch]
    return out


def default_k(alphabet: Alphabet) -> int:
    """k-mer size for near-duplicate detection: 3 for proteins (8000 possible 3-mers), 8 for DNA."""
    return 3 if alphabet.name == "protein" else 8


def to_split(ps: ProteinSet, split: str = "random", train_fraction: float = 0.8, seed: int = 0,
             max_length: int | None = None, k: int | None = None, threshold: float = 0.5,
             val_fraction: float = DEFAULT_VAL_FRACTION) -> SplitData:
    """Tokenise (0 = padding) and split into train / validation / test. ``split``: 'random'
    (stratified by class for class labels) or 'cluster' (no near-duplicates across the parts).
    A set with ``split_labels`` (an upload's ``split`` column) keeps its own split."""
    k = k or default_k(ps.alphabet)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}")
    n = len(ps.seqs)
    if n < 3:
        raise ValueError("need at least 3 sequences to make a training, a validation and a test set")
    L = max_length or max(len(s) for s in ps.seqs)
    x = tokenize(ps.seqs, ps.alphabet, L)
    clusters = None
    strat = np.asarray(ps.y).astype(np.int64) if ps.task in ("binary", "multiclass") else None
    labels = getattr(ps, "split_labels", None)
    if labels is not None:
        tr, va, te = split_predefined(labels, train_fraction, val_fraction, seed, strat)
    elif split == "random":
        tr, va, te = split_three(n, train_fraction, val_fraction, seed, strat)
    else:
        tr, va, te, clusters = cluster_split_three(ps.seqs, train_fraction, val_fraction, seed, k, threshold)
    if ps.task == "per_residue":
        y = torch.from_numpy(per_residue_targets(ps.y, ps.class_names, L, ps.mask))
    elif ps.task == "regression":
        y = torch.as_tensor(np.asarray(ps.y, dtype=np.float32))
    elif ps.task == "binary":
        y = torch.as_tensor(np.asarray(ps.y, dtype=np.float32))
    else:
        y = torch.as_tensor(np.asarray(ps.y, dtype=np.int64))
    meta = {"seqs": list(ps.seqs), "alphabet": ps.alphabet.name,
            "split": split if labels is None else "predefined", "description": ps.description, "clusters": clusters,
            "leakage": leakage(ps.seqs, tr, te, k, threshold) if n <= 4000 else None,
            "val_leakage": leakage(ps.seqs, tr, va, k, threshold) if n <= 4000 else None,
            "kmer_k": k, "threshold": threshold}
    if ps.task == "per_residue":
        meta["residue_labels"] = list(ps.y)
        meta["residue_masks"] = list(ps.mask) if ps.mask is not None else None
    if ps.sites is not None:
        meta["sites"] = ps.sites
        meta["motif_names"] = ps.motif_names
    n_classes = len(ps.class_names) if ps.task in ("binary", "multiclass", "per_residue") else 1
    return SplitData.from_indices(x, y, ps.task, tr, va, te, n_classes=n_classes,
                                  class_names=list(ps.class_names), meta=meta)


# --------------------------------------------------------------------------------------------
# the page's built-in sets
BUILTIN = {
    "dna_grammar": "DNA · motif grammar (two motifs at a fixed spacing)",
    "dna_planted": "DNA · one planted motif (CTCF)",
    "protein_solubility": "Protein · soluble or not (generated)",
    "protein_score": "Protein · solubility score, regression (generated)",
    "protein_ss": "Protein · secondary structure per residue (generated)",
}
GRAMMAR_HOW = ("Random DNA (50% GC). **Positive** only when motif A ({a}) is followed, {spacing} bases after its end, "
               "by motif B ({b}); each site is drawn from the motif's JASPAR matrix. **Negatives**, in equal shares: "
               "background only, A alone, B alone, and A and B at another spacing or in the other order. Neither motif "
               "alone tells the class: the model has to relate two positions {span} bases apart.")


def from_dna(ds, description: str = "") -> ProteinSet:
    """Wrap a ``playground.data.dna.DNADataset`` (same fields) for tokenising and splitting here."""
    return ProteinSet(list(ds.seqs), ds.y, ds.task, list(ds.class_names), description=description,
                      alphabet=DNA, warnings=list(getattr(ds, "warnings", [])), ids=getattr(ds, "ids", None),
                      sites=list(ds.sites) if getattr(ds, "sites", None) else None,
                      motif_names=[m.name for m in getattr(ds, "motifs", [])] or None)


def builtin_set(name: str, n: int = 1000, length: int = 60, seed: int = 0) -> ProteinSet:
    """One of the page's generated sets. ``length``: DNA length, or the longest protein (the
    shortest is half as long)."""
    if name not in BUILTIN:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(BUILTIN)}")
    if name.startswith("dna_"):
        from playground.data import dna

        if name == "dna_grammar":
            ds = dna.motif_grammar(n=n, length=length, seed=seed)
            a, b = ds.motifs
            spacing = ds.settings["spacing"]
            how = GRAMMAR_HOW.format(a=a.label, b=b.label, spacing=spacing, span=a.width + spacing)
        else:
            ds = dna.planted_motif("CTCF", n=n, length=length, seed=seed)
            how = (f"Random DNA (50% GC); half of the sequences (label 1) carry one CTCF site "
                   f"({ds.motifs[0].label}, {ds.motifs[0].width} bases, drawn from its JASPAR matrix) at a random "
                   "position. One motif, anywhere: a CNN's home ground.")
        return from_dna(ds, how)
    lo = max(10, length // 2)
    if name == "protein_ss":
        return secondary_structure_set(n, lo, length, seed=seed)
    return solubility_set(n, lo, length, seed=seed, task="binary" if name == "protein_solubility" else "regression")


# --------------------------------------------------------------------------------------------
# uploads
PER_RESIDUE_NAMES = ("ss", "ss3", "dssp", "structure", "secondary_structure", "per_residue", "residue_labels",
                     "labels_per_residue", "q3", "states")
MASK_NAMES = ("mask", "resolved", "observed", "valid", "disorder_mask")
MASKED_LETTERS = "-."
MAX_RESIDUE_CLASSES = 10


def _header_columns(data: bytes | str, filename: str) -> tuple[str, list[str]]:
    from playground.data.parsing import detect_format

    text = data.decode("utf-8-sig", "replace") if isinstance(data, bytes) else data
    fmt = detect_format(text[:100_000], filename)
    if fmt == "fasta":
        return fmt, []
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delim = {"tsv": "\t", "csv;": ";"}.get(fmt, ",")
    import csv

    row = next(csv.reader(io.StringIO(first), delimiter=delim), [])
    return fmt, [c.strip() for c in row]


def _find_column(columns: list[str], names: tuple[str, ...]) -> str | None:
    norm = {c.strip().lower().replace(" ", "_").replace("-", "_"): c for c in columns}
    return next((norm[n] for n in names if n in norm), None)


def load_protein_file(data: bytes | str, filename: str, *, per_residue: bool = False,
                      label_col: str | None = None, per_residue_col: str | None = None,
                      mask_col: str | None = None, map_rare: bool = False, max_length: int = MAX_PROTEIN_LENGTH,
                      truncate: bool = False, label_kind: str = "auto", alphabet: Alphabet = PROTEIN,
                      labels_file: tuple[str, bytes] | None = None) -> ProteinSet:
    """Read an uploaded protein file (CSV / TSV / FASTA) with the shared parser.

    Real layouts (``playground.data.protein_files``): a NetSurfP / TAPE table (a ``dssp3`` /
    ``dssp8`` column; ``per_residue_col`` 'dssp3' or 'dssp8', ``mask_col`` one or more 0/1
    columns), a FASTA with its labels in ``labels_file`` = (name, bytes), a label column found
    by name (``solubility``, ``score`` ...) or picked as ``label_col``.

    Sequence-level labels: a label column (CSV/TSV) or ``label=`` in the FASTA header.
    Per-residue labels (``per_residue=True``): a column (or FASTA header key) holding one label
    letter per residue, e.g. ``ss`` with H/E/C; '-' or '.' marks a residue to ignore; an
    optional ``mask`` column of 1/0 per residue (0 = ignore). Letters: the 20 amino acids
    and X; B Z U O (J) are mapped to X only when ``map_rare``. Sequences longer than
    ``max_length`` are an error unless ``truncate``. Raises SequenceFileError (a ValueError)
    with the line, the position and what to do. ``alphabet=DNA`` reads DNA the same way
    (U -> T offered instead of the rare amino acids).
    """
    from playground.data.parsing import SequenceFileError, parse_sequence_file

    if not 1 <= max_length <= 100_000:
        raise ValueError("max_length must be between 1 and 100000")
    common = dict(alphabet=alphabet, map_aliases=map_rare, max_length=max_length,
                  length_policy="truncate" if truncate else "pad")
    from playground.data import protein_files as PF

    real = PF.read_real_layout(data, filename, per_residue=per_residue, label_col=label_col,
                               per_residue_col=per_residue_col, mask_col=mask_col, labels_file=labels_file,
                               label_kind=label_kind, **common)
    if real is not None:
        return real
    if not per_residue and label_col is None:
        label_col = PF.label_column_for(data, filename)
    if not per_residue:
        parsed = parse_sequence_file(data, filename, label_col=label_col, label_required=True,
                                     label_kind=label_kind, **common)
        task = parsed.task
        y = parsed.labels.astype(np.float32) if task in ("binary", "regression") else parsed.labels
        return ProteinSet(parsed.seqs, y, task, list(parsed.class_names),
                          description=f"Uploaded '{filename}': {parsed.summary()}.", warnings=list(parsed.warnings),
                          ids=list(parsed.ids), alphabet=alphabet, split_labels=_split_labels(parsed))

    fmt, columns = _header_columns(data, filename)
    if per_residue_col is None:
        per_residue_col = _find_column(columns, PER_RESIDUE_NAMES) if columns else "ss"
        if per_residue_col is None:
            raise SequenceFileError(
                f"Cannot tell which column holds the per-residue labels (columns: {', '.join(columns)}).",
                hint="Name it 'ss' (one letter per residue, e.g. HHHEEECCC), or pick it in the list.")
    if mask_col is None and columns:
        mask_col = _find_column(columns, MASK_NAMES)
    parsed = parse_sequence_file(data, filename, label_required=False, per_residue_col=per_residue_col,
                                 max_classes=10**9, **common)
    if parsed.per_residue is None or any(not p for p in parsed.per_residue):
        i = next((j for j, p in enumerate(parsed.per_residue or []) if not p), 0)
        line = parsed.line_numbers[i] if parsed.line_numbers else None
        where = f"the '{per_residue_col}' column" if fmt != "fasta" else f"'{per_residue_col}=' in the header"
        raise SequenceFileError(f"Line {line}: no per-residue labels ({where} is empty).", line=line,
                                hint=f"Give one label letter per residue in {where}, e.g. {per_residue_col}=HHHEEECCC.")
    labels = [p.upper() for p in parsed.per_residue]
    letters = sorted({ch for p in labels for ch in p if ch not in MASKED_LETTERS})
    for r, p in enumerate(labels):
        for j, ch in enumerate(p):
            if not (ch.isalnum() or ch in MASKED_LETTERS):
                line = parsed.line_numbers[r]
                raise SequenceFileError(f"Line {line}, position {j + 1} of the per-residue labels: "
                                        f"'{ch}' is not a label letter.", line=line,
                                        hint="Use one letter or digit per residue (e.g. H, E, C); '-' to ignore one.")
    if len(letters) > MAX_RESIDUE_CLASSES:
        raise SequenceFileError(f"The per-residue labels use {len(letters)} different letters "
                                f"({''.join(letters)}); at most {MAX_RESIDUE_CLASSES} classes.",
                                hint="Check that the right column is picked, or merge states (e.g. 8 DSSP -> 3).")
    if len(letters) < 2:
        raise SequenceFileError(f"All per-residue labels are '{letters[0] if letters else '-'}': nothing to learn.",
                                hint="Upload proteins with at least two different residue labels.")
    order = [c for c in SS_CLASSES if c in letters] + [c for c in letters if c not in SS_CLASSES]
    masks = None
    if mask_col is not None:
        try:
            mparsed = parse_sequence_file(data, filename, label_required=False, per_residue_col=mask_col,
                                          max_classes=10**9, **common)
        except SequenceFileError as e:
            raise SequenceFileError(f"{e.message} (checking the mask column '{mask_col}')", line=e.line,
                                    hint=e.hint) from None
        masks = []
        for r, m in enumerate(mparsed.per_residue or []):
            m = m or ""
            for j, ch in enumerate(m):
                if ch not in "01":
                    line = mparsed.line_numbers[r]
                    raise SequenceFileError(f"Line {line}, position {j + 1} of the mask '{mask_col}': '{ch}' is "
                                            f"not 0 or 1.", line=line,
                                            hint="Write 1 for residues to learn from and 0 for residues to ignore.")
            masks.append(m)
    labels = ["".join(ch if ch not in MASKED_LETTERS else "-" for ch in p) for p in labels]
    warnings = list(parsed.warnings)
    n_ignored = sum(p.count("-") for p in labels) + (sum(m.count("0") for m in masks) if masks else 0)
    if n_ignored:
        warnings.append(f"{n_ignored} residue label(s) are masked and ignored by the loss and Q3.")
    return ProteinSet(parsed.seqs, labels, "per_residue", order, mask=masks,
                      description=f"Uploaded '{filename}': {len(parsed.seqs)} sequences, per-residue classes "
                                  f"{', '.join(order)}.", warnings=warnings, ids=list(parsed.ids), alphabet=alphabet,
                      split_labels=_split_labels(parsed))


def _split_labels(parsed) -> np.ndarray | None:
    """The file's own train / valid / test column (``parsing``'s ``split``), as ProteinSet.split_labels."""
    split = getattr(parsed, "split", None)
    return np.asarray(split, dtype="<U5") if split is not None else None
