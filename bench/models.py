"""Benchmark: training throughput of the sequence models (sequences per second, forward + backward +
optimizer step) on a 1000 × 200 bp DNA set (the motif-grammar generator), CPU and, when PyTorch sees
one, CUDA.

    python bench/models.py                    # one CPU thread (the library's default)
    PLAYGROUND_NUM_THREADS=2 python bench/models.py
    python bench/models.py --batch 64 --epochs 2 --course

Models: the run comparison's defaults (what the page trains on a CPU) - CNN (2 × Conv1d k7, 32
channels), LSTM (bidirectional, 32 hidden), Transformer (d 32, 4 heads, 2 layers, ff 64) and the
hybrid CNN+Transformer (CPU preset, pooled to 64 positions); ``--course`` adds the hybrid at the
course's sizes (1.3 M parameters). Each model trains one untimed warm-up pass of 5 batches, then
``--epochs`` timed epochs over the 1000 sequences in mini-batches of ``--batch``.
Each result is printed as a line ``name: X seq/s`` (name carries the device, e.g. ``CNN (cpu)``).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import playground  # noqa: E402  (sets torch threads: PLAYGROUND_NUM_THREADS, default 1)
from playground.compare import default_specs  # noqa: E402
from playground.data import protein as P  # noqa: E402
from playground.models import build_model, count_parameters  # noqa: E402
from playground.models.hybrid import HYBRID_COURSE  # noqa: E402


def throughput(spec, x: torch.Tensor, y: torch.Tensor, device: str, batch: int, epochs: int, seed: int) -> float:
    """Sequences per second for forward + backward + Adam step, averaged over ``epochs`` epochs."""
    model = build_model(spec, seed).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = x.to(device), y.to(device)
    gen = torch.Generator().manual_seed(seed)

    def step(idx):
        out = model(x[idx]).reshape(-1)
        loss = F.binary_cross_entropy_with_logits(out, y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(5):                                     # warm-up (allocator, kernels, caches)
        step(torch.arange(i * batch, (i + 1) * batch) % len(x))
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            step(perm[i: i + batch])
    if device == "cuda":
        torch.cuda.synchronize()
    return epochs * len(x) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--course", action="store_true", help="also the hybrid at the course's sizes (slow on a CPU)")
    args = ap.parse_args()

    ps = P.builtin_set("dna_grammar", args.n, args.length, args.seed)
    data = P.to_split(ps, "random", 0.8, args.seed)
    x = torch.cat([data.x_train, data.x_test])
    y = torch.cat([data.y_train, data.y_test]).float()
    specs = default_specs("dna", data, ("cnn", "lstm", "transformer", "hybrid"))
    specs = {("Hybrid" if k.startswith("Hybrid") else k): v for k, v in specs.items()}
    if args.course:
        specs["Hybrid (course sizes)"] = dataclasses.replace(HYBRID_COURSE, n_outputs=1)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"# {len(x)} sequences × {x.shape[1]} bp, batch {args.batch}, {args.epochs} epoch(s); "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)"
          + (f", GPU {torch.cuda.get_device_name(0)}" if "cuda" in devices else ", no GPU"))
    for name, spec in specs.items():
        print(f"#   {name}: {count_parameters(build_model(spec, 0)):,} parameters — {spec.describe()}")
    for device in devices:
        for name, spec in specs.items():
            rate = throughput(spec, x, y, device, args.batch, args.epochs, args.seed)
            print(f"{name} ({device}): {rate:.0f} seq/s", flush=True)


if __name__ == "__main__":
    main()
