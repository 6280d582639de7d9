"""A small head on ESM-2 embeddings: the cheap way to use a protein language model.

    ESMHeadSpec(esm_model="pretrained:esm2_t6_8M_UR50D|cpu|float32", embed_dim=320, head="logistic")

Frozen (``finetune_layers=0``): the input is the mean-pooled embedding of a protein, (batch, E),
or for per-residue labelling one embedding per residue, (batch, L, E). The head is

    logistic:  LayerNorm (no weights) -> Linear(E -> outputs)             logistic regression
    mlp:       LayerNorm (no weights) -> Linear(E -> hidden) ReLU Dropout -> Linear(hidden -> outputs)

Fine-tuning (``finetune_layers=N``): a deep copy of the last N Transformer layers of the ESM-2
model (and its final LayerNorm) is trained together with the head; the N layers start from the
pretrained weights. The frozen layers below run once (``finetune_inputs`` of the ESM-2 module), so
the input is their output: (batch, T, E + 1), the last channel saying what each position is
(0 padding, 1 BOS/EOS, 2 residue). The shared ESM-2 model itself is never changed.

The spec records which ESM-2 model it needs (``esm_model``, the cache key, and ``esm_name``),
and which layer the embeddings came from. The model is looked up in the registry of loaded models
and run with the layer function of ``playground.models.esm_arch``, which the ESM-2 module shares.
"""
from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

# A module import, not ``from ... import``: the code export copies the names a spec's source
# imports from the playground by source, and the registry and the layer are not part of a script.
import playground.models.esm_arch as arch
from playground.models.base import ModelSpec, register

HEADS = {"logistic": "Logistic regression", "mlp": "MLP (one hidden layer)"}


@register
@dataclasses.dataclass
class ESMHeadSpec(ModelSpec):
    kind = "esm_head"
    esm_model: str = "pretrained:esm2_t6_8M_UR50D|cpu|float32"   # registry key of the loaded ESM-2 model
    esm_name: str = "esm2_t6_8M_UR50D"
    layer: int = 6                 # which layer the embeddings come from (the last when fine-tuning)
    embed_dim: int = 320
    head: str = "logistic"         # 'logistic' or 'mlp'
    hidden: int = 64
    dropout: float = 0.1
    n_outputs: int = 1
    per_residue: bool = False      # one prediction per residue (labelling) instead of per protein
    finetune_layers: int = 0       # 0 = frozen embeddings; N = also train the last N ESM-2 layers
    untrained_esm: bool = False    # the ESM-2 weights were random (every result is "untrained weights")

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {sorted(HEADS)}")
        if self.embed_dim < 1 or self.n_outputs < 1 or self.hidden < 1:
            raise ValueError("embed_dim, hidden and n_outputs must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if self.finetune_layers < 0:
            raise ValueError("finetune_layers must be >= 0")

    def build(self) -> nn.Module:
        head = ESMHead(self.embed_dim, self.head, self.hidden, self.n_outputs, self.dropout)
        if self.finetune_layers == 0:
            return head
        handle = arch.get_loaded(self.esm_model)
        if handle is None:
            raise ValueError(f"fine-tuning needs the ESM-2 model '{self.esm_name}' loaded in this process "
                             f"({self.esm_model}); load it on the Protein language model page first.")
        if self.finetune_layers > handle.layers:
            raise ValueError(f"{self.esm_name} has only {handle.layers} layers to unfreeze")
        return ESMFineTune(handle.model, self.finetune_layers, head, self.per_residue)

    def describe(self) -> str:
        what = HEADS[self.head] + (f" ({self.hidden} hidden)" if self.head == "mlp" else "")
        where = (f"fine-tuning the last {self.finetune_layers} layer(s) of {self.esm_name}" if self.finetune_layers
                 else f"on frozen {self.esm_name} layer-{self.layer} embeddings")
        return f"{what} {where}" + (", per residue" if self.per_residue else "")


class ESMHead(nn.Module):
    """LayerNorm (no learned weights) then a logistic or one-hidden-layer MLP head. Works on
    (B, E) pooled embeddings or (B, L, E) per-residue embeddings (one prediction per position)."""

    def __init__(self, embed_dim: int, head: str = "logistic", hidden: int = 64, n_outputs: int = 1,
                 dropout: float = 0.1):
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim, elementwise_affine=False)
        if head == "logistic":
            self.net = nn.Linear(embed_dim, n_outputs)
        else:
            self.net = nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(hidden, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(x))


class ESMFineTune(nn.Module):
    """The last N layers of an ESM-2 model (a trainable deep copy) + final LayerNorm + head.
    Input: (B, T, E + 1) hidden states after the frozen layers, the last channel the kind of
    each position (0 padding, 1 BOS/EOS, 2 residue)."""

    def __init__(self, esm_model: nn.Module, n_layers: int, head: ESMHead, per_residue: bool = False):
        super().__init__()
        self.layers = copy.deepcopy(esm_model.layers[-n_layers:]).float()
        self.final_norm = copy.deepcopy(esm_model.emb_layer_norm_after).float()
        for p in self.parameters():
            p.requires_grad_(True)
        self.head = head
        self.per_residue = per_residue
        self.first_layer = int(esm_model.num_layers) - n_layers + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, kind = x[..., :-1], x[..., -1]
        pad = kind == arch.TOKEN_PAD
        cos, sin = arch.rotary_tables(self, h.shape[1], h.device, h.dtype)
        pad_or_none = pad if bool(pad.any()) else None
        for layer in self.layers:
            h, _ = arch.layer_forward(layer, h, pad_or_none, cos, sin)
        h = self.final_norm(h)
        if self.per_residue:
            return self.head(h[:, 1:-1])               # positions 1..T-2 are residues 1..L (or padding)
        res = (kind == arch.TOKEN_RESIDUE).unsqueeze(-1).to(h.dtype)
        pooled = (h * res).sum(1) / res.sum(1).clamp(min=1.0)
        return self.head(pooled)
