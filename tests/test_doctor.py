"""The training doctor (playground/doctor.py): each diagnosis fires on a run made to have that
problem, and a healthy run hears only "healthy". The runs are real tiny Trainer runs on the toy
sets (a few hundred points, 2-D inputs) unless the problem needs a hand-made model."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from playground import TrainConfig, Trainer
from playground import doctor as D
from playground.data import toy
from playground.data.split import SplitData
from playground.models import MLPSpec, build_model


def toy_trainer(ds="circle", hidden=(4, 2), act="tanh", lr=0.03, opt="adam", n=500, noise=0.0, tf=0.5, batch=10,
                seed=1, pf=0.5, **cfg) -> Trainer:
    data = toy.make_split(ds, n, noise, tf, seed, ["x1", "x2"], positive_fraction=pf)
    model = build_model(MLPSpec(data.x_train.shape[1], hidden, act if hidden else "linear", 1), seed)
    return Trainer(model, data, TrainConfig(optimizer=opt, lr=lr, batch_size=batch, seed=seed, **cfg))


def codes_per_epoch(tr: Trainer, epochs: int, **kw) -> list[list[str]]:
    """Train epoch by epoch; the doctor's codes after each."""
    out = []
    for _ in range(epochs):
        tr.run_epochs(1)
        out.append(D.codes(D.diagnose(tr, **kw)))
        if tr.done:
            break
    return out


def one(findings, code) -> D.Finding:
    hits = [f for f in findings if f.code == code]
    assert hits, f"{code} not in {D.codes(findings)}"
    return hits[0]


def hist(train, val, **extra):
    """A history as the Trainer writes it (record 0 = before training)."""
    recs = []
    for i, (t, v) in enumerate(zip(train, val)):
        rec = {"epoch": i, "step": 10 * i, "train_loss": t, "val_loss": v}
        for k, vals in extra.items():
            rec[k] = vals[i]
        recs.append(rec)
    return recs


# ----------------------------------------------------------------------------------------------
# healthy runs stay quiet
def test_a_healthy_run_hears_only_healthy_after_every_epoch():
    tr = toy_trainer("gauss", (4,), "tanh", noise=0.2)
    per_epoch = codes_per_epoch(tr, 15)
    assert per_epoch == [["healthy"]] * 15
    f = D.diagnose(tr)[0]
    assert f.severity == "info" and f.title == "Healthy so far" and "15 epochs" in f.message
    assert f.evidence["relu_units"] == 0 and math.isfinite(f.evidence["grad_norm"])


def test_a_healthy_relu_cnn_like_run_on_xor_stays_quiet():
    tr = toy_trainer("xor", (8, 4), "relu")
    assert codes_per_epoch(tr, 12) == [["healthy"]] * 12
    assert D.diagnose(tr)[0].evidence["relu_units"] == 12


def test_before_training_the_doctor_says_ready():
    f = D.diagnose(toy_trainer())
    assert D.codes(f) == ["healthy"] and f[0].title == "Ready to train"


# ----------------------------------------------------------------------------------------------
# diverged
def test_lr_10_diverges_and_the_doctor_says_lower_the_learning_rate():
    tr = toy_trainer("cubic", (8, 8), "relu", lr=10, opt="sgd")
    tr.run_epochs(5)
    assert tr.diverged
    f = D.diagnose(tr)
    assert D.codes(f) == ["diverged"]           # nothing else: after NaN the other numbers mean nothing
    assert f[0].severity == "error"
    assert "Learning rate to 1 " in f[0].try_this and "now 10" in f[0].try_this and "Reset" in f[0].try_this


def test_diverged_from_the_history_alone():
    h = hist([0.7, 0.5, float("nan")], [0.7, 0.55, float("nan")])
    assert D.codes(D.diagnose_history(h, "binary", lr=0.3)) == ["diverged"]
    h = hist([0.7, 0.5, math.inf], [0.7, 0.55, 0.6])
    assert D.codes(D.diagnose_history(h, "binary", lr=0.3)) == ["diverged"]
    assert D.codes(D.diagnose_history(hist([0.7, 0.5], [0.7, 0.55]), "binary", diverged="diverged at epoch 2")) \
        == ["diverged"]
    assert "diverged" not in D.codes(D.diagnose_history(hist([0.7, 0.5, 0.4], [0.7, 0.55, 0.5]), "binary"))


# ----------------------------------------------------------------------------------------------
# stuck: dead ReLUs, flat output, one class
def test_dead_relu_units_after_hugely_negative_biases():
    tr = toy_trainer("circle", (8, 8), "relu")
    with torch.no_grad():
        for layer in tr.model.hidden_layers:
            layer.bias.fill_(-100.0)
    f = D.diagnose(tr)
    dead = one(f, "dead_relu")
    assert dead.severity == "error" and dead.evidence["dead"] == dead.evidence["units"] == 16
    tr.run_epochs(3)                            # no gradient flows: they stay dead
    f = D.diagnose(tr)
    assert "dead_relu" in D.codes(f)
    assert "flat_output" not in D.codes(f)      # the dead layer is the cause; the flat output its symptom
    assert "lr_too_low" not in D.codes(f) and "underfitting" not in D.codes(f)
    # over half dead, no whole layer: a warning naming how many
    tr2 = toy_trainer("circle", (8, 8), "relu")
    with torch.no_grad():
        tr2.model.hidden_layers[0].bias[:5] = -100.0
        tr2.model.hidden_layers[1].bias[:4] = -100.0
    d2 = one(D.diagnose(tr2), "dead_relu")
    assert d2.severity == "warning" and d2.evidence["dead"] >= 9 and not d2.evidence["whole_layers_dead"]
    assert f"{d2.evidence['dead']} of 16 ReLU units" in d2.message


def test_a_fresh_relu_net_has_no_dead_units_report():
    assert "dead_relu" not in D.codes(D.diagnose(toy_trainer("circle", (8, 8), "relu")))


def test_dead_units_counted_per_channel_in_a_cnn():
    """Conv outputs are (batch, channels, positions): a unit is a channel, dead when 0 at every
    position of every example."""
    from playground.models.cnn import CNNSpec

    x = torch.randn(64, 4, 20)
    y = (x[:, 0].sum(1) > 0).float()
    data = SplitData(x[:40], y[:40], x[50:], y[50:], "binary", x_val=x[40:50], y_val=y[40:50])
    spec = CNNSpec(length=20, channels=(8,), kernel_sizes=(3,), padding="valid", activation="relu",
                   pool="max", pool_size=2, dense=(), n_outputs=1)
    model = build_model(spec, 0)
    with torch.no_grad():
        model.convs[0].conv.bias[:5] = -1000.0
    probe = D.output_probe(model, x[:32])
    conv = probe["relu_layers"][0]
    assert conv["units"] == 8 and conv["dead"] == 5


def test_flat_output_under_a_crushing_l2_penalty_names_the_regularization_rate():
    tr = toy_trainer(regularization="l2", reg_rate=3.0)
    per_epoch = codes_per_epoch(tr, 6)
    assert per_epoch[-1] == ["flat_output"]
    f = one(D.diagnose(tr), "flat_output")
    assert "Regularization rate to 0.03" in f.try_this and f.evidence["spread"] < D.FLAT_OUTPUT_STD


class Const3(nn.Module):
    """Three logits that all move with the input by the same amount: softmax sees a constant."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.b = nn.Parameter(torch.tensor([0.5, 0.0, -0.5]))

    def forward(self, x):
        return x[:, :1] * self.w + self.b


def test_flat_output_for_several_classes_looks_at_probabilities_not_raw_logits():
    x = torch.randn(200, 2)
    y = torch.randint(0, 3, (200,))
    data = SplitData(x[:150], y[:150], x[175:], y[175:], "multiclass", n_classes=3, x_val=x[150:175],
                     y_val=y[150:175])
    tr = Trainer(Const3(), data, TrainConfig(lr=1e-5, batch_size=50))
    tr.run_epochs(1)
    f = D.diagnose(tr)
    assert "flat_output" in D.codes(f)
    assert D.diagnose(tr)[0].evidence["spread"] < 1e-6


class PaddingNoise(nn.Module):
    """Per-residue logits: the same 3 numbers at every real residue, anything at padding."""

    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.tensor([0.3, 0.0, -0.3]))
        self.pad = nn.Parameter(torch.randn(3))

    def forward(self, tokens):
        pad = (tokens == 0).float()[..., None]
        return self.b + pad * self.pad * tokens.shape[1] * torch.arange(tokens.shape[1])[None, :, None]


def test_per_residue_flat_output_reads_only_real_residues():
    g = torch.Generator().manual_seed(0)
    tok = torch.randint(1, 21, (120, 30), generator=g)
    y = torch.randint(0, 3, (120, 30), generator=g)
    tok[:, 20:] = 0
    y[:, 20:] = -100                       # padding: ignored by the loss and by the doctor
    data = SplitData(tok[:80], y[:80], tok[100:], y[100:], "per_residue", n_classes=3, x_val=tok[80:100],
                     y_val=y[80:100])
    tr = Trainer(PaddingNoise(), data, TrainConfig(lr=1e-5, batch_size=40))
    tr.run_epochs(1)
    assert "flat_output" in D.codes(D.diagnose(tr))
    with torch.no_grad():                  # a real residue's answer now depends on the residue
        tr.model.b.data = torch.zeros(3)
    tr.model.forward = lambda t: torch.nn.functional.one_hot(t % 3, 3).float() * 2
    assert "flat_output" not in D.codes(D.diagnose(tr))


def test_predicting_one_class_for_everything_on_imbalanced_data():
    """A straight line cannot cut a circle out: on 10 % positives it answers 'class 0' for all."""
    tr = toy_trainer("circle", (), pf=0.1)
    codes_per_epoch(tr, 6)
    f = D.diagnose(tr, page="basics")
    stuck = one(f, "stuck_one_class")
    assert stuck.evidence["share"] >= D.ONE_CLASS_SHARE and stuck.evidence["predicted_class"] == "class 0"
    assert "Neurons per layer" in stuck.try_this          # not a learning-rate problem: no capacity
    assert "majority_rate" not in D.codes(f)              # explained by the stuck finding


def test_majority_rate_with_mcc_near_zero_from_tracked_metrics_and_from_the_probe():
    for track in (True, False):
        tr = toy_trainer("xor", (), pf=0.25, noise=0.5, lr=0.003, track_metrics=track)
        seen = set()
        for _ in range(8):
            tr.run_epochs(1)
            seen |= set(D.codes(D.diagnose(tr)))
        assert "majority_rate" in seen, track
    h = hist([0.6] * 6, [0.6] * 6, val_accuracy=[0.5, 0.88, 0.9, 0.9, 0.9, 0.91], val_mcc=[0, 0.01, 0.02, 0, 0, 0.03])
    f = one(D.diagnose_history(h, "binary", majority=0.9, majority_label="non-promoter", lr=0.003), "majority_rate")
    assert "'non-promoter'" in f.message and "90.0%" in f.message and "imbalanced" in f.message
    ok = hist([0.6] * 6, [0.6] * 6, val_accuracy=[0.5, 0.88, 0.9, 0.93, 0.95, 0.96], val_mcc=[0, .1, .3, .5, .6, .7])
    assert "majority_rate" not in D.codes(D.diagnose_history(ok, "binary", majority=0.9))


# ----------------------------------------------------------------------------------------------
# overfitting and underfitting
def test_memorising_a_small_noisy_set_is_overfitting():
    tr = toy_trainer("circle", (32, 32, 32), "relu", lr=0.01, n=300, noise=0.5, tf=0.1, batch=5)
    per_epoch = codes_per_epoch(tr, 30)
    assert all("overfitting" in c for c in per_epoch[-10:])         # and it stays so
    assert not any("overfitting" in c for c in per_epoch[:4])       # not before the trend can show
    f = one(D.diagnose(tr), "overfitting")
    assert f.evidence["val_loss_now"] > f.evidence["val_loss_best"] and "Early stopping" in f.try_this
    tr.config.early_stopping = 5              # already on: the suggestion moves to regularization
    assert "L2" in one(D.diagnose(tr, page="basics"), "overfitting").try_this


def test_overfitting_from_the_history_and_not_from_noise():
    train = [0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08, 0.05, 0.03]
    val = [0.7, 0.52, 0.42, 0.40, 0.43, 0.47, 0.52, 0.58, 0.64]
    assert "overfitting" in D.codes(D.diagnose_history(hist(train, val), "binary", chance_loss=0.693))
    noisy = [0.7, 0.52, 0.42, 0.40, 0.43, 0.39, 0.42, 0.38, 0.41]          # wobbling, not rising
    assert "overfitting" not in D.codes(D.diagnose_history(hist(train, noisy), "binary", chance_loss=0.693))
    flat_train = [0.7, 0.5, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45]        # training not falling
    assert "overfitting" not in D.codes(D.diagnose_history(hist(flat_train, val), "binary", chance_loss=0.693))


def test_a_linear_model_on_xor_is_underfitting():
    tr = toy_trainer("xor", ())
    per_epoch = codes_per_epoch(tr, 10)
    assert per_epoch[-1] == ["underfitting"]
    f = D.diagnose(tr, page="basics")[0]
    assert f.evidence["ratio_to_chance"] > D.HIGH_LOSS and "Hidden layers" in f.try_this
    assert "underfitting" not in D.codes(D.diagnose_history(hist([0.7] + [0.2] * 7, [0.7] + [0.25] * 7),
                                                            "binary", chance_loss=0.693, lr=0.03))


# ----------------------------------------------------------------------------------------------
# the learning rate
def test_lr_1e5_is_too_low():
    tr = toy_trainer(lr=1e-5)
    per_epoch = codes_per_epoch(tr, 4)
    assert per_epoch[-1] == ["lr_too_low"]
    assert per_epoch[0] == ["healthy"]            # not judged before LOW_LR_EPOCHS
    f = D.diagnose(tr)[0]
    assert "raise the Learning rate to 0.0001" in f.try_this and abs(f.evidence["relative_change"]) < D.LOW_LR_MOVE


def test_a_slow_steady_crawl_at_the_basics_defaults_is_too_low_and_the_next_step_up_is_fine():
    slow = toy_trainer(lr=0.03, opt="sgd")
    assert codes_per_epoch(slow, 8)[-1] == ["lr_too_low"]
    assert "Learning rate to 0.1" in D.diagnose(slow)[0].try_this
    assert codes_per_epoch(toy_trainer(lr=0.1, opt="sgd"), 8)[-1] == ["healthy"]


def test_sgd_at_lr_10_oscillates_and_is_too_high():
    tr = toy_trainer("circle", (8,), "tanh", lr=10, opt="sgd")
    per_epoch = codes_per_epoch(tr, 8)
    assert not tr.diverged and per_epoch[-1] == ["lr_too_high"]
    f = D.diagnose(tr)[0]
    assert "lower the Learning rate to 3 " in f.try_this and f.evidence["rises"] >= 2


def test_oscillation_from_the_history_and_a_converged_wobble_is_not():
    up_down = [0.7, 0.5, 0.9, 0.45, 0.95, 0.5, 0.85, 0.4, 0.9]
    assert "lr_too_high" in D.codes(D.diagnose_history(hist(up_down, up_down), "binary", chance_loss=0.693, lr=1))
    wobble = [0.7, 0.2, 0.05, 0.02, 0.03, 0.015, 0.025, 0.012, 0.02]         # tiny next to chance
    assert "lr_too_high" not in D.codes(D.diagnose_history(hist(wobble, wobble), "binary", chance_loss=0.693, lr=.03))


# ----------------------------------------------------------------------------------------------
# non-finite gradients
class NormNet(nn.Module):
    """A hand-written length ||h|| = sqrt(sum h²) of a layer whose outputs are all 0: the output
    and the loss are finite, but the gradient of sqrt at 0 is infinite, and inf * 0 = NaN."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 3)
        with torch.no_grad():
            self.lin.weight.zero_()
            self.lin.bias.zero_()

    def forward(self, x):
        return (self.lin(x) ** 2).sum(-1, keepdim=True).sqrt()


def test_nan_gradients_are_found_before_they_wreck_the_weights():
    tr = toy_trainer()
    tr = Trainer(NormNet(), tr.data, TrainConfig(lr=0.01, batch_size=10))
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    f = D.diagnose(tr)
    nan = one(f, "nonfinite_grad")
    assert nan.severity == "error" and "lin.weight" in nan.evidence["bad_parameters"]
    assert math.isfinite(nan.evidence["loss"])
    assert all(torch.equal(before[k], v) for k, v in tr.model.state_dict().items())
    assert all(p.grad is None for p in tr.model.parameters())


def test_nan_in_the_data_is_named_as_a_data_problem():
    x = torch.randn(100, 2)
    y = x[:, 0].clone()
    y[7] = float("nan")
    data = SplitData(x[:60], y[:60], x[80:], y[80:], "regression", x_val=x[60:80], y_val=y[60:80])
    tr = Trainer(build_model(MLPSpec(2, (4,), "tanh", 1), 0), data, TrainConfig(lr=0.01))
    f = one(D.diagnose(tr), "nonfinite_grad")
    assert f.evidence["where"] == ["labels"] and "fix the file" in f.try_this


# ----------------------------------------------------------------------------------------------
# the probes change nothing, cost little, and the doctor never raises
def test_diagnosing_every_step_leaves_the_run_exactly_as_it_would_have_been():
    def make():
        data = toy.make_split("circle", 300, 0.1, 0.5, 3, ["x1", "x2"])
        model = build_model(MLPSpec(2, (8, 8), "relu", 1, dropout=0.3), 3)
        return Trainer(model, data, TrainConfig(lr=0.01, batch_size=10, grad_accum=2, seed=3))

    plain = make()                  # dropout draws from torch's global generator: one run at a time
    plain.run_epochs(4)
    watched = make()
    for _ in range(4 * watched.steps_per_epoch):
        watched.step(1)
        grads = [None if p.grad is None else p.grad.clone() for p in watched.model.parameters()]
        mode = watched.model.training
        D.diagnose(watched)
        assert watched.model.training == mode
        for g, p in zip(grads, watched.model.parameters()):       # mid-accumulation sums survive
            assert (g is None and p.grad is None) or torch.equal(g, p.grad)
    assert [r["train_loss"] for r in plain.history] == [r["train_loss"] for r in watched.history]
    assert [r["val_loss"] for r in plain.history] == [r["val_loss"] for r in watched.history]
    assert all(torch.equal(a, b) for a, b in zip(plain.model.state_dict().values(),
                                                 watched.model.state_dict().values()))
    watched.model.eval()
    D.diagnose(watched)
    assert not watched.model.training


def test_the_probes_are_cheap_on_a_playground_model():
    tr = toy_trainer("xor", (8, 8), "relu", n=500)
    tr.run_epochs(2)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        D.diagnose(tr)
        times.append(time.perf_counter() - t0)
    print(f"doctor on a 2-8-8-1 MLP: min {min(times) * 1e3:.1f} ms, median {np.median(times) * 1e3:.1f} ms")
    assert min(times) < 0.03


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.armed = False

    def forward(self, x):
        if self.armed:
            raise RuntimeError("boom")
        return self.lin(x)


def test_the_doctor_never_raises():
    tr = toy_trainer()
    tr = Trainer(Broken(), tr.data, TrainConfig(lr=0.01))
    tr.run_epochs(2)
    tr.model.armed = True
    assert D.codes(D.diagnose(tr)) == ["healthy"]          # the probes failed quietly; the history is fine
    assert D.diagnose(object()) == []
    assert D.diagnose_history([{"epoch": "x", "train_loss": "abc"}, None], "binary") == []
    assert D.codes(D.diagnose_history([], "binary")) == ["healthy"]
    released = toy_trainer()
    released.run_epochs(1)
    released.release_memory()
    assert D.codes(D.diagnose(released)) == ["healthy"]


def test_old_histories_with_test_loss_read_the_same():
    train = [0.7, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08, 0.05, 0.03]
    val = [0.7, 0.52, 0.42, 0.40, 0.43, 0.47, 0.52, 0.58, 0.64]
    old = [{"epoch": i, "train_loss": t, "test_loss": v} for i, (t, v) in enumerate(zip(train, val))]
    assert "overfitting" in D.codes(D.diagnose_history(old, "binary", chance_loss=0.693))


def test_label_stats_and_fast_mcc():
    from sklearn.metrics import matthews_corrcoef

    s = D.label_stats("binary", torch.tensor([0.0, 0, 0, 1]))
    assert s["majority"] == 0.75 and s["majority_class"] == 0
    assert s["chance_loss"] == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    s = D.label_stats("per_residue", torch.tensor([[0, 1, 2, -100], [2, 2, -100, -100]]), 3)
    assert s["majority"] == pytest.approx(0.6) and s["majority_class"] == 2
    assert D.label_stats("regression", torch.tensor([1.0, 3.0]))["chance_loss"] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    for k in (2, 3, 5):
        a = rng.integers(0, k, 300)
        b = np.where(rng.random(300) < 0.5, a, rng.integers(0, k, 300))
        assert D.fast_mcc(torch.tensor(a), torch.tensor(b)) == pytest.approx(matthews_corrcoef(a, b))
    assert D.fast_mcc(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 0])) == 0.0


def test_learning_rate_suggestions_come_from_the_page_list():
    assert D.lr_down(0.03) == 0.01 and D.lr_up(0.03) == 0.1 and D.lr_up(1e-5) == 1e-4
    assert D.lr_safer(0.003, "adam") == 0.001          # the non-TATA primer CNN: collapses at 0.003
    assert D.lr_safer(10, "sgd") == 1.0


# ----------------------------------------------------------------------------------------------
# the view
def test_render_doctor_shows_one_alert_per_finding_and_the_checklist():
    from streamlit.testing.v1 import AppTest

    def page():
        import streamlit as st
        import torch

        from playground import TrainConfig, Trainer
        from playground.data import toy
        from playground.models import MLPSpec, build_model
        from playground.ui.doctor_view import render_doctor

        data = toy.make_split("circle", 200, 0.0, 0.5, 1, ["x1", "x2"])
        which = st.session_state.get("which", "healthy")
        lr = 10.0 if which == "diverged" else 0.03
        tr = Trainer(build_model(MLPSpec(2, (4,), "relu", 1), 1), data,
                     TrainConfig(optimizer="sgd" if which == "diverged" else "adam", lr=lr, batch_size=10))
        if which == "dead":
            with torch.no_grad():
                tr.model.hidden_layers[0].bias.fill_(-100.0)
        tr.run_epochs(3)
        render_doctor(tr, page="basics")

    at = AppTest.from_function(page, default_timeout=60).run()
    assert not at.exception
    assert any("Healthy so far" in m.value for m in at.markdown)
    assert not at.error and not at.warning
    assert at.expander[0].label == "🩺 How the doctor decides"
    assert any("NaN gradients" in m.value for m in at.markdown)
    at.session_state["which"] = "dead"
    at.run()
    assert not at.exception and at.error and "Dead ReLU" in at.error[0].value and "Try:" in at.error[0].value
