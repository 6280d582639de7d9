"""The gradient-descent view: one linear neuron y = w·x + b on 1-D data.

The loss landscape over (w, b) is computed exactly (MSE is a quadratic in w and b) and the
optimizer's path is recorded by training the same one-neuron model with the real Trainer,
one optimizer step at a time. A student sees learning rate 0.0001 crawl, 0.003 converge
and 0.1 overshoot and diverge.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from playground.data.split import SplitData
from playground.models.base import build_model
from playground.models.mlp import MLPSpec
from playground.train import TrainConfig, Trainer


@dataclass
class DescentPath:
    w: np.ndarray           # weight after each optimizer step (index 0 = start)
    b: np.ndarray
    loss: np.ndarray        # training loss at each point
    diverged: str | None
    w_grid: np.ndarray
    b_grid: np.ndarray
    loss_grid: np.ndarray   # (len(b_grid), len(w_grid))
    w_best: float
    b_best: float


def mse_grid(x: np.ndarray, y: np.ndarray, w_grid: np.ndarray, b_grid: np.ndarray) -> np.ndarray:
    """Mean squared error of y ≈ w·x + b for every (b, w) pair, exactly, from moments."""
    x, y = x.reshape(-1).astype(np.float64), y.reshape(-1).astype(np.float64)
    sx, sy, sxx, sxy, syy = x.mean(), y.mean(), (x * x).mean(), (x * y).mean(), (y * y).mean()
    W, B = np.meshgrid(w_grid, b_grid)
    return W * W * sxx + B * B + syy + 2 * W * B * sx - 2 * W * sxy - 2 * B * sy


def descent_path(data: SplitData, lr: float, steps: int = 100, optimizer: str = "sgd", seed: int = 0,
                 w0: float | None = None, b0: float | None = None, batch_size: int = 0) -> DescentPath:
    """Train one linear neuron and record (w, b) after every optimizer step."""
    if data.x_train.shape[1] != 1:
        raise ValueError("the gradient-descent view needs a single input feature (x1)")
    model = build_model(MLPSpec(1, (), "linear", 1), seed)
    with torch.no_grad():
        if w0 is not None:
            model.output.weight.fill_(w0)
        if b0 is not None:
            model.output.bias.fill_(b0)
    trainer = Trainer(model, data, TrainConfig(optimizer=optimizer, lr=lr, batch_size=batch_size, seed=seed))
    x = data.x_train.numpy().reshape(-1)
    y = data.y_train.numpy().reshape(-1)

    def point():
        return float(model.output.weight.item()), float(model.output.bias.item())

    ws, bs, losses = [], [], []
    for i in range(steps + 1):
        w, b = point()
        if not (np.isfinite(w) and np.isfinite(b)):
            break
        ws.append(w)
        bs.append(b)
        losses.append(float(np.mean((w * x + b - y) ** 2)))
        if i == steps or trainer.done:
            break
        trainer.step(1)
    # closed-form least squares optimum
    A = np.stack([x, np.ones_like(x)], 1)
    (w_best, b_best), *_ = np.linalg.lstsq(A, y, rcond=None)
    ws_a, bs_a = np.array(ws), np.array(bs)
    finite_w = ws_a[np.abs(ws_a) < 1e3] if len(ws_a) else ws_a
    finite_b = bs_a[np.abs(bs_a) < 1e3] if len(bs_a) else bs_a
    span_w = max(1.0, float(np.abs(np.concatenate([finite_w - w_best, [0]])).max()) * 1.2)
    span_b = max(1.0, float(np.abs(np.concatenate([finite_b - b_best, [0]])).max()) * 1.2)
    span_w, span_b = min(span_w, 5.0), min(span_b, 5.0)
    w_grid = np.linspace(w_best - span_w, w_best + span_w, 80)
    b_grid = np.linspace(b_best - span_b, b_best + span_b, 80)
    return DescentPath(ws_a, bs_a, np.array(losses), trainer.diverged, w_grid, b_grid,
                       mse_grid(x, y, w_grid, b_grid), float(w_best), float(b_best))
