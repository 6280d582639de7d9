"""The 'Show PyTorch code' script runs as is and trains the same network."""
import re
import subprocess
import sys

from playground import TrainConfig, Trainer
from playground.codegen import toy_script
from playground.data import toy
from playground.models import MLPSpec, build_model


def run_script(src, tmp_path):
    path = tmp_path / "train_mlp.py"
    path.write_text(src)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_generated_code_runs_loss_goes_down_and_matches_the_trainer(tmp_path):
    feats = ["x1", "x2", "x1_sq"]
    cfg = TrainConfig(optimizer="adam", lr=0.03, batch_size=10, seed=2, regularization="l2", reg_rate=0.001)
    spec = MLPSpec(3, (4, 2), "relu", 1)
    data = toy.make_split("circle", 300, 0.1, 0.6, 2, feats)
    tr = Trainer(build_model(spec, 2), data, cfg)
    tr.run_epochs(15)
    out = run_script(toy_script("circle", 300, 0.1, 0.6, feats, spec, cfg, epochs=15, seed=2), tmp_path)
    losses = [float(m) for m in re.findall(r"test loss ([0-9.]+)", out)]
    assert losses[-1] < losses[0]
    final = float(re.search(r"final test loss: ([0-9.]+)", out).group(1))
    assert abs(final - tr.latest["test_loss"]) < 1e-4


def test_generated_code_for_regression_full_batch_sgd(tmp_path):
    cfg = TrainConfig(optimizer="sgd", lr=0.01, batch_size=0, seed=0)
    src = toy_script("cubic", 200, 0.0, 0.5, ["x1"], MLPSpec(1, (), "linear", 1), cfg, epochs=30, seed=0)
    assert "nn.MSELoss()" in src and "torch.optim.SGD(model.parameters(), lr=0.01)" in src
    out = run_script(src, tmp_path)
    losses = [float(m) for m in re.findall(r"test loss ([0-9.]+)", out)]
    assert losses[-1] < losses[0]
