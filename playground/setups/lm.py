"""Language models (pages/7_Language_Models.py): its settings and its run.

``PARAMS`` is the one place each setting of the page and its default is written; the page's
widgets, its URL, the lessons and the code export read them from here. ``build(values)`` is the
run the page trains for those values, through the library (``playground.lm``)::

    from playground.setups import lm
    run = lm.build({"model": "masked", "motif": "CTCF"})
    trainer = run.make_trainer()          # seeded corpus split, weights, masking and shuffling
    trainer.run_epochs(5); trainer.history[-1]["val_bits"]
    lm.build({"model": "ngram", "order": 3}).extras["ngram"]["model"].count_table("ACG")

An n-gram model is counted, not trained: its ``Run`` has no trainer (``spec`` is None) and
``extras['ngram']`` holds the fitted model and its bits per token. The best n-gram (orders 1–6,
backoff, chosen on validation) is every run's reference line: ``extras['reference']``.

Live settings (``lr``, ``early_stop``) reach a running trainer through ``apply_live``; view
settings (the chosen sequence, the blanks, the sampling temperature ...) only change what is
drawn; the fine-tuning settings (``ft_*``) define the fine-tune tab's own pair of runs (see
``finetune_signature``), never the language model's.
"""
from __future__ import annotations

import hashlib
import math
import time
import weakref
from typing import Callable

from playground.compare import SideBySide
from playground.data.motifs import KNOWN_MOTIFS
from playground.errors import PlaygroundError
from playground.settings import Param, Schema
from playground.setups import Run, complete
from playground.train import LEARNING_RATES, OPTIMIZERS, SCHEDULES, TrainConfig, Trainer

CORPORA = {"dna": "DNA: planted motifs in a background", "protein": "Proteins: generated families",
           "upload": "Upload a FASTA file"}
BACKGROUNDS = {"uniform": "Independent bases (GC content)", "markov": "Biased Markov chain"}
TOKENIZERS = {"char": "Single letters", "kmer_overlap": "Overlapping k-mers (DNABERT)",
              "kmer_disjoint": "Non-overlapping k-mers"}
MODELS = {"ngram": "n-gram (counting)", "causal": "Causal Transformer (GPT: next token)",
          "masked": "Masked Transformer (BERT: fill the blanks)"}
SMOOTHING = {"add_k": "Add-k (k = 1: Laplace; k = 0: plain counts)", "backoff": "Backoff (absolute discounting)"}
MOTIF_NAMES = tuple(KNOWN_MOTIFS)
N_CHOICES = (100, 200, 400, 800, 1600, 3200)
LENGTH_CHOICES = (20, 30, 40, 60, 80, 100, 150, 200)
MOTIF_RATES = (0.0, 0.25, 0.5, 0.75, 1.0)
MARKOV_BIASES = (0.1, 0.3, 0.5, 1.0, 3.0, 10.0)
ADD_K = (0.0, 0.01, 0.1, 0.5, 1.0)
D_MODELS = (16, 32, 64, 128)
HEADS = (1, 2, 4, 8)
FFS = (32, 64, 128, 256)
DROPOUTS = (0.0, 0.1, 0.2)
MASK_RATES = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
BATCH_CHOICES = (16, 32, 64, 128)
FT_SIZES = (25, 50, 100, 200, 400, 0)      # labelled training sequences for fine-tuning; 0 = all
FT_LRS = (0.0003, 0.001, 0.003)
MAX_UPLOAD_LENGTH = 512
WINDOW = 50                                 # attention maps: positions shown at once

PARAMS = [
    # corpus
    Param("corpus", "dna", choices=tuple(CORPORA)),
    Param("n", 800, "int", choices=N_CHOICES, help="sequences (generated corpora)"),
    Param("length", 30, "int", choices=LENGTH_CHOICES, help="bases / longest protein (generated corpora)"),
    Param("motif", "CTCF", choices=MOTIF_NAMES, help="the planted JASPAR motif (motif A of the grammar)"),
    Param("grammar", False, "bool", help="plant the ordered pair: motif A, spacing, motif B"),
    Param("motif_b", "AP-1 (FOS::JUN)", choices=MOTIF_NAMES),
    Param("spacing", 4, "int", lo=0, hi=20),
    Param("motif_rate", 1.0, "float", choices=MOTIF_RATES, help="share of the sequences that carry a site"),
    Param("consensus", True, "bool", help="write the consensus in exactly (else sample the JASPAR PWM)"),
    Param("background", "uniform", choices=tuple(BACKGROUNDS)),
    Param("gc", 0.5, "float", lo=0.2, hi=0.8),
    Param("markov_order", 2, "int", lo=1, hi=5),
    Param("markov_bias", 0.5, "float", choices=MARKOV_BIASES, help="Dirichlet concentration: small = predictable"),
    Param("up_alphabet", "dna", choices=("dna", "protein")),
    Param("val_pct", 20, "int", lo=10, hi=40, help="% of the sequences held out for validation"),
    # tokens
    Param("tokens", "char", choices=tuple(TOKENIZERS)),
    Param("k", 3, "int", lo=2, hi=6, help="k-mer length"),
    # model
    Param("model", "masked", choices=tuple(MODELS)),
    Param("order", 3, "int", lo=1, hi=6, help="n-gram order: the prediction reads the n−1 tokens before"),
    Param("smoothing", "backoff", choices=tuple(SMOOTHING)),
    Param("add_k", 1.0, "float", choices=ADD_K),
    Param("d_model", 64, "int", choices=D_MODELS),
    Param("heads", 4, "int", choices=HEADS),
    Param("layers", 2, "int", lo=1, hi=4),
    Param("ff", 128, "int", choices=FFS),
    Param("dropout", 0.0, "float", choices=DROPOUTS),
    Param("positional", "sinusoidal", choices=("sinusoidal", "learned")),
    Param("mask_rate", 0.15, "float", choices=MASK_RATES, help="share of the tokens chosen for prediction"),
    Param("mask_pct", 80, "int", lo=0, hi=100, help="% of the chosen tokens replaced by [MASK]"),
    Param("random_pct", 10, "int", lo=0, hi=100, help="% replaced by a random token (the rest stay unchanged)"),
    # training
    Param("optimizer", "adam", choices=tuple(OPTIMIZERS)),
    Param("lr", 0.003, "float", choices=tuple(LEARNING_RATES), live=True),
    Param("batch", 16, "int", choices=BATCH_CHOICES),
    Param("early_stop", 5, "int", lo=0, hi=50, live=True, help="patience in epochs on the validation loss (0 = off)"),
    Param("schedule", "off", choices=tuple(SCHEDULES)),
    # views
    Param("seq_idx", 0, "int", lo=0, hi=100_000, view=True, help="the validation sequence the views show"),
    Param("blanks", [], "ints", lo=1, hi=10_000, max_len=12, view=True, help="token positions to hide (1-based)"),
    Param("temperature", 1.0, "float", lo=0.1, hi=3.0, view=True),
    Param("top_k", 0, "int", lo=0, hi=100, view=True, help="sample from the k most likely tokens (0 = all)"),
    Param("n_new", 40, "int", lo=1, hi=400, view=True, help="tokens to generate"),
    Param("prompt", "", view=True, help="the start of the sequence to continue (empty: a validation sequence's)"),
    Param("context", "", view=True, help="the n-gram context whose counts are shown"),
    Param("layer", 1, "int", lo=1, hi=8, view=True),
    Param("win_start", 1, "int", lo=1, hi=100_000, view=True),
    # pretrain -> fine-tune: the tab's own runs (never the language model's)
    Param("ft_task", "motif", choices=("motif", "upload"), view=True),
    Param("ft_n", 100, "int", choices=FT_SIZES, view=True, help="labelled training sequences (0 = all)"),
    Param("ft_lr", 0.001, "float", choices=FT_LRS, view=True),
    Param("ft_epochs", 15, "int", lo=1, hi=100, view=True, help="epochs each run trains (the size sweep too)"),
]
SCHEMA = Schema("lm", PARAMS)
# The page's own session slots ("lm._<name>"): the uploaded corpus and labelled file (uploader widget,
# kept upload, Forget), the corpus and reference n-gram caches, the fine-tune pair's cache, the size sweep.
PRIVATE = ("uploader", "upload", "forget", "ft_uploader", "ft_upload", "ft_forget", "corpus", "reference",
           "ngram", "sweep", "sample", "labelled", "ft_snap")
UNSUPPORTED = {"corpus": {"upload": "needs a file the student uploads"},
               "ft_task": {"upload": "needs a labelled file the student uploads"}}

DNA_KEYS = ("motif", "grammar", "motif_b", "spacing", "motif_rate", "consensus", "background", "gc",
            "markov_order", "markov_bias")
GENERATED_KEYS = ("n", "length")
TRANSFORMER_KEYS = ("d_model", "heads", "layers", "ff", "dropout", "positional", "optimizer", "lr", "batch",
                    "early_stop", "schedule")
MASK_KEYS = ("mask_rate", "mask_pct", "random_pct")
NGRAM_KEYS = ("order", "smoothing", "add_k")


class LMSettingError(PlaygroundError):
    """Settings that cannot make a language-model run (the message names the setting)."""


# The defaults are the library's measured ones (playground.lm.training.DEFAULTS: 800 × 30 bp, sinusoidal
# positions, lr 0.003, batch 16): the planted motif's bases are filled in right >= 90 % of the time after
# about 20 epochs on one CPU core.

# ---- settings -> corpus and tokens ----------------------------------------------------------------
def upload_hash(upload) -> str:
    return hashlib.sha1(upload[1]).hexdigest() if upload else ""


def alphabet_of(values: dict) -> str:
    v = complete(SCHEMA, values)
    return {"dna": "dna", "protein": "protein"}.get(v["corpus"], v["up_alphabet"])


def corpus_inputs(values: dict, upload=None) -> tuple:
    """Everything the corpus depends on (the page's cache key)."""
    v = relevant(values)
    keys = ("corpus", "seed", "val_pct", "up_alphabet", *GENERATED_KEYS, *DNA_KEYS)
    return tuple(v[k] for k in keys) + ((upload[0], upload_hash(upload)) if v["corpus"] == "upload" and upload
                                        else ())


def make_corpus(values: dict, upload=None):
    """The seeded corpus (train / validation sequences) for these values. Raises a PlaygroundError
    (CorpusError, SequenceFileError) naming what to change."""
    from playground.lm import corpus as C

    v = complete(SCHEMA, values)
    seed, val = int(v["seed"]), int(v["val_pct"]) / 100.0
    if v["corpus"] == "upload":
        if upload is None:
            raise LMSettingError("The corpus 'upload' needs a FASTA file, and none was given.",
                                 "Upload a FASTA file (or pick a generated corpus).")
        return C.corpus_from_fasta(upload[1], upload[0], v["up_alphabet"], val_fraction=val, seed=seed,
                                   max_length=MAX_UPLOAD_LENGTH)
    if v["corpus"] == "protein":
        return C.make_corpus("protein", int(v["n"]), int(v["length"]), seed, val_fraction=val)
    motifs = (v["motif"], v["motif_b"]) if v["grammar"] else (v["motif"],)
    return C.make_corpus("dna", int(v["n"]), int(v["length"]), seed, motifs=motifs, motif_rate=float(v["motif_rate"]),
                         from_consensus=bool(v["consensus"]), grammar=bool(v["grammar"]), spacing=int(v["spacing"]),
                         background=v["background"], gc=float(v["gc"]), markov_order=int(v["markov_order"]),
                         markov_bias=float(v["markov_bias"]), val_fraction=val)


def make_tokenizer(values: dict, alphabet: str | None = None):
    from playground.lm.tokens import make_tokenizer as mk

    v = complete(SCHEMA, values)
    return mk(v["tokens"], int(v["k"]), alphabet or alphabet_of(v))


def uniform_bits(tok) -> float:
    """The uniform baseline: log2 of the ordinary tokens (2 bits for single DNA bases)."""
    return math.log2(tok.vocab_size - tok.n_special)


def masking_of(values: dict) -> tuple[float, float, float]:
    """(rate, [MASK] share, random share) of the masked model; raises LMSettingError when the two
    shares add up to more than 100 %."""
    v = complete(SCHEMA, values)
    m, r = int(v["mask_pct"]), int(v["random_pct"])
    if m + r > 100:
        raise LMSettingError(f"[MASK] {m} % + random {r} % is more than 100 % of the chosen tokens.",
                             "Lower one of the two sliders: what is left stays unchanged.")
    return float(v["mask_rate"]), m / 100.0, r / 100.0


# ---- settings -> model and training ---------------------------------------------------------------
def spec_of(values: dict, tok, corpus=None):
    """The Transformer LM spec for these values (None for the n-gram). ``max_len`` covers the
    corpus' longest sequence ([CLS] included)."""
    from playground.lm.training import lm_spec

    v = complete(SCHEMA, values)
    if v["model"] == "ngram":
        return None
    longest = 1 + max((tok.n_tokens(len(s)) for s in (corpus.train + corpus.val)), default=1) if corpus else 512
    return lm_spec(tok, v["model"], d_model=int(v["d_model"]), heads=int(v["heads"]), layers=int(v["layers"]),
                   ff=int(v["ff"]), dropout=float(v["dropout"]), positional=v["positional"], max_len=max(2, longest))


def config_of(values: dict) -> TrainConfig:
    v = complete(SCHEMA, values)
    return TrainConfig(optimizer=v["optimizer"], lr=float(v["lr"]), batch_size=int(v["batch"]), seed=int(v["seed"]),
                       device=v["device"], early_stopping=int(v["early_stop"]), schedule=v["schedule"])


def apply_live(trainer: Trainer, values: dict) -> None:
    v = complete(SCHEMA, values)
    trainer.set_lr(float(v["lr"]))
    trainer.config.early_stopping = int(v["early_stop"])


def fit_ngram(values: dict, tok, corpus) -> dict:
    """The n-gram of these settings on the corpus' training tokens: ``best_order``'s dict for
    the one order ({'order', 'model', 'val_bits': {order: bits}, 'train_bits'})."""
    from playground.lm.ngram import fit_corpus

    v = complete(SCHEMA, values)
    return fit_corpus(tok, corpus, int(v["order"]), v["smoothing"], float(v["add_k"]))


def reference_ngram(tok, corpus) -> dict:
    """The best n-gram: backoff, orders 1–6, the order chosen by validation bits per token."""
    from playground.lm.ngram import fit_corpus

    return fit_corpus(tok, corpus, None, "backoff")


# ---- the rebuild signature ------------------------------------------------------------------------
def relevant(values: dict) -> dict:
    """``values`` with the settings this run does not read put back to their defaults."""
    v = complete(SCHEMA, values)
    unused: list[str] = []
    if v["corpus"] != "dna":
        unused += DNA_KEYS
    if v["corpus"] == "upload":
        unused += GENERATED_KEYS
    else:
        unused.append("up_alphabet")
    if v["tokens"] == "char":
        unused.append("k")
    if v["model"] == "ngram":
        unused += TRANSFORMER_KEYS + MASK_KEYS
    else:
        unused += NGRAM_KEYS
    if v["model"] == "causal":
        unused += MASK_KEYS
    if v["corpus"] == "dna" and not v["grammar"]:
        unused += ["motif_b", "spacing"]
    if v["corpus"] == "dna" and v["background"] == "uniform":
        unused += ["markov_order", "markov_bias"]
    if v["corpus"] == "dna" and v["background"] == "markov":
        unused.append("gc")
    return {**v, **{n: SCHEMA[n].default for n in unused}}


def signature(values: dict, upload=None) -> str:
    v = complete(SCHEMA, values)
    sig = SCHEMA.signature(relevant(v))
    if v["corpus"] == "upload":
        sig += repr(("upload", upload[0] if upload else "", upload_hash(upload)))
    return sig


def data_label(values: dict, corpus) -> str:
    v = complete(SCHEMA, values)
    return f"{corpus.name} · {len(corpus.train)} train / {len(corpus.val)} validation · {v['tokens']}" + (
        f" k={v['k']}" if v["tokens"] != "char" else "") + f" · seed {v['seed']}"


# ---- the run --------------------------------------------------------------------------------------
def motif_accuracy(trainer: Trainer, corpus, tok) -> dict:
    """The model's accuracy on masked validation tokens inside planted motifs vs in the background
    (``playground.lm.views.motif_accuracy``: [MASK] at a seeded 15 % of the tokens)."""
    from playground.lm.views import motif_accuracy as acc

    return acc(trainer.model, tok, corpus)


def visible_accuracy(model, tok, corpus) -> float:
    """What the model says at tokens it can see: the validation sequences with no [MASK] at all (as
    a fine-tuned model reads them), and the share of positions whose top prediction is the token
    that is there. A model trained with 100 % [MASK] was never asked about a visible token; BERT's
    10 % unchanged (and 10 % random) targets are exactly those questions."""
    import torch

    x = tok.encode_batch(corpus.val)
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 256].to(dev)).argmax(-1).cpu() for i in range(0, len(x), 256)])
    model.train(was)
    real = x >= tok.n_special
    return float((pred[real] == x[real]).float().mean()) if bool(real.any()) else float("nan")


_GAIN_MEMO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()   # trainer -> (key, when, value)
GAIN_EVERY_S = 20.0


def _throttled_gain(tr: Trainer, values: dict, corpus, tok) -> float:
    """``finetune_gain`` of a trainer, computed once per epoch and at most every GAIN_EVERY_S seconds
    while it trains (the lesson panel asks every second; one measure is two fine-tune runs)."""
    v = complete(SCHEMA, values)
    key = (tr.epoch, tuple(v[k] for k in ("ft_task", "ft_n", "ft_lr", "ft_epochs", "seed")))
    got = _GAIN_MEMO.get(tr)
    now = time.monotonic()
    if got is not None and (got[0] == key or (got[0][1] == key[1] and now - got[1] < GAIN_EVERY_S)):
        return got[2]
    value = finetune_gain(v, tr.model, tok, corpus)
    _GAIN_MEMO[tr] = (key, now, value)
    return value


def metrics_of(corpus, tok, values: dict) -> dict[str, Callable[[Trainer], float]]:
    """The page's lesson metrics (fn(trainer) -> float, on the current weights)."""
    return {"motif_acc": lambda tr: motif_accuracy(tr, corpus, tok)["motif"],
            "background_acc": lambda tr: motif_accuracy(tr, corpus, tok)["background"],
            "visible_acc": lambda tr: visible_accuracy(tr.model, tok, corpus),
            "finetune_gain": lambda tr: _throttled_gain(tr, values, corpus, tok)}


def input_spec(run_or_tok, max_len: int | None = None):
    """What a saved LM (or a fine-tuned classifier) reads: the bundle's InputSpec 'lm_tokens'
    with the tokenizer, and the longest sequence in letters that fits its positions."""
    from playground.bundle import InputSpec, lm_letters

    if isinstance(run_or_tok, Run):
        tok, max_len = run_or_tok.extras["tokenizer"], run_or_tok.spec.max_len
    else:
        tok = run_or_tok
    return InputSpec("lm_tokens", tok.alphabet, tokenizer=tok.to_dict(), max_length=lm_letters(tok, int(max_len)))


def script(run: Run, trainer: Trainer, values: dict) -> str:
    """The PyTorch script of this run: the same tokens, masking, seed and loop as the page's Trainer
    (``playground.codegen.lm_script_for_trainer``; raises ValueError for a corpus too large to embed)."""
    from playground.codegen import lm_script_for_trainer

    v = complete(SCHEMA, values)
    return lm_script_for_trainer(trainer, run.spec, run.extras["tokenizer"], run.extras["corpus"],
                                 title=f"Language models · {MODELS[v['model']]} · {run.extras['label']}")


# ---- the lecture's worked example and the lessons' measures ----------------------------------------
LECTURE_CONTEXT = ("students", "opened", "their")
LECTURE_NEXT = {"books": 400, "laptops": 250, "exams": 200, "minds": 150}   # 1,000 times in all


def lecture_model(values: dict):
    """The lecture's example as a corpus of word tokens: 'students opened their' 1,000 times, followed
    by 'books' 400 times (and laptops, exams, minds): an order-4 n-gram with the page's smoothing."""
    from playground.lm.ngram import NGramModel

    v = complete(SCHEMA, values)
    sentences = [[*LECTURE_CONTEXT, w] for w, c in LECTURE_NEXT.items() for _ in range(c)]
    return NGramModel(4, v["smoothing"], float(v["add_k"])).fit(sentences)


def lecture_prob(values: dict, word: str = "books") -> float:
    """P(word | students opened their) under the page's smoothing (0.4 by plain counting)."""
    return lecture_model(values).prob(list(LECTURE_CONTEXT), word)


_LESSON_CACHE: dict = {}


def _corpus_and_tokens(values: dict):
    """(corpus, tokenizer) for these values, kept for the last few settings (lessons, live checks)."""
    key = repr((corpus_inputs(values), relevant(values)["tokens"], relevant(values)["k"]))
    if key not in _LESSON_CACHE:
        if len(_LESSON_CACHE) > 8:
            _LESSON_CACHE.clear()
        corpus = make_corpus(values)
        _LESSON_CACHE[key] = (corpus, make_tokenizer(values, corpus.alphabet))
    return _LESSON_CACHE[key]


def settings_metrics(values: dict) -> dict:
    """The lessons' measures that need no training: the lecture example's probability, and the
    page's n-gram (order, smoothing, k) on the page's corpus and tokens: its validation bits per
    token and the order validation picks (backoff, orders 1–6)."""
    v = relevant(values)
    key = repr(("settings", corpus_inputs(v), v["tokens"], v["k"], v["order"], v["smoothing"], v["add_k"]))
    if key not in _LESSON_CACHE:
        corpus, tok = _corpus_and_tokens(values)
        fit = fit_ngram(values, tok, corpus)
        best_key = repr(("best", corpus_inputs(v), v["tokens"], v["k"]))
        if best_key not in _LESSON_CACHE:
            _LESSON_CACHE[best_key] = reference_ngram(tok, corpus)
        best = _LESSON_CACHE[best_key]
        bits = fit["val_bits"][fit["order"]]
        _LESSON_CACHE[key] = {"ngram_val_bits": float(bits), "ngram_best_order": float(best["order"]),
                              "ngram_best_bits": float(best["val_bits"][best["order"]])}
    return {"lecture_books": lecture_prob(values), **_LESSON_CACHE[key]}


def lesson_metrics(values: dict) -> dict[str, Callable[[Trainer], float]]:
    """The trainer metrics of a run a student trains on the page (``lessons.live_extras``)."""
    corpus, tok = _corpus_and_tokens(values)
    return metrics_of(corpus, tok, values)


# ---- pretrain -> fine-tune ------------------------------------------------------------------------
class FinetunePair(SideBySide):
    """The fine-tune tab's two runs (pretrained body + new head, the same architecture from
    scratch), driven as one by the page's live controls, each for at most ``max_epochs`` epochs
    (or until early stopping)."""

    NAMES = ("pretrained + new head", "from scratch")

    def __init__(self, trainers: dict, max_epochs: int, spec, data):
        super().__init__(trainers)
        self.max_epochs = int(max_epochs)
        self.spec, self.data = spec, data

    def _over(self, t) -> bool:
        return t.done or t.epoch >= self.max_epochs

    @property
    def done(self) -> bool:
        return all(self._over(t) for t in self.trainers.values())

    def _behind(self):
        live = [t for t in self.trainers.values() if not self._over(t)]
        return min(live, key=lambda t: t.epoch + t._cursor / max(1, t.n_train)) if live else None

    def run_epochs(self, n: int = 1) -> dict:
        for t in self.trainers.values():
            left = min(int(n), self.max_epochs - t.epoch)
            if left > 0 and not t.done:
                t.run_epochs(left)
        return self.latest

    @property
    def pretrained(self) -> Trainer:
        return self.trainers[self.NAMES[0]]

    @property
    def scratch(self) -> Trainer:
        return self.trainers[self.NAMES[1]]

    def best_val(self) -> dict:
        """Each run's best validation accuracy so far (what the size sweep and the lesson read)."""
        out = {}
        for name, t in self.trainers.items():
            vals = [h.get("val_accuracy") for h in t.history[1:] if h.get("val_accuracy") is not None]
            out[name] = max(vals) if vals else float("nan")
        return out


def ft_labels(values: dict) -> int | None:
    """The labelled training sequences the fine-tune runs use (None: all of the pool)."""
    n = int(complete(SCHEMA, values)["ft_n"])
    return None if n == 0 else n


def labelled_set(values: dict, corpus, upload=None):
    """The fine-tune tab's labelled task: the planted-motif classification made like the corpus,
    or an uploaded labelled file (sequence + class label). Raises a PlaygroundError."""
    from playground.lm import finetune as F

    v = complete(SCHEMA, values)
    if v["ft_task"] == "upload":
        if upload is None:
            raise LMSettingError("The labelled task 'upload' needs a file, and none was given.",
                                 "Upload a CSV (sequence, label) or a FASTA with label=... headers.")
        return F.labelled_from_file(upload[1], upload[0], corpus.alphabet, max_length=MAX_UPLOAD_LENGTH)
    return F.motif_task(corpus)


def finetune_config(values: dict) -> TrainConfig:
    from playground.lm.finetune import finetune_config as cfg

    v = complete(SCHEMA, values)
    return dataclass_replace(cfg(int(v["seed"]), float(v["ft_lr"])), device=v["device"])


def dataclass_replace(obj, **kw):
    import dataclasses

    return dataclasses.replace(obj, **kw)


def finetune_pair(values: dict, lm_model, tok, labelled) -> FinetunePair:
    """Both fine-tune runs, untrained, on the same split with the same settings."""
    from playground.lm.finetune import finetune_trainers

    v = complete(SCHEMA, values)
    res = finetune_trainers(lm_model, tok, labelled, ft_labels(v), config=finetune_config(v), seed=int(v["seed"]))
    return FinetunePair(dict(zip(FinetunePair.NAMES, (res.pretrained, res.scratch))), int(v["ft_epochs"]), res.spec,
                        res.data)


def finetune_signature(values: dict, lm_signature: str, snapshot, upload=None) -> str:
    """Changes exactly when the fine-tune pair must be rebuilt: its settings, the pretrained
    snapshot (the LM run and the step it was taken at) and the labelled file."""
    v = complete(SCHEMA, values)
    keys = ("ft_task", "ft_n", "ft_lr", "ft_epochs", "seed", "device")
    return repr((tuple(v[k] for k in keys), lm_signature, snapshot,
                 (upload[0], upload_hash(upload)) if v["ft_task"] == "upload" and upload else None))


def finetune_gain(values: dict, lm_model, tok, corpus, upload=None) -> float:
    """Best validation accuracy of (pretrained + new head) − (from scratch), each trained for
    ``ft_epochs`` on ``ft_n`` labelled sequences (the lesson's measure; validation, not test)."""
    pair = finetune_pair(values, lm_model, tok, labelled_set(values, corpus, upload))
    while not pair.done:
        pair.run_epochs(pair.max_epochs)
    best = pair.best_val()
    return float(best[FinetunePair.NAMES[0]] - best[FinetunePair.NAMES[1]])


def size_sweep(values: dict, lm_model, tok, labelled, sizes=(25, 50, 100, 200, 0), progress=None) -> list[dict]:
    """Both runs at each labelled-set size (0 = all), ``ft_epochs`` each: best validation accuracy per
    run kind ({'labels', 'model', 'value'} rows, for ``plots.lm.size_curve_figure``)."""
    rows = []
    total = len(sizes)
    for i, n in enumerate(sizes):
        pair = finetune_pair({**values, "ft_n": int(n)}, lm_model, tok, labelled)
        pair.run_epochs(pair.max_epochs)
        used = int(pair.data.meta["n_labels"])
        for name, acc in pair.best_val().items():
            rows.append({"labels": used, "model": name, "value": acc})
        if progress:
            progress(i + 1, total, f"{used} labelled sequences done")
    return rows


def build(values: dict, upload=None, corpus=None, ngram: dict | None = None) -> Run:
    """The run the page trains for these values (missing ones take their defaults).

    ``upload``: (file name, bytes) for the 'upload' corpus; ``corpus``: the ``make_corpus``
    result when the caller has it (the page caches it), ``ngram`` the ``fit_ngram`` result likewise.
    Run.data is the ``SplitData`` of the
    LM (None for the n-gram); extras: ``corpus``, ``tokenizer``, ``uniform_bits``,
    ``masking``, ``label``, ``model`` and, for the n-gram, ``ngram`` (``fit_ngram``).
    Raises a PlaygroundError or ValueError naming the setting to change."""
    from playground.lm.training import lm_data

    v = complete(SCHEMA, values)
    corpus = corpus if corpus is not None else make_corpus(v, upload)
    tok = make_tokenizer(v, corpus.alphabet)
    extras = {"corpus": corpus, "tokenizer": tok, "uniform_bits": uniform_bits(tok), "label": data_label(v, corpus),
              "model": v["model"], "alphabet": corpus.alphabet}
    sig = signature(v, upload)
    if v["model"] == "ngram":
        extras["ngram"] = ngram if ngram is not None else fit_ngram(v, tok, corpus)
        return Run(None, None, None, sig, extras)
    rate, mask_frac, random_frac = masking_of(v) if v["model"] == "masked" else (0.15, 0.8, 0.1)
    spec = spec_of(v, tok, corpus)
    data = lm_data(tok, corpus, v["model"], rate=rate, mask_frac=mask_frac, random_frac=random_frac,
                   seed=int(v["seed"]), max_len=spec.max_len)
    extras["masking"] = (rate, mask_frac, random_frac) if v["model"] == "masked" else None
    extras["parameters"] = {"model": MODELS[v["model"]], "tokens": tok.describe(), "lr": float(v["lr"]),
                            "batch": int(v["batch"])}
    if v["model"] == "masked":
        extras["parameters"]["masking"] = f"{rate:g}: {mask_frac:.0%} [MASK] / {random_frac:.0%} random"
    return Run(data, spec, config_of(v), sig, extras, metrics_of(corpus, tok, v))


__all__ = ["PARAMS", "SCHEMA", "PRIVATE", "UNSUPPORTED", "build", "make_corpus", "make_tokenizer", "spec_of",
           "config_of", "apply_live", "fit_ngram", "reference_ngram", "relevant", "signature", "masking_of",
           "motif_accuracy", "uniform_bits", "corpus_inputs", "FinetunePair", "labelled_set", "finetune_pair",
           "finetune_signature", "finetune_gain", "size_sweep", "ft_labels", "lecture_model", "lecture_prob",
           "settings_metrics", "lesson_metrics", "visible_accuracy", "input_spec"]
