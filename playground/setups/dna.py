"""DNA & CNNs (pages/2_DNA_CNN.py): its settings and its run.

``PARAMS`` is the one place each setting of the page and its default is written; the page's
widgets, its URL, the lessons and the code export all read them from here. ``build(values)`` is
the run the page trains for those values: the seeded data set (planted motifs, the 8-mer
regression, an uploaded file, a Genomic Benchmarks set), the model spec, the ``TrainConfig``
and the planted motifs, for the page, the lessons and notebooks alike::

    from playground.setups import dna
    run = dna.build({"motif": "GATA1", "model": "custom", "grad_clip": 1.0})
    trainer = run.make_trainer()            # seeded split, initial weights and shuffling
    run.metrics["motif_recovery"](trainer)  # how well a first-layer filter matches GATA1

Live settings (``lr``, ``early_stop``) are applied to a running trainer by ``apply_live``; view
settings (the tab, the chosen sequence, the logos ...) only change what is drawn. Every other
setting is part of the run: changing it rebuilds the trainer (``Run.signature``).
"""
from __future__ import annotations

import hashlib
from typing import Callable

from playground.bundle import InputSpec
from playground.data import dna
from playground.data.motifs import KNOWN_MOTIFS, PRIMER_CONSENSUS, resolve_motif
from playground.data.parsing import LENGTH_POLICIES, parse_sequence_file
from playground.models.base import ACTIVATION_LABELS, build_model
from playground.settings import Param, Schema
from playground.setups import Run, complete
from playground.data.split import split_shares
from playground.train import LEARNING_RATES, OPTIMIZERS, SCHEDULES, TrainConfig, Trainer

MOTIF_NAMES = tuple(KNOWN_MOTIFS)
N_CHOICES = (200, 500, 1000, 2000, 4000, 8000)
GB_N_CHOICES = (500, 1000, 2000, 4000, 8000, 16000, 0)   # sequences of a Genomic Benchmarks set; 0 = all
LENGTH_CHOICES = (20, 30, 40, 50, 60, 80, 100, 150, 200)
BATCH_CHOICES = (16, 32, 64, 128, 256)
GRAD_CLIPS = (0.0, 0.5, 1.0, 2.0, 5.0)      # max gradient norm; 0 = no clipping
MAX_CONV_LAYERS = 4
MAX_UPLOAD_LENGTH = 2000
MODELS = {"primer": "Genomics-primer CNN (32 × w12, max-pool 4, dense 16)",
          "course": "Course DNA CNN (32 × w3 → linear)",
          "custom": "Custom CNN",
          "mlp": "MLP on the flat one-hot",
          "logreg": "Logistic regression on the flat one-hot"}
TABS = ("📄 Data & one-hot", "✋ Convolution by hand", "📈 Training", "🧩 Filters → logos", "🧪 Designed filters",
        "🔬 Explain a sequence", "💾 Save & export")

# The "✋ Convolution by hand" tab (display only): the sequence, one or two filters (a consensus,
# a JASPAR motif as log-odds, a learned filter of the model, or a 4 x k grid), bias, padding,
# stride, pool and the window shown. Defaults: ACCGTCACCTA with CCG and TTA, max-pool 2. In the
# link only when changed (omit_default), so the page's links stay short.
CONV_FILTER_KINDS = ("consensus", "jaspar", "learned", "grid")


def _conv(name: str, default, kind: str = "str", **kw) -> Param:
    return Param(name, default, kind, view=True, omit_default=True, **kw)


def _conv_filter(i: int, consensus: str, motif: str, grid: str) -> list[Param]:
    """Filter i's settings: where it comes from, and each source's value; its bias."""
    return [_conv(f"conv_kind{i}", "consensus", choices=CONV_FILTER_KINDS),
            _conv(f"conv_cons{i}", consensus, help=f"filter {i} as a consensus (IUPAC letters allowed)"),
            _conv(f"conv_motif{i}", motif, choices=MOTIF_NAMES),
            _conv(f"conv_learned{i}", i, "int", lo=1, hi=128, help="a first-layer filter of the model (1-based)"),
            _conv(f"conv_grid{i}", grid, help="rows A;C;G;T, numbers split by commas"),
            _conv(f"conv_bias{i}", 0.0, "float", lo=-100.0, hi=100.0)]


CONV_PARAMS = [
    _conv("conv_source", "typed", choices=("typed", "validation")),
    _conv("conv_sequence", "ACCGTCACCTA", help="the typed sequence"),
    _conv("conv_val", 1, "int", lo=1, hi=100000, help="validation sequence (1-based)"),
    _conv("conv_filters", 2, "int", lo=1, hi=2, help="filters (out_channels)"),
    *_conv_filter(1, "CCG", "CTCF", "0,0,0;1,1,0;0,0,1;0,0,0"),
    *_conv_filter(2, "TTA", "GATA1", "0,0,1;0,0,0;0,0,0;1,1,0"),
    _conv("conv_grid_k", 3, "int", lo=1, hi=25, help="columns of the typed grids (kernel_size)"),
    _conv("conv_padding", 0, "int", lo=0, hi=12),
    _conv("conv_stride", 1, "int", lo=1, hi=5),
    _conv("conv_pool", 2, "int", lo=0, hi=10, help="max-pool size (0 = no pooling)"),
    _conv("conv_window", 1, "int", lo=1, hi=100000, help="the window shown (1-based)"),
]

PARAMS = [
    # data
    Param("dataset", "planted", choices=tuple(dna.DATASETS)),
    Param("motif_source", "list", choices=("list", "jaspar", "consensus")),
    Param("motif", "CTCF", choices=MOTIF_NAMES),
    Param("jaspar_id", "MA0139.1"),
    Param("consensus", PRIMER_CONSENSUS),
    Param("motifs", ["CTCF", "GATA1", "SP1 (GC box)"], "list", choices=MOTIF_NAMES, max_len=5),
    Param("motif_a", "GATA1", choices=MOTIF_NAMES),
    Param("motif_b", "AP-1 (FOS::JUN)", choices=MOTIF_NAMES),
    Param("spacing", 4, "int", lo=0, hi=30, help="bp from motif A's end to motif B"),
    Param("n", 2000, "int", choices=N_CHOICES, help="number of sequences"),
    Param("length", 50, "int", choices=LENGTH_CHOICES, help="bp"),
    Param("gc", 0.5, "float", lo=0.2, hi=0.8),
    Param("both_strands", False, "bool"),
    Param("from_consensus", False, "bool"),
    Param("motif_noise", 0.0, "float", lo=0.0, hi=0.5),
    Param("label_noise", 0.0, "float", lo=0.0, hi=0.3),
    # an uploaded file (the file itself is not a setting: see build(upload=...))
    Param("length_policy", "pad", choices=LENGTH_POLICIES),
    Param("map_u", False, "bool"),
    Param("label_kind", "auto", choices=("auto", "classification", "regression")),
    Param("seq_col", ""),
    Param("label_col", ""),
    # Genomic Benchmarks
    Param("gb_name", "human_nontata_promoters", choices=tuple(dna.GENOMIC_BENCHMARKS)),
    Param("gb_n", 2000, "int", choices=GB_N_CHOICES, help="sequences used (0 = the whole set); the published "
          "train / test split is kept, in proportion"),
    Param("train_pct", 80, "int", lo=50, hi=90, help="% of the sequences used for training"),
    Param("val_pct", 10, "int", lo=5, hi=30, help="% for validation (early stopping, schedules); the rest is the test set"),
    # model
    Param("model", "primer", choices=tuple(MODELS)),
    Param("conv_layers", 1, "int", lo=1, hi=MAX_CONV_LAYERS),
    *[Param(f"c{i + 1}", 32, "int", lo=1, hi=128, help=f"filters in conv layer {i + 1}")
      for i in range(MAX_CONV_LAYERS)],
    *[Param(f"k{i + 1}", 12 if i == 0 else 5, "int", lo=3, hi=25, help=f"filter width in conv layer {i + 1}")
      for i in range(MAX_CONV_LAYERS)],
    Param("padding", "valid", choices=("valid", "same")),
    Param("batch_norm", False, "bool"),
    Param("activation", "relu", choices=tuple(ACTIVATION_LABELS)),
    Param("pool", "max", choices=("max", "adaptive", "none")),
    Param("pool_size", 4, "int", lo=2, hi=10),
    Param("pool_output", 1, "int", lo=1, hi=10),
    Param("dropout", 0.0, "float", lo=0.0, hi=0.8, help="dropout in the dense head"),
    Param("conv_dropout", 0.0, "float", lo=0.0, hi=0.8, help="dropout after every conv block as well"),
    Param("dense", 16, "int", lo=0, hi=128, help="0 = straight to the output"),
    Param("encoding", "one_hot", choices=("one_hot", "integer"),
          help="how the logistic regression reads a base: one-hot, or numericalised A=1 C=2 G=3 T=4"),
    Param("mlp_layers", 1, "int", lo=1, hi=3),
    Param("mlp_neurons", 32, "int", lo=1, hi=32),
    # training: the learning rate and the early-stopping patience are applied to the running trainer
    Param("optimizer", "adam", choices=tuple(OPTIMIZERS)),
    Param("lr", 0.003, "float", choices=tuple(LEARNING_RATES), live=True),
    Param("batch", 32, "int", choices=BATCH_CHOICES),
    Param("grad_clip", 0.0, "float", choices=GRAD_CLIPS, help="clip the gradient norm to this (0 = off)"),
    Param("early_stop", 5, "int", lo=0, hi=50, live=True, help="patience in epochs on the validation loss (0 = off)"),
    Param("schedule", "plateau", choices=tuple(SCHEDULES), help="learning-rate schedule (reads the validation loss)"),
    # display
    Param("tab", TABS[0], choices=TABS, view=True),
    Param("seq", 0, "int", lo=0, hi=100000, view=True, help="validation sequence (1-based); 0 = the first with a motif"),
    Param("n_logos", 8, "int", choices=(4, 8, 16, 32), view=True),
    Param("logo_kind", "activation", choices=("activation", "weights"), view=True),
    Param("explain_class", 0, "int", lo=0, hi=10, view=True),
    Param("sal_logo", True, "bool", view=True),
    # the mutation scan of a typed sequence (Explain tab): where the sequence comes from, its text, the unit
    Param("scan_source", "validation", choices=("validation", "typed"), view=True, omit_default=True),
    Param("scan_seq", "", view=True, omit_default=True, help="the typed DNA sequence (A C G T N)"),
    Param("scan_units", "output", choices=("output", "probability"), view=True, omit_default=True,
          help="the scan's unit: the model output (logit / value) or the probability"),
    # the convolution by hand (playground/ui/conv_view.py); the defaults are the workshop's example
    *CONV_PARAMS,
]
# designed vs learned filters (playground/ui/designed_view.py, playground/designed.py): display only,
# in the link only when changed
PARAMS += [Param(f"design_{n}", d, k, view=True, omit_default=True, **kw) for n, d, k, kw in (
    ("source", "jaspar", "str", dict(choices=("jaspar", "consensus", "grid"))),
    ("motif", "CTCF", "str", dict(choices=MOTIF_NAMES)),
    ("consensus", "CCACCAGGGGGC", "str", dict(help="the designed filter as a consensus (IUPAC letters allowed)")),
    ("grid", "1,0,0;0,1,0;0,0,1;0,0,0", "str", dict(help="the designed filter's numbers: rows A;C;G;T, split by commas")),
    ("bias", 0.0, "float", dict(lo=-100.0, hi=100.0)),
    ("freeze", True, "bool", dict(help="hold the designed filter fixed while the rest trains")),
    ("filter", 1, "int", dict(lo=1, hi=256, help="the first-layer filter of the current model to replace")),
    ("epochs", 20, "int", dict(lo=1, hi=100, help="most epochs per arm of the comparison (early stopping)")))]
SCHEMA = Schema("dna", PARAMS)
# The page's other session slots (state.slot(name) -> "dna._<name>"):
PRIVATE = ("jaspar_query",   # the JASPAR search box
           "upload",         # the uploaded file (file_uploader)
           "gb_download",    # the "Download it now" button of a missing Genomic Benchmarks set
           "gb_error",       # ... and its last error
           "data",           # the data set: (data_key, DNADataset)
           "interp",         # filter PWMs + motif recovery of the current weights (throttled)
           "recovery",       # motif recovery per epoch (the filters tab's curve)
           "logos",          # the filter logos' PNG (throttled)
           "sal_logo",       # the saliency logo's PNG
           "estimate",       # (run signature, estimated seconds per epoch) for real data sets
           "conv_play",      # the convolution by hand is stepping by itself (its ⏯ Play)
           "conv_grid_edit1", "conv_grid_edit2")   # ... and its grids' data editors (edits -> conv_grid1/2)
PRIVATE += ("designed",)     # designed vs learned: the comparisons run (per signature), the last change
# Data sets a lesson cannot use, and why.
UNSUPPORTED = {"dataset": {"upload": "needs a file the student uploads",
                           "genomic": "downloads a Genomic Benchmarks set from the internet"}}


# ---- the data set ---------------------------------------------------------------------------
def motif_of(values: dict):
    """The planted motif of the 'planted' data set: from the list, a JASPAR ID, or a consensus."""
    v = complete(SCHEMA, values)
    src = v["motif_source"]
    which = {"list": v["motif"], "jaspar": v["jaspar_id"], "consensus": "consensus:" + v["consensus"]}[src]
    return resolve_motif(which)


def motifs_of(values: dict) -> list:
    """The motifs the page plants for these values (without building the data set)."""
    v = complete(SCHEMA, values)
    kind = v["dataset"]
    if kind == "planted":
        return [motif_of(v)]
    if kind == "multiclass":
        return [resolve_motif(m) for m in v["motifs"]]
    if kind == "grammar":
        return [resolve_motif(v["motif_a"]), resolve_motif(v["motif_b"])]
    return []


def upload_digest(upload: tuple[str, bytes] | None) -> str | None:
    return hashlib.sha1(upload[1]).hexdigest() if upload is not None else None


def data_key(values: dict, upload: tuple[str, bytes] | None = None) -> tuple:
    """What the data set depends on for these values (the page rebuilds it when this changes)."""
    v = complete(SCHEMA, values)
    kind, seed = v["dataset"], int(v["seed"])
    common = (v["n"], v["length"], v["gc"], v["from_consensus"], v["motif_noise"], seed)
    if kind == "planted":
        src = v["motif_source"]
        which = {"list": v["motif"], "jaspar": v["jaspar_id"], "consensus": v["consensus"]}[src]
        return (kind, src, which, v["both_strands"], v["label_noise"], *common)
    if kind == "multiclass":
        return (kind, tuple(v["motifs"]), v["both_strands"], v["label_noise"], *common)
    if kind == "grammar":
        return (kind, v["motif_a"], v["motif_b"], v["spacing"], *common)
    if kind == "kmer8":
        return (kind,)          # all 8-mers: the same data for every seed (the seed picks the split)
    if kind == "upload":
        return (kind, upload_digest(upload), v["length_policy"], v["map_u"], v["label_kind"], v["seq_col"],
                v["label_col"])
    return (kind, v["gb_name"], v["gb_n"], seed)


def make_dataset(values: dict, upload: tuple[str, bytes] | None = None) -> dna.DNADataset:
    """The page's seeded data set for these values. ``upload`` = (file name, bytes) for the
    'upload' data set; its columns end up in ``dataset.settings['columns']``.
    Raises ValueError (SequenceFileError for a bad file) with what to change."""
    v = complete(SCHEMA, values)
    kind, seed = v["dataset"], int(v["seed"])
    common = dict(n=v["n"], length=v["length"], gc=v["gc"], from_consensus=v["from_consensus"],
                  motif_noise=v["motif_noise"], seed=seed)
    if kind == "planted":
        return dna.planted_motif(motif_of(v), both_strands=v["both_strands"], label_noise=v["label_noise"], **common)
    if kind == "multiclass":
        return dna.planted_multiclass(v["motifs"], both_strands=v["both_strands"], label_noise=v["label_noise"],
                                      **common)
    if kind == "grammar":
        return dna.motif_grammar(v["motif_a"], v["motif_b"], v["spacing"], **common)
    if kind == "kmer8":
        return dna.eight_mer_regression(seed=seed)
    if kind == "upload":
        if upload is None:
            raise ValueError("The 'upload' data set needs a file: upload a CSV/TSV or FASTA file first.")
        name, raw = upload
        parsed = parse_sequence_file(raw, name, seq_col=v["seq_col"] or None, label_col=v["label_col"] or None,
                                     length_policy=v["length_policy"], map_aliases=v["map_u"],
                                     label_kind=v["label_kind"], max_length=MAX_UPLOAD_LENGTH)
        ds = dna.from_parsed(parsed, name=name)
        ds.settings["columns"] = list(parsed.columns or [])
        return ds
    return dna.load_genomic_benchmark(v["gb_name"], max_sequences=int(v["gb_n"]) or None, seed=seed)


# ---- model and training ---------------------------------------------------------------------
def n_outputs(ds: dna.DNADataset) -> int:
    return 1 if ds.task in ("binary", "regression") else ds.n_classes


def spec_of(values: dict, length: int, n_out: int):
    """The model spec for these values, for sequences of ``length`` bp and ``n_out`` outputs.
    Raises ValueError when the layers do not fit the length."""
    from playground.models.cnn import CNNSpec, LogisticRegressionSpec, preset
    from playground.models.mlp import MLPSpec

    v = complete(SCHEMA, values)
    m = v["model"]
    if m in ("primer", "course"):
        return preset(m, length, n_out)
    if m == "logreg":
        return LogisticRegressionSpec(length=length, n_outputs=n_out, encoding=v["encoding"])
    if m == "mlp":
        return MLPSpec(4 * length, (v["mlp_neurons"],) * v["mlp_layers"], "relu", n_out, v["dropout"])
    n = v["conv_layers"]
    return CNNSpec(length=length, channels=tuple(v[f"c{i + 1}"] for i in range(n)),
                   kernel_sizes=tuple(v[f"k{i + 1}"] for i in range(n)), padding=v["padding"],
                   batch_norm=v["batch_norm"], activation=v["activation"], pool=v["pool"], pool_size=v["pool_size"],
                   pool_output=v["pool_output"], dropout=v["dropout"], conv_dropout=v["conv_dropout"],
                   dense=(v["dense"],) if v["dense"] else (),
                   n_outputs=n_out)


def config_of(values: dict) -> TrainConfig:
    v = complete(SCHEMA, values)
    return TrainConfig(optimizer=v["optimizer"], lr=float(v["lr"]), batch_size=int(v["batch"]), seed=int(v["seed"]),
                       device=v["device"], early_stopping=int(v["early_stop"]), grad_clip=float(v["grad_clip"]),
                       schedule=v["schedule"], track_metrics=True)


def apply_live(trainer: Trainer, values: dict) -> None:
    """Apply the live settings (learning rate, early-stopping patience) to a running trainer."""
    v = complete(SCHEMA, values)
    trainer.set_lr(float(v["lr"]))
    trainer.config.early_stopping = int(v["early_stop"])


def motif_recovery_score(tr: Trainer, motifs: list) -> float:
    """The worst-recovered planted motif's score: each motif's best first-layer filter match
    (column-wise Pearson of the filter's activation PWM, 1 = identical), as the page shows it.
    The PWMs are collected over the training set (at most 4000 sequences): what the filters learned
    from, never the held-out test set."""
    from playground.interpret import activation_pwms, has_filters, motif_recovery

    if not motifs or not has_filters(tr.model):
        return float("nan")
    rec = motif_recovery(activation_pwms(tr.model, tr.data.x_train[:4000]), motifs)
    return min(r["score"] for r in rec)


def metrics_of(motifs: list) -> dict[str, Callable[[Trainer], float]]:
    """The page's lesson metrics for a run that planted ``motifs``."""
    return {"motif_recovery": lambda tr: motif_recovery_score(tr, motifs)}


def build(values: dict, *, upload: tuple[str, bytes] | None = None, dataset: dna.DNADataset | None = None) -> Run:
    """The run the page trains for these values (missing ones take their defaults).

    ``upload``: (file name, bytes) of the uploaded file for the 'upload' data set. ``dataset``:
    the data set ``make_dataset`` already built for these values (the page caches it).
    Run.data is the ``DNADataset``; ``make_trainer()`` splits it (seeded) and builds the model.
    extras: ``dataset``, ``motifs``, ``train_fraction``, ``input`` (the bundle's InputSpec) and
    ``parameters`` (what the run list shows). Raises ValueError for a data set that cannot be
    made or a model that does not fit the sequences."""
    v = complete(SCHEMA, values)
    ds = dataset if dataset is not None else make_dataset(v, upload)
    spec = spec_of(v, ds.length, n_outputs(ds))
    config = config_of(v)
    frac, val_frac = split_shares(v["train_pct"], v["val_pct"])
    signature = SCHEMA.signature(v)
    if v["dataset"] == "upload":        # the file is part of the run, though not a setting
        signature += f" upload={upload_digest(upload)}"
    parameters = {"model": MODELS[v["model"]], "lr": config.lr, "batch": config.batch_size}
    if config.grad_clip > 0:
        parameters["grad_clip"] = config.grad_clip

    def factory(run: Run) -> Trainer:
        return Trainer(build_model(run.spec, config.seed), ds.split(frac, config.seed, val_frac),
                       TrainConfig(**vars(run.config)))

    extras = {"dataset": ds, "motifs": ds.motifs, "train_fraction": frac, "val_fraction": val_frac,
              "parameters": parameters,
              "input": InputSpec("one_hot", "dna", length=ds.length)}
    return Run(ds, spec, config, signature, extras, metrics_of(ds.motifs), factory)


__all__ = ["PARAMS", "SCHEMA", "PRIVATE", "MODELS", "TABS", "build", "apply_live",
           "make_dataset", "data_key", "spec_of", "config_of", "motifs_of", "metrics_of", "motif_recovery_score",
           "UNSUPPORTED"]
