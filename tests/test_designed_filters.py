"""Designed first-layer filters (playground.designed): JASPAR log-odds, consensus and grid filters
at the layer's width, freezing that holds exactly under Adam and AdamW, and the issue's check: a
designed CTCF log-odds filter alone, frozen, with only the head trained, beats chance clearly."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

from playground import designed as DF
from playground.data import dna
from playground.data.motifs import jaspar_motif
from playground.models import build_model
from playground.models.cnn import CNNSpec, LogisticRegressionSpec
from playground.train import TrainConfig, Trainer

SPEC = CNNSpec(length=50, channels=(8,), kernel_sizes=(12,), pool="max", pool_size=4, dense=(16,))


@pytest.fixture(scope="module")
def split():
    return dna.planted_motif("CTCF", n=600, length=50, seed=0).split(0.8, 0, 0.1)


def test_a_jaspar_motif_becomes_log_odds_cropped_or_padded_to_the_kernel_size():
    ctcf = jaspar_motif("MA0139.1")
    f = DF.from_motif("CTCF", 12)
    assert f.weights.shape == (4, 12) and f.source == "jaspar" and "CTCF" in f.label
    assert "19 columns wide" in f.note and "columns (4-15)" in f.note      # the most informative window
    assert np.allclose(f.weights, DF.log_odds(ctcf.pwm)[:, 3:15])
    assert np.allclose(DF.log_odds(np.array([[1.0], [0], [0], [0]]))[:, 0],
                       np.log2(np.array([1.05, 0.05, 0.05, 0.05]) / 1.2 / 0.25))
    wide = DF.from_motif(ctcf, 25)
    assert "padded with 3 zero column(s) on the left and 3 on the right" in wide.note
    assert np.allclose(wide.weights[:, :3], 0) and np.allclose(wide.weights[:, 3:22], DF.log_odds(ctcf.pwm))
    assert DF.from_motif(ctcf, 19).note == ""


def test_a_consensus_counts_matches_and_a_grid_is_typed_numbers():
    f = DF.from_consensus("acgn", 4)
    assert f.weights.tolist() == [[1, 0, 0, .25], [0, 1, 0, .25], [0, 0, 1, .25], [0, 0, 0, .25]]
    assert f.max_score() == 3.25 and DF.from_consensus("R", 1).weights[:, 0].tolist() == [.5, 0, .5, 0]
    from playground.convolution import consensus_filter, motif_filter     # the convolution by hand agrees
    assert np.allclose(DF.from_consensus("ACRTN", 5).weights, consensus_filter("ACRTN"))
    assert np.allclose(DF.from_motif("CTCF", 19).weights, motif_filter("CTCF")[0])
    crop = DF.from_consensus("NNACGTNN", 4)
    assert crop.weights.argmax(0).tolist() == [0, 1, 2, 3] and "columns (3-6)" in crop.note
    with pytest.raises(DF.DesignError, match=r"position 3: 'X' is not a DNA or IUPAC letter"):
        DF.from_consensus("ACXT", 4)
    g = DF.parse_grid("1,0,0;0,1,0\n0,0,1; 0 0 0")
    assert g.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert DF.parse_grid("T: 4 4; G: 3 3; C: 2 2; A: 1 1")[:, 0].tolist() == [1, 2, 3, 4]
    with pytest.raises(DF.DesignError, match="3 row"):
        DF.parse_grid("1;2;3")
    with pytest.raises(DF.DesignError, match=r"row 2 \(C\), position 2: 'x' is not a number"):
        DF.parse_grid("1,0;0,x;0,0;1,1")
    with pytest.raises(DF.DesignError, match=r"different lengths \(2, 2, 3, 2\)"):
        DF.parse_grid("1,0;0,1;0,0,1;1,1")
    assert DF.from_grid("1,0,0;0,1,0;0,0,1;0,0,0", 5).weights.shape == (4, 5)
    assert DF.design("grid", np.eye(4), 4).weights.tolist() == np.eye(4).tolist()


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_a_frozen_filter_stays_exactly_fixed_while_the_others_train(split, optimizer):
    model = build_model(SPEC, 0)
    f = DF.from_motif("CTCF", 12, bias=-2.0)
    DF.set_filter(model, 3, f, freeze=True)
    conv = model.first_conv
    w0, b0 = conv.weight.detach().clone(), conv.bias.detach().clone()
    cfg = TrainConfig(optimizer=optimizer, lr=0.03, batch_size=32, seed=0, weight_decay=0.5, regularization="l2",
                      reg_rate=0.01, grad_clip=1.0)
    tr = Trainer(model, split, cfg)
    tr.run_epochs(2)
    assert torch.equal(conv.weight[3], w0[3]) and float(conv.bias[3].detach()) == -2.0 == float(b0[3])
    assert not torch.equal(conv.weight[0], w0[0]) and not torch.equal(conv.bias[0], b0[0])   # the rest learned
    model(split.x_train[:16]).sum().backward()                       # its gradient rows are zero
    assert not conv.weight.grad[3].any() and not conv.bias.grad[3].any() and conv.weight.grad[0].any()
    model.zero_grad(set_to_none=True)
    assert DF.frozen_filters(model) == [3] and DF.trainable_parameters(model) == sum(
        p.numel() for p in model.parameters()) - (4 * 12 + 1)
    # it travels: a pickled copy (a training worker process) and a deep copy keep the freeze
    for other in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        with torch.no_grad():
            other.first_conv.weight.add_(1.0)
        t2 = Trainer(other, split, cfg)
        t2.run_epochs(1)
        assert torch.equal(other.first_conv.weight[3], w0[3])
    # loading other weights (early stopping restoring an epoch) puts it back too
    state = {k: v + 1 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert torch.equal(conv.weight[3], w0[3])
    DF.unfreeze_filters(model)
    Trainer(model, split, cfg).run_epochs(1)
    assert not torch.equal(conv.weight[3], w0[3])


def test_a_designed_ctcf_filter_alone_frozen_with_only_the_head_trained_beats_chance(split):
    """The issue's check; then the three arms of the comparison, on the same split."""
    f = DF.from_motif("CTCF", 12)
    cfg = TrainConfig(optimizer="adam", lr=0.003, batch_size=32, seed=0)
    rows = DF.compare(SPEC, split, cfg, [f], max_epochs=10, patience=3, keep_trainers=True)
    designed, learned, both = rows
    assert [r["mode"] for r in rows] == ["designed", "learned", "both"]
    chance = DF.majority_level(split.y_train.numpy(), split.y_val.numpy(), "binary")
    assert 0.4 <= chance <= 0.6
    assert designed["val"] >= chance + 0.3, (designed["val"], chance)      # measured: 1.0 vs 0.5
    conv = designed["trainer"].model.first_conv
    assert conv.weight.shape == (1, 4, 12)
    assert np.allclose(conv.weight[0].detach().numpy(), f.weights, atol=1e-6) and float(conv.bias[0].detach()) == 0
    assert designed["trainable"] == 9 * 16 + 16 + 17                        # only the head: dense 16 + output
    assert (designed["designed"], designed["learned"], learned["learned"], both["designed"], both["learned"]) == \
        (1, 0, 8, 1, 7)
    assert np.allclose(both["trainer"].model.first_conv.weight[0].detach().numpy(), f.weights, atol=1e-6)
    assert all(r["epochs"] <= 10 and np.isfinite(r["val"]) for r in rows)


def test_putting_a_filter_into_a_running_model_and_friendly_errors(split):
    tr = Trainer(build_model(SPEC, 0), split, TrainConfig(optimizer="adam", lr=0.003, batch_size=32, seed=0,
                                                          early_stopping=3))
    tr.run_epochs(1)
    f = DF.from_motif("CTCF", 12)
    out = DF.put_into_trainer(tr, 5, f, freeze=True)
    assert out["filter"] == 5 and out["frozen"] and out["metric"] == "accuracy" and 0 <= out["after"] <= 1
    assert float(tr.optimizer.state[tr.model.first_conv.weight]["exp_avg"][5].abs().sum()) == 0.0
    tr.run_epochs(2)
    assert np.allclose(tr.model.first_conv.weight[5].detach().numpy(), f.weights, atol=1e-6)
    with pytest.raises(DF.DesignError, match="Filter 9 does not exist: the first layer has 8"):
        DF.set_filter(tr.model, 8, f)
    with pytest.raises(DF.DesignError, match="the layer's filters are 4 × 12"):
        DF.set_filter(tr.model, 0, DF.from_consensus("ACGT", 4))
    with pytest.raises(DF.DesignError, match="no convolution layer"):
        DF.set_filter(build_model(LogisticRegressionSpec(length=50)), 0, f)
    with pytest.raises(DF.DesignError, match="no room for a learned one"):
        DF.model_for(CNNSpec(length=50, channels=(1,), kernel_sizes=(12,)), "both", [f])
