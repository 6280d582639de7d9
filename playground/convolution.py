"""A 1-D convolution by hand, the way the workshop teaches it before any training.

The filter ``C C G`` slides over the one-hot ``A C C G T C A C C T A``. At every window the
one-hot columns and the filter are multiplied element by element and summed (plus a bias):
that count of matches is the window's value in the feature map::

    r = convolve_by_hand("ACCGTCACCTA", ["CCG", "TTA"], pool=2)
    r.feature_maps      # [[1, 3, 1, 0, 1, 1, 1, 2, 1], [0, 0, 0, 1, 2, 0, 0, 0, 2]]
    r.products[0, 1]    # the 4 x 3 element-wise products of window 2 with filter CCG
    r.relu, r.pooled    # ReLU, then max-pool of size 2: [[3, 1, 1, 2], [0, 2, 0, 0]]
    r.flattened         # what a dense layer reads: [3, 1, 1, 2, 0, 2, 0, 0]
    r.formula_lines()   # L_out = floor((L + 2·padding − k)/stride) + 1 = ... with the numbers
    r.torch_difference()  # the same numbers from torch.nn.functional.conv1d (0.0)

Conventions (those of ``playground.encoding`` and ``torch.nn.Conv1d``):
- one-hot rows (channels) are A, C, G, T; an unknown base N is a column of zeros; zero
  padding adds ``padding`` zero columns on both sides;
- a filter is a (4, k) array of weights; a consensus string becomes one: a definite letter
  puts a weight of 1 on its base, an IUPAC letter spreads that weight of 1 evenly over the
  bases it stands for (R = A or G: 0.5 each; N: 0.25 each), so a window scores the number of
  matching letters, a degenerate letter counting 1 / (number of its bases);
- the feature map is the cross-correlation (no kernel flip), as ``F.conv1d`` computes it;
  ReLU follows, then max-pooling (window = stride = ``pool``, the remainder dropped, as
  ``F.max_pool1d``), then flattening channel by channel (``x.flatten(1)``).

Helpers turn other things into filters: a JASPAR motif into log-odds weights
(``motif_filter``), a trained model's first convolution layer into arrays (``learned_filters``),
and a typed 4 x k grid of numbers (``grid_filter``). Bad input raises ``ConvolutionError``
naming the position, letter or cell, and what to do. Pure numpy (torch only for the check).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from playground.data.motifs import BASES, IUPAC, normalize_pwm
from playground.errors import PlaygroundError

IUPAC_TEXT = "A C G T, or IUPAC R Y S W K M B D H V N"
MAX_SEQUENCE = 10_000
LOG_ODDS_PSEUDOCOUNT = 0.05   # added to every probability of a PWM before taking log2(p / 0.25)
WORKSHOP_SEQUENCE = "ACCGTCACCTA"
WORKSHOP_FILTERS = ("CCG", "TTA")


class ConvolutionError(PlaygroundError):
    """A sequence, filter or setting the convolution by hand cannot use (says where and what to do)."""


# ------------------------------------------------------------------------------------------------
# sequence and filters -> arrays
def clean_sequence(text: str) -> str:
    """A typed DNA sequence, upper case, without spaces or line breaks (U read as T).
    Raises ConvolutionError naming the first letter that is not A, C, G, T or N."""
    if not isinstance(text, str):
        raise ConvolutionError(f"The sequence must be text, got {type(text).__name__}.",
                               "Type a DNA sequence such as ACCGTCACCTA.")
    s = "".join(text.split()).upper().replace("U", "T")
    if not s:
        raise ConvolutionError("The sequence is empty.", "Type a DNA sequence such as ACCGTCACCTA.")
    for j, ch in enumerate(s):
        if ch not in "ACGTN":
            raise ConvolutionError(f"Sequence position {j + 1}: '{ch}' is not a DNA letter (A C G T, or N for "
                                   "unknown).", "Remove it or replace it with N.")
    if len(s) > MAX_SEQUENCE:
        raise ConvolutionError(f"The sequence has {len(s):,} bases; the convolution by hand takes at most "
                               f"{MAX_SEQUENCE:,}.", "Paste a shorter piece.")
    return s


def one_hot_matrix(seq: str) -> np.ndarray:
    """(4, L) one-hot of a DNA sequence, rows A C G T; N is a column of zeros."""
    s = clean_sequence(seq)
    x = np.zeros((4, len(s)))
    for j, ch in enumerate(s):
        if ch in BASES:
            x[BASES.index(ch), j] = 1.0
    return x


def consensus_filter(consensus: str, which: str = "The filter") -> np.ndarray:
    """A consensus (IUPAC letters allowed) -> (4, k) weights: 1 on a definite letter's base;
    a degenerate letter spreads its weight of 1 evenly over its bases (N = 0.25 each)."""
    if not isinstance(consensus, str):
        raise ConvolutionError(f"{which} must be a consensus text or numbers, got {type(consensus).__name__}.")
    cons = "".join(consensus.split()).upper()
    if not cons:
        raise ConvolutionError(f"{which} is empty.", "Type a consensus such as CCG.")
    w = np.zeros((4, len(cons)))
    for j, ch in enumerate(cons):
        if ch not in IUPAC:
            raise ConvolutionError(f"{which}, position {j + 1}: '{ch}' is not a DNA or IUPAC letter ({IUPAC_TEXT}).",
                                   "Remove it or replace it with N (any base).")
        for b in IUPAC[ch]:
            w[BASES.index(b), j] = 1.0 / len(IUPAC[ch])
    return w


def filter_array(value, which: str = "The filter") -> np.ndarray:
    """One filter as a (4, k) float array: a consensus string or a (4, k) array of weights."""
    if isinstance(value, str):
        return consensus_filter(value, which)
    try:
        w = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConvolutionError(f"{which} is neither a consensus nor a 4 × k array of numbers.",
                               "Give a text such as CCG, or numbers with one row per base A C G T.") from None
    if w.ndim != 2 or w.shape[0] != 4 or w.shape[1] < 1:
        raise ConvolutionError(f"{which} has shape {tuple(w.shape)}; a filter is 4 rows (A C G T) × k columns.",
                               "Give 4 rows of the same length.")
    if not np.isfinite(w).all():
        raise ConvolutionError(f"{which} holds a number that is not finite (NaN or infinity).",
                               "Replace it with a finite number.")
    return w


def as_filters(filters) -> tuple[np.ndarray, list[str]]:
    """(n_filters, 4, k) weights and a name per filter, from a consensus string, a list of
    consensus strings and/or (4, k) arrays, or one (n_filters, 4, k) / (4, k) array."""
    if isinstance(filters, str):
        items, names = [filters], ["".join(filters.split()).upper()]
    elif isinstance(filters, np.ndarray) or _is_tensor(filters):
        arr = np.asarray(filters.detach().cpu() if _is_tensor(filters) else filters, dtype=np.float64)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ConvolutionError(f"The filters array has shape {tuple(arr.shape)}; expected (n_filters, 4, k).",
                                   "Stack the filters as (n_filters, 4, k), rows A C G T.")
        items, names = list(arr), [f"filter {i + 1}" for i in range(len(arr))]
    else:
        try:
            items = list(filters)
        except TypeError:
            raise ConvolutionError(f"Cannot read filters from {type(filters).__name__}.",
                                   "Give a consensus (CCG), a list of them, or an array (n_filters, 4, k).") from None
        if items and not isinstance(items[0], str) and np.ndim(items[0]) == 1:   # one (4, k) nested list
            items = [items]
        names = ["".join(f.split()).upper() if isinstance(f, str) else f"filter {i + 1}" for i, f in enumerate(items)]
    if not items:
        raise ConvolutionError("No filters given.", "Give at least one filter, e.g. 'CCG'.")
    many = len(items) > 1
    arrays = [filter_array(f, f"Filter {i + 1}" if many else "The filter") for i, f in enumerate(items)]
    widths = [a.shape[1] for a in arrays]
    if len(set(widths)) > 1:
        listing = ", ".join(f"filter {i + 1} ({names[i]}) is {w} wide" for i, w in enumerate(widths))
        raise ConvolutionError(f"The filters of one layer share one kernel_size, but {listing}.",
                               "Make them the same width (pad_filters adds zero columns to the narrower ones).")
    return np.stack(arrays), names


def _is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def pad_filters(filters: Sequence[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Filters of different widths -> one (n, 4, k_max) array: zero columns added on the right
    of the narrower ones (a zero column changes no window's sum). Returns the columns added."""
    arrs = [filter_array(f, f"Filter {i + 1}") for i, f in enumerate(filters)]
    k = max(a.shape[1] for a in arrs)
    added = [k - a.shape[1] for a in arrs]
    return np.stack([np.pad(a, ((0, 0), (0, k - a.shape[1]))) for a in arrs]), added


def log_odds(pwm: np.ndarray, pseudocount: float = LOG_ODDS_PSEUDOCOUNT, background: float = 0.25) -> np.ndarray:
    """A PWM (4, w) of probabilities -> log-odds weights log2(p' / background), where p' adds
    ``pseudocount`` to every probability and renormalises (so an unseen base is not -inf)."""
    return np.log2(normalize_pwm(np.asarray(pwm, dtype=np.float64), pseudocount) / background)


def motif_filter(motif, pseudocount: float = LOG_ODDS_PSEUDOCOUNT) -> tuple[np.ndarray, str]:
    """A JASPAR motif as a filter: (4, w) log-odds weights (bits against a uniform background)
    and its label. ``motif``: a ``Motif``, a label of KNOWN_MOTIFS ('CTCF'), or a JASPAR ID."""
    from playground.data.motifs import Motif, jaspar_motif

    if not isinstance(motif, Motif):
        try:
            motif = jaspar_motif(str(motif))
        except ValueError as e:
            raise ConvolutionError(str(e)) from None
    return log_odds(motif.pwm, pseudocount), motif.label


def learned_filters(model) -> tuple[np.ndarray, np.ndarray]:
    """A trained model's first-layer filters: weights (n_filters, 4, k) and biases (n_filters,).
    Raises ConvolutionError for a model without convolution filters."""
    if not hasattr(model, "filter_weights"):
        raise ConvolutionError("This model has no convolution filters to take.",
                               "Choose one of the CNNs in the sidebar, or type a filter.")
    w = model.filter_weights().detach().cpu().double().numpy()
    conv = getattr(model, "first_conv", None)
    b = getattr(conv, "bias", None)
    bias = b.detach().cpu().double().numpy() if b is not None else np.zeros(len(w))
    return w, bias


def grid_filter(grid, which: str = "The grid") -> np.ndarray:
    """Numbers typed into a 4 × k grid (rows A C G T) -> (4, k) weights. Accepts a pandas
    DataFrame, nested lists, or text with one row per line (or rows split by ';') and numbers
    split by spaces or commas. An empty cell counts as 0. Raises ConvolutionError naming the
    row and column of a cell that is not a number."""
    rows = _grid_rows(grid, which)
    if len(rows) != 4:
        raise ConvolutionError(f"{which} has {len(rows)} row(s); a DNA filter has 4, one per base A C G T.",
                               "Give one row each for A, C, G and T.")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        lens = ", ".join(f"{BASES[i]}: {len(r)}" for i, r in enumerate(rows))
        raise ConvolutionError(f"{which}'s rows have different lengths ({lens}).",
                               "Give every row the same number of columns (kernel_size).")
    if widths == {0}:
        raise ConvolutionError(f"{which} has no columns.", "Give at least one number per row.")
    out = np.zeros((4, len(rows[0])))
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            out[i, j] = _cell_number(cell, f"{which}, row {BASES[i]}, column {j + 1}")
    return out


def _grid_rows(grid, which: str) -> list[list]:
    if hasattr(grid, "to_numpy") and hasattr(grid, "columns"):      # a pandas DataFrame (st.data_editor)
        return [list(r) for r in grid.to_numpy(dtype=object)]
    if isinstance(grid, str):
        lines = [ln for ln in grid.replace(";", "\n").splitlines() if ln.strip()]
        return [[c for c in ln.replace(",", " ").split()] for ln in lines]
    try:
        rows = [list(r) for r in grid]
    except TypeError:
        raise ConvolutionError(f"{which} is not a table of numbers.", "Give 4 rows (A C G T) of numbers.") from None
    return rows


def _cell_number(cell, where: str) -> float:
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return 0.0
    if isinstance(cell, bool):
        raise ConvolutionError(f"{where}: {cell!r} is not a number.", "Type a number such as 1, 0 or -0.5.")
    try:
        v = float(cell)
    except (TypeError, ValueError):
        raise ConvolutionError(f"{where}: '{cell}' is not a number.", "Type a number such as 1, 0 or -0.5.") from None
    if math.isnan(v):               # an emptied cell of a data editor
        return 0.0
    if not math.isfinite(v):
        raise ConvolutionError(f"{where}: {cell} is not a finite number.", "Type a number such as 1, 0 or -0.5.")
    return v


def grid_text(w: np.ndarray) -> str:
    """A (4, k) filter as grid text: rows A C G T split by ';', numbers by ',' (``grid_filter`` reads it)."""
    return ";".join(",".join(f"{v:g}" for v in row) for row in np.asarray(w, dtype=np.float64))


# ------------------------------------------------------------------------------------------------
# shapes
def output_length(length: int, kernel_size: int, padding: int = 0, stride: int = 1) -> int:
    """Conv1d's output length: floor((L + 2·padding − kernel_size) / stride) + 1 (0 if the filter
    does not fit)."""
    span = length + 2 * padding - kernel_size
    return span // stride + 1 if span >= 0 else 0


def pooled_length(n: int, pool: int) -> int:
    """MaxPool1d(pool)'s output length (stride = pool, the remainder dropped): floor(n / pool)."""
    return n // pool


# ------------------------------------------------------------------------------------------------
# the convolution
@dataclass
class ConvolutionByHand:
    """Every number of the walk-through. Shapes: F filters, L bases, k = kernel_size,
    n = n_windows, m = pooled length."""

    sequence: str
    one_hot: np.ndarray        # (4, L)
    padded: np.ndarray         # (4, L + 2·padding): what the filters slide over
    filters: np.ndarray        # (F, 4, k)
    names: list[str]           # one per filter
    bias: np.ndarray           # (F,)
    padding: int
    stride: int
    pool: int | None
    starts: np.ndarray         # (n,) first column of each window, in the padded one-hot
    products: np.ndarray       # (F, n, 4, k) element-wise products window × filter
    sums: np.ndarray           # (F, n) sum of the products (before the bias)
    feature_maps: np.ndarray   # (F, n) sum + bias
    relu: np.ndarray           # (F, n) max(0, feature map)
    pooled: np.ndarray | None  # (F, m) max-pool of the ReLU'd maps, or None without pool
    flattened: np.ndarray = field(init=False)   # (F·m,) or (F·n,): what a dense layer reads

    def __post_init__(self):
        last = self.pooled if self.pooled is not None else self.relu
        self.flattened = last.reshape(-1)

    @property
    def length(self) -> int:
        return int(self.one_hot.shape[1])

    @property
    def kernel_size(self) -> int:
        return int(self.filters.shape[2])

    @property
    def n_filters(self) -> int:
        return int(self.filters.shape[0])

    @property
    def n_windows(self) -> int:
        return int(len(self.starts))

    def window(self, i: int) -> dict:
        """Window ``i`` (0-based): its columns of the padded one-hot, the sequence positions it
        covers (1-based; 0 for a padding column), and per filter the products, sum and value."""
        if not 0 <= i < self.n_windows:
            raise ConvolutionError(f"Window {i + 1} does not exist: there are {self.n_windows}.",
                                   f"Pick a window from 1 to {self.n_windows}.")
        s, k = int(self.starts[i]), self.kernel_size
        positions = [j - self.padding + 1 if 0 <= j - self.padding < self.length else 0 for j in range(s, s + k)]
        letters = "".join(self.sequence[p - 1] if p else "·" for p in positions)
        return {"index": i, "start": s, "positions": positions, "letters": letters,
                "one_hot": self.padded[:, s:s + k], "products": self.products[:, i], "sums": self.sums[:, i],
                "values": self.feature_maps[:, i]}

    # -- the shape arithmetic, with its numbers ------------------------------------------------
    def formula_lines(self) -> list[str]:
        """The output-length formula with this run's numbers: conv, then pooling and flatten."""
        L, k, p, s, F = self.length, self.kernel_size, self.padding, self.stride, self.n_filters
        n = self.n_windows
        lines = ["L_out = floor((L + 2·padding − kernel_size) / stride) + 1",
                 f"      = floor(({L} + 2·{p} − {k}) / {s}) + 1 = {n}",
                 f"Conv1d(in_channels=4, out_channels={F}, kernel_size={k}, padding={p}, stride={s}): "
                 f"(4, {L}) → ({F}, {n})"]
        if self.pool:
            m = pooled_length(n, self.pool)
            lines += [f"L_pool = floor(L_out / pool) = floor({n} / {self.pool}) = {m}",
                      f"ReLU, MaxPool1d({self.pool}): ({F}, {n}) → ({F}, {m})",
                      f"flatten: out_channels × L_pool = {F} × {m} = {F * m}"]
        else:
            lines += [f"ReLU: ({F}, {n}) → ({F}, {n})", f"flatten: out_channels × L_out = {F} × {n} = {F * n}"]
        return lines

    @property
    def formula(self) -> str:
        return "\n".join(self.formula_lines())

    # -- the same numbers from PyTorch -----------------------------------------------------------
    def torch_outputs(self) -> dict[str, np.ndarray]:
        """The feature maps from ``F.conv1d``, ReLU'd, and max-pooled with ``F.max_pool1d``."""
        import torch
        import torch.nn.functional as F

        x = torch.tensor(self.one_hot[None], dtype=torch.float64)
        w = torch.tensor(self.filters, dtype=torch.float64)
        b = torch.tensor(self.bias, dtype=torch.float64)
        conv = F.conv1d(x, w, b, stride=self.stride, padding=self.padding)
        out = {"feature_maps": conv[0].numpy(), "relu": torch.relu(conv)[0].numpy()}
        if self.pool:
            out["pooled"] = F.max_pool1d(torch.relu(conv), self.pool)[0].numpy()
        return out

    def torch_difference(self) -> float:
        """The largest absolute difference between these numbers and PyTorch's (0 up to rounding)."""
        got = self.torch_outputs()
        diffs = [np.abs(got["feature_maps"] - self.feature_maps).max(initial=0.0),
                 np.abs(got["relu"] - self.relu).max(initial=0.0)]
        if self.pooled is not None:
            diffs.append(np.abs(got["pooled"] - self.pooled).max(initial=0.0))
        return float(max(diffs))


def convolve_by_hand(sequence: str, filters, bias=0.0, pool: int | None = None, padding: int = 0,
                     stride: int = 1) -> ConvolutionByHand:
    """Slide each filter over the one-hot sequence, window by window, keeping every product.

    ``sequence``: DNA text (A C G T N; spaces ignored). ``filters``: a consensus string (IUPAC
    letters allowed), a list of them (and/or (4, k) arrays), or an array (n_filters, 4, k).
    ``bias``: one number, or one per filter. ``pool``: max-pool size after ReLU (None or 0 = no
    pooling). ``padding``: zero columns on each side. ``stride``: step between windows.
    Returns a ``ConvolutionByHand`` (``products``, ``feature_maps``, ``relu``, ``pooled``,
    ``flattened``, ``formula_lines()`` ...)."""
    seq = clean_sequence(sequence)
    w, names = as_filters(filters)
    n_f, _, k = w.shape
    b = _bias(bias, n_f)
    padding, stride = _int_setting(padding, "padding", 0), _int_setting(stride, "stride", 1)
    pool = None if pool in (None, 0) else _int_setting(pool, "pool", 1)
    x = one_hot_matrix(seq)
    padded = np.pad(x, ((0, 0), (padding, padding)))
    n = output_length(len(seq), k, padding, stride)
    if n < 1:
        raise ConvolutionError(f"The filter is {k} wide but the sequence{' with its padding' if padding else ''} is "
                               f"only {len(seq) + 2 * padding} long: no window fits.",
                               "Use a longer sequence, a narrower filter, or more padding.")
    starts = np.arange(n) * stride
    windows = np.stack([padded[:, s:s + k] for s in starts])            # (n, 4, k)
    products = w[:, None] * windows[None]                                # (F, n, 4, k)
    sums = products.sum(axis=(2, 3))
    maps = sums + b[:, None]
    relu = np.maximum(maps, 0.0)
    pooled = None
    if pool:
        m = pooled_length(n, pool)
        if m < 1:
            raise ConvolutionError(f"Max-pool size {pool} is larger than the feature map ({n} window"
                                   f"{'s' if n != 1 else ''}).", f"Pick a pool size of at most {n}, or no pooling.")
        pooled = relu[:, :m * pool].reshape(n_f, m, pool).max(axis=2)
    return ConvolutionByHand(seq, x, padded, w, names, b, padding, stride, pool, starts, products, sums, maps, relu,
                             pooled)


def _bias(bias, n_filters: int) -> np.ndarray:
    try:
        b = np.asarray(bias, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ConvolutionError(f"The bias must be a number (or one per filter), got {bias!r}.") from None
    if b.size == 1:
        b = np.repeat(b, n_filters)
    if b.size != n_filters:
        raise ConvolutionError(f"{b.size} biases for {n_filters} filter(s).", "Give one bias, or one per filter.")
    if not np.isfinite(b).all():
        raise ConvolutionError("A bias is not a finite number.", "Use a number such as 0 or -1.")
    return b


def _int_setting(value, name: str, lo: int) -> int:
    try:
        ok = not isinstance(value, bool) and float(value).is_integer() and int(value) >= lo
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConvolutionError(f"{name} must be a whole number of at least {lo}, got {value!r}.")
    return int(value)


__all__ = ["ConvolutionByHand", "ConvolutionError", "WORKSHOP_FILTERS", "WORKSHOP_SEQUENCE", "as_filters",
           "clean_sequence", "consensus_filter", "convolve_by_hand", "filter_array", "grid_filter", "grid_text",
           "learned_filters", "log_odds", "motif_filter", "one_hot_matrix", "output_length", "pad_filters",
           "pooled_length"]
