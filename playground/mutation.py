"""Mutation scans of one sequence a person types: what does every single-base change do?

    seq, notes = read_dna("ACGTTGCA...", length=50)          # friendly errors: position and letter
    delta = dna_mutation_scan(model, seq, length=50)         # (L, 4): change of the output per base
    delta = dna_mutation_scan(model, seq, target=2, units="probability", task="multiclass")

In-silico mutagenesis (ISM): every position is changed to each of the other three bases (3·L
variants, N positions to all four) and the model's output is read for all of them in a few
batched forward passes; the result is the output of each mutant minus the output of the sequence
itself, 0 at the sequence's own base. ``units``: 'output' (what the model computes: the logit of a
classifier, the value of a regression) or 'probability' (sigmoid of a single logit, softmax over
the classes). :func:`playground.interpret.in_silico_mutagenesis` is this scan (transposed, (4, L)).

Proteins: :func:`playground.esm.mutation_scan` (ESM-1v masked marginals) and
:func:`playground.esm.score_mutations`.
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np
import torch
from torch import nn

from playground import encoding
from playground.data.parsing import SequenceFileError, clean_sequence

BASES = "ACGT"
UNITS = {"output": "model output", "probability": "probability"}
MAX_VARIANT_VALUES = 1 << 22       # one-hot numbers per forward pass (4 x L x variants): ~16 MB
MAX_BATCH = 1024                   # variants per forward pass


def read_dna(text: str, length: int | None = None, map_aliases: bool = True,
             name: str = "The sequence") -> tuple[str, list[str]]:
    """A typed or pasted DNA sequence -> (clean upper-case sequence, notes). A FASTA header line
    ('>name') is allowed; spaces, line breaks and digits (as in GenBank's numbered lines) are
    dropped. ``length``: the model reads exactly this many bases, so a longer sequence is refused
    and a shorter one is padded with N (zeros) at the end, with a note. U is read as T (RNA) when
    ``map_aliases``. Raises SequenceFileError naming the position and the character at fault."""
    raw = str(text or "")
    lines = raw.splitlines()
    header = None
    if lines and lines[0].lstrip().startswith(">"):
        header, lines = lines[0].strip()[1:].strip(), lines[1:]
        if any(ln.lstrip().startswith(">") for ln in lines):
            raise SequenceFileError(f"{name} holds more than one FASTA record.",
                                    hint="Paste one sequence (one '>' header at most).")
    body = re.sub(r"[\s\d]+", "", "".join(lines))
    if not body:
        raise SequenceFileError(f"{name} is empty.", hint="Type or paste DNA letters (A C G T, N for unknown).")
    where = lambda p: f"{name}, position {p}"                            # noqa: E731
    warn: dict = {}
    seq = clean_sequence(body, encoding.DNA, map_aliases, where, alias_warn=warn)
    notes = []
    if header:
        notes.append(f"Read the sequence '{header}'.")
    if warn:
        notes.append(", ".join(f"{n} × {ch}" for ch, n in warn.items()) + " read as T (RNA → DNA).")
    if length:
        if len(seq) > length:
            raise SequenceFileError(f"{name} has {len(seq)} bases; this model reads exactly {length}.",
                                    hint=f"Paste at most {length} bases (cut the rest).")
        if len(seq) < length:
            notes.append(f"{len(seq)} bases; the model reads {length}, so positions {len(seq) + 1}-{length} are "
                         "padding (N, all zeros), never mutated. The model never saw padding in training: read the "
                         "scores near the end with care.")
    return seq, notes


def units_label(task: str | None, units: str = "output", class_name: str | None = None) -> str:
    """The colour-bar title of a scan: 'Δ logit', 'Δ P(bound)', 'Δ value' ..."""
    if units == "probability" and task in ("binary", "multiclass"):
        return f"Δ P({class_name})" if class_name else "Δ probability"
    if task == "regression":
        return "Δ predicted value"
    return f"Δ logit ({class_name})" if class_name and task == "multiclass" else "Δ logit"


def _readout(out: torch.Tensor, target: int | None, units: str) -> torch.Tensor:
    """(B, outputs) -> (B,) the number a scan follows."""
    out = out.float().reshape(len(out), -1)
    if out.shape[1] > 1:
        if target is None:
            raise ValueError("choose which class to explain (target)")
        if units == "probability":
            return torch.softmax(out, 1)[:, int(target)]
        return out[:, int(target)]
    return torch.sigmoid(out[:, 0]) if units == "probability" else out[:, 0]


def variants(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every single-base variant of one one-hot sequence x (4, L) as (positions (V,), bases (V,)),
    position-major: the pairs where the column is not already that base (3 per A/C/G/T
    position, 4 per N)."""
    C = x.shape[0]
    b, j = torch.nonzero(~(x > 0.5), as_tuple=True)
    order = torch.argsort(j * C + b)
    return j[order], b[order]


def _variant_batch(x: torch.Tensor, pos: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    muts = x[None].repeat(len(pos), 1, 1)
    rows = torch.arange(len(pos))
    muts[rows, :, pos] = 0.0
    muts[rows, base, pos] = 1.0
    return muts


@torch.no_grad()
def ism(model: nn.Module, x: torch.Tensor, target: int | None = None, units: str = "output",
        positions: int | None = None, batch_size: int | None = None,
        progress: Callable[[int, int, str], None] | None = None) -> np.ndarray:
    """In-silico mutagenesis of one one-hot sequence x (4, L): (L, 4) change of the followed
    output per position and base (0 at the sequence's own base). Only the first ``positions``
    columns are mutated (the rest, e.g. padding, stay 0). The variants run ``batch_size`` per
    forward pass (default: as many as fit in ~16 MB of one-hot numbers, at most 1024)."""
    if units not in UNITS:
        raise ValueError(f"units must be one of {sorted(UNITS)}")
    was = model.training
    model.eval()
    try:
        dev = next(model.parameters()).device
        x = x.detach().float().cpu()
        C, L = x.shape
        n = L if positions is None else max(0, min(int(positions), L))
        pos, base = variants(x[:, :n])
        ref = _readout(model(x[None].to(dev)), target, units)[0]
        per = int(batch_size or max(1, min(MAX_BATCH, MAX_VARIANT_VALUES // (C * L))))
        vals = []
        for i in range(0, len(pos), per):
            batch = _variant_batch(x, pos[i:i + per], base[i:i + per])
            vals.append(_readout(model(batch.to(dev)), target, units).cpu())
            if progress:
                progress(min(len(pos), i + per), len(pos), f"{min(len(pos), i + per)} of {len(pos)} variants")
        delta = np.zeros((L, C))
        if len(pos):
            delta[pos.numpy(), base.numpy()] = (torch.cat(vals) - ref.cpu()).double().numpy()
        return delta
    finally:
        model.train(was)


def dna_mutation_scan(model: nn.Module, seq: str, target: int | None = None, encode: Callable | None = None, *,
                      length: int | None = None, units: str = "output", n_value: float = 0.0,
                      batch_size: int | None = None, progress=None) -> np.ndarray:
    """The in-silico mutagenesis of a DNA sequence (a string): (len(seq), 4) change of the
    model's output (``units``) when each position becomes each base, columns A C G T, 0 at the
    sequence's own base. ``encode(seq) -> (4, L)`` turns the string into the model's input
    (default: one-hot, padded with zeros to ``length``); ``target``: the class followed for a
    multi-class model."""
    s = seq.upper()
    if encode is None:
        x = encoding.one_hot([s], encoding.DNA, length or len(s), n_value=n_value)[0]
    else:
        x = encode(s)
        x = x[0] if x.dim() == 3 else x
    return ism(model, x, target, units, positions=len(s), batch_size=batch_size, progress=progress)[:len(s)]


def brute_force_scan(model: nn.Module, seq: str, target: int | None = None, length: int | None = None,
                     units: str = "output") -> np.ndarray:
    """The same scan one mutant at a time: mutate the string, encode it, predict (a reference)."""
    L = length or len(seq)

    def f(s):
        with torch.no_grad():
            return float(_readout(model(encoding.one_hot([s], encoding.DNA, L)), target, units)[0])

    was = model.training
    model.eval()
    ref = f(seq)
    out = np.zeros((len(seq), 4))
    for j, own in enumerate(seq):
        for b, base in enumerate(BASES):
            if base != own:
                out[j, b] = f(seq[:j] + base + seq[j + 1:]) - ref
    model.train(was)
    return out


def scan_csv(seq: str, delta: np.ndarray, label: str = "delta") -> str:
    """The scan as CSV: position, base, then one column per mutant base."""
    lines = ["position,base," + ",".join(f"{label} to {b}" for b in BASES)]
    for j, row in enumerate(np.asarray(delta)):
        lines.append(f"{j + 1},{seq[j]}," + ",".join(f"{v:.6g}" for v in row))
    return "\n".join(lines) + "\n"


__all__ = ["BASES", "UNITS", "brute_force_scan", "dna_mutation_scan", "ism", "read_dna", "scan_csv", "units_label",
           "variants"]
