"""Language models: n-gram vs masked Transformer on a planted-motif DNA corpus, pretrain -> fine-tune,
and the Trainer against a bare PyTorch loop on the same LM.

    python bench/language_model.py

Corpus: 800 x 30 bp, a CTCF consensus planted in every sequence, 80 / 20 train / validation
(seed 0); single-letter tokens. The best n-gram (order 1-6, interpolated backoff) is chosen on
validation. The masked LM (playground.lm.training.DEFAULTS: d 64, 4 heads, 2 layers, Adam 0.003,
batch 16, 15 % masking 80/10/10) trains 25 epochs through the Trainer. Fine-tune: 600 labelled
sequences (motif vs the same site shuffled), 100 labels, 20 epochs, pretrained body + new head
against the same architecture from scratch, test accuracy scored once each.
Timings are CPU time (time.process_time, one thread): the machine is shared. lm_vs_bare interleaves
Trainer and bare epochs (same spec, init, masking, batch and per-epoch validation).

Ends with `train_tokens_per_s`, `ngram_val_bits`, `lm_val_bits`, `finetune_gain` (target >= 0.05)
and `lm_vs_bare` (Trainer epochs/s / bare epochs/s, target >= 0.95).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from playground import TrainConfig, Trainer  # noqa: E402
from playground.lm import finetune, ngram, views  # noqa: E402
from playground.lm.corpus import make_corpus  # noqa: E402
from playground.lm.masking import lm_loss, mask_tokens  # noqa: E402
from playground.lm.tokens import Tokenizer  # noqa: E402
from playground.lm.training import DEFAULTS, lm_data, lm_run, lm_spec  # noqa: E402
from playground.models import build_model  # noqa: E402

SEED = 0
ROUNDS = 6          # interleaved epochs each for lm_vs_bare


def bare_epoch(model, opt, x_train, x_val, y_val, gen, masking, batch_size):
    """One epoch as a person would write it: shuffle, mask each batch, step; then the validation loss."""
    model.train()
    order = torch.randperm(len(x_train), generator=gen)
    for start in range(0, len(x_train), batch_size):
        xb, yb = mask_tokens(x_train[order[start:start + batch_size]], gen, **masking)
        loss = lm_loss(model(xb), yb)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        val = float(lm_loss(model(x_val), y_val))
    return val


def lm_vs_bare(tok, corpus) -> float:
    data = lm_data(tok, corpus, "masked", seed=SEED)
    spec = lm_spec(tok, "masked")
    cfg = TrainConfig(optimizer="adam", lr=DEFAULTS["lr"], batch_size=DEFAULTS["batch_size"], seed=SEED)
    tr = Trainer(build_model(spec, SEED), data, cfg)
    bare = build_model(spec, SEED)
    opt = torch.optim.Adam(bare.parameters(), lr=DEFAULTS["lr"], fused=True)
    gen = torch.Generator().manual_seed(SEED)
    m = data.meta["masking"]
    tr.run_epochs(1)                                            # warm-up, both
    bare_epoch(bare, opt, data.x_train, data.x_val, data.y_val, gen, m, cfg.batch_size)
    t_tr = t_bare = 0.0
    for _ in range(ROUNDS):
        t0 = time.process_time()
        tr.run_epochs(1)
        t_tr += time.process_time() - t0
        t0 = time.process_time()
        bare_epoch(bare, opt, data.x_train, data.x_val, data.y_val, gen, m, cfg.batch_size)
        t_bare += time.process_time() - t0
    print(f"Trainer {ROUNDS / t_tr:.2f} epochs/s, bare loop {ROUNDS / t_bare:.2f} epochs/s (CPU time)")
    return t_bare / t_tr


def main():
    torch.set_num_threads(1)
    tok = Tokenizer("dna", "char")
    corpus = make_corpus("dna", DEFAULTS["n"], DEFAULTS["length"], seed=SEED, motifs=("CTCF",))
    print(corpus.description)
    best = ngram.fit_corpus(tok, corpus)
    print("n-gram validation bits per order:", {n: round(b, 4) for n, b in best["val_bits"].items()},
          f"-> order {best['order']}")
    ngram_bits = best["val_bits"][best["order"]]

    run = lm_run(tok, corpus, "masked", seed=SEED)
    tokens = tok.token_count(corpus.train)
    t0 = time.process_time()
    run.trainer.run_epochs(DEFAULTS["epochs"])
    secs = time.process_time() - t0
    rec = run.trainer.history[-1]
    acc = views.motif_accuracy(run.model, tok, corpus)
    print(f"masked LM: {DEFAULTS['epochs']} epochs in {secs:.1f} s CPU; validation {rec['val_bits']:.4f} bits/token, "
          f"perplexity {rec['val_ppl']:.3f}, masked accuracy {rec['val_acc']:.3f}; motif bases {acc['motif']:.3f}, "
          f"background {acc['background']:.3f} (chance {acc['chance']:.3f})")

    labelled = finetune.motif_task(corpus, 600)
    t0 = time.process_time()
    res = finetune.finetune_compare(run.model, tok, labelled, n_labels=100, epochs=20, seed=SEED)
    sc = res.scores()
    print(f"fine-tune at 100 labels: pretrained {sc['pretrained']:.3f}, scratch {sc['scratch']:.3f} test accuracy "
          f"({time.process_time() - t0:.1f} s CPU)")
    ratio = lm_vs_bare(tok, corpus)

    print(f"train_tokens_per_s: {tokens * DEFAULTS['epochs'] / secs:.0f}")
    print(f"ngram_val_bits: {ngram_bits:.4f}")
    print(f"lm_val_bits: {rec['val_bits']:.4f}")
    print(f"finetune_gain: {sc['gap']:.4f}")
    print(f"lm_vs_bare: {ratio:.3f}")


if __name__ == "__main__":
    main()
