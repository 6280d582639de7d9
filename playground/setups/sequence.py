"""Sequence models & attention (pages/3_Sequence_Models.py): its settings and its run.

``PARAMS`` is the one place each setting and its default is written; the page's widgets, its URL,
the lessons and the code export all read them from here. ``build(values)`` is the run the page
trains for those values (seeded data, split, initial weights and shuffling)::

    from playground.setups import sequence
    run = sequence.build({"dataset": "dna_grammar", "n": 400, "family": "transformer"})
    trainer = run.make_trainer()

The model settings of the four families have prefixes (``t_`` Transformer, ``r_`` RNN, ``c_`` CNN,
``h_`` hybrid); ``hyperparameters(values)`` turns the chosen family's into the keywords of
``compare.make_spec``. An uploaded file is not a setting (it is not in the link): pass it as
``upload=(file name, bytes)``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from playground import metrics as M
from playground.bundle import InputSpec
from playground.compare import make_spec
from playground.data import protein as P
from playground.data.protein_files import reading_key
from playground.data.split import SplitData
from playground.encoding import ALPHABETS, decode
from playground.errors import PlaygroundError
from playground.models.hybrid import HYBRID_SMALL
from playground.models.rnn import CELLS
from playground.models.transformer import NORM, POSITIONAL
from playground.settings import Param, Schema
from playground.setups import Run, complete
from playground.data.split import split_shares
from playground.train import LEARNING_RATES, OPTIMIZERS, SCHEDULES, TrainConfig

DATASETS = {**P.BUILTIN, "upload": "Upload CSV / TSV / FASTA"}
N_CHOICES = (200, 400, 600, 1000, 2000, 3000, 4000)
LENGTH_CHOICES = (30, 40, 50, 60, 80, 100, 150, 200)
BATCH_CHOICES = (16, 32, 64, 128)
MODEL_FAMILIES = {"transformer": "Transformer encoder", "hybrid": "Hybrid CNN + Transformer (course)",
                  "rnn": "RNN / LSTM / GRU", "cnn": "CNN (embedding + Conv1d)"}
D_MODELS = (8, 16, 32, 64, 128, 256)
HEADS = (1, 2, 4, 8)
FFS = (16, 32, 64, 128, 256, 512, 1024)
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.5)
RNN_EMBEDS = (4, 8, 16, 32, 64)
HIDDEN = (8, 16, 32, 64, 128, 256)
CHANNELS = (8, 16, 32, 64, 128, 256)
HYBRID_EMBEDS = (8, 16, 32, 64)
HYBRID_HIDDEN = (16, 32, 64, 128)
POOL_POSITIONS = (8, 16, 32, 64)
COMPARE_CHOICES = ("cnn", "rnn", "lstm", "gru", "transformer", "hybrid")
WINDOW = 60            # attention positions shown at once for long sequences
# the hybrid's settings: h_<field> is HybridSpec.<field> (the presets set them all)
HYBRID_KEYS = ("embed_dim", "conv1_channels", "conv1_kernel", "conv2_channels", "conv2_kernel", "pool_positions",
               "heads", "ff", "layers", "hidden", "positional", "norm", "pooling")
FAMILY_PREFIX = {"transformer": "t_", "rnn": "r_", "cnn": "c_", "hybrid": "h_"}
UPLOAD_KEYS = ("up_alphabet", "up_per_residue", "up_map_rare", "up_truncate", "up_max_len")
BUILTIN_KEYS = ("n", "length")      # what only the built-in sets read

PARAMS = [
    # data
    Param("dataset", "dna_grammar", choices=tuple(DATASETS)),
    Param("n", 2000, "int", choices=N_CHOICES, help="sequences (built-in sets)"),
    Param("length", 60, "int", choices=LENGTH_CHOICES, help="sequence length / longest protein (built-in sets)"),
    Param("split", "random", choices=tuple(P.SPLITS)),
    Param("train_pct", 80, "int", lo=50, hi=90, help="% of the sequences used for training"),
    Param("val_pct", 10, "int", lo=5, hi=30, help="% for validation (early stopping, schedules); the rest is the test set"),
    # how an uploaded file is read
    Param("up_alphabet", "protein", choices=("protein", "dna")),
    Param("up_per_residue", False, "bool"),
    Param("up_map_rare", False, "bool"),
    Param("up_truncate", False, "bool"),
    Param("up_max_len", 1000, "int", lo=10, hi=5000),
    # model: the family, then each family's own settings
    Param("family", "hybrid", choices=tuple(MODEL_FAMILIES)),
    Param("t_d", 32, "int", choices=D_MODELS),
    Param("t_heads", 4, "int", choices=HEADS),
    Param("t_layers", 2, "int", lo=1, hi=4),
    Param("t_ff", 64, "int", choices=FFS),
    Param("t_dropout", 0.1, "float", choices=DROPOUTS),
    Param("t_norm", "pre", choices=tuple(NORM)),
    Param("t_pos", "sinusoidal", choices=tuple(POSITIONAL)),
    Param("t_pool", "mean", choices=("mean", "cls")),
    Param("r_cell", "lstm", choices=tuple(CELLS)),
    Param("r_embed", 16, "int", choices=RNN_EMBEDS),
    Param("r_hidden", 32, "int", choices=HIDDEN),
    Param("r_layers", 1, "int", lo=1, hi=3),
    Param("r_bi", True, "bool"),
    Param("r_out", "pooled", choices=("pooled", "last")),
    Param("c_layers", 2, "int", lo=1, hi=4),
    Param("c_channels", 32, "int", choices=CHANNELS),
    Param("c_kernel", 7, "int", lo=1, hi=25),
    Param("c_pool", "max", choices=("max", "mean")),
    Param("h_embed_dim", HYBRID_SMALL.embed_dim, "int", choices=HYBRID_EMBEDS),
    Param("h_conv1_channels", HYBRID_SMALL.conv1_channels, "int", choices=CHANNELS),
    Param("h_conv1_kernel", HYBRID_SMALL.conv1_kernel, "int", lo=2, hi=16),
    Param("h_conv2_channels", HYBRID_SMALL.conv2_channels, "int", choices=CHANNELS),
    Param("h_conv2_kernel", HYBRID_SMALL.conv2_kernel, "int", lo=2, hi=16),
    Param("h_pool_positions", HYBRID_SMALL.pool_positions, "int", choices=POOL_POSITIONS),
    Param("h_heads", HYBRID_SMALL.heads, "int", choices=HEADS),
    Param("h_ff", HYBRID_SMALL.ff, "int", choices=FFS),
    Param("h_layers", HYBRID_SMALL.layers, "int", lo=1, hi=4),
    Param("h_hidden", HYBRID_SMALL.hidden, "int", choices=HYBRID_HIDDEN),
    Param("h_positional", HYBRID_SMALL.positional, choices=("none", "sinusoidal")),
    Param("h_norm", HYBRID_SMALL.norm, choices=("pre", "post")),
    Param("h_pooling", HYBRID_SMALL.pooling, choices=("mean", "max")),
    # training: the learning rate is applied to the running trainer (no rebuild)
    Param("optimizer", "adam", choices=tuple(OPTIMIZERS)),
    Param("lr", 0.001, "float", choices=tuple(LEARNING_RATES), live=True),
    Param("batch", 32, "int", choices=BATCH_CHOICES),
    Param("early_stop", 5, "int", lo=0, hi=50, live=True, help="patience in epochs on the validation loss (0 = off)"),
    Param("schedule", "off", choices=tuple(SCHEDULES), help="learning-rate schedule (reads the validation loss)"),
    # what the views show: the validation sequence, the large map's layer, the zoom window,
    # the walkthrough's tiny example, layer and head
    Param("seq_idx", 0, "int", lo=0, hi=100_000, view=True),
    Param("layer", 1, "int", lo=1, hi=8, view=True),
    Param("win_start", 1, "int", lo=1, hi=100_000, view=True),
    Param("wt_seq", "", view=True),
    Param("wt_layer", 1, "int", lo=1, hi=8, view=True),
    Param("wt_head", 1, "int", lo=1, hi=8, view=True),
    # the run comparison tab: its own runs, started with a button (the live trainer never reads them;
    # a comparison reads them when it starts, see ``comparison``)
    Param("cmp_models", ["cnn", "lstm", "transformer", "hybrid"], "list", choices=COMPARE_CHOICES, max_len=6,
          view=True),
    Param("cmp_epochs", 5, "int", lo=1, hi=50, view=True),
]
SCHEMA = Schema("seq", PARAMS)
# The page's own session slots ("seq._<name>"): the file uploader widget, the upload kept for the
# session (file name, bytes), its Forget button, the per-residue window slider, the finished
# comparison runs and the comparison in progress. (LiveTraining("seq") keeps its own slots.)
PRIVATE = ("uploader", "upload", "forget", "pr_from", "runs", "cmp",
           "labels_uploader", "labels_upload", "labels_forget", "label_col", "ss_target", "ss_masks")
# settings values a lesson cannot use -> why
UNSUPPORTED = {"dataset": {"upload": "needs a file the student uploads"}}

# the validation metrics the page shows for each task (their names: playground.metrics.label)
SHOWN_METRICS = {"binary": ("accuracy", "mcc", "f1", "auroc"), "multiclass": ("accuracy", "mcc", "f1"),
                 "per_residue": ("q3", "mcc"), "regression": ("pearson_r", "r2")}


# ---- settings -> model ----------------------------------------------------------------------------
def hyperparameters(values: dict) -> dict:
    """The chosen family's settings as the keywords of ``compare.make_spec``."""
    v = complete(SCHEMA, values)
    family = v["family"]
    if family == "transformer":
        return dict(d_model=v["t_d"], heads=v["t_heads"], layers=v["t_layers"], ff=v["t_ff"], dropout=v["t_dropout"],
                    norm=v["t_norm"], positional=v["t_pos"], pooling=v["t_pool"])
    if family == "rnn":
        return dict(cell=v["r_cell"], hidden=v["r_hidden"], layers=v["r_layers"], embed_dim=v["r_embed"],
                    bidirectional=v["r_bi"], output=v["r_out"])
    if family == "cnn":
        return dict(channels=(v["c_channels"],) * v["c_layers"], kernel=v["c_kernel"], pooling=v["c_pool"])
    return {k: v[f"h_{k}"] for k in HYBRID_KEYS}


def hybrid_preset(spec) -> dict:
    """The hybrid settings (h_...) of a HybridSpec preset (HYBRID_SMALL, HYBRID_COURSE)."""
    return {f"h_{k}": getattr(spec, k) for k in HYBRID_KEYS}


def config_of(values: dict) -> TrainConfig:
    v = complete(SCHEMA, values)
    return TrainConfig(optimizer=v["optimizer"], lr=float(v["lr"]), batch_size=int(v["batch"]), seed=int(v["seed"]),
                       device=v["device"], early_stopping=int(v["early_stop"]), schedule=v["schedule"],
                       track_metrics=True, length_buckets=True)


# ---- settings -> data -----------------------------------------------------------------------------
@dataclass
class SeqData:
    """What the data settings make: the split, and what the page tells about it."""

    data: SplitData
    description: str          # how the set is made (markdown)
    alphabet: str             # 'dna' or 'protein'
    warnings: list[str] = field(default_factory=list)


def upload_options(values: dict) -> tuple:
    """How an uploaded file is read, as (name, value) pairs (hashable: a cache key)."""
    v = complete(SCHEMA, values)
    return (("alphabet", v["up_alphabet"]), ("per_residue", bool(v["up_per_residue"])),
            ("map_rare", bool(v["up_map_rare"])), ("truncate", bool(v["up_truncate"])),
            ("max_len", int(v["up_max_len"])))


def upload_hash(upload) -> str:
    return hashlib.sha1(upload[1]).hexdigest() if upload else ""


def data_inputs(values: dict, upload=None) -> tuple:
    """Everything the data set depends on (the page's cache key): the data settings and, for an
    upload, the file's name and content hash and how it is read."""
    v = complete(SCHEMA, values)
    common = (v["dataset"], v["split"], int(v["train_pct"]), int(v["val_pct"]), int(v["seed"]))
    if v["dataset"] == "upload":
        return common + ((upload[0] if upload else ""), upload_hash(upload), upload_options(v))
    return common + (int(v["n"]), int(v["length"]))


def make_data(values: dict, upload=None, reading: dict | None = None) -> SeqData:
    """The seeded data set and split for these values. Raises ``SequenceFileError`` for a file
    that cannot be read, ``ValueError`` for settings that cannot make a set."""
    v = complete(SCHEMA, values)
    seed = int(v["seed"])
    if v["dataset"] == "upload":
        if upload is None:
            raise PlaygroundError("The data set 'upload' needs a file, and none was given.",
                                  "Upload a CSV, TSV or FASTA file, or pick a built-in data set.")
        name, raw = upload
        opts = dict(upload_options(v))
        ps = P.load_protein_file(raw, name, per_residue=opts["per_residue"], map_rare=opts["map_rare"],
                                 max_length=opts["max_len"], truncate=opts["truncate"],
                                 alphabet=ALPHABETS[opts["alphabet"]], **(reading or {}))
    else:
        ps = P.builtin_set(v["dataset"], int(v["n"]), int(v["length"]), seed)
    train, val = split_shares(v["train_pct"], v["val_pct"])
    data = P.to_split(ps, v["split"], train, seed, val_fraction=val)
    return SeqData(data, ps.description, ps.alphabet.name, list(ps.warnings))


def data_label(values: dict, data: SplitData, upload=None) -> str:
    """One line naming the data set and split (run history, comparison runs)."""
    v = complete(SCHEMA, values)
    return (f"{DATASETS[v['dataset']]} · n={sum(data.sizes())} · {v['split']} split · "
            f"{v['train_pct']}% train, {len(data.y_val)} validation, {len(data.y_test)} test · seed {v['seed']}") + (f" · {upload[0]}" if v["dataset"] == "upload" and upload
                                                              else "")


# ---- the rebuild signature ------------------------------------------------------------------------
def relevant(values: dict) -> dict:
    """``values`` with the settings this run does not read put back to their defaults: the other
    families' model settings, the upload options for a built-in set, n and length for an upload."""
    v = complete(SCHEMA, values)
    unused = [n for fam, pre in FAMILY_PREFIX.items() if fam != v["family"] for n in SCHEMA.names if n.startswith(pre)]
    unused += list(BUILTIN_KEYS if v["dataset"] == "upload" else UPLOAD_KEYS)
    return {**v, **{n: SCHEMA[n].default for n in unused}}


def signature(values: dict, upload=None, reading: dict | None = None) -> str:
    """Changes exactly when the run changes: every setting that is neither live nor view (as far
    as this run reads it, see ``relevant``), plus the uploaded file's name and content."""
    v = complete(SCHEMA, values)
    sig = SCHEMA.signature(relevant(v))
    if v["dataset"] == "upload":
        sig += repr(("upload", upload[0] if upload else "", upload_hash(upload), reading_key(reading)))
    return sig


def build(values: dict, upload=None, data: SeqData | None = None, reading: dict | None = None) -> Run:
    """The run the page trains for these values (missing ones take their defaults).

    ``upload``: (file name, bytes) for the 'upload' data set. ``data``: the ``make_data`` result
    for these values when the caller already has it (the page caches it). Raises ``ValueError``
    when the model cannot be built for this data (e.g. the hybrid on a per-residue task).
    extras: ``alphabet``, ``input`` (the bundle's ``InputSpec``), ``description``, ``warnings``,
    ``label`` (see ``data_label``), ``task``, ``family``."""
    v = complete(SCHEMA, values)
    made = data if data is not None else make_data(v, upload, reading)
    spec = make_spec(v["family"], made.alphabet, made.data, hyperparameters(v))
    return Run(made.data, spec, config_of(v), signature(v, upload, reading),
               {"alphabet": made.alphabet, "input": InputSpec("tokens", made.alphabet), "description": made.description,
                "warnings": list(made.warnings), "label": data_label(v, made.data, upload), "task": made.data.task,
                "family": v["family"]})


# ---- the views ------------------------------------------------------------------------------------
def comparison_choices(task: str) -> list[str]:
    """The families the comparison tab offers for a task (the hybrid cannot label residues)."""
    return [f for f in COMPARE_CHOICES if not (task == "per_residue" and f == "hybrid")]


def comparison(values: dict, run: Run):
    """The run comparison the tab starts: its chosen families (``cmp_models``) for ``cmp_epochs``
    each, on the live run's data and split, with its optimizer, learning rate, batch size and seed."""
    from playground.compare import Comparison, default_specs

    v = complete(SCHEMA, values)
    fams = tuple(f for f in v["cmp_models"] if f in comparison_choices(run.data.task))
    specs = default_specs(run.extras["alphabet"], run.data, fams)
    return Comparison(run.data, specs, int(v["cmp_epochs"]), run.config, int(v["seed"]), run.extras["label"])


def sequence_text(data: SplitData, alphabet: str, i: int) -> str:
    """Validation sequence ``i`` as letters."""
    return decode(data.x_val[i].tolist(), ALPHABETS[alphabet])


def planted_spans(data: SplitData, i: int) -> list[tuple[str, int, int]]:
    """The motifs planted in validation sequence ``i``: (name, start, end), 0-based, end exclusive."""
    sites = data.meta.get("sites")
    if not sites:
        return []
    return [(s.motif, s.start, s.end) for s in sites[int(data.meta["val_idx"][i])]]


def prediction_text(trainer, i: int) -> str:
    """Validation sequence ``i``'s label and the model's prediction (markdown; '' per residue)."""
    data = trainer.data
    pred = trainer.predict(data.x_val[i: i + 1])
    y = data.y_val[i]
    names = data.class_names
    if data.task == "binary":
        p = float(pred[0])
        t = int(y.item())
        lab = names[t] if names else str(t)
        return f"label **{lab}** · model: P(class 1) = **{p:.2f}** ({'right' if (p >= 0.5) == bool(t) else 'wrong'})"
    if data.task == "multiclass":
        k = int(np.argmax(pred[0]))
        return f"label **{names[int(y)]}** · model: **{names[k]}** ({pred[0][k]:.2f})"
    if data.task == "regression":
        return f"value **{float(y):.3f}** · model: **{float(pred[0]):.3f}**"
    return ""


def per_residue_labels(trainer, i: int, length: int) -> tuple[str, str]:
    """(true, predicted) per-residue label strings of validation sequence ``i`` ('-' = ignored)."""
    data = trainer.data
    probs = trainer.predict(data.x_val[i: i + 1])[0][:length]
    pred = "".join(data.class_names[k] for k in probs.argmax(-1))
    true = "".join(data.class_names[t] if t >= 0 else "-" for t in data.y_val[i][:length].tolist())
    return true, pred


def headline(task: str) -> str:
    return M.HEADLINE[task]


__all__ = ["PARAMS", "SCHEMA", "PRIVATE", "UNSUPPORTED", "build", "make_data", "hyperparameters", "signature",
           "relevant", "config_of", "SeqData", "comparison"]
