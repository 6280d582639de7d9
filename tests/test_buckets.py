"""Length-bucketed batches (playground.data.buckets): every example once per epoch, reproducible from
the generator, within the token budget, little padding; and exact: each model family the Sequence
Models page builds gives the same outputs and the same epoch loss whether a batch is padded to its
own longest member or to the whole set's longest."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from playground.compare import make_spec
from playground.data import protein as P
from playground.data.buckets import (Batch, LengthBuckets, lengths_of, outputs_by_length, padding_figures,
                                     padding_waste, random_batches, skewed_protein_lengths, sorted_batches, trim)
from playground.models.base import build_model
from playground.train import loss_function


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def skewed(n: int = 3000, kind: str = "log-uniform", seed: int = 0) -> torch.Tensor:
    return torch.tensor(skewed_protein_lengths(n, 50, 1000, seed, kind))


# ---- lengths ----------------------------------------------------------------------------------
def test_lengths_of_rows_with_and_without_padding():
    x = torch.tensor([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5], [0, 0, 0, 0, 0], [7, 0, 0, 0, 0]])
    assert lengths_of(x).tolist() == [3, 5, 0, 1]
    # labels past the last token (a label file longer than its sequence) are never cut off
    y = torch.full_like(x, -100)
    y[3, 2] = 1
    assert lengths_of(x, y=y).tolist() == [3, 5, 0, 3]


def test_lengths_of_refuses_what_it_cannot_bucket():
    with pytest.raises(ValueError, match=r"sequence 2: token 2 is padding .* real tokens follow"):
        lengths_of(torch.tensor([[1, 2, 0], [1, 0, 3]]))
    with pytest.raises(ValueError, match="token ids"):
        lengths_of(torch.zeros(4, 4, 50))               # one-hot DNA: fixed-length models
    with pytest.raises(ValueError, match="token ids"):
        lengths_of(torch.zeros(4, 50))                   # floats
    with pytest.raises(ValueError, match="batch size"):
        LengthBuckets([5, 6], batch_size=0)
    with pytest.raises(ValueError, match="token budget"):
        LengthBuckets([5, 6], batch_size=4, token_budget=0)


def test_lengths_from_the_pages_tokeniser():
    ps = P.ProteinSet(["ACD", "MKVLAAGG", "W"], np.zeros(3, np.float32), "binary", ["a", "b"])
    x = P.tokenize(ps.seqs, ps.alphabet)
    assert x.shape == (3, 8)
    assert lengths_of(x).tolist() == [3, 8, 1]


# ---- the sampler ------------------------------------------------------------------------------
@pytest.mark.parametrize("n,batch_size,budget,n_buckets", [
    (3000, 32, None, None), (3001, 32, 20_000, None), (1000, 128, None, 3), (97, 16, 900, None),
    (5, 32, None, None), (1, 8, None, None), (500, 7, 3000, 40)])
def test_every_example_exactly_once_per_epoch(n, batch_size, budget, n_buckets):
    lengths = skewed(n, seed=n)
    buckets = LengthBuckets(lengths, batch_size, budget, n_buckets)
    g = gen(1)
    for _ in range(3):
        plan = buckets.epoch_plan(g)
        assert len(plan) == len(buckets)
        idx = torch.cat([b.idx for b in plan])
        assert sorted(idx.tolist()) == list(range(n))
        full = [buckets.bucket_batch_size[int(buckets.bucket[b.idx[0]])] for b in plan]
        # only one batch (the shortest bucket's last) may be smaller than its bucket's batch size
        assert sum(len(b.idx) < f for b, f in zip(plan, full)) <= 1
        assert all(b.length == int(lengths[b.idx].max()) for b in plan)


def test_empty_set_has_no_batches():
    assert LengthBuckets([], 32).epoch(gen()) == []
    assert sorted_batches([], 32) == []


def test_epochs_are_reproducible_from_the_generator_alone():
    lengths = skewed(2000)
    buckets = LengthBuckets(lengths, 32)
    global_state = torch.random.get_rng_state()
    first = [t.tolist() for t in buckets.epoch(gen(7))]
    g1, g2 = gen(7), gen(7)
    run1 = [[t.tolist() for t in buckets.epoch(g1)] for _ in range(3)]
    run2 = [[t.tolist() for t in LengthBuckets(lengths, 32).epoch(g2)] for _ in range(3)]
    assert run1 == run2 and run1[0] == first
    assert torch.equal(torch.random.get_rng_state(), global_state)     # torch's global generator untouched
    assert run1[0] != run1[1] != run1[2]                                 # each epoch shuffles anew
    assert [t.tolist() for t in buckets.epoch(gen(8))] != run1[0]       # another seed, another order


def test_shuffled_within_buckets_and_across_buckets():
    lengths = skewed(2000)
    buckets = LengthBuckets(lengths, 32)
    e1, e2 = buckets.epoch_plan(gen(1)), buckets.epoch_plan(gen(2))
    # each batch comes from one bucket ...
    assert all(len(set(buckets.bucket[b.idx].tolist())) == 1 for b in e1)
    # ... its members are dealt anew every epoch (not the same fixed groups) ...
    groups = lambda plan: {frozenset(b.idx.tolist()) for b in plan}
    assert len(groups(e1) & groups(e2)) < len(e1) // 4
    # ... and the batches do not run short to long: batch length vs position is uncorrelated
    lens = np.array([b.length for b in e1], float)
    r = np.corrcoef(np.arange(len(lens)), lens)[0, 1]
    assert abs(r) < 0.4
    assert sorted(lens.tolist()) != lens.tolist() and sorted(lens.tolist(), reverse=True) != lens.tolist()


@pytest.mark.parametrize("budget", [4_000, 10_000, 32_000])
def test_batches_respect_the_token_budget(budget):
    lengths = skewed(3000)
    buckets = LengthBuckets(lengths, batch_size=64, token_budget=budget)
    plan = buckets.epoch_plan(gen())
    assert all(len(b.idx) <= 64 for b in plan)
    assert all(len(b.idx) * b.length <= budget for b in plan)
    # the budget binds: long batches are smaller than short ones
    longest = max(plan, key=lambda b: b.length)
    shortest = min(plan, key=lambda b: b.length)
    assert len(longest.idx) < len(shortest.idx) or len(shortest.idx) == 64
    # a sequence longer than the whole budget still gets a batch of its own
    solo = LengthBuckets([10, 20, 5000] + [30] * 40, batch_size=8, token_budget=1000).epoch_plan(gen())
    assert [len(b.idx) for b in solo if 2 in b.idx.tolist()] == [1]
    assert sorted(torch.cat([b.idx for b in solo]).tolist()) == list(range(43))
    assert all(len(b.idx) * b.length <= 1000 for b in solo if 2 not in b.idx.tolist())


def test_eval_batches_are_sorted_and_cover_everything():
    lengths = skewed(1000)
    plan = sorted_batches(lengths, batch_size=100, token_budget=30_000)
    assert sorted(torch.cat([b.idx for b in plan]).tolist()) == list(range(1000))
    assert all(len(b.idx) * b.length <= 30_000 for b in plan)
    assert [b.length for b in plan] == sorted((b.length for b in plan), reverse=True)


def test_an_epoch_is_cheap():
    import time

    lengths = skewed(200_000)
    buckets = LengthBuckets(lengths, 32)
    g = gen()
    buckets.epoch_plan(g)
    t0 = time.perf_counter()
    plan = buckets.epoch_plan(g)
    seconds = time.perf_counter() - t0
    assert len(plan) >= 200_000 // 32
    assert seconds < 1.0, f"one epoch plan of 200,000 sequences took {seconds:.2f} s"


# ---- padding ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["log-uniform", "uniform"])
@pytest.mark.parametrize("batch_size", [16, 32, 64, 128])     # the Sequence Models page's choices
def test_padding_waste_is_small_with_buckets_and_large_without(kind, batch_size):
    lengths = skewed(3000, kind)
    g = gen()
    bucketed = padding_waste(lengths, LengthBuckets(lengths, batch_size).epoch(g))
    plain = random_batches(len(lengths), batch_size, g)
    unbucketed = padding_waste(lengths, plain, pad_to=int(lengths.max()))     # today's Trainer
    trimmed_only = padding_waste(lengths, plain)
    assert 1.0 <= bucketed <= 1.3
    assert unbucketed > (2.5 if kind == "log-uniform" else 1.7)
    assert trimmed_only > 1.6            # cutting random batches to their own longest is not enough
    with_budget = padding_waste(lengths, LengthBuckets(lengths, batch_size, batch_size * 300).epoch(g))
    assert with_budget <= 1.3


def test_padding_waste_counts_positions():
    lengths = torch.tensor([10, 5, 5, 1])
    assert padding_waste(lengths, [torch.tensor([0, 1]), torch.tensor([2, 3])]) == pytest.approx((20 + 10) / 21)
    assert padding_waste(lengths, [torch.tensor([0, 1, 2, 3])], pad_to=12) == pytest.approx(48 / 21)
    assert padding_waste(lengths, [Batch(torch.tensor([1, 2]), 5)]) == pytest.approx(1.0)


def test_benchmark_figure_on_the_pages_protein_data(capsys):
    f = padding_figures(n=600, seed=3)
    assert f["batch_size"] == 32                          # the Sequence Models page's default
    assert f["padding_waste"] <= 1.3 < 2.0 < f["padding_waste_unbucketed"]
    from playground.data.buckets import print_padding_waste

    print_padding_waste(n=300, seed=1)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("padding_waste: ") and out[1].startswith("padding_waste_unbucketed: ")
    float(out[0].split(": ")[1]), float(out[1].split(": ")[1])


# ---- exactness: the models and the losses -------------------------------------------------------
def protein_split(task: str, n: int = 40, lo: int = 3, hi: int = 70, seed: int = 0):
    """A variable-length protein set through the page's own tokeniser and split (padded to the longest)."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(lo, hi + 1, n)
    lens[0] = hi
    seqs = ["".join(rng.choice(list(P.AMINO), k)) for k in lens]
    if task == "per_residue":
        y, names = [P.secondary_structure_labels(s) for s in seqs], P.SS_CLASSES
        # some residues unlabelled (a 0/1 mask column), as in NetSurfP files
        mask = ["".join("1" if rng.random() > 0.2 else "0" for _ in s) for s in seqs]
        return P.to_split(P.ProteinSet(seqs, y, task, list(names), mask=mask), seed=seed)
    if task == "regression":
        return P.to_split(P.ProteinSet(seqs, rng.normal(size=n).astype(np.float32), task, []), seed=seed)
    if task == "multiclass":
        return P.to_split(P.ProteinSet(seqs, rng.integers(0, 3, n), task, ["a", "b", "c"]), seed=seed)
    return P.to_split(P.ProteinSet(seqs, rng.integers(0, 2, n).astype(np.float32), task, ["a", "b"]), seed=seed)


FAMILIES = [
    ("cnn", {}), ("cnn", {"pooling": "mean", "kernel": 4, "channels": (8, 8, 8)}),
    ("rnn", {"cell": "rnn", "layers": 2, "hidden": 8}), ("lstm", {"hidden": 8}),
    ("gru", {"output": "last", "hidden": 8}), ("lstm", {"output": "last", "bidirectional": False, "hidden": 8}),
    ("transformer", {"d_model": 16, "ff": 32}), ("transformer", {"d_model": 16, "ff": 32, "pooling": "cls"}),
    ("transformer", {"d_model": 16, "ff": 32, "positional": "learned", "norm": "post"}),
    ("transformer", {"d_model": 16, "ff": 32, "positional": "none", "layers": 1}),
]
HYBRID = [("hybrid", {}), ("hybrid", {"pooling": "mean", "positional": "none", "norm": "post"})]
TINY_HYBRID = dict(embed_dim=8, conv1_channels=16, conv2_channels=16, heads=2, ff=32, hidden=8, pool_positions=8)


def bucketed_vs_padded(family: str, hp: dict, task: str, batch_size: int = 6, budget: int | None = 200):
    """(loss over the set padded to its longest, example/residue-weighted mean of one bucketed epoch's
    batch losses, largest output difference at real positions, batches)."""
    data = protein_split(task)
    x, y = data.x_train, data.y_train
    model = build_model(make_spec(family, "protein", data, dict(hp)), seed=0).eval()
    loss_fn = loss_function(task)
    per_residue = task == "per_residue"
    lengths = lengths_of(x, y=y if per_residue else None)
    assert int(lengths.min()) < x.shape[1]                         # the set really is padded
    with torch.no_grad():
        padded = model(x)
        reference = float(loss_fn(padded, y))
        total = weight = 0.0
        worst = 0.0
        plan = LengthBuckets(lengths, batch_size, budget).epoch_plan(gen(3))
        for idx, length in plan:
            xb, yb = trim(x, y, idx, length=length)
            assert xb.shape == (len(idx), length) and torch.equal(xb, x[idx, :length])
            assert not bool(x[idx, length:].any())                # only padding was cut
            out = model(xb)
            w = float((yb != -100).sum()) if per_residue else len(idx)
            total += float(loss_fn(out, yb)) * w
            weight += w
            ref = padded[idx]
            if per_residue:
                keep = yb != -100
                assert not bool((y[idx, length:] != -100).any())  # no label was cut
                worst = max(worst, float((out - ref[:, :length])[keep].abs().max()))
            else:
                worst = max(worst, float((out - ref).abs().max()))
    return reference, total / weight, worst, plan


# every variant on a sequence-level and the per-residue task; each family's defaults on all four tasks
CASES = [(f, hp, task) for f, hp in FAMILIES for task in ("binary", "per_residue")]
CASES += [(f, {}, task) for f in ("cnn", "rnn", "lstm", "gru", "transformer") for task in ("regression", "multiclass")]


@pytest.mark.parametrize("family,hp,task", CASES,
                         ids=[f"{f}-{task}-{'-'.join(f'{k}={v}' for k, v in hp.items())}" for f, hp, task in CASES])
def test_bucketed_and_unbucketed_losses_are_equal(family, hp, task):
    reference, bucketed, worst, plan = bucketed_vs_padded(family, hp, task)
    assert len({b.length for b in plan}) > 2                       # batches really have different lengths
    assert worst < 1e-5, f"{family} {hp}: outputs differ by {worst:.2e} between own-length and global padding"
    assert bucketed == pytest.approx(reference, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("family,hp", HYBRID, ids=["small", "mean-post"])
def test_hybrid_bucketed_and_unbucketed_losses_are_equal(family, hp):
    reference, bucketed, worst, _ = bucketed_vs_padded(family, {**hp, **TINY_HYBRID}, "binary")
    assert worst < 1e-5, f"hybrid outputs differ by {worst:.2e}"
    assert bucketed == pytest.approx(reference, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("family,task", [("transformer", "per_residue"), ("lstm", "binary"), ("cnn", "per_residue")])
def test_outputs_by_length_equal_one_padded_pass(family, task):
    data = protein_split(task, n=30)
    x, y = data.x_train, data.y_train
    model = build_model(make_spec(family, "protein", data, {}), seed=0).eval()
    with torch.no_grad():
        padded = model(x)
    fast = outputs_by_length(model, x, batch_size=4)
    assert fast.shape == padded.shape
    if task == "per_residue":
        keep = y != -100
        assert torch.allclose(fast[keep], padded[keep], atol=1e-5)
        assert float(loss_function(task)(fast, y)) == pytest.approx(float(loss_function(task)(padded, y)), rel=1e-5)
    else:
        assert torch.allclose(fast, padded, atol=1e-5)
