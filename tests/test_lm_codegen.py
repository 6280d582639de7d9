"""The Language models page's 'Show PyTorch code': the exported script trains the same LM with the
same masking, and prints the Trainer's losses for the same seed."""
import re
import subprocess
import sys

import pytest

from playground import TrainConfig
from playground.codegen import lm_script_for_trainer
from playground.lm.corpus import make_corpus
from playground.lm.tokens import Tokenizer
from playground.lm.training import lm_run

LINE = re.compile(r"epoch +(\d+) +train loss ([0-9.]+) +validation loss ([0-9.]+) +bits/token ([0-9.]+) +accuracy ([0-9.]+)")


@pytest.mark.parametrize("objective", ["masked"])     # "causal" passes too (k-mer tokens); left out for time
def test_the_lm_script_reproduces_the_trainers_first_losses(objective, tmp_path):
    tok = Tokenizer("dna", "kmer_overlap", 2) if objective == "causal" else Tokenizer("dna", "char")
    corpus = make_corpus("dna", 60, 24, seed=4, motifs=("TGACTCA",))
    run = lm_run(tok, corpus, objective, seed=4, d_model=16, heads=2, layers=1, ff=16,
                 config=TrainConfig(optimizer="adam", lr=0.003, batch_size=8, seed=4, warmup_steps=5, grad_clip=1.0,
                                    early_stopping=3, schedule="plateau", regularization="l2", reg_rate=1e-4))
    run.trainer.run_epochs(2)
    src = lm_script_for_trainer(run.trainer, run.spec, tok, corpus, epochs=2)
    if objective == "masked":
        assert "def mask_tokens(" in src and "mask_tokens(x_batch, shuffle, **MASKING)" in src
    assert "clip_grad_norm_" in src and "early stopping" in src and "warm-up" in src
    path = tmp_path / "train_lm.py"
    path.write_text(src)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    printed = {int(m[0]): [float(v) for v in m[1:]] for m in LINE.findall(out.stdout)}
    assert sorted(printed) == [0, 1, 2]
    for epoch, (train_loss, val_loss, bits, acc) in printed.items():
        rec = run.trainer.history[epoch]
        assert val_loss == pytest.approx(rec["val_loss"], abs=2e-4), epoch
        assert bits == pytest.approx(rec["val_bits"], abs=2e-4)
        assert acc == pytest.approx(rec["val_acc"], abs=2e-4)
        assert train_loss == pytest.approx(rec["train_loss"], abs=2e-4)


def test_the_lm_script_follows_the_runs_settings():
    """Gradient accumulation and the stored order (no shuffling) are written in when the run uses them."""
    tok = Tokenizer("dna", "char")
    corpus = make_corpus("dna", 30, 20, seed=1, motifs=("TGACTCA",))
    run = lm_run(tok, corpus, "causal", seed=1, d_model=8, heads=2, layers=1, ff=8,
                 config=TrainConfig(batch_size=4, seed=1, grad_accum=2, shuffle=False, schedule="cosine"))
    src = lm_script_for_trainer(run.trainer, run.spec, tok, corpus, epochs=1)
    compile(src, "train_lm.py", "exec")
    assert "torch.arange(n_train)" in src and "(loss / 2).backward()" in src and "math.cos" in src
    assert "MASKING = None" in src


def test_the_finetune_script_loads_the_lm_and_reproduces_the_pretrained_run(tmp_path):
    import torch

    from playground.codegen import finetune_script_for
    from playground.lm import finetune

    tok = Tokenizer("dna", "char")
    corpus = make_corpus("dna", 80, 24, seed=2, motifs=("TGACTCA",))
    lm = lm_run(tok, corpus, "masked", seed=2, d_model=16, heads=2, layers=1, ff=16)
    lm.trainer.run_epochs(1)
    torch.save({"state_dict": lm.model.state_dict()}, tmp_path / "trained_lm.pt")   # what the LM script saves
    res = finetune.finetune_trainers(lm.model, tok, finetune.motif_task(corpus, 60), n_labels=24,
                                     config=finetune.finetune_config(2, batch_size=8), seed=2)
    res.pretrained.run_epochs(3)
    src = finetune_script_for(res, tok, epochs=3)
    path = tmp_path / "finetune.py"
    path.write_text(src)
    out = subprocess.run([sys.executable, str(path), "--pretrained", "trained_lm.pt"], capture_output=True, text=True,
                         timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    printed = {int(e): float(v) for e, v in
               re.findall(r"epoch +(\d+) +train loss [0-9.]+ +validation loss ([0-9.]+)", out.stdout)}
    assert len(printed) >= 3 and "body loaded" in out.stdout
    for epoch, loss in printed.items():
        assert loss == pytest.approx(res.pretrained.history[epoch]["val_loss"], abs=6e-5), epoch
    test = float(re.search(r"held out, scored once\): loss ([0-9.]+)", out.stdout).group(1))
    assert test == pytest.approx(res.pretrained.score_test()["loss"], abs=1e-5)
