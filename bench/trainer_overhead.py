"""Trainer overhead: the playground's Trainer against a bare hand-written PyTorch loop.

    python bench/trainer_overhead.py

Same network (2 -> 8 -> 8 -> 1, tanh), same data (500 points of the circle set, 50 % train),
batch 10, Adam, one CPU thread, same number of optimizer steps. The Trainer also evaluates the
full train and test loss after every epoch (what the page plots); the bare loop does not.
Ends with `ratio: X` (Trainer steps/s / bare steps/s; target >= 0.9).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from playground import TrainConfig, Trainer  # noqa: E402
from playground.data import toy  # noqa: E402
from playground.models import MLPSpec, build_model  # noqa: E402

STEPS = 6000
REPEATS = 3


def bare_loop(data, steps: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    loss_fn = nn.BCEWithLogitsLoss()
    x, y = data.x_train, data.y_train
    n = len(y)
    gen = torch.Generator().manual_seed(seed)
    done = 0
    t0 = time.perf_counter()
    while done < steps:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, 10):
            idx = perm[i:i + 10]
            loss = loss_fn(model(x[idx]).squeeze(-1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done >= steps:
                break
    return steps / (time.perf_counter() - t0)


def trainer_loop(data, steps: int, seed: int = 0) -> float:
    model = build_model(MLPSpec(2, (8, 8), "tanh", 1), seed)
    tr = Trainer(model, data, TrainConfig(optimizer="adam", lr=0.03, batch_size=10, seed=seed))
    t0 = time.perf_counter()
    tr.step(steps)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    torch.set_num_threads(1)
    data = toy.make_split("circle", 500, 0.0, 0.5, 0, ["x1", "x2"])
    bare_loop(data, 300)
    trainer_loop(data, 300)  # warm-up
    bare, ours = [], []
    for r in range(REPEATS):  # interleaved, best of each, to be fair to both on a shared machine
        bare.append(bare_loop(data, STEPS, r))
        ours.append(trainer_loop(data, STEPS, r))
    b, t = max(bare), max(ours)
    print(f"network: 2 -> 8 -> 8 -> 1 tanh, 250 training points, batch 10, Adam, {STEPS} steps x {REPEATS}")
    print(f"bare_steps_per_s: {b:.0f}")
    print(f"trainer_steps_per_s: {t:.0f}")
    print("(the Trainer uses fused Adam; the bare loop uses torch.optim.Adam as most tutorials write it)")
    print("(the Trainer uses fused Adam; the bare loop uses torch.optim.Adam as most tutorials write it)")
    print(f"ratio: {t / b:.3f}")


if __name__ == "__main__":
    main()
