"""Protein data: the generated tasks follow their stated rules, uploads are validated with line and
character messages, and the 'no near-duplicates' split keeps homologs on one side."""
import numpy as np
import pytest
import torch

from playground.compare import make_spec
from playground.data import protein as P
from playground.data.parsing import SequenceFileError
from playground.encoding import DNA, PROTEIN
from playground.models import build_model
from playground.train import TrainConfig, Trainer


# --------------------------------------------------------------------------------------------
# generated tasks
def test_solubility_rule_on_hand_made_proteins():
    charged = "DEKRGSTNQG" * 4                      # 40% charged, no hydrophobic run
    assert P.solubility_label(charged) == 1
    assert P.solubility_label(charged[:20] + "AILMFV" + charged[20:]) == 0     # a run of 6 hydrophobics
    assert P.solubility_label(charged[:20] + "AILMF" + charged[20:]) == 1      # a run of 5 is fine
    assert P.solubility_label("GSTNQ" * 8) == 0                                  # too few charges
    assert P.longest_run("GAILGVVVVWG") == 5
    assert P.solubility_score(charged) == pytest.approx(10 * (0.4 - 0.25))
    assert P.solubility_score("DEKR" + "AILMFVWA" + "DEKR") == pytest.approx(10 * (8 / 16 - 0.25) - 3)


def test_generated_sets_are_reproducible_balanced_and_labelled_by_the_rule():
    a = P.solubility_set(300, 30, 60, seed=7)
    b = P.solubility_set(300, 30, 60, seed=7)
    c = P.solubility_set(300, 30, 60, seed=8)
    assert a.seqs == b.seqs and np.array_equal(a.y, b.y) and a.seqs != c.seqs
    assert all(30 <= len(s) <= 60 and set(s) <= set(PROTEIN.letters) for s in a.seqs)
    assert 0.3 <= a.y.mean() <= 0.7
    assert all(a.y[i] == P.solubility_label(s) for i, s in enumerate(a.seqs))
    assert "D E K R" in a.description and "A I L M F V W" in a.description
    reg = P.solubility_set(100, 30, 60, seed=7, task="regression")
    assert reg.task == "regression" and np.allclose(reg.y, [P.solubility_score(s) for s in reg.seqs], atol=1e-5)


def test_secondary_structure_rule_is_local_and_stated():
    seq = "GGG" + "AELMQKR" + "GGGGG" + "VIYFW" + "GGG"
    lab = P.secondary_structure_labels(seq)
    assert len(lab) == len(seq)
    assert lab[6] == "H" and lab[0] == "C" and lab[-1] == "C"
    assert lab[seq.index("Y")] == "E"
    # the rule only looks 3 residues either side: changing a far residue changes nothing nearby
    far = seq[:-1] + "A"
    assert P.secondary_structure_labels(far)[:len(seq) - 4] == lab[:len(seq) - 4]
    ss = P.secondary_structure_set(200, 30, 60, seed=1)
    assert ss.task == "per_residue" and ss.class_names == ["H", "E", "C"]
    counts = {c: sum(l.count(c) for l in ss.y) for c in "HEC"}
    assert min(counts.values()) / sum(counts.values()) > 0.15
    assert all(P.secondary_structure_labels(s) == l for s, l in zip(ss.seqs, ss.y))


def test_a_cnn_that_sees_seven_residues_learns_the_labelling_rule():
    data = P.to_split(P.secondary_structure_set(300, 30, 60, seed=2), "random", 0.8, 2)
    spec = make_spec("cnn", "protein", data, {"channels": (32,), "kernel": 7, "embed_dim": 16})
    tr = Trainer(build_model(spec, 0), data, TrainConfig(lr=0.01, batch_size=32, seed=0, track_metrics=True))
    tr.run_epochs(12)
    assert tr.history[-1]["val_q3"] > 0.85
    assert tr.score_test()["q3"] > 0.85            # the held-out proteins agree


def test_to_split_pads_tokens_and_per_residue_labels():
    ss = P.secondary_structure_set(20, 10, 30, seed=0)
    data = P.to_split(ss, "random", 0.75, 0)
    assert data.task == "per_residue" and data.n_classes == 3
    assert min(data.sizes()) >= 1 and sum(data.sizes()) == 20
    x = torch.cat([data.x_train, data.x_val, data.x_test])
    y = torch.cat([data.y_train, data.y_val, data.y_test])
    assert torch.equal(x == 0, y == -100)          # padding is ignored, real residues are labelled
    masks = ["1" * 5 + "0" * 5]
    t = P.per_residue_targets(["HHEECCHHEE"], ["H", "E", "C"], 12, masks)
    assert t.tolist() == [[0, 0, 1, 1, 2, -100, -100, -100, -100, -100, -100, -100]]


# --------------------------------------------------------------------------------------------
# near-duplicates
def test_cluster_split_keeps_near_duplicates_on_one_side_random_split_leaks():
    ps = P.solubility_set(300, 40, 80, family_size=3, mutation_rate=0.1, seed=3)
    rnd = P.to_split(ps, "random", 0.7, 0, val_fraction=0.1)     # 70 % train / 10 % validation / 20 % test
    clu = P.to_split(ps, "cluster", 0.7, 0, val_fraction=0.1)
    assert rnd.meta["leakage"] > 0.5                      # most test proteins have a homolog in training
    assert rnd.meta["val_leakage"] > 0.5                  # and so do the validation proteins
    assert clu.meta["leakage"] == 0.0 and clu.meta["val_leakage"] == 0.0
    tr, va, te = clu.meta["train_idx"], clu.meta["val_idx"], clu.meta["test_idx"]
    assert not (set(tr) & set(te) or set(tr) & set(va) or set(va) & set(te))
    assert len(tr) + len(va) + len(te) == 300
    assert abs(len(te) / 300 - 0.2) < 0.05 and abs(len(va) / 300 - 0.1) < 0.05
    # generated families stay together (a member mutated below the identity threshold may not)
    split_families = set(ps.families[tr]) & set(ps.families[np.r_[va, te]])
    rnd_split = set(ps.families[rnd.meta["train_idx"]]) & set(ps.families[rnd.meta["test_idx"]])
    assert len(split_families) <= 3 < 30 <= len(rnd_split)
    for held in (te, va):
        sim = P.shared_kmer_fraction([ps.seqs[i] for i in held], [ps.seqs[i] for i in tr])
        assert sim.max() < 0.5


def test_shared_kmer_fraction_and_clusters():
    a = "MKTAYIAKQRQISFVKSHFSRQ"
    b = a[:10] + "W" + a[11:]                          # one substitution
    c = "GGGGPPPPSSSSNNNNDDDDHH"
    sim = P.shared_kmer_fraction([a, b, c])
    assert sim[0, 0] == 1.0 and sim[0, 1] > 0.8 and sim[0, 2] == 0.0
    assert list(P.kmer_clusters([a, b, c])) in ([0, 0, 1], [1, 1, 0])
    with pytest.raises(ValueError, match="one cluster"):
        P.cluster_split_indices([a, b], 0.5, 0)


def test_dna_sets_use_longer_kmers_and_keep_their_motif_sites():
    ps = P.builtin_set("dna_grammar", 200, 60, 0)
    assert ps.alphabet is DNA and P.default_k(ps.alphabet) == 8
    data = P.to_split(ps, "cluster", 0.8, 0)
    assert data.x_train.max() <= 5 and data.meta["sites"] is ps.sites
    assert data.meta["leakage"] == 0.0


# --------------------------------------------------------------------------------------------
# uploads
def test_upload_sequence_labels_csv_and_fasta():
    csv = b"sequence,label\nMKTAYIAKQR,1\nMKVLAAGIVG,0\nMSDNELLKEV,1\nMQQRRSTTAA,0\n"
    ps = P.load_protein_file(csv, "prot.csv")
    assert ps.task == "binary" and ps.seqs[0] == "MKTAYIAKQR" and list(ps.y) == [1, 0, 1, 0]
    fasta = b">p1 score=0.5\nMKTAYIAKQR\n>p2 score=1.7\nMKVLAA\nGIVG\n>p3 score=-0.2\nMSDNEL\n"
    ps = P.load_protein_file(fasta, "prot.fasta")
    assert ps.task == "regression" and ps.seqs[1] == "MKVLAAGIVG"
    data = P.to_split(ps, "random", 0.67, 0)
    assert data.x_train.shape[1] == 10


def test_upload_rare_letters_are_refused_with_the_place_or_mapped_to_x():
    csv = b"sequence,label\nMKTAYIAKQR,1\nMKVLBAGIVG,0\nMSDNELLKEV,1\n"
    with pytest.raises(SequenceFileError) as e:
        P.load_protein_file(csv, "prot.csv")
    assert "Line 3, position 5" in str(e.value) and "'B'" in str(e.value) and "B→X" in str(e.value)
    ps = P.load_protein_file(csv, "prot.csv", map_rare=True)
    assert ps.seqs[1] == "MKVLXAGIVG" and any("'B' to 'X'" in w for w in ps.warnings)
    with pytest.raises(SequenceFileError, match=r"Line 2, position 3.*'1' is not a protein letter"):
        P.load_protein_file(b"sequence,label\nMK1TAY,1\nMKV,0\n", "p.csv")


def test_upload_length_limit_and_truncation():
    long = "M" + "KTAYIAKQR" * 30
    csv = f"sequence,label\n{long},1\nMKVLAAGIVG,0\nMSDNELLKEV,1\n".encode()
    with pytest.raises(SequenceFileError, match=r"Line 2: .*271 letters, more than the limit of 100"):
        P.load_protein_file(csv, "p.csv", max_length=100)
    ps = P.load_protein_file(csv, "p.csv", max_length=100, truncate=True)
    assert len(ps.seqs[0]) == 100 and ps.seqs[1] == "MKVLAAGIVG"


def test_upload_per_residue_labels_with_mask():
    csv = (b"id,sequence,ss,mask\n"
           b"a,MKTAYIAKQR,HHHHCCCEEE,1111111100\n"
           b"b,MKVLAAG,CCHHH-C,1111111\n"
           b"c,MSDNELLKEVAA,CCCCHHHHHHEE,111111111111\n")
    ps = P.load_protein_file(csv, "ss.csv", per_residue=True)
    assert ps.task == "per_residue" and ps.class_names == ["H", "E", "C"]
    assert ps.mask[0] == "1111111100" and ps.y[1] == "CCHHH-C"
    data = P.to_split(ps, "random", 0.67, 0)
    y = torch.cat([data.y_train, data.y_val, data.y_test]).numpy()
    order = np.concatenate([data.meta["train_idx"], data.meta["val_idx"], data.meta["test_idx"]])
    row_a = y[list(order).index(0)]
    assert row_a[:8].tolist() == [0, 0, 0, 0, 2, 2, 2, 1] and (row_a[8:] == -100).all()
    row_b = y[list(order).index(1)]
    assert row_b[5] == -100 and row_b[6] == 2 and (row_b[7:] == -100).all()


@pytest.mark.parametrize("csv, msg", [
    (b"sequence,ss\nMKTAYI,HHHCC\nMKV,CCC\n", r"Line 2: the sequence has 6 letters but its per-residue labels have 5"),
    (b"sequence,ss\nMKTAYI,HH?CCC\nMKV,CCC\n", r"Line 2, position 3 of the per-residue labels: '\?'"),
    (b"sequence,ss,mask\nMKTAYI,HHHCCC,11x111\nMKV,CCC,111\n", r"Line 2, position 3 of the mask 'mask': 'x'"),
    (b"sequence,structure_guess\nMKTAYI,HHHCCC\n", r"which column holds the per-residue labels"),
    (b"sequence,ss\nMKTAYI,CCCCCC\nMKV,CCC\n", r"nothing to learn"),
])
def test_upload_per_residue_errors_name_the_line_and_character(csv, msg):
    with pytest.raises(SequenceFileError, match=msg):
        P.load_protein_file(csv, "ss.csv", per_residue=True)


def test_upload_dna_through_the_same_reader():
    csv = b"sequence,label\nACGTACGTAA,1\nACGTTTGTAA,0\nACGUACGGGA,1\n"
    with pytest.raises(SequenceFileError, match="Line 4, position 4"):
        P.load_protein_file(csv, "d.csv", alphabet=DNA)
    ps = P.load_protein_file(csv, "d.csv", alphabet=DNA, map_rare=True)
    assert ps.alphabet is DNA and ps.seqs[2] == "ACGTACGGGA"
