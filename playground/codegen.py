"""PyTorch code generation: the current settings as a short standalone script.

The script is the bridge the course teaches (network boxes <-> ``MLP(...)``, the activation
dropdown <-> ``nn.ReLU()``, the learning-rate slider <-> ``lr=0.03``). It runs as is with
only torch and numpy, regenerates the same data, makes the same seeded train / validation /
test split, builds the same network with the same initial weights, shuffles the same way, and so
reproduces the page's training run: the training and validation losses of every epoch (and early
stopping and the learning-rate schedule, which read validation), then the test set scored once,
at the end ("test (held out, scored once): ..."), as the page's ``Trainer.score_test`` does.

Nothing the library already says is retyped here: the model classes, the split
(``playground.data.split``), the loss (``playground.train``) and the scripts' small helpers
(``playground.codegen_helpers``: split, read a CSV, encode, evaluate, score) are copied into each
script by source; the activation, feature and ESM-2 architecture tables are read from the library's own.

Entry points: ``script_for(run, trainer)`` for a page's run (a ``playground.setups.Run``);
``script_for_trainer``, ``script_for_bundle``, ``script_for_spec``, ``toy_script``,
``sequence_script`` and ``esm_head_script`` underneath.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import textwrap
import threading

import numpy as np

from playground import encoding
from playground.data import toy
from playground.models.base import ACTIVATIONS
from playground.models.mlp import MLPSpec
from playground.train import TrainConfig

EMBED_LIMIT = 400_000            # letters: bigger data sets are replaced by a generated task
HELPERS = "playground.codegen_helpers"
SPLIT = "playground.data.split"
BUCKETS = "playground.data.buckets"


# =================================================================================================
# Copying the playground's own code by source
# =================================================================================================
_SKIP_NAMES = {"ModelSpec", "register", "ClassVar"}
_SOURCE_CACHE: dict = {}
_AST_LOCK = threading.Lock()


def _parse(src: str) -> ast.Module:
    """``ast.parse`` one at a time in this process: CPython 3.11's AST constructor is not safe when
    several threads parse at once (a class pressing ▶ Play together on one server raised
    "SystemError: AST constructor recursion depth mismatch" in one student's code tab)."""
    with _AST_LOCK:
        return ast.parse(src)


def _module_parts(modname: str):
    """(source, top-level definitions by name, playground imports by local name, other import lines)."""
    if modname in _SOURCE_CACHE:
        return _SOURCE_CACHE[modname]
    src = inspect.getsource(importlib.import_module(modname))
    tree = _parse(src)
    defs, imports, external = {}, {}, []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    defs[t.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defs[node.target.id] = node
        elif isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            if node.module and node.module.startswith("playground"):
                for a in node.names:
                    imports[a.asname or a.name] = (node.module, a.name)
            else:
                external.append(ast.get_source_segment(src, node))
        elif isinstance(node, ast.Import):
            if not any(a.name.startswith("playground") for a in node.names):
                external.append(ast.get_source_segment(src, node))
    _SOURCE_CACHE[modname] = (src, defs, imports, external)
    return _SOURCE_CACHE[modname]


def _definition_text(src: str, node) -> str:
    """The source of a top-level definition, without @register and the ModelSpec base class."""
    lines = src.splitlines()
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
    text = lines[start: node.end_lineno]
    out = []
    for ln in text:
        if ln.strip() == "@register":
            continue
        if ln.startswith("class ") and "(ModelSpec)" in ln:
            ln = ln.replace("(ModelSpec)", "")
        out.append(ln)
    return "\n".join(out)


def _collect(modname: str, name: str, out: dict, external: list, visiting: set, skip: frozenset) -> None:
    key = (modname, name)
    if key in out or key in visiting or name in _SKIP_NAMES or name in skip:
        return
    src, defs, imports, ext = _module_parts(modname)
    for line in ext:
        if line not in external:
            external.append(line)
    if name not in defs:
        if name in imports:
            _collect(*imports[name], out, external, visiting, skip)
        return
    node = defs[name]
    visiting.add(key)
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    for dep in sorted(used):
        if dep == name:
            continue
        if dep in defs:
            _collect(modname, dep, out, external, visiting, skip)
        elif dep in imports and imports[dep][1] not in _SKIP_NAMES:
            _collect(*imports[dep], out, external, visiting, skip)
    visiting.discard(key)
    out[key] = _definition_text(src, node)


def _bound_names(import_line: str) -> set[str]:
    node = _parse(import_line).body[0]
    return {(a.asname or a.name).split(".")[0] for a in node.names}


def sources(*targets: tuple[str, str], skip=()) -> tuple[str, str]:
    """(import lines, definitions): the named top-level definitions ``(module, name)`` of the
    playground, with everything of the playground they use, in dependency order. Only the
    imports the copied code uses come along; names in ``skip`` are left for the script to define."""
    out: dict = {}
    external: list = []
    for modname, name in targets:
        _collect(modname, name, out, external, set(), frozenset(skip))
    kept: dict = {}
    for (_, name), text in out.items():     # a constant two modules define alike (IGNORE = -100) comes once
        if name in kept and kept[name] != text:  # pragma: no cover - two different definitions, one name
            raise ValueError(f"name clash in generated code: {name}")
        kept.setdefault(name, text)
    code = "\n\n\n".join(kept.values())
    used = {n.id for n in ast.walk(_parse(code)) if isinstance(n, ast.Name)}
    return "\n".join(ln for ln in external if _bound_names(ln) & used), code


def model_source(spec) -> tuple[str, str]:
    """(import lines, the definitions) a spec's network needs, copied from the playground."""
    cls = type(spec)
    return sources((cls.__module__, cls.__name__))


def helper_source(*names: str, buckets: bool = False) -> tuple[str, str]:
    """(import lines, definitions) of script helpers from ``playground.codegen_helpers`` (with the
    split and the loss they use); the script defines the constants they read. ``buckets``: also
    the length-bucketed batching of ``playground.data.buckets`` (``LengthBuckets``, ``lengths_of``,
    ``trim``), for a run whose Trainer used it."""
    from playground import codegen_helpers

    extra = [(BUCKETS, n) for n in ("lengths_of", "LengthBuckets", "trim")] if buckets else []
    return sources(*((HELPERS, n) for n in names), *extra, skip=codegen_helpers.SCRIPT_CONSTANTS)


def _imports(*blocks: str, always=()) -> str:
    """Import lines merged: the standard library first (sorted), then numpy, then torch."""
    lines = list(dict.fromkeys([*always, *(ln for b in blocks for ln in b.splitlines() if ln.strip())]))
    lines = [ln for ln in lines if "ClassVar" not in ln]

    def group(ln):
        return 2 if "torch" in ln else 1 if "numpy" in ln else 0
    torch_order = ["import torch", "from torch import nn", "from torch.nn import functional as F"]
    lines = sorted(lines, key=lambda ln: (group(ln), torch_order.index(ln) if ln in torch_order else 9, ln))
    std = [ln for ln in lines if group(ln) == 0]
    return "\n".join(std) + ("\n\n" if std else "") + "\n".join(ln for ln in lines if group(ln))


# =================================================================================================
# The tables the scripts need, read from the library's own
# =================================================================================================
ACT_CODE = {name: f"nn.{cls.__name__}()" for name, cls in ACTIVATIONS.items()}


def _feature_code() -> dict[str, str]:
    """Each toy feature's expression on the points ``X``, read from ``toy.FEATURES`` (its lambdas)."""
    src = inspect.getsource(toy)
    for node in _parse(src).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "FEATURES" for t in node.targets):
            return {ast.literal_eval(k): ast.get_source_segment(src, v.elts[1].body)
                    for k, v in zip(node.value.keys, node.value.values)}
    raise RuntimeError("toy.FEATURES not found")  # pragma: no cover


FEATURE_CODE = _feature_code()


def esm_architecture(name: str) -> tuple[int, int, int] | None:
    """(layers, embedding width, attention heads) of a catalogue ESM-2 model (``playground.esm``)."""
    from playground.esm import CATALOGUE

    info = CATALOGUE.get(name)
    return (info.layers, info.dim, info.heads) if info is not None else None


# =================================================================================================
# The basics page: an MLP on toy features, written out by hand for teaching
# =================================================================================================
def optimizer_code(config: TrainConfig, params: str = "model.parameters()") -> str:
    lr = f"lr={config.lr:g}"
    return {
        "sgd": f"torch.optim.SGD({params}, {lr})",
        "momentum": f"torch.optim.SGD({params}, {lr}, momentum={config.momentum:g})",
        # fused=True: the same Adam, computed in one kernel, as the playground does (so the numbers match)
        "adam": f"torch.optim.Adam({params}, {lr}, fused=True)",
        "adamw": f"torch.optim.AdamW({params}, {lr}, weight_decay={config.weight_decay:g}, fused=True)",
    }[config.optimizer]


def loss_code(task: str) -> tuple[str, str]:
    """(loss function expression, comment)."""
    return {
        "regression": ("nn.MSELoss()", "mean squared error: regression"),
        "binary": ("nn.BCEWithLogitsLoss()", "binary cross-entropy on logits: two classes"),
        "multiclass": ("nn.CrossEntropyLoss()", "cross-entropy: several classes"),
    }[task]


def regularization_code(config: TrainConfig) -> str:
    if config.regularization == "none" or config.reg_rate <= 0:
        return ""
    if config.regularization == "l1":
        return (f"\n        # L1 regularisation on the weights (not the biases)\n"
                f"        loss = loss + {config.reg_rate:g} * sum(p.abs().sum() for p in model.parameters() if p.dim() > 1)")
    return (f"\n        # L2 regularisation on the weights (not the biases)\n"
            f"        loss = loss + {config.reg_rate:g} * 0.5 * sum((p * p).sum() for p in model.parameters() if p.dim() > 1)")


def _optimizer_step_lines(config: TrainConfig) -> list[str]:
    """One optimizer step of the exported loops, line by line: warm-up, clipping, step, zero_grad."""
    step = []
    if config.warmup_steps > 0:
        step += [f"for group in optimizer.param_groups:  # linear warm-up over {config.warmup_steps} steps",
                 f"    group['lr'] = {_lr_code(config, f'(optimizer_steps + 1) / {config.warmup_steps}')}"]
    if config.grad_clip > 0:
        step += [f"nn.utils.clip_grad_norm_(model.parameters(), {config.grad_clip:g})"]
    step += ["optimizer.step()", "optimizer.zero_grad(set_to_none=True)", "optimizer_steps += 1"]
    return step


def _lr_code(config: TrainConfig, warmup: str = "") -> str:
    """The learning rate of an optimizer step: LR, times the schedule's factor, times the warm-up's."""
    return "LR" + (" * lr_scale" if config.schedule != "off" else "") + (f" * min(1.0, {warmup})" if warmup else "")


def _epoch_end_code(config: TrainConfig, indent: str) -> tuple[str, str, list[str]]:
    """(lines before the epoch loop, lines at the end of each epoch, imports they need) for what
    reads the validation loss after an epoch, in the Trainer's order: early stopping (best weights
    kept and restored), then the learning-rate schedule."""
    before, after, imports = [], [], []
    patience = int(config.early_stopping)
    if patience > 0:
        imports.append("import copy")
        before.append('best_loss, best_epoch, best_weights = float("inf"), 0, None   # for early stopping')
        after += [f"# early stopping on the validation loss: keep the best weights; after {patience} epochs",
                  "# without a better validation loss, go back to them and stop",
                  "if val_loss < best_loss - 1e-12:",
                  "    best_loss, best_epoch, best_weights = val_loss, epoch, copy.deepcopy(model.state_dict())",
                  f"elif epoch - best_epoch >= {patience}:",
                  "    model.load_state_dict(best_weights)",
                  f'    print(f"early stopping at epoch {{epoch}}: no better validation loss for {patience} epochs; "',
                  '          f"best epoch {best_epoch} restored")',
                  "    break"]
    kind = config.schedule
    if kind != "off":
        before.append("lr_scale = 1.0                        # the learning-rate schedule's factor on LR")
        if kind == "plateau":
            p = int(config.schedule_patience)
            before.append('plateau_best, bad_epochs = float("inf"), 0')
            after += [f"# learning-rate schedule: halve the rate after {p} epochs without a better validation loss",
                      "# (torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, "
                      f"patience={p - 1}, min_lr=1e-6) does the same)",
                      "if val_loss < plateau_best * (1 - 1e-4):",
                      "    plateau_best, bad_epochs = val_loss, 0",
                      "else:",
                      "    bad_epochs += 1",
                      f"    if bad_epochs >= {p}:",
                      "        lr_scale, bad_epochs = max(lr_scale * 0.5, 1e-6 / LR), 0"]
        elif kind == "cosine":
            e = max(1, int(config.schedule_epochs))
            imports.append("import math")
            after += [f"# learning-rate schedule: cosine decay from LR to 1 % of it over {e} epochs",
                      f"lr_scale = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(epoch, {e}) / {e}))"]
        else:
            e = max(1, int(config.schedule_epochs) // 3)
            after += [f"lr_scale = 0.5 ** (epoch // {e})          # learning-rate schedule: halve every {e} epochs"]
        after += ["for group in optimizer.param_groups:", f"    group[\"lr\"] = {_lr_code(config)}"]
    return ("".join(f"{indent[:-4]}{ln}\n" for ln in before), "".join(f"{indent}{ln}\n" for ln in after), imports)


# What every script says where it scores the test set.
TEST_COMMENT = """\
# ---- the test set: scored once, now that training is over -------------------------------
# Nothing above looked at the test set: while training, the validation loss was the one to watch
# (and to stop on). Scored only once, at the end, the test set stays an honest estimate of how the
# model does on new data; every extra look, followed by a change of settings, tunes the model to it.
"""


def mlp_class_code(spec: MLPSpec) -> str:
    act = ACT_CODE[spec.activation]
    if spec.input_mean:   # the page's 'normalize': the training set's mean and sd, fixed
        norm_init = (f"\n                self.register_buffer('input_mean', torch.tensor({list(spec.input_mean)!r}))  # training-set "
                     f"mean\n                self.register_buffer('input_std', torch.tensor({list(spec.input_std)!r}))  # ... and sd")
        norm_fwd = "\n                x = (x - self.input_mean) / self.input_std  # standardised inputs"
    else:
        norm_init = norm_fwd = ""
    return textwrap.dedent(f'''\
        class MLP(nn.Module):
            """{spec.n_inputs} inputs -> hidden layers {list(spec.hidden)} -> {spec.n_outputs} output."""

            def __init__(self, n_inputs={spec.n_inputs}, hidden={list(spec.hidden)}, n_outputs={spec.n_outputs}):
                super().__init__()
                sizes = [n_inputs, *hidden]
                self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
                self.activation = {act}
                self.output = nn.Linear(sizes[-1], n_outputs){norm_init}

            def forward(self, x):{norm_fwd}
                for layer in self.hidden_layers:
                    x = self.activation(layer(x))
                return self.output(x)  # no activation: the loss handles it
        ''')


def toy_script(dataset: str, n: int, noise: float, train_fraction: float, features, spec: MLPSpec,
               config: TrainConfig, epochs: int = 100, seed: int = 0, positive_fraction: float = 0.5,
               overfit_batch: int = 0, val_fraction: float = 0.1) -> str:
    """A runnable script that trains ``spec`` on the toy data set as the page does: the seeded
    train / validation / test split (``train_fraction``, ``val_fraction``, the rest for test), the
    training and validation loss per epoch, the test set scored once at the end.
    ``positive_fraction`` (class balance), ``overfit_batch`` (train on that many examples only),
    ``config.warmup_steps``, ``config.grad_accum``, ``config.early_stopping`` and
    ``config.schedule`` are written out when they are in use."""
    gen = toy.GENERATORS[dataset]
    gen_src = inspect.getsource(gen)
    classification = toy.TOY_SETS[dataset].problem == "classification"
    imbalanced = classification and positive_fraction != 0.5
    if imbalanced:
        gen_src += "\n\n" + inspect.getsource(toy.imbalance)
        data_line = (f"X, y = {gen.__name__}(n={4 * n}, noise={noise:g}, seed=SEED)\n"
                     f"X, y = imbalance(X, y, n={n}, positive_fraction={positive_fraction:g}, seed=SEED)"
                     f"  # {positive_fraction:.0%} class 1")
    else:
        data_line = f"X, y = {gen.__name__}(n={n}, noise={noise:g}, seed=SEED)"
    _, split_code = sources((SPLIT, "split_three"))
    fractions = f"{float(train_fraction)!r}, {float(val_fraction)!r}"
    if classification:
        split_line = (f"train_idx, val_idx, test_idx = split_three(len(X), {fractions}, SEED,\n"
                      "                                           stratify=y.astype(np.int64))  # each part keeps "
                      "the class shares")
    else:
        split_line = f"train_idx, val_idx, test_idx = split_three(len(X), {fractions}, SEED)"
    overfit = ""
    if overfit_batch:
        overfit = (f"\n# sanity check: train on the first {overfit_batch} training examples only\n"
                   f"n_train = min({overfit_batch}, n_train)\n"
                   f"x_train, y_train = x_train[:n_train], y_train[:n_train]\n")
    accum, warmup = int(config.grad_accum), int(config.warmup_steps)
    lr_line = f"LR = {config.lr:g}\n" if warmup or config.schedule != "off" else ""
    if warmup:
        lr_line += f"WARMUP = {warmup}   # linear learning-rate warm-up over WARMUP optimizer steps\n"
    warm_code = ("\n            for group in optimizer.param_groups:  # warm-up\n"
                 f"                group[\"lr\"] = {_lr_code(config, '(optimizer_steps + 1) / WARMUP')}"
                 ) if warmup else ""
    backward = f"(loss / {accum}).backward()  # gradient accumulation: {accum} batches per step" if accum > 1 \
        else "loss.backward()"
    task = "binary" if classification else "regression"
    loss_expr, loss_comment = loss_code(task)
    feats = toy.valid_features(dataset, features)
    feat_lines = "\n        ".join(f"{FEATURE_CODE[f]},  # {f}" for f in feats)
    extra = ""
    if dataset == "multi_gauss":
        extra = f"_GAUSSIANS = {toy._GAUSSIANS!r}\n"
    bs = config.batch_size
    batch = "n_train" if bs <= 0 else f"min({bs}, n_train)"
    before, after, extra_imports = _epoch_end_code(config, "    ")
    if classification:
        metric = ("    accuracy = ((torch.sigmoid(out) >= 0.5).float() == y_test).float().mean().item()\n"
                  'print(f"test (held out, scored once): loss {test_loss:.6f}  accuracy {accuracy:.4f}")')
    else:
        metric = ("    pearson_r = torch.corrcoef(torch.stack([out, y_test]))[0, 1].item()\n"
                  'print(f"test (held out, scored once): loss {test_loss:.6f}  pearson_r {pearson_r:.4f}")')
    imports = _imports(always=(*extra_imports, "import numpy as np", "import torch", "from torch import nn"))
    return f'''"""Generated by the Sequence Deep Learning Playground: data set '{dataset}', {spec.describe()}.

Run it with:  python this_file.py   (needs torch and numpy)
It trains on the training set, prints the training and validation loss as it goes, and at the end
scores the held-out test set, once.
"""
{imports}

RANGE = {toy.RANGE!r}
SEED = {seed}
{extra}

# ---- the data: {toy.TOY_SETS[dataset].description}
{gen_src}

# the playground's seeded train / validation / test split (copied from playground/data/split.py)
{split_code}


{data_line}
X, y = X.astype(np.float32), y.astype(np.float32)     # the playground keeps its points in float32
features = np.stack([
        {feat_lines}
    ], 1).astype(np.float32)
# training: what the network learns from; validation: measured after every epoch (the loss curve,
# and what early stopping and the learning-rate schedule read); test: held out, scored once at the end
{split_line}
n_train = len(train_idx)
x_train, y_train = torch.tensor(features[train_idx]), torch.tensor(y[train_idx], dtype=torch.float32)
x_val, y_val = torch.tensor(features[val_idx]), torch.tensor(y[val_idx], dtype=torch.float32)
x_test, y_test = torch.tensor(features[test_idx]), torch.tensor(y[test_idx], dtype=torch.float32)
{overfit}

# ---- the network
{mlp_class_code(spec)}

torch.manual_seed(SEED)                   # same seed -> same initial weights as the playground
model = MLP()
loss_fn = {loss_expr}  # {loss_comment}
optimizer = {optimizer_code(config)}
{lr_line}shuffle = torch.Generator().manual_seed(SEED)

# ---- the training loop
batch_size = {batch}
batches = optimizer_steps = 0
{before}for epoch in range(1, {epochs} + 1):
    model.train()
    order = {'torch.randperm(n_train, generator=shuffle)' if config.shuffle else 'torch.arange(n_train)  # no shuffling: the stored order'}
    for start in range(0, n_train, batch_size):
        idx = order[start:start + batch_size]
        out = model(x_train[idx]).squeeze(-1)
        loss = loss_fn(out, y_train[idx]){regularization_code(config)}
        {backward}
        batches += 1
        if batches % {accum} == 0 or start + batch_size >= n_train:{warm_code}
            optimizer.step()
            optimizer.zero_grad()
            optimizer_steps += 1
    model.eval()
    with torch.no_grad():
        train_loss = loss_fn(model(x_train).squeeze(-1), y_train).item()
        val_loss = loss_fn(model(x_val).squeeze(-1), y_val).item()
    if epoch % max(1, {epochs} // 10) == 0 or epoch == 1:
        print(f"epoch {{epoch:4d}}  train loss {{train_loss:.4f}}  validation loss {{val_loss:.4f}}")
{after}
{TEST_COMMENT}model.eval()
with torch.no_grad():
    out = model(x_test).squeeze(-1)
    test_loss = loss_fn(out, y_test).item()
{metric}
'''


def toy_script_from_run(run, epochs: int = 100) -> str:
    """``toy_script`` for a basics-page run (``playground.setups.basics.build(values)``): the data
    set, noise, split, class balance and single-batch mode come from how its data was made."""
    data, meta = run.data, run.data.meta
    n = int(meta.get("n", len(meta["points"])))
    n_train, n_val, n_test = data.sizes()
    overfit = n_train < n - n_val - n_test        # "overfit one batch" kept only the first few
    return toy_script(meta["dataset"], n, float(meta["noise"]), float(meta["train_fraction"]), list(meta["features"]),
                      run.spec, run.config, epochs=int(epochs), seed=int(run.config.seed),
                      positive_fraction=float(meta.get("positive_fraction", 0.5)),
                      overfit_batch=n_train if overfit else 0, val_fraction=float(meta.get("val_fraction", 0.1)))


# =================================================================================================
# Every other architecture: CNN, logistic regression, MLP on one-hot, RNN/LSTM/GRU, Transformer,
# hybrid CNN + Transformer, token CNN, ESM-2 heads. The script carries the playground's own model
# code (copied from playground/models/*.py with its helpers), the data (the page's own sequences
# when they are small enough, else a small generated task of the same shape), and the Trainer's
# loop, so the numbers it prints are the page's. ``python script.py --weights bundle.pt`` loads
# the weights of a downloaded model bundle instead of training.
# =================================================================================================
def _py(v) -> str:
    if isinstance(v, (list, tuple)):
        inner = ", ".join(_py(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, float):
        return repr(float(f"{v:.10g}"))
    return repr(v)


def spec_call(spec) -> str:
    d = spec.to_dict()
    d.pop("kind", None)
    args = ", ".join(f"{k}={_py(v)}" for k, v in d.items())
    return f"{type(spec).__name__}({args})"


def _wrap_list(name: str, items: list, per_line: int = 1) -> str:
    if not items:
        return f"{name} = []"
    rows = [", ".join(repr(x) for x in items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return f"{name} = [\n    " + ",\n    ".join(rows) + ",\n]"


def _embedded_data(what: str, task: str, train: tuple, val: tuple, test: tuple) -> str:
    """The page's own training, validation and test sequences and labels as lists in the script."""
    def lab(v):
        if task == "per_residue":
            return v
        return float(v) if task == "regression" else int(v)
    out = f"# The page's own training, validation and test {what} ({len(train[0])} + {len(val[0])} + {len(test[0])}).\n"
    for name, (seqs, labels) in (("TRAIN", train), ("VAL", val), ("TEST", test)):
        out += _wrap_list(f"{name}_SEQS", list(seqs)) + "\n"
        out += _wrap_list(f"{name}_LABELS", [lab(v) for v in labels], 20) + "\n"
    return out


def _split_code(fractions: str, embedded: bool, generate: str) -> str:
    """The lines of ``main`` that make (train, val, test): a DATA_CSV file split as the page split
    its data; else the page's own parts (embedded), or the generated task, split the same way."""
    if embedded:
        return (f"if DATA_CSV:\n    seqs, labels = read_csv(DATA_CSV)\n"
                f"    train, val, test = split(seqs, labels, {fractions}, SEED)\n"
                "else:                                 # the page's own split\n"
                "    train, val, test = (TRAIN_SEQS, TRAIN_LABELS), (VAL_SEQS, VAL_LABELS), (TEST_SEQS, TEST_LABELS)")
    return (f"seqs, labels = read_csv(DATA_CSV) if DATA_CSV else make_data({generate}, SEED)\n"
            f"train, val, test = split(seqs, labels, {fractions}, SEED)")


def _fits(*parts) -> bool:
    """Whether the (sequences, labels) parts are all given and small enough to embed in a script."""
    return all(p is not None for p in parts) and sum(len(s) for p in parts for s in p[0]) <= EMBED_LIMIT


def _training_code(config: TrainConfig, buckets: bool = False) -> str:
    """The Trainer's loop as the script's ``train_model`` function: seeded shuffling, mini-batches, the
    training and validation loss after every epoch, and only the extras the run uses
    (regularisation, gradient accumulation, warm-up, gradient clipping, early stopping and the
    learning-rate schedule, both on the validation loss). ``buckets``: batches of similar length
    (``TrainConfig.length_buckets``, for token inputs), as the Trainer makes them."""
    accum = max(1, int(config.grad_accum))
    reg = regularization_code(config).replace("\n        ", "\n            ")
    backward = (f"(loss / {accum}).backward()  # gradient accumulation: {accum} batches per optimizer step"
                if accum > 1 else "loss.backward()")
    step = _optimizer_step_lines(config)
    last = "i + 1 == len(plan)" if buckets else "start + batch_size >= n_train"
    if accum > 1:
        body = (f"            {backward}\n            batches += 1\n"
                f"            if batches % {accum} == 0 or {last}:\n"
                + "".join(f"                {ln}\n" for ln in step))
    else:
        body = f"            {backward}\n" + "".join(f"            {ln}\n" for ln in step)
    before, after, _ = _epoch_end_code(config, "        ")
    if buckets:
        setup = """    # batches of similar length, as on the page: each batch is padded only to its own longest
    # sequence, so less compute goes into padding (the losses stay the same)
    lengths = lengths_of(x_train, y=y_train if TASK == "per_residue" else None)
    buckets = LengthBuckets(lengths, batch_size, TOKEN_BUDGET) if int(lengths.min()) < x_train.shape[1] else None
"""
        batches = """        if buckets is not None:      # shuffled within each length bucket, the batches in random order
            plan = buckets.epoch_plan(shuffle)
        else:                        # all of one length: plain shuffled batches
            order = torch.randperm(n_train, generator=shuffle)
            plan = [(idx, x_train.shape[1]) for idx in torch.split(order, batch_size)]
        for i, (idx, length) in enumerate(plan):
            x_batch, y_batch = trim(x_train, y_train, idx, length=length)
            out = model(x_batch)
            loss = loss_fn(out, y_batch)"""
    else:
        setup = ""
        batches = """        order = torch.randperm(n_train, generator=shuffle)
        for start in range(0, n_train, batch_size):
            idx = order[start:start + batch_size]
            out = model(x_train[idx])
            loss = loss_fn(out, y_train[idx])"""
    return f'''def train_model(model, x_train, y_train, x_val, y_val, epochs):
    """Train as the playground's Trainer does; after every epoch, measure the loss on the training
    and on the validation set. (The test set is no argument: training never sees it.)"""
    torch.manual_seed(SEED)                   # dropout draws from this, as in the playground's Trainer
    optimizer = {optimizer_code(config)}
    shuffle = torch.Generator().manual_seed(SEED)
    n_train = len(x_train)
    batch_size = n_train if BATCH_SIZE <= 0 or BATCH_SIZE >= n_train else BATCH_SIZE
    batches = optimizer_steps = 0
{setup}{before}    print(f"epoch    0  train loss {{evaluate(model, x_train, y_train):.4f}}  "
          f"validation loss {{evaluate(model, x_val, y_val):.4f}}")
    for epoch in range(1, epochs + 1):
        model.train()
{batches}{reg}
{body}        train_loss, val_loss = evaluate(model, x_train, y_train), evaluate(model, x_val, y_val)
        if epoch % max(1, epochs // 10) == 0 or epoch == 1:
            print(f"epoch {{epoch:4d}}  train loss {{train_loss:.4f}}  validation loss {{val_loss:.4f}}")
{after}'''


def _training_imports(config: TrainConfig) -> tuple:
    return tuple(_epoch_end_code(config, "        ")[2])


# Where a script scores the test set (inside main, after training or loading the weights).
_TEST_CODE = TEST_COMMENT.replace("\n#", "\n    #").replace("# ----", "    # ----", 1) + '''\
    test = score(model, x_test, y_test)
    print("test (held out, scored once): " + "  ".join(f"{name} {value:.6f}" for name, value in test.items()))'''


_GEN_MOTIFS = ("TGACTCA", "GATAAGA", "CCGCCCC", "CACGTGA", "TTTATTA", "GGAAGTG", "AACAATG", "CATTCCA")


def _generator_code(alphabet: str, task: str, n_classes: int) -> str:
    """A small data generator whose labels follow a rule a model can learn."""
    if alphabet == "dna" and task != "per_residue":
        return f'''MOTIFS = {list(_GEN_MOTIFS[:max(2, n_classes)])!r}


def make_data(n, length, seed):
    """Random DNA; the label says which motif was planted (binary: CLASS 1 = {_GEN_MOTIFS[0]} present),
    or for regression the GC content plus 1 for each planted {_GEN_MOTIFS[0]}."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        s = list(rng.choice(list("ACGT"), length))
        k = i % {max(2, n_classes)}
        if TASK == "binary" and k == 0:
            pass                                  # class 0: no motif
        elif TASK != "regression" or k == 0:
            m = MOTIFS[0] if TASK in ("binary", "regression") else MOTIFS[k]
            at = int(rng.integers(0, max(1, length - len(m) + 1)))
            s[at:at + len(m)] = list(m)[: length - at]
        seq = "".join(s)
        seqs.append(seq)
        if TASK == "regression":
            labels.append((seq.count("G") + seq.count("C")) / length + seq.count(MOTIFS[0]))
        else:
            labels.append(min(k, 1) if TASK == "binary" else k)
    return seqs, labels
'''
    letters = _letters(alphabet)[0]
    k = max(2, n_classes)
    groups = [letters[i::k] for i in range(k)]
    return f'''GROUPS = {groups!r}          # letters grouped; the label follows the groups


def make_data(n, length, seed):
    """Random {'DNA' if alphabet == 'dna' else 'proteins'} built from segments, each rich (80%) in one group
    of letters. Per-residue: each residue is labelled with its segment's group. Otherwise the class is
    the group the sequence is rich in (regression: the fraction of group-0 letters)."""
    rng = np.random.default_rng(seed)
    alphabet = list({letters!r})
    seqs, labels = [], []
    for i in range(n):
        s, lab = [], []
        rich = i % len(GROUPS)
        while len(s) < length:
            g = int(rng.integers(0, len(GROUPS))) if TASK == "per_residue" else rich
            seg = int(rng.integers(4, 12))
            for _ in range(seg):
                pool = GROUPS[g] if rng.random() < 0.8 else alphabet
                s.append(str(rng.choice(list(pool))))
                lab.append(CLASS_NAMES[g] if TASK == "per_residue" else "")
        seq = "".join(s[:length])
        seqs.append(seq)
        if TASK == "per_residue":
            labels.append("".join(lab[:length]))
        elif TASK == "regression":
            labels.append(sum(c in GROUPS[0] for c in seq) / length)
        else:
            labels.append(min(rich, 1) if TASK == "binary" else rich)
    return seqs, labels
'''


def _letters(alphabet: str | None) -> tuple[str, str]:
    a = encoding.ALPHABETS[alphabet or "dna"]
    return a.letters, a.unknown


def sequence_script(spec, config: TrainConfig, *, task: str, input, class_names=(), epochs: int = 10,
                    seed: int = 0, train: tuple | None = None, val: tuple | None = None, test: tuple | None = None,
                    generate: tuple[int, int] = (600, 50), train_fraction: float = 0.8, val_fraction: float = 0.1,
                    title: str = "", too_large: int | None = None) -> str:
    """A runnable script that trains ``spec`` on sequences as the playground's Trainer does.

    ``input``: an InputSpec (one-hot or tokens; alphabet). ``train`` / ``val`` / ``test``:
    (sequences, labels) of the page's own split to embed (labels: class ids, values, or per-residue
    label strings); without them, or when they are larger than EMBED_LIMIT letters, the script
    generates ``generate`` = (n, length) sequences with a learnable rule and splits them (seeded,
    stratified for classes) with ``train_fraction`` and ``val_fraction``, the rest for test (so
    does a CSV file named in the script's DATA_CSV)."""
    if input.kind not in ("one_hot", "tokens"):
        raise ValueError(f"code generation covers one-hot and token models, not {input.kind!r}")
    if task not in ("binary", "multiclass", "regression", "per_residue"):
        raise ValueError(task)
    alphabet = input.alphabet or "dna"
    letters, unknown = _letters(alphabet)
    n_classes = 1 if task == "regression" else (len(class_names) or max(2, int(getattr(spec, "n_outputs", 2))))
    names = list(class_names) or [str(i) for i in range(n_classes)]
    if task == "per_residue" and not all(len(c) == 1 for c in names):
        names = [str(i) for i in range(n_classes)]
    fixed_length = input.length if input.kind == "one_hot" else None
    embedded = _fits(train, val, test)
    buckets = bool(config.length_buckets) and input.kind == "tokens"
    model_imports, model_code = model_source(spec)
    helper_imports, helper_code = helper_source("split", "read_csv", "tokenize", "one_hot", "targets", "evaluate",
                                                "score", buckets=buckets)
    imports = _imports(helper_imports, model_imports,
                       always=("import argparse", *_training_imports(config), "import numpy as np", "import torch",
                               "from torch import nn", "from torch.nn import functional as F"))
    length = fixed_length or generate[1]
    fractions = f"{float(train_fraction)!r}, {float(val_fraction)!r}"
    note = ""
    if train is not None and not embedded:
        too_large = sum(len(p[0]) for p in (train, val, test) if p is not None)
    if too_large:
        note = (f"# The page's data set ({too_large:,} sequences) is too large to embed here;\n"
                "# this script generates a small task of the same shape. Save the page's data as CSV and set\n"
                "# DATA_CSV to train on it.\n")
    if embedded:
        data_code = _embedded_data("sequences", task, train, val, test)
    else:
        data_code = note + _generator_code(alphabet, task, n_classes)
    split_code = _split_code(fractions, embedded, f"{generate[0]}, {length}")
    encode = ("one_hot(seqs, LENGTH)" if input.kind == "one_hot" else "tokenize(seqs)")
    desc = spec.describe()
    budget_line = (f"TOKEN_BUDGET = {int(config.token_budget) or None}          # batches of similar length: "
                   "at most this many positions per batch\n") if buckets else ""
    copied = ", data/protein.py, data/buckets.py" if buckets else ", data/protein.py"
    return f'''"""Generated by the Sequence Deep Learning Playground{': ' + title if title else ''}.

Model: {desc}
Task: {task.replace('_', '-')}{' (classes: ' + ', '.join(names) + ')' if task != 'regression' else ''}; input: {input.describe()}.

    python this_file.py                      # train as the playground does, print the losses
    python this_file.py --epochs 30          # longer
    python this_file.py --weights model.pt   # load a bundle saved with 'Download model' and evaluate it

It trains on the training set, prints the training and validation loss as it goes, and at the end
scores the held-out test set, once. Needs only torch and numpy. The model code below is the
playground's own (playground/models/).
"""
from __future__ import annotations

{imports}

SEED = {seed}
EPOCHS = {epochs}
LR = {config.lr:g}
BATCH_SIZE = {config.batch_size}                # 0 = the whole training set in one batch
TASK = "{task}"
CLASS_NAMES = {names!r}
LETTERS, UNKNOWN = "{letters}", "{unknown}"   # token ids: 0 = padding, letters 1..{len(letters)}, unknown {len(letters) + 1}
LENGTH = {fixed_length if fixed_length else 'None'}                # {'the one-hot length the model reads' if fixed_length else 'token models read any length'}
{budget_line}DATA_CSV = None              # e.g. "my_data.csv" with columns 'sequence' and 'label' (labels as in CLASS_NAMES)


# ---- the data ------------------------------------------------------------------------------
{data_code}

# ---- split, read, encode, evaluate: the playground's own (playground/codegen_helpers.py, data/split.py, train.py{copied})
{helper_code}


# ---- the model (copied from the playground) ------------------------------------------------
{model_code}


# ---- training (the playground's Trainer, written out) ---------------------------------------
{_training_code(config, buckets)}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--weights", help="a model bundle (.pt) saved from the playground: evaluate it instead of training")
    args = ap.parse_args()

    # training: what the model learns from; validation: measured after every epoch (what early
    # stopping and the learning-rate schedule read); test: held out, scored once at the end
    {split_code.replace(chr(10), chr(10) + "    ")}
    (train_seqs, train_labels), (val_seqs, val_labels), (test_seqs, test_labels) = train, val, test
    seqs = train_seqs + val_seqs + test_seqs
    width = LENGTH or max(len(s) for s in seqs)
    x, y = {encode}, targets(train_labels + val_labels + test_labels, width)
    n_train, n_val = len(train_seqs), len(val_seqs)
    x_train, y_train = x[:n_train], y[:n_train]
    x_val, y_val = x[n_train:n_train + n_val], y[n_train:n_train + n_val]
    x_test, y_test = x[n_train + n_val:], y[n_train + n_val:]
    print(f"{{n_train}} training, {{n_val}} validation and {{len(test_seqs)}} test sequences; input {{tuple(x.shape)}}")

    spec = {spec_call(spec)}
    torch.manual_seed(SEED)                   # same seed -> the playground's initial weights
    model = spec.build()
    print(spec.describe(), "-", sum(p.numel() for p in model.parameters()), "parameters")
    if args.weights:
        bundle = torch.load(args.weights, map_location="cpu", weights_only=True)   # plain data only: safe
        model.load_state_dict(bundle["state_dict"])
        print(f"loaded {{args.weights}}: trained {{bundle['training'].get('epochs')}} epochs on {{bundle['dataset']!r}}")
        print(f"validation loss {{evaluate(model, x_val, y_val):.6f}}")
    else:
        train_model(model, x_train, y_train, x_val, y_val, args.epochs)
        torch.save({{"state_dict": model.state_dict(), "spec": {spec.to_dict()!r}}}, "trained_model.pt")
        print("weights saved to trained_model.pt")

{_TEST_CODE}


if __name__ == "__main__":
    main()
'''


def _decode_rows(x, input) -> list[str]:
    """Tensors back to sequences (one-hot: all-zero columns read as the unknown letter)."""
    a = encoding.ALPHABETS[input.alphabet or "dna"]
    if input.kind == "one_hot":
        letters = np.array(list(a.letters + a.unknown))
        xx = x.detach().cpu()
        idx = xx.argmax(1).numpy()
        idx[(xx.abs().sum(1) == 0).numpy()] = len(a.letters)
        return ["".join(letters[row]) for row in idx]
    return [encoding.decode(row.tolist(), a) for row in x.detach().cpu()]


def _labels(y, task: str, names: list[str]) -> list:
    """Labels as a script lists them. Per-residue: one letter per residue; a residue without a label
    inside the sequence (a masked one) is written as a letter that is no class name, which the
    script's ``targets`` turns back into -100."""
    if task == "per_residue":
        sym = names if all(len(c) == 1 for c in names) else [str(i) for i in range(len(names))]
        blank = next(c for c in ".?_~#" if c not in sym)
        rows = []
        for row in y.cpu().tolist():
            while row and row[-1] < 0:          # the padding after the sequence
                row.pop()
            rows.append("".join(sym[v] if v >= 0 else blank for v in row))
        return rows
    return y.cpu().tolist()


def _fractions(data) -> tuple[float, float]:
    """(train, validation) fractions of a split, rounded to whole percent: how a script splits a
    CSV file of the user's (DATA_CSV) or its generated task, as the page split its data."""
    n_train, n_val, n_test = data.sizes()
    n = n_train + n_val + n_test
    meta = getattr(data, "meta", {}) or {}
    if "train_fraction" in meta and "val_fraction" in meta:
        return float(meta["train_fraction"]), float(meta["val_fraction"])
    if n and n_val and n_test:
        tf, vf = round(n_train / n, 2), round(n_val / n, 2)
        if 0 < tf < 1 and 0 < vf < 1 and tf + vf < 1:
            return tf, vf
    return 0.8, 0.1


def _parts(sequences) -> tuple:
    """``sequences`` as (train, val, test) pairs of (sequences, labels): given as (train seqs, train
    labels, val seqs, val labels, test seqs, test labels). None (or the old four-part form without
    validation, which cannot reproduce the page's validation set): (None, None, None)."""
    if not sequences or len(sequences) != 6:
        return None, None, None
    return tuple(tuple(sequences[i:i + 2]) for i in (0, 2, 4))


def _script_for_split(spec, config: TrainConfig, data, *, epochs: int, input=None, title: str = "",
                      class_names=None, sequences: tuple | None = None) -> str:
    """The script for a model trained on ``data`` (a SplitData) with ``config``: the page's own
    train / validation / test sequences when they are small enough, so the printed losses are the page's."""
    from playground.bundle import infer_input

    names = list(class_names if class_names is not None else data.class_names)
    train_fraction, val_fraction = _fractions(data)
    if spec.kind == "esm_head":   # the inputs are embeddings: the proteins come from the page (or are generated)
        train, val, test = _parts(sequences)
        return esm_head_script(spec, config, task=data.task, class_names=names, epochs=int(epochs),
                               seed=int(config.seed), train=train, val=val, test=test, title=title,
                               train_fraction=train_fraction, val_fraction=val_fraction)
    inp = input or infer_input(spec, data)
    if data.task == "binary" and len(names) != 2:
        names = ["0", "1"]
    if inp.kind == "features":
        raise ValueError("toy-feature models use toy_script")
    n_total = sum(data.sizes())
    n_letters = (data.x_train[0].numel() if inp.kind == "tokens" else data.x_train.shape[2]) * n_total
    train = val = test = None
    if n_letters <= EMBED_LIMIT:
        train, val, test = ((_decode_rows(x, inp), _labels(y, data.task, names))
                            for x, y in (data.part("train"), data.part("val"), data.part("test")))
    length = inp.length or int(data.x_train.shape[-1])
    return sequence_script(spec, config, task=data.task, input=inp, class_names=names, epochs=int(epochs),
                           seed=int(config.seed), train=train, val=val, test=test, generate=(600, min(length, 200)),
                           train_fraction=train_fraction, val_fraction=val_fraction, title=title,
                           too_large=None if train is not None else n_total)


def script_for_trainer(trainer, spec, input=None, *, epochs: int | None = None, title: str = "",
                       class_names=None, sequences: tuple | None = None) -> str:
    """The generated script for a page's run: its spec, settings, seed and (when small) its own
    train / validation / test sequences, so the printed losses are the page's. ESM-2 heads train on
    embeddings: pass ``sequences=(train_seqs, train_labels, val_seqs, val_labels, test_seqs,
    test_labels)`` to embed the page's proteins."""
    default = 20 if spec.kind == "esm_head" else 10
    return _script_for_split(spec, trainer.config, trainer.data, epochs=int(epochs or max(trainer.epoch, default)),
                             input=input, title=title, class_names=class_names, sequences=sequences)


def _is_toy(run) -> bool:
    meta = getattr(run.data, "meta", None) or {}
    return getattr(run.spec, "kind", None) == "mlp" and meta.get("dataset") in toy.TOY_SETS and "points" in meta


def _split_of(run):
    """The SplitData a run trains on: ``run.data`` itself, or the seeded split of the page's data
    set (the DNA page's ``DNADataset`` with ``extras["train_fraction"]`` and ``["val_fraction"]``),
    or its trainer's."""
    if hasattr(run.data, "x_train"):
        return run.data
    if hasattr(run.data, "split") and "train_fraction" in run.extras:
        return run.data.split(run.extras["train_fraction"], int(run.config.seed), run.extras.get("val_fraction", 0.1))
    return run.make_trainer().data


def script_for(run, trainer=None, *, epochs: int | None = None, title: str = "", input=None, class_names=None,
               sequences: tuple | None = None) -> str:
    """The script for a page's run (a ``playground.setups.Run``: its data, spec and config).

    ``trainer``: the page's trainer for this run, when there is one: the script then trains as
    many epochs as it has (at least 100 for the basics page, 10 for sequence models, 20 for ESM-2
    heads), else ``epochs``. The basics page's toy runs get the hand-written MLP script
    (``toy_script``); sequence models the playground's own model code and the page's sequences;
    ESM-2 heads (``run.spec`` an ``ESMHeadSpec``, ``run.data`` the embedding split) the proteins
    in ``sequences`` = (train seqs, train labels, val seqs, val labels, test seqs, test labels), or
    ``run.extras["sequences"]``."""
    if run.spec is None or run.config is None:
        raise ValueError("this run has no single model to export")
    toy_run = _is_toy(run)
    default = 100 if toy_run else 20 if run.spec.kind == "esm_head" else 10
    n = int(epochs or (max(trainer.epoch, default) if trainer is not None else default))
    if toy_run:
        return toy_script_from_run(run, epochs=n)
    data = trainer.data if trainer is not None else _split_of(run)
    if sequences is None:
        sequences = run.extras.get("sequences")
    return _script_for_split(run.spec, run.config, data, epochs=n, input=input or run.extras.get("input"),
                             title=title, class_names=class_names, sequences=sequences)


def script_for_bundle(bundle, epochs: int | None = None) -> str:
    """A script for a saved model (generated data of the bundle's shape; ``--weights`` loads it)."""
    tr = bundle.training or {}
    cfg = TrainConfig(optimizer=tr.get("optimizer", "adam"), lr=float(tr.get("lr", 0.003)),
                      batch_size=int(tr.get("batch_size", 32)), seed=int(tr.get("seed", 0)),
                      early_stopping=int(tr.get("early_stopping", 0)))
    length = bundle.input.length or 50
    if bundle.kind == "esm_head":
        return esm_head_script(bundle.spec, cfg, task=bundle.task, class_names=bundle.classes,
                               epochs=int(epochs or tr.get("epochs") or 20), seed=int(tr.get("seed", 0)),
                               title=bundle.title())
    return sequence_script(bundle.spec, cfg, task=bundle.task, input=bundle.input, class_names=bundle.classes,
                           epochs=int(epochs or tr.get("epochs") or 10), seed=int(tr.get("seed", 0)),
                           generate=(600, length), title=bundle.title())


# -------------------------------------------------------------------------------------------------
# ESM-2 heads: fair-esm embeds the proteins, a small head learns from them
# -------------------------------------------------------------------------------------------------
def esm_head_script(spec, config: TrainConfig, *, task: str, class_names=(), epochs: int = 20, seed: int = 0,
                    train: tuple | None = None, val: tuple | None = None, test: tuple | None = None,
                    generate: tuple[int, int] = (200, 60), train_fraction: float = 0.8, val_fraction: float = 0.1,
                    title: str = "") -> str:
    """A runnable script for an ESM-2 head: load ESM-2 with fair-esm (downloaded once; ``--random-esm``
    builds the same architecture with random weights, offline), embed the proteins (mean over the
    residues of layer ``spec.layer``, or one vector per residue), train the playground's head on
    the frozen embeddings with the Trainer's loop (training and validation loss per epoch), then
    score the held-out test proteins once. ``train`` / ``val`` / ``test``: the page's (proteins,
    labels) to embed; without them a generated task, split with ``train_fraction`` / ``val_fraction``."""
    if spec.kind != "esm_head":
        raise ValueError("esm_head_script is for ESMHeadSpec")
    name = spec.esm_name
    layers, dim, heads = esm_architecture(name) or (spec.layer, spec.embed_dim, 20)
    random_seed = None
    if str(spec.esm_model).startswith("untrained:"):
        part = [p for p in str(spec.esm_model).split("|")[0].split(":") if p.startswith("seed")]
        random_seed = int(part[0][4:]) if part and part[0][4:].isdigit() else 0
    per_res = bool(spec.per_residue)
    n_classes = 1 if task == "regression" else (len(class_names) or max(2, int(spec.n_outputs)))
    names = list(class_names) or [str(i) for i in range(n_classes)]
    head_spec = dataclasses.replace(spec, finetune_layers=0)
    model_imports, model_code = model_source(head_spec)
    helper_imports, helper_code = helper_source("split", "read_csv", "targets", "evaluate", "score")
    imports = _imports(helper_imports, model_imports,
                       always=("import argparse", "import os", *_training_imports(config), "import numpy as np",
                               "import torch", "from torch import nn", "from torch.nn import functional as F"))
    fractions = f"{float(train_fraction)!r}, {float(val_fraction)!r}"
    note = ""
    if spec.finetune_layers:
        note = (f"# In the playground the last {spec.finetune_layers} ESM-2 layer(s) were fine-tuned too; this script\n"
                "# trains the head on frozen embeddings (the simpler, faster variant).\n")
    if _fits(train, val, test):
        data_code = _embedded_data("proteins", task, train, val, test)
    else:
        data_code = _generator_code("protein", task, n_classes)
    split_code = _split_code(fractions, _fits(train, val, test), f"{generate[0]}, {generate[1]}")
    return f'''"""Generated by the Sequence Deep Learning Playground{': ' + title if title else ''}.

Model: {spec.describe()}
Task: {task.replace('_', '-')}{' (classes: ' + ', '.join(names) + ')' if task != 'regression' else ''}.

    pip install torch numpy fair-esm
    python this_file.py                 # downloads {name} once (into torch.hub's cache), embeds, trains the head
    python this_file.py --random-esm    # offline: the same architecture with random weights (untrained!)
    python this_file.py --weights model.pt   # evaluate a head saved with the playground's 'Download model'
"""
from __future__ import annotations

{imports}

SEED = {seed}
EPOCHS = {epochs}
LR = {config.lr:g}
BATCH_SIZE = {config.batch_size}
TASK = "{task}"
CLASS_NAMES = {names!r}
ESM_NAME, LAYER = "{name}", {spec.layer}
RANDOM_ESM_SEED = {random_seed!r}      # not None: the playground used ESM-2 with random weights (this seed)
DATA_CSV = None   # e.g. "proteins.csv" with columns 'sequence' and 'label'
{note}

# ---- the data ------------------------------------------------------------------------------
{data_code}

# ---- split, read, evaluate: the playground's own (playground/codegen_helpers.py, data/split.py, data/protein.py, train.py)
{helper_code}


# ---- ESM-2 (fair-esm) ----------------------------------------------------------------------
def load_esm2(random_weights=False):
    import argparse as _argparse

    import esm
    from esm.model.esm2 import ESM2

    layers, dim, heads = {layers}, {dim}, {heads}
    if random_weights or RANDOM_ESM_SEED is not None:
        torch.manual_seed(RANDOM_ESM_SEED or 0)
        alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
        return ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads, alphabet=alphabet,
                    token_dropout=True).eval(), alphabet
    path = os.path.join(torch.hub.get_dir(), "checkpoints", f"{{ESM_NAME}}.pt")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.hub.download_url_to_file(f"https://dl.fbaipublicfiles.com/fair-esm/models/{{ESM_NAME}}.pt", path)
    with torch.serialization.safe_globals([_argparse.Namespace]):      # the checkpoint's config object
        data = torch.load(path, map_location="cpu", weights_only=True)
    model, alphabet = esm.pretrained.load_model_and_alphabet_core(ESM_NAME, data, None)
    return model.eval(), alphabet


@torch.no_grad()
def embed(model, alphabet, seqs, per_residue=False, batch=16):
    """Layer LAYER's vectors: the mean over each protein's residues (BOS, EOS, padding left out),
    or one vector per residue (padded with zeros)."""
    convert = alphabet.get_batch_converter()
    out = []
    for i in range(0, len(seqs), batch):
        chunk = [(f"p{{j}}", s[:1022]) for j, s in enumerate(seqs[i:i + batch])]
        _, _, tokens = convert(chunk)
        rep = model(tokens, repr_layers=[LAYER])["representations"][LAYER]
        for r, (_, s) in enumerate(chunk):
            vecs = rep[r, 1:len(s) + 1]
            out.append(vecs if per_residue else vecs.mean(0))
    if not per_residue:
        return torch.stack(out)
    L = max(len(v) for v in out)
    padded = torch.zeros(len(out), L, out[0].shape[-1])
    for i, v in enumerate(out):
        padded[i, :len(v)] = v
    return padded


# ---- the head (copied from the playground) -------------------------------------------------
{model_code}


# ---- training (the playground's Trainer, written out) ---------------------------------------
{_training_code(config)}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--random-esm", action="store_true", help="random ESM-2 weights (offline test run)")
    ap.add_argument("--weights", help="a head bundle (.pt) saved from the playground")
    args = ap.parse_args()
    # training: what the head learns from; validation: measured after every epoch (what early
    # stopping and the learning-rate schedule read); test: held out, scored once at the end
    {split_code.replace(chr(10), chr(10) + "    ")}
    (train_seqs, train_labels), (val_seqs, val_labels), (test_seqs, test_labels) = train, val, test
    esm_model, alphabet = load_esm2(args.random_esm)
    x = embed(esm_model, alphabet, train_seqs + val_seqs + test_seqs, per_residue={per_res})
    y = targets(train_labels + val_labels + test_labels, x.shape[1] if x.dim() == 3 else 0)
    n_train, n_val = len(train_seqs), len(val_seqs)
    x_train, y_train = x[:n_train], y[:n_train]
    x_val, y_val = x[n_train:n_train + n_val], y[n_train:n_train + n_val]
    x_test, y_test = x[n_train + n_val:], y[n_train + n_val:]
    print(f"{{n_train}} training, {{n_val}} validation and {{len(test_seqs)}} test proteins; embeddings {{tuple(x.shape)}}")

    spec = {spec_call(head_spec)}
    torch.manual_seed(SEED)
    model = ESMHead(spec.embed_dim, spec.head, spec.hidden, spec.n_outputs, spec.dropout)
    if args.weights:
        bundle = torch.load(args.weights, map_location="cpu", weights_only=True)
        model.load_state_dict(bundle["state_dict"])
        print(f"validation loss {{evaluate(model, x_val, y_val):.6f}}")
    else:
        train_model(model, x_train, y_train, x_val, y_val, args.epochs)

{_TEST_CODE}


if __name__ == "__main__":
    main()
'''


def script_for_spec(spec, config: TrainConfig, *, task: str, input=None, class_names=(), epochs: int = 10,
                    seed: int = 0, title: str = "") -> str:
    """The script for any spec: ESM-2 heads, one-hot and token models (generated data of the right shape)."""
    if spec.kind == "esm_head":
        return esm_head_script(spec, config, task=task, class_names=class_names, epochs=epochs, seed=seed, title=title)
    from playground.bundle import infer_input

    inp = input or infer_input(spec)
    return sequence_script(spec, config, task=task, input=inp, class_names=class_names, epochs=epochs, seed=seed,
                           generate=(600, inp.length or 50), title=title)


# =================================================================================================
# The Language models page: a masked (BERT) or causal (GPT) Transformer LM, the masking written in
# =================================================================================================
def lm_script(spec, config: TrainConfig, tokenizer, *, train: list[str], val: list[str], masking: dict | None = None,
              epochs: int = 10, title: str = "") -> str:
    """A runnable script that trains the LM ``spec`` (``playground.lm.models.LMSpec``) on the corpus'
    ``train`` / ``val`` sequences as the playground's Trainer does: the same tokens ([CLS] first),
    the same validation masking (drawn once), the same seeded shuffling and the same fresh BERT
    masking of every training batch (``mask_tokens``, copied from ``playground/lm/masking.py``), the
    same initial weights; it prints the training loss and the validation loss, bits per token and
    accuracy of every epoch. ``masking``: ``data.meta["masking"]`` (masked LMs)."""
    from playground.lm.training import VAL_MASK_OFFSET
    from playground.data.split import SPLIT_SEED_OFFSET

    if sum(map(len, train)) + sum(map(len, val)) > EMBED_LIMIT:
        raise ValueError(f"the corpus has more than {EMBED_LIMIT:,} letters: too large to embed in a script")
    masked = spec.objective == "masked"
    if masked and not masking:
        raise ValueError("a masked LM's script needs the masking settings (data.meta['masking'])")
    imports, code = sources(("playground.lm.tokens", "Tokenizer"), ("playground.lm.models", "LMSpec"),
                            ("playground.lm.masking", "mask_tokens"), ("playground.lm.masking", "mask_validation"),
                            ("playground.lm.masking", "lm_loss"),
                            ("playground.lm.masking", "causal_pairs"))
    imports = _imports(imports, always=("import argparse", "import math", "import numpy as np", "import torch",
                                        "from torch import nn", "from torch.nn import functional as F",
                                        *_training_imports(config)))
    m = dict(masking or {})
    mask_line = (f"MASKING = dict(rate={m.get('rate', 0.15)!r}, mask_frac={m.get('mask_frac', 0.8)!r}, "
                 f"random_frac={m.get('random_frac', 0.1)!r}, vocab_size={m.get('vocab_size', tokenizer.vocab_size)}, "
                 f"mask_id={m.get('mask_id', 1)}, n_special={m.get('n_special', 4)})\n"
                 "# of the tokens (never [PAD]/[CLS]), `rate` are chosen; of those, `mask_frac` become [MASK],\n"
                 "# `random_frac` a random token, the rest stay as they are (BERT's 80 / 10 / 10)"
                 if masked else "MASKING = None                # a causal LM predicts the next token: nothing is masked")
    what = "masked (BERT: fill in the blanks)" if masked else "causal (GPT: predict the next token)"
    return f'''"""Generated by the Sequence Deep Learning Playground{': ' + title if title else ''}.

Model: {spec.describe()}
Objective: {what}; tokens: {tokenizer.describe()}.

    python this_file.py                      # train as the playground does, print the losses
    python this_file.py --epochs 30          # longer

It trains on the training sequences and, after every epoch, measures the validation loss (nats per
token), the bits per token (loss / ln 2; perplexity = 2 ** bits) and the accuracy on the validation
targets. Needs only torch and numpy. The tokenizer, the model and the masking below are the
playground's own (playground/lm/).
"""
from __future__ import annotations

{imports}

SEED = {int(config.seed)}
EPOCHS = {int(epochs)}
LR = {config.lr:g}
BATCH_SIZE = {config.batch_size}
TOKENIZER = {tokenizer.to_dict()!r}
{mask_line}
SPLIT_SEED = SEED + {SPLIT_SEED_OFFSET}         # the playground's split stream (playground/data/split.py)
VAL_MASK_SEED = SPLIT_SEED + {VAL_MASK_OFFSET}   # the validation set is masked once, with this seed


# ---- the corpus (the page's own training and validation sequences) ------------------------
{_wrap_list("TRAIN_SEQS", list(train), 4)}
{_wrap_list("VAL_SEQS", list(val), 4)}


# ---- tokens, model, masking: the playground's own -------------------------------------------
{code}


# ---- training (the playground's Trainer, written out) ---------------------------------------
def evaluate(model, x, y):
    """(loss in nats per target token, accuracy) on the positions with a target (y != -100)."""
    model.eval()
    with torch.no_grad():
        out = model(x)
        keep = y != -100
        total = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), ignore_index=-100, reduction="sum")
        n = int(keep.sum())
        acc = (out.argmax(-1)[keep] == y[keep]).float().mean().item()
    model.train()
    return float(total.double()) / n, acc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    args = ap.parse_args()

    tok = Tokenizer(**TOKENIZER)
    x_train, x_val = tok.encode_batch(TRAIN_SEQS), tok.encode_batch(VAL_SEQS)   # [CLS] + tokens, 0-padded
    width = max(x_train.shape[1], x_val.shape[1])
    x_train, x_val = (F.pad(t, (0, width - t.shape[1])) for t in (x_train, x_val))
    if MASKING:
        y_train = x_train.clone()          # the targets are drawn with each batch's masking
        x_val, y_val = mask_validation(x_val, torch.Generator().manual_seed(VAL_MASK_SEED), **MASKING)
    else:
        x_train, y_train = causal_pairs(x_train)      # predict token t+1 from tokens <= t
        x_val, y_val = causal_pairs(x_val)
    print(f"{{len(x_train)}} training and {{len(x_val)}} validation sequences; {{tok.describe()}}")

    spec = {spec_call(spec)}
    torch.manual_seed(SEED)                   # same seed -> the playground's initial weights
    model = spec.build()
    print(spec.describe(), "-", sum(p.numel() for p in model.parameters()), "parameters")
    torch.manual_seed(SEED)                   # dropout draws from this, as in the playground's Trainer
    optimizer = {optimizer_code(config)}
    shuffle = torch.Generator().manual_seed(SEED)   # shuffling and the training masks draw from this one
    n_train = len(x_train)
    batch_size = n_train if BATCH_SIZE <= 0 or BATCH_SIZE >= n_train else BATCH_SIZE
    if MASKING:                               # epoch 0's training loss: one fixed masking of its own
        x0, y0 = mask_tokens(x_train, torch.Generator().manual_seed(SPLIT_SEED + 1), **MASKING)
    else:
        x0, y0 = x_train, y_train
    val_loss, val_acc = evaluate(model, x_val, y_val)
    print(f"epoch    0  train loss {{evaluate(model, x0, y0)[0]:.4f}}  validation loss {{val_loss:.4f}}  "
          f"bits/token {{val_loss / math.log(2):.4f}}  accuracy {{val_acc:.4f}}")
{_lm_loop_code(config)}    torch.save({{"state_dict": model.state_dict(), "spec": {spec.to_dict()!r}, "tokenizer": TOKENIZER}},
               "trained_lm.pt")
    print("weights saved to trained_lm.pt")


if __name__ == "__main__":
    main()
'''


def _lm_loop_code(config: TrainConfig) -> str:
    """The LM epochs of ``lm_script``'s main, with the extras the run uses, in the Trainer's order:
    shuffling (or the stored order), a fresh masking per batch, regularisation, gradient accumulation,
    warm-up, clipping; after each epoch the validation scores, early stopping and the schedule."""
    accum = max(1, int(config.grad_accum))
    reg = regularization_code(config).replace("\n        ", "\n            ")
    step = _optimizer_step_lines(config)
    if accum > 1:
        body = (f"            (loss / {accum}).backward()  # gradient accumulation: {accum} batches per optimizer step\n"
                f"            batches += 1\n            if batches % {accum} == 0 or start + batch_size >= n_train:\n"
                + "".join(f"                {ln}\n" for ln in step))
    else:
        body = "            loss.backward()\n" + "".join(f"            {ln}\n" for ln in step)
    before, after, _ = _epoch_end_code(config, "        ")
    order = ("torch.randperm(n_train, generator=shuffle)" if getattr(config, "shuffle", True)
             else "torch.arange(n_train)               # the stored order (shuffling is off)")
    return f"""{before}    batches = optimizer_steps = 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = {order}
        loss_sum, targets = 0.0, 0
        for start in range(0, n_train, batch_size):
            idx = order[start:start + batch_size]
            x_batch, y_batch = x_train[idx], y_train[idx]
            if MASKING:                       # a fresh masking for every batch
                x_batch, y_batch = mask_tokens(x_batch, shuffle, **MASKING)
            loss = lm_loss(model(x_batch), y_batch)    # mean over the target positions only
            w = int((y_batch != -100).sum())
            loss_sum, targets = loss_sum + loss.item() * w, targets + w{reg}
{body}        val_loss, val_acc = evaluate(model, x_val, y_val)
        print(f"epoch {{epoch:4d}}  train loss {{loss_sum / max(1, targets):.4f}}  validation loss {{val_loss:.4f}}  "
              f"bits/token {{val_loss / math.log(2):.4f}}  accuracy {{val_acc:.4f}}")
{after}"""


def lm_script_for_trainer(trainer, spec, tokenizer, corpus, *, epochs: int | None = None, title: str = "") -> str:
    """``lm_script`` for a page's LM run (``playground.lm.training.LMRun``: its trainer, spec,
    tokenizer and corpus), so the printed losses are the page's."""
    return lm_script(spec, trainer.config, tokenizer, train=list(corpus.train), val=list(corpus.val),
                     masking=trainer.data.meta.get("masking"), epochs=int(epochs or max(trainer.epoch, 10)),
                     title=title)


def finetune_script(spec, config: TrainConfig, tokenizer, *, train: tuple, val: tuple, test: tuple,
                    class_names=(), epochs: int = 20, title: str = "") -> str:
    """A runnable script for the fine-tune comparison: the classifier ``spec``
    (``playground.lm.models.LMClassifierSpec``) trained on the labelled ``train`` / ``val`` / ``test``
    (sequences, class ids) as the Trainer does, its body loaded from the LM script's
    ``trained_lm.pt`` (``--pretrained``) or trained from scratch (without it); the test set is scored
    once at the end."""
    task = "binary" if int(spec.n_outputs) == 1 else "multiclass"
    names = list(class_names) or [str(i) for i in range(max(2, int(spec.n_outputs)))]
    if not _fits(train, val, test):
        raise ValueError(f"the labelled set has more than {EMBED_LIMIT:,} letters: too large to embed in a script")
    helper_imports, helper_code = helper_source("evaluate", "score")
    model_imports, model_code = sources(("playground.lm.tokens", "Tokenizer"), ("playground.lm.models", "LMClassifierSpec"))
    imports = _imports(helper_imports, model_imports,
                       always=("import argparse", *_training_imports(config), "import numpy as np", "import torch",
                               "from torch import nn", "from torch.nn import functional as F"))
    return f'''"""Generated by the Sequence Deep Learning Playground{': ' + title if title else ''}.

Model: {spec.describe()}
Task: {task} (classes: {', '.join(names)}); tokens: {tokenizer.describe()}.

    python this_file.py --pretrained trained_lm.pt   # fine-tune: the body from the language-model script's weights
    python this_file.py                              # the same architecture from scratch

It trains on the labelled training sequences, prints the training and validation loss as it goes,
and at the end scores the held-out test set, once. Needs only torch and numpy.
"""
from __future__ import annotations

{imports}

SEED = {int(config.seed)}
EPOCHS = {int(epochs)}
LR = {config.lr:g}
BATCH_SIZE = {config.batch_size}
TASK = "{task}"
CLASS_NAMES = {names!r}
TOKENIZER = {tokenizer.to_dict()!r}


# ---- the labelled data ------------------------------------------------------------------------
{_embedded_data("sequences", task, train, val, test)}

# ---- evaluate, score: the playground's own (playground/codegen_helpers.py, train.py) ---------
{helper_code}


# ---- tokens and the model (copied from the playground) -----------------------------------------
{model_code}


# ---- training (the playground's Trainer, written out) ---------------------------------------
{_training_code(config)}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--pretrained", help="the language model's weights (trained_lm.pt from its script): fine-tune them")
    args = ap.parse_args()

    tok = Tokenizer(**TOKENIZER)
    seqs = TRAIN_SEQS + VAL_SEQS + TEST_SEQS
    x = tok.encode_batch(seqs)                  # [CLS] + tokens, 0-padded to the longest
    y = torch.tensor(TRAIN_LABELS + VAL_LABELS + TEST_LABELS, dtype=torch.float32 if TASK == "binary" else torch.long)
    a, b = len(TRAIN_SEQS), len(TRAIN_SEQS) + len(VAL_SEQS)
    x_train, y_train, x_val, y_val, x_test, y_test = x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:]
    print(f"{{a}} training, {{b - a}} validation and {{len(x_test)}} test sequences")

    spec = {spec_call(spec)}
    torch.manual_seed(SEED)                   # same seed -> the playground's initial weights (the head's, too)
    model = spec.build()
    if args.pretrained:                       # pretrain -> fine-tune: the language model's body, a new head
        state = torch.load(args.pretrained, map_location="cpu", weights_only=True)["state_dict"]
        model.body.load_state_dict({{k[len("body."):]: v for k, v in state.items() if k.startswith("body.")}})
        print(f"body loaded from {{args.pretrained}}")
    else:
        print("from scratch: no pretrained weights")
    train_model(model, x_train, y_train, x_val, y_val, args.epochs)

{_TEST_CODE}


if __name__ == "__main__":
    main()
'''


def finetune_script_for(result, tokenizer, *, epochs: int | None = None, title: str = "") -> str:
    """``finetune_script`` for a ``playground.lm.finetune.FinetuneResult`` (its spec, the pretrained
    run's settings and the split both runs share)."""
    data = result.data
    tr = result.pretrained

    def part(name):
        x, y = data.part(name)
        return ([tokenizer.decode(row.tolist(), skip_special=False) for row in x.cpu()],
                [int(v) for v in y.cpu().tolist()])
    return finetune_script(result.spec, tr.config, tokenizer, train=part("train"), val=part("val"), test=part("test"),
                           class_names=list(data.class_names), epochs=int(epochs or max(tr.epoch, 20)), title=title)
