"""The multilayer perceptron: the network of TensorFlow Playground, in PyTorch.

    MLP(n_inputs=2, hidden=(4, 2), activation="relu", n_outputs=1)

is two input features -> 4 neurons -> 2 neurons -> 1 output. Each hidden layer is a
Linear layer followed by the activation; the output layer has no activation (the loss
adds the sigmoid for classification).
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from playground.models.base import ModelSpec, make_activation, register

MAX_LAYERS = 6
MAX_NEURONS = 32


@register
@dataclasses.dataclass
class MLPSpec(ModelSpec):
    kind = "mlp"
    n_inputs: int = 2
    hidden: tuple = (4, 2)
    activation: str = "tanh"
    n_outputs: int = 1
    dropout: float = 0.0
    # input standardisation (x - mean) / std per input, fixed (not trained); () = raw inputs
    input_mean: tuple = ()
    input_std: tuple = ()

    def __post_init__(self):
        self.hidden = tuple(int(h) for h in self.hidden)
        self.input_mean = tuple(float(m) for m in self.input_mean)
        self.input_std = tuple(float(s) for s in self.input_std)
        if self.input_mean or self.input_std:
            if not (len(self.input_mean) == len(self.input_std) == self.n_inputs):
                raise ValueError("input_mean and input_std need one number per input")
            if any(not s > 0 for s in self.input_std):
                raise ValueError("input_std must be positive")
        if len(self.hidden) > MAX_LAYERS:
            raise ValueError(f"at most {MAX_LAYERS} hidden layers")
        if any(not 1 <= h <= MAX_NEURONS for h in self.hidden):
            raise ValueError(f"each hidden layer has 1 to {MAX_NEURONS} neurons")
        make_activation(self.activation)  # validates the name

    def build(self) -> nn.Module:
        return MLP(self.n_inputs, self.hidden, self.activation, self.n_outputs, self.dropout,
                   self.input_mean or None, self.input_std or None)

    def describe(self) -> str:
        norm = ", standardised inputs" if self.input_mean else ""
        return f"MLP {self.n_inputs}→{'→'.join(map(str, self.hidden)) or ''}{'→' if self.hidden else ''}{self.n_outputs} ({self.activation}{norm})"


class MLP(nn.Module):
    def __init__(self, n_inputs: int, hidden=(4, 2), activation: str = "tanh", n_outputs: int = 1,
                 dropout: float = 0.0, input_mean=None, input_std=None):
        super().__init__()
        self.standardise = input_mean is not None
        if self.standardise:   # fixed buffers: saved with the weights, never trained
            self.register_buffer("input_mean", torch.tensor(input_mean, dtype=torch.float32))
            self.register_buffer("input_std", torch.tensor(input_std, dtype=torch.float32))
        sizes = [n_inputs, *hidden]
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.output = nn.Linear(sizes[-1], n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if self.standardise:
            x = (x - self.input_mean) / self.input_std
        for layer in self.hidden_layers:
            x = self.dropout(self.activation(layer(x)))
        return self.output(x)

    @torch.no_grad()
    def layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """What every neuron outputs for inputs ``x``: one (n, width) tensor per hidden layer
        and the output layer (pre-sigmoid). Used to draw each neuron's small map."""
        outs = []
        x = x.flatten(1)
        if self.standardise:
            x = (x - self.input_mean) / self.input_std
        for layer in self.hidden_layers:
            x = self.activation(layer(x))
            outs.append(x)
        outs.append(self.output(x))
        return outs
