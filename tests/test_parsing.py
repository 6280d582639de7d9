"""The upload parser: good files are read right, bad files are rejected with the line,
the character and what to do."""
from __future__ import annotations

import gzip
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground import encoding
from playground.data.parsing import (SequenceFileError, infer_label_kind, parse_sequence_file,
                                     parse_sequence_text)


# ---------------------------------------------------------------------------- good files
def test_csv_with_header_picks_columns_and_infers_classes():
    text = "id,sequence,label\na,ACGTACGT,1\nb,acgtaccc,0\nc,GGGGACGT,1\nd,TTTTACGT,0\n"
    p = parse_sequence_file(text.encode(), "s.csv")
    assert p.format == "csv" and p.seq_col == "sequence" and p.label_col == "label"
    assert p.ids == ["a", "b", "c", "d"]
    assert p.seqs[1] == "ACGTACCC"  # upper-cased
    assert p.label_kind == "classification" and p.task == "binary"
    assert p.class_names == ["0", "1"]
    assert p.labels.tolist() == [1, 0, 1, 0]
    assert p.line_numbers == [2, 3, 4, 5]
    x = p.one_hot()
    assert tuple(x.shape) == (4, 4, 8)
    assert x[0, :, 0].tolist() == [1, 0, 0, 0]


def test_tsv_regression_and_explicit_columns():
    text = "name\tdna\texpr\tother\nr1\tACGTA\t1.25\tx\nr2\tCCGTA\t-0.5\ty\nr3\tGGGTA\t3.75\tz\n"
    p = parse_sequence_file(text, "data.tsv", seq_col="dna", label_col="expr")
    assert p.format == "tsv"
    assert p.label_kind == "regression" and p.task == "regression"
    assert p.labels.dtype == np.float32
    assert np.allclose(p.labels, [1.25, -0.5, 3.75])
    assert p.ids == ["r1", "r2", "r3"]


def test_label_kind_override_and_inference():
    text = "sequence,label\nACGTA,1\nCCGTA,2\nGGGTA,3\nTTGTA,1\n"
    assert parse_sequence_file(text, "a.csv").label_kind == "classification"
    p = parse_sequence_file(text, "a.csv", label_kind="regression")
    assert p.label_kind == "regression" and p.labels.tolist() == [1.0, 2.0, 3.0, 1.0]
    assert infer_label_kind(["0.5", "1.5", "2"]) == "regression"
    assert infer_label_kind(["pos", "neg"]) == "classification"
    with pytest.raises(SequenceFileError, match=r"Line 3: the label 'two' is not a number"):
        parse_sequence_file("sequence,label\nACGTA,1\nCCGTA,two\n", "a.csv", label_kind="regression")


def test_word_classes_multiclass():
    text = "sequence,label\nACGTA,gata\nCCGTA,ctcf\nGGGTA,tbp\nTTGTA,ctcf\nTTGTT,gata\nTAGTT,tbp\n"
    p = parse_sequence_file(text, "a.csv")
    assert p.task == "multiclass" and p.class_names == ["ctcf", "gata", "tbp"]
    assert p.labels.tolist() == [1, 0, 2, 0, 1, 2]


def test_headerless_csv():
    p = parse_sequence_file("ACGTAA,1\nACGTTT,0\n", "x.csv")
    assert p.columns == ["column 1", "column 2"] and p.seqs == ["ACGTAA", "ACGTTT"]


def test_fasta_labels_from_header_multiline_sequence():
    text = ">s1 label=1 some description\nACGT\nacgg\n\n>s2 label=0\nTTTTTTTT\n>s3 class=1\nGGGGCCCC\n"
    p = parse_sequence_file(text, "x.fa")
    assert p.format == "fasta" and p.ids == ["s1", "s2", "s3"]
    assert p.seqs == ["ACGTACGG", "TTTTTTTT", "GGGGCCCC"]
    assert p.labels.tolist() == [1, 0, 1]


def test_gzip_upload_is_read():
    raw = gzip.compress(b"sequence,label\nACGTA,1\nCCGTA,0\n")
    assert parse_sequence_file(raw, "x.csv.gz").seqs == ["ACGTA", "CCGTA"]


def test_protein_alphabet():
    text = "seq,y\nMKTAYIAKQR,0.5\nMKTAYIAKQQ,1.5\nMKTAYIAKQE*,2.5\n"
    p = parse_sequence_file(text, "p.csv", encoding.PROTEIN, label_kind="regression")
    assert p.seqs[0] == "MKTAYIAKQR" and p.alphabet is encoding.PROTEIN
    with pytest.raises(SequenceFileError) as e:
        parse_sequence_file("seq,y\nMKTAYIAKQR,0\nMKT1YIAKQR,1\n", "p.csv", encoding.PROTEIN)
    assert "Line 3, position 4" in str(e.value) and "'1' is not a protein letter" in str(e.value)


# ---------------------------------------------------------------------------- bad files
def test_bad_letter_names_line_character_and_what_to_do():
    text = "sequence,label\nACGTACGT,1\nACGTACGT,0\n" + "\n" * 0 + "ACGTAAAA,1\nCCGT,0\nAAGG,1\nACGTACGXAAA,0\n"
    with pytest.raises(SequenceFileError) as e:
        parse_sequence_file(text, "s.csv", duplicates="keep")
    msg = str(e.value)
    assert msg.startswith("Line 7, position 8 of the sequence")
    assert "'X' is not a DNA letter (allowed: A C G T N)" in msg
    assert "replace it with N" in msg
    assert e.value.line == 7


def test_u_is_offered_as_t():
    text = "sequence,label\nACGUA,1\nCCGTA,0\n"
    with pytest.raises(SequenceFileError, match=r"Line 2, position 4.*'U'.*map U→T"):
        parse_sequence_file(text, "s.csv")
    p = parse_sequence_file(text, "s.csv", map_aliases=True)
    assert p.seqs[0] == "ACGTA" and any("'U' to 'T'" in w for w in p.warnings)


def test_fasta_bad_letter_uses_file_line():
    text = ">a label=1\nACGT\nACGA\n>b label=0\nAC GT\nAC-T\n"
    with pytest.raises(SequenceFileError, match=r"Line 6, position 3: '-' is not a DNA letter"):
        parse_sequence_file(text, "x.fasta")


@pytest.mark.parametrize("data, pattern", [
    (b"", "is empty"),
    (b"  \n\n", "is empty"),
    ("sequence,label\n", "no data rows"),
    ("sequence,label\nACGTA,1\n,0\n", r"Line 3: the sequence is empty"),
    ("sequence,label\nACGTA,1\nACGTT,\n", r"Line 3: the label is missing"),
    ("sequence,label\nACGTA,1\nACGTT,NA\n", r"Line 3: the label is missing"),
    ("sequence,label\nACGTA,1\nACGTT,1\nAGGTT,1\n", r"All 3 sequences have the label '1'.*at least 2 classes"),
    ("sequence,label\nACGTA,1.5\nACGTT,1.5\nAGGTT,1.5\n", None),  # single class (1.5 is a class here)
    (">s1\nACGT\n", r"Line 1: no label in the FASTA header"),
    ("ACGT\n>s1 label=1\nACGT\n", r"Line 1: sequence text before the first '>'"),
    (">s1 label=1\n>s2 label=0\nACGT\n", r"Line 1: the record 's1' has no sequence"),
    ("foo,bar\n1,2\n3,4\n", "Cannot tell which column holds the sequences"),
    ("sequence,notes,more\nACGTA,x,y\nCCGTA,z,w\n", "Cannot tell which column holds the labels"),
    (b"PK\x03\x04rest", "zip or Excel"),
    (b"seq,label\nAC\xff\xfeGT,1\n", r"Line 2: the file is not UTF-8"),
])
def test_bad_files_raise_friendly_errors(data, pattern):
    with pytest.raises(SequenceFileError) as e:
        parse_sequence_file(data, "f.csv" if not (isinstance(data, str) and ">" in data) else "f.fa")
    if pattern:
        import re
        assert re.search(pattern, str(e.value)), str(e.value)
    assert isinstance(e.value, ValueError)
    assert "Traceback" not in str(e.value)


def test_missing_label_allowed_for_prediction():
    p = parse_sequence_file("sequence\nACGTA\nCCGTA\n", "s.csv", label_required=False)
    assert p.labels is None and p.label_kind is None and p.task is None


def test_unknown_column_names_the_columns():
    with pytest.raises(SequenceFileError, match=r"no column 'seqz' \(columns: sequence, label\)"):
        parse_sequence_file("sequence,label\nACGTA,1\nCCGTA,0\n", "s.csv", seq_col="seqz")


def test_duplicates_dropped_with_warning_or_rejected():
    text = "sequence,label\nACGTA,1\nCCGTA,0\nACGTA,0\nGGGTA,1\n"
    p = parse_sequence_file(text, "s.csv")
    assert p.seqs == ["ACGTA", "CCGTA", "GGGTA"]
    assert any("Dropped 1 duplicate" in w and "line(s) 4" in w for w in p.warnings)
    assert any("different label" in w for w in p.warnings)
    assert len(parse_sequence_file(text, "s.csv", duplicates="keep")) == 4
    with pytest.raises(SequenceFileError, match=r"Line 4: the same sequence as line 2"):
        parse_sequence_file(text, "s.csv", duplicates="reject")


def test_mixed_lengths_pad_truncate_reject():
    text = "sequence,label\nACGTAC,1\nCCG,0\nGGGTACGT,1\n"
    pad = parse_sequence_file(text, "s.csv")
    assert pad.length == 8 and pad.seqs[1] == "CCG"
    assert pad.one_hot()[1, :, 3:].abs().sum() == 0  # padding is all zeros
    assert any("padded" in w for w in pad.warnings)
    tr = parse_sequence_file(text, "s.csv", length_policy="truncate")
    assert tr.length == 3 and tr.seqs == ["ACG", "CCG", "GGG"] and tr.original_lengths == [6, 3, 8]
    tr5 = parse_sequence_file(text, "s.csv", length_policy="truncate", max_length=5)
    assert tr5.length == 5 and tr5.seqs[2] == "GGGTA"
    with pytest.raises(SequenceFileError, match=r"Line 3: this sequence has 3 letters but the first one \(line 2\) has 6"):
        parse_sequence_file(text, "s.csv", length_policy="reject")
    with pytest.raises(SequenceFileError, match=r"Line 4: this sequence has 8 letters, more than the limit of 7"):
        parse_sequence_file(text, "s.csv", max_length=7)


def test_size_limit():
    data = b"sequence,label\n" + b"ACGTACGTAC,1\n" * 2000
    with pytest.raises(SequenceFileError, match=r"The file is .* the limit is 10.0 kB.*smaller file"):
        parse_sequence_file(data, "big.csv", max_bytes=10 * 1024)
    bomb = gzip.compress(data)
    with pytest.raises(SequenceFileError, match="Unpacked"):
        parse_sequence_file(bomb, "big.csv.gz", max_bytes=10 * 1024)


def test_per_residue_column_must_match_length():
    p = parse_sequence_file("seq,ss\nMKTAY,HHHEE\nMKTAA,CCCHH\n", "p.csv", encoding.PROTEIN,
                            per_residue_col="ss", label_required=False)
    assert p.per_residue == ["HHHEE", "CCCHH"]
    with pytest.raises(SequenceFileError, match="Line 3: the sequence has 5 letters but its per-residue labels have 4"):
        parse_sequence_file("seq,ss\nMKTAY,HHHEE\nMKTAA,CCCH\n", "p.csv", encoding.PROTEIN,
                            per_residue_col="ss", label_required=False)


def test_pasted_text_lines_and_fasta():
    p = parse_sequence_text("ACGTACGT\n\ngggtacgt\n# a comment\nTTTT\n")
    assert p.seqs == ["ACGTACGT", "GGGTACGT", "TTTT"] and p.labels is None and p.length == 8
    p = parse_sequence_text(">a\nACGT\n>b\nGGCC\n")
    assert p.ids == ["a", "b"]
    p = parse_sequence_text("ACGT,1\nGGCC,0\n", label_required=True)
    assert p.labels.tolist() == [1, 0]
    with pytest.raises(SequenceFileError, match=r"Line 2, position 2: 'Z'"):
        parse_sequence_text("ACGT\nAZGT\n")
    with pytest.raises(SequenceFileError, match="Nothing was pasted"):
        parse_sequence_text("   ")


# ---------------------------------------------------------------------------- properties
DNA_LETTERS = "ACGTNacgtn"
# U has its own message (RNA's uracil, with the U->T mapping offered), tested on its own.
BAD = [c for c in string.printable if c.upper() not in "ACGTNU" and c not in "\r\n\t\x0b\x0c ,\"'"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seqs=st.lists(st.text(DNA_LETTERS, min_size=1, max_size=30), min_size=2, max_size=12),
       data=st.data())
def test_property_good_files_round_trip_and_one_bad_char_is_located(seqs, data):
    labels = [i % 2 for i in range(len(seqs))]
    text = "sequence,label\n" + "".join(f"{s},{y}\n" for s, y in zip(seqs, labels))
    p = parse_sequence_file(text, "p.csv", duplicates="keep")
    assert p.seqs == [s.upper() for s in seqs]
    assert p.labels.tolist() == labels
    assert p.length == max(len(s) for s in seqs)
    # plant one bad character anywhere: the error names its line, position and the character
    row = data.draw(st.integers(0, len(seqs) - 1))
    pos = data.draw(st.integers(0, len(seqs[row])))
    bad = data.draw(st.sampled_from(BAD))
    broken = list(seqs)
    broken[row] = seqs[row][:pos] + bad + seqs[row][pos:]
    text = "sequence,label\n" + "".join(f"{s},{y}\n" for s, y in zip(broken, labels))
    with pytest.raises(SequenceFileError) as e:
        parse_sequence_file(text, "p.csv", duplicates="keep")
    msg = str(e.value)
    assert msg.startswith(f"Line {row + 2}, position {pos + 1} of the sequence: '{bad}' is not a DNA letter"), msg
    assert "replace it with N" in msg


@settings(max_examples=40, deadline=None)
@given(seqs=st.lists(st.text("ACGT", min_size=1, max_size=40), min_size=1, max_size=8),
       width=st.integers(1, 25))
def test_property_fasta_any_line_width(seqs, width):
    text = ""
    for i, s in enumerate(seqs):
        text += f">r{i} label={i % 3}\n" + "\n".join(s[j:j + width] for j in range(0, len(s), width)) + "\n"
    p = parse_sequence_file(text, "x.fa", duplicates="keep", min_classes=1)
    assert p.seqs == seqs and p.ids == [f"r{i}" for i in range(len(seqs))]
