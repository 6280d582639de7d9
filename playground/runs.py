"""Run records: what was trained, on what, how long, and how well, as plain data.

    rec = run_record(trainer, spec, page="dna", dataset="planted CTCF", parameters={"lr": 0.003})
    rec.row()            # page, dataset, model, parameters, seconds, best metric ... (a table row)
    rec.history          # one dict per epoch (the Trainer's history)
    runs_frame([rec1, rec2]) / histories_csv([rec1, rec2])

A record holds no tensors and no model, so a session can keep many of them; the Run History
page lists them and overlays their curves.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import io
import itertools
import math

from playground.metrics import HEADLINE, HISTORY_KEYS
from playground.metrics import label as metric_label

# the metric a run is ranked by, per task, and whether bigger is better
BEST = {"binary": ("val_auroc", "val_accuracy"), "multiclass": ("val_accuracy", "val_f1"),
        "regression": ("val_pearson_r", "val_r2"), "per_residue": ("val_q3", "val_accuracy")}
METRIC_LABELS = {k: metric_label(k) for k in HISTORY_KEYS}   # from the one table in playground.metrics
PAGE_LABELS = {"basics": "Neural network basics", "dna": "DNA & CNNs", "seq": "Sequence models",
               "sequence": "Sequence models", "esm": "Protein language model", "lm": "Language models"}
_counter = itertools.count(1)


@dataclasses.dataclass
class RunRecord:
    run_id: str
    page: str
    dataset: str
    model: str                          # the spec's one-line description
    kind: str                           # model family ('cnn', 'rnn', ...)
    task: str
    parameters: dict                    # the settings that define the run (optimizer, lr, batch ...)
    n_params: int = 0
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    history: list = dataclasses.field(default_factory=list)
    spec: dict = dataclasses.field(default_factory=dict)
    created: str = ""
    note: str = ""                      # 'diverged ...', 'early stopping ...'
    live: bool = False                  # still training (the page's current run)

    @property
    def page_label(self) -> str:
        return PAGE_LABELS.get(self.page, self.page)

    @property
    def label(self) -> str:
        """A short name for legends: '#3 DNA & CNNs · CNN ...'."""
        return f"#{self.run_id} {self.page_label} · {self.model[:40]}"

    def metric_names(self) -> list[str]:
        """The per-epoch numbers this run recorded (losses first)."""
        keys: list[str] = []
        for rec in self.history:
            for k, v in rec.items():
                if k not in keys and (k.endswith("_loss") or k.startswith("val_")) and isinstance(v, (int, float)):
                    keys.append(k)
        return sorted(keys, key=lambda k: (not k.endswith("loss"), k != "train_loss", k))

    def best(self) -> tuple[str, float, int] | None:
        """(metric, best value, epoch): the task's headline metric if recorded, else the lowest validation loss."""
        for key in (*BEST.get(self.task, ()), "val_loss"):
            vals = [(r.get(key), r.get("epoch", i)) for i, r in enumerate(self.history) if _finite(r.get(key))]
            if vals:
                v, ep = (min if key == "val_loss" else max)(vals, key=lambda t: t[0])
                return key, float(v), int(ep)
        return None

    def row(self) -> dict:
        b = self.best()
        return {"run": self.run_id, "page": self.page_label, "dataset": self.dataset, "model": self.model,
                "parameters": ", ".join(f"{k}={_fmt(v)}" for k, v in self.parameters.items()),
                "weights": self.n_params, "epochs": self.epochs, "seconds": round(self.seconds, 2),
                "best metric": METRIC_LABELS.get(b[0], b[0]) if b else "",
                "best value": round(b[1], 4) if b else float("nan"),
                "at epoch": b[2] if b else None,
                "final validation loss": round(self.history[-1]["val_loss"], 4) if self.history and
                _finite(self.history[-1].get("val_loss")) else float("nan"),
                "status": "training" if self.live else (self.note or "done")}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "/".join(_fmt(x) for x in v)
    return str(v)


def new_run_id() -> str:
    return str(next(_counter))


def run_record(trainer, spec=None, *, page: str, dataset: str = "", parameters: dict | None = None,
               run_id: str | None = None, live: bool = False, model: str | None = None) -> RunRecord:
    """A plain-data snapshot of a Trainer's run (safe to keep after the trainer is gone)."""
    from playground.models.base import count_parameters

    cfg = trainer.config
    params = {"optimizer": cfg.optimizer, "lr": cfg.lr, "batch": cfg.batch_size, "seed": cfg.seed}
    if cfg.regularization != "none":
        params["reg"] = f"{cfg.regularization} {cfg.reg_rate:g}"
    params.update(parameters or {})
    note = trainer.diverged or trainer.stopped or ""
    history = [{k: (float(v) if isinstance(v, float) else v) for k, v in rec.items()
                if isinstance(v, (int, float, str))} for rec in trainer.history]
    return RunRecord(run_id=run_id or new_run_id(), page=page, dataset=dataset,
                     model=model or (spec.describe() if spec is not None else type(trainer.model).__name__),
                     kind=getattr(spec, "kind", ""), task=trainer.task, parameters=params,
                     n_params=count_parameters(trainer.model), epochs=int(trainer.epoch), steps=int(trainer.steps),
                     seconds=float(trainer.seconds), history=history,
                     spec=spec.to_dict() if spec is not None else {},
                     created=_dt.datetime.now().strftime("%H:%M:%S"), note=note or "", live=live)


def runs_frame(records: list[RunRecord]):
    import pandas as pd

    return pd.DataFrame([r.row() for r in records])


def history_frame(record: RunRecord):
    import pandas as pd

    return pd.DataFrame(record.history)


def history_csv(record: RunRecord) -> str:
    return history_frame(record).to_csv(index=False, float_format="%.6g")


def histories_csv(records: list[RunRecord]) -> str:
    """Every chosen run's history in one long table (a 'run' column tells them apart)."""
    import pandas as pd

    frames = []
    for r in records:
        df = pd.DataFrame(r.history)
        df.insert(0, "run", r.run_id)
        df.insert(1, "page", r.page_label)
        df.insert(2, "model", r.model)
        frames.append(df)
    if not frames:
        return ""
    buf = io.StringIO()
    pd.concat(frames, ignore_index=True).to_csv(buf, index=False, float_format="%.6g")
    return buf.getvalue()


RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
              "#17becf")


def overlay_figure(records: list[RunRecord], metric: str = "val_loss", x: str = "epoch", log_y: bool = False,
                   height: int = 420):
    """Chosen runs' curves of one metric on one chart (x: 'epoch' or 'seconds')."""
    import numpy as np
    import plotly.graph_objects as go

    from playground.plots.common import _layout, column

    fig = go.Figure()
    for i, r in enumerate(records):
        ys = column(r.history, metric)
        if not np.isfinite(ys).any():
            continue
        fig.add_scatter(x=column(r.history, x), y=ys, mode="lines+markers" if len(ys) < 30 else "lines",
                        name=r.label, line=dict(color=RUN_COLORS[i % len(RUN_COLORS)], width=2.5),
                        hovertemplate=f"run #{r.run_id}<br>{x} %{{x}}<br>{METRIC_LABELS.get(metric, metric)} "
                                      "%{y:.4f}<extra></extra>")
    fig.update_xaxes(title="seconds of training" if x == "seconds" else "epoch")
    fig.update_yaxes(title=METRIC_LABELS.get(metric, metric), type="log" if log_y else "linear")
    _layout(fig, f"{METRIC_LABELS.get(metric, metric).capitalize()} of the chosen runs", height)
    fig.update_layout(legend=dict(orientation="v", y=1, x=1.02, xanchor="left", yanchor="top"),
                      margin=dict(l=60, r=10, t=50, b=50))
    return fig


__all__ = ["overlay_figure", "RunRecord", "run_record", "runs_frame", "history_frame", "history_csv", "histories_csv", "BEST",
           "METRIC_LABELS", "HEADLINE", "new_run_id"]
