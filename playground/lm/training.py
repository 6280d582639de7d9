"""A language model's run through the playground's Trainer (same controls, same live curves).

    tok = Tokenizer("dna", "char")
    corpus = make_corpus("dna", n=800, length=40, seed=0)
    run = lm_run(tok, corpus, "masked", seed=0)          # LMRun(spec, model, data, trainer, tokenizer, corpus)
    run.trainer.run_epochs(10)
    run.trainer.history[-1]       # {'epoch', 'train_loss', 'val_loss' (nats), 'val_bits', 'val_ppl', 'val_acc', ...}

The data is a ``SplitData`` with task "lm_masked" or "lm_causal" (``lm_data``):
- masked: ``x_train`` holds the token rows ([CLS] + tokens, 0-padded); the Trainer masks every
  training batch afresh with its own seeded generator (``masking.mask_tokens``, settings in
  ``data.meta["masking"]``). The validation set is masked once (seeded), so its loss is measured
  on the same blanks every epoch; ``y_val`` holds the targets (-100 where nothing is masked).
- causal: inputs are the rows without their last token, targets the rows shifted by one
  (``masking.causal_pairs``), for training and validation alike.
The loss is the mean cross-entropy over the target positions (nats); the history adds
``val_bits`` (= val_loss / ln 2, bits per token), ``val_ppl`` (= e^val_loss, perplexity) and
``val_acc`` (the share of target tokens predicted right: masked accuracy, or next-token accuracy).
A corpus has training and validation sequences only: there is no test set here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from playground.data.split import SplitData, split_seed
from playground.lm import masking as MK
from playground.lm.models import LMSpec
from playground.lm.tokens import Tokenizer
from playground.models.base import build_model
from playground.train import TrainConfig, Trainer

# Small and fast on a shared 2-core CPU: learns a planted CTCF consensus in ~10-20 s of training.
# Measured (CPU time, one thread, under load): a masked LM on 800 x 30 bp with a planted CTCF consensus reaches
# >= 0.9 accuracy on masked motif bases after ~20 epochs (~8 s); the background stays near chance.
DEFAULTS = dict(n=800, length=30, d_model=64, heads=4, layers=2, ff=128, dropout=0.0, positional="sinusoidal",
                lr=0.003, batch_size=16, optimizer="adam", rate=0.15, mask_frac=0.8, random_frac=0.1, epochs=25)
VAL_MASK_OFFSET = 104729          # the validation masking's seed: split_seed(seed) + this prime


def masking_settings(tok: Tokenizer, rate: float = 0.15, mask_frac: float = 0.8, random_frac: float = 0.1) -> dict:
    """The keyword arguments ``mask_tokens`` gets (what ``data.meta["masking"]`` holds)."""
    MK.check_masking(rate, mask_frac, random_frac)
    return dict(rate=float(rate), mask_frac=float(mask_frac), random_frac=float(random_frac),
                vocab_size=int(tok.vocab_size), mask_id=tok.mask_id, n_special=tok.n_special)


def encode_corpus(tok: Tokenizer, seqs, max_len: int | None = None) -> torch.Tensor:
    """[CLS] + tokens of every sequence, 0-padded to the longest (cut to ``max_len`` positions)."""
    x = tok.encode_batch(seqs)
    if max_len is not None and x.shape[1] > max_len:
        x = x[:, :max_len]
    return x


def lm_data(tok: Tokenizer, corpus, objective: str = "masked", *, rate: float = 0.15, mask_frac: float = 0.8,
            random_frac: float = 0.1, seed: int = 0, max_len: int | None = None) -> SplitData:
    """The corpus as a SplitData for the Trainer (see the module docstring)."""
    if objective not in ("masked", "causal"):
        raise ValueError("objective must be 'masked' or 'causal'")
    xt = encode_corpus(tok, corpus.train, max_len)
    xv = encode_corpus(tok, corpus.val, max_len)
    width = max(xt.shape[1], xv.shape[1])
    xt, xv = (torch.nn.functional.pad(t, (0, width - t.shape[1])) for t in (xt, xv))
    meta = {"dataset": corpus.name, "alphabet": tok.alphabet, "tokenizer": tok.to_dict(), "objective": objective,
            "n_train_tokens": tok.token_count(corpus.train), "n_val_tokens": tok.token_count(corpus.val)}
    if objective == "masked":
        m = masking_settings(tok, rate, mask_frac, random_frac)
        meta["masking"] = m
        g = torch.Generator().manual_seed(split_seed(seed) + VAL_MASK_OFFSET)
        xv_in, yv = MK.mask_validation(xv, g, **m)
        return SplitData(xt, xt.clone(), xt[:0], xt[:0], "lm_masked", n_classes=tok.vocab_size,
                         class_names=list(tok.vocab), meta=meta, x_val=xv_in, y_val=yv)
    x_in, y = MK.causal_pairs(xt)
    v_in, yv = MK.causal_pairs(xv)
    return SplitData(x_in, y, x_in[:0], y[:0], "lm_causal", n_classes=tok.vocab_size, class_names=list(tok.vocab),
                     meta=meta, x_val=v_in, y_val=yv)


def lm_spec(tok: Tokenizer, objective: str = "masked", *, d_model: int = 64, heads: int = 4, layers: int = 2,
            ff: int = 128, dropout: float = 0.0, positional: str = "sinusoidal", norm: str = "pre",
            max_len: int = 512) -> LMSpec:
    return LMSpec(vocab_size=tok.vocab_size, objective=objective, d_model=d_model, heads=heads, layers=layers,
                  ff=ff, dropout=dropout, positional=positional, norm=norm, max_len=max_len)


@dataclass
class LMRun:
    spec: LMSpec
    model: torch.nn.Module
    data: SplitData
    trainer: Trainer
    tokenizer: Tokenizer
    corpus: object

    @property
    def objective(self) -> str:
        return self.spec.objective


def lm_run(tok: Tokenizer, corpus, objective: str = "masked", *, spec: LMSpec | None = None,
           config: TrainConfig | None = None, seed: int = 0, rate: float = 0.15, mask_frac: float = 0.8,
           random_frac: float = 0.1, **arch) -> LMRun:
    """Data + model (seeded) + Trainer for a language model. ``arch``: lm_spec's keywords (d_model ...);
    ``config`` defaults to DEFAULTS (Adam, lr 0.003, batch 16) with this seed."""
    spec = spec or lm_spec(tok, objective, **arch)
    longest = max(len(tok.encode(s)) for s in list(corpus.train) + list(corpus.val)) + 1
    if longest > spec.max_len and spec.positional == "learned":
        raise ValueError(f"the longest sequence has {longest} positions but the model's position table only "
                         f"{spec.max_len}: raise max_len or use sinusoidal positions")
    data = lm_data(tok, corpus, spec.objective, rate=rate, mask_frac=mask_frac, random_frac=random_frac, seed=seed,
                   max_len=spec.max_len)
    config = config or TrainConfig(optimizer="adam", lr=DEFAULTS["lr"], batch_size=DEFAULTS["batch_size"], seed=seed)
    model = build_model(spec, int(config.seed))
    return LMRun(spec, model, data, Trainer(model, data, config), tok, corpus)


def bits(nats: float) -> float:
    return nats / math.log(2)
