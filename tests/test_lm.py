"""Language models (playground.lm): counting n-grams, the causal mask, BERT masking, a masked LM
that finds a planted motif, and pretraining paying off when labels are few."""
import math

import numpy as np
import pytest
import torch

from playground import Trainer
from playground.train import loss_function
from playground.lm import finetune, ngram, views
from playground.lm.corpus import CorpusError, corpus_from_fasta, make_corpus
from playground.lm.masking import lm_loss, mask_tokens
from playground.lm.models import LMSpec, classifier_from_lm
from playground.lm.tokens import Tokenizer, TokenizerError
from playground.lm.training import lm_data, lm_run
from playground.models import build_model, spec_from_dict

LECTURE = [["students", "opened", "their", "books"]] * 400 + [["students", "opened", "their", "laptops"]] * 350 \
    + [["students", "opened", "their", "minds"]] * 250


# -- tokens -----------------------------------------------------------------------------------
def test_tokens_letters_and_kmers():
    tok = Tokenizer("dna", "char")
    assert tok.vocab[:4] == ["[PAD]", "[MASK]", "[UNK]", "[CLS]"] and tok.vocab_size == 8
    assert tok.encode("ACGTN") == [4, 5, 6, 7, 2] and tok.decode(tok.encode("ACGT")) == "ACGT"
    over = Tokenizer("dna", "kmer_overlap", 3)
    assert over.tokens("ACGTAC") == ["ACG", "CGT", "GTA", "TAC"] and over.decode(over.encode("ACGTAC")) == "ACGTAC"
    assert over.vocab_size == 4 + 64 and over.token_count(["ACGTAC", "ACG", "AC"]) == 4 + 1 + 0
    dis = Tokenizer("dna", "kmer", 3)           # alias of kmer_disjoint
    assert dis.kind == "kmer_disjoint" and dis.tokens("ACGTACG") == ["ACG", "TAC"] and dis.token_spans("ACGTACG") == [(0, 3), (3, 6)]
    x = dis.encode_batch(["ACGTAC", "ACG"])
    assert x.tolist() == [[3, dis.id_of("ACG"), dis.id_of("TAC")], [3, dis.id_of("ACG"), 0]]
    assert Tokenizer.from_dict(over.to_dict()).vocab == over.vocab
    assert Tokenizer("protein", "char").vocab_size == 24
    with pytest.raises(TokenizerError, match="Choose k from 1 to 3"):
        Tokenizer("protein", "kmer_overlap", 4)


# -- n-grams ---------------------------------------------------------------------------------
def test_ngram_probabilities_equal_hand_counts_and_the_lectures_example():
    m = ngram.NGramModel(order=4, smoothing="add_k", k=0).fit(LECTURE)
    ctx = ["students", "opened", "their"]
    assert m.count(ctx) == 1000 and m.count(ctx, "books") == 400
    assert m.prob(ctx, "books") == pytest.approx(0.4)
    assert m.formula(ctx, "books") == "P(books | students opened their) = 400 / 1,000 = 0.4"
    table = m.count_table(ctx)
    assert table["context_count"] == 1000 and table["rows"][0][:2] == ("books", 400)
    assert table["rows"][1] == ("laptops", 350, pytest.approx(0.35))
    # a tiny letter corpus, counted by hand: bigrams of "ABAB" and "ABB" (with a start symbol)
    corpus = ["ABAB", "ABB"]
    mle = ngram.NGramModel(2, "add_k", k=0).fit(corpus)
    assert mle.prob(["A"], "B") == 1.0                      # A is followed by B 3 times out of 3
    assert mle.count(["B"]) == 2 and mle.count(["B"], "B") == 1   # B is followed by A once and by B once
    assert mle.prob(["B"], "A") == pytest.approx(1 / 2)
    assert mle.prob(["<s>"], "A") == 1.0
    lap = ngram.NGramModel(2, "add_k", k=1).fit(corpus)
    assert lap.prob(["B"], "A") == pytest.approx((1 + 1) / (2 + 2))      # (count + k) / (context + k V), V = 2
    assert lap.prob(["A"], "A") == pytest.approx((0 + 1) / (3 + 2))
    uni = ngram.NGramModel(1, "add_k", k=0).fit(corpus)
    assert uni.prob([], "A") == pytest.approx(3 / 7)
    # backoff is a real distribution (sums to 1 everywhere), so its bits are honest
    bo = ngram.NGramModel(3, "backoff").fit(corpus)
    for ctx in (["A", "B"], ["B", "B"], ["Z", "Q"], []):
        assert bo.distribution(ctx).sum() == pytest.approx(1.0)
    assert bo.bits_per_token(["ABAB"]) < bo.bits_per_token(["BBBA"])


def test_best_order_is_chosen_on_validation():
    c = make_corpus("dna", 300, 40, seed=0, motif_rate=0.0, background="markov", markov_order=2, markov_bias=0.2)
    tok = Tokenizer("dna", "char")
    res = ngram.fit_corpus(tok, c)
    assert res["order"] == min(res["val_bits"], key=res["val_bits"].get)
    assert res["val_bits"][3] < res["val_bits"][1] - 0.2          # the order-2 chain: context helps
    assert res["train_bits"][6] < res["val_bits"][6]               # a long context fits training better


# -- the causal mask, the masking, the loss ---------------------------------------------------------
def test_the_causal_model_never_sees_the_future():
    lm = build_model(LMSpec(vocab_size=8, objective="causal", d_model=32, heads=4, layers=2, ff=32), 0).eval()
    x = torch.randint(4, 8, (3, 20))
    x[:, 0] = 3
    for t in (0, 7, 18):
        y = x.clone()
        y[:, t + 1:] = torch.randint(4, 8, y[:, t + 1:].shape)
        y[:, t + 1] = (x[:, t + 1] - 3) % 4 + 4            # token t+1 surely changed
        with torch.no_grad():
            a, b = lm(x), lm(y)
        assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5)
        assert not torch.allclose(a[:, t + 1], b[:, t + 1], atol=1e-5)
        # the attention maps (the slow path the views use) put exactly 0 on the future
        w = lm.attention(x)[0]
        assert float(w.triu(1).abs().max()) == 0.0
    # the views read the prefix only: surprise and fill-the-blank before t+1 ignore what follows
    tok = Tokenizer("dna", "char")
    a, b = "ACGTACGTAC", "ACGTACGTTT"
    sa, sb = views.surprise(lm, tok, a)["bits"], views.surprise(lm, tok, b)["bits"]
    assert np.allclose(sa[:8], sb[:8], atol=1e-5) and not np.allclose(sa[8:], sb[8:])
    fa, fb = views.fill_blank(lm, tok, a, [5])[5], views.fill_blank(lm, tok, a[:6] + "TTTT", [5])[5]
    assert [t for t, _ in fa] == [t for t, _ in fb] and np.allclose([p for _, p in fa], [p for _, p in fb], atol=1e-6)
    masked = build_model(LMSpec(vocab_size=8, objective="masked", d_model=32, layers=1, ff=32), 0).eval()
    y = x.clone()
    y[:, 10] = (x[:, 10] - 3) % 4 + 4
    with torch.no_grad():
        assert not torch.allclose(masked(x)[:, 5], masked(y)[:, 5])   # a masked model reads both sides


def test_masked_loss_counts_masked_positions_only():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(4, 8, (8, 30))
    x[:, 0] = 3
    x[:, 25:] = 0
    inputs, targets = mask_tokens(x, g, vocab_size=8)
    chosen = targets != -100
    logits = torch.randn(8, 30, 8)
    expect = torch.nn.functional.cross_entropy(logits[chosen], x[chosen])
    assert lm_loss(logits, targets) == pytest.approx(float(expect), rel=1e-6)
    other = logits.clone()
    other[~chosen] = torch.randn(int((~chosen).sum()), 8) * 10      # anything at the other positions
    assert lm_loss(other, targets) == pytest.approx(float(expect), rel=1e-6)
    assert float(lm_loss(logits, torch.full_like(targets, -100))) == 0.0   # nothing masked: 0, never NaN
    trainer_loss = loss_function("lm_masked")                                 # the Trainer's, the same formula
    assert float(trainer_loss(logits, targets)) == pytest.approx(float(expect), rel=1e-6)
    assert float(trainer_loss(logits, torch.full_like(targets, -100))) == 0.0


@pytest.mark.parametrize("rate,mask_frac,random_frac", [(0.15, 0.8, 0.1), (0.3, 0.5, 0.3)])
def test_masking_rates_hold_over_many_draws(rate, mask_frac, random_frac):
    g = torch.Generator().manual_seed(1)
    V = 8
    x = torch.randint(4, V, (400, 50))
    x[:, 0] = 3                    # [CLS]
    x[::3, 40:] = 0                # padding
    n_chosen = n_mask = n_random = n_same = 0
    maskable = int((x >= 4).sum()) * 20
    for _ in range(20):
        inp, tgt = mask_tokens(x, g, rate, mask_frac, random_frac, vocab_size=V)
        chosen = tgt != -100
        assert not chosen[x < 4].any()                              # never [CLS] or padding
        assert (inp[~chosen] == x[~chosen]).all()                   # the rest untouched
        n_chosen += int(chosen.sum())
        n_mask += int((inp[chosen] == 1).sum())
        changed = (inp[chosen] != x[chosen]) & (inp[chosen] != 1)
        n_random += int(changed.sum())
        n_same += int((inp[chosen] == x[chosen]).sum())
        assert (inp[chosen & (inp != 1)] >= 4).all()                # random replacements are ordinary tokens
    p_other = 1 - 1 / (V - 4)                                       # a random token differs from the original
    assert n_chosen / maskable == pytest.approx(rate, abs=0.005)
    assert n_mask / n_chosen == pytest.approx(mask_frac, abs=0.01)
    assert n_random / n_chosen == pytest.approx(random_frac * p_other, abs=0.01)
    assert n_same / n_chosen == pytest.approx(1 - mask_frac - random_frac * p_other, abs=0.01)


def test_the_trainer_masks_each_batch_afresh_and_moves_between_processes():
    tok = Tokenizer("dna", "char")
    c = make_corpus("dna", 120, 24, seed=3, motifs=("GATA1",))
    run = lm_run(tok, c, "masked", seed=3, d_model=16, heads=2, layers=1, ff=16)
    tr = run.trainer
    rec = tr.history[0]
    assert {"val_bits", "val_ppl", "val_acc"} <= set(rec)
    assert rec["val_bits"] == pytest.approx(rec["val_loss"] / math.log(2))
    assert rec["val_ppl"] == pytest.approx(math.exp(rec["val_loss"]))
    assert (run.data.x_val == 1).any() and not (run.data.x_train == 1).any()   # training rows are masked per batch
    tr.step(3)
    state = tr.export_state(with_data=True)
    other = Trainer.from_state(state)
    tr.run_epochs(2)
    other.run_epochs(2)
    assert tr.history[-1]["val_loss"] == pytest.approx(other.history[-1]["val_loss"], abs=1e-6)
    causal = lm_data(tok, c, "causal")
    assert causal.task == "lm_causal" and (causal.y_train[:, :-1] == causal.x_train[:, 1:]).all()


def test_corpora_keep_their_motif_positions_and_uploads_fail_kindly():
    c = make_corpus("dna", 50, 40, seed=0, motifs=("GATA1", "AP-1 (FOS::JUN)"), grammar=True, spacing=3,
                    background="markov")
    for s, sites in zip(c.train, c.train_sites):
        (a_name, a0, a1), (b_name, b0, b1) = sites
        assert b0 - a1 == 3 and s[a0:a1] == c.motifs[0].consensus and s[b0:b1] == c.motifs[1].consensus
    assert len(c.train) == 40 and len(c.val) == 10 and c.motif_mask("val")[0].sum() == 21
    p = make_corpus("protein", 60, 50, seed=0)
    assert p.alphabet == "protein" and len(p.train) + len(p.val) == 60
    up = corpus_from_fasta(b">a\nACGTAC\n>b\nGGGTTT\n>c\nACGTTT\n", "three.fa")
    assert len(up.train) + len(up.val) == 3
    with pytest.raises(CorpusError, match="at least 2"):
        corpus_from_fasta(b">a\nACGT\n", "one.fa")
    with pytest.raises(Exception, match="Line 2"):
        corpus_from_fasta(b">a\nACGJ\n>b\nACGT\n", "bad.fa")


# -- a masked LM finds the planted motif; pretraining pays off ------------------------------------
@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    tok = Tokenizer("dna", "char")
    corpus = make_corpus("dna", 800, 30, seed=0, motifs=("CTCF",))
    run = lm_run(tok, corpus, "masked", seed=0)
    run.trainer.run_epochs(28)
    return run


def test_the_masked_lm_predicts_motif_bases_and_beats_the_best_ngram(trained):
    tok, c = trained.tokenizer, trained.corpus
    acc = views.motif_accuracy(trained.model, tok, c)
    assert acc["n_motif"] > 300 and acc["motif"] >= 0.9
    assert acc["background"] < acc["chance"] + 0.1                # random background stays near chance
    best = ngram.fit_corpus(tok, c)
    lm_bits = trained.trainer.history[-1]["val_bits"]
    assert lm_bits < best["val_bits"][best["order"]] - 0.05
    # the views read the same model: a blank inside the motif is filled with the consensus letter
    seq, (_, a, b) = c.val[0], c.val_sites[0][0]
    filled = views.fill_blank(trained.model, tok, seq, [a + 5])
    assert filled[a + 5][0][0] == seq[a + 5] and filled[a + 5][0][1] > 0.8
    s = views.surprise(trained.model, tok, seq)
    inside = np.zeros(len(seq), bool)
    inside[a:b] = True
    assert s["letter_bits"][inside].mean() < 0.7 < s["letter_bits"][~inside].mean()
    out = views.continue_sequence(trained.model, tok, seq[:10], 12, temperature=0.8, top_k=3, seed=1)
    assert out.startswith(seq[:10]) and len(out) == 22 and set(out) <= set("ACGT")
    pca = views.token_embedding_pca(trained.model, tok)
    assert pca["xy"].shape == (4, 2) and pca["labels"] == list("ACGT")
    maps = views.attention_maps(trained.model, tok, seq)
    assert maps.weights.shape == (2, 4, 31, 31) and maps.labels[:2] == ["CLS", f"{seq[0]}1"]
    assert np.allclose(maps.weights.sum(-1), 1, atol=1e-5)


def test_pretraining_beats_training_from_scratch_with_100_labels(trained):
    labelled = finetune.motif_task(trained.corpus, 600)
    res = finetune.finetune_compare(trained.model, trained.tokenizer, labelled, n_labels=100, epochs=20, seed=0)
    sc = res.scores()
    assert res.data.meta["n_labels"] == 100 and len(res.data.y_val) == 120 and len(res.data.y_test) == 120
    assert sc["pretrained"] >= 0.9
    assert sc["gap"] >= 0.05, sc                                   # measured: ~0.15 (0.975 vs 0.82)
    # the same split for both, and the classifier saves as a spec
    assert res.pretrained.data.y_val.tolist() == res.scratch.data.y_val.tolist()
    assert spec_from_dict(res.spec.to_dict()) == res.spec
    clf = classifier_from_lm(trained.model, res.spec, seed=0)
    assert torch.equal(clf.body.embed.weight, trained.model.body.embed.weight)
