"""The Trainer: a training loop you can step, pause and resume.

    trainer = Trainer(model, data, TrainConfig(optimizer="adam", lr=0.03, batch_size=10, seed=1))
    trainer.run_epochs(100)          # or trainer.step(25) (mini-batches), or run_for(0.1) seconds
    trainer.history[-1]              # {'epoch': 100, 'train_loss': ..., 'val_loss': ..., ...}
    trainer.set_lr(0.003)            # change the learning rate mid-training, as TF Playground does
    trainer.score_test()             # the held-out test set, scored once at the end

Every epoch the Trainer evaluates the **validation** set: the curves, early stopping, the
learning-rate schedules and the best epoch read it. The **test** set is never looked at while
training; ``score_test()`` scores it when the user asks (and counts how often they looked).

The loss follows the task: MSE for regression, binary cross-entropy (on logits) for two
classes, cross-entropy for several classes and for per-residue labels (padding = -100 is
ignored). Language models (tasks "lm_causal" / "lm_masked", see ``playground.lm.training``):
the mean cross-entropy over the target tokens; a masked LM's training batches are masked afresh
with the Trainer's seeded generator; the history adds ``val_bits``, ``val_ppl`` and ``val_acc``.
A loss that turns NaN or infinite stops training and is reported in
``trainer.diverged`` ("diverged at epoch N"); it is never raised.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from playground import metrics as M
from playground.data import buckets as B
from playground.data.split import SplitData

OPTIMIZERS = {"sgd": "SGD", "momentum": "SGD + momentum", "adam": "Adam", "adamw": "AdamW"}
REGULARIZATION = {"none": "None", "l1": "L1", "l2": "L2"}
# TensorFlow Playground's learning-rate list.
SCHEDULES = {"off": "Constant",
             "plateau": "Halve on a plateau (ReduceLROnPlateau)",
             "cosine": "Cosine decay",
             "step": "Step decay (halve every few epochs)"}
LM_TASKS = ("lm_causal", "lm_masked")
_TOKEN_TASKS = ("per_residue", *LM_TASKS)     # losses averaged over labelled positions, not sequences
LEARNING_RATES = [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]


@dataclasses.dataclass
class TrainConfig:
    optimizer: str = "adam"        # 'sgd', 'momentum', 'adam', 'adamw'
    lr: float = 0.03
    batch_size: int = 10           # 0 (or >= the training-set size) means full batch
    regularization: str = "none"   # 'none', 'l1', 'l2' (penalty on weights, not biases)
    reg_rate: float = 0.0
    momentum: float = 0.9          # for 'momentum'
    weight_decay: float = 0.01     # for 'adamw' (decoupled decay)
    seed: int = 0                  # fixes shuffling (and dropout)
    shuffle: bool = True           # a new random order of the training examples every epoch (False: stored order)
    device: str = "cpu"
    warmup_steps: int = 0          # linear learning-rate warm-up over this many optimizer steps
    grad_accum: int = 1            # mini-batches whose gradients add up before one optimizer step
    grad_clip: float = 0.0         # clip the gradient norm (0 = off)
    early_stopping: int = 0        # patience in epochs on the validation loss (0 = off); best weights restored
    schedule: str = "off"          # learning-rate schedule: 'off', 'plateau', 'cosine', 'step' (see SCHEDULES)
    schedule_patience: int = 3     # 'plateau': epochs without a better validation loss before halving the rate
    schedule_epochs: int = 30      # 'cosine': epochs from the full rate to its 1 %; 'step': halve every this/3
    track_metrics: bool = False    # also record accuracy/AUROC/... every epoch
    eval_batch_size: int = 2048
    length_buckets: bool = False   # token sequences of different lengths: batches of similar length, each
                                   # padded only to its own longest (playground.data.buckets); same losses
    token_budget: int = 0          # with length_buckets: at most this many positions per batch (0 = no limit)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}")
        if self.regularization not in REGULARIZATION:
            raise ValueError(f"regularization must be one of {sorted(REGULARIZATION)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError("learning rate must be a positive number")
        if self.batch_size < 0 or self.grad_accum < 1:
            raise ValueError("batch size must be >= 0 and grad_accum >= 1")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}")


def make_optimizer(name: str, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.01):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name in ("adam", "adamw"):
        # The fused kernel does Adam's update for all tensors at once: ~40 % more steps/s on the
        # playground's small networks (same algorithm; results agree to float rounding).
        params = list(params)
        cls, kw = (torch.optim.Adam, {}) if name == "adam" else (torch.optim.AdamW, {"weight_decay": weight_decay})
        try:
            return cls(params, lr=lr, fused=True, **kw)
        except (RuntimeError, ValueError, TypeError):   # a device or dtype without the fused kernel
            return cls(params, lr=lr, **kw)
    raise ValueError(name)


def loss_function(task: str):
    """The loss for a task, taking (model output, labels)."""
    if task == "regression":
        return lambda out, y: F.mse_loss(out.reshape(y.shape), y)
    if task == "binary":
        return lambda out, y: F.binary_cross_entropy_with_logits(out.reshape(y.shape), y)
    if task == "multiclass":
        return lambda out, y: F.cross_entropy(out, y)
    if task == "per_residue":
        return lambda out, y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), ignore_index=-100)
    if task in LM_TASKS:        # the mean over the target tokens (playground.lm.masking.lm_loss); 0, not NaN, without any
        return lambda out, y: (F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), ignore_index=-100,
                                               reduction="sum") / (y != -100).sum().clamp(min=1))
    raise ValueError(task)


class Trainer:
    def __init__(self, model: nn.Module, data: SplitData, config: TrainConfig | None = None):
        self.config = config or TrainConfig()
        self.device = torch.device(self.config.device)
        self.model = model.to(self.device)
        self.data = data.to(self.device)
        self.task = data.task
        self.loss_fn = loss_function(self.task)
        self.optimizer = make_optimizer(self.config.optimizer, self.model.parameters(), self.config.lr,
                                        self.config.momentum, self.config.weight_decay)
        self._reg_params = [p for n, p in self.model.named_parameters() if p.dim() > 1]
        self._gen = torch.Generator(device="cpu").manual_seed(int(self.config.seed))
        # Dropout draws from torch's global generator: seed it so a lone run is reproducible.
        torch.manual_seed(int(self.config.seed))
        self.n_train = len(self.data.y_train)
        self.epoch = 0            # completed epochs
        self.steps = 0            # mini-batches trained on
        self.optimizer_steps = 0
        self.seconds = 0.0        # time spent in step/run_epochs/run_for
        self._chunk_t0: float | None = None
        self.history: list[dict] = []
        self.diverged: str | None = None
        self.stopped: str | None = None   # early stopping message
        self._perm = None
        self._cursor = 0
        self._buckets = self._make_buckets()
        self._plan: list | None = None     # this epoch's (indices, padded length) batches, with buckets
        self._bi = 0
        self._running = torch.zeros((), device=self.device)
        self._running_n = 0
        self._best = (math.inf, 0, None)
        self._lr_scale = 1.0      # the schedule's factor on config.lr
        self._plateau = (math.inf, 0)   # best validation loss seen by the 'plateau' schedule, epochs since
        self.best_epoch = 0       # the epoch with the lowest validation loss so far
        self.test_scores: dict | None = None   # score_test()'s result
        self.test_looks = 0       # how many times the test set was scored
        # a masked LM masks each training batch afresh (playground.lm.masking.mask_tokens, self._gen)
        self._lm_mask = dict(self.data.meta["masking"]) if self.task == "lm_masked" else None
        self.trace: list[tuple[int, float, float]] = []   # (step, epoch + fraction, mean training loss since the last point)
        self._trace_mark = (0.0, 0.0)   # the running sum and count at the last trace point
        self._trace_n = 0               # mini-batches since the last trace point
        self._trace_stride = 1          # mini-batches per trace point (set at each epoch's start)
        self.history.append(self._evaluate_epoch())

    # -- settings that may change while training -------------------------------------------
    @property
    def lr(self) -> float:
        return self.config.lr

    def set_lr(self, lr: float) -> None:
        """Change the learning rate without resetting weights or optimizer state."""
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError("learning rate must be a positive number")
        self.config.lr = float(lr)
        self._apply_lr()

    def set_regularization(self, kind: str, rate: float) -> None:
        if kind not in REGULARIZATION:
            raise ValueError(kind)
        self.config.regularization, self.config.reg_rate = kind, float(rate)

    @property
    def current_lr(self) -> float:
        """The learning rate the optimizer uses now (the set rate × the schedule × the warm-up)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def _apply_lr(self):
        lr = self.config.lr * self._lr_scale
        if self.config.warmup_steps > 0:
            lr *= min(1.0, (self.optimizer_steps + 1) / self.config.warmup_steps)
        for g in self.optimizer.param_groups:
            g["lr"] = lr

    @property
    def done(self) -> bool:
        return self.diverged is not None or self.stopped is not None

    @property
    def batch_size(self) -> int:
        bs = self.config.batch_size
        return self.n_train if bs <= 0 or bs >= self.n_train else bs

    @property
    def steps_per_epoch(self) -> int:
        if self._buckets is not None:
            return len(self._buckets)
        return math.ceil(self.n_train / self.batch_size)

    def _make_buckets(self):
        """Length buckets for token sequences of different lengths (config.length_buckets), else None."""
        x = self.data.x_train
        if self.task in LM_TASKS or not (self.config.length_buckets and x.dim() == 2 and not x.dtype.is_floating_point and len(x)):
            return None
        per_residue = self.task == "per_residue"
        self._lengths = B.lengths_of(x.cpu(), y=self.data.y_train.cpu() if per_residue else None)
        if int(self._lengths.min()) >= x.shape[1]:
            return None                         # all the same length: nothing to gain
        budget = int(self.config.token_budget) or None
        return B.LengthBuckets(self._lengths, self.batch_size, budget)

    @property
    def bucketed(self) -> bool:
        """True when this run trains on length-bucketed batches."""
        return self._buckets is not None

    @property
    def padding_waste(self) -> float | None:
        """Computed positions / real positions of this run's training batches (1.0 = no padding);
        None for inputs of one length."""
        x = self.data.x_train
        if x.dim() != 2 or x.dtype.is_floating_point or not len(x):
            return None
        if self._buckets is not None:
            return B.padding_waste(self._lengths, self._buckets.epoch_plan(torch.Generator().manual_seed(0)))
        lengths = B.lengths_of(x.cpu(), y=self.data.y_train.cpu() if self.task == "per_residue" else None)
        return B.padding_waste(lengths, [torch.arange(len(x))], pad_to=x.shape[1])

    # -- training --------------------------------------------------------------------------
    def _penalty(self) -> torch.Tensor | float:
        kind, rate = self.config.regularization, self.config.reg_rate
        if kind == "none" or rate <= 0:
            return 0.0
        if kind == "l1":
            return rate * sum(p.abs().sum() for p in self._reg_params)
        return rate * 0.5 * sum((p * p).sum() for p in self._reg_params)

    def _train_batch(self) -> None:
        if self._perm is None:
            if self._buckets is not None:
                self._plan = [(b.idx.to(self.device), b.length) for b in self._buckets.epoch_plan(self._gen)]
                self._perm = torch.cat([p[0] for p in self._plan])
                self._bi = 0
            else:
                self._perm = (torch.randperm(self.n_train, generator=self._gen) if self.config.shuffle
                              else torch.arange(self.n_train)).to(self.device)
            self._cursor = 0
            self._trace_stride = max(1, self.steps_per_epoch // 25)     # about 25 trace points per epoch
            self.model.train()
        if self._plan is not None and self._buckets is not None:
            idx, length = self._plan[self._bi]
            self._bi += 1
            xb, yb = B.trim(self.data.x_train, self.data.y_train, idx, length=length)
            self._cursor += len(idx)
        else:
            bs = self.batch_size
            idx = self._perm[self._cursor: self._cursor + bs]
            self._cursor += bs
            xb, yb = self.data.x_train[idx], self.data.y_train[idx]
        if self._lm_mask is not None:
            from playground.lm.masking import mask_tokens
            xb, yb = mask_tokens(xb, self._gen, **self._lm_mask)
        out = self.model(xb)
        loss = self.loss_fn(out, yb)
        loss_d = loss.detach()
        # the epoch's training loss weighs each batch by its examples (labelled residues per residue), in
        # units of a full batch: one in-place add per step for the usual full batch
        if self.task in _TOKEN_TASKS:
            w = (yb != -100).sum()
            self._running += loss_d * w
            self._running_n = self._running_n + w
        elif len(idx) == self.batch_size:
            self._running += loss_d
            self._running_n += 1
        else:
            w = len(idx) / self.batch_size
            self._running += loss_d * w
            self._running_n += w
        self._trace_n += 1
        if self._trace_n >= self._trace_stride:
            self._add_trace()
        total = loss + self._penalty()
        accum = self.config.grad_accum
        (total / accum if accum > 1 else total).backward()
        self.steps += 1
        if self.steps % accum == 0 or self._cursor >= self.n_train:
            if self.config.warmup_steps > 0:
                self._apply_lr()
            if self.config.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.optimizer_steps += 1
        if self._cursor >= self.n_train:
            self._end_epoch()

    def _add_trace(self) -> None:
        """A point of the sub-epoch trace: the mean training loss since the last point (from the
        epoch's running sum, so a step costs nothing extra)."""
        if self._trace_n:
            total, n = self._running.item(), float(self._running_n)
            m_total, m_n = self._trace_mark
            if n > m_n:
                frac = min(1.0, self._cursor / max(1, self.n_train))
                self.trace.append((self.steps, round(self.epoch + frac, 4), (total - m_total) / (n - m_n)))
                if len(self.trace) > 5000:      # keep the trace light on a long run
                    self.trace = self.trace[::2]
            self._trace_mark = (total, n)
        self._trace_n = 0

    @property
    def epoch_progress(self) -> float:
        """Fraction of the current epoch done (0 between epochs)."""
        return min(1.0, self._cursor / max(1, self.n_train))

    def _end_epoch(self) -> None:
        if self._trace_n:
            self._add_trace()
        self._perm = None
        self._plan = None
        self._cursor = 0
        self.epoch += 1
        running = self._running.item() / max(1e-12, float(self._running_n))
        self._running.zero_()
        self._running_n = 0
        self._trace_mark = (0.0, 0.0)
        if not math.isfinite(running):
            self._diverge()
            return
        rec = self._evaluate_epoch(running)
        self.history.append(rec)
        val = rec["val_loss"]
        has_val = len(self.data.y_val) > 0
        if not (math.isfinite(rec["train_loss"]) and (math.isfinite(val) or not has_val)):
            self._diverge()
            return
        if not has_val:
            return
        best_loss, best_epoch, _ = self._best
        improved = val < best_loss - 1e-12
        if improved:
            self.best_epoch = self.epoch
            keep = copy.deepcopy(self.model.state_dict()) if self.config.early_stopping > 0 else None
            self._best = (val, self.epoch, keep)
        elif self.config.early_stopping > 0 and self.epoch - best_epoch >= self.config.early_stopping:
            if self._best[2] is not None:
                self.model.load_state_dict(self._best[2])
                restored = f"best epoch {best_epoch} restored"
            else:
                restored = f"best epoch {best_epoch} (weights not kept: early stopping was switched on later)"
            self.stopped = (f"early stopping at epoch {self.epoch}: the validation loss did not improve for "
                            f"{self.config.early_stopping} epochs; {restored}")
            return
        self._schedule_step(val)

    def restore_best(self) -> bool:
        """Put back the weights of the best validation epoch (what early stopping does when it
        stops), e.g. when training ends at a time or epoch budget. False when they were not kept
        (early stopping off) or the latest epoch is the best."""
        best = self._best
        if best[2] is None or best[1] == self.epoch:
            return False
        self.model.load_state_dict(best[2])
        return True

    def _schedule_step(self, val_loss: float) -> None:
        """The learning-rate schedule after an epoch (it reads the validation loss only)."""
        kind = self.config.schedule
        if kind == "off":
            self._lr_scale = 1.0
        elif kind == "plateau":      # as torch.optim.lr_scheduler.ReduceLROnPlateau(factor=0.5, min_lr=1e-6)
            best, bad = self._plateau
            if val_loss < best * (1 - 1e-4):
                self._plateau = (val_loss, 0)
            else:
                bad += 1
                if bad >= self.config.schedule_patience:
                    self._lr_scale = max(self._lr_scale * 0.5, 1e-6 / self.config.lr)
                    bad = 0
                self._plateau = (best, bad)
        elif kind == "cosine":
            t = min(self.epoch, self.config.schedule_epochs) / max(1, self.config.schedule_epochs)
            self._lr_scale = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))
        elif kind == "step":
            self._lr_scale = 0.5 ** (self.epoch // max(1, self.config.schedule_epochs // 3))
        self._apply_lr()

    def _diverge(self) -> None:
        self.diverged = (f"diverged at epoch {self.epoch}: the loss became NaN or infinite. "
                         f"Try a smaller learning rate (now {self.config.lr:g}).")

    def step(self, n: int = 1) -> dict:
        """Train on ``n`` mini-batches (or fewer if training stops). Returns the latest record."""
        t0 = self._chunk_t0 = time.perf_counter()
        for _ in range(int(n)):
            if self.done:
                break
            self._train_batch()
        self._check_running()
        self.seconds += time.perf_counter() - t0
        self._chunk_t0 = None
        return self.latest

    def run_epochs(self, n: int = 1) -> dict:
        """Train until ``n`` more epochs are complete (or training stops)."""
        target = self.epoch + int(n)
        t0 = self._chunk_t0 = time.perf_counter()
        while self.epoch < target and not self.done:
            self._train_batch()
        self.seconds += time.perf_counter() - t0
        self._chunk_t0 = None
        return self.latest

    def run_for(self, seconds: float, max_steps: int | None = None) -> dict:
        """Train for about ``seconds`` of wall time (a redraw budget). Returns the latest record
        with ``steps_done`` added."""
        t0 = self._chunk_t0 = time.perf_counter()
        deadline = t0 + seconds
        done = 0
        while not self.done and time.perf_counter() < deadline and (max_steps is None or done < max_steps):
            self._train_batch()
            done += 1
        self._check_running()
        self.seconds += time.perf_counter() - t0
        self._chunk_t0 = None
        return {**self.latest, "steps_done": done}

    def _check_running(self) -> None:
        if self._running_n and not self.done and not math.isfinite(self._running.item()):
            self._diverge()

    # -- moving a run between processes ------------------------------------------------------
    _NOT_STATE = ("loss_fn", "_chunk_t0", "data", "_gen")

    def export_state(self, with_data: bool = False) -> dict:
        """Everything that makes this run what it is (weights, optimizer, position in the epoch,
        shuffling generator, history, counters, config), so that ``import_state`` elsewhere (a
        training worker process) continues it exactly as it would have continued here."""
        state = {k: v for k, v in self.__dict__.items() if k not in self._NOT_STATE}
        state["_gen_state"] = self._gen.get_state()
        if with_data:
            state["data"] = self.data
        return state

    def import_state(self, state: dict) -> None:
        """Become the run ``state`` describes (``export_state`` of this run, possibly trained
        further in another process). This object keeps its identity; its data stays unless the
        state carries data."""
        state = dict(state)
        gen = state.pop("_gen_state")
        self.__dict__.update(state)
        self._gen = torch.Generator(device="cpu")
        self._gen.set_state(gen)
        self.loss_fn = loss_function(self.task)
        self._chunk_t0 = None

    released: str | None = None   # set by release_memory(): the run gave its tensors back

    def release_memory(self, why: str = "idle") -> None:
        """Give back the memory of a run nobody uses any more (a shared server's idle session):
        the data, the optimizer's state and the best-weights copy are dropped; the weights and
        the history stay (the run can still be listed and saved, but not trained further)."""
        d = self.data
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            t = getattr(d, name)
            setattr(d, name, t.new_empty((0, *t.shape[1:])))
        self.optimizer.state.clear()
        self._best = (self._best[0], self._best[1], None)
        self._perm = None
        self._plan = None
        self.released = why

    @classmethod
    def from_state(cls, state: dict) -> "Trainer":
        """A trainer rebuilt from ``export_state(with_data=True)``."""
        tr = cls.__new__(cls)
        tr.import_state(state)
        return tr

    # -- evaluation ------------------------------------------------------------------------
    @property
    def latest(self) -> dict:
        rec = dict(self.history[-1])
        rec["steps"] = self.steps
        if self.diverged:
            rec["diverged"] = self.diverged
        return rec

    @torch.no_grad()
    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Raw model outputs (logits or values) for inputs ``x``, in eval mode, batched."""
        was_training = self.model.training
        self.model.eval()
        bs = self.config.eval_batch_size
        x = x.to(self.device)
        if getattr(self, "_buckets", None) is not None and x.dim() == 2 and len(x):
            try:            # sorted by length, each batch cut to its longest: no compute on padding
                out = B.outputs_by_length(self.model, x, batch_size=bs)
            except ValueError:      # not plain right-padded tokens: the padded way
                out = None
            if out is not None:
                if was_training:
                    self.model.train()
                return out
        outs = [self.model(x[i: i + bs]) for i in range(0, len(x), bs)] if len(x) else []
        if was_training:
            self.model.train()
        if not outs:
            return torch.empty(0)
        return torch.cat(outs)

    def predict(self, x: torch.Tensor) -> np.ndarray:
        """Predictions a person reads: probability of class 1 (binary), class probabilities
        (multiclass, per-residue), or the value (regression)."""
        out = self.outputs(x).float().cpu()
        if self.task == "binary":
            return torch.sigmoid(out.reshape(len(out), -1)[:, 0]).numpy()
        if self.task in ("multiclass", *_TOKEN_TASKS):
            return torch.softmax(out, -1).numpy()
        return out.reshape(len(out), -1)[:, 0].numpy()

    def evaluate(self, split: str = "val") -> dict:
        """Loss and metrics of the current weights on 'train', 'val' or 'test'. For the test set,
        use ``score_test`` (it records that the test set was looked at)."""
        x, y = self.data.part(split)
        if self.task in LM_TASKS:
            return self._lm_scores(*self._lm_part(split))
        out = self.outputs(x)
        res = {"loss": float(self.loss_fn(out, y)) if len(y) else float("nan")}
        if len(y):
            res.update(M.compute(self.task, out.float().cpu().numpy(), y.cpu().numpy()))
        return res

    def score_test(self) -> dict:
        """Score the held-out test set with the current weights: {'epoch', 'loss', metrics...,
        'looks'}. Meant to be called once, when training is over; every call is counted
        (``looks``), because each look at the test set is a chance to tune to it."""
        res = self.evaluate("test")
        self.test_looks += 1
        self.test_scores = {"epoch": self.epoch, **res, "looks": self.test_looks, "n": len(self.data.y_test)}
        return dict(self.test_scores)

    def _evaluate_epoch(self, running_train_loss: float | None = None) -> dict:
        small = self.n_train <= 4096
        elapsed = self.seconds + (time.perf_counter() - self._chunk_t0 if self._chunk_t0 is not None else 0.0)
        rec = {"epoch": self.epoch, "step": self.steps, "seconds": round(elapsed, 4)}
        if self.task in LM_TASKS:
            return self._evaluate_lm_epoch(rec, running_train_loss)
        with torch.no_grad():
            was_training = self.model.training
            self.model.eval()
            if small or running_train_loss is None:
                rec["train_loss"] = float(self.loss_fn(self.outputs(self.data.x_train), self.data.y_train))
            else:
                rec["train_loss"] = running_train_loss
            yv = self.data.y_val
            out_val = self.outputs(self.data.x_val)
            rec["val_loss"] = float(self.loss_fn(out_val, yv)) if len(yv) else float("nan")
            if self.config.track_metrics and len(yv):
                m = M.compute(self.task, out_val.float().cpu().numpy(), yv.cpu().numpy())
                rec.update({f"val_{k}": v for k, v in m.items()})
            # the validation outputs of this moment: the page's confusion matrix, ROC ... draw from
            # these, so every number on the page is from the same moment as this record
            self.val_outputs = out_val.float().cpu().numpy() if len(yv) else None
            rec["lr"] = self.current_lr if hasattr(self, "optimizer") else self.config.lr
            if was_training:
                self.model.train()
        return rec

    # -- language models -------------------------------------------------------------------
    def _lm_part(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of a part for an LM. A masked LM's training rows get one fixed masking
        (its own generator: the training stream is not touched), for the epoch-0 training loss."""
        x, y = self.data.part(split)
        if self._lm_mask is not None and split != "val" and len(x):
            from playground.data.split import split_seed
            from playground.lm.masking import mask_tokens
            g = torch.Generator().manual_seed(split_seed(self.config.seed) + 1)
            return mask_tokens(x.cpu(), g, **self._lm_mask)
        return x, y

    @torch.no_grad()
    def _lm_scores(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """{'loss' (nats per target token), 'bits', 'perplexity', 'accuracy', 'n_tokens'}, in eval mode,
        in batches sized so that the logits stay small (a k-mer vocabulary is wide)."""
        nan = float("nan")
        if not len(y):
            return {"loss": nan, "bits": nan, "perplexity": nan, "accuracy": nan, "n_tokens": 0}
        was = self.model.training
        self.model.eval()
        width = max(1, x.shape[1] * int(self.data.n_classes))
        bs = max(1, min(self.config.eval_batch_size, 4_000_000 // width))
        total = torch.zeros((), dtype=torch.float64)
        correct = n = 0
        for i in range(0, len(x), bs):
            xb, yb = x[i: i + bs].to(self.device), y[i: i + bs].to(self.device)
            out = self.model(xb)
            keep = yb != -100
            total += F.cross_entropy(out.reshape(-1, out.shape[-1]).float(), yb.reshape(-1), ignore_index=-100,
                                     reduction="sum").double().cpu()
            correct += int((out.argmax(-1)[keep] == yb[keep]).sum())
            n += int(keep.sum())
        if was:
            self.model.train()
        loss = float(total) / n if n else nan
        return {"loss": loss, "bits": loss / math.log(2), "perplexity": math.exp(min(loss, 700.0)),
                "accuracy": correct / n if n else nan, "n_tokens": n}

    def _evaluate_lm_epoch(self, rec: dict, running_train_loss: float | None) -> dict:
        """An LM's epoch record: the training loss is the epoch's running mean over its (freshly masked)
        batches; validation adds bits per token, perplexity and accuracy on the target tokens."""
        rec["train_loss"] = (running_train_loss if running_train_loss is not None
                             else self._lm_scores(*self._lm_part("train"))["loss"])
        v = self._lm_scores(self.data.x_val, self.data.y_val)
        rec.update(val_loss=v["loss"], val_bits=v["bits"], val_ppl=v["perplexity"], val_acc=v["accuracy"])
        self.val_outputs = None
        rec["lr"] = self.current_lr if hasattr(self, "optimizer") else self.config.lr
        return rec

    def history_frame(self):
        import pandas as pd
        return pd.DataFrame(self.history)
