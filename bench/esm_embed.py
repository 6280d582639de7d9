"""Benchmark: embedding proteins with ESM-2, the app's batched path vs the textbook loop.

    python bench/esm_embed.py                 # 500 random proteins of 50-500 aa, t6 architecture
    python bench/esm_embed.py --n 100         # quicker
    python bench/esm_embed.py --breakdown     # also: the app's path with one protein per batch

The model is esm2_t6_8M_UR50D's architecture (6 layers × 320, 20 heads) with random weights:
timing and memory do not depend on the values of the weights, and nothing is downloaded.

- app (batched): ``playground.esm.embed`` - proteins sorted by length into batches of at most
  ``--token-budget`` tokens, a side-effect-free forward with fused attention
  (scaled_dot_product_attention), stopping at the requested layer, no masked-LM head, and on a
  CPU with native bfloat16 (AVX512-BF16/AMX) the matrix products in bf16 (the app's default
  there; ``--precision float32`` for pure float32); the embedding cache is switched off so every
  protein is computed.
- naive: ``playground.esm.embed_naive`` - one protein at a time through fair-esm's own
  ``model(tokens, repr_layers=[6])`` under ``torch.no_grad()``, as in fair-esm's README.

Both give the same mean-pooled embeddings (checked below: max difference and the smallest cosine
similarity). The two are timed on the same
proteins interleaved in blocks (app, naive, app, naive ...), so a busy machine slows both alike;
the CPU-time ratio is printed too. Torch uses
``PLAYGROUND_NUM_THREADS`` threads (default 1, as in the app). With a CUDA GPU the same is measured
there too (float32 and bfloat16), printed before the final CPU lines. The output ends with:

    residues_per_s: X          app, CPU
    naive_residues_per_s: Y    naive loop, CPU
    ratio: Z                   X / Y (target >= 2)
    peak_rss_mb: M             peak resident memory of the process (target <= 1200)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PLAYGROUND_OFFLINE", "1")       # never download anything

import numpy as np  # noqa: E402
import torch  # noqa: E402

import playground  # noqa: E402,F401  (sets the torch thread count)
from playground import esm as E  # noqa: E402


def random_proteins(n: int, lo: int, hi: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.array(list(E.AMINO_ACIDS))
    return ["".join(rng.choice(letters, int(rng.integers(lo, hi + 1)))) for _ in range(n)]


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure(handle, seqs, budget, chunks: int, breakdown: bool, label: str, precision: str = "auto") -> dict:
    """Time both paths on the same proteins, interleaved in ``chunks`` blocks (app, naive, app,
    naive, ...) so that a noisy machine slows both alike. Wall time and this process's CPU time
    are both recorded."""
    residues = sum(map(len, seqs))
    precision = E.resolve_precision(handle, precision)
    E.embed(handle, seqs[:4], use_cache=False, token_budget=budget, precision=precision)   # warm-up
    E.embed_naive(handle, seqs[:2])
    wall = {"app": 0.0, "naive": 0.0, "one": 0.0}
    cpu = {"app": 0.0, "naive": 0.0, "one": 0.0}
    outs = {"app": [], "naive": []}
    size = -(-len(seqs) // max(1, chunks))
    runs = {"app": lambda part: E.embed(handle, part, use_cache=False, token_budget=budget,
                                        precision=precision).vectors,
            "naive": lambda part: E.embed_naive(handle, part),
            "one": lambda part: E.embed(handle, part, use_cache=False, token_budget=1,
                                        precision="float32").vectors}
    for start in range(0, len(seqs), size):
        part = seqs[start: start + size]
        for name in (("app", "naive", "one") if breakdown else ("app", "naive")):
            t0, c0 = time.perf_counter(), time.process_time()
            out = runs[name](part)
            _sync()
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
            if name in outs:
                outs[name].append(out)
    app, naive = np.concatenate(outs["app"]), np.concatenate(outs["naive"])
    diff = float(np.abs(app - naive).max())
    cos = float(((app * naive).sum(1) / np.linalg.norm(app, axis=1) / np.linalg.norm(naive, axis=1)).min())
    print(f"[{label}] app precision: {precision} ({E.PRECISIONS[precision]})", flush=True)
    print(f"[{label}] app batched: {wall['app']:.1f} s wall ({cpu['app']:.1f} s CPU), "
          f"{residues / wall['app']:,.0f} residues/s", flush=True)
    print(f"[{label}] naive loop:  {wall['naive']:.1f} s wall ({cpu['naive']:.1f} s CPU), "
          f"{residues / wall['naive']:,.0f} residues/s", flush=True)
    print(f"[{label}] ratio by CPU time (less sensitive to other load): {cpu['naive'] / cpu['app']:.2f}", flush=True)
    print(f"[{label}] app vs naive embeddings: max |difference| {diff:.2e}, smallest cosine similarity {cos:.6f}",
          flush=True)
    if breakdown:
        print(f"[{label}] app path in float32, one protein per batch: {residues / wall['one']:,.0f} residues/s -> "
              f"from the float32 forward alone {wall['naive'] / wall['one']:.2f}x, from batching and precision "
              f"{wall['one'] / wall['app']:.2f}x", flush=True)
    return {"app": residues / wall["app"], "naive": residues / wall["naive"], "diff": diff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="number of proteins (default 500)")
    ap.add_argument("--min-len", type=int, default=50)
    ap.add_argument("--max-len", type=int, default=500)
    ap.add_argument("--model", default="esm2_t6_8M_UR50D", choices=tuple(E.CATALOGUE))
    ap.add_argument("--token-budget", type=int, default=0, help="tokens per batch (default: the app's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunks", type=int, default=5, help="interleave the two paths in this many blocks")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time the app's path in float32, one protein at a time")
    ap.add_argument("--precision", default="auto", choices=("auto", "float32", "mixed"),
                    help="the app path's precision on the CPU (default: the app's, i.e. auto)")
    ap.add_argument("--cpu-only", action="store_true", help="skip CUDA even when a GPU is present")
    args = ap.parse_args()

    seqs = random_proteins(args.n, args.min_len, args.max_len, args.seed)
    residues = sum(map(len, seqs))
    print(f"{args.n} random proteins, {args.min_len}-{args.max_len} aa, {residues:,} residues; {args.model} "
          f"architecture with random weights; torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)",
          flush=True)

    if torch.cuda.is_available() and not args.cpu_only:
        print(f"GPU: {torch.cuda.get_device_name(0)}", flush=True)
        for bf16 in (False, True):
            h = E.random_model(args.model, seed=args.seed, device="cuda", bf16=bf16)
            budget = args.token_budget or E.default_token_budget(h)
            tag = "cuda_bf16" if bf16 else "cuda"
            r = measure(h, seqs, budget, args.chunks, args.breakdown, f"{tag}, budget {budget}")
            print(f"{tag}_residues_per_s: {r['app']:.0f}")
            print(f"{tag}_naive_residues_per_s: {r['naive']:.0f}")
            print(f"{tag}_ratio: {r['app'] / r['naive']:.2f}")
            print(f"{tag}_peak_gpu_mb: {torch.cuda.max_memory_allocated() / 2 ** 20:.0f}", flush=True)
            E.unload(h.key)
            del h
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    h = E.random_model(args.model, seed=args.seed, device="cpu")
    budget = args.token_budget or E.default_token_budget(h)
    r = measure(h, seqs, budget, args.chunks, args.breakdown, f"cpu, budget {budget}", args.precision)
    print(f"residues_per_s: {r['app']:.0f}")
    print(f"naive_residues_per_s: {r['naive']:.0f}")
    print(f"ratio: {r['app'] / r['naive']:.2f}")
    print(f"peak_rss_mb: {E.peak_rss_mb():.0f}")


if __name__ == "__main__":
    main()
