"""Real protein files as people have them: solubility tables, NetSurfP / TAPE per-residue tables,
and a sequences FASTA with its labels in a second FASTA (as FLIP ships secondary structure).

Three layouts, each read into a ``playground.data.protein.ProteinSet``:

1. **A table with one label per protein** (CSV / TSV): the label column may be called
   ``label``, ``solubility``, ``score``, ``target``, ``y``, ``value`` ... (:func:`guess_label_column`),
   or be any column the user picks (``label_col``; :func:`protein_file_columns` lists them)::

       sequence,solubility
       MKTAYIAKQRQISFVKSHFSRQ,0.73

2. **NetSurfP / TAPE per-residue tables** (CSV / TSV), found from the header (a ``dssp3`` or
   ``dssp8`` column, see :func:`is_per_residue_table`): ``input`` holds the residues, space-separated
   or not (``M K T A`` or ``MKTA``); ``dssp3`` (H E C) and ``dssp8`` (H G I E B T S C) one state per
   residue; ``disorder`` (1 = ordered, 0 = disordered, as in NetSurfP-2.0) and 0/1 mask columns
   (``mask``, ``evaluation_mask``, ``seq_mask``, ``cb513_mask`` ...). The target is ``dssp3``
   (default; made from ``dssp8`` when the file has only that) or ``dssp8``. A residue is ignored
   (-100 in the targets) where a chosen mask column is 0, and where its state is '-' or '.'::

       input,dssp3,dssp8,disorder,mask
       M K T A,C C H H,C C H H,1 1 1 1,0 1 1 1

3. **A sequences FASTA plus a labels FASTA with the same ids**: each labels record holds one
   letter per residue (``>P1`` / ``CCHHHE``) or one label for the protein (``>P1`` / ``1`` or
   ``0.73`` or ``soluble``). FLIP's ``SET=train|test`` and ``VALIDATION=True`` header attributes
   name the split. Every id must be in both files.

Every problem is a :class:`~playground.data.parsing.SequenceFileError` naming the file, line,
position and what to do, e.g. ``Line 17, position 42 of 'dssp3': 'Q' is not a DSSP letter``. Files
are read within the parser's limits (``parsing.MAX_BYTES``, ``parsing.MAX_RECORDS``).
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field

import numpy as np

from playground.data import parsing as PS
from playground.data.parsing import SequenceFileError
from playground.encoding import PROTEIN, Alphabet

# 1. sequence-level label columns: the parser's own names first (label, y, class, target, score,
# value ...), then the names real protein tables use
LABEL_COLUMN_NAMES = PS.LABEL_NAMES + ("solubility", "soluble", "solubility_score", "sol", "fitness", "stability",
                                       "tm", "melting_point", "localization", "location", "function")
# 2. NetSurfP / TAPE per-residue tables
THREE_STATE_NAMES = ("dssp3", "sst3", "ss3", "q3")
EIGHT_STATE_NAMES = ("dssp8", "sst8", "ss8", "q8")
LAYOUT_NAMES = ("dssp3", "dssp8", "sst3", "sst8", "ss8", "q8")   # any of these in the header: this layout
TABLE_SEQ_NAMES = ("input", "primary", "seq") + PS.SEQ_NAMES
TABLE_ID_NAMES = PS.ID_NAMES + ("pdb_id", "pdb", "protein_id", "uniprot_id", "entry", "chain_id")
DISORDER_NAMES = ("disorder", "disordered", "disorder_mask")
MASK_WORDS = ("resolved", "observed", "valid")
SPLIT_NAMES = ("split", "set", "partition", "subset")
DSSP3 = ["H", "E", "C"]
DSSP8 = ["H", "G", "I", "E", "B", "T", "S", "C"]
EIGHT_TO_THREE = {"H": "H", "G": "H", "I": "H", "E": "E", "B": "E", "T": "C", "S": "C", "C": "C"}
TARGETS = {"dssp3": "3 states (H helix, E strand, C coil)", "dssp8": "8 DSSP states (H G I E B T S C)"}
IGNORED = "-."                 # a state that marks a residue to ignore
MAX_RESIDUE_CLASSES = 10       # per-residue classes in a labels FASTA (as protein.py)
_NOT_A_LABEL = re.compile(r"[^A-Za-z0-9.\-]")   # a per-residue label is one ASCII letter or digit, '-' or '.'
SPLIT_WORDS = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "val": "valid",
               "dev": "valid", "test": "test", "testing": "test"}
_BIT = {"1": "1", "0": "0", "1.0": "1", "0.0": "0", "1.": "1", "0.": "0", "true": "1", "false": "0"}


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _text(data: bytes | str, filename: str) -> str:
    """The file as text, within the parser's size limit (gzip unpacked, binary refused)."""
    text = PS._to_text(data, filename, PS.MAX_BYTES)        # the parser's own limits and messages
    if not text.strip():
        raise SequenceFileError(f"'{filename}' is empty.", hint="Upload a file with one protein per row or record.")
    return text


# --------------------------------------------------------------------------------------------
# what a file looks like (for the page's pickers)
@dataclass
class FileLayout:
    """What the header of an uploaded file says. ``layout``: 'table' (one label per protein),
    'per_residue_table' (NetSurfP / TAPE) or 'fasta'."""

    layout: str
    columns: list[str] = field(default_factory=list)
    label_col: str | None = None          # the guessed label column ('table')
    targets: list[str] = field(default_factory=list)        # 'dssp3' / 'dssp8' ('per_residue_table')
    mask_options: list[str] = field(default_factory=list)   # 0/1 columns that can mask residues
    default_masks: list[str] = field(default_factory=list)  # the ones used unless told otherwise


def _table_rows(text: str, fmt: str, limit: int | None = None) -> list[tuple[int, list[str]]]:
    """(line, cells) of the non-empty rows; ``limit``: stop after so many."""
    delim = {"tsv": "\t", "csv;": ";"}.get(fmt, ",")
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    rows = []
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                rows.append((reader.line_num, [c.strip() for c in row]))
                if limit is not None and len(rows) >= limit:
                    break
                if len(rows) > PS.MAX_RECORDS + 1:
                    raise SequenceFileError(f"The file has more than {PS.MAX_RECORDS:,} rows; that is the limit.",
                                            hint="Upload a random subset of the proteins.")
    except csv.Error as e:
        raise SequenceFileError(f"Line {reader.line_num}: the table cannot be read ({e}).", line=reader.line_num,
                                hint="Check the quotes on that line; save the file again as CSV.") from None
    return rows


def _has_header(cells: list[str], alphabet: Alphabet) -> bool:
    """As the parser decides: a known column name, or no cell that looks like a sequence."""
    known = set(PS.SEQ_NAMES + PS.LABEL_NAMES + PS.ID_NAMES + LABEL_COLUMN_NAMES + LAYOUT_NAMES)
    if {_norm(c) for c in cells} & known:
        return True
    valid = set(alphabet.valid) | set(dict(alphabet.aliases))
    return not any(len(c) >= 5 and set(c.upper()) <= valid for c in cells)


def _columns_of(text: str, fmt: str, alphabet: Alphabet = PROTEIN) -> list[str]:
    rows = _table_rows(text, fmt, limit=1)
    if not rows:
        return []
    first = rows[0][1]
    if _has_header(first, alphabet):
        return [c if c else f"column {i + 1}" for i, c in enumerate(first)]
    return [f"column {i + 1}" for i in range(len(first))]


def protein_file_columns(data: bytes | str, filename: str) -> list[str]:
    """The columns of a CSV / TSV file (its header, or 'column 1', 'column 2' ... without one);
    [] for FASTA. For the page's label-column picker."""
    text = _text(data, filename)
    fmt = PS.detect_format(text[:100_000], filename)
    return [] if fmt == "fasta" else _columns_of(text, fmt)


def _find(columns: list[str], names) -> str | None:
    norm = {}
    for c in columns:
        norm.setdefault(_norm(c), c)
    return next((norm[n] for n in names if n in norm), None)


def guess_label_column(columns: list[str], seq_col: str | None = None) -> str | None:
    """The label column of a sequence-level table by its name (``label``, ``solubility``,
    ``score``, ``target``, ``y``, ``value`` ...), never the sequence column; None when no name fits."""
    seq_col = seq_col or _find(columns, TABLE_SEQ_NAMES)
    return _find([c for c in columns if c != seq_col], LABEL_COLUMN_NAMES)


def is_per_residue_table(columns: list[str]) -> bool:
    """The NetSurfP / TAPE layout: a ``dssp3`` or ``dssp8`` (or ``sst3``/``sst8``/``ss8``/``q8``) column."""
    return any(_norm(c) in LAYOUT_NAMES for c in columns)


def _mask_columns(columns: list[str]) -> list[str]:
    """0/1 columns that mark residues to use: ``mask``, ``*_mask`` (not disorder), resolved ..."""
    out = []
    for c in columns:
        n = _norm(c)
        if n in DISORDER_NAMES:
            continue
        if n == "mask" or n.endswith("_mask") or n.startswith("mask_") or n in MASK_WORDS:
            out.append(c)
    return out


def file_layout(data: bytes | str, filename: str) -> FileLayout:
    """What kind of protein file this is and what can be picked in it (no rows are checked)."""
    text = _text(data, filename)
    fmt = PS.detect_format(text[:100_000], filename)
    if fmt == "fasta":
        return FileLayout("fasta")
    columns = _columns_of(text, fmt)
    if is_per_residue_table(columns):
        three, eight = _find(columns, THREE_STATE_NAMES), _find(columns, EIGHT_STATE_NAMES)
        targets = ["dssp3"] * bool(three or eight) + ["dssp8"] * bool(eight)
        masks = _mask_columns(columns)
        disorder = _find(columns, DISORDER_NAMES)
        return FileLayout("per_residue_table", columns, targets=targets,
                          mask_options=masks + ([disorder] if disorder else []), default_masks=masks)
    return FileLayout("table", columns, label_col=guess_label_column(columns))


# --------------------------------------------------------------------------------------------
# the hook of protein.load_protein_file
def read_real_layout(data: bytes | str, filename: str, *, per_residue: bool = False, label_col: str | None = None,
                     per_residue_col: str | None = None, mask_col=None, labels_file: tuple | None = None,
                     label_kind: str = "auto", alphabet: Alphabet = PROTEIN, map_aliases: bool = False,
                     max_length: int = 1000, length_policy: str = "pad"):
    """The layouts of this module, for ``protein.load_protein_file``: a ProteinSet for a NetSurfP /
    TAPE table or a FASTA with a labels file; None for everything the generic reader handles."""
    truncate = length_policy == "truncate"
    opts = dict(alphabet=alphabet, map_aliases=map_aliases, max_length=max_length, truncate=truncate)
    text = _text(data, filename)
    fmt = PS.detect_format(text[:100_000], filename)
    if labels_file is not None:
        if fmt != "fasta":
            raise SequenceFileError(
                f"A labels FASTA ('{labels_file[0]}') goes with a sequences FASTA, but '{filename}' is a table.",
                hint="Upload the sequences as FASTA (same ids as the labels file), or forget the labels file "
                     "and put the labels in a column of the table.")
        return read_fasta_with_labels(text, filename, labels_file[1], labels_file[0], per_residue=per_residue,
                                      label_kind=label_kind, **opts)
    if fmt != "fasta":
        columns = _columns_of(text, fmt, alphabet)
        if is_per_residue_table(columns):
            return read_per_residue_table(text, filename, target=per_residue_col, mask_cols=mask_col,
                                          fmt=fmt, **opts)
    return None


def label_column_for(data: bytes | str, filename: str) -> str | None:
    """For ``load_protein_file``: the label column of a sequence-level table found by name
    (``solubility``, ``score`` ...), or None (FASTA, or no name fits: the parser decides)."""
    text = _text(data, filename)
    fmt = PS.detect_format(text[:100_000], filename)
    return None if fmt == "fasta" else guess_label_column(_columns_of(text, fmt))


def reading_key(reading: dict | None) -> tuple:
    """A short hashable key of ``load_protein_file``'s reading options (a cache key, part of a run's
    signature): a labels file by its name and content hash, the rest as given."""
    out = []
    for k, v in sorted((reading or {}).items()):
        if k == "labels_file" and v is not None:
            v = (v[0], hashlib.sha1(v[1] if isinstance(v[1], bytes) else v[1].encode()).hexdigest())
        elif isinstance(v, list):
            v = tuple(v)
        out.append((k, v))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# 2. NetSurfP / TAPE tables
def _split_cell(cell: str) -> list[str]:
    """Residues or states: 'M K T A' (space-separated) or 'MKTA'."""
    return cell.split() if any(ch.isspace() for ch in cell) else list(cell)


_EIGHT_TO_THREE = str.maketrans(EIGHT_TO_THREE)


def _codes(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("ascii"), dtype=np.uint8)


def _both(a: str, b: str) -> str:
    """'1' where both 0/1 strings are '1'."""
    both = (_codes(a) == 49) & (_codes(b) == 49)              # 49 = '1', 48 = '0'
    return (both.astype(np.uint8) + 48).tobytes().decode("ascii")


def _n_used(lab: str, mask: str | None) -> int:
    """Residues that count: a state that is not '-', and the mask 1 (when there is one)."""
    if mask is None:
        return len(lab) - lab.count("-")
    return int(((_codes(lab) != 45) & (_codes(mask) == 49)).sum()) if lab else 0


def _where(line: int, pos: int, col: str) -> str:
    return f"Line {line}, position {pos} of '{col}'"


def _bits(cell: str, line: int, col: str, what: str) -> str:
    """A 0/1 per residue column ('1 1 0', '110' or '1.0 1.0 0.0') as a '0'/'1' string."""
    toks = _split_cell(cell)
    joined = "".join(toks)
    if len(joined) == len(toks) and set(joined) <= {"0", "1"}:       # the fast path: 0 1 1 or 011
        return joined
    if set(toks) <= {"0.0", "1.0"}:                                   # the fast path: 1.0 1.0 0.0
        return joined.replace(".0", "")
    out = []
    for j, t in enumerate(toks):
        b = _BIT.get(t.lower())
        if b is None:
            try:
                v = float(t)
            except ValueError:
                v = None
            b = {1.0: "1", 0.0: "0"}.get(v)
        if b is None:
            raise SequenceFileError(f"{_where(line, j + 1, col)}: '{t[:20]}' is not 0 or 1.", line=line,
                                    hint=f"{what} holds one 0 or 1 per residue (0 = ignore that residue).")
        out.append(b)
    return "".join(out)


def _states(cell: str, line: int, col: str, allowed: list[str]) -> str:
    toks = _split_cell(cell)
    ok = set(allowed) | set(IGNORED)
    joined = "".join(toks).upper()
    if len(joined) == len(toks) and set(joined) <= ok:                 # the fast path
        return joined.replace(".", "-")
    out = []
    for j, t in enumerate(toks):
        u = t.upper()
        if len(u) != 1 or u not in ok:
            kind = "3-state" if len(allowed) == 3 else "8-state"
            raise SequenceFileError(
                f"{_where(line, j + 1, col)}: '{t[:20]}' is not a DSSP letter (the {kind} letters are "
                f"{' '.join(allowed)}).", line=line,
                hint=f"Write one of {' '.join(allowed)} per residue ('-' to ignore one); check that '{col}' is the "
                     "right column.")
        out.append("-" if u in IGNORED else u)
    return "".join(out)


def _split_value(raw: str, line: int, where: str) -> str:
    v = SPLIT_WORDS.get(raw.strip().lower())
    if v is None:
        raise SequenceFileError(f"Line {line}: {where} is '{raw[:30]}', not train, valid or test.", line=line,
                                hint="Write train, valid (or validation) or test.")
    return v


def _with_split(ps, split: list[str] | None):
    """Attach the file's own train / valid / test split as ``ps.split_labels`` (what
    ``protein.to_split`` keeps instead of splitting itself)."""
    if split is not None:
        ps.split_labels = np.asarray(split, dtype=str)
        counts = {s: int(np.sum(ps.split_labels == s)) for s in ("train", "valid", "test")}
        ps.warnings.append("The file names its own split (" + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
                           + "): it is kept.")
    return ps


def _drop_duplicates(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """Keep the first copy of each sequence (no protein in both training and test), as the parser does."""
    seen, kept, dropped = set(), [], []
    for r in rows:
        if r["seq"] in seen:
            dropped.append(r["where"])
            continue
        seen.add(r["seq"])
        kept.append(r)
    warn = []
    if dropped:
        warn.append(f"Dropped {len(dropped)} duplicate sequence(s) ({', '.join(dropped[:3])}"
                    f"{' …' if len(dropped) > 3 else ''}); the first copy is kept so that no protein is in both "
                    "the training and the test set.")
    return kept, warn


def read_per_residue_table(data: bytes | str, filename: str, *, target: str | None = None, mask_cols=None,
                           fmt: str | None = None, alphabet: Alphabet = PROTEIN, map_aliases: bool = False,
                           max_length: int = 1000, truncate: bool = False):
    """A NetSurfP / TAPE table -> per-residue ProteinSet. ``target``: 'dssp3' (default; from
    ``dssp8`` when the file has no 3-state column) or 'dssp8' (or the name of such a column).
    ``mask_cols``: None (the file's mask columns, not disorder), a column name or a list of them
    (a residue is used only where all are 1), or () for none."""
    from playground.data.protein import ProteinSet

    text = _text(data, filename)
    fmt = fmt or PS.detect_format(text[:100_000], filename)
    kind = "TSV" if fmt == "tsv" else "CSV"
    rows = _table_rows(text, fmt)
    if not rows:
        raise SequenceFileError(f"'{filename}' has no rows.", hint="Upload a table with a header and one protein "
                                "per row.")
    header_line, header = rows[0]
    columns = [c if c else f"column {i + 1}" for i, c in enumerate(header)]
    body = rows[1:]
    if not body:
        raise SequenceFileError(f"The file has a header (line {header_line}) but no data rows.",
                                hint="Add one row per protein under the header.")
    if len(body) > PS.MAX_RECORDS:
        raise SequenceFileError(f"The file has {len(body):,} proteins; the limit is {PS.MAX_RECORDS:,}.",
                                hint="Upload a random subset of the proteins.")
    seq_col = _find(columns, TABLE_SEQ_NAMES)
    if seq_col is None:
        raise SequenceFileError(f"Cannot tell which column holds the residues (columns: {', '.join(columns)}).",
                                hint="Name it 'input' (NetSurfP / TAPE) or 'sequence'.")
    three, eight = _find(columns, THREE_STATE_NAMES), _find(columns, EIGHT_STATE_NAMES)
    want = _norm(target) if target else "dssp3"
    if want in ("dssp3",) + THREE_STATE_NAMES:
        states = 3
        col = (target if target in columns else None) or three or eight
    elif want in ("dssp8",) + EIGHT_STATE_NAMES:
        states = 8
        col = (target if target in columns else None) or eight
    else:
        raise SequenceFileError(f"'{target}' is not a target of this file: choose dssp3 (3 states) or dssp8 "
                                "(8 states).", hint="Pick the target in the list.")
    if col is None:
        have = ", ".join(c for c in (three, eight) if c) or "none"
        raise SequenceFileError(f"The {kind} has no {'8' if states == 8 else '3'}-state column (found: {have}).",
                                hint="Choose the other target, or add a 'dssp8' column (H G I E B T S C per residue).")
    from_eight = states == 3 and _norm(col) in EIGHT_STATE_NAMES
    allowed = DSSP8 if (states == 8 or from_eight) else DSSP3
    # masks
    if mask_cols is None:
        masks_used = _mask_columns(columns)
    else:
        masks_used = [mask_cols] if isinstance(mask_cols, str) else list(mask_cols)
        for m in masks_used:
            if m not in columns:
                raise SequenceFileError(f"The {kind} has no column '{m}' to mask residues with (columns: "
                                        f"{', '.join(columns)}).", hint="Pick the mask columns in the list.")
    index = {c: i for i, c in enumerate(columns)}
    ident_col = _find([c for c in columns if c not in (seq_col, col)], TABLE_ID_NAMES)
    split_col = _find(columns, SPLIT_NAMES)
    aliases: dict = {}
    out = []
    for line, cells in body:
        def cell(name):
            i = index[name]
            return cells[i] if i < len(cells) else ""

        raw = cell(seq_col)
        if not raw:
            raise SequenceFileError(f"Line {line}: '{seq_col}' is empty.", line=line,
                                    hint="Fill in the residues or remove the line.")
        toks = _split_cell(raw)
        joined = "".join(toks)
        if len(joined) != len(toks):
            j, t = next((j, t) for j, t in enumerate(toks) if len(t) != 1)
            raise SequenceFileError(f"{_where(line, j + 1, seq_col)}: '{t[:20]}' is {len(t)} letters, not one "
                                    "residue.", line=line,
                                    hint="Separate every residue by a space ('M K T A'), or write them "
                                         "together ('MKTA').")
        seq = PS.clean_sequence(joined, alphabet, map_aliases,
                                lambda p, line=line: _where(line, p, seq_col), aliases, line=line)
        if len(seq) != len(toks):          # a stop '*' at the end was dropped
            toks = toks[: len(seq)]
        lab = _states(cell(col), line, col, allowed)
        if len(lab) != len(seq):
            raise SequenceFileError(f"Line {line}: '{seq_col}' has {len(seq)} residues but '{col}' has {len(lab)} "
                                    "states.", line=line, hint="Give exactly one state per residue.")
        if from_eight:
            lab = lab.translate(_EIGHT_TO_THREE)
        mask = None
        for m in masks_used:
            bits = _bits(cell(m), line, m, f"'{m}'")
            if len(bits) != len(seq):
                raise SequenceFileError(f"Line {line}: '{seq_col}' has {len(seq)} residues but '{m}' has "
                                        f"{len(bits)} values.", line=line, hint="Give one 0 or 1 per residue.")
            mask = bits if mask is None else _both(mask, bits)
        if len(seq) > max_length:
            if not truncate:
                raise SequenceFileError(f"Line {line}: this protein has {len(seq)} residues, more than the limit "
                                        f"of {max_length}.", line=line,
                                        hint="Turn on 'Truncate' to cut long proteins, or raise the length limit.")
            seq, lab, mask = seq[:max_length], lab[:max_length], (mask[:max_length] if mask else mask)
        ident = (cell(ident_col) if ident_col else "") or f"line{line}"
        split = _split_value(cell(split_col), line, f"'{split_col}'") if split_col else None
        out.append({"seq": seq, "lab": lab, "mask": mask, "id": ident, "split": split, "where": f"line {line}",
                    "long": len(toks) > max_length})
    out, warnings = _drop_duplicates(out)
    for a, n in aliases.items():
        warnings.append(f"Mapped {n} × '{a}' to '{dict(alphabet.aliases)[a]}'.")
    cut = sum(r["long"] for r in out)
    if cut:
        warnings.append(f"Cut {cut} protein(s) to the first {max_length} residues.")
    labels = [r["lab"] for r in out]
    masks = [r["mask"] for r in out] if masks_used else None
    classes = DSSP3 if states == 3 else DSSP8
    used = [_n_used(lab, mk) for lab, mk in zip(labels, masks or [None] * len(labels))]
    if sum(used) == 0:
        raise SequenceFileError(f"Every residue is ignored (masked by {', '.join(masks_used) or 'the states'}): "
                                "nothing to learn.", hint="Choose fewer mask columns.")
    present = sorted(set().union(*map(set, labels)) - {"-"})
    if len(present) < 2:
        raise SequenceFileError(f"All residues have the state '{present[0]}' in '{col}': nothing to learn.",
                                hint="Upload proteins with at least two different states.")
    n_res = sum(len(s) for s in labels)
    ignored = n_res - sum(used)
    if ignored:
        warnings.append(f"{ignored:,} of {n_res:,} residues are ignored by the loss and Q3 (masked by "
                        f"{', '.join(masks_used) or 'no column'}, or state '-').")
    made = f"'{col}' turned into 3 states (H G I → H, E B → E, T S C → C)" if from_eight else f"'{col}'"
    desc = (f"Uploaded '{filename}' (NetSurfP / TAPE layout): {len(out)} proteins, residues from '{seq_col}', "
            f"target {made}: classes {', '.join(classes)}"
            + (f"; residues where {' or '.join(repr(m) for m in masks_used)} is 0 are ignored" if masks_used else "")
            + ".")
    ps = ProteinSet([r["seq"] for r in out], labels, "per_residue", list(classes), mask=masks, description=desc,
                    warnings=warnings, ids=[r["id"] for r in out], alphabet=alphabet)
    return _with_split(ps, [r["split"] for r in out] if split_col else None)


# --------------------------------------------------------------------------------------------
# 3. FASTA + labels FASTA
@dataclass
class _LabelRecord:
    line: int                  # the header line
    id: str
    attrs: dict
    body: str = ""
    body_lines: list = field(default_factory=list)   # (line, start position in body, text)


def _read_labels_fasta(text: str, name: str) -> dict[str, _LabelRecord]:
    first = next((i for i, ln in enumerate(text.splitlines(), 1) if ln.strip()), 1)
    if not text.lstrip().startswith(">"):
        raise SequenceFileError(f"'{name}' is not a FASTA file: line {first} should be a '>id' header.", line=first,
                                hint="The labels file holds '>id' (the same ids as the sequences) and on the next "
                                     "line the labels: one letter per residue, or one label for the protein.")
    out: dict[str, _LabelRecord] = {}
    cur = None
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(";") or line.startswith("#"):
            continue
        if line.startswith(">"):
            head = line[1:].strip()
            if not head:
                raise SequenceFileError(f"Line {n} of '{name}': a '>' header without an id.", line=n,
                                        hint="Write the sequence's id after '>', as in the sequences file.")
            ident = head.split()[0]
            if ident in out:
                raise SequenceFileError(f"Line {n} of '{name}': the id '{ident}' is there twice (also line "
                                        f"{out[ident].line}).", line=n, hint="Give each protein one labels record.")
            attrs = {m.group(1).lower(): m.group(2).strip("\"'") for m in
                     re.finditer(r"([A-Za-z_][\w.-]*)\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s;|,]+)", head)}
            cur = out[ident] = _LabelRecord(n, ident, attrs)
            continue
        if len(out) > PS.MAX_RECORDS:
            raise SequenceFileError(f"'{name}' has more than {PS.MAX_RECORDS:,} records; that is the limit.",
                                    hint="Upload a random subset.")
        chunk = "".join(line.split())
        cur.body_lines.append((n, len(cur.body), chunk))
        cur.body += chunk
    for r in out.values():
        if not r.body:
            raise SequenceFileError(f"Line {r.line} of '{name}': no labels under '>{r.id}'.", line=r.line,
                                    hint="Write the labels on the line after the header.")
    return out


def _line_of(rec: _LabelRecord, pos: int) -> int:
    """The file line holding 0-based position ``pos`` of a labels record."""
    line = rec.line + 1
    for ln, start, _ in rec.body_lines:
        if start <= pos:
            line = ln
    return line


def _class_sort_key(name: str):
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def _class_name(raw: str) -> str:
    try:
        v = float(raw)
    except ValueError:
        return raw
    return str(int(v)) if v.is_integer() else raw


def _fasta_split(rec: _LabelRecord, name: str) -> str | None:
    """FLIP's header attributes: SET=train|test, VALIDATION=True for training proteins kept for validation."""
    s = rec.attrs.get("set") or rec.attrs.get("split")
    if s is None:
        return None
    v = _split_value(s, rec.line, f"SET= of '>{rec.id}' in '{name}'")
    if v == "train" and rec.attrs.get("validation", "").lower() in ("true", "1", "yes"):
        return "valid"
    return v


def read_fasta_with_labels(data: bytes | str, filename: str, labels_data: bytes | str, labels_name: str, *,
                           per_residue: bool = False, label_kind: str = "auto", alphabet: Alphabet = PROTEIN,
                           map_aliases: bool = False, max_length: int = 1000, truncate: bool = False):
    """A sequences FASTA and a labels FASTA with the same ids -> ProteinSet. The labels are per
    residue when they have one letter per residue (for at least half the proteins, or always
    with ``per_residue``), else one label per protein (classes or numbers, as in a table)."""
    from playground.data.protein import ProteinSet

    try:
        parsed = PS.parse_sequence_file(data, filename, alphabet, label_required=False, duplicates="keep",
                                        map_aliases=map_aliases, max_length=max_length,
                                        length_policy="truncate" if truncate else "pad", max_classes=10**9)
    except SequenceFileError as e:
        raise SequenceFileError(f"'{filename}': {e.message}", line=e.line, hint=e.hint) from None
    if parsed.format != "fasta":
        raise SequenceFileError(f"A labels FASTA ('{labels_name}') goes with a sequences FASTA, but '{filename}' is "
                                "not FASTA.", hint="Upload the sequences as FASTA with the same ids.")
    labels = _read_labels_fasta(_text(labels_data, labels_name), labels_name)
    where_seq = {}
    for i, (ident, line) in enumerate(zip(parsed.ids, parsed.line_numbers)):
        if ident in where_seq:
            raise SequenceFileError(f"Line {line} of '{filename}': the id '{ident}' is there twice (also line "
                                    f"{parsed.line_numbers[where_seq[ident]]}).", line=line,
                                    hint="Give every protein its own id: the labels are matched by id.")
        where_seq[ident] = i
    for i, (ident, line) in enumerate(zip(parsed.ids, parsed.line_numbers)):
        if ident not in labels:
            raise SequenceFileError(f"'{labels_name}' has no labels for '{ident}' (line {line} of '{filename}').",
                                    line=line, hint=f"Add a record '>{ident}' to the labels file, or remove the "
                                                    "protein from the sequences file: the ids must match.")
    for ident, rec in labels.items():
        if ident not in where_seq:
            raise SequenceFileError(f"Line {rec.line} of '{labels_name}': '>{ident}' matches no sequence in "
                                    f"'{filename}'.", line=rec.line,
                                    hint="The ids after '>' must be the same in both files (check the spelling).")
    recs = [labels[i] for i in parsed.ids]
    lengths = parsed.original_lengths
    matches = sum(len(r.body) == n for r, n in zip(recs, lengths))
    by_residue = per_residue or matches * 2 >= len(recs)
    split = [_fasta_split(r, labels_name) for r in recs]
    split = split if any(s is not None for s in split) else None
    if split is None and getattr(parsed, "split", None) is not None:     # split= in the sequences' headers
        split = list(parsed.split)
    if split is not None and any(s is None for s in split):
        r = recs[split.index(None)]
        raise SequenceFileError(f"Line {r.line} of '{labels_name}': '>{r.id}' has no SET= while others do.",
                                line=r.line, hint="Give every record SET=train or SET=test, or none of them.")
    warnings = list(parsed.warnings)
    rows = []
    if by_residue:
        for k, (r, n) in enumerate(zip(recs, lengths)):
            seq_line = parsed.line_numbers[k]
            if len(r.body) != n:
                raise SequenceFileError(
                    f"Line {r.line} of '{labels_name}': '>{r.id}' has {len(r.body)} labels but its sequence (line "
                    f"{seq_line} of '{filename}') has {n} residues.", line=r.line,
                    hint="Give exactly one label letter per residue.")
            bad = _NOT_A_LABEL.search(r.body)
            if bad is not None:
                ln = _line_of(r, bad.start())
                raise SequenceFileError(f"Line {ln} of '{labels_name}', position {bad.start() + 1} of '>{r.id}': "
                                        f"'{bad.group()}' is not a label letter.", line=ln,
                                        hint="Use one letter or digit per residue (e.g. H, E, C); '-' to ignore "
                                             "one.")
            lab = r.body.upper().replace(".", "-")[: len(parsed.seqs[k])]
            rows.append({"seq": parsed.seqs[k], "lab": lab, "id": r.id, "split": split[k] if split else None,
                         "where": f"line {seq_line}"})
        rows, dup = _drop_duplicates(rows)
        warnings += dup
        labs = [r["lab"] for r in rows]
        letters = sorted(set().union(*map(set, labs)) - {"-"})
        if len(letters) > MAX_RESIDUE_CLASSES:
            raise SequenceFileError(f"The labels in '{labels_name}' use {len(letters)} different letters "
                                    f"({''.join(letters)}); at most {MAX_RESIDUE_CLASSES} classes.",
                                    hint="Is this the right labels file? Merge states (e.g. 8 DSSP -> 3).")
        if len(letters) < 2:
            raise SequenceFileError(f"All residue labels in '{labels_name}' are '{letters[0] if letters else '-'}': "
                                    "nothing to learn.", hint="Upload proteins with at least two different labels.")
        order = [c for c in DSSP3 if c in letters] + [c for c in letters if c not in DSSP3]
        ignored = sum(lab.count("-") for lab in labs)
        if ignored:
            warnings.append(f"{ignored:,} residue label(s) are '-' and ignored by the loss and Q3.")
        ps = ProteinSet([r["seq"] for r in rows], labs, "per_residue", order,
                        description=f"Uploaded '{filename}' with per-residue labels from '{labels_name}' (matched "
                                    f"by id): {len(rows)} proteins, classes {', '.join(order)}.",
                        warnings=warnings, ids=[r["id"] for r in rows], alphabet=alphabet)
        return _with_split(ps, [r["split"] for r in rows] if split else None)
    # one label per protein
    for r in recs:
        if r.body.lower() in PS.MISSING:
            raise SequenceFileError(f"Line {_line_of(r, 0)} of '{labels_name}': the label of '>{r.id}' is missing "
                                    f"('{r.body}').", line=_line_of(r, 0), hint="Fill in the label or remove the "
                                                                                "protein from both files.")
    rows = [{"seq": parsed.seqs[k], "lab": r.body, "id": r.id, "split": split[k] if split else None,
             "where": f"line {parsed.line_numbers[k]}", "rec": r} for k, r in enumerate(recs)]
    rows, dup = _drop_duplicates(rows)
    warnings += dup
    raw = [r["lab"] for r in rows]
    kind = label_kind if label_kind != "auto" else PS.infer_label_kind(raw)
    if kind == "regression":
        vals = []
        for r in rows:
            try:
                vals.append(float(r["lab"]))
            except ValueError:
                ln = _line_of(r["rec"], 0)
                raise SequenceFileError(f"Line {ln} of '{labels_name}': the label '{r['lab'][:30]}' of "
                                        f"'>{r['id']}' is not a number, but regression needs numbers.", line=ln,
                                        hint="Choose classification, or write a number as the label.") from None
        y = np.asarray(vals, dtype=np.float32)
        if len(y) >= 2 and float(np.std(y)) == 0:
            raise SequenceFileError(f"All labels in '{labels_name}' are {raw[0]}: nothing to learn.",
                                    hint="Upload proteins with different labels.")
        task, names = "regression", []
        summary = f"values {float(y.min()):.3g} to {float(y.max()):.3g}"
    else:
        names = sorted({_class_name(v) for v in raw}, key=_class_sort_key)
        if len(names) > PS.MAX_CLASSES:
            raise SequenceFileError(f"The labels in '{labels_name}' have {len(names)} different values, too many "
                                    f"classes (at most {PS.MAX_CLASSES}).",
                                    hint="If the label is a measured number, choose regression; if it is one "
                                         "letter per residue, check that the ids and lengths match.")
        if len(names) < 2:
            raise SequenceFileError(f"All proteins in '{labels_name}' have the label '{names[0]}': a classifier "
                                    "needs at least 2 classes.", hint="Add proteins of another class.")
        index = {c: i for i, c in enumerate(names)}
        ids = np.asarray([index[_class_name(v)] for v in raw], dtype=np.int64)
        task = "binary" if len(names) == 2 else "multiclass"
        y = ids.astype(np.float32) if task == "binary" else ids
        counts = np.bincount(ids, minlength=len(names))
        summary = "classes " + ", ".join(f"{c} ({n})" for c, n in zip(names, counts))
    ps = ProteinSet([r["seq"] for r in rows], y, task, names,
                    description=f"Uploaded '{filename}' with labels from '{labels_name}' (matched by id): "
                                f"{len(rows)} proteins; {summary}.",
                    warnings=warnings, ids=[r["id"] for r in rows], alphabet=alphabet)
    return _with_split(ps, [r["split"] for r in rows] if split else None)


__all__ = ["FileLayout", "file_layout", "protein_file_columns", "guess_label_column", "is_per_residue_table",
           "read_real_layout", "read_per_residue_table", "read_fasta_with_labels", "label_column_for",
           "reading_key", "TARGETS", "DSSP3", "DSSP8"]
