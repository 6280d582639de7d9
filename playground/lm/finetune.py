"""Pretrain -> fine-tune: a classifier from the student's pretrained LM, against the same
architecture trained from scratch, on the same labelled split.

    labelled = motif_task(corpus, n=600, seed=1)          # positives carry the corpus' motif, negatives not
    labelled = labelled_from_file(data, "labels.csv", alphabet="dna")   # or an upload (sequence, label)
    res = finetune_compare(lm, tok, labelled, n_labels=100, epochs=30, seed=0)
    res.pretrained.history, res.scratch.history         # Trainer histories: val_loss, val_accuracy ... per epoch
    res.gap                                             # test accuracy, pretrained − scratch (scored once each)
    res.curves()                                        # {'epoch', 'pretrained_val_acc', 'scratch_val_acc', ...}

The labelled set is split once (seeded, stratified): training pool / validation / test. Only
``n_labels`` examples of the training pool are used for training (a seeded, stratified subset:
25 … all), the validation and test sets stay whole and are the same for both models. Both train
with the same settings; early stopping on the validation loss keeps each model's best epoch; the
test set is scored once at the end.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from playground import encoding
from playground.data.split import SplitData, split_seed, split_three
from playground.errors import PlaygroundError
from playground.lm.models import LMClassifierSpec, classifier_from_lm, classifier_spec
from playground.lm.tokens import Tokenizer
from playground.train import TrainConfig, Trainer

PROTEIN_MOTIF = "WHCPYW"          # planted in the positives of a protein corpus' labelled task
LABELLED_SEED_OFFSET = 1000       # a labelled task's sequences are new ones: corpus seed + this


class FinetuneError(PlaygroundError):
    """A labelled set or setting that cannot be fine-tuned on."""


@dataclass
class LabelledSet:
    seqs: list[str]
    y: np.ndarray                    # class ids (int64)
    class_names: list[str]
    alphabet: str = "dna"
    description: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return "binary" if len(self.class_names) == 2 else "multiclass"

    def __len__(self) -> int:
        return len(self.seqs)


def motif_task(corpus, n: int = 600, seed: int | None = None) -> LabelledSet:
    """A planted-motif classification from the corpus' family: new sequences made as the corpus'
    (same length, background, Markov chain), half with a planted site (label 1), half with a decoy
    (label 0): DNA corpora plant their own motif(s), the decoy is the same site with its letters
    shuffled; protein corpora plant the peptide ``PROTEIN_MOTIF`` in half and nothing in the rest."""
    st = dict(corpus.settings)
    base = int(st.get("seed", 0)) + LABELLED_SEED_OFFSET if seed is None else int(seed)
    if n < 8:
        raise FinetuneError("a labelled task needs at least 8 sequences")
    n_pos = n // 2
    if st.get("kind") == "dna":
        from playground.lm.corpus import dna_corpus

        if not st.get("motifs"):
            raise FinetuneError("this corpus has no planted motif to classify",
                                "Choose a corpus with a motif, or upload a labelled file.")
        kw = {k: st[k] for k in ("length", "motifs", "from_consensus", "grammar", "spacing", "background", "gc",
                                 "markov_order", "markov_bias")}
        kw["chain_seed"] = st.get("chain_seed", st.get("seed", 0))
        pos = dna_corpus(n_pos, seed=base, motif_rate=1.0, val_fraction=0.5, **kw)
        neg = dna_corpus(n - n_pos, seed=base + 1, motif_rate=1.0, val_fraction=0.5, **kw)
        p_seqs = pos.train + pos.val
        # negatives carry a decoy: the same site with its letters shuffled (same composition, wrong
        # order), so counting letters does not tell the classes apart; knowing the motif does
        rng = np.random.default_rng(base + 3)
        n_seqs = []
        for s, sites in zip(neg.train + neg.val, neg.train_sites + neg.val_sites):
            chars = list(s)
            for _, a, b in sites:
                chars[a:b] = list(rng.permutation(chars[a:b]))
            n_seqs.append("".join(chars))
        labels = st.get("motif_labels") or st["motifs"]
        what = " or ".join(labels) if not st.get("grammar") else " then ".join(labels)
        names = ["no motif", "motif"]
    elif st.get("kind") == "protein":
        from playground.data import protein as P

        ps = P.secondary_structure_set(n, st.get("min_len", 40), st.get("max_len", 80), st.get("family_size", 3),
                                       st.get("mutation_rate", 0.1), seed=base)
        rng = np.random.default_rng(base)
        p_seqs, n_seqs = [], []
        for i, s in enumerate(ps.seqs):
            if i < n_pos:
                at = int(rng.integers(0, max(1, len(s) - len(PROTEIN_MOTIF) + 1)))
                s = (s[:at] + PROTEIN_MOTIF + s[at + len(PROTEIN_MOTIF):])[:len(s)]
                p_seqs.append(s)
            else:
                n_seqs.append(s)
        what = PROTEIN_MOTIF
        names = ["no motif", "motif"]
    else:
        raise FinetuneError("an uploaded corpus has no generated labelled task",
                            "Upload a labelled file (a sequence and a label column) instead.")
    seqs = p_seqs + n_seqs
    y = np.array([1] * len(p_seqs) + [0] * len(n_seqs), dtype=np.int64)
    order = np.random.default_rng(base + 2).permutation(len(seqs))
    decoy = ("half carry the same site with its letters shuffled (label 0: same letters, wrong order)"
             if st.get("kind") == "dna" else "half do not (label 0)")
    desc = f"{len(seqs):,} new sequences made like the corpus': half carry a planted {what} (label 1), {decoy}."
    return LabelledSet([seqs[i] for i in order], y[order], names, corpus.alphabet, desc)


def labelled_from_file(data: bytes | str, filename: str = "labels.csv", alphabet: str = "dna", *,
                       max_length: int | None = 512) -> LabelledSet:
    """A labelled set from an upload (CSV / TSV with a sequence and a label column, or FASTA with
    label=... in the headers): class labels only. Friendly ``SequenceFileError`` on bad files."""
    from playground.data.parsing import parse_sequence_file

    parsed = parse_sequence_file(data, filename, encoding.ALPHABETS[alphabet], label_required=True,
                                 label_kind="classification", length_policy="truncate" if max_length else "pad",
                                 max_length=max_length, map_aliases=True)
    if parsed.task not in ("binary", "multiclass"):
        raise FinetuneError(f"'{filename}' has no class labels", "Give each sequence a class label (e.g. 0 / 1).")
    return LabelledSet(list(parsed.seqs), np.asarray(parsed.labels, dtype=np.int64), list(parsed.class_names),
                       alphabet, f"Uploaded **{filename}**: {parsed.summary()}.", list(parsed.warnings))


def finetune_data(tok: Tokenizer, labelled: LabelledSet, n_labels: int | None = 100, seed: int = 0,
                  val_fraction: float = 0.2, test_fraction: float = 0.2, max_len: int | None = None) -> SplitData:
    """The labelled split both models train on: [CLS] + tokens; ``n_labels`` examples of the training
    pool (None or more than the pool: all of it), validation and test whole. ``meta`` keeps
    ``n_labels`` (used) and ``pool`` (the training pool's size)."""
    if labelled.alphabet != tok.alphabet:
        raise FinetuneError(f"the labelled sequences are {labelled.alphabet.upper()} but the language model reads "
                            f"{tok.alphabet.upper()}", "Use a labelled set of the corpus' alphabet.")
    x = tok.encode_batch(labelled.seqs)
    if max_len is not None and x.shape[1] > max_len:
        x = x[:, :max_len]
    y = np.asarray(labelled.y)
    tr, va, te = split_three(len(y), 1.0 - val_fraction - test_fraction, val_fraction, seed, stratify=y)
    pool = len(tr)
    if n_labels is not None and int(n_labels) < pool:
        k = max(2, int(n_labels))
        rng = np.random.default_rng(split_seed(seed) + 2)
        # stratified: each class keeps its share of the pool
        keep = []
        for c in np.unique(y[tr]):
            idx = tr[y[tr] == c]
            keep.append(rng.permutation(idx)[: max(1, int(round(k * len(idx) / pool)))])
        tr = np.sort(np.concatenate(keep))
    task = labelled.task
    yt = torch.as_tensor(y, dtype=torch.float32 if task == "binary" else torch.long)
    return SplitData.from_indices(x, yt, task, tr, va, te, n_classes=max(2, len(labelled.class_names)),
                                  class_names=list(labelled.class_names),
                                  meta={"dataset": "labelled", "alphabet": tok.alphabet, "tokenizer": tok.to_dict(),
                                        "n_labels": int(len(tr)), "pool": int(pool)})


@dataclass
class FinetuneResult:
    pretrained: Trainer
    scratch: Trainer
    spec: LMClassifierSpec
    data: SplitData

    def curves(self) -> dict:
        """Both validation curves by epoch: {'epoch', 'pretrained_val_loss', 'scratch_val_loss',
        'pretrained_val_acc', 'scratch_val_acc'} (lists; the shorter run padded with None)."""
        hp, hs = self.pretrained.history, self.scratch.history
        n = max(len(hp), len(hs))
        get = lambda h, k: [h[i].get(k) if i < len(h) else None for i in range(n)]   # noqa: E731
        return {"epoch": list(range(n)), "pretrained_val_loss": get(hp, "val_loss"),
                "scratch_val_loss": get(hs, "val_loss"), "pretrained_val_acc": get(hp, "val_accuracy"),
                "scratch_val_acc": get(hs, "val_accuracy")}

    def scores(self) -> dict:
        """Test accuracy of both (each model's test set scored once, at the end) and the gap."""
        a = self.pretrained.test_scores or self.pretrained.score_test()
        b = self.scratch.test_scores or self.scratch.score_test()
        return {"pretrained": a["accuracy"], "scratch": b["accuracy"], "gap": a["accuracy"] - b["accuracy"],
                "pretrained_val": self.best_val(self.pretrained), "scratch_val": self.best_val(self.scratch),
                "n_labels": self.data.meta["n_labels"]}

    @staticmethod
    def best_val(tr: Trainer) -> float:
        vals = [r.get("val_accuracy") for r in tr.history[1:] if r.get("val_accuracy") is not None]
        return vals[tr.best_epoch - 1] if tr.best_epoch >= 1 and len(vals) >= tr.best_epoch else float("nan")

    @property
    def gap(self) -> float:
        return self.scores()["gap"]


def finetune_config(seed: int = 0, lr: float = 0.001, batch_size: int = 16, early_stopping: int = 10) -> TrainConfig:
    return TrainConfig(optimizer="adam", lr=lr, batch_size=batch_size, seed=seed, early_stopping=early_stopping,
                       track_metrics=True)


def finetune_trainers(lm, tok: Tokenizer, labelled: LabelledSet, n_labels: int | None = 100, *,
                      config: TrainConfig | None = None, seed: int = 0, pooling: str = "mean") -> FinetuneResult:
    """The two untrained runs (for the page to step live): pretrained body + new head, and the same
    architecture from scratch, on the same split with the same settings (``finetune_config``)."""
    config = config or finetune_config(seed)
    data = finetune_data(tok, labelled, n_labels, seed, max_len=lm.spec.max_len)
    spec = classifier_spec(lm.spec, data.n_outputs, pooling)
    pre = classifier_from_lm(lm, spec, seed=seed)
    scratch = classifier_from_lm(None, spec, seed=seed)
    import copy

    return FinetuneResult(Trainer(pre, data, copy.deepcopy(config)), Trainer(scratch, data, copy.deepcopy(config)),
                          spec, data)


def finetune_compare(lm, tok: Tokenizer, labelled: LabelledSet, n_labels: int | None = 100, *, epochs: int = 30,
                     config: TrainConfig | None = None, seed: int = 0, pooling: str = "mean") -> FinetuneResult:
    """``finetune_trainers`` trained for ``epochs`` each (or until early stopping), best validation
    weights restored, test scored once each (``res.scores()``)."""
    res = finetune_trainers(lm, tok, labelled, n_labels, config=config, seed=seed, pooling=pooling)
    for tr in (res.pretrained, res.scratch):
        tr.run_epochs(epochs)
        tr.restore_best()
        tr.score_test()
    return res
