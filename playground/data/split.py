"""The container every page hands to the Trainer: tensors for a seeded train/test split."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

TASKS = ("regression", "binary", "multiclass", "per_residue")
# The split draws from its own random stream: a run's seed plus this prime, so the train/test split
# does not move in step with the initial weights or the shuffling, which use the seed itself.
SPLIT_SEED_OFFSET = 7919


def split_seed(seed: int) -> int:
    """The seed of the train/test split's random generator for a run with seed ``seed``
    (every split in the playground, and in the scripts it exports, uses it)."""
    return int(seed) + SPLIT_SEED_OFFSET


def split_indices(n: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split; at least one example lands on each side when n >= 2."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError("train fraction must be between 0 and 1")
    perm = np.random.default_rng(split_seed(seed)).permutation(n)
    n_train = int(round(n * train_fraction))
    if n >= 2:
        n_train = min(max(n_train, 1), n - 1)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


@dataclass
class SplitData:
    """Train and test tensors plus what the loss needs to know.

    task: 'regression' (y float, shape (n,)), 'binary' (y float 0/1, shape (n,)),
    'multiclass' (y long class ids, shape (n,)), 'per_residue' (y long (n, L), -100 = ignore).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: str
    n_classes: int = 2
    class_names: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")

    @property
    def n_outputs(self) -> int:
        """Width of the model's last layer for this task."""
        if self.task in ("regression", "binary"):
            return 1
        return int(self.n_classes)

    @classmethod
    def from_arrays(cls, x, y, task: str, train_fraction: float, seed: int, **kw) -> "SplitData":
        x = torch.as_tensor(np.asarray(x))
        if x.dtype == torch.float64:
            x = x.float()
        y = np.asarray(y)
        yt = torch.as_tensor(y, dtype=torch.long if task in ("multiclass", "per_residue") else torch.float32)
        tr, te = split_indices(len(x), train_fraction, seed)
        meta = kw.pop("meta", {})
        meta = {**meta, "train_idx": tr, "test_idx": te}
        return cls(x[tr], yt[tr], x[te], yt[te], task, meta=meta, **kw)

    def to(self, device) -> "SplitData":
        return SplitData(self.x_train.to(device), self.y_train.to(device), self.x_test.to(device),
                         self.y_test.to(device), self.task, self.n_classes, list(self.class_names), dict(self.meta))
