"""The container every page hands to the Trainer: tensors for a seeded train / validation / test split.

The course's rule, kept everywhere in the playground: the Trainer evaluates the **validation** set
every epoch (live curves, early stopping, learning-rate schedules, "best epoch", comparisons and
lesson checks read it); the **test** set is held out and scored once, when the user asks or when
training ends (``Trainer.score_test``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

TASKS = ("regression", "binary", "multiclass", "per_residue", "lm_causal", "lm_masked")   # lm_*: playground.lm
# The split draws from its own random stream: a run's seed plus this prime, so the train/test split
# does not move in step with the initial weights or the shuffling, which use the seed itself.
SPLIT_SEED_OFFSET = 7919


def split_seed(seed: int) -> int:
    """The seed of the train/test split's random generator for a run with seed ``seed``
    (every split in the playground, and in the scripts it exports, uses it)."""
    return int(seed) + SPLIT_SEED_OFFSET


DEFAULT_VAL_FRACTION = 0.1


def split_shares(train_pct: float, val_pct: float, min_test_pct: float = 5.0) -> tuple[float, float]:
    """(train fraction, validation fraction) of a page's ``train_pct`` / ``val_pct`` settings; the
    test set gets the rest. An old two-way link (``train_pct`` only, e.g. 75 % train / 25 % test)
    keeps its training share, and its old test share becomes validation plus a test slice: the
    validation share is cut so that at least ``min_test_pct`` % stays for the test set."""
    train_pct = float(train_pct)
    val_pct = max(1.0, min(float(val_pct), 100.0 - train_pct - min_test_pct))
    if train_pct <= 0 or train_pct + val_pct >= 100:
        raise ValueError("the training and validation shares must leave room for a test set")
    return train_pct / 100.0, val_pct / 100.0


def _sizes(n: int, train_fraction: float, val_fraction: float) -> tuple[int, int]:
    n_train = int(round(n * train_fraction))
    n_val = int(round(n * val_fraction))
    if n >= 3:
        n_train = min(max(n_train, 1), n - 2)
        n_val = min(max(n_val, 1), n - n_train - 1)
    return n_train, n_val


def split_three(n: int, train_fraction: float, val_fraction: float, seed: int,
                stratify=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded train / validation / test split of ``n`` examples: (train, val, test) index arrays,
    each sorted. ``stratify``: class ids per example, so that each part keeps the class shares (each
    class is split on its own). With n >= 3, each part gets at least one example."""
    if not (0.0 < train_fraction < 1.0 and 0.0 < val_fraction < 1.0 and train_fraction + val_fraction < 1.0):
        raise ValueError("train and validation fractions must be between 0 and 1 and leave room for a test set")
    rng = np.random.default_rng(split_seed(seed))
    if stratify is None:
        perm = rng.permutation(n)
        a, b = _sizes(n, train_fraction, val_fraction)
        parts = perm[:a], perm[a:a + b], perm[a + b:]
    else:
        y = np.asarray(stratify).ravel()
        if len(y) != n:
            raise ValueError("stratify needs one class id per example")
        tr, va, te = [], [], []
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            idx = idx[rng.permutation(len(idx))]
            a, b = int(round(len(idx) * train_fraction)), int(round(len(idx) * val_fraction))
            tr.append(idx[:a])
            va.append(idx[a:a + b])
            te.append(idx[a + b:])
        parts = [np.concatenate(p) if p else np.zeros(0, int) for p in (tr, va, te)]
        # a tiny set can leave a part empty: move one example from the largest part
        if n >= 3:
            parts = [list(p) for p in parts]
            for k in range(3):
                if not parts[k]:
                    big = max(range(3), key=lambda j: len(parts[j]))
                    parts[k].append(parts[big].pop())
            parts = [np.asarray(p, dtype=np.int64) for p in parts]
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)


def split_predefined(labels, train_fraction: float, val_fraction: float, seed: int,
                     stratify=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) indices from a split named per example ("train", "valid", "test"): a
    benchmark's published split or an upload's ``split`` column. Validation is carved from the
    training rows (seeded, stratified) when no row says "valid"; test rows stay test."""
    labels = np.asarray([str(s).strip().lower() for s in labels])
    labels = np.where(np.isin(labels, ("val", "validation", "dev")), "valid", labels)
    bad = ~np.isin(labels, ("train", "valid", "test"))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"split of example {i + 1} is {labels[i]!r}: use train, valid or test")
    tr, va, te = (np.flatnonzero(labels == s) for s in ("train", "valid", "test"))
    if len(tr) == 0:
        raise ValueError("the predefined split has no training rows")
    if len(va) == 0 and len(tr) >= 2:
        share = min(0.5, val_fraction / max(1e-9, train_fraction + val_fraction))
        sub = None if stratify is None else np.asarray(stratify).ravel()[tr]
        keep, val = _carve(len(tr), share, seed, sub)
        tr, va = tr[keep], tr[val]
    return np.sort(tr), np.sort(va), np.sort(te)


def _carve(n: int, share: float, seed: int, stratify=None) -> tuple[np.ndarray, np.ndarray]:
    """Split n training rows into (keep, validation) with about ``share`` for validation."""
    rng = np.random.default_rng(split_seed(seed) + 1)
    if stratify is None:
        perm = rng.permutation(n)
        b = min(max(1, int(round(n * share))), n - 1)
        return np.sort(perm[b:]), np.sort(perm[:b])
    keep, val = [], []
    for c in np.unique(stratify):
        idx = np.flatnonzero(stratify == c)
        idx = idx[rng.permutation(len(idx))]
        b = int(round(len(idx) * share))
        val.append(idx[:b])
        keep.append(idx[b:])
    keep, val = np.concatenate(keep), np.concatenate(val)
    if len(val) == 0:
        keep, val = keep[1:], keep[:1]
    return np.sort(keep), np.sort(val)


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
    """Train, validation and test tensors plus what the loss needs to know.

    task: 'regression' (y float, shape (n,)), 'binary' (y float 0/1, shape (n,)),
    'multiclass' (y long class ids, shape (n,)), 'per_residue' (y long (n, L), -100 = ignore);
    'lm_causal' / 'lm_masked': language models (token rows; see ``playground.lm.training.lm_data``).
    The Trainer evaluates ``x_val`` every epoch; ``x_test`` is held out (``Trainer.score_test``).
    ``meta`` keeps ``train_idx``, ``val_idx`` and ``test_idx``: each part's rows in the full set.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    task: str
    n_classes: int = 2
    class_names: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.x_val is None:      # no validation set given: an empty one (the Trainer then says so)
            self.x_val = self.x_test[:0]
            self.y_val = self.y_test[:0]

    @property
    def n_outputs(self) -> int:
        """Width of the model's last layer for this task."""
        if self.task in ("regression", "binary"):
            return 1
        return int(self.n_classes)

    def sizes(self) -> tuple[int, int, int]:
        """(train, validation, test) sizes."""
        return len(self.y_train), len(self.y_val), len(self.y_test)

    def part(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) of 'train', 'val' or 'test'."""
        if name not in ("train", "val", "test"):
            raise ValueError("part must be 'train', 'val' or 'test'")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    @classmethod
    def from_indices(cls, x, y, task: str, tr, va, te, **kw) -> "SplitData":
        """The split with these (train, val, test) row indices of ``x`` and ``y`` (tensors)."""
        meta = {**kw.pop("meta", {}), "train_idx": np.asarray(tr), "val_idx": np.asarray(va),
                "test_idx": np.asarray(te)}
        tr_t, va_t, te_t = (torch.as_tensor(np.asarray(i), dtype=torch.long) for i in (tr, va, te))
        return cls(x[tr_t], y[tr_t], x[te_t], y[te_t], task, meta=meta, x_val=x[va_t], y_val=y[va_t], **kw)

    @classmethod
    def from_arrays(cls, x, y, task: str, train_fraction: float, seed: int, val_fraction: float = DEFAULT_VAL_FRACTION,
                    split_labels=None, **kw) -> "SplitData":
        """Split arrays (seeded): ``train_fraction`` for training, ``val_fraction`` for validation,
        the rest for test; stratified by class for class labels. ``split_labels`` ("train" /
        "valid" / "test" per row) keeps a predefined split instead (validation carved from train)."""
        x = torch.as_tensor(np.asarray(x))
        if x.dtype == torch.float64:
            x = x.float()
        y = np.asarray(y)
        yt = torch.as_tensor(y, dtype=torch.long if task in ("multiclass", "per_residue") else torch.float32)
        strat = y.astype(np.int64) if task in ("binary", "multiclass") else None
        if split_labels is not None:
            tr, va, te = split_predefined(split_labels, train_fraction, val_fraction, seed, strat)
        else:
            tr, va, te = split_three(len(x), train_fraction, val_fraction, seed, strat)
        return cls.from_indices(x, yt, task, tr, va, te, **kw)

    def to(self, device) -> "SplitData":
        return SplitData(self.x_train.to(device), self.y_train.to(device), self.x_test.to(device),
                         self.y_test.to(device), self.task, self.n_classes, list(self.class_names), dict(self.meta),
                         x_val=self.x_val.to(device), y_val=self.y_val.to(device))
