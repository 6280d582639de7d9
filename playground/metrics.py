"""Metrics for every task: accuracy, AUROC, MCC, F1, Pearson r, R^2, Q3 ...

All functions take numpy arrays. ``compute(task, outputs, y)`` picks the ones that fit.
"""
from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def auroc(y_true, scores) -> float:
    """Area under the ROC curve; nan when only one class is present. The Mann-Whitney form (average
    ranks for ties), equal to sklearn's roc_auc_score to float rounding and ~50x faster on a
    validation set: the Trainer computes it after every epoch."""
    y_true = np.asarray(y_true).astype(int).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    pos = y_true == 1
    n_pos = int(pos.sum())
    n_neg = len(y_true) - n_pos
    if n_pos == 0 or n_neg == 0 or len(np.unique(y_true)) < 2:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    ranks = np.empty(len(s))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)     # 1-based average rank per tie group
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _counts(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """(confusion counts over the labels that occur in either, those labels)."""
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    labels, inv = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    k = len(labels)
    t, p = inv[: len(y_true)], inv[len(y_true):]
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.float64), labels


def mcc(y_true, y_pred) -> float:
    """Matthews correlation (for several classes Gorodkin's R_K, as sklearn's matthews_corrcoef);
    0 when only one label occurs or a side is constant."""
    c, labels = _counts(y_true, y_pred)
    if len(labels) < 2:
        return 0.0
    t_sum, p_sum, n = c.sum(axis=1), c.sum(axis=0), c.sum()
    cov_ytyp = np.trace(c) * n - t_sum @ p_sum
    cov_ypyp = n * n - p_sum @ p_sum
    cov_ytyt = n * n - t_sum @ t_sum
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return float(cov_ytyp / np.sqrt(cov_ytyt * cov_ypyp))


def f1(y_true, y_pred, average: str = "binary") -> float:
    """F1 of class 1 ('binary') or the mean F1 over the labels that occur ('macro'); 0 where
    undefined (sklearn's f1_score with zero_division=0)."""
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if average == "binary":
        tp = float(np.sum((y_true == 1) & (y_pred == 1)))
        fp = float(np.sum((y_true != 1) & (y_pred == 1)))
        fn = float(np.sum((y_true == 1) & (y_pred != 1)))
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    if average != "macro":
        raise ValueError(f"average must be 'binary' or 'macro', got {average!r}")
    c, labels = _counts(y_true, y_pred)
    if not len(labels):
        return 0.0
    denom = c.sum(axis=0) + c.sum(axis=1)         # 2 tp + fp + fn, per label
    return float(np.mean(2 * np.diag(c) / np.maximum(denom, 1)))


def pearson_r(y_true, y_pred) -> float:
    a, b = np.asarray(y_true, float), np.asarray(y_pred, float)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def r2(y_true, y_pred) -> float:
    a, b = np.asarray(y_true, float), np.asarray(y_pred, float)
    ss_tot = ((a - a.mean()) ** 2).sum()
    if ss_tot == 0:
        return float("nan")
    return float(1.0 - ((a - b) ** 2).sum() / ss_tot)


def q3(y_true, y_pred, ignore_index: int = -100) -> float:
    """Per-residue accuracy over non-padded positions (Q3 for 3-state secondary structure)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    keep = y_true != ignore_index
    return float((y_true[keep] == y_pred[keep]).mean()) if keep.any() else float("nan")


def confusion(y_true, y_pred, n_classes: int) -> np.ndarray:
    return skm.confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


def roc_curve(y_true, scores):
    fpr, tpr, _ = skm.roc_curve(np.asarray(y_true).astype(int), scores)
    return fpr, tpr


def compute(task: str, outputs: np.ndarray, y: np.ndarray) -> dict:
    """Metrics for raw model outputs (logits or values) against labels."""
    outputs, y = np.asarray(outputs), np.asarray(y)
    if task == "regression":
        pred = outputs.reshape(-1)
        return {"pearson_r": pearson_r(y, pred), "r2": r2(y, pred)}
    if task == "binary":
        p = sigmoid(outputs.reshape(-1))
        yp = (p >= 0.5).astype(int)
        yt = y.astype(int)
        return {"accuracy": accuracy(yt, yp), "auroc": auroc(yt, p), "mcc": mcc(yt, yp), "f1": f1(yt, yp)}
    if task == "multiclass":
        yp = outputs.argmax(-1)
        return {"accuracy": accuracy(y, yp), "mcc": mcc(y, yp), "f1": f1(y, yp, average="macro")}
    if task == "per_residue":
        yp = outputs.argmax(-1)
        keep = y != -100
        return {"q3": q3(y, yp), "mcc": mcc(y[keep], yp[keep]) if keep.any() else float("nan")}
    raise ValueError(task)


# The metric a page shows first, and whether bigger is better.
HEADLINE = {"regression": "pearson_r", "binary": "accuracy", "multiclass": "accuracy", "per_residue": "q3"}


def chance(task: str, y_train, y) -> dict:
    """What a model that ignores its input scores on labels ``y``: it always predicts the training
    set's majority class (classes) or its mean (regression). Shown next to every score, so that
    0.55 accuracy on a 55 % majority set reads as 'learned nothing'."""
    y_train, y = np.asarray(y_train), np.asarray(y)
    if len(y) == 0 or len(y_train) == 0:
        return {}
    if task == "regression":
        return {"pearson_r": 0.0, "r2": r2(y, np.full(len(y), float(y_train.mean())))}
    if task == "per_residue":
        keep_t, keep = y_train[y_train != -100], y[y != -100]
        if not len(keep_t) or not len(keep):
            return {}
        major = np.bincount(keep_t.astype(int)).argmax()
        return {"q3": float((keep == major).mean()), "mcc": 0.0}
    yt = y_train.astype(int).ravel()
    major = np.bincount(yt).argmax()
    acc = float((y.astype(int).ravel() == major).mean())
    out = {"accuracy": acc, "mcc": 0.0}
    if task == "binary":
        out.update({"auroc": 0.5, "f1": f1(y.astype(int).ravel(), np.full(len(y), major))})
    else:
        out["f1"] = f1(y.astype(int).ravel(), np.full(len(y), major), average="macro")
    return out


# ---- what each metric is called on screen (the one table: pages, plots, run history and lessons read it)
LABELS = {"loss": "loss", "accuracy": "accuracy", "auroc": "AUROC", "mcc": "MCC", "f1": "F1",
          "pearson_r": "Pearson r", "r2": "R²", "q3": "Q3"}
# a history key's prefix -> how it reads: "val_accuracy" is the "validation accuracy"
SPLIT_WORDS = {"val_": "validation", "test_": "test", "train_": "training"}
# every key a Trainer's history can hold besides epoch/step/seconds (``val_<metric>`` with track_metrics)
HISTORY_KEYS = ("train_loss", "val_loss", *(f"val_{k}" for k in LABELS if k != "loss"))
# how the held-out test set is named wherever a score of it is shown
TEST_LABEL = "test (held out, scored once)"
TEST_WHY = ("The test set is never used while training: the curves, early stopping, the schedule and the best "
            "epoch all read the validation set. Choosing anything by the test score would make it optimistic, "
            "so it is scored once, at the end.")


def label(key: str, *, task: str | None = None, capital: bool = False) -> str:
    """How a metric or history key reads: ``label("mcc") == "MCC"``, ``label("val_r2") == "validation R²"``,
    ``label("train_loss") == "training loss"``. With ``task="multiclass"`` F1 says it is the macro
    average (what ``compute`` reports for several classes). ``capital``: first letter upper case
    ("Accuracy", "Test AUROC"). Keys outside the table read as they are."""
    words = ""
    for prefix, word in SPLIT_WORDS.items():
        if key.startswith(prefix) and key[len(prefix):] in LABELS:
            words, key = f"{word} ", key[len(prefix):]
            break
    name = LABELS.get(key, key)
    if key == "f1" and task == "multiclass":
        name += " (macro)"
    text = words + name
    return text[:1].upper() + text[1:] if capital else text
