"""The training doctor: after each epoch, a short plain-language diagnosis with one thing to try.

    from playground.doctor import diagnose
    for f in diagnose(trainer):                 # after trainer.run_epochs(...)
        print(f.severity, f.title, "-", f.message, "Try:", f.try_this, f.evidence)

This is the course's debugging checklist (NaN gradients, output range, overfit one batch) run live.
``diagnose(trainer)`` reads the run's history and runs two cheap probes on the model:

- an **output probe**: forward passes (eval mode, no gradients) over at most ``PROBE_BATCH``
  validation examples, stopping after ``PROBE_SECONDS``, with forward hooks on every ``nn.ReLU``:
  is the output the same for every input, is every prediction the same class, how many ReLU units
  are dead (0 for every example);
- a **gradient probe**: one backward pass on a training batch of the run's batch size (16 to
  ``PROBE_BATCH`` examples, so it costs about one training step) with
  ``torch.autograd.grad``, so the weights, their ``.grad`` (a run in the middle of gradient
  accumulation keeps its sum), the optimizer and every random generator are untouched; the
  model's train/eval mode is restored.

``diagnose_history(history, task, ...)`` is the part that needs only the numbers (easy to test, and
usable on a saved run's history). Both return a list of ``Finding`` s, the most serious first; a
run with nothing wrong gets one finding with code ``"healthy"``. Neither ever raises: a check that
fails is skipped (and logged at debug level).

Codes: diverged, nonfinite_grad, dead_relu, flat_output, stuck_one_class, majority_rate,
overfitting, underfitting, lr_too_high, lr_too_low, healthy. The thresholds are the constants
below; ``CHECKS`` says in words how each one decides (the page shows it).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from playground.train import LEARNING_RATES

log = logging.getLogger(__name__)

PROBE_BATCH = 256             # examples per probe at most
PROBE_SECONDS = 0.02          # the output probe stops after this long (at least one chunk)
PATIENCE = 3                  # overfitting: validation loss above its best for this many epochs
FLAT_EPOCHS = 5               # underfitting: epochs over which both losses must be flat
FLAT_CHANGE = 0.03            # "flat": the loss moved less than 3 % over FLAT_EPOCHS
HIGH_LOSS = 0.8               # "high": at least 80 % of the chance loss
LOW_LR_EPOCHS = 3             # too low: judged after this many epochs
LOW_LR_MOVE = 0.02            # ... when the training loss moved less than 2 % since epoch 0
OSC_WINDOW = 10               # too high: the last 10 epochs of training loss
FLAT_OUTPUT_STD = 0.01        # output spread (logits) below this: the same answer for everything
ONE_CLASS_SHARE = 0.99        # stuck: at least 99 % of the predictions are one class
MAJORITY_MARGIN = 0.02        # majority rate: accuracy at most 2 points above always-the-majority
MCC_NEAR_ZERO = 0.1           # ... and |MCC| below this
DEAD_SHARE = 0.5              # dead ReLUs: at least half of the units dead
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
ORDER = ("diverged", "nonfinite_grad", "dead_relu", "flat_output", "stuck_one_class", "majority_rate",
         "lr_too_high", "overfitting", "underfitting", "lr_too_low", "healthy")

# How each check decides, in words (the page's "How the doctor decides").
CHECKS = [
    ("Diverged", "the training or validation loss became NaN or infinite (the run stops)."),
    ("NaN gradients", f"one backward pass on up to {PROBE_BATCH} training examples, without changing the "
                      "weights: every gradient must be a finite number."),
    ("Dead ReLUs", f"one forward pass on up to {PROBE_BATCH} validation examples: a ReLU unit that outputs 0 "
                   f"for every example is dead (it passes no gradient); {DEAD_SHARE:.0%} or more dead, or a "
                   "whole layer dead, is reported."),
    ("Output range", f"the same pass: outputs that hardly differ between examples (spread below "
                     f"{FLAT_OUTPUT_STD} in logits; for regression 1 % of the labels' spread) mean the network "
                     f"gives everyone the same answer; {ONE_CLASS_SHARE:.0%} of predictions in one class means "
                     "it predicts one class for everything."),
    ("Majority rate", f"accuracy at most {MAJORITY_MARGIN * 100:.0f} points above always answering the most "
                      f"common class, with MCC near 0 (|MCC| < {MCC_NEAR_ZERO}): accuracy looks fine on "
                      "imbalanced labels, MCC tells the truth."),
    ("Overfitting", f"the validation loss has been above its best for {PATIENCE}+ epochs and is rising, while "
                    "the training loss keeps falling."),
    ("Underfitting", f"over the last {FLAT_EPOCHS} epochs both losses moved less than {FLAT_CHANGE:.0%} and "
                     f"are still at least {HIGH_LOSS:.0%} of the chance loss (the loss of always predicting "
                     "the class shares, or the mean for regression)."),
    ("Learning rate too high", f"over the last {OSC_WINDOW} epochs the training loss goes up about as often as "
                               "it goes down (oscillates), or ends well above where it started."),
    ("Learning rate too low", f"after {LOW_LR_EPOCHS}+ epochs the training loss moved less than "
                              f"{LOW_LR_MOVE:.0%} from where it started, at a small learning rate."),
    ("Overfit one batch", "the course's sanity check, by hand: a network that cannot drive the loss of a "
                          "single batch near 0 has a bug or too little capacity. On the Basics page: "
                          "'Overfit one batch (sanity check)'."),
]

# The controls a suggestion names, per page (None: words that fit every page).
PAGE_HINTS = {
    None: {"overfit": "add regularization: raise Dropout to 0.3 where the page has it (on the Basics page: "
                      "Regularization L2, rate 0.001), or use more training data",
           "capacity": "give the model more room: more neurons per layer, filters or hidden layers",
           "activation": "switch the Activation to LeakyReLU or Tanh, then press ↺ Reset"},
    "basics": {"overfit": "set Regularization to L2 with a Regularization rate of 0.001",
               "capacity": "give the network more room: raise Neurons per layer or Hidden layers (or add "
                           "input features such as x1², x2²)",
               "activation": "switch the Activation to Tanh or LeakyReLU, then press ↺ Reset"},
    "dna": {"overfit": "raise Dropout to 0.3 (Model: Custom CNN), or use more sequences",
            "capacity": "give the model more room: more filters (Model: Custom CNN, Filters) or a wider Dense layer",
            "activation": "pick Model: Custom CNN with Activation LeakyReLU, then press ↺ Reset"},
    "sequence": {"overfit": "raise Dropout to 0.3, or use more sequences",
                 "capacity": "give the model more room: a larger d_model or Hidden size, or one more of its Layers",
                 "activation": "press ↺ Reset with another Seed (other starting weights)"},
}

# Pages with an "Early stopping" control (None: any page; the suggestion names it when it is off).
EARLY_STOPPING_PAGES = {None, "dna", "sequence"}


@dataclasses.dataclass
class Finding:
    code: str                   # 'diverged', 'overfitting', ..., 'healthy'
    severity: str               # 'error' | 'warning' | 'info'
    title: str
    message: str                # what is happening, in plain words
    try_this: str               # one concrete thing to change (naming the page's control)
    evidence: dict = dataclasses.field(default_factory=dict)   # the numbers behind it

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------------------------
# small helpers
def _f(x: float) -> str:
    """A number as a student reads it: 3 significant digits."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("∞" if x > 0 else "-∞")
    return f"{x:.3g}"


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def lr_down(lr: float) -> float:
    """The next smaller learning rate on the page's list (a tenth below its end)."""
    lower = [v for v in LEARNING_RATES if v < lr * (1 - 1e-9)]
    return max(lower) if lower else lr / 10


def lr_safer(lr: float, optimizer: str = "adam") -> float:
    """A learning rate clearly below ``lr`` for a run that broke (diverged, dead units, the same
    output for everything): Adam's usual 0.001 for Adam and AdamW above it (the non-TATA
    primer CNN collapses at 0.003 and learns at 0.001), else about a tenth, from the page's list."""
    if optimizer in ("adam", "adamw") and lr > 0.001 * (1 + 1e-9):
        return 0.001
    target = lr / 10
    return min(LEARNING_RATES, key=lambda v: abs(math.log(v / target))) if lr > 0 else 0.001


def _lr_is_high(lr: float, optimizer: str = "adam") -> bool:
    """Above the usual range: Adam's 0.001, or 0.1 for plain SGD."""
    return lr > (0.001 if optimizer in ("adam", "adamw") else 0.1) * (1 + 1e-9)


def lr_up(lr: float) -> float:
    """The next larger learning rate on the page's list (ten times more above its end)."""
    higher = [v for v in LEARNING_RATES if v > lr * (1 + 1e-9)]
    return min(higher) if higher else lr * 10


def _series(history: list[dict], *keys: str) -> list[float]:
    """One value per record: the first of ``keys`` a record has (NaN when none)."""
    out = []
    for rec in history:
        v = float("nan")
        for k in keys:
            if k in rec and rec[k] is not None:
                try:
                    v = float(rec[k])
                except (TypeError, ValueError):
                    v = float("nan")
                break
        out.append(v)
    return out


def _val_key(history: list[dict], name: str) -> list[float]:
    """The validation series of ``name`` ('loss', 'accuracy' ...); old histories said 'test_'."""
    return _series(history, f"val_{name}", f"test_{name}")


def _has(values: list[float]) -> bool:
    return any(_finite(v) for v in values)


def _hints(page: str | None) -> dict:
    return PAGE_HINTS.get(page, PAGE_HINTS[None])


# ----------------------------------------------------------------------------------------------
# what needs only the history
def _history_findings(history: list[dict], task: str, *, chance_loss: float | None = None,
                      majority: float | None = None, majority_label: str | None = None,
                      lr: float | None = None, optimizer: str = "adam", diverged: str | None = None,
                      early_stopping: int = 0, page: str | None = None, patience: int = PATIENCE,
                      flat_epochs: int = FLAT_EPOCHS) -> list[Finding]:
    found: list[Finding] = []
    hints = _hints(page)
    train = _series(history, "train_loss")
    val = _val_key(history, "loss")
    epochs = _series(history, "epoch")
    lr_now = lr if lr is not None else (_series(history[-1:], "lr")[0] if history else float("nan"))
    lr_txt = f" (now {_f(lr_now)})" if _finite(lr_now) else ""

    def check(fn):
        try:
            f = fn()
            if f is not None:
                found.append(f)
        except Exception:        # a check never breaks the page
            log.debug("doctor: history check %s failed", getattr(fn, "__name__", fn), exc_info=True)

    # -- diverged ----------------------------------------------------------------------------
    def diverged_check():
        bad = [i for i, (a, b) in enumerate(zip(train, val))
               if (not math.isnan(a) and not math.isfinite(a)) or (not math.isnan(b) and not math.isfinite(b))
               or (math.isnan(a) and i > 0)]
        if not diverged and not bad:
            return None
        at = int(epochs[bad[0]]) if bad and _finite(epochs[bad[0]]) else (len(history))
        down = lr_safer(lr_now, optimizer) if _finite(lr_now) else 0.001
        return Finding(
            "diverged", "error", "Training diverged",
            f"The loss became NaN or infinite (epoch {at}): the weights were pushed so far that the numbers "
            "overflowed, and training stopped. Nothing after this point can be trusted.",
            f"lower the Learning rate to {_f(down)}{lr_txt} and press ↺ Reset to start again.",
            {"epoch": at, "lr": lr_now, "message": diverged or ""})

    check(diverged_check)
    if found:
        return found            # after divergence the other numbers mean nothing

    n_ep = len(history) - 1     # epochs trained (record 0 is before training)

    # -- overfitting ---------------------------------------------------------------------------
    def overfitting_check():
        if not _has(val) or n_ep < patience + 2:
            return None
        # a 3-epoch moving average, so that one noisy epoch of a small validation set is no trend
        vals = _smooth([v if _finite(v) else np.inf for v in val])
        trs = _smooth([v if _finite(v) else np.inf for v in train])
        best = int(np.argmin(vals))
        now = len(vals) - 1
        since = now - best
        if since < patience:
            return None
        v_best, v_now, v_back = vals[best], vals[now], vals[now - patience]
        t_best, t_now = trs[best], trs[now]
        noise = float(np.median(np.abs(np.diff([v for v in val if _finite(v)])))) if len(val) > 2 else 0.0
        margin = max(0.03 * v_best, 0.5 * noise, 0.01 * (chance_loss or 0.0), 1e-6)
        rising = v_now > v_best + margin and v_now >= v_back
        falling = math.isfinite(t_best) and math.isfinite(t_now) and t_now < t_best * 0.97
        if not (rising and falling):
            return None
        v_raw_best = min(v for v in val if _finite(v))
        try_this = (f"set Early stopping (patience in epochs) to {max(patience, 5)}: training then stops at the "
                    "best validation epoch and keeps its weights"
                    if not early_stopping and page in EARLY_STOPPING_PAGES else hints["overfit"])
        best_ep = int(epochs[best]) if _finite(epochs[best]) else best
        return Finding(
            "overfitting", "warning", "Overfitting: memorising the training set",
            f"The validation loss was lowest around epoch {best_ep} ({_f(v_raw_best)}) and has risen for {since} "
            f"epochs (now {_f(val[-1])}), while the training loss kept falling (now {_f(train[-1])}). The "
            "network is learning details of the training examples that do not carry over to new ones.",
            try_this + ".",
            {"best_epoch": best_ep, "val_loss_best": float(v_raw_best), "val_loss_now": float(val[-1]),
             "train_loss_now": float(train[-1]), "epochs_since_best": since,
             "smoothed_val_rise": float(v_now - v_best)})

    # -- learning rate too high: the loss oscillates or climbs -----------------------------------
    def lr_high_check():
        if n_ep < 4:
            return None
        window = [v for v in train[-(OSC_WINDOW + 1):] if _finite(v)]
        if len(window) < 5:
            return None
        L = np.asarray(window)
        d = np.diff(L)
        # jumps are measured against the chance loss: a converged loss of 0.01 that wobbles to
        # 0.03 is no problem; a rise worth a tenth of what guessing scores is
        scale = chance_loss if chance_loss else max(float(np.median(L)), 1e-8)
        ups = d[d > 0.02 * scale]
        up_total, abs_total = float(d[d > 0].sum()), float(np.abs(d).sum())
        oscillating = (len(ups) >= 2 and abs_total > 0 and up_total / abs_total >= 0.3
                       and float(d.max()) >= 0.1 * scale)
        start = train[0]
        climbing = (_finite(start) and n_ep >= 3 and min(train[-2:]) > 1.5 * start
                    and (chance_loss is None or min(train[-2:]) > chance_loss))
        if not (oscillating or climbing):
            return None
        down = lr_down(lr_now) if _finite(lr_now) else 0.001
        what = ("goes up and down from epoch to epoch instead of settling" if oscillating else
                f"has climbed from {_f(start)} to {_f(train[-1])}")
        return Finding(
            "lr_too_high", "warning", "The learning rate looks too high",
            f"The training loss {what}: each step jumps past the low point of the loss and lands on the "
            "other side of the valley.",
            f"lower the Learning rate to {_f(down)}{lr_txt}.",
            {"lr": lr_now, "window": [float(v) for v in L], "rises": int(len(ups)),
             "up_share": round(up_total / abs_total, 3) if abs_total else 0.0})

    # -- learning rate too low: hardly moving ----------------------------------------------------
    def lr_low_check():
        if n_ep < LOW_LR_EPOCHS or not _finite(train[0]) or not _finite(train[-1]):
            return None
        adam = optimizer in ("adam", "adamw")
        if not _finite(lr_now) or lr_now > (0.001 if adam else 0.03):
            return None
        L0 = train[0]
        if chance_loss and L0 < 0.05 * chance_loss:       # it starts solved: nothing to move
            return None
        fin = [v for v in train if _finite(v)]
        moved = (L0 - train[-1]) / max(abs(L0), 1e-12)
        spread = (max(fin) - min(fin)) / max(abs(L0), 1e-12)
        still = moved < LOW_LR_MOVE and spread < 2.5 * LOW_LR_MOVE
        # or crawling: down nearly every epoch, but by less than 1 % of the loss per epoch
        w = np.asarray(fin[-(FLAT_EPOCHS + 1):])
        d = np.diff(w)
        per_epoch = (w[0] - w[-1]) / max(abs(w[0]), 1e-12) / max(1, len(d))
        crawling = (len(d) >= 3 and (d < 0).mean() >= 0.8 and 0 < per_epoch < 0.01
                    and (not chance_loss or train[-1] >= HIGH_LOSS * chance_loss))
        if not (still or crawling):
            return None
        up = lr_up(lr_now)
        how = (f"has hardly moved ({_f(L0)} → {_f(train[-1])}, {moved:.1%})" if still else
               f"goes down every epoch, but only by about {per_epoch:.1%} ({_f(L0)} → {_f(train[-1])})")
        return Finding(
            "lr_too_low", "info", "The learning rate looks too low",
            f"After {n_ep} epochs the training loss {how}: each step is so small that learning crawls.",
            f"raise the Learning rate to {_f(up)}{lr_txt}.",
            {"lr": lr_now, "train_loss_start": L0, "train_loss_now": train[-1], "relative_change": moved,
             "per_epoch": per_epoch})

    # -- underfitting: both high and flat ---------------------------------------------------------
    def underfitting_check():
        if not chance_loss or chance_loss <= 0 or n_ep < flat_epochs:
            return None
        seg_t = [v for v in train[-(flat_epochs + 1):] if _finite(v)]
        seg_v = [v for v in val[-(flat_epochs + 1):] if _finite(v)]
        if len(seg_t) < flat_epochs:
            return None
        t_now = seg_t[-1]
        v_now = seg_v[-1] if seg_v else t_now
        flat = (max(seg_t) - min(seg_t)) / max(abs(np.mean(seg_t)), 1e-12) < FLAT_CHANGE
        high = t_now >= HIGH_LOSS * chance_loss and v_now >= HIGH_LOSS * chance_loss
        if not (flat and high):
            return None
        return Finding(
            "underfitting", "warning", "Underfitting: not learning the pattern",
            f"Both losses are high and flat: training {_f(t_now)}, validation {_f(v_now)}, while guessing from "
            f"the label shares alone scores {_f(chance_loss)}. The model has stopped improving before it "
            "learned much.",
            hints["capacity"] + ".",
            {"train_loss": t_now, "val_loss": v_now, "chance_loss": chance_loss,
             "ratio_to_chance": round(t_now / chance_loss, 3), "epochs_flat": flat_epochs})

    # -- majority rate (from the history's validation metrics) -----------------------------------
    def majority_check():
        if task not in ("binary", "multiclass", "per_residue") or majority is None or n_ep < 2:
            return None
        acc = _val_key(history, "q3" if task == "per_residue" else "accuracy")[-1]
        mcc = _val_key(history, "mcc")[-1]
        if not (_finite(acc) and _finite(mcc)):
            return None
        return majority_finding(acc, mcc, majority, majority_label, lr_now, trend=_trend(train),
                                optimizer=optimizer)

    for fn in (overfitting_check, lr_high_check, lr_low_check, underfitting_check, majority_check):
        check(fn)
    return found


def _smooth(values: list[float], k: int = 3) -> np.ndarray:
    """Trailing moving average over ``k`` epochs (the first ones average what there is)."""
    a = np.asarray(values, dtype=float)
    return np.array([a[max(0, i - k + 1): i + 1].mean() for i in range(len(a))])


def _trend(train: list[float]) -> float:
    """Relative change of the training loss over the last 3 epochs (negative: falling)."""
    fin = [v for v in train if _finite(v)]
    if len(fin) < 4:
        return 0.0
    return (fin[-1] - fin[-4]) / max(abs(fin[-4]), 1e-12)


def majority_finding(acc: float, mcc: float, majority: float, majority_label: str | None, lr: float,
                     trend: float = 0.0, n: int | None = None, optimizer: str = "adam") -> Finding | None:
    """The 'majority rate' finding, or None: accuracy no better than always answering the most
    common class, and MCC near 0."""
    if not (acc <= majority + MAJORITY_MARGIN and abs(mcc) < MCC_NEAR_ZERO):
        return None
    who = f"'{majority_label}'" if majority_label else "the most common class"
    imbalanced = majority >= 0.6
    if trend < -0.01:
        try_this = "keep training (▶ Play) and watch MCC, not accuracy: the loss is still falling"
    else:
        try_this = f"lower the Learning rate to {_f(lr_safer(lr, optimizer))} and press ↺ Reset" if _finite(lr) else \
            "press ↺ Reset with another Seed"
    on = f" on {n} validation examples" if n else ""
    return Finding(
        "majority_rate", "warning", "Accuracy is only the majority rate",
        f"Validation accuracy is {acc:.1%}{on}, and always answering {who} would score {majority:.1%}"
        f"{' (the labels are imbalanced)' if imbalanced else ''}. MCC is {_f(mcc)}: the model has not "
        "learned to tell the classes apart.",
        try_this + ".",
        {"accuracy": acc, "majority_rate": majority, "mcc": mcc})


# ----------------------------------------------------------------------------------------------
# the probes
def _grad_batch(trainer, n: int) -> int:
    """Examples for the gradient probe: the run's own batch size (so the probe costs about one
    training step), at least 16 and at most PROBE_BATCH."""
    try:
        bs = int(trainer.batch_size)
    except Exception:
        bs = 64
    return max(0, min(n, PROBE_BATCH, max(16, bs)))


@contextlib.contextmanager
def _quiet_rng(device: torch.device):
    """Every random generator as it was afterwards (dropout in a probe must not shift a run)."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=True):
        yield


def _unit_axis(producer: nn.Module | None, ndim: int) -> int:
    """Which axis of a ReLU's output holds the units: channels after a convolution, the last
    axis after a linear layer (Transformer feed-forward: (B, L, F))."""
    if ndim <= 2:
        return 1 if ndim == 2 else 0
    if isinstance(producer, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.BatchNorm1d, nn.BatchNorm2d)):
        return 1
    return ndim - 1


def output_probe(model: nn.Module, x: torch.Tensor, chunk: int = 64, budget_s: float = PROBE_SECONDS) -> dict:
    """Forward passes in eval mode without gradients over ``x`` in chunks of ``chunk``, until
    all of ``x`` is seen or ``budget_s`` seconds have passed (at least one chunk): the raw
    outputs and, for every call of an ``nn.ReLU`` (one module used by several layers counts once
    per layer), its units and how many were 0 for every example seen."""
    was_training = model.training
    alive: list[torch.Tensor] = []     # per ReLU call (in call order): which units fired
    layer_names: list[str] = []
    calls = [0]
    last_producer: list[nn.Module | None] = [None]
    handles = []
    names = {m: n for n, m in model.named_modules()}

    def on_producer(mod, inp, out):
        last_producer[0] = mod

    def on_relu(mod, inp, out):
        if not torch.is_tensor(out) or out.dim() == 0:
            return
        axis = _unit_axis(last_producer[0], out.dim())
        o = out.detach()
        dims = [d for d in range(o.dim()) if d != axis]
        fired = (o != 0).any(dim=dims) if dims else (o != 0)
        i = calls[0]
        calls[0] += 1
        if i < len(alive):
            if alive[i].shape == fired.shape:
                alive[i] |= fired
        else:
            alive.append(fired.clone())
            layer_names.append(names.get(mod, "relu") or "relu")

    outs = []
    t0 = time.perf_counter()
    try:
        for m in model.modules():
            if isinstance(m, nn.ReLU):
                handles.append(m.register_forward_hook(on_relu))
            elif isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.BatchNorm1d, nn.BatchNorm2d,
                                nn.LayerNorm, nn.Embedding)):
                handles.append(m.register_forward_hook(on_producer))
        model.eval()
        with torch.no_grad():
            for i in range(0, len(x), max(1, chunk)):
                calls[0] = 0
                last_producer[0] = None
                outs.append(model(x[i: i + chunk]).detach().float().cpu())
                if time.perf_counter() - t0 > budget_s:
                    break
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    layers = [{"name": n, "units": int(a.numel()), "dead": int((~a).sum())} for n, a in zip(layer_names, alive)]
    out = torch.cat(outs) if outs else torch.empty(0)
    return {"outputs": out, "relu_layers": layers, "examples": int(len(out))}


def _all_finite(t: torch.Tensor) -> bool:
    """No NaN or infinity in ``t``. The sum is checked first (NaN and ∞ reach it, and it is
    ~10x faster than ``isfinite``); only a sum that overflowed is looked at in full."""
    if not t.is_floating_point() or t.numel() == 0:
        return True
    if math.isfinite(float(t.sum())):
        return True
    return bool(torch.isfinite(t).all())


_DATA_OK: dict[tuple, bool] = {}


def _data_finite(t: torch.Tensor) -> bool:
    """``_all_finite`` for a run's data, computed once per tensor (the data does not change
    during a run; 7 M floats of one-hot DNA take ~15 ms to sum)."""
    key = (id(t), t.data_ptr(), t._version, tuple(t.shape))
    if key not in _DATA_OK:
        if len(_DATA_OK) > 64:
            _DATA_OK.clear()
        _DATA_OK[key] = _all_finite(t)
    return _DATA_OK[key]


def gradient_probe(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor) -> dict:
    """One backward pass that changes nothing: the loss and which parameters got a NaN or infinite
    gradient. ``torch.autograd.grad`` returns the gradients instead of adding them to ``.grad``;
    eval mode (restored afterwards) keeps BatchNorm's running statistics as they were."""
    was_training = model.training
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    res: dict[str, Any] = {"loss": float("nan"), "bad": [], "grad_norm": float("nan"), "bad_weights": []}
    res["bad_weights"] = [n for n, p in named if not _all_finite(p.detach())]
    if not named:
        return res
    flags = (torch.backends.cudnn.flags(enabled=False) if x.device.type == "cuda"
             else contextlib.nullcontext())    # cuDNN's RNN backward refuses eval mode
    try:
        model.eval()
        with torch.enable_grad(), flags:
            out = model(x)
            loss = loss_fn(out, y)
            res["loss"] = float(loss.detach())
            if not loss.requires_grad:
                return res
            grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    finally:
        model.train(was_training)
    sq = 0.0
    for (n, _), g in zip(named, grads):
        if g is None:
            continue
        if not _all_finite(g):
            res["bad"].append(n)
        else:
            sq += float((g.double() ** 2).sum())
    res["grad_norm"] = math.sqrt(sq)
    return res


def label_stats(task: str, y: torch.Tensor, n_classes: int = 2) -> dict:
    """The chance loss (always predicting the label shares, or the mean for regression), the
    majority rate and the majority class id, from the training labels."""
    y = y.detach().cpu()
    if task == "regression":
        v = y.float().reshape(-1)
        v = v[torch.isfinite(v)]
        return {"chance_loss": float(v.var(unbiased=False)) if len(v) > 1 else None}
    if task == "binary":
        p = float(y.float().mean()) if len(y) else 0.5
        q = min(max(p, 1e-7), 1 - 1e-7)
        return {"chance_loss": -(q * math.log(q) + (1 - q) * math.log(1 - q)),
                "majority": max(p, 1 - p), "majority_class": int(p >= 0.5)}
    ids = y.reshape(-1).long()
    ids = ids[ids >= 0]
    if len(ids) == 0:
        return {}
    counts = torch.bincount(ids, minlength=max(int(n_classes), int(ids.max()) + 1)).double()
    prior = counts / counts.sum()
    nz = prior[prior > 0]
    return {"chance_loss": float(-(nz * nz.log()).sum()), "majority": float(prior.max()),
            "majority_class": int(prior.argmax())}


def _class_name(data, k: int | None) -> str | None:
    if k is None:
        return None
    names = list(getattr(data, "class_names", None) or [])
    return str(names[k]) if 0 <= k < len(names) else f"class {k}"


def fast_mcc(true: torch.Tensor, pred: torch.Tensor) -> float:
    """Matthews correlation for class ids (any number of classes; the same value as
    sklearn's, which takes ~30 ms per call on its input checks; this takes ~0.1 ms)."""
    true, pred = true.reshape(-1).long(), pred.reshape(-1).long()
    if len(true) == 0:
        return 0.0
    k = int(max(true.max(), pred.max())) + 1
    cm = torch.bincount(true * k + pred, minlength=k * k).reshape(k, k).double()
    t, p = cm.sum(1), cm.sum(0)
    c, n = float(cm.trace()), float(cm.sum())
    num = c * n - float((t * p).sum())
    den = math.sqrt(max(0.0, (n * n - float((p * p).sum())) * (n * n - float((t * t).sum()))))
    return num / den if den > 0 else 0.0


def _predicted(task: str, out: torch.Tensor, y: torch.Tensor):
    """(predicted class ids, true ids) over the scored examples (per residue: unpadded positions)."""
    if task == "binary":
        return (out.reshape(len(out), -1)[:, 0] >= 0).long(), y.reshape(-1).long()
    if task == "multiclass":
        return out.argmax(-1).reshape(-1), y.reshape(-1).long()
    keep = y.reshape(-1) != -100
    return out.reshape(-1, out.shape[-1]).argmax(-1)[keep], y.reshape(-1)[keep].long()


def _probe_findings(trainer, stats: dict, epoch: int, page: str | None) -> tuple[list[Finding], dict]:
    found: list[Finding] = []
    summary: dict[str, Any] = {}
    task, data, model = trainer.task, trainer.data, trainer.model
    lr = float(getattr(trainer, "current_lr", None) or trainer.config.lr)
    opt = getattr(trainer.config, "optimizer", "adam")
    hints = _hints(page)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))

    x_tr, y_tr = data.x_train, data.y_train
    x_va, y_va = getattr(data, "x_val", None), getattr(data, "y_val", None)
    if x_va is None or len(y_va) == 0:        # no validation set: the training examples stand in
        x_va, y_va = x_tr, y_tr
    if len(y_tr) == 0:
        return found, summary

    # -- data and gradients --------------------------------------------------------------------
    nb = _grad_batch(trainer, len(y_tr))
    xb, yb = x_tr[:nb].to(device), y_tr[:nb].to(device)
    bad_data = []
    if not _data_finite(x_tr):
        bad_data.append("inputs")
    if not _data_finite(y_tr):
        bad_data.append("labels")
    if bad_data:
        found.append(Finding(
            "nonfinite_grad", "error", "The data contains NaN or infinite values",
            f"Some training {' and '.join(bad_data)} are not numbers (NaN or ∞), so the loss and every "
            "gradient computed from them are NaN too.",
            "fix the file: fill in or drop the rows with empty or non-numeric values, then upload it again.",
            {"where": bad_data}))
    else:
        try:
            with _quiet_rng(device):
                g = gradient_probe(model, trainer.loss_fn, xb, yb)
            summary["grad_norm"] = g["grad_norm"]
            if g["bad"] and not g["bad_weights"]:
                found.append(Finding(
                    "nonfinite_grad", "error", "NaN gradients",
                    f"One backward pass on {nb} training examples gave NaN or infinite gradients in "
                    f"{len(g['bad'])} weight tensor(s) ({', '.join(g['bad'][:3])}{'…' if len(g['bad']) > 3 else ''}), "
                    f"although the loss is {_f(g['loss'])}. The next optimizer step would turn the weights into NaN.",
                    f"lower the Learning rate to {_f(lr_safer(lr, opt))} and turn on Gradient clipping (max norm) 1, "
                    "then press ↺ Reset.",
                    {"bad_parameters": g["bad"], "loss": g["loss"], "batch": nb}))
        except Exception:
            log.debug("doctor: gradient probe failed", exc_info=True)

    # -- outputs and ReLUs -----------------------------------------------------------------------
    nv = min(len(y_va), PROBE_BATCH)
    try:
        with _quiet_rng(device):
            o = output_probe(model, x_va[:nv].to(device), chunk=min(64, max(16, nb)))
    except Exception:
        log.debug("doctor: output probe failed", exc_info=True)
        return found, summary
    out, layers, nv = o["outputs"], o["relu_layers"], o["examples"]
    yv = y_va[:nv].detach().cpu()
    units = sum(ly["units"] for ly in layers)
    dead = sum(ly["dead"] for ly in layers)
    whole = [ly["name"] for ly in layers if ly["units"] and ly["dead"] == ly["units"]]
    summary.update(relu_units=units, relu_dead=dead)
    if units and (whole or (dead >= 2 and dead / units >= DEAD_SHARE)):
        severe = "error" if whole else "warning"
        if _lr_is_high(lr, opt):
            fix = f"lower the Learning rate to {_f(lr_safer(lr, opt))} and press ↺ Reset (dead units rarely come back)"
        else:
            fix = hints["activation"] + " (dead units rarely come back)"
        found.append(Finding(
            "dead_relu", severe, "Dead ReLU units",
            f"{dead} of {units} ReLU units ({dead / units:.0%}) output 0 for every one of {nv} validation "
            "examples, so hardly any gradient flows through them and they stop learning"
            + (f"; in {', '.join(whole[:2])} every unit is dead, so nothing reaches the output" if whole else "")
            + ". A large step or a very negative bias pushes units there, and they rarely come back on their own.",
            fix + ".",
            {"dead": dead, "units": units, "share": round(dead / units, 3), "whole_layers_dead": whole,
             "layers": layers}))

    if epoch < 1 or len(out) == 0:
        return found, summary

    # output spread: the same answer for every input?
    flat = False
    if task == "regression":
        pred = out.reshape(len(out), -1)[:, 0]
        y_sd = float(yv.float().std()) if len(yv) > 1 else 0.0
        spread = float(pred.std()) if len(pred) > 1 else 0.0
        flat = y_sd > 0 and spread < 0.01 * y_sd
        summary["output_spread"] = spread
    else:
        if task == "per_residue":
            keep = yv.reshape(-1) != -100
            logits = out.reshape(-1, out.shape[-1])[keep]
        else:
            logits = out.reshape(len(out), -1)
        if task != "binary":       # several classes: a shift shared by all logits changes nothing
            logits = torch.log_softmax(logits, -1)
        spread = float(logits.std(0).max()) if len(logits) > 1 else 0.0
        flat = len(logits) > 1 and spread < FLAT_OUTPUT_STD
        summary["output_spread"] = spread
    if flat:
        reg, rate = getattr(trainer.config, "regularization", "none"), float(getattr(trainer.config, "reg_rate", 0) or 0)
        if reg != "none" and rate >= 0.1:      # the penalty pulls every weight to 0
            fix = f"lower the Regularization rate to {_f(rate / 100 if rate >= 1 else rate / 10)}"
            why = f"The {reg.upper()} penalty (rate {_f(rate)}) is so strong that it pulls every weight to 0."
        elif _lr_is_high(lr, opt):
            fix = f"lower the Learning rate to {_f(lr_safer(lr, opt))} and press ↺ Reset"
            why = "Training often falls into this after steps that are too large."
        else:
            fix = "press ↺ Reset with another Seed (other starting weights)"
            why = "The starting weights may have put it there."
        found.append(Finding(
            "flat_output", "warning", "The output is the same for every input",
            f"Across {nv} validation examples the network's output hardly changes (spread {_f(spread)}): "
            "it gives everyone the same answer, the one that suits the label shares best, and ignores the "
            f"input. {why}",
            fix + ".",
            {"spread": spread, "examples": nv, "regularization": reg, "reg_rate": rate}))
        return found, summary

    if task == "regression":
        return found, summary
    pred, true = _predicted(task, out, yv)
    if len(true) == 0:
        return found, summary
    n_true_classes = int(torch.unique(true).numel())
    counts = torch.bincount(pred)
    top = int(counts.argmax())
    share = float(counts.max()) / len(pred)
    if epoch >= 2 and n_true_classes >= 2 and share >= ONE_CLASS_SHARE:
        name = _class_name(data, top)
        # collapsed (the loss was clearly below chance once and is back at it) at a high learning
        # rate: the steps threw it out; otherwise answering the majority is all it has found
        tl = [v for v in _series(trainer.history, "train_loss") if _finite(v)]
        chance = stats.get("chance_loss")
        collapsed = bool(chance and len(tl) > 2 and min(tl[:-1]) < 0.9 * chance and tl[-1] >= 0.95 * chance)
        if collapsed and _lr_is_high(lr, opt):
            fix, why = (f"lower the Learning rate to {_f(lr_safer(lr, opt))} and press ↺ Reset",
                        "It had learned something before and lost it: the steps are too large.")
        else:
            fix, why = hints["capacity"], "Answering the most common class is all it has found so far."
        found.append(Finding(
            "stuck_one_class", "warning", "Predicting one class for everything",
            f"{share:.0%} of {len(pred)} validation predictions are '{name}', although the labels hold "
            f"{n_true_classes} classes, so its accuracy is just the share of '{name}'. {why}",
            fix + ".",
            {"predicted_class": name, "share": share, "examples": int(len(pred)), "collapsed": collapsed}))
        return found, summary

    # majority rate from the probe, when the history has no validation metrics
    hist = trainer.history
    metric = "q3" if task == "per_residue" else "accuracy"
    if epoch >= 2 and not _has(_val_key(hist[-1:], metric)) and stats.get("majority") is not None:
        acc = float((pred == true).double().mean())
        mcc = fast_mcc(true, pred)
        f = majority_finding(acc, mcc, stats["majority"], _class_name(data, stats.get("majority_class")), lr,
                             trend=_trend(_series(hist, "train_loss")), n=int(len(true)), optimizer=opt)
        if f is not None:
            found.append(f)
    return found, summary


# ----------------------------------------------------------------------------------------------
# putting it together
# A finding -> the ones it explains (shown once, by the cause). Findings are weighed in CAUSES
# order: one that an earlier kept finding explains is dropped.
_SUPPRESS = {
    "diverged": set(ORDER) - {"diverged"},
    "nonfinite_grad": {"lr_too_low", "underfitting"},
    "dead_relu_layer": {"flat_output", "stuck_one_class", "majority_rate", "underfitting", "lr_too_low"},
    "lr_too_high": {"lr_too_low", "underfitting"},
    # a run that has not moved from its starting weights: its outputs are still the initial ones
    "lr_too_low": {"underfitting", "stuck_one_class", "majority_rate", "flat_output"},
    "flat_output": {"stuck_one_class", "majority_rate", "underfitting"},
    "stuck_one_class": {"majority_rate", "underfitting"},
}
CAUSES = ("diverged", "nonfinite_grad", "dead_relu", "lr_too_high", "lr_too_low", "flat_output",
          "stuck_one_class", "majority_rate", "overfitting", "underfitting")


def _finish(found: list[Finding], history: list[dict], summary: dict | None = None) -> list[Finding]:
    """Drop what a cause already explains, keep one finding per code, most serious first; a run
    with nothing to say gets the 'healthy' finding."""
    rank = {c: i for i, c in enumerate(CAUSES)}
    kept: list[Finding] = []
    drop: set[str] = set()
    for f in sorted(found, key=lambda f: rank.get(f.code, 99)):
        if f.code in drop or any(k.code == f.code for k in kept):
            continue
        kept.append(f)
        key = "dead_relu_layer" if f.code == "dead_relu" and f.evidence.get("whole_layers_dead") else f.code
        drop |= _SUPPRESS.get(key, set())
    kept.sort(key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), ORDER.index(f.code) if f.code in ORDER else 99))
    if not kept:
        kept.append(_healthy(history, summary or {}))
    return kept


def _healthy(history: list[dict], summary: dict) -> Finding:
    train, val = _series(history, "train_loss"), _val_key(history, "loss")
    n_ep = max(0, len(history) - 1)
    ev: dict[str, Any] = {"epochs": n_ep, **summary}
    bits = []
    if summary.get("relu_units"):
        bits.append(f"{summary['relu_units'] - summary.get('relu_dead', 0)} of {summary['relu_units']} ReLU "
                    "units active")
    if _finite(summary.get("grad_norm", float("nan"))):
        bits.append("gradients finite")
    if n_ep == 0:
        msg = "Nothing trained yet" + (f" ({', '.join(bits)})" if bits else "") + \
              ". The doctor looks again after every epoch."
        return Finding("healthy", "info", "Ready to train", msg, "press ▶ Play (or ⏭ Step) to start.", ev)
    ev.update(train_loss=train[-1], val_loss=val[-1] if val else float("nan"))
    parts = [f"training loss {_f(train[0])} → {_f(train[-1])}"]
    if _has(val):
        parts.append(f"validation loss {_f(val[0])} → {_f(val[-1])}")
    msg = (f"After {n_ep} epoch{'s' if n_ep != 1 else ''}: " + ", ".join(parts) +
           (f"; {', '.join(bits)}" if bits else "") + ". Nothing looks wrong.")
    return Finding("healthy", "info", "Healthy so far", msg,
                   "keep training and watch the validation curve: when it turns up while the training loss "
                   "keeps falling, that is overfitting.", ev)


def diagnose_history(history: list[dict], task: str, *, chance_loss: float | None = None,
                     majority: float | None = None, majority_label: str | None = None,
                     lr: float | None = None, optimizer: str = "adam", diverged: str | None = None,
                     early_stopping: int = 0, page: str | None = None, patience: int = PATIENCE,
                     flat_epochs: int = FLAT_EPOCHS) -> list[Finding]:
    """The findings that need only a run's history (records with 'epoch', 'train_loss',
    'val_loss' (or the older 'test_loss') and, with track_metrics, 'val_accuracy', 'val_mcc' ...).

    ``chance_loss``: the loss of always predicting the label shares (the mean for regression),
    for underfitting; ``majority``: the share of the most common class, for the majority-rate
    check; ``lr``: the learning rate now (default: the last record's 'lr'); ``diverged``: the
    trainer's divergence message. Never raises."""
    try:
        found = _history_findings(list(history or []), task, chance_loss=chance_loss, majority=majority,
                                  majority_label=majority_label, lr=lr, optimizer=optimizer, diverged=diverged,
                                  early_stopping=early_stopping, page=page, patience=patience,
                                  flat_epochs=flat_epochs)
        return _finish(found, list(history or []))
    except Exception:
        log.debug("doctor: diagnose_history failed", exc_info=True)
        return []


def diagnose(trainer, page: str | None = None, probes: bool = True) -> list[Finding]:
    """Everything the doctor sees in a run (a ``Trainer``, or anything with its ``history``,
    ``task``, ``data``, ``model``, ``loss_fn``, ``config`` and ``diverged``): the history checks
    plus the output and gradient probes (``probes=False`` skips them). ``page`` ('basics',
    'dna', 'sequence') picks the controls the suggestions name. The model, its gradients, the
    optimizer and every random generator are left as they were. Never raises; returns [] only
    when the run cannot be read at all."""
    try:
        history = list(getattr(trainer, "history", None) or [])
        task = trainer.task
        cfg = getattr(trainer, "config", None)
        lr = getattr(trainer, "current_lr", None) or getattr(cfg, "lr", None)
        data = getattr(trainer, "data", None)
        stats: dict = {}
        try:
            if data is not None and len(data.y_train):
                stats = label_stats(task, data.y_train, getattr(data, "n_classes", 2))
        except Exception:
            log.debug("doctor: label stats failed", exc_info=True)
        maj_label = _class_name(data, stats.get("majority_class")) if "majority_class" in stats else None
        diverged = getattr(trainer, "diverged", None)
        found = _history_findings(history, task, chance_loss=stats.get("chance_loss"),
                                  majority=stats.get("majority"), majority_label=maj_label, lr=lr,
                                  optimizer=getattr(cfg, "optimizer", "adam"), diverged=diverged,
                                  early_stopping=int(getattr(cfg, "early_stopping", 0) or 0), page=page)
        summary: dict = {}
        if probes and not diverged and not any(f.code == "diverged" for f in found) \
                and not getattr(trainer, "released", None) and data is not None:
            try:
                epoch = int(getattr(trainer, "epoch", max(0, len(history) - 1)))
                more, summary = _probe_findings(trainer, stats, epoch, page)
                found += more
            except Exception:
                log.debug("doctor: probes failed", exc_info=True)
        return _finish(found, history, summary)
    except Exception:
        log.debug("doctor: diagnose failed", exc_info=True)
        return []


def codes(findings: Iterable[Finding]) -> list[str]:
    """The codes of a list of findings (handy in tests and lessons)."""
    return [f.code for f in findings]
