"""The Language models page's settings and run (playground/setups/lm.py): the schema round-trips
through the URL, build() makes the run the page trains (masked, causal, n-gram), the rebuild
signature changes exactly when the run does, and the lesson measures match hand counts."""
from __future__ import annotations

import math

import pytest
import torch

from playground import lessons as L
from playground.bundle import lm_letters
from playground.lm.tokens import Tokenizer
from playground.settings import SettingError
from playground.setups import Run
from playground.setups import lm as S

SMALL = {"n": 100, "length": 30, "seed": 2, "d_model": 16, "heads": 2, "ff": 32, "layers": 1}


def test_every_setting_round_trips_through_the_url():
    values = {**S.SCHEMA.defaults(), **SMALL, "model": "causal", "tokens": "kmer_overlap", "k": 3,
              "blanks": [3, 9], "temperature": 0.7, "prompt": "ACGT", "ft_n": 0, "grammar": True,
              "mask_rate": 0.3, "lr": 0.001}
    query = S.SCHEMA.encode_query(values)
    back, warnings = S.SCHEMA.decode_query(query)
    assert not warnings
    assert {k: back[k] for k in query} == {k: values[k] for k in query}
    # garbage in a link is ignored with a warning, never an error
    vals, warns = S.SCHEMA.decode_query({"model": "gpt5", "k": "99", "blanks": "x"})
    assert vals["model"] == "masked" and vals["k"] == 3 and len(warns) == 3
    with pytest.raises(SettingError):
        S.SCHEMA.validate({"mask_rate": 0.17}, strict=True)      # not one of the choices


def test_build_makes_the_masked_causal_and_ngram_runs():
    run = S.build(SMALL)
    assert isinstance(run, Run) and run.data.task == "lm_masked" and run.spec.objective == "masked"
    tok = run.extras["tokenizer"]
    assert tok.vocab_size == 8 and run.extras["uniform_bits"] == 2.0
    assert run.spec.max_len == 31                                 # [CLS] + 30 letters
    assert run.data.meta["masking"]["rate"] == 0.15 and run.extras["masking"] == (0.15, 0.8, 0.1)
    tr = run.make_trainer()
    tr.run_epochs(1)
    rec = tr.history[-1]
    assert rec["val_bits"] == pytest.approx(rec["val_loss"] / math.log(2))
    twin = run.make_trainer()                                     # seeded: the same run again
    twin.run_epochs(1)
    assert twin.history[-1]["val_loss"] == pytest.approx(rec["val_loss"], abs=1e-6)

    causal = S.build({**SMALL, "model": "causal", "tokens": "kmer_disjoint", "k": 2})
    assert causal.data.task == "lm_causal" and causal.extras["tokenizer"].vocab_size == 4 + 16
    assert causal.extras["masking"] is None

    ng = S.build({**SMALL, "model": "ngram", "order": 2})
    assert ng.spec is None and ng.data is None
    fit = ng.extras["ngram"]
    assert fit["order"] == 2 and 1.0 < fit["val_bits"][2] < 2.1


def test_the_signature_changes_exactly_when_the_run_does():
    base = S.signature(SMALL)
    for view_or_live in ({"seq_idx": 5}, {"temperature": 2.0}, {"blanks": [1]}, {"ft_n": 25}, {"lr": 0.01},
                         {"early_stop": 0}, {"order": 5}, {"k": 5}, {"up_alphabet": "protein"}):
        assert S.signature({**SMALL, **view_or_live}) == base, view_or_live
    for run_setting in ({"d_model": 32}, {"mask_rate": 0.3}, {"n": 200}, {"tokens": "kmer_overlap"},
                        {"model": "causal"}, {"seed": 3}, {"motif": "GATA1"}):
        assert S.signature({**SMALL, **run_setting}) != base, run_setting
    causal = {**SMALL, "model": "causal"}
    assert S.signature({**causal, "mask_pct": 50}) == S.signature(causal)   # a causal LM masks nothing


def test_masking_shares_that_add_up_to_more_than_all_are_refused():
    with pytest.raises(S.LMSettingError, match="more than 100 %"):
        S.build({**SMALL, "mask_pct": 90, "random_pct": 20})
    assert S.masking_of({"mask_pct": 100, "random_pct": 0}) == (0.15, 1.0, 0.0)


def test_the_lecture_example_is_the_hand_count():
    assert S.lecture_prob({"smoothing": "add_k", "add_k": 0.0}) == pytest.approx(400 / 1000)
    # add-one: (400 + 1) / (1000 + V), V = 7 words (students opened their books laptops exams minds)
    assert S.lecture_prob({"smoothing": "add_k", "add_k": 1.0}) == pytest.approx(401 / 1007)
    m = S.lecture_model({"smoothing": "add_k", "add_k": 0.0})
    assert m.formula(list(S.LECTURE_CONTEXT), "books").endswith("= 400 / 1,000 = 0.4")


def test_input_spec_reads_the_letters_that_fit_the_positions():
    for kind, k, letters in (("char", 1, 40), ("kmer_overlap", 3, 42), ("kmer_disjoint", 3, 120)):
        assert lm_letters(Tokenizer("dna", kind, k), 41) == letters
    run = S.build(SMALL)
    inp = S.input_spec(run)
    assert inp.kind == "lm_tokens" and inp.max_length == 30 and inp.tokenizer["kind"] == "char"


def test_visible_accuracy_and_the_finetune_pair_stop_where_told():
    run = S.build(SMALL)
    tr = run.make_trainer()
    corpus, tok = run.extras["corpus"], run.extras["tokenizer"]
    a = S.visible_accuracy(tr.model, tok, corpus)
    assert 0.0 <= a <= 1.0 and a == S.visible_accuracy(tr.model, tok, corpus)
    labelled = S.labelled_set({}, corpus)
    tr.run_epochs(1)                    # pretrained a little: its weights differ from a fresh seeded start
    pair = S.finetune_pair({**SMALL, "ft_n": 25, "ft_epochs": 2}, tr.model, tok, labelled)
    # the pretrained run starts from the LM's body, the scratch run from new weights
    lm_embed = tr.model.body.embed.weight.detach()
    assert torch.equal(pair.pretrained.model.body.embed.weight.detach(), lm_embed)
    assert not torch.equal(pair.scratch.model.body.embed.weight.detach(), lm_embed)
    assert pair.data.meta["n_labels"] <= 26 and set(pair.trainers) == set(S.FinetunePair.NAMES)
    pair.run_epochs(5)
    assert pair.done and all(t.epoch == 2 for t in pair.trainers.values())


def test_lesson_links_open_the_page_with_the_steps_settings():
    les = L.load_lesson(L.LESSON_DIR / "20_ngrams.toml")
    assert L.PAGES["lm"].path == "pages/7_Language_Models.py"
    for n in range(1, len(les) + 1):
        q = L.step_query(les, n)
        values, warnings = S.SCHEMA.decode_query(q)
        assert not warnings
        for k, v in les.step(n).settings.items():
            assert values[k] == v
    url = L.step_url(les, 1)
    assert url.startswith("/Language_Models?lesson=ngrams&step=1")


def test_a_finetuned_classifier_predicts_on_the_predict_path_and_a_bare_lm_is_refused():
    from playground.bundle import BundleError, bundle_from_trainer, load_bundle
    from playground.predict import predict, read_input

    run = S.build({**SMALL, "tokens": "kmer_overlap", "k": 3})
    tr = run.make_trainer()
    corpus, tok = run.extras["corpus"], run.extras["tokenizer"]
    pair = S.finetune_pair({**SMALL, "ft_n": 25, "ft_epochs": 1}, tr.model, tok, S.labelled_set({}, corpus))
    pair.run_epochs(1)
    clf = pair.pretrained
    b = load_bundle(bundle_from_trainer(clf, pair.spec, page="lm", input=S.input_spec(tok, pair.spec.max_len),
                                        label_names=["no motif", "motif"]).to_bytes())
    assert b.kind == "lm_classifier" and b.input.kind == "lm_tokens" and b.input.max_length == 30   # [CLS] + 28 3-mers
    seqs = corpus.val[:5] + ["ACGTACGTAC"]
    res = predict(b, read_input(b, text="\n".join(seqs)))
    frame = res.frame()
    assert len(frame) == 6
    # the same numbers as the trainer's model on the same tokens ([CLS] + overlapping 3-mers)
    x = tok.encode_batch(seqs[:5])
    clf.model.eval()
    with torch.no_grad():
        p1 = torch.sigmoid(clf.model(x)[:, 0]).numpy()
    assert list(frame.iloc[:5, :].filter(like="motif").iloc[:, -1].round(4)) == list(p1.round(4))
    lm_bundle = load_bundle(bundle_from_trainer(tr, run.spec, page="lm", input=S.input_spec(run)).to_bytes())
    with pytest.raises(BundleError, match="language model"):
        predict(lm_bundle, ["ACGT"])


def test_an_uploaded_fasta_makes_the_corpus_and_a_bad_one_a_friendly_error():
    from playground.errors import PlaygroundError

    fasta = "".join(f">s{i}\n{'ACGT' * 5}{'TTGCA'[i % 5]}GG\n" for i in range(20)).encode()
    v = {**SMALL, "corpus": "upload", "up_alphabet": "dna"}
    run = S.build(v, upload=("mine.fasta", fasta))
    corpus = run.extras["corpus"]
    assert corpus.alphabet == "dna" and len(corpus.train) + len(corpus.val) == 20
    assert "upload" in S.signature(v, ("mine.fasta", fasta))
    assert S.signature(v, ("mine.fasta", fasta)) != S.signature(v, ("mine.fasta", fasta + b">x\nACGT\n"))
    with pytest.raises(PlaygroundError) as e:
        S.make_corpus(v, ("bad.fasta", b">a\nACGT\n"))
    assert e.value.hint                                      # says what to do
    with pytest.raises(S.LMSettingError):
        S.make_corpus(v, None)
