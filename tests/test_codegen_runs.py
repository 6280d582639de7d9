"""'PyTorch code' from a page's run (``codegen.script_for(run, trainer)``), and the code every
script shares with the library: the train / validation / test split, the encodings, the loss and
the tables are the playground's own, so a script splits, encodes and trains exactly as the page
does: the same validation loss every epoch, and the same test score, scored once at the end."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from playground import TrainConfig, Trainer, codegen, encoding
from playground.bundle import InputSpec
from playground.codegen import script_for, script_for_trainer, sequence_script
from playground.data import toy
from playground.data.split import SplitData, split_seed, split_three
from playground.models import build_model
from playground.models.base import ACTIVATIONS
from playground.models.cnn import CNNSpec
from playground.models.transformer import TransformerSpec
from playground.train import loss_function
from tests.conftest import load_source

ROOT = Path(__file__).resolve().parents[1]
CFG = TrainConfig(optimizer="adam", lr=0.01, batch_size=16, seed=0)


def load(src: str, name: str = "generated") -> dict:
    """A generated script's namespace, without running its main()."""
    return load_source(src, name)


def run_main(src: str, monkeypatch, capsys, tmp_path, *argv) -> str:
    """Run a generated script's main() here (faster than a new Python), return what it printed."""
    ns = load(src)
    monkeypatch.setattr(sys, "argv", ["generated.py", *argv])
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    ns["main"]()
    return capsys.readouterr().out


def val_losses(out: str) -> dict[int, float]:
    """{epoch: validation loss} of the epochs a script printed."""
    return {int(e): float(v) for e, v in re.findall(r"epoch +(\d+) +train loss [0-9.]+ +validation loss ([0-9.]+)", out)}


def held_out(out: str) -> dict[str, float]:
    """The scores of the script's one look at the test set."""
    line = re.search(r"test \(held out, scored once\): (.*)", out).group(1)
    return {k: float(v) for k, v in re.findall(r"(\w+) ([-0-9.]+)", line)}


def assert_same_run(out: str, trainer, metric: str):
    """The script printed the page's validation loss at every epoch it trained, and scored the
    test set once, as ``trainer.score_test()`` does."""
    printed = val_losses(out)
    assert sorted(printed)[-1] == trainer.epoch and len(printed) >= 2
    for epoch, loss in printed.items():
        assert loss == pytest.approx(trainer.history[epoch]["val_loss"], abs=6e-5), epoch
    scores, test = trainer.score_test(), held_out(out)
    assert out.count("held out") == 1
    assert test["loss"] == pytest.approx(scores["loss"], abs=1e-5)
    assert test[metric] == pytest.approx(scores[metric], abs=1e-4)


# ---- the split -----------------------------------------------------------------------------------
def test_the_split_rule_is_written_once_in_the_library():
    hits = [p.relative_to(ROOT).as_posix() for p in (ROOT / "playground").rglob("*.py") if "7919" in p.read_text()]
    assert hits == ["playground/data/split.py"]
    assert split_seed(5) == 5 + 7919


@pytest.mark.parametrize("seed", [0, 3, 41])
def test_the_generated_split_is_the_librarys_split(seed):
    seq = load(sequence_script(CNNSpec(length=20, channels=(4,), kernel_sizes=(3,), dense=()), CFG, task="binary",
                               input=InputSpec("one_hot", "dna", length=20), epochs=1, generate=(40, 20)))
    esm_src = codegen.esm_head_script(_head_spec(), CFG, task="binary", class_names=["no", "yes"], epochs=1)
    head = load(esm_src, "generated_esm")
    for ns in (seq, head):
        assert ns["split_seed"](seed) == split_seed(seed)
        for n, frac, val in [(3, 0.5, 0.25), (7, 0.6, 0.2), (101, 0.8, 0.1), (500, 0.3, 0.3)]:
            items = [f"s{i}" for i in range(n)]
            classes = (np.random.default_rng(n).random(n) < 0.3).astype(int).tolist()    # imbalanced 0/1
            parts = ns["split"](items, classes, frac, val, seed)
            page = SplitData.from_arrays(np.zeros((n, 1), np.float32), np.array(classes, np.float32), "binary",
                                         frac, seed, val).meta       # the page's split: stratified by class
            for (seqs, labels), name in zip(parts, ("train", "val", "test")):
                assert seqs == [items[i] for i in page[f"{name}_idx"]], name
                assert labels == [classes[i] for i in page[f"{name}_idx"]]
    # regression labels: a plain random split
    reg = load(sequence_script(CNNSpec(length=20, channels=(4,), kernel_sizes=(3,), dense=()), CFG, task="regression",
                               input=InputSpec("one_hot", "dna", length=20), epochs=1, generate=(40, 20)))
    values = [0.1 * i for i in range(50)]
    parts = reg["split"](values, values, 0.8, 0.1, seed)
    assert [p[1] for p in parts] == [[values[i] for i in idx] for idx in split_three(50, 0.8, 0.1, seed)]
    # the toy script regenerates the basics page's points and splits them the same way
    ns = load(codegen.toy_script("xor", 120, 0.1, 0.6, ["x1", "x2", "x1x2"], _mlp(3), CFG, epochs=1, seed=seed,
                                 val_fraction=0.2))
    data = toy.make_split("xor", 120, 0.1, 0.6, seed, ["x1", "x2", "x1x2"], val_fraction=0.2)
    for name in ("train", "val", "test"):
        assert ns[f"{name}_idx"].tolist() == data.meta[f"{name}_idx"].tolist()
        assert torch.equal(ns[f"x_{name}"], getattr(data, f"x_{name}"))
        assert torch.equal(ns[f"y_{name}"], getattr(data, f"y_{name}"))


def _mlp(n_inputs):
    from playground.models.mlp import MLPSpec

    return MLPSpec(n_inputs, (3,), "tanh", 1)


def _head_spec():
    from playground.models.esm_head import ESMHeadSpec

    return ESMHeadSpec(embed_dim=8, layer=1, head="mlp", hidden=4)


# ---- the helpers and tables ------------------------------------------------------------------------
def test_the_scripts_encode_and_score_as_the_library():
    seqs = ["ACGTN", "GGA", "TTACGA"]
    dna = load(sequence_script(CNNSpec(length=6, channels=(4,), kernel_sizes=(3,), dense=()), CFG, task="binary",
                               input=InputSpec("one_hot", "dna", length=6), epochs=1, generate=(20, 6)))
    assert torch.equal(dna["one_hot"](seqs, 6), encoding.one_hot(seqs, encoding.DNA, 6))
    prot_seqs = ["MKV", "ACDEFGHIKLMNPQRSTVWYX"]
    prot = load(sequence_script(TransformerSpec(vocab_size=22, d_model=8, heads=2, layers=1, ff=8,
                                                pooling="per_position", n_outputs=3), CFG, task="per_residue",
                                input=InputSpec("tokens", "protein"), class_names=["H", "E", "C"], epochs=1,
                                generate=(20, 10)))
    assert torch.equal(prot["tokenize"](prot_seqs), encoding.tokenize(prot_seqs, encoding.PROTEIN))
    assert prot["targets"](["HEC", "C"], 3).tolist() == [[0, 1, 2], [2, -100, -100]]
    out, y = torch.randn(2, 3, 3), prot["targets"](["HEC", "C"], 3)
    assert prot["loss_fn"](out, y).item() == pytest.approx(loss_function("per_residue")(out, y).item(), abs=0)


def test_the_tables_are_read_from_the_library():
    assert set(codegen.ACT_CODE) == set(ACTIVATIONS)
    for name, code in codegen.ACT_CODE.items():
        assert type(eval(code, {"nn": torch.nn})) is ACTIVATIONS[name]
    X = np.random.default_rng(0).uniform(-6, 6, (50, 2)).astype(np.float32)
    assert set(codegen.FEATURE_CODE) == set(toy.FEATURES)
    for name, code in codegen.FEATURE_CODE.items():
        assert np.allclose(eval(code, {"X": X, "np": np}), toy.FEATURES[name][1](X))
    from playground.esm import CATALOGUE

    for name, info in CATALOGUE.items():
        assert codegen.esm_architecture(name) == (info.layers, info.dim, info.heads)
        assert f"layers, dim, heads = {info.layers}, {info.dim}, {info.heads}" in codegen.esm_head_script(
            _head_spec().__class__(esm_name=name, embed_dim=info.dim, layer=info.layers), CFG, task="binary")


# ---- script_for(run, trainer): the page's run, reproduced -------------------------------------------
@pytest.mark.parametrize("values", [
    {"dataset": "xor", "noise": 10, "train_pct": 60, "balance": 25, "batch": 10, "warmup": 10, "accum": 2,
     "optimizer": "adam", "lr": 0.03, "reg": "l2", "reg_rate": 0.001, "layers": 1, "n1": 3, "seed": 3},
    {"dataset": "cubic", "noise": 5, "overfit": True, "batch": 0, "optimizer": "momentum", "lr": 0.01,
     "features": ["x1", "x1_sq"], "activation": "relu"},
], ids=["imbalanced-warmup-accum", "regression-overfit"])
def test_script_for_a_basics_run_reproduces_the_page(values, capsys):
    from playground.setups import basics

    run = basics.build(values)
    trainer = run.make_trainer()
    trainer.run_epochs(6)
    src = script_for(run, trainer, epochs=trainer.epoch)
    assert "class MLP" in src and f"SEED = {run.config.seed}" in src
    assert ("imbalance(X, y, n=500, positive_fraction=0.25" in src) == ("balance" in values)
    assert ("train on the first 10 training examples only" in src) == ("overfit" in values)
    assert f"{values.get('train_pct', 50) / 100!r}, 0.1, SEED" in src       # the page's shares
    capsys.readouterr()
    load(src)                                  # the toy script trains when it runs
    assert_same_run(capsys.readouterr().out, trainer, "accuracy" if values["dataset"] == "xor" else "pearson_r")
    assert "range(1, 100 + 1)" in script_for(run, trainer)      # the page's default: at least 100 epochs


def test_script_for_a_dna_run_reproduces_the_page(monkeypatch, capsys, tmp_path):
    from playground.setups import dna

    run = dna.build({"n": 200, "length": 30, "model": "custom", "c1": 8, "k1": 5, "dense": 8, "batch_norm": True,
                     "dropout": 0.2, "grad_clip": 1.0, "batch": 16, "seed": 2})
    trainer = run.make_trainer()
    trainer.run_epochs(2)
    src = script_for(run, trainer, epochs=2)
    assert "VAL_SEQS = [" in src and "clip_grad_norm_(model.parameters(), 1)" in src
    assert script_for(run, epochs=2) == src        # without the trainer: the same seeded split
    out = run_main(src, monkeypatch, capsys, tmp_path)
    assert_same_run(out, trainer, "accuracy")


def test_script_for_a_dna_run_with_early_stopping_and_a_schedule(monkeypatch, capsys, tmp_path):
    """The DNA page's early stopping and learning-rate schedule read validation; so does the script:
    it stops at the page's epoch, with the page's best weights, and scores the test set with them."""
    from playground.setups import dna

    run = dna.build({"n": 200, "length": 30, "model": "custom", "c1": 8, "k1": 5, "dense": 8, "lr": 0.1,
                     "batch": 16, "seed": 3, "early_stop": 2, "schedule": "plateau", "train_pct": 70, "val_pct": 15})
    trainer = run.make_trainer()
    trainer.run_epochs(30)
    assert trainer.stopped, "the run should stop early"
    src = script_for(run, trainer)
    assert "split(seqs, labels, 0.7, 0.15, SEED)" in src
    out = run_main(src, monkeypatch, capsys, tmp_path)
    assert f"early stopping at epoch {trainer.epoch}" in out and f"best epoch {trainer.best_epoch} restored" in out
    printed = val_losses(out)
    assert set(printed) <= set(range(trainer.epoch + 1))
    for epoch, loss in printed.items():
        assert loss == pytest.approx(trainer.history[epoch]["val_loss"], abs=6e-5)
    assert held_out(out)["loss"] == pytest.approx(trainer.score_test()["loss"], abs=1e-5)


def test_script_for_a_sequence_run_reproduces_the_page(monkeypatch, capsys, tmp_path):
    from playground.setups import sequence

    run = sequence.build({"dataset": "protein_ss", "n": 200, "length": 30, "family": "transformer", "t_d": 8,
                          "t_heads": 2, "t_layers": 1, "t_ff": 16, "t_dropout": 0.0, "batch": 32, "seed": 1})
    trainer = run.make_trainer()
    trainer.run_epochs(2)
    src = script_for(run, trainer, epochs=2)
    assert 'TASK = "per_residue"' in src and "TRAIN_SEQS = [" in src and "VAL_SEQS = [" in src
    out = run_main(src, monkeypatch, capsys, tmp_path)
    assert_same_run(out, trainer, "q3")


def test_length_buckets_are_the_trainers(monkeypatch, capsys, tmp_path):
    """Proteins of different lengths with length-bucketed batches (a token budget, gradient
    accumulation and a step schedule on top): the script copies the playground's LengthBuckets and
    draws each epoch's batches from the same generator, so its run is the Trainer's."""
    from playground.data import protein
    from playground.models.rnn import RNNSpec

    ps = protein.solubility_set(n=120, min_len=10, max_len=60, seed=2)
    data = protein.to_split(ps, "random", 0.7, 2, val_fraction=0.15)
    spec = RNNSpec(cell="gru", vocab_size=22, embed_dim=8, hidden=8, n_outputs=1)
    cfg = TrainConfig(optimizer="adam", lr=0.01, batch_size=8, seed=2, length_buckets=True, token_budget=240,
                      grad_accum=2, schedule="step", schedule_epochs=3)
    trainer = Trainer(build_model(spec, 2), data, cfg)
    assert trainer.bucketed
    trainer.run_epochs(3)
    src = script_for_trainer(trainer, spec, InputSpec("tokens", "protein"), epochs=3)
    assert "class LengthBuckets" in src and "TOKEN_BUDGET = 240" in src and "lr_scale = 0.5 ** (epoch // 1)" in src
    out = run_main(src, monkeypatch, capsys, tmp_path)
    assert_same_run(out, trainer, "accuracy")
