"""Size limits for what people upload: model bundles and ESM-2 checkpoints.

The hosted app is one process that every student shares (Streamlit Community Cloud gives it about
2.7 GB), so a file must never make the server allocate more than a playground model needs. A file
is small, but the numbers inside it are not: a 100 kB bundle whose spec says ``dense: [1000000]``
describes a 4 GB network. So nothing a file describes is built before its size is known:

1. :func:`check_spec_fields` - a cheap look at the spec's numbers before anything is built: every
   field has the type of its default, integers stay within :data:`FIELD_LIMITS` (or
   :data:`DEFAULT_INT_LIMIT`), lists have at most :data:`MAX_LIST_ITEMS` items, text is short. A
   ``length: 10**12`` stops here, before it reaches an allocator or a Python loop.
2. :func:`check_spec_size` - the network is built on PyTorch's ``meta`` device (shapes, no
   memory) and its parameters and buffers are counted (at most :data:`MAX_PARAMETERS`); then a
   ``meta`` forward pass of one input, at the longest length the model reads, measures the peak
   activation memory (at most :data:`MAX_ACTIVATION_BYTES`; :mod:`playground.predict` sizes its
   batches from the same figure). This works for every registered model family without a table
   per family (recurrent layers, which the meta device would run one position at a time, are
   counted by the formula of PyTorch's fused kernel).
3. :func:`check_torch_zip` - the archive around the pickle: uncompressed parts (``torch.save``
   never compresses, so a compressed part could unpack to any size), a bounded number of parts
   and of unpacked bytes, and any damage reported as damage, whatever the zip reader raises.
4. :func:`check_esm_checkpoint` - an ESM-2 checkpoint's architecture (layers, width, heads) is
   capped at the largest ESM-2 and must match the weights in the file, checked on a ``meta``
   model, so a 1 kB file cannot make fair-esm build a 650M-parameter network first.

Each check raises ``error(message, hint)``: callers pass their own error class
(``BundleError``, ``CheckpointError``), so the page shows its usual friendly box.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import math
import re
import struct
import weakref
import zipfile
from typing import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

from playground.errors import PlaygroundError

# ----------------------------------------------------------------------------------------------
# the caps (README: "Model bundles are safe to share")
MAX_PARAMETERS = 50_000_000          # weights + buffers: 200 MB in float32, the largest bundle file read
MAX_ACTIVATION_BYTES = 256 * 2 ** 20  # activations of ONE input at the longest length the model reads
PREDICT_BATCH_BYTES = 256 * 2 ** 20   # activations of one prediction batch (playground.predict sizes batches by it)
MAX_LIST_ITEMS = 16                  # items in a list field (conv layers, dense layers ...)
MAX_TEXT = 1000                      # characters in a text field of a spec (an ESM key holds a file path)
MAX_FLOAT = 1e6                      # |value| of a number field (dropout, n_value ...)
DEFAULT_INT_LIMIT = (0, 1_000_000)   # any integer field without its own limit
MAX_ZIP_ENTRIES = 10_000             # parts of a PyTorch archive (a state_dict has hundreds at most)
MAX_PICKLE_BYTES = 4 * 2 ** 20       # the archive's data.pkl (a bundle's is ~1-500 kB; weights_only unpickling
                                     # is pure Python, ~1 s per MB, and holds the one process's GIL)

# the longest sequence Predict reads per alphabet (must equal playground.predict.MAX_LENGTH)
MAX_SEQUENCE_LENGTH = {"dna": 10_000, "protein": 5_000}
ESM_MAX_RESIDUES = 1022

_LEN = "the longest DNA sequence Predict reads"
_WIDE = "4× the widest layer the pages offer"
_KERNEL = "conv filters on the pages are at most 25 wide"
#: (lowest, highest, why) per field name, shared by every family that uses the name; list fields
#: (channels, dense, kernel_sizes, hidden as a list) apply the limit to each item.
FIELD_LIMITS: dict[str, tuple[int, int, str]] = {
    "length": (1, 10_000, _LEN),
    "max_len": (1, 10_000, _LEN),
    "pool_size": (1, 10_000, _LEN),
    "pool_output": (1, 10_000, _LEN),
    "pool_positions": (1, 10_000, _LEN),
    "in_channels": (1, 64, "one-hot DNA has 4 channels, proteins 20"),
    "n_inputs": (1, 100_000, "the flattened one-hot of the longest protein Predict reads (20 × 5,000)"),
    "channels": (1, 1024, _WIDE),
    "conv1_channels": (1, 1024, _WIDE),
    "conv2_channels": (1, 1024, _WIDE),
    "kernel_sizes": (1, 64, _KERNEL),
    "kernel": (1, 64, _KERNEL),
    "conv1_kernel": (1, 64, _KERNEL),
    "conv2_kernel": (1, 64, _KERNEL),
    "dense": (1, 4096, _WIDE),
    "hidden": (1, 4096, _WIDE),
    "d_model": (1, 4096, _WIDE),
    "embed_dim": (1, 5120, "the width of the largest ESM-2 (15B)"),
    "ff": (1, 16_384, _WIDE),
    "heads": (1, 64, "8 heads at most on the pages"),
    "layers": (1, 16, "4× the deepest stack the pages offer"),
    "finetune_layers": (0, 48, "the deepest ESM-2 has 48 layers"),
    "layer": (-1, 48, "the deepest ESM-2 has 48 layers"),
    "vocab_size": (2, 10_004, "DNA letters use 6 token ids, proteins 22; a language model's k-mers up to 10,000 + 4"),
    "n_outputs": (1, 1024, "one output per class"),
}

#: ESM-2 architectures fair-esm publishes: (layers, width, heads) -> name
ESM2_SIZES = {
    (6, 320, 20): "esm2_t6_8M_UR50D", (12, 480, 20): "esm2_t12_35M_UR50D", (30, 640, 20): "esm2_t30_150M_UR50D",
    (33, 1280, 20): "esm2_t33_650M_UR50D", (36, 2560, 40): "esm2_t36_3B_UR50D", (48, 5120, 40): "esm2_t48_15B_UR50D",
}
ESM2_MAX_LAYERS = 48
ESM2_MAX_DIM = 5120
ESM2_MAX_HEADS = 40

ErrorType = Callable[..., Exception]
_TOO_BIG = ("Every student shares the server's memory, so a model this size is not loaded here: train a smaller one "
            "(fewer or narrower layers).")
_AGAIN = "The file was not saved by this playground, or it was edited: save the model again from the page where it was trained."


class LimitError(PlaygroundError):
    """The default error of these checks (``message``, ``hint``), when no caller's class is given."""


def _n(v) -> str:
    """A number for a message (a 5000-digit integer is not printed in full)."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10 ** 15:
        return f"a {int(abs(v).bit_length() * math.log10(2)) + 1:,}-digit number"
    if isinstance(v, float):
        return f"{v:g}"
    return f"{v:,}" if isinstance(v, int) else repr(v)[:40]


def _sensible_float(v) -> bool:
    try:
        f = float(v)
    except OverflowError:
        return False
    return math.isfinite(f) and abs(f) <= MAX_FLOAT


def _mb(n: float) -> str:
    return f"{n / 2 ** 20:,.0f} MB" if n >= 2 ** 20 else f"{n / 1024:,.0f} kB"


# ----------------------------------------------------------------------------------------------
# 1. the spec's numbers, before anything is built
def check_spec_fields(d: dict, error: ErrorType = LimitError, where: str = "The model spec") -> None:
    """Type and range of every field of a spec dict (``ModelSpec.to_dict()`` output, e.g. read
    from a bundle), judged by the registered family's dataclass defaults. Unknown kinds and
    fields are left to ``spec_from_dict`` (it names them)."""
    from playground.models.base import SPECS

    cls = SPECS.get(d.get("kind")) if isinstance(d.get("kind"), str) else None
    if cls is None:
        return
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in d.items():
        if key == "kind" or key not in fields:
            continue
        f = fields[key]
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        _check_value(key, value, default, error, where)


def _check_value(key: str, v, default, error: ErrorType, where: str) -> None:
    lo, hi, why = FIELD_LIMITS.get(key, (*DEFAULT_INT_LIMIT, "no playground model needs more"))

    def bad(what: str):
        return error(f"{where}: the field '{key}' {what}.", _AGAIN)

    def check_int(x, item: str = ""):
        if isinstance(x, bool) or not isinstance(x, int):
            raise error(f"{where}: the field '{key}'{item} should be a whole number, not {type(x).__name__} {_n(x)}.",
                        _AGAIN)
        if not lo <= x <= hi:
            raise error(f"{where}: the field '{key}'{item} is {_n(x)}; the playground allows {lo:,} to {hi:,} "
                        f"({why}).", _TOO_BIG if x > hi else _AGAIN)

    if isinstance(default, bool):
        if not isinstance(v, bool):
            raise bad(f"should be true or false, not {type(v).__name__}")
    elif isinstance(default, int):
        check_int(v)
    elif isinstance(default, float):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad(f"should be a number, not {type(v).__name__}")
        if not _sensible_float(v):
            raise bad(f"is {_n(v)}, not a sensible number")
    elif isinstance(default, str):
        if not isinstance(v, str):
            raise bad(f"should be text, not {type(v).__name__}")
        if len(v) > MAX_TEXT:
            raise bad(f"is {len(v):,} characters long (at most {MAX_TEXT})")
    elif isinstance(default, (tuple, list)):
        if not isinstance(v, (list, tuple)):
            raise bad(f"should be a list of whole numbers, not {type(v).__name__}")
        if len(v) > MAX_LIST_ITEMS:
            raise error(f"{where}: the field '{key}' has {len(v):,} items; the playground allows at most "
                        f"{MAX_LIST_ITEMS}.", _AGAIN)
        for i, x in enumerate(v):
            check_int(x, f" (item {i + 1})")
    else:   # a field without a typed default (None): numbers still stay small
        if isinstance(v, int) and not isinstance(v, bool):
            check_int(v)
        elif isinstance(v, str) and len(v) > MAX_TEXT:
            raise bad(f"is {len(v):,} characters long (at most {MAX_TEXT})")


def check_input_fields(d: dict, error: ErrorType = LimitError, where: str = "The input description") -> None:
    """The input description of a bundle (``InputSpec.to_dict()``): lengths within what
    Predict reads, numbers finite, text short."""
    for key in ("length", "max_length", "esm_layer"):
        v = d.get(key)
        if v is None:
            continue
        lo, hi = (-1, 48) if key == "esm_layer" else (1, max(MAX_SEQUENCE_LENGTH.values()))
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise error(f"{where}: '{key}' is {_n(v)}; the playground allows {lo:,} to {hi:,} "
                        f"({'the deepest ESM-2 has 48 layers' if key == 'esm_layer' else _LEN}).", _AGAIN)
    v = d.get("n_value", 0.0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not _sensible_float(v):
        raise error(f"{where}: 'n_value' is {_n(v)}, not a sensible number.", _AGAIN)
    for key in ("kind", "alphabet", "toy_dataset", "esm_model", "esm_key"):
        v = d.get(key)
        if v is not None and (not isinstance(v, str) or len(v) > MAX_TEXT):
            raise error(f"{where}: '{key}' should be short text.", _AGAIN)
    tok = d.get("tokenizer", {})
    if tok is None:
        tok = {}
    if not isinstance(tok, dict) or set(tok) - {"alphabet", "kind", "k"}:
        raise error(f"{where}: 'tokenizer' should be a table of alphabet, kind and k.", _AGAIN)
    k = tok.get("k", 1)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 8 or not all(
            isinstance(tok.get(n, ""), str) and len(tok.get(n, "")) <= 40 for n in ("alphabet", "kind")):
        raise error(f"{where}: the tokenizer's k is {_n(k)}; the playground allows k-mers of 1 to 8 letters.",
                    _AGAIN)
    feats = d.get("features", [])
    if not isinstance(feats, list) or len(feats) > MAX_LIST_ITEMS or not all(isinstance(f, str) and len(f) <= 40
                                                                            for f in feats):
        raise error(f"{where}: 'features' should be a list of at most {MAX_LIST_ITEMS} feature names.",
                    _AGAIN)


# ----------------------------------------------------------------------------------------------
# 2. parameters and activations, on the meta device
class _PeakMemory(TorchDispatchMode):
    """Counts the bytes of the tensors each operation creates, and frees them when the tensors
    die, to find the peak of a (meta) forward pass. Storages that exist before the pass (the
    weights, buffers and the input) are not counted.

    Reading a value out of a meta tensor (``bool(pad.any())``, ``int(tokens.max())``) has no
    answer; it is answered 0 / False, i.e. "no padding, token ids in range", the path a batch of
    same-length sequences takes."""

    _SCALAR_OPS = ("_local_scalar_dense", "item", "is_nonzero", "equal")

    def __init__(self, existing=()):
        super().__init__()
        self.existing = {t.untyped_storage()._cdata for t in existing}
        self.live: dict[int, list] = {}
        self.current = 0
        self.peak = 0
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in self._SCALAR_OPS:
            return False if name in ("is_nonzero", "equal") else 0
        self.ops += 1
        out = func(*args, **(kwargs or {}))
        tree_map(self._track, out)
        return out

    def workspace(self, nbytes: int) -> None:
        """Memory an operation needs while it runs (and frees when it returns)."""
        self.peak = max(self.peak, self.current + int(nbytes))

    def _track(self, t):
        if isinstance(t, torch.Tensor):
            st = t.untyped_storage()
            key = st._cdata
            if key in self.existing:
                return t
            entry = self.live.get(key)
            if entry is None:
                entry = self.live[key] = [0, st.nbytes()]
                self.current += entry[1]
                self.peak = max(self.peak, self.current)
            entry[0] += 1
            weakref.finalize(t, self._release, key)
        return t

    def _release(self, key):
        entry = self.live.get(key)
        if entry is not None:
            entry[0] -= 1
            if entry[0] <= 0:
                self.current -= entry[1]
                del self.live[key]


def _recurrent_shapes(m: nn.RNNBase, mode: _PeakMemory, input, hx=None):
    """What an RNN/LSTM/GRU layer returns, by shape, plus the memory its fused CPU kernel uses:
    the input projections of every position of a layer (gates × hidden per direction) and the
    layer's output. (On the meta device PyTorch would run the recurrence one position at a
    time, seconds for a few dozen positions.)"""
    if not isinstance(input, torch.Tensor) or input.dim() not in (2, 3) or input.shape[-1] != m.input_size:
        raise RuntimeError(f"{type(m).__name__} expects inputs of width {m.input_size}, got "
                           f"{tuple(getattr(input, 'shape', ()))}")
    batched = input.dim() == 3
    B, L = ((input.shape[0], input.shape[1]) if m.batch_first else (input.shape[1], input.shape[0])) if batched \
        else (1, input.shape[0])
    dirs = 2 if m.bidirectional else 1
    H = getattr(m, "proj_size", 0) or m.hidden_size
    gates = {"LSTM": 4, "GRU": 3}.get(m.mode, 1)
    size = input.element_size()
    mode.workspace(B * L * dirs * (gates * m.hidden_size + 2 * H) * size)
    shape = ((B, L, H * dirs) if m.batch_first else (L, B, H * dirs)) if batched else (L, H * dirs)
    out = input.new_empty(shape)
    h_shape = (m.num_layers * dirs, B, H) if batched else (m.num_layers * dirs, H)
    h = input.new_empty(h_shape)
    if m.mode == "LSTM":
        return out, (h, input.new_empty(h_shape[:-1] + (m.hidden_size,)))
    return out, h


def meta_model(spec) -> torch.nn.Module:
    """``spec.build()`` on the meta device: every shape, no memory."""
    with torch.device("meta"):
        return spec.build()


def model_numbers(model: torch.nn.Module) -> tuple[int, int]:
    """(parameters, bytes of parameters and buffers) of a (meta) model."""
    params = sum(p.numel() for p in model.parameters())
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    nbytes += sum(b.numel() * b.element_size() for b in model.buffers())
    return params, nbytes


def peak_activation(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(peak bytes of the tensors a forward pass of the meta input ``x`` creates in inference
    mode, number of operations it ran)."""
    mode = _PeakMemory([*model.parameters(), *model.buffers(), x])
    patched = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
    for m in patched:
        m.forward = functools.partial(_recurrent_shapes, m, mode)
    try:
        with torch.inference_mode(), mode:
            model(x)
    finally:
        for m in patched:
            del m.forward
    return mode.peak, mode.ops


def _one_hot_channels(spec, inp) -> int:
    if hasattr(spec, "in_channels"):
        return int(spec.in_channels)
    return 20 if getattr(inp, "alphabet", "dna") == "protein" else 4


def input_plan(spec, inp) -> tuple[str, Callable[[int], torch.Tensor], int, bool]:
    """How Predict feeds the model: (what one input is, make(L) -> one meta input of length L,
    the longest length, whether the length varies)."""
    kind = getattr(inp, "kind", None)
    alphabet = getattr(inp, "alphabet", None) or "dna"
    if kind == "features" or (kind is None and spec.kind == "mlp"):
        n = int(getattr(spec, "n_inputs", 1))
        return "one point", lambda L: torch.zeros(1, n, device="meta"), 1, False
    if kind == "one_hot" or (kind is None and spec.kind in ("cnn", "logreg")):
        length = int(getattr(inp, "length", None) or getattr(spec, "length", 0) or MAX_SEQUENCE_LENGTH[alphabet])
        c = _one_hot_channels(spec, inp)
        return (f"one one-hot sequence of {length:,} letters", lambda L: torch.zeros(1, c, length, device="meta"),
                length, False)
    if kind in ("esm_embedding", "esm_finetune") or spec.kind == "esm_head":
        e = int(getattr(spec, "embed_dim", 320))
        if getattr(spec, "per_residue", False):
            return (f"one protein of {ESM_MAX_RESIDUES:,} residues",
                    lambda L: torch.zeros(1, ESM_MAX_RESIDUES, e, device="meta"), ESM_MAX_RESIDUES, False)
        return "one protein", lambda L: torch.zeros(1, e, device="meta"), 1, False
    if kind == "lm_tokens":     # [CLS] + tokens: the model's own position count is the longest input
        longest = int(getattr(spec, "max_len", 512))
        return (f"one sequence of {longest:,} positions", lambda L: torch.ones(1, L, dtype=torch.long, device="meta"),
                longest, True)
    # token models read any length up to the alphabet's (and the model's) limit
    longest = MAX_SEQUENCE_LENGTH.get(alphabet, MAX_SEQUENCE_LENGTH["dna"])
    if getattr(inp, "max_length", None):
        longest = min(longest, int(inp.max_length))
    if spec.kind == "transformer" and getattr(spec, "positional", "") == "learned":
        longest = min(longest, int(spec.max_len))
    return (f"one sequence of {longest:,} letters", lambda L: torch.ones(1, L, dtype=torch.long, device="meta"),
            longest, True)


def activation_estimate(model: torch.nn.Module, spec, inp) -> dict:
    """The peak activation memory of one input at the longest length the model reads, measured
    by a meta forward pass: ``{"bytes", "what", "longest", "bytes_per_letter"}``. A model whose
    meta pass runs the same operations at every length is measured at the longest length
    itself; otherwise (a per-position Python loop) at 16 and 32 letters, extrapolated linearly."""
    what, make, longest, varies = input_plan(spec, inp)
    if varies and longest > 32:
        p16, ops16 = peak_activation(model, make(16))
        p32, ops32 = peak_activation(model, make(32))
        if ops16 == ops32:
            peak, _ = peak_activation(model, make(longest))
        else:
            peak = int(p32 + max(0, p32 - p16) / 16 * (longest - 32))
    else:
        peak, _ = peak_activation(model, make(longest))
    return {"bytes": int(peak), "what": what, "longest": longest,
            "bytes_per_letter": peak / longest if varies else None}


def check_spec_size(spec, inp=None, error: ErrorType = LimitError, family: str | None = None,
                    what: str = "The file", on_meta_model: Callable[[nn.Module], None] | None = None) -> dict:
    """Build ``spec`` on the meta device and refuse it when its parameters and buffers exceed
    :data:`MAX_PARAMETERS` numbers or one input at the longest length it reads needs more than
    :data:`MAX_ACTIVATION_BYTES` of activations. ``inp``: the InputSpec the model reads (None:
    what its family usually reads); ``what`` names the file in messages; ``on_meta_model(model)``
    runs after the size checks and before the forward pass (e.g. to compare a file's weights
    with the model's shapes). Returns
    ``{"parameters", "model_bytes", "activation_bytes", "bytes_per_letter"}`` (the last for
    models that read any length, else None)."""
    family = family or spec.kind
    if spec.kind == "esm_head" and int(getattr(spec, "finetune_layers", 0) or 0) > 0:
        return _check_esm_finetune(spec, error, family, what)
    try:
        model = meta_model(spec)
    except ValueError as e:         # the spec's own validation
        raise error(f"{what}: the {family} cannot be built ({e}).", _AGAIN) from None
    except (RuntimeError, TypeError, OverflowError, IndexError, KeyError, AttributeError,
            NotImplementedError) as e:
        raise error(f"{what}: the {family} it describes cannot be built ({type(e).__name__}: {_first_line(e)}).",
                    _AGAIN) from None
    params, model_bytes = model_numbers(model)
    numbers = model_bytes // 4
    if max(params, numbers) > MAX_PARAMETERS:
        buffers = f" and {_mb(model_bytes - params * 4)} of buffers" if numbers > params * 1.01 else ""
        raise error(f"{what} describes a {family} with {params:,} parameters{buffers}; the playground loads models of "
                    f"up to {MAX_PARAMETERS:,} numbers ({_mb(MAX_PARAMETERS * 4)} in float32, the largest bundle "
                    "file it reads).", _TOO_BIG)
    if on_meta_model is not None:
        on_meta_model(model)
    model.eval()
    try:
        est = activation_estimate(model, spec, inp)
    except (RuntimeError, TypeError, ValueError, IndexError, KeyError, AttributeError, NotImplementedError) as e:
        reads = inp.describe() if hasattr(inp, "describe") else "its usual input"
        raise error(f"{what}: the {family} it describes does not read the input the file says it reads ({reads}): "
                    f"{type(e).__name__}: {_first_line(e)}.", _AGAIN) from None
    if est["bytes"] > MAX_ACTIVATION_BYTES:
        raise error(f"{what} describes a {family} that needs about {_mb(est['bytes'])} of memory for its activations "
                    f"to predict {est['what']}; the playground allows {_mb(MAX_ACTIVATION_BYTES)} per input.", _TOO_BIG)
    return {"parameters": params, "model_bytes": model_bytes, "activation_bytes": est["bytes"],
            "bytes_per_letter": est["bytes_per_letter"]}


def predict_batches(memory: dict | None, batch_size: int, token_budget: int) -> tuple[int, int]:
    """Predict's batch size (fixed-length inputs) and letters per batch (models that read any
    length), lowered so that one batch's activations stay under :data:`PREDICT_BATCH_BYTES`, from
    what :func:`check_spec_size` measured (``Bundle.memory``; empty: unchanged)."""
    memory = memory or {}
    per_letter = memory.get("bytes_per_letter") or 0
    per_input = memory.get("activation_bytes") or 0
    if per_letter > 0:
        token_budget = min(int(token_budget), max(1, int(PREDICT_BATCH_BYTES // per_letter)))
    elif per_input > 0:
        batch_size = min(int(batch_size), max(1, int(PREDICT_BATCH_BYTES // per_input)))
    return batch_size, token_budget


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:160].rstrip(".") if text else "no details"


def _esm_layer_params(d: int) -> int:
    """Parameters of one ESM-2 Transformer layer of width ``d`` (q, k, v, out, 4d feed-forward, 2 LayerNorms)."""
    return 4 * (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 4 * d


def _check_esm_finetune(spec, error: ErrorType, family: str, what: str) -> dict:
    """A fine-tuning ESM head is built from the ESM-2 model loaded in this process; its size is
    the last ``finetune_layers`` layers of that model plus the head."""
    d = int(spec.embed_dim)
    n = int(spec.finetune_layers)
    known = {name: (layers, dim) for (layers, dim, _), name in ESM2_SIZES.items()}
    if spec.esm_name in known:
        layers, dim = known[spec.esm_name]
        if n > layers:
            raise error(f"{what}: the {family} fine-tunes {n} layers of {spec.esm_name}, which has {layers}.", _AGAIN)
        if d != dim:
            raise error(f"{what}: the {family} reads {d}-dimensional embeddings, but {spec.esm_name} gives {dim}.",
                        _AGAIN)
    params = n * _esm_layer_params(d) + 2 * d + d * max(int(spec.hidden), int(spec.n_outputs)) + 4096
    if params > MAX_PARAMETERS:
        raise error(f"{what} describes a {family} that fine-tunes {params:,} parameters; the playground loads models "
                    f"of up to {MAX_PARAMETERS:,} numbers.", _TOO_BIG)
    return {"parameters": params, "model_bytes": params * 4, "activation_bytes": 0, "bytes_per_letter": None}


# ----------------------------------------------------------------------------------------------
# 3. the archive around the pickle
def check_torch_zip(data: bytes, what: str, error: ErrorType = LimitError, max_unpacked: int = 200 * 10 ** 6,
                    not_pytorch_hint: str = "Choose the .pt file exactly as torch.save wrote it.",
                    max_pickle: int = MAX_PICKLE_BYTES) -> list:
    """Check a PyTorch zip archive before ``torch.load`` reads it: readable, at most
    :data:`MAX_ZIP_ENTRIES` parts, a ``data.pkl`` part of at most ``max_pickle`` bytes, every
    part stored uncompressed (as ``torch.save`` writes them), at most ``max_unpacked`` bytes in
    all and every checksum right.
    ``what`` names the file in messages ("'model.pt'"). Returns the ZipInfo list."""
    if data.count(b"PK\x01\x02") > MAX_ZIP_ENTRIES:
        raise error(f"{what} is an archive of more than {MAX_ZIP_ENTRIES:,} parts; a PyTorch file has a few hundred "
                    "at most.", "Is this really the .pt file you saved?")
    damaged = error(f"{what} is incomplete or damaged (the archive cannot be read; was the download cut short?).",
                    "Download or save the file again.")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error, KeyError,
            IndexError, OverflowError, NotImplementedError, RuntimeError):   # ValueError: names that are not UTF-8
        raise damaged from None
    if not infos:
        raise error(f"{what} is an empty zip archive, not a PyTorch file.", not_pytorch_hint)
    if len(infos) > MAX_ZIP_ENTRIES:
        raise error(f"{what} is an archive of {len(infos):,} parts; a PyTorch file has a few hundred at most.",
                    "Is this really the .pt file you saved?")
    if not any(i.filename.endswith("/data.pkl") or i.filename == "data.pkl" for i in infos):
        raise error(f"{what} is a zip archive but not a PyTorch file.", not_pytorch_hint)
    if any(i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
           for i in infos):
        raise damaged           # not a compression method at all: a damaged header
    packed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
    if packed:
        raise error(f"{what} is a compressed zip archive (e.g. '{packed[0][:60]}'); torch.save never compresses, so "
                    "it was re-packed by another program, and a compressed part could unpack to any size.",
                    "Upload the .pt file exactly as it was saved (not zipped again).")
    total = sum(i.file_size for i in infos)
    if total > max_unpacked:
        raise error(f"{what} declares {total / 1e6:,.0f} MB of contents, more than the {max_unpacked / 1e6:,.0f} MB "
                    "a file may hold here.", "Is this really the .pt file you saved?")
    if any(i.file_size != i.compress_size or i.header_offset + i.compress_size > len(data) for i in infos):
        raise damaged
    pkl = max(i.file_size for i in infos if i.filename.endswith("data.pkl"))
    if pkl > max_pickle:
        raise error(f"{what} has a {pkl / 2 ** 20:,.1f} MB description part (data.pkl); the playground reads at most "
                    f"{max_pickle / 2 ** 20:,.0f} MB (a model's is well under 1 MB).",
                    "Is this really the .pt file you saved? Save the model again.")
    try:
        bad = zf.testzip()       # reads every part in chunks and checks its CRC
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error, KeyError, IndexError, OverflowError,
            NotImplementedError, RuntimeError):
        bad = "?"
    if bad is not None:
        raise error(f"{what} is damaged (part '{str(bad)[:80]}' fails its checksum).", "Download or save the file again.")
    return infos


# ----------------------------------------------------------------------------------------------
# 4. ESM-2 checkpoints
# the prefixes fair-esm strips from a checkpoint's keys (esm.pretrained._load_model_and_alphabet_core_v2), as it does
_ESM_PREFIX = re.compile("^" + "|".join(["encoder.sentence_encoder.", "encoder."]))


def check_esm_checkpoint(state: dict, arch: dict, what: str, error: ErrorType = LimitError) -> dict:
    """An ESM-2 checkpoint's declared architecture (``arch``: layers, dim, heads, token_dropout,
    as ``esm.validate_checkpoint`` reads it) must be no larger than the largest ESM-2 and must
    match the weights in ``state``: checked on a meta-device ESM2, before fair-esm builds the
    real one. Returns ``{"name" (the known ESM-2 of this size, or None), "parameters"}``."""
    layers, dim, heads = int(arch["layers"]), int(arch["dim"]), int(arch["heads"])
    known = ", ".join(f"{n} ({lay}×{d}, {h} heads)" for (lay, d, h), n in ESM2_SIZES.items())
    hint = f"ESM-2 models published by fair-esm: {known}. Upload one of these (or a copy saved with its own architecture)."
    for label, v, hi in (("layers", layers, ESM2_MAX_LAYERS), ("embedding width", dim, ESM2_MAX_DIM),
                         ("attention heads", heads, ESM2_MAX_HEADS)):
        if not 1 <= v <= hi:
            raise error(f"{what} declares {_n(v)} {label}; the largest ESM-2 has {hi:,}.", hint)
    if dim % heads or (dim // heads) % 2:
        raise error(f"{what} declares width {dim} with {heads} attention heads: the width must split into an even "
                    "size per head.", hint)
    from esm.data import Alphabet
    from esm.model.esm2 import ESM2

    with torch.device("meta"):
        model = ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads,
                     alphabet=Alphabet.from_architecture("ESM-1b"), token_dropout=bool(arch.get("token_dropout", True)))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {_ESM_PREFIX.sub("", k): v for k, v in state.items()}
    optional = {"contact_head.regression.weight", "contact_head.regression.bias"}
    missing = sorted(set(expected) - set(found) - optional)
    unexpected = sorted(set(found) - set(expected))
    wrong = [f"{k} {tuple(found[k].shape)} ≠ {expected[k]}" for k in expected
             if k in found and tuple(found[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} weight(s) missing (e.g. {', '.join(missing[:2])})")
        if unexpected:
            parts.append(f"{len(unexpected)} weight(s) an ESM-2 of this size does not have (e.g. "
                         f"{', '.join(unexpected[:2])})")
        if wrong:
            parts.append(f"{len(wrong)} of the wrong shape (e.g. {'; '.join(wrong[:2])})")
        raise error(f"{what} does not fit the ESM-2 architecture it declares ({layers} layers × {dim}, {heads} heads): "
                    + "; ".join(parts) + ".",
                    "The file is damaged or its configuration was edited; use an original esm2_*.pt file.")
    params = sum(p.numel() for p in model.parameters())
    return {"name": ESM2_SIZES.get((layers, dim, heads)), "parameters": params}


__all__ = ["MAX_PARAMETERS", "MAX_ACTIVATION_BYTES", "FIELD_LIMITS", "MAX_SEQUENCE_LENGTH", "ESM2_SIZES", "LimitError",
           "check_spec_fields", "check_input_fields", "check_spec_size", "check_torch_zip", "check_esm_checkpoint",
           "meta_model", "model_numbers", "peak_activation", "activation_estimate", "predict_batches"]
