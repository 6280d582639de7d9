"""Transcription-factor motifs as position weight matrices (PWMs).

A PWM here is a numpy array of shape (4, width): rows A, C, G, T, each column a probability
distribution over the four bases. Motifs come from real JASPAR entries (the ``pyjaspar``
package ships the JASPAR databases, so this works offline) or from a typed consensus::

    ctcf = jaspar_motif("MA0139.1")          # or jaspar_motif("CTCF")
    primer = consensus_motif("CGACCGAACTCC") # the genomics-primer exercise's motif
    resolve_motif("SP1"), resolve_motif("TGASTCA")   # names, IDs or consensus (IUPAC letters)
    sample_from_pwm(ctcf.pwm, 5, rng)        # sites drawn column by column from the PWM
"""
from __future__ import annotations

import functools
import re
import threading
import warnings
from dataclasses import dataclass

import numpy as np

BASES = "ACGT"
JASPAR_RELEASE = "JASPAR2024"

# A short list of well-known vertebrate motifs to pick from: (label shown, JASPAR matrix ID).
KNOWN_MOTIFS: dict[str, str] = {
    "CTCF": "MA0139.1",
    "TBP (TATA box)": "MA0108.2",
    "GATA1": "MA0035.4",
    "SP1 (GC box)": "MA0079.3",
    "FOXA1": "MA0148.4",
    "HNF4A": "MA0114.4",
    "TP53": "MA0106.3",
    "REST": "MA0138.2",
    "AP-1 (FOS::JUN)": "MA0099.3",
    "NRF1": "MA0506.1",
    "MAX (E-box)": "MA0058.3",
    "CREB1": "MA0018.4",
    "NFKB1": "MA0105.4",
}
PRIMER_CONSENSUS = "CGACCGAACTCC"

# IUPAC nucleotide codes -> the bases they stand for.
IUPAC = {"A": "A", "C": "C", "G": "G", "T": "T", "U": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT",
         "K": "GT", "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT"}
_ID_RE = re.compile(r"^(MA|PB|PF|PH|CN|POL|UN|CI)\d{4}(\.\d+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Motif:
    name: str
    pwm: np.ndarray               # (4, width) probabilities, rows A C G T
    matrix_id: str | None = None  # JASPAR ID, e.g. 'MA0139.1'
    source: str = "consensus"     # 'JASPAR2024', 'consensus', 'learned' ...

    @property
    def width(self) -> int:
        return int(self.pwm.shape[1])

    @property
    def consensus(self) -> str:
        return "".join(BASES[i] for i in self.pwm.argmax(0))

    @property
    def label(self) -> str:
        return f"{self.name} ({self.matrix_id})" if self.matrix_id else self.name

    def reverse_complement(self) -> "Motif":
        return Motif(self.name + " (rc)", reverse_complement_pwm(self.pwm), self.matrix_id, self.source)

    def information_content(self) -> np.ndarray:
        return information_content(self.pwm)


def normalize_pwm(counts, pseudocount: float = 0.0) -> np.ndarray:
    """Counts (4, w) -> probabilities per column (a column of zeros becomes uniform)."""
    c = np.asarray(counts, dtype=np.float64) + pseudocount
    s = c.sum(0, keepdims=True)
    out = np.where(s > 0, c / np.where(s > 0, s, 1.0), 0.25)
    return out


def reverse_complement_pwm(pwm: np.ndarray) -> np.ndarray:
    """The motif on the other strand: flip columns, swap A<->T and C<->G (rows reversed)."""
    return np.asarray(pwm)[::-1, ::-1].copy()


def information_content(pwm: np.ndarray, background=(0.25, 0.25, 0.25, 0.25)) -> np.ndarray:
    """Information content in bits of each column: sum p log2(p / background)."""
    p = np.asarray(pwm, dtype=np.float64)
    bg = np.asarray(background, dtype=np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(p / bg), 0.0)
    return terms.sum(0)


def consensus_to_pwm(consensus: str, purity: float = 1.0) -> np.ndarray:
    """A consensus (IUPAC letters allowed, e.g. 'TGASTCA') -> PWM. With ``purity`` < 1, each
    column keeps that much mass on its letter(s) and spreads the rest evenly."""
    cons = consensus.strip().upper()
    if not cons:
        raise ValueError("The consensus is empty. Type a motif such as CGACCGAACTCC.")
    pwm = np.zeros((4, len(cons)))
    for j, ch in enumerate(cons):
        if ch not in IUPAC:
            raise ValueError(f"Position {j + 1}: '{ch}' is not a DNA or IUPAC letter (A C G T, R Y S W K M B D H V N). "
                             "Remove it or replace it with N.")
        for b in IUPAC[ch]:
            pwm[BASES.index(b), j] = 1.0 / len(IUPAC[ch])
    if purity < 1.0:
        pwm = purity * pwm + (1.0 - purity) * 0.25
    return pwm


def consensus_motif(consensus: str, name: str | None = None) -> Motif:
    cons = consensus.strip().upper()
    return Motif(name or cons, consensus_to_pwm(cons), None, "consensus")


def sample_from_pwm(pwm: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` sites drawn from a PWM, column by column: int array (n, width) of base ids 0..3."""
    pwm = normalize_pwm(pwm)
    cum = np.cumsum(pwm, axis=0)  # (4, w)
    u = rng.random((n, pwm.shape[1]))
    return np.minimum((u[:, None, :] > cum[None, :, :]).sum(1), 3).astype(np.int8)


# --------------------------------------------------------------------------------------------
# JASPAR (through pyjaspar; the databases ship with the package, nothing is downloaded)
_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def _db(release: str = JASPAR_RELEASE):
    from pyjaspar import jaspardb

    import sqlite3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        db = jaspardb(release=release)
    # Streamlit runs each script run in its own thread: allow this (lock-guarded, read-only)
    # connection to be used from any thread.
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    db.conn.close()
    db.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    return db


def _motif_from_bio(m, release: str) -> Motif:
    counts = np.array([m.counts[b] for b in BASES], dtype=np.float64)
    return Motif(str(m.name), normalize_pwm(counts), str(m.matrix_id), release)


@functools.lru_cache(maxsize=256)
def jaspar_by_id(matrix_id: str, release: str = JASPAR_RELEASE) -> Motif:
    """A JASPAR matrix by ID ('MA0139.1'; without a version, the latest)."""
    with _lock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = _db(release).fetch_motif_by_id(matrix_id.strip().upper())
    if m is None:
        raise ValueError(f"JASPAR ({release}) has no matrix '{matrix_id}'. Check the ID (e.g. MA0139.1 is CTCF).")
    return _motif_from_bio(m, release)


@dataclass(frozen=True)
class JasparCollection:
    """Every matrix of a JASPAR collection, stacked for fast matching."""
    ids: tuple[str, ...]
    names: tuple[str, ...]
    pwms: tuple[np.ndarray, ...]
    release: str

    def __len__(self) -> int:
        return len(self.ids)

    def motif(self, i: int) -> Motif:
        return Motif(self.names[i], self.pwms[i], self.ids[i], self.release)


@functools.lru_cache(maxsize=4)
def jaspar_collection(release: str = JASPAR_RELEASE, collection: str = "CORE",
                      tax_group: str = "vertebrates") -> JasparCollection:
    """All latest-version matrices of a collection and taxonomic group (what pyjaspar's
    ``fetch_motifs(collection=..., tax_group=[...])`` returns), read with two SQL queries
    from the database pyjaspar ships: about 0.1 s, once per process."""
    db = _db(release)
    with _lock:
        rows = db.conn.execute(
            "SELECT m.ID, m.BASE_ID, m.VERSION, m.NAME FROM MATRIX m JOIN MATRIX_ANNOTATION a ON a.ID = m.ID "
            "AND a.TAG = 'tax_group' AND a.VAL = ? WHERE m.COLLECTION = ?", (tax_group, collection)).fetchall()
        latest: dict[str, tuple] = {}
        for internal, base, version, name in rows:
            if base not in latest or int(version) > int(latest[base][1]):
                latest[base] = (internal, int(version), name)
        keys = sorted(latest)
        internal_ids = [latest[b][0] for b in keys]
        data = db.conn.execute(f"SELECT ID, row, col, val FROM MATRIX_DATA WHERE ID IN "
                               f"({','.join('?' * len(internal_ids))})", internal_ids).fetchall() if keys else []
    cells: dict[int, list] = {}
    for internal, row, col, val in data:
        cells.setdefault(internal, []).append(("ACGT".index(row.upper()), int(col), float(val)))
    ids, names, pwms = [], [], []
    for b in keys:
        internal, version, name = latest[b]
        entries = cells.get(internal, [])
        if not entries:
            continue
        width = max(c for _, c, _ in entries)
        counts = np.zeros((4, width))
        for r, c, v in entries:
            counts[r, c - 1] = v
        ids.append(f"{b}.{version}")
        names.append(str(name))
        pwms.append(normalize_pwm(counts))
    return JasparCollection(tuple(ids), tuple(names), tuple(pwms), release)


def search_jaspar(query: str, limit: int = 25, release: str = JASPAR_RELEASE) -> list[tuple[str, str]]:
    """(ID, name) pairs whose ID or TF name contains ``query`` (case-insensitive), exact
    name matches first, from JASPAR CORE vertebrates. An exact ID of any collection works."""
    q = query.strip().upper()
    if not q:
        return []
    coll = jaspar_collection(release)
    hits = [(i, n) for i, n in zip(coll.ids, coll.names) if q in i.upper() or q in n.upper()]
    hits.sort(key=lambda t: (t[1].upper() != q, not t[1].upper().startswith(q), t[1].upper(), t[0]))
    if not hits and _ID_RE.match(q):
        try:
            m = jaspar_by_id(q, release)
            hits = [(m.matrix_id, m.name)]
        except ValueError:
            pass
    return hits[:limit]


def jaspar_motif(query: str, release: str = JASPAR_RELEASE) -> Motif:
    """A JASPAR motif by ID ('MA0139.1'), by a label of KNOWN_MOTIFS, or by TF name ('CTCF')."""
    q = query.strip()
    if q in KNOWN_MOTIFS:
        return jaspar_by_id(KNOWN_MOTIFS[q], release)
    if _ID_RE.match(q):
        return jaspar_by_id(q, release)
    for label, mid in KNOWN_MOTIFS.items():
        if label.split(" ")[0].upper() == q.upper():
            return jaspar_by_id(mid, release)
    hits = [h for h in search_jaspar(q, release=release) if h[1].upper() == q.upper()]
    if not hits:
        near = search_jaspar(q, limit=5, release=release)
        extra = f" Close matches: {', '.join(f'{n} ({i})' for i, n in near)}." if near else ""
        raise ValueError(f"No JASPAR motif is named '{q}'.{extra} Type a JASPAR ID such as MA0139.1, or a TF name.")
    return jaspar_by_id(hits[0][0], release)


def resolve_motif(text: str, release: str = JASPAR_RELEASE) -> Motif:
    """What a person typed -> a Motif: a JASPAR ID or TF name, or a consensus sequence
    (only A C G T N, or at least 4 IUPAC letters; 'consensus:ACGT...' forces a consensus)."""
    t = text.strip()
    if not t:
        raise ValueError("No motif given. Pick one from the list, type a JASPAR ID/name, or a consensus such as "
                         f"{PRIMER_CONSENSUS}.")
    if t.lower().startswith("consensus:"):
        return consensus_motif(t.split(":", 1)[1])
    if t in KNOWN_MOTIFS or _ID_RE.match(t):
        return jaspar_motif(t, release)
    same_case = t.upper() == t or t.lower() == t
    if same_case and (all(c in "ACGTN" for c in t.upper()) or (len(t) >= 4 and all(c in IUPAC for c in t.upper()))):
        return consensus_motif(t)
    return jaspar_motif(t, release)


__all__ = ["Motif", "KNOWN_MOTIFS", "PRIMER_CONSENSUS", "JASPAR_RELEASE", "JasparCollection", "consensus_motif",
           "consensus_to_pwm", "information_content", "jaspar_by_id", "jaspar_collection", "jaspar_motif",
           "normalize_pwm", "resolve_motif", "reverse_complement_pwm", "sample_from_pwm", "search_jaspar"]
