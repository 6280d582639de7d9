"""Model specs: small dataclasses that describe a network.

A spec is data: ``spec.to_dict()`` goes into a URL, a JSON file or a model bundle, and
``spec_from_dict`` brings it back. ``build_model(spec, seed)`` turns it into an nn.Module
with seeded initial weights. Each model family registers its spec class with @register.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from playground.seeding import seeded

SPECS: dict[str, type] = {}

ACTIVATIONS = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}
ACTIVATION_LABELS = {
    "linear": "Linear", "relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "gelu": "GELU",
    "silu": "SiLU (Swish)", "leaky_relu": "LeakyReLU", "elu": "ELU",
}


def make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


def register(cls):
    """Class decorator: make a spec class known to spec_from_dict by its ``kind``."""
    SPECS[cls.kind] = cls
    return cls


@dataclasses.dataclass
class ModelSpec:
    kind: ClassVar[str] = "base"

    def build(self) -> nn.Module:  # pragma: no cover - every family overrides
        raise NotImplementedError

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {"kind": self.kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}}

    def describe(self) -> str:
        return f"{self.kind}"


def spec_from_dict(d: dict) -> ModelSpec:
    """Rebuild a spec from ``to_dict`` output; unknown keys or kinds raise ValueError."""
    d = dict(d)
    kind = d.pop("kind", None)
    if kind not in SPECS:
        raise ValueError(f"unknown model kind {kind!r}; known: {sorted(SPECS)}")
    cls = SPECS[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    extra = set(d) - set(fields)
    if extra:
        raise ValueError(f"unknown field(s) for {kind}: {sorted(extra)}")
    for k, v in list(d.items()):
        if isinstance(v, list):
            d[k] = tuple(v)
    return cls(**d)


def build_model(spec: ModelSpec, seed: int = 0) -> nn.Module:
    """Build the network a spec describes, with initial weights fixed by ``seed``."""
    with seeded(seed):
        model = spec.build()
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def parameter_table(model: nn.Module) -> list[dict]:
    """One row per layer that owns parameters: name, weights, biases, total, and the
    course's wording ("2×3 weights + 3 biases = 9")."""
    rows = []
    for name, mod in model.named_modules():
        own = dict(mod.named_parameters(recurse=False))
        if not own:
            continue
        w = own.get("weight")
        b = own.get("bias")
        n_w = w.numel() if w is not None else 0
        n_b = b.numel() if b is not None else 0
        other = sum(p.numel() for k, p in own.items() if k not in ("weight", "bias"))
        total = n_w + n_b + other
        if isinstance(mod, nn.Linear):
            w_txt = f"{mod.in_features}×{mod.out_features} weights"
        elif w is not None:
            w_txt = "×".join(str(s) for s in w.shape) + " weights"
        else:
            w_txt = f"{other} parameters"
        text = w_txt + (f" + {n_b} biases" if b is not None else "") + f" = {total}"
        rows.append({"layer": name or type(mod).__name__, "type": type(mod).__name__, "weights": n_w,
                     "biases": n_b, "other": other, "total": total, "text": text})
    return rows


def device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
