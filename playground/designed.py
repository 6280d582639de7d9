"""Designed first-layer filters: a filter you write yourself, beside the ones a CNN learns.

A first-layer filter of a DNA CNN is a 4 × k matrix slid along the one-hot sequence: a position
weight matrix. So a known motif can *be* a filter. This module writes one in, three ways::

    from playground import designed as DF
    f = DF.from_motif("CTCF", width=12)            # JASPAR PWM as log-odds (bits), cropped to 12 columns
    f = DF.from_consensus("CCACNAGGKGGC", 12)      # 1 per letter, spread over the bases it allows (IUPAC)
    f = DF.from_grid("1,0,0;0,1,0;0,0,1;0,0,0", 3) # typed numbers: rows A;C;G;T
    f.note                                         # how it was fitted to the layer's width, if it was

    DF.set_filter(model, 0, f, freeze=True)        # filter 1 of the first conv layer, held fixed
    rows = DF.compare(spec, split, config, [f])    # validation accuracy: designed only / learned only / both

**Width.** A filter has the layer's ``kernel_size`` columns. A longer motif is cropped to its most
informative window (a grid: its window of largest weights); a shorter one is padded with zero
columns on both sides (log-odds 0: no preference). ``DesignedFilter.note`` says which.

**Freezing** holds exactly the chosen filters (weights and bias) fixed while the rest trains:
their gradient rows are zeroed (a tensor hook), their values are written back after every
optimizer step (Adam's momentum and AdamW's weight decay would otherwise still move them) and
before every forward pass, and after ``load_state_dict``. The freeze is kept on the conv module
itself, so it travels with the model to a training worker process.

**The comparison** (``compare``) trains three seeded networks on the same split, each with early
stopping on the validation loss, and reports validation numbers only (never test):
designed only (the first layer is just the designed filter(s), frozen; only the layers after it
train), learned only (the network as configured), and both (the designed filters frozen in the
first slots, the others learned).
"""
from __future__ import annotations

import dataclasses
import math
import re
import time
import weakref
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.weak import WeakIdKeyDictionary

from playground.convolution import ConvolutionError, consensus_filter, log_odds
from playground.data.motifs import Motif, information_content, resolve_motif
from playground.errors import PlaygroundError

SOURCES = {"jaspar": "JASPAR motif (log-odds)", "consensus": "Consensus (IUPAC)", "grid": "Numbers (4 × k grid)"}
MODES = {"designed": "Designed only", "learned": "Learned only", "both": "Designed + learned"}


class DesignError(PlaygroundError):
    """A designed filter that cannot be made: ``field`` names what to fix (grid row, letter ...)."""

    def __init__(self, message: str, hint: str | None = None, field: str | None = None):
        self.field = field
        super().__init__(message, hint)


@dataclass(frozen=True)
class DesignedFilter:
    label: str                 # what it is, e.g. 'CTCF (MA0139.1) log-odds'
    weights: np.ndarray        # (4, width): rows A C G T
    bias: float = 0.0
    source: str = "grid"       # 'jaspar', 'consensus' or 'grid'
    note: str = ""             # how it was cropped or padded to the layer's width ('' = as given)

    @property
    def width(self) -> int:
        return int(self.weights.shape[1])

    def max_score(self) -> float:
        """The best score any window can reach (the best base of every column, plus the bias)."""
        return float(self.weights.max(0).sum() + self.bias)


# ------------------------------------------------------------------------------------------------
# making a designed filter
def fit_width(matrix: np.ndarray, width: int, importance: np.ndarray | None = None,
              what: str = "The filter") -> tuple[np.ndarray, str]:
    """``matrix`` (4, w) fitted to ``width`` columns: cropped to the window of largest total
    ``importance`` (per column; default: the column's range of weights) or padded with zero
    columns on both sides. Returns (matrix, a note saying what was done; '' when nothing)."""
    m = np.asarray(matrix, dtype=np.float64)
    w = m.shape[1]
    width = int(width)
    if width < 1:
        raise DesignError("The layer's kernel size must be at least 1.")
    if w == width:
        return m.copy(), ""
    if w > width:
        imp = np.asarray(importance, dtype=np.float64) if importance is not None else m.max(0) - m.min(0)
        sums = np.convolve(imp, np.ones(width), mode="valid")
        start = int(np.argmax(sums))
        return m[:, start:start + width].copy(), (
            f"{what} is {w} columns wide and the layer's filters {width}: its most informative {width} "
            f"columns ({start + 1}-{start + width}) are used.")
    left = (width - w) // 2
    out = np.zeros((4, width))
    out[:, left:left + w] = m
    return out, (f"{what} is {w} columns wide and the layer's filters {width}: it is padded with "
                 f"{left} zero column(s) on the left and {width - w - left} on the right (no preference there).")


def from_motif(motif: Motif | str, width: int, bias: float = 0.0) -> DesignedFilter:
    """A JASPAR motif (a Motif, or a name / matrix ID / consensus ``resolve_motif`` reads) as a
    log-odds filter of ``width`` columns (cropped to its most informative columns, or padded)."""
    m = resolve_motif(motif) if isinstance(motif, str) else motif
    lo = log_odds(m.pwm)
    weights, note = fit_width(lo, width, information_content(m.pwm), what=m.label)
    return DesignedFilter(f"{m.label} log-odds", weights, float(bias), "jaspar", note)


def from_consensus(consensus: str, width: int, bias: float = 0.0) -> DesignedFilter:
    """A consensus (IUPAC letters allowed) as a match-counting filter, as the convolution by hand
    makes it: 1 on a definite letter's base, 0 elsewhere, so a window scores its number of matching
    positions; a degenerate letter spreads its 1 evenly over its bases (R = 0.5 on A and G, N = 0.25)."""
    cons = re.sub(r"\s+", "", str(consensus)).upper()
    try:
        w = consensus_filter(cons, "The consensus")     # the convolution by hand's reading of the letters
    except ConvolutionError as e:
        raise DesignError(e.message, e.hint, "consensus") from None
    info = 2.0 - np.log2((w > 0).sum(0))    # bits a letter pins down: 2 for A C G T, 0 for N
    weights, note = fit_width(w, width, info, what=f"The consensus {cons}")
    return DesignedFilter(f"consensus {cons}", weights, float(bias), "consensus", note)


_ROW_LABEL = re.compile(r"^\s*([ACGTacgt])\s*[:=]\s*")


def parse_grid(text: str) -> np.ndarray:
    """Typed numbers -> (4, k): four rows A, C, G, T split by ';' or new lines, the numbers of a
    row by commas or spaces; a row may start with its base ('A: 1 0 0'). Errors name the row and
    the position."""
    rows = [r for r in re.split(r"[;\n]", str(text)) if r.strip()]
    if len(rows) != 4:
        raise DesignError(f"The grid has {len(rows)} row(s); it needs 4 (A, C, G, T).",
                          "Write four rows split by ';' or new lines, e.g. 1,0,0;0,1,0;0,0,1;0,0,0.", "grid")
    out = []
    order = list(range(4))
    labels = [_ROW_LABEL.match(r) for r in rows]
    if all(labels):
        order = ["ACGT".index(m.group(1).upper()) for m in labels]
        if sorted(order) != [0, 1, 2, 3]:
            raise DesignError("The grid's rows name a base twice.", "Label the rows A, C, G and T once each.",
                              "grid")
    for i, r in enumerate(rows):
        body = r[labels[i].end():] if labels[i] else r
        vals = []
        for j, tok in enumerate(t for t in re.split(r"[,\s]+", body.strip()) if t):
            try:
                v = float(tok)
            except ValueError:
                raise DesignError(f"Grid row {i + 1} ({'ACGT'[order[i]]}), position {j + 1}: '{tok}' is not a number.",
                                  "Type numbers such as 1, -0.5 or 2e-1.", f"grid row {i + 1}") from None
            if not math.isfinite(v):
                raise DesignError(f"Grid row {i + 1}, position {j + 1}: '{tok}' is not a finite number.",
                                  None, f"grid row {i + 1}")
            vals.append(v)
        out.append(vals)
    lengths = {len(v) for v in out}
    if 0 in lengths:
        raise DesignError(f"Grid row {[len(v) for v in out].index(0) + 1} is empty.", "Give each row k numbers.",
                          "grid")
    if len(lengths) != 1:
        raise DesignError(f"The grid's rows have different lengths ({', '.join(str(len(v)) for v in out)}).",
                          "Give all four rows the same number of columns.", "grid")
    grid = np.zeros((4, len(out[0])))
    for i, vals in enumerate(out):
        grid[order[i]] = vals
    return grid


def from_grid(grid: str | np.ndarray, width: int, bias: float = 0.0) -> DesignedFilter:
    """Typed numbers (text for ``parse_grid``, or an array (4, k)) as a filter of ``width`` columns."""
    g = parse_grid(grid) if isinstance(grid, str) else np.asarray(grid, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] != 4:
        raise DesignError(f"A filter grid is 4 × k (rows A C G T); this one is {' × '.join(map(str, g.shape))}.")
    weights, note = fit_width(g, width, what="The grid")
    return DesignedFilter(f"grid 4 × {g.shape[1]}", weights, float(bias), "grid", note)


def design(source: str, value, width: int, bias: float = 0.0) -> DesignedFilter:
    """One of ``SOURCES``: 'jaspar' (a motif name or ID), 'consensus' or 'grid'."""
    if source == "jaspar":
        return from_motif(value, width, bias)
    if source == "consensus":
        return from_consensus(value, width, bias)
    if source == "grid":
        return from_grid(value, width, bias)
    raise DesignError(f"Unknown filter source '{source}'.", f"Choose one of {', '.join(SOURCES)}.")


# ------------------------------------------------------------------------------------------------
# putting it into a model, and holding it fixed
def first_conv(model: nn.Module) -> nn.Conv1d:
    conv = getattr(model, "first_conv", None)
    if not isinstance(conv, nn.Conv1d):
        raise DesignError("This model has no convolution layer to put a filter into.",
                          "Choose one of the CNNs (the genomics-primer CNN, the course CNN or a custom CNN).")
    return conv


def set_filter(model: nn.Module, index: int, designed: DesignedFilter, freeze: bool = False) -> None:
    """Write ``designed`` into filter ``index`` (0-based) of the model's first conv layer (its
    width must be the layer's: make it with that width). ``freeze`` holds it fixed in training."""
    conv = first_conv(model)
    F_, C, k = conv.weight.shape
    if not 0 <= int(index) < F_:
        raise DesignError(f"Filter {int(index) + 1} does not exist: the first layer has {F_} filter(s).",
                          f"Choose a filter from 1 to {F_}.", "filter")
    if designed.weights.shape != (C, k):
        raise DesignError(f"The designed filter is {designed.weights.shape[0]} × {designed.width}; the layer's "
                          f"filters are {C} × {k}.", "Make it with the layer's kernel size (width=...).")
    with torch.no_grad():
        conv.weight[int(index)] = torch.as_tensor(designed.weights, dtype=conv.weight.dtype, device=conv.weight.device)
        if conv.bias is not None:
            conv.bias[int(index)] = float(designed.bias)
    if freeze:
        freeze_filters(model, [int(index)])
    elif int(index) in frozen_filters(model):
        unfreeze_filters(model, [int(index)])


def frozen_filters(model: nn.Module) -> list[int]:
    """The first-layer filters (0-based) held fixed."""
    conv = getattr(model, "first_conv", None)
    spec = getattr(conv, "_designed_freeze", None) if conv is not None else None
    return [] if spec is None else [int(i) for i in spec["rows"].tolist()]


def freeze_filters(model: nn.Module, indices, bias: bool = True) -> None:
    """Hold filters ``indices`` (0-based) of the first conv layer at their current values (and
    their biases, with ``bias``), exactly, whatever the optimizer does; the other filters train."""
    conv = first_conv(model)
    rows = sorted(set(frozen_filters(model)) | {int(i) for i in indices})
    if any(not 0 <= i < conv.weight.shape[0] for i in rows):
        raise DesignError(f"The first layer has {conv.weight.shape[0]} filter(s); cannot freeze {rows}.")
    idx = torch.tensor(rows, dtype=torch.long)
    with torch.no_grad():
        conv._designed_freeze = {
            "rows": idx, "weight": conv.weight.detach()[idx].clone().cpu(),
            "bias": conv.bias.detach()[idx].clone().cpu() if (bias and conv.bias is not None) else None}
    if not getattr(conv, "_designed_hooks", False):
        conv.register_forward_pre_hook(_before_forward)
        conv.register_load_state_dict_post_hook(_after_load)
        conv._designed_hooks = True
    _watch(conv)


def unfreeze_filters(model: nn.Module, indices=None) -> None:
    """Let filters ``indices`` (default: all) train again."""
    conv = first_conv(model)
    spec = getattr(conv, "_designed_freeze", None)
    if spec is None:
        return
    keep = [] if indices is None else [i for i in frozen_filters(model) if i not in {int(j) for j in indices}]
    if not keep:
        del conv._designed_freeze
        return
    sel = [frozen_filters(model).index(i) for i in keep]
    conv._designed_freeze = {"rows": torch.tensor(keep, dtype=torch.long), "weight": spec["weight"][sel],
                             "bias": None if spec["bias"] is None else spec["bias"][sel]}


def restore_frozen(module: nn.Module) -> None:
    """Write the frozen filters' values back (into ``module``: a first conv layer or a model)."""
    conv = module if isinstance(module, nn.Conv1d) else getattr(module, "first_conv", None)
    spec = getattr(conv, "_designed_freeze", None) if conv is not None else None
    if spec is None:
        return
    with torch.no_grad():
        rows = spec["rows"].to(conv.weight.device)
        conv.weight[rows] = spec["weight"].to(conv.weight.device, conv.weight.dtype)
        if spec["bias"] is not None and conv.bias is not None:
            conv.bias[rows] = spec["bias"].to(conv.bias.device, conv.bias.dtype)


# The process-local bookkeeping behind a freeze: which parameters belong to a frozen conv layer
# (for the optimizer hook) and which already carry the gradient hook. Both are rebuilt by the
# forward pre-hook in a new process (tensor hooks are never pickled; module hooks are).
_OWNER: WeakIdKeyDictionary = WeakIdKeyDictionary()     # parameter -> weakref to its conv layer
_GRAD_HOOKED: WeakIdKeyDictionary = WeakIdKeyDictionary()
_OPT_HOOK = {"handle": None}


def _watch(conv: nn.Conv1d) -> None:
    for p in (conv.weight, conv.bias):
        if p is None:
            continue
        _OWNER[p] = weakref.ref(conv)
        if p not in _GRAD_HOOKED:
            p.register_hook(_zero_frozen_rows(weakref.ref(conv), p is conv.bias))
            _GRAD_HOOKED[p] = True
    if _OPT_HOOK["handle"] is None:
        _OPT_HOOK["handle"] = register_optimizer_step_post_hook(_after_step)


def _zero_frozen_rows(conv_ref, is_bias: bool):
    def hook(grad):
        conv = conv_ref()
        spec = getattr(conv, "_designed_freeze", None) if conv is not None else None
        if spec is None or (is_bias and spec["bias"] is None):
            return grad
        return grad.index_fill(0, spec["rows"].to(grad.device), 0.0)
    return hook


def _before_forward(conv, args):
    if getattr(conv, "_designed_freeze", None) is not None:
        if conv.weight not in _OWNER:
            _watch(conv)                  # a model that came from another process (or a deep copy)
        restore_frozen(conv)


def _after_load(conv, incompatible_keys):
    restore_frozen(conv)


def _after_step(optimizer, args, kwargs):
    if not len(_OWNER):
        return
    done = set()
    for group in optimizer.param_groups:
        for p in group["params"]:
            ref = _OWNER.get(p)
            conv = ref() if ref is not None else None
            if conv is not None and id(conv) not in done:
                done.add(id(conv))
                restore_frozen(conv)


def reset_optimizer_rows(optimizer: torch.optim.Optimizer, model: nn.Module, index: int) -> None:
    """Forget the optimizer's memory (momentum, Adam's moments) of filter ``index`` of the first
    layer: the filter was replaced, so the old filter's gradients say nothing about the new one."""
    conv = first_conv(model)
    for p in (conv.weight, conv.bias):
        if p is None:
            continue
        for v in optimizer.state.get(p, {}).values():
            if torch.is_tensor(v) and v.shape == p.shape:
                with torch.no_grad():
                    v[int(index)] = 0


def put_into_trainer(tr, index: int, designed: DesignedFilter, freeze: bool = False) -> dict:
    """Replace filter ``index`` (0-based) of a trainer's model (e.g. the page's live run, paused)
    with ``designed``, optionally frozen, and evaluate it without training: the validation
    scores before and after (never test). The optimizer forgets that filter's momentum, and
    early stopping starts comparing afresh (the best weights kept so far had the old filter)."""
    key = headline(tr.task)
    before = tr.evaluate("val")
    set_filter(tr.model, index, designed, freeze=freeze)
    reset_optimizer_rows(tr.optimizer, tr.model, index)
    tr._best = (math.inf, tr.epoch, None)          # Trainer's early-stopping memory: the old model's
    tr._plateau = (math.inf, 0)
    after = tr.evaluate("val")
    return {"metric": key, "before": float(before.get(key, float("nan"))), "after": float(after.get(key, float("nan"))),
            "filter": int(index), "frozen": bool(freeze), "label": designed.label, "epoch": int(tr.epoch)}


# ------------------------------------------------------------------------------------------------
# designed only vs learned only vs both
def designed_only_spec(spec, n_designed: int):
    """The spec with a first layer of exactly ``n_designed`` filters (the rest unchanged)."""
    from playground.models.cnn import CNNSpec

    if not isinstance(spec, CNNSpec):
        raise DesignError("Designed filters need a CNN.", "Choose one of the CNNs in the sidebar.")
    return dataclasses.replace(spec, channels=(int(n_designed), *spec.channels[1:]))


def model_for(spec, mode: str, designed: list[DesignedFilter], seed: int = 0) -> nn.Module:
    """The network of one arm of the comparison (``MODES``), seeded: 'designed' = a first layer of
    just the designed filters, frozen; 'learned' = ``spec`` as is; 'both' = ``spec`` with the
    designed filters frozen in its first slots."""
    from playground.models.base import build_model

    if mode not in MODES:
        raise DesignError(f"Unknown comparison arm '{mode}'.", f"Choose one of {', '.join(MODES)}.")
    if mode == "learned":
        return build_model(spec, seed)
    if not designed:
        raise DesignError("There is no designed filter to compare.", "Design a filter first.")
    if mode == "designed":
        model = build_model(designed_only_spec(spec, len(designed)), seed)
    else:
        model = build_model(spec, seed)
        n = first_conv(model).weight.shape[0]
        if len(designed) >= n:
            raise DesignError(f"The first layer has {n} filter(s): no room for a learned one beside "
                              f"{len(designed)} designed.", "Give the first conv layer more filters.")
    for i, f in enumerate(designed):
        set_filter(model, i, f)
    freeze_filters(model, range(len(designed)))
    return model


def majority_level(y_train, y_val, task: str) -> float:
    """What guessing without looking scores on validation: the accuracy of always answering the
    training set's most common class (classification), or 0 (Pearson r, regression)."""
    if task == "regression":
        return 0.0
    yt = np.asarray(y_train).astype(int).ravel()
    yv = np.asarray(y_val).astype(int).ravel()
    if not len(yt) or not len(yv):
        return float("nan")
    return float((yv == np.bincount(yt).argmax()).mean())


def headline(task: str) -> str:
    return "pearson_r" if task == "regression" else "accuracy"


def trainable_parameters(model: nn.Module) -> int:
    """Parameters training can change (the frozen filters' weights and biases left out)."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    conv = getattr(model, "first_conv", None)
    spec = getattr(conv, "_designed_freeze", None) if conv is not None else None
    if spec is not None:
        total -= spec["weight"].numel() + (0 if spec["bias"] is None else spec["bias"].numel())
    return int(total)


def train_arm(model: nn.Module, data, config, max_epochs: int = 20, patience: int = 3,
              progress: Callable[[int], None] | None = None) -> dict:
    """Train one arm with early stopping on the validation loss (best weights restored), at most
    ``max_epochs``; its validation scores (never test) and how training went."""
    from playground.train import Trainer

    cfg = dataclasses.replace(config, early_stopping=max(1, int(patience)), track_metrics=True)
    t0 = time.perf_counter()
    tr = Trainer(model, data, cfg)
    before = tr.evaluate("val")
    while tr.epoch < max_epochs and not tr.done:
        tr.run_epochs(1)
        if progress is not None:
            progress(tr.epoch)
    tr.restore_best()
    val = tr.evaluate("val")
    key = headline(tr.task)
    return {"val": float(val.get(key, float("nan"))), "val_loss": float(val["loss"]),
            "untrained": float(before.get(key, float("nan"))), "best_epoch": int(tr.best_epoch),
            "epochs": int(tr.epoch), "stopped": tr.stopped or "", "diverged": tr.diverged or "",
            "trainable": trainable_parameters(model), "seconds": time.perf_counter() - t0, "trainer": tr}


def compare(spec, data, config, designed: list[DesignedFilter], modes=tuple(MODES), max_epochs: int = 20,
            patience: int = 3, progress: Callable[[str, int, int], None] | None = None,
            keep_trainers: bool = False) -> list[dict]:
    """Train each arm of ``modes`` on ``data`` (a SplitData: the same split for all) with
    ``config`` (its seed for every arm) and return one row per arm: mode, label, designed and
    learned filter counts, validation score (accuracy; Pearson r for regression), the score
    before training, best epoch, epochs, trainable parameters (and the arm's Trainer with
    ``keep_trainers``). ``progress(mode, epoch, max_epochs)`` is called after every epoch.
    Validation only: the test set is never looked at."""
    rows = []
    n_first = int(spec.channels[0]) if hasattr(spec, "channels") else 0
    for mode in modes:
        model = model_for(spec, mode, designed, int(config.seed))
        out = train_arm(model, data, config, max_epochs, patience,
                        (lambda e, m=mode: progress(m, e, max_epochs)) if progress else None)
        if not keep_trainers:
            out.pop("trainer")
        nd = 0 if mode == "learned" else len(designed)
        nl = 0 if mode == "designed" else n_first - nd
        rows.append({"mode": mode, "label": MODES[mode], "designed": nd, "learned": nl, **out})
    return rows


__all__ = ["DesignError", "DesignedFilter", "MODES", "SOURCES", "compare", "design", "designed_only_spec",
           "fit_width", "freeze_filters", "from_consensus", "from_grid", "from_motif", "frozen_filters", "headline",
           "log_odds", "majority_level", "model_for", "parse_grid", "put_into_trainer", "reset_optimizer_rows", "restore_frozen",
           "set_filter", "train_arm", "trainable_parameters", "unfreeze_filters"]
