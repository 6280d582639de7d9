"""Benchmark: the genomics-primer exercise on CPU.

Generates a primer-equivalent set (2000 sequences x 50 bp; half carry the motif
CGACCGAACTCC at a random position; 25 % test split), trains the primer CNN preset
(32 filters x 12, max-pool 4, dense 16) with the DNA page's default optimiser settings,
then turns the first-layer filters into PWMs (Basset rule) and reports how well the best
filter matches the planted motif (column-wise Pearson, all offsets, both strands).

    python bench/dna_cnn.py                 # one thread (the library's default)
    python bench/dna_cnn.py --epochs 8 --seed 3

Targets: test accuracy >= 0.97 within <= 10 s on 2 cores; motif_pearson >= 0.85.
Ends with the lines  test_accuracy: X / seconds: Y / motif_pearson: Z.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import playground  # noqa: E402  (sets torch threads: PLAYGROUND_NUM_THREADS, default 1)
from playground import TrainConfig, Trainer  # noqa: E402
from playground.data.dna import planted_motif  # noqa: E402
from playground.data.motifs import PRIMER_CONSENSUS  # noqa: E402
from playground.interpret import activation_pwms, motif_recovery  # noqa: E402
from playground.models import build_model  # noqa: E402
from playground.models.cnn import primer_cnn  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.003, help="Adam learning rate (the page's default)")
    ap.add_argument("--batch", type=int, default=32, help="batch size (the page's default)")
    args = ap.parse_args()

    threads = playground.configure_torch_threads()
    print(f"torch {torch.__version__}, {threads} thread(s) (PLAYGROUND_NUM_THREADS="
          f"{os.environ.get('PLAYGROUND_NUM_THREADS', 'unset: 1')}), {os.cpu_count()} CPU(s) visible")

    t0 = time.perf_counter()
    data_set = planted_motif(PRIMER_CONSENSUS, n=2000, length=50, from_consensus=True, seed=args.seed)
    split = data_set.split(train_fraction=0.75, seed=args.seed)
    t_data = time.perf_counter() - t0
    print(f"data: {data_set.summary()}; train {len(split.y_train)}, test {len(split.y_test)} ({t_data:.2f} s)")

    model = build_model(primer_cnn(length=50, n_outputs=1), seed=args.seed)
    trainer = Trainer(model, split, TrainConfig(optimizer="adam", lr=args.lr, batch_size=args.batch, seed=args.seed,
                                                track_metrics=True))
    t1 = time.perf_counter()
    first_097 = None
    for _ in range(args.epochs):
        rec = trainer.run_epochs(1)
        if first_097 is None and rec["val_accuracy"] >= 0.97:
            first_097 = (trainer.epoch, time.perf_counter() - t0)
        print(f"epoch {trainer.epoch:2d}  train loss {rec['train_loss']:.4f}  test loss {rec['val_loss']:.4f}  "
              f"test accuracy {rec['val_accuracy']:.4f}  AUROC {rec['val_auroc']:.4f}  "
              f"({time.perf_counter() - t1:.2f} s)")
    t_train = time.perf_counter() - t1
    seconds = time.perf_counter() - t0   # data + model + training

    result = trainer.evaluate("test")
    t2 = time.perf_counter()
    pwms = activation_pwms(trainer.model, data_set.one_hot())
    rec = motif_recovery(pwms, data_set.motifs)[0]
    t_interp = time.perf_counter() - t2
    print(f"best filter: {rec['filter'] + 1} ({rec['strand']} strand, {rec['overlap']} columns), "
          f"consensus of its PWM: {''.join('ACGT'[i] for i in pwms.pwms[rec['filter']].argmax(0))} "
          f"(planted {PRIMER_CONSENSUS}); filters -> PWMs + matching {t_interp:.2f} s")
    if first_097:
        print(f"test accuracy first >= 0.97 after epoch {first_097[0]} ({first_097[1]:.2f} s from the start)")
    print(f"training {t_train:.2f} s for {args.epochs} epochs; total (data + model + training) below")
    print(f"test_accuracy: {result['accuracy']:.4f}")
    print(f"seconds: {seconds:.2f}")
    print(f"motif_pearson: {rec['score']:.4f}")


if __name__ == "__main__":
    main()
