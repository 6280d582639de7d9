"""What ``playground.esm`` (inference) and ``playground.models.esm_head`` (fine-tuning) share.

Both modules import this one at the top; neither imports the other lazily any more
(``esm`` builds ``ESMHeadSpec``; the head needs only what is here):

- the process-wide registry of loaded ESM-2 models (:func:`get_loaded`, :func:`loaded_models`;
  ``esm._cached`` / ``esm.unload`` fill and empty it through :func:`remember` / :func:`forget`).
  A fine-tuning spec names its ESM-2 model by the registry key and finds it here;
- one ESM-2 Transformer layer as a function (:func:`layer_forward`, pre-LayerNorm, rotary
  attention, GELU feed-forward) and its rotary tables (:func:`rotary_tables`): a re-statement
  of fair-esm's layer that keeps no per-call cache on the module (sessions share the model);
- the codes of the "what is this position" channel of the fine-tuning inputs (``TOKEN_*``).

Pure torch; never imports streamlit.
"""
from __future__ import annotations

import collections
import threading
import weakref

import torch
from torch.nn import functional as F

# the last input channel of the fine-tuning inputs: what each position is
TOKEN_PAD, TOKEN_SPECIAL, TOKEN_RESIDUE = 0.0, 1.0, 2.0


# =============================================================================================
# The registry of loaded models (handles: ``playground.esm.ESMHandle``)
# =============================================================================================
_MODELS: "collections.OrderedDict[str, object]" = collections.OrderedDict()
_MODELS_LOCK = threading.RLock()      # guards the dict
_ALIVE: "weakref.WeakValueDictionary[str, object]" = weakref.WeakValueDictionary()  # evicted but still in use


def get_loaded(key: str):
    """The loaded model (an ``ESMHandle``) with this key, or None (never loads anything)."""
    with _MODELS_LOCK:
        h = _MODELS.get(key)
        if h is not None:
            _MODELS.move_to_end(key)
            return h
        return _ALIVE.get(key)


def loaded_models() -> list:
    with _MODELS_LOCK:
        return list(_MODELS.values())


def remember(key: str, handle, max_models: int) -> list[str]:
    """Add a freshly loaded model; returns the keys evicted to keep at most ``max_models``
    (least recently used first). An evicted model stays findable while something still uses it."""
    evicted = []
    with _MODELS_LOCK:
        _MODELS[key] = handle
        _ALIVE[key] = handle
        while len(_MODELS) > max_models:
            old, _ = _MODELS.popitem(last=False)
            evicted.append(old)
    return evicted


def forget(key: str) -> None:
    with _MODELS_LOCK:
        _MODELS.pop(key, None)
        _ALIVE.pop(key, None)


# =============================================================================================
# One Transformer layer
# =============================================================================================
def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotary_tables(model: torch.nn.Module, T: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of the rotary position embedding for positions 0..T-1 (computed in float32)."""
    inv = model.layers[0].self_attn.rot_emb.inv_freq.float().to(device)
    t = torch.arange(T, device=device, dtype=torch.float32)
    freqs = torch.outer(t, inv)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def layer_forward(layer: torch.nn.Module, x: torch.Tensor, pad: torch.Tensor | None, cos: torch.Tensor,
                  sin: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One ESM-2 Transformer layer (pre-LayerNorm, rotary attention, GELU feed-forward) on
    x (B, T, E). ``pad`` (B, T) is True at padding. Returns (x, attention (B, H, T, T) or None)."""
    attn = layer.self_attn
    B, T, E = x.shape
    H = attn.num_heads
    D = E // H
    h = layer.self_attn_layer_norm(x)
    q = attn.q_proj(h).view(B, T, H, D).transpose(1, 2) * attn.scaling
    k = attn.k_proj(h).view(B, T, H, D).transpose(1, 2)
    v = attn.v_proj(h).view(B, T, H, D).transpose(1, 2)
    q = q * cos + _rotate_half(q) * sin
    k = k * cos + _rotate_half(k) * sin
    weights = None
    if need_weights:
        scores = q @ k.transpose(-1, -2)
        if pad is not None:
            scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        weights = scores.float().softmax(-1).to(v.dtype)
        o = weights @ v
    else:
        mask = None if pad is None else ~pad[:, None, None, :]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)
    x = x + attn.out_proj(o.transpose(1, 2).reshape(B, T, E))
    h = layer.final_layer_norm(x)
    x = x + layer.fc2(F.gelu(layer.fc1(h)))
    return x, weights


__all__ = ["TOKEN_PAD", "TOKEN_SPECIAL", "TOKEN_RESIDUE", "get_loaded", "loaded_models", "remember", "forget",
           "rotary_tables", "layer_forward"]
