"""The 'Show PyTorch code' script runs as is and trains the same network: the same seeded
train / validation / test split, the training and validation loss of every epoch (early stopping
and the learning-rate schedule on validation), and the test set scored once, at the end."""
import re
import subprocess
import sys

import pytest

from playground import TrainConfig, Trainer
from playground.codegen import toy_script
from playground.data import toy
from playground.models import MLPSpec, build_model

FEATS = ["x1", "x2", "x1_sq"]


def run_script(src, tmp_path):
    path = tmp_path / "train_mlp.py"
    path.write_text(src)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def exec_script(src, capsys):
    """Run a toy script here (it trains when it runs; faster than a new Python): what it printed."""
    capsys.readouterr()
    exec(compile(src, "train_mlp.py", "exec"), {"__name__": "__main__"})
    return capsys.readouterr().out


def val_losses(out) -> dict[int, float]:
    """{epoch: validation loss} of the epochs the script printed."""
    return {int(e): float(v) for e, v in re.findall(r"epoch +(\d+) +train loss [0-9.]+ +validation loss ([0-9.]+)", out)}


def held_out_scores(out) -> dict[str, float]:
    line = re.search(r"test \(held out, scored once\): (.*)", out).group(1)
    return {k: float(v) for k, v in re.findall(r"(\w+) ([-0-9.]+)", line)}


def assert_reproduces(out, trainer, min_printed=3):
    """The script printed the trainer's validation losses, epoch by epoch, and its test score."""
    printed = val_losses(out)
    assert len(printed) >= min_printed
    for epoch, loss in printed.items():
        assert loss == pytest.approx(trainer.history[epoch]["val_loss"], abs=6e-5), epoch
    scores = trainer.score_test()
    test = held_out_scores(out)
    assert test["loss"] == pytest.approx(scores["loss"], abs=1e-6)
    metric = "accuracy" if "accuracy" in test else "pearson_r"
    assert test[metric] == pytest.approx(scores[metric], abs=1e-4)
    assert "test (held out, scored once)" in out and out.count("held out") == 1


def test_generated_code_runs_loss_goes_down_and_matches_the_trainer(tmp_path):
    cfg = TrainConfig(optimizer="adam", lr=0.03, batch_size=10, seed=2, regularization="l2", reg_rate=0.001)
    spec = MLPSpec(3, (4, 2), "relu", 1)
    data = toy.make_split("circle", 300, 0.1, 0.6, 2, FEATS, val_fraction=0.15)
    tr = Trainer(build_model(spec, 2), data, cfg)
    tr.run_epochs(15)
    src = toy_script("circle", 300, 0.1, 0.6, FEATS, spec, cfg, epochs=15, seed=2, val_fraction=0.15)
    assert "split_three(len(X), 0.6, 0.15, SEED" in src and "stratify=" in src
    out = run_script(src, tmp_path)
    losses = list(val_losses(out).values())
    assert losses[-1] < losses[0]
    assert_reproduces(out, tr)
    # the test set is scored after the training loop, never inside it
    loop, end = src.split("for epoch in range(")[1].split("# ---- the test set")
    assert "x_test" not in loop and "x_test" in end and "scored once" in end


def test_early_stopping_and_the_schedule_read_validation_as_the_trainer_does(capsys):
    """Patience 2 on the validation loss and a plateau schedule: the script stops at the trainer's
    epoch, restores the same best weights and so scores the test set as the trainer does."""
    cfg = TrainConfig(optimizer="adam", lr=0.3, batch_size=10, seed=1, early_stopping=2, schedule="plateau",
                      schedule_patience=1, warmup_steps=20)
    spec = MLPSpec(3, (6,), "tanh", 1)
    data = toy.make_split("xor", 200, 0.2, 0.6, 1, FEATS)
    tr = Trainer(build_model(spec, 1), data, cfg)
    tr.run_epochs(40)
    assert tr.stopped and tr.best_epoch < tr.epoch < 40          # the run did stop early
    src = toy_script("xor", 200, 0.2, 0.6, FEATS, spec, cfg, epochs=40, seed=1)
    assert "import copy" in src and "lr_scale" in src
    out = exec_script(src, capsys)
    stop = re.search(r"early stopping at epoch (\d+): .* best epoch (\d+) restored", out)
    assert stop and (int(stop.group(1)), int(stop.group(2))) == (tr.epoch, tr.best_epoch), out
    assert_reproduces(out, tr, min_printed=2)


@pytest.mark.parametrize("schedule", ["cosine", "step"])
def test_the_cosine_and_step_schedules_match_the_trainer(schedule, capsys):
    cfg = TrainConfig(optimizer="momentum", lr=0.1, batch_size=20, seed=3, schedule=schedule, schedule_epochs=6)
    spec = MLPSpec(3, (4,), "relu", 1)
    tr = Trainer(build_model(spec, 3), toy.make_split("circle", 200, 0.1, 0.5, 3, FEATS), cfg)
    tr.run_epochs(10)
    assert tr.current_lr < cfg.lr
    out = exec_script(toy_script("circle", 200, 0.1, 0.5, FEATS, spec, cfg, epochs=10, seed=3), capsys)
    assert_reproduces(out, tr)


def test_generated_code_for_regression_full_batch_sgd(capsys):
    cfg = TrainConfig(optimizer="sgd", lr=0.01, batch_size=0, seed=0)
    spec = MLPSpec(1, (), "linear", 1)
    src = toy_script("cubic", 200, 0.0, 0.5, ["x1"], spec, cfg, epochs=30, seed=0)
    assert "nn.MSELoss()" in src and "torch.optim.SGD(model.parameters(), lr=0.01)" in src
    assert "stratify=y" not in src          # regression: a plain random split
    out = exec_script(src, capsys)
    losses = list(val_losses(out).values())
    assert losses[-1] < losses[0]
    tr = Trainer(build_model(spec, 0), toy.make_split("cubic", 200, 0.0, 0.5, 0, ["x1"]), cfg)
    tr.run_epochs(30)
    assert_reproduces(out, tr)
