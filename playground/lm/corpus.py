"""Corpora for language models: sequences with structure to discover, split into training and
validation (seeded). No labels: the structure is what a language model finds on its own.

    c = make_corpus("dna", n=800, length=40, motifs=("CTCF",), seed=0)   # planted JASPAR motif(s)
    c = make_corpus("dna", motifs=("GATA1", "AP-1 (FOS::JUN)"), grammar=True, spacing=4)   # A then B, 4 bp apart
    c = make_corpus("dna", background="markov", motif_rate=0.0)      # a biased Markov chain only
    c = make_corpus("protein", n=600)                                # the generated protein families
    c = corpus_from_fasta(data, "my.fasta", alphabet="dna")          # an upload
    c.train, c.val                     # lists of strings
    c.train_sites[0]                   # [('CTCF', 12, 31)]: planted motif spans (0-based, end exclusive)
    c.motif_mask("val")                # per validation sequence, a bool array: True at planted motif bases
    c.description                      # markdown: how it was made

DNA: a background of random bases (GC content ``gc``) or of an order-``markov_order`` Markov chain
whose transition probabilities are drawn (seeded) from a Dirichlet with concentration
``markov_bias`` (smaller = more predictable); then, in a share ``motif_rate`` of the sequences, one
site of a motif (``from_consensus``: its consensus written in exactly, else sampled from the JASPAR
PWM). With ``grammar=True`` the site is the ordered pair: motif A, ``spacing`` bases, motif B.
Proteins: the segment families of ``playground.data.protein`` (helix-, strand- or coil-rich
segments), split by family so that no family has members on both sides.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from playground import encoding
from playground.data import dna as D
from playground.data.split import split_seed
from playground.errors import PlaygroundError

KINDS = {"dna": "DNA with planted motifs", "protein": "Protein families"}
BACKGROUNDS = {"uniform": "Independent bases (GC content)", "markov": "Biased Markov chain"}
MAX_CORPUS_LETTERS = 2_000_000


class CorpusError(PlaygroundError):
    """A corpus setting or an uploaded file that cannot make a corpus."""


@dataclass
class Corpus:
    name: str
    alphabet: str                      # 'dna' or 'protein'
    train: list[str]
    val: list[str]
    train_sites: list[list[tuple[str, int, int]]] = field(default_factory=list)   # per sequence (name, start, end)
    val_sites: list[list[tuple[str, int, int]]] = field(default_factory=list)
    description: str = ""
    settings: dict = field(default_factory=dict)
    motifs: list = field(default_factory=list)        # the planted playground.data.motifs.Motif objects
    warnings: list[str] = field(default_factory=list)

    def part(self, name: str) -> tuple[list[str], list[list[tuple[str, int, int]]]]:
        """(sequences, sites) of 'train' or 'val'."""
        if name not in ("train", "val"):
            raise ValueError("part must be 'train' or 'val'")
        seqs = self.train if name == "train" else self.val
        sites = self.train_sites if name == "train" else self.val_sites
        return seqs, (sites or [[] for _ in seqs])

    def motif_mask(self, part: str = "val") -> list[np.ndarray]:
        """Per sequence of ``part``, a bool array over its letters: True at planted motif bases."""
        seqs, sites = self.part(part)
        out = []
        for s, ss in zip(seqs, sites):
            m = np.zeros(len(s), bool)
            for _, a, b in ss:
                m[a:b] = True
            out.append(m)
        return out

    @property
    def n_letters(self) -> int:
        return sum(len(s) for s in self.train) + sum(len(s) for s in self.val)

    def summary(self) -> str:
        lens = [len(s) for s in self.train + self.val]
        span = f"{min(lens)}" + (f"–{max(lens)}" if max(lens) != min(lens) else "")
        return (f"{len(self.train):,} training and {len(self.val):,} validation sequences of {span} "
                f"{'bases' if self.alphabet == 'dna' else 'residues'}")


def split_train_val(n: int, val_fraction: float, seed: int, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, val) indices, each sorted; ``groups``: one id per sequence, whole groups go to one side."""
    if not 0.0 < val_fraction < 1.0:
        raise CorpusError("the validation share must be between 0 and 1", "Use e.g. 0.2 (20 %).")
    if n < 2:
        raise CorpusError(f"a corpus needs at least 2 sequences (it has {n})",
                          "Use more sequences: one part trains, the other validates.")
    rng = np.random.default_rng(split_seed(seed))
    if groups is None:
        perm = rng.permutation(n)
        n_val = min(max(1, int(round(n * val_fraction))), n - 1)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    groups = np.asarray(groups)
    ids = rng.permutation(np.unique(groups))
    val, count = [], 0
    for g in ids:
        if count >= n * val_fraction:
            break
        members = np.flatnonzero(groups == g)
        val.extend(members)
        count += len(members)
    val = np.sort(np.asarray(val, dtype=np.int64))
    train = np.setdiff1d(np.arange(n), val)
    if len(train) == 0:
        train, val = val[:1], val[1:]
    return train, val


def markov_background(n: int, length: int, order: int, bias: float, rng: np.random.Generator,
                      chain: np.random.Generator | None = None) -> np.ndarray:
    """(n, length) base ids 0..3 from an order-``order`` Markov chain with Dirichlet(``bias``) transitions
    (drawn from ``chain``, default ``rng``)."""
    if not 1 <= order <= 5:
        raise CorpusError("the Markov order must be between 1 and 5")
    if bias <= 0:
        raise CorpusError("the Markov bias (Dirichlet concentration) must be above 0",
                          "Small values (0.3) give a predictable chain, large ones (10) nearly random bases.")
    trans = (chain or rng).dirichlet(np.full(4, float(bias)), size=4 ** order)       # (contexts, 4)
    cum = np.cumsum(trans, 1)
    out = np.empty((n, length), np.int8)
    out[:, :order] = rng.integers(0, 4, (n, min(order, length)))
    u = rng.random((n, length))
    weights = 4 ** np.arange(order - 1, -1, -1)
    for t in range(order, length):
        ctx = (out[:, t - order:t].astype(np.int64) * weights).sum(1)
        out[:, t] = (u[:, t, None] > cum[ctx]).sum(1).clip(max=3)
    return out


def _sizes_ok(n: int, length: int, span: int) -> None:
    if n < 4:
        raise CorpusError(f"a corpus of {n} sequences is too small", "Use at least 4 sequences.")
    if length < span:
        raise CorpusError(f"the planted site is {span} bases long but the sequences only {length}",
                          f"Make the sequences at least {span} bases long, or choose a shorter motif.")
    if n * length > MAX_CORPUS_LETTERS:
        raise CorpusError(f"{n:,} × {length:,} letters is more than this playground trains on "
                          f"({MAX_CORPUS_LETTERS:,})", "Use fewer or shorter sequences.")


def dna_corpus(n: int = 800, length: int = 40, seed: int = 0, *, motifs=("CTCF",), motif_rate: float = 1.0,
               from_consensus: bool = True, grammar: bool = False, spacing: int = 4, background: str = "uniform",
               gc: float = 0.5, markov_order: int = 2, markov_bias: float = 0.5,
               val_fraction: float = 0.2, chain_seed: int | None = None) -> Corpus:
    """DNA with planted motifs (see the module docstring). ``motifs``: JASPAR names/IDs or consensus
    strings; with ``grammar`` exactly two (A, B). ``chain_seed``: the Markov chain's transitions
    (default ``seed``; a labelled task from the same family keeps the corpus' chain)."""
    if background not in BACKGROUNDS:
        raise CorpusError(f"unknown background {background!r}", f"Use one of {', '.join(BACKGROUNDS)}.")
    if not 0.0 <= motif_rate <= 1.0:
        raise CorpusError("the share of sequences with a motif must be between 0 and 1")
    try:
        ms = [D._motif(m) for m in motifs] if motif_rate > 0 else []
    except ValueError as e:
        raise CorpusError(f"motif not found: {e}", "Use a JASPAR name (CTCF), an ID (MA0139.1) or a consensus.") from e
    if motif_rate > 0 and not ms:
        raise CorpusError("no motif to plant", "Choose a motif, or set the motif share to 0.")
    if grammar and len(ms) != 2:
        raise CorpusError("the motif grammar needs exactly two motifs (A, then B)")
    if spacing < 0:
        raise CorpusError("the spacing must be 0 or more bases")
    span = (ms[0].width + spacing + ms[1].width) if grammar else max((m.width for m in ms), default=0)
    _sizes_ok(n, length, span)
    rng = np.random.default_rng(int(seed))
    if background == "uniform":
        seqs = D.background(n, length, gc, rng)
    else:
        chain = np.random.default_rng(int(seed if chain_seed is None else chain_seed) + 31)
        seqs = markov_background(n, length, markov_order, markov_bias, rng, chain)
    sites: list[list[tuple[str, int, int]]] = [[] for _ in range(n)]
    plus = np.full(1, "+")
    has = np.flatnonzero(rng.random(n) < motif_rate) if ms else np.zeros(0, int)
    for i in has:
        if grammar:
            a, b = ms
            s = int(rng.integers(0, length - span + 1))
            placed = [(a, s), (b, s + a.width + spacing)]
        else:
            m = ms[int(rng.integers(0, len(ms)))]
            placed = [(m, int(rng.integers(0, length - m.width + 1)))]
        for m, s in placed:
            site = D.motif_sites(m, 1, rng, from_consensus)
            D.plant(seqs, np.array([i]), site, np.array([s]), plus)
            sites[i].append((m.name, s, s + m.width))
    strings = D.ids_to_strings(seqs)
    tr, va = split_train_val(n, val_fraction, seed)
    bg = (f"independent bases ({gc:.0%} GC)" if background == "uniform" else
          f"an order-{markov_order} Markov chain (transitions drawn from Dirichlet({markov_bias:g}): "
          "some bases follow some contexts far more often)")
    if not ms:
        what = "no planted motif"
    elif grammar:
        what = (f"in {motif_rate:.0%} of the sequences the ordered pair **{ms[0].label}**, {spacing} bases, "
                f"**{ms[1].label}**")
    else:
        what = (f"in {motif_rate:.0%} of the sequences one site of " + " or ".join(f"**{m.label}**" for m in ms))
    how = "its consensus written in exactly" if from_consensus else "sampled from its JASPAR PWM"
    desc = (f"{n:,} DNA sequences of {length} bases: a background of {bg}; {what}" +
            (f" ({how})." if ms else ".") + f" Split {len(tr):,} training / {len(va):,} validation (seed {seed}).")
    name = ("grammar " if grammar else "motifs ") + " + ".join(m.name for m in ms) if ms else f"{background} background"
    return Corpus(name, "dna", [strings[i] for i in tr], [strings[i] for i in va],
                  [sites[i] for i in tr], [sites[i] for i in va], desc,
                  dict(kind="dna", n=n, length=length, seed=seed, motifs=[m.matrix_id or m.consensus for m in ms],
                       motif_labels=[m.label for m in ms], motif_rate=motif_rate,
                       from_consensus=from_consensus, grammar=grammar, spacing=spacing, background=background, gc=gc,
                       markov_order=markov_order, markov_bias=markov_bias, val_fraction=val_fraction,
                       chain_seed=seed if chain_seed is None else chain_seed),
                  ms)


def protein_corpus(n: int = 600, min_len: int = 40, max_len: int = 80, seed: int = 0, *, family_size: int = 3,
                   mutation_rate: float = 0.1, val_fraction: float = 0.2) -> Corpus:
    """The generated protein families (segments rich in helix, strand or coil formers), split by family."""
    from playground.data import protein as P

    try:
        ps = P.secondary_structure_set(n, min_len, max_len, family_size, mutation_rate, seed=seed)
    except ValueError as e:
        raise CorpusError(str(e)) from e
    tr, va = split_train_val(len(ps.seqs), val_fraction, seed, groups=ps.families)
    desc = (ps.description.split(" The labels")[0] + f" No labels are used: the model reads the sequences only. "
            f"Split by family: {len(tr):,} training / {len(va):,} validation sequences (seed {seed}).")
    return Corpus("protein families", "protein", [ps.seqs[i] for i in tr], [ps.seqs[i] for i in va],
                  [[] for _ in tr], [[] for _ in va], desc,
                  dict(kind="protein", n=n, min_len=min_len, max_len=max_len, seed=seed, family_size=family_size,
                       mutation_rate=mutation_rate, val_fraction=val_fraction))


def make_corpus(kind: str = "dna", n: int = 800, length: int = 40, seed: int = 0, **kw) -> Corpus:
    """One call from the page's settings: ``kind`` 'dna' (``dna_corpus`` keywords) or 'protein'
    (``length`` is the longest protein; ``min_len`` defaults to half of it)."""
    if kind == "dna":
        return dna_corpus(n, length, seed, **kw)
    if kind == "protein":
        kw.setdefault("min_len", max(10, length // 2))
        return protein_corpus(n, max_len=length, seed=seed, **kw)
    raise CorpusError(f"unknown corpus kind {kind!r}", f"Use one of {', '.join(KINDS)}.")


def corpus_from_fasta(data: bytes | str, filename: str = "upload.fasta", alphabet: str = "dna", *,
                      val_fraction: float = 0.2, seed: int = 0, max_length: int | None = 512,
                      map_aliases: bool = True) -> Corpus:
    """A corpus from an uploaded FASTA (or CSV / plain lines) file; labels, if any, are ignored.
    Sequences longer than ``max_length`` letters are cut (with a warning). Bad letters, empty or
    huge files raise ``SequenceFileError`` (a PlaygroundError naming the line and what to do)."""
    from playground.data.parsing import parse_sequence_file

    if alphabet not in encoding.ALPHABETS:
        raise CorpusError(f"unknown alphabet {alphabet!r}", "Use 'dna' or 'protein'.")
    parsed = parse_sequence_file(data, filename, encoding.ALPHABETS[alphabet], label_required=False,
                                 length_policy="truncate" if max_length else "pad", max_length=max_length,
                                 map_aliases=map_aliases, duplicates="keep", min_classes=1)
    seqs = [s for s in parsed.seqs if s]
    if len(seqs) < 2:
        raise CorpusError(f"'{filename}' has {len(seqs)} sequence{'s' if len(seqs) != 1 else ''}; a corpus needs "
                          "at least 2", "Upload a FASTA file with more sequences (hundreds are better).")
    if sum(map(len, seqs)) > MAX_CORPUS_LETTERS:
        raise CorpusError(f"'{filename}' has {sum(map(len, seqs)):,} letters, more than this playground trains on "
                          f"({MAX_CORPUS_LETTERS:,})", "Upload fewer or shorter sequences.")
    tr, va = split_train_val(len(seqs), val_fraction, seed)
    desc = (f"Uploaded **{filename}**: {len(seqs):,} sequences ({parsed.summary()}). "
            f"Split {len(tr):,} training / {len(va):,} validation (seed {seed}).")
    return Corpus(filename, alphabet, [seqs[i] for i in tr], [seqs[i] for i in va],
                  [[] for _ in tr], [[] for _ in va], desc,
                  dict(kind="upload", filename=filename, alphabet=alphabet, seed=seed, val_fraction=val_fraction,
                       max_length=max_length), warnings=list(parsed.warnings))
