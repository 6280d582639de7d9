"""``python -m playground predict``: the Predict page's reader and table, from a terminal."""
from __future__ import annotations

import gzip
import io

import pandas as pd
import pytest

from playground import predict as P
from playground.bundle import bundle_from_trainer, load_bundle
from playground.cli import main
from playground.setups import dna

FASTA = ">s1\nACGTACGTACCGCGGGGCGTTTACGTACGTA\n>s2 some words\nTTGACCGATTGACCGATTGACCGATTGACCGA\n" \
        ">s3\nacgtacgtacgt\n>s4\nGGGGCCCCGGGGCCCCGGGGCCCCGGGGCC\n"


@pytest.fixture(scope="module")
def bundle_file(tmp_path_factory):
    run = dna.build({"model": "course", "n": 200, "length": 30, "seed": 2})
    tr = run.make_trainer()
    tr.run_epochs(1)
    path = tmp_path_factory.mktemp("b") / "dna.pt"
    bundle_from_trainer(tr, run.spec, page="dna", input=run.extras["input"]).save(path)
    return path


def test_predict_writes_the_pages_table(bundle_file, tmp_path, capsys):
    seqs = tmp_path / "in.fasta"
    seqs.write_text(FASTA)
    out = tmp_path / "preds.csv"
    assert main(["predict", str(bundle_file), str(seqs), "--long", "truncate", "-o", str(out), "--quiet"]) == 0
    b = load_bundle(bundle_file)
    page = P.predict(b, P.read_input(b, data=FASTA.encode(), filename="in.fasta", long_policy="truncate"))
    assert out.read_text() == page.to_csv()
    frame = pd.read_csv(out)
    assert list(frame["id"]) == ["s1", "s2", "s3", "s4"] and "P(CTCF)" in frame.columns
    assert "shorter than the model" in capsys.readouterr().err      # the page's warning, on stderr


def test_plain_lines_gzip_and_parts(bundle_file, tmp_path, capsys, monkeypatch):
    lines = "\n".join(["ACGTACGTACGTACGTACGTACGTACGTAC", "TTTTGGGGCCCCAAAATTTTGGGGCCCCAA"] * 4) + "\n"
    gz = tmp_path / "seqs.txt.gz"
    gz.write_bytes(gzip.compress(lines.encode()))
    assert main(["predict", str(bundle_file), str(gz), "--quiet"]) == 0
    whole = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(whole) == 8 and whole["id"][0] == "seq1"
    monkeypatch.setattr(P, "MAX_SEQUENCES", 3)          # a big file is predicted in parts, same numbers
    assert main(["predict", str(bundle_file), str(gz), "--quiet"]) == 0
    parts = pd.read_csv(io.StringIO(capsys.readouterr().out))
    pd.testing.assert_frame_equal(whole, parts)


@pytest.mark.parametrize("text, words", [
    (">a\nACGTACGTAC\n>b\nACGTXACG\n", "Line 4, position 5: 'X'"),
    ("sequence,label\nACGT,1\nAC-T,0\n", "Line 3, position 3"),
])
def test_a_bad_file_names_the_line_and_position(bundle_file, tmp_path, capsys, text, words):
    f = tmp_path / ("bad.csv" if text.startswith("sequence") else "bad.fa")
    f.write_text(text)
    assert main(["predict", str(bundle_file), str(f), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {f}: ") and words in err and "Traceback" not in err


def test_a_file_that_is_not_a_bundle(tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    seqs = tmp_path / "s.txt"
    seqs.write_text("ACGT\n")
    assert main(["predict", str(bad), str(seqs)]) == 1
    assert capsys.readouterr().err.startswith("error: ")
