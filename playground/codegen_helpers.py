"""The functions every exported script carries, written once.

``playground.codegen`` copies them into the scripts by source, as it copies the model classes,
together with what they use from the library (the split comes from ``playground.data.split``,
the per-residue targets from ``playground.data.protein``, the loss from ``playground.train``): a
script and the page split, encode and score the same way.
They are ordinary library code, imported and tested like the rest
(``tests/test_codegen_helpers.py``).

A generated script defines, at its top, the constants these functions read
(``SCRIPT_CONSTANTS``); the values below only document their types, and are never copied.
"""
from __future__ import annotations

import csv

import torch

from playground.data.protein import per_residue_targets
from playground.data.split import split_three
from playground.train import loss_function

# ---- set by each generated script -------------------------------------------------------------
TASK = "binary"             # 'binary', 'multiclass', 'regression' or 'per_residue'
CLASS_NAMES: list = []      # class names; per-residue: one letter per label
LETTERS = "ACGT"            # token ids: 0 = padding, LETTERS 1..n, anything else n + 1
SCRIPT_CONSTANTS = ("TASK", "CLASS_NAMES", "LETTERS")


def split(seqs, labels, train_fraction, val_fraction, seed):
    """The playground's seeded train / validation / test split (``split_three``, stratified by class
    for class labels): ((train seqs, labels), (validation seqs, labels), (test seqs, labels))."""
    classes = labels if TASK in ("binary", "multiclass") else None
    parts = split_three(len(seqs), train_fraction, val_fraction, seed, stratify=classes)
    return tuple(([seqs[i] for i in idx], [labels[i] for i in idx]) for idx in parts)


def read_csv(path):
    """(sequences, labels) from a CSV file with columns 'sequence' and 'label' (labels as in CLASS_NAMES)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    seqs = [r["sequence"].strip().upper() for r in rows]
    if TASK == "regression":
        labels = [float(r["label"]) for r in rows]
    elif TASK == "per_residue":
        labels = [r["label"].strip() for r in rows]
    else:
        labels = [CLASS_NAMES.index(r["label"].strip()) for r in rows]
    return seqs, labels


def tokenize(seqs, length=None):
    """Letters -> token ids (0 = padding on the right)."""
    length = length or max(len(s) for s in seqs)
    out = torch.zeros(len(seqs), length, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids = [LETTERS.index(c) + 1 if c in LETTERS else len(LETTERS) + 1 for c in s[:length]]
        out[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def one_hot(seqs, length):
    """(batch, letters, length): one 1 per column; unknown letters and padding are all zeros."""
    tok = tokenize(seqs, length)
    eye = torch.cat([torch.zeros(1, len(LETTERS)), torch.eye(len(LETTERS)), torch.zeros(1, len(LETTERS))])
    return eye[tok].permute(0, 2, 1).contiguous()


def targets(labels, length):
    """Labels -> the tensor the loss reads. Per-residue: one class id per residue; padding, and a
    letter that is no class name (such as '.', an unlabelled residue), become -100: the loss skips them."""
    if TASK != "per_residue":
        return torch.tensor(labels, dtype=torch.long if TASK == "multiclass" else torch.float32)
    return torch.from_numpy(per_residue_targets(labels, CLASS_NAMES, length))


loss_fn = loss_function(TASK)   # the playground Trainer's loss for the task


def outputs(model, x, batch=2048):
    """The model's outputs for x in eval mode (no dropout), in batches as the Trainer evaluates."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def evaluate(model, x, y):
    """The loss on (x, y)."""
    return loss_fn(outputs(model, x), y).item()


def score(model, x, y):
    """The loss and the task's headline metric on (x, y): accuracy (classes), Q3 (per residue: the
    share of labelled residues predicted right) or Pearson's r (regression)."""
    out = outputs(model, x)
    result = {"loss": loss_fn(out, y).item()}
    if TASK == "binary":
        result["accuracy"] = ((torch.sigmoid(out.reshape(-1)) >= 0.5).float() == y).float().mean().item()
    elif TASK == "multiclass":
        result["accuracy"] = (out.argmax(-1) == y).float().mean().item()
    elif TASK == "per_residue":
        labelled = y != -100
        result["q3"] = (out.argmax(-1)[labelled] == y[labelled]).float().mean().item()
    else:
        result["pearson_r"] = torch.corrcoef(torch.stack([out.reshape(-1), y]))[0, 1].item()
    return result
