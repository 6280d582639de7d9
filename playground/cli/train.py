"""``python -m playground train``: train a page's settings (or a page's URL) on a data file, off the web server.

    python -m playground train --page dna --settings "model=course&lr=0.001" --epochs 20 --out ctcf.pt
    python -m playground train --url "http://host:8501/DNA_CNN?model=custom&c1=64&seed=3" --data my.csv
    python -m playground train --page seq --data proteins.fasta --labels ss.fasta --device cuda --mlflow

The run is the one the page trains for the same values: the settings go through the page's
``Schema`` (``playground.setups.<page>``) exactly as a link's query parameters do, the data file
goes through the same reader as the page's upload, and ``setups.<page>.build(...).make_trainer()``
makes the same seeded trainer. So the history (per epoch) is the page's for that URL and seed.
Test is scored once at the end and printed as held out; the bundle is the one the page's
"Save & export" panel writes (the Predict page loads it).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import os
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from playground.errors import PlaygroundError

# page key -> (setup module, the URL path Streamlit serves the page under, its title)
PAGES = {
    "basics": ("playground.setups.basics", "Neural_Network_Basics", "Neural network basics"),
    "dna": ("playground.setups.dna", "DNA_CNN", "DNA & CNNs"),
    "seq": ("playground.setups.sequence", "Sequence_Models", "Sequence models"),
}
ALIASES = {"sequence": "seq", "sequences": "seq", "sequence_models": "seq", "dna_cnn": "dna",
           "neural_network_basics": "basics"}
NOT_TRAINABLE = {"protein_language_model": "the Protein language model page trains on a loaded ESM-2 model; "
                                           "use `python -m playground embed` for its heavy part",
                 "predict": "the Predict page does not train (use `python -m playground predict`)",
                 "run_history": "the Run history page does not train"}
DEFAULT_EPOCHS = 20

EXAMPLES = """examples:
  python -m playground train --page dna --settings "model=course&lr=0.001" --epochs 20 --out dna.pt
  python -m playground train --url "http://localhost:8501/DNA_CNN?model=custom&c1=64&seed=3" --epochs 10
  python -m playground train --page dna --data promoters.csv --settings "label_col=label" --out promoters.pt
  python -m playground train --page seq --data proteins.fasta --labels ss.fasta --device cuda --mlflow

The settings are the page's link parameters (copy them from the page's address bar). Missing ones take
the page's defaults; --seed and --device override the link's. Test is scored once, at the end.
"""


class TrainCliError(PlaygroundError):
    """A command line that cannot make a run (which page, which setting, which file)."""


# ---------------------------------------------------------------------------------------------
# the command line
def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a page's settings (or a page URL) on a data file and save a model bundle",
        description="Train what a playground page trains, from its settings or its URL, and save the model "
                    "bundle the page's Save panel writes.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("what to train")
    src.add_argument("--page", help=f"the page: {', '.join(PAGES)} (or --url)")
    src.add_argument("--url", help="a page's address, e.g. 'http://host/DNA_CNN?model=course&seed=3'")
    src.add_argument("--settings", default="", metavar="QUERY",
                     help="settings as a link's query string, e.g. 'model=course&lr=0.001' (override the URL's)")
    src.add_argument("--data", metavar="FILE", help="your data file (CSV / TSV / FASTA, .gz too), read as the page's "
                                                    "upload; sets dataset=upload")
    src.add_argument("--labels", metavar="FILE", help="seq page: a FASTA of labels with the same ids as --data")
    src.add_argument("--label-col", metavar="NAME", help="the label column of a --data table")
    run = p.add_argument_group("how")
    run.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                     help=f"epochs to train (default {DEFAULT_EPOCHS}; early stopping may end sooner)")
    run.add_argument("--seed", type=int, help="seed (data, split, weights, shuffling); default: the link's, or 0")
    run.add_argument("--device", choices=("cpu", "cuda"), help="default: the link's, or cpu")
    run.add_argument("--threads", type=int, help="CPU threads for PyTorch (default PLAYGROUND_NUM_THREADS or 1)")
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="BUNDLE.pt", help="write the model bundle here (load it on the Predict page)")
    out.add_argument("--history", metavar="FILE.csv", help="write the per-epoch history here")
    out.add_argument("--mlflow", action="store_true",
                     help="log the run to MLflow (./mlruns, or MLFLOW_TRACKING_URI)")
    out.add_argument("--experiment", default=None, help="MLflow experiment name (default 'playground')")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(args) -> int:
    return run_cli(args)


# ---------------------------------------------------------------------------------------------
# which page, which values
def page_key(name: str) -> str:
    """'dna', 'DNA_CNN', '2_DNA_CNN', 'pages/2_DNA_CNN.py', '/DNA_CNN/' -> 'dna'."""
    raw = (name or "").strip().strip("/")
    stem = Path(raw).stem if raw.endswith(".py") else raw.rsplit("/", 1)[-1]
    head, _, rest = stem.partition("_")
    if head.isdigit() and rest:
        stem = rest
    low = stem.lower()
    if low in PAGES:
        return low
    if low in ALIASES:
        return ALIASES[low]
    for key, (_, path, _) in PAGES.items():
        if low == path.lower():
            return key
    if low in NOT_TRAINABLE:
        raise TrainCliError(f"'{name}': {NOT_TRAINABLE[low]}.", f"Pages that train here: {', '.join(PAGES)}.")
    raise TrainCliError(f"'{name}' is not a page that trains.",
                        f"Use one of {', '.join(PAGES)} (or a page URL such as http://host/DNA_CNN?...).")


def setup_module(key: str):
    return importlib.import_module(PAGES[key][0])


def parse_query(text: str) -> dict[str, str]:
    """A query string ('a=1&b=x', with or without '?') -> {name: last value}, as a page reads its link."""
    text = (text or "").strip().lstrip("?")
    out: dict[str, str] = {}
    for part in [p for p in text.replace(";", "&").split("&") if p.strip()]:
        if "=" not in part:
            raise TrainCliError(f"setting '{unquote(part)}' has no value.", "Write name=value pairs joined by '&', "
                                                                           "e.g. 'model=course&lr=0.001'.")
    for k, v in parse_qsl(text, keep_blank_values=True):
        out[k.strip()] = v
    return out


def resolve(page: str | None = None, url: str | None = None, settings: str = "", *, seed: int | None = None,
            device: str | None = None, data: bool = False) -> tuple[str, dict, list[str]]:
    """(page key, the page's complete values, warnings) for a page or URL plus settings, decoded
    through the page's Schema as the page decodes its link. A value the page would ignore is an
    error here (a heavy job should not silently train the default); an unknown name is a warning."""
    if not page and not url:
        raise TrainCliError("Say what to train: --page NAME or --url LINK.", f"Pages: {', '.join(PAGES)}.")
    query: dict[str, str] = {}
    if url:
        parts = urlsplit(url.strip())
        from_url = page_key(parts.path) if parts.path.strip("/") else None
        if from_url is None and not page:
            raise TrainCliError(f"The URL '{url}' names no page.", "Copy the whole address, e.g. http://host/DNA_CNN?...")
        if page and from_url and page_key(page) != from_url:
            raise TrainCliError(f"--page {page} and the URL's page ({PAGES[from_url][1]}) differ.", "Give one of them.")
        page = page or PAGES[from_url][1]
        query.update(parse_query(parts.query))
    key = page_key(page)
    query.update(parse_query(settings))
    mod = setup_module(key)
    schema = mod.SCHEMA
    warnings: list[str] = []
    values: dict = {}
    for name, raw in query.items():
        if name not in schema:
            warnings.append(f"ignored `{name}`: not a setting of the {PAGES[key][2]} page")
            continue
        try:
            values[name] = schema[name].decode(raw)
        except (ValueError, TypeError) as e:
            if not schema[name].in_run and not schema[name].live:     # display only: the page ignores it too
                warnings.append(f"ignored `{name}={raw[:40]}` ({e}): a display setting, not part of the run")
                continue
            raise TrainCliError(f"setting {name}={raw!r}: {e}.",
                                f"Fix it, or leave it out for the default ({schema[name].encode(schema[name].default)}).")\
                from None
    if seed is not None:
        try:
            values["seed"] = schema["seed"].validate(int(seed))
        except ValueError as e:
            raise TrainCliError(f"--seed {seed}: {e}.") from None
    if device is not None:
        values["device"] = device
    if data:
        if "dataset" not in schema or "upload" not in (schema["dataset"].choices or ()):
            raise TrainCliError(f"The {PAGES[key][2]} page does not read a data file.",
                                "Train the DNA page (dna) or the Sequence models page (seq) on a file.")
        if values.get("dataset", "upload") != "upload":
            warnings.append(f"dataset={values['dataset']} replaced by dataset=upload (--data was given)")
        values["dataset"] = "upload"
    full, _ = schema.validate(values)
    if full.get("device") == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise TrainCliError("--device cuda: PyTorch sees no GPU here.", "Use --device cpu, or run on a GPU machine.")
    return key, full, warnings


def page_link(key: str, values: dict, base: str = "") -> str:
    """The page's link for these values: its URL path and the run's settings that differ from the
    defaults (seed always), e.g. '/DNA_CNN?seed=3&model=course'."""
    from urllib.parse import urlencode

    schema = setup_module(key).SCHEMA
    names = [n for n in schema.run_names + schema.live_names
             if n == "seed" or values.get(n, schema[n].default) != schema[n].default]
    query = schema.encode_query({n: values.get(n, schema[n].default) for n in names})
    return f"{base.rstrip('/')}/{PAGES[key][1]}?{urlencode(query)}"


def read_file(path: str | None, what: str) -> tuple[str, bytes] | None:
    """(file name, bytes) as the page's uploader hands a file to the setup, or None."""
    if not path:
        return None
    p = Path(os.path.expanduser(path))
    if not p.is_file():
        raise TrainCliError(f"{what} '{path}' does not exist or is not a file.", "Check the path.")
    return p.name, p.read_bytes()


# ---------------------------------------------------------------------------------------------
# the run, as the page makes it
@dataclasses.dataclass
class Prepared:
    key: str
    values: dict
    run: object                 # playground.setups.Run
    info: dict                  # the page's run_info: spec, page, dataset, parameters, label_names, input


def prepare(key: str, values: dict, upload: tuple[str, bytes] | None = None, reading: dict | None = None) -> Prepared:
    """The page's Run for these values and its run_info (what the page passes to LiveTraining.ensure,
    so the bundle is the one the page's Save panel writes)."""
    mod = setup_module(key)
    try:
        if key == "basics":
            run = mod.build(values)
            info = dict(spec=run.spec, page="basics", dataset=run.extras["toy"].label,
                        parameters={"features": "/".join(run.extras["features"]), "activation": run.spec.activation})
        elif key == "dna":
            run = mod.build(values, upload=upload)
            ds = run.extras["dataset"]
            info = dict(spec=run.spec, page="dna", dataset=ds.name, parameters=run.extras["parameters"],
                        label_names=list(ds.class_names) or None, input=run.extras["input"])
        else:
            run = mod.build(values, upload, reading=reading or None)
            info = dict(spec=run.spec, page="seq", dataset=run.extras["label"], label_names=run.data.class_names,
                        input=run.extras["input"], parameters={"family": run.extras["family"]})
    except PlaygroundError:
        raise
    except ValueError as e:
        raise TrainCliError(f"This run cannot be built: {e}", "Change the setting the message names.") from None
    return Prepared(key, values, run, info)


# ---------------------------------------------------------------------------------------------
# progress
class Progress:
    """A progress bar on stderr: tqdm when installed, else one plain line redrawn in place."""

    def __init__(self, total: int, desc: str = "train", enabled: bool = True, unit: str = "batch"):
        self.total, self.n, self.enabled, self.desc, self.unit = max(1, int(total)), 0, enabled, desc, unit
        self._bar = None
        self._t0 = time.perf_counter()
        self._last = 0.0
        self._post = ""
        if enabled:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=self.total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                                 mininterval=0.25)
            except ImportError:
                self._bar = None

    def update(self, n: int = 1, postfix: str | None = None) -> None:
        self.n += n
        if postfix is not None:
            self._post = postfix
        if not self.enabled:
            return
        if self._bar is not None:
            if postfix is not None:
                self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)
            return
        now = time.perf_counter()
        if now - self._last >= 0.25 or self.n >= self.total:
            self._last = now
            frac = min(1.0, self.n / self.total)
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            el = now - self._t0
            eta = el / frac - el if frac > 0 else 0
            sys.stderr.write(f"\r{self.desc} [{bar}] {self.n}/{self.total} {self.unit} {el:.0f}s<{eta:.0f}s "
                             f"{self._post}\x1b[K")
            sys.stderr.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            sys.stderr.write("\n")
            sys.stderr.flush()


def train(trainer, epochs: int, progress: Progress | None = None):
    """Train ``epochs`` more epochs (or until early stopping / divergence), one mini-batch at a
    time so the bar moves within an epoch and training ends exactly at an epoch's end."""
    target = trainer.epoch + int(epochs)
    while trainer.epoch < target and not trainer.done:
        before = trainer.epoch
        trainer.step(1)
        if progress is not None:
            post = None
            if trainer.epoch != before:
                rec = trainer.history[-1]
                post = f"epoch {trainer.epoch} val_loss {rec.get('val_loss', float('nan')):.4f}"
            progress.update(1, post)
    return trainer


def score_line(scores: dict) -> str:
    from playground.metrics import label as metric_label

    parts = [f"loss {scores['loss']:.4f}"] + [f"{metric_label(k)} {v:.4f}" for k, v in scores.items()
                                                if k not in ("loss", "epoch", "looks", "n") and isinstance(v, float)
                                                and math.isfinite(v)]
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
def run_cli(args) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(max(1, int(args.threads)))
    if args.epochs < 1:
        raise TrainCliError(f"--epochs {args.epochs}: train at least 1 epoch.")
    if args.mlflow:
        from playground import tracking

        if not tracking.available():          # said before training, not after
            raise tracking.TrackingError("--mlflow needs MLflow's client, which is not installed here.",
                                         "Install it: pip install mlflow-skinny (see requirements.txt).")
    if args.out and Path(args.out).suffix.lower() != ".pt":
        print(f"note: the Predict page's uploader takes .pt files; '{args.out}' is a bundle all the same "
              "(rename it to .pt to upload it).", file=sys.stderr)
    key, values, warnings = resolve(args.page, args.url, args.settings, seed=args.seed, device=args.device,
                                    data=bool(args.data))
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    upload = read_file(args.data, "--data")
    reading: dict = {}
    if args.labels:
        if key != "seq":
            raise TrainCliError("--labels is for the Sequence models page (--page seq).")
        reading["labels_file"] = read_file(args.labels, "--labels")
    if args.label_col:
        if key == "dna":
            values["label_col"] = args.label_col
        elif key == "seq":
            reading["label_col"] = args.label_col
        else:
            raise TrainCliError("--label-col needs a data file (the dna or seq page).")
    prep = prepare(key, values, upload, reading)
    trainer = prep.run.make_trainer()
    schema = setup_module(key).SCHEMA
    link = page_link(key, values)
    print(f"{PAGES[key][2]}: {prep.info['dataset']} · {prep.run.spec.describe()} · "
          f"{len(trainer.data.y_train)} train / {len(trainer.data.y_val)} validation / {len(trainer.data.y_test)} "
          f"test · seed {values['seed']} · {values['device']}", file=sys.stderr)
    print(f"the page with these settings: {link}", file=sys.stderr)
    bar = Progress(args.epochs * trainer.steps_per_epoch, desc="train", enabled=not args.quiet)
    t0 = time.perf_counter()
    try:
        train(trainer, args.epochs, bar)
    finally:
        bar.close()
    rec = trainer.history[-1]
    print(f"trained {trainer.epoch} epochs in {time.perf_counter() - t0:.1f} s; validation: "
          + ", ".join(f"{k[4:]} {v:.4f}" for k, v in rec.items() if k.startswith("val_") and isinstance(v, float)))
    if trainer.diverged:
        print(f"warning: training {trainer.diverged}", file=sys.stderr)
    if trainer.stopped:
        print(trainer.stopped)
    test = None
    if len(trainer.data.y_test) and not trainer.diverged:
        test = trainer.score_test()
        print(f"held-out test ({test['n']} examples, scored once, at the end): {score_line(test)}")
    bundle = None
    if args.out or args.mlflow:
        from playground.bundle import bundle_from_trainer

        info = prep.info
        bundle = bundle_from_trainer(trainer, info["spec"], page=info["page"], dataset=info.get("dataset", ""),
                                     name=f"{info['page']} model", label_names=info.get("label_names"),
                                     input=info.get("input"), settings=info.get("parameters"))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        bundle.save(args.out)
        print(f"bundle: {args.out} (load it on the Predict page, or: python -m playground predict {args.out} ...)")
    if args.history:
        Path(args.history).parent.mkdir(parents=True, exist_ok=True)
        trainer.history_frame().to_csv(args.history, index=False, float_format="%.6g")
        print(f"history: {args.history}")
    if args.mlflow:
        from playground import tracking

        logged = tracking.log_training(trainer, prep.info, values, schema, test=test, bundle=bundle,
                                       experiment=args.experiment)
        print(f"mlflow: run {logged.run_id} in experiment '{logged.experiment}' at {logged.uri}")
    return 0


__all__ = ["register", "run", "resolve", "prepare", "train", "page_key", "parse_query", "PAGES"]
