"""Batches of similar length: length-bucketed mini-batches for variable-length token sequences.

Proteins (and uploaded DNA) of different lengths are stored as one LongTensor (n, L) of token ids,
0-padded on the right to the longest sequence of the whole set (``playground.data.protein.to_split``).
Feeding random batches of that tensor makes every batch as long as the longest protein: on a set
with lengths 50-1,000 (log-uniform) about 3 of every 4 positions a model computes on are padding.
This module cuts that waste without changing a single loss value:

1. ``lengths_of(x)``: the true length of every row (up to its last real token).
2. ``LengthBuckets``: sequences sorted by length are cut once into buckets of similar length.
   Every epoch, each bucket's members are shuffled and cut into batches, then the order of all the
   batches is shuffled (so an epoch does not run short to long). A batch holds at most
   ``batch_size`` sequences and, with a ``token_budget``, at most ``token_budget // (the bucket's
   longest length)`` of them (at least one). Every example appears exactly once per epoch, and the
   whole epoch is a function of the ``torch.Generator`` passed in (the Trainer's own).
3. ``trim(x, y, idx, lengths)``: the batch, padded only to its own longest member (per-residue
   labels are cut with it; positions cut off are padding whose labels are -100).
4. ``padding_waste(lengths, batches)``: computed positions / real positions over one epoch
   (1.0 = no padding at all; the positions of a padded batch are its size x its longest length).
5. For evaluation: ``sorted_batches`` (length-sorted, no randomness) and ``outputs_by_length(model,
   x)``, which returns what ``model(x)`` returns, computed batch by batch at each batch's own length.

The models take care of padding themselves (masks from token 0, packed RNNs, masked pooling), so a
sequence's output does not depend on how much padding its batch has; ``tests/test_buckets.py``
checks that for every family the Sequence Models page builds, and that the mean loss over a
bucketed epoch equals the loss over the same examples padded to the global length.

Cheap per step: bucket membership and batch sizes are computed once; an epoch is one ``argsort``
of random keys, one ``split`` and one shuffle of the batch list (no Python loop over examples).

``python -m playground.data.buckets`` prints ``padding_waste`` for a length-skewed protein set.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch

PAD_ID = 0
IGNORE = -100


# --------------------------------------------------------------------------------------------
# lengths
def lengths_of(x: torch.Tensor, pad_id: int = PAD_ID, y: torch.Tensor | None = None,
               ignore_index: int = IGNORE) -> torch.Tensor:
    """True length of every row of token ids ``x`` (n, L): the position of its last non-padding
    token + 1 (0 for an all-padding row, L for a row without padding). There is no CLS column in
    the stored tokens (the Transformer prepends its CLS vector inside the model), so nothing is
    subtracted for it.

    With per-residue labels ``y`` (n, L), a row's length also covers its last labelled position, so
    that cutting a batch to its longest member can never drop a label. Padding inside a sequence
    (a 0 before the last real token) is refused: the models read 0 as padding and the RNN packs
    each row to its count of real tokens, so such a row would be read differently by each family."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.dtype.is_floating_point or x.dtype == torch.bool:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"length buckets need token ids, an integer tensor (sequences, positions); got {shape}. "
                         "One-hot inputs (batch, 4, length) go to fixed-length models and are not bucketed.")
    n, L = x.shape
    real = x != pad_id
    if L == 0:
        return torch.zeros(n, dtype=torch.long)
    pos = torch.arange(1, L + 1, device=x.device)
    length = (real * pos).amax(1)                           # last real position + 1, 0 if none
    count = real.sum(1)
    inside = count != length
    if bool(inside.any()):
        r = int(torch.nonzero(inside)[0, 0])
        j = int(torch.nonzero(~real[r, : int(length[r])])[0, 0])
        raise ValueError(f"sequence {r + 1}: token {j + 1} is padding (id {pad_id}) but real tokens follow it; "
                         f"padding may only come after a sequence's end. Re-tokenise it (0 is reserved for "
                         f"padding) before batching by length.")
    if y is not None:
        if y.dim() != 2 or y.shape != x.shape:
            raise ValueError(f"per-residue labels must have the tokens' shape {tuple(x.shape)}; got {tuple(y.shape)}")
        labelled = (y != ignore_index) * pos.to(y.device)
        length = torch.maximum(length, labelled.amax(1).to(length.device))
    return length.long().cpu()


def _as_lengths(lengths) -> torch.Tensor:
    t = torch.as_tensor(lengths).flatten()
    if t.dtype.is_floating_point:
        if not bool(torch.all(t == t.round())):
            raise ValueError("lengths must be whole numbers")
    t = t.long().cpu()
    if len(t) and int(t.min()) < 0:
        raise ValueError("lengths cannot be negative")
    return t


# --------------------------------------------------------------------------------------------
# the sampler
def _batch_size_for(longest: int, batch_size: int, token_budget: int | None) -> int:
    """At most ``batch_size`` sequences, and at most ``token_budget`` positions (but at least one)."""
    if token_budget is None:
        return int(batch_size)
    return max(1, min(int(batch_size), int(token_budget) // max(1, int(longest))))


class Batch(NamedTuple):
    idx: torch.Tensor        # example indices (LongTensor, CPU)
    length: int              # the longest member: the batch is padded to this


class LengthBuckets:
    """Length-bucketed batches; ``epoch(generator)`` gives one epoch's list of index tensors.

        buckets = LengthBuckets(lengths_of(data.x_train), batch_size=32)
        for idx, length in buckets.epoch_plan(trainer_generator):
            xb, yb = trim(data.x_train, data.y_train, idx, length=length)

    ``batch_size``: the most sequences in one batch. ``token_budget``: the most positions (sequences
    x padded length) in one batch; a bucket whose longest sequence has ``m`` positions gets batches
    of ``min(batch_size, max(1, token_budget // m))`` (a single sequence longer than the budget
    still gets a batch of its own). ``n_buckets``: how many length groups (None: one per two batches
    of ``batch_size``, at most 64: a bucket's members are dealt into new batches every epoch). Buckets are cut from the longest sequence down, each a whole number of
    its batches, so only the shortest bucket may end in a partial batch: an epoch has at most one
    batch smaller than its bucket's size, as in plain shuffled batching.
    """

    def __init__(self, lengths, batch_size: int = 32, token_budget: int | None = None,
                 n_buckets: int | None = None):
        self.lengths = _as_lengths(lengths)
        if int(batch_size) < 1:
            raise ValueError(f"batch size must be at least 1 (got {batch_size})")
        if token_budget is not None and int(token_budget) < 1:
            raise ValueError(f"the token budget must be at least 1 position (got {token_budget}); "
                             "use None for batches limited by the batch size only")
        if n_buckets is not None and int(n_buckets) < 1:
            raise ValueError(f"use at least 1 bucket (got {n_buckets})")
        self.batch_size = int(batch_size)
        self.token_budget = None if token_budget is None else int(token_budget)
        n = len(self.lengths)
        if n_buckets is None:
            n_buckets = max(1, min(64, n // (2 * self.batch_size)))
        self.n_buckets_wanted = int(n_buckets)
        # bucket membership, from the longest sequences down (ties broken by index: fixed)
        order = torch.sort(self.lengths, descending=True, stable=True).indices
        sorted_len = self.lengths[order]
        target = max(1, math.ceil(n / self.n_buckets_wanted))
        bucket_sorted = torch.empty(n, dtype=torch.long)
        sizes: list[int] = []          # batch sizes, grouped by bucket (bucket 0 = the longest)
        bucket_sizes: list[int] = []
        bucket_batch: list[int] = []
        start, b = 0, 0
        while start < n:
            bs = self.size_for(int(sorted_len[start]))
            k = max(1, round(target / bs))                       # whole batches per bucket
            end = min(n, start + k * bs)
            if n - end < bs:
                end = n                       # less than a batch would be left: it joins this bucket
            count = end - start
            bucket_sorted[start:end] = b
            bucket_sizes.append(count)
            bucket_batch.append(bs)
            sizes += [bs] * (count // bs) + ([count % bs] if count % bs else [])
            start, b = end, b + 1
        self.bucket = torch.empty(n, dtype=torch.long)
        self.bucket[order] = bucket_sorted
        self.bucket_sizes = bucket_sizes          # members of each bucket (bucket 0 = the longest)
        self.bucket_batch_size = bucket_batch     # sequences per batch in each bucket
        self._sizes = sizes
        self._batch_ids = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes, dtype=torch.long)) \
            if sizes else torch.zeros(0, dtype=torch.long)

    def size_for(self, longest: int) -> int:
        """Sequences per batch for a bucket whose longest member has ``longest`` positions."""
        return _batch_size_for(longest, self.batch_size, self.token_budget)

    @property
    def n_buckets(self) -> int:
        return len(self.bucket_sizes)

    def __len__(self) -> int:
        """Batches per epoch (the same every epoch)."""
        return len(self._sizes)

    def epoch_plan(self, generator: torch.Generator | None = None) -> list[Batch]:
        """One epoch: (indices, padded length) per batch, in training order. Draws from ``generator``
        only (n uniform numbers, then one permutation of the batches)."""
        n = len(self.lengths)
        if n == 0:
            return []
        keys = self.bucket.double() + torch.rand(n, generator=generator, dtype=torch.float64)
        order = torch.argsort(keys)              # grouped by bucket, shuffled within each
        longest = torch.zeros(len(self._sizes), dtype=torch.long).scatter_reduce(
            0, self._batch_ids, self.lengths[order], reduce="amax", include_self=True)
        chunks = torch.split(order, self._sizes)
        maxes = longest.tolist()
        perm = torch.randperm(len(chunks), generator=generator).tolist()
        return [Batch(chunks[i], max(1, maxes[i])) for i in perm]

    def epoch(self, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """One epoch's batches as index tensors (every example exactly once), in training order."""
        return [b.idx for b in self.epoch_plan(generator)]


def sorted_batches(lengths, batch_size: int = 2048, token_budget: int | None = None) -> list[Batch]:
    """Batches for evaluation: sorted by length, no randomness, the same size rule as LengthBuckets
    (each batch padded only to its own longest member)."""
    lengths = _as_lengths(lengths)
    if int(batch_size) < 1 or (token_budget is not None and int(token_budget) < 1):
        raise ValueError("batch size and token budget must be at least 1")
    order = torch.sort(lengths, descending=True, stable=True).indices
    out, start, n = [], 0, len(order)
    while start < n:
        m = int(lengths[order[start]])
        bs = _batch_size_for(m, batch_size, token_budget)
        out.append(Batch(order[start: start + bs], max(1, m)))
        start += bs
    return out


def random_batches(n: int, batch_size: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Plain shuffled batches (the Trainer without buckets), for comparisons."""
    perm = torch.randperm(int(n), generator=generator)
    return list(torch.split(perm, int(batch_size))) if n else []


# --------------------------------------------------------------------------------------------
# batches
def trim(x: torch.Tensor, y: torch.Tensor | None, idx: torch.Tensor, lengths: torch.Tensor | None = None,
         length: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The batch ``x[idx]`` (and ``y[idx]``) cut to its longest member: ``length`` if given (as
    ``LengthBuckets.epoch_plan`` gives it), else the largest of ``lengths[idx]``. Per-residue labels
    (y of x's shape) are cut to the same positions; one label per sequence is just indexed."""
    if length is None:
        if lengths is None:
            raise ValueError("trim needs the batch's length or the lengths of all examples")
        length = int(lengths[idx.to(lengths.device)].max()) if len(idx) else 1
    m = max(1, min(int(length), x.shape[1]))
    if idx.device != x.device:
        idx = idx.to(x.device)
    xb = x[idx, :m]
    if y is None:
        return xb, None
    if y.dim() == 2 and y.shape == x.shape:
        return xb, y[idx, :m]
    return xb, y[idx]


def padding_waste(lengths, batches: Sequence[torch.Tensor] | Sequence[Batch], pad_to: int | None = None) -> float:
    """Computed positions / real positions over the given batches (one epoch): a batch computes
    size x its longest member's length (or x ``pad_to``, the global padding of a plain Trainer).
    1.0 means no padding; 3.0 means two padding positions for every real one."""
    lengths = _as_lengths(lengths)
    computed = real = 0
    for b in batches:
        idx = b.idx if isinstance(b, Batch) else b
        if not len(idx):
            continue
        ls = lengths[idx]
        computed += len(idx) * (int(pad_to) if pad_to is not None else int(ls.max()))
        real += int(ls.sum())
    return computed / real if real else float("nan")


@torch.no_grad()
def outputs_by_length(model: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None,
                      batch_size: int = 2048, token_budget: int | None = None) -> torch.Tensor:
    """``model(x)`` computed in length-sorted batches cut to their longest member (evaluation without
    padding waste). Returns what one ``model(x)`` would: per-position outputs (B, L', C) are put back
    at x's full length L, with zeros at the cut-off (padding) positions. The caller sets eval mode."""
    if lengths is None:
        lengths = lengths_of(x)
    n = len(x)
    if n == 0:
        return torch.empty(0)
    out, per_position = None, False
    for idx, m in sorted_batches(lengths, batch_size, token_budget):
        xb, _ = trim(x, None, idx, length=m)
        o = model(xb)
        if out is None:                  # the first batch holds the longest sequences
            per_position = o.dim() >= 3 and o.shape[1] == xb.shape[1]
            shape = (n, x.shape[1], *o.shape[2:]) if per_position else (n, *o.shape[1:])
            out = o.new_zeros(shape)
        dst = idx.to(o.device)
        if per_position:
            out[dst, : o.shape[1]] = o
        else:
            out[dst] = o
    return out


# --------------------------------------------------------------------------------------------
# the benchmark figure
def skewed_protein_lengths(n: int = 2352, lo: int = 50, hi: int = 1000, seed: int = 0,
                           kind: str = "log-uniform") -> list[int]:
    """Lengths of a length-skewed protein set: log-uniform (most proteins short, a long tail, like
    real proteomes) or uniform in [lo, hi]."""
    import numpy as np

    u = torch.from_numpy(np.random.default_rng(int(seed)).random(int(n)))
    if kind == "uniform":
        ls = lo + u * (hi - lo + 1)
    elif kind == "log-uniform":
        ls = torch.exp(math.log(lo) + u * (math.log(hi + 1) - math.log(lo)))
    else:
        raise ValueError("kind must be 'log-uniform' or 'uniform'")
    return ls.floor().clamp(lo, hi).long().tolist()


def padding_figures(n: int = 2352, lo: int = 50, hi: int = 1000, seed: int = 0, kind: str = "log-uniform",
                    batch_size: int | None = None, token_budget: int | None = None) -> dict:
    """padding_waste over one epoch of a generated protein set (random residues, lengths 50-1,000),
    tokenised and split by the Sequence Models page's own code (``protein.to_split``: padded to the
    longest protein), with the page's default batch size: bucketed, plain shuffled batches padded to
    the set's longest (the Trainer without buckets), and shuffled batches each cut to its own longest."""
    import numpy as np

    from playground.data import protein as P

    if batch_size is None:
        from playground.setups.sequence import PARAMS
        batch_size = int(next(p.default for p in PARAMS if p.name == "batch"))
    lens = skewed_protein_lengths(n, lo, hi, seed, kind)
    rng = np.random.default_rng(seed)
    letters = np.array(list(P.AMINO))
    seqs = ["".join(rng.choice(letters, k)) for k in lens]
    ps = P.ProteinSet(seqs, np.zeros(len(seqs), dtype=np.float32), "binary", ["no", "yes"])
    data = P.to_split(ps, seed=seed)
    x = data.x_train
    lengths = lengths_of(x)
    gen = torch.Generator().manual_seed(int(seed))
    buckets = LengthBuckets(lengths, batch_size, token_budget)
    plain = random_batches(len(lengths), batch_size, gen)
    return {
        "padding_waste": padding_waste(lengths, buckets.epoch(gen)),
        "padding_waste_unbucketed": padding_waste(lengths, plain, pad_to=x.shape[1]),
        "padding_waste_trimmed_random": padding_waste(lengths, plain),
        "n_train": len(lengths), "batch_size": batch_size, "token_budget": token_budget,
        "batches": len(buckets), "batches_unbucketed": len(plain), "n_buckets": buckets.n_buckets,
        "kind": kind, "padded_length": int(x.shape[1]),
    }


def print_padding_waste(**kw) -> dict:
    """Prints ``padding_waste: X`` and ``padding_waste_unbucketed: Y`` (bench/real_data.py)."""
    f = padding_figures(**kw)
    print(f"padding_waste: {f['padding_waste']:.3f}")
    print(f"padding_waste_unbucketed: {f['padding_waste_unbucketed']:.3f}")
    return f


if __name__ == "__main__":      # python -m playground.data.buckets
    f = padding_figures()
    print(f"# {f['n_train']} training proteins ({f['kind']} lengths 50-1000, padded to {f['padded_length']}), "
          f"batch {f['batch_size']}: {f['batches']} bucketed batches in {f['n_buckets']} buckets, "
          f"{f['batches_unbucketed']} plain")
    print(f"padding_waste_trimmed_random: {f['padding_waste_trimmed_random']:.3f}")
    print(f"padding_waste: {f['padding_waste']:.3f}")
    print(f"padding_waste_unbucketed: {f['padding_waste_unbucketed']:.3f}")
