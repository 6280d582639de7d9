"""Results for the Neural Network Basics page, computed from a trained MLP.

The page's settings and its run are in ``playground.setups.basics``. The page asks for plain arrays (what the output looks like over the input square, what
each neuron computes, how many parameters each layer has) and never touches the model.
"""
from __future__ import annotations

import numpy as np
import torch

from playground.data.toy import FEATURES, TOY_SETS, featurize, grid
from playground.models.mlp import MLP, MLPSpec
from playground.setups.basics import N_POINTS, build  # noqa: F401 (N_POINTS re-exported)
from playground.train import Trainer


def make_trainer(settings: dict) -> Trainer:
    """The run the Neural Network Basics page trains for these settings (seeded data, weights, shuffling;
    missing settings take the page's defaults, ``playground.setups.basics.PARAMS``).
    Lessons and notebooks use it to reproduce a page exactly."""
    return build(settings).make_trainer()


def compare_optimizers(settings: dict, optimizers=("sgd", "momentum", "adam", "adamw"), epochs: int = 50) -> dict:
    """Train the page's network once per optimizer (same data, initial weights, shuffling and
    learning rate) for ``epochs`` epochs. Returns {optimizer: history}."""
    out = {}
    for opt in optimizers:
        tr = make_trainer({**settings, "optimizer": opt})
        tr.run_epochs(int(epochs))
        out[opt] = tr.history
    return out


def output_on_grid(trainer: Trainer, dataset: str, features, resolution: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(raw grid points, predictions): P(class 1) for classification, the value for regression."""
    dims = TOY_SETS[dataset].dims
    pts = grid(dims, resolution)
    pred = trainer.predict(torch.from_numpy(featurize(pts, features)))
    return pts, pred


def _scale(v: np.ndarray) -> np.ndarray:
    m = float(np.abs(v).max()) if v.size else 1.0
    return v / m if m > 1.0 else v


def network_snapshot(trainer: Trainer, dataset: str, features, tile: int = 12) -> dict:
    """What the network diagram needs: node names, each node's output over the input
    square as a (tile x tile) map scaled to [-1, 1], weights (out, in) and biases."""
    model = trainer.model
    if not isinstance(model, MLP):
        raise TypeError("network_snapshot draws MLPs")
    dims = TOY_SETS[dataset].dims
    t = np.linspace(-6, 6, tile, dtype=np.float32)
    if dims == 2:
        g1, g2 = np.meshgrid(t, t)
        pts = np.stack([g1.ravel(), g2.ravel()], 1)
    else:
        pts = np.repeat(t, tile)[:, None].reshape(tile, tile).T.reshape(-1, 1)
    feats = featurize(pts, features)
    x = torch.from_numpy(feats).to(trainer.device)
    was = model.training
    model.eval()
    outs = model.layer_outputs(x)
    if was:
        model.train()

    def to_tiles(a: np.ndarray) -> np.ndarray:  # (n_points, n_nodes) -> (n_nodes, tile, tile)
        return np.stack([_scale(a[:, k]).reshape(tile, tile)[::-1] if dims == 2 else _scale(a[:, k]).reshape(tile, tile)
                         for k in range(a.shape[1])]) if a.shape[1] else np.zeros((0, tile, tile))

    tiles = [to_tiles(feats)]
    for o in outs[:-1]:
        tiles.append(to_tiles(o.cpu().numpy()))
    final = outs[-1].cpu().numpy()
    if trainer.task == "binary":
        final = 2 * (1 / (1 + np.exp(-final)) - 0.5)
    tiles.append(to_tiles(np.clip(final, -1, 1)))
    names = [[FEATURES[f][0] for f in features]]
    for li, layer in enumerate(model.hidden_layers):
        names.append([f"layer {li + 1}, neuron {j + 1}" for j in range(layer.out_features)])
    names.append(["output"])
    layers = [*model.hidden_layers, model.output]
    weights = [layer.weight.detach().cpu().numpy() for layer in layers]
    biases = [layer.bias.detach().cpu().numpy() for layer in layers]
    return {"layer_names": names, "tiles": tiles, "weights": weights, "biases": biases}


def parameter_lines(spec: MLPSpec) -> list[str]:
    """The parameter count written out as the course does:
    'Layer 1: 2×3 weights + 3 biases = 9', ..., 'Total: 13'."""
    sizes = [spec.n_inputs, *spec.hidden, spec.n_outputs]
    lines, total = [], 0
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        n = a * b + b
        total += n
        name = f"Layer {i + 1}" if i < len(spec.hidden) else "Output layer"
        lines.append(f"{name}: {a}×{b} weights + {b} biases = {n}")
    lines.append(f"Total: {total}")
    return lines
