"""Model bundles: a trained model in one file you can take home and load back.

    b = bundle_from_trainer(trainer, spec, page="dna", dataset="planted CTCF")
    b.save("ctcf_cnn.pt")                      # or b.to_bytes() for a download button
    b = load_bundle("ctcf_cnn.pt")             # spec + weights + everything needed to predict
    model = b.build_model()                    # the same network, same weights, eval mode

A bundle is a file written by ``torch.save`` that holds only plain data: the model spec
(a dict, as in a URL), the ``state_dict`` (tensors), how inputs are encoded (toy features,
one-hot DNA/protein, tokens, or ESM-2 embeddings with the ESM-2 model's name), the task and
label names, the training settings, the history and final metrics, and the version of the
library that wrote it. Plain PyTorch opens it too::

    b = torch.load("ctcf_cnn.pt", weights_only=True)
    b["spec"], b["state_dict"], b["label_names"]

Reading is for untrusted files: only PyTorch's zip format is accepted, the archive is checked
before anything is unpickled, ``torch.load(..., weights_only=True)`` refuses every Python object
that is not a tensor or a plain container (so a pickle that would run code is refused, and the
code does not run), and every field is checked. The model is sized before it is built
(:mod:`playground.limits`: every spec field capped, then parameters and activation memory
counted on PyTorch's meta device), so a small file cannot make the server allocate gigabytes.
Problems raise :class:`BundleError` with a message that says what is wrong and what to do; no
other exception leaves :func:`load_bundle`, whatever the bytes.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import io
import math
import os
import pickle
import struct
import zipfile
from typing import Any

import numpy as np
import torch
from torch import nn

import playground
from playground import limits
from playground.errors import PlaygroundError
from playground.models.base import ModelSpec, count_parameters, spec_from_dict

FORMAT = "sequence-dl-playground/model-bundle"
FORMAT_VERSION = 1
MAX_BUNDLE_BYTES = 200 * 1000 * 1000        # 200 MB: the largest file the loader reads (Streamlit's upload limit)
MAX_PARAMETERS = limits.MAX_PARAMETERS     # 50 million numbers: 200 MB in float32 (see playground.limits)
SUFFIX = ".pt"

INPUT_KINDS = {
    "features": "numeric features (toy data: x1, x2, ...)",
    "one_hot": "one-hot encoded sequences",
    "tokens": "token ids (0 = padding)",
    "esm_embedding": "ESM-2 embeddings",
    "esm_finetune": "ESM-2 hidden states (fine-tuned layers)",
    "lm_tokens": "language-model tokens ([CLS], then letters or k-mers: playground.lm.tokens)",
}
LM_TASKS = ("lm_causal", "lm_masked")        # language models (playground.lm): they predict tokens, not labels
TASKS = ("binary", "multiclass", "regression", "per_residue", *LM_TASKS)
FAMILY_LABELS = {
    "mlp": "MLP", "cnn": "CNN", "logreg": "Logistic regression", "rnn": "RNN", "transformer": "Transformer",
    "hybrid": "Hybrid CNN + Transformer", "token_cnn": "Token CNN", "esm_head": "ESM-2 head",
    "lm": "Transformer language model", "lm_classifier": "Fine-tuned LM classifier",
}
PAGE_LABELS = {"basics": "Neural network basics", "dna": "DNA & CNNs", "seq": "Sequence models",
               "sequence": "Sequence models", "esm": "Protein language model", "predict": "Predict",
               "lm": "Language models"}


class BundleError(PlaygroundError):
    """A model file that cannot be used, worded for the person who chose it (``message``, ``hint``)."""


# ----------------------------------------------------------------------------------------------
# what the model reads
@dataclasses.dataclass
class InputSpec:
    """How a sequence (or a toy point) becomes the tensor the model reads."""

    kind: str = "one_hot"              # one of INPUT_KINDS
    alphabet: str | None = "dna"       # 'dna' or 'protein' (None for toy features)
    length: int | None = None          # fixed input length (one-hot models): shorter sequences are padded
    max_length: int | None = None      # the longest sequence the model accepts (None: any)
    n_value: float = 0.0               # one-hot value of N / X in every channel
    features: list = dataclasses.field(default_factory=list)   # toy feature names ('x1', 'x1_sq', ...)
    toy_dataset: str | None = None     # the toy data set the features come from
    esm_model: str | None = None       # ESM-2 model name (e.g. esm2_t6_8M_UR50D)
    esm_key: str | None = None         # the key the playground loaded it under (pretrained / untrained + seed)
    esm_layer: int | None = None
    tokenizer: dict = dataclasses.field(default_factory=dict)   # lm_tokens: {'alphabet', 'kind', 'k'}

    def __post_init__(self):
        if self.kind not in INPUT_KINDS:
            raise BundleError(f"unknown input kind {self.kind!r}", f"Known kinds: {', '.join(INPUT_KINDS)}.")
        if self.alphabet is not None and self.alphabet not in ("dna", "protein"):
            raise BundleError(f"unknown alphabet {self.alphabet!r}", "Use 'dna' or 'protein'.")
        self.features = [str(f) for f in self.features]

    @property
    def is_sequence(self) -> bool:
        return self.kind != "features"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def describe(self) -> str:
        if self.kind == "features":
            return "toy features " + ", ".join(self.features) + (f" ({self.toy_dataset})" if self.toy_dataset else "")
        what = {"dna": "DNA", "protein": "protein", None: "sequence"}[self.alphabet]
        if self.kind == "one_hot":
            return f"one-hot {what}, length {self.length}" if self.length else f"one-hot {what}"
        if self.kind == "tokens":
            return f"{what} tokens" + (f", up to {self.max_length} letters" if self.max_length else "")
        if self.kind == "lm_tokens":
            t = self.tokenizer or {}
            unit = "letters" if t.get("kind", "char") == "char" else (
                f"{'overlapping' if t.get('kind') == 'kmer_overlap' else 'non-overlapping'} {t.get('k')}-mers")
            return f"{what} as {unit} ([CLS] first)" + (f", up to {self.max_length} letters" if self.max_length else "")
        return f"{INPUT_KINDS[self.kind]} of {self.esm_model}" + (f" (layer {self.esm_layer})" if self.esm_layer else "")


def _alphabet_of_vocab(vocab_size: int) -> str:
    return "protein" if vocab_size > 6 else "dna"


def infer_input(spec: ModelSpec, data=None) -> InputSpec:
    """The input a model of ``spec`` trained on ``data`` (a SplitData) reads, from the tensors'
    shape and the data's meta. Pages may pass an explicit InputSpec instead."""
    kind = spec.kind
    meta = getattr(data, "meta", {}) or {}
    x = getattr(data, "x_train", None)
    if kind == "esm_head":
        name = getattr(spec, "esm_name", None)
        return InputSpec("esm_finetune" if getattr(spec, "finetune_layers", 0) else "esm_embedding", "protein",
                         esm_model=name, esm_key=getattr(spec, "esm_model", None), esm_layer=getattr(spec, "layer", None),
                         max_length=1022 if getattr(spec, "finetune_layers", 0) else None)
    if meta.get("features") is not None and kind == "mlp" and (x is None or x.dim() == 2):
        return InputSpec("features", None, features=list(meta["features"]), toy_dataset=meta.get("dataset"))
    if x is not None and x.dim() == 3 and x.is_floating_point():
        channels = x.shape[1]
        return InputSpec("one_hot", "protein" if channels == 20 else "dna", length=int(x.shape[2]))
    if kind in ("cnn", "logreg"):
        return InputSpec("one_hot", "protein" if getattr(spec, "in_channels", 4) == 20 else "dna",
                         length=int(spec.length))
    if kind in ("lm", "lm_classifier") and meta.get("tokenizer"):
        from playground.lm.tokens import Tokenizer

        tok = Tokenizer.from_dict(meta["tokenizer"])
        return InputSpec("lm_tokens", tok.alphabet, tokenizer=tok.to_dict(),
                         max_length=lm_letters(tok, int(spec.max_len)))
    if kind in ("rnn", "transformer", "hybrid", "token_cnn"):
        alpha = meta.get("alphabet") or _alphabet_of_vocab(int(getattr(spec, "vocab_size", 6)))
        # a learned positional table has a fixed number of rows; other models read any length
        max_len = int(spec.max_len) if kind == "transformer" and getattr(spec, "positional", "") == "learned" else None
        return InputSpec("tokens", alpha if alpha in ("dna", "protein") else "dna", max_length=max_len)
    if kind == "mlp" and x is not None and x.dim() == 2 and x.is_floating_point():
        return InputSpec("features", None, features=[f"x{i + 1}" for i in range(x.shape[1])])
    raise BundleError(f"cannot tell what a {kind} model trained on this data reads",
                      "Pass input=InputSpec(...) when making the bundle.")


def lm_letters(tok, positions: int) -> int:
    """The longest sequence (letters) whose [CLS] + tokens fit in ``positions`` positions."""
    n = max(1, int(positions) - 1)
    if tok.kind == "kmer_disjoint":
        return n * tok.k
    if tok.kind == "kmer_overlap":
        return n + tok.k - 1
    return n


# ----------------------------------------------------------------------------------------------
# the bundle
@dataclasses.dataclass
class Bundle:
    spec: ModelSpec
    state_dict: dict
    input: InputSpec
    task: str                                   # 'binary', 'multiclass', 'regression', 'per_residue'
    label_names: list = dataclasses.field(default_factory=list)
    page: str = ""
    dataset: str = ""
    name: str = ""
    training: dict = dataclasses.field(default_factory=dict)
    metrics: dict = dataclasses.field(default_factory=dict)
    history: list = dataclasses.field(default_factory=list)
    library_version: str = playground.__version__
    format_version: int = FORMAT_VERSION
    created: str = ""
    # what playground.limits measured when the bundle was loaded (parameters, activation bytes per
    # input / per letter); not saved. playground.predict sizes its batches from it.
    memory: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    # -- facts ------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def family(self) -> str:
        return FAMILY_LABELS.get(self.kind, self.kind)

    @property
    def n_parameters(self) -> int:
        return int(sum(t.numel() for t in self.state_dict.values() if t.is_floating_point()))

    @property
    def classes(self) -> list[str]:
        """Names of the output classes (binary: negative, positive)."""
        if self.task == "regression":
            return []
        names = [str(n) for n in self.label_names]
        if self.task == "binary" and len(names) != 2:
            names = ["0", "1"]
        n_out = int(getattr(self.spec, "n_outputs", len(names) or 1))
        if self.task in ("multiclass", "per_residue") and len(names) != n_out:
            names = [str(i) for i in range(n_out)]
        return names

    def title(self) -> str:
        return self.name or f"{self.family} · {self.dataset or 'data'}"

    def summary(self) -> list[tuple[str, str]]:
        """(what, value) rows for a card or a table."""
        rows = [("Model", self.spec.describe()), ("Family", self.family),
                ("Parameters", f"{self.n_parameters:,}"),
                ("Trained on", f"{PAGE_LABELS.get(self.page, self.page) or '–'} · {self.dataset or '–'}"),
                ("Task", self.task.replace("_", "-")),
                ("Input", self.input.describe())]
        if self.task in LM_TASKS:
            rows.append(("Vocabulary", f"{len(self.label_names):,} tokens (a language model: it predicts tokens)"))
        elif self.task != "regression":
            rows.append(("Classes", ", ".join(self.classes)))
        tr = self.training
        if tr:
            bits = [f"{tr['epochs']} epochs" if "epochs" in tr else "",
                    f"{tr.get('optimizer', '')} lr {tr['lr']:g}" if "lr" in tr else "",
                    f"batch {tr['batch_size']}" if "batch_size" in tr else "",
                    f"seed {tr['seed']}" if "seed" in tr else ""]
            rows.append(("Training", ", ".join(b for b in bits if b)))
        if self.metrics:
            rows.append(("Final test metrics", ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                        for k, v in self.metrics.items())))
        rows.append(("Saved with", f"playground {self.library_version} (bundle format {self.format_version})"
                     + (f", {self.created}" if self.created else "")))
        return rows

    # -- the network -------------------------------------------------------------------------
    def build_model(self, device: str = "cpu") -> nn.Module:
        """The network with the bundle's weights, in eval mode. Raises BundleError when the
        weights do not fit the spec (a file edited by hand or mixed from two models)."""
        try:
            model = self.spec.build()
        except ValueError as e:
            raise BundleError(f"This {self.family} bundle cannot be rebuilt here: {e}",
                              "Load what it needs first (see the message), then try again.") from None
        check_weights_fit(model, self.state_dict, self.spec)
        return model.to(device).eval()

    # -- files -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "format_version": int(self.format_version), "library_version": str(self.library_version),
            "created": self.created or _now(), "name": self.name, "page": self.page, "dataset": self.dataset,
            "spec": _plain(self.spec.to_dict()), "input": _plain(self.input.to_dict()), "task": self.task,
            "label_names": [str(n) for n in self.label_names], "training": _plain(self.training),
            "metrics": _plain(self.metrics), "history": _plain(self.history),
            "state_dict": {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict.items()},
        }

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        torch.save(self.to_dict(), buf)
        return buf.getvalue()

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "wb") as f:
            f.write(self.to_bytes())

    def file_name(self) -> str:
        stem = "".join(c if c.isalnum() else "_" for c in f"{self.kind}_{self.dataset or self.page or 'model'}")
        return stem.strip("_")[:60].lower() + SUFFIX


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _plain(obj: Any):
    """JSON-like data only (dict / list / str / int / float / bool / None)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, np.ndarray) and obj.size <= 64:
        return _plain(obj.tolist())
    if isinstance(obj, torch.Tensor) and obj.numel() <= 64:
        return _plain(obj.tolist())
    return str(obj)


def check_weight_shapes(model: nn.Module, state_dict: dict, spec: ModelSpec | None = None) -> None:
    """Raise a BundleError naming the weights of ``state_dict`` that ``model`` (real or on the meta
    device) does not have, misses, or has in another shape."""
    family = FAMILY_LABELS.get(spec.kind, spec.kind) if spec is not None else "model"
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [f"{k} {tuple(state_dict[k].shape)} ≠ {tuple(own[k].shape)}" for k in own
             if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} weight(s) missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} weight(s) the {family} does not have (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} of the wrong shape (e.g. {'; '.join(wrong[:2])})")
        raise BundleError(f"The weights in this file do not fit the {family} it describes: " + "; ".join(parts) + ".",
                          "The file may come from a different model family or was edited. Save the model again "
                          "from the page where it was trained.")


def check_weights_fit(model: nn.Module, state_dict: dict, spec: ModelSpec | None = None) -> None:
    """Load ``state_dict`` into ``model`` (strictly) or raise a BundleError naming the mismatch."""
    check_weight_shapes(model, state_dict, spec)
    family = FAMILY_LABELS.get(spec.kind, spec.kind) if spec is not None else "model"
    try:
        model.load_state_dict(state_dict, strict=True)
    except (RuntimeError, NotImplementedError, TypeError) as e:   # e.g. a meta or complex tensor in the file
        raise BundleError(f"The weights in this file do not fit the {family}: {' '.join(str(e).split())[:200]}",
                          "Save the model again from the page where it was trained.") from None


# ----------------------------------------------------------------------------------------------
# making bundles
def bundle_from_trainer(trainer, spec: ModelSpec, *, page: str, dataset: str = "", name: str = "",
                        label_names=None, input: InputSpec | None = None, settings: dict | None = None) -> Bundle:
    """Everything about a trained run in one bundle. ``trainer`` is a playground Trainer."""
    data = trainer.data
    cfg = trainer.config
    training = {"optimizer": cfg.optimizer, "lr": float(cfg.lr), "batch_size": int(cfg.batch_size),
                "seed": int(cfg.seed), "regularization": cfg.regularization, "reg_rate": float(cfg.reg_rate),
                "epochs": int(trainer.epoch), "steps": int(trainer.steps), "seconds": round(float(trainer.seconds), 3),
                "n_train": int(len(data.y_train)), "n_val": int(len(data.y_val)), "n_test": int(len(data.y_test)),
                "metrics_on": "validation"}
    if cfg.early_stopping:
        training["early_stopping"] = int(cfg.early_stopping)
    if settings:
        training["settings"] = _plain(settings)
    try:
        # the validation scores (saving a model is no reason to look at the test set); the test
        # scores only when the user already scored it (``Trainer.score_test``), marked test_...
        metrics = {k: v for k, v in trainer.evaluate("val").items() if isinstance(v, float) and math.isfinite(v)}
        for k, v in (getattr(trainer, "test_scores", None) or {}).items():
            if isinstance(v, float) and math.isfinite(v):
                metrics[f"test_{k}"] = v
    except Exception:  # noqa: BLE001 - metrics are a courtesy; a failing metric must not block saving
        metrics = {}
    names = list(label_names) if label_names is not None else list(getattr(data, "class_names", []) or [])
    if data.task == "binary" and len(names) != 2:
        names = ["0", "1"]
    state = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}
    return Bundle(spec=spec, state_dict=state, input=input or infer_input(spec, data), task=data.task,
                  label_names=names, page=page, dataset=dataset, name=name, training=training,
                  metrics={k: round(v, 6) for k, v in metrics.items()}, history=_plain(thin_history(trainer.history)),
                  created=_now())


MAX_HISTORY = 5000       # epochs kept in a bundle (a long run keeps every k-th, the first and the last)


def thin_history(history: list, keep: int = MAX_HISTORY) -> list:
    """At most ``keep`` evenly spaced epochs of a training history, always the first and the last
    (a run left playing for an hour has ~10^5 epochs; the bundle stays small and quick to read)."""
    n = len(history)
    if n <= keep:
        return list(history)
    idx = sorted({round(i * (n - 1) / (keep - 1)) for i in range(keep)})
    return [history[i] for i in idx]


def bundle_from_model(model: nn.Module, spec: ModelSpec, input: InputSpec, task: str, label_names=(), **kw) -> Bundle:
    """A bundle from a bare model (no Trainer), e.g. in a notebook."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return Bundle(spec=spec, state_dict=state, input=input, task=task, label_names=list(label_names),
                  created=_now(), **kw)


# ----------------------------------------------------------------------------------------------
# reading untrusted files
def _read_source(source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "the file"
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            size = os.path.getsize(path)
        except OSError as e:
            raise BundleError(f"Cannot open '{path}': {e.strerror or e}.", "Check the path.") from None
        if size > MAX_BUNDLE_BYTES:
            raise _too_big(size)
        with open(path, "rb") as f:
            return f.read(), f"'{os.path.basename(path)}'"
    if hasattr(source, "getvalue"):
        return bytes(source.getvalue()), f"'{getattr(source, 'name', 'the upload')}'"
    if hasattr(source, "read"):
        data = source.read(MAX_BUNDLE_BYTES + 1)
        return bytes(data), f"'{getattr(source, 'name', 'the file')}'"
    raise TypeError("give bytes, a path or a file object")


def _too_big(n: int) -> BundleError:
    return BundleError(f"The file is {n / 1e6:.0f} MB; model bundles are limited to {MAX_BUNDLE_BYTES / 1e6:.0f} MB.",
                       "Is this really a playground model bundle?")


def _looks_like_pickle(data: bytes) -> bool:
    return data[:1] == b"\x80" and len(data) > 1 and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")


def _cap(what: str) -> str:
    return what[:1].upper() + what[1:]


def _check_archive(data: bytes, what: str) -> None:
    """A PyTorch file is a zip archive with <name>/data.pkl; check it before unpickling anything."""
    if not data:
        raise BundleError(f"{_cap(what)} is empty (0 bytes).", "Choose the .pt file you downloaded.")
    if len(data) > MAX_BUNDLE_BYTES:
        raise _too_big(len(data))
    if _looks_like_pickle(data):
        raise BundleError(f"{_cap(what)} is a raw Python pickle, not a playground model bundle. "
                          "Pickles can run code when they are opened, so the playground never opens them.",
                          "Save the model with the playground's 'Download model' button (a .pt bundle).")
    if data[:4] != b"PK\x03\x04":
        head = data[:64]
        if head.lstrip().startswith((b">", b"id,", b"sequence")) or all(32 <= c < 127 or c in (9, 10, 13) for c in head):
            raise BundleError(f"{_cap(what)} is a text file, not a model bundle.",
                              "Upload sequences in the 'Sequences' box; upload here the .pt file saved from a page.")
        raise BundleError(f"{_cap(what)} is not a PyTorch file (it does not start like one).",
                          "Choose the .pt bundle saved with the playground's 'Download model' button.")
    # readable, a data.pkl, parts stored uncompressed, at most MAX_BUNDLE_BYTES unpacked, checksums right
    limits.check_torch_zip(data, _cap(what), BundleError, max_unpacked=MAX_BUNDLE_BYTES,
                           not_pytorch_hint="Choose the .pt bundle saved with the playground's 'Download model' button.")


# what torch.load raises for damaged bytes (the zip reader, the unpickler, tensor rebuilding)
_DAMAGE = (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError, AttributeError,
           struct.error, OverflowError, MemoryError, RecursionError, NotImplementedError, zipfile.BadZipFile)


def _unpickle_safely(data: bytes, what: str):
    damaged = ("The file is probably damaged or incomplete: download or save the model again.")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = str(e)
        culprit = ""
        for line in detail.splitlines():
            if "GLOBAL" in line or "Unsupported global" in line or "Unsupported class" in line:
                culprit = line.strip()[:160]
                break
        if culprit or "Trying to call reduce" in detail or "Can only build Tensor" in detail:
            raise BundleError(f"{_cap(what)} contains Python objects that could run code when opened"
                              + (f" ({culprit})" if culprit else "") + "; it was refused and nothing in it was run.",
                              "Only load bundles saved by the playground, from people you trust.") from None
        raise BundleError(f"{_cap(what)} is damaged: its contents could not be unpacked ({_unpickler_detail(detail)}).",
                          damaged) from None
    except _DAMAGE as e:
        raise BundleError(f"{_cap(what)} is damaged: it could not be read as a PyTorch file "
                          f"({type(e).__name__}: {_first_line(e)}).", damaged) from None


def _unpickler_detail(text: str) -> str:
    """The line of torch's weights_only error that says what was wrong (not its boilerplate)."""
    tail = text.split("WeightsUnpickler error:", 1)
    if len(tail) == 2:
        for line in tail[1].splitlines():
            if line.strip():
                return line.strip()[:160]
    return text.strip().splitlines()[0][:160] if text.strip() else "no details"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:160] if text else "no details"


MAX_PLAIN_ITEMS = 1_000_000      # values in the plain-data fields together (a long history has ~10,000)


def _check_plain(obj, where: str, depth: int = 0, budget: list | None = None) -> None:
    """Plain data only (dict / list / str / int / float / bool / None), at most 12 levels deep and
    MAX_PLAIN_ITEMS values in all (a pickle can repeat one list inside itself thousands of times
    at every level: walking it would never end)."""
    budget = [MAX_PLAIN_ITEMS] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise BundleError(f"The field '{where.split('[')[0].split('.')[0]}' holds more than {MAX_PLAIN_ITEMS:,} "
                          "values, more than any playground model saves.", "Save the model again from the playground.")
    if depth > 12:
        raise BundleError(f"The field '{where}' is nested too deeply.", "Save the model again from the playground.")
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise BundleError(f"The field '{where}' has a key that is not text.",
                                  "Save the model again from the playground.")
            _check_plain(v, f"{where}.{k}", depth + 1, budget)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]", depth + 1, budget)
    elif isinstance(obj, float) or obj is None or isinstance(obj, (str, bool)):
        pass
    elif isinstance(obj, int):
        if not -2 ** 63 <= obj < 2 ** 63:
            raise BundleError(f"The field '{where}' holds a whole number outside the 64-bit range.",
                              "Save the model again from the playground.")
    else:
        raise BundleError(f"The field '{where}' holds a {type(obj).__name__}, where plain data was expected.",
                          "Save the model again from the playground.")


def _foreign_message(obj, what: str) -> BundleError:
    cap = _cap(what)
    if isinstance(obj, dict):
        keys = set(obj)
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return BundleError(f"{cap} is a bare PyTorch state_dict ({len(obj)} tensors): it has the weights but not "
                               "the model spec, the encoding or the label names a prediction needs.",
                               "Save the model from the playground page where it was trained ('Download model').")
        if {"model", "cfg"} <= keys or "args" in keys and "model" in keys:
            return BundleError(f"{cap} looks like an ESM-2 checkpoint (a protein language model), not a trained "
                               "playground model.", "Load it on the Protein language model page.")
        if keys & {"model_state_dict", "optimizer_state_dict", "epoch"}:
            return BundleError(f"{cap} is a training checkpoint from another program, not a playground bundle.",
                               "Save the model from the playground page where it was trained ('Download model').")
        if obj.get("format") and obj.get("format") != FORMAT:
            return BundleError(f"{cap} is a '{str(obj.get('format'))[:60]}' file, not a playground model bundle.",
                               "Choose a .pt bundle saved from a playground page.")
    return BundleError(f"{cap} is a PyTorch file, but not a playground model bundle "
                       f"(it holds a {type(obj).__name__}).", "Choose a .pt bundle saved from a playground page.")


def load_bundle(source, expect_kinds=None, filename: str | None = None) -> Bundle:
    """Read a bundle from bytes, a path or a file object (e.g. a Streamlit upload), checking
    everything. ``expect_kinds``: model families that are acceptable here (e.g. ('cnn',)).
    Raises BundleError with a message a student can act on."""
    import playground.lm.models  # noqa: F401 - registers the language-model kinds ('lm', 'lm_classifier')

    data, what = _read_source(source)
    if filename:
        what = f"'{filename}'"
    _check_archive(data, what)
    cap = _cap(what)
    obj = _unpickle_safely(data, what)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise _foreign_message(obj, what)
    version = obj.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or abs(version) > 2 ** 31:
        raise BundleError(f"{cap} has no valid bundle format version.", "Save the model again from the playground.")
    lib = obj.get("library_version", "?")
    lib = lib[:40] if isinstance(lib, str) else "?"
    if version > FORMAT_VERSION:
        raise BundleError(f"{cap} was saved by a newer playground (version {lib}, bundle format {version}); this "
                          f"playground (version {playground.__version__}) reads bundle format {FORMAT_VERSION}.",
                          "Update the playground (git pull; pip install -r requirements.txt), or save the model "
                          "again with this version.")
    if version < 1:
        raise BundleError(f"{cap} has an invalid bundle format version ({version}).",
                          "Save the model again from the playground.")
    budget = [MAX_PLAIN_ITEMS]
    for key in ("spec", "input", "training", "metrics"):
        if not isinstance(obj.get(key, {}), dict):
            raise BundleError(f"{cap}: the field '{key}' is damaged.", "Save the model again from the playground.")
        _check_plain(obj.get(key, {}), key, budget=budget)
    for key in ("label_names", "history"):
        if not isinstance(obj.get(key, []), list):
            raise BundleError(f"{cap}: the field '{key}' is damaged.", "Save the model again from the playground.")
        _check_plain(obj.get(key, []), key, budget=budget)
    for key in ("name", "page", "dataset", "task", "created"):
        if not isinstance(obj.get(key, ""), str):
            raise BundleError(f"{cap}: the field '{key}' is damaged.", "Save the model again from the playground.")
    task = obj.get("task")
    if task not in TASKS:
        raise BundleError(f"{cap}: unknown task {task!r}.", "Save the model again from the playground.")
    sd = obj.get("state_dict")
    if not isinstance(sd, dict) or not sd or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                    for k, v in sd.items()):
        raise BundleError(f"{cap} has no usable weights (the state_dict is missing or damaged).",
                          "Save the model again from the playground.")
    n_params = sum(v.numel() for v in sd.values())
    if n_params > MAX_PARAMETERS:
        raise BundleError(f"{cap} holds {n_params / 1e6:.0f} million numbers; the playground loads models of up to "
                          f"{MAX_PARAMETERS / 1e6:.0f} million.", "Is this really a playground model bundle?")
    spec_dict = obj["spec"]
    # every number of the spec and the input description within the playground's limits, before
    # anything is built (playground.limits)
    limits.check_spec_fields(spec_dict, BundleError, where=f"The model spec in {what}")
    limits.check_input_fields(obj.get("input") or {}, BundleError, where=f"The input description in {what}")
    try:
        spec = spec_from_dict(spec_dict)
    except (ValueError, TypeError, OverflowError, ArithmeticError) as e:
        kind = spec_dict.get("kind")
        if kind is not None and str(e).startswith("unknown model kind"):
            raise BundleError(f"{cap} holds a model of family '{kind}', which this playground does not know.",
                              "It may come from a newer playground: update it.") from None
        raise BundleError(f"{cap}: the model spec is invalid ({_first_line(e)}).",
                          "Save the model again from the playground.") from None
    try:
        input_spec = InputSpec.from_dict(obj.get("input") or {})
    except (BundleError, TypeError) as e:
        raise BundleError(f"{cap}: the input description is invalid ({e}).",
                          "Save the model again from the playground.") from None
    b = Bundle(spec=spec, state_dict=dict(sd), input=input_spec, task=task,
               label_names=[str(n) for n in obj.get("label_names", [])], page=obj.get("page", ""),
               dataset=obj.get("dataset", ""), name=obj.get("name", ""), training=obj.get("training", {}),
               metrics=obj.get("metrics", {}), history=obj.get("history", []), library_version=lib,
               format_version=version, created=obj.get("created", ""))
    if expect_kinds is not None and spec.kind not in tuple(expect_kinds):
        want = " or ".join(FAMILY_LABELS.get(k, k) for k in expect_kinds)
        where = PAGE_LABELS.get(b.page, b.page)
        raise BundleError(f"{cap} holds a {b.family} ({spec.describe()})"
                          + (f", trained on the {where} page" if where else "") + f"; here a {want} is needed.",
                          f"Choose a {want} bundle.")
    # parameters and activation memory counted on the meta device before anything real is built
    # (and, on that meta model, the weights' names and shapes compared with the spec's)
    b.memory = limits.check_spec_size(spec, input_spec, BundleError, family=b.family, what=cap,
                                      on_meta_model=None if _needs_esm_to_build(spec)
                                      else lambda meta: check_weight_shapes(meta, b.state_dict, spec))
    if not _needs_esm_to_build(spec):
        try:
            model = spec.build()
        except ValueError as e:
            raise BundleError(f"{cap}: the model cannot be built ({e}).", "Save the model again.") from None
        check_weights_fit(model, b.state_dict, spec)
    return b


def _needs_esm_to_build(spec: ModelSpec) -> bool:
    return spec.kind == "esm_head" and int(getattr(spec, "finetune_layers", 0) or 0) > 0


def parameter_count(bundle: Bundle) -> int:
    try:
        return count_parameters(bundle.build_model())
    except BundleError:
        return bundle.n_parameters


__all__ = ["Bundle", "BundleError", "InputSpec", "INPUT_KINDS", "FORMAT", "FORMAT_VERSION", "MAX_BUNDLE_BYTES",
           "bundle_from_trainer", "bundle_from_model", "load_bundle", "infer_input", "check_weights_fit"]
