"""DNA data sets for the CNN lessons. Each is a pure function of its settings and a seed.

    data = planted_motif("CTCF", n=2000, length=50, seed=0)   # positives carry a CTCF site
    data.seqs[0], data.y[0], data.sites[0]     # the sequence, its label, where the motif is
    split = data.split(train_fraction=0.8, seed=0)             # -> train / validation / test for the Trainer

- ``planted_motif``: binary; positives carry one site sampled from a motif's PWM (or its
  consensus) at a random position, on either strand if asked; negatives are background.
- ``planted_multiclass``: 2-5 classes, one motif each.
- ``motif_grammar``: positive only when motif A is followed by motif B at a fixed spacing;
  either motif alone (or at another spacing) is negative.
- ``eight_mer_regression``: the course's 65,536 8-mers with a hand-made score.
- ``from_parsed``: an uploaded CSV / FASTA (see ``playground.data.parsing``).
- ``load_genomic_benchmark``: real human promoter/enhancer sets (``genomic-benchmarks``).
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from playground import encoding
from playground.data.motifs import Motif, reverse_complement_pwm, resolve_motif, sample_from_pwm
from playground.data.split import SplitData
from playground.errors import PlaygroundError

BASES = "ACGT"
_BASE_BYTES = np.frombuffer(b"ACGTN", dtype=np.uint8)


@dataclass(frozen=True)
class Site:
    """Where a motif was planted: columns [start, end) of the sequence (0-based), strand + or -."""
    motif: str
    start: int
    end: int
    strand: str = "+"


@dataclass
class DNADataset:
    name: str
    seqs: list[str]
    y: np.ndarray                     # float 0/1 (binary), int class ids (multiclass), float (regression)
    task: str                         # 'binary', 'multiclass', 'regression'
    class_names: list[str] = field(default_factory=list)
    sites: list[list[Site]] = field(default_factory=list)   # planted sites per sequence ([] for real data)
    motifs: list[Motif] = field(default_factory=list)       # the planted motifs
    settings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    ids: list[str] | None = None
    true_y: np.ndarray | None = None  # labels before label noise
    split_labels: np.ndarray | None = None  # 'train' / 'valid' / 'test' per sequence (a published or the file's own split)
    _x: torch.Tensor | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.seqs)

    @property
    def length(self) -> int:
        return max((len(s) for s in self.seqs), default=0)

    @property
    def n_classes(self) -> int:
        return len(self.class_names) if self.task != "regression" else 1

    def one_hot(self) -> torch.Tensor:
        """(n, 4, length) float one-hot (A C G T); N and padding are all zeros."""
        if self._x is None:
            self._x = encoding.one_hot(self.seqs, encoding.DNA, self.length)
        return self._x

    def split(self, train_fraction: float = 0.8, seed: int = 0, val_fraction: float = 0.1) -> SplitData:
        """A seeded train / validation / test split for the Trainer (stratified by class). A set
        with ``split_labels`` (a benchmark's published split, an upload's ``split`` column) keeps
        it, with validation carved from its training rows when it names none. ``meta`` keeps the
        dataset and the indices, so the sequences and their planted sites can be looked up."""
        y = self.y.astype(np.int64) if self.task == "multiclass" else self.y.astype(np.float32)
        labels = getattr(self, "split_labels", None)
        data = SplitData.from_arrays(self.one_hot(), y, self.task, train_fraction, seed, val_fraction,
                                     split_labels=labels,
                                     n_classes=max(2, self.n_classes), class_names=list(self.class_names),
                                     meta={"dataset": self.name, "length": self.length,
                                           "predefined_split": labels is not None})
        return data

    def summary(self) -> str:
        txt = f"{len(self)} sequences × {self.length} bp"
        if self.task == "regression":
            return txt + f"; scores {self.y.min():.2f} to {self.y.max():.2f}"
        counts = np.bincount(self.y.astype(int), minlength=self.n_classes)
        return txt + "; " + ", ".join(f"{c}: {n}" for c, n in zip(self.class_names, counts))

    def to_frame(self):
        import pandas as pd

        df = pd.DataFrame({"id": self.ids or [f"seq{i + 1}" for i in range(len(self))], "sequence": self.seqs,
                           "label": [self.class_names[int(v)] if self.task != "regression" else float(v)
                                     for v in self.y]})
        if self.sites:
            df["sites"] = [";".join(f"{s.motif}:{s.start + 1}-{s.end}{s.strand}" for s in ss) for ss in self.sites]
        return df


# --------------------------------------------------------------------------------------------
# building blocks
def background(n: int, length: int, gc: float, rng: np.random.Generator) -> np.ndarray:
    """Random DNA (n, length) of base ids 0..3 with GC content ``gc``."""
    if not 0.0 <= gc <= 1.0:
        raise ValueError("GC content must be between 0 and 1")
    p = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
    return rng.choice(4, size=(n, length), p=p).astype(np.int8)


def ids_to_strings(ids: np.ndarray) -> list[str]:
    """Base ids (n, L) 0..3 (4 = N) -> strings."""
    ids = np.asarray(ids)
    if ids.ndim == 1:
        ids = ids[None]
    n, L = ids.shape
    raw = _BASE_BYTES[ids.astype(np.int64)].tobytes().decode("ascii")
    return [raw[i * L:(i + 1) * L] for i in range(n)]


def one_hot_ids(ids: np.ndarray) -> torch.Tensor:
    """Base ids (n, L) -> float one-hot (n, 4, L)."""
    eye = np.eye(4, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(eye[np.asarray(ids, dtype=np.int64)].transpose(0, 2, 1)))


def motif_sites(motif: Motif, n: int, rng: np.random.Generator, from_consensus: bool = False,
                noise: float = 0.0, gc: float = 0.5) -> np.ndarray:
    """``n`` motif instances (n, width): drawn from the PWM (or the consensus), then each base
    replaced by a random background base with probability ``noise``."""
    if from_consensus:
        sites = np.tile(motif.pwm.argmax(0).astype(np.int8), (n, 1))
    else:
        sites = sample_from_pwm(motif.pwm, n, rng)
    if noise > 0:
        mask = rng.random(sites.shape) < noise
        sites = np.where(mask, background(n, motif.width, gc, rng), sites).astype(np.int8)
    return sites


def plant(seqs: np.ndarray, rows: np.ndarray, sites: np.ndarray, starts: np.ndarray, strands: np.ndarray) -> None:
    """Write ``sites`` into ``seqs`` (in place) at ``starts``; '-' strand sites are reverse-complemented."""
    sites = sites.copy()
    minus = strands == "-"
    sites[minus] = 3 - sites[minus][:, ::-1]
    w = sites.shape[1]
    seqs[rows[:, None], starts[:, None] + np.arange(w)[None, :]] = sites


def _motif(m) -> Motif:
    return m if isinstance(m, Motif) else resolve_motif(str(m))


def _check_sizes(n: int, length: int, width: int):
    if n < 4:
        raise ValueError("Use at least 4 sequences.")
    if width > length:
        raise ValueError(f"The motif has {width} bases but the sequences only {length}: make the sequences longer.")


def _flip_labels(y: np.ndarray, fraction: float, n_classes: int, rng) -> np.ndarray:
    if fraction <= 0:
        return y
    y = y.copy()
    flip = rng.random(len(y)) < fraction
    if n_classes == 2:
        y[flip] = 1 - y[flip]
    else:
        y[flip] = (y[flip] + rng.integers(1, n_classes, flip.sum())) % n_classes
    return y


# --------------------------------------------------------------------------------------------
# data sets
def planted_motif(motif="CTCF", n: int = 2000, length: int = 50, gc: float = 0.5, positive_fraction: float = 0.5,
                  both_strands: bool = False, from_consensus: bool = False, motif_noise: float = 0.0,
                  label_noise: float = 0.0, seed: int = 0) -> DNADataset:
    """Binary: positives (label 1) carry one motif site at a random position, negatives are
    background DNA with GC content ``gc``. ``motif`` is a Motif, a JASPAR ID/name or a consensus."""
    m = _motif(motif)
    _check_sizes(n, length, m.width)
    rng = np.random.default_rng(int(seed))
    seqs = background(n, length, gc, rng)
    n_pos = int(round(n * positive_fraction))
    y = np.zeros(n, dtype=np.float32)
    pos_rows = rng.permutation(n)[:n_pos]
    pos_rows.sort()
    y[pos_rows] = 1
    sites = motif_sites(m, n_pos, rng, from_consensus, motif_noise, gc)
    starts = rng.integers(0, length - m.width + 1, n_pos)
    strands = np.where(rng.random(n_pos) < 0.5, "-", "+") if both_strands else np.full(n_pos, "+")
    plant(seqs, pos_rows, sites, starts, strands)
    site_list: list[list[Site]] = [[] for _ in range(n)]
    for r, s, st in zip(pos_rows, starts, strands):
        site_list[r] = [Site(m.name, int(s), int(s) + m.width, str(st))]
    true_y = y.copy()
    y = _flip_labels(y, label_noise, 2, rng).astype(np.float32)
    return DNADataset(
        f"planted {m.label}", ids_to_strings(seqs), y, "binary", ["no motif", m.name], site_list, [m],
        dict(kind="planted", motif=m.label, n=n, length=length, gc=gc, both_strands=both_strands,
             from_consensus=from_consensus, motif_noise=motif_noise, label_noise=label_noise, seed=seed),
        true_y=true_y, _x=one_hot_ids(seqs))


def planted_multiclass(motifs=("CTCF", "GATA1", "SP1 (GC box)"), n: int = 2000, length: int = 50, gc: float = 0.5,
                       both_strands: bool = False, from_consensus: bool = False, motif_noise: float = 0.0,
                       label_noise: float = 0.0, seed: int = 0) -> DNADataset:
    """Multi-class: class k carries one site of motif k (2 to 5 motifs)."""
    ms = [_motif(m) for m in motifs]
    if not 2 <= len(ms) <= 5:
        raise ValueError("Choose 2 to 5 motifs, one per class.")
    _check_sizes(n, length, max(m.width for m in ms))
    rng = np.random.default_rng(int(seed))
    seqs = background(n, length, gc, rng)
    y = np.arange(n) % len(ms)
    rng.shuffle(y)
    site_list: list[list[Site]] = [[] for _ in range(n)]
    for k, m in enumerate(ms):
        rows = np.flatnonzero(y == k)
        sites = motif_sites(m, len(rows), rng, from_consensus, motif_noise, gc)
        starts = rng.integers(0, length - m.width + 1, len(rows))
        strands = np.where(rng.random(len(rows)) < 0.5, "-", "+") if both_strands else np.full(len(rows), "+")
        plant(seqs, rows, sites, starts, strands)
        for r, s, st in zip(rows, starts, strands):
            site_list[r] = [Site(m.name, int(s), int(s) + m.width, str(st))]
    true_y = y.copy()
    y = _flip_labels(y, label_noise, len(ms), rng)
    return DNADataset(
        "planted " + " / ".join(m.name for m in ms), ids_to_strings(seqs), y.astype(np.int64), "multiclass",
        [m.name for m in ms], site_list, ms,
        dict(kind="multiclass", motifs=[m.label for m in ms], n=n, length=length, gc=gc, seed=seed,
             both_strands=both_strands, from_consensus=from_consensus, motif_noise=motif_noise,
             label_noise=label_noise),
        true_y=true_y, _x=one_hot_ids(seqs))


def motif_grammar(motif_a="GATA1", motif_b="AP-1 (FOS::JUN)", spacing: int = 4, n: int = 2000, length: int = 60,
                  gc: float = 0.5, from_consensus: bool = False, motif_noise: float = 0.0, seed: int = 0) -> DNADataset:
    """Positive only when motif A is followed, ``spacing`` bases after its end, by motif B.
    Negatives (in equal shares): background, A alone, B alone, A and B at another spacing or
    in the other order. Neither motif alone tells the class: context matters."""
    a, b = _motif(motif_a), _motif(motif_b)
    span = a.width + spacing + b.width
    if spacing < 0:
        raise ValueError("The spacing must be 0 or more bases.")
    _check_sizes(n, length, span)
    if length < span + 4:
        raise ValueError(f"A + spacing + B is {span} bases: make the sequences at least {span + 4} long.")
    rng = np.random.default_rng(int(seed))
    seqs = background(n, length, gc, rng)
    y = np.zeros(n, dtype=np.float32)
    kinds = np.array(["pair"] * (n // 2) + ["none", "a", "b", "wrong"] * (n - n // 2))[:n]
    kinds = kinds[rng.permutation(n)]
    site_list: list[list[Site]] = [[] for _ in range(n)]
    sa = motif_sites(a, n, rng, from_consensus, motif_noise, gc)
    sb = motif_sites(b, n, rng, from_consensus, motif_noise, gc)
    plus = np.full(1, "+")
    for i, kind in enumerate(kinds):
        if kind == "pair":
            s = int(rng.integers(0, length - span + 1))
            placed = [(a, sa[i], s), (b, sb[i], s + a.width + spacing)]
            y[i] = 1
        elif kind == "a":
            placed = [(a, sa[i], int(rng.integers(0, length - a.width + 1)))]
        elif kind == "b":
            placed = [(b, sb[i], int(rng.integers(0, length - b.width + 1)))]
        elif kind == "wrong":
            placed = _wrong_pair(a, b, sa[i], sb[i], spacing, length, rng)
        else:
            placed = []
        for m, site, s in placed:
            plant(seqs, np.array([i]), site[None], np.array([s]), plus)
        site_list[i] = sorted((Site(m.name, s, s + m.width, "+") for m, _, s in placed), key=lambda t: t.start)
    return DNADataset(
        f"grammar {a.name} +{spacing}bp+ {b.name}", ids_to_strings(seqs), y, "binary",
        ["no pair", f"{a.name}→{b.name}"], site_list, [a, b],
        dict(kind="grammar", motif_a=a.label, motif_b=b.label, spacing=spacing, n=n, length=length, gc=gc,
             from_consensus=from_consensus, motif_noise=motif_noise, seed=seed), _x=one_hot_ids(seqs))


def _wrong_pair(a, b, site_a, site_b, spacing, length, rng):
    """A and B not in the grammar: B before A, or A then B at a different spacing."""
    for _ in range(100):
        if rng.random() < 0.5:  # other order, any gap
            first, second, sf, ss = b, a, site_b, site_a
            gap = int(rng.integers(0, max(1, length - a.width - b.width) + 1))
        else:
            first, second, sf, ss = a, b, site_a, site_b
            gap = int(rng.integers(0, max(1, length - a.width - b.width) + 1))
            if gap == spacing:
                continue
        span = first.width + gap + second.width
        if span > length:
            continue
        s = int(rng.integers(0, length - span + 1))
        return [(first, sf, s), (second, ss, s + first.width + gap)]
    return [(a, site_a, 0)]


# --------------------------------------------------------------------------------------------
# the course's 8-mer regression
KMER_BASE_VALUES = {"A": 20.0, "C": 17.0, "G": 14.0, "T": 11.0}
KMER_BONUS = ("TAT", 10.0)
KMER_PENALTY = ("GCG", -10.0)


def eight_mer_score(seq: str) -> float:
    """Mean of the per-base values (A=20, C=17, G=14, T=11), +10 if the sequence contains TAT,
    -10 if it contains GCG."""
    s = seq.upper()
    score = sum(KMER_BASE_VALUES[c] for c in s) / len(s)
    if KMER_BONUS[0] in s:
        score += KMER_BONUS[1]
    if KMER_PENALTY[0] in s:
        score += KMER_PENALTY[1]
    return score


def eight_mer_regression(k: int = 8, seed: int = 0) -> DNADataset:
    """All 4**k k-mers (65,536 for k = 8) and their score (see ``eight_mer_score``).
    The data is fixed; ``seed`` only matters for the train/test split."""
    ids = np.array(list(itertools.product(range(4), repeat=k)), dtype=np.int8)
    seqs = ids_to_strings(ids)
    vals = np.array([KMER_BASE_VALUES[b] for b in BASES])
    score = vals[ids.astype(np.int64)].mean(1)
    score += KMER_BONUS[1] * np.array([KMER_BONUS[0] in s for s in seqs])
    score += KMER_PENALTY[1] * np.array([KMER_PENALTY[0] in s for s in seqs])
    return DNADataset(f"all {4 ** k:,} {k}-mers", seqs, score.astype(np.float32), "regression", [], [], [],
                      dict(kind="kmer8", k=k, seed=seed), _x=one_hot_ids(ids))


# --------------------------------------------------------------------------------------------
# uploads
def from_parsed(parsed, name: str = "upload") -> DNADataset:
    """A DNADataset from ``parsing.parse_sequence_file`` output (labels required)."""
    if parsed.labels is None:
        raise ValueError("The file has no labels; the DNA page trains on labelled sequences.")
    task = parsed.task
    y = parsed.labels.astype(np.float32 if task != "multiclass" else np.int64)
    seqs = parsed.seqs
    if parsed.length and any(len(s) < parsed.length for s in seqs):
        seqs = [s + "N" * (parsed.length - len(s)) for s in seqs]
    split = getattr(parsed, "split", None)
    return DNADataset(name, seqs, y, task, list(parsed.class_names), [], [], dict(kind="upload"),
                      warnings=list(parsed.warnings), ids=list(parsed.ids),
                      split_labels=np.asarray(split, dtype="<U5") if split is not None else None)


def read_sequences(path, **kwargs) -> DNADataset:
    """A labelled CSV / TSV / FASTA file -> DNADataset (the page's upload, for notebooks).
    Keyword arguments go to ``parsing.parse_sequence_file`` (seq_col, label_col, length_policy ...)."""
    from playground.data.parsing import parse_sequence_file

    p = Path(path)
    return from_parsed(parse_sequence_file(p.read_bytes(), p.name, **kwargs), name=p.name)


# --------------------------------------------------------------------------------------------
# Genomic Benchmarks (real human regulatory sequences)
GENOMIC_BENCHMARKS = {
    "human_nontata_promoters": "Human non-TATA promoters vs. non-promoters (251 bp)",
    "human_enhancers_cohn": "Human enhancers (Cohn et al.) vs. background (500 bp)",
    "human_enhancers_ensembl": "Human enhancers (Ensembl) vs. background (variable length)",
    "human_ocr_ensembl": "Human open chromatin regions (Ensembl) vs. background (variable length)",
    "demo_coding_vs_intergenomic_seqs": "Coding vs. intergenomic sequences (200 bp)",
    "demo_human_or_worm": "Human or worm (200 bp)",
    "dummy_mouse_enhancers_ensembl": "Mouse enhancers (small demo set)",
}


class GenomicBenchmarkUnavailable(PlaygroundError):
    """The data set is not in the local cache and could not be downloaded."""


def genomic_benchmarks_cache(cache_dir: str | os.PathLike | None = None) -> Path:
    """The package's cache folder (``~/.genomic_benchmarks``), or ``cache_dir``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("GENOMIC_BENCHMARKS_CACHE")
    if env:
        return Path(env)
    try:
        from genomic_benchmarks.utils.paths import CACHE_PATH
        return Path(CACHE_PATH)
    except ImportError:  # pragma: no cover - the package is a requirement
        return Path.home() / ".genomic_benchmarks"


def genomic_benchmark_available(name: str, cache_dir=None) -> bool:
    return (genomic_benchmarks_cache(cache_dir) / name / "train").is_dir()


def download_genomic_benchmark(name: str, cache_dir=None) -> Path:
    """Download a data set into the cache through the package (needs the internet)."""
    if name not in GENOMIC_BENCHMARKS:
        raise ValueError(f"Unknown Genomic Benchmarks data set '{name}'. Choose one of: {', '.join(GENOMIC_BENCHMARKS)}.")
    dest = genomic_benchmarks_cache(cache_dir)
    try:
        from genomic_benchmarks.loc2seq import download_dataset

        return Path(download_dataset(name, version=0, dest_path=dest, use_cloud_cache=True))
    except Exception as e:  # network errors come in many types (URLError, requests, OSError ...)
        raise GenomicBenchmarkUnavailable(
            f"Genomic Benchmarks data set '{name}' is not on this machine (looked in {dest / name}) and could not "
            f"be downloaded: this machine seems to be offline ({type(e).__name__}: {str(e)[:120]}). "
            "Connect to the internet and try again, copy the folder from a machine that has it, or use a "
            "planted-motif data set.") from None


def load_genomic_benchmark(name: str = "human_nontata_promoters", max_sequences: int | None = 2000,
                           max_length: int = 500, seed: int = 0, cache_dir=None, download: bool = False) -> DNADataset:
    """Read a Genomic Benchmarks data set from the package's cache (train and test folders,
    one text file per sequence, one folder per class), keeping the benchmark's own split:
    ``split_labels`` is 'train' or 'test' by the folder each sequence came from (validation
    is carved from train by ``DNADataset.split``). ``max_sequences`` is the size: None or 0
    for the full set, else a seeded subsample of that many, drawn from train and test in
    proportion and stratified by class, so the test part stays a sample of the benchmark's
    test set. Sequences are cut to at most ``max_length`` and padded with N to the longest.
    With ``download=True`` a missing set is downloaded first (needs the internet); otherwise
    a missing set raises GenomicBenchmarkUnavailable with what to do."""
    root = genomic_benchmarks_cache(cache_dir) / name
    if not genomic_benchmark_available(name, cache_dir):
        if not download:
            raise GenomicBenchmarkUnavailable(
                f"Genomic Benchmarks data set '{name}' is not on this machine yet (looked in {root}). "
                "Press 'Download' to fetch it (needs the internet; about 10-50 MB), or use a planted-motif data set.")
        root = download_genomic_benchmark(name, cache_dir)
    if max_sequences is not None and int(max_sequences) < 0:
        raise ValueError("max_sequences must be 0 or more (0 or None = the full set)")
    strata = _gb_files(root)
    classes = sorted({c for _, c in strata})
    if len(classes) < 2:
        raise GenomicBenchmarkUnavailable(f"The cached copy of '{name}' in {root} looks incomplete "
                                          f"(classes found: {classes or 'none'}). Delete the folder and download again.")
    total = sum(len(f) for f in strata.values())
    want = total if not max_sequences else min(int(max_sequences), total)
    quotas = _proportional_quotas({k: len(v) for k, v in strata.items()}, want)
    rng = np.random.default_rng(int(seed))
    table = np.full(256, ord("N"), dtype=np.uint8)
    for ch in "ACGTN":
        table[ord(ch)] = ord(ch)
        table[ord(ch.lower())] = ord(ch)
    seqs, y, ids, split = [], [], [], []
    for (part, c), files in strata.items():       # train before test, classes in name order
        q = quotas[(part, c)]
        pick = range(len(files)) if q == len(files) else np.sort(rng.choice(len(files), q, replace=False))
        k = classes.index(c)
        for i in pick:
            p = files[int(i)]
            raw = p.read_bytes().strip()
            seqs.append(table[np.frombuffer(raw, dtype=np.uint8)].tobytes().decode("ascii")[:max_length])
            y.append(k)
            ids.append(p.stem)
            split.append(part)
    L = max(len(s) for s in seqs)
    warnings = []
    if min(len(s) for s in seqs) != L:
        warnings.append(f"Lengths vary; shorter sequences are padded with N to {L} bp.")
        seqs = [s + "N" * (L - len(s)) for s in seqs]
    n_train, n_test = split.count("train"), split.count("test")
    full = {part: sum(len(f) for (p, _), f in strata.items() if p == part) for part in GB_PARTS}
    labels = np.asarray(split, dtype="<U5")
    if n_test == 0 or n_train == 0:
        missing = "test" if n_test == 0 else "train"
        warnings.append(f"The cached copy has no {missing} folder; the page splits the sequences itself.")
        labels = None
    elif want < total:
        warnings.append(f"A seeded subsample of {want:,} of {total:,} sequences: {n_train:,} of the benchmark's "
                        f"{full['train']:,} training and {n_test:,} of its {full['test']:,} test sequences.")
    n_cls = len(classes)
    task = "binary" if n_cls == 2 else "multiclass"
    yy = np.asarray(y, dtype=np.float32 if task == "binary" else np.int64)
    return DNADataset(name, seqs, yy, task, classes, [], [],
                      dict(kind="genomic", name=name, max_sequences=max_sequences or 0, seed=seed,
                           n_train=n_train, n_test=n_test, full_train=full["train"], full_test=full["test"]),
                      warnings=warnings, ids=ids, split_labels=labels)


GB_PARTS = ("train", "test")


def _gb_files(root: Path) -> dict[tuple[str, str], list[Path]]:
    """{(part, class): sorted sequence files} for the benchmark folder ``root`` (train before test)."""
    out: dict[tuple[str, str], list[Path]] = {}
    for part in GB_PARTS:
        d = root / part
        if not d.is_dir():
            continue
        for c in sorted(p.name for p in d.iterdir() if p.is_dir()):
            files = sorted(p for p in (d / c).iterdir() if p.is_file())
            if files:
                out[(part, c)] = files
    return out


def _proportional_quotas(sizes: dict, n: int) -> dict:
    """Split ``n`` over the strata in proportion to ``sizes`` (largest remainder, so they add up
    to ``n`` exactly); every non-empty stratum gets at least one when ``n`` allows."""
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    keys = list(sizes)
    exact = np.array([sizes[k] * n / total for k in keys])
    q = np.floor(exact).astype(int)
    if n >= len(keys):
        q = np.maximum(q, 1)
    q = np.minimum(q, [sizes[k] for k in keys])
    order = np.argsort(-(exact - np.floor(exact)), kind="stable")
    i = 0
    while q.sum() < n:                     # hand out the remainder, largest fractional part first
        j = order[i % len(keys)]
        if q[j] < sizes[keys[j]]:
            q[j] += 1
        i += 1
    while q.sum() > n:                     # the at-least-one rule overshot: take from the largest
        j = int(np.argmax(q))
        q[j] -= 1
    return {k: int(v) for k, v in zip(keys, q)}


def genomic_benchmark_sizes(name: str, cache_dir=None) -> dict | None:
    """{'train': n, 'test': n} of the full data set: counted in the local cache when it is
    there, else the published sizes (``GB_SIZES``); None when neither is known."""
    root = genomic_benchmarks_cache(cache_dir) / name
    if genomic_benchmark_available(name, cache_dir):
        strata = _gb_files(root)
        return {part: sum(len(f) for (p, _), f in strata.items() if p == part) for part in GB_PARTS}
    return dict(GB_SIZES[name]) if name in GB_SIZES else None


# Full train / test sizes (version 0, the version the loader downloads), as printed by the package's own
# ``genomic_benchmarks.data_check.info`` in the authors' TensorFlow baseline notebooks,
# github.com/ML-Bioinfo-CEITEC/genomic_benchmarks, experiments/tf_cnn_experiments/<name>.ipynb (commits
# 2e2ccb8 for nontata, cohn, human_or_worm and coding; d06698b for ocr; 2790a6a for mouse). human_nontata_promoters
# also in the package README (commit 08f77d0). human_enhancers_ensembl is left out: no primary source found.
GB_SIZES = {
    "human_nontata_promoters": {"train": 27097, "test": 9034},
    "human_enhancers_cohn": {"train": 20843, "test": 6948},
    "human_ocr_ensembl": {"train": 139804, "test": 34952},
    "demo_coding_vs_intergenomic_seqs": {"train": 75000, "test": 25000},
    "demo_human_or_worm": {"train": 75000, "test": 25000},
    "dummy_mouse_enhancers_ensembl": {"train": 968, "test": 242},
}

# Published baselines: test accuracy (%) of the paper's CNN, trained on the full train split and scored on the
# full test split. Grešová et al. 2023, "Genomic benchmarks: a collection of datasets for genomic sequence
# classification", BMC Genomic Data 24:25, doi:10.1186/s12863-023-01123-8 (figures as quoted in issue #12 and
# ../shared/data/README.md). Only data sets whose paper figures could be checked are listed: the others are
# left out rather than guessed (the repository's experiment notebooks hold earlier runs, not the paper's table).
GB_BASELINES = {
    "human_nontata_promoters": {"metric": "accuracy", "pytorch_cnn": 0.846, "tensorflow_cnn": 0.865,
                                "source": "Grešová et al. 2023, BMC Genomic Data 24:25 (CNN baseline)"},
}


def genomic_benchmark_baseline(name: str) -> dict | None:
    """The published baseline for a data set (see ``GB_BASELINES``), or None."""
    b = GB_BASELINES.get(name)
    return dict(b) if b else None


def estimate_epoch_seconds(model, n_train: int, length: int, batch_size: int = 32, n_val: int = 0,
                           channels: int = 4, steps: int = 3) -> float:
    """Seconds one training epoch of ``model`` should take on this machine: times ``steps``
    forward + backward passes of a copy of the model on a random (batch, channels, length)
    batch (the model itself is not touched), then scales to ``n_train`` training and ``n_val``
    validation sequences. A rough guide for the size control, not a promise (data loading,
    metrics and other processes are not counted)."""
    import copy
    import math
    import time

    if n_train <= 0:
        return 0.0
    m = copy.deepcopy(model)
    try:
        device = next(m.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    x = torch.zeros(batch_size, channels, length, device=device)
    x[:, 0] = 1.0
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad] or [torch.zeros(1, requires_grad=True)],
                          lr=0.0)

    def step():
        opt.zero_grad(set_to_none=True)
        out = m(x)
        out = out[0] if isinstance(out, (tuple, list)) else out
        out.float().pow(2).mean().backward()
        opt.step()

    m.train()
    step()                                 # warm-up (allocations, lazy init)
    t0 = time.perf_counter()
    for _ in range(max(1, steps)):
        step()
    per_step = (time.perf_counter() - t0) / max(1, steps)
    seconds = math.ceil(n_train / batch_size) * per_step
    if n_val > 0:
        m.eval()
        with torch.no_grad():
            t0 = time.perf_counter()
            m(x)
            seconds += math.ceil(n_val / batch_size) * (time.perf_counter() - t0)
    return float(seconds)


# --------------------------------------------------------------------------------------------
DATASETS = {
    "planted": "Planted motif (binary)",
    "multiclass": "Planted motifs (multi-class)",
    "grammar": "Motif grammar (two motifs, fixed spacing)",
    "kmer8": "8-mer regression (course)",
    "upload": "Upload CSV / FASTA",
    "genomic": "Genomic Benchmarks (real, needs download)",
}

__all__ = ["DNADataset", "Site", "DATASETS", "GB_BASELINES", "GB_SIZES", "GENOMIC_BENCHMARKS",
           "GenomicBenchmarkUnavailable", "background", "download_genomic_benchmark", "eight_mer_regression",
           "eight_mer_score", "estimate_epoch_seconds", "from_parsed", "genomic_benchmark_available",
           "genomic_benchmark_baseline", "genomic_benchmark_sizes", "load_genomic_benchmark", "motif_grammar", "one_hot_ids",
           "planted_motif", "planted_multiclass", "ids_to_strings", "read_sequences", "reverse_complement_pwm"]
