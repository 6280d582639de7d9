"""Neural Network Basics (pages/1_Neural_Network_Basics.py): its settings and its run.

``PARAMS`` is the one place each setting and its default is written; the page's widgets, its URL,
the lessons and the code export all read them from here. ``build(values)`` is the run the page
trains for those values (seeded data, initial weights and shuffling), for the page, the lessons
and notebooks alike::

    from playground.setups import basics
    trainer = basics.build({"dataset": "xor", "lr": 0.1}).make_trainer()
"""
from __future__ import annotations

import functools

from playground.data import toy
from playground.data.split import SplitData, split_shares
from playground.models.base import ACTIVATION_LABELS
from playground.models.mlp import MLPSpec
from playground.settings import Param, Schema
from playground.setups import Run, complete
from playground.train import LEARNING_RATES, OPTIMIZERS, REGULARIZATION, SCHEDULES, TrainConfig

N_POINTS = 500
OVERFIT_DEFAULT_BATCH = 10   # "overfit one batch" with full-batch training keeps this many examples
MAX_LAYERS = 6
MAX_NEURONS = 32

BATCH_CHOICES = (1, 2, 5, 10, 20, 30, 50, 100, 0)   # 0 = full batch
REG_RATES = (0.0, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
GD_RATES = (0.0001, 0.001, 0.003, 0.01, 0.03, 0.1)
BALANCE_CHOICES = (5, 10, 25, 50)          # % of points in class 1 (lesson 10: MCC vs accuracy)
WARMUP_CHOICES = (0, 10, 20, 50, 100, 200, 500)
ACCUM_CHOICES = (1, 2, 4, 8)
CMP_EPOCHS = (20, 50, 100, 200)
DEFAULT_NEURONS = (4, 2, 2, 2, 2, 2)

PARAMS = [
    # data
    Param("dataset", "circle", choices=tuple(toy.TOY_SETS)),
    Param("noise", 0, "int", lo=0, hi=50, help="% noise"),
    Param("train_pct", 50, "int", lo=10, hi=90, help="% of the points used for training"),
    Param("val_pct", 10, "int", lo=5, hi=30, help="% of the points for validation (the rest is the test set)"),
    Param("batch", 10, "int", choices=BATCH_CHOICES, help="0 = full batch"),
    Param("features", ["x1", "x2"], "list", choices=tuple(toy.FEATURES), max_len=7),
    # network
    Param("layers", 2, "int", lo=0, hi=MAX_LAYERS),
    *[Param(f"n{i + 1}", DEFAULT_NEURONS[i], "int", lo=1, hi=MAX_NEURONS, help=f"neurons in hidden layer {i + 1}")
      for i in range(MAX_LAYERS)],
    Param("activation", "tanh", choices=tuple(ACTIVATION_LABELS)),
    # training: the learning rate and the regularization are applied to the running trainer
    Param("lr", 0.03, "float", choices=tuple(LEARNING_RATES), live=True),
    Param("optimizer", "sgd", choices=tuple(OPTIMIZERS)),
    Param("reg", "none", choices=tuple(REGULARIZATION), live=True),
    Param("reg_rate", 0.0, "float", choices=REG_RATES, live=True),
    # display
    Param("log_y", False, "bool", view=True),
    Param("show_test", False, "bool", view=True),
    Param("discretize", False, "bool", view=True),
    # the gradient-descent tab (its own one-neuron run, drawn from these settings)
    Param("gd_lr", 0.003, "float", choices=GD_RATES, view=True),
    Param("gd_steps", 100, "int", lo=5, hi=1000, view=True),
    # training tricks and sanity checks (lessons 10-12)
    Param("balance", 50, "int", choices=BALANCE_CHOICES, help="% of the points in class 1"),
    Param("overfit", False, "bool", help="train on the first batch only"),
    Param("warmup", 0, "int", choices=WARMUP_CHOICES),
    Param("accum", 1, "int", choices=ACCUM_CHOICES),
    Param("schedule", "off", choices=tuple(SCHEDULES), help="learning-rate schedule (reads the validation loss)"),
    # the course workshop: inputs scaled to mean 0 / sd 1, and the order of the training examples
    Param("normalize", False, "bool", help="standardise every input feature (training-set mean 0, sd 1)"),
    Param("shuffle", True, "bool", help="a new random order of the training points every epoch"),
    # the optimizer comparison tab (its own runs, on a button press)
    Param("cmp_epochs", 50, "int", choices=CMP_EPOCHS, view=True),
]
SCHEMA = Schema("basics", PARAMS)
PRIVATE = ("compare",)   # the optimizer comparison: (its signature, {optimizer: history})


def features_of(values: dict) -> list[str]:
    """The chosen input features that make sense for the data set (at least x1)."""
    return toy.valid_features(values["dataset"], values["features"] or ["x1"])


def input_scaling(data: SplitData) -> tuple[tuple, tuple]:
    """(mean, sd) of every input feature over the training points: what ``normalize`` subtracts and
    divides by (a feature that never varies keeps sd 1). Validation and test points use the same numbers."""
    x = data.x_train.double()
    std = x.std(0, unbiased=False) if len(x) > 1 else x.new_ones(x.shape[1])
    std = std.masked_fill(~(std > 1e-8), 1.0)
    return tuple(float(m) for m in x.mean(0)), tuple(float(s) for s in std)


def spec_of(values: dict, data: SplitData | None = None) -> MLPSpec:
    """The network for these values; with ``normalize`` its first step standardises the inputs with
    the training set's mean and sd (``data``, made from the values when not given)."""
    v = complete(SCHEMA, values)
    hidden = tuple(int(v[f"n{i + 1}"]) for i in range(int(v["layers"])))
    if not v["normalize"]:
        return MLPSpec(len(features_of(v)), hidden, v["activation"], 1)
    mean, std = input_scaling(data if data is not None else make_data(v))
    return MLPSpec(len(features_of(v)), hidden, v["activation"], 1, input_mean=mean, input_std=std)


def config_of(values: dict) -> TrainConfig:
    v = complete(SCHEMA, values)
    return TrainConfig(optimizer=v["optimizer"], lr=float(v["lr"]), batch_size=int(v["batch"]),
                       regularization=v["reg"], reg_rate=float(v["reg_rate"]), seed=int(v["seed"]),
                       device=v["device"], warmup_steps=int(v["warmup"]), grad_accum=int(v["accum"]),
                       schedule=v["schedule"], shuffle=bool(v["shuffle"]))


def single_batch(data: SplitData, size: int) -> SplitData:
    """The sanity check "overfit a single batch": keep only the first ``size`` training
    examples (the validation and test sets are unchanged). A working model drives their loss to about 0."""
    size = max(1, min(int(size), len(data.y_train)))
    meta = dict(data.meta)
    meta["train_idx"] = meta["train_idx"][:size]
    if "points_train" in meta:
        meta["points_train"] = meta["points_train"][:size]
    return SplitData(data.x_train[:size], data.y_train[:size], data.x_test, data.y_test, data.task, data.n_classes,
                     list(data.class_names), meta, x_val=data.x_val, y_val=data.y_val)


def make_data(values: dict) -> SplitData:
    """The page's seeded data set for these values (class balance and single-batch mode included)."""
    v = complete(SCHEMA, values)
    train, val = split_shares(v["train_pct"], v["val_pct"])
    data = toy.make_split(v["dataset"], N_POINTS, v["noise"] / 100, train, int(v["seed"]),
                          features_of(v), positive_fraction=int(v["balance"]) / 100, val_fraction=val)
    if v["overfit"]:
        data = single_batch(data, int(v["batch"]) or OVERFIT_DEFAULT_BATCH)
    return data


def build(values: dict) -> Run:
    """The run the page trains for these values (missing ones take their defaults).
    extras: ``features`` (the inputs the network sees) and ``toy`` (the data set's description)."""
    v = complete(SCHEMA, values)
    data = make_data(v)
    return Run(data, spec_of(v, data), config_of(v), SCHEMA.signature(v),
               {"features": features_of(v), "toy": toy.TOY_SETS[v["dataset"]]})


def descent_view(values: dict):
    """The page's gradient-descent tab for these values: full-batch gradient descent of one linear
    neuron (y = w·x + b) on the current 1-D data set, or on the 1-D Linear set for 2-D data."""
    v = complete(SCHEMA, values)
    gd_set = v["dataset"] if toy.TOY_SETS[v["dataset"]].dims == 1 else "linear"
    return _descent(gd_set, int(v["noise"]), int(v["seed"]), float(v["gd_lr"]), int(v["gd_steps"]))


@functools.lru_cache(maxsize=64)
def _descent(gd_set: str, noise: int, seed: int, lr: float, steps: int):
    """One path per setting combination for the whole process: a class that opens the page with
    the same settings computes it once (every full run of the page draws this tab)."""
    from playground.landscape import descent_path

    data = toy.make_split(gd_set, 200, noise / 100, 0.5, seed, ["x1"])
    return descent_path(data, lr, steps, "sgd", seed, w0=-1.5, b0=1.5)

