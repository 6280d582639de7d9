"""BERT masking: hide some tokens and ask the model to fill them in.

    inputs, targets = mask_tokens(x, generator, rate=0.15, mask_frac=0.8, random_frac=0.1)

Of the maskable positions (never [PAD], [CLS] or another special token), each is chosen with
probability ``rate``. A chosen position becomes [MASK] with probability ``mask_frac``, a random
ordinary token with probability ``random_frac``, and stays as it is otherwise (BERT: 80 / 10 /
10). ``targets`` holds the original token at the chosen positions and -100 everywhere else, so
the loss (``lm_loss``) counts the chosen positions only.

Why not always [MASK]? At fine-tuning and prediction time the input never contains [MASK]; a
model that only ever predicted at [MASK] would learn nothing useful about the visible tokens.
The 10 % random and 10 % unchanged make it keep a prediction for every position.

The draws come from the ``generator`` (the Trainer's seeded one), in a fixed order: the chosen
positions, then the kind of replacement, then the random tokens. The generated training script
copies this function, so it draws exactly the same masks.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from playground.lm.tokens import MASK_ID, N_SPECIAL    # ids 0..3 are [PAD] [MASK] [UNK] [CLS]

IGNORE = -100


def check_masking(rate: float, mask_frac: float, random_frac: float) -> None:
    """ValueError unless 0 < rate <= 1 and the replacement shares are in [0, 1] and add up to at most 1."""
    if not 0.0 < float(rate) <= 1.0:
        raise ValueError("the masking rate must be above 0 and at most 1")
    if not (0.0 <= mask_frac <= 1.0 and 0.0 <= random_frac <= 1.0 and mask_frac + random_frac <= 1.0 + 1e-9):
        raise ValueError("the [MASK] and random shares must each be in [0, 1] and add up to at most 1")


def mask_tokens(tokens: torch.Tensor, generator: torch.Generator | None = None, rate: float = 0.15,
                mask_frac: float = 0.8, random_frac: float = 0.1, vocab_size: int | None = None,
                mask_id: int = MASK_ID, n_special: int = N_SPECIAL) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for masked-language-model training; see the module docstring.
    ``tokens`` (B, L) long; ``vocab_size`` bounds the random replacements (default: max id + 1)."""
    if vocab_size is None:
        vocab_size = int(tokens.max()) + 1 if tokens.numel() else n_special + 1
    dev = tokens.device
    chosen = (torch.rand(tokens.shape, generator=generator).to(dev) < rate) & (tokens >= n_special)
    kind = torch.rand(tokens.shape, generator=generator).to(dev)
    random_ids = torch.randint(n_special, max(n_special + 1, int(vocab_size)), tokens.shape,
                               generator=generator).to(dev)
    inputs = torch.where(chosen & (kind < mask_frac), torch.full_like(tokens, mask_id), tokens)
    inputs = torch.where(chosen & (kind >= mask_frac) & (kind < mask_frac + random_frac), random_ids, inputs)
    targets = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
    return inputs, targets


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) over the positions with a target (targets != -100); 0 when a
    batch has none (a tiny batch where nothing was masked), never NaN."""
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE,
                            reduction="sum")
    return total / (targets != IGNORE).sum().clamp(min=1)


def mask_validation(tokens: torch.Tensor, generator: torch.Generator, rate: float = 0.15, mask_frac: float = 0.8,
                    random_frac: float = 0.1, vocab_size: int | None = None, mask_id: int = MASK_ID,
                    n_special: int = N_SPECIAL) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation set's masking, drawn once (its loss is measured on the same blanks every
    epoch): ``mask_tokens``, then every sequence left without a blank gets one [MASK] at a random
    ordinary token, so that a short sequence (or a small upload) still counts."""
    inputs, targets = mask_tokens(tokens, generator, rate, mask_frac, random_frac, vocab_size, mask_id, n_special)
    pick = torch.rand(tokens.shape, generator=generator).to(tokens.device)
    ordinary = tokens >= n_special
    empty = ((targets == IGNORE).all(1) & ordinary.any(1)).nonzero().flatten()
    for i in empty.tolist():
        j = int(torch.where(ordinary[i], pick[i], torch.full_like(pick[i], -1.0)).argmax())
        inputs[i, j], targets[i, j] = mask_id, tokens[i, j]
    return inputs, targets


def causal_pairs(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for next-token training: inputs = tokens[:, :-1], targets = tokens[:, 1:]
    with padding as -100 ([CLS] at position 0 makes the first letter a target too)."""
    inputs, targets = tokens[:, :-1], tokens[:, 1:].clone()
    targets[targets == 0] = IGNORE
    return inputs.contiguous(), targets
