"""Lessons and challenges: the course's exercises as data, checked by training.

A lesson is a small TOML file under ``assets/lessons/``: ordered steps, each with a short
text, the page it runs on, the exact settings (the page's URL state), an optional question
with its answer, and optional expectations that a run must meet::

    [[steps]]
    title = "One linear neuron"
    text = "A line cannot bend: the validation loss stays above 0.02."
    settings = { dataset = "cubic", features = ["x1"], layers = 1, n1 = 1, activation = "linear" }

    [[steps.expect]]
    metric = "val_loss"   # a key of the training history, or a special metric (METRICS)
    op = ">"
    value = 0.02
    epochs = 300           # the training budget
    when = "after"         # 'after' N epochs (the default) or 'within' N epochs (at some epoch <= N)

``load_lesson(path)`` validates a file and raises ``LessonError`` naming the file and the
field (``steps[3].settings.lr``) and saying what is wrong. A step's settings are checked by the
target page's own ``Schema`` (``playground/setups/<page>.py``): an unknown name, a setting of
another page, a value of the wrong type, outside a choice list or outside a range is an error. ``check_step(step)`` builds the
page's run from the step's settings (the same seeded data, weights and shuffling as the page),
trains it for the stated budget and says whether every expectation is met; the test suite
runs it over every shipped lesson. ``assess(...)`` judges a run a student trained on the page.

Never imports streamlit: the sidebar panel lives in ``playground.ui.lessons``.
"""
from __future__ import annotations

import dataclasses
import math
import operator
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

from playground.errors import PlaygroundError
from playground.metrics import label as metric_label
from playground.settings import Schema, SettingError
from playground.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
LESSON_DIR = ROOT / "assets" / "lessons"


class LessonError(PlaygroundError):
    """A lesson file that cannot be used. ``file`` and ``field`` say where, ``problem`` what."""

    def __init__(self, file: str | Path, field_path: str, problem: str):
        self.file = str(file)
        self.field = field_path
        self.problem = problem
        where = f"field `{field_path}`" if field_path else "the file"
        super().__init__(f"Lesson file {self.file}, {where}: {problem}")


# ------------------------------------------------------------------------------------------------
# pages a lesson can target
# Settings of the page's schema a lesson step may not give (the classroom ones are the lesson's
# own fields; a lesson runs on the CPU wherever it is opened).
NOT_LESSON_SETTINGS = ("device", "lesson", "step", "projector", "lock", "hide")


@dataclass(frozen=True)
class PageInfo:
    """A page a lesson can target: ``register_page(PageInfo(key, path, title, SCHEMA, build))``.

    runner: settings -> the run exactly as the page trains it: a ``playground.setups.Run`` (its
    ``make_trainer()`` and ``metrics``), or a ``Run`` of this module (trainer + extras); None
    for a page with no training run to measure."""

    key: str                    # what a lesson writes: page = "basics"
    path: str                   # the page file, relative to the app's root
    title: str
    schema: Schema = field(compare=False)   # the page's settings (its setup module's SCHEMA)
    runner: Callable[[dict], Any] | None = None   # settings -> a run exactly as the page trains it
    unsupported: dict = field(default_factory=dict)  # setting -> {value: why a lesson cannot use it}

    @property
    def state(self) -> str:
        """The page's PageState / LiveTraining name (its session and URL keys)."""
        return self.schema.page

    @property
    def settings(self) -> dict:
        """Every setting a step may give -> its default (read from the schema)."""
        return {n: d for n, d in self.schema.defaults().items() if n not in NOT_LESSON_SETTINGS}


@dataclass
class Run:
    """A run built from a page's settings: the trainer plus the page-specific metrics.
    (A page's runner may also return a ``playground.setups.Run``: see ``start_run``.)"""

    trainer: Trainer | None
    extras: dict = field(default_factory=dict)   # metric -> fn(trainer) -> float (on the current weights)


def start_run(page: PageInfo, settings: dict) -> tuple[Trainer, dict]:
    """(a fresh trainer, its page-specific metrics) for ``settings`` on ``page``."""
    from playground.setups import Run as SetupRun

    run = page.runner(settings)
    if isinstance(run, SetupRun):
        return run.make_trainer(), run.metrics
    return run.trainer, run.extras


# ---- Neural Network Basics ----------------------------------------------------------------------
# Settings and run: playground/setups/basics.py (SCHEMA, build).
def basics_run(settings: dict):
    """The run the basics page trains for these settings (``playground.setups.basics.build``)."""
    from playground.setups import basics

    return basics.build(settings)


def gradient_descent_path(settings: dict):
    """The page's gradient-descent view (tab ⛰️) for these settings (``setups.basics.descent_view``)."""
    from playground.setups import basics

    return basics.descent_view(settings)


# ---- DNA & CNNs ---------------------------------------------------------------------------------
# Settings and run: playground/setups/dna.py (SCHEMA, build, UNSUPPORTED; motif recovery).
def _dna():
    from playground.setups import dna

    return dna


def dna_extras(motifs: list) -> dict:
    """The DNA page's lesson metrics: motif_recovery (``setups.dna``) and its chance level,
    motif_p and motif_above_chance (``playground.motif_chance``: the same statistic for
    untrained networks of the run's shape on its data)."""
    from playground.motif_chance import chance_metrics

    return {**_dna().metrics_of(motifs), **chance_metrics(motifs)}


def dna_run(settings: dict) -> Run:
    """A fresh trainer (and the motif metrics) for the run the DNA page trains for these
    settings (``playground.setups.dna.build``: same data, split, weights, shuffling)."""
    run = _dna().build(settings)
    return Run(run.make_trainer(), dna_extras(run.extras["motifs"]))


def live_extras(page: str, settings: dict) -> dict:
    """The page-specific metrics of a run a student trains on the page (see ``assess``)."""
    if page == "dna":
        return dna_extras(_dna().motifs_of(settings))
    if page == "lm":
        return _lm().lesson_metrics(settings)
    return {}


# ---- Sequence models & attention ----------------------------------------------------------------
# Settings and run: playground/setups/sequence.py (SCHEMA, build, UNSUPPORTED).
def _sequence():
    from playground.setups import sequence

    return sequence


def seq_run(settings: dict) -> Run:
    """The run the Sequence models page trains for these settings (``setups.sequence.build``; a
    lesson uses the built-in data sets)."""
    return Run(_sequence().build(settings).make_trainer())


# ---- Protein language model (ESM-2) --------------------------------------------------------------
# Settings and views: playground/setups/protein.py (SCHEMA, UNSUPPORTED, lesson_metrics). No runner:
# the page's run (the head vs CNN comparison) needs ESM-2 weights loaded on the page; a lesson
# states numbers only about the seeded untrained weights (the settings metrics below).
def _protein():
    from playground.setups import protein

    return protein


def esm_untrained_masked(settings: dict):
    """The ESM-2 page's masked prediction for these settings with the seeded random weights the
    page offers when the pretrained ones are not downloaded (``setups.protein.untrained_masked``)."""
    return _protein().untrained_masked(settings)


def esm_metrics(settings: dict) -> dict:
    return _protein().lesson_metrics(settings)


# ---- Language models ------------------------------------------------------------------------------
# Settings and run: playground/setups/lm.py (SCHEMA, build, UNSUPPORTED; settings_metrics, lesson metrics).
def _lm():
    from playground.setups import lm

    return lm


PAGES: dict[str, PageInfo] = {}


def register_page(info: PageInfo) -> None:
    PAGES[info.key] = info


def _basics_schema() -> Schema:
    from playground.setups import basics

    return basics.SCHEMA


register_page(PageInfo("basics", "pages/1_Neural_Network_Basics.py", "Neural network basics", _basics_schema(),
                       basics_run))
register_page(PageInfo("dna", "pages/2_DNA_CNN.py", "DNA & CNNs", _dna().SCHEMA, dna_run, _dna().UNSUPPORTED))
register_page(PageInfo("sequence", "pages/3_Sequence_Models.py", "Sequence models & attention",
                       _sequence().SCHEMA, seq_run, _sequence().UNSUPPORTED))
register_page(PageInfo("protein", "pages/4_Protein_Language_Model.py", "Protein language model (ESM-2)",
                       _protein().SCHEMA, None, _protein().UNSUPPORTED))
register_page(PageInfo("lm", "pages/7_Language_Models.py", "Language models", _lm().SCHEMA, _lm().build,
                       _lm().UNSUPPORTED))


def page_for_path(path: str) -> PageInfo | None:
    name = Path(path).name
    return next((p for p in PAGES.values() if Path(p.path).name == name), None)


# ------------------------------------------------------------------------------------------------
# metrics an expectation can name
SPECIAL_METRICS = {
    "params": "number of trainable parameters",
    "diverged": "1 if training diverged (loss NaN/inf), else 0",
    "epochs_trained": "epochs completed",
    "train_loss_peak_ratio": "highest training loss after epoch 0 / training loss at epoch 0 (> 1: a spike)",
}
SETTINGS_METRICS = {   # computed from the settings alone (no trainer): page -> metric -> description
    "basics": {
        "gd_loss": "final training loss of the gradient-descent view (tab ⛰️)",
        "gd_progress": "share of the starting loss the gradient-descent view removed (0-1; negative: it grew)",
        "gd_diverged": "1 if the gradient-descent view's loss grew or blew up (as the page reports it), else 0",
    },
    "protein": {
        "untrained_mask_true_prob": "untrained (random) ESM-2's mean probability of the true residue at the "
                                    "masked positions",
        "untrained_mask_top_prob": "untrained ESM-2's highest probability for any amino acid at a masked position",
    },
    "lm": {
        "lecture_books": "P(books | students opened their) in the lecture's counts, with the page's smoothing",
        "ngram_val_bits": "the page's n-gram: validation bits per token (inf where a count of 0 gives P = 0)",
        "ngram_best_order": "the n-gram order (1-6, backoff) with the lowest validation bits per token",
        "ngram_best_bits": "the best n-gram's validation bits per token",
    },
}
HISTORY_METRICS = {"train_loss", "val_loss", "val_accuracy", "val_auroc", "val_mcc", "val_f1", "val_r2",
                   "val_pearson_r", "val_q3"}
EXTRA_METRICS = {"dna": {"motif_recovery": "worst planted motif's best filter match (column-wise Pearson, 1 = identical)",
                         "motif_p": "largest p-value of a planted motif's match against untrained networks of the "
                                    "same shape (playground.motif_chance)",
                         "motif_above_chance": "1 when every planted motif is recovered clearly above chance "
                                               "(p < 0.01 and above the 95 % band), else 0"},
                 "lm": {"val_bits": "validation bits per token", "val_ppl": "validation perplexity",
                        "val_acc": "validation accuracy on the masked (or next) tokens",
                        "motif_acc": "accuracy on masked tokens inside planted motifs (validation)",
                        "background_acc": "accuracy on masked background tokens (validation)",
                        "visible_acc": "share of visible tokens (no [MASK] anywhere) the model predicts as themselves",
                        "finetune_gain": "best validation accuracy, pretrained + new head minus from scratch"}}


def gd_metrics(settings: dict) -> dict:
    """gd_loss, gd_progress and gd_diverged of the page's gradient-descent view."""
    path = gradient_descent_path(settings)
    final = float(path.loss[-1]) if len(path.loss) else float("inf")
    start = float(path.loss[0]) if len(path.loss) else float("nan")
    diverged = bool(path.diverged) or not math.isfinite(final) or final > start
    progress = 1.0 - final / start if math.isfinite(final) and start else float("-inf")
    return {"gd_loss": final, "gd_progress": progress, "gd_diverged": 1.0 if diverged else 0.0}


def metrics_for(page: str) -> set[str]:
    own = set(SETTINGS_METRICS.get(page, {}))
    if page in PAGES and PAGES[page].runner is None:   # no training run to measure
        return own
    return HISTORY_METRICS | set(SPECIAL_METRICS) | own | set(EXTRA_METRICS.get(page, {}))


LABELS = {**{k: metric_label(k) for k in HISTORY_METRICS}, "params": "parameters",   # metric names: playground.metrics
          "diverged": "diverged", "gd_loss": "gradient-descent loss", "gd_progress": "share of the loss removed",
          "gd_diverged": "gradient descent diverged", "motif_recovery": "motif recovered",
          "motif_p": "motif p-value (vs untrained networks)", "motif_above_chance": "motif recovered above chance",
          "train_loss_peak_ratio": "training-loss peak / start", "epochs_trained": "epochs trained",
          "untrained_mask_true_prob": "untrained P(true residue)", "untrained_mask_top_prob": "untrained top-guess probability",
          "lecture_books": "P(books | students opened their)", "ngram_val_bits": "n-gram validation bits per token",
          "ngram_best_order": "best n-gram order", "ngram_best_bits": "best n-gram's bits per token",
          "val_bits": "validation bits per token", "val_ppl": "validation perplexity", "val_acc": "validation accuracy",
          "motif_acc": "accuracy at masked motif tokens", "background_acc": "accuracy at masked background tokens",
          "visible_acc": "visible tokens read right", "finetune_gain": "fine-tuning gain (validation accuracy)"}
OPS: dict[str, Callable[[float, float], bool]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt,
                                                   ">=": operator.ge, "==": operator.eq}
OP_TEXT = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "~=": "≈"}


# ------------------------------------------------------------------------------------------------
# the data model
@dataclass(frozen=True)
class Expectation:
    metric: str
    op: str
    value: float | None = None
    epochs: int = 0
    when: str = "after"              # 'after' N epochs or 'within' N epochs
    than: dict | None = None         # compare with a reference run: these settings changed
    factor: float = 1.0              # ... times this factor
    tolerance: float = 0.0           # for op '~=' (absolute)
    text: str = ""

    @property
    def needs_trainer(self) -> bool:
        return self.metric not in {m for d in SETTINGS_METRICS.values() for m in d}

    def describe(self) -> str:
        if self.text:
            return self.text
        label = LABELS.get(self.metric, self.metric)
        if self.metric in ("diverged", "gd_diverged") and self.op == "==" and self.value is not None:
            core = f"training {'diverges' if self.value else 'does not diverge'}" if self.metric == "diverged" else \
                f"gradient descent {'diverges' if self.value else 'does not diverge'}"
        elif self.than is not None:
            ref = ", ".join(f"{k} = {_show(v)}" for k, v in self.than.items())
            scale = f"{self.factor:g} × " if self.factor != 1 else ""
            tol = f" (± {self.tolerance:g})" if self.op == "~=" else ""
            core = f"{label} {OP_TEXT[self.op]} {scale}the {label} with {ref}{tol}"
        else:
            core = f"{label} {OP_TEXT[self.op]} {_show(self.value)}"
        if self.needs_trainer and self.metric != "params" and self.epochs:
            core += f" {'within' if self.when == 'within' else 'after'} {self.epochs} epochs"
        return core


def _show(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return ", ".join(map(str, v))
    return str(v)


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    page: str
    settings: dict
    question: str = ""
    answer: str = ""
    expect: tuple[Expectation, ...] = ()
    lock: tuple[str, ...] = ()
    hide: tuple[str, ...] = ()

    @property
    def page_info(self) -> PageInfo:
        return PAGES[self.page]


@dataclass(frozen=True)
class Challenge:
    target: Expectation
    minimize: str = "params"             # the score: fewer is better
    fixed: tuple[str, ...] = ()          # settings the student may not change (locked on the page)
    solution: dict = field(default_factory=dict)   # one known answer (settings), revealed on click
    solution_text: str = ""


@dataclass(frozen=True)
class Lesson:
    id: str
    number: int
    title: str
    summary: str
    steps: tuple[Step, ...]
    kind: str = "lesson"                 # 'lesson' or 'challenge'
    lock: tuple[str, ...] = ()           # locked on every step
    hide: tuple[str, ...] = ()           # hidden on every step
    challenge: Challenge | None = None
    path: str = ""

    def __len__(self) -> int:
        return len(self.steps)

    def step(self, number: int) -> Step:
        """Step ``number`` (1-based), clamped to the lesson."""
        return self.steps[min(max(int(number), 1), len(self.steps)) - 1]

    def locked(self, number: int) -> tuple[str, ...]:
        extra = self.challenge.fixed if self.challenge else ()
        return tuple(dict.fromkeys((*self.lock, *self.step(number).lock, *extra)))

    def hidden(self, number: int) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.hide, *self.step(number).hide)))


# ------------------------------------------------------------------------------------------------
# loading and validation
LESSON_FIELDS = {"title", "number", "summary", "page", "kind", "lock", "hide", "steps", "challenge", "id"}
STEP_FIELDS = {"title", "text", "page", "settings", "question", "answer", "expect", "lock", "hide"}
EXPECT_FIELDS = {"metric", "op", "value", "epochs", "when", "than", "factor", "tolerance", "text"}
CHALLENGE_FIELDS = {"target", "minimize", "fixed", "solution", "solution_text"}


class _Checker:
    def __init__(self, file: str):
        self.file = file

    def fail(self, where: str, problem: str):
        raise LessonError(self.file, where, problem)

    def unknown(self, table: dict, allowed: set, where: str) -> None:
        for k in table:
            if k not in allowed:
                self.fail(f"{where}.{k}" if where else k,
                          f"unknown field; expected one of {', '.join(sorted(allowed))}")

    def text(self, table: dict, key: str, where: str, required: bool = True, default: str = "") -> str:
        v = table.get(key)
        name = f"{where}.{key}" if where else key
        if v is None:
            if required:
                self.fail(name, "missing (a text is required)")
            return default
        if not isinstance(v, str) or (required and not v.strip()):
            self.fail(name, f"must be a non-empty text, got {v!r}")
        return v.strip()

    def names(self, table: dict, key: str, where: str, page: PageInfo) -> tuple[str, ...]:
        """A list of the page's setting names (lock, hide, a challenge's fixed settings)."""
        v = table.get(key, [])
        name = f"{where}.{key}" if where else key
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.fail(name, f"must be a list of setting names, got {v!r}")
        allowed = page.settings
        bad = [x for x in v if x not in allowed]
        if bad:
            self.fail(name, f"unknown setting(s) {', '.join(bad)}{self._elsewhere(bad, page)}; the page has "
                            f"{', '.join(sorted(allowed))}")
        self.through_schema({"lock": list(v)}, page, name, whole=True)
        return tuple(v)

    @staticmethod
    def _elsewhere(names, page: PageInfo) -> str:
        """' (a setting of the X page)' when the names belong to another page."""
        others = sorted({p.title for p in PAGES.values() if p.key != page.key
                         for n in names if n in p.settings})
        return f" (a setting of the {' / '.join(others)} page, not of {page.title})" if others else ""

    def through_schema(self, values: dict, page: PageInfo, where: str, whole: bool = False) -> dict:
        """``values`` checked by the page's schema (type, choices, range, list length); an error
        names the field. ``whole``: ``where`` is the field itself (one value), not a table."""
        try:
            checked, _ = page.schema.validate(values, strict=True, prefix="" if whole else f"{where}.")
        except SettingError as e:
            self.fail(where if whole else e.field, e.problem)
        return {k: checked[k] for k in values}

    def number(self, table: dict, key: str, where: str, kind=float, required: bool = False, default=None, lo=None):
        v = table.get(key)
        name = f"{where}.{key}" if where else key
        if v is None:
            if required:
                self.fail(name, "missing (a number is required)")
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
            self.fail(name, f"must be {'a whole number' if kind is int else 'a number'}, got {v!r}")
        if isinstance(v, float) and not math.isfinite(v):
            self.fail(name, "must be a finite number")
        if lo is not None and v < lo:
            self.fail(name, f"must be at least {lo}, got {v!r}")
        return kind(v)

    def settings(self, raw, page: PageInfo, where: str) -> dict:
        """A table of the page's settings, each checked by the page's schema (``steps[2].settings.lr``)."""
        if not isinstance(raw, dict):
            self.fail(where, f"must be a table of settings (name = value), got {raw!r}")
        for k in raw:
            if k not in page.settings:
                self.fail(f"{where}.{k}", f"the {page.title} page has no setting `{k}`"
                                          f"{self._elsewhere([k], page)}; it has {', '.join(sorted(page.settings))}")
        out = self.through_schema(raw, page, where)
        for k, v in out.items():
            why = page.unsupported.get(k, {}).get(v) if isinstance(v, str) else None
            if why:
                self.fail(f"{where}.{k}", f"a lesson cannot use {k} = {v!r}: it {why}")
        return out

    def expectation(self, raw, page: PageInfo, where: str, need_epochs: bool = True) -> Expectation:
        if not isinstance(raw, dict):
            self.fail(where, f"must be a table with metric, op, value, epochs; got {raw!r}")
        self.unknown(raw, EXPECT_FIELDS, where)
        metric = self.text(raw, "metric", where)
        known = metrics_for(page.key)
        if metric not in known:
            self.fail(f"{where}.metric", f"unknown metric {metric!r}; the {page.title} page offers "
                                         f"{', '.join(sorted(known))}")
        op = self.text(raw, "op", where)
        if op not in (*OPS, "~="):
            self.fail(f"{where}.op", f"unknown comparison {op!r}; use one of < <= > >= == ~=")
        than = raw.get("than")
        if than is not None:
            than = self.settings(than, page, f"{where}.than")
        value = self.number(raw, "value", where, required=than is None)
        if than is not None and value is not None:
            self.fail(f"{where}.value", "give either a value or `than` (a reference run), not both")
        tolerance = self.number(raw, "tolerance", where, default=0.0, lo=0)
        if op == "~=" and not tolerance:
            self.fail(f"{where}.tolerance", "op '~=' needs a tolerance > 0 (how close counts as equal)")
        when = raw.get("when", "after")
        if when not in ("after", "within"):
            self.fail(f"{where}.when", f"must be 'after' or 'within', got {when!r}")
        if than is not None and when != "after":
            self.fail(f"{where}.when", "a comparison with `than` is made 'after' the budget")
        epochs = self.number(raw, "epochs", where, int, default=0, lo=0)
        exp = Expectation(metric, op, value, epochs, when, than, self.number(raw, "factor", where, default=1.0),
                          tolerance, self.text(raw, "text", where, required=False))
        if need_epochs and exp.needs_trainer and metric not in ("params",) and epochs < 1:
            self.fail(f"{where}.epochs", f"missing: how many epochs to train before {metric} is checked")
        return exp


def _default_id(path: Path) -> tuple[str, int]:
    stem = path.stem
    head, _, rest = stem.partition("_")
    if head.isdigit() and rest:
        return rest, int(head)
    return stem, 0


def parse_lesson(data: dict, file: str = "<lesson>", default_id: str = "lesson", default_number: int = 0) -> Lesson:
    """A Lesson from parsed TOML/JSON data; ``LessonError`` names ``file`` and the field."""
    c = _Checker(file)
    if not isinstance(data, dict):
        c.fail("", "must be a table of fields (title, summary, steps ...)")
    c.unknown(data, LESSON_FIELDS, "")
    lesson_id = data.get("id", default_id)
    if not isinstance(lesson_id, str) or not lesson_id or not all(ch.isalnum() or ch in "-_" for ch in lesson_id):
        c.fail("id", f"must be letters, digits, - or _ (it goes in links), got {lesson_id!r}")
    title = c.text(data, "title", "")
    summary = c.text(data, "summary", "")
    number = c.number(data, "number", "", int, default=default_number, lo=0)
    kind = data.get("kind", "lesson")
    if kind not in ("lesson", "challenge"):
        c.fail("kind", f"must be 'lesson' or 'challenge', got {kind!r}")
    default_page = data.get("page")
    if default_page is not None and default_page not in PAGES:
        c.fail("page", f"unknown page {default_page!r}; choose one of {', '.join(PAGES)}")
    steps_raw = data.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        c.fail("steps", "missing: a lesson needs at least one [[steps]] table")
    steps = []
    for i, raw in enumerate(steps_raw, 1):
        where = f"steps[{i}]"
        if not isinstance(raw, dict):
            c.fail(where, f"must be a table, got {raw!r}")
        c.unknown(raw, STEP_FIELDS, where)
        page_key = raw.get("page", default_page)
        if page_key is None:
            c.fail(f"{where}.page", f"missing: which page the step runs on ({', '.join(PAGES)})")
        if page_key not in PAGES:
            c.fail(f"{where}.page", f"unknown page {page_key!r}; choose one of {', '.join(PAGES)}")
        page = PAGES[page_key]
        settings = c.settings(raw.get("settings", {}), page, f"{where}.settings")
        question = c.text(raw, "question", where, required=False)
        answer = c.text(raw, "answer", where, required=False)
        if bool(question) != bool(answer):
            c.fail(f"{where}.{'answer' if question else 'question'}", "a question needs its answer (and an answer its question)")
        expect_raw = raw.get("expect", [])
        if isinstance(expect_raw, dict):
            expect_raw = [expect_raw]
        if not isinstance(expect_raw, list):
            c.fail(f"{where}.expect", "must be a table or a list of [[steps.expect]] tables")
        expect = tuple(c.expectation(e, page, f"{where}.expect[{j}]") for j, e in enumerate(expect_raw, 1))
        steps.append(Step(c.text(raw, "title", where), c.text(raw, "text", where), page_key, settings, question,
                          answer, expect, c.names(raw, "lock", where, page),
                          c.names(raw, "hide", where, page)))
    pages = {s.page for s in steps}
    first_page = PAGES[steps[0].page]
    lock = c.names(data, "lock", "", first_page) if len(pages) == 1 else ()
    hide = c.names(data, "hide", "", first_page) if len(pages) == 1 else ()
    if len(pages) > 1 and (data.get("lock") or data.get("hide")):
        c.fail("lock" if data.get("lock") else "hide", "lesson-wide lock/hide need all steps on one page; "
                                                       "put them on the steps instead")
    challenge = None
    if kind == "challenge":
        raw = data.get("challenge")
        if not isinstance(raw, dict):
            c.fail("challenge", "missing: a challenge needs a [challenge] table with a target")
        c.unknown(raw, CHALLENGE_FIELDS, "challenge")
        target = c.expectation(raw.get("target"), first_page, "challenge.target")
        if target.than is not None:
            c.fail("challenge.target.than", "a challenge's target is a fixed value")
        minimize = raw.get("minimize", "params")
        if minimize not in ("params",):
            c.fail("challenge.minimize", f"only 'params' can be minimised, got {minimize!r}")
        fixed = c.names(raw, "fixed", "challenge", first_page)
        solution = c.settings(raw.get("solution", {}), first_page, "challenge.solution")
        clash = [k for k in fixed if k in solution and solution[k] != {**first_page.settings, **steps[0].settings}[k]]
        if clash:
            c.fail("challenge.solution", f"changes the fixed setting(s) {', '.join(clash)}")
        challenge = Challenge(target, minimize, fixed, solution, c.text(raw, "solution_text", "challenge", required=False))
    elif "challenge" in data:
        c.fail("challenge", "only a lesson with kind = \"challenge\" has a [challenge] table")
    return Lesson(lesson_id, number, title, summary, tuple(steps), kind, lock, hide, challenge, file)


def load_lesson(path: str | Path) -> Lesson:
    """Read and validate one lesson file (TOML, or JSON with the same fields)."""
    path = Path(path)
    try:
        shown = str(path.relative_to(ROOT))
    except ValueError:
        shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise LessonError(shown, "", f"cannot be read ({e.strerror or e})") from None
    try:
        if path.suffix == ".json":
            import json

            data = json.loads(raw.decode("utf-8"))
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise LessonError(shown, "", f"is not UTF-8 text (byte {e.start})") from None
    except (tomllib.TOMLDecodeError, ValueError) as e:
        raise LessonError(shown, "", f"is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {e}") from None
    lesson_id, number = _default_id(path)
    return parse_lesson(data, shown, lesson_id, number)


def lesson_files(directory: str | Path = LESSON_DIR) -> list[Path]:
    d = Path(directory)
    return sorted([*d.glob("*.toml"), *d.glob("*.json")]) if d.is_dir() else []


def load_all(directory: str | Path = LESSON_DIR) -> tuple[list[Lesson], list[LessonError]]:
    """Every lesson in ``directory`` (sorted: lessons by number, then challenges) and the
    errors of the files that could not be loaded (one bad file does not hide the others)."""
    lessons, errors = [], []
    for p in lesson_files(directory):
        try:
            lessons.append(load_lesson(p))
        except LessonError as e:
            errors.append(e)
    seen: dict[str, str] = {}
    unique = []
    for les in lessons:
        if les.id in seen:
            errors.append(LessonError(les.path, "id", f"the id {les.id!r} is also used by {seen[les.id]}"))
            continue
        seen[les.id] = les.path
        unique.append(les)
    unique.sort(key=lambda x: (x.kind != "lesson", x.number, x.id))
    return unique, errors


def find(lesson_id: str, directory: str | Path = LESSON_DIR) -> Lesson | None:
    lessons, _ = load_all(directory)
    return next((x for x in lessons if x.id == lesson_id), None)


# ------------------------------------------------------------------------------------------------
# links
def encode(value) -> str:
    """A setting as it appears in a URL (the pages' PageState encoding)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def step_query(lesson: Lesson, number: int, projector: bool = False) -> dict[str, str]:
    """The query parameters of step ``number``'s link: lesson, step and the step's settings.
    Settings a step does not give take the page's defaults when the link is opened."""
    step = lesson.step(number)
    q = {"lesson": lesson.id, "step": str(number), "seed": encode(step.settings.get("seed", 0))}
    q.update({k: encode(v) for k, v in step.settings.items()})
    locked, hidden = lesson.locked(number), lesson.hidden(number)
    if locked:
        q["lock"] = ",".join(locked)
    if hidden:
        q["hide"] = ",".join(hidden)
    if projector:
        q["projector"] = "1"
    return q


def page_url_path(page: PageInfo) -> str:
    """The URL path Streamlit serves a page file under: pages/1_Neural_Network_Basics.py -> Neural_Network_Basics."""
    stem = Path(page.path).stem
    head, _, rest = stem.partition("_")
    return rest if head.isdigit() and rest else stem


def step_url(lesson: Lesson, number: int, base: str = "", projector: bool = False) -> str:
    """A plain link to a step, e.g. http://localhost:8501/Neural_Network_Basics?lesson=cubic&step=2&..."""
    step = lesson.step(number)
    return f"{base.rstrip('/')}/{page_url_path(step.page_info)}?{urlencode(step_query(lesson, number, projector))}"


def full_settings(step: Step, overrides: dict | None = None) -> dict:
    """The page's defaults with the step's settings (and overrides) applied."""
    return {**step.page_info.settings, **step.settings, **(overrides or {})}


# ------------------------------------------------------------------------------------------------
# checking expectations
@dataclass
class Result:
    expectation: Expectation
    status: str                 # 'pass', 'fail' or 'pending'
    value: float | None = None
    epoch: int | None = None
    reference: float | None = None
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def compare(exp: Expectation, value: float, reference: float | None = None) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    target = exp.value if reference is None else reference * exp.factor
    if exp.op == "~=":
        return abs(value - target) <= exp.tolerance
    return OPS[exp.op](value, target)


def metric_now(metric: str, trainer: Trainer, extras: dict | None = None) -> float:
    """A metric of the trainer's current state (None-safe: NaN when unavailable)."""
    from playground.models.base import count_parameters

    if metric == "params":
        return float(count_parameters(trainer.model))
    if metric == "diverged":
        return 1.0 if trainer.diverged else 0.0
    if metric == "epochs_trained":
        return float(trainer.epoch)
    if metric == "train_loss_peak_ratio":
        return _peak_ratio(trainer.history)
    if extras and metric in extras:
        return float(extras[metric](trainer))
    rec = trainer.history[-1]
    if metric in rec:
        return float(rec[metric])
    if metric.startswith("val_"):
        return float(trainer.evaluate("val").get(metric[4:], float("nan")))
    return float("nan")


def _peak_ratio(history: list[dict], upto: int | None = None) -> float:
    recs = [h for h in history[1:] if upto is None or h["epoch"] <= upto]
    start = history[0]["train_loss"]
    if not recs or not start:
        return float("nan")
    return max(h["train_loss"] for h in recs) / start


def _history_value(metric: str, history: list[dict], epoch: int) -> float | None:
    """The metric at ``epoch`` (the last record at or before it)."""
    recs = [h for h in history if h["epoch"] <= epoch]
    if not recs:
        return None
    if metric == "train_loss_peak_ratio":
        return _peak_ratio(history, epoch)
    v = recs[-1].get(metric)
    return None if v is None else float(v)


def settings_metric(page: str, metric: str, settings: dict) -> float:
    if page == "basics" and metric in SETTINGS_METRICS["basics"]:
        return float(gd_metrics(settings)[metric])
    if page == "protein" and metric in SETTINGS_METRICS["protein"]:
        return float(esm_metrics(settings)[metric])
    if page == "lm" and metric in SETTINGS_METRICS["lm"]:
        return float(_lm().settings_metrics(settings)[metric])
    raise ValueError(f"the {page} page has no settings metric {metric!r}")


def _train_and_measure(step: Step, exps: list[Expectation], settings: dict) -> dict[int, tuple[float | None, int | None]]:
    """Train the step's run once up to the largest budget; for each expectation (by index)
    the value it is judged on and the epoch it was reached (within) or measured (after)."""
    tr, extras = start_run(step.page_info, settings)
    tr.config.track_metrics = True
    budget = max(e.epochs for e in exps)
    out: dict[int, tuple[float | None, int | None]] = {}
    # epoch 0 (before training) counts for 'within' and for budgets of 0 epochs
    for _ in range(budget + 1):
        for i, e in enumerate(exps):
            if i in out and (e.when == "after" or compare(e, out[i][0])):
                continue
            if e.when == "within" and tr.epoch <= e.epochs:
                v = metric_now(e.metric, tr, extras)
                if i not in out or compare(e, v):
                    out[i] = (v, tr.epoch)
            elif e.when == "after" and (tr.epoch == e.epochs or (tr.done and tr.epoch < e.epochs)):
                out[i] = (metric_now(e.metric, tr, extras), tr.epoch)
        settled = all(i in out and (e.when == "after" or compare(e, out[i][0])) for i, e in enumerate(exps))
        if tr.epoch >= budget or tr.done or settled:
            break
        tr.run_epochs(1)
    for i, e in enumerate(exps):
        if i not in out:
            out[i] = (metric_now(e.metric, tr, extras), tr.epoch)
    return out


def check_step(step: Step, overrides: dict | None = None) -> list[Result]:
    """Train the step exactly as its page would, for each expectation's budget, and judge
    every expectation. Reference runs (``than``) are trained the same way."""
    settings = full_settings(step, overrides)
    results: dict[int, Result] = {}
    trained = [i for i, e in enumerate(step.expect) if e.needs_trainer]
    for i, e in enumerate(step.expect):
        if not e.needs_trainer:
            v = settings_metric(step.page, e.metric, settings)
            results[i] = Result(e, "pass" if compare(e, v) else "fail", v)
    if trained:
        measured = _train_and_measure(step, [step.expect[i] for i in trained], settings)
        for j, i in enumerate(trained):
            e = step.expect[i]
            v, ep = measured[j]
            ref = reference_value(step, e, settings) if e.than is not None else None
            results[i] = Result(e, "pass" if compare(e, v, ref) else "fail", v, ep, ref)
    for r in results.values():
        r.message = result_text(r)
    return [results[i] for i in range(len(step.expect))]


def result_text(r: Result) -> str:
    e = r.expectation
    label = LABELS.get(e.metric, e.metric)
    val = "–" if r.value is None else (f"{r.value:.4g}" if e.metric != "params" else f"{r.value:.0f}")
    at = f" at epoch {r.epoch}" if r.epoch is not None and e.needs_trainer and e.metric != "params" else ""
    ref = f" (reference run: {r.reference:.4g})" if r.reference is not None else ""
    if r.status == "pass":
        return f"✅ {e.describe()}: {label} = {val}{at}{ref}"
    if r.status == "fail":
        return f"❌ {e.describe()}: {label} = {val}{at}{ref}"
    return f"⏳ {e.describe()}: now {label} = {val}{at}{ref}"


def assess(exp: Expectation, trainer: Trainer | None, settings: dict, page: str, extras: dict | None = None,
           reference: float | None = None) -> Result:
    """Judge a run a student is training on the page against one expectation: 'pass',
    'fail' (the budget is spent, or training stopped) or 'pending' (keep training).
    ``reference`` is the metric of the ``than`` run (see ``reference_value``)."""
    if not exp.needs_trainer:
        v = settings_metric(page, exp.metric, settings)
        r = Result(exp, "pass" if compare(exp, v) else "fail", v)
    elif trainer is None:
        r = Result(exp, "pending")
    elif exp.metric == "params":
        v = metric_now("params", trainer)
        r = Result(exp, "pass" if compare(exp, v) else "fail", v)
    else:
        N = exp.epochs
        hist = trainer.history
        in_history = exp.metric in hist[-1] or exp.metric in ("train_loss_peak_ratio",)
        finished = trainer.epoch >= N or trainer.done
        if exp.when == "within":
            hit = None
            if in_history:
                for h in hist:
                    if h["epoch"] > N:
                        break
                    v = _history_value(exp.metric, hist, h["epoch"])
                    if v is not None and compare(exp, v):
                        hit = (v, h["epoch"])
                        break
            elif trainer.epoch <= N:
                v = metric_now(exp.metric, trainer, extras)
                if compare(exp, v):
                    hit = (v, trainer.epoch)
            if hit:
                r = Result(exp, "pass", hit[0], hit[1])
            else:
                v = _history_value(exp.metric, hist, N) if in_history else metric_now(exp.metric, trainer, extras)
                r = Result(exp, "fail" if finished else "pending", v, min(trainer.epoch, N))
        else:
            if exp.metric == "diverged":
                v = 1.0 if trainer.diverged and trainer.epoch <= N else 0.0
                r = Result(exp, "pass" if compare(exp, v) else ("fail" if finished else "pending"), v, trainer.epoch)
            elif finished:
                v = _history_value(exp.metric, hist, N) if in_history else metric_now(exp.metric, trainer, extras)
                ok = compare(exp, v, reference) if (exp.than is None or reference is not None) else False
                r = Result(exp, "pass" if ok else "fail", v, min(trainer.epoch, N), reference)
                if exp.than is not None and reference is None:
                    r.status = "pending"
            else:
                v = metric_now(exp.metric, trainer, extras) if in_history or extras else None
                r = Result(exp, "pending", v, trainer.epoch, reference)
    r.message = result_text(r)
    return r


_REFERENCES: dict[str, float] = {}


def reference_value(step: Step, exp: Expectation, settings: dict) -> float:
    """The metric of the reference run of a ``than`` expectation (trained headlessly; runs are
    seeded, so each reference is trained once per process)."""
    ref_settings = {**settings, **exp.than}
    key = repr((step.page, sorted(ref_settings.items()), exp.metric, exp.epochs))
    if key not in _REFERENCES:
        _REFERENCES[key] = _train_and_measure(step, [dataclasses.replace(exp, than=None, value=0.0)], ref_settings)[0][0]
    return _REFERENCES[key]


def check_lesson(lesson: Lesson) -> list[tuple[int, Result]]:
    """Every expectation of every step: [(step number, result)]. A challenge's solution is
    checked against the target."""
    out = []
    for n, step in enumerate(lesson.steps, 1):
        out.extend((n, r) for r in check_step(step))
    if lesson.challenge is not None:
        out.extend((0, r) for r in check_challenge(lesson))
    return out


def check_challenge(lesson: Lesson) -> list[Result]:
    """The challenge's known solution meets the target."""
    ch = lesson.challenge
    step = dataclasses.replace(lesson.steps[0], expect=(ch.target,))
    return check_step(step, ch.solution)


def challenge_score(lesson: Lesson, trainer: Trainer) -> float:
    return metric_now(lesson.challenge.minimize, trainer)


def fixed_violations(lesson: Lesson, settings: dict) -> list[str]:
    """Challenge settings the run changed (the score would not count)."""
    if lesson.challenge is None:
        return []
    want = full_settings(lesson.steps[0])
    return [k for k in lesson.challenge.fixed if settings.get(k) != want[k]]


__all__ = ["LessonError", "Lesson", "Step", "Expectation", "Challenge", "Result", "PAGES", "PageInfo", "Run",
           "load_lesson", "load_all", "parse_lesson", "find", "step_query", "step_url", "check_step",
           "check_lesson", "check_challenge", "assess", "reference_value", "full_settings", "encode", "start_run",
           "gradient_descent_path", "basics_run", "dna_run", "fixed_violations", "challenge_score"]
