"""Predictions from a model bundle for sequences a person pastes or uploads.

    b = load_bundle("ctcf_cnn.pt")
    parsed = read_input(b, text=">s1\\nACGT...\\n>s2\\nTTGA...")      # checked against the model's alphabet/length
    result = predict(b, parsed, progress=lambda done, total, msg: print(msg))
    result.frame()          # id, sequence, predicted class, P(class) ... (a pandas DataFrame)
    result.to_csv()

Inputs are validated with the same reader (and the same line/character messages) as every
upload in the playground (:mod:`playground.data.parsing`). Large inputs run in batches
(one-hot models: fixed-size batches; token models: length-sorted batches, padded per batch;
ESM-2 heads: the embedding code's token budget), reporting progress after each batch.
For one-hot DNA models, :func:`explain` gives saliency and in-silico mutagenesis of one
sequence (via :mod:`playground.interpret`).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from playground import encoding, limits
from playground.bundle import Bundle, BundleError
from playground.data.parsing import MAX_BYTES, SequenceFileError, parse_sequence_file, parse_sequence_text

MAX_SEQUENCES = 100_000                      # per prediction run
MAX_LENGTH = {"dna": 10_000, "protein": 5_000}   # longest sequence for models that read any length
ONE_HOT_BATCH = 256                          # one-hot sequences per batch (fastest on one CPU thread)
TOKEN_BUDGET = 65_536                        # letters per batch for token models
LONG_POLICIES = {"reject": "Refuse them (say which line)", "truncate": "Cut them to the model's length"}
Progress = Callable[[int, int, str], None] | None


# ----------------------------------------------------------------------------------------------
# the model's input rules
def length_limit(bundle: Bundle) -> int | None:
    """The longest sequence the model accepts."""
    inp = bundle.input
    if inp.kind == "features":
        return None
    if inp.kind == "one_hot" and inp.length:
        return int(inp.length)
    limits = [MAX_LENGTH.get(inp.alphabet or "dna", 10_000)]
    if inp.max_length:
        limits.append(int(inp.max_length))
    if inp.kind == "esm_finetune":
        limits.append(1022)
    return min(limits)


def require_predictor(bundle: Bundle) -> None:
    """A language model predicts tokens, not labels: Predict refuses it with a way forward."""
    if bundle.task in ("lm_causal", "lm_masked"):
        raise BundleError("This bundle is a language model: it predicts tokens, not a label per sequence.",
                          "Fine-tune it on a labelled task on the Language models page (🎯 Pretrain → fine-tune) and "
                          "use the fine-tuned classifier here; or reload the language model in Python "
                          "(torch.load(path, weights_only=True)).")


def alphabet_of(bundle: Bundle) -> encoding.Alphabet:
    return encoding.ALPHABETS[bundle.input.alphabet or "dna"]


def input_rules(bundle: Bundle) -> str:
    """One paragraph: what this model reads, in the words the page shows."""
    inp = bundle.input
    if inp.kind == "features":
        cols = ", ".join(_feature_inputs(bundle))
        return (f"Points of the toy data set, one per line: {cols} (numbers between −6 and 6), separated by commas. "
                f"The model computes its features ({', '.join(inp.features)}) from them.")
    a = alphabet_of(bundle)
    letters = " ".join(a.valid)
    what = "DNA" if a.name == "dna" else "protein"
    txt = f"{what} sequences, letters {letters} (lower case is fine; {a.unknown} = unknown)"
    if inp.kind == "one_hot" and inp.length:
        txt += (f". The model reads exactly {inp.length} letters: shorter sequences are padded at the end "
                f"(all zeros, like {a.unknown}); longer ones are refused or cut, as you choose")
    else:
        txt += f", any length up to {length_limit(bundle):,}"
    if inp.kind.startswith("esm"):
        txt += f". Each protein first goes through {inp.esm_model}"
    return txt + "."


def _feature_inputs(bundle: Bundle) -> list[str]:
    """The raw coordinates a toy-feature model needs (x1, or x1 and x2)."""
    feats = bundle.input.features
    dims = 2 if any("2" in f for f in feats) else 1
    if bundle.input.toy_dataset:
        try:
            from playground.data.toy import TOY_SETS
            dims = TOY_SETS[bundle.input.toy_dataset].dims
        except (ImportError, KeyError):
            pass
    return ["x1", "x2"][:dims]


# ----------------------------------------------------------------------------------------------
# reading the input
@dataclasses.dataclass
class ParsedPoints:
    """Toy points read for a feature model."""
    ids: list[str]
    points: np.ndarray                 # (n, dims) raw coordinates
    line_numbers: list[int]
    warnings: list[str] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def read_points(text: str | bytes, bundle: Bundle, max_rows: int = MAX_SEQUENCES) -> ParsedPoints:
    """Numbers, one point per line ('x1,x2'); a header line is allowed."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SequenceFileError("The file is not UTF-8 text.", hint="Save it as CSV text.") from None
    dims = len(_feature_inputs(bundle))
    ids, rows, lines = [], [], []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.replace(";", ",").replace("\t", ",").split(",")]
        cells = [c for c in cells if c != ""]
        if not rows and not ids and any(_num(c) is None for c in cells):
            continue                    # a header line
        if len(cells) < dims:
            raise SequenceFileError(f"Line {n}: {len(cells)} number(s), but each point needs {dims} "
                                    f"({', '.join(['x1', 'x2'][:dims])}).", line=n,
                                    hint="Write one point per line, e.g. '1.5, -2'.")
        vals = []
        for j, c in enumerate(cells[:dims]):
            v = _num(c)
            if v is None:
                raise SequenceFileError(f"Line {n}, value {j + 1}: '{c[:20]}' is not a number.", line=n,
                                        hint="Write numbers like 1.5 or -2.")
            vals.append(v)
        extra = cells[dims:]
        ids.append(extra[0] if extra and _num(extra[0]) is None else f"point{len(ids) + 1}")
        rows.append(vals)
        lines.append(n)
        if len(rows) > max_rows:
            raise SequenceFileError(f"More than {max_rows:,} points.", hint="Predict fewer points at a time.")
    if not rows:
        raise SequenceFileError("No points were given.", hint="Write one point per line, e.g. '1.5, -2'.")
    pts = np.asarray(rows, dtype=np.float32)
    warn = []
    if np.abs(pts).max() > 6:
        warn.append("Some points are outside the training range (−6 to 6): predictions there are extrapolations.")
    return ParsedPoints(ids, pts, lines, warn)


def _num(s: str) -> float | None:
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def read_input(bundle: Bundle, text: str | None = None, data: bytes | None = None, filename: str = "upload.fasta",
               long_policy: str = "reject", map_aliases: bool = False, max_sequences: int = MAX_SEQUENCES,
               max_bytes: int = MAX_BYTES):
    """Pasted ``text`` or an uploaded file (``data`` + ``filename``: FASTA, CSV, TSV, one per
    line) checked against the bundle's alphabet and length rules. Raises SequenceFileError
    (line, character, what to do). Labels in the file are kept (``raw_labels``) but not needed."""
    if long_policy not in LONG_POLICIES:
        raise ValueError(f"long_policy must be one of {sorted(LONG_POLICIES)}")
    if bundle.input.kind == "features":
        return read_points(data if data is not None else (text or ""), bundle, max_sequences)
    alphabet = alphabet_of(bundle)
    limit = length_limit(bundle)
    policy = "truncate" if long_policy == "truncate" else "pad"
    kw = dict(label_required=False, length_policy=policy, max_length=limit, map_aliases=map_aliases,
              duplicates="keep", max_records=max_sequences, max_bytes=max_bytes)
    if data is not None:
        parsed = parse_sequence_file(data, filename, alphabet, **kw)
    else:
        parsed = parse_sequence_text(text or "", alphabet, **kw)
    if bundle.input.kind == "one_hot" and bundle.input.length:
        short = sum(1 for n in parsed.original_lengths if n < bundle.input.length)
        parsed.warnings = [w for w in parsed.warnings if not w.startswith("Lengths vary")]
        if short:
            parsed.warnings.append(f"{short} sequence(s) are shorter than the model's {bundle.input.length} letters and "
                                   f"were padded at the end (all zeros, like {alphabet.unknown}); the model never saw "
                                   "padding in training, so treat those predictions with care.")
    else:
        # models that read any length: no padding to the longest is needed (done per batch)
        parsed.warnings = [w for w in parsed.warnings if not w.startswith(("Lengths vary", "Sequences shorter"))]
    return parsed


# ----------------------------------------------------------------------------------------------
# encoding and running
_TOKEN_TABLES: dict = {}


def _token_table(a: encoding.Alphabet) -> np.ndarray:
    table = _TOKEN_TABLES.get(a.name)
    if table is None:
        table = np.full(256, -1, dtype=np.int64)
        for ch in a.valid:
            table[ord(ch)] = table[ord(ch.lower())] = a.token_of(ch)
        _TOKEN_TABLES[a.name] = table
    return table


def _tokens_fixed(seqs: list[str], a: encoding.Alphabet, L: int) -> torch.Tensor | None:
    """All sequences exactly L letters: tokenise the whole batch with one table look-up."""
    if not seqs or any(len(s) != L for s in seqs):
        return None
    try:
        raw = np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8).reshape(len(seqs), L)
    except UnicodeEncodeError:
        return None
    ids = _token_table(a)[raw]
    if (ids < 0).any():
        return None          # let encoding.tokenize name the bad letter
    return torch.from_numpy(ids)


def encode(bundle: Bundle, seqs: list[str]) -> torch.Tensor:
    """The tensor the model reads for a batch of clean sequences."""
    inp = bundle.input
    a = alphabet_of(bundle)
    if inp.kind == "one_hot":
        L = inp.length or max((len(s) for s in seqs), default=1)
        tok = _tokens_fixed(seqs, a, L)
        if tok is not None:
            return encoding.tokens_to_one_hot(tok, a, inp.n_value)
        return encoding.one_hot([s[:L] for s in seqs], a, L, n_value=inp.n_value)
    if inp.kind == "tokens":
        return encoding.tokenize(seqs, a, max(1, max((len(s) for s in seqs), default=1)))
    if inp.kind == "lm_tokens":       # a fine-tuned language model: [CLS] + its own letters or k-mers
        from playground.lm.tokens import encode_batch

        x = encode_batch(inp.tokenizer or {"alphabet": inp.alphabet or "dna"}, seqs)
        return x[:, : int(getattr(bundle.spec, "max_len", x.shape[1]))]
    raise BundleError(f"inputs of kind {inp.kind!r} are not sequences to encode")


def featurize_points(bundle: Bundle, points: np.ndarray) -> torch.Tensor:
    from playground.data.toy import featurize

    return torch.from_numpy(np.asarray(featurize(points, bundle.input.features), dtype=np.float32))


def esm_handle(bundle: Bundle, device: str = "cpu", allow_download: bool = False):
    """The ESM-2 model an ESM-head bundle needs: already loaded in this process, the cached
    pretrained weights, or (for 'untrained' bundles) the same random model from its seed."""
    from playground import esm

    spec = bundle.spec
    key = getattr(spec, "esm_model", "") or bundle.input.esm_key or ""
    name = getattr(spec, "esm_name", None) or bundle.input.esm_model or esm.DEFAULT_MODEL
    h = esm.get_loaded(key) if key else None
    if h is not None:
        return h
    for loaded in esm.loaded_models():
        if loaded.key.split("|")[0] == key.split("|")[0]:
            return loaded
    source = key.split(":")[0] if ":" in key else "pretrained"
    try:
        if source == "untrained":
            seed = 0
            for part in key.split("|")[0].split(":"):
                if part.startswith("seed") and part[4:].isdigit():
                    seed = int(part[4:])
            return esm.random_model(name, seed=seed, device=device)
        if source == "pretrained":
            return esm.load_pretrained(name, device=device, allow_download=allow_download)
    except esm.ESMError as e:
        raise BundleError(f"This model needs the ESM-2 model {name}: {e.message if hasattr(e, 'message') else e}",
                          "Load it on the Protein language model page first (it stays loaded for the session), "
                          "then predict again.") from None
    raise BundleError(f"This model needs the ESM-2 model '{name}' that was loaded from a file ({key.split('|')[0]}).",
                      "Load the same checkpoint on the Protein language model page first, then predict again.")


@dataclasses.dataclass
class PredictionResult:
    ids: list[str]
    seqs: list[str]                       # the sequences as read (for toy models: 'x1, x2' text)
    task: str
    classes: list[str]
    probs: np.ndarray | None = None       # (n, classes) for classification
    values: np.ndarray | None = None      # (n,) for regression
    per_residue: list[str] | None = None  # predicted label per residue, one string per sequence
    residue_confidence: list[np.ndarray] | None = None
    points: np.ndarray | None = None      # toy models: the raw coordinates
    warnings: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    model_name: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def predicted(self) -> list[str]:
        if self.task == "regression":
            return [f"{v:.4g}" for v in self.values]
        if self.task == "per_residue":
            return [residue_summary(s, self.classes) for s in self.per_residue]
        return [self.classes[int(i)] for i in self.probs.argmax(1)]

    @property
    def sequences_per_second(self) -> float:
        return len(self) / self.seconds if self.seconds > 0 else float("inf")

    def frame(self, max_sequence_chars: int | None = None):
        """One row per input: id, sequence, length, prediction and its numbers (sortable)."""
        import pandas as pd

        cols: dict = {"id": self.ids}
        if self.points is not None:
            for j in range(self.points.shape[1]):
                cols[f"x{j + 1}"] = self.points[:, j]
        else:
            seqs = self.seqs if not max_sequence_chars else [
                s if len(s) <= max_sequence_chars else s[:max_sequence_chars] + "…" for s in self.seqs]
            cols["sequence"] = seqs
            cols["length"] = [len(s) for s in self.seqs]
        if self.task == "regression":
            cols["predicted value"] = self.values.astype(float)
        elif self.task == "per_residue":
            cols["per-residue labels"] = self.per_residue
            cols["composition"] = self.predicted
            cols["mean confidence"] = [float(c.mean()) if len(c) else float("nan") for c in self.residue_confidence]
        else:
            cols["predicted"] = self.predicted
            cols["confidence"] = self.probs.max(1).astype(float)
            for j, c in enumerate(self.classes):
                cols[f"P({c})"] = self.probs[:, j].astype(float)
        return pd.DataFrame(cols)

    def to_csv(self) -> str:
        buf = io.StringIO()
        self.frame().to_csv(buf, index=False, float_format="%.6g", quoting=csv.QUOTE_MINIMAL)
        return buf.getvalue()


def residue_summary(labels: str, classes: list[str]) -> str:
    """'H 40% · E 20% · C 40%' for a per-residue prediction."""
    if not labels:
        return ""
    n = len(labels)
    sym = residue_symbols(classes)
    return " · ".join(f"{c} {labels.count(s) / n:.0%}" for c, s in zip(classes, sym))


def residue_symbols(classes: list[str]) -> list[str]:
    """One character per class for the aligned per-residue view."""
    if all(len(c) == 1 for c in classes) and len(set(classes)) == len(classes):
        return list(classes)
    return [str(i) if i < 10 else chr(ord("a") + i - 10) for i in range(len(classes))]


def aligned_text(seq: str, labels: str, width: int = 60, label_name: str = "pred") -> str:
    """The sequence with its per-residue labels underneath, in blocks of ``width``, with
    1-based positions: monospace text for st.code."""
    lines = []
    pad = max(len(label_name), 3)
    for start in range(0, len(seq), width):
        chunk, lab = seq[start:start + width], labels[start:start + width]
        lines.append(f"{'':{pad}}  {start + 1}")
        lines.append(f"{'seq':{pad}}  {chunk}")
        lines.append(f"{label_name:{pad}}  {lab}")
        lines.append("")
    return "\n".join(lines).rstrip()


def _batches_fixed(n: int, size: int) -> list[list[int]]:
    return [list(range(i, min(n, i + size))) for i in range(0, n, size)]


def _batches_by_length(lengths: list[int], budget: int, max_batch: int = 1024) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out, cur, longest = [], [], 0
    for i in order:
        L = max(1, lengths[i])
        if cur and (max(longest, L) * (len(cur) + 1) > budget or len(cur) >= max_batch):
            out.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, L)
    if cur:
        out.append(cur)
    return out


def _to_readable(bundle: Bundle, out: torch.Tensor) -> np.ndarray:
    out = out.float()
    if bundle.task == "binary":
        p1 = torch.sigmoid(out.reshape(len(out), -1)[:, 0])
        return torch.stack([1 - p1, p1], 1).numpy()
    if bundle.task == "regression":
        return out.reshape(len(out), -1)[:, 0].numpy()
    return torch.softmax(out, -1).numpy()


def load_model(bundle: Bundle, device: str = "cpu") -> nn.Module:
    """The bundle's network, ready to predict (ESM fine-tune bundles load their ESM-2 first)."""
    if bundle.kind == "esm_head" and int(getattr(bundle.spec, "finetune_layers", 0) or 0) > 0:
        h = esm_handle(bundle, device)
        if bundle.spec.esm_model != h.key:
            bundle.spec = dataclasses.replace(bundle.spec, esm_model=h.key)
    return bundle.build_model(device)


@torch.inference_mode()
def predict(bundle: Bundle, inputs, *, model: nn.Module | None = None, device: str = "cpu",
            batch_size: int = ONE_HOT_BATCH, token_budget: int = TOKEN_BUDGET, progress: Progress = None) -> PredictionResult:
    """Predictions for ``inputs`` (what :func:`read_input` returned, or a list of sequences).
    ``progress(done, total, message)`` is called after every batch."""
    t0 = time.perf_counter()
    require_predictor(bundle)
    if isinstance(inputs, (list, tuple)):
        inputs = read_input(bundle, text="\n".join(inputs))
    if len(inputs) > MAX_SEQUENCES:
        raise SequenceFileError(f"{len(inputs):,} sequences; the limit is {MAX_SEQUENCES:,} per run.",
                                hint="Split the file and predict the parts one after the other.")
    model = model if model is not None else load_model(bundle, device)
    # a loaded bundle knows its activation memory per input (playground.limits): batches stay under 256 MB
    batch_size, token_budget = limits.predict_batches(getattr(bundle, "memory", None), batch_size, token_budget)
    model.eval()
    dev = next(iter(model.parameters())).device
    n = len(inputs)
    classes = bundle.classes
    warnings = list(getattr(inputs, "warnings", []))
    if bundle.input.kind == "features":
        x = featurize_points(bundle, inputs.points)
        out = torch.cat([model(x[i:i + 8192].to(dev)).cpu() for i in range(0, n, 8192)])
        res = _to_readable(bundle, out)
        if progress:
            progress(n, n, f"Predicted {n:,} points")
        seqs = [", ".join(f"{v:g}" for v in p) for p in inputs.points]
        return _result(bundle, inputs.ids, seqs, res, None, warnings, time.perf_counter() - t0, inputs.points)
    seqs = list(inputs.seqs)
    ids = list(inputs.ids)
    if bundle.input.kind.startswith("esm"):
        return _predict_esm(bundle, model, ids, seqs, warnings, t0, progress, device)
    lengths = [len(s) for s in seqs]
    if bundle.input.kind == "one_hot":
        batches = _batches_fixed(n, batch_size)
    else:
        batches = _batches_by_length(lengths, token_budget)
    per_res = bundle.task == "per_residue"
    readable = [None] * n
    done = 0
    for bi, idx in enumerate(batches):
        x = encode(bundle, [seqs[i] for i in idx]).to(dev)
        out = model(x).cpu()
        r = _to_readable(bundle, out)
        for j, i in enumerate(idx):
            readable[i] = r[j][: lengths[i]] if per_res else r[j]
        done += len(idx)
        if progress:
            progress(done, n, f"Predicted {done:,} of {n:,} sequences (batch {bi + 1} of {len(batches)})")
    if per_res:
        return _result(bundle, ids, seqs, None, readable, warnings, time.perf_counter() - t0)
    return _result(bundle, ids, seqs, np.stack(readable) if n else np.zeros((0,)), None, warnings,
                   time.perf_counter() - t0)


def _predict_esm(bundle, model, ids, seqs, warnings, t0, progress, device):
    from playground import esm

    spec = bundle.spec
    handle = esm_handle(bundle, device)
    if handle.untrained:
        warnings.append(f"{handle.name} has untrained (random) weights, as when this model was trained.")
    per_res = bundle.task == "per_residue"
    dev = next(iter(model.parameters())).device
    half = (lambda d, t, m: progress(d, 2 * t, m)) if progress else None
    if int(getattr(spec, "finetune_layers", 0) or 0) > 0:
        x = esm.finetune_inputs(handle, seqs, int(spec.finetune_layers), ids, progress=half)
    else:
        emb = esm.embed(handle, seqs, int(spec.layer), "per_residue" if per_res else "mean", ids, progress=half)
        warnings.extend(emb.warnings)
        x = torch.from_numpy(emb.padded() if per_res else emb.vectors)
    n = len(seqs)
    readable = [None] * n
    lengths = [min(len(s), esm.MAX_RESIDUES) for s in seqs]
    for bi, idx in enumerate(_batches_fixed(n, 256)):
        r = _to_readable(bundle, model(x[idx].to(dev)).cpu())
        for j, i in enumerate(idx):
            readable[i] = r[j][: lengths[i]] if per_res else r[j]
        if progress:
            progress(n + idx[-1] + 1, 2 * n, f"Head: {idx[-1] + 1:,} of {n:,} sequences")
    if per_res:
        return _result(bundle, ids, seqs, None, readable, warnings, time.perf_counter() - t0)
    return _result(bundle, ids, seqs, np.stack(readable), None, warnings, time.perf_counter() - t0)


def _result(bundle, ids, seqs, res, per_res, warnings, seconds, points=None) -> PredictionResult:
    classes = bundle.classes
    r = PredictionResult(ids=ids, seqs=seqs, task=bundle.task, classes=classes, warnings=warnings, seconds=seconds,
                         points=points, model_name=bundle.title())
    if bundle.task == "regression":
        r.values = np.asarray(res, dtype=np.float32).reshape(-1)
    elif bundle.task == "per_residue":
        sym = residue_symbols(classes)
        r.per_residue = ["".join(sym[k] for k in p.argmax(-1)) for p in per_res]
        r.residue_confidence = [p.max(-1) for p in per_res]
    else:
        r.probs = np.asarray(res, dtype=np.float32).reshape(len(ids), -1)
    return r


# ----------------------------------------------------------------------------------------------
# why: saliency and in-silico mutagenesis (one-hot DNA models)
def can_explain(bundle: Bundle) -> bool:
    return bundle.input.kind == "one_hot" and bundle.input.alphabet == "dna" and bundle.task != "per_residue"


def explain(bundle: Bundle, model: nn.Module, seq: str, target: int | None = None) -> dict:
    """Saliency (gradient × input) and in-silico mutagenesis of one sequence: each a (4, L)
    array over A C G T × positions. ``target``: the class to explain (several classes)."""
    from playground.interpret import in_silico_mutagenesis, saliency

    if not can_explain(bundle):
        raise BundleError("Saliency and mutagenesis are drawn for one-hot DNA models (CNNs).",
                          "Pick a CNN bundle from the DNA page.")
    if bundle.task == "multiclass" and target is None:
        target = 0
    if bundle.task != "multiclass":
        target = None
    x = encode(bundle, [seq])[0]
    L = x.shape[1]
    shown = (seq + "N" * L)[:L]
    return {"saliency": saliency(model, x, target), "ism": in_silico_mutagenesis(model, x, target), "seq": shown}


__all__ = ["MAX_SEQUENCES", "LONG_POLICIES", "ParsedPoints", "PredictionResult", "aligned_text", "alphabet_of",
           "can_explain", "encode", "esm_handle", "explain", "input_rules", "length_limit", "load_model", "predict",
           "read_input", "read_points", "residue_summary", "residue_symbols"]
