"""Hyperparameter sweeps on Optuna: vary a page's settings, train each trial as the page would,
score it on the validation set, and keep every trial in one Optuna study.

    from playground import sweep as SW
    spec = SW.make_spec("basics", vary={"lr": [0.003, 0.03, 0.3], "n1": "2..8"}, strategy="grid",
                        epochs=20, metric="accuracy")
    study = SW.create_study(spec)             # SQLite ./sweeps/sweeps.db, or $PLAYGROUND_SWEEP_STORAGE
    SW.run_worker(study.study_name)           # as many workers as you like, on as many machines
    SW.trial_rows(SW.load_study(study.study_name))   # the table; each row has the page link

A **spec** is data (``SweepSpec``, stored in the study's user attributes), so a worker needs only
the study's name and its storage: ``python -m playground sweep worker --study NAME``.

- **What can vary**: any setting of the page that changes the run (not a display setting, not the
  classroom ones), as a list of values, or as a range ``lo..hi`` for an int or a float (``log``
  for a log scale; a setting with fixed choices, such as the learning rate slider, takes the
  choices inside the range). Every value is checked by the page's ``Schema``.
- **Strategy**: ``grid`` (Optuna's ``GridSampler``: exactly the grid, however many workers),
  ``random`` or ``tpe``. Samplers are seeded from the spec's seed and the trial number, so a trial
  draws the same settings whichever worker runs it.
- **A trial** is the page's own run (``setups.<page>.build(values)``) with the page's seed, trained
  for ``epochs`` (or whole epochs until ``seconds`` have passed) and scored on the **validation**
  set; the test set is never looked at. The trial's link opens the page with exactly those
  settings, and ▶ Play there trains the same numbers.
- **Pruning**: Optuna's ``MedianPruner`` on the validation metric reported after every epoch.
- **Storage**: a SQLite file by default; ``PLAYGROUND_SWEEP_STORAGE=postgresql://user:pw@host/db``
  lets any number of workers on any number of machines share one study. Every worker sends a
  heartbeat: a worker that dies mid-trial leaves its trial marked FAIL (not RUNNING forever), and
  the study stays readable.

Pure Python: never imports streamlit.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

from playground.errors import PlaygroundError
from playground.settings import CLASSROOM_PARAMS, Param, Schema

STRATEGIES = {"grid": "Grid (every combination)", "random": "Random", "tpe": "TPE (Optuna's Bayesian sampler)"}
DEFAULT_STORAGE = "sweeps/sweeps.db"
STORAGE_ENV = "PLAYGROUND_SWEEP_STORAGE"
HEARTBEAT_ENV = "PLAYGROUND_SWEEP_HEARTBEAT"
DEFAULT_HEARTBEAT = 10          # seconds between a running trial's heartbeats; stale after 2 x this
MAX_GRID = 1000                 # grid points at most
MAX_TRIALS = 1000
SPEC_ATTR = "playground_spec"   # the study's user attribute holding the spec (JSON)

# page key -> (setup module name, the page file); "seq" is the Sequence page's schema name
PAGES = {"basics": ("basics", "pages/1_Neural_Network_Basics.py"),
         "dna": ("dna", "pages/2_DNA_CNN.py"),
         "sequence": ("sequence", "pages/3_Sequence_Models.py")}
ALIASES = {"seq": "sequence", "nn": "basics"}
# settings values a sweep cannot use (the workers have no uploaded file)
NO_UPLOAD = {"dataset": ("upload",)}


class SweepError(PlaygroundError):
    """A sweep that cannot be made or run: ``message`` says what is wrong, ``hint`` what to do."""


class SweepStorageError(SweepError):
    """The study storage cannot be opened (a URL that does not connect, a missing driver)."""


# ---- pages --------------------------------------------------------------------------------------
def page_key(page: str) -> str:
    key = ALIASES.get(page, page)
    if key not in PAGES:
        raise SweepError(f"There is no training page called {page!r}.",
                         f"Use one of: {', '.join(PAGES)}.")
    return key


def setup_of(page: str):
    import importlib

    return importlib.import_module(f"playground.setups.{PAGES[page_key(page)][0]}")


def schema_of(page: str) -> Schema:
    return setup_of(page).SCHEMA


def page_url_path(page: str) -> str:
    """The URL path Streamlit serves the page under: pages/1_Neural_Network_Basics.py -> Neural_Network_Basics."""
    stem = Path(PAGES[page_key(page)][1]).stem
    head, _, rest = stem.partition("_")
    return rest if head.isdigit() and rest else stem


def page_for_url_path(path: str) -> str | None:
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    return next((p for p in PAGES if page_url_path(p) == tail), None)


def can_vary(param: Param) -> bool:
    """A setting a sweep may vary: part of the run (a live one such as the learning rate is too),
    not a display setting, not a classroom one."""
    return not param.view and param.name not in CLASSROOM_PARAMS


def varying_names(page: str) -> list[str]:
    """The settings of ``page`` that a sweep can vary, in the page's order."""
    return [p.name for p in schema_of(page) if can_vary(p)]


# ---- what varies ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Vary:
    """One varied setting: a list of ``values`` (URL text for list settings), or a numeric range
    ``lo..hi`` (``log`` scale; ``step`` for ints or a float grid; ``points`` for a float grid)."""

    name: str
    values: list | None = None
    lo: float | None = None
    hi: float | None = None
    log: bool = False
    step: float | None = None
    points: int | None = None

    @property
    def is_range(self) -> bool:
        return self.values is None

    def describe(self) -> str:
        if not self.is_range:
            return f"{self.name} ∈ {{{', '.join(map(str, self.values))}}}"
        extra = [x for x in ("log" if self.log else "", f"step {self.step:g}" if self.step else "",
                             f"{self.points} points" if self.points else "") if x]
        return f"{self.name} ∈ [{self.lo:g}, {self.hi:g}]" + (f" ({', '.join(extra)})" if extra else "")


_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^\s*({_NUM})\s*\.\.\s*({_NUM})\s*((?::[^:]*)*)$")


def parse_vary(text: str) -> tuple[str, str]:
    """``"lr=0.001,0.01"`` -> ("lr", "0.001,0.01"). Raises SweepError for text without ``=``."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise SweepError(f"Cannot read --vary {text!r}: expected NAME=VALUES.",
                         "For example --vary lr=0.001,0.01,0.1 (a list), --vary n1=2..8 (an int range) or "
                         "--vary dropout=0..0.5:log (a range; :log, :step=X, :n=K for grid points).")
    return name.strip(), rest.strip()


def make_vary(schema: Schema, name: str, given: Any) -> Vary:
    """A ``Vary`` for setting ``name`` of ``schema`` from what a person gave: a list of values,
    a ``Vary``/dict, or text (``"a,b,c"``, ``"lo..hi[:log][:step=X][:n=K]"``; list settings take
    ``;`` between their values). Every value is checked by the setting's ``Param``."""
    if name not in schema:
        raise SweepError(f"`{name}` is not a setting of the {schema.page} page, so a sweep cannot vary it.",
                         f"Settings it can vary: {', '.join(n for n in schema.names if can_vary(schema[n]))}.")
    p = schema[name]
    if not can_vary(p):
        raise SweepError(f"`{name}` is a display setting of the {schema.page} page: it does not change the "
                         f"run, so a sweep cannot vary it.",
                         "Pick a setting of the data, the model or the training.")
    if isinstance(given, Vary):
        v = dataclasses.replace(given, name=name)
    elif isinstance(given, dict):
        v = Vary(name=name, **{k: given[k] for k in ("values", "lo", "hi", "log", "step", "points") if k in given})
    elif isinstance(given, str):
        v = _vary_from_text(p, given)
    elif isinstance(given, (list, tuple)):
        v = Vary(name, values=list(given))
    else:
        raise SweepError(f"{name}: cannot read {given!r} as values to try.", "Give a list of values or a range lo..hi.")
    return _checked(schema, p, v)


def _vary_from_text(p: Param, text: str) -> Vary:
    m = _RANGE.match(text)
    if m:
        if p.kind not in ("int", "float"):
            raise SweepError(f"{p.name}: a range ({text}) needs a number setting; {p.name} is a {_kind_word(p)}.",
                             f"Give the values as a list, e.g. {p.name}={_example_values(p)}.")
        v = Vary(p.name, lo=float(m.group(1)), hi=float(m.group(2)))
        for opt in filter(None, (o.strip() for o in m.group(3).split(":"))):
            key, _, val = opt.partition("=")
            try:
                if key == "log" and not val:
                    v.log = True
                elif key == "step":
                    v.step = float(val)
                elif key in ("n", "points"):
                    v.points = int(val)
                else:
                    raise ValueError
            except ValueError:
                raise SweepError(f"{p.name}: cannot read the range option {opt!r}.",
                                 "Options after the range: :log, :step=X, :n=K (grid points).") from None
        return v
    if ".." in text:
        raise SweepError(f"{p.name}: cannot read the range {text!r}.", "Write it as lo..hi, e.g. 0.001..0.1:log.")
    sep = ";" if p.kind in ("list", "ints") else ","
    raw = [x.strip() for x in text.split(sep)]
    if p.kind in ("list", "ints"):
        raw = [x for x in raw if x or text.strip() == ""]
    else:
        raw = [x for x in raw if x != ""]
    out = []
    for r in raw:
        try:
            out.append(p.decode(r))
        except ValueError as e:
            raise SweepError(f"{p.name}: the value {r!r} cannot be used ({e}).",
                             f"Values {p.name} takes: {_example_values(p)}") from None
    return Vary(p.name, values=out)


def _kind_word(p: Param) -> str:
    return {"str": "choice", "bool": "switch", "list": "list", "ints": "list of numbers"}.get(p.kind, "number")


def _example_values(p: Param) -> str:
    if p.choices:
        return ",".join(map(str, p.choices[:4])) + ("…" if len(p.choices) > 4 else "")
    if p.kind == "bool":
        return "1,0"
    if p.kind in ("int", "float") and p.lo is not None and p.hi is not None:
        return f"{p.lo:g}..{p.hi:g}"
    return p.encode(p.default)


def _checked(schema: Schema, p: Param, v: Vary) -> Vary:
    name = p.name
    if not v.is_range:
        vals = []
        for x in v.values:
            try:
                x = p.decode(x) if isinstance(x, str) and p.kind not in ("str",) else p.validate(x)
            except ValueError as e:
                raise SweepError(f"{name}: the value {x!r} cannot be used ({e}).",
                                 f"Values {name} takes: {_example_values(p)}") from None
            if dataset_blocked(name, x):
                raise SweepError(f"{name}={x} cannot be swept: the workers have no uploaded file.",
                                 "Pick a built-in data set (or train the upload on the page itself).")
            if x not in vals:
                vals.append(x)
        if not vals:
            raise SweepError(f"{name}: no values to try.", f"Give at least one value, e.g. {_example_values(p)}.")
        # list settings travel as their URL text (Optuna's choices are plain values)
        return Vary(name, values=[p.encode(x) if p.kind in ("list", "ints") else x for x in vals])
    lo, hi = float(v.lo), float(v.hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise SweepError(f"{name}: the range needs finite numbers.", "For example 0.001..0.1.")
    if lo > hi:
        raise SweepError(f"{name}: the range {lo:g}..{hi:g} is empty (its start is above its end).",
                         f"Swap them: {hi:g}..{lo:g}.")
    if v.log and lo <= 0:
        raise SweepError(f"{name}: a log-scale range must start above 0 (it starts at {lo:g}).",
                         "Start it at a small positive number, or drop :log.")
    if v.step is not None and v.step <= 0:
        raise SweepError(f"{name}: the step must be positive.", "For example :step=0.1.")
    if v.points is not None and v.points < 1:
        raise SweepError(f"{name}: the number of grid points must be at least 1.", "For example :n=5.")
    if p.choices is not None:
        # a slider with fixed choices: the choices inside the range
        inside = [c for c in p.choices if lo <= float(c) <= hi]
        if not inside:
            raise SweepError(f"{name}: none of its allowed values lies in {lo:g}..{hi:g} (the range is empty).",
                             f"Allowed values: {', '.join(f'{c:g}' for c in p.choices)}.")
        return Vary(name, values=inside)
    if p.kind == "int" and not (lo.is_integer() and hi.is_integer()):
        raise SweepError(f"{name}: an int range needs whole numbers ({lo:g}..{hi:g}).", "For example 2..8.")
    for end in (lo, hi):
        try:
            p.validate(int(end) if p.kind == "int" and float(end).is_integer() else end)
        except ValueError as e:
            raise SweepError(f"{name}: the range {lo:g}..{hi:g} goes outside what {name} allows ({e}).",
                             f"Keep it inside {_example_values(p)}.") from None
    if p.kind == "int":
        step = v.step or 1
        if not float(step).is_integer():
            raise SweepError(f"{name}: an int range needs a whole step.", "For example :step=2.")
        if v.log and v.step not in (None, 1):
            raise SweepError(f"{name}: a log-scale int range cannot have a step.", "Drop :step or :log.")
        return Vary(name, lo=int(lo), hi=int(hi), log=v.log, step=int(step) if v.step else None, points=v.points)
    if v.step is not None and v.log:
        raise SweepError(f"{name}: a log-scale range cannot have a step.", "Use :n=K grid points instead.")
    return Vary(name, lo=lo, hi=hi, log=v.log, step=v.step, points=v.points)


def dataset_blocked(name: str, value) -> bool:
    return value in NO_UPLOAD.get(name, ())


def grid_values(v: Vary) -> list:
    """The values a grid tries for ``v``: its list, every int of an int range (by its step; or
    ``points`` spread over it), or ``points`` spread (evenly, or evenly in log) over a float range."""
    import numpy as np

    if not v.is_range:
        return list(v.values)
    if isinstance(v.lo, int) and isinstance(v.hi, int):
        if v.points:
            xs = np.geomspace(v.lo, v.hi, v.points) if v.log else np.linspace(v.lo, v.hi, v.points)
            return sorted({int(round(x)) for x in xs})
        return list(range(v.lo, v.hi + 1, v.step or 1))
    if v.step:
        n = int(math.floor((v.hi - v.lo) / v.step + 1e-9)) + 1
        return [round(v.lo + i * v.step, 12) for i in range(n)]
    if not v.points:
        raise SweepError(f"{v.name}: a grid over the float range {v.lo:g}..{v.hi:g} needs its points.",
                         "Add :n=K (K values spread over the range) or :step=X, or give a list.")
    xs = np.geomspace(v.lo, v.hi, v.points) if v.log else np.linspace(v.lo, v.hi, v.points)
    return [float(f"{x:.6g}") for x in xs]


# ---- the spec -------------------------------------------------------------------------------------
@dataclasses.dataclass
class SweepSpec:
    """A sweep, as data: the page, its base settings, what varies and how trials are run and scored.

    base:    the page's settings every trial starts from (the page's current values, seed included)
    vary:    the varied settings (``Vary``)
    epochs / seconds: each trial trains ``epochs`` epochs, or whole epochs until ``seconds`` passed
    metric:  a validation metric: 'loss' or one of the task's (accuracy, auroc, mcc, f1, r2, ...)
    """

    page: str
    base: dict
    vary: list[Vary]
    strategy: str = "tpe"
    n_trials: int = 10
    epochs: int | None = 10
    seconds: float | None = None
    metric: str = "loss"
    direction: str = "minimize"
    seed: int = 0
    pruning: bool = False

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.vary]

    def grid(self) -> dict[str, list]:
        return {v.name: grid_values(v) for v in self.vary}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SweepSpec":
        d = json.loads(text)
        d["vary"] = [Vary(**v) for v in d["vary"]]
        return cls(**d)

    def describe(self) -> str:
        budget = f"{self.epochs} epochs" if self.epochs else f"{self.seconds:g} s"
        return (f"{self.page}: {STRATEGIES[self.strategy].split(' (')[0].lower()} over "
                f"{'; '.join(v.describe() for v in self.vary)} · {self.n_trials} trials × {budget} · "
                f"{'maximize' if self.direction == 'maximize' else 'minimize'} validation {self.metric}"
                + (" · median pruning" if self.pruning else ""))


def metric_direction(metric: str) -> str:
    return "minimize" if metric == "loss" else "maximize"


def metrics_for(task: str) -> list[str]:
    """The validation metrics a sweep can optimise for a task: the loss and the task's metrics."""
    import numpy as np

    from playground import metrics as M

    fake = {"regression": (np.zeros(3), np.array([0.0, 1.0, 2.0])),
            "binary": (np.zeros(2), np.array([0.0, 1.0])),
            "multiclass": (np.zeros((2, 2)), np.array([0, 1])),
            "per_residue": (np.zeros((1, 2, 2)), np.array([[0, 1]]))}[task]
    return ["loss", *M.compute(task, *fake)]


def make_spec(page: str, vary: dict, *, base: dict | None = None, strategy: str = "tpe", n_trials: int | None = None,
              epochs: int | None = None, seconds: float | None = None, metric: str = "loss",
              direction: str | None = None, seed: int | None = None, pruning: bool = False) -> SweepSpec:
    """A checked ``SweepSpec``. ``vary``: name -> list of values, ``"a,b"`` / ``"lo..hi[:log]"`` text,
    or a ``Vary``. ``base``: the page's settings every trial starts from (defaults where missing;
    every value checked by the page's Schema). A grid's ``n_trials`` is the grid's size.
    Raises ``SweepError`` with what to change."""
    page = page_key(page)
    schema = schema_of(page)
    base = {k: v for k, v in (base or {}).items() if k not in CLASSROOM_PARAMS}
    try:
        checked, _ = schema.validate(base, strict=True)
    except PlaygroundError as e:
        raise SweepError(f"The base settings cannot be used: {str(e).rstrip('.')}.",
                         "Fix or drop the setting named.") from None
    checked = {k: v for k, v in checked.items() if k not in CLASSROOM_PARAMS}
    for name, bad in NO_UPLOAD.items():
        if checked.get(name) in bad and name not in vary:
            raise SweepError(f"The page's data set is '{checked[name]}': sweep workers have no uploaded file.",
                             "Pick a built-in data set to sweep, or vary the data set.")
    if not vary:
        raise SweepError("Nothing varies: pick at least one setting to vary.",
                         f"Settings of the {page} page a sweep can vary: {', '.join(varying_names(page))}.")
    varies = [make_vary(schema, n, g) for n, g in vary.items()]
    if strategy not in STRATEGIES:
        raise SweepError(f"Unknown strategy {strategy!r}.", f"Use one of: {', '.join(STRATEGIES)}.")
    if (epochs is None) == (seconds is None):
        if epochs is None:
            epochs = 10
        else:
            raise SweepError("Give either epochs or seconds per trial, not both.", "For example epochs=10.")
    if epochs is not None and not (1 <= int(epochs) <= 10_000):
        raise SweepError(f"epochs per trial must be between 1 and 10000 (got {epochs}).", "For example 10.")
    if seconds is not None and not (0 < float(seconds) <= 24 * 3600):
        raise SweepError(f"seconds per trial must be above 0 (got {seconds}).", "For example 30.")
    metric = metric.removeprefix("val_")
    if metric.startswith("test"):
        raise SweepError("A sweep chooses by the validation set: the test set is never a sweep's metric.",
                         "Pick loss, accuracy, auroc, mcc, f1, pearson_r, r2 or q3 (validation).")
    from playground import metrics as M

    if metric not in M.LABELS:
        raise SweepError(f"Unknown metric {metric!r}.", f"Use one of: {', '.join(M.LABELS)} (validation).")
    direction = direction or metric_direction(metric)
    if direction not in ("minimize", "maximize"):
        raise SweepError(f"direction must be minimize or maximize (got {direction!r}).")
    spec = SweepSpec(page, checked, varies, strategy, 0, int(epochs) if epochs is not None else None,
                     float(seconds) if seconds is not None else None, metric, direction,
                     int(checked.get("seed", 0) if seed is None else seed), bool(pruning))
    if strategy == "grid":
        size = math.prod(len(vals) for vals in spec.grid().values())
        if size > MAX_GRID:
            raise SweepError(f"The grid has {size:,} combinations (at most {MAX_GRID:,}).",
                             "Give fewer values, a coarser step, or use random or TPE with a number of trials.")
        if n_trials is not None and int(n_trials) != size:
            warnings.warn(f"a grid runs its {size} combinations; n_trials={n_trials} is ignored", stacklevel=2)
        spec.n_trials = size
    else:
        n = 10 if n_trials is None else int(n_trials)
        if not 1 <= n <= MAX_TRIALS:
            raise SweepError(f"The number of trials must be between 1 and {MAX_TRIALS} (got {n}).")
        spec.n_trials = n
    return spec


def spec_warnings(spec: SweepSpec) -> list[str]:
    """Things that make a sweep waste trials: a varied setting the run does not read with these
    base settings (the Sequence page's other families' settings, the hidden layers past the last)."""
    out = []
    if spec.page == "sequence":
        S = setup_of("sequence")
        if "family" not in spec.names:
            unused = {n for n in spec.names if S.relevant(spec.base).get(n) == S.SCHEMA[n].default
                      and any(n.startswith(pre) for pre in S.FAMILY_PREFIX.values())
                      and not n.startswith(S.FAMILY_PREFIX.get(spec.base.get("family", ""), "\0"))}
            out += [f"`{n}` belongs to another model family than '{spec.base.get('family')}': it changes nothing."
                    for n in sorted(unused)]
    if spec.page == "dna" and "model" not in spec.names:
        model = spec.base.get("model", "primer")
        conv = {"conv_layers", "padding", "batch_norm", "activation", "pool", "pool_size", "pool_output", "dense",
                "conv_dropout"} | {f"{a}{i}" for a in "ck" for i in range(1, 5)}
        for n in spec.names:
            if (n in conv and model != "custom") or (n.startswith("mlp_") and model != "mlp"):
                out.append(f"`{n}` is not read by the '{model}' model: it changes nothing (set model=custom or mlp).")
            elif model == "custom" and re.fullmatch(r"[ck]\d", n) and "conv_layers" not in spec.names \
                    and int(n[1:]) > int(spec.base.get("conv_layers", 1)):
                out.append(f"`{n}` is a conv layer past the model's {spec.base.get('conv_layers', 1)}: it changes "
                           f"nothing.")
    if spec.page == "basics" and "layers" not in spec.names:
        layers = int(spec.base.get("layers", 2))
        out += [f"`{n}` is a hidden layer past the network's {layers}: it changes nothing."
                for n in spec.names if re.fullmatch(r"n\d", n) and int(n[1:]) > layers]
    return out


# ---- settings from a page link --------------------------------------------------------------------
def settings_from_url(url: str, page: str | None = None) -> tuple[str, dict, list[str]]:
    """(page, settings, warnings) of a page link such as
    ``http://localhost:8501/Neural_Network_Basics?lr=0.1&n1=3`` (or just its query string with
    ``page``). Values are decoded by the page's Schema; bad ones are dropped with a warning."""
    parts = urlsplit(url)
    found = page_for_url_path(parts.path) if parts.path else None
    if page is None and found is None:
        raise SweepError(f"Cannot tell which page the link {url[:80]!r} is for.",
                         f"Use a link to one of the training pages ({', '.join(page_url_path(p) for p in PAGES)}) "
                         f"or name the page.")
    page = page_key(page or found)
    query = dict(parse_qsl(parts.query if (parts.path or parts.scheme) else url.lstrip("?"), keep_blank_values=True))
    values, warns = schema_of(page).decode_query(query)
    return page, {k: v for k, v in values.items() if k not in CLASSROOM_PARAMS}, warns


# ---- storage --------------------------------------------------------------------------------------
def storage_url(storage: str | None = None) -> str:
    """A SQLAlchemy URL for ``storage`` (a URL, or a path of a SQLite file), else
    ``$PLAYGROUND_SWEEP_STORAGE``, else ``sqlite:///sweeps/sweeps.db`` (made absolute).
    ``postgresql://`` uses the psycopg (3) driver."""
    raw = (storage or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE).strip()
    if "://" not in raw:
        return "sqlite:///" + str(Path(raw).expanduser().resolve())
    if raw.startswith(("postgresql://", "postgres://")):
        scheme, rest = raw.split("://", 1)
        driver = "psycopg"
        try:
            import psycopg  # noqa: F401  (psycopg 3 installed?)
        except ImportError:
            driver = "psycopg2"
        return f"postgresql+{driver}://{rest}"
    return raw


def safe_url(url: str) -> str:
    """The URL without its password (for messages and the page)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    p = url[len("sqlite:///"):]
    return None if p in ("", ":memory:") else Path(p)


_STORAGES: dict[tuple, Any] = {}
_STORAGES_LOCK = threading.Lock()


def open_storage(storage: str | None = None, *, heartbeat: int | None = None, cached: bool = True):
    """Optuna's ``RDBStorage`` for ``storage`` (see ``storage_url``), with a heartbeat (seconds,
    default ``$PLAYGROUND_SWEEP_HEARTBEAT`` or 10) so trials of a worker that died become FAIL.
    SQLite files get their folder, WAL journaling and a 60 s lock timeout (several workers, one
    file). Raises ``SweepStorageError`` naming the URL (never its password) when it cannot connect."""
    import optuna
    import sqlalchemy.exc

    url = storage_url(storage)
    beat = int(heartbeat or os.environ.get(HEARTBEAT_ENV) or DEFAULT_HEARTBEAT)
    key = (url, beat)
    with _STORAGES_LOCK:
        if cached and key in _STORAGES:
            return _STORAGES[key]
    engine_kwargs: dict = {}
    path = _sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            import sqlite3

            with contextlib.closing(sqlite3.connect(path, timeout=60)) as con:
                con.execute("PRAGMA journal_mode=WAL")
        except (OSError, Exception) as e:  # sqlite3.Error, PermissionError
            raise SweepStorageError(f"Cannot open the sweep storage {safe_url(url)}: {e}.",
                                    f"Check that the folder can be written, or set {STORAGE_ENV} to another "
                                    f"file or a postgresql:// URL.") from None
        engine_kwargs["connect_args"] = {"timeout": 60}
    elif url.startswith("postgresql"):
        engine_kwargs["connect_args"] = {"connect_timeout": 5}
        engine_kwargs["pool_pre_ping"] = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            st = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=beat,
                                            grace_period=2 * beat)
    except ImportError as e:
        raise SweepStorageError(f"Cannot open the sweep storage {safe_url(url)}: its database driver is missing "
                                f"({e}).", "For PostgreSQL: pip install psycopg[binary].") from None
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SweepStorageError(f"Cannot connect to the sweep storage {safe_url(url)}: {safe_url(reason).rstrip('.')}.",
                                "Check the host, port, user, password and database name (is the server running?), "
                                f"or unset {STORAGE_ENV} to use a local SQLite file.") from None
    except ValueError as e:
        raise SweepStorageError(f"The sweep storage URL {safe_url(url)} cannot be used: {e}",
                                "Use sqlite:///path/to/file.db or postgresql://user:password@host/database.") from None
    with _STORAGES_LOCK:
        if cached:
            _STORAGES[key] = st
    return st


def close_storages() -> None:
    """Dispose of the cached storages' connection pools (tests, a worker that ends)."""
    with _STORAGES_LOCK:
        for st in _STORAGES.values():
            with contextlib.suppress(Exception):
                st.engine.dispose()
        _STORAGES.clear()


# ---- studies --------------------------------------------------------------------------------------
def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def default_name(page: str) -> str:
    import secrets

    return f"{page_key(page)}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def _grid_sampler_class():
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid, without its own stop at the end (it calls ``Study.stop``, which only works
        inside ``Study.optimize``): the workers stop when the study has all its trials."""

        def after_trial(self, study, trial, state, values):
            pass

    return GridSampler


def _GridSampler(search_space, seed=None):
    return _grid_sampler_class()(search_space, seed=seed)


def _sampler(spec: SweepSpec, number: int = 0):
    """The sampler for trial ``number``: a grid over the spec's grid, or a random / TPE sampler
    seeded by (spec seed, trial number), so a trial's draw does not depend on which worker runs it."""
    import optuna

    import numpy as np

    # a well-mixed seed per (sweep seed, trial number): neighbouring small seeds draw alike first values
    seed = int(np.random.SeedSequence([int(spec.seed), int(number)]).generate_state(1)[0] % (2**31))
    if spec.strategy == "grid":
        return _GridSampler(spec.grid(), seed=int(spec.seed))
    if spec.strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, max(2, spec.n_trials // 4)))


def _pruner(spec: SweepSpec):
    import optuna

    if not spec.pruning:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=min(3, max(1, spec.n_trials // 4)), n_warmup_steps=1)


def create_study(spec: SweepSpec, name: str | None = None, storage: str | None = None):
    """A new Optuna study for ``spec`` in ``storage``; the spec is kept in the study's user
    attributes (workers read it from there). Raises SweepError when the name is taken."""
    import optuna

    _quiet_optuna()
    st = open_storage(storage)
    name = name or default_name(spec.page)
    try:
        study = optuna.create_study(study_name=name, storage=st, direction=spec.direction,
                                    sampler=_sampler(spec), pruner=_pruner(spec))
    except optuna.exceptions.DuplicatedStudyError:
        raise SweepError(f"A study called {name!r} exists already in {safe_url(st.url)}.",
                         "Pick another name, or run workers for it: python -m playground sweep worker "
                         f"--study {name}.") from None
    study.set_user_attr(SPEC_ATTR, spec.to_json())
    study.set_user_attr("page", spec.page)
    study.set_user_attr("created", time.strftime("%Y-%m-%d %H:%M:%S"))
    return study


def study_spec(study) -> SweepSpec:
    raw = study.user_attrs.get(SPEC_ATTR)
    if not raw:
        raise SweepError(f"The study {study.study_name!r} was not made by the playground (it has no sweep spec).",
                         "Create it with python -m playground sweep create.")
    return SweepSpec.from_json(raw)


def load_study(name: str, storage: str | None = None, *, fail_stale: bool = True):
    """The study called ``name`` with its spec's sampler and pruner. ``fail_stale``: first mark the
    trials of dead workers (no heartbeat for 2 intervals) FAIL."""
    import optuna

    _quiet_optuna()
    st = open_storage(storage)
    try:
        study = optuna.load_study(study_name=name, storage=st)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(st, include_best_trial=False)]
        raise SweepError(f"There is no study called {name!r} in {safe_url(st.url)}.",
                         f"Studies there: {', '.join(names[-10:]) or 'none yet'}.") from None
    spec = study_spec(study)
    study.sampler, study.pruner = _sampler(spec), _pruner(spec)
    if fail_stale:
        fail_stale_trials(study)
    return study


def fail_stale_trials(study) -> None:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)


def list_studies(storage: str | None = None, page: str | None = None) -> list[dict]:
    """The playground's studies in ``storage`` (newest last): name, page, created, trials, spec text."""
    import optuna

    _quiet_optuna()
    path = _sqlite_path(storage_url(storage))
    if path is not None and not path.exists():
        return []                    # nothing made yet: a page that only lists does not create the file
    st = open_storage(storage)
    out = []
    for s in optuna.get_all_study_summaries(st, include_best_trial=False):
        attrs = s.user_attrs
        if SPEC_ATTR not in attrs or (page and attrs.get("page") != page_key(page)):
            continue
        try:
            text = SweepSpec.from_json(attrs[SPEC_ATTR]).describe()
        except (TypeError, ValueError, KeyError):
            text = "?"
        out.append({"name": s.study_name, "page": attrs.get("page"), "created": attrs.get("created", ""),
                    "trials": s.n_trials, "spec": text})
    return out


# ---- one trial -----------------------------------------------------------------------------------
@dataclasses.dataclass
class TrialResult:
    value: float
    epochs: int
    history: list[dict]
    pruned: bool = False


def trial_settings(spec: SweepSpec, params: dict) -> dict:
    """The page's full settings for a trial: the base settings with the trial's values (list
    settings decoded from their URL text), checked by the page's Schema."""
    schema = schema_of(spec.page)
    values = dict(spec.base)
    for name, raw in params.items():
        p = schema[name]
        values[name] = p.decode(raw) if p.kind in ("list", "ints") and isinstance(raw, str) else raw
    checked, _ = schema.validate(values, strict=True)
    return {k: v for k, v in checked.items() if k not in CLASSROOM_PARAMS}


def metric_value(rec: dict, metric: str) -> float:
    v = rec.get(f"val_{metric}")
    return float("nan") if v is None else float(v)


def train_trial(spec: SweepSpec, params: dict, report=None, device: str | None = None) -> TrialResult:
    """Train one trial as the page would (its seed, data, weights and shuffling) and score it on the
    validation set. ``report(value, epoch)`` is called after every epoch and may raise
    ``optuna.TrialPruned``. Raises ``SweepError`` for a run that diverges or cannot be built."""
    values = trial_settings(spec, params)
    if device:
        values["device"] = device
    run = setup_of(spec.page).build(values)
    if run.config is not None:
        run.config.track_metrics = True
    try:
        tr = run.make_trainer()
    except (ValueError, RuntimeError) as e:
        raise SweepError(f"This trial's run cannot be built: {e}", "The sweep goes on with the next trial.") from None
    if not len(tr.data.y_val):
        raise SweepError("This run has no validation set to score.", "Give the validation set a share of the data.")
    have = metrics_for(tr.task)
    if spec.metric not in have:
        raise SweepError(f"The metric {spec.metric!r} does not exist for a {tr.task} task.",
                         f"This run's validation metrics: {', '.join(have)}.")
    t0 = time.perf_counter()
    while True:
        tr.run_epochs(1)
        if tr.diverged:
            raise SweepError(f"Training {tr.diverged}")
        value = metric_value(tr.history[-1], spec.metric)
        if report is not None and math.isfinite(value):
            report(value, tr.epoch)
        if tr.done:
            break
        if spec.epochs is not None and tr.epoch >= spec.epochs:
            break
        if spec.seconds is not None and time.perf_counter() - t0 >= spec.seconds:
            break
    final = tr.evaluate("val")      # the weights the run ends with (early stopping restores its best)
    value = float(final["loss"] if spec.metric == "loss" else final.get(spec.metric, float("nan")))
    if not math.isfinite(value):
        raise SweepError(f"The validation {spec.metric} is not a number for this run (e.g. one class only).",
                         "Pick another metric, or a larger validation set.")
    return TrialResult(value, tr.epoch, tr.history)


def _suggest(trial, v: Vary):
    if not v.is_range:
        return trial.suggest_categorical(v.name, v.values)
    if isinstance(v.lo, int) and isinstance(v.hi, int):
        return trial.suggest_int(v.name, v.lo, v.hi, step=v.step or 1, log=v.log)
    return trial.suggest_float(v.name, v.lo, v.hi, step=v.step, log=v.log)


def _grid_suggest(trial, v: Vary):
    """Under the grid every value is one of the grid's: a categorical over them."""
    return trial.suggest_categorical(v.name, grid_values(v))


# ---- workers --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _claim_lock(storage, study_name: str) -> Iterator[None]:
    """One worker at a time counts the trials and starts the next: a file lock beside a SQLite
    file, a PostgreSQL advisory lock on a server. So the study never runs more than its trials
    (a grid exactly its grid), whatever the number of workers."""
    url = storage.url
    path = _sqlite_path(url)
    if path is not None:
        import fcntl

        with open(f"{path}.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    if url.startswith("postgresql"):
        import sqlalchemy

        import hashlib

        key = int.from_bytes(hashlib.sha1(f"playground-sweep:{study_name}".encode()).digest()[:8], "big", signed=True)
        with storage.engine.connect() as con:
            con.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                con.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                con.commit()
        return
    yield   # another database: Optuna's own checks only


class _Heartbeat:
    """Records a running trial's heartbeat every interval (a thread), as ``study.optimize`` does."""

    def __init__(self, storage, trial_id: int):
        self.storage, self.trial_id = storage, trial_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"sweep-heartbeat-{trial_id}")

    def _beat(self):
        interval = self.storage.get_heartbeat_interval() or DEFAULT_HEARTBEAT
        while not self.stop.is_set():
            with contextlib.suppress(Exception):
                self.storage.record_heartbeat(self.trial_id)
            self.stop.wait(interval)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_worker(name: str, storage: str | None = None, *, n_trials: int | None = None, device: str | None = None,
               log=None, stop: threading.Event | None = None) -> dict:
    """Run trials of study ``name`` until the study has all its trials (or this worker ran
    ``n_trials``, or ``stop`` is set). Any number of workers may run at once, in processes or on
    machines sharing the storage. Returns {'done', 'failed', 'pruned', 'worker'} for this worker.
    A trial that raises is told FAIL with its error in ``user_attrs['error']``; Ctrl-C / SIGTERM
    tells the running trial FAIL before the worker ends."""
    import optuna
    from optuna.trial import TrialState

    import playground  # noqa: F401  (one torch thread per process: PLAYGROUND_NUM_THREADS)

    study = load_study(name, storage)
    spec = study_spec(study)
    st = open_storage(storage)      # the RDBStorage (the study wraps it in a cache)
    me = worker_id()
    counts = {"done": 0, "failed": 0, "pruned": 0, "worker": me}
    ran = 0
    while n_trials is None or ran < n_trials:
        if stop is not None and stop.is_set():
            break
        fail_stale_trials(study)
        with _claim_lock(st, name):
            if len(study.get_trials(deepcopy=False)) >= spec.n_trials:
                break
            with warnings.catch_warnings():     # the heartbeat is ours (_Heartbeat), not optimize's
                warnings.simplefilter("ignore", UserWarning)
                trial = study.ask()
            st.record_heartbeat(trial._trial_id)    # at once: a trial without a heartbeat is never failed
        if spec.strategy != "grid":
            study.sampler = _sampler(spec, trial.number)
        ran += 1
        trial.set_user_attr("worker", me)
        t0 = time.perf_counter()
        state, value, params = TrialState.FAIL, None, {}
        try:
            with _Heartbeat(st, trial._trial_id):
                suggest = _grid_suggest if spec.strategy == "grid" else _suggest
                params = {v.name: suggest(trial, v) for v in spec.vary}

                def report(val, epoch):
                    trial.report(val, epoch)
                    if spec.pruning and trial.should_prune():
                        raise optuna.TrialPruned()

                res = train_trial(spec, params, report, device=device)
                trial.set_user_attr("epochs", res.epochs)
                state, value = TrialState.COMPLETE, res.value
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except (KeyboardInterrupt, SystemExit):
            trial.set_user_attr("error", "the worker was stopped during this trial")
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as e:  # noqa: BLE001 - a trial's failure is recorded, the sweep goes on
            trial.set_user_attr("error", str(e)[:500] or type(e).__name__)
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 3))
        study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
        counts[{TrialState.COMPLETE: "done", TrialState.PRUNED: "pruned"}.get(state, "failed")] += 1
        if log is not None:
            log(f"trial {trial.number}: {state.name.lower()}"
                + (f" {spec.metric}={value:.4g}" if value is not None else "")
                + f" {params}")
    return counts


def worker_command(name: str, storage: str | None = None, n_trials: int | None = None) -> list[str]:
    """``python -m playground sweep worker --study NAME`` for this Python (the storage travels in the
    environment, see ``worker_env``, so a password never shows in a process list)."""
    import sys

    cmd = [sys.executable, "-m", "playground", "sweep", "worker", "--study", name]
    if n_trials:
        cmd += ["--n-trials", str(int(n_trials))]
    return cmd


def worker_env(storage: str | None = None) -> dict:
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PLAYGROUND_NUM_THREADS": os.environ.get("PLAYGROUND_NUM_THREADS", "1"),
           STORAGE_ENV: storage_url(storage)}
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def start_worker(name: str, storage: str | None = None, *, log_path: str | Path | None = None,
                 n_trials: int | None = None):
    """A worker process for study ``name`` (``subprocess.Popen``), its output to ``log_path``."""
    import subprocess

    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(worker_command(name, None, n_trials), env=worker_env(storage),
                                cwd=str(Path(__file__).resolve().parents[1]), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    finally:
        if log_path:
            out.close()


# ---- reading a study -----------------------------------------------------------------------------
def trial_url(spec: SweepSpec, params: dict, base_url: str = "") -> str:
    """The link that opens the trial's page with its settings, ready to ▶ Play
    (``/Neural_Network_Basics?dataset=circle&lr=0.1...``; ``base_url`` e.g. http://localhost:8501)."""
    schema = schema_of(spec.page)
    values = trial_settings(spec, params)
    return f"{base_url.rstrip('/')}/{page_url_path(spec.page)}?{urlencode(schema.encode_query(values))}"


def trial_rows(study, base_url: str = "") -> list[dict]:
    """One row per trial: number, state, the varied settings, the validation metric, epochs,
    seconds, worker, error and the page link."""
    spec = study_spec(study)
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"trial": t.number, "state": t.state.name.lower()}
        row.update({n: t.params.get(n) for n in spec.names})
        row[f"val_{spec.metric}"] = t.value if t.value is not None else (
            t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
        row["epochs"] = t.user_attrs.get("epochs", t.last_step)
        row["seconds"] = t.user_attrs.get("seconds")
        row["worker"] = t.user_attrs.get("worker", "")
        row["error"] = t.user_attrs.get("error", "")
        row["link"] = trial_url(spec, t.params, base_url) if set(t.params) == set(spec.names) else ""
        rows.append(row)
    return rows


def best_trial(study):
    """The best COMPLETE trial, or None while there is none."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    if not done:
        return None
    return study.best_trial


def progress(study) -> dict:
    """Counts by state, and whether the study has all its trials finished."""
    spec = study_spec(study)
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    finished = sum(v for k, v in counts.items() if k in ("complete", "pruned", "fail"))
    return {**counts, "total": spec.n_trials, "finished": finished, "done": finished >= spec.n_trials}


def report_text(study, base_url: str = "") -> str:
    """The table of trials, the best trial and its link, as plain text (``sweep report``)."""
    spec = study_spec(study)
    rows = trial_rows(study, base_url)
    cols = ["trial", "state", *spec.names, f"val_{spec.metric}", "epochs", "seconds", "worker"]

    def fmt(v):
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    table = [cols] + [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    lines = [f"study {study.study_name}: {spec.describe()}"]
    p = progress(study)
    lines.append("trials: " + ", ".join(f"{k} {v}" for k, v in p.items() if k not in ("total", "done", "finished"))
                 + f" (of {p['total']})")
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in table]
    errors = [r for r in rows if r["error"]]
    for r in errors[:5]:
        lines.append(f"trial {r['trial']} failed: {r['error']}")
    best = best_trial(study)
    if best is None:
        lines.append("best: none yet (no trial has completed)")
    else:
        lines.append(f"best: trial {best.number}, validation {spec.metric} = {best.value:.4g}, "
                     + ", ".join(f"{k}={v}" for k, v in best.params.items()))
        lines.append(f"open it: {trial_url(spec, best.params, base_url)}")
    return "\n".join(lines)


__all__ = ["SweepSpec", "Vary", "SweepError", "SweepStorageError", "make_spec", "make_vary", "parse_vary",
           "grid_values", "create_study", "load_study", "list_studies", "run_worker", "train_trial",
           "trial_settings", "trial_url", "trial_rows", "best_trial", "progress", "report_text", "storage_url",
           "safe_url", "open_storage", "settings_from_url", "varying_names", "metrics_for", "STRATEGIES"]
