"""Toy data sets of TensorFlow Playground (and the course's 1-D additions).

Each generator is a pure function of (n, noise, seed) returning points ``X`` (n, 2) or
(n, 1) in [-6, 6] and labels ``y``: 0/1 for classification, a value in about [-1, 1] for
regression. ``noise`` is a fraction from 0 to 0.5, as the playground's noise slider / 100.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from playground.data.split import SplitData

RANGE = 6.0


@dataclass(frozen=True)
class ToySet:
    key: str
    label: str
    problem: str   # 'classification' or 'regression'
    dims: int      # 1 or 2 input dimensions
    description: str


def circle(n: int, noise: float, seed: int):
    """Class 1 inside a circle of radius 2.5, class 0 on a ring from 3.5 to 5."""
    rng = np.random.default_rng(seed)
    radius = 5.0
    n_in = n // 2
    r = np.concatenate([rng.uniform(0, radius * 0.5, n_in), rng.uniform(radius * 0.7, radius, n - n_in)])
    a = rng.uniform(0, 2 * np.pi, n)
    X = np.stack([r * np.sin(a), r * np.cos(a)], 1)
    Xn = X + rng.uniform(-radius, radius, X.shape) * noise
    y = (np.hypot(Xn[:, 0], Xn[:, 1]) < radius * 0.5).astype(np.float32)
    return Xn, y


def xor(n: int, noise: float, seed: int):
    """Class 1 in the quadrants where x1*x2 > 0."""
    rng = np.random.default_rng(seed)
    pad = 0.3
    X = rng.uniform(-5, 5, (n, 2))
    X = X + np.where(X > 0, pad, -pad)
    Xn = X + rng.uniform(-5, 5, X.shape) * noise
    y = (Xn[:, 0] * Xn[:, 1] >= 0).astype(np.float32)
    return Xn, y


def gauss(n: int, noise: float, seed: int):
    """Two Gaussian blobs at (2, 2) (class 1) and (-2, -2) (class 0); noise widens them."""
    rng = np.random.default_rng(seed)
    sd = np.sqrt(0.5 + (4.0 - 0.5) * noise / 0.5)
    n1 = n // 2
    X = np.concatenate([rng.normal(2, sd, (n1, 2)), rng.normal(-2, sd, (n - n1, 2))])
    y = np.concatenate([np.ones(n1), np.zeros(n - n1)]).astype(np.float32)
    return X, y


def spiral(n: int, noise: float, seed: int):
    """Two interleaved spirals."""
    rng = np.random.default_rng(seed)
    n1 = n // 2
    Xs, ys = [], []
    for delta, label, m in ((0.0, 1.0, n1), (np.pi, 0.0, n - n1)):
        i = np.arange(m)
        r = i / m * 5
        t = 1.75 * i / m * 2 * np.pi + delta
        pts = np.stack([r * np.sin(t), r * np.cos(t)], 1) + rng.uniform(-1, 1, (m, 2)) * noise
        Xs.append(pts)
        ys.append(np.full(m, label))
    return np.concatenate(Xs), np.concatenate(ys).astype(np.float32)


def plane(n: int, noise: float, seed: int):
    """Regression: y = (x1 + x2) / 10, inputs jittered by noise."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-RANGE, RANGE, (n, 2))
    y = (X[:, 0] + X[:, 1]) / 10.0
    Xn = X + rng.uniform(-RANGE, RANGE, X.shape) * noise
    return Xn, y.astype(np.float32)


_GAUSSIANS = [(-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1)]


def multi_gauss(n: int, noise: float, seed: int):
    """Regression: six Gaussian bumps of alternating sign."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-RANGE, RANGE, (n, 2))
    vals = np.stack([s * np.exp(-((X[:, 0] - cx) ** 2 + (X[:, 1] - cy) ** 2) / 2.0) for cx, cy, s in _GAUSSIANS], 1)
    y = vals[np.arange(n), np.abs(vals).argmax(1)]
    Xn = X + rng.uniform(-RANGE, RANGE, X.shape) * noise
    return Xn, y.astype(np.float32)


def linear(n: int, noise: float, seed: int, beta: float = 0.15):
    """1-D regression: y = beta * x + eps, eps ~ N(0, noise)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-RANGE, RANGE, n)
    y = beta * x + rng.normal(0, 1, n) * noise
    return x[:, None], y.astype(np.float32)


def cubic(n: int, noise: float, seed: int):
    """1-D regression: y = (x / 6)^3 + eps, so y runs from -1 to 1."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-RANGE, RANGE, n)
    y = (x / RANGE) ** 3 + rng.normal(0, 1, n) * noise * 0.5
    return x[:, None], y.astype(np.float32)


GENERATORS = {"circle": circle, "xor": xor, "gauss": gauss, "spiral": spiral, "plane": plane,
              "multi_gauss": multi_gauss, "linear": linear, "cubic": cubic}
TOY_SETS = {
    "circle": ToySet("circle", "Circle", "classification", 2, "Class 1 inside a circle, class 0 on a ring around it."),
    "xor": ToySet("xor", "Exclusive or", "classification", 2, "Class 1 where x1 and x2 have the same sign."),
    "gauss": ToySet("gauss", "Gaussian", "classification", 2, "Two Gaussian clouds."),
    "spiral": ToySet("spiral", "Spiral", "classification", 2, "Two interleaved spirals: the hard one."),
    "plane": ToySet("plane", "Plane", "regression", 2, "y = (x1 + x2) / 10."),
    "multi_gauss": ToySet("multi_gauss", "Multi Gaussian", "regression", 2, "Six bumps of alternating sign."),
    "linear": ToySet("linear", "Linear (βx)", "regression", 1, "y = 0.15·x + ε: one neuron with no activation is enough."),
    "cubic": ToySet("cubic", "Cubic (y≈x³)", "regression", 1, "y = (x/6)³ + ε: a straight line cannot bend."),
}

# Input features, as TF Playground offers them.
FEATURES = {
    "x1": ("X₁", lambda X: X[:, 0]),
    "x2": ("X₂", lambda X: X[:, 1]),
    "x1_sq": ("X₁²", lambda X: X[:, 0] ** 2),
    "x2_sq": ("X₂²", lambda X: X[:, 1] ** 2),
    "x1x2": ("X₁X₂", lambda X: X[:, 0] * X[:, 1]),
    "sin_x1": ("sin(X₁)", lambda X: np.sin(X[:, 0])),
    "sin_x2": ("sin(X₂)", lambda X: np.sin(X[:, 1])),
}
FEATURES_1D = ("x1", "x1_sq", "sin_x1")


def generate(name: str, n: int = 500, noise: float = 0.0, seed: int = 0):
    """Points and labels of a toy set; a pure function of its arguments."""
    if name not in GENERATORS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(GENERATORS)}")
    if not 0.0 <= noise <= 0.5:
        raise ValueError("noise must be between 0 and 0.5")
    X, y = GENERATORS[name](int(n), float(noise), int(seed))
    return X.astype(np.float32), y.astype(np.float32)


def imbalance(X: np.ndarray, y: np.ndarray, n: int, positive_fraction: float, seed: int):
    """Keep ``n`` points of which ``positive_fraction`` are class 1 (the rest class 0), drawn
    without replacement from a larger pool ``X, y``: e.g. 0.1 gives a 90 %-imbalanced set."""
    rng = np.random.default_rng(seed + 104729)
    n_pos = int(round(n * positive_fraction))
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if n_pos > len(pos) or n - n_pos > len(neg):
        raise ValueError("not enough points of one class for this class balance; lower the noise")
    keep = np.sort(np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, n - n_pos, replace=False)]))
    return X[keep], y[keep]


def generate_balanced(name: str, n: int = 500, noise: float = 0.0, seed: int = 0, positive_fraction: float = 0.5):
    """``generate``, optionally with a chosen share of class 1 (classification sets only).
    0.5 is the plain data set; other shares pick ``n`` points from a pool of ``4 n``."""
    if positive_fraction == 0.5 or TOY_SETS[name].problem != "classification":
        return generate(name, n, noise, seed)
    if not 0.0 < positive_fraction < 1.0:
        raise ValueError("the share of class 1 must be between 0 and 1")
    X, y = generate(name, 4 * n, noise, seed)
    return imbalance(X, y, n, positive_fraction, seed)


def valid_features(name: str, features) -> list[str]:
    """The chosen features that make sense for the data set's dimension (at least x1)."""
    dims = TOY_SETS[name].dims
    ok = [f for f in features if f in FEATURES and (dims == 2 or f in FEATURES_1D)]
    return ok or ["x1"]


def featurize(X: np.ndarray, features) -> np.ndarray:
    """Map raw points to the chosen input features, one column each."""
    return np.stack([FEATURES[f][1](X) for f in features], 1).astype(np.float32)


def make_split(name: str, n: int = 500, noise: float = 0.0, train_fraction: float = 0.5, seed: int = 0,
               features=("x1", "x2"), positive_fraction: float = 0.5, val_fraction: float = 0.1) -> SplitData:
    """A toy set, featurised and split, ready for the Trainer. ``positive_fraction`` < 0.5
    makes a classification set imbalanced (e.g. 0.1: 90 % class 0)."""
    X, y = generate_balanced(name, n, noise, seed, positive_fraction)
    feats = valid_features(name, features)
    task = "binary" if TOY_SETS[name].problem == "classification" else "regression"
    data = SplitData.from_arrays(featurize(X, feats), y, task, train_fraction, seed, val_fraction,
                                 meta={"points": X, "labels": y, "features": feats, "dataset": name,
                                       # how it was made (the code export regenerates it from these)
                                       "n": n, "noise": noise, "train_fraction": train_fraction,
                                       "val_fraction": val_fraction,
                                       "positive_fraction": positive_fraction, "seed": seed})
    data.meta["points_train"] = X[data.meta["train_idx"]]
    data.meta["points_val"] = X[data.meta["val_idx"]]
    data.meta["points_test"] = X[data.meta["test_idx"]]
    return data


def grid(dims: int, resolution: int = 50) -> np.ndarray:
    """Raw points covering the input range, for heatmaps (2-D) or curves (1-D)."""
    t = np.linspace(-RANGE, RANGE, resolution, dtype=np.float32)
    if dims == 1:
        return t[:, None]
    g1, g2 = np.meshgrid(t, t)
    return np.stack([g1.ravel(), g2.ravel()], 1)


def grid_inputs(dims: int, features, resolution: int = 50) -> torch.Tensor:
    return torch.from_numpy(featurize(grid(dims, resolution), features))
