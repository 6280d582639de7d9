"""Real DNA files on their own terms (issue #12, items 2 and 3).

- an upload keeps its real length: ``max_length`` is a limit (reject / cut longer sequences),
  never a padding target; a 251 bp file stays 251 bp through the DNA page's own code path;
- an upload may name its split in a ``split`` column (train / valid / test, with aliases);
  a bad value is an error naming the line and the value; the split reaches
  ``DNADataset.split_labels`` and ``ProteinSet.split_labels``;
- Genomic Benchmarks keeps its published train / test split, and its size is a control up to
  the full set; a subsample is drawn from train and test in proportion, stratified by class.

The Genomic Benchmarks tests write a tiny fake cache in ``tmp_path`` (the folder layout the
loader reads: <cache>/<name>/{train,test}/<class>/<id>.txt); nothing is downloaded.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from playground import encoding
from playground.data import dna
from playground.data.parsing import SequenceFileError, parse_sequence_file, parse_sequence_text
from playground.setups import dna as setup

RNG = np.random.default_rng(12)


def random_dna(n: int, length: int, rng=RNG) -> list[str]:
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def tsv(seqs, labels, header="seq\tlabel", extra=None) -> bytes:
    rows = [header] + [f"{s}\t{y}" + (f"\t{extra[i]}" if extra else "") for i, (s, y) in enumerate(zip(seqs, labels))]
    return ("\n".join(rows) + "\n").encode()


# ---------------------------------------------------------------------------------- upload length
def test_a_251_bp_upload_stays_251_bp_through_the_page_code_path():
    """The non-TATA layout (seq<TAB>label, 251 bp) through ``make_dataset``, as the page does it."""
    seqs = random_dna(300, 251)
    data = tsv(seqs, [i % 2 for i in range(300)])
    ds = setup.make_dataset({"dataset": "upload"}, upload=("gb_nontata_like.tsv", data))
    assert setup.MAX_UPLOAD_LENGTH > 251              # the page's limit is still there ...
    assert ds.length == 251                           # ... but it is not a padding target
    assert tuple(ds.one_hot().shape) == (300, 4, 251)
    assert ds.summary().startswith("300 sequences × 251 bp")
    assert ds.seqs == seqs
    # every length policy the page offers keeps the file's length
    for policy in setup.LENGTH_POLICIES:
        ds = setup.make_dataset({"dataset": "upload", "length_policy": policy}, upload=("u.tsv", data))
        assert ds.length == 251, policy


def test_pad_pads_to_the_longest_and_the_limit_only_rejects_or_cuts():
    text = "sequence,label\n" + "ACGT" * 10 + ",1\n" + "ACG" * 5 + ",0\n" + "GGCC" * 5 + ",1\n"
    pad = parse_sequence_file(text, "s.csv", length_policy="pad", max_length=2000)
    assert pad.length == 40 and tuple(pad.one_hot().shape) == (3, 4, 40)
    assert any("padded at the end to 40" in w for w in pad.warnings)
    assert pad.one_hot()[1, :, 15:].abs().sum() == 0           # the padding of the short one is all zeros
    cut = parse_sequence_file(text, "s.csv", length_policy="truncate", max_length=2000)
    assert cut.length == 40 and cut.seqs[0] == "ACGT" * 10     # nothing over the limit: nothing is cut
    cut = parse_sequence_file(text, "s.csv", length_policy="truncate", max_length=18)
    assert cut.length == 18 and cut.seqs == ["ACGT" * 4 + "AC", "ACG" * 5, "GGCC" * 4 + "GG"]
    assert cut.original_lengths == [40, 15, 20]
    with pytest.raises(SequenceFileError, match=r"Line 2: this sequence has 40 letters, more than the limit of 30"):
        parse_sequence_file(text, "s.csv", length_policy="pad", max_length=30)
    same = "sequence,label\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(random_dna(4, 25)))
    rej = parse_sequence_file(same, "s.csv", length_policy="reject", max_length=2000)
    assert rej.length == 25
    with pytest.raises(SequenceFileError, match=r"the limit is 20"):
        parse_sequence_file(same, "s.csv", length_policy="reject", max_length=20)
    # pasted text and FASTA follow the same rule
    assert parse_sequence_text("ACGTACGT\nACGT\n", max_length=500).length == 8
    assert parse_sequence_file(">a label=1\nACGTAC\n>b label=0\nACG\n", "x.fa", max_length=500).length == 6


def test_an_upload_over_the_page_limit_is_an_error_naming_the_line_not_a_silent_cut():
    long = "A" * (setup.MAX_UPLOAD_LENGTH + 1)
    data = ("sequence,label\nACGTACGTAC,0\n" + long + ",1\nGGGGCCCCAA,1\nTTTTAAAACC,0\n").encode()
    with pytest.raises(SequenceFileError, match=rf"Line 3: this sequence has {len(long)} letters, more than the limit"):
        setup.make_dataset({"dataset": "upload"}, upload=("u.csv", data))
    ds = setup.make_dataset({"dataset": "upload", "length_policy": "truncate"}, upload=("u.csv", data))
    assert ds.length == setup.MAX_UPLOAD_LENGTH


def test_the_protein_loader_pads_to_the_longest_too():
    from playground.data import protein as P

    csv = b"sequence,label\nMKTAYIAKQR,1\nMKVLAAG,0\nMSDNELLKEV,1\nMKKLLPTAAA,0\n"
    parsed = parse_sequence_file(csv, "p.csv", encoding.PROTEIN, max_length=P.MAX_PROTEIN_LENGTH)
    assert parsed.length == 10 and tuple(parsed.tokens().shape) == (4, 10)
    ps = P.load_protein_file(csv, "p.csv")
    assert max(len(s) for s in ps.seqs) == 10


# ---------------------------------------------------------------------------------- split column
SPLIT_CSV = ("sequence,label,split\n"
             "ACGTACGTAA,1,train\nCCGTACGTAA,0,Train\nGCGTACGTAA,1,TRAINING\nTCGTACGTAA,0,train\n"
             "ACGTACGTCC,1,valid\nCCGTACGTCC,0,Validation\nGCGTACGTCC,1,val\nTCGTACGTCC,0,DEV\n"
             "ACGTACGTGG,1,test\nCCGTACGTGG,0, Test \nGCGTACGTGG,1,testing\nTCGTACGTGG,0,test\n")


def test_a_split_column_is_read_with_its_aliases_and_reaches_the_dataset():
    p = parse_sequence_file(SPLIT_CSV, "s.csv")
    assert p.split == ["train"] * 4 + ["valid"] * 4 + ["test"] * 4
    assert p.split_col == "split" and p.label_col == "label"
    assert any("4 train, 4 valid, 4 test" in w for w in p.warnings)
    ds = dna.from_parsed(p, "s.csv")
    assert isinstance(ds.split_labels, np.ndarray) and ds.split_labels.tolist() == p.split
    ds = setup.make_dataset({"dataset": "upload"}, upload=("s.csv", SPLIT_CSV.encode()))
    assert ds.split_labels.tolist() == ["train"] * 4 + ["valid"] * 4 + ["test"] * 4
    # without the column there is no predefined split
    plain = "sequence,label\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(random_dna(6, 12)))
    assert parse_sequence_file(plain, "p.csv").split is None
    assert dna.from_parsed(parse_sequence_file(plain, "p.csv")).split_labels is None
    assert dna.planted_motif(n=40, length=30).split_labels is None


@pytest.mark.parametrize("value, line, shown", [("holdout", 4, "'holdout'"), ("", 3, "empty"), ("2", 5, "'2'")])
def test_a_bad_split_value_names_the_line_and_the_value(value, line, shown):
    rows = ["ACGTACGTAA,1,train", "CCGTACGTAA,0,train", "GCGTACGTAA,1,test", "TCGTACGTAA,0,test"]
    seq, lab, _ = rows[line - 2].split(",")
    rows[line - 2] = f"{seq},{lab},{value}"
    text = "sequence,label,split\n" + "\n".join(rows) + "\n"
    with pytest.raises(SequenceFileError) as e:
        parse_sequence_file(text, "s.csv")
    assert e.value.line == line
    assert str(e.value).startswith(f"Line {line}: the split is {shown}")
    assert "train, valid or test" in str(e.value)          # what to write instead


def test_the_split_column_is_never_taken_for_the_label_and_fasta_can_name_it_too():
    # one unnamed column besides the sequence and the split: that one is the label
    text = "sequence,split,measurement\nACGTACGTAA,train,1\nCCGTACGTAA,train,0\nGCGTACGTAA,test,1\nTCGTACGTAA,test,0\n"
    p = parse_sequence_file(text, "s.csv")
    assert p.label_col == "measurement" and p.labels.tolist() == [1, 0, 1, 0] and p.split_col == "split"
    fa = ">a label=1 split=train\nACGTAC\n>b label=0 split=train\nCCGTAC\n>c label=1 split=test\nGGGTAC\n"
    p = parse_sequence_file(fa, "x.fa")
    assert p.split == ["train", "train", "test"]
    with pytest.raises(SequenceFileError, match=r"Line 3: the split is empty"):
        parse_sequence_file(">a label=1 split=train\nACGTAC\n>b label=0\nCCGTAC\n", "x.fa")
    # a split column with no training rows cannot train anything
    with pytest.raises(SequenceFileError, match=r"No sequence is marked 'train'"):
        parse_sequence_file("sequence,label,split\nACGTAA,1,test\nCCGTAA,0,valid\n", "s.csv")


def test_a_duplicate_in_two_splits_is_dropped_and_reported():
    text = "sequence,label,split\nACGTACGTAA,1,train\nCCGTACGTAA,0,train\nACGTACGTAA,1,test\nGGGTACGTAA,0,test\n"
    p = parse_sequence_file(text, "s.csv")
    assert p.seqs == ["ACGTACGTAA", "CCGTACGTAA", "GGGTACGTAA"] and p.split == ["train", "train", "test"]
    assert any("two different splits" in w and "line 2" in w and "line 4" in w for w in p.warnings)


def test_the_protein_loader_passes_the_split_on():
    from playground.data import protein as P

    csv = (b"sequence,label,split\nMKTAYIAKQR,1,train\nMKVLAAGLLA,0,train\nMSDNELLKEV,1,train\n"
           b"MKKLLPTAAA,0,train\nMKTAYIAKQQ,1,val\nMKVLAAGLLL,0,test\nMSDNELLKEE,1,test\n")
    ps = P.load_protein_file(csv, "p.csv")
    assert ps.split_labels is not None
    assert ps.split_labels.tolist() == ["train"] * 4 + ["valid", "test", "test"]


def test_the_split_of_an_upload_is_kept_by_dataset_split():
    """What a user relies on: the rows marked test are the test set (the lead's split code)."""
    seqs = random_dna(60, 30)
    split = ["train"] * 40 + ["valid"] * 8 + ["test"] * 12
    data = tsv(seqs, [i % 2 for i in range(60)], header="seq\tlabel\tsplit", extra=split)
    ds = setup.make_dataset({"dataset": "upload"}, upload=("s.tsv", data))
    sd = ds.split(seed=3)
    assert sorted(sd.meta["test_idx"].tolist()) == list(range(48, 60))
    assert sorted(sd.meta["val_idx"].tolist()) == list(range(40, 48))
    assert sorted(sd.meta["train_idx"].tolist()) == list(range(40))


# ---------------------------------------------------------------------------------- Genomic Benchmarks
NAME = "human_nontata_promoters"
COUNTS = {("train", "negative"): 60, ("train", "positive"): 40, ("test", "negative"): 30, ("test", "positive"): 20}


def fake_cache(root, name=NAME, counts=COUNTS, length=24, vary=False):
    """<root>/<name>/{train,test}/<class>/<id>.txt, ids unique: '<part>-<class>-<i>'."""
    rng = np.random.default_rng(0)
    for (part, cls), n in counts.items():
        d = root / name / part / cls
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            L = length - (i % 5) if vary else length
            (d / f"{part}-{cls}-{i}.txt").write_text("".join(rng.choice(list("acgtN"), L)) + "\n")
    return root


def where(ds):
    """(part, class) of every sequence, from its file id, and from the dataset's own labels."""
    from_ids = [tuple(i.split("-")[:2]) for i in ds.ids]
    from_ds = [(s, ds.class_names[int(y)]) for s, y in zip(ds.split_labels, ds.y)]
    return from_ids, from_ds


@pytest.mark.parametrize("size", [None, 0, 10_000])
def test_the_full_benchmark_keeps_its_published_split(tmp_path, size):
    fake_cache(tmp_path)
    ds = dna.load_genomic_benchmark(NAME, max_sequences=size, cache_dir=tmp_path)
    assert len(ds) == 150 and ds.length == 24
    assert ds.class_names == ["negative", "positive"] and ds.task == "binary"
    from_ids, from_ds = where(ds)
    assert from_ids == from_ds                  # every sequence keeps the folder it came from
    assert ds.split_labels.tolist().count("train") == 100 and ds.split_labels.tolist().count("test") == 50
    assert ds.settings["full_train"] == 100 and ds.settings["full_test"] == 50
    assert all(set(s) <= set("ACGTN") for s in ds.seqs)


def test_a_subsample_takes_train_and_test_in_proportion_stratified_by_class(tmp_path):
    fake_cache(tmp_path)
    ds = dna.load_genomic_benchmark(NAME, max_sequences=30, seed=1, cache_dir=tmp_path)
    assert len(ds) == 30
    from_ids, from_ds = where(ds)
    assert from_ids == from_ds
    counts = {k: from_ds.count(k) for k in COUNTS}
    assert counts == {("train", "negative"): 12, ("train", "positive"): 8,
                      ("test", "negative"): 6, ("test", "positive"): 4}
    assert ds.settings["n_train"] == 20 and ds.settings["n_test"] == 10
    assert any("subsample of 30 of 150" in w for w in ds.warnings)
    again = dna.load_genomic_benchmark(NAME, max_sequences=30, seed=1, cache_dir=tmp_path)
    assert again.ids == ds.ids and again.seqs == ds.seqs        # seeded
    other = dna.load_genomic_benchmark(NAME, max_sequences=30, seed=2, cache_dir=tmp_path)
    assert other.ids != ds.ids
    # awkward sizes still add up, and a tiny size keeps at least one of every (split, class)
    for n in (7, 4, 149):
        ds = dna.load_genomic_benchmark(NAME, max_sequences=n, cache_dir=tmp_path)
        assert len(ds) == n and set(where(ds)[1]) == set(COUNTS)


def test_the_benchmark_split_reaches_the_trainer_data(tmp_path):
    """The test set the Trainer scores is the benchmark's test folder (the lead's split code)."""
    fake_cache(tmp_path)
    ds = dna.load_genomic_benchmark(NAME, max_sequences=None, cache_dir=tmp_path)
    sd = ds.split(seed=0)
    test_rows = set(np.flatnonzero(ds.split_labels == "test").tolist())
    assert set(sd.meta["test_idx"].tolist()) == test_rows
    assert not set(sd.meta["val_idx"].tolist()) & test_rows      # validation is carved from train


def test_variable_lengths_are_padded_with_n_and_cut_at_max_length(tmp_path):
    fake_cache(tmp_path, length=30, vary=True)
    ds = dna.load_genomic_benchmark(NAME, max_sequences=None, cache_dir=tmp_path)
    assert ds.length == 30 and {len(s) for s in ds.seqs} == {30}
    assert any("padded with N to 30" in w for w in ds.warnings)
    short = dna.load_genomic_benchmark(NAME, max_sequences=None, max_length=20, cache_dir=tmp_path)
    assert short.length == 20


def test_the_setup_reads_the_benchmark_through_the_cache(tmp_path, monkeypatch):
    fake_cache(tmp_path)
    monkeypatch.setenv("GENOMIC_BENCHMARKS_CACHE", str(tmp_path))
    ds = setup.make_dataset({"dataset": "genomic", "gb_name": NAME, "gb_n": 2000})
    assert len(ds) == 150 and ds.split_labels.tolist().count("test") == 50


def test_a_missing_or_broken_cache_says_what_to_do(tmp_path):
    with pytest.raises(dna.GenomicBenchmarkUnavailable, match="not on this machine yet.*Download"):
        dna.load_genomic_benchmark(NAME, cache_dir=tmp_path)
    fake_cache(tmp_path, counts={("train", "negative"): 3, ("test", "negative"): 2})
    with pytest.raises(dna.GenomicBenchmarkUnavailable, match="looks incomplete"):
        dna.load_genomic_benchmark(NAME, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="0 or more"):
        fake_cache(tmp_path)
        dna.load_genomic_benchmark(NAME, max_sequences=-1, cache_dir=tmp_path)


def test_published_baselines_and_sizes(tmp_path):
    b = dna.genomic_benchmark_baseline(NAME)
    assert b["pytorch_cnn"] == pytest.approx(0.846) and b["tensorflow_cnn"] == pytest.approx(0.865)
    assert b["metric"] == "accuracy" and "Grešová" in b["source"]
    assert dna.genomic_benchmark_baseline("no_such_set") is None
    assert set(dna.GB_BASELINES) <= set(dna.GENOMIC_BENCHMARKS) and set(dna.GB_SIZES) <= set(dna.GENOMIC_BENCHMARKS)
    assert dna.GB_SIZES[NAME] == {"train": 27097, "test": 9034}
    assert dna.genomic_benchmark_sizes(NAME, cache_dir=tmp_path) == {"train": 27097, "test": 9034}   # published
    fake_cache(tmp_path)
    assert dna.genomic_benchmark_sizes(NAME, cache_dir=tmp_path) == {"train": 100, "test": 50}   # counted
    assert dna.genomic_benchmark_sizes("human_enhancers_ensembl", cache_dir=tmp_path / "none") is None


def test_the_epoch_estimate_leaves_the_model_alone_and_scales_with_the_data():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(4, 16, 9), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                                torch.nn.AdaptiveMaxPool1d(1), torch.nn.Flatten(), torch.nn.Linear(16, 1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small = dna.estimate_epoch_seconds(model, n_train=640, length=251, batch_size=64)
    big = dna.estimate_epoch_seconds(model, n_train=64_000, length=251, batch_size=64, n_val=6_400)
    assert 0 < small < big and big > 20 * small
    assert dna.estimate_epoch_seconds(model, n_train=0, length=251) == 0.0
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)     # weights and BatchNorm statistics
    assert model.training                                            # and its mode
