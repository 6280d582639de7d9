"""Padding waste of length-bucketed batches (playground.data.buckets) on a length-skewed protein set.

    python bench/padding.py            # the figures (a few seconds)
    python bench/padding.py --speed    # also one training epoch of the page's CNN, bucketed vs not

The set: 2,352 generated proteins (the size of the course's solubility CSV), random residues,
lengths log-uniform in 50-1,000 (most proteins short, a long tail); tokenised and split 80/20 by the
Sequence Models page's own code (``protein.to_split``, padded to the longest protein). Batches: the
page's default batch size (32). Figures are computed positions / real positions over one epoch:
- ``padding_waste``: length-bucketed batches, each padded to its own longest member;
- ``padding_waste_unbucketed``: shuffled batches padded to the set's longest (the Trainer today);
- ``padding_waste_trimmed_random``: shuffled batches each cut to its own longest (no buckets).
Ends with ``padding_waste: X`` (target <= 1.3) and ``padding_waste_unbucketed: Y``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from playground.data.buckets import (LengthBuckets, lengths_of, padding_figures, random_batches,  # noqa: E402
                                     skewed_protein_lengths, trim)


def epoch_seconds(n: int = 2352, seed: int = 0) -> dict:
    """Seconds for one training epoch (Adam, batch 32) of the Sequence Models page's CNN on the same
    kind of set, with plain batches padded to the longest protein and with bucketed batches."""
    import numpy as np

    from playground.compare import make_spec
    from playground.data import protein as P
    from playground.models.base import build_model
    from playground.train import loss_function

    lens = skewed_protein_lengths(n, 50, 1000, seed)
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list(P.AMINO), k)) for k in lens]
    y = rng.normal(size=n).astype(np.float32)
    data = P.to_split(P.ProteinSet(seqs, y, "regression", []), seed=seed)
    x, yt = data.x_train, data.y_train
    lengths = lengths_of(x)
    loss_fn = loss_function("regression")
    out = {}
    for name in ("unbucketed", "bucketed"):
        model = build_model(make_spec("cnn", "protein", data, {}), seed=0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(seed)
        if name == "bucketed":
            plan = LengthBuckets(lengths, 32).epoch_plan(g)
        else:
            plan = [(idx, x.shape[1]) for idx in random_batches(len(x), 32, g)]
        t0 = time.perf_counter()
        for idx, length in plan:
            xb, yb = trim(x, yt, idx, length=length)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        out[name] = time.perf_counter() - t0
    return out


def main(argv: list[str]) -> None:
    for kind in ("uniform", "log-uniform"):
        f = padding_figures(kind=kind)
        print(f"# {f['n_train']} training proteins, {kind} lengths 50-1000 (padded to {f['padded_length']}), "
              f"batch {f['batch_size']}: {f['batches']} bucketed batches in {f['n_buckets']} buckets, "
              f"{f['batches_unbucketed']} plain")
        print(f"#   {kind}: bucketed {f['padding_waste']:.3f}, plain batches cut to their own longest "
              f"{f['padding_waste_trimmed_random']:.3f}, plain padded to the longest {f['padding_waste_unbucketed']:.3f}")
    if "--speed" in argv:
        s = epoch_seconds()
        print(f"epoch_seconds_unbucketed: {s['unbucketed']:.2f}")
        print(f"epoch_seconds_bucketed: {s['bucketed']:.2f}")
        print(f"epoch_speedup: {s['unbucketed'] / s['bucketed']:.2f}")
    print(f"padding_waste_trimmed_random: {f['padding_waste_trimmed_random']:.3f}")
    print(f"padding_waste: {f['padding_waste']:.3f}")
    print(f"padding_waste_unbucketed: {f['padding_waste_unbucketed']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
