"""CNN specs, filters -> PWMs, motif matching, saliency / mutagenesis, export, and the real
thing: the primer CNN trained on planted CTCF grows a filter that is CTCF."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from Bio import motifs as bio_motifs

from playground import TrainConfig, Trainer
from playground.data import dna
from playground.data.motifs import PRIMER_CONSENSUS, consensus_to_pwm, jaspar_motif, reverse_complement_pwm
from playground.interpret import (activation_pwms, has_filters, in_silico_mutagenesis, information_matrix,
                                  jaspar_hits, jaspar_table, match_pwm, motif_recovery, rank_filters, saliency,
                                  to_jaspar, to_meme, trim_pwm, weight_logo_matrix)
from playground.models import build_model, count_parameters, spec_from_dict
from playground.models.cnn import CNNSpec, LogisticRegressionSpec, course_cnn, preset, primer_cnn


# ------------------------------------------------------------------------------------ specs
def test_presets_have_the_course_shapes_and_parameter_counts():
    primer = build_model(primer_cnn(50), seed=0)
    # conv 32x4x12 + 32 = 1568; 50-12+1 = 39 -> max-pool 4 -> 9; 32*9 = 288 -> dense 16: 4624; output 17
    assert count_parameters(primer) == 1568 + 288 * 16 + 16 + 17
    assert primer(torch.zeros(5, 4, 50)).shape == (5, 1)
    course = build_model(course_cnn(50), seed=0)
    # conv 32x4x3 + 32 = 416; 48 positions x 32 = 1536 -> linear 1
    assert count_parameters(course) == 416 + 1536 + 1
    assert preset("primer", 80, 3).n_outputs == 3


def test_spec_round_trip_validation_and_seeded_init():
    spec = CNNSpec(length=60, channels=(16, 8), kernel_sizes=(9, 5), padding="same", batch_norm=True,
                   activation="gelu", pool="adaptive", pool_output=2, dropout=0.1, dense=(8,), n_outputs=4)
    assert spec_from_dict(spec.to_dict()) == spec
    assert spec.feature_lengths() == [60, 60, 2]
    assert build_model(spec, 1)(torch.zeros(2, 4, 60)).shape == (2, 4)
    a, b = build_model(spec, 3), build_model(spec, 3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ValueError, match="shrinks to nothing"):
        CNNSpec(length=20, channels=(8, 8, 8), kernel_sizes=(9, 9, 9), pool="max", pool_size=2)
    with pytest.raises(ValueError, match="kernel sizes"):
        CNNSpec(kernel_sizes=(30,))
    lr = LogisticRegressionSpec(length=10)
    assert spec_from_dict(lr.to_dict()) == lr
    assert count_parameters(build_model(lr)) == 41
    assert not has_filters(build_model(lr)) and has_filters(build_model(spec))


# --------------------------------------------------------------------------------- PWMs from filters
def _hand_made_filter_model(consensus: str, length: int = 30):
    """A CNN whose first filter is +1 on the consensus bases and -1 elsewhere."""
    spec = CNNSpec(length=length, channels=(2,), kernel_sizes=(len(consensus),), pool="none", dense=())
    model = build_model(spec, 0)
    with torch.no_grad():
        w = torch.full((4, len(consensus)), -1.0)
        for j, ch in enumerate(consensus):
            w["ACGT".index(ch), j] = 1.0
        model.first_conv.weight[0] = w
        model.first_conv.weight[1] = 0.0
        model.first_conv.bias.zero_()
    return model


def test_basset_rule_recovers_a_planted_consensus():
    d = dna.planted_motif("ACGTTGCA", n=200, length=30, from_consensus=True, seed=0)
    model = _hand_made_filter_model("ACGTTGCA")
    p = activation_pwms(model, d.one_hot())
    # activation 8 at each planted site; background windows rarely reach 4 (> 0.5 x 8)
    assert p.max_activation[0] == pytest.approx(8.0)
    assert p.n_sites[0] >= 100
    assert "".join("ACGT"[i] for i in p.pwms[0].argmax(0)) == "ACGTTGCA"
    assert p.n_sites[1] == 0 and np.allclose(p.pwms[1], 0.25)   # a dead filter: no windows, flat PWM
    rec = motif_recovery(p, d.motifs)
    assert rec[0]["filter"] == 0 and rec[0]["score"] > 0.95
    # the threshold is what the rule says: raising it to 1.0 keeps only perfect matches
    strict = activation_pwms(model, d.one_hot(), threshold=0.99)
    assert strict.n_sites[0] == 100 and strict.counts[0].max() == 100


def test_information_and_weight_logo_matrices():
    pwm = consensus_to_pwm("ACGN")
    m = information_matrix(pwm)
    assert m[:, 0].tolist() == [2, 0, 0, 0] and np.allclose(m[:, 3], 0)
    w = weight_logo_matrix(np.array([[1.0], [0.0], [0.0], [-1.0]]))
    assert np.allclose(w.sum(0), 0)


# ----------------------------------------------------------------------------------- matching
def test_match_pwm_offsets_strands_and_trimming():
    ctcf = jaspar_motif("MA0139.1").pwm
    inner = ctcf[:, 4:16]
    (m,) = match_pwm(inner, [ctcf], trim=False)
    assert m.score == pytest.approx(1.0) and m.offset == 4 and m.strand == "+" and m.overlap == 12
    (m,) = match_pwm(reverse_complement_pwm(inner), [ctcf], trim=False)
    assert m.score == pytest.approx(1.0) and m.strand == "-"
    # flat columns around a motif are trimmed away before matching
    padded = np.concatenate([np.full((4, 3), 0.25), consensus_to_pwm(PRIMER_CONSENSUS)[:, :9]], axis=1)
    trimmed, first = trim_pwm(padded)
    assert first == 3 and trimmed.shape[1] == 9
    (m,) = match_pwm(padded, [consensus_to_pwm(PRIMER_CONSENSUS)])
    assert m.score == pytest.approx(1.0) and m.overlap == 9
    # a single informative column cannot produce a perfect match by luck
    one = np.full((4, 12), 0.25)
    one[:, 5] = [1, 0, 0, 0]
    (m,) = match_pwm(one, [ctcf])
    assert m.overlap >= 6 and m.score < 0.5


def test_jaspar_hits_name_the_motif_and_are_fast():
    ctcf = jaspar_motif("MA0139.1").pwm
    jaspar_hits(ctcf[:, 2:14], 1)  # loads the collection once per process
    t = time.perf_counter()
    hits = jaspar_hits(ctcf[:, 2:14], 5)
    assert time.perf_counter() - t < 1.0
    assert hits[0].name == "CTCF"
    gata = jaspar_hits(jaspar_motif("MA0035.4").pwm, 5)
    assert any("GATA" in h.name.upper() for h in gata[:3])


# --------------------------------------------------------------------------- saliency and ISM
def test_saliency_and_ism_of_a_linear_model_are_exact():
    spec = LogisticRegressionSpec(length=6)
    model = build_model(spec, 0)
    d = dna.planted_motif("ACG", n=4, length=6, from_consensus=True, seed=0)
    x = d.one_hot()[0]
    W = model.linear.weight.detach().reshape(4, 6).numpy()
    sal = saliency(model, x)
    assert np.allclose(sal, W * x.numpy(), atol=1e-6)
    ism = in_silico_mutagenesis(model, x)
    ref = W[x.numpy().argmax(0), np.arange(6)]
    assert np.allclose(ism, W - ref[None, :], atol=1e-5)
    assert np.allclose(ism[x.numpy() > 0], 0)


def test_multiclass_saliency_needs_a_class():
    model = build_model(primer_cnn(50, n_outputs=3), 0)
    x = torch.zeros(4, 50)
    x[0] = 1
    assert saliency(model, x, target=2).shape == (4, 50)
    with pytest.raises(ValueError, match="which class"):
        saliency(model, x)


# ---------------------------------------------------------------------------------- export
def test_meme_and_jaspar_export_read_back_with_biopython():
    d = dna.planted_motif("ACGTTGCA", n=200, length=30, from_consensus=True, seed=0)
    p = activation_pwms(_hand_made_filter_model("ACGTTGCA"), d.one_hot())
    meme = to_meme(p)
    parsed = bio_motifs.parse(io.StringIO(meme), "minimal")
    assert len(parsed) == 1 and parsed[0].name == "filter1"   # the dead filter (no sites) is left out
    assert str(parsed[0].consensus) == "ACGTTGCA"
    assert len(bio_motifs.parse(io.StringIO(to_meme(p, min_sites=0)), "minimal")) == 2
    jas = to_jaspar(p, min_sites=1)
    back = list(bio_motifs.parse(io.StringIO(jas), "jaspar"))
    assert len(back) == 1 and str(back[0].consensus) == "ACGTTGCA"   # the dead filter has no sites
    assert np.allclose([back[0].counts[b][0] for b in "ACGT"], p.counts[0][:, 0])


# ----------------------------------------------------------------------- the real experiment
@pytest.mark.slow
def test_primer_cnn_on_planted_ctcf_learns_a_ctcf_filter():
    t0 = time.perf_counter()
    data_set = dna.planted_motif("MA0139.1", n=2000, length=50, seed=0)
    split = data_set.split(seed=0)                      # 80 % train / 10 % validation / 10 % test
    model = build_model(primer_cnn(50), seed=0)
    # the filter logos read the training set (what the filters learned from), as the DNA page does
    before = motif_recovery(activation_pwms(model, split.x_train), data_set.motifs)[0]["score"]
    trainer = Trainer(model, split, TrainConfig(optimizer="adam", lr=0.003, batch_size=32, seed=0, track_metrics=True))
    trainer.run_epochs(10)
    assert trainer.history[-1]["val_accuracy"] > 0.9
    assert trainer.score_test()["accuracy"] > 0.9       # and on the held-out test set, scored once
    pwms = activation_pwms(model, split.x_train)
    rec = motif_recovery(pwms, data_set.motifs)[0]
    assert rec["score"] >= 0.8          # the bar; in practice about 0.99
    assert rec["score"] > before + 0.1  # and it is learning, not the luck of the initial weights
    best = rec["filter"]
    assert rank_filters(pwms, data_set.motifs)[0] == best
    hits = jaspar_hits(pwms.pwms[best], 3)
    assert hits[0].name == "CTCF" and hits[0].score >= 0.8
    rows = jaspar_table(pwms, top=1, filters=[best])
    assert rows[0]["hit 1"].startswith("CTCF")
    assert time.perf_counter() - t0 < 30
