"""Run comparison: train several architectures on the same data and split, side by side.

    specs = default_specs("dna", data)             # CNN, LSTM, Transformer, hybrid (small sizes)
    runs = compare(data, specs, epochs=10, config=TrainConfig(lr=0.003, batch_size=32), seed=0)
    results_table(runs)                            # name, parameters, seconds, best validation metric

Every run starts from ``build_model(spec, seed)`` and trains with the same TrainConfig (so the
same shuffling) on the same SplitData. ``Comparison`` does the same in time-boxed chunks, so a
page can show a progress bar and stay responsive: ``comparison.run_for(0.5)`` trains for about
half a second and returns.

Two models trained at the same time on the same examples (the ESM-2 page's head vs CNN):

    pair = SideBySide({"head": Trainer(...), "CNN": Trainer(...)})   # LiveTraining drives it like one Trainer
    rows = size_sweep(datasets, specs, sizes=(10, 50, 200), epochs=15, config=cfg, seed=0)
    subsample_train(data, 50, seed)                # the same 50 training examples for every model
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import math
from typing import Callable, Sequence

import numpy as np
import torch

from playground import metrics as M
from playground.data.split import SplitData
from playground.models.base import ModelSpec, build_model, count_parameters
from playground.models.hybrid import HYBRID_SMALL, HybridSpec, TokenCNNSpec
from playground.models.rnn import RNNSpec
from playground.models.transformer import TransformerSpec
from playground.train import TrainConfig, Trainer

FAMILIES = {"cnn": "CNN", "rnn": "Vanilla RNN", "lstm": "LSTM", "gru": "GRU", "transformer": "Transformer",
            "hybrid": "Hybrid CNN+Transformer"}


def vocab_size(alphabet: str) -> int:
    """Token ids including padding (0) and unknown: DNA 6, protein 22."""
    return {"dna": 6, "protein": 22}[alphabet]


def default_specs(alphabet: str, data: SplitData, families=("cnn", "lstm", "transformer", "hybrid")) -> dict:
    """Small specs (seconds per epoch on one CPU core) for the families that fit the task.
    The hybrid pools to a fixed number of positions, so it cannot label residues: it is left
    out for per-residue tasks."""
    V = vocab_size(alphabet)
    per_pos = data.task == "per_residue"
    out = data.n_outputs
    specs: dict[str, ModelSpec] = {}
    for fam in families:
        if fam == "cnn":
            specs["CNN"] = TokenCNNSpec(vocab_size=V - 1, embed_dim=16, channels=(32, 32), kernel=7,
                                        pooling="per_position" if per_pos else "max", n_outputs=out)
        elif fam in ("rnn", "lstm", "gru"):
            specs[FAMILIES[fam]] = RNNSpec(cell=fam, vocab_size=V, embed_dim=16, hidden=32, layers=1,
                                           bidirectional=True, output="per_position" if per_pos else "pooled",
                                           n_outputs=out)
        elif fam == "transformer":
            specs["Transformer"] = TransformerSpec(vocab_size=V, d_model=32, heads=4, layers=2, ff=64, dropout=0.1,
                                                   pooling="per_position" if per_pos else "mean",
                                                   max_len=max(64, int(data.x_train.shape[1])), n_outputs=out)
        elif fam == "hybrid":
            if per_pos:
                continue
            L = int(data.x_train.shape[1])
            specs["Hybrid CNN+Transformer"] = dataclasses.replace(
                HYBRID_SMALL, vocab_size=V - 1, n_outputs=out, pool_positions=max(8, min(64, L // 2)))
        else:
            raise ValueError(f"unknown family {fam!r}; choose from {sorted(FAMILIES)}")
    return specs


def make_spec(family: str, alphabet: str, data: SplitData, hp: dict | None = None) -> ModelSpec:
    """A spec for one family from a page's settings ``hp`` (missing keys: the small defaults).

    Transformer: d_model heads layers ff dropout norm positional pooling; RNN (cell 'rnn'/'lstm'/'gru'):
    cell hidden layers bidirectional output embed_dim; CNN: channels kernel pooling embed_dim;
    hybrid: every HybridSpec field. The output layer and the per-residue/pooled choice follow the task."""
    hp = dict(hp or {})
    V = vocab_size(alphabet)
    per_pos = data.task == "per_residue"
    out = data.n_outputs
    L = int(data.x_train.shape[1])
    if family == "transformer":
        pooling = hp.pop("pooling", "mean")
        pooling = "per_position" if per_pos else pooling
        return TransformerSpec(**{**dict(d_model=32, heads=4, layers=2, ff=64, dropout=0.1), **hp},
                               vocab_size=V, pooling=pooling, max_len=max(64, L), n_outputs=out)
    if family in ("rnn", "lstm", "gru"):
        cell = hp.pop("cell", "lstm" if family == "rnn" else family)
        output = hp.pop("output", "pooled")
        output = "per_position" if per_pos else output
        return RNNSpec(**{**dict(embed_dim=16, hidden=32, layers=1, bidirectional=True), **hp}, cell=cell,
                       vocab_size=V, output=output, n_outputs=out)
    if family == "cnn":
        pooling = hp.pop("pooling", "max")
        pooling = "per_position" if per_pos else pooling
        return TokenCNNSpec(**{**dict(embed_dim=16, channels=(32, 32), kernel=7), **hp}, vocab_size=V - 1,
                            pooling=pooling, n_outputs=out)
    if family == "hybrid":
        if per_pos:
            raise ValueError("the hybrid CNN+Transformer max-pools the sequence to a fixed number of positions, so it "
                             "classifies whole sequences and cannot label every residue; choose the Transformer, "
                             "an RNN or the CNN for per-residue tasks")
        base = dataclasses.asdict(HYBRID_SMALL)
        base.update(hp)
        base.update(vocab_size=V - 1, n_outputs=out)
        return HybridSpec(**base)
    raise ValueError(f"unknown model family {family!r}; choose from {sorted(FAMILIES)}")


def headline_metric(task: str) -> str:
    return M.HEADLINE[task]


@dataclass
class Run:
    """One finished (or running) training run of a comparison."""

    name: str
    spec: dict
    params: int
    epochs: int
    seconds: float
    history: list[dict]
    metric: str                  # e.g. 'accuracy' (validation = the held-out split)
    data_key: str = ""           # which data set and split it ran on
    seed: int = 0
    status: str = "running"      # 'running', 'done', 'diverged'
    note: str = ""

    @property
    def best(self) -> float:
        vals = [h.get(f"val_{self.metric}") for h in self.history[1:]]
        vals = [v for v in vals if v is not None and math.isfinite(v)]
        return max(vals) if vals else float("nan")

    @property
    def best_epoch(self) -> int | None:
        vals = [(h.get(f"val_{self.metric}"), h["epoch"]) for h in self.history[1:]]
        vals = [(v, e) for v, e in vals if v is not None and math.isfinite(v)]
        return max(vals, key=lambda t: (t[0], -t[1]))[1] if vals else None

    @property
    def final_val_loss(self) -> float:
        return float(self.history[-1]["val_loss"]) if self.history else float("nan")

    def row(self) -> dict:
        return {"model": self.name, "parameters": self.params, "epochs": self.epochs,
                "seconds": round(self.seconds, 2), f"best validation {self.metric}": round(self.best, 4),
                "best epoch": self.best_epoch, "final validation loss": round(self.final_val_loss, 4),
                "status": self.status, "data": self.data_key, "seed": self.seed}


class Comparison:
    """Train ``specs`` one after another on ``data`` for ``epochs`` each, in time-boxed chunks."""

    def __init__(self, data: SplitData, specs: dict, epochs: int, config: TrainConfig | None = None, seed: int = 0,
                 data_key: str = ""):
        if not specs:
            raise ValueError("choose at least one model to compare")
        if epochs < 1:
            raise ValueError("train for at least one epoch")
        self.data = data
        self.specs = dict(specs)
        self.epochs = int(epochs)
        self.config = config or TrainConfig()
        self.seed = int(seed)
        self.data_key = data_key
        self.metric = headline_metric(data.task)
        self.runs: list[Run] = []
        self._queue = list(self.specs.items())
        self._trainer: Trainer | None = None

    def _start_next(self) -> None:
        name, spec = self._queue.pop(0)
        model = build_model(spec, self.seed)
        cfg = dataclasses.replace(self.config, seed=self.seed, track_metrics=True)
        self._trainer = Trainer(model, self.data, cfg)
        self.runs.append(Run(name, spec.to_dict(), count_parameters(model), 0, 0.0, self._trainer.history,
                             self.metric, self.data_key, self.seed))

    @property
    def done(self) -> bool:
        return not self._queue and self._trainer is None

    @property
    def current(self) -> str | None:
        return self.runs[-1].name if self._trainer is not None else (self._queue[0][0] if self._queue else None)

    @property
    def progress(self) -> float:
        total = len(self.specs) * self.epochs
        finished = sum(r.epochs for r in self.runs)
        return min(1.0, finished / total)

    def run_for(self, seconds: float) -> bool:
        """Train for about ``seconds``; returns True when every run has finished."""
        deadline = time.perf_counter() + seconds
        while not self.done and time.perf_counter() < deadline:
            if self._trainer is None:
                self._start_next()
            tr, run = self._trainer, self.runs[-1]
            left = self.epochs * tr.steps_per_epoch - tr.steps
            tr.run_for(max(0.0, deadline - time.perf_counter()), max_steps=max(1, left))
            run.epochs, run.seconds, run.history = tr.epoch, tr.seconds, tr.history
            if tr.diverged:
                run.status, run.note = "diverged", tr.diverged
            if tr.epoch >= self.epochs or tr.done:
                if run.status == "running":
                    run.status = "done"
                self._trainer = None
        return self.done

    def run_all(self) -> list[Run]:
        while not self.run_for(60.0):
            pass
        return self.runs


def compare(data: SplitData, specs: dict, epochs: int, config: TrainConfig | None = None, seed: int = 0,
            data_key: str = "") -> list[Run]:
    """Train every spec for ``epochs`` on the same data and split; blocking (for notebooks, tests)."""
    return Comparison(data, specs, epochs, config, seed, data_key).run_all()


def results_table(runs: list[Run]) -> list[dict]:
    """One row per run: parameters, seconds, best validation metric ..."""
    return [r.row() for r in runs]


# ---- models trained side by side, and with fewer labels -------------------------------------------
def subsample_train(data, n: int, seed: int = 0):
    """Keep ``n`` training examples (a seeded choice: the same ones for every model given the
    same seed and training-set size); the validation and test sets are unchanged."""
    n_train = len(data.y_train)
    n = int(min(max(1, n), n_train))
    if n == n_train:
        return data
    keep = torch.as_tensor(np.sort(np.random.default_rng(int(seed) + 31).permutation(n_train)[:n]), dtype=torch.long)
    meta = {**data.meta, "train_subset": keep.numpy(), "n_train_used": n}
    return SplitData(data.x_train[keep], data.y_train[keep], data.x_test, data.y_test, data.task, data.n_classes,
                     list(data.class_names), meta, x_val=data.x_val, y_val=data.y_val)


class SideBySide:
    """Several Trainers driven as one (the LiveTraining controls accept it): ``run_for``
    trains the one that is furthest behind (in epochs), so the curves advance together."""

    def __init__(self, trainers: dict):
        if not trainers:
            raise ValueError("give at least one trainer")
        self.trainers = dict(trainers)

    @property
    def first(self):
        return next(iter(self.trainers.values()))

    @property
    def done(self) -> bool:
        return all(t.done for t in self.trainers.values())

    @property
    def steps(self) -> int:
        return sum(t.steps for t in self.trainers.values())

    @property
    def epoch(self) -> int:
        return min(t.epoch for t in self.trainers.values())

    @property
    def seconds(self) -> float:
        return sum(t.seconds for t in self.trainers.values())

    @property
    def history(self) -> list[dict]:
        return self.first.history

    @property
    def latest(self) -> dict:
        return self.first.latest

    @property
    def diverged(self) -> str | None:
        msgs = [f"{n}: {t.diverged}" for n, t in self.trainers.items() if t.diverged]
        return "; ".join(msgs) or None

    @property
    def stopped(self) -> str | None:
        msgs = [f"{n}: {t.stopped}" for n, t in self.trainers.items() if t.stopped]
        return "; ".join(msgs) or None

    @property
    def released(self) -> str | None:
        """Why the runs gave their memory back (``Trainer.release_memory``), or None."""
        return next((t.released for t in self.trainers.values() if t.released), None)

    def release_memory(self, why: str = "idle") -> None:
        for t in self.trainers.values():
            t.release_memory(why)

    def set_lr(self, lr: float) -> None:
        for t in self.trainers.values():
            t.set_lr(lr)

    def _behind(self):
        live = [t for t in self.trainers.values() if not t.done]
        if not live:
            return None
        return min(live, key=lambda t: t.epoch + t._cursor / max(1, t.n_train))

    def run_for(self, seconds: float, max_steps: int | None = None) -> dict:
        deadline = time.perf_counter() + seconds
        done = 0
        while time.perf_counter() < deadline and (max_steps is None or done < max_steps):
            t = self._behind()
            if t is None:
                break
            t.step(1)
            done += 1
        return {**self.latest, "steps_done": done}

    def run_epochs(self, n: int = 1) -> dict:
        for t in self.trainers.values():
            t.run_epochs(n)
        return self.latest

    def step(self, n: int = 1) -> dict:
        for _ in range(int(n)):
            t = self._behind()
            if t is None:
                break
            t.step(1)
        return self.latest

    def table(self) -> list[dict]:
        """One row per model: trainable parameters, epochs, seconds, losses and the headline
        validation metric (now and best so far)."""
        rows = []
        for name, t in self.trainers.items():
            metric = M.HEADLINE[t.task]
            vals = [h.get(f"val_{metric}") for h in t.history[1:]]
            vals = [v for v in vals if v is not None and math.isfinite(v)]
            h = t.history[-1]
            rows.append({"model": name,
                         "trainable parameters": sum(p.numel() for p in t.model.parameters() if p.requires_grad),
                         "training examples": t.n_train, "epochs": t.epoch, "seconds": round(t.seconds, 1),
                         "train loss": round(h["train_loss"], 4), "validation loss": round(h["val_loss"], 4),
                         f"validation {metric}": round(h.get(f"val_{metric}", float("nan")), 4),
                         f"best validation {metric}": round(max(vals), 4) if vals else float("nan")})
        return rows


def size_sweep(datasets: dict, specs: dict, sizes: Sequence[int], epochs: int, config, seed: int = 0,
               progress: Callable[[int, int, str], None] | None = None) -> list[dict]:
    """Train every model (``specs[name]`` on ``datasets[name]``) with only ``n`` training
    examples for each ``n`` in ``sizes`` (the same examples for every model), ``epochs`` epochs
    each, and report the final validation metric: how each degrades with fewer labels (a sweep
    reads validation, never the held-out test set)."""
    rows = []
    total = len(sizes) * len(specs)
    k = 0
    for n in sizes:
        for name, spec in specs.items():
            data = subsample_train(datasets[name], n, seed)
            cfg = dataclasses.replace(config, seed=seed, track_metrics=False)
            tr = Trainer(build_model(spec, seed), data, cfg)
            tr.run_epochs(epochs)
            res = tr.evaluate("val")
            metric = M.HEADLINE[data.task]
            rows.append({"training examples": len(data.y_train), "model": name, "metric": metric,
                         "value": float(res.get(metric, float("nan"))), "validation loss": float(res["loss"]),
                         "seconds": round(tr.seconds, 2), "diverged": tr.diverged or ""})
            k += 1
            if progress:
                progress(k, total, f"{name}: {len(data.y_train)} training examples")
    return rows
