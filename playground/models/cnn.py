"""1-D convolutional networks for one-hot DNA, and logistic regression on the flat one-hot.

    CNNSpec(length=50, channels=(32,), kernel_sizes=(12,), pool="max", pool_size=4, dense=(16,))

is the genomics-primer CNN: 32 filters of width 12 slide over the (4, 50) one-hot matrix,
ReLU, max-pool 4, flatten, a dense layer of 16, one output. Each first-layer filter is a
4 x 12 matrix of weights: a position weight matrix learned from data.

Input: FloatTensor (batch, 4, length). Output: (batch, n_outputs) logits / values.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from playground.models.base import ModelSpec, make_activation, register

MAX_CONV_LAYERS = 4
KERNEL_RANGE = (1, 25)
POOLS = ("max", "adaptive", "none")
PADDINGS = ("same", "valid")


@register
@dataclasses.dataclass
class CNNSpec(ModelSpec):
    kind = "cnn"
    length: int = 50                 # sequence length (columns of the one-hot matrix)
    in_channels: int = 4             # A C G T
    channels: tuple = (32,)          # filters per conv layer (1-4 layers)
    kernel_sizes: tuple = (12,)      # filter width per conv layer (3-25 in the app)
    padding: str = "valid"           # 'same' keeps the length, 'valid' shrinks it by width - 1
    batch_norm: bool = False
    activation: str = "relu"
    pool: str = "max"                # 'max' (MaxPool1d after every conv), 'adaptive' (AdaptiveMaxPool1d at the end), 'none'
    pool_size: int = 4               # for 'max'
    pool_output: int = 1             # for 'adaptive': positions kept per filter
    dropout: float = 0.0             # dropout in the dense head: after each hidden dense layer (before the
                                     # output layer when there is none), as in Keras-style DNA CNNs
    conv_dropout: float = 0.0        # dropout after every conv block as well (0 = off; costs ~25 % per epoch on CPU)
    dense: tuple = (16,)             # hidden dense layers of the head
    n_outputs: int = 1

    def __post_init__(self):
        self.channels = tuple(int(c) for c in self.channels)
        ks = tuple(int(k) for k in self.kernel_sizes)
        if len(ks) == 1 and len(self.channels) > 1:
            ks = ks * len(self.channels)
        self.kernel_sizes = ks
        self.dense = tuple(int(d) for d in self.dense)
        if not 1 <= len(self.channels) <= MAX_CONV_LAYERS:
            raise ValueError(f"a CNN has 1 to {MAX_CONV_LAYERS} conv layers")
        if len(self.kernel_sizes) != len(self.channels):
            raise ValueError("give one kernel size per conv layer")
        if any(not 1 <= c <= 256 for c in self.channels):
            raise ValueError("each conv layer has 1 to 256 filters")
        if any(not KERNEL_RANGE[0] <= k <= KERNEL_RANGE[1] for k in self.kernel_sizes):
            raise ValueError(f"kernel sizes are {KERNEL_RANGE[0]} to {KERNEL_RANGE[1]}")
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}")
        if self.pool_size < 1 or self.pool_output < 1:
            raise ValueError("pool sizes must be at least 1")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.conv_dropout < 1.0):
            raise ValueError("dropout must be in [0, 1)")
        make_activation(self.activation)
        lengths = self.feature_lengths()
        if lengths[-1] < 1:
            raise ValueError(f"with these layers a {self.length} bp sequence shrinks to nothing "
                             f"(lengths {lengths}); use 'same' padding, smaller filters or less pooling")

    def feature_lengths(self) -> list[int]:
        """Positions left after each conv block (and the final pooling)."""
        L = self.length
        out = []
        for k in self.kernel_sizes:
            if self.padding == "valid":
                L = L - k + 1
            if self.pool == "max" and self.pool_size > 1:
                L = L // self.pool_size
            out.append(L)
        if self.pool == "adaptive":
            out.append(min(self.pool_output, max(L, 0)) if L > 0 else 0)
        return out

    def build(self) -> nn.Module:
        return CNN(self)

    def describe(self) -> str:
        convs = " → ".join(f"conv {c}×w{k}" for c, k in zip(self.channels, self.kernel_sizes))
        pool = {"max": f"max-pool {self.pool_size}", "adaptive": f"adaptive max-pool → {self.pool_output}",
                "none": "no pooling"}[self.pool]
        head = " → ".join(f"dense {d}" for d in self.dense)
        return f"CNN: {convs} ({self.activation}, {pool}) → {head + ' → ' if head else ''}{self.n_outputs} output(s)"


class ConvBlock(nn.Module):
    """Conv1d → (BatchNorm1d) → activation → (max-pool) → (dropout)."""

    def __init__(self, c_in, c_out, k, padding, batch_norm, activation, pool, dropout):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, k, padding="same" if padding == "same" else 0)
        self.norm = nn.BatchNorm1d(c_out) if batch_norm else nn.Identity()
        self.act = make_activation(activation)
        self.pool = pool
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def activations(self, x):
        return self.act(self.norm(self.conv(x)))

    def forward(self, x):
        return self.drop(self.pool(self.activations(x)))


class CNN(nn.Module):
    def __init__(self, spec: CNNSpec):
        super().__init__()
        self.spec = spec
        blocks = []
        c_in = spec.in_channels
        n = len(spec.channels)
        for i, (c, k) in enumerate(zip(spec.channels, spec.kernel_sizes)):
            if spec.pool == "max" and spec.pool_size > 1:
                pool = nn.MaxPool1d(spec.pool_size)
            elif spec.pool == "adaptive" and i == n - 1:
                pool = nn.AdaptiveMaxPool1d(spec.pool_output)
            else:
                pool = nn.Identity()
            blocks.append(ConvBlock(c_in, c, k, spec.padding, spec.batch_norm, spec.activation, pool,
                                    spec.conv_dropout))
            c_in = c
        self.convs = nn.ModuleList(blocks)
        flat = c_in * spec.feature_lengths()[-1]
        sizes = [flat, *spec.dense]
        head = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            head += [nn.Linear(a, b), make_activation("relu" if spec.activation == "linear" else spec.activation)]
            if spec.dropout > 0:
                head.append(nn.Dropout(spec.dropout))
        if spec.dropout > 0 and not spec.dense:      # no hidden dense layer: drop the flattened features
            head.append(nn.Dropout(spec.dropout))
        head.append(nn.Linear(sizes[-1], spec.n_outputs))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.convs:
            x = block(x)
        return self.head(x.flatten(1))

    # -- what interpretation needs (playground.interpret) ------------------------------------
    @property
    def first_conv(self) -> nn.Conv1d:
        return self.convs[0].conv

    def filter_weights(self) -> torch.Tensor:
        """First-layer filters: (n_filters, 4, width)."""
        return self.first_conv.weight.detach().cpu()

    def filter_padding(self) -> int:
        """Columns of zero padding on the left of the first conv layer."""
        if self.spec.padding != "same":
            return 0
        return (self.spec.kernel_sizes[0] - 1) // 2

    @torch.no_grad()
    def filter_activations(self, x: torch.Tensor) -> torch.Tensor:
        """First-layer activations (after BatchNorm and the activation, before pooling):
        (batch, n_filters, positions)."""
        was = self.training
        self.eval()
        out = self.convs[0].activations(x)
        self.train(was)
        return out


@register
@dataclasses.dataclass
class LogisticRegressionSpec(ModelSpec):
    """Logistic regression (or linear regression) on the flattened one-hot: one weight per
    base per position - the simplest position weight matrix. ``encoding="integer"`` reads the
    numericalised sequence instead (A=1, C=2, G=3, T=4, N=0): one weight per position."""
    kind = "logreg"
    length: int = 50
    in_channels: int = 4
    n_outputs: int = 1
    encoding: str = "one_hot"        # 'one_hot' or 'integer'

    def __post_init__(self):
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {sorted(ENCODINGS)}")

    def build(self) -> nn.Module:
        per_position = 1 if self.encoding == "integer" else self.in_channels
        return LogisticRegression(per_position * self.length, self.n_outputs, self.encoding)

    def describe(self) -> str:
        if self.encoding == "integer":
            return f"Logistic regression: {self.length} numbers (A=1 C=2 G=3 T=4) → {self.n_outputs} output(s)"
        return f"Logistic regression: {self.in_channels}×{self.length} one-hot → {self.n_outputs} output(s)"


ENCODINGS = {"one_hot": "One-hot (4 numbers per base)", "integer": "Numericalised (A=1, C=2, G=3, T=4)"}


def numericalise(x: torch.Tensor) -> torch.Tensor:
    """One-hot (batch, 4, L) -> the numericalised sequence (batch, 1, L): A=1, C=2, G=3, T=4 (N, a
    row of zeros, is 0). The numbers put the bases in an order, T > G > C > A, that DNA does not have."""
    codes = torch.arange(1, x.shape[1] + 1, dtype=x.dtype, device=x.device)
    return (x * codes[:, None]).sum(1, keepdim=True)


class LogisticRegression(nn.Module):
    def __init__(self, n_inputs: int, n_outputs: int = 1, encoding: str = "one_hot"):
        super().__init__()
        self.encoding = encoding
        self.linear = nn.Linear(n_inputs, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoding == "integer":
            x = numericalise(x)
        return self.linear(x.flatten(1))


# ----------------------------------------------------------------------------------------------
PRESETS = {
    "primer": "Genomics-primer CNN (32 filters × 12, max-pool 4, dense 16)",
    "course": "Course DNA CNN (32 filters × 3 → linear)",
}


def primer_cnn(length: int = 50, n_outputs: int = 1) -> CNNSpec:
    """The CNN of 'A primer on deep learning in genomics' (Zou et al. 2019): Conv1D(32, 12),
    MaxPooling1D(4), Flatten, Dense(16, relu), output."""
    return CNNSpec(length=length, channels=(32,), kernel_sizes=(12,), padding="valid", activation="relu",
                   pool="max", pool_size=4, dense=(16,), n_outputs=n_outputs)


def course_cnn(length: int = 50, n_outputs: int = 1) -> CNNSpec:
    """The course's DNA CNN: 32 filters of width 3, ReLU, flattened straight into the linear output."""
    return CNNSpec(length=length, channels=(32,), kernel_sizes=(3,), padding="valid", activation="relu",
                   pool="none", dense=(), n_outputs=n_outputs)


def preset(name: str, length: int = 50, n_outputs: int = 1) -> CNNSpec:
    if name == "primer":
        return primer_cnn(length, n_outputs)
    if name == "course":
        return course_cnn(length, n_outputs)
    raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")


__all__ = ["CNNSpec", "CNN", "LogisticRegressionSpec", "LogisticRegression", "PRESETS", "preset", "primer_cnn",
           "course_cnn"]
