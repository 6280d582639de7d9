"""Train / validation / test: the validation set is disjoint from the test set, it is what early
stopping, the learning-rate schedules and the best epoch read, and the test set is only scored
when asked (issue #12, item 1)."""
import numpy as np
import pytest
import torch

from playground.data.split import SplitData, split_predefined, split_shares, split_three
from playground.models.mlp import MLPSpec
from playground.models.base import build_model
from playground.setups import basics, dna, sequence
from playground.train import TrainConfig, Trainer


def test_the_three_parts_are_disjoint_cover_everything_and_keep_class_shares():
    y = np.r_[np.zeros(300), np.ones(700)].astype(int)
    tr, va, te = split_three(len(y), 0.8, 0.1, seed=3, stratify=y)
    assert len(set(tr) & set(va)) == len(set(tr) & set(te)) == len(set(va) & set(te)) == 0
    assert sorted(np.r_[tr, va, te].tolist()) == list(range(len(y)))
    assert (len(tr), len(va), len(te)) == (800, 100, 100)
    for part in (tr, va, te):
        assert y[part].mean() == pytest.approx(0.7, abs=0.01)     # stratified: 70 % class 1 everywhere
    # a different seed gives a different split, the same seed the same one
    assert not np.array_equal(split_three(len(y), 0.8, 0.1, 4, y)[1], va)
    assert all(np.array_equal(a, b) for a, b in zip(split_three(len(y), 0.8, 0.1, 3, y), (tr, va, te)))


def test_a_named_split_keeps_its_test_rows_and_carves_validation_from_train():
    labels = ["train"] * 90 + ["test"] * 10
    tr, va, te = split_predefined(labels, 0.8, 0.1, seed=0)
    assert te.tolist() == list(range(90, 100))
    assert len(va) > 0 and set(va) <= set(range(90)) and not set(va) & set(tr)
    with pytest.raises(ValueError, match="example 2"):
        split_predefined(["train", "holdout", "test"], 0.8, 0.1, 0)


def test_an_old_two_way_link_keeps_its_training_share_and_gets_a_test_slice():
    assert split_shares(75, 10) == (0.75, 0.10)          # old 75/25 -> 75 train, 10 validation, 15 test
    assert split_shares(90, 10) == (0.90, 0.05)          # validation cut so that 5 % stay for test
    run = dna.build({"train_pct": 75, "n": 1000})
    sizes = run.make_trainer().data.sizes()
    assert sizes == (750, 100, 150)


def _flipped_validation(n=400, seed=0):
    """Train and test from one rule; validation with the labels flipped: the better the model
    learns the rule, the worse its validation loss."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3 * n, 2, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).float()
    return SplitData(x[:n], y[:n], x[2 * n:], y[2 * n:], "binary", x_val=x[n:2 * n], y_val=1 - y[n:2 * n])


def _trainer(data, **cfg):
    return Trainer(build_model(MLPSpec(2, (8,), "tanh", 1), 0), data,
                   TrainConfig(optimizer="adam", lr=0.03, batch_size=32, seed=0, **cfg))


def test_early_stopping_reads_validation_not_test():
    tr = _trainer(_flipped_validation(), early_stopping=3)
    tr.run_epochs(40)
    # the validation loss rises from the start, so training stops after the patience, with the
    # best (first) epoch restored; the test loss fell all along (it was never looked at)
    assert tr.stopped and "validation" in tr.stopped
    assert tr.epoch <= 5 and tr.best_epoch <= 1
    assert tr.test_looks == 0 and tr.test_scores is None
    h = tr.history
    assert all("test_loss" not in r for r in h) and all("val_loss" in r for r in h)
    res = tr.score_test()
    assert res["looks"] == 1 and res["epoch"] == tr.epoch and res["n"] == 400


def test_the_plateau_schedule_reads_validation():
    tr = _trainer(_flipped_validation(), schedule="plateau", schedule_patience=2)
    tr.run_epochs(8)
    lrs = [r["lr"] for r in tr.history]
    assert lrs[0] == pytest.approx(0.03) and lrs[-1] < 0.03 / 2     # halved at least twice: validation got worse
    # the same data with validation = test (both improve): no plateau, the rate stays
    d = _flipped_validation()
    d.x_val, d.y_val = d.x_test, d.y_test
    tr2 = _trainer(d, schedule="plateau", schedule_patience=2)
    tr2.run_epochs(8)
    assert tr2.history[-1]["lr"] > tr.history[-1]["lr"]


@pytest.mark.parametrize("kind", ["cosine", "step"])
def test_cosine_and_step_schedules_lower_the_rate_over_epochs(kind):
    d = _flipped_validation()
    d.x_val, d.y_val = d.x_test, d.y_test
    tr = _trainer(d, schedule=kind, schedule_epochs=9)
    tr.run_epochs(9)
    lrs = [r["lr"] for r in tr.history]
    assert lrs[0] == pytest.approx(0.03) and lrs[-1] < 0.03 * 0.3
    assert all(b <= a + 1e-12 for a, b in zip(lrs, lrs[1:]))


def test_the_same_seed_gives_the_same_split_and_the_same_curves():
    def curves(seed):
        tr = dna.build({"n": 500, "seed": seed}).make_trainer()
        tr.run_epochs(2)
        return tr.data.meta["val_idx"], [round(r["val_loss"], 6) for r in tr.history]

    (v1, c1), (v2, c2), (v3, _) = curves(5), curves(5), curves(6)
    assert np.array_equal(v1, v2) and c1 == c2
    assert not np.array_equal(v1, v3)


@pytest.mark.parametrize("page", ["basics", "dna", "sequence"])
def test_every_training_page_splits_three_ways(page):
    mod = {"basics": basics, "dna": dna, "sequence": sequence}[page]
    values = {"n": 400} if page != "basics" else {}
    tr = mod.build(values).make_trainer()
    n_train, n_val, n_test = tr.data.sizes()
    assert n_val > 0 and n_test > 0 and n_train > n_val
    m = tr.data.meta
    assert not set(m["val_idx"]) & set(m["test_idx"])


def test_a_long_epoch_shows_progress_before_it_ends():
    tr = dna.build({"n": 2000}).make_trainer()
    tr.step(tr.steps_per_epoch // 2)
    assert tr.epoch == 0 and 0.4 < tr.epoch_progress < 0.6
    assert len(tr.trace) >= 10 and tr.trace[-1][1] < 1.0          # points of the sub-epoch loss trace
    assert all(np.isfinite(p[2]) for p in tr.trace)


def test_length_buckets_in_the_trainer_keep_the_losses_and_cut_the_padding():
    from playground.setups import sequence as S

    run = S.build({"dataset": "protein_solubility", "n": 300, "length": 200, "family": "cnn"})
    assert run.config.length_buckets
    tr = run.make_trainer()
    assert tr.bucketed and tr.padding_waste < 1.1
    run.config.length_buckets = False
    plain = run.make_trainer()
    assert not plain.bucketed and plain.padding_waste > 1.2
    # same initial weights: the validation loss (sorted, cut batches vs padded ones) is the same
    assert tr.history[0]["val_loss"] == pytest.approx(plain.history[0]["val_loss"], rel=1e-5)
    seen = torch.cat([p[0] for p in (tr._train_batch() or tr._plan)])
    assert sorted(seen.tolist()) == list(range(len(tr.data.y_train)))     # every example once per epoch
    tr.run_epochs(2)
    assert tr.history[-1]["train_loss"] < tr.history[0]["train_loss"]
