"""Reading sequence files a person uploads or pastes: CSV / TSV / FASTA / one per line.

Alphabet-generic (DNA or protein, see ``playground.encoding``). Every problem is reported
as a :class:`SequenceFileError` (a ``ValueError``) whose message names the line, the
character and its position, and what to do, e.g.::

    Line 7, position 12: 'X' is not a DNA letter (allowed: A C G T N).
    Remove it or replace it with N.

    parsed = parse_sequence_file(open("seqs.csv", "rb").read(), "seqs.csv")
    parsed.seqs, parsed.labels, parsed.label_kind, parsed.class_names, parsed.warnings

Formats
- CSV / TSV with a header row (or without one: columns are then "column 1", "column 2" ...).
  The sequence and label columns are picked by name (``sequence``/``seq``..., ``label``/
  ``y``/``class``/``score``...) or given as ``seq_col`` / ``label_col``.
- FASTA; the label comes from the header, e.g. ``>seq1 label=1`` (also ``class=``, ``y=``,
  ``score=``, ``target=``, ``value=``, or the key given as ``label_col``).
- Pasted text (:func:`parse_sequence_text`): FASTA, or one sequence per line with an
  optional label after a comma, tab or space.

Labels: numbers with few distinct integer values (0/1, 0..4) or words are classes;
other numbers are a regression target. ``label_kind`` overrides the guess.
Lengths: ``length_policy`` 'pad' (shorter ones are padded to the longest in the file),
'truncate' (longer ones are cut to ``max_length``; without a limit all are cut to the
shortest) or 'reject' (all must have one length). ``max_length`` is a limit, never a
padding target: a file of 251 bp sequences stays 251 bp whatever the limit; with 'pad' or
'reject' a longer sequence is an error naming its line.
Split: a column named ``split`` (or ``split_col``; in FASTA a ``split=`` header key) may
name each sequence's set: train, valid or test (also validation / val / dev, training,
testing; any case). It ends up in ``parsed.split``; any other value is an error naming the
line and the value.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import re
from dataclasses import dataclass, field

import numpy as np

from playground import encoding
from playground.encoding import Alphabet
from playground.errors import PlaygroundError

MAX_BYTES = 20 * 1024 * 1024          # 20 MB
MAX_RECORDS = 500_000
MAX_CLASSES = 20
LENGTH_POLICIES = ("pad", "truncate", "reject")
LABEL_KINDS = ("auto", "classification", "regression")
DUPLICATE_POLICIES = ("drop", "keep", "reject")

SEQ_NAMES = ("sequence", "sequences", "seq", "dna", "dna_sequence", "protein", "protein_sequence", "aa_sequence",
             "peptide", "read", "x", "input")
LABEL_NAMES = ("label", "labels", "y", "class", "target", "score", "value", "activity", "expression",
               "binding", "bound", "output", "response")
ID_NAMES = ("id", "name", "identifier", "seq_id", "sequence_id", "accession")
MISSING = ("", "na", "n/a", "nan", "none", "null", "?", "-")
HEADER_KEYS = ("label", "class", "y", "score", "target", "value")
SPLIT_NAMES = ("split",)
SPLITS = ("train", "valid", "test")
SPLIT_ALIASES = {"train": "train", "training": "train", "valid": "valid", "validation": "valid", "val": "valid",
                 "dev": "valid", "test": "test", "testing": "test"}


class SequenceFileError(PlaygroundError):
    """A problem with an uploaded or pasted file, worded for the person who made it."""

    def __init__(self, message: str, line: int | None = None, hint: str | None = None):
        super().__init__(message, hint)   # .message: what is wrong; .hint: what to do; str(): both
        self.line = line          # 1-based line in the file, when one is to blame


@dataclass
class ParsedSequences:
    ids: list[str]
    seqs: list[str]                       # upper case, aliases mapped, truncated if asked
    labels: np.ndarray | None             # class ids (int64) or values (float32); None without labels
    label_kind: str | None                # 'classification', 'regression' or None
    class_names: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    alphabet: Alphabet = encoding.DNA
    format: str = "csv"                   # 'csv', 'tsv', 'fasta', 'lines'
    columns: list[str] = field(default_factory=list)   # CSV/TSV header (for column pickers)
    seq_col: str | None = None
    label_col: str | None = None
    line_numbers: list[int] = field(default_factory=list)
    original_lengths: list[int] = field(default_factory=list)
    length: int = 0                       # the length every sequence is padded / cut to
    per_residue: list[str] | None = None  # per-position labels (same length as each sequence)
    raw_labels: list[str] | None = None   # the label text as written in the file
    split: list[str] | None = None        # 'train' / 'valid' / 'test' per sequence, from a split column
    split_col: str | None = None          # the column (or FASTA header key) the split came from

    def __len__(self) -> int:
        return len(self.seqs)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def task(self) -> str | None:
        """The Trainer's task name: 'binary', 'multiclass', 'regression' or None."""
        if self.label_kind == "regression":
            return "regression"
        if self.label_kind == "classification":
            return "binary" if self.n_classes == 2 else "multiclass"
        return None

    def one_hot(self, n_value: float = 0.0):
        """(n, channels, length) float tensor; padding is all zeros."""
        return encoding.one_hot(self.seqs, self.alphabet, self.length, n_value=n_value)

    def tokens(self):
        """(n, length) long tensor of token ids; 0 = padding."""
        return encoding.tokenize(self.seqs, self.alphabet, self.length)

    def summary(self) -> str:
        lens = self.original_lengths or [len(s) for s in self.seqs]
        txt = f"{len(self)} sequences, length {min(lens)}" + (f"–{max(lens)}" if max(lens) != min(lens) else "")
        if self.label_kind == "classification":
            counts = np.bincount(self.labels, minlength=self.n_classes)
            txt += "; classes " + ", ".join(f"{c} ({n})" for c, n in zip(self.class_names, counts))
        elif self.label_kind == "regression":
            txt += f"; values {float(self.labels.min()):.3g} to {float(self.labels.max()):.3g}"
        return txt


# --------------------------------------------------------------------------------------
# letters
def _alphabet_label(alphabet: Alphabet) -> str:
    return {"dna": "DNA", "protein": "protein"}.get(alphabet.name, alphabet.name)


def _describe_char(ch: str) -> str:
    if ch == " ":
        return "' ' (a space)"
    if ch == "\t":
        return "a tab"
    if not ch.isprintable():
        return f"the invisible character U+{ord(ch):04X}"
    return f"'{ch}'"


def _bad_letter_message(where: str, ch: str, alphabet: Alphabet, alias_option: bool = True) -> tuple[str, str]:
    allowed = " ".join(alphabet.valid)
    name = _alphabet_label(alphabet)
    aliases = dict(alphabet.aliases)
    up = ch.upper()
    if up in aliases:
        target = aliases[up]
        what = "RNA's uracil" if (alphabet.name == "dna" and up == "U") else "an ambiguous or rare letter"
        msg = f"{where}: '{ch}' is {what}, not a {name} letter (allowed: {allowed})."
        hint = (f"Turn on 'map {up}→{target}' to convert it, or replace it with {target}." if alias_option
                else f"Replace it with {target}.")
        return msg, hint
    msg = f"{where}: {_describe_char(ch)} is not a {name} letter (allowed: {allowed})."
    hint = f"Remove it or replace it with {alphabet.unknown}."
    return msg, hint


def clean_sequence(raw: str, alphabet: Alphabet, map_aliases: bool, where, alias_warn: dict | None = None,
                   offset: int = 0, line: int | None = None, skip_space: bool = False) -> str:
    """Upper-case ``raw`` and check every letter; ``where(pos)`` names the place for errors
    (pos is 1-based in ``raw``). Aliases (U->T ...) are mapped when ``map_aliases``; spaces
    are skipped when ``skip_space`` (FASTA lines); a protein's trailing stop '*' is dropped."""
    if alphabet.name == "protein" and raw.endswith("*"):
        raw = raw[:-1]
    up = raw.upper()
    valid = alphabet.valid
    aliases = dict(alphabet.aliases)
    if all(c in valid for c in up):  # the fast path
        return up
    out = []
    for i, ch in enumerate(up):
        if ch in valid:
            out.append(ch)
        elif skip_space and ch in " \t":
            continue
        elif map_aliases and ch in aliases:
            out.append(aliases[ch])
            if alias_warn is not None:
                alias_warn[ch] = alias_warn.get(ch, 0) + 1
        else:
            msg, hint = _bad_letter_message(where(i + 1 + offset), raw[i], alphabet, alias_option=not map_aliases)
            raise SequenceFileError(msg, line=line, hint=hint)
    return "".join(out)


# --------------------------------------------------------------------------------------
# bytes -> text
def _to_text(data: bytes | str, filename: str, max_bytes: int) -> str:
    if isinstance(data, str):
        if len(data.encode("utf-8", "ignore")) > max_bytes:
            raise _too_big(len(data.encode("utf-8", "ignore")), max_bytes)
        return data
    if len(data) > max_bytes:
        raise _too_big(len(data), max_bytes)
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
                data = f.read(max_bytes + 1)
        except OSError:
            raise SequenceFileError(f"'{filename}' looks gzip-compressed but could not be decompressed.",
                                    hint="Upload the uncompressed file.") from None
        if len(data) > max_bytes:
            raise _too_big(len(data), max_bytes, unpacked=True)
    if data[:2] == b"PK":
        raise SequenceFileError(f"'{filename}' is a zip or Excel file, not plain text.",
                                hint="Save it as CSV (comma-separated) or FASTA text and upload that.")
    if b"\x00" in data[:4096]:
        raise SequenceFileError(f"'{filename}' is not a text file (it contains binary data).",
                                hint="Upload a CSV, TSV or FASTA text file.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise SequenceFileError(f"Line {line}: the file is not UTF-8 text (byte 0x{data[e.start]:02X}).",
                                line=line, hint="Save the file as UTF-8 text (CSV or FASTA).") from None


def _mb(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} kB"
    return f"{n} bytes"


def _too_big(n: int, max_bytes: int, unpacked: bool = False) -> SequenceFileError:
    what = "Unpacked, the file is over" if unpacked else f"The file is {_mb(n)};"
    msg = f"{what} {'' if unpacked else 'the limit is '}{_mb(max_bytes)}" + ("" if not unpacked else " (the limit)") + "."
    return SequenceFileError(msg, hint="Upload a smaller file, e.g. a random subset of the sequences.")


def detect_format(text: str, filename: str = "") -> str:
    """'fasta', 'tsv' or 'csv' from the first non-empty line (and the file name)."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if first.lstrip().startswith(">"):
        return "fasta"
    low = filename.lower().removesuffix(".gz")
    if low.endswith((".fa", ".fasta", ".fna", ".faa", ".fas")):
        return "fasta"
    if low.endswith((".tsv", ".tab")):
        return "tsv"
    if low.endswith(".csv"):
        return "csv"
    if "\t" in first:
        return "tsv"
    if ";" in first and "," not in first:
        return "csv;"
    return "csv"


# --------------------------------------------------------------------------------------
# entry points
def parse_sequence_file(data: bytes | str, filename: str = "upload.csv", alphabet: Alphabet = encoding.DNA, *,
                        seq_col: str | None = None, label_col: str | None = None, id_col: str | None = None,
                        label_required: bool = True, label_kind: str = "auto",
                        max_bytes: int = MAX_BYTES, max_records: int = MAX_RECORDS,
                        length_policy: str = "pad", max_length: int | None = None, map_aliases: bool = False,
                        per_residue_col: str | None = None, duplicates: str = "drop",
                        min_classes: int = 2, max_classes: int = MAX_CLASSES,
                        split_col: str | None = None) -> ParsedSequences:
    """Read an uploaded CSV / TSV / FASTA file (bytes or text). See the module docstring.
    ``split_col``: the column (FASTA: header key) naming each sequence's train / valid / test
    set; None picks a column named 'split' when there is one."""
    _check_options(length_policy, label_kind, duplicates)
    text = _to_text(data, filename, max_bytes)
    if not text.strip():
        raise SequenceFileError(f"'{filename}' is empty.",
                                hint="Upload a CSV with a sequence and a label column, or a FASTA file.")
    fmt = detect_format(text, filename)
    if fmt == "fasta":
        records, info = _read_fasta(text, alphabet, map_aliases, label_col, per_residue_col, label_required,
                                    split_col)
    else:
        records, info = _read_table(text, fmt, alphabet, map_aliases, seq_col, label_col, id_col,
                                    per_residue_col, label_required, split_col)
    return _finish(records, info, alphabet, label_required=label_required, label_kind=label_kind,
                   length_policy=length_policy, max_length=max_length, duplicates=duplicates,
                   min_classes=min_classes, max_classes=max_classes, max_records=max_records)


def parse_sequence_text(text: str, alphabet: Alphabet = encoding.DNA, *, label_required: bool = False,
                        label_kind: str = "auto", length_policy: str = "pad", max_length: int | None = None,
                        map_aliases: bool = False, duplicates: str = "keep", max_bytes: int = MAX_BYTES,
                        max_records: int = MAX_RECORDS, min_classes: int = 2) -> ParsedSequences:
    """Pasted text: FASTA, a CSV/TSV with a header naming a sequence column, or one
    sequence per line with an optional label after a comma, tab or space."""
    _check_options(length_policy, label_kind, duplicates)
    text = _to_text(text, "pasted text", max_bytes)
    if not text.strip():
        raise SequenceFileError("Nothing was pasted.", hint="Paste one sequence per line, or FASTA.")
    first = next(ln for ln in text.splitlines() if ln.strip())
    if first.lstrip().startswith(">"):
        records, info = _read_fasta(text, alphabet, map_aliases, None, None, label_required)
    elif _looks_like_header(re.split(r"[,\t;]", first), alphabet):
        fmt = detect_format(text)
        records, info = _read_table(text, fmt, alphabet, map_aliases, None, None, None, None, label_required)
    else:
        records, info = _read_lines(text, alphabet, map_aliases, label_required)
    return _finish(records, info, alphabet, label_required=label_required, label_kind=label_kind,
                   length_policy=length_policy, max_length=max_length, duplicates=duplicates,
                   min_classes=min_classes, max_classes=MAX_CLASSES, max_records=max_records)


def _check_options(length_policy, label_kind, duplicates):
    if length_policy not in LENGTH_POLICIES:
        raise ValueError(f"length_policy must be one of {LENGTH_POLICIES}")
    if label_kind not in LABEL_KINDS:
        raise ValueError(f"label_kind must be one of {LABEL_KINDS}")
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}")


# --------------------------------------------------------------------------------------
# readers: each returns records (line, id, seq, raw label or None, per-residue or None) and info
@dataclass
class _Record:
    line: int
    id: str
    seq: str
    label: str | None
    per_residue: str | None = None
    split: str | None = None              # the split cell as written (checked in _finish)


def _read_fasta(text, alphabet, map_aliases, label_key, per_residue_key, label_required, split_key=None):
    records: list[_Record] = []
    alias_counts: dict = {}
    cur = None
    chunks: list[str] = []

    def close():
        if cur is None:
            return
        seq = "".join(chunks)
        if not seq:
            raise SequenceFileError(f"Line {cur.line}: the record '{cur.id}' has no sequence under its header.",
                                    line=cur.line, hint="Add the sequence on the lines after the header, or remove the header.")
        cur.seq = seq
        records.append(cur)

    keys = (label_key,) if label_key else HEADER_KEYS
    split_keys = (split_key.lower(),) if split_key else SPLIT_NAMES
    split_seen = False
    for n, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith(";") or line.startswith("#"):
            continue
        if line.startswith(">"):
            close()
            header = line[1:].strip()
            fields = _header_fields(header)
            ident = header.split()[0] if header.split() else f"seq{len(records) + 1}"
            label = next((fields[k] for k in keys if k in fields), None)
            pr = fields.get(per_residue_key) if per_residue_key else None
            sp = next((fields[k] for k in split_keys if k in fields), None)
            split_seen = split_seen or sp is not None
            cur = _Record(n, ident, "", label, pr, sp if sp is not None else "")
            chunks = []
            continue
        if cur is None:
            raise SequenceFileError(f"Line {n}: sequence text before the first '>' header.", line=n,
                                    hint="Start each FASTA record with a header line such as '>seq1 label=1'.")
        chunks.append(clean_sequence(line, alphabet, map_aliases,
                                     lambda p, n=n: f"Line {n}, position {p}", alias_counts, line=n,
                                     skip_space=True))
    close()
    if not records:
        raise SequenceFileError("The FASTA file has no records.", hint="Each record is a '>name label=1' line "
                                "followed by the sequence.")
    if label_required and all(r.label is None for r in records):
        raise SequenceFileError(
            f"Line {records[0].line}: no label in the FASTA header '>{records[0].id} ...'.", line=records[0].line,
            hint="Write the label into each header, e.g. '>seq1 label=1' (or class=, y=, score=).")
    if not split_seen:
        for r in records:
            r.split = None
    return records, {"format": "fasta", "columns": [], "seq_col": None, "label_col": label_key or "label",
                     "alias_counts": alias_counts,
                     "split_col": (split_key or SPLIT_NAMES[0]) if split_seen else None}


def _header_fields(header: str) -> dict:
    out = {}
    for m in re.finditer(r"([A-Za-z_][\w.-]*)\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s;|,]+)", header):
        out[m.group(1).lower()] = m.group(2).strip("\"'")
    return out


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _looks_like_header(fields: list[str], alphabet: Alphabet) -> bool:
    names = {_norm(f) for f in fields}
    return bool(names & set(SEQ_NAMES + LABEL_NAMES + ID_NAMES))


def _is_sequence_like(value: str, alphabet: Alphabet) -> bool:
    v = value.strip().upper()
    return len(v) >= 5 and all(c in alphabet.valid or c in dict(alphabet.aliases) for c in v)


def _read_table(text, fmt, alphabet, map_aliases, seq_col, label_col, id_col, per_residue_col, label_required,
                split_col=None):
    delim = {"tsv": "\t", "csv;": ";"}.get(fmt, ",")
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                rows.append((reader.line_num, row))
    except csv.Error as e:
        raise SequenceFileError(f"Line {reader.line_num}: the table cannot be read ({e}).", line=reader.line_num,
                                hint="Check the quotes on that line; save the file again as CSV.") from None
    if not rows:
        raise SequenceFileError("The file has no rows.", hint="Upload a CSV with a sequence and a label column.")
    first_line, first = rows[0]
    first = [c.strip() for c in first]
    has_header = _looks_like_header(first, alphabet) or not any(_is_sequence_like(c, alphabet) for c in first)
    if seq_col is not None or label_col is not None:
        has_header = has_header or any(c in first for c in (seq_col, label_col) if c)
    if has_header:
        columns = [c if c else f"column {i + 1}" for i, c in enumerate(first)]
        body = rows[1:]
    else:
        columns = [f"column {i + 1}" for i in range(len(first))]
        body = rows
    if not body:
        raise SequenceFileError(f"The file has a header (line {first_line}) but no data rows.",
                                hint="Add one row per sequence under the header.")
    norm = [_norm(c) for c in columns]
    kind = "TSV" if delim == "\t" else "CSV"

    def find(explicit, names, what, exclude=()):
        if explicit is not None:
            if explicit in columns:
                return columns.index(explicit)
            if _norm(explicit) in norm:
                return norm.index(_norm(explicit))
            raise SequenceFileError(f"The {kind} has no column '{explicit}' (columns: {', '.join(columns)}).",
                                    hint=f"Pick the {what} column from the list.")
        for name in names:
            for i, c in enumerate(norm):
                if c == name and i not in exclude:
                    return i
        return None

    # the split column: named 'split' (or picked); never taken for the sequence or the label
    pick = find(split_col, SPLIT_NAMES, "split") if split_col is not None else None
    if split_col is None:
        pick = next((i for i, c in enumerate(norm) if c in SPLIT_NAMES), None)
        if pick is not None and (seq_col is not None and find(seq_col, (), "sequence") == pick
                                 or label_col is not None and find(label_col, (), "label") == pick):
            pick = None      # the person picked that column for something else
    spi = pick
    si = find(seq_col, SEQ_NAMES, "sequence", exclude=(spi,))
    if si is None:  # the first column whose values look like sequences
        sample = body[: min(len(body), 50)]
        for i in range(len(columns)):
            if i == spi:
                continue
            vals = [r[i] for _, r in sample if i < len(r) and r[i].strip()]
            if vals and sum(_is_sequence_like(v, alphabet) for v in vals) >= 0.8 * len(vals):
                si = i
                break
    if si is None:
        raise SequenceFileError(
            f"Cannot tell which column holds the sequences (columns: {', '.join(columns)}).",
            hint="Name it 'sequence' in the header, or pick the sequence column in the list.")
    ii = find(id_col, ID_NAMES, "ID", exclude=(si, spi))
    li = find(label_col, LABEL_NAMES, "label", exclude=(si, spi))
    if li is not None and li == si:
        raise SequenceFileError("The sequence and label columns are the same column.",
                                hint="Pick two different columns.")
    if spi is not None and spi in (si, li):
        raise SequenceFileError(f"The split column '{columns[spi]}' is also picked as the "
                                f"{'sequence' if spi == si else 'label'} column.",
                                hint="Pick different columns, or leave the split column out.")
    if li is None:
        others = [i for i in range(len(columns)) if i not in (si, ii, spi)]
        if len(others) == 1:
            li = others[0]
    if li is None and label_required:
        raise SequenceFileError(
            f"Cannot tell which column holds the labels (columns: {', '.join(columns)}).",
            hint="Name it 'label' in the header, or pick the label column in the list.")
    pi = find(per_residue_col, (), "per-residue label") if per_residue_col else None
    records = []
    alias_counts: dict = {}
    for line, row in body:
        cells = [c.strip() for c in row]
        if si >= len(cells) or not cells[si]:
            raise SequenceFileError(f"Line {line}: the sequence is empty.", line=line,
                                    hint="Fill in the sequence or remove the line.")
        raw = cells[si]
        seq = clean_sequence(raw, alphabet, map_aliases,
                             lambda p, line=line: f"Line {line}, position {p} of the sequence", alias_counts,
                             line=line)
        label = cells[li] if li is not None and li < len(cells) else None
        if label is not None and label.lower() in MISSING:
            label = None
        ident = cells[ii] if ii is not None and ii < len(cells) and cells[ii] else f"line{line}"
        pr = cells[pi] if pi is not None and pi < len(cells) else None
        sp = (cells[spi] if spi < len(cells) else "") if spi is not None else None
        records.append(_Record(line, ident, seq, label, pr, sp))
    return records, {"format": "tsv" if delim == "\t" else "csv", "columns": columns, "seq_col": columns[si],
                     "label_col": columns[li] if li is not None else None, "alias_counts": alias_counts,
                     "split_col": columns[spi] if spi is not None else None}


def _read_lines(text, alphabet, map_aliases, label_required):
    records = []
    alias_counts: dict = {}
    for n, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        parts = re.split(r"[,\t;]|\s+", line, maxsplit=1)
        seq_raw = parts[0].strip()
        label = parts[1].strip() if len(parts) > 1 and parts[1].strip() else None
        if label is not None and label.lower() in MISSING:
            label = None
        seq = clean_sequence(seq_raw, alphabet, map_aliases, lambda p, n=n: f"Line {n}, position {p}", alias_counts,
                             line=n)
        records.append(_Record(n, f"seq{len(records) + 1}", seq, label))
    if label_required and all(r.label is None for r in records):
        raise SequenceFileError(f"Line {records[0].line}: no label after the sequence.", line=records[0].line,
                                hint="Write each sequence and its label on one line, e.g. 'ACGTACGT,1'.")
    return records, {"format": "lines", "columns": [], "seq_col": None, "label_col": None,
                     "alias_counts": alias_counts}


# --------------------------------------------------------------------------------------
def _as_number(s: str) -> float | None:
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def infer_label_kind(raw: list[str], max_classes: int = 10) -> str:
    """'classification' for words or a few integer values, else 'regression'."""
    nums = [_as_number(v) for v in raw]
    if any(v is None for v in nums):
        return "classification"
    uniq = set(nums)
    if all(float(v).is_integer() for v in uniq) and len(uniq) <= max_classes:
        return "classification"
    return "regression"


def _class_sort_key(name: str):
    v = _as_number(name)
    return (0, v, name) if v is not None else (1, 0.0, name)


def _class_name(raw: str) -> str:
    v = _as_number(raw)
    if v is not None and v.is_integer():
        return str(int(v))
    return raw


def _finish(records, info, alphabet, *, label_required, label_kind, length_policy, max_length, duplicates,
            min_classes, max_classes, max_records) -> ParsedSequences:
    warnings: list[str] = []
    if len(records) > max_records:
        raise SequenceFileError(f"The file has {len(records)} sequences; the limit is {max_records}.",
                                hint="Upload a random subset of the sequences.")
    for a, n in info.get("alias_counts", {}).items():
        warnings.append(f"Mapped {n} × '{a}' to '{dict(alphabet.aliases)[a]}'.")
    # labels present?
    if label_required:
        missing = [r for r in records if r.label is None]
        if missing:
            r = missing[0]
            where = f"the '{info['label_col']}' column" if info.get("label_col") else "the header"
            raise SequenceFileError(
                f"Line {r.line}: the label is missing ({where} is empty for '{r.id}')"
                + (f"; {len(missing)} sequences have no label." if len(missing) > 1 else "."),
                line=r.line, hint="Fill in the label or remove the line.")
    # the split column: train / valid / test on every row
    split_col = info.get("split_col")
    if split_col is not None:
        for r in records:
            raw = (r.split or "").strip()
            canon = SPLIT_ALIASES.get(raw.lower())
            if canon is None:
                what = f"the split is '{raw}'" if raw else "the split is empty"
                raise SequenceFileError(
                    f"Line {r.line}: {what} (column '{split_col}'); it must be train, valid or test.", line=r.line,
                    hint="Write train, valid (or validation / val / dev) or test on every row, or remove the "
                         "column to let the page split the sequences itself.")
            r.split = canon
    # per-residue labels line up with the sequence
    for r in records:
        if r.per_residue is not None and len(r.per_residue) != len(r.seq):
            raise SequenceFileError(
                f"Line {r.line}: the sequence has {len(r.seq)} letters but its per-residue labels have "
                f"{len(r.per_residue)}.", line=r.line, hint="Give exactly one label letter per sequence letter.")
    # duplicates
    if duplicates != "keep":
        seen: dict[str, _Record] = {}
        kept = []
        dropped = []
        conflicts = []
        crossed = []
        for r in records:
            prev = seen.get(r.seq)
            if prev is None:
                seen[r.seq] = r
                kept.append(r)
                continue
            if duplicates == "reject":
                raise SequenceFileError(f"Line {r.line}: the same sequence as line {prev.line}.", line=r.line,
                                        hint="Remove the duplicate, or allow duplicates (the first copy is kept).")
            dropped.append(r)
            if r.label != prev.label:
                conflicts.append((prev, r))
            if r.split != prev.split:
                crossed.append((prev, r))
        if dropped:
            lines = ", ".join(str(r.line) for r in dropped[:5]) + (" …" if len(dropped) > 5 else "")
            warnings.append(f"Dropped {len(dropped)} duplicate sequence(s) (line(s) {lines}); the first copy is kept"
                            " so that no sequence is in both the training and the test set.")
        if conflicts:
            a, b = conflicts[0]
            warnings.append(f"{len(conflicts)} duplicate(s) had a different label, e.g. line {a.line} "
                            f"('{a.label}') and line {b.line} ('{b.label}'); the first label was kept.")
        if crossed:
            a, b = crossed[0]
            warnings.append(f"{len(crossed)} duplicate(s) were in two different splits, e.g. line {a.line} "
                            f"({a.split}) and line {b.line} ({b.split}); the first copy's split was kept.")
        records = kept
    # lengths
    lens = [len(r.seq) for r in records]
    shortest, longest = min(lens), max(lens)
    if max_length is not None and max_length < 1:
        raise ValueError("max_length must be at least 1")
    if length_policy == "reject":
        first = records[0]
        for r in records:
            if len(r.seq) != len(first.seq):
                raise SequenceFileError(
                    f"Line {r.line}: this sequence has {len(r.seq)} letters but the first one (line {first.line}) "
                    f"has {len(first.seq)}.", line=r.line,
                    hint="Make all sequences the same length, or choose 'pad' or 'truncate' for mixed lengths.")
        if max_length is not None and longest > max_length:
            raise SequenceFileError(f"The sequences have {longest} letters; the limit is {max_length}.",
                                    hint="Choose 'truncate' to cut them, or upload shorter sequences.")
        target = longest
    elif length_policy == "pad":
        if max_length is not None and longest > max_length:
            r = next(r for r in records if len(r.seq) > max_length)
            raise SequenceFileError(
                f"Line {r.line}: this sequence has {len(r.seq)} letters, more than the limit of {max_length}.",
                line=r.line, hint="Choose 'truncate' to cut long sequences, or shorten this one.")
        target = longest          # the limit only rejects longer ones; it is never a padding target
        if shortest != longest:
            warnings.append(f"Lengths vary from {shortest} to {longest}: shorter sequences are padded at the end "
                            f"to {target} (padding is all zeros, like {alphabet.unknown}).")
    else:  # truncate: cut what is over the limit (without a limit: everything to the shortest)
        target = min(max_length, longest) if max_length is not None else shortest
        cut = sum(1 for n in lens if n > target)
        if cut:
            warnings.append(f"Cut {cut} sequence(s) to the first {target} letters.")
        if shortest < target:
            warnings.append(f"Sequences shorter than {target} are padded at the end (all zeros, like {alphabet.unknown}).")
    original = lens
    seqs = [r.seq[:target] for r in records]
    per_res = None
    if any(r.per_residue is not None for r in records):
        per_res = [(r.per_residue or "")[:target] for r in records]
    # labels
    raw_labels = [r.label for r in records]
    labels = None
    kind = None
    class_names: list[str] = []
    present = [r for r in records if r.label is not None]
    if present:
        kind = label_kind if label_kind != "auto" else infer_label_kind([r.label for r in present])
        if kind == "regression":
            vals = []
            for r in records:
                if r.label is None:
                    vals.append(np.nan)
                    continue
                v = _as_number(r.label)
                if v is None:
                    raise SequenceFileError(
                        f"Line {r.line}: the label '{r.label}' is not a number, but regression needs numbers.",
                        line=r.line, hint="Choose classification, or write a number as the label.")
                vals.append(v)
            labels = np.asarray(vals, dtype=np.float32)
            if label_required and len(present) >= 2 and np.nanstd(labels) == 0:
                raise SequenceFileError(f"All {len(present)} labels are the same value ({present[0].label}): "
                                        "there is nothing to learn.", hint="Upload sequences with different labels.")
        else:
            class_names = sorted({_class_name(r.label) for r in present}, key=_class_sort_key)
            if len(class_names) > max_classes:
                raise SequenceFileError(
                    f"The labels have {len(class_names)} different values, too many classes (at most {max_classes}).",
                    hint="If the label is a measured number, choose regression; otherwise merge classes.")
            index = {c: i for i, c in enumerate(class_names)}
            labels = np.asarray([index[_class_name(r.label)] if r.label is not None else -1 for r in records],
                                dtype=np.int64)
            if label_required and len(class_names) < min_classes:
                raise SequenceFileError(
                    f"All {len(present)} sequences have the label '{class_names[0]}': a classifier needs at least "
                    f"{min_classes} classes.",
                    hint="Add sequences of another class (e.g. negatives), or choose regression for numbers.")
            counts = np.bincount(labels[labels >= 0], minlength=len(class_names))
            if label_required and counts.min() < 2:
                rare = class_names[int(counts.argmin())]
                warnings.append(f"Class '{rare}' has only {int(counts.min())} sequence(s); the test set may miss it.")
    split = [r.split for r in records] if split_col is not None else None
    if split is not None:
        n = {s: split.count(s) for s in SPLITS}
        if label_required and n["train"] == 0:
            raise SequenceFileError(f"No sequence is marked 'train' in the '{split_col}' column: there is nothing to "
                                    "train on.", hint="Mark the training sequences 'train', or remove the column to "
                                                      "let the page split the sequences itself.")
        warnings.append(f"The '{split_col}' column keeps the file's own split: " + ", ".join(
            f"{n[s]} {s}" for s in SPLITS) + (" (validation is carved from train)." if n["valid"] == 0 else "."))
    return ParsedSequences(
        ids=[r.id for r in records], seqs=seqs, labels=labels, label_kind=kind, class_names=class_names,
        warnings=warnings, alphabet=alphabet, format=info["format"], columns=list(info.get("columns", [])),
        seq_col=info.get("seq_col"), label_col=info.get("label_col") if present else None,
        line_numbers=[r.line for r in records], original_lengths=original, length=target, per_residue=per_res,
        raw_labels=raw_labels, split=split, split_col=split_col)


__all__ = ["SequenceFileError", "ParsedSequences", "parse_sequence_file", "parse_sequence_text", "detect_format",
           "infer_label_kind", "clean_sequence", "MAX_BYTES", "LENGTH_POLICIES", "LABEL_KINDS", "SPLITS"]
