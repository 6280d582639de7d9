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

    def __post_init__(self):
        self.hidden = tuple(int(h) for h in self.hidden)
        if len(self.hidden) > MAX_LAYERS:
            raise ValueError(f"at most {MAX_LAYERS} hidden layers")
        if any(not 1 <= h <= MAX_NEURONS for h in self.hidden):
            raise ValueError(f"each hidden layer has 1 to {MAX_NEURONS} neurons")
        make_activation(self.activation)  # validates the name

    def build(self) -> nn.Module:
        return MLP(self.n_inputs, self.hidden, self.activation, self.n_outputs, self.dropout)

    def describe(self) -> str:
        return f"MLP {self.n_inputs}→{'→'.join(map(str, self.hidden)) or ''}{'→' if self.hidden else ''}{self.n_outputs} ({self.activation})"


class MLP(nn.Module):
    def __init__(self, n_inputs: int, hidden=(4, 2), activation: str = "tanh", n_outputs: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        sizes = [n_inputs, *hidden]
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.output = nn.Linear(sizes[-1], n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer in self.hidden_layers:
            x = self.dropout(self.activation(layer(x)))
        return self.output(x)

    @torch.no_grad()
    def layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """What every neuron outputs for inputs ``x``: one (n, width) tensor per hidden layer
        and the output layer (pre-sigmoid). Used to draw each neuron's small map."""
        outs = []
        x = x.flatten(1)
        for layer in self.hidden_layers:
            x = self.activation(layer(x))
            outs.append(x)
        outs.append(self.output(x))
        return outs
