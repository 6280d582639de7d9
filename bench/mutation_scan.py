"""Benchmark: an ESM-1v masked-marginal mutation scan of a 300-residue protein (every position
masked in turn, 300 masked copies) with the t6 architecture, batched vs one masked pass at a time.

    python bench/mutation_scan.py                   # 300 residues, esm2_t6_8M_UR50D architecture
    python bench/mutation_scan.py --length 120      # quicker

The model is esm2_t6_8M_UR50D's architecture (6 layers × 320, 20 heads) with random weights
(``playground.esm.random_model``): timing does not depend on the values of the weights, and
nothing is downloaded. Timed, on the same random protein:

- naive: ``playground.esm.mutation_scan_naive`` - the loop of fair-esm's ESM-1v example
  (variant-prediction/predict.py, 'masked-marginals'): one masked copy per pass through fair-esm's
  own ``model(tokens)``, logits at every position.
- single: ``playground.esm.mutation_scan(batch_size=1, precision='float32')`` - the app's
  side-effect-free forward (fused attention, last layer and LM head only at the masked position),
  still one masked copy per pass.
- batched float32: the same with several masked copies per pass (``SCAN_TOKEN_BUDGET`` tokens).
- scan: the scan as the ESM-2 page runs it: batched, and on a CPU with native bfloat16
  (AVX512-BF16 / AMX) the matrix products in bf16 (float32 sums, layer norms and softmax), the
  embedding code's rule (``--precision float32`` for pure float32).

All agree with the naive loop (max |difference| printed; float32 to ~1e-4, bf16 to ~1 % of the
largest score). On one CPU core a 300-token pass already keeps the core busy, so batching alone
gains little there (see ``single`` vs ``batched``); the speed comes from the fused forward, the
last layer at the mask only and the bf16 products. On a GPU batching is what counts (printed when
one is present). Torch uses ``PLAYGROUND_NUM_THREADS`` threads (default 1, as in the app). Wall and
CPU seconds are both printed (the CPU time is what a busy machine does not inflate). The output
ends with:

    scan_seconds: X      the scan as the page runs it (wall, CPU)
    ratio: Y             naive seconds / scan seconds (CPU time; target >= 3)
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


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=300)
    ap.add_argument("--model", default="esm2_t6_8M_UR50D")
    ap.add_argument("--precision", default="auto", choices=("auto", "float32", "mixed"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    seq = "".join(rng.choice(list(E.AMINO_ACIDS), args.length))
    h = E.random_model(args.model, args.seed)
    prec = E.resolve_precision(h, args.precision)
    print(f"model: {args.model} architecture, random weights ({h.layers} layers × {h.dim})")
    print(f"length: {args.length}")
    print(f"threads: {torch.get_num_threads()}")
    print(f"copies_per_pass: {E._scan_copies(h, args.length, None, None)}")
    print(f"precision: {prec}")
    E.mutation_scan(h, seq[:20], precision=prec)                      # warm-up (bf16 weight copies)

    ref, naive_w, naive_c = timed(lambda: E.mutation_scan_naive(h, seq))
    print(f"naive_seconds: {naive_w:.2f}")
    print(f"naive_cpu_seconds: {naive_c:.2f}")
    one, single_w, single_c = timed(lambda: E.mutation_scan(h, seq, batch_size=1, precision="float32"))
    print(f"single_seconds: {single_w:.2f}")
    print(f"single_cpu_seconds: {single_c:.2f}")
    f32, b32_w, b32_c = timed(lambda: E.mutation_scan(h, seq, precision="float32"))
    print(f"batched_float32_seconds: {b32_w:.2f}")
    print(f"batched_float32_cpu_seconds: {b32_c:.2f}")
    got, scan_w, scan_c = timed(lambda: E.mutation_scan(h, seq, precision=prec))
    print(f"max_abs_diff_float32: {max(np.abs(one - ref).max(), np.abs(f32 - ref).max()):.2e}")
    print(f"max_abs_diff_scan: {np.abs(got - ref).max():.3g} (largest |score| {np.abs(ref).max():.3g})")
    print(f"ratio_batching_float32: {single_c / b32_c:.2f}")
    print(f"ratio_same_forward: {single_c / scan_c:.2f}")
    if torch.cuda.is_available():
        g = E.random_model(args.model, args.seed, device="cuda")
        E.mutation_scan(g, seq[:20])
        _, g1, _ = timed(lambda: E.mutation_scan(g, seq, batch_size=1))
        _, gb, _ = timed(lambda: E.mutation_scan(g, seq))
        print(f"cuda_single_seconds: {g1:.3f}")
        print(f"cuda_scan_seconds: {gb:.3f}")
        print(f"cuda_ratio: {g1 / gb:.1f}")
    print(f"scan_cpu_seconds: {scan_c:.2f}")
    print(f"scan_seconds: {scan_w:.2f}")
    print(f"ratio: {naive_c / scan_c:.2f}")


if __name__ == "__main__":
    main()
