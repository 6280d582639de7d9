"""Protein language model (pages/4_Protein_Language_Model.py): its settings and its run.

``PARAMS`` is the one place each setting and its default is written; the page's widgets, its URL
and the lessons read them from here. The page's one trained run is the **head vs CNN
comparison** of the fine-tuning tab: a small head on ESM-2's embeddings and a CNN from scratch,
trained side by side on the same proteins and split. It needs a loaded ESM-2 model (a handle of
``playground.esm``) and the ESM-2 inputs of the proteins, computed once (``finetune_inputs``)::

    from playground import esm
    from playground.setups import protein as setup
    values = {"data": "solubility", "size": 25}
    handle = esm.random_model("esm2_t6_8M_UR50D", seed=0)          # or esm.load_pretrained(...)
    inputs = setup.finetune_inputs(values, handle, setup.proteins(values))
    pair = setup.build(values, handle, inputs).make_trainer()        # compare.SideBySide of two Trainers

How the settings are marked (``Param.live`` / ``Param.view``):

- **run** (neither): what the comparison is trained from: the ESM-2 model and its precision
  (``model``, ``bf16``; the loaded model's key goes into the signature too, since a checkpoint
  can be uploaded without changing a setting), the proteins (``data``, and an uploaded file's
  content), ``split``, the embedding ``layer``, ``head``, ``hidden``, ``unfreeze``, ``size`` (the
  share of the training set used), plus ``seed`` and ``device``. ``signature`` is derived from
  them (``relevant`` puts back what the run does not read: the layer when layers are fine-tuned,
  bf16 on the CPU, exactly as before). Changing one rebuilds the pair.
- **live**: ``lr``: applied to both running trainers (``SideBySide.set_lr``), no rebuild.
- **view**: never part of the run. The tab; the masked-LM tab's ``seq``/``mask``/``topk``; the
  embeddings tab's ``pooling``, ``long``, ``cpu_bf16`` (bf16 matrix products) and ``proj``; the
  attention tab's ``att_layer``/``att_head``; the size sweep's ``sweep_epochs``. These views are
  computed on demand (a button, or on drawing) and cached under their own keys
  (``embedding_key``, ``attention_key``, ``sweep_key`` ...), so a change recomputes exactly the
  view that reads it and never touches the trained pair.

Pure Python: never imports streamlit (the page's model-loading state machine is in
``playground.ui.esm_loading``).
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np

from playground import esm
from playground.bundle import InputSpec
from playground.compare import SideBySide, size_sweep, subsample_train
from playground.data import protein
from playground.data.parsing import parse_sequence_file
from playground.data.split import SplitData
from playground.encoding import PROTEIN
from playground.models.base import build_model
from playground.settings import Param, Schema
from playground.setups import Run, complete
from playground.train import LEARNING_RATES, TrainConfig, Trainer

TABS = ("🎭 Masked amino acids", "🧭 Embeddings", "🏋️ Fine-tuning vs from scratch", "🔍 Attention & contacts",
        "🧬 Mutation scan")
SCAN_COPIES = (0, 1, 4, 16, 64)                    # masked copies per forward pass of a scan; 0 = automatic
DATA = {"solubility": "Solubility (generated, one label per protein)",
        "ss": "Secondary structure H/E/C (generated, one label per residue)",
        "upload": "Upload a FASTA / CSV file"}
N_BUILTIN = {"solubility": 300, "ss": 160}          # proteins in the generated sets
SIZES = (5, 10, 25, 50, 100)                        # % of the training set used
LRS = tuple(lr for lr in LEARNING_RATES if 1e-4 <= lr <= 0.1)
HEADS = {"logistic": "Logistic regression", "mlp": "MLP (1 hidden layer)"}
HIDDEN = (16, 32, 64, 128)
POOLINGS = {"mean": "mean per protein", "per_residue": "per residue"}
PROJECTIONS = {"pca": "PCA", "tsne": "t-SNE (scikit-learn)"}
MAX_UNFREEZE = 3
TRAIN_FRACTION = 0.8
BATCH_SIZE = 16
MIN_TRAIN = 4                                       # the fewest training proteins a run uses
PROJECTION_POINTS = 2000                            # residues drawn in a per-residue projection
HEAD_ONLY = ("head", "hidden", "size")              # run settings the ESM-2 inputs do not depend on

PARAMS = [
    # the ESM-2 model (loading it: playground.ui.esm_loading)
    Param("model", esm.DEFAULT_MODEL, choices=tuple(esm.CATALOGUE)),
    Param("bf16", False, "bool", help="bfloat16 weights on a CUDA GPU"),
    Param("cpu_bf16", True, "bool", view=True, help="bf16 matrix products when embedding on a CPU that has them"),
    Param("tab", TABS[0], choices=TABS, view=True),
    # masked amino acids (and the attention tab's sequence)
    Param("seq", protein.UBIQUITIN, view=True),
    Param("mask", "5, 27, 48", view=True, help="1-based positions to mask, e.g. 5, 27, 40-42"),
    Param("topk", 5, "int", lo=1, hi=10, view=True),
    # the proteins (embeddings and fine-tuning)
    Param("data", "solubility", choices=tuple(DATA)),
    Param("layer", -1, "int", lo=-1, hi=64, help="-1 = the last layer, 0 = the token embeddings"),
    Param("pooling", "mean", choices=tuple(POOLINGS), view=True),
    Param("long", "truncate", choices=tuple(esm.LONG_POLICIES), view=True),
    Param("proj", "pca", choices=tuple(PROJECTIONS), view=True),
    # fine-tuning vs from scratch: the learning rate is applied to both running trainers
    Param("split", "random", choices=tuple(protein.SPLITS)),
    Param("head", "logistic", choices=tuple(HEADS)),
    Param("hidden", 64, "int", choices=HIDDEN),
    Param("unfreeze", 0, "int", lo=0, hi=MAX_UNFREEZE),
    Param("lr", 0.003, "float", choices=LRS, live=True),
    Param("size", 100, "int", choices=SIZES),
    Param("sweep_epochs", 15, "int", lo=1, hi=200, view=True),
    # attention and contacts
    Param("att_layer", -1, "int", lo=-1, hi=64, view=True),
    Param("att_head", -1, "int", lo=-1, hi=63, view=True),
    # the mutation scan (ESM-1v masked marginals) of the sequence above, and a typed mutation list
    Param("mutations", "I44A, K48R, K63R, L8A", view=True, omit_default=True, help="mutations to score, e.g. A23G, K45E"),
    Param("scan_copies", 0, "int", choices=SCAN_COPIES, view=True, omit_default=True,
          help="masked copies of the sequence per forward pass (0 = as many as fit the token budget)"),
]
SCHEMA = Schema("esm", PARAMS)
# The page's own session slots ("esm._<name>"): how the model is loaded (mode: pretrained,
# untrained, file, upload), the loaded model's key, the last failure, the checkpoint path asked
# for, a download asked for; the uploaded proteins (file name, bytes); the cached views
# (embeddings, ESM-2 inputs of the fine-tuning tab, size sweep, pseudo-perplexity, attention).
# LiveTraining("esm") keeps its own slots (esm._trainer, ...).
PRIVATE = ("mode", "key", "failed", "path", "download", "seqfile", "emb", "ft", "sweep", "ppl", "att",
           "scan")     # the last mutation scan
# settings values a lesson cannot use -> why
UNSUPPORTED = {"data": {"upload": "needs a file the student uploads"}}


# ---- the proteins ---------------------------------------------------------------------------------
@dataclass
class Proteins:
    """The proteins of the embeddings and fine-tuning tabs."""

    ps: protein.ProteinSet | None        # None: an uploaded file without labels (embeddings only)
    ids: list[str]
    seqs: list[str]
    labels: list | None                  # one label per protein for colouring (names, or values)
    label_name: str = ""
    continuous: bool = False
    residue_labels: list | None = None   # per-residue labels (secondary structure)
    notes: list[str] = field(default_factory=list)   # what reading an uploaded file said

    @property
    def key(self) -> str:
        """Identity of the proteins and their labels (a cache key)."""
        h = hashlib.sha1()
        for part in (self.ids, self.seqs, None if self.ps is None else self.ps.y):
            h.update(repr(part if not isinstance(part, np.ndarray) else part.tolist()).encode())
        return h.hexdigest()[:16]


def proteins(values: dict, upload: tuple[str, bytes] | None = None) -> Proteins | None:
    """The proteins for these values: a generated set (seeded), or ``upload`` = (file name, bytes)
    when ``data`` is 'upload' (None until a file is given). Raises ``SequenceFileError`` for a
    file that cannot be read."""
    v = complete(SCHEMA, values)
    seed = int(v["seed"])
    src = v["data"]
    if src == "upload":
        if not upload:
            return None
        fname, raw = upload
        parsed = parse_sequence_file(raw, fname, alphabet=PROTEIN, label_required=False, map_aliases=True,
                                     length_policy="pad", max_length=None, duplicates="drop")
        ps, labels = None, None
        if parsed.labels is not None:
            task = parsed.task
            y = parsed.labels.astype(np.float32) if task in ("binary", "regression") else parsed.labels
            ps = protein.ProteinSet(parsed.seqs, y, task, list(parsed.class_names), ids=list(parsed.ids),
                                    description=f"Uploaded '{fname}': {parsed.summary()}.",
                                    split_labels=np.asarray(parsed.split) if getattr(parsed, "split", None) else None)
            labels = ([parsed.class_names[int(i)] if i >= 0 else "?" for i in parsed.labels]
                      if task != "regression" else parsed.labels)
        return Proteins(ps, list(parsed.ids), list(parsed.seqs), labels, "label", parsed.label_kind == "regression",
                        None, [w for w in parsed.warnings if not w.startswith("Lengths vary")])
    if src == "solubility":
        ps = protein.solubility_set(N_BUILTIN["solubility"], 40, 100, seed=seed)
        return Proteins(ps, [f"sol{i + 1}" for i in range(len(ps))], ps.seqs, [ps.class_names[int(y)] for y in ps.y])
    ps = protein.secondary_structure_set(N_BUILTIN["ss"], 40, 80, seed=seed)
    return Proteins(ps, [f"ss{i + 1}" for i in range(len(ps))], ps.seqs, None, residue_labels=ps.y)


def layer_options(n_layers: int) -> tuple[int, ...]:
    """-1 (the last layer), 0 (the token embeddings), 1 .. n_layers."""
    return tuple(range(-1, n_layers + 1))


def layer_label(v: int, n_layers: int) -> str:
    if v == -1:
        return f"last ({n_layers})"
    return "0 (token embeddings)" if v == 0 else str(v)


def fit_to_model(values: dict, n_layers: int, n_heads: int,
                 names: tuple[str, ...] = ("layer", "unfreeze", "att_layer", "att_head")) -> dict:
    """The settings (of ``names``) a loaded model cannot use, put back in range: {name: new value}.
    A layer beyond the model's depth -> the last layer; more layers to fine-tune than it has (or
    than ``MAX_UNFREEZE``) -> as many as allowed; a head beyond its heads -> the average."""
    v = complete(SCHEMA, values)
    out = {}
    if v["layer"] not in layer_options(n_layers):
        out["layer"] = -1
    if v["unfreeze"] > min(MAX_UNFREEZE, n_layers):
        out["unfreeze"] = min(MAX_UNFREEZE, n_layers)
    if v["att_layer"] not in (-1, *range(1, n_layers + 1)):
        out["att_layer"] = -1
    if v["att_head"] not in range(-1, n_heads):
        out["att_head"] = -1
    return {n: x for n, x in out.items() if n in names}


# ---- the run: head vs CNN from scratch ------------------------------------------------------------
def relevant(values: dict) -> dict:
    """``values`` with what the run does not read put back to its default: the embedding layer
    when layers are fine-tuned (the inputs are then the frozen layers below them), bf16 off a GPU."""
    v = complete(SCHEMA, values)
    out = dict(v)
    if v["unfreeze"]:
        out["layer"] = SCHEMA["layer"].default
    if v["device"] != "cuda":
        out["bf16"] = SCHEMA["bf16"].default
    return out


def signature(values: dict, model_key: str, data_key: str) -> str:
    """Changes exactly when the run changes: every run setting (as far as the run reads it, see
    ``relevant``), the loaded ESM-2 model and the proteins (an uploaded file's content)."""
    return SCHEMA.signature(relevant(values)) + repr((model_key, data_key))


def inputs_signature(values: dict, model_key: str, data_key: str) -> str:
    """What the ESM-2 inputs depend on: the run without the head's own settings (``HEAD_ONLY``)."""
    v = complete(SCHEMA, values)
    return signature({**v, **{n: SCHEMA[n].default for n in HEAD_ONLY}}, model_key, data_key)


def base_split(values: dict, prots: Proteins) -> SplitData:
    """The split of the proteins as tokens (the CNN's input; its meta holds train/test indices)."""
    v = complete(SCHEMA, values)
    return protein.to_split(prots.ps, v["split"], TRAIN_FRACTION, int(v["seed"]))


def used_layer(values: dict) -> int:
    """The layer the head's embeddings come from (-1 = the last; always the last when fine-tuning)."""
    v = complete(SCHEMA, values)
    return v["layer"] if not v["unfreeze"] else -1


@dataclass
class FineTuneInputs:
    """The two models' full training data: ESM-2 inputs (embeddings, or the frozen layers'
    output when fine-tuning) and tokens, the same proteins on the same side of the split."""

    esm: SplitData
    cnn: SplitData
    key: str                 # inputs_signature
    data_key: str            # Proteins.key


def finetune_inputs(values: dict, handle, prots: Proteins, progress=None, base: SplitData | None = None) -> FineTuneInputs:
    """Compute the ESM-2 inputs of the proteins (the slow step, once per model, proteins, split,
    seed, layer and number of fine-tuned layers)."""
    v = complete(SCHEMA, values)
    base = base if base is not None else base_split(v, prots)
    data = esm.head_split(handle, prots.seqs, base, used_layer(v), v["unfreeze"], progress, ids=prots.ids)
    return FineTuneInputs(data, base, inputs_signature(v, handle.key, prots.key), prots.key)


def training_size(n_train: int, size_pct: int) -> int:
    """Training proteins used at ``size_pct`` % (at least ``MIN_TRAIN``)."""
    return max(MIN_TRAIN, int(round(n_train * size_pct / 100)))


def model_names(values: dict) -> tuple[str, str]:
    v = complete(SCHEMA, values)
    return f"ESM-2 head ({'fine-tuned' if v['unfreeze'] else 'frozen'})", "CNN from scratch"


def config_of(values: dict) -> TrainConfig:
    v = complete(SCHEMA, values)
    return TrainConfig(optimizer="adam", lr=float(v["lr"]), batch_size=BATCH_SIZE, seed=int(v["seed"]),
                       track_metrics=True, device=v["device"], length_buckets=True)


def _pair(run: Run) -> SideBySide:
    """The two seeded trainers, on the same ``n_use`` training proteins."""
    x = run.extras
    seed = int(run.config.seed)
    head, cnn = x["names"]
    return SideBySide({
        head: Trainer(build_model(run.spec, seed), subsample_train(run.data, x["n_use"], seed), run.config),
        cnn: Trainer(build_model(x["cnn_spec"], seed), subsample_train(x["cnn_data"], x["n_use"], seed),
                     dataclasses.replace(run.config)),
    })


def build(values: dict, handle, inputs: FineTuneInputs) -> Run:
    """The comparison the page trains for these values, with the loaded ESM-2 model ``handle``
    and the proteins' ``inputs``. ``make_trainer()`` gives a fresh ``SideBySide`` (head, CNN).
    data: the head's full training data; spec: the head; extras: ``names``, ``cnn_spec``,
    ``cnn_data``, ``n_use``, ``n_train``, ``input`` (the head's ``InputSpec``), ``parameters`` (for
    the run list), ``model_key`` and ``data_key``."""
    v = complete(SCHEMA, values)
    n_train = len(inputs.cnn.y_train)
    head_spec = esm.make_head_spec(handle, inputs.esm, v["head"], v["hidden"], v["unfreeze"])
    head_input = InputSpec("esm_finetune" if v["unfreeze"] else "esm_embedding", "protein", esm_model=handle.name,
                           esm_key=handle.key, esm_layer=int(inputs.esm.meta["layer"]))
    extras = {"names": model_names(v), "cnn_spec": esm.scratch_cnn_spec(inputs.cnn), "cnn_data": inputs.cnn,
              "n_use": training_size(n_train, v["size"]), "n_train": n_train, "input": head_input,
              "parameters": {"head": v["head"], "unfreeze": v["unfreeze"], "train %": v["size"]},
              "model_key": handle.key, "data_key": inputs.data_key}
    return Run(inputs.esm, head_spec, config_of(v), signature(v, handle.key, inputs.data_key), extras, factory=_pair)


def script_proteins(run: Run, head_trainer: Trainer, ps: protein.ProteinSet) -> tuple[list, ...]:
    """(train sequences, train labels, validation sequences, validation labels, test sequences,
    test labels) the head trained on: the proteins the code export embeds in its script."""
    cnn_full = run.extras["cnn_data"]
    sub = head_trainer.data.meta.get("train_subset")
    train_idx = cnn_full.meta["train_idx"]
    tr_idx = [train_idx[i] for i in (sub if sub is not None else range(len(train_idx)))]
    va_idx = list(cnn_full.meta["val_idx"])
    te_idx = list(cnn_full.meta["test_idx"])
    if ps.task == "per_residue":
        lab = lambda i: ps.y[i]              # noqa: E731
    elif ps.task == "regression":
        lab = lambda i: float(ps.y[i])       # noqa: E731
    else:
        lab = lambda i: int(ps.y[i])         # noqa: E731
    return ([ps.seqs[i] for i in tr_idx], [lab(i) for i in tr_idx],
            [ps.seqs[i] for i in va_idx], [lab(i) for i in va_idx],
            [ps.seqs[i] for i in te_idx], [lab(i) for i in te_idx])


# ---- the size sweep (a view: on demand) -----------------------------------------------------------
def sweep_sizes(n_train: int) -> list[int]:
    return sorted({training_size(n_train, s) for s in SIZES})


def sweep_key(values: dict, run: Run) -> str:
    """What a finished sweep depends on: the run without its training-set size, the epochs per
    run and the learning rate."""
    v = complete(SCHEMA, values)
    x = run.extras
    return (signature({**v, "size": SCHEMA["size"].default}, x["model_key"], x["data_key"])
            + repr((int(v["sweep_epochs"]), float(v["lr"]))))


def run_sweep(values: dict, run: Run, progress=None) -> list[dict]:
    """Both models trained from scratch at every size of ``sweep_sizes`` for ``sweep_epochs`` each."""
    v = complete(SCHEMA, values)
    head, cnn = run.extras["names"]
    cfg = TrainConfig(optimizer="adam", lr=float(v["lr"]), batch_size=BATCH_SIZE, device=v["device"])
    return size_sweep({head: run.data, cnn: run.extras["cnn_data"]}, {head: run.spec, cnn: run.extras["cnn_spec"]},
                      sweep_sizes(run.extras["n_train"]), int(v["sweep_epochs"]), cfg, int(v["seed"]), progress)


# ---- the views: embeddings, masked amino acids, attention ------------------------------------------
def precision_of(values: dict, handle) -> str:
    v = complete(SCHEMA, values)
    return esm.resolve_precision(handle, "auto" if v["cpu_bf16"] else "float32")


def embedding_key(values: dict, handle, prots: Proteins) -> tuple:
    v = complete(SCHEMA, values)
    return (handle.key, tuple(prots.ids), tuple(prots.seqs), v["layer"], v["pooling"], v["long"],
            precision_of(v, handle))


def embed(values: dict, handle, prots: Proteins, progress=None) -> esm.EmbeddingResult:
    v = complete(SCHEMA, values)
    return esm.embed(handle, prots.seqs, v["layer"], v["pooling"], prots.ids, v["long"], progress=progress,
                     precision=precision_of(v, handle))


def projection_points(values: dict, res: esm.EmbeddingResult, prots: Proteins):
    """(vectors, labels, hover ids, label name, continuous) of the 2-D projection: one point per
    protein (mean pooling), or up to ``PROJECTION_POINTS`` residues drawn with the seed, coloured
    by their structure label (or their amino acid)."""
    v = complete(SCHEMA, values)
    if v["pooling"] == "mean":
        return res.vectors, prots.labels, res.ids, prots.label_name, prots.continuous
    rng = np.random.default_rng(int(v["seed"]))
    pairs = [(i, j) for i, a in enumerate(res.per_residue) for j in range(len(a))]
    pick = rng.choice(len(pairs), size=min(PROJECTION_POINTS, len(pairs)), replace=False)
    sel = [pairs[k] for k in sorted(pick)]
    X = np.stack([res.per_residue[i][j] for i, j in sel])
    ids = [f"{res.ids[i]} residue {j + 1} ({res.seqs[i][j]})" for i, j in sel]
    if prots.residue_labels is not None:
        return X, [prots.residue_labels[i][j] for i, j in sel], ids, "structure", False
    return X, [res.seqs[i][j] for i, j in sel], ids, "amino acid", False


def masked(values: dict, handle) -> esm.MaskedPrediction:
    v = complete(SCHEMA, values)
    return esm.mask_predictions(handle, v["seq"], v["mask"], int(v["topk"]))


def masked_rows(pred: esm.MaskedPrediction) -> list[dict]:
    """The masked-LM table: one row per masked position."""
    return [{"position": p, "true residue": pred.seq[p - 1], "P(true residue)": f"{pred.true_prob[p]:.3g}",
             "rank of the true residue": int((pred.probs[p - 1, :20] > pred.true_prob[p]).sum() + 1),
             f"top {len(pred.top[p])}": "  ".join(f"{a} {q:.2f}" for a, q in pred.top[p])}
            for p in pred.masked]


def attention_key(values: dict, handle) -> tuple:
    return (handle.key, complete(SCHEMA, values)["seq"])


def attention_view(values: dict, n_layers: int) -> tuple[int, int | None]:
    """(layer 1..n, head or None = the average of all heads) the attention tab draws."""
    v = complete(SCHEMA, values)
    return (n_layers if v["att_layer"] == -1 else v["att_layer"]), (None if v["att_head"] == -1 else v["att_head"])


def scan_key(values: dict, handle) -> tuple:
    """What a mutation scan depends on: the model, the sequence and the precision (not the batching)."""
    v = complete(SCHEMA, values)
    return (handle.key, esm.clean_sequence(v["seq"], "The sequence"), precision_of(v, handle))


def mutation_scan(values: dict, handle, progress=None) -> np.ndarray:
    """(L, 20) masked-marginal log-ratios of the sequence (:func:`playground.esm.mutation_scan`)."""
    v = complete(SCHEMA, values)
    return esm.mutation_scan(handle, v["seq"], batch_size=int(v["scan_copies"]) or None, progress=progress,
                             precision=precision_of(v, handle))


def scored_mutations(values: dict, handle, scan: np.ndarray | None = None) -> list[dict]:
    """The typed mutation list scored and ranked (reads the full ``scan`` when there is one)."""
    v = complete(SCHEMA, values)
    return esm.score_mutations(handle, v["seq"], v["mutations"], scan=scan, precision=precision_of(v, handle))


# ---- lessons --------------------------------------------------------------------------------------
def untrained_masked(values: dict) -> esm.MaskedPrediction:
    """The masked-LM prediction for these values with the seeded random weights the page offers
    when the pretrained ones are not downloaded. (Pretrained results need the weights, which tests
    cannot download: lessons state no numbers about them.)"""
    v = complete(SCHEMA, values)
    return masked(v, esm.random_model(v["model"], int(v["seed"])))


def lesson_metrics(values: dict) -> dict:
    """The settings metrics a lesson step can name (``playground.lessons.SETTINGS_METRICS``)."""
    pred = untrained_masked(values)
    probs = list(pred.true_prob.values())
    top = [pred.top[p][0][1] for p in pred.masked]
    return {"untrained_mask_true_prob": float(sum(probs) / max(1, len(probs))),
            "untrained_mask_top_prob": float(max(top)) if top else float("nan")}


__all__ = ["PARAMS", "SCHEMA", "PRIVATE", "UNSUPPORTED", "TABS", "DATA", "Proteins", "proteins", "build",
           "signature", "relevant", "finetune_inputs", "FineTuneInputs", "run_sweep", "sweep_key", "embed",
           "embedding_key", "masked", "lesson_metrics", "mutation_scan", "scan_key", "scored_mutations"]
