"""The functions every exported script carries, written once.

``playground.codegen`` copies them into the scripts by source, as it copies the model classes,
together with what they use from the library (the split comes from ``playground.data.split``,
the loss from ``playground.train``): a script and the page split, encode and score the same way.
They are ordinary library code, imported and tested like the rest
(``tests/test_codegen_helpers.py``).

A generated script defines, at its top, the constants these functions read
(``SCRIPT_CONSTANTS``); the values below only document their types, and are never copied.
"""
from __future__ import annotations

import csv

import torch

from playground.data.split import split_indices
from playground.train import loss_function

# ---- set by each generated script -------------------------------------------------------------
TASK = "binary"             # 'binary', 'multiclass', 'regression' or 'per_residue'
CLASS_NAMES: list = []      # class names; per-residue: one letter per label
LETTERS = "ACGT"            # token ids: 0 = padding, LETTERS 1..n, anything else n + 1
SCRIPT_CONSTANTS = ("TASK", "CLASS_NAMES", "LETTERS")


def split(seqs, labels, train_fraction, seed):
    """The playground's seeded train/test split (``split_indices``) of sequences and their labels."""
    tr, te = split_indices(len(seqs), train_fraction, seed)
    return [seqs[i] for i in tr], [labels[i] for i in tr], [seqs[i] for i in te], [labels[i] for i in te]


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
    """Labels -> the tensor the loss reads (per-residue: -100 marks padding, which the loss ignores)."""
    if TASK != "per_residue":
        return torch.tensor(labels, dtype=torch.long if TASK == "multiclass" else torch.float32)
    y = torch.full((len(labels), length), -100, dtype=torch.long)
    for i, lab in enumerate(labels):
        for j, c in enumerate(lab[:length]):
            y[i, j] = CLASS_NAMES.index(c)
    return y


loss_fn = loss_function(TASK)   # the playground Trainer's loss for the task


def evaluate(model, x, y, batch=2048):
    """The loss on (x, y) in eval mode, in batches as the Trainer evaluates."""
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    return loss_fn(out, y).item()
