"""ESM-2, the protein language model, for the playground (built on ``fair-esm``).

ESM-2 is a Transformer encoder pre-trained on ~65 million UniRef50 clusters (sampled from 250 million
sequences) by *masked-language modelling*: hide 15% of the amino acids and predict them from the
rest. What it learned shows up in three places this module exposes:

- the **masked-LM head**: probabilities of the 20 amino acids at a masked position
  (:func:`mask_predictions`, :func:`pseudo_perplexity`);
- the **embeddings**: the hidden vectors of a layer, mean-pooled over the residues
  (BOS/EOS and padding excluded), as features for a small head (:func:`embed`);
- the **attention maps**, from which ESM-2 predicts residue-residue contacts
  (:func:`attention_and_contacts`).

Loading (:func:`load_pretrained`, :func:`load_checkpoint_file`, :func:`load_checkpoint_bytes`,
:func:`random_model`) returns an :class:`ESMHandle`. Loaded models live in a process-wide cache
shared read-only by every app session: eval mode, ``requires_grad=False``, never mutated
(fine-tuning works on a deep copy, see ``playground.models.esm_head``). Inference uses
:func:`esm_forward`, a functional re-statement of fair-esm's ``ESM2.forward`` (checked equal in the
tests) that uses fused attention when the attention weights are not needed and, unlike
fair-esm's rotary embedding, keeps no per-call cache on the module (so sessions can share it).

Untrusted files: every checkpoint is read with ``torch.load(weights_only=True)``; the only Python
class allowed besides tensors and containers is ``argparse.Namespace`` (fair-esm keeps the model
configuration in one). Anything else in the file, or a layout that is not an ESM-2 checkpoint
(``{"model": state_dict, "cfg": {"model": Namespace(encoder_layers=...)}}``), is refused with a
message naming what is wrong. Nothing here imports streamlit; long jobs take a
``progress(done, total, message)`` callback.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import io
import os
import re
import resource
import socket
import threading
import time
import urllib.error
import urllib.request
import warnings
import weakref
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from playground.errors import PlaygroundError
from playground.data.split import SplitData
from playground.models.esm_arch import (TOKEN_PAD, TOKEN_RESIDUE, TOKEN_SPECIAL, forget, get_loaded,  # noqa: F401
                                        layer_forward, loaded_models, remember, rotary_tables)
from playground.models.esm_head import ESMHeadSpec
from playground.models.hybrid import PROTEIN_CNN_COURSE
from playground.seeding import seeded

MAX_RESIDUES = 1022            # ESM-2 was trained on crops of at most 1022 residues (+ BOS, EOS)
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"   # the 20 standard amino acids (display order)
RARE = "XBUZO"                 # letters ESM-2's alphabet also knows (unknown, ambiguous, rare)
ALLOWED = AMINO_ACIDS + RARE
HUB_URL = "https://dl.fbaipublicfiles.com/fair-esm"
HUB_HOST = "dl.fbaipublicfiles.com"
SAFE_GLOBALS = [argparse.Namespace]   # the only class an ESM-2 checkpoint may contain
MAX_UPLOAD_BYTES = 3 * 1024 ** 3
LONG_POLICIES = {"truncate": "cut to the first 1022 residues", "window": "overlapping windows, averaged"}
Progress = Callable[[int, int, str], None] | None


# =============================================================================================
# The catalogue
# =============================================================================================
@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str          # fair-esm's name, e.g. "esm2_t6_8M_UR50D"
    layers: int
    dim: int
    heads: int
    params: int        # parameters (the LM head shares the token-embedding matrix)
    label: str
    note: str

    @property
    def file_mb(self) -> float:
        """Size of the download (fp32 checkpoint) in MB."""
        return self.params * 4 / 1e6

    def weights_mb(self, dtype: torch.dtype = torch.float32) -> float:
        return self.params * _dtype_bytes(dtype) / 2 ** 20

    def load_mb(self, device: str = "cpu", dtype: torch.dtype = torch.float32) -> float:
        """Peak memory (MB) on the host while loading: the checkpoint read into memory plus the
        model built from it, plus the Python/torch overhead of inference."""
        host = 2 * self.params * 4 / 2 ** 20 + 300
        if device == "cuda":
            return host
        return host + activation_mb(self, 4096, dtype)

    def run_mb(self, device: str = "cpu", dtype: torch.dtype = torch.float32, tokens: int = 4096) -> float:
        """Resident memory (MB) on ``device`` while embedding ``tokens`` tokens per batch."""
        return self.weights_mb(dtype) + activation_mb(self, tokens, dtype)


def activation_mb(info: ModelInfo, tokens: int, dtype: torch.dtype = torch.float32) -> float:
    # hidden states, the 4x feed-forward and a few temporaries per token, plus one layer of attention
    per_token = info.dim * 12 * _dtype_bytes(dtype)
    return tokens * per_token / 2 ** 20 + 64


CATALOGUE: dict[str, ModelInfo] = {
    m.name: m for m in [
        ModelInfo("esm2_t6_8M_UR50D", 6, 320, 20, 7_512_474, "ESM-2 8M (6 layers × 320)",
                  "runs on any laptop; the default"),
        ModelInfo("esm2_t12_35M_UR50D", 12, 480, 20, 33_501_394, "ESM-2 35M (12 layers × 480)",
                  "fine on a laptop CPU"),
        ModelInfo("esm2_t30_150M_UR50D", 30, 640, 20, 148_140_154, "ESM-2 150M (30 layers × 640)",
                  "slow on a CPU; needs ~1.5 GB of memory"),
        ModelInfo("esm2_t33_650M_UR50D", 33, 1280, 20, 651_043_254, "ESM-2 650M (33 layers × 1280)",
                  "a GPU; needs ~6 GB of memory to load"),
    ]
}
DEFAULT_MODEL = "esm2_t6_8M_UR50D"


def _dtype_bytes(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


# =============================================================================================
# Errors (all ValueErrors / RuntimeErrors with a message a student can act on)
# =============================================================================================
class ESMError(PlaygroundError):
    """A problem with an ESM-2 model or input, worded for the person who caused it (``message``, ``hint``)."""


class WeightsUnavailable(ESMError):
    """The pretrained weights are neither cached nor downloadable (offline)."""


class CheckpointError(ESMError):
    """A file that is not an ESM-2 checkpoint (or not one this app can read safely)."""


class MemoryRefused(ESMError):
    """The model would not fit in the memory of this machine."""


class SequenceError(ESMError):
    """A protein sequence ESM-2 cannot read (letter outside its alphabet, empty ...)."""


# =============================================================================================
# Memory
# =============================================================================================
def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError, IndexError):  # pragma: no cover - non-Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def available_memory_mb(device: str = "cpu") -> float:
    """Memory a new model may still use on ``device`` (MB). On the host: the smallest of the
    kernel's MemAvailable, the cgroup limit (containers) and ``PLAYGROUND_MEMORY_LIMIT_MB``
    (e.g. 2700 on a hosted app) minus what this process already uses."""
    if device == "cuda":
        if not torch.cuda.is_available():
            return 0.0
        free, _ = torch.cuda.mem_get_info()
        return free / 2 ** 20
    candidates = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) / 1024)
    except OSError:  # pragma: no cover
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            raw = Path(limit_file).read_text().strip()
            if raw != "max" and int(raw) < 2 ** 60:
                candidates.append((int(raw) - int(Path(usage_file).read_text().strip())) / 2 ** 20)
            break
        except (OSError, ValueError):
            continue
    env = os.environ.get("PLAYGROUND_MEMORY_LIMIT_MB")
    if env:
        try:
            candidates.append(float(env) - current_rss_mb())
        except ValueError:
            pass
    return max(0.0, min(candidates)) if candidates else float("inf")


def check_memory(info: ModelInfo, device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:
    """Raise MemoryRefused (with the numbers) if loading ``info`` would not fit."""
    need_host = info.load_mb(device, dtype)
    have_host = available_memory_mb("cpu")
    if need_host > have_host:
        raise MemoryRefused(
            f"{info.label} needs about {need_host:,.0f} MB of memory to load, but only {have_host:,.0f} MB is "
            f"free on this machine.",
            hint="Choose a smaller ESM-2 model (t6 or t12), or run the app on a machine with more memory.")
    if device == "cuda":
        need_gpu = info.run_mb("cuda", dtype, 16384)
        have_gpu = available_memory_mb("cuda")
        if need_gpu > have_gpu:
            raise MemoryRefused(
                f"{info.label} needs about {need_gpu:,.0f} MB of GPU memory, but only {have_gpu:,.0f} MB is free.",
                hint="Use bfloat16, a smaller model, or the CPU.")


# =============================================================================================
# Handles and the process-wide model cache
# =============================================================================================
@dataclasses.dataclass(eq=False)
class ESMHandle:
    """A loaded ESM-2 model, shared read-only between sessions. Never train ``model`` itself."""

    key: str                     # cache key: source + device + dtype
    name: str                    # e.g. "esm2_t6_8M_UR50D" or the uploaded file's name
    model: torch.nn.Module
    alphabet: object             # esm.data.Alphabet
    source: str                  # 'pretrained', 'file', 'upload', 'untrained'
    has_contacts: bool           # contact-regression weights present
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    warnings: list[str] = dataclasses.field(default_factory=list)
    origin: str = ""             # where it came from (path, URL, "seed 0")
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    @property
    def untrained(self) -> bool:
        return self.source == "untrained"

    @property
    def layers(self) -> int:
        return int(self.model.num_layers)

    @property
    def dim(self) -> int:
        return int(self.model.embed_dim)

    @property
    def heads(self) -> int:
        return int(self.model.attention_heads)

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def label(self) -> str:
        base = f"{self.name} ({self.layers} layers × {self.dim})"
        return base + (" — untrained weights" if self.untrained else "")

    @property
    def figure_note(self) -> str:
        """The label every figure of an untrained model carries."""
        return "untrained weights" if self.untrained else ""

    def describe(self) -> str:
        where = {"pretrained": "pretrained (fair-esm)", "file": "checkpoint file", "upload": "uploaded checkpoint",
                 "untrained": "randomly initialised (untrained weights)"}[self.source]
        dt = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(self.dtype,
                                                                                               str(self.dtype))
        return (f"{self.name}: {self.layers} layers, {self.dim}-dim embeddings, {self.heads} heads, "
                f"{self.params / 1e6:.1f}M parameters; {where}; {self.device}, {dt}; "
                f"contacts {'available' if self.has_contacts else 'not available'}")


# The registry itself (get_loaded, loaded_models) is in playground.models.esm_arch: a fine-tuning
# spec finds its ESM-2 model there without importing this module.
_LOAD_LOCK = threading.Lock()         # one load at a time (memory), without blocking cache look-ups
MAX_CACHED_MODELS = int(os.environ.get("PLAYGROUND_ESM_CACHE_MODELS", "3"))


def _cached(key: str, build: Callable[[], ESMHandle]) -> ESMHandle:
    """Load once per process: concurrent sessions asking for the same model wait for one load."""
    h = get_loaded(key)
    if h is not None:
        return h
    with _LOAD_LOCK:
        h = get_loaded(key)          # another session may have loaded it while we waited
        if h is not None:
            return h
        h = build()
        _freeze(h.model)
        for old in remember(key, h, MAX_CACHED_MODELS):
            EMBEDDING_CACHE.clear(old)
        return h


def unload(key: str) -> None:
    forget(key)
    clear_embedding_cache(key)


def _freeze(model: torch.nn.Module) -> None:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)


def _device_key(device: str, dtype: torch.dtype) -> str:
    return f"{device}|{str(dtype).replace('torch.', '')}"


def resolve_device(device: str = "cpu", bf16: bool = False) -> tuple[str, torch.dtype]:
    """('cpu'|'cuda', dtype); bfloat16 only on CUDA (on the CPU it is slower and less exact)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ESMError("CUDA was asked for but PyTorch sees no GPU here.", hint="Choose the CPU.")
    if device not in ("cpu", "cuda"):
        raise ESMError(f"unknown device {device!r}", hint="Use 'cpu' or 'cuda'.")
    return device, (torch.bfloat16 if (bf16 and device == "cuda") else torch.float32)


def _place(model: torch.nn.Module, device: str, dtype: torch.dtype) -> torch.nn.Module:
    model = model.to(device)
    if dtype != torch.float32:
        model = model.to(dtype)
    return model


# =============================================================================================
# Reading checkpoints safely
# =============================================================================================
def hub_dir() -> Path:
    """Where fair-esm (torch.hub) keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hub_paths(name: str) -> tuple[Path, Path]:
    """(model file, contact-regression file) in the torch hub cache."""
    d = hub_dir()
    return d / f"{name}.pt", d / f"{name}-contact-regression.pt"


def is_cached(name: str) -> bool:
    return hub_paths(name)[0].is_file()


def safe_torch_load(source, what: str = "the file") -> object:
    """``torch.load(weights_only=True)`` with only argparse.Namespace allowed besides tensors.
    ``source``: a path, bytes or a binary file object. Raises CheckpointError."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise CheckpointError(f"{what} is empty (0 bytes).", hint="Upload the .pt file again.")
        source = io.BytesIO(bytes(source))
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(source, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{what} does not exist.", hint="Check the path.") from None
    except IsADirectoryError:
        raise CheckpointError(f"{what} is a folder, not a file.", hint="Give the path of the .pt file.") from None
    except PermissionError:
        raise CheckpointError(f"{what} cannot be read (permission denied).") from None
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for foreign files
        text = str(e)
        m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text) or re.search(r"Unsupported class ([\w.]+)", text)
        if m:
            raise CheckpointError(
                f"{what} contains a Python object of type '{m.group(1)}'. An ESM-2 checkpoint holds only tensors "
                f"and its configuration, and loading other objects could run code from the file, so it is refused.",
                hint="Use an original fair-esm ESM-2 checkpoint (esm2_*.pt), or re-save yours as "
                     "{'model': state_dict, 'cfg': {'model': {...}}}.") from None
        raise CheckpointError(f"{what} is not a PyTorch checkpoint ({type(e).__name__}: {text.splitlines()[0][:160] if text else 'unreadable'}).",
                              hint="Upload an ESM-2 .pt file as distributed by fair-esm.") from None


def _cfg_get(cfg, key, default=None):
    if isinstance(cfg, dict):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def validate_checkpoint(data, what: str = "the file") -> dict:
    """Check that ``data`` has the ESM-2 checkpoint layout; returns the architecture
    ``{"layers", "dim", "heads", "token_dropout"}``. Raises CheckpointError saying what is wrong."""
    if not isinstance(data, dict):
        raise CheckpointError(f"{what} holds a {type(data).__name__}, not an ESM-2 checkpoint (a dict with "
                              f"'model' and 'cfg').", hint="Use an esm2_*.pt file from fair-esm.")
    if "args" in data and "cfg" not in data:
        raise CheckpointError(f"{what} looks like an ESM-1 / ESM-1b checkpoint ('args' instead of 'cfg'); this "
                              f"page works with ESM-2 only.", hint="Use an esm2_*.pt checkpoint.")
    missing = [k for k in ("model", "cfg") if k not in data]
    if missing:
        keys = ", ".join(map(repr, list(data)[:8])) or "nothing"
        raise CheckpointError(f"{what} is not an ESM-2 checkpoint: it has no {' and no '.join(map(repr, missing))} "
                              f"entry (it has {keys}).",
                              hint="A bare state_dict is not enough: ESM-2 files are {'model': state_dict, 'cfg': "
                                   "{'model': Namespace(encoder_layers=..., encoder_embed_dim=..., "
                                   "encoder_attention_heads=...)}}.")
    state = data["model"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{what}: 'model' is not a state_dict of tensors.", hint="Use an esm2_*.pt file.")
    cfg = data["cfg"]
    model_cfg = _cfg_get(cfg, "model")
    if model_cfg is None:
        raise CheckpointError(f"{what}: 'cfg' has no 'model' section with the architecture.",
                              hint="Use an esm2_*.pt file.")
    arch = {}
    for key, field in (("layers", "encoder_layers"), ("dim", "encoder_embed_dim"), ("heads", "encoder_attention_heads")):
        v = _cfg_get(model_cfg, field)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise CheckpointError(f"{what}: the configuration has no valid '{field}' ({v!r}).",
                                  hint="Use an esm2_*.pt file.")
        arch[key] = v
    arch["token_dropout"] = bool(_cfg_get(model_cfg, "token_dropout", True))
    if arch["layers"] > 64 or arch["dim"] > 8192 or arch["dim"] % arch["heads"] or (arch["dim"] // arch["heads"]) % 2:
        raise CheckpointError(f"{what}: implausible architecture {arch['layers']} layers × {arch['dim']} with "
                              f"{arch['heads']} heads.", hint="Use an esm2_*.pt file.")
    emb = next((v for k, v in state.items() if k.endswith("embed_tokens.weight")), None)
    if emb is None:
        raise CheckpointError(f"{what}: the state_dict has no token embedding ('embed_tokens.weight'), so it is not "
                              f"an ESM-2 model.", hint="Use an esm2_*.pt file.")
    if tuple(emb.shape) != (33, arch["dim"]):
        raise CheckpointError(f"{what}: the token embedding is {tuple(emb.shape)}, but ESM-2 with dimension "
                              f"{arch['dim']} has (33, {arch['dim']}).", hint="Use an esm2_*.pt file.")
    return arch


def _info_for(arch: dict, name: str) -> ModelInfo:
    for info in CATALOGUE.values():
        if (info.layers, info.dim, info.heads) == (arch["layers"], arch["dim"], arch["heads"]):
            return info
    d, L = arch["dim"], arch["layers"]
    params = L * (12 * d * d + 13 * d) + 35 * d + d * d + 33 + 2 * d
    return ModelInfo(name, L, d, arch["heads"], params, f"{name} ({L} layers × {d})", "custom checkpoint")


def model_from_checkpoint(data: dict, regression: dict | None = None, name: str = "esm2_custom",
                          what: str = "the file") -> tuple[torch.nn.Module, object, bool, list[str]]:
    """Build the ESM-2 model a validated checkpoint describes, with fair-esm's own
    ``load_model_and_alphabet_core``. Returns (model, alphabet, has_contacts, warnings)."""
    import esm

    validate_checkpoint(data, what)
    notes: list[str] = []
    if isinstance(_cfg_get(data["cfg"], "model"), dict):   # fair-esm reads the config by attribute
        data = {**data, "cfg": {**data["cfg"], "model": argparse.Namespace(**data["cfg"]["model"])}}
    if regression is not None:
        if not (isinstance(regression, dict) and isinstance(regression.get("model"), dict)
                and all(isinstance(v, torch.Tensor) for v in regression["model"].values())
                and any(k.endswith("contact_head.regression.weight") for k in regression["model"])):
            raise CheckpointError("The contact-regression file is not a fair-esm '-contact-regression.pt' file "
                                  "(it should hold {'model': {'contact_head.regression.weight': ..., "
                                  "'contact_head.regression.bias': ...}}).",
                                  hint="Leave it out (contacts are then not predicted) or use the original file.")
    data = {**data, "model": dict(data["model"])}       # load_model_and_alphabet_core updates it in place
    if regression is not None:
        regression = {**regression, "model": dict(regression["model"])}
    model_name = name if name.startswith("esm2") else "esm2_" + name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model, alphabet = esm.pretrained.load_model_and_alphabet_core(model_name, data, regression)
        except (RuntimeError, KeyError, ValueError, AttributeError) as e:
            first = str(e).replace("\n\t", " ").strip()
            raise CheckpointError(f"{what} does not fit the ESM-2 architecture it declares: {first[:400]}",
                                  hint="The file is damaged or from another model; use an original esm2_*.pt.") from None
    keys = set(data["model"]) | (set(regression["model"]) if regression else set())
    has_contacts = any(k.endswith("contact_head.regression.weight") for k in keys)
    if not has_contacts:
        notes.append("No contact-regression weights (the '-contact-regression.pt' file): embeddings, masked-LM "
                     "predictions and attention maps work, but contact maps cannot be predicted.")
    for w in caught:
        if "Regression weights not found" not in str(w.message):
            notes.append(str(w.message))
    return model, alphabet, has_contacts, notes


# =============================================================================================
# Loading: pretrained (hub cache / download), local file, upload, untrained
# =============================================================================================
def download_allowed() -> bool:
    """False when ``PLAYGROUND_OFFLINE`` is set (tests, air-gapped classrooms)."""
    return os.environ.get("PLAYGROUND_OFFLINE", "").strip().lower() not in ("1", "true", "yes")


def check_online(host: str = HUB_HOST, timeout: float = 3.0) -> str | None:
    """None when ``host`` answers on port 443 within ``timeout`` seconds, else the reason.
    Runs in a thread so that a hanging DNS lookup cannot block longer than ``timeout``."""
    if not download_allowed():
        return "downloads are switched off here (PLAYGROUND_OFFLINE is set)"
    result: list[str | None] = []

    def probe():
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                result.append(None)
        except OSError as e:
            result.append(f"{type(e).__name__}: {e}")

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    if not result:
        return f"no answer from {host} within {timeout:g} s"
    return result[0]


def download(url: str, dest: Path, progress: Progress = None, timeout: float = 15.0) -> Path:
    """Stream ``url`` to ``dest`` (via a temporary file, so a broken download leaves nothing),
    calling ``progress(bytes_done, bytes_total, message)``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + f".part{os.getpid()}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            total = int(r.headers.get("Content-Length") or 0)
            done = 0
            with open(tmp, "wb") as f:
                while True:
                    chunk = r.read(1 << 20)
                    if not chunk:
                        break
                    f.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total, f"Downloading {dest.name}: {done / 1e6:.0f} / {total / 1e6:.0f} MB")
        os.replace(tmp, dest)
        return dest
    finally:
        if tmp.exists():
            tmp.unlink()


def load_pretrained(name: str = DEFAULT_MODEL, device: str = "cpu", bf16: bool = False, allow_download: bool = False,
                    progress: Progress = None, timeout: float = 3.0) -> ESMHandle:
    """A pretrained ESM-2 from the torch hub cache, downloading it first (only when
    ``allow_download``) into the same place fair-esm uses. Raises WeightsUnavailable quickly
    (within ~``timeout`` s) when it is not cached and the hub cannot be reached."""
    if name not in CATALOGUE:
        raise ESMError(f"unknown ESM-2 model {name!r}", hint=f"Choose one of {', '.join(CATALOGUE)}.")
    info = CATALOGUE[name]
    device, dtype = resolve_device(device, bf16)
    key = f"pretrained:{name}|{_device_key(device, dtype)}"
    h = get_loaded(key)
    if h is not None:
        return h
    model_path, reg_path = hub_paths(name)
    if not model_path.is_file():
        if not allow_download:
            raise WeightsUnavailable(f"The weights of {name} are not in the cache ({model_path}).",
                                     hint=f"Download them ({info.file_mb:.0f} MB) or continue with a randomly "
                                          f"initialised model.")
        check_memory(info, device, dtype)
        reason = check_online(HUB_HOST, timeout)
        if reason is not None:
            raise WeightsUnavailable(
                f"Cannot download {name} ({info.file_mb:.0f} MB): the model server {HUB_HOST} cannot be reached "
                f"({reason}).",
                hint="Connect to the internet, copy the .pt file into " + str(model_path.parent) + ", load a local "
                     "file, or continue with a randomly initialised model (untrained weights).")
        try:
            download(f"{HUB_URL}/models/{name}.pt", model_path, progress)
            try:
                download(f"{HUB_URL}/regression/{name}-contact-regression.pt", reg_path, progress)
            except (OSError, urllib.error.URLError):
                pass  # optional: contacts then unavailable (reported on load)
        except (OSError, urllib.error.URLError) as e:
            raise WeightsUnavailable(f"Downloading {name} failed: {e}.",
                                     hint="Try again, or continue with a randomly initialised model.") from None
    check_memory(info, device, dtype)

    def build():
        if progress:
            progress(0, 1, f"Reading {model_path.name}")
        data = safe_torch_load(model_path, f"'{model_path}'")
        reg = safe_torch_load(reg_path, f"'{reg_path}'") if reg_path.is_file() else None
        model, alphabet, has_contacts, notes = model_from_checkpoint(data, reg, name, f"'{model_path.name}'")
        del data, reg
        if progress:
            progress(1, 1, f"Loaded {name}")
        return ESMHandle(key, name, _place(model, device, dtype), alphabet, "pretrained", has_contacts, device, dtype,
                         notes, str(model_path))

    return _cached(key, build)


def load_checkpoint_file(path: str | os.PathLike, device: str = "cpu", bf16: bool = False,
                         regression_path: str | os.PathLike | None = None) -> ESMHandle:
    """A local ESM-2 checkpoint (e.g. a copy of esm2_t6_8M_UR50D.pt). The contact-regression
    weights are read from ``regression_path`` or, as fair-esm does, from the file next to it
    named ``<stem>-contact-regression.pt`` when present."""
    path = Path(os.path.expanduser(str(path).strip().strip('"').strip("'")))
    if not str(path) or str(path) == ".":
        raise CheckpointError("No path given.", hint="Type the path of an ESM-2 .pt file.")
    if not path.is_file():
        raise CheckpointError(f"'{path}' does not exist or is not a file.", hint="Check the path (it is a path on "
                                                                                  "the machine running the app).")
    device, dtype = resolve_device(device, bf16)
    st = path.stat()
    if st.st_size > MAX_UPLOAD_BYTES:
        raise CheckpointError(f"'{path.name}' is {st.st_size / 1e9:.1f} GB; the limit is {MAX_UPLOAD_BYTES / 1e9:.0f} GB.",
                              hint="The largest ESM-2 this app can run is esm2_t33_650M_UR50D (2.6 GB).")
    reg = Path(regression_path) if regression_path else path.with_name(path.stem + "-contact-regression.pt")
    key = f"file:{path.resolve()}:{st.st_size}:{int(st.st_mtime)}|{_device_key(device, dtype)}"
    h = get_loaded(key)
    if h is not None:
        return h

    def build():
        from playground import limits   # the declared architecture capped and matched to the weights, on meta

        data = safe_torch_load(path, f"'{path.name}'")
        arch = validate_checkpoint(data, f"'{path.name}'")
        limits.check_esm_checkpoint(data["model"], arch, f"'{path.name}'", CheckpointError)
        check_memory(_info_for(arch, path.stem), device, dtype)
        regression = safe_torch_load(reg, f"'{reg.name}'") if reg.is_file() else None
        model, alphabet, has_contacts, notes = model_from_checkpoint(data, regression, path.stem, f"'{path.name}'")
        return ESMHandle(key, path.stem, _place(model, device, dtype), alphabet, "file", has_contacts, device, dtype,
                         notes, str(path))

    return _cached(key, build)


def load_checkpoint_bytes(data: bytes, filename: str = "upload.pt", device: str = "cpu", bf16: bool = False,
                          regression: bytes | None = None) -> ESMHandle:
    """An uploaded ESM-2 checkpoint (untrusted): read with weights_only=True, accepted only in
    the ESM-2 layout. ``regression``: the optional '-contact-regression.pt' file's bytes."""
    if not data:
        raise CheckpointError(f"'{filename}' is empty (0 bytes).", hint="Upload the .pt file again.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise CheckpointError(f"'{filename}' is {len(data) / 1e9:.1f} GB; the limit is {MAX_UPLOAD_BYTES / 1e9:.0f} GB.")
    device, dtype = resolve_device(device, bf16)
    digest = hashlib.sha256(data).hexdigest()[:16]
    rdigest = hashlib.sha256(regression).hexdigest()[:8] if regression else "none"
    key = f"upload:{digest}:{rdigest}|{_device_key(device, dtype)}"
    h = get_loaded(key)
    if h is not None:
        return h
    stem = Path(filename).stem or "upload"

    def build():
        from playground import limits   # size caps for uploads: the archive, then the declared architecture

        for blob, label in ((data, f"'{filename}'"), (regression, "The contact-regression file")):
            if blob and bytes(blob[:4]) == b"PK\x03\x04":
                limits.check_torch_zip(bytes(blob), label, CheckpointError, max_unpacked=MAX_UPLOAD_BYTES,
                                       not_pytorch_hint="Upload an ESM-2 .pt file as distributed by fair-esm.")
        ckpt = safe_torch_load(data, f"'{filename}'")
        arch = validate_checkpoint(ckpt, f"'{filename}'")
        limits.check_esm_checkpoint(ckpt["model"], arch, f"'{filename}'", CheckpointError)
        check_memory(_info_for(arch, stem), device, dtype)
        reg = safe_torch_load(regression, "the contact-regression file") if regression else None
        model, alphabet, has_contacts, notes = model_from_checkpoint(ckpt, reg, stem, f"'{filename}'")
        return ESMHandle(key, stem, _place(model, device, dtype), alphabet, "upload", has_contacts, device, dtype,
                         notes, filename)

    return _cached(key, build)


def build_esm2(layers: int, dim: int, heads: int = 20, seed: int = 0, token_dropout: bool = True) -> torch.nn.Module:
    """A same-architecture ESM-2 with random weights (seeded)."""
    import esm
    from esm.model.esm2 import ESM2

    with seeded(seed):
        return ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads,
                    alphabet=esm.data.Alphabet.from_architecture("ESM-1b"), token_dropout=token_dropout)


def random_model(name: str = DEFAULT_MODEL, seed: int = 0, device: str = "cpu", bf16: bool = False) -> ESMHandle:
    """The architecture of ``name`` with random weights: every result is "untrained weights"."""
    if name not in CATALOGUE:
        raise ESMError(f"unknown ESM-2 model {name!r}", hint=f"Choose one of {', '.join(CATALOGUE)}.")
    info = CATALOGUE[name]
    device, dtype = resolve_device(device, bf16)
    key = f"untrained:{name}:seed{int(seed)}|{_device_key(device, dtype)}"
    h = get_loaded(key)
    if h is not None:
        return h
    check_memory(info, device, dtype)

    def build():
        import esm

        model = build_esm2(info.layers, info.dim, info.heads, seed)
        return ESMHandle(key, name, _place(model, device, dtype), esm.data.Alphabet.from_architecture("ESM-1b"),
                         "untrained", True, device, dtype,
                         ["Randomly initialised weights: the model has learned nothing; every result is labelled "
                          "'untrained weights'."], f"seed {int(seed)}")

    return _cached(key, build)


def save_checkpoint(model: torch.nn.Module, path_or_buffer, regression_path=None, with_contact_head: bool = False) -> None:
    """Write ``model`` in fair-esm's ESM-2 checkpoint layout (state-dict keys prefixed
    ``encoder.sentence_encoder.``, configuration as an argparse.Namespace); the contact
    regression goes to ``regression_path`` (fair-esm's separate file) or, with
    ``with_contact_head``, into the main file."""
    state = {}
    reg = {}
    for k, v in model.state_dict().items():
        if k.startswith("contact_head.regression."):
            reg[k] = v.detach().cpu().clone()
            if not with_contact_head:
                continue
        state["encoder.sentence_encoder." + k] = v.detach().cpu().clone()
    cfg = argparse.Namespace(encoder_layers=model.num_layers, encoder_embed_dim=model.embed_dim,
                             encoder_ffn_embed_dim=4 * model.embed_dim, encoder_attention_heads=model.attention_heads,
                             token_dropout=model.token_dropout, _name="esm2")
    torch.save({"model": state, "cfg": {"model": cfg}}, path_or_buffer)
    if regression_path is not None:
        torch.save({"model": reg}, regression_path)


# =============================================================================================
# Sequences -> tokens
# =============================================================================================
def clean_sequence(seq: str, name: str = "the sequence") -> str:
    """Upper-case, drop whitespace and a trailing stop '*'; raise SequenceError naming the
    sequence and the position of the first letter ESM-2 cannot read."""
    s = re.sub(r"\s+", "", str(seq)).upper()
    if s.endswith("*"):
        s = s[:-1]
    if not s:
        raise SequenceError(f"{name} is empty.", hint="Type or paste a protein (one-letter amino-acid codes).")
    for i, ch in enumerate(s):
        if ch not in ALLOWED:
            shown = "'*' (a stop codon)" if ch == "*" else (f"'{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}")
            raise SequenceError(
                f"{name}, position {i + 1}: {shown} is not an amino-acid letter ESM-2 can read "
                f"(allowed: the 20 amino acids {AMINO_ACIDS} and X B U Z O).",
                hint="Remove it or replace it with X (unknown).")
    return s


def clean_sequences(seqs: Sequence[str], ids: Sequence[str] | None = None) -> list[str]:
    ids = list(ids) if ids is not None else [f"{i + 1}" for i in range(len(seqs))]
    return [clean_sequence(s, f"Sequence '{ids[i]}' (number {i + 1})") for i, s in enumerate(seqs)]


_TABLES: dict[int, np.ndarray] = {}


def _table(alphabet) -> np.ndarray:
    t = _TABLES.get(id(alphabet))
    if t is None:
        t = np.full(256, -1, dtype=np.int64)
        for ch in ALLOWED:
            t[ord(ch)] = alphabet.get_idx(ch)
        _TABLES[id(alphabet)] = t
    return t


def encode(alphabet, seqs: Sequence[str]) -> torch.Tensor:
    """Clean sequences -> (B, max_len + 2) tokens: <cls> residues <eos>, then <pad>."""
    table = _table(alphabet)
    T = max(len(s) for s in seqs) + 2
    out = np.full((len(seqs), T), alphabet.padding_idx, dtype=np.int64)
    for i, s in enumerate(seqs):
        ids = table[np.frombuffer(s.encode("ascii"), dtype=np.uint8)]
        out[i, 0] = alphabet.cls_idx
        out[i, 1: len(s) + 1] = ids
        out[i, len(s) + 1] = alphabet.eos_idx
    return torch.from_numpy(out)


def residue_mask(alphabet, tokens: torch.Tensor) -> torch.Tensor:
    """True at residues (and <mask>), False at <cls>, <eos> and <pad>."""
    return (tokens != alphabet.padding_idx) & (tokens != alphabet.cls_idx) & (tokens != alphabet.eos_idx)


def length_batches(lengths: Sequence[int], token_budget: int, max_batch: int = 256) -> list[list[int]]:
    """Indices grouped by similar length so padding is small: each batch holds at most
    ``token_budget`` tokens (batch size × (longest + 2)) and ``max_batch`` sequences."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, cur, cur_max = [], [], 0
    for i in order:
        L = lengths[i] + 2
        new_max = max(cur_max, L)
        if cur and ((len(cur) + 1) * new_max > token_budget or len(cur) >= max_batch):
            batches.append(cur)
            cur, new_max = [], L
        cur.append(i)
        cur_max = new_max
    if cur:
        batches.append(cur)
    return batches


def default_token_budget(handle: ESMHandle) -> int:
    if handle.device == "cuda":
        return 65536 if handle.dim <= 640 else 16384
    return 1024    # on one CPU thread bigger batches only spill the caches (measured: 4096 is ~15% slower)


# =============================================================================================
# The forward pass
# =============================================================================================
# One layer (``layer_forward``) and the rotary tables are in playground.models.esm_arch (shared
# with the fine-tuning head).


# ---------------------------------------------------------------------------------------------
# Mixed precision for the embedding path on CPUs with native bfloat16 (AVX512-BF16, AMX)
# ---------------------------------------------------------------------------------------------
PRECISIONS = {"float32": "float32 throughout",
              "mixed": "matrix products in bfloat16 (float32 sums, layer norms, attention softmax and residual stream)"}
_FAST_WEIGHTS: "weakref.WeakKeyDictionary[torch.nn.Module, list]" = weakref.WeakKeyDictionary()
_FAST_LOCK = threading.Lock()
FAST_WEIGHT_CACHE_MAX_PARAMS = 200_000_000    # bigger models cast their weights per batch instead


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX), where a
    bf16 matrix product runs about twice as fast as a float32 one; without it bf16 is emulated
    and slower, so the mixed path is never chosen there."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except Exception:       # an older/odd build without these probes: stay exact
        return False


def resolve_precision(handle: "ESMHandle", precision: str | None = None) -> str:
    """'float32' or 'mixed' for :func:`embed`. ``None``/'auto': mixed on a CPU with native bf16
    for a float32 model (set ``PLAYGROUND_ESM_PRECISION=float32`` to turn it off), float32 elsewhere
    (a bfloat16 model on CUDA is already all bf16)."""
    precision = precision or os.environ.get("PLAYGROUND_ESM_PRECISION", "auto")
    if precision == "auto":
        ok = handle.device == "cpu" and handle.dtype == torch.float32 and cpu_has_native_bf16()
        return "mixed" if ok else "float32"
    if precision not in PRECISIONS:
        raise ESMError(f"precision must be 'auto', 'float32' or 'mixed', not {precision!r}")
    if precision == "mixed" and handle.dtype != torch.float32:
        return "float32"    # the model itself is already in low precision
    return precision


def _fast_weights(model: torch.nn.Module) -> list[dict]:
    """Per layer: bf16 copies of the fused q/k/v, output and feed-forward weights (derived data kept
    beside the shared model, never written into it). Cached for models up to
    ``FAST_WEIGHT_CACHE_MAX_PARAMS`` parameters."""
    with _FAST_LOCK:
        hit = _FAST_WEIGHTS.get(model)
    if hit is not None:
        return hit
    bf = torch.bfloat16
    out = []
    for layer in model.layers:
        a = layer.self_attn
        out.append({
            "qkv_w": torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).to(bf),
            "qkv_b": torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]).to(bf),
            "out_w": a.out_proj.weight.to(bf), "out_b": a.out_proj.bias.to(bf),
            "fc1_w": layer.fc1.weight.to(bf), "fc1_b": layer.fc1.bias.to(bf),
            "fc2_w": layer.fc2.weight.to(bf), "fc2_b": layer.fc2.bias.to(bf),
        })
    if sum(p.numel() for p in model.parameters()) <= FAST_WEIGHT_CACHE_MAX_PARAMS:
        with _FAST_LOCK:
            _FAST_WEIGHTS[model] = out
    return out


def layer_forward_mixed(layer: torch.nn.Module, w: dict, x: torch.Tensor, lengths: Sequence[int] | None,
                        cos: torch.Tensor, sin_signed: torch.Tensor) -> torch.Tensor:
    """:func:`layer_forward` with the four matrix products in bfloat16 (``w`` from
    :func:`_fast_weights`): x (B, T, E) float32 in and out; layer norms, rotary embedding,
    attention (scores, softmax) and the residual sums stay float32. ``sin_signed`` is the rotary
    sine with its first half negated, so that rotating is a swap of the two halves. ``lengths``:
    the number of real tokens of each row when the batch is padded; attention then runs row by row
    on the real tokens only (no mask, no work on padding; padded rows get zeros)."""
    attn = layer.self_attn
    B, T, E = x.shape
    H = attn.num_heads
    D = E // H
    bf = torch.bfloat16
    h = layer.self_attn_layer_norm(x).to(bf)
    qkv = F.linear(h, w["qkv_w"], w["qkv_b"]).view(B, T, 3, H, D).permute(2, 0, 3, 1, 4).float()
    qk, v = qkv[:2], qkv[2]
    # rotary on q and k at once: x*cos + rotate_half(x)*sin, rotate_half = swap halves (sign in sin_signed)
    qk = torch.addcmul(qk * cos, torch.cat((qk[..., D // 2:], qk[..., : D // 2]), -1), sin_signed)
    if lengths is None:
        o = F.scaled_dot_product_attention(qk[0], qk[1], v, scale=attn.scaling)
    else:
        o = v.new_zeros(B, H, T, D)
        for b, n in enumerate(lengths):
            o[b: b + 1, :, :n] = F.scaled_dot_product_attention(   # 4-D: the fused CPU kernel
                qk[0, b: b + 1, :, :n], qk[1, b: b + 1, :, :n], v[b: b + 1, :, :n], scale=attn.scaling)
    x = x + F.linear(o.transpose(1, 2).reshape(B, T, E).to(bf), w["out_w"], w["out_b"])
    h = layer.final_layer_norm(x).to(bf)
    return x + F.linear(F.gelu(F.linear(h, w["fc1_w"], w["fc1_b"])), w["fc2_w"], w["fc2_b"])


def embed_tokens(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Token embedding with ESM-2's token-dropout rescaling and zeroed padding: (B, T, E)."""
    pad = tokens.eq(model.padding_idx)
    x = model.embed_scale * model.embed_tokens(tokens)
    if model.token_dropout:
        is_mask = tokens == model.mask_idx
        x = x.masked_fill(is_mask.unsqueeze(-1), 0.0)
        mask_ratio_train = 0.15 * 0.8
        observed = is_mask.sum(-1).to(x.dtype) / (~pad).sum(-1)
        x = x * (1 - mask_ratio_train) / (1 - observed)[:, None, None]
    return x * (1 - pad.unsqueeze(-1).type_as(x))


def esm_forward(model: torch.nn.Module, tokens: torch.Tensor, repr_layers: Iterable[int] = (),
                need_logits: bool = True, need_attentions: bool = False, precision: str = "float32") -> dict:
    """fair-esm's ``ESM2.forward`` re-stated without side effects (the shared model is not
    touched) and with fused attention when the weights are not needed. Stops after the
    deepest requested layer when neither logits nor attentions are asked for.
    ``precision='mixed'`` (float32 model, no attentions): the matrix products in bfloat16, see
    :func:`layer_forward_mixed`.
    Returns {"logits" (B,T,V)?, "representations" {layer: (B,T,E)}, "attentions" (B,L,H,T,T)?}."""
    repr_layers = set(int(r) for r in repr_layers)
    n = model.num_layers
    bad = [r for r in repr_layers if not 0 <= r <= n]
    if bad:
        raise ESMError(f"layer {bad[0]} does not exist; this model has layers 0..{n}.")
    pad = tokens.eq(model.padding_idx)
    x = embed_tokens(model, tokens)
    reps = {}
    if 0 in repr_layers:
        reps[0] = x
    pad_or_none = pad if pad.any() else None
    last = n if (need_logits or need_attentions) else max(repr_layers, default=0)
    cos, sin = rotary_tables(model, tokens.shape[1], x.device, x.dtype)
    attns = []
    mixed = precision == "mixed" and not need_attentions and x.dtype == torch.float32
    if mixed:
        fast = _fast_weights(model)
        half = sin.shape[-1] // 2
        sin_signed = torch.cat((-sin[..., :half], sin[..., half:]), -1)
        lengths = None if pad_or_none is None else (~pad).sum(1).tolist()
    for i, layer in enumerate(model.layers[:last]):
        if mixed:
            x, w = layer_forward_mixed(layer, fast[i], x, lengths, cos, sin_signed), None
        else:
            x, w = layer_forward(layer, x, pad_or_none, cos, sin, need_attentions)
        if need_attentions:
            attns.append(w)
        if i + 1 in repr_layers and i + 1 < n:
            reps[i + 1] = x
    out: dict = {}
    if last == n:
        x = model.emb_layer_norm_after(x)
        if n in repr_layers:
            reps[n] = x
        if need_logits:
            out["logits"] = model.lm_head(x)
    out["representations"] = reps
    if need_attentions:
        a = torch.stack(attns, 1)
        if pad_or_none is not None:
            keep = (~pad).type_as(a)
            a = a * (keep.unsqueeze(1) * keep.unsqueeze(2))[:, None, None]
        out["attentions"] = a
    return out


# =============================================================================================
# Embeddings
# =============================================================================================
@dataclasses.dataclass
class EmbeddingResult:
    ids: list[str]
    seqs: list[str]
    layer: int
    pooling: str                       # 'mean' or 'per_residue'
    vectors: np.ndarray | None         # (n, E) for 'mean'
    per_residue: list[np.ndarray] | None   # one (L_i, E) array per sequence for 'per_residue'
    model_key: str
    model_name: str
    untrained: bool
    warnings: list[str]
    seconds: float = 0.0
    from_cache: int = 0
    residues: int = 0
    precision: str = "float32"         # see PRECISIONS

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1] if self.vectors is not None else self.per_residue[0].shape[1])

    def padded(self, length: int | None = None) -> np.ndarray:
        """Per-residue embeddings as one (n, L, E) array, zero-padded on the right."""
        if self.per_residue is None:
            raise ValueError("these are mean-pooled embeddings; ask for pooling='per_residue'")
        L = length or max(len(a) for a in self.per_residue)
        out = np.zeros((len(self.per_residue), L, self.dim), dtype=np.float32)
        for i, a in enumerate(self.per_residue):
            out[i, : min(L, len(a))] = a[:L]
        return out


class _EmbeddingCache:
    """Process-wide LRU of embeddings keyed by (model, layer, pooling, long-policy, sequence),
    bounded in bytes. Values are read-only numpy arrays."""

    def __init__(self, max_mb: float):
        self.max_bytes = int(max_mb * 2 ** 20)
        self.bytes = 0
        self.data: "collections.OrderedDict[tuple, np.ndarray]" = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            v = self.data.get(key)
            if v is not None:
                self.data.move_to_end(key)
            return v

    def put(self, key, value: np.ndarray):
        value.setflags(write=False)
        with self.lock:
            if key in self.data:
                return
            self.data[key] = value
            self.bytes += value.nbytes
            while self.bytes > self.max_bytes and self.data:
                _, old = self.data.popitem(last=False)
                self.bytes -= old.nbytes

    def clear(self, model_key: str | None = None):
        with self.lock:
            if model_key is None:
                self.data.clear()
                self.bytes = 0
                return
            for k in [k for k in self.data if k[0] == model_key]:
                self.bytes -= self.data.pop(k).nbytes


EMBEDDING_CACHE = _EmbeddingCache(float(os.environ.get("PLAYGROUND_ESM_EMBED_CACHE_MB", "256")))


def clear_embedding_cache(model_key: str | None = None) -> None:
    EMBEDDING_CACHE.clear(model_key)


def _windows(L: int, size: int = MAX_RESIDUES, stride: int = MAX_RESIDUES // 2) -> list[tuple[int, int]]:
    if L <= size:
        return [(0, L)]
    starts = list(range(0, L - size + 1, stride))
    if starts[-1] != L - size:
        starts.append(L - size)
    return [(s, s + size) for s in starts]


def _resolve_layer(handle: ESMHandle, layer: int | None) -> int:
    if layer is None or layer == -1:
        return handle.layers
    if not 0 <= int(layer) <= handle.layers:
        raise ESMError(f"layer {layer} does not exist; {handle.name} has layers 0 (token embedding) to "
                       f"{handle.layers}.")
    return int(layer)


def long_sequence_warning(name: str, L: int, policy: str) -> str:
    if policy == "truncate":
        return (f"Sequence '{name}' has {L} residues; ESM-2 reads at most {MAX_RESIDUES}: only the first "
                f"{MAX_RESIDUES} were used.")
    n = len(_windows(L))
    return (f"Sequence '{name}' has {L} residues; ESM-2 reads at most {MAX_RESIDUES}: it was read in {n} overlapping "
            f"windows of {MAX_RESIDUES} whose residue embeddings were averaged.")


def embed(handle: ESMHandle, seqs: Sequence[str], layer: int | None = None, pooling: str = "mean",
          ids: Sequence[str] | None = None, long_policy: str = "truncate", token_budget: int | None = None,
          progress: Progress = None, use_cache: bool = True, precision: str | None = None) -> EmbeddingResult:
    """Embed proteins with the app's batched path: clean and check every sequence, look each up
    in the cache, run the missing ones in length-sorted batches of at most ``token_budget``
    tokens, and pool. ``pooling='mean'``: the average over the residues of the chosen layer
    (BOS, EOS and padding excluded); ``'per_residue'``: one vector per residue.
    Sequences longer than 1022 residues are cut (``long_policy='truncate'``) or read in
    overlapping windows (``'window'``), with a warning naming them. ``precision``: see
    :func:`resolve_precision` (by default bf16 matrix products on a CPU that has them natively:
    about 1.5x faster, mean embeddings within 1e-4 in cosine of float32)."""
    t0 = time.perf_counter()
    if pooling not in ("mean", "per_residue"):
        raise ESMError(f"pooling must be 'mean' or 'per_residue', not {pooling!r}")
    if long_policy not in LONG_POLICIES:
        raise ESMError(f"long_policy must be one of {sorted(LONG_POLICIES)}")
    if len(seqs) == 0:
        raise SequenceError("There are no sequences to embed.", hint="Upload a FASTA or CSV file with proteins.")
    ids = [str(i) for i in ids] if ids is not None else [f"seq{i + 1}" for i in range(len(seqs))]
    if len(ids) != len(seqs):
        raise ESMError("ids and seqs differ in length")
    clean = clean_sequences(seqs, ids)
    L = _resolve_layer(handle, layer)
    budget = int(token_budget or default_token_budget(handle))
    precision = resolve_precision(handle, precision)
    notes = []
    # pieces: (sequence index, start, end) -- windows of long sequences, or the cut
    pieces: list[tuple[int, int, int]] = []
    for i, s in enumerate(clean):
        if len(s) > MAX_RESIDUES:
            notes.append(long_sequence_warning(ids[i], len(s), long_policy))
            spans = _windows(len(s)) if long_policy == "window" else [(0, MAX_RESIDUES)]
        else:
            spans = [(0, len(s))]
        pieces += [(i, a, b) for a, b in spans]
    results: list[np.ndarray | None] = [None] * len(clean)
    cache_pooling = pooling
    todo_seqs = []
    n_cached = 0
    for i, s in enumerate(clean):
        hit = EMBEDDING_CACHE.get((handle.key, L, cache_pooling, long_policy, precision, s)) if use_cache else None
        if hit is not None:
            results[i] = hit
            n_cached += 1
        else:
            todo_seqs.append(i)
    todo = set(todo_seqs)
    work = [p for p in pieces if p[0] in todo]
    # per-residue sums over windows (one window unless the sequence is long)
    acc: dict[int, np.ndarray] = {}
    cnt: dict[int, np.ndarray] = {}
    total_res = sum(b - a for _, a, b in work)
    done_res = 0
    if progress:
        progress(0, max(1, total_res), f"Embedding {len(todo)} sequence(s) ({n_cached} from the cache)")
    batches = length_batches([b - a for _, a, b in work], budget)
    model = handle.model
    for bi, batch in enumerate(batches):
        chunk = [work[j] for j in batch]
        sub = [clean[i][a:b] for i, a, b in chunk]
        tokens = encode(handle.alphabet, sub).to(handle.device)
        with torch.inference_mode():
            rep = esm_forward(model, tokens, [L], need_logits=False, precision=precision)["representations"][L]
            rep = rep.float().cpu().numpy()
        for r, (i, a, b) in enumerate(chunk):
            vecs = rep[r, 1: b - a + 1]
            if i not in acc:
                n_res = min(len(clean[i]), MAX_RESIDUES) if long_policy == "truncate" else len(clean[i])
                acc[i] = np.zeros((n_res, rep.shape[-1]), dtype=np.float64)
                cnt[i] = np.zeros((n_res, 1), dtype=np.float64)
            acc[i][a:b] += vecs
            cnt[i][a:b] += 1
        done_res += sum(b - a for _, a, b in chunk)
        if progress:
            progress(done_res, max(1, total_res), f"Embedded {done_res:,} of {total_res:,} residues "
                                                  f"(batch {bi + 1} of {len(batches)})")
    for i in todo_seqs:
        per_res = (acc[i] / cnt[i]).astype(np.float32)
        val = per_res.mean(0).astype(np.float32) if pooling == "mean" else per_res
        if use_cache:
            EMBEDDING_CACHE.put((handle.key, L, cache_pooling, long_policy, precision, clean[i]), val)
        results[i] = val
    vectors = np.stack(results).astype(np.float32) if pooling == "mean" else None
    per = [np.asarray(r) for r in results] if pooling == "per_residue" else None
    return EmbeddingResult(ids, clean, L, pooling, vectors, per, handle.key, handle.name, handle.untrained, notes,
                           time.perf_counter() - t0, n_cached, sum(len(s) for s in clean), precision)


def embed_naive(handle: ESMHandle, seqs: Sequence[str], layer: int | None = None) -> np.ndarray:
    """The textbook loop (fair-esm's README): one sequence at a time through fair-esm's own
    ``model(tokens, repr_layers=[layer])``, mean over positions 1..L. For the benchmark and as
    an independent check of :func:`embed`. Sequences must be at most 1022 residues."""
    L = _resolve_layer(handle, layer)
    clean = clean_sequences(seqs)
    converter = handle.alphabet.get_batch_converter()
    out = []
    with handle.lock, torch.no_grad():   # fair-esm's forward updates its rotary cache: one caller at a time
        for s in clean:
            _, _, tokens = converter([("p", s)])
            rep = handle.model(tokens.to(handle.device), repr_layers=[L])["representations"][L]
            out.append(rep[0, 1: len(s) + 1].float().mean(0).cpu().numpy())
    return np.stack(out)


def embeddings_csv(result: EmbeddingResult, labels: Sequence | None = None) -> bytes:
    """CSV: id, (label,) sequence length and e0..e{E-1}; per-residue: one row per residue."""
    import pandas as pd

    if result.pooling == "mean":
        df = pd.DataFrame(result.vectors, columns=[f"e{j}" for j in range(result.dim)])
        df.insert(0, "length", [len(s) for s in result.seqs])
        if labels is not None:
            df.insert(0, "label", list(labels))
        df.insert(0, "id", result.ids)
    else:
        rows = []
        for i, a in enumerate(result.per_residue):
            frame = pd.DataFrame(a, columns=[f"e{j}" for j in range(result.dim)])
            frame.insert(0, "residue", list(result.seqs[i][: len(a)]))
            frame.insert(0, "position", np.arange(1, len(a) + 1))
            frame.insert(0, "id", result.ids[i])
            rows.append(frame)
        df = pd.concat(rows, ignore_index=True)
    return df.to_csv(index=False, float_format="%.6g").encode()


def embeddings_npy(result: EmbeddingResult) -> tuple[bytes, str]:
    """(bytes, file name): mean-pooled -> one (n, E) .npy; per-residue -> an .npz with one
    (L_i, E) array per sequence (named by position, with the ids in 'ids')."""
    buf = io.BytesIO()
    if result.pooling == "mean":
        np.save(buf, result.vectors, allow_pickle=False)
        return buf.getvalue(), "embeddings.npy"
    arrays = {f"seq{i:05d}": a for i, a in enumerate(result.per_residue)}
    np.savez_compressed(buf, ids=np.array(result.ids), **arrays)
    return buf.getvalue(), "per_residue_embeddings.npz"


def project_2d(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D coordinates of the embeddings and a caption. PCA (with the variance explained) or
    t-SNE (scikit-learn; perplexity adapted to small sets)."""
    X = np.asarray(vectors, dtype=np.float64)
    if len(X) < 3:
        raise ESMError("a 2-D projection needs at least 3 sequences")
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=int(seed))
        xy = pca.fit_transform(X)
        r = pca.explained_variance_ratio_
        return xy, f"PCA: PC1 explains {100 * r[0]:.1f}% and PC2 {100 * r[1]:.1f}% of the variance"
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(X) - 1) / 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, random_state=int(seed), init="pca").fit_transform(X)
        return xy, f"t-SNE (perplexity {perplexity:.0f}): distances between clusters mean little"
    raise ESMError(f"unknown projection {method!r}; use 'pca' or 'tsne'")


# =============================================================================================
# Masked-language-model explorer
# =============================================================================================
@dataclasses.dataclass
class MaskedPrediction:
    seq: str
    masked: list[int]                      # 1-based positions that were masked
    probs: np.ndarray                      # (L, 21): P(amino acid) at every position, column 21 = other tokens
    top: dict[int, list[tuple[str, float]]]   # position -> [(amino acid, probability)] best first
    true_prob: dict[int, float]            # position -> probability of the residue that was there
    untrained: bool
    warnings: list[str]

    @property
    def columns(self) -> list[str]:
        return list(AMINO_ACIDS) + ["other"]


def _aa_token_ids(alphabet) -> list[int]:
    return [alphabet.get_idx(a) for a in AMINO_ACIDS]


def _probs_21(logits: torch.Tensor, alphabet) -> np.ndarray:
    """Softmax over the whole vocabulary, reported as the 20 amino acids + 'other' (the rest,
    so every row sums to 1)."""
    p = torch.softmax(logits.double(), -1)
    aa = p[..., _aa_token_ids(alphabet)]
    other = (1.0 - aa.sum(-1, keepdim=True)).clamp(min=0.0)
    return torch.cat([aa, other], -1).cpu().numpy()


def parse_positions(text: str | Iterable[int], L: int) -> list[int]:
    """'5, 10-12' -> [5, 10, 11, 12] (1-based, checked against the length L)."""
    if not isinstance(text, str):
        pos = sorted({int(p) for p in text})
    else:
        pos = set()
        for part in re.split(r"[,\s;]+", text.strip()):
            if not part:
                continue
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m:
                raise ESMError(f"'{part}' is not a position or a range.", hint="Write positions like 5, 10-12.")
            a, b = int(m.group(1)), int(m.group(2) or m.group(1))
            if b < a:
                a, b = b, a
            pos.update(range(a, b + 1))
        pos = sorted(pos)
    bad = [p for p in pos if not 1 <= p <= L]
    if bad:
        raise ESMError(f"position {bad[0]} is outside the sequence (1 to {L}).", hint="Pick positions inside it.")
    return pos


def _truncate_for_model(seq: str, name: str, warn: list[str]) -> str:
    if len(seq) > MAX_RESIDUES:
        warn.append(f"{name} has {len(seq)} residues; ESM-2 reads at most {MAX_RESIDUES}: only the first "
                    f"{MAX_RESIDUES} are used here.")
        return seq[:MAX_RESIDUES]
    return seq


def mask_predictions(handle: ESMHandle, seq: str, positions: Iterable[int] | str = (), top_k: int = 5) -> MaskedPrediction:
    """Mask ``positions`` (1-based) together, run the model once, and read the amino-acid
    probabilities at every position (masked or not) and the top-k at the masked ones."""
    warn: list[str] = []
    s = _truncate_for_model(clean_sequence(seq, "The sequence"), "The sequence", warn)
    pos = parse_positions(positions, len(s))
    tokens = encode(handle.alphabet, [s])
    for p in pos:
        tokens[0, p] = handle.alphabet.mask_idx
    with torch.inference_mode():
        logits = esm_forward(handle.model, tokens.to(handle.device), need_logits=True)["logits"][0, 1: len(s) + 1]
    probs = _probs_21(logits, handle.alphabet)
    k = max(1, min(int(top_k), 20))
    top, true_p = {}, {}
    for p in pos:
        row = probs[p - 1, :20]
        order = np.argsort(-row)[:k]
        top[p] = [(AMINO_ACIDS[j], float(row[j])) for j in order]
        true_p[p] = float(row[AMINO_ACIDS.index(s[p - 1])]) if s[p - 1] in AMINO_ACIDS else float("nan")
    return MaskedPrediction(s, pos, probs, top, true_p, handle.untrained, warn)


@dataclasses.dataclass
class PseudoPerplexity:
    seq: str
    ppl: float                 # exp(-mean log P(true residue | the rest)), each position masked in turn
    log_probs: np.ndarray      # (L,) log P of the true residue
    probs: np.ndarray          # (L, 21) the masked distributions ("masked marginals")
    untrained: bool
    warnings: list[str]


def pseudo_perplexity(handle: ESMHandle, seq: str, token_budget: int | None = None,
                      progress: Progress = None) -> PseudoPerplexity:
    """Mask each position in turn (L forward passes, batched) and score the true residue:
    pseudo-perplexity = exp(-mean_i log P(x_i | x without i)). 1 = certain; 20 = a uniform guess
    over the amino acids."""
    warn: list[str] = []
    s = _truncate_for_model(clean_sequence(seq, "The sequence"), "The sequence", warn)
    L = len(s)
    base = encode(handle.alphabet, [s])[0]
    budget = int(token_budget or default_token_budget(handle))
    per_batch = max(1, budget // (L + 2))
    probs = np.zeros((L, 21))
    for start in range(0, L, per_batch):
        idx = list(range(start, min(L, start + per_batch)))
        tokens = base.repeat(len(idx), 1)
        for r, i in enumerate(idx):
            tokens[r, i + 1] = handle.alphabet.mask_idx
        with torch.inference_mode():
            logits = esm_forward(handle.model, tokens.to(handle.device), need_logits=True)["logits"]
        rows = torch.stack([logits[r, i + 1] for r, i in enumerate(idx)])
        probs[idx] = _probs_21(rows, handle.alphabet)
        if progress:
            progress(idx[-1] + 1, L, f"Masked {idx[-1] + 1} of {L} positions")
    col = [AMINO_ACIDS.index(c) if c in AMINO_ACIDS else 20 for c in s]
    lp = np.log(np.clip(probs[np.arange(L), col], 1e-300, None))
    return PseudoPerplexity(s, float(np.exp(-lp.mean())), lp, probs, handle.untrained, warn)


# =============================================================================================
# Mutation scans: ESM-1v masked marginals
# =============================================================================================
SCAN_TOKEN_BUDGET = {"cpu": 4096, "cuda": 65536}   # tokens per forward pass of a mutation scan
MUTATION_RE = re.compile(r"([A-Za-z])(\d+)([A-Za-z])")


def _scan_copies(handle: ESMHandle, L: int, batch_size: int | None, token_budget: int | None) -> int:
    """Masked copies of a sequence of L residues per forward pass."""
    if batch_size:
        return max(1, int(batch_size))
    budget = int(token_budget or SCAN_TOKEN_BUDGET.get(handle.device, SCAN_TOKEN_BUDGET["cpu"]))
    return max(1, budget // (L + 2))


def _last_layer_at(layer: torch.nn.Module, x: torch.Tensor, pos: torch.Tensor, cos: torch.Tensor,
                   sin: torch.Tensor, w: dict | None = None) -> torch.Tensor:
    """The last Transformer layer evaluated at one position per row (``pos`` (B,)): keys and values
    from every token, the query, attention output and feed-forward only where they are read.
    x (B, T, E) -> (B, E). ``w``: the bfloat16 weights of :func:`_fast_weights` (mixed precision)."""
    from playground.models.esm_arch import _rotate_half

    attn = layer.self_attn
    B, T, E = x.shape
    H = attn.num_heads
    D = E // H
    rows = torch.arange(B, device=x.device)
    h = layer.self_attn_layer_norm(x)
    hq = h[rows, pos]                                                   # (B, E)
    if w is None:
        q, k, v = attn.q_proj(hq), attn.k_proj(h), attn.v_proj(h)
    else:
        bf = torch.bfloat16
        q = F.linear(hq.to(bf), w["qkv_w"][:E], w["qkv_b"][:E]).float()
        kv = F.linear(h.to(bf), w["qkv_w"][E:], w["qkv_b"][E:]).float()
        k, v = kv[..., :E], kv[..., E:]
    q = q.view(B, 1, H, D).transpose(1, 2) * attn.scaling               # (B, H, 1, D)
    k = k.reshape(B, T, H, D).transpose(1, 2)
    v = v.reshape(B, T, H, D).transpose(1, 2)
    cq, sq = cos[pos][:, None, None, :], sin[pos][:, None, None, :]
    q = q * cq + _rotate_half(q) * sq
    k = k * cos + _rotate_half(k) * sin
    o = F.scaled_dot_product_attention(q, k, v, scale=1.0).reshape(B, E)
    if w is None:
        y = x[rows, pos] + attn.out_proj(o)
        return y + layer.fc2(F.gelu(layer.fc1(layer.final_layer_norm(y))))
    bf = torch.bfloat16
    y = x[rows, pos] + F.linear(o.to(bf), w["out_w"], w["out_b"]).float()
    hh = layer.final_layer_norm(y).to(bf)
    return y + F.linear(F.gelu(F.linear(hh, w["fc1_w"], w["fc1_b"])), w["fc2_w"], w["fc2_b"]).float()


def masked_logits(model: torch.nn.Module, tokens: torch.Tensor, pos: torch.Tensor,
                  precision: str = "float32") -> torch.Tensor:
    """The masked-LM logits (B, vocabulary) of ``tokens`` (B, T, no padding) at one token per row
    (``pos`` (B,), token index): the same numbers as ``esm_forward(...)["logits"][rows, pos]``, but
    the last layer and the LM head run only where they are read (a mutation scan reads one
    position per copy). ``precision='mixed'``: matrix products in bfloat16 (:func:`layer_forward_mixed`)."""
    mixed = precision == "mixed" and next(model.parameters()).dtype == torch.float32
    x = embed_tokens(model, tokens)
    cos, sin = rotary_tables(model, tokens.shape[1], x.device, x.dtype)
    fast = _fast_weights(model) if mixed else None
    if mixed:
        half = sin.shape[-1] // 2
        sin_signed = torch.cat((-sin[..., :half], sin[..., half:]), -1)
    for i, layer in enumerate(model.layers[:-1]):
        if mixed:
            x = layer_forward_mixed(layer, fast[i], x, None, cos, sin_signed)
        else:
            x, _ = layer_forward(layer, x, None, cos, sin)
    y = _last_layer_at(model.layers[-1], x, pos, cos, sin, fast[-1] if mixed else None)
    return model.lm_head(model.emb_layer_norm_after(y))


def _scan_windows(L: int) -> list[tuple[int, int, list[int]]]:
    """(start, end, positions) with every 0-based position in the window where it is most central
    (the embedding code's overlapping windows of MAX_RESIDUES); one window when L fits."""
    wins = _windows(L)
    groups: dict[int, list[int]] = {}
    for p in range(L):
        best = min((w for w in range(len(wins)) if wins[w][0] <= p < wins[w][1]),
                   key=lambda w: abs(p - (wins[w][0] + wins[w][1] - 1) / 2))
        groups.setdefault(best, []).append(p)
    return [(wins[w][0], wins[w][1], groups[w]) for w in sorted(groups)]


def _masked_marginals(handle: ESMHandle, s: str, positions: Sequence[int], batch_size: int | None = None,
                      token_budget: int | None = None, precision: str | None = "float32",
                      progress: Progress = None) -> np.ndarray:
    """(len(positions), 20) log P(aa) - log P(wild type) with each 0-based position masked in turn."""
    prec = resolve_precision(handle, precision)
    a = handle.alphabet
    aa_ids = torch.tensor(_aa_token_ids(a))
    want = set(positions)
    out: dict[int, np.ndarray] = {}
    total, done = len(want), 0
    for start, end, group in _scan_windows(len(s)):
        group = [p for p in group if p in want]
        if not group:
            continue
        base = encode(a, [s[start:end]])[0]
        per_pass = _scan_copies(handle, end - start, batch_size, token_budget)
        for i in range(0, len(group), per_pass):
            chunk = group[i:i + per_pass]
            tok_pos = torch.tensor([p - start + 1 for p in chunk])
            tokens = base.repeat(len(chunk), 1)
            wt = tokens[torch.arange(len(chunk)), tok_pos].clone()
            tokens[torch.arange(len(chunk)), tok_pos] = a.mask_idx
            with torch.inference_mode():     # side-effect free: sessions share the model
                logits = masked_logits(handle.model, tokens.to(handle.device), tok_pos.to(handle.device), prec)
            lp = torch.log_softmax(logits.double().cpu(), -1)
            ratio = lp[:, aa_ids] - lp.gather(1, wt[:, None])
            for r, p in enumerate(chunk):
                out[p] = ratio[r].numpy()
            done += len(chunk)
            if progress:
                progress(done, total, f"Masked {done} of {total} positions")
    return np.stack([out[p] for p in positions]) if positions else np.zeros((0, 20))


def mutation_scan(handle: ESMHandle, seq: str, batch_size: int | None = None, progress: Progress = None, *,
                  token_budget: int | None = None, precision: str | None = "float32") -> np.ndarray:
    """ESM-1v's masked-marginal score of every single substitution (Meier et al. 2021): for each
    position i, mask i and read log P(aa | the rest) - log P(wild type | the rest) for the 20
    amino acids. Returns (L, 20) log-ratios, columns in ``AMINO_ACIDS`` order, 0 at the wild type;
    < 0: the model finds the mutant less likely than the wild type (often: damaging).

    The L masked copies run several per forward pass (``batch_size`` copies, or as many as fit in
    ``token_budget`` tokens), and only the masked position goes through the last layer and the LM
    head. ``progress(done, total, message)`` after each pass. Longer than 1022 residues: each
    position is scored in the window of 1022 (the embedding code's windows) where it is most central.
    ``precision``: 'float32' (exact), 'mixed' (bf16 matrix products on a CPU that has them) or
    None/'auto' (the embedding rule)."""
    s = clean_sequence(seq, "The sequence")
    return _masked_marginals(handle, s, range(len(s)), batch_size, token_budget, precision, progress)


def mutation_scan_naive(handle: ESMHandle, seq: str) -> np.ndarray:
    """The same scan as fair-esm's ESM-1v example computes it (variant-prediction/predict.py,
    'masked-marginals'): one masked copy per pass through fair-esm's own ``model(tokens)``, logits at
    every position. The reference the batched scan is checked and timed against (at most 1022 residues)."""
    s = clean_sequence(seq, "The sequence")
    if len(s) > MAX_RESIDUES:
        raise SequenceError(f"The reference scan reads at most {MAX_RESIDUES} residues, not {len(s)}.",
                            hint="Use mutation_scan, which reads longer proteins in windows.")
    a = handle.alphabet
    base = encode(a, [s])[0]
    aa_ids = _aa_token_ids(a)
    out = np.zeros((len(s), 20))
    for i in range(len(s)):
        tokens = base.clone()[None]
        tokens[0, i + 1] = a.mask_idx
        with handle.lock, torch.no_grad():   # fair-esm's forward updates its rotary cache: one caller at a time
            logits = handle.model(tokens.to(handle.device))["logits"][0, i + 1]
        lp = torch.log_softmax(logits.double().cpu(), -1)
        out[i] = (lp[aa_ids] - lp[base[i + 1]]).numpy()
    return out


@dataclasses.dataclass(frozen=True)
class Mutation:
    wild_type: str
    position: int          # 1-based
    mutant: str

    @property
    def name(self) -> str:
        return f"{self.wild_type}{self.position}{self.mutant}"


def parse_mutations(text: str, seq: str) -> list[Mutation]:
    """'A23G, K45E' -> Mutations, checked against ``seq``: the syntax (wild type, 1-based position,
    mutant), the letters (the 20 amino acids), the position (inside the sequence) and the wild type
    (the residue that is there). Raises ESMError / SequenceError naming the mutation at fault."""
    s = clean_sequence(seq, "The sequence")
    parts = [p for p in re.split(r"[,;\s]+", str(text or "").strip()) if p]
    if not parts:
        raise ESMError("No mutations to score.", hint="Type them like A23G, K45E (wild type, position, mutant).")
    out, seen = [], set()
    for part in parts:
        m = MUTATION_RE.fullmatch(part)
        if not m:
            raise ESMError(f"'{part}' is not a mutation.",
                           hint="Write each as wild type, position, mutant, e.g. A23G (commas between them).")
        wt, pos, mt = m.group(1).upper(), int(m.group(2)), m.group(3).upper()
        for ch, role in ((wt, "wild-type"), (mt, "mutant")):
            if ch not in AMINO_ACIDS:
                raise SequenceError(f"{part}: '{ch}' ({role} letter) is not one of the 20 amino acids "
                                    f"({AMINO_ACIDS}).", hint="Use one-letter amino-acid codes.")
        if not 1 <= pos <= len(s):
            raise ESMError(f"{part}: position {pos} is outside the sequence (1 to {len(s)}).",
                           hint="Positions count from 1 at the first residue.")
        if s[pos - 1] != wt:
            raise ESMError(f"{part}: position {pos} is {s[pos - 1]}, not {wt}.",
                           hint=f"Write {s[pos - 1]}{pos}{mt}, or check the numbering (1 = the first residue).")
        mut = Mutation(wt, pos, mt)
        if mut not in seen:
            seen.add(mut)
            out.append(mut)
    return out


def score_mutations(handle: ESMHandle, seq: str, mutations: str | Sequence[Mutation],
                    scan: np.ndarray | None = None, batch_size: int | None = None, progress: Progress = None,
                    precision: str | None = "float32") -> list[dict]:
    """Masked-marginal scores of typed mutations ('A23G, K45E'), best (highest log-ratio) first:
    rows of rank, mutation, position, wild type, mutant, log-ratio and P(mutant) / P(wild type).
    Only the mutated positions are masked (each once), unless a full ``scan`` (L, 20) is given."""
    s = clean_sequence(seq, "The sequence")
    muts = parse_mutations(mutations, s) if isinstance(mutations, str) else list(mutations)
    positions = sorted({m.position - 1 for m in muts})
    if scan is not None and len(scan) == len(s):
        rows = {p: scan[p] for p in positions}
    else:
        got = _masked_marginals(handle, s, positions, batch_size, None, precision, progress)
        rows = dict(zip(positions, got))
    scored = [(m, float(rows[m.position - 1][AMINO_ACIDS.index(m.mutant)])) for m in muts]
    scored.sort(key=lambda t: -t[1])
    return [{"rank": r, "mutation": m.name, "position": m.position, "wild type": m.wild_type, "mutant": m.mutant,
             "log-ratio": round(v, 4), "P(mutant) / P(wild type)": round(float(np.exp(v)), 4)}
            for r, (m, v) in enumerate(scored, start=1)]


def mutation_scan_csv(seq: str, scores: np.ndarray) -> bytes:
    """The scan as CSV: one row per position (position, wild type, then the 20 amino acids' log-ratios)."""
    s = clean_sequence(seq, "The sequence")
    buf = io.StringIO()
    buf.write("position,wild_type," + ",".join(AMINO_ACIDS) + "\n")
    for i, row in enumerate(np.asarray(scores)):
        buf.write(f"{i + 1},{s[i]}," + ",".join(f"{v:.5f}" for v in row) + "\n")
    return buf.getvalue().encode()


# =============================================================================================
# Attention maps and contacts
# =============================================================================================
@dataclasses.dataclass
class AttentionResult:
    seq: str
    tokens: list[str]                  # '<cls>', residues, '<eos>'
    attentions: np.ndarray             # (layers, heads, L+2, L+2) float16
    contacts: np.ndarray | None        # (L, L) contact probabilities, None without regression weights
    contact_note: str
    proxy: np.ndarray                  # (L, L) symmetrised, APC-corrected attention averaged over layers and heads
    untrained: bool
    warnings: list[str]

    def head(self, layer: int, head: int | None = None) -> np.ndarray:
        """(L+2, L+2) map of one head, or the average over heads when ``head`` is None (layers 1-based)."""
        a = self.attentions[layer - 1].astype(np.float32)
        return a.mean(0) if head is None else a[head]


MAX_ATTENTION_RESIDUES = int(os.environ.get("PLAYGROUND_ESM_MAX_ATTENTION", "400"))


def attention_and_contacts(handle: ESMHandle, seq: str, max_residues: int = MAX_ATTENTION_RESIDUES) -> AttentionResult:
    """All attention maps (every layer and head) for one protein and fair-esm's contact
    prediction from them (``return_contacts``: a logistic regression on the symmetrised,
    APC-corrected maps, trained by the ESM authors; it needs the '-contact-regression.pt' file)."""
    from esm.modules import apc, symmetrize

    warn: list[str] = []
    s = clean_sequence(seq, "The sequence")
    limit = min(max_residues, MAX_RESIDUES)
    if len(s) > limit:
        warn.append(f"The sequence has {len(s)} residues; attention maps are shown for the first {limit} "
                    f"(the maps grow with the square of the length).")
        s = s[:limit]
    tokens = encode(handle.alphabet, [s]).to(handle.device)
    with torch.inference_mode():
        out = esm_forward(handle.model, tokens, need_logits=False, need_attentions=True)
        attn = out["attentions"]
        contacts, note = None, ""
        if handle.has_contacts:
            contacts = handle.model.contact_head(tokens, attn.to(handle.model.contact_head.regression.weight.dtype))
            contacts = contacts[0].float().cpu().numpy()
            if handle.untrained:
                note = "Contact head with random weights (untrained weights): the map is meaningless."
        else:
            note = ("No contact-regression weights were loaded ('-contact-regression.pt'), so contacts cannot be "
                    "predicted. Shown instead: the attention maps averaged over all layers and heads, symmetrised "
                    "and APC-corrected — the raw signal the contact regression is trained on.")
        a = attn[0, :, :, 1:-1, 1:-1].float()
        proxy = apc(symmetrize(a.reshape(1, -1, len(s), len(s)))).mean(1)[0].cpu().numpy()
    labels = ["<cls>", *s, "<eos>"]
    return AttentionResult(s, labels, attn[0].to(torch.float16).cpu().numpy(), contacts, note, proxy,
                           handle.untrained, warn)


# =============================================================================================
# Fine-tuning inputs
# =============================================================================================
def finetune_inputs(handle: ESMHandle, seqs: Sequence[str], unfrozen: int, ids: Sequence[str] | None = None,
                    token_budget: int | None = None, progress: Progress = None) -> torch.Tensor:
    """Inputs for fine-tuning the last ``unfrozen`` layers: the (frozen) hidden states after layer
    ``layers - unfrozen`` for every sequence, padded to one length, with one extra channel that
    says what each position is (0 padding, 1 BOS/EOS, 2 residue): a float tensor (n, T, E + 1).
    Computing the frozen layers once makes each training step run only the unfrozen ones."""
    if not 1 <= unfrozen <= handle.layers:
        raise ESMError(f"unfreeze between 1 and {handle.layers} layers")
    ids = list(ids) if ids is not None else [f"seq{i + 1}" for i in range(len(seqs))]
    clean = [s[:MAX_RESIDUES] for s in clean_sequences(seqs, ids)]
    start = handle.layers - unfrozen
    T = max(len(s) for s in clean) + 2
    E = handle.dim
    out = torch.zeros(len(clean), T, E + 1)
    budget = int(token_budget or default_token_budget(handle))
    batches = length_batches([len(s) for s in clean], budget)
    done = 0
    for batch in batches:
        sub = [clean[i] for i in batch]
        tokens = encode(handle.alphabet, sub).to(handle.device)
        with torch.inference_mode():
            rep = esm_forward(handle.model, tokens, [start], need_logits=False)["representations"][start]
            rep = rep.float().cpu()
        kind = torch.where(residue_mask(handle.alphabet, tokens), TOKEN_RESIDUE,
                           torch.where(tokens == handle.alphabet.padding_idx, TOKEN_PAD, TOKEN_SPECIAL)).float().cpu()
        for r, i in enumerate(batch):
            t = rep.shape[1]
            out[i, :t, :E] = rep[r]
            out[i, :t, E] = kind[r]
        done += len(batch)
        if progress:
            progress(done, len(clean), f"Frozen layers 1–{start}: {done} of {len(clean)} sequences")
    return out



# =============================================================================================
# Fine-tuning vs training from scratch
# =============================================================================================
def head_split(handle: ESMHandle, seqs: Sequence[str], base, layer: int | None = None, finetune_layers: int = 0,
               progress: Progress = None, ids: Sequence[str] | None = None):
    """The ESM-2 inputs for the split ``base`` (a SplitData of tokens whose meta holds
    train_idx/val_idx/test_idx, e.g. from ``playground.data.protein.to_split``): the same proteins
    in the same part with the same labels, as mean-pooled (or per-residue) embeddings of ``layer``,
    or, when fine-tuning, the frozen hidden states of ``finetune_inputs``."""
    tr = torch.as_tensor(np.asarray(base.meta["train_idx"]), dtype=torch.long)
    te = torch.as_tensor(np.asarray(base.meta["test_idx"]), dtype=torch.long)
    va = torch.as_tensor(np.asarray(base.meta.get("val_idx", [])), dtype=torch.long)
    per_residue = base.task == "per_residue"
    if finetune_layers:
        x = finetune_inputs(handle, seqs, finetune_layers, ids, progress=progress)
        if per_residue:
            L = base.y_train.shape[1]
            if x.shape[1] - 2 != L:
                x = torch.nn.functional.pad(x, (0, 0, 0, L + 2 - x.shape[1])) if x.shape[1] - 2 < L else x[:, : L + 2]
        used_layer = handle.layers
    else:
        res = embed(handle, seqs, layer, "per_residue" if per_residue else "mean", ids, progress=progress)
        x = torch.from_numpy(res.padded(base.y_train.shape[1]) if per_residue else res.vectors)
        used_layer = res.layer
    meta = {**base.meta, "esm_model": handle.key, "esm_name": handle.name, "layer": used_layer,
            "finetune_layers": int(finetune_layers), "untrained_esm": handle.untrained}
    return SplitData(x[tr], base.y_train, x[te], base.y_test, base.task, base.n_classes, list(base.class_names), meta,
                     x_val=x[va], y_val=base.y_val)


def make_head_spec(handle: ESMHandle, data, head: str = "logistic", hidden: int = 64, finetune_layers: int = 0,
                   dropout: float = 0.1) -> ESMHeadSpec:
    return ESMHeadSpec(esm_model=handle.key, esm_name=handle.name, layer=int(data.meta.get("layer", handle.layers)),
                       embed_dim=handle.dim, head=head, hidden=int(hidden), dropout=float(dropout),
                       n_outputs=data.n_outputs, per_residue=data.task == "per_residue",
                       finetune_layers=int(finetune_layers), untrained_esm=handle.untrained)


def scratch_cnn_spec(data):
    """The from-scratch baseline: the course's protein CNN (``hybrid.PROTEIN_CNN_COURSE``:
    amino-acid embedding = a linear map of the one-hot letters, two Conv1d layers, masked mean)."""
    pooling = "per_position" if data.task == "per_residue" else "mean"
    return dataclasses.replace(PROTEIN_CNN_COURSE, pooling=pooling, n_outputs=data.n_outputs)


__all__ = [
    "CATALOGUE", "DEFAULT_MODEL", "MAX_RESIDUES", "AMINO_ACIDS", "ModelInfo", "ESMHandle", "ESMError",
    "WeightsUnavailable", "CheckpointError", "MemoryRefused", "SequenceError", "load_pretrained",
    "load_checkpoint_file", "load_checkpoint_bytes", "random_model", "save_checkpoint", "safe_torch_load",
    "validate_checkpoint", "is_cached", "hub_paths", "check_online", "download_allowed", "check_memory",
    "available_memory_mb", "embed", "embed_naive", "EmbeddingResult", "esm_forward", "encode", "clean_sequence",
    "length_batches", "mask_predictions", "pseudo_perplexity", "attention_and_contacts", "project_2d",
    "embeddings_csv", "embeddings_npy", "finetune_inputs", "get_loaded", "loaded_models", "unload",
    "head_split", "make_head_spec", "scratch_cnn_spec", "layer_forward", "rotary_tables",
    "mutation_scan", "mutation_scan_naive", "score_mutations", "parse_mutations", "Mutation", "masked_logits",
    "mutation_scan_csv",
]
