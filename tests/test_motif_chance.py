"""Chance levels for motif scores (playground.motif_chance): the vectorised matcher is
interpret.match_pwm, the null's filters follow the Basset rule, and the DNA page's planted CTCF
(seed 0) reads "at chance" before training and "recovered" after it."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from playground import motif_chance as MC
from playground.data import dna
from playground.data.motifs import consensus_to_pwm, jaspar_motif
from playground.interpret import activation_pwms, match_pwm, motif_recovery, trim_pwm
from playground.models import build_model
from playground.models.cnn import CNNSpec


def _random_pwms(rng, n, width, flat=0.3):
    cols = rng.dirichlet(np.full(4, 0.6), size=(n, width))          # (n, width, 4)
    cols[rng.random((n, width)) < flat] = 0.25        # uninformative columns, so trimming has work to do
    return cols.transpose(0, 2, 1).copy()


def test_vectorised_matching_is_match_pwm():
    rng = np.random.default_rng(0)
    targets = [jaspar_motif("MA0139.1").pwm, consensus_to_pwm("GATA"), jaspar_motif("MA0035.4").pwm]
    for width in (4, 8, 12):
        q = _random_pwms(rng, 60, width)
        q[0] = 0.25                                    # nothing informative: score 0
        got = MC.best_match_scores(q, targets)
        want = np.array([[m.score for m in match_pwm(p, targets)] for p in q])
        assert np.allclose(got, want, atol=1e-12), width
        lo, hi = MC.trim_bounds(q)
        for p, a, b in zip(q, lo, hi):
            t, first = trim_pwm(p)
            assert (b - a, a if b > a else 0) == (t.shape[1], first)


def test_the_nulls_filters_are_pytorch_initialised_and_read_by_the_basset_rule():
    x = dna.planted_motif("CTCF", n=120, length=40, seed=1).one_hot()
    pwms, sites = MC.random_filter_pwms(6, 7, x, seed=3)
    W, b = MC.random_filters(6, 7, seed=3)
    bound = 1 / np.sqrt(4 * 7)
    assert float(W.abs().max()) <= bound and float(b.abs().max()) <= bound   # Conv1d's default init range
    model = build_model(CNNSpec(length=40, channels=(6,), kernel_sizes=(7,), pool="none", dense=()), 0)
    with torch.no_grad():
        model.first_conv.weight.copy_(W)
        model.first_conv.bias.copy_(b)
    ref = activation_pwms(model, x)
    assert np.array_equal(sites, ref.n_sites) and np.allclose(pwms, ref.pwms, atol=1e-6)


def test_planted_ctcf_untrained_is_at_chance_and_trained_is_recovered():
    """The issue's check: the DNA page's run (primer CNN, 32 filters × 12, planted CTCF, seed 0)."""
    from playground.setups import dna as D

    run = D.build({})
    tr = run.make_trainer()
    motifs = run.data.motifs
    x = tr.data.x_train[:4000]
    before = MC.recovery_chance(tr.model, x, motif_recovery(activation_pwms(tr.model, x), motifs), motifs)[0]
    assert 0.7 < before.score < 0.85                  # the misleading 0.76 of the issue ...
    assert before.verdict == "at chance" and before.p_value > 0.1 and before.score < before.band
    tr.run_epochs(2)
    after = MC.recovery_chance(tr.model, x, motif_recovery(activation_pwms(tr.model, x), motifs), motifs)[0]
    assert after.verdict == "recovered" and after.above_chance
    assert after.p_value == pytest.approx(1 / (1 + MC.N_DRAWS))       # better than every untrained network
    assert after.score > after.band + 0.05 and after.band < 0.95
    m = MC.chance_metrics(motifs)                                    # the lessons' corrected score
    assert m["motif_above_chance"](tr) == 1.0 and m["motif_p"](tr) < MC.ALPHA


def test_the_null_is_seeded_cached_and_costs_well_under_a_second():
    x = dna.planted_motif("CTCF", n=2000, length=50, seed=0).one_hot()[:1600]
    shape = {"n_filters": 32, "width": 12, "padding": 0, "activation": "relu"}
    MC.clear_cache()
    t0 = time.process_time()
    null = MC.filter_null(shape, x, n_draws=200)
    scores = MC.recovery_null(null, jaspar_motif("MA0139.1").pwm)
    cpu = time.process_time() - t0
    print(f"null of 200 draws × 32 filters: {cpu:.2f} s CPU")
    assert cpu < 1.5                                                 # ~0.4 s measured (under load)
    assert scores.shape == (200,) and 0.6 < np.median(scores) < 0.85
    t0 = time.perf_counter()
    assert MC.filter_null(shape, x, n_draws=200) is null and time.perf_counter() - t0 < 0.05
    again = MC.random_filter_pwms(64, 12, x[:100], seed=0)[0]
    assert np.array_equal(again, MC.random_filter_pwms(64, 12, x[:100], seed=0)[0])
    assert not np.array_equal(again, MC.random_filter_pwms(64, 12, x[:100], seed=1)[0])


def test_p_value_band_and_verdict():
    null = np.linspace(0.5, 0.9, 200)
    c = MC.chance_of(0.95, null)
    assert c.p_value == pytest.approx(1 / 201) and c.above_chance and c.verdict == "recovered"
    assert c.p_text == "p < 0.005" and "recovered" in c.describe()
    mid = MC.chance_of(0.7, null)
    assert mid.p_value == pytest.approx((1 + 100) / 201, abs=0.01) and mid.verdict == "at chance"
    assert mid.band == pytest.approx(np.quantile(null, 0.95))
    near = MC.chance_of(0.896, null)                                 # above the band, but 2 draws do as well
    assert near.score > near.band and near.p_value > MC.ALPHA and near.verdict == "at chance"
    assert MC.chance_of(0.5, np.zeros(0)).p_value == 1.0


def test_shuffled_motif_null_and_jaspar_chance():
    ctcf = jaspar_motif("MA0139.1").pwm
    core = ctcf[:, 4:16][None]                                       # a filter that IS the CTCF core
    shuffled = MC.shuffled_motif_null(core, ctcf, n_draws=100)
    assert MC.chance_of(1.0, shuffled).above_chance and np.median(shuffled) < 0.8
    x = dna.planted_motif("CTCF", n=200, length=50, seed=0).one_hot()
    null = MC.filter_null({"n_filters": 8, "width": 12}, x, n_draws=5)
    jn = MC.jaspar_null(null, n=30)
    assert len(jn) == 30 and np.median(jn) > 0.6                     # a random filter's best of ~900 hits is high
    rows = MC.with_jaspar_chance([{"filter": 1, "r 1": 0.99}, {"filter": 2, "sites": 0}], jn)
    assert rows[0]["p (hit 1)"] == round(1 / 31, 3) and rows[0]["chance r (95 %)"] < 0.99
    assert rows[0]["hit 1 is"] == "at chance"                        # 30 draws cannot show p < 0.01
    assert "p (hit 1)" not in rows[1]
