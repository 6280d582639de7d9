"""DNA data sets and motifs: deterministic under a seed, motifs where the metadata says."""
from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch

from playground.data import dna
from playground.data.motifs import (KNOWN_MOTIFS, PRIMER_CONSENSUS, consensus_to_pwm, information_content,
                                    jaspar_motif, resolve_motif, reverse_complement_pwm, sample_from_pwm,
                                    search_jaspar)
from playground.data.parsing import parse_sequence_file

COMP = str.maketrans("ACGT", "TGCA")


def revcomp(s: str) -> str:
    return s.translate(COMP)[::-1]


# ---------------------------------------------------------------------------------- motifs
def test_known_motifs_come_from_jaspar():
    ctcf = jaspar_motif("MA0139.1")
    assert ctcf.name == "CTCF" and ctcf.width == 19 and ctcf.source == "JASPAR2024"
    assert np.allclose(ctcf.pwm.sum(0), 1.0)
    assert ctcf.consensus == "TGGCCACCAGGGGGCGCTA"
    tbp = resolve_motif("TBP (TATA box)")
    assert tbp.matrix_id == "MA0108.2" and "TATAAA" in tbp.consensus
    assert resolve_motif("ctcf").matrix_id == "MA0139.1"  # by TF name
    for label in KNOWN_MOTIFS:
        assert resolve_motif(label).width >= 6


def test_search_jaspar_by_name_and_id():
    hits = search_jaspar("GATA")
    assert hits and all("GATA" in n.upper() or "GATA" in i.upper() for i, n in hits)
    assert any(n == "GATA1" for _, n in hits)
    assert search_jaspar("MA0139")[0][1] == "CTCF"
    with pytest.raises(ValueError, match="No JASPAR motif is named 'NOTATF'"):
        resolve_motif("NOTATF")


def test_jaspar_collection_matches_pyjaspar_entries():
    from playground.data.motifs import jaspar_by_id, jaspar_collection

    coll = jaspar_collection()
    assert len(coll) > 800 and len(set(coll.ids)) == len(coll)
    for mid in ("MA0139.2", "MA0035.5", "MA0108.3"):
        i = coll.ids.index(mid)
        ref = jaspar_by_id(mid)       # through pyjaspar's own fetch_motif_by_id
        assert coll.names[i] == ref.name and np.allclose(coll.pwms[i], ref.pwm)


def test_consensus_and_iupac():
    pwm = consensus_to_pwm("ACGTN")
    assert pwm[:, 0].tolist() == [1, 0, 0, 0] and pwm[:, 4].tolist() == [0.25] * 4
    assert consensus_to_pwm("R")[:, 0].tolist() == [0.5, 0, 0.5, 0]
    assert resolve_motif(PRIMER_CONSENSUS).consensus == PRIMER_CONSENSUS
    assert information_content(consensus_to_pwm("ACGT")).tolist() == [2.0] * 4
    with pytest.raises(ValueError, match=r"Position 3: 'X'"):
        consensus_to_pwm("ACXT")
    rc = reverse_complement_pwm(consensus_to_pwm("AACG"))
    assert "".join("ACGT"[i] for i in rc.argmax(0)) == "CGTT"


def test_sampling_follows_the_pwm():
    pwm = jaspar_motif("MA0139.1").pwm
    sites = sample_from_pwm(pwm, 20000, np.random.default_rng(0))
    freq = np.stack([(sites == b).mean(0) for b in range(4)])
    assert np.abs(freq - pwm).max() < 0.02
    assert not (sites[:, pwm.argmax(0) == 0] == 5).any()


# ------------------------------------------------------------------------------- planted motif
def test_planted_motif_is_deterministic_under_a_seed():
    a = dna.planted_motif("CTCF", n=300, length=40, seed=5, both_strands=True)
    b = dna.planted_motif("CTCF", n=300, length=40, seed=5, both_strands=True)
    c = dna.planted_motif("CTCF", n=300, length=40, seed=6, both_strands=True)
    assert a.seqs == b.seqs and np.array_equal(a.y, b.y) and a.sites == b.sites
    assert a.seqs != c.seqs
    assert all(len(s) == 40 and set(s) <= set("ACGT") for s in a.seqs)


@pytest.mark.parametrize("both_strands", [False, True])
def test_consensus_motif_is_where_the_metadata_says(both_strands):
    d = dna.planted_motif(PRIMER_CONSENSUS, n=400, length=50, from_consensus=True, both_strands=both_strands, seed=1)
    assert d.task == "binary" and d.y.sum() == 200
    strands = set()
    for s, y, sites in zip(d.seqs, d.y, d.sites):
        if y == 1:
            (site,) = sites
            piece = s[site.start:site.end]
            assert piece == (PRIMER_CONSENSUS if site.strand == "+" else revcomp(PRIMER_CONSENSUS))
            strands.add(site.strand)
        else:
            assert sites == []
    assert strands == ({"+", "-"} if both_strands else {"+"})
    # the one-hot tensor agrees with the strings
    x = d.one_hot()
    i = int(np.argmax(d.y))
    st = d.sites[i][0]
    assert x[i, :, st.start].argmax().item() == "ACGT".index(d.seqs[i][st.start])


def test_pwm_sampled_sites_follow_the_motif_and_sit_where_stated():
    m = jaspar_motif("MA0139.1")
    d = dna.planted_motif(m, n=3000, length=60, seed=2)
    pieces = [s[st.start:st.end] for s, ss in zip(d.seqs, d.sites) for st in ss]
    assert len(pieces) == 1500
    ids = np.array([["ACGT".index(c) for c in p] for p in pieces])
    freq = np.stack([(ids == b).mean(0) for b in range(4)])
    assert np.abs(freq - m.pwm).max() < 0.06          # the sites are draws from the PWM
    assert len(set(pieces)) > 100                       # ... not copies of the consensus
    # a motif-sized window elsewhere looks like background
    other = [s[:19] for s, ss in zip(d.seqs, d.sites) if ss and ss[0].start >= 19]
    ids_o = np.array([["ACGT".index(c) for c in p] for p in other])
    freq_o = np.stack([(ids_o == b).mean(0) for b in range(4)])
    assert np.abs(freq_o - 0.25).max() < 0.1


def test_gc_content_and_label_noise():
    d = dna.planted_motif(PRIMER_CONSENSUS, n=2000, length=50, gc=0.7, seed=0, label_noise=0.2)
    neg = "".join(s for s, y in zip(d.seqs, d.true_y) if y == 0)
    gc = (neg.count("G") + neg.count("C")) / len(neg)
    assert abs(gc - 0.7) < 0.02
    flipped = (d.y != d.true_y).mean()
    assert 0.15 < flipped < 0.25
    assert all(bool(ss) == bool(t) for ss, t in zip(d.sites, d.true_y))


def test_multiclass_one_motif_per_class():
    d = dna.planted_multiclass(["CTCF", "GATA1", "TBP (TATA box)"], n=300, length=50, from_consensus=True, seed=3)
    assert d.task == "multiclass" and d.class_names == ["CTCF", "GATA1", "TBP"]
    assert np.bincount(d.y).tolist() == [100, 100, 100]
    cons = {m.name: m.consensus for m in d.motifs}
    for s, y, ss in zip(d.seqs, d.y, d.sites):
        (st,) = ss
        assert st.motif == d.class_names[y]
        assert s[st.start:st.end] == cons[st.motif]
    split = d.split(seed=0)                    # 80 % train / 10 % validation / 10 % test, stratified by class
    assert split.task == "multiclass" and split.n_outputs == 3 and split.y_train.dtype.is_floating_point is False
    assert split.sizes() == (240, 30, 30)
    for y in (split.y_train, split.y_val, split.y_test):
        assert np.bincount(y.numpy(), minlength=3).tolist() == [len(y) // 3] * 3     # every class in every part
    rows = np.concatenate([split.meta[k] for k in ("train_idx", "val_idx", "test_idx")])
    assert sorted(rows.tolist()) == list(range(300))                               # disjoint, nothing left out
    assert torch.equal(split.x_val, d.one_hot()[torch.as_tensor(split.meta["val_idx"])])
    with pytest.raises(ValueError, match="2 to 5 motifs"):
        dna.planted_multiclass(["CTCF"], n=10)


def test_motif_grammar_needs_both_motifs_at_the_spacing():
    d = dna.motif_grammar("GATA1", "AP-1 (FOS::JUN)", spacing=4, n=800, length=60, from_consensus=True, seed=4)
    a, b = d.motifs
    kinds = set()
    for s, y, ss in zip(d.seqs, d.y, d.sites):
        for st in ss:
            m = a if st.motif == a.name else b
            assert s[st.start:st.end] == m.consensus
        names = [st.motif for st in ss]
        is_pair = (len(ss) == 2 and names == [a.name, b.name] and ss[1].start - ss[0].end == 4)
        assert bool(y) == is_pair
        kinds.add(tuple(names) if not y else "pair")
    # negatives include A alone, B alone, nothing, and both in the wrong arrangement
    assert {(a.name,), (b.name,), (), "pair"} <= kinds
    assert any(len(k) == 2 for k in kinds if k != "pair")
    assert d.y.mean() == pytest.approx(0.5, abs=0.01)


def test_too_long_motif_is_a_friendly_error():
    with pytest.raises(ValueError, match="make the sequences longer"):
        dna.planted_motif("CTCF", n=10, length=10)


# -------------------------------------------------------------------------------- 8-mer regression
@pytest.mark.parametrize("seq, expected", [
    ("AAAAAAAA", 20.0),                 # mean of A=20
    ("CCCCCCCC", 17.0),
    ("TTTTTTTT", 11.0),
    ("ACGTACGT", 15.5),                 # (20+17+14+11)/4
    ("TATAAAAA", (11 + 20 + 11 + 20 * 5) / 8 + 10),      # contains TAT: +10
    ("GCGCGCGC", (14 + 17) / 2 - 10),                     # contains GCG: -10
    ("TATGCGAA", (11 + 20 + 11 + 14 + 17 + 14 + 20 + 20) / 8),   # both: +10 -10
    ("GGGGGGGG", 14.0),
])
def test_eight_mer_score_matches_its_definition(seq, expected):
    assert dna.eight_mer_score(seq) == pytest.approx(expected)


def test_eight_mer_data_set_is_all_8mers():
    d = dna.eight_mer_regression()
    assert len(d) == 65536 == len(set(d.seqs)) and d.task == "regression"
    rng = np.random.default_rng(0)
    for i in rng.choice(len(d), 200, replace=False):
        assert d.y[i] == pytest.approx(dna.eight_mer_score(d.seqs[i]))
    assert d.one_hot().shape == (65536, 4, 8)


# ------------------------------------------------------------------------------------ uploads
def test_from_parsed_upload():
    text = "sequence,label\nACGTACGT,1\nACG,0\nTTTTACGT,1\nGGGGACGT,0\n"
    d = dna.from_parsed(parse_sequence_file(text, "x.csv"))
    assert d.task == "binary" and d.length == 8 and d.seqs[1] == "ACGNNNNN"
    x = d.one_hot()
    assert x[1, :, 3:].abs().sum() == 0  # N / padding is all zeros
    assert any("padded" in w for w in d.warnings)


# --------------------------------------------------------------------------- Genomic Benchmarks
def _seed_cache(root, name="human_nontata_promoters"):
    """A tiny folder in the package's layout: <name>/{train,test}/<class>/<id>.txt."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        for cls in ("positive", "negative"):
            d = root / name / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                s = "".join(rng.choice(list("acgtACGT"), 30))
                (d / f"{cls}_{split}_{i}.txt").write_text(s + ("n" if i == 0 else "a"))
    return root


def test_genomic_benchmark_from_a_seeded_cache(tmp_path):
    _seed_cache(tmp_path)
    assert dna.genomic_benchmark_available("human_nontata_promoters", tmp_path)
    d = dna.load_genomic_benchmark("human_nontata_promoters", max_sequences=1000, cache_dir=tmp_path)
    assert d.class_names == ["negative", "positive"] and len(d) == 18 and d.task == "binary"
    assert all(len(s) == 31 and set(s) <= set("ACGTN") for s in d.seqs)
    assert sum(s.endswith("N") for s in d.seqs) == 4
    pos = [s for s, y in zip(d.seqs, d.y) if y == 1]
    assert len(pos) == 9
    sub = dna.load_genomic_benchmark("human_nontata_promoters", max_sequences=10, cache_dir=tmp_path, seed=1)
    assert len(sub) == 10
    assert sub.seqs == dna.load_genomic_benchmark("human_nontata_promoters", max_sequences=10, cache_dir=tmp_path,
                                                  seed=1).seqs


def test_genomic_benchmark_offline_message(tmp_path, monkeypatch):
    with pytest.raises(dna.GenomicBenchmarkUnavailable, match="not on this machine yet"):
        dna.load_genomic_benchmark("human_enhancers_cohn", cache_dir=tmp_path)

    import genomic_benchmarks.loc2seq as loc2seq

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(loc2seq, "download_dataset", offline)
    with pytest.raises(dna.GenomicBenchmarkUnavailable) as e:
        dna.load_genomic_benchmark("human_enhancers_cohn", cache_dir=tmp_path, download=True)
    msg = str(e.value)
    assert "offline" in msg and "human_enhancers_cohn" in msg and "planted-motif" in msg
