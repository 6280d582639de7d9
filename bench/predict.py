"""Benchmark: predictions for 10,000 DNA sequences of 200 bp with a CNN bundle on CPU.

What is timed is what the Predict page does after you press "Predict": read the pasted FASTA
text (checked letter by letter against the model's alphabet and length), one-hot encode in
batches, run the CNN, and build the results table and its CSV download. The bundle is the
genomics-primer CNN (32 filters x 12, max-pool 4, dense 16) trained for two epochs on a small
planted-CTCF set of 200 bp, saved to bytes and loaded back through the safe loader (as an
upload would be).

    python bench/predict.py                  # one thread (the library's default)
    python bench/predict.py --n 50000 --repeats 3
    PLAYGROUND_NUM_THREADS=2 python bench/predict.py

Target: sequences_per_s >= 5000 (end to end: FASTA text -> table + CSV).
Ends with the line  sequences_per_s: X
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import playground  # noqa: E402  (sets torch threads: PLAYGROUND_NUM_THREADS, default 1)
from playground import TrainConfig, Trainer  # noqa: E402
from playground.bundle import bundle_from_trainer, load_bundle  # noqa: E402
from playground.data.dna import planted_motif  # noqa: E402
from playground.models import build_model  # noqa: E402
from playground.models.cnn import primer_cnn  # noqa: E402
from playground.predict import predict, read_input  # noqa: E402


def fasta(n: int, length: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=(n, length))]
    return "".join(f">seq{i + 1}\n{row.tobytes().decode()}\n" for i, row in enumerate(letters))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="sequences to predict (default 10000)")
    ap.add_argument("--length", type=int, default=200, help="sequence length in bp (default 200)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats; the best is reported (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), playground {playground.__version__}")
    t0 = time.perf_counter()
    ds = planted_motif("CTCF", n=1000, length=args.length, seed=args.seed)
    spec = primer_cnn(args.length, 1)
    tr = Trainer(build_model(spec, args.seed), ds.split(0.75, args.seed),
                 TrainConfig(optimizer="adam", lr=0.003, batch_size=32, seed=args.seed))
    tr.run_epochs(2)
    raw = bundle_from_trainer(tr, spec, page="dna", dataset=ds.name).to_bytes()
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    bundle = load_bundle(raw, filename="bench_cnn.pt")
    t_load = time.perf_counter() - t0
    print(f"bundle: {spec.describe()}, {len(raw) / 1024:.0f} kB; trained 2 epochs in {t_train:.1f} s; "
          f"safe load {t_load * 1000:.0f} ms")

    text = fasta(args.n, args.length, args.seed + 1)
    print(f"input: {args.n:,} sequences x {args.length} bp as FASTA text ({len(text) / 1e6:.1f} MB)")
    best = None
    for r in range(args.repeats):
        t0 = time.perf_counter()
        parsed = read_input(bundle, text=text)
        t1 = time.perf_counter()
        result = predict(bundle, parsed)
        t2 = time.perf_counter()
        frame = result.frame()
        csv = result.to_csv()
        t3 = time.perf_counter()
        total = t3 - t0
        print(f"run {r + 1}: read+check {t1 - t0:.3f} s, encode+model {t2 - t1:.3f} s, table+CSV {t3 - t2:.3f} s "
              f"-> {total:.3f} s ({args.n / total:,.0f} sequences/s)")
        if best is None or total < best:
            best = total
    assert len(frame) == args.n and csv.count("\n") == args.n + 1
    print(f"positives predicted: {(result.probs[:, 1] >= 0.5).mean():.1%} (random sequences: mostly negative)")
    print(f"sequences_per_s: {args.n / best:.0f}")


if __name__ == "__main__":
    main()
